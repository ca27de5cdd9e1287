//! The outbox: hands accepted messages to WhatsApp, per tenant, one at a time, in the order
//! they were accepted.
//!
//! A sent message is first stored as `pending` (that is what the API acknowledges); the outbox
//! then sends it and records `sent` with WhatsApp's id, or `failed` with the reason. While a
//! tenant's session is down, its messages stay `pending`: the outbox is kicked again when the
//! session connects and the first time the tenant's database is opened in this process (so
//! after a restart the queue resumes on the tenant's first use). Nothing accepted is lost: the
//! queue *is* the `message` table.
//!
//! One worker task per tenant with work; it exits after a quiet spell.
//!
//! The outbox keeps its own tallies ([`OutboxCounts`]: what it sent, what WhatsApp refused,
//! how deep each tenant's queue is), which `/api/metrics` reads at each scrape.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::store;
use crate::db::Db;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::realtime::TenantEvents;
use crate::whatsapp::{OutgoingMedia, SendError, WhatsApp};

/// How long an idle worker waits for more work before it exits.
const IDLE: Duration = Duration::from_secs(30);
/// Messages read from the queue at a time.
const BATCH: u32 = 32;
/// Longest stretch of sending whose outcomes are recorded in one transaction.
const SETTLE_EVERY: Duration = Duration::from_millis(50);

/// The outbox handle: cheap to clone, shared by everything that queues or wakes messages.
#[derive(Clone)]
pub struct Outbox(Arc<Inner>);

struct Inner {
    whatsapp: Arc<dyn WhatsApp>,
    events: TenantEvents,
    workers: Mutex<HashMap<TenantId, Worker>>,
    /// Tenants whose queue was resumed since start-up (see [`Outbox::resume`]).
    resumed: Mutex<HashSet<TenantId>>,
    tally: Tally,
}

/// What the outbox has done since start-up, and what it knows is waiting.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
    /// Per tenant with messages waiting: its pending messages as counted when its outbox
    /// last looked at the queue, less those settled since.
    pending: Mutex<HashMap<TenantId, u64>>,
}

impl Tally {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, u64>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counted(&self, tenant: TenantId, queued: u64) {
        let mut pending = self.pending();
        if queued == 0 {
            pending.remove(&tenant);
        } else {
            pending.insert(tenant, queued);
        }
    }

    fn settled(&self, tenant: TenantId, settled: u64) {
        if let Some(queued) = self.pending().get_mut(&tenant) {
            *queued = queued.saturating_sub(settled);
        }
    }
}

/// The outbox's figures for `/api/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Messages `pending` (those being sent included) in the tenants opened since start-up,
    /// as counted whenever a tenant's outbox looks at its queue (on a send, a session
    /// connecting, the tenant's first open) and lowered as they are settled.
    pub pending: u64,
    /// Messages handed to WhatsApp since start-up that WhatsApp took.
    pub sent: u64,
    /// Messages handed to WhatsApp since start-up that it refused for good (`failed`).
    pub failed: u64,
}

struct Worker {
    wake: Arc<Notify>,
    /// Set by a kick; cleared by the worker before each drain. A worker exits only when no
    /// kick arrived since its last drain, so no kick is ever lost.
    dirty: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Outbox {
    pub fn new(whatsapp: Arc<dyn WhatsApp>, events: TenantEvents) -> Self {
        Self(Arc::new(Inner {
            whatsapp,
            events,
            workers: Mutex::new(HashMap::new()),
            resumed: Mutex::new(HashSet::new()),
            tally: Tally::default(),
        }))
    }

    /// What the outbox has sent and refused since start-up, and what it knows is waiting.
    pub fn counts(&self) -> OutboxCounts {
        let tally = &self.0.tally;
        OutboxCounts {
            pending: tally.pending().values().sum(),
            sent: tally.sent.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
        }
    }

    /// A handle that does not keep the outbox alive (for the tenant pools' open hook, which
    /// the outbox itself reaches through its events handle).
    pub fn downgrade(&self) -> WeakOutbox {
        WeakOutbox(Arc::downgrade(&self.0))
    }

    /// Kicks `tenant`'s queue the first time its database opens in this process: messages
    /// left `pending` by an earlier run go out. Later opens need no kick, since everything
    /// that queues a message in this process (a send, a session connecting) kicks it.
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

    /// Makes sure `tenant`'s queue is drained soon. Cheap; callable from any thread inside
    /// the runtime.
    pub fn kick(&self, tenant: TenantId) {
        let mut workers = self.workers();
        if let Some(worker) = workers.get(&tenant) {
            worker.dirty.store(true, Ordering::SeqCst);
            worker.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let dirty = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(run(
            self.clone(),
            tenant,
            Arc::clone(&wake),
            Arc::clone(&dirty),
        ));
        workers.insert(tenant, Worker { wake, dirty, task });
    }

    /// Stops every worker (at shutdown; pending messages stay queued in their files).
    pub fn shutdown(&self) {
        for (_, worker) in self.workers().drain() {
            worker.task.abort();
        }
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Worker>> {
        self.0
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// See [`Outbox::downgrade`].
#[derive(Clone)]
pub struct WeakOutbox(Weak<Inner>);

impl WeakOutbox {
    /// [`Outbox::resume`], if the outbox still exists.
    pub fn resume(&self, tenant: TenantId) {
        if let Some(inner) = self.0.upgrade() {
            Outbox(inner).resume(tenant);
        }
    }
}

async fn run(outbox: Outbox, tenant: TenantId, wake: Arc<Notify>, dirty: Arc<AtomicBool>) {
    loop {
        dirty.store(false, Ordering::SeqCst);
        if let Err(err) = drain(&outbox, tenant).await {
            tracing::warn!(tenant = %tenant, error = %err, "outbox could not drain; will retry on the next kick");
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(IDLE) => {
                let mut workers = outbox.workers();
                if !dirty.load(Ordering::SeqCst) {
                    workers.remove(&tenant);
                    return;
                }
            }
        }
    }
}

/// Sends every pending message of `tenant`, oldest first, until the queue is empty or the
/// session is down. It first counts the queue (for [`Outbox::counts`]), connected or not.
///
/// Outcomes are recorded in one transaction per [`SETTLE_EVERY`] of sending (or per batch,
/// whichever ends first) rather than one per message. A crash between a send and its record
/// sends that message again after the restart; the time bound keeps that window as short as
/// it was with one transaction per message on a real connection, where a send takes a
/// network round trip.
async fn drain(outbox: &Outbox, tenant: TenantId) -> Result<(), ApiError> {
    let Inner {
        whatsapp,
        events,
        tally,
        ..
    } = &*outbox.0;
    let db = events.tenants.get(tenant).await?;
    let queued = db.run(|conn| Ok(store::pending_count(conn)?)).await?;
    tally.counted(tenant, queued);
    if queued == 0 || !whatsapp.is_connected(tenant) {
        return Ok(());
    }
    loop {
        let batch = db.run(|conn| Ok(store::pending(conn, BATCH)?)).await?;
        if batch.is_empty() {
            tally.counted(tenant, 0);
            return Ok(());
        }
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let started = Instant::now();
            let mut outcomes = Vec::new();
            let mut session_down = false;
            for item in batch.by_ref() {
                let outcome = match send(whatsapp.as_ref(), &db, tenant, &item).await {
                    Ok(whatsapp_id) => {
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                        Ok(whatsapp_id)
                    }
                    Err(SendError::NotConnected) => {
                        session_down = true;
                        break;
                    }
                    Err(SendError::Rejected(reason)) => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        Err(reason)
                    }
                };
                outcomes.push((item.message.id, outcome));
                if started.elapsed() >= SETTLE_EVERY {
                    break;
                }
            }
            let settled = outcomes.len() as u64;
            settle(events, &db, tenant, outcomes).await?;
            tally.settled(tenant, settled);
            if session_down {
                return Ok(());
            }
        }
    }
}

/// Hands one message to WhatsApp: its text, or its media item (read from the tenant's file)
/// with the caption.
async fn send(
    whatsapp: &dyn WhatsApp,
    db: &Db,
    tenant: TenantId,
    item: &store::Pending,
) -> Result<String, SendError> {
    let message = &item.message;
    let Some(media) = &message.media else {
        return whatsapp.send_text(tenant, &item.to, &message.content).await;
    };
    let id = message.id;
    let bytes = match db
        .run(move |conn| Ok(crate::media::store::bytes_of_message(conn, id)?))
        .await
    {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(SendError::Rejected(
                "the media item has no bytes".to_owned(),
            ));
        }
        // The file is busy or gone for now: the message stays pending for the next kick.
        Err(err) => {
            tracing::warn!(tenant = %tenant, message = %id, error = %err, "media to send not readable");
            return Err(SendError::NotConnected);
        }
    };
    let outgoing = OutgoingMedia {
        kind: media.kind,
        mime_type: &media.mime_type,
        bytes: &bytes,
        caption: &message.content,
        file_name: media.file_name.as_deref(),
        voice: media.voice,
        width: media.width,
        height: media.height,
    };
    whatsapp.send_media(tenant, &item.to, outgoing).await
}

/// Records what WhatsApp said about each message (its id and `sent`, or `failed`), with their
/// `message_status` events, in one transaction.
async fn settle(
    events: &TenantEvents,
    db: &Db,
    tenant: TenantId,
    outcomes: Vec<(Uuid, Result<String, String>)>,
) -> Result<(), ApiError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    events
        .write(db, tenant, move |tx, appended| {
            for (id, outcome) in &outcomes {
                let outcome = outcome.as_deref().map_err(String::as_str);
                if let Some(message) = store::settle(tx, *id, outcome)? {
                    appended.message_status(tx, message)?;
                }
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicUsize;

    use futures::future::BoxFuture;

    use super::*;
    use crate::chat::inbox::{Inbox, Recipient};
    use crate::config::BackendKind;
    use crate::ids::UserId;
    use crate::tenancy::TenantDb;
    use crate::testing::World;
    use crate::whatsapp::{LinkMethod, SessionError};

    /// A session that says it is connected but drops the first `fail_first` sends (a
    /// connection that went away mid-send), then sends.
    struct Flaky {
        fail_first: usize,
        calls: AtomicUsize,
    }

    impl WhatsApp for Flaky {
        fn send_text<'a>(
            &'a self,
            _: TenantId,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<String, SendError>> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if call < self.fail_first {
                    Err(SendError::NotConnected)
                } else {
                    Ok(format!("WA-{call}"))
                }
            })
        }
        fn mark_read<'a>(
            &'a self,
            _: TenantId,
            _: &'a str,
            _: &'a [String],
        ) -> BoxFuture<'a, Result<(), SendError>> {
            Box::pin(async { Ok(()) })
        }
        fn is_connected(&self, _: TenantId) -> bool {
            true
        }
        fn connect<'a>(
            &'a self,
            _: TenantId,
            _: &'a Path,
            _: LinkMethod,
        ) -> BoxFuture<'a, Result<(), SessionError>> {
            Box::pin(async { Ok(()) })
        }
        fn disconnect(&self, _: TenantId) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn logout(&self, _: TenantId) -> BoxFuture<'_, bool> {
            Box::pin(async { false })
        }
        fn shutdown(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn kind(&self) -> BackendKind {
            BackendKind::Simulated
        }
    }

    async fn status_of(world: &World, tenant: TenantId, id: Uuid) -> (String, Option<String>) {
        world
            .query(tenant, move |conn| {
                conn.query_row(
                    "SELECT status, wa_id FROM message WHERE id = ?1",
                    [id.to_string()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })
            .await
    }

    /// Polls until the message's status is `want` (the worker runs on its own task).
    async fn wait_for(world: &World, tenant: TenantId, id: Uuid, want: &str) -> Option<String> {
        for _ in 0..200 {
            let (status, wa_id) = status_of(world, tenant, id).await;
            if status == want {
                return wa_id;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "message never became {want}: {:?}",
            status_of(world, tenant, id).await
        );
    }

    #[tokio::test]
    async fn a_send_that_fails_transiently_stays_pending_and_goes_out_on_the_next_kick() {
        let world = World::new();
        let tenant = world.tenant("Outbox").await;
        let whatsapp = Arc::new(Flaky {
            fail_first: 1,
            calls: AtomicUsize::new(0),
        });
        let outbox = Outbox::new(whatsapp.clone(), world.events.clone());
        let inbox = Inbox::new(world.events.clone(), outbox.clone(), whatsapp.clone());
        let db = TenantDb::new(&world.tenants, tenant);

        // The send's commit kicks the outbox; its one attempt is dropped by the session.
        let to = Recipient::Number("+6281234567890".into());
        let message = inbox
            .send(&db, UserId::new(), to, "hello".into())
            .await
            .unwrap();
        for _ in 0..200 {
            if whatsapp.calls.load(Ordering::SeqCst) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Nothing kicks the queue again, so that one attempt is all there is.
        assert_eq!(whatsapp.calls.load(Ordering::SeqCst), 1, "tried once");
        assert_eq!(
            status_of(&world, tenant, message.id).await,
            ("pending".to_owned(), None),
            "a send that did not go out stays queued"
        );
        let counts = outbox.counts();
        assert_eq!(
            (counts.pending, counts.sent, counts.failed),
            (1, 0, 0),
            "the outbox knows the message waits"
        );

        // A session that comes back kicks the queue: the same message goes out, once.
        outbox.kick(tenant);
        let wa_id = wait_for(&world, tenant, message.id, "sent").await;
        assert_eq!(wa_id.as_deref(), Some("WA-1"));
        assert_eq!(whatsapp.calls.load(Ordering::SeqCst), 2);
        assert_eq!(outbox.counts().sent, 1, "counted once it went out");
        let statuses: i64 = world
            .query(tenant, |conn| {
                conn.query_row(
                    "SELECT count(*) FROM event WHERE type = 'message_status'",
                    [],
                    |row| row.get(0),
                )
            })
            .await;
        assert_eq!(
            statuses, 1,
            "one message_status event, for the send that went out"
        );
        outbox.shutdown();
    }
}
