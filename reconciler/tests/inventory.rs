//! The reconciler refills Redis from the catalog when Redis lost an event's inventory.
#![allow(clippy::unwrap_used)]

#[path = "../../coordinator/tests/support/mod.rs"]
mod support;

use coordinator::{keys, SectionId};
use fred::prelude::*;

#[path = "../../catalog/tests/db/mod.rs"]
mod db;

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
