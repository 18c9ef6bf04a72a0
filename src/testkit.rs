//! A test identity provider that signs MFA assertions: for tests, the demo and fuzzing.
//! Not for production: a real deployment trusts its identity provider's published keys.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::binding::Binding;
use crate::encoding::b64_encode;
use crate::error::Error;
use crate::provider::provider;
use crate::service::{AssertionClaims, Audience, TrustedIssuer, AMR_MFA};
use crate::signing::SigningKey;

/// An identity provider with one ES256 signing key.
pub struct TestIdentityProvider {
    issuer: String,
    kid: String,
    key: SigningKey,
}

impl TestIdentityProvider {
    /// A provider named `issuer` with a fresh key.
    ///
    /// # Errors
    /// [`Error::Crypto`] if key generation fails.
    pub fn new(issuer: impl Into<String>) -> Result<Self, Error> {
        Ok(TestIdentityProvider {
            issuer: issuer.into(),
            kid: "test-key-1".to_owned(),
            key: SigningKey::generate()?,
        })
    }

    /// What a service configures to trust this provider.
    pub fn trusted_issuer(&self) -> TrustedIssuer {
        TrustedIssuer {
            issuer: self.issuer.clone(),
            keys: HashMap::from([(self.kid.clone(), *self.key.verifying_key())]),
        }
    }

    /// Claims for a user who just passed MFA on `binding`'s device, valid for five
    /// minutes from `now`, with a random `jti`.
    pub fn mfa_claims(
        &self,
        audience: &str,
        binding: &Binding,
        nonce: &str,
        now: u64,
    ) -> AssertionClaims {
        let mut jti = [0u8; 16];
        let _ = provider().fill_random(&mut jti);
        AssertionClaims {
            iss: self.issuer.clone(),
            aud: Audience::One(audience.to_owned()),
            tid: binding.tenant().to_owned(),
            sub: binding.user().to_owned(),
            deviceid: binding.device().to_owned(),
            amr: vec!["pwd".to_owned(), AMR_MFA.to_owned()],
            iat: now,
            exp: now + 300,
            jti: b64_encode(&jti),
            nonce: nonce.to_owned(),
        }
    }

    /// Signs `claims` as a compact ES256 JWS.
    ///
    /// # Errors
    /// [`Error::Crypto`] if signing fails.
    pub fn sign(&self, claims: &AssertionClaims) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let der = self.key.to_pkcs8_der()?;
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&der))
            .map_err(|_| Error::Crypto)
    }

    /// A signed assertion for `binding`'s user and device, bound to `nonce`.
    ///
    /// # Errors
    /// [`Error::Crypto`] if signing fails.
    pub fn mfa_assertion(
        &self,
        audience: &str,
        binding: &Binding,
        nonce: &str,
        now: u64,
    ) -> Result<String, Error> {
        self.sign(&self.mfa_claims(audience, binding, nonce, now))
    }
}
