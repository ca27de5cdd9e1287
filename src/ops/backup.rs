//! `aezen backup` and `aezen restore`.
//!
//! A backup directory holds `manifest.json`, `master.db`, `tenants/<db_name>.db` and
//! `sessions/<tenant-id>/…`: each database a consistent copy taken with SQLite's online backup
//! API while the server runs and writes, checked with `PRAGMA integrity_check`, and listed in
//! the manifest with its size, SHA-256 and schema version.
//!
//! **Incremental**: a tenant whose file has the same schema version and the same last event
//! `seq` as in the directory's previous manifest (and whose copy is still there, at the size
//! the manifest gives) is not copied again. Every change to a tenant's data writes an event in the same
//! transaction (DESIGN.md's durable event log), and `seq` is never reused, so an equal `seq`
//! means equal data. The master registry (small) and the session stores (written by WhatsApp
//! clients outside the event log) are copied every time. `--full` copies every tenant.
//!
//! **Restore** checks the whole backup first — the manifest, every selected file's checksum,
//! its integrity, its schema (not newer than this binary) and owner, and that no user email of
//! a restored tenant belongs to another tenant now — and only then puts each tenant back: its
//! file through a staging copy renamed into place (stale `-wal`/`-shm` removed first), its
//! registry row and users in one transaction, its session folder. A tenant is restored as a
//! whole; tenants of the data dir that the backup does not name are left alone.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::files::{self, Registered, put_registered};
use super::sqlite::{self, Probe};
use super::{Note, Operations, Outcome, Progress, remove_if_present};
use crate::auth::users::{self, UserRecord};
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::tenancy::registry::DbName;
use crate::tenancy::tenant_schema;

pub const MANIFEST: &str = "manifest.json";
/// The manifest format this binary writes and reads.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    /// The AEZEN version that wrote it.
    pub aezen: String,
    pub created_at: DateTime<Utc>,
    pub master: FileEntry,
    pub tenants: Vec<TenantEntry>,
}

/// One file of a backup, by its path inside the backup directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantEntry {
    pub id: TenantId,
    pub name: String,
    pub db_name: String,
    pub database: FileEntry,
    pub last_event_seq: i64,
    pub copied_at: DateTime<Utc>,
    /// The files of its WhatsApp session store (none if it has no session).
    pub session: Vec<FileEntry>,
}

impl Manifest {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not an AEZEN backup: it has no readable {MANIFEST}",
                dir.display()
            )
        })?;
        let manifest: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid AEZEN backup manifest", path.display()))?;
        if manifest.format != FORMAT {
            bail!(
                "{} has format {}; this binary reads format {FORMAT}",
                path.display(),
                manifest.format
            );
        }
        Ok(manifest)
    }
}

/// `rel` as a path inside `dir`, refusing anything that could leave it (`..`, an absolute
/// path, a drive prefix).
pub fn inside(dir: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(rel);
    let safe = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !safe {
        bail!("refusing the path {rel:?}: it points outside the backup");
    }
    Ok(dir.join(path))
}

/// Checks a listed file: present, the size and checksum the manifest gives.
fn verify_entry(dir: &Path, entry: &FileEntry) -> anyhow::Result<PathBuf> {
    let path = inside(dir, &entry.path)?;
    let (sha, size) = sqlite::checksum(&path)?;
    if size != entry.size || sha != entry.sha256 {
        bail!(
            "{} does not match the manifest (size {size}, expected {}; checksum {}, expected {})",
            path.display(),
            entry.size,
            &sha[..12],
            &entry.sha256[..entry.sha256.len().min(12)]
        );
    }
    Ok(path)
}

impl Operations {
    pub(super) async fn backup(
        &self,
        out: &Path,
        only: &[TenantId],
        full: bool,
        progress: &Progress,
    ) -> anyhow::Result<Outcome> {
        let started = std::time::Instant::now();
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let previous = if out.join(MANIFEST).exists() {
            Some(Manifest::read(out)?)
        } else {
            let empty = std::fs::read_dir(out)?.next().is_none();
            if !empty {
                bail!(
                    "{} is not empty and holds no {MANIFEST}: refusing to write a backup into it",
                    out.display()
                );
            }
            None
        };
        let mut tenants = files::all_registered(self.master()).await?;
        for id in only {
            if !tenants.iter().any(|t| t.id == *id) {
                bail!("no tenant with id {id} in this data directory");
            }
        }
        if !only.is_empty() {
            tenants.retain(|t| only.contains(&t.id));
        }
        std::fs::create_dir_all(out.join("tenants"))?;
        std::fs::create_dir_all(out.join("sessions"))?;

        // The master registry, every time.
        let master = {
            let staging = out.join(".master.db.partial");
            let to = staging.clone();
            self.master()
                .run(move |conn| {
                    sqlite::copy_database(conn, &to)
                        .map_err(|e| ApiError::internal("master backup", e))
                })
                .await?;
            let out = out.to_owned();
            blocking(move || finish_copy(&out, &staging, "master.db")).await?
        };

        let before: HashMap<TenantId, TenantEntry> = previous
            .map(|m| m.tenants.into_iter().map(|t| (t.id, t)).collect())
            .unwrap_or_default();
        let mut entries = Vec::with_capacity(tenants.len());
        let (mut copied, mut unchanged) = (0u64, 0u64);
        let total = tenants.len() as u64;
        let mut backed_up = Vec::with_capacity(tenants.len());
        for (i, tenant) in tenants.iter().enumerate() {
            let path = self.tenant_path(&tenant.db_name);
            if !tenant.provisioned && !path.exists() {
                continue;
            }
            let previous = before.get(&tenant.id).filter(|_| !full);
            let entry = self
                .backup_tenant(out, tenant, previous)
                .await
                .with_context(|| format!("backing up tenant {}", tenant.id))?;
            if previous.is_some_and(|p| p.copied_at == entry.copied_at) {
                unchanged += 1;
            } else {
                copied += 1;
            }
            backed_up.push(tenant.id);
            entries.push(entry);
            progress(Note::Count {
                done: i as u64 + 1,
                total,
            });
        }
        // Tenants backed up earlier and not named this time stay in the manifest.
        let named: std::collections::HashSet<TenantId> = entries.iter().map(|e| e.id).collect();
        let kept: Vec<TenantEntry> = before
            .into_values()
            .filter(|t| !named.contains(&t.id) && !only.is_empty())
            .collect();
        entries.extend(kept);
        entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let manifest = Manifest {
            format: FORMAT,
            aezen: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: Utc::now(),
            master,
            tenants: entries,
        };
        let staging = out.join(".manifest.json.partial");
        std::fs::write(&staging, serde_json::to_vec_pretty(&manifest)?)?;
        sqlite::sync(&staging)?;
        std::fs::rename(&staging, out.join(MANIFEST))?;
        sqlite::sync(out)?;

        let now = Utc::now();
        self.master()
            .write(move |tx| {
                let mut stmt = tx.prepare("UPDATE tenant SET backed_up_at = ?2 WHERE id = ?1")?;
                for id in &backed_up {
                    stmt.execute(rusqlite::params![id, now])?;
                }
                Ok(())
            })
            .await?;
        let secs = started.elapsed().as_secs_f64();
        Ok(Outcome {
            report: json!({
                "out": out, "tenants": copied + unchanged, "copied": copied, "unchanged": unchanged,
                "seconds": secs, "manifest": out.join(MANIFEST),
            }),
            text: format!(
                "backed up the master registry and {} tenant(s) into {} in {secs:.1} s: {copied} copied, {unchanged} unchanged since the last backup",
                copied + unchanged,
                out.display()
            ),
            ok: true,
        })
    }

    /// One tenant's file and session store into `out`; reuses `previous` when unchanged.
    async fn backup_tenant(
        &self,
        out: &Path,
        tenant: &Registered,
        previous: Option<&TenantEntry>,
    ) -> anyhow::Result<TenantEntry> {
        let file = format!("tenants/{}.db", tenant.db_name.as_str());
        let staging = out.join(format!("tenants/.{}.db.partial", tenant.db_name.as_str()));
        // Copy only if the data moved on: the probe and the copy run in one read transaction.
        let known = previous
            .filter(|p| {
                p.database.path == file
                    && std::fs::metadata(out.join(&file)).is_ok_and(|m| m.len() == p.database.size)
            })
            .map(|p| (p.database.schema_version, p.last_event_seq));
        let to = staging.clone();
        let copy = self
            .tenants()
            .visit(tenant.id, move |conn| {
                let probe =
                    sqlite::probe(conn).map_err(|e| ApiError::internal("tenant probe", e))?;
                if known == Some((Some(probe.schema_version), probe.last_event_seq)) {
                    return Ok((probe, false));
                }
                let probe = sqlite::copy_database(conn, &to)
                    .map_err(|e| ApiError::internal("tenant backup", e))?;
                Ok((probe, true))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let (probe, fresh): (Probe, bool) = copy;
        let (database, copied_at) = match previous {
            Some(p) if !fresh => (p.database.clone(), p.copied_at),
            _ => {
                let (dir, rel) = (out.to_owned(), file.clone());
                let entry = blocking(move || finish_copy(&dir, &staging, &rel)).await?;
                (entry, Utc::now())
            }
        };
        let (from, dir, id) = (self.session_folder(tenant.id), out.to_owned(), tenant.id);
        let session = blocking(move || backup_session(&from, &dir, id)).await?;
        Ok(TenantEntry {
            id: tenant.id,
            name: tenant.name.clone(),
            db_name: tenant.db_name.as_str().to_owned(),
            database,
            last_event_seq: probe.last_event_seq,
            copied_at,
            session,
        })
    }

    pub(super) async fn restore(
        &self,
        from: &Path,
        only: &[TenantId],
        progress: &Progress,
    ) -> anyhow::Result<Outcome> {
        let manifest = Manifest::read(from)?;
        let mut selected: Vec<&TenantEntry> = manifest.tenants.iter().collect();
        for id in only {
            if !selected.iter().any(|t| t.id == *id) {
                bail!(
                    "the backup in {} holds no tenant with id {id}",
                    from.display()
                );
            }
        }
        if !only.is_empty() {
            selected.retain(|t| only.contains(&t.id));
        }
        // Everything is checked before anything is touched.
        let master_copy = verify_entry(from, &manifest.master)?;
        sqlite::verify_copy(&master_copy)?;
        let backup_master = rusqlite::Connection::open_with_flags(
            &master_copy,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let latest = tenant_schema().latest();
        let mut plan = Vec::with_capacity(selected.len());
        for entry in &selected {
            let file = verify_entry(from, &entry.database)?;
            let probe = sqlite::verify_copy(&file)?;
            if probe.schema_version > latest {
                bail!(
                    "{}: schema version {} is newer than this binary's {latest}; restore it with a newer AEZEN",
                    file.display(),
                    probe.schema_version
                );
            }
            if probe.owner.as_deref() != Some(&entry.id.to_string()) {
                bail!(
                    "{}: the file does not belong to tenant {}",
                    file.display(),
                    entry.id
                );
            }
            for session_file in &entry.session {
                verify_entry(from, session_file)?;
            }
            let db_name = DbName::parse(&entry.db_name).with_context(|| {
                format!("the manifest's file name {:?} is not valid", entry.db_name)
            })?;
            let row = backup_master
                .query_row(
                    "SELECT created_at FROM tenant WHERE id = ?1",
                    [entry.id],
                    |r| r.get::<_, DateTime<Utc>>(0),
                )
                .with_context(|| {
                    format!("the backup's registry has no row for tenant {}", entry.id)
                })?;
            let users = users::records(&backup_master, entry.id)?;
            plan.push(Planned {
                registered: Registered {
                    id: entry.id,
                    name: entry.name.clone(),
                    db_name,
                    created_at: row,
                    provisioned: true,
                    backed_up_at: None,
                    users: users.len() as i64,
                },
                file,
                users,
                session: entry.session.clone(),
            });
        }
        for planned in &plan {
            let (tenant, emails) = (
                planned.registered.id,
                planned
                    .users
                    .iter()
                    .map(|u| u.user.email.clone())
                    .collect::<Vec<_>>(),
            );
            let taken = self
                .master()
                .run(move |conn| Ok(files::emails_taken(conn, tenant, &emails)?))
                .await?;
            if !taken.is_empty() {
                bail!(
                    "tenant {tenant}: these emails now belong to users of another tenant: {}",
                    taken.join(", ")
                );
            }
        }
        let total = plan.len() as u64;
        for (i, planned) in plan.iter().enumerate() {
            self.put_back(from, planned)
                .await
                .with_context(|| format!("restoring tenant {}", planned.registered.id))?;
            progress(Note::Count {
                done: i as u64 + 1,
                total,
            });
        }
        let ids: Vec<TenantId> = plan.iter().map(|p| p.registered.id).collect();
        Ok(Outcome {
            report: json!({"from": from, "restored": ids, "backupCreatedAt": manifest.created_at}),
            text: format!(
                "restored {} tenant(s) from the backup of {} in {}",
                ids.len(),
                manifest.created_at.to_rfc3339(),
                from.display()
            ),
            ok: true,
        })
    }

    /// Puts one checked tenant back: file, registry row and users, session folder.
    async fn put_back(&self, from: &Path, planned: &Planned) -> anyhow::Result<()> {
        let tenant = planned.registered.id;
        if let Some(live) = self.live() {
            live.sessions.stop(tenant).await;
        }
        let hold = self
            .tenants()
            .hold(tenant)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let target = self.tenant_path(&planned.registered.db_name);
        let staging = target.with_file_name(format!(
            ".{}.db.restore",
            planned.registered.db_name.as_str()
        ));
        std::fs::copy(&planned.file, &staging)
            .with_context(|| format!("cannot write {}", staging.display()))?;
        sqlite::sync(&staging)?;
        for stale in super::companions(&target) {
            remove_if_present(&stale)?;
        }
        std::fs::rename(&staging, &target)?;

        let session_target = self.session_folder(tenant);
        let session_staging = self.inner.sessions_dir.join(format!(".{tenant}.restore"));
        files::remove_folder(&session_staging)?;
        for file in &planned.session {
            let src = inside(from, &file.path)?;
            let rel = file
                .path
                .strip_prefix(&format!("sessions/{tenant}/"))
                .context("a session file outside its tenant's folder")?;
            let dst = inside(&session_staging, rel)?;
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&src, &dst)?;
        }
        files::remove_folder(&session_target)?;
        if !planned.session.is_empty() {
            std::fs::create_dir_all(&self.inner.sessions_dir)?;
            std::fs::rename(&session_staging, &session_target)?;
        }

        let (registered, users) = (planned.registered.clone(), planned.users.clone());
        let forget: Vec<_> = users.iter().map(|u| u.user.id).collect();
        let before = self
            .master()
            .write(move |tx| {
                let before: Vec<_> = users::records(tx, registered.id)?
                    .into_iter()
                    .map(|u| u.user.id)
                    .collect();
                put_registered(tx, &registered, &users)?;
                Ok(before)
            })
            .await?;
        drop(hold);
        if let Some(live) = self.live() {
            for user in before.iter().chain(&forget) {
                live.auth.forget(*user);
            }
            live.sessions.restart(tenant).await;
        }
        tracing::info!(tenant = %tenant, "tenant restored from backup");
        Ok(())
    }
}

/// Runs blocking file work (copies, integrity checks, checksums, fsyncs) off the async
/// workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// Copies `from` (a tenant's `sessions/<id>/`) into `out/sessions/<id>/`, replacing the
/// earlier copy: SQLite stores through the backup API, anything else as it is;
/// `-wal`/`-shm`/`-journal` files are never copied (the backup API reads through them).
fn backup_session(from: &Path, out: &Path, tenant: TenantId) -> anyhow::Result<Vec<FileEntry>> {
    let target = out.join("sessions").join(tenant.to_string());
    if !from.exists() {
        files::remove_folder(&target)?;
        return Ok(Vec::new());
    }
    let staging = out.join("sessions").join(format!(".{tenant}.partial"));
    files::remove_folder(&staging)?;
    let copied = copy_session_folder(from, &staging)?;
    files::remove_folder(&target)?;
    std::fs::rename(&staging, &target)?;
    Ok(copied
        .into_iter()
        .map(|(rel, sha, size)| FileEntry {
            path: format!("sessions/{tenant}/{rel}"),
            size,
            sha256: sha,
            schema_version: None,
        })
        .collect())
}

struct Planned {
    registered: Registered,
    file: PathBuf,
    users: Vec<UserRecord>,
    session: Vec<FileEntry>,
}

/// Checks a fresh copy, renames it from `staging` to `out/rel`, and describes it.
fn finish_copy(out: &Path, staging: &Path, rel: &str) -> anyhow::Result<FileEntry> {
    let probe = sqlite::verify_copy(staging)?;
    sqlite::sync(staging)?;
    let (sha256, size) = sqlite::checksum(staging)?;
    std::fs::rename(staging, out.join(rel))?;
    Ok(FileEntry {
        path: rel.to_owned(),
        size,
        sha256,
        schema_version: Some(probe.schema_version),
    })
}

/// Copies a session folder (recursively) into `to`: SQLite files with the backup API, others
/// byte for byte; returns each copied file's path relative to `to`, checksum and size.
pub fn copy_session_folder(from: &Path, to: &Path) -> anyhow::Result<Vec<(String, String, u64)>> {
    let mut copied = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        std::fs::create_dir_all(to.join(&rel))?;
        for entry in std::fs::read_dir(from.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel_path = rel.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(rel_path);
                continue;
            }
            if !kind.is_file()
                || name.ends_with("-wal")
                || name.ends_with("-shm")
                || name.ends_with("-journal")
            {
                continue;
            }
            let (src, dst) = (from.join(&rel_path), to.join(&rel_path));
            if name.ends_with(".db") {
                let conn = rusqlite::Connection::open(&src)
                    .with_context(|| format!("cannot open {}", src.display()))?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                sqlite::copy_database(&conn, &dst)?;
            } else {
                std::fs::copy(&src, &dst)?;
            }
            let (sha, size) = sqlite::checksum(&dst)?;
            copied.push((rel_path.to_string_lossy().into_owned(), sha, size));
        }
    }
    copied.sort();
    Ok(copied)
}
