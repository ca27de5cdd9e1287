//! The authenticated extractors: [`CurrentUser`] from the bearer token, and [`TenantScope`],
//! which adds the caller's own tenant database.
//!
//! A handler that takes [`TenantScope`] gets the pool of the caller's own tenant and no
//! other: there is no way to name another tenant's database from a request.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

pub use crate::auth::CurrentUser;
use crate::auth::keys::KEY_PREFIX;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenancy::TenantDb;

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                ApiError::unauthorized("missing bearer token in Authorization header")
            })?;
        let token = token.trim();
        if !token.starts_with(KEY_PREFIX) {
            return state.auth.authenticate(token).await;
        }
        // An API key: valid, then allowed this operation by its scopes (the table is the
        // OpenAPI document's `apiKey` requirements, docs/WEBHOOKS.md).
        let caller = state.auth.authenticate_key(token).await?;
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let needed = path.and_then(|path| super::openapi::key_scope(&parts.method, path));
        let Some(needed) = needed else {
            return Err(ApiError::forbidden("API keys cannot use this operation"));
        };
        if !caller
            .key_scopes
            .as_ref()
            .is_some_and(|s| s.contains(&needed))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing_scope",
                format!("this API key lacks the scope `{}`", needed.as_str()),
            ));
        }
        Ok(caller)
    }
}

/// The caller plus the database of the caller's tenant, opened when first used.
#[derive(Clone)]
pub struct TenantScope {
    pub caller: CurrentUser,
    pub db: TenantDb,
}

impl TenantScope {
    /// The scope of an already authenticated caller (the Socket.IO gateway's).
    pub fn of(state: &AppState, caller: CurrentUser) -> Self {
        let db = TenantDb::new(&state.tenants, caller.tenant_id());
        Self { caller, db }
    }
}

impl FromRequestParts<AppState> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = CurrentUser::from_request_parts(parts, state).await?;
        Ok(Self::of(state, caller))
    }
}
