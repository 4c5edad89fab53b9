//! CPU time by process, from `/proc/<pid>/stat` (utime + stime, in USER_HZ ticks: 100 per second
//! on Linux whatever the kernel's HZ). Processes are grouped by role: `gateway`, `reconciler`,
//! `redis` (every redis-server except the machine's own on 6379), `postgres` (every backend),
//! `provider` (the sandbox payment provider service: not ours, reported apart), and `loadgen`
//! (this process; in-process servers of a test count here). Redis's time is also told apart
//! for the cluster's primaries (from each node's `nodes.conf`, `myself,master`): one primary is
//! one thread, so its share per operation says how many primaries a rate needs.

use std::collections::BTreeMap;
use std::fs;

const TICKS_PER_SEC: f64 = 100.0;

/// CPU ms by role at one instant (processes that ended in between are lost: their time is
/// not counted, which undercounts short-lived Postgres backends only).
#[derive(Clone, Debug, Default)]
pub struct CpuSnapshot {
    by_pid: BTreeMap<u32, (String, f64)>,
    /// The Redis processes that were primaries when the snapshot was taken.
    primaries: std::collections::BTreeSet<u32>,
}

/// CPU ms spent by role between a snapshot and now.
#[derive(Clone, Debug, Default)]
pub struct CpuDelta {
    /// Milliseconds of CPU by role.
    pub ms: BTreeMap<String, f64>,
    /// Of `ms["redis"]`, the milliseconds the cluster's primaries spent (replicas are the rest).
    pub redis_primaries_ms: f64,
}

/// Whether the Redis Cluster node `pid` is a primary: its cluster config file, which the stack
/// keeps in the node's working directory, marks its own line `myself,master`.
fn is_primary(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cwd/nodes.conf"))
        .map(|conf| {
            conf.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .any(|flags| flags.split(',').any(|f| f == "myself") && flags.contains("master"))
        })
        .unwrap_or(false)
}

/// Which role a process plays, if it is one we measure.
fn role(pid: u32, me: u32) -> Option<&'static str> {
    if pid == me {
        return Some("loadgen");
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    match comm.trim() {
        "gateway" => Some("gateway"),
        "reconciler" => Some("reconciler"),
        "postgres" => Some("postgres"),
        // `comm` keeps 15 bytes of the name.
        "sandbox-provider" | "sandbox-provide" => Some("provider"),
        c if c.starts_with("redis-server") => {
            let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (!cmdline.contains(":6379")).then_some("redis")
        }
        _ => None,
    }
}

fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ".
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000.0 / TICKS_PER_SEC)
}

/// The pids of the processes playing `wanted` (e.g. `gateway`).
pub fn pids_of(wanted: &str) -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
                .filter(|pid| role(*pid, me) == Some(wanted))
                .collect()
        })
        .unwrap_or_default()
}

/// Every measured process's CPU time now.
pub fn snapshot() -> CpuSnapshot {
    let me = std::process::id();
    let mut by_pid = BTreeMap::new();
    let mut primaries = std::collections::BTreeSet::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let (Some(role), Some(ms)) = (role(pid, me), cpu_ms(pid)) {
                if role == "redis" && is_primary(pid) {
                    primaries.insert(pid);
                }
                by_pid.insert(pid, (role.to_owned(), ms));
            }
        }
    }
    CpuSnapshot { by_pid, primaries }
}

impl CpuSnapshot {
    /// CPU spent since this snapshot, by role (processes started since count from zero).
    pub fn delta(&self) -> CpuDelta {
        let now = snapshot();
        let mut ms: BTreeMap<String, f64> = BTreeMap::new();
        let mut redis_primaries_ms = 0.0;
        for (pid, (role, after)) in &now.by_pid {
            let before = self.by_pid.get(pid).map(|(_, b)| *b).unwrap_or(0.0);
            let spent = (after - before).max(0.0);
            *ms.entry(role.clone()).or_default() += spent;
            // A node that was a primary at either end (a failover in between is rare in a
            // benchmark step, and counting it as a primary errs towards more primaries).
            if self.primaries.contains(pid) || now.primaries.contains(pid) {
                redis_primaries_ms += spent;
            }
        }
        CpuDelta {
            ms,
            redis_primaries_ms,
        }
    }
}
