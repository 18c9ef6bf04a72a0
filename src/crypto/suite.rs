//! The suite registry: which key type and algorithms seal an envelope.

use core::fmt;
use core::str::FromStr;

/// A sealing suite, identified on the wire by a 16-bit registry value (docs/FORMAT.md
/// lists the registry, including the values reserved for later suites).
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// RFC 9180 HPKE base mode: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
    /// The default.
    HpkeP256Sha256Aes256Gcm,
    /// RSA-OAEP (SHA-256, MGF1-SHA-256) wrapping a fresh AES-256-GCM key; for
    /// deployments whose service key is RSA (2048, 3072 or 4096 bits).
    RsaOaepSha256Aes256Gcm,
    /// HPKE base mode with the X-Wing hybrid KEM (ML-KEM-768 + X25519, KEM id 0x647a as
    /// in draft-ietf-hpke-pq), HKDF-SHA256, AES-256-GCM: an envelope recorded today stays
    /// closed to a future quantum computer as long as either ML-KEM-768 or X25519 holds.
    HpkeXWingSha256Aes256Gcm,
}

impl Suite {
    /// Every suite this build knows.
    pub const ALL: [Suite; 3] = [
        Suite::HpkeP256Sha256Aes256Gcm,
        Suite::RsaOaepSha256Aes256Gcm,
        Suite::HpkeXWingSha256Aes256Gcm,
    ];

    /// The registry value written in envelopes.
    pub const fn id(self) -> u16 {
        match self {
            Suite::HpkeP256Sha256Aes256Gcm => 0x0001,
            Suite::RsaOaepSha256Aes256Gcm => 0x0002,
            Suite::HpkeXWingSha256Aes256Gcm => 0x0010,
        }
    }

    /// The suite for a registry value, if this build knows it.
    pub const fn from_id(id: u16) -> Option<Suite> {
        match id {
            0x0001 => Some(Suite::HpkeP256Sha256Aes256Gcm),
            0x0002 => Some(Suite::RsaOaepSha256Aes256Gcm),
            0x0010 => Some(Suite::HpkeXWingSha256Aes256Gcm),
            _ => None,
        }
    }

    /// The short name used by the CLI and in documents.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::HpkeP256Sha256Aes256Gcm => "hpke-p256",
            Suite::RsaOaepSha256Aes256Gcm => "rsa-oaep",
            Suite::HpkeXWingSha256Aes256Gcm => "hpke-xwing",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not a suite's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSuiteName;

impl fmt::Display for UnknownSuiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown suite name (expected hpke-p256, rsa-oaep or hpke-xwing)")
    }
}

impl std::error::Error for UnknownSuiteName {}

impl FromStr for Suite {
    type Err = UnknownSuiteName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Suite::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or(UnknownSuiteName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_id(s.id()), Some(s));
            assert_eq!(s.name().parse::<Suite>(), Ok(s));
        }
        assert_eq!(Suite::from_id(0), None);
        assert_eq!(Suite::from_id(0x0003), None);
        assert_eq!(
            Suite::from_id(0x0010),
            Some(Suite::HpkeXWingSha256Aes256Gcm)
        );
        assert!("rsa".parse::<Suite>().is_err());
    }
}
