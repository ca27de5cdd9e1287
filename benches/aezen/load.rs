//! HTTP load: `concurrency` connections against one `Side` (from `wrk`, a separate process,
//! for timed phases; from this process for phases that end on a condition), two sides in
//! alternating slices; the CPU each phase cost; small JSON helpers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::StatusCode;
use serde_json::Value;

use crate::baseline::BareLoop;
use crate::children::{Proc, wait_idle};
use crate::procfs::{Perf, machine_cpu, proc_cpu};
use crate::report::step;
use crate::seed::Account;
use crate::{Options, Scale};

pub(crate) type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

#[derive(Default)]
pub(crate) struct Load {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) error_samples: Vec<String>,
    /// Latencies of successful requests (or operations), in microseconds.
    pub(crate) latencies: Vec<u32>,
    pub(crate) elapsed: Duration,
    pub(crate) client_cpu: Duration,
    pub(crate) server_cpu: Duration,
    /// CPU time used by the whole machine (every process) meanwhile.
    machine_cpu: Duration,
}

impl Load {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn p(&self, q: f64) -> f64 {
        percentile_ms(&self.latencies, q)
    }

    /// Counts one request that started at `started`: its latency if it succeeded, else the
    /// error (the first three kept as samples).
    pub(crate) fn record(&mut self, outcome: Result<(), String>, started: Instant) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latencies.push(micros(started));
            }
            Err(e) => {
                self.errors += 1;
                if self.error_samples.len() < 3 {
                    self.error_samples.push(e);
                }
            }
        }
    }

    pub(crate) fn absorb(&mut self, other: Load) {
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

    /// The server's CPU time per successful request, in µs.
    pub(crate) fn server_cpu_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    /// CPU used by processes other than the server and this client (other work on the box).
    pub(crate) fn other_cpu(&self) -> Duration {
        self.machine_cpu
            .saturating_sub(self.server_cpu)
            .saturating_sub(self.client_cpu)
    }
}

/// CPU accounting around a measured phase: this process, a server, the whole machine.
pub(crate) struct CpuMark {
    client: Duration,
    server: Option<(u32, Duration)>,
    machine: Duration,
}

impl CpuMark {
    pub(crate) fn now(server_pid: Option<u32>) -> Self {
        Self {
            client: proc_cpu("self"),
            server: server_pid.map(|p| (p, proc_cpu(&p.to_string()))),
            machine: machine_cpu(),
        }
    }

    pub(crate) fn close(&self, load: &mut Load) {
        load.client_cpu = proc_cpu("self").saturating_sub(self.client);
        load.server_cpu = self
            .server
            .map(|(p, at)| proc_cpu(&p.to_string()).saturating_sub(at))
            .unwrap_or_default();
        load.machine_cpu = machine_cpu().saturating_sub(self.machine);
    }
}

pub(crate) fn percentile_ms(latencies: &[u32], q: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

pub(crate) fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// What one side of a comparison sends.
#[derive(Clone)]
pub(crate) struct Side {
    pub(crate) expect: StatusCode,
    pub(crate) pid: Option<u32>,
    pub(crate) make: MakeRequest,
}

/// `GET /api/conversations?limit=50` (the row-1 request) on `base`, request `i` for tenant
/// `i % tokens.len()`.
pub(crate) fn hot_list(base: String, tokens: &Arc<Vec<Arc<str>>>) -> MakeRequest {
    let tokens = Arc::clone(tokens);
    Arc::new(move |c: &reqwest::Client, i: u64| {
        c.get(format!("{base}/api/conversations?limit=50"))
            .bearer_auth(&*tokens[i as usize % tokens.len()])
    })
}

/// `concurrency` workers send requests back to back until `duration` passes; `expect` is the
/// status that counts as success.
///
/// The load comes from `wrk`, a separate process ([`crate::wrk`]); a failure to run it is
/// counted as an error of the phase, with its message as the sample.
pub(crate) async fn load(
    http: &reqwest::Client,
    concurrency: usize,
    duration: Duration,
    side: &Side,
) -> Load {
    crate::wrk::run(http, concurrency, duration, side)
        .await
        .unwrap_or_else(|err| Load {
            errors: 1,
            error_samples: vec![format!("wrk: {err:#}")],
            elapsed: duration,
            ..Load::default()
        })
}

/// Measures `a` against `b` with the same client and concurrency: a warm-up of each, then
/// `scale.slices` alternating slices (a, b, a, b, …) so that other work on the machine hits
/// both sides alike.
pub(crate) async fn interleaved(
    http: &reqwest::Client,
    scale: &Scale,
    a: &Side,
    b: &Side,
) -> (Load, Load) {
    let mut loads = interleaved_all(http, scale, &[a.clone(), b.clone()])
        .await
        .into_iter();
    let la = loads.next().unwrap_or_default();
    (la, loads.next().unwrap_or_default())
}

/// As [`interleaved`], for any number of sides: a warm-up of each, then `scale.slices`
/// rounds of one slice of each side in turn; a load per side, in order.
pub(crate) async fn interleaved_all(
    http: &reqwest::Client,
    scale: &Scale,
    sides: &[Side],
) -> Vec<Load> {
    for side in sides {
        load(http, scale.concurrency, scale.warmup, side).await;
    }
    let slice = scale.measure / scale.slices;
    let mut loads: Vec<Load> = sides.iter().map(|_| Load::default()).collect();
    for _ in 0..scale.slices {
        for (side, total) in sides.iter().zip(&mut loads) {
            total.absorb(load(http, scale.concurrency, slice, side).await);
        }
    }
    loads
}

/// `GET /api/tenant` for each account in turn, one request at a time, from a separate
/// process: this binary as `--one-at-a-time` ([`one_at_a_time_child`]), so that the load
/// client's CPU is not this process's (it is reported as the children's CPU).
pub(crate) async fn one_at_a_time(addr: &str, accounts: &[&Account], pid: u32) -> Load {
    let run = async {
        let tokens: String = accounts.iter().map(|a| format!("{}\n", a.token)).collect();
        let file = std::env::temp_dir().join(format!("aezen-one-at-a-time-{}", std::process::id()));
        std::fs::write(&file, tokens)?;
        let mark = CpuMark::now(Some(pid));
        let children_before = crate::procfs::children_cpu();
        let output = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--one-at-a-time")
            .arg(addr)
            .arg(&file)
            .kill_on_drop(true)
            .output()
            .await?;
        let _ = std::fs::remove_file(&file);
        if !output.status.success() {
            bail!("{}", String::from_utf8_lossy(&output.stderr));
        }
        let result: OneAtATime = serde_json::from_slice(&output.stdout)?;
        let mut load = Load {
            ok: result.ok,
            errors: result.errors,
            error_samples: result.error_samples,
            latencies: result.latencies_us,
            elapsed: Duration::from_micros(result.elapsed_us),
            ..Load::default()
        };
        mark.close(&mut load);
        load.client_cpu = crate::procfs::children_cpu().saturating_sub(children_before);
        anyhow::Ok(load)
    };
    run.await.unwrap_or_else(|err| Load {
        errors: 1,
        error_samples: vec![format!("one-at-a-time client: {err:#}")],
        ..Load::default()
    })
}

/// What the `--one-at-a-time` child prints.
#[derive(serde::Serialize, serde::Deserialize)]
struct OneAtATime {
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
    latencies_us: Vec<u32>,
    elapsed_us: u64,
}

/// `--one-at-a-time <addr> <tokens-file>`: `GET /api/tenant` with each token in turn (one
/// per line), one request at a time; prints the outcome as JSON.
pub(crate) async fn one_at_a_time_child(args: &[String]) -> anyhow::Result<()> {
    let [addr, file] = args else {
        bail!("--one-at-a-time <addr> <tokens-file>");
    };
    let tokens = std::fs::read_to_string(file)?;
    let http = client();
    let mut load = Load::default();
    let start = Instant::now();
    for token in tokens.lines() {
        let t0 = Instant::now();
        let outcome = match http
            .get(format!("{addr}/api/tenant"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(res) if res.status() == StatusCode::OK => res
                .bytes()
                .await
                .map(|_| ())
                .map_err(|e| format!("body: {e}")),
            Ok(res) => Err(format!("status {}", res.status())),
            Err(e) => Err(format!("send: {e}")),
        };
        load.record(outcome, t0);
    }
    let result = OneAtATime {
        ok: load.ok,
        errors: load.errors,
        error_samples: load.error_samples,
        latencies_us: load.latencies,
        elapsed_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// With AEZEN_BENCH_PERF=<dir>: an extra 5 s pass of `side` under `perf record`, after the
/// measured ones (so the profiler's overhead never touches a reported figure).
pub(crate) async fn profile(
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
pub(crate) async fn against_bare_loop(
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

pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<Value> {
    let res = http.get(url).bearer_auth(token).send().await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

pub(crate) async fn post_json(
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

/// One figure of `/api/metrics` (0 when the server does not report it).
pub(crate) async fn metric(http: &reqwest::Client, addr: &str, name: &str) -> f64 {
    metrics(http, addr).await.get(name).copied().unwrap_or(0.0)
}

pub(crate) async fn metrics(http: &reqwest::Client, addr: &str) -> HashMap<String, f64> {
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
