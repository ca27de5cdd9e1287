//! What an uploaded file is, decided from its bytes (magic numbers, by the `infer` crate),
//! never from the client's claim: a declared type that the bytes contradict is refused.

use axum::http::StatusCode;

use super::MediaKind;
use crate::error::ApiError;

/// What the bytes of an upload are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: MediaKind,
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The MIME type WhatsApp wants for a voice note.
pub const VOICE_MIME: &str = "audio/ogg; codecs=opus";

/// A MIME type's essence (`type/subtype`, lowercase, parameters dropped), with common
/// aliases folded into the name `infer` reports.
fn essence(mime: &str) -> String {
    let base = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".to_owned(),
        "audio/mp3" | "audio/x-mp3" | "audio/mpeg3" => "audio/mpeg".to_owned(),
        "audio/wav" | "audio/wave" | "audio/vnd.wave" => "audio/x-wav".to_owned(),
        "audio/x-m4a" | "audio/mp4" | "audio/aac-mp4" => "audio/m4a".to_owned(),
        "audio/opus" => "audio/ogg".to_owned(),
        "application/x-pdf" => "application/pdf".to_owned(),
        _ => base,
    }
}

/// Reads what `bytes` are. `declared` is the type the client gave (a multipart part's
/// `Content-Type`); `application/octet-stream` or none claims nothing. `voice` asks for a
/// voice note, which must be Ogg Opus.
pub fn sniff(bytes: &[u8], declared: Option<&str>, voice: bool) -> Result<Sniffed, ApiError> {
    let detected = match infer::get(bytes) {
        Some(kind) => essence(kind.mime_type()),
        None if std::str::from_utf8(bytes).is_ok() => "text/plain".to_owned(),
        None => "application/octet-stream".to_owned(),
    };
    let declared = declared
        .map(essence)
        .filter(|d| !d.is_empty() && d != "application/octet-stream");
    let mime_type = match declared {
        None => detected,
        Some(claim) if claim == detected => detected,
        // Plain text has no magic number: CSV, Markdown or a vCard are text the bytes allow.
        Some(claim)
            if detected == "text/plain"
                && (claim.starts_with("text/") || claim == "application/json") =>
        {
            claim
        }
        Some(claim) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media_type_mismatch",
                format!("file is declared as {claim} but its bytes are {detected}"),
            ));
        }
    };
    let kind = match mime_type.as_str() {
        "image/jpeg" | "image/png" => MediaKind::Image,
        "image/webp" => MediaKind::Sticker,
        "video/mp4" | "video/3gpp" | "video/quicktime" => MediaKind::Video,
        m if m.starts_with("audio/") => MediaKind::Audio,
        _ => MediaKind::Document,
    };
    if voice && mime_type != "audio/ogg" {
        return Err(ApiError::validation(format!(
            "voice=true needs an Ogg Opus file ({VOICE_MIME}); this file is {mime_type}"
        )));
    }
    let mime_type = if voice {
        VOICE_MIME.to_owned()
    } else {
        mime_type
    };
    let (width, height) = match kind {
        MediaKind::Image | MediaKind::Sticker => match imagesize::blob_size(bytes) {
            Ok(size) => (
                u32::try_from(size.width).ok(),
                u32::try_from(size.height).ok(),
            ),
            Err(_) => (None, None),
        },
        _ => (None, None),
    };
    Ok(Sniffed {
        kind,
        mime_type,
        width,
        height,
    })
}

#[cfg(test)]
pub(crate) mod samples {
    //! Smallest real files of each kind, for tests.

    /// A 1×1 PNG.
    pub const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    /// The first page of an Ogg Opus stream (`OggS` … `OpusHead`).
    pub const OPUS: &[u8] = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        let png = sniff(PNG, None, false).unwrap();
        assert_eq!(
            (png.kind, png.mime_type.as_str()),
            (MediaKind::Image, "image/png")
        );
        assert_eq!((png.width, png.height), (Some(1), Some(1)));
        let pdf = sniff(PDF, Some("application/octet-stream"), false).unwrap();
        assert_eq!(
            (pdf.kind, pdf.mime_type.as_str()),
            (MediaKind::Document, "application/pdf")
        );
        let csv = sniff(b"a,b\n1,2\n", Some("text/csv"), false).unwrap();
        assert_eq!(
            (csv.kind, csv.mime_type.as_str()),
            (MediaKind::Document, "text/csv")
        );
        assert_eq!(
            sniff(PNG, Some("image/PNG"), false).unwrap().mime_type,
            "image/png"
        );
    }

    #[test]
    fn a_claim_the_bytes_contradict_is_refused_naming_both() {
        let err = sniff(PDF, Some("image/png"), false).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let text = err.to_string();
        assert!(
            text.contains("image/png") && text.contains("application/pdf"),
            "{text}"
        );
        assert!(sniff(b"plain words", Some("image/jpeg"), false).is_err());
    }

    #[test]
    fn a_voice_note_must_be_ogg_opus() {
        let voice = sniff(OPUS, Some("audio/ogg; codecs=opus"), true).unwrap();
        assert_eq!(
            (voice.kind, voice.mime_type.as_str()),
            (MediaKind::Audio, VOICE_MIME)
        );
        let err = sniff(PDF, None, true).unwrap_err();
        assert!(err.to_string().contains("voice=true"), "{err}");
    }
}
