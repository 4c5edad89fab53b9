//! The Postgres pool every process builds, and its saturation as a metric: both processes
//! export it under their own prefix.

use prometheus::{IntGaugeVec, Opts};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// A pool of at most `max` connections, as every process of ours makes it. sqlx pings a
/// connection each time it is taken from the pool by default: one more round trip per query,
/// for the process and for Postgres alike. A connection that died is found by the query itself (an error, a 503 for the caller) and
/// dropped by the pool, so the ping buys nothing here.
pub fn options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
}

/// `{prefix}_db_pool_connections{state="in_use|idle|max"}`, read from the pool when scraped.
#[derive(Clone)]
pub struct PoolGauge(IntGaugeVec);

impl PoolGauge {
    /// The gauge, named for the process (`gateway`, `reconciler`).
    pub fn new(prefix: &str) -> Result<Self, prometheus::Error> {
        Ok(Self(IntGaugeVec::new(
            Opts::new(
                format!("{prefix}_db_pool_connections"),
                "Postgres pool connections by state (in_use near max: the pool is the bottleneck)",
            ),
            &["state"],
        )?))
    }

    /// For the process's registry.
    pub fn collector(&self) -> Box<IntGaugeVec> {
        Box::new(self.0.clone())
    }

    /// Reads the pool's current numbers (cheap: counters in memory, no query).
    pub fn observe(&self, pool: &PgPool) {
        let size = i64::from(pool.size());
        let idle = pool.num_idle() as i64;
        self.0.with_label_values(&["in_use"]).set(size - idle);
        self.0.with_label_values(&["idle"]).set(idle);
        self.0
            .with_label_values(&["max"])
            .set(i64::from(pool.options().get_max_connections()));
    }
}
