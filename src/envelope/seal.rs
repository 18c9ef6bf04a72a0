//! Sealing: what a device does with the service's public key. No private key is needed
//! or reachable here.

use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{CryptoRng, OsRng, RngCore};
use zeroize::Zeroizing;

use super::{encode_header, Envelope, EnvelopeId, ENVELOPE_LABEL};
use crate::crypto::hpke::{self, Ephemeral};
use crate::crypto::provider::provider;
use crate::crypto::secret::RecoverySecret;
use crate::crypto::xwing::{self, Randomness};
use crate::envelope::binding::Binding;
use crate::error::Error;
use crate::keys::public::PublicKind;
use crate::keys::ServicePublicKey;

/// The RSA-OAEP label: separates our content-key wraps from any other use of the key.
pub(crate) const RSA_OAEP_LABEL: &str = "pin-recovery v1 rsa-oaep content key";
/// The RSA suite's AES-256-GCM nonce. The content key is fresh for every envelope and
/// used once, so a fixed nonce never repeats under one key.
pub(crate) const RSA_AEAD_NONCE: [u8; 12] = [0u8; 12];

/// How the randomness of a seal is drawn.
enum Draw<'a, R> {
    /// From the operating system, with the provider's fast single-use ephemeral key.
    System,
    /// Entirely from the caller's generator, so the output is reproducible.
    From(&'a mut R),
}

impl ServicePublicKey {
    /// Seals `secret` to this key, bound to `binding`, stamped with the current time.
    ///
    /// ```
    /// use pin_recovery::{Binding, RecoverySecret, ServicePrivateKey};
    ///
    /// let service_key = ServicePrivateKey::generate_p256()?;
    /// let binding = Binding::new("contoso", "alice", "laptop-7")?;
    /// let secret = RecoverySecret::generate()?;
    /// let envelope = service_key.public_key().seal(&secret, &binding)?;
    /// assert_eq!(envelope.key_id(), service_key.key_id());
    /// assert_eq!(service_key.open(&envelope, &binding)?, secret);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Crypto`] if the random source or a primitive fails.
    pub fn seal(&self, secret: &RecoverySecret, binding: &Binding) -> Result<Envelope, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.seal_at(secret, binding, now)
    }

    /// As [`ServicePublicKey::seal`], stamped with `created_at` (from an injected clock).
    pub(crate) fn seal_at(
        &self,
        secret: &RecoverySecret,
        binding: &Binding,
        created_at: u64,
    ) -> Result<Envelope, Error> {
        self.seal_inner::<OsRng>(secret, binding, created_at, Draw::System)
    }

    /// Seals with every random choice (envelope id, ephemeral key or content key, OAEP
    /// seed, X-Wing encapsulation randomness) drawn from `rng` and an explicit creation time: the same inputs give the
    /// same bytes. For test vectors; use [`ServicePublicKey::seal`] otherwise.
    ///
    /// # Errors
    /// As [`ServicePublicKey::seal`].
    pub fn seal_with_rng<R: RngCore + CryptoRng>(
        &self,
        secret: &RecoverySecret,
        binding: &Binding,
        created_at: u64,
        rng: &mut R,
    ) -> Result<Envelope, Error> {
        self.seal_inner(secret, binding, created_at, Draw::From(rng))
    }

    fn seal_inner<R: RngCore + CryptoRng>(
        &self,
        secret: &RecoverySecret,
        binding: &Binding,
        created_at: u64,
        mut draw: Draw<'_, R>,
    ) -> Result<Envelope, Error> {
        let p = provider();
        let mut id = [0u8; EnvelopeId::LEN];
        fill(&mut draw, &mut id)?;
        let header = encode_header(
            self.suite(),
            self.key_id(),
            EnvelopeId::from_bytes(id),
            binding,
            created_at,
        );
        let mut label_and_header = Vec::with_capacity(ENVELOPE_LABEL.len() + header.len());
        label_and_header.extend_from_slice(ENVELOPE_LABEL);
        label_and_header.extend_from_slice(&header);

        let mut ciphertext = Zeroizing::new(Vec::with_capacity(super::CIPHERTEXT_LEN));
        ciphertext.extend_from_slice(secret.expose_secret());
        match self.kind() {
            PublicKind::P256(pk_r) => {
                let ikm = Zeroizing::new({
                    let mut ikm = [0u8; 32];
                    if let Draw::From(rng) = &mut draw {
                        rng.fill_bytes(&mut ikm);
                    }
                    ikm
                });
                let ephemeral = match draw {
                    Draw::System => Ephemeral::Fresh,
                    Draw::From(_) => Ephemeral::Derived(&ikm[..]),
                };
                let (enc, mut ctx) = hpke::setup_base_s(p, pk_r, &label_and_header, ephemeral)
                    .map_err(|_| Error::Crypto)?;
                ctx.seal(p, b"", &mut ciphertext)
                    .map_err(|_| Error::Crypto)?;
                Ok(Envelope::assemble(header, &enc, &ciphertext)?)
            }
            PublicKind::Rsa(pk) => {
                let mut content_key = Zeroizing::new([0u8; 32]);
                fill(&mut draw, &mut content_key[..])?;
                let padding = rsa::Oaep::new_with_label::<rsa::sha2::Sha256, _>(RSA_OAEP_LABEL);
                let wrapped = match &mut draw {
                    Draw::System => pk.encrypt(&mut OsRng, padding, &content_key[..]),
                    Draw::From(rng) => pk.encrypt(*rng, padding, &content_key[..]),
                }
                .map_err(|_| Error::Crypto)?;
                p.aes256gcm_seal(
                    &content_key,
                    &RSA_AEAD_NONCE,
                    &label_and_header,
                    &mut ciphertext,
                )
                .map_err(|_| Error::Crypto)?;
                Ok(Envelope::assemble(header, &wrapped, &ciphertext)?)
            }
            PublicKind::XWing(pk_r) => {
                let mut eseed = Zeroizing::new([0u8; xwing::ENCAP_RANDOMNESS_LEN]);
                let randomness = match &mut draw {
                    Draw::System => Randomness::Fresh,
                    Draw::From(rng) => {
                        rng.fill_bytes(&mut eseed[..]);
                        Randomness::Given(&eseed)
                    }
                };
                let (enc, mut ctx) =
                    hpke::setup_base_s_xwing(p, pk_r, &label_and_header, randomness)
                        .map_err(|_| Error::Crypto)?;
                ctx.seal(p, b"", &mut ciphertext)
                    .map_err(|_| Error::Crypto)?;
                Ok(Envelope::assemble(header, &enc[..], &ciphertext)?)
            }
        }
    }
}

fn fill<R: RngCore + CryptoRng>(draw: &mut Draw<'_, R>, out: &mut [u8]) -> Result<(), Error> {
    match draw {
        Draw::System => provider().fill_random(out).map_err(|_| Error::Crypto),
        Draw::From(rng) => {
            rng.fill_bytes(out);
            Ok(())
        }
    }
}
