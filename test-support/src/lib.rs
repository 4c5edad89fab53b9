//! What the workspace's integration tests share (a dev-dependency only, never a dependency of
//! a shipped crate). Tests talk to a real Redis Cluster and a real Postgres, each isolated by its
//! own event ids and its own database; nothing flushes a shared keyspace.
//!
//! # Layout
//!
//! - [`cluster`]: the shared test cluster (`SEATS_TEST_REDIS_NODES`, or one started with
//!   `scripts/stack`), clusters of a test's own, unique event ids, seat grids.
//! - [`db`] (feature `db`): a database per test, migrated, dropped afterwards.
//! - [`tokens`] (feature `stack`): bearer tokens signed with the test gateways' secret.
//! - [`stack`] (feature `stack`): a gateway and an in-process reconciler over real HTTP, the
//!   binaries as child processes, and the books check.
#![allow(clippy::unwrap_used)]

pub mod cluster;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "stack")]
pub mod stack;
#[cfg(feature = "stack")]
pub mod tokens;
