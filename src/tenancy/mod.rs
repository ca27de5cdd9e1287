//! Tenancy: the master registry (`data/master.db`) and the per-tenant SQLite files under
//! `data/tenants/`, reached only through [`TenantPools`].
//!
//! Invariants kept here: a tenant file's path is built only from its registry row; a file is
//! created exactly once (at provisioning) and otherwise opened without `SQLITE_OPEN_CREATE`; a
//! registered tenant whose file is missing is an error (503), never an empty replacement.

pub mod pools;
pub mod registry;

use std::path::Path;
use std::sync::Arc;

use scheduled_thread_pool::ScheduledThreadPool;

pub use pools::{PoolSettings, TenantDb, TenantPools, tenant_schema};
pub use registry::{DbName, Tenant};

use crate::config::FileLock;
use crate::db::{self, Db, Durability};

mod embedded {
    refinery::embed_migrations!("migrations/master");
}

/// Opens (creating on first run) and migrates the master registry.
pub fn open_master(path: &Path) -> anyhow::Result<Db> {
    let mut conn = db::open_connection(path, Durability::Full, FileLock::Shared, true)?;
    if db::migrate(&mut conn, &db::Schema::new(embedded::migrations::runner))?
        == db::Migrated::Applied
    {
        tracing::info!(path = %path.display(), "master registry migrated");
    }
    drop(conn);
    let threads = Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("sqlite-master-{}")
            .build(),
    );
    Ok(db::open_pool(
        path,
        Durability::Full,
        FileLock::Shared,
        8,
        threads,
        None,
        db::Writer::default(),
    )?)
}
