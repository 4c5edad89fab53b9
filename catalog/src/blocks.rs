//! The organizer's blocks as Postgres keeps them (`seat_blocks`): Redis has the live ones; this
//! copy is what a section lost from Redis is rebuilt with ([`crate::inventory`]).

use coordinator::{EventId, SeatId};
use sqlx::{Postgres, Transaction};

use crate::CatalogError;

/// Records blocks of `seats` with `tag` (a seat already blocked keeps its first tag, as Redis
/// does). Inside the caller's transaction, committed only if Redis blocked the seats.
pub async fn keep(
    tx: &mut Transaction<'_, Postgres>,
    event: &EventId,
    seats: &[SeatId],
    tag: &str,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO seat_blocks (event_id, seat_id, tag)
         SELECT $1, s, $3 FROM UNNEST($2::text[]) AS s
         ON CONFLICT (event_id, seat_id) DO NOTHING",
    )
    .bind(event.as_str())
    .bind(seats.iter().map(ToString::to_string).collect::<Vec<_>>())
    .bind(tag)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets blocks of `seats`, inside the caller's transaction.
pub async fn forget(
    tx: &mut Transaction<'_, Postgres>,
    event: &EventId,
    seats: &[SeatId],
) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM seat_blocks WHERE event_id = $1 AND seat_id = ANY($2)")
        .bind(event.as_str())
        .bind(seats.iter().map(ToString::to_string).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
