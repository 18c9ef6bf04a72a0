use core::fmt;

use super::policy::PinPolicyViolation;
use super::store::StoreError;
use super::tpm::TpmError;
use crate::error::{DecodeError, Error};
use crate::protocol::key_document::KeyDocumentError;

/// Errors from the client container. None of them changes what is stored, except that a
/// wrong PIN counts as a failed attempt (persisted before the PIN is checked).
///
/// What a caller can do about each:
/// - [`ClientError::WrongPin`]: ask again; `attempts_left` says how many tries remain
///   (with a TPM, the TPM's own count, which every user of the TPM shares).
/// - [`ClientError::LockedOut`]: the Argon2id protector is locked: only a reset (with
///   the recovery service, or destructive) opens the container now. A TPM's lockout is
///   [`TpmError::LockedOut`].
/// - [`ClientError::PinPolicy`], [`ClientError::PinReused`]: ask for another new PIN.
/// - [`ClientError::PinExpired`]: the PIN was right but has expired; change it.
/// - [`ClientError::RecoveryDisabled`]: policy keeps no recovery secret; the destructive
///   reset is the way back.
/// - [`ClientError::KeyDocument`], [`ClientError::NoServiceTrust`],
///   [`ClientError::KeyDocumentRequired`]: fetch a fresh key document or configure the
///   pinned service signing key.
/// - [`ClientError::BadAssertion`]: the identity provider's assertion is unusable; get
///   another.
/// - [`ClientError::Tpm`]: the TPM-sealed PIN protector could not be used; see
///   [`TpmError`] for each case.
/// - [`ClientError::Store`]: the storage failed; the container is unchanged (or, after a
///   failed directory sync, already in its new state) and the operation may be retried.
/// - [`ClientError::CorruptState`], [`ClientError::Tampered`]: the stored container is
///   damaged or was altered; restore it or reset destructively.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// No container is stored.
    NotEnrolled,
    /// A container is already stored; enrolment would overwrite it.
    AlreadyEnrolled,
    /// The PIN is wrong.
    WrongPin {
        /// Attempts left before lockout.
        attempts_left: u32,
    },
    /// Too many wrong PINs: the PIN protector is locked.
    LockedOut,
    /// The new PIN breaks the PIN policy.
    PinPolicy(PinPolicyViolation),
    /// The new PIN is one of the recent PINs the policy keeps.
    PinReused,
    /// The PIN is right but has expired.
    PinExpired,
    /// The recovery secret does not open the recovery protector.
    WrongRecoverySecret,
    /// There is no recovery protector (recovery is disabled by policy).
    RecoveryDisabled,
    /// No service signing key is pinned, so no key document can be trusted.
    NoServiceTrust,
    /// The operation seals to the service and needs a key document.
    KeyDocumentRequired,
    /// The key document was refused.
    KeyDocument(KeyDocumentError),
    /// The service's answer is not for this request, or does not open.
    ResponseMismatch,
    /// The MFA assertion cannot be carried in a request (too long, or not a compact
    /// JWS).
    BadAssertion(DecodeError),
    /// The stored state does not decode.
    CorruptState(DecodeError),
    /// The stored state decodes but fails its authentication.
    Tampered,
    /// The storage failed.
    Store(StoreError),
    /// A cryptographic operation failed.
    Crypto(Error),
    /// The TPM that seals the PIN protector refused or failed (a wrong PIN is
    /// [`ClientError::WrongPin`], with the tries the TPM has left).
    Tpm(TpmError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotEnrolled => f.write_str("no container is enrolled"),
            ClientError::AlreadyEnrolled => f.write_str("a container is already enrolled"),
            ClientError::WrongPin { attempts_left } => {
                write!(f, "wrong PIN ({attempts_left} attempts left)")
            }
            ClientError::LockedOut => {
                f.write_str("locked out after too many wrong PINs; reset the PIN")
            }
            ClientError::PinPolicy(v) => write!(f, "new PIN refused: {v}"),
            ClientError::PinReused => f.write_str("new PIN was used recently"),
            ClientError::PinExpired => f.write_str("PIN has expired; change it"),
            ClientError::WrongRecoverySecret => {
                f.write_str("recovery secret does not open this container")
            }
            ClientError::RecoveryDisabled => {
                f.write_str("recovery is disabled: no recovery protector")
            }
            ClientError::NoServiceTrust => f.write_str("no pinned service signing key"),
            ClientError::KeyDocumentRequired => f.write_str("a key document is required"),
            ClientError::KeyDocument(e) => write!(f, "key document refused: {e}"),
            ClientError::ResponseMismatch => {
                f.write_str("the service response is not for this request")
            }
            ClientError::BadAssertion(e) => write!(f, "the MFA assertion cannot be sent: {e}"),
            ClientError::CorruptState(e) => write!(f, "stored container is corrupt: {e}"),
            ClientError::Tampered => f.write_str("stored container failed authentication"),
            ClientError::Store(e) => write!(f, "{e}"),
            ClientError::Crypto(e) => write!(f, "{e}"),
            ClientError::Tpm(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        ClientError::Store(e)
    }
}

impl From<KeyDocumentError> for ClientError {
    fn from(e: KeyDocumentError) -> Self {
        ClientError::KeyDocument(e)
    }
}

impl From<PinPolicyViolation> for ClientError {
    fn from(e: PinPolicyViolation) -> Self {
        ClientError::PinPolicy(e)
    }
}

impl From<crate::crypto::provider::Failure> for ClientError {
    fn from(_: crate::crypto::provider::Failure) -> Self {
        ClientError::Crypto(Error::Crypto)
    }
}

impl From<Error> for ClientError {
    fn from(e: Error) -> Self {
        ClientError::Crypto(e)
    }
}
