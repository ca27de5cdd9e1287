//! SQL for conversations and messages, one function per query, each on the tenant's own
//! connection. Writers run inside the caller's `BEGIN IMMEDIATE` transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Conversation, Message, Sender, Status, from_millis, to_millis};
use crate::error::ApiError;

const CONVERSATION_COLUMNS: &str = "id, contact_name, contact_number, platform, last_message, \
     last_message_at, unread_count, created_at, activity_at";

fn uuid_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text = row.get_ref(idx)?.as_str()?;
    Uuid::parse_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A conversation row plus its list position.
fn conversation_row(row: &Row<'_>) -> rusqlite::Result<(Conversation, i64)> {
    Ok((
        Conversation {
            id: uuid_col(row, 0)?,
            contact_name: row.get(1)?,
            contact_number: row.get(2)?,
            platform: row.get(3)?,
            last_message: row.get(4)?,
            last_message_at: row.get::<_, Option<i64>>(5)?.map(from_millis),
            unread_count: row.get(6)?,
            created_at: from_millis(row.get(7)?),
        },
        row.get(8)?,
    ))
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at, rowid";

/// A message row plus its rowid (its history position).
fn message_row(row: &Row<'_>) -> rusqlite::Result<(Message, i64)> {
    let author: Option<String> = row.get(8)?;
    Ok((
        Message {
            id: uuid_col(row, 0)?,
            conversation_id: uuid_col(row, 1)?,
            content: row.get(2)?,
            sender: row.get(3)?,
            kind: row.get(4)?,
            status: row.get(5)?,
            is_read: row.get(6)?,
            whatsapp_id: row.get(7)?,
            author_id: author.and_then(|a| Uuid::parse_str(&a).ok()),
            created_at: from_millis(row.get(9)?),
        },
        row.get(10)?,
    ))
}

// ---- cursors -------------------------------------------------------------------------------

/// Position in the conversation list: `(activity_at, id)` of the last item served.
pub struct ConversationCursor {
    pub activity_at: i64,
    pub id: Uuid,
}

impl ConversationCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("c:{}:{}", self.activity_at, self.id))
    }

    pub fn decode(field: &str, s: &str) -> Result<Self, ApiError> {
        decode_cursor(field, s, |text| {
            let mut parts = text.strip_prefix("c:")?.splitn(2, ':');
            Some(Self {
                activity_at: parts.next()?.parse().ok()?,
                id: Uuid::parse_str(parts.next()?).ok()?,
            })
        })
    }
}

/// Decodes an opaque cursor with `parse`; anything else is a 400 naming `field`.
fn decode_cursor<T>(
    field: &str,
    s: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| parse(&text))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("{field} is not a cursor from a previous page"),
            )
        })
}

/// Position in a message history: the rowid of the oldest message served.
pub struct MessageCursor(pub i64);

impl MessageCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("m:{}", self.0))
    }

    pub fn decode(field: &str, s: &str) -> Result<Self, ApiError> {
        decode_cursor(field, s, |text| {
            text.strip_prefix("m:")?.parse().ok().map(Self)
        })
    }
}

// ---- conversations -------------------------------------------------------------------------

/// Filters of the conversation list.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Matches name (case-insensitive, ASCII) or number (its digits).
    pub q: Option<String>,
    pub unread_only: bool,
}

/// One page of conversations, newest activity first, and the cursor of the next page.
pub fn list_conversations(
    conn: &Connection,
    filter: &ListFilter,
    after: Option<&ConversationCursor>,
    limit: u32,
) -> rusqlite::Result<(Vec<Conversation>, Option<ConversationCursor>)> {
    let (name_like, digits_like) =
        match filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                let digits: String = q.chars().filter(char::is_ascii_digit).collect();
                (
                    Some(format!("%{}%", escape_like(q))),
                    (!digits.is_empty()).then(|| format!("%{digits}%")),
                )
            }
            None => (None, None),
        };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversation
         WHERE (?1 IS NULL OR (activity_at, id) < (?1, ?2))
           AND (?3 IS NULL OR contact_name LIKE ?3 ESCAPE '\\' OR contact_number LIKE ?4)
           AND (?5 = 0 OR unread_count > 0)
         ORDER BY activity_at DESC, id DESC
         LIMIT ?6"
    ))?;
    let rows = stmt
        .query_map(
            params![
                after.map(|c| c.activity_at),
                after.map(|c| c.id.to_string()),
                name_like,
                digits_like,
                filter.unread_only,
                limit + 1
            ],
            conversation_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(page(rows, limit, |(c, at)| ConversationCursor {
        activity_at: *at,
        id: c.id,
    }))
}

/// Splits `limit + 1` rows into a page and the cursor after its last item.
fn page<T, C>(
    mut rows: Vec<(T, i64)>,
    limit: u32,
    cursor: impl Fn(&(T, i64)) -> C,
) -> (Vec<T>, Option<C>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows.into_iter().map(|(item, _)| item).collect(), next)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub fn find_conversation(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE id = ?1"
    ))?
    .query_row([id.to_string()], conversation_row)
    .optional()
    .map(|row| row.map(|(c, _)| c))
}

pub fn find_conversation_by_number(
    conn: &Connection,
    number: &str,
) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversation WHERE contact_number = ?1"
    ))?
    .query_row([number], conversation_row)
    .optional()
    .map(|row| row.map(|(c, _)| c))
}

/// The conversation for `number`, created if there is none; `true` when created. A name is
/// filled in when the conversation has none yet (a name set by the team is kept).
pub fn upsert_conversation(
    conn: &Connection,
    number: &str,
    name: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<(Conversation, bool)> {
    if let Some(existing) = find_conversation_by_number(conn, number)? {
        if existing.contact_name.is_none() && name.is_some() {
            conn.prepare_cached("UPDATE conversation SET contact_name = ?2 WHERE id = ?1")?
                .execute(params![existing.id.to_string(), name])?;
            return Ok((
                Conversation {
                    contact_name: name.map(str::to_owned),
                    ..existing
                },
                false,
            ));
        }
        return Ok((existing, false));
    }
    let id = Uuid::now_v7();
    conn.prepare_cached(
        "INSERT INTO conversation (id, contact_number, contact_name, activity_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![id.to_string(), number, name, now_ms])?;
    let created = find_conversation(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok((created, true))
}

/// Records `message` as the conversation's latest: preview, time, activity, and one more
/// unread when it is an unread incoming message. Returns the updated conversation.
pub fn touch_conversation(conn: &Connection, message: &Message) -> rusqlite::Result<Conversation> {
    let at = to_millis(message.created_at);
    let unread = i64::from(message.sender == Sender::User && !message.is_read);
    conn.prepare_cached(&format!(
        "UPDATE conversation
         SET last_message = ?2, last_message_at = ?3, activity_at = max(activity_at, ?3),
             unread_count = unread_count + ?4
         WHERE id = ?1
         RETURNING {CONVERSATION_COLUMNS}"
    ))?
    .query_row(
        params![
            message.conversation_id.to_string(),
            message.content,
            at,
            unread
        ],
        conversation_row,
    )
    .map(|(c, _)| c)
}

/// Marks every unread incoming message of a conversation read and zeroes its unread count.
/// Returns the WhatsApp ids of the messages it marked.
pub fn mark_read(conn: &Connection, conversation: Uuid) -> rusqlite::Result<Vec<String>> {
    let id = conversation.to_string();
    let ids = conn
        .prepare_cached(
            "UPDATE message SET is_read = 1
             WHERE conversation_id = ?1 AND sender = 'user' AND is_read = 0
             RETURNING wa_id",
        )?
        .query_map([&id], |row| row.get::<_, Option<String>>(0))?
        .filter_map(Result::transpose)
        .collect::<rusqlite::Result<Vec<_>>>()?;
    conn.prepare_cached("UPDATE conversation SET unread_count = 0 WHERE id = ?1")?
        .execute([&id])?;
    Ok(ids)
}

// ---- messages ------------------------------------------------------------------------------

pub fn insert_message(conn: &Connection, m: &Message) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        m.id.to_string(),
        m.conversation_id.to_string(),
        m.content,
        m.sender,
        m.kind,
        m.status,
        m.is_read,
        m.whatsapp_id,
        m.author_id.map(|a| a.to_string()),
        to_millis(m.created_at),
    ])?;
    Ok(())
}

pub fn wa_id_exists(conn: &Connection, wa_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM message WHERE wa_id = ?1")?
        .exists([wa_id])
}

pub fn find_message(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM message WHERE id = ?1"
    ))?
    .query_row([id.to_string()], message_row)
    .optional()
    .map(|row| row.map(|(m, _)| m))
}

/// One page of a conversation's history, newest first, and the cursor of the next (older) page.
pub fn list_messages(
    conn: &Connection,
    conversation: Uuid,
    before: Option<&MessageCursor>,
    limit: u32,
) -> rusqlite::Result<(Vec<Message>, Option<MessageCursor>)> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM message
             WHERE conversation_id = ?1 AND (?2 IS NULL OR rowid < ?2)
             ORDER BY rowid DESC LIMIT ?3"
        ))?
        .query_map(
            params![conversation.to_string(), before.map(|c| c.0), limit + 1],
            message_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(page(rows, limit, |(_, rowid)| MessageCursor(*rowid)))
}

/// A message waiting in the outbox, with the number it goes to.
pub struct Pending {
    pub message: Message,
    pub to: String,
}

/// The oldest pending messages, in the order they were accepted.
pub fn pending(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<Pending>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS},
                (SELECT contact_number FROM conversation c WHERE c.id = message.conversation_id)
         FROM message WHERE status = 'pending' ORDER BY rowid LIMIT ?1"
    ))?
    .query_map([limit], |row| {
        Ok(Pending {
            message: message_row(row)?.0,
            to: row.get(11)?,
        })
    })?
    .collect()
}

/// Moves a pending message to `sent` (with its WhatsApp id) or `failed` (with the reason).
/// Returns the updated message, or `None` if it was no longer pending.
pub fn settle(
    conn: &Connection,
    id: Uuid,
    outcome: Result<&str, &str>,
) -> rusqlite::Result<Option<Message>> {
    let (status, wa_id, error) = match outcome {
        Ok(wa_id) => (Status::Sent, Some(wa_id), None),
        Err(reason) => (Status::Failed, None, Some(reason)),
    };
    conn.prepare_cached(&format!(
        "UPDATE message SET status = ?2, wa_id = ?3, error = ?4
         WHERE id = ?1 AND status = 'pending'
         RETURNING {MESSAGE_COLUMNS}"
    ))?
    .query_row(params![id.to_string(), status, wa_id, error], message_row)
    .optional()
    .map(|row| row.map(|(m, _)| m))
}

/// Applies a receipt: moves an outgoing message forward to `delivered` or `read` (never back).
/// Returns the updated message, or `None` if nothing changed.
pub fn apply_receipt(
    conn: &Connection,
    wa_id: &str,
    status: Status,
) -> rusqlite::Result<Option<Message>> {
    let from: &[&str] = match status {
        Status::Delivered => &["sent"],
        Status::Read => &["sent", "delivered"],
        _ => return Ok(None),
    };
    conn.prepare_cached(&format!(
        "UPDATE message SET status = ?2
         WHERE wa_id = ?1 AND sender = 'agent' AND status IN (?3, ?4)
         RETURNING {MESSAGE_COLUMNS}"
    ))?
    .query_row(
        params![
            wa_id,
            status,
            from[0],
            from.get(1).copied().unwrap_or(from[0])
        ],
        message_row,
    )
    .optional()
    .map(|row| row.map(|(m, _)| m))
}
