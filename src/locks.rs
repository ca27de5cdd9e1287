//! `TenantLocks`: one async lock per tenant, for the steps of a tenant that must take turns
//! (a file's writes across the pools opened on it, a WhatsApp session's life-cycle steps),
//! without one tenant ever waiting on another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::ids::TenantId;

/// The locks of the tenants in use (a `T` per tenant: a plain async lock by default). A lock
/// nobody holds (or waits on) is forgotten: the map is pruned as it grows, so it stays
/// proportional to the tenants in use, not to every tenant ever seen.
pub struct TenantLocks<T = tokio::sync::Mutex<()>> {
    inner: Mutex<Locks<T>>,
}

impl<T> Default for TenantLocks<T> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Locks {
                locks: HashMap::new(),
                prune_at: 0,
            }),
        }
    }
}

struct Locks<T> {
    locks: HashMap<TenantId, Weak<T>>,
    /// Forget the locks nobody holds once the map reaches this size (then twice what is left).
    prune_at: usize,
}

/// The fewest entries the map is pruned at.
const MIN_PRUNE_AT: usize = 1024;

impl<T: Default> TenantLocks<T> {
    /// The tenant's lock: the one someone still holds, else a new one.
    pub fn get(&self, tenant: TenantId) -> Arc<T> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = inner.locks.get(&tenant).and_then(Weak::upgrade) {
            return lock;
        }
        if inner.locks.len() >= inner.prune_at {
            inner.locks.retain(|_, lock| lock.strong_count() > 0);
            inner.prune_at = (2 * inner.locks.len()).max(MIN_PRUNE_AT);
        }
        let lock = Arc::<T>::default();
        inner.locks.insert(tenant, Arc::downgrade(&lock));
        lock
    }

    /// Whether anyone still holds `tenant`'s lock (for the tenant pools: whether any pool of
    /// its file is still alive).
    pub fn in_use(&self, tenant: TenantId) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .locks
            .get(&tenant)
            .is_some_and(|lock| lock.strong_count() > 0)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .locks
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_shared_and_a_released_one_is_forgotten() {
        let locks: TenantLocks = TenantLocks::default();
        let (a, b) = (TenantId::new(), TenantId::new());
        let held = locks.get(a);
        assert!(Arc::ptr_eq(&held, &locks.get(a)));
        assert!(!Arc::ptr_eq(&held, &locks.get(b)));

        // Thousands of tenants used once each: the map stays near its pruning size.
        for _ in 0..10 * MIN_PRUNE_AT {
            drop(locks.get(TenantId::new()));
        }
        assert!(locks.len() <= MIN_PRUNE_AT, "{} locks kept", locks.len());
        // The one still held survived every pruning.
        assert!(Arc::ptr_eq(&held, &locks.get(a)));
    }
}

/// The data directory's lock: one process at a time works on a data dir (a server, or an
/// operations command acting on the files directly). An advisory `flock` on
/// `<data-dir>/aezen.lock`, held while this value lives and released by the kernel if the
/// process dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Why [`DataDirLock::acquire`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another process holds the lock; the pid it wrote, if readable.
    #[error("another AEZEN process (pid {}) is using the data directory {}", .pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()), .dir.display())]
    Busy {
        dir: std::path::PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot lock the data directory {}: {source}", .dir.display())]
    Io {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl DataDirLock {
    pub const FILE: &str = "aezen.lock";

    /// Takes the lock of `data_dir` (created if missing) without waiting.
    pub fn acquire(data_dir: &std::path::Path) -> Result<Self, DataDirLockError> {
        use std::io::{Read, Seek, Write};

        let io = |source| DataDirLockError::Io {
            dir: data_dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(data_dir.join(Self::FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(DataDirLockError::Busy {
                    dir: data_dir.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}
