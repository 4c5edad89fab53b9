//! The durable writer: commit queue -> Postgres, in batches.
//!
//! One step reads up to `batch` jobs (first those a dead writer left unacknowledged, then new
//! ones), writes them in ONE transaction with multi-row inserts (one fsync for the whole batch:
//! group commit), and only after `COMMIT` returns marks Redis sold, acknowledges the entries and
//! announces each outcome. A writer killed anywhere before the acknowledgement leaves its entries
//! pending; another writer claims them after `stale_after` and writes them again, which is
//! harmless: an order already written with the same payment reads as [`Written::Paid`].
//!
//! The live-sale unique index is the last guard against overselling. A batch that trips it is
//! rolled back and replayed job by job, so only the job that would oversell is refused
//! ([`Written::Oversold`]): its payment is refunded, the incident recorded, the event frozen.
//!
//! What Redis is told is what Postgres has: a job is written only if its pinned hold has exactly
//! the job's seats (those the order records are those sold), a replayed job of an order refunded
//! since sells nothing, and after telling Redis the writer reads the orders again, so a refund
//! that committed in between does not leave its seats sold ([`refund::untell_unpaid`]).

use std::collections::HashMap;
use std::time::Duration;

use coordinator::sell::SellOutcome;
use coordinator::{EventId, HoldId, SeatId};
use uuid::Uuid;

use crate::refund::{self, ToldSale};
use crate::{constraint, CommitJob, Done, OrdersError, Services, Written};

/// Writer tuning.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// This writer's name in the consumer group (unique per process).
    pub consumer: String,
    /// Most jobs per transaction.
    pub batch: u64,
    /// A job delivered to a writer that has not acknowledged it for this long is taken over.
    pub stale_after: Duration,
    /// Fault injection for tests: sleep this long inside each batch's transaction, before
    /// `COMMIT`, so a test can kill the process in the middle of a batch. Zero in production.
    pub pause_in_batch: Duration,
}

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Jobs in the batch (0: the queue was empty).
    pub jobs: usize,
    /// Of which taken over from a writer that stopped.
    pub claimed: usize,
    /// Outcomes.
    pub paid: usize,
    /// Refunded: the hold's order was paid with another payment.
    pub superseded: usize,
    /// Refunded: a seat was already sold (oversell caught by Postgres).
    pub oversold: usize,
    /// Refunded: the hold had lost its seats before the write.
    pub expired: usize,
    /// Entries that were not jobs (dropped, logged).
    pub malformed: usize,
    /// Paid jobs left in the queue because Redis could not be told of the sale (done again).
    pub untold: usize,
    /// For each entry, how long it waited from being queued to being written, in ms (from the
    /// stream id, which is the queueing node's clock in ms).
    pub lag_ms: Vec<u64>,
}

/// A batch read from the commit queue.
struct Batch {
    /// Every entry's stream id (acknowledged once done).
    ids: Vec<String>,
    /// The jobs, and the stream id of each.
    jobs: Vec<CommitJob>,
    job_ids: Vec<String>,
}

/// How a step reads the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Take over stale jobs of stopped writers first (`XAUTOCLAIM`). Stale means idle for
    /// `stale_after`, so a writer checks a few times per `stale_after`, not on every step.
    pub claim_stale: bool,
    /// With nothing new in the queue, wait up to this long for a job on the writer's own
    /// connection ([`coordinator::Coordinator::wait_commits`]); zero: answer at once.
    pub wait: Duration,
}

impl Reading {
    /// Claims, and does not wait: what a single step (a test, a tool) wants.
    pub const NOW: Self = Self {
        claim_stale: true,
        wait: Duration::ZERO,
    };
}

/// Reads, writes, acknowledges one batch ([`Reading::NOW`]).
pub async fn step(svc: &Services, config: &WriterConfig) -> Result<StepReport, OrdersError> {
    step_reading(svc, config, Reading::NOW).await
}

/// Reads (as `reading` says), writes, acknowledges one batch.
pub async fn step_reading(
    svc: &Services,
    config: &WriterConfig,
    reading: Reading,
) -> Result<StepReport, OrdersError> {
    let (batch, mut report) = read_batch(svc, config, reading).await?;
    if batch.ids.is_empty() {
        return Ok(report);
    }
    let jobs = &batch.jobs;
    // Only holds that still have the job's seats are written: each is checked to stay pinned
    // through the write, or pinned again. A hold that lost its seats is refunded.
    let live = futures::future::join_all(jobs.iter().map(|job| still_held(svc, job))).await;
    let mut to_write = Vec::with_capacity(jobs.len());
    for (job, live) in jobs.iter().zip(&live) {
        if live
            .as_ref()
            .map_err(|e| OrdersError::Coordinator(clone_err(e)))?
            .is_live()
        {
            to_write.push(job.clone());
        }
    }
    let written_live = write(&svc.db, &to_write, config.pause_in_batch).await?;
    let written = verdicts(svc, jobs, &live, written_live).await?;
    let sales = sell_pinned(svc, &written, &live).await;
    // Each job's Redis and refund calls go together: one after the other they made a batch
    // last (calls per job) × (jobs) round trips, the writer's ceiling.
    let mut told = futures::future::join_all(jobs.iter().zip(&written).zip(&live).zip(sales).map(
        |(((j, w), l), sold)| after_commit(svc, j, *w, l.as_ref().unwrap_or(&Live::Gone), sold),
    ))
    .await;
    recheck_refunds(svc, jobs, &written, &mut told).await;
    for outcome in &written {
        match outcome {
            Written::Paid => report.paid += 1,
            Written::Superseded => report.superseded += 1,
            Written::Oversold => report.oversold += 1,
            Written::Expired => report.expired += 1,
        }
    }
    report.lag_ms = lag_ms(&batch.ids);
    report.untold = finish(svc, &batch, &written, &told).await?;
    Ok(report)
}

/// Claims stale entries of dead writers (when `reading` says so), then reads new ones, up to a
/// batch, waiting for one only when nothing was claimed; malformed entries are counted and
/// dropped (acknowledged with the rest).
async fn read_batch(
    svc: &Services,
    config: &WriterConfig,
    reading: Reading,
) -> Result<(Batch, StepReport), OrdersError> {
    let co = &svc.coordinator;
    let stale_ms = config.stale_after.as_millis() as u64;
    let mut entries = if reading.claim_stale {
        co.claim_stale_commits(&config.consumer, stale_ms, config.batch)
            .await?
    } else {
        Vec::new()
    };
    let claimed = entries.len();
    let room = config.batch.saturating_sub(entries.len() as u64);
    if room > 0 {
        entries.extend(if entries.is_empty() && !reading.wait.is_zero() {
            co.wait_commits(&config.consumer, room, reading.wait)
                .await?
        } else {
            co.read_commits(&config.consumer, room).await?
        });
    }
    let mut report = StepReport {
        claimed,
        ..StepReport::default()
    };
    let mut batch = Batch {
        ids: Vec::with_capacity(entries.len()),
        jobs: Vec::with_capacity(entries.len()),
        job_ids: Vec::with_capacity(entries.len()),
    };
    for entry in entries {
        let job = entry
            .fields
            .get("job")
            .and_then(|j| serde_json::from_str(j).ok());
        match job {
            Some(job) => {
                batch.job_ids.push(entry.id.clone());
                batch.jobs.push(job);
            }
            None => {
                tracing::error!(id = %entry.id, "commit queue entry is not a job; dropped");
                report.malformed += 1;
            }
        }
        batch.ids.push(entry.id);
    }
    report.jobs = batch.jobs.len();
    if !batch.ids.is_empty() {
        tracing::debug!(jobs = report.jobs, claimed, consumer = %config.consumer, "commit batch read");
    }
    Ok((batch, report))
}

/// What became of each job: the write's outcome for the live ones; for a hold no longer live,
/// what Postgres has. A hold that is no longer live may still have its order already (a
/// replayed job): that is a replay, not an expiry; of an order refunded since, it sells nothing
/// again.
async fn verdicts(
    svc: &Services,
    jobs: &[CommitJob],
    live: &[Result<Live, coordinator::CoordinatorError>],
    written_live: Vec<Written>,
) -> Result<Vec<Written>, OrdersError> {
    let mut written_live = written_live.into_iter();
    // What Postgres has is asked only about jobs whose hold is no longer live (none, in the
    // common case: a batch of live holds costs no read here).
    let order_ids: Vec<uuid::Uuid> = jobs
        .iter()
        .zip(live)
        .filter(|(_, l)| !l.as_ref().is_ok_and(Live::is_live))
        .map(|(j, _)| j.order_id)
        .collect();
    if order_ids.is_empty() {
        return Ok(jobs
            .iter()
            .map(|_| written_live.next().unwrap_or(Written::Expired))
            .collect());
    }
    // Every `= ANY($1)` lookup here is planned each time (`persistent(false)`): a connection's
    // cached generic plan, chosen while the table was empty, scans the whole table for each
    // batch once it is not (autovacuum may be off).
    let existing: HashMap<uuid::Uuid, (String, String)> =
        sqlx::query_as::<_, (uuid::Uuid, String, String)>(
            "SELECT id, payment_ref, status::text FROM orders WHERE id = ANY($1)",
        )
        .bind(&order_ids)
        .persistent(false)
        .fetch_all(&svc.db)
        .await?
        .into_iter()
        .map(|(id, p, s)| (id, (p, s)))
        .collect();
    Ok(jobs
        .iter()
        .zip(live)
        .map(|(job, l)| match l {
            Ok(l) if l.is_live() => written_live.next().unwrap_or(Written::Expired),
            _ => match existing.get(&job.order_id) {
                Some((p, s)) if *p == job.payment_ref && s == "paid" => Written::Paid,
                // Refunded since (its payment with it): as `write_together` answers a replay.
                Some((p, _)) if *p == job.payment_ref => Written::Expired,
                Some(_) => Written::Superseded,
                None => Written::Expired,
            },
        })
        .collect())
}

/// Redis was told what Postgres had when it was read; a refund may have committed since (its
/// own return of the seats before this sale). Read again; on failure the jobs are done again.
async fn recheck_refunds(
    svc: &Services,
    jobs: &[CommitJob],
    written: &[Written],
    told: &mut [bool],
) {
    let sales: Vec<ToldSale> = jobs
        .iter()
        .zip(written)
        .filter(|(_, w)| matches!(w, Written::Paid | Written::Expired))
        .filter_map(|(job, _)| told_sale(job))
        .collect();
    if let Err(e) = refund::untell_unpaid(&svc.db, &svc.coordinator, &sales, "system:writer").await
    {
        tracing::warn!(error = %e, "sales not checked against refunds; the jobs are done again");
        for (t, w) in told.iter_mut().zip(written) {
            if matches!(w, Written::Paid | Written::Expired) {
                *t = false;
            }
        }
    }
}

/// For each entry, how long it waited from being queued to now, in ms (from the stream id,
/// which is the queueing node's clock in ms).
fn lag_ms(ids: &[String]) -> Vec<u64> {
    let now_ms = runtime::clock::unix_ms();
    ids.iter()
        .filter_map(|id| id.split('-').next()?.parse::<u64>().ok())
        .map(|queued| now_ms.saturating_sub(queued))
        .collect()
}

/// Acknowledges the entries done and announces every job's outcome; returns how many entries
/// stay. A sale Redis was not told of stays in the queue, to be done again by whichever writer
/// claims it (an idempotent replay): the reconciler does not look back at every sale.
async fn finish(
    svc: &Services,
    batch: &Batch,
    written: &[Written],
    told: &[bool],
) -> Result<usize, OrdersError> {
    let co = &svc.coordinator;
    let untold: std::collections::HashSet<&String> = batch
        .job_ids
        .iter()
        .zip(told)
        .filter(|(_, told)| !**told)
        .map(|(id, _)| id)
        .collect();
    let done: Vec<String> = batch
        .ids
        .iter()
        .filter(|id| !untold.contains(id))
        .cloned()
        .collect();
    co.ack_commits(&done).await?;
    // One announcement for the whole batch: a message per job cost a Redis call per checkout.
    let outcomes: Vec<Done> = batch
        .jobs
        .iter()
        .zip(written)
        .map(|(job, outcome)| Done {
            order_id: job.order_id,
            payment_ref: job.payment_ref.clone(),
            written: *outcome,
        })
        .collect();
    if !outcomes.is_empty() {
        if let Ok(payload) = serde_json::to_string(&outcomes) {
            co.announce_orders(&payload).await;
        }
    }
    Ok(batch.ids.len() - done.len())
}

/// Writes jobs durably; one outcome per job, in order.
pub async fn write(
    db: &sqlx::PgPool,
    jobs: &[CommitJob],
    pause: Duration,
) -> Result<Vec<Written>, OrdersError> {
    let mut first = write_together(db, jobs, pause).await;
    if first.as_ref().err().is_some_and(retryable) {
        first = write_together(db, jobs, Duration::ZERO).await;
    }
    match first {
        Ok(outcomes) => Ok(outcomes),
        Err(e) if constraint(&e).is_some() || is_data_error(&e) => {
            // Someone in the batch trips a unique constraint: find out who, one job at a time.
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                let one = std::slice::from_ref(job);
                let outcome = match write_together(db, one, Duration::ZERO).await {
                    Ok(o) => o[0],
                    Err(e) if constraint(&e).as_deref() == Some("sold_seats_live_unique") => {
                        Written::Oversold
                    }
                    // A concurrent writer wrote this order between our read and insert: read
                    // again, it is now a replay. A job that fails again is not writable at all
                    // (an unknown event, a value Postgres refuses): it is refunded rather than
                    // left to block the queue.
                    Err(e) if constraint(&e).is_some() || is_data_error(&e) || retryable(&e) => {
                        match write_together(db, one, Duration::ZERO).await {
                            Ok(o) => o[0],
                            Err(e) if constraint(&e).is_some() || is_data_error(&e) => {
                                tracing::error!(order = %job.order_id, error = %e, "commit job Postgres refuses; refunded");
                                Written::Expired
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                };
                outcomes.push(outcome);
            }
            Ok(outcomes)
        }
        Err(e) => Err(e.into()),
    }
}

/// Deadlocks and serialization failures: worth one immediate retry.
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// SQLSTATE class 22/23 other than a named constraint: the job's data, not the database.
fn is_data_error(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
}

/// One transaction for all jobs; any unique violation aborts all of it.
async fn write_together(
    db: &sqlx::PgPool,
    jobs: &[CommitJob],
    pause: Duration,
) -> Result<Vec<Written>, sqlx::Error> {
    let mut tx = db.begin().await?;
    // A 200 is promised on this commit: it must be on disk, whatever the server's default.
    // And every statement below touches rows by key, a batch's worth at most: index lookups
    // are always the right plan. On young tables with stale statistics (a new deployment, the
    // benchmark's database; autovacuum analyzes a minute or more later) the planner chose to
    // read every valid ticket and hash-join them for the tickets' check, 0.9 ms a batch at
    // 2,500 tickets and growing with them, against 0.1 ms by index. The settings end with the
    // transaction.
    // The settings ride on the batch's first read (its first branch runs first and yields one
    // row of nulls): one statement, where they were two.
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.order_id).collect();
    let existing: HashMap<Uuid, (String, String)> =
        sqlx::query_as::<_, (Option<Uuid>, Option<String>, Option<String>)>(
            "SELECT NULL::uuid, NULL::text, NULL::text
             FROM (SELECT set_config('synchronous_commit', 'on', true),
                          set_config('enable_hashjoin', 'off', true),
                          set_config('enable_mergejoin', 'off', true),
                          set_config('enable_bitmapscan', 'off', true),
                          set_config('enable_seqscan', 'off', true)) AS settings
             UNION ALL
             SELECT id, payment_ref, status::text FROM orders WHERE id = ANY($1)",
        )
        .bind(&ids)
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .filter_map(|(id, p, s)| Some((id?, (p?, s?))))
        .collect();
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut batch_orders: HashMap<Uuid, &str> = HashMap::new();
    let mut new: Vec<&CommitJob> = Vec::new();
    for job in jobs {
        // A replayed job of an order refunded since: nothing to sell again.
        if existing
            .get(&job.order_id)
            .is_some_and(|(p, s)| *p == job.payment_ref && s == "refunded")
        {
            outcomes.push(Written::Expired);
            continue;
        }
        let paid_with = existing
            .get(&job.order_id)
            .map(|(p, _)| p.as_str())
            .or_else(|| batch_orders.get(&job.order_id).copied());
        outcomes.push(match paid_with {
            Some(p) if p == job.payment_ref => Written::Paid,
            Some(_) => Written::Superseded,
            None => {
                batch_orders.insert(job.order_id, &job.payment_ref);
                new.push(job);
                Written::Paid
            }
        });
    }
    if !new.is_empty() {
        insert_orders(&mut tx, new).await?;
    }
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts new orders, their seats (through the live-sale unique index) and their tickets, and
/// settles their attempts `paid`, in the caller's transaction: one statement (its parts as
/// data-modifying CTEs, all run to completion; the foreign keys are checked at its end), after
/// the tickets' own check ([`crate::tickets::revoke_stale_in`]). Four statements a batch before.
async fn insert_orders(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    mut new: Vec<&CommitJob>,
) -> Result<(), sqlx::Error> {
    // One insertion order for every writer: two writers with the same jobs cannot deadlock.
    new.sort_by_key(|j| j.order_id);
    let col = |f: fn(&CommitJob) -> String| new.iter().map(|j| f(j)).collect::<Vec<_>>();
    // One row per seat: its sale and its ticket.
    let (mut seat_orders, mut seat_events, mut seat_ids, mut tickets, mut holders) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for job in &new {
        for seat in &job.seats {
            seat_orders.push(job.order_id);
            seat_events.push(job.event_id.clone());
            seat_ids.push(seat.clone());
            tickets.push(crate::tickets::ticket_id(job.order_id, seat));
            holders.push(job.user_id.clone());
        }
    }
    crate::tickets::revoke_stale_in(tx, &seat_events, &seat_ids).await?;
    sqlx::query(
        "WITH new_orders AS (
             INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key)
             SELECT o, e, h::uuid, u, 'paid', t, c, p, k
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])
                  AS x(o, e, h, u, t, c, p, k)
             RETURNING id),
         sold AS (
             INSERT INTO sold_seats (order_id, event_id, seat_id)
             SELECT * FROM UNNEST($9::uuid[], $10::text[], $11::text[])
             RETURNING seat_id),
         -- Each seat's ticket, with its sale: a paid order always has its tickets. Only once
         -- the seats are in (it reads them): a seat sold live to another order is refused by
         -- the live-sale index, an oversell, before that order's valid ticket refuses this one.
         issued AS (
             INSERT INTO tickets (id, order_id, event_id, seat_id, holder)
             SELECT * FROM UNNEST($12::uuid[], $9::uuid[], $10::text[], $11::text[], $13::text[])
             WHERE (SELECT count(*) FROM sold) >= 0
             ON CONFLICT (id) DO NOTHING
             RETURNING id, order_id, event_id, seat_id, issued_at),
         -- The seat's 'sold' audit row comes from Redis's stream; this one says the ticket exists.
         issued_audit AS (
             INSERT INTO seat_audit (event_id, seat_id, action, at, actor, order_id, ticket_id, source)
             SELECT event_id, seat_id, 'ticket_issued', issued_at, 'checkout', order_id, id,
                    'ticket:' || id::text || ':issued'
             FROM issued
             ON CONFLICT (source, seat_id) DO NOTHING),
         settled AS (
             UPDATE commit_attempts a SET status = 'paid', payment_ref = x.p, updated_at = now()
             FROM UNNEST($4::text[], $8::text[], $7::text[]) AS x(u, k, p)
             WHERE a.user_id = x.u AND a.idempotency_key = x.k)
         SELECT count(*) FROM new_orders",
    )
    .bind(new.iter().map(|j| j.order_id).collect::<Vec<_>>())
    .bind(col(|j| j.event_id.clone()))
    .bind(col(|j| j.hold_id.clone()))
    .bind(col(|j| j.user_id.clone()))
    .bind(new.iter().map(|j| j.total_cents).collect::<Vec<_>>())
    .bind(col(|j| j.currency.clone()))
    .bind(col(|j| j.payment_ref.clone()))
    .bind(col(|j| j.idempotency_key.clone()))
    .bind(&seat_orders)
    .bind(&seat_events)
    .bind(&seat_ids)
    .bind(&tickets)
    .bind(&holders)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The sale a job tells Redis of, with ids the coordinator accepts.
fn told_sale(job: &CommitJob) -> Option<ToldSale> {
    Some(ToldSale {
        order: job.order_id,
        event: EventId::parse(&job.event_id).ok()?,
        hold: HoldId::parse(&job.hold_id).ok()?,
        user: coordinator::UserId::parse(&job.user_id).ok(),
        seats: job
            .seats
            .iter()
            .map(|s| SeatId::parse(s))
            .collect::<Result<_, _>>()
            .ok()?,
    })
}

/// Sells the seats of every paid job whose hold was pinned with the job's seats, together
/// ([`coordinator::Coordinator::mark_read_holds_sold`]: one call per section for the batch, where
/// each job cost one): for each job of the batch, in order, what its sale came to (`None`: not
/// such a job).
async fn sell_pinned(
    svc: &Services,
    written: &[Written],
    live: &[Result<Live, coordinator::CoordinatorError>],
) -> Vec<Option<Result<SellOutcome, coordinator::CoordinatorError>>> {
    fn pinned<'a>(
        (w, l): (&Written, &'a Result<Live, coordinator::CoordinatorError>),
    ) -> Option<&'a coordinator::Hold> {
        match (w, l) {
            (Written::Paid, Ok(Live::Pinned(h))) => Some(h),
            _ => None,
        }
    }
    let holds: Vec<&coordinator::Hold> = written.iter().zip(live).filter_map(pinned).collect();
    let mut sold = if holds.is_empty() {
        Vec::new()
    } else {
        svc.coordinator.mark_read_holds_sold(&holds).await
    }
    .into_iter();
    written
        .iter()
        .zip(live)
        .map(|job| pinned(job).and_then(|_| sold.next()))
        .collect()
}

/// What follows a durable outcome. Failures are logged, not returned: Postgres already holds the
/// truth, and reconciliation completes whatever is left (Redis repaired, payments refunded).
///
/// Returns whether Redis was told what it must be (a paid job's seats sold and counted); when
/// not, the caller leaves the job in the queue to be done again.
///
/// `sold`: what selling a pinned hold's seats came to ([`sell_pinned`]), for a paid job whose
/// hold was pinned.
async fn after_commit(
    svc: &Services,
    job: &CommitJob,
    outcome: Written,
    live: &Live,
    sold: Option<Result<SellOutcome, coordinator::CoordinatorError>>,
) -> bool {
    let parsed = (
        HoldId::parse(&job.hold_id),
        EventId::parse(&job.event_id),
        job.seats
            .iter()
            .map(|s| SeatId::parse(s))
            .collect::<Result<Vec<_>, _>>(),
    );
    let (Ok(hold), Ok(event), Ok(seats)) = parsed else {
        tracing::error!(order = %job.order_id, "job with ids the coordinator refuses");
        return true;
    };
    match outcome {
        Written::Paid => return mark_paid(svc, job, live, sold, (&event, &hold, &seats)).await,
        Written::Superseded => {
            refund_or_log(svc, job, "the hold's order was paid with another payment").await;
        }
        Written::Expired => {
            refund_or_log(
                svc,
                job,
                "the hold lost its seats before the order was written",
            )
            .await;
            if let Err(e) = sqlx::query(
                // The job's own attempt names its payment: its commit reads the verdict by it
                // (the attempt may still be `charging`, without one).
                "UPDATE commit_attempts SET status = 'refunded', updated_at = now(),
                     payment_ref = CASE WHEN user_id = $2 AND idempotency_key = $3 THEN $4
                                        ELSE payment_ref END
                 WHERE order_id = $1 AND status <> 'paid'",
            )
            .bind(job.order_id)
            .bind(&job.user_id)
            .bind(&job.idempotency_key)
            .bind(&job.payment_ref)
            .execute(&svc.db)
            .await
            {
                tracing::warn!(error = %e, "attempt status not recorded");
            }
        }
        Written::Oversold => oversold(svc, job, &event, &hold).await,
    }
    true
}

/// Marks a written order's seats sold in Redis; `false` when Redis could not be told (the job
/// is done again).
async fn mark_paid(
    svc: &Services,
    job: &CommitJob,
    live: &Live,
    sold: Option<Result<SellOutcome, coordinator::CoordinatorError>>,
    (event, hold, seats): (&EventId, &HoldId, &[SeatId]),
) -> bool {
    // The seats sold are the job's, which the order records: never the record's alone.
    let marked = match (live, sold) {
        // A pinned hold (checked before the write to have the job's seats) was sold with the
        // batch's other sales ([`sell_pinned`]).
        (_, Some(sold)) => sold,
        (Live::Sold, None) => svc.coordinator.mark_sold(hold).await,
        // No record to sell by, or one naming other seats: repaired from the job below.
        _ => Ok(SellOutcome::NotFound),
    };
    let sold = match marked {
        // The sale also counted the seats against the buyer's limit for good.
        Ok(SellOutcome::Sold { .. }) => Ok(()),
        // The hold record moved on (expired during a long write, or lost in a failover):
        // Postgres says sold, so Redis is made to say so, and the buyer's count too.
        Ok(_) => {
            let user = coordinator::UserId::parse(&job.user_id).ok();
            svc.coordinator
                .repair_sale(event, hold, user.as_ref(), seats)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &sold {
        tracing::warn!(order = %job.order_id, error = %e, "order written; Redis not marked sold yet (the job is done again)");
    }
    sold.is_ok()
}

/// An oversell Postgres refused: recorded, the event frozen, the payment refunded, the loser's
/// hold released (the winner's seats stay sold).
async fn oversold(svc: &Services, job: &CommitJob, event: &EventId, hold: &HoldId) {
    tracing::error!(order = %job.order_id, event = %job.event_id, seats = ?job.seats,
        "OVERSELL refused by Postgres: refunding, freezing the event");
    // The incident first: a crash before the refund leaves the payment captured without an
    // order, which reconciliation queues again (and this path refunds); a crash after a refund
    // made first would leave no trace of the incident.
    let recorded = sqlx::query(
        "INSERT INTO oversell_incidents (event_id, hold_id, payment_ref, seats)
         VALUES ($1, $2::uuid, $3, $4) ON CONFLICT (payment_ref) DO NOTHING",
    )
    .bind(&job.event_id)
    .bind(&job.hold_id)
    .bind(&job.payment_ref)
    .bind(&job.seats)
    .execute(&svc.db)
    .await;
    let frozen =
        sqlx::query("UPDATE events SET status = 'frozen' WHERE id = $1 AND status = 'on_sale'")
            .bind(&job.event_id)
            .execute(&svc.db)
            .await;
    if let Err(e) = recorded.and(frozen) {
        tracing::error!(error = %e, event = %job.event_id, "oversell incident not recorded");
    }
    refund_or_log(svc, job, "a seat was already sold").await;
    svc.coordinator.announce_event(event).await;
    // The seats the loser held go back (a pinned hold is unpinned first: a pin refuses a
    // release).
    let released = match svc.coordinator.unpin(hold).await {
        Ok(_) => svc
            .coordinator
            .release(hold, coordinator::Caller::System)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = released {
        tracing::warn!(error = %e, "oversold hold not released");
    }
}

/// Where a job's hold stands before its order is written.
enum Live {
    /// Pinned, with exactly the job's seats, for long enough to write the order (checked, or
    /// pinned again now): as the record reads.
    Pinned(coordinator::Hold),
    /// Sold already, to this hold (a replayed job; Postgres decides whether it is this
    /// payment's).
    Sold,
    /// Pinned again now, but its record names other seats than the job: the order would record
    /// one set of seats and Redis sell another. Not written (refunded), unless it was already.
    OtherSeats,
    /// Expired, released, or the record lost in a failover: holds are soft state, and a hold
    /// that lost its seats is not sold (the seats may be someone else's now).
    Gone,
}

impl Live {
    fn is_live(&self) -> bool {
        matches!(self, Self::Pinned(_) | Self::Sold)
    }
}

/// Whether the job's hold still has its seats (pinned again now), or was already sold to it.
async fn still_held(
    svc: &Services,
    job: &CommitJob,
) -> Result<Live, coordinator::CoordinatorError> {
    use coordinator::extend::{ExtendOutcome, PinCheck};
    let Ok(hold) = HoldId::parse(&job.hold_id) else {
        return Ok(Live::Gone);
    };
    let max_pin = svc.coordinator.limits().max_pin_secs;
    // The commit pinned the hold for `max_pin_secs` moments before it queued the job: while at
    // least half of that is left, a check that writes nothing will do (two reads where a pin
    // was two writes and an audit entry). Otherwise it is pinned again, as it always was.
    match svc
        .coordinator
        .check_pinned(&hold, Duration::from_millis(max_pin * 500))
        .await?
    {
        PinCheck::Pinned(h) => return Ok(pinned(job, &hold, h)),
        PinCheck::Sold => return Ok(Live::Sold),
        PinCheck::Unsure => {}
    }
    let pin_for = Duration::from_secs(max_pin);
    Ok(match svc.coordinator.pin(&hold, pin_for).await? {
        ExtendOutcome::Extended(h) => pinned(job, &hold, h),
        ExtendOutcome::WrongState(h) if h.state == coordinator::HoldState::Sold => Live::Sold,
        _ => Live::Gone,
    })
}

/// A pinned hold, as its record names its seats: live when they are the job's.
fn pinned(job: &CommitJob, hold: &HoldId, h: coordinator::Hold) -> Live {
    if same_seats(&h.seats, &job.seats) {
        return Live::Pinned(h);
    }
    tracing::error!(order = %job.order_id, hold = %hold, record = ?h.seats, job = ?job.seats,
        "the job's seats are not its hold's; not written");
    Live::OtherSeats
}

/// The same seats, in any order.
fn same_seats(record: &[SeatId], job: &[String]) -> bool {
    let mut record: Vec<&str> = record.iter().map(SeatId::as_str).collect();
    let mut job: Vec<&str> = job.iter().map(String::as_str).collect();
    record.sort_unstable();
    job.sort_unstable();
    record == job
}

fn clone_err(e: &coordinator::CoordinatorError) -> coordinator::CoordinatorError {
    coordinator::CoordinatorError::Protocol {
        script: "writer",
        detail: e.to_string(),
    }
}

async fn refund_or_log(svc: &Services, job: &CommitJob, why: &str) {
    match svc.payments.refund(&job.payment_ref).await {
        Ok(outcome) => {
            tracing::warn!(order = %job.order_id, payment = %job.payment_ref, ?outcome, why, "payment refunded")
        }
        Err(e) => {
            tracing::error!(order = %job.order_id, payment = %job.payment_ref, error = %e, why,
                "refund failed; reconciliation retries it")
        }
    }
}
