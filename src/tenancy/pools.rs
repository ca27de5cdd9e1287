//! `TenantPools`: the bounded cache of open tenant databases.
//!
//! A moka cache maps a tenant id to an r2d2 pool on that tenant's file. Capacity and idle
//! expiry are configured; eviction is LRU (chosen explicitly: moka's default TinyLFU may refuse
//! to admit a freshly opened tenant, which for a connection cache means opening it again on the
//! next request). Concurrent misses for one tenant share one open (`try_get_with`).
//!
//! Opening a tenant: read its registry row, build the path from the row's `db_name` (never from
//! a request), then
//! - not provisioned yet → create the file, migrate it, record it in the registry;
//! - provisioned and present → open it *without* `SQLITE_OPEN_CREATE`, migrate if behind,
//!   refuse if its schema is newer than this binary or it belongs to another tenant;
//! - provisioned and missing → `tenant_unavailable` (503), logged; never an empty new file.
//!
//! An evicted pool stays alive while a request holds a clone of it; its file closes when the
//! last clone drops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use rusqlite::{Connection, OptionalExtension};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::db::{self, Db, Durability, Migrated};
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::metrics::Metrics;
use crate::tenancy::registry::{self, TenantRecord};

mod embedded {
    refinery::embed_migrations!("migrations/tenant");
}

/// Settings for [`TenantPools`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub capacity: u64,
    pub idle: Duration,
    pub connections_per_tenant: u32,
}

#[derive(Clone)]
pub struct TenantPools {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache<TenantId, Db>,
    master: Db,
    tenants_dir: PathBuf,
    connections_per_tenant: u32,
    threads: Arc<ScheduledThreadPool>,
    metrics: Metrics,
    on_open: OnOpen,
}

/// Called (on a blocking thread inside the runtime) each time a tenant's database is opened.
pub type OnOpen = Box<dyn Fn(TenantId) + Send + Sync>;

impl TenantPools {
    pub fn new(
        master: Db,
        tenants_dir: PathBuf,
        settings: &PoolSettings,
        metrics: Metrics,
        on_open: OnOpen,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_idle(settings.idle)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self {
            inner: Arc::new(Inner {
                cache,
                master,
                tenants_dir,
                connections_per_tenant: settings.connections_per_tenant,
                threads: Arc::new(
                    ScheduledThreadPool::builder()
                        .num_threads(2)
                        .thread_name_pattern("sqlite-pool-{}")
                        .build(),
                ),
                metrics,
                on_open,
            }),
        }
    }

    /// The pool of `tenant`'s file, opening (and if need be creating) it on a miss.
    pub async fn get(&self, tenant: TenantId) -> Result<Db, ApiError> {
        if let Some(db) = self.inner.cache.get(&tenant) {
            return Ok(db);
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let db = inner
                .cache
                .try_get_with(tenant, || inner.open(tenant))
                .map_err(Arc::unwrap_or_clone)?;
            // moka applies evictions in batches; run them now, on a miss (rare next to
            // hits), so the number of open files stays within capacity, not just near it.
            inner.cache.run_pending_tasks();
            Ok(db)
        })
        .await
        .map_err(|e| ApiError::internal("tenant open task", e))?
    }

    /// Number of tenant databases currently open.
    pub fn open_count(&self) -> u64 {
        self.inner.cache.run_pending_tasks();
        self.inner.cache.entry_count()
    }

    /// Closes every cached pool (used at shutdown; requests still running keep theirs).
    pub fn clear(&self) {
        self.inner.cache.invalidate_all();
        self.inner.cache.run_pending_tasks();
    }
}

impl Inner {
    fn open(&self, tenant: TenantId) -> Result<Db, ApiError> {
        let record = self
            .master
            .run_blocking(|conn| Ok(registry::find(conn, tenant)?))?
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        let path = self
            .tenants_dir
            .join(format!("{}.db", record.db_name.as_str()));
        if !record.provisioned {
            self.provision(&record, &path)?;
        } else if !path.exists() {
            tracing::error!(
                tenant = %tenant,
                path = %path.display(),
                "tenant is registered but its database file is missing; refusing to recreate it"
            );
            return Err(ApiError::tenant_unavailable());
        }
        let db = db::open_pool(
            &path,
            Durability::Normal,
            self.connections_per_tenant,
            Arc::clone(&self.threads),
        )
        .map_err(|e| {
            tracing::error!(tenant = %tenant, path = %path.display(), error = %e, "cannot open tenant database");
            ApiError::tenant_unavailable()
        })?;
        db.run_blocking(|conn| self.check_and_migrate(conn, &record))?;
        self.metrics.tenant_opens.inc();
        (self.on_open)(tenant);
        Ok(db)
    }

    /// Creates and migrates a registered tenant's file, then records it in the registry.
    /// A file left by an interrupted earlier attempt (registry not yet updated) is reused.
    fn provision(&self, record: &TenantRecord, path: &Path) -> Result<(), ApiError> {
        let tenant = record.tenant.id;
        if !path.exists() {
            let mut conn = db::open_connection(path, Durability::Normal, true)
                .map_err(|e| ApiError::internal("create tenant file", e))?;
            self.check_and_migrate(&mut conn, record)?;
            tracing::info!(tenant = %tenant, path = %path.display(), "tenant database created");
            self.metrics.tenant_provisions.inc();
        }
        self.master
            .run_blocking(|conn| Ok(registry::mark_provisioned(conn, tenant)?))
    }

    fn check_and_migrate(
        &self,
        conn: &mut Connection,
        record: &TenantRecord,
    ) -> Result<(), ApiError> {
        let tenant = record.tenant.id;
        let migrated = db::migrate(conn, embedded::migrations::runner()).map_err(|e| {
            tracing::error!(tenant = %tenant, error = %e, "tenant database cannot be migrated");
            ApiError::tenant_unavailable()
        })?;
        if migrated == Migrated::Applied {
            self.metrics.tenant_migrations.inc();
        }
        let owner: Option<String> = conn
            .query_row(
                "SELECT value FROM tenant_meta WHERE key = 'tenant_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match owner {
            None => {
                conn.execute(
                    "INSERT INTO tenant_meta (key, value) VALUES ('tenant_id', ?1)",
                    [tenant],
                )?;
            }
            Some(owner) if owner == tenant.to_string() => {}
            Some(owner) => {
                tracing::error!(tenant = %tenant, file_owner = %owner, "tenant file belongs to another tenant; refusing to serve it");
                return Err(ApiError::tenant_unavailable());
            }
        }
        Ok(())
    }
}
