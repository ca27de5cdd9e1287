//! `/api/webhooks`: a tenant's webhook endpoints, their delivery log, replays and tests
//! (docs/WEBHOOKS.md). Owners, admins and API keys with `webhooks:manage`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiPath, ApiQuery, ApiResult};
use super::paging::{self, Page};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::webhooks::store::{self, Patch};
use crate::webhooks::{
    DEFAULT_OVERLAP_SECS, Delivery, MAX_DESCRIPTION_CHARS, MAX_ENDPOINTS, MAX_OVERLAP_SECS,
    MAX_URL_CHARS, Webhook, WebhookEvent, new_secret, parse_events,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay))
        .routes(routes!(send_test))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Absolute `https://` URL (`http://` only if the server allows it).
    #[schema(max_length = 2048)]
    pub url: String,
    /// `["*"]` for every event, or event names.
    #[schema(value_type = Vec<WebhookEvent>, min_items = 1)]
    pub events: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<WebhookEvent>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`), shown this once.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateSecret {
    /// Seconds the old secret keeps signing beside the new one (default 86,400; 0–604,800).
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 604800)]
    #[serde(default, deserialize_with = "super::json::integer")]
    pub overlap_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replay {
    /// The first event to send again (its seq); within the log.
    #[serde(deserialize_with = "required_integer")]
    pub from_seq: i64,
    /// The last (default: the newest event).
    #[serde(default, deserialize_with = "super::json::integer")]
    pub to_seq: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<i64>,
}

fn required_integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    super::json::integer(deserializer)?.ok_or_else(|| D::Error::custom("must be an integer"))
}

/// Who may manage webhooks: owners, admins, and keys with `webhooks:manage` (checked
/// before the handler runs).
fn require(scope: &TenantScope) -> Result<(), ApiError> {
    scope.caller.require_manager()
}

fn url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::validation(format!(
            "url must be at most {MAX_URL_CHARS} characters"
        )));
    }
    let url = state
        .webhooks
        .guard()
        .check_url(raw)
        .map_err(ApiError::validation)?;
    Ok(url.to_string())
}

/// A host name must resolve to at least one allowed address when it resolves at all (an
/// address literal was checked by [`url`]); one that does not resolve now may later.
async fn check_resolves(state: &AppState, url: &str) -> Result<(), ApiError> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Ok(());
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Ok(());
    };
    if crate::webhooks::guard::literal(&parsed).is_some() {
        return Ok(());
    }
    match state.webhooks.guard().resolve(host, port).await {
        Err(refused) if !refused.contains("does not resolve") => Err(ApiError::validation(refused)),
        _ => Ok(()),
    }
}

fn description(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err(ApiError::validation(
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(text) => {
            if text.chars().any(char::is_control) {
                return Err(ApiError::validation(
                    "description must not contain control characters",
                ));
            }
            Ok(Some(text.to_owned()))
        }
    }
}

/// The tenant's webhook endpoints.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    responses(
        (status = 200, body = Page<Webhook>),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
    ))]
async fn list_webhooks(scope: TenantScope) -> ApiResult<ApiJson<Page<Webhook>>> {
    require(&scope)?;
    let list = scope.db.run(|conn| Ok(store::list(conn)?)).await?;
    Ok(ApiJson(Page::whole(list)))
}

/// Creates an endpoint; it receives the events after this moment. The answer holds its
/// signing secret, shown only this once.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    request_body = CreateWebhook,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 409, description = "`too_many_webhooks`: the workspace has 20", body = ErrorBody),
        (status = 422, description = "a URL that is not absolute https (or allowed http), points at a refused address, or an unknown event", body = ErrorBody),
    ))]
async fn create_webhook(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, ApiJson<WebhookWithSecret>)> {
    require(&scope)?;
    let url = url(&state, &req.url)?;
    let events = parse_events("events", &req.events)?;
    let description = description(req.description.as_deref())?.unwrap_or_default();
    check_resolves(&state, &url).await?;
    let secret = new_secret();
    let enabled = req.enabled.unwrap_or(true);
    let shown = secret.clone();
    let webhook = scope
        .db
        .open()
        .await?
        .write(move |tx| {
            if store::count(tx)? >= MAX_ENDPOINTS {
                return Err(ApiError::conflict(
                    "too_many_webhooks",
                    format!("a workspace may have at most {MAX_ENDPOINTS} webhook endpoints"),
                ));
            }
            Ok(store::create(
                tx,
                &url,
                &events,
                &description,
                enabled,
                &secret,
            )?)
        })
        .await?;
    let tenant = scope.caller.tenant_id();
    state.webhooks.mark(tenant, true).await?;
    state.webhooks.ensure(tenant).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(WebhookWithSecret {
            webhook,
            secret: shown,
        }),
    ))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    responses(
        (status = 200, body = Webhook),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
    ))]
async fn get_webhook(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Webhook>> {
    require(&scope)?;
    let webhook = scope.db.run(move |conn| Ok(store::get(conn, id)?)).await?;
    webhook
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Changes an endpoint; enabling a disabled one resumes from its cursor.
#[utoipa::path(patch, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, body = Webhook),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
        (status = 422, description = "a refused URL or an unknown event", body = ErrorBody),
    ))]
async fn update_webhook(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> ApiResult<ApiJson<Webhook>> {
    require(&scope)?;
    let url = req.url.as_deref().map(|u| url(&state, u)).transpose()?;
    if let Some(url) = &url {
        check_resolves(&state, url).await?;
    }
    let patch = Patch {
        url,
        events: req
            .events
            .as_deref()
            .map(|e| parse_events("events", e))
            .transpose()?,
        enabled: req.enabled,
        description: description(req.description.as_deref())?,
    };
    let webhook = scope
        .db
        .open()
        .await?
        .write(move |tx| Ok(store::update(tx, id, &patch)?))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    state.webhooks.ensure(scope.caller.tenant_id()).await?;
    Ok(ApiJson(webhook))
}

/// Deletes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
    ))]
async fn delete_webhook(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    require(&scope)?;
    let (deleted, left) = scope
        .db
        .open()
        .await?
        .write(move |tx| Ok((store::delete(tx, id)?, store::count(tx)?)))
        .await?;
    if !deleted {
        return Err(ApiError::not_found("webhook"));
    }
    let tenant = scope.caller.tenant_id();
    if left == 0 {
        state.webhooks.mark(tenant, false).await?;
    }
    state.webhooks.ensure(tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once; the old one keeps signing for the overlap.
#[utoipa::path(post, path = "/api/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    request_body = RotateSecret,
    responses(
        (status = 200, body = WebhookWithSecret),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
        (status = 422, description = "overlapSeconds over 604,800", body = ErrorBody),
    ))]
async fn rotate_secret(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RotateSecret>,
) -> ApiResult<ApiJson<WebhookWithSecret>> {
    require(&scope)?;
    let overlap = match req.overlap_seconds {
        None => DEFAULT_OVERLAP_SECS,
        Some(secs) => u64::try_from(secs)
            .ok()
            .filter(|&secs| secs <= MAX_OVERLAP_SECS)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "overlapSeconds must be between 0 and {MAX_OVERLAP_SECS}"
                ))
            })?,
    };
    let secret = new_secret();
    let shown = secret.clone();
    let until = Utc::now().timestamp_millis() + i64::try_from(overlap * 1000).unwrap_or(0);
    let webhook = scope
        .db
        .open()
        .await?
        .write(move |tx| Ok(store::rotate(tx, id, &secret, until)?))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(ApiJson(WebhookWithSecret {
        webhook,
        secret: shown,
    }))
}

/// The endpoint's delivery log, newest first (the last 1,000 attempts).
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id"), DeliveryQuery),
    responses(
        (status = 200, body = Page<Delivery>),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
    ))]
async fn list_deliveries(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<ApiJson<Page<Delivery>>> {
    require(&scope)?;
    let limit = paging::page_limit(query.limit, 50, 100)?;
    let found = scope
        .db
        .run(move |conn| {
            if store::get(conn, id)?.is_none() {
                return Ok(None);
            }
            Ok(Some(store::deliveries(conn, id, query.cursor, limit)?))
        })
        .await?;
    let mut items = found.ok_or_else(|| ApiError::not_found("webhook"))?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(ApiJson(Page { items, next_cursor }))
}

/// Sends a range of the event log again, in order, before the endpoint's next new event
/// (with the same `webhook-id`s).
#[utoipa::path(post, path = "/api/webhooks/{id}/replay", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    request_body = Replay,
    responses(
        (status = 202, description = "scheduled", body = Replay),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
        (status = 422, description = "the range is outside the log", body = ErrorBody),
    ))]
async fn replay(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<Replay>,
) -> ApiResult<(StatusCode, ApiJson<Replay>)> {
    require(&scope)?;
    let (from, to) = scope
        .db
        .open()
        .await?
        .write(move |tx| store::replay(tx, id, req.from_seq, req.to_seq))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    state.webhooks.ensure(scope.caller.tenant_id()).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Replay {
            from_seq: from,
            to_seq: Some(to),
        }),
    ))
}

/// Sends one `webhook.test` event now, and answers how it went (it is logged, not in the
/// event log).
#[utoipa::path(post, path = "/api/webhooks/{id}/test", tag = "webhooks",
    security(("bearer" = []), ("apiKey" = ["webhooks:manage"])),
    params(("id" = Uuid, Path, description = "webhook id")),
    responses(
        (status = 200, body = Delivery),
        (status = 403, description = "caller is an agent, or a key without the scope", body = ErrorBody),
        (status = 404, description = "no such endpoint in the caller's tenant", body = ErrorBody),
    ))]
async fn send_test(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Delivery>> {
    require(&scope)?;
    let db = scope.db.open().await?;
    let delivery = state
        .webhooks
        .send_test(scope.caller.tenant_id(), db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(ApiJson(delivery))
}
