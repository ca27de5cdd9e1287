//! The REAL WhatsApp backend: one whatsapp-rust client per tenant.
//!
//! Each tenant's client keeps its device keys in `sessions/<tenant-id>/whatsapp.db` (the
//! crate's `SqliteStore`), so a linked tenant resumes without pairing after a restart. This
//! module owns the clients and the translation from whatsapp-rust's events to AEZEN's
//! ([`map_event`], [`map_message`]); it does not decide session state (that is
//! [`super::sessions`]) and it does not store messages (that is ingest).
//!
//! How events travel:
//! - Messages go through an [`InboundDurabilityHook`](whatsapp_rust::InboundDurabilityHook):
//!   each 1:1 text or media message is sent to ingest with a `stored` reply, and the hook
//!   returns `Ok` (so the crate acknowledges to WhatsApp) only once every message of the batch
//!   is committed. Otherwise WhatsApp redelivers; ingest recognises a redelivered id.
//! - Everything else (session life cycle, receipts) is forwarded in arrival order from the
//!   crate's event bus to a per-tenant task that maps it and puts it on the inbound channel.
//!   Once AEZEN stops a client, or its session ended for good, its later events are dropped:
//!   the caller records such changes itself. A session that ended for good (logged out, QR
//!   codes expired, replaced, banned) is stopped and forgotten right after its end is
//!   reported, so it does not hold its client, store connection and files until the tenant
//!   connects again.
//!
//! Media: an incoming item arrives as metadata (kind, type, size, thumbnail) with a source,
//! opaque to the rest of AEZEN, that names its copy on WhatsApp's CDN and the message it came
//! in. Nothing is downloaded at ingest: `download_media` fetches and decrypts the bytes when
//! asked; a copy the CDN no longer has (`DownloadError::Expired`) is asked for again from the
//! sender's phone with `request_reupload`, which returns the source to download from next.
//! `send_media` uploads the bytes, then sends the message that carries them.
//!
//! Using an unofficial client may break WhatsApp's terms and get a number banned.
//!
//! The files: `mapping` (the pure translation, with its unit tests), `media` (media in and
//! out: the source format, downloads, re-uploads and outgoing messages, with their unit
//! tests), `pump` (the event pump and the durability hook), `network` (the network seam) and
//! `tests` (the client's life cycle on networks that refuse to connect).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::wacore::store::DevicePropsOverride;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, Jid, TokioRuntime};

use super::{
    BackendKind, DownloadError, Inbound, InboundEvent, LinkMethod, OutgoingMedia, SendError,
    SessionError, SessionEvent, WhatsApp,
};
use crate::ids::TenantId;

mod mapping;
mod media;
mod network;
mod pump;
#[cfg(test)]
mod tests;

pub use mapping::{
    EventContext, UnknownNumber, classify_send_error, map_event, map_message, map_receipt,
    phone_jid, phone_number,
};
pub use network::Network;

use mapping::classify_read_error;
use network::{SharedHttp, SharedTransport};
use pump::{DurableIngest, Forwarder, pump};

/// The session store's file inside the tenant's session folder.
pub const STORE_FILE: &str = "whatsapp.db";
/// How this device is named in the phone's Linked Devices list (set at first pairing).
const DEVICE_NAME: &str = "AEZEN";
/// How long one client may take to log out, or to stop, before it is aborted.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The chat of a phone number AEZEN sends to; a number that is not one is refused for good.
fn recipient(number: &str) -> Result<Jid, SendError> {
    phone_jid(number).ok_or_else(|| {
        SendError::Rejected(format!(
            "{number:?} is not a phone number in international form"
        ))
    })
}

async fn inject(inbound: &mpsc::Sender<Inbound>, tenant: TenantId, event: InboundEvent) -> bool {
    // The receiver lives as long as the application; a failed send means it is stopping.
    inbound.send(Inbound { tenant, event }).await.is_ok()
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
        // The session manager logs it, once, at the level it deserves.
        SessionEvent::Disconnected { reason, retrying } => tracing::debug!(
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

impl WhatsApp for RealWhatsApp {
    fn send_text<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        async move {
            let jid = recipient(to)?;
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
            let pn = recipient(chat)?;
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

    fn send_media<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        media: OutgoingMedia<'a>,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        async move {
            let jid = recipient(to)?;
            let client = self.ready_client(tenant).ok_or(SendError::NotConnected)?;
            media::send(tenant, &client, jid, media).await
        }
        .boxed()
    }

    fn download_media<'a>(
        &'a self,
        tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Vec<u8>, DownloadError>> {
        async move {
            let client = self
                .ready_client(tenant)
                .ok_or(DownloadError::NotConnected)?;
            media::download(&client, source).await
        }
        .boxed()
    }

    fn request_reupload<'a>(
        &'a self,
        tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, DownloadError>> {
        async move {
            let client = self
                .ready_client(tenant)
                .ok_or(DownloadError::NotConnected)?;
            media::request_reupload(&client, source).await
        }
        .boxed()
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
