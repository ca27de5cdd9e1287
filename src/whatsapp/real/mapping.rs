//! Translation from whatsapp-rust's values to AEZEN's: session events, receipts, messages,
//! phone numbers and send errors (a message's media item is read by [`super::media`]). Pure
//! functions, tested below with hand-built events; nothing here holds a client or talks to the
//! inbound channel.

use std::time::Duration;

use chrono::{DateTime, Utc};
use whatsapp_rust::types::events::{
    ConnectFailure, ConnectFailureReason, Event, LoggedOut, Receipt, TemporaryBan,
};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{ClientError, IqError, Jid, SendError as WaSendError, Server};

use super::media::incoming_media;
use crate::whatsapp::{InboundEvent, IncomingMessage, ReceiptKind, SendError, SessionEvent};

const QR_CODES_EXPIRED: &str = "the QR codes expired before one was scanned";
const PAIR_CODE_EXPIRED: &str = "the pairing code expired before it was entered";
const STREAM_REPLACED: &str = "another client took over this WhatsApp session (stream \
    replaced), probably a second AEZEN running on the same session folder; turn WhatsApp on \
    again to take it back";

/// What [`map_event`] needs to know besides the event itself.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// When the event arrived: QR and pairing codes expire relative to it.
    pub now: DateTime<Utc>,
    /// The session links by pairing code. The crate shows QR codes alongside a pairing code;
    /// they are not reported then, so the dashboard keeps showing the code.
    pub pairing_by_code: bool,
    /// The linked phone's number (E.164), once paired (`client.pn()`).
    pub own_number: Option<String>,
    /// The linked account's WhatsApp name, once known (`client.push_name()`).
    pub own_push_name: Option<String>,
}

/// Translates a whatsapp-rust event into what AEZEN reports: a session change or delivery
/// receipts. `None` for events AEZEN does not report, and for [`Event::Messages`]: messages
/// go through [`map_message`] (and the durability hook).
pub fn map_event(event: &Event, ctx: &EventContext) -> Option<InboundEvent> {
    let session = match event {
        Event::PairingQrCode(qr) if !ctx.pairing_by_code => SessionEvent::Qr {
            code: qr.code.clone(),
            expires_at: expiry(ctx.now, qr.timeout),
        },
        Event::PairingCode(code) => SessionEvent::PairCode {
            code: code.code.clone(),
            expires_at: expiry(ctx.now, code.timeout),
        },
        Event::PairingCodeError(err) if ctx.pairing_by_code => SessionEvent::Disconnected {
            reason: Some(format!(
                "WhatsApp did not issue a pairing code: {}",
                err.error
            )),
            retrying: false,
        },
        // The code on screen is void; a new one needs a new request.
        Event::PairingCodeRefresh(_) if ctx.pairing_by_code => SessionEvent::Disconnected {
            reason: Some(PAIR_CODE_EXPIRED.to_owned()),
            retrying: false,
        },
        // `disconnected: false`: a pairing code is still live on this connection.
        Event::PairingQrCodesExhausted(exhausted) if exhausted.disconnected => {
            let reason = if ctx.pairing_by_code {
                PAIR_CODE_EXPIRED
            } else {
                QR_CODES_EXPIRED
            };
            SessionEvent::Disconnected {
                reason: Some(reason.to_owned()),
                retrying: false,
            }
        }
        Event::PairSuccess(paired) => SessionEvent::Connected {
            phone_number: phone_number(&paired.id),
            push_name: None,
        },
        Event::PairError(err) => SessionEvent::Failed {
            reason: format!("linking the phone failed: {}", err.error),
        },
        Event::Connected(_) => SessionEvent::Connected {
            phone_number: ctx.own_number.clone(),
            push_name: ctx.own_push_name.clone(),
        },
        // The crate reconnects by itself (with backoff).
        Event::Disconnected(lost) => SessionEvent::Disconnected {
            reason: Some(format!("connection lost: {}", lost.reason)),
            retrying: true,
        },
        Event::LoggedOut(logged_out) => SessionEvent::LoggedOut {
            reason: logged_out_reason(logged_out),
        },
        Event::StreamReplaced(_) => SessionEvent::Failed {
            reason: STREAM_REPLACED.to_owned(),
        },
        Event::TemporaryBan(ban) => SessionEvent::Banned {
            reason: ban_reason(ban, ctx.now),
        },
        Event::ConnectFailure(failure) => connect_failure(failure),
        Event::ClientOutdated(_) => SessionEvent::Failed {
            reason: "WhatsApp refused this client version as outdated; AEZEN needs an update"
                .to_owned(),
        },
        Event::Receipt(receipt) => return map_receipt(receipt),
        _ => return None,
    };
    Some(InboundEvent::Session(session))
}

/// Delivery and read receipts for messages the tenant sent. Other receipt types (our own
/// devices' read marks, retries, played, …) are not reported.
pub fn map_receipt(receipt: &Receipt) -> Option<InboundEvent> {
    let status = match receipt.r#type {
        ReceiptType::Delivered => ReceiptKind::Delivered,
        ReceiptType::Read => ReceiptKind::Read,
        _ => return None,
    };
    if receipt.message_ids.is_empty() {
        return None;
    }
    Some(InboundEvent::Receipt {
        whatsapp_ids: receipt.message_ids.clone(),
        status,
    })
}

/// A message from a chat whose phone number is not known yet: only its LID is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no phone number is known for the WhatsApp contact {lid}")]
pub struct UnknownNumber {
    pub lid: Jid,
}

/// Translates a decrypted message into an [`IncomingMessage`].
///
/// - `Ok(None)`: nothing for the inbox: group, broadcast/status and newsletter messages (the
///   inbox has 1:1 conversations only), and messages with neither text nor media (reactions,
///   edits and deletions as protocol messages, polls, contacts, locations, …).
/// - A photo, voice note or audio file, video, document or sticker (also inside an ephemeral
///   or view-once wrapper) maps with its [`IncomingMedia`](crate::whatsapp::IncomingMedia)
///   (see [`super::media`]); its caption, or `""`, is the content.
/// - The contact is the chat's other party, also for a message sent from the tenant's phone
///   (`from_me`). A chat addressed by LID is keyed by the contact's phone number, so the LID
///   and the phone form of one contact land in one conversation: the number comes from the
///   stanza (`sender_alt` for a received message; `recipient_alt`, `peer_recipient_pn` or the
///   device-sent destination for one sent from the phone) or else from `lid_pn`, the mapping
///   the caller looked up in the client's LID↔PN store.
/// - `Err(UnknownNumber)`: a LID chat with no known number. The caller looks the LID up and
///   maps again; if it is still unknown the message is left unacknowledged (WhatsApp
///   redelivers it on the next connection) rather than stored under a key that is not a
///   phone number and could never be merged with the contact's conversation.
pub fn map_message(
    message: &wa::Message,
    info: &MessageInfo,
    lid_pn: Option<&Jid>,
) -> Result<Option<IncomingMessage>, UnknownNumber> {
    let source = &info.source;
    let chat = &source.chat;
    if source.is_group || !is_person(chat) {
        return Ok(None);
    }
    let content = [message.text_content(), message.get_caption()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|text| !text.is_empty());
    let media = incoming_media(message, info);
    if content.is_none() && media.is_none() {
        return Ok(None);
    }
    let contact_number = if chat.server.is_pn_family() {
        phone_number(chat)
    } else {
        let destination = info
            .device_sent_meta
            .as_ref()
            .and_then(|meta| meta.destination_jid.parse::<Jid>().ok());
        let stanza_pn = if source.is_from_me {
            [
                source.recipient_alt.clone(),
                info.peer_recipient_pn.clone(),
                destination,
            ]
        } else {
            [source.sender_alt.clone(), None, None]
        };
        stanza_pn
            .iter()
            .flatten()
            .chain(lid_pn)
            .find_map(phone_number)
    };
    let Some(contact_number) = contact_number else {
        return Err(UnknownNumber {
            lid: chat.to_non_ad(),
        });
    };
    let push_name = Some(info.push_name.trim())
        .filter(|name| !source.is_from_me && !name.is_empty())
        .map(str::to_owned);
    Ok(Some(IncomingMessage {
        whatsapp_id: info.id.clone(),
        contact_number,
        push_name,
        content: content.unwrap_or_default().to_owned(),
        from_me: source.is_from_me,
        media,
        timestamp: info.timestamp,
    }))
}

/// The E.164 number (`+digits`) of a phone-number JID; `None` for any other JID.
pub fn phone_number(jid: &Jid) -> Option<String> {
    let digits = jid.user.as_str();
    let valid = jid.server.is_pn_family()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("+{digits}"))
}

/// The phone JID (`6281234567890@s.whatsapp.net`) of an E.164 number (`+6281234567890`; the
/// `+` may be left out). `None` if it is not one.
pub fn phone_jid(number: &str) -> Option<Jid> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    let valid = (7..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| Jid::pn(digits))
}

/// A person's chat (phone number or LID), not a group, broadcast, newsletter or bot.
fn is_person(chat: &Jid) -> bool {
    matches!(
        chat.server,
        Server::Pn | Server::Lid | Server::Hosted | Server::HostedLid
    )
}

fn expiry(now: DateTime<Utc>, valid: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(valid)
        .ok()
        .and_then(|valid| now.checked_add_signed(valid))
        .unwrap_or(now)
}

fn logged_out_reason(logged_out: &LoggedOut) -> String {
    if logged_out.reason == ConnectFailureReason::AccountLocked {
        let said = logged_out
            .logout_message
            .as_ref()
            .and_then(|m| m.header.clone().or_else(|| m.subtext.clone()));
        return match said {
            Some(said) => format!("WhatsApp locked this account: {said}"),
            None => "WhatsApp locked this account".to_owned(),
        };
    }
    if logged_out.on_connect {
        "WhatsApp no longer accepts this linked device (it was removed from the phone)".to_owned()
    } else {
        "the phone removed this linked device".to_owned()
    }
}

fn ban_reason(ban: &TemporaryBan, now: DateTime<Utc>) -> String {
    let mut reason = format!("WhatsApp temporarily banned this number ({})", ban.code);
    if let Some(until) = now.checked_add_signed(ban.expire) {
        reason.push_str(&format!(
            "; it can be used again after {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    if let Some(message) = ban.message.as_deref().filter(|m| !m.is_empty()) {
        reason.push_str(&format!(": {message}"));
    }
    reason
}

fn connect_failure(failure: &ConnectFailure) -> SessionEvent {
    let detail = failure
        .message
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let reason = failure.reason;
    if reason.should_reconnect() {
        SessionEvent::Disconnected {
            reason: Some(format!(
                "WhatsApp is temporarily unavailable ({reason:?}{detail})"
            )),
            retrying: true,
        }
    } else if reason == ConnectFailureReason::TempBanned {
        SessionEvent::Banned {
            reason: format!("WhatsApp temporarily banned this number{detail}"),
        }
    } else if reason.is_logged_out() {
        SessionEvent::LoggedOut {
            reason: format!("WhatsApp no longer accepts this linked device ({reason:?}{detail})"),
        }
    } else {
        SessionEvent::Failed {
            reason: format!("WhatsApp refused the connection ({reason:?}{detail})"),
        }
    }
}

/// Sorts a failed send: connection trouble keeps the message queued (`NotConnected`, the
/// outbox tries again when the session reports `connected`); anything else is WhatsApp or the
/// crate refusing this message, which would fail the same way again and hold up the queue
/// behind it, so it is `Rejected`. Server errors are transient when 5xx or 429.
pub fn classify_send_error(err: &WaSendError) -> SendError {
    let transient = match err {
        WaSendError::NotLoggedIn => true,
        WaSendError::Client(client) => client_error_is_transient(client),
        WaSendError::Iq(iq) => iq_error_is_transient(iq),
        _ => false,
    };
    if transient {
        SendError::NotConnected
    } else {
        SendError::Rejected(err.to_string())
    }
}

pub(super) fn client_error_is_transient(err: &ClientError) -> bool {
    match err {
        ClientError::NotConnected | ClientError::NotLoggedIn | ClientError::Socket(_) => true,
        ClientError::Iq(iq) => iq_error_is_transient(iq),
        other => other.is_transport_unavailable(),
    }
}

fn iq_error_is_transient(err: &IqError) -> bool {
    match err {
        IqError::Timeout
        | IqError::NotConnected
        | IqError::Socket(_)
        | IqError::Disconnected(_)
        | IqError::InternalChannelClosed => true,
        IqError::ClientState(client) => client_error_is_transient(client),
        IqError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

/// `mark_as_read` fails with an `anyhow` error; sorted like a send.
pub(super) fn classify_read_error(err: &anyhow::Error) -> SendError {
    let transient = err
        .chain()
        .any(|cause| match cause.downcast_ref::<ClientError>() {
            Some(client) => client_error_is_transient(client),
            None => cause
                .downcast_ref::<IqError>()
                .is_some_and(iq_error_is_transient),
        });
    if transient {
        SendError::NotConnected
    } else {
        SendError::Rejected(format!("{err:#}"))
    }
}

// The fixtures (`CUSTOMER`, `info`, `qr`, `receipt`, …) are shared with the life-cycle tests
// in `real/tests.rs`.
#[cfg(test)]
pub(super) mod tests {
    use whatsapp_rust::transport::DisconnectReason;
    use whatsapp_rust::types::events::{
        Connected, Disconnected, PairSuccess, PairingCode, PairingQrCode, PairingQrCodesExhausted,
        StreamReplaced, TempBanReason,
    };
    use whatsapp_rust::types::message::{DeviceSentMeta, MessageSource};
    use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt;
    use whatsapp_rust::waproto::buffa::MessageField;

    use super::*;
    use crate::whatsapp::MediaKind;

    pub(crate) const CUSTOMER: &str = "6281234567890";
    pub(crate) const CUSTOMER_LID: &str = "100000012345678";
    const OWN: &str = "6289900000001";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn ctx() -> EventContext {
        EventContext {
            now: at(1_700_000_000),
            pairing_by_code: false,
            own_number: Some(format!("+{OWN}")),
            own_push_name: Some("Toko Budi".to_owned()),
        }
    }

    /// A message from `chat` (not from me), as the crate parses one.
    pub(crate) fn info(id: &str, chat: Jid) -> MessageInfo {
        MessageInfo {
            id: id.to_owned(),
            source: MessageSource {
                sender: chat.with_device(3),
                chat,
                ..MessageSource::default()
            },
            push_name: "Siti".to_owned(),
            timestamp: at(1_700_000_123),
            ..MessageInfo::default()
        }
    }

    fn mapped(message: &wa::Message, info: &MessageInfo) -> IncomingMessage {
        map_message(message, info, None)
            .expect("number known")
            .expect("message kept")
    }

    fn session(event: Option<InboundEvent>) -> SessionEvent {
        match event {
            Some(InboundEvent::Session(event)) => event,
            other => panic!("expected a session event, got {other:?}"),
        }
    }

    #[test]
    fn a_text_message_maps_to_an_incoming_message() {
        let message = wa::Message::text("Halo, stok ada?");
        let got = mapped(&message, &info("3EB0A1", Jid::pn(CUSTOMER)));
        assert_eq!(
            got,
            IncomingMessage {
                whatsapp_id: "3EB0A1".to_owned(),
                contact_number: format!("+{CUSTOMER}"),
                push_name: Some("Siti".to_owned()),
                content: "Halo, stok ada?".to_owned(),
                from_me: false,
                media: None,
                timestamp: at(1_700_000_123),
            }
        );
    }

    #[test]
    fn an_extended_text_maps_like_a_plain_one() {
        let message = wa::Message::text_with_context("with a quote", wa::ContextInfo::default());
        let got = mapped(&message, &info("X1", Jid::pn(CUSTOMER)));
        assert_eq!(got.content, "with a quote");
    }

    #[test]
    fn an_image_caption_is_the_content() {
        let message = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                caption: Some("this one, size M".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = mapped(&message, &info("IMG1", Jid::pn(CUSTOMER)));
        assert_eq!(got.content, "this one, size M");
        let media = got.media.expect("the photo");
        assert_eq!(media.kind, MediaKind::Image);
        assert_eq!(media.mime_type, "image/jpeg");
    }

    #[test]
    fn a_media_item_without_a_caption_is_kept_with_empty_content() {
        let voice_note = wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                ptt: Some(true),
                seconds: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bare_image = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage::default()),
            ..Default::default()
        };
        for (message, kind) in [
            (voice_note, MediaKind::Audio),
            (bare_image, MediaKind::Image),
        ] {
            let got = mapped(&message, &info("V1", Jid::pn(CUSTOMER)));
            assert_eq!(got.content, "");
            assert_eq!(got.media.map(|media| media.kind), Some(kind));
        }
    }

    #[test]
    fn media_inside_an_ephemeral_or_view_once_wrapper_is_mapped() {
        let video = wa::Message {
            video_message: MessageField::some(wa::message::VideoMessage {
                caption: Some("unboxing".to_owned()),
                seconds: Some(12),
                ..Default::default()
            }),
            ..Default::default()
        };
        let wrap = |message: wa::Message| {
            MessageField::some(wa::message::FutureProofMessage {
                message: MessageField::some(message),
            })
        };
        let ephemeral = wa::Message {
            ephemeral_message: wrap(video.clone()),
            ..Default::default()
        };
        let view_once = wa::Message {
            view_once_message_v2: wrap(video),
            ..Default::default()
        };
        for message in [ephemeral, view_once] {
            let got = mapped(&message, &info("E1", Jid::pn(CUSTOMER)));
            assert_eq!(got.content, "unboxing");
            let media = got.media.expect("the video");
            assert_eq!(media.kind, MediaKind::Video);
            assert_eq!(media.duration_ms, Some(12_000));
        }
    }

    #[test]
    fn a_message_without_text_or_media_is_skipped() {
        let reaction = wa::Message {
            reaction_message: MessageField::some(wa::message::ReactionMessage {
                text: Some("👍".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let revoke = wa::Message {
            protocol_message: MessageField::some(wa::message::ProtocolMessage::default()),
            ..Default::default()
        };
        let location = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage::default()),
            ..Default::default()
        };
        let blank = wa::Message::text("   ");
        for message in [reaction, revoke, location, blank] {
            let got = map_message(&message, &info("R1", Jid::pn(CUSTOMER)), None);
            assert_eq!(got, Ok(None));
        }
    }

    #[test]
    fn a_message_sent_from_the_phone_is_from_me_and_belongs_to_the_recipient() {
        let mut info = info("3EB0FF", Jid::pn(CUSTOMER));
        info.source.is_from_me = true;
        info.source.sender = Jid::pn_device(OWN, 0);
        info.source.recipient = Some(Jid::pn(CUSTOMER));
        info.push_name = "Toko Budi".to_owned();
        let got = mapped(&wa::Message::text("Ada, kak"), &info);
        assert!(got.from_me);
        assert_eq!(got.contact_number, format!("+{CUSTOMER}"));
        assert_eq!(
            got.push_name, None,
            "the tenant's own name is not the contact's"
        );
    }

    #[test]
    fn a_lid_chat_with_sender_alt_maps_to_the_same_contact_as_the_phone_chat() {
        let by_phone = mapped(&wa::Message::text("a"), &info("A", Jid::pn(CUSTOMER)));
        let mut by_lid = info("B", Jid::lid(CUSTOMER_LID));
        by_lid.source.sender_alt = Some(Jid::pn(CUSTOMER));
        let by_lid = mapped(&wa::Message::text("b"), &by_lid);
        assert_eq!(by_lid.contact_number, by_phone.contact_number);
        assert_eq!(by_lid.contact_number, format!("+{CUSTOMER}"));
    }

    #[test]
    fn a_lid_chat_sent_from_the_phone_uses_the_recipients_number() {
        let mut info = info("C", Jid::lid(CUSTOMER_LID));
        info.source.is_from_me = true;
        info.source.sender = Jid::lid_device("200000000000001", 0);
        // sender_alt of our own message is OUR number: it must not become the contact.
        info.source.sender_alt = Some(Jid::pn(OWN));
        info.peer_recipient_pn = Some(Jid::pn(CUSTOMER));
        assert_eq!(
            mapped(&wa::Message::text("c"), &info).contact_number,
            format!("+{CUSTOMER}")
        );

        info.peer_recipient_pn = None;
        info.device_sent_meta = Some(DeviceSentMeta {
            destination_jid: format!("{CUSTOMER}@s.whatsapp.net"),
            phash: String::new(),
        });
        assert_eq!(
            mapped(&wa::Message::text("c"), &info).contact_number,
            format!("+{CUSTOMER}")
        );
    }

    #[test]
    fn a_lid_chat_without_a_known_number_needs_a_lookup() {
        let info = info("D", Jid::lid(CUSTOMER_LID));
        let message = wa::Message::text("d");
        assert_eq!(
            map_message(&message, &info, None),
            Err(UnknownNumber {
                lid: Jid::lid(CUSTOMER_LID)
            })
        );
        let looked_up = map_message(&message, &info, Some(&Jid::pn(CUSTOMER)))
            .unwrap()
            .unwrap();
        assert_eq!(looked_up.contact_number, format!("+{CUSTOMER}"));
        // A lookup answer that is not a phone number does not count.
        assert!(map_message(&message, &info, Some(&Jid::lid("1"))).is_err());
    }

    #[test]
    fn group_broadcast_and_newsletter_messages_are_skipped() {
        let mut group = info("G", Jid::group("120363000000000001"));
        group.source.is_group = true;
        group.source.sender = Jid::pn(CUSTOMER);
        let status = info("S", Jid::status_broadcast());
        let newsletter = info("N", Jid::newsletter("120363000000000002"));
        for info in [group, status, newsletter] {
            assert_eq!(
                map_message(&wa::Message::text("hi all"), &info, None),
                Ok(None)
            );
        }
    }

    #[test]
    fn an_empty_push_name_is_none() {
        let mut info = info("P", Jid::pn(CUSTOMER));
        info.push_name = " ".to_owned();
        assert_eq!(mapped(&wa::Message::text("x"), &info).push_name, None);
    }

    pub(crate) fn receipt(kind: ReceiptType, ids: &[&str]) -> Event {
        Event::Receipt(
            Receipt::builder()
                .source(MessageSource {
                    chat: Jid::pn(CUSTOMER),
                    sender: Jid::pn(CUSTOMER),
                    ..Default::default()
                })
                .message_ids(ids.iter().map(|id| (*id).to_owned()).collect())
                .timestamp(at(1_700_000_200))
                .r#type(kind)
                .offline(false)
                .build(),
        )
    }

    #[test]
    fn delivery_and_read_receipts_update_sent_messages() {
        for (kind, want) in [
            (ReceiptType::Delivered, ReceiptKind::Delivered),
            (ReceiptType::Read, ReceiptKind::Read),
        ] {
            match map_event(&receipt(kind, &["M1", "M2"]), &ctx()) {
                Some(InboundEvent::Receipt {
                    whatsapp_ids,
                    status,
                }) => {
                    assert_eq!(whatsapp_ids, ["M1", "M2"]);
                    assert_eq!(status, want);
                }
                other => panic!("expected a receipt, got {other:?}"),
            }
        }
    }

    #[test]
    fn other_receipts_are_not_reported() {
        for kind in [
            ReceiptType::ReadSelf,
            ReceiptType::Sender,
            ReceiptType::Retry,
            ReceiptType::Played,
        ] {
            assert!(map_event(&receipt(kind, &["M1"]), &ctx()).is_none());
        }
        assert!(map_event(&receipt(ReceiptType::Read, &[]), &ctx()).is_none());
    }

    pub(crate) fn qr() -> Event {
        Event::PairingQrCode(
            PairingQrCode::builder()
                .code("2@abc,def,ghi".to_owned())
                .timeout(Duration::from_secs(60))
                .build(),
        )
    }

    #[test]
    fn a_qr_code_expires_after_its_timeout() {
        assert_eq!(
            session(map_event(&qr(), &ctx())),
            SessionEvent::Qr {
                code: "2@abc,def,ghi".to_owned(),
                expires_at: at(1_700_000_060),
            }
        );
    }

    #[test]
    fn qr_codes_are_not_shown_while_linking_by_pairing_code() {
        let ctx = EventContext {
            pairing_by_code: true,
            ..ctx()
        };
        assert!(map_event(&qr(), &ctx).is_none());
    }

    #[test]
    fn a_pairing_code_is_reported_with_its_expiry() {
        let event = Event::PairingCode(
            PairingCode::builder()
                .code("ABCD-EFGH".to_owned())
                .timeout(Duration::from_secs(180))
                .build(),
        );
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::PairCode {
                code: "ABCD-EFGH".to_owned(),
                expires_at: at(1_700_000_180),
            }
        );
    }

    #[test]
    fn connected_reports_the_linked_phone() {
        let event = Event::Connected(Connected::builder().build());
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::Connected {
                phone_number: Some(format!("+{OWN}")),
                push_name: Some("Toko Budi".to_owned()),
            }
        );
        let paired = Event::PairSuccess(
            PairSuccess::builder()
                .id(Jid::pn_device(OWN, 12))
                .lid(Jid::lid_device("200000000000001", 12))
                .business_name(String::new())
                .platform("android".to_owned())
                .build(),
        );
        assert_eq!(
            session(map_event(&paired, &ctx())),
            SessionEvent::Connected {
                phone_number: Some(format!("+{OWN}")),
                push_name: None,
            }
        );
    }

    #[test]
    fn a_lost_connection_is_retried_by_the_client() {
        let event = Event::Disconnected(
            Disconnected::builder()
                .reason(DisconnectReason::StreamEnded)
                .build(),
        );
        assert_eq!(
            session(map_event(&event, &ctx())),
            SessionEvent::Disconnected {
                reason: Some("connection lost: stream ended (EOF)".to_owned()),
                retrying: true,
            }
        );
    }

    #[test]
    fn being_logged_out_is_reported_as_logged_out() {
        for on_connect in [false, true] {
            let event = Event::LoggedOut(
                LoggedOut::builder()
                    .on_connect(on_connect)
                    .reason(ConnectFailureReason::LoggedOut)
                    .build(),
            );
            let SessionEvent::LoggedOut { reason } = session(map_event(&event, &ctx())) else {
                panic!("expected logged out");
            };
            assert!(reason.contains("removed"), "{reason}");
        }
        let locked = Event::LoggedOut(
            LoggedOut::builder()
                .on_connect(true)
                .reason(ConnectFailureReason::AccountLocked)
                .build(),
        );
        assert_eq!(
            session(map_event(&locked, &ctx())),
            SessionEvent::LoggedOut {
                reason: "WhatsApp locked this account".to_owned()
            }
        );
    }

    #[test]
    fn a_replaced_stream_fails_the_session_with_a_clear_reason() {
        let event = Event::StreamReplaced(StreamReplaced::builder().build());
        let SessionEvent::Failed { reason } = session(map_event(&event, &ctx())) else {
            panic!("expected failed");
        };
        assert!(reason.contains("another client took over"), "{reason}");
    }

    #[test]
    fn a_temporary_ban_reports_its_reason_and_end() {
        let event = Event::TemporaryBan(
            TemporaryBan::builder()
                .code(TempBanReason::SentToTooManyPeople)
                .expire(chrono::Duration::hours(24))
                .build(),
        );
        let SessionEvent::Banned { reason } = session(map_event(&event, &ctx())) else {
            panic!("expected banned");
        };
        assert!(reason.contains("101"), "{reason}");
        assert!(reason.contains("too many messages"), "{reason}");
        assert!(reason.contains("2023-11-15T22:13:20Z"), "{reason}");
    }

    #[test]
    fn expired_qr_codes_end_the_attempt() {
        let exhausted = |disconnected| {
            Event::PairingQrCodesExhausted(
                PairingQrCodesExhausted::builder()
                    .disconnected(disconnected)
                    .build(),
            )
        };
        assert_eq!(
            session(map_event(&exhausted(true), &ctx())),
            SessionEvent::Disconnected {
                reason: Some("the QR codes expired before one was scanned".to_owned()),
                retrying: false,
            }
        );
        // The socket stays up for a pairing code still on screen.
        assert!(map_event(&exhausted(false), &ctx()).is_none());
    }

    #[test]
    fn connect_failures_retry_only_when_whatsapp_says_so() {
        let failure = |reason| {
            Event::ConnectFailure(
                ConnectFailure::builder()
                    .reason(reason)
                    .message("busy".to_owned())
                    .build(),
            )
        };
        assert!(matches!(
            session(map_event(
                &failure(ConnectFailureReason::ServiceUnavailable),
                &ctx()
            )),
            SessionEvent::Disconnected { retrying: true, .. }
        ));
        assert!(matches!(
            session(map_event(&failure(ConnectFailureReason::BadUserAgent), &ctx())),
            SessionEvent::Failed { reason } if reason.contains("BadUserAgent: busy")
        ));
        assert!(matches!(
            session(map_event(
                &failure(ConnectFailureReason::TempBanned),
                &ctx()
            )),
            SessionEvent::Banned { .. }
        ));
    }

    #[test]
    fn numbers_convert_between_e164_and_phone_jids() {
        let jid = phone_jid("+6281234567890").unwrap();
        assert_eq!(jid.to_string(), "6281234567890@s.whatsapp.net");
        assert_eq!(phone_number(&jid).as_deref(), Some("+6281234567890"));
        assert_eq!(phone_jid("6281234567890"), Some(jid));
        for bad in [
            "",
            "+",
            "+62 812",
            "+0812345678",
            "+1234",
            "+1234567890123456",
            "abc",
        ] {
            assert_eq!(phone_jid(bad), None, "{bad:?}");
        }
        assert_eq!(phone_number(&Jid::lid(CUSTOMER_LID)), None);
    }

    #[test]
    fn send_failures_are_transient_only_for_connection_trouble() {
        let transient = [
            WaSendError::NotLoggedIn,
            WaSendError::Client(ClientError::NotConnected),
            WaSendError::Iq(IqError::Timeout),
            WaSendError::Iq(IqError::NotConnected),
            WaSendError::Iq(IqError::ServerError {
                code: 503,
                text: "unavailable".to_owned(),
                error_type: None,
                backoff: None,
            }),
        ];
        for err in transient {
            assert!(
                matches!(classify_send_error(&err), SendError::NotConnected),
                "{err}"
            );
        }
        let permanent = [
            WaSendError::InvalidRequest("bad jid".to_owned()),
            WaSendError::Internal(anyhow::anyhow!("no devices for user")),
            WaSendError::Iq(IqError::ServerError {
                code: 404,
                text: "item-not-found".to_owned(),
                error_type: None,
                backoff: None,
            }),
        ];
        for err in permanent {
            assert!(
                matches!(classify_send_error(&err), SendError::Rejected(_)),
                "{err}"
            );
        }
        let read_err = anyhow::Error::from(ClientError::NotConnected);
        assert!(matches!(
            classify_read_error(&read_err),
            SendError::NotConnected
        ));
    }
}
