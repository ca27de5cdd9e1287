//! `/api/integrations/whatsapp/*`: sending to a number, and — with the simulated backend
//! only — the `simulate/*` endpoints that stand in for the WhatsApp network (404 otherwise).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{CurrentUser, TenantScope};
use super::json::{ApiJson, ApiResult};
use super::paging::Page;
use crate::chat::inbox::Recipient;
use crate::chat::{Message, normalize_phone, store, validate_content};
use crate::config::BackendKind;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::whatsapp::sessions::render_qr;
use crate::whatsapp::simulated::Simulated;
use crate::whatsapp::{
    InboundEvent, IncomingMedia, IncomingMessage, Ingested, MediaKind, ReceiptKind, WhatsappStatus,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(simulate_incoming))
        .routes(routes!(simulate_receipt))
        .routes(routes!(simulate_scan))
        .routes(routes!(simulate_unlink))
        .routes(routes!(list_integrations))
        .routes(routes!(status))
        .routes(routes!(toggle))
        .routes(routes!(pair_code))
        .routes(routes!(logout))
        .routes(routes!(qr_svg))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendToNumber {
    /// The contact's number.
    #[schema(schema_with = super::openapi::fields::phone)]
    pub to: String,
    #[schema(schema_with = super::openapi::fields::content)]
    pub content: String,
}

/// Sends a text to a number, opening its conversation if there is none (stored `pending`, 201).
#[utoipa::path(post, path = "/api/integrations/whatsapp/send", tag = "whatsapp",
    security(("bearer" = [])),
    request_body = SendToNumber,
    responses(
        (status = 201, body = Message),
        (status = 401, body = ErrorBody),
        (status = 422, description = "invalid number or content", body = ErrorBody),
    ))]
async fn send(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(req): ApiJson<SendToNumber>,
) -> ApiResult<(StatusCode, ApiJson<Message>)> {
    let to = Recipient::Number(req.to);
    let message = state
        .inbox
        .send(&scope.db, scope.caller.user.id, to, req.content)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(message)))
}

/// The simulated backend, or 404 when the real one serves.
fn simulated(state: &AppState) -> Result<Arc<Simulated>, ApiError> {
    state.simulated.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "simulation endpoints exist only with AEZEN_WHATSAPP=simulated",
        )
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedIncoming {
    /// The contact's number.
    #[schema(schema_with = super::openapi::fields::phone)]
    pub from: String,
    /// The contact's WhatsApp display name.
    pub push_name: Option<String>,
    #[schema(schema_with = super::openapi::fields::content)]
    pub content: String,
    /// WhatsApp's message id; give the same id twice to simulate a redelivery. Generated when
    /// absent. 1 to 128 characters, not blank.
    #[schema(min_length = 1, max_length = 128, pattern = r"\S")]
    pub id: Option<String>,
    /// Sent from the tenant's own phone (stored as an agent message to `from`).
    #[serde(default)]
    pub from_me: bool,
    /// A media message: its kind (`content` is then the caption, and may be empty). With
    /// `media` but no `type`: a document.
    #[serde(rename = "type")]
    pub kind: Option<MediaKind>,
    /// The item's bytes, base64. Stored "on WhatsApp's servers" and fetched after the
    /// message is stored, as the real backend does. None (or empty) with a `type`: a message
    /// that carried no way to fetch its bytes (stored as `unavailable`).
    #[schema(format = Byte)]
    pub media: Option<String>,
    /// The declared MIME type (default: read from the bytes).
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    #[serde(default)]
    pub voice: bool,
    /// Audio or video length, in ms.
    #[serde(default, deserialize_with = "super::json::integer")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 86_400_000)]
    pub duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "super::json::integer")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 65_535)]
    pub width: Option<i64>,
    #[serde(default, deserialize_with = "super::json::integer")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 65_535)]
    pub height: Option<i64>,
    /// The JPEG preview, base64.
    #[schema(format = Byte)]
    pub thumbnail: Option<String>,
    /// Downloads of the item that fail (a network error) before one succeeds.
    #[serde(default, deserialize_with = "super::json::integer")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100)]
    pub fail_downloads: Option<i64>,
    /// WhatsApp's copy has expired: the download fails until the phone is asked to upload it
    /// again (which the simulated phone does).
    #[serde(default)]
    pub expired: bool,
    /// The size the message declares (default: the bytes' length); more than
    /// `--media-max-bytes` makes the item `unavailable`.
    #[serde(default, deserialize_with = "super::json::integer")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub declared_size: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedIncomingResult {
    /// False when the id was already stored (a redelivery: nothing changed).
    pub stored: bool,
    /// The stored message (absent for a redelivery).
    pub message: Option<Message>,
}

/// SIMULATED: WhatsApp delivers a message to the caller's tenant. Answers once it is stored.
#[utoipa::path(post, path = "/api/integrations/whatsapp/simulate/incoming", tag = "whatsapp (simulated)",
    security(("bearer" = [])),
    request_body = SimulatedIncoming,
    responses(
        (status = 201, description = "stored", body = SimulatedIncomingResult),
        (status = 200, description = "redelivery of a stored id: nothing changed", body = SimulatedIncomingResult),
        (status = 401, body = ErrorBody),
        (status = 404, description = "not the simulated backend", body = ErrorBody),
        (status = 422, description = "invalid number or content", body = ErrorBody),
        (status = 503, description = "`not_stored` (the message could not be stored) or `tenant_unavailable`", body = ErrorBody),
    ))]
async fn simulate_incoming(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(req): ApiJson<SimulatedIncoming>,
) -> ApiResult<(StatusCode, ApiJson<SimulatedIncomingResult>)> {
    let backend = simulated(&state)?;
    let contact_number = normalize_phone("from", &req.from)?;
    let media = simulated_media(&backend, &req)?;
    if media.is_none() || !req.content.is_empty() {
        validate_content("content", &req.content)?;
    }
    let whatsapp_id = match req.id {
        Some(id) if id.trim().is_empty() || id.chars().count() > 128 => {
            return Err(ApiError::validation("id must be 1 to 128 characters"));
        }
        Some(id) => id,
        None => format!("SIMULATED-IN-{}", Uuid::new_v4().simple()),
    };
    let (reply, stored) = oneshot::channel();
    let message = IncomingMessage {
        whatsapp_id,
        contact_number,
        push_name: req.push_name.filter(|n| !n.trim().is_empty()),
        content: req.content,
        from_me: req.from_me,
        media,
        timestamp: crate::chat::now(),
    };
    backend
        .inject(
            scope.caller.tenant_id(),
            InboundEvent::Message {
                message,
                stored: Some(reply),
            },
        )
        .await;
    let outcome = stored.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_stored",
            "the message could not be stored; WhatsApp would redeliver it",
        )
    })?;
    Ok(match outcome {
        Ingested::Stored(id) => {
            let message = scope
                .db
                .run(move |conn| Ok(store::find_message(conn, id)?))
                .await?
                .ok_or_else(|| ApiError::internal("simulate incoming", "stored message gone"))?;
            (
                StatusCode::CREATED,
                ApiJson(SimulatedIncomingResult {
                    stored: true,
                    message: Some(message),
                }),
            )
        }
        Ingested::Duplicate => (
            StatusCode::OK,
            ApiJson(SimulatedIncomingResult {
                stored: false,
                message: None,
            }),
        ),
    })
}

/// The media item of a simulated incoming message, its bytes stashed for the download.
fn simulated_media(
    backend: &Simulated,
    req: &SimulatedIncoming,
) -> Result<Option<IncomingMedia>, ApiError> {
    use base64::Engine;
    let base64 = base64::engine::general_purpose::STANDARD;
    let bounded = |field: &str, value: Option<i64>, max: i64| match value {
        Some(v) if !(0..=max).contains(&v) => Err(ApiError::validation(format!(
            "{field} must be between 0 and {max}"
        ))),
        v => Ok(v.and_then(|v| u64::try_from(v).ok())),
    };
    let width = bounded("width", req.width, 65_535)?.map(|v| v as u32);
    let height = bounded("height", req.height, 65_535)?.map(|v| v as u32);
    let duration_ms = bounded("durationMs", req.duration_ms, 86_400_000)?;
    let fail_downloads = bounded("failDownloads", req.fail_downloads, 100)?.unwrap_or(0) as u32;
    let declared_size = bounded("declaredSize", req.declared_size, i64::MAX)?;
    let encoded = req.media.as_deref().unwrap_or_default();
    let kind = match (req.kind, encoded.is_empty()) {
        (None, true) => return Ok(None),
        (Some(kind), _) => kind,
        (None, false) => MediaKind::Document,
    };
    let bytes = base64
        .decode(encoded)
        .map_err(|e| ApiError::validation(format!("media is not valid base64: {e}")))?;
    let thumbnail = req
        .thumbnail
        .as_deref()
        .map(|t| base64.decode(t))
        .transpose()
        .map_err(|e| ApiError::validation(format!("thumbnail is not valid base64: {e}")))?;
    let mime_type = match &req.mime_type {
        Some(mime) => mime.clone(),
        None => infer::get(&bytes)
            .map_or("application/octet-stream", |t| t.mime_type())
            .to_owned(),
    };
    let size = declared_size.unwrap_or(bytes.len() as u64);
    // No bytes: a message that carried no way to fetch them.
    let source = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        backend.stash_media(bytes, fail_downloads, req.expired)
    };
    Ok(Some(IncomingMedia {
        kind,
        mime_type,
        file_name: req.file_name.clone(),
        size: Some(size),
        width,
        height,
        duration_ms,
        voice: req.voice,
        thumbnail,
        source,
    }))
}

/// A receipt status the simulation can report.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedReceipt {
    /// AEZEN's id of a message the tenant sent.
    pub message_id: Uuid,
    pub status: ReceiptStatus,
}

/// SIMULATED: the contact's phone reports a sent message delivered or read. Accepted (202);
/// the status change arrives as a `message_status` event.
#[utoipa::path(post, path = "/api/integrations/whatsapp/simulate/receipt", tag = "whatsapp (simulated)",
    security(("bearer" = [])),
    request_body = SimulatedReceipt,
    responses(
        (status = 202, description = "receipt delivered to AEZEN"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such message in the caller's tenant, or not the simulated backend", body = ErrorBody),
        (status = 409, description = "the message has not been sent yet (no WhatsApp id)", body = ErrorBody),
    ))]
async fn simulate_receipt(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(req): ApiJson<SimulatedReceipt>,
) -> ApiResult<StatusCode> {
    let backend = simulated(&state)?;
    let id = req.message_id;
    let message = scope
        .db
        .run(move |conn| Ok(store::find_message(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    let whatsapp_id = message.whatsapp_id.ok_or_else(|| {
        ApiError::conflict(
            "not_sent_yet",
            "the message has no WhatsApp id yet (still pending or failed)",
        )
    })?;
    let status = match req.status {
        ReceiptStatus::Delivered => ReceiptKind::Delivered,
        ReceiptStatus::Read => ReceiptKind::Read,
    };
    backend
        .inject(
            scope.caller.tenant_id(),
            InboundEvent::Receipt {
                whatsapp_ids: vec![whatsapp_id],
                status,
            },
        )
        .await;
    Ok(StatusCode::ACCEPTED)
}

/// SIMULATED: the phone scans the QR code (or enters the pairing code): the session links and
/// connects; a `whatsapp_status` event with state `connected` follows, and queued messages go out.
#[utoipa::path(post, path = "/api/integrations/whatsapp/simulate/scan", tag = "whatsapp (simulated)",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "scanned; the session connects"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "only an owner or admin may link", body = ErrorBody),
        (status = 404, description = "not the simulated backend", body = ErrorBody),
        (status = 409, description = "no QR or pairing code is being shown", body = ErrorBody),
    ))]
async fn simulate_scan(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    simulated(&state)?
        .scan(caller.tenant_id())
        .await
        .map_err(|e| ApiError::conflict("not_pairing", e.0))?;
    Ok(StatusCode::ACCEPTED)
}

/// SIMULATED: the phone removes this linked device: the session is logged out (its folder is
/// deleted); sends stay queued (`pending`) until a phone is linked again.
#[utoipa::path(post, path = "/api/integrations/whatsapp/simulate/unlink", tag = "whatsapp (simulated)",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "unlinked; the session logs out"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "only an owner or admin may unlink", body = ErrorBody),
        (status = 404, description = "not the simulated backend", body = ErrorBody),
        (status = 409, description = "the session is not running", body = ErrorBody),
    ))]
async fn simulate_unlink(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<StatusCode> {
    caller.require_manager()?;
    simulated(&state)?
        .unlink(caller.tenant_id())
        .await
        .map_err(|e| ApiError::conflict("not_running", e.0))?;
    Ok(StatusCode::ACCEPTED)
}

// ---- the session life cycle --------------------------------------------------------------

/// An integration card of the dashboard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    #[schema(example = "whatsapp")]
    pub id: &'static str,
    #[schema(example = "WhatsApp")]
    pub name: &'static str,
    /// `real` or `simulated`.
    pub backend: &'static str,
    /// On (connecting, pairing or connected) or off.
    pub enabled: bool,
    pub status: WhatsappStatus,
}

/// The tenant's integrations (today: WhatsApp) with their state.
#[utoipa::path(get, path = "/api/integrations", tag = "whatsapp",
    security(("bearer" = [])),
    responses((status = 200, body = Page<Integration>), (status = 401, body = ErrorBody)))]
async fn list_integrations(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiJson<Page<Integration>> {
    let status = state.sessions.status(caller.tenant_id());
    let backend = match state.whatsapp.kind() {
        BackendKind::Real => "real",
        BackendKind::Simulated => "simulated",
    };
    ApiJson(Page::whole(vec![Integration {
        id: "whatsapp",
        name: "WhatsApp",
        backend,
        enabled: status.state.is_on(),
        status,
    }]))
}

/// The WhatsApp session's state.
#[utoipa::path(get, path = "/api/integrations/whatsapp/status", tag = "whatsapp",
    security(("bearer" = [])),
    responses((status = 200, body = WhatsappStatus), (status = 401, body = ErrorBody)))]
async fn status(State(state): State<AppState>, caller: CurrentUser) -> ApiJson<WhatsappStatus> {
    ApiJson(state.sessions.status(caller.tenant_id()))
}

/// Turns WhatsApp on (connect: resume a linked session, or show QR codes) or off (disconnect,
/// keeping the link so turning it on again needs no QR code). Owner/admin only.
#[utoipa::path(post, path = "/api/integrations/whatsapp/toggle", tag = "whatsapp",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the state right after the toggle; events follow", body = WhatsappStatus),
        (status = 401, body = ErrorBody),
        (status = 403, description = "only an owner or admin may toggle", body = ErrorBody),
    ))]
async fn toggle(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<ApiJson<WhatsappStatus>> {
    caller.require_manager()?;
    Ok(ApiJson(state.sessions.toggle(caller.tenant_id()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairCodeRequest {
    /// The phone's own number.
    #[schema(schema_with = super::openapi::fields::phone)]
    pub phone_number: String,
}

/// Links by an 8-character code typed on the phone instead of a QR code. The code arrives in
/// the `whatsapp_status` event (state `pair_code`) and the status. Owner/admin only.
#[utoipa::path(post, path = "/api/integrations/whatsapp/pair-code", tag = "whatsapp",
    security(("bearer" = [])),
    request_body = PairCodeRequest,
    responses(
        (status = 200, description = "the state right after the request; the code follows", body = WhatsappStatus),
        (status = 401, body = ErrorBody),
        (status = 403, description = "only an owner or admin may link", body = ErrorBody),
        (status = 409, description = "already connected", body = ErrorBody),
        (status = 422, description = "invalid phone number", body = ErrorBody),
    ))]
async fn pair_code(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(req): ApiJson<PairCodeRequest>,
) -> ApiResult<ApiJson<WhatsappStatus>> {
    caller.require_manager()?;
    let phone = normalize_phone("phoneNumber", &req.phone_number)?;
    Ok(ApiJson(
        state.sessions.pair_code(caller.tenant_id(), phone).await?,
    ))
}

/// Unlinks the device from the phone and deletes the session. Owner/admin only.
#[utoipa::path(post, path = "/api/integrations/whatsapp/logout", tag = "whatsapp",
    security(("bearer" = [])),
    responses(
        (status = 200, body = WhatsappStatus),
        (status = 401, body = ErrorBody),
        (status = 403, description = "only an owner or admin may log out", body = ErrorBody),
    ))]
async fn logout(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<ApiJson<WhatsappStatus>> {
    caller.require_manager()?;
    Ok(ApiJson(state.sessions.logout(caller.tenant_id()).await?))
}

/// The QR code being shown, as an SVG image (404 when there is none). The `qr` Socket.IO event
/// carries the same image.
#[utoipa::path(get, path = "/api/integrations/whatsapp/qr.svg", tag = "whatsapp",
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "image/svg+xml", body = String),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no QR code is being shown", body = ErrorBody),
    ))]
async fn qr_svg(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> ApiResult<impl IntoResponse> {
    let code = state
        .sessions
        .current_qr(caller.tenant_id())
        .ok_or_else(|| ApiError::not_found("QR code"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render_qr(&code),
    ))
}
