//! `tenant list`, `check`, `migrate`, `tenant delete` and `tenant compact`, and the registry
//! reads the other commands share.

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::sqlite::{self, Probe};
use super::{Note, Operations, Outcome, Progress, remove_if_present};
use crate::auth::users::{self, UserRecord};
use crate::db::{self, Db};
use crate::error::ApiError;
use crate::ids::{TenantId, UserId};
use crate::tenancy::registry::DbName;
use crate::tenancy::tenant_schema;

/// A tenant's registry row, as the operations need it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: TenantId,
    pub name: String,
    pub db_name: DbName,
    pub created_at: DateTime<Utc>,
    pub provisioned: bool,
    pub backed_up_at: Option<DateTime<Utc>>,
    pub users: i64,
}

const REGISTERED: &str =
    "SELECT id, name, db_name, created_at, provisioned_at IS NOT NULL, backed_up_at,
        (SELECT count(*) FROM user WHERE user.tenant_id = tenant.id)
     FROM tenant";

fn registered_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Registered> {
    let db_name: String = row.get(2)?;
    Ok(Registered {
        id: row.get(0)?,
        name: row.get(1)?,
        db_name: DbName::parse(&db_name).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("invalid db_name {db_name:?} in registry").into(),
            )
        })?,
        created_at: row.get(3)?,
        provisioned: row.get(4)?,
        backed_up_at: row.get(5)?,
        users: row.get(6)?,
    })
}

pub async fn registered(master: &Db, tenant: TenantId) -> anyhow::Result<Option<Registered>> {
    Ok(master
        .run(move |conn| {
            Ok(conn
                .query_row(
                    &format!("{REGISTERED} WHERE id = ?1"),
                    [tenant],
                    registered_row,
                )
                .optional()?)
        })
        .await?)
}

pub async fn all_registered(master: &Db) -> anyhow::Result<Vec<Registered>> {
    Ok(master
        .run(|conn| {
            let mut stmt = conn.prepare(&format!("{REGISTERED} ORDER BY created_at, id"))?;
            let rows = stmt
                .query_map([], registered_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await?)
}

/// Writes a tenant's registry row and exactly `users` as its users (replacing any it had),
/// in the caller's transaction: what a restore and an import put back.
pub fn put_registered(
    conn: &Connection,
    tenant: &Registered,
    users: &[UserRecord],
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tenant (id, name, db_name, created_at, provisioned_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, db_name = excluded.db_name,
             provisioned_at = excluded.provisioned_at",
        params![
            tenant.id,
            tenant.name,
            tenant.db_name.as_str(),
            tenant.created_at,
            Utc::now()
        ],
    )?;
    conn.execute("DELETE FROM user WHERE tenant_id = ?1", [tenant.id])?;
    for user in users {
        conn.execute(
            "INSERT INTO user (id, email, password_hash, name, role, tenant_id, token_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                user.user.id,
                user.user.email,
                user.password_hash,
                user.user.name,
                user.user.role.as_str(),
                tenant.id,
                user.token_version,
                user.user.created_at
            ],
        )?;
    }
    Ok(())
}

/// Of `emails`, those that a user of another tenant than `tenant` already has.
pub fn emails_taken(
    conn: &Connection,
    tenant: TenantId,
    emails: &[String],
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT 1 FROM user WHERE email = ?1 AND tenant_id <> ?2")?;
    let mut taken = Vec::new();
    for email in emails {
        if stmt.exists(params![email, tenant])? {
            taken.push(email.clone());
        }
    }
    Ok(taken)
}

impl Operations {
    /// The current probe of a registered tenant's file: on the server's pool when it is open,
    /// else on a connection of its own (which never migrates it). `with_integrity` adds a
    /// full integrity check.
    pub(super) async fn inspect(
        &self,
        tenant: &Registered,
        with_integrity: bool,
    ) -> anyhow::Result<Probe> {
        let look = move |conn: &mut Connection| -> Result<Probe, ApiError> {
            if with_integrity {
                sqlite::integrity(conn).map_err(|e| ApiError::validation(e.to_string()))?;
            }
            sqlite::probe(conn).map_err(|e| ApiError::validation(e.to_string()))
        };
        if let Some(db) = self.tenants().cached(tenant.id) {
            return db
                .run(look)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()));
        }
        let path = self.tenant_path(&tenant.db_name);
        let lock = self.tenants().file_lock();
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                anyhow::bail!("its file {} is missing", path.display());
            }
            let mut conn = db::open_existing(&path, lock)
                .with_context(|| format!("cannot open {}", path.display()))?;
            look(&mut conn).map_err(|e| anyhow::anyhow!("{}", e.message()))
        })
        .await?
    }

    pub(super) async fn list(&self) -> anyhow::Result<Outcome> {
        let tenants = all_registered(self.master()).await?;
        let mut rows = Vec::with_capacity(tenants.len());
        for tenant in &tenants {
            let path = self.tenant_path(&tenant.db_name);
            let size: u64 = std::iter::once(path.clone())
                .chain(super::companions(&path))
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            let whatsapp = match self.live() {
                Some(live) => live.sessions.status(tenant.id).state.as_str().to_owned(),
                None if self.session_folder(tenant.id).exists() => {
                    "linked (server not running)".to_owned()
                }
                None => "not linked".to_owned(),
            };
            let last_activity = if tenant.provisioned && path.exists() {
                self.tenants()
                    .visit(tenant.id, |conn| {
                        Ok(conn.query_row(
                            "SELECT max(activity_at) FROM conversation",
                            [],
                            |r| r.get::<_, Option<i64>>(0),
                        )?)
                    })
                    .await
                    .ok()
                    .flatten()
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
            } else {
                None
            };
            rows.push(json!({
                "id": tenant.id,
                "name": tenant.name,
                "file": path,
                "sizeBytes": size,
                "users": tenant.users,
                "whatsapp": whatsapp,
                "lastActivity": last_activity,
                "lastBackup": tenant.backed_up_at,
            }));
        }
        let mut text = format!(
            "{:<36}  {:<24}  {:>10}  {:>5}  {:<12}  {:<20}  file\n",
            "id", "name", "size", "users", "whatsapp", "last activity"
        );
        for row in &rows {
            let _ = writeln!(
                text,
                "{:<36}  {:<24}  {:>10}  {:>5}  {:<12}  {:<20}  {}",
                row["id"].as_str().unwrap_or_default(),
                truncate(row["name"].as_str().unwrap_or_default(), 24),
                human_bytes(row["sizeBytes"].as_u64().unwrap_or(0)),
                row["users"],
                row["whatsapp"].as_str().unwrap_or_default(),
                row["lastActivity"]
                    .as_str()
                    .map_or_else(|| "—".to_owned(), |t| t.chars().take(19).collect()),
                row["file"].as_str().unwrap_or_default(),
            );
        }
        let _ = write!(text, "{} tenant(s)", rows.len());
        Ok(Outcome {
            report: json!({ "tenants": rows }),
            text,
            ok: true,
        })
    }

    pub(super) async fn check(&self) -> anyhow::Result<Outcome> {
        let mut problems: Vec<String> = Vec::new();
        let master_path = self.inner.data_dir.join("master.db");
        let master_ok = self
            .master()
            .run(|conn| sqlite::integrity(conn).map_err(|e| ApiError::validation(e.to_string())))
            .await;
        if let Err(e) = master_ok {
            problems.push(format!("{}: {}", master_path.display(), e.message()));
        }
        let tenants = all_registered(self.master()).await?;
        let latest = tenant_schema().latest();
        let mut files = Vec::new();
        for tenant in &tenants {
            let path = self.tenant_path(&tenant.db_name);
            if !tenant.provisioned && !path.exists() {
                // Signed up, file not created yet: created on first use.
                continue;
            }
            match self.inspect(tenant, true).await {
                Ok(probe) => {
                    let mut issue = None;
                    if probe.schema_version > latest {
                        issue = Some(format!(
                            "schema version {} is newer than this binary's {latest}",
                            probe.schema_version
                        ));
                    } else if probe.owner.as_deref() != Some(&tenant.id.to_string()) {
                        issue = Some(format!(
                            "the file says it belongs to {}",
                            probe.owner.as_deref().unwrap_or("nobody")
                        ));
                    }
                    if let Some(issue) = &issue {
                        problems.push(format!(
                            "tenant {} ({}): {issue}",
                            tenant.id,
                            path.display()
                        ));
                    }
                    files.push(json!({
                        "tenant": tenant.id, "file": path, "schemaVersion": probe.schema_version,
                        "behind": probe.schema_version < latest, "ok": issue.is_none(),
                    }));
                }
                Err(e) => {
                    problems.push(format!("tenant {} ({}): {e:#}", tenant.id, path.display()));
                    files.push(json!({"tenant": tenant.id, "file": path, "ok": false}));
                }
            }
        }
        // Orphans: files no registry row names, session folders of no tenant.
        let known: HashSet<String> = tenants
            .iter()
            .map(|t| format!("{}.db", t.db_name.as_str()))
            .collect();
        let ids: HashSet<String> = tenants.iter().map(|t| t.id.to_string()).collect();
        for name in folder_names(&self.inner.data_dir.join("tenants"))? {
            let stem = name
                .strip_suffix("-wal")
                .or_else(|| name.strip_suffix("-shm"))
                .unwrap_or(&name);
            if !name.starts_with('.') && !known.contains(stem) {
                problems.push(format!(
                    "orphan file tenants/{name}: no tenant in the registry uses it"
                ));
            }
        }
        for name in folder_names(&self.inner.sessions_dir)? {
            if !name.starts_with('.') && !ids.contains(&name) {
                problems.push(format!(
                    "orphan session folder sessions/{name}: no such tenant"
                ));
            }
        }
        let behind = files.iter().filter(|f| f["behind"] == true).count();
        let mut text = format!(
            "checked the master registry and {} tenant file(s) (schema version {latest}; {behind} behind, migrated on next use or by `aezen migrate`)",
            files.len()
        );
        if problems.is_empty() {
            text.push_str("\nno problems found");
        } else {
            for p in &problems {
                let _ = write!(text, "\nPROBLEM: {p}");
            }
        }
        Ok(Outcome {
            report: json!({ "tenants": files, "problems": problems, "schemaVersion": latest }),
            text,
            ok: problems.is_empty(),
        })
    }

    pub(super) async fn migrate(
        &self,
        dry_run: bool,
        progress: &Progress,
    ) -> anyhow::Result<Outcome> {
        /// Tenant files migrated at once.
        const CONCURRENCY: usize = 4;
        let tenants = all_registered(self.master()).await?;
        let latest = tenant_schema().latest();
        let total = tenants.len() as u64;
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut running = tokio::task::JoinSet::new();
        for tenant in tenants {
            let ops = self.clone();
            let permits = Arc::clone(&permits);
            running.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let path = ops.tenant_path(&tenant.db_name);
                if !path.exists() {
                    return (tenant, Ok(None));
                }
                let result = match ops.inspect(&tenant, false).await {
                    Ok(probe) if probe.schema_version >= latest || dry_run => {
                        Ok(Some((probe.schema_version, false)))
                    }
                    Ok(probe) => ops
                        .tenants()
                        .visit(tenant.id, |_| Ok(()))
                        .await
                        .map(|()| Some((probe.schema_version, true)))
                        .map_err(|e| anyhow::anyhow!("{}", e.message())),
                    Err(e) => Err(e),
                };
                (tenant, result)
            });
        }
        let (mut done, mut migrated, mut behind, mut failed) = (0u64, 0u64, 0u64, 0u64);
        while let Some(joined) = running.join_next().await {
            let (tenant, result) = joined?;
            done += 1;
            match result {
                Ok(Some((from, true))) => {
                    migrated += 1;
                    progress(Note::Line(format!(
                        "tenant {}: migrated from version {from} to {latest}",
                        tenant.id
                    )));
                }
                Ok(Some((from, false))) if from < latest => {
                    behind += 1;
                    progress(Note::Line(format!(
                        "tenant {}: would migrate from version {from} to {latest}",
                        tenant.id
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    failed += 1;
                    progress(Note::Line(format!("tenant {} FAILED: {e:#}", tenant.id)));
                }
            }
            progress(Note::Count { done, total });
        }
        let text = if dry_run {
            format!(
                "dry run: {behind} of {total} tenant file(s) would be migrated to version {latest}; {failed} could not be read"
            )
        } else {
            format!(
                "migrated {migrated} of {total} tenant file(s) to version {latest}; {failed} failed"
            )
        };
        Ok(Outcome {
            report: json!({"total": total, "migrated": migrated, "wouldMigrate": behind, "failed": failed, "schemaVersion": latest, "dryRun": dry_run}),
            text,
            ok: failed == 0,
        })
    }

    /// Removes everything of a tenant: its WhatsApp session, its registry row and users,
    /// its file and the file's companions.
    pub(super) async fn delete(&self, tenant: TenantId) -> anyhow::Result<Outcome> {
        let registered = self.registered(tenant).await?;
        let _hold = self
            .tenants()
            .hold(tenant)
            .await
            .with_context(|| format!("tenant {tenant}"))?;
        match self.live() {
            Some(live) => live.sessions.remove(tenant).await,
            None => remove_folder(&self.session_folder(tenant))?,
        }
        let users: Vec<UserId> = self
            .master()
            .write(move |tx| {
                let users = users::records(tx, tenant)?
                    .into_iter()
                    .map(|u| u.user.id)
                    .collect();
                crate::tenancy::registry::delete(tx, tenant)?;
                Ok(users)
            })
            .await?;
        if let Some(live) = self.live() {
            for user in &users {
                live.auth.forget(*user);
            }
        }
        let path = self.tenant_path(&registered.db_name);
        for file in std::iter::once(path.clone()).chain(super::companions(&path)) {
            remove_if_present(&file)
                .with_context(|| format!("cannot remove {}", file.display()))?;
        }
        tracing::info!(tenant = %tenant, users = users.len(), "tenant deleted");
        Ok(Outcome {
            report: json!({"deleted": tenant, "users": users.len(), "file": path}),
            text: format!(
                "deleted tenant {tenant} ({}): {} user(s), {} and its WhatsApp session",
                registered.name,
                users.len(),
                path.display()
            ),
            ok: true,
        })
    }

    /// `VACUUM` of a tenant's file, out of service for the moment it takes. Message ids,
    /// history cursors and the list order survive it: every table whose row ids anything holds
    /// has an explicit integer key (migration V4).
    pub(super) async fn compact(&self, tenant: TenantId) -> anyhow::Result<Outcome> {
        let registered = self.registered(tenant).await?;
        let path = self.tenant_path(&registered.db_name);
        let lock = self.tenants().file_lock();
        let _hold = self
            .tenants()
            .hold(tenant)
            .await
            .map_err(|e| anyhow::anyhow!("tenant {tenant}: {}", e.message()))?;
        let (before, after) = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, u64)> {
            let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let before = size();
            let conn = db::open_existing(&path, lock)
                .with_context(|| format!("cannot open {}", path.display()))?;
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
            drop(conn);
            Ok((before, size()))
        })
        .await??;
        Ok(Outcome {
            report: json!({"tenant": tenant, "sizeBefore": before, "sizeAfter": after}),
            text: format!(
                "compacted tenant {tenant}: {} → {}",
                human_bytes(before),
                human_bytes(after)
            ),
            ok: true,
        })
    }
}

/// The names in a folder (none if it does not exist).
fn folder_names(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot list {}", dir.display())),
    }
}

pub fn remove_folder(dir: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
