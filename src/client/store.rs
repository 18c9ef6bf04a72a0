//! Where a container's state lives: a trait whose `replace` is atomic, a file store that
//! makes it so (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory), and an in-memory store for tests.

use core::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The largest state file read; a container is a few kilobytes.
pub const MAX_STATE_LEN: u64 = 64 * 1024;

/// A storage failure. The stored state is the old one or (only for
/// [`StoreStep::SyncDir`]) possibly the new one; never a mixture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    /// The step that failed.
    pub step: StoreStep,
    /// The operating system's error kind.
    pub kind: io::ErrorKind,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage failed at {:?}: {}", self.step, self.kind)
    }
}

impl std::error::Error for StoreError {}

/// The steps of a state replacement, in order (and `Read` for loading).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreStep {
    /// Reading the current state.
    Read,
    /// Creating the temporary file.
    CreateTemp,
    /// Writing the new state to it.
    Write,
    /// Flushing it to disk.
    SyncFile,
    /// Renaming it over the state file: the commit point.
    Rename,
    /// Flushing the directory entry. After a failure here the rename has happened in
    /// memory but may not survive a power loss.
    SyncDir,
}

impl StoreStep {
    /// The steps of `replace`, in order.
    pub const REPLACE: [StoreStep; 5] = [
        StoreStep::CreateTemp,
        StoreStep::Write,
        StoreStep::SyncFile,
        StoreStep::Rename,
        StoreStep::SyncDir,
    ];
}

/// Persistent storage for one container. `replace` must be atomic: after it returns,
/// successfully or not, and after a crash at any point inside it, `load` returns either
/// the old bytes or the new ones.
pub trait ContainerStore: Send + Sync {
    /// The stored state, or `None` if nothing is stored.
    ///
    /// # Errors
    /// [`StoreError`] if it cannot be read.
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Atomically replaces the stored state.
    ///
    /// # Errors
    /// [`StoreError`] naming the step that failed.
    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError>;
}

/// Decides, for each step, whether it fails: for fault-injection tests.
pub type FaultHook = Arc<dyn Fn(StoreStep) -> io::Result<()> + Send + Sync>;

/// A container stored in one file, replaced atomically.
pub struct FileStore {
    path: PathBuf,
    faults: Option<FaultHook>,
}

impl FileStore {
    /// A store at `path`; the directory must exist. A temporary file `path` + `.tmp`
    /// is used during replacement.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: path.into(),
            faults: None,
        }
    }

    /// The same store with a fault hook consulted before each step (for tests; a failing
    /// `Write` step first writes half the bytes, like a torn write).
    #[doc(hidden)]
    pub fn with_faults(path: impl Into<PathBuf>, faults: FaultHook) -> Self {
        FileStore {
            path: path.into(),
            faults: Some(faults),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    fn step(&self, step: StoreStep, result: io::Result<()>) -> Result<(), StoreError> {
        let injected = match &self.faults {
            Some(hook) => hook(step),
            None => Ok(()),
        };
        injected.and(result).map_err(|e| StoreError {
            step,
            kind: e.kind(),
        })
    }

    fn fault(&self, step: StoreStep) -> Result<(), StoreError> {
        self.step(step, Ok(()))
    }

    fn write_temp(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.temp_path();
        self.fault(StoreStep::CreateTemp)?;
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| StoreError {
            step: StoreStep::CreateTemp,
            kind: e.kind(),
        })?;
        let half = bytes.len() / 2;
        let (first, second) = bytes.split_at(half);
        f.write_all(first).map_err(|e| StoreError {
            step: StoreStep::Write,
            kind: e.kind(),
        })?;
        self.step(StoreStep::Write, f.write_all(second))?;
        self.step(StoreStep::SyncFile, f.sync_all())
    }
}

impl ContainerStore for FileStore {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.fault(StoreStep::Read)?;
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError {
                    step: StoreStep::Read,
                    kind: e.kind(),
                })
            }
        };
        let mut buf = Vec::new();
        f.take(MAX_STATE_LEN + 1)
            .read_to_end(&mut buf)
            .map_err(|e| StoreError {
                step: StoreStep::Read,
                kind: e.kind(),
            })?;
        if buf.len() as u64 > MAX_STATE_LEN {
            return Err(StoreError {
                step: StoreStep::Read,
                kind: io::ErrorKind::InvalidData,
            });
        }
        Ok(Some(buf))
    }

    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.temp_path();
        if let Err(e) = self.write_temp(bytes) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let renamed = self.fault(StoreStep::Rename).and_then(|()| {
            fs::rename(&tmp, &self.path).map_err(|e| StoreError {
                step: StoreStep::Rename,
                kind: e.kind(),
            })
        });
        if let Err(e) = renamed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        self.step(
            StoreStep::SyncDir,
            File::open(&dir).and_then(|d| d.sync_all()),
        )
    }
}

/// A store in memory (for tests and examples).
#[derive(Default, Clone)]
pub struct MemoryStore(Arc<Mutex<Option<Vec<u8>>>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ContainerStore for MemoryStore {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let guard = self.0.lock().map_err(|_| StoreError {
            step: StoreStep::Read,
            kind: io::ErrorKind::Other,
        })?;
        Ok(guard.clone())
    }

    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let mut guard = self.0.lock().map_err(|_| StoreError {
            step: StoreStep::Rename,
            kind: io::ErrorKind::Other,
        })?;
        *guard = Some(bytes.to_vec());
        Ok(())
    }
}

impl<S: ContainerStore + ?Sized> ContainerStore for Arc<S> {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load()
    }

    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).replace(bytes)
    }
}
