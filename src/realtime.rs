//! How committed events reach the sockets.
//!
//! - [`Realtime`]: the one broadcaster task. Writes queue their committed events; it sends
//!   them to the tenant's Socket.IO room (`tenant:<id>`), in the order they were queued.
//! - [`TenantEvents`]: the handle every service writes through. It does "append in the
//!   transaction, queue on commit" in one place ([`TenantEvents::write`]), so no caller can
//!   append an event and forget to publish it, or publish one that was rolled back.
//!
//! The Socket.IO gateway (handshake, client events) is `http::socket`.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Transaction;
use socketioxide::SocketIo;
use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::ApiError;
use crate::events::{Appended, Event, EventData, EventKind, Retention};
use crate::ids::{TenantId, UserId};
use crate::tenancy::TenantPools;

/// A tenant's Socket.IO room: every event of that tenant is broadcast there.
pub fn tenant_room(tenant: TenantId) -> String {
    format!("tenant:{tenant}")
}

/// A user's Socket.IO room: used to cut the user off when their tokens are revoked.
pub fn user_room(user: UserId) -> String {
    format!("user:{user}")
}

#[derive(Clone)]
pub struct Realtime {
    io: SocketIo,
    /// To the broadcaster task: committed events, in the order their writes committed.
    queue: mpsc::UnboundedSender<(TenantId, Vec<Event>)>,
}

impl Realtime {
    /// Starts the broadcaster task: it sends queued events to their tenant's sockets, one
    /// batch after another, in the order they were queued. It ends when every `Realtime` is
    /// dropped.
    pub fn new(io: SocketIo) -> Self {
        let (queue, mut queued) = mpsc::unbounded_channel::<(TenantId, Vec<Event>)>();
        let sockets = io.clone();
        tokio::spawn(async move {
            while let Some((tenant, events)) = queued.recv().await {
                broadcast(&sockets, tenant, &events).await;
            }
        });
        Self { io, queue }
    }

    /// Queues committed events for the tenant's sockets. Called from a write's `committed`
    /// step ([`Db::write_then`]), which runs in commit order before the file's next write: a
    /// tenant's events reach its sockets in `seq` order, none is skipped, and the writer
    /// never waits for sockets. Never blocks. (Unbounded: an emit only queues a frame per
    /// socket, so the broadcaster keeps up with any write rate SQLite allows.)
    pub fn queue(&self, tenant: TenantId, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Event> = events.into_iter().collect();
        if !events.is_empty() && self.queue.send((tenant, events)).is_err() {
            tracing::debug!(tenant = %tenant, "broadcaster stopped; events not sent to sockets");
        }
    }

    /// Disconnects every socket (at shutdown, so that open websockets do not hold it up).
    pub async fn disconnect_all(&self) {
        if let Err(err) = self.io.disconnect().await {
            tracing::debug!(error = %err, "socket disconnect failed");
        }
    }

    /// Disconnects every socket of a user whose tokens were just revoked.
    pub async fn disconnect_user(&self, user: UserId) {
        if let Err(err) = self.io.to(user_room(user)).disconnect().await {
            tracing::debug!(user = %user, error = %err, "socket disconnect failed");
        }
    }
}

/// Sends committed events to the tenant's sockets (an event for one member to that member's
/// sockets only), in the order given.
async fn broadcast(io: &SocketIo, tenant: TenantId, events: &[Event]) {
    let room = tenant_room(tenant);
    for event in events {
        let to = match event.audience {
            Some(user) => user_room(user),
            None => room.clone(),
        };
        if let Err(err) = io.to(to).emit(event.kind.as_str(), event).await {
            tracing::debug!(tenant = %tenant, error = %err, "socket broadcast failed");
        }
    }
}

/// Wakes whoever waits on a tenant's new events (the webhook deliveries): a `watch` channel
/// per tenant that has a subscriber, sent to after each commit that appended events.
#[derive(Clone, Default)]
pub struct CommitSignal(Arc<std::sync::RwLock<HashMap<TenantId, tokio::sync::watch::Sender<()>>>>);

impl CommitSignal {
    /// A receiver that sees each later commit of `tenant` (`changed()`).
    pub fn subscribe(&self, tenant: TenantId) -> tokio::sync::watch::Receiver<()> {
        let mut senders = self.0.write().unwrap_or_else(|e| e.into_inner());
        senders.retain(|_, sender| sender.receiver_count() > 0);
        senders
            .entry(tenant)
            .or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe()
    }

    /// Tells `tenant`'s subscribers that something changed.
    pub fn notify(&self, tenant: TenantId) {
        let senders = self.0.read().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = senders.get(&tenant) {
            sender.send_replace(());
        }
    }
}

/// The tenants' event logs as services write them: the tenant files, the broadcaster and the
/// retention limits, built once at start-up.
#[derive(Clone)]
pub struct TenantEvents {
    pub tenants: TenantPools,
    realtime: Realtime,
    retention: Retention,
    committed: CommitSignal,
}

impl TenantEvents {
    pub fn new(tenants: TenantPools, realtime: Realtime, retention: Retention) -> Self {
        Self {
            tenants,
            realtime,
            retention,
            committed: CommitSignal::default(),
        }
    }

    /// What each commit that appended events signals.
    pub fn committed(&self) -> &CommitSignal {
        &self.committed
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// Runs `f` in one write transaction on `tenant`'s file `db`; the events it appends to
    /// its [`Appended`] are committed with it and, once committed (and before the file's next
    /// write), queued for the tenant's sockets — even if the caller has gone by then.
    pub async fn write<T, F>(&self, db: &Db, tenant: TenantId, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &mut Appended) -> Result<T, ApiError> + Send + 'static,
    {
        self.write_then(db, tenant, f, |_| {}).await
    }

    /// [`TenantEvents::write`], with `committed` run right after the events are queued (on
    /// the same blocking thread, still in commit order): for work that must follow the
    /// commit even if the caller goes away, such as waking the outbox.
    pub async fn write_then<T, F, C>(
        &self,
        db: &Db,
        tenant: TenantId,
        f: F,
        committed: C,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &mut Appended) -> Result<T, ApiError> + Send + 'static,
        C: FnOnce(&mut T) + Send + 'static,
    {
        let retention = self.retention;
        let realtime = self.realtime.clone();
        let signal = self.committed.clone();
        let (out, _) = db
            .write_then(
                move |tx| {
                    let mut appended = Appended::new(retention);
                    let out = f(tx, &mut appended)?;
                    Ok((out, Some(appended)))
                },
                move |(out, appended)| {
                    if let Some(appended) = appended.take().filter(|a| !a.is_empty()) {
                        realtime.queue(tenant, appended.into_events());
                        signal.notify(tenant);
                    }
                    committed(out);
                },
            )
            .await?;
        Ok(out)
    }

    /// Appends one event in its own transaction and queues it (for events that are not part
    /// of a chat change, such as the WhatsApp session's).
    pub async fn record(
        &self,
        tenant: TenantId,
        kind: EventKind,
        data: EventData,
    ) -> Result<(), ApiError> {
        let db = self.tenants.get(tenant).await?;
        self.write(&db, tenant, move |tx, appended| {
            Ok(appended.push(tx, kind, data)?)
        })
        .await
    }
}
