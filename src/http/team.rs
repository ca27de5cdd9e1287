//! `/api/team`: a tenant's users. Everyone in the tenant may list the team; owners and admins
//! manage it. Rules beyond the contract, chosen for a shared inbox:
//! - only an owner may create an owner, promote to or demote from owner, rename an owner, or
//!   remove an owner;
//! - the last owner can be neither demoted nor removed (409 `last_owner`), checked inside the
//!   same `BEGIN IMMEDIATE` transaction as the change, so two concurrent demotions cannot
//!   both pass;
//! - removing a user ends their tokens at once (their row is gone).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::CurrentUser;
use super::json::{ApiJson, ApiPath, ApiResult};
use super::paging::Page;
use crate::auth::password;
use crate::auth::users::{self, Role, User};
use crate::error::{ApiError, ErrorBody};
use crate::ids::UserId;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_team, create_member))
        .routes(routes!(update_member, delete_member))
}

/// The caller's team.
#[utoipa::path(get, path = "/api/team", tag = "team",
    security(("bearer" = []), ("apiKey" = ["team:read"])),
    responses(
        (status = 200, body = Page<User>),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
    ))]
async fn list_team(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<ApiJson<Page<User>>> {
    let tenant = caller.tenant_id();
    let items = state
        .master
        .run(move |conn| Ok(users::list(conn, tenant)?))
        .await?;
    Ok(ApiJson(Page::whole(items)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMember {
    #[schema(schema_with = super::openapi::fields::name)]
    pub name: String,
    #[schema(schema_with = super::openapi::fields::email)]
    pub email: String,
    /// The member can change it after signing in.
    #[schema(schema_with = super::openapi::fields::password)]
    pub password: String,
    pub role: Role,
}

/// Adds a user to the caller's tenant (owner/admin only).
#[utoipa::path(post, path = "/api/team", tag = "team",
    security(("bearer" = [])),
    request_body = CreateMember,
    responses(
        (status = 201, body = User),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "caller may not manage the team (or grant owner)", body = ErrorBody),
        (status = 409, description = "email already taken", body = ErrorBody),
        (status = 422, description = "a field is missing or invalid", body = ErrorBody),
    ))]
async fn create_member(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(req): ApiJson<CreateMember>,
) -> ApiResult<(StatusCode, ApiJson<User>)> {
    caller.require_manager()?;
    require_owner_for(&caller, req.role)?;
    let user = User {
        id: UserId::new(),
        email: users::normalize_email("email", &req.email)?,
        name: users::normalize_name("name", &req.name)?,
        role: req.role,
        tenant_id: caller.tenant_id(),
        created_at: Utc::now(),
    };
    password::validate_new("password", &req.password)?;
    let hash = state.passwords.hash(req.password).await?;
    let stored = user.clone();
    state
        .master
        .run(move |conn| users::insert(conn, &stored, &hash))
        .await?;
    // Where the new member's read state starts. The member exists either way; without it
    // they would find older messages unread, so a failure is logged, not answered.
    if let Err(err) = state.workflow.member_added(user.tenant_id, user.id).await {
        tracing::error!(tenant = %user.tenant_id, user = %user.id, error = %err,
            "new member's read state not recorded");
    }
    Ok((StatusCode::CREATED, ApiJson(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    #[schema(schema_with = super::openapi::fields::optional_name)]
    pub name: Option<String>,
    pub role: Option<Role>,
}

/// Renames a member or changes their role (owner/admin only).
#[utoipa::path(patch, path = "/api/team/{id}", tag = "team",
    security(("bearer" = [])),
    params(("id" = UserId, Path, description = "the member's id")),
    request_body = UpdateMember,
    responses(
        (status = 200, body = User),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "caller may not manage the team (or this owner)", body = ErrorBody),
        (status = 404, description = "no such member in the caller's tenant", body = ErrorBody),
        (status = 409, description = "would leave the tenant without an owner", body = ErrorBody),
        (status = 422, description = "a field is invalid", body = ErrorBody),
    ))]
async fn update_member(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(req): ApiJson<UpdateMember>,
) -> ApiResult<ApiJson<User>> {
    caller.require_manager()?;
    let name = req
        .name
        .as_deref()
        .map(|n| users::normalize_name("name", n))
        .transpose()?;
    let tenant = caller.tenant_id();
    let user = state
        .master
        .write(move |tx| {
            let mut user = users::find(tx, tenant, id)?
                .ok_or_else(|| ApiError::not_found("team member"))?
                .user;
            // Every write to an owner (name or role) is the owners' own business.
            require_owner_for(&caller, user.role)?;
            if let Some(role) = req.role.filter(|r| *r != user.role) {
                require_owner_for(&caller, role)?;
                if user.role == Role::Owner && users::count_owners(tx, tenant)? <= 1 {
                    return Err(last_owner());
                }
                user.role = role;
            }
            if let Some(name) = name {
                user.name = name;
            }
            users::update(tx, &user)?;
            Ok(user)
        })
        .await?;
    state.auth.forget(id);
    Ok(ApiJson(user))
}

/// Removes a member from the team (owner/admin only); their tokens stop working at once and
/// their conversations become unassigned.
#[utoipa::path(delete, path = "/api/team/{id}", tag = "team",
    security(("bearer" = [])),
    params(("id" = UserId, Path, description = "the member's id")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "caller may not manage the team (or this owner)", body = ErrorBody),
        (status = 404, description = "no such member in the caller's tenant", body = ErrorBody),
        (status = 409, description = "would leave the tenant without an owner", body = ErrorBody),
    ))]
async fn delete_member(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    let tenant = caller.tenant_id();
    state
        .master
        .write(move |tx| {
            let user = users::find(tx, tenant, id)?
                .ok_or_else(|| ApiError::not_found("team member"))?
                .user;
            require_owner_for(&caller, user.role)?;
            if user.role == Role::Owner && users::count_owners(tx, tenant)? <= 1 {
                return Err(last_owner());
            }
            users::delete(tx, tenant, id)?;
            Ok(())
        })
        .await?;
    state.on_user_revoked(id).await;
    // Their conversations become unassigned. The member is gone either way (a later removal
    // cannot retry this), so a failure is logged with what it left behind.
    if let Err(err) = state.workflow.member_removed(tenant, id).await {
        tracing::error!(tenant = %tenant, user = %id, error = %err,
            "removed member's conversations not unassigned");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Only an owner may act on the owner role (grant it, take it, or touch an owner).
fn require_owner_for(caller: &CurrentUser, role: Role) -> Result<(), ApiError> {
    if role == Role::Owner && caller.user.role != Role::Owner {
        return Err(ApiError::forbidden("only an owner may manage owners"));
    }
    Ok(())
}

fn last_owner() -> ApiError {
    ApiError::conflict("last_owner", "a tenant must keep at least one owner")
}
