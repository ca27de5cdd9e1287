//! Rows 4, 5 and 6 on one server of many tenants: start-up with many linked sessions, the
//! first request to an uncached tenant, and a random tenant per request under a bounded pool
//! cache.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::children::{Proc, wait_healthy, wait_idle};
use crate::load::{
    MakeRequest, Side, get_json, interleaved_all, metric, metrics, one_at_a_time, profile,
};
use crate::procfs::{open_files, proc_memory, rss_breakdown, threads};
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{Account, InProcess, add_conversations, create_tenants, link_in_process};
use crate::{Options, Scale, Shared};

/// Rows 4, 5 and 6: many tenant files, a bounded pool cache, 1,000 linked session folders.
pub(crate) async fn many_tenant_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    shared: &Shared,
) -> anyhow::Result<()> {
    let root = tmp.join("many");
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
    let cap_s = "auto";

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
                cap_s,
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
            &["--serve", root_s, cap_s, sessions_s],
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
    let capacity = server.tenant_cache_capacity()?;
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
        let opens_before = metric(http, &addr, "aezen_tenant_opens_total").await;
        let cold_load = one_at_a_time(&addr, &cold, server.pid).await;
        let opens_after = metric(http, &addr, "aezen_tenant_opens_total").await;
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
        let hot_load = one_at_a_time(&addr, &hot_order, server.pid).await;
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
        let uniform = Arc::clone(&tokens);
        let random: MakeRequest = Arc::new(move |c: &reqwest::Client, i: u64| {
            c.get(format!("{base}/api/conversations?limit=50"))
                .bearer_auth(&*uniform[(splitmix64(i) % uniform.len() as u64) as usize])
        });
        // Row 5b: the tenant of rank k (k = 1…n, in sign-up order) is asked for with
        // probability ∝ 1/k (Zipf, s = 1): a few busy tenants and a long tail.
        let zipf_cdf: Arc<Vec<f64>> = {
            let weights: Vec<f64> = (1..=tokens.len()).map(|k| 1.0 / k as f64).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            Arc::new(
                weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect(),
            )
        };
        let (base, zipf_tokens) = (addr.clone(), Arc::clone(&tokens));
        let zipf: MakeRequest = Arc::new(move |c: &reqwest::Client, i: u64| {
            let u = (splitmix64(i) >> 11) as f64 / (1u64 << 53) as f64;
            let k = zipf_cdf
                .partition_point(|&p| p < u)
                .min(zipf_tokens.len() - 1);
            c.get(format!("{base}/api/conversations?limit=50"))
                .bearer_auth(&*zipf_tokens[k])
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
                    max_fds = max_fds.max(open_files(&pid.to_string()));
                    max_rss = max_rss.max(proc_memory(pid).0);
                    max_threads = max_threads.max(threads(&pid.to_string()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (max_fds, max_rss, max_threads)
            })
        };
        let opens_before = metric(http, &addr, "aezen_tenant_opens_total").await;
        let random = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: random,
        };
        let zipf = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: zipf,
        };
        let hot_side = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: hot,
        };
        let mut loads = interleaved_all(http, scale, &[random.clone(), zipf, hot_side])
            .await
            .into_iter();
        let (many, zipf, hot) = (
            loads.next().unwrap_or_default(),
            loads.next().unwrap_or_default(),
            loads.next().unwrap_or_default(),
        );
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
        report.line("5a", format!("{} tenant files, pool cache {capacity}, random tenant per request, 64 conn.: throughput", scale.many_tenants),
            per_sec(rps), format!("{} (row-1 scenario: 100 hot tenants, same server, interleaved)", per_sec(hot_rps)),
            ratio(rps, hot_rps), "≥ 0.50×", Some(rps / hot_rps >= 0.50));
        if let Some(row1) = shared.hot_rps {
            report.detail(format!(
                "row 5: random-tenant throughput is {} of row 1's own figure ({})",
                ratio(rps, row1),
                per_sec(row1)
            ));
        }
        report.line(
            "5b",
            format!(
                "{} tenant files, Zipf (s = 1.0) tenant choice, 64 conn.: throughput",
                scale.many_tenants
            ),
            per_sec(zipf.rate()),
            format!("{} (the same hot side)", per_sec(hot_rps)),
            ratio(zipf.rate(), hot_rps),
            "≥ 0.80×",
            Some(zipf.rate() / hot_rps >= 0.80),
        );
        report.line(
            "5",
            "… errors: uniform / Zipf",
            format!("{} / {}", many.errors, zipf.errors),
            "0",
            "—",
            "0",
            Some(many.errors == 0 && zipf.errors == 0),
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
        describe_load(report, "row 5b AEZEN, Zipf tenant", &zipf);
        describe_load(report, "row 5 AEZEN, 100 hot tenants", &hot);
        report.detail(format!(
            "row 5: {opens} tenant pools opened during the load ({:.0}% of all its requests, both sides), pools cached at the end {}; RSS at end {} ({}), max sampled {}; up to {max_threads} server threads",
            100.0 * opens / (many.ok + many.errors + zipf.ok + zipf.errors + hot.ok + hot.errors).max(1) as f64,
            m.get("aezen_tenant_pools_cached").copied().unwrap_or(f64::NAN), mib(rss_end), rss_breakdown(server.pid), mib(max_rss)
        ));
    }
    let log = server.stop();
    log_detail(report, "many-tenant server", &log);
    if options.wants(5) {
        idle_tenant_cost(tmp, http, root_s, &accounts, report).await?;
    }
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

/// Row 5c: what one open, idle tenant costs the real server. A fresh server (kept first pages
/// off: they have their own budget, `--page-cache-bytes`; pools shrunk every 2 s) on the many
/// tenants' files, idle; then one list request to each of `n` tenants in turn, so that `n`
/// pools are open; its RSS once the shrink sweep and jemalloc's decay have run, less its RSS
/// before, over `n`. The RSS right after the requests (before any sweep) is reported beside.
async fn idle_tenant_cost(
    tmp: &Path,
    http: &reqwest::Client,
    root: &str,
    accounts: &[Account],
    report: &mut Report,
) -> anyhow::Result<()> {
    const SWEEP_SECS: &str = "2";
    // No linked sessions: their resume at start-up would open tenants before `before`.
    let no_sessions = tmp.join("idle-tenants-sessions");
    std::fs::create_dir_all(&no_sessions)?;
    let server = Proc::spawn_with_env(
        &[
            "--serve",
            root,
            "auto",
            no_sessions.to_str().context("utf-8 path")?,
        ],
        &[
            ("AEZEN_PAGE_CACHE_BYTES", "0"),
            ("AEZEN_SHED_IDLE_SECS", SWEEP_SECS),
        ],
        tmp,
        "idle-tenants",
    )?;
    wait_healthy(http, &server.addr, Duration::from_secs(30)).await?;
    let capacity = server.tenant_cache_capacity()?;
    let n = accounts
        .len()
        .min(usize::try_from(capacity)? * 9 / 10)
        .max(1);
    step(&format!(
        "row 5c: {n} tenants opened one after another, then left idle"
    ));
    wait_idle(&server, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (before, _) = server.memory();
    // From the end: the first accounts' linked sessions were opened by the start-up resume.
    for account in accounts.iter().rev().take(n) {
        let url = format!("{}/api/conversations?limit=50", server.addr);
        get_json(http, &url, &account.token).await?;
    }
    let (opened, _) = server.memory();
    // Two sweeps, then jemalloc's 1 s decay.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (idle, _) = server.memory();
    let open = metric(http, &server.addr, "aezen_tenant_pools_cached").await;
    let per = |rss: u64| rss.saturating_sub(before) as f64 / n as f64;
    report.line(
        "5c",
        format!("one open, idle tenant: server RSS growth over {n} tenants opened (one request each), once its pools were shrunk"),
        format!("{:.0} KiB", per(idle)),
        format!("{:.0} KiB right after the requests, before the shrink sweep", per(opened)),
        ratio(per(idle), per(opened)),
        "≤ 24 KiB",
        Some(per(idle) <= 24.0),
    );
    report.detail(format!(
        "row 5c: RSS {} idle with no tenant open → {} after {n} requests → {} after the sweeps; {open} pools cached; tenant cache capacity {capacity} (chosen by the server); {}",
        mib(before), mib(opened), mib(idle), rss_breakdown(server.pid)
    ));
    let log = server.stop();
    log_detail(report, "row 5c server", &log);
    Ok(())
}

/// splitmix64: a fixed pseudo-random sequence (request `i`'s draw).
fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
