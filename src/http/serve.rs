//! Serving HTTP/1 connections with the limits `axum::serve` does not set.
//!
//! - **Header read timeout** (`--header-read-timeout-secs`): a connection that sends nothing,
//!   trickles its request head, or sits idle on keep-alive between requests is closed once
//!   this passes (hyper's timer runs from the moment it waits for a request head).
//! - **Body read timeout** (`--body-read-timeout-secs`): a request whose body stalls gets
//!   408 and its connection is closed (a `RequestBodyTimeout` layer on the router).
//! - **Connection caps** (`--max-connections`, `--max-connections-per-ip`): a connection over
//!   either cap is closed at once, before it holds anything, and counted
//!   (`aezen_connections_refused_total`); the global cap stays below the open-file limit so
//!   SQLite always has descriptors, and the per-IP cap keeps one client from taking every
//!   slot while others are answered. `aezen_connections_open` shows the current number.
//! - **Drain deadline** (`--shutdown-grace-secs`): on shutdown the listener closes, every
//!   connection is asked to finish its request, and whatever is still open when the grace
//!   period ends is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub shutdown_grace: Duration,
}

/// Connections open per client address (for the per-IP cap).
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

impl PerIp {
    /// Counts a new connection from `ip` unless it already has `cap`.
    fn enter(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<PerIpSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(PerIpSlot(Arc::clone(self), ip))
    }
}

/// One open connection of an address; counted down when dropped.
struct PerIpSlot(Arc<PerIp>, IpAddr);

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut open = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopping) = watch::channel(false);
    let per_ip = Arc::new(PerIp::default());
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // A finished connection's task is reaped at once: until joined, each holds its
            // whole task cell (sized for hyper's connection future), so a burst of closed
            // connections would otherwise stay in memory until the next accept.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let slot = (connections.len() < limits.max_connections)
            .then(|| per_ip.enter(remote.ip(), limits.max_connections_per_ip))
            .flatten();
        let Some(slot) = slot else {
            metrics.connections_refused.inc();
            tracing::debug!(peer = %remote, "connection refused: at the connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(req)
        });
        let mut stopping = stopping.clone();
        let open = metrics.connections_open.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let _slot = slot;
            open.inc();
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let stop = async {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(peer = %remote, error = %err, "connection ended with an error");
            }
            open.dec();
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_secs = limits.shutdown_grace.as_secs(),
            "shutdown grace period over; closing the connections still open"
        );
        connections.shutdown().await;
    }
}
