//! Authentication and authorisation: passwords, tokens, login rate limits, sign-up, and
//! [`Authenticator`], which turns a bearer token into the current user. The HTTP extractors
//! built on it (`CurrentUser`, `TenantScope`) are in `http::extract`.

pub mod cache;
pub mod keys;
pub mod password;
pub mod rate_limit;
pub mod signup;
pub mod token;
pub mod users;

use std::sync::Arc;

use crate::db::Db;
use crate::error::ApiError;
use crate::ids::{TenantId, UserId};
pub use users::User;

use cache::UserCache;
use token::Tokens;

/// The authenticated caller: a member signed in, or an API key (docs/WEBHOOKS.md).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// For a key: the key as a user of its tenant (its id, its name, the admin role; what it
    /// may reach is bounded by its scopes, checked per operation before any handler runs).
    pub user: User,
    pub token_version: i64,
    /// The scopes of the API key this request came with; `None` for a member's token.
    pub key_scopes: Option<Vec<keys::Scope>>,
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

/// Checks tokens against the registry: the token keys, the master registry and the cache of
/// the users tokens name.
pub struct Authenticator {
    pub tokens: Tokens,
    /// Every change to a user calls [`Authenticator::forget`] after its commit.
    pub users: UserCache,
    master: Db,
}

impl Authenticator {
    pub fn new(tokens: Tokens, users: UserCache, master: Db) -> Self {
        Self {
            tokens,
            users,
            master,
        }
    }

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
            key_scopes: None,
        })
    }

    /// The caller an API key stands for, if it is a current key (looked up on every request,
    /// so a revoked key is refused at once). Its use is noted in the background.
    pub async fn authenticate_key(&self, key: &str) -> Result<CurrentUser, ApiError> {
        let key = key.to_owned();
        let (holder, stale) = self
            .master
            .run(move |conn| Ok(keys::verify(conn, &key)?))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid, expired or revoked API key"))?;
        if stale {
            let (master, id) = (self.master.clone(), holder.id);
            tokio::spawn(async move {
                if let Err(err) = master.write(move |tx| Ok(keys::touch(tx, id)?)).await {
                    tracing::warn!(key = %id, error = %err, "API key's last use not recorded");
                }
            });
        }
        Ok(CurrentUser {
            user: User {
                id: UserId(holder.id),
                email: String::new(),
                name: holder.name,
                role: users::Role::Admin,
                tenant_id: holder.tenant_id,
                created_at: holder.created_at,
            },
            token_version: 0,
            key_scopes: Some(holder.scopes),
        })
    }

    /// Drops a changed user from the cache, so the next request reads the registry.
    pub fn forget(&self, user: UserId) {
        self.users.forget(user);
    }
}
