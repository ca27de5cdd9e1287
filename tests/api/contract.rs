use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, assert_error, assert_error_naming, raw, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app
        .request(reqwest::Method::GET, "/api/healthz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_routes_answer_a_json_404() {
    let app = spawn_app().await;
    let res = app
        .request(reqwest::Method::GET, "/api/nothing-here", None, None)
        .await;
    assert_error_naming(res, StatusCode::NOT_FOUND, "not_found", "/api/nothing-here");
}

#[tokio::test]
async fn a_wrong_method_answers_a_json_405() {
    let app = spawn_app().await;
    let res = app
        .request(reqwest::Method::GET, "/api/auth/login", None, None)
        .await;
    assert_error_naming(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "GET is not allowed on /api/auth/login",
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_with_its_schemas() {
    let app = spawn_app().await;
    let (status, doc) = app
        .request(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/password", "post"),
        ("/api/team", "get"),
        ("/api/team", "post"),
        ("/api/team/{id}", "patch"),
        ("/api/team/{id}", "delete"),
        ("/api/tenant", "get"),
        ("/api/conversations", "get"),
        ("/api/conversations", "post"),
        ("/api/conversations/{id}", "get"),
        ("/api/conversations/{id}/messages", "get"),
        ("/api/conversations/{id}/send", "post"),
        ("/api/conversations/{id}/read", "post"),
        ("/api/integrations", "get"),
        ("/api/integrations/whatsapp/status", "get"),
        ("/api/integrations/whatsapp/toggle", "post"),
        ("/api/integrations/whatsapp/qr.svg", "get"),
        ("/api/integrations/whatsapp/pair-code", "post"),
        ("/api/integrations/whatsapp/logout", "post"),
        ("/api/integrations/whatsapp/send", "post"),
        ("/api/integrations/whatsapp/simulate/incoming", "post"),
        ("/api/integrations/whatsapp/simulate/receipt", "post"),
        ("/api/integrations/whatsapp/simulate/scan", "post"),
        ("/api/integrations/whatsapp/simulate/unlink", "post"),
        ("/api/events", "get"),
        ("/api/healthz", "get"),
        ("/api/metrics", "get"),
        ("/api/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ErrorBody",
        "User",
        "Tenant",
        "RegisterRequest",
        "LoginResponse",
        "Role",
        "Conversation",
        "Message",
        "Event",
        "WhatsappStatus",
        "SessionState",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{what} has no success response"
            );
            // Every error answers the one error body.
            for (status, response) in responses {
                if status.as_str() >= "400" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {status}"
                    );
                }
            }
            let mut expected = vec!["500"];
            if operation["requestBody"].is_object() {
                expected.extend(["400", "408", "413", "415", "422"]);
            }
            if path.starts_with("/api/conversations") || path == "/api/events" {
                expected.push("503");
            }
            if operation["security"].is_array() {
                expected.push("401");
            }
            if operation["parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
            {
                expected.push("400");
            }
            for status in expected {
                assert!(responses.contains_key(status), "{what} lacks {status}");
            }
        }
    }
    // Every schema a document refers to is in it.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas[name].is_object(),
            "{name} is referred to but missing"
        );
    }
    assert_eq!(
        doc["paths"]["/api/auth/register"]["post"]["responses"]["409"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // An event is one of its types, told apart by `type`, each with only its own fields.
    let event = &schemas["Event"];
    assert_eq!(event["discriminator"]["propertyName"], "type");
    let mapping = event["discriminator"]["mapping"].as_object().unwrap();
    assert_eq!(mapping.len(), 9, "{mapping:?}");
    let mention = &schemas["MentionEvent"];
    for field in ["notification", "message", "conversation"] {
        assert!(
            mention["required"]
                .as_array()
                .unwrap()
                .contains(&field.into()),
            "{mention}"
        );
    }
    let qr = &schemas["QrEvent"]["allOf"];
    assert_eq!(
        qr[0]["properties"]["type"]["enum"],
        serde_json::json!(["qr"])
    );
    assert_eq!(qr[1]["$ref"], "#/components/schemas/QrPayload");
    let status = &schemas["MessageStatusEvent"];
    assert_eq!(
        status["required"],
        serde_json::json!(["seq", "type", "createdAt", "message"])
    );
    // /api/metrics is documented as what it answers.
    let metrics = &doc["paths"]["/api/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        metrics
            .as_object()
            .unwrap()
            .keys()
            .all(|t| t.starts_with("application/openmetrics-text")),
        "{metrics}"
    );
    // Limits are in the schemas, not only in prose.
    let register = &schemas["RegisterRequest"]["properties"];
    assert_eq!(register["email"]["format"], "email");
    assert_eq!(register["password"]["minLength"], 8);
    assert_eq!(register["password"]["maxLength"], 256);
    assert_eq!(register["name"]["maxLength"], 100);
    assert_eq!(
        schemas["SendRequest"]["properties"]["content"]["maxLength"],
        4096
    );
}

#[tokio::test]
async fn the_server_binary_runs_with_its_allocator_configured() {
    let root = tempfile::tempdir().unwrap();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_aezen"))
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .arg("--sessions-dir")
        .arg(root.path().join("sessions"))
        .args(["--listen", "127.0.0.1:0"])
        .env("AEZEN_WHATSAPP", "simulated")
        .env_remove(aezen::MALLOC_CONF_VAR)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let wanted = format!("{}={}", aezen::MALLOC_CONF_VAR, aezen::MALLOC_CONF);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The same process (pid) re-executes itself with the variable set.
    let environ = loop {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ).into_owned();
        if environ.split('\0').any(|var| var == wanted) || std::time::Instant::now() > deadline {
            break environ;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    server.kill().await.unwrap();
    assert!(
        environ.split('\0').any(|var| var == wanted),
        "{wanted} not in the server's environment: {environ:?}"
    );
}

/// Sends `body` as JSON text (not necessarily an object) and returns status and JSON answer.
async fn post_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    token: Option<&str>,
    body: &'static str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    (status, res.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn a_json_body_must_be_an_object_not_an_array_of_its_fields() {
    let app = spawn_app().await;
    let sign_up = post_raw(
        &app,
        "/api/auth/register",
        None,
        r#" ["Tenant","Name","array@example.com","password123"]"#,
    )
    .await;
    assert_error_naming(
        sign_up,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        "the body must be a JSON object",
    );
    let owner = app.register("Acme").await;
    let (_, team) = app.get("/api/team", &owner.token).await;
    assert_eq!(team["items"].as_array().map(Vec::len), Some(1), "{team}");

    for body in [
        r#"["a@b.test","password123"]"#,
        r#""a@b.test""#,
        "12",
        "null",
    ] {
        let login = post_raw(&app, "/api/auth/login", None, body).await;
        assert_error(login, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    let add = post_raw(
        &app,
        "/api/team",
        Some(&owner.token),
        r#"["X","x@example.com","password123","agent"]"#,
    )
    .await;
    assert_error(add, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Text that is not JSON at all is still a syntax error.
    let garbage = post_raw(&app, "/api/auth/login", None, "nonsense").await;
    assert_error(garbage, StatusCode::BAD_REQUEST, "malformed_json");
}

#[tokio::test]
async fn body_errors_name_the_field_but_no_rust_type() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let cases: [(&str, &str, &str); 5] = [
        // serde said "expected struct LoginRequest with 2 elements".
        ("/api/auth/login", r#"["a@b.test"]"#, "JSON object"),
        ("/api/auth/login", r#"{"email":"a@b.test"}"#, "password"),
        (
            "/api/auth/login",
            r#"{"email":["a"],"password":"x"}"#,
            "email",
        ),
        (
            "/api/team",
            r#"{"name":"X","email":"x@example.com","password":"password123","role":{"owner":[1]}}"#,
            "role",
        ),
        (
            "/api/conversations",
            r#"{"contactNumber":{}}"#,
            "contactNumber",
        ),
    ];
    for (path, body, field) in cases {
        let res = post_raw(&app, path, Some(&owner.token), body).await;
        let message = res.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for word in [
            "struct ",
            "enum ",
            "Request",
            "Role",
            "CreateMember",
            "CreateConversation",
        ] {
            assert!(
                !message.contains(word),
                "{path} {body}: {message:?} names a Rust type"
            );
        }
        assert_error_naming(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", field);
    }
}

#[tokio::test]
async fn a_body_declared_over_the_limit_is_refused_before_it_arrives() {
    let app = spawn_app().await;
    for (method, path) in [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/register"),
        ("GET", "/api/healthz"),
        ("PUT", "/api/nothing-here"),
    ] {
        let mut stream = raw::connect(&app).await;
        // A gigabyte declared, two bytes sent, and the client then waits.
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: aezen.test\r\nContent-Type: application/json\r\n\
             Content-Length: 1000000000\r\n\r\n{{\""
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let (status, body) = raw::read_response(&mut stream, Duration::from_secs(2)).await;
        assert_eq!(status, 413, "{method} {path}: {body}");
        let body: Value = serde_json::from_str(&body).expect("a JSON error");
        assert_error_naming(
            (StatusCode::PAYLOAD_TOO_LARGE, body),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &app.config.max_body_bytes.to_string(),
        );
    }
}

#[tokio::test]
async fn a_half_sent_request_cannot_hold_the_shutdown_past_its_grace_period() {
    let app = spawn_app_with(|c| c.shutdown_grace_secs = 1).await;
    let owner = app.register("Acme").await;
    // One client stops half-way through its headers, another half-way through its body.
    let mut half_headers = raw::connect(&app).await;
    half_headers
        .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: aez")
        .await
        .unwrap();
    let mut half_body = raw::connect(&app).await;
    half_body
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: aezen.test\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    // Answered after both were accepted: the server has them in hand.
    let (status, _) = app.get("/api/auth/me", &owner.token).await;
    assert_eq!(status, StatusCode::OK);

    let started = std::time::Instant::now();
    let (root, config) = tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the server stopped within 5 s despite the half-sent requests");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "stopped before its grace period: {:?}",
        started.elapsed()
    );

    // What it held is closed: a server on the same folders has the tenant.
    let app = TestApp::start_on(root, config).await;
    let token = app.login(&owner.email, &owner.password).await;
    let (status, _) = app.get("/api/team", &token).await;
    assert_eq!(status, StatusCode::OK);
    drop((half_headers, half_body));
}
