//! What the SQL stores share: conversions between the service's values and columns, and
//! decoding rows back into checked values (a damaged row is a storage failure, never a
//! panic or a wrong value).

use crate::envelope::{Envelope, EnvelopeId};
use crate::keys::{KeyId, VerifyingKey};
use crate::service::audit::{AuditAction, AuditEvent, AuditOutcome};
use crate::service::error::RateScope;

use super::records::{KeyState, StoredKey, WrappedKey};
use super::{DeviceRecord, StorageFailure};

/// Seconds and counters as SQL's signed 64-bit integers: a value past `i64::MAX` (an
/// expiry "never") is stored as `i64::MAX`, which sorts after every real time.
pub(crate) fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Back from SQL; negative values (which the service never writes) read as 0.
pub(crate) fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A driver error while doing `operation`.
pub(crate) fn failed(operation: &'static str) -> impl Fn(sqlx::Error) -> StorageFailure {
    move |e| StorageFailure::with_source(operation, e)
}

fn damaged(operation: &'static str, what: &'static str) -> StorageFailure {
    StorageFailure::with_source(operation, format!("stored {what} is damaged"))
}

pub(crate) fn scope_name(scope: RateScope) -> &'static str {
    match scope {
        RateScope::User => "user",
        RateScope::Device => "device",
    }
}

/// The name an advisory lock for a rate-limited subject is taken under.
#[cfg(feature = "postgres")]
pub(crate) fn rate_lock_name(scope: RateScope, tenant: &str, id: &str) -> String {
    format!(
        "pin-recovery rate\u{1f}{}\u{1f}{tenant}\u{1f}{id}",
        scope_name(scope)
    )
}

pub(crate) fn envelope_id(bytes: &[u8]) -> Result<EnvelopeId, StorageFailure> {
    <[u8; 16]>::try_from(bytes)
        .map(EnvelopeId::from_bytes)
        .map_err(|_| damaged("read a device", "envelope id"))
}

pub(crate) fn key_id(bytes: &[u8]) -> Result<KeyId, StorageFailure> {
    <[u8; 16]>::try_from(bytes)
        .map(KeyId::from_bytes)
        .map_err(|_| damaged("read a keyring", "key id"))
}

/// A device row: user, SEC1 device key, envelope bytes.
pub(crate) fn device_record(
    user: String,
    device_key: &[u8],
    envelope: Option<Vec<u8>>,
) -> Result<DeviceRecord, StorageFailure> {
    Ok(DeviceRecord {
        user,
        device_key: VerifyingKey::from_sec1(device_key)
            .map_err(|_| damaged("read a device", "device key"))?,
        envelope: envelope
            .map(|b| Envelope::from_bytes(&b))
            .transpose()
            .map_err(|_| damaged("read a device", "envelope"))?,
    })
}

/// A tenant key row.
pub(crate) fn stored_key(
    version: i64,
    key_id_bytes: &[u8],
    state: &str,
    public_spki: Vec<u8>,
    wrapped: Option<Vec<u8>>,
) -> Result<StoredKey, StorageFailure> {
    let op = "read a keyring";
    Ok(StoredKey {
        version: u32::try_from(version).map_err(|_| damaged(op, "key version"))?,
        key_id: key_id(key_id_bytes)?,
        state: KeyState::from_name(state).ok_or_else(|| damaged(op, "key state"))?,
        public_spki,
        wrapped: wrapped
            .map(|w| WrappedKey::from_bytes(&w).ok_or_else(|| damaged(op, "wrapped key")))
            .transpose()?,
    })
}

/// The columns of an audit event, in table order after `seq`.
pub(crate) struct EventColumns<'a> {
    pub(crate) time: i64,
    pub(crate) action: &'static str,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) device: Option<&'a str>,
    pub(crate) client_ip: &'a str,
    pub(crate) client_type: &'a str,
    pub(crate) key_id: Option<Vec<u8>>,
    pub(crate) envelope_id: Option<Vec<u8>>,
    pub(crate) outcome: &'static str,
    pub(crate) reason: &'a str,
}

impl<'a> EventColumns<'a> {
    pub(crate) fn of(e: &'a AuditEvent) -> Self {
        EventColumns {
            time: to_db(e.time),
            action: e.action.as_str(),
            tenant: e.tenant.as_deref(),
            user: e.user.as_deref(),
            device: e.device.as_deref(),
            client_ip: &e.client_ip,
            client_type: &e.client_type,
            key_id: e.key_id.map(|k| k.as_bytes().to_vec()),
            envelope_id: e.envelope_id.map(|k| k.as_bytes().to_vec()),
            outcome: e.outcome.as_str(),
            reason: &e.reason,
        }
    }
}

/// An audit event row, all columns after `seq`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_event(
    time: i64,
    action: &str,
    tenant: Option<String>,
    user: Option<String>,
    device: Option<String>,
    client_ip: String,
    client_type: String,
    key_id_bytes: Option<Vec<u8>>,
    envelope_id_bytes: Option<Vec<u8>>,
    outcome: &str,
    reason: String,
) -> Result<AuditEvent, StorageFailure> {
    let op = "read the audit log";
    Ok(AuditEvent {
        time: from_db(time),
        action: AuditAction::from_name(action).ok_or_else(|| damaged(op, "action"))?,
        tenant,
        user,
        device,
        client_ip,
        client_type,
        key_id: key_id_bytes.as_deref().map(key_id).transpose()?,
        envelope_id: envelope_id_bytes.as_deref().map(envelope_id).transpose()?,
        outcome: AuditOutcome::from_name(outcome).ok_or_else(|| damaged(op, "outcome"))?,
        reason,
    })
}

/// The name of the replay floor in the `meta` table.
pub(crate) const REPLAY_FLOOR: &str = "replay_floor";
/// The name of the key-encryption key's fingerprint in the `meta` table.
pub(crate) const KEK_FINGERPRINT: &str = "kek_fingerprint";

pub(crate) fn floor_value(bytes: Option<Vec<u8>>) -> Result<u64, StorageFailure> {
    match bytes {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| damaged("read the replay floor", "replay floor")),
    }
}

pub(crate) fn fingerprint_value(bytes: &[u8]) -> Result<[u8; 32], StorageFailure> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        damaged(
            "check the key-encryption key",
            "key-encryption key fingerprint",
        )
    })
}

/// One statement answering every check of a release (the commit's, in its order), so
/// that checking before opening costs one round trip. `p` is the placeholder sigil
/// (`?` for SQLite, `$` for PostgreSQL; both number their parameters). Parameters:
/// floor name, issuer, token id, tenant, device, key id, then per rate key its scope,
/// tenant, subject, window start and offset. `lock` (PostgreSQL, in the commit) takes
/// share locks on the floor, device and key rows read, so that a concurrent purge, swap
/// or retirement waits for the commit.
pub(crate) fn release_check_sql(p: char, rate_keys: usize, lock: bool) -> String {
    let l = if lock { " FOR SHARE" } else { "" };
    let mut sql = format!(
        "SELECT (SELECT value FROM meta WHERE name = {p}1{l}), \
         EXISTS (SELECT 1 FROM spent_tokens WHERE issuer = {p}2 AND token_id = {p}3), \
         (SELECT envelope_id FROM devices WHERE tenant = {p}4 AND device = {p}5{l}), \
         (SELECT state FROM tenant_keys WHERE tenant = {p}4 AND key_id = {p}6{l})"
    );
    for i in 0..rate_keys {
        let n = 7 + 5 * i;
        // The `max`-th newest release in the window: a release is allowed again when it
        // leaves the window; none means fewer than `max` releases (rate_wait's rule).
        sql += &format!(
            ", (SELECT at FROM rate_slots WHERE scope = {p}{} AND tenant = {p}{} \
             AND subject = {p}{} AND at > {p}{} ORDER BY at DESC LIMIT 1 OFFSET {p}{})",
            n,
            n + 1,
            n + 2,
            n + 3,
            n + 4
        );
    }
    sql
}

/// What the release check statement read.
pub(crate) struct ReleaseCheckRow {
    pub(crate) floor: Option<Vec<u8>>,
    pub(crate) spent: bool,
    pub(crate) envelope_id: Option<Vec<u8>>,
    pub(crate) key_state: Option<String>,
    /// Per rate key, the `max`-th newest release time in its window.
    pub(crate) kth_newest: Vec<Option<i64>>,
}

/// The outcome the commit would have, from what the check statement read.
pub(crate) fn release_check_outcome(
    c: &super::ReleaseCommit<'_>,
    row: ReleaseCheckRow,
) -> Result<Option<super::ReleaseOutcome>, StorageFailure> {
    use super::ReleaseOutcome;
    if row.spent || c.token_expires_at <= floor_value(row.floor)? {
        return Ok(Some(ReleaseOutcome::Replayed));
    }
    if row.envelope_id.as_deref() != Some(c.envelope_id.as_bytes().as_slice()) {
        return Ok(Some(ReleaseOutcome::StaleEnvelope));
    }
    if row
        .key_state
        .as_deref()
        .and_then(KeyState::from_name)
        .is_none_or(|s| s == KeyState::Retired)
    {
        return Ok(Some(ReleaseOutcome::RetiredKey));
    }
    for (k, kth) in c.rate_keys.iter().zip(row.kth_newest) {
        let limit = c.policy.limit(k.scope);
        let wait = match (limit.max, kth) {
            (0, _) => Some(limit.window),
            (_, Some(at)) => Some(
                from_db(at)
                    .saturating_add(limit.window)
                    .saturating_sub(c.now),
            ),
            (_, None) => None,
        };
        if let Some(wait) = wait {
            return Ok(Some(ReleaseOutcome::RateLimited {
                scope: k.scope,
                retry_after: wait.max(1),
            }));
        }
    }
    Ok(None)
}

/// `INSERT` of one rate slot per key, in one statement: parameters scope, tenant,
/// subject, time for each key in turn.
pub(crate) fn rate_slots_insert_sql(p: char, rate_keys: usize) -> String {
    let rows: Vec<String> = (0..rate_keys)
        .map(|i| {
            let n = 1 + 4 * i;
            format!("({p}{}, {p}{}, {p}{}, {p}{})", n, n + 1, n + 2, n + 3)
        })
        .collect();
    format!(
        "INSERT INTO rate_slots (scope, tenant, subject, at) VALUES {}",
        rows.join(", ")
    )
}

/// The parameters of [`release_check_sql`], bound in order.
pub(crate) fn bind_release_check<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    c: &'q super::ReleaseCommit<'q>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query = query
        .bind(REPLAY_FLOOR)
        .bind(c.issuer)
        .bind(c.token_id)
        .bind(c.tenant)
        .bind(c.device)
        .bind(c.key_id.as_bytes().to_vec());
    for k in c.rate_keys {
        let limit = c.policy.limit(k.scope);
        query = query
            .bind(scope_name(k.scope))
            .bind(k.tenant.clone())
            .bind(k.id.clone())
            .bind(to_db(c.now).saturating_sub(to_db(limit.window)))
            .bind(i64::from(limit.max.saturating_sub(1)));
    }
    query
}
