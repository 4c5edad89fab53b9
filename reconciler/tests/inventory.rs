//! The reconciler refills Redis from the catalog when Redis lost an event's inventory.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use coordinator::{keys, SectionId};
use fred::prelude::*;

use test_support::db;

/// A paid order of `hold` for `seat`, written to Postgres only, `days_ago` old.
async fn paid_order(
    db: &sqlx::PgPool,
    event: &coordinator::EventId,
    buyer: &coordinator::UserId,
    hold: &coordinator::HoldId,
    seat: &str,
    days_ago: i32,
) {
    let order = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key, created_at)
         VALUES ($1, $2, $3::uuid, $4, 'paid', 100, 'USD', $5, 'k', now() - make_interval(days => $6))",
    )
    .bind(order)
    .bind(event.as_str())
    .bind(hold.to_string())
    .bind(buyer.as_str())
    .bind(format!("pi_{order}"))
    .bind(days_ago)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sold_seats (order_id, event_id, seat_id, sold_at)
         VALUES ($1, $2, $3, now() - make_interval(days => $4))",
    )
    .bind(order)
    .bind(event.as_str())
    .bind(seat)
    .bind(days_ago)
    .execute(db)
    .await
    .unwrap();
}

#[tokio::test]
async fn lost_inventory_is_reloaded_from_the_catalog() {
    let test_db = db::TestDb::new("rc").await;
    let db = test_db.pool.clone();

    let c = support::shared().await;
    let metrics = reconciler::Metrics::new().unwrap();
    let counts = catalog::SectionCounts::default();
    let event = support::unique_event("rc");
    // On sale in Postgres only: Redis has never heard of it.
    catalog::create_demo_event(&db, &event).await.unwrap();
    catalog::events::set_status(&db, event.as_str(), catalog::events::Transition::Open)
        .await
        .unwrap();

    // First pass opens the event; a second finds nothing to do.
    let first = reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert_eq!(
        first,
        reconciler::PassReport {
            events: 1,
            seats_reopened: 2_000
        }
    );
    // ... and sends nothing: a complete inventory is recognised by its counts.
    let opens = || {
        coordinator::scripts::script_metrics()
            .with_label_values(&["open_layout", "ok"])
            .get_sample_count()
    };
    let sent = opens();
    let second = reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert_eq!(second.seats_reopened, 0);
    assert_eq!(opens(), sent, "the inventory was sent again");
    // The venue's counts were read once, by the first pass, and kept (a venue never changes).
    let kept = counts.of_venue(&db, "demo-theatre").await.unwrap();
    assert_eq!(kept.iter().map(|(_, n)| n).sum::<u64>(), 2_000);
    let again = counts.of_venue(&db, "demo-theatre").await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&kept, &again), "counted again");

    // Redis loses one section's inventory (as after a failover that dropped unreplicated writes).
    let k = keys::section(&event, &SectionId::parse("mezz").unwrap());
    let _: i64 = c.redis().next().del(k.inv.clone()).await.unwrap();
    let a = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(a.len(), 2, "the section is gone from Redis");
    let third = reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert_eq!(third.seats_reopened, 500);
    let a = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(a.iter().map(|s| s.capacity).sum::<u64>(), 2_000);
    assert!(metrics
        .render()
        .contains("reconciler_seats_reopened_total{reason=\"missing_in_redis\"} 2500"));

    test_db.drop().await;
}

/// A section Redis lost comes back with its sales in the same step as its seats: no hold and
/// no commit ever sees a seat Postgres sold as free (once, reopened seats were free until a later
/// pass re-marked the sales, and a commit in between was refunded as an oversell and froze the
/// event).
#[tokio::test]
async fn a_lost_section_comes_back_with_its_sales_before_any_hold_sees_it() {
    use coordinator::hold::{HoldOutcome, HoldRequest};
    use coordinator::{ClientReservationId, HoldId, SeatId, SeatState, UserId};

    let test_db = db::TestDb::new("rebuild").await;
    let db = test_db.pool.clone();
    let c = support::shared().await;
    let counts = catalog::SectionCounts::default();
    let event = support::unique_event("rebuild");
    catalog::load_demo(&db, &c, &event).await.unwrap();
    let section = SectionId::parse("mezz").unwrap();
    let seat = catalog::seatmap::demo_theatre()
        .seats()
        .find(|(s, _, _)| s.id == "mezz")
        .map(|(_, _, s)| s.id.clone())
        .unwrap();
    // A paid order for the seat, in Postgres (the durable truth).
    let buyer = UserId::parse("paid-buyer").unwrap();
    let hold = HoldId::derive(
        &event,
        &buyer,
        &ClientReservationId::parse("bought").unwrap(),
    );
    paid_order(&db, &event, &buyer, &hold, &seat, 0).await;
    // And a block of the organizer's, kept in Postgres as the gateway keeps it.
    let press = SeatId::parse("mezz-A-5").unwrap();
    let mut tx = db.begin().await.unwrap();
    catalog::blocks::keep(&mut tx, &event, std::slice::from_ref(&press), "press")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    c.block(&event, std::slice::from_ref(&press), "press")
        .await
        .unwrap();
    // Redis loses the section whole (its keys share a slot).
    let k = keys::section(&event, &section);
    let _: i64 = c
        .redis()
        .next()
        .del(vec![
            k.inv.clone(),
            k.held,
            k.holder,
            k.sold,
            k.blocked,
            k.ver,
            k.audit.clone(),
        ])
        .await
        .unwrap();
    // The reopen alone (no repair pass after it) brings the sale back.
    catalog::ensure_in_coordinator(&db, &c, &event, &counts)
        .await
        .unwrap();
    let limits = c.limits().clone();
    let grab = HoldRequest::new(
        event.clone(),
        UserId::parse("latecomer").unwrap(),
        ClientReservationId::parse("grab").unwrap(),
        vec![SeatId::parse(&seat).unwrap()],
        None,
        &limits,
    )
    .unwrap();
    match c.hold(&grab).await.unwrap() {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Sold),
        other => panic!("a seat Postgres sold was holdable after the rebuild: {other:?}"),
    }
    let press_hold = HoldRequest::new(
        event.clone(),
        UserId::parse("latecomer").unwrap(),
        ClientReservationId::parse("press").unwrap(),
        vec![press.clone()],
        None,
        &limits,
    )
    .unwrap();
    match c.hold(&press_hold).await.unwrap() {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Blocked),
        other => panic!("a blocked seat was holdable after the rebuild: {other:?}"),
    }
    let trail = c.read_audit(&event, &section, "0-0", 100).await.unwrap();
    assert!(
        trail.iter().any(|e| e.action == "sold"
            && e.actor == "system:rebuild"
            && e.seats == [seat.clone()]),
        "{trail:?}"
    );
    test_db.drop().await;
}

/// Audit entries the stream's length cap dropped before they were copied leave a recorded gap
/// (a row in `audit_gaps` and a counted metric), never a trail that silently looks whole; the
/// copy goes on with what is left, and a gap is recorded once.
#[tokio::test]
async fn audit_entries_dropped_before_the_copy_are_recorded_as_a_gap() {
    use coordinator::block::BlockOutcome;
    use coordinator::SeatId;

    let test_db = db::TestDb::new("gap").await;
    let db = test_db.pool.clone();
    let c = support::shared().await;
    let metrics = reconciler::Metrics::new().unwrap();
    let copied = reconciler::audit::CopiedUpTo::default();
    let event = support::unique_event("gap");
    catalog::load_demo(&db, &c, &event).await.unwrap();
    let section = SectionId::parse("mezz").unwrap();
    let seats: Vec<SeatId> = catalog::seatmap::demo_theatre()
        .seats()
        .filter(|(s, _, _)| s.id == "mezz")
        .take(3)
        .map(|(_, _, s)| SeatId::parse(&s.id).unwrap())
        .collect();
    let copy = || reconciler::audit::copy_section(&db, &c, &metrics, &copied, &event, &section);
    let block = |seat: &SeatId| {
        let seat = seat.clone();
        let c = &c;
        let event = &event;
        async move {
            assert!(matches!(
                c.block(event, &[seat], "press").await.unwrap(),
                BlockOutcome::Blocked(_)
            ));
        }
    };
    block(&seats[0]).await;
    copy().await.unwrap();
    assert_eq!(
        metrics.audit_gaps_total.get(),
        0,
        "a whole trail has no gap"
    );
    // Two entries are written and then dropped by the cap before any copy; a third survives.
    block(&seats[1]).await;
    let k = keys::section(&event, &section);
    let _: i64 = c
        .redis()
        .next()
        .xtrim(k.audit.clone(), ("MAXLEN", 0))
        .await
        .unwrap();
    block(&seats[2]).await;
    copy().await.unwrap();
    assert_eq!(metrics.audit_gaps_total.get(), 1);
    let gaps: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_gaps")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(gaps, 1);
    let copied_seats: Vec<String> =
        sqlx::query_scalar("SELECT seat_id FROM seat_audit WHERE action = 'blocked' ORDER BY at")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        copied_seats,
        vec![seats[0].to_string(), seats[2].to_string()]
    );
    // Recorded once: the next copy finds no new gap.
    block(&seats[2]).await; // already blocked: no entry
    copy().await.unwrap();
    assert_eq!(metrics.audit_gaps_total.get(), 1);
    test_db.drop().await;
}

/// A sale Redis lacks is marked again whatever its age: the pass compares Redis's sold marks
/// per section with Postgres's live sales (once, only sales of the last few minutes were told
/// again, so an older sale lost from Redis stayed free for the next buyer, whose commit was
/// refunded as an oversell and froze the event).
#[tokio::test]
async fn an_old_sale_missing_from_redis_is_marked_again() {
    use coordinator::{ClientReservationId, HoldId, UserId};

    let test_db = db::TestDb::new("oldsale").await;
    let db = test_db.pool.clone();
    let c = support::shared().await;
    let metrics = reconciler::Metrics::new().unwrap();
    let counts = catalog::SectionCounts::default();
    let event = support::unique_event("oldsale");
    catalog::load_demo(&db, &c, &event).await.unwrap();
    let seat = "mezz-A-2";
    let buyer = UserId::parse("old-buyer").unwrap();
    let hold = HoldId::derive(&event, &buyer, &ClientReservationId::parse("old").unwrap());
    // A sale written just now and not yet marked in Redis is on its way there (the writer
    // marks it right after its commit): a pass leaves it to the writer.
    let fresh_buyer = UserId::parse("fresh-buyer").unwrap();
    let fresh_hold = HoldId::derive(
        &event,
        &fresh_buyer,
        &ClientReservationId::parse("new").unwrap(),
    );
    paid_order(&db, &event, &fresh_buyer, &fresh_hold, "mezz-A-3", 0).await;
    reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert!(metrics
        .render()
        .contains("reconciler_sales_repaired_total{reason=\"sold_missing_in_redis\"} 0"));
    // Sold two days ago, in Postgres; Redis never heard of it (or lost it).
    paid_order(&db, &event, &buyer, &hold, seat, 2).await;
    let sold_in_redis = || async {
        c.seat_states(&event)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .any(|s| s.sold.iter().any(|x| x.as_str() == seat))
    };
    assert!(
        !sold_in_redis().await,
        "the test starts with the sale missing from Redis"
    );
    reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert!(sold_in_redis().await, "an old sale was not marked again");
    assert!(metrics
        .render()
        .contains("reconciler_sales_repaired_total{reason=\"sold_missing_in_redis\"} 2"));
    // Counts equal now: the next pass tells nothing again.
    reconciler::reconcile_inventory(&db, &c, &metrics, &counts)
        .await
        .unwrap();
    assert!(metrics
        .render()
        .contains("reconciler_sales_repaired_total{reason=\"sold_missing_in_redis\"} 2"));
    test_db.drop().await;
}

/// After Redis lost data (its epoch changed), every live sale of the events on sale is told
/// again, whatever its age: a buyer's bought seats, which count against the ticket limit and
/// live on the buyer's slot, come back even for a sale days old (once, only the last minutes'
/// sales were told again, so an old buyer could pass the limit after a failover).
#[tokio::test]
async fn after_a_loss_every_sale_counts_again_against_its_buyer_whatever_its_age() {
    use coordinator::{ClientReservationId, HoldId, UserId};

    let test_db = db::TestDb::new("counts").await;
    let db = test_db.pool.clone();
    let c = support::shared().await;
    let event = support::unique_event("counts");
    catalog::load_demo(&db, &c, &event).await.unwrap();
    let buyer = UserId::parse("loyal").unwrap();
    let hold = HoldId::derive(
        &event,
        &buyer,
        &ClientReservationId::parse("long-ago").unwrap(),
    );
    paid_order(&db, &event, &buyer, &hold, "mezz-A-7", 2).await;
    let bought = keys::bought(&event, &buyer);
    let counted = || async {
        let n: i64 = c
            .redis()
            .next()
            .hexists(&bought, hold.to_string())
            .await
            .unwrap();
        n == 1
    };
    assert!(!counted().await, "Redis lost the buyer's count");
    // The recent window (what a pass with an unknown epoch tells) does not reach it...
    reconciler::repair_sales(&db, &c, None, Some(std::time::Duration::from_secs(600)))
        .await
        .unwrap();
    assert!(!counted().await);
    // ... what a changed epoch tells does.
    let repaired = reconciler::repair_sales(&db, &c, None, None).await.unwrap();
    assert!(repaired.told >= 1);
    assert!(counted().await, "the buyer's bought seat counts again");
    test_db.drop().await;
}
