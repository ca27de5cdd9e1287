//! The operations commands (`aezen backup`, `restore`, `tenant export/import/delete/compact`,
//! `check`, `migrate`, `tenant list`) run as the real binary against a server of this test
//! (through its control socket) or against a stopped server's files; and the tenant's own
//! `GET /api/tenant/export` / `DELETE /api/tenant`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Account, TestApp, assert_error, spawn_app};

/// What a run of the `aezen` binary printed and how it ended.
pub(crate) struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    pub(crate) fn succeeded(self) -> Self {
        assert!(self.ok, "aezen failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    fn failed_naming(self, named: &str) -> Self {
        assert!(!self.ok, "aezen should have failed:\n{}", self.stdout);
        assert!(
            self.stderr.contains(named) || self.stdout.contains(named),
            "the error does not name {named:?}:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).expect("JSON on stdout")
    }
}

/// Runs `aezen <args>` on `app`'s data and session folders (its config), bounded in time.
pub(crate) async fn aezen(app_config: &aezen::Config, args: &[&str]) -> Run {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_aezen"))
            .args(args)
            .env("AEZEN_DATA_DIR", &app_config.data_dir)
            .env("AEZEN_SESSIONS_DIR", &app_config.sessions_dir)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("aezen finishes within 60 s")
    .expect("aezen runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

async fn incoming(app: &TestApp, account: &Account, from: &str, text: &str) -> String {
    let (status, body) = app
        .incoming(account, json!({"from": from, "content": text}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["message"]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no message id in {body}"))
}

async fn login_status(app: &TestApp, account: &Account) -> StatusCode {
    app.post(
        "/api/auth/login",
        None,
        json!({"email": account.email, "password": account.password}),
    )
    .await
    .0
}

/// Every message id in a SQLite copy of a tenant file (read-only).
fn message_ids(file: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open copy");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok", "{}", file.display());
    let mut stmt = conn.prepare("SELECT id FROM message").expect("query");
    stmt.query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("ids")
}

fn backup_file_of(dir: &Path, tenant: &str) -> PathBuf {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let entry = manifest["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|t| t["id"] == tenant)
        .unwrap_or_else(|| panic!("tenant {tenant} not in {manifest}"));
    dir.join(entry["database"]["path"].as_str().expect("path"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_writer_inserts_holds_every_acknowledged_message_and_restores_a_deleted_tenant()
 {
    let app = spawn_app().await;
    let a = app.register("Backed Up").await;
    let b = app.register("Bystander").await;
    let agent = app.add_member(&a, "agent").await;
    incoming(&app, &b, "+4915100000001", "b's message").await;

    // A writer inserts without pause; what it had acknowledged before the backup began must
    // be in the copy.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app_address, token) = (app.address.clone(), a.token.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let res = client
                    .post(format!(
                        "{app_address}/api/integrations/whatsapp/simulate/incoming"
                    ))
                    .bearer_auth(&token)
                    .json(&json!({"from": format!("+49151{:07}", n % 50), "content": format!("message {n}")}))
                    .send()
                    .await
                    .expect("incoming");
                assert_eq!(res.status(), StatusCode::CREATED);
                let body: Value = res.json().await.expect("json");
                let id = body["message"]["id"]
                    .as_str()
                    .expect("message id")
                    .to_owned();
                acknowledged.lock().unwrap().push(id);
            }
        })
    };
    app.wait_until(|| {
        let n = acknowledged.lock().unwrap().len();
        async move { n >= 20 }
    })
    .await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    let run = aezen(&app.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    assert!(run.stdout.contains("2 tenant(s)"), "{}", run.stdout);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();

    let copied = message_ids(&backup_file_of(&out, &a.tenant_id));
    for id in &before {
        assert!(
            copied.contains(id),
            "message {id} acknowledged before the backup is missing"
        );
    }
    assert_eq!(message_ids(&backup_file_of(&out, &b.tenant_id)).len(), 1);
    // Its master copy passes the integrity check too, and every file matches the manifest.
    message_ids_free_check(&out.join("master.db"));
    let metrics = app
        .client
        .get(format!("{}/api/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("aezen_tenant_last_backup_timestamp_seconds")
                && l.contains(&a.tenant_id)
        ),
        "{metrics}"
    );

    // Incremental: a tenant that changed since is copied again, one that did not is not.
    incoming(&app, &a, "+4915100000009", "after the first backup").await;
    let second = aezen(&app.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    assert!(
        second.stdout.contains("1 copied, 1 unchanged"),
        "{}",
        second.stdout
    );
    assert!(message_ids(&backup_file_of(&out, &a.tenant_id)).len() > copied.len());
    let third = aezen(&app.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    assert!(
        third.stdout.contains("0 copied, 2 unchanged"),
        "{}",
        third.stdout
    );

    // Delete the tenant (through the running server), then bring it back.
    let tenant_file = backup_file_of(&out, &a.tenant_id);
    let live_file = app.tenants_dir().join(tenant_file.file_name().unwrap());
    assert!(live_file.exists());
    aezen(&app.config, &["tenant", "delete", &a.tenant_id, "--yes"])
        .await
        .succeeded();
    assert!(!live_file.exists(), "the tenant's file is gone");
    assert_eq!(login_status(&app, &a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/conversations", &a.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The other tenant is untouched and served throughout.
    assert_eq!(login_status(&app, &b).await, StatusCode::OK);
    assert_eq!(
        app.get("/api/conversations", &b.token).await.0,
        StatusCode::OK
    );

    aezen(
        &app.config,
        &[
            "restore",
            "--from",
            path_str(&out),
            "--tenant",
            &a.tenant_id,
        ],
    )
    .await
    .succeeded();
    assert_eq!(login_status(&app, &a).await, StatusCode::OK);
    assert_eq!(login_status(&app, &agent).await, StatusCode::OK);
    let token = app.login(&a.email, &a.password).await;
    let (status, page) = app.get("/api/conversations?limit=100", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        !page["items"].as_array().expect("items").is_empty(),
        "{page}"
    );
}

/// Integrity check of a copy that has no message table (the master registry).
fn message_ids_free_check(file: &Path) {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open copy");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_before_anything_is_touched() {
    let app = spawn_app().await;
    let a = app.register("Corrupted").await;
    incoming(&app, &a, "+4915100000002", "kept").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    aezen(&app.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    incoming(&app, &a, "+4915100000002", "written after the backup").await;
    let copy = backup_file_of(&out, &a.tenant_id);
    let mut bytes = std::fs::read(&copy).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&copy, bytes).unwrap();

    aezen(&app.config, &["restore", "--from", path_str(&out)])
        .await
        .failed_naming("does not match the manifest");
    // Nothing changed: the message written after the backup is still there.
    let (_, page) = app.get("/api/conversations?limit=10", &a.token).await;
    assert_eq!(
        page["items"][0]["lastMessage"], "written after the backup",
        "{page}"
    );

    // Not a backup at all.
    let empty = dir.path().join("not-a-backup");
    std::fs::create_dir_all(&empty).unwrap();
    aezen(&app.config, &["restore", "--from", path_str(&empty)])
        .await
        .failed_naming("is not an AEZEN backup");
    // An unknown tenant id.
    aezen(
        &app.config,
        &[
            "restore",
            "--from",
            path_str(&out),
            "--tenant",
            &uuid::Uuid::new_v4().to_string(),
        ],
    )
    .await
    .failed_naming("holds no tenant with id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_on_one_server_and_import_on_another_moves_logins_history_events_and_session() {
    let source = spawn_app().await;
    let owner = source.register("Moving").await;
    let agent = source.add_member(&owner, "agent").await;
    source.link(&owner).await;
    incoming(&source, &owner, "+4915100000003", "history travels").await;
    let session_files: Vec<_> = std::fs::read_dir(source.session_folder(&owner))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!session_files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("moving.tar.zst");
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
    assert!(archive.metadata().unwrap().len() > 0);

    let target = spawn_app().await;
    let run = aezen(&target.config, &["tenant", "import", path_str(&archive)])
        .await
        .succeeded();
    assert!(run.stdout.contains(&owner.tenant_id), "{}", run.stdout);
    assert_eq!(login_status(&target, &owner).await, StatusCode::OK);
    assert_eq!(login_status(&target, &agent).await, StatusCode::OK);
    let token = target.login(&owner.email, &owner.password).await;
    let (_, page) = target.get("/api/conversations", &token).await;
    assert_eq!(page["items"][0]["lastMessage"], "history travels", "{page}");
    let (_, events) = target.get("/api/events?after=0", &token).await;
    assert!(
        events["items"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["type"] == "incoming_message")),
        "{events}"
    );
    let moved: Vec<_> = std::fs::read_dir(target.config.sessions_dir.join(&owner.tenant_id))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for name in &session_files {
        assert!(moved.contains(name), "{name:?} not moved");
    }
    // The linked session resumes on the new server.
    target
        .wait_for_session(
            &Account {
                token: token.clone(),
                ..owner.clone()
            },
            "connected",
        )
        .await;

    // Importing it again collides, by name, and changes nothing.
    aezen(&target.config, &["tenant", "import", path_str(&archive)])
        .await
        .failed_naming(&owner.tenant_id);
    // A truncated archive.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = spawn_app().await;
    aezen(&fresh.config, &["tenant", "import", path_str(&cut)])
        .await
        .failed_naming("truncated");
    assert_eq!(login_status(&fresh, &owner).await, StatusCode::UNAUTHORIZED);
    let leftovers: Vec<_> = std::fs::read_dir(fresh.tenants_dir()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "staging files left behind: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_everything_of_that_tenant_and_nothing_of_another() {
    let app = spawn_app().await;
    let gone = app.register("Gone").await;
    let kept = app.register("Kept").await;
    app.link(&gone).await;
    app.link(&kept).await;
    incoming(&app, &gone, "+4915100000004", "x").await;
    incoming(&app, &kept, "+4915100000005", "y").await;
    let files_before = app.tenant_files();
    assert_eq!(files_before.len(), 2);
    // Without --yes and without a terminal it refuses.
    aezen(&app.config, &["tenant", "delete", &gone.tenant_id])
        .await
        .failed_naming("--yes");
    aezen(&app.config, &["tenant", "delete", &gone.tenant_id, "--yes"])
        .await
        .succeeded();
    let files_after = app.tenant_files();
    assert_eq!(files_after.len(), 1);
    let left = std::fs::read_dir(app.tenants_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    let kept_stem = files_after[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        left.iter().all(|name| name.starts_with(&kept_stem)),
        "{left:?}"
    );
    assert!(!app.session_folder(&gone).exists());
    assert!(app.session_folder(&kept).exists());
    assert_eq!(login_status(&app, &kept).await, StatusCode::OK);
    let (_, page) = app.get("/api/conversations", &kept.token).await;
    assert_eq!(page["items"][0]["lastMessage"], "y");
    // An unknown id is named.
    aezen(&app.config, &["tenant", "delete", &gone.tenant_id, "--yes"])
        .await
        .failed_naming(&gone.tenant_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_an_operation_holds_a_tenant_its_requests_get_503_and_others_are_served() {
    let app = spawn_app().await;
    let held = app.register("Held").await;
    let other = app.register("Other").await;
    let hold = app
        .state()
        .tenants
        .hold(held.tenant_id.parse().unwrap())
        .await
        .expect("hold");
    let response = app
        .client
        .get(format!("{}/api/conversations", app.address))
        .bearer_auth(&held.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tenant_busy");
    assert_eq!(
        app.get("/api/conversations", &other.token).await.0,
        StatusCode::OK
    );
    drop(hold);
    assert_eq!(
        app.get("/api/conversations", &held.token).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_keeps_message_ids_cursors_and_the_list_order() {
    let app = spawn_app().await;
    let a = app.register("Compacted").await;
    for i in 0..30 {
        incoming(
            &app,
            &a,
            &format!("+49151000001{:02}", i % 3),
            &format!("m{i}"),
        )
        .await;
    }
    let (root, config) = app.stop().await;
    // Gaps in the rowids, as deleted rows leave them: a VACUUM would close them if `message`
    // had no key of its own.
    let file = std::fs::read_dir(config.tenants_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute("DELETE FROM message WHERE rowid % 4 = 0", [])
            .unwrap();
    }
    let app = TestApp::start_on(root, config).await;
    let token = app.login(&a.email, &a.password).await;
    let (_, list_before) = app.get("/api/conversations", &token).await;
    let conversation = list_before["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{conversation}/messages?limit=3");
    let (_, first) = app.get(&path, &token).await;
    let cursor = first["nextCursor"].as_str().expect("cursor").to_owned();
    let (_, all_before) = app
        .get(
            &format!("/api/conversations/{conversation}/messages?limit=100"),
            &token,
        )
        .await;

    aezen(&app.config, &["tenant", "compact", &a.tenant_id])
        .await
        .succeeded();
    let (_, all_after) = app
        .get(
            &format!("/api/conversations/{conversation}/messages?limit=100"),
            &token,
        )
        .await;
    assert_eq!(all_before["items"], all_after["items"]);
    let (_, second) = app.get(&format!("{path}&before={cursor}"), &token).await;
    let ids = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // The page after the cursor is the one that followed it before compaction.
    assert_eq!(ids(&second), ids(&all_before)[3..6].to_vec());
    let (_, list_after) = app.get("/api/conversations", &token).await;
    assert_eq!(list_before["items"], list_after["items"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_list_and_migrate_report_on_every_file_and_check_fails_on_orphans() {
    let app = spawn_app().await;
    let a = app.register("Listed").await;
    app.add_member(&a, "agent").await;
    incoming(&app, &a, "+4915100000006", "hello").await;
    let run = aezen(&app.config, &["check"]).await.succeeded();
    assert!(run.stdout.contains("no problems found"), "{}", run.stdout);
    let list = aezen(&app.config, &["tenant", "list", "--json"])
        .await
        .succeeded();
    let tenants = list.json()["tenants"].clone();
    assert_eq!(tenants[0]["id"], a.tenant_id);
    assert_eq!(tenants[0]["users"], 2);
    assert!(tenants[0]["lastActivity"].is_string(), "{tenants}");
    aezen(&app.config, &["migrate", "--dry-run"])
        .await
        .succeeded();

    std::fs::write(app.tenants_dir().join("stray.db"), b"not a tenant").unwrap();
    aezen(&app.config, &["check"])
        .await
        .failed_naming("tenants/stray.db");

    // The same commands with no server running act on the files directly.
    let (_root, config) = app.stop().await;
    std::fs::remove_file(config.tenants_dir().join("stray.db")).unwrap();
    let offline = aezen(&config, &["check", "--json"]).await.succeeded();
    assert_eq!(offline.json()["problems"], json!([]));
    let migrated = aezen(&config, &["migrate"]).await.succeeded();
    assert!(migrated.stdout.contains("0 failed"), "{}", migrated.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let app = spawn_app().await;
    let err = aezen::Application::build(app.config.clone())
        .await
        .err()
        .expect("a second server on the same data dir must not start");
    assert!(
        format!("{err:#}").contains("another AEZEN process"),
        "{err:#}"
    );
    // The control socket is private to the server's user.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(app.config.data_dir.join("control.sock"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_downloads_the_workspace_archive_and_can_erase_the_workspace() {
    let app = spawn_app().await;
    let owner = app.register("Own Way Out").await;
    let agent = app.add_member(&owner, "agent").await;
    incoming(&app, &owner, "+4915100000007", "mine").await;

    let (status, body) = app.get("/api/tenant/export", &agent.token).await;
    assert_error((status, body), StatusCode::FORBIDDEN, "forbidden");
    let response = app
        .client
        .get(format!("{}/api/tenant/export", app.address))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zstd");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let bytes = response.bytes().await.unwrap();
    // It is the same archive `aezen tenant import` reads.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("download.tar.zst");
    std::fs::write(&archive, &bytes).unwrap();
    let other_box = spawn_app().await;
    aezen(&other_box.config, &["tenant", "import", path_str(&archive)])
        .await
        .succeeded();
    assert_eq!(login_status(&other_box, &owner).await, StatusCode::OK);

    // Erasure: owner only, with the right password.
    let wrong = app
        .request(
            reqwest::Method::DELETE,
            "/api/tenant",
            Some(&owner.token),
            Some(&json!({"password": "not it"})),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "wrong_password");
    let by_agent = app
        .request(
            reqwest::Method::DELETE,
            "/api/tenant",
            Some(&agent.token),
            Some(&json!({"password": agent.password})),
        )
        .await;
    assert_error(by_agent, StatusCode::FORBIDDEN, "forbidden");
    let files = app.tenant_files();
    let (status, _) = app
        .request(
            reqwest::Method::DELETE,
            "/api/tenant",
            Some(&owner.token),
            Some(&json!({"password": owner.password})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(files.iter().all(|f| !f.exists()));
    assert_eq!(
        app.get("/api/conversations", &owner.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login_status(&app, &agent).await, StatusCode::UNAUTHORIZED);
}

/// Writes a `.tar.zst` archive of `entries` (name, bytes), in order.
fn write_archive(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let encoder = zstd::Encoder::new(file, 3).unwrap();
    let mut tar = tar::Builder::new(encoder);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; a hostile archive writes the name itself.
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        tar.append(&header, &bytes[..]).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// The entries of an archive, in order.
fn read_archive(path: &Path) -> Vec<(String, Vec<u8>)> {
    let decoder = zstd::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut archive = tar::Archive::new(decoder);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_and_backups_that_point_outside_or_come_from_a_newer_schema_are_refused() {
    let source = spawn_app().await;
    let owner = source.register("Hostile").await;
    source.link(&owner).await;
    incoming(&source, &owner, "+4915100000008", "x").await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("real.tar.zst");
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
    let entries = read_archive(&archive);
    assert_eq!(entries[0].0, "aezen-tenant.json");
    assert_eq!(entries[1].0, "tenant.db");
    let header: Value = serde_json::from_slice(&entries[0].1).unwrap();

    let target = spawn_app().await;
    // A newer schema.
    let mut newer = header.clone();
    newer["database"]["schemaVersion"] = json!(999);
    let newer_file = dir.path().join("newer.tar.zst");
    let mut with_newer = entries.clone();
    with_newer[0].1 = serde_json::to_vec(&newer).unwrap();
    let with_newer: Vec<(&str, Vec<u8>)> = with_newer
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    write_archive(&newer_file, &with_newer);
    aezen(&target.config, &["tenant", "import", path_str(&newer_file)])
        .await
        .failed_naming("newer than this binary");
    // A session entry that climbs out of its folder.
    let mut escaping = header.clone();
    let sneaky = "sessions/../../escaped";
    escaping["session"] = json!([{"path": sneaky, "size": 1, "sha256": "00"}]);
    let escaping_file = dir.path().join("escaping.tar.zst");
    write_archive(
        &escaping_file,
        &[
            ("aezen-tenant.json", serde_json::to_vec(&escaping).unwrap()),
            ("tenant.db", entries[1].1.clone()),
            (sneaky, vec![b'x']),
        ],
    );
    aezen(
        &target.config,
        &["tenant", "import", path_str(&escaping_file)],
    )
    .await
    .failed_naming("points outside");
    assert!(
        !target
            .config
            .sessions_dir
            .parent()
            .unwrap()
            .join("escaped")
            .exists()
    );
    assert!(!dir.path().join("escaped").exists());
    // Nothing was imported by either.
    assert_eq!(
        login_status(&target, &owner).await,
        StatusCode::UNAUTHORIZED
    );

    // A backup manifest naming a file outside the backup.
    let out = dir.path().join("backup");
    aezen(&source.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    let manifest_path = out.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["tenants"][0]["database"]["path"] = json!("../../../etc/passwd");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    aezen(&source.config, &["restore", "--from", path_str(&out)])
        .await
        .failed_naming("points outside the backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_an_empty_data_dir_with_no_server_serves_its_tenants() {
    let app = spawn_app().await;
    let owner = app.register("Drill").await;
    incoming(&app, &owner, "+4915100000010", "survives the drill").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    aezen(&app.config, &["backup", "--out", path_str(&out)])
        .await
        .succeeded();
    drop(app);

    let fresh = tempfile::tempdir().unwrap();
    let config = crate::helpers::test_config(fresh.path());
    aezen(&config, &["restore", "--from", path_str(&out)])
        .await
        .succeeded();
    aezen(&config, &["check"]).await.succeeded();
    let restored = TestApp::start_on(std::sync::Arc::new(fresh), config).await;
    let token = restored.login(&owner.email, &owner.password).await;
    let (_, page) = restored.get("/api/conversations", &token).await;
    assert_eq!(
        page["items"][0]["lastMessage"], "survives the drill",
        "{page}"
    );
}
