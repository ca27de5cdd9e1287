use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, assert_error_naming, spawn_app, spawn_app_with};

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn sign_up_returns_the_owner_tenant_and_a_working_token() {
    let app = spawn_app().await;
    let owner = app.register("Nike EU").await;
    let (status, me) = app.get("/api/auth/me", &owner.token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["email"], owner.email);
    assert_eq!(me["user"]["role"], "owner");
    assert_eq!(me["tenant"]["name"], "Nike EU");
    assert_eq!(me["tenant"]["id"], owner.tenant_id);
    assert!(me["user"].get("passwordHash").is_none() && me["user"].get("password_hash").is_none());
}

#[tokio::test]
async fn login_works_with_the_right_password_and_any_email_case() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let token = app
        .login(&owner.email.to_uppercase(), &owner.password)
        .await;
    let (status, me) = app.get("/api/auth/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["id"], owner.user_id);
}

#[tokio::test]
async fn login_with_a_wrong_password_or_unknown_email_is_rejected_alike() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let wrong = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": owner.email, "password": "not the password"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "whatever123"}),
        )
        .await;
    assert_eq!(
        wrong.1, unknown.1,
        "the answers must not tell which emails exist"
    );
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn malformed_login_bodies_get_a_4xx_naming_the_problem() {
    let app = spawn_app().await;
    let url = format!("{}/api/auth/login", app.address);
    let send = |body: &'static str| {
        app.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = send("{not json").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    let res = send(r#"{"email":"a@b.co"}"#).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{body}"
    );

    let res = send(r#"{"email":"a@b.co","password":42}"#).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{body}"
    );

    let res = app
        .client
        .post(&url)
        .body(r#"{"email":"a@b.co","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let invalid = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "not-an-email", "password": "password1"}),
        )
        .await;
    assert_error_naming(
        invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "email",
    );
}

#[tokio::test]
async fn sign_up_rejects_invalid_fields_and_writes_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"tenantName": "", "name": "A", "email": "a@b.co", "password": "password1"}),
            "tenantName",
        ),
        (
            json!({"tenantName": "T", "name": "  ", "email": "a@b.co", "password": "password1"}),
            "name",
        ),
        (
            json!({"tenantName": "T", "name": "A", "email": "a@", "password": "password1"}),
            "email",
        ),
        (
            json!({"tenantName": "T", "name": "A", "email": "a@b.co", "password": "short"}),
            "password",
        ),
        (
            json!({"tenantName": "T", "name": "A", "email": "a@b.co", "password": "x".repeat(300)}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/api/auth/register", None, body).await;
        assert_error_naming(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            field,
        );
    }
    assert!(
        app.tenant_files().is_empty(),
        "a refused sign-up must not create a file"
    );
}

#[tokio::test]
async fn a_duplicate_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    let owner = app.register("First").await;
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"tenantName": "Second", "name": "B", "email": owner.email.to_uppercase(), "password": "password12"}),
        )
        .await;
    assert_error(res, StatusCode::CONFLICT, "email_taken");
    assert_eq!(
        app.tenant_files().len(),
        1,
        "the refused sign-up left a file or registry row"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let res = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "a@b.co", "password": "p".repeat(4096)}),
        )
        .await;
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_are_unauthorized() {
    let app = spawn_app().await;
    let missing = app
        .request(reqwest::Method::GET, "/api/auth/me", None, None)
        .await;
    assert_error(missing, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        app.get("/api/auth/me", "garbage").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_rejected() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let forged = sign(
        &claims_of(&owner.token),
        b"some-other-secret-that-is-32-bytes-long!",
    );
    assert_error(
        app.get("/api/auth/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn a_token_with_alg_none_is_rejected() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims_of(&owner.token).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_error(
            app.get("/api/auth/me", &token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let secret = std::fs::read(app.config.data_dir.join("jwt_secret")).unwrap();
    let mut claims = claims_of(&owner.token);
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 5);
    let expired = sign(&claims, &secret);
    assert_error(
        app.get("/api/auth/me", &expired).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // The same claims with a future expiry are accepted: the secret and the claims are right.
    claims["exp"] = json!(now + 600);
    assert_eq!(
        app.get("/api/auth/me", &sign(&claims, &secret)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_with_a_tampered_tenant_id_is_rejected() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;

    // Payload edited without re-signing: the signature no longer matches.
    let mut parts: Vec<String> = a.token.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&a.token);
    claims["tid"] = json!(b.tenant_id);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_error(
        app.get("/api/auth/me", &parts.join(".")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Even correctly signed (a leaked secret), a user is never accepted in another tenant.
    let secret = std::fs::read(app.config.data_dir.join("jwt_secret")).unwrap();
    let resigned = sign(&claims, &secret);
    assert_error(
        app.get("/api/team", &resigned).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn tokens_stop_working_after_a_password_change() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let other_session = app.login(&owner.email, &owner.password).await;

    let wrong = app
        .post(
            "/api/auth/password",
            Some(&owner.token),
            json!({"currentPassword": "not it at all", "newPassword": "brand new password"}),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "wrong_password");
    let short = app
        .post(
            "/api/auth/password",
            Some(&owner.token),
            json!({"currentPassword": owner.password, "newPassword": "short"}),
        )
        .await;
    assert_error(short, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        app.get("/api/auth/me", &owner.token).await.0,
        StatusCode::OK,
        "a refused change revokes nothing"
    );

    let (status, body) = app
        .post(
            "/api/auth/password",
            Some(&owner.token),
            json!({"currentPassword": owner.password, "newPassword": "brand new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap();

    for old in [&owner.token, &other_session] {
        assert_error(
            app.get("/api/auth/me", old).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    assert_eq!(app.get("/api/auth/me", fresh).await.0, StatusCode::OK);
    let old_password = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": owner.email, "password": owner.password}),
        )
        .await;
    assert_error(
        old_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    app.login(&owner.email, "brand new password").await;
}

#[tokio::test]
async fn a_removed_users_token_stops_working() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    assert_eq!(
        app.get("/api/auth/me", &agent.token).await.0,
        StatusCode::OK
    );

    let (status, _) = app
        .delete(&format!("/api/team/{}", agent.user_id), &owner.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        app.get("/api/auth/me", &agent.token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": agent.email, "password": agent.password}),
        )
        .await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_account() {
    let app = spawn_app_with(|c| c.login_per_account_per_minute = 3).await;
    let owner = app.register("Acme").await;
    let attempt = || {
        app.post(
            "/api/auth/login",
            None,
            json!({"email": owner.email, "password": "wrong password"}),
        )
    };
    for _ in 0..3 {
        assert_eq!(attempt().await.0, StatusCode::UNAUTHORIZED);
    }
    let url = format!("{}/api/auth/login", app.address);
    let res = app
        .client
        .post(&url)
        .json(&json!({"email": owner.email, "password": owner.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_retry_after_within_a_minute(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another account from the same client is not affected by this account's limit.
    let other = app.register("Other").await;
    app.login(&other.email, &other.password).await;
    assert_eq!(app.metric("aezen_auth_rate_limited_total").await, 1);
}

#[tokio::test]
async fn login_and_sign_up_attempts_are_rate_limited_per_client() {
    let app = spawn_app_with(|c| c.login_per_ip_per_minute = 4).await;
    let owner = app.register("Acme").await; // 1
    for _ in 0..3 {
        app.login(&owner.email, &owner.password).await; // 2..4
    }
    let res = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({"email": "someone-else@example.com", "password": "password1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_retry_after_within_a_minute(&res);
    let res = app
        .post(
            "/api/auth/register",
            None,
            json!({"tenantName": "T", "name": "A", "email": "new@example.com", "password": "password1"}),
        )
        .await;
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(app.tenant_files().len(), 1);
}

#[tokio::test]
async fn the_generated_secret_is_private_and_survives_a_restart() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let path = app.config.data_dir.join("jwt_secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let app = app.restart().await;
    assert_eq!(
        app.get("/api/auth/me", &owner.token).await.0,
        StatusCode::OK
    );
}

/// A 429's `Retry-After` is a whole number of seconds, 1 to 60.
fn assert_retry_after_within_a_minute(res: &reqwest::Response) {
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
}
