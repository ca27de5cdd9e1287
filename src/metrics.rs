//! Counters exported at `GET /api/metrics` in the OpenMetrics text format (which Prometheus
//! reads). README's "Metrics" section lists every metric.
//!
//! Each application owns its own registry (prometheus-client, no global recorder), so several
//! servers in one process — as in the test suite — never mix their counts. Two kinds of
//! figures:
//! - counted where they happen, through the handles of [`Metrics`] (tenant opens, HTTP
//!   requests, messages stored, …);
//! - read from the services at each scrape ([`Scrape`]: sessions by state, the outbox, backup
//!   stamps), which keep them anyway. They are encoded from a registry built for that one
//!   scrape, so a tenant that is gone leaves no series behind and two scrapes at once cannot
//!   see each other's half-written values.
//!
//! This module knows no service: the `/api/metrics` handler gathers the [`Scrape`].

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The metric name prefix: every metric is `aezen_…`.
const PREFIX: &str = "aezen";

/// Request latency buckets, in seconds: from a cached read (well under a millisecond) to a
/// password hash or a cold tenant open under load (seconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of a request that no API route matched (the web inbox's pages and
/// assets, unknown paths): one series for all of them, however many paths there are.
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Tenant pools opened (cache misses that succeeded).
    pub tenant_opens: Counter,
    /// Tenant pools checkpointed and released by the closer after leaving the cache (the file
    /// closes once no request holds the pool any more).
    pub tenant_closes: Counter,
    /// Tenant files created (provisioning).
    pub tenant_provisions: Counter,
    /// Tenant files whose schema the migration runner changed.
    pub tenant_migrations: Counter,
    /// Login or sign-up attempts refused by the rate limiter.
    pub rate_limited: Counter,
    /// Inbound WhatsApp events (messages, receipts) stored, and the transactions that stored
    /// them: their ratio is the ingest batch size.
    pub ingest_events: Counter,
    pub ingest_transactions: Counter,
    /// New messages WhatsApp delivered and ingest stored (a redelivery is not counted).
    pub messages_in: Counter,
    /// HTTP connections open now.
    pub connections_open: Gauge,
    /// HTTP connections closed at once for being over a connection cap.
    pub connections_refused: Counter,
    http_requests: Family<RequestLabels, Counter>,
    http_durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    webhook_deliveries: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let tenant_opens = Counter::default();
        let tenant_closes = Counter::default();
        let tenant_provisions = Counter::default();
        let tenant_migrations = Counter::default();
        let rate_limited = Counter::default();
        let ingest_events = Counter::default();
        let ingest_transactions = Counter::default();
        let messages_in = Counter::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        let http_requests = Family::default();
        let webhook_deliveries = Family::<OutcomeLabel, Counter>::default();
        for outcome in ["delivered", "failed"] {
            drop(webhook_deliveries.get_or_create(&OutcomeLabel { outcome }));
        }
        let http_durations: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status (Socket.IO's own \
             transport is not counted)",
            http_requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response head, by method and route template",
            Unit::Seconds,
            http_durations.clone(),
        );
        registry.register(
            "connections_open",
            "HTTP connections open now",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "HTTP connections closed at once for being over --max-connections or --max-connections-per-ip",
            connections_refused.clone(),
        );
        registry.register(
            "messages_in",
            "New messages WhatsApp delivered and AEZEN stored, from contacts and from the \
             linked phone itself (a redelivered message is not counted)",
            messages_in.clone(),
        );
        registry.register(
            "ingest_events",
            "Inbound WhatsApp events stored",
            ingest_events.clone(),
        );
        registry.register(
            "ingest_transactions",
            "Transactions that stored inbound WhatsApp events",
            ingest_transactions.clone(),
        );
        registry.register(
            "tenant_opens",
            "Tenant database pools opened",
            tenant_opens.clone(),
        );
        registry.register(
            "tenant_closes",
            "Tenant database pools closed after leaving the cache",
            tenant_closes.clone(),
        );
        registry.register(
            "tenant_provisions",
            "Tenant database files created",
            tenant_provisions.clone(),
        );
        registry.register(
            "tenant_migrations",
            "Tenant database files migrated",
            tenant_migrations.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered (the endpoint answered 2xx) or \
             failed (anything else: an error status, a timeout, a refused address); tests \
             included",
            webhook_deliveries.clone(),
        );
        registry.register(
            "auth_rate_limited",
            "Login or sign-up attempts refused by the rate limiter",
            rate_limited.clone(),
        );
        Self {
            registry: Arc::new(registry),
            tenant_opens,
            tenant_closes,
            tenant_provisions,
            tenant_migrations,
            rate_limited,
            ingest_events,
            ingest_transactions,
            messages_in,
            connections_open,
            connections_refused,
            http_requests,
            http_durations,
            webhook_deliveries,
        }
    }

    /// Counts one webhook delivery attempt.
    pub fn webhook_delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.webhook_deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Counts one answered HTTP request and its latency. `route` is the template the router
    /// matched, if any; it is kept as is (its text is shared with the router, not copied).
    pub fn http_request(
        &self,
        method: &Method,
        route: Option<MatchedPath>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let labels = RouteLabels {
            method: method_label(method),
            route: Route(route),
        };
        self.http_durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let labels = RequestLabels {
            method: labels.method,
            route: labels.route,
            status: status.as_u16(),
        };
        self.http_requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text exposition: every counter, then the figures of `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &scrape.registry());
        let _ = encode_eof(&mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What the services report at one scrape (gathered by the `/api/metrics` handler).
#[derive(Debug, Default)]
pub struct Scrape {
    /// Tenant databases open now.
    pub open_tenants: u64,
    /// WhatsApp sessions per state (every state, zero or not), among the tenants the session
    /// manager has seen since start-up.
    pub sessions: Vec<(&'static str, u64)>,
    /// Messages `pending` in the outbox (see `chat::outbox::OutboxCounts::pending`).
    pub outbox_pending: u64,
    /// Messages the outbox handed to WhatsApp since start-up: accepted, and refused for good.
    pub messages_sent: u64,
    pub messages_failed: u64,
    /// Each backed-up tenant's id and the Unix time (seconds) of its last backup.
    pub backups: Vec<(String, i64)>,
}

impl Scrape {
    /// A registry of this scrape's figures alone (built anew each scrape).
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "tenant_pools_cached",
            "Tenant databases currently open",
            ConstGauge::new(saturating_i64(self.open_tenants)),
        );
        let sessions = Family::<StateLabel, Gauge>::default();
        for &(state, count) in &self.sessions {
            sessions
                .get_or_create(&StateLabel { state })
                .set(saturating_i64(count));
        }
        registry.register(
            "whatsapp_sessions",
            "WhatsApp sessions by state, among the tenants whose session was started or \
             reported since start-up (a tenant that never linked is not counted)",
            sessions,
        );
        registry.register(
            "outbox_pending",
            "Messages accepted and not yet handed to WhatsApp (status pending, those being \
             sent included), over the tenants opened since start-up; each tenant's figure is \
             counted whenever its outbox looks at its queue (a send, a session connecting, the \
             tenant's first open) and lowered as messages go out",
            ConstGauge::new(saturating_i64(self.outbox_pending)),
        );
        let out = Family::<OutcomeLabel, Counter>::default();
        for (outcome, count) in [
            ("sent", self.messages_sent),
            ("failed", self.messages_failed),
        ] {
            out.get_or_create(&OutcomeLabel { outcome }).inc_by(count);
        }
        registry.register(
            "messages_out",
            "Messages the outbox handed to WhatsApp since start-up, by outcome: sent (WhatsApp \
             took it) or failed (WhatsApp refused it for good, e.g. a number not on WhatsApp)",
            out,
        );
        let backups = Family::<TenantLabel, Gauge>::default();
        for (tenant, at) in &self.backups {
            backups
                .get_or_create(&TenantLabel {
                    tenant: tenant.clone(),
                })
                .set(*at);
        }
        registry.register_with_unit(
            "tenant_last_backup_timestamp",
            "When each tenant's file was last backed up by `aezen backup`, as Unix time; its \
             age is time() - this (a tenant never backed up has no series)",
            Unit::Seconds,
            backups,
        );
        registry
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The method as a label: the standard ones by name, anything else as `other` (a client
/// chooses the method, and a label must not take whatever it sends).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template a request matched (`/api/conversations/{id}/messages`), or
/// [`UNMATCHED`]. Never the request's own path: that would make a series per conversation.
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_labelled_by_route_template_and_one_label_stands_for_every_unmatched_path() {
        let metrics = Metrics::new();
        for _ in 0..2 {
            metrics.http_request(
                &Method::GET,
                None,
                StatusCode::NOT_FOUND,
                Duration::from_millis(3),
            );
        }
        metrics.http_request(
            &Method::from_bytes(b"BREW").unwrap(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            Duration::from_micros(200),
        );
        let text = metrics.render(&Scrape::default());
        assert!(
            text.contains(
                r#"aezen_http_requests_total{method="GET",route="unmatched",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"aezen_http_requests_total{method="other",route="unmatched",status="405"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"aezen_http_request_duration_seconds_bucket{le="0.005",method="GET",route="unmatched"} 2"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_scrape_shows_only_what_it_was_given() {
        let metrics = Metrics::new();
        let scrape = Scrape {
            backups: vec![("t-1".to_owned(), 1_700_000_000)],
            ..Scrape::default()
        };
        let text = metrics.render(&scrape);
        assert!(
            text.contains(r#"aezen_tenant_last_backup_timestamp_seconds{tenant="t-1"} 1700000000"#),
            "{text}"
        );
        let text = metrics.render(&Scrape::default());
        assert!(
            !text.contains("t-1"),
            "a tenant no longer reported leaves no series: {text}"
        );
    }
}
