//! `Application::build(config)` → a server bound to its port; `AppState`, the one `Arc` every
//! handler shares; the router with its OpenAPI document.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Serialize;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::TenantScope;
use crate::auth::cache::UserCache;
use crate::auth::password::PasswordHashing;
use crate::auth::rate_limit::AuthLimiter;
use crate::auth::token::{self, Tokens};
use crate::chat::outbox::Outbox;
use crate::config::Config;
use crate::db::Db;
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::events::Retention;
use crate::ids::TenantId;
use crate::ids::UserId;
use crate::metrics::Metrics;
use crate::realtime::{self, Realtime};
use crate::tenancy::{self, PoolSettings, TenantPools};
use crate::whatsapp::real::{Network, RealWhatsApp};
use crate::whatsapp::sessions::{self, Sessions};
use crate::whatsapp::simulated::Simulated;
use crate::whatsapp::{BackendKind, Inbound, WhatsApp};

/// Everything a handler may reach, behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub config: Config,
    pub master: Db,
    /// The users tokens name; every change to a user calls `users.forget` after its commit.
    pub users: UserCache,
    pub tenants: TenantPools,
    pub tokens: Tokens,
    pub passwords: PasswordHashing,
    pub limiter: AuthLimiter,
    pub metrics: Metrics,
    pub realtime: Realtime,
    pub whatsapp: Arc<dyn WhatsApp>,
    /// The same backend as `whatsapp` when it is the simulated one (for `simulate/*`).
    pub simulated: Option<Arc<Simulated>>,
    pub outbox: Outbox,
    pub sessions: Sessions,
    pub retention: Retention,
}

impl AppState {
    pub(crate) fn from_arc(app: Arc<App>) -> Self {
        Self(app)
    }

    /// Cuts off a user's live sockets after their tokens were revoked.
    pub async fn on_user_revoked(&self, user: UserId) {
        self.users.forget(user);
        self.realtime.disconnect_user(user).await;
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// A built server, bound to its port, not yet serving.
pub struct Application {
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
        let (socket_layer, io) = SocketIo::builder().build_layer();
        let (inbound_tx, inbound) = mpsc::channel(4096);
        let state = {
            let io = io.clone();
            tokio::task::spawn_blocking(move || build_state(config, io, inbound_tx, network))
                .await??
        };
        realtime::attach(&io, Arc::downgrade(&state.0));
        let listener = TcpListener::bind(state.config.listen).await?;
        let router = router(state.clone()).layer(socket_layer);
        tracing::info!(address = %listener.local_addr()?, data_dir = %state.config.data_dir.display(), "AEZEN listening");
        Ok(Self {
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

    /// Serves until `shutdown` completes, then drains requests and closes every database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            state,
            inbound,
        } = self;
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let ingest = tokio::spawn(crate::chat::ingest::run(state.clone(), inbound));
        // Start-up does not wait for WhatsApp: sessions resume in the background.
        let resume = tokio::spawn(sessions::resume_all(state.clone()));
        let realtime = state.realtime.clone();
        let shutdown = async move {
            shutdown.await;
            // Open websockets would otherwise keep the graceful shutdown waiting.
            realtime.disconnect_all().await;
        };
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        housekeeping.abort();
        resume.abort();
        state.whatsapp.shutdown().await;
        ingest.abort();
        state.outbox.shutdown();
        state.tenants.clear().await;
        tracing::info!("AEZEN stopped");
        served
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
    let capacity = fit_cache_to_file_limit(&config);
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
    let sessions = Sessions::new(config.sessions_dir.clone());
    let app = Arc::new_cyclic(|app: &Weak<App>| {
        // The first open of a tenant resumes its outbox: after a restart, queued messages go
        // out on the tenant's first use.
        let app = app.clone();
        let on_open = Box::new(move |tenant| {
            if let Some(app) = app.upgrade() {
                let state = AppState(app);
                state.outbox.resume(&state, tenant);
            }
        });
        App {
            tenants: TenantPools::new(
                master.clone(),
                config.tenants_dir(),
                &PoolSettings {
                    capacity,
                    idle: Duration::from_secs(config.tenant_idle_secs),
                    connections_per_tenant: config.tenant_pool_size.max(1),
                    file_lock: config.tenant_file_lock,
                },
                metrics.clone(),
                on_open,
            ),
            config,
            master,
            users: UserCache::new(100_000),
            tokens,
            passwords,
            limiter,
            metrics,
            realtime: Realtime::new(io),
            whatsapp,
            simulated,
            outbox: Outbox::default(),
            sessions,
            retention,
        }
    });
    Ok(AppState(app))
}

/// Raises the soft open-file limit to the hard one and shrinks the tenant cache if
/// `capacity × connections × 3` (db, -wal, -shm per connection) would not fit in the half of
/// it left after sockets and everything else.
fn fit_cache_to_file_limit(config: &Config) -> u64 {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let per_tenant = u64::from(config.tenant_pool_size.max(1)) * 3;
    let fits = (limit / 2) / per_tenant;
    if config.tenant_cache_capacity > fits {
        tracing::warn!(
            configured = config.tenant_cache_capacity,
            used = fits,
            open_file_limit = limit,
            "tenant cache capacity lowered to fit the open-file limit"
        );
        fits.max(1)
    } else {
        config.tenant_cache_capacity
    }
}

/// Periodic upkeep: forget recovered rate-limit keys.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.limiter.forget_idle();
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AEZEN",
        description = "Self-hosted, multi-tenant WhatsApp shared inbox. Errors are always \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route, as built from the handlers' annotations, with the
/// errors of the shared extractors added where they apply.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_routes().split_for_parts().1;
    add_extractor_errors(&mut doc);
    doc
}

/// Adds to every operation the errors that the extractors it uses answer (see `error.rs`),
/// unless its annotation already describes that status: a JSON body (`ApiJson`) can be
/// malformed (400), too large (413), not JSON (415) or of the wrong shape (422); a path or
/// query parameter can be malformed (400); a bearer token can be missing or revoked (401);
/// and anything can fail inside (500, logged, never detailed).
fn add_extractor_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: String| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let takes = |place: ParameterIn| {
                operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == place)
            };
            let mut bad_request = Vec::new();
            let mut errors = Vec::new();
            if operation.request_body.is_some() {
                bad_request.push("the body is not valid JSON");
                errors.extend([
                    ("413", "the body is larger than the configured limit"),
                    ("415", "the body is not `application/json`"),
                    ("422", "a field is missing, of the wrong type or invalid"),
                ]);
            }
            if takes(ParameterIn::Path) {
                bad_request.push("a path parameter is malformed");
            }
            if takes(ParameterIn::Query) {
                bad_request.push("a query parameter is malformed");
            }
            if operation.security.is_some() {
                errors.push(("401", "missing, invalid, expired or revoked token"));
            }
            errors.push(("500", "internal error (logged; no detail is given)"));
            let bad_request = bad_request.join("; ");
            if !bad_request.is_empty() {
                errors.push(("400", &bad_request));
            }
            for (status, description) in errors {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description.to_owned()).into());
            }
        }
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::auth::routes::router())
        .merge(crate::team::router())
        .merge(crate::chat::routes::router())
        .merge(crate::events::router())
        .merge(crate::whatsapp::routes::router())
        .routes(routes!(healthz))
        .routes(routes!(tenant_info))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the master registry answers.
    pub status: &'static str,
}

/// Liveness and readiness: answers once the master registry answers a query.
#[utoipa::path(get, path = "/api/healthz", tag = "ops",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> ApiResult<ApiJson<Health>> {
    state
        .master
        .run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
        .await?;
    Ok(ApiJson(Health { status: "ok" }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    pub id: TenantId,
    /// Schema version of the tenant's database file.
    pub schema_version: i64,
}

/// The caller's tenant database: its id and schema version (opens the file if it is not open).
#[utoipa::path(get, path = "/api/tenant", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TenantInfo),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 503, description = "the tenant's database file is missing or unusable", body = ErrorBody),
    ))]
async fn tenant_info(scope: TenantScope) -> ApiResult<ApiJson<TenantInfo>> {
    let id = scope.caller.tenant_id();
    let schema_version = scope
        .db
        .run(|conn| Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?))
        .await?;
    Ok(ApiJson(TenantInfo { id, schema_version }))
}

/// Prometheus text exposition of the server's counters.
#[utoipa::path(get, path = "/api/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(state.tenants.open_count());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi())
}
