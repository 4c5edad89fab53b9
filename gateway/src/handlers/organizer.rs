//! Organizer routes (role organizer or admin): venues, events, prices, the sale life cycle, blocks.

use std::collections::BTreeMap;

use catalog::events::{EventDraft, EventOutcome, StatusOutcome, Transition};
use catalog::seatmap::SeatMap;
use catalog::venues::VenueOutcome;
use coordinator::block::{BlockOutcome, InvalidBlock, UnblockOutcome};
use coordinator::{EventId, SeatId};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::Rejection;

use super::json_status;
use crate::auth::{Principal, Role};
use crate::errors::ApiError;
use crate::App;

/// `PUT /events/{id}/prices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesBody {
    prices: BTreeMap<String, i64>,
}

/// `POST /events/{id}/blocks` and `/blocks/release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    seat_ids: Vec<String>,
    #[serde(default)]
    tag: Option<String>,
}

fn event_outcome(outcome: EventOutcome, created: bool) -> Result<warp::reply::Response, Rejection> {
    match outcome {
        EventOutcome::Done(event) => Ok(json_status(
            &event,
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
        )),
        EventOutcome::AlreadyExists => {
            Err(ApiError::conflict("event_exists", "an event with this id exists").into())
        }
        EventOutcome::NotFound if created => {
            Err(ApiError::not_found("unknown_venue", "no such venue").into())
        }
        EventOutcome::NotFound => Err(ApiError::not_found("unknown_event", "no such event").into()),
        EventOutcome::Invalid(problems) => Err(ApiError::invalid(
            "invalid_event",
            "the event breaks some rules",
        )
        .with_details(serde_json::json!({ "problems": problems }))
        .into()),
    }
}

/// `POST /venues`: import a seat map.
pub async fn create_venue(
    principal: Principal,
    map: SeatMap,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    match catalog::venues::create_venue(&app.db, &map)
        .await
        .map_err(ApiError::from)?
    {
        VenueOutcome::Created { seats } => Ok(json_status(
            &serde_json::json!({"venue_id": map.venue.id, "seats": seats, "sections": map.sections.len()}),
            StatusCode::CREATED,
        )),
        VenueOutcome::AlreadyExists => {
            Err(ApiError::conflict("venue_exists", "a venue with this id exists").into())
        }
        VenueOutcome::Invalid(problems) => Err(ApiError::invalid(
            "invalid_seat_map",
            "the seat map breaks some rules (docs/seatmap.md)",
        )
        .with_details(serde_json::json!({ "problems": problems }))
        .into()),
    }
}

/// `POST /events`: create an event (draft) with a price per category.
pub async fn create_event(
    principal: Principal,
    draft: EventDraft,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    event_outcome(
        catalog::events::create_event(&app.db, &draft, Some(principal.user.as_str()))
            .await
            .map_err(ApiError::from)?,
        true,
    )
}

/// `PUT /events/{id}/prices`.
pub async fn set_prices(
    raw: String,
    principal: Principal,
    body: PricesBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    ensure_owner(&app, &principal, &raw).await?;
    let outcome = catalog::events::set_prices(&app.db, &raw, &body.prices)
        .await
        .map_err(ApiError::from)?;
    if let (EventOutcome::Done(_), Ok(id)) = (&outcome, EventId::parse(&raw)) {
        announce(&app, &id).await;
    }
    event_outcome(outcome, false)
}

/// `POST /events/{id}/{open|freeze|unfreeze}`.
pub async fn transition(
    raw: String,
    action: Transition,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    ensure_owner(&app, &principal, &raw).await?;
    let id = super::events::event_id(&raw)?;
    let outcome = match action {
        Transition::Open => catalog::open_sales(&app.db, &app.coordinator, &id).await,
        other => catalog::events::set_status(&app.db, id.as_str(), other).await,
    }
    .map_err(ApiError::from)?;
    match outcome {
        StatusOutcome::Changed(event) => {
            announce(&app, &id).await;
            Ok(json_status(&event, StatusCode::OK))
        }
        StatusOutcome::NotFound => {
            Err(ApiError::not_found("unknown_event", "no such event").into())
        }
        StatusOutcome::NotAllowed(from) => Err(ApiError::conflict(
            "status_conflict",
            format!(
                "not allowed while the event is {}",
                serde_json::to_string(&from)
                    .unwrap_or_default()
                    .trim_matches('"')
            ),
        )
        .into()),
    }
}

/// 404 for an unknown event; 403 unless the caller created it or is an admin. An event without
/// an owner (made by an operator tool without `--owner`) is an admin's alone: "no owner" must
/// never read as "any organizer".
pub(crate) async fn ensure_owner(
    app: &App,
    principal: &Principal,
    raw: &str,
) -> Result<(), ApiError> {
    let event = catalog::events::get_event(&app.db, raw)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_event", "no such event"))?;
    if principal.role >= Role::Admin {
        return Ok(());
    }
    match event.owner.as_deref() {
        Some(owner) if owner == principal.user.as_str() => Ok(()),
        Some(_) => Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "not_event_owner",
            "only the organizer who created this event may change it",
        )),
        None => Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "not_event_owner",
            "this event has no owner; only an admin may change it",
        )),
    }
}

/// Tells every gateway that the event changed: this one at once (its next request must see the
/// change), the others through pub/sub.
async fn announce(app: &App, id: &EventId) {
    app.caches
        .invalidate(&coordinator::updates::Update::Event(id.clone()));
    app.coordinator.announce_event(id).await;
}

fn seats(raw: &[String]) -> Result<Vec<SeatId>, ApiError> {
    raw.iter()
        .map(|s| {
            SeatId::parse(s)
                .map_err(|e| ApiError::invalid("invalid_field", format!("seat_ids: {e}")))
        })
        .collect()
}

fn invalid_block(e: InvalidBlock) -> ApiError {
    let details = match &e {
        InvalidBlock::TooManySeats { max, requested } => {
            serde_json::json!({"field": "seat_ids", "max": max, "requested": requested})
        }
        _ => serde_json::Value::Null,
    };
    ApiError::invalid("invalid_block", e.to_string()).with_details(details)
}

/// `POST /events/{id}/blocks`: block free seats (press, production).
pub async fn block(
    raw: String,
    principal: Principal,
    body: BlockBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    ensure_owner(&app, &principal, &raw).await?;
    let id = super::events::event_id(&raw)?;
    let tag = body.tag.as_deref().unwrap_or("organizer");
    let seat_ids = seats(&body.seat_ids)?;
    // Kept in Postgres too (a section Redis loses is rebuilt with its blocks), in a transaction
    // that commits only if Redis blocked the seats: a refused block is kept nowhere.
    let mut tx = app.db.begin().await.map_err(ApiError::from)?;
    catalog::blocks::keep(&mut tx, &id, &seat_ids, tag)
        .await
        .map_err(ApiError::from)?;
    match app
        .coordinator
        .block(&id, &seat_ids, tag)
        .await
        .map_err(ApiError::from)?
    {
        BlockOutcome::Blocked(newly) => {
            tx.commit().await.map_err(ApiError::from)?;
            Ok(json_status(
                &serde_json::json!({ "blocked": newly }),
                StatusCode::OK,
            ))
        }
        BlockOutcome::Unavailable(list) => Err(ApiError::seats_unavailable(
            &list,
            "only free seats can be blocked; nothing was blocked",
        )
        .into()),
        BlockOutcome::UnknownEvent => {
            Err(ApiError::not_found("unknown_event", "the event has no inventory open").into())
        }
        BlockOutcome::UnknownSeats(s) => Err(ApiError::unknown_seats(&s).into()),
        BlockOutcome::Invalid(e) => Err(invalid_block(e).into()),
    }
}

/// `POST /events/{id}/blocks/release`: return blocked seats to sale.
pub async fn unblock(
    raw: String,
    principal: Principal,
    body: BlockBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    principal.require(Role::Organizer)?;
    ensure_owner(&app, &principal, &raw).await?;
    let id = super::events::event_id(&raw)?;
    let seat_ids = seats(&body.seat_ids)?;
    // Forgotten in Postgres in a transaction that commits once Redis freed the seats (a
    // failure between the two leaves the seats blocked on a rebuild: the safe side).
    let mut tx = app.db.begin().await.map_err(ApiError::from)?;
    catalog::blocks::forget(&mut tx, &id, &seat_ids)
        .await
        .map_err(ApiError::from)?;
    match app
        .coordinator
        .unblock(&id, &seat_ids)
        .await
        .map_err(ApiError::from)?
    {
        UnblockOutcome::Unblocked(freed) => {
            tx.commit().await.map_err(ApiError::from)?;
            Ok(json_status(
                &serde_json::json!({ "released": freed }),
                StatusCode::OK,
            ))
        }
        UnblockOutcome::UnknownEvent => {
            Err(ApiError::not_found("unknown_event", "the event has no inventory open").into())
        }
        UnblockOutcome::UnknownSeats(s) => Err(ApiError::unknown_seats(&s).into()),
        UnblockOutcome::Invalid(e) => Err(invalid_block(e).into()),
    }
}
