//! The catalog in Postgres: venues ([`venues`], described by the seat-map format of
//! [`seatmap`]), events and their prices ([`events`]); the migrations that define them
//! (`migrations/`, embedded); and opening an event's inventory in the coordinator.
//!
//! Errors: [`CatalogError`] for infrastructure failures (Postgres, Redis); business outcomes are
//! return values.

pub mod admission;
pub mod blocks;
pub mod events;
pub mod pool;
pub mod seatmap;
pub mod venues;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coordinator::open::{OpenOutcome, SectionInventory};
use coordinator::{Coordinator, CoordinatorError, EventId, HoldId, SeatId, SectionId};
use sqlx::PgPool;

/// The schema migrations, embedded at build time.
///
/// Migrations are expand-then-contract (docs/operations.md), so a binary older than the schema
/// works with it: during a rolling deploy an old pod that restarts, or a rollback, meets
/// migrations it does not know and must start anyway (`ignore_missing`). Changed or failed
/// migrations it does know are still refused.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("../migrations")
};

/// Postgres or Redis failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Postgres.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// Migrations.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The coordinator.
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// The catalog holds something the coordinator refuses (a bug in the catalog's constraints).
    #[error("catalog inconsistency: {0}")]
    Inconsistent(String),
}

/// The id rule of every catalog id that becomes part of a Redis key: the coordinator's own
/// (`coordinator::ids`), so the catalog can never store an id the coordinator would refuse.
pub(crate) fn key_safe(s: &str) -> bool {
    SeatId::parse(s).is_ok()
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), CatalogError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// An event's seats per section, from the catalog.
pub async fn inventory(
    pool: &PgPool,
    event_id: &EventId,
) -> Result<Vec<SectionInventory>, CatalogError> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT s.section_id, array_agg(s.id ORDER BY s.id)
           FROM events e JOIN seats s ON s.venue_id = e.venue_id
          WHERE e.id = $1
          GROUP BY s.section_id ORDER BY s.section_id",
    )
    .bind(event_id.as_str())
    .fetch_all(pool)
    .await?;
    // The live sales, read after the seats: a sale written in between is marked by the
    // writer itself (it marks Redis after its commit), or by the next pass.
    let sales: Vec<(String, String, uuid::Uuid)> = sqlx::query_as(
        "SELECT s.section_id, ss.seat_id, o.hold_id
           FROM sold_seats ss
           JOIN orders o ON o.id = ss.order_id
           JOIN events e ON e.id = ss.event_id
           JOIN seats s ON s.venue_id = e.venue_id AND s.id = ss.seat_id
          WHERE ss.event_id = $1 AND ss.live",
    )
    .bind(event_id.as_str())
    .fetch_all(pool)
    .await?;
    let bad = |e: coordinator::InvalidId| CatalogError::Inconsistent(e.to_string());
    let mut sold: HashMap<String, HashMap<SeatId, HoldId>> = HashMap::new();
    for (section, seat, hold) in sales {
        sold.entry(section).or_default().insert(
            SeatId::parse(&seat).map_err(bad)?,
            HoldId::parse(&hold.to_string()).map_err(bad)?,
        );
    }
    let blocks: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.section_id, b.seat_id, b.tag
           FROM seat_blocks b
           JOIN events e ON e.id = b.event_id
           JOIN seats s ON s.venue_id = e.venue_id AND s.id = b.seat_id
          WHERE b.event_id = $1",
    )
    .bind(event_id.as_str())
    .fetch_all(pool)
    .await?;
    let mut blocked: HashMap<String, HashMap<SeatId, String>> = HashMap::new();
    for (section, seat, tag) in blocks {
        blocked
            .entry(section)
            .or_default()
            .insert(SeatId::parse(&seat).map_err(bad)?, tag);
    }
    rows.into_iter()
        .map(|(section, seats)| {
            Ok(SectionInventory {
                sold: sold.remove(&section).unwrap_or_default(),
                blocked: blocked.remove(&section).unwrap_or_default(),
                section: SectionId::parse(&section).map_err(bad)?,
                seats: seats
                    .iter()
                    .map(|s| SeatId::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?,
            })
        })
        .collect()
}

/// Live sales of an event per section, as Postgres has them, of those sold at least `settled`
/// ago: Redis's sold marks must add up to at least that (younger sales may still be on their
/// way to Redis: the writer marks them right after its commit).
pub async fn sold_per_section(
    pool: &PgPool,
    event_id: &EventId,
    settled: std::time::Duration,
) -> Result<Vec<(SectionId, u64)>, CatalogError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.section_id, count(*)
           FROM sold_seats ss
           JOIN events e ON e.id = ss.event_id
           JOIN seats s ON s.venue_id = e.venue_id AND s.id = ss.seat_id
          WHERE ss.event_id = $1 AND ss.live AND ss.sold_at < now() - make_interval(secs => $2)
          GROUP BY s.section_id",
    )
    .bind(event_id.as_str())
    .bind(settled.as_secs_f64())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(section, n)| {
            SectionId::parse(&section)
                .map(|s| (s, n.max(0) as u64))
                .map_err(|e| CatalogError::Inconsistent(e.to_string()))
        })
        .collect()
}

/// Events on sale, the ones whose inventory must be open in the coordinator.
pub async fn events_on_sale(pool: &PgPool) -> Result<Vec<EventId>, CatalogError> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM events WHERE status = 'on_sale' ORDER BY id")
            .fetch_all(pool)
            .await?;
    ids.into_iter()
        .map(|(id,)| EventId::parse(&id).map_err(|e| CatalogError::Inconsistent(e.to_string())))
        .collect()
}

/// The venues of sales that are open, paused, or open within `ahead` (drafts included: an
/// organizer opens them at their time), for events still to come; the sales opening soonest
/// first. Gateways load these venues before buyers ask (`gateway::cache::Caches::warm`).
pub async fn venues_of_sales_within(
    pool: &PgPool,
    ahead: std::time::Duration,
) -> Result<Vec<String>, CatalogError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT venue_id FROM events
          WHERE status IN ('draft', 'on_sale', 'frozen')
            AND sale_opens_at < now() + make_interval(secs => $1)
            AND starts_at > now()
          GROUP BY venue_id
          ORDER BY max(sale_opens_at) DESC",
    )
    .bind(ahead.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// Loads an event's inventory from the catalog into the coordinator (idempotent). `None`: the
/// event has no seats in the catalog.
pub async fn open_in_coordinator(
    pool: &PgPool,
    coordinator: &Coordinator,
    event_id: &EventId,
) -> Result<Option<OpenOutcome>, CatalogError> {
    let inventory = inventory(pool, event_id).await?;
    if inventory.is_empty() {
        return Ok(None);
    }
    Ok(Some(coordinator.open_event(event_id, &inventory).await?))
}

/// Seats per section of each venue, as the catalog has them, read once per venue. A venue's
/// seats are written with the venue in one transaction and never change (`venues::create_venue`
/// refuses an id that exists; nothing updates or deletes seats), so the counts are kept: the
/// reconciler checks every event on sale against them every pass, and counting a 50,000-seat
/// venue's rows each time (60 ms of Postgres) was most of Postgres's CPU on an idle system.
#[derive(Debug, Default)]
pub struct SectionCounts(Mutex<HashMap<String, Arc<VenueCounts>>>);

/// A venue's seats per section.
pub type VenueCounts = Vec<(SectionId, u64)>;

impl SectionCounts {
    /// The venue's seats per section (empty: no seats, or no such venue).
    pub async fn of_venue(
        &self,
        pool: &PgPool,
        venue: &str,
    ) -> Result<Arc<VenueCounts>, CatalogError> {
        if let Some(counts) = self.0.lock().ok().and_then(|m| m.get(venue).cloned()) {
            return Ok(counts);
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT section_id, count(*) FROM seats WHERE venue_id = $1 GROUP BY section_id",
        )
        .bind(venue)
        .fetch_all(pool)
        .await?;
        let counts = Arc::new(
            rows.into_iter()
                .map(|(section, n)| {
                    SectionId::parse(&section)
                        .map(|s| (s, n.max(0) as u64))
                        .map_err(|e| CatalogError::Inconsistent(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        );
        // A venue without seats is not kept: it may be one being created right now.
        if !counts.is_empty() {
            if let Ok(mut m) = self.0.lock() {
                m.insert(venue.to_owned(), counts.clone());
            }
        }
        Ok(counts)
    }
}

/// Opens the event in the coordinator unless it already has every catalog seat (checked by
/// counts per section, so a complete inventory costs no writes). `counts` keeps the venues'
/// counts between calls.
pub async fn ensure_in_coordinator(
    pool: &PgPool,
    coordinator: &Coordinator,
    event_id: &EventId,
    counts: &SectionCounts,
) -> Result<Option<OpenOutcome>, CatalogError> {
    let venue: Option<(String,)> = sqlx::query_as("SELECT venue_id FROM events WHERE id = $1")
        .bind(event_id.as_str())
        .fetch_optional(pool)
        .await?;
    let Some((venue,)) = venue else {
        return Ok(None);
    };
    let counts = counts.of_venue(pool, &venue).await?;
    if counts.is_empty() || coordinator.inventory_complete(event_id, &counts).await? {
        return Ok(None);
    }
    open_in_coordinator(pool, coordinator, event_id).await
}

/// Opens sales: loads the inventory into the coordinator, then marks the event on sale (in that
/// order, so an event is never on sale with seats Redis does not know).
pub async fn open_sales(
    pool: &PgPool,
    coordinator: &Coordinator,
    event_id: &EventId,
) -> Result<events::StatusOutcome, CatalogError> {
    let Some(event) = events::get_event(pool, event_id.as_str()).await? else {
        return Ok(events::StatusOutcome::NotFound);
    };
    if matches!(event.status, events::EventStatus::Ended) {
        return Ok(events::StatusOutcome::NotAllowed(event.status));
    }
    match open_in_coordinator(pool, coordinator, event_id).await? {
        Some(OpenOutcome::Opened { .. }) | None => {}
        Some(other) => return Err(CatalogError::Inconsistent(format!("{event_id}: {other:?}"))),
    }
    events::set_status(pool, event_id.as_str(), events::Transition::Open).await
}

/// The organizer who owns the demo event (`ticketctl token --sub org --role organizer` may run
/// its waiting room; any other organizer may not).
pub const DEMO_ORGANIZER: &str = "org";

/// The demo: the 2,000-seat theatre and an event on sale at it, owned by [`DEMO_ORGANIZER`],
/// opened in the coordinator. Idempotent.
pub async fn load_demo(
    pool: &PgPool,
    coordinator: &Coordinator,
    event_id: &EventId,
) -> Result<(), CatalogError> {
    create_demo_event(pool, event_id).await?;
    open_sales(pool, coordinator, event_id).await?;
    Ok(())
}

/// The demo's rows in Postgres only (the theatre and the event, not on sale, nothing in Redis).
/// Idempotent.
pub async fn create_demo_event(pool: &PgPool, event_id: &EventId) -> Result<(), CatalogError> {
    let map = seatmap::demo_theatre();
    venues::create_venue(pool, &map).await?;
    let starts_at = chrono::Utc::now() + chrono::Duration::days(30);
    let draft = events::EventDraft {
        id: event_id.to_string(),
        venue_id: map.venue.id.clone(),
        title: "Demo Night".into(),
        category: "concert".into(),
        starts_at,
        sale_opens_at: chrono::Utc::now() - chrono::Duration::minutes(1),
        prices: [("premium", 12_000), ("standard", 8_000), ("economy", 4_500)]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
        currency: "USD".into(),
    };
    events::create_event(pool, &draft, Some(DEMO_ORGANIZER)).await?;
    Ok(())
}
