//! The client's life cycle on networks that refuse every connection: real whatsapp-rust
//! clients with their stores on a temp dir, started, stopped, resumed and logged out without
//! sending a packet; and the durability hook and the pump fed by hand.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Instant;

use whatsapp_rust::InboundDurabilityHook;
use whatsapp_rust::async_channel;
use whatsapp_rust::async_trait;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse};
use whatsapp_rust::transport::{Transport, TransportEvent, TransportFactory};
use whatsapp_rust::types::events::{Event, InboundMessage, MessageBatch, StreamReplaced};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt;

use super::mapping::tests::{CUSTOMER, CUSTOMER_LID, info, qr, receipt};
use super::*;
use crate::whatsapp::Ingested;

/// Longest a test waits for something that should happen.
const DEADLINE: Duration = Duration::from_secs(15);

struct RefusingTransport {
    attempts: mpsc::UnboundedSender<Instant>,
}

#[async_trait]
impl TransportFactory for RefusingTransport {
    async fn create_transport(
        &self,
    ) -> anyhow::Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>)> {
        let _ = self.attempts.send(Instant::now());
        anyhow::bail!("tests have no network")
    }
}

struct RefusingHttp;

#[async_trait]
impl HttpClient for RefusingHttp {
    async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("tests have no network")
    }
}

struct Harness {
    wa: RealWhatsApp,
    inbound: mpsc::Receiver<Inbound>,
    attempts: mpsc::UnboundedReceiver<Instant>,
    root: tempfile::TempDir,
}

fn harness() -> Harness {
    let (tx, inbound) = mpsc::channel(64);
    let (attempts_tx, attempts) = mpsc::unbounded_channel();
    let network = Network {
        transport: Arc::new(RefusingTransport {
            attempts: attempts_tx,
        }),
        http: Arc::new(RefusingHttp),
    };
    Harness {
        wa: RealWhatsApp::with_network(tx, network),
        inbound,
        attempts,
        root: tempfile::tempdir().unwrap(),
    }
}

impl Harness {
    /// `sessions/<tenant-id>/`, created as the session manager does.
    fn folder(&self, tenant: TenantId) -> PathBuf {
        let folder = self.root.path().join("sessions").join(tenant.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        folder
    }

    async fn next_event(&mut self) -> Inbound {
        tokio::time::timeout(DEADLINE, self.inbound.recv())
            .await
            .expect("no event before the deadline")
            .expect("inbound channel closed")
    }

    /// The next `Connecting` of `tenant`, past the "cannot reach WhatsApp" reports that
    /// an offline client makes while it retries.
    async fn expect_connecting(&mut self, tenant: TenantId) {
        loop {
            let event = self.next_event().await;
            match event.event {
                InboundEvent::Session(SessionEvent::Disconnected { retrying: true, .. }) => {}
                InboundEvent::Session(SessionEvent::Connecting) if event.tenant == tenant => {
                    return;
                }
                other => panic!("expected Connecting of {tenant}, got {other:?}"),
            }
        }
    }

    /// The report that `tenant`'s client could not reach WhatsApp and keeps retrying.
    async fn expect_unreachable(&mut self, tenant: TenantId) {
        let event = self.next_event().await;
        assert_eq!(event.tenant, tenant);
        match event.event {
            InboundEvent::Session(SessionEvent::Disconnected {
                reason: Some(reason),
                retrying: true,
            }) => assert!(reason.contains("cannot reach WhatsApp"), "{reason}"),
            other => panic!("expected an unreachable report, got {other:?}"),
        }
    }

    /// When the next connection attempt was made.
    async fn transport_attempt(&mut self) -> Instant {
        tokio::time::timeout(DEADLINE, self.attempts.recv())
            .await
            .expect("no connection attempt before the deadline")
            .expect("transport dropped")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_client_keeps_retrying_and_stops_and_resumes_from_its_store() {
    let mut h = harness();
    let tenant = TenantId::new();
    let folder = h.folder(tenant);

    h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
    h.expect_connecting(tenant).await;
    assert!(folder.join("whatsapp.db").is_file());
    assert!(h.wa.is_running(tenant));
    assert!(!h.wa.is_connected(tenant));
    assert!(matches!(
        h.wa.send_text(tenant, "+6281234567890", "hi").await,
        Err(SendError::NotConnected)
    ));
    assert!(matches!(
        h.wa.mark_read(tenant, "+6281234567890", &["M1".to_owned()])
            .await,
        Err(SendError::NotConnected)
    ));

    // The first attempt, then a retry after the client's backoff (WhatsApp Web's: 1 s,
    // ±10 %): it keeps going, and says each time that it cannot reach WhatsApp.
    let first = h.transport_attempt().await;
    h.expect_unreachable(tenant).await;
    let second = h.transport_attempt().await;
    h.expect_unreachable(tenant).await;
    assert!(h.wa.is_running(tenant), "the client gave up");
    let waited = second - first;
    assert!(
        waited >= Duration::from_millis(850),
        "retried after {waited:?}"
    );

    // The device's identity, kept in the store across restarts.
    let identity = |client: &Client| {
        let device = client.persistence_manager().get_device_snapshot();
        (device.registration_id, device.noise_key.public_key)
    };

    // Connecting a running tenant changes nothing.
    let client = h.wa.client(tenant).unwrap();
    h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
    assert!(Arc::ptr_eq(&client, &h.wa.client(tenant).unwrap()));
    let before = identity(&client);
    drop(client);

    let started = Instant::now();
    assert_eq!(h.wa.stop(tenant).await, Some(Stopped::Cleanly));
    assert!(started.elapsed() < STOP_TIMEOUT);
    assert!(!h.wa.is_running(tenant));
    assert!(folder.join("whatsapp.db").is_file(), "the store is kept");

    // A restart builds a new client on the same store, with the same identity.
    h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
    h.expect_connecting(tenant).await;
    assert!(h.wa.is_running(tenant));
    h.transport_attempt().await;
    let after = identity(&h.wa.client(tenant).unwrap());
    assert!(before == after, "the restarted client is a new device");

    tokio::time::timeout(DEADLINE, h.wa.shutdown())
        .await
        .expect("shutdown did not finish");
    assert!(!h.wa.is_running(tenant));
    assert_eq!(h.wa.stop(tenant).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_tenant_together() {
    let mut h = harness();
    let tenants = [TenantId::new(), TenantId::new(), TenantId::new()];
    for tenant in tenants {
        let folder = h.folder(tenant);
        h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
        h.expect_connecting(tenant).await;
    }
    let started = Instant::now();
    tokio::time::timeout(DEADLINE, h.wa.shutdown())
        .await
        .expect("shutdown did not finish");
    assert!(started.elapsed() < STOP_TIMEOUT, "{:?}", started.elapsed());
    for tenant in tenants {
        assert!(!h.wa.is_running(tenant));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_an_offline_client_stops_it_and_reports_nothing() {
    let mut h = harness();
    let tenant = TenantId::new();
    let folder = h.folder(tenant);
    h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
    h.expect_connecting(tenant).await;

    let unlinked = tokio::time::timeout(DEADLINE, h.wa.logout(tenant))
        .await
        .expect("logout did not finish");
    assert!(!unlinked, "an offline client cannot have told WhatsApp");
    assert!(!h.wa.is_running(tenant));
    // The crate announces its own logout; AEZEN's caller records it instead. (The refused
    // connection attempt before it may have reported its own retry meanwhile.)
    while let Ok(Inbound { event, .. }) = h.inbound.try_recv() {
        assert!(
            matches!(
                event,
                InboundEvent::Session(SessionEvent::Disconnected { retrying: true, .. })
            ),
            "logout reported {event:?}"
        );
    }
    // Nothing runs any more: a second logout is a no-op.
    assert!(!h.wa.logout(tenant).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_by_code_needs_a_phone_number() {
    let mut h = harness();
    let tenant = TenantId::new();
    let folder = h.folder(tenant);
    let bad = LinkMethod::PairCode {
        phone_number: "0812-not-a-number".to_owned(),
    };
    assert!(h.wa.connect(tenant, &folder, bad).await.is_err());
    assert!(!h.wa.is_running(tenant));
    assert!(h.inbound.try_recv().is_err(), "nothing was started");

    let good = LinkMethod::PairCode {
        phone_number: "+6281234567890".to_owned(),
    };
    h.wa.connect(tenant, &folder, good).await.unwrap();
    h.expect_connecting(tenant).await;
    assert!(h.wa.is_running(tenant));
    h.wa.shutdown().await;
}

fn inbound_message(message: wa::Message, info: MessageInfo) -> InboundMessage {
    InboundMessage::builder()
        .message(Arc::new(message))
        .info(Arc::new(info))
        .build()
}

/// A running client (offline) to hand to the hook and the pump.
async fn offline_client(h: &mut Harness, tenant: TenantId) -> Arc<Client> {
    let folder = h.folder(tenant);
    h.wa.connect(tenant, &folder, LinkMethod::Qr).await.unwrap();
    h.expect_connecting(tenant).await;
    h.wa.client(tenant).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durability_hook_acknowledges_only_what_ingest_stored() {
    let mut h = harness();
    let tenant = TenantId::new();
    let client = offline_client(&mut h, tenant).await;
    let (tx, mut ingest) = mpsc::channel(8);
    let hook = DurableIngest {
        tenant,
        inbound: tx,
    };
    let batch = [inbound_message(
        wa::Message::text("halo"),
        info("H1", Jid::pn(CUSTOMER)),
    )];

    // Stored: the hook answers Ok, so the crate acknowledges to WhatsApp.
    let (answer, delivered) = tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
        let Inbound { tenant: t, event } = ingest.recv().await.unwrap();
        let InboundEvent::Message {
            message,
            stored: Some(stored),
        } = event
        else {
            panic!("expected a message awaiting storage");
        };
        assert_eq!(t, tenant);
        stored.send(Ingested::Duplicate).unwrap();
        message
    });
    answer.unwrap();
    assert_eq!(delivered.whatsapp_id, "H1");
    assert_eq!(delivered.contact_number, format!("+{CUSTOMER}"));

    // Not stored (ingest rolled back and dropped the reply): Err, so WhatsApp redelivers.
    let (answer, ()) = tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
        drop(ingest.recv().await.unwrap());
    });
    assert!(answer.is_err());

    // Nothing for the inbox: acknowledged without bothering ingest.
    let mut group = info("G1", Jid::group("120363000000000001"));
    group.source.is_group = true;
    let skipped = [inbound_message(wa::Message::text("hi all"), group)];
    hook.on_messages(Arc::clone(&client), &skipped)
        .await
        .unwrap();
    assert!(ingest.try_recv().is_err());

    h.wa.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lid_message_is_keyed_by_the_number_the_store_knows_or_left_for_redelivery() {
    let mut h = harness();
    let tenant = TenantId::new();
    let client = offline_client(&mut h, tenant).await;
    let (tx, mut ingest) = mpsc::channel(8);
    let hook = DurableIngest {
        tenant,
        inbound: tx,
    };
    let batch = [inbound_message(
        wa::Message::text("dari lid"),
        info("L1", Jid::lid(CUSTOMER_LID)),
    )];

    // Unknown number: not acknowledged, nothing stored under a LID.
    assert!(hook.on_messages(Arc::clone(&client), &batch).await.is_err());
    assert!(ingest.try_recv().is_err());

    // Once the client's store knows the LID's number, the message joins that contact.
    client
        .add_lid_pn_mapping(
            CUSTOMER_LID,
            CUSTOMER,
            whatsapp_rust::types::LearningSource::PeerLidMessage,
        )
        .await
        .unwrap();
    let (answer, delivered) = tokio::join!(hook.on_messages(Arc::clone(&client), &batch), async {
        let Inbound { event, .. } = ingest.recv().await.unwrap();
        let InboundEvent::Message {
            message,
            stored: Some(stored),
        } = event
        else {
            panic!("expected a message awaiting storage");
        };
        stored.send(Ingested::Duplicate).unwrap();
        message
    });
    answer.unwrap();
    assert_eq!(delivered.contact_number, format!("+{CUSTOMER}"));

    h.wa.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pump_reports_in_order_and_nothing_after_the_session_ended() {
    let mut h = harness();
    let tenant = TenantId::new();
    let client = offline_client(&mut h, tenant).await;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (tx, mut inbound) = mpsc::channel(8);
    let ended = Arc::new(AtomicBool::new(false));
    let pump = tokio::spawn(pump(
        tenant,
        events_rx,
        Arc::downgrade(&client),
        Arc::clone(&ended),
        tx,
        false,
        Weak::new(),
    ));

    // A batch the hook already committed is not delivered twice.
    let committed = MessageBatch::builder()
        .messages(Arc::from(vec![inbound_message(
            wa::Message::text("once"),
            info("K1", Jid::pn(CUSTOMER)),
        )]))
        .origin(whatsapp_rust::types::events::BatchOrigin::Live)
        .hook_committed(true)
        .build();
    for event in [
        Event::Messages(committed),
        qr(),
        receipt(ReceiptType::Read, &["S1"]),
        Event::StreamReplaced(StreamReplaced::builder().build()),
        qr(),
    ] {
        events_tx.send(Arc::new(event)).unwrap();
    }
    drop(events_tx);
    tokio::time::timeout(DEADLINE, pump)
        .await
        .expect("the pump did not finish")
        .unwrap();

    let mut got = Vec::new();
    while let Ok(Inbound { event, .. }) = inbound.try_recv() {
        got.push(event);
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(
        got[0],
        InboundEvent::Session(SessionEvent::Qr { .. })
    ));
    assert!(matches!(got[1], InboundEvent::Receipt { .. }));
    assert!(matches!(
        got[2],
        InboundEvent::Session(SessionEvent::Failed { .. })
    ));
    assert!(ended.load(Ordering::SeqCst));

    h.wa.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ended_for_good_gives_up_its_client() {
    let mut h = harness();
    let tenant = TenantId::new();
    let client = offline_client(&mut h, tenant).await;
    let ended = match h.wa.sessions().get(&tenant) {
        Some(Slot::Running(session)) => Arc::clone(&session.ended),
        _ => panic!("the tenant's client is not running"),
    };
    // A pump on this session's flag, as `connect` wires it, fed the ending event.
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (tx, mut inbound) = mpsc::channel(8);
    let pump = tokio::spawn(pump(
        tenant,
        events_rx,
        Arc::downgrade(&client),
        ended,
        tx,
        false,
        Arc::downgrade(&h.wa.sessions),
    ));
    let client = {
        let weak = Arc::downgrade(&client);
        drop(client);
        weak
    };
    events_tx
        .send(Arc::new(Event::StreamReplaced(
            StreamReplaced::builder().build(),
        )))
        .unwrap();
    tokio::time::timeout(DEADLINE, pump)
        .await
        .expect("the pump did not finish")
        .unwrap();

    // The end is reported, then the session leaves the map and its client is released.
    assert!(matches!(
        inbound.try_recv().map(|i| i.event),
        Ok(InboundEvent::Session(SessionEvent::Failed { .. }))
    ));
    assert!(h.wa.client(tenant).is_none());
    assert!(!h.wa.is_running(tenant));
    tokio::time::timeout(DEADLINE, async {
        while client.upgrade().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the ended session's client is still alive");

    h.wa.shutdown().await;
}
