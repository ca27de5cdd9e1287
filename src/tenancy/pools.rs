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
//! A pool that leaves the cache (evicted, expired, or cleared at shutdown) goes to the closer
//! thread, which empties its write-ahead log into the file and drops it: closing files is kept
//! off the request path. An evicted pool stays alive while a request holds a clone of it; its
//! file closes when the last clone drops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use rusqlite::{Connection, OptionalExtension};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::config::FileLock;
use crate::db::{self, Db, Durability, Migrated};
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::locks::TenantLocks;
use crate::metrics::Metrics;
use crate::tenancy::registry::{self, TenantRecord};

mod embedded {
    refinery::embed_migrations!("migrations/tenant");
}

/// The tenant files' migrations, as this binary knows them.
pub fn tenant_schema() -> db::Schema {
    db::Schema::new(embedded::migrations::runner)
}

/// Settings for [`TenantPools`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub capacity: u64,
    pub idle: Duration,
    pub connections_per_tenant: u32,
    pub file_lock: FileLock,
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
    file_lock: FileLock,
    schema: db::Schema,
    threads: Arc<ScheduledThreadPool>,
    metrics: Metrics,
    on_open: std::sync::OnceLock<OnOpen>,
    closer: Closer,
    /// Each tenant's writer turn, while any `Db` of its file holds it.
    writers: TenantLocks<db::FileTurn>,
    /// Tenants whose file an operation has taken out of service ([`TenantPools::hold`]).
    held: std::sync::Mutex<std::collections::HashSet<TenantId>>,
}

/// Called (on a blocking thread inside the runtime) each time a tenant's database is opened.
pub type OnOpen = Box<dyn Fn(TenantId) + Send + Sync>;

impl TenantPools {
    pub fn new(
        master: Db,
        tenants_dir: PathBuf,
        settings: &PoolSettings,
        metrics: Metrics,
    ) -> Self {
        let closer = Closer::start(metrics.clone());
        let to_close = closer.sender.clone();
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_idle(settings.idle)
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(move |tenant, db, _cause| {
                // Only fails once the closer has stopped; the pool then closes right here.
                let _ = to_close.send(Closing::Pool(*tenant, db));
            })
            .build();
        Self {
            inner: Arc::new(Inner {
                cache,
                master,
                tenants_dir,
                connections_per_tenant: settings.connections_per_tenant,
                file_lock: settings.file_lock,
                schema: tenant_schema(),
                threads: Arc::new(
                    ScheduledThreadPool::builder()
                        .num_threads(2)
                        .thread_name_pattern("sqlite-pool-{}")
                        .build(),
                ),
                metrics,
                on_open: std::sync::OnceLock::new(),
                closer,
                writers: TenantLocks::default(),
                held: std::sync::Mutex::default(),
            }),
        }
    }

    /// Sets the hook called each time a tenant's database is opened (once, at start-up: the
    /// services that need it are built on these pools). A second call is ignored.
    pub fn on_open(&self, hook: OnOpen) {
        if self.inner.on_open.set(hook).is_err() {
            tracing::warn!("tenant pools' open hook was already set");
        }
    }

    /// The pool of `tenant`'s file, opening (and if need be creating) it on a miss.
    pub async fn get(&self, tenant: TenantId) -> Result<Db, ApiError> {
        if let Some(db) = self.cached(tenant) {
            return Ok(db);
        }
        self.run(tenant, |_| Ok(())).await.map(|((), db)| db)
    }

    /// The pool of `tenant`'s file if it is open; never opens it.
    pub fn cached(&self, tenant: TenantId) -> Option<Db> {
        self.inner.cache.get(&tenant)
    }

    /// Runs `f` on `tenant`'s database, opening it on a miss, and returns its pool too.
    ///
    /// On a miss, `f` runs on the blocking thread that opens the file, on the connection just
    /// opened, which then becomes the pool's first: one hop to a blocking thread, where
    /// `get` then [`Db::run`] would take two, plus r2d2's hand-off to its own thread to open
    /// the connection. Most requests of a server with many more tenants than its cache holds
    /// are such misses.
    pub async fn run<T, F>(&self, tenant: TenantId, f: F) -> Result<(T, Db), ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        if let Some(db) = self.cached(tenant) {
            let out = db.run(f).await?;
            return Ok((out, db));
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut f = Some(f);
            let mut out = None;
            let db = inner
                .cache
                .try_get_with(tenant, || {
                    inner.open(tenant, |conn| out = f.take().map(|f| f(conn)))
                })
                .map_err(Arc::unwrap_or_clone)?;
            // moka applies evictions in batches; run them now, on a miss (rare next to
            // hits), so the number of open files stays within capacity, not just near it.
            inner.cache.run_pending_tasks();
            // `f` is still here if another request opened the file meanwhile.
            let out = match (out, f) {
                (Some(out), _) => out?,
                (None, Some(f)) => db.run_blocking(f)?,
                (None, None) => unreachable!("`f` is taken only to fill `out`"),
            };
            Ok((out, db))
        })
        .await
        .map_err(|e| ApiError::internal("tenant open task", e))?
    }

    /// Runs `f` on `tenant`'s database like [`TenantPools::run`], for operations that visit
    /// many tenants once (backup, list, check): a tenant that was not open is closed again
    /// afterwards, so a sweep over every tenant does not push the tenants in use out of the
    /// cache.
    pub async fn visit<T, F>(&self, tenant: TenantId, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let was_open = self.cached(tenant).is_some();
        let (out, db) = self.run(tenant, f).await?;
        drop(db);
        if !was_open {
            self.inner.cache.invalidate(&tenant);
        }
        Ok(out)
    }

    /// Takes `tenant`'s file out of service for an operation that replaces, moves or removes
    /// it: from now on requests for the tenant answer 503 `tenant_busy` (with `Retry-After`),
    /// and this returns once every pool of the file has closed (requests already running
    /// finish first, for at most 10 s). The file is back in service when the [`Hold`] drops.
    pub async fn hold(&self, tenant: TenantId) -> Result<Hold, ApiError> {
        {
            let mut held = self.held();
            if !held.insert(tenant) {
                return Err(ApiError::tenant_busy());
            }
        }
        let hold = Hold {
            pools: self.clone(),
            tenant,
        };
        let inner = Arc::clone(&self.inner);
        let closed = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                // Again each round: an open that began before the hold may have cached a pool.
                inner.cache.invalidate(&tenant);
                inner.cache.run_pending_tasks();
                inner.closer.flush();
                if !inner.writers.in_use(tenant) {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .await
        .map_err(|e| ApiError::internal("tenant hold task", e))?;
        if !closed {
            tracing::warn!(tenant = %tenant, "tenant still in use after 10 s; not taking it out of service");
            return Err(ApiError::tenant_busy());
        }
        Ok(hold)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<TenantId>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where `db_name`'s file lives.
    pub fn path_of(&self, db_name: &registry::DbName) -> PathBuf {
        self.inner
            .tenants_dir
            .join(format!("{}.db", db_name.as_str()))
    }

    /// The file lock the server opens tenant files with.
    pub fn file_lock(&self) -> FileLock {
        self.inner.file_lock
    }

    /// Number of tenant databases currently open.
    pub fn open_count(&self) -> u64 {
        self.inner.cache.run_pending_tasks();
        self.inner.cache.entry_count()
    }

    /// Shrinks every open tenant's pool back to one idle connection with an empty page cache
    /// ([`Db::shed_idle`]), on a blocking thread: run by the server's periodic upkeep, so that
    /// the pool grows under a burst and shrinks back after it, and an open tenant nobody is
    /// using stays cheap (docs/PERFORMANCE.md, row 5).
    pub async fn shed_idle(&self) {
        let inner = Arc::clone(&self.inner);
        let shed = tokio::task::spawn_blocking(move || {
            let (mut pools, mut closed) = (0_usize, 0_usize);
            for (_, db) in &inner.cache {
                pools += 1;
                closed += db.shed_idle();
            }
            (pools, closed)
        })
        .await;
        match shed {
            Ok((pools, closed)) => {
                tracing::debug!(pools, closed, "idle tenant connections shed");
            }
            Err(err) => tracing::error!(error = %err, "shedding idle tenant connections failed"),
        }
    }

    /// Closes every cached pool and waits until the closer has checkpointed them (used at
    /// shutdown; requests still running keep theirs).
    pub async fn clear(&self) {
        let inner = Arc::clone(&self.inner);
        let cleared = tokio::task::spawn_blocking(move || {
            inner.cache.invalidate_all();
            inner.cache.run_pending_tasks();
            inner.closer.flush();
        })
        .await;
        if let Err(err) = cleared {
            tracing::error!(error = %err, "closing tenant databases failed");
        }
    }
}

/// One tenant's database as a request handler uses it: its pool if that is open, otherwise
/// opened by the first [`TenantDb::run`] or [`TenantDb::open`] (so that a read on an uncached
/// tenant is answered on the thread that opens it: [`TenantPools::run`]).
#[derive(Clone)]
pub struct TenantDb {
    pools: TenantPools,
    tenant: TenantId,
    db: std::sync::OnceLock<Db>,
}

/// A tenant's file out of service ([`TenantPools::hold`]); back in service when dropped.
pub struct Hold {
    pools: TenantPools,
    tenant: TenantId,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.pools.held().remove(&self.tenant);
    }
}

impl TenantDb {
    pub fn new(pools: &TenantPools, tenant: TenantId) -> Self {
        let db = std::sync::OnceLock::new();
        if let Some(open) = pools.cached(tenant) {
            let _ = db.set(open);
        }
        Self {
            pools: pools.clone(),
            tenant,
            db,
        }
    }

    /// [`Db::run`] on the tenant's file.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        if let Some(db) = self.db.get() {
            return db.run(f).await;
        }
        let (out, db) = self.pools.run(self.tenant, f).await?;
        let _ = self.db.set(db);
        Ok(out)
    }

    /// The file's write sequence ([`Db::sequence`]) if its pool is open already.
    pub fn sequence(&self) -> Option<u64> {
        self.db.get().map(Db::sequence)
    }

    /// The tenant this database belongs to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The tenant's pool, opening the file if it is not open yet (for writes).
    pub async fn open(&self) -> Result<&Db, ApiError> {
        match self.db.get() {
            Some(db) => Ok(db),
            None => {
                let db = self.pools.get(self.tenant).await?;
                Ok(self.db.get_or_init(|| db))
            }
        }
    }
}

/// What the closer thread is handed.
enum Closing {
    Pool(TenantId, Db),
    /// Answered once everything sent before it is closed.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The thread that checkpoints and closes tenant pools after they leave the cache.
struct Closer {
    sender: std::sync::mpsc::SyncSender<Closing>,
}

/// Pools that may wait for the closer at once.
const CLOSER_BACKLOG: usize = 16;

impl Closer {
    fn start(metrics: Metrics) -> Self {
        // Bounded: when closing falls behind, evicting waits, so the number of open files
        // stays within capacity + this.
        let (sender, closing) = std::sync::mpsc::sync_channel::<Closing>(CLOSER_BACKLOG);
        let spawned = std::thread::Builder::new()
            .name("tenant-closer".into())
            .spawn(move || {
                for item in closing {
                    match item {
                        Closing::Pool(tenant, db) => {
                            match db.checkpoint_blocking() {
                                Ok(true) => {}
                                Ok(false) => tracing::debug!(tenant = %tenant, "tenant still in use at close; its log is checkpointed later"),
                                Err(err) => tracing::warn!(tenant = %tenant, error = %err, "tenant checkpoint at close failed"),
                            }
                            drop(db);
                            metrics.tenant_closes.inc();
                        }
                        Closing::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            // Without the thread, the eviction listener's sends fail and pools close inline.
            tracing::error!(error = %err, "cannot start the tenant closer thread");
        }
        Self { sender }
    }

    /// Waits (up to a bound) until every pool handed over so far is closed.
    fn flush(&self) {
        let (done, finished) = std::sync::mpsc::channel();
        if self.sender.send(Closing::Flush(done)).is_ok()
            && finished.recv_timeout(Duration::from_secs(30)).is_err()
        {
            tracing::warn!("tenant databases still closing after 30 s");
        }
    }
}

impl Inner {
    /// Opens `tenant`'s file on this thread, checks it, hands the new connection to `first`,
    /// then makes it the first connection of the tenant's pool.
    fn open(&self, tenant: TenantId, first: impl FnOnce(&mut Connection)) -> Result<Db, ApiError> {
        if self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&tenant)
        {
            return Err(ApiError::tenant_busy());
        }
        let record = self
            .master
            .run_blocking(|conn| Ok(registry::find(conn, tenant)?))?
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        let path = self
            .tenants_dir
            .join(format!("{}.db", record.db_name.as_str()));
        if !record.provisioned {
            self.provision(&record, &path)?;
        }
        // Never created here: a registered file that is missing stays an error.
        let mut conn = db::open_connection(&path, Durability::Normal, self.file_lock, false)
            .map_err(|e| {
                if path.exists() {
                    tracing::error!(tenant = %tenant, path = %path.display(), error = %e, "cannot open tenant database");
                } else {
                    tracing::error!(
                        tenant = %tenant,
                        path = %path.display(),
                        "tenant is registered but its database file is missing; refusing to recreate it"
                    );
                }
                ApiError::tenant_unavailable()
            })?;
        self.check_and_migrate(&mut conn, &record)?;
        first(&mut conn);
        let db = db::open_pool(
            &path,
            Durability::Normal,
            self.file_lock,
            self.connections_per_tenant,
            Arc::clone(&self.threads),
            Some(conn),
            self.writer(tenant),
        )
        .map_err(|e| ApiError::internal("tenant pool", e))?;
        // After the checks and `first`, which may have written: a log that is not empty now
        // (from them, from provisioning, or from an earlier open whose closing checkpoint
        // could not finish) is emptied when this pool closes.
        let wal = path.with_extension("db-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            db.mark_logged();
        }
        self.metrics.tenant_opens.inc();
        if let Some(on_open) = self.on_open.get() {
            on_open(tenant);
        }
        Ok(db)
    }

    /// The tenant's writer turn: the one that a `Db` of its file still holds, else a new one.
    fn writer(&self, tenant: TenantId) -> db::Writer {
        self.writers.get(tenant)
    }

    /// The common case of [`Inner::check_and_migrate`], in one statement: the file is at this
    /// binary's schema version and says it is `tenant`'s. Anything else (including a file too
    /// new, or too old to have `tenant_meta`) is `false`.
    fn is_current_and_owned(&self, conn: &Connection, tenant: TenantId) -> bool {
        let found = conn
            .query_row(
                "SELECT user_version, (SELECT value FROM tenant_meta WHERE key = 'tenant_id') \
                 FROM pragma_user_version",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?)),
            )
            .ok();
        found.is_some_and(|(version, owner)| {
            version == self.schema.latest() && owner.is_some_and(|o| o == tenant.to_string())
        })
    }

    /// Creates and migrates a registered tenant's file, then records it in the registry.
    /// A file left by an interrupted earlier attempt (registry not yet updated) is reused.
    fn provision(&self, record: &TenantRecord, path: &Path) -> Result<(), ApiError> {
        let tenant = record.tenant.id;
        if !path.exists() {
            let mut conn = db::open_connection(path, Durability::Normal, self.file_lock, true)
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
        if self.is_current_and_owned(conn, tenant) {
            return Ok(());
        }
        let migrated = db::migrate(conn, &self.schema).map_err(|e| {
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
