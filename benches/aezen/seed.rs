//! The bench's data, made through the application's own functions: tenants signed up,
//! conversations ingested, WhatsApp sessions linked (in this process or over HTTP).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aezen::bench::{ApiError, Ingested, SessionState, SignUp, TenantId, sign_up_hashed};
use aezen::whatsapp::{InboundEvent, IncomingMessage};
use aezen::{AppState, Application};
use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::oneshot;

use crate::children::bench_config;
use crate::load::{get_json, post_json};

/// A signed-up tenant: its owner's token.
#[derive(Clone)]
pub(crate) struct Account {
    pub(crate) tenant: TenantId,
    pub(crate) token: Arc<str>,
}

trait OrApi<T> {
    fn api(self) -> anyhow::Result<T>;
}

impl<T> OrApi<T> for Result<T, ApiError> {
    fn api(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("{e}"))
    }
}

/// The application in this process (data preparation, row 3), served on 127.0.0.1:0.
pub(crate) struct InProcess {
    pub(crate) state: AppState,
    pub(crate) addr: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    pub(crate) async fn start(root: &Path, capacity: u64) -> anyhow::Result<Self> {
        let mut config = bench_config(root);
        config.tenant_cache_capacity = Some(capacity);
        let app = Application::build(config).await?;
        let addr = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            state,
            addr,
            stop,
            task,
        })
    }

    /// Stops serving and closes every database.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Signs tenants up with the product's own sign-up (`aezen::bench::sign_up_hashed`: registry
/// row and owner in one transaction, then the tenant's file created and migrated), except
/// that the argon2 hash is computed once and reused (same PHC string for every owner).
pub(crate) async fn create_tenants(
    state: &AppState,
    n: usize,
    label: &str,
) -> anyhow::Result<Vec<Account>> {
    let hash: Arc<str> = state
        .passwords
        .hash("bench password 123".to_owned())
        .await
        .api()?
        .into();
    let created: Vec<anyhow::Result<(usize, Account)>> = futures::stream::iter(0..n)
        .map(|i| {
            let (state, hash) = (state.clone(), Arc::clone(&hash));
            let label = label.to_owned();
            async move {
                let req = SignUp {
                    tenant_name: format!("Bench {label} {i}"),
                    name: "Owner".to_owned(),
                    email: format!("owner-{label}-{i}@bench.example"),
                    password: String::new(),
                };
                let signed = sign_up_hashed(
                    &state.master,
                    &state.tenants,
                    &state.auth.tokens,
                    req,
                    &hash,
                )
                .await
                .api()?;
                let (tenant, token) = (signed.tenant, signed.token);
                Ok((
                    i,
                    Account {
                        tenant: tenant.id,
                        token: token.into(),
                    },
                ))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut accounts = created.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    accounts.sort_by_key(|(i, _)| *i);
    Ok(accounts.into_iter().map(|(_, a)| a).collect())
}

/// A contact's number: unique per (tenant index, contact index).
pub(crate) fn contact_number(tenant: usize, contact: usize) -> String {
    format!("+1{:04}{:06}", tenant % 10_000, contact)
}

/// Fills each tenant's inbox with `per_tenant` conversations (one incoming message from each
/// of that many contacts), through the ingest path `simulate/incoming` uses.
pub(crate) async fn add_conversations(
    state: &AppState,
    accounts: &[Account],
    per_tenant: usize,
) -> anyhow::Result<u64> {
    ingest(state, accounts, per_tenant, |ti, c| IncomingMessage {
        whatsapp_id: format!("PREP-{ti}-{c}"),
        contact_number: contact_number(ti, c),
        push_name: Some(format!("Contact {c}")),
        content: format!("Hello from contact {c}, a first message for the inbox."),
        from_me: false,
        media: None,
        timestamp: Utc::now(),
    })
    .await
}

/// Adds `per_tenant` incoming messages of about `bytes` bytes of text to each tenant, in turn
/// from `contacts` contacts (the first message of each opens its conversation), through the
/// ingest path; `round` keeps WhatsApp message ids unique across calls. The text is
/// pseudo-words of random syllables, so that it compresses (zstd, in an export) about as much
/// as chat text and not like one sentence repeated.
pub(crate) async fn add_messages(
    state: &AppState,
    accounts: &[Account],
    per_tenant: usize,
    contacts: usize,
    bytes: usize,
    round: usize,
) -> anyhow::Result<u64> {
    const SYLLABLES: [&str; 32] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pa", "ble", "chi", "fo", "gu", "ha",
        "je", "ko", "li", "mo", "nu", "pre", "qui", "ro", "se", "tu", "va", "we", "xi", "yo", "za",
        "bri", "sto",
    ];
    ingest(state, accounts, per_tenant, move |ti, m| {
        let c = m % contacts;
        // xorshift64, seeded per message.
        let mut x =
            0x9e37_79b9_7f4a_7c15_u64 ^ ((ti as u64) << 40) ^ ((round as u64) << 32) ^ m as u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut content = format!("#{round}.{m}");
        while content.len() < bytes {
            content.push(' ');
            for _ in 0..=next() % 3 {
                content.push_str(SYLLABLES[(next() % 32) as usize]);
            }
        }
        content.truncate(bytes);
        IncomingMessage {
            whatsapp_id: format!("FILL-{round}-{ti}-{m}"),
            contact_number: contact_number(ti, c),
            push_name: Some(format!("Contact {c}")),
            content: content.trim_end().to_owned(),
            from_me: false,
            media: None,
            timestamp: Utc::now(),
        }
    })
    .await
}

/// Injects `per_tenant` messages (`message(tenant index, i)`) into each tenant and waits until
/// every one is stored.
async fn ingest(
    state: &AppState,
    accounts: &[Account],
    per_tenant: usize,
    message: impl Fn(usize, usize) -> IncomingMessage + Clone,
) -> anyhow::Result<u64> {
    let sim = state.simulated.clone().context("simulated backend")?;
    let stored: Vec<u64> = futures::stream::iter(accounts.iter().enumerate())
        .map(|(ti, account)| {
            let (sim, tenant, message) = (Arc::clone(&sim), account.tenant, message.clone());
            async move {
                let mut replies = Vec::with_capacity(per_tenant);
                for i in 0..per_tenant {
                    let (tx, rx) = oneshot::channel();
                    sim.inject(
                        tenant,
                        InboundEvent::Message {
                            message: message(ti, i),
                            stored: Some(tx),
                        },
                    )
                    .await;
                    replies.push(rx);
                }
                let mut ok = 0;
                for rx in replies {
                    if matches!(rx.await, Ok(Ingested::Stored(_))) {
                        ok += 1;
                    }
                }
                ok
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let total = stored.iter().sum();
    let expected = (accounts.len() * per_tenant) as u64;
    if total != expected {
        bail!("only {total} of {expected} preparation messages were stored");
    }
    Ok(total)
}

/// What [`fill_to`] made.
pub(crate) struct Filled {
    /// Mean size of the tenants' files (database and any `-wal`), in bytes.
    pub(crate) mean_bytes: u64,
    pub(crate) messages_per_tenant: usize,
    pub(crate) rounds: usize,
    pub(crate) took: Duration,
}

/// Grows every tenant's file under `root` to about `target` bytes with [`add_messages`]
/// (`bytes` of text each, from `contacts` contacts per tenant), in the app started in this
/// process: a round of messages, the app stopped (its files closed and checkpointed), the
/// files measured, and another round sized from what the last one added, until the mean file
/// reaches 98 % of `target` (at most 5 rounds).
pub(crate) async fn fill_to(
    root: &Path,
    accounts: &[Account],
    contacts: usize,
    bytes: usize,
    target: u64,
) -> anyhow::Result<Filled> {
    let started = Instant::now();
    let mut mean = mean_tenant_file(root, accounts.len())?;
    // A first guess of a message's cost in the file (row, indexes, its event); measured after.
    let mut per_message = 5 * bytes as u64;
    let mut messages = 0;
    let mut rounds = 0;
    while mean < target * 98 / 100 && rounds < 5 {
        let missing = target.saturating_sub(mean);
        let estimate = usize::try_from(missing / per_message.max(1))?;
        // Under-shoot the first, guessed round; aim at the target once measured.
        let n = if rounds == 0 {
            estimate * 3 / 4
        } else {
            estimate + 1
        };
        let n = n.max(1);
        let app = InProcess::start(root, 256).await?;
        add_messages(&app.state, accounts, n, contacts, bytes, rounds).await?;
        app.stop().await;
        let after = mean_tenant_file(root, accounts.len())?;
        per_message = (after.saturating_sub(mean) / n as u64).max(1);
        mean = after;
        messages += n;
        rounds += 1;
    }
    Ok(Filled {
        mean_bytes: mean,
        messages_per_tenant: messages,
        rounds,
        took: started.elapsed(),
    })
}

/// The mean size of the tenant files (`.db` plus `-wal`) under `root`'s data dir.
fn mean_tenant_file(root: &Path, tenants: usize) -> anyhow::Result<u64> {
    let dir = bench_config(root).tenants_dir();
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".db") || name.ends_with(".db-wal") {
            total += entry.metadata()?.len();
        }
    }
    Ok(total / tenants.max(1) as u64)
}

/// Links tenants' simulated WhatsApp the way the dashboard does (toggle on, QR shown, phone
/// scans), through the session manager: each leaves a linked session folder behind.
pub(crate) async fn link_in_process(state: &AppState, accounts: &[Account]) -> anyhow::Result<()> {
    let sim = state.simulated.clone().context("simulated backend")?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(accounts.iter())
        .map(|account| {
            let (state, sim, tenant) = (state.clone(), Arc::clone(&sim), account.tenant);
            async move {
                state.sessions.toggle(tenant).await.api()?;
                wait_state(&state, tenant, SessionState::Qr).await?;
                sim.scan(tenant).await.map_err(|e| anyhow!("{e}"))?;
                wait_state(&state, tenant, SessionState::Connected).await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn wait_state(
    state: &AppState,
    tenant: TenantId,
    wanted: SessionState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.sessions.status(tenant).state != wanted {
        if Instant::now() > deadline {
            bail!("tenant {tenant} did not reach {wanted:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Links (or unlinks) tenants over HTTP on a running server: toggle, wait for the QR code,
/// `simulate/scan`, wait until connected.
pub(crate) async fn link_over_http(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(accounts.iter())
        .map(|account| {
            let (http, token) = (http.clone(), Arc::clone(&account.token));
            async move {
                let base = format!("{addr}/api/integrations/whatsapp");
                let (status, body) =
                    post_json(&http, &format!("{base}/toggle"), &token, &json!({})).await?;
                if status != StatusCode::OK {
                    bail!("toggle: {status} {body}");
                }
                wait_http_state(&http, &base, &token, "qr").await?;
                let (status, body) =
                    post_json(&http, &format!("{base}/simulate/scan"), &token, &json!({})).await?;
                if status != StatusCode::ACCEPTED {
                    bail!("scan: {status} {body}");
                }
                wait_http_state(&http, &base, &token, "connected").await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

pub(crate) async fn unlink_over_http(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
) -> anyhow::Result<()> {
    for account in accounts {
        let base = format!("{addr}/api/integrations/whatsapp");
        let (status, body) = post_json(
            http,
            &format!("{base}/simulate/unlink"),
            &account.token,
            &json!({}),
        )
        .await?;
        if !status.is_success() {
            bail!("unlink: {status} {body}");
        }
        wait_http_state(http, &base, &account.token, "logged_out").await?;
    }
    Ok(())
}

async fn wait_http_state(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    wanted: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(http, &format!("{base}/status"), token).await?;
        if status["state"] == wanted {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("session did not reach {wanted}: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
