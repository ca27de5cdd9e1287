//! Media: photos, voice notes, videos, documents and stickers, in and out (docs/MEDIA.md).
//!
//! - [`store`]: the SQL. The bytes live inside the tenant's file, once per distinct content
//!   (by SHA-256), and are read back in slices with SQLite's incremental blob I/O.
//! - [`sniff`]: what an upload is, read from its bytes, never from the client's claim.
//! - [`link`]: short-lived signed links, so that a browser's `<img src>` can load an item
//!   without a bearer token.
//! - [`fetch`]: fetches incoming items from WhatsApp after their message is stored, and
//!   retries what failed.

pub mod cache;
pub mod fetch;
pub mod link;
pub mod sniff;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Longest caption accepted, in characters (WhatsApp's own limit).
pub const MAX_CAPTION_CHARS: usize = 1024;

/// What a media item is. Stored and shown as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    /// A voice note (`voice`) or an audio file.
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [Self; 5] = [
        Self::Image,
        Self::Audio,
        Self::Video,
        Self::Document,
        Self::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// Shown in the browser (`Content-Disposition: inline`) rather than saved as a file.
    pub fn is_inline(self) -> bool {
        !matches!(self, Self::Document)
    }
}

/// Where a media item's bytes are: `ready` (stored here), `pending` (being fetched from
/// WhatsApp), `failed` (the last fetch failed; retried later, `reason` says why) or
/// `unavailable` (not fetched, for good: too large, or WhatsApp gave no way to fetch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    Ready,
    Pending,
    Failed,
    Unavailable,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ready, Self::Pending, Self::Failed, Self::Unavailable]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// A message's media item, as the API and events show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    pub id: Uuid,
    pub kind: MediaKind,
    #[schema(example = "image/jpeg")]
    pub mime_type: String,
    /// A document's file name (as sent, or as uploaded).
    pub file_name: Option<String>,
    /// Size in bytes: of the stored bytes once `ready`, else as WhatsApp declared it.
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A voice note (push-to-talk), not an audio file.
    #[serde(default)]
    pub voice: bool,
    pub status: MediaStatus,
    /// Why a `failed` or `unavailable` item has no bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A signed link to the bytes (`GET /api/media/{id}`), valid until `linksExpireAt`, that
    /// needs no `Authorization` header: for `<img src>`. With a bearer token or API key, the
    /// plain path works too.
    pub url: String,
    /// A signed link to the JPEG preview WhatsApp sent, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// When `url` and `thumbnailUrl` stop working; `GET /api/media/{id}/links` gives new ones.
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub links_expire_at: DateTime<Utc>,
}

/// Why an item over the cap has no bytes (`reason` of an `unavailable` item).
pub fn too_large_reason(max_bytes: u64) -> String {
    format!(
        "larger than the {} MiB limit (--media-max-bytes)",
        max_bytes / (1024 * 1024)
    )
}

/// How a message with media reads in the conversation list: the caption of a photo or
/// video, "Voice message (0:12)", a document's file name.
pub fn summary(
    kind: MediaKind,
    voice: bool,
    caption: &str,
    file_name: Option<&str>,
    duration_ms: Option<u64>,
) -> String {
    let caption = caption.trim();
    let named = |fallback: &str| {
        file_name
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| fallback.to_owned(), str::to_owned)
    };
    match kind {
        MediaKind::Image if caption.is_empty() => "Photo".to_owned(),
        MediaKind::Video if caption.is_empty() => "Video".to_owned(),
        MediaKind::Image | MediaKind::Video => caption.to_owned(),
        MediaKind::Audio if voice => match duration_ms {
            Some(ms) => {
                let secs = ms.div_ceil(1000);
                format!("Voice message ({}:{:02})", secs / 60, secs % 60)
            }
            None => "Voice message".to_owned(),
        },
        MediaKind::Audio => named("Audio"),
        MediaKind::Document => named(if caption.is_empty() {
            "Document"
        } else {
            caption
        }),
        MediaKind::Sticker => "Sticker".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_as_a_person_would_say_it() {
        let s = |kind, voice, caption, name, ms| summary(kind, voice, caption, name, ms);
        assert_eq!(s(MediaKind::Image, false, "", None, None), "Photo");
        assert_eq!(
            s(MediaKind::Image, false, " the menu ", None, None),
            "the menu"
        );
        assert_eq!(s(MediaKind::Video, false, "", None, Some(4000)), "Video");
        assert_eq!(
            s(MediaKind::Audio, true, "", None, Some(11_200)),
            "Voice message (0:12)"
        );
        assert_eq!(
            s(MediaKind::Audio, true, "", None, Some(75_000)),
            "Voice message (1:15)"
        );
        assert_eq!(
            s(MediaKind::Audio, false, "", Some("song.mp3"), None),
            "song.mp3"
        );
        assert_eq!(
            s(
                MediaKind::Document,
                false,
                "see this",
                Some("invoice.pdf"),
                None
            ),
            "invoice.pdf"
        );
        assert_eq!(s(MediaKind::Document, false, "", None, None), "Document");
        assert_eq!(s(MediaKind::Sticker, false, "", None, None), "Sticker");
    }
}
