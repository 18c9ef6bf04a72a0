/// How the container treats the TPM's lockout authorization, which can reset the
/// TPM's failure counter and change its lockout parameters. It is TPM-wide, so this is
/// the integrator's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockoutAuthorization {
    /// If the lockout authorization is unset (the Linux default: anyone who can reach
    /// the TPM could reset the counter and guess without limit), set it to 32 random
    /// bytes that are kept nowhere. From then on only time heals a lockout, and only the
    /// platform (firmware) can clear the TPM. The default.
    #[default]
    SetIfUnset,
    /// Refuse a TPM whose lockout authorization is unset
    /// ([`super::TpmError::LockoutAuthorizationUnset`]): for fleets where the operating
    /// system owns it (as Windows does).
    RequireSet,
}

/// Where the TPM is and what of it the policy accepts.
///
/// tpm2-tss logs every failed TPM command (a wrong PIN included) to stderr; set
/// `TSS2_LOG=all+NONE` in the environment to silence it.
///
/// The defaults: the kernel's resource manager (`device:/dev/tpmrm0`), at most 32
/// failures before lockout and at least 60 s before the TPM forgets one (Windows sets
/// 32 and 600 s), and [`LockoutAuthorization::SetIfUnset`].
///
/// # Examples
/// ```
/// use pin_recovery::client::{ContainerPolicy, PinProtectorChoice, TpmConfig};
///
/// let policy = ContainerPolicy {
///     protector: PinProtectorChoice::Tpm(TpmConfig {
///         tcti: "swtpm:host=127.0.0.1,port=2321".into(),
///         ..TpmConfig::default()
///     }),
///     ..ContainerPolicy::default()
/// };
/// assert!(matches!(policy.protector, PinProtectorChoice::Tpm(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmConfig {
    /// The TCTI configuration string of the TPM's transport, as tpm2-tss reads it:
    /// `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`, `tabrmd:`.
    pub tcti: String,
    /// Refuse a TPM that tolerates more failures than this before lockout.
    pub max_tries_allowed: u32,
    /// Refuse a TPM that forgets a failure sooner than this many seconds (0, which
    /// turns dictionary-attack protection off, is always refused).
    pub min_recovery_interval: u32,
    /// What to do with the TPM's lockout authorization.
    pub lockout: LockoutAuthorization,
}

impl TpmConfig {
    /// The kernel's TPM resource manager.
    pub const DEFAULT_TCTI: &'static str = "device:/dev/tpmrm0";
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig {
            tcti: Self::DEFAULT_TCTI.into(),
            max_tries_allowed: 32,
            min_recovery_interval: 60,
            lockout: LockoutAuthorization::default(),
        }
    }
}
