//! Fetching incoming media from WhatsApp, after its message is stored.
//!
//! Ingest stores an incoming item as `pending` in the same transaction as its message (the
//! message is durable before WhatsApp is acknowledged; the bytes may come after), then
//! kicks this tenant's fetcher. One worker per tenant with work fetches its due items one at
//! a time: bytes arrive → `ready`; WhatsApp's copy expired → the phone is asked to upload it
//! again and the fetch is retried at once; any other failure → `failed` with the reason,
//! retried with a doubling delay, and after [`MAX_ATTEMPTS`] `unavailable`. Each outcome is a
//! `media_updated` event with the message and its media.
//!
//! A worker sleeps until its next retry and exits when nothing is left; after a restart, a
//! tenant's first open in the process resumes it (like the outbox).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::store::{self, ToFetch};
use crate::chat::{now, store as chat_store, to_millis};
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{EventData, EventKind};
use crate::ids::TenantId;
use crate::realtime::TenantEvents;
use crate::whatsapp::{DownloadError, WhatsApp};

/// Fetches after which a failing item is given up (`unavailable`).
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two fetches of one item.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Items read at a time.
const BATCH: u32 = 8;

/// The fetcher handle: cheap to clone.
#[derive(Clone)]
pub struct Fetcher(Arc<Inner>);

struct Inner {
    whatsapp: Arc<dyn WhatsApp>,
    events: TenantEvents,
    max_bytes: u64,
    /// The wait after an item's first failed fetch; it doubles with each failure.
    first_retry: Duration,
    workers: Mutex<HashMap<TenantId, Worker>>,
    resumed: Mutex<HashSet<TenantId>>,
}

struct Worker {
    wake: Arc<Notify>,
    dirty: Arc<AtomicBool>,
}

impl Fetcher {
    pub fn new(
        whatsapp: Arc<dyn WhatsApp>,
        events: TenantEvents,
        max_bytes: u64,
        first_retry: Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            whatsapp,
            events,
            max_bytes,
            first_retry,
            workers: Mutex::new(HashMap::new()),
            resumed: Mutex::new(HashSet::new()),
        }))
    }

    /// The largest item fetched (`--media-max-bytes`).
    pub fn max_bytes(&self) -> u64 {
        self.0.max_bytes
    }

    /// A handle that does not keep the fetcher alive (for the tenant pools' open hook).
    pub fn downgrade(&self) -> WeakFetcher {
        WeakFetcher(Arc::downgrade(&self.0))
    }

    /// Kicks `tenant`'s fetcher the first time its file opens in this process.
    pub fn resume(&self, tenant: TenantId) {
        let first = self
            .0
            .resumed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant);
        if first {
            self.kick(tenant);
        }
    }

    /// Makes sure `tenant`'s due items are fetched soon.
    pub fn kick(&self, tenant: TenantId) {
        let mut workers = self.workers();
        if let Some(worker) = workers.get(&tenant) {
            worker.dirty.store(true, Ordering::SeqCst);
            worker.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let dirty = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(
            self.clone(),
            tenant,
            Arc::clone(&wake),
            Arc::clone(&dirty),
        ));
        workers.insert(tenant, Worker { wake, dirty });
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Worker>> {
        self.0
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long to wait after an item's `attempts`-th failed fetch.
    fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        self.0.first_retry.saturating_mul(factor).min(MAX_DELAY)
    }
}

/// See [`Fetcher::downgrade`].
#[derive(Clone)]
pub struct WeakFetcher(Weak<Inner>);

impl WeakFetcher {
    pub fn resume(&self, tenant: TenantId) {
        if let Some(inner) = self.0.upgrade() {
            Fetcher(inner).resume(tenant);
        }
    }
}

async fn run(fetcher: Fetcher, tenant: TenantId, wake: Arc<Notify>, dirty: Arc<AtomicBool>) {
    loop {
        dirty.store(false, Ordering::SeqCst);
        let next = match drain(&fetcher, tenant).await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(tenant = %tenant, error = %err, "media fetch could not run; will retry");
                Some(to_millis(now()) + 5_000)
            }
        };
        let sleep = match next {
            Some(at) => Duration::from_millis(u64::try_from(at - to_millis(now())).unwrap_or(0)),
            None => {
                let mut workers = fetcher.workers();
                if !dirty.load(Ordering::SeqCst) {
                    workers.remove(&tenant);
                    return;
                }
                continue;
            }
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Fetches every due item of `tenant`; returns when the next failed one is due, if any.
async fn drain(fetcher: &Fetcher, tenant: TenantId) -> Result<Option<i64>, ApiError> {
    let db = fetcher.0.events.tenants.get(tenant).await?;
    loop {
        let due = db
            .run(|conn| Ok(store::due(conn, to_millis(now()), BATCH)?))
            .await?;
        if due.is_empty() {
            return db.run(|conn| Ok(store::next_retry(conn)?)).await;
        }
        for item in due {
            let outcome = fetch(fetcher, tenant, &item).await;
            record(fetcher, &db, tenant, item, outcome).await?;
        }
    }
}

/// What one fetch came to.
enum Outcome {
    Fetched(Vec<u8>),
    /// Failed; `source` is the new one a re-upload gave, if any.
    Failed {
        reason: String,
        source: Option<serde_json::Value>,
        give_up: bool,
    },
}

async fn fetch(fetcher: &Fetcher, tenant: TenantId, item: &ToFetch) -> Outcome {
    let Inner {
        whatsapp,
        max_bytes,
        ..
    } = &*fetcher.0;
    let failed = |reason: String, source| Outcome::Failed {
        reason,
        source,
        give_up: false,
    };
    let mut source = None;
    let mut result = whatsapp.download_media(tenant, &item.source).await;
    if result == Err(DownloadError::Expired) {
        match whatsapp.request_reupload(tenant, &item.source).await {
            Ok(fresh) => {
                result = whatsapp.download_media(tenant, &fresh).await;
                source = Some(fresh);
            }
            Err(err) => {
                return failed(
                    format!("WhatsApp's copy expired and the phone did not upload it again: {err}"),
                    None,
                );
            }
        }
    }
    match result {
        Ok(bytes) if bytes.len() as u64 > *max_bytes => Outcome::Failed {
            reason: super::too_large_reason(*max_bytes),
            source,
            give_up: true,
        },
        Ok(bytes) => Outcome::Fetched(bytes),
        Err(err) => failed(err.to_string(), source),
    }
}

/// Records an outcome with its `media_updated` event.
async fn record(
    fetcher: &Fetcher,
    db: &Db,
    tenant: TenantId,
    item: ToFetch,
    outcome: Outcome,
) -> Result<(), ApiError> {
    let attempts = item.attempts + 1;
    let retry_at = match &outcome {
        Outcome::Failed { give_up: false, .. } if attempts < MAX_ATTEMPTS => {
            let delay = fetcher.delay(attempts);
            Some(to_millis(now()) + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        }
        _ => None,
    };
    if let Outcome::Failed { reason, .. } = &outcome {
        tracing::info!(tenant = %tenant, media = %item.id, attempts, reason, "media fetch failed");
    }
    fetcher
        .0
        .events
        .write(db, tenant, move |tx, appended| {
            let changed = match &outcome {
                Outcome::Fetched(bytes) => store::fetched(tx, item.id, bytes)?,
                Outcome::Failed { reason, source, .. } => {
                    let reason = if retry_at.is_none() && attempts >= MAX_ATTEMPTS {
                        format!("gave up after {attempts} attempts: {reason}")
                    } else {
                        reason.clone()
                    };
                    store::fetch_failed(tx, item.id, &reason, retry_at, source.as_ref())?
                }
            };
            if changed && let Some(message) = chat_store::find_message(tx, item.message_id)? {
                appended.push(
                    tx,
                    EventKind::MediaUpdated,
                    EventData::chat(Some(message), None),
                )?;
            }
            Ok(())
        })
        .await
}
