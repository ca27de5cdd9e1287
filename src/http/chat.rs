//! `/api/conversations/*`: the inbox over HTTP. Every handler takes [`TenantScope`], so it
//! only ever sees the caller's own tenant file; another tenant's conversation id is simply
//! not there (404).

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::TenantScope;
use super::json::{
    ApiJson, ApiPath, ApiQuery, ApiResult, JSON_BODY_CAPACITY, JsonBytes, not_modified,
};
use super::paging::{self, Page};
use crate::auth::users::normalize_name;
use crate::chat::inbox::{Recipient, existing, existing_for};
use crate::chat::library;
use crate::chat::pages::{self, PageKey};
use crate::chat::store::{self, AssigneeFilter, ConversationCounts, ListFilter, Viewer};
use crate::chat::{Conversation, ConversationStatus, Message, normalize_phone};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(conversation_counts))
        .routes(routes!(get_conversation, update_conversation))
        .routes(routes!(list_messages))
        .routes(routes!(send))
        .routes(routes!(mark_read))
}

/// Default and largest page sizes.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Search in contact name (case-insensitive for ASCII) and, when it looks like a phone
    /// number (digits, spaces, `+ - ( ) .`), in the number's digits. No control characters.
    #[param(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub q: Option<String>,
    /// Only conversations with messages the caller has not read.
    pub unread: Option<bool>,
    /// Statuses shown, comma-separated (`open,pending`, the default), or `all`.
    #[param(
        pattern = r"^(all|(open|pending|resolved|snoozed)(,(open|pending|resolved|snoozed))*)$"
    )]
    pub status: Option<String>,
    /// `me`, `unassigned`, `all` (the default) or a team member's id.
    #[param(
        pattern = r"^(me|unassigned|all|[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12})$"
    )]
    pub assignee: Option<String>,
    /// Only conversations with this label (its id).
    pub label: Option<Uuid>,
}

/// The statuses of a `status` parameter: `open,pending` when absent, every one for `all`.
pub fn parse_statuses(raw: Option<&str>) -> Result<Vec<ConversationStatus>, ApiError> {
    let Some(raw) = raw else {
        return Ok(vec![ConversationStatus::Open, ConversationStatus::Pending]);
    };
    if raw == "all" {
        return Ok(Vec::new());
    }
    let mut statuses = Vec::new();
    for word in raw.split(',') {
        let status = ConversationStatus::parse(word.trim()).ok_or_else(|| {
            ApiError::validation(format!(
                "status must be open, pending, resolved or snoozed (comma-separated), or all; \
                 not {word:?}"
            ))
        })?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

/// The assignee filter of an `assignee` parameter, `me` being `caller`.
pub fn parse_assignee(raw: Option<&str>, caller: Uuid) -> Result<AssigneeFilter, ApiError> {
    Ok(match raw {
        None | Some("all") => AssigneeFilter::All,
        Some("me") => AssigneeFilter::User(caller),
        Some("unassigned") => AssigneeFilter::Unassigned,
        Some(other) => AssigneeFilter::User(Uuid::parse_str(other).map_err(|_| {
            ApiError::validation("assignee must be me, unassigned, all or a team member's id")
        })?),
    })
}

/// Refuses (422) a label filter that names none of the tenant's labels.
fn known_label(conn: &rusqlite::Connection, label: Option<Uuid>) -> Result<(), ApiError> {
    match label {
        Some(id) if library::find_label(conn, id)?.is_none() => Err(ApiError::validation(format!(
            "label {id} is not a label of this workspace"
        ))),
        _ => Ok(()),
    }
}

/// The inbox: conversations, newest activity first, keyset-paginated; by default the open
/// and pending ones (docs/WORKFLOW.md). `unreadCount` is the caller's own.
///
/// Pages never repeat an item. A conversation that gets a new message while a client pages
/// moves to the top; the client learns of it from `conversation_updated`/`incoming_message`
/// (live or via `/api/events`), not from a later page.
#[utoipa::path(get, path = "/api/conversations", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(ConversationQuery,
        ("If-None-Match" = Option<String>, Header, description = "the ETag of a first page the client has")),
    responses(
        (status = 200, body = Page<Conversation>, headers(("ETag" = String, description = "first pages: a tag of the page's bytes"))),
        (status = 304, description = "a first page asked for with `If-None-Match` that has not changed"),
        (status = 400, description = "bad cursor or query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "limit, status, assignee or label not valid", body = ErrorBody),
    ))]
async fn list_conversations(
    State(state): State<AppState>,
    scope: TenantScope,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ConversationQuery>,
) -> ApiResult<Response> {
    // A first page is answered from the page cache while the file is unchanged (one
    // validated and rendered earlier from the same query string).
    let kept = (query.cursor.is_none())
        .then(|| scope.db.sequence())
        .flatten()
        .map(|sequence| {
            let key = PageKey {
                tenant: scope.db.tenant(),
                user: scope.caller.user.id,
                query: raw_query.unwrap_or_default().into_boxed_str(),
            };
            (key, sequence)
        });
    if let Some((key, sequence)) = &kept
        && let Some(page) = state.pages.get(key, *sequence)
    {
        return Ok(page_response(&page, &headers));
    }
    let limit = paging::page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    if let Some(q) = &query.q {
        crate::text::search("q", q)?;
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| paging::decode_conversation_cursor("cursor", c))
        .transpose()?;
    let me = scope.caller.user.id.0;
    let filter = ListFilter {
        q: query.q,
        unread_only: query.unread.unwrap_or(false),
        statuses: parse_statuses(query.status.as_deref())?,
        assignee: parse_assignee(query.assignee.as_deref(), me)?,
        label: query.label,
    };
    // The page is written as a `Page<Conversation>` while the rows are read.
    let body = scope
        .db
        .run(move |conn| {
            known_label(conn, filter.label)?;
            let mut body = Vec::with_capacity(JSON_BODY_CAPACITY);
            store::write_conversation_page(
                conn,
                Viewer(me),
                &filter,
                cursor.as_ref(),
                limit,
                paging::encode_conversation_cursor,
                &mut body,
            )?;
            Ok(body)
        })
        .await?;
    Ok(match kept {
        Some((key, sequence)) => {
            let page = state.pages.insert(key, sequence, Bytes::from(body));
            page_response(&page, &headers)
        }
        None => JsonBytes(body).into_response(),
    })
}

/// A kept page's answer: 304 if the client has it (`If-None-Match`), else its bytes. Both
/// carry the ETag and `Cache-Control: private, no-cache`, so a browser keeps the page and
/// asks again with its ETag.
fn page_response(page: &pages::Page, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&page.etag).expect("an ETag is quoted hex");
    let cache_control = HeaderValue::from_static("private, no-cache");
    if not_modified(headers, &page.etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
        ],
        Body::from(page.body.clone()),
    )
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// The statuses the assignee counts cover (as the list's `status`; default `open,pending`).
    #[param(
        pattern = r"^(all|(open|pending|resolved|snoozed)(,(open|pending|resolved|snoozed))*)$"
    )]
    pub status: Option<String>,
    /// The assignee the status counts cover (as the list's `assignee`; default `all`).
    #[param(
        pattern = r"^(me|unassigned|all|[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12})$"
    )]
    pub assignee: Option<String>,
    /// Count only conversations with this label.
    pub label: Option<Uuid>,
}

/// The tabs' numbers without loading lists: conversations per status (under the assignee
/// and label filters) and per assignee filter (under the status and label filters).
#[utoipa::path(get, path = "/api/conversations/counts", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(CountsQuery),
    responses(
        (status = 200, body = ConversationCounts),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "status, assignee or label not valid", body = ErrorBody),
    ))]
async fn conversation_counts(
    scope: TenantScope,
    ApiQuery(query): ApiQuery<CountsQuery>,
) -> ApiResult<ApiJson<ConversationCounts>> {
    let me = scope.caller.user.id.0;
    let filter = ListFilter {
        statuses: parse_statuses(query.status.as_deref())?,
        assignee: parse_assignee(query.assignee.as_deref(), me)?,
        label: query.label,
        ..ListFilter::default()
    };
    let counts = scope
        .db
        .run(move |conn| {
            known_label(conn, filter.label)?;
            Ok(store::conversation_counts(conn, me, &filter)?)
        })
        .await?;
    Ok(ApiJson(counts))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateConversation {
    #[schema(schema_with = super::openapi::fields::phone)]
    pub contact_number: String,
    #[schema(schema_with = super::openapi::fields::optional_name)]
    pub contact_name: Option<String>,
}

/// Opens the conversation with a number: 201 when new, 200 with the existing one.
#[utoipa::path(post, path = "/api/conversations", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["messages:send"])),
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
    let viewer = Viewer(scope.caller.user.id.0);
    let (conversation, created) = state
        .inbox
        .open_conversation(&scope.db, viewer, number, name)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(conversation)))
}

/// One conversation.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
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
    let viewer = Viewer(scope.caller.user.id.0);
    let conversation = scope
        .db
        .run(move |conn| existing_for(conn, id, viewer))
        .await?;
    Ok(ApiJson(conversation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConversation {
    /// The contact's name as the team calls them (kept from then on; WhatsApp's push name no
    /// longer replaces it), or null to show the push name again. Required.
    #[serde(default, deserialize_with = "super::json::present")]
    #[schema(schema_with = super::openapi::fields::optional_name, required = true)]
    pub contact_name: Option<Option<String>>,
}

/// Renames the contact (docs/WORKFLOW.md): `conversation_updated` tells the team.
#[utoipa::path(patch, path = "/api/conversations/{id}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = UpdateConversation,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "invalid name", body = ErrorBody),
    ))]
async fn update_conversation(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateConversation>,
) -> ApiResult<ApiJson<Conversation>> {
    let name = req
        .contact_name
        .ok_or_else(|| {
            ApiError::validation(
                "contactName is required (a name, or null to show WhatsApp's push name)",
            )
        })?
        .as_deref()
        .map(|n| normalize_name("contactName", n))
        .transpose()?;
    let viewer = Viewer(scope.caller.user.id.0);
    let conversation = state
        .workflow
        .rename_contact(&scope.db, viewer, id, name)
        .await?;
    Ok(ApiJson(conversation))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page: continue with older messages.
    pub before: Option<String>,
}

/// A conversation's messages, newest first, keyset-paginated (new messages never shift pages).
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(("id" = Uuid, Path, description = "conversation id"), MessageQuery),
    responses(
        (status = 200, body = Page<Message>),
        (status = 400, description = "bad cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
    ))]
async fn list_messages(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> ApiResult<ApiJson<Page<Message>>> {
    let limit = paging::page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = query
        .before
        .as_deref()
        .map(|c| paging::decode_message_cursor("before", c))
        .transpose()?;
    let (items, next) = scope
        .db
        .run(move |conn| {
            existing(conn, id)?;
            Ok(store::list_messages(conn, id, before.as_ref(), limit)?)
        })
        .await?;
    Ok(ApiJson(Page {
        items,
        next_cursor: next.as_ref().map(paging::encode_message_cursor),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendRequest {
    #[schema(schema_with = super::openapi::fields::content)]
    pub content: String,
}

/// Sends a text: stored as `pending` and acknowledged (201), then handed to WhatsApp by the
/// tenant's outbox; `message_status` events follow (`sent`, `delivered`, `read` or `failed`).
#[utoipa::path(post, path = "/api/conversations/{id}/send", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["messages:send"])),
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
    let message = state
        .inbox
        .send(
            &scope.db,
            scope.caller.user.id,
            Recipient::Conversation(id),
            req.content,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(message)))
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
    let viewer = Viewer(scope.caller.user.id.0);
    let conversation = state.inbox.mark_read(&scope.db, viewer, id).await?;
    Ok(ApiJson(conversation))
}
