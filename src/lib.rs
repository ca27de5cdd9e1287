//! AEZEN: a self-hosted, multi-tenant WhatsApp shared inbox in one binary.
//!
//! ```text
//! request ─► axum router ─► CurrentUser / TenantScope extractors (JWT → user, tenant)
//!                                 │
//!                                 ▼
//!                 TenantPools (moka LRU) ──miss──► data/tenants/<db_name>.db
//!                                 │                 (created once at sign-up, migrated)
//!                                 ▼
//!                 r2d2 pool of that file ─► rusqlite inside spawn_blocking (Db::run)
//! ```
//!
//! - [`app`]: `Application::build(config)`, the shared `AppState`, the router and OpenAPI.
//! - [`config`]: flags, environment fallbacks, defaults.
//! - [`tenancy`]: the master registry and the per-tenant files.
//! - [`auth`]: passwords, tokens, rate limits, the extractors; [`team`]: team management.
//! - [`db`]: pragmas, pools, migrations, the blocking helper. [`error`]: `ApiError`.
//! - [`time`]: timestamps in JSON without `fmt` (hot response types).
//! - See `docs/ARCHITECTURE.md` for the invariants.

pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod ids;
pub mod metrics;
pub mod realtime;
pub mod team;
pub mod tenancy;
pub mod time;
pub mod whatsapp;

pub use app::{AppState, Application};
pub use config::Config;

/// `MALLOC_ARENA_MAX` the `aezen` binary runs with unless the environment already sets it.
///
/// glibc gives each thread that allocates its own malloc arena, up to 8 per core. SQLite
/// connections are opened, used and closed on different blocking threads, so a server with
/// many tenants leaves freed connection memory scattered over a dozen or more arenas, none of
/// which can hand it to another. With 4 arenas, the 1,000-tenant benchmark's peak RSS fell by
/// about a fifth at the same throughput (docs/PERFORMANCE.md). glibc reads the value before
/// `main` runs, so the binary re-executes itself once to set it ([`malloc_arena_cap`]).
pub const MALLOC_ARENA_MAX: &str = "4";

/// The environment variable and value to start the server process with, if it is not set
/// already; `None` when it is (an operator's own choice stands) or off glibc.
pub fn malloc_arena_cap() -> Option<(&'static str, &'static str)> {
    let applies = cfg!(all(target_os = "linux", target_env = "gnu"));
    (applies && std::env::var_os("MALLOC_ARENA_MAX").is_none())
        .then_some(("MALLOC_ARENA_MAX", MALLOC_ARENA_MAX))
}
