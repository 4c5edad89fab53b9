//! The reconciler daemon. Several may run at once (for failover and scale); none does work
//! another is doing, and work a dead one held passes to the others:
//!
//! - **durable writer** ([`orders::writer`]): the commit queue is read through one Redis consumer
//!   group (each entry goes to one writer; entries a dead writer held are claimed after an idle
//!   time) and written to Postgres in batches (group commit);
//! - **expiry sweeper** (`lua/sweep.lua`): forgets expired holds, records each expiry in the
//!   audit trail, announces the section so seat-map caches refresh;
//! - **audit copier** ([`audit`]): copies each section's audit stream to Postgres; each stream's
//!   cursor row is taken with `FOR UPDATE SKIP LOCKED`, and moved in the same transaction as the
//!   rows it copied (exactly once);
//! - **reconciliation**: every event on sale has its inventory in Redis; sold seats in Postgres
//!   are sold in Redis; every captured payment ends as an order or a refund
//!   ([`orders::settle::settle_pages`]).

pub mod audit;

use std::sync::Arc;
use std::time::Duration;

use coordinator::open::OpenOutcome;
use coordinator::{Coordinator, EventId, HoldId, SeatId, SectionId};
use orders::settle::Settled;
use orders::writer::WriterConfig;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

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
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
    }
}

/// What one inventory pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Events on sale.
    pub events: usize,
    /// Seats that were missing in Redis and were loaded.
    pub seats_reopened: u64,
}

/// How long after its durable write a sale must be marked in Redis before the inventory pass
/// counts it as missing there (the writer marks it right after its commit).
pub const SOLD_MARK_MARGIN: Duration = Duration::from_secs(30);

/// One pass: every event on sale is open in Redis with every catalog seat; an event whose
/// inventory Redis had lost also gets its sold seats told again.
pub async fn reconcile_inventory(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
    counts: &catalog::SectionCounts,
) -> Result<PassReport, catalog::CatalogError> {
    let events = catalog::events_on_sale(db).await?;
    let mut report = PassReport {
        events: events.len(),
        ..PassReport::default()
    };
    for event in &events {
        match catalog::ensure_in_coordinator(db, coordinator, event, counts).await? {
            Some(OpenOutcome::Opened { seats_added, .. }) => {
                if seats_added > 0 {
                    tracing::warn!(%event, seats_added, "Redis lacked seats of an event on sale; reloaded");
                    metrics
                        .seats_reopened_total
                        .with_label_values(&["missing_in_redis"])
                        .inc_by(seats_added);
                    let repaired = repair_sales(db, coordinator, Some(event), None).await?;
                    metrics
                        .sales_repaired_total
                        .with_label_values(&["redis_lost_state"])
                        .inc_by(repaired.changed);
                }
                report.seats_reopened += seats_added;
            }
            Some(other) => {
                tracing::error!(%event, ?other, "catalog inventory refused by the coordinator")
            }
            None => {}
        }
        // Sales by content, whatever their age: Redis's sold marks per section against
        // Postgres's live sales, and the event's sales told again only where Redis has fewer.
        // Sales younger than the margin are left out, so a write on its way to Redis during a
        // sale does not make every pass tell the event's every sale again.
        let sold = catalog::sold_per_section(db, event, SOLD_MARK_MARGIN).await?;
        if sold.is_empty() {
            continue;
        }
        let sections: Vec<SectionId> = sold.iter().map(|(s, _)| s.clone()).collect();
        let marked = coordinator.sold_counts(event, &sections).await?;
        let missing = sold
            .iter()
            .zip(&marked)
            .any(|((_, in_postgres), in_redis)| in_redis < in_postgres);
        if missing {
            let repaired = repair_sales(db, coordinator, Some(event), None).await?;
            tracing::warn!(%event, seats = repaired.changed, "Redis lacked sales Postgres has; marked again");
            metrics
                .sales_repaired_total
                .with_label_values(&["sold_missing_in_redis"])
                .inc_by(repaired.changed);
        }
    }
    metrics.events_on_sale.set(events.len() as i64);
    Ok(report)
}

/// Tells Redis again about live sales (of one event, or of orders younger than `within`): a sale
/// Postgres has and Redis lacks is marked sold, and its seats are counted again against the
/// buyer's ticket limit (that count is soft state too: without this, a failover that lost it
/// would let the buyer go over the limit). The orders are read again afterwards: one refunded
/// while the pass told Redis of it gets its seats back. Returns the seats that changed in Redis.
pub async fn repair_sales(
    db: &PgPool,
    coordinator: &Coordinator,
    event: Option<&EventId>,
    within: Option<Duration>,
) -> Result<Repaired, catalog::CatalogError> {
    let rows: Vec<(uuid::Uuid, String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT o.id, o.event_id, o.hold_id::text, o.user_id, array_agg(s.seat_id ORDER BY s.seat_id)
         FROM orders o JOIN sold_seats s ON s.order_id = o.id
         WHERE o.status = 'paid' AND s.live
           AND o.event_id IN (SELECT id FROM events WHERE status IN ('on_sale', 'frozen'))
           AND ($1::text IS NULL OR o.event_id = $1)
           AND ($2::double precision IS NULL OR o.created_at > now() - make_interval(secs => $2))
         GROUP BY o.id, o.event_id, o.hold_id, o.user_id",
    )
    .bind(event.map(|e| e.to_string()))
    .bind(within.map(|w| w.as_secs_f64()))
    .fetch_all(db)
    .await?;
    let mut changed = 0;
    let told = rows.len() as u64;
    let mut sales = Vec::with_capacity(rows.len());
    for (order, event, hold, user, seats) in rows {
        let (Ok(event), Ok(hold), Ok(user)) = (
            EventId::parse(&event),
            HoldId::parse(&hold),
            coordinator::UserId::parse(&user),
        ) else {
            continue;
        };
        let seats: Vec<SeatId> = seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
        match coordinator
            .repair_sale(&event, &hold, Some(&user), &seats)
            .await?
        {
            coordinator::sell::SellOutcome::Sold { newly_sold } => changed += newly_sold,
            other => {
                tracing::error!(%event, %hold, ?other, "a live sale Redis refuses to mark sold")
            }
        }
        sales.push(orders::refund::ToldSale {
            order,
            event,
            hold,
            user: Some(user),
            seats,
        });
    }
    // A refund that committed after the read above may have returned its seats before they were
    // told sold here: read again, and return them again.
    orders::refund::untell_unpaid(db, coordinator, &sales, "system:reconciler")
        .await
        .map_err(|e| match e {
            orders::OrdersError::Db(e) => catalog::CatalogError::Postgres(e),
            orders::OrdersError::Coordinator(e) => catalog::CatalogError::Coordinator(e),
            other => catalog::CatalogError::Inconsistent(other.to_string()),
        })?;
    Ok(Repaired { told, changed })
}

/// What [`repair_sales`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Repaired {
    /// Paid orders whose sale Redis was told again.
    pub told: u64,
    /// Seats Redis lacked (marked sold by this repair).
    pub changed: u64,
}

/// The daemon's tuning.
#[derive(Debug, Clone)]
pub struct Config {
    /// Inventory, payments and sold-seat repair, every this long.
    pub interval: Duration,
    /// Expiry sweep and audit copy, every this long.
    pub sweep_interval: Duration,
    /// The durable writer.
    pub writer: WriterConfig,
    /// Captured payments without an order are settled once this old.
    pub payment_grace: Duration,
    /// Most pages of the provider's listing of captured payments a pass reads.
    pub payment_pages_per_pass: usize,
}

impl Config {
    /// From the settings; `consumer` names this process in the writers' group.
    pub fn from_settings(s: &settings::Reconciler, consumer: String) -> Self {
        Self {
            interval: Duration::from_millis(s.interval_ms),
            sweep_interval: Duration::from_millis(s.sweep_interval_ms),
            writer: WriterConfig {
                consumer,
                batch: s.writer_batch.max(1),
                stale_after: Duration::from_millis(s.writer_stale_after_ms),
                pause_in_batch: Duration::from_millis(s.writer_pause_in_batch_ms),
            },
            payment_grace: Duration::from_millis(s.payment_grace_ms),
            payment_pages_per_pass: s.payment_pages_per_pass.max(1),
        }
    }
}

/// The daemon's HTTP routes: `/healthz` (alive), `/readyz` (both stores answer), `/metrics`
/// (pool and queue gauges read at each scrape).
pub fn routes(
    metrics: Arc<Metrics>,
    db: PgPool,
    coordinator: Arc<Coordinator>,
) -> impl warp::Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    let state = warp::any().map(move || (metrics.clone(), db.clone(), coordinator.clone()));
    let healthz =
        warp::path!("healthz").map(|| warp::reply::json(&serde_json::json!({"status": "ok"})));
    let readyz = warp::path!("readyz").and(state.clone()).then(
        |(_, db, coordinator): (Arc<Metrics>, PgPool, Arc<Coordinator>)| async move {
            let pg = sqlx::query("SELECT 1").execute(&db).await.is_ok();
            let redis = coordinator.ping().await.is_ok();
            let status = if pg && redis {
                warp::http::StatusCode::OK
            } else {
                warp::http::StatusCode::SERVICE_UNAVAILABLE
            };
            warp::reply::with_status(
                warp::reply::json(&serde_json::json!({"postgres": pg, "redis": redis})),
                status,
            )
        },
    );
    let metrics = warp::path!("metrics").and(state).then(
        |(metrics, db, coordinator): (Arc<Metrics>, PgPool, Arc<Coordinator>)| async move {
            metrics.db_pool.observe(&db);
            if let Ok(n) = coordinator.commit_backlog().await {
                metrics.commit_backlog.set(n as i64);
            }
            metrics.render()
        },
    );
    healthz.or(readyz).or(metrics)
}

/// Runs every loop until `shutdown` is cancelled. A failed pass is logged and retried.
pub async fn run(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    config: Config,
    shutdown: CancellationToken,
) {
    if let Err(error) = svc.coordinator.ensure_commit_group().await {
        tracing::error!(%error, "commit queue group not created yet; the writer retries");
    }
    let writer = tokio::spawn(writer_loop(
        svc.clone(),
        metrics.clone(),
        config.writer.clone(),
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn(sweep_loop(
        svc.clone(),
        metrics.clone(),
        config.sweep_interval,
        shutdown.clone(),
    ));
    let mut repaired = RepairCursor::default();
    let counts = catalog::SectionCounts::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = reconcile_once(&svc, &metrics, &config, &mut repaired, &counts) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
    // The sweeper stops at once (a pass cut short is done again by the next one). The writer
    // finishes the batch it is in (written, acknowledged, announced: its buyers get their answer
    // now, not after another writer's takeover), then stops; bounded, so a stuck batch cannot
    // hold up the shutdown (another writer claims it).
    let _ = sweeper.await;
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(10), &mut writer)
        .await
        .is_err()
    {
        tracing::warn!("the writer did not finish its batch in 10 s; stopping it");
        writer.abort();
    }
}

/// Which recent sales a pass tells Redis again. The durable writer tells Redis of each sale
/// right after writing it, and a sale it could not tell stays in the commit queue to be done
/// again; what else can lose one is Redis losing acknowledged writes, which only a failover or a
/// restart does, and either changes the [`DataEpoch`](coordinator::epoch::DataEpoch). So a pass
/// tells again only when the epoch is not the one its last good pass started with (or cannot be
/// read): every sale from a minute before that pass's start, which covers the writes a replica
/// had not received yet, seconds before the failover. A reconciler's first pass looks ten
/// minutes back, not knowing what happened before it. Looking back on every pass would cost two
/// or three Redis calls per sale per pass, pass after pass. A loss of whole keys is caught by the
/// inventory pass, which repairs the event's every sale.
#[derive(Debug, Default)]
pub struct RepairCursor {
    last_ok: Option<(std::time::Instant, Option<coordinator::epoch::DataEpoch>)>,
}

/// Why a pass tells sales again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retell {
    /// The reconciler's first pass.
    FirstPass,
    /// The primaries' replication ids changed since the last good pass (failover, restart).
    EpochChanged,
    /// The epoch could not be read, now or at the last good pass.
    EpochUnknown,
}

impl Retell {
    const ALL: [Retell; 3] = [Self::FirstPass, Self::EpochChanged, Self::EpochUnknown];

    fn label(self) -> &'static str {
        match self {
            Self::FirstPass => "first_pass",
            Self::EpochChanged => "epoch_changed",
            Self::EpochUnknown => "epoch_unknown",
        }
    }
}

impl RepairCursor {
    const FIRST: Duration = Duration::from_secs(600);
    const MARGIN: Duration = Duration::from_secs(60);

    /// The window of the pass starting now with Redis at `epoch` (`Some(None)`: every live sale
    /// of the events on sale, whatever its age), and why; `None`: nothing Redis acknowledged was
    /// lost since the last good pass.
    ///
    /// A changed epoch means a primary lost data or restarted: whatever it held is gone, sales
    /// of any age included (the buyers' ticket counts live on the buyers' slots, which the
    /// sections' count check does not see), so every sale is told again, once. An unknown epoch
    /// (a primary not answering) tells the recent window, pass after pass, until it is known.
    pub fn window(
        &self,
        epoch: Option<&coordinator::epoch::DataEpoch>,
    ) -> Option<(Option<Duration>, Retell)> {
        let Some((start, then)) = &self.last_ok else {
            return Some((Some(Self::FIRST), Retell::FirstPass));
        };
        let back = start.elapsed() + Self::MARGIN;
        match (epoch, then) {
            (Some(now), Some(then)) if now == then => None,
            (Some(_), Some(_)) => Some((None, Retell::EpochChanged)),
            _ => Some((Some(back), Retell::EpochUnknown)),
        }
    }

    /// A pass that started at `start` with Redis at `epoch` told Redis what it had to.
    pub fn passed(
        &mut self,
        start: std::time::Instant,
        epoch: Option<coordinator::epoch::DataEpoch>,
    ) {
        self.last_ok = Some((start, epoch));
    }
}

/// One reconciliation pass: inventory, payments, recent sales.
pub async fn reconcile_once(
    svc: &orders::Services,
    metrics: &Metrics,
    config: &Config,
    repaired: &mut RepairCursor,
    counts: &catalog::SectionCounts,
) {
    let label = |ok: bool| {
        if ok {
            "inventory_ok"
        } else {
            "inventory_error"
        }
    };
    let inventory = reconcile_inventory(&svc.db, &svc.coordinator, metrics, counts).await;
    if let Err(error) = &inventory {
        tracing::error!(%error, "inventory pass failed");
    }
    metrics
        .passes_total
        .with_label_values(&[label(inventory.is_ok())])
        .inc();
    // Where the last pass stopped is in Postgres: the listing resumes there, whichever
    // reconciler reads it, and however long ago that was.
    let settled =
        orders::settle::settle_pages(svc, config.payment_grace, config.payment_pages_per_pass)
            .await;
    match settled {
        Ok(settlement) => {
            tracing::debug!(
                pages = settlement.pages,
                listing_done = settlement.listing_done,
                "captured payments reconciled"
            );
            for outcome in settlement.done {
                if outcome != Settled::Paid {
                    tracing::warn!(?outcome, "captured payment without an order settled");
                }
                metrics
                    .payments_settled_total
                    .with_label_values(&[&format!("{outcome:?}").to_lowercase()])
                    .inc();
            }
            metrics
                .passes_total
                .with_label_values(&["payments_ok"])
                .inc();
        }
        Err(error) => {
            tracing::error!(%error, "payment reconciliation failed");
            metrics
                .passes_total
                .with_label_values(&["payments_error"])
                .inc();
        }
    }
    let started = std::time::Instant::now();
    // Read before the sales are: a loss after this read changes the next pass's epoch.
    let epoch = match svc.coordinator.data_epoch().await {
        Ok(epoch) => Some(epoch),
        Err(error) => {
            tracing::warn!(%error, "Redis's data epoch not read; recent sales are told again");
            None
        }
    };
    let retold = match repaired.window(epoch.as_ref()) {
        None => Ok(None),
        Some((window, why)) => repair_sales(&svc.db, &svc.coordinator, None, window)
            .await
            .map(|r| Some((r, why))),
    };
    match retold {
        Ok(retold) => {
            repaired.passed(started, epoch);
            if let Some((r, why)) = retold {
                metrics
                    .sales_repaired_total
                    .with_label_values(&["recent"])
                    .inc_by(r.changed);
                metrics
                    .sales_retold_total
                    .with_label_values(&[why.label()])
                    .inc_by(r.told);
            }
            metrics.passes_total.with_label_values(&["repair_ok"]).inc();
        }
        Err(error) => {
            tracing::error!(%error, "sold-seat repair failed");
            metrics
                .passes_total
                .with_label_values(&["repair_error"])
                .inc();
        }
    }
}

async fn writer_loop(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    config: WriterConfig,
    shutdown: CancellationToken,
) {
    let mut group_ready = false;
    while !shutdown.is_cancelled() {
        if !group_ready {
            group_ready = svc.coordinator.ensure_commit_group().await.is_ok();
        }
        let started = std::time::Instant::now();
        match orders::writer::step(&svc, &config).await {
            Ok(report) if report.jobs + report.malformed == 0 => {
                // Idle: poll again soon (reads never block a shared connection).
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(report) => {
                metrics.batch_size.observe(report.jobs as f64);
                metrics
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                for (label, n) in [
                    ("paid", report.paid),
                    ("superseded", report.superseded),
                    ("oversold", report.oversold),
                    ("expired", report.expired),
                    ("malformed", report.malformed),
                ] {
                    metrics
                        .commits_total
                        .with_label_values(&[label])
                        .inc_by(n as u64);
                }
                for lag in &report.lag_ms {
                    metrics.commit_lag_seconds.observe(*lag as f64 / 1000.0);
                }
                metrics
                    .commits_claimed_total
                    .with_label_values(&["writer_stopped"])
                    .inc_by(report.claimed as u64);
                if report.untold > 0 {
                    tracing::warn!(
                        jobs = report.untold,
                        "paid jobs left in the commit queue: Redis not told of their sale yet"
                    );
                }
                if report.oversold > 0 {
                    metrics
                        .oversell_total
                        .with_label_values(&["any"])
                        .inc_by(report.oversold as u64);
                }
            }
            Err(error) => {
                tracing::error!(%error, "durable writer step failed; retrying");
                metrics
                    .passes_total
                    .with_label_values(&["writer_error"])
                    .inc();
                group_ready = false;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn sweep_loop(
    svc: orders::Services,
    metrics: Arc<Metrics>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let copied = audit::CopiedUpTo::default();
    loop {
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            pass = audit::sweep_and_copy(&svc.db, &svc.coordinator, &metrics, &copied) => pass,
        };
        match pass {
            Ok(()) => metrics.passes_total.with_label_values(&["sweep_ok"]).inc(),
            Err(error) => {
                tracing::error!(%error, "sweep/audit pass failed");
                metrics
                    .passes_total
                    .with_label_values(&["sweep_error"])
                    .inc();
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sales_are_told_again_only_when_redis_may_have_lost_writes() {
        use coordinator::epoch::DataEpoch;
        let epoch = |id: &str| DataEpoch::from(vec![format!("127.0.0.1:7000={id}")]);
        let mut cursor = RepairCursor::default();
        assert_eq!(
            cursor.window(Some(&epoch("a"))),
            Some((Some(Duration::from_secs(600)), Retell::FirstPass)),
            "first pass"
        );
        let started = std::time::Instant::now() - Duration::from_secs(30);
        cursor.passed(started, Some(epoch("a")));
        assert_eq!(cursor.window(Some(&epoch("a"))), None, "same epoch");
        assert_eq!(
            cursor.window(Some(&epoch("b"))),
            Some((None, Retell::EpochChanged)),
            "a changed epoch tells every sale again, whatever its age"
        );
        let (w, reason) = cursor.window(None).expect("a window");
        assert_eq!(reason, Retell::EpochUnknown);
        let w = w.expect("a window, not everything");
        assert!(
            (Duration::from_secs(90)..Duration::from_secs(95)).contains(&w),
            "30 s since the last good pass, plus the margin: {w:?}"
        );
        cursor.passed(started, None);
        assert_eq!(
            cursor.window(Some(&epoch("a"))).map(|(_, r)| r),
            Some(Retell::EpochUnknown),
            "the last good pass did not know its epoch"
        );
    }
}
