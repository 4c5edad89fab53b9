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
    /// Ticket scans by gate, verdict and mode (online, offline); their rate per minute is the
    /// gates' flow.
    pub checkins_total: IntCounterVec,
    /// Ticket transfers done.
    pub ticket_transfers_total: prometheus::IntCounter,
    /// Buyers who joined a waiting list (offers are the reconciler's series).
    pub waitlist_joins_total: prometheus::IntCounter,
    /// The gate labels seen so far: a gate id comes from a token or an upload, so past
    /// [`MAX_GATE_LABELS`] further gates are counted as `other` rather than growing the series
    /// without bound.
    gate_labels: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Registers `collector` and gives it back.
fn add<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// A counter family with these labels, each of `preset`'s label sets at 0 from the start (an
/// alert that divides by or waits for a series sees "none yet", not "no data").
fn counters(
    registry: &Registry,
    (name, help): (&str, &str),
    labels: &[&str],
    preset: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let family = add(registry, IntCounterVec::new(Opts::new(name, help), labels)?)?;
    for value in preset {
        family.with_label_values(&[value]);
    }
    Ok(family)
}

/// A gauge family with one label, each of `preset`'s values at 0 from the start.
fn gauges(
    registry: &Registry,
    (name, help): (&str, &str),
    label: &str,
    preset: &[&str],
) -> Result<prometheus::IntGaugeVec, prometheus::Error> {
    let family = add(
        registry,
        prometheus::IntGaugeVec::new(Opts::new(name, help), &[label])?,
    )?;
    for value in preset {
        family.with_label_values(&[value]);
    }
    Ok(family)
}

type HttpSeries = (IntCounterVec, HistogramVec, IntCounterVec, IntCounterVec);

/// Requests by route, their latency, cache lookups, rate-limit refusals.
fn http_series(registry: &Registry) -> Result<HttpSeries, prometheus::Error> {
    let requests = counters(
        registry,
        (
            "gateway_http_requests_total",
            "HTTP requests served, by route and status",
        ),
        &["route", "status"],
        &[],
    )?;
    let latency = add(
        registry,
        HistogramVec::new(
            HistogramOpts::new(
                "gateway_http_request_duration_seconds",
                "HTTP request latency, by route and status",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["route", "status"],
        )?,
    )?;
    let cache = counters(
        registry,
        (
            "gateway_cache_lookups_total",
            "Cache lookups, by cache and result",
        ),
        &["cache", "result"],
        &[],
    )?;
    let rate_limited = counters(
        registry,
        (
            "gateway_rate_limited_total",
            "Requests refused by a rate limit, by reason",
        ),
        &["reason"],
        &["ip", "user"],
    )?;
    Ok((requests, latency, cache, rate_limited))
}

/// Holds, commits, webhooks and charges, by outcome.
fn sale_series(
    registry: &Registry,
) -> Result<(IntCounterVec, IntCounterVec, IntCounterVec, IntCounterVec), prometheus::Error> {
    let holds = counters(
        registry,
        ("gateway_holds_total", "Hold requests, by outcome"),
        &["outcome"],
        &[
            "created",
            "replayed",
            "seats_unavailable",
            "dependency_unavailable",
        ],
    )?;
    let orders = counters(
        registry,
        ("gateway_orders_total", "Commits answered, by outcome"),
        &["outcome"],
        &["paid", "oversold"],
    )?;
    let webhooks = counters(
        registry,
        ("gateway_webhooks_total", "Payment webhooks, by outcome"),
        &["outcome"],
        &[],
    )?;
    let payments = counters(
        registry,
        (
            "gateway_payments_total",
            "Charges, by what the payment provider answered",
        ),
        &["outcome"],
        &[
            "succeeded",
            "declined",
            "requires_action",
            "timeout",
            "error",
        ],
    )?;
    Ok((holds, orders, webhooks, payments))
}

/// The waiting rooms' series.
struct RoomSeries {
    total: IntCounterVec,
    polls: IntCounterVec,
    pace: prometheus::Gauge,
    waiting: prometheus::IntGaugeVec,
    admitted: prometheus::IntGaugeVec,
    expected_wait: prometheus::Histogram,
    wait: prometheus::Histogram,
}

fn room_series(registry: &Registry) -> Result<RoomSeries, prometheus::Error> {
    let wait_histogram = |name: &str, help: &str| {
        prometheus::Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(WAIT_BUCKETS.to_vec()),
        )
    };
    Ok(RoomSeries {
        total: counters(
            registry,
            ("gateway_queue_requests_total", "Waiting-room calls, by operation"),
            &["op"],
            &[],
        )?,
        polls: counters(
            registry,
            (
                "gateway_queue_polls_total",
                "Waiting-room polls answered, by source (memory: the gateway's board; redis)",
            ),
            &["source"],
            &["memory", "redis"],
        )?,
        pace: add(
            registry,
            prometheus::Gauge::new(
                "gateway_admission_pace",
                "Share of their rate the waiting rooms admit at (lower while commits are slow)",
            )?,
        )?,
        waiting: gauges(
            registry,
            ("gateway_queue_waiting", "Buyers waiting in an event's room (last look)"),
            "event",
            &[],
        )?,
        admitted: gauges(
            registry,
            ("gateway_queue_admitted", "Buyers admitted so far by an event's room"),
            "event",
            &[],
        )?,
        expected_wait: add(
            registry,
            wait_histogram(
                "gateway_queue_expected_wait_seconds",
                "The wait announced to buyers joining a room",
            )?,
        )?,
        wait: add(
            registry,
            wait_histogram(
                "gateway_queue_wait_seconds",
                "The wait buyers actually had in a room: joining (or the opening) to first seen admitted",
            )?,
        )?,
    })
}

/// Connections open, refused at the cap and timed out, by listener.
fn connection_series(
    registry: &Registry,
) -> Result<(prometheus::IntGaugeVec, IntCounterVec, IntCounterVec), prometheus::Error> {
    const LISTENERS: &[&str] = &["public", "admin"];
    let open = gauges(
        registry,
        (
            "gateway_connections_open",
            "Connections open now, by listener",
        ),
        "listener",
        LISTENERS,
    )?;
    let refused = counters(
        registry,
        (
            "gateway_connections_refused_total",
            "Connections answered 503 and closed at the connection cap, by listener",
        ),
        &["listener"],
        LISTENERS,
    )?;
    let timed_out = counters(
        registry,
        (
            "gateway_connections_timed_out_total",
            "Connections closed for a request head slower than the header-read timeout, by listener",
        ),
        &["listener"],
        LISTENERS,
    )?;
    Ok((open, refused, timed_out))
}

/// Load shedding's refusals and limits, by class.
fn shed_series(
    registry: &Registry,
) -> Result<(IntCounterVec, prometheus::IntGaugeVec), prometheus::Error> {
    const CLASSES: &[&str] = &["hold", "commit"];
    let shed = counters(
        registry,
        (
            "gateway_shed_total",
            "Requests answered 503 overloaded by load shedding, by class (hold, commit)",
        ),
        &["class"],
        CLASSES,
    )?;
    let limit = gauges(
        registry,
        (
            "gateway_concurrency_limit",
            "The adaptive concurrency limit of load shedding now, by class (hold, commit)",
        ),
        "class",
        CLASSES,
    )?;
    Ok((shed, limit))
}

/// The most distinct gates `gateway_checkins_total` names; a venue has tens.
pub const MAX_GATE_LABELS: usize = 256;

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let (http_requests_total, http_request_duration_seconds, cache_total, rate_limited_total) =
            http_series(&registry)?;
        let (holds_total, orders_total, webhooks_total, payments_total) = sale_series(&registry)?;
        let room = room_series(&registry)?;
        let (connections_open, connections_refused_total, connections_timed_out_total) =
            connection_series(&registry)?;
        let (shed_total, concurrency_limit) = shed_series(&registry)?;
        let db_pool = catalog::pool::PoolGauge::new("gateway")?;
        registry.register(db_pool.collector())?;
        registry.register(Box::new(coordinator::scripts::script_metrics()))?;
        let checkins_total = add(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "gateway_checkins_total",
                    "Ticket scans, by gate, verdict (admitted, already_used, revoked, wrong_event, invalid) and mode (online, offline)",
                ),
                &["gate", "verdict", "mode"],
            )?,
        )?;
        let ticket_transfers_total = add(
            &registry,
            prometheus::IntCounter::new(
                "gateway_ticket_transfers_total",
                "Tickets transferred to another holder",
            )?,
        )?;
        let waitlist_joins_total = add(
            &registry,
            prometheus::IntCounter::new(
                "gateway_waitlist_joins_total",
                "Buyers who joined a sold-out event's waiting list",
            )?,
        )?;
        Ok(Self {
            registry,
            http_requests_total,
            http_request_duration_seconds,
            holds_total,
            cache_total,
            orders_total,
            webhooks_total,
            queue_total: room.total,
            queue_polls_total: room.polls,
            rate_limited_total,
            admission_pace: room.pace,
            queue_waiting: room.waiting,
            queue_admitted: room.admitted,
            queue_expected_wait_seconds: room.expected_wait,
            queue_wait_seconds: room.wait,
            payments_total,
            connections_open,
            connections_refused_total,
            connections_timed_out_total,
            shed_total,
            concurrency_limit,
            db_pool,
            checkins_total,
            ticket_transfers_total,
            waitlist_joins_total,
            gate_labels: std::sync::Mutex::default(),
        })
    }

    /// Counts one scan's verdict at `gate`.
    pub fn count_checkin(&self, gate: &str, verdict: &str, mode: &str) {
        let gate = {
            let mut seen = self
                .gate_labels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.contains(gate) {
                gate
            } else if seen.len() < MAX_GATE_LABELS {
                seen.insert(gate.to_owned());
                gate
            } else {
                "other"
            }
        };
        self.checkins_total
            .with_label_values(&[gate, verdict, mode])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
    }
}
