//! The catalog in Postgres: venues, sections, seats and events; the migrations that define them
//! (`migrations/`, embedded); the demo venue; and opening an event's inventory in the coordinator.
//!
//! Errors: [`CatalogError`] for infrastructure failures (Postgres, Redis); business outcomes are
//! return values.

use chrono::{DateTime, Duration, Utc};
use coordinator::open::{OpenOutcome, SectionInventory};
use coordinator::{Coordinator, CoordinatorError, EventId, SeatId, SectionId};
use sqlx::PgPool;

/// The schema migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

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

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), CatalogError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// A seat as the generator lays it out.
#[derive(Debug, Clone)]
pub struct SeatPlan {
    /// Seat id, e.g. `orch-A-12`.
    pub id: String,
    /// Row label.
    pub row: String,
    /// Number in the row, from 1.
    pub number: i32,
    /// Drawing position.
    pub x: f32,
    /// Drawing position.
    pub y: f32,
    /// Price category.
    pub category: String,
    /// Wheelchair accessible.
    pub accessible: bool,
}

/// A section as the generator lays it out.
#[derive(Debug, Clone)]
pub struct SectionPlan {
    /// Section id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its seats.
    pub seats: Vec<SeatPlan>,
}

/// A theatre of `rows` rows of `per_row` seats in each of the named sections (`(id, name,
/// category, rows)`), laid out top to bottom; the two outer seats of the last row of each section
/// are accessible.
pub fn theatre(sections: &[(&str, &str, &str, usize)], per_row: usize) -> Vec<SectionPlan> {
    let mut y0 = 0.0;
    sections
        .iter()
        .map(|(id, name, category, rows)| {
            let mut seats = Vec::with_capacity(rows * per_row);
            for r in 0..*rows {
                let row = row_label(r);
                for n in 1..=per_row {
                    seats.push(SeatPlan {
                        id: format!("{id}-{row}-{n}"),
                        row: row.clone(),
                        number: n as i32,
                        x: n as f32 * 10.0,
                        y: y0 + r as f32 * 12.0,
                        category: (*category).to_owned(),
                        accessible: r + 1 == *rows && (n == 1 || n == per_row),
                    });
                }
            }
            y0 += *rows as f32 * 12.0 + 30.0;
            SectionPlan {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                seats,
            }
        })
        .collect()
}

/// Row labels A..Z, then AA, AB...
fn row_label(mut index: usize) -> String {
    let mut label = Vec::new();
    loop {
        label.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    label.reverse();
    String::from_utf8(label).unwrap_or_default()
}

/// The demo: a 2,000-seat theatre.
pub fn demo_theatre() -> Vec<SectionPlan> {
    theatre(
        &[
            ("orch", "Orchestra", "premium", 20),
            ("mezz", "Mezzanine", "standard", 10),
            ("balc", "Balcony", "economy", 10),
        ],
        50,
    )
}

/// Writes a venue (idempotent: an existing venue id is left as it is).
pub async fn upsert_venue(
    pool: &PgPool,
    venue_id: &str,
    name: &str,
    plan: &[SectionPlan],
) -> Result<(), CatalogError> {
    let mut tx = pool.begin().await?;
    let inserted =
        sqlx::query("INSERT INTO venues (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(venue_id)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if inserted == 1 {
        for section in plan {
            sqlx::query("INSERT INTO sections (venue_id, id, name) VALUES ($1, $2, $3)")
                .bind(venue_id)
                .bind(&section.id)
                .bind(&section.name)
                .execute(&mut *tx)
                .await?;
            // One multi-row insert per section (UNNEST), not one round trip per seat.
            let s = &section.seats;
            sqlx::query(
                "INSERT INTO seats (venue_id, section_id, id, row_label, number, x, y, category, accessible)
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::int[], $6::real[], $7::real[], $8::text[], $9::bool[])",
            )
            .bind(venue_id)
            .bind(&section.id)
            .bind(s.iter().map(|x| x.id.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.row.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.number).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.x).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.y).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.category.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|x| x.accessible).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Writes an event on sale (idempotent).
pub async fn upsert_event_on_sale(
    pool: &PgPool,
    event_id: &str,
    venue_id: &str,
    title: &str,
    starts_at: DateTime<Utc>,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO events (id, venue_id, title, category, starts_at, sale_opens_at, status)
         VALUES ($1, $2, $3, 'concert', $4, $5, 'on_sale') ON CONFLICT (id) DO NOTHING",
    )
    .bind(event_id)
    .bind(venue_id)
    .bind(title)
    .bind(starts_at)
    .bind(Utc::now().min(starts_at) - Duration::minutes(1))
    .execute(pool)
    .await?;
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
    rows.into_iter()
        .map(|(section, seats)| {
            let bad = |e: coordinator::InvalidId| CatalogError::Inconsistent(e.to_string());
            Ok(SectionInventory {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_labels() {
        assert_eq!(row_label(0), "A");
        assert_eq!(row_label(25), "Z");
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(27), "AB");
    }

    #[test]
    fn demo_has_2000_unique_valid_seats() {
        let plan = demo_theatre();
        let ids: std::collections::BTreeSet<_> = plan
            .iter()
            .flat_map(|s| s.seats.iter().map(|x| x.id.clone()))
            .collect();
        assert_eq!(ids.len(), 2_000);
        assert!(ids.iter().all(|id| SeatId::parse(id).is_ok()));
    }
}
