//! A real Redis Cluster, never a mock.
//!
//! `shared()` connects to the cluster the test command started (`SEATS_TEST_REDIS_NODES`), or
//! starts one with `scripts/stack` under the target folder when run by a bare `cargo test`.
//! `dedicated()` starts a cluster of its own on free ports for tests that fail nodes over or flush
//! scripts, and stops it when dropped. Every test isolates itself with its own event id; nothing
//! flushes a keyspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use coordinator::open::{OpenOutcome, SectionInventory};
use coordinator::{Coordinator, EventId, Limits, RedisSettings, SeatId, SectionId};

/// `<target>/tmp`: where a test binary (`<target>/debug/deps/<test>`) keeps its clusters, as
/// Cargo's `CARGO_TARGET_TMPDIR` would say to an integration test.
pub fn target_tmpdir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's root (for `scripts/stack`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn stack(dir: &Path, base_port: &str, args: &[&str]) -> String {
    // One stack start at a time: "auto" picks free ports, and two starts could pick the same.
    let lock = std::env::temp_dir().join("seat-coordinator-stack.lock");
    // -o: the daemons started under the lock must not inherit (and so keep) it.
    let out = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .arg(repo_root().join("scripts/stack"))
        .args(args)
        .env("STACK_DIR", dir)
        .env("REDIS_BASE_PORT", base_port)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run scripts/stack");
    assert!(
        out.status.success(),
        "scripts/stack {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nodes_from_env_output(env: &str) -> Vec<String> {
    env.lines()
        .find_map(|l| l.strip_prefix("export SEATS_REDIS__NODES="))
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Seed nodes of the shared test cluster.
pub fn shared_nodes() -> Vec<String> {
    if let Ok(nodes) = std::env::var("SEATS_TEST_REDIS_NODES") {
        return nodes.split(',').map(str::to_owned).collect();
    }
    let dir = target_tmpdir().join("shared-stack");
    stack(&dir, "auto", &["up"]);
    nodes_from_env_output(&stack(&dir, "auto", &["env"]))
}

/// Limits for tests: the defaults, but TTLs as short as one second.
pub fn test_limits() -> Limits {
    Limits {
        min_ttl_secs: 1,
        ..Limits::default()
    }
}

pub async fn connect(nodes: Vec<String>, limits: Limits) -> Coordinator {
    let settings = RedisSettings {
        nodes,
        ..RedisSettings::default()
    };
    Coordinator::connect(&settings, limits)
        .await
        .expect("connect to the test cluster")
}

pub async fn shared() -> Coordinator {
    connect(shared_nodes(), test_limits()).await
}

/// A cluster of its own, stopped on drop.
pub struct Dedicated {
    dir: PathBuf,
    pub nodes: Vec<String>,
}

impl Dedicated {
    pub fn start(name: &str) -> Self {
        let dir = target_tmpdir().join(format!("stack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        stack(&dir, "auto", &["up"]);
        let nodes = nodes_from_env_output(&stack(&dir, "auto", &["env"]));
        Self { dir, nodes }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|n| n.rsplit_once(':').unwrap().1.parse().unwrap())
            .collect()
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/stack"))
            .arg("down")
            .env("STACK_DIR", &self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p PORT args...`, trimmed stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Calls of one command (`INFO commandstats` name: `evalsha`, `hlen`, ...) over every primary
/// of `ports`, the commands scripts run inside Redis included.
pub fn command_calls(ports: &[u16], command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:");
    ports
        .iter()
        .filter(|p| redis_cli(**p, &["ROLE"]).starts_with("master"))
        .flat_map(|p| {
            redis_cli(*p, &["INFO", "commandstats"])
                .lines()
                .filter_map(|l| l.strip_prefix(prefix.as_str()))
                .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("calls=")))
                .map(|n| n.parse::<u64>().expect("a count"))
                .collect::<Vec<_>>()
        })
        .sum()
}

/// A fresh event id per test and per call.
pub fn unique_event(prefix: &str) -> EventId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    EventId::parse(&format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
    .unwrap()
}

pub fn seat(s: &str) -> SeatId {
    SeatId::parse(s).unwrap()
}

pub fn seats(list: &[&str]) -> Vec<SeatId> {
    list.iter().map(|s| seat(s)).collect()
}

/// Opens an event with `sections` sections named s0.. of `per_section` seats named `<section>-<n>`.
pub async fn open_grid(
    c: &Coordinator,
    event: &EventId,
    sections: usize,
    per_section: usize,
) -> Vec<SectionInventory> {
    let inventory: Vec<SectionInventory> = (0..sections)
        .map(|s| SectionInventory {
            sold: Default::default(),
            blocked: Default::default(),
            section: SectionId::parse(&format!("s{s}")).unwrap(),
            seats: (0..per_section)
                .map(|n| seat(&format!("s{s}-{n}")))
                .collect(),
        })
        .collect();
    let outcome = c.open_event(event, &inventory).await.unwrap();
    assert_eq!(
        outcome,
        OpenOutcome::Opened {
            seats_added: (sections * per_section) as u64,
            capacity: (sections * per_section) as u64
        }
    );
    inventory
}
