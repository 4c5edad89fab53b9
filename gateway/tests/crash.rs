//! kill -9 of a gateway in the middle of a commit: the buyer was charged, no answer was given,
//! and no order was written. Afterwards reconciliation has written the order (the hold is still
//! pinned to that payment), a replay of the request returns it, the buyer was charged once, and
//! every captured payment has its order.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::time::{Duration, Instant};

use gateway::auth::Role;
use harness::{assert_books_balance, free_port, setup, token, Child};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_gateway_killed_in_the_middle_of_a_commit_loses_no_order_and_charges_once() {
    // An in-process gateway (with an in-process reconciler) places the hold and later replays.
    let (gw, db, event) = setup("gwcrash").await;
    let port = free_port();
    // The child's provider answers after 2 s: the charge is made at once, the answer comes late.
    let mut child = Child::start(
        env!("CARGO_BIN_EXE_gateway"),
        &db,
        &[
            ("SEATS_HTTP__ADDR", format!("127.0.0.1:{port}")),
            (
                "SEATS_HTTP__ADMIN_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("SEATS_PAYMENTS__SANDBOX_LATENCY_MS", "2000".into()),
        ],
        &format!("http://127.0.0.1:{port}/healthz"),
    )
    .await;
    let (s, hold) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "crash-1", "user_id": "alice",
            "seat_ids": ["orch-A-1", "orch-A-2"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    let body = json!({"idempotency_key": "crash-key", "payment_token": "tok_visa"});
    let request = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/reservations/{hold_id}/commit"
        ))
        .bearer_auth(token("alice", Role::Buyer))
        .json(&body)
        .send();
    let answer = tokio::spawn(request);
    // Wait until the provider has the charge, then kill the gateway before it answers.
    let until = Instant::now() + Duration::from_secs(10);
    while harness::sandbox(&gw)
        .payments_for_key(&format!("{hold_id}:crash-key"))
        .await
        .unwrap()
        == 0
    {
        assert!(
            Instant::now() < until,
            "the charge never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill();
    assert!(answer.await.unwrap().is_err(), "the buyer got no answer");
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0, "killed before any order was written");

    // Reconciliation finds the captured payment without an order and writes it.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE status = 'paid'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < until,
            "reconciliation did not write the order"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The buyer retries the same request elsewhere: the same order, one charge.
    let (s, v, _) = gw
        .call(
            reqwest::Method::POST,
            &format!("/reservations/{hold_id}/commit"),
            Some(&token("alice", Role::Buyer)),
            Some(body),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{v}"
    );
    assert_eq!(v["seats"], json!(["orch-A-1", "orch-A-2"]));
    assert_eq!(
        harness::sandbox(&gw)
            .payments_for_key(&format!("{hold_id}:crash-key"))
            .await
            .unwrap(),
        1
    );
    assert_books_balance(&gw, &db).await;
    db.drop().await;
}
