//! Audit: one event per request, recorded by the store (with the release or registration
//! it records, in one transaction) and copied to an optional mirror, such as JSON lines.
//! Events carry identities, addresses, key and envelope ids, the outcome and a reason
//! class: never a secret, an assertion or an envelope body.

use core::fmt;
use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::envelope::EnvelopeId;
use crate::keys::KeyId;

/// What a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A recovery request (secret release).
    Recovery,
    /// An envelope registration.
    Registration,
    /// A device registration (or re-registration).
    DeviceRegistration,
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// The secret was released, sealed to the device's one-time key.
    Released,
    /// The envelope was registered.
    Registered,
    /// The request was refused; `reason` says why.
    Refused,
    /// A secret was released (its own `released` event is recorded) but the reset
    /// notifier failed; `reason` is `notifier-failed`.
    NotificationFailed,
}

/// Who made a request and how, as the caller's transport saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    /// The client's IP address.
    pub client_ip: String,
    /// The client type (for example an application id or user agent).
    pub client_type: String,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// Recovery or registration.
    pub action: AuditAction,
    /// The tenant (absent if the request did not decode).
    pub tenant: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The device.
    pub device: Option<String>,
    /// The caller-supplied client IP address.
    pub client_ip: String,
    /// The caller-supplied client type.
    pub client_type: String,
    /// The service key the envelope names.
    pub key_id: Option<KeyId>,
    /// The envelope.
    pub envelope_id: Option<EnvelopeId>,
    /// Released, registered or refused.
    pub outcome: AuditOutcome,
    /// `ok`; `unchanged` for a registration already in effect; `notifier-failed`; or the
    /// refusal's exact class (as [`crate::service::ServiceError::reason`], except that
    /// an unauthenticated device is recorded as `unknown-device` or
    /// `bad-device-signature`).
    pub reason: String,
}

impl AuditAction {
    /// The name events carry (`recovery`, `registration`, `device-registration`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Recovery => "recovery",
            AuditAction::Registration => "registration",
            AuditAction::DeviceRegistration => "device-registration",
        }
    }

    /// The action a name denotes.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            AuditAction::Recovery,
            AuditAction::Registration,
            AuditAction::DeviceRegistration,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }
}

impl AuditOutcome {
    /// The name events carry (`released`, `registered`, `refused`,
    /// `notification-failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Released => "released",
            AuditOutcome::Registered => "registered",
            AuditOutcome::Refused => "refused",
            AuditOutcome::NotificationFailed => "notification-failed",
        }
    }

    /// The outcome a name denotes.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            AuditOutcome::Released,
            AuditOutcome::Registered,
            AuditOutcome::Refused,
            AuditOutcome::NotificationFailed,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

/// Why an audit event or a notification could not be delivered.
#[derive(Debug)]
pub struct SinkError(Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    /// Wraps the sink's own error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SinkError(source.into())
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("audit or notification sink failed")
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Receives a copy of every audit event once the store has recorded it (the store's log,
/// written in the same transaction as the release or registration it records, is the
/// authority). A failure to take a copy changes nothing; the service counts it
/// ([`super::RecoveryService::mirror_failures`]).
pub trait AuditSink: Send + Sync {
    /// Records one event durably, or says why it could not.
    ///
    /// # Errors
    /// [`SinkError`] when the event was not recorded.
    fn record(&self, event: &AuditEvent) -> Result<(), SinkError>;
}

/// Writes each event as one line of JSON.
pub struct JsonLinesAuditSink<W: Write + Send> {
    out: Mutex<W>,
    failures: std::sync::atomic::AtomicU64,
}

impl<W: Write + Send> JsonLinesAuditSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesAuditSink {
            out: Mutex::new(out),
            failures: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many events could not be written.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The writer, for reading back what was written.
    pub fn into_inner(self) -> Option<W> {
        self.out.into_inner().ok()
    }
}

impl<W: Write + Send> AuditSink for JsonLinesAuditSink<W> {
    fn record(&self, event: &AuditEvent) -> Result<(), SinkError> {
        let written = match self.out.lock() {
            Ok(mut out) => {
                let mut line = serde_json::to_vec(event).map_err(SinkError::new)?;
                line.push(b'\n');
                // One write per line, so a failure never leaves half a line followed by
                // another event on the same line.
                out.write_all(&line).and_then(|()| out.flush())
            }
            Err(_) => Err(std::io::Error::other("audit writer lock poisoned")),
        };
        written.map_err(|e| {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            SinkError::new(e)
        })
    }
}

/// Keeps events in memory (for tests and examples).
#[derive(Default)]
pub struct MemoryAuditSink(Mutex<Vec<AuditEvent>>);

impl MemoryAuditSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: &AuditEvent) -> Result<(), SinkError> {
        self.0
            .lock()
            .map_err(|_| SinkError::new("memory audit sink lock poisoned"))?
            .push(event.clone());
        Ok(())
    }
}

/// Told of every released secret, for example to notify the user that their PIN is
/// being reset. A failure does not hold back the release (the user has proved MFA and
/// the event is recorded); it is counted
/// ([`super::RecoveryService::notifier_failures`]) and audited as a
/// [`AuditOutcome::NotificationFailed`] event.
pub trait ResetNotifier: Send + Sync {
    /// A secret was released.
    ///
    /// # Errors
    /// [`SinkError`] when the notification could not be sent.
    fn secret_released(&self, event: &AuditEvent) -> Result<(), SinkError>;
}
