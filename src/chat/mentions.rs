//! Mentions in private notes and the notifications they leave: finding `@Name` in a note,
//! and each member's own notification list.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Conversation, Message, from_millis, to_millis, uuid_col};

/// A note that mentions a member, as that member's notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    /// `mention`: a teammate wrote `@your name` in a private note.
    #[schema(example = "mention")]
    pub kind: String,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// Who wrote the note.
    pub author_id: Option<Uuid>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When the member marked it read; null while unread.
    #[serde(default, serialize_with = "crate::time::rfc3339_opt")]
    pub read_at: Option<DateTime<Utc>>,
    /// The note's first [`EXCERPT_CHARS`] characters.
    #[serde(default)]
    pub excerpt: String,
    /// The conversation's contact, as shown in the inbox.
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub contact_number: String,
}

/// How much of a note a notification quotes.
pub const EXCERPT_CHARS: usize = 140;

/// The team members a note mentions: `@` followed by a member's name (case-insensitive) and
/// then anything but a letter or digit. Where names overlap ("Ana" and "Ana Lima"), the
/// longest one that matches at that `@` wins. `members` are `(id, name)`; each mentioned id
/// appears once, in order of first mention.
pub fn mentioned(content: &str, members: &[(Uuid, String)]) -> Vec<Uuid> {
    let mut by_length: Vec<(Uuid, Vec<char>)> = members
        .iter()
        .map(|(id, name)| (*id, name.chars().flat_map(char::to_lowercase).collect()))
        .filter(|(_, name): &(Uuid, Vec<char>)| !name.is_empty())
        .collect();
    by_length.sort_by_key(|(_, name)| std::cmp::Reverse(name.len()));
    let text: Vec<char> = content.chars().flat_map(char::to_lowercase).collect();
    let mut found = Vec::new();
    for (at, _) in text.iter().enumerate().filter(|(_, c)| **c == '@') {
        let rest = &text[at + 1..];
        let hit = by_length.iter().find(|(_, name)| {
            rest.starts_with(name)
                && rest
                    .get(name.len())
                    .is_none_or(|next| !next.is_alphanumeric())
        });
        if let Some((id, _)) = hit
            && !found.contains(id)
        {
            found.push(*id);
        }
    }
    found
}

/// A notification's columns, with its note's excerpt (`substr(m.content, 1, ?4)`, bound to
/// [`EXCERPT_CHARS`]) and its conversation's contact.
const COLUMNS: &str = "n.id, n.kind, n.conversation_id, n.message_id, n.author_id, n.created_at, \
     n.read_at, substr(m.content, 1, ?4), c.contact_name, c.contact_number";
const FROM: &str = "notification n JOIN message m ON m.id = n.message_id \
     JOIN conversation c ON c.id = n.conversation_id";

fn notification_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let author: Option<String> = row.get(4)?;
    Ok(Notification {
        id: uuid_col(row, 0)?,
        kind: row.get(1)?,
        conversation_id: uuid_col(row, 2)?,
        message_id: uuid_col(row, 3)?,
        author_id: author.and_then(|a| Uuid::parse_str(&a).ok()),
        created_at: from_millis(row.get(5)?),
        read_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        excerpt: row.get(7)?,
        contact_name: row.get(8)?,
        contact_number: row.get(9)?,
    })
}

/// Stores a mention of `user` in the note `message` of `conversation` and returns it.
pub fn insert_mention(
    conn: &Connection,
    user: Uuid,
    conversation: &Conversation,
    message: &Message,
) -> rusqlite::Result<Notification> {
    let notification = Notification {
        id: Uuid::now_v7(),
        kind: "mention".to_owned(),
        conversation_id: conversation.id,
        message_id: message.id,
        author_id: message.author_id,
        created_at: message.created_at,
        read_at: None,
        excerpt: message.content.chars().take(EXCERPT_CHARS).collect(),
        contact_name: conversation.contact_name.clone(),
        contact_number: conversation.contact_number.clone(),
    };
    conn.prepare_cached(
        "INSERT INTO notification (id, user_id, kind, conversation_id, message_id, author_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        notification.id.to_string(),
        user.to_string(),
        notification.kind,
        conversation.id.to_string(),
        message.id.to_string(),
        message.author_id.map(|a| a.to_string()),
        to_millis(message.created_at),
    ])?;
    Ok(notification)
}

/// A member's notifications, newest first, before the id `before` (keyset), at most `limit`
/// (`limit + 1` are read to tell whether more follow).
pub fn list(
    conn: &Connection,
    user: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> rusqlite::Result<Vec<Notification>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM}
         WHERE n.user_id = ?1 AND (?2 IS NULL OR n.id < ?2)
         ORDER BY n.id DESC LIMIT ?3"
    ))?
    .query_map(
        params![
            user.to_string(),
            before.map(|b| b.to_string()),
            limit,
            EXCERPT_CHARS as u32
        ],
        notification_row,
    )?
    .collect()
}

pub fn unread_count(conn: &Connection, user: Uuid) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM notification WHERE user_id = ?1 AND read_at IS NULL")?
        .query_row([user.to_string()], |row| row.get(0))
}

/// Marks the member's notifications read: those in `ids`, or all of them. Returns how many
/// changed.
pub fn mark_read(
    conn: &Connection,
    user: Uuid,
    ids: Option<&[Uuid]>,
    at: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let user = user.to_string();
    match ids {
        None => conn
            .prepare_cached(
                "UPDATE notification SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL",
            )?
            .execute(params![user, to_millis(at)]),
        Some(ids) => {
            let mut stmt = conn.prepare_cached(
                "UPDATE notification SET read_at = ?2
                 WHERE user_id = ?1 AND id = ?3 AND read_at IS NULL",
            )?;
            let mut changed = 0;
            for id in ids {
                changed += stmt.execute(params![user, to_millis(at), id.to_string()])?;
            }
            Ok(changed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_match_whole_names_case_insensitively_and_the_longest_wins() {
        let (ana, ana_lima, bo) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let team = vec![
            (ana, "Ana".to_owned()),
            (ana_lima, "Ana Lima".to_owned()),
            (bo, "Bø".to_owned()),
        ];
        assert_eq!(mentioned("ping @ana lima, please", &team), vec![ana_lima]);
        assert_eq!(mentioned("@Ana: and @BØ!", &team), vec![ana, bo]);
        assert_eq!(mentioned("@anabel is not Ana", &team), Vec::<Uuid>::new());
        assert_eq!(mentioned("mail ana@example.com", &team), Vec::<Uuid>::new());
        assert_eq!(mentioned("@ana @ana", &team), vec![ana]);
    }
}
