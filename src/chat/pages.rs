//! Rendered first pages of the conversation list, kept per tenant, user and query string, and
//! answered again for as long as the tenant's file has not changed (docs/PERFORMANCE.md,
//! "The page cache").
//!
//! A page is kept with the file's write sequence ([`crate::db::Db::sequence`]) read *before*
//! the page was read from the file; the sequence moves on after every commit to the file and
//! whenever a pool is opened on it, so a kept page whose sequence still matches is exactly
//! what reading the file again would give. Only first pages are kept (a cursor's page is
//! read each time), and only while this process holds the files exclusively
//! (`--tenant-file-lock exclusive`, the default): with `shared`, another process could write
//! a file without the sequence knowing.
//!
//! Each page has an ETag (a hash of its bytes), so a client that polls the list with
//! `If-None-Match` gets 304 while nothing changed.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use moka::sync::Cache;

use crate::ids::{TenantId, UserId};

/// Whose page, and which: the caller's tenant and user (unread counts are the caller's own)
/// and the request's query string as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub tenant: TenantId,
    pub user: UserId,
    pub query: Box<str>,
}

/// A kept page: its bytes, its ETag, and the sequence it was read at.
pub struct Page {
    pub sequence: u64,
    pub body: Bytes,
    pub etag: String,
}

/// The kept pages, `--page-cache-bytes` at most in all (their bytes and keys).
#[derive(Clone)]
pub struct Pages(Option<Cache<PageKey, Arc<Page>>>);

impl Pages {
    /// A cache of at most `capacity` bytes; 0 turns it off.
    pub fn new(capacity: u64) -> Self {
        Self((capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .weigher(|key: &PageKey, page: &Arc<Page>| {
                    let bytes = page.body.len() + key.query.len() + 128;
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .build()
        }))
    }

    /// The kept page for `key`, if it was read at `sequence` (the file's sequence now).
    pub fn get(&self, key: &PageKey, sequence: u64) -> Option<Arc<Page>> {
        let page = self.0.as_ref()?.get(key)?;
        (page.sequence == sequence).then_some(page)
    }

    /// Keeps `body`, read at `sequence`, and returns it as a page.
    pub fn insert(&self, key: PageKey, sequence: u64, body: Bytes) -> Arc<Page> {
        let page = Arc::new(Page {
            sequence,
            etag: etag_of(&body),
            body,
        });
        if let Some(cache) = &self.0 {
            cache.insert(key, Arc::clone(&page));
        }
        page
    }
}

/// A strong ETag from a hash of the bytes (64 bits: the same bytes have the same tag, and
/// two pages of one list colliding is not a concern at that width).
pub fn etag_of(body: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"l-{:016x}\"", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(query: &str) -> PageKey {
        PageKey {
            tenant: TenantId(uuid::Uuid::from_u128(1)),
            user: UserId(uuid::Uuid::from_u128(2)),
            query: query.into(),
        }
    }

    #[test]
    fn a_page_is_answered_only_at_the_sequence_it_was_read_at() {
        let pages = Pages::new(1 << 20);
        let kept = pages.insert(key("limit=50"), 7, Bytes::from_static(b"{\"items\":[]}"));
        assert_eq!(pages.get(&key("limit=50"), 7).unwrap().etag, kept.etag);
        assert!(pages.get(&key("limit=50"), 8).is_none(), "the file changed");
        assert!(pages.get(&key("limit=20"), 7).is_none(), "another query");
        let other_user = PageKey {
            user: UserId(uuid::Uuid::from_u128(3)),
            ..key("limit=50")
        };
        assert!(pages.get(&other_user, 7).is_none(), "another user's page");
    }

    #[test]
    fn the_etag_follows_the_bytes_and_a_disabled_cache_keeps_nothing() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        let off = Pages::new(0);
        off.insert(key(""), 1, Bytes::from_static(b"x"));
        assert!(off.get(&key(""), 1).is_none());
    }
}
