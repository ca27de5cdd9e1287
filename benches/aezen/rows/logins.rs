//! Row 9: the server's memory after a burst of parallel logins, each an argon2id hash of
//! ~19 MiB: it must come back to near the idle figure, whatever the allocator does.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::json;

use crate::Scale;
use crate::children::{Proc, wait_healthy, wait_idle};
use crate::load::{CpuMark, Load};
use crate::procfs::rss_breakdown;
use crate::report::{Report, describe_load, log_detail, mib, step};

/// Parallel clients of row 9.
const CLIENTS: usize = 16;
/// What the burst may leave behind: the server's RSS after it ≤ idle RSS + this.
const ALLOWED_KIB: u64 = 64 * 1024;

/// Row 9: one account signed up over HTTP on a fresh server child, its idle RSS, then
/// `scale.logins` `POST /api/auth/login` from 16 clients at once, and the RSS once the server
/// is idle again. The child's login rate limits are raised (`bench_config`), so every login
/// hashes.
pub(crate) async fn login_memory_row(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n = scale.logins;
    step(&format!(
        "row 9: RSS after {n} logins from {CLIENTS} parallel clients"
    ));
    let root = tmp.join("logins");
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
        "login-server",
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;

    let (email, password) = ("owner@logins.bench.test", "correct horse battery staple");
    let res = http
        .post(format!("{addr}/api/auth/register"))
        .json(
            &json!({"tenantName": "Logins", "name": "Owner", "email": email, "password": password}),
        )
        .send()
        .await?;
    if res.status() != StatusCode::CREATED {
        bail!(
            "row 9: sign-up answered {}: {}",
            res.status(),
            res.text().await?
        );
    }
    wait_idle(&server, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, idle_hwm) = server.memory();
    let idle_breakdown = rss_breakdown(server.pid);

    let load = tokio::time::timeout(
        Duration::from_secs(600),
        logins(http, &addr, server.pid, n, email, password),
    )
    .await
    .context("row 9: the logins did not finish within 600 s")?;
    wait_idle(&server, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, hwm) = server.memory();
    let after_breakdown = rss_breakdown(server.pid);
    let threads = server.threads();
    let log = server.stop();

    let delta = after.saturating_sub(idle);
    report.line(
        "9",
        format!("server RSS after {n} logins (`POST /api/auth/login`, argon2id) from {CLIENTS} parallel clients"),
        mib(after),
        format!("{} (same server idle, after sign-up)", mib(idle)),
        format!("+{}", mib(delta)),
        format!("≤ idle + {}", mib(ALLOWED_KIB)),
        Some(delta <= ALLOWED_KIB && load.errors == 0 && load.ok == n as u64),
    );
    describe_load(report, "row 9 logins", &load);
    report.detail(format!(
        "row 9: RSS idle {} ({idle_breakdown}, VmHWM {}) → after {n} logins {} ({after_breakdown}), \
         +{}; VmHWM {} over the run; {threads} threads after; {:.0} logins/s; hashing slots: the \
         server's default (one per core: {})",
        mib(idle),
        mib(idle_hwm),
        mib(after),
        mib(delta),
        mib(hwm),
        load.rate(),
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
    ));
    log_detail(report, "row 9 server", &log);
    Ok(())
}

/// `n` logins of one account, `CLIENTS` at a time, back to back; 200 with a token counts.
async fn logins(
    http: &reqwest::Client,
    addr: &str,
    pid: u32,
    n: usize,
    email: &str,
    password: &str,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = format!("{addr}/api/auth/login").into();
    let body = Arc::new(json!({"email": email, "password": password}));
    let mark = CpuMark::now(Some(pid));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (http, next, url, body) = (
            http.clone(),
            Arc::clone(&next),
            Arc::clone(&url),
            Arc::clone(&body),
        );
        workers.spawn(async move {
            let mut mine = Load::default();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t0 = Instant::now();
                let outcome = match http.post(&*url).json(&*body).send().await {
                    Ok(res) if res.status() == StatusCode::OK => match res.bytes().await {
                        Ok(b) if b.windows(8).any(|w| w == b"\"token\":") => Ok(()),
                        Ok(_) => Err("200 without a token".to_owned()),
                        Err(e) => Err(format!("body: {e}")),
                    },
                    Ok(res) => Err(format!("status {}", res.status())),
                    Err(e) => Err(format!("send: {e}")),
                };
                mine.record(outcome, t0);
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
