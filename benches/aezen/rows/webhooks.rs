//! Row 15, webhook delivery (issue 18's budget): "Delivery throughput to a local receiver that
//! answers 200 at once: events/s per endpoint and for 100 endpoints over 100 tenants; p99
//! commit→delivery latency ≤ 50 ms at 100 events/s."
//!
//! The receiver is a child process of its own, this binary again (`--webhook-receiver
//! <port-file> <max-records>`, [`webhook_receiver`]): a bare axum server on 127.0.0.1 with two
//! tokio workers that answers every `POST /hook/{n}` 200 with an empty body at once, and
//! records what arrived — the endpoint's path number, the `webhook-id`, its own wall clock at
//! arrival (once the body is in), the event's `seq`, `createdAt` and `tenantId` — in memory;
//! `GET /count` says how many it holds and `POST /take` hands them over (and forgets them). It
//! exits by itself when the bench that started it is gone (its parent pid changes) or after an
//! hour. Its CPU time, from /proc, is reported beside the server's so it can be seen not to be
//! the bottleneck.
//!
//! The server child runs with `AEZEN_WEBHOOK_ALLOW_HTTP=true` and
//! `AEZEN_WEBHOOK_ALLOW_HOSTS=127.0.0.1` (`--webhook-allow-http --webhook-allow-hosts
//! 127.0.0.1`). Tenants are signed up in process before it starts; everything else goes over
//! HTTP: one endpoint per tenant (`POST /api/webhooks {url, events: ["*"], enabled}`), events
//! made with the simulated backend (`POST /api/integrations/whatsapp/simulate/incoming`, one
//! `incoming_message` each), enabled with `PATCH /api/webhooks/{id} {enabled: true}`.
//!
//! - **One endpoint**: created disabled, a backlog of `scale.webhook_backlog` events written,
//!   enabled; the time from the `PATCH` being sent to the receiver's last arrival gives the
//!   endpoint's events/s.
//! - **Many endpoints**: `scale.webhook_endpoints` tenants with one disabled endpoint each and
//!   a backlog of `scale.webhook_backlog_each` events each, all enabled at once (the `PATCH`es
//!   sent concurrently): aggregate events/s, each endpoint's finish, server CPU per event.
//! - **Latency**: [`PACED_TENANTS`] tenants whose endpoints deliver from the start get messages
//!   paced from this process for 100 events/s in all, for `scale.webhook_paced`; an event's
//!   latency is the receiver's arrival time − the event's `createdAt` (one machine, one wall
//!   clock; `createdAt` is stamped in ms, rounded down, just before the commit, so this
//!   slightly over-states commit → delivery).
//!
//! Every arrival is checked against the tenant's event log (`GET /api/events` after the
//! endpoint's cursor at creation): per endpoint in seq order, none missing, none twice, the
//! right tenant and `webhook-id`; the servers' delivery logs are read for failed attempts.
//!
//! The baseline is a bare sender in this process: the same event bodies (built beforehand),
//! each signed (`standardwebhooks`, as the server signs) and POSTed to the same receiver one at
//! a time, per endpoint — one loop for the one endpoint, one loop per endpoint concurrently for
//! the many — run before and after AEZEN's phase (the figure is their mean).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Scale;
use crate::children::{Proc, wait_healthy, wait_idle, write_port};
use crate::load::{CpuMark, Load, get_json, micros, percentile_ms, post_json};
use crate::procfs::{machine_cpu, proc_cpu};
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{Account, InProcess, contact_number, create_tenants};

/// The budget: p99 commit → delivery at [`PACED_RATE`] events/s (ms).
const LATENCY_P99_MS: f64 = 50.0;
/// Events per second of the latency part, over [`PACED_TENANTS`] tenants.
const PACED_RATE: f64 = 100.0;
const PACED_TENANTS: usize = 4;
/// Contacts writing to each tenant (the first message of each opens its conversation).
const CONTACTS: usize = 20;
/// `simulate/incoming` requests in flight while backlogs are written.
const WRITERS: usize = 16;
/// The bare sender's POSTs go to `/hook/{BARE_PATH + n}`, apart from the server's.
const BARE_PATH: u32 = 1_000_000;
/// A bare pass sends its bodies again until it has run this long (at most this many rounds).
const BARE_MIN: Duration = Duration::from_secs(1);
const BARE_ROUNDS: usize = 50;
/// Waits for arrivals poll this often, give up after this long with nothing new, and after
/// this long in all.
const POLL: Duration = Duration::from_millis(5);
const STALL: Duration = Duration::from_secs(20);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Arrivals the receiver holds at most (it answers 200 to more, without recording them).
const MAX_RECORDS: usize = 2_000_000;
/// The receiver exits by itself after this long.
const RECEIVER_LIFETIME: Duration = Duration::from_secs(3_600);

// ---- the receiver child --------------------------------------------------------------------

/// One POST as the receiver saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Arrival {
    /// `n` of `/hook/{n}`: the endpoint (its tenant's index here).
    path: u32,
    /// The `webhook-id` header.
    id: String,
    /// The receiver's wall clock once the body was in (µs since the Unix epoch).
    at_us: i64,
    /// The event's `data.seq` and `data.createdAt` (ms), and `tenantId`; -1, 0 and "" when
    /// the body was not an event.
    seq: i64,
    created_ms: i64,
    tenant: String,
}

struct Received {
    records: Mutex<Vec<Arrival>>,
    dropped: AtomicU64,
    max: usize,
}

impl Received {
    fn records(&self) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `--webhook-receiver <port-file> <max-records>`: answers every `POST /hook/{n}` 200 at once
/// and records it; `GET /count`, `POST /take`. Until killed, its parent is gone, or an hour.
pub(crate) fn webhook_receiver(args: &[String]) -> anyhow::Result<()> {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;

    let [port_file, max] = args else {
        bail!("--webhook-receiver <port-file> <max-records>");
    };
    let state = Arc::new(Received {
        records: Mutex::new(Vec::new()),
        dropped: AtomicU64::new(0),
        max: max.parse()?,
    });
    let parent = std::os::unix::process::parent_id();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            let router = Router::new()
                .route("/hook/{path}", post(hook))
                .route(
                    "/count",
                    get(async |State(s): State<Arc<Received>>| {
                        format!(
                            "{} {}",
                            s.records().len(),
                            s.dropped.load(Ordering::Relaxed)
                        )
                    }),
                )
                .route(
                    "/take",
                    post(async |State(s): State<Arc<Received>>| {
                        axum::Json(std::mem::take(&mut *s.records()))
                    }),
                )
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            write_port(Path::new(port_file), listener.local_addr()?)?;
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if std::os::unix::process::parent_id() != parent
                        || started.elapsed() > RECEIVER_LIFETIME
                    {
                        std::process::exit(0);
                    }
                }
            });
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router).await?;
            Ok(())
        })
}

async fn hook(
    axum::extract::State(s): axum::extract::State<Arc<Received>>,
    axum::extract::Path(path): axum::extract::Path<u32>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "tenantId")]
        tenant_id: String,
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        seq: i64,
        #[serde(rename = "createdAt")]
        created_at: DateTime<Utc>,
    }
    let at_us = now_us();
    let parsed = serde_json::from_slice::<Body>(&body).ok();
    let arrival = Arrival {
        path,
        id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        at_us,
        seq: parsed.as_ref().map_or(-1, |b| b.data.seq),
        created_ms: parsed
            .as_ref()
            .map_or(0, |b| b.data.created_at.timestamp_millis()),
        tenant: parsed.map(|b| b.tenant_id).unwrap_or_default(),
    };
    let mut records = s.records();
    if records.len() < s.max {
        records.push(arrival);
    } else {
        s.dropped.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Arrivals the receiver holds now.
async fn held(http: &reqwest::Client, receiver: &str) -> anyhow::Result<usize> {
    let text = http
        .get(format!("{receiver}/count"))
        .send()
        .await?
        .text()
        .await?;
    let (held, dropped) = text.split_once(' ').context("receiver /count")?;
    if dropped != "0" {
        bail!("the receiver dropped {dropped} arrivals (over {MAX_RECORDS})");
    }
    Ok(held.parse()?)
}

async fn take(http: &reqwest::Client, receiver: &str) -> anyhow::Result<Vec<Arrival>> {
    Ok(http
        .post(format!("{receiver}/take"))
        .send()
        .await?
        .json()
        .await?)
}

/// Polls until the receiver holds `expected` arrivals, nothing new came for [`STALL`], or
/// [`MAX_WAIT`] passed; the count it reached.
async fn wait_for(
    http: &reqwest::Client,
    receiver: &str,
    expected: usize,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let (mut last, mut changed) = (0, Instant::now());
    loop {
        let n = held(http, receiver).await?;
        if n >= expected {
            return Ok(n);
        }
        if n != last {
            (last, changed) = (n, Instant::now());
        }
        if changed.elapsed() > STALL || started.elapsed() > MAX_WAIT {
            step(&format!(
                "row 15: gave up waiting: {n} of {expected} arrived"
            ));
            return Ok(n);
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---- CPU accounting --------------------------------------------------------------------------

/// CPU of the server, the receiver, this process and the whole machine since a moment.
struct Mark {
    at: Instant,
    server: u32,
    receiver: u32,
    cpu: [Duration; 4],
}

/// What a phase cost, as a share of one core over its wall time.
#[derive(Clone, Copy, Default)]
struct Cpu {
    wall: Duration,
    server: Duration,
    receiver: Duration,
    client: Duration,
    other: Duration,
}

impl Mark {
    fn now(server: u32, receiver: u32) -> Self {
        Self {
            at: Instant::now(),
            server,
            receiver,
            cpu: Self::read(server, receiver),
        }
    }

    fn read(server: u32, receiver: u32) -> [Duration; 4] {
        [
            proc_cpu(&server.to_string()),
            proc_cpu(&receiver.to_string()),
            proc_cpu("self"),
            machine_cpu(),
        ]
    }

    fn close(&self) -> Cpu {
        let [s, r, c, m] = Self::read(self.server, self.receiver);
        let [s0, r0, c0, m0] = self.cpu;
        let (server, receiver, client) = (
            s.saturating_sub(s0),
            r.saturating_sub(r0),
            c.saturating_sub(c0),
        );
        Cpu {
            wall: self.at.elapsed(),
            server,
            receiver,
            client,
            other: m
                .saturating_sub(m0)
                .saturating_sub(server + receiver + client),
        }
    }
}

impl Cpu {
    fn pct(&self, d: Duration) -> f64 {
        100.0 * d.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    fn describe(&self) -> String {
        format!(
            "CPU over {:.2} s (% of one core): server {:.0}%, receiver {:.0}%, this process {:.0}%, other processes {:.0}%",
            self.wall.as_secs_f64(),
            self.pct(self.server),
            self.pct(self.receiver),
            self.pct(self.client),
            self.pct(self.other)
        )
    }
}

// ---- the server's side ---------------------------------------------------------------------

/// A tenant's endpoint.
struct Endpoint {
    /// Its `/hook/{path}` (the tenant's index).
    path: u32,
    account: Account,
    id: Uuid,
    secret: String,
    /// The newest seq when it was made: it receives what comes after.
    cursor: i64,
}

impl Endpoint {
    fn webhook_id(&self, seq: i64) -> String {
        format!("msg_{}_{seq}", self.id.simple())
    }
}

async fn create_endpoint(
    http: &reqwest::Client,
    addr: &str,
    receiver: &str,
    path: u32,
    account: &Account,
    enabled: bool,
) -> anyhow::Result<Endpoint> {
    let (status, body) = post_json(
        http,
        &format!("{addr}/api/webhooks"),
        &account.token,
        &json!({"url": format!("{receiver}/hook/{path}"), "events": ["*"], "enabled": enabled,
            "description": format!("bench receiver {path}")}),
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!("POST /api/webhooks: {status} {body}");
    }
    Ok(Endpoint {
        path,
        account: account.clone(),
        id: body["webhook"]["id"]
            .as_str()
            .context("webhook.id")?
            .parse()?,
        secret: body["secret"].as_str().context("secret")?.to_owned(),
        cursor: body["webhook"]["cursor"]
            .as_i64()
            .context("webhook.cursor")?,
    })
}

async fn set_enabled(
    http: &reqwest::Client,
    addr: &str,
    endpoint: &Endpoint,
    enabled: bool,
) -> anyhow::Result<()> {
    let res = http
        .patch(format!("{addr}/api/webhooks/{}", endpoint.id))
        .bearer_auth(&*endpoint.account.token)
        .json(&json!({"enabled": enabled}))
        .send()
        .await?;
    let status = res.status();
    if status != StatusCode::OK {
        bail!(
            "PATCH /api/webhooks/{}: {status} {}",
            endpoint.id,
            res.text().await?
        );
    }
    Ok(())
}

/// Message `i` to tenant `path` (its owner's `token`) through the simulated backend; what went
/// wrong, if anything.
async fn incoming(
    http: &reqwest::Client,
    addr: &str,
    (path, token): (u32, &str),
    i: usize,
) -> Result<(), String> {
    let body = json!({
        "from": contact_number(path as usize, i % CONTACTS),
        "pushName": format!("Contact {}", i % CONTACTS),
        "content": format!("Message {i}: hello, is my order on its way? I paid yesterday."),
    });
    match post_json(
        http,
        &format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        token,
        &body,
    )
    .await
    {
        Ok((StatusCode::CREATED, _)) => Ok(()),
        Ok((status, body)) => Err(format!("{status}: {body}")),
        Err(e) => Err(format!("{e}")),
    }
}

/// `per_endpoint` messages to each endpoint's tenant, [`WRITERS`] at a time, the tenants
/// interleaved.
async fn write_backlogs(
    http: &reqwest::Client,
    server: &Proc,
    endpoints: &[&Endpoint],
    per_endpoint: usize,
) -> Load {
    use futures::StreamExt;
    let addr = server.addr.as_str();
    let mark = CpuMark::now(Some(server.pid));
    let started = Instant::now();
    let jobs = (0..per_endpoint).flat_map(|i| endpoints.iter().map(move |e| (i, *e)));
    let outcomes: Vec<(Result<(), String>, u32)> = futures::stream::iter(jobs)
        .map(|(i, e)| async move {
            let t0 = Instant::now();
            let outcome = incoming(http, addr, (e.path, &e.account.token), i).await;
            (outcome, micros(t0))
        })
        .buffer_unordered(WRITERS)
        .collect()
        .await;
    let mut load = Load::default();
    for (outcome, us) in outcomes {
        tally(&mut load, outcome, us);
    }
    load.elapsed = started.elapsed();
    mark.close(&mut load);
    load
}

/// Counts one finished request that took `us` µs.
fn tally(load: &mut Load, outcome: Result<(), String>, us: u32) {
    match outcome {
        Ok(()) => {
            load.ok += 1;
            load.latencies.push(us);
        }
        Err(e) => {
            load.errors += 1;
            if load.error_samples.len() < 3 {
                load.error_samples.push(e);
            }
        }
    }
}

/// The events of the endpoint's tenant after its cursor that a `["*"]` endpoint receives
/// (every type but `qr`), from `GET /api/events`.
async fn logged_events(
    http: &reqwest::Client,
    addr: &str,
    endpoint: &Endpoint,
) -> anyhow::Result<Vec<Value>> {
    let mut after = endpoint.cursor;
    let mut events = Vec::new();
    loop {
        let page = get_json(
            http,
            &format!("{addr}/api/events?after={after}&limit=1000"),
            &endpoint.account.token,
        )
        .await?;
        if page["truncated"] == true {
            bail!("the event log after {after} was pruned");
        }
        for event in page["items"].as_array().into_iter().flatten() {
            if event["type"] != "qr" {
                events.push(event.clone());
            }
        }
        match page["nextCursor"].as_str() {
            Some(next) => after = next.parse()?,
            None => return Ok(events),
        }
    }
}

/// What the endpoints' own records say after a phase: their state and delivery logs (the
/// newest 1,000 entries each, which the server keeps).
#[derive(Default)]
struct Logged {
    entries: usize,
    failed: usize,
    retried: usize,
    not_active: usize,
    cursor_behind: usize,
    samples: Vec<String>,
}

async fn delivery_logs(
    http: &reqwest::Client,
    addr: &str,
    endpoints: &[&Endpoint],
    newest: &HashMap<u32, i64>,
) -> anyhow::Result<Logged> {
    let mut logged = Logged::default();
    for e in endpoints {
        let token = &*e.account.token;
        let webhook = get_json(http, &format!("{addr}/api/webhooks/{}", e.id), token).await?;
        if webhook["state"] != "active" {
            logged.not_active += 1;
            if logged.samples.len() < 3 {
                logged
                    .samples
                    .push(format!("endpoint {}: {webhook}", e.path));
            }
        }
        if webhook["cursor"].as_i64() < newest.get(&e.path).copied() {
            logged.cursor_behind += 1;
        }
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let url = match &cursor {
                Some(c) => format!(
                    "{addr}/api/webhooks/{}/deliveries?limit=100&cursor={c}",
                    e.id
                ),
                None => format!("{addr}/api/webhooks/{}/deliveries?limit=100", e.id),
            };
            let page = get_json(http, &url, token).await?;
            for d in page["items"].as_array().into_iter().flatten() {
                logged.entries += 1;
                let ok = d["error"].is_null()
                    && d["statusCode"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s));
                if !ok {
                    logged.failed += 1;
                    if logged.samples.len() < 3 {
                        logged.samples.push(format!("endpoint {}: {d}", e.path));
                    }
                }
                if d["attempt"].as_i64() != Some(1) {
                    logged.retried += 1;
                }
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(logged)
}

// ---- the bare sender -------------------------------------------------------------------------

/// One bare pass: every body signed and POSTed, one at a time per endpoint.
struct Bare {
    posts: usize,
    errors: usize,
    /// Times every body was sent (rounds run until [`BARE_MIN`] has passed).
    rounds: usize,
    cpu: Cpu,
}

impl Bare {
    fn rate(&self) -> f64 {
        self.posts as f64 / self.cpu.wall.as_secs_f64().max(1e-9)
    }

    fn client_us(&self) -> f64 {
        self.cpu.client.as_secs_f64() * 1e6 / self.posts.max(1) as f64
    }
}

/// Event bodies by seq.
type Bodies = Vec<(i64, Vec<u8>)>;
/// One loop of the bare sender: the path it posts to, the endpoint's secret, its bodies.
type BareLoop<'a> = (u32, &'a str, &'a [(i64, Vec<u8>)]);

/// The bodies AEZEN sends for these events (built here once, before the timed loop).
fn bodies(endpoint: &Endpoint, events: &[Value]) -> Bodies {
    let tenant = endpoint.account.tenant.to_string();
    events
        .iter()
        .map(|event| {
            let body = json!({
                "type": event["type"],
                "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
                "tenantId": tenant,
                "data": event,
            });
            (
                event["seq"].as_i64().unwrap_or(-1),
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        })
        .collect()
}

async fn bare_pass(
    http: &reqwest::Client,
    receiver: &Proc,
    server: &Proc,
    loops: &[BareLoop<'_>],
) -> anyhow::Result<Bare> {
    let mark = Mark::now(server.pid, receiver.pid);
    let (mut posts, mut errors, mut rounds) = (0, 0, 0);
    while rounds == 0 || (mark.at.elapsed() < BARE_MIN && rounds < BARE_ROUNDS) {
        let (p, e) = bare_round(http, receiver, loops).await?;
        (posts, errors, rounds) = (posts + p, errors + e, rounds + 1);
    }
    let cpu = mark.close();
    let taken = take(http, &receiver.addr).await?;
    if taken.len() != posts - errors || taken.iter().any(|a| a.path < BARE_PATH) {
        bail!(
            "row 15 bare pass: the receiver holds {} arrivals for {posts} posts ({errors} failed)",
            taken.len()
        );
    }
    Ok(Bare {
        posts,
        errors,
        rounds,
        cpu,
    })
}

/// Every loop's bodies once, the loops at once: (posts, failed).
async fn bare_round(
    http: &reqwest::Client,
    receiver: &Proc,
    loops: &[BareLoop<'_>],
) -> anyhow::Result<(usize, usize)> {
    let results = futures::future::join_all(loops.iter().map(|&(path, secret, bodies)| {
        let url = format!("{}/hook/{}", receiver.addr, BARE_PATH + path);
        async move {
            let signer = standardwebhooks::Webhook::new(secret).map_err(|e| format!("{e}"))?;
            let mut errors = 0;
            for (seq, body) in bodies {
                let id = format!("msg_bare{path}_{seq}");
                let timestamp = Utc::now().timestamp();
                let signature = signer
                    .sign(&id, timestamp, body)
                    .map_err(|e| format!("{e}"))?;
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                    }
                    _ => errors += 1,
                }
            }
            Ok::<_, String>((bodies.len(), errors))
        }
    }))
    .await;
    let (mut posts, mut errors) = (0, 0);
    for r in results {
        let (p, e) = r.map_err(anyhow::Error::msg)?;
        posts += p;
        errors += e;
    }
    Ok((posts, errors))
}

// ---- checks ------------------------------------------------------------------------------------

/// What arrived against what the log holds, per endpoint.
#[derive(Default)]
struct Checked {
    expected: usize,
    arrived: usize,
    missing: usize,
    duplicates: usize,
    out_of_order: usize,
    /// Not an event of that endpoint's tenant, a wrong `webhook-id`, or not in its log.
    foreign: usize,
    samples: Vec<String>,
}

impl Checked {
    fn ok(&self) -> bool {
        self.arrived == self.expected
            && self.missing + self.duplicates + self.out_of_order + self.foreign == 0
    }

    fn summary(&self) -> String {
        format!(
            "{} of {} arrived; {} missing, {} twice, {} out of order, {} foreign",
            self.arrived,
            self.expected,
            self.missing,
            self.duplicates,
            self.out_of_order,
            self.foreign
        )
    }

    fn note(&mut self, text: String) {
        if self.samples.len() < 5 {
            self.samples.push(text);
        }
    }
}

fn check(arrivals: &[Arrival], expected: &[(&Endpoint, Vec<i64>)]) -> Checked {
    let mut checked = Checked::default();
    let by_path: HashMap<u32, (&Endpoint, HashSet<i64>)> = expected
        .iter()
        .map(|(e, seqs)| (e.path, (*e, seqs.iter().copied().collect())))
        .collect();
    let mut seen: HashMap<u32, HashSet<i64>> = HashMap::new();
    let mut last: HashMap<u32, i64> = HashMap::new();
    for a in arrivals {
        checked.arrived += 1;
        let Some((endpoint, wanted)) = by_path.get(&a.path) else {
            checked.foreign += 1;
            checked.note(format!("unexpected path {}: {a:?}", a.path));
            continue;
        };
        if a.tenant != endpoint.account.tenant.to_string()
            || a.id != endpoint.webhook_id(a.seq)
            || !wanted.contains(&a.seq)
        {
            checked.foreign += 1;
            checked.note(format!("endpoint {}: {a:?}", a.path));
            continue;
        }
        if !seen.entry(a.path).or_default().insert(a.seq) {
            checked.duplicates += 1;
            checked.note(format!("endpoint {} twice: seq {}", a.path, a.seq));
        }
        let before = last.insert(a.path, a.seq);
        if before.is_some_and(|b| b >= a.seq) {
            checked.out_of_order += 1;
            checked.note(format!(
                "endpoint {}: seq {} after {}",
                a.path,
                a.seq,
                before.unwrap_or_default()
            ));
        }
    }
    for (e, seqs) in expected {
        checked.expected += seqs.len();
        let got = seen.get(&e.path);
        let missing: Vec<i64> = seqs
            .iter()
            .copied()
            .filter(|s| !got.is_some_and(|g| g.contains(s)))
            .collect();
        if !missing.is_empty() {
            checked.missing += missing.len();
            checked.note(format!(
                "endpoint {}: {} missing, first {:?}",
                e.path,
                missing.len(),
                &missing[..missing.len().min(5)]
            ));
        }
    }
    checked
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().filter_map(|e| e["seq"].as_i64()).collect()
}

/// Event types and how many of each.
fn types(events: &[Value]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in events {
        let t = e["type"].as_str().unwrap_or("?").to_owned();
        match counts.iter_mut().find(|(name, _)| *name == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t, 1)),
        }
    }
    counts
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- the row -----------------------------------------------------------------------------------

/// A backlog delivered: when it started (wall clock, µs), what arrived, what it cost.
struct Delivered {
    t0_us: i64,
    patches: Duration,
    arrivals: Vec<Arrival>,
    cpu: Cpu,
}

impl Delivered {
    /// From the first `PATCH` sent to the last arrival (s).
    fn took(&self) -> f64 {
        let last = self
            .arrivals
            .iter()
            .map(|a| a.at_us)
            .max()
            .unwrap_or(self.t0_us);
        (last - self.t0_us) as f64 / 1e6
    }

    fn rate(&self) -> f64 {
        self.arrivals.len() as f64 / self.took().max(1e-9)
    }

    fn first_ms(&self) -> f64 {
        let first = self
            .arrivals
            .iter()
            .map(|a| a.at_us)
            .min()
            .unwrap_or(self.t0_us);
        (first - self.t0_us) as f64 / 1e3
    }

    fn server_us(&self) -> f64 {
        self.cpu.server.as_secs_f64() * 1e6 / self.arrivals.len().max(1) as f64
    }

    fn receiver_us(&self) -> f64 {
        self.cpu.receiver.as_secs_f64() * 1e6 / self.arrivals.len().max(1) as f64
    }
}

/// Enables every endpoint at once and waits for `expected` arrivals.
async fn deliver(
    http: &reqwest::Client,
    server: &Proc,
    receiver: &Proc,
    endpoints: &[&Endpoint],
    expected: usize,
) -> anyhow::Result<Delivered> {
    let mark = Mark::now(server.pid, receiver.pid);
    let t0_us = now_us();
    let t0 = Instant::now();
    let patched = futures::future::join_all(
        endpoints
            .iter()
            .map(|e| set_enabled(http, &server.addr, e, true)),
    )
    .await;
    let patches = t0.elapsed();
    patched.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    wait_for(http, &receiver.addr, expected).await?;
    let cpu = mark.close();
    let arrivals = take(http, &receiver.addr).await?;
    Ok(Delivered {
        t0_us,
        patches,
        arrivals,
        cpu,
    })
}

/// Row 15.
pub(crate) async fn webhook_rows(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let many = scale.webhook_endpoints;
    step(&format!(
        "row 15: webhook delivery: 1 endpoint × {} events, {many} endpoints × {} events, {PACED_RATE:.0} events/s for {} s",
        scale.webhook_backlog,
        scale.webhook_backlog_each,
        scale.webhook_paced.as_secs()
    ));
    let root = tmp.join("webhooks");
    let t = Instant::now();
    let app = InProcess::start(&root, 256).await?;
    // The one endpoint's tenant, the many's, the paced ones', and as many paced without
    // endpoints.
    let accounts = create_tenants(&app.state, 1 + many + 2 * PACED_TENANTS, "webhooks").await?;
    app.stop().await;
    let signed_up = t.elapsed();

    let receiver = Proc::spawn(
        &["--webhook-receiver", &MAX_RECORDS.to_string()],
        tmp,
        "webhook-receiver",
    )?;
    held(http, &receiver.addr).await?;
    let sessions = root.join("sessions");
    let server = Proc::spawn_with_env(
        &[
            "--serve",
            root.to_str().context("utf-8 path")?,
            "256",
            sessions.to_str().context("utf-8 path")?,
        ],
        &[
            ("AEZEN_WEBHOOK_ALLOW_HTTP", "true"),
            ("AEZEN_WEBHOOK_ALLOW_HOSTS", "127.0.0.1"),
        ],
        tmp,
        "webhooks-server",
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;

    // One endpoint per tenant: the first's and the many's disabled (their backlogs wait),
    // the paced tenants' enabled.
    let mut endpoints = Vec::new();
    for (i, account) in accounts[..=many + PACED_TENANTS].iter().enumerate() {
        let path = u32::try_from(i)?;
        endpoints
            .push(create_endpoint(http, &addr, &receiver.addr, path, account, i > many).await?);
    }
    let one = &endpoints[0];
    let spread: Vec<&Endpoint> = endpoints[1..=many].iter().collect();
    let paced: Vec<&Endpoint> = endpoints[many + 1..].iter().collect();
    report.detail(format!(
        "row 15 set-up: {} tenants signed up in process in {:.1} s; server child with \
         AEZEN_WEBHOOK_ALLOW_HTTP=true AEZEN_WEBHOOK_ALLOW_HOSTS=127.0.0.1; one endpoint each \
         (`POST /api/webhooks`, events [\"*\"], http://127.0.0.1:<receiver>/hook/<n>), {} \
         created disabled; the receiver is a child process of its own (this binary, \
         `--webhook-receiver`: bare axum, 2 tokio workers, answers 200 with an empty body and \
         records each arrival in memory)",
        accounts.len(),
        signed_up.as_secs_f64(),
        1 + many
    ));

    // ---- one endpoint
    let wrote = write_backlogs(http, &server, &[one], scale.webhook_backlog).await;
    describe_load(
        report,
        &format!(
            "row 15 backlog of the one endpoint: `simulate/incoming` × {}, {WRITERS} at a time",
            scale.webhook_backlog
        ),
        &wrote,
    );
    let events_one = logged_events(http, &addr, one).await?;
    let per_message = events_one.len() as f64 / scale.webhook_backlog.max(1) as f64;
    report.detail(format!(
        "row 15 the one endpoint's backlog in the log: {} events ({}), {per_message:.2} per message",
        events_one.len(),
        types(&events_one)
    ));
    if held(http, &receiver.addr).await? != 0 {
        bail!("row 15: a disabled endpoint delivered");
    }
    wait_idle(&server, Duration::from_secs(60)).await;
    let bodies_one = bodies(one, &events_one);
    let bare_loop = [(one.path, one.secret.as_str(), bodies_one.as_slice())];
    let bare_before = bare_pass(http, &receiver, &server, &bare_loop).await?;
    wait_idle(&server, Duration::from_secs(60)).await;
    step(&format!(
        "row 15: enabling the one endpoint ({} events waiting)",
        events_one.len()
    ));
    let a = deliver(http, &server, &receiver, &[one], events_one.len()).await?;
    let bare_after = bare_pass(http, &receiver, &server, &bare_loop).await?;
    let checked_a = check(&a.arrivals, &[(one, seqs(&events_one))]);
    let newest: HashMap<u32, i64> = [(one.path, seqs(&events_one).into_iter().max().unwrap_or(0))]
        .into_iter()
        .collect();
    let logged_a = delivery_logs(http, &addr, &[one], &newest).await?;
    let bare_rate = f64::midpoint(bare_before.rate(), bare_after.rate());
    report.line(
        "15",
        format!(
            "one endpoint, backlog of {} events delivered after `PATCH {{enabled: true}}` to a receiver answering 200 at once: throughput",
            events_one.len()
        ),
        format!("{} ({:.2} s)", per_sec(a.rate()), a.took()),
        format!("{} (bare signed POSTs of the same bodies, one at a time, this process)", per_sec(bare_rate)),
        ratio(a.rate(), bare_rate),
        "(report)",
        None,
    );
    report.line(
        "15",
        "… order, completeness, failed attempts (one endpoint)",
        format!(
            "{}; {} failed attempts",
            checked_a.summary(),
            logged_a.failed
        ),
        format!(
            "{} bare POSTs failed",
            bare_before.errors + bare_after.errors
        ),
        "—",
        "in order, none missing, 0 non-2xx",
        Some(checked_a.ok() && logged_a.failed == 0 && logged_a.not_active == 0),
    );
    report.detail(format!(
        "row 15 one endpoint: PATCH answered in {}, first event arrived {} after it was sent, \
         the last {:.2} s after; server CPU per event {:.0} µs, receiver {:.0} µs; {}",
        ms(a.patches.as_secs_f64() * 1e3),
        ms(a.first_ms()),
        a.took(),
        a.server_us(),
        a.receiver_us(),
        a.cpu.describe()
    ));
    describe_bare(
        report,
        "row 15 one endpoint, bare sender",
        &bare_before,
        &bare_after,
    );
    describe_logged(report, "row 15 one endpoint", &logged_a, &checked_a);

    // ---- many endpoints
    let wrote = write_backlogs(http, &server, &spread, scale.webhook_backlog_each).await;
    describe_load(
        report,
        &format!(
            "row 15 backlogs of {many} endpoints: `simulate/incoming` × {} each, tenants interleaved, {WRITERS} at a time",
            scale.webhook_backlog_each
        ),
        &wrote,
    );
    let mut expected_b = Vec::new();
    for e in &spread {
        expected_b.push((*e, logged_events(http, &addr, e).await?));
    }
    let total_b: usize = expected_b.iter().map(|(_, ev)| ev.len()).sum();
    if held(http, &receiver.addr).await? != 0 {
        bail!("row 15: a disabled endpoint delivered");
    }
    let bodies_b: Vec<(u32, &str, Bodies)> = expected_b
        .iter()
        .map(|(e, ev)| (e.path, e.secret.as_str(), bodies(e, ev)))
        .collect();
    let loops_b: Vec<BareLoop<'_>> = bodies_b
        .iter()
        .map(|(p, s, b)| (*p, *s, b.as_slice()))
        .collect();
    wait_idle(&server, Duration::from_secs(60)).await;
    let bare_b_before = bare_pass(http, &receiver, &server, &loops_b).await?;
    wait_idle(&server, Duration::from_secs(60)).await;
    step(&format!(
        "row 15: enabling {many} endpoints at once ({total_b} events waiting)"
    ));
    let b = deliver(http, &server, &receiver, &spread, total_b).await?;
    let bare_b_after = bare_pass(http, &receiver, &server, &loops_b).await?;
    let expected_seqs: Vec<(&Endpoint, Vec<i64>)> =
        expected_b.iter().map(|(e, ev)| (*e, seqs(ev))).collect();
    let checked_b = check(&b.arrivals, &expected_seqs);
    let newest_b: HashMap<u32, i64> = expected_seqs
        .iter()
        .map(|(e, s)| (e.path, s.iter().copied().max().unwrap_or(0)))
        .collect();
    let logged_b = delivery_logs(http, &addr, &spread, &newest_b).await?;
    let bare_b = f64::midpoint(bare_b_before.rate(), bare_b_after.rate());
    // Each endpoint's last arrival after the PATCHes were sent.
    let mut finish: HashMap<u32, i64> = HashMap::new();
    for arrival in &b.arrivals {
        let f = finish.entry(arrival.path).or_default();
        *f = (*f).max(arrival.at_us - b.t0_us);
    }
    let mut finishes: Vec<u32> = finish
        .values()
        .map(|&us| u32::try_from(us.max(0)).unwrap_or(u32::MAX))
        .collect();
    finishes.sort_unstable();
    let first_s = f64::from(finishes.first().copied().unwrap_or(0)) / 1e6;
    let last_s = f64::from(finishes.last().copied().unwrap_or(0)) / 1e6;
    report.line(
        "15",
        format!(
            "{many} endpoints of {many} tenants, {} events each waiting, all enabled at once: aggregate throughput",
            scale.webhook_backlog_each
        ),
        format!("{} ({total_b} in {:.2} s)", per_sec(b.rate()), b.took()),
        format!("{} ({many} bare signed POST loops at once, this process)", per_sec(bare_b)),
        ratio(b.rate(), bare_b),
        "(report)",
        None,
    );
    report.line(
        "15",
        "… each endpoint's last event after the `PATCH`es were sent: first / median / last endpoint",
        format!(
            "{:.2} / {:.2} / {:.2} s ({:.0}–{:.0} events/s per endpoint)",
            first_s,
            percentile_ms(&finishes, 0.5) / 1e3,
            last_s,
            scale.webhook_backlog_each as f64 / last_s.max(1e-9),
            scale.webhook_backlog_each as f64 / first_s.max(1e-9)
        ),
        "—",
        "—",
        "(report)",
        None,
    );
    report.line(
        "15",
        "… server CPU per delivered event: one endpoint / many endpoints",
        format!("{:.0} / {:.0} µs", a.server_us(), b.server_us()),
        format!(
            "{:.0} / {:.0} µs (the bare sender's CPU per signed POST)",
            f64::midpoint(bare_before.client_us(), bare_after.client_us()),
            f64::midpoint(bare_b_before.client_us(), bare_b_after.client_us())
        ),
        ratio(
            b.server_us(),
            f64::midpoint(bare_b_before.client_us(), bare_b_after.client_us()),
        ),
        "(report)",
        None,
    );
    report.line(
        "15",
        format!("… order, completeness, failed attempts ({many} endpoints)"),
        format!(
            "{}; {} failed attempts",
            checked_b.summary(),
            logged_b.failed
        ),
        format!(
            "{} bare POSTs failed",
            bare_b_before.errors + bare_b_after.errors
        ),
        "—",
        "in order, none missing, 0 non-2xx",
        Some(checked_b.ok() && logged_b.failed == 0 && logged_b.not_active == 0),
    );
    report.detail(format!(
        "row 15 {many} endpoints: {} PATCHes sent at once, all answered in {}; first event arrived {} after; server CPU per event {:.0} µs, receiver {:.0} µs; {}",
        spread.len(),
        ms(b.patches.as_secs_f64() * 1e3),
        ms(b.first_ms()),
        b.server_us(),
        b.receiver_us(),
        b.cpu.describe()
    ));
    describe_bare(
        report,
        &format!("row 15 {many} endpoints, bare sender"),
        &bare_b_before,
        &bare_b_after,
    );
    describe_logged(
        report,
        &format!("row 15 {many} endpoints"),
        &logged_b,
        &checked_b,
    );

    // ---- latency at a steady rate
    let rate = PACED_RATE / per_message.max(1e-9);
    let messages = (rate * scale.webhook_paced.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    wait_idle(&server, Duration::from_secs(60)).await;
    take(http, &receiver.addr).await?;
    step(&format!(
        "row 15: {messages} messages at {rate:.0}/s over {PACED_TENANTS} tenants, delivered as they commit"
    ));
    // The same pace first to tenants without endpoints: what the ingest alone costs.
    let unhooked: Vec<(u32, Arc<str>)> = accounts[1 + many + PACED_TENANTS..]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            Ok((
                u32::try_from(1 + many + PACED_TENANTS + i)?,
                Arc::clone(&a.token),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mark = Mark::now(server.pid, receiver.pid);
    let sent_bare = pace(http, &addr, &unhooked, messages, interval).await?;
    let cpu_bare = mark.close();
    if held(http, &receiver.addr).await? != 0 {
        bail!("row 15: a tenant without endpoints delivered");
    }
    wait_idle(&server, Duration::from_secs(60)).await;
    let targets: Vec<(u32, Arc<str>)> = paced
        .iter()
        .map(|e| (e.path, Arc::clone(&e.account.token)))
        .collect();
    let mark = Mark::now(server.pid, receiver.pid);
    let sent = pace(http, &addr, &targets, messages, interval).await?;
    let mut expected_c = Vec::new();
    for e in &paced {
        expected_c.push((*e, logged_events(http, &addr, e).await?));
    }
    let total_c: usize = expected_c.iter().map(|(_, ev)| ev.len()).sum();
    wait_for(http, &receiver.addr, total_c).await?;
    let cpu_c = mark.close();
    let arrivals_c = take(http, &receiver.addr).await?;
    let expected_seqs_c: Vec<(&Endpoint, Vec<i64>)> =
        expected_c.iter().map(|(e, ev)| (*e, seqs(ev))).collect();
    let checked_c = check(&arrivals_c, &expected_seqs_c);
    let latencies: Vec<u32> = arrivals_c
        .iter()
        .map(|a| u32::try_from((a.at_us - a.created_ms * 1_000).max(0)).unwrap_or(u32::MAX))
        .collect();
    let created: Vec<i64> = arrivals_c.iter().map(|a| a.created_ms).collect();
    let span_s =
        (created.iter().max().unwrap_or(&0) - created.iter().min().unwrap_or(&0)) as f64 / 1e3;
    let achieved = arrivals_c.len().saturating_sub(1) as f64 / span_s.max(1e-9);
    let p99 = percentile_ms(&latencies, 0.99);
    report.line(
        "15",
        format!(
            "commit → delivery at {achieved:.0} events/s over {PACED_TENANTS} tenants for {} s (receiver arrival − event `createdAt`): p50 / p99 / max",
            scale.webhook_paced.as_secs()
        ),
        format!(
            "{} / **{}** / {}",
            ms(percentile_ms(&latencies, 0.5)),
            ms(p99),
            ms(percentile_ms(&latencies, 1.0))
        ),
        "—",
        "—",
        format!("p99 ≤ {LATENCY_P99_MS:.0} ms"),
        Some(p99 <= LATENCY_P99_MS && checked_c.ok() && sent.errors == 0),
    );
    report.detail(format!(
        "row 15 latency: {} messages paced at {rate:.1}/s ({per_message:.2} events per message, as the backlog showed) from this process, `simulate/incoming` p50 {} p99 {} ({} errors{}); {} events delivered with createdAt spanning {span_s:.2} s; p90 {}; {}; server CPU per event (its ingest and its delivery) {:.0} µs; {}",
        messages,
        ms(sent.p(0.5)),
        ms(sent.p(0.99)),
        sent.errors,
        if sent.error_samples.is_empty() { String::new() } else { format!(": {:?}", sent.error_samples) },
        arrivals_c.len(),
        ms(percentile_ms(&latencies, 0.9)),
        checked_c.summary(),
        cpu_c.server.as_secs_f64() * 1e6 / arrivals_c.len().max(1) as f64,
        cpu_c.describe()
    ));
    let per_event_c = cpu_c.server.as_secs_f64() * 1e6 / arrivals_c.len().max(1) as f64;
    let per_message_bare = cpu_bare.server.as_secs_f64() * 1e6 / sent_bare.ok.max(1) as f64;
    report.line(
        "15",
        "… server CPU per message at that pace: ingest + delivery, against the same pace to tenants without endpoints",
        format!("{per_event_c:.0} µs ({:.0}% of a core)", cpu_c.pct(cpu_c.server)),
        format!(
            "{per_message_bare:.0} µs ({:.0}% of a core), ingest alone",
            cpu_bare.pct(cpu_bare.server)
        ),
        ratio(per_event_c, per_message_bare),
        "(report)",
        None,
    );
    report.detail(format!(
        "row 15 the same pace to {PACED_TENANTS} tenants without endpoints: {} messages, `simulate/incoming` p50 {} p99 {} ({} errors); {}",
        sent_bare.ok + sent_bare.errors,
        ms(sent_bare.p(0.5)),
        ms(sent_bare.p(0.99)),
        sent_bare.errors,
        cpu_bare.describe()
    ));
    let receiver_cell = |cpu: &Cpu, events: usize| {
        format!(
            "{:.0}% ({:.0} µs/event)",
            cpu.pct(cpu.receiver),
            cpu.receiver.as_secs_f64() * 1e6 / events.max(1) as f64
        )
    };
    report.line(
        "15",
        "… the receiver's CPU (% of one core; it has 2 workers): one endpoint / many / paced",
        format!(
            "{} / {} / {}",
            receiver_cell(&a.cpu, a.arrivals.len()),
            receiver_cell(&b.cpu, b.arrivals.len()),
            receiver_cell(&cpu_c, arrivals_c.len())
        ),
        format!(
            "{} / {} (under the bare sender, at {} / {})",
            receiver_cell(&bare_before.cpu, bare_before.posts),
            receiver_cell(&bare_b_before.cpu, bare_b_before.posts),
            per_sec(bare_before.rate()),
            per_sec(bare_b_before.rate())
        ),
        "—",
        "not the bottleneck",
        Some(a.rate() < bare_rate && b.rate() < bare_b),
    );
    if !checked_c.samples.is_empty() {
        report.detail(format!("row 15 latency check: {:?}", checked_c.samples));
    }

    let (rss, hwm) = server.memory();
    report.detail(format!(
        "row 15 server at the end: RSS {} (peak {}), {} open files, {} threads",
        mib(rss),
        mib(hwm),
        server.open_files(),
        server.threads()
    ));
    let log = server.stop();
    log_detail(report, "row 15 server", &log);
    let log = receiver.stop();
    log_detail(report, "row 15 receiver", &log);
    Ok(())
}

/// `messages` incoming messages, one every `interval` on a fixed schedule (each its own
/// request, not waiting for the one before), to the tenants in turn.
async fn pace(
    http: &reqwest::Client,
    addr: &str,
    tenants: &[(u32, Arc<str>)],
    messages: usize,
    interval: Duration,
) -> anyhow::Result<Load> {
    let started = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..messages {
        tokio::time::sleep_until(started + interval * u32::try_from(i)?).await;
        let (http, addr) = (http.clone(), addr.to_owned());
        let (path, token) = (
            tenants[i % tenants.len()].0,
            Arc::clone(&tenants[i % tenants.len()].1),
        );
        sends.spawn(async move {
            let t0 = Instant::now();
            let outcome = incoming(&http, &addr, (path, &token), i / PACED_TENANTS).await;
            (outcome, micros(t0))
        });
    }
    let mut sent = Load::default();
    while let Some(Ok((outcome, us))) = sends.join_next().await {
        tally(&mut sent, outcome, us);
    }
    sent.elapsed = started.elapsed();
    Ok(sent)
}

fn describe_bare(report: &mut Report, name: &str, before: &Bare, after: &Bare) {
    report.detail(format!(
        "{name}: {} POSTs ({} rounds of the bodies) before AEZEN's phase at {}, {} ({} rounds) after at {}; CPU per POST: this process {:.0} / {:.0} µs, receiver {:.0} / {:.0} µs; before: {}",
        before.posts,
        before.rounds,
        per_sec(before.rate()),
        after.posts,
        after.rounds,
        per_sec(after.rate()),
        before.client_us(),
        after.client_us(),
        before.cpu.receiver.as_secs_f64() * 1e6 / before.posts.max(1) as f64,
        after.cpu.receiver.as_secs_f64() * 1e6 / after.posts.max(1) as f64,
        before.cpu.describe()
    ));
}

fn describe_logged(report: &mut Report, name: &str, logged: &Logged, checked: &Checked) {
    report.detail(format!(
        "{name}: delivery logs read ({} entries, the newest ≤ 1,000 per endpoint): {} failed, {} retries; {} endpoints not active, {} with the cursor short of the newest event{}{}",
        logged.entries,
        logged.failed,
        logged.retried,
        logged.not_active,
        logged.cursor_behind,
        if logged.samples.is_empty() { String::new() } else { format!("; {:?}", logged.samples) },
        if checked.samples.is_empty() { String::new() } else { format!("; arrivals: {:?}", checked.samples) },
    ));
}
