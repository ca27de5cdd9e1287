//! Rows 1, 2 and 7 on one server of 100 tenants: the hot conversation list, sending, and the
//! Socket.IO fan-out, each against the `--bare` child or a bare rusqlite loop.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::baseline::{BareKind, BareLoop};
use crate::children::{Proc, wait_healthy, wait_idle};
use crate::fanout::fanout;
use crate::load::{
    MakeRequest, Side, against_bare_loop, get_json, hot_list, interleaved, percentile_ms,
    post_json, profile,
};
use crate::procfs::rss_breakdown;
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{
    Account, InProcess, add_conversations, contact_number, create_tenants, link_over_http,
    unlink_over_http,
};
use crate::{Options, Scale, Shared};

/// Rows 1, 2 and 7: 100 tenants × 200 conversations on a server process.
pub(crate) async fn inbox_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
    shared: &mut Shared,
) -> anyhow::Result<()> {
    let root = tmp.join("inbox");
    step(&format!(
        "preparing {} tenants × {} conversations (in process, through the app's functions)",
        scale.tenants, scale.conversations
    ));
    let t = Instant::now();
    let app = InProcess::start(&root, 256).await?;
    let accounts = create_tenants(&app.state, scale.tenants, "inbox").await?;
    let created = t.elapsed();
    add_conversations(&app.state, &accounts, scale.conversations).await?;
    app.stop().await;
    report.detail(format!(
        "set-up: {} tenants signed up in {:.1} s, {} conversations ingested in {:.1} s",
        scale.tenants,
        created.as_secs_f64(),
        scale.tenants * scale.conversations,
        (t.elapsed() - created).as_secs_f64()
    ));

    let root_s = root.to_str().context("utf-8 path")?;
    let sessions = root.join("sessions");
    let server = Proc::spawn(
        &[
            "--serve",
            root_s,
            "256",
            sessions.to_str().context("utf-8")?,
        ],
        tmp,
        "inbox-server",
    )?;
    let addr = server.addr.clone();
    wait_healthy(http, &addr, Duration::from_secs(30)).await?;

    // What the baseline serves: a page AEZEN answered, and AEZEN's incoming_message shape.
    let page = http
        .get(format!("{addr}/api/conversations?limit=50"))
        .bearer_auth(&*accounts[0].token)
        .send()
        .await?
        .bytes()
        .await?;
    let page_json: Value = serde_json::from_slice(&page)?;
    let (status, sample) = post_json(
        http,
        &format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        &accounts[0].token,
        &json!({"from": contact_number(0, 0), "pushName": "Contact 0", "content": "sample"}),
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!("simulate/incoming: {status} {sample}");
    }
    let event = json!({
        "seq": 1, "type": "incoming_message", "createdAt": Utc::now(),
        "message": sample["message"], "conversation": page_json["items"][0],
    });
    let page_file = tmp.join("page.json");
    let event_file = tmp.join("event.json");
    std::fs::write(&page_file, &page)?;
    std::fs::write(&event_file, serde_json::to_vec(&event)?)?;
    let bare = Proc::spawn(
        &[
            "--bare",
            page_file.to_str().context("utf-8")?,
            event_file.to_str().context("utf-8")?,
        ],
        tmp,
        "bare",
    )?;
    report.detail(format!(
        "row 1 page: {} bytes, {} conversations",
        page.len(),
        page_json["items"].as_array().map_or(0, Vec::len)
    ));

    if options.wants(1) {
        step("row 1: hot GET /api/conversations?limit=50");
        let tokens: Arc<Vec<Arc<str>>> =
            Arc::new(accounts.iter().map(|a| Arc::clone(&a.token)).collect());
        let aezen_side = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: hot_list(addr.clone(), &tokens),
        };
        let bare_side = Side {
            expect: StatusCode::OK,
            pid: Some(bare.pid),
            make: hot_list(bare.addr.clone(), &tokens),
        };
        let (hot, bare_load) = interleaved(http, scale, &aezen_side, &bare_side).await;
        profile(
            options,
            http,
            scale,
            server.pid,
            "row1-hot-list",
            &aezen_side,
        )
        .await;
        let r = hot.rate() / bare_load.rate();
        report.line(
            "1",
            "hot `GET /api/conversations?limit=50`, 100 tenants × 200 conv., 64 conn.: throughput",
            per_sec(hot.rate()),
            format!("{} (bare axum, same bytes)", per_sec(bare_load.rate())),
            ratio(hot.rate(), bare_load.rate()),
            "≥ 0.50×",
            Some(r >= 0.50),
        );
        let (cpu, bare_cpu) = (
            hot.server_cpu_per_request(),
            bare_load.server_cpu_per_request(),
        );
        report.line(
            "1",
            "… server CPU per request",
            format!("{cpu:.0} µs"),
            format!("{bare_cpu:.0} µs"),
            ratio(cpu, bare_cpu),
            "≤ 30 µs",
            Some(cpu <= 30.0),
        );
        for (what, q) in [("… p50 latency", 0.50), ("… p99 latency", 0.99)] {
            report.line(
                "1",
                what,
                ms(hot.p(q)),
                ms(bare_load.p(q)),
                ratio(hot.p(q), bare_load.p(q)),
                "—",
                None,
            );
        }
        report.line(
            "1",
            "… errors",
            hot.errors.to_string(),
            bare_load.errors.to_string(),
            "—",
            "0",
            Some(hot.errors == 0),
        );
        describe_load(report, "row 1 AEZEN", &hot);
        describe_load(report, "row 1 bare axum", &bare_load);
        shared.hot_rps = Some(hot.rate());
    }

    if options.wants(2) {
        step("row 2: POST /api/conversations/:id/send (acknowledged, pending)");
        // Every tenant's conversation ids; request i goes to tenant i % 100.
        let mut per: Vec<Vec<(Arc<str>, String)>> = Vec::with_capacity(accounts.len());
        for account in &accounts {
            let page = get_json(
                http,
                &format!("{addr}/api/conversations?limit=200"),
                &account.token,
            )
            .await?;
            per.push(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| {
                        Some((Arc::clone(&account.token), item["id"].as_str()?.to_owned()))
                    })
                    .collect(),
            );
        }
        let per = Arc::new(per);
        let make_send = |base: String| -> MakeRequest {
            let per = Arc::clone(&per);
            Arc::new(move |c: &reqwest::Client, i: u64| {
                let tenant = &per[i as usize % per.len()];
                let (token, id) = &tenant[(i as usize / per.len()) % tenant.len()];
                c.post(format!("{base}/api/conversations/{id}/send"))
                    .bearer_auth(&**token)
                    .json(&json!({"content": format!("Reply {i} from the team, thanks for writing!")}))
            })
        };
        let t = Instant::now();
        link_over_http(http, &addr, &accounts).await?;
        report.detail(format!(
            "row 2: {} tenants linked over HTTP in {:.1} s",
            accounts.len(),
            t.elapsed().as_secs_f64()
        ));
        let side = Side {
            expect: StatusCode::CREATED,
            pid: Some(server.pid),
            make: make_send(addr.clone()),
        };
        let bare_loop = BareLoop::new(&tmp.join("bare-send.db"), BareKind::Send)?;
        let (linked, bare_load, settled, bare_loop) =
            against_bare_loop(http, scale, &side, &server, bare_loop).await?;
        profile(options, http, scale, server.pid, "row2-send", &side).await;
        wait_idle(&server, Duration::from_secs(60)).await;
        let (pending_left, sampled) =
            pending_messages(http, &addr, &accounts[..5.min(accounts.len())]).await?;
        let bare_rate = bare_load.rate();
        let r = linked.rate() / bare_rate;
        report.line("2", "`POST …/send` acknowledged (201, stored `pending`), 100 tenants, sessions linked, 64 conn.",
            per_sec(linked.rate()), format!("{} (bare rusqlite, 1 tx/msg, 1 file)", per_sec(bare_rate)),
            ratio(linked.rate(), bare_rate), "≥ 0.40×", Some(r >= 0.40));
        let sustained = linked.ok as f64 / (linked.elapsed + settled).as_secs_f64();
        report.line(
            "2",
            "… sustained: acknowledged and sent by the outbox (load time + drain time)",
            per_sec(sustained),
            per_sec(bare_rate),
            ratio(sustained, bare_rate),
            "(info)",
            None,
        );
        report.line(
            "2",
            "… p99 latency / errors",
            format!("{} / {}", ms(linked.p(0.99)), linked.errors),
            "—",
            "—",
            "0 errors",
            Some(linked.errors == 0),
        );
        describe_load(report, "row 2 AEZEN (linked)", &linked);
        describe_load(report, "row 2 bare rusqlite", &bare_load);
        report.detail(format!(
            "row 2: after its load slices the outbox needed {:.1} s in all to go idle; then {pending_left} of {sampled} \
             sampled messages (5 tenants' 5 newest conversations) were still `pending`",
            settled.as_secs_f64()
        ));

        // The same load with every session down: the outbox has nothing to send.
        unlink_over_http(http, &addr, &accounts).await?;
        let (unlinked, bare_load2, _, _) =
            against_bare_loop(http, scale, &side, &server, bare_loop).await?;
        report.line(
            "2",
            "… same, sessions down (outbox has nothing to send)",
            per_sec(unlinked.rate()),
            per_sec(bare_load2.rate()),
            ratio(unlinked.rate(), bare_load2.rate()),
            "(info)",
            None,
        );
        describe_load(report, "row 2 AEZEN (sessions down)", &unlinked);
        describe_load(report, "row 2 bare rusqlite (second pass)", &bare_load2);
    }

    if options.wants(7) {
        step(&format!(
            "row 7: fan-out to {} Socket.IO clients, {} msg/s",
            scale.sockets, scale.fanout_rate
        ));
        let (rss_before, _) = server.memory();
        let aezen_fan = fanout(
            http,
            &addr,
            &accounts,
            scale.sockets,
            scale.fanout_rate,
            scale.fanout_time,
        )
        .await?;
        let (rss_after, _) = server.memory();
        report.detail(format!(
            "row 7: server RSS {} before the sockets connected, {} after the fan-out (sockets closed)",
            mib(rss_before), mib(rss_after)
        ));
        let bare_fan = fanout(
            http,
            &bare.addr,
            &accounts,
            scale.sockets,
            scale.fanout_rate,
            scale.fanout_time,
        )
        .await?;
        let p99 = percentile_ms(&aezen_fan.latencies, 0.99);
        let bare_p99 = percentile_ms(&bare_fan.latencies, 0.99);
        report.line("7", format!("`incoming_message` fan-out, {} sockets / {} tenants, {} msg/s: p99 ingest request → client",
            aezen_fan.connected, accounts.len(), scale.fanout_rate),
            ms(p99), format!("{} (bare socketioxide broadcast)", ms(bare_p99)), ratio(p99, bare_p99), "≤ 50 ms", Some(p99 <= 50.0));
        report.line(
            "7",
            "… lost deliveries (of expected)",
            format!("{} of {}", aezen_fan.lost, aezen_fan.expected),
            format!("{} of {}", bare_fan.lost, bare_fan.expected),
            "—",
            "0",
            Some(aezen_fan.lost == 0 && aezen_fan.http_errors == 0),
        );
        for (name, f) in [("AEZEN", &aezen_fan), ("bare", &bare_fan)] {
            report.detail(format!(
                "row 7 {name}: {} sockets connected, {} messages ({} HTTP errors), {} deliveries expected, {} delivered, {} lost, {} duplicates, {} unrecognised; \
                 delivery p50 {} / p99 {} / max {}; HTTP ack p50 {} / p99 {}; sender lag max {:.1} ms",
                f.connected, f.messages, f.http_errors, f.expected, f.delivered, f.lost, f.duplicates, f.strays,
                ms(percentile_ms(&f.latencies, 0.5)), ms(percentile_ms(&f.latencies, 0.99)), ms(percentile_ms(&f.latencies, 1.0)),
                ms(percentile_ms(&f.http_latencies, 0.5)), ms(percentile_ms(&f.http_latencies, 0.99)), f.sender_lag_ms
            ));
        }
    }

    let (rss, hwm) = server.memory();
    report.detail(format!(
        "inbox server at the end: RSS {} ({}; peak {}), {} open files, {} threads",
        mib(rss),
        rss_breakdown(server.pid),
        mib(hwm),
        server.open_files(),
        server.threads()
    ));
    drop(bare);
    let log = server.stop();
    log_detail(report, "inbox server", &log);
    Ok(())
}

/// Messages still `pending` in the newest conversations of some tenants, and how many were looked at.
async fn pending_messages(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<(usize, usize)> {
    let (mut pending, mut seen) = (0, 0);
    for account in accounts {
        let page = get_json(
            http,
            &format!("{addr}/api/conversations?limit=5"),
            &account.token,
        )
        .await?;
        for item in page["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or_default();
            let messages = get_json(
                http,
                &format!("{addr}/api/conversations/{id}/messages?limit=200"),
                &account.token,
            )
            .await?;
            for m in messages["items"].as_array().into_iter().flatten() {
                seen += 1;
                if m["status"] == "pending" {
                    pending += 1;
                }
            }
        }
    }
    Ok((pending, seen))
}
