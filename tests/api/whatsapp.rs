//! The WhatsApp session life cycle on the simulated backend, over HTTP and Socket.IO.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::socket::Socket;
use crate::helpers::{Account, TestApp, assert_error, assert_error_naming, spawn_app};

async fn qr_svg(app: &TestApp, account: &Account) -> reqwest::Response {
    app.client
        .get(format!("{}/api/integrations/whatsapp/qr.svg", app.address))
        .bearer_auth(&account.token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn linking_sending_and_unlinking_end_to_end() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let mut socket = Socket::connected(&app, &owner).await;
    assert_eq!(
        app.get("/api/integrations/whatsapp/status", &owner.token)
            .await
            .1["state"],
        "disconnected"
    );
    assert_eq!(qr_svg(&app, &owner).await.status(), StatusCode::NOT_FOUND);

    let started = app.toggle(&owner).await;
    assert!(
        ["connecting", "qr"].contains(&started["state"].as_str().unwrap()),
        "{started}"
    );
    assert!(
        app.session_folder(&owner).is_dir(),
        "the session folder exists before the store opens"
    );

    let status = socket.next("whatsapp_status").await;
    assert_eq!(status["state"], "connecting");
    let qr = socket.next("qr").await;
    assert!(
        qr["code"].as_str().unwrap().starts_with("SIMULATED-QR-"),
        "{qr}"
    );
    assert!(qr["svg"].as_str().unwrap().contains("<svg"));
    assert!(qr["expiresAt"].is_string());
    assert!(qr["seq"].is_i64());
    assert_eq!(socket.next("whatsapp_status").await["state"], "qr");

    let res = qr_svg(&app, &owner).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(res.text().await.unwrap().contains("<svg"));

    let (status, _) = app.scan(&owner).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let connected = socket.next("whatsapp_status").await;
    assert_eq!(connected["state"], "connected");
    assert!(
        connected["phoneNumber"]
            .as_str()
            .unwrap()
            .starts_with("+1555")
    );
    let (_, cards) = app.get("/api/integrations", &owner.token).await;
    assert_eq!(cards["items"][0]["id"], "whatsapp");
    assert_eq!(cards["items"][0]["backend"], "simulated");
    assert_eq!(cards["items"][0]["enabled"], true);
    assert_eq!(cards["items"][0]["status"]["state"], "connected");
    assert_eq!(
        cards["items"][0]["status"]["phoneNumber"],
        connected["phoneNumber"]
    );
    assert_eq!(cards["items"][0]["status"]["pushName"], "Simulated phone");
    assert_eq!(
        qr_svg(&app, &owner).await.status(),
        StatusCode::NOT_FOUND,
        "no QR once linked"
    );

    let (_, sent) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+6281234567890", "content": "hi"}),
        )
        .await;
    let status = socket.next("message_status").await;
    assert_eq!(
        (&status["message"]["id"], &status["message"]["status"]),
        (&sent["id"], &json!("sent"))
    );

    let (status, _) = app
        .post(
            "/api/integrations/whatsapp/simulate/unlink",
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let logged_out = socket.next("whatsapp_status").await;
    assert_eq!(logged_out["state"], "logged_out");
    assert!(logged_out["reason"].as_str().unwrap().contains("phone"));
    app.wait_for_session(&owner, "logged_out").await;
    assert!(
        !app.session_folder(&owner).exists(),
        "a logged-out session's folder is removed"
    );

    let (_, queued) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+6281234567890", "content": "later"}),
        )
        .await;
    assert_eq!(
        queued["status"], "pending",
        "messages queue while logged out"
    );
}

#[tokio::test]
async fn toggling_off_keeps_the_link_and_on_again_resumes_without_a_qr_code() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;

    let off = app.toggle(&owner).await;
    assert_eq!(off["state"], "disconnected");
    assert_eq!(off["reason"], "turned off");
    assert!(
        app.session_folder(&owner).is_dir(),
        "turning off keeps the link"
    );

    let mut socket = Socket::connected(&app, &owner).await;
    app.toggle(&owner).await;
    assert_eq!(socket.next("whatsapp_status").await["state"], "connecting");
    let (name, event) = socket.next_app_event().await;
    assert_eq!(
        (name.as_str(), &event["state"]),
        ("whatsapp_status", &json!("connected")),
        "no QR code in between"
    );
}

#[tokio::test]
async fn a_restart_reconnects_tenants_with_a_session_folder_without_a_request() {
    let app = spawn_app().await;
    let linked = app.register("Linked").await;
    let turned_off = app.register("Turned off").await;
    let never = app.register("Never linked").await;
    app.link(&linked).await;
    app.link(&turned_off).await;
    app.toggle(&turned_off).await;

    let app = app.restart().await;
    // Only status reads from here: they start nothing.
    let resumed = app.wait_for_session(&linked, "connected").await;
    assert!(resumed["phoneNumber"].is_string());
    let (_, off) = app
        .get("/api/integrations/whatsapp/status", &turned_off.token)
        .await;
    assert_eq!(
        off["state"], "disconnected",
        "a tenant that turned WhatsApp off stays off"
    );
    let (_, none) = app
        .get("/api/integrations/whatsapp/status", &never.token)
        .await;
    assert_eq!(none["state"], "disconnected");
    assert!(!app.session_folder(&never).exists());
}

#[tokio::test]
async fn linking_by_pairing_code() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let bad = app
        .post(
            "/api/integrations/whatsapp/pair-code",
            Some(&owner.token),
            json!({"phoneNumber": "12"}),
        )
        .await;
    assert_error_naming(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "phoneNumber",
    );

    let (status, _) = app
        .post(
            "/api/integrations/whatsapp/pair-code",
            Some(&owner.token),
            json!({"phoneNumber": "+62 812 3456 7890"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pairing = app.wait_for_session(&owner, "pair_code").await;
    assert_eq!(pairing["pairCode"].as_str().unwrap().len(), 8, "{pairing}");
    assert!(pairing["expiresAt"].is_string());
    // The status is visible in memory a moment before its event is committed to the log.
    let is_pair_code =
        |e: &&serde_json::Value| e["type"] == "whatsapp_status" && e["state"] == "pair_code";
    let events = app
        .wait_for("/api/events", &owner.token, |events| {
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| is_pair_code(&e))
        })
        .await;
    let logged = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(is_pair_code)
        .expect("the pair_code status is in the event log");
    assert_eq!(logged["pairCode"], pairing["pairCode"]);
    assert_eq!(
        logged["expiresAt"], pairing["expiresAt"],
        "read back from the log intact"
    );

    app.scan(&owner).await;
    app.wait_for_session(&owner, "connected").await;
    let again = app
        .post(
            "/api/integrations/whatsapp/pair-code",
            Some(&owner.token),
            json!({"phoneNumber": "+6281234567890"}),
        )
        .await;
    assert_error(again, StatusCode::CONFLICT, "already_connected");
}

#[tokio::test]
async fn logout_unlinks_and_deletes_the_session_folder() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    app.link(&owner).await;
    let (status, body) = app.logout(&owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "logged_out");
    assert_eq!(body["reason"], "logged out from AEZEN", "WhatsApp was told");
    assert!(!app.session_folder(&owner).exists());
    assert_error(app.scan(&owner).await, StatusCode::CONFLICT, "not_pairing");
    // Linking again starts from a QR code.
    app.toggle(&owner).await;
    app.wait_for_session(&owner, "qr").await;

    // Linked, then turned off: logging out cannot reach WhatsApp, and says what to do.
    app.scan(&owner).await;
    app.wait_for_session(&owner, "connected").await;
    app.toggle(&owner).await;
    app.wait_for_session(&owner, "disconnected").await;
    assert!(
        app.session_folder(&owner).exists(),
        "toggling off keeps the link"
    );
    let (status, body) = app.logout(&owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "logged_out");
    assert!(
        body["reason"].as_str().unwrap().contains("Linked devices"),
        "{body}"
    );
    assert!(!app.session_folder(&owner).exists());
}

#[tokio::test]
async fn only_owners_and_admins_toggle_pair_or_log_out() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let admin = app.add_member(&owner, "admin").await;
    for path in [
        "/api/integrations/whatsapp/toggle",
        "/api/integrations/whatsapp/logout",
        "/api/integrations/whatsapp/simulate/scan",
        "/api/integrations/whatsapp/simulate/unlink",
    ] {
        assert_error(
            app.post(path, Some(&agent.token), json!({})).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let pair = app
        .post(
            "/api/integrations/whatsapp/pair-code",
            Some(&agent.token),
            json!({"phoneNumber": "+6281234567890"}),
        )
        .await;
    assert_error(pair, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.get("/api/integrations/whatsapp/status", &agent.token)
            .await
            .0,
        StatusCode::OK,
        "agents may look"
    );
    assert!(!app.session_folder(&owner).exists(), "nothing was started");
    app.link(&admin).await;
}

#[tokio::test]
async fn two_tenants_never_share_a_session_folder_or_an_event() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let mut a_socket = Socket::connected(&app, &a).await; // A's events, for A's QR code
    let mut b_socket = Socket::connected(&app, &b).await;

    app.toggle(&a).await;
    let a_qr = a_socket.next("qr").await;
    app.toggle(&b).await;
    let b_qr = b_socket.next("qr").await;
    assert_ne!(a_qr["code"], b_qr["code"]);
    assert_ne!(app.session_folder(&a), app.session_folder(&b));
    assert!(app.session_folder(&a).is_dir() && app.session_folder(&b).is_dir());

    app.scan(&a).await;
    app.wait_for_session(&a, "connected").await;
    assert_eq!(
        app.wait_for_session(&b, "qr").await["state"],
        "qr",
        "A's link did not touch B"
    );

    // B's socket sees B's session only: connecting, (its QR, taken above), qr, connected.
    app.scan(&b).await;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(_, state)| state != "connected") {
        let (name, event) = b_socket.next_app_event().await;
        assert_ne!(name, "qr", "a second QR code reached B: {event}");
        seen.push((name, event["state"].as_str().unwrap_or_default().to_owned()));
    }
    let states: Vec<&str> = seen.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(states, ["connecting", "qr", "connected"], "{seen:?}");
}

#[tokio::test]
async fn simulated_endpoints_refuse_wrong_states() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    assert_error(app.scan(&owner).await, StatusCode::CONFLICT, "not_pairing");
    let unlink = app
        .post(
            "/api/integrations/whatsapp/simulate/unlink",
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_error(unlink, StatusCode::CONFLICT, "not_running");
}

#[tokio::test]
async fn unscanned_qr_codes_expire_and_linking_can_start_again() {
    let app = crate::helpers::spawn_app_with(|c| c.simulated_qr_ms = 50).await;
    let owner = app.register("Acme").await;
    let mut socket = Socket::connected(&app, &owner).await;
    app.toggle(&owner).await;
    let mut codes = std::collections::HashSet::new();
    for _ in 0..6 {
        codes.insert(socket.next("qr").await["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes.len(), 6, "six different codes");
    let ended = app.wait_for_session(&owner, "disconnected").await;
    assert!(
        ended["reason"].as_str().unwrap().contains("expired"),
        "{ended}"
    );
    assert_eq!(qr_svg(&app, &owner).await.status(), StatusCode::NOT_FOUND);

    // A new attempt shows new codes and can link.
    app.toggle(&owner).await;
    let fresh = socket.next("qr").await;
    assert!(!codes.contains(fresh["code"].as_str().unwrap()));
    app.scan(&owner).await;
    app.wait_for_session(&owner, "connected").await;
}

#[tokio::test]
async fn the_real_backend_without_a_network_reports_the_failure_keeps_retrying_and_serves() {
    let app =
        crate::helpers::spawn_app_with(|c| c.whatsapp = aezen::config::BackendKind::Real).await;
    let owner = app.register("Acme").await;
    let (_, cards) = app.get("/api/integrations", &owner.token).await;
    assert_eq!(cards["items"][0]["backend"], "real");
    for path in ["simulate/scan", "simulate/unlink"] {
        let res = app
            .post(
                &format!("/api/integrations/whatsapp/{path}"),
                Some(&owner.token),
                json!({}),
            )
            .await;
        assert_error(res, StatusCode::NOT_FOUND, "not_found");
    }
    let incoming = app
        .incoming(&owner, json!({"from": "+6281234567890", "content": "x"}))
        .await;
    assert_error(incoming, StatusCode::NOT_FOUND, "not_found");

    let mut socket = Socket::connected(&app, &owner).await;
    app.toggle(&owner).await;
    assert!(
        app.session_folder(&owner).join("whatsapp.db").exists(),
        "the real store lives in sessions/<tenant-id>/"
    );
    // The client cannot reach WhatsApp: it says so and keeps trying.
    let failing = loop {
        let status = socket.next("whatsapp_status").await;
        if status["reason"].is_string() {
            break status;
        }
    };
    assert_eq!(failing["state"], "connecting", "still retrying: {failing}");
    // Asking again (here for a pairing code) answers with the reason the status gives.
    let (status, paired) = app
        .post(
            "/api/integrations/whatsapp/pair-code",
            Some(&owner.token),
            json!({"phoneNumber": "+6281234567890"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paired}");
    assert_eq!(paired["state"], "connecting");
    assert!(
        paired["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cannot reach WhatsApp")),
        "{paired}"
    );
    let (status, health) = app
        .request(reqwest::Method::GET, "/api/healthz", None, None)
        .await;
    assert_eq!((status, &health["status"]), (StatusCode::OK, &json!("ok")));
    let (_, queued) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+6281234567890", "content": "later"}),
        )
        .await;
    assert_eq!(queued["status"], "pending");

    // Turned off: it stops cleanly and keeps the store.
    let off = app.toggle(&owner).await;
    assert_eq!(off["state"], "disconnected");
    assert!(app.session_folder(&owner).join("whatsapp.db").exists());
}

#[tokio::test]
async fn a_send_whatsapp_refuses_fails_with_its_reason_and_does_not_hold_up_the_queue() {
    let app = spawn_app().await;
    let owner = app.register("Refusals").await;
    app.link(&owner).await;
    // The simulated WhatsApp refuses +999 numbers, as the real one refuses a number that has
    // no WhatsApp account.
    let (status, refused) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+999 1234 5678", "content": "anyone there?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refused}");
    assert!(refused.get("failureReason").is_none(), "pending: {refused}");
    let (status, sent) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+62 812 3456 7890", "content": "hello"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");

    let conversation = refused["conversationId"].as_str().unwrap();
    let page = app
        .wait_for(
            &format!("/api/conversations/{conversation}/messages"),
            &owner.token,
            |page| page["items"][0]["status"] == "failed",
        )
        .await;
    let reason = page["items"][0]["failureReason"].as_str().unwrap();
    assert!(reason.contains("not on WhatsApp"), "{reason}");
    let conversation = sent["conversationId"].as_str().unwrap();
    app.wait_for(
        &format!("/api/conversations/{conversation}/messages"),
        &owner.token,
        |page| page["items"][0]["status"] == "sent",
    )
    .await;
    let (_, events) = app.get("/api/events", &owner.token).await;
    let failed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_status" && e["message"]["status"] == "failed")
        .expect("a message_status event for the refusal");
    assert_eq!(failed["message"]["failureReason"], reason);
}

/// Everything logged in this test process, as the binary formats it (no colours).
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_real_session_that_cannot_connect_logs_one_warn_line_per_attempt() {
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    // The process's one subscriber, with the binary's default filter; whatsapp-rust logs
    // through `log`, which `try_init` bridges, as `main`'s `init` does.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(aezen::DEFAULT_LOG))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .expect("no other test installs a subscriber");

    let app =
        crate::helpers::spawn_app_with(|c| c.whatsapp = aezen::config::BackendKind::Real).await;
    let owner = app.register("Quiet Logs").await;
    app.toggle(&owner).await;
    let text = || String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let ours = |text: &str| {
        text.lines()
            .filter(|l| l.contains(&owner.tenant_id) && l.contains("retrying"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    app.wait_until(|| async { ours(&text()).len() >= 2 }).await;
    let text = text();
    for line in ours(&text) {
        assert!(
            line.contains(" WARN ") && line.contains("WhatsApp unreachable; retrying"),
            "{line}"
        );
        assert!(
            line.contains("cannot reach WhatsApp"),
            "the reason is on the line: {line}"
        );
    }
    assert!(
        !text.contains("whatsapp_rust::client::lifecycle"),
        "the crate's own retry lines are left out: {text}"
    );
    assert!(
        !text.contains("WhatsApp disconnected"),
        "one line per attempt: {text}"
    );
    app.toggle(&owner).await;
}
