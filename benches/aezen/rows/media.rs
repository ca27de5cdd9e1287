//! Rows 16–18, media (issue 15's budgets; docs/MEDIA.md): items stored as BLOBs in the
//! tenant's file and served by `GET /api/media/{id}`.
//!
//! - **16, hot item**: one 1 MiB PNG (exactly 1 MiB, the largest item read in one go), stored
//!   ready at once by `POST /api/conversations/{id}/send-media`, requested again and again by
//!   `scale.concurrency` clients — with the owner's bearer token, and through the item's signed
//!   link (`media.url`, no token) — against the `--bare-media` child, a bare axum handler that
//!   answers the same bytes from memory ([`crate::baseline::bare_media`]); the three sides in
//!   alternating slices.
//! - **17, streaming**: one 50 MiB MP4 stored by `send-media` (its route's limit is
//!   `--media-max-bytes`, 64 MiB here), then read whole — once paced at [`SLOW_READ`] by a reader
//!   that takes the body chunk by chunk and sleeps to keep to that rate, once as fast as the
//!   client can — and with a few `Range` requests, while the server's VmRSS is sampled every
//!   [`RSS_PERIOD`]: growth = peak − the settled RSS just before that read (the server idle,
//!   jemalloc's decay passed; the first after one unmeasured 2 MiB streamed read, so that
//!   first-use paging of the streaming path's code is not counted). Every byte read is compared with what was uploaded.
//! - **18, ingest**: `scale.media_ingest` incoming 200 KiB PNGs of distinct bytes (no
//!   deduplication) through `POST …/simulate/incoming` (base64 `media`; the server runs with
//!   `AEZEN_MAX_BODY_BYTES` = 1 MiB, the default 64 KiB being too small for them), from
//!   [`WRITERS`] writers, to one tenant; its event log (`GET /api/events`) is polled for the
//!   `media_updated` events that say each item is `ready`. Stored/s = items ÷ (last `ready`
//!   seen − first request). At most [`WINDOW`] items are posted and not yet ready at a time:
//!   the simulated backend keeps only the latest [`STASH_ITEMS`] items "on WhatsApp's servers",
//!   so a writer that ran further ahead would make the fetcher find its oldest items gone.
//!   RSS is read before, when half the items are ready, at the end, and settled after.
//!
//! Each row runs its own server child on the same data root (one after the other), so one
//! row's allocations do not show in another's RSS.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use serde_json::{Value, json};

use crate::children::{Proc, wait_healthy, wait_idle};
use crate::load::{
    CpuMark, Load, Side, get_json, interleaved_all, percentile_ms, post_json, profile,
};
use crate::procfs::{RssSampler, rss_breakdown};
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{Account, InProcess, contact_number, create_tenants};
use crate::{Options, Scale};

/// Row 16's item: 1 MiB, the largest read in one go and kept in the hot cache (`src/media/cache.rs`, `MAX_ITEM`).
const HOT_BYTES: usize = 1 << 20;
/// Row 16's budget: throughput ≥ this × the bare handler's.
const HOT_TARGET: f64 = 0.50;
/// Row 17's item and budget (RSS growth while it streams, KiB).
const VIDEO_BYTES: usize = 50 << 20;
const STREAM_ALLOWED_KIB: u64 = 2 * 1024;
/// The slow reader's pace (bytes per second).
const SLOW_READ: f64 = 16.0 * 1024.0 * 1024.0;
const RSS_PERIOD: Duration = Duration::from_millis(5);
/// `--media-max-bytes` of the servers (the default, said explicitly).
const MEDIA_MAX_BYTES: u64 = 64 << 20;
/// Row 18: each item's size, the API's JSON body limit for the base64 bodies, the writers,
/// and the most items posted and not yet ready.
const INGEST_BYTES: usize = 200 << 10;
const INGEST_BODY_BYTES: usize = 1 << 20;
const WRITERS: usize = 8;
const WINDOW: usize = 128;
/// Items the simulated backend keeps (`src/whatsapp/simulated.rs`, `MEDIA_STASH_LEN`).
const STASH_ITEMS: usize = 256;
/// Row 18's bound: RSS growth from half the items ready to all of them ready (KiB), and the
/// settled RSS after, over idle + what the simulated backend's stash holds (KiB).
const INGEST_SECOND_HALF_KIB: u64 = 8 * 1024;
const INGEST_AFTER_KIB: u64 = 16 * 1024;
/// Row 18 gives up when no item became ready for this long.
const STALL: Duration = Duration::from_secs(30);
const CONTACTS: usize = 20;

/// Rows 16–18: a tenant each, signed up in process; then one server child per row.
pub(crate) async fn media_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let root = tmp.join("media");
    let t = Instant::now();
    let app = InProcess::start(&root, 256).await?;
    let accounts = create_tenants(&app.state, 3, "media").await?;
    app.stop().await;
    report.detail(format!(
        "rows 16-18 set-up: {} tenants signed up in process in {:.1} s; one server child per \
         row on that root, with AEZEN_MEDIA_MAX_BYTES={MEDIA_MAX_BYTES}",
        accounts.len(),
        t.elapsed().as_secs_f64()
    ));
    if options.wants(16) {
        hot_row(options, scale, tmp, &root, http, report, &accounts[0]).await?;
    }
    if options.wants(17) {
        stream_row(tmp, &root, report, &accounts[1]).await?;
    }
    if options.wants(18) {
        ingest_media_row(scale, tmp, &root, http, report, &accounts[2]).await?;
    }
    Ok(())
}

fn spawn_server(tmp: &Path, root: &Path, name: &str, env: &[(&str, &str)]) -> anyhow::Result<Proc> {
    let sessions = root.join("sessions");
    let max = MEDIA_MAX_BYTES.to_string();
    let mut all = vec![("AEZEN_MEDIA_MAX_BYTES", max.as_str())];
    all.extend_from_slice(env);
    Proc::spawn_with_env(
        &[
            "--serve",
            root.to_str().context("utf-8 path")?,
            "256",
            sessions.to_str().context("utf-8 path")?,
        ],
        &all,
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

/// `len` bytes of xorshift noise after `head` (a different `seed`, different bytes).
fn noisy(head: &[u8], len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(head);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

/// A PNG as far as its type and size go: the signature and an IHDR of 1280×960, then noise.
fn png(len: usize, seed: u64) -> Vec<u8> {
    let mut head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    head.extend_from_slice(&1280u32.to_be_bytes());
    head.extend_from_slice(&960u32.to_be_bytes());
    head.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    noisy(&head, len, seed)
}

/// An MP4 as far as its type goes (an `ftyp` box, brand `isom`), then noise.
fn mp4(len: usize, seed: u64) -> Vec<u8> {
    noisy(
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
        len,
        seed,
    )
}

/// The conversation of a first incoming text from `contact`.
async fn open_conversation(
    http: &reqwest::Client,
    addr: &str,
    account: &Account,
    contact: &str,
) -> anyhow::Result<String> {
    let (status, body) = post_json(
        http,
        &format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        &account.token,
        &json!({"from": contact, "pushName": "Media contact", "content": "hello"}),
    )
    .await?;
    ensure!(
        status == StatusCode::CREATED,
        "simulate/incoming: {status} {body}"
    );
    Ok(body["message"]["conversationId"]
        .as_str()
        .context("conversationId")?
        .to_owned())
}

/// `send-media` of `bytes` (multipart); the stored message, whose item must be `ready`.
async fn upload(
    http: &reqwest::Client,
    addr: &str,
    account: &Account,
    conversation: &str,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
) -> anyhow::Result<Value> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let res = http
        .post(format!(
            "{addr}/api/conversations/{conversation}/send-media"
        ))
        .bearer_auth(&*account.token)
        .multipart(form)
        .send()
        .await?;
    let status = res.status();
    let text = res.text().await?;
    ensure!(status == StatusCode::CREATED, "send-media: {status} {text}");
    let message: Value = serde_json::from_str(&text)?;
    ensure!(
        message["media"]["status"] == "ready",
        "send-media stored {}",
        message["media"]
    );
    Ok(message)
}

/// The item's id and its signed link (absolute).
fn item(addr: &str, message: &Value) -> anyhow::Result<(String, String)> {
    let media = &message["media"];
    Ok((
        media["id"].as_str().context("media.id")?.to_owned(),
        format!("{addr}{}", media["url"].as_str().context("media.url")?),
    ))
}

/// Row 16: the hot 1 MiB image against the bare handler.
async fn hot_row(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    root: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    account: &Account,
) -> anyhow::Result<()> {
    step("row 16: hot GET /api/media/{id} of a 1 MiB image");
    let server = spawn_server(tmp, root, "media-hot-server", &[])?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;
    let conversation = open_conversation(http, &addr, account, &contact_number(16, 0)).await?;
    let image = png(HOT_BYTES, 16);
    let message = upload(
        http,
        &addr,
        account,
        &conversation,
        image.clone(),
        "photo.png",
        "image/png",
    )
    .await?;
    let (id, link) = item(&addr, &message)?;
    let by_token = format!("{addr}/api/media/{id}");

    let file = tmp.join("media-hot.png");
    std::fs::write(&file, &image)?;
    let bare = Proc::spawn(
        &["--bare-media", file.to_str().context("utf-8")?, "image/png"],
        tmp,
        "bare-media",
    )?;
    let by_bare = format!("{}/api/media/{id}", bare.addr);
    // Each side answers the very bytes uploaded.
    for (name, url, token) in [
        ("token", &by_token, Some(&account.token)),
        ("link", &link, None),
        ("bare", &by_bare, None),
    ] {
        let mut req = http.get(url.as_str());
        if let Some(token) = token {
            req = req.bearer_auth(&**token);
        }
        let res = req.send().await?;
        let status = res.status();
        let mime = res.headers().get(CONTENT_TYPE).cloned();
        let body = res.bytes().await?;
        ensure!(
            status == StatusCode::OK && body.as_ref() == image.as_slice(),
            "row 16 {name}: {status}, {} bytes, {mime:?}",
            body.len()
        );
    }

    let side = |url: String, token: Option<Arc<str>>, pid: u32| Side {
        expect: StatusCode::OK,
        pid: Some(pid),
        make: Arc::new(move |c: &reqwest::Client, _: u64| {
            let req = c.get(&url);
            match &token {
                Some(token) => req.bearer_auth(&**token),
                None => req,
            }
        }),
    };
    let sides = [
        side(by_token, Some(Arc::clone(&account.token)), server.pid),
        side(link, None, server.pid),
        side(by_bare, None, bare.pid),
    ];
    let loads = interleaved_all(http, scale, &sides).await;
    profile(
        options,
        http,
        scale,
        server.pid,
        "row16-media-hot",
        &sides[0],
    )
    .await;
    let [token, signed, bare_load] = &loads[..] else {
        bail!("row 16: three loads expected");
    };
    let r = token.rate() / bare_load.rate();
    report.line(
        "16",
        format!(
            "hot `GET /api/media/{{id}}` of one 1 MiB PNG (bearer token), {} conn.: throughput",
            scale.concurrency
        ),
        format!("{} ({:.0} MiB/s)", per_sec(token.rate()), token.rate()),
        format!(
            "{} (bare axum, same bytes from memory)",
            per_sec(bare_load.rate())
        ),
        ratio(token.rate(), bare_load.rate()),
        format!("≥ {HOT_TARGET:.2}×"),
        Some(r >= HOT_TARGET && token.errors == 0),
    );
    report.line(
        "16",
        "… the same through its signed link (`media.url`, no token)",
        per_sec(signed.rate()),
        per_sec(bare_load.rate()),
        ratio(signed.rate(), bare_load.rate()),
        format!("≥ {HOT_TARGET:.2}×"),
        Some(signed.rate() / bare_load.rate() >= HOT_TARGET && signed.errors == 0),
    );
    for (what, q) in [
        ("… p50 latency: token / link", 0.50),
        ("… p99 latency: token / link", 0.99),
    ] {
        report.line(
            "16",
            what,
            format!("{} / {}", ms(token.p(q)), ms(signed.p(q))),
            ms(bare_load.p(q)),
            ratio(token.p(q), bare_load.p(q)),
            "—",
            None,
        );
    }
    report.line(
        "16",
        "… errors: token / link",
        format!("{} / {}", token.errors, signed.errors),
        bare_load.errors.to_string(),
        "—",
        "0",
        Some(token.errors == 0 && signed.errors == 0),
    );
    report.line(
        "16",
        "… server CPU per request: token / link",
        format!(
            "{:.0} / {:.0} µs",
            Load::server_cpu_per_request(token),
            Load::server_cpu_per_request(signed)
        ),
        format!("{:.0} µs", Load::server_cpu_per_request(bare_load)),
        ratio(
            Load::server_cpu_per_request(token),
            Load::server_cpu_per_request(bare_load),
        ),
        "(report)",
        None,
    );
    describe_load(report, "row 16 AEZEN (bearer token)", token);
    describe_load(report, "row 16 AEZEN (signed link)", signed);
    describe_load(report, "row 16 bare axum", bare_load);
    let (rss, hwm) = server.memory();
    report.detail(format!(
        "row 16 server at the end: RSS {} ({}; peak {}), {} threads",
        mib(rss),
        rss_breakdown(server.pid),
        mib(hwm),
        server.threads()
    ));
    drop(bare);
    let log = server.stop();
    log_detail(report, "row 16 server", &log);
    Ok(())
}

/// One read of row 17.
struct Read {
    what: &'static str,
    /// The `Range` header, if any, and the bytes it names (start, length).
    range: Option<&'static str>,
    start: usize,
    len: usize,
    paced: bool,
}

/// What one read came to.
struct Streamed {
    /// The settled VmRSS just before the read (KiB).
    before: u64,
    bytes: usize,
    took: Duration,
    peak: u64,
    samples: usize,
    server_cpu: Duration,
}

/// Reads `read` of the item at `url`, chunk by chunk (pacing to [`SLOW_READ`] if asked),
/// checking status, headers and every byte against `video`, while sampling the server's RSS.
async fn stream(
    http: &reqwest::Client,
    server: &Proc,
    url: &str,
    token: &str,
    video: &[u8],
    read: &Read,
) -> anyhow::Result<Streamed> {
    let sampler = RssSampler::start(server.pid, RSS_PERIOD);
    let mark = CpuMark::now(Some(server.pid));
    let started = Instant::now();
    let outcome: anyhow::Result<usize> = async {
        let mut req = http.get(url).bearer_auth(token);
        if let Some(range) = read.range {
            req = req.header(RANGE, range);
        }
        let mut res = req.send().await?;
        let expect = if read.range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        ensure!(res.status() == expect, "{}: {}", read.what, res.status());
        let length = res
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        ensure!(
            length == Some(read.len),
            "{}: Content-Length {length:?}",
            read.what
        );
        if read.range.is_some() {
            let want = format!(
                "bytes {}-{}/{}",
                read.start,
                read.start + read.len - 1,
                video.len()
            );
            let got = res.headers().get(CONTENT_RANGE).cloned();
            ensure!(
                got.as_ref().and_then(|v| v.to_str().ok()) == Some(want.as_str()),
                "{}: Content-Range {got:?}, expected {want}",
                read.what
            );
        }
        let mut at = 0;
        while let Some(chunk) = res.chunk().await? {
            let want = &video[read.start + at..];
            ensure!(
                chunk.len() <= read.len - at && want.starts_with(&chunk),
                "{}: bytes differ at {}",
                read.what,
                read.start + at
            );
            at += chunk.len();
            if read.paced {
                let due = Duration::from_secs_f64(at as f64 / SLOW_READ);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        ensure!(at == read.len, "{}: {at} of {} bytes", read.what, read.len);
        Ok(at)
    }
    .await;
    let took = started.elapsed();
    let mut cpu = Load::default();
    mark.close(&mut cpu);
    let (peak, samples) = sampler.stop();
    Ok(Streamed {
        before: 0,
        bytes: outcome?,
        took,
        peak,
        samples,
        server_cpu: cpu.server_cpu,
    })
}

/// Row 17: the server's RSS while a 50 MiB video streams.
async fn stream_row(
    tmp: &Path,
    root: &Path,
    report: &mut Report,
    account: &Account,
) -> anyhow::Result<()> {
    step("row 17: server RSS while a 50 MiB video streams");
    // Long enough for a 50 MiB upload on a busy machine.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    let server = spawn_server(tmp, root, "media-stream-server", &[])?;
    let addr = server.addr.clone();
    wait_healthy(&http, &addr, Duration::from_secs(30)).await?;
    let conversation = open_conversation(&http, &addr, account, &contact_number(17, 0)).await?;
    settle(&server).await;
    let (before_upload, _) = server.memory();
    let video = mp4(VIDEO_BYTES, 17);
    let t = Instant::now();
    let message = upload(
        &http,
        &addr,
        account,
        &conversation,
        video.clone(),
        "clip.mp4",
        "video/mp4",
    )
    .await?;
    let uploaded = t.elapsed();
    ensure!(
        message["media"]["kind"] == "video",
        "stored as {}",
        message["media"]
    );
    let (id, _) = item(&addr, &message)?;
    let url = format!("{addr}/api/media/{id}");
    let (_, upload_hwm) = server.memory();
    // One streamed read first (2 MiB: 8 slices), not measured: the code and the threads of
    // the streaming path are then in memory, as on any server that has served a video.
    let warm_up = Read {
        what: "warm-up: `Range: bytes=0-2097151`",
        range: Some("bytes=0-2097151"),
        start: 0,
        len: 2 * (1 << 20),
        paced: false,
    };
    stream(&http, &server, &url, &account.token, &video, &warm_up).await?;
    settle(&server).await;
    let (idle, idle_hwm) = server.memory();
    let idle_breakdown = rss_breakdown(server.pid);

    const MIB: usize = 1 << 20;
    let reads = [
        Read {
            what: "whole item, read chunk by chunk at ≤ 16 MiB/s",
            range: None,
            start: 0,
            len: VIDEO_BYTES,
            paced: true,
        },
        Read {
            what: "whole item, read as fast as the client takes it",
            range: None,
            start: 0,
            len: VIDEO_BYTES,
            paced: false,
        },
        Read {
            what: "`Range: bytes=0-1048575` (the first MiB: one read)",
            range: Some("bytes=0-1048575"),
            start: 0,
            len: MIB,
            paced: false,
        },
        Read {
            what: "`Range: bytes=20971520-29360127` (8 MiB from the middle: 32 slices)",
            range: Some("bytes=20971520-29360127"),
            start: 20 * MIB,
            len: 8 * MIB,
            paced: false,
        },
        Read {
            what: "`Range: bytes=-1048576` (the last MiB)",
            range: Some("bytes=-1048576"),
            start: VIDEO_BYTES - MIB,
            len: MIB,
            paced: false,
        },
        Read {
            what: "`Range: bytes=41943040-` (the last 10 MiB, paced at ≤ 16 MiB/s)",
            range: Some("bytes=41943040-"),
            start: 40 * MIB,
            len: 10 * MIB,
            paced: true,
        },
    ];
    let mut done = Vec::new();
    for (i, read) in reads.iter().enumerate() {
        // Each read against the settled RSS just before it (the allocator keeps what the
        // previous read freed for its 1 s decay).
        if i > 0 {
            settle(&server).await;
        }
        let before = server.memory().0;
        let mut s = stream(&http, &server, &url, &account.token, &video, read).await?;
        s.before = before;
        done.push(s);
    }
    settle(&server).await;
    let (after, hwm) = server.memory();
    let growth = |s: &Streamed| s.peak.saturating_sub(s.before);
    let whole = &done[..2];
    let ranges = &done[2..];
    let worst_range = ranges.iter().map(growth).max().unwrap_or(0);
    let slow = &done[0];
    report.line(
        "17",
        format!(
            "50 MiB MP4 (`send-media`), `GET /api/media/{{id}}` of the whole item read chunk by \
             chunk at ≤ 16 MiB/s: server RSS growth (peak sampled every {} ms − settled RSS before)",
            RSS_PERIOD.as_millis()
        ),
        format!("+{}", mib(growth(slow))),
        format!("{} (same server idle, item stored)", mib(idle)),
        "—",
        format!("≤ {}", mib(STREAM_ALLOWED_KIB)),
        Some(growth(slow) <= STREAM_ALLOWED_KIB),
    );
    let fast = &done[1];
    report.line(
        "17",
        "… the whole item read as fast as the client takes it: RSS growth",
        format!("+{}", mib(growth(fast))),
        format!(
            "{:.0} MiB/s ({:.2} s)",
            fast.bytes as f64 / MIB as f64 / fast.took.as_secs_f64(),
            fast.took.as_secs_f64()
        ),
        "—",
        format!("≤ {}", mib(STREAM_ALLOWED_KIB)),
        Some(growth(fast) <= STREAM_ALLOWED_KIB),
    );
    report.line(
        "17",
        format!(
            "… {} `Range` requests (first MiB, 8 MiB from the middle, `-1048576`, `41943040-` \
             paced): largest RSS growth",
            ranges.len()
        ),
        format!("+{}", mib(worst_range)),
        ranges
            .iter()
            .map(|s| format!("+{}", mib(growth(s))))
            .collect::<Vec<_>>()
            .join(" / "),
        "—",
        format!("≤ {}", mib(STREAM_ALLOWED_KIB)),
        Some(worst_range <= STREAM_ALLOWED_KIB),
    );
    let per_mib = |s: &Streamed| s.server_cpu.as_secs_f64() * 1e3 / (s.bytes as f64 / MIB as f64);
    report.line(
        "17",
        "… server CPU per MiB served: whole item (fast read) / 8 MiB from offset 20 MiB / last 10 \
         MiB (offset 40 MiB) / last MiB (one read at offset 49 MiB)",
        format!(
            "{:.1} / {:.1} / {:.1} / {:.0} ms",
            per_mib(fast),
            per_mib(&done[3]),
            per_mib(&done[5]),
            per_mib(&done[4])
        ),
        format!(
            "{:.0} ms for the first MiB (one read at offset 0; /proc's CPU time is in 10 ms ticks)",
            per_mib(&done[2])
        ),
        "—",
        "(report)",
        None,
    );
    let read: usize = done.iter().map(|s| s.bytes).sum();
    report.line(
        "17",
        "… bytes read and compared with the upload (status, `Content-Length`, `Content-Range` checked)",
        format!("{} in {} reads, all equal", mib(read as u64 / 1024), done.len()),
        "—",
        "—",
        "equal",
        Some(true),
    );
    report.line(
        "17",
        "… the upload: 50 MiB multipart `send-media` (stored `ready` at once): time; server peak RSS",
        format!("{:.2} s; VmHWM {}", uploaded.as_secs_f64(), mib(upload_hwm)),
        format!("{} before it (settled)", mib(before_upload)),
        "—",
        "(report)",
        None,
    );
    for (read, s) in reads.iter().zip(&done) {
        report.detail(format!(
            "row 17 {}: {} in {:.2} s ({:.0} MiB/s), peak RSS {} of {} samples (+{}), server CPU {:.0} ms",
            read.what,
            mib(s.bytes as u64 / 1024),
            s.took.as_secs_f64(),
            s.bytes as f64 / MIB as f64 / s.took.as_secs_f64(),
            mib(s.peak),
            s.samples,
            mib(growth(s)),
            s.server_cpu.as_secs_f64() * 1e3
        ));
    }
    report.detail(format!(
        "row 17: RSS idle {} ({idle_breakdown}; VmHWM {} after the upload, {} once settled), \
         {} settled after the reads ({}; VmHWM {}); whole reads' growth {}",
        mib(idle),
        mib(upload_hwm),
        mib(idle_hwm),
        mib(after),
        rss_breakdown(server.pid),
        mib(hwm),
        whole
            .iter()
            .map(|s| format!("+{}", mib(growth(s))))
            .collect::<Vec<_>>()
            .join(" / ")
    ));
    let log = server.stop();
    log_detail(report, "row 17 server", &log);
    Ok(())
}

/// Row 18's progress, shared by the writers and the poller.
#[derive(Default)]
struct Progress {
    posted: AtomicUsize,
    ready: AtomicUsize,
    /// When each item's `simulate/incoming` was sent, by media id (taken by the poller).
    sent: Mutex<HashMap<String, Instant>>,
}

/// The last seq of `account`'s event log.
async fn last_seq(http: &reqwest::Client, addr: &str, account: &Account) -> anyhow::Result<i64> {
    let mut after = 0;
    loop {
        let page = get_json(
            http,
            &format!("{addr}/api/events?after={after}&limit=1000"),
            &account.token,
        )
        .await?;
        if let Some(last) = page["items"]
            .as_array()
            .and_then(|items| items.last())
            .and_then(|e| e["seq"].as_i64())
        {
            after = last;
        }
        match page["nextCursor"].as_str() {
            Some(next) => after = next.parse()?,
            None => return Ok(after),
        }
    }
}

/// Row 18: incoming images through `simulate/incoming` until every one is `ready`.
async fn ingest_media_row(
    scale: &Scale,
    tmp: &Path,
    root: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    account: &Account,
) -> anyhow::Result<()> {
    let n = scale.media_ingest;
    step(&format!(
        "row 18: ingest of {n} incoming 200 KiB images through simulate/incoming"
    ));
    let body_limit = INGEST_BODY_BYTES.to_string();
    let server = spawn_server(
        tmp,
        root,
        "media-ingest-server",
        &[("AEZEN_MAX_BODY_BYTES", body_limit.as_str())],
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;
    // The tenant open, its contacts' conversations made: the images' cost is what comes on top.
    for c in 0..CONTACTS {
        open_conversation(http, &addr, account, &contact_number(18, c)).await?;
    }
    let mut cursor = last_seq(http, &addr, account).await?;
    settle(&server).await;
    let (idle, _) = server.memory();
    let idle_breakdown = rss_breakdown(server.pid);

    let progress = Arc::new(Progress::default());
    let next = Arc::new(AtomicUsize::new(0));
    let sampler = RssSampler::start(server.pid, Duration::from_millis(25));
    let mark = CpuMark::now(Some(server.pid));
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (http, addr, token) = (http.clone(), addr.clone(), Arc::clone(&account.token));
        let (progress, next) = (Arc::clone(&progress), Arc::clone(&next));
        writers.spawn(async move {
            let mut mine = Load::default();
            let base64 = base64::engine::general_purpose::STANDARD;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return mine;
                }
                while progress.posted.load(Ordering::Relaxed)
                    >= progress.ready.load(Ordering::Relaxed) + WINDOW
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                progress.posted.fetch_add(1, Ordering::Relaxed);
                let image = png(INGEST_BYTES, 1_000_000 + i as u64);
                let body = json!({
                    "from": contact_number(18, i % CONTACTS), "pushName": "Media contact",
                    "content": "", "type": "image", "media": base64.encode(&image),
                    "id": format!("BENCH-MEDIA-{i}"),
                });
                drop(image);
                let t0 = Instant::now();
                let outcome = match post_json(
                    &http,
                    &format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
                    &token,
                    &body,
                )
                .await
                {
                    Ok((status, reply)) if status == StatusCode::CREATED => {
                        match reply["message"]["media"]["id"].as_str() {
                            Some(id) => {
                                progress
                                    .sent
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .insert(id.to_owned(), t0);
                                Ok(())
                            }
                            None => Err(format!("no media in {}", reply["message"])),
                        }
                    }
                    Ok((status, reply)) => Err(format!("{status}: {reply}")),
                    Err(e) => Err(format!("send: {e}")),
                };
                if outcome.is_err() {
                    // Never becomes ready: do not hold the window for it.
                    progress.ready.fetch_add(1, Ordering::Relaxed);
                }
                mine.record(outcome, t0);
            }
        });
    }

    // Poll the event log for the items' `media_updated` events.
    let (mut ready, mut not_ready, mut stray) = (0usize, 0usize, 0usize);
    let mut ready_latencies: Vec<u32> = Vec::with_capacity(n);
    let mut unmatched: HashMap<String, Instant> = HashMap::new();
    let (mut half_rss, mut last_ready) = (None, started);
    let mut last_progress = Instant::now();
    let mut polls = 0u32;
    let mut not_ready_samples = Vec::new();
    let mut acks = Load::default();
    loop {
        polls += 1;
        let page = get_json(
            http,
            &format!("{addr}/api/events?after={cursor}&limit=1000"),
            &account.token,
        )
        .await?;
        let seen = Instant::now();
        if page["truncated"] == true {
            bail!("row 18: the event log after {cursor} was pruned");
        }
        let mut fresh = 0;
        for event in page["items"].as_array().into_iter().flatten() {
            if let Some(seq) = event["seq"].as_i64() {
                cursor = cursor.max(seq);
            }
            if event["type"] != "media_updated" {
                continue;
            }
            let media = &event["message"]["media"];
            let id = media["id"].as_str().unwrap_or_default().to_owned();
            if media["status"] == "ready" {
                ready += 1;
                fresh += 1;
                unmatched.insert(id, seen);
            } else {
                not_ready += 1;
                if not_ready_samples.len() < 3 {
                    not_ready_samples.push(format!("{}: {}", media["status"], media["reason"]));
                }
            }
        }
        if let Some(next) = page["nextCursor"].as_str() {
            cursor = next.parse()?;
        }
        {
            let mut sent = progress
                .sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            unmatched.retain(|id, at| match sent.remove(id) {
                Some(t0) => {
                    ready_latencies
                        .push(u32::try_from(at.duration_since(t0).as_micros()).unwrap_or(u32::MAX));
                    false
                }
                None => true,
            });
        }
        if fresh > 0 {
            progress.ready.fetch_add(fresh, Ordering::Relaxed);
            last_ready = seen;
            last_progress = seen;
        }
        if half_rss.is_none() && ready >= n / 2 {
            half_rss = Some(server.memory().0);
        }
        while let Some(joined) = writers.try_join_next() {
            acks.absorb(joined?);
        }
        if ready + acks.errors as usize >= n && writers.is_empty() {
            break;
        }
        if last_progress.elapsed() > STALL {
            while let Some(joined) = writers.join_next().await {
                acks.absorb(joined?);
            }
            report.detail(format!(
                "row 18: stopped waiting: {ready} of {n} ready, nothing new for {} s",
                STALL.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = last_ready.duration_since(started);
    let end_rss = server.memory().0;
    let mut cpu = Load::default();
    mark.close(&mut cpu);
    let (peak, samples) = sampler.stop();
    stray += unmatched.len();
    settle(&server).await;
    let (after, hwm) = server.memory();
    let stored_rate = ready as f64 / elapsed.as_secs_f64().max(1e-9);
    let stash_kib = (STASH_ITEMS.min(n) * INGEST_BYTES / 1024) as u64;
    let half = half_rss.unwrap_or(end_rss);
    report.line(
        "18",
        format!(
            "ingest of {n} incoming 200 KiB PNGs (distinct bytes) to one tenant through \
             `simulate/incoming`, {WRITERS} writers: stored/s (until every item is `ready`)"
        ),
        per_sec(stored_rate),
        format!(
            "{ready} of {n} ready in {:.1} s ({:.0} MiB/s of media)",
            elapsed.as_secs_f64(),
            stored_rate * INGEST_BYTES as f64 / f64::from(1 << 20)
        ),
        "—",
        format!("(report); all {n} ready"),
        Some(ready == n && acks.errors == 0 && not_ready == 0),
    );
    report.line(
        "18",
        "… `simulate/incoming` answered (message stored, item `pending`) p50 / p99; posted → `ready` seen p50 / p99",
        format!(
            "{} / {}; {} / {}",
            ms(acks.p(0.5)),
            ms(acks.p(0.99)),
            ms(percentile_ms(&ready_latencies, 0.5)),
            ms(percentile_ms(&ready_latencies, 0.99))
        ),
        format!("at most {WINDOW} posted and not yet ready"),
        "—",
        "(report)",
        None,
    );
    report.line(
        "18",
        "… server RSS: idle before / half the items ready / all ready / settled after",
        format!(
            "{} / {} / {} / {}",
            mib(idle),
            mib(half),
            mib(end_rss),
            mib(after)
        ),
        format!(
            "{} the simulated backend's copies (the latest {} items; the real backend keeps none)",
            mib(stash_kib),
            STASH_ITEMS.min(n)
        ),
        "—",
        format!(
            "2nd half ≤ +{}; after ≤ idle + copies + {}",
            mib(INGEST_SECOND_HALF_KIB),
            mib(INGEST_AFTER_KIB)
        ),
        Some(
            end_rss.saturating_sub(half) <= INGEST_SECOND_HALF_KIB
                && after <= idle + stash_kib + INGEST_AFTER_KIB,
        ),
    );
    report.line(
        "18",
        "… server CPU per image (ingest + fetch + events)",
        format!(
            "{:.0} µs",
            cpu.server_cpu.as_secs_f64() * 1e6 / ready.max(1) as f64
        ),
        format!(
            "{:.0}% of a core over the run",
            100.0 * cpu.server_cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9)
        ),
        "—",
        "(report)",
        None,
    );
    report.detail(format!(
        "row 18 `simulate/incoming` answers: {} ok, {} errors{}; p50 {} p90 {} p99 {} max {}",
        acks.ok,
        acks.errors,
        if acks.error_samples.is_empty() {
            String::new()
        } else {
            format!(" ({:?})", acks.error_samples)
        },
        ms(acks.p(0.5)),
        ms(acks.p(0.9)),
        ms(acks.p(0.99)),
        ms(acks.p(1.0))
    ));
    report.detail(format!(
        "row 18: {ready} `media_updated` ready events, {not_ready} other ({not_ready_samples:?}), \
         {stray} ready events not matched to a request; {polls} polls of `GET /api/events` (every \
         10 ms); RSS idle {idle_breakdown}; peak {} of {samples} samples; settled after: {} \
         (VmHWM {}); CPU over the run (% of one core): this process {:.0}%, other processes {:.0}%",
        mib(peak),
        rss_breakdown(server.pid),
        mib(hwm),
        100.0 * cpu.client_cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        100.0 * cpu.other_cpu().as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
    ));
    let log = server.stop();
    log_detail(report, "row 18 server", &log);
    Ok(())
}
