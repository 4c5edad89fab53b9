//! The migrations against a real Postgres: each test gets a database of its own, dropped after.
#![allow(clippy::unwrap_used)]

use sqlx::{Connection, Executor, PgConnection, PgPool};

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn fresh_database() -> (PgPool, String) {
    let name = format!("seats_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server_url()).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = match server_url().rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => unreachable!(),
    };
    (PgPool::connect(&url).await.unwrap(), name)
}

async fn drop_database(pool: PgPool, name: &str) {
    pool.close().await;
    let mut admin = PgConnection::connect(&server_url()).await.unwrap();
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[tokio::test]
async fn migrations_apply_and_constraints_hold() {
    let (pool, name) = fresh_database().await;
    catalog::migrate(&pool).await.unwrap();
    catalog::migrate(&pool).await.unwrap(); // idempotent

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
    drop_database(pool, &name).await;
}
