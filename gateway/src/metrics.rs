//! Every metric of the gateway, declared in one place with its help text.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Buckets of the waiting room's two waits, announced and actual, seconds: the same, so the
/// dashboard can set one beside the other.
const WAIT_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The gateway's series.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub http_requests_total: IntCounterVec,
    /// Request latency by route and status; buckets resolve the SLOs (p50 browse < 100 ms, p99 checkout < 2 s).
    pub http_request_duration_seconds: HistogramVec,
    /// Hold requests by outcome (created, replayed, unavailable, invalid...).
    pub holds_total: IntCounterVec,
    /// Cache lookups by cache (event, venue, seatmap) and result (hit, miss).
    pub cache_total: IntCounterVec,
    /// Commits answered, by outcome (paid, oversold).
    pub orders_total: IntCounterVec,
    /// Payment webhooks, by what settling them did.
    pub webhooks_total: IntCounterVec,
    /// Waiting-room calls, by operation (join, poll).
    pub queue_total: IntCounterVec,
    /// Waiting-room polls answered, by where the answer came from (memory, redis).
    pub queue_polls_total: IntCounterVec,
    /// Requests refused by a rate limit, by reason (ip, user).
    pub rate_limited_total: IntCounterVec,
    /// Buyers waiting in an event's room, at the last call that looked (by event).
    pub queue_waiting: prometheus::IntGaugeVec,
    /// Buyers admitted so far by an event's room (its rate is the admission rate, by event).
    pub queue_admitted: prometheus::IntGaugeVec,
    /// The wait announced to each buyer joining a room, seconds.
    pub queue_expected_wait_seconds: prometheus::Histogram,
    /// The wait each buyer actually had, joining to first seen admitted, seconds.
    pub queue_wait_seconds: prometheus::Histogram,
    /// Charges, by what the provider answered (succeeded, declined, requires_action, timeout, error).
    pub payments_total: IntCounterVec,
    /// The share of their rate the waiting rooms admit at (1: full; lower while commits are
    /// slower than the pace target, see [`crate::pace`]).
    pub admission_pace: prometheus::Gauge,
    /// Connections open now, by listener (public, admin).
    pub connections_open: prometheus::IntGaugeVec,
    /// Connections answered 503 and closed at the connection cap, by listener.
    pub connections_refused_total: IntCounterVec,
    /// Connections closed because a request head took longer than the header-read timeout
    /// (slow clients, or idle kept-alive ones), by listener.
    pub connections_timed_out_total: IntCounterVec,
    /// Holds and commits answered 503 `overloaded` by load shedding, by class.
    pub shed_total: IntCounterVec,
    /// The adaptive concurrency limit now, by class (see [`crate::shed`]).
    pub concurrency_limit: prometheus::IntGaugeVec,
    /// Postgres pool saturation, read when scraped.
    pub db_pool: catalog::pool::PoolGauge,
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests_total = IntCounterVec::new(
            Opts::new(
                "gateway_http_requests_total",
                "HTTP requests served, by route and status",
            ),
            &["route", "status"],
        )?;
        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "gateway_http_request_duration_seconds",
                "HTTP request latency, by route and status",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["route", "status"],
        )?;
        let holds_total = IntCounterVec::new(
            Opts::new("gateway_holds_total", "Hold requests, by outcome"),
            &["outcome"],
        )?;
        let orders_total = IntCounterVec::new(
            Opts::new("gateway_orders_total", "Commits answered, by outcome"),
            &["outcome"],
        )?;
        let webhooks_total = IntCounterVec::new(
            Opts::new("gateway_webhooks_total", "Payment webhooks, by outcome"),
            &["outcome"],
        )?;
        let queue_total = IntCounterVec::new(
            Opts::new(
                "gateway_queue_requests_total",
                "Waiting-room calls, by operation",
            ),
            &["op"],
        )?;
        let queue_polls_total = IntCounterVec::new(
            Opts::new(
                "gateway_queue_polls_total",
                "Waiting-room polls answered, by source (memory: the gateway's board; redis)",
            ),
            &["source"],
        )?;
        for source in ["memory", "redis"] {
            queue_polls_total.with_label_values(&[source]);
        }
        let rate_limited_total = IntCounterVec::new(
            Opts::new(
                "gateway_rate_limited_total",
                "Requests refused by a rate limit, by reason",
            ),
            &["reason"],
        )?;
        let admission_pace = prometheus::Gauge::new(
            "gateway_admission_pace",
            "Share of their rate the waiting rooms admit at (lower while commits are slow)",
        )?;
        let queue_waiting = prometheus::IntGaugeVec::new(
            Opts::new(
                "gateway_queue_waiting",
                "Buyers waiting in an event's room (last look)",
            ),
            &["event"],
        )?;
        let queue_admitted = prometheus::IntGaugeVec::new(
            Opts::new(
                "gateway_queue_admitted",
                "Buyers admitted so far by an event's room",
            ),
            &["event"],
        )?;
        let queue_expected_wait_seconds = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "gateway_queue_expected_wait_seconds",
                "The wait announced to buyers joining a room",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        let queue_wait_seconds = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "gateway_queue_wait_seconds",
                "The wait buyers actually had in a room: joining (or the opening) to first seen admitted",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        let cache_total = IntCounterVec::new(
            Opts::new(
                "gateway_cache_lookups_total",
                "Cache lookups, by cache and result",
            ),
            &["cache", "result"],
        )?;
        let payments_total = IntCounterVec::new(
            Opts::new(
                "gateway_payments_total",
                "Charges, by what the payment provider answered",
            ),
            &["outcome"],
        )?;
        let connections_open = prometheus::IntGaugeVec::new(
            Opts::new(
                "gateway_connections_open",
                "Connections open now, by listener",
            ),
            &["listener"],
        )?;
        let connections_refused_total = IntCounterVec::new(
            Opts::new(
                "gateway_connections_refused_total",
                "Connections answered 503 and closed at the connection cap, by listener",
            ),
            &["listener"],
        )?;
        let connections_timed_out_total = IntCounterVec::new(
            Opts::new(
                "gateway_connections_timed_out_total",
                "Connections closed for a request head slower than the header-read timeout, by listener",
            ),
            &["listener"],
        )?;
        let shed_total = IntCounterVec::new(
            Opts::new(
                "gateway_shed_total",
                "Requests answered 503 overloaded by load shedding, by class (hold, commit)",
            ),
            &["class"],
        )?;
        let concurrency_limit = prometheus::IntGaugeVec::new(
            Opts::new(
                "gateway_concurrency_limit",
                "The adaptive concurrency limit of load shedding now, by class (hold, commit)",
            ),
            &["class"],
        )?;
        for class in ["hold", "commit"] {
            shed_total.with_label_values(&[class]);
            concurrency_limit.with_label_values(&[class]);
        }
        registry.register(Box::new(shed_total.clone()))?;
        registry.register(Box::new(concurrency_limit.clone()))?;
        for listener in ["public", "admin"] {
            connections_open.with_label_values(&[listener]);
            connections_refused_total.with_label_values(&[listener]);
            connections_timed_out_total.with_label_values(&[listener]);
        }
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(connections_refused_total.clone()))?;
        registry.register(Box::new(connections_timed_out_total.clone()))?;
        let db_pool = catalog::pool::PoolGauge::new("gateway")?;
        registry.register(db_pool.collector())?;
        registry.register(Box::new(payments_total.clone()))?;
        registry.register(Box::new(coordinator::scripts::script_metrics()))?;
        // Series an alert divides by or waits for exist from the start (at 0), so the alert
        // sees "none yet" rather than "no data".
        for outcome in [
            "succeeded",
            "declined",
            "requires_action",
            "timeout",
            "error",
        ] {
            payments_total.with_label_values(&[outcome]);
        }
        for outcome in ["paid", "oversold"] {
            orders_total.with_label_values(&[outcome]);
        }
        for outcome in [
            "created",
            "replayed",
            "seats_unavailable",
            "dependency_unavailable",
        ] {
            holds_total.with_label_values(&[outcome]);
        }
        for reason in ["ip", "user"] {
            rate_limited_total.with_label_values(&[reason]);
        }
        registry.register(Box::new(holds_total.clone()))?;
        registry.register(Box::new(cache_total.clone()))?;
        registry.register(Box::new(orders_total.clone()))?;
        registry.register(Box::new(webhooks_total.clone()))?;
        registry.register(Box::new(queue_total.clone()))?;
        registry.register(Box::new(queue_polls_total.clone()))?;
        registry.register(Box::new(rate_limited_total.clone()))?;
        registry.register(Box::new(admission_pace.clone()))?;
        registry.register(Box::new(queue_waiting.clone()))?;
        registry.register(Box::new(queue_admitted.clone()))?;
        registry.register(Box::new(queue_expected_wait_seconds.clone()))?;
        registry.register(Box::new(queue_wait_seconds.clone()))?;
        registry.register(Box::new(http_requests_total.clone()))?;
        registry.register(Box::new(http_request_duration_seconds.clone()))?;
        Ok(Self {
            registry,
            http_requests_total,
            http_request_duration_seconds,
            holds_total,
            cache_total,
            orders_total,
            webhooks_total,
            queue_total,
            queue_polls_total,
            rate_limited_total,
            admission_pace,
            queue_waiting,
            queue_admitted,
            queue_expected_wait_seconds,
            queue_wait_seconds,
            payments_total,
            connections_open,
            connections_refused_total,
            connections_timed_out_total,
            shed_total,
            concurrency_limit,
            db_pool,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
    }
}
