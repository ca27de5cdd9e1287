//! Webhook endpoints of a tenant and the delivery of its event log to them
//! (docs/WEBHOOKS.md): [`store`] is their SQL in the tenant's file, [`guard`] the SSRF
//! policy, [`deliver`] the delivery tasks.

pub mod deliver;
pub mod guard;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::EventKind;

/// The events a webhook may receive. The QR code never leaves the inbox: whoever sees it can
/// link a phone to the tenant.
pub const DELIVERABLE: [EventKind; 8] = [
    EventKind::IncomingMessage,
    EventKind::MessageSent,
    EventKind::MessageStatus,
    EventKind::MediaUpdated,
    EventKind::ConversationUpdated,
    EventKind::NoteAdded,
    EventKind::Mention,
    EventKind::WhatsappStatus,
];

/// The names an endpoint's `events` may hold (the request schema's; [`parse_events`] checks
/// them against [`DELIVERABLE`]).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    dead_code,
    reason = "the request schema's names; requests carry them as text, checked by parse_events"
)]
pub enum WebhookEvent {
    /// Every event.
    #[serde(rename = "*")]
    All,
    IncomingMessage,
    MessageSent,
    MessageStatus,
    MediaUpdated,
    ConversationUpdated,
    NoteAdded,
    Mention,
    WhatsappStatus,
}

/// Endpoints a tenant may have.
pub const MAX_ENDPOINTS: i64 = 20;
/// The longest URL and description accepted.
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long a rotated-out secret may keep signing, at most (s).
pub const MAX_OVERLAP_SECS: u64 = 7 * 86_400;
pub const DEFAULT_OVERLAP_SECS: u64 = 86_400;

/// An endpoint's state, as the settings screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    Active,
    /// Its next event failed; retrying with backoff.
    Failing,
    Disabled,
}

/// A webhook endpoint as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// `["*"]`, or the event names it receives.
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: String,
    pub state: EndpointState,
    pub disabled_reason: Option<String>,
    /// The seq of the last event it acknowledged (or skipped as not wanted).
    pub cursor: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs.
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// One attempt to deliver an event (or a test, or a recorded gap).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    /// The event's seq; null for a test or a gap record.
    pub seq: Option<i64>,
    pub event_type: String,
    /// The `webhook-id` header sent.
    pub webhook_id: String,
    /// 1 for the first attempt at this event, then 2, 3, …
    pub attempt: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    /// The first 512 bytes of the response body, as text.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// Sent by a replay.
    pub replay: bool,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// The `events` of a request: `["*"]` or known event names, each once; an unknown name is
/// a 422 naming it.
pub fn parse_events(field: &str, events: &[String]) -> Result<String, ApiError> {
    if events.is_empty() {
        return Err(ApiError::validation(format!(
            "{field} must name at least one event, or be [\"*\"] for all"
        )));
    }
    if events.iter().any(|e| e == "*") {
        return if events.len() == 1 {
            Ok("*".to_owned())
        } else {
            Err(ApiError::validation(format!(
                "{field}: \"*\" means every event and stands alone"
            )))
        };
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, name) in events.iter().enumerate() {
        let known = DELIVERABLE.iter().any(|k| k.as_str() == name);
        if !known {
            let valid: Vec<&str> = DELIVERABLE.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::validation(format!(
                "{field}[{i}]: unknown event {name:?}; known: {}, or \"*\"",
                valid.join(", ")
            )));
        }
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    Ok(names.join(" "))
}

/// A new signing secret in the Standard Webhooks form: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The `webhook-id` of event `seq` for endpoint `endpoint`: the same at every retry and
/// replay, so a receiver dedupes.
pub fn webhook_id(endpoint: Uuid, seq: i64) -> String {
    format!("msg_{}_{seq}", endpoint.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_all_or_known_names() {
        assert_eq!(parse_events("events", &["*".to_owned()]).unwrap(), "*");
        assert_eq!(
            parse_events(
                "events",
                &[
                    "incoming_message".into(),
                    "mention".into(),
                    "mention".into()
                ]
            )
            .unwrap(),
            "incoming_message mention"
        );
        let err = parse_events("events", &["mention".into(), "qr".into()]).unwrap_err();
        assert!(err.message().contains("events[1]"), "{}", err.message());
        assert!(parse_events("events", &[]).is_err());
        assert!(parse_events("events", &["*".into(), "mention".into()]).is_err());
    }

    #[test]
    fn the_schemas_event_names_are_the_deliverable_ones() {
        let names: Vec<String> = [
            WebhookEvent::IncomingMessage,
            WebhookEvent::MessageSent,
            WebhookEvent::MessageStatus,
            WebhookEvent::MediaUpdated,
            WebhookEvent::ConversationUpdated,
            WebhookEvent::NoteAdded,
            WebhookEvent::Mention,
            WebhookEvent::WhatsappStatus,
        ]
        .iter()
        .map(|e| {
            serde_json::to_value(e)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        let deliverable: Vec<&str> = DELIVERABLE.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, deliverable);
        assert_eq!(serde_json::to_value(WebhookEvent::All).unwrap(), "*");
    }

    #[test]
    fn a_secret_is_whsec_and_base64() {
        let secret = new_secret();
        let key = secret.strip_prefix("whsec_").unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(bytes.len(), 24);
    }
}
