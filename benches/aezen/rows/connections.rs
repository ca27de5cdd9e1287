//! Row 10: the server's memory with thousands of idle HTTP connections open, and after they
//! close. Hardening finding 1 saw RSS rise from 146 to 295 MB with 2,000 idle connections and
//! stay there; this row shows what each open connection costs now and that the memory a round
//! of connections leaves behind is bounded and reused by the next round, not accumulated.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Scale;
use crate::children::{Proc, wait_healthy, wait_idle};
use crate::procfs::rss_breakdown;
use crate::report::{Report, log_detail, mib, step};

/// Rounds of connections opened and closed: the second shows whether memory accumulates.
const ROUNDS: usize = 2;
/// What a round may leave behind: RSS after the connections closed ≤ idle RSS + this.
const ALLOWED_KIB: u64 = 32 * 1024;
/// Connections opened at once while a round builds up.
const OPENING: usize = 64;
/// How long after the server went idle the RSS of a closed round is read: jemalloc returns
/// freed pages over its 1 s decay (`aezen::MALLOC_CONF`), and half a second after closing,
/// much of them is still on the way back.
const SETTLE: Duration = Duration::from_secs(2);

/// The figures of one round (KiB, except the time it took to open the connections).
struct Round {
    open: u64,
    /// RSS 0.5 s after the server went idle, and `SETTLE` after.
    soon: u64,
    after: u64,
    files: usize,
    opened_in: Duration,
}

/// How a connection of the row sits idle.
#[derive(Clone, Copy)]
enum Idle {
    /// One full `GET /api/healthz` answered, then nothing: idle on keep-alive.
    KeepAlive,
    /// Half a request head sent, then nothing: the slow client of the finding.
    HalfHead,
}

/// Row 10: a fresh server child, its idle RSS; then `ROUNDS` times: `scale.idle_connections`
/// connections (half idle on keep-alive after one request, half stopped halfway through a
/// request head), RSS while they are open, all closed by the client, RSS 0.5 s and `SETTLE`
/// after the server is idle again. Everything happens well inside the server's 10 s header-read timeout, so the
/// connections are the server's to hold for the whole measurement.
pub(crate) async fn idle_connection_row(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = scale.idle_connections;
    step(&format!(
        "row 10: RSS with {n} idle connections open, and after they close ({ROUNDS} rounds)"
    ));
    let root = tmp.join("connections");
    std::fs::create_dir_all(&root)?;
    let sessions = root.join("sessions");
    let server = Proc::spawn(
        &[
            "--serve",
            root.to_str().context("utf-8 path")?,
            "256",
            sessions.to_str().context("utf-8 path")?,
        ],
        tmp,
        "connections-server",
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;
    let host = addr.trim_start_matches("http://").to_owned();
    wait_idle(&server, Duration::from_secs(10)).await;
    let (idle, _) = server.memory();
    let idle_breakdown = rss_breakdown(server.pid);

    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let start = Instant::now();
        let open = tokio::time::timeout(Duration::from_secs(60), open_idle(&host, n))
            .await
            .with_context(|| {
                format!("row 10: round {round} did not open {n} connections in 60 s")
            })??;
        let opened_in = start.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (with_open, _) = server.memory();
        let files = server.open_files();
        drop(open);
        wait_idle(&server, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (soon, _) = server.memory();
        tokio::time::sleep(SETTLE - Duration::from_millis(500)).await;
        let (after, _) = server.memory();
        rounds.push(Round {
            open: with_open,
            soon,
            after,
            files,
            opened_in,
        });
    }
    let after_breakdown = rss_breakdown(server.pid);
    let (_, hwm) = server.memory();
    let log = server.stop();

    let per_conn = rounds[0].open.saturating_sub(idle) as f64 / n as f64;
    let last_after = rounds[ROUNDS - 1].after;
    let left = last_after.saturating_sub(idle);
    report.line(
        "10",
        format!(
            "server RSS with {n} idle HTTP connections open (half keep-alive after one request, \
             half stopped mid-head): per connection"
        ),
        format!("{per_conn:.1} KiB"),
        format!("{} (same server idle)", mib(idle)),
        "—".to_owned(),
        "measured and reported".to_owned(),
        Some(true),
    );
    report.line(
        "10",
        format!(
            "… RSS after round {ROUNDS} of {ROUNDS} closed (open, close, open, close), {} s after \
             the server went idle",
            SETTLE.as_secs()
        ),
        mib(last_after),
        format!("{} (same server idle)", mib(idle)),
        format!("+{}", mib(left)),
        format!("≤ idle + {}", mib(ALLOWED_KIB)),
        Some(left <= ALLOWED_KIB),
    );
    let per_round = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "round {}: opened in {:.0} ms, RSS {} open ({} fds) → {} closed (0.5 s after \
                 idle) → {} ({} s after)",
                i + 1,
                r.opened_in.as_secs_f64() * 1000.0,
                mib(r.open),
                r.files,
                mib(r.soon),
                mib(r.after),
                SETTLE.as_secs()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    report.detail(format!(
        "row 10: RSS idle {} ({idle_breakdown}); {per_round}; at the end {after_breakdown}; \
         VmHWM {} over the run",
        mib(idle),
        mib(hwm),
    ));
    log_detail(report, "row 10 server", &log);
    Ok(())
}

/// Opens `n` connections to `host`, `OPENING` at a time, and leaves each idle (alternately on
/// keep-alive after one answered request, and halfway through a request head).
async fn open_idle(host: &str, n: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut open = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let mut batch = tokio::task::JoinSet::new();
        for i in next..(next + OPENING).min(n) {
            let host = host.to_owned();
            let idle = if i % 2 == 0 {
                Idle::KeepAlive
            } else {
                Idle::HalfHead
            };
            batch.spawn(async move { connect_idle(&host, idle).await });
        }
        next = (next + OPENING).min(n);
        while let Some(joined) = batch.join_next().await {
            open.push(joined??);
        }
    }
    Ok(open)
}

async fn connect_idle(host: &str, idle: Idle) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(host).await?;
    match idle {
        Idle::KeepAlive => {
            stream
                .write_all(format!("GET /api/healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
                .await?;
            // The answer is small and comes in one read; it must be a 200.
            let mut buf = [0u8; 4096];
            let read = stream.read(&mut buf).await?;
            if !buf[..read].starts_with(b"HTTP/1.1 200") {
                bail!(
                    "row 10: healthz on an idle connection answered {:?}",
                    String::from_utf8_lossy(&buf[..read.min(80)])
                );
            }
        }
        Idle::HalfHead => {
            stream
                .write_all(
                    format!("GET /api/healthz HTTP/1.1\r\nHost: {host}\r\nAccept:").as_bytes(),
                )
                .await?;
        }
    }
    Ok(stream)
}
