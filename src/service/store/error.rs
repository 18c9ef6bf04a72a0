use core::fmt;
use std::sync::Arc;

/// A backing store failed: what it was doing, and the store's own error when there is
/// one (a database driver's, say), as its [`std::error::Error::source`]. Nothing was
/// changed by the operation that failed.
///
/// Its `Display` says only what failed (the crate's errors never repeat their source's
/// text): log it with its `source()` chain.
#[derive(Clone, Debug)]
pub struct StorageFailure {
    operation: &'static str,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StorageFailure {
    /// A failure while doing `operation` (words: "record the audit event").
    pub fn new(operation: &'static str) -> Self {
        StorageFailure {
            operation,
            source: None,
        }
    }

    /// A failure while doing `operation`, caused by `source`.
    pub fn with_source(
        operation: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StorageFailure {
            operation,
            source: Some(Arc::from(source.into())),
        }
    }

    /// What the store was doing.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

/// Two failures are alike when they happened in the same operation (the sources, often
/// driver errors, are not comparable).
impl PartialEq for StorageFailure {
    fn eq(&self, other: &Self) -> bool {
        self.operation == other.operation
    }
}

impl Eq for StorageFailure {}

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service storage failed to {}", self.operation)
    }
}

impl std::error::Error for StorageFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
