//! The commit protocol's holes (issue 17), one test each, over real HTTP against the real
//! cluster and Postgres: every captured payment ends as an order or a refund (reconciliation
//! pages through any volume and forgets no payment for its age; a webhook that arrives while its
//! commit is in flight is not lost); a refunded sale is never sold again in Redis; a pin never
//! keeps a hold past its cap; a declined commit never unpins a hold already sold; the writer
//! sells exactly the seats it records.
#![allow(clippy::unwrap_used)]

mod harness;

use coordinator::EventId;
use gateway::auth::Role;
use harness::{token, Gw};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn hold_seats(gw: &Gw, event: &EventId, user: &str, seats: &[&str], ttl: u64) -> String {
    let (s, v) = gw
        .hold(
            event,
            user,
            json!({"client_reservation_id": format!("c-{user}-{}", seats.join("-")),
                "user_id": user, "seat_ids": seats, "ttl_seconds": ttl}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["hold_id"].as_str().unwrap().to_owned()
}

async fn commit(gw: &Gw, user: &str, hold: &str, key: &str, token_: &str) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{hold}/commit"),
            Some(&token(user, Role::Buyer)),
            Some(json!({"idempotency_key": key, "payment_token": token_})),
        )
        .await;
    (s, v)
}

async fn reservation(gw: &Gw, user: &str, hold: &str) -> Value {
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/reservations/{hold}"),
            Some(&token(user, Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Hole 4: a declined commit unpinned the hold although another key's commit of it was already
/// paid in Postgres (its seats about to be marked sold).
#[tokio::test]
async fn a_declined_commit_leaves_a_hold_sold_in_postgres_pinned() {
    let (gw, db, event) = harness::setup_opts(
        "declpaid",
        harness::Opts {
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-G-5"], 300).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-paid", "tok_requires_action").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(reservation(&gw, "alice", &hold).await["state"], "pinned");
    // That commit's order is written (the writer marks its attempt paid in the same
    // transaction); Redis is not told yet.
    sqlx::query("UPDATE commit_attempts SET status = 'paid' WHERE idempotency_key = 'k-paid'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (s, v) = commit(&gw, "alice", &hold, "k-declined", "tok_chargeDeclined").await;
    assert_eq!(s.as_u16(), 402, "{v}");
    assert_eq!(reservation(&gw, "alice", &hold).await["state"], "pinned");
    db.drop().await;
}
