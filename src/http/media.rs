//! `/api/media/*` and `send-media`: serving a tenant's media items, and sending one
//! (docs/MEDIA.md).
//!
//! An item is served to a member of its tenant (bearer token, or an API key with
//! `conversations:read`), or to anyone holding a signed link to it ([`crate::media::link`]),
//! which is how `<img src>` loads it. Another tenant's item is not in the caller's file: 404.

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{CurrentUser, TenantScope};
use super::json::{ApiJson, ApiPath, ApiResult, not_modified};
use crate::chat::Message;
use crate::chat::inbox::Upload;
use crate::db::Db;
use crate::error::{ApiError, ErrorBody};
use crate::ids::TenantId;
use crate::media::cache::{self, HotMedia};
use crate::media::link::{self, Variant};
use crate::media::sniff::sniff;
use crate::media::store::{self, Servable};
use crate::media::{MAX_CAPTION_CHARS, Media, MediaKind, MediaStatus};
use crate::state::AppState;
use crate::tenancy::TenantDb;

/// The route of uploads, whose body limit is `--media-max-bytes` (plus [`FORM_OVERHEAD`])
/// instead of the API's.
pub const SEND_MEDIA_ROUTE: &str = "/api/conversations/{id}/send-media";
/// What a multipart body may hold beyond its file: boundaries, part headers, the caption.
pub const FORM_OVERHEAD: u64 = 64 * 1024;

/// Items up to [`cache::MAX_ITEM`] are read in one go (and kept in the hot cache); larger
/// ones are streamed in slices of [`SLICE`], each read with its own short checkout of a
/// connection, so a slow client never holds a connection or a read transaction, and memory
/// holds one slice per response.
const SLICE: usize = 128 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_media))
        .routes(routes!(media_links))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(send_media))
                // The upload counts its own bytes against --media-max-bytes.
                .layer(DefaultBodyLimit::disable()),
        )
}

/// Which bytes of an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariantParam {
    #[default]
    Original,
    Thumbnail,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// `thumbnail`: the JPEG preview WhatsApp sent with a photo or video.
    #[serde(default)]
    #[param(inline)]
    pub variant: VariantParam,
    /// Signed links only: the tenant the link was signed for.
    pub tenant: Option<TenantId>,
    /// Signed links only: when the link expires (Unix seconds).
    pub expires: Option<i64>,
    /// Signed links only.
    pub signature: Option<String>,
}

/// Who may read an item: the caller's own tenant file (token or key), or the file a signed
/// link names, once the link checks out against that file's key ([`MediaAccess::open`]).
struct MediaAccess {
    db: TenantDb,
    variant: Variant,
    /// A signed link's expiry and signature, still to be checked.
    link: Option<(i64, String)>,
}

impl FromRequestParts<AppState> for MediaAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query: MediaQuery = serde_urlencoded_query(parts)?;
        let variant = match query.variant {
            VariantParam::Original => Variant::Original,
            VariantParam::Thumbnail => Variant::Thumbnail,
        };
        let (tenant, link) = match (query.tenant, query.expires, query.signature) {
            (Some(tenant), Some(expires), Some(signature)) => (tenant, Some((expires, signature))),
            (None, None, None) => {
                let caller = CurrentUser::from_request_parts(parts, state).await?;
                (caller.tenant_id(), None)
            }
            // Part of a link is no link: refused as one that does not check out.
            _ => return Err(ApiError::forbidden(link::LinkError::Invalid.to_string())),
        };
        Ok(Self {
            db: TenantDb::new(&state.tenants, tenant),
            variant,
            link,
        })
    }
}

impl MediaAccess {
    /// The tenant's pool. A link naming a tenant that does not exist is refused like a
    /// forged one.
    async fn pool(&self) -> Result<Db, ApiError> {
        match self.db.open().await {
            Ok(db) => Ok(db.clone()),
            Err(err) if self.link.is_some() && err.status() == StatusCode::NOT_FOUND => {
                Err(ApiError::forbidden(link::LinkError::Invalid.to_string()))
            }
            Err(err) => Err(err),
        }
    }
}

/// Checks a signed link (if that is the way in) against the key in the tenant's file, on
/// the connection that then reads the item.
fn check_link(
    conn: &rusqlite::Connection,
    link: Option<&(i64, String)>,
    tenant: TenantId,
    id: Uuid,
    variant: Variant,
) -> Result<(), ApiError> {
    let Some((expires, signature)) = link else {
        return Ok(());
    };
    let signer = store::signer(conn)?;
    link::verify(
        &signer.key,
        tenant,
        id,
        variant,
        *expires,
        signature,
        crate::chat::now(),
    )
    .map_err(|err| ApiError::forbidden(err.to_string()))
}

/// The whole bytes of a small item: from the hot cache, else read from the file and kept.
fn small_item(
    conn: &rusqlite::Connection,
    hot: &HotMedia,
    tenant: TenantId,
    blob: i64,
    sha256: &[u8],
    size: u64,
) -> rusqlite::Result<Bytes> {
    if let Some(bytes) = hot.get(tenant, sha256) {
        return Ok(bytes);
    }
    let bytes = Bytes::from(store::read_slice(conn, blob, 0, size as usize)?);
    hot.insert(tenant, sha256, bytes.clone());
    Ok(bytes)
}

fn serde_urlencoded_query(parts: &Parts) -> Result<MediaQuery, ApiError> {
    axum::extract::Query::<MediaQuery>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .map_err(|err| ApiError::bad_request("invalid_query", err.body_text()))
}

/// The bytes of a media item (or its thumbnail), with `ETag` / `If-None-Match` → 304 and
/// single `Range` requests → 206 so audio and video seek. `Content-Disposition` is
/// `inline` for images, audio, video and stickers and `attachment` for documents.
#[utoipa::path(get, path = "/api/media/{id}", tag = "media",
    security(("bearer" = []), ("apiKey" = ["conversations:read"]), ()),
    params(("id" = Uuid, Path, description = "media id"), MediaQuery,
        ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`; several ranges are answered with the whole item"),
        ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer"),
        ("If-Range" = Option<String>, Header, description = "serve the range only if the ETag still matches")),
    responses(
        (status = 200, description = "the bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the requested range (`Content-Range`)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "not modified (the ETag matches)"),
        (status = 401, description = "neither a signed link nor a bearer token", body = ErrorBody),
        (status = 403, description = "a signed link that is incomplete, invalid or expired", body = ErrorBody),
        (status = 404, description = "no such item (or thumbnail) in this tenant", body = ErrorBody),
        (status = 409, description = "`media_not_ready`: still being fetched from WhatsApp, or the last fetch failed (retried)", body = ErrorBody),
        (status = 410, description = "`media_unavailable`: never fetched (too large, or not fetchable); the reason says why", body = ErrorBody),
        (status = 416, description = "the range is outside the item", body = ErrorBody),
    ))]
async fn get_media(
    State(state): State<AppState>,
    access: MediaAccess,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let db = access.pool().await?;
    let tenant = access.db.tenant();
    let (variant, link) = (access.variant, access.link);
    if variant == Variant::Thumbnail {
        let jpeg = db
            .run(move |conn| {
                check_link(conn, link.as_ref(), tenant, id, variant)?;
                Ok(store::thumbnail(conn, id)?)
            })
            .await?
            .ok_or_else(|| ApiError::not_found("thumbnail"))?;
        let etag = etag_of(&sha2_of(&jpeg), "t");
        if not_modified(&headers, &etag) {
            return Ok(not_modified_response(&etag));
        }
        let mut response = Body::from(jpeg).into_response();
        set_headers(
            &mut response,
            "image/jpeg",
            &etag,
            None,
            MediaKind::Image,
            id,
        );
        return Ok(response);
    }
    // One hand-off to a connection checks the link, reads the item's row and, for a small
    // item asked for without a condition, its bytes (from the hot cache if they are there).
    let conditional = headers.contains_key(header::IF_NONE_MATCH);
    let hot = state.hot_media.clone();
    let (item, bytes) = db
        .run(move |conn| {
            check_link(conn, link.as_ref(), tenant, id, variant)?;
            let item = store::servable(conn, id)?.ok_or_else(|| ApiError::not_found("media"))?;
            let bytes = match (item.blob, item.sha256.as_deref()) {
                (Some(blob), Some(sha)) if item.size <= cache::MAX_ITEM && !conditional => {
                    Some(small_item(conn, &hot, tenant, blob, sha, item.size)?)
                }
                _ => None,
            };
            Ok((item, bytes))
        })
        .await?;
    let (Some(blob), Some(sha)) = (item.blob, item.sha256.clone()) else {
        return Err(not_ready(&item));
    };
    let etag = etag_of(&sha, "o");
    if not_modified(&headers, &etag) {
        return Ok(not_modified_response(&etag));
    }
    let size = item.size;
    let range = requested_range(&headers, &etag, size)?;
    let (start, len) = range
        .clone()
        .map_or((0, size), |r| (*r.start(), r.end() - r.start() + 1));
    let body = if size <= cache::MAX_ITEM {
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => {
                let hot = state.hot_media.clone();
                db.run(move |conn| Ok(small_item(conn, &hot, tenant, blob, &sha, size)?))
                    .await?
            }
        };
        Body::from(bytes.slice(start as usize..(start + len) as usize))
    } else {
        stream(db, blob, start, len)
    };
    let mut response = body.into_response();
    if let Some(range) = range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {}-{}/{size}", range.start(), range.end());
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&content_range).expect("digits and dashes"),
        );
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    set_headers(
        &mut response,
        &item.mime_type,
        &etag,
        Some(&file_name(&item, id)),
        item.kind,
        id,
    );
    Ok(response)
}

/// A body that reads `len` bytes of `blob` from `start`, one slice at a time as the client
/// takes them.
fn stream(db: Db, blob: i64, start: u64, len: u64) -> Body {
    let end = start + len;
    let slices = futures::stream::try_unfold(start, move |at| {
        let db = db.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let take = (end - at).min(SLICE as u64) as usize;
            let slice = db
                .run(move |conn| Ok(store::read_slice(conn, blob, at, take)?))
                .await
                .map_err(|err| std::io::Error::other(err.to_string()))?;
            if slice.is_empty() {
                return Err(std::io::Error::other("media blob ended early"));
            }
            let next = at + slice.len() as u64;
            Ok(Some((slice, next)))
        }
    });
    Body::from_stream(slices)
}

/// The error for an item without bytes: 409 while it is (re)fetched, 410 for good.
fn not_ready(item: &Servable) -> ApiError {
    let why = item
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match item.status {
        MediaStatus::Unavailable => ApiError::new(
            StatusCode::GONE,
            "media_unavailable",
            format!("this media item was not fetched from WhatsApp{why}"),
        ),
        _ => ApiError::new(
            StatusCode::CONFLICT,
            "media_not_ready",
            format!("this media item is still being fetched from WhatsApp{why}"),
        ),
    }
}

fn sha2_of(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// A strong ETag from the content's hash (the same bytes have the same tag).
fn etag_of(sha: &[u8], variant: &str) -> String {
    format!("\"{variant}-{}\"", hex::encode(&sha[..16.min(sha.len())]))
}

fn not_modified_response(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The one range asked for, if any and if it still applies (`If-Range`). Several ranges, or
/// a header that does not parse, are answered with the whole item (RFC 9110 §14.2 allows
/// ignoring `Range`); a range outside the item is 416.
fn requested_range(
    headers: &HeaderMap,
    etag: &str,
    size: u64,
) -> Result<Option<std::ops::RangeInclusive<u64>>, ApiError> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && if_range.trim() != etag
    {
        return Ok(None);
    }
    let Ok(parsed) = http_range_header::parse_range_header(value) else {
        return Ok(None);
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges.into_iter().next()),
        Ok(_) => Ok(None),
        Err(_) => Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the range {value:?} is outside the item's {size} bytes"),
        )),
    }
}

fn set_headers(
    response: &mut Response,
    mime_type: &str,
    etag: &str,
    file_name: Option<&str>,
    kind: MediaKind,
    id: Uuid,
) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Private: the bytes are the tenant's. The content under one URL never changes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    // Nothing served here runs as a page, whatever its bytes.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    let name = file_name.map_or_else(
        || format!("{}-{}", kind.as_str(), id.simple()),
        str::to_owned,
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(kind.is_inline(), &name),
    );
}

/// `inline` or `attachment`, with the file name made safe: an ASCII `filename` (anything
/// else, quotes, slashes and controls become `_`) and the exact name as RFC 5987's
/// `filename*`.
fn content_disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let disposition = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

/// The name an item is saved under: its own, else its kind and id with an extension.
fn file_name(item: &Servable, id: Uuid) -> String {
    if let Some(name) = item.file_name.as_deref().filter(|n| !n.trim().is_empty()) {
        return name.to_owned();
    }
    let extension = match item.mime_type.split(';').next().unwrap_or("").trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/m4a" | "audio/mp4" => "m4a",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    };
    format!("{}-{}.{extension}", item.kind.as_str(), id.simple())
}

/// Fresh signed links to an item (`url`, `thumbnailUrl`), for a page whose links expired.
#[utoipa::path(get, path = "/api/media/{id}/links", tag = "media",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    params(("id" = Uuid, Path, description = "media id")),
    responses(
        (status = 200, body = Media),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such item in the caller's tenant", body = ErrorBody),
    ))]
async fn media_links(scope: TenantScope, ApiPath(id): ApiPath<Uuid>) -> ApiResult<ApiJson<Media>> {
    let media = scope
        .db
        .run(move |conn| Ok(store::find(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    Ok(ApiJson(media))
}

/// The form of `send-media` (multipart/form-data).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the request schema; the handler reads the parts one by one"
)]
pub struct SendMediaForm {
    /// The file: one, not empty, at most `--media-max-bytes`. Its type is read from its
    /// bytes; a part `Content-Type` that contradicts them is refused (415).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Shown under the item; at most 1,024 characters. Other parts are ignored.
    #[schema(nullable = false, max_length = 1024)]
    caption: Option<String>,
    /// `true`: send an Ogg Opus file as a voice note.
    #[schema(nullable = false)]
    voice: Option<bool>,
}

/// Sends a photo, video, voice note, audio file, document or sticker: stored with its
/// message as `pending` (201), then uploaded and sent by the tenant's outbox like a text;
/// `message_status` events follow.
#[utoipa::path(post, path = "/api/conversations/{id}/send-media", tag = "conversations",
    security(("bearer" = []), ("apiKey" = ["messages:send"])),
    params(("id" = Uuid, Path, description = "conversation id")),
    request_body(content = SendMediaForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Message),
        (status = 400, description = "not a multipart body, no file, an empty file, or two files", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such conversation in the caller's tenant", body = ErrorBody),
        (status = 413, description = "the file is larger than --media-max-bytes", body = ErrorBody),
        (status = 415, description = "`media_type_mismatch`: the declared type is not what the bytes are", body = ErrorBody),
        (status = 422, description = "a caption over the limit or on audio or a sticker, a bad `voice`, or `voice=true` on a file that is not Ogg Opus", body = ErrorBody),
    ))]
async fn send_media(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, ApiJson<Message>)> {
    let mut form = form.map_err(|err| {
        ApiError::bad_request(
            "invalid_body",
            format!("expected a multipart/form-data body: {}", err.body_text()),
        )
    })?;
    let max = state.config.media_max_bytes;
    let mut file: Option<(Vec<u8>, Option<String>, Option<String>)> = None;
    let (mut caption, mut voice) = (String::new(), false);
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        match field.name().unwrap_or("") {
            "file" if file.is_some() => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "only one file may be sent per message",
                ));
            }
            "file" => {
                let declared = field.content_type().map(str::to_owned);
                let name = field.file_name().map(clean_file_name);
                file = Some((read_file(field, max).await?, declared, name));
            }
            "caption" => caption = read_text(field, "caption").await?,
            "voice" => {
                voice = match read_text(field, "voice").await?.trim() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::validation(format!(
                            "voice must be true or false, not {other:?}"
                        )));
                    }
                }
            }
            // Other parts are ignored, as HTML forms' extra fields are.
            _ => {}
        }
    }
    let (bytes, declared, file_name) = file.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_body",
            "file is required (a multipart part named file)",
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "file is empty"));
    }
    let caption = caption.trim().to_owned();
    if !caption.is_empty() {
        crate::text::body("caption", &caption, MAX_CAPTION_CHARS)?;
    }
    let sniffed = sniff(&bytes, declared.as_deref(), voice)?;
    if !caption.is_empty() && matches!(sniffed.kind, MediaKind::Audio | MediaKind::Sticker) {
        return Err(ApiError::validation(format!(
            "a caption cannot go with {} (WhatsApp shows none); send it as a text",
            if sniffed.kind == MediaKind::Audio {
                "audio"
            } else {
                "a sticker"
            }
        )));
    }
    // A name only for what is saved as a file; a photo's "IMG_2041.jpg" says nothing.
    let file_name = file_name
        .filter(|_| matches!(sniffed.kind, MediaKind::Document | MediaKind::Audio) && !voice);
    let upload = Upload {
        bytes,
        sniffed,
        caption,
        file_name,
        voice,
    };
    let message = state
        .inbox
        .send_media(&scope.db, scope.caller.user.id, id, upload)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(message)))
}

fn form_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::bad_request(
        "invalid_body",
        format!("the multipart body could not be read: {}", err.body_text()),
    )
}

/// A file part's bytes, refused as soon as they pass `max`.
async fn read_file(mut field: Field<'_>, max: u64) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "file is larger than the {} limit (--media-max-bytes)",
            human_size(max)
        ),
    )
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes}-byte")
    }
}

/// A text part (caption, voice), bounded.
async fn read_text(field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let bytes = read_file(field, 16 * 1024)
        .await
        .map_err(|_| ApiError::validation(format!("{name} is too long")))?;
    String::from_utf8(bytes).map_err(|_| ApiError::validation(format!("{name} must be UTF-8 text")))
}

/// A client's file name, without any path and bounded (the name is shown and offered on
/// download, never used as a path).
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_name_is_safe_in_the_header_and_exact_in_filename_star() {
        let value = content_disposition(false, "résumé \"final\"/v2.pdf");
        let text = value.to_str().unwrap();
        assert!(
            text.starts_with("attachment; filename=\"r_sum_ _final__v2.pdf\""),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%2Fv2.pdf"),
            "{text}"
        );
        assert!(
            content_disposition(true, "a.jpg")
                .to_str()
                .unwrap()
                .starts_with("inline")
        );
    }

    #[test]
    fn a_client_file_name_loses_its_path() {
        assert_eq!(
            clean_file_name("C:\\Users\\ana\\invoice.pdf"),
            "invoice.pdf"
        );
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("  "), "file");
    }
}
