//! What AEZEN's figures are compared with: the `--bare` child (a bare axum handler and a bare
//! socketioxide broadcast), the `--bare-media` child (row 16), the bare rusqlite loops of rows
//! 2 and 3, and the cost of one bare tenant connection (`--conn-memory`, row 5).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aezen::bench::{self, CONVERSATION_COLUMNS, FileLock, note_newest_message};
use anyhow::bail;
use chrono::Utc;
use reqwest::StatusCode;
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Value, json};

use crate::children::write_port;
use crate::load::{CpuMark, Load, micros};
use crate::procfs::proc_memory;
use crate::seed::contact_number;

/// `--bare <port-file> <page-file> <event-file>`: a bare axum server that answers
/// `GET /api/conversations` with the bytes of a page AEZEN served, and a bare socketioxide
/// gateway whose `POST .../simulate/incoming` broadcasts AEZEN's event shape to the room named
/// by the bearer token (the sockets of one tenant share their owner's token).
pub(crate) async fn bare(args: &[String]) -> anyhow::Result<()> {
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, header};
    use axum::routing::{get, post};
    use socketioxide::SocketIo;
    use socketioxide::extract::{SocketRef, TryData};

    let [port_file, page_file, event_file] = args else {
        bail!("--bare <port-file> <page-file> <event-file>");
    };
    let page = Bytes::from(std::fs::read(page_file)?);
    let event: Arc<Value> = Arc::new(serde_json::from_slice(&std::fs::read(event_file)?)?);

    #[derive(serde::Deserialize)]
    struct Auth {
        token: String,
    }
    #[derive(serde::Deserialize)]
    struct Incoming {
        content: String,
    }

    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", async |s: SocketRef, TryData(auth): TryData<Auth>| {
        if let Ok(auth) = auth {
            s.join(auth.token);
        }
    });
    let emit_io = io.clone();
    let router = Router::new()
        .route(
            "/api/conversations",
            get(move || {
                let page = page.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], page) }
            }),
        )
        .route(
            "/api/integrations/whatsapp/simulate/incoming",
            post(
                move |headers: HeaderMap, axum::Json(req): axum::Json<Incoming>| {
                    let io = emit_io.clone();
                    let event = Arc::clone(&event);
                    async move {
                        let room = headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .unwrap_or_default()
                            .to_owned();
                        let mut event = (*event).clone();
                        event["message"]["content"] = Value::String(req.content);
                        let _ = io.to(room).emit("incoming_message", &event).await;
                        (StatusCode::CREATED, axum::Json(json!({"stored": true})))
                    }
                },
            ),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    write_port(Path::new(port_file), listener.local_addr()?)?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// `--bare-media <port-file> <bytes-file> <content-type>`: a bare axum server that answers
/// `GET /api/media/{id}` (any id, no authentication) with the bytes of `bytes-file`, held in
/// memory, and the given `Content-Type` (row 16's baseline).
pub(crate) async fn bare_media(args: &[String]) -> anyhow::Result<()> {
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderValue, header};
    use axum::routing::get;

    let [port_file, bytes_file, content_type] = args else {
        bail!("--bare-media <port-file> <bytes-file> <content-type>");
    };
    let bytes = Bytes::from(std::fs::read(bytes_file)?);
    let content_type = HeaderValue::from_str(content_type)?;
    let router = Router::new().route(
        "/api/media/{id}",
        get(move || {
            let (bytes, content_type) = (bytes.clone(), content_type.clone());
            async move { ([(header::CONTENT_TYPE, content_type)], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    write_port(Path::new(port_file), listener.local_addr()?)?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// A tenant file as the server makes and opens one (the product's migrations, pragmas and
/// default `FileLock::Exclusive`: `aezen::bench::create_tenant_file`) with `conversations`
/// conversations.
fn bare_file(path: &Path, conversations: usize) -> anyhow::Result<(Connection, Vec<String>)> {
    let conn = bench::create_tenant_file(path, FileLock::Exclusive)?;
    let now = Utc::now().timestamp_millis();
    let mut ids = Vec::with_capacity(conversations);
    for c in 0..conversations {
        let id = uuid::Uuid::now_v7().to_string();
        conn.execute(
            "INSERT INTO conversation (id, contact_number, contact_name, activity_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, contact_number(0, c), format!("Contact {c}"), now],
        )?;
        ids.push(id);
    }
    Ok((conn, ids))
}

type ConversationRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn conversation_tuple(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

/// The event payload the bare loops write: the same shape and size as the application's.
fn bare_payload(
    message_id: &str,
    conversation: &ConversationRow,
    content: &str,
    sender: &str,
    status: &str,
) -> String {
    json!({
        "message": {
            "id": message_id, "conversationId": conversation.0, "content": content,
            "sender": sender, "type": "text", "status": status, "isRead": sender == "agent",
            "whatsappId": null, "authorId": null, "createdAt": Utc::now(),
        },
        "conversation": {
            "id": conversation.0, "contactName": conversation.1, "contactNumber": conversation.2,
            "platform": conversation.3, "lastMessage": conversation.4,
            "lastMessageAt": conversation.5, "unreadCount": conversation.6,
            "createdAt": conversation.7,
        },
    })
    .to_string()
}

/// The bare rusqlite baselines: one transaction per message on one file, one thread, with
/// the application's pragmas and schema; runnable in slices.
pub(crate) struct BareLoop {
    conn: Connection,
    kind: BareKind,
    conversations: Vec<String>,
    author: String,
    n: u64,
}

#[derive(Clone, Copy)]
pub(crate) enum BareKind {
    /// Row 2: insert the message (`pending`), update the conversation, append the event.
    Send,
    /// Row 3: redelivery check, conversation found (or created) by number among `contacts`,
    /// message inserted, conversation updated, event appended.
    Ingest { contacts: usize },
}

impl BareLoop {
    pub(crate) fn new(path: &Path, kind: BareKind) -> anyhow::Result<Self> {
        let conversations = match kind {
            BareKind::Send => 200,
            BareKind::Ingest { .. } => 0,
        };
        let (conn, conversations) = bare_file(path, conversations)?;
        Ok(Self {
            conn,
            kind,
            conversations,
            author: uuid::Uuid::now_v7().to_string(),
            n: 0,
        })
    }

    /// Runs for `duration` on a blocking thread; the loop comes back for the next slice.
    pub(crate) async fn slice(mut self, duration: Duration) -> anyhow::Result<(Self, Load)> {
        tokio::task::spawn_blocking(move || {
            let mark = CpuMark::now(None);
            let mut load = Load::default();
            let start = Instant::now();
            while start.elapsed() < duration {
                let t0 = Instant::now();
                match self.kind {
                    BareKind::Send => self.send()?,
                    BareKind::Ingest { contacts } => self.ingest(contacts)?,
                }
                self.n += 1;
                load.ok += 1;
                load.latencies.push(micros(t0));
            }
            load.elapsed = start.elapsed();
            mark.close(&mut load);
            Ok((self, load))
        })
        .await?
    }

    fn send(&mut self) -> anyhow::Result<()> {
        let n = self.n;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let conversation = &self.conversations[n as usize % self.conversations.len()];
        let id = uuid::Uuid::now_v7().to_string();
        let content = format!("Reply {n} from the team, thanks for writing!");
        let now = Utc::now().timestamp_millis();
        tx.prepare_cached(
            "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at)
             VALUES (?1, ?2, ?3, 'agent', 'text', 'pending', 1, NULL, ?4, ?5)",
        )?
        .execute(params![id, conversation, content, self.author, now])?;
        note_newest_message(&tx)?;
        let row = tx
            .prepare_cached(&format!(
                "UPDATE conversation SET last_message = ?2, last_message_at = ?3,
                 activity_at = max(activity_at, ?3) WHERE id = ?1 RETURNING {CONVERSATION_COLUMNS}"
            ))?
            .query_row(params![conversation, content, now], conversation_tuple)?;
        let payload = bare_payload(&id, &row, &content, "agent", "pending");
        let _seq: i64 = tx
            .prepare_cached(
                "INSERT INTO event (type, payload, created_at) VALUES ('message_sent', ?1, ?2) RETURNING seq",
            )?
            .query_row(params![payload, now], |r| r.get(0))?;
        tx.commit()?;
        Ok(())
    }

    fn ingest(&mut self, contacts: usize) -> anyhow::Result<()> {
        let n = self.n;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let wa_id = format!("BARE-IN-{n}");
        let number = contact_number(1, n as usize % contacts);
        let content = format!("Incoming message {n}, hello there!");
        let now = Utc::now().timestamp_millis();
        let exists = tx
            .prepare_cached("SELECT 1 FROM message WHERE wa_id = ?1")?
            .exists([&wa_id])?;
        if !exists {
            let found: Option<String> = tx
                .prepare_cached("SELECT id FROM conversation WHERE contact_number = ?1")?
                .query_row([&number], |r| r.get(0))
                .ok();
            let conversation = match found {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::now_v7().to_string();
                    tx.prepare_cached(
                        "INSERT INTO conversation (id, contact_number, contact_name, activity_at, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                    )?
                    .execute(params![id, number, "Contact", now])?;
                    id
                }
            };
            let id = uuid::Uuid::now_v7().to_string();
            tx.prepare_cached(
                "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at)
                 VALUES (?1, ?2, ?3, 'user', 'text', 'delivered', 0, ?4, NULL, ?5)",
            )?
            .execute(params![id, conversation, content, wa_id, now])?;
            note_newest_message(&tx)?;
            let row = tx
                .prepare_cached(&format!(
                    "UPDATE conversation SET last_message = ?2, last_message_at = ?3,
                     activity_at = max(activity_at, ?3), unread_count = unread_count + 1
                     WHERE id = ?1 RETURNING {CONVERSATION_COLUMNS}"
                ))?
                .query_row(params![conversation, content, now], conversation_tuple)?;
            let payload = bare_payload(&id, &row, &content, "user", "delivered");
            let _seq: i64 = tx
                .prepare_cached(
                    "INSERT INTO event (type, payload, created_at) VALUES ('incoming_message', ?1, ?2) RETURNING seq",
                )?
                .query_row(params![payload, now], |r| r.get(0))?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// What one tenant connection costs in bare rusqlite, outside the server.
pub(crate) struct ConnectionCost {
    /// RSS while open.
    pub(crate) kib: f64,
    /// Open with the app's pragmas (this reads the schema) and read one conversation page.
    pub(crate) open_us: f64,
    /// Close.
    pub(crate) close_us: f64,
}

/// `n` connections opened one after another with the app's pragmas, each reading one
/// conversation page, then closed (run in a fresh child: `--conn-memory`).
pub(crate) fn connection_memory(tenants_dir: &Path, n: usize) -> anyhow::Result<ConnectionCost> {
    let files: Vec<PathBuf> = std::fs::read_dir(tenants_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .take(n)
        .collect();
    let (before, _) = proc_memory(std::process::id());
    let mut open = Vec::with_capacity(files.len());
    let opening = Instant::now();
    for file in &files {
        let conn = bench::open_tenant_file(file, FileLock::Exclusive)?;
        let rows: Vec<String> = conn
            .prepare(&format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversation ORDER BY activity_at DESC, id DESC LIMIT 50"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        open.push((conn, rows));
    }
    let opened = opening.elapsed();
    let (after, _) = proc_memory(std::process::id());
    let closing = Instant::now();
    drop(open);
    let closed = closing.elapsed();
    let count = files.len().max(1) as f64;
    Ok(ConnectionCost {
        kib: after.saturating_sub(before) as f64 / count,
        open_us: opened.as_secs_f64() * 1e6 / count,
        close_us: closed.as_secs_f64() * 1e6 / count,
    })
}
