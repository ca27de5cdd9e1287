//! Media on the real backend: what an incoming media message says (its metadata, thumbnail and
//! the source to fetch it from), fetching it (a download, or asking the sender's phone to
//! upload it again) and building an outgoing media message from an upload.
//!
//! The source AEZEN stores with an item is a [`MediaSource`] as JSON: the CDN reference
//! (direct path, media key, hashes, length, type) that a download needs, and the message's
//! key (id, chat, from me, participant) that a re-upload request needs. Only this file reads
//! or writes it. The translations are pure functions, tested below; the client calls
//! ([`download`], [`request_reupload`], [`send`]) take the tenant's ready client from the
//! caller and only sort their errors.

use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use whatsapp_rust::download::{DownloadParams, Downloadable, MediaType};
use whatsapp_rust::features::{MediaRetryResult, MediaReuploadError, MediaReuploadRequest};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::upload::{UploadOptions, UploadResponse};
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, ErrorChainExt, Jid, webp};

use super::mapping::{classify_send_error, client_error_is_transient};
use crate::ids::TenantId;
use crate::whatsapp::{DownloadError, IncomingMedia, MediaKind, OutgoingMedia, SendError};

/// The CDN's answers for a copy that is gone (the crate keeps its own constants private).
const HTTP_NOT_FOUND: u16 = 404;
const HTTP_GONE: u16 = 410;

const NO_REFERENCE: &str = "WhatsApp cannot fetch this media: the message carried no download \
    reference (direct path, media key and encrypted-file hash)";

/// What AEZEN stores as an item's [`IncomingMedia::source`]. Binary fields are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaSource {
    /// Which CDN path and which key derivation the item uses.
    media_type: MediaKind,
    direct_path: Option<String>,
    #[serde(default, with = "base64_bytes")]
    media_key: Option<Vec<u8>>,
    #[serde(default, with = "base64_bytes")]
    file_sha256: Option<Vec<u8>>,
    #[serde(default, with = "base64_bytes")]
    file_enc_sha256: Option<Vec<u8>>,
    file_length: Option<u64>,
    /// The message's key, which a re-upload request names.
    message_id: String,
    chat_jid: String,
    from_me: bool,
    /// The sender, in a group chat (the inbox keeps none today; the request format has it).
    participant: Option<String>,
}

impl MediaSource {
    fn new(kind: MediaKind, reference: &dyn Downloadable, info: &MessageInfo) -> Self {
        let present = |bytes: Option<&[u8]>| bytes.filter(|b| !b.is_empty()).map(<[u8]>::to_vec);
        let source = &info.source;
        Self {
            media_type: kind,
            direct_path: reference
                .direct_path()
                .filter(|path| !path.is_empty())
                .map(str::to_owned),
            media_key: present(reference.media_key()),
            file_sha256: present(reference.file_sha256()),
            file_enc_sha256: present(reference.file_enc_sha256()),
            file_length: reference.file_length(),
            message_id: info.id.clone(),
            chat_jid: source.chat.to_string(),
            from_me: source.is_from_me,
            participant: source.is_group.then(|| source.sender.to_string()),
        }
    }

    fn parse(value: &serde_json::Value) -> Result<Self, DownloadError> {
        Self::deserialize(value)
            .map_err(|err| DownloadError::Failed(format!("not a WhatsApp media source: {err}")))
    }

    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a media source has only string keys")
    }

    fn media_key(&self) -> Result<&[u8], DownloadError> {
        self.media_key
            .as_deref()
            .ok_or_else(|| DownloadError::Failed(NO_REFERENCE.to_owned()))
    }

    /// What `Client::download` fetches and decrypts.
    fn download_params(&self) -> Result<DownloadParams, DownloadError> {
        let (Some(direct_path), Some(media_key), Some(file_enc_sha256)) =
            (&self.direct_path, &self.media_key, &self.file_enc_sha256)
        else {
            return Err(DownloadError::Failed(NO_REFERENCE.to_owned()));
        };
        Ok(DownloadParams {
            direct_path: direct_path.clone(),
            media_key: Some(media_key.clone()),
            // Only checked for unencrypted (newsletter) media; the media key's MAC covers
            // the rest.
            file_sha256: self.file_sha256.clone().unwrap_or_default(),
            file_enc_sha256: Some(file_enc_sha256.clone()),
            file_length: self.file_length.unwrap_or(0),
            media_type: media_type(self.media_type),
        })
    }

    /// The source to download from after the phone answered a re-upload request.
    fn reuploaded(mut self, result: MediaRetryResult) -> Result<serde_json::Value, DownloadError> {
        let refused = match result {
            MediaRetryResult::Success { direct_path } => {
                self.direct_path = Some(direct_path);
                return Ok(self.to_value());
            }
            MediaRetryResult::NotFound => "the sender's phone no longer has this media",
            MediaRetryResult::DecryptionError => {
                "the sender's phone could not read the re-upload request"
            }
            MediaRetryResult::GeneralError => "the sender's phone could not upload the media again",
        };
        Err(DownloadError::Failed(refused.to_owned()))
    }
}

/// Base64 (standard, padded) for the source's optional byte fields.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::BASE64;

    #[allow(clippy::ref_option)] // serde's `with` hands the field over by reference
    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serializer.serialize_some(&BASE64.encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| BASE64.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Video => MediaType::Video,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// The photo, voice note or audio file, video (also a round video note), document or sticker
/// a message carries, unwrapped from ephemeral and view-once wrappers as
/// `get_base_message` does; `None` for a message without one. Captions are not part of it:
/// they are the message's content.
///
/// The thumbnail is the JPEG preview images, videos and documents carry; a sticker's preview
/// is a PNG and is left out.
pub(super) fn incoming_media(message: &wa::Message, info: &MessageInfo) -> Option<IncomingMedia> {
    let base = message.get_base_message();
    let video = base
        .video_message
        .as_option()
        .or_else(|| base.ptv_message.as_option());
    let (media, reference): (IncomingMedia, &dyn Downloadable) =
        if let Some(image) = base.image_message.as_option() {
            let media = IncomingMedia {
                width: image.width,
                height: image.height,
                thumbnail: thumbnail(image.jpeg_thumbnail.as_deref()),
                ..described(
                    MediaKind::Image,
                    image.mimetype.as_deref(),
                    image.file_length,
                )
            };
            (media, image)
        } else if let Some(video) = video {
            let media = IncomingMedia {
                width: video.width,
                height: video.height,
                duration_ms: video.seconds.map(seconds_to_ms),
                thumbnail: thumbnail(video.jpeg_thumbnail.as_deref()),
                ..described(
                    MediaKind::Video,
                    video.mimetype.as_deref(),
                    video.file_length,
                )
            };
            (media, video)
        } else if let Some(audio) = base.audio_message.as_option() {
            let media = IncomingMedia {
                duration_ms: audio.seconds.map(seconds_to_ms),
                voice: audio.ptt == Some(true),
                ..described(
                    MediaKind::Audio,
                    audio.mimetype.as_deref(),
                    audio.file_length,
                )
            };
            (media, audio)
        } else if let Some(document) = base.document_message.as_option() {
            let media = IncomingMedia {
                file_name: document
                    .file_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned),
                thumbnail: thumbnail(document.jpeg_thumbnail.as_deref()),
                ..described(
                    MediaKind::Document,
                    document.mimetype.as_deref(),
                    document.file_length,
                )
            };
            (media, document)
        } else if let Some(sticker) = base.sticker_message.as_option() {
            let media = IncomingMedia {
                width: sticker.width,
                height: sticker.height,
                ..described(
                    MediaKind::Sticker,
                    sticker.mimetype.as_deref(),
                    sticker.file_length,
                )
            };
            (media, sticker)
        } else {
            return None;
        };
    Some(IncomingMedia {
        source: MediaSource::new(media.kind, reference, info).to_value(),
        ..media
    })
}

/// An item with its kind, type and size, and nothing else yet. A missing type is the one
/// WhatsApp's clients assume for the kind.
fn described(kind: MediaKind, mime_type: Option<&str>, size: Option<u64>) -> IncomingMedia {
    let assumed = match kind {
        MediaKind::Image => "image/jpeg",
        MediaKind::Audio => "audio/ogg; codecs=opus",
        MediaKind::Video => "video/mp4",
        MediaKind::Document => "application/octet-stream",
        MediaKind::Sticker => "image/webp",
    };
    IncomingMedia {
        kind,
        mime_type: mime_type
            .map(str::trim)
            .filter(|mime| !mime.is_empty())
            .unwrap_or(assumed)
            .to_owned(),
        file_name: None,
        size,
        width: None,
        height: None,
        duration_ms: None,
        voice: false,
        thumbnail: None,
        source: serde_json::Value::Null,
    }
}

fn thumbnail(jpeg: Option<&[u8]>) -> Option<Vec<u8>> {
    jpeg.filter(|bytes| !bytes.is_empty()).map(<[u8]>::to_vec)
}

fn seconds_to_ms(seconds: u32) -> u64 {
    u64::from(seconds) * 1000
}

/// Fetches and decrypts an item from the CDN.
pub(super) async fn download(
    client: &Client,
    source: &serde_json::Value,
) -> Result<Vec<u8>, DownloadError> {
    let params = MediaSource::parse(source)?.download_params()?;
    client
        .download(&params)
        .await
        .map_err(|err| classify_download_error(&err))
}

/// Sorts a failed download. The crate has already refreshed its media connection and tried
/// every host; a 404 or 410 it still got means the CDN's copy is gone, which only the
/// sender's phone can fix (a re-upload). Anything else may pass.
fn classify_download_error(err: &anyhow::Error) -> DownloadError {
    let chain: &(dyn std::error::Error + Send + Sync + 'static) = err.as_ref();
    match chain.http_status() {
        Some(HTTP_NOT_FOUND | HTTP_GONE) => DownloadError::Expired,
        _ => DownloadError::Failed(format!(
            "downloading the media from WhatsApp failed: {err:#}"
        )),
    }
}

/// Asks the sender's phone to upload an expired item again, and waits (the crate allows
/// 30 s) for its answer; returns the source with the new direct path.
pub(super) async fn request_reupload(
    client: &Client,
    source: &serde_json::Value,
) -> Result<serde_json::Value, DownloadError> {
    let source = MediaSource::parse(source)?;
    let invalid = |what: &str, jid: &str| {
        DownloadError::Failed(format!("the media source names an invalid {what} {jid:?}"))
    };
    let chat: Jid = source
        .chat_jid
        .parse()
        .map_err(|_| invalid("chat", &source.chat_jid))?;
    let participant: Option<Jid> = match &source.participant {
        Some(jid) => Some(jid.parse().map_err(|_| invalid("participant", jid))?),
        None => None,
    };
    let request = MediaReuploadRequest {
        msg_id: &source.message_id,
        chat_jid: &chat,
        media_key: source.media_key()?,
        is_from_me: source.from_me,
        participant: participant.as_ref(),
    };
    let result = client
        .media_reupload()
        .request(&request)
        .await
        .map_err(|err| classify_reupload_error(&err))?;
    source.reuploaded(result)
}

fn classify_reupload_error(err: &MediaReuploadError) -> DownloadError {
    match err {
        MediaReuploadError::NotLoggedIn => DownloadError::NotConnected,
        MediaReuploadError::Client(client) if client_error_is_transient(client) => {
            DownloadError::NotConnected
        }
        MediaReuploadError::Timeout => DownloadError::Failed(
            "the sender's phone did not answer the re-upload request in time (it may be offline)"
                .to_owned(),
        ),
        other => DownloadError::Failed(format!(
            "asking the sender's phone to upload the media again failed: {other}"
        )),
    }
}

/// Uploads an item, then sends the message that carries it; returns WhatsApp's id for it.
pub(super) async fn send(
    tenant: TenantId,
    client: &Client,
    to: Jid,
    media: OutgoingMedia<'_>,
) -> Result<String, SendError> {
    let uploaded = match client
        .upload(
            media.bytes.to_vec(),
            media_type(media.kind),
            UploadOptions::default(),
        )
        .await
    {
        Ok(uploaded) => uploaded,
        Err(err) => {
            let connected = client.is_connected() && client.is_logged_in();
            let sorted = classify_upload_error(&err, media.kind, connected);
            tracing::warn!(
                tenant = %tenant,
                error = %format!("{err:#}"),
                ?sorted,
                "WhatsApp media upload failed"
            );
            return Err(sorted);
        }
    };
    let message = outgoing_message(Uploaded::from(uploaded), &media);
    match client.send_message(to, message).await {
        Ok(sent) => Ok(sent.message_id),
        Err(err) => {
            let sorted = classify_send_error(&err);
            tracing::warn!(tenant = %tenant, error = %err, ?sorted, "WhatsApp media send failed");
            Err(sorted)
        }
    }
}

/// Sorts a failed upload. Its error is an `anyhow` chain with no reliable "transient" mark, so
/// the client's state decides: an upload that failed while the session was down waits for it
/// (`NotConnected`); one that failed on a connected session is refused for good, as the
/// outbox would otherwise retry it forever behind the messages queued after it.
fn classify_upload_error(err: &anyhow::Error, kind: MediaKind, connected: bool) -> SendError {
    if connected {
        SendError::Rejected(format!(
            "uploading the {} to WhatsApp failed: {err:#}",
            kind.as_str()
        ))
    } else {
        SendError::NotConnected
    }
}

/// What an upload gave back, as a message carries it: the fields of the crate's
/// `UploadResponse`. That type is `#[non_exhaustive]` with no constructor, so neither the
/// crate's builders (`media::image_message`, …, which take it by value) nor a test can be
/// handed one made here; [`outgoing_message`] builds from this copy instead.
#[derive(Debug, Clone)]
struct Uploaded {
    url: String,
    direct_path: String,
    media_key: [u8; 32],
    file_sha256: [u8; 32],
    file_enc_sha256: [u8; 32],
    file_length: u64,
    media_key_timestamp: i64,
    /// Audio and video only: the table that lets a player seek before the whole file arrived.
    streaming_sidecar: Option<Vec<u8>>,
}

impl From<UploadResponse> for Uploaded {
    fn from(upload: UploadResponse) -> Self {
        Self {
            url: upload.url,
            direct_path: upload.direct_path,
            media_key: upload.media_key,
            file_sha256: upload.file_sha256,
            file_enc_sha256: upload.file_enc_sha256,
            file_length: upload.file_length,
            media_key_timestamp: upload.media_key_timestamp,
            streaming_sidecar: upload.streaming_sidecar,
        }
    }
}

/// A media proto with the CDN fields every uploaded item carries, as the crate's
/// `media::*_message` builders set them, plus the given ones.
macro_rules! uploaded_proto {
    ($proto:ident from $upload:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let upload: Uploaded = $upload;
        MessageField::some(wa::message::$proto {
            url: Some(upload.url),
            direct_path: Some(upload.direct_path),
            media_key: Some(upload.media_key.to_vec()),
            file_sha256: Some(upload.file_sha256.to_vec()),
            file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
            file_length: Some(upload.file_length),
            media_key_timestamp: Some(upload.media_key_timestamp),
            $($field: $value,)*
            ..Default::default()
        })
    }};
}

/// The message that sends an uploaded item, with its type, caption, file name (documents),
/// size in pixels (images, videos, stickers) and the voice-note flag (audio).
///
/// - A sticker goes out as a real `StickerMessage` (the crate has no builder for one; it is
///   built here from the upload like the others, marked animated when the WebP is).
/// - Audio and stickers carry no caption in WhatsApp: a caption given with them is not sent.
/// - Video and audio lengths are not known here and are left out (WhatsApp's apps read them
///   from the file).
fn outgoing_message(mut upload: Uploaded, media: &OutgoingMedia<'_>) -> wa::Message {
    let mimetype = Some(media.mime_type.to_owned());
    let caption = Some(media.caption)
        .filter(|caption| !caption.is_empty())
        .map(str::to_owned);
    let sidecar = upload.streaming_sidecar.take();
    match media.kind {
        MediaKind::Image => wa::Message {
            image_message: uploaded_proto!(ImageMessage from upload, {
                mimetype: mimetype,
                caption: caption,
                width: media.width,
                height: media.height,
            }),
            ..Default::default()
        },
        MediaKind::Video => wa::Message {
            video_message: uploaded_proto!(VideoMessage from upload, {
                mimetype: mimetype,
                caption: caption,
                width: media.width,
                height: media.height,
                streaming_sidecar: sidecar,
            }),
            ..Default::default()
        },
        MediaKind::Audio => wa::Message {
            audio_message: uploaded_proto!(AudioMessage from upload, {
                mimetype: mimetype,
                ptt: Some(media.voice),
                streaming_sidecar: sidecar,
            }),
            ..Default::default()
        },
        MediaKind::Document => wa::Message {
            document_message: uploaded_proto!(DocumentMessage from upload, {
                mimetype: mimetype,
                caption: caption,
                file_name: media.file_name.map(str::to_owned),
            }),
            ..Default::default()
        },
        MediaKind::Sticker => wa::Message {
            sticker_message: uploaded_proto!(StickerMessage from upload, {
                mimetype: mimetype,
                width: media.width,
                height: media.height,
                is_animated: Some(webp::is_animated(media.bytes)),
            }),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use whatsapp_rust::http::HttpStatusError;
    use whatsapp_rust::{ClientError, IqError};

    use super::super::mapping::tests::{CUSTOMER, info};
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const SHA: [u8; 32] = [8; 32];
    const ENC_SHA: [u8; 32] = [9; 32];

    fn media_of(message: &wa::Message) -> IncomingMedia {
        incoming_media(message, &info("3EB0M1", Jid::pn(CUSTOMER))).expect("media mapped")
    }

    fn source_of(media: &IncomingMedia) -> MediaSource {
        MediaSource::parse(&media.source).expect("a media source")
    }

    fn image() -> wa::message::ImageMessage {
        wa::message::ImageMessage {
            mimetype: Some("image/jpeg".to_owned()),
            caption: Some("size M?".to_owned()),
            direct_path: Some("/v/t62.7118-24/img".to_owned()),
            media_key: Some(KEY.to_vec()),
            file_sha256: Some(SHA.to_vec()),
            file_enc_sha256: Some(ENC_SHA.to_vec()),
            file_length: Some(48_213),
            width: Some(1280),
            height: Some(960),
            jpeg_thumbnail: Some(vec![0xFF, 0xD8, 0xFF]),
            ..Default::default()
        }
    }

    #[test]
    fn a_photo_carries_its_size_type_and_thumbnail() {
        let message = wa::Message {
            image_message: MessageField::some(image()),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.kind, MediaKind::Image);
        assert_eq!(media.mime_type, "image/jpeg");
        assert_eq!(media.size, Some(48_213));
        assert_eq!((media.width, media.height), (Some(1280), Some(960)));
        assert_eq!(media.thumbnail.as_deref(), Some(&[0xFF, 0xD8, 0xFF][..]));
        assert_eq!(media.file_name, None);
        assert_eq!(media.duration_ms, None);
        assert!(!media.voice);
    }

    #[test]
    fn a_voice_note_is_audio_marked_voice_with_its_length_in_milliseconds() {
        let message = wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                mimetype: Some("audio/ogg; codecs=opus".to_owned()),
                seconds: Some(7),
                ptt: Some(true),
                file_length: Some(11_008),
                direct_path: Some("/v/t62.7117-24/ptt".to_owned()),
                media_key: Some(KEY.to_vec()),
                file_enc_sha256: Some(ENC_SHA.to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.kind, MediaKind::Audio);
        assert!(media.voice);
        assert_eq!(media.duration_ms, Some(7_000));
        assert_eq!(media.mime_type, "audio/ogg; codecs=opus");
        assert_eq!(media.thumbnail, None);
        assert_eq!(source_of(&media).media_type, MediaKind::Audio);

        let mut song = message.clone();
        song.audio_message.as_option_mut().unwrap().ptt = None;
        assert!(!media_of(&song).voice, "an audio file is not a voice note");
    }

    #[test]
    fn a_video_carries_its_length_size_and_thumbnail() {
        let message = wa::Message {
            video_message: MessageField::some(wa::message::VideoMessage {
                mimetype: Some("video/mp4".to_owned()),
                seconds: Some(65),
                width: Some(720),
                height: Some(1280),
                file_length: Some(3_400_000),
                jpeg_thumbnail: Some(vec![0xFF, 0xD8]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.kind, MediaKind::Video);
        assert_eq!(media.duration_ms, Some(65_000));
        assert_eq!((media.width, media.height), (Some(720), Some(1280)));
        assert_eq!(media.size, Some(3_400_000));
        assert_eq!(media.thumbnail.as_deref(), Some(&[0xFF, 0xD8][..]));

        let round_note = wa::Message {
            ptv_message: message.video_message.clone(),
            ..Default::default()
        };
        assert_eq!(media_of(&round_note).kind, MediaKind::Video);
    }

    #[test]
    fn a_document_carries_its_file_name_and_type() {
        let message = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                mimetype: Some("application/pdf".to_owned()),
                file_name: Some("invoice-0042.pdf".to_owned()),
                file_length: Some(120_000),
                jpeg_thumbnail: Some(vec![1, 2, 3]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.kind, MediaKind::Document);
        assert_eq!(media.mime_type, "application/pdf");
        assert_eq!(media.file_name.as_deref(), Some("invoice-0042.pdf"));
        assert_eq!(media.size, Some(120_000));
        assert_eq!(media.thumbnail.as_deref(), Some(&[1, 2, 3][..]));
    }

    #[test]
    fn a_sticker_is_a_webp_without_a_jpeg_thumbnail() {
        let message = wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                width: Some(512),
                height: Some(512),
                png_thumbnail: Some(vec![0x89, b'P', b'N', b'G']),
                ..Default::default()
            }),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.kind, MediaKind::Sticker);
        assert_eq!(media.mime_type, "image/webp", "the type stickers have");
        assert_eq!((media.width, media.height), (Some(512), Some(512)));
        assert_eq!(media.thumbnail, None);
    }

    #[test]
    fn a_message_without_media_has_none() {
        let info = info("T1", Jid::pn(CUSTOMER));
        assert_eq!(incoming_media(&wa::Message::default(), &info), None);
        let reaction = wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage::default()),
            ..Default::default()
        };
        assert_eq!(incoming_media(&reaction, &info), None);
    }

    #[test]
    fn the_source_holds_what_a_download_and_a_reupload_need() {
        let message = wa::Message {
            image_message: MessageField::some(image()),
            ..Default::default()
        };
        let media = media_of(&message);
        // Stored as JSON: camelCase, bytes in base64.
        assert_eq!(media.source["mediaType"], "image");
        assert_eq!(media.source["directPath"], "/v/t62.7118-24/img");
        assert_eq!(media.source["mediaKey"], BASE64.encode(KEY));
        assert_eq!(media.source["fileEncSha256"], BASE64.encode(ENC_SHA));
        assert_eq!(media.source["messageId"], "3EB0M1");
        assert_eq!(
            media.source["chatJid"],
            format!("{CUSTOMER}@s.whatsapp.net")
        );
        assert_eq!(media.source["fromMe"], false);

        let source = source_of(&media);
        let params = source.download_params().unwrap();
        let sent = image();
        assert_eq!(Some(params.direct_path.as_str()), sent.direct_path());
        assert_eq!(params.media_key.as_deref(), sent.media_key());
        assert_eq!(Some(params.file_sha256.as_slice()), sent.file_sha256());
        assert_eq!(params.file_enc_sha256.as_deref(), sent.file_enc_sha256());
        assert_eq!(Some(params.file_length), sent.file_length());
        assert_eq!(params.media_type, sent.app_info());

        assert_eq!(source.chat_jid.parse::<Jid>().unwrap(), Jid::pn(CUSTOMER));
        assert_eq!(source.participant, None, "a 1:1 chat names no participant");
    }

    #[test]
    fn a_sticker_source_downloads_as_a_sticker() {
        let message = wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                direct_path: Some("/v/t62.15575-24/st".to_owned()),
                media_key: Some(KEY.to_vec()),
                file_enc_sha256: Some(ENC_SHA.to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let params = source_of(&media_of(&message)).download_params().unwrap();
        assert_eq!(params.media_type, MediaType::Sticker);
        assert_eq!(params.file_length, 0, "unknown length: no preallocation");
    }

    #[test]
    fn media_without_a_download_reference_keeps_its_metadata_and_refuses_to_download() {
        let message = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                direct_path: None,
                ..image()
            }),
            ..Default::default()
        };
        let media = media_of(&message);
        assert_eq!(media.width, Some(1280));
        let Err(DownloadError::Failed(reason)) = source_of(&media).download_params() else {
            panic!("expected a failed download");
        };
        assert!(reason.contains("no download reference"), "{reason}");
    }

    #[test]
    fn a_source_that_is_not_ours_is_refused() {
        for bogus in [
            serde_json::Value::Null,
            serde_json::json!({"url": "https://example.com/a.jpg"}),
            serde_json::json!({
                "mediaType": "image", "mediaKey": "not base64!", "messageId": "X",
                "chatJid": "1@s.whatsapp.net", "fromMe": false
            }),
        ] {
            let Err(DownloadError::Failed(reason)) = MediaSource::parse(&bogus) else {
                panic!("{bogus} parsed as a media source");
            };
            assert!(reason.contains("not a WhatsApp media source"), "{reason}");
        }
    }

    #[test]
    fn a_reupload_gives_the_source_a_new_direct_path() {
        let media = media_of(&wa::Message {
            image_message: MessageField::some(image()),
            ..Default::default()
        });
        let source = source_of(&media);
        let renewed = source
            .clone()
            .reuploaded(MediaRetryResult::Success {
                direct_path: "/v/t62.7118-24/renewed".to_owned(),
            })
            .unwrap();
        let renewed = MediaSource::parse(&renewed).unwrap();
        assert_eq!(
            renewed.direct_path.as_deref(),
            Some("/v/t62.7118-24/renewed")
        );
        assert_eq!(
            MediaSource {
                direct_path: source.direct_path.clone(),
                ..renewed
            },
            source,
            "nothing else changes"
        );
        for refused in [
            MediaRetryResult::NotFound,
            MediaRetryResult::DecryptionError,
            MediaRetryResult::GeneralError,
        ] {
            assert!(matches!(
                source.clone().reuploaded(refused),
                Err(DownloadError::Failed(_))
            ));
        }
    }

    /// An error as the crate's download path builds one for a status it refused.
    fn refused(status: u16) -> anyhow::Error {
        anyhow::Error::new(HttpStatusError { status })
            .context(format!("Download failed with status: {status}"))
    }

    #[test]
    fn a_download_the_cdn_answers_404_or_410_has_expired() {
        for status in [404, 410] {
            assert_eq!(
                classify_download_error(&refused(status)),
                DownloadError::Expired
            );
        }
    }

    #[test]
    fn other_download_failures_are_failed_with_their_reason() {
        for err in [
            refused(403),
            refused(503),
            anyhow::anyhow!("invalid MAC signature"),
            anyhow::Error::from(ClientError::NotConnected),
        ] {
            let DownloadError::Failed(reason) = classify_download_error(&err) else {
                panic!("expected failed for {err:#}");
            };
            assert!(reason.starts_with("downloading the media"), "{reason}");
        }
    }

    #[test]
    fn reupload_failures_wait_for_the_connection_only_when_it_is_the_cause() {
        assert_eq!(
            classify_reupload_error(&MediaReuploadError::NotLoggedIn),
            DownloadError::NotConnected
        );
        assert_eq!(
            classify_reupload_error(&MediaReuploadError::Client(ClientError::NotConnected)),
            DownloadError::NotConnected
        );
        assert!(matches!(
            classify_reupload_error(&MediaReuploadError::Timeout),
            DownloadError::Failed(reason) if reason.contains("did not answer")
        ));
        assert!(matches!(
            classify_reupload_error(&MediaReuploadError::Client(ClientError::Iq(
                IqError::ServerError {
                    code: 400,
                    text: "bad-request".to_owned(),
                    error_type: None,
                    backoff: None,
                }
            ))),
            DownloadError::Failed(_)
        ));
    }

    #[test]
    fn an_upload_that_fails_while_connected_is_rejected() {
        let err = refused(500).context("Upload failed 500 body=");
        let SendError::Rejected(reason) = classify_upload_error(&err, MediaKind::Video, true)
        else {
            panic!("expected rejected");
        };
        assert!(
            reason.starts_with("uploading the video to WhatsApp failed"),
            "{reason}"
        );
        assert!(reason.contains("Upload failed 500"), "{reason}");
        assert!(matches!(
            classify_upload_error(&err, MediaKind::Video, false),
            SendError::NotConnected
        ));
    }

    fn uploaded() -> Uploaded {
        Uploaded {
            url: "https://mmg.whatsapp.net/o1/v/t62/abc".to_owned(),
            direct_path: "/o1/v/t62/abc".to_owned(),
            media_key: KEY,
            file_sha256: SHA,
            file_enc_sha256: ENC_SHA,
            file_length: 4096,
            media_key_timestamp: 1_700_000_000,
            streaming_sidecar: Some(vec![5, 5]),
        }
    }

    fn outgoing(kind: MediaKind, mime_type: &'static str) -> OutgoingMedia<'static> {
        OutgoingMedia {
            kind,
            mime_type,
            bytes: b"RIFF....WEBPVP8 ",
            caption: "",
            file_name: None,
            voice: false,
            width: None,
            height: None,
        }
    }

    /// The CDN fields every kind carries, as (url, direct path, key, sha, enc sha, length,
    /// key timestamp).
    type Cdn<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<u64>,
        Option<i64>,
    );

    fn uploaded_cdn() -> Cdn<'static> {
        (
            Some("https://mmg.whatsapp.net/o1/v/t62/abc"),
            Some("/o1/v/t62/abc"),
            Some(&KEY),
            Some(&SHA),
            Some(&ENC_SHA),
            Some(4096),
            Some(1_700_000_000),
        )
    }

    macro_rules! cdn {
        ($proto:expr) => {{
            let p = $proto;
            (
                p.url.as_deref(),
                p.direct_path.as_deref(),
                p.media_key.as_deref(),
                p.file_sha256.as_deref(),
                p.file_enc_sha256.as_deref(),
                p.file_length,
                p.media_key_timestamp,
            )
        }};
    }

    #[test]
    fn an_outgoing_photo_carries_the_upload_caption_type_and_size() {
        let media = OutgoingMedia {
            caption: "new stock",
            width: Some(800),
            height: Some(600),
            ..outgoing(MediaKind::Image, "image/png")
        };
        let message = outgoing_message(uploaded(), &media);
        let image = message.image_message.as_option().expect("an image message");
        assert_eq!(cdn!(image), uploaded_cdn());
        assert_eq!(image.mimetype.as_deref(), Some("image/png"));
        assert_eq!(image.caption.as_deref(), Some("new stock"));
        assert_eq!((image.width, image.height), (Some(800), Some(600)));
        assert!(message.video_message.as_option().is_none());
    }

    #[test]
    fn an_outgoing_video_keeps_the_streaming_sidecar() {
        let media = OutgoingMedia {
            caption: "how to",
            ..outgoing(MediaKind::Video, "video/mp4")
        };
        let message = outgoing_message(uploaded(), &media);
        let video = message.video_message.as_option().expect("a video message");
        assert_eq!(cdn!(video), uploaded_cdn());
        assert_eq!(video.streaming_sidecar.as_deref(), Some(&[5, 5][..]));
        assert_eq!(video.caption.as_deref(), Some("how to"));
        assert_eq!(video.mimetype.as_deref(), Some("video/mp4"));
    }

    #[test]
    fn an_outgoing_voice_note_is_push_to_talk_audio() {
        let media = OutgoingMedia {
            voice: true,
            ..outgoing(MediaKind::Audio, "audio/ogg; codecs=opus")
        };
        let message = outgoing_message(uploaded(), &media);
        let audio = message.audio_message.as_option().expect("an audio message");
        assert_eq!(cdn!(audio), uploaded_cdn());
        assert_eq!(audio.ptt, Some(true));
        assert_eq!(audio.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(audio.streaming_sidecar.as_deref(), Some(&[5, 5][..]));

        let song = outgoing_message(uploaded(), &outgoing(MediaKind::Audio, "audio/mpeg"));
        assert_eq!(song.audio_message.as_option().unwrap().ptt, Some(false));
    }

    #[test]
    fn an_outgoing_document_carries_its_file_name_type_and_caption() {
        let media = OutgoingMedia {
            caption: "your invoice",
            file_name: Some("invoice-0042.pdf"),
            ..outgoing(MediaKind::Document, "application/pdf")
        };
        let message = outgoing_message(uploaded(), &media);
        let document = message
            .document_message
            .as_option()
            .expect("a document message");
        assert_eq!(cdn!(document), uploaded_cdn());
        assert_eq!(document.file_name.as_deref(), Some("invoice-0042.pdf"));
        assert_eq!(document.mimetype.as_deref(), Some("application/pdf"));
        assert_eq!(document.caption.as_deref(), Some("your invoice"));
    }

    #[test]
    fn an_outgoing_sticker_is_a_sticker_message() {
        let media = OutgoingMedia {
            width: Some(512),
            height: Some(512),
            ..outgoing(MediaKind::Sticker, "image/webp")
        };
        let message = outgoing_message(uploaded(), &media);
        let sticker = message
            .sticker_message
            .as_option()
            .expect("a sticker message");
        assert_eq!(cdn!(sticker), uploaded_cdn());
        assert_eq!(sticker.mimetype.as_deref(), Some("image/webp"));
        assert_eq!((sticker.width, sticker.height), (Some(512), Some(512)));
        assert_eq!(sticker.is_animated, Some(false));
        assert!(message.image_message.as_option().is_none());
    }

    #[test]
    fn an_empty_caption_is_left_out() {
        let message = outgoing_message(uploaded(), &outgoing(MediaKind::Image, "image/jpeg"));
        assert_eq!(message.image_message.as_option().unwrap().caption, None);
    }
}
