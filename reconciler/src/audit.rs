//! The expiry sweep and the audit copy, per section of every event on sale or frozen.

use std::time::{Duration, Instant};

use coordinator::streams::{AfterCopied, AuditEntry};
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

/// What this process knows of each section's audit stream: how far it last saw it copied (a
/// hint: Postgres's cursor row is the truth), and until when a quiet section need not be swept.
/// With the hint current, a section's pass is one Redis call (`lua/sweep.lua` sweeps, trims
/// what was copied, counts and reads what is new) and no Postgres transaction when nothing is;
/// with hundreds of sections, most of them quiet, a pass would otherwise cost several calls and
/// a transaction per section twice a second for nothing.
#[derive(Default)]
pub struct CopiedUpTo(std::sync::Mutex<std::collections::HashMap<String, StreamHint>>);

#[derive(Default)]
struct StreamHint {
    /// Copied up to this entry (in Postgres).
    copied: Option<String>,
    /// A quiet section is not swept again before this.
    quiet_until: Option<Instant>,
    /// How long the section has been left alone last time (doubles while it stays quiet).
    backoff: Duration,
}

/// The longest a quiet section (nothing new in its trail, nothing expired) is left unswept: a
/// hold placed in it meanwhile is copied to the audit this much later at most. Never past the
/// section's next hold expiry, so expiries are still recorded (and seat maps refreshed) on time.
const QUIET_MAX: Duration = Duration::from_secs(2);
/// The first wait of a section found quiet.
const QUIET_FIRST: Duration = Duration::from_millis(250);

impl CopiedUpTo {
    fn get(&self, stream: &str) -> Option<String> {
        self.0.lock().ok()?.get(stream)?.copied.clone()
    }

    fn set(&self, stream: &str, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(stream.to_owned()).or_default().copied = Some(id.to_owned());
        }
    }

    /// Whether the section is left alone in this pass.
    fn resting(&self, stream: &str, now: Instant) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(stream)?.quiet_until)
            .is_some_and(|until| now < until)
    }

    /// The section was quiet in this pass: it rests, longer each quiet pass, up to
    /// [`QUIET_MAX`], and never past its next hold expiry (`next_expiry_in`).
    fn quiet(&self, stream: &str, now: Instant, next_expiry_in: Option<Duration>) {
        if let Ok(mut m) = self.0.lock() {
            let hint = m.entry(stream.to_owned()).or_default();
            hint.backoff = (hint.backoff * 2).clamp(QUIET_FIRST, QUIET_MAX);
            let rest = next_expiry_in.map_or(hint.backoff, |e| e.min(hint.backoff));
            hint.quiet_until = Some(now + rest);
        }
    }

    /// The section changed: it is swept every pass again.
    fn busy(&self, stream: &str) {
        if let Ok(mut m) = self.0.lock() {
            let hint = m.entry(stream.to_owned()).or_default();
            hint.backoff = Duration::ZERO;
            hint.quiet_until = None;
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
            let stream = stream_name(&event, &section);
            let now = Instant::now();
            if copied.resting(&stream, now) {
                continue;
            }
            let hint = copied.get(&stream);
            // One section failing (a bad entry, a node down) must not stop the others.
            let swept = match coordinator
                .sweep(&event, &section, SWEEP_BATCH, hint.as_deref(), COPY_BATCH)
                .await
            {
                Ok(swept) => swept,
                Err(e) => {
                    tracing::error!(%event, %section, error = %e, "expiry sweep failed");
                    continue;
                }
            };
            if swept.swept > 0 {
                metrics
                    .expirations_total
                    .with_label_values(&["ttl"])
                    .inc_by(swept.swept);
            }
            // The sweep said where the trail ends: copied up to there, a quiet section costs
            // this pass nothing more, and rests a while.
            if hint.as_deref() == Some(swept.last_audit_id.as_str()) {
                if swept.swept == 0 {
                    let next_expiry_in = swept.next_expiry_ms.map(|at| {
                        let in_ms = at - chrono::Utc::now().timestamp_millis();
                        Duration::from_millis(in_ms.max(0) as u64)
                    });
                    copied.quiet(&stream, now, next_expiry_in);
                }
                continue;
            }
            copied.busy(&stream);
            match copy(
                db,
                coordinator,
                metrics,
                copied,
                &event,
                &section,
                swept.after_copied,
            )
            .await
            {
                Ok(lag) => lag_ms = lag_ms.max(lag),
                Err(e) => tracing::error!(%event, %section, error = %e, "audit copy failed"),
            }
        }
    }
    metrics.audit_lag_seconds.set(lag_ms as f64 / 1000.0);
    Ok(())
}

/// Copies one section's new audit entries; returns the age (ms) of the oldest entry that was
/// not yet in Postgres when the pass began (0 when none). The entries up to the new cursor stay
/// in Redis until the section's next sweep, which trims them (`lua/sweep.lua`).
pub async fn copy_section(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
    copied: &CopiedUpTo,
    event: &EventId,
    section: &SectionId,
) -> Result<i64, AuditError> {
    copy(db, coordinator, metrics, copied, event, section, None).await
}

/// [`copy_section`], with what the sweep read after this process's cursor: used when Postgres's
/// cursor is that one (the common case), read again from Redis otherwise.
async fn copy(
    db: &PgPool,
    coordinator: &Coordinator,
    metrics: &Metrics,
    copied: &CopiedUpTo,
    event: &EventId,
    section: &SectionId,
    read: Option<AfterCopied>,
) -> Result<i64, AuditError> {
    let stream = stream_name(event, section);
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
    let (counts, entries) = match read {
        Some(read) if read.cursor == last => (read.counts, read.entries),
        _ => {
            // What was copied goes first, so the count below holds only what was not (the
            // sweep's own read trims it the same way).
            coordinator.trim_audit(event, section, &last).await?;
            (
                coordinator.audit_counts(event, section).await?,
                coordinator
                    .read_audit(event, section, &last, COPY_BATCH)
                    .await?,
            )
        }
    };
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
    // Only once the rows are safely in Postgres does Redis let go of them: the section's next
    // sweep, given this cursor, trims them.
    copied.set(&stream, &newest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_section_rests_longer_each_pass_but_never_past_its_next_expiry() {
        let hints = CopiedUpTo::default();
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert!(!hints.resting("s", now), "swept until found quiet");
        hints.quiet("s", now, None);
        assert!(hints.resting("s", now + QUIET_FIRST - ms(1)));
        assert!(!hints.resting("s", now + QUIET_FIRST));
        hints.quiet("s", now, None);
        assert!(hints.resting("s", now + QUIET_FIRST * 2 - ms(1)), "doubled");
        for _ in 0..10 {
            hints.quiet("s", now, None);
        }
        assert!(hints.resting("s", now + QUIET_MAX - ms(1)));
        assert!(!hints.resting("s", now + QUIET_MAX), "at most QUIET_MAX");
        hints.quiet("s", now, Some(ms(100)));
        assert!(!hints.resting("s", now + ms(100)), "a hold ends then");
        hints.busy("s");
        assert!(!hints.resting("s", now));
        hints.quiet("s", now, None);
        assert!(
            !hints.resting("s", now + QUIET_FIRST),
            "from the start again"
        );
        assert!(!hints.resting("other", now), "sections apart");
    }
}
