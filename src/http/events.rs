//! `/api/events`: the tenant's event log, for a client catching up after a disconnect.

use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiQuery, ApiResult};
use super::paging::page_limit;
use crate::error::{ApiError, ErrorBody};
use crate::events::{Event, list_after};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The last `seq` the client has seen (0 for everything kept).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// Oldest first.
    pub items: Vec<Event>,
    /// Pass as `after` for the next page; null when the client is up to date.
    pub next_cursor: Option<String>,
    /// True when events after `after` were already pruned: reload conversations instead.
    pub truncated: bool,
}

/// The tenant's event log after `after`: what a reconnecting client missed (the team's
/// events and the caller's own, such as their mentions).
#[utoipa::path(get, path = "/api/events", tag = "events",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(EventQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "after or limit out of range", body = ErrorBody),
    ))]
async fn list_events(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<ApiJson<EventPage>> {
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::validation("after must be 0 or a seq"));
    }
    let limit = page_limit(query.limit, 500, 1000)?;
    let cutoff = state.events.retention().cutoff(Utc::now());
    let viewer = scope.caller.user.id;
    let (items, truncated) = scope
        .db
        .run(move |conn| Ok(list_after(conn, viewer, after, limit + 1, cutoff)?))
        .await?;
    let mut items = items;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(ApiJson(EventPage {
        items,
        next_cursor,
        truncated,
    }))
}
