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
    let map =
        catalog::seatmap::demo_theatre_as(&format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    assert!(matches!(
        catalog::venues::create_venue(&db.pool, &map).await.unwrap(),
        catalog::venues::VenueOutcome::Created { .. }
    ));
    let draft = catalog::events::EventDraft {
        id: support::unique_event(name).to_string(),
        venue_id: map.venue.id.clone(),
        title: "Opening night".into(),
        category: "concert".into(),
        starts_at: chrono::Utc::now() + chrono::Duration::days(30),
        sale_opens_at: chrono::Utc::now() + opens_in,
        prices: [("premium", 12_000), ("standard", 8_000), ("economy", 4_500)]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
        currency: "USD".into(),
    };
    catalog::events::create_event(&db.pool, &draft, Some(catalog::DEMO_ORGANIZER))
        .await
        .unwrap();
    sqlx::query("UPDATE events SET status = $2::event_status WHERE id = $1")
        .bind(&draft.id)
        .bind(status)
        .execute(&db.pool)
        .await
        .unwrap();
    map.venue.id
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
