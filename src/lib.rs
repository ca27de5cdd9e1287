//! AEZEN: a self-hosted, multi-tenant WhatsApp shared inbox in one binary.
//!
//! The modules form layers; each imports only from the layers below it (the rule and the
//! map: `docs/ARCHITECTURE.md`, checked by `.ci/layers.py`):
//!
//! 1. foundation — [`ids`], [`time`], [`error`], [`text`], [`metrics`], [`locks`], [`config`],
//!    [`logging`] (the subscriber the binary installs)
//! 2. storage — [`db`], then [`tenancy`] (the registry and the per-tenant files)
//! 3. the domain model and its SQL — `chat::{mod, store}`, `auth::users`, [`events`], and
//!    the WhatsApp port (`whatsapp::mod`) with its backends (`real`, `simulated`)
//! 4. services, built once with narrow handles — [`realtime`] (broadcaster, `TenantEvents`),
//!    `chat::{outbox, ingest, inbox}`, `whatsapp::sessions`, `auth::*`
//! 5. [`state`] (`AppState`, the services together), then [`http`] (axum, Socket.IO,
//!    OpenAPI), then [`startup`] (`Application`: build, run, shutdown)

pub(crate) mod auth;
pub mod bench;
pub(crate) mod chat;
pub mod config;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod ids;
pub(crate) mod locks;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod realtime;
pub mod startup;
pub mod state;
pub(crate) mod tenancy;
pub(crate) mod text;
pub(crate) mod time;
pub mod whatsapp;

pub use config::Config;
pub use startup::Application;
pub use state::AppState;

/// The log filter when `RUST_LOG` is unset. whatsapp-rust's connection life cycle logs each
/// failed attempt at ERROR and its retry schedule at INFO; AEZEN logs every attempt itself,
/// with its reason, as one WARN line ("WhatsApp unreachable; retrying"), so the crate's lines
/// are left out (`RUST_LOG=info` brings them back).
pub const DEFAULT_LOG: &str = "info,whatsapp_rust::client::lifecycle=off";

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

#[cfg(test)]
mod testing;
