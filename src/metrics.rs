//! Counters exported at `GET /api/metrics` in Prometheus text format.
//!
//! Each application owns its own registry (prometheus-client, no global recorder), so several
//! servers in one process — as in the test suite — never mix their counts.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
    tenant_pools_cached: Gauge,
    /// Inbound WhatsApp events (messages, receipts) stored, and the transactions that stored
    /// them: their ratio is the ingest batch size.
    pub ingest_events: Counter,
    pub ingest_transactions: Counter,
    /// HTTP connections open now.
    pub connections_open: Gauge,
    /// HTTP connections closed at once for being over a connection cap.
    pub connections_refused: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("aezen");
        let tenant_opens = Counter::default();
        let tenant_closes = Counter::default();
        let tenant_provisions = Counter::default();
        let tenant_migrations = Counter::default();
        let rate_limited = Counter::default();
        let tenant_pools_cached = Gauge::default();
        let ingest_events = Counter::default();
        let ingest_transactions = Counter::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
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
            "auth_rate_limited",
            "Login or sign-up attempts refused by the rate limiter",
            rate_limited.clone(),
        );
        registry.register(
            "tenant_pools_cached",
            "Tenant databases currently open",
            tenant_pools_cached.clone(),
        );
        Self {
            registry: Arc::new(registry),
            tenant_opens,
            tenant_closes,
            tenant_provisions,
            tenant_migrations,
            rate_limited,
            tenant_pools_cached,
            ingest_events,
            ingest_transactions,
            connections_open,
            connections_refused,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, open_tenants: u64) -> String {
        self.tenant_pools_cached
            .set(i64::try_from(open_tenants).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
