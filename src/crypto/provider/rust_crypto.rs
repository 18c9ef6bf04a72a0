//! The RustCrypto provider (feature `rustcrypto`): every primitive from RustCrypto crates
//! in Rust (`sha2`, `hmac`, `hkdf`, `aes-gcm`, `p256`), randomness from the operating
//! system through `rand_core`'s `OsRng`. For devices and targets where building C or
//! assembly is a burden. It offers no RSA decryption (the only pure-Rust RSA carries
//! RUSTSEC-2023-0071).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use hmac::Mac;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::p256_static::P256Key;
use super::{CryptoProvider, EcdsaP256Signer, Failure, P256Agreement, RsaOaepDecryptor, Secret32};

pub(crate) struct RustCrypto;

const TAG_LEN: usize = 16;

impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), Failure> {
        OsRng.try_fill_bytes(out).map_err(|_| Failure)
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> Secret32 {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = match <hmac::Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => return Zeroizing::new([0u8; 32]),
        };
        for p in parts {
            mac.update(p);
        }
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    fn hkdf_sha256_expand(
        &self,
        prk: &[u8; 32],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), Failure> {
        hkdf::Hkdf::<Sha256>::from_prk(prk)
            .map_err(|_| Failure)?
            .expand_multi_info(info, out)
            .map_err(|_| Failure)
    }

    fn aes256gcm_seal(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &mut Vec<u8>,
    ) -> Result<(), Failure> {
        let cipher = Aes256Gcm::new(key.into());
        let tag = cipher
            .encrypt_in_place_detached(nonce.into(), aad, in_out)
            .map_err(|_| Failure)?;
        in_out.extend_from_slice(&tag);
        Ok(())
    }

    fn aes256gcm_open<'a>(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], Failure> {
        let split = in_out.len().checked_sub(TAG_LEN).ok_or(Failure)?;
        let (ct, tag) = in_out.split_at_mut(split);
        let tag = aes_gcm::Tag::clone_from_slice(tag);
        let cipher = Aes256Gcm::new(key.into());
        // On failure the crate leaves the ciphertext in place: no plaintext escapes.
        cipher
            .decrypt_in_place_detached(nonce.into(), aad, ct, &tag)
            .map_err(|_| Failure)?;
        Ok(ct)
    }

    fn p256_ephemeral_agree(&self, peer: &[u8; 65]) -> Result<([u8; 65], Secret32), Failure> {
        let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| Failure)?;
        let sk = p256::ecdh::EphemeralSecret::random(&mut OsRng);
        let mut pk = [0u8; 65];
        pk.copy_from_slice(sk.public_key().to_encoded_point(false).as_bytes());
        let shared = sk.diffie_hellman(&peer);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes());
        Ok((pk, out))
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

    fn ecdsa_p256_verify(
        &self,
        public: &[u8; 65],
        msg: &[u8],
        sig: &[u8; 64],
    ) -> Result<(), Failure> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public).map_err(|_| Failure)?;
        let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| Failure)?;
        key.verify(msg, &sig).map_err(|_| Failure)
    }

    fn ecdsa_p256_signer(
        &self,
        scalar: &[u8; 32],
        public: &[u8; 65],
    ) -> Result<Box<dyn EcdsaP256Signer>, Failure> {
        let key = p256::ecdsa::SigningKey::from_bytes(scalar.into()).map_err(|_| Failure)?;
        // The public half must be this scalar's, as the other providers check.
        if key.verifying_key().to_encoded_point(false).as_bytes() != public.as_slice() {
            return Err(Failure);
        }
        Ok(Box::new(RustCryptoSigner(key)))
    }

    fn rsa_oaep_decryptor(
        &self,
        _pkcs8_der: &[u8],
    ) -> Option<Result<Box<dyn RsaOaepDecryptor>, Failure>> {
        None
    }
}

/// ECDSA P-256 with deterministic nonces (RFC 6979); the crate wipes the scalar on drop.
struct RustCryptoSigner(p256::ecdsa::SigningKey);

impl EcdsaP256Signer for RustCryptoSigner {
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], Failure> {
        let sig: p256::ecdsa::Signature = self.0.try_sign(msg).map_err(|_| Failure)?;
        Ok(sig.to_bytes().into())
    }
}
