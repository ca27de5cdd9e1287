//! Rows 11 and 12, the operations' budgets (issue 17): a backup of many tenants through the
//! server's control socket while it serves the row-1 load, and a tenant's export (over HTTP
//! and through the control socket) against the server's RSS.
//!
//! The commands are sent from this process exactly as `aezen backup` / `aezen tenant export`
//! send them to a running server (`aezen::ops::control::call` on `<data-dir>/control.sock`);
//! the server child does the work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aezen::ops::{Outcome, Request, control};
use anyhow::{Context, bail};
use reqwest::StatusCode;

use crate::Scale;
use crate::children::{Proc, bench_config, wait_healthy, wait_idle};
use crate::load::{CpuMark, Load, Side, get_json, hot_list, load};
use crate::procfs::{RssSampler, rss_breakdown};
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{Account, Filled, InProcess, create_tenants, fill_to};

/// Text of each message the tenants are filled with, in bytes.
const MESSAGE_BYTES: usize = 300;
/// Contacts (conversations) per backed-up tenant: one full page of the hot list.
const BACKUP_CONTACTS: usize = 50;
/// Tenants the row-1 load of row 11 asks for (the first ones of the backup).
const HOT_TENANTS: usize = 100;
/// Row 11's aim: the load's throughput during the backup ≥ this × without it.
const BACKUP_AIM: f64 = 0.80;
/// Longest a backup may take before the row gives up.
const BACKUP_LIMIT: Duration = Duration::from_secs(600);
/// Contacts of the exported tenant.
const EXPORT_CONTACTS: usize = 200;
/// Row 12's budget: the server's RSS during an export ≤ idle RSS + this.
const EXPORT_ALLOWED_KIB: u64 = 8 * 1024;
/// The size row 12's budget names (a smaller tenant with `--quick`).
const EXPORT_BUDGET_BYTES: u64 = 100 << 20;
/// How often the server's RSS is read during an export.
const RSS_PERIOD: Duration = Duration::from_millis(25);
/// zstd's frame magic: the first bytes of an archive.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Row 11: `scale.backup_tenants` tenants of `scale.backup_tenant_bytes` each on a server
/// child; the row-1 request (`GET /api/conversations?limit=50`, 64 connections) on 100 of
/// them for half of `scale.measure`, then while a backup of every tenant runs (the load stops
/// when the backup answers), then for the other half; a second backup into the same
/// directory, on the idle server, finds nothing changed; a third, every tenant copied into a
/// new directory on the idle server, shows what the load cost the first.
pub(crate) async fn backup_row(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = scale.backup_tenants;
    step(&format!(
        "row 11: backup of {n} tenants of {} under the row-1 load",
        mib(scale.backup_tenant_bytes / 1024)
    ));
    let root = tmp.join("backup");
    let (accounts, filled) = seed(
        &root,
        n,
        BACKUP_CONTACTS,
        scale.backup_tenant_bytes,
        "backup",
    )
    .await?;
    report.detail(format!(
        "row 11 set-up: {n} tenants × {BACKUP_CONTACTS} conversations, {} incoming messages of \
         {MESSAGE_BYTES} bytes each (through the ingest path; rounds of filling: {}; {:.1} s): tenant files \
         {} on average",
        filled.messages_per_tenant,
        filled.rounds,
        filled.took.as_secs_f64(),
        mib(filled.mean_bytes / 1024)
    ));
    let server = spawn_server(tmp, &root, "backup-server")?;
    wait_healthy(http, &server.addr, Duration::from_secs(30)).await?;
    let data_dir = bench_config(&root).data_dir;

    let hot = &accounts[..HOT_TENANTS.min(n)];
    let tokens: Arc<Vec<Arc<str>>> = Arc::new(hot.iter().map(|a| Arc::clone(&a.token)).collect());
    let side = Side {
        expect: StatusCode::OK,
        pid: Some(server.pid),
        make: hot_list(server.addr.clone(), &tokens),
    };
    let page = get_json(
        http,
        &format!("{}/api/conversations?limit=50", server.addr),
        &hot[0].token,
    )
    .await?;
    report.detail(format!(
        "row 11 page: {} conversations, {} bytes",
        page["items"].as_array().map_or(0, Vec::len),
        page.to_string().len()
    ));

    load(http, scale.concurrency, scale.warmup, &side).await;
    let (rss_before, _) = server.memory();
    let files_before = server.open_files();
    let mut without = load(http, scale.concurrency, scale.measure / 2, &side).await;
    let out = tmp.join("backup-out");
    let (during, first, first_took) =
        load_during_backup(http, scale, &side, &data_dir, &out).await?;
    let (rss_after, hwm) = server.memory();
    without.absorb(load(http, scale.concurrency, scale.measure / 2, &side).await);
    wait_idle(&server, Duration::from_secs(30)).await;
    let (second, second_took) = backup(&data_dir, &out, false).await?;
    settle(&server).await;
    let (rss_idle, _) = server.memory();
    let files_idle = server.open_files();
    // What the load costs the backup: the same one on the idle server, every tenant copied.
    let (idle_backup, idle_took) = backup(&data_dir, &tmp.join("backup-idle"), true).await?;
    let log = server.stop();

    let copied = |o: &Outcome, key: &str| o.report[key].as_u64().unwrap_or(0);
    let (copied1, copied2, unchanged2) = (
        copied(&first, "copied"),
        copied(&second, "copied"),
        copied(&second, "unchanged"),
    );
    let backup_bytes = folder_bytes(&out.join("tenants"))?;
    report.line(
        "11",
        format!(
            "backup of {n} tenants of {} (`aezen backup` over the control socket) while serving \
             the row-1 load: duration",
            mib(filled.mean_bytes / 1024)
        ),
        format!("{:.1} s", first_took.as_secs_f64()),
        format!(
            "{copied1} tenants copied, {} in all",
            mib(backup_bytes / 1024)
        ),
        format!(
            "{:.0} MiB/s",
            backup_bytes as f64 / f64::from(1 << 20) / first_took.as_secs_f64()
        ),
        "(report)",
        None,
    );
    let r = during.rate() / without.rate();
    report.line(
        "11",
        format!(
            "… hot `GET /api/conversations?limit=50` on {} of them, {} conn.: throughput during \
             the backup",
            hot.len(),
            scale.concurrency
        ),
        per_sec(during.rate()),
        format!(
            "{} (same load and server, no backup)",
            per_sec(without.rate())
        ),
        ratio(during.rate(), without.rate()),
        format!("≥ {BACKUP_AIM:.2}×"),
        Some(r >= BACKUP_AIM),
    );
    report.line(
        "11",
        "… p99 latency during / without the backup",
        ms(during.p(0.99)),
        ms(without.p(0.99)),
        ratio(during.p(0.99), without.p(0.99)),
        "—",
        None,
    );
    report.line(
        "11",
        "… errors (requests during / without; backup)",
        format!("{} / {}", during.errors, without.errors),
        format!("{copied1} of {n} tenants copied"),
        "—",
        "0; every tenant",
        Some(during.errors == 0 && without.errors == 0 && copied1 == n as u64),
    );
    report.line(
        "11",
        "… second backup into the same directory, nothing changed (incremental), idle server",
        format!(
            "{:.2} s ({copied2} copied, {unchanged2} unchanged)",
            second_took.as_secs_f64()
        ),
        format!("{:.1} s (the first)", first_took.as_secs_f64()),
        ratio(second_took.as_secs_f64(), first_took.as_secs_f64()),
        "0 copied",
        Some(copied2 == 0 && unchanged2 == n as u64),
    );
    report.line(
        "11",
        "… the first backup again, on the idle server (into a new directory)",
        format!(
            "{:.1} s ({} copied)",
            idle_took.as_secs_f64(),
            copied(&idle_backup, "copied")
        ),
        format!("{:.1} s (under the load)", first_took.as_secs_f64()),
        ratio(idle_took.as_secs_f64(), first_took.as_secs_f64()),
        "(report)",
        None,
    );
    describe_load(report, "row 11 during the backup", &during);
    describe_load(report, "row 11 without a backup", &without);
    report.detail(format!(
        "row 11: the server's CPU during the backup includes the backup's own (copies, \
         `integrity_check`, SHA-256); the server reported {:.1} s for the first backup and \
         {:.2} s for the second ({}; {})",
        first.report["seconds"].as_f64().unwrap_or(f64::NAN),
        second.report["seconds"].as_f64().unwrap_or(f64::NAN),
        first.text,
        second.text
    ));
    report.detail(format!(
        "row 11: server RSS {} ({files_before} open files) under the load before the backup, \
         {} as it ended (VmHWM {}), {} ({files_idle} open files) idle after the second backup",
        mib(rss_before),
        mib(rss_after),
        mib(hwm),
        mib(rss_idle)
    ));
    log_detail(report, "row 11 server", &log);
    Ok(())
}

/// Runs the load from the moment a backup into `out` starts until it answers; the load, the
/// backup's outcome and its time. The load is wrk's ([`crate::wrk::run_until`]): the backup
/// starts once wrk is running, and wrk is stopped as it answers (or after `BACKUP_LIMIT`).
async fn load_during_backup(
    http: &reqwest::Client,
    scale: &Scale,
    side: &Side,
    data_dir: &Path,
    out: &Path,
) -> anyhow::Result<(Load, Outcome, Duration)> {
    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
    let (data_dir, out) = (data_dir.to_owned(), out.to_owned());
    // First polled right after wrk was spawned.
    let backup_answered = async move {
        let answer =
            tokio::task::spawn_blocking(move || backup_blocking(&data_dir, &out, false)).await;
        let _ = answer_tx.send(answer);
    };
    let during =
        crate::wrk::run_until(http, scale.concurrency, BACKUP_LIMIT, side, backup_answered)
            .await
            .context("row 11: wrk during the backup")?;
    let (outcome, took) = answer_rx
        .await
        .context("row 11: the backup did not answer in time")???;
    Ok((during, outcome, took))
}

async fn backup(data_dir: &Path, out: &Path, full: bool) -> anyhow::Result<(Outcome, Duration)> {
    let (data_dir, out) = (data_dir.to_owned(), out.to_owned());
    tokio::task::spawn_blocking(move || backup_blocking(&data_dir, &out, full)).await?
}

/// `aezen backup --out <out> [--full]` against the server on `data_dir`: its outcome and how
/// long the answer took.
fn backup_blocking(data_dir: &Path, out: &Path, full: bool) -> anyhow::Result<(Outcome, Duration)> {
    let started = Instant::now();
    let request = Request::Backup {
        out: out.to_owned(),
        tenants: Vec::new(),
        full,
    };
    let outcome = control::call(data_dir, &request, |_| {})?;
    if !outcome.ok {
        bail!("the backup failed: {}", outcome.text);
    }
    Ok((outcome, started.elapsed()))
}

/// Row 12: one tenant of `scale.export_bytes` on a server child, its pool open (one list
/// request) and the server idle; its RSS then, and sampled every 25 ms while the owner
/// downloads `GET /api/tenant/export` (the body counted as it arrives, never held), and again
/// while the same archive is written to a file through the control socket.
pub(crate) async fn export_row(
    scale: &Scale,
    tmp: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let target = scale.export_bytes;
    step(&format!(
        "row 12: server RSS while a {} tenant is exported",
        mib(target / 1024)
    ));
    let root = tmp.join("export");
    let (accounts, filled) = seed(&root, 1, EXPORT_CONTACTS, target, "export").await?;
    let account = &accounts[0];
    let size = filled.mean_bytes;
    report.detail(format!(
        "row 12 set-up: one tenant × {EXPORT_CONTACTS} conversations, {} incoming messages of \
         {MESSAGE_BYTES} bytes (through the ingest path; rounds of filling: {}; {:.1} s): file {}",
        filled.messages_per_tenant,
        filled.rounds,
        filled.took.as_secs_f64(),
        mib(size / 1024)
    ));
    // Long enough for the whole archive (the bench's usual client gives up after 30 s).
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    let server = spawn_server(tmp, &root, "export-server")?;
    wait_healthy(&http, &server.addr, Duration::from_secs(30)).await?;
    // The tenant's pool opened, as for any request: the export's cost is what comes on top.
    get_json(
        &http,
        &format!("{}/api/conversations?limit=50", server.addr),
        &account.token,
    )
    .await?;
    settle(&server).await;
    let (idle, idle_hwm) = server.memory();
    let idle_breakdown = rss_breakdown(server.pid);

    let over_http = Exported::measure(&server, download(&http, &server.addr, account)).await?;
    settle(&server).await;
    let (after_http, _) = server.memory();

    let file = tmp.join("export-archive.tar.zst");
    let through_socket = Exported::measure(
        &server,
        export_to_file(bench_config(&root).data_dir, account, file),
    )
    .await?;
    settle(&server).await;
    let (after_socket, hwm) = server.memory();
    let end_breakdown = rss_breakdown(server.pid);
    let log = server.stop();

    let budget = if size < EXPORT_BUDGET_BYTES * 9 / 10 {
        format!(" (the budget names {})", mib(EXPORT_BUDGET_BYTES / 1024))
    } else {
        String::new()
    };
    for (what, idle, e) in [
        (
            format!(
                "export of a {} tenant{budget}, `GET /api/tenant/export` (owner) read by a byte \
                 counter: server RSS growth (peak sampled every {} ms − idle)",
                mib(size / 1024),
                RSS_PERIOD.as_millis()
            ),
            idle,
            &over_http,
        ),
        (
            "… the same archive through the control socket (`aezen tenant export`, to a file): \
             RSS growth"
                .to_owned(),
            after_http,
            &through_socket,
        ),
    ] {
        let growth = e.peak.saturating_sub(idle);
        report.line(
            "12",
            what,
            format!("+{}", mib(growth)),
            format!("{} (same server idle, tenant open)", mib(idle)),
            "—",
            format!("≤ {}", mib(EXPORT_ALLOWED_KIB)),
            Some(growth <= EXPORT_ALLOWED_KIB && e.bytes > 0),
        );
        report.line(
            "12",
            "… archive / time",
            format!("{} in {:.1} s", mib(e.bytes / 1024), e.took.as_secs_f64()),
            format!("{} tenant file", mib(size / 1024)),
            format!(
                "{:.0} MiB/s of tenant file",
                size as f64 / f64::from(1 << 20) / e.took.as_secs_f64()
            ),
            "(report)",
            None,
        );
    }
    report.detail(format!(
        "row 12: RSS idle {} ({idle_breakdown}; VmHWM {}); over HTTP: peak {} of {} samples, \
         {} once idle again, server CPU {:.2} s; through the control socket: peak {} of {} \
         samples, {} once idle again ({end_breakdown}), server CPU {:.2} s; VmHWM {} over the run",
        mib(idle),
        mib(idle_hwm),
        mib(over_http.peak),
        over_http.samples,
        mib(after_http),
        over_http.server_cpu.as_secs_f64(),
        mib(through_socket.peak),
        through_socket.samples,
        mib(after_socket),
        through_socket.server_cpu.as_secs_f64(),
        mib(hwm)
    ));
    log_detail(report, "row 12 server", &log);
    Ok(())
}

/// One export as the server saw it.
struct Exported {
    /// The archive's size in bytes.
    bytes: u64,
    took: Duration,
    /// The server's highest VmRSS meanwhile (KiB) and how many times it was read.
    peak: u64,
    samples: usize,
    server_cpu: Duration,
}

impl Exported {
    /// Runs `export` (which answers the archive's size) while sampling the server's RSS.
    async fn measure(
        server: &Proc,
        export: impl Future<Output = anyhow::Result<u64>>,
    ) -> anyhow::Result<Self> {
        let sampler = RssSampler::start(server.pid, RSS_PERIOD);
        let mark = CpuMark::now(Some(server.pid));
        let started = Instant::now();
        let bytes = export.await;
        let took = started.elapsed();
        let mut cpu = Load::default();
        mark.close(&mut cpu);
        let (peak, samples) = sampler.stop();
        Ok(Self {
            bytes: bytes?,
            took,
            peak,
            samples,
            server_cpu: cpu.server_cpu,
        })
    }
}

/// `GET /api/tenant/export` with the owner's token, the body counted piece by piece.
async fn download(http: &reqwest::Client, addr: &str, owner: &Account) -> anyhow::Result<u64> {
    let mut res = http
        .get(format!("{addr}/api/tenant/export"))
        .bearer_auth(&*owner.token)
        .send()
        .await?;
    if res.status() != StatusCode::OK {
        bail!(
            "row 12: export answered {}: {}",
            res.status(),
            res.text().await?
        );
    }
    let (mut bytes, mut head) = (0u64, Vec::with_capacity(ZSTD_MAGIC.len()));
    while let Some(piece) = res.chunk().await? {
        let wanted = ZSTD_MAGIC.len().saturating_sub(head.len()).min(piece.len());
        head.extend_from_slice(&piece[..wanted]);
        bytes += piece.len() as u64;
    }
    if head != ZSTD_MAGIC {
        bail!("row 12: the export is not a zstd stream (it starts {head:02x?})");
    }
    Ok(bytes)
}

/// `aezen tenant export <id> --out <file>` against the server on `data_dir`: the file's size.
async fn export_to_file(data_dir: PathBuf, owner: &Account, file: PathBuf) -> anyhow::Result<u64> {
    let request = Request::Export {
        tenant: owner.tenant,
        out: file.clone(),
    };
    let outcome =
        tokio::task::spawn_blocking(move || control::call(&data_dir, &request, |_| {})).await??;
    if !outcome.ok {
        bail!("row 12: the export failed: {}", outcome.text);
    }
    Ok(std::fs::metadata(&file)?.len())
}

/// `n` tenants signed up under `root` and filled to `bytes` each (see [`fill_to`]).
async fn seed(
    root: &Path,
    n: usize,
    contacts: usize,
    bytes: u64,
    label: &str,
) -> anyhow::Result<(Vec<Account>, Filled)> {
    let app = InProcess::start(root, 256).await?;
    let accounts = create_tenants(&app.state, n, label).await?;
    app.stop().await;
    let filled = fill_to(root, &accounts, contacts, MESSAGE_BYTES, bytes).await?;
    Ok((accounts, filled))
}

fn spawn_server(tmp: &Path, root: &Path, name: &str) -> anyhow::Result<Proc> {
    let sessions = root.join("sessions");
    Proc::spawn(
        &[
            "--serve",
            root.to_str().context("utf-8 path")?,
            "256",
            sessions.to_str().context("utf-8 path")?,
        ],
        tmp,
        name,
    )
}

/// Waits until the server is idle and its allocator has returned what it freed (jemalloc's
/// decay is 1 s, `aezen::MALLOC_CONF`).
async fn settle(server: &Proc) {
    wait_idle(server, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// The bytes of the files directly in `dir`.
fn folder_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}
