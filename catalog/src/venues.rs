//! Venues: importing a seat map, and reading an event's layout back.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::seatmap::{Category, Problem, Row, Seat, SeatMap, Section, VenueInfo};
use crate::CatalogError;

/// What importing a venue came to.
#[derive(Debug, Clone, PartialEq)]
pub enum VenueOutcome {
    /// Written, with this many seats.
    Created {
        /// Seats written.
        seats: usize,
    },
    /// A venue with this id exists; nothing was written.
    AlreadyExists,
    /// The seat map breaks the format's rules; nothing was written.
    Invalid(Vec<Problem>),
}

/// Imports a venue from its seat map, in one transaction.
pub async fn create_venue(pool: &PgPool, map: &SeatMap) -> Result<VenueOutcome, CatalogError> {
    if let Err(problems) = map.validate() {
        return Ok(VenueOutcome::Invalid(problems));
    }
    // Areas are kept as their sections of places: from here on they are seats.
    let map = &map.with_areas_as_sections();
    let mut tx = pool.begin().await?;
    let inserted =
        sqlx::query("INSERT INTO venues (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(&map.venue.id)
            .bind(&map.venue.name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if inserted == 0 {
        return Ok(VenueOutcome::AlreadyExists);
    }
    sqlx::query("INSERT INTO categories (venue_id, id, name) SELECT $1, * FROM UNNEST($2::text[], $3::text[])")
        .bind(&map.venue.id)
        .bind(map.categories.iter().map(|c| c.id.clone()).collect::<Vec<_>>())
        .bind(map.categories.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    for (position, section) in map.sections.iter().enumerate() {
        sqlx::query("INSERT INTO sections (venue_id, id, name, position) VALUES ($1, $2, $3, $4)")
            .bind(&map.venue.id)
            .bind(&section.id)
            .bind(&section.name)
            .bind(position as i32)
            .execute(&mut *tx)
            .await?;
        // One multi-row insert per section (UNNEST), not one round trip per seat.
        let seats: Vec<(usize, &Row, &Seat)> = section
            .rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.seats.iter().map(move |s| (i, r, s)))
            .collect();
        sqlx::query(
            "INSERT INTO seats (venue_id, section_id, id, row_label, number, x, y, category, accessible, row_index)
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::int[], $6::real[], $7::real[], $8::text[], $9::bool[], $10::int[])",
        )
        .bind(&map.venue.id)
        .bind(&section.id)
        .bind(seats.iter().map(|(_, _, s)| s.id.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, r, _)| r.label.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, _, s)| s.number).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, _, s)| s.x).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, _, s)| s.y).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, _, s)| s.category.clone()).collect::<Vec<_>>())
        .bind(seats.iter().map(|(_, _, s)| s.accessible).collect::<Vec<_>>())
        .bind(seats.iter().map(|(i, _, _)| *i as i32).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(VenueOutcome::Created {
        seats: map.seat_count(),
    })
}

/// A venue's seat map as stored, rows front to back as imported. `None`: no such venue.
pub async fn seat_map(pool: &PgPool, venue_id: &str) -> Result<Option<SeatMap>, CatalogError> {
    let Some((name,)) = sqlx::query_as::<_, (String,)>("SELECT name FROM venues WHERE id = $1")
        .bind(venue_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let categories: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM categories WHERE venue_id = $1 ORDER BY id")
            .bind(venue_id)
            .fetch_all(pool)
            .await?;
    let sections: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM sections WHERE venue_id = $1 ORDER BY position, id")
            .bind(venue_id)
            .fetch_all(pool)
            .await?;
    #[allow(clippy::type_complexity)]
    let seats: Vec<(String, String, String, i32, f32, f32, String, bool)> = sqlx::query_as(
        "SELECT section_id, row_label, id, number, x, y, category, accessible FROM seats
          WHERE venue_id = $1 ORDER BY section_id, row_index, row_label, number",
    )
    .bind(venue_id)
    .fetch_all(pool)
    .await?;
    let mut rows: BTreeMap<&str, Vec<Row>> = BTreeMap::new();
    for (section, row_label, id, number, x, y, category, accessible) in &seats {
        let section_rows = rows.entry(section.as_str()).or_default();
        if section_rows.last().map(|r| &r.label) != Some(row_label) {
            section_rows.push(Row {
                label: row_label.clone(),
                seats: Vec::new(),
            });
        }
        if let Some(row) = section_rows.last_mut() {
            row.seats.push(Seat {
                id: id.clone(),
                number: *number,
                x: *x,
                y: *y,
                category: category.clone(),
                accessible: *accessible,
            });
        }
    }
    Ok(Some(SeatMap {
        venue: VenueInfo {
            id: venue_id.to_owned(),
            name,
        },
        categories: categories
            .into_iter()
            .map(|(id, name)| Category { id, name })
            .collect(),
        sections: sections
            .into_iter()
            .map(|(id, name)| Section {
                rows: rows.remove(id.as_str()).unwrap_or_default(),
                id,
                name,
            })
            .collect(),
        areas: Vec::new(),
    }))
}
