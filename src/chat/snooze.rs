//! Reopening snoozed conversations when their time comes.
//!
//! The tenant file is the truth (`conversation.snoozed_until`); the master registry keeps a
//! hint per tenant, `tenant.wake_at`: its earliest snooze. At start-up the hints are read, so
//! a snooze survives a restart without every tenant file being opened; and the first time a
//! tenant's file is opened in a process, its own earliest snooze is read too, so a file that
//! came back without a hint (restored, imported, or a crash between the two writes) still
//! wakes. One task holds the wake-ups in time order; at a tenant's time it reopens every due
//! conversation of that tenant in one write (each a `conversation_updated` event) and records
//! the next hint. A hint may be early or stale (the conversation was reopened by hand):
//! waking finds nothing due and moves on.
//!
//! The task ends when the last [`Snoozes`] handle is dropped: it and the tenant-open hook hold
//! the queue weakly, so the tenant files it reaches do not keep it alive, nor it them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use tokio::sync::mpsc::{self, UnboundedSender, WeakUnboundedSender};
use tokio::time::Instant;

use super::store;
use super::{now, to_millis, uuid_col};
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{EventData, EventKind};
use crate::ids::TenantId;
use crate::realtime::TenantEvents;

/// How long a wake-up waits to try again when its tenant could not be written (held by a
/// backup, say).
const RETRY: Duration = Duration::from_secs(5);

enum Command {
    /// The tenant has a snooze due at this time (Unix ms).
    WakeAt(TenantId, i64),
    /// The tenant's file was just opened: read its earliest snooze, once per process.
    Opened(TenantId),
}

/// The handle services schedule wake-ups through.
#[derive(Clone)]
pub struct Snoozes {
    queue: UnboundedSender<Command>,
    master: Db,
}

impl Snoozes {
    /// Starts the waker task; it first reads every tenant's recorded wake-up. (Must be called
    /// inside the runtime.)
    pub fn start(events: TenantEvents, master: Db) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let waker = Waker {
            events,
            master: master.clone(),
            queue: queue.downgrade(),
        };
        tokio::spawn(waker.run(queued));
        Self { queue, master }
    }

    /// What the tenant pools call when they open a tenant's file (it holds the queue weakly).
    pub fn on_open(&self) -> impl Fn(TenantId) + Send + Sync + 'static {
        let queue = self.queue.downgrade();
        move |tenant| send(&queue, Command::Opened(tenant))
    }

    /// Records that `tenant` has a conversation snoozed until `at_ms` (after the snooze was
    /// committed to the tenant's file): the wake-up, and the hint in the registry. A hint
    /// that cannot be written is logged, not answered: the snooze is committed and its
    /// wake-up set, and after a restart the tenant's first open finds it anyway.
    pub async fn snoozed(&self, tenant: TenantId, at_ms: i64) {
        send(&self.queue.downgrade(), Command::WakeAt(tenant, at_ms));
        let hint = self
            .master
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE tenant SET wake_at = min(coalesce(wake_at, ?2), ?2) WHERE id = ?1",
                )?
                .execute(params![tenant, at_ms])?;
                Ok(())
            })
            .await;
        if let Err(err) = hint {
            tracing::warn!(tenant = %tenant, error = %err, "snooze's wake-up hint not recorded");
        }
    }
}

fn send(queue: &WeakUnboundedSender<Command>, command: Command) {
    if let Some(queue) = queue.upgrade() {
        let _ = queue.send(command);
    }
}

/// What the waker task and the wake-ups it starts share.
#[derive(Clone)]
struct Waker {
    events: TenantEvents,
    master: Db,
    queue: WeakUnboundedSender<Command>,
}

impl Waker {
    async fn run(self, mut queued: mpsc::UnboundedReceiver<Command>) {
        match self.recorded().await {
            Ok(recorded) => {
                for (tenant, at) in recorded {
                    send(&self.queue, Command::WakeAt(tenant, at));
                }
            }
            Err(err) => tracing::error!(error = %err, "recorded snooze wake-ups not read"),
        }
        // Each tenant's earliest wake-up, and the same in time order; tenants already read.
        let mut due: BTreeSet<(i64, TenantId)> = BTreeSet::new();
        let mut by_tenant: HashMap<TenantId, i64> = HashMap::new();
        let mut checked: HashSet<TenantId> = HashSet::new();
        loop {
            let next = due.first().copied();
            let sleep = async {
                match next {
                    Some((at, _)) => tokio::time::sleep_until(instant_of(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = queued.recv() => match command {
                    None => break,
                    Some(Command::WakeAt(tenant, at)) => {
                        if by_tenant.get(&tenant).is_none_or(|&current| at < current) {
                            if let Some(current) = by_tenant.insert(tenant, at) {
                                due.remove(&(current, tenant));
                            }
                            due.insert((at, tenant));
                        }
                    }
                    Some(Command::Opened(tenant)) => {
                        if checked.insert(tenant) {
                            let waker = self.clone();
                            tokio::spawn(async move { waker.check(tenant).await });
                        }
                    }
                },
                () = sleep => {
                    let now_ms = to_millis(now());
                    while let Some(&(at, tenant)) = due.first() {
                        if at > now_ms {
                            break;
                        }
                        due.pop_first();
                        by_tenant.remove(&tenant);
                        let waker = self.clone();
                        tokio::spawn(async move { waker.wake(tenant).await });
                    }
                }
            }
        }
    }

    /// Every tenant's recorded wake-up.
    async fn recorded(&self) -> Result<Vec<(TenantId, i64)>, ApiError> {
        self.master
            .run(|conn| {
                Ok(conn
                    .prepare("SELECT id, wake_at FROM tenant WHERE wake_at IS NOT NULL")?
                    .query_map([], |row| Ok((row.get::<_, TenantId>(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<(TenantId, i64)>>>()?)
            })
            .await
    }

    /// Schedules the earliest snooze the tenant's file holds (one indexed lookup).
    async fn check(&self, tenant: TenantId) {
        let next = async {
            let db = self.events.tenants.get(tenant).await?;
            db.run(|conn| Ok(earliest(conn)?)).await
        };
        match next.await {
            Ok(Some(at)) => send(&self.queue, Command::WakeAt(tenant, at)),
            Ok(None) => {}
            Err(err) => tracing::debug!(tenant = %tenant, error = %err, "snoozes not read"),
        }
    }

    /// Reopens `tenant`'s due conversations and records its next wake-up.
    async fn wake(&self, tenant: TenantId) {
        match reopen_due(&self.events, tenant).await {
            Ok(next) => {
                let now_ms = to_millis(now());
                let recorded = self
                    .master
                    .write(move |tx| {
                        // A sooner hint written meanwhile (a new snooze) is kept.
                        tx.prepare_cached(
                            "UPDATE tenant SET wake_at = CASE
                                 WHEN wake_at > ?3 AND (?2 IS NULL OR wake_at < ?2) THEN wake_at
                                 ELSE ?2 END
                             WHERE id = ?1",
                        )?
                        .execute(params![tenant, next, now_ms])?;
                        Ok(())
                    })
                    .await;
                if let Err(err) = recorded {
                    tracing::warn!(tenant = %tenant, error = %err, "next snooze wake-up not recorded");
                }
                if let Some(next) = next {
                    send(&self.queue, Command::WakeAt(tenant, next));
                }
            }
            Err(err) if err.code() == "not_found" => {
                tracing::debug!(tenant = %tenant, "snoozes of a deleted tenant dropped");
            }
            Err(err) => {
                tracing::warn!(tenant = %tenant, error = %err, "snoozed conversations not reopened; retrying");
                let retry = to_millis(now()) + i64::try_from(RETRY.as_millis()).unwrap_or(5_000);
                send(&self.queue, Command::WakeAt(tenant, retry));
            }
        }
    }
}

fn instant_of(at_ms: i64) -> Instant {
    let wait = at_ms.saturating_sub(to_millis(now())).max(0);
    Instant::now() + Duration::from_millis(wait.unsigned_abs())
}

/// The earliest time a snoozed conversation of the file reopens.
fn earliest(conn: &rusqlite::Connection) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT min(snoozed_until) FROM conversation WHERE status = 'snoozed'")?
        .query_row([], |row| row.get(0))
        .optional()?
        .flatten())
}

/// In one write: every snoozed conversation of `tenant` whose time has come goes back to
/// `open`, each with its event. Returns the next snooze time, if any.
async fn reopen_due(events: &TenantEvents, tenant: TenantId) -> Result<Option<i64>, ApiError> {
    let db = events.tenants.get(tenant).await?;
    events
        .write(&db, tenant, |tx, appended| {
            let now_ms = to_millis(now());
            let reopened = tx
                .prepare_cached(
                    "UPDATE conversation SET status = 'open', snoozed_until = NULL
                     WHERE status = 'snoozed' AND snoozed_until <= ?1
                     RETURNING id",
                )?
                .query_map([now_ms], |row| uuid_col(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for id in reopened {
                let conversation = store::find_conversation(tx, id, None)?;
                let data = EventData::chat(None, conversation);
                appended.push(tx, EventKind::ConversationUpdated, data)?;
            }
            Ok(earliest(tx)?)
        })
        .await
}
