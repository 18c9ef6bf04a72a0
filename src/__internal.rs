//! Not part of the API: narrow doors into crate-private code for the vector tests, fuzz
//! targets and benchmarks, so that they exercise exactly the code paths the crate uses.
//! Anything here may change in any release.

use crate::crypto::hpke;
use crate::crypto::provider::{provider, RSA_MAX_BYTES};
use crate::keys::public::PublicKind;
use crate::{Error, ServicePrivateKey, ServicePublicKey};

/// (private-key operations, AEAD opens) performed by `open` on this thread so far.
pub fn open_probe_counts() -> (u64, u64) {
    crate::crypto::probe::counts()
}

/// The name of the compiled crypto provider.
pub fn provider_name() -> &'static str {
    provider().name()
}

/// AES-256-GCM open through the provider; `None` on any failure.
pub fn aes256gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ct_and_tag: &[u8],
) -> Option<Vec<u8>> {
    let mut buf = ct_and_tag.to_vec();
    let pt = provider().aes256gcm_open(key, nonce, aad, &mut buf).ok()?;
    Some(pt.to_vec())
}

/// AES-256-GCM seal through the provider.
pub fn aes256gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Option<Vec<u8>> {
    let mut buf = pt.to_vec();
    provider().aes256gcm_seal(key, nonce, aad, &mut buf).ok()?;
    Some(buf)
}

/// HKDF-SHA256 as HPKE computes it: extract with the provider's HMAC, expand with its
/// HKDF. `None` when `len` exceeds 255 * 32.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Option<Vec<u8>> {
    let prk = provider().hmac_sha256(salt, &[ikm]);
    let mut out = vec![0u8; len];
    provider()
        .hkdf_sha256_expand(&prk, &[info], &mut out)
        .ok()?;
    Some(out)
}

/// Static ECDH with a peer point given as raw SEC1 bytes, as envelopes and requests carry
/// them (uncompressed only).
pub fn ecdh_p256_raw(scalar: &[u8; 32], peer: &[u8]) -> Option<[u8; 32]> {
    let peer = <&[u8; 65]>::try_from(peer).ok()?;
    let sk = provider().p256_agreement_from_scalar(scalar).ok()?;
    sk.agree(peer).ok().map(|s| *s)
}

/// Static ECDH with a peer key given as SubjectPublicKeyInfo DER, imported the way
/// service public keys are.
pub fn ecdh_p256_spki(scalar: &[u8; 32], spki_der: &[u8]) -> Option<[u8; 32]> {
    let pk = ServicePublicKey::from_spki_der(spki_der).ok()?;
    match pk.kind() {
        PublicKind::P256(point) => ecdh_p256_raw(scalar, point),
        PublicKind::Rsa(_) | PublicKind::XWing(_) => None,
    }
}

/// What the X-Wing KEM and HPKE's key schedule compute for one hpke-pq vector, through
/// the code envelopes use.
pub struct XWingHpkeVector {
    /// `DeriveKeyPair(ikmR)`: the seed (the private key).
    pub sk_r: [u8; 32],
    /// Its public key.
    pub pk_r: Vec<u8>,
    /// `Encap(pkR)` with `ikmE` as its randomness.
    pub enc: Vec<u8>,
    /// The KEM's shared secret (the same from `Encap` and from `Decap(enc)`, or `None`
    /// if they differ).
    pub shared_secret: Option<[u8; 32]>,
    /// The key schedule's AEAD key.
    pub key: [u8; 32],
    /// Its base nonce.
    pub base_nonce: [u8; 12],
    /// The exports asked for, in order.
    pub exports: Vec<Vec<u8>>,
}

/// Runs one hpke-pq X-Wing vector: `DeriveKeyPair(ikm_r)`, `Encap` with `ikm_e`,
/// `Decap`, then the key schedule for `suite_id` (which names the vector's AEAD) with
/// `info`, and the given exports. `None` if an input has the wrong length.
pub fn xwing_hpke_vector(
    ikm_r: &[u8],
    ikm_e: &[u8],
    suite_id: &[u8],
    info: &[u8],
    exports: &[(&[u8], usize)],
) -> Option<XWingHpkeVector> {
    use crate::crypto::xwing::{self, Randomness, XWingPrivate};
    let p = provider();
    let sk = XWingPrivate::derive(ikm_r);
    let ikm_e = <&[u8; xwing::ENCAP_RANDOMNESS_LEN]>::try_from(ikm_e).ok()?;
    let (enc, ss_sender) = xwing::encap(p, sk.public_key(), Randomness::Given(ikm_e)).ok()?;
    let ss_receiver = sk.decap(&enc);
    let suite_id = <&hpke::SuiteId>::try_from(suite_id).ok()?;
    let schedule = hpke::key_schedule_for_vectors(p, suite_id, &ss_sender, info, exports).ok()?;
    Some(XWingHpkeVector {
        sk_r: *sk.seed(),
        pk_r: sk.public_key().to_vec(),
        enc: enc.to_vec(),
        shared_secret: (*ss_sender == *ss_receiver).then_some(*ss_sender),
        key: schedule.key,
        base_nonce: schedule.base_nonce,
        exports: schedule.exports,
    })
}

/// What the X-Wing KEM computes for one draft-connolly-cfrg-xwing-kem vector.
pub struct XWingKemVector {
    /// The public key the seed expands to.
    pub pk: Vec<u8>,
    /// `Encap` with the given randomness.
    pub ct: Vec<u8>,
    /// The shared secret from `Encap`.
    pub ss_encap: [u8; 32],
    /// The shared secret from `Decap(ct)`.
    pub ss_decap: [u8; 32],
}

/// The X-Wing KEM alone, from a 32-byte seed and 64 bytes of encapsulation randomness.
/// `None` for inputs of the wrong length.
pub fn xwing_kem(seed: &[u8], eseed: &[u8]) -> Option<XWingKemVector> {
    use crate::crypto::xwing::{self, Randomness, XWingPrivate};
    let sk = XWingPrivate::from_seed(<&[u8; xwing::SEED_LEN]>::try_from(seed).ok()?);
    let eseed = <&[u8; xwing::ENCAP_RANDOMNESS_LEN]>::try_from(eseed).ok()?;
    let (enc, ss) = xwing::encap(provider(), sk.public_key(), Randomness::Given(eseed)).ok()?;
    let ss_d = sk.decap(&enc);
    Some(XWingKemVector {
        pk: sk.public_key().to_vec(),
        ct: enc.to_vec(),
        ss_encap: *ss,
        ss_decap: *ss_d,
    })
}

/// RSA-OAEP (SHA-256) decryption with a PKCS#8 key imported the way service keys are.
///
/// # Errors
/// [`Error::Unsupported`] in a build without constant-time RSA; [`Error::OpenFailed`]
/// for any decryption failure; [`Error::Key`] for a key the import refuses.
pub fn rsa_oaep_decrypt(
    pkcs8_der: &[u8],
    ciphertext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, Error> {
    let key = ServicePrivateKey::from_pkcs8_der(pkcs8_der)?;
    let decryptor = key.rsa_decryptor()?.ok_or(Error::OpenFailed)?;
    if Some(ciphertext.len()) != key.rsa_modulus_len() {
        return Err(Error::OpenFailed);
    }
    let mut out = [0u8; RSA_MAX_BYTES];
    let n = decryptor
        .decrypt(ciphertext, label, &mut out)
        .map_err(|_| Error::OpenFailed)?;
    out.get(..n).map(<[u8]>::to_vec).ok_or(Error::OpenFailed)
}

/// ECDSA P-256 / SHA-256 verification of a fixed-size `r || s` signature.
pub fn ecdsa_p256_verify(public: &[u8; 65], msg: &[u8], sig: &[u8; 64]) -> bool {
    provider().ecdsa_p256_verify(public, msg, sig).is_ok()
}

/// `DeriveKeyPair(ikm)`'s public key (RFC 9180 §7.1.3).
pub fn hpke_derive_public_key(ikm: &[u8]) -> Option<[u8; 65]> {
    hpke::derive_key_pair(provider(), ikm)
        .ok()
        .map(|k| *k.public_key())
}

/// An HPKE sender context with a derived ephemeral key.
pub struct HpkeSender(hpke::SenderContext);

/// An HPKE receiver context.
pub struct HpkeReceiver(hpke::ReceiverContext);

/// `SetupBaseS` with `skE = DeriveKeyPair(ikm_e)`.
pub fn hpke_setup_sender(
    pk_r: &[u8; 65],
    info: &[u8],
    ikm_e: &[u8],
) -> Option<([u8; 65], HpkeSender)> {
    hpke::setup_base_s(provider(), pk_r, info, hpke::Ephemeral::Derived(ikm_e))
        .ok()
        .map(|(enc, ctx)| (enc, HpkeSender(ctx)))
}

/// `SetupBaseR` with `skR = DeriveKeyPair(ikm_r)`.
pub fn hpke_setup_receiver(ikm_r: &[u8], enc: &[u8; 65], info: &[u8]) -> Option<HpkeReceiver> {
    let sk = hpke::derive_key_pair(provider(), ikm_r).ok()?;
    hpke::setup_base_r(provider(), enc, sk.as_ref(), info)
        .ok()
        .map(HpkeReceiver)
}

impl HpkeSender {
    /// Seals the next message.
    pub fn seal(&mut self, aad: &[u8], pt: &[u8]) -> Option<Vec<u8>> {
        let mut buf = pt.to_vec();
        self.0.seal(provider(), aad, &mut buf).ok()?;
        Some(buf)
    }

    /// Exports a secret.
    pub fn export(&self, exporter_context: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.0.export(provider(), exporter_context, &mut out).ok()?;
        Some(out)
    }
}

impl HpkeReceiver {
    /// Opens the next message.
    pub fn open(&mut self, aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
        let mut buf = ct.to_vec();
        let pt = self.0.open(provider(), aad, &mut buf).ok()?;
        Some(pt.to_vec())
    }

    /// Exports a secret.
    pub fn export(&self, exporter_context: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.0.export(provider(), exporter_context, &mut out).ok()?;
        Some(out)
    }
}

/// One function per fuzz target: each decodes untrusted input, checks that what is
/// accepted re-encodes to the same bytes, and otherwise only requires a typed error.
/// A panic here is a bug.
pub mod fuzz {
    #[cfg(feature = "client")]
    use crate::client::__decode_state;
    #[cfg(feature = "service")]
    use crate::service::{blocking::RecoveryService, RequestContext};
    use crate::{
        Binding, Envelope, EnvelopeRegistration, RecoveryRequest, RecoveryResponse,
        ServicePrivateKey, ServicePublicKey, SignedKeyDocument, SigningKey, VerifyingKey,
    };

    /// Binary envelopes: accepted input re-encodes byte for byte, in both forms.
    pub fn envelope_binary(data: &[u8]) {
        if let Ok(e) = Envelope::from_bytes(data) {
            assert_eq!(
                e.as_bytes(),
                data,
                "accepted envelope re-encodes differently"
            );
            assert_eq!(Envelope::from_text(&e.to_text()).ok().as_ref(), Some(&e));
        }
    }

    /// Text envelopes: accepted input re-encodes character for character.
    pub fn envelope_text(data: &[u8]) {
        if let Ok(s) = core::str::from_utf8(data) {
            if let Ok(e) = Envelope::from_text(s) {
                assert_eq!(e.to_text(), s, "accepted text re-encodes differently");
            }
        }
    }

    /// Any input, opened with fixed service keys: a typed error or a secret, never a panic.
    pub fn service_open(keys: &[ServicePrivateKey], binding: &Binding, data: &[u8]) {
        if let Ok(e) = Envelope::from_bytes(data) {
            for k in keys {
                let _ = k.open(&e, binding);
                let _ = k.open(&e, e.binding());
            }
        }
    }

    /// Recovery requests and envelope registrations, through the decoders and then the
    /// whole service handler.
    #[cfg(feature = "service")]
    pub fn request_json(service: &RecoveryService, data: &[u8]) {
        if let Ok(r) = RecoveryRequest::from_json(data) {
            assert_eq!(r.to_json(), data, "accepted request re-encodes differently");
        }
        let _ = service.handle_json(data, &RequestContext::default());
        let _ = service.register_envelope_json(data, &RequestContext::default());
    }

    /// Recovery responses and envelope registrations.
    pub fn response_json(data: &[u8]) {
        if let Ok(r) = RecoveryResponse::from_json(data) {
            assert_eq!(
                r.to_json(),
                data,
                "accepted response re-encodes differently"
            );
        }
        if let Ok(r) = EnvelopeRegistration::from_json(data) {
            assert_eq!(
                r.to_json(),
                data,
                "accepted registration re-encodes differently"
            );
        }
    }

    /// Signed key documents, verified under a fixed pinned key.
    pub fn key_document(pinned: &VerifyingKey, data: &[u8]) {
        if let Ok(s) = core::str::from_utf8(data) {
            let _ = SignedKeyDocument::new(s).verify(pinned, "contoso", 1_790_000_000, 0);
        }
    }

    /// Stored containers: accepted state re-encodes byte for byte.
    #[cfg(feature = "client")]
    pub fn container_state(data: &[u8]) {
        if let Ok(again) = __decode_state(data) {
            assert_eq!(
                again, data,
                "accepted container state re-encodes differently"
            );
        }
    }

    /// Key import: PKCS#8 and SubjectPublicKeyInfo, DER and PEM.
    pub fn key_import(data: &[u8]) {
        let _ = ServicePrivateKey::from_pkcs8_der(data);
        if let Ok(k) = ServicePublicKey::from_spki_der(data) {
            assert_eq!(k.to_spki_der(), data, "accepted SPKI is not canonical");
        }
        let _ = SigningKey::from_pkcs8_der(data);
        let _ = VerifyingKey::from_spki_der(data);
        if let Ok(s) = core::str::from_utf8(data) {
            let _ = ServicePrivateKey::from_pkcs8_pem(s);
            let _ = ServicePublicKey::from_pem(s);
            let _ = SigningKey::from_pkcs8_pem(s);
        }
    }
}
