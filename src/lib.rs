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
pub mod cli;
pub mod config;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod ids;
pub(crate) mod locks;
pub mod logging;
pub(crate) mod media;
pub(crate) mod metrics;
pub mod ops;
pub(crate) mod realtime;
pub mod startup;
pub mod state;
pub(crate) mod tenancy;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) mod webhooks;
pub mod whatsapp;

pub use config::Config;
pub use startup::Application;
pub use state::AppState;

/// The log filter when `RUST_LOG` is unset. whatsapp-rust's connection life cycle logs each
/// failed attempt at ERROR and its retry schedule at INFO; AEZEN logs every attempt itself,
/// with its reason, as one WARN line ("WhatsApp unreachable; retrying"), so the crate's lines
/// are left out (`RUST_LOG=info` brings them back).
pub const DEFAULT_LOG: &str = "info,whatsapp_rust::client::lifecycle=off";

/// The jemalloc settings the `aezen` binary runs with unless the environment sets
/// [`MALLOC_CONF_VAR`] itself.
///
/// The binary allocates with jemalloc (its `#[global_allocator]`), configured to hand freed
/// memory back to the system within about a second, by a background thread: with glibc's
/// malloc, memory freed in the middle of its heaps stayed resident for good — 2,000 idle
/// connections closed left ~26 MiB behind, and every further burst crept higher; glibc's own
/// `malloc_trim` gave it all back, which showed the memory was free, not leaked (benchmark
/// row 10, docs/PERFORMANCE.md). jemalloc reads the variable before `main` runs, so the binary
/// re-executes itself once to set it ([`allocator_env`]).
pub const MALLOC_CONF: &str = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// The variable jemalloc reads (built unprefixed, as the process's `malloc`: SQLite's
/// allocations are jemalloc's too).
pub const MALLOC_CONF_VAR: &str = "MALLOC_CONF";

/// The environment variable and value to start the server process with, if it is not set
/// already; `None` when it is (an operator's own choice stands).
pub fn allocator_env() -> Option<(&'static str, &'static str)> {
    std::env::var_os(MALLOC_CONF_VAR)
        .is_none()
        .then_some((MALLOC_CONF_VAR, MALLOC_CONF))
}

#[cfg(test)]
mod testing;
