//! `GET /api/search`: full-text search over the tenant's messages and notes
//! (`chat::search`; docs/WORKFLOW.md).

use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiQuery, ApiResult};
use super::paging::{self, Page};
use crate::chat::search::{self, SearchHit};
use crate::error::ErrorBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_messages))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// An FTS5 query: words (all must match, as substrings, in any script), `"quoted
    /// phrases"`, `OR`, `NOT`, parentheses. Words need 3 characters, unless the query is one
    /// shorter word (searched without the index).
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub q: String,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page: continue with older messages.
    pub cursor: Option<String>,
}

/// Messages and notes of the tenant that match `q`, newest first, keyset-paginated; each
/// with its conversation and its text split at the matches.
#[utoipa::path(get, path = "/api/search", tag = "workflow",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(SearchQuery),
    responses(
        (status = 200, body = Page<SearchHit>),
        (status = 400, description = "a query FTS5 cannot parse (invalid_search), or a bad cursor", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "q empty, too long or with a word too short; limit out of range", body = ErrorBody),
    ))]
async fn search_messages(
    scope: TenantScope,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<ApiJson<Page<SearchHit>>> {
    let limit = paging::page_limit(query.limit, 20, 100)?;
    crate::text::search("q", &query.q)?;
    if query.q.chars().count() > 200 {
        return Err(crate::error::ApiError::validation(
            "q must be at most 200 characters",
        ));
    }
    let parsed = search::parse_query("q", &query.q)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| paging::decode_message_cursor("cursor", c))
        .transpose()?
        .map(|c| c.0);
    let (items, next) = scope
        .db
        .run(move |conn| search::search(conn, "q", &parsed, before, limit))
        .await?;
    Ok(ApiJson(Page {
        items,
        next_cursor: next
            .map(|pos| paging::encode_message_cursor(&crate::chat::store::MessageCursor(pos))),
    }))
}
