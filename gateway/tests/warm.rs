//! A sale about to open has its venue loaded before its first buyer arrives: the first requests
//! of a sale would otherwise all wait for the venue's first read (a 50,000-seat stadium took
//! 240-280 ms on the benchmark machine, and the holds queued behind it were shed).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use test_support::stack as harness;

use harness::*;

/// A venue with one event whose sale opens `opens_in` from now, in `status`.
async fn venue_with_event(
    db: &db::TestDb,
    name: &str,
    opens_in: chrono::Duration,
    status: &str,
) -> String {
    let (event, venue) = theatre_event(db, name, Vec::new(), opens_in).await;
    sqlx::query("UPDATE events SET status = $2::event_status WHERE id = $1")
        .bind(event.as_str())
        .bind(status)
        .execute(&db.pool)
        .await
        .unwrap();
    venue
}

#[tokio::test]
async fn the_venue_of_a_sale_about_to_open_is_loaded_before_anyone_asks() {
    let db = db::TestDb::new("warm").await;
    // Scheduled sales are on sale before they open (holds wait for `sale_opens_at`); drafts
    // are opened by their organizer.
    let soon = venue_with_event(&db, "soon", chrono::Duration::minutes(5), "on_sale").await;
    let draft = venue_with_event(&db, "draft", chrono::Duration::minutes(5), "draft").await;
    let later = venue_with_event(&db, "later", chrono::Duration::days(2), "on_sale").await;
    let ended = venue_with_event(&db, "ended", -chrono::Duration::days(2), "ended").await;
    let gw = gateway_on(&db).await;
    // Nobody has asked the gateway anything about either event.
    let deadline = tokio::time::Instant::now() + gateway::cache::WARM_EVERY * 3;
    while !(gw.app.caches.has_venue(&soon) && gw.app.caches.has_venue(&draft)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the venue of a sale opening in 5 minutes was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A whole pass more, so nothing is still loading: a sale two days away waits for its own
    // time (its venue may never be needed here), and an ended one is not loaded at all.
    gw.app.caches.warm(&gw.app).await.unwrap();
    assert!(!gw.app.caches.has_venue(&later));
    assert!(!gw.app.caches.has_venue(&ended));
    db.drop().await;
}
