//! The outbox: hands accepted messages to WhatsApp, per tenant, one at a time, in the order
//! they were accepted.
//!
//! A sent message is first stored as `pending` (that is what the API acknowledges); the outbox
//! then sends it and records `sent` with WhatsApp's id, or `failed` with the reason. While a
//! tenant's session is down, its messages stay `pending`: the outbox is kicked again when the
//! session connects and the first time the tenant's database is opened in this process (so
//! after a restart the queue resumes on the tenant's first use). Nothing accepted is lost: the queue *is* the
//! `message` table.
//!
//! One worker task per tenant with work; it exits after a quiet spell.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::store;
use crate::app::AppState;
use crate::db::Db;
use crate::error::ApiError;
use crate::events;
use crate::ids::TenantId;
use crate::whatsapp::SendError;

/// How long an idle worker waits for more work before it exits.
const IDLE: Duration = Duration::from_secs(30);
/// Messages read from the queue at a time.
const BATCH: u32 = 32;
/// Longest stretch of sending whose outcomes are recorded in one transaction.
const SETTLE_EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
pub struct Outbox {
    workers: Mutex<HashMap<TenantId, Worker>>,
    /// Tenants whose queue was resumed since start-up (see [`Outbox::resume`]).
    resumed: Mutex<HashSet<TenantId>>,
}

struct Worker {
    wake: Arc<Notify>,
    /// Set by a kick; cleared by the worker before each drain. A worker exits only when no
    /// kick arrived since its last drain, so no kick is ever lost.
    dirty: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Outbox {
    /// Kicks `tenant`'s queue the first time its database opens in this process: messages
    /// left `pending` by an earlier run go out. Later opens need no kick, since everything
    /// that queues a message in this process (a send, a session connecting) kicks it.
    pub fn resume(&self, state: &AppState, tenant: TenantId) {
        let first = self
            .resumed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant);
        if first {
            self.kick(state, tenant);
        }
    }

    /// Makes sure `tenant`'s queue is drained soon. Cheap; callable from any thread inside
    /// the runtime.
    pub fn kick(&self, state: &AppState, tenant: TenantId) {
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(worker) = workers.get(&tenant) {
            worker.dirty.store(true, Ordering::SeqCst);
            worker.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let dirty = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(run(
            state.clone(),
            tenant,
            Arc::clone(&wake),
            Arc::clone(&dirty),
        ));
        workers.insert(tenant, Worker { wake, dirty, task });
    }

    /// Stops every worker (at shutdown; pending messages stay queued in their files).
    pub fn shutdown(&self) {
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, worker) in workers.drain() {
            worker.task.abort();
        }
    }
}

async fn run(state: AppState, tenant: TenantId, wake: Arc<Notify>, dirty: Arc<AtomicBool>) {
    loop {
        dirty.store(false, Ordering::SeqCst);
        if let Err(err) = drain(&state, tenant).await {
            tracing::warn!(tenant = %tenant, error = %err, "outbox could not drain; will retry on the next kick");
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(IDLE) => {
                let mut workers = state.outbox.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if !dirty.load(Ordering::SeqCst) {
                    workers.remove(&tenant);
                    return;
                }
            }
        }
    }
}

/// Sends every pending message of `tenant`, oldest first, until the queue is empty or the
/// session is down.
///
/// Outcomes are recorded in one transaction per [`SETTLE_EVERY`] of sending (or per batch,
/// whichever ends first) rather than one per message. A crash between a send and its record
/// sends that message again after the restart; the time bound keeps that window as short as
/// it was with one transaction per message on a real connection, where a send takes a
/// network round trip.
async fn drain(state: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    if !state.whatsapp.is_connected(tenant) {
        return Ok(());
    }
    let db = state.tenants.get(tenant).await?;
    loop {
        let batch = db.run(|conn| Ok(store::pending(conn, BATCH)?)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let started = Instant::now();
            let mut outcomes = Vec::new();
            let mut session_down = false;
            for item in batch.by_ref() {
                let outcome = match state
                    .whatsapp
                    .send_text(tenant, &item.to, &item.message.content)
                    .await
                {
                    Ok(whatsapp_id) => Ok(whatsapp_id),
                    Err(SendError::NotConnected) => {
                        session_down = true;
                        break;
                    }
                    Err(SendError::Rejected(reason)) => Err(reason),
                };
                outcomes.push((item.message.id, outcome));
                if started.elapsed() >= SETTLE_EVERY {
                    break;
                }
            }
            settle(state, &db, tenant, outcomes).await?;
            if session_down {
                return Ok(());
            }
        }
    }
}

/// Records what WhatsApp said about each message (its id and `sent`, or `failed`), with their
/// `message_status` events, in one transaction, then queues them for the sockets.
async fn settle(
    state: &AppState,
    db: &Db,
    tenant: TenantId,
    outcomes: Vec<(Uuid, Result<String, String>)>,
) -> Result<(), ApiError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let retention = state.retention;
    let realtime = state.realtime.clone();
    db.write_then(
        move |tx| {
            let mut published = Vec::with_capacity(outcomes.len());
            for (id, outcome) in &outcomes {
                let outcome = outcome.as_deref().map_err(String::as_str);
                if let Some(message) = store::settle(tx, *id, outcome)? {
                    published.push(events::append_message_status(tx, message, retention)?);
                }
            }
            Ok(published)
        },
        move |published| realtime.queue(tenant, std::mem::take(published)),
    )
    .await?;
    Ok(())
}
