//! The team's work on one conversation over HTTP (docs/WORKFLOW.md): status, assignee,
//! labels and private notes. The actions are `chat::workflow`'s.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiPath, ApiResult};
use crate::chat::store::Viewer;
use crate::chat::{Conversation, ConversationStatus, Message};
use crate::error::{ApiError, ErrorBody};
use crate::ids::UserId;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_status))
        .routes(routes!(set_assignee))
        .routes(routes!(set_labels))
        .routes(routes!(add_note))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusRequest {
    pub status: ConversationStatus,
    /// Required for `snoozed`: when it reopens (in the future, within 366 days). Refused for
    /// the other statuses.
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// Sets a conversation's status. A resolved or snoozed conversation reopens when the
/// contact writes; a snoozed one also when `snoozedUntil` passes (across restarts).
#[utoipa::path(post, path = "/api/conversations/{id}/status", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = StatusRequest,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "unknown status, or a snooze time missing, past, too far or not wanted", body = ErrorBody),
    ))]
async fn set_status(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<StatusRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    let viewer = Viewer(scope.caller.user.id.0);
    let conversation = state
        .workflow
        .set_status(&scope.db, viewer, id, req.status, req.snoozed_until)
        .await?;
    Ok(ApiJson(conversation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssigneeRequest {
    /// A member of the caller's team, or null to unassign. Required.
    #[serde(default, deserialize_with = "super::json::present")]
    #[schema(value_type = Option<Uuid>, required = true)]
    pub user_id: Option<Option<UserId>>,
}

/// Assigns a conversation to a team member, or unassigns it. Owners and admins assign
/// anyone; an agent may assign it to themselves and unassign themselves.
#[utoipa::path(post, path = "/api/conversations/{id}/assignee", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = AssigneeRequest,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 403, description = "an agent assigning someone else, or unassigning another's conversation", body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "userId missing, or not a member of the caller's team", body = ErrorBody),
    ))]
async fn set_assignee(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AssigneeRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    let assignee = req.user_id.ok_or_else(|| {
        ApiError::validation("userId is required (a team member's id, or null to unassign)")
    })?;
    let conversation = state
        .workflow
        .assign(&scope.db, &scope.caller, id, assignee)
        .await?;
    Ok(ApiJson(conversation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// Ids of the tenant's labels: the conversation's whole set (an empty list clears it).
    #[schema(max_items = 100)]
    pub labels: Vec<Uuid>,
}

/// Sets a conversation's labels (any member). An id that is not one of the tenant's labels
/// is refused and nothing changes.
#[utoipa::path(put, path = "/api/conversations/{id}/labels", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = LabelsRequest,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "an unknown label, or more than 100", body = ErrorBody),
    ))]
async fn set_labels(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<LabelsRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    if req.labels.len() > 100 {
        return Err(ApiError::validation("labels may hold at most 100 ids"));
    }
    let viewer = Viewer(scope.caller.user.id.0);
    let conversation = state
        .workflow
        .set_labels(&scope.db, viewer, id, req.labels)
        .await?;
    Ok(ApiJson(conversation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The note; `@Name` mentions a teammate.
    #[schema(schema_with = super::openapi::fields::content)]
    pub content: String,
}

/// Adds a private note to the conversation's timeline: never sent to WhatsApp, seen by the
/// team only. Each teammate it mentions (`@Name`) is notified (a `mention` event to them).
#[utoipa::path(post, path = "/api/conversations/{id}/notes", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "stored", body = Message),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 422, description = "empty or oversized note", body = ErrorBody),
    ))]
async fn add_note(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, ApiJson<Message>)> {
    let note = state
        .workflow
        .add_note(&scope.db, &scope.caller, id, req.content)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(note)))
}
