//! The waiting list of a sold-out event: `POST /events/{id}/waitlist` (join, or find one's
//! entry), `GET /events/{id}/waitlist/{entry}` (where it is, and the offer once there is one),
//! `DELETE /events/{id}/waitlist/{entry}` (leave; an offer goes to the next buyer).
//!
//! An offer is an ordinary hold made for the buyer (`orders::waitlist`): they commit it with
//! `POST /reservations/{hold_id}/commit` like any other. An entry of another buyer is answered
//! like one that does not exist.

use std::collections::{BTreeSet, HashSet};

use orders::waitlist::{Entry, Joined, Left};
use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::Rejection;

use super::events::visible_event;
use super::json_status;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// Most categories one entry may name.
const MAX_CATEGORIES: usize = 16;

/// `POST /events/{id}/waitlist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// How many seats, together in one section.
    quantity: u32,
    /// Seat categories the buyer takes; absent or empty: any.
    #[serde(default)]
    categories: Vec<String>,
}

fn unknown_entry(raw: &str) -> ApiError {
    ApiError::not_found(
        "unknown_waitlist_entry",
        format!("no waiting-list entry {raw}"),
    )
}

/// The entry id of a path: an id that is not a UUID names no entry (404, as another buyer's).
fn entry_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| unknown_entry(raw))
}

fn field(name: &'static str, message: String) -> ApiError {
    ApiError::invalid("invalid_field", message).with_details(serde_json::json!({ "field": name }))
}

/// `POST /events/{id}/waitlist`: 201 with a new entry, 200 with the buyer's entry when they are
/// on the list already; 409 while seats the buyer would take are still for sale, or when the
/// event is not on sale; 422 for a quantity or category the event cannot satisfy.
pub async fn join(
    raw: String,
    principal: Principal,
    body: JoinBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (id, event) = visible_event(&app, &raw).await?;
    super::reservations::check_on_sale(&event)?;
    let most = app
        .coordinator
        .limits()
        .max_seats_per_hold
        .min(event.max_tickets_per_buyer.max(1) as usize)
        .min(100);
    if body.quantity == 0 || body.quantity as usize > most {
        return Err(field("quantity", format!("quantity must be between 1 and {most}")).into());
    }
    let categories = checked_categories(&app, &event, body.categories).await?;
    if let Some(free) = free_for(&app, &id, &event, &categories).await? {
        return Err(ApiError::conflict(
            "seats_available",
            format!("{free} seats you would take are for sale now: hold them instead"),
        )
        .with_details(serde_json::json!({ "free": free }))
        .into());
    }
    let joined = orders::waitlist::join(&app.db, &id, &principal.user, body.quantity, &categories)
        .await
        .map_err(ApiError::from)?;
    // Tell the sections now, so the next seat that comes back is set aside for the list
    // (the reconciler's pass would, a moment later).
    orders::waitlist::tell_sections(&app.db, &app.coordinator, &id)
        .await
        .map_err(ApiError::from)?;
    Ok(match joined {
        Joined::New(entry) => {
            app.metrics.waitlist_joins_total.inc();
            json_status(&entry, StatusCode::CREATED)
        }
        Joined::Existing(entry) => json_status(&entry, StatusCode::OK),
    })
}

/// The categories asked for, each one the venue sells (sorted, without repeats).
async fn checked_categories(
    app: &App,
    event: &catalog::events::Event,
    asked: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    if asked.len() > MAX_CATEGORIES {
        return Err(field(
            "categories",
            format!("at most {MAX_CATEGORIES} categories"),
        ));
    }
    let layout = app.caches.venue(app, &event.venue_id).await?;
    let sold: HashSet<&str> = layout.seats.values().map(|p| p.category.as_str()).collect();
    let asked: BTreeSet<String> = asked.into_iter().collect();
    if let Some(unknown) = asked.iter().find(|c| !sold.contains(c.as_str())) {
        return Err(field(
            "categories",
            format!("the venue has no seats of category {unknown:?}"),
        ));
    }
    Ok(asked.into_iter().collect())
}

/// How many seats of `categories` (empty: any) are free now, if any are.
async fn free_for(
    app: &App,
    id: &coordinator::EventId,
    event: &catalog::events::Event,
    categories: &[String],
) -> Result<Option<usize>, ApiError> {
    let Some(sections) = app.coordinator.seat_states(id).await? else {
        return Err(super::events::no_inventory(app, event).await);
    };
    let layout = app.caches.venue(app, &event.venue_id).await?;
    let taken: HashSet<&coordinator::SeatId> = sections
        .iter()
        .flat_map(|s| s.held.iter().chain(&s.sold).chain(&s.blocked))
        .collect();
    let free = layout
        .seats
        .iter()
        .filter(|(seat, place)| {
            !taken.contains(seat) && (categories.is_empty() || categories.contains(&place.category))
        })
        .count();
    Ok((free > 0).then_some(free))
}

/// `GET /events/{id}/waitlist/{entry}`: the entry, with its place in line or its offer.
pub async fn get(
    raw: String,
    raw_entry: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (id, _) = visible_event(&app, &raw).await?;
    let entry = entry_id(&raw_entry)?;
    match orders::waitlist::entry(&app.db, &id, entry, &principal.user)
        .await
        .map_err(ApiError::from)?
    {
        Some(entry) => Ok(json_status(&entry, StatusCode::OK)),
        None => Err(unknown_entry(&raw_entry).into()),
    }
}

/// `DELETE /events/{id}/waitlist/{entry}`: 200 with the entry, left; 409 when it is no longer on
/// the list (taken, lapsed, left).
pub async fn leave(
    raw: String,
    raw_entry: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (id, _) = visible_event(&app, &raw).await?;
    let entry = entry_id(&raw_entry)?;
    let left = orders::waitlist::leave(&app.db, &app.coordinator, &id, entry, &principal.user)
        .await
        .map_err(ApiError::from)?;
    match left {
        Left::Left(entry) => Ok(json_status(&entry, StatusCode::OK)),
        Left::NotFound => Err(unknown_entry(&raw_entry).into()),
        Left::NotLive(entry) => Err(not_live(&entry).into()),
    }
}

fn not_live(entry: &Entry) -> ApiError {
    ApiError::conflict(
        "waitlist_entry_closed",
        "the entry is no longer on the list",
    )
    .with_details(serde_json::json!({ "status": entry.status }))
}
