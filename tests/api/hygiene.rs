//! Input hygiene: one rule for text fields (trimmed, no control characters, something
//! visible), search terms that cannot be cut short, and the bearer scheme in any case.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error_naming, spawn_app};

/// Names made only of a NUL, a byte-order mark or a bidi override, or holding a line break.
const INVISIBLE_OR_CONTROL: [&str; 5] = [
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "\u{200b} \u{200d}",
    "Ana\nBob",
];

#[tokio::test]
async fn names_of_tenants_users_and_contacts_must_show_something() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene").await;
    for bad in INVISIBLE_OR_CONTROL {
        let res = app
            .post(
                "/api/auth/register",
                None,
                json!({"tenantName": bad, "name": "Ana", "email": "a@hygiene.test", "password": "password123"}),
            )
            .await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "tenantName",
        );
        let res = app
            .post(
                "/api/team",
                Some(&owner.token),
                json!({"name": bad, "email": "b@hygiene.test", "password": "password123", "role": "agent"}),
            )
            .await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "name",
        );
        let res = app
            .post(
                "/api/conversations",
                Some(&owner.token),
                json!({"contactNumber": "+6281234567890", "contactName": bad}),
            )
            .await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "contactName",
        );
    }
    // Visible text with an emoji's zero-width joiner is a name.
    let (status, body) = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            json!({"contactNumber": "+6281234567890", "contactName": " 👩\u{200d}💻 Dev "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["contactName"], "👩\u{200d}💻 Dev");
}

#[tokio::test]
async fn content_with_control_characters_is_not_queued_for_whatsapp() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene Content").await;
    for bad in ["\u{0}", "\u{feff}", "hi\u{1b}[2J"] {
        let res = app
            .post(
                "/api/integrations/whatsapp/send",
                Some(&owner.token),
                json!({"to": "+6281234567890", "content": bad}),
            )
            .await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "content",
        );
    }
    let (_, page) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "nothing half-written"
    );
    let (status, body) = app
        .post(
            "/api/integrations/whatsapp/send",
            Some(&owner.token),
            json!({"to": "+6281234567890", "content": "line one\nline two\ttabbed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_search_term_with_a_nul_is_refused_instead_of_cut_short() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene Search").await;
    app.incoming(
        &owner,
        json!({"from": "+6281234567890", "pushName": "Bob", "content": "hi"}),
    )
    .await;
    let res = app
        .get("/api/conversations?q=Bob%00zzz", &owner.token)
        .await;
    assert_error_naming(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "q",
    );
    let (status, page) = app.get("/api/conversations?q=Bob", &owner.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene Bearer").await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let res = app
            .client
            .get(format!("{}/api/auth/me", app.address))
            .header("Authorization", format!("{scheme} {}", owner.token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{scheme}");
    }
    let res = app
        .client
        .get(format!("{}/api/auth/me", app.address))
        .header("Authorization", format!("Basic {}", owner.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_page_size_outside_its_range_is_one_error_whichever_side_it_misses() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene Limits").await;
    for path in [
        "/api/conversations?limit=-1",
        "/api/conversations?limit=0",
        "/api/conversations?limit=201",
        "/api/events?limit=-1",
        "/api/events?limit=1001",
    ] {
        let res = app.get(path, &owner.token).await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "limit",
        );
    }
    let res = app.get("/api/conversations?limit=many", &owner.token).await;
    assert_error_naming(res, StatusCode::BAD_REQUEST, "invalid_query", "limit");
}

#[tokio::test]
async fn an_error_names_a_huge_input_without_echoing_it_in_full() {
    let app = spawn_app().await;
    let owner = app.register("Hygiene Echo").await;
    let huge = "x".repeat(10_000);
    for path in [
        format!("/api/conversations/{huge}"),
        format!("/api/nothing/{huge}"),
        format!("/api/conversations?unread={huge}"),
    ] {
        let (status, body) = app.get(&path, &owner.token).await;
        assert!(status.is_client_error(), "{status}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.chars().count() < 400,
            "echoed {} characters",
            message.len()
        );
    }
}
