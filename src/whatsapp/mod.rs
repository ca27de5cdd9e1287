//! WhatsApp, behind the project's own trait.
//!
//! The rest of AEZEN talks to [`WhatsApp`] (send a text, mark messages read, is a tenant
//! connected) and consumes a stream of [`Inbound`] events (messages, receipts, connection
//! changes) from one channel. Two backends implement it:
//! - `simulated` ([`simulated::Simulated`]): no network; driven by the
//!   `/api/integrations/whatsapp/simulate/*` endpoints. For trying the product offline and for
//!   tests. Logged loudly at start-up.
//! - `real` ([`real::RealWhatsApp`]): the whatsapp-rust adapter, one client per tenant.
//!
//! [`sessions`] keeps each tenant's session state and turns backend reports into events.

pub mod real;
pub mod sessions;
pub mod simulated;

use std::path::Path;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::config::BackendKind;
use crate::ids::TenantId;
pub use crate::media::MediaKind;

/// Why a send did not go out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The tenant's session is not connected: keep the message queued.
    #[error("the WhatsApp session is not connected")]
    NotConnected,
    /// WhatsApp refused the message for good: mark it failed.
    #[error("WhatsApp refused the message: {0}")]
    Rejected(String),
}

/// How a new device links to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkMethod {
    /// Show QR codes to scan (`qr` events).
    Qr,
    /// Show an 8-character code to type on the phone with this number (E.164).
    PairCode { phone_number: String },
}

/// Why a session could not be started.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SessionError(pub String);

/// What AEZEN asks of WhatsApp. One session (client) per tenant; its progress is reported as
/// [`SessionEvent`]s on the inbound channel.
pub trait WhatsApp: Send + Sync + 'static {
    /// Sends a text to `to` (E.164) and returns WhatsApp's id for it.
    fn send_text<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>>;

    /// Tells WhatsApp that the messages `ids` from `chat` (E.164) were read.
    fn mark_read<'a>(
        &'a self,
        tenant: TenantId,
        chat: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), SendError>>;

    /// Whether the tenant's session can send now.
    fn is_connected(&self, tenant: TenantId) -> bool;

    /// Starts the tenant's session on the store in `session_dir` (which exists). A linked
    /// store resumes without pairing; otherwise `link` says how to pair. Returns once the
    /// client is running; progress follows as events. Starting a running session is a no-op.
    fn connect<'a>(
        &'a self,
        tenant: TenantId,
        session_dir: &'a Path,
        link: LinkMethod,
    ) -> BoxFuture<'a, Result<(), SessionError>>;

    /// Stops the tenant's client and keeps its link, so `connect` resumes without pairing.
    /// Reports no event: the caller records the new state itself.
    fn disconnect(&self, tenant: TenantId) -> BoxFuture<'_, ()>;

    /// Unlinks the device from the phone (when connected) and stops the client; a no-op when
    /// no client runs. Returns whether WhatsApp was asked to unlink the device (the crate
    /// does not report whether the request then succeeded): when it was not (no client, or
    /// not connected), a linked phone keeps listing it under Linked devices until removed
    /// there. Reports no event; the caller removes the session folder afterwards.
    fn logout(&self, tenant: TenantId) -> BoxFuture<'_, bool>;

    /// Stops every client (at shutdown).
    fn shutdown(&self) -> BoxFuture<'_, ()>;

    /// Uploads a media item and sends it to `to` (E.164); returns WhatsApp's id for it.
    fn send_media<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        media: OutgoingMedia<'a>,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let _ = (tenant, to, media);
        Box::pin(async {
            Err(SendError::Rejected(
                "this backend cannot send media".to_owned(),
            ))
        })
    }

    /// Fetches the bytes of an incoming media item from what its message said
    /// ([`IncomingMedia::source`]), decrypted and checked.
    fn download_media<'a>(
        &'a self,
        tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Vec<u8>, DownloadError>> {
        let _ = (tenant, source);
        Box::pin(async {
            Err(DownloadError::Failed(
                "this backend cannot download media".to_owned(),
            ))
        })
    }

    /// Asks the sender's phone to upload an item again whose copy on WhatsApp's servers
    /// expired ([`DownloadError::Expired`]); returns the source to download it from now.
    fn request_reupload<'a>(
        &'a self,
        tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, DownloadError>> {
        let _ = (tenant, source);
        Box::pin(async {
            Err(DownloadError::Failed(
                "this backend cannot ask for a re-upload".to_owned(),
            ))
        })
    }

    fn kind(&self) -> BackendKind;
}

/// A message WhatsApp delivered to a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// WhatsApp's message id: unique per tenant, so a redelivery is recognised.
    pub whatsapp_id: String,
    /// The contact's number (E.164). For a message sent from the tenant's own phone, the
    /// number it was sent to.
    pub contact_number: String,
    /// The contact's WhatsApp display name, if known.
    pub push_name: Option<String>,
    /// Text, or a media item's caption (empty when it has none).
    pub content: String,
    /// The photo, voice note, video, document or sticker the message carries.
    pub media: Option<IncomingMedia>,
    /// Sent from the tenant's own phone: stored as an `agent` message.
    pub from_me: bool,
    pub timestamp: DateTime<Utc>,
}

/// A media item as an incoming message describes it, before its bytes are fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMedia {
    pub kind: MediaKind,
    /// As WhatsApp declares it (e.g. `audio/ogg; codecs=opus`).
    pub mime_type: String,
    /// A document's file name.
    pub file_name: Option<String>,
    /// The plaintext size in bytes, as declared.
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Audio and video length.
    pub duration_ms: Option<u64>,
    /// A voice note (push-to-talk), not an audio file.
    pub voice: bool,
    /// The small JPEG preview WhatsApp sends inside the message (images, videos, documents).
    pub thumbnail: Option<Vec<u8>>,
    /// What the backend needs to fetch the bytes, and to ask for a re-upload: opaque to the
    /// rest of AEZEN, which stores it with the item and hands it back to
    /// [`WhatsApp::download_media`] / [`WhatsApp::request_reupload`].
    pub source: serde_json::Value,
}

/// A media item to send: the bytes, already checked (type sniffed from them, size capped).
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMedia<'a> {
    pub kind: MediaKind,
    pub mime_type: &'a str,
    pub bytes: &'a [u8],
    /// Empty for none.
    pub caption: &'a str,
    pub file_name: Option<&'a str>,
    pub voice: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Why media bytes could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// WhatsApp's copy is gone (HTTP 404/410): ask the phone to upload it again.
    #[error("WhatsApp's copy of the media expired")]
    Expired,
    /// The session is not connected: try again once it is.
    #[error("the WhatsApp session is not connected")]
    NotConnected,
    /// Anything else (network, decryption, a hash mismatch): try again later.
    #[error("{0}")]
    Failed(String),
}

/// A change in a tenant's session, as the backend reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The client is starting or reconnecting.
    Connecting,
    /// A QR code to scan, valid until `expires_at`.
    Qr {
        code: String,
        expires_at: DateTime<Utc>,
    },
    /// A pairing code to type on the phone, valid until `expires_at`.
    PairCode {
        code: String,
        expires_at: DateTime<Utc>,
    },
    /// Linked and online.
    Connected {
        phone_number: Option<String>,
        push_name: Option<String>,
    },
    /// Offline; `retrying` when the client reconnects by itself.
    Disconnected {
        reason: Option<String>,
        retrying: bool,
    },
    /// The phone unlinked this device (or it was never linked and the link expired for good):
    /// the session store is useless and its folder is removed.
    LoggedOut { reason: String },
    /// WhatsApp banned the number (temporarily or not).
    Banned { reason: String },
    /// The session ended and will not come back by itself (e.g. stream replaced).
    Failed { reason: String },
}

/// Something WhatsApp reports for a tenant.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "each event is built once and moved through one channel; boxing the message would cost an allocation per message"
)]
pub enum InboundEvent {
    /// A message; `stored` (if given) is answered once it is durably stored, so a backend can
    /// acknowledge to WhatsApp only then. It is dropped unanswered if storing failed.
    Message {
        message: IncomingMessage,
        stored: Option<oneshot::Sender<Ingested>>,
    },
    /// Delivery or read receipts for messages the tenant sent.
    Receipt {
        whatsapp_ids: Vec<String>,
        status: ReceiptKind,
    },
    /// The session changed.
    Session(SessionEvent),
}

#[derive(Debug)]
pub struct Inbound {
    pub tenant: TenantId,
    pub event: InboundEvent,
}

/// What a receipt says about messages the tenant sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// The contact's phone has them.
    Delivered,
    /// The contact read them.
    Read,
}

/// What became of an incoming message, as the backend is told once it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored as the AEZEN message with this id.
    Stored(Uuid),
    /// Its WhatsApp id was already stored: nothing changed.
    Duplicate,
}

/// Where a tenant's WhatsApp session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Disconnected,
    Connecting,
    Qr,
    PairCode,
    Connected,
    LoggedOut,
    Banned,
    Failed,
}

impl SessionState {
    /// Every state, in the order of the life cycle.
    pub const ALL: [Self; 8] = [
        Self::Disconnected,
        Self::Connecting,
        Self::Qr,
        Self::PairCode,
        Self::Connected,
        Self::LoggedOut,
        Self::Banned,
        Self::Failed,
    ];

    /// Its name in the API (`pair_code`) and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Connecting => "connecting",
            Self::Qr => "qr",
            Self::PairCode => "pair_code",
            Self::Connected => "connected",
            Self::LoggedOut => "logged_out",
            Self::Banned => "banned",
            Self::Failed => "failed",
        }
    }

    /// On: connecting, pairing or connected.
    pub fn is_on(self) -> bool {
        matches!(
            self,
            Self::Connecting | Self::Qr | Self::PairCode | Self::Connected
        )
    }
}

/// A tenant's WhatsApp session as the API and the `whatsapp_status` event show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhatsappStatus {
    pub state: SessionState,
    /// The linked phone's number, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The linked phone's WhatsApp name, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
    /// Why the session is disconnected, logged out, banned or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The code to type on the phone, in state `pair_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_code: Option<String>,
    /// When the current QR or pairing code expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl WhatsappStatus {
    pub(crate) fn new(state: SessionState) -> Self {
        Self {
            state,
            phone_number: None,
            push_name: None,
            reason: None,
            pair_code: None,
            expires_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SessionState;

    #[test]
    fn a_state_is_named_in_metrics_as_in_the_api() {
        for state in SessionState::ALL {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
    }
}
