//! How a client's events reach AEZEN. The [`Forwarder`] queues the crate's bus events for the
//! session's [`pump`], which maps them, puts them on the inbound channel in arrival order, and
//! retires a session that ended for good. Messages go through [`DurableIngest`], the
//! durability hook that lets the crate acknowledge a batch only once ingest committed it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use whatsapp_rust::async_trait;
use whatsapp_rust::types::events::{Event, EventHandler, EventInterest, EventKind, InboundMessage};
use whatsapp_rust::{Client, InboundDurabilityHook, Jid};

use super::mapping::{EventContext, UnknownNumber, map_event, map_message, phone_number};
use super::{Session, Slot, SlotMap, inject, log_session_event, stop};
use crate::ids::TenantId;
use crate::whatsapp::{Inbound, InboundEvent, IncomingMessage, SessionEvent};

/// The crate events AEZEN reacts to; the bus does not materialise the others for us.
const FORWARDED: &[EventKind] = &[
    EventKind::Connected,
    EventKind::Disconnected,
    EventKind::PairSuccess,
    EventKind::PairError,
    EventKind::LoggedOut,
    EventKind::PairingQrCode,
    EventKind::PairingCode,
    EventKind::PairingCodeRefresh,
    EventKind::PairingCodeError,
    EventKind::PairingQrCodesExhausted,
    EventKind::ClientOutdated,
    EventKind::Messages,
    EventKind::Receipt,
    EventKind::StreamReplaced,
    EventKind::TemporaryBan,
    EventKind::ConnectFailure,
    EventKind::StreamError,
];

/// Hands the crate's events, in arrival order, to the session's pump. Runs inline on the
/// crate's dispatch path, so it only queues.
pub(super) struct Forwarder {
    pub(super) tx: mpsc::UnboundedSender<Arc<Event>>,
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        // Closed once the pump is stopped: the session is over.
        let _ = self.tx.send(event);
    }

    fn interest(&self) -> EventInterest {
        EventInterest::of(FORWARDED)
    }
}

/// Maps a session's events and puts them on the inbound channel. When the session ends for
/// good (logged out, QR codes expired, replaced, …) it reports that, then retires the session:
/// its slot leaves `slots` and the client is stopped, so an ended session does not keep its
/// client, store connection and files until the tenant connects again.
pub(super) async fn pump(
    tenant: TenantId,
    mut events: mpsc::UnboundedReceiver<Arc<Event>>,
    client: Weak<Client>,
    ended: Arc<AtomicBool>,
    inbound: mpsc::Sender<Inbound>,
    pairing_by_code: bool,
    slots: Weak<SlotMap>,
) {
    while let Some(event) = events.recv().await {
        if ended.load(Ordering::SeqCst) {
            continue;
        }
        let Some(client) = client.upgrade() else {
            break;
        };
        if let Event::Messages(batch) = &*event {
            // The durability hook already delivered committed batches; the rest (recovered
            // placeholders, newsletters) only arrive here and cannot be redelivered.
            if !batch.hook_committed {
                for item in batch.iter() {
                    if let Ok(Some(message)) = map_inbound(&client, item).await {
                        let event = InboundEvent::Message {
                            message,
                            stored: None,
                        };
                        inject(&inbound, tenant, event).await;
                    }
                }
            }
            continue;
        }
        let ctx = EventContext {
            now: Utc::now(),
            pairing_by_code,
            own_number: client.pn().as_ref().and_then(phone_number),
            own_push_name: Some(client.push_name()).filter(|name| !name.is_empty()),
        };
        let Some(mapped) = map_event(&event, &ctx) else {
            tracing::debug!(tenant = %tenant, kind = ?event.kind(), "WhatsApp event not reported");
            continue;
        };
        let ends = match &mapped {
            InboundEvent::Session(session) => {
                log_session_event(tenant, session);
                ends_session(session)
            }
            _ => false,
        };
        if ends {
            ended.store(true, Ordering::SeqCst);
        }
        if !inject(&inbound, tenant, mapped).await {
            break;
        }
        if ends {
            // Most of these already stop the crate's run loop; a refused pairing code does
            // not. Stopping makes `connect` start afresh next time.
            match retire(tenant, &slots, &ended) {
                Some(session) => {
                    tokio::spawn(stop(tenant, session));
                }
                // Not in the map (yet, or any more): whoever holds it stops it.
                None => {
                    tokio::spawn(async move { client.disconnect().await });
                }
            }
            break;
        }
    }
}

/// Takes the session whose end `ended` marks out of `slots`, if it is still the tenant's.
fn retire(tenant: TenantId, slots: &Weak<SlotMap>, ended: &Arc<AtomicBool>) -> Option<Session> {
    let slots = slots.upgrade()?;
    let mut slots = slots
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match slots.get(&tenant) {
        Some(Slot::Running(session)) if Arc::ptr_eq(&session.ended, ended) => {
            match slots.remove(&tenant) {
                Some(Slot::Running(session)) => Some(session),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Maps one message, looking up the phone number of a LID chat in the client's LID↔PN store
/// when the stanza did not carry it.
async fn map_inbound(
    client: &Client,
    item: &InboundMessage,
) -> Result<Option<IncomingMessage>, UnknownNumber> {
    match map_message(&item.message, &item.info, None) {
        Err(UnknownNumber { lid }) => {
            let known = match client.get_lid_pn_entry(&lid).await {
                Ok(entry) => entry.map(|entry| Jid::pn(&*entry.phone_number)),
                Err(err) => {
                    tracing::warn!(error = %err, "LID lookup failed");
                    None
                }
            };
            map_message(&item.message, &item.info, known.as_ref())
        }
        mapped => mapped,
    }
}

/// Sends each message of a batch to ingest and answers `Ok` only once all are committed, so
/// the crate acknowledges them to WhatsApp only then.
pub(super) struct DurableIngest {
    pub(super) tenant: TenantId,
    pub(super) inbound: mpsc::Sender<Inbound>,
}

#[async_trait]
impl InboundDurabilityHook for DurableIngest {
    async fn on_messages(
        &self,
        client: Arc<Client>,
        batch: &[InboundMessage],
    ) -> anyhow::Result<()> {
        let tenant = self.tenant;
        let mut replies = Vec::new();
        let mut unknown = None;
        for item in batch {
            match map_inbound(&client, item).await {
                Ok(Some(message)) => {
                    let (tx, rx) = oneshot::channel();
                    let event = InboundEvent::Message {
                        message,
                        stored: Some(tx),
                    };
                    if !inject(&self.inbound, tenant, event).await {
                        anyhow::bail!("AEZEN is stopping; the messages stay with WhatsApp");
                    }
                    replies.push(rx);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(
                        tenant = %tenant,
                        id = %item.info.id,
                        error = %err,
                        "message left for redelivery: its sender's phone number is not known yet"
                    );
                    unknown = Some(err);
                }
            }
        }
        for reply in replies {
            match reply.await {
                Ok(_) => {}
                Err(_) => anyhow::bail!("message not stored"),
            }
        }
        match unknown {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }
}

/// Whether the session is over after this event: the client does not come back by itself.
fn ends_session(event: &SessionEvent) -> bool {
    matches!(
        event,
        SessionEvent::Disconnected {
            retrying: false,
            ..
        } | SessionEvent::LoggedOut { .. }
            | SessionEvent::Banned { .. }
            | SessionEvent::Failed { .. }
    )
}
