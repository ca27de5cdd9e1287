//! The REAL WhatsApp backend: one whatsapp-rust client per tenant.
//!
//! Each tenant's client keeps its device keys in `sessions/<tenant-id>/whatsapp.db` (the
//! crate's `SqliteStore`), so a linked tenant resumes without pairing after a restart. This
//! module owns the clients and the translation from whatsapp-rust's events to AEZEN's
//! ([`map_event`], [`map_message`]); it does not decide session state (that is
//! [`super::sessions`]) and it does not store messages (that is ingest).
//!
//! How events travel:
//! - Messages go through an [`InboundDurabilityHook`]: each 1:1 text is sent to ingest with a
//!   `stored` reply, and the hook returns `Ok` (so the crate acknowledges to WhatsApp) only
//!   once every message of the batch is committed. Otherwise WhatsApp redelivers; ingest
//!   recognises a redelivered id.
//! - Everything else (session life cycle, receipts) is forwarded in arrival order from the
//!   crate's event bus to a per-tenant task that maps it and puts it on the inbound channel.
//!   Once AEZEN stops a client, or its session ended for good, its later events are dropped:
//!   the caller records such changes itself. A session that ended for good (logged out, QR
//!   codes expired, replaced, banned) is stopped and forgotten right after its end is
//!   reported, so it does not hold its client, store connection and files until the tenant
//!   connects again.
//!
//! Using an unofficial client may break WhatsApp's terms and get a number banned.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use whatsapp_rust::HttpResourceReport;
use whatsapp_rust::async_trait;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::transport::{
    TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory,
};
use whatsapp_rust::types::events::{
    ConnectFailure, ConnectFailureReason, Event, EventHandler, EventInterest, EventKind,
    InboundMessage, LoggedOut, Receipt, TemporaryBan,
};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::net::{StreamingHttpResponse, UploadBody};
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore::store::DevicePropsOverride;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{
    Client, ClientError, InboundDurabilityHook, IqError, Jid, SendError as WaSendError, Server,
    TokioRuntime,
};

use super::{
    BackendKind, Inbound, InboundEvent, IncomingMessage, LinkMethod, SendError, SessionError,
    SessionEvent, WhatsApp,
};
use crate::chat::Status;
use crate::ids::TenantId;

/// The session store's file inside the tenant's session folder.
pub const STORE_FILE: &str = "whatsapp.db";
/// How this device is named in the phone's Linked Devices list (set at first pairing).
const DEVICE_NAME: &str = "AEZEN";
/// How long one client may take to log out, or to stop, before it is aborted.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

const QR_CODES_EXPIRED: &str = "the QR codes expired before one was scanned";
const PAIR_CODE_EXPIRED: &str = "the pairing code expired before it was entered";
const STREAM_REPLACED: &str = "another client took over this WhatsApp session (stream \
    replaced), probably a second AEZEN running on the same session folder; turn WhatsApp on \
    again to take it back";

/// The crate events AEZEN reacts to; the bus does not materialise the others for us.
const FORWARDED: &[EventKind] = &[
    EventKind::Connected,
    EventKind::Disconnected,
    EventKind::PairSuccess,
    EventKind::PairError,
    EventKind::LoggedOut,
    EventKind::PairingQrCode,
    EventKind::PairingCode,
    EventKind::PairingCodeRefresh,
    EventKind::PairingCodeError,
    EventKind::PairingQrCodesExhausted,
    EventKind::ClientOutdated,
    EventKind::Messages,
    EventKind::Receipt,
    EventKind::StreamReplaced,
    EventKind::TemporaryBan,
    EventKind::ConnectFailure,
    EventKind::StreamError,
];

// ---------------------------------------------------------------------------------------------
// Mapping: whatsapp-rust events → AEZEN's types. Pure functions, tested with hand-built events.
// ---------------------------------------------------------------------------------------------

/// What [`map_event`] needs to know besides the event itself.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// When the event arrived: QR and pairing codes expire relative to it.
    pub now: DateTime<Utc>,
    /// The session links by pairing code. The crate shows QR codes alongside a pairing code;
    /// they are not reported then, so the dashboard keeps showing the code.
    pub pairing_by_code: bool,
    /// The linked phone's number (E.164), once paired (`client.pn()`).
    pub own_number: Option<String>,
    /// The linked account's WhatsApp name, once known (`client.push_name()`).
    pub own_push_name: Option<String>,
}

/// Translates a whatsapp-rust event into what AEZEN reports: a session change or delivery
/// receipts. `None` for events AEZEN does not report, and for [`Event::Messages`]: messages
/// go through [`map_message`] (and the durability hook).
pub fn map_event(event: &Event, ctx: &EventContext) -> Option<InboundEvent> {
    let session = match event {
        Event::PairingQrCode(qr) if !ctx.pairing_by_code => SessionEvent::Qr {
            code: qr.code.clone(),
            expires_at: expiry(ctx.now, qr.timeout),
        },
        Event::PairingCode(code) => SessionEvent::PairCode {
            code: code.code.clone(),
            expires_at: expiry(ctx.now, code.timeout),
        },
        Event::PairingCodeError(err) if ctx.pairing_by_code => SessionEvent::Disconnected {
            reason: Some(format!(
                "WhatsApp did not issue a pairing code: {}",
                err.error
            )),
            retrying: false,
        },
        // The code on screen is void; a new one needs a new request.
        Event::PairingCodeRefresh(_) if ctx.pairing_by_code => SessionEvent::Disconnected {
            reason: Some(PAIR_CODE_EXPIRED.to_owned()),
            retrying: false,
        },
        // `disconnected: false`: a pairing code is still live on this connection.
        Event::PairingQrCodesExhausted(exhausted) if exhausted.disconnected => {
            let reason = if ctx.pairing_by_code {
                PAIR_CODE_EXPIRED
            } else {
                QR_CODES_EXPIRED
            };
            SessionEvent::Disconnected {
                reason: Some(reason.to_owned()),
                retrying: false,
            }
        }
        Event::PairSuccess(paired) => SessionEvent::Connected {
            phone_number: phone_number(&paired.id),
            push_name: None,
        },
        Event::PairError(err) => SessionEvent::Failed {
            reason: format!("linking the phone failed: {}", err.error),
        },
        Event::Connected(_) => SessionEvent::Connected {
            phone_number: ctx.own_number.clone(),
            push_name: ctx.own_push_name.clone(),
        },
        // The crate reconnects by itself (with backoff).
        Event::Disconnected(lost) => SessionEvent::Disconnected {
            reason: Some(format!("connection lost: {}", lost.reason)),
            retrying: true,
        },
        Event::LoggedOut(logged_out) => SessionEvent::LoggedOut {
            reason: logged_out_reason(logged_out),
        },
        Event::StreamReplaced(_) => SessionEvent::Failed {
            reason: STREAM_REPLACED.to_owned(),
        },
        Event::TemporaryBan(ban) => SessionEvent::Banned {
            reason: ban_reason(ban, ctx.now),
        },
        Event::ConnectFailure(failure) => connect_failure(failure),
        Event::ClientOutdated(_) => SessionEvent::Failed {
            reason: "WhatsApp refused this client version as outdated; AEZEN needs an update"
                .to_owned(),
        },
        Event::Receipt(receipt) => return map_receipt(receipt),
        _ => return None,
    };
    Some(InboundEvent::Session(session))
}

/// Delivery and read receipts for messages the tenant sent. Other receipt types (our own
/// devices' read marks, retries, played, …) are not reported.
pub fn map_receipt(receipt: &Receipt) -> Option<InboundEvent> {
    let status = match receipt.r#type {
        ReceiptType::Delivered => Status::Delivered,
        ReceiptType::Read => Status::Read,
        _ => return None,
    };
    if receipt.message_ids.is_empty() {
        return None;
    }
    Some(InboundEvent::Receipt {
        whatsapp_ids: receipt.message_ids.clone(),
        status,
    })
}

/// A message from a chat whose phone number is not known yet: only its LID is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no phone number is known for the WhatsApp contact {lid}")]
pub struct UnknownNumber {
    pub lid: Jid,
}

/// Translates a decrypted message into an [`IncomingMessage`].
///
/// - `Ok(None)`: nothing for the inbox: group, broadcast/status and newsletter messages (the
///   inbox has 1:1 conversations only), and messages without text or caption (reactions,
///   edits and deletions as protocol messages, media without a caption, …).
/// - The contact is the chat's other party, also for a message sent from the tenant's phone
///   (`from_me`). A chat addressed by LID is keyed by the contact's phone number, so the LID
///   and the phone form of one contact land in one conversation: the number comes from the
///   stanza (`sender_alt` for a received message; `recipient_alt`, `peer_recipient_pn` or the
///   device-sent destination for one sent from the phone) or else from `lid_pn`, the mapping
///   the caller looked up in the client's LID↔PN store.
/// - `Err(UnknownNumber)`: a LID chat with no known number. The caller looks the LID up and
///   maps again; if it is still unknown the message is left unacknowledged (WhatsApp
///   redelivers it on the next connection) rather than stored under a key that is not a
///   phone number and could never be merged with the contact's conversation.
pub fn map_message(
    message: &wa::Message,
    info: &MessageInfo,
    lid_pn: Option<&Jid>,
) -> Result<Option<IncomingMessage>, UnknownNumber> {
    let source = &info.source;
    let chat = &source.chat;
    if source.is_group || !is_person(chat) {
        return Ok(None);
    }
    let content = [message.text_content(), message.get_caption()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|text| !text.is_empty());
    let Some(content) = content else {
        return Ok(None);
    };
    let contact_number = if chat.server.is_pn_family() {
        phone_number(chat)
    } else {
        let destination = info
            .device_sent_meta
            .as_ref()
            .and_then(|meta| meta.destination_jid.parse::<Jid>().ok());
        let stanza_pn = if source.is_from_me {
            [
                source.recipient_alt.clone(),
                info.peer_recipient_pn.clone(),
                destination,
            ]
        } else {
            [source.sender_alt.clone(), None, None]
        };
        stanza_pn
            .iter()
            .flatten()
            .chain(lid_pn)
            .find_map(phone_number)
    };
    let Some(contact_number) = contact_number else {
        return Err(UnknownNumber {
            lid: chat.to_non_ad(),
        });
    };
    let push_name = Some(info.push_name.trim())
        .filter(|name| !source.is_from_me && !name.is_empty())
        .map(str::to_owned);
    Ok(Some(IncomingMessage {
        whatsapp_id: info.id.clone(),
        contact_number,
        push_name,
        content: content.to_owned(),
        from_me: source.is_from_me,
        timestamp: info.timestamp,
    }))
}

/// The E.164 number (`+digits`) of a phone-number JID; `None` for any other JID.
pub fn phone_number(jid: &Jid) -> Option<String> {
    let digits = jid.user.as_str();
    let valid = jid.server.is_pn_family()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("+{digits}"))
}

/// The phone JID (`6281234567890@s.whatsapp.net`) of an E.164 number (`+6281234567890`; the
/// `+` may be left out). `None` if it is not one.
pub fn phone_jid(number: &str) -> Option<Jid> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    let valid = (7..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| Jid::pn(digits))
}

/// A person's chat (phone number or LID), not a group, broadcast, newsletter or bot.
fn is_person(chat: &Jid) -> bool {
    matches!(
        chat.server,
        Server::Pn | Server::Lid | Server::Hosted | Server::HostedLid
    )
}

fn expiry(now: DateTime<Utc>, valid: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(valid)
        .ok()
        .and_then(|valid| now.checked_add_signed(valid))
        .unwrap_or(now)
}

fn logged_out_reason(logged_out: &LoggedOut) -> String {
    if logged_out.reason == ConnectFailureReason::AccountLocked {
        let said = logged_out
            .logout_message
            .as_ref()
            .and_then(|m| m.header.clone().or_else(|| m.subtext.clone()));
        return match said {
            Some(said) => format!("WhatsApp locked this account: {said}"),
            None => "WhatsApp locked this account".to_owned(),
        };
    }
    if logged_out.on_connect {
        "WhatsApp no longer accepts this linked device (it was removed from the phone)".to_owned()
    } else {
        "the phone removed this linked device".to_owned()
    }
}

fn ban_reason(ban: &TemporaryBan, now: DateTime<Utc>) -> String {
    let mut reason = format!("WhatsApp temporarily banned this number ({})", ban.code);
    if let Some(until) = now.checked_add_signed(ban.expire) {
        reason.push_str(&format!(
            "; it can be used again after {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    if let Some(message) = ban.message.as_deref().filter(|m| !m.is_empty()) {
        reason.push_str(&format!(": {message}"));
    }
    reason
}

fn connect_failure(failure: &ConnectFailure) -> SessionEvent {
    let detail = failure
        .message
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let reason = failure.reason;
    if reason.should_reconnect() {
        SessionEvent::Disconnected {
            reason: Some(format!(
                "WhatsApp is temporarily unavailable ({reason:?}{detail})"
            )),
            retrying: true,
        }
    } else if reason == ConnectFailureReason::TempBanned {
        SessionEvent::Banned {
            reason: format!("WhatsApp temporarily banned this number{detail}"),
        }
    } else if reason.is_logged_out() {
        SessionEvent::LoggedOut {
            reason: format!("WhatsApp no longer accepts this linked device ({reason:?}{detail})"),
        }
    } else {
        SessionEvent::Failed {
            reason: format!("WhatsApp refused the connection ({reason:?}{detail})"),
        }
    }
}

/// Whether the session is over after this event: the client does not come back by itself.
fn ends_session(event: &SessionEvent) -> bool {
    matches!(
        event,
        SessionEvent::Disconnected {
            retrying: false,
            ..
        } | SessionEvent::LoggedOut { .. }
            | SessionEvent::Banned { .. }
            | SessionEvent::Failed { .. }
    )
}

/// Sorts a failed send: connection trouble keeps the message queued (`NotConnected`, the
/// outbox tries again when the session reports `connected`); anything else is WhatsApp or the
/// crate refusing this message, which would fail the same way again and hold up the queue
/// behind it, so it is `Rejected`. Server errors are transient when 5xx or 429.
pub fn classify_send_error(err: &WaSendError) -> SendError {
    let transient = match err {
        WaSendError::NotLoggedIn => true,
        WaSendError::Client(client) => client_error_is_transient(client),
        WaSendError::Iq(iq) => iq_error_is_transient(iq),
        _ => false,
    };
    if transient {
        SendError::NotConnected
    } else {
        SendError::Rejected(err.to_string())
    }
}

fn client_error_is_transient(err: &ClientError) -> bool {
    match err {
        ClientError::NotConnected | ClientError::NotLoggedIn | ClientError::Socket(_) => true,
        ClientError::Iq(iq) => iq_error_is_transient(iq),
        other => other.is_transport_unavailable(),
    }
}

fn iq_error_is_transient(err: &IqError) -> bool {
    match err {
        IqError::Timeout
        | IqError::NotConnected
        | IqError::Socket(_)
        | IqError::Disconnected(_)
        | IqError::InternalChannelClosed => true,
        IqError::ClientState(client) => client_error_is_transient(client),
        IqError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

/// `mark_as_read` fails with an `anyhow` error; sorted like a send.
fn classify_read_error(err: &anyhow::Error) -> SendError {
    let transient = err
        .chain()
        .any(|cause| match cause.downcast_ref::<ClientError>() {
            Some(client) => client_error_is_transient(client),
            None => cause
                .downcast_ref::<IqError>()
                .is_some_and(iq_error_is_transient),
        });
    if transient {
        SendError::NotConnected
    } else {
        SendError::Rejected(format!("{err:#}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The adapter.
// ---------------------------------------------------------------------------------------------

/// How clients reach WhatsApp. [`Network::real`] is the WebSocket transport and the ureq
/// HTTP client; tests pass stand-ins that refuse to connect.
#[derive(Clone)]
pub struct Network {
    pub transport: Arc<dyn TransportFactory>,
    pub http: Arc<dyn HttpClient>,
}

impl Network {
    pub fn real() -> Self {
        Self {
            transport: Arc::new(TokioWebSocketTransportFactory::new()),
            http: Arc::new(UreqHttpClient::new()),
        }
    }

    /// The real WebSocket transport, dialling `url` instead of WhatsApp, and no HTTP: the
    /// whole real connection path against an address the caller controls (tests point it
    /// at a local port nothing listens on, so they behave alike with or without internet).
    pub fn real_transport_to(url: &str) -> Self {
        Self {
            transport: Arc::new(TokioWebSocketTransportFactory::new().with_url(url)),
            http: Arc::new(Offline),
        }
    }

    /// A network that refuses every connection at once, without sending a packet: the real
    /// adapter with no way out (tests of the whole application, and demos on a machine
    /// without internet).
    pub fn offline() -> Self {
        Self {
            transport: Arc::new(Offline),
            http: Arc::new(Offline),
        }
    }
}

struct Offline;

#[async_trait]
impl TransportFactory for Offline {
    async fn create_transport(
        &self,
    ) -> anyhow::Result<(
        Arc<dyn Transport>,
        whatsapp_rust::async_channel::Receiver<TransportEvent>,
    )> {
        anyhow::bail!("offline: no network")
    }
}

#[async_trait]
impl HttpClient for Offline {
    async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("offline: no network")
    }
}

/// The whatsapp-rust backend. See the module docs.
pub struct RealWhatsApp {
    inbound: mpsc::Sender<Inbound>,
    network: Network,
    sessions: Slots,
}

/// Each tenant's client; a session's pump holds it weakly, to retire its own slot when the
/// session ends for good.
type Slots = Arc<SlotMap>;
type SlotMap = Mutex<HashMap<TenantId, Slot>>;

enum Slot {
    /// A `connect` is building the client.
    Starting,
    Running(Session),
}

struct Session {
    handle: BotHandle,
    client: Arc<Client>,
    /// Set when AEZEN stops the client or its session ended for good; its later events are
    /// not reported, and `connect` replaces it.
    ended: Arc<AtomicBool>,
    /// Maps and forwards the client's events.
    pump: JoinHandle<()>,
}

impl Session {
    /// Running and not ended: the crate's run loop has not returned.
    fn is_live(&mut self) -> bool {
        !self.ended.load(Ordering::SeqCst) && (&mut self.handle).now_or_never().is_none()
    }
}

/// How a client stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Its run loop returned after a graceful shutdown.
    Cleanly,
    /// It did not stop within the time allowed and was aborted.
    Aborted,
}

impl RealWhatsApp {
    /// The production backend, on the real network.
    pub fn new(inbound: mpsc::Sender<Inbound>) -> Self {
        Self::with_network(inbound, Network::real())
    }

    /// The backend on the given network (tests use one that refuses to connect).
    pub fn with_network(inbound: mpsc::Sender<Inbound>, network: Network) -> Self {
        Self {
            inbound,
            network,
            sessions: Slots::default(),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Slot>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's client, if it is connected and logged in.
    fn ready_client(&self, tenant: TenantId) -> Option<Arc<Client>> {
        match self.sessions().get(&tenant) {
            Some(Slot::Running(session))
                if !session.ended.load(Ordering::SeqCst)
                    && session.client.is_connected()
                    && session.client.is_logged_in() =>
            {
                Some(Arc::clone(&session.client))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    fn client(&self, tenant: TenantId) -> Option<Arc<Client>> {
        match self.sessions().get(&tenant) {
            Some(Slot::Running(session)) => Some(Arc::clone(&session.client)),
            _ => None,
        }
    }

    /// Whether the tenant has a client whose run loop is going (connected or retrying).
    pub fn is_running(&self, tenant: TenantId) -> bool {
        match self.sessions().get_mut(&tenant) {
            Some(Slot::Running(session)) => session.is_live(),
            _ => false,
        }
    }

    async fn start(
        &self,
        tenant: TenantId,
        session_dir: &Path,
        link: LinkMethod,
    ) -> Result<Session, SessionError> {
        let pair_code = match &link {
            LinkMethod::Qr => None,
            LinkMethod::PairCode { phone_number } => {
                let jid = phone_jid(phone_number).ok_or_else(|| {
                    SessionError(format!(
                        "{phone_number:?} is not a phone number in international form"
                    ))
                })?;
                Some(PairCodeOptions {
                    phone_number: jid.user.to_string(),
                    ..PairCodeOptions::default()
                })
            }
        };
        let path = session_dir.join(STORE_FILE);
        let url = path
            .to_str()
            .ok_or_else(|| SessionError(format!("session path {} is not UTF-8", path.display())))?;
        let store = SqliteStore::new(url)
            .await
            .map_err(|e| SessionError(format!("cannot open the WhatsApp session store: {e}")))?;

        log_session_event(tenant, &SessionEvent::Connecting);
        inject(
            &self.inbound,
            tenant,
            InboundEvent::Session(SessionEvent::Connecting),
        )
        .await;

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let ended = Arc::new(AtomicBool::new(false));
        let mut builder = Bot::builder()
            .with_backend(store)
            .with_transport_factory(SharedTransport {
                factory: Arc::clone(&self.network.transport),
                tenant,
                inbound: self.inbound.clone(),
                ended: Arc::clone(&ended),
            })
            .with_http_client(SharedHttp(Arc::clone(&self.network.http)))
            .with_runtime(TokioRuntime)
            .skip_history_sync()
            .with_device_props(
                DevicePropsOverride::new()
                    .with_os(DEVICE_NAME)
                    .with_platform_type(wa::device_props::PlatformType::DESKTOP),
            )
            .with_event_handler(Forwarder { tx: events_tx })
            .with_inbound_durability_hook(DurableIngest {
                tenant,
                inbound: self.inbound.clone(),
            });
        let pairing_by_code = pair_code.is_some();
        if let Some(options) = pair_code {
            builder = builder.with_pair_code(options);
        }
        let bot = builder
            .build()
            .await
            .map_err(|e| SessionError(format!("cannot start the WhatsApp client: {e}")))?;
        let client = bot.client();
        let pump = tokio::spawn(pump(
            tenant,
            events_rx,
            Arc::downgrade(&client),
            Arc::clone(&ended),
            self.inbound.clone(),
            pairing_by_code,
            Arc::downgrade(&self.sessions),
        ));
        let handle = bot.spawn();
        tracing::info!(tenant = %tenant, linked = client.pn().is_some(), "WhatsApp client started");
        Ok(Session {
            handle,
            client,
            ended,
            pump,
        })
    }

    /// Stops the tenant's client, unlinking the device first if asked. `None` if none ran.
    pub async fn stop(&self, tenant: TenantId) -> Option<Stopped> {
        let removed = self.sessions().remove(&tenant);
        match removed {
            Some(Slot::Running(session)) => Some(stop(tenant, session).await),
            // A `connect` in progress sees its slot gone and stops what it built.
            Some(Slot::Starting) | None => None,
        }
    }
}

/// Asks WhatsApp to unlink the device, within [`STOP_TIMEOUT`]; whether it was asked.
async fn unlink(tenant: TenantId, client: &Arc<Client>) -> bool {
    if !client.is_connected() {
        tracing::warn!(
            tenant = %tenant,
            "WhatsApp is not connected, so the device cannot be unlinked from here; it stays \
             in the phone's Linked Devices list until removed there"
        );
        return false;
    }
    // `logout` is infallible by design: a failed unlink request is logged by the crate, and
    // the local teardown runs either way.
    match tokio::time::timeout(STOP_TIMEOUT, client.logout()).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant, "WhatsApp device unlinked");
            true
        }
        Err(_) => {
            tracing::warn!(tenant = %tenant, "WhatsApp unlink did not finish in time");
            false
        }
    }
}

/// Stops one client within [`STOP_TIMEOUT`].
async fn stop(tenant: TenantId, session: Session) -> Stopped {
    let Session {
        handle,
        client: _,
        ended,
        pump,
    } = session;
    ended.store(true, Ordering::SeqCst);
    let stopped = match tokio::time::timeout(STOP_TIMEOUT, handle.shutdown()).await {
        Ok(()) => Stopped::Cleanly,
        Err(_) => {
            // Dropping the handle (inside the timed-out future) aborted the run loop.
            tracing::warn!(tenant = %tenant, "WhatsApp client did not stop in time; aborted");
            Stopped::Aborted
        }
    };
    pump.abort();
    tracing::info!(tenant = %tenant, ?stopped, "WhatsApp client stopped");
    stopped
}

async fn inject(inbound: &mpsc::Sender<Inbound>, tenant: TenantId, event: InboundEvent) -> bool {
    // The receiver lives as long as the application; a failed send means it is stopping.
    inbound.send(Inbound { tenant, event }).await.is_ok()
}

impl WhatsApp for RealWhatsApp {
    fn send_text<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        async move {
            let jid = phone_jid(to).ok_or_else(|| {
                SendError::Rejected(format!(
                    "{to:?} is not a phone number in international form"
                ))
            })?;
            let client = self.ready_client(tenant).ok_or(SendError::NotConnected)?;
            match client.send_text(jid, text).await {
                Ok(sent) => Ok(sent.message_id),
                Err(err) => {
                    let sorted = classify_send_error(&err);
                    tracing::warn!(tenant = %tenant, error = %err, ?sorted, "WhatsApp send failed");
                    Err(sorted)
                }
            }
        }
        .boxed()
    }

    fn mark_read<'a>(
        &'a self,
        tenant: TenantId,
        chat: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), SendError>> {
        async move {
            let pn = phone_jid(chat).ok_or_else(|| {
                SendError::Rejected(format!(
                    "{chat:?} is not a phone number in international form"
                ))
            })?;
            let client = self.ready_client(tenant).ok_or(SendError::NotConnected)?;
            // A contact WhatsApp addresses by LID gets the receipt on its LID chat, where its
            // messages came from.
            let to = match client.get_lid_pn_entry(&pn).await {
                Ok(Some(entry)) => Jid::lid(&*entry.lid),
                _ => pn,
            };
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            client
                .mark_as_read(&to, None, &ids)
                .await
                .map_err(|err| classify_read_error(&err))
        }
        .boxed()
    }

    fn is_connected(&self, tenant: TenantId) -> bool {
        self.ready_client(tenant).is_some()
    }

    fn connect<'a>(
        &'a self,
        tenant: TenantId,
        session_dir: &'a Path,
        link: LinkMethod,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        async move {
            let stale = {
                let mut sessions = self.sessions();
                let running = match sessions.get_mut(&tenant) {
                    Some(Slot::Starting) => true,
                    Some(Slot::Running(session)) => session.is_live(),
                    None => false,
                };
                if running {
                    return Ok(());
                }
                sessions.insert(tenant, Slot::Starting)
            };
            // A client whose session ended (logged out, QR codes expired, …) is replaced.
            if let Some(Slot::Running(stale)) = stale {
                stop(tenant, stale).await;
            }
            let session = match self.start(tenant, session_dir, link).await {
                Ok(session) => session,
                Err(err) => {
                    let mut sessions = self.sessions();
                    if matches!(sessions.get(&tenant), Some(Slot::Starting)) {
                        sessions.remove(&tenant);
                    }
                    return Err(err);
                }
            };
            let orphan = {
                let mut sessions = self.sessions();
                if matches!(sessions.get(&tenant), Some(Slot::Starting)) {
                    sessions.insert(tenant, Slot::Running(session));
                    None
                } else {
                    Some(session)
                }
            };
            // Disconnected (or shut down) while it was starting.
            if let Some(orphan) = orphan {
                stop(tenant, orphan).await;
            }
            Ok(())
        }
        .boxed()
    }

    fn disconnect(&self, tenant: TenantId) -> BoxFuture<'_, ()> {
        async move {
            self.stop(tenant).await;
        }
        .boxed()
    }

    fn logout(&self, tenant: TenantId) -> BoxFuture<'_, bool> {
        async move {
            let removed = self.sessions().remove(&tenant);
            match removed {
                Some(Slot::Running(session)) => {
                    let unlinked = unlink(tenant, &session.client).await;
                    stop(tenant, session).await;
                    unlinked
                }
                // A `connect` in progress sees its slot gone and stops what it built.
                Some(Slot::Starting) | None => {
                    tracing::warn!(
                        tenant = %tenant,
                        "no WhatsApp client runs, so the device cannot be unlinked from here; it \
                         stays in the phone's Linked Devices list until removed there"
                    );
                    false
                }
            }
        }
        .boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        async move {
            let running: Vec<(TenantId, Session)> = self
                .sessions()
                .drain()
                .filter_map(|(tenant, slot)| match slot {
                    Slot::Running(session) => Some((tenant, session)),
                    Slot::Starting => None,
                })
                .collect();
            let stops = running
                .into_iter()
                .map(|(tenant, session)| stop(tenant, session));
            futures::future::join_all(stops).await;
        }
        .boxed()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Real
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing between the crate and the adapter.
// ---------------------------------------------------------------------------------------------

/// Hands the crate's events, in arrival order, to the session's pump. Runs inline on the
/// crate's dispatch path, so it only queues.
struct Forwarder {
    tx: mpsc::UnboundedSender<Arc<Event>>,
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        // Closed once the pump is stopped: the session is over.
        let _ = self.tx.send(event);
    }

    fn interest(&self) -> EventInterest {
        EventInterest::of(FORWARDED)
    }
}

/// Maps a session's events and puts them on the inbound channel. When the session ends for
/// good (logged out, QR codes expired, replaced, …) it reports that, then retires the session:
/// its slot leaves `slots` and the client is stopped, so an ended session does not keep its
/// client, store connection and files until the tenant connects again.
async fn pump(
    tenant: TenantId,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
    client: Weak<Client>,
    ended: Arc<AtomicBool>,
    inbound: mpsc::Sender<Inbound>,
    pairing_by_code: bool,
    slots: Weak<SlotMap>,
) {
    while let Some(event) = events.recv().await {
        if ended.load(Ordering::SeqCst) {
            continue;
        }
        let Some(client) = client.upgrade() else {
            break;
        };
        if let Event::Messages(batch) = &*event {
            // The durability hook already delivered committed batches; the rest (recovered
            // placeholders, newsletters) only arrive here and cannot be redelivered.
            if !batch.hook_committed {
                for item in batch.iter() {
                    if let Ok(Some(message)) = map_inbound(&client, item).await {
                        let event = InboundEvent::Message {
                            message,
                            stored: None,
                        };
                        inject(&inbound, tenant, event).await;
                    }
                }
            }
            continue;
        }
        let ctx = EventContext {
            now: Utc::now(),
            pairing_by_code,
            own_number: client.pn().as_ref().and_then(phone_number),
            own_push_name: Some(client.push_name()).filter(|name| !name.is_empty()),
        };
        let Some(mapped) = map_event(&event, &ctx) else {
            tracing::debug!(tenant = %tenant, kind = ?event.kind(), "WhatsApp event not reported");
            continue;
        };
        let ends = match &mapped {
            InboundEvent::Session(session) => {
                log_session_event(tenant, session);
                ends_session(session)
            }
            _ => false,
        };
        if ends {
            ended.store(true, Ordering::SeqCst);
        }
        if !inject(&inbound, tenant, mapped).await {
            break;
        }
        if ends {
            // Most of these already stop the crate's run loop; a refused pairing code does
            // not. Stopping makes `connect` start afresh next time.
            match retire(tenant, &slots, &ended) {
                Some(session) => {
                    tokio::spawn(stop(tenant, session));
                }
                // Not in the map (yet, or any more): whoever holds it stops it.
                None => {
                    tokio::spawn(async move { client.disconnect().await });
                }
            }
            break;
        }
    }
}

/// Takes the session whose end `ended` marks out of `slots`, if it is still the tenant's.
fn retire(tenant: TenantId, slots: &Weak<SlotMap>, ended: &Arc<AtomicBool>) -> Option<Session> {
    let slots = slots.upgrade()?;
    let mut slots = slots
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match slots.get(&tenant) {
        Some(Slot::Running(session)) if Arc::ptr_eq(&session.ended, ended) => {
            match slots.remove(&tenant) {
                Some(Slot::Running(session)) => Some(session),
                _ => None,
            }
        }
        _ => None,
    }
}

fn log_session_event(tenant: TenantId, event: &SessionEvent) {
    match event {
        SessionEvent::Connecting => tracing::info!(tenant = %tenant, "WhatsApp connecting"),
        SessionEvent::Qr { expires_at, .. } => {
            tracing::info!(tenant = %tenant, %expires_at, "WhatsApp QR code issued");
        }
        SessionEvent::PairCode { expires_at, .. } => {
            tracing::info!(tenant = %tenant, %expires_at, "WhatsApp pairing code issued");
        }
        SessionEvent::Connected { .. } => tracing::info!(tenant = %tenant, "WhatsApp connected"),
        SessionEvent::Disconnected { reason, retrying } => tracing::warn!(
            tenant = %tenant,
            reason = reason.as_deref().unwrap_or(""),
            retrying,
            "WhatsApp disconnected"
        ),
        SessionEvent::LoggedOut { reason } => {
            tracing::warn!(tenant = %tenant, reason, "WhatsApp logged out");
        }
        SessionEvent::Banned { reason } => {
            tracing::error!(tenant = %tenant, reason, "WhatsApp banned the number");
        }
        SessionEvent::Failed { reason } => {
            tracing::error!(tenant = %tenant, reason, "WhatsApp session failed");
        }
    }
}

/// Maps one message, looking up the phone number of a LID chat in the client's LID↔PN store
/// when the stanza did not carry it.
async fn map_inbound(
    client: &Client,
    item: &InboundMessage,
) -> Result<Option<IncomingMessage>, UnknownNumber> {
    match map_message(&item.message, &item.info, None) {
        Err(UnknownNumber { lid }) => {
            let known = match client.get_lid_pn_entry(&lid).await {
                Ok(entry) => entry.map(|entry| Jid::pn(&*entry.phone_number)),
                Err(err) => {
                    tracing::warn!(error = %err, "LID lookup failed");
                    None
                }
            };
            map_message(&item.message, &item.info, known.as_ref())
        }
        mapped => mapped,
    }
}

/// Sends each message of a batch to ingest and answers `Ok` only once all are committed, so
/// the crate acknowledges them to WhatsApp only then.
struct DurableIngest {
    tenant: TenantId,
    inbound: mpsc::Sender<Inbound>,
}

#[async_trait]
impl InboundDurabilityHook for DurableIngest {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> anyhow::Result<()> {
        let tenant = self.tenant;
        let mut replies = Vec::new();
        let mut unknown = None;
        for item in batch {
            match map_inbound(&client, item).await {
                Ok(Some(message)) => {
                    let (tx, rx) = oneshot::channel();
                    let event = InboundEvent::Message {
                        message,
                        stored: Some(tx),
                    };
                    if !inject(&self.inbound, tenant, event).await {
                        anyhow::bail!("AEZEN is stopping; the messages stay with WhatsApp");
                    }
                    replies.push(rx);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(
                        tenant = %tenant,
                        id = %item.info.id,
                        error = %err,
                        "message left for redelivery: its sender's phone number is not known yet"
                    );
                    unknown = Some(err);
                }
            }
        }
        for reply in replies {
            match reply.await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => anyhow::bail!("message not stored: {err}"),
                Err(_) => anyhow::bail!("message not stored"),
            }
        }
        match unknown {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }
}

/// [`TransportFactory`] for a shared factory (the builder takes one by value).
///
/// A connection that cannot even be opened (no network, DNS failure, refused) produces no
/// whatsapp-rust event, so it is reported here: the session shows the failure while the
/// crate backs off and tries again.
struct SharedTransport {
    factory: Arc<dyn TransportFactory>,
    tenant: TenantId,
    inbound: mpsc::Sender<Inbound>,
    ended: Arc<AtomicBool>,
}

#[async_trait]
impl TransportFactory for SharedTransport {
    async fn create_transport(
        &self,
    ) -> anyhow::Result<(
        Arc<dyn Transport>,
        whatsapp_rust::async_channel::Receiver<TransportEvent>,
    )> {
        let created = self.factory.create_transport().await;
        if let Err(err) = &created
            && !self.ended.load(Ordering::SeqCst)
        {
            let event = SessionEvent::Disconnected {
                reason: Some(format!("cannot reach WhatsApp ({err:#}); retrying")),
                retrying: true,
            };
            log_session_event(self.tenant, &event);
            inject(&self.inbound, self.tenant, InboundEvent::Session(event)).await;
        }
        created
    }
}

/// [`HttpClient`] for a shared client (the builder takes one by value).
struct SharedHttp(Arc<dyn HttpClient>);

#[async_trait]
impl HttpClient for SharedHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.0.execute(request).await
    }

    fn supports_streaming(&self) -> bool {
        self.0.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.0.execute_streaming(request)
    }

    fn supports_upload_streaming(&self) -> bool {
        self.0.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> anyhow::Result<HttpResponse> {
        self.0.execute_upload(request, body, content_length)
    }

    fn resource_report(&self) -> Option<HttpResourceReport> {
        self.0.resource_report()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use whatsapp_rust::async_channel;
    use whatsapp_rust::transport::DisconnectReason;
    use whatsapp_rust::types::events::{
        Connected, Disconnected, MessageBatch, PairSuccess, PairingCode, PairingQrCode,
        PairingQrCodesExhausted, StreamReplaced, TempBanReason,
    };
    use whatsapp_rust::types::message::{DeviceSentMeta, MessageSource};
    use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt;
    use whatsapp_rust::waproto::buffa::MessageField;

    use super::*;
    use crate::chat::ingest::Ingested;

    /// Longest a test waits for something that should happen.
    const DEADLINE: Duration = Duration::from_secs(15);
    const CUSTOMER: &str = "6281234567890";
    const CUSTOMER_LID: &str = "100000012345678";
    const OWN: &str = "6289900000001";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn ctx() -> EventContext {
        EventContext {
            now: at(1_700_000_000),
            pairing_by_code: false,
            own_number: Some(format!("+{OWN}")),
            own_push_name: Some("Toko Budi".to_owned()),
        }
    }

    /// A message from `chat` (not from me), as the crate parses one.
    fn info(id: &str, chat: Jid) -> MessageInfo {
        MessageInfo {
            id: id.to_owned(),
            source: MessageSource {
                sender: chat.with_device(3),
                chat,
                ..MessageSource::default()
            },
            push_name: "Siti".to_owned(),
            timestamp: at(1_700_000_123),
            ..MessageInfo::default()
        }
    }

    fn mapped(message: &wa::Message, info: &MessageInfo) -> IncomingMessage {
        map_message(message, info, None)
            .expect("number known")
            .expect("message kept")
    }

    fn session(event: Option<InboundEvent>) -> SessionEvent {
        match event {
            Some(InboundEvent::Session(event)) => event,
            other => panic!("expected a session event, got {other:?}"),
        }
    }

    #[test]
    fn a_text_message_maps_to_an_incoming_message() {
        let message = wa::Message::text("Halo, stok ada?");
        let got = mapped(&message, &info("3EB0A1", Jid::pn(CUSTOMER)));
        assert_eq!(
            got,
            IncomingMessage {
                whatsapp_id: "3EB0A1".to_owned(),
                contact_number: format!("+{CUSTOMER}"),
                push_name: Some("Siti".to_owned()),
                content: "Halo, stok ada?".to_owned(),
                from_me: false,
                timestamp: at(1_700_000_123),
            }
        );
    }

    #[test]
    fn an_extended_text_maps_like_a_plain_one() {
        let message = wa::Message::text_with_context("with a quote", wa::ContextInfo::default());
        let got = mapped(&message, &info("X1", Jid::pn(CUSTOMER)));
        assert_eq!(got.content, "with a quote");
    }

    #[test]
    fn an_image_caption_is_the_content() {
        let message = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                caption: Some("this one, size M".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = mapped(&message, &info("IMG1", Jid::pn(CUSTOMER)));
        assert_eq!(got.content, "this one, size M");
    }

    #[test]
    fn a_message_without_text_or_caption_is_skipped() {
        let reaction = wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage {
                text: Some("👍".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bare_image = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage::default()),
            ..Default::default()
        };
        let blank = wa::Message::text("   ");
        for message in [reaction, bare_image, blank] {
            let got = map_message(&message, &info("R1", Jid::pn(CUSTOMER)), None);
            assert_eq!(got, Ok(None));
        }
    }

    #[test]
    fn a_message_sent_from_the_phone_is_from_me_and_belongs_to_the_recipient() {
        let mut info = info("3EB0FF", Jid::pn(CUSTOMER));
        info.source.is_from_me = true;
        info.source.sender = Jid::pn_device(OWN, 0);
        info.source.recipient = Some(Jid::pn(CUSTOMER));
        info.push_name = "Toko Budi".to_owned();
        let got = mapped(&wa::Message::text("Ada, kak"), &info);
        assert!(got.from_me);
        assert_eq!(got.contact_number, format!("+{CUSTOMER}"));
        assert_eq!(
            got.push_name, None,
            "the tenant's own name is not the contact's"
        );
    }

    #[test]
    fn a_lid_chat_with_sender_alt_maps_to_the_same_contact_as_the_phone_chat() {
        let by_phone = mapped(&wa::Message::text("a"), &info("A", Jid::pn(CUSTOMER)));
        let mut by_lid = info("B", Jid::lid(CUSTOMER_LID));
        by_lid.source.sender_alt = Some(Jid::pn(CUSTOMER));
        let by_lid = mapped(&wa::Message::text("b"), &by_lid);
        assert_eq!(by_lid.contact_number, by_phone.contact_number);
        assert_eq!(by_lid.contact_number, format!("+{CUSTOMER}"));
    }

    #[test]
    fn a_lid_chat_sent_from_the_phone_uses_the_recipients_number() {
        let mut info = info("C", Jid::lid(CUSTOMER_LID));
        info.source.is_from_me = true;
        info.source.sender = Jid::lid_device("200000000000001", 0);
        // sender_alt of our own message is OUR number: it must not become the contact.
        info.source.sender_alt = Some(Jid::pn(OWN));
        info.peer_recipient_pn = Some(Jid::pn(CUSTOMER));
        assert_eq!(
            mapped(&wa::Message::text("c"), &info).contact_number,
            format!("+{CUSTOMER}")
        );

        info.peer_recipient_pn = None;
        info.device_sent_meta = Some(DeviceSentMeta {
            destination_jid: format!("{CUSTOMER}@s.whatsapp.net"),
            phash: String::new(),
        });
        assert_eq!(
            mapped(&wa::Message::text("c"), &info).contact_number,
            format!("+{CUSTOMER}")
        );
    }

    #[test]
    fn a_lid_chat_without_a_known_number_needs_a_lookup() {
        let info = info("D", Jid::lid(CUSTOMER_LID));
        let message = wa::Message::text("d");
        assert_eq!(
            map_message(&message, &info, None),
            Err(UnknownNumber {
                lid: Jid::lid(CUSTOMER_LID)
            })
        );
        let looked_up = map_message(&message, &info, Some(&Jid::pn(CUSTOMER)))
            .unwrap()
            .unwrap();
        assert_eq!(looked_up.contact_number, format!("+{CUSTOMER}"));
        // A lookup answer that is not a phone number does not count.
        assert!(map_message(&message, &info, Some(&Jid::lid("1"))).is_err());
    }

    #[test]
    fn group_broadcast_and_newsletter_messages_are_skipped() {
        let mut group = info("G", Jid::group("120363000000000001"));
        group.source.is_group = true;
        group.source.sender = Jid::pn(CUSTOMER);
        let status = info("S", Jid::status_broadcast());
        let newsletter = info("N", Jid::newsletter("120363000000000002"));
        for info in [group, status, newsletter] {
            assert_eq!(
                map_message(&wa::Message::text("hi all"), &info, None),
                Ok(None)
            );
        }
    }

    #[test]
    fn an_empty_push_name_is_none() {
        let mut info = info("P", Jid::pn(CUSTOMER));
        info.push_name = " ".to_owned();
        assert_eq!(mapped(&wa::Message::text("x"), &info).push_name, None);
    }

    fn receipt(kind: ReceiptType, ids: &[&str]) -> Event {
        Event::Receipt(
            Receipt::builder()
                .source(MessageSource {
                    chat: Jid::pn(CUSTOMER),
                    sender: Jid::pn(CUSTOMER),
                    ..Default::default()
                })
                .message_ids(ids.iter().map(|id| (*id).to_owned()).collect())
                .timestamp(at(1_700_000_200))
                .r#type(kind)
                .offline(false)
                .build(),
        )
    }

    #[test]
    fn delivery_and_read_receipts_update_sent_messages() {
        for (kind, want) in [
            (ReceiptType::Delivered, Status::Delivered),
            (ReceiptType::Read, Status::Read),
        ] {
            match map_event(&receipt(kind, &["M1", "M2"]), &ctx()) {
                Some(InboundEvent::Receipt {
                    whatsapp_ids,
                    status,
                }) => {
                    assert_eq!(whatsapp_ids, ["M1", "M2"]);
                    assert_eq!(status, want);
                }
                other => panic!("expected a receipt, got {other:?}"),
            }
        }
    }

    #[test]
    fn other_receipts_are_not_reported() {
        for kind in [
            ReceiptType::ReadSelf,
            ReceiptType::Sender,
            ReceiptType::Retry,
            ReceiptType::Played,
        ] {
            assert!(map_event(&receipt(kind, &["M1"]), &ctx()).is_none());
        }
        assert!(map_event(&receipt(ReceiptType::Read, &[]), &ctx()).is_none());
    }

    fn qr() -> Event {
        Event::PairingQrCode(
            PairingQrCode::builder()
                .code("2@abc,def,ghi".to_owned())
                .timeout(Duration::from_secs(60))
                .build(),
        )
    }

    #[test]
    fn a_qr_code_expires_after_its_timeout() {
        assert_eq!(
            session(map_event(&qr(), &ctx())),
            SessionEvent::Qr {
                code: "2@abc,def,ghi".to_owned(),
                expires_at: at(1_700_000_060),
            }
        );
    }

    #[test]
    fn qr_codes_are_not_shown_while_linking_by_pairing_code() {
        let ctx = EventContext {
            pairing_by_code: true,
            ..ctx()
        };
        assert!(map_event(&qr(), &ctx).is_none());
    }

    #[test]
    fn a_pairing_code_is_reported_with_its_expiry() {
        let event = Event::PairingCode(
            PairingCode::builder()
                .code("ABCD-EFGH".to_owned())
                .timeout(Duration::from_secs(180))
                .build(),
        );
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::PairCode {
                code: "ABCD-EFGH".to_owned(),
                expires_at: at(1_700_000_180),
            }
        );
    }

    #[test]
    fn connected_reports_the_linked_phone() {
        let event = Event::Connected(Connected::builder().build());
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::Connected {
                phone_number: Some(format!("+{OWN}")),
                push_name: Some("Toko Budi".to_owned()),
            }
        );
        let paired = Event::PairSuccess(
            PairSuccess::builder()
                .id(Jid::pn_device(OWN, 12))
                .lid(Jid::lid_device("200000000000001", 12))
                .business_name(String::new())
                .platform("android".to_owned())
                .build(),
        );
        assert_eq!(
            session(map_event(&paired, &ctx())),
            SessionEvent::Connected {
                phone_number: Some(format!("+{OWN}")),
                push_name: None,
            }
        );
    }

    #[test]
    fn a_lost_connection_is_retried_by_the_client() {
        let event = Event::Disconnected(
            Disconnected::builder()
                .reason(DisconnectReason::StreamEnded)
                .build(),
        );
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::Disconnected {
                reason: Some("connection lost: stream ended (EOF)".to_owned()),
                retrying: true,
            }
        );
    }

    #[test]
    fn being_logged_out_is_reported_as_logged_out() {
        for on_connect in [false, true] {
            let event = Event::LoggedOut(
                LoggedOut::builder()
                    .on_connect(on_connect)
                    .reason(ConnectFailureReason::LoggedOut)
                    .build(),
            );
            let SessionEvent::LoggedOut { reason } = session(map_event(&event, &ctx())) else {
                panic!("expected logged out");
            };
            assert!(reason.contains("removed"), "{reason}");
        }
        let locked = Event::LoggedOut(
            LoggedOut::builder()
                .on_connect(true)
                .reason(ConnectFailureReason::AccountLocked)
                .build(),
        );
        assert_eq!(
            session(map_event(&locked, &ctx())),
            SessionEvent::LoggedOut {
                reason: "WhatsApp locked this account".to_owned()
            }
        );
    }

    #[test]
    fn a_replaced_stream_fails_the_session_with_a_clear_reason() {
        let event = Event::StreamReplaced(StreamReplaced::builder().build());
        let SessionEvent::Failed { reason } = session(map_event(&event, &ctx())) else {
            panic!("expected failed");
        };
        assert!(reason.contains("another client took over"), "{reason}");
    }

    #[test]
    fn a_temporary_ban_reports_its_reason_and_end() {
        let event = Event::TemporaryBan(
            TemporaryBan::builder()
                .code(TempBanReason::SentToTooManyPeople)
                .expire(chrono::Duration::hours(24))
                .build(),
        );
        let SessionEvent::Banned { reason } = session(map_event(&event, &ctx())) else {
            panic!("expected banned");
        };
        assert!(reason.contains("101"), "{reason}");
        assert!(reason.contains("too many messages"), "{reason}");
        assert!(reason.contains("2023-11-15T22:13:20Z"), "{reason}");
    }

    #[test]
    fn expired_qr_codes_end_the_attempt() {
        let exhausted = |disconnected| {
            Event::PairingQrCodesExhausted(
                PairingQrCodesExhausted::builder()
                    .disconnected(disconnected)
                    .build(),
            )
        };
        assert_eq!(
            session(map_event(&exhausted(true), &ctx())),
            SessionEvent::Disconnected {
                reason: Some("the QR codes expired before one was scanned".to_owned()),
                retrying: false,
            }
        );
        // The socket stays up for a pairing code still on screen.
        assert!(map_event(&exhausted(false), &ctx()).is_none());
    }

    #[test]
    fn connect_failures_retry_only_when_whatsapp_says_so() {
        let failure = |reason| {
            Event::ConnectFailure(
                ConnectFailure::builder()
                    .reason(reason)
                    .message("busy".to_owned())
                    .build(),
            )
        };
        assert!(matches!(
            session(map_event(
                &failure(ConnectFailureReason::ServiceUnavailable),
                &ctx()
            )),
            SessionEvent::Disconnected { retrying: true, .. }
        ));
        assert!(matches!(
            session(map_event(&failure(ConnectFailureReason::BadUserAgent), &ctx())),
            SessionEvent::Failed { reason } if reason.contains("BadUserAgent: busy")
        ));
        assert!(matches!(
            session(map_event(
                &failure(ConnectFailureReason::TempBanned),
                &ctx()
            )),
            SessionEvent::Banned { .. }
        ));
    }

    #[test]
    fn numbers_convert_between_e164_and_phone_jids() {
        let jid = phone_jid("+6281234567890").unwrap();
        assert_eq!(jid.to_string(), "6281234567890@s.whatsapp.net");
        assert_eq!(phone_number(&jid).as_deref(), Some("+6281234567890"));
        assert_eq!(phone_jid("6281234567890"), Some(jid));
        for bad in [
            "",
            "+",
            "+62 812",
            "+0812345678",
            "+1234",
            "+1234567890123456",
            "abc",
        ] {
            assert_eq!(phone_jid(bad), None, "{bad:?}");
        }
        assert_eq!(phone_number(&Jid::lid(CUSTOMER_LID)), None);
    }

    #[test]
    fn send_failures_are_transient_only_for_connection_trouble() {
        let transient = [
            WaSendError::NotLoggedIn,
            WaSendError::Client(ClientError::NotConnected),
            WaSendError::Iq(IqError::Timeout),
            WaSendError::Iq(IqError::NotConnected),
            WaSendError::Iq(IqError::ServerError {
                code: 503,
                text: "unavailable".to_owned(),
                error_type: None,
                backoff: None,
            }),
        ];
        for err in transient {
            assert!(
                matches!(classify_send_error(&err), SendError::NotConnected),
                "{err}"
            );
        }
        let permanent = [
            WaSendError::InvalidRequest("bad jid".to_owned()),
            WaSendError::Internal(anyhow::anyhow!("no devices for user")),
            WaSendError::Iq(IqError::ServerError {
                code: 404,
                text: "item-not-found".to_owned(),
                error_type: None,
                backoff: None,
            }),
        ];
        for err in permanent {
            assert!(
                matches!(classify_send_error(&err), SendError::Rejected(_)),
                "{err}"
            );
        }
        let read_err = anyhow::Error::from(ClientError::NotConnected);
        assert!(matches!(
            classify_read_error(&read_err),
            SendError::NotConnected
        ));
    }

    // -----------------------------------------------------------------------------------------
    // Client life cycle over a network that refuses every connection.
    // -----------------------------------------------------------------------------------------

    struct RefusingTransport {
        attempts: mpsc::UnboundedSender<Instant>,
    }

    #[async_trait]
    impl TransportFactory for RefusingTransport {
        async fn create_transport(
            &self,
        ) -> anyhow::Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>)> {
            let _ = self.attempts.send(Instant::now());
            anyhow::bail!("tests have no network")
        }
    }

    struct RefusingHttp;

    #[async_trait]
    impl HttpClient for RefusingHttp {
        async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
            anyhow::bail!("tests have no network")
        }
    }

    struct Harness {
        wa: RealWhatsApp,
        inbound: mpsc::Receiver<Inbound>,
        attempts: mpsc::UnboundedReceiver<Instant>,
        root: tempfile::TempDir,
    }

    fn harness() -> Harness {
        let (tx, inbound) = mpsc::channel(64);
        let (attempts_tx, attempts) = mpsc::unbounded_channel();
        let network = Network {
            transport: Arc::new(RefusingTransport {
                attempts: attempts_tx,
            }),
            http: Arc::new(RefusingHttp),
        };
        Harness {
            wa: RealWhatsApp::with_network(tx, network),
            inbound,
            attempts,
            root: tempfile::tempdir().unwrap(),
        }
    }

    impl Harness {
        /// `sessions/<tenant-id>/`, created as the session manager does.
        fn folder(&self, tenant: TenantId) -> PathBuf {
            let folder = self.root.path().join("sessions").join(tenant.to_string());
            std::fs::create_dir_all(&folder).unwrap();
            folder
        }

        async fn next_event(&mut self) -> Inbound {
            tokio::time::timeout(DEADLINE, self.inbound.recv())
                .await
                .expect("no event before the deadline")
                .expect("inbound channel closed")
        }

        /// The next `Connecting` of `tenant`, past the "cannot reach WhatsApp" reports that
        /// an offline client makes while it retries.
        async fn expect_connecting(&mut self, tenant: TenantId) {
            loop {
                let event = self.next_event().await;
                match event.event {
                    InboundEvent::Session(SessionEvent::Disconnected {
                        retrying: true, ..
                    }) => {}
                    InboundEvent::Session(SessionEvent::Connecting) if event.tenant == tenant => {
                        return;
                    }
                    other => panic!("expected Connecting of {tenant}, got {other:?}"),
                }
            }
        }

        /// The report that `tenant`'s client could not reach WhatsApp and keeps retrying.
        async fn expect_unreachable(&mut self, tenant: TenantId) {
            let event = self.next_event().await;
            assert_eq!(event.tenant, tenant);
            match event.event {
                InboundEvent::Session(SessionEvent::Disconnected {
                    reason: Some(reason),
                    retrying: true,
                }) => assert!(reason.contains("cannot reach WhatsApp"), "{reason}"),
                other => panic!("expected an unreachable report, got {other:?}"),
            }
        }

        /// When the next connection attempt was made.
        async fn transport_attempt(&mut self) -> Instant {
            tokio::time::timeout(DEADLINE, self.attempts.recv())
                .await
                .expect("no connection attempt before the deadline")
                .expect("transport dropped")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offline_client_keeps_retrying_and_stops_and_resumes_from_its_store() {
        let mut h = harness();
        let tenant = TenantId::new();
        let folder = h.folder(tenant);

        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        h.expect_connecting(tenant).await;
        assert!(folder.join("whatsapp.db").is_file());
        assert!(h.wa.is_running(tenant));
        assert!(!h.wa.is_connected(tenant));
        assert!(matches!(
            h.wa.send_text(tenant, "+6281234567890", "hi").await,
            Err(SendError::NotConnected)
        ));
        assert!(matches!(
            h.wa.mark_read(tenant, "+6281234567890", &["M1".to_owned()])
                .await,
            Err(SendError::NotConnected)
        ));

        // The first attempt, then a retry after the client's backoff (WhatsApp Web's: 1 s,
        // ±10 %): it keeps going, and says each time that it cannot reach WhatsApp.
        let first = h.transport_attempt().await;
        h.expect_unreachable(tenant).await;
        let second = h.transport_attempt().await;
        h.expect_unreachable(tenant).await;
        assert!(h.wa.is_running(tenant), "the client gave up");
        let waited = second - first;
        assert!(
            waited >= Duration::from_millis(850),
            "retried after {waited:?}"
        );

        // The device's identity, kept in the store across restarts.
        let identity = |client: &Client| {
            let device = client.persistence_manager().get_device_snapshot();
            (device.registration_id, device.noise_key.public_key)
        };

        // Connecting a running tenant changes nothing.
        let client = h.wa.client(tenant).unwrap();
        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        assert!(Arc::ptr_eq(&client, &h.wa.client(tenant).unwrap()));
        let before = identity(&client);
        drop(client);

        let started = Instant::now();
        assert_eq!(h.wa.stop(tenant).await, Some(Stopped::Cleanly));
        assert!(started.elapsed() < STOP_TIMEOUT);
        assert!(!h.wa.is_running(tenant));
        assert!(folder.join("whatsapp.db").is_file(), "the store is kept");

        // A restart builds a new client on the same store, with the same identity.
        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        h.expect_connecting(tenant).await;
        assert!(h.wa.is_running(tenant));
        h.transport_attempt().await;
        let after = identity(&h.wa.client(tenant).unwrap());
        assert!(before == after, "the restarted client is a new device");

        tokio::time::timeout(DEADLINE, h.wa.shutdown())
            .await
            .expect("shutdown did not finish");
        assert!(!h.wa.is_running(tenant));
        assert_eq!(h.wa.stop(tenant).await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_stops_every_tenant_together() {
        let mut h = harness();
        let tenants = [TenantId::new(), TenantId::new(), TenantId::new()];
        for tenant in tenants {
            let folder = h.folder(tenant);
            h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
            h.expect_connecting(tenant).await;
        }
        let started = Instant::now();
        tokio::time::timeout(DEADLINE, h.wa.shutdown())
            .await
            .expect("shutdown did not finish");
        assert!(started.elapsed() < STOP_TIMEOUT, "{:?}", started.elapsed());
        for tenant in tenants {
            assert!(!h.wa.is_running(tenant));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logging_out_an_offline_client_stops_it_and_reports_nothing() {
        let mut h = harness();
        let tenant = TenantId::new();
        let folder = h.folder(tenant);
        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        h.expect_connecting(tenant).await;

        let unlinked = tokio::time::timeout(DEADLINE, h.wa.logout(tenant))
            .await
            .expect("logout did not finish");
        assert!(!unlinked, "an offline client cannot have told WhatsApp");
        assert!(!h.wa.is_running(tenant));
        // The crate announces its own logout; AEZEN's caller records it instead. (The refused
        // connection attempt before it may have reported its own retry meanwhile.)
        while let Ok(Inbound { event, .. }) = h.inbound.try_recv() {
            assert!(
                matches!(
                    event,
                    InboundEvent::Session(SessionEvent::Disconnected { retrying: true, .. })
                ),
                "logout reported {event:?}"
            );
        }
        // Nothing runs any more: a second logout is a no-op.
        assert!(!h.wa.logout(tenant).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pairing_by_code_needs_a_phone_number() {
        let mut h = harness();
        let tenant = TenantId::new();
        let folder = h.folder(tenant);
        let bad = LinkMethod::PairCode {
            phone_number: "0812-not-a-number".to_owned(),
        };
        assert!(h.wa.connect(tenant, &folder, bad).await.is_err());
        assert!(!h.wa.is_running(tenant));
        assert!(h.inbound.try_recv().is_err(), "nothing was started");

        let good = LinkMethod::PairCode {
            phone_number: "+6281234567890".to_owned(),
        };
        h.wa.connect(tenant, &folder, good).await.unwrap();
        h.expect_connecting(tenant).await;
        assert!(h.wa.is_running(tenant));
        h.wa.shutdown().await;
    }

    fn inbound_message(message: wa::Message, info: MessageInfo) -> InboundMessage {
        InboundMessage::builder()
            .message(Arc::new(message))
            .info(Arc::new(info))
            .build()
    }

    /// A running client (offline) to hand to the hook and the pump.
    async fn offline_client(h: &mut Harness, tenant: TenantId) -> Arc<Client> {
        let folder = h.folder(tenant);
        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        h.expect_connecting(tenant).await;
        h.wa.client(tenant).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_durability_hook_acknowledges_only_what_ingest_stored() {
        let mut h = harness();
        let tenant = TenantId::new();
        let client = offline_client(&mut h, tenant).await;
        let (tx, mut ingest) = mpsc::channel(8);
        let hook = DurableIngest {
            tenant,
            inbound: tx,
        };
        let batch = [inbound_message(
            wa::Message::text("halo"),
            info("H1", Jid::pn(CUSTOMER)),
        )];

        // Stored: the hook answers Ok, so the crate acknowledges to WhatsApp.
        let (answer, delivered) =
            tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
                let Inbound { tenant: t, event } = ingest.recv().await.unwrap();
                let InboundEvent::Message {
                    message,
                    stored: Some(stored),
                } = event
                else {
                    panic!("expected a message awaiting storage");
                };
                assert_eq!(t, tenant);
                stored.send(Ok(Ingested::Duplicate)).unwrap();
                message
            });
        answer.unwrap();
        assert_eq!(delivered.whatsapp_id, "H1");
        assert_eq!(delivered.contact_number, format!("+{CUSTOMER}"));

        // Not stored (ingest rolled back and dropped the reply): Err, so WhatsApp redelivers.
        let (answer, ()) = tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
            drop(ingest.recv().await.unwrap());
        });
        assert!(answer.is_err());

        // Nothing for the inbox: acknowledged without bothering ingest.
        let mut group = info("G1", Jid::group("120363000000000001"));
        group.source.is_group = true;
        let skipped = [inbound_message(wa::Message::text("hi all"), group)];
        hook.on_messages(Arc::clone(&client), &skipped)
            .await
            .unwrap();
        assert!(ingest.try_recv().is_err());

        h.wa.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lid_message_is_keyed_by_the_number_the_store_knows_or_left_for_redelivery() {
        let mut h = harness();
        let tenant = TenantId::new();
        let client = offline_client(&mut h, tenant).await;
        let (tx, mut ingest) = mpsc::channel(8);
        let hook = DurableIngest {
            tenant,
            inbound: tx,
        };
        let batch = [inbound_message(
            wa::Message::text("dari lid"),
            info("L1", Jid::lid(CUSTOMER_LID)),
        )];

        // Unknown number: not acknowledged, nothing stored under a LID.
        assert!(hook.on_messages(Arc::clone(&client), &batch).await.is_err());
        assert!(ingest.try_recv().is_err());

        // Once the client's store knows the LID's number, the message joins that contact.
        client
            .add_lid_pn_mapping(
                CUSTOMER_LID,
                CUSTOMER,
                whatsapp_rust::types::LearningSource::PeerLidMessage,
            )
            .await
            .unwrap();
        let (answer, delivered) =
            tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
                let Inbound { event, .. } = ingest.recv().await.unwrap();
                let InboundEvent::Message {
                    message,
                    stored: Some(stored),
                } = event
                else {
                    panic!("expected a message awaiting storage");
                };
                stored.send(Ok(Ingested::Duplicate)).unwrap();
                message
            });
        answer.unwrap();
        assert_eq!(delivered.contact_number, format!("+{CUSTOMER}"));

        h.wa.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pump_reports_in_order_and_nothing_after_the_session_ended() {
        let mut h = harness();
        let tenant = TenantId::new();
        let client = offline_client(&mut h, tenant).await;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (tx, mut inbound) = mpsc::channel(8);
        let ended = Arc::new(AtomicBool::new(false));
        let pump = tokio::spawn(pump(
            tenant,
            events_rx,
            Arc::downgrade(&client),
            Arc::clone(&ended),
            tx,
            false,
            Weak::new(),
        ));

        // A batch the hook already committed is not delivered twice.
        let committed = MessageBatch::builder()
            .messages(Arc::from(vec![inbound_message(
                wa::Message::text("once"),
                info("K1", Jid::pn(CUSTOMER)),
            )]))
            .origin(whatsapp_rust::types::events::BatchOrigin::Live)
            .hook_committed(true)
            .build();
        for event in [
            Event::Messages(committed),
            qr(),
            receipt(ReceiptType::Read, &["S1"]),
            Event::StreamReplaced(StreamReplaced::builder().build()),
            qr(),
        ] {
            events_tx.send(Arc::new(event)).unwrap();
        }
        drop(events_tx);
        tokio::time::timeout(DEADLINE, pump)
            .await
            .expect("the pump did not finish")
            .unwrap();

        let mut got = Vec::new();
        while let Ok(Inbound { event, .. }) = inbound.try_recv() {
            got.push(event);
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(matches!(
            got[0],
            InboundEvent::Session(SessionEvent::Qr { .. })
        ));
        assert!(matches!(got[1], InboundEvent::Receipt { .. }));
        assert!(matches!(
            got[2],
            InboundEvent::Session(SessionEvent::Failed { .. })
        ));
        assert!(ended.load(Ordering::SeqCst));

        h.wa.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_that_ended_for_good_gives_up_its_client() {
        let mut h = harness();
        let tenant = TenantId::new();
        let client = offline_client(&mut h, tenant).await;
        let ended = match h.wa.sessions().get(&tenant) {
            Some(Slot::Running(session)) => Arc::clone(&session.ended),
            _ => panic!("the tenant's client is not running"),
        };
        // A pump on this session's flag, as `connect` wires it, fed the ending event.
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (tx, mut inbound) = mpsc::channel(8);
        let pump = tokio::spawn(pump(
            tenant,
            events_rx,
            Arc::downgrade(&client),
            ended,
            tx,
            false,
            Arc::downgrade(&h.wa.sessions),
        ));
        let client = {
            let weak = Arc::downgrade(&client);
            drop(client);
            weak
        };
        events_tx
            .send(Arc::new(Event::StreamReplaced(
                StreamReplaced::builder().build(),
            )))
            .unwrap();
        tokio::time::timeout(DEADLINE, pump)
            .await
            .expect("the pump did not finish")
            .unwrap();

        // The end is reported, then the session leaves the map and its client is released.
        assert!(matches!(
            inbound.try_recv().map(|i| i.event),
            Ok(InboundEvent::Session(SessionEvent::Failed { .. }))
        ));
        assert!(h.wa.client(tenant).is_none());
        assert!(!h.wa.is_running(tenant));
        tokio::time::timeout(DEADLINE, async {
            while client.upgrade().is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the ended session's client is still alive");

        h.wa.shutdown().await;
    }
}
