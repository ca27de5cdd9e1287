//! AEZEN's performance benchmark: one command that builds its own data in a temp dir, starts
//! the real server in its own process, drives it over HTTP with `wrk` (a C load generator, in
//! its own process: `apt-get install wrk`; `wrk.rs`) and over Socket.IO from this process,
//! measures a baseline for every figure in the same run, and prints a
//! markdown table.
//!
//! ```sh
//! cargo bench --bench aezen -- --quick   # < 2 min on 2 cores, every row at reduced counts
//! cargo bench --bench aezen              # full counts (10,000 tenants, 1,000 sockets)
//! cargo bench --bench aezen -- --rows 1,5  # only some rows, of 1-18 (their set-up runs as needed)
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
//! `Network::offline()`, which refuses every connection without sending a packet. Row 9
//! logs one account in 1,000 times (200 with `--quick`) from 16 clients and compares the
//! server's RSS after with its idle RSS. Row 10 holds 2,000 idle HTTP connections open (raw
//! sockets: half idle on keep-alive, half stopped mid-head), twice, and compares the RSS
//! while they are open and after they close with the idle RSS. Row 11 backs up 1,000 tenants
//! of 1 MiB (100 with `--quick`) through the server's control socket while it serves the
//! row-1 load, and compares that load's throughput with its own without a backup; then backs
//! up again, incrementally, with nothing changed. Row 12 exports a 100 MiB tenant (20 MiB
//! with `--quick`) over `GET /api/tenant/export` and through the control socket, sampling the
//! server's RSS every 25 ms. Rows 13 and 14 serve one tenant of 1,000,000 messages in 50,000
//! conversations (100,000 in 5,000 with `--quick`), written straight into its file: full-text
//! search for words of different frequencies, and the conversation list with status +
//! assignee + label filters against the unfiltered list. Row 15 delivers webhooks to a
//! receiver child (`--webhook-receiver <port-file> <max-records>`, this binary again: answers
//! every POST 200 at once and records what arrived): a backlog of 5,000 events to one endpoint
//! (1,000 with `--quick`), backlogs of 200 to each of 100 endpoints of 100 tenants (100 to 20),
//! and events at a steady 100/s for 10 s (5 s) for the commit → delivery latency. Rows 16-18
//! are media (`rows/media.rs`): one 1 MiB image requested hot against a bare handler serving
//! the same bytes (`--bare-media <port-file> <bytes-file> <content-type>`), the server's RSS
//! while a 50 MiB video streams (whole and in ranges), and 1,000 incoming 200 KiB images (600
//! with `--quick`) ingested until all are fetched.
//! Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
//!
//! The files of `benches/aezen/`: this one parses the command line and runs the rows in
//! order; `children` starts the server child and handles its process; `procfs` reads
//! /proc; `load` drives HTTP load and accounts for its CPU, `wrk` runs that load in wrk; `seed` builds the tenants,
//! conversations and linked sessions through the application's own functions; `baseline`
//! holds what AEZEN is compared with (the bare axum / socketioxide child, the bare rusqlite
//! loops); `fanout` is the Socket.IO client side of row 7; `report` prints the table; and
//! `rows/` has one file per group of rows that share a set-up.

mod baseline;
mod children;
mod fanout;
mod load;
mod procfs;
mod report;
mod rows;
mod seed;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::baseline::{bare, bare_media, connection_memory};
use crate::children::serve;
use crate::load::{CpuMark, Load, client};
use crate::report::{Report, step};
use crate::rows::connections::idle_connection_row;
use crate::rows::inbox::inbox_rows;
use crate::rows::ingest::ingest_row;
use crate::rows::logins::login_memory_row;
use crate::rows::many_tenants::many_tenant_rows;
use crate::rows::media::media_rows;
use crate::rows::operations::{backup_row, export_row};
use crate::rows::real_clients::{real_client_memory_row, real_clients};
use crate::rows::webhooks::{webhook_receiver, webhook_rows};
use crate::rows::workflow::workflow_rows;

/// The allocator the `aezen` binary uses (src/main.rs), so the server children run on it too.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--serve") => serve(&args[1..]),
        Some("--bare") => child_runtime()?.block_on(bare(&args[1..])),
        Some("--bare-media") => child_runtime()?.block_on(bare_media(&args[1..])),
        Some("--webhook-receiver") => webhook_receiver(&args[1..]),
        Some("--one-at-a-time") => child_runtime()?.block_on(load::one_at_a_time_child(&args[1..])),
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
            crate::wrk::wrk_path()?;
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

/// The command line of a run (what follows `cargo bench --bench aezen --`).
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) rows: Option<Vec<u32>>,
    pub(crate) perf_dir: Option<PathBuf>,
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
                    let list = args
                        .get(i)
                        .context("--rows needs a list (of 1-18), e.g. 1,5")?;
                    options.rows = Some(
                        list.split(',')
                            .map(|r| r.trim().parse::<u32>().context("--rows: numbers 1-18"))
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

    pub(crate) fn wants(&self, row: u32) -> bool {
        self.rows.as_ref().is_none_or(|rows| rows.contains(&row))
    }
}

/// Counts and durations of one mode.
pub(crate) struct Scale {
    /// Tenants of the inbox rows (1, 2, 3, 7) and conversations each.
    pub(crate) tenants: usize,
    pub(crate) conversations: usize,
    pub(crate) concurrency: usize,
    pub(crate) warmup: Duration,
    /// Total measured time per side, split into `slices` alternating slices.
    pub(crate) measure: Duration,
    pub(crate) slices: u32,
    /// Bare rusqlite loops run this long.
    pub(crate) bare_loop: Duration,
    /// Row 3: messages injected.
    pub(crate) ingest_messages: usize,
    /// Rows 4–6: tenant files, conversations each, linked session folders.
    pub(crate) many_tenants: usize,
    pub(crate) many_conversations: usize,
    pub(crate) session_folders: usize,
    pub(crate) uncached_samples: usize,
    pub(crate) startup_runs: usize,
    /// Row 7.
    pub(crate) sockets: usize,
    pub(crate) fanout_rate: usize,
    pub(crate) fanout_time: Duration,
    /// Row 8: idle real whatsapp-rust clients.
    pub(crate) real_clients: usize,
    /// Row 9: logins (each an argon2id hash) from 16 parallel clients.
    pub(crate) logins: usize,
    /// Row 10: idle HTTP connections held open at once.
    pub(crate) idle_connections: usize,
    /// Row 11: tenants backed up, and the size each is filled to (bytes).
    pub(crate) backup_tenants: usize,
    pub(crate) backup_tenant_bytes: u64,
    /// Row 12: the size of the exported tenant (bytes).
    pub(crate) export_bytes: u64,
    /// Rows 13 and 14: messages and conversations of the one tenant.
    pub(crate) workflow_messages: usize,
    pub(crate) workflow_conversations: usize,
    /// Row 15: events in the one endpoint's backlog; endpoints (one per tenant) and events in
    /// each one's backlog when many are enabled at once; how long events are paced for the
    /// latency.
    pub(crate) webhook_backlog: usize,
    pub(crate) webhook_endpoints: usize,
    pub(crate) webhook_backlog_each: usize,
    pub(crate) webhook_paced: Duration,
    /// Row 18: incoming 200 KiB images ingested.
    pub(crate) media_ingest: usize,
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
                logins: 200,
                idle_connections: 2_000,
                backup_tenants: 100,
                backup_tenant_bytes: 1 << 20,
                export_bytes: 20 << 20,
                workflow_messages: 100_000,
                workflow_conversations: 5_000,
                webhook_backlog: 1_000,
                webhook_endpoints: 20,
                webhook_backlog_each: 100,
                webhook_paced: Duration::from_secs(5),
                media_ingest: 600,
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
                logins: 1_000,
                idle_connections: 2_000,
                backup_tenants: 1_000,
                backup_tenant_bytes: 1 << 20,
                export_bytes: 100 << 20,
                workflow_messages: 1_000_000,
                workflow_conversations: 50_000,
                webhook_backlog: 5_000,
                webhook_endpoints: 100,
                webhook_backlog_each: 200,
                webhook_paced: Duration::from_secs(10),
                media_ingest: 1_000,
            }
        }
    }
}

/// Figures later rows compare with.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) hot_rps: Option<f64>,
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
    if options.wants(9) {
        login_memory_row(&scale, tmp.path(), &http, &mut report).await?;
    }
    if options.wants(10) {
        idle_connection_row(&scale, tmp.path(), &http, &mut report).await?;
    }
    if options.wants(11) {
        backup_row(&scale, tmp.path(), &http, &mut report).await?;
    }
    if options.wants(12) {
        export_row(&scale, tmp.path(), &mut report).await?;
    }
    if options.wants(13) || options.wants(14) {
        workflow_rows(&options, &scale, tmp.path(), &http, &mut report).await?;
    }
    if options.wants(15) {
        webhook_rows(&scale, tmp.path(), &http, &mut report).await?;
    }
    if [16, 17, 18].iter().any(|&r| options.wants(r)) {
        media_rows(&options, &scale, tmp.path(), &http, &mut report).await?;
    }
    report.print(&options, started);
    if std::env::var_os("AEZEN_BENCH_KEEP").is_some() {
        step(&format!("kept {}", tmp.keep().display()));
    }
    Ok(())
}
