//! Which identity providers the service trusts, per tenant. Each tenant names its
//! issuers; each issuer is its `iss` value, its public keys (read from the JWKS document,
//! RFC 7517, that a real identity provider publishes), the signature algorithms it may
//! use and the names it gives the claims the service checks. An issuer trusted by one
//! tenant vouches for nobody else's users.

use core::fmt;
use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::codec::base64url::b64_decode;
use crate::keys::signing::VerifyingKey;

/// The largest JWKS document read (Entra ID's is about 10 KiB).
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// The smallest RSA modulus accepted for assertion signatures.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted (the verifier's own limit).
const MAX_RSA_BITS: usize = 8192;

/// A signature algorithm an issuer may sign assertions with. `none` and the HMAC
/// algorithms are not representable: a shared secret would let anyone who verifies also
/// forge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssertionAlgorithm {
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); keys of 2048 bits or more.
    Rs256,
    /// RSASSA-PSS with SHA-256 (RFC 7518 §3.5); keys of 2048 bits or more.
    Ps256,
}

impl AssertionAlgorithm {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            AssertionAlgorithm::Es256 => "ES256",
            AssertionAlgorithm::Rs256 => "RS256",
            AssertionAlgorithm::Ps256 => "PS256",
        }
    }

    /// The algorithm a JWS `alg` names, if it is one of these.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(AssertionAlgorithm::Es256),
            "RS256" => Some(AssertionAlgorithm::Rs256),
            "PS256" => Some(AssertionAlgorithm::Ps256),
            _ => None,
        }
    }

    pub(crate) fn jsonwebtoken(self) -> Algorithm {
        match self {
            AssertionAlgorithm::Es256 => Algorithm::ES256,
            AssertionAlgorithm::Rs256 => Algorithm::RS256,
            AssertionAlgorithm::Ps256 => Algorithm::PS256,
        }
    }

    fn is_rsa(self) -> bool {
        !matches!(self, AssertionAlgorithm::Es256)
    }
}

/// The claim names an issuer uses for what the service checks. `iss`, `aud`, `iat`,
/// `nbf`, `exp`, `amr` and `nonce` are the registered names and are not configurable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    /// The stable user id, compared with the envelope's user.
    pub user: String,
    /// The tenant id, compared with the envelope's tenant.
    pub tenant: String,
    /// The device id, compared with the envelope's device.
    pub device: String,
    /// The token's unique id, spent on release.
    pub token_id: String,
}

impl ClaimNames {
    /// `sub`, `tid`, `deviceid`, `jti`.
    pub fn standard() -> Self {
        ClaimNames {
            user: "sub".into(),
            tenant: "tid".into(),
            device: "deviceid".into(),
            token_id: "jti".into(),
        }
    }

    /// Microsoft Entra ID: the user is the object id `oid` (Entra's `sub` is pairwise per
    /// application), the token id is `uti`; `tid` and `deviceid` as the standard names.
    pub fn entra_id() -> Self {
        ClaimNames {
            user: "oid".into(),
            token_id: "uti".into(),
            ..Self::standard()
        }
    }
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self::standard()
    }
}

/// Why an issuer's configuration was refused. Nothing is trusted when this is returned.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerError {
    /// The JWKS document is larger than [`MAX_JWKS_LEN`].
    TooLong,
    /// The JWKS document is not JSON of the form `{"keys": [...]}`; the position is the
    /// parser's (line and column, from 1), never the document's bytes.
    Malformed {
        /// Line of the error, from 1 (0 when the shape, not the syntax, is wrong).
        line: usize,
        /// Column of the error, from 1.
        column: usize,
    },
    /// No algorithm was allowed.
    NoAlgorithms,
    /// Two usable keys share a `kid`, so a token could not say which one signed it.
    DuplicateKeyId(String),
    /// No key in the document can verify an allowed algorithm; each was skipped for the
    /// reason given.
    NoUsableKeys(Vec<SkippedKey>),
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerError::TooLong => write!(f, "JWKS document larger than {MAX_JWKS_LEN} bytes"),
            IssuerError::Malformed { line, column } => {
                write!(
                    f,
                    "JWKS document is not valid (line {line}, column {column})"
                )
            }
            IssuerError::NoAlgorithms => f.write_str("no signature algorithm allowed"),
            IssuerError::DuplicateKeyId(kid) => write!(f, "two usable keys share kid {kid:?}"),
            IssuerError::NoUsableKeys(skipped) => {
                write!(f, "no usable key in the JWKS document")?;
                for s in skipped {
                    write!(f, "; {s}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for IssuerError {}

/// A key of a JWKS document that will not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// Why it is not used.
    pub reason: &'static str,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {kid:?} skipped: {}", self.reason),
            None => write!(f, "key without kid skipped: {}", self.reason),
        }
    }
}

/// One usable verification key of an issuer.
#[derive(Clone)]
pub(crate) struct IssuerKey {
    decoding: DecodingKey,
    /// The algorithms this key may verify: the issuer's, narrowed by the key's type
    /// and its own `alg`.
    algorithms: Vec<AssertionAlgorithm>,
    description: String,
}

impl IssuerKey {
    pub(crate) fn allows(&self, alg: AssertionAlgorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKey({}, {:?})", self.description, self.algorithms)
    }
}

/// An identity provider whose MFA assertions the service accepts for the tenants that
/// name it in their [`IssuerTrust`].
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    issuer: String,
    keys: HashMap<String, IssuerKey>,
    claims: ClaimNames,
    skipped: Vec<SkippedKey>,
}

impl TrustedIssuer {
    /// An issuer named `issuer` (the `iss` its assertions carry) whose keys are those of
    /// the JWKS document `jwks` (RFC 7517, as published at the provider's `jwks_uri`)
    /// usable with one of `algorithms`. Keys that cannot be used (encryption keys,
    /// symmetric keys, other curves, RSA below 2048 bits, an `alg` not allowed) are
    /// skipped and listed by [`TrustedIssuer::skipped`]. A key's `x5c` certificate chain
    /// is not used: the document itself is the trust anchor, and the key is its `n`/`e`
    /// or `x`/`y`.
    ///
    /// # Errors
    /// [`IssuerError`]: an oversized or malformed document, no algorithm, a `kid` shared
    /// by two usable keys, or no usable key at all.
    ///
    /// # Examples
    /// ```
    /// use pin_recovery::service::{AssertionAlgorithm, ClaimNames, TrustedIssuer};
    ///
    /// let jwks = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
    ///   "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    ///   "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    /// let idp = TrustedIssuer::from_jwks("https://idp.example", jwks, &[AssertionAlgorithm::Es256])?
    ///     .with_claim_names(ClaimNames::standard());
    /// assert_eq!(idp.key_ids(), vec!["k1"]);
    /// # Ok::<(), pin_recovery::service::IssuerError>(())
    /// ```
    pub fn from_jwks(
        issuer: impl Into<String>,
        jwks: &[u8],
        algorithms: &[AssertionAlgorithm],
    ) -> Result<Self, IssuerError> {
        if algorithms.is_empty() {
            return Err(IssuerError::NoAlgorithms);
        }
        if jwks.len() > MAX_JWKS_LEN {
            return Err(IssuerError::TooLong);
        }
        let doc: serde_json::Value =
            serde_json::from_slice(jwks).map_err(|e| IssuerError::Malformed {
                line: e.line(),
                column: e.column(),
            })?;
        let entries = doc
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or(IssuerError::Malformed { line: 0, column: 0 })?;
        let mut keys = HashMap::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let kid = entry
                .get("kid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            match usable_key(entry, algorithms) {
                Ok(key) => {
                    let Some(kid) = kid else {
                        skipped.push(SkippedKey {
                            kid,
                            reason: "no kid: a token could not name it",
                        });
                        continue;
                    };
                    if keys.insert(kid.clone(), key).is_some() {
                        return Err(IssuerError::DuplicateKeyId(kid));
                    }
                }
                Err(reason) => skipped.push(SkippedKey { kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(IssuerError::NoUsableKeys(skipped));
        }
        Ok(TrustedIssuer {
            issuer: issuer.into(),
            keys,
            claims: ClaimNames::standard(),
            skipped,
        })
    }

    /// The same issuer, reading the checked claims under `names`.
    pub fn with_claim_names(mut self, names: ClaimNames) -> Self {
        self.claims = names;
        self
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// The keys of the JWKS document that are not used, with the reason.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The claim names.
    pub fn claim_names(&self) -> &ClaimNames {
        &self.claims
    }

    pub(crate) fn key(&self, kid: &str) -> Option<&IssuerKey> {
        self.keys.get(kid)
    }
}

/// The key of one JWKS entry, if it can verify one of `allowed`.
fn usable_key(
    entry: &serde_json::Value,
    allowed: &[AssertionAlgorithm],
) -> Result<IssuerKey, &'static str> {
    let jwk: Jwk = serde_json::from_value(entry.clone())
        .map_err(|_| "not a JWK this service reads (kty RSA or EC)")?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key (use is not \"sig\")");
    }
    let own_alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::ES256) => Some(AssertionAlgorithm::Es256),
        Some(KeyAlgorithm::RS256) => Some(AssertionAlgorithm::Rs256),
        Some(KeyAlgorithm::PS256) => Some(AssertionAlgorithm::Ps256),
        Some(_) => return Err("its alg is not ES256, RS256 or PS256"),
    };
    let (is_rsa, description) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n =
                b64_decode(&rsa.n, MAX_RSA_BITS / 8 + 1).map_err(|_| "RSA n is not base64url")?;
            let e = b64_decode(&rsa.e, 8).map_err(|_| "RSA e is not base64url")?;
            let bits = bit_length(&n);
            if bits < MIN_RSA_BITS {
                return Err("RSA key smaller than 2048 bits");
            }
            if bits > MAX_RSA_BITS {
                return Err("RSA key larger than 8192 bits");
            }
            if e.last().is_none_or(|b| b & 1 == 0) || bit_length(&e) < 2 {
                return Err("RSA public exponent is not an odd number of at least 3");
            }
            (true, format!("RSA-{bits}"))
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            if ec.curve != EllipticCurve::P256 {
                return Err("elliptic curve other than P-256");
            }
            let x = b64_decode(&ec.x, 32).map_err(|_| "EC x is not base64url")?;
            let y = b64_decode(&ec.y, 32).map_err(|_| "EC y is not base64url")?;
            if x.len() != 32 || y.len() != 32 {
                return Err("EC coordinates are not 32 bytes");
            }
            let mut point = [4u8; 65];
            point[1..33].copy_from_slice(&x);
            point[33..].copy_from_slice(&y);
            VerifyingKey::from_sec1(&point).map_err(|_| "EC key is not a point on P-256")?;
            (false, "P-256".to_owned())
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (HMAC) keys are never trusted");
        }
        AlgorithmParameters::OctetKeyPair(_) => return Err("EdDSA keys are not supported"),
    };
    let algorithms: Vec<AssertionAlgorithm> = allowed
        .iter()
        .copied()
        .filter(|a| a.is_rsa() == is_rsa && own_alg.is_none_or(|own| own == *a))
        .collect();
    if algorithms.is_empty() {
        return Err("no allowed algorithm fits this key");
    }
    crate::crypto::jose::ensure_provider();
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| "the key does not import")?;
    Ok(IssuerKey {
        decoding,
        algorithms,
        description,
    })
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    let Some(first) = be.iter().position(|b| *b != 0) else {
        return 0;
    };
    let top = be.get(first).copied().unwrap_or(0);
    (be.len() - first - 1) * 8 + (8 - top.leading_zeros() as usize)
}

/// Which issuers each tenant trusts. An assertion for a tenant's user is accepted only
/// from an issuer that tenant names, and the signing key is looked up inside that issuer
/// (two issuers may share a `kid`).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use pin_recovery::service::{AssertionAlgorithm, IssuerTrust, TrustedIssuer};
///
/// # let jwks = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
/// #   "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
/// #   "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
/// let idp = Arc::new(TrustedIssuer::from_jwks("https://idp.example", jwks, &[AssertionAlgorithm::Es256])?);
/// let trust = IssuerTrust::new().trust("contoso", idp.clone());
/// assert_eq!(trust.issuers("contoso").len(), 1);
/// assert!(trust.issuers("fabrikam").is_empty(), "contoso's issuer vouches for nobody else");
/// # Ok::<(), pin_recovery::service::IssuerError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct IssuerTrust {
    tenants: HashMap<String, Vec<Arc<TrustedIssuer>>>,
}

impl IssuerTrust {
    /// Trusts nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `issuer` to `tenant`'s trusted issuers, replacing one with the same `iss`.
    pub fn trust(mut self, tenant: impl Into<String>, issuer: Arc<TrustedIssuer>) -> Self {
        let list = self.tenants.entry(tenant.into()).or_default();
        list.retain(|i| i.issuer != issuer.issuer);
        list.push(issuer);
        self
    }

    /// The issuers `tenant` trusts.
    pub fn issuers(&self, tenant: &str) -> &[Arc<TrustedIssuer>] {
        self.tenants.get(tenant).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn find(&self, tenant: &str, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers(tenant)
            .iter()
            .find(|i| i.issuer == iss)
            .map(Arc::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn rsa_jwk(kid: &str, bits: usize) -> String {
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0x80 | n[0] >> 1;
        format!(
            r#"{{"kty":"RSA","kid":"{kid}","n":"{}","e":"AQAB"}}"#,
            crate::codec::base64url::b64_encode(&n)
        )
    }

    fn jwks(keys: &[&str]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    #[test]
    fn keys_are_filtered_by_type_size_use_and_alg() {
        use AssertionAlgorithm::*;
        let small = rsa_jwk("small", 1024);
        let big = rsa_jwk("big", 2048);
        let hmac = r#"{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}"#;
        let enc = EC.replace(r#""kid":"ec""#, r#""kid":"enc","use":"enc""#);
        let doc = jwks(&[EC, &small, &big, hmac, &enc]);
        let i = TrustedIssuer::from_jwks("iss", &doc, &[Es256, Rs256]).unwrap();
        assert_eq!(i.key_ids(), vec!["big", "ec"]);
        let reasons: Vec<_> = i.skipped().iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            vec![
                "RSA key smaller than 2048 bits",
                "symmetric (HMAC) keys are never trusted",
                "not a signature key (use is not \"sig\")"
            ]
        );
        assert!(i.key("big").unwrap().allows(Rs256));
        assert!(
            !i.key("big").unwrap().allows(Ps256),
            "not allowed for this issuer"
        );
        assert!(!i.key("ec").unwrap().allows(Rs256));
        // Only RSA allowed: the EC key is skipped; an RSA key whose own alg is PS256 too.
        let ps = big.replace(r#""kid":"big""#, r#""kid":"ps","alg":"PS256""#);
        let i = TrustedIssuer::from_jwks("iss", &jwks(&[EC, &big, &ps]), &[Rs256]).unwrap();
        assert_eq!(i.key_ids(), vec!["big"]);
    }

    #[test]
    fn configuration_errors_are_typed() {
        use AssertionAlgorithm::*;
        assert_eq!(
            TrustedIssuer::from_jwks("iss", &jwks(&[EC]), &[]).unwrap_err(),
            IssuerError::NoAlgorithms
        );
        assert_eq!(
            TrustedIssuer::from_jwks("iss", &jwks(&[EC, EC]), &[Es256]).unwrap_err(),
            IssuerError::DuplicateKeyId("ec".into())
        );
        assert_eq!(
            TrustedIssuer::from_jwks("iss", b"{\"keys\":[}", &[Es256]).unwrap_err(),
            IssuerError::Malformed {
                line: 1,
                column: 10
            }
        );
        assert_eq!(
            TrustedIssuer::from_jwks("iss", b"[]", &[Es256]).unwrap_err(),
            IssuerError::Malformed { line: 0, column: 0 }
        );
        assert!(matches!(
            TrustedIssuer::from_jwks("iss", &jwks(&[EC]), &[Rs256]).unwrap_err(),
            IssuerError::NoUsableKeys(s) if s.len() == 1
        ));
        let huge = vec![b' '; MAX_JWKS_LEN + 1];
        assert_eq!(
            TrustedIssuer::from_jwks("iss", &huge, &[Es256]).unwrap_err(),
            IssuerError::TooLong
        );
    }

    #[test]
    fn trust_is_per_tenant_and_by_iss() {
        let a = Arc::new(
            TrustedIssuer::from_jwks("a", &jwks(&[EC]), &[AssertionAlgorithm::Es256]).unwrap(),
        );
        let b = Arc::new(
            TrustedIssuer::from_jwks("b", &jwks(&[EC]), &[AssertionAlgorithm::Es256]).unwrap(),
        );
        let t = IssuerTrust::new()
            .trust("t1", a.clone())
            .trust("t2", b)
            .trust("t1", a);
        assert_eq!(t.issuers("t1").len(), 1, "same iss replaces");
        assert!(t.find("t1", "a").is_some());
        assert!(t.find("t1", "b").is_none());
        assert!(t.find("t3", "a").is_none());
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x7f, 0]), 15);
    }
}
