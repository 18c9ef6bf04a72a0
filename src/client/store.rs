//! Where a container's state lives: a trait whose `replace` is atomic and whose `lock`
//! serialises read-modify-writes, a file store that makes both so (write a uniquely
//! named temporary file, fsync it, rename it over the old one, fsync the directory;
//! an advisory lock on a side file), and an in-memory store for tests.

use core::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

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

/// The steps of a state replacement, in order (and `Read` for loading, `Lock` for
/// taking the lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreStep {
    /// Taking the lock that serialises operations on the container.
    Lock,
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
/// the old bytes or the new ones. `lock` gives exclusive use across a read-modify-write,
/// against other threads and other processes, so that two of them never lose one's
/// update (a failed-PIN count, say).
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

    /// Waits for exclusive use of the container; it ends when the lock is dropped.
    ///
    /// # Errors
    /// [`StoreError`] at [`StoreStep::Lock`].
    fn lock(&self) -> Result<StoreLock, StoreError>;
}

/// Exclusive use of a container's store, released on drop.
#[must_use = "the lock is released as soon as it is dropped"]
pub struct StoreLock(#[allow(dead_code)] Box<dyn Send>);

impl StoreLock {
    /// A lock held for as long as `guard` lives (for implementations of
    /// [`ContainerStore`]).
    pub fn new(guard: impl Send + 'static) -> Self {
        StoreLock(Box::new(guard))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Decides, for each step, whether it fails: for fault-injection tests.
pub type FaultHook = Arc<dyn Fn(StoreStep) -> io::Result<()> + Send + Sync>;

/// A container stored in one file, replaced atomically, with an advisory lock on a side
/// file (`path` + `.lock`, never replaced) held across each operation.
///
/// # Examples
/// ```
/// use pin_recovery::client::{ContainerStore, FileStore};
/// # let dir = tempfile::tempdir()?;
///
/// let store = FileStore::new(dir.path().join("alice.container"));
/// assert_eq!(store.load()?, None); // nothing enrolled yet
/// {
///     let _lock = store.lock()?;   // what Container holds across each operation
///     store.replace(b"state")?;    // temporary file, fsync, rename, directory fsync
/// }
/// assert_eq!(store.load()?.as_deref(), Some(&b"state"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileStore {
    path: PathBuf,
    faults: Option<FaultHook>,
}

impl FileStore {
    /// A store at `path`; the directory must exist. Replacement writes a uniquely named
    /// temporary file `.<name>.<random>.tmp` beside it; ones left by a crash are removed
    /// the next time the lock is taken.
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

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn temp_prefix(&self) -> String {
        format!(".{}.", self.file_name())
    }

    fn lock_path(&self) -> PathBuf {
        self.path
            .with_file_name(format!("{}.lock", self.file_name()))
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

    /// Removes temporary files a crashed writer left; only called under the lock, when
    /// no other writer can be using one.
    fn remove_stale_temps(&self) {
        let prefix = self.temp_prefix();
        let Ok(entries) = fs::read_dir(self.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The new state in a fresh temporary file, synced. The fault hook runs between the
    /// two halves of the write, so an injected fault leaves a torn file behind.
    fn write_temp(&self, bytes: &[u8]) -> Result<tempfile::NamedTempFile, StoreError> {
        let at = |step: StoreStep| {
            move |e: io::Error| StoreError {
                step,
                kind: e.kind(),
            }
        };
        self.fault(StoreStep::CreateTemp)?;
        // tempfile creates the file with mode 0600 and a name no other writer has.
        let mut tmp = tempfile::Builder::new()
            .prefix(&self.temp_prefix())
            .suffix(".tmp")
            .tempfile_in(self.dir())
            .map_err(at(StoreStep::CreateTemp))?;
        let (first, second) = bytes.split_at(bytes.len() / 2);
        tmp.write_all(first).map_err(at(StoreStep::Write))?;
        self.fault(StoreStep::Write)?;
        tmp.write_all(second).map_err(at(StoreStep::Write))?;
        self.step(StoreStep::SyncFile, tmp.as_file().sync_all())?;
        Ok(tmp)
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
        // On any error below, dropping the temporary file deletes it.
        let tmp = self.write_temp(bytes)?;
        self.fault(StoreStep::Rename)?;
        tmp.persist(&self.path).map_err(|e| StoreError {
            step: StoreStep::Rename,
            kind: e.error.kind(),
        })?;
        self.step(
            StoreStep::SyncDir,
            File::open(self.dir()).and_then(|d| d.sync_all()),
        )
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        let at_lock = |e: io::Error| StoreError {
            step: StoreStep::Lock,
            kind: e.kind(),
        };
        self.fault(StoreStep::Lock)?;
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(self.lock_path()).map_err(at_lock)?;
        // An advisory lock (flock on Unix, LockFileEx on Windows): every FileStore takes
        // it, and the kernel drops it if the process dies.
        file.lock().map_err(at_lock)?;
        self.remove_stale_temps();
        Ok(StoreLock::new(file))
    }
}

/// A store in memory (for tests and examples). Clones share the state and the lock.
#[derive(Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<Option<Vec<u8>>>>,
    lock: Arc<(Mutex<bool>, Condvar)>,
}

/// A held [`MemoryStore`] lock; releases it on drop.
struct MemoryLock(Arc<(Mutex<bool>, Condvar)>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        let (held, released) = &*self.0;
        if let Ok(mut held) = held.lock() {
            *held = false;
        }
        released.notify_one();
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ContainerStore for MemoryStore {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let guard = self.state.lock().map_err(|_| StoreError {
            step: StoreStep::Read,
            kind: io::ErrorKind::Other,
        })?;
        Ok(guard.clone())
    }

    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let mut guard = self.state.lock().map_err(|_| StoreError {
            step: StoreStep::Rename,
            kind: io::ErrorKind::Other,
        })?;
        *guard = Some(bytes.to_vec());
        Ok(())
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        let poisoned = |_| StoreError {
            step: StoreStep::Lock,
            kind: io::ErrorKind::Other,
        };
        let (held, released) = &*self.lock;
        let mut held = held.lock().map_err(poisoned)?;
        while *held {
            held = released.wait(held).map_err(poisoned)?;
        }
        *held = true;
        Ok(StoreLock::new(MemoryLock(self.lock.clone())))
    }
}

impl<S: ContainerStore + ?Sized> ContainerStore for Arc<S> {
    fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load()
    }

    fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).replace(bytes)
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        (**self).lock()
    }
}
