//! Operations on the data directory: a tenant is a file, and these are the commands that copy,
//! move, check and remove those files (`aezen tenant list`, `backup`, `restore`,
//! `tenant export` / `import` / `delete` / `compact`, `migrate`, `check`).
//!
//! One implementation serves both ways of running them:
//! - **online**, inside the server, reached through its control socket ([`control`]): the
//!   server's own pools do the reading, so the exclusive file lock is no obstacle and a command
//!   never races the server's writes; a changing command takes the tenant out of service for
//!   the moment it needs ([`TenantPools::hold`]: requests get 503 `tenant_busy`);
//! - **offline**, in the command's own process, when no server holds the data directory
//!   ([`crate::locks::DataDirLock`]): the same code on pools of its own.
//!
//! Every command checks everything it was given before it changes anything, and writes each
//! file next to its destination first (a staging name starting with `.`) and renames it into
//! place, so a failure leaves either the old file or the new one, never half of either.

pub mod archive;
pub mod backup;
pub mod control;
mod files;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::auth::Authenticator;
use crate::db::Db;
use crate::ids::TenantId;
use crate::tenancy::TenantPools;
use crate::tenancy::registry::DbName;
use crate::whatsapp::sessions::Sessions;

/// What a command is asked to do: the body of a control-socket request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    List,
    Backup {
        out: PathBuf,
        /// Only these tenants (all when empty).
        tenants: Vec<TenantId>,
        /// Copy every tenant even if it did not change since the last backup in `out`.
        full: bool,
    },
    Restore {
        from: PathBuf,
        tenants: Vec<TenantId>,
    },
    Export {
        tenant: TenantId,
        out: PathBuf,
    },
    Import {
        file: PathBuf,
    },
    Delete {
        tenant: TenantId,
    },
    Compact {
        tenant: TenantId,
    },
    Migrate {
        dry_run: bool,
    },
    Check,
}

/// What a running command reports before it finishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Note {
    /// A line for the operator (a failure of one tenant among many, a step done).
    Line(String),
    /// `done` of `total` items.
    Count { done: u64, total: u64 },
}

/// Where a command's notes go (stderr and a progress bar, or the control socket).
pub type Progress = Arc<dyn Fn(Note) + Send + Sync>;

/// What a command answers: a report for `--json`, the same for a person, and whether
/// everything was fine (the exit code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub report: serde_json::Value,
    pub text: String,
    pub ok: bool,
}

/// The server's parts an online command also has to tell: its WhatsApp sessions and the cache
/// of users that tokens name.
#[derive(Clone)]
pub struct Live {
    pub sessions: Sessions,
    pub auth: Arc<Authenticator>,
}

/// The operations, on one data directory.
#[derive(Clone)]
pub struct Operations {
    inner: Arc<Inner>,
}

struct Inner {
    master: Db,
    tenants: TenantPools,
    data_dir: PathBuf,
    sessions_dir: PathBuf,
    live: Option<Live>,
}

impl Operations {
    pub fn new(
        master: Db,
        tenants: TenantPools,
        data_dir: PathBuf,
        sessions_dir: PathBuf,
        live: Option<Live>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                master,
                tenants,
                data_dir,
                sessions_dir,
                live,
            }),
        }
    }

    /// Runs one command to its end.
    pub async fn execute(&self, request: Request, progress: &Progress) -> anyhow::Result<Outcome> {
        match request {
            Request::List => self.list().await,
            Request::Backup { out, tenants, full } => {
                self.backup(&out, &tenants, full, progress).await
            }
            Request::Restore { from, tenants } => self.restore(&from, &tenants, progress).await,
            Request::Export { tenant, out } => self.export_to_file(tenant, &out).await,
            Request::Import { file } => self.import(&file).await,
            Request::Delete { tenant } => self.delete(tenant).await,
            Request::Compact { tenant } => self.compact(tenant).await,
            Request::Migrate { dry_run } => self.migrate(dry_run, progress).await,
            Request::Check => self.check().await,
        }
    }

    fn master(&self) -> &Db {
        &self.inner.master
    }

    fn tenants(&self) -> &TenantPools {
        &self.inner.tenants
    }

    fn live(&self) -> Option<&Live> {
        self.inner.live.as_ref()
    }

    /// `sessions/<tenant-id>/`.
    fn session_folder(&self, tenant: TenantId) -> PathBuf {
        self.inner.sessions_dir.join(tenant.to_string())
    }

    fn tenant_path(&self, db_name: &DbName) -> PathBuf {
        self.tenants().path_of(db_name)
    }

    /// A folder for the temporary copies of export (inside the data dir: same file system
    /// as the files, and as private).
    fn scratch(&self) -> anyhow::Result<PathBuf> {
        let dir = self.inner.data_dir.join("tmp");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// The registry row of `tenant`, or an error naming it.
    async fn registered(&self, tenant: TenantId) -> anyhow::Result<files::Registered> {
        files::registered(self.master(), tenant)
            .await?
            .with_context(|| format!("no tenant with id {tenant} in this data directory"))
    }
}

/// Removes `path` and says nothing if it was not there.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A SQLite file's `-wal` and `-shm` companions.
fn companions(path: &Path) -> [PathBuf; 2] {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    ["-wal", "-shm"].map(|suffix| path.with_file_name(format!("{name}{suffix}")))
}
