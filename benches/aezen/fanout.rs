//! Row 7's client side: Socket.IO clients connected to a server, simulated incoming messages
//! sent at a fixed rate, and every delivery counted and timed.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::seed::{Account, contact_number};

struct FanShared {
    base: Instant,
    /// Deliveries per message number.
    received: Vec<AtomicU32>,
    latencies: Mutex<Vec<u32>>,
    connected: AtomicUsize,
    refused: AtomicUsize,
    strays: AtomicU64,
}

pub(crate) struct Fanout {
    pub(crate) messages: u64,
    pub(crate) http_errors: u64,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) latencies: Vec<u32>,
    pub(crate) http_latencies: Vec<u32>,
    pub(crate) connected: usize,
    pub(crate) sender_lag_ms: f64,
    /// `incoming_message` events whose content was not one of ours.
    pub(crate) strays: u64,
}

fn first_value(payload: rust_socketio::Payload) -> Value {
    match payload {
        rust_socketio::Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        _ => Value::Null,
    }
}

/// Connects `sockets` Socket.IO clients spread over `accounts` (round robin), then sends
/// `rate` simulated incoming messages per second for `time` (open loop, round robin over the
/// tenants) and measures, for every delivery to every socket of the tenant, the time from the
/// moment the ingest request was sent to the moment the client parsed the event.
pub(crate) async fn fanout(
    http: &reqwest::Client,
    addr: &str,
    accounts: &[Account],
    sockets: usize,
    rate: usize,
    time: Duration,
) -> anyhow::Result<Fanout> {
    use rust_socketio::asynchronous::{Client, ClientBuilder};
    use rust_socketio::{Event, Payload, TransportType};

    let total = (rate as f64 * time.as_secs_f64()) as usize;
    let shared = Arc::new(FanShared {
        base: Instant::now(),
        received: (0..total).map(|_| AtomicU32::new(0)).collect(),
        latencies: Mutex::new(Vec::with_capacity(total * sockets / accounts.len().max(1))),
        connected: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        strays: AtomicU64::new(0),
    });
    let per_tenant: Vec<AtomicU32> = accounts.iter().map(|_| AtomicU32::new(0)).collect();
    let per_tenant = Arc::new(per_tenant);

    let clients: Vec<Option<Client>> = futures::stream::iter(0..sockets)
        .map(|s| {
            let shared = Arc::clone(&shared);
            let per_tenant = Arc::clone(&per_tenant);
            let ti = s % accounts.len();
            let token = accounts[ti].token.to_string();
            let addr = addr.to_owned();
            async move {
                let on_event = {
                    let shared = Arc::clone(&shared);
                    move |event: Event, payload: Payload, _: Client| -> BoxFuture<'static, ()> {
                        if event.to_string() == "incoming_message" {
                            let now = shared.base.elapsed().as_micros();
                            let value = first_value(payload);
                            let parsed = value["message"]["content"].as_str().and_then(|c| {
                                let mut parts = c.split(' ');
                                let _tag = parts.next()?;
                                let k: usize = parts.next()?.parse().ok()?;
                                let sent: u128 = parts.next()?.parse().ok()?;
                                Some((k, sent))
                            });
                            match parsed {
                                Some((k, sent)) if k < shared.received.len() => {
                                    shared.received[k].fetch_add(1, Ordering::Relaxed);
                                    let lat =
                                        u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX);
                                    shared
                                        .latencies
                                        .lock()
                                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                                        .push(lat);
                                }
                                _ => {
                                    shared.strays.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        async {}.boxed()
                    }
                };
                let on_connect = {
                    let (shared, per_tenant) = (Arc::clone(&shared), Arc::clone(&per_tenant));
                    move |_: Payload, _: Client| -> BoxFuture<'static, ()> {
                        shared.connected.fetch_add(1, Ordering::Relaxed);
                        per_tenant[ti].fetch_add(1, Ordering::Relaxed);
                        async {}.boxed()
                    }
                };
                let on_error = {
                    let shared = Arc::clone(&shared);
                    move |_: Payload, _: Client| -> BoxFuture<'static, ()> {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                        async {}.boxed()
                    }
                };
                let connect = ClientBuilder::new(addr)
                    .namespace("/")
                    .auth(json!({ "token": token }))
                    .reconnect(false)
                    .transport_type(TransportType::Websocket)
                    .on(Event::Connect, on_connect)
                    .on(Event::Error, on_error)
                    .on_any(on_event)
                    .connect();
                tokio::time::timeout(Duration::from_secs(30), connect)
                    .await
                    .ok()?
                    .ok()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared.connected.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed)
        < sockets
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);

    // Open-loop sender: message k is due at k / rate seconds.
    let in_flight = Arc::new(Semaphore::new(512));
    let http_lat = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let ok_flags: Arc<Vec<AtomicBool>> =
        Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let http_errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        let ti = k % accounts.len();
        let token = Arc::clone(&accounts[ti].token);
        let (http, url) = (
            http.clone(),
            format!("{addr}/api/integrations/whatsapp/simulate/incoming"),
        );
        let (shared, http_lat, ok_flags, http_errors) = (
            Arc::clone(&shared),
            Arc::clone(&http_lat),
            Arc::clone(&ok_flags),
            Arc::clone(&http_errors),
        );
        tasks.spawn(async move {
            let sent = shared.base.elapsed().as_micros();
            let t0 = Instant::now();
            let body = json!({
                "from": contact_number(ti, 9_999),
                "pushName": "Fan-out",
                "content": format!("fanout {k} {sent}"),
            });
            let result = http.post(url).bearer_auth(&*token).json(&body).send().await;
            let ok = match result {
                Ok(res) => res.status() == StatusCode::CREATED && res.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                ok_flags[k].store(true, Ordering::Relaxed);
                http_lat
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                http_errors.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}

    let expected_for = |k: usize| -> u64 {
        if ok_flags[k].load(Ordering::Relaxed) {
            u64::from(per_tenant[k % accounts.len()].load(Ordering::Relaxed))
        } else {
            0
        }
    };
    let expected: u64 = (0..total).map(expected_for).sum();
    let grace = Instant::now() + Duration::from_secs(5);
    loop {
        let delivered: u64 = shared
            .received
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum();
        if delivered >= expected || Instant::now() > grace {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut delivered, mut lost, mut duplicates) = (0, 0, 0);
    for k in 0..total {
        let got = u64::from(shared.received[k].load(Ordering::Relaxed));
        let want = expected_for(k);
        delivered += got;
        lost += want.saturating_sub(got);
        duplicates += got.saturating_sub(want);
    }
    let disconnects = clients.iter().flatten().map(|c| {
        let c = c.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
        }
    });
    futures::future::join_all(disconnects).await;
    let latencies = std::mem::take(
        &mut *shared
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let http_latencies = std::mem::take(
        &mut *http_lat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(Fanout {
        messages: total as u64,
        http_errors: http_errors.load(Ordering::Relaxed),
        expected,
        delivered,
        lost,
        duplicates,
        latencies,
        http_latencies,
        connected,
        sender_lag_ms: max_lag.as_secs_f64() * 1000.0,
        strays: shared.strays.load(Ordering::Relaxed),
    })
}
