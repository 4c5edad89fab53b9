//! A buyer's tickets: `GET /orders/{id}/tickets` (an order's, with each valid ticket's signed
//! payload), `GET /tickets` (every valid ticket the caller holds, bought or received),
//! `GET /tickets/{id}.svg` (the payload as a QR code), `POST /tickets/{id}/transfer`.
//!
//! Only the holder sees a payload: it is what opens the gate. A ticket or order of someone
//! else is answered like one that does not exist.

use orders::tickets::{Ticket, TicketStatus, Transferred};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warp::http::{HeaderValue, StatusCode};
use warp::Rejection;

use super::json_status;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::App;

/// Most tickets `GET /tickets` lists.
pub const MAX_LISTED: i64 = 500;

/// A ticket as the API shows it: the row, and its payload while it is valid and the caller
/// holds it.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    ticket: &'a Ticket,
    /// What the QR code carries; absent once revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    /// The QR code image of the payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_svg: Option<String>,
}

fn shown<'a>(app: &App, ticket: &'a Ticket, caller: &str) -> Shown<'a> {
    let usable = ticket.status == TicketStatus::Valid && ticket.holder == caller;
    Shown {
        ticket,
        payload: usable.then(|| {
            app.tickets.payload(
                ticket.ticket_id,
                &ticket.event_id,
                &ticket.seat_id,
                &ticket.holder,
            )
        }),
        qr_svg: usable.then(|| format!("/tickets/{}.svg", ticket.ticket_id)),
    }
}

fn unknown_order(raw: &str) -> ApiError {
    ApiError::not_found("unknown_order", format!("no order {raw:?}"))
}

fn unknown_ticket(raw: &str) -> ApiError {
    ApiError::not_found("unknown_ticket", format!("no ticket {raw:?} of yours"))
}

/// `GET /orders/{id}/tickets`: the buyer's own order only. Each seat's tickets, transferred and
/// refunded ones included (without a payload), so the buyer sees where each went.
pub async fn of_order(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let order = Uuid::parse_str(&raw).map_err(|_| unknown_order(&raw))?;
    let tickets = orders::tickets::of_order(&app.db, order, principal.user.as_str())
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| unknown_order(&raw))?;
    let shown: Vec<Shown<'_>> = tickets
        .iter()
        .map(|t| shown(&app, t, principal.user.as_str()))
        .collect();
    Ok(json_status(
        &serde_json::json!({"order_id": order, "tickets": shown}),
        StatusCode::OK,
    ))
}

/// `GET /tickets`: every valid ticket the caller holds.
pub async fn held(principal: Principal, app: App) -> Result<warp::reply::Response, Rejection> {
    let tickets = orders::tickets::held_by(&app.db, principal.user.as_str(), MAX_LISTED)
        .await
        .map_err(ApiError::from)?;
    let shown: Vec<Shown<'_>> = tickets
        .iter()
        .map(|t| shown(&app, t, principal.user.as_str()))
        .collect();
    Ok(json_status(
        &serde_json::json!({"holder": principal.user, "tickets": shown}),
        StatusCode::OK,
    ))
}

/// `GET /tickets/{id}.svg`: the QR code of a valid ticket the caller holds. A revoked ticket
/// has no code to show (409: its payload would not open the gate).
pub async fn svg(
    file: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let raw = file
        .strip_suffix(".svg")
        .ok_or_else(|| unknown_ticket(&file))?;
    let id = Uuid::parse_str(raw).map_err(|_| unknown_ticket(raw))?;
    let ticket = orders::tickets::held_one(&app.db, id, principal.user.as_str())
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| unknown_ticket(raw))?;
    if ticket.status != TicketStatus::Valid {
        return Err(revoked(ticket.status).into());
    }
    let payload = app.tickets.payload(
        ticket.ticket_id,
        &ticket.event_id,
        &ticket.seat_id,
        &ticket.holder,
    );
    let image = qr_svg(&payload).map_err(|e| {
        // Our own payloads are far below a QR code's capacity: only a bug gets here.
        tracing::error!(error = %e, "a ticket payload did not fit a QR code");
        ApiError::client(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the ticket's code could not be drawn",
        )
    })?;
    let mut response = warp::reply::Response::new(image.into());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("image/svg+xml"));
    // The code is the ticket: no shared cache may keep it.
    headers.insert(
        "cache-control",
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// The QR code of `payload` as an SVG document (error correction M: a phone screen's glare or
/// a crease still scans).
pub fn qr_svg(payload: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

fn revoked(status: TicketStatus) -> ApiError {
    let why = match status {
        TicketStatus::Transferred => "it was transferred",
        _ => "its order was refunded",
    };
    ApiError::conflict("ticket_revoked", format!("the ticket is not valid: {why}"))
        .with_details(serde_json::json!({"status": status}))
}

/// `POST /tickets/{id}/transfer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new holder's user id.
    to: String,
}

/// `POST /tickets/{id}/transfer`: 201 with the new holder's ticket (without its payload: that is
/// the new holder's to fetch); 409 to oneself, of a revoked ticket or one already used.
pub async fn transfer(
    raw: String,
    principal: Principal,
    body: TransferBody,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let id = Uuid::parse_str(&raw).map_err(|_| unknown_ticket(&raw))?;
    let to = coordinator::UserId::parse(&body.to).map_err(|e| {
        ApiError::invalid("invalid_field", format!("to: {e}"))
            .with_details(serde_json::json!({"field": "to"}))
    })?;
    match orders::tickets::transfer(&app.db, id, principal.user.as_str(), to.as_str())
        .await
        .map_err(ApiError::from)?
    {
        Transferred::Done(ticket) => {
            app.metrics.ticket_transfers_total.inc();
            Ok(json_status(
                &serde_json::json!({"transferred": id, "ticket": ticket}),
                StatusCode::CREATED,
            ))
        }
        Transferred::NotFound => Err(unknown_ticket(&raw).into()),
        Transferred::ToSelf => {
            Err(ApiError::conflict("transfer_to_self", "the ticket is already yours").into())
        }
        Transferred::Revoked(status) => Err(revoked(status).into()),
        Transferred::CheckedIn => Err(ApiError::conflict(
            "ticket_used",
            "the ticket was admitted at a gate already",
        )
        .into()),
    }
}
