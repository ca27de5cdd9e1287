//! The SQL of media, one function per query, each taking the tenant's connection.
//!
//! Bytes are stored once per distinct content (`media_blob`, by SHA-256) and read back in
//! slices with SQLite's incremental blob I/O ([`read_slice`]), so serving a video never
//! loads it whole.

use std::io::Read;

use rusqlite::{Connection, MAIN_DB, OptionalExtension, Row, params};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::link::{self, Variant};
use super::{Media, MediaKind, MediaStatus};
use crate::chat::{Message, now, parse_uuid, to_millis};
use crate::ids::TenantId;

/// A media item about to be stored with its message.
#[derive(Debug, Clone)]
pub struct NewMedia<'a> {
    pub kind: MediaKind,
    pub mime_type: &'a str,
    pub file_name: Option<&'a str>,
    /// Declared size, when the bytes are not given.
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub voice: bool,
    pub status: MediaStatus,
    pub reason: Option<&'a str>,
    pub thumbnail: Option<&'a [u8]>,
    /// The backend's JSON for fetching it.
    pub source: Option<String>,
}

/// Stores `bytes` once: the id of the blob holding them (found by their SHA-256, or new).
pub fn put_blob(conn: &Connection, bytes: &[u8]) -> rusqlite::Result<i64> {
    let sha: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM media_blob WHERE sha256 = ?1")?
        .query_row([&sha[..]], |row| row.get(0))
        .optional()?
    {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO media_blob (sha256, size, bytes) VALUES (?1, ?2, ?3)")?
        .execute(params![&sha[..], bytes.len() as i64, bytes])?;
    Ok(conn.last_insert_rowid())
}

/// Stores a media item of the message `message_id`, with its bytes if it has them.
pub fn insert(
    conn: &Connection,
    id: Uuid,
    message_id: Uuid,
    new: &NewMedia<'_>,
    bytes: Option<&[u8]>,
) -> rusqlite::Result<()> {
    let blob = bytes.map(|b| put_blob(conn, b)).transpose()?;
    let size = bytes.map(|b| b.len() as u64).or(new.size);
    conn.prepare_cached(
        "INSERT INTO media (id, message_id, kind, mime_type, file_name, size, width, height,
                            duration_ms, voice, status, reason, blob_id, thumbnail, source, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        id.to_string(),
        message_id.to_string(),
        new.kind.as_str(),
        new.mime_type,
        new.file_name,
        size.map(|s| s as i64),
        new.width,
        new.height,
        new.duration_ms.map(|d| d as i64),
        new.voice,
        new.status.as_str(),
        new.reason,
        blob,
        new.thumbnail,
        new.source,
        to_millis(now()),
    ])?;
    Ok(())
}

/// Whose file this is, and the key its media links are signed with.
#[derive(Debug, Clone)]
pub struct Signer {
    pub tenant: TenantId,
    pub key: Vec<u8>,
}

/// The file's [`Signer`].
pub fn signer(conn: &Connection) -> rusqlite::Result<Signer> {
    let (tenant, key): (String, String) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM tenant_meta WHERE key = 'tenant_id'),
                    (SELECT value FROM tenant_meta WHERE key = 'media_link_key')",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(Signer {
        tenant: parse_uuid(0, &tenant).map(TenantId)?,
        key: hex::decode(key).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

const MEDIA_COLUMNS: &str = "id, kind, mime_type, file_name, size, width, height, duration_ms, \
    voice, status, reason, thumbnail IS NOT NULL";

fn enum_col<T>(row: &Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text = row.get_ref(idx)?.as_str()?;
    parse(text).ok_or(rusqlite::Error::InvalidColumnType(
        idx,
        text.to_owned(),
        rusqlite::types::Type::Text,
    ))
}

fn media_row(row: &Row<'_>, signer: &Signer) -> rusqlite::Result<Media> {
    let Signer { tenant, key } = signer;
    let tenant = *tenant;
    let id = parse_uuid(0, row.get_ref(0)?.as_str()?)?;
    let expires = link::expiry(now());
    let has_thumbnail: bool = row.get(11)?;
    Ok(Media {
        id,
        kind: enum_col(row, 1, MediaKind::parse)?,
        mime_type: row.get(2)?,
        file_name: row.get(3)?,
        size: row.get::<_, Option<i64>>(4)?.map(i64::unsigned_abs),
        width: row.get(5)?,
        height: row.get(6)?,
        duration_ms: row.get::<_, Option<i64>>(7)?.map(i64::unsigned_abs),
        voice: row.get(8)?,
        status: enum_col(row, 9, MediaStatus::parse)?,
        reason: row.get(10)?,
        url: link::url(key, tenant, id, Variant::Original, expires),
        thumbnail_url: has_thumbnail
            .then(|| link::url(key, tenant, id, Variant::Thumbnail, expires)),
        links_expire_at: expires,
    })
}

/// Fills in the media of a message that has some (with fresh signed links).
pub fn attach(conn: &Connection, message: &mut Message) -> rusqlite::Result<()> {
    attach_all(conn, [message])
}

/// [`attach`] for each message; the file's [`Signer`] is read once, and only if one of them
/// has media.
pub fn attach_all<'m>(
    conn: &Connection,
    messages: impl IntoIterator<Item = &'m mut Message>,
) -> rusqlite::Result<()> {
    let mut owner = None;
    for message in messages {
        if MediaKind::parse(&message.kind).is_none() {
            continue;
        }
        let owner = match &owner {
            Some(owner) => owner,
            None => owner.insert(signer(conn)?),
        };
        message.media = conn
            .prepare_cached(&format!(
                "SELECT {MEDIA_COLUMNS} FROM media WHERE message_id = ?1"
            ))?
            .query_row([message.id.to_string()], |row| media_row(row, owner))
            .optional()?;
    }
    Ok(())
}

/// One item with fresh links, as the API shows it.
pub fn find(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Media>> {
    let signer = signer(conn)?;
    conn.prepare_cached(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = ?1"))?
        .query_row([id.to_string()], |row| media_row(row, &signer))
        .optional()
}

/// What serving an item needs.
#[derive(Debug, Clone)]
pub struct Servable {
    pub kind: MediaKind,
    pub mime_type: String,
    pub file_name: Option<String>,
    pub status: MediaStatus,
    /// Why a `failed` or `unavailable` item has no bytes.
    pub reason: Option<String>,
    /// The blob holding the bytes, once `ready`.
    pub blob: Option<i64>,
    pub size: u64,
    pub sha256: Option<Vec<u8>>,
}

/// An item's bytes as served: where they are, how many, and their hash (the ETag).
pub fn servable(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Servable>> {
    conn.prepare_cached(
        "SELECT m.kind, m.mime_type, m.file_name, m.status, b.id, coalesce(b.size, 0), b.sha256,
                m.reason
         FROM media m LEFT JOIN media_blob b ON b.id = m.blob_id WHERE m.id = ?1",
    )?
    .query_row([id.to_string()], |row| {
        Ok(Servable {
            kind: enum_col(row, 0, MediaKind::parse)?,
            mime_type: row.get(1)?,
            file_name: row.get(2)?,
            status: enum_col(row, 3, MediaStatus::parse)?,
            blob: row.get(4)?,
            size: row.get::<_, i64>(5)?.unsigned_abs(),
            sha256: row.get(6)?,
            reason: row.get(7)?,
        })
    })
    .optional()
}

/// The JPEG preview of an item, if it has one.
pub fn thumbnail(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT thumbnail FROM media WHERE id = ?1")?
        .query_row([id.to_string()], |row| row.get::<_, Option<Vec<u8>>>(0))
        .optional()?
        .flatten())
}

/// `len` bytes of a blob from `offset`, read with incremental blob I/O (only those bytes
/// are loaded).
pub fn read_slice(
    conn: &Connection,
    blob: i64,
    offset: u64,
    len: usize,
) -> rusqlite::Result<Vec<u8>> {
    let handle = conn.blob_open(MAIN_DB, c"media_blob", c"bytes", blob, true)?;
    let mut buf = vec![0; len];
    let read = handle.read_at(&mut buf, usize::try_from(offset).unwrap_or(usize::MAX))?;
    buf.truncate(read);
    Ok(buf)
}

/// The whole bytes of a message's item (to upload it to WhatsApp).
pub fn bytes_of_message(conn: &Connection, message_id: Uuid) -> rusqlite::Result<Option<Vec<u8>>> {
    let blob: Option<i64> = conn
        .prepare_cached("SELECT blob_id FROM media WHERE message_id = ?1")?
        .query_row([message_id.to_string()], |row| row.get(0))
        .optional()?
        .flatten();
    let Some(blob) = blob else { return Ok(None) };
    let mut handle = conn.blob_open(MAIN_DB, c"media_blob", c"bytes", blob, true)?;
    let mut bytes = Vec::with_capacity(handle.len());
    handle
        .read_to_end(&mut bytes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Some(bytes))
}

/// An incoming item to fetch from WhatsApp.
#[derive(Debug, Clone)]
pub struct ToFetch {
    pub id: Uuid,
    pub message_id: Uuid,
    pub source: serde_json::Value,
    pub attempts: u32,
}

/// Items due for fetching at `now_ms` (pending, or failed with their retry time passed),
/// oldest first.
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> rusqlite::Result<Vec<ToFetch>> {
    conn.prepare_cached(
        "SELECT id, message_id, source, attempts FROM media
         WHERE status IN ('pending', 'failed') AND coalesce(retry_at, 0) <= ?1
         ORDER BY coalesce(retry_at, 0), rowid LIMIT ?2",
    )?
    .query_map(params![now_ms, limit], |row| {
        let source: Option<String> = row.get(2)?;
        Ok(ToFetch {
            id: parse_uuid(0, row.get_ref(0)?.as_str()?)?,
            message_id: parse_uuid(1, row.get_ref(1)?.as_str()?)?,
            source: source
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(serde_json::Value::Null),
            attempts: row.get(3)?,
        })
    })?
    .collect()
}

/// The earliest time a failed item is due again, if any.
pub fn next_retry(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(retry_at) FROM media WHERE status IN ('pending', 'failed')")?
        .query_row([], |row| row.get(0))
}

/// Records fetched bytes: the item is `ready`.
pub fn fetched(conn: &Connection, id: Uuid, bytes: &[u8]) -> rusqlite::Result<bool> {
    let blob = put_blob(conn, bytes)?;
    let changed = conn
        .prepare_cached(
            "UPDATE media SET status = 'ready', reason = NULL, blob_id = ?2, size = ?3,
                              retry_at = NULL, attempts = attempts + 1
             WHERE id = ?1 AND status IN ('pending', 'failed')",
        )?
        .execute(params![id.to_string(), blob, bytes.len() as i64])?;
    Ok(changed == 1)
}

/// Records a failed fetch: `failed` with the reason and a retry time, or `unavailable` for
/// good (`retry_at` none).
pub fn fetch_failed(
    conn: &Connection,
    id: Uuid,
    reason: &str,
    retry_at: Option<i64>,
    source: Option<&serde_json::Value>,
) -> rusqlite::Result<bool> {
    let status = if retry_at.is_some() {
        MediaStatus::Failed
    } else {
        MediaStatus::Unavailable
    };
    let changed = conn
        .prepare_cached(
            "UPDATE media SET status = ?2, reason = ?3, retry_at = ?4, attempts = attempts + 1,
                              source = coalesce(?5, source)
             WHERE id = ?1 AND status IN ('pending', 'failed')",
        )?
        .execute(params![
            id.to_string(),
            status.as_str(),
            reason,
            retry_at,
            source.map(serde_json::Value::to_string),
        ])?;
    Ok(changed == 1)
}
