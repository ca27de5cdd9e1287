//! Load from a separate process: `wrk` (Debian's `wrk`, a C load generator on epoll), so
//! that the load client is not what limits a fast server (issue 19: the in-process reqwest
//! client used more CPU than the bare axum baseline it measured, holding that baseline down).
//!
//! A [`Side`]'s requests are what its `make` closure builds for `i = 0, 1, …`: the first
//! [`PLAN_LEN`] of them (or fewer, once the sequence repeats for the row's own reasons) are
//! written into a Lua script as `wrk.format` arguments, and wrk's connections take them in
//! turn, each thread from its own offset. The script prints one `AEZEN {…}` JSON line from
//! `done()`: completed requests, socket errors, answers of 400 and above, and 1,000 latency
//! quantiles (pooled across slices, they give p50/p99 of the whole phase). Before each phase
//! the side's first request is sent once from this process and must answer the side's
//! expected status.
//!
//! The server's CPU per request is read from /proc as before; wrk's own CPU is the children's
//! CPU time of this process across the run (`cutime + cstime`), shown as "load client".
//! wrk runs `-t2` (both cores, as for the baseline) with the side's concurrency as its
//! connections; its durations are whole seconds (rounded up).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::load::{CpuMark, Load, Side};

/// The most distinct requests written into one script.
const PLAN_LEN: u64 = 20_000;
const THREADS: usize = 2;
const GROUP: usize = 1_000;
const GROUP_END: &str = "} for _, p in ipairs(group) do plan[#plan + 1] = p end end\n";

/// Where wrk is: `AEZEN_BENCH_WRK`, else `wrk` on the PATH.
pub(crate) fn wrk_path() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("AEZEN_BENCH_WRK") {
                return Some(PathBuf::from(path));
            }
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("wrk"))
                    .find(|candidate| candidate.is_file())
            })
        })
        .clone()
        .context(
            "the benchmark drives HTTP load with `wrk` in its own process, and none was found: \
             install it (`apt-get install wrk` on Debian), or set AEZEN_BENCH_WRK to its path",
        )
}

#[derive(Deserialize)]
struct Outcome {
    requests: u64,
    duration_us: u64,
    socket_errors: u64,
    unexpected: u64,
    quantiles_us: Vec<f64>,
}

/// Runs `side` under wrk for `duration` (whole seconds, at least one) with `connections`.
pub(crate) async fn run(
    http: &reqwest::Client,
    connections: usize,
    duration: Duration,
    side: &Side,
) -> anyhow::Result<Load> {
    run_until(http, connections, duration, side, std::future::pending()).await
}

/// As [`run`], ended early once `stop` completes: wrk is sent SIGINT, on which it ends the run
/// as at the end of its duration (its `done()` reports the requests so far and the time they
/// took). For phases that end on a condition, such as row 11's load during a backup.
pub(crate) async fn run_until(
    http: &reqwest::Client,
    connections: usize,
    duration: Duration,
    side: &Side,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Load> {
    // wrk itself only counts answers of 400 and above as errors (a Lua `response` hook
    // would see each status, but costs a copy of every body into Lua: a 1 MiB item made wrk
    // the bottleneck). So the side's first request is sent once here and its status and
    // body checked; the phase then counts wrk's errors.
    let probe = (side.make)(http, 0).send().await.context("probe request")?;
    let status = probe.status();
    if status != side.expect {
        let body = probe.text().await.unwrap_or_default();
        bail!(
            "the side's first request answered {status}, not {}: {}",
            side.expect,
            &body[..body.len().min(200)]
        );
    }
    let (script, base) = script(http, side)?;
    let dir = std::env::temp_dir().join(format!("aezen-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("plan-{:016x}.lua", content_hash(&script)));
    if !path.exists() {
        std::fs::write(&path, &script)?;
    }
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let threads = THREADS.min(connections.max(1));
    let mark = CpuMark::now(side.pid);
    let children_before = crate::procfs::children_cpu();
    let child = tokio::process::Command::new(wrk_path()?)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("30s")
        .arg("-s")
        .arg(&path)
        .arg(&base)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running wrk")?;
    let pid = child.id();
    let output = child.wait_with_output();
    tokio::pin!(output);
    let output = tokio::select! {
        output = &mut output => output,
        () = stop => {
            if let Some(pid) = pid {
                let _ = tokio::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .await;
            }
            output.await
        }
    }
    .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("AEZEN ")) else {
        bail!(
            "wrk printed no result ({}): {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let outcome: Outcome = serde_json::from_str(line).context("wrk's result line")?;
    let mut load = Load::default();
    load.ok = outcome.requests.saturating_sub(outcome.unexpected);
    load.errors = outcome.unexpected + outcome.socket_errors;
    if outcome.unexpected > 0 {
        load.error_samples
            .push(format!("{} answers of 400 or above", outcome.unexpected));
    }
    if outcome.socket_errors > 0 {
        load.error_samples
            .push(format!("{} socket errors", outcome.socket_errors));
    }
    load.latencies = outcome
        .quantiles_us
        .iter()
        .map(|&us| us.round().clamp(0.0, f64::from(u32::MAX)) as u32)
        .collect();
    load.elapsed = Duration::from_micros(outcome.duration_us).max(Duration::from_millis(1));
    mark.close(&mut load);
    // The load client is wrk, not this process (idle meanwhile).
    load.client_cpu = crate::procfs::children_cpu().saturating_sub(children_before);
    Ok(load)
}

/// The Lua script for `side`'s requests, and the base URL wrk connects to.
fn script(http: &reqwest::Client, side: &Side) -> anyhow::Result<(String, String)> {
    let mut base = None;
    // Entries go in groups of `GROUP`, each its own function, since a Lua function holds at
    // most 65,536 constants.
    let mut lua = String::from("local plan = {}\n");
    let mut in_group = 0;
    let mut first: Option<String> = None;
    for i in 0..PLAN_LEN {
        let request = (side.make)(http, i).build().context("building a request")?;
        let url = request.url();
        let origin = url.origin().ascii_serialization();
        match &base {
            None => base = Some(origin),
            Some(b) if *b != origin => bail!("one side's requests go to two servers"),
            Some(_) => {}
        }
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let mut entry = format!(
            "{{{},{},{{",
            quote(request.method().as_str().as_bytes()),
            quote(target.as_bytes())
        );
        for (name, value) in request.headers() {
            let _ = write!(
                entry,
                "[{}]={},",
                quote(name.as_str().as_bytes()),
                quote(value.as_bytes())
            );
        }
        entry.push('}');
        if let Some(body) = request.body() {
            let body = body
                .as_bytes()
                .context("a streamed request body cannot be written into a wrk script")?;
            let _ = write!(entry, ",{}", quote(body));
        }
        entry.push('}');
        // A sequence that comes back to its first request is complete.
        if first.as_deref() == Some(entry.as_str()) {
            break;
        }
        if first.is_none() {
            first = Some(entry.clone());
        }
        if in_group == 0 {
            lua.push_str("do local group = {\n");
        }
        lua.push_str(&entry);
        lua.push_str(",\n");
        in_group += 1;
        if in_group == GROUP {
            lua.push_str(GROUP_END);
            in_group = 0;
        }
    }
    if in_group > 0 {
        lua.push_str(GROUP_END);
    }
    lua.push_str(SCRIPT);
    Ok((lua, base.context("no requests")?))
}

/// The part of the script that does not depend on the side.
const SCRIPT: &str = r#"
local count = 0
function setup(thread)
  count = count + 1
  thread:set("offset", count)
end

local requests = {}
local at = 0
function init(args)
  for k, p in ipairs(plan) do
    requests[k] = wrk.format(p[1], p[2], p[3], p[4])
  end
  at = (offset or 0) * 7919 % #requests
end

function request()
  at = at % #requests + 1
  return requests[at]
end

function done(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for k = 1, 1000 do
    q[k] = string.format("%.0f", latency:percentile((k - 0.5) / 10))
  end
  io.write(string.format(
    'AEZEN {"requests":%d,"duration_us":%d,"socket_errors":%d,"unexpected":%d,"quantiles_us":[%s]}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, table.concat(q, ",")))
end
"#;

/// `bytes` as a Lua string literal (every byte outside printable ASCII, and `"` and `\`,
/// as a decimal escape).
fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\{b:03}");
        }
    }
    out.push('"');
    out
}

/// A cheap content hash to name a script file (the same plan is written once per run).
fn content_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}
