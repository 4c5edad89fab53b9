//! Refunding an order: the provider gives the money back first (idempotently), then Postgres
//! marks the order refunded and its sales no longer live (so the seats can be sold again) and
//! records the change in the audit log, then Redis returns the seats to sale. A crash between
//! steps is completed by calling again (an admin retrying, or reconciliation seeing the payment
//! refunded at the provider).

use coordinator::{EventId, HoldId, SeatId};
use payments::RefundOutcome;
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
    }
    tx.commit().await?;
    // Redis follows Postgres (also on a repeated call: it completes a refund a crash cut short).
    if let (Ok(event_id), Ok(hold_id)) = (EventId::parse(&event), HoldId::parse(&hold)) {
        let seat_ids: Vec<SeatId> = seats.iter().filter_map(|s| SeatId::parse(s).ok()).collect();
        svc.coordinator
            .unsell(&event_id, &hold_id, &seat_ids)
            .await?;
        if let Ok(user) = coordinator::UserId::parse(&user) {
            svc.coordinator
                .release_quota(&event_id, &user, &hold_id)
                .await?;
        }
    }
    Ok(if first_time {
        RefundResult::Refunded { seats }
    } else {
        RefundResult::AlreadyRefunded
    })
}
