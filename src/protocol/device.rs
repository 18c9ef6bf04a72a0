//! Device registration: who registers a device (the identity provider's provisioning, or
//! an administrator) tells the service which user a device belongs to and which key signs
//! its requests. Registering a device that exists under another key is refused unless
//! the message says `replace` — re-registration is an explicit act, audited, and clears
//! the device's envelope. The registrar is authenticated by whatever carries the message
//! (an administrative API), not by this library.

use serde::{Deserialize, Serialize};

use super::json::{check_version, from_canonical_json, WIRE_VERSION};
use crate::envelope::binding::Binding;
use crate::error::DecodeError;
use crate::keys::VerifyingKey;

/// A device registration: which user a device belongs to, and the device key that signs
/// its requests. Sent by whoever provisions the device (`POST /devices`,
/// docs/PROTOCOL.md §5a and §8); `replace` re-registers a device known under another key,
/// an explicit, audited act.
///
/// # Examples
/// ```
/// use pin_recovery::{Binding, DeviceRegistration, SigningKey};
///
/// let me = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
/// let device_key = *SigningKey::generate()?.verifying_key(); // Enrolment::device_public_key
/// let message = DeviceRegistration::new(&me, device_key, false);
/// let body = message.to_json();
/// assert_eq!(DeviceRegistration::from_json(&body)?, message);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRegistration {
    binding: Binding,
    device_key: VerifyingKey,
    replace: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceWire {
    version: u8,
    tenant: String,
    user: String,
    device: String,
    device_key: VerifyingKey,
    replace: bool,
}

impl TryFrom<DeviceWire> for DeviceRegistration {
    type Error = DecodeError;
    fn try_from(w: DeviceWire) -> Result<Self, DecodeError> {
        check_version(w.version)?;
        Ok(DeviceRegistration {
            binding: Binding::new(w.tenant, w.user, w.device).map_err(|_| {
                DecodeError::BadDocument {
                    reason: "tenant, user or device id is not a valid id",
                }
            })?,
            device_key: w.device_key,
            replace: w.replace,
        })
    }
}

impl From<&DeviceRegistration> for DeviceWire {
    fn from(r: &DeviceRegistration) -> Self {
        DeviceWire {
            version: WIRE_VERSION,
            tenant: r.binding.tenant().to_owned(),
            user: r.binding.user().to_owned(),
            device: r.binding.device().to_owned(),
            device_key: r.device_key,
            replace: r.replace,
        }
    }
}

impl DeviceRegistration {
    /// Registers `binding`'s device to its user with `device_key`; `replace` re-registers
    /// a device known under another key.
    pub fn new(binding: &Binding, device_key: VerifyingKey, replace: bool) -> Self {
        DeviceRegistration {
            binding: binding.clone(),
            device_key,
            replace,
        }
    }

    /// Parses the canonical JSON form:
    /// `{"version":1,"tenant":…,"user":…,"device":…,"device_key":"<b64u SEC1>","replace":false}`.
    ///
    /// # Errors
    /// [`DecodeError`] for oversized, malformed, non-canonical or unknown-version input,
    /// invalid ids or a device key that is not a P-256 point.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_canonical_json::<Self, DeviceWire>(bytes)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&DeviceWire::from(self)).unwrap_or_default()
    }

    /// The tenant, user and device.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The key that signs the device's requests.
    pub fn device_key(&self) -> &VerifyingKey {
        &self.device_key
    }

    /// Whether this replaces a device known under another key.
    pub fn replace(&self) -> bool {
        self.replace
    }
}
