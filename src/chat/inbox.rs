//! What a team member does to the inbox: open a conversation with a number, send a text, mark
//! a conversation read. HTTP, Socket.IO and `/integrations/whatsapp/send` all call these, so a
//! send is one domain function whatever door it came in by.
//!
//! Each is one write transaction that records its event ([`TenantEvents::write`]); a send
//! also wakes the tenant's outbox once it has committed.

use std::sync::Arc;

use rusqlite::Connection;
use uuid::Uuid;

use super::outbox::Outbox;
use super::{
    Conversation, Message, Sender, Status, normalize_phone, now, store, to_millis, validate_content,
};
use crate::error::ApiError;
use crate::events::{Appended, EventData, EventKind};
use crate::ids::UserId;
use crate::realtime::TenantEvents;
use crate::tenancy::TenantDb;
use crate::whatsapp::WhatsApp;

/// Where an agent's text goes.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// An existing conversation of the tenant (404 if there is none with this id).
    Conversation(Uuid),
    /// A number as typed (normalised, field name `to` in errors); its conversation is opened
    /// if it has none.
    Number(String),
}

/// The inbox's actions, built once at start-up.
#[derive(Clone)]
pub struct Inbox {
    events: TenantEvents,
    outbox: Outbox,
    whatsapp: Arc<dyn WhatsApp>,
}

impl Inbox {
    pub fn new(events: TenantEvents, outbox: Outbox, whatsapp: Arc<dyn WhatsApp>) -> Self {
        Self {
            events,
            outbox,
            whatsapp,
        }
    }

    /// Accepts an agent's text: stored as `pending` with its `message_sent` event; once
    /// committed, the outbox is woken to hand it to WhatsApp.
    pub async fn send(
        &self,
        db: &TenantDb,
        author: UserId,
        to: Recipient,
        content: String,
    ) -> Result<Message, ApiError> {
        let to = match to {
            Recipient::Number(raw) => Recipient::Number(normalize_phone("to", &raw)?),
            conversation => conversation,
        };
        validate_content("content", &content)?;
        let tenant = db.tenant();
        let outbox = self.outbox.clone();
        self.events
            .write_then(
                db.open().await?,
                tenant,
                move |tx, appended| {
                    let conversation = match to {
                        Recipient::Conversation(id) => existing(tx, id)?.id,
                        Recipient::Number(number) => {
                            store::upsert_conversation(tx, &number, None, to_millis(now()))?
                                .0
                                .id
                        }
                    };
                    accept_outgoing(tx, appended, conversation, content, author)
                },
                move |_| outbox.kick(tenant),
            )
            .await
    }

    /// Opens the conversation with `number` (E.164, normalised): `(conversation, created)`.
    /// A new one is announced with `conversation_updated`.
    pub async fn open_conversation(
        &self,
        db: &TenantDb,
        number: String,
        name: Option<String>,
    ) -> Result<(Conversation, bool), ApiError> {
        self.events
            .write(db.open().await?, db.tenant(), move |tx, appended| {
                let (conversation, created) =
                    store::upsert_conversation(tx, &number, name.as_deref(), to_millis(now()))?;
                if created {
                    let data = EventData::chat(None, Some(conversation.clone()));
                    appended.push(tx, EventKind::ConversationUpdated, data)?;
                }
                Ok((conversation, created))
            })
            .await
    }

    /// Marks a conversation read: its unread count drops to 0, its incoming messages are
    /// marked read, and WhatsApp is told (read receipts to the contact, when the session is
    /// connected; best effort: one that cannot go out now is not retried).
    pub async fn mark_read(&self, db: &TenantDb, id: Uuid) -> Result<Conversation, ApiError> {
        let tenant = db.tenant();
        let (conversation, whatsapp_ids) = self
            .events
            .write(db.open().await?, tenant, move |tx, appended| {
                let before = existing(tx, id)?;
                let whatsapp_ids = store::mark_read(tx, id)?;
                let conversation = existing(tx, id)?;
                if before.unread_count != 0 || !whatsapp_ids.is_empty() {
                    let data = EventData::chat(None, Some(conversation.clone()));
                    appended.push(tx, EventKind::ConversationUpdated, data)?;
                }
                Ok((conversation, whatsapp_ids))
            })
            .await?;
        if !whatsapp_ids.is_empty()
            && let Err(err) = self
                .whatsapp
                .mark_read(tenant, &conversation.contact_number, &whatsapp_ids)
                .await
        {
            tracing::info!(tenant = %tenant, error = %err, "read receipts not sent");
        }
        Ok(conversation)
    }
}

/// The conversation `id`, or 404.
pub fn existing(conn: &Connection, id: Uuid) -> Result<Conversation, ApiError> {
    store::find_conversation(conn, id)?.ok_or_else(|| ApiError::not_found("conversation"))
}

/// Stores an outgoing message as `pending`, updates its conversation, and logs `message_sent`.
fn accept_outgoing(
    conn: &Connection,
    appended: &mut Appended,
    conversation: Uuid,
    content: String,
    author: UserId,
) -> Result<Message, ApiError> {
    let message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        content,
        sender: Sender::Agent,
        kind: "text".to_owned(),
        status: Status::Pending,
        is_read: true,
        whatsapp_id: None,
        author_id: Some(author.0),
        created_at: now(),
        failure_reason: None,
    };
    store::insert_message(conn, &message)?;
    let conversation = store::touch_conversation(conn, &message)?;
    let data = EventData::chat(Some(message.clone()), Some(conversation));
    appended.push(conn, EventKind::MessageSent, data)?;
    Ok(message)
}
