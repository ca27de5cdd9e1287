use std::sync::Arc;

use aezen::config::FileLock;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn sign_up_creates_exactly_one_new_tenant_file() {
    let app = spawn_app().await;
    assert!(app.tenant_files().is_empty());
    app.register("Nike EU").await;
    let files = app.tenant_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_stem().unwrap().to_str().unwrap();
    assert!(name.starts_with("aezen_nike_eu_"), "{name}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    );

    app.register("Nike EU").await;
    let files = app.tenant_files();
    assert_eq!(files.len(), 2, "two sign-ups, two files: {files:?}");
}

#[tokio::test]
async fn fifty_concurrent_first_requests_open_a_tenant_once() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let app = app.restart().await; // cold cache
    assert_eq!(app.metric("aezen_tenant_opens_total").await, 0);

    let requests = (0..50).map(|_| app.get("/api/tenant", &owner.token));
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], owner.tenant_id);
    }
    assert_eq!(app.metric("aezen_tenant_opens_total").await, 1);
    assert_eq!(
        app.metric("aezen_tenant_migrations_total").await,
        0,
        "an up-to-date file is not migrated again"
    );
}

#[tokio::test]
async fn fifty_concurrent_first_requests_create_and_migrate_an_unprovisioned_tenant_once() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let (root, config) = app.stop().await;
    // As if the server had died between recording the sign-up and creating the file.
    let file = std::fs::read_dir(config.tenants_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for entry in std::fs::read_dir(config.tenants_dir()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    rusqlite::Connection::open(config.master_db_path())
        .unwrap()
        .execute("UPDATE tenant SET provisioned_at = NULL", [])
        .unwrap();

    let app = TestApp::start_on(Arc::clone(&root), config).await;
    let requests = (0..50).map(|_| app.get("/api/tenant", &owner.token));
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(app.metric("aezen_tenant_provisions_total").await, 1);
    assert_eq!(app.metric("aezen_tenant_migrations_total").await, 1);
    assert_eq!(app.metric("aezen_tenant_opens_total").await, 1);
    assert_eq!(app.tenant_files(), [file.with_extension("db")]);
}

#[tokio::test]
async fn more_tenants_than_the_cache_holds_all_keep_working() {
    let app = spawn_app_with(|c| c.tenant_cache_capacity = Some(3)).await;
    let mut owners = Vec::new();
    for i in 0..8 {
        owners.push(app.register(&format!("Tenant {i}")).await);
    }
    for round in 0..3 {
        for owner in &owners {
            let (status, body) = app.get("/api/tenant", &owner.token).await;
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
            assert_eq!(
                body["id"], owner.tenant_id,
                "a request must reach its own tenant's file"
            );
        }
    }
    assert!(app.metric("aezen_tenant_pools_cached").await <= 3);
    let opens = app.metric("aezen_tenant_opens_total").await;
    assert!(
        opens > 8,
        "tenants were evicted and reopened: {opens} opens"
    );
    assert_eq!(app.tenant_files().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_left_the_cache_and_its_successor_share_one_writer_turn() {
    let app = spawn_app_with(|c| c.tenant_cache_capacity = Some(1)).await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let tenant = a.tenant_id.parse().unwrap();
    let tenants = &app.state().tenants;
    let old = tenants.get(tenant).await.unwrap();
    let opens = app.metric("aezen_tenant_opens_total").await;
    // B's request takes the only cache slot; A's next use opens a second pool on its file,
    // while a task (here: this test) still holds the first.
    app.get("/api/tenant", &b.token).await;
    let new = tenants.get(tenant).await.unwrap();
    assert_eq!(app.metric("aezen_tenant_opens_total").await, opens + 2);
    assert!(
        old.shares_writer_with(&new),
        "two pools on one file, each with its own writer turn"
    );

    // So a write on the new pool waits while one on the old pool has committed and is still
    // handing on what it recorded: nothing commits, or is handed on, out of order.
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (committed, handing_on) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let log = Arc::clone(&order);
    let first = tokio::spawn(async move {
        old.write_then(
            |_| Ok(()),
            move |_| {
                let _ = committed.send(());
                let _ = released.recv();
                log.lock().unwrap().push("old handed on");
            },
        )
        .await
    });
    handing_on.await.unwrap();
    let log = Arc::clone(&order);
    let second = tokio::spawn(async move {
        new.write(move |_| {
            log.lock().unwrap().push("new wrote");
            Ok(())
        })
        .await
    });
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(*order.lock().unwrap(), ["old handed on", "new wrote"]);
}

#[tokio::test]
async fn a_tenant_file_from_an_older_version_is_migrated_when_next_opened() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    for i in 0..3 {
        app.incoming(
            &owner,
            json!({"from": format!("+62812000{i:05}"), "content": "hi"}),
        )
        .await;
    }
    let file = app.tenant_files().remove(0);
    let (root, config) = app.stop().await;
    // Turn the file back into one written by a binary with migrations 1–2 only (V3's row,
    // what V5 to V8 added, and the history of V3 to V8; V4 rebuilds `message` from whatever it
    // finds, so it re-runs).
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(
        "DELETE FROM tenant_meta WHERE key IN ('newest_message', 'read_since', 'media_link_key');
         DROP TRIGGER media_blob_release; DROP TABLE media; DROP TABLE media_blob;
         DROP TRIGGER message_fts_insert; DROP TRIGGER message_fts_delete;
         DROP TRIGGER message_fts_update; DROP TABLE message_fts;
         DROP TABLE canned_response; DROP TABLE notification; DROP TABLE member;
         DROP TABLE webhook_delivery; DROP TABLE webhook_endpoint;
         DROP TRIGGER conversation_label_follow;
         DROP TABLE read_position; DROP TABLE conversation_label; DROP TABLE label;
         DROP INDEX conversation_by_status; DROP INDEX conversation_by_assignee;
         DROP INDEX conversation_snoozed; DROP INDEX message_incoming;
         ALTER TABLE conversation DROP COLUMN status;
         ALTER TABLE conversation DROP COLUMN snoozed_until;
         ALTER TABLE conversation DROP COLUMN assignee_id;
         ALTER TABLE conversation DROP COLUMN push_name;
         ALTER TABLE conversation DROP COLUMN name_edited;
         ALTER TABLE conversation DROP COLUMN last_incoming_pos;
         ALTER TABLE message DROP COLUMN private;
         ALTER TABLE event DROP COLUMN audience;
         DELETE FROM refinery_schema_history WHERE version >= 3;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);

    let app = TestApp::start_on(root, config).await;
    let (status, body) = app.get("/api/tenant", &owner.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["schemaVersion"], 8);
    let (status, page) = app.get("/api/conversations?limit=2", &owner.token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_root, _config) = app.stop().await;
    let conn = rusqlite::Connection::open(&file).unwrap();
    let newest: String = conn
        .query_row(
            "SELECT value FROM tenant_meta WHERE key = 'newest_message'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(newest, "3", "the migration records the newest message");
}

#[tokio::test]
async fn a_deleted_tenant_file_gives_503_and_no_new_file() {
    let app = spawn_app().await;
    let victim = app.register("Victim").await;
    let bystander = app.register("Bystander").await;
    let (root, config) = app.stop().await;
    let victim_file = std::fs::read_dir(config.tenants_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_str().unwrap().contains("victim") && p.extension().is_some_and(|e| e == "db")
        })
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", victim_file.display()));
    }

    let app = TestApp::start_on(root, config).await;
    for _ in 0..2 {
        assert_error(
            app.get("/api/tenant", &victim.token).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "tenant_unavailable",
        );
    }
    assert!(
        !victim_file.exists(),
        "the missing file was silently recreated"
    );
    assert_eq!(app.tenant_files().len(), 1);
    assert_eq!(
        app.get("/api/tenant", &bystander.token).await.0,
        StatusCode::OK,
        "other tenants are unaffected"
    );
    // The registry still answers for the victim: they can sign in and see what is wrong.
    assert_eq!(
        app.get("/api/auth/me", &victim.token).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let (_, team_before) = app.get("/api/team", &owner.token).await;
    let files_before = app.tenant_files();

    let app = app.restart().await;
    assert_eq!(app.tenant_files(), files_before);
    let (status, team_after) = app.get("/api/team", &owner.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(team_after, team_before);
    app.login(&agent.email, &agent.password).await;
    let (status, info) = app.get("/api/tenant", &agent.token).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["id"], owner.tenant_id);
    let dup = app
        .post(
            "/api/auth/register",
            None,
            json!({"tenantName": "Again", "name": "X", "email": owner.email, "password": "password123"}),
        )
        .await;
    assert_error(dup, StatusCode::CONFLICT, "email_taken");
}

#[tokio::test]
async fn a_tenant_file_that_belongs_to_another_tenant_is_refused() {
    let app = spawn_app().await;
    let a = app.register("Alpha").await;
    let b = app.register("Beta").await;
    let (root, config) = app.stop().await;
    let find = |needle: &str| {
        std::fs::read_dir(config.tenants_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_str().unwrap().contains(needle) && p.extension().is_some_and(|e| e == "db")
            })
            .unwrap()
    };
    // An operator copies Alpha's file over Beta's: Beta must not be served Alpha's data.
    std::fs::copy(find("alpha"), find("beta")).unwrap();

    let app = TestApp::start_on(root, config).await;
    assert_error(
        app.get("/api/tenant", &b.token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "tenant_unavailable",
    );
    assert_eq!(app.get("/api/tenant", &a.token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_that_leaves_the_cache_is_one_complete_file() {
    let app = spawn_app_with(|c| c.tenant_cache_capacity = Some(1)).await;
    let owner = app.register("Copied").await;
    for i in 0..20 {
        let (status, body) = app
            .incoming(
                &owner,
                json!({"from": format!("+62 812 0000 {i:04}"), "content": format!("message {i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let file = app.tenant_files()[0].clone();
    // A second tenant takes the only cache slot; the first is checkpointed and closed.
    app.register("Other").await;
    app.wait_until(|| async { app.metric("aezen_tenant_closes_total").await >= 1 })
        .await;

    // The .db alone, copied without its -wal and -shm, holds everything committed.
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("copy.db");
    std::fs::copy(&file, &copied).unwrap();
    let conn = rusqlite::Connection::open(&copied).unwrap();
    let (conversations, messages): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM conversation), (SELECT count(*) FROM message)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((conversations, messages), (20, 20));

    // And the tenant opens again with its data.
    let (status, page) = app.get("/api/conversations?limit=100", &owner.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
}

/// Whether a process other than the server can read `file` now: Python's `sqlite3` module
/// (SQLite's default VFS, no busy timeout — what an outside `sqlite3` shell does) counts the
/// conversations in a child process. `.ci/run` installs `python3` where it is missing.
fn readable_from_another_process(file: &std::path::Path) -> Result<i64, String> {
    const PROBE: &str = concat!(
        "import sqlite3, sys\n",
        "try:\n",
        "    conn = sqlite3.connect(sys.argv[1], timeout=0)\n",
        "    n = conn.execute('SELECT count(*) FROM conversation').fetchone()[0]\n",
        "    print('PROBE ok', n)\n",
        "except sqlite3.Error as e:\n",
        "    print('PROBE', e)\n",
    );
    let out = std::process::Command::new("python3")
        .args(["-c", PROBE])
        .arg(file)
        .output()
        .expect("python3 runs the outside-process probe (apt-get install python3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROBE "))
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            panic!("the probe reported nothing: {stdout} {stderr}")
        });
    match line.strip_prefix("ok ") {
        Some(count) => Ok(count.parse().unwrap()),
        None => Err(line.to_owned()),
    }
}

#[tokio::test]
async fn tenant_file_lock_decides_who_else_may_open_an_open_tenant() {
    for lock in [FileLock::Exclusive, FileLock::Shared] {
        let app = spawn_app_with(|c| c.tenant_file_lock = lock).await;
        let owner = app.register("Locked").await;
        let (status, body) = app
            .incoming(
                &owner,
                json!({"from": "+62 812 0000 0001", "content": "hi"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let file = app.tenant_files()[0].clone();

        let outside = readable_from_another_process(&file);
        match lock {
            FileLock::Exclusive => {
                let err = outside.expect_err("an open tenant file is the server's alone");
                assert!(err.contains("locked"), "{err}");
                // Only the write-ahead log's index in memory: no -shm file beside it.
                assert!(!file.with_extension("db-shm").exists());
            }
            FileLock::Shared => assert_eq!(outside, Ok(1)),
        }
        // Once the server has closed it, the file is anyone's, with everything in it.
        let (_root, _) = app.stop().await;
        assert_eq!(readable_from_another_process(&file), Ok(1), "{lock:?}");
    }
}
