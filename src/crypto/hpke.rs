//! RFC 9180 HPKE, base mode, for exactly two suites: DHKEM(P-256, HKDF-SHA256) or X-Wing
//! (draft-ietf-hpke-pq, KEM 0x647a), each with HKDF-SHA256 and AES-256-GCM (KEM ids
//! 0x0010 and 0x647a, KDF 0x0001, AEAD 0x0002). Envelopes and recovery responses both
//! seal through this module; the RFC's vectors test the first, the hpke-pq vectors the
//! second.
//!
//! Sender and receiver contexts are different types: a sender can only seal, a receiver
//! can only open.

use zeroize::Zeroizing;

use crate::crypto::provider::{CryptoProvider, Failure, P256Agreement, Secret32};
use crate::crypto::xwing::{self, XWingPrivate};

/// The length of an encapsulated key (an uncompressed P-256 point), `Nenc`.
pub(crate) const ENC_LEN: usize = 65;

const KEM_SUITE_ID: &[u8] = b"KEM\x00\x10";
/// The key schedule's `suite_id` for each KEM, with HKDF-SHA256 and AES-256-GCM.
pub(crate) type SuiteId = [u8; 10];
const HPKE_SUITE_ID: &SuiteId = b"HPKE\x00\x10\x00\x01\x00\x02";
const XWING_SUITE_ID: &SuiteId = b"HPKE\x64\x7a\x00\x01\x00\x02";
const MODE_BASE: u8 = 0x00;
const NONCE_LEN: usize = 12;

/// RFC 9180 §4: `LabeledExtract`. An empty salt is HMAC's all-zero key, as in RFC 5869.
fn labeled_extract(
    p: &dyn CryptoProvider,
    salt: &[u8],
    suite_id: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Secret32 {
    p.hmac_sha256(salt, &[b"HPKE-v1", suite_id, label, ikm])
}

/// RFC 9180 §4: `LabeledExpand`, filling `out`.
fn labeled_expand(
    p: &dyn CryptoProvider,
    prk: &[u8; 32],
    suite_id: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), Failure> {
    let len = u16::try_from(out.len()).map_err(|_| Failure)?.to_be_bytes();
    p.hkdf_sha256_expand(prk, &[&len, b"HPKE-v1", suite_id, label, info], out)
}

/// RFC 9180 §4.1: `ExtractAndExpand` with `kem_context = enc || pkRm`.
fn extract_and_expand(
    p: &dyn CryptoProvider,
    dh: &[u8; 32],
    enc: &[u8; ENC_LEN],
    pk_r: &[u8; 65],
) -> Result<Secret32, Failure> {
    let eae_prk = labeled_extract(p, b"", KEM_SUITE_ID, b"eae_prk", dh);
    let mut kem_context = [0u8; ENC_LEN + 65];
    kem_context[..ENC_LEN].copy_from_slice(enc);
    kem_context[ENC_LEN..].copy_from_slice(pk_r);
    let mut shared = Zeroizing::new([0u8; 32]);
    labeled_expand(
        p,
        &eae_prk,
        KEM_SUITE_ID,
        b"shared_secret",
        &kem_context,
        &mut shared[..],
    )?;
    Ok(shared)
}

/// RFC 9180 §7.1.3: `DeriveKeyPair` for P-256 (rejection sampling, bitmask 0xff).
pub(crate) fn derive_key_pair(
    p: &dyn CryptoProvider,
    ikm: &[u8],
) -> Result<Box<dyn P256Agreement>, Failure> {
    let dkp_prk = labeled_extract(p, b"", KEM_SUITE_ID, b"dkp_prk", ikm);
    for counter in 0..=u8::MAX {
        let mut candidate = Zeroizing::new([0u8; 32]);
        labeled_expand(
            p,
            &dkp_prk,
            KEM_SUITE_ID,
            b"candidate",
            &[counter],
            &mut candidate[..],
        )?;
        if let Ok(key) = p.p256_agreement_from_scalar(&candidate) {
            return Ok(key);
        }
    }
    Err(Failure)
}

/// Where the sender's ephemeral key comes from.
pub(crate) enum Ephemeral<'a> {
    /// A fresh key from the provider, used once and dropped.
    Fresh,
    /// `DeriveKeyPair(ikm)`: deterministic, for known-answer tests and vectors.
    Derived(&'a [u8]),
}

/// The key schedule's output (RFC 9180 §5.1).
struct Context {
    key: Secret32,
    base_nonce: [u8; NONCE_LEN],
    /// The key schedule's `secret` and context, kept so that the exporter secret is
    /// derived only if something is exported (single-shot envelopes never do).
    secret: Secret32,
    key_schedule_context: [u8; 65],
    suite_id: SuiteId,
    seq: u64,
}

/// `psk_id_hash` for base mode (an empty `psk_id`): the same for every context of a
/// suite, so the two suites' are computed once.
fn psk_id_hash(p: &dyn CryptoProvider, suite_id: &SuiteId) -> [u8; 32] {
    use std::sync::OnceLock;
    static P256: OnceLock<[u8; 32]> = OnceLock::new();
    static XWING: OnceLock<[u8; 32]> = OnceLock::new();
    let compute = || *labeled_extract(p, b"", suite_id, b"psk_id_hash", b"");
    if suite_id == HPKE_SUITE_ID {
        *P256.get_or_init(compute)
    } else if suite_id == XWING_SUITE_ID {
        *XWING.get_or_init(compute)
    } else {
        compute()
    }
}

impl Context {
    fn new(
        p: &dyn CryptoProvider,
        suite_id: &SuiteId,
        shared_secret: &[u8; 32],
        info: &[u8],
    ) -> Result<Self, Failure> {
        let psk_id_hash = psk_id_hash(p, suite_id);
        let info_hash = labeled_extract(p, b"", suite_id, b"info_hash", info);
        let mut ksc = [0u8; 65];
        ksc[0] = MODE_BASE;
        ksc[1..33].copy_from_slice(&psk_id_hash[..]);
        ksc[33..].copy_from_slice(&info_hash[..]);
        let secret = labeled_extract(p, shared_secret, suite_id, b"secret", b"");
        let mut key = Zeroizing::new([0u8; 32]);
        let mut base_nonce = [0u8; NONCE_LEN];
        labeled_expand(p, &secret, suite_id, b"key", &ksc, &mut key[..])?;
        labeled_expand(p, &secret, suite_id, b"base_nonce", &ksc, &mut base_nonce)?;
        Ok(Context {
            key,
            base_nonce,
            secret,
            key_schedule_context: ksc,
            suite_id: *suite_id,
            seq: 0,
        })
    }

    /// RFC 9180 §5.2: `ComputeNonce`, then advance the sequence number.
    fn next_nonce(&mut self) -> Result<[u8; NONCE_LEN], Failure> {
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(Failure)?;
        Ok(nonce)
    }

    /// RFC 9180 §5.3: `Export`.
    fn export(
        &self,
        p: &dyn CryptoProvider,
        exporter_context: &[u8],
        out: &mut [u8],
    ) -> Result<(), Failure> {
        let mut exporter_secret = Zeroizing::new([0u8; 32]);
        let ksc = &self.key_schedule_context;
        labeled_expand(
            p,
            &self.secret,
            &self.suite_id,
            b"exp",
            ksc,
            &mut exporter_secret[..],
        )?;
        labeled_expand(
            p,
            &exporter_secret,
            &self.suite_id,
            b"sec",
            exporter_context,
            out,
        )
    }
}

/// A sender's context: seals messages in sequence.
pub(crate) struct SenderContext(Context);

impl SenderContext {
    /// Encrypts `in_out` in place, appending the tag.
    pub(crate) fn seal(
        &mut self,
        p: &dyn CryptoProvider,
        aad: &[u8],
        in_out: &mut Vec<u8>,
    ) -> Result<(), Failure> {
        let nonce = self.0.next_nonce()?;
        p.aes256gcm_seal(&self.0.key, &nonce, aad, in_out)
    }

    pub(crate) fn export(
        &self,
        p: &dyn CryptoProvider,
        exporter_context: &[u8],
        out: &mut [u8],
    ) -> Result<(), Failure> {
        self.0.export(p, exporter_context, out)
    }
}

/// A receiver's context: opens messages in sequence.
pub(crate) struct ReceiverContext(Context);

impl ReceiverContext {
    /// Verifies and decrypts `in_out` (ciphertext and tag) in place.
    pub(crate) fn open<'a>(
        &mut self,
        p: &dyn CryptoProvider,
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], Failure> {
        let nonce = self.0.next_nonce()?;
        p.aes256gcm_open(&self.0.key, &nonce, aad, in_out)
    }

    pub(crate) fn export(
        &self,
        p: &dyn CryptoProvider,
        exporter_context: &[u8],
        out: &mut [u8],
    ) -> Result<(), Failure> {
        self.0.export(p, exporter_context, out)
    }
}

/// RFC 9180 §5.1.1: `SetupBaseS`. Returns the encapsulated key and the sender context.
pub(crate) fn setup_base_s(
    p: &dyn CryptoProvider,
    pk_r: &[u8; 65],
    info: &[u8],
    ephemeral: Ephemeral<'_>,
) -> Result<([u8; ENC_LEN], SenderContext), Failure> {
    let (enc, dh) = match ephemeral {
        Ephemeral::Fresh => p.p256_ephemeral_agree(pk_r)?,
        Ephemeral::Derived(ikm) => {
            let sk_e = derive_key_pair(p, ikm)?;
            (*sk_e.public_key(), sk_e.agree(pk_r)?)
        }
    };
    let shared = extract_and_expand(p, &dh, &enc, pk_r)?;
    Ok((
        enc,
        SenderContext(Context::new(p, HPKE_SUITE_ID, &shared, info)?),
    ))
}

/// RFC 9180 §5.1.1: `SetupBaseR`. Fails on an invalid encapsulated key.
pub(crate) fn setup_base_r(
    p: &dyn CryptoProvider,
    enc: &[u8; ENC_LEN],
    sk_r: &dyn P256Agreement,
    info: &[u8],
) -> Result<ReceiverContext, Failure> {
    let dh = sk_r.agree(enc)?;
    let shared = extract_and_expand(p, &dh, enc, sk_r.public_key())?;
    Ok(ReceiverContext(Context::new(
        p,
        HPKE_SUITE_ID,
        &shared,
        info,
    )?))
}

/// `SetupBaseS` with X-Wing. Its shared secret enters the key schedule as it is: a
/// hybrid KEM's output is already a uniform key (draft-ietf-hpke-pq).
pub(crate) fn setup_base_s_xwing(
    p: &dyn CryptoProvider,
    pk_r: &[u8; xwing::PUBLIC_KEY_LEN],
    info: &[u8],
    randomness: xwing::Randomness<'_>,
) -> Result<(Box<[u8; xwing::ENC_LEN]>, SenderContext), Failure> {
    let (enc, shared) = xwing::encap(p, pk_r, randomness)?;
    Ok((
        enc,
        SenderContext(Context::new(p, XWING_SUITE_ID, &shared, info)?),
    ))
}

/// `SetupBaseR` with X-Wing.
pub(crate) fn setup_base_r_xwing(
    p: &dyn CryptoProvider,
    enc: &[u8; xwing::ENC_LEN],
    sk_r: &XWingPrivate,
    info: &[u8],
) -> Result<ReceiverContext, Failure> {
    let shared = sk_r.decap(enc);
    Ok(ReceiverContext(Context::new(
        p,
        XWING_SUITE_ID,
        &shared,
        info,
    )?))
}

/// What the key schedule derives, for the vectors.
pub(crate) struct Schedule {
    pub(crate) key: [u8; 32],
    pub(crate) base_nonce: [u8; NONCE_LEN],
    /// The exporter's output for each context asked for.
    pub(crate) exports: Vec<Vec<u8>>,
}

/// The key schedule alone, for any `suite_id`. For the hpke-pq vectors, whose X-Wing
/// suite uses another AEAD.
pub(crate) fn key_schedule_for_vectors(
    p: &dyn CryptoProvider,
    suite_id: &SuiteId,
    shared_secret: &[u8; 32],
    info: &[u8],
    exports: &[(&[u8], usize)],
) -> Result<Schedule, Failure> {
    let ctx = Context::new(p, suite_id, shared_secret, info)?;
    let mut out = Vec::with_capacity(exports.len());
    for (context, len) in exports {
        let mut v = vec![0u8; *len];
        ctx.export(p, context, &mut v)?;
        out.push(v);
    }
    Ok(Schedule {
        key: *ctx.key,
        base_nonce: ctx.base_nonce,
        exports: out,
    })
}
