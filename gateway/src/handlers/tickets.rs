//! A buyer's tickets: `GET /orders/{id}/tickets` (an order's, with each valid ticket's signed
//! payload), `GET /tickets` (every valid ticket the caller holds, bought or received),
//! `GET /tickets/{id}.svg` (the payload as a QR code), `GET /orders/{id}/tickets.pdf` (the
//! order's valid tickets on one printable page), `POST /tickets/{id}/transfer`.
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
    // Our own payloads are far below a QR code's capacity: only a bug fails here.
    let image = qr_svg(&payload).map_err(|e| not_drawn("the ticket's code", e))?;
    Ok(private_body(image.into_bytes(), "image/svg+xml"))
}

/// 500 for a drawing of our own data that failed: a bug, logged.
fn not_drawn(what: &str, error: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %error, "{what} could not be drawn");
    ApiError::client(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("{what} could not be drawn"),
    )
}

/// A body only its holder may see: the code is the ticket, so no shared cache may keep it.
fn private_body(bytes: Vec<u8>, content_type: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(bytes.into());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert(
        "cache-control",
        HeaderValue::from_static("private, no-store"),
    );
    response
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

/// `GET /orders/{id}/tickets.pdf`: the order's valid tickets the caller holds, on one A4 page
/// (a QR code and its seat each). 409 when none is left (all refunded or transferred).
pub async fn pdf(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let order = Uuid::parse_str(&raw).map_err(|_| unknown_order(&raw))?;
    let tickets = orders::tickets::of_order(&app.db, order, principal.user.as_str())
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| unknown_order(&raw))?;
    let printable: Vec<(&Ticket, String)> = tickets
        .iter()
        .filter(|t| t.status == TicketStatus::Valid && t.holder == principal.user.as_str())
        .map(|t| {
            let payload = app
                .tickets
                .payload(t.ticket_id, &t.event_id, &t.seat_id, &t.holder);
            (t, payload)
        })
        .collect();
    if printable.is_empty() {
        return Err(ApiError::conflict(
            "no_valid_tickets",
            "none of the order's tickets is valid and yours any more (refunded or transferred)",
        )
        .into());
    }
    // Our own payloads and a bounded number of tickets: only a bug fails here.
    let bytes = order_pdf(order, &printable).map_err(|e| not_drawn("the ticket page", e))?;
    let mut response = private_body(bytes, "application/pdf");
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"tickets-{order}.pdf\"")) {
        headers.insert("content-disposition", v);
    }
    Ok(response)
}

/// One A4 page: a title, then a grid of three columns, each cell a ticket's QR code (drawn as
/// rectangles, one per run of dark modules) and its seat, event, holder and id. The cells
/// shrink to fit every ticket of an order on the page.
pub fn order_pdf(order: Uuid, tickets: &[(&Ticket, String)]) -> anyhow::Result<Vec<u8>> {
    use printpdf::{BuiltinFont, Mm, PdfDocument};
    const COLUMNS: usize = 3;
    let (doc, page, layer) = PdfDocument::new(
        format!("Tickets of order {order}"),
        Mm(210.0),
        Mm(297.0),
        "tickets",
    );
    let layer = doc.get_page(page).get_layer(layer);
    let font = doc.add_builtin_font(BuiltinFont::Helvetica)?;
    let bold = doc.add_builtin_font(BuiltinFont::HelveticaBold)?;
    layer.use_text("Your tickets", 18.0, Mm(15.0), Mm(280.0), &bold);
    layer.use_text(format!("Order {order}"), 9.0, Mm(15.0), Mm(274.0), &font);
    let rows = tickets.len().div_ceil(COLUMNS);
    let cell_w = 180.0 / COLUMNS as f32;
    let cell_h = (255.0 / rows as f32).min(80.0);
    let text_h = 16.0;
    let qr_side = (cell_h - text_h - 4.0).min(cell_w - 8.0).max(20.0);
    for (i, (ticket, payload)) in tickets.iter().enumerate() {
        let (col, row) = (i % COLUMNS, i / COLUMNS);
        let left = 15.0 + col as f32 * cell_w;
        let top = 268.0 - row as f32 * cell_h;
        let code = qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M)?;
        draw_qr(&layer, &code, (left, top), qr_side);
        let text_top = top - qr_side - 4.0;
        layer.use_text(
            format!("Seat {}", ticket.seat_id),
            11.0,
            Mm(left),
            Mm(text_top),
            &bold,
        );
        layer.use_text(
            ticket.event_id.as_str(),
            8.0,
            Mm(left),
            Mm(text_top - 4.5),
            &font,
        );
        layer.use_text(
            ticket.holder.as_str(),
            8.0,
            Mm(left),
            Mm(text_top - 8.5),
            &font,
        );
        layer.use_text(
            ticket.ticket_id.to_string(),
            6.0,
            Mm(left),
            Mm(text_top - 12.0),
            &font,
        );
    }
    Ok(doc.save_to_bytes()?)
}

/// Draws `code` as filled rectangles, a run of dark modules each, in a `side` mm square whose
/// top left corner is `(left, top)` mm.
fn draw_qr(
    layer: &printpdf::PdfLayerReference,
    code: &qrcode::QrCode,
    (left, top): (f32, f32),
    side: f32,
) {
    use printpdf::{Mm, Rect};
    let width = code.width();
    let colors = code.to_colors();
    // Four modules of quiet zone on each side, as the standard asks.
    let module = side / (width + 8) as f32;
    let origin_x = left + 4.0 * module;
    let origin_top = top - 4.0 * module;
    for y in 0..width {
        let mut x = 0;
        while x < width {
            if colors[y * width + x] != qrcode::Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && colors[y * width + x] == qrcode::Color::Dark {
                x += 1;
            }
            let lower = origin_top - (y + 1) as f32 * module;
            layer.add_rect(Rect::new(
                Mm(origin_x + start as f32 * module),
                Mm(lower),
                Mm(origin_x + x as f32 * module),
                Mm(lower + module),
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_of_many_tickets_fits_one_page() {
        let keys = orders::tickets::TicketKeys::new(&[7u8; 32], "k1").expect("keys");
        let tickets: Vec<Ticket> = (0..12)
            .map(|i| Ticket {
                ticket_id: Uuid::from_u128(i),
                order_id: Uuid::from_u128(99),
                event_id: "evt-2026-final".into(),
                seat_id: format!("orch-A-{i}"),
                holder: "alice".into(),
                issued_at: chrono::DateTime::UNIX_EPOCH,
                status: TicketStatus::Valid,
                checked_in_at: None,
                replaced_by: None,
            })
            .collect();
        let printable: Vec<(&Ticket, String)> = tickets
            .iter()
            .map(|t| {
                (
                    t,
                    keys.payload(t.ticket_id, &t.event_id, &t.seat_id, &t.holder),
                )
            })
            .collect();
        let pdf = order_pdf(Uuid::from_u128(99), &printable).expect("drawn");
        assert!(pdf.starts_with(b"%PDF-"));
        // Page objects are "/Type /Page" (the page tree is "/Type /Pages").
        let text = String::from_utf8_lossy(&pdf).replace("/Type/", "/Type /");
        let pages = text
            .match_indices("/Type /Page")
            .filter(|(at, m)| !text[at + m.len()..].starts_with('s'))
            .count();
        assert_eq!(pages, 1, "one page");
        assert!(pdf.len() < 2_000_000, "{} bytes", pdf.len());
    }
}
