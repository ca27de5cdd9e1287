//! Paging: the one `{items, nextCursor}` shape every list answers, page sizes, and the opaque
//! cursors (URL-safe base64 of a small text; anything else is a 400 naming the parameter).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::chat::store::{ConversationCursor, MessageCursor};
use crate::error::ApiError;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back (as the list's cursor parameter) for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A list that always fits in one page.
    pub fn whole(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

/// A page size from the query: `default` when absent, 422 outside `1..=max` (a negative
/// number included: one rule, whichever side of the range it misses).
pub fn page_limit(limit: Option<i64>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::validation(format!("limit must be between 1 and {max}"))),
    }
}

pub fn encode_conversation_cursor(cursor: &ConversationCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "c:{}:{}:{}",
        cursor.activity_at, cursor.id, cursor.snapshot
    ))
}

pub fn decode_conversation_cursor(field: &str, s: &str) -> Result<ConversationCursor, ApiError> {
    decode_cursor(field, s, |text| {
        let mut parts = text.strip_prefix("c:")?.split(':');
        let cursor = ConversationCursor {
            activity_at: parts.next()?.parse().ok()?,
            id: Uuid::parse_str(parts.next()?).ok()?,
            // A cursor from before snapshots keeps paging as it did: nothing counts as
            // moved, so a conversation that moves may be missed.
            snapshot: match parts.next() {
                Some(snapshot) => snapshot.parse().ok()?,
                None => i64::MAX,
            },
        };
        parts.next().is_none().then_some(cursor)
    })
}

pub fn encode_message_cursor(cursor: &MessageCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("m:{}", cursor.0))
}

pub fn decode_message_cursor(field: &str, s: &str) -> Result<MessageCursor, ApiError> {
    decode_cursor(field, s, |text| {
        text.strip_prefix("m:")?.parse().ok().map(MessageCursor)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_text_is_refused_naming_the_field() {
        let c = ConversationCursor {
            activity_at: 17,
            id: Uuid::now_v7(),
            snapshot: 9,
        };
        let back = decode_conversation_cursor("cursor", &encode_conversation_cursor(&c)).unwrap();
        assert_eq!((back.activity_at, back.id, back.snapshot), (17, c.id, 9));
        let m = decode_message_cursor("before", &encode_message_cursor(&MessageCursor(5)));
        assert_eq!(m.unwrap().0, 5);
        let err = decode_message_cursor("before", &encode_conversation_cursor(&c)).unwrap_err();
        assert_eq!(err.code(), "invalid_cursor");
        assert!(err.message().contains("before"), "{}", err.message());
    }
}
