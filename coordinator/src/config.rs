//! Named, configurable bounds and connection settings.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// Every bound on a hold. Defaults follow the design document (holds of 5 to 15 minutes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Most seats in one hold.
    pub max_seats_per_hold: usize,
    /// Shortest hold a client may ask for, in seconds.
    pub min_ttl_secs: u64,
    /// Longest hold a client may ask for, in seconds.
    pub max_ttl_secs: u64,
    /// TTL when the client names none, in seconds.
    pub default_ttl_secs: u64,
    /// Absolute cap on a hold's life from its creation, extensions included, in seconds.
    pub max_hold_lifetime_secs: u64,
    /// Longest a payment may pin a hold past its expiry, in seconds.
    pub max_pin_secs: u64,
    /// How long one hold attempt may take before another caller with the same client
    /// reservation id may take it over (the first is presumed dead), in milliseconds.
    pub attempt_window_ms: u64,
    /// How long a finished hold's record is kept after its cap to answer replays, in seconds.
    pub record_retention_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_seats_per_hold: 10,
            min_ttl_secs: 60,
            max_ttl_secs: 900,
            default_ttl_secs: 300,
            max_hold_lifetime_secs: 1800,
            max_pin_secs: 120,
            attempt_window_ms: 10_000,
            record_retention_secs: 86_400,
        }
    }
}

/// How to reach the Redis Cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Seed nodes, `host:port`; the rest of the cluster is discovered. A list, or one
    /// comma-separated string (as an environment variable gives it).
    #[serde(deserialize_with = "list_or_commas")]
    pub nodes: Vec<String>,
    /// Connections per node (each pooled client connects to every primary).
    pub pool_size: usize,
    /// Deadline for one command, retries included, in milliseconds.
    pub command_timeout_ms: u64,
    /// Attempts per command when a connection drops under it (failover).
    pub max_command_attempts: u32,
    /// The commit queue's name: deployments (or test databases) sharing one cluster keep their
    /// commits apart by it. Gateways and reconcilers of one deployment must agree.
    pub commit_queue: String,
    /// About how many entries each section's audit stream keeps in Redis (the scripts'
    /// `XADD ... MAXLEN ~`); the reconciler copies them to Postgres and trims what it copied.
    pub audit_max_len: u64,
    /// Holds on one section arriving while a call to it is in flight are gathered into one
    /// call (`coordinator::batch`): the longest one waits for that call, in microseconds.
    pub hold_batch_window_us: u64,
    /// Most holds gathered into one call; 1 turns gathering off.
    pub hold_batch_max: usize,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:7000".into()],
            pool_size: 4,
            command_timeout_ms: 5_000,
            max_command_attempts: 6,
            commit_queue: "main".into(),
            audit_max_len: 1_000_000,
            hold_batch_window_us: 500,
            hold_batch_max: 64,
        }
    }
}

impl RedisSettings {
    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nodes {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Nodes::deserialize(d)? {
        Nodes::List(list) => list,
        Nodes::Commas(s) => s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
