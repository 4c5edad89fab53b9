//! Holds: place (chosen seats, or best available), read, extend, cancel. A buyer only ever sees
//! their own holds; someone else's is "not found".

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use coordinator::extend::ExtendOutcome;
use coordinator::hold::{HoldOutcome, HoldRequest, InvalidHold, ReadOutcome};
use coordinator::release::ReleaseOutcome;
use coordinator::{
    Caller, ClientReservationId, EventId, Hold, HoldId, HoldState, SeatId, SectionId, UserId,
};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::events::visible_event;
use super::json_status;
use crate::auth::Principal;
use crate::best::{self, Choice, Wanted};
use crate::cache::VenueLayout;
use crate::errors::ApiError;
use crate::quote::{BestAvailable, Quote};
use crate::App;

/// `POST /events/{id}/reservations`: either `seat_ids`, or `quantity` (best available), or
/// `area` with `quantity` (general admission).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    client_reservation_id: String,
    user_id: String,
    seat_ids: Option<Vec<String>>,
    quantity: Option<usize>,
    area: Option<String>,
    section: Option<String>,
    category: Option<String>,
    adjacent: Option<bool>,
    ttl_seconds: Option<u64>,
}

/// `POST /reservations/{id}/extend`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    ttl_seconds: u64,
}

/// A hold as the API shows it.
#[derive(Debug, Serialize)]
pub struct HoldView {
    hold_id: HoldId,
    event_id: EventId,
    user_id: UserId,
    state: HoldState,
    seats: Vec<SeatId>,
    expires_at: String,
    cap_at: String,
    total_amount: f64,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    adjacent: Option<bool>,
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The price of seats at the event's current prices: (cents, currency). Summed with checked
/// arithmetic, and refused (422, nothing held) when the total is more than one charge may be:
/// a sum that wrapped once became a charge of -2 cents.
async fn price(app: &App, event: &EventId, seats: &[SeatId]) -> Result<(i64, String), ApiError> {
    let Some(event) = app.caches.event(app, event).await? else {
        return Ok((0, "USD".into()));
    };
    let layout = app.caches.venue(app, &event.venue_id).await?;
    let total = seats
        .iter()
        .filter_map(|s| layout.seats.get(s))
        .filter_map(|place| event.prices.iter().find(|p| p.category == place.category))
        .try_fold(0i64, |sum, p| sum.checked_add(p.amount_cents))
        .filter(|total| (0..=payments::MAX_CHARGE_CENTS).contains(total))
        .ok_or_else(|| {
            ApiError::invalid(
                "total_out_of_range",
                format!(
                    "these seats cost more than one payment may be ({} minor units); hold fewer",
                    payments::MAX_CHARGE_CENTS
                ),
            )
            .with_details(serde_json::json!({ "max_total_cents": payments::MAX_CHARGE_CENTS }))
        })?;
    let currency = event
        .prices
        .first()
        .map(|p| p.currency.clone())
        .unwrap_or_else(|| "USD".into());
    Ok((total, currency))
}

/// The quote kept with a hold ([`Quote`]'s text).
fn quote_text((cents, currency): (i64, String)) -> String {
    Quote::new(cents, currency).to_string()
}

fn parse_quote(quote: &str) -> Option<(i64, String)> {
    Quote::parse(quote).map(|q| (q.cents, q.currency))
}

/// The part of a quote that records a best-available request: its parameters (so a replay with
/// other parameters is told apart) and whether the group sat together.
fn best_marker(quote: &str) -> Option<(String, bool)> {
    Quote::parse(quote)?.best.map(|b| (b.key, b.adjacent))
}

/// A hold's total: the quote kept with it, or today's prices for a hold placed without one.
pub(crate) async fn quoted_total(app: &App, hold: &Hold) -> Result<(i64, String), ApiError> {
    match parse_quote(&hold.quote) {
        Some(quoted) => Ok(quoted),
        None => price(app, &hold.event, &hold.seats).await,
    }
}

/// A hold as the API shows it: its total is the price quoted when it was placed (a later price
/// change does not change what an existing hold costs).
async fn view(app: &App, hold: &Hold, adjacent: Option<bool>) -> Result<HoldView, ApiError> {
    let (total_cents, currency) = quoted_total(app, hold).await?;
    Ok(HoldView {
        hold_id: hold.id,
        event_id: hold.event.clone(),
        user_id: hold.user.clone(),
        state: hold.state,
        seats: hold.seats.clone(),
        expires_at: rfc3339(hold.expires_at_ms),
        cap_at: rfc3339(hold.cap_at_ms),
        total_amount: total_cents as f64 / 100.0,
        currency,
        adjacent,
    })
}

fn invalid_field(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid("invalid_field", format!("{field}: {e}"))
        .with_details(serde_json::json!({ "field": field }))
}

fn invalid_hold(e: InvalidHold) -> ApiError {
    let code = match &e {
        InvalidHold::NoSeats => "no_seats",
        InvalidHold::TooManySeats { .. } => "too_many_seats",
        InvalidHold::DuplicateSeat(_) => "duplicate_seat",
        InvalidHold::TtlOutOfRange { .. } => "ttl_out_of_range",
    };
    let details = match &e {
        InvalidHold::TooManySeats { max, requested } => {
            serde_json::json!({"max": max, "requested": requested})
        }
        InvalidHold::DuplicateSeat(seat) => serde_json::json!({"seat_id": seat}),
        InvalidHold::TtlOutOfRange {
            min,
            max,
            requested,
        } => {
            serde_json::json!({"min": min, "max": max, "requested": requested})
        }
        InvalidHold::NoSeats => serde_json::Value::Null,
    };
    ApiError::invalid(code, e.to_string()).with_details(details)
}

/// `POST /events/{id}/reservations`.
pub async fn create(
    raw: String,
    principal: Principal,
    admission: Option<String>,
    body: ReserveBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let outcome = create_inner(raw, principal, admission, body, &app).await;
    let label = match &outcome {
        Ok((status, _)) if *status == StatusCode::CREATED => "created",
        Ok(_) => "replayed",
        Err(e) => e.code,
    };
    app.metrics.holds_total.with_label_values(&[label]).inc();
    let (status, view) = outcome?;
    Ok(json_status(&view, status))
}

/// What every kind of hold request shares, parsed: the event (visible in the catalog), the
/// buyer (the token's subject), the client's id for the request and the admission ticket.
struct Ask<'a> {
    app: &'a App,
    event_id: EventId,
    event: Arc<catalog::events::Event>,
    user: UserId,
    client_id: ClientReservationId,
    admission: Option<String>,
}

/// Seats by id, or how many the best available should pick.
enum Pick {
    Seats(Vec<SeatId>),
    Best(usize),
}

async fn create_inner(
    raw: String,
    principal: Principal,
    admission: Option<String>,
    body: ReserveBody,
    app: &App,
) -> Result<(StatusCode, HoldView), ApiError> {
    let user = UserId::parse(&body.user_id).map_err(|e| invalid_field("user_id", e))?;
    if user != principal.user {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "user_mismatch",
            "user_id must be the token's subject",
        ));
    }
    let client_id = ClientReservationId::parse(&body.client_reservation_id)
        .map_err(|e| invalid_field("client_reservation_id", e))?;
    let (event_id, event) = visible_event(app, &raw).await?;
    let ask = Ask {
        app,
        event_id,
        event,
        user,
        client_id,
        admission,
    };
    if body.area.is_some() {
        return create_area(&ask, body).await;
    }
    let earlier = earlier_hold(&ask, &body).await?;
    if earlier.is_none() {
        check_on_sale(&ask.event)?;
        super::queue::check_admission(
            app,
            &ask.event_id,
            &ask.event,
            &ask.user,
            ask.admission.as_deref(),
        )
        .await?;
    }
    let limits = app.coordinator.limits();
    let pick = pick(&body, limits)?;
    // Validate the TTL before any seat is chosen (same rule as the coordinator's).
    coordinator::hold::check_ttl(body.ttl_seconds, limits).map_err(invalid_hold)?;
    match pick {
        Pick::Seats(seats) => {
            let request = ask.request(seats, body.ttl_seconds)?;
            let outcome = place(app, &request, None, ask.event.max_tickets_per_buyer).await?;
            held(app, &request, outcome, None).await
        }
        Pick::Best(quantity) => best_available(&ask, &body, earlier, quantity).await,
    }
}

impl Ask<'_> {
    /// A hold request for `seats`.
    fn request(&self, seats: Vec<SeatId>, ttl: Option<u64>) -> Result<HoldRequest, ApiError> {
        HoldRequest::new(
            self.event_id.clone(),
            self.user.clone(),
            self.client_id.clone(),
            seats,
            ttl,
            self.app.coordinator.limits(),
        )
        .map_err(invalid_hold)
    }
}

/// The hold an earlier copy of this request made, when it must be looked up here. A replay of a
/// request already answered gets its answer, whatever the sale's state now (a buyer retrying
/// after a timeout must not be told "frozen" about a hold they have). The record is read only
/// where the coordinator's own replay detection cannot serve: best available (the seats are not
/// known before the earlier hold is found) and a sale that is no longer open. A chosen-seats
/// hold on an open sale is replayed by `hold_begin.lua`, so the hot path pays no extra round
/// trip.
async fn earlier_hold(ask: &Ask<'_>, body: &ReserveBody) -> Result<Option<Hold>, ApiError> {
    if body.quantity.is_none() && check_on_sale(&ask.event).is_ok() {
        return Ok(None);
    }
    let hold_id = HoldId::derive(&ask.event_id, &ask.user, &ask.client_id);
    match ask
        .app
        .coordinator
        .read_hold(&hold_id, Caller::User(&ask.user))
        .await?
    {
        ReadOutcome::Found(hold) if hold.state == HoldState::Pending => Err(ApiError::conflict(
            "request_in_progress",
            "the same request is being processed; retry shortly",
        )
        .with_details(serde_json::json!({ "retry_after_ms": 100 }))),
        ReadOutcome::Found(hold) => Ok(Some(hold)),
        _ => Ok(None),
    }
}

/// Seats by id or a quantity for the best available, checked against each other and the limit.
fn pick(body: &ReserveBody, limits: &coordinator::Limits) -> Result<Pick, ApiError> {
    match (&body.seat_ids, body.quantity) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::invalid(
            "seats_or_quantity",
            "send either seat_ids or quantity (best available)",
        )),
        (Some(_), None)
            if body.section.is_some() || body.category.is_some() || body.adjacent.is_some() =>
        {
            Err(ApiError::invalid(
                "seats_or_quantity",
                "section, category and adjacent go with quantity, not seat_ids",
            ))
        }
        (Some(ids), None) => Ok(Pick::Seats(
            ids.iter()
                .map(|s| SeatId::parse(s).map_err(|e| invalid_field("seat_ids", e)))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        (None, Some(quantity)) if quantity == 0 || quantity > limits.max_seats_per_hold => {
            Err(ApiError::invalid(
                "too_many_seats",
                format!("quantity must be 1 to {}", limits.max_seats_per_hold),
            )
            .with_details(
                serde_json::json!({"max": limits.max_seats_per_hold, "requested": quantity}),
            ))
        }
        (None, Some(_)) if body.adjacent == Some(false) => Err(ApiError::invalid(
            "invalid_field",
            "adjacent: only true is supported (the default)",
        )),
        (None, Some(quantity)) => Ok(Pick::Best(quantity)),
    }
}

/// Best available: `quantity` seats picked by the gateway, then held. A replay of the same
/// client id returns the hold it made.
async fn best_available(
    ask: &Ask<'_>,
    body: &ReserveBody,
    earlier: Option<Hold>,
    quantity: usize,
) -> Result<(StatusCode, HoldView), ApiError> {
    let app = ask.app;
    // The request's parameters, kept with the hold so a replay can be recognised.
    let best_key = format!(
        "{quantity},{},{},{}",
        body.section.as_deref().unwrap_or(""),
        body.category.as_deref().unwrap_or(""),
        body.ttl_seconds
            .unwrap_or(app.coordinator.limits().default_ttl_secs)
    );
    if let Some(hold) = earlier {
        return match best_marker(&hold.quote) {
            Some((key, together)) if key == best_key => {
                Ok((StatusCode::OK, view(app, &hold, Some(together)).await?))
            }
            _ => Err(ApiError::conflict(
                "idempotency_conflict",
                "this client_reservation_id was used with another request",
            )),
        };
    }
    let layout = app.caches.venue(app, &ask.event.venue_id).await?;
    let section = best_section(&layout, body.section.as_deref())?;
    if let Some(c) = body.category.as_deref() {
        if !ask.event.prices.iter().any(|p| p.category == c) {
            return Err(ApiError::not_found(
                "unknown_category",
                format!("no category {c:?} at this event"),
            ));
        }
    }
    let wanted = Wanted {
        quantity,
        section: section.as_ref(),
        category: body.category.as_deref(),
        skip: 0,
    };
    pick_and_hold(ask, body.ttl_seconds, &layout, wanted, &best_key).await
}

/// The section a best-available request names, if any (404 when the venue has none such).
fn best_section(layout: &VenueLayout, raw: Option<&str>) -> Result<Option<SectionId>, ApiError> {
    raw.map(|s| {
        SectionId::parse(s)
            .ok()
            .filter(|id| layout.rows.iter().any(|r| &r.section == id))
            .ok_or_else(|| {
                ApiError::not_found("unknown_section", format!("no section {s:?} in this venue"))
            })
    })
    .transpose()
}

/// Picks seats and holds them, again when another buyer was faster. Picks use the cached seat
/// map, less the seats this process's picks took since it was read (`taken_since`). A refusal
/// (another process was faster) adds the refused seats, and the retry picks among more of the
/// next-best windows each time (8, 64, then 256 at most), at random: buyers who lost the same
/// race spread out instead of colliding again, and nobody is sent far back while better seats
/// are free. Only the last try waits for a fresh read of the event from Redis.
async fn pick_and_hold(
    ask: &Ask<'_>,
    ttl: Option<u64>,
    layout: &VenueLayout,
    mut wanted: Wanted<'_>,
    best_key: &str,
) -> Result<(StatusCode, HoldView), ApiError> {
    const ATTEMPTS: u32 = 5;
    let (app, event_id) = (ask.app, &ask.event_id);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            let spread = 8usize.pow(attempt).min(256);
            wanted.skip = rand::Rng::gen_range(&mut rand::thread_rng(), 0..spread);
        }
        let fresh = attempt + 1 == ATTEMPTS;
        let Some(map) = app.caches.seatmap(app, &ask.event, event_id, fresh).await? else {
            return Err(super::events::no_inventory(app, &ask.event).await);
        };
        let since = app.caches.taken_since(event_id, map.began());
        let is_taken = |s: &SeatId| map.taken.contains(s) || since.contains(s);
        let (seats, together) = match best::choose_with(layout, &is_taken, &wanted) {
            Choice::Together(seats) => (seats, true),
            Choice::Split(seats) => (seats, false),
            Choice::NotEnough { free } => {
                return Err(ApiError::conflict(
                    "not_enough_seats",
                    format!("only {free} matching seats are free"),
                )
                .with_details(serde_json::json!({"free": free, "requested": wanted.quantity})))
            }
        };
        // Claimed before the hold is placed: concurrent picks pass over them from now on.
        app.caches.note_taken(event_id, seats.iter().cloned());
        let request = ask.request(seats, ttl)?;
        let best = Some((best_key, together));
        match place(app, &request, best, ask.event.max_tickets_per_buyer).await? {
            HoldOutcome::Unavailable(lost) if attempt + 1 < ATTEMPTS => {
                // The refused seats count as taken for this retry's pick (read after this).
                app.caches
                    .note_taken(event_id, lost.into_iter().map(|u| u.seat));
            }
            outcome => return held(app, &request, outcome, Some(together)).await,
        }
    }
    Err(ApiError::conflict(
        "seats_unavailable",
        "seats were taken faster than they could be picked; retry",
    ))
}

/// A general-admission hold, checked: the area, how many places and the largest shard.
struct AreaAsk<'a> {
    area: SectionId,
    quantity: usize,
    /// The area's places (one prices them all: an area is of one category).
    places: Vec<&'a SeatId>,
}

/// A hold by quantity on a general-admission area: `{"area": "floor", "quantity": 4}`.
async fn create_area(ask: &Ask<'_>, body: ReserveBody) -> Result<(StatusCode, HoldView), ApiError> {
    let app = ask.app;
    // The request's own fields first: bad input is a 422 without any read.
    let (area, quantity) = area_fields(&body)?;
    let layout = app.caches.venue(app, &ask.event.venue_id).await?;
    let limits = app.coordinator.limits();
    let checked = area_ask(area, quantity, &layout, limits)?;
    let request = coordinator::area::AreaHoldRequest::new(
        ask.event_id.clone(),
        ask.user.clone(),
        ask.client_id.clone(),
        checked.area.clone(),
        checked.quantity,
        body.ttl_seconds,
        limits,
    )
    .map_err(invalid_hold)?;
    if check_on_sale(&ask.event).is_err() {
        // A replay of a hold placed while the sale was open still gets its hold.
        return match app
            .coordinator
            .read_hold(&request.hold_id(), Caller::User(&ask.user))
            .await?
        {
            ReadOutcome::Found(hold) if hold.state != HoldState::Pending => {
                Ok((StatusCode::OK, view(app, &hold, None).await?))
            }
            _ => Err(check_on_sale(&ask.event).err().unwrap_or_else(|| {
                ApiError::conflict("event_not_on_sale", "this event is not on sale")
            })),
        };
    }
    let (event, user) = (&ask.event, &ask.user);
    super::queue::check_admission(app, &ask.event_id, event, user, ask.admission.as_deref())
        .await?;
    // Every place of an area is of its category: the quote is its price times the quantity.
    let first = vec![checked.places[0].clone()];
    let (one, currency) = price(app, &ask.event_id, &first).await?;
    let total = one
        .checked_mul(checked.quantity as i64)
        .filter(|t| (0..=payments::MAX_CHARGE_CENTS).contains(t))
        .ok_or_else(|| {
            ApiError::invalid(
                "total_out_of_range",
                "these places cost more than one payment may be",
            )
        })?;
    let limit = event.max_tickets_per_buyer.max(1) as u64;
    let (coordinator, owned) = (
        app.coordinator.clone(),
        request
            .with_quote(quote_text((total, currency)))
            .with_ticket_limit(limit),
    );
    let outcome = detached(async move { coordinator.hold_area(&owned).await }).await??;
    area_held(app, outcome, &checked).await
}

/// 422 naming the field.
fn bad_field(field: &str, message: String) -> ApiError {
    ApiError::invalid("invalid_field", format!("{field}: {message}"))
        .with_details(serde_json::json!({ "field": field }))
}

/// The area a general-admission request names and how many places: the fields that go with
/// it, and none that do not.
fn area_fields(body: &ReserveBody) -> Result<(SectionId, usize), ApiError> {
    if body.seat_ids.is_some() {
        return Err(bad_field(
            "seat_ids",
            "a general-admission hold names an area and a quantity, not seats".into(),
        ));
    }
    for (name, given) in [
        ("section", body.section.is_some()),
        ("category", body.category.is_some()),
        ("adjacent", body.adjacent.is_some()),
    ] {
        if given {
            return Err(bad_field(
                name,
                "does not go with area (an area's places are not numbered)".into(),
            ));
        }
    }
    let raw_area = body.area.as_deref().unwrap_or_default();
    let area = SectionId::parse(raw_area).map_err(|e| invalid_field("area", e))?;
    let Some(quantity) = body.quantity else {
        return Err(bad_field(
            "quantity",
            "a general-admission hold needs a quantity".into(),
        ));
    };
    Ok((area, quantity))
}

/// The area's places in the venue's stored layout, and the quantity checked against the hold
/// limit and the largest shard.
fn area_ask<'a>(
    area: SectionId,
    quantity: usize,
    layout: &'a VenueLayout,
    limits: &coordinator::Limits,
) -> Result<AreaAsk<'a>, ApiError> {
    let shards: Vec<_> = layout
        .rows
        .iter()
        .filter(|r| coordinator::area::area_of(&r.section).as_ref() == Some(&area))
        .collect();
    let places: Vec<&SeatId> = shards
        .iter()
        .flat_map(|r| r.seats.iter().map(|(_, id, _)| id))
        .collect();
    if places.is_empty() {
        return Err(bad_field(
            "area",
            format!("no area {:?} in this venue", area.as_str()),
        ));
    }
    // All of a hold's places come from one shard: no more than the largest shard has.
    let shard_capacity = shards.iter().map(|r| r.seats.len()).max().unwrap_or(0);
    let most = limits.max_seats_per_hold.min(shard_capacity);
    if quantity == 0 || quantity > most {
        return Err(
            bad_field("quantity", format!("must be 1 to {most} for this area")).with_details(
                serde_json::json!({
                    "field": "quantity", "max": most, "capacity": places.len(), "requested": quantity,
                }),
            ),
        );
    }
    Ok(AreaAsk {
        area,
        quantity,
        places,
    })
}

/// The answer for a general-admission hold's outcome.
async fn area_held(
    app: &App,
    outcome: coordinator::area::AreaHoldOutcome,
    asked: &AreaAsk<'_>,
) -> Result<(StatusCode, HoldView), ApiError> {
    use coordinator::area::AreaHoldOutcome;
    match outcome {
        AreaHoldOutcome::Created(hold) => Ok((StatusCode::CREATED, view(app, &hold, None).await?)),
        AreaHoldOutcome::Replayed(hold) => Ok((StatusCode::OK, view(app, &hold, None).await?)),
        AreaHoldOutcome::NotEnough { free } => Err(ApiError::conflict(
            "not_enough_seats",
            format!("only {free} places of this area are free"),
        )
        .with_details(serde_json::json!({"free": free, "requested": asked.quantity}))),
        AreaHoldOutcome::UnknownArea => Err(bad_field(
            "area",
            format!("no area {:?} is open for this event", asked.area.as_str()),
        )),
        AreaHoldOutcome::IdempotencyConflict => Err(ApiError::conflict(
            "idempotency_conflict",
            "this client_reservation_id was used with another request",
        )),
        AreaHoldOutcome::InProgress { retry_after_ms } => Err(in_progress(retry_after_ms)),
        AreaHoldOutcome::OverLimit { limit, counted } => Err(over_limit(limit, counted)),
    }
}

/// 409: the same request is being processed.
fn in_progress(retry_after_ms: u64) -> ApiError {
    ApiError::conflict(
        "request_in_progress",
        "the same request is being processed; retry shortly",
    )
    .with_details(serde_json::json!({ "retry_after_ms": retry_after_ms }))
}

/// 409: the buyer's ticket limit for the event.
fn over_limit(limit: u64, counted: u64) -> ApiError {
    ApiError::conflict(
        "ticket_limit",
        format!("at most {limit} seats per buyer for this event; you have {counted}"),
    )
    .with_details(serde_json::json!({"limit": limit, "counted": counted}))
}

/// The answer for seats Redis did not know: 404 naming those the venue does not have either;
/// when the venue has them all, 503: their section's inventory is not in Redis (lost with a
/// primary and not yet rebuilt by the reconciler, or still opening), and a retry will find it.
async fn unknown_or_not_loaded(
    app: &App,
    event: &EventId,
    seats: Vec<SeatId>,
) -> Result<ApiError, ApiError> {
    let Some(event) = app.caches.event(app, event).await? else {
        return Ok(ApiError::unknown_seats(&seats));
    };
    let layout = app.caches.venue(app, &event.venue_id).await?;
    let unknown: Vec<SeatId> = seats
        .into_iter()
        .filter(|s| !layout.seats.contains_key(s))
        .collect();
    Ok(if unknown.is_empty() {
        // The venue has these seats: it has seats.
        ApiError::no_inventory(&event, true)
    } else {
        ApiError::unknown_seats(&unknown)
    })
}

/// Places `request` at the price its seats have now (the quote kept with the hold; `best`: the
/// best-available request's key and whether its seats sit together, kept with it too).
async fn place(
    app: &App,
    request: &HoldRequest,
    best: Option<(&str, bool)>,
    max_per_buyer: i32,
) -> Result<HoldOutcome, ApiError> {
    let (cents, currency) = price(app, &request.hold_event(), request.seats()).await?;
    let quoted = Quote {
        best: best.map(|(key, adjacent)| BestAvailable {
            key: key.to_owned(),
            adjacent,
        }),
        ..Quote::new(cents, currency)
    }
    .to_string();
    // The buyer's seats for the event are counted against the limit by the script that opens
    // the hold, atomically with it; a refused or rolled-back hold gives them back.
    let limit = max_per_buyer.max(1) as u64;
    let (coordinator, owned) = (
        app.coordinator.clone(),
        request.clone().with_quote(quoted).with_ticket_limit(limit),
    );
    Ok(detached(async move { coordinator.hold(&owned).await }).await??)
}

/// The answer for a hold's outcome (`adjacent`: a best-available pick's, shown on a new hold).
async fn held(
    app: &App,
    request: &HoldRequest,
    outcome: HoldOutcome,
    adjacent: Option<bool>,
) -> Result<(StatusCode, HoldView), ApiError> {
    match outcome {
        HoldOutcome::Created(hold) => Ok((StatusCode::CREATED, view(app, &hold, adjacent).await?)),
        HoldOutcome::Replayed(hold) => Ok((StatusCode::OK, view(app, &hold, None).await?)),
        HoldOutcome::Unavailable(list) => Err(ApiError::seats_unavailable(
            &list,
            "some seats are not available; nothing was held",
        )),
        // The catalog knows the event (the handler read it there): Redis lost its inventory.
        HoldOutcome::UnknownEvent => {
            Err(match app.caches.event(app, &request.hold_event()).await? {
                Some(event) => super::events::no_inventory(app, &event).await,
                None => ApiError::not_found("unknown_event", "no such event"),
            })
        }
        HoldOutcome::UnknownSeats(seats) => {
            Err(unknown_or_not_loaded(app, &request.hold_event(), seats).await?)
        }
        HoldOutcome::IdempotencyConflict => Err(ApiError::conflict(
            "idempotency_conflict",
            "this client_reservation_id was used with other seats or ttl",
        )),
        HoldOutcome::InProgress { retry_after_ms } => Err(in_progress(retry_after_ms)),
        HoldOutcome::OverLimit { limit, counted } => Err(over_limit(limit, counted)),
    }
}

pub(crate) fn check_on_sale(event: &catalog::events::Event) -> Result<(), ApiError> {
    use catalog::events::EventStatus;
    match event.status {
        EventStatus::OnSale if event.sale_opens_at <= Utc::now() => {}
        EventStatus::OnSale => {
            return Err(ApiError::conflict(
                "sale_not_open",
                format!("sales open at {}", event.sale_opens_at.to_rfc3339()),
            )
            .with_details(serde_json::json!({"sale_opens_at": event.sale_opens_at})))
        }
        EventStatus::Frozen => {
            return Err(ApiError::conflict(
                "event_frozen",
                "sales of this event are paused",
            ))
        }
        _ => {
            return Err(ApiError::conflict(
                "event_not_on_sale",
                "this event is not on sale",
            ))
        }
    }
    Ok(())
}

/// Runs a multi-step coordinator operation on its own task: if the client disconnects and the
/// request's future is dropped, the hold, cancel or extension still runs to its end (or rolls
/// back), instead of stopping between two sections.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    // In the request's span: its log lines keep the request id.
    tokio::spawn(tracing::Instrument::in_current_span(work))
        .await
        .map_err(|e| ApiError::unavailable("gateway", e))
}

pub(crate) fn hold_id(raw: &str) -> Result<HoldId, ApiError> {
    HoldId::parse(raw).map_err(|_| ApiError::not_found("unknown_hold", format!("no hold {raw:?}")))
}

fn not_found(id: &HoldId) -> ApiError {
    ApiError::not_found("unknown_hold", format!("no hold {id}"))
}

/// `GET /reservations/{id}`.
pub async fn get(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = hold_id(&raw)?;
    match app
        .coordinator
        .read_hold(&id, Caller::User(&principal.user))
        .await
        .map_err(ApiError::from)?
    {
        ReadOutcome::Found(hold) => {
            Ok(json_status(&view(&app, &hold, None).await?, StatusCode::OK))
        }
        ReadOutcome::NotFound | ReadOutcome::NotOwner => Err(not_found(&id).into()),
    }
}

/// `DELETE /reservations/{id}`: 204; only the holder.
pub async fn cancel(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = hold_id(&raw)?;
    let (coordinator, user) = (app.coordinator.clone(), principal.user.clone());
    // The release gives the seats back to the buyer's ticket count in the same step.
    match detached(async move { coordinator.release(&id, Caller::User(&user)).await })
        .await?
        .map_err(ApiError::from)?
    {
        ReleaseOutcome::Released(_) | ReleaseOutcome::AlreadyReleased(_) => {
            Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
        }
        ReleaseOutcome::NotFound | ReleaseOutcome::NotOwner => Err(not_found(&id).into()),
        ReleaseOutcome::NotReleasable(state) => Err(ApiError::conflict(
            match state {
                HoldState::Pinned => "payment_in_progress",
                HoldState::Sold => "already_sold",
                _ => "request_in_progress",
            },
            format!(
                "a {} hold cannot be cancelled",
                serde_json::to_string(&state)
                    .unwrap_or_default()
                    .trim_matches('"')
            ),
        )
        .into()),
    }
}

/// `POST /reservations/{id}/extend`.
pub async fn extend(
    raw: String,
    principal: Principal,
    body: ExtendBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = hold_id(&raw)?;
    let (coordinator, user) = (app.coordinator.clone(), principal.user.clone());
    // The buyer's ticket count is extended with the hold, in the same step.
    let outcome = detached(async move {
        coordinator
            .extend(&id, Caller::User(&user), body.ttl_seconds)
            .await
    })
    .await?
    .map_err(ApiError::from)?;
    let hold: Arc<Hold> = match outcome {
        ExtendOutcome::Extended(hold) => Arc::new(hold),
        ExtendOutcome::NotFound | ExtendOutcome::NotOwner => return Err(not_found(&id).into()),
        ExtendOutcome::Expired(_) | ExtendOutcome::SeatsLost(_) => {
            return Err(
                ApiError::client(StatusCode::GONE, "hold_expired", "the hold has expired").into(),
            )
        }
        ExtendOutcome::PastCap(h) => {
            return Err(ApiError::conflict(
                "extension_past_cap",
                "a hold cannot be extended past its cap",
            )
            .with_details(serde_json::json!({"cap_at": rfc3339(h.cap_at_ms)}))
            .into())
        }
        ExtendOutcome::WrongState(h) => {
            return Err(ApiError::conflict(
                "hold_not_extendable",
                format!("a {:?} hold cannot be extended", h.state).to_lowercase(),
            )
            .into())
        }
        ExtendOutcome::Invalid(e) => return Err(invalid_hold(e).into()),
    };
    Ok(json_status(&view(&app, &hold, None).await?, StatusCode::OK))
}
