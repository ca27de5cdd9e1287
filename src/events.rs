//! The durable per-tenant event log.
//!
//! Every realtime event is appended to the tenant's `event` table in the same transaction as
//! the change it reports, and gets the tenant's next `seq` (monotonic, never reused). Once
//! the transaction commits, and before the file's next write begins, the events are queued
//! for the Socket.IO broadcaster ([`crate::realtime::TenantEvents::write`]), which sends the
//! same objects in that order: sockets
//! see a tenant's events in `seq` order, so a dashboard that was disconnected asks
//! `GET /api/events?after=<last seq it saw>` and misses nothing.
//! Old entries are pruned by count every [`PRUNE_EVERY`] writes and by age as soon as the
//! oldest is past the limit; `list_after` never serves an expired one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AllOfBuilder, Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::chat::mentions::Notification;
use crate::chat::{Conversation, Message, from_millis, to_millis};
use crate::ids::UserId;
use crate::whatsapp::WhatsappStatus;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A contact wrote: `message` and its `conversation`.
    IncomingMessage,
    /// The team wrote (from AEZEN, status `pending`, or from the phone): `message`, `conversation`.
    MessageSent,
    /// An outgoing message changed status (`sent`, `delivered`, `read`, `failed`): `message`.
    MessageStatus,
    /// A media item's bytes arrived, or fetching them failed: `message` with its `media`.
    MediaUpdated,
    /// A conversation changed without a new message (read, created, status, assignee, labels,
    /// contact name): `conversation`.
    ConversationUpdated,
    /// A teammate wrote a private note: `message` (`private: true`) and its `conversation`.
    NoteAdded,
    /// A note mentions the member this event is sent to (only them): `notification`,
    /// `message`, `conversation`.
    Mention,
    /// A QR code to link the phone: `code`, `svg`, `expiresAt`.
    Qr,
    /// The WhatsApp session changed: `state`, `phoneNumber?`, `pushName?`, `reason?`, ...
    WhatsappStatus,
}

impl EventKind {
    /// The Socket.IO event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncomingMessage => "incoming_message",
            Self::MessageSent => "message_sent",
            Self::MessageStatus => "message_status",
            Self::MediaUpdated => "media_updated",
            Self::ConversationUpdated => "conversation_updated",
            Self::NoteAdded => "note_added",
            Self::Mention => "mention",
            Self::Qr => "qr",
            Self::WhatsappStatus => "whatsapp_status",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::IncomingMessage,
            Self::MessageSent,
            Self::MessageStatus,
            Self::MediaUpdated,
            Self::ConversationUpdated,
            Self::NoteAdded,
            Self::Mention,
            Self::Qr,
            Self::WhatsappStatus,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What an event carries, beyond its seq and type. The objects have the REST API's shapes.
///
/// Stored as its JSON and read back by [`EventData::from_stored`], which knows the event's
/// type: the QR and status payloads share field names (`expiresAt`), so a type-blind
/// deserialisation of the flattened fields would mix them up.
///
/// Its schema is not derived: each event type carries its own fields, so the document
/// describes [`Event`] variant by variant (see its `ToSchema`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub qr: Option<QrPayload>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_status: Option<WhatsappStatus>,
}

/// The chat fields of an event, as stored.
#[derive(Deserialize)]
struct StoredChat {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    conversation: Option<Conversation>,
    #[serde(default)]
    notification: Option<Notification>,
}

impl EventData {
    /// Reads back the stored JSON of an event of type `kind`.
    pub fn from_stored(kind: EventKind, json: &str) -> serde_json::Result<Self> {
        Ok(match kind {
            EventKind::Qr => Self {
                qr: Some(serde_json::from_str(json)?),
                ..Self::default()
            },
            EventKind::WhatsappStatus => Self {
                whatsapp_status: Some(serde_json::from_str(json)?),
                ..Self::default()
            },
            EventKind::IncomingMessage
            | EventKind::MessageSent
            | EventKind::MessageStatus
            | EventKind::MediaUpdated
            | EventKind::ConversationUpdated
            | EventKind::NoteAdded
            | EventKind::Mention => {
                let chat: StoredChat = serde_json::from_str(json)?;
                Self {
                    notification: chat.notification,
                    ..Self::chat(chat.message, chat.conversation)
                }
            }
        })
    }

    /// The data of a chat event.
    pub fn chat(message: Option<Message>, conversation: Option<Conversation>) -> Self {
        Self {
            message,
            conversation,
            ..Self::default()
        }
    }
}

/// A QR code to scan with the phone (WhatsApp → Linked devices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QrPayload {
    /// The string the QR code encodes.
    pub code: String,
    /// The QR code as an SVG image.
    pub svg: String,
    pub expires_at: DateTime<Utc>,
}

/// One entry of the event log: the object sent on Socket.IO (event name = `type`) and listed
/// by `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The tenant's monotonic sequence number.
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub data: EventData,
    /// The one member this event is for (sent to their sockets only); `None`: the team.
    #[serde(skip)]
    pub audience: Option<UserId>,
}

/// The document's `Event`: a `oneOf` discriminated by `type`, one named schema per event type
/// with the fields that type carries (the serialised form flattens [`EventData`], whose
/// derived schema would make every payload's fields appear on every event).
impl utoipa::PartialSchema for Event {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new();
        let mut mapping = Vec::new();
        for (kind, name, _) in event_variants() {
            one_of = one_of.item(Ref::from_schema_name(name));
            mapping.push((kind.as_str(), format!("#/components/schemas/{name}")));
        }
        one_of
            .description(Some(
                "One entry of the event log; `type` says which fields it carries.",
            ))
            .discriminator(Some(Discriminator::with_mapping("type", mapping)))
            .into()
    }
}

impl ToSchema for Event {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (kind, name, payload) in event_variants() {
            schemas.push((name.to_owned(), variant_schema(kind, payload)));
        }
        for (name, schema) in [
            (Message::name(), Message::schema()),
            (Conversation::name(), Conversation::schema()),
            (Notification::name(), Notification::schema()),
            (QrPayload::name(), QrPayload::schema()),
            (WhatsappStatus::name(), WhatsappStatus::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        Message::schemas(schemas);
        Conversation::schemas(schemas);
        Notification::schemas(schemas);
        QrPayload::schemas(schemas);
        WhatsappStatus::schemas(schemas);
    }
}

/// What an event of one type carries beside `seq`, `type` and `createdAt`.
enum Payload {
    /// These chat objects, each required.
    Chat(&'static [(&'static str, &'static str)]),
    /// The fields of this schema, flattened.
    Flattened(&'static str),
}

/// Each event type, its schema's name and its payload.
fn event_variants() -> [(EventKind, &'static str, Payload); 9] {
    const BOTH: &[(&str, &str)] = &[("message", "Message"), ("conversation", "Conversation")];
    [
        (
            EventKind::IncomingMessage,
            "IncomingMessageEvent",
            Payload::Chat(BOTH),
        ),
        (
            EventKind::MessageSent,
            "MessageSentEvent",
            Payload::Chat(BOTH),
        ),
        (
            EventKind::MessageStatus,
            "MessageStatusEvent",
            Payload::Chat(&[("message", "Message")]),
        ),
        (
            EventKind::MediaUpdated,
            "MediaUpdatedEvent",
            Payload::Chat(&[("message", "Message")]),
        ),
        (
            EventKind::ConversationUpdated,
            "ConversationUpdatedEvent",
            Payload::Chat(&[("conversation", "Conversation")]),
        ),
        (EventKind::NoteAdded, "NoteAddedEvent", Payload::Chat(BOTH)),
        (
            EventKind::Mention,
            "MentionEvent",
            Payload::Chat(&[
                ("notification", "Notification"),
                ("message", "Message"),
                ("conversation", "Conversation"),
            ]),
        ),
        (EventKind::Qr, "QrEvent", Payload::Flattened("QrPayload")),
        (
            EventKind::WhatsappStatus,
            "WhatsappStatusEvent",
            Payload::Flattened("WhatsappStatus"),
        ),
    ]
}

/// The schema of the events of type `kind`.
fn variant_schema(kind: EventKind, payload: Payload) -> RefOr<Schema> {
    let mut common = ObjectBuilder::new()
        .property(
            "seq",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("The tenant's monotonic sequence number.")),
        )
        .required("seq")
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()])),
        )
        .required("type")
        .property(
            "createdAt",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .required("createdAt");
    match payload {
        Payload::Chat(fields) => {
            for (field, schema) in fields {
                common = common
                    .property(*field, Ref::from_schema_name(*schema))
                    .required(*field);
            }
            common.into()
        }
        Payload::Flattened(schema) => AllOfBuilder::new()
            .item(common)
            .item(Ref::from_schema_name(schema))
            .into(),
    }
}

/// How long events are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_count: i64,
    pub max_age_ms: i64,
    /// Events behind the newest kept for a webhook endpoint that still needs them, beyond
    /// the two limits above (docs/WEBHOOKS.md).
    pub webhook_backlog: i64,
}

impl Retention {
    /// Events created before this (Unix ms) are past the age limit.
    pub fn cutoff(self, now: DateTime<Utc>) -> i64 {
        to_millis(now).saturating_sub(self.max_age_ms)
    }
}

/// Prune the count limit once every this many events (amortised). The age limit is checked
/// on every append, by one indexed lookup of the oldest event, so a quiet tenant's old events
/// go with its next write; until then `list_after` does not serve them.
const PRUNE_EVERY: i64 = 256;

/// Appends an event inside the caller's transaction and returns it with its seq; an event
/// with an `audience` is for that member only.
pub fn append(
    conn: &Connection,
    kind: EventKind,
    data: EventData,
    audience: Option<UserId>,
    retention: Retention,
) -> rusqlite::Result<Event> {
    let now = crate::chat::now();
    let payload = serde_json::to_string(&data)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let seq: i64 = conn
        .prepare_cached(
            "INSERT INTO event (type, payload, created_at, audience) VALUES (?1, ?2, ?3, ?4)
             RETURNING seq",
        )?
        .query_row(
            params![kind.as_str(), payload, to_millis(now), audience],
            |row| row.get(0),
        )?;
    let cutoff = retention.cutoff(now);
    if seq % PRUNE_EVERY == 0 || oldest_is_expired(conn, cutoff)? {
        prune(conn, seq, cutoff, retention)?;
    }
    Ok(Event {
        seq,
        kind,
        created_at: now,
        data,
        audience,
    })
}

/// The events one transaction appends, to be queued for the sockets once it commits
/// ([`crate::realtime::TenantEvents::write`]).
#[derive(Debug)]
pub struct Appended {
    retention: Retention,
    events: Vec<Event>,
}

impl Appended {
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            events: Vec::new(),
        }
    }

    /// Appends an event inside the transaction `conn` belongs to.
    pub fn push(
        &mut self,
        conn: &Connection,
        kind: EventKind,
        data: EventData,
    ) -> rusqlite::Result<()> {
        self.events
            .push(append(conn, kind, data, None, self.retention)?);
        Ok(())
    }

    /// Appends an event for one member only (their sockets; their `/api/events`).
    pub fn push_to(
        &mut self,
        conn: &Connection,
        audience: UserId,
        kind: EventKind,
        data: EventData,
    ) -> rusqlite::Result<()> {
        self.events
            .push(append(conn, kind, data, Some(audience), self.retention)?);
        Ok(())
    }

    /// Appends the `message_status` event of a message whose status just changed.
    pub fn message_status(&mut self, conn: &Connection, message: Message) -> rusqlite::Result<()> {
        self.push(
            conn,
            EventKind::MessageStatus,
            EventData::chat(Some(message), None),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}

fn prune(
    conn: &Connection,
    newest: i64,
    cutoff_ms: i64,
    retention: Retention,
) -> rusqlite::Result<()> {
    // seq follows time, so both limits are a prefix of the log: delete below the higher of
    // the two boundaries, walking the primary key rather than scanning `created_at`. (If the
    // clock steps back, events written after the step can outlive the age limit a little:
    // they wait behind older, still live ones.) What a webhook endpoint has not received
    // yet (after its cursor, or its replay's next event) stays, up to the backlog cap.
    conn.prepare_cached(
        "DELETE FROM event WHERE seq < max(?4, min(
             max(?1, coalesce((SELECT seq FROM event WHERE created_at >= ?2 ORDER BY seq LIMIT 1), ?3)),
             coalesce((SELECT min(min(cursor + 1, coalesce(replay_next, cursor + 1)))
                       FROM webhook_endpoint), ?3)))",
    )?
    .execute(params![
        newest - retention.max_count + 1,
        cutoff_ms,
        newest + 1,
        newest - retention.webhook_backlog + 1
    ])?;
    Ok(())
}

fn oldest_is_expired(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT created_at < ?1 FROM event ORDER BY seq LIMIT 1")?
        .query_row([cutoff_ms], |row| row.get(0))
        .optional()
        .map(|expired| expired.unwrap_or(false))
}

/// The newest seq the tenant's log has ever had (0 for none), pruned or not.
pub fn newest_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'event'), 0)",
    )?
    .query_row([], |row| row.get(0))
}

/// An event as stored: a row of `seq, type, payload, created_at, audience`.
pub fn stored_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get(1)?;
    let payload: String = row.get(2)?;
    let kind = EventKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown event type {kind}").into(),
        )
    })?;
    let data = EventData::from_stored(kind, &payload).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Event {
        seq: row.get(0)?,
        kind,
        created_at: from_millis(row.get(3)?),
        data,
        audience: row.get(4)?,
    })
}

/// Events with `seq > after` that `viewer` may see (the team's and their own), oldest
/// first, at most `limit`; and whether events after `after` were already pruned (the client
/// must then reload its state).
pub fn list_after(
    conn: &Connection,
    viewer: UserId,
    after: i64,
    limit: u32,
    cutoff_ms: i64,
) -> rusqlite::Result<(Vec<Event>, bool)> {
    // Events past the age limit count as pruned even before a write deletes them.
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT seq FROM event WHERE created_at >= ?1 ORDER BY seq LIMIT 1")?
        .query_row([cutoff_ms], |row| row.get(0))
        .optional()?;
    let newest_ever = newest_seq(conn)?;
    // Something after `after` is gone if the oldest kept event is further than the next one,
    // or if every event was pruned while some were written after `after`.
    let Some(oldest) = oldest else {
        return Ok((Vec::new(), newest_ever > after));
    };
    // Saturating: `after` comes from the client, and may be the largest seq there can be.
    let truncated = oldest > after.saturating_add(1);
    // From the oldest kept event on: expired ones still in the table are not served.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, type, payload, created_at, audience FROM event
         WHERE seq >= ?1 AND seq > ?2 AND (audience IS NULL OR audience = ?4)
         ORDER BY seq LIMIT ?3",
    )?;
    let events = stmt
        .query_map(params![oldest, after, limit, viewer], stored_event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((events, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::SessionState;

    /// Appends `n` events with `retention`; the seqs the log keeps.
    fn kept_after(conn: &Connection, n: usize, retention: Retention) -> Vec<i64> {
        for _ in 0..n {
            append(
                conn,
                EventKind::ConversationUpdated,
                EventData::default(),
                None,
                retention,
            )
            .unwrap();
        }
        conn.prepare("SELECT seq FROM event ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn what_a_webhook_endpoint_has_not_received_outlives_the_count_limit_up_to_the_backlog() {
        let retention = Retention {
            max_count: 10,
            max_age_ms: i64::MAX / 2,
            webhook_backlog: 600,
        };
        // No endpoint: the count limit alone (pruned every PRUNE_EVERY appends).
        let conn = crate::testing::tenant_memory_db();
        let kept = kept_after(&conn, 512, retention);
        assert_eq!(kept.first(), Some(&503), "{kept:?}");
        // An endpoint that acknowledged seq 100: everything after it stays.
        let conn = crate::testing::tenant_memory_db();
        conn.execute(
            "INSERT INTO webhook_endpoint (id, url, events, secret, cursor, created_at)
             VALUES ('e', 'https://example.com', '*', 'whsec_x', 100, 0)",
            [],
        )
        .unwrap();
        let kept = kept_after(&conn, 512, retention);
        assert_eq!(kept.first(), Some(&101), "{kept:?}");
        // Past the backlog cap the oldest go anyway.
        let kept = kept_after(&conn, 512, retention);
        assert_eq!(kept.first(), Some(&(1024 - 600 + 1)), "{kept:?}");
    }

    fn roundtrip(kind: EventKind, data: EventData) {
        let json = serde_json::to_string(&data).unwrap();
        let back = EventData::from_stored(kind, &json).unwrap();
        assert_eq!(back, data, "{json}");
    }

    #[test]
    fn every_event_shape_survives_the_log() {
        let at = crate::chat::now();
        roundtrip(
            EventKind::Qr,
            EventData {
                qr: Some(QrPayload {
                    code: "c".into(),
                    svg: "<svg/>".into(),
                    expires_at: at,
                }),
                ..EventData::default()
            },
        );
        roundtrip(
            EventKind::WhatsappStatus,
            EventData {
                whatsapp_status: Some(WhatsappStatus {
                    state: SessionState::PairCode,
                    phone_number: None,
                    push_name: None,
                    reason: None,
                    pair_code: Some("ABCD1234".into()),
                    expires_at: Some(at),
                }),
                ..EventData::default()
            },
        );
        roundtrip(EventKind::ConversationUpdated, EventData::default());
    }
}
