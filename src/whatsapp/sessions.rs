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

use chrono::Utc;
use tokio::sync::Semaphore;

use super::{LinkMethod, SessionEvent, SessionState, WhatsApp, WhatsappStatus};
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{EventData, EventKind, QrPayload};
use crate::ids::TenantId;
use crate::locks::TenantLocks;
use crate::realtime::TenantEvents;

/// Sessions resumed at once at start-up.
pub const RESUME_CONCURRENCY: usize = 8;
/// Marker file: the tenant turned WhatsApp off; do not resume at start-up.
const DISABLED_MARKER: &str = "aezen-disabled";

#[derive(Clone)]
struct Entry {
    status: WhatsappStatus,
    qr: Option<String>,
}

/// The session manager handle: cheap to clone.
#[derive(Clone)]
pub struct Sessions(Arc<Inner>);

/// The manager's state (private fields; reached through [`Sessions`]).
pub struct Inner {
    root: PathBuf,
    entries: Mutex<HashMap<TenantId, Entry>>,
    /// One lock per tenant that serialises its toggle, pair, logout and resume, so two
    /// clicks cannot start two clients; other tenants never wait on it.
    lifecycle: TenantLocks,
    whatsapp: Arc<dyn WhatsApp>,
    events: TenantEvents,
    /// The master registry: only registered tenants are resumed.
    master: Db,
}

impl std::ops::Deref for Sessions {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Sessions {
    /// `root` is the sessions folder (`sessions/`).
    pub fn new(
        root: PathBuf,
        whatsapp: Arc<dyn WhatsApp>,
        events: TenantEvents,
        master: Db,
    ) -> Self {
        Self(Arc::new(Inner {
            root,
            entries: Mutex::new(HashMap::new()),
            lifecycle: TenantLocks::default(),
            whatsapp,
            events,
            master,
        }))
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

    /// How many sessions are in each state (every state, zero or not), among the tenants
    /// seen since start-up: those whose session was started, resumed or reported. A tenant
    /// that never linked has no session and is not counted.
    pub fn count_by_state(&self) -> Vec<(SessionState, u64)> {
        let entries = self.entries();
        SessionState::ALL
            .into_iter()
            .map(|state| {
                let n = entries.values().filter(|e| e.status.state == state).count();
                (state, n as u64)
            })
            .collect()
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

    /// Connects when off, disconnects (keeping the link) when on.
    pub async fn toggle(&self, tenant: TenantId) -> Result<WhatsappStatus, ApiError> {
        let _guard = self.lock(tenant).await;
        if self.status(tenant).state.is_on() {
            self.turn_off(tenant).await?;
        } else {
            self.start(tenant, LinkMethod::Qr).await?;
        }
        Ok(self.status(tenant))
    }

    /// Starts linking by pairing code for `phone_number` (E.164).
    pub async fn pair_code(
        &self,
        tenant: TenantId,
        phone_number: String,
    ) -> Result<WhatsappStatus, ApiError> {
        let _guard = self.lock(tenant).await;
        let current = self.status(tenant).state;
        if current == SessionState::Connected {
            return Err(ApiError::conflict(
                "already_connected",
                "WhatsApp is already linked and connected; log out first to link another phone",
            ));
        }
        if current.is_on() {
            self.whatsapp.disconnect(tenant).await;
        }
        self.start(tenant, LinkMethod::PairCode { phone_number })
            .await?;
        Ok(self.status(tenant))
    }

    /// Unlinks the device and deletes the session folder. If WhatsApp could not be asked (the
    /// session was off or not connected), the reason says so: a linked phone still lists the
    /// device under Linked devices until it is removed there.
    pub async fn logout(&self, tenant: TenantId) -> Result<WhatsappStatus, ApiError> {
        let _guard = self.lock(tenant).await;
        let linked = tokio::fs::try_exists(self.folder(tenant))
            .await
            .unwrap_or(false);
        let unlinked = self.whatsapp.logout(tenant).await;
        self.remove_folder(tenant).await;
        // Whether a phone was ever linked is not known here (a folder also holds a session
        // that only showed QR codes), so the advice is conditional.
        let reason = if unlinked || !linked {
            "logged out from AEZEN"
        } else {
            "logged out from AEZEN, but WhatsApp could not be told: if a phone was linked, \
             remove this device on it under Settings → Linked devices"
        };
        self.set(tenant, |e| {
            e.qr = None;
            e.status = WhatsappStatus {
                reason: Some(reason.to_owned()),
                ..WhatsappStatus::new(SessionState::LoggedOut)
            };
        })
        .await;
        Ok(self.status(tenant))
    }

    async fn turn_off(&self, tenant: TenantId) -> Result<(), ApiError> {
        self.whatsapp.disconnect(tenant).await;
        let marker = self.folder(tenant).join(DISABLED_MARKER);
        if let Err(err) = tokio::fs::write(&marker, b"turned off from AEZEN\n").await {
            tracing::warn!(tenant = %tenant, error = %err, "cannot write the session's disabled marker");
        }
        self.set(tenant, |e| {
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
    async fn start(&self, tenant: TenantId, link: LinkMethod) -> Result<(), ApiError> {
        let folder = self.folder(tenant);
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|e| ApiError::internal("create session folder", e))?;
        match tokio::fs::remove_file(folder.join(DISABLED_MARKER)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ApiError::internal("remove disabled marker", e)),
        }
        self.set(tenant, |e| {
            // A session that was already retrying keeps saying why until the new attempt
            // reports: the answer to this request shows what the status shows.
            let retrying = e.status.state == SessionState::Connecting;
            e.status = WhatsappStatus {
                phone_number: e.status.phone_number.take(),
                push_name: e.status.push_name.take(),
                reason: e.status.reason.take().filter(|_| retrying),
                ..WhatsappStatus::new(SessionState::Connecting)
            };
        })
        .await;
        if let Err(err) = self.whatsapp.connect(tenant, &folder, link).await {
            tracing::error!(tenant = %tenant, error = %err, "WhatsApp session did not start");
            self.set(tenant, |e| {
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
    pub async fn on_event(&self, tenant: TenantId, event: SessionEvent) {
        match event {
            SessionEvent::Connecting => {
                self.set(tenant, |e| e.status.state = SessionState::Connecting)
                    .await;
            }
            SessionEvent::Qr { code, expires_at } => {
                self.set(tenant, |e| {
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
                self.record(tenant, EventKind::Qr, data).await;
            }
            SessionEvent::PairCode { code, expires_at } => {
                tracing::info!(tenant = %tenant, "WhatsApp pairing code issued");
                self.set(tenant, |e| {
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
                self.set(tenant, |e| {
                    e.qr = None;
                    e.status = WhatsappStatus {
                        phone_number: phone_number.or(e.status.phone_number.take()),
                        push_name: push_name.or(e.status.push_name.take()),
                        ..WhatsappStatus::new(SessionState::Connected)
                    };
                })
                .await;
            }
            SessionEvent::Disconnected { reason, retrying } => {
                // The one line per attempt (the backend logs it at debug only).
                let why = reason.as_deref().unwrap_or("");
                if retrying {
                    tracing::warn!(tenant = %tenant, reason = why, "WhatsApp unreachable; retrying");
                } else {
                    tracing::info!(tenant = %tenant, reason = why, "WhatsApp session disconnected");
                }
                self.set(tenant, |e| {
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
                let sessions = self.clone();
                tokio::spawn(async move {
                    let _guard = sessions.lock(tenant).await;
                    sessions.whatsapp.logout(tenant).await;
                    sessions.remove_folder(tenant).await;
                    sessions.end(tenant, SessionState::LoggedOut, reason).await;
                });
            }
            SessionEvent::Banned { reason } => {
                tracing::error!(tenant = %tenant, reason, "WhatsApp banned this number");
                self.end(tenant, SessionState::Banned, reason).await;
            }
            SessionEvent::Failed { reason } => {
                tracing::error!(tenant = %tenant, reason, "WhatsApp session failed");
                self.end(tenant, SessionState::Failed, reason).await;
            }
        }
    }

    async fn end(&self, tenant: TenantId, ended: SessionState, reason: String) {
        self.set(tenant, |e| {
            e.qr = None;
            e.status = WhatsappStatus {
                reason: Some(reason),
                ..WhatsappStatus::new(ended)
            };
        })
        .await;
    }

    async fn remove_folder(&self, tenant: TenantId) {
        let folder = self.folder(tenant);
        match tokio::fs::remove_dir_all(&folder).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(tenant = %tenant, error = %e, "cannot remove session folder"),
        }
    }

    /// Updates the status and, if it changed, records `whatsapp_status` and queues it for the
    /// sockets.
    async fn set(&self, tenant: TenantId, change: impl FnOnce(&mut Entry)) {
        if let Some(status) = self.update(tenant, change) {
            let data = EventData {
                whatsapp_status: Some(status),
                ..EventData::default()
            };
            self.record(tenant, EventKind::WhatsappStatus, data).await;
        }
    }

    async fn record(&self, tenant: TenantId, kind: EventKind, data: EventData) {
        if let Err(err) = self.events.record(tenant, kind, data).await {
            tracing::warn!(tenant = %tenant, error = %err, kind = kind.as_str(), "session event not recorded");
        }
    }

    /// Stops the tenant's client for an operation on its files (restore, import, delete),
    /// keeping the folder; [`Sessions::restart`] starts it again. The state changes in memory
    /// only: the tenant's event log is out of service meanwhile.
    pub async fn stop(&self, tenant: TenantId) {
        let _guard = self.lock(tenant).await;
        self.whatsapp.disconnect(tenant).await;
        self.update(tenant, |e| {
            e.qr = None;
            e.status = WhatsappStatus {
                reason: Some("stopped for maintenance".to_owned()),
                ..WhatsappStatus::new(SessionState::Disconnected)
            };
        });
    }

    /// Starts the tenant's client again after [`Sessions::stop`] (or after an import), if its
    /// folder holds a session that was not turned off.
    pub async fn restart(&self, tenant: TenantId) {
        let folder = self.folder(tenant);
        let present = tokio::fs::try_exists(&folder).await.unwrap_or(false);
        let off = tokio::fs::try_exists(folder.join(DISABLED_MARKER))
            .await
            .unwrap_or(false);
        if !present || off {
            return;
        }
        let _guard = self.lock(tenant).await;
        if let Err(err) = self.start(tenant, LinkMethod::Qr).await {
            tracing::error!(tenant = %tenant, error = %err, "cannot restart WhatsApp session");
        }
    }

    /// Ends the tenant's client and forgets its session entirely (the tenant is deleted):
    /// the folder is removed and the link is not told to WhatsApp (the phone keeps listing
    /// the device until it is removed there).
    pub async fn remove(&self, tenant: TenantId) {
        let _guard = self.lock(tenant).await;
        self.whatsapp.disconnect(tenant).await;
        self.remove_folder(tenant).await;
        self.entries().remove(&tenant);
    }

    /// Reconnects, in the background, every registered tenant that has a session folder and did
    /// not turn WhatsApp off.
    pub async fn resume_all(self) {
        let folders = match tokio::fs::read_dir(&self.root).await {
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
            let sessions = self.clone();
            let permits = Arc::clone(&permits);
            resumed.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else { return };
                let registered = sessions
                    .master
                    .run(move |conn| Ok(crate::tenancy::registry::find(conn, tenant)?.is_some()))
                    .await
                    .unwrap_or(false);
                if !registered {
                    tracing::warn!(tenant = %tenant, "session folder of an unknown tenant; not resuming it");
                    return;
                }
                let _guard = sessions.lock(tenant).await;
                if let Err(err) = sessions.start(tenant, LinkMethod::Qr).await {
                    tracing::error!(tenant = %tenant, error = %err, "cannot resume WhatsApp session");
                }
            });
        }
        while resumed.join_next().await.is_some() {}
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_tenants_life_cycle_lock_never_holds_up_another_tenant() {
        let world = crate::testing::World::new();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let whatsapp = Arc::new(super::super::simulated::Simulated::new(
            tx,
            Duration::from_secs(20),
        ));
        let sessions = Sessions::new(
            PathBuf::from("unused"),
            whatsapp,
            world.events.clone(),
            world.master.clone(),
        );
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
