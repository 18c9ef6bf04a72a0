//! The default provider: *ring* where it can, `p256` for the static ECDH keys *ring*
//! cannot hold.

use ring::{agreement, hkdf, rand, signature};
use zeroize::Zeroizing;

use super::p256_static::P256Key;
use super::{
    CryptoProvider, EcdsaP256Signer, Failure, OutLen, P256Agreement, RsaOaepDecryptor, Secret32,
};

pub(crate) struct RingP256;

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl CryptoProvider for RingP256 {
    super::ring_api_primitives!(ring);

    fn name(&self) -> &'static str {
        "ring+p256"
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), Failure> {
        rand::SecureRandom::fill(&rand::SystemRandom::new(), out).map_err(|_| Failure)
    }

    fn p256_ephemeral_agree(&self, peer: &[u8; 65]) -> Result<([u8; 65], Secret32), Failure> {
        let rng = rand::SystemRandom::new();
        let sk = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .map_err(|_| Failure)?;
        let mut pk = [0u8; 65];
        pk.copy_from_slice(sk.compute_public_key().map_err(|_| Failure)?.as_ref());
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
        let shared = agreement::agree_ephemeral(sk, &peer, |dh| {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(dh);
            out
        })
        .map_err(|_| Failure)?;
        Ok((pk, shared))
    }

    fn p256_agreement_from_scalar(
        &self,
        scalar: &[u8; 32],
    ) -> Result<Box<dyn P256Agreement>, Failure> {
        P256Key::from_scalar(scalar)
    }

    fn p256_agreement_generate(&self) -> Result<Box<dyn P256Agreement>, Failure> {
        Ok(P256Key::generate())
    }

    fn ecdsa_p256_signer(
        &self,
        scalar: &[u8; 32],
        public: &[u8; 65],
    ) -> Result<Box<dyn EcdsaP256Signer>, Failure> {
        let rng = rand::SystemRandom::new();
        let kp = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            public,
            &rng,
        )
        .map_err(|_| Failure)?;
        Ok(Box::new(RingSigner(kp)))
    }

    fn rsa_oaep_decryptor(
        &self,
        _pkcs8_der: &[u8],
    ) -> Option<Result<Box<dyn RsaOaepDecryptor>, Failure>> {
        None
    }
}

struct RingSigner(signature::EcdsaKeyPair);

impl EcdsaP256Signer for RingSigner {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], Failure> {
        let sig = self
            .0
            .sign(&rand::SystemRandom::new(), msg)
            .map_err(|_| Failure)?;
        <[u8; 64]>::try_from(sig.as_ref()).map_err(|_| Failure)
    }
}
