//! The web inbox as the server serves it: the embedded `web/dist`, its headers, the
//! client-side-routing fallback, and the browser tests (`web/e2e`, headless Chromium).

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};

use crate::helpers::{assert_error_naming, spawn_app};

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The script the built `index.html` loads (`/assets/index-<hash>.js`).
fn script_of(index: &str) -> String {
    let at = index
        .find("src=\"/assets/")
        .expect("index.html loads a hashed script");
    let rest = &index[at + 5..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_inbox_is_served_at_the_root_with_a_strict_policy_and_no_cache() {
    let app = spawn_app().await;
    let res = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(header(&res, CACHE_CONTROL), "no-cache");
    let csp = header(&res, CONTENT_SECURITY_POLICY).to_owned();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(
        header(&res, "x-content-type-options".parse().unwrap()),
        "nosniff"
    );
    let index = res.text().await.unwrap();
    assert!(!index.contains("<script>"), "no inline script: {index}");

    let script = script_of(&index);
    let res = app
        .client
        .get(format!("{}{script}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, CONTENT_TYPE).contains("javascript"));
    assert!(header(&res, CACHE_CONTROL).contains("immutable"));
}

#[tokio::test]
async fn client_routes_get_the_inbox_and_the_api_keeps_its_json_errors() {
    let app = spawn_app().await;
    let root = app.client.get(&app.address).send().await.unwrap();
    let index = root.text().await.unwrap();
    let res = app
        .client
        .get(format!("{}/inbox/some-conversation", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), index);

    let res = app
        .client
        .get(format!("{}/assets/missing-0000.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "a missing asset is not the inbox"
    );

    let res = app
        .request(reqwest::Method::GET, "/api/nothing-here", None, None)
        .await;
    assert_error_naming(res, StatusCode::NOT_FOUND, "not_found", "/api/nothing-here");
    let res = app
        .request(reqwest::Method::POST, "/inbox", None, None)
        .await;
    assert_error_naming(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "POST",
    );
}

/// The browser tests: `web/e2e/*.test.mjs` under Node's test runner, each starting this
/// build's `aezen` binary on a temp dir (simulated WhatsApp) and driving Debian's Chromium
/// with playwright-core.
#[test]
#[ignore = "needs Node, Chromium and `npm ci --prefix web`; .ci/run runs it with --ignored"]
fn the_browser_tests_pass_in_headless_chromium() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "web/node_modules is missing: run `npm ci --prefix web` first"
    );
    let status = std::process::Command::new("npm")
        .args(["test", "--prefix"])
        .arg(&web)
        .env("AEZEN_BIN", env!("CARGO_BIN_EXE_aezen"))
        .status()
        .expect("npm runs");
    assert!(status.success(), "the browser tests failed (output above)");
}
