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
    /// Hold rate at high contention, and of the profiled storm.
    pub hot_hold_rate: f64,
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

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The plan.
    pub plan: Plan,
    /// Where it ran.
    pub machine: Machine,
    /// Redis: hold + release pairs via the coordinator.
    pub redis_ceiling: Stats,
    /// HTTP: `GET /healthz`.
    pub http_ceiling: Stats,
    /// Postgres: the writer's batch under pgbench (None when pgbench is missing).
    pub pg_ceiling: Option<PgBench>,
    /// Every open-loop scenario run, in order.
    pub runs: Vec<Stats>,
    /// Holds and checkouts offered past what they sustain (load shedding at work).
    pub overload: Vec<Overload>,
    /// The sustained hold run.
    pub sustained_holds: Stats,
    /// The fastest step of the hold ladder kept up with, whatever its p99: what a hold costs
    /// there bounds the machine (the sustained run is the fastest within the target's p99, often
    /// a slower step, where fixed costs are spread over fewer holds).
    pub fastest_holds: Option<Stats>,
    /// Where a hold's time goes (None: the profile failed; the error is logged).
    pub hold_profile: Option<crate::profile::HoldProfile>,
    /// The flash sale.
    pub flash: FlashReport,
    /// The strategies side by side.
    pub baselines: Vec<Comparison>,
    /// Each target with its figure.
    pub targets: Vec<Target_>,
}

/// A target and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target_ {
    /// The design document's target.
    pub target: String,
    /// What this run measured.
    pub measured: String,
    /// Met or not.
    pub met: bool,
}

/// The machine.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Cores online.
    pub cores: usize,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads /proc.
    pub fn here() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_gib: kib / 1024.0 / 1024.0,
            cpu: read("/proc/cpuinfo")
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|| "unknown".into()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

fn log(what: &str) {
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
async fn climb(t: &Target, s: &Stats) -> bool {
    if s.kept_up() {
        return true;
    }
    log("  did not keep up: higher rates of this ladder are not run");
    quiesce(t).await;
    false
}

fn logged(s: Stats) -> Stats {
    eprintln!(
        "[bench]   {}: {:.0}/s achieved, p50 {:.2} ms, p99 {:.2} ms, ok {}, refused {}, failed {}, not sent {}",
        s.name, s.achieved_rate, s.p50_ms, s.p99_ms, s.ok, s.refused, s.failed, s.not_sent + s.unfinished
    );
    s
}

/// Runs the whole plan against `t`.
pub async fn run(t: &Target, plan: &Plan) -> anyhow::Result<Report> {
    let id = crate::run_id();
    let step = Duration::from_secs(plan.step_secs);
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
    let checkout_event = format!("bench-checkout-{id}");
    let checkout_seats = Arc::new(t.setup_event(&checkout_event, &big, 1_000_000).await?);
    let ceiling_event = format!("bench-ceiling-{id}");
    let ceiling_seats = Arc::new(t.setup_event(&ceiling_event, &big, 1_000_000).await?);
    let buyers = Buyers::new(t, &format!("buyer-{id}"), 1_000)?;

    log("ceilings");
    let redis_ceiling = logged(
        ceilings::redis_holds(
            t,
            &ceiling_event,
            ceiling_seats.clone(),
            plan.ceiling_workers,
            step,
        )
        .await?,
    );
    let http_ceiling = logged(ceilings::http(t, plan.ceiling_workers, step).await);
    let pg_ceiling = match ceilings::pgbench(t, &ceiling_event, 4, 64, step).await {
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

    let mut runs = Vec::new();
    log("browse");
    for rate in &plan.browse_rates {
        let s = logged(scenarios::browse(t, &storm_event, &Schedule::new(*rate, step)).await);
        let go_on = climb(t, &s).await;
        runs.push(s);
        if !go_on {
            break;
        }
    }
    runs.push(logged(
        scenarios::seatmap(
            t,
            &storm_event,
            storm_seats.len(),
            &Schedule::new(plan.seatmap_rate, step),
        )
        .await,
    ));

    log("hold storm");
    let storm = |contention: f64| Storm {
        event: storm_event.clone(),
        seats: storm_seats.clone(),
        contention,
        hot: 100,
        release: true,
    };
    let mut best = plan.hold_rates[0];
    let mut fastest_holds = None;
    for rate in &plan.hold_rates {
        let s =
            logged(scenarios::holds(t, &buyers, &storm(0.0), &Schedule::new(*rate, step)).await);
        if s.kept_up() && s.p99_ms <= 50.0 {
            best = *rate;
        }
        if s.kept_up() {
            fastest_holds = Some(s.clone());
        }
        let go_on = climb(t, &s).await;
        runs.push(s);
        if !go_on {
            break;
        }
    }
    runs.push(logged(
        scenarios::holds(
            t,
            &buyers,
            &storm(1.0),
            &Schedule::new(plan.hot_hold_rate, step),
        )
        .await,
    ));
    quiesce(t).await;
    log(&format!("sustained holds at {best}/s"));
    let sustained_holds = logged(
        scenarios::holds(
            t,
            &buyers,
            &storm(0.0),
            &Schedule::new(best, Duration::from_secs(plan.sustained_secs)),
        )
        .await,
    );

    quiesce(t).await;
    log("profiling the hold path");
    let hold_profile = match crate::profile::hold_profile(
        t,
        &buyers,
        &storm(0.0),
        plan.hot_hold_rate,
        plan.profile_secs,
    )
    .await
    {
        Ok(p) => {
            logged(p.stats.clone());
            Some(p)
        }
        Err(e) => {
            log(&format!("  profile not taken: {e}"));
            None
        }
    };

    quiesce(t).await;
    log("checkout");
    let mut offset = 0usize;
    for rate in &plan.checkout_rates {
        let n = (rate * step.as_secs_f64()) as usize;
        let end = (offset + n).min(checkout_seats.len());
        let slice = Arc::new(checkout_seats[offset..end].to_vec());
        offset = end;
        let s = logged(
            scenarios::checkout(
                t,
                &buyers,
                &checkout_event,
                slice,
                &Schedule::new(*rate, step),
            )
            .await,
        );
        let go_on = climb(t, &s).await;
        runs.push(s);
        if !go_on {
            break;
        }
    }

    // The fastest checkout step kept up with, for the flash sale's admission rate.
    let checkout_capacity = runs
        .iter()
        .filter(|r| r.name.starts_with("checkout") && r.kept_up())
        .map(|r| r.achieved_rate)
        .fold(0.0_f64, f64::max);

    log("overload (load shedding)");
    let over_event = format!("bench-overload-{id}");
    let over_seats = Arc::new(t.setup_event(&over_event, &big, 1_000_000).await?);
    let overload = overload(
        t,
        plan,
        &buyers,
        &storm(0.0),
        (best, checkout_capacity),
        (&over_event, over_seats),
    )
    .await;

    quiesce(t).await;
    log("queue polls");
    let queue_event = format!("bench-queue-{id}");
    scenarios::waiting_room_event(t, &queue_event).await?;
    let pollers = Buyers::new(t, &format!("poller-{id}"), plan.poll_buyers)?;
    for rate in &plan.poll_rates {
        let s = logged(
            scenarios::queue_polls(t, &pollers, &queue_event, &Schedule::new(*rate, step)).await?,
        );
        let go_on = climb(t, &s).await;
        runs.push(s);
        if !go_on {
            break;
        }
    }

    quiesce(t).await;
    log("flash sale");
    let flash = flash_sale(
        t,
        &format!("bench-flash-{id}"),
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
    log("allocation strategies side by side");
    let base_event = format!("bench-baseline-{id}");
    let base_seats = Arc::new(t.setup_event(&base_event, &big, 1_000_000).await?);
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
                duration: step,
            };
            let c = baselines::compare(t, strategy, &base_event, base_seats.clone(), &load).await?;
            logged(c.stats.clone());
            compared.push(c);
        }
    }

    let targets = targets(&redis_ceiling, &runs, &sustained_holds, &flash, &compared);
    Ok(Report {
        plan: plan.clone(),
        machine: Machine::here(),
        redis_ceiling,
        http_ceiling,
        pg_ceiling,
        runs,
        overload,
        sustained_holds,
        fastest_holds,
        hold_profile,
        flash,
        baselines: compared,
        targets,
    })
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

fn targets(
    redis: &Stats,
    runs: &[Stats],
    sustained: &Stats,
    flash: &FlashReport,
    compared: &[Comparison],
) -> Vec<Target_> {
    let best = |prefix: &str| -> Option<&Stats> {
        runs.iter()
            .filter(|s| s.name.starts_with(prefix) && s.kept_up())
            .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate))
    };
    let describe = |s: Option<&Stats>| {
        s.map(|s| {
            format!(
                "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                s.achieved_rate, s.p50_ms, s.p99_ms
            )
        })
        .unwrap_or_else(|| "no step kept up".into())
    };
    // Redis ceiling in holds/s: each pair is one hold.
    let ratio = sustained.ok as f64 / sustained.seconds.max(1e-9) / redis.achieved_rate.max(1e-9);
    let holds_per_sec = sustained.ok as f64 / sustained.seconds.max(1e-9);
    let checkout = best("checkout");
    let browse = runs
        .iter()
        .filter(|s| s.name.starts_with("browse"))
        .min_by(|a, b| a.p50_ms.total_cmp(&b.p50_ms));
    let seatmap = runs.iter().find(|s| s.name.starts_with("seat map"));
    let polls = best("queue polls");
    let high = |s: Strategy| {
        compared
            .iter()
            .find(|c| c.strategy == s && c.contention == "high")
            .map(|c| c.holds_per_sec)
            .unwrap_or(0.0)
    };
    let (ours, a) = (high(Strategy::Ours), high(Strategy::PessimisticA));
    vec![
        Target_ {
            target: "holds: ≥ 20,000/s sustained 60 s, p99 ≤ 50 ms, ≥ 0.5 of the Redis ceiling".into(),
            measured: format!(
                "{:.0} holds/s over {:.0} s (offered {:.0}/s), p99 {:.2} ms, {:.2} of the Redis ceiling ({:.0} pairs/s), failed {}, not sent {}",
                holds_per_sec,
                sustained.seconds,
                sustained.target_rate.unwrap_or(0.0),
                sustained.p99_ms,
                ratio,
                redis.achieved_rate,
                sustained.failed,
                sustained.not_sent + sustained.unfinished
            ),
            met: holds_per_sec >= 20_000.0 && sustained.p99_ms <= 50.0 && ratio >= 0.5 && sustained.kept_up(),
        },
        Target_ {
            target: "checkout: ≥ 3,000 commits/s durably, p99 ≤ 250 ms".into(),
            measured: describe(checkout),
            met: checkout.is_some_and(|s| s.achieved_rate >= 3_000.0 * 0.98 && s.p99_ms <= 250.0),
        },
        Target_ {
            target: "browse p50 ≤ 2 ms".into(),
            measured: describe(browse),
            met: browse.is_some_and(|s| s.p50_ms <= 2.0 && s.kept_up()),
        },
        Target_ {
            target: "seat map (50,000 seats) p50 ≤ 10 ms from cache".into(),
            measured: describe(seatmap),
            met: seatmap.is_some_and(|s| s.p50_ms <= 10.0 && s.kept_up() && s.name.contains("50000")),
        },
        Target_ {
            target: "queue polls ≥ 30,000/s".into(),
            measured: describe(polls),
            met: polls.is_some_and(|s| s.achieved_rate >= 30_000.0 * 0.98),
        },
        Target_ {
            target: "flash sale: 100,000 users for 20,000 seats sells out, zero oversell, zero lost orders".into(),
            measured: format!(
                "{} users, {} seats: {} sold in {:.1} s; sold twice {}, confirmed orders missing {}, payments without order {}",
                flash.sale.users,
                flash.sale.seats,
                flash.sold_in_postgres,
                flash.sold_out_after_s,
                flash.seats_sold_twice,
                flash.confirmed_orders_missing,
                flash.payments_without_order
            ),
            met: flash.correct
                && flash.sold_in_postgres == flash.sale.seats as i64
                && flash.sale.users >= 100_000,
        },
        Target_ {
            target: "ours ≥ 10× Option A's holds/s at high contention".into(),
            measured: format!("ours {ours:.0}/s, Option A {a:.0}/s: {:.1}×", ours / a.max(1e-9)),
            met: ours >= 10.0 * a,
        },
    ]
}

/// What a run's operations cost in CPU, all processes together, and what that allows.
struct Cost {
    /// µs of CPU per operation, all measured processes.
    total_us: f64,
    /// Operations a second the machine's cores allow at that cost.
    bound_per_sec: f64,
    /// The processes, most expensive first: (role, µs per operation).
    by_process: Vec<(String, f64)>,
}

impl Cost {
    fn of(run: &Stats, cores: usize) -> Option<Self> {
        let total_us: f64 = run.cpu_us_per_op.values().sum();
        if total_us <= 0.0 {
            return None;
        }
        let mut by_process: Vec<(String, f64)> = run
            .cpu_us_per_op
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        by_process.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(Self {
            total_us,
            bound_per_sec: cores as f64 * 1e6 / total_us,
            by_process,
        })
    }

    /// "gateway 196 µs (30%), redis 313 µs (48%), …"
    fn shares(&self) -> String {
        self.by_process
            .iter()
            .map(|(k, v)| format!("{k} {v:.0} µs ({:.0}%)", 100.0 * v / self.total_us))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The sentence: what it cost, what the cores allow, what the target would need.
    fn sentence(&self, what: &str, target_per_sec: f64, cores: usize) -> String {
        let budget = cores as f64 * 1e6 / target_per_sec;
        format!(
            "all processes together spent {:.0} µs of CPU per {what} ({}): on {cores} cores, at most about {:.0}/s at that cost. The target needs {budget:.0} µs per {what} over everything, {:.1}× less.",
            self.total_us,
            self.shares(),
            self.bound_per_sec,
            self.total_us / budget
        )
    }
}

impl Report {
    /// The targets this run missed: by how much, and what the run's own figures show bounds them.
    fn missed_markdown(&self) -> String {
        let cores = self.machine.cores;
        let best = |prefix: &str| -> Option<&Stats> {
            self.runs
                .iter()
                .filter(|s| s.name.starts_with(prefix) && s.kept_up())
                .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate))
        };
        let missed = |prefix: &str| {
            self.targets
                .iter()
                .any(|t| t.target.starts_with(prefix) && !t.met)
        };
        let mut items = Vec::new();
        if missed("holds") {
            let s = &self.sustained_holds;
            let rate = s.ok as f64 / s.seconds.max(1e-9);
            let mut item = format!(
                "**Holds**: {rate:.0}/s sustained is {:.0}% of 20,000/s. The Redis ceiling alone (hold + release pairs through the coordinator, no HTTP, {} in flight) is {:.0} pairs/s on these cores, {:.0}% of the target, so no gateway could reach it here.",
                100.0 * rate / 20_000.0,
                self.plan.ceiling_workers,
                self.redis_ceiling.achieved_rate,
                100.0 * self.redis_ceiling.achieved_rate / 20_000.0
            );
            if let Some((run, cost)) = self
                .fastest_holds
                .as_ref()
                .and_then(|r| Cost::of(r, cores).map(|c| (r, c)))
            {
                item.push_str(&format!(
                    " At the fastest step kept up with ({:.0}/s), {} Where a hold's time goes is below.",
                    run.achieved_rate,
                    cost.sentence("hold", 20_000.0, cores)
                ));
            }
            items.push(item);
        }
        if missed("checkout") {
            match best("checkout").and_then(|r| Cost::of(r, cores).map(|c| (r, c))) {
                Some((run, cost)) => {
                    let mut item = format!(
                        "**Checkout**: the fastest step kept up with is {:.0}/s (p99 {:.0} ms), {:.0}% of 3,000/s. At that step {}",
                        run.achieved_rate,
                        run.p99_ms,
                        100.0 * run.achieved_rate / 3_000.0,
                        cost.sentence("checkout (hold + commit)", 3_000.0, cores)
                    );
                    if let Some(pg) = &self.pg_ceiling {
                        item.push_str(&format!(
                            " Postgres's write path is not the bound: the writer's batch alone runs at {:.0} orders/s under pgbench. A checkout is a hold, a charge recorded by the sandbox in Postgres, a commit through the Redis stream to the writer, its batch and the answer back: the cost is spread over every process.",
                            pg.orders_per_sec
                        ));
                    }
                    items.push(item);
                }
                None => items.push("**Checkout**: no step kept up.".into()),
            }
        }
        if missed("queue polls") {
            match best("queue polls").and_then(|r| Cost::of(r, cores).map(|c| (r, c))) {
                Some((run, cost)) => items.push(format!(
                    "**Queue polls**: the fastest step kept up with is {:.0}/s, {:.0}% of 30,000/s. At that step {} The load generator is on the same cores, and its share is part of the cost.",
                    run.achieved_rate,
                    100.0 * run.achieved_rate / 30_000.0,
                    cost.sentence("poll", 30_000.0, cores)
                )),
                None => items.push("**Queue polls**: no step kept up.".into()),
            }
        }
        if missed("ours") {
            let high = |st: Strategy| {
                self.baselines
                    .iter()
                    .find(|c| c.strategy == st && c.contention == "high")
            };
            if let (Some(ours), Some(a)) = (high(Strategy::Ours), high(Strategy::PessimisticA)) {
                let bound = self
                    .fastest_holds
                    .as_ref()
                    .and_then(|r| Cost::of(r, cores))
                    .map(|c| format!(" (what a hold and its release cost at the fastest hold step allows about {:.0}/s over HTTP; this comparison calls the coordinator directly)", c.bound_per_sec))
                    .unwrap_or_default();
                items.push(format!(
                    "**Ours against Option A**: {:.1}× at high contention ({:.0} against {:.0} holds/s), short of 10×. All three share these cores with Postgres and Redis: ours is bound by CPU{bound}, Option A by its row locks (p99 {:.0} ms against ours {:.0} ms).",
                    ours.holds_per_sec / a.holds_per_sec.max(1e-9),
                    ours.holds_per_sec,
                    a.holds_per_sec,
                    a.stats.p99_ms,
                    ours.stats.p99_ms
                ));
            }
        }
        if missed("flash") {
            let f = &self.flash;
            items.push(format!(
                "**Flash sale**: {} of {} seats sold; errors {:?}; every correctness check {}.",
                f.sold_in_postgres,
                f.sale.seats,
                f.errors,
                if f.correct {
                    "held"
                } else {
                    "did **not** hold"
                }
            ));
        }
        // Any other target missed (browse, seat map): its figure, as measured.
        for t in self.targets.iter().filter(|t| !t.met) {
            let explained = ["holds", "checkout", "queue polls", "ours", "flash"]
                .iter()
                .any(|p| t.target.starts_with(p));
            if !explained {
                items.push(format!("**{}**: {}.", t.target, t.measured));
            }
        }
        if items.is_empty() {
            return String::new();
        }
        let mut md = String::from("\n## Missed targets: by how much, and what bounds them\n\nFrom this run's own figures (CPU per operation is each process's CPU time over the operations of that step).\n\n");
        for item in items {
            md.push_str(&format!("- {item}\n"));
        }
        md
    }

    /// BENCHMARKS.md.
    pub fn markdown(&self, command: &str, commit: &str) -> String {
        let mut md = String::new();
        let m = &self.machine;
        md.push_str("# Benchmarks\n\n");
        md.push_str(&format!(
            "Every figure below comes from one run of `{command}` (commit `{commit}`, scale `{}`); \
             the file is written by that command, not by hand. Rerun it to check them.\n\n",
            self.plan.scale
        ));
        md.push_str(&format!(
            "Machine: {} cores ({}), {:.1} GiB memory, Linux {}. Everything co-located: the load \
             generator, one gateway, one reconciler, a 6-node Redis Cluster (3 primaries, 3 \
             replicas) and PostgreSQL share these cores, so every figure is a floor for a real \
             deployment, where they would not.\n\n",
            m.cores, m.cpu, m.memory_gib, m.kernel
        ));
        md.push_str("How to read: the generator is **open-loop** (operations start at the target rate whatever the server does; latency counts from the intended start, so queueing is charged to the server: no coordinated omission) and keeps HDR histograms. `refused` are correct business answers (a seat taken); `failed` are errors; `not sent` means the generator had too many operations in flight (the server could not keep up). CPU µs/op is each process's CPU time during the run divided by the operations completed.\n\n");
        md.push_str("## Targets\n\n| target | measured | met |\n|---|---|---|\n");
        for t in &self.targets {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                t.target,
                t.measured,
                if t.met { "yes" } else { "**no**" }
            ));
        }
        md.push_str(&self.missed_markdown());
        md.push_str("\n## Ceilings (same run)\n\n");
        md.push_str(Stats::header());
        md.push('\n');
        md.push_str(&self.redis_ceiling.row());
        md.push('\n');
        md.push_str(&self.http_ceiling.row());
        md.push('\n');
        match &self.pg_ceiling {
            Some(p) => md.push_str(&format!(
                "\nPostgres (`pgbench`, the durable writer's batch: {} orders and their seats per transaction, multi-row `UNNEST` inserts, `synchronous_commit = on`, {} clients): {:.0} transactions/s = **{:.0} orders/s**, {:.2} ms per transaction.\n",
                p.batch, p.clients, p.tps, p.orders_per_sec, p.latency_ms
            )),
            None => md.push_str("\nPostgres ceiling: pgbench was not available.\n"),
        }
        let ratio = |s: &Stats, ceiling: &Stats| s.achieved_rate / ceiling.achieved_rate.max(1e-9);
        md.push_str("\n## Scenarios\n\n");
        md.push_str(Stats::header());
        md.push('\n');
        for s in self
            .runs
            .iter()
            .chain(std::iter::once(&self.sustained_holds))
        {
            md.push_str(&s.row());
            md.push('\n');
        }
        md.push_str("\nAs shares of the ceilings: ");
        let shares: Vec<String> = self
            .runs
            .iter()
            .chain(std::iter::once(&self.sustained_holds))
            .filter_map(|s| {
                if s.name.starts_with("holds") {
                    Some(format!(
                        "{} at {:.0}/s = {:.2} of the Redis hold+release ceiling",
                        s.name,
                        s.target_rate.unwrap_or(0.0),
                        ratio(s, &self.redis_ceiling)
                    ))
                } else if s.name.starts_with("browse") || s.name.starts_with("queue") {
                    Some(format!(
                        "{} at {:.0}/s = {:.2} of the HTTP ceiling",
                        s.name,
                        s.target_rate.unwrap_or(0.0),
                        ratio(s, &self.http_ceiling)
                    ))
                } else if s.name.starts_with("checkout") {
                    self.pg_ceiling.as_ref().map(|p| {
                        format!(
                            "checkout at {:.0}/s = {:.3} of the Postgres batch ceiling",
                            s.target_rate.unwrap_or(0.0),
                            s.achieved_rate / p.orders_per_sec.max(1e-9)
                        )
                    })
                } else {
                    None
                }
            })
            .collect();
        md.push_str(&shares.join("; "));
        md.push_str(".\n");

        if !self.overload.is_empty() {
            md.push_str("\n## Overload: load shedding\n\n");
            md.push_str("Holds and checkouts offered at multiples of the rate each sustained earlier in this run. Past the gateway's adaptive concurrency limit (`gateway/src/shed.rs`) a request is answered `503 overloaded` at once (`shed`); goodput is what was done as asked per second, and the admitted p99 is over those only. Goal: goodput ≥ 90% of the sustained rate, admitted p99 ≤ 50 ms (holds) / 250 ms (checkout).\n\n| class | sustained/s | offered/s | goodput/s | of sustained | shed | failed | admitted p99 ms | p99 all ms | met |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
            for o in &self.overload {
                md.push_str(&format!(
                    "| {} | {:.0} | {:.0} | {:.0} | {:.0}% | {} | {} | {:.1} | {:.1} | {} |\n",
                    o.class,
                    o.sustainable,
                    o.sustainable * o.factor,
                    o.goodput(),
                    100.0 * o.goodput() / o.sustainable.max(1e-9),
                    o.stats.outcomes.get("shed").copied().unwrap_or(0),
                    o.stats.failed,
                    o.stats.ok_p99_ms,
                    o.stats.p99_ms,
                    if o.met() { "yes" } else { "**no**" }
                ));
            }
            md.push('\n');
            md.push_str(Stats::header());
            md.push('\n');
            for o in &self.overload {
                md.push_str(&o.stats.row());
                md.push('\n');
            }
        }

        let f = &self.flash;
        if let Some(p) = &self.hold_profile {
            let fastest = self.fastest_holds.as_ref();
            md.push_str(&p.markdown(fastest.or(Some(&self.sustained_holds))));
        }
        md.push_str("\n## Flash sale, end to end\n\n");
        md.push_str(&format!(
            "{} buyers arrive at {:.0}/s for {} seats behind a waiting room set to admit {:.0}/s{}; each joins, polls until admitted, takes a best-available hold of one seat and commits (sandbox `tok_visa`). A buyer refused a hold because every seat left is held goes back to the room and tries again once it shows seats free; a commit without an answer (timeout, 503) is sent again with the same idempotency key. Buyers still waiting when the last seat sells leave. The gateway slows the room while its commits are slower than `pace_target_ms` (1 s; README, \"Admission follows checkout's health\"): {}.\n\n",
            f.sale.users,
            f.sale.arrival_rate,
            f.sale.seats,
            f.sale.admit_rate,
            match self.plan.flash_admit_share {
                Some(share) => format!(
                    " ({:.0}% of the fastest checkout step kept up with above)",
                    share * 100.0
                ),
                None => String::new(),
            },
            match (f.pace.lowest, f.pace.mean) {
                (Some(low), Some(mean)) => format!(
                    "read once a second, the pace was under 1 in {} of {} readings, {low:.2} at its lowest, {mean:.2} on average",
                    f.pace.slowed, f.pace.readings
                ),
                _ => "the pace could not be read".to_owned(),
            }
        ));
        md.push_str("| check | value |\n|---|---:|\n");
        for (k, v) in [
            (
                "seats sold (Postgres, live)",
                f.sold_in_postgres.to_string(),
            ),
            ("sold out after (s)", format!("{:.1}", f.sold_out_after_s)),
            ("orders answered 200", f.orders_200.to_string()),
            (
                "commits answered 202, later paid",
                f.orders_pending_then_paid.to_string(),
            ),
            (
                "buyers who left without seats",
                f.left_without_seats.to_string(),
            ),
            (
                "seats sold twice (must be 0)",
                f.seats_sold_twice.to_string(),
            ),
            (
                "200s without their order in Postgres (must be 0)",
                f.confirmed_orders_missing.to_string(),
            ),
            (
                "captured payments without an order (must be 0)",
                f.payments_without_order.to_string(),
            ),
            ("errors", format!("{:?}", f.errors)),
            ("all checks hold", f.correct.to_string()),
        ] {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        md.push('\n');
        md.push_str(Stats::header());
        md.push('\n');
        for s in [&f.join, &f.poll, &f.hold, &f.commit] {
            md.push_str(&s.row());
            md.push('\n');
        }
        md.push_str("\n(Step latencies here are per request, not from an intended start: a buyer's next step waits for the previous one.)\n");

        md.push_str("\n## Allocation strategies side by side\n\n");
        md.push_str(&format!(
            "The design document's Option A and Option B against ours, on the same Postgres and the same seats (the bench venue), two adjacent seats per hold, {} concurrent buyers each, closed loop for {} s; every successful hold is released at once, within the timed operation, so the seats stay contended. Low contention: each buyer its own seats. High contention: everyone on the same 100 seats. `loadgen/src/baselines.rs` has the exact SQL.\n\n",
            self.plan.baseline_workers,
            self.plan.step_secs
        ));
        md.push_str("| strategy | contention | holds/s | p50 ms | p99 ms | refused (taken) | CAS retries | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
        for c in &self.baselines {
            md.push_str(&format!(
                "| {:?} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |\n",
                c.strategy,
                c.contention,
                c.holds_per_sec,
                c.stats.p50_ms,
                c.stats.p99_ms,
                c.stats.refused,
                c.retries,
                c.stats.failed
            ));
        }
        md.push_str("\nThe JSON of this run (every histogram summary, outcome and CPU figure) is written next to this file by the same command.\n");
        md
    }
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
