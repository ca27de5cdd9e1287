//! API keys for machine clients (docs/WEBHOOKS.md), in the master registry: each belongs to
//! one tenant, carries scopes, and is stored as its SHA-256 only. A key is found by its
//! public prefix (its first [`PREFIX_LEN`] characters) and its hash compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::ids::{TenantId, UserId};

/// What every key starts with, so a leaked one is recognisable (and scanners can find it).
pub const KEY_PREFIX: &str = "aez_";
/// Characters of a key shown in lists and used to find it: `aez_` and 8 of its random ones.
pub const PREFIX_LEN: usize = 12;
/// Random bytes in a key (base64url: 43 characters).
const KEY_BYTES: usize = 32;
/// `last_used_at` is written at most this often per key (Unix ms).
const LAST_USED_EVERY_MS: i64 = 60_000;
/// Keys a tenant may have at once.
pub const MAX_KEYS_PER_TENANT: i64 = 100;

/// What a key may do. Each operation of the OpenAPI document names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "conversations:read")]
    ConversationsRead,
    #[serde(rename = "messages:send")]
    MessagesSend,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    #[serde(rename = "team:read")]
    TeamRead,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::ConversationsRead,
        Scope::MessagesSend,
        Scope::WebhooksManage,
        Scope::TeamRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConversationsRead => "conversations:read",
            Scope::MessagesSend => "messages:send",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::TeamRead => "team:read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// A key as the API lists it (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, e.g. `aez_Xy3k9Q0p`: enough to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: UserId,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The caller a valid key stands for.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
}

/// A new key: the whole key (shown once) and what is stored of it.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    hash: [u8; 32],
}

impl NewKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        Self {
            prefix: key[..PREFIX_LEN].to_owned(),
            hash: hash(&key),
            key,
        }
    }
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn scopes_of(text: &str) -> Vec<Scope> {
    text.split(' ').filter_map(Scope::parse).collect()
}

const COLUMNS: &str = "id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at";

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let id: String = row.get(0)?;
    let scopes: String = row.get(3)?;
    Ok(ApiKey {
        id: parse_uuid(0, &id)?,
        name: row.get(1)?,
        prefix: row.get(2)?,
        scopes: scopes_of(&scopes),
        created_by: row.get(4)?,
        created_at: from_millis(row.get(5)?),
        expires_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        last_used_at: row.get::<_, Option<i64>>(7)?.map(from_millis),
    })
}

fn parse_uuid(idx: usize, s: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Stores a new key of `tenant` (inside the caller's transaction).
pub fn create(
    conn: &Connection,
    tenant: TenantId,
    creator: UserId,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    key: &NewKey,
) -> Result<ApiKey, ApiError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM api_key WHERE tenant_id = ?1")?
        .query_row([tenant], |row| row.get(0))?;
    if count >= MAX_KEYS_PER_TENANT {
        return Err(ApiError::conflict(
            "too_many_keys",
            format!("a workspace may have at most {MAX_KEYS_PER_TENANT} API keys; revoke one"),
        ));
    }
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let now = Utc::now();
    Ok(conn
        .prepare_cached(&format!(
            "INSERT INTO api_key (id, tenant_id, name, prefix, key_hash, scopes, created_by,
                 created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
        ))?
        .query_row(
            params![
                Uuid::now_v7().to_string(),
                tenant,
                name,
                key.prefix,
                key.hash.as_slice(),
                scopes.join(" "),
                creator,
                millis(now),
                expires_at.map(millis),
            ],
            key_row,
        )?)
}

/// The tenant's keys, oldest first.
pub fn list(conn: &Connection, tenant: TenantId) -> rusqlite::Result<Vec<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_key WHERE tenant_id = ?1 ORDER BY created_at, id"
    ))?
    .query_map([tenant], key_row)?
    .collect()
}

/// Revokes (deletes) a key of `tenant`; false if it has no such key.
pub fn revoke(conn: &Connection, tenant: TenantId, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM api_key WHERE id = ?1 AND tenant_id = ?2")?
        .execute(params![id.to_string(), tenant])?
        > 0)
}

/// The holder of `key` if it is a current key: found by prefix, its hash equal in constant
/// time, unexpired; and whether its use should be noted ([`touch`]: at most once a minute).
pub fn verify(conn: &Connection, key: &str) -> rusqlite::Result<Option<(KeyHolder, bool)>> {
    if key.len() <= PREFIX_LEN || !key.is_char_boundary(PREFIX_LEN) {
        return Ok(None);
    }
    let found = conn
        .prepare_cached(
            "SELECT id, tenant_id, name, key_hash, scopes, created_at, expires_at, last_used_at
             FROM api_key WHERE prefix = ?1",
        )?
        .query_row([&key[..PREFIX_LEN]], |row| {
            let id: String = row.get(0)?;
            let stored: Vec<u8> = row.get(3)?;
            let scopes: String = row.get(4)?;
            Ok((
                KeyHolder {
                    id: parse_uuid(0, &id)?,
                    tenant_id: row.get(1)?,
                    name: row.get(2)?,
                    scopes: scopes_of(&scopes),
                    created_at: from_millis(row.get(5)?),
                },
                stored,
                row.get::<_, Option<i64>>(6)?,
                row.get::<_, Option<i64>>(7)?,
            ))
        })
        .optional()?;
    let Some((holder, stored, expires_at, last_used)) = found else {
        return Ok(None);
    };
    let now = millis(Utc::now());
    let matches: bool = hash(key).as_slice().ct_eq(stored.as_slice()).into();
    if !matches || expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let stale = last_used.is_none_or(|at| at < now - LAST_USED_EVERY_MS);
    Ok(Some((holder, stale)))
}

/// Notes that key `id` was used now.
pub fn touch(conn: &Connection, id: Uuid) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE api_key SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id.to_string(), millis(Utc::now())])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_its_prefix_and_43_random_characters_and_only_its_hash_is_kept() {
        let key = NewKey::generate();
        assert!(key.key.starts_with("aez_"));
        assert_eq!(key.key.len(), 4 + 43);
        assert_eq!(key.prefix, key.key[..12]);
        assert_eq!(key.hash, hash(&key.key));
        assert_ne!(NewKey::generate().key, key.key);
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(
                serde_json::to_value(scope).unwrap(),
                serde_json::json!(scope.as_str())
            );
        }
        assert_eq!(Scope::parse("conversations:write"), None);
    }
}
