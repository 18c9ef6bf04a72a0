//! The identity an envelope is bound to: tenant, user and device.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Reader};
use crate::error::{BindingError, DecodeError};

/// The (tenant, user, device) triple an envelope is sealed for. The service opens an
/// envelope only for the binding it carries.
///
/// Each id is 1 to [`Binding::MAX_ID_LEN`] bytes of UTF-8 without control characters.
/// Ids are compared byte for byte: use them exactly as the identity provider's tokens
/// carry them (for Microsoft Entra ID: the tenant id, the user's object id, the device
/// id), the same strings on the device and in the service.
///
/// # Examples
/// ```
/// use pin_recovery::{Binding, BindingError};
///
/// let me = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
/// assert_eq!((me.tenant(), me.user(), me.device()), ("contoso", "alice@contoso.example", "LAPTOP-7F3K"));
/// assert_eq!(Binding::new("", "alice", "pc").unwrap_err(), BindingError::Empty { field: "tenant" });
/// assert!(matches!(Binding::new("contoso", "alice\n", "pc"), Err(BindingError::ControlCharacter { .. })));
/// # Ok::<(), BindingError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "BindingFields", into = "BindingFields")]
pub struct Binding {
    tenant: String,
    user: String,
    device: String,
    /// The three ids, each u8-length-prefixed: computed once the lengths are checked, so
    /// that encoding cannot fail.
    encoded: Vec<u8>,
}

impl core::fmt::Debug for Binding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Binding")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("device", &self.device)
            .finish()
    }
}

impl Binding {
    /// The largest id, in bytes.
    pub const MAX_ID_LEN: usize = 255;

    /// Checks and bundles the three ids.
    ///
    /// # Errors
    /// [`BindingError`] naming the first id that is empty, too long or has a control
    /// character.
    pub fn new(
        tenant: impl Into<String>,
        user: impl Into<String>,
        device: impl Into<String>,
    ) -> Result<Self, BindingError> {
        let (tenant, user, device) = (tenant.into(), user.into(), device.into());
        check_id("tenant", &tenant)?;
        check_id("user", &user)?;
        check_id("device", &device)?;
        Self::assemble(tenant, user, device).ok_or(BindingError::TooLong { field: "binding" })
    }

    /// Bundles ids already checked.
    fn assemble(tenant: String, user: String, device: String) -> Option<Self> {
        let mut encoded = Vec::with_capacity(3 + tenant.len() + user.len() + device.len());
        for id in [&tenant, &user, &device] {
            codec::put_vec8(&mut encoded, id.as_bytes()).ok()?;
        }
        Some(Binding {
            tenant,
            user,
            device,
            encoded,
        })
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The user id.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The device id.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encoded);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut field = |name: &'static str| -> Result<String, DecodeError> {
            let raw = r.vec8(name, 1, Self::MAX_ID_LEN)?;
            Ok(codec::text(name, raw)?.to_owned())
        };
        let tenant = field("tenant")?;
        let user = field("user")?;
        let device = field("device")?;
        Self::assemble(tenant, user, device).ok_or(DecodeError::TooLong {
            max: Self::MAX_ID_LEN,
        })
    }
}

fn check_id(field: &'static str, id: &str) -> Result<(), BindingError> {
    if id.is_empty() {
        Err(BindingError::Empty { field })
    } else if id.len() > Binding::MAX_ID_LEN {
        Err(BindingError::TooLong { field })
    } else if id.chars().any(char::is_control) {
        Err(BindingError::ControlCharacter { field })
    } else {
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFields {
    tenant: String,
    user: String,
    device: String,
}

impl TryFrom<BindingFields> for Binding {
    type Error = BindingError;
    fn try_from(f: BindingFields) -> Result<Self, Self::Error> {
        Binding::new(f.tenant, f.user, f.device)
    }
}

impl From<Binding> for BindingFields {
    fn from(b: Binding) -> Self {
        BindingFields {
            tenant: b.tenant,
            user: b.user,
            device: b.device,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_long_and_control_ids() {
        assert_eq!(
            Binding::new("", "u", "d"),
            Err(BindingError::Empty { field: "tenant" })
        );
        assert_eq!(
            Binding::new("t", "x".repeat(256), "d"),
            Err(BindingError::TooLong { field: "user" })
        );
        assert_eq!(
            Binding::new("t", "u", "d\n"),
            Err(BindingError::ControlCharacter { field: "device" })
        );
        assert!(Binding::new("t", "x".repeat(255), "é").is_ok());
    }

    #[test]
    fn can_round_trip_the_encoding() {
        let b = Binding::new("contoso", "alice@contoso.com", "dev-1").unwrap();
        let mut bytes = Vec::new();
        b.encode(&mut bytes);
        let mut r = Reader::new(&bytes);
        assert_eq!(Binding::read(&mut r).unwrap(), b);
        r.finish().unwrap();
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        let ok: Binding =
            serde_json::from_str(r#"{"tenant":"t","user":"u","device":"d"}"#).unwrap();
        assert_eq!(ok.device(), "d");
        assert!(
            serde_json::from_str::<Binding>(r#"{"tenant":"","user":"u","device":"d"}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Binding>(r#"{"tenant":"t","user":"u","device":"d","x":1}"#)
                .is_err()
        );
    }
}
