//! What a run measured: an HDR histogram of latencies (microseconds, 3 significant digits),
//! outcomes by label, and the CPU each process spent.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::procs::CpuDelta;

/// How one operation ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Done as asked.
    Ok,
    /// Refused for a business reason the scenario expects (a seat taken, sold out): a correct,
    /// fast answer, counted in throughput, not an error.
    Refused(&'static str),
    /// An error: an unexpected status, a transport failure, a broken invariant.
    Failed(String),
}

impl Outcome {
    /// From an HTTP status: `ok` statuses are successes, `refused` ones business refusals.
    pub fn from_status(status: u16, ok: &[u16], refused: &[(u16, &'static str)]) -> Self {
        if ok.contains(&status) {
            Outcome::Ok
        } else if let Some((_, label)) = refused.iter().find(|(s, _)| *s == status) {
            Outcome::Refused(label)
        } else {
            Outcome::Failed(format!("http_{status}"))
        }
    }

    /// A transport error, labelled by kind (never the message: it may hold a URL with a token).
    pub fn transport(e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else {
            "transport"
        };
        Outcome::Failed(kind.into())
    }
}

/// Accumulates one run.
#[derive(Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
    /// Latencies of the operations done as asked: what an admitted request waited, when shed
    /// ones answer fast.
    ok_hist: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    ok: u64,
    refused: u64,
    failed: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            // 1 µs to 10 min, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|e| unreachable!("constant bounds: {e}")),
            ok_hist: Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|e| unreachable!("constant bounds: {e}")),
            outcomes: BTreeMap::new(),
            ok: 0,
            refused: 0,
            failed: 0,
        }
    }
}

impl Recorder {
    /// One operation's latency and outcome.
    pub fn record(&mut self, latency: Duration, outcome: &Outcome) {
        let us = (latency.as_micros() as u64).clamp(1, 600_000_000);
        self.hist.saturating_record(us);
        let label = match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.ok_hist.saturating_record(us);
                "ok".to_owned()
            }
            Outcome::Refused(l) => {
                self.refused += 1;
                (*l).to_owned()
            }
            Outcome::Failed(l) => {
                self.failed += 1;
                l.clone()
            }
        };
        *self.outcomes.entry(label).or_default() += 1;
    }

    /// Adds another recorder's counts.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.hist.add(&other.hist);
        let _ = self.ok_hist.add(&other.ok_hist);
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.ok += other.ok;
        self.refused += other.refused;
        self.failed += other.failed;
    }

    /// The run's summary.
    pub fn finish(
        &self,
        name: &str,
        target_rate: Option<f64>,
        elapsed: Duration,
        not_sent: u64,
        unfinished: u64,
        cpu: CpuDelta,
    ) -> Stats {
        let completed = self.ok + self.refused + self.failed;
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1000.0;
        let per_op = |ms: f64| {
            if completed == 0 {
                0.0
            } else {
                ms * 1000.0 / completed as f64
            }
        };
        Stats {
            name: name.to_owned(),
            target_rate,
            seconds: elapsed.as_secs_f64(),
            completed,
            ok: self.ok,
            refused: self.refused,
            failed: self.failed,
            not_sent,
            unfinished,
            achieved_rate: completed as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            ok_p99_ms: self.ok_hist.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: self.hist.max() as f64 / 1000.0,
            outcomes: self.outcomes.clone(),
            cpu_us_per_op: cpu
                .ms
                .iter()
                .map(|(k, ms)| (k.clone(), per_op(*ms)))
                .collect(),
            cpu_cores: cpu
                .ms
                .iter()
                .map(|(k, ms)| (k.clone(), ms / 1000.0 / elapsed.as_secs_f64().max(1e-9)))
                .collect(),
            redis_primaries_us_per_op: per_op(cpu.redis_primaries_ms),
        }
    }
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Scenario and parameters.
    pub name: String,
    /// Operations started per second (open loop); none for closed-loop runs.
    pub target_rate: Option<f64>,
    /// Wall time from the first start to the last completion.
    pub seconds: f64,
    /// Operations that ended (ok + refused + failed).
    pub completed: u64,
    /// Done as asked.
    pub ok: u64,
    /// Business refusals (seat taken, sold out).
    pub refused: u64,
    /// Errors.
    pub failed: u64,
    /// Not started: too many in flight (the target could not keep up).
    pub not_sent: u64,
    /// Still running when the drain ended.
    pub unfinished: u64,
    /// Completed operations per second.
    pub achieved_rate: f64,
    /// Latency percentiles from the intended start, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// 99th percentile of the operations done as asked (`ok`) only, ms.
    pub ok_p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Counts by outcome label (`ok`, refusal reasons, error kinds such as `http_503`).
    pub outcomes: BTreeMap<String, u64>,
    /// CPU time per completed operation by process (gateway, reconciler, redis, postgres,
    /// loadgen), µs.
    pub cpu_us_per_op: BTreeMap<String, f64>,
    /// Average cores busy during the run, by process.
    pub cpu_cores: BTreeMap<String, f64>,
    /// Of `cpu_us_per_op["redis"]`, what the Redis Cluster's primaries spent, µs.
    pub redis_primaries_us_per_op: f64,
}

/// An open-loop step whose median operation waited longer than this built a queue: its
/// operations are served far behind their schedule (every scenario's median is a few to a
/// hundred milliseconds when the system keeps up).
pub const KEPT_UP_P50_MS: f64 = 250.0;

impl Stats {
    /// Whether the run kept up with its schedule: everything sent, nothing left running, no
    /// errors beyond one in a thousand, and (for an open-loop run) at least 95% of the target
    /// rate achieved with half the operations done within [`KEPT_UP_P50_MS`]. Without the
    /// rate, a step the system only finished long after its schedule (the 1,000/s checkout
    /// step: 732/s achieved, p50 2.9 s) counted as kept up, and the flash sale's admission was
    /// set from it; without the median, one that built a queue as it went (the 500/s checkout
    /// step: 479/s, p50 712 ms) did, and the flash sale's commits timed out behind it.
    pub fn kept_up(&self) -> bool {
        let paced = self
            .target_rate
            .is_none_or(|rate| self.achieved_rate >= 0.95 * rate && self.p50_ms <= KEPT_UP_P50_MS);
        // A request the gateway shed (503 overloaded) is a correct answer, but not one the
        // system kept up with: a step that sheds more than one in a thousand is past capacity.
        let shed = self.outcomes.get("shed").copied().unwrap_or(0);
        paced
            && self.not_sent == 0
            && self.unfinished == 0
            && (self.failed as f64) <= 0.001 * self.completed.max(1) as f64
            && (shed as f64) <= 0.001 * self.completed.max(1) as f64
    }

    /// Table header for [`Stats::row`].
    pub fn header() -> &'static str {
        "| run | target/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | ok | refused | failed | not sent | outcomes | CPU µs/op (gw / rec / redis / pg / gen) | provider CPU µs/op |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"
    }

    /// One Markdown table row.
    pub fn row(&self) -> String {
        let cpu = |k: &str| {
            self.cpu_us_per_op
                .get(k)
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        let outcomes = self
            .outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} / {} / {} / {} / {} | {} |",
            self.name,
            self.target_rate
                .map(|r| format!("{r:.0}"))
                .unwrap_or_else(|| "closed".into()),
            self.achieved_rate,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.ok,
            self.refused,
            self.failed,
            self.not_sent + self.unfinished,
            if outcomes.is_empty() { "-".into() } else { outcomes },
            cpu("gateway"),
            cpu("reconciler"),
            cpu("redis"),
            cpu("postgres"),
            cpu("loadgen"),
            cpu("provider"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: u64, target: Option<f64>, seconds: f64) -> Stats {
        run_at(ops, target, seconds, Duration::from_millis(2))
    }

    fn run_at(ops: u64, target: Option<f64>, seconds: f64, each: Duration) -> Stats {
        let mut r = Recorder::default();
        for _ in 0..ops {
            r.record(each, &Outcome::Ok);
        }
        r.finish(
            "t",
            target,
            Duration::from_secs_f64(seconds),
            0,
            0,
            CpuDelta::default(),
        )
    }

    #[test]
    fn a_step_finished_well_behind_its_schedule_did_not_keep_up() {
        // 10,000 operations at 1,000/s: done in 10.2 s kept up, in 13.7 s (732/s) did not.
        assert!(run(10_000, Some(1_000.0), 10.2).kept_up());
        assert!(!run(10_000, Some(1_000.0), 13.66).kept_up());
        // A closed-loop run has no schedule to fall behind.
        assert!(run(10_000, None, 100.0).kept_up());
    }

    /// 10,000 operations at 1,000/s on time, one in a hundred refused as `label`.
    fn one_in_a_hundred_refused(label: &'static str) -> Stats {
        let mut r = Recorder::default();
        for i in 0..10_000 {
            let outcome = if i % 100 == 0 {
                Outcome::Refused(label)
            } else {
                Outcome::Ok
            };
            r.record(Duration::from_millis(2), &outcome);
        }
        r.finish(
            "t",
            Some(1_000.0),
            Duration::from_secs(10),
            0,
            0,
            CpuDelta::default(),
        )
    }

    #[test]
    fn a_step_that_shed_more_than_one_in_a_thousand_did_not_keep_up() {
        assert!(!one_in_a_hundred_refused("shed").kept_up(), "1% shed");
        // Seats taken are business refusals, not capacity: still kept up.
        assert!(one_in_a_hundred_refused("seat_taken").kept_up());
    }

    #[test]
    fn a_step_on_schedule_whose_median_waited_in_a_queue_did_not_keep_up() {
        // 5,000 operations at 500/s done in 10.4 s (479/s), each waiting 712 ms.
        let queued = Duration::from_millis(712);
        assert!(!run_at(5_000, Some(500.0), 10.4, queued).kept_up());
        assert!(run_at(5_000, Some(500.0), 10.4, Duration::from_millis(100)).kept_up());
        assert!(run_at(5_000, None, 10.4, queued).kept_up());
    }
}
