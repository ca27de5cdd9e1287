//! The inbox over HTTP on the simulated WhatsApp backend.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Account, TestApp, assert_error, assert_error_naming, spawn_app};

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

async fn conversation_for(app: &TestApp, owner: &Account, number: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            json!({"contactNumber": number}),
        )
        .await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{status} {body}"
    );
    body
}

async fn message_status(
    app: &TestApp,
    owner: &Account,
    conversation: &str,
    message: &str,
    want: &str,
) -> Value {
    let path = format!("/api/conversations/{conversation}/messages");
    let body = app
        .wait_for(&path, &owner.token, |b| {
            items(b)
                .iter()
                .any(|m| m["id"] == message && m["status"] == want)
        })
        .await;
    items(&body)
        .iter()
        .find(|m| m["id"] == message)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_incoming_message_shows_as_unread_until_the_conversation_is_read() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let (status, body) = app
        .incoming(&owner, json!({"from": "+62 812-3456-7890", "pushName": "Budi", "content": "Halo, is this in stock?", "id": "WA-1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"]["sender"], "user");

    let (status, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(status, StatusCode::OK);
    let conversation = &items(&list)[0];
    assert_eq!(items(&list).len(), 1);
    assert_eq!(conversation["contactNumber"], "+6281234567890");
    assert_eq!(conversation["contactName"], "Budi");
    assert_eq!(conversation["platform"], "whatsapp");
    assert_eq!(conversation["lastMessage"], "Halo, is this in stock?");
    assert_eq!(conversation["unreadCount"], 1);
    assert!(conversation["lastMessageAt"].is_string());
    let id = conversation["id"].as_str().unwrap();
    let (_, unread) = app
        .get("/api/conversations?unread=true", &owner.token)
        .await;
    assert_eq!(items(&unread).len(), 1);

    let (status, read) = app
        .post(
            &format!("/api/conversations/{id}/read"),
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["unreadCount"], 0);
    let (_, one) = app
        .get(&format!("/api/conversations/{id}"), &owner.token)
        .await;
    assert_eq!(one["unreadCount"], 0);
    let (_, messages) = app
        .get(&format!("/api/conversations/{id}/messages"), &owner.token)
        .await;
    assert_eq!(items(&messages)[0]["isRead"], true);
    let (_, unread) = app
        .get("/api/conversations?unread=true", &owner.token)
        .await;
    assert!(items(&unread).is_empty());

    let tenant = owner.tenant_id.parse().unwrap();
    assert_eq!(
        app.simulated().reads(tenant),
        [("+6281234567890".to_owned(), vec!["WA-1".to_owned()])],
        "WhatsApp was told the message was read"
    );
}

#[tokio::test]
async fn a_sent_message_goes_pending_sent_delivered_read() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let conversation = conversation_for(&app, &owner, "+447700900123").await;
    let cid = conversation["id"].as_str().unwrap();

    let (status, sent) = app.send_text(&owner, cid, "Yes, we have it").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(
        sent["status"], "pending",
        "the acknowledged message is stored before it is sent"
    );
    assert_eq!(sent["sender"], "agent");
    assert_eq!(sent["authorId"], owner.user_id);
    let mid = sent["id"].as_str().unwrap();

    let sent_now = message_status(&app, &owner, cid, mid, "sent").await;
    assert!(
        sent_now["whatsappId"]
            .as_str()
            .unwrap()
            .starts_with("SIMULATED-")
    );
    for status in ["delivered", "read"] {
        let (code, body) = app
            .post(
                "/api/integrations/whatsapp/simulate/receipt",
                Some(&owner.token),
                json!({"messageId": mid, "status": status}),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
        message_status(&app, &owner, cid, mid, status).await;
    }
    // A late "delivered" never moves a read message back. Receipts are applied by ingest
    // in arrival order, so once a later incoming message is stored, the receipt was too.
    app.post(
        "/api/integrations/whatsapp/simulate/receipt",
        Some(&owner.token),
        json!({"messageId": mid, "status": "delivered"}),
    )
    .await;
    let (status, _) = app
        .incoming(
            &owner,
            json!({"from": "+6281100000001", "content": "after"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, history) = app
        .get(&format!("/api/conversations/{cid}/messages"), &owner.token)
        .await;
    assert_eq!(items(&history)[0]["status"], "read", "{history}");
    let (_, list) = app
        .get("/api/conversations?q=447700900123", &owner.token)
        .await;
    assert_eq!(items(&list)[0]["lastMessage"], "Yes, we have it");

    let (_, events) = app.get("/api/events?after=0", &owner.token).await;
    let kinds: Vec<(&str, &str)> = items(&events)
        .iter()
        .filter(|e| e["message"]["id"] == mid)
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["message"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("message_sent", "pending"),
            ("message_status", "sent"),
            ("message_status", "delivered"),
            ("message_status", "read")
        ]
    );
    let seqs: Vec<i64> = items(&events)
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq is monotonic: {seqs:?}"
    );
}

#[tokio::test]
async fn the_same_incoming_whatsapp_id_twice_is_stored_once() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let body = json!({"from": "+6281234567890", "content": "hi", "id": "WA-DUP"});
    assert_eq!(
        app.incoming(&owner, body.clone()).await.0,
        StatusCode::CREATED
    );
    let (_, events_before) = app.get("/api/events", &owner.token).await;
    let (status, again) = app.incoming(&owner, body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["stored"], false);

    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(items(&list)[0]["unreadCount"], 1);
    let id = items(&list)[0]["id"].as_str().unwrap();
    let (_, messages) = app
        .get(&format!("/api/conversations/{id}/messages"), &owner.token)
        .await;
    assert_eq!(items(&messages).len(), 1);
    let (_, events_after) = app.get("/api/events", &owner.token).await;
    assert_eq!(events_after, events_before, "a redelivery emits nothing");
}

#[tokio::test]
async fn a_message_sent_from_the_phone_is_an_agent_message() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let (status, body) = app
        .incoming(&owner, json!({"from": "+6281234567890", "content": "sent on my phone", "fromMe": true, "pushName": "Me"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"]["sender"], "agent");
    assert_eq!(body["message"]["status"], "sent");
    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(items(&list)[0]["unreadCount"], 0);
    assert_eq!(
        items(&list)[0]["contactName"],
        Value::Null,
        "our own push name is not the contact's"
    );
    let (_, events) = app.get("/api/events", &owner.token).await;
    assert_eq!(items(&events)[0]["type"], "message_sent");
}

#[tokio::test]
async fn a_send_while_the_session_is_down_goes_out_when_it_is_back() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let conversation = conversation_for(&app, &owner, "+6281234567890").await;
    let cid = conversation["id"].as_str().unwrap();

    // Never linked: the message waits.
    let (status, sent) = app.send_text(&owner, cid, "queued").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sent["status"], "pending");
    let mid = sent["id"].as_str().unwrap();
    // A receipt cannot exist for a message WhatsApp has not got.
    let early = app
        .post(
            "/api/integrations/whatsapp/simulate/receipt",
            Some(&owner.token),
            json!({"messageId": mid, "status": "read"}),
        )
        .await;
    assert_error(early, StatusCode::CONFLICT, "not_sent_yet");

    app.link(&owner).await;
    message_status(&app, &owner, cid, mid, "sent").await;

    // Turned off (link kept): the next message waits until it is turned on again.
    app.toggle(&owner).await;
    app.wait_for_session(&owner, "disconnected").await;
    let (_, second) = app.send_text(&owner, cid, "second").await;
    let second_id = second["id"].as_str().unwrap();
    app.toggle(&owner).await;
    app.wait_for_session(&owner, "connected").await;
    message_status(&app, &owner, cid, second_id, "sent").await;
}

#[tokio::test]
async fn a_message_queued_before_a_restart_goes_out_after_it() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let conversation = conversation_for(&app, &owner, "+6281234567890").await;
    let cid = conversation["id"].as_str().unwrap().to_owned();
    app.toggle(&owner).await;
    app.wait_for_session(&owner, "disconnected").await;
    let (_, sent) = app.send_text(&owner, &cid, "survives").await;
    assert_eq!(sent["status"], "pending");
    let mid = sent["id"].as_str().unwrap().to_owned();

    let app = app.restart().await;
    assert_eq!(
        message_status(&app, &owner, &cid, &mid, "pending").await["content"],
        "survives",
        "the accepted message survived the restart"
    );
    app.toggle(&owner).await;
    message_status(&app, &owner, &cid, &mid, "sent").await;
}

#[tokio::test]
async fn sending_to_a_number_finds_or_creates_its_one_conversation() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let (status, first) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+62 812 3456 7890", "content": "one"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (_, second) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "0062-812-3456-7890", "content": "two"}),
        )
        .await;
    assert_eq!(first["conversationId"], second["conversationId"]);
    let again = conversation_for(&app, &owner, "6281234567890").await;
    assert_eq!(again["id"], first["conversationId"]);
    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(items(&list).len(), 1);
    assert_eq!(items(&list)[0]["lastMessage"], "two");
}

#[tokio::test]
async fn bad_chat_input_gets_a_4xx_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let cid = conversation_for(&app, &owner, "+6281234567890").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send_path = format!("/api/conversations/{cid}/send");
    let send =
        |content: Value| app.post(&send_path, Some(&owner.token), json!({"content": content}));

    let empty = send(json!("   ")).await;
    assert_error_naming(
        empty,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "content",
    );
    let oversized = send(json!("x".repeat(5000))).await;
    assert_error_naming(
        oversized,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "content",
    );
    assert_error(
        send(json!(12)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );

    let unknown = uuid::Uuid::new_v4();
    assert_error(
        app.get(&format!("/api/conversations/{unknown}"), &owner.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        app.send_text(&owner, &unknown.to_string(), "hi").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let bad_number = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            json!({"contactNumber": "0812 345"}),
        )
        .await;
    assert_error_naming(
        bad_number,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "contactNumber",
    );
    let bad_to = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "abc", "content": "x"}),
        )
        .await;
    assert_error_naming(
        bad_to,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "to",
    );

    let bad_cursor = app
        .get("/api/conversations?cursor=garbage", &owner.token)
        .await;
    assert_error_naming(
        bad_cursor,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "cursor",
    );
    // A cursor whose snapshot is far behind (here forged) would make a page read every
    // message since: refused, with what to do.
    use base64::Engine as _;
    let stale = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("c:1700000000000:{}:-100000", uuid::Uuid::nil()));
    let stale = app
        .get(&format!("/api/conversations?cursor={stale}"), &owner.token)
        .await;
    assert_error_naming(
        stale,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "first page",
    );
    let bad_before = app
        .get(
            &format!("/api/conversations/{cid}/messages?before=Yzox"),
            &owner.token,
        )
        .await;
    assert_error_naming(
        bad_before,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "before",
    );
    assert_error(
        app.get("/api/conversations?limit=0", &owner.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        app.get("/api/conversations?limit=many", &owner.token).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        app.get("/api/events?after=-1", &owner.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // The largest seq there can be: nothing after it (it once overflowed into a 500).
    let (status, page) = app
        .get(&format!("/api/events?after={}", i64::MAX), &owner.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], serde_json::json!([]));
    assert_eq!(page["truncated"], false);

    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(
        items(&list)[0]["lastMessage"],
        Value::Null,
        "nothing half-written by refused sends"
    );
}

#[tokio::test]
async fn search_matches_names_and_phone_like_queries_match_numbers() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    for (from, name) in [
        ("+6281234500001", "Nike Store"),
        ("+6281299900002", "nike outlet"),
        ("+6281200000023", "Adidas"),
        ("+6281300000004", "100% Real"),
        ("+6281300000005", "under_score"),
    ] {
        app.incoming(
            &owner,
            json!({"from": from, "pushName": name, "content": "hi"}),
        )
        .await;
    }
    let names = |page: &Value| {
        let mut names: Vec<String> = items(page)
            .iter()
            .map(|c| c["contactName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    // Already URL-encoded: %25 is '%', %2B '+', %20 ' '.
    for (q, expected) in [
        ("NIKE", vec!["Nike Store", "nike outlet"]),
        ("%2B62%20812%20345", vec!["Nike Store"]),
        ("(812)%20999-0", vec!["nike outlet"]),
        ("Nike%202", vec![]),
        ("%25", vec!["100% Real"]),
        ("_", vec!["under_score"]),
        (
            "%20%20",
            vec![
                "Adidas",
                "Nike Store",
                "nike outlet",
                "100% Real",
                "under_score",
            ],
        ),
    ] {
        let (status, page) = app
            .get(&format!("/api/conversations?q={q}"), &owner.token)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(names(&page), expected, "q={q}");
    }
}

#[tokio::test]
async fn tenant_b_cannot_list_read_send_to_or_mark_tenant_a_conversations() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let (_, incoming) = app
        .incoming(
            &a,
            json!({"from": "+6281234567890", "content": "secret of A"}),
        )
        .await;
    let cid = incoming["message"]["conversationId"].as_str().unwrap();
    let (_, sent) = app.send_text(&a, cid, "reply of A").await;
    let mid = sent["id"].as_str().unwrap();

    let (_, b_list) = app.get("/api/conversations", &b.token).await;
    assert!(items(&b_list).is_empty());
    let (_, b_events) = app.get("/api/events", &b.token).await;
    assert!(items(&b_events).is_empty());
    for path in [
        format!("/api/conversations/{cid}"),
        format!("/api/conversations/{cid}/messages"),
    ] {
        assert_error(
            app.get(&path, &b.token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let send = app.send_text(&b, cid, "intrusion").await;
    assert_error(send, StatusCode::NOT_FOUND, "not_found");
    let read = app
        .post(
            &format!("/api/conversations/{cid}/read"),
            Some(&b.token),
            json!({}),
        )
        .await;
    assert_error(read, StatusCode::NOT_FOUND, "not_found");
    let receipt = app
        .post(
            "/api/integrations/whatsapp/simulate/receipt",
            Some(&b.token),
            json!({"messageId": mid, "status": "read"}),
        )
        .await;
    assert_error(receipt, StatusCode::NOT_FOUND, "not_found");

    let (_, a_conv) = app
        .get(&format!("/api/conversations/{cid}"), &a.token)
        .await;
    assert_eq!(
        a_conv["unreadCount"], 1,
        "B's attempt to mark read changed nothing"
    );
    let (_, a_messages) = app
        .get(&format!("/api/conversations/{cid}/messages"), &a.token)
        .await;
    assert!(
        items(&a_messages)
            .iter()
            .all(|m| m["content"] != "intrusion")
    );
}

#[tokio::test]
async fn message_history_pages_stay_exact_while_new_messages_arrive() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let mut originals = Vec::new();
    for i in 0..25 {
        let (_, body) = app
            .incoming(
                &owner,
                json!({"from": "+6281234567890", "content": format!("m{i}")}),
            )
            .await;
        originals.push(body["message"]["id"].as_str().unwrap().to_owned());
    }
    let cid = {
        let (_, list) = app.get("/api/conversations", &owner.token).await;
        items(&list)[0]["id"].as_str().unwrap().to_owned()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/conversations/{cid}/messages?limit=7&before={c}"),
            None => format!("/api/conversations/{cid}/messages?limit=7"),
        };
        let (status, page) = app.get(&path, &owner.token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            items(&page)
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        // New messages arrive between pages.
        app.incoming(
            &owner,
            json!({"from": "+6281234567890", "content": format!("new{n}")}),
        )
        .await;
        n += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    originals.reverse(); // newest first
    assert_eq!(
        seen, originals,
        "every original message once, newest first, none skipped or repeated"
    );
}

#[tokio::test]
async fn conversation_pages_never_skip_or_repeat_while_messages_arrive() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let mut all = HashSet::new();
    for i in 0..30 {
        let (_, body) = app
            .incoming(
                &owner,
                json!({"from": format!("+62812000{i:05}"), "content": format!("c{i}")}),
            )
            .await;
        all.insert(
            body["message"]["conversationId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/conversations?limit=8&cursor={c}"),
            None => "/api/conversations?limit=8".to_owned(),
        };
        let (status, page) = app.get(&path, &owner.token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            items(&page)
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        // While the client pages: a brand-new contact writes, an old one not yet served
        // writes (it moves to the top of the inbox), and so does the last one just served.
        let just_served = items(&page).last().unwrap()["contactNumber"]
            .as_str()
            .unwrap()
            .to_owned();
        for from in [
            format!("+62899000{round:05}"),
            format!("+62812000{round:05}"),
            just_served,
        ] {
            let (status, _) = app
                .incoming(&owner, json!({"from": from, "content": "again"}))
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        round += 1;
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a conversation was repeated across pages"
    );
    // Every conversation the first page's snapshot held is served once, whether it moved
    // before or after the cursor reached it; new contacts come by the live events.
    let skipped: Vec<&String> = all.difference(&unique).collect();
    assert!(skipped.is_empty(), "skipped by the pages: {skipped:?}");
    assert!(round >= 4, "paged in {round} rounds");
}

#[tokio::test]
async fn the_event_log_returns_what_a_client_missed_in_pages() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    for i in 0..5 {
        app.incoming(
            &owner,
            json!({"from": "+6281234567890", "content": format!("e{i}")}),
        )
        .await;
    }
    let (_, first) = app.get("/api/events?after=0&limit=2", &owner.token).await;
    assert_eq!(items(&first).len(), 2);
    assert_eq!(first["truncated"], false);
    let next = first["nextCursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/api/events?after={next}&limit=10"), &owner.token)
        .await;
    assert_eq!(items(&rest).len(), 3);
    assert_eq!(rest["nextCursor"], Value::Null);
    let contents: Vec<&str> = items(&first)
        .iter()
        .chain(items(&rest))
        .map(|e| e["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["e0", "e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn pruned_events_are_reported_as_truncated() {
    let app = crate::helpers::spawn_app_with(|c| c.event_retention_count = 10).await;
    let owner = app.register("Acme").await;
    for i in 0..300 {
        app.incoming(
            &owner,
            json!({"from": "+6281234567890", "content": format!("p{i}")}),
        )
        .await;
    }
    let (_, events) = app
        .get("/api/events?after=0&limit=1000", &owner.token)
        .await;
    assert!(items(&events).len() < 300, "old events were pruned");
    assert_eq!(events["truncated"], true);
    let last = items(&events).last().unwrap()["seq"].as_i64().unwrap();
    let (_, caught_up) = app
        .get(&format!("/api/events?after={last}"), &owner.token)
        .await;
    assert_eq!(caught_up["truncated"], false);
    assert!(items(&caught_up).is_empty());
}

#[tokio::test]
async fn events_past_the_age_limit_are_not_served_and_go_with_the_next_write() {
    // An age limit of 0 hours: every event is past it a millisecond after it is written.
    let app = crate::helpers::spawn_app_with(|c| c.event_retention_hours = 0).await;
    let owner = app.register("Acme").await;
    app.incoming(&owner, json!({"from": "+6281234567890", "content": "old"}))
        .await;

    // Once past the limit (the next millisecond), they are no longer served, with no write
    // in between to prune them.
    let events = app
        .wait_for("/api/events?after=0", &owner.token, |e| items(e).is_empty())
        .await;
    assert_eq!(events["truncated"], true);

    let before_write = chrono::Utc::now().timestamp_millis();
    app.incoming(&owner, json!({"from": "+6281234567890", "content": "new"}))
        .await;
    let files = app.tenant_files();
    let (_root, _config) = app.stop().await;
    let conn = rusqlite::Connection::open(&files[0]).unwrap();
    let (kept, expired): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE created_at < ?1) FROM event",
            [before_write],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(expired, 0, "the write after the age limit did not prune");
    assert!(kept > 0, "the new write's own events were pruned");
}

#[tokio::test]
async fn ingest_under_load_commits_a_tenants_messages_together() {
    use aezen::whatsapp::{InboundEvent, IncomingMessage};
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let simulated = app.simulated();
    // Queue 100 messages for two tenants before the ingest task gets to run (this test's
    // runtime has one thread, and queueing does not yield), as a burst from WhatsApp would.
    let mut replies = Vec::new();
    for i in 0..100 {
        let owner = if i % 2 == 0 { &a } else { &b };
        let (reply, stored) = tokio::sync::oneshot::channel();
        let message = IncomingMessage {
            whatsapp_id: format!("BURST-{i}"),
            contact_number: format!("+62812000{:05}", i % 7),
            push_name: None,
            content: format!("burst {i}"),
            from_me: false,
            media: None,
            timestamp: chrono::Utc::now(),
        };
        simulated
            .inject(
                owner.tenant_id.parse().unwrap(),
                InboundEvent::Message {
                    message,
                    stored: Some(reply),
                },
            )
            .await;
        replies.push(stored);
    }
    for stored in replies {
        assert!(stored.await.is_ok(), "stored and acknowledged");
    }
    assert_eq!(app.metric("aezen_ingest_events_total").await, 100);
    assert_eq!(
        app.metric("aezen_ingest_transactions_total").await,
        2,
        "one transaction per tenant"
    );
    for owner in [&a, &b] {
        let (_, list) = app.get("/api/conversations", &owner.token).await;
        let unread: i64 = items(&list)
            .iter()
            .map(|c| c["unreadCount"].as_i64().unwrap())
            .sum();
        assert_eq!(unread, 50);
    }
}

/// `GET /api/conversations` for `token`, with `If-None-Match: etag` if given: the status, the
/// ETag, and the body (empty for a 304).
async fn list_with_etag(
    app: &TestApp,
    token: &str,
    etag: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = app
        .client
        .get(format!("{}/api/conversations", app.address))
        .bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let tag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, tag, body)
}

/// First pages are kept and answered again while the tenant's file is unchanged
/// (src/chat/pages.rs): a repeat with the page's ETag is 304; any change to the file — by
/// anyone — gives the next request the page as it now is; a member's page is never
/// another's; and a page re-read with the same bytes keeps its ETag.
#[tokio::test]
async fn a_kept_first_page_is_304_until_the_file_changes_and_is_never_another_members() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    app.link(&owner).await;
    let (status, body) = app
        .incoming(
            &owner,
            json!({"from": "+6281234567890", "pushName": "Budi", "content": "first"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, etag, page) = list_with_etag(&app, &owner.token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(etag.starts_with('"') && etag.len() > 2, "an ETag: {etag:?}");
    assert_eq!(items(&page)[0]["unreadCount"], 1);
    let id = items(&page)[0]["id"].as_str().unwrap().to_owned();
    let (status, again, body) = list_with_etag(&app, &owner.token, Some(&etag)).await;
    assert_eq!(
        (status, &again, &body),
        (StatusCode::NOT_MODIFIED, &etag, &Value::Null)
    );

    // The agent reads the conversation: the agent's page says so; the owner's keeps its own
    // unread count and loses the tenant-wide one, under a new ETag.
    let (status, body) = app
        .post(
            &format!("/api/conversations/{id}/read"),
            Some(&agent.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, agent_etag, agent_page) = list_with_etag(&app, &agent.token, None).await;
    assert_eq!(items(&agent_page)[0]["unreadCount"], 0);
    assert_ne!(agent_etag, etag);
    let (status, etag, page) = list_with_etag(&app, &owner.token, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(items(&page)[0]["unreadCount"], 1);
    assert_eq!(items(&page)[0]["contactUnreadCount"], 0);

    // A write that the list does not show (a new label): the page is read again, with the
    // same bytes, so the same ETag.
    let (status, body) = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "VIP", "color": "#d97706"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, _) = list_with_etag(&app, &owner.token, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // A new message and a rename: the next page has them, under a new ETag.
    app.incoming(
        &owner,
        json!({"from": "+6281234567890", "content": "second"}),
    )
    .await;
    let (status, newer, page) = list_with_etag(&app, &owner.token, Some(&etag)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(newer, etag);
    assert_eq!(items(&page)[0]["lastMessage"], "second");
    assert_eq!(items(&page)[0]["unreadCount"], 2);
    let (status, body) = app
        .patch(
            &format!("/api/conversations/{id}"),
            &agent.token,
            json!({"contactName": "Budi S."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, page) = list_with_etag(&app, &owner.token, Some(&newer)).await;
    assert_eq!(items(&page)[0]["contactName"], "Budi S.");
}
