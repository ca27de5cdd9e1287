//! `Application::build(config)` → a server bound to its port; `run_until` serves it and
//! shuts it down in order. Start-up is where the services are built, each with the narrow
//! handles it needs, and wired together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::auth::Authenticator;
use crate::auth::cache::UserCache;
use crate::auth::password::PasswordHashing;
use crate::auth::rate_limit::AuthLimiter;
use crate::auth::token::{self, Tokens};
use crate::chat::inbox::Inbox;
use crate::chat::ingest::Ingest;
use crate::chat::outbox::Outbox;
use crate::chat::pages::Pages;
use crate::chat::snooze::Snoozes;
use crate::chat::workflow::Workflow;
use crate::config::{
    BASE_MEMORY_BYTES, BackendKind, Config, FileLock, MIN_TENANT_CACHE, OPEN_TENANT_BYTES,
};
use crate::events::Retention;
use crate::http::serve::{Limits, serve};
use crate::locks::DataDirLock;
use crate::media::cache::HotMedia;
use crate::media::fetch::Fetcher;
use crate::metrics::Metrics;
use crate::ops::{Live, Operations, control};
use crate::realtime::{Realtime, TenantEvents};
use crate::state::{App, AppState};
use crate::tenancy::{self, PoolSettings, TenantPools};
use crate::webhooks::deliver::Webhooks;
use crate::webhooks::guard::Guard;
use crate::webhooks::store::RetryPolicy;
use crate::whatsapp::real::{Network, RealWhatsApp};
use crate::whatsapp::sessions::Sessions;
use crate::whatsapp::simulated::Simulated;
use crate::whatsapp::{Inbound, WhatsApp};

/// A built server, bound to its port, not yet serving.
pub struct Application {
    /// Held while the application lives: one process per data dir.
    lock: DataDirLock,
    /// The operations commands' way in (`None` if it could not be bound: the server runs
    /// without it, and says so).
    control: Option<tokio::net::UnixListener>,
    listener: TcpListener,
    router: Router,
    state: AppState,
    inbound: mpsc::Receiver<Inbound>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_network(config, Network::real()).await
    }

    /// Builds with the real WhatsApp backend (when configured) on `network`; tests pass
    /// [`Network::offline`] to run the real adapter without a way out.
    pub async fn build_with_network(config: Config, network: Network) -> anyhow::Result<Self> {
        // Socket.IO frames are held to the HTTP body limit on every transport: engine.io
        // advertises `maxPayload` and applies it to polling, but a websocket frame or message
        // is capped only by the next two (16 and 64 MiB by default).
        let frame_cap = config.max_body_bytes;
        let (socket_layer, io) = SocketIo::builder()
            .max_payload(frame_cap as u64)
            .ws_max_frame_size(frame_cap)
            .ws_max_message_size(frame_cap)
            .build_layer();
        // Before anything is opened: a second server on this data dir stops here.
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let (inbound_tx, inbound) = mpsc::channel(4096);
        let state = {
            let io = io.clone();
            tokio::task::spawn_blocking(move || build_state(config, io, inbound_tx, network))
                .await??
        };
        crate::http::socket::attach(&io, state.downgrade());
        let control = control::bind(&state.config.data_dir)
            .inspect_err(|err| {
                tracing::error!(
                    error = format!("{err:#}"),
                    "no control socket: `aezen backup`, `restore` and the other operations commands cannot reach this server"
                );
            })
            .ok();
        let listener = TcpListener::bind(state.config.listen).await?;
        let router = crate::http::router(state.clone()).layer(socket_layer);
        tracing::info!(address = %listener.local_addr()?, data_dir = %state.config.data_dir.display(), "AEZEN listening");
        Ok(Self {
            lock,
            control,
            listener,
            router,
            state,
            inbound,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then drains requests and closes every database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains requests (for at most
    /// [`Config::shutdown_grace_secs`]) and closes every database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            lock,
            control,
            listener,
            router,
            state,
            inbound,
        } = self;
        let control =
            control.map(|listener| tokio::spawn(control::serve(listener, state.ops.clone())));
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let webhooks = state.webhooks.clone();
        tokio::spawn(async move { webhooks.start_recorded().await });
        let ingest = Ingest {
            events: state.events.clone(),
            sessions: state.sessions.clone(),
            outbox: state.outbox.clone(),
            media: state.media.clone(),
            metrics: state.metrics.clone(),
        };
        let ingest = tokio::spawn(ingest.run(inbound));
        // Start-up does not wait for WhatsApp: sessions resume in the background.
        let resume = tokio::spawn(state.sessions.clone().resume_all());
        let realtime = state.realtime.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: draining connections");
            // Open websockets would otherwise keep the drain waiting.
            realtime.disconnect_all().await;
        };
        let limits = Limits {
            header_read_timeout: Duration::from_secs(state.config.header_read_timeout_secs),
            max_connections: fit_connections_to_file_limit(state.config.max_connections),
            max_connections_per_ip: state.config.max_connections_per_ip.max(1),
            shutdown_grace: Duration::from_secs(state.config.shutdown_grace_secs),
        };
        serve(listener, router, limits, state.metrics.clone(), shutdown).await;
        housekeeping.abort();
        resume.abort();
        state.whatsapp.shutdown().await;
        ingest.abort();
        state.outbox.shutdown();
        state.webhooks.shutdown();
        if let Some(control) = control {
            control.abort();
            let _ = std::fs::remove_file(control::socket_path(&state.config.data_dir));
        }
        state.tenants.clear().await;
        drop(lock);
        tracing::info!("AEZEN stopped");
        Ok(())
    }
}

fn build_state(
    config: Config,
    io: SocketIo,
    inbound: mpsc::Sender<Inbound>,
    network: Network,
) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(config.tenants_dir())?;
    std::fs::create_dir_all(&config.sessions_dir)?;
    let capacity = fit_tenant_cache(&config);
    let metrics = Metrics::new();
    let master = tenancy::open_master(&config.master_db_path())?;
    let (whatsapp, simulated): (Arc<dyn WhatsApp>, _) = match config.whatsapp {
        BackendKind::Simulated => {
            tracing::warn!(
                "WhatsApp backend: SIMULATED. Nothing is sent to or received from WhatsApp; \
                 drive it with /api/integrations/whatsapp/simulate/*"
            );
            let simulated = Arc::new(Simulated::new(
                inbound,
                Duration::from_millis(config.simulated_qr_ms),
            ));
            (simulated.clone(), Some(simulated))
        }
        BackendKind::Real => {
            tracing::warn!(
                "WhatsApp backend: whatsapp-rust, an UNOFFICIAL client; using it may break \
                 WhatsApp's Terms of Service and get a number banned"
            );
            (Arc::new(RealWhatsApp::with_network(inbound, network)), None)
        }
    };
    let retention = Retention {
        max_count: i64::try_from(config.event_retention_count).unwrap_or(i64::MAX),
        max_age_ms: i64::try_from(config.event_retention_hours.saturating_mul(3_600_000))
            .unwrap_or(i64::MAX),
        webhook_backlog: i64::try_from(config.webhook_backlog).unwrap_or(i64::MAX),
    };
    let secret = token::load_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
    let tokens = Tokens::new(&secret, config.token_ttl_hours);
    let passwords = PasswordHashing::new(config.hash_concurrency())
        .map_err(|e| anyhow::anyhow!("password hashing: {e}"))?;
    let limiter = AuthLimiter::new(
        config.login_per_ip_per_minute,
        config.login_per_account_per_minute,
        metrics.clone(),
    );
    let tenants = TenantPools::new(
        master.clone(),
        config.tenants_dir(),
        &PoolSettings {
            capacity,
            idle: Duration::from_secs(config.tenant_idle_secs),
            connections_per_tenant: config.tenant_pool_size.max(1),
            file_lock: config.tenant_file_lock,
        },
        metrics.clone(),
    );
    let realtime = Realtime::new(io);
    let events = TenantEvents::new(tenants.clone(), realtime.clone(), retention);
    let outbox = Outbox::new(Arc::clone(&whatsapp), events.clone());
    // The first open of a tenant resumes its outbox: after a restart, queued messages go
    // out on the tenant's first use; and its snoozes are scheduled (a restored or imported
    // file has no hint in the registry). (Weak: both reach the pools themselves.)
    let resume = outbox.downgrade();
    let media = Fetcher::new(
        Arc::clone(&whatsapp),
        events.clone(),
        config.media_max_bytes,
        Duration::from_millis(config.media_first_retry_ms),
    );
    let fetching = media.downgrade();
    let snoozes = Snoozes::start(events.clone(), master.clone());
    let snoozed = snoozes.on_open();
    let webhooks = Webhooks::new(
        tenants.clone(),
        master.clone(),
        events.committed().clone(),
        Guard::new(config.webhook_allow_http, &config.webhook_allow_hosts)?,
        RetryPolicy {
            first_ms: i64::try_from(config.webhook_first_retry_ms).unwrap_or(i64::MAX),
            window_ms: i64::try_from(config.webhook_retry_hours.saturating_mul(3_600_000))
                .unwrap_or(i64::MAX),
        },
        metrics.clone(),
    )?;
    let delivering = webhooks.on_open();
    tenants.on_open(Box::new(move |tenant| {
        resume.resume(tenant);
        fetching.resume(tenant);
        snoozed(tenant);
        delivering(tenant);
    }));
    let sessions = Sessions::new(
        config.sessions_dir.clone(),
        Arc::clone(&whatsapp),
        events.clone(),
        master.clone(),
    );
    let auth = Arc::new(Authenticator::new(
        tokens,
        UserCache::new(100_000),
        master.clone(),
    ));
    let ops = Operations::new(
        master.clone(),
        tenants.clone(),
        config.data_dir.clone(),
        config.sessions_dir.clone(),
        Some(Live {
            sessions: sessions.clone(),
            auth: Arc::clone(&auth),
        }),
    );
    let hot_media = HotMedia::new(config.media_cache_bytes);
    let pages = Pages::new(match config.tenant_file_lock {
        FileLock::Exclusive => config.page_cache_bytes,
        FileLock::Shared => 0,
    });
    Ok(AppState::new(App {
        auth,
        ops,
        inbox: Inbox::new(events.clone(), outbox.clone(), Arc::clone(&whatsapp)),
        workflow: Workflow::new(events.clone(), master.clone(), snoozes),
        config,
        master,
        tenants,
        passwords,
        limiter,
        metrics,
        realtime,
        events,
        whatsapp,
        simulated,
        outbox,
        media,
        hot_media,
        pages,
        sessions,
        webhooks,
    }))
}

/// The tenant cache's capacity: `--tenant-cache-capacity` if given, otherwise what the memory
/// budget leaves for open tenants ([`budget_capacity`]); either way lowered if
/// `capacity × connections × 3` (db, -wal, -shm per connection) would not fit in half of the
/// open-file limit (first raised to the hard limit), the other half being for sockets and
/// everything else. Logs the numbers it chose.
fn fit_tenant_cache(config: &Config) -> u64 {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let per_tenant = u64::from(config.tenant_pool_size.max(1)) * 3;
    let by_files = ((limit / 2) / per_tenant).max(1);
    let by_memory = budget_capacity(config);
    let wanted = config.tenant_cache_capacity.unwrap_or(by_memory);
    let capacity = wanted.min(by_files);
    if config.tenant_cache_capacity.is_some_and(|c| c > by_files) {
        tracing::warn!(
            configured = wanted,
            used = capacity,
            open_file_limit = limit,
            "tenant cache capacity lowered to fit the open-file limit"
        );
    }
    tracing::info!(
        capacity,
        configured = ?config.tenant_cache_capacity,
        by_memory_budget = by_memory,
        memory_budget = config.memory_budget,
        by_open_file_limit = by_files,
        open_file_limit = limit,
        "tenant cache"
    );
    capacity
}

/// How many open tenants the memory budget holds: the budget less [`BASE_MEMORY_BYTES`] and
/// the page and media caches, at [`OPEN_TENANT_BYTES`] each, and at least [`MIN_TENANT_CACHE`].
fn budget_capacity(config: &Config) -> u64 {
    let left = config
        .memory_budget
        .saturating_sub(BASE_MEMORY_BYTES)
        .saturating_sub(config.page_cache_bytes)
        .saturating_sub(config.media_cache_bytes);
    (left / OPEN_TENANT_BYTES).max(MIN_TENANT_CACHE)
}

/// The connection cap, lowered to a quarter of the open-file limit (the tenant cache is fitted
/// into half of it; the rest is for everything else).
fn fit_connections_to_file_limit(configured: usize) -> usize {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let fits = usize::try_from(limit / 4).unwrap_or(usize::MAX).max(1);
    if configured > fits {
        tracing::warn!(
            configured,
            used = fits,
            open_file_limit = limit,
            "connection cap lowered to fit the open-file limit"
        );
        fits
    } else {
        configured.max(1)
    }
}

/// Periodic upkeep: forget recovered rate-limit keys, and shrink idle tenant pools.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.shed_idle_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.limiter.forget_idle();
        state.tenants.shed_idle().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_sizes_the_tenant_cache() {
        let mut config = Config::for_data_root(std::path::Path::new("/nonexistent"));
        const MIB: u64 = 1024 * 1024;
        // 256 MiB − 64 MiB − 16 MiB page cache − 32 MiB media cache.
        assert_eq!(budget_capacity(&config), 144 * MIB / OPEN_TENANT_BYTES);
        config.page_cache_bytes = 0;
        config.media_cache_bytes = 0;
        assert_eq!(budget_capacity(&config), 192 * MIB / OPEN_TENANT_BYTES);
        // A budget smaller than the fixed share still leaves the floor.
        config.memory_budget = 32 * 1024 * 1024;
        assert_eq!(budget_capacity(&config), MIN_TENANT_CACHE);
    }

    #[test]
    fn a_configured_capacity_is_kept_within_the_file_limit() {
        let mut config = Config::for_data_root(std::path::Path::new("/nonexistent"));
        config.tenant_cache_capacity = Some(3);
        assert_eq!(fit_tenant_cache(&config), 3);
        config.tenant_cache_capacity = Some(u64::MAX / 4);
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        assert_eq!(
            fit_tenant_cache(&config),
            ((limit / 2) / (u64::from(config.tenant_pool_size) * 3)).max(1)
        );
    }
}
