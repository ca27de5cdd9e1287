//! The Socket.IO v4 gateway at `/socket.io` (socketioxide).
//!
//! - Handshake: the client sends `auth: {token}`; no token, a bad, expired or revoked token
//!   refuses the connection with the reason `unauthorized`.
//! - A socket joins exactly two rooms: its tenant's (`tenant:<id>`, where every event of that
//!   tenant is broadcast) and its user's (`user:<id>`, used to cut it off when the user's
//!   tokens are revoked).
//! - Client event `send_message {conversationId, content}` is answered by an acknowledgement
//!   carrying the stored message or `{error: {code, message}}`.
//!
//! Handlers hold the application weakly: the application owns the Socket.IO instance, not the
//! other way round.

use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::auth::{CurrentUser, TenantScope};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::events::Event;
use crate::ids::{TenantId, UserId};
use crate::tenancy::TenantDb;

#[derive(Clone)]
pub struct Realtime {
    io: SocketIo,
    /// To the broadcaster task: committed events, in the order their writes committed.
    queue: mpsc::UnboundedSender<(TenantId, Vec<Event>)>,
}

fn tenant_room(tenant: TenantId) -> String {
    format!("tenant:{tenant}")
}

fn user_room(user: UserId) -> String {
    format!("user:{user}")
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
    /// step ([`crate::db::Db::write_then`]), which runs in commit order before the file's
    /// next write: a tenant's events reach its sockets in `seq` order, none is skipped, and
    /// the writer never waits for sockets. Never blocks. (Unbounded: an emit only queues a
    /// frame per socket, so the broadcaster keeps up with any write rate SQLite allows.)
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

/// Sends committed events to the tenant's sockets, in the order given.
async fn broadcast(io: &SocketIo, tenant: TenantId, events: &[Event]) {
    let room = tenant_room(tenant);
    for event in events {
        if let Err(err) = io.to(room.clone()).emit(event.kind.as_str(), event).await {
            tracing::debug!(tenant = %tenant, error = %err, "socket broadcast failed");
        }
    }
}

#[derive(Debug, Deserialize)]
struct HandshakeAuth {
    token: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    conversation_id: Uuid,
    content: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Ack<T> {
    Ok(T),
    Err(ErrorBody),
}

impl<T> From<Result<T, ApiError>> for Ack<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(value) => Ack::Ok(value),
            Err(err) => Ack::Err(ErrorBody {
                error: ErrorDetail {
                    code: err.code().to_owned(),
                    message: err.message().to_owned(),
                },
            }),
        }
    }
}

/// Registers the `/` namespace: handshake authentication and the client events.
pub fn attach(io: &SocketIo, app: Weak<App>) {
    let auth_app = app.clone();
    let authenticate = move |s: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
        let app = auth_app.clone();
        async move {
            let app = app.upgrade().ok_or("unauthorized")?;
            let token = auth.map_err(|_| "unauthorized")?.token;
            let caller = AppState::from(app)
                .authenticate(&token)
                .await
                .map_err(|_| "unauthorized")?;
            s.join(tenant_room(caller.tenant_id()));
            s.join(user_room(caller.user.id));
            s.extensions.insert(caller);
            Ok::<(), &'static str>(())
        }
    };
    let on_connect = move |s: SocketRef| {
        let app = app.clone();
        async move {
            s.on(
                "send_message",
                async move |TryData(req): TryData<SendMessage>,
                            Extension(caller): Extension<CurrentUser>,
                            ack: AckSender| {
                    let result = match (app.upgrade(), req) {
                        (Some(app), Ok(req)) => {
                            send_message(AppState::from(app), caller, req).await
                        }
                        (_, Err(err)) => Err(ApiError::validation(format!(
                            "send_message needs {{conversationId, content}}: {err}"
                        ))),
                        (None, _) => {
                            Err(ApiError::internal("socket send_message", "server stopping"))
                        }
                    };
                    let _ = ack.send(&Ack::from(result));
                },
            );
        }
    };
    io.ns("/", on_connect.with(authenticate));
}

async fn send_message(
    state: AppState,
    caller: CurrentUser,
    req: SendMessage,
) -> Result<crate::chat::Message, ApiError> {
    let db = TenantDb::new(&state.tenants, caller.tenant_id());
    let scope = TenantScope { caller, db };
    crate::chat::routes::send_to_conversation(&state, &scope, req.conversation_id, req.content)
        .await
}

impl From<Arc<App>> for AppState {
    fn from(app: Arc<App>) -> Self {
        AppState::from_arc(app)
    }
}
