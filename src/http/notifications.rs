//! `/api/notifications`: the caller's own notifications (mentions in notes).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiQuery, ApiResult};
use super::paging;
use crate::chat::mentions::{self, Notification};
use crate::chat::now;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(mark_notifications_read))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Page size, 1–100 (default 30).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// A page of the caller's notifications, and how many of all of them are unread.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    /// Newest first.
    pub items: Vec<Notification>,
    pub next_cursor: Option<String>,
    pub unread: i64,
}

/// The caller's notifications, newest first (a mention of them in a teammate's note).
#[utoipa::path(get, path = "/api/notifications", tag = "workflow",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
    ))]
async fn list_notifications(
    scope: TenantScope,
    ApiQuery(query): ApiQuery<NotificationQuery>,
) -> ApiResult<ApiJson<NotificationPage>> {
    let limit = paging::page_limit(query.limit, 30, 100)?;
    let me = scope.caller.user.id.0;
    let (mut items, unread) = scope
        .db
        .run(move |conn| {
            Ok((
                mentions::list(conn, me, query.cursor, limit + 1)?,
                mentions::unread_count(conn, me)?,
            ))
        })
        .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = items.last().filter(|_| more).map(|n| n.id.to_string());
    Ok(ApiJson(NotificationPage {
        items,
        next_cursor,
        unread,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The notifications to mark read; all of the caller's when absent.
    #[schema(max_items = 500)]
    pub ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unread {
    /// How many of the caller's notifications are still unread.
    pub unread: i64,
}

/// Marks the caller's notifications read: the given ones, or all.
#[utoipa::path(post, path = "/api/notifications/read", tag = "workflow",
    security(("bearer" = [])),
    request_body = MarkRead,
    responses(
        (status = 200, body = Unread),
        (status = 401, body = ErrorBody),
        (status = 422, description = "more than 500 ids", body = ErrorBody),
    ))]
async fn mark_notifications_read(
    scope: TenantScope,
    ApiJson(req): ApiJson<MarkRead>,
) -> ApiResult<ApiJson<Unread>> {
    if req.ids.as_ref().is_some_and(|ids| ids.len() > 500) {
        return Err(ApiError::validation(
            "ids may hold at most 500 notifications",
        ));
    }
    let me = scope.caller.user.id.0;
    let unread = scope
        .db
        .open()
        .await?
        .write(move |tx| {
            mentions::mark_read(tx, me, req.ids.as_deref(), now())?;
            Ok(mentions::unread_count(tx, me)?)
        })
        .await?;
    Ok(ApiJson(Unread { unread }))
}
