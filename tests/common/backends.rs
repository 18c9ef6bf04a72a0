//! The three store backends, for tests that run against each: in memory, SQLite in a
//! temporary file, and PostgreSQL in a fresh database of the server that
//! `PIN_RECOVERY_TEST_POSTGRES` names (`scripts/postgres start` starts one). Without that
//! variable the PostgreSQL cases are not run, and say why; with
//! `PIN_RECOVERY_REQUIRE_POSTGRES=1` (as in CI) its absence is a failure.

use std::sync::Arc;

use pin_recovery::service::{MemoryStore, PostgresStore, ServiceStore, SqliteStore};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

pub const ALL: [Backend; 3] = [Backend::Memory, Backend::Sqlite, Backend::Postgres];

pub const POSTGRES_URL: &str = "PIN_RECOVERY_TEST_POSTGRES";

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Why this backend cannot be tested here, if it cannot.
    pub fn not_run(self) -> Option<String> {
        if self != Backend::Postgres || std::env::var(POSTGRES_URL).is_ok() {
            return None;
        }
        if std::env::var("PIN_RECOVERY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("{POSTGRES_URL} is not set, and PIN_RECOVERY_REQUIRE_POSTGRES=1");
        }
        Some(format!(
            "not run: no PostgreSQL server ({POSTGRES_URL} unset; `eval \"$(scripts/postgres start)\"` starts one)"
        ))
    }
}

/// What one test's store lives in: a temporary directory, or a PostgreSQL database made
/// for it and dropped afterwards.
pub struct Scratch {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
    memory: Arc<MemoryStore>,
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom(&mut b);
    base16ct::lower::encode_string(&b)
}

fn getrandom(out: &mut [u8]) {
    use rand_core::RngCore;
    rand_core::OsRng.fill_bytes(out);
}

impl Scratch {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = if backend == Backend::Postgres {
            let admin = std::env::var(POSTGRES_URL).unwrap();
            let name = format!("pinrec_{}", random_suffix());
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            let (base, _) = admin.rsplit_once('/').unwrap();
            Some((admin.clone(), format!("{base}/{name}")))
        } else {
            None
        };
        Scratch {
            backend,
            dir,
            pg,
            memory: Arc::new(MemoryStore::new()),
        }
    }

    /// The database URL (PostgreSQL) or file path (SQLite) processes share.
    pub fn location(&self) -> String {
        match (&self.pg, self.backend) {
            (Some((_, url)), _) => url.clone(),
            (None, _) => self.dir.path().join("service.db").display().to_string(),
        }
    }

    /// A store over this scratch space: the same state each time (a new connection to
    /// the same database, for SQL).
    pub async fn open(&self) -> Arc<dyn ServiceStore> {
        match self.backend {
            Backend::Memory => self.memory.clone(),
            Backend::Sqlite => Arc::new(SqliteStore::open(self.location()).await.unwrap()),
            Backend::Postgres => Arc::new(PostgresStore::connect(&self.location()).await.unwrap()),
        }
    }

    /// Makes every insert into the audit log fail (a trigger raising an error, in the
    /// middle of whatever transaction does it), or mends it. The in-memory store, whose
    /// commits are one step, fails the whole commit instead.
    pub async fn break_audit_log(&self, broken: bool) {
        match self.backend {
            Backend::Memory => self
                .memory
                .fail_write(broken.then_some("commit the release")),
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", self.location()))
                    .await
                    .unwrap();
                let sql = if broken {
                    "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events \
                     BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
                } else {
                    "DROP TRIGGER audit_down"
                };
                sqlx::query(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.location()).await.unwrap();
                let sql: &[&str] = if broken {
                    &[
                        "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
                        "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events \
                         FOR EACH ROW EXECUTE FUNCTION audit_down()",
                    ]
                } else {
                    &[
                        "DROP TRIGGER audit_down ON audit_events",
                        "DROP FUNCTION audit_down()",
                    ]
                };
                for q in sql {
                    sqlx::query(q).execute(&pool).await.unwrap();
                }
                pool.close().await;
            }
        }
    }

    /// Drops the PostgreSQL database (connections included).
    pub async fn cleanup(self) {
        if let Some((admin, url)) = &self.pg {
            let name = url.rsplit('/').next().unwrap();
            if let Ok(pool) = sqlx::PgPool::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        }
    }
}

/// Opens a store at `location` as `backend` (for child processes).
pub async fn open_at(backend: Backend, location: &str) -> Arc<dyn ServiceStore> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Sqlite => Arc::new(SqliteStore::open(location).await.unwrap()),
        Backend::Postgres => Arc::new(PostgresStore::connect(location).await.unwrap()),
    }
}

pub fn parse(name: &str) -> Backend {
    ALL.into_iter().find(|b| b.name() == name).unwrap()
}

/// Runs `test` for `backend` on a fresh runtime with a fresh scratch space.
pub fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Scratch) -> Fut,
    Fut: std::future::Future<Output = Scratch>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let scratch = Scratch::new(backend).await;
        let scratch = test(scratch).await;
        scratch.cleanup().await;
    });
}
