//! Starts the real application on a temp dir and talks to it over HTTP, as a client would.

pub mod raw;
pub mod socket;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aezen::whatsapp::real::Network;
use aezen::{Application, Config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: Config,
    /// The running application's state (dropped at stop), for checks at the WhatsApp boundary.
    state: Option<aezen::AppState>,
    root: Arc<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A signed-up tenant's owner.
#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
    pub password: String,
}

/// Settings for tests: generous rate limits (tests that check them set their own).
pub fn test_config(root: &Path) -> Config {
    let mut config = Config::for_data_root(root);
    config.login_per_ip_per_minute = 10_000;
    config.login_per_account_per_minute = 10_000;
    config.whatsapp = aezen::config::BackendKind::Simulated;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Config)) -> TestApp {
    let root = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(root.path());
    customise(&mut config);
    start(root, config).await
}

async fn start(root: Arc<TempDir>, config: Config) -> TestApp {
    // The real backend dials a local port that was free a moment ago, never WhatsApp: its
    // tests see a refused connection whether or not this machine has internet.
    let network = match config.whatsapp {
        aezen::config::BackendKind::Real => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            Network::real_transport_to(&format!("ws://127.0.0.1:{port}/ws/chat"))
        }
        aezen::config::BackendKind::Simulated => Network::offline(),
    };
    let app = Application::build_with_network(config.clone(), network)
        .await
        .expect("app builds");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        address,
        client: reqwest::Client::new(),
        config,
        state: Some(state),
        root,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn tenants_dir(&self) -> PathBuf {
        self.config.tenants_dir()
    }

    /// Files under `data/tenants/` that are databases (not -wal/-shm).
    pub fn tenant_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.tenants_dir())
            .expect("tenants dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "db"))
            .collect();
        files.sort();
        files
    }

    /// Stops the server and waits until it has closed every database.
    pub async fn stop(mut self) -> (Arc<TempDir>, Config) {
        self.shutdown().await;
        (Arc::clone(&self.root), self.config.clone())
    }

    /// Stops the server and starts a new one on the same folders.
    pub async fn restart(self) -> TestApp {
        let (root, config) = self.stop().await;
        start(root, config).await
    }

    /// Starts a server on the folders of a stopped one.
    pub async fn start_on(root: Arc<TempDir>, config: Config) -> TestApp {
        start(root, config).await
    }

    /// The running application's state, for tests that reach below HTTP.
    pub fn state(&self) -> &aezen::AppState {
        self.state.as_ref().expect("app running")
    }

    /// The simulated WhatsApp backend the app runs on.
    pub fn simulated(&self) -> std::sync::Arc<aezen::whatsapp::simulated::Simulated> {
        self.state
            .as_ref()
            .and_then(|s| s.simulated.clone())
            .expect("tests run on the simulated backend")
    }

    async fn shutdown(&mut self) {
        self.state = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Polls `GET path` until `done` holds for the body (a deadline instead of a sleep).
    pub async fn wait_for(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = self.get(path, token).await;
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting on {path}: {status} {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Polls `done` until it holds (with a deadline).
    pub async fn wait_until<F, Fut>(&self, done: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done().await {
            assert!(std::time::Instant::now() < deadline, "timed out waiting");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The tenant's WhatsApp session state, once it is `state` (polled with a deadline).
    pub async fn wait_for_session(&self, account: &Account, state: &str) -> Value {
        self.wait_for("/api/integrations/whatsapp/status", &account.token, |s| {
            s["state"] == state
        })
        .await
    }

    /// Turns the tenant's WhatsApp on or off; returns the status right after.
    pub async fn toggle(&self, account: &Account) -> Value {
        let (status, body) = self
            .post(
                "/api/integrations/whatsapp/toggle",
                Some(&account.token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Sends a text to a conversation; returns the response.
    pub async fn send_text(
        &self,
        account: &Account,
        conversation: &str,
        content: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/conversations/{conversation}/send"),
            Some(&account.token),
            json!({ "content": content }),
        )
        .await
    }

    /// Links the tenant's simulated WhatsApp: toggle on, wait for the QR code, scan it, wait
    /// until connected.
    pub async fn link(&self, owner: &Account) {
        self.toggle(owner).await;
        self.wait_for_session(owner, "qr").await;
        let (status, body) = self.scan(owner).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        self.wait_for_session(owner, "connected").await;
    }

    /// The simulated phone scans the QR code being shown; returns the response.
    pub async fn scan(&self, account: &Account) -> (StatusCode, Value) {
        self.post(
            "/api/integrations/whatsapp/simulate/scan",
            Some(&account.token),
            json!({}),
        )
        .await
    }

    /// Logs the tenant's WhatsApp out; returns the response.
    pub async fn logout(&self, account: &Account) -> (StatusCode, Value) {
        self.post(
            "/api/integrations/whatsapp/logout",
            Some(&account.token),
            json!({}),
        )
        .await
    }

    /// `sessions/<tenant-id>/` of an account's tenant.
    pub fn session_folder(&self, account: &Account) -> PathBuf {
        self.config.sessions_dir.join(&account.tenant_id)
    }

    /// Delivers a simulated incoming WhatsApp message to `account`'s tenant.
    pub async fn incoming(&self, account: &Account, body: Value) -> (StatusCode, Value) {
        self.post(
            "/api/integrations/whatsapp/simulate/incoming",
            Some(&account.token),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up a new tenant with a unique owner email.
    pub async fn register(&self, tenant_name: &str) -> Account {
        let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        let (status, body) = self
            .post(
                "/api/auth/register",
                None,
                json!({"tenantName": tenant_name, "name": "Owner", "email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Account {
            token: body["token"].as_str().expect("token").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
            tenant_id: body["tenant"]["id"].as_str().expect("tenant id").to_owned(),
            email,
            password,
        }
    }

    /// Adds a team member with `role` and logs them in.
    pub async fn add_member(&self, owner: &Account, role: &str) -> Account {
        let email = format!("{role}-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "another long password".to_owned();
        let (status, body) = self
            .post(
                "/api/team",
                Some(&owner.token),
                json!({"name": role, "email": email, "password": password, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = self.login(&email, &password).await;
        Account {
            token,
            user_id: body["id"].as_str().expect("id").to_owned(),
            tenant_id: owner.tenant_id.clone(),
            email,
            password,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// The value of a Prometheus counter or gauge at `/api/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .client
            .get(format!("{}/api/metrics", self.address))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("metric {name} not in:\n{text}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// [`assert_error`], and its message names `named` (the field, the path, what to do).
#[track_caller]
pub fn assert_error_naming(
    actual: (StatusCode, Value),
    status: StatusCode,
    code: &str,
    named: &str,
) {
    let message = actual.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(named),
        "{code}: the message does not name {named:?}: {}",
        actual.1
    );
    assert_error(actual, status, code);
}

/// Asserts an error response's status and code.
#[track_caller]
pub fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) {
    let (got_status, body) = actual;
    assert_eq!(got_status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
}
