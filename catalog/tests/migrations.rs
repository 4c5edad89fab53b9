//! The migrations against a real Postgres: each test gets a database of its own, dropped after.
#![allow(clippy::unwrap_used)]

mod db;

#[tokio::test]
async fn migrations_apply_and_constraints_hold() {
    let test_db = db::TestDb::new("catalog").await;
    let pool = test_db.pool.clone();
    catalog::migrate(&pool).await.unwrap(); // a second run is a no-op

    catalog::upsert_venue(&pool, "demo", "Demo Theatre", &catalog::demo_theatre())
        .await
        .unwrap();
    catalog::upsert_venue(&pool, "demo", "Demo Theatre", &catalog::demo_theatre())
        .await
        .unwrap();
    let (seats,): (i64,) = sqlx::query_as("SELECT count(*) FROM seats")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seats, 2_000);

    let starts = chrono::Utc::now() + chrono::Duration::days(30);
    catalog::upsert_event_on_sale(&pool, "demo-show", "demo", "Demo", starts)
        .await
        .unwrap();
    let event = coordinator::EventId::parse("demo-show").unwrap();
    let inv = catalog::inventory(&pool, &event).await.unwrap();
    assert_eq!(inv.len(), 3);
    assert_eq!(inv.iter().map(|s| s.seats.len()).sum::<usize>(), 2_000);
    assert_eq!(catalog::events_on_sale(&pool).await.unwrap(), vec![event]);

    // The schema, not only the code, refuses bad rows; each violation names its constraint.
    let violations = [
        (
            "INSERT INTO venues (id, name) VALUES ('bad id', 'x')",
            "venues_id_format",
        ),
        (
            "INSERT INTO events (id, venue_id, title, category, starts_at, sale_opens_at)
             VALUES ('e2', 'demo', 't', 'c', now(), now() + interval '1 day')",
            "events_sale_before_start",
        ),
        (
            "INSERT INTO seats (venue_id, id, section_id, row_label, number, x, y, category)
             VALUES ('demo', 'orch-A-1', 'orch', 'Z', 99, 0, 0, 'p')",
            "seats_pkey",
        ),
        (
            "INSERT INTO seats (venue_id, id, section_id, row_label, number, x, y, category)
             VALUES ('demo', 'new-seat', 'orch', 'A', 1, 0, 0, 'p')",
            "seats_row_place_unique",
        ),
    ];
    for (sql, constraint) in violations {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        let db = err.as_database_error().unwrap();
        assert_eq!(db.constraint(), Some(constraint), "{sql}");
    }
    test_db.drop().await;
}
