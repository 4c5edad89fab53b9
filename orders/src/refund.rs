//! Refunding an order: the provider gives the money back first (idempotently), then Postgres
//! marks the order refunded, its sales no longer live (so the seats can be sold again) and its
//! tickets revoked, and records the change in the audit log, then Redis returns the seats to sale. A crash between
//! steps is completed by calling again (an admin retrying, or reconciliation seeing the payment
//! refunded at the provider).
//!
//! Whoever tells Redis of a sale (the durable writer, the reconciler's repair) read Postgres
//! first, so a refund can commit, and return the seats, between that read and the sale in Redis.
//! They read Postgres again afterwards ([`untell_unpaid`]): a sale told after its refund is taken
//! back then.

use coordinator::{Coordinator, EventId, HoldId, SeatId, UserId};
use payments::RefundOutcome;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{OrdersError, Services};

/// What a refund request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResult {
    /// Refunded now (or completed a refund begun before); these seats are for sale again.
    Refunded {
        /// The order's seats.
        seats: Vec<String>,
    },
    /// The order was already refunded: nothing changed.
    AlreadyRefunded,
    /// No such order.
    NotFound,
    /// The provider knows no captured payment for the order: nothing can be given back.
    NotCaptured,
}

/// Refunds an order in full and returns its seats to sale. `actor` goes into the audit log.
pub async fn refund_order(
    svc: &Services,
    order: Uuid,
    actor: &str,
) -> Result<RefundResult, OrdersError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT payment_ref FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(&svc.db)
        .await?;
    let Some((payment,)) = row else {
        return Ok(RefundResult::NotFound);
    };
    if svc.payments.refund(&payment).await? == RefundOutcome::NotCaptured {
        return Ok(RefundResult::NotCaptured);
    }
    complete_refund(svc, order, &payment, actor).await
}

/// The bookkeeping after the provider refunded `payment`: order refunded, sales not live, audit
/// rows, seats back on sale in Redis. Does nothing for an order not paid with `payment`.
pub async fn complete_refund(
    svc: &Services,
    order: Uuid,
    payment: &str,
    actor: &str,
) -> Result<RefundResult, OrdersError> {
    let mut tx = svc.db.begin().await?;
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT event_id, hold_id::text, status::text, user_id FROM orders
         WHERE id = $1 AND payment_ref = $2 FOR UPDATE",
    )
    .bind(order)
    .bind(payment)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((event, hold, status, user)) = row else {
        return Ok(RefundResult::NotFound);
    };
    let seats: Vec<String> = sqlx::query_as::<_, (String,)>(
        "SELECT seat_id FROM sold_seats WHERE order_id = $1 ORDER BY seat_id",
    )
    .bind(order)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(s,)| s)
    .collect();
    let first_time = status == "paid";
    if first_time {
        sqlx::query("UPDATE orders SET status = 'refunded', refunded_at = now() WHERE id = $1")
            .bind(order)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sold_seats SET live = false WHERE order_id = $1")
            .bind(order)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE commit_attempts SET status = 'refunded', updated_at = now() WHERE order_id = $1",
        )
        .bind(order)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO seat_audit (event_id, seat_id, action, at, actor, hold_id, order_id, source)
             SELECT $1, s, 'refunded', now(), $2, $3, $4, 'refund:' || $4::text FROM UNNEST($5::text[]) s
             ON CONFLICT (source, seat_id) DO NOTHING",
        )
        .bind(&event)
        .bind(actor)
        .bind(&hold)
        .bind(order)
        .bind(&seats)
        .execute(&mut *tx)
        .await?;
        // With the sale: a refunded seat's ticket never opens a gate.
        crate::tickets::revoke_order_in(&mut tx, order, actor).await?;
    }
    tx.commit().await?;
    // Redis follows Postgres (also on a repeated call: it completes a refund a crash cut short).
    if let (Ok(event_id), Ok(hold_id)) = (EventId::parse(&event), HoldId::parse(&hold)) {
        let seat_ids: Vec<SeatId> = seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
        let user = UserId::parse(&user).ok();
        return_seats(
            &svc.coordinator,
            &event_id,
            &hold_id,
            user.as_ref(),
            &seat_ids,
        )
        .await?;
    }
    Ok(if first_time {
        RefundResult::Refunded { seats }
    } else {
        RefundResult::AlreadyRefunded
    })
}

/// Redis's half of a refund: the seats sold to `hold` are for sale again and no longer count
/// against the buyer's ticket limit. Idempotent. Returns how many seats it freed.
async fn return_seats(
    coordinator: &Coordinator,
    event: &EventId,
    hold: &HoldId,
    user: Option<&UserId>,
    seats: &[SeatId],
) -> Result<u64, OrdersError> {
    let freed = coordinator.unsell(event, hold, seats).await?;
    if let Some(user) = user {
        coordinator.release_quota(event, user, hold).await?;
    }
    Ok(freed)
}

/// A sale Redis was just told (marked sold, counted), because Postgres said it was paid.
#[derive(Debug, Clone)]
pub struct ToldSale {
    /// Its order.
    pub order: Uuid,
    /// The event.
    pub event: EventId,
    /// The hold the seats were sold to.
    pub hold: HoldId,
    /// The buyer, whose ticket count the sale moved (`None`: an id the coordinator refuses).
    pub user: Option<UserId>,
    /// The seats told sold.
    pub seats: Vec<SeatId>,
}

/// Reads Postgres again after Redis was told `sales`: an order that is not paid any more was
/// refunded after it was read, and its refund may have returned the seats before Redis was told
/// of the sale. Its seats are returned again, and that return is audited (`actor`). Returns the
/// seats freed (0 when every refund came after the sale, as it nearly always does).
pub async fn untell_unpaid(
    db: &PgPool,
    coordinator: &Coordinator,
    sales: &[ToldSale],
    actor: &str,
) -> Result<u64, OrdersError> {
    if sales.is_empty() {
        return Ok(0);
    }
    let orders: Vec<Uuid> = sales.iter().map(|s| s.order).collect();
    // Planned each time: see the writer's note on `= ANY($1)` lookups.
    let unpaid: std::collections::HashSet<Uuid> = sqlx::query_as::<_, (Uuid,)>(
        "SELECT id FROM orders WHERE id = ANY($1) AND status <> 'paid'",
    )
    .bind(&orders)
    .persistent(false)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|(id,)| id)
    .collect();
    let mut freed_total = 0;
    for sale in sales.iter().filter(|s| unpaid.contains(&s.order)) {
        let freed = return_seats(
            coordinator,
            &sale.event,
            &sale.hold,
            sale.user.as_ref(),
            &sale.seats,
        )
        .await?;
        if freed == 0 {
            continue;
        }
        tracing::warn!(order = %sale.order, hold = %sale.hold, freed,
            "a sale told to Redis after its order was refunded; its seats are for sale again");
        // Redis audited the sale it was told; this says why the seats are free after it. Each
        // return is its own audit source: a sale may be told, and taken back, more than once.
        let seats: Vec<String> = sale.seats.iter().map(ToString::to_string).collect();
        sqlx::query(
            "INSERT INTO seat_audit (event_id, seat_id, action, at, actor, hold_id, order_id, source)
             SELECT $1, s, 'refunded', now(), $2, $3, $4, $5 FROM UNNEST($6::text[]) s
             ON CONFLICT (source, seat_id) DO NOTHING",
        )
        .bind(sale.event.as_str())
        .bind(actor)
        .bind(sale.hold.to_string())
        .bind(sale.order)
        .bind(format!("refund:{}:untold:{}", sale.order, Uuid::new_v4()))
        .bind(&seats)
        .execute(db)
        .await?;
        freed_total += freed;
    }
    Ok(freed_total)
}
