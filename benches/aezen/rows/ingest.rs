//! Row 3: incoming messages ingested by the application in this process, in rounds that
//! alternate with the bare rusqlite ingest loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aezen::bench::Ingested;
use aezen::whatsapp::{InboundEvent, IncomingMessage};
use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::Scale;
use crate::baseline::{BareKind, BareLoop};
use crate::load::{CpuMark, Load, metrics, micros};
use crate::report::{Report, describe_load, per_sec, ratio, step};
use crate::seed::{Account, InProcess, contact_number, create_tenants};

/// One round of row 3: `per_tenant` incoming messages to every tenant, injected at once
/// (each tenant's in order), each acknowledged once stored.
async fn ingest_round(
    sim: &Arc<aezen::whatsapp::simulated::Simulated>,
    accounts: &[Account],
    per_tenant: usize,
    round: usize,
    contacts: usize,
) -> Load {
    let mark = CpuMark::now(None);
    let start = Instant::now();
    let parts: Vec<Load> = futures::stream::iter(accounts.iter().enumerate())
        .map(|(ti, account)| {
            let (sim, tenant) = (Arc::clone(sim), account.tenant);
            async move {
                let mut replies = Vec::with_capacity(per_tenant);
                for m in 0..per_tenant {
                    let (tx, rx) = oneshot::channel();
                    let message = IncomingMessage {
                        whatsapp_id: format!("IN-{round}-{ti}-{m}"),
                        contact_number: contact_number(ti, m % contacts),
                        push_name: Some(format!("Contact {}", m % contacts)),
                        content: format!("Incoming message {m}, hello there!"),
                        from_me: false,
                        media: None,
                        timestamp: Utc::now(),
                    };
                    let t0 = Instant::now();
                    sim.inject(
                        tenant,
                        InboundEvent::Message {
                            message,
                            stored: Some(tx),
                        },
                    )
                    .await;
                    replies.push((t0, rx));
                }
                let mut part = Load::default();
                for (t0, rx) in replies {
                    match rx.await {
                        Ok(Ingested::Stored(_)) => {
                            part.ok += 1;
                            part.latencies.push(micros(t0));
                        }
                        Ok(Ingested::Duplicate) => {
                            part.errors += 1;
                            if part.error_samples.is_empty() {
                                part.error_samples.push("stored as a duplicate".to_owned());
                            }
                        }
                        Err(_) => {
                            part.errors += 1;
                            if part.error_samples.is_empty() {
                                part.error_samples
                                    .push("no answer: the batch was not stored".to_owned());
                            }
                        }
                    }
                }
                part
            }
        })
        .buffer_unordered(accounts.len())
        .collect()
        .await;
    let mut load = Load::default();
    for part in parts {
        load.absorb(part);
    }
    load.elapsed = start.elapsed();
    mark.close(&mut load);
    load
}

/// Row 3: ingest in this process, in rounds alternating with the bare loop.
pub(crate) async fn ingest_row(
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    step(&format!(
        "row 3: ingest of {} incoming messages over {} tenants, in process",
        scale.ingest_messages, scale.tenants
    ));
    let root = tmp.join("ingest");
    let app = InProcess::start(&root, 256).await?;
    let accounts = create_tenants(&app.state, scale.tenants, "ingest").await?;
    let sim = app.state.simulated.clone().context("simulated backend")?;
    let contacts = 50;
    let rounds = scale.slices as usize;
    let per_tenant = scale.ingest_messages / accounts.len() / rounds;
    // Warm-up: every tenant's contacts exist, every pool is open.
    ingest_round(&sim, &accounts, contacts, 0, contacts).await;
    let before = metrics(http, &app.addr).await;
    let mut bare = BareLoop::new(&tmp.join("bare-ingest.db"), BareKind::Ingest { contacts })?;
    let (back, _) = bare.slice(scale.warmup).await?;
    bare = back;
    let (mut aezen, mut bare_load) = (Load::default(), Load::default());
    for round in 1..=rounds {
        aezen.absorb(ingest_round(&sim, &accounts, per_tenant, round, contacts).await);
        let (back, l) = bare.slice(scale.bare_loop / scale.slices).await?;
        bare = back;
        bare_load.absorb(l);
    }
    let after = metrics(http, &app.addr).await;
    app.stop().await;
    let delta = |name: &str| {
        after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
    };
    let events = delta("aezen_ingest_events_total");
    let transactions = delta("aezen_ingest_transactions_total");
    let (rate, bare_rate) = (aezen.rate(), bare_load.rate());
    report.line(
        "3",
        format!(
            "ingest of incoming messages, in process, {} tenants: stored/s (ack after commit)",
            accounts.len()
        ),
        per_sec(rate),
        format!("{} (bare rusqlite, 1 tx/msg, 1 file)", per_sec(bare_rate)),
        ratio(rate, bare_rate),
        "≥ 1.0×",
        Some(rate / bare_rate >= 1.0 && aezen.errors == 0),
    );
    report.line(
        "3",
        "… batch size (`aezen_ingest_events_total / aezen_ingest_transactions_total`)",
        format!("{:.1} msgs/tx", events / transactions.max(1.0)),
        "1 msg/tx",
        "—",
        "(info)",
        None,
    );
    describe_load(report, "row 3 AEZEN (inject → stored)", &aezen);
    describe_load(report, "row 3 bare rusqlite", &bare_load);
    report.detail(format!(
        "row 3: {events} events stored in {transactions} transactions"
    ));
    Ok(())
}
