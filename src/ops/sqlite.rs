//! The SQLite steps the operations share: a consistent copy of a live database (the online
//! backup API), the checks a copy must pass, and a file's checksum.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

/// What a copy of a tenant's file says about itself.
#[derive(Debug, Clone)]
pub struct Probe {
    pub schema_version: i64,
    /// `tenant_meta`'s `tenant_id` (absent in a master file, or a file too old to have it).
    pub owner: Option<String>,
    /// The last `seq` the event log handed out: every change to a tenant's data writes an
    /// event in the same transaction, so an unchanged value means unchanged data.
    pub last_event_seq: i64,
}

/// Copies the database `src` is open on into a new file at `dst` (replacing a file there),
/// with SQLite's online backup API in one step: one read transaction on the source, so the
/// copy is the state of one moment even while others write (a writer does not wait for it in
/// WAL mode, and a write on another connection cannot restart it). The copy is left in
/// rollback-journal mode, a single self-contained file. Returns what the copy says of itself,
/// read inside the same read transaction.
pub fn copy_database(src: &Connection, dst: &Path) -> anyhow::Result<Probe> {
    super::remove_if_present(dst)?;
    let mut out =
        Connection::open(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    src.execute_batch("BEGIN")?;
    let copied = (|| -> anyhow::Result<Probe> {
        let probe = probe(src)?;
        let backup = rusqlite::backup::Backup::new(src, &mut out)?;
        // -1: every page in one step. Busy or locked (a writer of the destination, which has
        // none; or a checkpoint) is retried briefly.
        for _ in 0..2_000 {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => return Ok(probe),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        bail!("the database stayed busy for 10 s; try again")
    })();
    src.execute_batch("COMMIT")?;
    let probe = copied?;
    out.pragma_update(None, "journal_mode", "DELETE")?;
    drop(out);
    Ok(probe)
}

/// Schema version, owner and last event seq of an open database.
pub fn probe(conn: &Connection) -> anyhow::Result<Probe> {
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
    };
    let owner = if has("tenant_meta")? {
        conn.query_row(
            "SELECT value FROM tenant_meta WHERE key = 'tenant_id'",
            [],
            |r| r.get(0),
        )
        .optional()?
    } else {
        None
    };
    let last_event_seq = if has("sqlite_sequence")? {
        conn.query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'event'), 0)",
            [],
            |r| r.get(0),
        )?
    } else {
        0
    };
    Ok(Probe {
        schema_version,
        owner,
        last_event_seq,
    })
}

/// `PRAGMA integrity_check` of an open database: `Ok` only for SQLite's `ok`.
pub fn integrity(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
    let findings: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if findings == ["ok"] {
        Ok(())
    } else {
        bail!("integrity check failed: {}", findings.join("; "))
    }
}

/// Opens a copy (a backup, an archive's file) read-only and checks it: integrity, then what
/// it says of itself.
pub fn verify_copy(path: &Path) -> anyhow::Result<Probe> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    integrity(&conn).with_context(|| format!("{} is damaged", path.display()))?;
    probe(&conn).with_context(|| format!("{} is not an AEZEN database", path.display()))
}

/// SHA-256 (hex) and size of a file, read in 64 KiB pieces.
pub fn checksum(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Flushes a file (or a folder's entries) to disk.
pub fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}
