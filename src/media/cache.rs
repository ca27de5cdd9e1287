//! The hot-item cache: the bytes of small media items recently served, in memory, so an
//! image that a whole team's inboxes load again and again is not read from the tenant's file
//! each time (docs/MEDIA.md, "Serving").
//!
//! Entries are keyed by tenant and the bytes' SHA-256, so an entry can never be stale: the
//! same key always means the same bytes, and an item that changes or goes is simply no longer
//! asked for (its row, read from the tenant's file on every request, names another hash or
//! none). Nothing is invalidated; entries of a deleted item or tenant age out by LRU. The
//! tenant is in the key although the hash alone would do, so that one tenant's requests never
//! find another's entry, even for identical bytes.

use bytes::Bytes;
use moka::sync::Cache;

use crate::ids::TenantId;

/// The largest item kept (larger ones are streamed from the file in slices).
pub const MAX_ITEM: u64 = 1024 * 1024;

type Key = (TenantId, [u8; 32]);

/// Recently served items' bytes, weighted by size, `--media-cache-bytes` at most in all.
#[derive(Clone)]
pub struct HotMedia(Option<Cache<Key, Bytes>>);

impl HotMedia {
    /// A cache holding at most `capacity` bytes of items; 0 turns it off.
    pub fn new(capacity: u64) -> Self {
        Self((capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
                .build()
        }))
    }

    pub fn get(&self, tenant: TenantId, sha256: &[u8]) -> Option<Bytes> {
        let cache = self.0.as_ref()?;
        cache.get(&(tenant, sha256.try_into().ok()?))
    }

    /// Keeps `bytes` (whose hash is `sha256`) if the item is small enough to be kept.
    pub fn insert(&self, tenant: TenantId, sha256: &[u8], bytes: Bytes) {
        let (Some(cache), Ok(sha)) = (&self.0, <[u8; 32]>::try_from(sha256)) else {
            return;
        };
        if bytes.len() as u64 <= MAX_ITEM {
            cache.insert((tenant, sha), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_found_by_its_tenant_and_hash_only() {
        let cache = HotMedia::new(4 << 20);
        let (a, b) = (
            TenantId(uuid::Uuid::new_v4()),
            TenantId(uuid::Uuid::new_v4()),
        );
        let sha = [7u8; 32];
        cache.insert(a, &sha, Bytes::from_static(b"photo"));
        assert_eq!(cache.get(a, &sha).as_deref(), Some(&b"photo"[..]));
        assert_eq!(cache.get(b, &sha), None, "another tenant's entry");
        assert_eq!(cache.get(a, &[8u8; 32]), None, "other bytes");
        assert_eq!(cache.get(a, &sha[..16]), None, "not a SHA-256");
    }

    #[test]
    fn a_large_item_or_a_disabled_cache_keeps_nothing() {
        let tenant = TenantId(uuid::Uuid::new_v4());
        let cache = HotMedia::new(8 << 20);
        let big = Bytes::from(vec![0u8; MAX_ITEM as usize + 1]);
        cache.insert(tenant, &[1; 32], big);
        assert_eq!(cache.get(tenant, &[1; 32]), None);
        let off = HotMedia::new(0);
        off.insert(tenant, &[2; 32], Bytes::from_static(b"x"));
        assert_eq!(off.get(tenant, &[2; 32]), None);
    }
}
