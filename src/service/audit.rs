//! Audit: one event per request, through a sink; JSON lines by default. Events carry
//! identities, addresses, key and envelope ids, the outcome and a reason class: never a
//! secret, an assertion or an envelope body.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use crate::envelope::EnvelopeId;
use crate::keys::KeyId;

/// What a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A recovery request (secret release).
    Recovery,
    /// An envelope registration.
    Registration,
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// The secret was released, sealed to the device's one-time key.
    Released,
    /// The envelope was registered.
    Registered,
    /// The request was refused; `reason` says why.
    Refused,
}

/// Who made a request and how, as the caller's transport saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestContext {
    /// The client's IP address.
    pub client_ip: String,
    /// The client type (for example an application id or user agent).
    pub client_type: String,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// `ok`, or the refusal's class ([`crate::service::ServiceError::reason`]).
    pub reason: &'static str,
}

/// Receives audit events. Implementations must not fail the request: a sink that cannot
/// write should raise its own alarm.
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
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
    fn record(&self, event: &AuditEvent) {
        let written = self.out.lock().ok().and_then(|mut out| {
            serde_json::to_writer(&mut *out, event).ok()?;
            out.write_all(b"\n").and_then(|()| out.flush()).ok()
        });
        if written.is_none() {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
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
    fn record(&self, event: &AuditEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

/// Told of every released secret, for example to notify the user that their PIN is
/// being reset.
pub trait ResetNotifier: Send + Sync {
    /// A secret was released.
    fn secret_released(&self, event: &AuditEvent);
}
