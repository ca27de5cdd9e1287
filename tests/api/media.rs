//! Media (docs/MEDIA.md): incoming items fetched after their message is stored, served to
//! their tenant only (signed links for the browser, ETag, Range), stored once per content,
//! sent through the outbox, refused whole when bad, and carried inside the tenant's file.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Account, TestApp, assert_error_naming, spawn_app, spawn_app_with};
use crate::ops::{aezen, path_str};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
/// The first page of an Ogg Opus stream.
const OPUS: &[u8] = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
/// Stands in for WhatsApp's JPEG preview (served as sent).
const THUMB: &[u8] = b"\xff\xd8\xff\xe0 a small jpeg preview \xff\xd9";

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A simulated incoming photo; returns the stored message.
async fn incoming_photo(app: &TestApp, account: &Account, id: &str, extra: Value) -> Value {
    let mut body = json!({
        "from": "+6281200000101", "pushName": "Ana", "id": id, "content": "the menu",
        "type": "image", "media": b64(PNG), "thumbnail": b64(THUMB), "width": 1, "height": 1,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, stored) = app.incoming(account, body).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    stored["message"].clone()
}

/// The message `id` of the conversation, once its media is `status`.
async fn media_when(app: &TestApp, account: &Account, message: &Value, status: &str) -> Value {
    let path = format!(
        "/api/conversations/{}/messages",
        message["conversationId"].as_str().unwrap()
    );
    let id = message["id"].clone();
    let page = app
        .wait_for(&path, &account.token, |page| {
            page["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|m| m["id"] == id && m["media"]["status"] == status)
            })
        })
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()["media"]
        .clone()
}

/// GET without any Authorization header (as `<img src>` does).
async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("request sent")
}

fn query_param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {url}"))
        .to_owned()
}

/// Stops the server, runs `f` on the account's tenant file, and starts the server again on
/// the same data (tokens stay valid). The server holds its files exclusively while it runs.
async fn with_file<T>(
    app: TestApp,
    account: &Account,
    f: impl FnOnce(&rusqlite::Connection) -> T,
) -> (T, TestApp) {
    let files = app.tenant_files();
    let (root, config) = app.stop().await;
    let conn = files
        .into_iter()
        .map(|path| rusqlite::Connection::open(path).expect("tenant file opens"))
        .find(|conn| {
            conn.query_row(
                "SELECT value FROM tenant_meta WHERE key = 'tenant_id'",
                [],
                |row| row.get::<_, String>(0),
            )
            .is_ok_and(|id| id == account.tenant_id)
        })
        .expect("the account's tenant file");
    let out = f(&conn);
    drop(conn);
    (out, TestApp::start_on(root, config).await)
}

fn count(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_photo_is_fetched_listed_and_served_to_its_tenant_only() {
    let app = spawn_app().await;
    let owner = app.register("Photos").await;
    let other = app.register("Elsewhere").await;
    let message = incoming_photo(&app, &owner, "PHOTO-1", json!({})).await;
    assert_eq!(message["type"], "image");
    assert_eq!(message["content"], "the menu");
    let media = media_when(&app, &owner, &message, "ready").await;
    assert_eq!(media["kind"], "image");
    assert_eq!(media["mimeType"], "image/png");
    assert_eq!(media["size"], PNG.len());
    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(list["items"][0]["lastMessage"], "the menu", "{list}");

    // The signed link needs no token and gives the same bytes and type.
    let url = media["url"].as_str().unwrap();
    let res = fetch(&app, url, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(
        res.headers()["content-length"],
        PNG.len().to_string().as_str()
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    let thumb = fetch(&app, media["thumbnailUrl"].as_str().unwrap(), &[]).await;
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(thumb.bytes().await.unwrap().as_ref(), THUMB);

    // The member's bearer token works on the plain path; the ETag answers 304.
    let id = media["id"].as_str().unwrap();
    let plain = format!("/api/media/{id}");
    let bearer = format!("Bearer {}", owner.token);
    let res = fetch(
        &app,
        &plain,
        &[("authorization", &bearer), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // A range is the exact slice.
    let res = fetch(&app, url, &[("range", "bytes=2-9")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 2-9/{}", PNG.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &PNG[2..=9]);
    let res = fetch(&app, url, &[("range", "bytes=5000-")]).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let res = fetch(&app, &plain, &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The other tenant: not there for its members, nor for links to it in its own name.
    assert_eq!(app.get(&plain, &other.token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{plain}/links"), &other.token).await.0,
        StatusCode::NOT_FOUND
    );
    let theirs = url.replace(&owner.tenant_id, &other.tenant_id);
    assert_eq!(
        fetch(&app, &theirs, &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let tampered = url.replace(&query_param(url, "expires"), "4102444800");
    assert_eq!(
        fetch(&app, &tampered, &[]).await.status(),
        StatusCode::FORBIDDEN
    );

    // Links signed as the server signs them, with each tenant file's own key: one whose time
    // has passed is refused though its signature is right; the other tenant's valid link to
    // this item's id opens its own file, where there is no such item.
    let link_key = |conn: &rusqlite::Connection| {
        conn.query_row(
            "SELECT value FROM tenant_meta WHERE key = 'media_link_key'",
            [],
            |row| row.get::<_, String>(0),
        )
        .unwrap()
    };
    let (key, app) = with_file(app, &owner, link_key).await;
    let (other_key, app) = with_file(app, &other, link_key).await;
    let sign = |key: &str, tenant: &str, expires: i64| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(key).unwrap()).unwrap();
        mac.update(format!("{tenant}/{id}/original/{expires}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{plain}?tenant={tenant}&expires={expires}&signature={signature}")
    };
    let now = chrono::Utc::now().timestamp();
    let res = fetch(&app, &sign(&key, &owner.tenant_id, now - 60), &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("expired"));
    let res = fetch(&app, &sign(&key, &owner.tenant_id, now + 600), &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the same signing, in time, opens it"
    );
    let res = fetch(&app, &sign(&other_key, &other.tenant_id, now + 600), &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Fresh links for a page whose links expired.
    let (status, fresh) = app.get(&format!("{plain}/links"), &owner.token).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        fetch(&app, fresh["url"].as_str().unwrap(), &[])
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_are_stored_once_and_a_redelivery_stores_nothing() {
    let app = spawn_app().await;
    let owner = app.register("Once").await;
    let first = incoming_photo(&app, &owner, "SAME-1", json!({})).await;
    let second = incoming_photo(&app, &owner, "SAME-2", json!({"content": ""})).await;
    media_when(&app, &owner, &first, "ready").await;
    media_when(&app, &owner, &second, "ready").await;
    let (status, again) = app
        .incoming(
            &owner,
            json!({"from": "+6281200000101", "id": "SAME-1", "content": "", "type": "image", "media": b64(PNG)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["stored"], false);
    let ((items, blobs), app) = with_file(app, &owner, |conn| {
        (count(conn, "media"), count(conn, "media_blob"))
    })
    .await;
    assert_eq!(items, 2);
    assert_eq!(blobs, 1, "identical bytes are stored once");
    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(
        list["items"][0]["lastMessage"], "Photo",
        "no caption: the kind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_is_retried_an_expired_copy_is_uploaded_again_and_an_oversize_one_kept_as_unavailable()
 {
    let app = spawn_app_with(|config| {
        config.media_first_retry_ms = 200;
        config.media_max_bytes = 4096;
    })
    .await;
    let owner = app.register("Flaky").await;
    let mut socket = crate::helpers::socket::Socket::connected(&app, &owner).await;
    let flaky = incoming_photo(&app, &owner, "FLAKY", json!({"failDownloads": 1})).await;
    let update = socket.next("media_updated").await;
    assert_eq!(update["message"]["id"], flaky["id"]);
    assert_eq!(update["message"]["media"]["status"], "failed", "{update}");
    assert!(
        update["message"]["media"]["reason"]
            .as_str()
            .unwrap()
            .contains("cut off")
    );
    let ready = socket.next("media_updated").await;
    assert_eq!(ready["message"]["media"]["status"], "ready", "{ready}");

    let expired = incoming_photo(&app, &owner, "EXPIRED", json!({"expired": true})).await;
    let media = media_when(&app, &owner, &expired, "ready").await;
    let res = fetch(&app, media["url"].as_str().unwrap(), &[]).await;
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);

    // Declared over the cap: kept with its metadata and the reason, never fetched.
    let (status, big) = app
        .incoming(
            &owner,
            json!({"from": "+6281200000101", "id": "BIG", "content": "", "type": "video",
                   "media": b64(PDF), "mimeType": "video/mp4", "declaredSize": 10_000_000, "durationMs": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{big}");
    let media = &big["message"]["media"];
    assert_eq!(media["status"], "unavailable", "{big}");
    assert!(media["reason"].as_str().unwrap().contains("limit"), "{big}");
    assert_eq!(media["durationMs"], 5000);
    let res = fetch(&app, media["url"].as_str().unwrap(), &[]).await;
    assert_eq!(res.status(), StatusCode::GONE);
}

async fn send_media(
    app: &TestApp,
    account: &Account,
    conversation: &str,
    form: Form,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!(
            "{}/api/conversations/{conversation}/send-media",
            app.address
        ))
        .bearer_auth(&account.token)
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn file(bytes: &[u8], name: &str, mime: &str) -> Part {
    Part::bytes(bytes.to_vec())
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap()
}

async fn conversation_of(app: &TestApp, owner: &Account) -> String {
    let (status, body) = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            json!({"contactNumber": "+6281200000202"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_and_an_image_are_sent_through_the_outbox() {
    let app = spawn_app().await;
    let owner = app.register("Sender").await;
    app.link(&owner).await;
    let id = conversation_of(&app, &owner).await;
    let form = Form::new()
        .part("file", file(PDF, "invoice.pdf", "application/pdf"))
        .text("caption", "your invoice");
    let (status, pdf) = send_media(&app, &owner, &id, form).await;
    assert_eq!(status, StatusCode::CREATED, "{pdf}");
    assert_eq!(pdf["status"], "pending");
    assert_eq!(pdf["type"], "document");
    assert_eq!(pdf["content"], "your invoice");
    assert_eq!(pdf["media"]["fileName"], "invoice.pdf");
    assert_eq!(pdf["media"]["status"], "ready");
    let (status, image) = send_media(
        &app,
        &owner,
        &id,
        Form::new().part("file", file(PNG, "IMG_1.png", "image/png")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{image}");
    assert_eq!(image["type"], "image");
    assert_eq!(
        (
            image["media"]["width"].clone(),
            image["media"]["height"].clone()
        ),
        (json!(1), json!(1))
    );
    let voice = Form::new()
        .part("file", file(OPUS, "note.ogg", "audio/ogg"))
        .text("voice", "true");
    let (status, note) = send_media(&app, &owner, &id, voice).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["type"], "audio");
    assert_eq!(note["media"]["voice"], true);
    assert_eq!(note["media"]["mimeType"], "audio/ogg; codecs=opus");

    let path = format!("/api/conversations/{id}/messages");
    app.wait_for(&path, &owner.token, |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 3 && items.iter().all(|m| m["status"] == "sent"))
    })
    .await;
    let tenant = owner.tenant_id.parse().unwrap();
    let sent = app.simulated().sent_media(tenant);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].voice);
    assert_eq!(sent[0].mime_type, "application/pdf");
    assert_eq!(sent[0].caption, "your invoice");
    assert_eq!(sent[0].size, PDF.len());
    assert_eq!(sent[1].kind, aezen::whatsapp::MediaKind::Image);
    assert!(app.simulated().sent(tenant).is_empty(), "no text went out");
    let (_, list) = app.get("/api/conversations", &owner.token).await;
    assert_eq!(list["items"][0]["lastMessage"], "Voice message");
    // What was sent is served back as stored.
    let res = fetch(&app, pdf["media"]["url"].as_str().unwrap(), &[]).await;
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"invoice.pdf\"")
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_naming_the_problem_with_nothing_written() {
    let app = spawn_app_with(|config| config.media_max_bytes = 1024).await;
    let owner = app.register("Strict").await;
    let id = conversation_of(&app, &owner).await;
    let pdf = || file(PDF, "a.pdf", "application/pdf");
    let cases: Vec<(Form, StatusCode, &str, &str)> = vec![
        (
            Form::new().text("caption", "no file"),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "file is required",
        ),
        (
            Form::new().part("file", file(b"", "empty.pdf", "application/pdf")),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "empty",
        ),
        (
            Form::new().part("file", file(PDF, "x.png", "image/png")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_mismatch",
            "image/png",
        ),
        (
            Form::new().part("file", file(&[b'%'; 2000], "big.txt", "text/plain")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "limit",
        ),
        (
            Form::new().part("file", pdf()).part("file", pdf()),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "one file",
        ),
        (
            Form::new()
                .part("file", pdf())
                .text("caption", "x".repeat(1025)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "caption",
        ),
        (
            Form::new()
                .part("file", file(OPUS, "note.ogg", "audio/ogg"))
                .text("voice", "true")
                .text("caption", "listen"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "caption cannot go with audio",
        ),
        (
            Form::new().part("file", pdf()).text("voice", "true"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "voice",
        ),
    ];
    for (form, status, code, names) in cases {
        let answer = send_media(&app, &owner, &id, form).await;
        assert_error_naming(answer, status, code, names);
    }
    let res = app
        .client
        .post(format!("{}/api/conversations/{id}/send-media", app.address))
        .bearer_auth(&owner.token)
        .json(&json!({"file": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (counts, _app) = with_file(app, &owner, |conn| {
        ["message", "media", "media_blob"].map(|table| count(conn, table))
    })
    .await;
    assert_eq!(
        counts,
        [0, 0, 0],
        "no message row, no media item, no orphan blob"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_travels_inside_the_tenant_file_to_another_server() {
    let source = spawn_app().await;
    let owner = source.register("Portable").await;
    let message = incoming_photo(&source, &owner, "PORTABLE", json!({})).await;
    media_when(&source, &owner, &message, "ready").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("portable.tar.zst");
    aezen(
        &source.config,
        &[
            "tenant",
            "export",
            &owner.tenant_id,
            "--out",
            path_str(&archive),
        ],
    )
    .await
    .succeeded();
    drop(source);

    let target = spawn_app().await;
    aezen(&target.config, &["tenant", "import", path_str(&archive)])
        .await
        .succeeded();
    let token = target.login(&owner.email, &owner.password).await;
    let moved = Account {
        token,
        ..owner.clone()
    };
    let media = media_when(&target, &moved, &message, "ready").await;
    let res = fetch(&target, media["url"].as_str().unwrap(), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
}
