//! The session manager: at most one WhatsApp session per tenant, its store in
//! `sessions/<tenant-id>/`, and its state as the dashboard sees it.
//!
//! States: `disconnected → connecting → qr | pair_code → connected`, plus `logged_out`,
//! `banned` and `failed` (each with a reason). The backend reports progress as
//! [`SessionEvent`]s; each change becomes a `whatsapp_status` event (and each QR code a `qr`
//! event) in the tenant's event log and on its Socket.IO room, and a log line.
//!
//! Decisions:
//! - Toggling off keeps the link (the store stays) and leaves a `aezen-disabled` marker in
//!   the folder, so a restart respects it; toggling on removes the marker and resumes
//!   without a QR code.
//! - At start-up every tenant with a session folder (and no marker) is reconnected in the
//!   background, at most [`RESUME_CONCURRENCY`] at a time; start-up does not wait for it.
//! - Toggle, pair, logout and resume take a per-tenant lock: two clicks cannot start two
//!   clients, and one tenant's slow step never holds up another's.
//! - Logging out, or being logged out from the phone, deletes the folder.
//! - State lives in memory: after a restart a tenant is `disconnected` until its session
//!   reports again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use super::{LinkMethod, SessionEvent};
use crate::app::AppState;
use crate::error::ApiError;
use crate::events::{self, EventData, EventKind, QrPayload};
use crate::ids::TenantId;
use crate::tenancy::TenantLocks;

/// Sessions resumed at once at start-up.
pub const RESUME_CONCURRENCY: usize = 8;
/// Marker file: the tenant turned WhatsApp off; do not resume at start-up.
const DISABLED_MARKER: &str = "aezen-disabled";

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
    fn new(state: SessionState) -> Self {
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

#[derive(Clone)]
struct Entry {
    status: WhatsappStatus,
    qr: Option<String>,
}

pub struct Sessions {
    root: PathBuf,
    entries: Mutex<HashMap<TenantId, Entry>>,
    /// One lock per tenant that serialises its toggle, pair, logout and resume, so two
    /// clicks cannot start two clients; other tenants never wait on it.
    lifecycle: TenantLocks,
}

impl Sessions {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            entries: Mutex::new(HashMap::new()),
            lifecycle: TenantLocks::default(),
        }
    }

    /// `sessions/<tenant-id>/`: built from the tenant id only.
    pub fn folder(&self, tenant: TenantId) -> PathBuf {
        self.root.join(tenant.to_string())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the tenant's life-cycle lock (see [`Sessions::lifecycle`]).
    async fn lock(&self, tenant: TenantId) -> tokio::sync::OwnedMutexGuard<()> {
        self.lifecycle.get(tenant).lock_owned().await
    }

    pub fn status(&self, tenant: TenantId) -> WhatsappStatus {
        self.entries().get(&tenant).map_or_else(
            || WhatsappStatus::new(SessionState::Disconnected),
            |e| e.status.clone(),
        )
    }

    /// The QR code being shown, if it has not expired.
    pub fn current_qr(&self, tenant: TenantId) -> Option<String> {
        let entries = self.entries();
        let entry = entries.get(&tenant)?;
        let live = entry.status.state == SessionState::Qr
            && entry.status.expires_at.is_some_and(|at| at > Utc::now());
        live.then(|| entry.qr.clone()).flatten()
    }

    /// Applies `change` to the tenant's status; returns the new status if it changed.
    fn update(&self, tenant: TenantId, change: impl FnOnce(&mut Entry)) -> Option<WhatsappStatus> {
        let mut entries = self.entries();
        let entry = entries.entry(tenant).or_insert_with(|| Entry {
            status: WhatsappStatus::new(SessionState::Disconnected),
            qr: None,
        });
        let before = entry.status.clone();
        change(entry);
        (entry.status != before).then(|| entry.status.clone())
    }
}

/// Connects when off, disconnects (keeping the link) when on.
pub async fn toggle(state: &AppState, tenant: TenantId) -> Result<WhatsappStatus, ApiError> {
    let _guard = state.sessions.lock(tenant).await;
    if state.sessions.status(tenant).state.is_on() {
        turn_off(state, tenant).await?;
    } else {
        start(state, tenant, LinkMethod::Qr).await?;
    }
    Ok(state.sessions.status(tenant))
}

/// Starts linking by pairing code for `phone_number` (E.164).
pub async fn pair_code(
    state: &AppState,
    tenant: TenantId,
    phone_number: String,
) -> Result<WhatsappStatus, ApiError> {
    let _guard = state.sessions.lock(tenant).await;
    let current = state.sessions.status(tenant).state;
    if current == SessionState::Connected {
        return Err(ApiError::conflict(
            "already_connected",
            "WhatsApp is already linked and connected; log out first to link another phone",
        ));
    }
    if current.is_on() {
        state.whatsapp.disconnect(tenant).await;
    }
    start(state, tenant, LinkMethod::PairCode { phone_number }).await?;
    Ok(state.sessions.status(tenant))
}

/// Unlinks the device and deletes the session folder. If WhatsApp could not be asked (the
/// session was off or not connected), the reason says so: a linked phone still lists the
/// device under Linked devices until it is removed there.
pub async fn logout(state: &AppState, tenant: TenantId) -> Result<WhatsappStatus, ApiError> {
    let _guard = state.sessions.lock(tenant).await;
    let linked = tokio::fs::try_exists(state.sessions.folder(tenant))
        .await
        .unwrap_or(false);
    let unlinked = state.whatsapp.logout(tenant).await;
    remove_folder(state, tenant).await;
    // Whether a phone was ever linked is not known here (a folder also holds a session
    // that only showed QR codes), so the advice is conditional.
    let reason = if unlinked || !linked {
        "logged out from AEZEN"
    } else {
        "logged out from AEZEN, but WhatsApp could not be told: if a phone was linked, \
         remove this device on it under Settings → Linked devices"
    };
    set(state, tenant, |e| {
        e.qr = None;
        e.status = WhatsappStatus {
            reason: Some(reason.to_owned()),
            ..WhatsappStatus::new(SessionState::LoggedOut)
        };
    })
    .await;
    Ok(state.sessions.status(tenant))
}

async fn turn_off(state: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    state.whatsapp.disconnect(tenant).await;
    let marker = state.sessions.folder(tenant).join(DISABLED_MARKER);
    if let Err(err) = tokio::fs::write(&marker, b"turned off from AEZEN\n").await {
        tracing::warn!(tenant = %tenant, error = %err, "cannot write the session's disabled marker");
    }
    set(state, tenant, |e| {
        e.qr = None;
        e.status = WhatsappStatus {
            phone_number: e.status.phone_number.take(),
            push_name: e.status.push_name.take(),
            reason: Some("turned off".to_owned()),
            ..WhatsappStatus::new(SessionState::Disconnected)
        };
    })
    .await;
    Ok(())
}

/// Creates the session folder and starts the backend's client on it.
async fn start(state: &AppState, tenant: TenantId, link: LinkMethod) -> Result<(), ApiError> {
    let folder = state.sessions.folder(tenant);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::internal("create session folder", e))?;
    match tokio::fs::remove_file(folder.join(DISABLED_MARKER)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal("remove disabled marker", e)),
    }
    set(state, tenant, |e| {
        e.status = WhatsappStatus {
            phone_number: e.status.phone_number.take(),
            push_name: e.status.push_name.take(),
            ..WhatsappStatus::new(SessionState::Connecting)
        };
    })
    .await;
    if let Err(err) = state.whatsapp.connect(tenant, &folder, link).await {
        tracing::error!(tenant = %tenant, error = %err, "WhatsApp session did not start");
        set(state, tenant, |e| {
            e.status = WhatsappStatus {
                reason: Some(err.0.clone()),
                ..WhatsappStatus::new(SessionState::Failed)
            };
        })
        .await;
    }
    Ok(())
}

/// Applies what the backend reported.
pub async fn on_event(state: &AppState, tenant: TenantId, event: SessionEvent) {
    match event {
        SessionEvent::Connecting => {
            set(state, tenant, |e| e.status.state = SessionState::Connecting).await;
        }
        SessionEvent::Qr { code, expires_at } => {
            set(state, tenant, |e| {
                e.qr = Some(code.clone());
                e.status = WhatsappStatus {
                    expires_at: Some(expires_at),
                    ..WhatsappStatus::new(SessionState::Qr)
                };
            })
            .await;
            let svg = render_qr(&code);
            let data = EventData {
                qr: Some(QrPayload {
                    code,
                    svg,
                    expires_at,
                }),
                ..EventData::default()
            };
            record(state, tenant, EventKind::Qr, data).await;
        }
        SessionEvent::PairCode { code, expires_at } => {
            tracing::info!(tenant = %tenant, "WhatsApp pairing code issued");
            set(state, tenant, |e| {
                e.qr = None;
                e.status = WhatsappStatus {
                    pair_code: Some(code),
                    expires_at: Some(expires_at),
                    ..WhatsappStatus::new(SessionState::PairCode)
                };
            })
            .await;
        }
        SessionEvent::Connected {
            phone_number,
            push_name,
        } => {
            tracing::info!(tenant = %tenant, "WhatsApp session connected");
            set(state, tenant, |e| {
                e.qr = None;
                e.status = WhatsappStatus {
                    phone_number: phone_number.or(e.status.phone_number.take()),
                    push_name: push_name.or(e.status.push_name.take()),
                    ..WhatsappStatus::new(SessionState::Connected)
                };
            })
            .await;
            state.outbox.kick(state, tenant);
        }
        SessionEvent::Disconnected { reason, retrying } => {
            tracing::info!(tenant = %tenant, reason = reason.as_deref().unwrap_or(""), retrying, "WhatsApp session disconnected");
            set(state, tenant, |e| {
                e.qr = None;
                e.status = WhatsappStatus {
                    phone_number: e.status.phone_number.take(),
                    push_name: e.status.push_name.take(),
                    reason,
                    ..WhatsappStatus::new(if retrying {
                        SessionState::Connecting
                    } else {
                        SessionState::Disconnected
                    })
                };
            })
            .await;
        }
        SessionEvent::LoggedOut { reason } => {
            tracing::warn!(tenant = %tenant, reason, "WhatsApp session logged out; removing its folder");
            // Off the ingest task: stopping the client may wait on its own inbound hook,
            // which waits on ingest. The folder goes once the client has let go of it, and
            // only then is the state `logged_out`.
            let state = state.clone();
            tokio::spawn(async move {
                let _guard = state.sessions.lock(tenant).await;
                state.whatsapp.logout(tenant).await;
                remove_folder(&state, tenant).await;
                end(&state, tenant, SessionState::LoggedOut, reason).await;
            });
        }
        SessionEvent::Banned { reason } => {
            tracing::error!(tenant = %tenant, reason, "WhatsApp banned this number");
            end(state, tenant, SessionState::Banned, reason).await;
        }
        SessionEvent::Failed { reason } => {
            tracing::error!(tenant = %tenant, reason, "WhatsApp session failed");
            end(state, tenant, SessionState::Failed, reason).await;
        }
    }
}

async fn end(state: &AppState, tenant: TenantId, ended: SessionState, reason: String) {
    set(state, tenant, |e| {
        e.qr = None;
        e.status = WhatsappStatus {
            reason: Some(reason),
            ..WhatsappStatus::new(ended)
        };
    })
    .await;
}

async fn remove_folder(state: &AppState, tenant: TenantId) {
    let folder = state.sessions.folder(tenant);
    match tokio::fs::remove_dir_all(&folder).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(tenant = %tenant, error = %e, "cannot remove session folder"),
    }
}

/// Updates the status and, if it changed, records `whatsapp_status` and queues it for the
/// sockets.
async fn set(state: &AppState, tenant: TenantId, change: impl FnOnce(&mut Entry)) {
    if let Some(status) = state.sessions.update(tenant, change) {
        let data = EventData {
            whatsapp_status: Some(status),
            ..EventData::default()
        };
        record(state, tenant, EventKind::WhatsappStatus, data).await;
    }
}

async fn record(state: &AppState, tenant: TenantId, kind: EventKind, data: EventData) {
    if let Err(err) = events::record(state, tenant, kind, data).await {
        tracing::warn!(tenant = %tenant, error = %err, kind = kind.as_str(), "session event not recorded");
    }
}

/// The QR payload as an SVG image.
pub fn render_qr(code: &str) -> String {
    match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => qr
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build(),
        Err(err) => {
            tracing::error!(error = %err, "QR code cannot be rendered");
            String::new()
        }
    }
}

/// Reconnects, in the background, every registered tenant that has a session folder and did
/// not turn WhatsApp off.
pub async fn resume_all(state: AppState) {
    let folders = match tokio::fs::read_dir(&state.sessions.root).await {
        Ok(folders) => folders,
        Err(err) => {
            tracing::error!(error = %err, "cannot list session folders");
            return;
        }
    };
    let mut folders = folders;
    let permits = Arc::new(Semaphore::new(RESUME_CONCURRENCY));
    let mut resumed = tokio::task::JoinSet::new();
    while let Ok(Some(entry)) = folders.next_entry().await {
        let Some(tenant) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<TenantId>().ok())
        else {
            continue;
        };
        if tokio::fs::try_exists(entry.path().join(DISABLED_MARKER))
            .await
            .unwrap_or(false)
        {
            continue;
        }
        let state = state.clone();
        let permits = Arc::clone(&permits);
        resumed.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let registered = state
                .master
                .run(move |conn| Ok(crate::tenancy::registry::find(conn, tenant)?.is_some()))
                .await
                .unwrap_or(false);
            if !registered {
                tracing::warn!(tenant = %tenant, "session folder of an unknown tenant; not resuming it");
                return;
            }
            let _guard = state.sessions.lock(tenant).await;
            if let Err(err) = start(&state, tenant, LinkMethod::Qr).await {
                tracing::error!(tenant = %tenant, error = %err, "cannot resume WhatsApp session");
            }
        });
    }
    while resumed.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_tenants_life_cycle_lock_never_holds_up_another_tenant() {
        let sessions = Sessions::new(PathBuf::from("unused"));
        let (a, b) = (TenantId::new(), TenantId::new());
        let held = sessions.lock(a).await;

        let other = tokio::time::timeout(Duration::from_secs(5), sessions.lock(b)).await;
        assert!(other.is_ok(), "tenant B waited on tenant A's lock");

        let same = tokio::time::timeout(Duration::from_millis(50), sessions.lock(a)).await;
        assert!(
            same.is_err(),
            "tenant A's second life-cycle step did not wait"
        );
        drop(held);
        let after = tokio::time::timeout(Duration::from_secs(5), sessions.lock(a)).await;
        assert!(after.is_ok(), "tenant A's lock was not released");
    }
}
