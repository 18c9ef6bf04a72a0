//! Opening: what the service does with its private key. The checks run in a fixed order
//! (docs/FORMAT.md, "Opening"): suite and key id, exact lengths, then the public-key
//! operation, then the AEAD, then the binding, in constant time. Every failure after the
//! structural checks is the one opaque [`Error::OpenFailed`], and the binding is compared
//! only after the full decryption so that a wrong binding costs the same time as a
//! right one.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use super::seal::{RSA_AEAD_NONCE, RSA_OAEP_LABEL};
use super::{Envelope, CIPHERTEXT_LEN, ENVELOPE_LABEL};
use crate::crypto::hpke;
use crate::crypto::provider::{provider, RSA_MAX_BYTES};
use crate::crypto::secret::RecoverySecret;
use crate::crypto::suite::Suite;
use crate::crypto::xwing;
use crate::envelope::binding::Binding;
use crate::error::Error;
use crate::keys::ServicePrivateKey;

/// The most header bytes an envelope can carry, plus the label.
const MAX_INFO_LEN: usize = ENVELOPE_LABEL.len() + 64 + 3 * (1 + Binding::MAX_ID_LEN);

impl ServicePrivateKey {
    /// Opens `envelope` if it was sealed to this key for exactly `expected`.
    ///
    /// # Errors
    /// [`Error::OpenFailed`] for a wrong key, a wrong binding or any tampering (one
    /// variant, on purpose); [`Error::Unsupported`] for an RSA envelope in a build
    /// without a constant-time RSA provider.
    pub fn open(&self, envelope: &Envelope, expected: &Binding) -> Result<RecoverySecret, Error> {
        if envelope.suite() != self.suite() || envelope.key_id() != self.key_id() {
            return Err(Error::OpenFailed);
        }
        let p = provider();
        // Label and header on the stack: the hot path allocates nothing it need not.
        let mut info_buf = [0u8; MAX_INFO_LEN];
        let info = concat_into(&mut info_buf, ENVELOPE_LABEL, envelope.header_bytes())
            .ok_or(Error::OpenFailed)?;
        let mut buf = Zeroizing::new([0u8; CIPHERTEXT_LEN]);
        let ct = envelope.ciphertext();
        if ct.len() != CIPHERTEXT_LEN {
            return Err(Error::OpenFailed);
        }
        buf.copy_from_slice(ct);

        let opened: Choice = match self.suite() {
            Suite::HpkeP256Sha256Aes256Gcm | Suite::HpkeXWingSha256Aes256Gcm => {
                let mut ctx = self.hpke_receiver(envelope.encapsulated(), info)?;
                crate::crypto::probe::aead_open();
                Choice::from(u8::from(ctx.open(p, b"", &mut buf[..]).is_ok()))
            }
            Suite::RsaOaepSha256Aes256Gcm => {
                let decryptor = self.rsa_decryptor()?.ok_or(Error::OpenFailed)?;
                let wrapped = envelope.encapsulated();
                if Some(wrapped.len()) != self.rsa_modulus_len() {
                    return Err(Error::OpenFailed);
                }
                // Implicit rejection: on bad padding, continue with a random key so the
                // AEAD fails the same way and in the same time as with a wrong tag.
                let mut content_key = Zeroizing::new([0u8; 32]);
                p.fill_random(&mut content_key[..])
                    .map_err(|_| Error::Crypto)?;
                let mut out = Zeroizing::new([0u8; RSA_MAX_BYTES]);
                crate::crypto::probe::private_key_op();
                let unwrapped = decryptor.decrypt(wrapped, RSA_OAEP_LABEL.as_bytes(), &mut out);
                let unwrapped_ok = Choice::from(u8::from(unwrapped == Ok(32)));
                for (k, u) in content_key.iter_mut().zip(out.iter()) {
                    k.conditional_assign(u, unwrapped_ok);
                }
                crate::crypto::probe::aead_open();
                let ok = p
                    .aes256gcm_open(&content_key, &RSA_AEAD_NONCE, info, &mut buf[..])
                    .is_ok();
                Choice::from(u8::from(ok)) & unwrapped_ok
            }
        };
        let binding = envelope.binding();
        let same_binding = binding
            .tenant()
            .as_bytes()
            .ct_eq(expected.tenant().as_bytes())
            & binding.user().as_bytes().ct_eq(expected.user().as_bytes())
            & binding
                .device()
                .as_bytes()
                .ct_eq(expected.device().as_bytes());
        if bool::from(opened & same_binding) {
            let mut secret = [0u8; RecoverySecret::LEN];
            secret.copy_from_slice(&buf[..RecoverySecret::LEN]);
            Ok(RecoverySecret::from_bytes(&mut secret))
        } else {
            Err(Error::OpenFailed)
        }
    }
}

impl ServicePrivateKey {
    /// The HPKE receiver context for an envelope of this key's HPKE suite.
    fn hpke_receiver(&self, enc: &[u8], info: &[u8]) -> Result<hpke::ReceiverContext, Error> {
        let p = provider();
        if let Some(sk) = self.p256_agreement() {
            let enc = <&[u8; hpke::ENC_LEN]>::try_from(enc).map_err(|_| Error::OpenFailed)?;
            // An invalid encapsulated key fails here, before any symmetric work.
            crate::crypto::probe::private_key_op();
            hpke::setup_base_r(p, enc, sk, info).map_err(|_| Error::OpenFailed)
        } else if let Some(sk) = self.xwing() {
            let enc = <&[u8; xwing::ENC_LEN]>::try_from(enc).map_err(|_| Error::OpenFailed)?;
            // Decapsulation never fails (ML-KEM rejects implicitly): a tampered
            // encapsulation yields a key the AEAD refuses.
            crate::crypto::probe::private_key_op();
            hpke::setup_base_r_xwing(p, enc, sk, info).map_err(|_| Error::OpenFailed)
        } else {
            Err(Error::OpenFailed)
        }
    }
}

/// `a || b` in `buf`, or `None` if it does not fit.
fn concat_into<'a>(buf: &'a mut [u8], a: &[u8], b: &[u8]) -> Option<&'a [u8]> {
    let total = a.len().checked_add(b.len())?;
    let out = buf.get_mut(..total)?;
    let (head, tail) = out.split_at_mut(a.len());
    head.copy_from_slice(a);
    tail.copy_from_slice(b);
    Some(out)
}
