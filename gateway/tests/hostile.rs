//! The API against a hostile client (issue 22): money that overflows, slow and hoarding
//! connections, over-long tokens, an admission kept after its checkout, events without an owner,
//! a webhook header built to burn CPU, more holds and commits at once than the server can take.
//! Each case is answered with a clear 4xx (or a closed connection, or a 503 with Retry-After
//! under overload) and changes nothing.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::time::{Duration, Instant};

use coordinator::EventId;
use gateway::auth::Role;
use harness::{assert_error, count, setup, setup_opts, token, Gw, Opts, SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn put_prices(
    gw: &Gw,
    event: &EventId,
    who: &str,
    role: Role,
    prices: Value,
) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/prices"),
            Some(&token(who, role)),
            Some(json!({ "prices": prices })),
        )
        .await;
    (s, v)
}

#[tokio::test]
async fn money_never_overflows_and_nothing_is_charged_for_a_refused_total() {
    let (gw, db, event) = setup("money").await;
    // Prices: bounded, the bound named (i64::MAX once wrapped a two-seat total to -2 cents).
    for bad in [json!(i64::MAX), json!(10_000_001)] {
        let (s, v) = put_prices(
            &gw,
            &event,
            "org",
            Role::Organizer,
            json!({ "premium": bad }),
        )
        .await;
        assert_error(s, &v, 422, "invalid_event");
        assert!(v.to_string().contains("prices.premium"), "{v}");
    }
    // The highest price is allowed, but ten such seats are more than one charge may be: 422,
    // nothing held (another buyer then holds the same seats).
    let (s, v) = put_prices(
        &gw,
        &event,
        "org",
        Role::Organizer,
        json!({ "premium": 10_000_000 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ten: Vec<String> = (1..=10).map(|n| format!("orch-A-{n}")).collect();
    let (s, v) = gw
        .hold(
            &event,
            "mallory",
            json!({"client_reservation_id": "big", "user_id": "mallory", "seat_ids": ten}),
        )
        .await;
    assert_error(s, &v, 422, "total_out_of_range");
    assert_eq!(
        v["error"]["details"]["max_total_cents"],
        payments::MAX_CHARGE_CENTS
    );
    let (s, v) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "a", "user_id": "alice", "seat_ids": ten}),
        )
        .await;
    assert_error(s, &v, 422, "total_out_of_range");
    let (s, v) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "b", "user_id": "alice", "seat_ids": ["orch-A-1"]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "nothing was held by the refusals: {v}"
    );

    // A free seat: the hold stands, but checkout charges nothing and writes nothing.
    let (s, v) = put_prices(&gw, &event, "org", Role::Organizer, json!({ "economy": 0 })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seat = catalog::seatmap::demo_theatre()
        .seats()
        .find(|(_, _, s)| s.category == "economy")
        .map(|(_, _, s)| s.id.clone())
        .unwrap();
    let (s, v) = gw
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "free", "user_id": "bob", "seat_ids": [seat]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["total_amount"], 0.0, "{v}");
    let hold = v["hold_id"].as_str().unwrap().to_owned();
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{hold}/commit"),
            Some(&token("bob", Role::Buyer)),
            Some(json!({"idempotency_key": "k", "payment_token": "tok_visa"})),
        )
        .await;
    assert_error(s, &v, 422, "nothing_to_charge");
    assert_eq!(
        count(&db, "SELECT count(*) FROM sandbox_payments").await,
        0,
        "no charge reached the provider"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM commit_attempts").await,
        0,
        "no attempt was recorded"
    );
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/reservations/{hold}"),
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("held")),
        "the hold is untouched: {v}"
    );
    // The provider side refuses such amounts too, whoever asks.
    let charge = payments::ChargeRequest {
        idempotency_key: "direct".into(),
        amount_cents: -2,
        currency: "USD".into(),
        token: "tok_visa".into(),
        metadata: Default::default(),
    };
    assert_eq!(
        gw.app.payments.charge(&charge).await,
        Err(payments::PaymentError::InvalidAmount(-2))
    );
    assert_eq!(count(&db, "SELECT count(*) FROM sandbox_payments").await, 0);
    db.drop().await;
}

#[tokio::test]
async fn events_without_an_owner_are_changed_by_admins_only() {
    let (gw, db, _demo) = setup("owner").await;
    let event = EventId::parse(&format!("ownerless-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let draft = catalog::events::EventDraft {
        id: event.to_string(),
        venue_id: "demo-theatre".into(),
        title: "Made with ticketctl".into(),
        category: "concert".into(),
        starts_at: chrono::Utc::now() + chrono::Duration::days(3),
        sale_opens_at: chrono::Utc::now(),
        prices: [("premium", 100), ("standard", 100), ("economy", 100)]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
        currency: "USD".into(),
    };
    catalog::events::create_event(&db.pool, &draft, None)
        .await
        .unwrap();
    let (s, v) = put_prices(
        &gw,
        &event,
        "olga",
        Role::Organizer,
        json!({"premium": 200}),
    )
    .await;
    assert_error(s, &v, 403, "not_event_owner");
    let (s, v) = put_prices(&gw, &event, "ops", Role::Admin, json!({"premium": 200})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    db.drop().await;
}

#[tokio::test]
async fn an_admission_is_good_for_one_checkout() {
    let (gw, db, event) = setup("once").await;
    let (s, v, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/admission"),
            Some(&token("org", Role::Organizer)),
            Some(json!({"mode": "queue", "rate_per_second": 1.0, "burst": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, joined, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&token("ann", Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(
        (s, joined["status"].as_str()),
        (StatusCode::OK, Some("admitted")),
        "{joined}"
    );
    let admission = joined["admission_token"].as_str().unwrap().to_owned();
    let reserve = |client: &'static str, seat: &'static str| {
        gw.http
            .post(format!("{}/events/{event}/reservations", gw.base))
            .bearer_auth(token("ann", Role::Buyer))
            .header("X-Admission-Token", &admission)
            .json(&json!({"client_reservation_id": client, "user_id": "ann", "seat_ids": [seat]}))
            .send()
    };
    let res = reserve("first", "orch-C-1").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let hold: Value = res.json().await.unwrap();
    // Two holds under one admission are fine while shopping.
    let res = reserve("second", "orch-C-2").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{}/commit", hold["hold_id"].as_str().unwrap()),
            Some(&token("ann", Role::Buyer)),
            Some(json!({"idempotency_key": "pay-1", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{v}"
    );
    // The checkout is done: the token, still within its window, opens no more holds.
    let res = reserve("third", "orch-C-3").await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 403, "admission_used");
    db.drop().await;
}

#[tokio::test]
async fn slow_and_hoarding_connections_are_cut_and_capped() {
    let cap = 8;
    let (gw, db, _event) = setup_opts(
        "slow",
        Opts {
            connections: gateway::listener::Connections {
                header_read_timeout: Duration::from_millis(600),
                max_connections: cap,
            },
            ..Opts::default()
        },
    )
    .await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    // Half-sent request heads: each closed once the timeout passes, none answered.
    let mut slow = Vec::new();
    for _ in 0..cap {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // At the cap: a new connection gets 503 with Retry-After at once.
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), over.read_to_string(&mut answer))
        .await
        .expect("answered at once")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    // The slow ones are closed by the header-read timeout, unanswered.
    let started = Instant::now();
    for mut c in slow {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut rest))
            .await
            .expect("closed by the server")
            .ok();
        assert!(
            !String::from_utf8_lossy(&rest).contains("200 OK"),
            "a half-sent request was served"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // An idle kept-alive connection is closed the same way.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut nothing = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), idle.read_to_end(&mut nothing))
        .await
        .expect("idle connection closed")
        .ok();
    // Capacity is back: an ordinary request is served.
    let (s, _, _) = gw.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let metrics = gw.metrics_text().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(value("gateway_connections_refused_total{listener=\"public\"}") >= 1.0);
    assert!(value("gateway_connections_timed_out_total{listener=\"public\"}") >= cap as f64);
    db.drop().await;
}

#[tokio::test]
async fn tokens_and_webhook_headers_built_to_hurt_are_refused_cheaply() {
    let (gw, db, event) = setup("tokens").await;
    // A correctly signed token that claims ten years: 401, in plain words.
    let now = chrono::Utc::now().timestamp();
    let decade = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "role": "admin", "iat": now, "exp": now + 10 * 365 * 86_400}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    let (s, v, headers) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue"),
            Some(&decade),
            None,
        )
        .await;
    assert_error(s, &v, 401, "unauthorized");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("lifetime"),
        "{v}"
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    // A 422 names JSON's types, not ours.
    let (s, v) = gw
        .hold(&event, "alice", json!({"client_reservation_id": "x", "user_id": "alice", "seat_ids": ["orch-A-1"], "ttl_seconds": "long"}))
        .await;
    assert_error(s, &v, 422, "invalid_body");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("u64") && !message.contains("struct"),
        "{message}"
    );
    // The webhook header of 5,000 candidate signatures over a 60 KB body: refused as
    // malformed, before any MAC of the body is computed.
    let header = std::iter::once(format!("t={now}"))
        .chain((0..5_000).map(|_| format!("v1={}", "0".repeat(64))))
        .collect::<Vec<_>>()
        .join(",");
    let res = gw
        .http
        .post(format!("{}/webhooks/payments", gw.base))
        .header("Stripe-Signature", header)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 60 * 1024])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_error(status, &body, 400, "invalid_signature");
    assert_eq!(
        body["error"]["message"], "malformed signature header",
        "{body}"
    );
    db.drop().await;
}

#[tokio::test]
async fn past_the_concurrency_limit_commits_wait_their_turn_then_are_shed_and_change_nothing() {
    // One commit at a time, a provider that takes a second to answer, and a line of 200 ms.
    let (gw, db, event) = setup_opts(
        "shed",
        Opts {
            latency: Duration::from_millis(1_000),
            shed: Some(settings::Shed {
                enabled: true,
                hold_target: Duration::from_secs(60),
                commit_target: Duration::from_secs(60),
                commit_wait: Duration::from_millis(200),
                initial_limit: 1,
                min_limit: 1,
                max_limit: 1,
            }),
            ..Opts::default()
        },
    )
    .await;
    let first = harness::hold_seats(&gw, &event, "alice", &["orch-A-1"], 300).await;
    let second = harness::hold_seats(&gw, &event, "bob", &["orch-A-2"], 300).await;
    let slow = tokio::spawn({
        let (base, first) = (gw.base.clone(), first.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}/reservations/{first}/commit"))
                .bearer_auth(token("alice", Role::Buyer))
                .json(&json!({"idempotency_key": "k-a", "payment_token": "tok_visa"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    // Wait until the first commit holds the only place.
    let mut shed = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let answer = gw
            .http
            .post(format!("{}/reservations/{second}/commit", gw.base))
            .bearer_auth(token("bob", Role::Buyer))
            .json(&json!({"idempotency_key": "k-b", "payment_token": "tok_visa"}))
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
            let retry_after = answer.headers()["retry-after"].to_str().unwrap().to_owned();
            let body: Value = answer.json().await.unwrap();
            shed = Some((retry_after, body, started.elapsed()));
            break;
        }
        assert!(
            !slow.is_finished(),
            "the first commit ended before a second was tried"
        );
    }
    let (retry_after, body, took) = shed.expect("the second commit was shed");
    assert!(
        took >= Duration::from_millis(200),
        "it waited for a place before it was shed: {took:?}"
    );
    assert_eq!(retry_after, "1");
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert_eq!(body["error"]["details"]["class"], "commit", "{body}");
    // Shed before anything was read or written: no attempt, no charge for bob.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM commit_attempts WHERE user_id = 'bob'"
        )
        .await,
        0
    );
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    // Holds have their own limit: the commit in flight did not take their place.
    harness::hold_seats(&gw, &event, "carol", &["orch-A-3"], 300).await;
    // Once the first is answered, the place is free again.
    let (s, v) = harness::commit(&gw, "bob", &second, "k-b", "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_shed_total{class=\"commit\"}") && !l.ends_with(" 0")),
        "the shed commit is counted"
    );
    db.drop().await;
}

/// After Redis lost an event's inventory (a primary restarted empty), seats the catalog has are
/// a 503 with Retry-After until the reconciler rebuilds them, not a 404 telling the buyer they
/// do not exist; seats the venue does not have are still a 404 (issue 19).
#[tokio::test]
async fn seats_whose_inventory_redis_lost_are_a_503_not_a_404() {
    use fred::prelude::*;
    let (gw, db, event) = setup_opts(
        "lostinv",
        Opts {
            // No reconciler: nothing rebuilds the inventory while the test looks.
            reconciler: false,
            ..Opts::default()
        },
    )
    .await;
    let hold = |seats: Vec<&str>, id: &str| json!({"client_reservation_id": id, "user_id": "alice", "seat_ids": seats});
    let redis = gw.app.coordinator.redis().next().clone();
    let mezz = coordinator::keys::section(&event, &coordinator::SectionId::parse("mezz").unwrap());
    let _: i64 = redis.del(mezz.inv.clone()).await.unwrap();

    let (s, v, h) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/reservations"),
            Some(&token("alice", Role::Buyer)),
            Some(hold(vec!["mezz-A-1"], "lost-1")),
        )
        .await;
    assert_error(s, &v, 503, "inventory_unavailable");
    assert_eq!(h["retry-after"], "1");
    // A seat no venue has is still the client's mistake, named; the known one is not.
    let (s, v) = gw
        .hold(
            &event,
            "alice",
            hold(vec!["mezz-A-1", "mezz-Z-999"], "lost-2"),
        )
        .await;
    assert_error(s, &v, 404, "unknown_seats");
    assert!(!v.to_string().contains("mezz-A-1"), "{v}");

    // Every section gone, and the event's layout: holds are 503s too.
    for section in ["orch", "balc"] {
        let k =
            coordinator::keys::section(&event, &coordinator::SectionId::parse(section).unwrap());
        let _: i64 = redis.del(k.inv).await.unwrap();
    }
    for key in [
        coordinator::keys::layout(&event),
        coordinator::keys::sections(&event),
    ] {
        let _: i64 = redis.del(key).await.unwrap();
    }
    let (s, v) = gw
        .hold(&event, "alice", hold(vec!["orch-A-1"], "lost-3"))
        .await;
    assert_error(s, &v, 503, "inventory_unavailable");

    // Nothing was held: once the inventory is back, the seats are free for anyone.
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    let (s, v) = gw
        .hold(&event, "bob", json!({"client_reservation_id": "b", "user_id": "bob", "seat_ids": ["mezz-A-1", "orch-A-1"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    db.drop().await;
}
