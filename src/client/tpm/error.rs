use core::fmt;
use std::time::Duration;

/// Why a TPM-sealed PIN protector could not be used. None of them changes the stored
/// container. A wrong PIN is not one of these: it is [`super::super::ClientError::WrongPin`],
/// with the tries the TPM has left.
///
/// What a caller can do about each:
/// - [`TpmError::LockedOut`]: the TPM refuses every PIN, the right one too, until its
///   dictionary-attack counter heals (one failure forgotten per `retry_after`); a
///   recovery seals a new PIN at once, but that PIN, too, waits for the TPM to heal.
/// - [`TpmError::Unavailable`]: the TPM could not be reached or failed; retry later (the
///   PIN was not judged, and no try was counted by the container).
/// - [`TpmError::WrongTpm`]: the container was sealed by another TPM, or this TPM was
///   cleared since: only a destructive reset (or a recovery on this TPM) helps.
/// - [`TpmError::UnsafeLockoutParameters`], [`TpmError::LockoutAuthorizationUnset`]: the
///   TPM's configuration is refused by policy; the administrator must change the TPM or
///   the policy.
/// - [`TpmError::NotCompiled`]: this build has no TPM support (feature `tpm`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TpmError {
    /// The TPM is in dictionary-attack lockout.
    LockedOut {
        /// The TPM's recovery interval: the longest wait before it forgets one failure
        /// and allows one more try (the TPM does not say how much of it has passed).
        retry_after: Duration,
    },
    /// The TPM could not be reached, or failed to carry out a command.
    Unavailable {
        /// What failed, for the log (never a secret).
        reason: String,
    },
    /// The container's TPM object belongs to another TPM (a copied container), or the
    /// TPM's storage hierarchy was cleared since it was sealed.
    WrongTpm,
    /// The TPM's dictionary-attack parameters are weaker than the policy allows: too many
    /// tries before lockout, or failures forgotten too fast (a recovery interval of 0
    /// turns the protection off).
    UnsafeLockoutParameters {
        /// The failures the TPM tolerates before lockout.
        max_tries: u32,
        /// Seconds after which the TPM forgets one failure.
        recovery_interval: u32,
    },
    /// The TPM's lockout authorization is unset (anyone could reset its failure counter)
    /// and the policy forbids taking it.
    LockoutAuthorizationUnset,
    /// The container is sealed by a TPM, and this build has no TPM support.
    NotCompiled,
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::LockedOut { retry_after } => write!(
                f,
                "the TPM is locked out after too many wrong PINs; one more try in at most {} s",
                retry_after.as_secs()
            ),
            TpmError::Unavailable { reason } => write!(f, "the TPM is unavailable: {reason}"),
            TpmError::WrongTpm => f.write_str(
                "the container was sealed by another TPM (or this TPM was cleared since)",
            ),
            TpmError::UnsafeLockoutParameters {
                max_tries,
                recovery_interval,
            } => write!(
                f,
                "the TPM's lockout parameters are refused by policy ({max_tries} tries, one \
                 forgotten every {recovery_interval} s)"
            ),
            TpmError::LockoutAuthorizationUnset => f.write_str(
                "the TPM's lockout authorization is unset, and policy forbids taking it",
            ),
            TpmError::NotCompiled => {
                f.write_str("the container is sealed by a TPM; this build has no TPM support")
            }
        }
    }
}

impl std::error::Error for TpmError {}
