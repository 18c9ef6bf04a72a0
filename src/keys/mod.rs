//! Keys: the service's sealing keys (generation, PKCS#8 / SubjectPublicKeyInfo import and
//! export, DER and PEM, through the RustCrypto `pkcs8`/`spki` crates), their ids, and the
//! ECDSA P-256 signing keys of devices, credentials and key documents.

mod id;
mod private;
pub(crate) mod public;
pub(crate) mod signing;

pub use id::KeyId;
pub use private::ServicePrivateKey;
pub use public::ServicePublicKey;
pub use signing::{SigningKey, VerifyingKey};

/// The largest DER document accepted as a key; checked before parsing.
pub(crate) const MAX_KEY_DER_LEN: usize = 4096;
/// The largest PEM document accepted as a key; checked before parsing.
pub(crate) const MAX_KEY_PEM_LEN: usize = 8192;

/// RSA modulus sizes the RSA-OAEP suite accepts.
pub const RSA_KEY_BITS: [usize; 3] = [2048, 3072, 4096];
