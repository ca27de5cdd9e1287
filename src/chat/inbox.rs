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
use super::store::Viewer;
use super::{
    Conversation, Message, Sender, Status, normalize_phone, now, store, to_millis, validate_content,
};
use crate::error::ApiError;
use crate::events::{Appended, EventData, EventKind};
use crate::ids::UserId;
use crate::media::sniff::Sniffed;
use crate::media::store::NewMedia;
use crate::media::{self, MediaStatus};
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
                            let unknown = store::ContactName::Unknown;
                            store::upsert_conversation(tx, &number, unknown, to_millis(now()))?
                                .0
                                .id
                        }
                    };
                    accept_outgoing(tx, appended, conversation, content, author, None)
                },
                move |_| outbox.kick(tenant),
            )
            .await
    }

    /// Accepts an agent's media item for conversation `id`: the bytes, the item and the
    /// message are stored in one transaction (`pending`, with its `message_sent` event), then
    /// the outbox uploads and sends it like a text. `upload` has been checked already (type
    /// from the bytes, size under the cap, caption).
    pub async fn send_media(
        &self,
        db: &TenantDb,
        author: UserId,
        id: Uuid,
        upload: Upload,
    ) -> Result<Message, ApiError> {
        let tenant = db.tenant();
        let outbox = self.outbox.clone();
        self.events
            .write_then(
                db.open().await?,
                tenant,
                move |tx, appended| {
                    let conversation = existing(tx, id)?.id;
                    let caption = upload.caption.clone();
                    accept_outgoing(tx, appended, conversation, caption, author, Some(&upload))
                },
                move |_| outbox.kick(tenant),
            )
            .await
    }

    /// Opens the conversation with `number` (E.164, normalised): `(conversation, created)`,
    /// as `viewer` sees it. A new one is announced with `conversation_updated`; a name typed
    /// here is the team's (it fills in a conversation that has none).
    pub async fn open_conversation(
        &self,
        db: &TenantDb,
        viewer: Viewer,
        number: String,
        name: Option<String>,
    ) -> Result<(Conversation, bool), ApiError> {
        self.events
            .write(db.open().await?, db.tenant(), move |tx, appended| {
                let name = match name.as_deref() {
                    Some(name) => store::ContactName::Team(name),
                    None => store::ContactName::Unknown,
                };
                let (conversation, created) =
                    store::upsert_conversation(tx, &number, name, to_millis(now()))?;
                if created {
                    let data = EventData::chat(None, Some(conversation.clone()));
                    appended.push(tx, EventKind::ConversationUpdated, data)?;
                }
                Ok((existing_for(tx, conversation.id, viewer)?, created))
            })
            .await
    }

    /// Marks a conversation read by `viewer`: their own unread count drops to 0 (their other
    /// sockets are told), the tenant's incoming messages are marked read (the team is told
    /// when that changed anything), and WhatsApp is told (read receipts to the contact, when
    /// the session is connected; best effort: one that cannot go out now is not retried).
    pub async fn mark_read(
        &self,
        db: &TenantDb,
        viewer: Viewer,
        id: Uuid,
    ) -> Result<Conversation, ApiError> {
        let tenant = db.tenant();
        let (conversation, whatsapp_ids) = self
            .events
            .write(db.open().await?, tenant, move |tx, appended| {
                let before = existing_for(tx, id, viewer)?;
                let whatsapp_ids = store::mark_read(tx, id, viewer)?;
                let conversation = existing_for(tx, id, viewer)?;
                if before.contact_unread_count != 0 || !whatsapp_ids.is_empty() {
                    let data = EventData::chat(None, Some(existing(tx, id)?));
                    appended.push(tx, EventKind::ConversationUpdated, data)?;
                }
                if before.unread_count != conversation.unread_count {
                    let data = EventData::chat(None, Some(conversation.clone()));
                    let user = UserId(viewer.0);
                    appended.push_to(tx, user, EventKind::ConversationUpdated, data)?;
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

/// The conversation `id` as the whole team sees it (for events), or 404.
pub fn existing(conn: &Connection, id: Uuid) -> Result<Conversation, ApiError> {
    store::find_conversation(conn, id, None)?.ok_or_else(|| ApiError::not_found("conversation"))
}

/// The conversation `id` as `viewer` sees it (with their unread count), or 404.
pub fn existing_for(conn: &Connection, id: Uuid, viewer: Viewer) -> Result<Conversation, ApiError> {
    store::find_conversation(conn, id, Some(viewer))?
        .ok_or_else(|| ApiError::not_found("conversation"))
}

/// A checked media item to send.
#[derive(Debug, Clone)]
pub struct Upload {
    pub bytes: Vec<u8>,
    pub sniffed: Sniffed,
    /// Empty for none.
    pub caption: String,
    pub file_name: Option<String>,
    pub voice: bool,
}

/// Stores an outgoing message (with its media item, if any) as `pending`, updates its
/// conversation, and logs `message_sent`.
fn accept_outgoing(
    conn: &Connection,
    appended: &mut Appended,
    conversation: Uuid,
    content: String,
    author: UserId,
    upload: Option<&Upload>,
) -> Result<Message, ApiError> {
    let mut message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        content,
        sender: Sender::Agent,
        kind: upload
            .map_or("text", |u| u.sniffed.kind.as_str())
            .to_owned(),
        status: Status::Pending,
        is_read: true,
        whatsapp_id: None,
        author_id: Some(author.0),
        created_at: now(),
        failure_reason: None,
        media: None,
        private: false,
    };
    let pos = store::insert_message(conn, &message)?;
    if let Some(upload) = upload {
        let new = NewMedia {
            kind: upload.sniffed.kind,
            mime_type: &upload.sniffed.mime_type,
            file_name: upload.file_name.as_deref(),
            size: None,
            width: upload.sniffed.width,
            height: upload.sniffed.height,
            duration_ms: None,
            voice: upload.voice,
            status: MediaStatus::Ready,
            reason: None,
            thumbnail: None,
            source: None,
        };
        media::store::insert(conn, Uuid::now_v7(), message.id, &new, Some(&upload.bytes))?;
        media::store::attach(conn, &mut message)?;
    }
    let conversation = store::touch_conversation(conn, &message, pos)?;
    let data = EventData::chat(Some(message.clone()), Some(conversation));
    appended.push(conn, EventKind::MessageSent, data)?;
    Ok(message)
}
