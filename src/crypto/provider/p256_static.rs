//! Static P-256 ECDH keys on the `p256` crate, for the providers whose own library cannot
//! hold a reusable ECDH key (*ring*) or that are built from RustCrypto crates.

use p256::elliptic_curve::sec1::ToEncodedPoint;
use zeroize::Zeroizing;

use super::{Failure, P256Agreement, Secret32};

/// A static P-256 key on the `p256` crate; its scalar is wiped on drop.
pub(crate) struct P256Key {
    secret: p256::SecretKey,
    public: [u8; 65],
}

impl P256Key {
    fn new(secret: p256::SecretKey) -> Self {
        let mut public = [0u8; 65];
        public.copy_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
        P256Key { secret, public }
    }

    /// `CryptoProvider::p256_agreement_from_scalar` for the providers that use this key.
    pub(crate) fn from_scalar(scalar: &[u8; 32]) -> Result<Box<dyn P256Agreement>, Failure> {
        let sk = p256::SecretKey::from_bytes(scalar.into()).map_err(|_| Failure)?;
        Ok(Box::new(P256Key::new(sk)))
    }

    /// `CryptoProvider::p256_agreement_generate` for the providers that use this key.
    pub(crate) fn generate() -> Box<dyn P256Agreement> {
        Box::new(P256Key::new(p256::SecretKey::random(&mut rand_core::OsRng)))
    }
}

impl P256Agreement for P256Key {
    fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    fn agree(&self, peer: &[u8; 65]) -> Result<Secret32, Failure> {
        let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| Failure)?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok(out)
    }
}
