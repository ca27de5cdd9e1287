//! Unit-test fixtures: a small world of real services on a temp dir (master registry, tenant
//! files, the broadcaster), without a server, so a service can be tested through its own
//! narrow handles.

use std::time::Duration;

use chrono::Utc;
use socketioxide::SocketIo;
use tempfile::TempDir;

use crate::config::FileLock;
use crate::db::Db;
use crate::events::Retention;
use crate::ids::TenantId;
use crate::metrics::Metrics;
use crate::realtime::{Realtime, TenantEvents};
use crate::tenancy::{self, DbName, PoolSettings, Tenant, TenantPools, registry};

/// An in-memory database with every tenant migration applied, shaped as a tenant file is.
pub fn tenant_memory_db() -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    crate::db::migrate(&mut conn, &tenancy::tenant_schema()).unwrap();
    conn
}

pub struct World {
    pub dir: TempDir,
    pub master: Db,
    pub tenants: TenantPools,
    pub events: TenantEvents,
    pub metrics: Metrics,
}

impl World {
    /// Must run inside a tokio runtime (the broadcaster is a task).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let master = tenancy::open_master(&dir.path().join("master.db")).unwrap();
        std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
        let metrics = Metrics::new();
        let tenants = TenantPools::new(
            master.clone(),
            dir.path().join("tenants"),
            &PoolSettings {
                capacity: 16,
                idle: Duration::from_secs(600),
                connections_per_tenant: 2,
                file_lock: FileLock::Exclusive,
            },
            metrics.clone(),
        );
        let (_layer, io) = SocketIo::builder().build_layer();
        let retention = Retention {
            max_count: 10_000,
            max_age_ms: 3_600_000,
            webhook_backlog: 100_000,
        };
        let events = TenantEvents::new(tenants.clone(), Realtime::new(io), retention);
        Self {
            dir,
            master,
            tenants,
            events,
            metrics,
        }
    }

    /// Registers a tenant and creates its file, as sign-up does.
    pub async fn tenant(&self, name: &str) -> TenantId {
        let tenant = Tenant {
            id: TenantId::new(),
            name: name.to_owned(),
            created_at: Utc::now(),
        };
        let id = tenant.id;
        let db_name = DbName::generate(name);
        self.master
            .write(move |tx| Ok(registry::insert(tx, &tenant, &db_name)?))
            .await
            .unwrap();
        self.tenants.get(id).await.unwrap();
        id
    }

    /// A query on a tenant's file.
    pub async fn query<T: Send + 'static>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> T {
        let db = self.tenants.get(tenant).await.unwrap();
        db.run(move |conn| Ok(f(conn)?)).await.unwrap()
    }
}
