//! `/api/api-keys`: a tenant's API keys for machine clients (docs/WEBHOOKS.md). Owners and
//! admins manage them, signed in: a key cannot reach keys.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::CurrentUser;
use super::json::{ApiJson, ApiPath, ApiResult};
use super::paging::Page;
use crate::auth::keys::{self, ApiKey, NewKey, Scope};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The longest key name.
const MAX_NAME_CHARS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateKey {
    /// What the key is for, e.g. "n8n".
    #[schema(schema_with = super::openapi::fields::name)]
    pub name: String,
    /// At least one scope.
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Vec<String>,
    /// When the key stops working (RFC 3339, in the future); none: it works until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The key, shown this once: only its hash is kept.
    pub key: String,
    pub api_key: ApiKey,
}

/// The tenant's API keys (owner/admin), oldest first; never the keys themselves.
#[utoipa::path(get, path = "/api/api-keys", tag = "api-keys",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<ApiKey>),
        (status = 403, description = "caller is an agent, or an API key", body = ErrorBody),
    ))]
async fn list_keys(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<ApiJson<Page<ApiKey>>> {
    caller.require_manager()?;
    let tenant = caller.tenant_id();
    let list = state
        .master
        .run(move |conn| Ok(keys::list(conn, tenant)?))
        .await?;
    Ok(ApiJson(Page::whole(list)))
}

/// Creates an API key (owner/admin); the answer holds the key, shown only this once.
#[utoipa::path(post, path = "/api/api-keys", tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateKey,
    responses(
        (status = 201, body = CreatedKey),
        (status = 403, description = "caller is an agent, or an API key", body = ErrorBody),
        (status = 409, description = "`too_many_keys`: the workspace has 100", body = ErrorBody),
        (status = 422, description = "empty name, unknown scope, or an expiry in the past", body = ErrorBody),
    ))]
async fn create_key(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, ApiJson<CreatedKey>)> {
    caller.require_manager()?;
    let name = crate::text::line("name", &req.name, MAX_NAME_CHARS)?;
    let scopes = parse_scopes(&req.scopes)?;
    if req.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::validation("expiresAt must be in the future"));
    }
    let (tenant, creator) = (caller.tenant_id(), caller.user.id);
    let key = NewKey::generate();
    let shown = key.key.clone();
    let api_key = state
        .master
        .write(move |tx| keys::create(tx, tenant, creator, &name, &scopes, req.expires_at, &key))
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedKey {
            key: shown,
            api_key,
        }),
    ))
}

/// Revokes an API key (owner/admin): refused from its next request on.
#[utoipa::path(delete, path = "/api/api-keys/{id}", tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 403, description = "caller is an agent, or an API key", body = ErrorBody),
        (status = 404, description = "no such key in the caller's tenant", body = ErrorBody),
    ))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let tenant = caller.tenant_id();
    let revoked = state
        .master
        .write(move |tx| Ok(keys::revoke(tx, tenant, id)?))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key"))
    }
}

/// Known scopes, each once; an unknown one is a 422 naming it.
fn parse_scopes(scopes: &[String]) -> Result<Vec<Scope>, ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::validation("scopes must name at least one scope"));
    }
    let mut parsed = Vec::new();
    for (i, name) in scopes.iter().enumerate() {
        let scope = Scope::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation(format!(
                "scopes[{i}]: unknown scope {name:?}; known: {}",
                known.join(", ")
            ))
        })?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    Ok(parsed)
}
