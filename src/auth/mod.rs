//! Authentication and authorisation: passwords, tokens, login rate limits, and the
//! extractors that turn a bearer token into the current user and that user's tenant database.
//!
//! A handler that takes [`TenantScope`] gets the pool of the caller's own tenant and no
//! other: there is no way to name another tenant's database from a request.

pub mod cache;
pub mod password;
pub mod rate_limit;
pub mod routes;
pub mod token;
pub mod users;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::tenancy::TenantDb;
pub use users::{Role, User};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub token_version: i64,
}

impl CurrentUser {
    pub fn tenant_id(&self) -> TenantId {
        self.user.tenant_id
    }

    /// Refuses (403) unless the caller may manage the team.
    pub fn require_manager(&self) -> Result<(), ApiError> {
        if self.user.role.manages_team() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an owner or admin may do this"))
        }
    }
}

impl AppState {
    /// The user a token stands for, if the token is valid *now*: signed by us, unexpired,
    /// its user still exists in the tenant it names, and its version is current.
    pub async fn authenticate(&self, token: &str) -> Result<CurrentUser, ApiError> {
        let rejected = || ApiError::unauthorized("invalid or expired token");
        let claims = self.tokens.verify(token).ok_or_else(rejected)?;
        let record = match self.users.get(claims.sub) {
            Some(record) => record,
            None => {
                let epoch = self.users.epoch();
                let (tenant, id) = (claims.tid, claims.sub);
                let record = self
                    .master
                    .run(move |conn| Ok(users::find(conn, tenant, id)?))
                    .await?
                    .map(Arc::new)
                    .ok_or_else(rejected)?;
                self.users.remember(Arc::clone(&record), epoch);
                record
            }
        };
        if record.user.tenant_id != claims.tid || record.token_version != claims.ver {
            return Err(rejected());
        }
        Ok(CurrentUser {
            user: record.user.clone(),
            token_version: record.token_version,
        })
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("missing bearer token in Authorization header")
            })?;
        state.authenticate(token.trim()).await
    }
}

/// The caller plus the database of the caller's tenant, opened when first used.
#[derive(Clone)]
pub struct TenantScope {
    pub caller: CurrentUser,
    pub db: TenantDb,
}

impl FromRequestParts<AppState> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = CurrentUser::from_request_parts(parts, state).await?;
        let db = TenantDb::new(&state.tenants, caller.tenant_id());
        Ok(Self { caller, db })
    }
}
