//! `/api/auth/*`: sign-up, login, the current user, password change.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::CurrentUser;
use super::json::{ApiJson, ApiResult};
use crate::auth::password;
use crate::auth::signup::{SignUp, SignedUp, sign_up};
use crate::auth::users::{self, User};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::tenancy::{Tenant, registry};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The workspace's name (a brand, or an agency's client).
    #[schema(schema_with = super::openapi::fields::name)]
    pub tenant_name: String,
    /// The owner's display name.
    #[schema(schema_with = super::openapi::fields::name)]
    pub name: String,
    #[schema(schema_with = super::openapi::fields::email)]
    pub email: String,
    #[schema(schema_with = super::openapi::fields::password)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub token: String,
    pub user: User,
    pub tenant: Tenant,
}

/// Signs up a new tenant and its owner, and creates the tenant's database file.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 409, description = "email already taken", body = ErrorBody),
        (status = 422, description = "a field is missing or invalid", body = ErrorBody),
        (status = 429, description = "too many attempts from this client", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, ApiJson<RegisterResponse>)> {
    state.limiter.check_ip(peer.ip())?;
    let req = SignUp {
        tenant_name: req.tenant_name,
        name: req.name,
        email: req.email,
        password: req.password,
    };
    let SignedUp {
        token,
        user,
        tenant,
    } = sign_up(
        &state.master,
        &state.tenants,
        &state.passwords,
        &state.auth.tokens,
        req,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(RegisterResponse {
            token,
            user,
            tenant,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(schema_with = super::openapi::fields::email)]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub user: User,
}

/// Exchanges email and password for a token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "wrong email or password", body = ErrorBody),
        (status = 422, description = "a field is missing or invalid", body = ErrorBody),
        (status = 429, description = "too many attempts (per client or per account); see Retry-After", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    state.limiter.check_ip(peer.ip())?;
    let email = users::normalize_email("email", &req.email)?;
    state.limiter.check_account(&email)?;
    let record = state
        .master
        .run(move |conn| Ok(users::find_by_email(conn, &email)?))
        .await?;
    let hash = record.as_ref().map(|r| r.password_hash.clone());
    if !state.passwords.verify(req.password, hash).await? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ));
    }
    let record = record.ok_or_else(|| ApiError::internal("login", "verified without a user"))?;
    let token = state
        .auth
        .tokens
        .issue(record.user.id, record.user.tenant_id, record.token_version)
        .map_err(|e| ApiError::internal("issue token", e))?;
    Ok(ApiJson(LoginResponse {
        token,
        user: record.user,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: User,
    pub tenant: Tenant,
}

/// The current user and their tenant.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
    ))]
async fn me(State(state): State<AppState>, caller: CurrentUser) -> ApiResult<ApiJson<MeResponse>> {
    let tenant_id = caller.tenant_id();
    let tenant = state
        .master
        .run(move |conn| Ok(registry::find(conn, tenant_id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?
        .tenant;
    Ok(ApiJson(MeResponse {
        user: caller.user,
        tenant,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[schema(schema_with = super::openapi::fields::password)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePasswordResponse {
    /// A fresh token; every token issued before the change stops working.
    pub token: String,
}

/// Changes the caller's password and revokes all their earlier tokens.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, body = ChangePasswordResponse),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "currentPassword is wrong", body = ErrorBody),
        (status = 422, description = "newPassword is too short or too long", body = ErrorBody),
        (status = 429, description = "too many attempts", body = ErrorBody),
    ))]
async fn change_password(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<ApiJson<ChangePasswordResponse>> {
    state.limiter.check_account(&caller.user.email)?;
    password::validate_new("newPassword", &req.new_password)?;
    let (tenant, id) = (caller.tenant_id(), caller.user.id);
    check_own_password(&state, &caller, req.current_password, "currentPassword").await?;
    let hash = state.passwords.hash(req.new_password).await?;
    let version = state
        .master
        .run(move |conn| Ok(users::set_password(conn, tenant, id, &hash)?))
        .await?;
    state.on_user_revoked(id).await;
    let token = state
        .auth
        .tokens
        .issue(id, tenant, version)
        .map_err(|e| ApiError::internal("issue token", e))?;
    Ok(ApiJson(ChangePasswordResponse { token }))
}

/// Checks a password the caller re-entered (`field` names it in the error): 403
/// `wrong_password` unless it is the caller's own.
pub(super) async fn check_own_password(
    state: &AppState,
    caller: &CurrentUser,
    password: String,
    field: &str,
) -> ApiResult<()> {
    let (tenant, id) = (caller.tenant_id(), caller.user.id);
    let me = state
        .master
        .run(move |conn| Ok(users::find(conn, tenant, id)?))
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    if state
        .passwords
        .verify(password, Some(me.password_hash))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            format!("{field} is wrong"),
        ))
    }
}
