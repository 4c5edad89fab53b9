//! The seat-map JSON format (documented in `docs/seatmap.md`), its validation, and generators of
//! realistic venues.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

/// Most seats one venue may have.
pub const MAX_SEATS_PER_VENUE: usize = 100_000;
/// Most sections one venue may have.
pub const MAX_SECTIONS_PER_VENUE: usize = 200;

/// A venue's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatMap {
    /// The venue.
    pub venue: VenueInfo,
    /// Price categories its seats use.
    pub categories: Vec<Category>,
    /// Sections, each with rows front to back.
    pub sections: Vec<Section>,
    /// General-admission areas (standing floors, unreserved blocks), sold by quantity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<Area>,
}

/// A general-admission area: `capacity` places of one category, sold by quantity. Stored as
/// shard sections `ga.<id>.<i>` of anonymous places `ga.<id>.<i>-<n>` (row `GA`), each shard a
/// Redis slot of its own (coordinator::area), so a hot floor spreads over the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Key-safe id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Places.
    pub capacity: u32,
    /// One of the venue's categories.
    pub category: String,
    /// Shards the places are spread over; by default one per 2,500 places, 1 to 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// Most shards an area may be spread over.
pub const MAX_AREA_SHARDS: u32 = 64;

impl Area {
    /// How many shards the places are spread over.
    pub fn shard_count(&self) -> u32 {
        self.shards
            .unwrap_or_else(|| self.capacity.div_ceil(2_500).clamp(1, 16))
            .clamp(1, self.capacity.max(1))
    }

    /// The area as the sections that hold its places.
    pub fn sections(&self) -> Vec<Section> {
        let shards = self.shard_count();
        (0..shards)
            .map(|i| {
                let id = format!("ga.{}.{i}", self.id);
                let n = self.capacity / shards + u32::from(i < self.capacity % shards);
                Section {
                    name: self.name.clone(),
                    rows: vec![Row {
                        label: "GA".into(),
                        seats: (1..=n)
                            .map(|p| Seat {
                                id: format!("{id}-{p}"),
                                number: p as i32,
                                x: 0.0,
                                y: 0.0,
                                category: self.category.clone(),
                                accessible: false,
                            })
                            .collect(),
                    }],
                    id,
                }
            })
            .collect()
    }
}

/// Venue identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueInfo {
    /// Key-safe id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A price category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Key-safe id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Key-safe id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Rows, front to back.
    pub rows: Vec<Row>,
}

/// A row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Row label, e.g. "A".
    pub label: String,
    /// Seats, any order; adjacency is by consecutive `number`.
    pub seats: Vec<Seat>,
}

/// A seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    /// Key-safe id, unique in the venue.
    pub id: String,
    /// Position in the row, from 1.
    pub number: i32,
    /// Drawing position.
    pub x: f32,
    /// Drawing position; smaller is closer to the stage.
    pub y: f32,
    /// One of the venue's categories.
    pub category: String,
    /// Wheelchair accessible.
    #[serde(default)]
    pub accessible: bool,
}

/// One thing wrong with a seat map, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON-path-like location, e.g. `sections[2].rows[0].seats[5].id`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

const ID_RULE: &str = "must be 1 to 64 characters of A-Z a-z 0-9 _ . -";

impl SeatMap {
    /// The map with its areas stored as their sections of places (what the catalog keeps).
    pub fn with_areas_as_sections(&self) -> SeatMap {
        let mut map = self.clone();
        for area in std::mem::take(&mut map.areas) {
            map.sections.extend(area.sections());
        }
        map
    }

    /// Every seat, with its section and row.
    pub fn seats(&self) -> impl Iterator<Item = (&Section, &Row, &Seat)> {
        self.sections.iter().flat_map(|s| {
            s.rows
                .iter()
                .flat_map(move |r| r.seats.iter().map(move |seat| (s, r, seat)))
        })
    }

    /// Number of seats.
    pub fn seat_count(&self) -> usize {
        self.seats().count()
    }

    /// Checks every rule of `docs/seatmap.md`; lists at most 50 problems.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut add = |path: String, message: &str| {
            if problems.len() < 50 {
                problems.push(Problem {
                    path,
                    message: message.to_owned(),
                })
            }
        };
        if !crate::key_safe(&self.venue.id) {
            add("venue.id".into(), ID_RULE);
        }
        if self.venue.name.trim().is_empty() || self.venue.name.len() > 200 {
            add("venue.name".into(), "must be 1 to 200 characters");
        }
        let mut categories = HashSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            if !crate::key_safe(&c.id) {
                add(format!("categories[{i}].id"), ID_RULE);
            }
            if !categories.insert(c.id.as_str()) {
                add(format!("categories[{i}].id"), "is declared twice");
            }
        }
        if self.sections.is_empty() {
            add("sections".into(), "must list at least one section");
        }
        let mut area_ids = HashSet::new();
        let mut area_places = 0usize;
        for (i, area) in self.areas.iter().enumerate() {
            if !crate::key_safe(&area.id) || area.id.len() > 48 {
                add(
                    format!("areas[{i}].id"),
                    "must be 1 to 48 characters of A-Z a-z 0-9 _ . -",
                );
            }
            if !area_ids.insert(area.id.as_str()) {
                add(format!("areas[{i}].id"), "is used by another area");
            }
            if area.name.trim().is_empty() || area.name.len() > 200 {
                add(format!("areas[{i}].name"), "must be 1 to 200 characters");
            }
            if area.capacity == 0 || area.capacity as usize > MAX_SEATS_PER_VENUE {
                add(
                    format!("areas[{i}].capacity"),
                    &format!("must be 1 to {MAX_SEATS_PER_VENUE}"),
                );
            }
            if area.shards.is_some_and(|n| n == 0 || n > MAX_AREA_SHARDS) {
                add(
                    format!("areas[{i}].shards"),
                    &format!("must be 1 to {MAX_AREA_SHARDS}"),
                );
            }
            if !categories.contains(area.category.as_str()) {
                add(
                    format!("areas[{i}].category"),
                    "is not one of the venue's categories",
                );
            }
            area_places += area.capacity as usize;
        }
        if self.seat_count() + area_places > MAX_SEATS_PER_VENUE {
            add(
                "areas".into(),
                &format!("at most {MAX_SEATS_PER_VENUE} seats and places in all"),
            );
        }
        if self.sections.len() > MAX_SECTIONS_PER_VENUE {
            add(
                "sections".into(),
                &format!("at most {MAX_SECTIONS_PER_VENUE} sections"),
            );
        }
        let total = self.seat_count();
        if total > MAX_SEATS_PER_VENUE {
            add(
                "sections".into(),
                &format!("at most {MAX_SEATS_PER_VENUE} seats (got {total})"),
            );
        }
        let (mut section_ids, mut seat_ids) = (HashSet::new(), HashSet::with_capacity(total));
        for (si, section) in self.sections.iter().enumerate() {
            if !crate::key_safe(&section.id) {
                add(format!("sections[{si}].id"), ID_RULE);
            }
            if !section_ids.insert(section.id.as_str()) {
                add(format!("sections[{si}].id"), "is used by another section");
            }
            if section.id.starts_with("ga.") {
                add(
                    format!("sections[{si}].id"),
                    "ga. is kept for general-admission areas",
                );
            }
            if section.rows.is_empty() {
                add(format!("sections[{si}].rows"), "must list at least one row");
            }
            let mut labels = HashSet::new();
            for (ri, row) in section.rows.iter().enumerate() {
                if row.label.is_empty() || row.label.len() > 16 {
                    add(
                        format!("sections[{si}].rows[{ri}].label"),
                        "must be 1 to 16 characters",
                    );
                }
                if !labels.insert(row.label.as_str()) {
                    add(
                        format!("sections[{si}].rows[{ri}].label"),
                        "is used by another row of the section",
                    );
                }
                let mut numbers = HashSet::new();
                for (i, seat) in row.seats.iter().enumerate() {
                    let at = format!("sections[{si}].rows[{ri}].seats[{i}]");
                    if !crate::key_safe(&seat.id) {
                        add(format!("{at}.id"), ID_RULE);
                    }
                    if !seat_ids.insert(seat.id.as_str()) {
                        add(format!("{at}.id"), "is used by another seat of the venue");
                    }
                    if seat.number < 1 {
                        add(format!("{at}.number"), "must be a positive integer");
                    }
                    if !numbers.insert(seat.number) {
                        add(format!("{at}.number"), "is used by another seat of the row");
                    }
                    if !seat.x.is_finite() || !seat.y.is_finite() {
                        add(format!("{at}.x"), "coordinates must be finite numbers");
                    }
                    if !categories.contains(seat.category.as_str()) {
                        add(
                            format!("{at}.category"),
                            "is not one of the venue's categories",
                        );
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Category ids the seats actually use.
    pub fn used_categories(&self) -> BTreeSet<&str> {
        self.seats().map(|(_, _, s)| s.category.as_str()).collect()
    }
}

/// Row labels A..Z, then AA, AB...
pub fn row_label(mut index: usize) -> String {
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

fn categories(ids: &[(&str, &str)]) -> Vec<Category> {
    ids.iter()
        .map(|(id, name)| Category {
            id: (*id).into(),
            name: (*name).into(),
        })
        .collect()
}

/// A theatre: sections `(id, name, category, rows)` stacked front to back, `per_row` seats a
/// row; the two outer seats of each section's last row are accessible.
pub fn theatre(
    venue_id: &str,
    name: &str,
    sections: &[(&str, &str, &str, usize)],
    per_row: usize,
) -> SeatMap {
    let mut y0 = 0.0;
    let mut used = Vec::new();
    let sections = sections
        .iter()
        .map(|(id, name, category, rows)| {
            if !used.contains(category) {
                used.push(*category);
            }
            let rows_out = (0..*rows)
                .map(|r| {
                    let label = row_label(r);
                    let seats = (1..=per_row)
                        .map(|n| Seat {
                            id: format!("{id}-{label}-{n}"),
                            number: n as i32,
                            x: n as f32 * 10.0,
                            y: y0 + r as f32 * 12.0,
                            category: (*category).to_owned(),
                            accessible: r + 1 == *rows && (n == 1 || n == per_row),
                        })
                        .collect();
                    Row { label, seats }
                })
                .collect();
            y0 += *rows as f32 * 12.0 + 30.0;
            Section {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                rows: rows_out,
            }
        })
        .collect();
    SeatMap {
        venue: VenueInfo {
            id: venue_id.into(),
            name: name.into(),
        },
        categories: used
            .iter()
            .map(|c| Category {
                id: (*c).into(),
                name: (*c).into(),
            })
            .collect(),
        sections,
        areas: Vec::new(),
    }
}

/// The demo: a 2,000-seat theatre in three sections.
pub fn demo_theatre() -> SeatMap {
    demo_theatre_as("demo-theatre")
}

/// The demo theatre's layout under another venue id (benchmarks make many).
pub fn demo_theatre_as(venue_id: &str) -> SeatMap {
    theatre(
        venue_id,
        "Demo Theatre",
        &[
            ("orch", "Orchestra", "premium", 20),
            ("mezz", "Mezzanine", "standard", 10),
            ("balc", "Balcony", "economy", 10),
        ],
        50,
    )
}

/// A 50,000-seat stadium: a lower ring of 20 sections and an upper ring of 20, each 25 rows of
/// 50 seats; the ten lower sections facing the stage are `club`, the rest of the lower ring
/// `lower`, the upper ring `upper`.
pub fn stadium(venue_id: &str, name: &str) -> SeatMap {
    let mut sections = Vec::with_capacity(40);
    for ring in 0..2 {
        for s in 0..20 {
            let angle = s as f32 / 20.0 * std::f32::consts::TAU;
            let id = format!("{}{:02}", if ring == 0 { "L" } else { "U" }, s + 1);
            let category = match (ring, s) {
                (0, 0..=4 | 15..=19) => "club",
                (0, _) => "lower",
                _ => "upper",
            };
            let rows = (0..25)
                .map(|r| {
                    let radius = 300.0 + ring as f32 * 350.0 + r as f32 * 12.0;
                    let label = row_label(r);
                    let seats = (1..=50)
                        .map(|n| {
                            let a = angle + (n as f32 - 25.0) * 0.0025;
                            Seat {
                                id: format!("{id}-{label}-{n}"),
                                number: n,
                                x: radius * a.cos(),
                                y: radius * a.sin(),
                                category: category.into(),
                                accessible: r == 0 && (n == 1 || n == 50),
                            }
                        })
                        .collect();
                    Row { label, seats }
                })
                .collect();
            sections.push(Section {
                name: format!("{} {}", if ring == 0 { "Lower" } else { "Upper" }, s + 1),
                id,
                rows,
            });
        }
    }
    SeatMap {
        venue: VenueInfo {
            id: venue_id.into(),
            name: name.into(),
        },
        categories: categories(&[
            ("club", "Club"),
            ("lower", "Lower bowl"),
            ("upper", "Upper bowl"),
        ]),
        sections,
        areas: Vec::new(),
    }
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
    fn generators_make_valid_venues_of_the_promised_size() {
        let theatre = demo_theatre();
        assert_eq!(theatre.seat_count(), 2_000);
        assert_eq!(theatre.validate(), Ok(()));
        let stadium = stadium("stadium", "Stadium");
        assert_eq!(stadium.seat_count(), 50_000);
        assert_eq!(stadium.sections.len(), 40);
        assert_eq!(stadium.validate(), Ok(()));
        // The format round-trips through JSON.
        let json = serde_json::to_string(&theatre).expect("serializes");
        let back: SeatMap = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, theatre);
    }

    #[test]
    fn validation_names_each_problem() {
        let mut map = demo_theatre();
        map.sections[0].rows[0].seats[1].id = map.sections[0].rows[0].seats[0].id.clone();
        map.sections[0].rows[0].seats[2].category = "vip".into();
        map.sections[1].id = "bad id".into();
        map.sections[2].rows[0].seats[0].number = 0;
        let problems = map.validate().expect_err("invalid");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"sections[0].rows[0].seats[1].id"),
            "{paths:?}"
        );
        assert!(paths.contains(&"sections[0].rows[0].seats[2].category"));
        assert!(paths.contains(&"sections[1].id"));
        assert!(paths.contains(&"sections[2].rows[0].seats[0].number"));
        let unknown = serde_json::from_str::<SeatMap>(
            r#"{"venue":{"id":"v","name":"n","oops":1},"categories":[],"sections":[]}"#,
        );
        assert!(unknown.is_err(), "unknown fields are refused");
    }
}
