//! The reconciler daemon. Today it owns one loop: every event on sale in Postgres has its
//! inventory open in Redis, so a cluster that lost its state (holds are soft state; a failover or
//! a restart may drop keys) is refilled from the catalog. The durable writer, the expiry sweeper
//! and payment reconciliation join it with the checkout issue.

use std::sync::Arc;
use std::time::Duration;

use coordinator::open::OpenOutcome;
use coordinator::Coordinator;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use sqlx::PgPool;

/// The reconciler's series, declared in one place.
pub struct Metrics {
    registry: Registry,
    /// Reconciliation passes by outcome (ok, error).
    pub passes_total: IntCounterVec,
    /// Seats added to Redis because the catalog had them and Redis did not.
    pub seats_reopened_total: IntCounterVec,
    /// Events on sale seen by the last pass.
    pub events_on_sale: IntGauge,
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let passes_total = IntCounterVec::new(
            Opts::new(
                "reconciler_passes_total",
                "Reconciliation passes, by outcome",
            ),
            &["outcome"],
        )?;
        let seats_reopened_total = IntCounterVec::new(
            Opts::new(
                "reconciler_seats_reopened_total",
                "Seats loaded into Redis from the catalog because Redis lacked them",
            ),
            &["reason"],
        )?;
        let events_on_sale = IntGauge::new(
            "reconciler_events_on_sale",
            "Events on sale at the last pass",
        )?;
        registry.register(Box::new(passes_total.clone()))?;
        registry.register(Box::new(seats_reopened_total.clone()))?;
        registry.register(Box::new(events_on_sale.clone()))?;
        Ok(Self {
            registry,
            passes_total,
            seats_reopened_total,
            events_on_sale,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Events on sale.
    pub events: usize,
    /// Seats that were missing in Redis and were loaded.
    pub seats_reopened: u64,
}

/// One pass: every event on sale is open in Redis with every catalog seat.
pub async fn reconcile_inventory(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
) -> Result<PassReport, catalog::CatalogError> {
    let events = catalog::events_on_sale(db).await?;
    let mut report = PassReport {
        events: events.len(),
        ..PassReport::default()
    };
    for event in &events {
        match catalog::open_in_coordinator(db, coordinator, event).await? {
            Some(OpenOutcome::Opened { seats_added, .. }) => {
                if seats_added > 0 {
                    tracing::warn!(%event, seats_added, "Redis lacked seats of an event on sale; reloaded");
                    metrics
                        .seats_reopened_total
                        .with_label_values(&["missing_in_redis"])
                        .inc_by(seats_added);
                }
                report.seats_reopened += seats_added;
            }
            Some(other) => {
                tracing::error!(%event, ?other, "catalog inventory refused by the coordinator")
            }
            None => {}
        }
    }
    metrics.events_on_sale.set(events.len() as i64);
    Ok(report)
}

/// Runs passes until `shutdown` resolves; a failed pass is logged and retried next interval.
pub async fn run(
    db: PgPool,
    coordinator: Arc<Coordinator>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match reconcile_inventory(&db, &coordinator, &metrics).await {
            Ok(_) => metrics.passes_total.with_label_values(&["ok"]).inc(),
            Err(error) => {
                tracing::error!(%error, "reconciliation pass failed");
                metrics.passes_total.with_label_values(&["error"]).inc();
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
