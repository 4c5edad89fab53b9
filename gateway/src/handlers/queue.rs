//! The waiting room: `POST /events/{id}/queue` (join), `GET /events/{id}/queue/{ticket}` (poll;
//! the hottest call of a sale: a waiting ticket is mostly answered from the gateway's memory
//! (`crate::room`), otherwise one script call in Redis; never Postgres; whether anything is left
//! comes from the gateway's seat-map cache), the organizer's
//! `PUT /events/{id}/admission` and `GET /events/{id}/queue` (the room's state), and the public
//! `GET /events/{id}/queue/lottery` (seed hash before the draw, seed and tickets after: anyone
//! can recompute the order).

use coordinator::queue::{AdmissionMode, QueueOutcome, TicketStatus, TicketView};
use coordinator::{EventId, UserId};
use warp::http::StatusCode;
use warp::Rejection;

use super::events::{event_id, visible_event};
use super::json_status;
use super::organizer::ensure_owner;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// Refuses a new hold on a queued event without a valid admission token (of this buyer, for
/// this event, within its window by Redis's clock, and not yet used for a finished checkout).
pub async fn check_admission(
    app: &App,
    event_id: &EventId,
    event: &catalog::events::Event,
    user: &UserId,
    token: Option<&str>,
) -> Result<(), ApiError> {
    if event.admission_mode == coordinator::queue::AdmissionMode::Open {
        return Ok(());
    }
    let queue = format!("/events/{event_id}/queue");
    let refuse = |code: &'static str, message: &str| {
        ApiError::client(StatusCode::FORBIDDEN, code, message)
            .with_details(serde_json::json!({ "queue": queue }))
    };
    let Some(token) = token else {
        return Err(refuse(
            "admission_required",
            "this sale has a waiting room: join it and send the admission token it gives you as X-Admission-Token",
        ));
    };
    let expires = app
        .keys
        .admission_expiry(token, event_id, user)
        .map_err(|_| {
            refuse(
                "invalid_admission_token",
                "the admission token is not valid for this buyer and event",
            )
        })?;
    // One admission, one checkout: once the buyer's checkout finished, the token (good for
    // the rest of its window) no longer opens holds. A room lost from Redis (no ticket) does
    // not lock out a buyer holding a valid token: the room is soft state, as holds are.
    let room = app
        .coordinator
        .queue_check(event_id, user, app.pacer.pace())
        .await?;
    // The window ends by the clock that started it (Redis TIME, which minted the expiry), not
    // this process's, which may be seconds off.
    let now = match &room {
        QueueOutcome::Ticket(view) => view.now_ms.div_euclid(1000),
        _ => chrono::Utc::now().timestamp(),
    };
    if expires <= now {
        return Err(refuse(
            "admission_expired",
            "the admission's shopping window is over: join the queue again",
        ));
    }
    match room {
        QueueOutcome::Ticket(view) if view.status == TicketStatus::Done => Err(refuse(
            "admission_used",
            "this admission ended with a finished checkout; a waiting room admits each buyer for one checkout",
        )),
        _ => Ok(()),
    }
}

/// How often a buyer told "sold out" may look again.
const SOLD_OUT_POLL_MS: u64 = 30_000;

/// What is left: seats free and held, from the seat-map cache (a quarter of a second behind an
/// announced change, at most `SEATMAP_MAX_AGE` behind a lost announcement): a waiting room's
/// polls must not each read the event's state from Redis. `None` when it cannot be read (the
/// room then neither ties admission to it nor says sold out).
async fn inventory(app: &App, event: &catalog::events::Event, id: &EventId) -> Option<Inventory> {
    match app.caches.seatmap(app, event, id, false).await {
        Ok(Some(map)) => Some(Inventory {
            free: map.free,
            held: map.held,
        }),
        _ => None,
    }
}

/// [`inventory`] of an event known only by id (poll, status): its record from the catalog cache;
/// when that cannot be read, the call goes on untied to the inventory, and the script still
/// answers for the ticket.
async fn inventory_of(app: &App, event: &EventId) -> Option<Inventory> {
    match visible_event(app, event.as_str()).await {
        Ok((id, record)) => inventory(app, &record, &id).await,
        Err(_) => None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Inventory {
    free: u64,
    held: u64,
}

impl Inventory {
    /// Nothing left to buy: no seat free and none held (a held seat may come back).
    fn sold_out(inventory: Option<Self>) -> bool {
        inventory.is_some_and(|i| i.free == 0 && i.held == 0)
    }
}

/// A ticket as buyers see it (join and poll answers). A struct rather than a JSON value: polls
/// are the busiest call of a sale, and this is serialized without building a map first.
#[derive(serde::Serialize)]
struct TicketBody<'a> {
    ticket: &'a str,
    status: &'static str,
    position: u64,
    ahead: u64,
    admitted_so_far: u64,
    expected_wait_seconds: u64,
    poll_after_ms: u64,
    seats_left: Option<u64>,
    outlook: &'static str,
    admission_token: Option<String>,
    admission_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn ticket_view<'a>(
    app: &App,
    event: &EventId,
    user: &UserId,
    t: &'a TicketView,
    inventory: Option<Inventory>,
) -> TicketBody<'a> {
    let sold_out = Inventory::sold_out(inventory);
    if let Some(waited) = t.waited_ms {
        // The wait this buyer actually had (first seen admitted), next to the one announced.
        app.metrics
            .queue_wait_seconds
            .observe(waited as f64 / 1000.0);
    }
    // Every look at a ticket is also a look at the room: cheap gauges for the dashboards.
    app.metrics
        .queue_waiting
        .with_label_values(&[event.as_str()])
        .set(t.joined.saturating_sub(t.admitted_upto) as i64);
    app.metrics
        .queue_admitted
        .with_label_values(&[event.as_str()])
        .set(t.admitted_upto as i64);
    let expired = t.status == TicketStatus::Admitted && t.now_ms >= t.admission_ends_ms();
    let status = match t.status {
        // Nothing left: buyers stop waiting (and polling) instead of queueing for nothing.
        TicketStatus::Done => "done",
        _ if sold_out => "sold_out",
        TicketStatus::Waiting => "waiting",
        TicketStatus::PreQueue => "pre_queue",
        TicketStatus::Admitted if expired => "expired",
        TicketStatus::Admitted => "admitted",
    };
    let wait_s = t.expected_wait_secs();
    // Poll often when the turn is near, rarely when it is far: the load follows the need.
    let poll_after_ms = match t.status {
        TicketStatus::Waiting | TicketStatus::PreQueue => (wait_s * 1000 / 4).clamp(1_000, 30_000),
        _ => 0,
    };
    // Sold out may not be final (a refund, an expired hold, an unblocked seat): a buyer who stays
    // looks again rarely.
    let poll_after_ms = if sold_out {
        SOLD_OUT_POLL_MS
    } else {
        poll_after_ms
    };
    // Told early: with more buyers ahead than seats left, even one seat each would not reach
    // this buyer unless some give up (or seats come back).
    let outlook = match (status, inventory) {
        ("waiting" | "pre_queue", Some(i)) if t.ahead() >= i.free => "unlikely",
        ("waiting" | "pre_queue", Some(_)) => "possible",
        _ => "unknown",
    };
    let token = (status == "admitted").then(|| {
        app.keys
            .mint_admission(event, user, t.admission_ends_ms() / 1000)
    });
    TicketBody {
        ticket: &t.ticket,
        status,
        position: t.position,
        ahead: t.ahead(),
        admitted_so_far: t.admitted_upto,
        expected_wait_seconds: wait_s,
        poll_after_ms,
        seats_left: inventory.map(|i| i.free),
        outlook,
        admission_token: token,
        admission_expires_at: (t.admission_ends_ms() > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(t.admission_ends_ms()))
            .flatten(),
    }
}

/// Runs a queue call; when Redis lacks the room (lost in a failover) while Postgres says the
/// event has one, the room's settings are pushed again and the call retried once.
async fn with_room<F, Fut>(app: &App, event: &EventId, call: F) -> Result<QueueOutcome, ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<QueueOutcome, coordinator::CoordinatorError>>,
{
    match call().await? {
        QueueOutcome::NoQueue => {
            if let Some(admission) =
                catalog::admission::get_admission(&app.db, event.as_str()).await?
            {
                if admission.settings.mode != AdmissionMode::Open {
                    catalog::admission::push(&app.coordinator, event, &admission).await?;
                    return Ok(call().await?);
                }
            }
            Ok(QueueOutcome::NoQueue)
        }
        other => Ok(other),
    }
}

fn no_queue(event: &EventId) -> ApiError {
    ApiError::conflict(
        "no_waiting_room",
        format!("event {event} has no waiting room: reserve directly"),
    )
}

/// `POST /events/{id}/queue`.
pub async fn join(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (event, record) = visible_event(&app, &raw).await?;
    let user = principal.user.clone();
    let left = inventory(&app, &record, &event).await;
    let free = left.map(|i| i.free);
    match with_room(&app, &event, || {
        app.coordinator
            .queue_join(&event, &user, free, app.pacer.pace())
    })
    .await?
    {
        QueueOutcome::Ticket(t) => {
            app.caches.rooms.learn(&event, &user, &t);
            app.metrics.queue_total.with_label_values(&["join"]).inc();
            app.metrics
                .queue_expected_wait_seconds
                .observe(t.expected_wait_secs() as f64);
            Ok(json_status(
                &ticket_view(&app, &event, &user, &t, left),
                StatusCode::OK,
            ))
        }
        _ => Err(no_queue(&event).into()),
    }
}

/// `GET /events/{id}/queue/{ticket}`.
pub async fn poll(
    raw: String,
    ticket: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let event = event_id(&raw)?;
    let unknown = || ApiError::not_found("unknown_ticket", "no such ticket in this waiting room");
    if uuid::Uuid::parse_str(&ticket).is_err() {
        return Err(unknown().into());
    }
    let user = principal.user.clone();
    let left = inventory_of(&app, &event).await;
    let free = left.map(|i| i.free);
    let boards = &app.caches.rooms;
    let from_memory = boards.answer(&event, &user, &ticket);
    let source = if from_memory.is_some() {
        "memory"
    } else {
        "redis"
    };
    app.metrics
        .queue_polls_total
        .with_label_values(&[source])
        .inc();
    let outcome = match from_memory {
        Some(t) => QueueOutcome::Ticket(t),
        None => {
            let outcome = with_room(&app, &event, || {
                app.coordinator
                    .queue_poll(&event, &user, &ticket, free, app.pacer.pace())
            })
            .await?;
            // Only Redis's answers teach the board (one from memory would keep it fresh forever).
            if let QueueOutcome::Ticket(t) = &outcome {
                boards.learn(&event, &user, t);
            }
            outcome
        }
    };
    match outcome {
        QueueOutcome::Ticket(t) => {
            app.metrics.queue_total.with_label_values(&["poll"]).inc();
            Ok(json_status(
                &ticket_view(&app, &event, &user, &t, left),
                StatusCode::OK,
            ))
        }
        QueueOutcome::NotOwner => Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "not_your_ticket",
            "this ticket belongs to another buyer",
        )
        .into()),
        QueueOutcome::UnknownTicket => Err(unknown().into()),
        QueueOutcome::NoQueue => Err(no_queue(&event).into()),
    }
}

/// `GET /events/{id}/queue` (organizer of the event, or admin): the room's state.
pub async fn status(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let event = event_id(&raw)?;
    ensure_owner(&app, &principal, event.as_str()).await?;
    let left = inventory_of(&app, &event).await;
    let free = left.map(|i| i.free);
    let pace = app.pacer.pace();
    match with_room(&app, &event, || {
        app.coordinator.queue_status(&event, free, pace)
    })
    .await?
    {
        QueueOutcome::Ticket(t) => {
            let waiting = t.joined.saturating_sub(t.admitted_upto);
            Ok(json_status(
                &serde_json::json!({
                    "event_id": event,
                    "joined": t.joined,
                    "admitted": t.admitted_upto,
                    "waiting": waiting,
                    "shopping": t.shopping,
                    "seats_left": free,
                    // The rate admission runs at now: the one set, times the pace.
                    "rate_per_second": t.rate_per_sec,
                    "pace": pace.get(),
                    "expected_wait_seconds_for_a_new_buyer":
                        (waiting as f64 / t.rate_per_sec.max(0.001)).ceil() as u64,
                }),
                StatusCode::OK,
            ))
        }
        _ => Err(no_queue(&event).into()),
    }
}

/// `PUT /events/{id}/admission` (the event's organizer, or an admin).
pub async fn set_admission(
    raw: String,
    principal: Principal,
    body: catalog::admission::AdmissionSettings,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let event = event_id(&raw)?;
    ensure_owner(&app, &principal, event.as_str()).await?;
    match catalog::admission::set_admission(&app.db, &app.coordinator, &event, &body)
        .await
        .map_err(ApiError::from)?
    {
        Ok(Some(admission)) => {
            app.coordinator.announce_event(&event).await;
            app.caches
                .invalidate(&coordinator::updates::Update::Event(event.clone()));
            Ok(json_status(&admission, StatusCode::OK))
        }
        Ok(None) => Err(ApiError::not_found("unknown_event", format!("no event {event}")).into()),
        Err(e) => Err(ApiError::invalid("invalid_admission", e.to_string()).into()),
    }
}

/// `GET /events/{id}/queue/lottery` (public): the seed's hash before the draw; the seed and the
/// pre-queue's tickets (in joining order) after it. The order is the tickets sorted by
/// `SHA1(seed + ":" + ticket)`.
pub async fn lottery(raw: String, app: App) -> Result<warp::reply::Response, Rejection> {
    let (event, _) = visible_event(&app, &raw).await?;
    let Some(admission) = catalog::admission::get_admission(&app.db, event.as_str())
        .await
        .map_err(ApiError::from)?
    else {
        return Err(ApiError::not_found("unknown_event", format!("no event {event}")).into());
    };
    if admission.settings.mode != AdmissionMode::Lottery {
        return Err(
            ApiError::conflict("no_lottery", "this event's admission is not a lottery").into(),
        );
    }
    let drawn = app
        .coordinator
        .lottery_drawn(&event)
        .await
        .map_err(ApiError::from)?;
    let tickets = if drawn {
        app.coordinator
            .lottery_tickets(&event)
            .await
            .map_err(ApiError::from)?
    } else {
        Vec::new()
    };
    Ok(json_status(
        &serde_json::json!({
            "event_id": event,
            "pre_queue_closes_at": admission.opens_at,
            "seed_sha256": admission.lottery_seed_sha256,
            "drawn": drawn,
            "seed": if drawn { admission.lottery_seed } else { None },
            "tickets_in_joining_order": tickets,
            "order": "tickets sorted by hex SHA1(seed + \":\" + ticket), ascending",
        }),
        StatusCode::OK,
    ))
}
