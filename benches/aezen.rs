//! AEZEN's performance benchmark: one command that builds its own data in a temp dir, starts
//! the real server in its own process, drives it over HTTP and Socket.IO from this process
//! (the load client), measures a baseline for every figure in the same run, and prints a
//! markdown table.
//!
//! ```sh
//! cargo bench --bench aezen -- --quick   # < 2 min on 2 cores, every row at reduced counts
//! cargo bench --bench aezen              # full counts (10,000 tenants, 1,000 sockets)
//! cargo bench --bench aezen -- --rows 1,5  # only some rows (their set-up runs as needed)
//! AEZEN_BENCH_PERF=/tmp/perf cargo bench --bench aezen -- --quick --rows 1,2,5
//!                     # plus a 5 s `perf record` pass of the server after rows 1, 2 and 5
//! AEZEN_BENCH_KEEP=1 cargo bench --bench aezen -- --rows 6
//!                     # keeps the temp dir (its path is printed) to start a server on by hand
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) it does nothing, so `cargo test --benches`
//! stays fast.
//!
//! The binary re-executes itself for its children: `--serve <port-file> <root> <capacity>
//! <sessions-dir>` runs `aezen::Application` (simulated WhatsApp backend) exactly as `main`
//! does, and `--bare <port-file> <page-file> <event-file>` runs the baselines: a bare axum
//! handler answering the same JSON bytes from memory and a bare socketioxide broadcast.
//! `--real-clients <dir> <n>` (row 8) starts `n` idle real whatsapp-rust clients on
//! `Network::offline()`, which refuses every connection without sending a packet.
//! Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aezen::auth::users::{self, Role, User};
use aezen::chat::ingest::Ingested;
use aezen::config::Config;
use aezen::db::{Durability, FileLock};
use aezen::error::ApiError;
use aezen::ids::{TenantId, UserId};
use aezen::tenancy::{DbName, Tenant, registry};
use aezen::whatsapp::sessions::{self, SessionState};
use aezen::whatsapp::{BackendKind, InboundEvent, IncomingMessage};
use aezen::{AppState, Application};
use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::StatusCode;
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

// ---- entry ---------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--serve") => serve(&args[1..]),
        Some("--bare") => child_runtime()?.block_on(bare(&args[1..])),
        Some("--real-clients") => {
            let [dir, n] = &args[1..] else {
                bail!("--real-clients <sessions-dir> <n>");
            };
            let line = child_runtime()?.block_on(real_clients(Path::new(dir), n.parse()?))?;
            println!("{line}");
            Ok(())
        }
        Some("--conn-memory") => {
            let [dir, n] = &args[1..] else {
                bail!("--conn-memory <tenants-dir> <n>");
            };
            let cost = connection_memory(Path::new(dir), n.parse()?)?;
            println!("{} {} {}", cost.kib, cost.open_us, cost.close_us);
            Ok(())
        }
        // `cargo bench` passes `--bench`; `cargo test --benches` runs this binary without it,
        // and a test run must not start a multi-minute benchmark.
        _ if !args.iter().any(|a| a == "--bench") => {
            println!("aezen benchmark: run it with `cargo bench --bench aezen [-- --quick]`");
            Ok(())
        }
        _ => {
            let options = Options::parse(&args)?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(bench(options))
        }
    }
}

/// A plain multi-threaded runtime (one worker per core) for the baseline children.
fn child_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

struct Options {
    quick: bool,
    rows: Option<Vec<u32>>,
    perf_dir: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut options = Self {
            quick: false,
            rows: None,
            perf_dir: std::env::var_os("AEZEN_BENCH_PERF").map(PathBuf::from),
        };
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--quick" => options.quick = true,
                "--rows" => {
                    i += 1;
                    let list = args.get(i).context("--rows needs a list, e.g. 1,5")?;
                    options.rows = Some(
                        list.split(',')
                            .map(|r| r.trim().parse::<u32>().context("--rows: numbers 1-8"))
                            .collect::<anyhow::Result<_>>()?,
                    );
                }
                // `cargo bench` appends `--bench`; anything else is a filter we do not use.
                _ => {}
            }
            i += 1;
        }
        Ok(options)
    }

    fn wants(&self, row: u32) -> bool {
        self.rows.as_ref().is_none_or(|rows| rows.contains(&row))
    }
}

/// Counts and durations of one mode.
struct Scale {
    /// Tenants of the inbox rows (1, 2, 3, 7) and conversations each.
    tenants: usize,
    conversations: usize,
    concurrency: usize,
    warmup: Duration,
    /// Total measured time per side, split into `slices` alternating slices.
    measure: Duration,
    slices: u32,
    /// Bare rusqlite loops run this long.
    bare_loop: Duration,
    /// Row 3: messages injected.
    ingest_messages: usize,
    /// Rows 4–6: tenant files, conversations each, linked session folders.
    many_tenants: usize,
    many_conversations: usize,
    session_folders: usize,
    uncached_samples: usize,
    startup_runs: usize,
    /// Row 7.
    sockets: usize,
    fanout_rate: usize,
    fanout_time: Duration,
    /// Row 8: idle real whatsapp-rust clients.
    real_clients: usize,
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                tenants: 100,
                conversations: 200,
                concurrency: 64,
                warmup: Duration::from_millis(500),
                measure: Duration::from_secs(3),
                slices: 3,
                bare_loop: Duration::from_secs(2),
                ingest_messages: 30_000,
                many_tenants: 1_000,
                many_conversations: 50,
                session_folders: 100,
                uncached_samples: 200,
                startup_runs: 1,
                sockets: 200,
                fanout_rate: 1_000,
                fanout_time: Duration::from_secs(3),
                real_clients: 50,
            }
        } else {
            Self {
                tenants: 100,
                conversations: 200,
                concurrency: 64,
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(10),
                slices: 5,
                bare_loop: Duration::from_secs(5),
                ingest_messages: 200_000,
                many_tenants: 10_000,
                many_conversations: 50,
                session_folders: 1_000,
                uncached_samples: 500,
                startup_runs: 3,
                sockets: 1_000,
                fanout_rate: 1_000,
                fanout_time: Duration::from_secs(10),
                real_clients: 200,
            }
        }
    }
}

// ---- the server child ------------------------------------------------------------------------

/// `--serve <port-file> <root> <cache-capacity> <sessions-dir>`: the real application, with the
/// logging `main` sets up, until killed.
/// Runs the server exactly as `main` does (same runtime, same logging).
fn serve(args: &[String]) -> anyhow::Result<()> {
    let [port_file, root, capacity, sessions_dir] = args else {
        bail!("--serve <port-file> <root> <capacity> <sessions-dir>");
    };
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = bench_config(Path::new(root));
    config.tenant_cache_capacity = capacity.parse()?;
    config.sessions_dir = PathBuf::from(sessions_dir);
    config.runtime()?.block_on(async {
        let app = Application::build(config).await?;
        write_port(Path::new(port_file), app.local_addr())?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

fn bench_config(root: &Path) -> Config {
    let mut config = Config::for_data_root(root);
    config.login_per_ip_per_minute = 1_000_000;
    config.login_per_account_per_minute = 1_000_000;
    config.whatsapp = BackendKind::Simulated;
    config
}

fn write_port(file: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

// ---- the baseline child ----------------------------------------------------------------------

/// `--bare <port-file> <page-file> <event-file>`: a bare axum server that answers
/// `GET /api/conversations` with the bytes of a page AEZEN served, and a bare socketioxide
/// gateway whose `POST .../simulate/incoming` broadcasts AEZEN's event shape to the room named
/// by the bearer token (the sockets of one tenant share their owner's token).
async fn bare(args: &[String]) -> anyhow::Result<()> {
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, header};
    use axum::routing::{get, post};
    use socketioxide::SocketIo;
    use socketioxide::extract::{SocketRef, TryData};

    let [port_file, page_file, event_file] = args else {
        bail!("--bare <port-file> <page-file> <event-file>");
    };
    let page = Bytes::from(std::fs::read(page_file)?);
    let event: Arc<Value> = Arc::new(serde_json::from_slice(&std::fs::read(event_file)?)?);

    #[derive(serde::Deserialize)]
    struct Auth {
        token: String,
    }
    #[derive(serde::Deserialize)]
    struct Incoming {
        content: String,
    }

    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", async |s: SocketRef, TryData(auth): TryData<Auth>| {
        if let Ok(auth) = auth {
            s.join(auth.token);
        }
    });
    let emit_io = io.clone();
    let router = Router::new()
        .route(
            "/api/conversations",
            get(move || {
                let page = page.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], page) }
            }),
        )
        .route(
            "/api/integrations/whatsapp/simulate/incoming",
            post(
                move |headers: HeaderMap, axum::Json(req): axum::Json<Incoming>| {
                    let io = emit_io.clone();
                    let event = Arc::clone(&event);
                    async move {
                        let room = headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .unwrap_or_default()
                            .to_owned();
                        let mut event = (*event).clone();
                        event["message"]["content"] = Value::String(req.content);
                        let _ = io.to(room).emit("incoming_message", &event).await;
                        (StatusCode::CREATED, axum::Json(json!({"stored": true})))
                    }
                },
            ),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    write_port(Path::new(port_file), listener.local_addr()?)?;
    axum::serve(listener, router).await?;
    Ok(())
}

// ---- child processes, /proc ------------------------------------------------------------------

/// A child process (server or baseline); killed when dropped.
struct Proc {
    child: Option<Child>,
    pid: u32,
    addr: String,
    log: PathBuf,
    spawned: Instant,
}

impl Proc {
    fn spawn(args: &[&str], dir: &Path, name: &str) -> anyhow::Result<Self> {
        let port_file = dir.join(format!("{name}.port"));
        let log = dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(&port_file);
        let spawned = Instant::now();
        let mut full: Vec<&str> = args.to_vec();
        let port_str = port_file.to_str().context("utf-8 path")?;
        // The port file is always the mode's first argument.
        full.insert(1.min(full.len()), port_str);
        // AEZEN_BENCH_WRAP="heaptrack -o /tmp/ht": run the children under a tool (their
        // pid is then the tool's, so the table's process figures are the tool's).
        let wrap = std::env::var("AEZEN_BENCH_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut command = match wrap.next() {
            Some(tool) => {
                let mut c = Command::new(tool);
                c.args(wrap).arg(std::env::current_exe()?);
                c
            }
            None => Command::new(std::env::current_exe()?),
        };
        // As the `aezen` binary runs itself (src/main.rs).
        if let Some((name, value)) = aezen::malloc_arena_cap() {
            command.env(name, value);
        }
        let child = command
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let pid = child.id();
        let mut proc = Self {
            child: Some(child),
            pid,
            addr: String::new(),
            log,
            spawned,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&port_file) {
                proc.addr = format!("http://{addr}");
                return Ok(proc);
            }
            if let Some(status) = proc
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{name} exited ({status}) before listening; log:\n{}",
                    std::fs::read_to_string(&proc.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not listen within 60 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// VmRSS and VmHWM, in KiB.
    fn memory(&self) -> (u64, u64) {
        proc_memory(self.pid)
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count)
    }

    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid)).map_or(0, Iterator::count)
    }

    fn cpu(&self) -> Duration {
        proc_cpu(&self.pid.to_string())
    }

    /// SIGTERM (graceful: drains and closes every database), SIGKILL after 10 s.
    fn stop(mut self) -> LogSummary {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        LogSummary::read(&self.log)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Warnings and errors the server logged.
#[derive(Default)]
struct LogSummary {
    warnings: usize,
    errors: usize,
    samples: Vec<String>,
}

impl LogSummary {
    fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut summary = Self::default();
        for line in text.lines() {
            let error = line.contains(" ERROR ");
            let warn = line.contains(" WARN ") && !line.contains("SIMULATED");
            if error {
                summary.errors += 1;
            } else if warn {
                summary.warnings += 1;
            }
            if (error || warn) && summary.samples.len() < 5 {
                summary.samples.push(line.chars().take(300).collect());
            }
        }
        summary
    }
}

fn proc_memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// "anon A + file F + shmem S" of a process's RSS.
fn rss_breakdown(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    format!(
        "anon {} + file {} + shmem {}",
        mib(field("RssAnon:")),
        mib(field("RssFile:")),
        mib(field("RssShmem:"))
    )
}

/// User + system CPU time of a process (`self` or a pid), from /proc/<pid>/stat.
fn proc_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// `perf record` on a server while one load phase runs (only with AEZEN_BENCH_PERF=<dir>).
struct Perf(Option<Child>);

impl Perf {
    fn start(dir: Option<&Path>, pid: u32, name: &str) -> Self {
        let Some(dir) = dir else { return Self(None) };
        let _ = std::fs::create_dir_all(dir);
        let out = dir.join(format!("{name}.data"));
        let child = Command::new("perf")
            .args([
                "record",
                "-F",
                "249",
                "--call-graph",
                "dwarf,32768",
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    fn stop(mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---- HTTP load -------------------------------------------------------------------------------

type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

#[derive(Default)]
struct Load {
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
    /// Latencies of successful requests (or operations), in microseconds.
    latencies: Vec<u32>,
    elapsed: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    /// CPU time used by the whole machine (every process) meanwhile.
    machine_cpu: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn p(&self, q: f64) -> f64 {
        percentile_ms(&self.latencies, q)
    }

    fn absorb(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        for e in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(e);
            }
        }
        self.elapsed += other.elapsed;
        self.client_cpu += other.client_cpu;
        self.server_cpu += other.server_cpu;
        self.machine_cpu += other.machine_cpu;
    }

    /// CPU used by processes other than the server and this client (other work on the box).
    fn other_cpu(&self) -> Duration {
        self.machine_cpu
            .saturating_sub(self.server_cpu)
            .saturating_sub(self.client_cpu)
    }
}

/// CPU accounting around a measured phase: this process, a server, the whole machine.
struct CpuMark {
    client: Duration,
    server: Option<(u32, Duration)>,
    machine: Duration,
}

impl CpuMark {
    fn now(server_pid: Option<u32>) -> Self {
        Self {
            client: proc_cpu("self"),
            server: server_pid.map(|p| (p, proc_cpu(&p.to_string()))),
            machine: machine_cpu(),
        }
    }

    fn close(&self, load: &mut Load) {
        load.client_cpu = proc_cpu("self").saturating_sub(self.client);
        load.server_cpu = self
            .server
            .map(|(p, at)| proc_cpu(&p.to_string()).saturating_sub(at))
            .unwrap_or_default();
        load.machine_cpu = machine_cpu().saturating_sub(self.machine);
    }
}

/// Busy CPU time of the whole machine (all cores), from /proc/stat.
fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        // user nice system idle iowait irq softirq steal: all but idle (3) and iowait (4).
        .filter(|(i, _)| *i < 8 && *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

fn percentile_ms(latencies: &[u32], q: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// What one side of a comparison sends.
#[derive(Clone)]
struct Side {
    expect: StatusCode,
    pid: Option<u32>,
    make: MakeRequest,
}

/// `concurrency` workers send requests back to back until `duration` passes; `expect` is the
/// status that counts as success.
async fn load(http: &reqwest::Client, concurrency: usize, duration: Duration, side: &Side) -> Load {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mark = CpuMark::now(side.pid);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, make, next, expect) = (
            http.clone(),
            Arc::clone(&side.make),
            Arc::clone(&next),
            side.expect,
        );
        workers.spawn(async move {
            let mut mine = Load::default();
            while start.elapsed() < duration {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                let outcome = match make(&http, i).send().await {
                    Ok(res) => {
                        let status = res.status();
                        match res.bytes().await {
                            Ok(_) if status == expect => Ok(()),
                            Ok(body) => Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )),
                            Err(e) => Err(format!("body: {e}")),
                        }
                    }
                    Err(e) => Err(format!("send: {e}")),
                };
                match outcome {
                    Ok(()) => {
                        mine.ok += 1;
                        mine.latencies.push(micros(t0));
                    }
                    Err(e) => {
                        mine.errors += 1;
                        if mine.error_samples.len() < 3 {
                            mine.error_samples.push(e);
                        }
                    }
                }
            }
            mine
        });
    }
    let mut total = Load::default();
    while let Some(Ok(part)) = workers.join_next().await {
        total.absorb(part);
    }
    total.elapsed = start.elapsed();
    mark.close(&mut total);
    total
}

/// Measures `a` against `b` with the same client and concurrency: a warm-up of each, then
/// `scale.slices` alternating slices (a, b, a, b, …) so that other work on the machine hits
/// both sides alike.
async fn interleaved(http: &reqwest::Client, scale: &Scale, a: &Side, b: &Side) -> (Load, Load) {
    load(http, scale.concurrency, scale.warmup, a).await;
    load(http, scale.concurrency, scale.warmup, b).await;
    let slice = scale.measure / scale.slices;
    let (mut la, mut lb) = (Load::default(), Load::default());
    for _ in 0..scale.slices {
        la.absorb(load(http, scale.concurrency, slice, a).await);
        lb.absorb(load(http, scale.concurrency, slice, b).await);
    }
    (la, lb)
}

/// `GET /api/tenant` for each account in turn, one request at a time.
async fn one_at_a_time(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[&Account],
    pid: u32,
) -> Load {
    let mark = CpuMark::now(Some(pid));
    let start = Instant::now();
    let mut load = Load::default();
    for a in accounts {
        let t0 = Instant::now();
        let ok = http
            .get(format!("{addr}/api/tenant"))
            .bearer_auth(&*a.token)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ok {
            load.ok += 1;
            load.latencies.push(micros(t0));
        } else {
            load.errors += 1;
        }
    }
    load.elapsed = start.elapsed();
    mark.close(&mut load);
    load
}

/// With AEZEN_BENCH_PERF=<dir>: an extra 5 s pass of `side` under `perf record`, after the
/// measured ones (so the profiler's overhead never touches a reported figure).
async fn profile(
    options: &Options,
    http: &reqwest::Client,
    scale: &Scale,
    pid: u32,
    name: &str,
    side: &Side,
) {
    if let Some(dir) = options.perf_dir.as_deref() {
        step(&format!(
            "profiling {name} with perf into {}",
            dir.display()
        ));
        let perf = Perf::start(Some(dir), pid, name);
        load(http, scale.concurrency, Duration::from_secs(5), side).await;
        perf.stop();
    }
}

/// An HTTP side against a bare rusqlite loop, in alternating slices; before each bare slice
/// the server is left to go idle (its outbox may still be sending), and that time is returned.
async fn against_bare_loop(
    http: &reqwest::Client,
    scale: &Scale,
    side: &Side,
    server: &Proc,
    mut bare: BareLoop,
) -> anyhow::Result<(Load, Load, Duration, BareLoop)> {
    load(http, scale.concurrency, scale.warmup, side).await;
    let (mut la, mut lb, mut settle) = (Load::default(), Load::default(), Duration::ZERO);
    let (slice, bare_slice) = (scale.measure / scale.slices, scale.bare_loop / scale.slices);
    for _ in 0..scale.slices {
        la.absorb(load(http, scale.concurrency, slice, side).await);
        let t = Instant::now();
        wait_idle(server, Duration::from_secs(60)).await;
        settle += t.elapsed();
        let (back, l) = bare.slice(bare_slice).await?;
        bare = back;
        lb.absorb(l);
    }
    Ok((la, lb, settle, bare))
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let res = http.get(url).bearer_auth(token).send().await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let res = http.post(url).bearer_auth(token).json(body).send().await?;
    let status = res.status();
    let text = res.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn metrics(http: &reqwest::Client, addr: &str) -> HashMap<String, f64> {
    let text = match http.get(format!("{addr}/api/metrics")).send().await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

// ---- data, through the application's own functions -------------------------------------------

/// A signed-up tenant: its owner's token.
#[derive(Clone)]
struct Account {
    tenant: TenantId,
    token: Arc<str>,
}

trait OrApi<T> {
    fn api(self) -> anyhow::Result<T>;
}

impl<T> OrApi<T> for Result<T, ApiError> {
    fn api(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("{e}"))
    }
}

/// The application in this process (data preparation, row 3), served on 127.0.0.1:0.
struct InProcess {
    state: AppState,
    addr: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    async fn start(root: &Path, capacity: u64) -> anyhow::Result<Self> {
        let mut config = bench_config(root);
        config.tenant_cache_capacity = capacity;
        let app = Application::build(config).await?;
        let addr = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            state,
            addr,
            stop,
            task,
        })
    }

    /// Stops serving and closes every database.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Signs tenants up the way `POST /api/auth/register` does — registry row and owner in one
/// transaction, then the tenant's file created and migrated through `TenantPools` — except that
/// the argon2 hash is computed once and reused (same PHC string for every owner).
async fn create_tenants(state: &AppState, n: usize, label: &str) -> anyhow::Result<Vec<Account>> {
    let hash: Arc<str> = state
        .passwords
        .hash("bench password 123".to_owned())
        .await
        .api()?
        .into();
    let created: Vec<anyhow::Result<(usize, Account)>> = futures::stream::iter(0..n)
        .map(|i| {
            let (state, hash) = (state.clone(), Arc::clone(&hash));
            let label = label.to_owned();
            async move {
                let now = Utc::now();
                let tenant = Tenant {
                    id: TenantId::new(),
                    name: format!("Bench {label} {i}"),
                    created_at: now,
                };
                let user = User {
                    id: UserId::new(),
                    email: format!("owner-{label}-{i}@bench.example"),
                    name: "Owner".to_owned(),
                    role: Role::Owner,
                    tenant_id: tenant.id,
                    created_at: now,
                };
                let db_name = DbName::generate(&tenant.name);
                let (t, u) = (tenant.clone(), user.clone());
                state
                    .master
                    .run(move |conn| {
                        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                        registry::insert(&tx, &t, &db_name)?;
                        users::insert(&tx, &u, &hash)?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await
                    .api()?;
                state.tenants.get(tenant.id).await.api()?;
                let token = state.tokens.issue(user.id, tenant.id, 0)?;
                Ok((
                    i,
                    Account {
                        tenant: tenant.id,
                        token: token.into(),
                    },
                ))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut accounts = created.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    accounts.sort_by_key(|(i, _)| *i);
    Ok(accounts.into_iter().map(|(_, a)| a).collect())
}

/// A contact's number: unique per (tenant index, contact index).
fn contact_number(tenant: usize, contact: usize) -> String {
    format!("+1{:04}{:06}", tenant % 10_000, contact)
}

/// Fills each tenant's inbox with `per_tenant` conversations (one incoming message from each
/// of that many contacts), through the ingest path `simulate/incoming` uses.
async fn add_conversations(
    state: &AppState,
    accounts: &[Account],
    per_tenant: usize,
) -> anyhow::Result<u64> {
    let sim = state.simulated.clone().context("simulated backend")?;
    let stored: Vec<u64> = futures::stream::iter(accounts.iter().enumerate())
        .map(|(ti, account)| {
            let (sim, tenant) = (Arc::clone(&sim), account.tenant);
            async move {
                let mut replies = Vec::with_capacity(per_tenant);
                for c in 0..per_tenant {
                    let (tx, rx) = oneshot::channel();
                    let message = IncomingMessage {
                        whatsapp_id: format!("PREP-{ti}-{c}"),
                        contact_number: contact_number(ti, c),
                        push_name: Some(format!("Contact {c}")),
                        content: format!("Hello from contact {c}, a first message for the inbox."),
                        from_me: false,
                        timestamp: Utc::now(),
                    };
                    sim.inject(
                        tenant,
                        InboundEvent::Message {
                            message,
                            stored: Some(tx),
                        },
                    )
                    .await;
                    replies.push(rx);
                }
                let mut ok = 0;
                for rx in replies {
                    if matches!(rx.await, Ok(Ok(Ingested::Stored(_)))) {
                        ok += 1;
                    }
                }
                ok
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let total = stored.iter().sum();
    let expected = (accounts.len() * per_tenant) as u64;
    if total != expected {
        bail!("only {total} of {expected} preparation messages were stored");
    }
    Ok(total)
}

/// Links tenants' simulated WhatsApp the way the dashboard does (toggle on, QR shown, phone
/// scans), through the session manager: each leaves a linked session folder behind.
async fn link_in_process(state: &AppState, accounts: &[Account]) -> anyhow::Result<()> {
    let sim = state.simulated.clone().context("simulated backend")?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(accounts.iter())
        .map(|account| {
            let (state, sim, tenant) = (state.clone(), Arc::clone(&sim), account.tenant);
            async move {
                sessions::toggle(&state, tenant).await.api()?;
                wait_state(&state, tenant, SessionState::Qr).await?;
                sim.scan(tenant).await.map_err(|e| anyhow!("{e}"))?;
                wait_state(&state, tenant, SessionState::Connected).await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn wait_state(
    state: &AppState,
    tenant: TenantId,
    wanted: SessionState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.sessions.status(tenant).state != wanted {
        if Instant::now() > deadline {
            bail!("tenant {tenant} did not reach {wanted:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Links (or unlinks) tenants over HTTP on a running server: toggle, wait for the QR code,
/// `simulate/scan`, wait until connected.
async fn link_over_http(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(accounts.iter())
        .map(|account| {
            let (http, token) = (http.clone(), Arc::clone(&account.token));
            async move {
                let base = format!("{addr}/api/integrations/whatsapp");
                let (status, body) =
                    post_json(&http, &format!("{base}/toggle"), &token, &json!({})).await?;
                if status != StatusCode::OK {
                    bail!("toggle: {status} {body}");
                }
                wait_http_state(&http, &base, &token, "qr").await?;
                let (status, body) =
                    post_json(&http, &format!("{base}/simulate/scan"), &token, &json!({})).await?;
                if status != StatusCode::ACCEPTED {
                    bail!("scan: {status} {body}");
                }
                wait_http_state(&http, &base, &token, "connected").await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn unlink_over_http(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<()> {
    for account in accounts {
        let base = format!("{addr}/api/integrations/whatsapp");
        let (status, body) = post_json(
            http,
            &format!("{base}/simulate/unlink"),
            &account.token,
            &json!({}),
        )
        .await?;
        if !status.is_success() {
            bail!("unlink: {status} {body}");
        }
        wait_http_state(http, &base, &account.token, "logged_out").await?;
    }
    Ok(())
}

async fn wait_http_state(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    wanted: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(http, &format!("{base}/status"), token).await?;
        if status["state"] == wanted {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("session did not reach {wanted}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---- bare SQLite baselines ---------------------------------------------------------------------

const TENANT_SCHEMA: [&str; 3] = [
    include_str!("../migrations/tenant/V1__meta.sql"),
    include_str!("../migrations/tenant/V2__chat.sql"),
    include_str!("../migrations/tenant/V3__newest_message.sql"),
];

/// What `store::insert_message` does after each insert: the newest message's rowid, the
/// conversation list's snapshot.
fn note_newest_message(tx: &Connection) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE tenant_meta SET value = ?1 WHERE key = 'newest_message'")?
        .execute([tx.last_insert_rowid()])?;
    Ok(())
}

/// A tenant-shaped file opened as the server opens one (`aezen::db::open_connection`: its
/// pragmas, its default `FileLock::Exclusive`), with its
/// schema and `conversations` conversations.
fn bare_file(path: &Path, conversations: usize) -> anyhow::Result<(Connection, Vec<String>)> {
    let conn = aezen::db::open_connection(path, Durability::Normal, FileLock::Exclusive, true)?;
    for sql in TENANT_SCHEMA {
        conn.execute_batch(sql)?;
    }
    let now = Utc::now().timestamp_millis();
    let mut ids = Vec::with_capacity(conversations);
    for c in 0..conversations {
        let id = uuid::Uuid::now_v7().to_string();
        conn.execute(
            "INSERT INTO conversation (id, contact_number, contact_name, activity_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, contact_number(0, c), format!("Contact {c}"), now],
        )?;
        ids.push(id);
    }
    Ok((conn, ids))
}

const CONVERSATION_COLUMNS: &str = "id, contact_name, contact_number, platform, last_message, \
     last_message_at, unread_count, created_at, activity_at";

type ConversationRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn conversation_tuple(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

/// The event payload the bare loops write: the same shape and size as the application's.
fn bare_payload(
    message_id: &str,
    conversation: &ConversationRow,
    content: &str,
    sender: &str,
    status: &str,
) -> String {
    json!({
        "message": {
            "id": message_id, "conversationId": conversation.0, "content": content,
            "sender": sender, "type": "text", "status": status, "isRead": sender == "agent",
            "whatsappId": null, "authorId": null, "createdAt": Utc::now(),
        },
        "conversation": {
            "id": conversation.0, "contactName": conversation.1, "contactNumber": conversation.2,
            "platform": conversation.3, "lastMessage": conversation.4,
            "lastMessageAt": conversation.5, "unreadCount": conversation.6,
            "createdAt": conversation.7,
        },
    })
    .to_string()
}

/// The bare rusqlite baselines: one transaction per message on one file, one thread, with
/// the application's pragmas and schema; runnable in slices.
struct BareLoop {
    conn: Connection,
    kind: BareKind,
    conversations: Vec<String>,
    author: String,
    n: u64,
}

#[derive(Clone, Copy)]
enum BareKind {
    /// Row 2: insert the message (`pending`), update the conversation, append the event.
    Send,
    /// Row 3: redelivery check, conversation found (or created) by number among `contacts`,
    /// message inserted, conversation updated, event appended.
    Ingest { contacts: usize },
}

impl BareLoop {
    fn new(path: &Path, kind: BareKind) -> anyhow::Result<Self> {
        let conversations = match kind {
            BareKind::Send => 200,
            BareKind::Ingest { .. } => 0,
        };
        let (conn, conversations) = bare_file(path, conversations)?;
        Ok(Self {
            conn,
            kind,
            conversations,
            author: uuid::Uuid::now_v7().to_string(),
            n: 0,
        })
    }

    /// Runs for `duration` on a blocking thread; the loop comes back for the next slice.
    async fn slice(mut self, duration: Duration) -> anyhow::Result<(Self, Load)> {
        tokio::task::spawn_blocking(move || {
            let mark = CpuMark::now(None);
            let mut load = Load::default();
            let start = Instant::now();
            while start.elapsed() < duration {
                let t0 = Instant::now();
                match self.kind {
                    BareKind::Send => self.send()?,
                    BareKind::Ingest { contacts } => self.ingest(contacts)?,
                }
                self.n += 1;
                load.ok += 1;
                load.latencies.push(micros(t0));
            }
            load.elapsed = start.elapsed();
            mark.close(&mut load);
            Ok((self, load))
        })
        .await?
    }

    fn send(&mut self) -> anyhow::Result<()> {
        let n = self.n;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let conversation = &self.conversations[n as usize % self.conversations.len()];
        let id = uuid::Uuid::now_v7().to_string();
        let content = format!("Reply {n} from the team, thanks for writing!");
        let now = Utc::now().timestamp_millis();
        tx.prepare_cached(
            "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at)
             VALUES (?1, ?2, ?3, 'agent', 'text', 'pending', 1, NULL, ?4, ?5)",
        )?
        .execute(params![id, conversation, content, self.author, now])?;
        note_newest_message(&tx)?;
        let row = tx
            .prepare_cached(&format!(
                "UPDATE conversation SET last_message = ?2, last_message_at = ?3,
                 activity_at = max(activity_at, ?3) WHERE id = ?1 RETURNING {CONVERSATION_COLUMNS}"
            ))?
            .query_row(params![conversation, content, now], conversation_tuple)?;
        let payload = bare_payload(&id, &row, &content, "agent", "pending");
        let _seq: i64 = tx
            .prepare_cached(
                "INSERT INTO event (type, payload, created_at) VALUES ('message_sent', ?1, ?2) RETURNING seq",
            )?
            .query_row(params![payload, now], |r| r.get(0))?;
        tx.commit()?;
        Ok(())
    }

    fn ingest(&mut self, contacts: usize) -> anyhow::Result<()> {
        let n = self.n;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let wa_id = format!("BARE-IN-{n}");
        let number = contact_number(1, n as usize % contacts);
        let content = format!("Incoming message {n}, hello there!");
        let now = Utc::now().timestamp_millis();
        let exists = tx
            .prepare_cached("SELECT 1 FROM message WHERE wa_id = ?1")?
            .exists([&wa_id])?;
        if !exists {
            let found: Option<String> = tx
                .prepare_cached("SELECT id FROM conversation WHERE contact_number = ?1")?
                .query_row([&number], |r| r.get(0))
                .ok();
            let conversation = match found {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::now_v7().to_string();
                    tx.prepare_cached(
                        "INSERT INTO conversation (id, contact_number, contact_name, activity_at, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                    )?
                    .execute(params![id, number, "Contact", now])?;
                    id
                }
            };
            let id = uuid::Uuid::now_v7().to_string();
            tx.prepare_cached(
                "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at)
                 VALUES (?1, ?2, ?3, 'user', 'text', 'delivered', 0, ?4, NULL, ?5)",
            )?
            .execute(params![id, conversation, content, wa_id, now])?;
            note_newest_message(&tx)?;
            let row = tx
                .prepare_cached(&format!(
                    "UPDATE conversation SET last_message = ?2, last_message_at = ?3,
                     activity_at = max(activity_at, ?3), unread_count = unread_count + 1
                     WHERE id = ?1 RETURNING {CONVERSATION_COLUMNS}"
                ))?
                .query_row(params![conversation, content, now], conversation_tuple)?;
            let payload = bare_payload(&id, &row, &content, "user", "delivered");
            let _seq: i64 = tx
                .prepare_cached(
                    "INSERT INTO event (type, payload, created_at) VALUES ('incoming_message', ?1, ?2) RETURNING seq",
                )?
                .query_row(params![payload, now], |r| r.get(0))?;
        }
        tx.commit()?;
        Ok(())
    }
}

// ---- Socket.IO fan-out ------------------------------------------------------------------------

struct FanShared {
    base: Instant,
    /// Deliveries per message number.
    received: Vec<AtomicU32>,
    latencies: Mutex<Vec<u32>>,
    connected: AtomicUsize,
    refused: AtomicUsize,
    strays: AtomicU64,
}

struct Fanout {
    messages: u64,
    http_errors: u64,
    expected: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    latencies: Vec<u32>,
    http_latencies: Vec<u32>,
    connected: usize,
    sender_lag_ms: f64,
    /// `incoming_message` events whose content was not one of ours.
    strays: u64,
}

fn first_value(payload: rust_socketio::Payload) -> Value {
    match payload {
        rust_socketio::Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        _ => Value::Null,
    }
}

/// Connects `sockets` Socket.IO clients spread over `accounts` (round robin), then sends
/// `rate` simulated incoming messages per second for `time` (open loop, round robin over the
/// tenants) and measures, for every delivery to every socket of the tenant, the time from the
/// moment the ingest request was sent to the moment the client parsed the event.
async fn fanout(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
    sockets: usize,
    rate: usize,
    time: Duration,
) -> anyhow::Result<Fanout> {
    use rust_socketio::asynchronous::{Client, ClientBuilder};
    use rust_socketio::{Event, Payload, TransportType};

    let total = (rate as f64 * time.as_secs_f64()) as usize;
    let shared = Arc::new(FanShared {
        base: Instant::now(),
        received: (0..total).map(|_| AtomicU32::new(0)).collect(),
        latencies: Mutex::new(Vec::with_capacity(total * sockets / accounts.len().max(1))),
        connected: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        strays: AtomicU64::new(0),
    });
    let per_tenant: Vec<AtomicU32> = accounts.iter().map(|_| AtomicU32::new(0)).collect();
    let per_tenant = Arc::new(per_tenant);

    let clients: Vec<Option<Client>> = futures::stream::iter(0..sockets)
        .map(|s| {
            let shared = Arc::clone(&shared);
            let per_tenant = Arc::clone(&per_tenant);
            let ti = s % accounts.len();
            let token = accounts[ti].token.to_string();
            let addr = addr.to_owned();
            async move {
                let on_event = {
                    let shared = Arc::clone(&shared);
                    move |event: Event, payload: Payload, _: Client| -> BoxFuture<'static, ()> {
                        if event.to_string() == "incoming_message" {
                            let now = shared.base.elapsed().as_micros();
                            let value = first_value(payload);
                            let parsed = value["message"]["content"].as_str().and_then(|c| {
                                let mut parts = c.split(' ');
                                let _tag = parts.next()?;
                                let k: usize = parts.next()?.parse().ok()?;
                                let sent: u128 = parts.next()?.parse().ok()?;
                                Some((k, sent))
                            });
                            match parsed {
                                Some((k, sent)) if k < shared.received.len() => {
                                    shared.received[k].fetch_add(1, Ordering::Relaxed);
                                    let lat =
                                        u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX);
                                    shared
                                        .latencies
                                        .lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .push(lat);
                                }
                                _ => {
                                    shared.strays.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        async {}.boxed()
                    }
                };
                let on_connect = {
                    let (shared, per_tenant) = (Arc::clone(&shared), Arc::clone(&per_tenant));
                    move |_: Payload, _: Client| -> BoxFuture<'static, ()> {
                        shared.connected.fetch_add(1, Ordering::Relaxed);
                        per_tenant[ti].fetch_add(1, Ordering::Relaxed);
                        async {}.boxed()
                    }
                };
                let on_error = {
                    let shared = Arc::clone(&shared);
                    move |_: Payload, _: Client| -> BoxFuture<'static, ()> {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                        async {}.boxed()
                    }
                };
                let connect = ClientBuilder::new(addr)
                    .namespace("/")
                    .auth(json!({ "token": token }))
                    .reconnect(false)
                    .transport_type(TransportType::Websocket)
                    .on(Event::Connect, on_connect)
                    .on(Event::Error, on_error)
                    .on_any(on_event)
                    .connect();
                tokio::time::timeout(Duration::from_secs(30), connect)
                    .await
                    .ok()?
                    .ok()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.connected.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed)
        < sockets
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);

    // Open-loop sender: message k is due at k / rate seconds.
    let in_flight = Arc::new(Semaphore::new(512));
    let http_lat = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let ok_flags: Arc<Vec<AtomicBool>> =
        Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let http_errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        let ti = k % accounts.len();
        let token = Arc::clone(&accounts[ti].token);
        let (http, url) = (
            http.clone(),
            format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        );
        let (shared, http_lat, ok_flags, http_errors) = (
            Arc::clone(&shared),
            Arc::clone(&http_lat),
            Arc::clone(&ok_flags),
            Arc::clone(&http_errors),
        );
        tasks.spawn(async move {
            let sent = shared.base.elapsed().as_micros();
            let t0 = Instant::now();
            let body = json!({
                "from": contact_number(ti, 9_999),
                "pushName": "Fan-out",
                "content": format!("fanout {k} {sent}"),
            });
            let result = http.post(url).bearer_auth(&*token).json(&body).send().await;
            let ok = match result {
                Ok(res) => res.status() == StatusCode::CREATED && res.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                ok_flags[k].store(true, Ordering::Relaxed);
                http_lat
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                http_errors.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}

    let expected_for = |k: usize| -> u64 {
        if ok_flags[k].load(Ordering::Relaxed) {
            u64::from(per_tenant[k % accounts.len()].load(Ordering::Relaxed))
        } else {
            0
        }
    };
    let expected: u64 = (0..total).map(expected_for).sum();
    let grace = Instant::now() + Duration::from_secs(5);
    loop {
        let delivered: u64 = shared
            .received
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        if delivered >= expected || Instant::now() > grace {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut delivered, mut lost, mut duplicates) = (0, 0, 0);
    for k in 0..total {
        let got = u64::from(shared.received[k].load(Ordering::Relaxed));
        let want = expected_for(k);
        delivered += got;
        lost += want.saturating_sub(got);
        duplicates += got.saturating_sub(want);
    }
    let disconnects = clients.iter().flatten().map(|c| {
        let c = c.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
        }
    });
    futures::future::join_all(disconnects).await;
    let latencies = std::mem::take(
        &mut *shared
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let http_latencies = std::mem::take(
        &mut *http_lat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(Fanout {
        messages: total as u64,
        http_errors: http_errors.load(Ordering::Relaxed),
        expected,
        delivered,
        lost,
        duplicates,
        latencies,
        http_latencies,
        connected,
        sender_lag_ms: max_lag.as_secs_f64() * 1000.0,
        strays: shared.strays.load(Ordering::Relaxed),
    })
}

// ---- the report --------------------------------------------------------------------------------

struct Line {
    row: &'static str,
    what: String,
    aezen: String,
    baseline: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    lines: Vec<Line>,
    details: Vec<String>,
    background: String,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        row: &'static str,
        what: impl Into<String>,
        aezen: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.lines.push(Line {
            row,
            what: what.into(),
            aezen: aezen.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            target: target.into(),
            met,
        });
    }

    fn detail(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("    {text}");
        self.details.push(text);
    }

    fn print(&self, options: &Options, started: Instant) {
        println!(
            "\n## AEZEN benchmark ({})\n",
            if options.quick { "quick" } else { "full" }
        );
        println!("| # | what | AEZEN | baseline | ratio | target | met? |");
        println!("|---|---|---|---|---|---|---|");
        for l in &self.lines {
            let met = match l.met {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None => "—",
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                l.row, l.what, l.aezen, l.baseline, l.ratio, l.target, met
            );
        }
        println!("\n### Details\n");
        for d in &self.details {
            println!("- {d}");
        }
        println!("\n### Run\n");
        println!("- machine: {}", machine());
        println!(
            "- command: `cargo bench --bench aezen{}`",
            match (options.quick, &options.rows) {
                (true, None) => " -- --quick".to_owned(),
                (false, None) => String::new(),
                (q, Some(rows)) => format!(
                    " --{} --rows {}",
                    if q { " --quick" } else { "" },
                    rows.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        );
        println!("- revision: {}", git_revision());
        println!("- background load: {}", self.background);
        println!("- wall time: {:.0} s", started.elapsed().as_secs_f64());
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".to_owned()
    }
}

fn per_sec(x: f64) -> String {
    format!("{x:.0}/s")
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.1} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores (nproc), {model}, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn git_revision() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            let branch = run(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_default();
            format!("{rev}{} ({branch})", if dirty { "-dirty" } else { "" })
        }
        None => "unknown (not a git checkout)".to_owned(),
    }
}

fn step(text: &str) {
    eprintln!("[aezen-bench] {text}");
}

// ---- the benchmark -------------------------------------------------------------------------------

/// Figures later rows compare with.
#[derive(Default)]
struct Shared {
    hot_rps: Option<f64>,
}

async fn bench(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let scale = Scale::new(options.quick);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let tmp = tempfile::Builder::new().prefix("aezen-bench-").tempdir()?;
    step(&format!("working in {}", tmp.path().display()));
    let http = client();
    let mut report = Report::default();
    let mut shared = Shared::default();
    // Other work on the machine skews every figure; say how much there was.
    let idle = {
        let mut quiet = Load::default();
        let mark = CpuMark::now(None);
        tokio::time::sleep(Duration::from_secs(1)).await;
        quiet.elapsed = Duration::from_secs(1);
        mark.close(&mut quiet);
        quiet.other_cpu()
    };
    report.background = format!(
        "other processes used {:.0}% of a core in the second before the run (figures are from a shared machine when this is high; \
         each row's \"other processes\" CPU is in the details)",
        idle.as_secs_f64() * 100.0
    );

    if [1, 2, 7].iter().any(|&r| options.wants(r)) {
        inbox_rows(
            &options,
            &scale,
            tmp.path(),
            &http,
            &mut report,
            &mut shared,
        )
        .await?;
    }
    if options.wants(3) {
        ingest_row(&scale, tmp.path(), &http, &mut report).await?;
    }
    if [4, 5, 6].iter().any(|&r| options.wants(r)) {
        many_tenant_rows(&options, &scale, tmp.path(), &http, &mut report, &shared).await?;
    }
    if options.wants(8) {
        real_client_memory_row(&scale, tmp.path(), &mut report)?;
    }
    report.print(&options, started);
    if std::env::var_os("AEZEN_BENCH_KEEP").is_some() {
        step(&format!("kept {}", tmp.keep().display()));
    }
    Ok(())
}

/// Rows 1, 2 and 7: 100 tenants × 200 conversations on a server process.
async fn inbox_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    shared: &mut Shared,
) -> anyhow::Result<()> {
    let root = tmp.join("inbox");
    step(&format!(
        "preparing {} tenants × {} conversations (in process, through the app's functions)",
        scale.tenants, scale.conversations
    ));
    let t = Instant::now();
    let app = InProcess::start(&root, 256).await?;
    let accounts = create_tenants(&app.state, scale.tenants, "inbox").await?;
    let created = t.elapsed();
    add_conversations(&app.state, &accounts, scale.conversations).await?;
    app.stop().await;
    report.detail(format!(
        "set-up: {} tenants signed up in {:.1} s, {} conversations ingested in {:.1} s",
        scale.tenants,
        created.as_secs_f64(),
        scale.tenants * scale.conversations,
        (t.elapsed() - created).as_secs_f64()
    ));

    let root_s = root.to_str().context("utf-8 path")?;
    let sessions = root.join("sessions");
    let server = Proc::spawn(
        &[
            "--serve",
            root_s,
            "256",
            sessions.to_str().context("utf-8")?,
        ],
        tmp,
        "inbox-server",
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;

    // What the baseline serves: a page AEZEN answered, and AEZEN's incoming_message shape.
    let page = http
        .get(format!("{addr}/api/conversations?limit=50"))
        .bearer_auth(&*accounts[0].token)
        .send()
        .await?
        .bytes()
        .await?;
    let page_json: Value = serde_json::from_slice(&page)?;
    let (status, sample) = post_json(
        http,
        &format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        &accounts[0].token,
        &json!({"from": contact_number(0, 0), "pushName": "Contact 0", "content": "sample"}),
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!("simulate/incoming: {status} {sample}");
    }
    let event = json!({
        "seq": 1, "type": "incoming_message", "createdAt": Utc::now(),
        "message": sample["message"], "conversation": page_json["items"][0],
    });
    let page_file = tmp.join("page.json");
    let event_file = tmp.join("event.json");
    std::fs::write(&page_file, &page)?;
    std::fs::write(&event_file, serde_json::to_vec(&event)?)?;
    let bare = Proc::spawn(
        &[
            "--bare",
            page_file.to_str().context("utf-8")?,
            event_file.to_str().context("utf-8")?,
        ],
        tmp,
        "bare",
    )?;
    report.detail(format!(
        "row 1 page: {} bytes, {} conversations",
        page.len(),
        page_json["items"].as_array().map_or(0, Vec::len)
    ));

    if options.wants(1) {
        step("row 1: hot GET /api/conversations?limit=50");
        let tokens: Arc<Vec<Arc<str>>> =
            Arc::new(accounts.iter().map(|a| Arc::clone(&a.token)).collect());
        let make_for = |base: String| -> MakeRequest {
            let tokens = Arc::clone(&tokens);
            Arc::new(move |c: &reqwest::Client, i: u64| {
                c.get(format!("{base}/api/conversations?limit=50"))
                    .bearer_auth(&*tokens[i as usize % tokens.len()])
            })
        };
        let aezen_side = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: make_for(addr.clone()),
        };
        let bare_side = Side {
            expect: StatusCode::OK,
            pid: Some(bare.pid),
            make: make_for(bare.addr.clone()),
        };
        let (hot, bare_load) = interleaved(http, scale, &aezen_side, &bare_side).await;
        profile(
            options,
            http,
            scale,
            server.pid,
            "row1-hot-list",
            &aezen_side,
        )
        .await;
        let r = hot.rate() / bare_load.rate();
        report.line(
            "1",
            "hot `GET /api/conversations?limit=50`, 100 tenants × 200 conv., 64 conn.: throughput",
            per_sec(hot.rate()),
            format!("{} (bare axum, same bytes)", per_sec(bare_load.rate())),
            ratio(hot.rate(), bare_load.rate()),
            "≥ 0.30×",
            Some(r >= 0.30),
        );
        report.line(
            "1",
            "… p50 latency",
            ms(hot.p(0.50)),
            ms(bare_load.p(0.50)),
            ratio(hot.p(0.50), bare_load.p(0.50)),
            "—",
            None,
        );
        report.line(
            "1",
            "… p99 latency",
            ms(hot.p(0.99)),
            ms(bare_load.p(0.99)),
            ratio(hot.p(0.99), bare_load.p(0.99)),
            "—",
            None,
        );
        report.line(
            "1",
            "… errors",
            hot.errors.to_string(),
            bare_load.errors.to_string(),
            "—",
            "0",
            Some(hot.errors == 0),
        );
        describe_load(report, "row 1 AEZEN", &hot);
        describe_load(report, "row 1 bare axum", &bare_load);
        shared.hot_rps = Some(hot.rate());
    }

    if options.wants(2) {
        step("row 2: POST /api/conversations/:id/send (acknowledged, pending)");
        // Every tenant's conversation ids; request i goes to tenant i % 100.
        let mut per: Vec<Vec<(Arc<str>, String)>> = Vec::with_capacity(accounts.len());
        for account in &accounts {
            let page = get_json(
                http,
                &format!("{addr}/api/conversations?limit=200"),
                &account.token,
            )
            .await?;
            per.push(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| {
                        Some((Arc::clone(&account.token), item["id"].as_str()?.to_owned()))
                    })
                    .collect(),
            );
        }
        let per = Arc::new(per);
        let make_send = |base: String| -> MakeRequest {
            let per = Arc::clone(&per);
            Arc::new(move |c: &reqwest::Client, i: u64| {
                let tenant = &per[i as usize % per.len()];
                let (token, id) = &tenant[(i as usize / per.len()) % tenant.len()];
                c.post(format!("{base}/api/conversations/{id}/send"))
                    .bearer_auth(&**token)
                    .json(&json!({"content": format!("Reply {i} from the team, thanks for writing!")}))
            })
        };
        let t = Instant::now();
        link_over_http(http, &addr, &accounts).await?;
        report.detail(format!(
            "row 2: {} tenants linked over HTTP in {:.1} s",
            accounts.len(),
            t.elapsed().as_secs_f64()
        ));
        let side = Side {
            expect: StatusCode::CREATED,
            pid: Some(server.pid),
            make: make_send(addr.clone()),
        };
        let bare_loop = BareLoop::new(&tmp.join("bare-send.db"), BareKind::Send)?;
        let (linked, bare_load, settled, bare_loop) =
            against_bare_loop(http, scale, &side, &server, bare_loop).await?;
        profile(options, http, scale, server.pid, "row2-send", &side).await;
        wait_idle(&server, Duration::from_secs(60)).await;
        let (pending_left, sampled) =
            pending_messages(http, &addr, &accounts[..5.min(accounts.len())]).await?;
        let bare_rate = bare_load.rate();
        let r = linked.rate() / bare_rate;
        report.line("2", "`POST …/send` acknowledged (201, stored `pending`), 100 tenants, sessions linked, 64 conn.",
            per_sec(linked.rate()), format!("{} (bare rusqlite, 1 tx/msg, 1 file)", per_sec(bare_rate)),
            ratio(linked.rate(), bare_rate), "≥ 0.40×", Some(r >= 0.40));
        let sustained = linked.ok as f64 / (linked.elapsed + settled).as_secs_f64();
        report.line(
            "2",
            "… sustained: acknowledged and sent by the outbox (load time + drain time)",
            per_sec(sustained),
            per_sec(bare_rate),
            ratio(sustained, bare_rate),
            "(info)",
            None,
        );
        report.line(
            "2",
            "… p99 latency / errors",
            format!("{} / {}", ms(linked.p(0.99)), linked.errors),
            "—",
            "—",
            "0 errors",
            Some(linked.errors == 0),
        );
        describe_load(report, "row 2 AEZEN (linked)", &linked);
        describe_load(report, "row 2 bare rusqlite", &bare_load);
        report.detail(format!(
            "row 2: after its load slices the outbox needed {:.1} s in all to go idle; then {pending_left} of {sampled} \
             sampled messages (5 tenants' 5 newest conversations) were still `pending`",
            settled.as_secs_f64()
        ));

        // The same load with every session down: the outbox has nothing to send.
        unlink_over_http(http, &addr, &accounts).await?;
        let (unlinked, bare_load2, _, _) =
            against_bare_loop(http, scale, &side, &server, bare_loop).await?;
        report.line(
            "2",
            "… same, sessions down (outbox has nothing to send)",
            per_sec(unlinked.rate()),
            per_sec(bare_load2.rate()),
            ratio(unlinked.rate(), bare_load2.rate()),
            "(info)",
            None,
        );
        describe_load(report, "row 2 AEZEN (sessions down)", &unlinked);
        describe_load(report, "row 2 bare rusqlite (second pass)", &bare_load2);
    }

    if options.wants(7) {
        step(&format!(
            "row 7: fan-out to {} Socket.IO clients, {} msg/s",
            scale.sockets, scale.fanout_rate
        ));
        let (rss_before, _) = server.memory();
        let aezen_fan = fanout(
            http,
            &addr,
            &accounts,
            scale.sockets,
            scale.fanout_rate,
            scale.fanout_time,
        )
        .await?;
        let (rss_after, _) = server.memory();
        report.detail(format!(
            "row 7: server RSS {} before the sockets connected, {} after the fan-out (sockets closed)",
            mib(rss_before), mib(rss_after)
        ));
        let bare_fan = fanout(
            http,
            &bare.addr,
            &accounts,
            scale.sockets,
            scale.fanout_rate,
            scale.fanout_time,
        )
        .await?;
        let p99 = percentile_ms(&aezen_fan.latencies, 0.99);
        let bare_p99 = percentile_ms(&bare_fan.latencies, 0.99);
        report.line("7", format!("`incoming_message` fan-out, {} sockets / {} tenants, {} msg/s: p99 ingest request → client",
            aezen_fan.connected, accounts.len(), scale.fanout_rate),
            ms(p99), format!("{} (bare socketioxide broadcast)", ms(bare_p99)), ratio(p99, bare_p99), "≤ 50 ms", Some(p99 <= 50.0));
        report.line(
            "7",
            "… lost deliveries (of expected)",
            format!("{} of {}", aezen_fan.lost, aezen_fan.expected),
            format!("{} of {}", bare_fan.lost, bare_fan.expected),
            "—",
            "0",
            Some(aezen_fan.lost == 0 && aezen_fan.http_errors == 0),
        );
        for (name, f) in [("AEZEN", &aezen_fan), ("bare", &bare_fan)] {
            report.detail(format!(
                "row 7 {name}: {} sockets connected, {} messages ({} HTTP errors), {} deliveries expected, {} delivered, {} lost, {} duplicates, {} unrecognised; \
                 delivery p50 {} / p99 {} / max {}; HTTP ack p50 {} / p99 {}; sender lag max {:.1} ms",
                f.connected, f.messages, f.http_errors, f.expected, f.delivered, f.lost, f.duplicates, f.strays,
                ms(percentile_ms(&f.latencies, 0.5)), ms(percentile_ms(&f.latencies, 0.99)), ms(percentile_ms(&f.latencies, 1.0)),
                ms(percentile_ms(&f.http_latencies, 0.5)), ms(percentile_ms(&f.http_latencies, 0.99)), f.sender_lag_ms
            ));
        }
    }

    let (rss, hwm) = server.memory();
    report.detail(format!(
        "inbox server at the end: RSS {} ({}; peak {}), {} open files, {} threads",
        mib(rss),
        rss_breakdown(server.pid),
        mib(hwm),
        server.open_files(),
        server.threads()
    ));
    drop(bare);
    let log = server.stop();
    log_detail(report, "inbox server", &log);
    Ok(())
}

fn describe_load(report: &mut Report, name: &str, l: &Load) {
    report.detail(format!(
        "{name}: {} ok, {} errors in {:.1} s; p50 {} p90 {} p99 {} max {}; CPU (% of one core): server {:.0}%, this process {:.0}%, other processes {:.0}%; server CPU per request {:.0} µs{}",
        l.ok,
        l.errors,
        l.elapsed.as_secs_f64(),
        ms(l.p(0.5)),
        ms(l.p(0.9)),
        ms(l.p(0.99)),
        ms(l.p(1.0)),
        100.0 * l.server_cpu.as_secs_f64() / l.elapsed.as_secs_f64(),
        100.0 * l.client_cpu.as_secs_f64() / l.elapsed.as_secs_f64(),
        100.0 * l.other_cpu().as_secs_f64() / l.elapsed.as_secs_f64(),
        l.server_cpu.as_secs_f64() * 1e6 / l.ok.max(1) as f64,
        if l.error_samples.is_empty() { String::new() } else { format!("; errors: {:?}", l.error_samples) }
    ));
}

fn log_detail(report: &mut Report, name: &str, log: &LogSummary) {
    report.detail(format!(
        "{name} log: {} warnings, {} errors{}",
        log.warnings,
        log.errors,
        if log.samples.is_empty() {
            String::new()
        } else {
            format!(": {:?}", log.samples)
        }
    ));
}

/// Messages still `pending` in the newest conversations of some tenants, and how many were looked at.
async fn pending_messages(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<(usize, usize)> {
    let (mut pending, mut seen) = (0, 0);
    for account in accounts {
        let page = get_json(
            http,
            &format!("{addr}/api/conversations?limit=5"),
            &account.token,
        )
        .await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or_default();
            let messages = get_json(
                http,
                &format!("{addr}/api/conversations/{id}/messages?limit=200"),
                &account.token,
            )
            .await?;
            for m in messages["items"].as_array().into_iter().flatten() {
                seen += 1;
                if m["status"] == "pending" {
                    pending += 1;
                }
            }
        }
    }
    Ok((pending, seen))
}

/// Waits until the server process uses less than 5% of a core over 200 ms.
async fn wait_idle(server: &Proc, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let before = server.cpu();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let used = server.cpu().saturating_sub(before);
        if used <= Duration::from_millis(10) || Instant::now() > deadline {
            return;
        }
    }
}

async fn wait_healthy(
    http: &reqwest::Client,
    addr: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if let Ok(res) = http.get(format!("{addr}/api/healthz")).send().await
            && res.status() == StatusCode::OK
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{addr} not healthy within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One round of row 3: `per_tenant` incoming messages to every tenant, injected at once
/// (each tenant's in order), each acknowledged once stored.
async fn ingest_round(
    sim: &Arc<aezen::whatsapp::simulated::Simulated>,
    accounts: &[Account],
    per_tenant: usize,
    round: usize,
    contacts: usize,
) -> Load {
    let mark = CpuMark::now(None);
    let start = Instant::now();
    let parts: Vec<Load> = futures::stream::iter(accounts.iter().enumerate())
        .map(|(ti, account)| {
            let (sim, tenant) = (Arc::clone(sim), account.tenant);
            async move {
                let mut replies = Vec::with_capacity(per_tenant);
                for m in 0..per_tenant {
                    let (tx, rx) = oneshot::channel();
                    let message = IncomingMessage {
                        whatsapp_id: format!("IN-{round}-{ti}-{m}"),
                        contact_number: contact_number(ti, m % contacts),
                        push_name: Some(format!("Contact {}", m % contacts)),
                        content: format!("Incoming message {m}, hello there!"),
                        from_me: false,
                        timestamp: Utc::now(),
                    };
                    let t0 = Instant::now();
                    sim.inject(
                        tenant,
                        InboundEvent::Message {
                            message,
                            stored: Some(tx),
                        },
                    )
                    .await;
                    replies.push((t0, rx));
                }
                let mut part = Load::default();
                for (t0, rx) in replies {
                    match rx.await {
                        Ok(Ok(Ingested::Stored(_))) => {
                            part.ok += 1;
                            part.latencies.push(micros(t0));
                        }
                        Ok(Ok(Ingested::Duplicate)) => {
                            part.errors += 1;
                            if part.error_samples.is_empty() {
                                part.error_samples.push("stored as a duplicate".to_owned());
                            }
                        }
                        Ok(Err(e)) => {
                            part.errors += 1;
                            if part.error_samples.is_empty() {
                                part.error_samples.push(e.to_string());
                            }
                        }
                        Err(_) => {
                            part.errors += 1;
                            if part.error_samples.is_empty() {
                                part.error_samples
                                    .push("no answer: the batch was not stored".to_owned());
                            }
                        }
                    }
                }
                part
            }
        })
        .buffer_unordered(accounts.len())
        .collect()
        .await;
    let mut load = Load::default();
    for part in parts {
        load.absorb(part);
    }
    load.elapsed = start.elapsed();
    mark.close(&mut load);
    load
}

/// Row 3: ingest in this process, in rounds alternating with the bare loop.
async fn ingest_row(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    step(&format!(
        "row 3: ingest of {} incoming messages over {} tenants, in process",
        scale.ingest_messages, scale.tenants
    ));
    let root = tmp.join("ingest");
    let app = InProcess::start(&root, 256).await?;
    let accounts = create_tenants(&app.state, scale.tenants, "ingest").await?;
    let sim = app.state.simulated.clone().context("simulated backend")?;
    let contacts = 50;
    let rounds = scale.slices as usize;
    let per_tenant = scale.ingest_messages / accounts.len() / rounds;
    // Warm-up: every tenant's contacts exist, every pool is open.
    ingest_round(&sim, &accounts, contacts, 0, contacts).await;
    let before = metrics(http, &app.addr).await;
    let mut bare = BareLoop::new(&tmp.join("bare-ingest.db"), BareKind::Ingest { contacts })?;
    let (back, _) = bare.slice(scale.warmup).await?;
    bare = back;
    let (mut aezen, mut bare_load) = (Load::default(), Load::default());
    for round in 1..=rounds {
        aezen.absorb(ingest_round(&sim, &accounts, per_tenant, round, contacts).await);
        let (back, l) = bare.slice(scale.bare_loop / scale.slices).await?;
        bare = back;
        bare_load.absorb(l);
    }
    let after = metrics(http, &app.addr).await;
    app.stop().await;
    let delta = |name: &str| {
        after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
    };
    let events = delta("aezen_ingest_events_total");
    let transactions = delta("aezen_ingest_transactions_total");
    let (rate, bare_rate) = (aezen.rate(), bare_load.rate());
    report.line(
        "3",
        format!(
            "ingest of incoming messages, in process, {} tenants: stored/s (ack after commit)",
            accounts.len()
        ),
        per_sec(rate),
        format!("{} (bare rusqlite, 1 tx/msg, 1 file)", per_sec(bare_rate)),
        ratio(rate, bare_rate),
        "≥ 1.0×",
        Some(rate / bare_rate >= 1.0 && aezen.errors == 0),
    );
    report.line(
        "3",
        "… batch size (`aezen_ingest_events_total / aezen_ingest_transactions_total`)",
        format!("{:.1} msgs/tx", events / transactions.max(1.0)),
        "1 msg/tx",
        "—",
        "(info)",
        None,
    );
    describe_load(report, "row 3 AEZEN (inject → stored)", &aezen);
    describe_load(report, "row 3 bare rusqlite", &bare_load);
    report.detail(format!(
        "row 3: {events} events stored in {transactions} transactions"
    ));
    Ok(())
}

/// Rows 4, 5 and 6: many tenant files, a bounded pool cache, 1,000 linked session folders.
async fn many_tenant_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    shared: &Shared,
) -> anyhow::Result<()> {
    let root = tmp.join("many");
    let capacity: u64 = 256;
    step(&format!(
        "preparing {} tenants × {} conversations, {} linked session folders (in process)",
        scale.many_tenants, scale.many_conversations, scale.session_folders
    ));
    let t = Instant::now();
    let app = InProcess::start(&root, 64).await?;
    let accounts = create_tenants(&app.state, scale.many_tenants, "many").await?;
    let created = t.elapsed();
    add_conversations(&app.state, &accounts, scale.many_conversations).await?;
    let filled = t.elapsed();
    link_in_process(&app.state, &accounts[..scale.session_folders]).await?;
    app.stop().await;
    report.detail(format!(
        "set-up: {} tenants signed up in {:.1} s ({:.1} ms each), {} conversations ingested in {:.1} s, {} sessions linked in {:.1} s",
        scale.many_tenants, created.as_secs_f64(), created.as_secs_f64() * 1000.0 / scale.many_tenants as f64,
        scale.many_tenants * scale.many_conversations, (filled - created).as_secs_f64(),
        scale.session_folders, (t.elapsed() - filled).as_secs_f64()
    ));
    let root_s = root.to_str().context("utf-8")?;
    let sessions_s = root.join("sessions");
    let sessions_s = sessions_s.to_str().context("utf-8")?;
    let cap_s = capacity.to_string();

    // Row 6: spawn → healthz 200, against the same binary on an empty data dir.
    let empty = tmp.join("empty");
    let empty_s = empty.to_str().context("utf-8")?;
    let empty_sessions = empty.join("sessions");
    let mut empty_times = Vec::new();
    let mut full_times = Vec::new();
    // The first start creates the registry and the token secret; the measured ones find them.
    for run in 0..=scale.startup_runs {
        let proc = Proc::spawn(
            &[
                "--serve",
                empty_s,
                &cap_s,
                empty_sessions.to_str().context("utf-8")?,
            ],
            tmp,
            &format!("empty-{run}"),
        )?;
        if run == 0 {
            wait_healthy(http, &proc.addr, Duration::from_secs(30)).await?;
            proc.stop();
            continue;
        }
        wait_healthy(http, &proc.addr, Duration::from_secs(30)).await?;
        empty_times.push(proc.spawned.elapsed());
        proc.stop();
    }
    let mut server = None;
    for run in 0..scale.startup_runs {
        let proc = Proc::spawn(
            &["--serve", root_s, &cap_s, sessions_s],
            tmp,
            &format!("many-{run}"),
        )?;
        wait_healthy(http, &proc.addr, Duration::from_secs(30)).await?;
        full_times.push(proc.spawned.elapsed());
        if run + 1 == scale.startup_runs {
            server = Some(proc);
        } else {
            proc.stop();
        }
    }
    let server = server.context("a server")?;
    let addr = server.addr.clone();
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (start_ms, empty_ms) = (median(&mut full_times), median(&mut empty_times));
    if options.wants(6) {
        report.line("6", format!("start-up with {} tenants, {} linked session folders: spawn → `GET /api/healthz` 200 (median of {})",
            scale.many_tenants, scale.session_folders, scale.startup_runs),
            ms(start_ms), format!("{} (same binary, 0 tenants)", ms(empty_ms)), ratio(start_ms, empty_ms), "≤ 1000 ms", Some(start_ms <= 1000.0));
        report.detail(format!(
            "row 6: start-up runs {:?} ms; with 0 tenants {:?} ms",
            full_times.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            empty_times
                .iter()
                .map(|d| d.as_millis())
                .collect::<Vec<_>>()
        ));
    }
    // The background session resume: every linked tenant reports `connected`.
    let resume_start = server.spawned;
    let linked = &accounts[..scale.session_folders];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pending: Vec<&Account> = linked.iter().collect();
    while !pending.is_empty() && Instant::now() < deadline {
        let states: Vec<bool> = futures::stream::iter(pending.iter())
            .map(|a| {
                let http = http.clone();
                let url = format!("{addr}/api/integrations/whatsapp/status");
                let token = Arc::clone(&a.token);
                async move {
                    get_json(&http, &url, &token)
                        .await
                        .is_ok_and(|s| s["state"] == "connected")
                }
            })
            .buffered(16)
            .collect()
            .await;
        pending = pending
            .into_iter()
            .zip(states)
            .filter(|(_, ok)| !ok)
            .map(|(a, _)| a)
            .collect();
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    report.detail(format!(
        "row 6: {} of {} linked sessions were `connected` {:.1} s after spawn (background resume)",
        linked.len() - pending.len(),
        linked.len(),
        resume_start.elapsed().as_secs_f64()
    ));
    wait_idle(&server, Duration::from_secs(30)).await;
    let (rss_start, _) = server.memory();
    let fds_start = server.open_files();

    if options.wants(4) {
        step("row 4: first request to uncached tenants vs hot");
        let cold: Vec<&Account> = accounts[scale.session_folders..]
            .iter()
            .take(scale.uncached_samples)
            .collect();
        let opens_before = metrics(http, &addr)
            .await
            .get("aezen_tenant_opens_total")
            .copied()
            .unwrap_or(0.0);
        let cold_load = one_at_a_time(http, &addr, &cold, server.pid).await;
        let opens_after = metrics(http, &addr)
            .await
            .get("aezen_tenant_opens_total")
            .copied()
            .unwrap_or(0.0);
        if std::env::var_os("AEZEN_BENCH_DEBUG").is_some() {
            eprintln!(
                "uncached latencies in order (µs): {:?}",
                cold_load.latencies
            );
        }
        // Hot: the last 50 of them, now cached, asked as many times again.
        let hot_set = &cold[cold.len().saturating_sub(50)..];
        let hot_order: Vec<&Account> = (0..cold.len())
            .map(|i| hot_set[i % hot_set.len()])
            .collect();
        let hot_load = one_at_a_time(http, &addr, &hot_order, server.pid).await;
        let errors = cold_load.errors + hot_load.errors;
        let (cold99, hot99) = (cold_load.p(0.99), hot_load.p(0.99));
        report.line("4", format!("first request to an uncached, existing tenant (`GET /api/tenant`, one at a time, {} tenants): p99", cold.len()),
            ms(cold99), format!("{} (same tenants, hot)", ms(hot99)), ratio(cold99, hot99), "≤ 3 ms", Some(cold99 <= 3.0 && errors == 0));
        report.detail(format!(
            "row 4: {} pools opened for {} uncached requests",
            opens_after - opens_before,
            cold.len()
        ));
        describe_load(report, "row 4 uncached", &cold_load);
        describe_load(report, "row 4 hot", &hot_load);
    }

    if options.wants(5) {
        step(&format!(
            "row 5: random tenant of {} per request, pool cache {}",
            scale.many_tenants, capacity
        ));
        let tokens: Arc<Vec<Arc<str>>> =
            Arc::new(accounts.iter().map(|a| Arc::clone(&a.token)).collect());
        let base = addr.clone();
        let random: MakeRequest = Arc::new(move |c: &reqwest::Client, i: u64| {
            // splitmix64: a fixed pseudo-random tenant sequence.
            let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            c.get(format!("{base}/api/conversations?limit=50"))
                .bearer_auth(&*tokens[(z % tokens.len() as u64) as usize])
        });
        // The row-1 scenario on this same server: 100 tenants, all cached.
        let hot_tokens: Arc<Vec<Arc<str>>> = Arc::new(
            accounts
                .iter()
                .rev()
                .take(scale.tenants)
                .map(|a| Arc::clone(&a.token))
                .collect(),
        );
        let base = addr.clone();
        let hot: MakeRequest = Arc::new(move |c: &reqwest::Client, i: u64| {
            c.get(format!("{base}/api/conversations?limit=50"))
                .bearer_auth(&*hot_tokens[i as usize % hot_tokens.len()])
        });
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (pid, sampling) = (server.pid, Arc::clone(&sampling));
            tokio::spawn(async move {
                let (mut max_fds, mut max_rss, mut max_threads) = (0, 0, 0);
                while sampling.load(Ordering::Relaxed) {
                    max_fds = max_fds.max(
                        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count),
                    );
                    max_rss = max_rss.max(proc_memory(pid).0);
                    max_threads = max_threads.max(
                        std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (max_fds, max_rss, max_threads)
            })
        };
        let opens_before = metrics(http, &addr)
            .await
            .get("aezen_tenant_opens_total")
            .copied()
            .unwrap_or(0.0);
        let random = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: random,
        };
        let (many, hot) = interleaved(
            http,
            scale,
            &random,
            &Side {
                expect: StatusCode::OK,
                pid: Some(server.pid),
                make: hot,
            },
        )
        .await;
        sampling.store(false, Ordering::Relaxed);
        let (max_fds, max_rss, max_threads) = sampler.await?;
        profile(
            options,
            http,
            scale,
            server.pid,
            "row5-random-tenant",
            &random,
        )
        .await;
        let m = metrics(http, &addr).await;
        let opens = m.get("aezen_tenant_opens_total").copied().unwrap_or(0.0) - opens_before;
        let (rss_end, hwm) = server.memory();
        let fd_limit = capacity as usize * 4 * 3 + 64;
        let rps = many.rate();
        let hot_rps = hot.rate();
        report.line("5", format!("{} tenant files, pool cache {capacity}, random tenant per request, 64 conn.: throughput", scale.many_tenants),
            per_sec(rps), format!("{} (row-1 scenario: 100 hot tenants, same server, interleaved)", per_sec(hot_rps)),
            ratio(rps, hot_rps), "≥ 0.30×", Some(rps / hot_rps >= 0.30));
        if let Some(row1) = shared.hot_rps {
            report.detail(format!(
                "row 5: random-tenant throughput is {} of row 1's own figure ({})",
                ratio(rps, row1),
                per_sec(row1)
            ));
        }
        report.line(
            "5",
            "… errors",
            many.errors.to_string(),
            "0",
            "—",
            "0",
            Some(many.errors == 0),
        );
        report.line(
            "5",
            "… server RSS (peak VmHWM over the process's life)",
            mib(hwm),
            format!("{} (same server idle after start-up)", mib(rss_start)),
            ratio(hwm as f64, rss_start as f64),
            "≤ 150 MiB",
            Some(hwm <= 150 * 1024),
        );
        report.line(
            "5",
            "… open files (max sampled every 50 ms)",
            max_fds.to_string(),
            format!("{fds_start} (idle after start-up)"),
            ratio(max_fds as f64, fds_start as f64),
            format!("≤ {fd_limit}"),
            Some(max_fds <= fd_limit),
        );
        describe_load(report, "row 5 AEZEN, random tenant", &many);
        describe_load(report, "row 5 AEZEN, 100 hot tenants", &hot);
        report.detail(format!(
            "row 5: {opens} tenant pools opened during the load ({:.0}% of all its requests, both sides), pools cached at the end {}; RSS at end {} ({}), max sampled {}; up to {max_threads} server threads",
            100.0 * opens / (many.ok + many.errors + hot.ok + hot.errors).max(1) as f64,
            m.get("aezen_tenant_pools_cached").copied().unwrap_or(f64::NAN), mib(rss_end), rss_breakdown(server.pid), mib(max_rss)
        ));
    }
    let log = server.stop();
    log_detail(report, "many-tenant server", &log);
    // After the server has stopped: with its default file lock, the files it had open were
    // closed to other processes until then.
    if options.wants(5) {
        let tenants_dir = root.join("data").join("tenants");
        let out = Command::new(std::env::current_exe()?)
            .arg("--conn-memory")
            .arg(&tenants_dir)
            .arg("200")
            .output()?;
        let figures: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(f64::NAN))
            .collect();
        let figure = |i: usize| figures.get(i).copied().unwrap_or(f64::NAN);
        report.detail(format!(
            "row 5: one open tenant connection (the app's pragmas, one 50-item page read) costs {:.0} KiB of RSS \
             (measured in a fresh process over 200 connections); the server keeps 1 to 4 per cached tenant",
            figure(0)
        ));
        report.detail(format!(
            "row 5: bare rusqlite, same process, one thread: opening a tenant file with the app's pragmas and reading \
             one 50-item page takes {:.0} µs, closing it {:.0} µs (the SQLite floor under each uncached request)",
            figure(1),
            figure(2)
        ));
    }
    Ok(())
}

/// What one tenant connection costs in bare rusqlite, outside the server.
struct ConnectionCost {
    /// RSS while open.
    kib: f64,
    /// Open with the app's pragmas (this reads the schema) and read one conversation page.
    open_us: f64,
    /// Close.
    close_us: f64,
}

/// `n` connections opened one after another with the app's pragmas, each reading one
/// conversation page, then closed (run in a fresh child: `--conn-memory`).
fn connection_memory(tenants_dir: &Path, n: usize) -> anyhow::Result<ConnectionCost> {
    let files: Vec<PathBuf> = std::fs::read_dir(tenants_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .take(n)
        .collect();
    let (before, _) = proc_memory(std::process::id());
    let mut open = Vec::with_capacity(files.len());
    let opening = Instant::now();
    for file in &files {
        let conn =
            aezen::db::open_connection(file, Durability::Normal, FileLock::Exclusive, false)?;
        let rows: Vec<String> = conn
            .prepare(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversation ORDER BY activity_at DESC, id DESC LIMIT 50"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        open.push((conn, rows));
    }
    let opened = opening.elapsed();
    let (after, _) = proc_memory(std::process::id());
    let closing = Instant::now();
    drop(open);
    let closed = closing.elapsed();
    let count = files.len().max(1) as f64;
    Ok(ConnectionCost {
        kib: after.saturating_sub(before) as f64 / count,
        open_us: opened.as_secs_f64() * 1e6 / count,
        close_us: closed.as_secs_f64() * 1e6 / count,
    })
}

/// Row 8: the idle whatsapp-rust client per tenant, measured in a fresh child
/// (`--real-clients`): the real adapter on `Network::offline()` (every connection refused at
/// once, no packet sent), one client per tenant on its own SqliteStore, idle in backoff.
fn real_client_memory_row(scale: &Scale, tmp: &Path, report: &mut Report) -> anyhow::Result<()> {
    step("row 8: idle real whatsapp-rust clients (offline network)");
    let n = scale.real_clients;
    let dir = tmp.join("real-clients");
    std::fs::create_dir_all(&dir)?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--real-clients")
        .arg(&dir)
        .arg(n.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The child bounds each of its phases; this is the overall backstop.
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("row 8: the --real-clients child did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(m) = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
    else {
        bail!(
            "row 8: the --real-clients child reported nothing ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    };
    let get = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    let (before, one, after) = (get("rss_before"), get("rss_one"), get("rss_after"));
    let per = (after - before) / n as f64;
    let marginal = (after - one) / (n as f64 - 1.0).max(1.0);
    report.line(
        "8",
        "idle real whatsapp-rust client (transport refused), memory per tenant",
        format!("{per:.0} KiB/tenant"),
        format!("{} RSS before any client", mib(before as u64)),
        "—",
        "measured and reported",
        Some(per.is_finite()),
    );
    report.detail(format!(
        "row 8: fresh child, real adapter on Network::offline(), {n} tenants each with its own SqliteStore, every one \
         `Connecting` then \"cannot reach WhatsApp\" (retrying) and idle 2 s: RSS {} before → {} after 1 client → {} \
         after {n} (VmHWM {}); {per:.0} KiB per tenant overall, {marginal:.0} KiB per client after the first; \
         open files {} → {} ({:.2} per client); threads {} → {}; connecting all took {:.1} s, \
         shutdown {:.2} s",
        mib(before as u64),
        mib(one as u64),
        mib(after as u64),
        mib(get("hwm_after") as u64),
        get("fds_before"),
        get("fds_after"),
        (get("fds_after") - get("fds_before")) / n as f64,
        get("threads_before"),
        get("threads_after"),
        get("connect_secs"),
        get("shutdown_secs"),
    ));
    Ok(())
}

/// `--real-clients <sessions-dir> <n>`: `n` idle real clients on the offline network; prints one
/// JSON line of RSS (KiB), open files and threads before and after.
async fn real_clients(dir: &Path, n: usize) -> anyhow::Result<String> {
    use aezen::whatsapp::real::{Network, RealWhatsApp};
    use aezen::whatsapp::{Inbound, LinkMethod, SessionEvent, WhatsApp};

    let fds = || std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let threads = || std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count);
    let pid = std::process::id();

    // Per tenant: saw `Connecting`, saw an unreachable report.
    let seen: Arc<Mutex<HashMap<TenantId, (bool, bool)>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Inbound>(1024);
    let drain = tokio::spawn({
        let seen = Arc::clone(&seen);
        async move {
            while let Some(inbound) = rx.recv().await {
                let mut seen = seen.lock().unwrap();
                let entry = seen.entry(inbound.tenant).or_default();
                match inbound.event {
                    InboundEvent::Session(SessionEvent::Connecting) => entry.0 = true,
                    InboundEvent::Session(SessionEvent::Disconnected {
                        reason: Some(reason),
                        retrying: true,
                    }) if reason.contains("cannot reach WhatsApp") => entry.1 = true,
                    _ => {}
                }
            }
        }
    });
    let wa = RealWhatsApp::with_network(tx, Network::offline());
    let ready = |tenants: &[TenantId]| {
        let seen = seen.lock().unwrap();
        tenants
            .iter()
            .filter(|t| seen.get(t).is_some_and(|&(c, u)| c && u))
            .count()
    };
    let wait_ready = |tenants: Vec<TenantId>, limit: Duration| {
        let ready = &ready;
        async move {
            let until = Instant::now() + limit;
            while ready(&tenants) < tenants.len() {
                if Instant::now() > until {
                    bail!(
                        "{} of {} clients reported Connecting and unreachable within {limit:?}",
                        ready(&tenants),
                        tenants.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        }
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, _) = proc_memory(pid);
    let (fds_before, threads_before) = (fds(), threads());

    let started = Instant::now();
    let mut tenants = Vec::with_capacity(n);
    let mut rss_one = rss_before;
    for i in 0..n {
        let tenant = TenantId::new();
        let folder = dir.join(tenant.to_string());
        std::fs::create_dir_all(&folder)?;
        tokio::time::timeout(
            Duration::from_secs(30),
            wa.connect(tenant, &folder, LinkMethod::Qr),
        )
        .await
        .context("connect timed out")?
        .map_err(|e| anyhow!("connect: {e:?}"))?;
        tenants.push(tenant);
        if i == 0 {
            wait_ready(tenants.clone(), Duration::from_secs(60)).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss_one = proc_memory(pid).0;
        }
    }
    wait_ready(tenants.clone(), Duration::from_secs(120)).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, hwm_after) = proc_memory(pid);
    let (fds_after, threads_after) = (fds(), threads());

    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), wa.shutdown())
        .await
        .context("shutdown did not finish within 60 s")?;
    let shutdown_secs = stopping.elapsed().as_secs_f64();
    drop(wa);
    drain.abort();
    Ok(json!({
        "n": n,
        "rss_before": rss_before,
        "rss_one": rss_one,
        "rss_after": rss_after,
        "hwm_after": hwm_after,
        "fds_before": fds_before,
        "fds_after": fds_after,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "connect_secs": connect_secs,
        "shutdown_secs": shutdown_secs,
    })
    .to_string())
}
