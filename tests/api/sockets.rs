//! Socket.IO with a real client (rust_socketio): handshake auth, tenant rooms, events, acks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::socket::{Socket, connect};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn assert_refused(app: &TestApp, auth: Value) {
    let mut socket = connect(app, auth.clone()).await;
    let error = socket.next("error").await;
    assert!(
        error.to_string().contains("unauthorized"),
        "auth {auth}: {error}"
    );
}

#[tokio::test]
async fn a_socket_without_a_valid_token_is_refused() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    assert_refused(&app, json!({})).await;
    assert_refused(&app, json!({"token": "not-a-token"})).await;
    assert_refused(&app, json!({"token": 42})).await;

    app.post(
        "/api/auth/password",
        Some(&owner.token),
        json!({"currentPassword": owner.password, "newPassword": "a whole new password"}),
    )
    .await;
    assert_refused(&app, json!({"token": owner.token})).await;
}

#[tokio::test]
async fn incoming_messages_reach_only_their_own_tenants_sockets() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let mut a_socket = Socket::connected(&app, &a).await;
    let mut b_socket = Socket::connected(&app, &b).await;

    app.incoming(
        &a,
        json!({"from": "+6281234567890", "pushName": "Budi", "content": "for A only"}),
    )
    .await;
    let (name, event) = a_socket.next_app_event().await;
    assert_eq!(name, "incoming_message");
    assert_eq!(event["type"], "incoming_message");
    assert_eq!(event["message"]["content"], "for A only");
    assert_eq!(event["conversation"]["contactName"], "Budi");
    // Sent to the whole team: the tenant's count, not one member's own.
    assert_eq!(event["conversation"]["contactUnreadCount"], 1);
    assert!(
        event["conversation"].get("unreadCount").is_none(),
        "{event}"
    );
    let seq = event["seq"].as_i64().unwrap();
    let (_, logged) = app
        .get(&format!("/api/events?after={}", seq - 1), &a.token)
        .await;
    assert_eq!(
        logged["items"][0], event,
        "the socket event is the logged event"
    );

    // B's first event must be B's own: A's never reached B's socket.
    app.incoming(&b, json!({"from": "+6281234567890", "content": "for B"}))
        .await;
    let (_, event) = b_socket.next_app_event().await;
    assert_eq!(event["message"]["content"], "for B");
}

#[tokio::test]
async fn send_message_is_acknowledged_with_the_stored_message() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let (_, incoming) = app
        .incoming(&a, json!({"from": "+6281234567890", "content": "hi"}))
        .await;
    let cid = incoming["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut socket = Socket::connected(&app, &a).await;
    let ack = socket
        .send_message(json!({"conversationId": cid, "content": "hello over socket"}))
        .await;
    assert_eq!(ack["content"], "hello over socket", "{ack}");
    assert_eq!(ack["sender"], "agent");
    let (status, messages) = app
        .get(&format!("/api/conversations/{cid}/messages"), &a.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages["items"][0]["id"], ack["id"]);
    let (name, event) = socket.next_app_event().await;
    assert_eq!(
        (name.as_str(), &event["message"]["id"]),
        ("message_sent", &ack["id"])
    );

    let refused = socket
        .send_message(json!({"conversationId": cid, "content": ""}))
        .await;
    assert_eq!(refused["error"]["code"], "validation_failed", "{refused}");
    let malformed = socket
        .send_message(json!({"content": "no conversation"}))
        .await;
    assert_eq!(
        malformed["error"]["code"], "validation_failed",
        "{malformed}"
    );

    let mut intruder = Socket::connected(&app, &b).await;
    let denied = intruder
        .send_message(json!({"conversationId": cid, "content": "intrusion"}))
        .await;
    assert_eq!(denied["error"]["code"], "not_found", "{denied}");
}

#[tokio::test]
async fn a_socket_is_cut_off_when_its_users_password_changes() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let mut socket = Socket::connected(&app, &owner).await;
    app.post(
        "/api/auth/password",
        Some(&owner.token),
        json!({"currentPassword": owner.password, "newPassword": "a whole new password"}),
    )
    .await;
    socket.next("close").await;
}

#[tokio::test]
async fn a_client_that_reconnects_gets_what_it_missed_from_the_event_log() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let mut socket = Socket::connected(&app, &owner).await;
    app.incoming(
        &owner,
        json!({"from": "+6281234567890", "content": "seen live"}),
    )
    .await;
    let (_, seen) = socket.next_app_event().await;
    let last_seen = seen["seq"].as_i64().unwrap();
    socket.disconnect().await;

    // While it is away: an incoming message, a send (and its status change), a read.
    let (_, missed) = app
        .incoming(
            &owner,
            json!({"from": "+6281234567890", "content": "missed"}),
        )
        .await;
    let cid = missed["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, sent) = app
        .post(
            &format!("/api/conversations/{cid}/send"),
            Some(&owner.token),
            json!({"content": "reply"}),
        )
        .await;
    app.post(
        &format!("/api/conversations/{cid}/read"),
        Some(&owner.token),
        json!({}),
    )
    .await;
    let sent_id = sent["id"].as_str().unwrap().to_owned();
    app.wait_for(
        &format!("/api/conversations/{cid}/messages"),
        &owner.token,
        |b| {
            b["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == sent_id.as_str() && m["status"] == "sent")
        },
    )
    .await;

    let mut socket = Socket::connected(&app, &owner).await;
    let (_, caught_up) = app
        .get(&format!("/api/events?after={last_seen}"), &owner.token)
        .await;
    let kinds: Vec<&str> = caught_up["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // Reading is two events: the tenant's count for the team, the reader's own for them.
    // (The send's status may come before or after them.)
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "conversation_updated",
            "conversation_updated",
            "incoming_message",
            "message_sent",
            "message_status",
        ],
        "{caught_up}"
    );
    let updates: Vec<&serde_json::Value> = caught_up["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "conversation_updated")
        .collect();
    let (team, own) = (updates[0], updates[1]);
    assert_eq!(team["conversation"]["contactUnreadCount"], 0, "{team}");
    assert!(team["conversation"].get("unreadCount").is_none(), "{team}");
    assert_eq!(own["conversation"]["unreadCount"], 0, "{own}");
    // And live events flow again after the catch-up.
    app.incoming(
        &owner,
        json!({"from": "+6281234567890", "content": "live again"}),
    )
    .await;
    let (_, live) = socket.next_app_event().await;
    assert!(live["seq"].as_i64().unwrap() > caught_up["items"][4]["seq"].as_i64().unwrap());
}

#[tokio::test]
async fn open_sockets_do_not_hold_up_a_shutdown() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let mut socket = Socket::connected(&app, &owner).await;
    let restarted = tokio::time::timeout(Duration::from_secs(10), app.restart())
        .await
        .expect("the server stopped although a socket was open");
    socket.next("close").await;
    assert_eq!(
        restarted.get("/api/auth/me", &owner.token).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_socket_in_seq_order_while_writers_race() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let mut socket = Socket::connected(&app, &owner).await;
    let (_, first) = app
        .incoming(
            &owner,
            json!({"from": "+6281234567890", "content": "hello"}),
        )
        .await;
    let conversation = first["message"]["conversationId"].as_str().unwrap();

    // Incoming messages, agent sends and the outbox's status updates all write the log at
    // once, from different tasks.
    let writes = (0..40).map(|i| {
        let (app, owner) = (&app, &owner);
        async move {
            let (status, body) = if i % 2 == 0 {
                let from = format!("+62812000{:05}", i % 5);
                app.incoming(owner, json!({"from": from, "content": format!("in {i}")}))
                    .await
            } else {
                let path = format!("/api/conversations/{conversation}/send");
                app.post(
                    &path,
                    Some(&owner.token),
                    json!({"content": format!("out {i}")}),
                )
                .await
            };
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    });
    futures::future::join_all(writes).await;
    // Every outgoing message settles (`sent`) before the log is read.
    let logged = app
        .wait_for("/api/events?after=0&limit=1000", &owner.token, |page| {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "message_status")
                .count()
                == 20
        })
        .await;
    let newest = logged["items"].as_array().unwrap().last().unwrap()["seq"]
        .as_i64()
        .unwrap();

    let mut received = Vec::new();
    while received.last() < Some(&newest) {
        let (_, event) = socket.next_app_event().await;
        received.push(event["seq"].as_i64().unwrap());
    }
    let in_order = received.windows(2).all(|pair| pair[0] < pair[1]);
    assert!(in_order, "events arrived out of seq order: {received:?}");
    let since_connect = newest - received[0] + 1;
    assert_eq!(received.len() as i64, since_connect, "events were lost");
}

#[tokio::test]
async fn a_socket_frame_over_the_body_limit_ends_the_connection_unread() {
    let app = spawn_app_with(|c| c.max_body_bytes = 16 * 1024).await;
    let owner = app.register("Frames").await;
    let (_, incoming) = app
        .incoming(&owner, json!({"from": "+6281234567890", "content": "hi"}))
        .await;
    let cid = incoming["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = Socket::connected(&app, &owner).await;
    // Within the limit: parsed and answered (refused for its length, as over HTTP).
    let ack = socket
        .send_message(json!({"conversationId": cid, "content": "x".repeat(5000)}))
        .await;
    assert_eq!(ack["error"]["code"], "validation_failed", "{ack}");
    // Over it (but under engine.io's default 100 kB, and far under the websocket's 16 MiB): the
    // server does not read the frame; the connection ends.
    socket
        .emit(
            "send_message",
            json!({"conversationId": cid, "content": "x".repeat(50_000)}),
        )
        .await;
    socket.ended().await;
    let (_, page) = app
        .get(&format!("/api/conversations/{cid}/messages"), &owner.token)
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "nothing was stored"
    );
}
