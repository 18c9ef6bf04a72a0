//! The hybrid suite's KEM and key schedule against published vectors, through the code
//! X-Wing envelopes use:
//! - draft-connolly-cfrg-xwing-kem: seed → public key, (public key, eseed) → ciphertext
//!   and shared secret, and decapsulation back to the same secret (3 cases);
//! - draft-ietf-hpke-pq (-04), KEM 0x647a: `DeriveKeyPair(ikmR)`, `Encap` with `ikmE`,
//!   the shared secret, and for the HKDF-SHA256 entry the key schedule, all 10
//!   encryptions (the entry's AEAD is ChaCha20-Poly1305, so a dev-only ChaCha20-Poly1305
//!   seals with the key and nonces our key schedule derived) and all 5 exports.

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use common::{read_json, unhex, Tally};
use pin_recovery::__internal as internal;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XWingCase {
    seed: String,
    sk: String,
    pk: String,
    eseed: String,
    ct: String,
    ss: String,
}

#[test]
fn xwing_kem_draft_vectors() {
    let cases: Vec<XWingCase> = read_json("xwing/test-vectors.json");
    let mut tally = Tally::new("X-Wing KEM (draft-connolly-cfrg-xwing-kem)");
    for (i, c) in cases.iter().enumerate() {
        let Some(got) = internal::xwing_kem(&unhex(&c.seed), &unhex(&c.eseed)) else {
            tally.check(false, i, "inputs refused");
            continue;
        };
        let ss = unhex(&c.ss);
        tally.check(
            unhex(&c.sk) == unhex(&c.seed)
                && got.pk == unhex(&c.pk)
                && got.ct == unhex(&c.ct)
                && got.ss_encap.as_slice() == ss
                && got.ss_decap.as_slice() == ss,
            i,
            "public key, ciphertext or shared secret differs",
        );
    }
    tally.finish(3);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct HpkeSuite {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    suite_id: String,
    info: String,
    ikmR: String,
    ikmE: String,
    skRm: String,
    pkRm: String,
    enc: String,
    shared_secret: String,
    key: String,
    base_nonce: String,
    // Checked through every export below, which derive from it.
    #[serde(rename = "exporter_secret")]
    _exporter_secret: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    len: usize,
    exported_value: String,
}

fn nonce(base: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *base;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

#[test]
fn hpke_pq_xwing_vectors() {
    let all: Vec<serde_json::Value> = read_json("hpke-pq/test-vectors.json");
    let ours: Vec<HpkeSuite> = all
        .iter()
        .filter(|s| s["kem_id"] == 0x647a)
        .map(|s| serde_json::from_value(s.clone()).unwrap())
        .collect();
    assert_eq!(ours.len(), 2, "the file holds two X-Wing entries");

    let mut kem = Tally::new("hpke-pq KEM 0x647a: DeriveKeyPair, Encap, Decap");
    let mut encryptions = Tally::new("hpke-pq KEM 0x647a encryptions");
    let mut exports = Tally::new("hpke-pq KEM 0x647a exports");
    for v in &ours {
        assert_eq!((v.mode, v.kem_id), (0, 0x647a));
        let id = format!("(0x647a, 0x{:04x}, 0x{:04x})", v.kdf_id, v.aead_id);
        let export_inputs: Vec<(Vec<u8>, usize)> = v
            .exports
            .iter()
            .map(|x| (unhex(&x.exporter_context), x.len))
            .collect();
        let export_refs: Vec<(&[u8], usize)> = export_inputs
            .iter()
            .map(|(c, l)| (c.as_slice(), *l))
            .collect();
        let out = internal::xwing_hpke_vector(
            &unhex(&v.ikmR),
            &unhex(&v.ikmE),
            &unhex(&v.suite_id),
            &unhex(&v.info),
            &export_refs,
        )
        .expect("vector inputs have the KEM's lengths");
        kem.check(
            out.sk_r.as_slice() == unhex(&v.skRm)
                && out.pk_r == unhex(&v.pkRm)
                && out.enc == unhex(&v.enc)
                && out.shared_secret.map(Vec::from) == Some(unhex(&v.shared_secret)),
            &id,
            "skRm, pkRm, enc or shared_secret differs",
        );
        // The key schedule is HKDF-SHA256's; an entry with another KDF is not ours.
        if v.kdf_id != 0x0001 {
            for _ in &v.encryptions {
                encryptions.not_run("KDF is not HKDF-SHA256 (the hybrid suite's)");
            }
            for _ in &v.exports {
                exports.not_run("KDF is not HKDF-SHA256 (the hybrid suite's)");
            }
            continue;
        }
        assert_eq!(v.aead_id, 0x0003, "this entry's AEAD is ChaCha20-Poly1305");
        let schedule_ok = out.key.as_slice() == unhex(&v.key)
            && out.base_nonce.as_slice() == unhex(&v.base_nonce);
        let aead = ChaCha20Poly1305::new_from_slice(&out.key).unwrap();
        for (seq, e) in v.encryptions.iter().enumerate() {
            let n = nonce(&out.base_nonce, seq as u64);
            let (aad, pt) = (unhex(&e.aad), unhex(&e.pt));
            let sealed = aead
                .encrypt(
                    (&n).into(),
                    Payload {
                        msg: &pt,
                        aad: &aad,
                    },
                )
                .unwrap();
            encryptions.check(
                schedule_ok && n.as_slice() == unhex(&e.nonce) && sealed == unhex(&e.ct),
                format!("{id} #{seq}"),
                "key, nonce or ciphertext differs",
            );
        }
        for (i, (x, got)) in v.exports.iter().zip(&out.exports).enumerate() {
            exports.check(
                *got == unhex(&x.exported_value),
                format!("{id} #{i}"),
                "exported value differs",
            );
        }
    }
    kem.finish(2);
    encryptions.finish(20);
    exports.finish(10);
}
