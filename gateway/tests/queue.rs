//! The waiting room over real HTTP: fairness, the token bucket's rate, admission tokens, the
//! lottery's auditable draw.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::time::Duration;

use coordinator::queue::Pace;
use coordinator::{EventId, UserId};
use gateway::auth::{Keys, Role};
use harness::{assert_error, setup, setup_opts, token, Gw, Opts, SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;

async fn set_admission(gw: &Gw, event: &EventId, body: Value) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/admission"),
            Some(&token("org", Role::Organizer)),
            Some(body),
        )
        .await;
    (s, v)
}

async fn join(gw: &Gw, event: &EventId, user: &str) -> Value {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&token(user, Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn poll(gw: &Gw, event: &EventId, user: &str, ticket: &str) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue/{ticket}"),
            Some(&token(user, Role::Buyer)),
            None,
        )
        .await;
    (s, v)
}

/// `GET /events/{id}/queue` (the organizer's view of the room) with `bearer`.
async fn room(gw: &Gw, event: &EventId, bearer: &str) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue"),
            Some(bearer),
            None,
        )
        .await;
    (s, v)
}

async fn reserve(
    gw: &Gw,
    event: &EventId,
    user: &str,
    seat: &str,
    admission: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = gw
        .http
        .post(format!("{}/events/{event}/reservations", gw.base))
        .bearer_auth(token(user, Role::Buyer))
        .json(&json!({"client_reservation_id": format!("q-{seat}"), "user_id": user, "seat_ids": [seat]}));
    if let Some(a) = admission {
        req = req.header("X-Admission-Token", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_queue_admits_in_joining_order_at_its_rate_and_only_admitted_buyers_reserve() {
    let (gw, db, event) = setup("queue").await;
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "queue", "rate_per_second": 20.0, "burst": 5}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Bad settings are the organizer's error and change nothing.
    for bad in [
        json!({"mode": "queue", "rate_per_second": 0.0}),
        json!({"mode": "queue", "burst": 0}),
        json!({"mode": "nope"}),
        json!({"mode": "queue", "window_seconds": 5}),
    ] {
        let (s, v) = set_admission(&gw, &event, bad).await;
        assert!(s == StatusCode::UNPROCESSABLE_ENTITY, "{s} {v}");
    }

    // Fairness: places follow the order of joining; joining twice returns the same ticket.
    let mut tickets = Vec::new();
    for i in 0..300 {
        let user = format!("u{i}");
        let v = join(&gw, &event, &user).await;
        assert_eq!(v["position"], json!(i + 1), "{v}");
        tickets.push((user, v["ticket"].as_str().unwrap().to_owned()));
    }
    assert_eq!(join(&gw, &event, "u7").await["ticket"], json!(tickets[7].1));

    // Rate: between two looks at the room, admissions grow by rate x elapsed (within 5%), and the
    // admitted are always a prefix of the joining order.
    let first = status_of(&gw, &event).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = status_of(&gw, &event).await;
    let elapsed_s = (second.now_ms - first.now_ms) as f64 / 1000.0;
    let grown = (second.admitted_upto - first.admitted_upto) as f64;
    let expected = 20.0 * elapsed_s;
    assert!(
        second.admitted_upto < 300,
        "the queue was not drained: {second:?}"
    );
    assert!(
        (grown - expected).abs() <= 0.05 * expected + 1.0,
        "admitted {grown} in {elapsed_s:.3} s, expected {expected:.1} (rate 20/s)"
    );
    println!("rate check: {grown} admitted in {elapsed_s:.3} s (expected {expected:.1})");
    let upto = second.admitted_upto as usize;
    for (i, (user, ticket)) in tickets.iter().enumerate().step_by(37) {
        let (s, v) = poll(&gw, &event, user, ticket).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let admitted = v["status"] == "admitted";
        assert_eq!(
            admitted,
            i < v["admitted_so_far"].as_u64().unwrap() as usize,
            "{v}"
        );
        if i < upto {
            assert!(admitted, "an earlier joiner is still waiting: {v}");
        }
    }

    // Tickets: unknown, another buyer's.
    let (s, v) = poll(&gw, &event, "u1", &uuid::Uuid::new_v4().to_string()).await;
    assert_error(s, &v, 404, "unknown_ticket");
    let (s, v) = poll(&gw, &event, "u1", "not-a-ticket").await;
    assert_error(s, &v, 404, "unknown_ticket");
    let (s, v) = poll(&gw, &event, "u1", &tickets[0].1).await;
    assert_error(s, &v, 403, "not_your_ticket");

    // Reserving needs this buyer's admission for this event, within its window.
    let (_, admitted) = poll(&gw, &event, "u0", &tickets[0].1).await;
    assert_eq!(admitted["status"], "admitted", "{admitted}");
    let good = admitted["admission_token"].as_str().unwrap().to_owned();
    let (s, v) = reserve(&gw, &event, "u0", "orch-A-1", None).await;
    assert_error(s, &v, 403, "admission_required");
    assert_eq!(
        v["error"]["details"]["queue"],
        json!(format!("/events/{event}/queue"))
    );
    let keys = Keys::new(SECRET).unwrap();
    let u0 = UserId::parse("u0").unwrap();
    let in_an_hour = chrono::Utc::now().timestamp() + 3600;
    let other_event = EventId::parse("another-event").unwrap();
    for (forged, code) in [
        ("garbage".to_owned(), "invalid_admission_token"),
        (
            format!("v1.{in_an_hour}.{}", "00".repeat(32)),
            "invalid_admission_token",
        ),
        (
            keys.mint_admission(&other_event, &u0, in_an_hour),
            "invalid_admission_token",
        ),
        (
            keys.mint_admission(&event, &UserId::parse("u1").unwrap(), in_an_hour),
            "invalid_admission_token",
        ),
        (
            keys.mint_admission(&event, &u0, chrono::Utc::now().timestamp() - 1),
            "admission_expired",
        ),
        (
            Keys::new(b"another-secret-another-secret-another")
                .unwrap()
                .mint_admission(&event, &u0, in_an_hour),
            "invalid_admission_token",
        ),
    ] {
        let (s, v) = reserve(&gw, &event, "u0", "orch-A-1", Some(&forged)).await;
        assert_error(s, &v, 403, code);
    }
    let (s, v) = reserve(&gw, &event, "u0", "orch-A-1", Some(&good)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The last in line is not admitted yet: its token does not exist.
    let (_, last) = poll(&gw, &event, "u299", &tickets[299].1).await;
    assert_eq!(
        (last["status"].as_str(), last["admission_token"].clone()),
        (Some("waiting"), Value::Null),
        "{last}"
    );
    assert!(
        last["expected_wait_seconds"].as_u64().unwrap() >= 1,
        "{last}"
    );
    assert!(last["poll_after_ms"].as_u64().unwrap() >= 1000, "{last}");

    // The room's gauges are exported.
    let metrics = gw.metrics_text().await;
    for series in [
        format!("gateway_queue_waiting{{event=\"{event}\"}}"),
        format!("gateway_queue_admitted{{event=\"{event}\"}}"),
        // 300 joins and one join again.
        "gateway_queue_expected_wait_seconds_count 301".to_owned(),
    ] {
        assert!(metrics.contains(&series), "{series} missing");
    }
    // The organizer sees the room.
    let (s, v) = room(&gw, &event, &token("org", Role::Organizer)).await;
    assert_eq!(
        (s, v["joined"].clone()),
        (StatusCode::OK, json!(300)),
        "{v}"
    );
    let (s, v) = room(&gw, &event, &token("u0", Role::Buyer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    db.drop().await;
}

async fn status_of(gw: &Gw, event: &EventId) -> coordinator::queue::TicketView {
    match gw
        .app
        .coordinator
        .queue_status(event, None, Pace::FULL)
        .await
        .unwrap()
    {
        coordinator::queue::QueueOutcome::Ticket(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_lottery_answers_anonymous_callers_its_own_404_and_409() {
    let (gw, db, event) = setup("lotterynot").await;
    // Its path is also a ticket poll's (`/events/{id}/queue/{ticket}`), which wants a token:
    // that route's 401 must not stand in for the lottery's own answers.
    let lottery = |event: &str| format!("/events/{event}/queue/lottery");
    let (s, v, _) = gw
        .call(Method::GET, &lottery("no-such-event"), None, None)
        .await;
    assert_error(s, &v, 404, "unknown_event");
    let (s, set) = set_admission(&gw, &event, json!({"mode": "queue"})).await;
    assert_eq!(s, StatusCode::OK, "{set}");
    let (s, v, _) = gw
        .call(Method::GET, &lottery(event.as_str()), None, None)
        .await;
    assert_error(s, &v, 409, "no_lottery");
    // A ticket poll still wants its token.
    let ticket = uuid::Uuid::new_v4();
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue/{ticket}"),
            None,
            None,
        )
        .await;
    assert_error(s, &v, 401, "unauthorized");
    db.drop().await;
}

/// The lottery's order: tickets sorted by hex SHA1(seed + ":" + ticket), as `lua/queue.lua`
/// draws it and as anyone can recompute it.
fn lottery_order(seed: &str, tickets: &[String]) -> Vec<String> {
    let mut keyed: Vec<(String, String)> = tickets
        .iter()
        .map(|t| {
            (
                hex::encode(sha1::Sha1::digest(format!("{seed}:{t}").as_bytes())),
                t.clone(),
            )
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test]
async fn the_lottery_draw_is_a_permutation_anyone_can_recompute_from_the_revealed_seed() {
    let (gw, db, event) = setup("lottery").await;
    sqlx::query("UPDATE events SET sale_opens_at = now() + interval '3 seconds' WHERE id = $1")
        .bind(event.as_str())
        .execute(&db.pool)
        .await
        .unwrap();
    let (s, set) = set_admission(
        &gw,
        &event,
        json!({"mode": "lottery", "rate_per_second": 1000.0, "burst": 1000}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    let seed_hash = set["lottery_seed_sha256"].as_str().unwrap().to_owned();
    // Before the draw the seed stays secret.
    let (_, before, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue/lottery"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (before["drawn"].clone(), before["seed"].clone()),
        (json!(false), Value::Null),
        "{before}"
    );
    assert_eq!(before["seed_sha256"], json!(seed_hash));

    let mut pre = Vec::new();
    for i in 0..30 {
        let user = format!("p{i}");
        let v = join(&gw, &event, &user).await;
        assert_eq!(
            (v["status"].as_str(), v["position"].as_u64()),
            (Some("pre_queue"), Some(0)),
            "{v}"
        );
        pre.push((user, v["ticket"].as_str().unwrap().to_owned()));
    }
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    // The first call after the opening draws; later arrivals queue behind the pre-queue.
    let late = join(&gw, &event, "late").await;
    assert_eq!(late["position"], json!(31), "{late}");
    let mut positions = Vec::new();
    for (user, ticket) in &pre {
        let (s, v) = poll(&gw, &event, user, ticket).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        positions.push((v["position"].as_u64().unwrap(), ticket.clone()));
    }
    let mut places: Vec<u64> = positions.iter().map(|(p, _)| *p).collect();
    places.sort_unstable();
    assert_eq!(
        places,
        (1..=30).collect::<Vec<u64>>(),
        "a permutation of 1..=30"
    );

    let (_, after, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/queue/lottery"),
            None,
            None,
        )
        .await;
    let seed = after["seed"].as_str().unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(seed.as_bytes())),
        seed_hash,
        "the seed matches its published hash"
    );
    let published: Vec<String> =
        serde_json::from_value(after["tickets_in_joining_order"].clone()).unwrap();
    assert_eq!(
        published,
        pre.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>()
    );
    positions.sort();
    let drawn: Vec<String> = positions.into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        drawn,
        lottery_order(seed, &published),
        "recomputed from the seed"
    );
    db.drop().await;
}

#[test]
fn the_lottery_order_is_uniform() {
    // Where the first of 10 tickets lands, over 5,000 seeds: a chi-square test against the
    // uniform distribution (9 degrees of freedom). 27.88 is the 0.999 quantile, and the seeds are
    // fixed, so the test is deterministic: it fails only if the draw is biased.
    let tickets: Vec<String> = (0..10).map(|i| format!("ticket-{i}")).collect();
    let mut counts = [0u32; 10];
    let runs = 5_000;
    for seed in 0..runs {
        let order = lottery_order(&format!("seed-{seed}"), &tickets);
        let place = order.iter().position(|t| t == "ticket-0").unwrap();
        counts[place] += 1;
    }
    let expected = runs as f64 / 10.0;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 27.88, "chi-square {chi2:.2} over {counts:?}");
    println!("lottery uniformity: chi-square {chi2:.2} (bound 27.88), counts {counts:?}");
}

#[tokio::test]
async fn a_client_over_its_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let db = harness::db::TestDb::new("limits").await;
    let gw = harness::gateway_opts(
        &db,
        harness::Opts {
            rate_limits: settings::RateLimits {
                per_ip_per_sec: 1,
                per_ip_burst: 5,
                per_user_per_sec: 1,
                per_user_burst: 3,
                client_ip_header: Some("X-Forwarded-For".into()),
            },
            ..harness::Opts::default()
        },
    )
    .await;
    let get = |path: &'static str, user: Option<&'static str>, ip: &'static str| {
        let gw = &gw;
        async move {
            let mut req = gw
                .http
                .get(format!("{}{path}", gw.base))
                .header("X-Forwarded-For", ip);
            if let Some(u) = user {
                req = req.bearer_auth(token(u, Role::Buyer));
            }
            let res = req.send().await.unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = res.status();
            (
                status,
                res.json::<Value>().await.unwrap_or(Value::Null),
                retry,
            )
        }
    };
    // Per user: 3 at once, then 429 with Retry-After; another user is unaffected.
    let order = "/orders/00000000-0000-0000-0000-000000000000";
    for i in 0..3 {
        let (s, v, _) = get(
            order,
            Some("alice"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"][i],
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    }
    let (s, v, retry) = get(order, Some("alice"), "10.0.0.4").await;
    assert_error(s, &v, 429, "rate_limited");
    assert_eq!(v["error"]["details"]["reason"], "user");
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1),
        "Retry-After"
    );
    let (s, v, _) = get(order, Some("bob"), "10.0.0.5").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "bob is not limited by alice: {v}");
    // Per IP (behind a trusted proxy): 5 at once, then 429; another IP is unaffected; health
    // probes are never limited.
    for _ in 0..5 {
        let (s, v, _) = get("/events", None, "192.0.2.7").await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v, retry) = get("/events", None, "192.0.2.7").await;
    assert_error(s, &v, 429, "rate_limited");
    assert_eq!(v["error"]["details"]["reason"], "ip");
    assert!(retry.is_some());
    let (s, _, _) = get("/events", None, "192.0.2.8").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = get("/healthz", None, "192.0.2.7").await;
    assert_eq!(s, StatusCode::OK);
    db.drop().await;
}

#[tokio::test]
async fn a_buyer_holds_and_buys_at_most_the_events_ticket_limit_even_concurrently() {
    let (gw, db, event) = setup("tlimit").await;
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "open", "max_tickets_per_buyer": 3}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let hold = |user: &'static str, client: &'static str, seats: Vec<&'static str>| {
        let gw = &gw;
        let event = &event;
        async move {
            gw.hold(
                event,
                user,
                json!({"client_reservation_id": client, "user_id": user, "seat_ids": seats}),
            )
            .await
        }
    };
    let (s, two) = hold("alice", "a1", vec!["orch-A-1", "orch-A-2"]).await;
    assert_eq!(s, StatusCode::CREATED, "{two}");
    let (s, v) = hold("alice", "a2", vec!["orch-A-3", "orch-A-4"]).await;
    assert_error(s, &v, 409, "ticket_limit");
    assert_eq!(
        (
            v["error"]["details"]["limit"].clone(),
            v["error"]["details"]["counted"].clone()
        ),
        (json!(3), json!(2))
    );
    let (s, one) = hold("alice", "a3", vec!["orch-A-5"]).await;
    assert_eq!(s, StatusCode::CREATED, "{one}");
    let (s, _) = hold("alice", "a1", vec!["orch-A-1", "orch-A-2"]).await;
    assert_eq!(s, StatusCode::OK, "a replay is counted once");
    // Concurrent holds of one buyer: the limit holds atomically.
    let answers = futures::future::join_all(
        ["b1", "b2", "b3", "b4", "b5"]
            .iter()
            .zip(["orch-B-1", "orch-B-2", "orch-B-3", "orch-B-4", "orch-B-5"])
            .map(|(client, seat)| hold("bob", client, vec![seat])),
    )
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "{answers:?}");
    // A cancelled hold stops counting; a bought one counts for good.
    let (s, _, _) = gw
        .call(
            Method::DELETE,
            &format!("/reservations/{}", two["hold_id"].as_str().unwrap()),
            Some(&token("alice", Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{}/commit", one["hold_id"].as_str().unwrap()),
            Some(&token("alice", Role::Buyer)),
            Some(json!({"idempotency_key": "k", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = hold("alice", "a4", vec!["orch-A-3", "orch-A-4"]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = hold("alice", "a5", vec!["orch-A-6"]).await;
    assert_error(s, &v, 409, "ticket_limit");
    db.drop().await;
}

/// Admission tied to what is left: the buyers shopping stay under ceil(free x
/// shoppers_per_free_seat) whatever the bucket's rate; a finished checkout makes room for the
/// next; with nothing free nobody more gets in. The wait each buyer actually had is recorded
/// once, when their admission is first seen.
#[tokio::test]
async fn admission_follows_the_seats_left_and_each_actual_wait_is_recorded_once() {
    use coordinator::queue::{QueueOutcome, TicketStatus, TicketView};
    let (gw, db, event) = setup("qinv").await;
    for bad in [-1.0, 1000.5] {
        let (s, v) = set_admission(
            &gw,
            &event,
            json!({"mode": "queue", "shoppers_per_free_seat": bad}),
        )
        .await;
        assert_error(s, &v, 422, "invalid_admission");
    }
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "queue", "rate_per_second": 1000.0, "burst": 1000, "shoppers_per_free_seat": 1.0}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["shoppers_per_free_seat"], json!(1.0), "{v}");
    let c = &gw.app.coordinator;
    let ticket = |o: QueueOutcome| -> TicketView {
        match o {
            QueueOutcome::Ticket(t) => t,
            other => panic!("{other:?}"),
        }
    };
    let users: Vec<UserId> = (0..10)
        .map(|i| UserId::parse(&format!("inv{i}")).unwrap())
        .collect();
    for u in &users {
        ticket(c.queue_join(&event, u, Some(3), Pace::FULL).await.unwrap());
    }
    let event_ref = &event;
    let status = |free: Option<u64>| async move {
        ticket(c.queue_status(event_ref, free, Pace::FULL).await.unwrap())
    };
    // 3 seats free, one shopper per free seat: 3 admitted, although the bucket (1000/s, burst
    // 1000) would let all 10 in.
    let st = status(Some(3)).await;
    assert_eq!((st.admitted_upto, st.shopping), (3, Some(3)), "{st:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(status(Some(3)).await.admitted_upto, 3);
    // Nothing free (all held): nobody more.
    assert_eq!(status(Some(0)).await.admitted_upto, 3);
    // One buyer finishes checkout: one more gets in.
    let done = ticket(c.queue_done(&event, &users[0], Pace::FULL).await.unwrap());
    assert_eq!(done.status, TicketStatus::Done);
    let st = status(Some(3)).await;
    assert_eq!((st.admitted_upto, st.shopping), (4, Some(3)), "{st:?}");
    // More seats free: more buyers in. A caller that does not know keeps the last figure told.
    assert_eq!(status(Some(5)).await.admitted_upto, 6);
    assert_eq!(status(None).await.admitted_upto, 6);
    assert_eq!(status(Some(100)).await.admitted_upto, 10);

    // The actual wait: a buyer joins while nothing is free, waits, and is admitted at a look
    // that finds seats free (the gateway's seat map); observed once, on that first look.
    let late = UserId::parse("inv-late").unwrap();
    let waiting = ticket(
        c.queue_join(&event, &late, Some(0), Pace::FULL)
            .await
            .unwrap(),
    );
    assert_eq!(waiting.status, TicketStatus::Waiting, "{waiting:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, first) = poll(&gw, &event, "inv-late", &waiting.ticket).await;
    assert_eq!(first["status"], "admitted", "{first}");
    let (_, again) = poll(&gw, &event, "inv-late", &waiting.ticket).await;
    assert_eq!(again["status"], "admitted", "{again}");
    let metrics = gw.metrics_text().await;
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gateway_queue_wait_seconds_sum "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((0.3..10.0).contains(&sum), "waited {sum} s");
    assert!(
        metrics.contains("gateway_queue_wait_seconds_count 1\n"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("gateway_queue_wait"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    db.drop().await;
}

/// The buyer's ticket count is Redis soft state, like a hold: a failover may lose it. Bought seats
/// are counted again from Postgres by the reconciler's repair, so the limit holds after one. The
/// repair runs only when Redis may have lost writes (its data epoch changed): passes without a
/// failover tell Redis nothing again, and the pass after one does.
#[tokio::test]
async fn a_ticket_count_lost_in_a_failover_is_counted_again_from_postgres() {
    use fred::prelude::*;
    // A cluster of the test's own: a failover of the shared one would disturb other tests.
    let cluster = harness::support::Dedicated::start("tlost");
    let db = harness::db::TestDb::new("tlost").await;
    let gw = harness::gateway_opts(
        &db,
        harness::Opts {
            redis_nodes: Some(cluster.nodes.clone()),
            ..harness::Opts::default()
        },
    )
    .await;
    let event = harness::support::unique_event("tlost");
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "open", "max_tickets_per_buyer": 2}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let alice = token("alice", Role::Buyer);
    let (s, held) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "c1", "user_id": "alice", "seat_ids": ["orch-A-1", "orch-A-2"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{held}");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{}/commit", held["hold_id"].as_str().unwrap()),
            Some(&alice),
            Some(json!({"idempotency_key": "k", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let retold = |gw: &Gw| -> u64 {
        ["first_pass", "epoch_changed", "epoch_unknown"]
            .iter()
            .map(|r| {
                gw.reconciler_metrics()
                    .sales_retold_total
                    .with_label_values(&[r])
                    .get()
            })
            .sum()
    };
    let passes = || {
        gw.reconciler_metrics()
            .passes_total
            .with_label_values(&["repair_ok"])
            .get()
    };
    // Passes while Redis loses nothing tell it nothing again (the first pass looks back, not
    // knowing what happened before it).
    gw.reconciled(passes() + 2).await;
    let before = retold(&gw);
    gw.reconciled(passes() + 3).await;
    assert_eq!(retold(&gw), before, "no failover: no sale told again");
    // The failover: the count is lost, and the replica of the slot's primary takes over. (The
    // loss is made by hand: deleting on the primary replicates the deletion, and the promotion
    // is what changes Redis's data epoch.)
    let bought = coordinator::keys::bought(&event, &UserId::parse("alice").unwrap());
    let redis = gw.app.coordinator.redis().next().clone();
    let gone: i64 = redis.del(vec![bought.clone()]).await.unwrap();
    assert_eq!(gone, 1, "the order's seats were counted");
    let slot = fred::util::redis_keyslot(bought.as_bytes());
    let primary = redis
        .cached_cluster_state()
        .unwrap()
        .get_server(slot)
        .unwrap()
        .clone();
    let replica = cluster
        .ports()
        .into_iter()
        .find(|p| {
            let role = harness::support::redis_cli(*p, &["ROLE"]);
            role.starts_with("slave") && role.contains(&primary.port.to_string())
        })
        .expect("a replica of the primary");
    // The deletion reaches the replica before it takes over (WAIT: one replica acknowledged).
    let synced: i64 = redis
        .with_cluster_node(&primary)
        .custom(
            fred::types::CustomCommand::new_static("WAIT", None, false),
            vec!["1", "5000"],
        )
        .await
        .unwrap();
    assert_eq!(synced, 1);
    assert_eq!(
        harness::support::redis_cli(replica, &["CLUSTER", "FAILOVER"]),
        "OK"
    );
    let started = std::time::Instant::now();
    while !harness::support::redis_cli(replica, &["ROLE"]).starts_with("master") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "failover did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Passes after it: one of them sees the new epoch and tells Redis the recent sales again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while retold(&gw) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no pass told the sales again after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gw.reconciler_metrics()
            .sales_retold_total
            .with_label_values(&["epoch_changed"])
            .get()
            + gw.reconciler_metrics()
                .sales_retold_total
                .with_label_values(&["epoch_unknown"])
                .get()
            >= 1
    );
    let (s, v) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "c2", "user_id": "alice", "seat_ids": ["orch-A-3"]}),
        )
        .await;
    assert_error(s, &v, 409, "ticket_limit");
    assert_eq!(v["error"]["details"]["counted"], json!(2), "{v}");
    drop(gw);
    db.drop().await;
}

/// When nothing is left to buy (every seat sold or blocked, none held), the room says so to
/// everyone waiting and to newcomers, and tells them to look again only rarely; a held seat
/// keeps hope.
#[tokio::test]
async fn a_sold_out_room_tells_waiting_buyers_to_stop_polling() {
    let (gw, db, event) = setup("soldout").await;
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "queue", "rate_per_second": 0.1, "burst": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let first = join(&gw, &event, "first").await;
    assert_eq!(first["status"], "admitted", "{first}");
    let waiting = join(&gw, &event, "second").await;
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!(waiting["outlook"], "possible", "{waiting}");
    let ticket = waiting["ticket"].as_str().unwrap().to_owned();
    // The admitted buyer holds one seat; every other seat is blocked by the organizer.
    let admission = first["admission_token"].as_str().unwrap().to_owned();
    let (s, v) = reserve(&gw, &event, "first", "orch-A-1", Some(&admission)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let map = catalog::seatmap::demo_theatre();
    let rest: Vec<coordinator::SeatId> = map
        .seats()
        .map(|(_, _, s)| coordinator::SeatId::parse(&s.id).unwrap())
        .filter(|s| s.as_str() != "orch-A-1")
        .collect();
    gw.app
        .coordinator
        .block(&event, &rest, "house")
        .await
        .unwrap();
    // A seat is still held: the second buyer keeps waiting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (s, v) = poll(&gw, &event, "second", &ticket).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("waiting")),
        "{v}"
    );
    // ... told early that nothing is free for them now.
    assert_eq!(
        (v["seats_left"].clone(), v["outlook"].as_str()),
        (json!(0), Some("unlikely")),
        "{v}"
    );
    // The hold is cancelled and that seat blocked too: nothing is left.
    let (s, v, _) = gw
        .call(
            Method::DELETE,
            &format!("/reservations/{}", held_hold_id(&event)),
            Some(&token("first", Role::Buyer)),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {v}");
    gw.app
        .coordinator
        .block(
            &event,
            &[coordinator::SeatId::parse("orch-A-1").unwrap()],
            "house",
        )
        .await
        .unwrap();
    let mut last = Value::Null;
    for _ in 0..40 {
        let (s, v) = poll(&gw, &event, "second", &ticket).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        last = v;
        if last["status"] == "sold_out" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "sold_out", "{last}");
    assert_eq!(last["poll_after_ms"], 30_000, "{last}");
    assert!(last["admission_token"].is_null(), "{last}");
    let newcomer = join(&gw, &event, "third").await;
    assert_eq!(newcomer["status"], "sold_out", "{newcomer}");
    db.drop().await;
}

/// The hold id of `first`'s only hold (the reservation helper's client id is `q-{seat}`).
fn held_hold_id(event: &EventId) -> String {
    coordinator::HoldId::derive(
        event,
        &UserId::parse("first").unwrap(),
        &coordinator::ClientReservationId::parse("q-orch-A-1").unwrap(),
    )
    .to_string()
}

/// The value of a counter with one label in the gateway's `/metrics` text.
fn counter(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{{label}}} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name}{{{label}}} in the metrics"))
}

#[tokio::test]
async fn waiting_buyers_polls_are_answered_from_memory_and_admission_still_moves() {
    let (gw, db, event) = setup("board").await;
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "queue", "rate_per_second": 2.0, "burst": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut tickets = Vec::new();
    for i in 0..40u64 {
        let user = format!("b{i}");
        let v = join(&gw, &event, &user).await;
        assert_eq!(v["position"], json!(i + 1), "{v}");
        tickets.push((user, v["ticket"].as_str().unwrap().to_owned()));
    }
    let polls = |text: &str| {
        (
            counter(text, "gateway_queue_polls_total", "source=\"memory\""),
            counter(text, "gateway_queue_polls_total", "source=\"redis\""),
        )
    };
    let before = polls(&gw.metrics_text().await);
    // Each buyer polls twice in a row: whatever answered the first, the room's counts are fresh
    // for the second. Every answer is the ticket's own place against the admitted mark.
    for (i, (user, ticket)) in tickets.iter().enumerate() {
        for _ in 0..2 {
            let (s, v) = poll(&gw, &event, user, ticket).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let (position, upto) = (i as u64 + 1, v["admitted_so_far"].as_u64().unwrap());
            assert_eq!(v["position"], json!(position), "{v}");
            if position > upto {
                assert_eq!(v["status"], "waiting", "{v}");
                assert_eq!(v["ahead"], json!(position - upto - 1), "{v}");
                assert!(v["admission_token"].is_null(), "{v}");
            } else {
                assert_eq!(v["status"], "admitted", "{v}");
            }
        }
    }
    let after = polls(&gw.metrics_text().await);
    let (memory, redis) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(memory + redis, 80);
    assert!(
        memory >= 30,
        "{memory} of 80 polls answered from memory ({redis} from Redis)"
    );
    // A remembered ticket is still refused to another buyer.
    let (s, v) = poll(&gw, &event, "b1", &tickets[30].1).await;
    assert_error(s, &v, 403, "not_your_ticket");

    // The room keeps admitting at its rate although most polls never reach Redis: the third
    // buyer is admitted (1 at once, then 2 a second) and gets a token.
    let (user, ticket) = &tickets[2];
    let mut admitted = Value::Null;
    for _ in 0..40 {
        let (s, v) = poll(&gw, &event, user, ticket).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] == "admitted" {
            admitted = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted["admission_token"].is_string(), "{admitted}");
    db.drop().await;
}

/// Back-pressure: the room admits at its rate times the pace its caller gives, and a finished
/// checkout gives the bucket no token back (a token per checkout once admitted the rate plus
/// checkout's own throughput). Through the gateway, commits slower than the pace target slow
/// the room: the organizer sees the pace and the slower rate, and so does the gauge.
#[tokio::test]
async fn slow_commits_slow_the_room_and_a_finished_checkout_gives_no_token_back() {
    use coordinator::queue::{QueueOutcome, TicketView};
    let (gw, db, event) = setup_opts(
        "qpace",
        Opts {
            latency: Duration::from_millis(300),
            pace_target: Some(Duration::from_millis(50)),
            ..Opts::default()
        },
    )
    .await;
    let (s, v) = set_admission(
        &gw,
        &event,
        json!({"mode": "queue", "rate_per_second": 100.0, "burst": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let c = &gw.app.coordinator;
    let ticket = |o: QueueOutcome| -> TicketView {
        match o {
            QueueOutcome::Ticket(t) => t,
            other => panic!("{other:?}"),
        }
    };
    let event_ref = &event;
    let status = |pace: f64| async move {
        ticket(
            c.queue_status(event_ref, None, Pace::new(pace))
                .await
                .unwrap(),
        )
    };
    // The first buyer is admitted by the burst, through the API (their token is needed below);
    // 300 more wait, joined with the room paused so none is admitted meanwhile.
    let first = join(&gw, &event, "first").await;
    assert_eq!(first["status"], "admitted", "{first}");
    for i in 0..300 {
        let u = UserId::parse(&format!("p{i}")).unwrap();
        ticket(
            c.queue_join(&event, &u, None, Pace::new(0.0))
                .await
                .unwrap(),
        );
    }
    // Paused: nobody more in, however long, and the rate said is 0.
    let a = status(0.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = status(0.0).await;
    assert_eq!(
        (b.admitted_upto, b.rate_per_sec),
        (a.admitted_upto, 0.0),
        "{a:?} {b:?}"
    );
    // Half pace: half the rate (within 5%, plus the one token the bucket may carry).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let h = status(0.5).await;
    let elapsed_s = (h.now_ms - b.now_ms) as f64 / 1000.0;
    let grown = (h.admitted_upto - b.admitted_upto) as f64;
    let expected = 50.0 * elapsed_s;
    assert!(
        (grown - expected).abs() <= 0.05 * expected + 1.0,
        "admitted {grown} in {elapsed_s:.3} s at half pace, expected {expected:.1}"
    );
    assert_eq!(h.rate_per_sec, 50.0, "{h:?}");

    // The first buyer finishes: it gives the bucket no token back (paused, nobody more gets in;
    // before, the token let one more in).
    let admission = first["admission_token"].as_str().unwrap().to_owned();
    let (s, v) = reserve(&gw, &event, "first", "orch-A-1", Some(&admission)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Read after the hold: the gateway's admission check runs the room at its own pace, which
    // may admit someone for the time the hold took (on a loaded machine, tens of ms at 100/s).
    let before = status(0.0).await.admitted_upto;
    let first_user = UserId::parse("first").unwrap();
    let done = ticket(
        c.queue_done(&event, &first_user, Pace::new(0.0))
            .await
            .unwrap(),
    );
    assert_eq!(
        done.status,
        coordinator::queue::TicketStatus::Done,
        "{done:?}"
    );
    assert_eq!(
        status(0.0).await.admitted_upto,
        before,
        "a finished checkout admitted someone"
    );
    // They pay, through the API: the commit takes the sandbox's 300 ms, over the 50 ms target.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{}/commit", held_hold_id(&event)),
            Some(&token("first", Role::Buyer)),
            Some(json!({"idempotency_key": "k1", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The slow commit slows the room: within a tick or two the organizer sees a pace under 1
    // and the rate it gives; the gauge says the same.
    let mut seen = Value::Null;
    for _ in 0..30 {
        let (s, v) = room(&gw, &event, &token("org", Role::Organizer)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        seen = v;
        if seen["pace"].as_f64().unwrap() < 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pace = seen["pace"].as_f64().unwrap();
    assert!((pace - gateway::pace::CUT).abs() < 1e-9, "{seen}");
    let rate = seen["rate_per_second"].as_f64().unwrap();
    assert!((rate - 100.0 * pace).abs() < 1e-6, "{seen}");
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains(&format!("gateway_admission_pace {pace}\n")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("pace"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    db.drop().await;
}
