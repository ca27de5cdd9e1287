//! Security headers on every response, and CORS: off unless origins are configured.

use reqwest::StatusCode;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_SECURITY_POLICY, HeaderMap, ORIGIN, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

use crate::helpers::{spawn_app, spawn_app_with};

fn assert_hardened(headers: &HeaderMap, what: &str) {
    assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(headers[X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(headers[REFERRER_POLICY], "no-referrer", "{what}");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/api/healthz",
        "/api/nothing-here",
        "/api/auth/me",
        "/",
        "/inbox",
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_hardened(res.headers(), path);
    }
    // The API's own policy allows nothing; the inbox's allows its own origin.
    let res = app
        .client
        .get(format!("{}/api/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_the_configured_origins() {
    let preflight = |app: &crate::helpers::TestApp, origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/auth/me", app.address),
            )
            .header(ORIGIN, origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let app = spawn_app().await;
    let res = preflight(&app, "https://crm.example.com").await.unwrap();
    assert!(
        res.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "CORS is off"
    );

    let app =
        spawn_app_with(|c| c.cors_allow_origins = vec!["https://crm.example.com".into()]).await;
    let res = preflight(&app, "https://crm.example.com").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://crm.example.com"
    );
    let res = preflight(&app, "https://evil.example.net").await.unwrap();
    assert!(
        res.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "another origin"
    );
}
