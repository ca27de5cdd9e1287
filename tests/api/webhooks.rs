//! API keys and webhooks (docs/WEBHOOKS.md) over HTTP. Deliveries go to a local receiver run
//! by Node (`tests/js/webhook_receiver.mjs`), which verifies each signature with the
//! `standardwebhooks` npm package, an implementation independent of the server's. Those tests
//! need Node and `npm ci --prefix tests/js`, so they are `#[ignore]`d for a plain
//! `cargo test`; .ci/run runs them with `--include-ignored`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{
    Account, TestApp, assert_error, assert_error_naming, spawn_app, spawn_app_with,
};

const NEEDS_NODE: &str = "needs Node and `npm ci --prefix tests/js`";

/// The Node receiver: its base URL; killed when dropped.
struct Receiver {
    url: String,
    http: reqwest::Client,
    _child: Child,
}

impl Receiver {
    async fn start() -> Self {
        let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
        assert!(
            js_dir.join("node_modules/standardwebhooks").exists(),
            "tests/js/node_modules/standardwebhooks is missing: run `npm ci --prefix tests/js`"
        );
        let mut child = Command::new("node")
            .arg(js_dir.join("webhook_receiver.mjs"))
            .current_dir(&js_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("`node` runs (is Node.js installed?)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().expect("receiver's port");
        let port = line.strip_prefix("listening ").expect("listening <port>");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    fn hook(&self) -> String {
        format!("{}/hook", self.url)
    }

    async fn control(&self, path: &str, body: Value) {
        let status = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
    }

    async fn received(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_received", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `done` holds for what was received (20 s deadline).
    async fn wait(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received().await;
            if done(&got) {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                serde_json::to_string_pretty(&got).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The deliveries the receiver accepted (2xx), by seq.
fn accepted(received: &[Value]) -> Vec<&Value> {
    received.iter().filter(|r| r["answered"] == 200).collect()
}

fn seq(delivery: &Value) -> i64 {
    delivery["body"]["data"]["seq"].as_i64().expect("data.seq")
}

/// A server whose webhooks may reach the local receiver, retrying quickly.
async fn webhook_app() -> TestApp {
    spawn_app_with(|config| {
        config.webhook_allow_http = true;
        config.webhook_allow_hosts = vec!["127.0.0.1".to_owned()];
        config.webhook_first_retry_ms = 100;
    })
    .await
}

async fn create_webhook(
    app: &TestApp,
    owner: &Account,
    url: &str,
    events: Value,
) -> (String, String) {
    let (status, body) = app
        .post(
            "/api/webhooks",
            Some(&owner.token),
            json!({"url": url, "events": events, "description": "test receiver"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{body}");
    assert!(
        body["webhook"].get("secret").is_none(),
        "the secret is not in the webhook: {body}"
    );
    (body["webhook"]["id"].as_str().unwrap().to_owned(), secret)
}

async fn incoming(app: &TestApp, owner: &Account, n: usize, from: &str) {
    for i in 0..n {
        let (status, body) = app
            .incoming(
                owner,
                json!({"from": from, "content": format!("message {i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// The seqs of the tenant's team events that a `*` endpoint receives, from `/api/events`.
async fn deliverable_seqs(app: &TestApp, owner: &Account, after: i64) -> Vec<i64> {
    let (status, body) = app
        .get(
            &format!("/api/events?after={after}&limit=1000"),
            &owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] != "qr")
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
#[ignore = "needs Node and `npm ci --prefix tests/js`; .ci/run runs it with --include-ignored"]
async fn every_event_arrives_signed_in_order_through_failures_and_a_restart() {
    let _ = NEEDS_NODE;
    let receiver = Receiver::start().await;
    let app = webhook_app().await;
    let owner = app.register("Hook Co").await;
    let (id, secret) = create_webhook(&app, &owner, &receiver.hook(), json!(["*"])).await;
    receiver
        .control("/_secrets", json!({"secrets": [secret]}))
        .await;
    let (_, first) = app.get(&format!("/api/webhooks/{id}"), &owner.token).await;
    let start = first["cursor"].as_i64().unwrap();

    // The receiver refuses the first four attempts: the first event is retried, in order.
    receiver.control("/_mode", json!({"fail": 4})).await;
    incoming(&app, &owner, 5, "+6281300000001").await;
    let expected = deliverable_seqs(&app, &owner, start).await;
    assert!(expected.len() >= 5, "{expected:?}");
    receiver
        .wait("every event of the first batch", |got| {
            accepted(got).len() >= expected.len()
        })
        .await;

    // Refusing again, then a restart in the middle of the retries: nothing is lost.
    receiver
        .control(
            "/_mode",
            json!({"failUntil": chrono::Utc::now().timestamp_millis() + 1_500}),
        )
        .await;
    incoming(&app, &owner, 3, "+6281300000002").await;
    let before_restart = deliverable_seqs(&app, &owner, start).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let app = app.restart().await;
    // Nothing opens the tenant after the restart: its deliveries resume from the registry's
    // mark, with the events written before it.
    receiver
        .wait("the events from before the restart", |got| {
            let mut seqs: Vec<i64> = accepted(got).iter().map(|d| seq(d)).collect();
            seqs.dedup();
            seqs == before_restart
        })
        .await;
    incoming(&app, &owner, 2, "+6281300000003").await;
    let expected = deliverable_seqs(&app, &owner, start).await;
    let got = receiver
        .wait("every event, across the restart", |got| {
            let mut seqs: Vec<i64> = accepted(got).iter().map(|d| seq(d)).collect();
            seqs.dedup();
            seqs == expected
        })
        .await;

    // Each accepted event once in seq order (a repeat only with the same webhook-id), every
    // delivery verified by the independent implementation, its id stable per event.
    let mut last = 0;
    for delivery in &got {
        assert_eq!(delivery["verified"], json!([true]), "{delivery}");
        let s = seq(delivery);
        assert_eq!(
            delivery["webhookId"],
            format!("msg_{}_{s}", id.replace('-', "")),
            "{delivery}"
        );
        assert!(s >= last, "out of order: {s} after {last}");
        last = s;
        assert_eq!(delivery["body"]["type"], delivery["body"]["data"]["type"]);
        assert_eq!(delivery["body"]["tenantId"], json!(owner.tenant_id));
    }
    let refused = got.iter().filter(|d| d["answered"] != 200).count();
    assert!(refused >= 4, "the receiver refused some: {refused}");
    // Every attempt is in the delivery log, the failures with their status.
    let (status, log) = app
        .get(
            &format!("/api/webhooks/{id}/deliveries?limit=100"),
            &owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let items = log["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|d| d["statusCode"] == 500 && d["attempt"].as_i64() > Some(1))
    );
    assert!(items.iter().any(|d| d["statusCode"] == 200));
}

#[tokio::test]
#[ignore = "needs Node and `npm ci --prefix tests/js`; .ci/run runs it with --include-ignored"]
async fn replay_resends_a_range_and_a_rotated_secret_signs_beside_the_old_one() {
    let receiver = Receiver::start().await;
    let app = webhook_app().await;
    let owner = app.register("Replay Co").await;
    let (id, old) =
        create_webhook(&app, &owner, &receiver.hook(), json!(["incoming_message"])).await;
    receiver
        .control("/_secrets", json!({"secrets": [old]}))
        .await;
    incoming(&app, &owner, 3, "+6281300000011").await;
    let got = receiver
        .wait("three messages", |got| accepted(got).len() == 3)
        .await;
    assert!(got.iter().all(|d| d["body"]["type"] == "incoming_message"));
    let seqs: Vec<i64> = got.iter().map(seq).collect();

    // Replay the first two: the same ids again, in order.
    let (status, body) = app
        .post(
            &format!("/api/webhooks/{id}/replay"),
            Some(&owner.token),
            json!({"fromSeq": seqs[0], "toSeq": seqs[1]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let got = receiver
        .wait("the replay", |got| accepted(got).len() == 5)
        .await;
    assert_eq!(got[3]["webhookId"], got[0]["webhookId"]);
    assert_eq!(got[4]["webhookId"], got[1]["webhookId"]);
    let (_, log) = app
        .get(&format!("/api/webhooks/{id}/deliveries"), &owner.token)
        .await;
    assert_eq!(log["items"][0]["replay"], true, "{log}");

    // Rotate: during the overlap both secrets verify; without one, only the new.
    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        rotated["webhook"]["previousSecretExpiresAt"].is_string(),
        "{rotated}"
    );
    receiver
        .control("/_secrets", json!({"secrets": [new, old]}))
        .await;
    incoming(&app, &owner, 1, "+6281300000012").await;
    let got = receiver
        .wait("a message after rotating", |got| accepted(got).len() == 6)
        .await;
    assert_eq!(got[5]["verified"], json!([true, true]), "{}", got[5]);
    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            Some(&owner.token),
            json!({"overlapSeconds": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    receiver
        .control("/_secrets", json!({"secrets": [newest, new]}))
        .await;
    incoming(&app, &owner, 1, "+6281300000013").await;
    let got = receiver
        .wait("a message after the overlap", |got| {
            accepted(got).len() == 7
        })
        .await;
    assert_eq!(got[6]["verified"], json!([true, false]), "{}", got[6]);

    // The test event: sent at once, answered with its delivery.
    let (status, test) = app
        .post(
            &format!("/api/webhooks/{id}/test"),
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["statusCode"], 200, "{test}");
    assert_eq!(test["eventType"], "webhook.test");
    let got = receiver.wait("the test event", |got| got.len() == 8).await;
    assert_eq!(
        app.metric("aezen_webhook_deliveries_total{outcome=\"delivered\"}")
            .await,
        8
    );
    assert_eq!(
        app.metric("aezen_webhook_deliveries_total{outcome=\"failed\"}")
            .await,
        0
    );
    assert_eq!(got[7]["body"]["type"], "webhook.test");
    assert_eq!(got[7]["verified"], json!([true, false]));

    // A range outside the log is refused naming it.
    let answer = app
        .post(
            &format!("/api/webhooks/{id}/replay"),
            Some(&owner.token),
            json!({"fromSeq": 1_000_000}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "fromSeq",
    );
}

#[tokio::test]
#[ignore = "needs Node and `npm ci --prefix tests/js`; .ci/run runs it with --include-ignored"]
async fn an_endpoint_failing_past_its_retry_window_is_disabled_and_resumes_from_its_cursor() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        config.webhook_allow_http = true;
        config.webhook_allow_hosts = vec!["127.0.0.1".to_owned()];
        config.webhook_first_retry_ms = 50;
        // No retry window: the first failure disables the endpoint.
        config.webhook_retry_hours = 0;
    })
    .await;
    let owner = app.register("Disable Co").await;
    let (id, secret) = create_webhook(&app, &owner, &receiver.hook(), json!(["*"])).await;
    receiver
        .control("/_secrets", json!({"secrets": [secret]}))
        .await;
    receiver.control("/_mode", json!({"fail": 1})).await;
    incoming(&app, &owner, 2, "+6281300000021").await;
    let webhook = app
        .wait_for(&format!("/api/webhooks/{id}"), &owner.token, |w| {
            w["state"] == "disabled"
        })
        .await;
    assert!(
        webhook["disabledReason"].as_str().unwrap().contains("500"),
        "{webhook}"
    );
    let (status, webhook) = app
        .patch(
            &format!("/api/webhooks/{id}"),
            &owner.token,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{webhook}");
    assert_eq!(webhook["state"], "active");
    let expected = deliverable_seqs(&app, &owner, 0).await;
    receiver
        .wait("the events after re-enabling", |got| {
            let seqs: Vec<i64> = accepted(got).iter().map(|d| seq(d)).collect();
            seqs == expected
        })
        .await;
}

#[tokio::test]
async fn webhook_targets_must_be_https_and_not_internal_without_the_allow_list() {
    let app = spawn_app().await;
    let owner = app.register("Guard Co").await;
    let create = |url: &str, events: Value| {
        app.post(
            "/api/webhooks",
            Some(&owner.token),
            json!({"url": url, "events": events}),
        )
    };
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://10.0.0.5/hook",
        "https://localhost/hook",
    ] {
        let answer = create(url, json!(["*"])).await;
        assert_error_naming(
            answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "url",
        );
    }
    let answer = create("http://hooks.example.com/x", json!(["*"])).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "--webhook-allow-http",
    );
    let answer = create("/relative", json!(["*"])).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "absolute",
    );
    let answer = create("ftp://example.com/x", json!(["*"])).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "url",
    );
    let answer = create(
        "https://hooks.example.invalid/x",
        json!(["message_sent", "qr"]),
    )
    .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "events[1]",
    );
    // Nothing was half-written.
    let (_, list) = app.get("/api/webhooks", &owner.token).await;
    assert_eq!(list["items"], json!([]), "{list}");
    // An agent may not manage webhooks.
    let agent = app.add_member(&owner, "agent").await;
    let answer = app
        .post(
            "/api/webhooks",
            Some(&agent.token),
            json!({"url": "https://hooks.example.invalid/x", "events": ["*"]}),
        )
        .await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
}

/// An API key of `owner`'s tenant with these scopes.
async fn create_key(app: &TestApp, owner: &Account, scopes: Value) -> (String, String) {
    let (status, body) = app
        .post(
            "/api/api-keys",
            Some(&owner.token),
            json!({"name": "n8n", "scopes": scopes}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("aez_"), "{body}");
    assert_eq!(body["apiKey"]["prefix"], key[..12]);
    (body["apiKey"]["id"].as_str().unwrap().to_owned(), key)
}

#[tokio::test]
async fn an_api_key_reaches_only_its_scopes_of_its_own_tenant_until_revoked() {
    let app = spawn_app().await;
    let owner = app.register("Key Co").await;
    let other = app.register("Other Co").await;
    let (status, mine) = app
        .incoming(&owner, json!({"from": "+6281300000031", "content": "hi"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let (_, theirs) = app
        .incoming(
            &other,
            json!({"from": "+6281300000032", "content": "secret"}),
        )
        .await;
    let theirs = theirs["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = mine["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_id, key) = create_key(&app, &owner, json!(["conversations:read"])).await;

    // Its scope: the tenant's own conversations only.
    let (status, list) = app.get("/api/conversations", &key).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let (status, _) = app.get(&format!("/api/conversations/{theirs}"), &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&format!("/api/conversations/{mine}/messages"), &key)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Without the scope: 403 naming it; never keys or passwords.
    let answer = app
        .post(
            &format!("/api/conversations/{mine}/send"),
            Some(&key),
            json!({"content": "from a key"}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::FORBIDDEN,
        "missing_scope",
        "messages:send",
    );
    assert_error_naming(
        app.get("/api/team", &key).await,
        StatusCode::FORBIDDEN,
        "missing_scope",
        "team:read",
    );
    assert_error(
        app.get("/api/api-keys", &key).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let answer = app
        .post(
            "/api/auth/password",
            Some(&key),
            json!({"currentPassword": owner.password, "newPassword": "another-long-password"}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    // A key that can send: its message is authored by the key.
    let (_, sender) = create_key(&app, &owner, json!(["messages:send", "team:read"])).await;
    let (status, sent) = app
        .post(
            &format!("/api/conversations/{mine}/send"),
            Some(&sender),
            json!({"content": "from a key"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let (status, _) = app.get("/api/team", &sender).await;
    assert_eq!(status, StatusCode::OK);

    // Listed without the key itself; revoked: refused at once.
    let (_, keys) = app.get("/api/api-keys", &owner.token).await;
    let listed = &keys["items"][0];
    assert_eq!(listed["scopes"], json!(["conversations:read"]));
    assert!(listed["lastUsedAt"].is_string(), "{listed}");
    assert!(!keys.to_string().contains(&key), "{keys}");
    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/api-keys/{key_id}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/conversations", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Another tenant cannot revoke it; a made-up key is refused.
    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/api-keys/{key_id}"),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let forged = format!("{}{}", &sender[..12], "A".repeat(43));
    assert_error(
        app.get("/api/team", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn api_keys_refuse_bad_input_naming_it() {
    let app = spawn_app().await;
    let owner = app.register("Bad Key Co").await;
    let answer = app
        .post(
            "/api/api-keys",
            Some(&owner.token),
            json!({"name": "x", "scopes": ["conversations:read", "conversations:write"]}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "scopes[1]",
    );
    let answer = app
        .post(
            "/api/api-keys",
            Some(&owner.token),
            json!({"name": "x", "scopes": ["team:read"], "expiresAt": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "expiresAt",
    );
    let answer = app
        .post(
            "/api/api-keys",
            Some(&owner.token),
            json!({"name": " ", "scopes": ["team:read"]}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "name",
    );
    let agent = app.add_member(&owner, "agent").await;
    let answer = app
        .post(
            "/api/api-keys",
            Some(&agent.token),
            json!({"name": "x", "scopes": ["team:read"]}),
        )
        .await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
    let (_, keys) = app.get("/api/api-keys", &owner.token).await;
    assert_eq!(keys["items"], json!([]));
}

#[tokio::test]
async fn every_operation_says_which_scope_a_key_needs() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    let scope_of = |path: &str, method: &str| -> Option<String> {
        doc["paths"][path][method]["security"]
            .as_array()?
            .iter()
            .find_map(|r| r["apiKey"][0].as_str().map(str::to_owned))
    };
    assert_eq!(
        scope_of("/api/conversations", "get").as_deref(),
        Some("conversations:read")
    );
    assert_eq!(
        scope_of("/api/conversations/{id}/send", "post").as_deref(),
        Some("messages:send")
    );
    assert_eq!(
        scope_of("/api/webhooks", "post").as_deref(),
        Some("webhooks:manage")
    );
    assert_eq!(scope_of("/api/team", "get").as_deref(), Some("team:read"));
    assert_eq!(scope_of("/api/api-keys", "post"), None);
    assert_eq!(scope_of("/api/team", "post"), None);
    assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
}

#[tokio::test]
async fn whole_numbers_are_taken_as_json_schema_integers_and_out_of_range_ones_refused() {
    let app = spawn_app().await;
    let owner = app.register("Numbers Co").await;
    // `.invalid` never resolves: accepted (it may later), never delivered to.
    let (status, body) = app
        .post(
            "/api/webhooks",
            Some(&owner.token),
            json!({"url": "https://hooks.example.invalid/x", "events": ["mention"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["webhook"]["id"].as_str().unwrap();
    let rotate = format!("/api/webhooks/{id}/rotate-secret");
    let (status, body) = app
        .post(
            &rotate,
            Some(&owner.token),
            json!({"overlapSeconds": 3600.0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for bad in [json!(-1), json!(604_801), json!(1.5)] {
        let (status, body) = app
            .post(&rotate, Some(&owner.token), json!({"overlapSeconds": bad}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.to_string().contains("overlapSeconds"), "{body}");
    }
    let answer = app
        .post(
            &format!("/api/webhooks/{id}/replay"),
            Some(&owner.token),
            json!({"fromSeq": 1.5}),
        )
        .await;
    assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
    assert!(answer.1.to_string().contains("fromSeq"), "{}", answer.1);
}
