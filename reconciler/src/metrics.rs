//! The reconciler's series, declared in one place: every labelled series is created at start
//! (a dashboard or an alert on `increase(...)` needs it at 0 before the first event).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

use crate::cursors::Retell;

/// The reconciler's series, declared in one place.
pub struct Metrics {
    registry: Registry,
    /// Reconciliation passes by loop (inventory, writer, sweep) and outcome (ok, error).
    pub passes_total: IntCounterVec,
    /// Seats added to Redis because the catalog had them and Redis did not.
    pub seats_reopened_total: IntCounterVec,
    /// Events on sale seen by the last pass.
    pub events_on_sale: IntGauge,
    /// Commits written, by outcome (paid, superseded, oversold, malformed).
    pub commits_total: IntCounterVec,
    /// Jobs per durable-writer transaction.
    pub batch_size: Histogram,
    /// Seconds per durable-writer step (read, write, commit, acknowledge).
    pub batch_seconds: Histogram,
    /// Seconds from a commit being queued to its durable write (the writer's lag).
    pub commit_lag_seconds: Histogram,
    /// Postgres pool saturation, read when scraped.
    pub db_pool: catalog::pool::PoolGauge,
    /// Commits queued and not yet written, read when scraped (a stalled writer shows here,
    /// not in the lag histogram, which only counts what was written).
    pub commit_backlog: IntGauge,
    /// Commits taken over from a writer that stopped.
    pub commits_claimed_total: IntCounterVec,
    /// Oversells refused by Postgres (the last guard). Anything but 0 pages someone.
    pub oversell_total: IntCounterVec,
    /// Expired holds swept, by seat.
    pub expirations_total: IntCounterVec,
    /// Audit rows copied to Postgres.
    pub audit_rows_total: IntCounterVec,
    /// Age of the oldest seat change not yet in Postgres at the last copy, seconds.
    pub audit_lag_seconds: prometheus::Gauge,
    /// Audit trails found to have lost entries before they were copied (the stream's length
    /// cap trimmed them during a long copy outage), each gap recorded in `audit_gaps`.
    pub audit_gaps_total: prometheus::IntCounter,
    /// Captured payments settled by reconciliation, by outcome.
    pub payments_settled_total: IntCounterVec,
    /// Sold seats Redis lacked and was told again.
    pub sales_repaired_total: IntCounterVec,
    /// Paid orders whose sale Redis was told again by a pass, by why it was.
    pub sales_retold_total: IntCounterVec,
    /// Waiting-list entries still waiting after the last offer pass, over every event.
    pub waitlist_waiting: IntGauge,
    /// Waiting-list offers by what became of them (offered, taken, lapsed).
    pub waitlist_offers_total: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let passes_total = counter(
            "reconciler_passes_total",
            "Passes, by loop and outcome",
            "outcome",
        )?;
        let seats_reopened_total = counter(
            "reconciler_seats_reopened_total",
            "Seats loaded into Redis from the catalog because Redis lacked them",
            "reason",
        )?;
        let commits_total = counter(
            "reconciler_commits_total",
            "Commits written, by outcome",
            "outcome",
        )?;
        let commits_claimed_total = counter(
            "reconciler_commits_claimed_total",
            "Commits taken over from a writer that stopped",
            "reason",
        )?;
        let oversell_total = counter(
            "reconciler_oversell_total",
            "Sales refused by the live-sale unique index (an oversell caught by the last guard)",
            "event",
        )?;
        let expirations_total = counter(
            "reconciler_expirations_total",
            "Expired hold seats swept",
            "reason",
        )?;
        let audit_rows_total = counter(
            "reconciler_audit_rows_total",
            "Audit rows copied to Postgres",
            "action",
        )?;
        let payments_settled_total = counter(
            "reconciler_payments_settled_total",
            "Captured payments without an order, settled, by outcome",
            "outcome",
        )?;
        let sales_repaired_total = counter(
            "reconciler_sales_repaired_total",
            "Sold seats that Redis lacked and was told again",
            "reason",
        )?;
        let sales_retold_total = counter(
            "reconciler_sales_retold_total",
            "Paid orders whose sale a pass told Redis again (first pass, or Redis may have lost writes)",
            "reason",
        )?;
        let events_on_sale = IntGauge::new(
            "reconciler_events_on_sale",
            "Events on sale at the last pass",
        )?;
        registry.register(Box::new(events_on_sale.clone()))?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "reconciler_batch_size",
                "Jobs per durable-writer transaction",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
            ]),
        )?;
        registry.register(Box::new(batch_size.clone()))?;
        let batch_seconds = Histogram::with_opts(HistogramOpts::new(
            "reconciler_batch_seconds",
            "Seconds per durable-writer batch (read, write, commit, acknowledge)",
        ))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        let commit_lag_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "reconciler_commit_lag_seconds",
                "Seconds from a commit being queued to its durable write",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ]),
        )?;
        registry.register(Box::new(commit_lag_seconds.clone()))?;
        let commit_backlog = IntGauge::new(
            "reconciler_commit_queue_backlog",
            "Commits queued and not yet durably written (at the last scrape)",
        )?;
        registry.register(Box::new(commit_backlog.clone()))?;
        let db_pool = catalog::pool::PoolGauge::new("reconciler")?;
        registry.register(db_pool.collector())?;
        registry.register(Box::new(coordinator::scripts::script_metrics()))?;
        // An alert on `increase(reconciler_oversell_total[5m]) > 0` needs the series at 0 first.
        oversell_total.with_label_values(&["any"]);
        for outcome in ["paid", "superseded", "oversold", "expired", "malformed"] {
            commits_total.with_label_values(&[outcome]);
        }
        // Dashboards chart these from the start, not from the first event of each kind.
        for outcome in [
            "paid",
            "queued",
            "refunded",
            "notcaptured",
            "busy",
            "foreign",
        ] {
            payments_settled_total.with_label_values(&[outcome]);
        }
        expirations_total.with_label_values(&["ttl"]);
        for reason in ["recent", "redis_lost_state", "sold_missing_in_redis"] {
            sales_repaired_total.with_label_values(&[reason]);
        }
        for reason in Retell::ALL {
            sales_retold_total.with_label_values(&[reason.label()]);
        }
        commits_claimed_total.with_label_values(&["writer_stopped"]);
        for reason in ["missing_in_redis", "redis_lost_state"] {
            seats_reopened_total.with_label_values(&[reason]);
        }
        let audit_lag_seconds = prometheus::Gauge::new(
            "reconciler_audit_lag_seconds",
            "Age of the oldest seat change not yet copied to Postgres at the last pass",
        )?;
        registry.register(Box::new(audit_lag_seconds.clone()))?;
        let audit_gaps_total = prometheus::IntCounter::new(
            "reconciler_audit_gaps_total",
            "Audit trails that lost entries before they reached Postgres (see the audit_gaps table)",
        )?;
        registry.register(Box::new(audit_gaps_total.clone()))?;
        let waitlist_waiting = IntGauge::new(
            "reconciler_waitlist_waiting",
            "Waiting-list entries still waiting after the last offer pass (every event)",
        )?;
        registry.register(Box::new(waitlist_waiting.clone()))?;
        let waitlist_offers_total = counter(
            "reconciler_waitlist_offers_total",
            "Waiting-list offers, by what became of them",
            "outcome",
        )?;
        for outcome in ["offered", "taken", "lapsed"] {
            waitlist_offers_total.with_label_values(&[outcome]);
        }
        Ok(Self {
            registry,
            passes_total,
            seats_reopened_total,
            events_on_sale,
            commits_total,
            batch_size,
            batch_seconds,
            commit_lag_seconds,
            db_pool,
            commit_backlog,
            commits_claimed_total,
            oversell_total,
            expirations_total,
            audit_rows_total,
            audit_lag_seconds,
            audit_gaps_total,
            payments_settled_total,
            sales_repaired_total,
            sales_retold_total,
            waitlist_waiting,
            waitlist_offers_total,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
    }
}
