//! What the device administrator decides: whether recovery is on, the PIN rules, the
//! attempt limit and the Argon2id cost.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A PIN. Wiped on drop, never printed, not `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl Pin {
    /// Wraps a PIN typed by the user.
    pub fn new(pin: impl Into<String>) -> Self {
        Pin(pin.into())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn chars(&self) -> core::str::Chars<'_> {
        self.0.chars()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// How a PIN policy treats one class of characters (as Windows Hello's PIN complexity
/// policy does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharRule {
    /// May appear.
    Allowed,
    /// Must appear at least once.
    Required,
    /// Must not appear.
    Blocked,
}

/// A class of PIN characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharClass {
    /// `0-9`.
    Digit,
    /// `a-z`.
    Lowercase,
    /// `A-Z`.
    Uppercase,
    /// ASCII punctuation and space.
    Special,
}

impl fmt::Display for CharClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CharClass::Digit => "digit",
            CharClass::Lowercase => "lowercase letter",
            CharClass::Uppercase => "uppercase letter",
            CharClass::Special => "special character",
        })
    }
}

/// Why a new PIN was refused by policy. Nothing is stored when this is returned.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinPolicyViolation {
    /// Shorter than the minimum.
    TooShort {
        /// The minimum length.
        min: usize,
    },
    /// Longer than the maximum.
    TooLong {
        /// The maximum length.
        max: usize,
    },
    /// A required class is missing.
    Missing(CharClass),
    /// A blocked class is present.
    Blocked(CharClass),
    /// A character outside printable ASCII.
    UnsupportedCharacter,
}

impl fmt::Display for PinPolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinPolicyViolation::TooShort { min } => {
                write!(f, "PIN must have at least {min} characters")
            }
            PinPolicyViolation::TooLong { max } => {
                write!(f, "PIN must have at most {max} characters")
            }
            PinPolicyViolation::Missing(c) => write!(f, "PIN must contain a {c}"),
            PinPolicyViolation::Blocked(c) => write!(f, "PIN must not contain a {c}"),
            PinPolicyViolation::UnsupportedCharacter => {
                f.write_str("PIN may only contain printable ASCII")
            }
        }
    }
}

/// The rules a PIN must meet.
///
/// The default is Windows Hello's: 6 to 127 characters, digits only (digits required;
/// lowercase, uppercase and special characters blocked), no history, no expiry.
///
/// # Examples
/// ```
/// use pin_recovery::client::{CharClass, Pin, PinPolicy, PinPolicyViolation};
///
/// let policy = PinPolicy::default();
/// assert_eq!(policy.check(&Pin::new("482913")), Ok(()));
/// assert_eq!(policy.check(&Pin::new("4829")), Err(PinPolicyViolation::TooShort { min: 6 }));
/// assert_eq!(policy.check(&Pin::new("48291a")), Err(PinPolicyViolation::Blocked(CharClass::Lowercase)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinPolicy {
    /// Minimum length, at least 4.
    pub min_length: usize,
    /// Maximum length, at most 127.
    pub max_length: usize,
    /// Digits.
    pub digits: CharRule,
    /// Lowercase letters.
    pub lowercase: CharRule,
    /// Uppercase letters.
    pub uppercase: CharRule,
    /// Special characters.
    pub special: CharRule,
    /// How many previous PINs may not be reused (0 to 50). Checked with a key derived
    /// from the container key, so the history gives an offline attacker nothing.
    pub history: u8,
    /// Days a PIN stays valid; `None` for no expiry.
    pub expiry_days: Option<u32>,
}

impl PinPolicy {
    /// The smallest minimum length a policy may set.
    pub const MIN_LENGTH: usize = 4;
    /// The largest maximum length a policy may set.
    pub const MAX_LENGTH: usize = 127;
    /// The longest history a policy may keep.
    pub const MAX_HISTORY: u8 = 50;

    /// Checks a new PIN against the rules (not against the history, which needs the
    /// container key).
    ///
    /// # Errors
    /// The first [`PinPolicyViolation`] found.
    pub fn check(&self, pin: &Pin) -> Result<(), PinPolicyViolation> {
        let min = self.min_length.clamp(Self::MIN_LENGTH, Self::MAX_LENGTH);
        let max = self.max_length.clamp(min, Self::MAX_LENGTH);
        let len = pin.chars().count();
        if len < min {
            return Err(PinPolicyViolation::TooShort { min });
        }
        if len > max {
            return Err(PinPolicyViolation::TooLong { max });
        }
        let mut seen = [false; 4];
        for c in pin.chars() {
            let class = match c {
                '0'..='9' => CharClass::Digit,
                'a'..='z' => CharClass::Lowercase,
                'A'..='Z' => CharClass::Uppercase,
                ' '..='~' => CharClass::Special,
                _ => return Err(PinPolicyViolation::UnsupportedCharacter),
            };
            seen[class as usize] = true;
        }
        for (class, rule) in [
            (CharClass::Digit, self.digits),
            (CharClass::Lowercase, self.lowercase),
            (CharClass::Uppercase, self.uppercase),
            (CharClass::Special, self.special),
        ] {
            match (rule, seen[class as usize]) {
                (CharRule::Required, false) => return Err(PinPolicyViolation::Missing(class)),
                (CharRule::Blocked, true) => return Err(PinPolicyViolation::Blocked(class)),
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn history_len(&self) -> usize {
        usize::from(self.history.min(Self::MAX_HISTORY))
    }
}

impl Default for PinPolicy {
    /// Windows Hello's defaults: 6 to 127 digits, no letters or specials, no history,
    /// no expiry.
    fn default() -> Self {
        PinPolicy {
            min_length: 6,
            max_length: 127,
            digits: CharRule::Required,
            lowercase: CharRule::Blocked,
            uppercase: CharRule::Blocked,
            special: CharRule::Blocked,
            history: 0,
            expiry_days: None,
        }
    }
}

/// Argon2id cost parameters for deriving the PIN protector's key. Stored with each
/// protector, so a container opens after the profile changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Profile {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Profile {
    /// The default: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommendation, one
    /// lane because the derivation runs on one thread). About 120 ms per PIN check in
    /// a release build on a 2-core x86-64 server (SECURITY.md); a debug build is many
    /// times slower, so tests and examples use [`Argon2Profile::INSECURE_TEST_ONLY`].
    pub const DEFAULT: Argon2Profile = Argon2Profile {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters FOR TESTS ONLY: an offline attacker would guess through them.
    pub const INSECURE_TEST_ONLY: Argon2Profile = Argon2Profile {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// The largest memory cost a stored protector may ask for (1 GiB): a bound so that a
    /// tampered file cannot make the device allocate without limit.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// The largest pass or lane count a stored protector may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// The largest lane count a stored protector may ask for.
    pub const MAX_PARALLELISM: u32 = 16;

    pub(crate) fn within_bounds(&self) -> bool {
        (1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (8 * self.parallelism..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib)
    }
}

/// Which PIN protector new containers (and new PINs after a reset) get.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum PinProtectorChoice {
    /// The container key wrapped under an Argon2id key derived from the PIN, with a
    /// failed-attempt counter in the container: for devices without a TPM. Whoever copies
    /// the container can roll the counter back and guess offline, at the Argon2id cost
    /// per guess (SECURITY.md). The default.
    #[default]
    Argon2id,
    /// The container key behind a secret sealed by the TPM, which counts wrong PINs
    /// itself and cannot be rolled back (feature `tpm`).
    #[cfg(feature = "tpm")]
    Tpm(super::tpm::TpmConfig),
}

/// The device policy.
///
/// The default: recovery **off** (as Windows' `EnablePinRecovery`; a device that should
/// recover must turn it on), [`PinPolicy::default`], the Argon2id PIN protector with
/// 5 PIN attempts before lockout and [`Argon2Profile::DEFAULT`].
///
/// # Examples
/// ```
/// use pin_recovery::client::{CharRule, ContainerPolicy, PinPolicy};
///
/// let policy = ContainerPolicy {
///     recovery_enabled: true,
///     attempt_limit: 10,
///     pin: PinPolicy { min_length: 8, lowercase: CharRule::Allowed, history: 5, ..PinPolicy::default() },
///     ..ContainerPolicy::default()
/// };
/// assert!(policy.pin.check(&pin_recovery::client::Pin::new("2468abcd")).is_ok());
/// assert!(policy.pin.check(&pin_recovery::client::Pin::new("1234567")).is_err()); // too short
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPolicy {
    /// Whether a recovery secret is created (Windows' `EnablePinRecovery`; off by
    /// default, when a forgotten PIN means a destructive reset).
    pub recovery_enabled: bool,
    /// The PIN rules.
    pub pin: PinPolicy,
    /// Failed PIN attempts before lockout (at least 1), for the Argon2id protector (a
    /// TPM counts its own: see [`crate::client::TpmConfig`]).
    pub attempt_limit: u32,
    /// The Argon2id cost for new Argon2id PIN protectors.
    pub argon2: Argon2Profile,
    /// The PIN protector for new containers and for the new PIN of a reset. A PIN change
    /// moves an Argon2id container to this protector, and keeps a TPM container's TPM
    /// protector whatever this says (a policy that lost its TPM settings never downgrades
    /// a container silently; a reset is an explicit choice).
    pub protector: PinProtectorChoice,
}

impl Default for ContainerPolicy {
    fn default() -> Self {
        ContainerPolicy {
            recovery_enabled: false,
            pin: PinPolicy::default(),
            attempt_limit: 5,
            argon2: Argon2Profile::DEFAULT,
            protector: PinProtectorChoice::Argon2id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(min: usize) -> PinPolicy {
        PinPolicy {
            min_length: min,
            ..PinPolicy::default()
        }
    }

    #[test]
    fn default_policy_is_digits_only() {
        let pol = PinPolicy::default();
        assert_eq!(pol.check(&Pin::new("123456")), Ok(()));
        assert_eq!(
            pol.check(&Pin::new("12345")),
            Err(PinPolicyViolation::TooShort { min: 6 })
        );
        assert_eq!(
            pol.check(&Pin::new("12345a")),
            Err(PinPolicyViolation::Blocked(CharClass::Lowercase))
        );
        assert_eq!(
            pol.check(&Pin::new("123456!")),
            Err(PinPolicyViolation::Blocked(CharClass::Special))
        );
        assert_eq!(
            pol.check(&Pin::new("12345é")),
            Err(PinPolicyViolation::UnsupportedCharacter)
        );
        assert_eq!(
            pol.check(&Pin::new("1".repeat(128))),
            Err(PinPolicyViolation::TooLong { max: 127 })
        );
    }

    #[test]
    fn required_classes_are_enforced_and_lengths_clamped() {
        let pol = PinPolicy {
            lowercase: CharRule::Required,
            uppercase: CharRule::Required,
            special: CharRule::Allowed,
            ..p(1)
        };
        assert_eq!(
            pol.check(&Pin::new("abc")),
            Err(PinPolicyViolation::TooShort { min: 4 })
        );
        assert_eq!(
            pol.check(&Pin::new("abcd1")),
            Err(PinPolicyViolation::Missing(CharClass::Uppercase))
        );
        assert_eq!(pol.check(&Pin::new("aBcd1 !")), Ok(()));
        let no_digits = PinPolicy {
            digits: CharRule::Blocked,
            lowercase: CharRule::Allowed,
            ..p(4)
        };
        assert_eq!(
            no_digits.check(&Pin::new("abcd1")),
            Err(PinPolicyViolation::Blocked(CharClass::Digit))
        );
    }

    #[test]
    fn pin_debug_is_redacted() {
        assert_eq!(format!("{:?}", Pin::new("123456")), "Pin([redacted])");
    }

    #[test]
    fn argon2_bounds() {
        assert!(Argon2Profile::DEFAULT.within_bounds());
        assert!(Argon2Profile::INSECURE_TEST_ONLY.within_bounds());
        assert!(!Argon2Profile {
            memory_kib: u32::MAX,
            iterations: 1,
            parallelism: 1
        }
        .within_bounds());
        assert!(!Argon2Profile {
            memory_kib: 8,
            iterations: 1,
            parallelism: 2
        }
        .within_bounds());
    }
}
