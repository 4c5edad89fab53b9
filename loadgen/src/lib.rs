//! The benchmark harness.
//!
//! - [`open_loop`]: the open-loop driver (constant arrival rate, latency from the intended start,
//!   HDR histograms) and a closed-loop one for ceilings;
//! - [`scenarios`]: browse, seat map, hold storm (with a contention knob), checkout, queue
//!   polling and a flash sale end to end with its correctness checks, all over HTTP;
//! - [`ceilings`]: what the parts can do alone in the same run (the hold script on Redis, the
//!   gateway's HTTP on a route that does no work, Postgres on the writer's batch SQL);
//! - [`baselines`]: the design document's allocation strategies side by side (Option A, Option
//!   B, ours) on the same Postgres and the same load;
//! - [`bench`]: the plan behind `loadgen bench` and the BENCHMARKS.md it writes;
//! - [`chaos`] and [`books`]: the chaos suite's sale against several gateways and the books
//!   checker run after it (`scripts/chaos`, docs/chaos.md).

pub mod baselines;
pub mod bench;
pub mod books;
pub mod ceilings;
pub mod chaos;
pub mod open_loop;
pub mod procs;
pub mod profile;
pub mod scenarios;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use catalog::seatmap::SeatMap;
use coordinator::{Coordinator, EventId, UserId};
use gateway::auth::{Keys, Role};
use sqlx::PgPool;

/// The system under test and the ways in.
#[derive(Clone)]
pub struct Target {
    /// Public API base URL, e.g. `http://127.0.0.1:8080`.
    pub api: String,
    /// Admin listener base URL (metrics), e.g. `http://127.0.0.1:9090`.
    pub admin: String,
    /// One pooled client for every request.
    pub http: reqwest::Client,
    /// The same Postgres the system uses: setup and correctness checks.
    pub db: PgPool,
    /// The same Redis Cluster: setup and the hold-script ceiling.
    pub coordinator: Arc<Coordinator>,
    /// Mints the tokens buyers and organizers send.
    pub keys: Arc<Keys>,
    /// For `pgbench` (never printed).
    pub database_url: secrecy::SecretString,
    /// The payment provider the system charges (its records are the books' other side).
    pub payments: payments::Provider,
}

impl Target {
    /// An HTTP client for many concurrent requests to one host.
    pub fn client() -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_max_idle_per_host(crate::scenarios::MAX_IN_FLIGHT)
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?)
    }

    /// A bearer token for `user` in `role`, valid for an hour.
    pub fn token(&self, user: &str, role: Role) -> anyhow::Result<String> {
        let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("user id {user:?}: {e}"))?;
        self.keys.mint(&user, role, Duration::from_secs(3600))
    }

    /// Creates (idempotently) the venue of `map` and an event on sale at it, every category
    /// priced, `max_per_buyer` tickets per buyer. Returns the event's seat ids in map order.
    pub async fn setup_event(
        &self,
        event: &str,
        map: &SeatMap,
        max_per_buyer: i32,
    ) -> anyhow::Result<Vec<String>> {
        // A refused venue or event is an error here: a benchmark against nothing would
        // measure 404s.
        if let catalog::venues::VenueOutcome::Invalid(problems) =
            catalog::venues::create_venue(&self.db, map).await?
        {
            anyhow::bail!("venue {} refused: {problems:?}", map.venue.id);
        }
        let draft = catalog::events::EventDraft {
            id: event.to_owned(),
            venue_id: map.venue.id.clone(),
            title: format!("Benchmark {event}"),
            category: "concert".into(),
            starts_at: chrono::Utc::now() + chrono::Duration::days(30),
            sale_opens_at: chrono::Utc::now() - chrono::Duration::minutes(1),
            prices: map
                .used_categories()
                .into_iter()
                .map(|c| (c.to_owned(), 5_000))
                .collect(),
            currency: "USD".into(),
        };
        if let catalog::events::EventOutcome::Invalid(problems) =
            catalog::events::create_event(&self.db, &draft, None).await?
        {
            anyhow::bail!("event {event} refused: {problems:?}");
        }
        sqlx::query("UPDATE events SET max_tickets_per_buyer = $2 WHERE id = $1")
            .bind(event)
            .bind(max_per_buyer)
            .execute(&self.db)
            .await?;
        let id = EventId::parse(event).map_err(|e| anyhow::anyhow!("event id {event:?}: {e}"))?;
        catalog::open_sales(&self.db, &self.coordinator, &id)
            .await
            .context("opening sales")?;
        Ok(map.seats().map(|(_, _, s)| s.id.clone()).collect())
    }

    /// Asks the gateway at `api` for the event's seat map once, which loads its venue there. A
    /// real sale is created well before it opens, and every gateway loads its venue ahead
    /// (`Caches::warm`, every 5 s for sales opening within 15 minutes); the benchmark's events
    /// open the moment they are made, so their runs would otherwise measure the venue's first
    /// read (a stadium's took 240-280 ms here, and the holds queued behind it were shed).
    pub async fn load_venue(&self, event: &str) -> anyhow::Result<()> {
        let res = self
            .http
            .get(format!("{}/events/{event}/seatmap", self.api))
            .send()
            .await
            .context("loading the venue")?;
        anyhow::ensure!(
            res.status().is_success(),
            "the seat map of {event}: {}",
            res.status()
        );
        Ok(())
    }
}

/// A unique suffix for this run's events and users, so runs never collide.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
