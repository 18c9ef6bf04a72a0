//! The crypto provider seam: the few primitives the suites and protocol need, behind one
//! crate-private trait, so that the same code (and the same tests) run on either backend.
//!
//! - `ring` (default): *ring* for randomness, hashing, HKDF, AES-256-GCM, ECDSA and the sender's
//!   ephemeral ECDH; the `p256` crate for static ECDH keys (which *ring* cannot hold). It
//!   offers no RSA decryption: the only pure-Rust RSA carries a timing advisory.
//! - `aws-lc` (feature): aws-lc-rs for everything, including constant-time RSA-OAEP.
//! - RustCrypto (without `ring` and `aws-lc`, or chosen with `rustcrypto`; `aws-lc` wins
//!   if both are on): RustCrypto crates for every primitive, for targets where C or
//!   assembly is a burden; no RSA decryption either.
//!
//! RSA-OAEP *encryption* and RSA key generation use the `rsa` crate in both providers:
//! they are public-key or one-off local operations, outside RUSTSEC-2023-0071's reach,
//! and it lets `_with_rng` sealing stay deterministic for test vectors.

use zeroize::Zeroizing;

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(not(feature = "aws-lc"))]
mod p256_static;
#[cfg(all(not(feature = "aws-lc"), not(feature = "rustcrypto"), feature = "ring"))]
mod ring_p256;
#[cfg(all(
    not(feature = "aws-lc"),
    any(feature = "rustcrypto", not(feature = "ring"))
))]
mod rust_crypto;

/// An ECDH shared secret or derived key, wiped on drop.
pub(crate) type Secret32 = Zeroizing<[u8; 32]>;

/// A primitive refused its input or failed. Callers map it to the error their layer
/// owes the user (an opaque open failure, an invalid key, a platform failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure;

/// A P-256 key pair that can take part in any number of ECDH agreements.
pub(crate) trait P256Agreement: Send + Sync {
    /// The uncompressed SEC1 public key.
    fn public_key(&self) -> &[u8; 65];
    /// ECDH with a peer's uncompressed SEC1 point; fails on any invalid point.
    fn agree(&self, peer: &[u8; 65]) -> Result<Secret32, Failure>;
}

/// A P-256 ECDSA (SHA-256) signing key; signatures are fixed-size `r || s`.
pub(crate) trait EcdsaP256Signer: Send + Sync {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], Failure>;
}

/// An RSA-OAEP (SHA-256, MGF1-SHA-256) private key on a constant-time implementation.
pub(crate) trait RsaOaepDecryptor: Send + Sync {
    /// Decrypts `ciphertext` (exactly the modulus length) into the front of `out` and
    /// returns the plaintext length. Bad padding and a wrong label fail alike.
    fn decrypt(
        &self,
        ciphertext: &[u8],
        label: &[u8],
        out: &mut [u8; RSA_MAX_BYTES],
    ) -> Result<usize, Failure>;
}

pub(crate) trait CryptoProvider: Send + Sync {
    /// A short name, for benchmarks and reports.
    fn name(&self) -> &'static str;
    fn fill_random(&self, out: &mut [u8]) -> Result<(), Failure>;
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> Secret32;
    /// HKDF-Expand (RFC 5869) with SHA-256 from a 32-byte PRK.
    fn hkdf_sha256_expand(
        &self,
        prk: &[u8; 32],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), Failure>;
    /// Encrypts `in_out` in place and appends the 16-byte tag.
    fn aes256gcm_seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut Vec<u8>,
    ) -> Result<(), Failure>;
    /// Verifies the trailing tag and decrypts in place; on failure the buffer holds no
    /// plaintext.
    fn aes256gcm_open<'a>(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], Failure>;
    /// ECDH with a fresh single-use key: returns its public key and the shared secret.
    fn p256_ephemeral_agree(&self, peer: &[u8; 65]) -> Result<([u8; 65], Secret32), Failure>;
    /// A reusable ECDH key from a scalar (refused if zero or not below the group order).
    fn p256_agreement_from_scalar(
        &self,
        scalar: &[u8; 32],
    ) -> Result<Box<dyn P256Agreement>, Failure>;
    /// A fresh reusable ECDH key whose scalar is wiped when it is dropped.
    fn p256_agreement_generate(&self) -> Result<Box<dyn P256Agreement>, Failure>;
    fn ecdsa_p256_verify(
        &self,
        public: &[u8; 65],
        msg: &[u8],
        sig: &[u8; 64],
    ) -> Result<(), Failure>;
    fn ecdsa_p256_signer(
        &self,
        scalar: &[u8; 32],
        public: &[u8; 65],
    ) -> Result<Box<dyn EcdsaP256Signer>, Failure>;
    /// `None` when this provider has no constant-time RSA.
    fn rsa_oaep_decryptor(
        &self,
        pkcs8_der: &[u8],
    ) -> Option<Result<Box<dyn RsaOaepDecryptor>, Failure>>;
}

/// The largest RSA modulus accepted (4096 bits), in bytes.
pub(crate) const RSA_MAX_BYTES: usize = 512;

/// The provider this build uses.
pub(crate) fn provider() -> &'static dyn CryptoProvider {
    #[cfg(feature = "aws-lc")]
    {
        &aws_lc::AwsLc
    }
    #[cfg(all(
        not(feature = "aws-lc"),
        any(feature = "rustcrypto", not(feature = "ring"))
    ))]
    {
        &rust_crypto::RustCrypto
    }
    #[cfg(all(not(feature = "aws-lc"), not(feature = "rustcrypto"), feature = "ring"))]
    {
        &ring_p256::RingP256
    }
}

/// The primitives whose API *ring* and aws-lc-rs share (aws-lc-rs mirrors *ring*'s),
/// written once for both providers: SHA-256, HMAC, HKDF-Expand, AES-256-GCM and ECDSA
/// P-256 verification. Expands to trait methods inside an `impl CryptoProvider`.
#[cfg(not(all(
    not(feature = "aws-lc"),
    any(feature = "rustcrypto", not(feature = "ring"))
)))]
macro_rules! ring_api_primitives {
    ($c:ident) => {
        fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
            let mut ctx = $c::digest::Context::new(&$c::digest::SHA256);
            for p in parts {
                ctx.update(p);
            }
            let mut out = [0u8; 32];
            out.copy_from_slice(ctx.finish().as_ref());
            out
        }

        fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> $crate::crypto::provider::Secret32 {
            let key = $c::hmac::Key::new($c::hmac::HMAC_SHA256, key);
            let mut ctx = $c::hmac::Context::with_key(&key);
            for p in parts {
                ctx.update(p);
            }
            let mut out = zeroize::Zeroizing::new([0u8; 32]);
            out.copy_from_slice(ctx.sign().as_ref());
            out
        }

        fn hkdf_sha256_expand(
            &self,
            prk: &[u8; 32],
            info: &[&[u8]],
            out: &mut [u8],
        ) -> Result<(), Failure> {
            let prk = $c::hkdf::Prk::new_less_safe($c::hkdf::HKDF_SHA256, prk);
            let okm = prk
                .expand(info, $crate::crypto::provider::OutLen(out.len()))
                .map_err(|_| Failure)?;
            okm.fill(out).map_err(|_| Failure)
        }

        fn aes256gcm_seal(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            aad: &[u8],
            in_out: &mut Vec<u8>,
        ) -> Result<(), Failure> {
            let key =
                $c::aead::UnboundKey::new(&$c::aead::AES_256_GCM, key).map_err(|_| Failure)?;
            $c::aead::LessSafeKey::new(key)
                .seal_in_place_append_tag(
                    $c::aead::Nonce::assume_unique_for_key(*nonce),
                    $c::aead::Aad::from(aad),
                    in_out,
                )
                .map_err(|_| Failure)
        }

        fn aes256gcm_open<'a>(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            aad: &[u8],
            in_out: &'a mut [u8],
        ) -> Result<&'a mut [u8], Failure> {
            let key =
                $c::aead::UnboundKey::new(&$c::aead::AES_256_GCM, key).map_err(|_| Failure)?;
            $c::aead::LessSafeKey::new(key)
                .open_in_place(
                    $c::aead::Nonce::assume_unique_for_key(*nonce),
                    $c::aead::Aad::from(aad),
                    in_out,
                )
                .map_err(|_| Failure)
        }

        fn ecdsa_p256_verify(
            &self,
            public: &[u8; 65],
            msg: &[u8],
            sig: &[u8; 64],
        ) -> Result<(), Failure> {
            $c::signature::UnparsedPublicKey::new(&$c::signature::ECDSA_P256_SHA256_FIXED, public)
                .verify(msg, sig)
                .map_err(|_| Failure)
        }
    };
}
#[cfg(not(all(
    not(feature = "aws-lc"),
    any(feature = "rustcrypto", not(feature = "ring"))
)))]
pub(crate) use ring_api_primitives;

/// `hkdf::KeyType` for an arbitrary output length (shared by both ring-shaped backends).
#[cfg(not(all(
    not(feature = "aws-lc"),
    any(feature = "rustcrypto", not(feature = "ring"))
)))]
#[derive(Clone, Copy)]
pub(crate) struct OutLen(pub(crate) usize);
