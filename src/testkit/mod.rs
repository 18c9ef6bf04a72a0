//! Test fixtures (the `testkit` feature): an identity provider that signs MFA assertions,
//! and an in-process stand-in for a service, for tests, the demo, the guides and fuzzing.
//! Not for production: a real deployment trusts its identity provider's published keys.

mod stand_in;

pub use stand_in::{StandIn, StandInDevice};

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::codec::base64url::b64_encode;
use crate::crypto::provider::provider;
use crate::envelope::binding::Binding;
use crate::error::Error;
use crate::keys::signing::SigningKey;
use crate::service::{AssertionAlgorithm, AssertionClaims, Audience, TrustedIssuer, AMR_MFA};

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
        Ok(Self::from_key(
            issuer,
            "test-key-1",
            SigningKey::generate()?,
        ))
    }

    /// A provider named `issuer` signing with `key` under the JWS `kid` `kid` (so that
    /// two processes can share one provider).
    pub fn from_key(issuer: impl Into<String>, kid: impl Into<String>, key: SigningKey) -> Self {
        // Tests sign their own tokens with jsonwebtoken next to this one.
        crate::crypto::jose::ensure_provider();
        TestIdentityProvider {
            issuer: issuer.into(),
            kid: kid.into(),
            key,
        }
    }

    /// Its public key.
    pub fn verifying_key(&self) -> &crate::keys::signing::VerifyingKey {
        self.key.verifying_key()
    }

    /// The issuer name (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its published keys: a JWKS document (RFC 7517) with its one P-256 key.
    pub fn jwks(&self) -> String {
        let point = self.key.verifying_key().to_sec1();
        let (x, y) = point[1..].split_at(32);
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": self.kid, "x": b64_encode(x), "y": b64_encode(y),
        }]})
        .to_string()
    }

    /// What a service configures to trust this provider (its JWKS, ES256, the standard
    /// claim names).
    ///
    /// # Errors
    /// [`Error::Crypto`] if its own JWKS does not load (never, for a well-formed key).
    pub fn trusted_issuer(&self) -> Result<Arc<TrustedIssuer>, Error> {
        TrustedIssuer::from_jwks(
            self.issuer.clone(),
            self.jwks().as_bytes(),
            &[AssertionAlgorithm::Es256],
        )
        .map(Arc::new)
        .map_err(|_| Error::Crypto)
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
            nbf: None,
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
        crate::crypto::jose::ensure_provider();
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
