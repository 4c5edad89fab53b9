//! Where a hold's time goes: two views of one short hold storm (every hold released), for
//! BENCHMARKS.md. Redis's own account of every call on every primary (SLOWLOG at a 0 µs
//! threshold: a script is named by its SHA-1, and the commands it runs are part of its time),
//! and, where `perf` is installed and allowed, the gateway's CPU by shared object and symbol.
//! The SLOWLOG costs Redis a little itself, so this runs after the timed runs, never during.

use std::collections::BTreeMap;
use std::time::Duration;

use fred::prelude::*;
use fred::types::CustomCommand;
use serde::Serialize;

use crate::open_loop::Schedule;
use crate::scenarios::{self, Buyers, Storm};
use crate::stats::Stats;
use crate::Target;

/// One kind of Redis call during the profile.
#[derive(Clone, Debug, Serialize)]
pub struct RedisCall {
    /// The script's file, or the command's name.
    pub name: String,
    /// How many.
    pub calls: u64,
    /// Its time inside Redis, µs (what SLOWLOG measures: execution, not I/O).
    pub micros: u64,
}

/// What the profile found.
#[derive(Clone, Debug, Serialize)]
pub struct HoldProfile {
    /// The storm that was profiled.
    pub stats: Stats,
    /// Top-level calls on the primaries, most time first.
    pub redis: Vec<RedisCall>,
    /// Whether a primary's SLOWLOG filled up (the counts are then a floor).
    pub slowlog_full: bool,
    /// The gateway's CPU by shared object, % of its samples (empty without perf).
    pub gateway_by_object: Vec<(String, f64)>,
    /// The gateway's hottest symbols, % of its samples (empty without perf).
    pub gateway_symbols: Vec<(String, f64)>,
    /// Why there is no perf view, if there is none.
    pub perf_missing: Option<String>,
}

const SLOWLOG_LEN: u64 = 2_000_000;

async fn on_each_primary(t: &Target, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let client = t.coordinator.redis().next();
    let primaries = client
        .cached_cluster_state()
        .map(|state| state.unique_primary_nodes())
        .unwrap_or_default();
    let (cmd, rest) = args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no command"))?;
    let mut out = Vec::new();
    for server in primaries {
        // SLOWLOG GET of a long run's entries takes longer than a command's usual timeout.
        let options = fred::types::config::Options {
            cluster_node: Some(server),
            timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        let v: Value = client
            .with_options(&options)
            .custom(
                CustomCommand::new(cmd.to_string(), None::<u16>, false),
                rest.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .await?;
        out.push(v);
    }
    Ok(out)
}

/// Runs the storm at `rate` for `seconds` with the SLOWLOG on (and perf on the gateway when it
/// can), then restores Redis's defaults.
pub async fn hold_profile(
    t: &Target,
    buyers: &Buyers,
    storm: &Storm,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<HoldProfile> {
    let perf = start_perf(seconds);
    let (stats, redis, slowlog_full) = redis_calls(
        t,
        scenarios::holds(
            t,
            buyers,
            storm,
            &Schedule::new(rate, Duration::from_secs(seconds)),
        ),
    )
    .await?;
    let (gateway_by_object, gateway_symbols, perf_missing) = match perf {
        Ok(child) => finish_perf(child).await,
        Err(why) => (Vec::new(), Vec::new(), Some(why)),
    };
    Ok(HoldProfile {
        stats,
        redis,
        slowlog_full,
        gateway_by_object,
        gateway_symbols,
        perf_missing,
    })
}

/// Redis's own account of a checkout run: every top-level call on the primaries, per checkout.
#[derive(Clone, Debug, Serialize)]
pub struct CheckoutProfile {
    /// The checkouts that were profiled.
    pub stats: Stats,
    /// Top-level calls on the primaries, most time first.
    pub redis: Vec<RedisCall>,
    /// Whether a primary's SLOWLOG filled up (the counts are then a floor).
    pub slowlog_full: bool,
}

/// Runs checkout (hold + commit) at `rate` for `seconds` on an event of its own with the SLOWLOG
/// on: every Redis call of the gateway, the durable writer and the reconciler's passes.
pub async fn checkout_profile(
    t: &Target,
    buyers: &Buyers,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<CheckoutProfile> {
    let id = crate::run_id();
    let map = catalog::seatmap::stadium(&format!("profile-stadium-{id}"), "Stadium");
    let event = format!("profile-checkout-{id}");
    let seats = std::sync::Arc::new(t.setup_event(&event, &map, 1_000_000).await?);
    t.load_venue(&event).await?;
    let schedule = Schedule::new(rate, Duration::from_secs(seconds));
    let (stats, redis, slowlog_full) =
        redis_calls(t, scenarios::checkout(t, buyers, &event, seats, &schedule)).await?;
    Ok(CheckoutProfile {
        stats,
        redis,
        slowlog_full,
    })
}

/// Runs `workload` with the SLOWLOG at a 0 µs threshold on every primary, then restores Redis's
/// defaults; the workload's figures and the calls it made, most time first.
async fn redis_calls(
    t: &Target,
    workload: impl std::future::Future<Output = Stats>,
) -> anyhow::Result<(Stats, Vec<RedisCall>, bool)> {
    let len = SLOWLOG_LEN.to_string();
    on_each_primary(t, &["CONFIG", "SET", "slowlog-max-len", &len]).await?;
    on_each_primary(t, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await?;
    on_each_primary(t, &["SLOWLOG", "RESET"]).await?;
    let stats = workload.await;
    on_each_primary(t, &["CONFIG", "SET", "slowlog-log-slower-than", "10000"]).await?;
    let logs = on_each_primary(t, &["SLOWLOG", "GET", "-1"]).await?;
    on_each_primary(t, &["SLOWLOG", "RESET"]).await?;
    on_each_primary(t, &["CONFIG", "SET", "slowlog-max-len", "128"]).await?;

    let names: BTreeMap<String, &str> = t
        .coordinator
        .scripts()
        .all()
        .into_iter()
        .map(|s| (s.sha1().to_owned(), s.name))
        .collect();
    let mut by_name: BTreeMap<String, RedisCall> = BTreeMap::new();
    let mut slowlog_full = false;
    for log in logs {
        let Value::Array(entries) = log else { continue };
        slowlog_full |= entries.len() as u64 >= SLOWLOG_LEN;
        for entry in entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let (Some(micros), Some(Value::Array(argv)), Some(client)) = (
                fields.get(2).and_then(Value::as_i64),
                fields.get(3),
                fields.get(4).and_then(Value::as_string),
            ) else {
                continue;
            };
            // Commands a script runs come from the script's own client ("?:0"): part of the
            // script's time already.
            if client.starts_with('?') {
                continue;
            }
            let cmd = argv
                .first()
                .and_then(Value::as_string)
                .unwrap_or_default()
                .to_uppercase();
            let name = match cmd.as_str() {
                "EVALSHA" => argv
                    .get(1)
                    .and_then(Value::as_string)
                    .map(|sha| names.get(&sha).map_or(sha.clone(), |n| n.to_string()))
                    .unwrap_or(cmd),
                _ => cmd,
            };
            let call = by_name.entry(name.clone()).or_insert(RedisCall {
                name,
                calls: 0,
                micros: 0,
            });
            call.calls += 1;
            call.micros += micros.max(0) as u64;
        }
    }
    let mut redis: Vec<RedisCall> = by_name.into_values().collect();
    redis.sort_by_key(|c| std::cmp::Reverse(c.micros));
    Ok((stats, redis, slowlog_full))
}

/// The table of Redis calls per operation (`per`: "hold", "checkout"); the totals, calls and µs
/// per operation.
fn calls_table(md: &mut String, calls: &[RedisCall], ops: f64, per: &str) -> (f64, f64) {
    md.push_str(&format!(
        "| call | calls per {per} | µs per call | µs per {per} |\n|---|---:|---:|---:|\n"
    ));
    let (mut total, mut micros) = (0u64, 0u64);
    for c in calls {
        total += c.calls;
        micros += c.micros;
        md.push_str(&format!(
            "| {} | {:.2} | {:.1} | {:.1} |\n",
            c.name,
            c.calls as f64 / ops,
            c.micros as f64 / c.calls.max(1) as f64,
            c.micros as f64 / ops
        ));
    }
    md.push_str(&format!(
        "| **all** | {:.2} | | {:.1} |\n\n",
        total as f64 / ops,
        micros as f64 / ops
    ));
    (total as f64 / ops, micros as f64 / ops)
}

impl CheckoutProfile {
    /// Redis calls per checkout, over every primary (0 without checkouts).
    pub fn calls_per_checkout(&self) -> f64 {
        let n = self.stats.ok.max(1) as f64;
        self.redis.iter().map(|c| c.calls as f64).sum::<f64>() / n
    }

    /// The BENCHMARKS.md section.
    pub fn markdown(&self) -> String {
        let s = &self.stats;
        let mut md = String::from("\n## Where a checkout's Redis calls go\n\n");
        md.push_str(&format!(
            "A {:.0} s checkout run at {:.0}/s after the checkout ladder, on an event of its own ({} checkouts paid; p50 {:.2} ms, p99 {:.2} ms; the SLOWLOG costs a little), with Redis's own account of every call on every primary (SLOWLOG at a 0 µs threshold): the hold, the commit's read and pin, the queued job, the durable writer's check of the pin (a pin again only when little of it is left), its sale and acknowledgement, the announcements, and the reconciler's passes meanwhile. Per checkout paid:\n\n",
            s.seconds,
            s.target_rate.unwrap_or(0.0),
            s.ok,
            s.p50_ms,
            s.p99_ms
        ));
        let (calls, micros) = calls_table(&mut md, &self.redis, s.ok.max(1) as f64, "checkout");
        if self.slowlog_full {
            md.push_str("(A primary's SLOWLOG filled up: the counts above are a floor.)\n\n");
        }
        let redis_cpu = s.cpu_us_per_op.get("redis").copied().unwrap_or(0.0);
        if redis_cpu > 0.0 {
            md.push_str(&format!(
                "Inside Redis that is {micros:.0} µs per checkout of the {redis_cpu:.0} µs of CPU the Redis processes spent per checkout; {calls:.1} calls per checkout.\n\n"
            ));
        }
        md
    }
}

const PERF_DATA: &str = "target/bench-holds.perf";

fn start_perf(seconds: u64) -> Result<std::process::Child, String> {
    let Some(pid) = crate::procs::pids_of("gateway").into_iter().next() else {
        return Err("no gateway process found".into());
    };
    let _ = std::fs::create_dir_all("target");
    std::process::Command::new("perf")
        .args(["record", "-q", "-F", "499", "-g", "-o", PERF_DATA, "-p"])
        .arg(pid.to_string())
        .args(["--", "sleep"])
        .arg(seconds.saturating_sub(1).max(1).to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("perf could not run ({e}); Debian: apt-get install linux-perf"))
}

type PerfViews = (Vec<(String, f64)>, Vec<(String, f64)>, Option<String>);

async fn finish_perf(mut child: std::process::Child) -> PerfViews {
    let waited = tokio::task::spawn_blocking(move || child.wait()).await;
    if !matches!(waited, Ok(Ok(status)) if status.success()) {
        return (
            Vec::new(),
            Vec::new(),
            Some("perf record failed (perf_event_paranoid? run as root)".into()),
        );
    }
    let report = |sort: &str, top: usize| -> Vec<(String, f64)> {
        let out = std::process::Command::new("perf")
            .args(["report", "-q", "-i", PERF_DATA, "--no-children", "--stdio"])
            .args(["-g", "none", "--sort", sort])
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let line = line.trim();
                let (pct, rest) = line.split_once('%')?;
                let pct: f64 = pct.trim().parse().ok()?;
                // Symbols come as "[.] name" (user) or "[k] name" (kernel).
                let name = rest.trim();
                let name = name
                    .strip_prefix("[.] ")
                    .or_else(|| name.strip_prefix("[k] "))
                    .unwrap_or(name);
                // perf pads the column and appends placeholders ("-") for unused ones.
                let name = name.split("  ").next().unwrap_or(name).trim();
                Some((name.chars().take(90).collect(), pct))
            })
            .take(top)
            .collect()
    };
    let objects = report("dso", 8);
    let symbols = report("symbol", 15);
    let missing = objects
        .is_empty()
        .then(|| "perf recorded no samples".to_owned());
    (objects, symbols, missing)
}

impl HoldProfile {
    /// The BENCHMARKS.md section; `fastest`: the fastest hold run this machine kept up with,
    /// whose CPU per hold bounds the machine (at the profile's own rate, fixed costs such as
    /// timers and polling are spread over fewer holds).
    pub fn markdown(&self, fastest: Option<&Stats>) -> String {
        let s = &self.stats;
        let holds = s.completed.max(1) as f64;
        let mut md = String::from("\n## Where a hold's time goes\n\n");
        md.push_str(&format!(
            "A {:.0} s hold storm at {:.0}/s after the timed hold runs ({} holds, each released at once, as above), profiled two ways. Holds in this run: p50 {:.2} ms, p99 {:.2} ms (the profilers cost a little).\n\n",
            s.seconds,
            s.target_rate.unwrap_or(0.0),
            s.completed,
            s.p50_ms,
            s.p99_ms
        ));
        md.push_str("**Redis, by its own account** (SLOWLOG at a 0 µs threshold on every primary; a script's time includes the commands it runs; reading, parsing, answering and replicating are not in it):\n\n");
        let (calls, micros) = calls_table(&mut md, &self.redis, holds, "hold");
        if self.slowlog_full {
            md.push_str("(A primary's SLOWLOG filled up: the counts above are a floor.)\n\n");
        }
        let cpu = |k: &str| s.cpu_us_per_op.get(k).copied().unwrap_or(0.0);
        let redis_cpu = cpu("redis");
        if redis_cpu > 0.0 {
            md.push_str(&format!(
                "Inside Redis that is {:.0} µs per hold of the {:.0} µs of CPU the Redis processes spent per hold ({:.0}%). The rest goes with each call, whatever it does: {:.1} calls per hold are read, parsed and answered, each script's writes are replicated to a replica, and the event loop turns. Fewer calls per hold is what lowers it.\n\n",
                micros,
                redis_cpu,
                100.0 * micros / redis_cpu,
                calls
            ));
        }
        match &self.perf_missing {
            Some(why) => md.push_str(&format!("**Gateway**: no perf view ({why}).\n\n")),
            None => {
                md.push_str("**Gateway** (`perf record -F 499 -g` on the gateway process; self time):\n\n| shared object | % of samples |\n|---|---:|\n");
                for (name, pct) in &self.gateway_by_object {
                    md.push_str(&format!("| {} | {pct:.1} |\n", name.replace('|', "\\|")));
                }
                md.push_str("\n| hottest symbols | % of samples |\n|---|---:|\n");
                for (name, pct) in &self.gateway_symbols {
                    md.push_str(&format!("| `{}` | {pct:.1} |\n", name.replace('|', "\\|")));
                }
                md.push('\n');
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let runs = [
            (fastest, "the fastest rate this machine kept up with"),
            (Some(s), "the profile's rate"),
        ];
        for (run, label) in runs {
            let Some(run) = run else { continue };
            let total: f64 = run.cpu_us_per_op.values().sum();
            if total <= 0.0 {
                continue;
            }
            let cpu = |k: &str| run.cpu_us_per_op.get(k).copied().unwrap_or(0.0);
            md.push_str(&format!(
                "At {label}, {:.0}/s, all processes together spent {:.0} µs of CPU per hold (gateway {:.0}, Redis {:.0}, reconciler {:.0}, Postgres {:.0}, load generator {:.0}): on {:.0} cores, about {:.0} holds/s at most at that cost.\n\n",
                run.target_rate.unwrap_or(run.achieved_rate),
                total,
                cpu("gateway"),
                cpu("redis"),
                cpu("reconciler"),
                cpu("postgres"),
                cpu("loadgen"),
                cores,
                cores * 1e6 / total
            ));
        }
        md
    }
}
