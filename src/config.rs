//! Configuration: one struct, from command-line flags with environment fallbacks and
//! defaults that serve. `main` parses it; tests build it with [`Config::for_data_root`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;

/// AEZEN — a self-hosted, multi-tenant WhatsApp shared inbox.
#[derive(Debug, Clone, Parser)]
#[command(name = "aezen", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "AEZEN_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Folder holding `master.db` and `tenants/<db_name>.db`; created on first run.
    #[arg(long, env = "AEZEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Folder holding one WhatsApp session store per tenant (`<tenant-id>/`).
    #[arg(long, env = "AEZEN_SESSIONS_DIR", default_value = "./sessions")]
    pub sessions_dir: PathBuf,

    /// Secret for signing tokens (at least 32 bytes). When unset, one is generated once into
    /// `<data-dir>/jwt_secret` (mode 0600) and reused.
    #[arg(long, env = "AEZEN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long a login token stays valid, in hours.
    #[arg(long, env = "AEZEN_TOKEN_TTL_HOURS", default_value_t = 24)]
    pub token_ttl_hours: u64,

    /// Most tenant databases kept open at once (LRU beyond that). Unset: derived at start-up
    /// from `--memory-budget` and the open-file limit (the numbers chosen are logged).
    #[arg(long, env = "AEZEN_TENANT_CACHE_CAPACITY")]
    pub tenant_cache_capacity: Option<u64>,

    /// Memory the server plans for, in bytes. Unless `--tenant-cache-capacity` is given, the
    /// tenant cache gets what is left after the page and media caches and a fixed share for
    /// everything else (64 MiB), at 256 KiB per open tenant.
    #[arg(long, env = "AEZEN_MEMORY_BUDGET", default_value_t = DEFAULT_MEMORY_BUDGET)]
    pub memory_budget: u64,

    /// Seconds an unused tenant database stays open.
    #[arg(long, env = "AEZEN_TENANT_IDLE_SECS", default_value_t = 600)]
    pub tenant_idle_secs: u64,

    /// Seconds between sweeps that shrink each open tenant's pool back to one idle connection
    /// with an empty page cache (and forget recovered rate-limit keys).
    #[arg(long, env = "AEZEN_SHED_IDLE_SECS", default_value_t = 60)]
    pub shed_idle_secs: u64,

    /// Most SQLite connections per open tenant database.
    #[arg(long, env = "AEZEN_TENANT_POOL_SIZE", default_value_t = 4)]
    pub tenant_pool_size: u32,

    /// Who may open a tenant file while the server has it open: `exclusive` (this process
    /// only; cheaper opens, see docs/PERFORMANCE.md) or `shared` (an outside `sqlite3` may
    /// too, e.g. for a live `.backup`). Files the server has closed are always open to all.
    #[arg(
        long,
        env = "AEZEN_TENANT_FILE_LOCK",
        value_enum,
        default_value = "exclusive"
    )]
    pub tenant_file_lock: FileLock,

    /// Most threads running blocking work (SQLite queries, password hashing) at once; further
    /// work queues. A few per core keep the CPU busy without the context switches and lock
    /// contention of hundreds of threads (measured: docs/PERFORMANCE.md).
    #[arg(long, env = "AEZEN_BLOCKING_THREADS", default_value_t = 16)]
    pub blocking_threads: usize,

    /// Largest JSON request body accepted, in bytes.
    #[arg(long, env = "AEZEN_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Origins (e.g. `https://crm.example.com`) whose browser pages may call the API
    /// cross-origin; comma-separated or repeated. None by default: CORS is off and only the
    /// inbox served by this server (same origin) can call it from a browser.
    #[arg(
        long = "cors-allow-origin",
        env = "AEZEN_CORS_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,

    /// Seconds a connection may take to send a request's head, and may sit idle between
    /// requests on keep-alive, before it is closed.
    #[arg(long, env = "AEZEN_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request's body may take to arrive; a stalled body gets 408.
    #[arg(long, env = "AEZEN_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Most HTTP connections open at once (lowered at start-up to a quarter of the open-file
    /// limit); further connections are closed at once.
    #[arg(long, env = "AEZEN_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Most HTTP connections open at once from one client address.
    #[arg(long, env = "AEZEN_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Seconds a stopping server waits for requests in flight to finish; after that it stops
    /// anyway, so a client that never finishes its request cannot hold the shutdown open.
    #[arg(long, env = "AEZEN_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Login/sign-up attempts allowed per client IP per minute.
    #[arg(long, env = "AEZEN_LOGIN_PER_IP_PER_MINUTE", default_value_t = 20)]
    pub login_per_ip_per_minute: u32,

    /// Login attempts allowed per account (email) per minute.
    #[arg(long, env = "AEZEN_LOGIN_PER_ACCOUNT_PER_MINUTE", default_value_t = 5)]
    pub login_per_account_per_minute: u32,

    /// WhatsApp backend: `real` (whatsapp-rust, an unofficial client) or `simulated` (offline,
    /// driven by the `/api/integrations/whatsapp/simulate/*` endpoints).
    #[arg(long, env = "AEZEN_WHATSAPP", value_enum, default_value = "real")]
    pub whatsapp: BackendKind,

    /// Simulated backend only: milliseconds each fake QR code lasts (the first lasts three
    /// times as long), as WhatsApp's 20 s. Lowered by tests.
    #[arg(
        long,
        env = "AEZEN_SIMULATED_QR_MS",
        default_value_t = 20_000,
        hide = true
    )]
    pub simulated_qr_ms: u64,

    /// Hours an entry of a tenant's event log is kept (for clients catching up).
    #[arg(long, env = "AEZEN_EVENT_RETENTION_HOURS", default_value_t = 72)]
    pub event_retention_hours: u64,

    /// Most entries kept in a tenant's event log.
    #[arg(long, env = "AEZEN_EVENT_RETENTION_COUNT", default_value_t = 10_000)]
    pub event_retention_count: u64,

    /// Webhooks may target plain `http://` URLs (for a self-hosted receiver); by default only
    /// `https://` (docs/WEBHOOKS.md).
    #[arg(long, env = "AEZEN_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_http: bool,

    /// Webhook targets allowed although their address is loopback, private, link-local or
    /// otherwise refused: comma-separated host names, addresses or CIDR ranges, e.g.
    /// `127.0.0.1,10.0.0.0/8`.
    #[arg(long, env = "AEZEN_WEBHOOK_ALLOW_HOSTS", value_delimiter = ',')]
    pub webhook_allow_hosts: Vec<String>,

    /// Hours a webhook endpoint is retried after its first failure before it is disabled.
    #[arg(long, env = "AEZEN_WEBHOOK_RETRY_HOURS", default_value_t = 24)]
    pub webhook_retry_hours: u64,

    /// The first retry's delay after a failed webhook delivery, in ms (then doubling to an
    /// hour). Lowered by tests.
    #[arg(
        long,
        env = "AEZEN_WEBHOOK_FIRST_RETRY_MS",
        default_value_t = 5_000,
        hide = true
    )]
    pub webhook_first_retry_ms: u64,

    /// Most events kept in a tenant's log for a webhook endpoint that has not received them
    /// (beyond the retention limits); past it the oldest go, and the endpoint records the gap.
    #[arg(long, env = "AEZEN_WEBHOOK_BACKLOG", default_value_t = 100_000)]
    pub webhook_backlog: u64,

    /// Largest media item stored, in bytes (uploads and incoming items alike). A larger
    /// incoming item is recorded as `unavailable` with its metadata, never dropped; a larger
    /// upload is refused with 413.
    #[arg(long, env = "AEZEN_MEDIA_MAX_BYTES", default_value_t = DEFAULT_MEDIA_MAX_BYTES)]
    pub media_max_bytes: u64,

    /// Memory for kept first pages of the conversation list, in bytes: a page is answered
    /// again, without reading the tenant's file, until the file changes. 0 turns it off; it
    /// is off with `--tenant-file-lock shared`.
    #[arg(long, env = "AEZEN_PAGE_CACHE_BYTES", default_value_t = DEFAULT_PAGE_CACHE_BYTES)]
    pub page_cache_bytes: u64,

    /// Memory for the hot media cache, in bytes: recently served items up to 1 MiB are
    /// answered from memory instead of the tenant's file. 0 turns it off.
    #[arg(long, env = "AEZEN_MEDIA_CACHE_BYTES", default_value_t = DEFAULT_MEDIA_CACHE_BYTES)]
    pub media_cache_bytes: u64,

    /// The first retry's delay after a failed media download, in ms (then doubling to an
    /// hour, for 10 attempts). Lowered by tests.
    #[arg(
        long,
        env = "AEZEN_MEDIA_FIRST_RETRY_MS",
        default_value_t = 30_000,
        hide = true
    )]
    pub media_first_retry_ms: u64,

    /// Log line format: `text` (human-readable) or `json` (one JSON object per line, with the
    /// request id on every line logged while a request is handled).
    #[arg(long, env = "AEZEN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Password hashes computed at once (each takes ~19 MiB and a core for tens of ms).
    /// Defaults to the number of cores.
    #[arg(long, env = "AEZEN_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
}

impl Config {
    /// The defaults, with data and sessions under `root` (used by tests and tools).
    pub fn for_data_root(root: &Path) -> Self {
        let mut config = Self::parse_from(["aezen"]);
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.data_dir = root.join("data");
        config.sessions_dir = root.join("sessions");
        config
    }

    /// The tokio runtime AEZEN runs on: one worker per core, and at most
    /// [`Config::blocking_threads`] threads for blocking work.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(self.blocking_threads.max(1))
            .enable_all()
            .build()
    }

    pub fn master_db_path(&self) -> PathBuf {
        self.data_dir.join("master.db")
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.data_dir.join("tenants")
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which backend serves WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The whatsapp-rust adapter (real WhatsApp network).
    Real,
    /// An offline stand-in driven by the `simulate/*` endpoints.
    Simulated,
}

/// The default of `--media-max-bytes` (64 MiB).
pub const DEFAULT_MEDIA_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The default of `--memory-budget` (256 MiB): a small box's share for one service.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// What the memory budget sets aside for everything but the tenant, page and media caches:
/// the runtime, sockets, requests in flight, the master registry. An idle server with no
/// tenant open measured 43–47 MiB of RSS (docs/PERFORMANCE.md, rows 9, 10 and 12).
pub const BASE_MEMORY_BYTES: u64 = 64 * 1024 * 1024;

/// What one open tenant is counted at in the memory budget, from row 5c (docs/PERFORMANCE.md):
/// a tenant just opened measured 237–277 KiB of server RSS (its first minute's pool, grown by
/// the queries its opening starts), 166–177 KiB once shrunk to one idle connection
/// (`Db::shed_idle`) — mostly SQLite's parsed schema and write-ahead-log index.
pub const OPEN_TENANT_BYTES: u64 = 256 * 1024;

/// The smallest tenant cache the budget may leave (a budget too small for it is overrun,
/// not obeyed: a server that closes a file per request is not what anyone asked for).
pub const MIN_TENANT_CACHE: u64 = 16;

/// The default of `--page-cache-bytes` (16 MiB).
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The default of `--media-cache-bytes` (32 MiB).
pub const DEFAULT_MEDIA_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Whether other processes may open a database file while this one has it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileLock {
    /// Only this process, through SQLite's `unix-excl` VFS: the first connection takes an
    /// exclusive lock on the file for the process, held until its last connection closes.
    /// In exchange, the write-ahead log's index lives in heap memory (no `-shm` file to
    /// truncate, grow and map at each open) and locking inside the process makes no system
    /// calls: an uncached tenant request costs about a third less (docs/PERFORMANCE.md).
    Exclusive,
    /// Any process, through SQLite's default `unix` VFS: an outside `sqlite3` (a live
    /// `.backup`, an inspection) may open a file the server has open.
    Shared,
}
