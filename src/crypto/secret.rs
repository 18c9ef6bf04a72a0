//! The recovery secret: 256 random bits that unlock a container's recovery protector.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::provider::provider;
use crate::error::Error;

/// A 256-bit recovery secret.
///
/// Wiped from memory when dropped, never printed (its `Debug` shows `[redacted]`), not
/// `Clone` and not serializable; equality is constant-time. Reach the bytes only through
/// [`RecoverySecret::expose_secret`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoverySecret([u8; RecoverySecret::LEN]);

impl RecoverySecret {
    /// Length of the secret in bytes.
    pub const LEN: usize = 32;

    /// A fresh secret from the crypto provider's random source.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the platform's random source fails.
    pub fn generate() -> Result<Self, Error> {
        let mut s = RecoverySecret([0u8; Self::LEN]);
        provider()
            .fill_random(&mut s.0)
            .map_err(|_| Error::Crypto)?;
        Ok(s)
    }

    /// A secret drawn from `rng`: for known-answer tests and deterministic vectors.
    pub fn generate_with_rng<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut s = RecoverySecret([0u8; Self::LEN]);
        rng.fill_bytes(&mut s.0);
        s
    }

    /// Takes ownership of secret bytes; the caller's copy is wiped.
    pub fn from_bytes(bytes: &mut [u8; Self::LEN]) -> Self {
        let s = RecoverySecret(*bytes);
        bytes.zeroize();
        s
    }

    /// The secret bytes. Named so that every use is easy to find in review.
    pub fn expose_secret(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl ConstantTimeEq for RecoverySecret {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for RecoverySecret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for RecoverySecret {}

impl fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoverySecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use static_assertions::assert_not_impl_any;

    assert_not_impl_any!(RecoverySecret: Clone, Copy, serde::Serialize, fmt::Display);

    #[test]
    fn debug_is_redacted() {
        let s = RecoverySecret::from_bytes(&mut [7u8; 32]);
        assert_eq!(format!("{s:?}"), "RecoverySecret([redacted])");
    }

    #[test]
    fn from_bytes_wipes_the_source_and_compares_by_value() {
        let mut raw = [9u8; 32];
        let a = RecoverySecret::from_bytes(&mut raw);
        assert_eq!(raw, [0u8; 32]);
        let b = RecoverySecret::from_bytes(&mut [9u8; 32]);
        let c = RecoverySecret::from_bytes(&mut [8u8; 32]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(
            RecoverySecret::generate().unwrap(),
            RecoverySecret::generate().unwrap()
        );
    }
}

/// Every secret-bearing public type: no `Clone`, no `Serialize`, no `Display`.
#[cfg(test)]
mod secret_types {
    use static_assertions::assert_not_impl_any;

    use crate::client::{PendingRecovery, Pin};
    use crate::{ServicePrivateKey, SigningKey};

    assert_not_impl_any!(ServicePrivateKey: Clone, serde::Serialize, core::fmt::Display);
    assert_not_impl_any!(SigningKey: Clone, serde::Serialize, core::fmt::Display);
    assert_not_impl_any!(Pin: Clone, serde::Serialize, core::fmt::Display);
    assert_not_impl_any!(PendingRecovery: Clone, serde::Serialize, core::fmt::Display);
}
