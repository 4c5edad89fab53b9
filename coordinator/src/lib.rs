//! The seat coordinator: all-or-nothing seat holds with expiries, on a Redis Cluster, through Lua
//! scripts. The only code that knows Redis keys and scripts.
//!
//! # Layout
//!
//! - [`ids`]: identifier newtypes, parsed at the edge.
//! - [`keys`]: the only module that formats a Redis key (hash tag per event and section).
//! - [`scripts`]: the registry of `lua/*.lua`, expanded at load time with the shared snippets of
//!   `lua/include/` (`--@include`), EVALSHA with reload on NOSCRIPT, and `Script::call`, which
//!   reads a reply's code as the script's enum.
//! - [`protocol`]: one enum per script for the return codes its header lists (a test checks
//!   they agree), and enums for the operations and modes the scripts take.
//! - [`config`]: named bounds ([`Limits`]) and connection settings.
//! - one module per operation, each with its request, its outcome enum and its reply parsing:
//!   [`open`] (a section loaded, or rebuilt after Redis lost it, with its sales and blocks),
//!   [`hold`], [`release`], [`extend`] (extension and payment pin), [`sell`], [`block`],
//!   [`snapshot`], [`queue`] (the waiting room), [`area`] (general-admission areas: holds by
//!   quantity over shard sections of anonymous places).
//! - [`batch`]: holds on one section that arrive while a call to it is in flight, gathered
//!   into one script call (`hold_batch.lua`), each answered on its own. (The durable writer's
//!   sales of a batch go one call per section in the same way: `sell_batch.lua`, [`sell`].)
//! - [`streams`]: the commit queue the durable writer reads and each section's audit trail.
//! - [`updates`]: pub/sub announcements of changed sections, events and orders.
//! - [`waitlist`]: a section's side of the waiting list: who wants it (a count) and the seats
//!   that came back and were set aside for the list, which only an offer hold takes.
//! - [`epoch`]: whether Redis may have lost acknowledged writes (the primaries' replication ids).
//! - `layout` (private): the cache of each event's seat-to-section map; `reply` (private): script
//!   reply parsing.
//! - [`error`]: infrastructure failures only ([`CoordinatorError`], a 503 for an HTTP caller).
//!
//! # The seat state machine
//!
//! ```text
//!          hold (TTL)                 sell (order durable in Postgres)
//!   free ─────────────► held ────────────────────────────────────────► sold
//!    ▲ ▲  expiry / release │  (while a waiting list wants the section: to `reserved`, which
//!    │ └───────────────────┘   only an offer hold takes; see `waitlist`)
//!    │   unblock
//!    └──────────── blocked ◄── block (organizer; only a free seat)
//! ```
//!
//! A seat is held while its expiry score is later than Redis `TIME`: no background process is
//! needed for a hold to end on time. Holds are soft state: a failover may lose one, and that is
//! allowed. Selling is guarded twice: `sell.lua` never sells a seat sold to another hold, and
//! Postgres' unique constraint on sold seats is the last word (see the reconciler).
//!
//! A hold on seats of one section (the common case) is two script calls: `hold_begin.lua` writes
//! the hold's record, held, and counts the seats against the buyer's limit (the buyer's slot),
//! then `hold.lua` takes the seats (the section's slot). There is no settle step: a replay
//! inside the attempt window asks the section to confirm the seats, one after it takes the
//! record over, and `hold.lua` refuses an attempt past its deadline (the window's middle), so a
//! slow original cannot take seats under a successor (`lua/hold_begin.lua` says what this gives
//! up). A release is two calls too: the record and count, then the seats.
//!
//! A hold on seats of several sections (several slots, maybe several primaries) takes the sections
//! one by one in sorted order and releases those already taken on the first refusal, so it is all
//! or nothing; its record is pending until `hold_settle.lua` settles it, and the record makes a
//! replay find the same hold.

pub mod area;
pub mod batch;
pub mod block;
pub mod config;
pub mod epoch;
pub mod error;
pub mod extend;
pub mod hold;
pub mod ids;
pub mod keys;
pub mod open;
pub mod protocol;
pub mod queue;
pub mod release;
mod reply;
pub mod scripts;
pub mod sell;
pub mod snapshot;
pub mod streams;
pub mod updates;
pub mod waitlist;

mod layout;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use fred::types::config::{ClusterDiscoveryPolicy, Server};

pub use config::{Limits, RedisSettings};
pub use error::CoordinatorError;
pub use hold::{Hold, HoldState, SeatState, Unavailable};
pub use ids::{ClientReservationId, EventId, HoldId, InvalidId, SeatId, SectionId, UserId};

use layout::LayoutCache;
use scripts::Scripts;

/// Who asks for an operation on a hold: its buyer, or the system (reconciler, admin), which
/// skips the owner check.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A buyer; must own the hold.
    User(&'a UserId),
    /// A trusted process.
    System,
}

impl Caller<'_> {
    /// Who acted, as the audit trail records it.
    pub(crate) fn actor(&self) -> String {
        match self {
            Caller::User(u) => u.to_string(),
            Caller::System => "system".to_owned(),
        }
    }

    fn as_arg(&self) -> String {
        match self {
            Caller::User(u) => u.to_string(),
            Caller::System => String::new(),
        }
    }
}

/// A connection pool to the cluster, the scripts, the bounds and a cache of event layouts.
/// Cheap to clone: clones share the pool, the scripts and the caches (a background task, such
/// as a rollback retried after a failure, takes one).
#[derive(Clone)]
pub struct Coordinator {
    pool: Pool,
    scripts: Arc<Scripts>,
    limits: Limits,
    layouts: Arc<LayoutCache>,
    commit_queue: String,
    announcer: Arc<updates::Announcer>,
    batcher: Arc<batch::Batcher>,
    /// How to reach the cluster, for connections made later (the commit reader).
    settings: Arc<RedisSettings>,
    /// The durable writer's own connection for reads that wait ([`Coordinator::wait_commits`]),
    /// made on first use: a process that never writes never opens it.
    commit_reader: Arc<tokio::sync::OnceCell<Client>>,
}

impl Coordinator {
    /// Connects to the cluster and loads every script on every primary.
    pub async fn connect(
        settings: &RedisSettings,
        limits: Limits,
    ) -> Result<Self, CoordinatorError> {
        let pool = builder(settings)?.build_pool(settings.pool_size.max(1))?;
        pool.init().await?;
        let coordinator = Self {
            pool,
            scripts: Arc::new(Scripts::load(&scripts::ScriptConfig {
                audit_max_len: settings.audit_max_len,
            })),
            limits,
            layouts: Arc::default(),
            commit_queue: keys::commit_queue(&settings.commit_queue),
            announcer: Arc::default(),
            batcher: Arc::new(batch::Batcher::new(batch::BatchSettings {
                window: Duration::from_micros(settings.hold_batch_window_us),
                max: settings.hold_batch_max.max(1),
            })),
            settings: Arc::new(settings.clone()),
            commit_reader: Arc::default(),
        };
        coordinator.load_scripts().await?;
        Ok(coordinator)
    }

    /// Uses another commit queue than the settings' (tests sharing one cluster).
    pub fn with_commit_queue(mut self, name: &str) -> Self {
        self.commit_queue = keys::commit_queue(name);
        self
    }

    /// Loads every script on every primary (also done lazily on NOSCRIPT).
    pub async fn load_scripts(&self) -> Result<(), CoordinatorError> {
        for script in self.scripts.all() {
            script.load_everywhere(self.client()).await?;
        }
        Ok(())
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The scripts (names and SHA-1s, e.g. to read Redis's own account of them).
    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// The underlying pool, for health checks and tests.
    pub fn redis(&self) -> &Pool {
        &self.pool
    }

    /// Answers when the cluster answers a PING.
    pub async fn ping(&self) -> Result<(), CoordinatorError> {
        self.client().ping::<()>(None).await?;
        Ok(())
    }

    fn client(&self) -> &Client {
        self.pool.next()
    }

    /// Groups seats by section using the event's layout. `Ok(None)`: unknown event.
    /// `Err(unknown)` inside: seats that are not part of the event.
    async fn group_by_section(
        &self,
        event: &EventId,
        seats: &[SeatId],
    ) -> Result<Option<Result<BTreeMap<SectionId, Vec<SeatId>>, Vec<SeatId>>>, CoordinatorError>
    {
        let Some(layout) = self.layouts.get(self.client(), event, seats).await? else {
            return Ok(None);
        };
        Ok(Some(layout.group(seats)))
    }

    /// The sections of an event, `None` when the event is not open.
    async fn sections_of(
        &self,
        event: &EventId,
    ) -> Result<Option<Arc<layout::Layout>>, CoordinatorError> {
        self.layouts.get(self.client(), event, &[]).await
    }
}

/// A client builder for the cluster: discovery from the seed nodes, retries and reconnection
/// tuned for failovers.
fn builder(settings: &RedisSettings) -> Result<Builder, CoordinatorError> {
    let hosts = settings
        .nodes
        .iter()
        .map(|node| {
            let (host, port) = node.rsplit_once(':').unwrap_or((node, "6379"));
            let port = port.parse().map_err(|_| {
                CoordinatorError::Redis(fred::error::Error::new(
                    fred::error::ErrorKind::Config,
                    format!("bad redis node {node:?}: expected host:port"),
                ))
            })?;
            Ok(Server::new(host, port))
        })
        .collect::<Result<Vec<_>, CoordinatorError>>()?;
    let config = Config {
        server: ServerConfig::Clustered {
            hosts,
            policy: ClusterDiscoveryPolicy::default(),
        },
        fail_fast: false,
        ..Config::default()
    };
    let command_timeout = settings.command_timeout();
    let attempts = settings.max_command_attempts;
    let mut builder = Builder::from_config(config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.max_command_attempts = attempts;
            c.max_redirections = 16;
            c.cluster_cache_update_delay = Duration::from_millis(50);
        })
        .with_performance_config(|p| p.default_command_timeout = command_timeout)
        // Reconnect for ever: a primary that fails over comes back as a replica, and the new
        // primary is found through the cluster's redirections.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
    Ok(builder)
}

fn seat_ids(script: &'static str, raw: Vec<String>) -> Result<Vec<SeatId>, CoordinatorError> {
    raw.into_iter()
        .map(|s| SeatId::parse(&s).map_err(|e| CoordinatorError::protocol(script, e.to_string())))
        .collect()
}
