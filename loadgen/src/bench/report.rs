//! What a run measured ([`Report`]), and its rendering as BENCHMARKS.md.

use serde::Serialize;

use crate::baselines::{Comparison, Strategy};
use crate::ceilings::PgBench;
use crate::scenarios::FlashReport;
use crate::stats::Stats;

use super::{Overload, PgPerCheckout, Plan};

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
    /// Postgres's work per checkout, by checkout step.
    pub pg_per_checkout: Vec<PgPerCheckout>,
    /// The sustained hold run.
    pub sustained_holds: Stats,
    /// The fastest step of the hold ladder kept up with, whatever its p99: what a hold costs
    /// there bounds the machine (the sustained run is the fastest within the target's p99, often
    /// a slower step, where fixed costs are spread over fewer holds).
    pub fastest_holds: Option<Stats>,
    /// Where a hold's time goes (None: the profile failed; the error is logged).
    pub hold_profile: Option<crate::profile::HoldProfile>,
    /// Redis calls per checkout (None: the profile failed; the error is logged).
    pub checkout_profile: Option<crate::profile::CheckoutProfile>,
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
    /// Worker threads of each server process (gateway, reconciler, provider), as scripts/bench
    /// started them (`TOKIO_WORKER_THREADS`); `None`: tokio's default, one per core.
    pub server_workers: Option<usize>,
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
            server_workers: std::env::var("BENCH_SERVER_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }
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

/// The design's rates the cores section sizes a deployment for (the holds' is also the holds
/// target the missed-targets section measures against).
const DESIGN_HOLDS_PER_SEC: f64 = 20_000.0;
const DESIGN_CHECKOUTS_PER_SEC: f64 = 5_000.0;
/// The cluster sizes it is sized for.
const PRIMARIES: [f64; 2] = [3.0, 6.0];
/// Our processes (the load generator and the payment provider are not ours).
const OURS: [&str; 4] = ["gateway", "reconciler", "redis", "postgres"];

/// One row of the cores section: an operation's measured cost and what a design rate needs.
fn cores_row(what: &str, run: &Stats, design: f64) -> String {
    let us = |k: &str| run.cpu_us_per_op.get(k).copied().unwrap_or(0.0);
    let ours: f64 = OURS.iter().map(|k| us(k)).sum();
    if ours <= 0.0 {
        return String::new();
    }
    let primary = run.redis_primaries_us_per_op;
    // A Redis primary is one thread: it must do its share of the rate within one core.
    let per_primary = PRIMARIES
        .iter()
        .map(|p| {
            let load = design / p * primary / 1e6;
            if primary <= 0.0 {
                "-".to_owned()
            } else if load <= 1.0 {
                format!("{load:.2} of a core")
            } else {
                format!("**{load:.2} cores: over one**")
            }
        })
        .collect::<Vec<_>>();
    format!(
        "| {what} | {:.0}/s | {ours:.0} ({:.0} / {:.0} / {:.0} / {:.0}) | {primary:.0} | **{:.0}** | {design:.0}/s | {:.1} | {} | {} | {} |\n",
        run.achieved_rate,
        us("gateway"),
        us("reconciler"),
        us("redis"),
        us("postgres"),
        1e6 / ours,
        design * ours / 1e6,
        per_primary[0],
        per_primary[1],
        if primary > 0.0 {
            format!("{:.0}", (design * primary / 1e6).ceil())
        } else {
            "-".to_owned()
        },
    )
}

impl Report {
    /// Holds and checkouts per core of ours at this run's measured cost, and the cores the
    /// design's rates would need at that cost, with what each Redis primary would carry.
    fn cores_markdown(&self) -> String {
        let checkout = self
            .runs
            .iter()
            .filter(|s| s.name.starts_with("checkout") && s.kept_up())
            .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate));
        let mut rows = cores_row(
            "hold + release (the sustained run)",
            &self.sustained_holds,
            DESIGN_HOLDS_PER_SEC,
        );
        if let Some(c) = checkout {
            rows.push_str(&cores_row(
                "checkout: hold + commit (fastest step kept up with)",
                c,
                DESIGN_CHECKOUTS_PER_SEC,
            ));
        }
        if rows.is_empty() {
            return String::new();
        }
        format!(
            "\n## Cores for the design's rates\n\nAt each operation's measured CPU cost over our processes (gateway / reconciler / Redis / Postgres; the load generator and the payment provider are not ours), how many operations one core of ours does, and how many cores the design's rate would need at that cost with every process on cores of its own. Redis's part is split by role: a primary is one thread, so with P primaries each must carry its share of the rate within one core (replicas apply the writes and are the rest of Redis's figure). The shares assume the rate spreads evenly over the primaries, as many events, sections and buyers do; one hot section is one slot, on one primary, and a floor of 8 shards uses at most 8. A primary over one core means the rate needs more primaries at this cost, or a cheaper operation; the last column is the fewest that would do. These are the costs measured on these shared cores, where every process also pays for the others' wakeups: a floor on what dedicated cores would do.\n\n| operation | measured at | µs of ours per op (gw / rec / redis / pg) | Redis primaries µs per op | per core of ours /s | design rate | cores of ours needed | each primary, 3 primaries | each primary, 6 primaries | primaries needed |\n|---|---:|---:|---:|---:|---:|---:|---|---|---:|\n{rows}\nBoth at once ({DESIGN_HOLDS_PER_SEC:.0} holds and releases and {DESIGN_CHECKOUTS_PER_SEC:.0} checkouts a second, each checkout with its own hold) need the sum of the two rows' cores, and each primary the sum of its two loads.\n"
        )
    }

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
                100.0 * rate / DESIGN_HOLDS_PER_SEC,
                self.plan.ceiling_workers,
                self.redis_ceiling.achieved_rate,
                100.0 * self.redis_ceiling.achieved_rate / DESIGN_HOLDS_PER_SEC
            );
            if let Some((run, cost)) = self
                .fastest_holds
                .as_ref()
                .and_then(|r| Cost::of(r, cores).map(|c| (r, c)))
            {
                item.push_str(&format!(
                    " At the fastest step kept up with ({:.0}/s), {} Where a hold's time goes is below.",
                    run.achieved_rate,
                    cost.sentence("hold", DESIGN_HOLDS_PER_SEC, cores)
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
             deployment, where they would not.{}\n\n",
            m.cores,
            m.cpu,
            m.memory_gib,
            m.kernel,
            match m.server_workers {
                Some(n) => format!(
                    " The gateway, the reconciler and the provider each run {n} tokio worker \
                     thread{} (`TOKIO_WORKER_THREADS`): with nine processes on two cores, more \
                     threads than a process gets cores cost CPU in wakeups and cross-thread \
                     hand-offs.",
                    if n == 1 { "" } else { "s" }
                ),
                None => String::new(),
            }
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

        if !self.pg_per_checkout.is_empty() {
            md.push_str("\n## Postgres per checkout\n\nFrom `pg_stat_database` (this database) and `pg_stat_wal` deltas over each checkout step, divided by the checkouts paid; everything of ours that touches Postgres is in them (gateway, reconciler), the payment provider is not (its own service). A transaction is any statement that commits, reads included; a writing transaction is one that was given a transaction id (from `pg_current_snapshot()`'s next id, so server-wide, not this database's alone): read-only transactions are not given one, while a write, a row lock (`SELECT … FOR UPDATE`) or a rollback after either is; the background passes' share is in it; a WAL flush is a synchronous commit reaching the disk (a group commit shares one among several).\n\n| checkout step /s | transactions per checkout | writing transactions per checkout | WAL flushes per checkout | rows written per checkout |\n|---:|---:|---:|---:|---:|\n");
            for p in &self.pg_per_checkout {
                md.push_str(&format!(
                    "| {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
                    p.rate, p.xacts, p.writing_xacts, p.wal_syncs, p.rows_written
                ));
            }
        }
        if !self.overload.is_empty() {
            md.push_str("\n## Overload: load shedding\n\n");
            md.push_str("Holds and checkouts offered at multiples of the rate each sustained earlier in this run. Past the gateway's adaptive concurrency limit (`gateway/src/shed.rs`) a hold is answered `503 overloaded` at once (`shed`), and a commit first waits in line for a place, up to `commit_wait_ms` (2 s), and is shed only then: its wait counts in its latency; goodput is what was done as asked per second, and the admitted p99 is over those only. Goal: goodput ≥ 90% of the sustained rate, admitted p99 ≤ 50 ms (holds) / 250 ms (checkout).\n\n| class | sustained/s | offered/s | goodput/s | of sustained | shed | failed | admitted p99 ms | p99 all ms | met |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
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

        md.push_str(&self.cores_markdown());
        let f = &self.flash;
        if let Some(p) = &self.hold_profile {
            let fastest = self.fastest_holds.as_ref();
            md.push_str(&p.markdown(fastest.or(Some(&self.sustained_holds))));
        }
        if let Some(p) = &self.checkout_profile {
            md.push_str(&p.markdown());
        }
        md.push_str("\n## Flash sale, end to end\n\n");
        md.push_str(&format!(
            "{} buyers arrive at {:.0}/s for {} seats behind a waiting room set to admit {:.0}/s{}; each joins, polls until admitted, takes a best-available hold of one seat and commits (sandbox `tok_visa`). A buyer refused a hold because every seat left is held goes back to the room and tries again once it shows seats free; a commit without an answer (timeout, 503) is sent again with the same idempotency key. Buyers still waiting when the last seat sells leave. The gateway slows the room while its commits are slower than `pace_target_ms` ({} ms here; README, \"Admission follows checkout's health\"): {}.\n\n",
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
            // The gateway's setting as scripts/bench exported it (the gateway's default else).
            std::env::var("SEATS_PAYMENTS__PACE_TARGET_MS")
                .ok()
                .and_then(|ms| ms.parse::<u64>().ok())
                .unwrap_or(1_000),
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
