//! Ingest: stores what WhatsApp delivers, batched per tenant.
//!
//! One task reads the backend's inbound channel. It takes every event already waiting (up to
//! [`MAX_BATCH`]), groups them by tenant, and applies each tenant's group in *one*
//! transaction — one commit for many messages under load, instead of one per message — with
//! the tenants' groups running concurrently. A message's WhatsApp id is unique per tenant:
//! a redelivered id changes nothing and emits nothing. Events are queued for the sockets on
//! commit (in commit order); a backend that asked (`stored`) is told only once the message
//! is durable.

use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Message, Sender, Status, from_millis, store, to_millis};
use crate::app::AppState;
use crate::error::ApiError;
use crate::events::{self, Event, EventData, EventKind, Retention};
use crate::ids::TenantId;
use crate::whatsapp::{Inbound, InboundEvent, IncomingMessage, sessions};

/// Most inbound events applied in one round.
pub const MAX_BATCH: usize = 512;

/// What became of an incoming message.
#[derive(Debug, Clone)]
pub enum Ingested {
    Stored(Message),
    /// Its WhatsApp id was already stored: nothing changed.
    Duplicate,
}

/// Reads the inbound channel until it closes.
pub async fn run(state: AppState, mut inbound: mpsc::Receiver<Inbound>) {
    let mut buf = Vec::with_capacity(MAX_BATCH);
    while inbound.recv_many(&mut buf, MAX_BATCH).await > 0 {
        let mut groups: Vec<(TenantId, Vec<InboundEvent>)> = Vec::new();
        for Inbound { tenant, event } in buf.drain(..) {
            match groups.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, events)) => events.push(event),
                None => groups.push((tenant, vec![event])),
            }
        }
        let rounds = groups
            .into_iter()
            .map(|(tenant, events)| apply(state.clone(), tenant, events));
        futures::future::join_all(rounds).await;
    }
}

type Reply = Option<oneshot::Sender<Result<Ingested, ApiError>>>;

async fn apply(state: AppState, tenant: TenantId, events: Vec<InboundEvent>) {
    let mut writes = Vec::with_capacity(events.len());
    for event in events {
        match event {
            InboundEvent::Session(event) => sessions::on_event(&state, tenant, event).await,
            other => writes.push(other),
        }
    }
    if writes.is_empty() {
        return;
    }
    let retention = state.retention;
    let count = writes.len() as u64;
    let outcome = match state.tenants.get(tenant).await {
        Ok(db) => {
            let realtime = state.realtime.clone();
            db.write_then(
                move |tx| write_batch(tx, writes, retention),
                move |(published, _)| realtime.queue(tenant, std::mem::take(published)),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match outcome {
        Ok((_, replies)) => {
            state.metrics.ingest_transactions.inc();
            state.metrics.ingest_events.inc_by(count);
            for (reply, result) in replies {
                let _ = reply.send(Ok(result));
            }
        }
        Err(err) => {
            // The batch was rolled back as a whole; the backend did not get an ack, so
            // WhatsApp will redeliver. Waiting callers see their reply dropped (an error).
            tracing::error!(tenant = %tenant, error = %err, "inbound batch not stored");
        }
    }
}

type Written = (
    Vec<Event>,
    Vec<(oneshot::Sender<Result<Ingested, ApiError>>, Ingested)>,
);

/// Applies a tenant's inbound messages and receipts in one transaction.
fn write_batch(
    tx: &Transaction<'_>,
    writes: Vec<InboundEvent>,
    retention: Retention,
) -> Result<Written, ApiError> {
    let mut published = Vec::new();
    let mut replies = Vec::new();
    for write in writes {
        match write {
            InboundEvent::Message { message, stored } => {
                let (result, event) = store_incoming(tx, message, retention)?;
                published.extend(event);
                push_reply(&mut replies, stored, result);
            }
            InboundEvent::Receipt {
                whatsapp_ids,
                status,
            } => {
                for id in &whatsapp_ids {
                    if let Some(message) = store::apply_receipt(tx, id, status)? {
                        published.push(events::append_message_status(tx, message, retention)?);
                    }
                }
            }
            InboundEvent::Session(_) => {}
        }
    }
    Ok((published, replies))
}

fn push_reply(
    replies: &mut Vec<(oneshot::Sender<Result<Ingested, ApiError>>, Ingested)>,
    reply: Reply,
    result: Ingested,
) {
    if let Some(reply) = reply {
        replies.push((reply, result));
    }
}

/// Stores one incoming message (or recognises a redelivery) and its event.
fn store_incoming(
    conn: &Connection,
    incoming: IncomingMessage,
    retention: Retention,
) -> Result<(Ingested, Option<Event>), ApiError> {
    if store::wa_id_exists(conn, &incoming.whatsapp_id)? {
        return Ok((Ingested::Duplicate, None));
    }
    let name = if incoming.from_me {
        None
    } else {
        incoming.push_name.as_deref()
    };
    let (conversation, _) = store::upsert_conversation(
        conn,
        &incoming.contact_number,
        name,
        to_millis(incoming.timestamp),
    )?;
    let (sender, status, kind) = if incoming.from_me {
        (Sender::Agent, Status::Sent, EventKind::MessageSent)
    } else {
        (Sender::User, Status::Delivered, EventKind::IncomingMessage)
    };
    let message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation.id,
        content: incoming.content,
        sender,
        kind: "text".to_owned(),
        status,
        is_read: incoming.from_me,
        whatsapp_id: Some(incoming.whatsapp_id),
        author_id: None,
        created_at: from_millis(to_millis(incoming.timestamp)),
    };
    store::insert_message(conn, &message)?;
    let conversation = store::touch_conversation(conn, &message)?;
    let data = EventData::chat(Some(message.clone()), Some(conversation));
    let event = events::append(conn, kind, data, retention)?;
    Ok((Ingested::Stored(message), Some(event)))
}
