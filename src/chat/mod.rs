//! The inbox: conversations and messages of one tenant.
//!
//! - [`store`]: the SQL, one function per query, each taking the tenant's connection.
//! - [`inbox`]: what a team member does (open a conversation, send, mark read); HTTP and
//!   Socket.IO call it (`http::chat`, `http::socket`).
//! - [`outbox`]: hands accepted (`pending`) messages to WhatsApp, per tenant, in order.
//! - [`ingest`]: stores what WhatsApp delivers (messages, receipts), batched per tenant.
//! - [`workflow`]: the team's work on a conversation: status, assignee, labels, the contact's
//!   name, private notes and their mentions (docs/WORKFLOW.md); [`snooze`] reopens snoozed
//!   conversations when their time comes.
//! - [`library`]: the tenant's labels and quick replies; [`mentions`]: notifications;
//!   [`search`]: full-text search (FTS5).
//!
//! Every change here writes its realtime event into the tenant's event log in the same
//! transaction (see [`crate::events`]) and is queued for the sockets as it commits.

pub mod inbox;
pub mod ingest;
pub mod library;
pub mod mentions;
pub mod outbox;
pub mod pages;
pub mod search;
pub mod snooze;
pub mod store;
pub mod workflow;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// Longest message content accepted, in characters (WhatsApp's own limit is 65,536).
pub const MAX_CONTENT_CHARS: usize = 4096;

/// Where a conversation is in the team's work: `open` (needs an answer), `pending` (waiting
/// on something), `resolved` (done) or `snoozed` (until `snoozedUntil`). A contact's new
/// message reopens a resolved or snoozed conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    #[default]
    Open,
    Pending,
    Resolved,
    Snoozed,
}

impl ConversationStatus {
    pub const ALL: [Self; 4] = [Self::Open, Self::Pending, Self::Resolved, Self::Snoozed];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A chat with one contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: Uuid,
    /// The name shown: the team's, once edited (`nameEdited`), else WhatsApp's push name.
    pub contact_name: Option<String>,
    /// E.164: `+` and digits.
    #[schema(example = "+6281234567890")]
    pub contact_number: String,
    /// The name the contact gave themselves in WhatsApp, as last seen.
    #[serde(default)]
    pub push_name: Option<String>,
    /// The team set `contactName`: WhatsApp's push name no longer replaces it.
    #[serde(default)]
    pub name_edited: bool,
    #[schema(example = "whatsapp")]
    pub platform: String,
    pub last_message: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub last_message_at: Option<DateTime<Utc>>,
    /// The caller's own unread count (docs/WORKFLOW.md). Absent from events sent to the
    /// whole team, whose members' counts differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i64>,
    /// Incoming messages no member has read yet (WhatsApp read receipts follow this).
    #[serde(default)]
    pub contact_unread_count: i64,
    #[serde(default)]
    pub status: ConversationStatus,
    /// When a snoozed conversation reopens.
    #[serde(default, serialize_with = "crate::time::rfc3339_opt")]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// The team member who owns the conversation.
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    /// Ids of the tenant's labels on this conversation, sorted.
    #[serde(default)]
    pub labels: Vec<Uuid>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// Who wrote a message: the tenant's team (`agent`, also from the phone itself) or the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Agent,
    User,
}

/// Where an outgoing message is: `pending` (stored, not yet handed to WhatsApp), `sent`,
/// `delivered`, `read`, or `failed`. Incoming messages are `delivered` (or `read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
}

/// A message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub content: String,
    pub sender: Sender,
    /// `text`, or the kind of its media: `image`, `audio`, `video`, `document`, `sticker`.
    #[schema(example = "text")]
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Status,
    pub is_read: bool,
    /// WhatsApp's id for the message, once it has one.
    pub whatsapp_id: Option<String>,
    /// The team member who sent an agent message from AEZEN.
    pub author_id: Option<Uuid>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Why WhatsApp refused the message, when its status is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// A private note of the team's: shown in the timeline, never sent to WhatsApp.
    #[serde(default)]
    pub private: bool,
    /// The photo, voice note, video, document or sticker, for a message of one of those
    /// types (`content` is then its caption, possibly empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::media::Media>,
}

impl Message {
    /// How the message reads in the conversation list: its text, or a summary of its media.
    pub fn preview(&self) -> std::borrow::Cow<'_, str> {
        match &self.media {
            Some(m) => crate::media::summary(
                m.kind,
                m.voice,
                &self.content,
                m.file_name.as_deref(),
                m.duration_ms,
            )
            .into(),
            None => self.content.as_str().into(),
        }
    }
}

macro_rules! sql_text_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl rusqlite::types::FromSql for $ty {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(rusqlite::types::FromSqlError::InvalidType),
                }
            }
        }
        impl rusqlite::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    };
}

sql_text_enum!(Sender { Agent => "agent", User => "user" });
sql_text_enum!(ConversationStatus {
    Open => "open",
    Pending => "pending",
    Resolved => "resolved",
    Snoozed => "snoozed",
});
sql_text_enum!(Status {
    Pending => "pending",
    Sent => "sent",
    Delivered => "delivered",
    Read => "read",
    Failed => "failed",
});

/// A UUID column, stored as its hyphenated text (the tenant file's form of every id).
pub fn uuid_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    parse_uuid(idx, row.get_ref(idx)?.as_str()?)
}

/// Column `idx`'s text as a UUID, or the conversion error rusqlite reports for it.
pub fn parse_uuid(idx: usize, s: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Now, at the millisecond precision that is stored, so that a live event and a later read
/// of the same object show the same time.
pub fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

/// Unix milliseconds, as stored.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Normalises a phone number to E.164 (`+` and 8–15 digits), so that one contact is one
/// conversation however the number was typed. The number must carry its country code: a
/// leading `+` or `00`, or digits that already start with it (as WhatsApp ids do). Spaces,
/// dashes, dots and parentheses are ignored; a leading single `0` (a national number) is
/// refused, since the country cannot be guessed.
pub fn normalize_phone(field: &str, raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let (international, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(ApiError::validation(format!(
                    "{field} may only contain digits, spaces, dashes, dots, parentheses and a leading +"
                )));
            }
        }
    }
    let digits = match digits.strip_prefix("00") {
        Some(rest) if !international => rest.to_owned(),
        _ => digits,
    };
    if digits.starts_with('0') {
        return Err(ApiError::validation(format!(
            "{field} must include the country code (e.g. +44 20 7946 0958)"
        )));
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(ApiError::validation(format!(
            "{field} must have 8 to 15 digits including the country code"
        )));
    }
    Ok(format!("+{digits}"))
}

/// Checks message content by the product's text rule ([`crate::text::body`]): something
/// visible, no control characters but line breaks and tabs, at most [`MAX_CONTENT_CHARS`].
pub fn validate_content(field: &str, content: &str) -> Result<(), ApiError> {
    crate::text::body(field, content, MAX_CONTENT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_typed_differently_normalise_to_one_form() {
        for typed in [
            "+62 812-3456-7890",
            "0062 812 3456 7890",
            "6281234567890",
            "+62 (812) 3456.7890",
        ] {
            assert_eq!(
                normalize_phone("to", typed).unwrap(),
                "+6281234567890",
                "{typed}"
            );
        }
    }

    #[test]
    fn invalid_phone_numbers_are_refused_naming_the_field() {
        for bad in [
            "",
            "+",
            "08123456789",
            "12345",
            "+1234567890123456",
            "+62abc",
            "62 812 3456 7890 ext 5",
        ] {
            let err = normalize_phone("contactNumber", bad).unwrap_err();
            assert!(err.to_string().contains("contactNumber"), "{bad}: {err}");
        }
    }

    #[test]
    fn content_must_be_present_and_bounded() {
        assert!(validate_content("content", "hi").is_ok());
        assert!(validate_content("content", "  \n").is_err());
        assert!(validate_content("content", &"x".repeat(MAX_CONTENT_CHARS + 1)).is_err());
    }
}
