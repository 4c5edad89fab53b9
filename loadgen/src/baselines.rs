//! The design document's allocation strategies side by side, on the same Postgres, the same
//! seats and the same load (section 6):
//!
//! - **Option A, pessimistic lock**: one transaction locks the requested rows with
//!   `SELECT … ORDER BY seat_id FOR UPDATE` (sorted, so two holds cannot deadlock), checks that
//!   all are available, updates them, commits.
//! - **Option B, optimistic CAS**: read status and version without locks; then, in one
//!   transaction, `UPDATE … SET status = 'held', version = version + 1 WHERE status =
//!   'available' AND version = X` for the seats read; if fewer rows changed than asked, another
//!   hold won a race: roll back and retry from the read (at most [`CAS_RETRIES`] times).
//! - **ours**: the coordinator's Lua scripts on Redis Cluster (Postgres is written only at
//!   checkout, by the durable writer, which a hold never waits for).
//!
//! The baselines get what a careful implementation has: a primary key on `(event_id, seat_id)`
//! (the only index their queries use), prepared statements (sqlx prepares and caches every
//! query per connection), and a connection pool as large as the concurrency. Every successful
//! hold is released at once, inside the same timed operation for all three strategies, so the
//! seats stay contended for the whole run.

use std::sync::Arc;
use std::time::Duration;

use coordinator::{EventId, SeatId, UserId};
use serde::Serialize;
use sqlx::PgPool;

use crate::open_loop::closed_loop;
use crate::stats::{Outcome, Stats};
use crate::Target;

/// Option B re-reads and retries this many times after losing a race, then gives up.
pub const CAS_RETRIES: u32 = 3;

/// Which strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// `SELECT … FOR UPDATE`.
    PessimisticA,
    /// Optimistic `UPDATE … WHERE status = 'available' AND version = X` with retries.
    OptimisticB,
    /// Lua on Redis Cluster.
    Ours,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Strategy::PessimisticA => "Option A (SELECT … FOR UPDATE)",
            Strategy::OptimisticB => "Option B (optimistic CAS + retries)",
            Strategy::Ours => "ours (Lua on Redis Cluster)",
        }
    }
}

/// The baselines' table: one row per seat, as the design document's `inventory`.
pub async fn prepare(db: &PgPool, event: &str, seats: &[String]) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_inventory (
             event_id   text NOT NULL,
             seat_id    text NOT NULL,
             status     text NOT NULL DEFAULT 'available',
             version    integer NOT NULL DEFAULT 0,
             hold_id    uuid,
             held_until timestamptz,
             PRIMARY KEY (event_id, seat_id)
         )",
    )
    .execute(db)
    .await?;
    sqlx::query("DELETE FROM bench_inventory WHERE event_id = $1")
        .bind(event)
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO bench_inventory (event_id, seat_id) SELECT $1, s FROM UNNEST($2::text[]) s",
    )
    .bind(event)
    .bind(seats)
    .execute(db)
    .await?;
    sqlx::query("ANALYZE bench_inventory").execute(db).await?;
    Ok(())
}

/// Option A: lock, check, update, commit.
async fn hold_a(db: &PgPool, event: &str, seats: &[String]) -> Result<Outcome, sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT status FROM bench_inventory WHERE event_id = $1 AND seat_id = ANY($2)
         ORDER BY seat_id FOR UPDATE",
    )
    .bind(event)
    .bind(seats)
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() != seats.len() || rows.iter().any(|(s,)| s != "available") {
        tx.rollback().await?;
        return Ok(Outcome::Refused("seat_taken"));
    }
    let hold = uuid::Uuid::new_v4();
    sqlx::query(
        "UPDATE bench_inventory SET status = 'held', version = version + 1, hold_id = $3,
                held_until = now() + interval '60 seconds'
         WHERE event_id = $1 AND seat_id = ANY($2)",
    )
    .bind(event)
    .bind(seats)
    .bind(hold)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    release_pg(db, hold).await?;
    Ok(Outcome::Ok)
}

/// Option B: read versions, then a guarded update; a lost race is retried from the read.
async fn hold_b(
    db: &PgPool,
    event: &str,
    seats: &[String],
    retries: &std::sync::atomic::AtomicU64,
) -> Result<Outcome, sqlx::Error> {
    for attempt in 0..=CAS_RETRIES {
        let rows: Vec<(String, String, i32)> = sqlx::query_as(
            "SELECT seat_id, status, version FROM bench_inventory WHERE event_id = $1 AND seat_id = ANY($2)",
        )
        .bind(event)
        .bind(seats)
        .fetch_all(db)
        .await?;
        if rows.len() != seats.len() || rows.iter().any(|(_, s, _)| s != "available") {
            return Ok(Outcome::Refused("seat_taken"));
        }
        let ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
        let versions: Vec<i32> = rows.iter().map(|(_, _, v)| *v).collect();
        let hold = uuid::Uuid::new_v4();
        let mut tx = db.begin().await?;
        let changed = sqlx::query(
            "UPDATE bench_inventory i SET status = 'held', version = i.version + 1, hold_id = $4,
                    held_until = now() + interval '60 seconds'
             FROM UNNEST($2::text[], $3::int[]) AS x(seat_id, version)
             WHERE i.event_id = $1 AND i.seat_id = x.seat_id AND i.version = x.version
               AND i.status = 'available'",
        )
        .bind(event)
        .bind(&ids)
        .bind(&versions)
        .bind(hold)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == seats.len() as u64 {
            tx.commit().await?;
            release_pg(db, hold).await?;
            return Ok(Outcome::Ok);
        }
        tx.rollback().await?;
        if attempt < CAS_RETRIES {
            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(Outcome::Refused("cas_gave_up"))
}

async fn release_pg(db: &PgPool, hold: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bench_inventory SET status = 'available', version = version + 1, hold_id = NULL,
                held_until = NULL
         WHERE hold_id = $1",
    )
    .bind(hold)
    .execute(db)
    .await?;
    Ok(())
}

/// One strategy at one contention level.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Which strategy.
    pub strategy: Strategy,
    /// "low" (every worker its own seats) or "high" (everyone on the same `hot` seats).
    pub contention: String,
    /// Successful holds per second.
    pub holds_per_sec: f64,
    /// Option B's re-reads after a lost race.
    pub retries: u64,
    /// The run.
    pub stats: Stats,
}

/// The load a comparison runs: `workers` concurrent buyers for `duration`, two adjacent seats
/// per hold; at low contention each worker walks its own slice of the seats, at high contention
/// all pick among the first `hot` seats.
#[derive(Clone, Debug)]
pub struct Load {
    /// High contention.
    pub high: bool,
    /// Seats everyone wants at high contention.
    pub hot: usize,
    /// Concurrent buyers.
    pub workers: usize,
    /// How long.
    pub duration: Duration,
}

/// Runs `strategy` under `load` on `event`'s `seats`.
pub async fn compare(
    t: &Target,
    strategy: Strategy,
    event: &str,
    seats: Arc<Vec<String>>,
    load: &Load,
) -> anyhow::Result<Comparison> {
    let Load {
        high,
        hot,
        workers,
        duration,
    } = load.clone();
    // A pool as large as the concurrency, for the baselines (ours does not touch Postgres).
    let db = catalog::pool::options(workers as u32)
        .connect_with(t.db.connect_options().as_ref().clone())
        .await?;
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pairs = if high {
        hot.min(seats.len()) / 2
    } else {
        seats.len() / 2
    };
    let per = (pairs / workers.max(1)).max(1);
    let event_id = EventId::parse(event).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = UserId::parse("bench-baseline").map_err(|e| anyhow::anyhow!("{e}"))?;
    let (tt, ev, run) = (t.clone(), Arc::new(event.to_owned()), crate::run_id());
    let r = retries.clone();
    let name = format!(
        "{}, {} contention, {workers} in flight",
        strategy.label(),
        if high { "high" } else { "low" }
    );
    let stats = closed_loop(&name, workers, duration, move |w, i| {
        let (db, seats, ev, r, t, event_id, user, run) = (
            db.clone(),
            seats.clone(),
            ev.clone(),
            r.clone(),
            tt.clone(),
            event_id.clone(),
            user.clone(),
            run.clone(),
        );
        async move {
            let pair = if high {
                rand::Rng::gen_range(&mut rand::thread_rng(), 0..pairs.max(1))
            } else {
                (w * per + i as usize % per) % pairs.max(1)
            };
            let asked = vec![seats[2 * pair].clone(), seats[2 * pair + 1].clone()];
            let result = match strategy {
                Strategy::PessimisticA => hold_a(&db, &ev, &asked).await,
                Strategy::OptimisticB => hold_b(&db, &ev, &asked, &r).await,
                Strategy::Ours => {
                    let ids: Vec<SeatId> =
                        asked.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
                    return crate::ceilings::hold_release(
                        &t,
                        &event_id,
                        &user,
                        &ids,
                        format!("b{run}-{w}-{i}"),
                    )
                    .await;
                }
            };
            match result {
                Ok(o) => o,
                // Deadlocks and serialization failures are the strategy's conflicts, not ours.
                Err(sqlx::Error::Database(d))
                    if d.code().is_some_and(|c| c == "40P01" || c == "40001") =>
                {
                    Outcome::Refused("deadlock")
                }
                Err(_) => Outcome::Failed("postgres_error".into()),
            }
        }
    })
    .await;
    Ok(Comparison {
        strategy,
        contention: if high { "high" } else { "low" }.into(),
        holds_per_sec: stats.ok as f64 / stats.seconds.max(1e-9),
        retries: retries.load(std::sync::atomic::Ordering::Relaxed),
        stats,
    })
}
