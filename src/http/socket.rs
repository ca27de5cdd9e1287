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
//! other way round. Events reach sockets through the broadcaster ([`crate::realtime`]).

use std::sync::Weak;

use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Extension, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use uuid::Uuid;

use super::extract::{CurrentUser, TenantScope};
use crate::chat::Message;
use crate::chat::inbox::Recipient;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::realtime::{tenant_room, user_room};
use crate::state::{App, AppState};

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
            let state = AppState::upgrade(&app).ok_or("unauthorized")?;
            let token = auth.map_err(|_| "unauthorized")?.token;
            let caller = state
                .auth
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
                    let result = match (AppState::upgrade(&app), req) {
                        (Some(state), Ok(req)) => send_message(&state, caller, req).await,
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
    state: &AppState,
    caller: CurrentUser,
    req: SendMessage,
) -> Result<Message, ApiError> {
    let scope = TenantScope::of(state, caller);
    let to = Recipient::Conversation(req.conversation_id);
    state
        .inbox
        .send(&scope.db, scope.caller.user.id, to, req.content)
        .await
}
