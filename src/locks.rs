//! `TenantLocks`: one async lock per tenant, for the steps of a tenant that must take turns
//! (a file's writes across the pools opened on it, a WhatsApp session's life-cycle steps),
//! without one tenant ever waiting on another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::ids::TenantId;

/// A tenant's lock, shared by everyone who asked for it while any of them still holds it.
pub type TenantLock = Arc<tokio::sync::Mutex<()>>;

/// The locks of the tenants in use. A lock nobody holds (or waits on) is forgotten: the map
/// is pruned as it grows, so it stays proportional to the tenants in use, not to every tenant
/// ever seen.
#[derive(Default)]
pub struct TenantLocks {
    inner: Mutex<Locks>,
}

#[derive(Default)]
struct Locks {
    locks: HashMap<TenantId, Weak<tokio::sync::Mutex<()>>>,
    /// Forget the locks nobody holds once the map reaches this size (then twice what is left).
    prune_at: usize,
}

/// The fewest entries the map is pruned at.
const MIN_PRUNE_AT: usize = 1024;

impl TenantLocks {
    /// The tenant's lock: the one someone still holds, else a new one.
    pub fn get(&self, tenant: TenantId) -> TenantLock {
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
        let lock = TenantLock::default();
        inner.locks.insert(tenant, Arc::downgrade(&lock));
        lock
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
        let locks = TenantLocks::default();
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
