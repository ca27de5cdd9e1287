//! The SIMULATED WhatsApp backend: no network, nothing leaves the machine.
//!
//! It plays the whole session life cycle so the product can be tried offline and tested:
//! `connect` on an unlinked folder shows obviously fake QR codes (`SIMULATED-QR-…`, a new one
//! every 20 s after a first of 60 s, six in all, then the attempt ends as the real client's
//! does), or a fake pairing code; `simulate/scan` links it (a `simulated-link.json` in the
//! session folder stands for the real store's device keys) and connects; a linked folder
//! resumes without pairing; `simulate/unlink` is the phone removing the device (logged out).
//! Sends succeed with a fake id (`SIMULATED-…`) while connected. Incoming messages and receipts
//! are injected by the `simulate/*` endpoints through the same inbound channel the real
//! adapter uses.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    BackendKind, DownloadError, Inbound, InboundEvent, LinkMethod, OutgoingMedia, SendError,
    SessionError, SessionEvent, WhatsApp,
};
use crate::ids::TenantId;

/// Numbers the simulated WhatsApp refuses to send to, as the real one refuses a number that
/// has no WhatsApp account: country code +999, which no country has. For trying (and
/// testing) a failed send.
pub const NOT_ON_WHATSAPP: &str = "+999";

/// The file that marks a simulated session as linked.
const LINK_FILE: &str = "simulated-link.json";
const QR_CODES: usize = 6;
const PAIR_CODE_VALID: Duration = Duration::from_secs(180);

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Link {
    phone_number: String,
    push_name: String,
}

struct Session {
    dir: PathBuf,
    connected: bool,
    /// Rotates QR codes or expires a pair code while pairing.
    pairing: Option<JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = self.pairing.take() {
            task.abort();
        }
    }
}

type SessionMap = Arc<Mutex<HashMap<TenantId, Session>>>;

pub struct Simulated {
    sessions: SessionMap,
    /// How long each QR code lasts after the first (which lasts three times as long).
    qr_interval: Duration,
    inbound: mpsc::Sender<Inbound>,
    /// The latest [`READ_LOG_LEN`] mark-read calls, for tests to check that read state
    /// reached "WhatsApp" (bounded: a server on the simulated backend may run for long).
    read_log: Mutex<VecDeque<(TenantId, String, Vec<String>)>>,
    /// The latest [`READ_LOG_LEN`] texts handed to "WhatsApp" to send, `(tenant, to, text)`,
    /// for tests to check what reached the WhatsApp boundary (and what never did).
    sent_log: Mutex<VecDeque<(TenantId, String, String)>>,
    /// Media items "on WhatsApp's servers", by key: their bytes, and how many downloads of
    /// each are still to fail (a network error, then an expired copy: see [`Stash`]).
    media: Mutex<HashMap<String, Stash>>,
    /// The latest media items sent: `(tenant, to, kind, mime type, bytes, caption)`.
    sent_media: Mutex<VecDeque<(TenantId, SentMedia)>>,
}

/// An incoming media item's bytes, kept for the simulated downloads. Bounded: the oldest
/// go past [`MEDIA_STASH_LEN`] items.
struct Stash {
    bytes: Arc<Vec<u8>>,
    /// Downloads still to fail with a network error.
    failures: u32,
    /// The copy "expired": downloads fail as expired until the phone re-uploads it.
    expired: bool,
    stashed: u64,
}

const MEDIA_STASH_LEN: usize = 256;

/// A media item the simulated backend was asked to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMedia {
    pub to: String,
    pub kind: crate::media::MediaKind,
    pub mime_type: String,
    pub size: usize,
    pub sha256: String,
    pub caption: String,
    pub file_name: Option<String>,
    pub voice: bool,
}

/// Mark-read and send calls the simulated backend remembers (each log).
const READ_LOG_LEN: usize = 1_000;

/// Appends to a bounded log, dropping its oldest entry when full.
fn remember<T>(log: &Mutex<VecDeque<T>>, entry: T) {
    let mut log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if log.len() == READ_LOG_LEN {
        log.pop_front();
    }
    log.push_back(entry);
}

/// Why a simulation request cannot be carried out now.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotPairing(pub &'static str);

impl Simulated {
    pub fn new(inbound: mpsc::Sender<Inbound>, qr_interval: Duration) -> Self {
        Self {
            sessions: SessionMap::default(),
            qr_interval,
            inbound,
            read_log: Mutex::new(VecDeque::new()),
            sent_log: Mutex::new(VecDeque::new()),
            media: Mutex::new(HashMap::new()),
            sent_media: Mutex::new(VecDeque::new()),
        }
    }

    /// Puts an incoming item's bytes "on WhatsApp's servers" and returns the source its
    /// message carries. Its first `failures` downloads fail; `expired`: the copy is gone
    /// until a re-upload is requested.
    pub fn stash_media(&self, bytes: Vec<u8>, failures: u32, expired: bool) -> serde_json::Value {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let mut media = self
            .media
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if media.len() >= MEDIA_STASH_LEN
            && let Some(oldest) = media
                .iter()
                .min_by_key(|(_, s)| s.stashed)
                .map(|(k, _)| k.clone())
        {
            media.remove(&oldest);
        }
        let stashed = media.values().map(|s| s.stashed).max().unwrap_or(0) + 1;
        media.insert(
            key.clone(),
            Stash {
                bytes: Arc::new(bytes),
                failures,
                expired,
                stashed,
            },
        );
        serde_json::json!({ "simulated": key })
    }

    /// The media items sent for `tenant` among the latest [`READ_LOG_LEN`].
    pub fn sent_media(&self, tenant: TenantId) -> Vec<SentMedia> {
        self.sent_media
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, sent)| sent.clone())
            .collect()
    }

    fn stash_key(source: &serde_json::Value) -> Result<String, DownloadError> {
        source
            .get("simulated")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DownloadError::Failed("not a simulated media source".to_owned()))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Session>> {
        lock(&self.sessions)
    }

    /// Injects an inbound event, as the real network would.
    pub async fn inject(&self, tenant: TenantId, event: InboundEvent) {
        inject(&self.inbound, tenant, event).await;
    }

    /// The phone scans the QR code (or enters the pair code): the session links and connects.
    pub async fn scan(&self, tenant: TenantId) -> Result<(), NotPairing> {
        let (dir, link) = {
            let mut sessions = self.sessions();
            let session = sessions
                .get_mut(&tenant)
                .filter(|s| s.pairing.is_some())
                .ok_or(NotPairing(
                    "no QR code or pairing code is being shown; toggle WhatsApp on first",
                ))?;
            if let Some(task) = session.pairing.take() {
                task.abort();
            }
            session.connected = true;
            (session.dir.clone(), fake_link(tenant))
        };
        let json = serde_json::to_vec(&link).unwrap_or_default();
        if let Err(err) = tokio::fs::write(dir.join(LINK_FILE), json).await {
            tracing::error!(tenant = %tenant, error = %err, "cannot write simulated link");
        }
        self.inject(tenant, connected(link)).await;
        Ok(())
    }

    /// The phone removes this linked device: the session is logged out.
    pub async fn unlink(&self, tenant: TenantId) -> Result<(), NotPairing> {
        let removed = self.sessions().remove(&tenant);
        if removed.is_none() {
            return Err(NotPairing("the simulated session is not running"));
        }
        let reason = "the phone removed this linked device".to_owned();
        self.inject(
            tenant,
            InboundEvent::Session(SessionEvent::LoggedOut { reason }),
        )
        .await;
        Ok(())
    }

    /// The mark-read calls made for `tenant` among the latest [`READ_LOG_LEN`]: `(chat, ids)`.
    pub fn reads(&self, tenant: TenantId) -> Vec<(String, Vec<String>)> {
        self.read_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(t, _, _)| *t == tenant)
            .map(|(_, chat, ids)| (chat.clone(), ids.clone()))
            .collect()
    }

    /// The texts sent for `tenant` among the latest [`READ_LOG_LEN`]: `(to, text)`.
    pub fn sent(&self, tenant: TenantId) -> Vec<(String, String)> {
        self.sent_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(t, _, _)| *t == tenant)
            .map(|(_, to, text)| (to.clone(), text.clone()))
            .collect()
    }

    async fn start(&self, tenant: TenantId, dir: &Path, link: LinkMethod) {
        self.inject(tenant, InboundEvent::Session(SessionEvent::Connecting))
            .await;
        let linked = match tokio::fs::read(dir.join(LINK_FILE)).await {
            Ok(bytes) => serde_json::from_slice::<Link>(&bytes).ok(),
            Err(_) => None,
        };
        if let Some(link) = linked {
            if let Some(session) = self.sessions().get_mut(&tenant) {
                session.connected = true;
            }
            self.inject(tenant, connected(link)).await;
            return;
        }
        let inbound = self.inbound.clone();
        let sessions = Arc::clone(&self.sessions);
        let next_qr = self.qr_interval;
        let pairing = tokio::spawn(async move {
            let reason = match link {
                LinkMethod::Qr => {
                    for i in 0..QR_CODES {
                        let valid = if i == 0 { next_qr * 3 } else { next_qr };
                        let code = format!(
                            "SIMULATED-QR-{i}-{}-not-a-real-whatsapp-code",
                            uuid::Uuid::new_v4().simple()
                        );
                        let expires_at = Utc::now() + valid;
                        inject(
                            &inbound,
                            tenant,
                            InboundEvent::Session(SessionEvent::Qr { code, expires_at }),
                        )
                        .await;
                        tokio::time::sleep(valid).await;
                    }
                    "the QR codes expired before one was scanned"
                }
                LinkMethod::PairCode { .. } => {
                    let code = format!("SIM{:05}", rand::random::<u32>() % 100_000);
                    let expires_at = Utc::now() + PAIR_CODE_VALID;
                    inject(
                        &inbound,
                        tenant,
                        InboundEvent::Session(SessionEvent::PairCode { code, expires_at }),
                    )
                    .await;
                    tokio::time::sleep(PAIR_CODE_VALID).await;
                    "the pairing code expired before it was entered"
                }
            };
            // The attempt is over, as the real client's is: forget the session (without
            // aborting this very task, which `Session::drop` would do).
            if let Some(mut ended) = lock(&sessions).remove(&tenant) {
                ended.pairing.take();
            }
            let event = SessionEvent::Disconnected {
                reason: Some(reason.to_owned()),
                retrying: false,
            };
            inject(&inbound, tenant, InboundEvent::Session(event)).await;
        });
        match self.sessions().get_mut(&tenant) {
            Some(session) => session.pairing = Some(pairing),
            None => pairing.abort(),
        }
    }
}

fn lock(sessions: &SessionMap) -> std::sync::MutexGuard<'_, HashMap<TenantId, Session>> {
    sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn inject(inbound: &mpsc::Sender<Inbound>, tenant: TenantId, event: InboundEvent) {
    // The receiver lives as long as the application; a failed send means it is stopping.
    let _ = inbound.send(Inbound { tenant, event }).await;
}

/// A fake, stable phone identity for a tenant's simulated link.
fn fake_link(tenant: TenantId) -> Link {
    let digits: String = tenant
        .0
        .as_u128()
        .to_string()
        .chars()
        .rev()
        .take(7)
        .collect();
    Link {
        phone_number: format!("+1555{digits}"),
        push_name: "Simulated phone".to_owned(),
    }
}

/// What "WhatsApp" answers a send to `to`, text or media: not connected, a `+999…` number
/// refused as not on WhatsApp, or a fresh message id.
fn send_outcome(connected: bool, to: &str) -> Result<String, SendError> {
    if !connected {
        Err(SendError::NotConnected)
    } else if to.starts_with(NOT_ON_WHATSAPP) {
        Err(SendError::Rejected(
            "this number is not on WhatsApp (simulated: +999 numbers never are)".to_owned(),
        ))
    } else {
        Ok(format!("SIMULATED-{}", uuid::Uuid::new_v4().simple()))
    }
}

fn connected(link: Link) -> InboundEvent {
    InboundEvent::Session(SessionEvent::Connected {
        phone_number: Some(link.phone_number),
        push_name: Some(link.push_name),
    })
}

impl WhatsApp for Simulated {
    fn send_media<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        media: OutgoingMedia<'a>,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let connected = self.is_connected(tenant);
        if connected {
            use sha2::Digest;
            let sent = SentMedia {
                to: to.to_owned(),
                kind: media.kind,
                mime_type: media.mime_type.to_owned(),
                size: media.bytes.len(),
                sha256: hex::encode(sha2::Sha256::digest(media.bytes)),
                caption: media.caption.to_owned(),
                file_name: media.file_name.map(str::to_owned),
                voice: media.voice,
            };
            remember(&self.sent_media, (tenant, sent));
        }
        let sent = send_outcome(connected, to);
        Box::pin(async move { sent })
    }

    /// Downloads are served from what [`Simulated::stash_media`] kept; they need no session
    /// (as WhatsApp's CDN does not).
    fn download_media<'a>(
        &'a self,
        _tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<Vec<u8>, DownloadError>> {
        let result = Self::stash_key(source).and_then(|key| {
            let mut media = self
                .media
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stash = media
                .get_mut(&key)
                .ok_or_else(|| DownloadError::Failed("simulated: the item is gone".to_owned()))?;
            if stash.expired {
                return Err(DownloadError::Expired);
            }
            if stash.failures > 0 {
                stash.failures -= 1;
                return Err(DownloadError::Failed(
                    "simulated: the download was cut off".to_owned(),
                ));
            }
            Ok(Arc::clone(&stash.bytes))
        });
        Box::pin(async move { result.map(|bytes| bytes.as_ref().clone()) })
    }

    fn request_reupload<'a>(
        &'a self,
        _tenant: TenantId,
        source: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, DownloadError>> {
        let result = Self::stash_key(source).and_then(|key| {
            let mut media = self
                .media
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stash = media
                .get_mut(&key)
                .ok_or_else(|| DownloadError::Failed("simulated: the item is gone".to_owned()))?;
            stash.expired = false;
            Ok(serde_json::json!({ "simulated": key, "reuploaded": true }))
        });
        Box::pin(async move { result })
    }

    fn send_text<'a>(
        &'a self,
        tenant: TenantId,
        to: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let connected = self.is_connected(tenant);
        if connected {
            remember(&self.sent_log, (tenant, to.to_owned(), text.to_owned()));
        }
        let sent = send_outcome(connected, to);
        async move { sent }.boxed()
    }

    fn mark_read<'a>(
        &'a self,
        tenant: TenantId,
        chat: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let result = if self.is_connected(tenant) {
            remember(&self.read_log, (tenant, chat.to_owned(), ids.to_vec()));
            Ok(())
        } else {
            Err(SendError::NotConnected)
        };
        async move { result }.boxed()
    }

    fn is_connected(&self, tenant: TenantId) -> bool {
        self.sessions().get(&tenant).is_some_and(|s| s.connected)
    }

    fn connect<'a>(
        &'a self,
        tenant: TenantId,
        session_dir: &'a Path,
        link: LinkMethod,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        async move {
            {
                let mut sessions = self.sessions();
                if sessions.contains_key(&tenant) {
                    return Ok(());
                }
                sessions.insert(
                    tenant,
                    Session {
                        dir: session_dir.to_owned(),
                        connected: false,
                        pairing: None,
                    },
                );
            }
            self.start(tenant, session_dir, link).await;
            Ok(())
        }
        .boxed()
    }

    fn disconnect(&self, tenant: TenantId) -> BoxFuture<'_, ()> {
        drop(self.sessions().remove(&tenant));
        async {}.boxed()
    }

    fn logout(&self, tenant: TenantId) -> BoxFuture<'_, bool> {
        let unlinked = self
            .sessions()
            .remove(&tenant)
            .is_some_and(|session| session.connected);
        async move { unlinked }.boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.sessions().clear();
        async {}.boxed()
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Simulated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_read_log_keeps_only_the_latest_calls() {
        let (inbound, mut events) = mpsc::channel(1024);
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let simulated = Simulated::new(inbound, Duration::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new();
        simulated
            .connect(tenant, dir.path(), LinkMethod::Qr)
            .await
            .unwrap();
        // The session shows a QR code once its start task has run.
        let scanned = async {
            while simulated.scan(tenant).await.is_err() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), scanned)
            .await
            .expect("the simulated session never showed a QR code");
        for i in 0..READ_LOG_LEN + 5 {
            simulated
                .mark_read(tenant, "chat", &[i.to_string()])
                .await
                .unwrap();
        }
        let reads = simulated.reads(tenant);
        assert_eq!(reads.len(), READ_LOG_LEN);
        assert_eq!(reads[0].1, ["5"]);
        assert_eq!(reads[READ_LOG_LEN - 1].1, [(READ_LOG_LEN + 4).to_string()]);
        drain.abort();
    }
}
