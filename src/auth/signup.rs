//! Sign-up: a new tenant, its owner, and the tenant's database file, all or nothing.

use chrono::Utc;

use super::password::{self, PasswordHashing};
use super::token::Tokens;
use super::users::{self, Role, User};
use crate::db::Db;
use crate::error::ApiError;
use crate::ids::{TenantId, UserId};
use crate::tenancy::{DbName, Tenant, TenantPools, registry};

/// What a sign-up asks for, as typed (validated here; errors name the field).
#[derive(Debug, Clone)]
pub struct SignUp {
    pub tenant_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// A signed-up tenant with its owner and the owner's first token.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub token: String,
    pub user: User,
    pub tenant: Tenant,
}

/// Registers the tenant and its owner in the master registry, then creates and migrates the
/// tenant's file (sign-up is a tenant's first use). Should the file fail, the registration
/// is taken back, so nothing is left half-made. 409 `email_taken` for a known email.
pub async fn sign_up(
    master: &Db,
    tenants: &TenantPools,
    passwords: &PasswordHashing,
    tokens: &Tokens,
    req: SignUp,
) -> Result<SignedUp, ApiError> {
    // Every field is checked before the (costly) hash, in the order the form has them.
    let owner = Owner::from_request(&req)?;
    password::validate_new("password", &req.password)?;
    let hash = passwords.hash(req.password).await?;
    register(master, tenants, tokens, owner, hash).await
}

/// [`sign_up`] with the password's hash already computed (`req.password` is not read): for
/// tools that create many tenants with one password, such as the benchmark.
pub async fn sign_up_hashed(
    master: &Db,
    tenants: &TenantPools,
    tokens: &Tokens,
    req: SignUp,
    hash: &str,
) -> Result<SignedUp, ApiError> {
    let owner = Owner::from_request(&req)?;
    register(master, tenants, tokens, owner, hash.to_owned()).await
}

/// A sign-up's names and email, normalised (errors name the field).
struct Owner {
    tenant_name: String,
    name: String,
    email: String,
}

impl Owner {
    fn from_request(req: &SignUp) -> Result<Self, ApiError> {
        Ok(Self {
            tenant_name: users::normalize_name("tenantName", &req.tenant_name)?,
            name: users::normalize_name("name", &req.name)?,
            email: users::normalize_email("email", &req.email)?,
        })
    }
}

async fn register(
    master: &Db,
    tenants: &TenantPools,
    tokens: &Tokens,
    owner: Owner,
    hash: String,
) -> Result<SignedUp, ApiError> {
    let Owner {
        tenant_name,
        name,
        email,
    } = owner;
    let now = Utc::now();
    let tenant = Tenant {
        id: TenantId::new(),
        name: tenant_name,
        created_at: now,
    };
    let user = User {
        id: UserId::new(),
        email,
        name,
        role: Role::Owner,
        tenant_id: tenant.id,
        created_at: now,
    };
    let db_name = DbName::generate(&tenant.name);
    let (t, u) = (tenant.clone(), user.clone());
    master
        .write(move |tx| {
            registry::insert(tx, &t, &db_name)?;
            users::insert(tx, &u, &hash)?;
            Ok(())
        })
        .await?;

    if let Err(err) = tenants.get(tenant.id).await {
        let id = tenant.id;
        master
            .run(move |conn| Ok(registry::delete(conn, id)?))
            .await?;
        return Err(err);
    }

    let token = tokens
        .issue(user.id, tenant.id, 0)
        .map_err(|e| ApiError::internal("issue token", e))?;
    tracing::info!(tenant = %tenant.id, user = %user.id, "tenant signed up");
    Ok(SignedUp {
        token,
        user,
        tenant,
    })
}
