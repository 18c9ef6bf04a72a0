//! Issue 10's proofs on the durable stores (SQLite and PostgreSQL; the in-memory store
//! forgets everything by design): a service rebuilt from the same store keeps its state;
//! a wrong key-encryption key stops the start before anything is decrypted or written; a
//! damaged stored key is a clear error; an unavailable database refuses with a typed
//! error and releases nothing.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::backends::{self, Backend, Scratch};
use common::world::{service_config, test_policy, AUDIENCE, PIN, T0};
use libtest_mimic::{Arguments, Trial};
use pin_recovery::client::{Container, MemoryStore, Pin as DevicePin, ServiceTrust};
use pin_recovery::service::{
    IssuerTrust, KeyEncryptionKey, RateLimit, RatePolicy, RecoveryService, RequestContext,
    ServiceError, ServiceStore, StartError,
};
use pin_recovery::testkit::TestIdentityProvider;
use pin_recovery::{
    Binding, Clock, KeyDocumentSigner, ManualClock, RecoveryRequest, ServicePrivateKey, SigningKey,
};

type Case = fn(Scratch) -> Pin<Box<dyn Future<Output = Scratch>>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |s| Box::pin($name(s)))),*]
    };
}

const CASES: &[(&str, Case)] = cases![
    a_restarted_service_keeps_its_state,
    a_wrong_key_encryption_key_stops_the_start,
    a_damaged_stored_key_is_a_clear_error,
    an_unavailable_database_releases_nothing,
];

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let not_run = backend.not_run();
        if let Some(reason) = &not_run {
            println!("{}: {reason}", backend.name());
        }
        for (name, case) in CASES {
            let case = *case;
            trials.push(
                Trial::test(format!("{}::{name}", backend.name()), move || {
                    backends::run(backend, case);
                    Ok(())
                })
                .with_ignored_flag(not_run.is_some()),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn ctx() -> RequestContext {
    RequestContext::default()
}

/// Everything that outlives a service process: what the operator keeps (the
/// key-encryption key, the document signing key), the identity provider, the device.
struct Rig {
    kek: String,
    signer: Vec<u8>,
    idp_key: Vec<u8>,
    clock: Arc<ManualClock>,
    binding: Binding,
    container: Container<MemoryStore>,
}

impl Rig {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let signer = SigningKey::generate().unwrap();
        let trust = ServiceTrust {
            key_document_key: *signer.verifying_key(),
        };
        Rig {
            kek: KeyEncryptionKey::generate().unwrap().to_hex().to_string(),
            signer: signer.to_pkcs8_der().unwrap().to_vec(),
            idp_key: SigningKey::generate()
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .to_vec(),
            clock: clock.clone(),
            binding: Binding::new("contoso", "alice", "LAPTOP-1").unwrap(),
            container: Container::with_clock(
                MemoryStore::new(),
                test_policy(true),
                Some(trust),
                clock,
            ),
        }
    }

    fn idp(&self) -> TestIdentityProvider {
        TestIdentityProvider::from_key(
            "https://idp.test",
            "k1",
            SigningKey::from_pkcs8_der(&self.idp_key).unwrap(),
        )
    }

    /// A service over `store` with the operator's keys (or `kek` instead).
    async fn service_with(
        &self,
        store: Arc<dyn ServiceStore>,
        kek: &str,
    ) -> Result<RecoveryService, StartError> {
        RecoveryService::builder(
            service_config(),
            KeyDocumentSigner::new(SigningKey::from_pkcs8_der(&self.signer).unwrap()),
            IssuerTrust::new().trust("contoso", self.idp().trusted_issuer().unwrap()),
            store,
            KeyEncryptionKey::from_text(kek).unwrap(),
        )
        .rate_policy(RatePolicy {
            per_user: RateLimit {
                max: 1,
                window: 3600,
            },
            per_device: RateLimit {
                max: 1,
                window: 3600,
            },
        })
        .clock(self.clock.clone())
        .build()
        .await
    }

    async fn service(&self, s: &Scratch) -> RecoveryService {
        self.service_with(s.open().await, &self.kek).await.unwrap()
    }

    /// Sets up the tenant, the device and its registered envelope.
    async fn enrol(&self, service: &RecoveryService) {
        service
            .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
            .await
            .unwrap();
        let keys = service.key_document("contoso").await.unwrap();
        let enrolment = self
            .container
            .enrol(&self.binding, &DevicePin::new(PIN), Some(&keys))
            .unwrap();
        service
            .register_device(&self.binding, enrolment.device_public_key, &ctx())
            .await
            .unwrap();
        self.register(service).await;
    }

    async fn register(&self, service: &RecoveryService) {
        let reg = self.container.pending_registration().unwrap().unwrap();
        service.register_envelope(&reg, &ctx()).await.unwrap();
        self.container
            .confirm_registration(reg.envelope().envelope_id())
            .unwrap();
    }

    fn request(&self) -> (RecoveryRequest, pin_recovery::client::PendingRecovery) {
        let mut p = self.container.begin_recovery().unwrap();
        let a = self
            .idp()
            .mfa_assertion(AUDIENCE, &self.binding, p.mfa_nonce(), self.clock.now())
            .unwrap();
        let req = p.request(&a).unwrap();
        (req, p)
    }
}

async fn a_restarted_service_keeps_its_state(s: Scratch) -> Scratch {
    let rig = Rig::new();
    let first = rig.service(&s).await;
    rig.enrol(&first).await;
    let serial = first.keys("contoso").await.unwrap().len();
    let registered = first.store().device("contoso", "LAPTOP-1").await.unwrap();
    let (spent, _) = rig.request();
    first.handle(&spent, &ctx()).await.unwrap();
    drop(first);

    let second = rig.service(&s).await;
    // The spent assertion stays spent; the rate window stays full.
    assert_eq!(
        second.handle(&spent, &ctx()).await,
        Err(ServiceError::AssertionReplayed)
    );
    let (fresh, _) = rig.request();
    assert!(matches!(
        second.handle(&fresh, &ctx()).await,
        Err(ServiceError::RateLimited { .. })
    ));
    assert_eq!(
        second.store().device("contoso", "LAPTOP-1").await.unwrap(),
        registered,
        "the registration survives"
    );
    // Once the window has passed, the persisted key opens the envelope.
    rig.clock.advance(3600);
    let (req, pending) = rig.request();
    let resp = second.handle(&req, &ctx()).await.unwrap();
    let keys = second.key_document("contoso").await.unwrap();
    rig.container
        .complete_recovery(pending, &resp, &DevicePin::new("730145"), &keys)
        .unwrap();
    rig.register(&second).await;
    // A rotation after the restart: a higher serial, which the device accepts.
    let before = rig.container.status().unwrap().key_document_serial;
    second
        .add_current_key("contoso", ServicePrivateKey::generate_p256().unwrap())
        .await
        .unwrap();
    drop(second);
    let third = rig.service(&s).await;
    let keys = third.key_document("contoso").await.unwrap();
    let signed = rig
        .container
        .sign_in(&DevicePin::new("730145"), b"c", Some(&keys))
        .unwrap();
    assert!(signed.resealed.is_some(), "resealed to the new key");
    let after = rig.container.status().unwrap().key_document_serial;
    assert!(after > before, "serial {after} after {before}");
    assert_eq!(third.keys("contoso").await.unwrap().len(), serial + 1);
    rig.register(&third).await;
    s
}

async fn a_wrong_key_encryption_key_stops_the_start(s: Scratch) -> Scratch {
    let rig = Rig::new();
    let first = rig.service(&s).await;
    rig.enrol(&first).await;
    drop(first);
    let store = s.open().await;
    let before = store.keyring("contoso").await.unwrap();
    let wrong = KeyEncryptionKey::generate().unwrap().to_hex();
    assert_eq!(
        rig.service_with(store.clone(), &wrong).await.err(),
        Some(StartError::WrongKeyEncryptionKey)
    );
    assert_eq!(
        store.keyring("contoso").await.unwrap(),
        before,
        "nothing overwritten"
    );
    // The right key still starts, and its keys still open.
    let again = rig.service(&s).await;
    let (req, _) = rig.request();
    again.handle(&req, &ctx()).await.unwrap();
    s
}

async fn a_damaged_stored_key_is_a_clear_error(s: Scratch) -> Scratch {
    let rig = Rig::new();
    let first = rig.service(&s).await;
    rig.enrol(&first).await;
    let key_id = first.keys("contoso").await.unwrap()[0].key_id;
    drop(first);
    // Flip a byte of the wrapped private key in the database.
    match s.backend {
        Backend::Sqlite => {
            use sqlx::Row;
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", s.location()))
                .await
                .unwrap();
            let mut wrapped: Vec<u8> = sqlx::query("SELECT wrapped_private FROM tenant_keys")
                .fetch_one(&pool)
                .await
                .unwrap()
                .get(0);
            wrapped[20] ^= 1;
            sqlx::query("UPDATE tenant_keys SET wrapped_private = ?")
                .bind(wrapped)
                .execute(&pool)
                .await
                .unwrap();
        }
        _ => {
            let pool = sqlx::PgPool::connect(&s.location()).await.unwrap();
            sqlx::query(
                "UPDATE tenant_keys SET wrapped_private = \
                 set_byte(wrapped_private, 20, get_byte(wrapped_private, 20) # 1)",
            )
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    match rig.service_with(s.open().await, &rig.kek).await.err() {
        Some(StartError::UnreadableKey {
            tenant,
            key_id: k,
            reason,
        }) => {
            assert_eq!((tenant.as_str(), k), ("contoso", key_id));
            assert!(reason.contains("unwrap"), "{reason}");
        }
        other => panic!("expected UnreadableKey, got {other:?}"),
    }
    s
}

async fn an_unavailable_database_releases_nothing(s: Scratch) -> Scratch {
    let rig = Rig::new();
    // SQLite: a store that waits at most 200 ms for the write lock, which another
    // connection holds. PostgreSQL: the database stops accepting connections.
    let store: Arc<dyn ServiceStore> = match s.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(s.location())
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_millis(200));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(2))
                .connect_with(options)
                .await
                .unwrap();
            Arc::new(
                pin_recovery::service::SqliteStore::from_pool(pool)
                    .await
                    .unwrap(),
            )
        }
        _ => s.open().await,
    };
    let service = rig.service_with(store.clone(), &rig.kek).await.unwrap();
    rig.enrol(&service).await;
    let (req, _) = rig.request();
    let events = store.audit_events(0, 1000).await.unwrap().len();

    let outage = Outage::begin(&s).await;
    assert!(matches!(
        service.handle(&req, &ctx()).await,
        Err(ServiceError::Unavailable(_))
    ));
    outage.end(&s).await;

    assert!(
        !store
            .token_spent(rig.idp().issuer(), &token_id(&req), u64::MAX)
            .await
            .unwrap(),
        "nothing spent"
    );
    let released = store
        .audit_events(0, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|(_, e)| e.outcome == pin_recovery::service::AuditOutcome::Released)
        .count();
    assert_eq!(released, 0, "nothing released");
    assert!(store.audit_events(0, 1000).await.unwrap().len() <= events + 1);
    // Back up: the same request is answered.
    service.handle(&req, &ctx()).await.unwrap();
    s
}

fn token_id(req: &RecoveryRequest) -> String {
    use base64::Engine;
    let claims = req.assertion().split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

/// A database outage, for as long as it lasts.
enum Outage {
    /// Another connection holds SQLite's write lock.
    SqliteLocked(sqlx::SqliteConnection),
    /// The PostgreSQL database refuses connections.
    PostgresClosed,
}

impl Outage {
    async fn begin(s: &Scratch) -> Self {
        use sqlx::Connection;
        match s.backend {
            Backend::Sqlite => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", s.location()))
                        .await
                        .unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Outage::SqliteLocked(conn)
            }
            _ => {
                let db = s.location().rsplit('/').next().unwrap().to_owned();
                let admin = sqlx::PgPool::connect(&std::env::var(backends::POSTGRES_URL).unwrap())
                    .await
                    .unwrap();
                sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
                    .execute(&admin)
                    .await
                    .unwrap();
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                )
                .bind(&db)
                .execute(&admin)
                .await
                .unwrap();
                Outage::PostgresClosed
            }
        }
    }

    async fn end(self, s: &Scratch) {
        match self {
            Outage::SqliteLocked(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            }
            Outage::PostgresClosed => {
                let db = s.location().rsplit('/').next().unwrap().to_owned();
                let admin = sqlx::PgPool::connect(&std::env::var(backends::POSTGRES_URL).unwrap())
                    .await
                    .unwrap();
                sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
                    .execute(&admin)
                    .await
                    .unwrap();
            }
        }
    }
}
