//! Reopening snoozed conversations when their time comes.
//!
//! The tenant file is the truth (`conversation.snoozed_until`); the master registry keeps a
//! hint per tenant, `tenant.wake_at`: its earliest snooze. At start-up the hints are read, so
//! a snooze survives a restart without every tenant file being opened. One task holds the
//! wake-ups in time order; at a tenant's time it reopens every due conversation of that
//! tenant in one write (each a `conversation_updated` event) and records the next hint.
//! A hint may be early or stale (the conversation was reopened by hand): waking finds
//! nothing due and moves on.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::store;
use super::{now, to_millis};
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{EventData, EventKind};
use crate::ids::TenantId;
use crate::realtime::TenantEvents;

/// How long a wake-up waits to try again when its tenant could not be written (held by a
/// backup, say).
const RETRY: Duration = Duration::from_secs(5);

/// The handle services schedule wake-ups through.
#[derive(Clone)]
pub struct Snoozes {
    queue: mpsc::UnboundedSender<(TenantId, i64)>,
    master: Db,
}

impl Snoozes {
    /// Starts the waker task; it first reads every tenant's recorded wake-up. It ends when
    /// every handle is dropped. (Must be called inside the runtime.)
    pub fn start(events: TenantEvents, master: Db) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let snoozes = Self { queue, master };
        let waker = Waker {
            events,
            snoozes: snoozes.clone(),
        };
        tokio::spawn(async move {
            match waker.recorded().await {
                Ok(recorded) => {
                    for (tenant, at) in recorded {
                        waker.snoozes.wake_at(tenant, at);
                    }
                }
                Err(err) => tracing::error!(error = %err, "recorded snooze wake-ups not read"),
            }
            waker.run(queued).await;
        });
        snoozes
    }

    /// Records that `tenant` has a conversation snoozed until `at_ms` (after the snooze was
    /// committed to the tenant's file): the hint in the registry, and the wake-up.
    pub async fn snoozed(&self, tenant: TenantId, at_ms: i64) -> Result<(), ApiError> {
        self.master
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE tenant SET wake_at = min(coalesce(wake_at, ?2), ?2) WHERE id = ?1",
                )?
                .execute(params![tenant, at_ms])?;
                Ok(())
            })
            .await?;
        self.wake_at(tenant, at_ms);
        Ok(())
    }

    fn wake_at(&self, tenant: TenantId, at_ms: i64) {
        if self.queue.send((tenant, at_ms)).is_err() {
            tracing::debug!(tenant = %tenant, "snooze waker stopped");
        }
    }
}

struct Waker {
    events: TenantEvents,
    snoozes: Snoozes,
}

impl Waker {
    /// Every tenant's recorded wake-up.
    async fn recorded(&self) -> Result<Vec<(TenantId, i64)>, ApiError> {
        self.snoozes
            .master
            .run(|conn| {
                Ok(conn
                    .prepare("SELECT id, wake_at FROM tenant WHERE wake_at IS NOT NULL")?
                    .query_map([], |row| Ok((row.get::<_, TenantId>(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<(TenantId, i64)>>>()?)
            })
            .await
    }

    async fn run(self, mut queued: mpsc::UnboundedReceiver<(TenantId, i64)>) {
        // Each tenant's earliest wake-up, and the same in time order.
        let mut due: BTreeSet<(i64, TenantId)> = BTreeSet::new();
        let mut by_tenant: HashMap<TenantId, i64> = HashMap::new();
        loop {
            let next = due.first().copied();
            let sleep = async {
                match next {
                    Some((at, _)) => tokio::time::sleep_until(instant_of(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = queued.recv() => {
                    let Some((tenant, at)) = item else { break };
                    match by_tenant.get(&tenant) {
                        Some(&current) if current <= at => {}
                        current => {
                            if let Some(&current) = current {
                                due.remove(&(current, tenant));
                            }
                            due.insert((at, tenant));
                            by_tenant.insert(tenant, at);
                        }
                    }
                }
                () = sleep => {
                    let now_ms = to_millis(now());
                    while let Some(&(at, tenant)) = due.first() {
                        if at > now_ms {
                            break;
                        }
                        due.pop_first();
                        by_tenant.remove(&tenant);
                        let (events, snoozes) = (self.events.clone(), self.snoozes.clone());
                        tokio::spawn(async move { wake(events, snoozes, tenant).await });
                    }
                }
            }
        }
    }
}

fn instant_of(at_ms: i64) -> Instant {
    let wait = at_ms.saturating_sub(to_millis(now())).max(0);
    Instant::now() + Duration::from_millis(wait.unsigned_abs())
}

/// Reopens `tenant`'s due conversations and records its next wake-up.
async fn wake(events: TenantEvents, snoozes: Snoozes, tenant: TenantId) {
    match reopen_due(&events, tenant).await {
        Ok(next) => {
            let now_ms = to_millis(now());
            let recorded = snoozes
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
                snoozes.wake_at(tenant, next);
            }
        }
        Err(err) if err.code() == "not_found" => {
            tracing::debug!(tenant = %tenant, "snoozes of a deleted tenant dropped");
        }
        Err(err) => {
            tracing::warn!(tenant = %tenant, error = %err, "snoozed conversations not reopened; retrying");
            let retry = to_millis(now()) + i64::try_from(RETRY.as_millis()).unwrap_or(5_000);
            snoozes.wake_at(tenant, retry);
        }
    }
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
                .query_map([now_ms], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for id in reopened {
                let id = uuid::Uuid::parse_str(&id)
                    .map_err(|e| ApiError::internal("snoozed conversation id", e))?;
                let conversation = store::find_conversation(tx, id, None)?;
                let data = EventData::chat(None, conversation);
                appended.push(tx, EventKind::ConversationUpdated, data)?;
            }
            let next: Option<i64> = tx
                .prepare_cached(
                    "SELECT min(snoozed_until) FROM conversation WHERE status = 'snoozed'",
                )?
                .query_row([], |row| row.get(0))
                .optional()?
                .flatten();
            Ok(next)
        })
        .await
}
