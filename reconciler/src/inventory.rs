//! Inventory reconciliation: every event on sale is open in Redis with every catalog seat, and
//! every live sale in Postgres is marked sold in Redis.

use std::time::Duration;

use coordinator::open::OpenOutcome;
use coordinator::{Coordinator, EventId, SectionId};
use sqlx::PgPool;

use crate::metrics::Metrics;

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

/// [`orders::repair::repair_sales`], its errors as this pass's.
async fn repair_sales(
    db: &PgPool,
    coordinator: &Coordinator,
    event: Option<&EventId>,
    within: Option<Duration>,
) -> Result<orders::repair::Repaired, catalog::CatalogError> {
    orders::repair::repair_sales(db, coordinator, event, within)
        .await
        .map_err(|e| match e {
            orders::OrdersError::Db(e) => catalog::CatalogError::Postgres(e),
            orders::OrdersError::Coordinator(e) => catalog::CatalogError::Coordinator(e),
            other => catalog::CatalogError::Inconsistent(other.to_string()),
        })
}
