//! `/api/conversations/*`: the inbox over HTTP. Every handler takes [`TenantScope`], so it
//! only ever sees the caller's own tenant file; another tenant's conversation id is simply
//! not there (404).

use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::store::{self, ConversationCursor, ListFilter, MessageCursor};
use super::{
    Conversation, Message, Sender, Status, normalize_phone, now, to_millis, validate_content,
};
use crate::app::AppState;
use crate::auth::TenantScope;
use crate::auth::users::normalize_name;
use crate::error::{
    ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, JSON_BODY_CAPACITY, JsonBytes,
};
use crate::events::{self, Event, EventData, EventKind, Retention};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(get_conversation))
        .routes(routes!(list_messages))
        .routes(routes!(send))
        .routes(routes!(mark_read))
}

/// Default and largest page sizes.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// A page size from the query: `default` when absent, 422 outside `1..=max`.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Search in contact name (case-insensitive for ASCII) and, when it looks like a phone
    /// number (digits, spaces, `+ - ( ) .`), in the number's digits.
    pub q: Option<String>,
    /// Only conversations with unread messages.
    pub unread: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The inbox: conversations, newest activity first, keyset-paginated.
///
/// Pages never repeat an item. A conversation that gets a new message while a client pages
/// moves to the top; the client learns of it from `conversation_updated`/`incoming_message`
/// (live or via `/api/events`), not from a later page.
#[utoipa::path(get, path = "/api/conversations", tag = "conversations",
    security(("bearer" = [])),
    params(ConversationQuery),
    responses(
        (status = 200, body = ConversationPage),
        (status = 400, description = "bad cursor or query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
    ))]
async fn list_conversations(
    scope: TenantScope,
    ApiQuery(query): ApiQuery<ConversationQuery>,
) -> ApiResult<JsonBytes> {
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| ConversationCursor::decode("cursor", c))
        .transpose()?;
    let filter = ListFilter {
        q: query.q,
        unread_only: query.unread.unwrap_or(false),
    };
    // The page is written as a `ConversationPage` while the rows are read.
    let body = scope
        .db
        .run(move |conn| {
            let mut body = Vec::with_capacity(JSON_BODY_CAPACITY);
            store::write_conversation_page(conn, &filter, cursor.as_ref(), limit, &mut body)?;
            Ok(body)
        })
        .await?;
    Ok(JsonBytes(body))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateConversation {
    /// International format with country code; spaces, dashes and parentheses are ignored.
    #[schema(example = "+62 812 3456 7890")]
    pub contact_number: String,
    pub contact_name: Option<String>,
}

/// Opens the conversation with a number: 201 when new, 200 with the existing one.
#[utoipa::path(post, path = "/api/conversations", tag = "conversations",
    security(("bearer" = [])),
    request_body = CreateConversation,
    responses(
        (status = 201, description = "created", body = Conversation),
        (status = 200, description = "the number already has a conversation", body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 422, description = "invalid number or name", body = ErrorBody),
    ))]
async fn create_conversation(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(req): ApiJson<CreateConversation>,
) -> ApiResult<(StatusCode, ApiJson<Conversation>)> {
    let number = normalize_phone("contactNumber", &req.contact_number)?;
    let name = req
        .contact_name
        .as_deref()
        .map(|n| normalize_name("contactName", n))
        .transpose()?;
    let retention = state.retention;
    let (realtime, tenant) = (state.realtime.clone(), scope.caller.tenant_id());
    let (conversation, event) = scope
        .db
        .write_then(
            move |tx| {
                let (conversation, created) =
                    store::upsert_conversation(tx, &number, name.as_deref(), to_millis(now()))?;
                let event = created
                    .then(|| {
                        let data = EventData::chat(None, Some(conversation.clone()));
                        events::append(tx, EventKind::ConversationUpdated, data, retention)
                    })
                    .transpose()?;
                Ok((conversation, event))
            },
            move |(_, event)| realtime.queue(tenant, event.clone()),
        )
        .await?;
    let status = if event.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(conversation)))
}

/// One conversation.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
    ))]
async fn get_conversation(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Conversation>> {
    let conversation = scope.db.run(move |conn| existing(conn, id)).await?;
    Ok(ApiJson(conversation))
}

fn existing(conn: &Connection, id: Uuid) -> Result<Conversation, ApiError> {
    store::find_conversation(conn, id)?.ok_or_else(|| ApiError::not_found("conversation"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page: continue with older messages.
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<Message>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A conversation's messages, newest first, keyset-paginated (new messages never shift pages).
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id"), MessageQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, description = "bad cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
    ))]
async fn list_messages(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> ApiResult<ApiJson<MessagePage>> {
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = query
        .before
        .as_deref()
        .map(|c| MessageCursor::decode("before", c))
        .transpose()?;
    let (items, next) = scope
        .db
        .run(move |conn| {
            existing(conn, id)?;
            Ok(store::list_messages(conn, id, before.as_ref(), limit)?)
        })
        .await?;
    Ok(ApiJson(MessagePage {
        items,
        next_cursor: next.map(|c| c.encode()),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendRequest {
    /// 1–4096 characters.
    pub content: String,
}

/// Sends a text: stored as `pending` and acknowledged (201), then handed to WhatsApp by the
/// tenant's outbox; `message_status` events follow (`sent`, `delivered`, `read` or `failed`).
#[utoipa::path(post, path = "/api/conversations/{id}/send", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = SendRequest,
    responses(
        (status = 201, body = Message),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "empty or oversized content", body = ErrorBody),
    ))]
async fn send(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<SendRequest>,
) -> ApiResult<(StatusCode, ApiJson<Message>)> {
    let message = send_to_conversation(&state, &scope, id, req.content).await?;
    Ok((StatusCode::CREATED, ApiJson(message)))
}

/// Accepts an agent's text for an existing conversation (HTTP and Socket.IO share this).
pub async fn send_to_conversation(
    state: &AppState,
    scope: &TenantScope,
    conversation: Uuid,
    content: String,
) -> Result<Message, ApiError> {
    validate_content("content", &content)?;
    let author = scope.caller.user.id.0;
    let retention = state.retention;
    let (message, _) = scope
        .db
        .write_then(
            move |tx| {
                existing(tx, conversation)?;
                accept_outgoing(tx, conversation, content, author, retention)
            },
            queue_sent(state, scope),
        )
        .await?;
    Ok(message)
}

/// Accepts an agent's text for a number, opening its conversation if needed.
pub async fn send_to_number(
    state: &AppState,
    scope: &TenantScope,
    to: &str,
    content: String,
) -> Result<Message, ApiError> {
    let number = normalize_phone("to", to)?;
    validate_content("content", &content)?;
    let author = scope.caller.user.id.0;
    let retention = state.retention;
    let (message, _) = scope
        .db
        .write_then(
            move |tx| {
                let (conversation, _) =
                    store::upsert_conversation(tx, &number, None, to_millis(now()))?;
                accept_outgoing(tx, conversation.id, content, author, retention)
            },
            queue_sent(state, scope),
        )
        .await?;
    Ok(message)
}

/// Stores an outgoing message as `pending`, updates its conversation, and logs `message_sent`.
fn accept_outgoing(
    conn: &Connection,
    conversation: Uuid,
    content: String,
    author: Uuid,
    retention: Retention,
) -> Result<(Message, Event), ApiError> {
    let message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        content,
        sender: Sender::Agent,
        kind: "text".to_owned(),
        status: Status::Pending,
        is_read: true,
        whatsapp_id: None,
        author_id: Some(author),
        created_at: now(),
    };
    store::insert_message(conn, &message)?;
    let conversation = store::touch_conversation(conn, &message)?;
    let data = EventData::chat(Some(message.clone()), Some(conversation));
    Ok((
        message,
        events::append(conn, EventKind::MessageSent, data, retention)?,
    ))
}

/// The `committed` step of a send: queues its `message_sent` for the tenant's sockets and
/// wakes the outbox. Both happen even if the client has gone by then.
fn queue_sent(
    state: &AppState,
    scope: &TenantScope,
) -> impl FnOnce(&mut (Message, Event)) + Send + use<> {
    let (state, tenant) = (state.clone(), scope.caller.tenant_id());
    move |(_, event)| {
        state.realtime.queue(tenant, [event.clone()]);
        state.outbox.kick(&state, tenant);
    }
}

/// Marks a conversation read: its unread count drops to 0, its incoming messages are marked
/// read, and WhatsApp is told (read receipts to the contact, when the session is connected).
#[utoipa::path(post, path = "/api/conversations/{id}/read", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
    ))]
async fn mark_read(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Conversation>> {
    let retention = state.retention;
    let tenant = scope.caller.tenant_id();
    let realtime = state.realtime.clone();
    let (conversation, whatsapp_ids, _) = scope
        .db
        .write_then(
            move |tx| {
                let before = existing(tx, id)?;
                let whatsapp_ids = store::mark_read(tx, id)?;
                let conversation = existing(tx, id)?;
                let event = (before.unread_count != 0 || !whatsapp_ids.is_empty())
                    .then(|| {
                        let data = EventData::chat(None, Some(conversation.clone()));
                        events::append(tx, EventKind::ConversationUpdated, data, retention)
                    })
                    .transpose()?;
                Ok((conversation, whatsapp_ids, event))
            },
            move |(_, _, event)| realtime.queue(tenant, event.take()),
        )
        .await?;
    if !whatsapp_ids.is_empty() {
        // Best effort: the read state is stored; a receipt that cannot go out now is not retried.
        if let Err(err) = state
            .whatsapp
            .mark_read(tenant, &conversation.contact_number, &whatsapp_ids)
            .await
        {
            tracing::info!(tenant = %tenant, error = %err, "read receipts not sent");
        }
    }
    Ok(ApiJson(conversation))
}
