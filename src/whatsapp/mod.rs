//! WhatsApp, behind the project's own trait.
//!
//! The rest of AEZEN talks to [`WhatsApp`] (send a text, mark messages read, is a tenant
//! connected) and consumes a stream of [`Inbound`] events (messages, receipts, connection
//! changes) from one channel. Two backends implement it:
//! - `simulated` ([`simulated::Simulated`]): no network; driven by the
//!   `/api/integrations/whatsapp/simulate/*` endpoints. For trying the product offline and for
//!   tests. Logged loudly at start-up.
//! - `real`: the whatsapp-rust adapter (one client per tenant), not built yet: selecting it
//!   fails at start-up with a clear message.

pub mod routes;
pub mod simulated;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::chat::Status;
use crate::chat::ingest::Ingested;
use crate::error::ApiError;
use crate::ids::TenantId;

/// Which backend serves WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The whatsapp-rust adapter (real WhatsApp network).
    Real,
    /// An offline stand-in driven by the `simulate/*` endpoints.
    Simulated,
}

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

/// What AEZEN asks of WhatsApp.
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

    fn kind(&self) -> BackendKind;
}

/// A message WhatsApp delivered to a tenant.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// WhatsApp's message id: unique per tenant, so a redelivery is recognised.
    pub whatsapp_id: String,
    /// The contact's number (E.164). For a message sent from the tenant's own phone, the
    /// number it was sent to.
    pub contact_number: String,
    /// The contact's WhatsApp display name, if known.
    pub push_name: Option<String>,
    /// Text, or an image/video caption.
    pub content: String,
    /// Sent from the tenant's own phone: stored as an `agent` message.
    pub from_me: bool,
    pub timestamp: DateTime<Utc>,
}

/// The state of a tenant's WhatsApp session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connected,
    Disconnected,
}

/// Something WhatsApp reports for a tenant.
#[derive(Debug)]
pub enum InboundEvent {
    /// A message; `stored` (if given) is answered once it is durably stored, so a backend can
    /// acknowledge to WhatsApp only then.
    Message {
        message: IncomingMessage,
        stored: Option<oneshot::Sender<Result<Ingested, ApiError>>>,
    },
    /// Delivery or read receipts for messages the tenant sent.
    Receipt {
        whatsapp_ids: Vec<String>,
        status: Status,
    },
    /// The session connected or dropped.
    Connection(Connection),
}

#[derive(Debug)]
pub struct Inbound {
    pub tenant: TenantId,
    pub event: InboundEvent,
}
