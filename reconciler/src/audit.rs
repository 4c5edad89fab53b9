//! The expiry sweep and the audit copy, per section of every event on sale or frozen.

use coordinator::streams::AuditEntry;
use coordinator::{Coordinator, EventId, HoldId, SectionId};
use sqlx::PgPool;

use crate::Metrics;

/// Most entries copied per section per pass; more wait for the next pass (the lag metric shows
/// them).
const COPY_BATCH: u64 = 2_000;
/// Most expired seats forgotten per section per pass (bounds one script's run time).
const SWEEP_BATCH: u64 = 1_000;

/// Infrastructure failures of a pass.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Postgres.
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    /// Redis.
    #[error(transparent)]
    Coordinator(#[from] coordinator::CoordinatorError),
}

/// How far this process last saw each stream copied (a hint: Postgres's cursor row is the
/// truth). A section whose stream has nothing after it is skipped without a Postgres
/// transaction: with hundreds of sections, most of them quiet, a pass would otherwise open one
/// transaction per section twice a second for nothing.
#[derive(Default)]
pub struct CopiedUpTo(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl CopiedUpTo {
    fn get(&self, stream: &str) -> Option<String> {
        self.0.lock().ok()?.get(stream).cloned()
    }

    fn set(&self, stream: &str, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(stream.to_owned(), id.to_owned());
        }
    }
}

/// A section's audit stream as `audit_cursors` and [`CopiedUpTo`] name it.
fn stream_name(event: &EventId, section: &SectionId) -> String {
    format!("{event}/{section}")
}

/// Sweeps expired holds and copies audit entries of every section of every live event.
pub async fn sweep_and_copy(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
    copied: &CopiedUpTo,
) -> Result<(), AuditError> {
    let events: Vec<(String,)> =
        // Ended events too: their last changes (expiries, refunds) still need copying.
        sqlx::query_as(
            "SELECT id FROM events WHERE status IN ('on_sale', 'frozen', 'ended') ORDER BY id",
        )
        .fetch_all(db)
        .await?;
    let mut lag_ms: i64 = 0;
    for (event,) in events {
        let Ok(event) = EventId::parse(&event) else {
            continue;
        };
        let Some(sections) = coordinator.event_sections(&event).await? else {
            continue;
        };
        for section in sections {
            // One section failing (a bad entry, a node down) must not stop the others.
            let newest = match coordinator.sweep(&event, &section, SWEEP_BATCH).await {
                Ok(swept) => {
                    if swept.swept > 0 {
                        metrics
                            .expirations_total
                            .with_label_values(&["ttl"])
                            .inc_by(swept.swept);
                    }
                    Some(swept.last_audit_id)
                }
                Err(e) => {
                    tracing::error!(%event, %section, error = %e, "expiry sweep failed");
                    None
                }
            };
            // The sweep said where the trail ends: copied up to there, a quiet section costs
            // this pass nothing more (one call per section, not two).
            if newest.is_some() && newest == copied.get(&stream_name(&event, &section)) {
                continue;
            }
            match copy_section(db, coordinator, metrics, copied, &event, &section).await {
                Ok(lag) => lag_ms = lag_ms.max(lag),
                Err(e) => tracing::error!(%event, %section, error = %e, "audit copy failed"),
            }
        }
    }
    metrics.audit_lag_seconds.set(lag_ms as f64 / 1000.0);
    Ok(())
}

/// Copies one section's new audit entries; returns the age (ms) of the oldest entry that was
/// not yet in Postgres when the pass began (0 when none).
pub async fn copy_section(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
    copied: &CopiedUpTo,
    event: &EventId,
    section: &SectionId,
) -> Result<i64, AuditError> {
    let stream = stream_name(event, section);
    if let Some(last) = copied.get(&stream) {
        // Nothing after what was copied (by us, or further by another reconciler): no work.
        if coordinator
            .read_audit(event, section, &last, 1)
            .await?
            .is_empty()
        {
            return Ok(0);
        }
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO audit_cursors (stream, last_id) VALUES ($1, '0-0') ON CONFLICT DO NOTHING",
    )
    .bind(&stream)
    .execute(&mut *tx)
    .await?;
    // Another reconciler copying this section right now has the row: skip it.
    let cursor: Option<(String, Option<i64>)> = sqlx::query_as(
        "SELECT last_id, copied_entries FROM audit_cursors WHERE stream = $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(&stream)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((last, copied_entries)) = cursor else {
        return Ok(0);
    };
    // Entries the stream's length cap dropped before they were copied (a copy outage long
    // enough to fill it): our trims remove only copied entries, so the stream's all-time count
    // minus what was copied minus what is still there is what was lost. Recorded, so the audit
    // says where it is incomplete, and counted for the alert; the copy goes on with what is left.
    let counts = coordinator.audit_counts(event, section).await?;
    let mut accounted = match (copied_entries, counts) {
        // First look at this stream (or its count restarted: Redis lost and recreated it, which
        // is a failover's loss, not the cap's): what is gone counts as accounted for.
        (None, Some(c)) => Some(c.added.saturating_sub(c.length)),
        (Some(done), Some(c)) if (done as u64) > c.added => Some(c.added.saturating_sub(c.length)),
        (Some(done), Some(c)) => {
            let dropped = c.added.saturating_sub(done as u64 + c.length);
            if dropped > 0 {
                tracing::error!(%event, %section, after = %last, dropped,
                    "audit entries were dropped by the stream's cap before they were copied");
                sqlx::query(
                    "INSERT INTO audit_gaps (stream, after_id, dropped) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&stream)
                .bind(&last)
                .bind(i64::try_from(dropped).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
                metrics.audit_gaps_total.inc();
            }
            Some(done as u64 + dropped)
        }
        (done, None) => done.map(|d| d as u64),
    };
    let entries = coordinator
        .read_audit(event, section, &last, COPY_BATCH)
        .await?;
    let Some(newest) = entries.last().map(|e| e.id.clone()) else {
        sqlx::query("UPDATE audit_cursors SET copied_entries = $2 WHERE stream = $1")
            .bind(&stream)
            .bind(accounted.map(|a| i64::try_from(a).unwrap_or(i64::MAX)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        copied.set(&stream, &last);
        return Ok(0);
    };
    accounted = accounted.map(|a| a + entries.len() as u64);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let oldest_ms = entries
        .first()
        .and_then(|e| e.id.split('-').next()?.parse::<i64>().ok())
        .unwrap_or(now_ms);
    let mut cols = Columns::default();
    for entry in &entries {
        cols.push(&stream, event, entry);
        metrics
            .audit_rows_total
            .with_label_values(&[&entry.action])
            .inc_by(entry.seats.len() as u64);
    }
    sqlx::query(
        "INSERT INTO seat_audit (event_id, seat_id, action, at, actor, hold_id, order_id, source)
         SELECT $1, s, a::seat_action, to_timestamp(t / 1000.0), u, nullif(h, ''), o, src
         FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::uuid[], $8::text[])
              AS x(s, a, t, u, h, o, src)
         ON CONFLICT (source, seat_id) DO NOTHING",
    )
    .bind(event.as_str())
    .bind(&cols.seat)
    .bind(&cols.action)
    .bind(&cols.at)
    .bind(&cols.actor)
    .bind(&cols.hold)
    .bind(&cols.order)
    .bind(&cols.source)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE audit_cursors SET last_id = $2, copied_entries = $3, updated_at = now() WHERE stream = $1",
    )
    .bind(&stream)
    .bind(&newest)
    .bind(accounted.map(|a| i64::try_from(a).unwrap_or(i64::MAX)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    copied.set(&stream, &newest);
    // Only once the rows are safely in Postgres does Redis let go of them.
    coordinator.trim_audit(event, section, &newest).await?;
    Ok(now_ms - oldest_ms)
}

#[derive(Default)]
struct Columns {
    seat: Vec<String>,
    action: Vec<String>,
    at: Vec<i64>,
    actor: Vec<String>,
    hold: Vec<String>,
    order: Vec<Option<uuid::Uuid>>,
    source: Vec<String>,
}

impl Columns {
    fn push(&mut self, stream: &str, event: &EventId, entry: &AuditEntry) {
        let _ = event;
        // Sales and refunds name their order (derived from the hold, like the order's id).
        let order = match entry.action.as_str() {
            "sold" | "refunded" => HoldId::parse(&entry.hold)
                .ok()
                .map(|h| orders::order_id(&h)),
            _ => None,
        };
        for seat in &entry.seats {
            self.seat.push(seat.clone());
            self.action.push(entry.action.clone());
            self.at.push(entry.at_ms);
            self.actor.push(entry.actor.clone());
            self.hold.push(entry.hold.clone());
            self.order.push(order);
            self.source.push(format!("{stream}/{}", entry.id));
        }
    }
}
