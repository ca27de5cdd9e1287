//! Plain TCP to the server, for what an HTTP client library will not do: declare a body and
//! not send it, stop half-way through a request.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::TestApp;

/// A raw connection to the app.
pub async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("tcp connect")
}

/// Reads one response (head and `Content-Length` body) within `within`: its status code and
/// body. Panics if it has not arrived in time.
pub async fn read_response(stream: &mut TcpStream, within: Duration) -> (u16, String) {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(response) = parse(&buf) {
                return response;
            }
            let n = stream.read(&mut chunk).await.expect("read response");
            assert!(
                n > 0,
                "connection closed before a whole response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| panic!("no response within {within:?}"))
}

fn parse(buf: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| (status, body[..length].to_owned()))
}
