//! The shared store: PostgreSQL (through sqlx), for several service replicas on one
//! database. Every write is one transaction. A release locks what its checks depend on
//! before checking (an advisory lock per rate-limited user and device, taken in a fixed
//! order; the device row; the key row; the replay floor), so concurrent releases on any
//! replicas serialise where they conflict and nowhere else; a spent token is a primary
//! key, so a concurrent duplicate waits and then finds it. The schema is migrated on
//! connect (sqlx's migrator takes an advisory lock, so replicas starting together migrate
//! once).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::records::rate_wait;
use super::sql::{self, failed, from_db, to_db, EventColumns, KEK_FINGERPRINT, REPLAY_FLOOR};
use super::{
    DeviceRecord, EnvelopeSwap, NewTenantKey, RateKey, RateLimit, RatePolicy, ReleaseCommit,
    ReleaseOutcome, ServiceStore, StorageFailure, StoredKeyring,
};
use crate::keys::{KeyId, VerifyingKey};
use crate::service::audit::AuditEvent;
use crate::service::error::RateScope;

/// A [`ServiceStore`] in a PostgreSQL database.
///
/// # Examples
/// ```no_run
/// use pin_recovery::service::PostgresStore;
///
/// # async fn connect() -> Result<(), pin_recovery::service::StorageFailure> {
/// // Every replica connects to the same database; the first migrates it.
/// let store = PostgresStore::connect("postgres://recovery@db.internal/recovery").await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or
    /// `postgres:///database?host=/run/postgresql` for a Unix socket) with at most 16
    /// connections, waiting at most 5 s for one, and migrates the schema.
    ///
    /// # Errors
    /// [`StorageFailure`] if the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StorageFailure> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(failed("connect to the database"))?;
        Self::from_pool(pool).await
    }

    /// A store over an existing pool (whose options the caller chose); migrates it.
    ///
    /// # Errors
    /// [`StorageFailure`] if the migration fails.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StorageFailure> {
        super::migrations::migrator(super::migrations::POSTGRES)
            .await?
            .run(&pool)
            .await
            .map_err(|e| StorageFailure::with_source("migrate the schema", e))?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool (for operators' own queries and for tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self, operation: &'static str) -> Result<Tx, StorageFailure> {
        self.pool.begin().await.map_err(failed(operation))
    }
}

async fn insert_event(tx: &mut Tx, event: &AuditEvent) -> Result<(), StorageFailure> {
    let c = EventColumns::of(event);
    sqlx::query(
        "INSERT INTO audit_events (time, action, tenant, user_id, device, client_ip, \
         client_type, key_id, envelope_id, outcome, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.time)
    .bind(c.action)
    .bind(c.tenant)
    .bind(c.user)
    .bind(c.device)
    .bind(c.client_ip)
    .bind(c.client_type)
    .bind(c.key_id)
    .bind(c.envelope_id)
    .bind(c.outcome)
    .bind(c.reason)
    .execute(&mut **tx)
    .await
    .map_err(failed("record the audit event"))?;
    Ok(())
}

/// The replay floor; `lock` holds it until the transaction ends (a purge raising it
/// waits for, or is waited for by, the caller).
async fn floor<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    ex: E,
    lock: bool,
) -> Result<u64, StorageFailure> {
    let query = if lock {
        "SELECT value FROM meta WHERE name = $1 FOR SHARE"
    } else {
        "SELECT value FROM meta WHERE name = $1"
    };
    let row = sqlx::query(query)
        .bind(REPLAY_FLOOR)
        .fetch_optional(ex)
        .await
        .map_err(failed("read the replay floor"))?;
    sql::floor_value(row.map(|r| r.get::<Vec<u8>, _>(0)))
}

/// The times of the newest `limit.max` releases of `key` within its window, oldest
/// first: all that [`rate_wait`] needs, and a read bounded by the limit rather than by
/// how many slots the window holds.
async fn recent<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    ex: E,
    key: &RateKey,
    limit: RateLimit,
    now: u64,
) -> Result<Vec<u64>, StorageFailure> {
    let rows = sqlx::query(
        "SELECT at FROM rate_slots WHERE scope = $1 AND tenant = $2 AND subject = $3 AND at > $4 \
         ORDER BY at DESC LIMIT $5",
    )
    .bind(sql::scope_name(key.scope))
    .bind(&key.tenant)
    .bind(&key.id)
    .bind(to_db(now).saturating_sub(to_db(limit.window)))
    .bind(i64::from(limit.max))
    .fetch_all(ex)
    .await
    .map_err(failed("read the rate slots"))?;
    Ok(rows
        .iter()
        .rev()
        .map(|r| from_db(r.get::<i64, _>(0)))
        .collect())
}

/// Makes sure `tenant` has a serial row and locks it until the transaction ends: every
/// keyring change of a tenant goes through here, one at a time.
async fn lock_serial(
    tx: &mut Tx,
    tenant: &str,
    operation: &'static str,
) -> Result<(), StorageFailure> {
    sqlx::query(
        "INSERT INTO tenant_serials (tenant, serial) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .execute(&mut **tx)
    .await
    .map_err(failed(operation))?;
    sqlx::query("SELECT serial FROM tenant_serials WHERE tenant = $1 FOR UPDATE")
        .bind(tenant)
        .fetch_one(&mut **tx)
        .await
        .map_err(failed(operation))?;
    Ok(())
}

/// The commit's checks in one statement: what it would refuse, if anything.
async fn release_check<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    ex: E,
    c: &ReleaseCommit<'_>,
    lock: bool,
) -> Result<Option<ReleaseOutcome>, StorageFailure> {
    let op = "check the release";
    let statement = sql::release_check_sql('$', c.rate_keys.len(), lock);
    let row = sql::bind_release_check(sqlx::query(&statement), c)
        .fetch_one(ex)
        .await
        .map_err(failed(op))?;
    let kth_newest = (0..c.rate_keys.len())
        .map(|i| row.try_get::<Option<i64>, _>(4 + i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed(op))?;
    sql::release_check_outcome(
        c,
        sql::ReleaseCheckRow {
            floor: row.try_get(0).map_err(failed(op))?,
            spent: row.try_get::<bool, _>(1).map_err(failed(op))?,
            envelope_id: row.try_get(2).map_err(failed(op))?,
            key_state: row.try_get(3).map_err(failed(op))?,
            kth_newest,
        },
    )
}

/// One rate slot per key at `now`, in one statement.
async fn take_rate_slots(
    ex: impl sqlx::Executor<'_, Database = Postgres>,
    keys: &[RateKey],
    now: u64,
) -> Result<(), StorageFailure> {
    if keys.is_empty() {
        return Ok(());
    }
    let statement = sql::rate_slots_insert_sql('$', keys.len());
    let mut query = sqlx::query(&statement);
    for k in keys {
        query = query
            .bind(sql::scope_name(k.scope))
            .bind(&k.tenant)
            .bind(&k.id)
            .bind(to_db(now));
    }
    query
        .execute(ex)
        .await
        .map(drop)
        .map_err(failed("take the rate slots"))
}

#[async_trait]
impl ServiceStore for PostgresStore {
    async fn device(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<DeviceRecord>, StorageFailure> {
        let row = sqlx::query(
            "SELECT user_id, device_key, envelope FROM devices WHERE tenant = $1 AND device = $2",
        )
        .bind(tenant)
        .bind(device)
        .fetch_optional(&self.pool)
        .await
        .map_err(failed("read a device"))?;
        row.map(|r| sql::device_record(r.get(0), &r.get::<Vec<u8>, _>(1), r.get(2)))
            .transpose()
    }

    async fn put_device(
        &self,
        tenant: &str,
        device: &str,
        user: &str,
        key: &VerifyingKey,
    ) -> Result<(), StorageFailure> {
        sqlx::query(
            "INSERT INTO devices (tenant, device, user_id, device_key) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, device) DO UPDATE SET user_id = excluded.user_id, \
             device_key = excluded.device_key, envelope = NULL, envelope_id = NULL \
             WHERE devices.user_id <> excluded.user_id OR devices.device_key <> excluded.device_key",
        )
        .bind(tenant)
        .bind(device)
        .bind(user)
        .bind(key.to_sec1().to_vec())
        .execute(&self.pool)
        .await
        .map_err(failed("register the device"))?;
        Ok(())
    }

    async fn swap_envelope(&self, swap: &EnvelopeSwap<'_>) -> Result<bool, StorageFailure> {
        let op = "swap the registered envelope";
        let mut tx = self.begin(op).await?;
        let done = sqlx::query(
            "UPDATE devices SET envelope = $1, envelope_id = $2 \
             WHERE tenant = $3 AND device = $4 AND envelope_id IS NOT DISTINCT FROM $5",
        )
        .bind(swap.new.map(|e| e.as_bytes().to_vec()))
        .bind(swap.new.map(|e| e.envelope_id().as_bytes().to_vec()))
        .bind(swap.tenant)
        .bind(swap.device)
        .bind(swap.expected.map(|id| id.as_bytes().to_vec()))
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        insert_event(&mut tx, swap.event).await?;
        tx.commit().await.map_err(failed(op))?;
        Ok(true)
    }

    async fn token_spent(
        &self,
        issuer: &str,
        token_id: &str,
        expires_at: u64,
    ) -> Result<bool, StorageFailure> {
        if expires_at <= floor(&self.pool, false).await? {
            return Ok(true);
        }
        let row = sqlx::query("SELECT 1 FROM spent_tokens WHERE issuer = $1 AND token_id = $2")
            .bind(issuer)
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed("read the spent tokens"))?;
        Ok(row.is_some())
    }

    async fn rate_refusal(
        &self,
        keys: &[RateKey],
        policy: &RatePolicy,
        now: u64,
    ) -> Result<Option<(RateScope, u64)>, StorageFailure> {
        for k in keys {
            let limit = policy.limit(k.scope);
            let times = recent(&self.pool, k, limit, now).await?;
            if let Some(wait) = rate_wait(&times, limit, now) {
                return Ok(Some((k.scope, wait)));
            }
        }
        Ok(None)
    }

    async fn commit_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<ReleaseOutcome, StorageFailure> {
        let op = "commit the release";
        let mut tx = self.begin(op).await?;
        // Serialise releases per user and per device (in one order everywhere, so two
        // releases never wait for each other's second lock).
        let mut locks: Vec<String> = c
            .rate_keys
            .iter()
            .map(|k| sql::rate_lock_name(k.scope, &k.tenant, &k.id))
            .collect();
        locks.sort();
        for name in &locks {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(failed(op))?;
        }
        // Every check in one statement, with share locks on the rows it reads (a
        // duplicate of the same user and device holds the same advisory locks, so it sees
        // the first's commit here).
        if let Some(refused) = release_check(&mut *tx, c, true).await? {
            return Ok(refused);
        }
        // A concurrent duplicate waits here for the first to commit, then inserts
        // nothing.
        let spent = sqlx::query(
            "INSERT INTO spent_tokens (issuer, token_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(c.issuer)
        .bind(c.token_id)
        .bind(to_db(c.token_expires_at))
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?
        .rows_affected()
            == 1;
        if !spent {
            return Ok(ReleaseOutcome::Replayed);
        }
        take_rate_slots(&mut *tx, c.rate_keys, c.now).await?;
        insert_event(&mut tx, c.event).await?;
        tx.commit().await.map_err(failed(op))?;
        Ok(ReleaseOutcome::Committed)
    }

    async fn check_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<Option<ReleaseOutcome>, StorageFailure> {
        release_check(&self.pool, c, false).await
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), StorageFailure> {
        let op = "record the audit event";
        let mut tx = self.begin(op).await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await.map_err(failed(op))
    }

    async fn audit_events(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, AuditEvent)>, StorageFailure> {
        let rows = sqlx::query(
            "SELECT seq, time, action, tenant, user_id, device, client_ip, client_type, key_id, \
             envelope_id, outcome, reason FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(to_db(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(failed("read the audit log"))?;
        rows.iter()
            .map(|r| {
                let event = sql::audit_event(
                    r.get(1),
                    &r.get::<String, _>(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                    r.get(9),
                    &r.get::<String, _>(10),
                    r.get(11),
                )?;
                Ok((from_db(r.get(0)), event))
            })
            .collect()
    }

    async fn keyring(&self, tenant: &str) -> Result<Option<StoredKeyring>, StorageFailure> {
        let op = "read a keyring";
        // One snapshot: the serial and the keys are of the same moment.
        let mut tx = self.begin(op).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        let Some(serial) = sqlx::query("SELECT serial FROM tenant_serials WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed(op))?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT version, key_id, state, public_spki, wrapped_private FROM tenant_keys \
             WHERE tenant = $1 ORDER BY version",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed(op))?;
        let keys = rows
            .iter()
            .map(|r| {
                sql::stored_key(
                    i64::from(r.get::<i32, _>(0)),
                    &r.get::<Vec<u8>, _>(1),
                    &r.get::<String, _>(2),
                    r.get(3),
                    r.get(4),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        tx.rollback().await.map_err(failed(op))?;
        Ok(Some(StoredKeyring {
            tenant: tenant.to_owned(),
            serial: from_db(serial.get(0)),
            keys,
        }))
    }

    async fn tenants(&self) -> Result<Vec<String>, StorageFailure> {
        let rows = sqlx::query("SELECT tenant FROM tenant_serials ORDER BY tenant")
            .fetch_all(&self.pool)
            .await
            .map_err(failed("list the tenants"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn add_current_key(&self, key: &NewTenantKey<'_>) -> Result<u32, StorageFailure> {
        let op = "add the tenant key";
        let mut tx = self.begin(op).await?;
        lock_serial(&mut tx, key.tenant, op).await?;
        let existing =
            sqlx::query("SELECT version FROM tenant_keys WHERE tenant = $1 AND key_id = $2")
                .bind(key.tenant)
                .bind(key.key_id.as_bytes().to_vec())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed(op))?;
        if let Some(row) = existing {
            let version = row.get::<i32, _>(0);
            tx.commit().await.map_err(failed(op))?;
            return u32::try_from(version)
                .map_err(|_| StorageFailure::with_source(op, "stored key version is damaged"));
        }
        sqlx::query(
            "UPDATE tenant_keys SET state = 'active' WHERE tenant = $1 AND state = 'current'",
        )
        .bind(key.tenant)
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?;
        let version: i32 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM tenant_keys WHERE tenant = $1")
                .bind(key.tenant)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed(op))?
                .get(0);
        sqlx::query(
            "INSERT INTO tenant_keys (tenant, version, key_id, state, public_spki, wrapped_private) \
             VALUES ($1, $2, $3, 'current', $4, $5)",
        )
        .bind(key.tenant)
        .bind(version)
        .bind(key.key_id.as_bytes().to_vec())
        .bind(key.public_spki.to_vec())
        .bind(key.wrapped.to_bytes())
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?;
        sqlx::query("UPDATE tenant_serials SET serial = serial + 1 WHERE tenant = $1")
            .bind(key.tenant)
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        tx.commit().await.map_err(failed(op))?;
        u32::try_from(version).map_err(|_| StorageFailure::with_source(op, "key version overflow"))
    }

    async fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, StorageFailure> {
        let op = "retire the tenant key";
        let mut tx = self.begin(op).await?;
        lock_serial(&mut tx, tenant, op).await?;
        let retired = sqlx::query(
            "UPDATE tenant_keys SET state = 'retired', wrapped_private = NULL \
             WHERE tenant = $1 AND key_id = $2 AND state = 'active'",
        )
        .bind(tenant)
        .bind(key_id.as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?
        .rows_affected()
            == 1;
        if retired {
            sqlx::query("UPDATE tenant_serials SET serial = serial + 1 WHERE tenant = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .map_err(failed(op))?;
        }
        tx.commit().await.map_err(failed(op))?;
        Ok(retired)
    }

    async fn key_encryption_key(&self, fingerprint: &[u8; 32]) -> Result<[u8; 32], StorageFailure> {
        let op = "check the key-encryption key";
        let mut tx = self.begin(op).await?;
        sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(KEK_FINGERPRINT)
            .bind(fingerprint.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        let stored: Vec<u8> = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(KEK_FINGERPRINT)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed(op))?
            .get(0);
        tx.commit().await.map_err(failed(op))?;
        sql::fingerprint_value(&stored)
    }

    async fn purge(&self, now: u64, max_window: u64) -> Result<u64, StorageFailure> {
        let op = "purge expired state";
        let mut tx = self.begin(op).await?;
        sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(REPLAY_FLOOR)
            .bind(0u64.to_be_bytes().to_vec())
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        let current = sqlx::query("SELECT value FROM meta WHERE name = $1 FOR UPDATE")
            .bind(REPLAY_FLOOR)
            .fetch_one(&mut *tx)
            .await
            .map_err(failed(op))?;
        let current = sql::floor_value(Some(current.get(0)))?;
        let removed =
            sqlx::query("DELETE FROM spent_tokens WHERE expires_at <= $1 RETURNING expires_at")
                .bind(to_db(now))
                .fetch_all(&mut *tx)
                .await
                .map_err(failed(op))?;
        let newest = removed.iter().map(|r| from_db(r.get::<i64, _>(0))).max();
        if let Some(newest) = newest.filter(|n| *n > current) {
            sqlx::query("UPDATE meta SET value = $2 WHERE name = $1")
                .bind(REPLAY_FLOOR)
                .bind(newest.to_be_bytes().to_vec())
                .execute(&mut *tx)
                .await
                .map_err(failed(op))?;
        }
        let slots = sqlx::query("DELETE FROM rate_slots WHERE at <= $1")
            .bind(to_db(now).saturating_sub(to_db(max_window)))
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?
            .rows_affected();
        tx.commit().await.map_err(failed(op))?;
        Ok(u64::try_from(removed.len())
            .unwrap_or(u64::MAX)
            .saturating_add(slots))
    }
}
