//! A cache of the users that tokens name, so that authenticating a request does not cost a
//! registry query (and a blocking-pool hop) each time.
//!
//! Every change to a user goes through this process, and each one calls [`UserCache::forget`]
//! after its commit, so the cache never answers with a revoked token version, a removed user
//! or an old role. A lookup that raced with a change does not leave its stale row behind: see
//! [`UserCache::remember`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use super::users::UserRecord;
use crate::ids::UserId;

pub struct UserCache {
    users: Cache<UserId, Arc<UserRecord>>,
    /// Bumped by every `forget`; a lookup that saw it move must not keep what it read.
    epoch: AtomicU64,
}

impl UserCache {
    pub fn new(capacity: u64) -> Self {
        Self {
            users: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(300))
                .build(),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn get(&self, id: UserId) -> Option<Arc<UserRecord>> {
        self.users.get(&id)
    }

    /// The epoch to pass to [`UserCache::remember`]: read it *before* reading the registry.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps a row read from the registry, unless a change happened since `epoch`: then the
    /// row may be older than that change, and it is dropped again. (A `forget` that bumps the
    /// epoch after this check also removes the entry, since it invalidates after bumping.)
    pub fn remember(&self, record: Arc<UserRecord>, epoch: u64) {
        let id = record.user.id;
        self.users.insert(id, record);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            self.users.invalidate(&id);
        }
    }

    /// Drops a user after a committed change to them (password, role, name, removal).
    pub fn forget(&self, id: UserId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.users.invalidate(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::users::{Role, User};
    use crate::ids::TenantId;

    fn record(version: i64) -> Arc<UserRecord> {
        Arc::new(UserRecord {
            user: User {
                id: UserId(uuid::Uuid::nil()),
                email: "a@b.co".into(),
                name: "A".into(),
                role: Role::Owner,
                tenant_id: TenantId(uuid::Uuid::nil()),
                created_at: chrono::Utc::now(),
            },
            password_hash: String::new(),
            token_version: version,
        })
    }

    #[test]
    fn a_row_read_before_a_change_is_not_kept() {
        let cache = UserCache::new(10);
        let id = UserId(uuid::Uuid::nil());
        let epoch = cache.epoch();
        // The registry was read (version 0), then the password changed (version 1).
        cache.forget(id);
        cache.remember(record(0), epoch);
        assert!(
            cache.get(id).is_none(),
            "a stale version would keep revoked tokens alive"
        );

        let epoch = cache.epoch();
        cache.remember(record(1), epoch);
        assert_eq!(cache.get(id).unwrap().token_version, 1);
        cache.forget(id);
        assert!(cache.get(id).is_none());
    }
}
