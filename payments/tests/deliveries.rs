//! The sandbox's webhook deliveries against a real (slow) receiver and a real Postgres ledger.
#![allow(clippy::unwrap_used)]

use test_support::db;

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

/// The chaos suite's webhook faults: with `webhook_copies` 2 every event arrives twice (the same
/// event id), and with `webhook_max_delay` the deliveries arrive in another order than the
/// payments were made. Off by default: one delivery each, in the order of the payments.
#[tokio::test]
async fn the_fault_knobs_deliver_every_event_twice_and_out_of_order() {
    let db = db::TestDb::new("deliveries_faults").await;
    // The receiver records (event id, payment id) in the order they arrive.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let receiver = warp::post().and(warp::body::json()).map({
        let seen = seen.clone();
        move |event: serde_json::Value| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            let pair = (text(&event["id"]), text(&event["data"]["object"]["id"]));
            seen.lock().unwrap().push(pair);
            "ok"
        }
    });
    let (addr, server) = warp::serve(receiver).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    let target = WebhookTarget {
        url: format!("http://{addr}/webhooks/payments"),
        secret: "whsec_test".into(),
    };
    // Charges 20 payments one after the other, 20 ms apart; their ids in the order made.
    async fn charge_all(sandbox: &Sandbox, prefix: &str) -> Vec<String> {
        let mut made = Vec::new();
        for i in 0..20 {
            let request = ChargeRequest {
                idempotency_key: format!("{prefix}-{i}"),
                amount_cents: 1_000,
                currency: "EUR".into(),
                token: "tok_visa".into(),
                metadata: BTreeMap::new(),
            };
            match sandbox.charge(&request).await.unwrap() {
                ChargeOutcome::Succeeded { payment_id } => made.push(payment_id),
                other => panic!("{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        made
    }
    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            let until = Instant::now() + Duration::from_secs(30);
            while seen.lock().unwrap().len() < n {
                assert!(Instant::now() < until, "{n} deliveries expected");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Time for a copy that should not exist to show up.
            tokio::time::sleep(Duration::from_millis(500)).await;
            std::mem::take(&mut *seen.lock().unwrap())
        }
    };
    // Per payment: its distinct event ids and its deliveries; and the payments in the order
    // their first delivery arrived.
    fn tally(arrived: &[(String, String)]) -> (BTreeMap<String, (usize, usize)>, Vec<String>) {
        let mut per_payment =
            BTreeMap::<String, (std::collections::BTreeSet<String>, usize)>::new();
        let mut order = Vec::new();
        for (event, payment) in arrived {
            let e = per_payment.entry(payment.clone()).or_default();
            if e.1 == 0 {
                order.push(payment.clone());
            }
            e.0.insert(event.clone());
            e.1 += 1;
        }
        let counts = per_payment
            .into_iter()
            .map(|(p, (events, n))| (p, (events.len(), n)))
            .collect();
        (counts, order)
    }

    let plain = Sandbox::new(
        db.pool.clone(),
        SandboxConfig {
            webhook: Some(target.clone()),
            ..SandboxConfig::default()
        },
    );
    let made = charge_all(&plain, "plain").await;
    let (counts, order) = tally(&wait_for(20).await);
    assert!(
        counts.values().all(|c| *c == (1, 1)),
        "by default one event, delivered once: {counts:?}"
    );
    assert_eq!(order, made, "by default in the order made");

    let faulty = Sandbox::new(
        db.pool.clone(),
        SandboxConfig {
            webhook: Some(target),
            webhook_copies: 2,
            webhook_max_delay: Duration::from_millis(1_000),
            ..SandboxConfig::default()
        },
    );
    let made = charge_all(&faulty, "faulty").await;
    let (counts, order) = tally(&wait_for(40).await);
    assert_eq!(counts.len(), 20);
    assert!(
        counts.values().all(|c| *c == (1, 2)),
        "one event per payment, delivered twice: {counts:?}"
    );
    // 20 deliveries spread over a second each, made 20 ms apart: in order only by a chance of
    // about 1 in 20! (the knob off, above, they are always in order).
    assert_ne!(order, made, "out of order");
    db.drop().await;
}
