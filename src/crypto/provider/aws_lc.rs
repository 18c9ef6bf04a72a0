//! The `aws-lc` provider: every primitive on aws-lc-rs (assembly-backed, constant-time
//! RSA).

use aws_lc_rs::{agreement, hkdf, rand, rsa, signature};
use zeroize::Zeroizing;

use super::{
    CryptoProvider, EcdsaP256Signer, Failure, OutLen, P256Agreement, RsaOaepDecryptor, Secret32,
    RSA_MAX_BYTES,
};

pub(crate) struct AwsLc;

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn copy_shared(dh: &[u8]) -> Result<Secret32, Failure> {
    let mut out = Zeroizing::new([0u8; 32]);
    if dh.len() != 32 {
        return Err(Failure);
    }
    out.copy_from_slice(dh);
    Ok(out)
}

impl CryptoProvider for AwsLc {
    super::ring_api_primitives!(aws_lc_rs);

    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), Failure> {
        rand::fill(out).map_err(|_| Failure)
    }

    fn p256_ephemeral_agree(&self, peer: &[u8; 65]) -> Result<([u8; 65], Secret32), Failure> {
        let rng = rand::SystemRandom::new();
        let sk = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .map_err(|_| Failure)?;
        let mut pk = [0u8; 65];
        pk.copy_from_slice(sk.compute_public_key().map_err(|_| Failure)?.as_ref());
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
        let shared = agreement::agree_ephemeral(sk, peer, Failure, copy_shared)?;
        Ok((pk, shared))
    }

    fn p256_agreement_from_scalar(
        &self,
        scalar: &[u8; 32],
    ) -> Result<Box<dyn P256Agreement>, Failure> {
        let sk = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, scalar)
            .map_err(|_| Failure)?;
        AwsLcP256::boxed(sk)
    }

    fn p256_agreement_generate(&self) -> Result<Box<dyn P256Agreement>, Failure> {
        AwsLcP256::boxed(
            agreement::PrivateKey::generate(&agreement::ECDH_P256).map_err(|_| Failure)?,
        )
    }

    fn ecdsa_p256_signer(
        &self,
        scalar: &[u8; 32],
        public: &[u8; 65],
    ) -> Result<Box<dyn EcdsaP256Signer>, Failure> {
        let kp = signature::EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            public,
        )
        .map_err(|_| Failure)?;
        Ok(Box::new(AwsLcSigner(kp)))
    }

    fn rsa_oaep_decryptor(
        &self,
        pkcs8_der: &[u8],
    ) -> Option<Result<Box<dyn RsaOaepDecryptor>, Failure>> {
        let load = || -> Result<Box<dyn RsaOaepDecryptor>, Failure> {
            let key = rsa::PrivateDecryptingKey::from_pkcs8(pkcs8_der).map_err(|_| Failure)?;
            let key = rsa::OaepPrivateDecryptingKey::new(key).map_err(|_| Failure)?;
            Ok(Box::new(AwsLcRsa(key)))
        };
        Some(load())
    }
}

/// aws-lc frees (and cleanses) the key when it is dropped.
struct AwsLcP256 {
    key: agreement::PrivateKey,
    public: [u8; 65],
}

impl AwsLcP256 {
    fn boxed(key: agreement::PrivateKey) -> Result<Box<dyn P256Agreement>, Failure> {
        let mut public = [0u8; 65];
        let pk = key.compute_public_key().map_err(|_| Failure)?;
        if pk.as_ref().len() != 65 {
            return Err(Failure);
        }
        public.copy_from_slice(pk.as_ref());
        Ok(Box::new(AwsLcP256 { key, public }))
    }
}

impl P256Agreement for AwsLcP256 {
    fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    fn agree(&self, peer: &[u8; 65]) -> Result<Secret32, Failure> {
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
        agreement::agree(&self.key, peer, Failure, copy_shared)
    }
}

struct AwsLcSigner(signature::EcdsaKeyPair);

impl EcdsaP256Signer for AwsLcSigner {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], Failure> {
        let sig = self
            .0
            .sign(&rand::SystemRandom::new(), msg)
            .map_err(|_| Failure)?;
        <[u8; 64]>::try_from(sig.as_ref()).map_err(|_| Failure)
    }
}

struct AwsLcRsa(rsa::OaepPrivateDecryptingKey);

impl RsaOaepDecryptor for AwsLcRsa {
    fn decrypt(
        &self,
        ciphertext: &[u8],
        label: &[u8],
        out: &mut [u8; RSA_MAX_BYTES],
    ) -> Result<usize, Failure> {
        let pt = self
            .0
            .decrypt(&rsa::OAEP_SHA256_MGF1SHA256, ciphertext, out, Some(label))
            .map_err(|_| Failure)?;
        Ok(pt.len())
    }
}
