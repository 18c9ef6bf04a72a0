//! RFC 9180's own test vector for the envelope suite (base mode, DHKEM(P-256,
//! HKDF-SHA256), HKDF-SHA256, AES-256-GCM), through the HPKE code that envelopes and
//! recovery responses use: key derivation, encapsulation, all 257 encryptions in
//! sequence (sender and receiver) and the 3 exports.

mod common;

use common::{read_json, unhex, Tally};
use pin_recovery::__internal as internal;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct Suite {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    ikmR: String,
    ikmE: String,
    pkRm: String,
    pkEm: String,
    enc: String,
    // The next values are intermediate: a wrong one would change every ciphertext and
    // export below, which are checked.
    #[serde(rename = "skRm")]
    _sk_rm: String,
    #[serde(rename = "skEm")]
    _sk_em: String,
    #[serde(rename = "shared_secret")]
    _shared_secret: String,
    #[serde(rename = "key_schedule_context")]
    _key_schedule_context: String,
    #[serde(rename = "secret")]
    _secret: String,
    #[serde(rename = "key")]
    _key: String,
    #[serde(rename = "base_nonce")]
    _base_nonce: String,
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
    #[serde(rename = "nonce")]
    _nonce: String,
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

#[test]
fn rfc9180_base_p256_sha256_aes256gcm() {
    let all: Vec<serde_json::Value> = read_json("rfc9180/test-vectors.json");
    let ours: Vec<&serde_json::Value> = all
        .iter()
        .filter(|s| s["mode"] == 0 && s["kem_id"] == 0x10 && s["kdf_id"] == 1 && s["aead_id"] == 2)
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "the file holds exactly one entry for this suite"
    );
    let v: Suite = serde_json::from_value(ours[0].clone()).unwrap();
    assert_eq!((v.mode, v.kem_id, v.kdf_id, v.aead_id), (0, 0x10, 1, 2));

    let pk_r: [u8; 65] = unhex(&v.pkRm).try_into().unwrap();
    assert_eq!(
        internal::hpke_derive_public_key(&unhex(&v.ikmR)),
        Some(pk_r),
        "DeriveKeyPair(ikmR)"
    );
    assert_eq!(
        internal::hpke_derive_public_key(&unhex(&v.ikmE)).map(Vec::from),
        Some(unhex(&v.pkEm)),
        "DeriveKeyPair(ikmE)"
    );

    let info = unhex(&v.info);
    let (enc, mut sender) = internal::hpke_setup_sender(&pk_r, &info, &unhex(&v.ikmE)).unwrap();
    assert_eq!(enc.to_vec(), unhex(&v.enc), "enc");
    let mut receiver = internal::hpke_setup_receiver(&unhex(&v.ikmR), &enc, &info).unwrap();

    let mut tally = Tally::new("rfc9180 encryptions (mode 0, 0x0010, 0x0001, 0x0002)");
    for (seq, e) in v.encryptions.iter().enumerate() {
        let (aad, pt, ct) = (unhex(&e.aad), unhex(&e.pt), unhex(&e.ct));
        let sealed = sender.seal(&aad, &pt) == Some(ct.clone());
        // Each seal advanced the sender; the receiver opens in the same order.
        let opened = receiver.open(&aad, &ct) == Some(pt);
        tally.check(
            sealed && opened,
            seq,
            "sender ciphertext differs or receiver did not open",
        );
    }
    tally.finish(257);

    let mut tally = Tally::new("rfc9180 exports (mode 0, 0x0010, 0x0001, 0x0002)");
    for (i, x) in v.exports.iter().enumerate() {
        let want = Some(unhex(&x.exported_value));
        let ctx = unhex(&x.exporter_context);
        let same = sender.export(&ctx, x.len) == want && receiver.export(&ctx, x.len) == want;
        tally.check(same, i, "export differs");
    }
    tally.finish(3);
}

#[test]
fn rfc9180_receiver_refuses_a_tampered_ciphertext() {
    let all: Vec<serde_json::Value> = read_json("rfc9180/test-vectors.json");
    let v = all
        .iter()
        .find(|s| s["mode"] == 0 && s["kem_id"] == 0x10 && s["kdf_id"] == 1 && s["aead_id"] == 2)
        .unwrap();
    let v: Suite = serde_json::from_value(v.clone()).unwrap();
    let enc: [u8; 65] = unhex(&v.enc).try_into().unwrap();
    let mut receiver =
        internal::hpke_setup_receiver(&unhex(&v.ikmR), &enc, &unhex(&v.info)).unwrap();
    let mut ct = unhex(&v.encryptions[0].ct);
    ct[0] ^= 1;
    assert_eq!(receiver.open(&unhex(&v.encryptions[0].aad), &ct), None);
}
