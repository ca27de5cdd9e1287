//! Delivering a tenant's event log to its webhook endpoints (docs/WEBHOOKS.md).
//!
//! Each enabled endpoint has one task. It reads the log after the endpoint's durable cursor
//! ([`store::next_work`]), POSTs one event at a time, and records the attempt with the
//! cursor's move in one transaction ([`store::record`]): an event is sent only after the one
//! before it was answered 2xx, and a restart resumes after the cursor. The tasks of a tenant
//! wait on its [`CommitSignal`], which each commit that appends events sends to.
//!
//! The tasks start with the server for the tenants the registry marks as having endpoints
//! (`tenant.webhooks`), and the first time a tenant's file is opened in the process (a
//! restored or imported file brings its endpoints along); later opens of the same tenant
//! cost nothing here, since the tasks outlive the tenant's pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::params;
use uuid::Uuid;

use super::Delivery;
use super::guard::{Guard, GuardedResolver};
use super::store::{self, Outcome, Pending, RetryPolicy, Secrets, Work};
use crate::db::Db;
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::metrics::Metrics;
use crate::realtime::CommitSignal;
use crate::tenancy::TenantPools;

/// Connect and whole-request timeouts of a delivery.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a response body the log keeps.
const EXCERPT_BYTES: usize = 512;
/// An idle task looks again this often even without a commit (a clock-based retry, say).
const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// How long a task waits after its tenant's file could not be used.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(5);

/// The webhook deliveries of every tenant.
#[derive(Clone)]
pub struct Webhooks(Arc<Inner>);

struct Inner {
    tenants: TenantPools,
    master: Db,
    signal: CommitSignal,
    client: reqwest::Client,
    guard: Arc<Guard>,
    retry: RetryPolicy,
    metrics: Metrics,
    /// Endpoints with a running task, and whether new tasks may start (not after
    /// [`Webhooks::shutdown`]).
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    tasks: HashMap<Uuid, Option<tokio::task::AbortHandle>>,
    closed: bool,
    /// Tenants the registry is known to mark as having endpoints.
    marked: std::collections::HashSet<TenantId>,
    /// Tenants whose file was opened in this process: the first open looks for endpoints,
    /// later ones (a pool leaving the cache and coming back) need not, since the tasks live
    /// on without the pool.
    opened: std::collections::HashSet<TenantId>,
}

impl Inner {
    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Webhooks {
    pub fn new(
        tenants: TenantPools,
        master: Db,
        signal: CommitSignal,
        guard: Guard,
        retry: RetryPolicy,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&guard))))
            .user_agent(concat!("AEZEN-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self(Arc::new(Inner {
            tenants,
            master,
            signal,
            client,
            guard,
            retry,
            metrics,
            running: Mutex::new(Running::default()),
        })))
    }

    pub fn guard(&self) -> &Guard {
        &self.0.guard
    }

    /// Starts the deliveries of every tenant the registry marks as having endpoints.
    pub async fn start_recorded(&self) {
        let tenants = self
            .0
            .master
            .run(|conn| {
                Ok(conn
                    .prepare("SELECT id FROM tenant WHERE webhooks = 1")?
                    .query_map([], |row| row.get::<_, TenantId>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await;
        match tenants {
            Ok(tenants) => {
                self.0.running().marked.extend(tenants.iter().copied());
                for tenant in tenants {
                    self.ensure_soon(tenant);
                }
            }
            Err(err) => tracing::error!(error = %err, "tenants with webhooks not read"),
        }
    }

    /// What the tenant pools call when they open a tenant's file (held weakly).
    pub fn on_open(&self) -> impl Fn(TenantId) + Send + Sync + 'static {
        let inner: Weak<Inner> = Arc::downgrade(&self.0);
        move |tenant| {
            let Some(inner) = inner.upgrade() else { return };
            if inner.running().opened.insert(tenant) {
                Webhooks(inner).ensure_soon(tenant);
            }
        }
    }

    fn ensure_soon(&self, tenant: TenantId) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.ensure(tenant).await {
                tracing::warn!(tenant = %tenant, error = %err, "webhook deliveries not started");
            }
        });
    }

    /// Starts a task for each enabled endpoint of `tenant` that has none, and wakes them all
    /// (after a change to the endpoints).
    pub async fn ensure(&self, tenant: TenantId) -> Result<(), ApiError> {
        let db = self.0.tenants.get(tenant).await?;
        let enabled = db.run(|conn| Ok(store::enabled(conn)?)).await?;
        // A file that came with endpoints (restored, imported): marked, so they start with
        // the server after a restart.
        let unmarked = !enabled.is_empty() && self.0.running().marked.insert(tenant);
        if unmarked && let Err(err) = self.mark(tenant, true).await {
            self.0.running().marked.remove(&tenant);
            return Err(err);
        }
        for id in enabled {
            let mut running = self.0.running();
            if running.closed || running.tasks.contains_key(&id) {
                continue;
            }
            let task = tokio::spawn(Arc::clone(&self.0).run(tenant, id));
            running.tasks.insert(id, Some(task.abort_handle()));
        }
        self.0.signal.notify(tenant);
        Ok(())
    }

    /// Stops every delivery task (the server is stopping); none starts after this.
    pub fn shutdown(&self) {
        let mut running = self.0.running();
        running.closed = true;
        for (_, task) in running.tasks.drain() {
            if let Some(task) = task {
                task.abort();
            }
        }
    }

    /// Records in the registry whether `tenant` has endpoints.
    pub async fn mark(&self, tenant: TenantId, has_endpoints: bool) -> Result<(), ApiError> {
        {
            let mut running = self.0.running();
            if has_endpoints {
                running.marked.insert(tenant);
            } else {
                running.marked.remove(&tenant);
            }
        }
        self.0
            .master
            .write(move |tx| {
                tx.prepare_cached("UPDATE tenant SET webhooks = ?2 WHERE id = ?1")?
                    .execute(params![tenant, has_endpoints])?;
                Ok(())
            })
            .await
    }

    /// Sends one `webhook.test` event to endpoint `id` now and records how it went.
    pub async fn send_test(
        &self,
        tenant: TenantId,
        db: &Db,
        id: Uuid,
    ) -> Result<Option<Delivery>, ApiError> {
        let found = db
            .run(move |conn| {
                let url = store::get(conn, id)?.map(|w| w.url);
                Ok(url.zip(store::secrets(conn, id)?))
            })
            .await?;
        let Some((url, secrets)) = found else {
            return Ok(None);
        };
        let test_id = format!("msg_test_{}", Uuid::now_v7().simple());
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "webhook.test",
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "tenantId": tenant,
            "data": {"webhookId": id, "message": "A test event from AEZEN."},
        }))
        .map_err(|e| ApiError::internal("serialize webhook test", e))?;
        let outcome = self.0.post(&url, &test_id, &body, &secrets).await;
        db.write(move |tx| Ok(store::record_test(tx, id, &test_id, &outcome)?))
            .await
    }
}

impl Inner {
    /// The delivery task of endpoint `id`: until it is deleted or disabled.
    async fn run(self: Arc<Self>, tenant: TenantId, id: Uuid) {
        let mut wake = self.signal.subscribe(tenant);
        loop {
            wake.borrow_and_update();
            let db = match self.tenants.get(tenant).await {
                Ok(db) => db,
                Err(err) if err.code() == "tenant_busy" => {
                    tokio::time::sleep(UNAVAILABLE_RETRY).await;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(tenant = %tenant, webhook = %id, error = %err,
                        "webhook delivery stopped: the tenant's file is unavailable");
                    // A file that comes back (restored, imported) is looked at again.
                    let mut running = self.running();
                    running.opened.remove(&tenant);
                    running.tasks.remove(&id);
                    break;
                }
            };
            let work = db.write(move |tx| store::next_work(tx, tenant, id)).await;
            match work {
                Ok(Work::Stop) => {
                    if self.stop(&db, id).await {
                        break;
                    }
                }
                Ok(Work::Idle) => wait(&mut wake, IDLE_RECHECK).await,
                Ok(Work::WaitUntil(at)) => {
                    let ms = at.saturating_sub(Utc::now().timestamp_millis()).max(0);
                    wait(&mut wake, Duration::from_millis(ms.unsigned_abs())).await;
                }
                Ok(Work::Send(pending)) => self.deliver(tenant, &db, pending).await,
                Err(err) => {
                    tracing::warn!(tenant = %tenant, webhook = %id, error = %err,
                        "webhook delivery step failed; retrying");
                    tokio::time::sleep(UNAVAILABLE_RETRY).await;
                }
            }
        }
    }

    /// Leaves the running set; false if the endpoint was enabled again meanwhile (the task
    /// goes on, so that no enabled endpoint is left without one).
    async fn stop(&self, db: &Db, id: Uuid) -> bool {
        let handle = self.running().tasks.remove(&id).flatten();
        let enabled = db
            .run(move |conn| Ok(store::enabled(conn)?.contains(&id)))
            .await
            .unwrap_or(false);
        let mut running = self.running();
        if enabled && !running.closed && !running.tasks.contains_key(&id) {
            running.tasks.insert(id, handle);
            return false;
        }
        true
    }

    async fn deliver(&self, tenant: TenantId, db: &Db, pending: Pending) {
        let outcome = self
            .post(
                &pending.url,
                &pending.webhook_id,
                &pending.body,
                &pending.secrets,
            )
            .await;
        let retry = self.retry;
        let recorded = db
            .write(move |tx| Ok(store::record(tx, &pending, &outcome, retry)?))
            .await;
        match recorded {
            Ok(true) => tracing::warn!(tenant = %tenant, "webhook endpoint disabled after failing"),
            Ok(false) => {}
            Err(err) => tracing::error!(tenant = %tenant, error = %err,
                "webhook delivery not recorded (it may be sent again, with the same webhook-id)"),
        }
    }

    /// One signed POST; never an error, always an outcome to log.
    async fn post(&self, url: &str, id: &str, body: &[u8], secrets: &Secrets) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| {
            self.metrics.webhook_delivery(false);
            Outcome {
                latency_ms: elapsed_ms(started),
                error: Some(error),
                ..Outcome::default()
            }
        };
        // Address literals bypass the resolver: check them here, at every delivery.
        if let Err(refused) = self.guard.check_url(url) {
            return failed(refused);
        }
        let timestamp = Utc::now().timestamp();
        let signature = match sign(secrets, id, timestamp, body) {
            Ok(signature) => signature,
            Err(err) => return failed(format!("cannot sign: {err}")),
        };
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return failed(describe(&err)),
        };
        let status = response.status();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        let error = if status.is_redirection() {
            Some(format!("answered {status}: redirects are not followed"))
        } else if !status.is_success() {
            Some(format!("answered {status}"))
        } else {
            None
        };
        self.metrics.webhook_delivery(error.is_none());
        Outcome {
            status_code: Some(status.as_u16()),
            latency_ms: elapsed_ms(started),
            excerpt: (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned()),
            error,
        }
    }
}

/// Waits for the tenant's next commit, or `at_most`.
async fn wait(wake: &mut tokio::sync::watch::Receiver<()>, at_most: Duration) {
    tokio::select! {
        changed = wake.changed() => {
            if changed.is_err() {
                tokio::time::sleep(at_most).await;
            }
        }
        () = tokio::time::sleep(at_most) => {}
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The `webhook-signature` header: `v1,<signature>` with the current secret, and during a
/// rotation's overlap the previous one's too, space-separated (the spec's form).
pub fn sign(
    secrets: &Secrets,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, standardwebhooks::WebhookError> {
    let mut signatures =
        vec![standardwebhooks::Webhook::new(&secrets.current)?.sign(id, timestamp, body)?];
    if let Some(previous) = &secrets.previous {
        signatures.push(standardwebhooks::Webhook::new(previous)?.sign(id, timestamp, body)?);
    }
    Ok(signatures.join(" "))
}

/// A failed request, with its causes (the guard's refusal is one of them).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_secrets_sign_during_an_overlap_and_each_verifies() {
        let (new, old) = (super::super::new_secret(), super::super::new_secret());
        let secrets = Secrets {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let now = Utc::now().timestamp();
        let header = sign(&secrets, "msg_1", now, b"{\"a\":1}").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", header.parse().unwrap());
        for secret in [new, old] {
            standardwebhooks::Webhook::new(&secret)
                .unwrap()
                .verify(b"{\"a\":1}", &headers)
                .unwrap();
        }
    }
}
