//! The sandbox's webhook deliveries against a real (slow) receiver and a real Postgres ledger.
#![allow(clippy::unwrap_used)]

#[path = "../../catalog/tests/db/mod.rs"]
mod db;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use payments::sandbox::{Sandbox, SandboxConfig, WebhookTarget, MAX_DELIVERIES};
use payments::{ChargeOutcome, ChargeRequest};
use warp::Filter;

#[tokio::test]
async fn a_burst_of_payments_is_notified_through_a_bounded_number_of_connections() {
    let db = db::TestDb::new("deliveries").await;
    // A receiver that takes 50 ms per webhook and counts how many it is handling at once.
    let (live, peak, delivered) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let receiver = warp::post().and(warp::body::bytes()).then({
        let (live, peak, delivered) = (live.clone(), peak.clone(), delivered.clone());
        move |_body: warp::hyper::body::Bytes| {
            let (live, peak, delivered) = (live.clone(), peak.clone(), delivered.clone());
            async move {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                live.fetch_sub(1, Ordering::SeqCst);
                delivered.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }
    });
    let (addr, server) = warp::serve(receiver).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    let sandbox = Arc::new(Sandbox::new(
        db.pool.clone(),
        SandboxConfig {
            webhook: Some(WebhookTarget {
                url: format!("http://{addr}/webhooks/payments"),
                secret: "whsec_test".into(),
            }),
            ..SandboxConfig::default()
        },
    ));

    // Four times as many payments at once as deliveries may be in flight.
    let payments = 4 * MAX_DELIVERIES;
    let mut charges = tokio::task::JoinSet::new();
    for i in 0..payments {
        let sandbox = sandbox.clone();
        charges.spawn(async move {
            let request = ChargeRequest {
                idempotency_key: format!("burst-{i}"),
                amount_cents: 1_000,
                currency: "EUR".into(),
                token: "tok_visa".into(),
                metadata: BTreeMap::new(),
            };
            sandbox.charge(&request).await.unwrap()
        });
    }
    while let Some(outcome) = charges.join_next().await {
        assert!(matches!(outcome.unwrap(), ChargeOutcome::Succeeded { .. }));
    }
    let until = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::SeqCst) < payments {
        assert!(
            Instant::now() < until,
            "{} of {payments} webhooks delivered in 30 s",
            delivered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every payment is told, never by more deliveries at once than the bound (before the bound,
    // each payment had its own connection open at the same time).
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        (2..=MAX_DELIVERIES).contains(&peak),
        "{peak} webhooks in flight at once (bound {MAX_DELIVERIES})"
    );
    db.drop().await;
}
