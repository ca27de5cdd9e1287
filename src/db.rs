//! SQLite plumbing shared by the master registry and the tenant files: connection pragmas,
//! pool construction, schema migration with a cheap up-to-date guard, and [`Db::run`], the
//! one door through which rusqlite work leaves the async workers.
//!
//! Nothing outside this module calls `pool.get()`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::config::FileLock;
use crate::error::ApiError;

/// A pool of connections to one SQLite file.
///
/// Reads run side by side on the pool's connections; writes go through [`Db::write`], which
/// lets one writer at a time into the file. SQLite allows one writer anyway: queueing them
/// here, on an async lock, keeps waiting writers off the blocking threads and out of SQLite's
/// busy handler, whose sleeps (1, 2, 5, 10 … ms) made the send p99 several times longer.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    writer: Writer,
    /// Whether the write-ahead log may hold frames that are not in the file yet: set by every
    /// [`Db::write`] and by [`Db::mark_logged`]. A pool that was only read needs no
    /// checkpoint when it closes.
    logged: Arc<AtomicBool>,
    /// The connection the pool was opened with, until a checkout takes it ([`Manager`]).
    seed: Seed,
    /// While set, connections returned to the pool are closed ([`Db::shed_idle`]).
    shedding: Arc<AtomicBool>,
}

type Seed = Arc<std::sync::Mutex<Option<Connection>>>;

/// A file's writer turn and write sequence. Every `Db` opened on one file must share it (the
/// tenant pools keep one per tenant), so that a pool that left the cache, still held by a
/// task, and the pool opened after it never write at once, and agree on the sequence.
pub type Writer = Arc<FileTurn>;

/// What every `Db` of one file shares: its writer turn, and its write sequence.
pub struct FileTurn {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// A value unique in the process that changes after every commit to the file through its
    /// pools ([`Db::write`], or a [`Db::run`] that changed rows) and whenever a pool is opened
    /// on it (the file may have been replaced, restored or migrated meanwhile): a page
    /// rendered from the file while the sequence read `g` is current as long as it still
    /// reads `g`. Values are never reused, not even by a later `FileTurn` of the same file.
    sequence: AtomicU64,
}

impl Default for FileTurn {
    fn default() -> Self {
        Self {
            turn: Arc::default(),
            sequence: AtomicU64::new(next_sequence()),
        }
    }
}

impl FileTurn {
    fn advance(&self) {
        self.sequence.store(next_sequence(), Ordering::Release);
    }

    /// Runs `f`, then moves the sequence on if `f` changed any row (it has committed by
    /// then: a connection goes back to the pool outside any transaction).
    fn after<T>(
        &self,
        conn: &mut Connection,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let before = conn.total_changes();
        let out = f(conn);
        if conn.total_changes() != before {
            self.advance();
        }
        out
    }
}

fn next_sequence() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// How durable commits are: FULL for the master registry, NORMAL for tenant files.
#[derive(Debug, Clone, Copy)]
pub enum Durability {
    Full,
    Normal,
}

impl Db {
    /// Runs `f` with a pooled connection on tokio's blocking pool, inside the caller's
    /// tracing span (so what it logs carries the request's id).
    ///
    /// `f` may write (most writes go through [`Db::write`]): if it changed any row, the
    /// file's write sequence moves on after it, as after a [`Db::write`].
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        self.checked_out(move |conn| writer.after(conn, f)).await
    }

    async fn checked_out<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _span = span.entered();
            let mut conn = pool
                .get()
                .map_err(|e| ApiError::internal("sqlite pool checkout", e))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::internal("blocking task", e))?
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed if `f` succeeds and rolled back
    /// otherwise, with no other [`Db::write`] on this file running meanwhile.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        self.write_then(f, |_| {}).await
    }

    /// [`Db::write`], then `committed` with the result once the transaction has committed,
    /// still on the blocking thread and before the file's next write begins. It runs even if
    /// the caller has stopped waiting, so what it hands on (the events the transaction
    /// recorded, to the broadcaster) is handed on exactly once, in commit order.
    pub async fn write_then<T, F, C>(&self, f: F, committed: C) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send + 'static,
        C: FnOnce(&mut T) + Send + 'static,
    {
        // Owned, and moved into the blocking closure: if the caller is cancelled, the turn
        // is still held until the transaction has ended.
        let turn = Arc::clone(&self.writer.turn).lock_owned().await;
        self.logged.store(true, Ordering::Relaxed);
        let writer = Arc::clone(&self.writer);
        self.checked_out(move |conn| {
            let _turn = turn;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = f(&tx)?;
            tx.commit()?;
            // After the commit, so that whoever reads the new value reads the new data.
            writer.advance();
            committed(&mut out);
            Ok(out)
        })
        .await
    }

    /// Whether `other` takes its writes in turn with this one (the same file's writer turn).
    pub fn shares_writer_with(&self, other: &Db) -> bool {
        Arc::ptr_eq(&self.writer, &other.writer)
    }

    /// Copies the write-ahead log into the database file and truncates it, on the calling
    /// (blocking) thread. Returns `false` if a reader or writer still using the file kept it
    /// from completing (the log then holds committed data until the next checkpoint).
    ///
    /// Takes the file's writer turn first (so it never meets a writer of a newer pool on the
    /// same file in SQLite's busy handler): call it from a plain thread, not from async code.
    pub fn checkpoint_blocking(&self) -> Result<bool, ApiError> {
        if !self.logged.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let _turn = self.writer.turn.blocking_lock();
        let checkpoint = |conn: &Connection| -> Result<bool, ApiError> {
            let busy: i64 =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            Ok(busy == 0)
        };
        // Never wait for a connection: if all of them are out, the file is in use.
        if let Some(conn) = self.pool.try_get() {
            return checkpoint(&conn);
        }
        // A pool that no checkout has used yet holds only its first connection.
        let seed = self
            .seed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seed.as_ref() {
            Some(conn) => checkpoint(conn),
            None => Ok(false),
        }
    }

    /// Records that the write-ahead log may hold frames from outside [`Db::write`] (written
    /// at open, or left by an earlier open), so that closing checkpoints it.
    pub fn mark_logged(&self) {
        self.logged.store(true, Ordering::Relaxed);
    }

    /// The file's write sequence ([`FileTurn`]): read it before reading what is to be kept,
    /// and what was read is current while the sequence still reads the same.
    pub fn sequence(&self) -> u64 {
        self.writer.sequence.load(Ordering::Acquire)
    }

    /// Lets an idle pool shrink back to one connection, on the calling (blocking) thread:
    /// closes every idle connection but one, and empties the kept one's page cache and cached
    /// statements (SQLite's `shrink_memory`), so that an open tenant nobody is using costs its
    /// schema and little else. Connections busy meanwhile are left alone. Returns how many
    /// connections were closed.
    ///
    /// The pool grows again under load (r2d2 opens a connection when every open one is busy);
    /// the next request on the kept connection reads its pages from the OS's cache and
    /// prepares its statements again, a few tens of µs once.
    pub fn shed_idle(&self) -> usize {
        let mut idle: Vec<_> = std::iter::from_fn(|| self.pool.try_get()).collect();
        let Some(kept) = idle.pop() else {
            return 0;
        };
        let closed = idle.len();
        if closed > 0 {
            // `Manager::has_broken` reports these broken, so r2d2 closes them on return. A
            // connection some request hands back in this window is closed too: the pool opens
            // another if it is needed.
            self.shedding.store(true, Ordering::Relaxed);
            drop(idle);
            self.shedding.store(false, Ordering::Relaxed);
        }
        kept.flush_prepared_statement_cache();
        if let Err(e) = kept.execute_batch("PRAGMA shrink_memory") {
            tracing::warn!(error = %e, "shrinking an idle tenant connection's memory");
        }
        closed
    }

    /// Like [`Db::run`], for callers already on a blocking thread.
    pub fn run_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| ApiError::internal("sqlite pool checkout", e))?;
        self.writer.after(&mut conn, f)
    }
}

/// What to hand SQLite to open the existing file `path` with `lock`, read-write: the path
/// itself, or a `file:` URI naming the `unix-excl` VFS (every byte outside a safe set
/// percent-encoded); and the open flags.
fn open_target(path: &Path, lock: FileLock) -> (PathBuf, OpenFlags) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match lock {
        FileLock::Shared => (path.to_path_buf(), flags),
        FileLock::Exclusive => {
            use std::fmt::Write;
            use std::os::unix::ffi::OsStrExt;
            // `file:///abs` (empty authority): after `file:`, a path that starts with `//`
            // would otherwise be read as a host name.
            let bytes = path.as_os_str().as_bytes();
            let mut uri = String::from(if bytes.starts_with(b"/") {
                "file://"
            } else {
                "file:"
            });
            for &byte in bytes {
                if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
                    uri.push(char::from(byte));
                } else {
                    let _ = write!(uri, "%{byte:02X}");
                }
            }
            uri.push_str("?vfs=unix-excl");
            (PathBuf::from(uri), flags | OpenFlags::SQLITE_OPEN_URI)
        }
    }
}

/// Applies the per-connection settings from `shared/notes/sqlite.md`. `busy_timeout` comes
/// first so that the WAL switch itself waits for a lock instead of failing.
fn init_connection(conn: &mut Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    // Query planner stability: without it SQLite re-plans a cached statement whose bound
    // values (a `LIMIT ?`, a `LIKE ?`) could change the plan, i.e. on every call of the hot
    // list and outbox queries. Measured: +20 % on the hot list, +45 % on sends.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // A tenant file's -wal and -shm stay beside it between opens: deleting them when the last
    // connection closes and creating them again on the next open was a sixth of the cost of
    // an uncached tenant request. The log is emptied into the file when a tenant pool leaves
    // the cache instead ([`Db::checkpoint_blocking`]), so a closed tenant is still one
    // complete file.
    if let Durability::Normal = durability {
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    }
    // A tenant's page cache is small: up to capacity × pool size connections stay open, and
    // RSS is bounded by their sum (256 × 4 × 1 MiB would be 1 GiB). 128 KiB measured no slower
    // on the benchmark and kept the server under 150 MiB.
    let (synchronous, cache_kib) = match durability {
        Durability::Full => ("FULL", 1024),
        Durability::Normal => ("NORMAL", 128),
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA journal_size_limit = 8388608;
         PRAGMA trusted_schema = OFF;"
    ))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// r2d2's connection manager for one file: [`SqliteConnectionManager`], plus at most one
/// connection opened beforehand by the caller, which the pool's first checkout takes instead of
/// opening another.
///
/// r2d2 opens every connection on its own thread pool while the caller waits. A tenant opened
/// for a request is opened on the request's blocking thread instead, and the request is
/// answered from that connection before the pool ever sees it (`TenantPools::run`): an
/// uncached request then costs one hop to a blocking thread, not three.
pub struct Manager {
    files: SqliteConnectionManager,
    seed: Seed,
    shedding: Arc<AtomicBool>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let seed = self
            .seed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match seed {
            Some(conn) => Ok(conn),
            None => self.files.connect(),
        }
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.files.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.shedding.load(Ordering::Relaxed) || self.files.has_broken(conn)
    }
}

/// Opens (never creates) a pool on an existing file, with one connection; more are opened
/// only when every open connection is busy. `first`, if given, is that connection, opened by
/// the caller with [`open_connection`] on the same file and settings; otherwise the pool opens
/// one here, to prove the file opens.
///
/// `min_idle = 0`: with a minimum, r2d2 opens a replacement in the background each time a
/// checkout takes the last idle connection, so a tenant opened for one request paid for two
/// or three SQLite opens (and closes). The checkout test is off: it ran an empty statement on
/// every checkout and r2d2_sqlite never reports a connection broken. The thread pool r2d2
/// opens extra connections on is shared by every pool: r2d2 would otherwise start three
/// threads per pool.
///
/// No idle timeout and no maximum lifetime: with either, r2d2 schedules a reaper on that
/// thread pool every 30 s and never cancels it, not even when the pool is dropped, so each
/// tenant pool ever opened would leave a job behind for the life of the process (memory and a
/// wake-up per job per 30 s, growing with every cache miss). A pool's extra connections close
/// with the pool instead, when the tenant leaves the cache (LRU or its idle expiry).
pub fn open_pool(
    path: &Path,
    durability: Durability,
    lock: FileLock,
    max_size: u32,
    threads: Arc<ScheduledThreadPool>,
    first: Option<Connection>,
    writer: Writer,
) -> Result<Db, r2d2::Error> {
    let (target, flags) = open_target(path, lock);
    let seeded = first.is_some();
    let manager = Manager {
        files: SqliteConnectionManager::file(target)
            .with_flags(flags)
            .with_init(move |conn| init_connection(conn, durability)),
        seed: Arc::new(std::sync::Mutex::new(first)),
        shedding: Arc::default(),
    };
    let seed = Arc::clone(&manager.seed);
    let shedding = Arc::clone(&manager.shedding);
    let pool = Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connection_timeout(Duration::from_secs(10))
        .thread_pool(threads)
        .build_unchecked(manager);
    if !seeded {
        // Proves the file opens; the connection stays idle for the first request.
        drop(pool.get()?);
    }
    // The file may have changed since a page was last read from it (restored, imported,
    // migrated, written by another process before this one locked it).
    writer.advance();
    Ok(Db {
        pool,
        writer,
        logged: Arc::default(),
        seed,
        shedding,
    })
}

/// Opens one connection outside any pool: `create` decides whether a missing file is created
/// (first run of the master, provisioning of a tenant) or is an error.
pub fn open_connection(
    path: &Path,
    durability: Durability,
    lock: FileLock,
    create: bool,
) -> rusqlite::Result<Connection> {
    let (target, mut flags) = open_target(path, lock);
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = Connection::open_with_flags(target, flags)?;
    init_connection(&mut conn, durability)?;
    Ok(conn)
}

/// Opens an existing file for an inspection or a copy (its version, an integrity check, a
/// backup), with the same locking as the server's connections and none of their settings:
/// never creates, migrates or writes it.
pub fn open_existing(path: &Path, lock: FileLock) -> rusqlite::Result<Connection> {
    let (target, flags) = open_target(path, lock);
    Connection::open_with_flags(target, flags)
}

/// Why a schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "database schema version {found} is newer than this binary's {expected}; upgrade AEZEN"
    )]
    NewerThanBinary { found: i64, expected: i64 },
    #[error(transparent)]
    Refinery(#[from] refinery::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Whether [`migrate`] ran the migration runner or found the file already current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    UpToDate,
    Applied,
}

/// A set of embedded migrations and the newest version among them, read once.
pub struct Schema {
    latest: i64,
    runner: fn() -> refinery::Runner,
}

impl Schema {
    /// `runner` is refinery's `embedded::migrations::runner`. Building it parses every
    /// migration, so it is called here once and again only when a file needs migrating.
    pub fn new(runner: fn() -> refinery::Runner) -> Self {
        let latest = runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        Self { latest, runner }
    }

    /// The newest version among the migrations: what `PRAGMA user_version` says once migrated.
    pub fn latest(&self) -> i64 {
        self.latest
    }
}

/// Brings `conn` to the newest version of `schema`, all or nothing.
///
/// `PRAGMA user_version` records the last applied version, so an up-to-date file costs one
/// pragma read instead of a scan of refinery's history table; a newer file is refused.
pub fn migrate(conn: &mut Connection, schema: &Schema) -> Result<Migrated, MigrateError> {
    let expected = schema.latest;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == expected {
        return Ok(Migrated::UpToDate);
    }
    if found > expected {
        return Err(MigrateError::NewerThanBinary { found, expected });
    }
    (schema.runner)()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)?;
    conn.pragma_update(None, "user_version", expected)?;
    Ok(Migrated::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of up to 4 connections on the existing file `path`, opened as a tenant's is.
    fn shared_pool(path: &Path) -> Db {
        let threads = Arc::new(ScheduledThreadPool::new(1));
        open_pool(
            path,
            Durability::Normal,
            FileLock::Shared,
            4,
            threads,
            None,
            Writer::default(),
        )
        .unwrap()
    }

    /// Open connections, and how many of them are idle.
    fn connections(db: &Db) -> (u32, u32) {
        let state = db.pool.state();
        (state.connections, state.idle_connections)
    }

    /// r2d2 schedules a reaper for a pool with an idle timeout or a maximum lifetime and never
    /// cancels it: measured, each pool opened and dropped with `idle_timeout(300 s)` left
    /// 528 bytes behind for good (26 MB per 50,000 tenant opens). A tenant pool has neither.
    #[test]
    fn a_pool_schedules_no_reaper_that_would_outlive_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open_connection(&path, Durability::Normal, FileLock::Shared, true).unwrap());
        let db = shared_pool(&path);
        assert_eq!(db.pool.idle_timeout(), None);
        assert_eq!(db.pool.max_lifetime(), None);
    }

    /// A pool grown by a burst shrinks back to one connection, which still answers, and the
    /// pool grows again under the next burst.
    #[test]
    fn an_idle_pool_sheds_all_connections_but_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open_connection(&path, Durability::Normal, FileLock::Exclusive, true).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (7);")
            .unwrap();
        drop(conn);
        let db = shared_pool(&path);
        let burst = || {
            let held: Vec<_> = (0..3).map(|_| db.pool.get().unwrap()).collect();
            drop(held);
        };
        burst();
        assert_eq!(connections(&db), (3, 3));
        let read = |db: &Db| {
            db.run_blocking(|conn| {
                Ok(conn.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0))?)
            })
            .unwrap()
        };
        assert_eq!(read(&db), 7);

        assert_eq!(db.shed_idle(), 2);
        assert_eq!(connections(&db), (1, 1));
        assert_eq!(read(&db), 7);
        // Nothing left to shed, and a busy connection is never taken.
        let busy = db.pool.get().unwrap();
        assert_eq!(db.shed_idle(), 0);
        drop(busy);
        assert_eq!(connections(&db), (1, 1));

        burst();
        assert_eq!(connections(&db), (3, 3));
    }

    #[test]
    fn an_exclusive_file_opens_at_exactly_its_path_whatever_the_characters() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data 100% ?#&=ü").join("tenants");
        std::fs::create_dir_all(&dir).unwrap();
        for path in [
            dir.join("a.db"),
            PathBuf::from(format!("/{}", dir.join("b.db").display())),
        ] {
            let conn =
                open_connection(&path, Durability::Normal, FileLock::Exclusive, true).unwrap();
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
            drop(conn);
            // The file SQLite wrote is the one at `path`, and it reopens (without create).
            assert!(path.exists(), "{}", path.display());
            let conn =
                open_connection(&path, Durability::Normal, FileLock::Exclusive, false).unwrap();
            let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(x, 1);
        }
        // Both landed in `dir`, named as asked.
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".db"))
            .collect();
        names.sort();
        assert_eq!(names, ["a.db", "b.db"]);
    }
}
