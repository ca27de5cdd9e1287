//! The control socket: how an operations command reaches a running server.
//!
//! `<data-dir>/control.sock`, a Unix socket of mode 0600 (only the user the server runs as,
//! and root, can connect; nothing listens on the network). A client sends one request as a
//! JSON line ([`Request`]); the server answers with JSON lines: any number of
//! `{"note": …}` while the command runs, then one `{"outcome": …}` or `{"error": "…"}`.
//! Paths in a request are absolute (the client resolves them) and are read and written by the
//! server process.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::{Note, Operations, Outcome, Progress, Request};

/// The socket's file name inside the data dir.
pub const SOCKET: &str = "control.sock";
/// Largest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Reply {
    Note(Note),
    Outcome(Outcome),
    Error(String),
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Binds the control socket (replacing a stale one: the caller holds the data dir's lock, so
/// no other server is behind it) with mode 0600.
pub fn bind(data_dir: &Path) -> anyhow::Result<UnixListener> {
    let path = socket_path(data_dir);
    super::remove_if_present(&path)?;
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot bind the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers control-socket clients until the task is dropped; one command at a time per
/// client, any number of clients.
pub async fn serve(listener: UnixListener, ops: Operations) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, ops.clone()));
            }
            Err(err) => {
                tracing::warn!(error = %err, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, ops: Operations) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    if let Err(err) = reader.read_line(&mut line).await {
        tracing::warn!(error = %err, "control socket read failed");
        return;
    }
    let (replies, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        while let Some(reply) = outgoing.recv().await {
            let Ok(mut bytes) = serde_json::to_vec(&reply) else {
                continue;
            };
            bytes.push(b'\n');
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::Error(format!("not a control request: {e}")),
        Ok(request) => {
            tracing::info!(?request, "operation requested over the control socket");
            let notes = replies.clone();
            let progress: Progress = Arc::new(move |note| {
                let _ = notes.send(Reply::Note(note));
            });
            match ops.execute(request, &progress).await {
                Ok(outcome) => Reply::Outcome(outcome),
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "operation failed");
                    Reply::Error(format!("{e:#}"))
                }
            }
        }
    };
    let _ = replies.send(reply);
    drop(replies);
    let _ = writer.await;
}

/// Sends `request` to the server behind `data_dir`'s control socket and waits for its
/// outcome, handing each note to `on_note`.
pub fn call(
    data_dir: &Path,
    request: &Request,
    mut on_note: impl FnMut(Note),
) -> anyhow::Result<Outcome> {
    let path = socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "a server holds {} but its control socket {} does not answer",
            data_dir.display(),
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    for line in BufReader::new(stream).lines() {
        match serde_json::from_str::<Reply>(&line?)? {
            Reply::Note(note) => on_note(note),
            Reply::Outcome(outcome) => return Ok(outcome),
            Reply::Error(message) => bail!("{message}"),
        }
    }
    bail!("the server closed the control socket before the command finished")
}
