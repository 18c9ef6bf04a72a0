//! The embedded store: one SQLite file (through sqlx, SQLite compiled in), the default
//! for a service on one machine. WAL journal with `synchronous = FULL`, so a commit that
//! returned survives a power loss; every write is a `BEGIN IMMEDIATE` transaction, so
//! writers (threads or processes on the machine) are serialised and a check made inside
//! one still holds at its commit. The schema is migrated on open.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::records::rate_wait;
use super::sql::{self, failed, from_db, to_db, EventColumns, KEK_FINGERPRINT, REPLAY_FLOOR};
use super::{
    DeviceRecord, EnvelopeSwap, NewTenantKey, RateKey, RateLimit, RatePolicy, ReleaseCommit,
    ReleaseOutcome, ServiceStore, StorageFailure, StoredKeyring,
};
use crate::keys::{KeyId, VerifyingKey};
use crate::service::audit::AuditEvent;
use crate::service::error::RateScope;

/// A [`ServiceStore`] in one SQLite file.
///
/// # Examples
/// ```
/// use pin_recovery::service::{ServiceStore, SqliteStore};
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("service.db");
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// let store = SqliteStore::open(&path).await?; // created and migrated on first open
/// assert!(store.tenants().await?.is_empty());
/// # Ok::<(), pin_recovery::service::StorageFailure>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` and migrates its schema.
    ///
    /// # Errors
    /// [`StorageFailure`] if it cannot be opened or migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StorageFailure> {
        let options = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::open_with(options).await
    }

    /// Opens an in-memory database (for tests: it is gone when the store is dropped).
    ///
    /// # Errors
    /// [`StorageFailure`].
    pub async fn open_in_memory() -> Result<Self, StorageFailure> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(failed("open the database"))?
            .foreign_keys(true);
        // One connection: each in-memory connection is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(failed("open the database"))?;
        Self::from_pool(pool).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StorageFailure> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A connection to a local file cannot go stale: no ping before each use (it
            // was one more round trip to SQLite's worker thread per query).
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await
            .map_err(failed("open the database"))?;
        Self::from_pool(pool).await
    }

    /// A store over an existing pool (whose options the caller chose); migrates it.
    ///
    /// # Errors
    /// [`StorageFailure`] if the migration fails.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StorageFailure> {
        super::migrations::migrator(super::migrations::SQLITE)
            .await?
            .run(&pool)
            .await
            .map_err(|e| StorageFailure::with_source("migrate the schema", e))?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool (for operators' own queries and for tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write(
        &self,
        operation: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, StorageFailure> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(failed(operation))
    }
}

async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    event: &AuditEvent,
) -> Result<(), StorageFailure> {
    let c = EventColumns::of(event);
    sqlx::query(
        "INSERT INTO audit_events (time, action, tenant, user_id, device, client_ip, \
         client_type, key_id, envelope_id, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

async fn floor<'e, E: sqlx::Executor<'e, Database = Sqlite>>(ex: E) -> Result<u64, StorageFailure> {
    let row = sqlx::query("SELECT value FROM meta WHERE name = ?")
        .bind(REPLAY_FLOOR)
        .fetch_optional(ex)
        .await
        .map_err(failed("read the replay floor"))?;
    sql::floor_value(row.map(|r| r.get::<Vec<u8>, _>(0)))
}

/// The times of the newest `limit.max` releases of `key` within its window, oldest
/// first: all that [`rate_wait`] needs, and a read bounded by the limit rather than by
/// how many slots the window holds.
async fn recent<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    ex: E,
    key: &RateKey,
    limit: RateLimit,
    now: u64,
) -> Result<Vec<u64>, StorageFailure> {
    let rows = sqlx::query(
        "SELECT at FROM rate_slots WHERE scope = ? AND tenant = ? AND subject = ? AND at > ? \
         ORDER BY at DESC LIMIT ?",
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

/// The commit's checks in one statement: what it would refuse, if anything.
async fn release_check<'e, E: sqlx::Executor<'e, Database = Sqlite>>(
    ex: E,
    c: &ReleaseCommit<'_>,
) -> Result<Option<ReleaseOutcome>, StorageFailure> {
    let op = "check the release";
    let statement = sql::release_check_sql('?', c.rate_keys.len(), false);
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
            spent: row.try_get::<i64, _>(1).map_err(failed(op))? != 0,
            envelope_id: row.try_get(2).map_err(failed(op))?,
            key_state: row.try_get(3).map_err(failed(op))?,
            kth_newest,
        },
    )
}

/// One rate slot per key at `now`, in one statement.
async fn take_rate_slots(
    ex: impl sqlx::Executor<'_, Database = Sqlite>,
    keys: &[RateKey],
    now: u64,
) -> Result<(), StorageFailure> {
    if keys.is_empty() {
        return Ok(());
    }
    let statement = sql::rate_slots_insert_sql('?', keys.len());
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
impl ServiceStore for SqliteStore {
    async fn device(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<DeviceRecord>, StorageFailure> {
        let row = sqlx::query(
            "SELECT user_id, device_key, envelope FROM devices WHERE tenant = ? AND device = ?",
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
            "INSERT INTO devices (tenant, device, user_id, device_key) VALUES (?, ?, ?, ?) \
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
        let mut tx = self.write(op).await?;
        let done = sqlx::query(
            "UPDATE devices SET envelope = ?, envelope_id = ? \
             WHERE tenant = ? AND device = ? AND envelope_id IS ?",
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
        if expires_at <= floor(&self.pool).await? {
            return Ok(true);
        }
        let row = sqlx::query("SELECT 1 FROM spent_tokens WHERE issuer = ? AND token_id = ?")
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
        // IMMEDIATE: the checks hold at the commit, as no other writer runs.
        let mut tx = self.write(op).await?;
        if let Some(refused) = release_check(&mut *tx, c).await? {
            return Ok(refused);
        }
        sqlx::query("INSERT INTO spent_tokens (issuer, token_id, expires_at) VALUES (?, ?, ?)")
            .bind(c.issuer)
            .bind(c.token_id)
            .bind(to_db(c.token_expires_at))
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        take_rate_slots(&mut *tx, c.rate_keys, c.now).await?;
        insert_event(&mut tx, c.event).await?;
        tx.commit().await.map_err(failed(op))?;
        Ok(ReleaseOutcome::Committed)
    }

    async fn check_release(
        &self,
        c: &ReleaseCommit<'_>,
    ) -> Result<Option<ReleaseOutcome>, StorageFailure> {
        release_check(&self.pool, c).await
    }

    async fn record_event(&self, event: &AuditEvent) -> Result<(), StorageFailure> {
        let op = "record the audit event";
        let mut tx = self.write(op).await?;
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
             envelope_id, outcome, reason FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?",
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
        // One read transaction: the serial and the keys are of the same moment.
        let mut tx = self.pool.begin().await.map_err(failed(op))?;
        let Some(serial) = sqlx::query("SELECT serial FROM tenant_serials WHERE tenant = ?")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed(op))?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT version, key_id, state, public_spki, wrapped_private FROM tenant_keys \
             WHERE tenant = ? ORDER BY version",
        )
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed(op))?;
        let keys = rows
            .iter()
            .map(|r| {
                sql::stored_key(
                    r.get(0),
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
        let mut tx = self.write(op).await?;
        sqlx::query(
            "INSERT INTO tenant_serials (tenant, serial) VALUES (?, 0) ON CONFLICT DO NOTHING",
        )
        .bind(key.tenant)
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?;
        let existing =
            sqlx::query("SELECT version FROM tenant_keys WHERE tenant = ? AND key_id = ?")
                .bind(key.tenant)
                .bind(key.key_id.as_bytes().to_vec())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed(op))?;
        if let Some(row) = existing {
            let version = row.get::<i64, _>(0);
            tx.commit().await.map_err(failed(op))?;
            return u32::try_from(version)
                .map_err(|_| StorageFailure::with_source(op, "stored key version is damaged"));
        }
        sqlx::query(
            "UPDATE tenant_keys SET state = 'active' WHERE tenant = ? AND state = 'current'",
        )
        .bind(key.tenant)
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?;
        let version: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM tenant_keys WHERE tenant = ?")
                .bind(key.tenant)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed(op))?
                .get(0);
        sqlx::query(
            "INSERT INTO tenant_keys (tenant, version, key_id, state, public_spki, wrapped_private) \
             VALUES (?, ?, ?, 'current', ?, ?)",
        )
        .bind(key.tenant)
        .bind(version)
        .bind(key.key_id.as_bytes().to_vec())
        .bind(key.public_spki.to_vec())
        .bind(key.wrapped.to_bytes())
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?;
        sqlx::query("UPDATE tenant_serials SET serial = serial + 1 WHERE tenant = ?")
            .bind(key.tenant)
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        tx.commit().await.map_err(failed(op))?;
        u32::try_from(version).map_err(|_| StorageFailure::with_source(op, "key version overflow"))
    }

    async fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, StorageFailure> {
        let op = "retire the tenant key";
        let mut tx = self.write(op).await?;
        let retired = sqlx::query(
            "UPDATE tenant_keys SET state = 'retired', wrapped_private = NULL \
             WHERE tenant = ? AND key_id = ? AND state = 'active'",
        )
        .bind(tenant)
        .bind(key_id.as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .map_err(failed(op))?
        .rows_affected()
            == 1;
        if retired {
            sqlx::query("UPDATE tenant_serials SET serial = serial + 1 WHERE tenant = ?")
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
        let mut tx = self.write(op).await?;
        sqlx::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(KEK_FINGERPRINT)
            .bind(fingerprint.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        let stored: Vec<u8> = sqlx::query("SELECT value FROM meta WHERE name = ?")
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
        let mut tx = self.write(op).await?;
        let newest: Option<i64> =
            sqlx::query("SELECT MAX(expires_at) FROM spent_tokens WHERE expires_at <= ?")
                .bind(to_db(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(failed(op))?
                .get(0);
        let mut gone = sqlx::query("DELETE FROM spent_tokens WHERE expires_at <= ?")
            .bind(to_db(now))
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?
            .rows_affected();
        if let Some(newest) = newest {
            let raised = floor(&mut *tx).await?.max(from_db(newest));
            sqlx::query(
                "INSERT INTO meta (name, value) VALUES (?, ?) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(REPLAY_FLOOR)
            .bind(raised.to_be_bytes().to_vec())
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?;
        }
        gone += sqlx::query("DELETE FROM rate_slots WHERE at <= ?")
            .bind(to_db(now).saturating_sub(to_db(max_window)))
            .execute(&mut *tx)
            .await
            .map_err(failed(op))?
            .rows_affected();
        tx.commit().await.map_err(failed(op))?;
        Ok(gone)
    }
}
