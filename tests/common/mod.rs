//! Shared by the integration tests: hex, file paths and a strict tally of vector cases.
#![allow(dead_code)]

pub mod backends;
pub mod swtpm;
pub mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-vectors")
}

pub fn read_json<T: serde::de::DeserializeOwned>(relative: &str) -> T {
    let path = vectors_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixed service key from `test-vectors/keys/`.
pub fn service_key(name: &str) -> pin_recovery::ServicePrivateKey {
    let pem = std::fs::read_to_string(vectors_dir().join("keys").join(name)).unwrap();
    pin_recovery::ServicePrivateKey::from_pkcs8_pem(&pem).unwrap()
}

pub fn unhex(s: &str) -> Vec<u8> {
    base16ct::mixed::decode_vec(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

pub fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

/// Counts every case of a vector file: each one passes, fails, or is set aside with a
/// named reason. `finish` fails the test on any failure or on a count that does not
/// match the file's own.
#[derive(Default)]
pub struct Tally {
    name: String,
    passed: usize,
    not_run: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(name: &str) -> Self {
        Tally {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    pub fn check(&mut self, ok: bool, id: impl std::fmt::Display, what: &str) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("case {id}: {what}"));
        }
    }

    /// A case deliberately not run, with the reason (counted and printed).
    pub fn not_run(&mut self, reason: &str) {
        *self.not_run.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn finish(self, expected_total: usize) {
        let not_run: usize = self.not_run.values().sum();
        let total = self.passed + not_run + self.failures.len();
        println!(
            "{}: {} cases, {} passed, {} not run, {} failed",
            self.name,
            total,
            self.passed,
            not_run,
            self.failures.len()
        );
        for (reason, n) in &self.not_run {
            println!("  not run ({n}): {reason}");
        }
        assert!(
            self.failures.is_empty(),
            "{}: failures:\n{}",
            self.name,
            self.failures.join("\n")
        );
        assert_eq!(
            total, expected_total,
            "{}: every case must be counted",
            self.name
        );
    }
}
