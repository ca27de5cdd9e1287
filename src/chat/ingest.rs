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

use super::outbox::Outbox;
use super::store::ContactName;
use super::{Message, Sender, Status, from_millis, store, to_millis};
use crate::error::ApiError;
use crate::events::{Appended, EventData, EventKind};
use crate::ids::TenantId;
use crate::media::fetch::Fetcher;
use crate::media::store::NewMedia;
use crate::media::{self, MediaStatus};
use crate::metrics::Metrics;
use crate::realtime::TenantEvents;
use crate::whatsapp::sessions::Sessions;
use crate::whatsapp::{
    Inbound, InboundEvent, IncomingMedia, IncomingMessage, Ingested, ReceiptKind, SessionEvent,
};

/// Most inbound events applied in one round.
pub const MAX_BATCH: usize = 512;

/// What ingest needs, built once at start-up.
#[derive(Clone)]
pub struct Ingest {
    pub events: TenantEvents,
    pub sessions: Sessions,
    pub outbox: Outbox,
    pub media: Fetcher,
    pub metrics: Metrics,
}

impl Ingest {
    /// Reads the inbound channel until it closes.
    pub async fn run(self, mut inbound: mpsc::Receiver<Inbound>) {
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
                .map(|(tenant, events)| self.apply(tenant, events));
            futures::future::join_all(rounds).await;
        }
    }

    /// Applies one tenant's share of a round: session reports to the session manager (a
    /// session that connected wakes the outbox), messages and receipts in one transaction.
    async fn apply(&self, tenant: TenantId, events: Vec<InboundEvent>) {
        let mut writes = Vec::with_capacity(events.len());
        for event in events {
            match event {
                InboundEvent::Session(event) => {
                    let connected = matches!(event, SessionEvent::Connected { .. });
                    self.sessions.on_event(tenant, event).await;
                    if connected {
                        self.outbox.kick(tenant);
                        self.media.kick(tenant);
                    }
                }
                other => writes.push(other),
            }
        }
        if writes.is_empty() {
            return;
        }
        let count = writes.len() as u64;
        let max_media_bytes = self.media.max_bytes();
        let outcome = match self.events.tenants.get(tenant).await {
            Ok(db) => {
                self.events
                    .write(&db, tenant, move |tx, appended| {
                        write_batch(tx, appended, writes, max_media_bytes)
                    })
                    .await
            }
            Err(err) => Err(err),
        };
        match outcome {
            Ok(Written {
                replies,
                stored,
                fetch,
            }) => {
                if fetch {
                    self.media.kick(tenant);
                }
                self.metrics.ingest_transactions.inc();
                self.metrics.ingest_events.inc_by(count);
                self.metrics.messages_in.inc_by(stored);
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                // The batch was rolled back as a whole; the backend did not get an ack, so
                // WhatsApp will redeliver. Waiting callers see their reply dropped.
                tracing::error!(tenant = %tenant, error = %err, "inbound batch not stored");
            }
        }
    }
}

/// What one tenant's transaction did: the answers its backend waits for, and how many new
/// messages it stored.
struct Written {
    replies: Vec<(oneshot::Sender<Ingested>, Ingested)>,
    stored: u64,
    /// Some stored message has media to fetch.
    fetch: bool,
}

/// Applies a tenant's inbound messages and receipts in one transaction.
fn write_batch(
    tx: &Transaction<'_>,
    appended: &mut Appended,
    writes: Vec<InboundEvent>,
    max_media_bytes: u64,
) -> Result<Written, ApiError> {
    let mut written = Written {
        replies: Vec::new(),
        stored: 0,
        fetch: false,
    };
    for write in writes {
        match write {
            InboundEvent::Message { message, stored } => {
                let (result, fetch) = store_incoming(tx, appended, message, max_media_bytes)?;
                written.fetch |= fetch;
                if matches!(result, Ingested::Stored(_)) {
                    written.stored += 1;
                }
                if let Some(reply) = stored {
                    written.replies.push((reply, result));
                }
            }
            InboundEvent::Receipt {
                whatsapp_ids,
                status,
            } => {
                let status = match status {
                    ReceiptKind::Delivered => Status::Delivered,
                    ReceiptKind::Read => Status::Read,
                };
                for id in &whatsapp_ids {
                    if let Some(message) = store::apply_receipt(tx, id, status)? {
                        appended.message_status(tx, message)?;
                    }
                }
            }
            InboundEvent::Session(_) => {}
        }
    }
    Ok(written)
}

/// Stores one incoming message (or recognises a redelivery) and its event.
/// Also returns whether the message has media to fetch.
fn store_incoming(
    conn: &Connection,
    appended: &mut Appended,
    incoming: IncomingMessage,
    max_media_bytes: u64,
) -> Result<(Ingested, bool), ApiError> {
    if store::wa_id_exists(conn, &incoming.whatsapp_id)? {
        return Ok((Ingested::Duplicate, false));
    }
    let name = match incoming.push_name.as_deref() {
        Some(push) if !incoming.from_me => ContactName::Push(push),
        _ => ContactName::Unknown,
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
    let media = incoming.media;
    let message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation.id,
        content: incoming.content,
        sender,
        kind: media
            .as_ref()
            .map_or("text", |m| m.kind.as_str())
            .to_owned(),
        status,
        is_read: incoming.from_me,
        whatsapp_id: Some(incoming.whatsapp_id),
        author_id: None,
        created_at: from_millis(to_millis(incoming.timestamp)),
        failure_reason: None,
        media: None,
        private: false,
    };
    let pos = store::insert_message(conn, &message)?;
    let mut message = message;
    let mut fetch = false;
    if let Some(media) = &media {
        fetch = store_media(conn, message.id, media, max_media_bytes)?;
        media::store::attach(conn, &mut message)?;
    }
    let conversation = store::touch_conversation(conn, &message, pos)?;
    let id = message.id;
    let data = EventData::chat(Some(message), Some(conversation));
    appended.push(conn, kind, data)?;
    Ok((Ingested::Stored(id), fetch))
}

/// Stores the media item of the message `message_id` as `pending` (to be fetched), or
/// `unavailable` when it is declared larger than the cap or has no source to fetch it from. Returns whether it is to be fetched.
fn store_media(
    conn: &Connection,
    message_id: Uuid,
    media: &IncomingMedia,
    max_bytes: u64,
) -> rusqlite::Result<bool> {
    let too_large = media.size.is_some_and(|size| size > max_bytes);
    let unfetchable = media.source.is_null();
    let reason = if too_large {
        Some(media::too_large_reason(max_bytes))
    } else if unfetchable {
        Some("the message carried no way to fetch the bytes".to_owned())
    } else {
        None
    };
    let new = NewMedia {
        kind: media.kind,
        mime_type: &media.mime_type,
        file_name: media.file_name.as_deref(),
        size: media.size,
        width: media.width,
        height: media.height,
        duration_ms: media.duration_ms,
        voice: media.voice,
        status: if reason.is_some() {
            MediaStatus::Unavailable
        } else {
            MediaStatus::Pending
        },
        reason: reason.as_deref(),
        thumbnail: media.thumbnail.as_deref(),
        source: Some(media.source.to_string()),
    };
    media::store::insert(conn, Uuid::now_v7(), message_id, &new, None)?;
    Ok(reason.is_none())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::World;
    use crate::whatsapp::simulated::Simulated;

    fn incoming(id: &str, from: &str) -> IncomingMessage {
        IncomingMessage {
            whatsapp_id: id.to_owned(),
            contact_number: from.to_owned(),
            push_name: Some("Ana".to_owned()),
            content: format!("text of {id}"),
            from_me: false,
            media: None,
            timestamp: chrono::Utc::now(),
        }
    }

    fn message(tenant: TenantId, id: &str, from: &str) -> (Inbound, oneshot::Receiver<Ingested>) {
        let (reply, stored) = oneshot::channel();
        let event = InboundEvent::Message {
            message: incoming(id, from),
            stored: Some(reply),
        };
        (Inbound { tenant, event }, stored)
    }

    async fn ingest(world: &World) -> Ingest {
        let (tx, _rx) = mpsc::channel(1);
        let whatsapp = Arc::new(Simulated::new(tx, Duration::from_secs(20)));
        let outbox = Outbox::new(whatsapp.clone(), world.events.clone());
        let media = Fetcher::new(
            whatsapp.clone(),
            world.events.clone(),
            crate::config::DEFAULT_MEDIA_MAX_BYTES,
            Duration::from_secs(30),
        );
        let sessions = Sessions::new(
            world.dir.path().join("sessions"),
            whatsapp,
            world.events.clone(),
            world.master.clone(),
        );
        Ingest {
            events: world.events.clone(),
            sessions,
            outbox,
            media,
            metrics: world.metrics.clone(),
        }
    }

    async fn message_count(world: &World, tenant: TenantId) -> i64 {
        world
            .query(tenant, |conn| {
                conn.query_row("SELECT count(*) FROM message", [], |row| row.get(0))
            })
            .await
    }

    use std::sync::Arc;

    #[tokio::test]
    async fn a_batch_of_mixed_tenants_commits_once_per_tenant_and_a_failing_tenant_spares_the_others()
     {
        let world = World::new();
        let (a, b) = (world.tenant("A").await, world.tenant("B").await);
        let unknown = TenantId::new();
        let (tx, rx) = mpsc::channel(64);
        let mut replies = Vec::new();
        // Interleaved, all waiting before ingest runs: one round.
        for i in 0..6 {
            let tenant = [a, b, unknown][i % 3];
            let (event, stored) = message(tenant, &format!("W{i}"), "+6281111111111");
            tx.send(event).await.unwrap();
            replies.push((tenant, stored));
        }
        // A redelivery in the same round changes nothing.
        let (again, again_stored) = message(a, "W0", "+6281111111111");
        tx.send(again).await.unwrap();
        drop(tx);
        ingest(&world).await.run(rx).await;

        assert_eq!(
            world.metrics.ingest_transactions.get(),
            2,
            "one commit per stored tenant"
        );
        assert_eq!(
            world.metrics.messages_in.get(),
            4,
            "new messages stored; neither the redelivery nor the unknown tenant's"
        );
        assert_eq!(message_count(&world, a).await, 2);
        assert_eq!(message_count(&world, b).await, 2);
        for (tenant, stored) in replies {
            let outcome = stored.await;
            if tenant == unknown {
                assert!(outcome.is_err(), "an unstored message is not acknowledged");
            } else {
                assert!(matches!(outcome, Ok(Ingested::Stored(_))), "{outcome:?}");
            }
        }
        assert_eq!(again_stored.await.unwrap(), Ingested::Duplicate);
        let events: i64 = world
            .query(a, |conn| {
                conn.query_row(
                    "SELECT count(*) FROM event WHERE type = 'incoming_message'",
                    [],
                    |row| row.get(0),
                )
            })
            .await;
        assert_eq!(events, 2, "the redelivery emitted nothing");
    }
}
