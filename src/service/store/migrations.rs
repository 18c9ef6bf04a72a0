//! The schema migrations, numbered SQL files in `migrations/<database>/`, compiled into
//! the library and applied by sqlx's migrator when a store opens (each once, in order,
//! with its checksum recorded, so an edited migration is caught). Embedding them by hand
//! rather than with `sqlx::migrate!` keeps sqlx's proc-macro crate, and a second build
//! of SQLite for it, out of the build.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::StorageFailure;

/// One migration: its number, description and SQL.
type Embedded = (i64, &'static str, &'static str);

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Embedded] = &[(
    1,
    "service state",
    include_str!("../../../migrations/sqlite/0001_service_state.sql"),
)];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Embedded] = &[(
    1,
    "service state",
    include_str!("../../../migrations/postgres/0001_service_state.sql"),
)];

#[derive(Debug)]
struct Source(&'static [Embedded]);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator for `migrations`.
pub(crate) async fn migrator(migrations: &'static [Embedded]) -> Result<Migrator, StorageFailure> {
    Migrator::new(Source(migrations))
        .await
        .map_err(|e| StorageFailure::with_source("load the schema migrations", e))
}
