//! The user half of the master registry. Every query that reads or changes a user by id also
//! names the tenant, so a user is only ever visible to their own tenant.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::ids::{TenantId, UserId};

/// What a team member may do: owners and admins manage the team; agents answer chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    pub fn manages_team(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            _ => Err(rusqlite::types::FromSqlError::InvalidType),
        }
    }
}

/// A user as the API shows it (never with the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tenant_id: TenantId,
    pub created_at: DateTime<Utc>,
}

/// A user plus what authentication needs.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    pub token_version: i64,
}

const COLUMNS: &str = "id, email, name, role, tenant_id, created_at, password_hash, token_version";

fn from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        user: User {
            id: row.get(0)?,
            email: row.get(1)?,
            name: row.get(2)?,
            role: row.get(3)?,
            tenant_id: row.get(4)?,
            created_at: row.get(5)?,
        },
        password_hash: row.get(6)?,
        token_version: row.get(7)?,
    })
}

/// Inserts a user; a taken email answers 409.
pub fn insert(conn: &Connection, user: &User, password_hash: &str) -> Result<(), ApiError> {
    conn.prepare_cached(
        "INSERT INTO user (id, email, name, role, tenant_id, created_at, password_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        user.id,
        user.email,
        user.name,
        user.role.as_str(),
        user.tenant_id,
        user.created_at,
        password_hash
    ])
    .map_err(|e| {
        if crate::error::is_unique_violation(&e) {
            ApiError::conflict("email_taken", "a user with this email already exists")
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub fn find_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<UserRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM user WHERE email = ?1"))?
        .query_row([email], from_row)
        .optional()
}

/// The user `id`, only if it belongs to `tenant`.
pub fn find(
    conn: &Connection,
    tenant: TenantId,
    id: UserId,
) -> rusqlite::Result<Option<UserRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user WHERE id = ?1 AND tenant_id = ?2"
    ))?
    .query_row(params![id, tenant], from_row)
    .optional()
}

/// Every user of `tenant`, with password hash and token version (what a backup or an
/// archive carries).
pub fn records(conn: &Connection, tenant: TenantId) -> rusqlite::Result<Vec<UserRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user WHERE tenant_id = ?1 ORDER BY created_at, id"
    ))?
    .query_map([tenant], from_row)?
    .collect()
}

pub fn list(conn: &Connection, tenant: TenantId) -> rusqlite::Result<Vec<User>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user WHERE tenant_id = ?1 ORDER BY created_at, id"
    ))?
    .query_map([tenant], |row| from_row(row).map(|r| r.user))?
    .collect()
}

/// Sets a new password hash and bumps the token version, ending every earlier token.
/// Returns the new version.
pub fn set_password(
    conn: &Connection,
    tenant: TenantId,
    id: UserId,
    hash: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE user SET password_hash = ?3, token_version = token_version + 1
         WHERE id = ?1 AND tenant_id = ?2 RETURNING token_version",
    )?
    .query_row(params![id, tenant, hash], |row| row.get(0))
}

pub fn update(conn: &Connection, user: &User) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE user SET name = ?3, role = ?4 WHERE id = ?1 AND tenant_id = ?2")?
        .execute(params![
            user.id,
            user.tenant_id,
            user.name,
            user.role.as_str()
        ])?;
    Ok(())
}

pub fn delete(conn: &Connection, tenant: TenantId, id: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM user WHERE id = ?1 AND tenant_id = ?2")?
        .execute(params![id, tenant])?;
    Ok(())
}

pub fn count_owners(conn: &Connection, tenant: TenantId) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM user WHERE tenant_id = ?1 AND role = 'owner'")?
        .query_row([tenant], |row| row.get(0))
}

/// Trims and lower-cases an email and checks its shape, naming `field` in the error.
pub fn normalize_email(field: &str, email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::validation(format!(
            "{field} is not a valid email address"
        )))
    }
}

/// A display name by the product's one text rule ([`crate::text::line`]): trimmed, 1..=100
/// characters, no control characters, not invisible; the error names `field`.
pub fn normalize_name(field: &str, name: &str) -> Result<String, ApiError> {
    crate::text::line(field, name, 100)
}
