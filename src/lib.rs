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
