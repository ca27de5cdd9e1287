//! A tenant's archive: everything of one tenant in one file, to move it to another AEZEN box
//! (`aezen tenant export` / `import`) or to hand it to its owner (`GET /api/tenant/export`).
//!
//! The archive is a tar stream compressed with zstd (`.tar.zst`). Tar because its entries are
//! written and read one after another: an export streams straight to a socket without seeking
//! back, an import checks each entry as it arrives, and neither holds the archive in memory
//! (a zip keeps its directory at the end). zstd because it compresses SQLite pages well at
//! hundreds of MB/s. Entries, in order:
//! 1. `aezen-tenant.json` — the format, the tenant's registry row, its users (password hashes
//!    included, so the same logins work on the new box), the database's size, SHA-256 and
//!    schema version, and each session file's size and SHA-256;
//! 2. `tenant.db` — a consistent copy (SQLite's online backup API);
//! 3. `sessions/…` — the WhatsApp session store, so the linked phone stays linked.
//!
//! An import refuses, before writing anything, an archive of another format or of a newer
//! schema, a tenant id or a user email that the target already has (naming them), and any
//! entry that is not one of these; it checks every checksum and the database's integrity on
//! the staged copies, then renames them into place and writes the registry in one
//! transaction. Whatever fails, the staged files are removed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::backup::{copy_session_folder, inside};
use super::files::{self, Registered, put_registered};
use super::sqlite;
use super::{Operations, Outcome, remove_if_present};
use crate::auth::users::{self, Role, User, UserRecord};
use crate::error::ApiError;
use crate::ids::{TenantId, UserId};
use crate::tenancy::registry::DbName;
use crate::tenancy::tenant_schema;

const HEADER: &str = "aezen-tenant.json";
const DATABASE: &str = "tenant.db";
const FORMAT: u32 = 1;
/// zstd's level: its default, fast and still a good ratio on SQLite pages.
const LEVEL: i32 = 3;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: u32,
    aezen: String,
    exported_at: DateTime<Utc>,
    tenant: ArchivedTenant,
    users: Vec<ArchivedUser>,
    database: ArchivedFile,
    session: Vec<ArchivedFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchivedTenant {
    id: TenantId,
    name: String,
    db_name: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchivedUser {
    id: UserId,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    password_hash: String,
    token_version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchivedFile {
    path: String,
    size: u64,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_version: Option<i64>,
}

/// Temporary files removed when dropped (unless kept).
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for path in &self.0 {
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Operations {
    /// Writes `tenant`'s archive to `out` (through a staging file renamed into place).
    pub(super) async fn export_to_file(
        &self,
        tenant: TenantId,
        out: &Path,
    ) -> anyhow::Result<Outcome> {
        if out.exists() {
            bail!("{} already exists; choose a new file name", out.display());
        }
        let name = out
            .file_name()
            .context("the output must be a file name")?
            .to_string_lossy()
            .into_owned();
        let staging = out.with_file_name(format!(".{name}.partial"));
        let file = std::fs::File::create(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let guard = Scratch(vec![staging.clone()]);
        let size = self.export(tenant, std::io::BufWriter::new(file)).await?;
        sqlite::sync(&staging)?;
        std::fs::rename(&staging, out)?;
        std::mem::forget(guard);
        Ok(Outcome {
            report: json!({"tenant": tenant, "out": out, "sizeBytes": size}),
            text: format!(
                "exported tenant {tenant} to {} ({})",
                out.display(),
                files::human_bytes(size)
            ),
            ok: true,
        })
    }

    /// Writes `tenant`'s archive into `sink`; returns the bytes written. The database and the
    /// session store are first copied consistently to scratch files (SQLite's backup API
    /// writes a database file, not a stream), then streamed in 64 KiB pieces.
    pub async fn export<W: Write + Send + 'static>(
        &self,
        tenant: TenantId,
        sink: W,
    ) -> anyhow::Result<u64> {
        let registered = self.registered(tenant).await?;
        let scratch_dir = self.scratch()?;
        let stem = format!("export-{}", uuid::Uuid::new_v4());
        let db_copy = scratch_dir.join(format!("{stem}.db"));
        let session_copy = scratch_dir.join(format!("{stem}.sessions"));
        let scratch = Scratch(vec![db_copy.clone(), session_copy.clone()]);
        let to = db_copy.clone();
        let probe = self
            .tenants()
            .visit(tenant, move |conn| {
                sqlite::copy_database(conn, &to)
                    .map_err(|e| ApiError::internal("tenant export copy", e))
            })
            .await
            .map_err(|e| anyhow::anyhow!("tenant {tenant}: {}", e.message()))?;
        let users = self
            .master()
            .run(move |conn| Ok(users::records(conn, tenant)?))
            .await?;
        let session_folder = self.session_folder(tenant);
        tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let _scratch = scratch;
            let (sha256, size) = sqlite::checksum(&db_copy)?;
            let session = if session_folder.exists() {
                copy_session_folder(&session_folder, &session_copy)?
            } else {
                Vec::new()
            };
            let header = Header {
                format: FORMAT,
                aezen: env!("CARGO_PKG_VERSION").to_owned(),
                exported_at: Utc::now(),
                tenant: ArchivedTenant {
                    id: registered.id,
                    name: registered.name.clone(),
                    db_name: registered.db_name.as_str().to_owned(),
                    created_at: registered.created_at,
                },
                users: users.iter().map(archived_user).collect(),
                database: ArchivedFile {
                    path: DATABASE.to_owned(),
                    size,
                    sha256,
                    schema_version: Some(probe.schema_version),
                },
                session: session
                    .iter()
                    .map(|(rel, sha, size)| ArchivedFile {
                        path: format!("sessions/{rel}"),
                        size: *size,
                        sha256: sha.clone(),
                        schema_version: None,
                    })
                    .collect(),
            };
            let counted = Counted {
                inner: sink,
                written: 0,
            };
            let encoder = zstd::Encoder::new(counted, LEVEL)?;
            let mut tar = tar::Builder::new(encoder);
            let json = serde_json::to_vec_pretty(&header)?;
            append(&mut tar, HEADER, json.len() as u64, &json[..])?;
            append_file(&mut tar, DATABASE, &db_copy)?;
            for (rel, _, _) in &session {
                append_file(
                    &mut tar,
                    &format!("sessions/{rel}"),
                    &session_copy.join(rel),
                )?;
            }
            let encoder = tar.into_inner()?;
            let mut counted = encoder.finish()?;
            counted.flush()?;
            Ok(counted.written)
        })
        .await?
    }

    /// Reads an archive and adds its tenant to this data dir (see the module doc).
    pub(super) async fn import(&self, file: &Path) -> anyhow::Result<Outcome> {
        let input =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let tenants_dir = self.inner.data_dir.join("tenants");
        let sessions_dir = self.inner.sessions_dir.clone();
        std::fs::create_dir_all(&tenants_dir)?;
        std::fs::create_dir_all(&sessions_dir)?;
        let master = self.master().clone();
        let shown = file.display().to_string();
        let ops = self.clone();
        let (header, db_name, staged_db, staged_session, scratch) =
            tokio::task::spawn_blocking(move || {
                ops.stage_import(input, &shown, &master, &tenants_dir, &sessions_dir)
            })
            .await??;
        let tenant = header.tenant.id;
        let target_db = self.tenant_path(&db_name);
        let target_session = self.session_folder(tenant);
        // Commit: the files into place, then the registry in one transaction.
        for stale in super::companions(&target_db) {
            remove_if_present(&stale)?;
        }
        std::fs::rename(&staged_db, &target_db)?;
        if !header.session.is_empty() {
            std::fs::rename(&staged_session, &target_session)?;
        }
        let registered = Registered {
            id: tenant,
            name: header.tenant.name.clone(),
            db_name: db_name.clone(),
            created_at: header.tenant.created_at,
            provisioned: true,
            backed_up_at: None,
            users: header.users.len() as i64,
        };
        let records: Vec<UserRecord> = header
            .users
            .iter()
            .map(|u| user_record(u, tenant))
            .collect();
        let written = self
            .master()
            .write(move |tx| {
                if crate::tenancy::registry::find(tx, tenant)?.is_some() {
                    return Err(ApiError::conflict(
                        "tenant_exists",
                        format!("tenant {tenant} already exists here"),
                    ));
                }
                let emails: Vec<String> = records.iter().map(|u| u.user.email.clone()).collect();
                let taken = files::emails_taken(tx, tenant, &emails)?;
                if !taken.is_empty() {
                    return Err(ApiError::conflict(
                        "email_taken",
                        format!(
                            "these emails already belong to users here: {}",
                            taken.join(", ")
                        ),
                    ));
                }
                put_registered(tx, &registered, &records)?;
                Ok(())
            })
            .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&target_db);
            let _ = std::fs::remove_dir_all(&target_session);
            bail!("{}", e.message());
        }
        drop(scratch);
        if let Some(live) = self.live() {
            live.sessions.restart(tenant).await;
        }
        tracing::info!(tenant = %tenant, "tenant imported");
        Ok(Outcome {
            report: json!({
                "tenant": tenant, "name": header.tenant.name, "users": header.users.len(),
                "file": target_db, "session": !header.session.is_empty(),
            }),
            text: format!(
                "imported tenant {tenant} ({}): {} user(s), {}{}",
                header.tenant.name,
                header.users.len(),
                target_db.display(),
                if header.session.is_empty() {
                    ""
                } else {
                    ", WhatsApp session"
                }
            ),
            ok: true,
        })
    }

    /// Reads and checks the whole archive into staging files next to their destinations.
    #[allow(clippy::type_complexity)]
    fn stage_import(
        &self,
        input: std::fs::File,
        shown: &str,
        master: &crate::db::Db,
        tenants_dir: &Path,
        sessions_dir: &Path,
    ) -> anyhow::Result<(Header, DbName, PathBuf, PathBuf, Scratch)> {
        let corrupt = |e: std::io::Error| {
            anyhow::anyhow!("{shown} is truncated or is not an AEZEN tenant archive ({e})")
        };
        let decoder = zstd::Decoder::new(std::io::BufReader::new(input)).map_err(corrupt)?;
        let mut archive = tar::Archive::new(decoder);
        let mut entries = archive.entries().map_err(corrupt)?;
        let mut first = entries
            .next()
            .context("the archive is empty")?
            .map_err(corrupt)?;
        if first.path().map_err(corrupt)?.to_string_lossy() != HEADER {
            bail!("{shown} is not an AEZEN tenant archive: it does not start with {HEADER}");
        }
        let mut text = String::new();
        (&mut first)
            .take(1024 * 1024)
            .read_to_string(&mut text)
            .map_err(corrupt)?;
        let header: Header = serde_json::from_str(&text)
            .with_context(|| format!("{shown}: {HEADER} is not valid"))?;
        if header.format != FORMAT {
            bail!(
                "{shown} has archive format {}; this binary reads format {FORMAT}",
                header.format
            );
        }
        let latest = tenant_schema().latest();
        let version = header.database.schema_version.unwrap_or(i64::MAX);
        if version > latest {
            bail!(
                "{shown} holds a tenant of schema version {version}, newer than this binary's {latest}; import it with a newer AEZEN"
            );
        }
        let tenant = header.tenant.id;
        // Collisions, named, before anything is written.
        let emails: Vec<String> = header.users.iter().map(|u| u.email.clone()).collect();
        let (exists, taken, db_taken) = master
            .run_blocking(|conn| {
                let exists = crate::tenancy::registry::find(conn, tenant)?.is_some();
                let taken = files::emails_taken(conn, tenant, &emails)?;
                let db_taken: bool = conn.query_row(
                    "SELECT count(*) > 0 FROM tenant WHERE db_name = ?1",
                    [&header.tenant.db_name],
                    |r| r.get(0),
                )?;
                Ok((exists, taken, db_taken))
            })
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        if exists {
            bail!(
                "tenant {tenant} ({}) already exists on this server",
                header.tenant.name
            );
        }
        if !taken.is_empty() {
            bail!(
                "these emails already belong to users on this server: {}",
                taken.join(", ")
            );
        }
        let db_name = match DbName::parse(&header.tenant.db_name) {
            Some(name)
                if !db_taken && !tenants_dir.join(format!("{}.db", name.as_str())).exists() =>
            {
                name
            }
            _ => DbName::generate(&header.tenant.name),
        };
        let staged_db = tenants_dir.join(format!(".{}.db.import", db_name.as_str()));
        let staged_session = sessions_dir.join(format!(".{tenant}.import"));
        let scratch = Scratch(vec![staged_db.clone(), staged_session.clone()]);
        let _ = std::fs::remove_dir_all(&staged_session);

        let mut seen_db = false;
        let mut seen_session = Vec::new();
        for entry in entries {
            let mut entry = entry.map_err(corrupt)?;
            let path = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            let (expected, dst) = if path == DATABASE {
                seen_db = true;
                (&header.database, staged_db.clone())
            } else if let Some(rel) = path.strip_prefix("sessions/") {
                let listed = header
                    .session
                    .iter()
                    .find(|f| f.path == path)
                    .with_context(|| {
                        format!("{shown}: the entry {path:?} is not listed in {HEADER}")
                    })?;
                seen_session.push(path.clone());
                (listed, inside(&staged_session, rel)?)
            } else {
                bail!("{shown}: unexpected entry {path:?}");
            };
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = std::fs::File::create(&dst)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = entry.read(&mut buf).map_err(corrupt)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as u64;
            }
            out.sync_all()?;
            if size != expected.size || hex::encode(hasher.finalize()) != expected.sha256 {
                bail!(
                    "{shown}: {path} does not match its checksum in {HEADER} (the archive is damaged)"
                );
            }
        }
        if !seen_db {
            bail!("{shown} is truncated: it has no {DATABASE}");
        }
        if seen_session.len() != header.session.len() {
            bail!(
                "{shown} is truncated: {} of {} session files are in it",
                seen_session.len(),
                header.session.len()
            );
        }
        let probe = sqlite::verify_copy(&staged_db)?;
        if probe.owner.as_deref() != Some(&tenant.to_string()) {
            bail!("{shown}: its database does not belong to tenant {tenant}");
        }
        Ok((header, db_name, staged_db, staged_session, scratch))
    }
}

fn archived_user(record: &UserRecord) -> ArchivedUser {
    ArchivedUser {
        id: record.user.id,
        email: record.user.email.clone(),
        name: record.user.name.clone(),
        role: record.user.role,
        created_at: record.user.created_at,
        password_hash: record.password_hash.clone(),
        token_version: record.token_version,
    }
}

fn user_record(user: &ArchivedUser, tenant: TenantId) -> UserRecord {
    UserRecord {
        user: User {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            tenant_id: tenant,
            created_at: user.created_at,
        },
        password_hash: user.password_hash.clone(),
        token_version: user.token_version,
    }
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(Utc::now().timestamp()).unwrap_or(0));
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    file: &Path,
) -> std::io::Result<()> {
    let f = std::fs::File::open(file)?;
    let size = f.metadata()?.len();
    append(
        tar,
        path,
        size,
        std::io::BufReader::with_capacity(64 * 1024, f),
    )
}

/// A writer that counts what passes through it.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
