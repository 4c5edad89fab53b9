//! The catalog against a real Postgres: each test gets a database of its own, dropped after.
#![allow(clippy::unwrap_used)]

use test_support::db;

use std::collections::BTreeMap;

use catalog::events::{
    self, EventDraft, EventFilter, EventOutcome, EventStatus, StatusOutcome, Transition,
};
use catalog::seatmap;
use catalog::venues::{self, VenueOutcome};
use chrono::{Duration, Utc};

fn draft(id: &str, venue: &str, days: i64, prices: &[(&str, i64)]) -> EventDraft {
    EventDraft {
        id: id.into(),
        venue_id: venue.into(),
        title: format!("Show {id}"),
        category: "concert".into(),
        starts_at: Utc::now() + Duration::days(days),
        sale_opens_at: Utc::now() - Duration::minutes(5),
        prices: prices.iter().map(|(c, p)| ((*c).to_owned(), *p)).collect(),
        currency: "USD".into(),
    }
}

const THEATRE_PRICES: &[(&str, i64)] =
    &[("premium", 12_000), ("standard", 8_000), ("economy", 4_500)];

#[tokio::test]
async fn migrations_apply_and_constraints_hold() {
    let test_db = db::TestDb::new("catalog").await;
    let pool = test_db.pool.clone();
    catalog::migrate(&pool).await.unwrap(); // a second run is a no-op

    let map = seatmap::demo_theatre();
    assert_eq!(
        venues::create_venue(&pool, &map).await.unwrap(),
        VenueOutcome::Created { seats: 2_000 }
    );
    assert_eq!(
        venues::create_venue(&pool, &map).await.unwrap(),
        VenueOutcome::AlreadyExists
    );
    // The stored map reads back as imported (rows front to back).
    assert_eq!(
        venues::seat_map(&pool, "demo-theatre")
            .await
            .unwrap()
            .unwrap(),
        {
            let mut m = map.clone();
            m.categories.sort_by(|a, b| a.id.cmp(&b.id));
            m
        }
    );

    // The schema, not only the code, refuses bad rows; each violation names its constraint.
    let violations = [
        (
            "INSERT INTO venues (id, name) VALUES ('bad id', 'x')",
            "venues_id_format",
        ),
        (
            "INSERT INTO events (id, venue_id, title, category, starts_at, sale_opens_at)
             VALUES ('e2', 'demo-theatre', 't', 'c', now(), now() + interval '1 day')",
            "events_sale_before_start",
        ),
        (
            "INSERT INTO seats (venue_id, id, section_id, row_label, number, x, y, category)
             VALUES ('demo-theatre', 'orch-A-1', 'orch', 'Z', 99, 0, 0, 'premium')",
            "seats_pkey",
        ),
        (
            "INSERT INTO seats (venue_id, id, section_id, row_label, number, x, y, category)
             VALUES ('demo-theatre', 'new-seat', 'orch', 'A', 1, 0, 0, 'premium')",
            "seats_row_place_unique",
        ),
        (
            "INSERT INTO seats (venue_id, id, section_id, row_label, number, x, y, category)
             VALUES ('demo-theatre', 'new-seat', 'orch', 'ZZ', 1, 0, 0, 'vip')",
            "seats_category_fkey",
        ),
    ];
    for (sql, constraint) in violations {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert_eq!(
            err.as_database_error().unwrap().constraint(),
            Some(constraint),
            "{sql}"
        );
    }
    test_db.drop().await;
}

#[tokio::test]
async fn events_prices_status_and_search() {
    let test_db = db::TestDb::new("events").await;
    let pool = test_db.pool.clone();
    venues::create_venue(&pool, &seatmap::demo_theatre())
        .await
        .unwrap();

    // Every category must be priced; unknown categories and negative prices are named.
    match events::create_event(
        &pool,
        &draft("e1", "demo-theatre", 3, &[("premium", 1), ("vip", -5)]),
        None,
    )
    .await
    .unwrap()
    {
        EventOutcome::Invalid(p) => {
            let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
            assert!(
                paths.contains(&"prices.vip") && paths.contains(&"prices.standard"),
                "{paths:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events::create_event(&pool, &draft("e1", "nowhere", 3, THEATRE_PRICES), None)
            .await
            .unwrap(),
        EventOutcome::NotFound
    );
    let EventOutcome::Done(e1) =
        events::create_event(&pool, &draft("e1", "demo-theatre", 3, THEATRE_PRICES), None)
            .await
            .unwrap()
    else {
        panic!()
    };
    assert_eq!((e1.status, e1.prices.len()), (EventStatus::Draft, 3));
    assert_eq!(
        events::create_event(&pool, &draft("e1", "demo-theatre", 3, THEATRE_PRICES), None)
            .await
            .unwrap(),
        EventOutcome::AlreadyExists
    );

    // Price change.
    let new_prices: BTreeMap<String, i64> = [("economy".to_owned(), 5_000)].into();
    let EventOutcome::Done(e1) = events::set_prices(&pool, "e1", &new_prices).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        e1.prices
            .iter()
            .find(|p| p.category == "economy")
            .unwrap()
            .amount_cents,
        5_000
    );

    // Status life cycle.
    assert_eq!(
        events::set_status(&pool, "e1", Transition::Freeze)
            .await
            .unwrap(),
        StatusOutcome::NotAllowed(EventStatus::Draft)
    );
    for (t, want) in [
        (Transition::Open, EventStatus::OnSale),
        (Transition::Freeze, EventStatus::Frozen),
        (Transition::Unfreeze, EventStatus::OnSale),
    ] {
        match events::set_status(&pool, "e1", t).await.unwrap() {
            StatusOutcome::Changed(e) => assert_eq!(e.status, want),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        events::set_status(&pool, "nope", Transition::Open)
            .await
            .unwrap(),
        StatusOutcome::NotFound
    );

    // Search: drafts hidden, keyset pages, filters.
    for (id, days) in [("e2", 1), ("e3", 2), ("e4", 4)] {
        events::create_event(
            &pool,
            &draft(id, "demo-theatre", days, THEATRE_PRICES),
            None,
        )
        .await
        .unwrap();
        events::set_status(&pool, id, Transition::Open)
            .await
            .unwrap();
    }
    events::create_event(
        &pool,
        &draft("hidden-draft", "demo-theatre", 1, THEATRE_PRICES),
        None,
    )
    .await
    .unwrap();
    let mut filter = EventFilter {
        limit: 2,
        ..EventFilter::default()
    };
    let page1 = events::list_events(&pool, &filter).await.unwrap();
    assert_eq!(
        page1
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["e2", "e3"]
    );
    filter.after = page1.next.clone();
    let page2 = events::list_events(&pool, &filter).await.unwrap();
    assert_eq!(
        page2
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["e1", "e4"]
    );
    assert_eq!(page2.next, None);
    let found = events::list_events(
        &pool,
        &EventFilter {
            q: Some("SHOW E3".into()),
            limit: 10,
            ..EventFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(found.events.len(), 1);
    let window = EventFilter {
        from: Some(Utc::now() + Duration::hours(36)),
        to: Some(Utc::now() + Duration::hours(84)),
        limit: 10,
        ..EventFilter::default()
    };
    assert_eq!(
        events::list_events(&pool, &window)
            .await
            .unwrap()
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["e3", "e1"]
    );
    test_db.drop().await;
}

/// The last guard against overselling: Postgres refuses a second live sale of a seat, whatever
/// the code above it does, and lets a refunded seat be sold again.
#[tokio::test]
async fn postgres_refuses_a_second_live_sale_of_a_seat() {
    let test_db = db::TestDb::new("oversell").await;
    let pool = test_db.pool.clone();
    venues::create_venue(&pool, &seatmap::demo_theatre())
        .await
        .unwrap();
    events::create_event(&pool, &draft("e1", "demo-theatre", 3, THEATRE_PRICES), None)
        .await
        .unwrap();
    let order = |id: &str, hold: &str, payment: &str| {
        sqlx::query(
            "INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key)
             VALUES ($1::uuid, 'e1', $2::uuid, 'u', 'paid', 100, 'USD', $3, 'k')",
        )
        .bind(id.to_owned())
        .bind(hold.to_owned())
        .bind(payment.to_owned())
    };
    let sell = |order_id: &str, seat: &str| {
        sqlx::query(
            "INSERT INTO sold_seats (order_id, event_id, seat_id) VALUES ($1::uuid, 'e1', $2)",
        )
        .bind(order_id.to_owned())
        .bind(seat.to_owned())
    };
    let (o1, o2, o3) = (
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
        "00000000-0000-0000-0000-000000000003",
    );
    order(o1, "10000000-0000-0000-0000-000000000001", "pi_1")
        .execute(&pool)
        .await
        .unwrap();
    sell(o1, "orch-A-1").execute(&pool).await.unwrap();

    // A second order for the same seat: refused by the partial unique index.
    order(o2, "10000000-0000-0000-0000-000000000002", "pi_2")
        .execute(&pool)
        .await
        .unwrap();
    let err = sell(o2, "orch-A-1").execute(&pool).await.unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("sold_seats_live_unique")
    );
    // The same hold or the same payment cannot make a second order either.
    let err = order(o3, "10000000-0000-0000-0000-000000000001", "pi_3")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("orders_hold_unique")
    );
    let err = order(o3, "10000000-0000-0000-0000-000000000003", "pi_1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().constraint(),
        Some("orders_payment_ref_unique")
    );

    // Refunded: the sale is no longer live and the seat can be sold again.
    sqlx::query("UPDATE sold_seats SET live = false WHERE order_id = $1::uuid")
        .bind(o1)
        .execute(&pool)
        .await
        .unwrap();
    sell(o2, "orch-A-1").execute(&pool).await.unwrap();
    let (live,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sold_seats WHERE seat_id = 'orch-A-1' AND live")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(live, 1);
    test_db.drop().await;
}

/// A rollout: the new release migrated the schema; an old gateway (which knows fewer migrations)
/// restarts against it and must start. Simulated by a migration the binary does not know.
#[tokio::test]
async fn a_binary_older_than_the_schema_still_starts() {
    let db = db::TestDb::new("rollout").await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer release', true, '\\x00', 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    catalog::migrate(&db.pool).await.unwrap();
    // A migration it does know, changed since it was applied, is still refused.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = (SELECT min(version) FROM _sqlx_migrations)")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(catalog::migrate(&db.pool).await.is_err());
    db.drop().await;
}
