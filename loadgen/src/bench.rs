//! `loadgen bench`: every scenario, ceiling and baseline in one run, then the report (Markdown
//! for BENCHMARKS.md, JSON for machines). Nothing in the report is typed by hand: each figure
//! is one this run measured, and each verdict is computed from them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::baselines::{self, Comparison, Strategy};
use crate::ceilings::{self, PgBench};
use crate::open_loop::Schedule;
use crate::scenarios::{self, Buyers, FlashReport, FlashSale, Storm};
use crate::stats::Stats;
use crate::Target;

mod report;
mod verdicts;

pub use report::{Machine, Report, Target_};

/// How big a run is.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// "full" or "smoke".
    pub scale: String,
    /// Seconds per ladder step.
    pub step_secs: u64,
    /// Seconds of the sustained hold run.
    pub sustained_secs: u64,
    /// Browse rates (per second).
    pub browse_rates: Vec<f64>,
    /// Seat-map rate.
    pub seatmap_rate: f64,
    /// Whether the seat map is the 50,000-seat stadium (else the 2,000-seat theatre).
    pub stadium: bool,
    /// Hold storm rates at no contention.
    pub hold_rates: Vec<f64>,
    /// Hold rate at high contention, on the general-admission floor, and of the profiled storm.
    pub hot_hold_rate: f64,
    /// The general-admission floor's places (an event of its own, held at the hot rate).
    pub floor_capacity: u32,
    /// Shards of the floor.
    pub floor_shards: u32,
    /// Seconds of the profiled hold storm (after the timed hold runs).
    pub profile_secs: u64,
    /// Checkout rates.
    pub checkout_rates: Vec<f64>,
    /// Queue poll rates.
    pub poll_rates: Vec<f64>,
    /// Buyers holding tickets in the polled room.
    pub poll_buyers: usize,
    /// The flash sale.
    pub flash_users: usize,
    /// Its seats.
    pub flash_seats: usize,
    /// Buyers arriving per second.
    pub flash_arrival_rate: f64,
    /// Admitted per second.
    pub flash_admit_rate: f64,
    /// When set, the room admits this share of the fastest checkout rate kept up with in this
    /// run instead of `flash_admit_rate` (which stays the floor's fallback).
    pub flash_admit_share: Option<f64>,
    /// Overload: holds and checkouts offered at these multiples of the rate each sustained.
    pub overload_factors: Vec<f64>,
    /// Concurrency of ceilings.
    pub ceiling_workers: usize,
    /// Concurrency of the baselines.
    pub baseline_workers: usize,
}

impl Plan {
    /// The benchmark: the design document's targets, on one machine.
    pub fn full() -> Self {
        Self {
            scale: "full".into(),
            step_secs: 10,
            sustained_secs: 60,
            // Each ladder climbs from what this machine sustains to the design's target, so the
            // report shows both where it keeps up and how it fails beyond.
            browse_rates: vec![1_000.0, 2_000.0, 5_000.0],
            seatmap_rate: 50.0,
            stadium: true,
            // Steps of 1,000/s up to 5,000: the sustained run takes the fastest step kept up with.
            hold_rates: vec![
                1_000.0, 2_000.0, 3_000.0, 4_000.0, 5_000.0, 10_000.0, 20_000.0,
            ],
            hot_hold_rate: 1_000.0,
            floor_capacity: 20_000,
            floor_shards: 8,
            profile_secs: 8,
            checkout_rates: vec![100.0, 250.0, 400.0, 500.0, 1_000.0, 3_000.0],
            poll_rates: vec![2_000.0, 5_000.0, 10_000.0, 20_000.0, 30_000.0],
            poll_buyers: 1_000,
            flash_users: 100_000,
            flash_seats: 20_000,
            flash_arrival_rate: 2_000.0,
            flash_admit_rate: 300.0,
            // A waiting room exists to admit what checkout can take: the rate is set from the
            // checkout ladder's measured capacity on this machine (the fastest step kept up
            // with), not from the design's target. The room's own joins and polls take part of
            // the same cores; the gateway's pacing slows the room for that on its own.
            flash_admit_share: Some(1.0),
            overload_factors: vec![2.0, 4.0],
            ceiling_workers: 256,
            baseline_workers: 32,
        }
    }

    /// Every scenario, tiny: for the test suite, so the harness cannot rot.
    pub fn smoke() -> Self {
        Self {
            scale: "smoke".into(),
            step_secs: 1,
            sustained_secs: 1,
            browse_rates: vec![20.0],
            seatmap_rate: 5.0,
            stadium: false,
            hold_rates: vec![50.0],
            hot_hold_rate: 50.0,
            floor_capacity: 200,
            floor_shards: 8,
            profile_secs: 1,
            checkout_rates: vec![10.0],
            poll_rates: vec![50.0],
            poll_buyers: 10,
            flash_users: 120,
            flash_seats: 40,
            flash_arrival_rate: 200.0,
            flash_admit_rate: 100.0,
            flash_admit_share: None,
            overload_factors: vec![2.0],
            ceiling_workers: 4,
            baseline_workers: 4,
        }
    }
}

pub(super) fn log(what: &str) {
    eprintln!("[bench] {what}");
}

/// Waits (at most two minutes) until the durable writer has no commit left to write and the
/// system answers `/readyz` quickly three times in a row: an overloaded step leaves work behind
/// (commits run to their end even when the client has gone), and the next step must not be
/// measured on top of it.
async fn quiesce(t: &Target) {
    let started = std::time::Instant::now();
    let mut quick = 0;
    while quick < 3 && started.elapsed() < Duration::from_secs(120) {
        let asked = std::time::Instant::now();
        let ok = t
            .http
            .get(format!("{}/readyz", t.api))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let fast = ok && asked.elapsed() < Duration::from_millis(100);
        let written = matches!(t.coordinator.commit_backlog().await, Ok(0));
        quick = if fast && written { quick + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if started.elapsed() > Duration::from_secs(2) {
        log(&format!(
            "  waited {:.0} s for the system to drain the previous step",
            started.elapsed().as_secs_f64()
        ));
    }
}

/// A ladder step's verdict: the next (higher) rate runs only if this one kept up.
pub(super) async fn climb(t: &Target, s: &Stats) -> bool {
    if s.kept_up() {
        return true;
    }
    log("  did not keep up: higher rates of this ladder are not run");
    quiesce(t).await;
    false
}

pub(super) fn logged(s: Stats) -> Stats {
    eprintln!(
        "[bench]   {}: {:.0}/s achieved, p50 {:.2} ms, p99 {:.2} ms, ok {}, refused {}, failed {}, not sent {}",
        s.name, s.achieved_rate, s.p50_ms, s.p99_ms, s.ok, s.refused, s.failed, s.not_sent + s.unfinished
    );
    s
}

/// The events and buyers the phases of a run share.
struct Stage {
    id: String,
    step: Duration,
    /// The seat map of every event but the flash sale's.
    big: catalog::seatmap::SeatMap,
    storm_event: String,
    storm_seats: Arc<Vec<String>>,
    checkout_event: String,
    checkout_seats: Arc<Vec<String>>,
    /// An event with a general-admission floor, sold by quantity: (event, capacity, shards).
    floor: (String, u32, u32),
    ceiling_event: String,
    ceiling_seats: Arc<Vec<String>>,
    buyers: Buyers,
}

impl Stage {
    async fn set_up(t: &Target, plan: &Plan) -> anyhow::Result<Self> {
        let id = crate::run_id();
        let big = if plan.stadium {
            catalog::seatmap::stadium(&format!("bench-stadium-{id}"), "Bench stadium")
        } else {
            catalog::seatmap::demo_theatre_as(&format!("bench-theatre-{id}"))
        };
        log(&format!(
            "setting up events ({} seats each)",
            big.seat_count()
        ));
        let storm_event = format!("bench-holds-{id}");
        let storm_seats = Arc::new(t.setup_event(&storm_event, &big, 1_000_000).await?);
        // Every event but the floor's and the flash sale's is on this venue.
        t.load_venue(&storm_event).await?;
        let checkout_event = format!("bench-checkout-{id}");
        let checkout_seats = Arc::new(t.setup_event(&checkout_event, &big, 1_000_000).await?);
        let floor_event = format!("bench-floor-{id}");
        t.setup_event(
            &floor_event,
            &scenarios::floor_venue(
                &format!("bench-floor-{id}"),
                plan.floor_capacity,
                plan.floor_shards,
            ),
            1_000_000,
        )
        .await?;
        t.load_venue(&floor_event).await?;
        let ceiling_event = format!("bench-ceiling-{id}");
        let ceiling_seats = Arc::new(t.setup_event(&ceiling_event, &big, 1_000_000).await?);
        let buyers = Buyers::new(t, &format!("buyer-{id}"), 1_000)?;
        Ok(Self {
            step: Duration::from_secs(plan.step_secs),
            id,
            big,
            storm_event,
            storm_seats,
            checkout_event,
            checkout_seats,
            floor: (floor_event, plan.floor_capacity, plan.floor_shards),
            ceiling_event,
            ceiling_seats,
            buyers,
        })
    }

    /// The hold storm on the storm event at `contention` (0: spread, 1: all on the hot seats).
    fn storm(&self, contention: f64) -> Storm {
        Storm {
            event: self.storm_event.clone(),
            seats: self.storm_seats.clone(),
            contention,
            hot: 100,
            release: true,
            area: None,
        }
    }

    /// Holds of 2 places each on the general-admission floor's event.
    fn floor_storm(&self) -> Storm {
        let (event, capacity, shards) = self.floor.clone();
        Storm {
            event,
            seats: Arc::default(),
            contention: 0.0,
            hot: 0,
            release: true,
            area: Some(("floor".into(), 2, capacity, shards)),
        }
    }
}

/// Runs the whole plan against `t`: each phase in turn, each later one offered rates the
/// earlier ones sustained ([`verdicts`]), then the report.
pub async fn run(t: &Target, plan: &Plan) -> anyhow::Result<Report> {
    let stage = Stage::set_up(t, plan).await?;
    let (redis_ceiling, http_ceiling, pg_ceiling) = ceilings_phase(t, plan, &stage).await?;
    let mut runs = browse_phase(t, plan, &stage).await?;
    let holds = hold_phase(t, plan, &stage, &mut runs).await?;
    quiesce(t).await;
    let pg_per_checkout = checkout_phase(t, plan, &stage, &mut runs).await?;
    let checkout_capacity = verdicts::checkout_capacity(&runs);
    let checkout_sustained = verdicts::checkout_sustained(&runs);
    quiesce(t).await;
    log("profiling checkout's Redis calls");
    let checkout_profile = profiled(
        crate::profile::checkout_profile(
            t,
            &stage.buyers,
            checkout_sustained.max(plan.checkout_rates[0]),
            plan.profile_secs,
        )
        .await,
        |p| &p.stats,
    );

    log("overload (load shedding)");
    let over_event = format!("bench-overload-{}", stage.id);
    let over_seats = Arc::new(t.setup_event(&over_event, &stage.big, 1_000_000).await?);
    let overload = overload(
        t,
        plan,
        &stage.buyers,
        &stage.storm(0.0),
        (holds.sustained_rate, checkout_sustained),
        (&over_event, over_seats),
    )
    .await;

    quiesce(t).await;
    runs.extend(poll_phase(t, plan, &stage).await?);

    quiesce(t).await;
    log("flash sale");
    let flash = flash_sale(
        t,
        &format!("bench-flash-{}", stage.id),
        plan.flash_seats,
        plan.flash_users,
        plan.flash_arrival_rate,
        match plan.flash_admit_share {
            Some(share) if checkout_capacity > 0.0 => (checkout_capacity * share).round(),
            _ => plan.flash_admit_rate,
        },
    )
    .await?;
    log(&format!(
        "  flash sale: {} seats sold in {:.1} s, correct: {}",
        flash.sold_in_postgres, flash.sold_out_after_s, flash.correct
    ));

    quiesce(t).await;
    let compared = baselines_phase(t, plan, &stage).await?;

    let targets = verdicts::targets(&redis_ceiling, &runs, &holds.sustained, &flash, &compared);
    Ok(Report {
        plan: plan.clone(),
        machine: Machine::here(),
        redis_ceiling,
        http_ceiling,
        pg_ceiling,
        runs,
        overload,
        pg_per_checkout,
        sustained_holds: holds.sustained,
        fastest_holds: holds.fastest,
        hold_profile: holds.profile,
        checkout_profile,
        flash,
        baselines: compared,
        targets,
    })
}

/// Runs `step_at` at each rate in turn while the steps keep up; returns each step run, with its
/// rate.
async fn ladder(
    t: &Target,
    rates: &[f64],
    mut step_at: impl AsyncFnMut(f64) -> anyhow::Result<Stats>,
) -> anyhow::Result<Vec<(f64, Stats)>> {
    let mut steps = Vec::new();
    for &rate in rates {
        let s = logged(step_at(rate).await?);
        let go_on = climb(t, &s).await;
        steps.push((rate, s));
        if !go_on {
            break;
        }
    }
    Ok(steps)
}

fn stats_of(steps: Vec<(f64, Stats)>) -> impl Iterator<Item = Stats> {
    steps.into_iter().map(|(_, s)| s)
}

/// Redis, HTTP and Postgres alone, each as fast as it goes.
async fn ceilings_phase(
    t: &Target,
    plan: &Plan,
    stage: &Stage,
) -> anyhow::Result<(Stats, Stats, Option<PgBench>)> {
    log("ceilings");
    let redis_ceiling = logged(
        ceilings::redis_holds(
            t,
            &stage.ceiling_event,
            stage.ceiling_seats.clone(),
            plan.ceiling_workers,
            stage.step,
        )
        .await?,
    );
    let http_ceiling = logged(ceilings::http(t, plan.ceiling_workers, stage.step).await);
    let pg_ceiling = match ceilings::pgbench(t, &stage.ceiling_event, 4, 64, stage.step).await {
        Ok(p) => {
            log(&format!(
                "  pgbench: {:.0} batches/s = {:.0} orders/s, {:.2} ms per batch",
                p.tps, p.orders_per_sec, p.latency_ms
            ));
            Some(p)
        }
        Err(e) => {
            log(&format!("  pgbench not run: {e}"));
            None
        }
    };
    Ok((redis_ceiling, http_ceiling, pg_ceiling))
}

/// The browse ladder, then the seat map.
async fn browse_phase(t: &Target, plan: &Plan, stage: &Stage) -> anyhow::Result<Vec<Stats>> {
    log("browse");
    let step = stage.step;
    let mut runs: Vec<Stats> = stats_of(
        ladder(t, &plan.browse_rates, async |rate| {
            Ok(scenarios::browse(t, &stage.storm_event, &Schedule::new(rate, step)).await)
        })
        .await?,
    )
    .collect();
    runs.push(logged(
        scenarios::seatmap(
            t,
            &stage.storm_event,
            stage.storm_seats.len(),
            &Schedule::new(plan.seatmap_rate, step),
        )
        .await,
    ));
    Ok(runs)
}

/// What the hold phase measured.
struct HoldPhase {
    /// The rate holds sustained within their p99 target.
    sustained_rate: f64,
    /// The sustained run at that rate.
    sustained: Stats,
    /// The fastest step kept up with, whatever its p99.
    fastest: Option<Stats>,
    /// Where a hold's time goes.
    profile: Option<crate::profile::HoldProfile>,
}

/// The hold ladder at no contention, one step at high contention, the sustained run, and the
/// profiled storm. The steps are added to `runs`.
async fn hold_phase(
    t: &Target,
    plan: &Plan,
    stage: &Stage,
    runs: &mut Vec<Stats>,
) -> anyhow::Result<HoldPhase> {
    log("hold storm");
    let step = stage.step;
    let steps = ladder(t, &plan.hold_rates, async |rate| {
        Ok(scenarios::holds(
            t,
            &stage.buyers,
            &stage.storm(0.0),
            &Schedule::new(rate, step),
        )
        .await)
    })
    .await?;
    let (best, fastest) = verdicts::holds_sustained(&steps, plan.hold_rates[0]);
    runs.extend(stats_of(steps));
    runs.push(logged(
        scenarios::holds(
            t,
            &stage.buyers,
            &stage.storm(1.0),
            &Schedule::new(plan.hot_hold_rate, step),
        )
        .await,
    ));
    runs.push(logged(
        scenarios::holds(
            t,
            &stage.buyers,
            &stage.floor_storm(),
            &Schedule::new(plan.hot_hold_rate, step),
        )
        .await,
    ));
    quiesce(t).await;
    log(&format!("sustained holds at {best}/s"));
    let sustained = logged(
        scenarios::holds(
            t,
            &stage.buyers,
            &stage.storm(0.0),
            &Schedule::new(best, Duration::from_secs(plan.sustained_secs)),
        )
        .await,
    );

    quiesce(t).await;
    log("profiling the hold path");
    let profile = profiled(
        crate::profile::hold_profile(
            t,
            &stage.buyers,
            &stage.storm(0.0),
            plan.hot_hold_rate,
            plan.profile_secs,
        )
        .await,
        |p| &p.stats,
    );
    Ok(HoldPhase {
        sustained_rate: best,
        sustained,
        fastest,
        profile,
    })
}

/// A profile taken (its run logged), or why it was not (logged; the report goes without it).
fn profiled<P>(result: anyhow::Result<P>, stats: impl Fn(&P) -> &Stats) -> Option<P> {
    match result {
        Ok(p) => {
            logged(stats(&p).clone());
            Some(p)
        }
        Err(e) => {
            log(&format!("  profile not taken: {e}"));
            None
        }
    }
}

/// The checkout ladder, each step on seats of its own, with Postgres's work per checkout. The
/// steps are added to `runs`.
async fn checkout_phase(
    t: &Target,
    plan: &Plan,
    stage: &Stage,
    runs: &mut Vec<Stats>,
) -> anyhow::Result<Vec<PgPerCheckout>> {
    log("checkout");
    let step = stage.step;
    let mut offset = 0usize;
    let mut pg_per_checkout = Vec::new();
    let steps = ladder(t, &plan.checkout_rates, async |rate| {
        let before = pg_counters(&t.db).await;
        let n = (rate * step.as_secs_f64()) as usize;
        let end = (offset + n).min(stage.checkout_seats.len());
        let slice = Arc::new(stage.checkout_seats[offset..end].to_vec());
        offset = end;
        let s = scenarios::checkout(
            t,
            &stage.buyers,
            &stage.checkout_event,
            slice,
            &Schedule::new(rate, step),
        )
        .await;
        if let (Some(b), Some(a)) = (before, pg_counters(&t.db).await) {
            let n = s.ok.max(1) as f64;
            pg_per_checkout.push(PgPerCheckout {
                rate,
                xacts: (a.0 - b.0) as f64 / n,
                wal_syncs: (a.1 - b.1) as f64 / n,
                rows_written: (a.2 - b.2) as f64 / n,
                writing_xacts: (a.3 - b.3) as f64 / n,
            });
        }
        Ok(s)
    })
    .await?;
    runs.extend(stats_of(steps));
    Ok(pg_per_checkout)
}

/// The waiting room's poll ladder.
async fn poll_phase(t: &Target, plan: &Plan, stage: &Stage) -> anyhow::Result<Vec<Stats>> {
    log("queue polls");
    let queue_event = format!("bench-queue-{}", stage.id);
    scenarios::waiting_room_event(t, &queue_event).await?;
    let pollers = Buyers::new(t, &format!("poller-{}", stage.id), plan.poll_buyers)?;
    let step = stage.step;
    let steps = ladder(t, &plan.poll_rates, async |rate| {
        scenarios::queue_polls(t, &pollers, &queue_event, &Schedule::new(rate, step)).await
    })
    .await?;
    Ok(stats_of(steps).collect())
}

/// The allocation strategies side by side, at low and high contention.
async fn baselines_phase(
    t: &Target,
    plan: &Plan,
    stage: &Stage,
) -> anyhow::Result<Vec<Comparison>> {
    log("allocation strategies side by side");
    let base_event = format!("bench-baseline-{}", stage.id);
    let base_seats = Arc::new(t.setup_event(&base_event, &stage.big, 1_000_000).await?);
    baselines::prepare(&t.db, &base_event, &base_seats).await?;
    let mut compared = Vec::new();
    for high in [false, true] {
        for strategy in [
            Strategy::PessimisticA,
            Strategy::OptimisticB,
            Strategy::Ours,
        ] {
            let load = baselines::Load {
                high,
                hot: 100,
                workers: plan.baseline_workers,
                duration: stage.step,
            };
            let c = baselines::compare(t, strategy, &base_event, base_seats.clone(), &load).await?;
            logged(c.stats.clone());
            compared.push(c);
        }
    }
    Ok(compared)
}

/// Postgres's work per checkout in one checkout step, from `pg_stat_database` (the bench's
/// database) and `pg_stat_wal` (the server's) deltas: every process of ours that touches
/// Postgres is in them (the sandbox provider service keeps its own books in memory).
#[derive(Clone, Debug, Serialize)]
pub struct PgPerCheckout {
    /// The step's rate.
    pub rate: f64,
    /// Transactions committed (reads included: each statement outside a transaction is one).
    pub xacts: f64,
    /// WAL flushes to disk (`wal_sync`): the synchronous commits, several of which a group
    /// commit may share.
    pub wal_syncs: f64,
    /// Rows inserted, updated or deleted.
    pub rows_written: f64,
    /// Transactions that wrote (each was given a transaction id; read-only ones get none), on
    /// the whole server: the commits that must reach the WAL, before group commit shares them.
    pub writing_xacts: f64,
}

/// The counters [`PgPerCheckout`] is made of, now.
async fn pg_counters(db: &sqlx::PgPool) -> Option<(i64, i64, i64, i64)> {
    // Statistics reach the shared counters when a backend reports them (at most every second
    // or so for a busy one): wait for that before reading.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sqlx::query_as(
        // The next transaction id to be given out, read without taking one.
        "SELECT d.xact_commit, w.wal_sync, d.tup_inserted + d.tup_updated + d.tup_deleted,
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint
         FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()",
    )
    .fetch_one(db)
    .await
    .ok()
}

/// One overload run: a class offered `factor` times the rate it sustained in this run.
#[derive(Clone, Debug, Serialize)]
pub struct Overload {
    /// `holds` or `checkout`.
    pub class: &'static str,
    /// The rate sustained in this run (holds: the fastest step kept up with within p99 50 ms;
    /// checkout: the fastest step kept up with).
    pub sustainable: f64,
    /// Offered at this multiple of it.
    pub factor: f64,
    /// The admitted requests' p99 goal, ms.
    pub p99_goal_ms: f64,
    /// What happened.
    pub stats: Stats,
}

impl Overload {
    /// Operations done as asked per second.
    pub fn goodput(&self) -> f64 {
        self.stats.ok as f64 / self.stats.seconds.max(1e-9)
    }

    /// Goodput at least 90% of the sustainable rate, and the admitted requests within their
    /// p99 goal.
    pub fn met(&self) -> bool {
        self.goodput() >= 0.9 * self.sustainable && self.stats.ok_p99_ms <= self.p99_goal_ms
    }
}

/// Holds and checkouts offered at each of `plan.overload_factors` times what they sustained.
async fn overload(
    t: &Target,
    plan: &Plan,
    buyers: &Buyers,
    storm: &Storm,
    (holds, checkouts): (f64, f64),
    (event, seats): (&str, Arc<Vec<String>>),
) -> Vec<Overload> {
    let step = Duration::from_secs(plan.step_secs);
    let mut runs = Vec::new();
    for factor in &plan.overload_factors {
        quiesce(t).await;
        let s =
            logged(scenarios::holds(t, buyers, storm, &Schedule::new(holds * factor, step)).await);
        runs.push(Overload {
            class: "holds",
            sustainable: holds,
            factor: *factor,
            p99_goal_ms: 50.0,
            stats: s,
        });
    }
    let mut offset = 0usize;
    for factor in &plan.overload_factors {
        if checkouts <= 0.0 {
            break;
        }
        quiesce(t).await;
        let rate = checkouts * factor;
        let end = (offset + (rate * step.as_secs_f64()) as usize).min(seats.len());
        let slice = Arc::new(seats[offset..end].to_vec());
        offset = end;
        let s =
            logged(scenarios::checkout(t, buyers, event, slice, &Schedule::new(rate, step)).await);
        runs.push(Overload {
            class: "checkout",
            sustainable: checkouts,
            factor: *factor,
            p99_goal_ms: 250.0,
            stats: s,
        });
    }
    runs
}

/// The flash sale end to end on an event of its own (`event`, behind a waiting room admitting
/// `admit_rate` a second): `seats` seats in rows of 50, `users` buyers arriving at
/// `arrival_rate` a second, four minutes at most.
pub async fn flash_sale(
    t: &Target,
    event: &str,
    seats: usize,
    users: usize,
    arrival_rate: f64,
    admit_rate: f64,
) -> anyhow::Result<FlashReport> {
    let flash_event = event.to_owned();
    let per_row = 50usize;
    let rows_total = seats.div_ceil(per_row);
    let sections: Vec<(String, String, usize)> = (0..rows_total.div_ceil(40))
        .map(|s| {
            (
                format!("s{s}"),
                format!("Section {s}"),
                (rows_total - s * 40).min(40),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str, usize)> = sections
        .iter()
        .map(|(a, b, r)| (a.as_str(), b.as_str(), "standard", *r))
        .collect();
    let flash_map = catalog::seatmap::theatre(
        &format!("{event}-venue"),
        "Flash sale hall",
        &refs,
        per_row.min(seats),
    );
    let flash_seats = t.setup_event(&flash_event, &flash_map, 1).await?.len();
    t.load_venue(&flash_event).await?;
    scenarios::set_queue(t, &flash_event, admit_rate, admit_rate as u64).await?;
    scenarios::flash_sale(
        t,
        &FlashSale {
            event: flash_event,
            seats: flash_seats,
            users,
            arrival_rate,
            admit_rate,
            deadline: Duration::from_secs(240),
        },
    )
    .await
}
