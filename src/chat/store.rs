//! SQL for conversations and messages, one function per query, each on the tenant's own
//! connection. Writers run inside the caller's `BEGIN IMMEDIATE` transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Conversation, Message, Sender, Status, from_millis, to_millis};
use crate::error::ApiError;

pub const CONVERSATION_COLUMNS: &str = "id, contact_name, contact_number, platform, last_message, \
     last_message_at, unread_count, created_at, activity_at";

/// Messages that may arrive between a conversation list's first page and a later one before
/// its cursor is refused as too old (each later page reads them to find what moved).
pub const MAX_MESSAGES_SINCE_SNAPSHOT: i64 = 50_000;

/// The rowid of the newest message: a conversation list's snapshot. Read from tenant_meta,
/// whose one page every open has read already (reading the message table instead cost each
/// cached connection two more pages: ~10 MiB of RSS with 10,000 tenants); the table itself
/// only if the row is missing.
const NEWEST_MESSAGE: &str = "coalesce(
    (SELECT CAST(value AS INTEGER) FROM tenant_meta WHERE key = 'newest_message'),
    (SELECT coalesce(max(rowid), 0) FROM message))";

/// The list's `q` and `unread` filters, on the current values of a row.
const LIST_FILTERS: &str =
    "AND (?3 IS NULL OR contact_name LIKE ?3 ESCAPE '\\' OR contact_number LIKE ?4)
     AND (?5 = 0 OR unread_count > 0)";

/// A text column, borrowed from the row.
fn text<'a>(row: &'a Row<'_>, idx: usize) -> rusqlite::Result<&'a str> {
    Ok(row.get_ref(idx)?.as_str()?)
}

/// A text column that may be NULL, borrowed from the row.
fn text_opt<'a>(row: &'a Row<'_>, idx: usize) -> rusqlite::Result<Option<&'a str>> {
    Ok(row.get_ref(idx)?.as_str_or_null()?)
}

fn uuid_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(text(row, idx)?).map_err(|e| {
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

const MESSAGE_COLUMNS: &str = "id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at, rowid, error";
/// How many columns [`MESSAGE_COLUMNS`] names: the index of a column selected after them.
const MESSAGE_COLUMN_COUNT: usize = 12;

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
            failure_reason: row.get(11)?,
        },
        row.get(10)?,
    ))
}

// ---- cursors -------------------------------------------------------------------------------

/// Position in the conversation list: `(activity_at, id)` of the last item served, and the
/// snapshot the listing started from (the newest message rowid its first page saw).
///
/// Later pages keep the first page's order: a conversation that gets a message while the
/// client pages stays where it was in the snapshot, so it is neither served twice (when it
/// was above the cursor) nor skipped (when it was below). Its row shows its current data;
/// the `conversation_updated` event tells the client that it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub activity_at: i64,
    pub id: Uuid,
    pub snapshot: i64,
}

/// Position in a message history: the rowid of the oldest message served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor(pub i64);

// ---- conversations -------------------------------------------------------------------------

/// Filters of the conversation list.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Matches name (case-insensitive, ASCII) or, when phone-like, number (its digits).
    pub q: Option<String>,
    pub unread_only: bool,
}

/// A conversation borrowed from its row, serialized exactly as [`Conversation`] is: the
/// list writes its page from these without building a `Conversation` (four `String`s) per
/// row (tested below).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationRow<'a> {
    /// As stored: the hyphenated lowercase text `Uuid` serializes to.
    id: &'a str,
    contact_name: Option<&'a str>,
    contact_number: &'a str,
    platform: &'a str,
    last_message: Option<&'a str>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    last_message_at: Option<DateTime<Utc>>,
    unread_count: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    created_at: DateTime<Utc>,
}

impl<'a> ConversationRow<'a> {
    /// The row, of [`CONVERSATION_COLUMNS`].
    fn read(row: &'a Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: text(row, 0)?,
            contact_name: text_opt(row, 1)?,
            contact_number: text(row, 2)?,
            platform: text(row, 3)?,
            last_message: text_opt(row, 4)?,
            last_message_at: row.get::<_, Option<i64>>(5)?.map(from_millis),
            unread_count: row.get(6)?,
            created_at: from_millis(row.get(7)?),
        })
    }
}

/// Writes one page of conversations, newest activity first, into `body` as the JSON of a
/// `ConversationPage`: `{"items":[…],"nextCursor":…}`, the cursor null on the last page.
///
/// Each row is serialized straight from SQLite's buffer while the statement steps: this is
/// the inbox's hot path, and building the page as values first (then serializing them) cost
/// a quarter of its CPU in allocating, copying and freeing strings.
pub fn write_conversation_page(
    conn: &Connection,
    filter: &ListFilter,
    after: Option<&ConversationCursor>,
    limit: u32,
    encode_cursor: impl Fn(&ConversationCursor) -> String,
    body: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let (name_like, digits_like) =
        match filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                // The number is searched only for a phone-like `q`: "Nike 2" is a name.
                let phone_like = q
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c));
                let digits: String = q.chars().filter(char::is_ascii_digit).collect();
                (
                    Some(format!("%{}%", escape_like(q))),
                    (phone_like && !digits.is_empty()).then(|| format!("%{digits}%")),
                )
            }
            None => (None, None),
        };
    if let Some(cursor) = after {
        let newest: i64 = conn
            .prepare_cached(&format!("SELECT {NEWEST_MESSAGE}"))?
            .query_row([], |row| row.get(0))?;
        // A later page reads every message since its snapshot: bound that work.
        if newest.saturating_sub(cursor.snapshot) > MAX_MESSAGES_SINCE_SNAPSHOT {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                format!(
                    "cursor is too old: more than {MAX_MESSAGES_SINCE_SNAPSHOT} messages \
                     arrived since its first page; list again from the first page"
                ),
            ));
        }
    }
    // Column 9 is the row's list position; on a first page, column 10 is the snapshot.
    let mut stmt = match after {
        None => conn.prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS}, activity_at, {NEWEST_MESSAGE}
             FROM conversation
             WHERE true {LIST_FILTERS}
             ORDER BY activity_at DESC, id DESC
             LIMIT ?6"
        ))?,
        // Conversations with no message after the snapshot are where they were; those with
        // one are placed by their activity as of the snapshot (their last message before
        // it, else their creation). One merge of two ordered arms: the first walks the
        // activity index, the second is the few that moved.
        Some(_) => conn.prepare_cached(&format!(
            "WITH moved(id) AS MATERIALIZED (SELECT conversation_id FROM message WHERE rowid > ?7)
             SELECT {CONVERSATION_COLUMNS}, activity_at AS pos FROM conversation
             WHERE (activity_at, id) < (?1, ?2) AND id NOT IN moved {LIST_FILTERS}
             UNION ALL
             SELECT * FROM (
                 SELECT {CONVERSATION_COLUMNS},
                        max(created_at, coalesce((SELECT max(m.created_at) FROM message m
                            WHERE m.conversation_id = conversation.id AND m.rowid <= ?7),
                            created_at)) AS pos
                 FROM conversation WHERE id IN moved {LIST_FILTERS})
             WHERE (pos, id) < (?1, ?2)
             ORDER BY pos DESC, id DESC
             LIMIT ?6"
        ))?,
    };
    let (at, id) = (
        after.map(|c| c.activity_at),
        after.map(|c| c.id.to_string()),
    );
    let (unread, limit_1) = (filter.unread_only, limit + 1);
    let mut rows = match after {
        // A first page has no ?1 or ?2 (bound NULL, unused) and no ?7.
        None => stmt.query(params![at, id, name_like, digits_like, unread, limit_1])?,
        Some(c) => stmt.query(params![
            at,
            id,
            name_like,
            digits_like,
            unread,
            limit_1,
            c.snapshot
        ])?,
    };
    let json = |e| ApiError::internal("serialize conversation page", e);
    body.extend_from_slice(br#"{"items":["#);
    // The cursor is read from the page's last row only, and served only if a row follows it.
    let (mut served, mut last, mut next) = (0, None, None);
    while let Some(row) = rows.next()? {
        if served == limit {
            next = last.take();
            break;
        }
        if served > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut *body, &ConversationRow::read(row)?).map_err(json)?;
        served += 1;
        if served == limit {
            last = Some(ConversationCursor {
                activity_at: row.get(9)?,
                id: uuid_col(row, 0)?,
                snapshot: match after {
                    Some(cursor) => cursor.snapshot,
                    None => row.get(10)?,
                },
            });
        }
    }
    body.extend_from_slice(br#"],"nextCursor":"#);
    match next {
        Some(cursor) => serde_json::to_writer(&mut *body, &encode_cursor(&cursor)).map_err(json)?,
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(())
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
    note_newest_message(conn)
}

/// Records the message just inserted on `conn` as the newest (the conversation list's
/// snapshot, `tenant_meta.newest_message`): part of every message insert.
pub fn note_newest_message(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tenant_meta SET value = ?1 WHERE key = 'newest_message'")?
        .execute([conn.last_insert_rowid()])?;
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
            to: row.get(MESSAGE_COLUMN_COUNT)?,
        })
    })?
    .collect()
}

/// How many messages are pending (the outbox's depth; read from the partial index of
/// pending messages, so it costs what the queue holds, not what the file holds).
pub fn pending_count(conn: &Connection) -> rusqlite::Result<u64> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM message WHERE status = 'pending'")?
        .query_row([], |row| row.get(0))?;
    Ok(count.unsigned_abs())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's JSON shape (the API's `Page<Conversation>`).
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ConversationPage {
        items: Vec<Conversation>,
        next_cursor: Option<String>,
    }

    /// A readable cursor text for these tests (the API's codec is `http::paging`'s).
    fn encode(c: &ConversationCursor) -> String {
        format!("{}:{}:{}", c.activity_at, c.id, c.snapshot)
    }

    fn decode(s: &str) -> ConversationCursor {
        let mut parts = s.split(':');
        ConversationCursor {
            activity_at: parts.next().unwrap().parse().unwrap(),
            id: parts.next().unwrap().parse().unwrap(),
            snapshot: parts.next().unwrap().parse().unwrap(),
        }
    }

    /// The page as values, serialized: what `write_conversation_page` must write byte for byte.
    fn page_as_values(
        conn: &Connection,
        after: Option<&ConversationCursor>,
        limit: u32,
    ) -> Vec<u8> {
        let mut rows = conn
            .prepare(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversation
                 WHERE ?1 IS NULL OR (activity_at, id) < (?1, ?2)
                 ORDER BY activity_at DESC, id DESC"
            ))
            .unwrap()
            .query_map(
                params![
                    after.map(|c| c.activity_at),
                    after.map(|c| c.id.to_string())
                ],
                conversation_row,
            )
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows.last().filter(|_| more).map(|(c, at)| {
            encode(&ConversationCursor {
                activity_at: *at,
                id: c.id,
                // No message table rows: every snapshot is 0.
                snapshot: 0,
            })
        });
        let items = rows.into_iter().map(|(c, _)| c).collect();
        serde_json::to_vec(&ConversationPage { items, next_cursor }).unwrap()
    }

    #[test]
    fn a_page_written_from_rows_is_the_page_serialized_from_values() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in [
            include_str!("../../migrations/tenant/V1__meta.sql"),
            include_str!("../../migrations/tenant/V2__chat.sql"),
            include_str!("../../migrations/tenant/V3__newest_message.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        let names = [
            None,
            Some("Ana \"Quoted\" \\ back"),
            Some("Łódź 🚀 </script>"),
            Some(""),
        ];
        let previews = [None, Some("line\nbreak\ttab \u{1}"), Some("plain")];
        for i in 0..23_i64 {
            conn.execute(
                "INSERT INTO conversation (id, contact_number, contact_name, last_message,
                     last_message_at, unread_count, activity_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    Uuid::now_v7().to_string(),
                    format!("+62812000{i:04}"),
                    names[i as usize % names.len()],
                    previews[i as usize % previews.len()],
                    (i % 2 == 0).then_some(1_700_000_000_123 + i * 7_919),
                    i % 5,
                    1_700_000_000_000 + (i % 7) * 1000, // ties: ordered by id
                    1_600_000_000_000 - i * 86_400_123,
                ],
            )
            .unwrap();
        }
        for limit in [1, 5, 22, 23, 50] {
            let mut after: Option<ConversationCursor> = None;
            loop {
                let mut written = Vec::new();
                write_conversation_page(
                    &conn,
                    &ListFilter::default(),
                    after.as_ref(),
                    limit,
                    encode,
                    &mut written,
                )
                .unwrap();
                assert_eq!(
                    String::from_utf8(written.clone()).unwrap(),
                    String::from_utf8(page_as_values(&conn, after.as_ref(), limit)).unwrap(),
                    "limit {limit}"
                );
                let page: serde_json::Value = serde_json::from_slice(&written).unwrap();
                match page["nextCursor"].as_str() {
                    Some(next) => after = Some(decode(next)),
                    None => break,
                }
            }
        }
    }
}
