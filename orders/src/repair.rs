//! Sales Redis lost, told again: the reconciler's repair of Redis's sold marks (and the buyers'
//! ticket counts, soft state too) from Postgres's live sales. The SQL on `orders` lives here,
//! with the rest of the orders crate's; the reconciler decides when to run it.

use std::time::Duration;

use coordinator::{Coordinator, EventId, HoldId, SeatId};
use sqlx::PgPool;

use crate::refund::{untell_unpaid, ToldSale};
use crate::OrdersError;

/// Tells Redis again about live sales (of one event, or of orders younger than `within`): a sale
/// Postgres has and Redis lacks is marked sold, and its seats are counted again against the
/// buyer's ticket limit (that count is soft state too: without this, a failover that lost it
/// would let the buyer go over the limit). The orders are read again afterwards: one refunded
/// while the pass told Redis of it gets its seats back. Returns the seats that changed in Redis.
pub async fn repair_sales(
    db: &PgPool,
    coordinator: &Coordinator,
    event: Option<&EventId>,
    within: Option<Duration>,
) -> Result<Repaired, OrdersError> {
    let rows: Vec<(uuid::Uuid, String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT o.id, o.event_id, o.hold_id::text, o.user_id, array_agg(s.seat_id ORDER BY s.seat_id)
         FROM orders o JOIN sold_seats s ON s.order_id = o.id
         WHERE o.status = 'paid' AND s.live
           AND o.event_id IN (SELECT id FROM events WHERE status IN ('on_sale', 'frozen'))
           AND ($1::text IS NULL OR o.event_id = $1)
           AND ($2::double precision IS NULL OR o.created_at > now() - make_interval(secs => $2))
         GROUP BY o.id, o.event_id, o.hold_id, o.user_id",
    )
    .bind(event.map(|e| e.to_string()))
    .bind(within.map(|w| w.as_secs_f64()))
    .fetch_all(db)
    .await?;
    let mut changed = 0;
    let told = rows.len() as u64;
    let mut sales = Vec::with_capacity(rows.len());
    for (order, event, hold, user, seats) in rows {
        let (Ok(event), Ok(hold), Ok(user)) = (
            EventId::parse(&event),
            HoldId::parse(&hold),
            coordinator::UserId::parse(&user),
        ) else {
            continue;
        };
        let seats: Vec<SeatId> = seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
        match coordinator
            .repair_sale(&event, &hold, Some(&user), &seats)
            .await?
        {
            coordinator::sell::SellOutcome::Sold { newly_sold } => changed += newly_sold,
            other => {
                tracing::error!(%event, %hold, ?other, "a live sale Redis refuses to mark sold")
            }
        }
        sales.push(ToldSale {
            order,
            event,
            hold,
            user: Some(user),
            seats,
        });
    }
    // A refund that committed after the read above may have returned its seats before they were
    // told sold here: read again, and return them again.
    untell_unpaid(db, coordinator, &sales, "system:reconciler").await?;
    Ok(Repaired { told, changed })
}

/// What [`repair_sales`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Repaired {
    /// Paid orders whose sale Redis was told again.
    pub told: u64,
    /// Seats Redis lacked (marked sold by this repair).
    pub changed: u64,
}
