//! The `aezen` command line: `aezen` (or `aezen serve`) runs the server; the other
//! subcommands operate on the data directory (`crate::ops`), through the running server's
//! control socket when one holds the directory, else on the files directly.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, FileLock};
use crate::ids::TenantId;
use crate::locks::{DataDirLock, DataDirLockError};
use crate::metrics::Metrics;
use crate::ops::{Note, Operations, Outcome, Progress, Request, control};
use crate::tenancy::{self, PoolSettings, TenantPools};

/// AEZEN — a self-hosted, multi-tenant WhatsApp shared inbox.
#[derive(Debug, Parser)]
#[command(name = "aezen", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand: the server's options (as `aezen serve`).
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Operate on one tenant: list, export, import, delete, compact.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Copy the master registry, every (or the named) tenant file and their WhatsApp sessions
    /// into DIR, consistently, while the server runs; unchanged tenants are not copied again.
    Backup {
        /// The backup directory (created; if it exists it must hold an earlier backup).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Only this tenant (repeatable).
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<TenantId>,
        /// Copy every tenant, changed or not.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Put tenants back from a backup directory, after checking all of it.
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Only this tenant (repeatable); all the backup holds otherwise.
        #[arg(long = "tenant", value_name = "ID")]
        tenants: Vec<TenantId>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Bring the master registry and every tenant file to this binary's schema.
    Migrate {
        /// Only say which files would be migrated.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Check every file: integrity, schema version, orphans. Exits 1 on any problem.
    Check {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Every tenant: id, name, file, size, users, WhatsApp state, last activity.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write one tenant (database, registry row and users, WhatsApp session) to an archive.
    Export {
        id: TenantId,
        /// The archive to write (`.tar.zst`); must not exist yet.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Add a tenant from an archive made by `aezen tenant export`.
    Import {
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a tenant and everything of it.
    Delete {
        id: TenantId,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// VACUUM a tenant's file (its ids, cursors and list order are kept).
    Compact {
        id: TenantId,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where the data lives (the same variables as the server's).
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    #[arg(long, env = "AEZEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "AEZEN_SESSIONS_DIR", default_value = "./sessions")]
    pub sessions_dir: PathBuf,
}

/// An operations command, ready to run: what to ask, where, and how to print the answer.
pub struct Operation {
    pub request: Request,
    pub data: DataArgs,
    pub json: bool,
}

impl Command {
    /// The operation this command asks for; `None` for `serve`. Asks for confirmation of a
    /// delete on a terminal (refuses one without `--yes` elsewhere).
    pub fn operation(self) -> anyhow::Result<Option<Operation>> {
        let abs = |p: PathBuf| -> anyhow::Result<PathBuf> {
            Ok(if p.is_absolute() {
                p
            } else {
                std::env::current_dir()?.join(p)
            })
        };
        let (request, data, json) = match self {
            Self::Serve(_) => return Ok(None),
            Self::Backup {
                out,
                tenants,
                full,
                data,
            } => (
                Request::Backup {
                    out: abs(out)?,
                    tenants,
                    full,
                },
                data,
                false,
            ),
            Self::Restore {
                from,
                tenants,
                data,
            } => (
                Request::Restore {
                    from: abs(from)?,
                    tenants,
                },
                data,
                false,
            ),
            Self::Migrate { dry_run, data } => (Request::Migrate { dry_run }, data, false),
            Self::Check { json, data } => (Request::Check, data, json),
            Self::Tenant(TenantCommand::List { json, data }) => (Request::List, data, json),
            Self::Tenant(TenantCommand::Export { id, out, data }) => (
                Request::Export {
                    tenant: id,
                    out: abs(out)?,
                },
                data,
                false,
            ),
            Self::Tenant(TenantCommand::Import { file, data }) => {
                (Request::Import { file: abs(file)? }, data, false)
            }
            Self::Tenant(TenantCommand::Delete { id, yes, data }) => {
                if !yes {
                    confirm_delete(id)?;
                }
                (Request::Delete { tenant: id }, data, false)
            }
            Self::Tenant(TenantCommand::Compact { id, data }) => {
                (Request::Compact { tenant: id }, data, false)
            }
        };
        Ok(Some(Operation {
            request,
            data,
            json,
        }))
    }
}

fn confirm_delete(id: TenantId) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to delete tenant {id} without confirmation: pass --yes");
    }
    eprint!(
        "Delete tenant {id} and everything of it (its file, users, WhatsApp session)? Type the tenant id to confirm: "
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != id.to_string() {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}

impl Operation {
    /// Runs it through the server holding the data dir, or on the files when none does;
    /// prints the outcome and returns whether it was fine.
    pub fn run(self) -> anyhow::Result<bool> {
        let bar = ProgressBar::new();
        let outcome = match DataDirLock::acquire(&self.data.data_dir) {
            Err(DataDirLockError::Busy { .. }) => {
                control::call(&self.data.data_dir, &self.request, |note| bar.note(note))?
            }
            Err(e) => return Err(e.into()),
            Ok(lock) => {
                let progress: Progress = {
                    let bar = bar.clone();
                    Arc::new(move |note| bar.note(note))
                };
                let outcome = offline(&self.data, self.request, &progress);
                drop(lock);
                outcome?
            }
        };
        bar.finish();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&outcome.report)?);
        } else {
            println!("{}", outcome.text);
        }
        Ok(outcome.ok)
    }
}

/// The operations on the files themselves (no server holds the data dir; we hold its lock).
fn offline(data: &DataArgs, request: Request, progress: &Progress) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let master_path = data.data_dir.join("master.db");
        // Commands that read existing data refuse a directory with none (a wrong path);
        // the others may start from an empty one (a restore into a new box).
        let reads_data = matches!(
            request,
            Request::Backup { .. }
                | Request::Export { .. }
                | Request::Delete { .. }
                | Request::Compact { .. }
        );
        if reads_data && !master_path.exists() {
            bail!(
                "{} holds no AEZEN data (no master.db); pass --data-dir or set AEZEN_DATA_DIR",
                data.data_dir.display()
            );
        }
        let tenants_dir = data.data_dir.join("tenants");
        std::fs::create_dir_all(&tenants_dir)
            .with_context(|| format!("cannot create {}", tenants_dir.display()))?;
        let master = tenancy::open_master(&master_path)?;
        let tenants = TenantPools::new(
            master.clone(),
            tenants_dir,
            &PoolSettings {
                capacity: 16,
                idle: Duration::from_secs(60),
                connections_per_tenant: 2,
                file_lock: FileLock::Exclusive,
            },
            Metrics::new(),
        );
        let ops = Operations::new(
            master,
            tenants.clone(),
            data.data_dir.clone(),
            data.sessions_dir.clone(),
            None,
        );
        let outcome = ops.execute(request, progress).await;
        tenants.clear().await;
        outcome
    })
}

/// A progress bar on a terminal (stderr), plain lines elsewhere.
#[derive(Clone)]
struct ProgressBar(indicatif::ProgressBar);

impl ProgressBar {
    fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tenants ({elapsed}, about {eta} left)",
        ) {
            bar.set_style(style);
        }
        Self(bar)
    }

    fn note(&self, note: Note) {
        match note {
            Note::Line(line) => self.0.suspend(|| eprintln!("{line}")),
            Note::Count { done, total } => {
                self.0.set_length(total);
                self.0.set_position(done);
            }
        }
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
