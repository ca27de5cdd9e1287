//! Limits at the door, with real sockets: idle, slow and stalled clients are closed; one
//! client address cannot take every connection slot; the cap is counted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{raw, spawn_app_with};

/// Waits until the server closes `stream` (EOF or reset); panics after `within`. Returns how
/// long it took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open past {within:?}"
    );
    started.elapsed()
}

/// A connection from `source` (another loopback address: another client) to the app.
async fn connect_from(app: &crate::helpers::TestApp, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    socket.connect(address).await.unwrap()
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.header_read_timeout_secs = 1).await;

    let mut silent = raw::connect(&app).await;
    let mut slow = raw::connect(&app).await;
    slow.write_all(b"GET /api/healthz HTTP/1.1\r\nHost: a")
        .await
        .unwrap();
    let mut idle = raw::connect(&app).await;
    idle.write_all(b"GET /api/healthz HTTP/1.1\r\nHost: aezen.test\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = raw::read_response(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(status, 200, "a whole request is answered");

    for (what, stream) in [
        ("silent", &mut silent),
        ("slow", &mut slow),
        ("idle", &mut idle),
    ] {
        let took = closed_within(stream, Duration::from_secs(5)).await;
        assert!(
            took < Duration::from_secs(4),
            "{what}: closed after {took:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_stalls_gets_408() {
    let app = spawn_app_with(|c| c.body_read_timeout_secs = 1).await;
    let mut stream = raw::connect(&app).await;
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: aezen.test\r\n\
              Content-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let (status, body) = raw::read_response(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("request_timeout"), "{body}");
}

#[tokio::test]
async fn one_client_cannot_take_every_connection_while_others_are_answered() {
    let app = spawn_app_with(|c| {
        c.max_connections_per_ip = 4;
        c.header_read_timeout_secs = 30;
    })
    .await;
    // Another client (127.0.0.2) opens its share and sits on it.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(&app, "127.0.0.2").await);
    }
    let (status, _) = app
        .request(reqwest::Method::GET, "/api/healthz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "others are still answered");
    let mut refused = connect_from(&app, "127.0.0.2").await;
    refused
        .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: aezen.test\r\n\r\n")
        .await
        .unwrap();
    closed_within(&mut refused, Duration::from_secs(2)).await;
    assert!(app.metric("aezen_connections_refused_total").await >= 1);

    // A slot it gives back is its own again.
    drop(held.pop());
    let mut stream = None;
    for _ in 0..50 {
        let mut again = connect_from(&app, "127.0.0.2").await;
        again
            .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: aezen.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        if matches!(again.read(&mut buf).await, Ok(n) if n > 0) {
            stream = Some(buf);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = stream.expect("a freed slot takes a new connection");
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
}
