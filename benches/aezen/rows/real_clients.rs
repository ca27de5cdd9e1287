//! Row 8: the memory of idle real whatsapp-rust clients, one per tenant, measured in a fresh
//! child (`--real-clients`) on a network that refuses every connection.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aezen::bench::TenantId;
use aezen::whatsapp::InboundEvent;
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::Scale;
use crate::procfs::{open_files, proc_memory, threads};
use crate::report::{Report, mib, step};

/// Row 8: the idle whatsapp-rust client per tenant, measured in a fresh child
/// (`--real-clients`): the real adapter on `Network::offline()` (every connection refused at
/// once, no packet sent), one client per tenant on its own SqliteStore, idle in backoff.
pub(crate) fn real_client_memory_row(
    scale: &Scale,
    tmp: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
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
pub(crate) async fn real_clients(dir: &Path, n: usize) -> anyhow::Result<String> {
    use aezen::whatsapp::real::{Network, RealWhatsApp};
    use aezen::whatsapp::{Inbound, LinkMethod, SessionEvent, WhatsApp};

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
    let (fds_before, threads_before) = (open_files("self"), threads("self"));

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
    let (fds_after, threads_after) = (open_files("self"), threads("self"));

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
