//! The tenant's shared library: labels (attached to conversations) and quick replies
//! (canned responses), one function per query on the tenant's connection.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{from_millis, now, to_millis, uuid_col};
use crate::error::ApiError;

/// A label of the tenant's, to sort conversations by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: Uuid,
    #[schema(example = "VIP")]
    pub name: String,
    /// `#rrggbb`.
    #[schema(example = "#e11d48")]
    pub color: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

fn label_row(row: &Row<'_>) -> rusqlite::Result<Label> {
    Ok(Label {
        id: uuid_col(row, 0)?,
        name: row.get(1)?,
        color: row.get(2)?,
        created_at: from_millis(row.get(3)?),
    })
}

/// Longest label name, in characters.
pub const MAX_LABEL_CHARS: usize = 40;

/// A label name by the product's name rule: trimmed, visible, at most [`MAX_LABEL_CHARS`].
pub fn label_name(field: &str, name: &str) -> Result<String, ApiError> {
    crate::text::line(field, name, MAX_LABEL_CHARS)
}

/// A colour as `#rrggbb` (lowercased); `#RGB` shorthand and names are refused.
pub fn label_color(field: &str, color: &str) -> Result<String, ApiError> {
    let color = color.trim().to_ascii_lowercase();
    let hex = color.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(color)
    } else {
        Err(ApiError::validation(format!(
            "{field} must be a colour as #rrggbb, e.g. #e11d48"
        )))
    }
}

fn duplicate_label(name: &str) -> ApiError {
    ApiError::conflict(
        "duplicate_label",
        format!("a label named {name:?} already exists"),
    )
}

pub fn labels(conn: &Connection) -> rusqlite::Result<Vec<Label>> {
    conn.prepare_cached(
        "SELECT id, name, color, created_at FROM label ORDER BY name COLLATE NOCASE, id",
    )?
    .query_map([], label_row)?
    .collect()
}

pub fn find_label(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Label>> {
    conn.prepare_cached("SELECT id, name, color, created_at FROM label WHERE id = ?1")?
        .query_row([id.to_string()], label_row)
        .optional()
}

fn name_taken(conn: &Connection, name: &str, other_than: Option<Uuid>) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM label WHERE name = ?1 COLLATE NOCASE AND id IS NOT ?2")?
        .exists(params![name, other_than.map(|id| id.to_string())])
}

pub fn create_label(conn: &Connection, name: String, color: String) -> Result<Label, ApiError> {
    if name_taken(conn, &name, None)? {
        return Err(duplicate_label(&name));
    }
    let label = Label {
        id: Uuid::now_v7(),
        name,
        color,
        created_at: now(),
    };
    conn.prepare_cached("INSERT INTO label (id, name, color, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            label.id.to_string(),
            label.name,
            label.color,
            to_millis(label.created_at)
        ])?;
    Ok(label)
}

pub fn update_label(
    conn: &Connection,
    id: Uuid,
    name: Option<String>,
    color: Option<String>,
) -> Result<Label, ApiError> {
    let mut label = find_label(conn, id)?.ok_or_else(|| ApiError::not_found("label"))?;
    if let Some(name) = name {
        if name_taken(conn, &name, Some(id))? {
            return Err(duplicate_label(&name));
        }
        label.name = name;
    }
    if let Some(color) = color {
        label.color = color;
    }
    conn.prepare_cached("UPDATE label SET name = ?2, color = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), label.name, label.color])?;
    Ok(label)
}

/// Deletes a label; returns the conversations it was on (its links go by cascade).
pub fn delete_label(conn: &Connection, id: Uuid) -> Result<Vec<Uuid>, ApiError> {
    find_label(conn, id)?.ok_or_else(|| ApiError::not_found("label"))?;
    let on = conn
        .prepare_cached("SELECT conversation_id FROM conversation_label WHERE label_id = ?1")?
        .query_map([id.to_string()], |row| uuid_col(row, 0))?
        .collect::<rusqlite::Result<Vec<Uuid>>>()?;
    conn.prepare_cached("DELETE FROM label WHERE id = ?1")?
        .execute([id.to_string()])?;
    Ok(on)
}

/// Sets a conversation's labels to exactly `labels`; every id must be one of the tenant's
/// (422 naming the first unknown one, before anything is changed). Returns whether the set
/// changed.
pub fn set_conversation_labels(
    conn: &Connection,
    conversation: Uuid,
    labels: &[Uuid],
) -> Result<bool, ApiError> {
    for (i, label) in labels.iter().enumerate() {
        if find_label(conn, *label)?.is_none() {
            return Err(ApiError::validation(format!(
                "labels[{i}] is not a label of this workspace: {label}"
            )));
        }
    }
    let mut wanted: Vec<Uuid> = labels.to_vec();
    wanted.sort();
    wanted.dedup();
    let current = conn
        .prepare_cached(
            "SELECT label_id FROM conversation_label WHERE conversation_id = ?1 ORDER BY label_id",
        )?
        .query_map([conversation.to_string()], |row| uuid_col(row, 0))?
        .collect::<rusqlite::Result<Vec<Uuid>>>()?;
    // Ids are stored as hyphenated text, whose order is the Uuid's order.
    if current == wanted {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM conversation_label WHERE conversation_id = ?1")?
        .execute([conversation.to_string()])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO conversation_label (conversation_id, label_id) VALUES (?1, ?2)",
    )?;
    for label in wanted {
        insert.execute(params![conversation.to_string(), label.to_string()])?;
    }
    Ok(true)
}

// ---- quick replies -------------------------------------------------------------------------

/// A quick reply: typing `/shortCode` in the composer offers `content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CannedResponse {
    pub id: Uuid,
    #[schema(example = "thanks")]
    pub short_code: String,
    /// May hold `{{contact.name}}` and `{{agent.name}}`, filled in by the composer.
    #[schema(example = "Thank you {{contact.name}}! — {{agent.name}}")]
    pub content: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

fn canned_row(row: &Row<'_>) -> rusqlite::Result<CannedResponse> {
    Ok(CannedResponse {
        id: uuid_col(row, 0)?,
        short_code: row.get(1)?,
        content: row.get(2)?,
        created_at: from_millis(row.get(3)?),
    })
}

/// Longest short code.
pub const MAX_SHORT_CODE: usize = 32;

/// A short code: 1–32 of `a-z 0-9 _ -` (capitals are lowercased).
pub fn short_code(field: &str, code: &str) -> Result<String, ApiError> {
    let code = code.to_ascii_lowercase();
    let ok = (1..=MAX_SHORT_CODE).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(code)
    } else {
        Err(ApiError::validation(format!(
            "{field} must be 1 to {MAX_SHORT_CODE} of a-z, 0-9, _ and -"
        )))
    }
}

fn duplicate_short_code(code: &str) -> ApiError {
    ApiError::conflict(
        "duplicate_short_code",
        format!("a quick reply with short code {code:?} already exists"),
    )
}

pub fn canned_responses(conn: &Connection) -> rusqlite::Result<Vec<CannedResponse>> {
    conn.prepare_cached(
        "SELECT id, short_code, content, created_at FROM canned_response ORDER BY short_code",
    )?
    .query_map([], canned_row)?
    .collect()
}

fn find_canned(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<CannedResponse>> {
    conn.prepare_cached(
        "SELECT id, short_code, content, created_at FROM canned_response WHERE id = ?1",
    )?
    .query_row([id.to_string()], canned_row)
    .optional()
}

fn code_taken(conn: &Connection, code: &str, other_than: Option<Uuid>) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM canned_response WHERE short_code = ?1 AND id IS NOT ?2")?
        .exists(params![code, other_than.map(|id| id.to_string())])
}

pub fn create_canned(
    conn: &Connection,
    short_code: String,
    content: String,
) -> Result<CannedResponse, ApiError> {
    if code_taken(conn, &short_code, None)? {
        return Err(duplicate_short_code(&short_code));
    }
    let canned = CannedResponse {
        id: Uuid::now_v7(),
        short_code,
        content,
        created_at: now(),
    };
    conn.prepare_cached(
        "INSERT INTO canned_response (id, short_code, content, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        canned.id.to_string(),
        canned.short_code,
        canned.content,
        to_millis(canned.created_at)
    ])?;
    Ok(canned)
}

pub fn update_canned(
    conn: &Connection,
    id: Uuid,
    short_code: Option<String>,
    content: Option<String>,
) -> Result<CannedResponse, ApiError> {
    let mut canned = find_canned(conn, id)?.ok_or_else(|| ApiError::not_found("quick reply"))?;
    if let Some(code) = short_code {
        if code_taken(conn, &code, Some(id))? {
            return Err(duplicate_short_code(&code));
        }
        canned.short_code = code;
    }
    if let Some(content) = content {
        canned.content = content;
    }
    conn.prepare_cached("UPDATE canned_response SET short_code = ?2, content = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), canned.short_code, canned.content])?;
    Ok(canned)
}

pub fn delete_canned(conn: &Connection, id: Uuid) -> Result<(), ApiError> {
    let deleted = conn
        .prepare_cached("DELETE FROM canned_response WHERE id = ?1")?
        .execute([id.to_string()])?;
    if deleted == 0 {
        return Err(ApiError::not_found("quick reply"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_short_codes_follow_their_rules() {
        assert_eq!(label_color("color", " #E11D48 ").unwrap(), "#e11d48");
        for bad in ["red", "#fff", "e11d48", "#e11d4g", "#e11d4800"] {
            assert!(label_color("color", bad).is_err(), "{bad}");
        }
        assert_eq!(short_code("shortCode", "Thanks_2").unwrap(), "thanks_2");
        for bad in ["", "with space", " padded", "é", &"x".repeat(33), "/slash"] {
            let err = short_code("shortCode", bad).unwrap_err();
            assert!(err.message().contains("shortCode"), "{bad}");
        }
    }
}
