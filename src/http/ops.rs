//! Operations endpoints: health, the caller's tenant file, metrics, the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiResult};
use crate::error::ErrorBody;
use crate::ids::TenantId;
use crate::metrics::Scrape;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(tenant_info))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the master registry answers.
    pub status: &'static str,
}

/// Liveness and readiness: answers once the master registry answers a query.
#[utoipa::path(get, path = "/api/healthz", tag = "ops",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> ApiResult<ApiJson<Health>> {
    state
        .master
        .run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
        .await?;
    Ok(ApiJson(Health { status: "ok" }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    pub id: TenantId,
    /// Schema version of the tenant's database file.
    pub schema_version: i64,
}

/// The caller's tenant database: its id and schema version (opens the file if it is not open).
#[utoipa::path(get, path = "/api/tenant", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TenantInfo),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 503, description = "the tenant's database file is missing or unusable", body = ErrorBody),
    ))]
async fn tenant_info(scope: TenantScope) -> ApiResult<ApiJson<TenantInfo>> {
    let id = scope.caller.tenant_id();
    let schema_version = scope
        .db
        .run(|conn| Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?))
        .await?;
    Ok(ApiJson(TenantInfo { id, schema_version }))
}

/// The media type of `/api/metrics`: the OpenMetrics text format, which Prometheus reads.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// OpenMetrics text exposition of the server's counters (README lists them).
#[utoipa::path(get, path = "/api/metrics", tag = "ops",
    responses((status = 200, content_type = OPENMETRICS, body = String)))]
async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let backups = state.master.run(|conn| Ok(last_backups(conn)?)).await?;
    let outbox = state.outbox.counts();
    let scrape = Scrape {
        open_tenants: state.tenants.open_count(),
        sessions: state
            .sessions
            .count_by_state()
            .into_iter()
            .map(|(state, n)| (state.as_str(), n))
            .collect(),
        outbox_pending: outbox.pending,
        messages_sent: outbox.sent,
        messages_failed: outbox.failed,
        backups,
    };
    let body = state.metrics.render(&scrape);
    Ok(([(header::CONTENT_TYPE, OPENMETRICS)], body))
}

/// Each backed-up tenant's id and the Unix time of its last backup (`tenant.backed_up_at`,
/// written by `aezen backup`). A stamp that is not RFC 3339 is left out, and logged.
fn last_backups(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut statement =
        conn.prepare_cached("SELECT id, backed_up_at FROM tenant WHERE backed_up_at IS NOT NULL")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut backups = Vec::new();
    for row in rows {
        let (tenant, stamp) = row?;
        match chrono::DateTime::parse_from_rfc3339(&stamp) {
            Ok(at) => backups.push((tenant, at.timestamp())),
            Err(err) => {
                tracing::warn!(tenant, stamp, error = %err, "backup stamp is not RFC 3339");
            }
        }
    }
    Ok(backups)
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    axum::Json(super::openapi::openapi())
}
