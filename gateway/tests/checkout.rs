//! Checkout over real HTTP: commit, orders, the durable writer (an in-process reconciler),
//! webhooks, refunds and the audit log, against the real cluster and Postgres, with the sandbox
//! provider.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::{Duration, Instant};

use coordinator::EventId;
use gateway::auth::Role;
use harness::{assert_error, db, gateway_full, sandbox, setup, support, token, Gw, WEBHOOK_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn checkout_pays_once_writes_the_order_and_sells_the_seats() {
    let (gw, db, event) = setup("pay").await;
    let alice = token("alice", Role::Buyer);
    let (_, hold) = gw
        .hold(&event, "alice", json!({"client_reservation_id": "uuid-abc-123", "user_id": "alice", "seat_ids": ["orch-A-10", "orch-A-11"]}))
        .await;
    let commit = format!("/reservations/{}/commit", hold["hold_id"].as_str().unwrap());

    // Declined: 402, and the hold stays for another try.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "pay-0000", "payment_token": "tok_chargeDeclined"})),
        )
        .await;
    assert_error(s, &v, 402, "payment_declined");
    let (_, after, _) = gw
        .call(
            Method::GET,
            &format!("/reservations/{}", hold["hold_id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (after["state"].as_str(), after["expires_at"].clone()),
        (Some("held"), hold["expires_at"].clone()),
        "unpinned, back to its own expiry"
    );
    // Another buyer cannot pay for it.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&token("bob", Role::Buyer)),
            Some(json!({"idempotency_key": "x", "payment_token": "tok_visa"})),
        )
        .await;
    assert_error(s, &v, 403, "not_your_hold");

    // The appendix: 200 {order_id, status: paid, seats}, only once the order is in Postgres.
    let (s, paid, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "pay-0001", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{paid}");
    assert_eq!(
        (paid["status"].as_str(), paid["seats"].clone()),
        (Some("paid"), json!(["orch-A-10", "orch-A-11"]))
    );
    assert_eq!(paid["total_amount"], json!(240.0));
    let order_id = paid["order_id"].as_str().unwrap();
    let (live,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sold_seats WHERE order_id = $1::uuid AND live")
            .bind(order_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(live, 2);
    // Redis agrees, and the seats cannot be held again.
    let (_, a, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/availability"),
            None,
            None,
        )
        .await;
    assert_eq!(a["sold"], 2);
    let (s, v) = gw
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "b", "user_id": "bob", "seat_ids": ["orch-A-10"]}),
        )
        .await;
    assert_error(s, &v, 409, "seats_unavailable");

    // Replays, also concurrent, return the same answer; another key is a conflict.
    let replays = futures::future::join_all((0..20).map(|_| {
        gw.call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "pay-0001", "payment_token": "tok_visa"})),
        )
    }))
    .await;
    for (s, v, _) in replays {
        assert_eq!(
            (s, v["order_id"].as_str()),
            (StatusCode::OK, Some(order_id))
        );
    }
    let (s, v, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "pay-0002", "payment_token": "tok_visa"})),
        )
        .await;
    assert_error(s, &v, 409, "idempotency_conflict");
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 1, "ordered once");
    let hold_id = hold["hold_id"].as_str().unwrap();
    assert_eq!(
        sandbox(&gw)
            .payments_for_key(&format!("{hold_id}:pay-0001"))
            .await
            .unwrap(),
        1,
        "charged once"
    );
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("paid")));
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order_id}"),
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 404, "unknown_order");
    // A sold hold cannot be cancelled.
    let (s, v, _) = gw
        .call(
            Method::DELETE,
            &format!("/reservations/{}", hold["hold_id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_error(s, &v, 409, "already_sold");
    db.drop().await;
}

#[tokio::test]
async fn postgres_refuses_an_oversell_redis_missed_and_the_payment_is_refunded() {
    let (gw, db, event) = setup("guard").await;
    // The seat was sold before and Redis lost it (a failover): Postgres still knows.
    sqlx::query(
        "INSERT INTO orders (id, event_id, hold_id, user_id, status, total_cents, currency, payment_ref, idempotency_key)
         VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'earlier', 'paid', 1, 'USD', 'pi_earlier', 'k')",
    )
    .bind(event.as_str())
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO sold_seats (order_id, event_id, seat_id) SELECT id, $1, 'mezz-B-5' FROM orders WHERE payment_ref = 'pi_earlier'")
        .bind(event.as_str())
        .execute(&db.pool)
        .await
        .unwrap();
    let alice = token("alice", Role::Buyer);
    let (s, hold) = gw.hold(&event, "alice", json!({"client_reservation_id": "c", "user_id": "alice", "seat_ids": ["mezz-B-5", "mezz-B-6"]})).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "Redis does not know the seat is sold"
    );
    let commit = format!("/reservations/{}/commit", hold["hold_id"].as_str().unwrap());
    let (s, v, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "k1", "payment_token": "tok_visa"})),
        )
        .await;
    assert_error(s, &v, 409, "seats_unavailable");
    let (live,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sold_seats WHERE seat_id = 'mezz-B-5' AND live")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(live, 1, "sold once");
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE user_id = 'alice'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0, "no order for alice");
    // The playbook: the incident is recorded and the event's sales are frozen.
    let (incidents,): (i64,) = sqlx::query_as("SELECT count(*) FROM oversell_incidents")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(incidents, 1);
    let (status,): (String,) = sqlx::query_as("SELECT status::text FROM events WHERE id = $1")
        .bind(event.as_str())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "frozen");
    // No money without seats: the payment was refunded.
    assert_eq!(
        sandbox(&gw).kept_payments().await.unwrap(),
        Vec::<String>::new()
    );
    db.drop().await;
}

#[tokio::test]
async fn concurrent_commits_with_different_keys_make_one_order_and_refund_the_rest() {
    let (gw, db, event) = setup("race").await;
    let alice = token("alice", Role::Buyer);
    let (_, hold) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "r", "user_id": "alice", "seat_ids": ["balc-D-1"]}),
        )
        .await;
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    let commit = format!("/reservations/{hold_id}/commit");
    let answers = futures::future::join_all((0..6).map(|i| {
        gw.call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": format!("key-{i}"), "payment_token": "tok_visa"})),
        )
    }))
    .await;
    let won: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "exactly one commit wins: {answers:?}");
    for (s, v, _) in &answers {
        assert!(
            *s == StatusCode::OK
                || v["error"]["code"] == "idempotency_conflict"
                || v["error"]["code"] == "request_in_progress",
            "{s} {v}"
        );
    }
    // Every captured payment but the order's own was refunded: no money without seats.
    let (paid_with,): (String,) = sqlx::query_as("SELECT payment_ref FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(sandbox(&gw).kept_payments().await.unwrap(), vec![paid_with]);
    db.drop().await;
}
