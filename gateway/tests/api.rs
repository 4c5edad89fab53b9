//! The gateway over real HTTP against the real stack: a Redis Cluster and a Postgres database of
//! the test's own; gateways bound to port 0.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::{EventId, RedisSettings, UserId};
use gateway::auth::{Keys, Role};
use harness::{assert_error, db, gateway_on, gateway_with, setup, support, token, Gw, SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn the_appendix_sample_request_gets_the_appendix_response() {
    let (gw, db, event) = setup("appx").await;
    let (status, body) = gw
        .hold(
            &event,
            "user-42",
            json!({"client_reservation_id": "uuid-abc-123", "user_id": "user-42",
                   "seat_ids": ["orch-A-10", "orch-A-11"], "ttl_seconds": 300}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["hold_id"].as_str().is_some());
    assert_eq!(body["seats"], json!(["orch-A-10", "orch-A-11"]));
    assert_eq!(
        body["total_amount"],
        json!(240.0),
        "two premium seats at 120.00"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let in_secs = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (295..=301).contains(&in_secs),
        "expires in ~300 s, got {in_secs}"
    );
    db.drop().await;
}

#[tokio::test]
async fn hold_failures_get_the_right_status_and_change_nothing() {
    let (gw, db, event) = setup("herr").await;
    let alice = token("alice", Role::Buyer);
    let path = format!("/events/{event}/reservations");
    let ok = json!({"client_reservation_id": "a1", "user_id": "alice", "seat_ids": ["orch-B-1", "orch-B-2"]});
    let (s, first) = gw.hold(&event, "alice", ok.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    // Replay: the same hold, 200.
    let (s, again) = gw.hold(&event, "alice", ok.clone()).await;
    assert_eq!((s, &again["hold_id"]), (StatusCode::OK, &first["hold_id"]));

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"client_reservation_id": "b1", "user_id": "bob", "seat_ids": ["orch-B-2", "orch-B-3"]}),
            409,
            "seats_unavailable",
        ),
        (
            json!({"client_reservation_id": "a1", "user_id": "alice", "seat_ids": ["orch-B-3"]}),
            409,
            "idempotency_conflict",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["orch-C-1", "orch-C-1"]}),
            422,
            "duplicate_seat",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": []}),
            422,
            "no_seats",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": (1..=11).map(|n| format!("orch-C-{n}")).collect::<Vec<_>>()}),
            422,
            "too_many_seats",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["orch-C-1"], "ttl_seconds": 5}),
            422,
            "ttl_out_of_range",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["orch-C-1"], "ttl_seconds": 99999}),
            422,
            "ttl_out_of_range",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["orch-C-1"], "colour": "red"}),
            422,
            "invalid_body",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["no-such-seat"]}),
            404,
            "unknown_seats",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["bad seat"]}),
            422,
            "invalid_field",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "mallory", "seat_ids": ["orch-C-1"]}),
            403,
            "user_mismatch",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice"}),
            422,
            "seats_or_quantity",
        ),
        (
            json!({"client_reservation_id": "a2", "user_id": "alice", "seat_ids": ["orch-C-1"], "quantity": 1}),
            422,
            "seats_or_quantity",
        ),
    ];
    for (body, want, code) in cases {
        let user = if body["user_id"] == "bob" {
            "bob"
        } else {
            "alice"
        };
        let (s, v) = gw.hold(&event, user, body.clone()).await;
        assert_error(s, &v, want, code);
        if code == "seats_unavailable" {
            assert_eq!(
                v["error"]["details"]["unavailable"][0]["seat_id"], "orch-B-2",
                "names the seat"
            );
        }
    }
    // Unknown event, no token, bad token.
    let (s, v) = gw
        .hold(&support::unique_event("ghost"), "alice", ok.clone())
        .await;
    assert_error(s, &v, 404, "unknown_event");
    let (s, v, h) = gw.call(Method::POST, &path, None, Some(ok.clone())).await;
    assert_error(s, &v, 401, "unauthorized");
    assert_eq!(h["www-authenticate"], "Bearer");
    let (s, v, _) = gw
        .call(Method::POST, &path, Some("not.a.jwt"), Some(ok.clone()))
        .await;
    assert_error(s, &v, 401, "unauthorized");
    // Malformed JSON, wrong media type, oversized body.
    let raw = |ct: &'static str, body: Vec<u8>| {
        gw.http
            .post(format!("{}{path}", gw.base))
            .bearer_auth(&alice)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("application/json", b"{\"client_reservation_id\": ".to_vec())
        .await
        .unwrap();
    assert_error(r.status(), &r.json().await.unwrap(), 400, "malformed_json");
    let r = raw("text/plain", b"{}".to_vec()).await.unwrap();
    assert_error(
        r.status(),
        &r.json().await.unwrap(),
        415,
        "unsupported_media_type",
    );
    let r = raw("application/json", vec![b' '; 70 * 1024])
        .await
        .unwrap();
    assert_error(r.status(), &r.json().await.unwrap(), 413, "body_too_large");

    // Nothing changed: only alice's two seats are held.
    let (_, a, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/availability"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (a["held"].as_u64(), a["free"].as_u64()),
        (Some(2), Some(1_998)),
        "{a}"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_buyer_manages_only_their_own_holds() {
    let (gw, db, event) = setup("own").await;
    let (alice, bob) = (token("alice", Role::Buyer), token("bob", Role::Buyer));
    let (_, hold) = gw.hold(&event, "alice", json!({"client_reservation_id": "x", "user_id": "alice", "seat_ids": ["mezz-A-1"], "ttl_seconds": 120})).await;
    let id = hold["hold_id"].as_str().unwrap();
    let path = format!("/reservations/{id}");

    let (s, v, _) = gw.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(
        (s, v["state"].as_str(), v["total_amount"].as_f64()),
        (StatusCode::OK, Some("held"), Some(80.0))
    );
    for method in [Method::GET, Method::DELETE] {
        let (s, v, _) = gw.call(method, &path, Some(&bob), None).await;
        assert_error(s, &v, 404, "unknown_hold");
    }
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("{path}/extend"),
            Some(&bob),
            Some(json!({"ttl_seconds": 300})),
        )
        .await;
    assert_error(s, &v, 404, "unknown_hold");
    let (s, v, _) = gw
        .call(Method::GET, "/reservations/not-a-uuid", Some(&alice), None)
        .await;
    assert_error(s, &v, 404, "unknown_hold");

    // Extension: within the cap it works; past the cap (30 min from creation) it is refused.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("{path}/extend"),
            Some(&alice),
            Some(json!({"ttl_seconds": 600})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["expires_at"].as_str().unwrap() > hold["expires_at"].as_str().unwrap());
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("{path}/extend"),
            Some(&alice),
            Some(json!({"ttl_seconds": 5})),
        )
        .await;
    assert_error(s, &v, 422, "ttl_out_of_range");

    // Cancel: 204, then the seat is free and the hold reads as released.
    let (s, _, _) = gw.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v, _) = gw.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(v["state"], "released");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("{path}/extend"),
            Some(&alice),
            Some(json!({"ttl_seconds": 120})),
        )
        .await;
    assert_error(s, &v, 409, "hold_not_extendable");
    let (s, _) = gw
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "y", "user_id": "bob", "seat_ids": ["mezz-A-1"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // An expired hold: 410 on extension.
    let short_limits = coordinator::Limits {
        min_ttl_secs: 1,
        ..coordinator::Limits::default()
    };
    let c = support::connect(support::shared_nodes(), short_limits.clone()).await;
    let req = coordinator::hold::HoldRequest::new(
        event.clone(),
        UserId::parse("alice").unwrap(),
        coordinator::ClientReservationId::parse("short").unwrap(),
        vec![coordinator::SeatId::parse("mezz-A-9").unwrap()],
        Some(1),
        &short_limits,
    )
    .unwrap();
    let coordinator::hold::HoldOutcome::Created(short) = c.hold(&req).await.unwrap() else {
        panic!()
    };
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{}/extend", short.id),
            Some(&alice),
            Some(json!({"ttl_seconds": 120})),
        )
        .await;
    assert_error(s, &v, 410, "hold_expired");
    db.drop().await;
}

#[tokio::test]
async fn best_available_sits_the_group_together_and_never_on_a_taken_seat() {
    let (gw, db, event) = setup("best").await;
    // Someone holds the middle of the front row of the orchestra.
    let middle: Vec<String> = (20..=31)
        .step_by(1)
        .take(10)
        .map(|n| format!("orch-A-{n}"))
        .collect();
    let (s, _) = gw
        .hold(
            &event,
            "carol",
            json!({"client_reservation_id": "c", "user_id": "carol", "seat_ids": middle}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut mine = std::collections::HashSet::new();
    for i in 0..6 {
        let (s, v) = gw
            .hold(&event, "dave", json!({"client_reservation_id": format!("d{i}"), "user_id": "dave", "quantity": 4, "section": "orch"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["adjacent"], true);
        let seats: Vec<&str> = v["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(seats.len(), 4);
        // One row, consecutive numbers.
        let parts: Vec<(&str, u32)> = seats
            .iter()
            .map(|s| {
                let mut it = s.rsplitn(2, '-');
                let n = it.next().unwrap().parse().unwrap();
                (it.next().unwrap(), n)
            })
            .collect();
        assert!(parts.iter().all(|(row, _)| *row == parts[0].0), "{seats:?}");
        let mut numbers: Vec<u32> = parts.iter().map(|(_, n)| *n).collect();
        numbers.sort();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{seats:?}");
        for s in &seats {
            assert!(!middle.contains(&s.to_string()), "{s} is carol's");
            assert!(mine.insert(s.to_string()), "{s} picked twice");
        }
    }
    // Replaying a best-available request returns the same hold.
    let (s, v) = gw.hold(&event, "dave", json!({"client_reservation_id": "d0", "user_id": "dave", "quantity": 4, "section": "orch"})).await;
    assert_eq!(
        (s, v["adjacent"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    // The same client id with other parameters is a conflict, not the old hold.
    let (s, v) = gw.hold(&event, "dave", json!({"client_reservation_id": "d0", "user_id": "dave", "quantity": 2, "section": "orch"})).await;
    assert_error(s, &v, 409, "idempotency_conflict");
    // Category filter, and refusals.
    let (s, v) = gw.hold(&event, "erin", json!({"client_reservation_id": "e", "user_id": "erin", "quantity": 2, "category": "economy"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v["seats"][0].as_str().unwrap().starts_with("balc-"));
    let (s, v) = gw.hold(&event, "erin", json!({"client_reservation_id": "e2", "user_id": "erin", "quantity": 2, "section": "pit"})).await;
    assert_error(s, &v, 404, "unknown_section");
    let (s, v) = gw
        .hold(
            &event,
            "erin",
            json!({"client_reservation_id": "e3", "user_id": "erin", "quantity": 11}),
        )
        .await;
    assert_error(s, &v, 422, "too_many_seats");
    db.drop().await;
}

/// A rush of best-available buyers on one gateway: each pick passes over the seats concurrent
/// picks took since the cached seat map was read, so buyers do not all race for the same best
/// window, and nobody waits for a fresh read of the event from Redis (each such read is a
/// seat-map cache miss).
#[tokio::test]
async fn a_rush_of_best_available_buyers_is_seated_from_the_cached_map() {
    let (gw, db, event) = setup("rush").await;
    // The map is built once, before the rush.
    let (s, _, _) = gw
        .call(Method::GET, &format!("/events/{event}/seatmap"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let misses = || {
        gw.app
            .metrics
            .cache_total
            .with_label_values(&["seatmap", "miss"])
            .get()
    };
    let before = misses();
    let buyers = 60;
    let answers = futures::future::join_all((0..buyers).map(|i| {
        let gw = &gw;
        let event = &event;
        async move {
            let user = format!("rush{i}");
            gw.hold(
                event,
                &user,
                json!({"client_reservation_id": "r", "user_id": user, "quantity": 2, "section": "orch"}),
            )
            .await
        }
    }))
    .await;
    let mut seen = std::collections::HashSet::new();
    for (s, v) in &answers {
        assert_eq!(*s, StatusCode::CREATED, "{v}");
        for seat in v["seats"].as_array().unwrap() {
            assert!(
                seen.insert(seat.as_str().unwrap().to_owned()),
                "{seat} twice"
            );
        }
    }
    assert_eq!(seen.len(), buyers * 2);
    let rebuilt = misses() - before;
    assert!(
        rebuilt <= 2,
        "{rebuilt} reads of the whole event for {buyers} picks: retries waited for fresh maps"
    );
    db.drop().await;
}

#[tokio::test]
async fn browsing_is_cacheable_and_paginated() {
    let (gw, db, event) = setup("browse").await;
    let (s, v, h) = gw.call(Method::GET, "/events", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["cache-control"], "public, max-age=30");
    assert!(v["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == event.as_str()));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let r = gw
        .http
        .get(format!("{}/events", gw.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], etag.as_str());
    // A weak validator from a proxy still gets a 304.
    let r = gw
        .http
        .get(format!("{}/events", gw.base))
        .header("if-none-match", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // A second event, then pages of one.
    let second = support::unique_event("browse2");
    catalog::load_demo(&db.pool, &gw.app.coordinator, &second)
        .await
        .unwrap();
    let (_, p1, _) = gw.call(Method::GET, "/events?limit=1", None, None).await;
    assert_eq!(p1["events"].as_array().unwrap().len(), 1);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2, _) = gw
        .call(
            Method::GET,
            &format!("/events?limit=1&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_eq!(p2["events"].as_array().unwrap().len(), 1);
    assert_ne!(p1["events"][0]["id"], p2["events"][0]["id"]);
    assert_eq!(p2["next_cursor"], Value::Null);
    let (_, found, _) = gw
        .call(
            Method::GET,
            "/events?q=demo%20night&venue=demo-theatre&category=concert",
            None,
            None,
        )
        .await;
    assert_eq!(found["events"].as_array().unwrap().len(), 2);
    for bad in [
        "/events?limit=0",
        "/events?limit=x",
        "/events?from=yesterday",
        "/events?cursor=zzz",
        "/events?colour=red",
    ] {
        let (s, v, _) = gw.call(Method::GET, bad, None, None).await;
        assert_error(s, &v, 400, "invalid_query");
    }
    // Text Postgres cannot store (a NUL byte) is the client's mistake, not an outage.
    for bad in ["/events?q=%00", "/events?venue=a%00b"] {
        let (s, v, _) = gw.call(Method::GET, bad, None, None).await;
        assert_error(s, &v, 400, "invalid_input");
    }

    let (s, v, h) = gw
        .call(Method::GET, &format!("/events/{event}"), None, None)
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("on_sale")));
    assert_eq!(v["prices"].as_array().unwrap().len(), 3);
    assert!(h.contains_key("etag"));
    let (s, v, _) = gw.call(Method::GET, "/events/nope", None, None).await;
    assert_error(s, &v, 404, "unknown_event");
    let (s, v, _) = gw.call(Method::GET, "/no/such/route", None, None).await;
    assert_error(s, &v, 404, "not_found");
    db.drop().await;
}

async fn seatmap(gw: &Gw, event: &EventId) -> (Value, String) {
    let (s, v, h) = gw
        .call(Method::GET, &format!("/events/{event}/seatmap"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h["cache-control"], "public, max-age=5");
    (v, h["etag"].to_str().unwrap().to_owned())
}

fn held_seats(map: &Value) -> Vec<String> {
    map["availability"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["held_seats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_seat_map_follows_holds_through_pubsub_across_gateways() {
    let (a, db, event) = setup("smap").await;
    let b = gateway_on(&db).await;
    let (map, etag) = seatmap(&b, &event).await;
    assert_eq!(map["layout"]["sections"].as_array().unwrap().len(), 3);
    assert!(held_seats(&map).is_empty());
    let r = b
        .http
        .get(format!("{}/events/{event}/seatmap", b.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // A hold through gateway A; gateway B's cached map must show it before its 5 s age bound,
    // which only the pub/sub invalidation can explain.
    let (s, hold) = a
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "m", "user_id": "alice", "seat_ids": ["balc-C-3"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let start = Instant::now();
    loop {
        let (map, new_etag) = seatmap(&b, &event).await;
        if held_seats(&map).contains(&"balc-C-3".to_owned()) {
            assert_ne!(new_etag, etag);
            println!(
                "gateway B's seat map showed the hold after {:?}",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "seat map still stale after 4 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Gateways are stateless: B refuses the seat to bob and shows alice her hold; B cancels it.
    let (s, v) = b
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "n", "user_id": "bob", "seat_ids": ["balc-C-3"]}),
        )
        .await;
    assert_error(s, &v, 409, "seats_unavailable");
    let path = format!("/reservations/{}", hold["hold_id"].as_str().unwrap());
    let (s, v, _) = b
        .call(Method::GET, &path, Some(&token("alice", Role::Buyer)), None)
        .await;
    assert_eq!(
        (s, v["seats"].clone()),
        (StatusCode::OK, json!(["balc-C-3"]))
    );
    let (s, _, _) = b
        .call(
            Method::DELETE,
            &path,
            Some(&token("alice", Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "n", "user_id": "bob", "seat_ids": ["balc-C-3"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    db.drop().await;
}

#[tokio::test]
async fn organizers_run_venues_events_prices_sales_and_blocks() {
    let db = db::TestDb::new("org").await;
    let gw = gateway_on(&db).await;
    let org = token("olga", Role::Organizer);
    let buyer = token("bea", Role::Buyer);
    let venue_id = format!("hall-{}", std::process::id());
    let map = catalog::seatmap::theatre(
        &venue_id,
        "Hall",
        &[("front", "Front", "gold", 3), ("back", "Back", "silver", 3)],
        8,
    );
    let map = serde_json::to_value(&map).unwrap();

    let (s, v, _) = gw
        .call(Method::POST, "/venues", Some(&buyer), Some(map.clone()))
        .await;
    assert_error(s, &v, 403, "forbidden");
    // The role is checked before the body is read: a buyer's junk is a 403, not a 415 or 400.
    let r = gw
        .http
        .post(format!("{}/venues", gw.base))
        .bearer_auth(&buyer)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, v, _) = gw
        .call(Method::POST, "/venues", Some(&org), Some(map.clone()))
        .await;
    assert_eq!(
        (s, v["seats"].as_u64()),
        (StatusCode::CREATED, Some(48)),
        "{v}"
    );
    let (s, v, _) = gw
        .call(Method::POST, "/venues", Some(&org), Some(map.clone()))
        .await;
    assert_error(s, &v, 409, "venue_exists");
    let mut broken = map.clone();
    broken["venue"]["id"] = json!("other");
    broken["sections"][0]["rows"][0]["seats"][0]["category"] = json!("platinum");
    let (s, v, _) = gw
        .call(Method::POST, "/venues", Some(&org), Some(broken))
        .await;
    assert_error(s, &v, 422, "invalid_seat_map");
    assert_eq!(
        v["error"]["details"]["problems"][0]["path"],
        "sections[0].rows[0].seats[0].category"
    );

    let event = support::unique_event("org");
    let draft = json!({"id": event, "venue_id": venue_id, "title": "Gala", "category": "theatre",
        "starts_at": "2030-01-01T20:00:00Z", "sale_opens_at": "2026-01-01T10:00:00Z", "prices": {"gold": 9000}});
    let (s, v, _) = gw
        .call(Method::POST, "/events", Some(&org), Some(draft.clone()))
        .await;
    assert_error(s, &v, 422, "invalid_event");
    let mut draft = draft;
    draft["prices"] = json!({"gold": 9000, "silver": 5000});
    let (s, v, _) = gw
        .call(Method::POST, "/events", Some(&org), Some(draft))
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::CREATED, Some("draft")),
        "{v}"
    );
    // A draft is invisible to buyers and cannot be held.
    let (s, v, _) = gw
        .call(Method::GET, &format!("/events/{event}"), None, None)
        .await;
    assert_error(s, &v, 404, "unknown_event");

    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/open"),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("on_sale")),
        "{v}"
    );
    let (s, v, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/prices"),
            Some(&org),
            Some(json!({"prices": {"silver": 4000}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, h) = gw
        .hold(
            &event,
            "bea",
            json!({"client_reservation_id": "1", "user_id": "bea", "seat_ids": ["back-A-1"]}),
        )
        .await;
    assert_eq!(
        (s, h["total_amount"].as_f64()),
        (StatusCode::CREATED, Some(40.0)),
        "new price applies"
    );
    // A later change does not change what an existing hold costs: it keeps its quote.
    let (s, _, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/prices"),
            Some(&org),
            Some(json!({"prices": {"silver": 3000}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, again, _) = gw
        .call(
            Method::GET,
            &format!("/reservations/{}", h["hold_id"].as_str().unwrap()),
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(again["total_amount"].as_f64(), Some(40.0), "{again}");

    // Blocks.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/blocks"),
            Some(&org),
            Some(json!({"seat_ids": ["front-A-1", "front-A-2"], "tag": "press"})),
        )
        .await;
    assert_eq!(
        (s, v["blocked"].as_array().map(|a| a.len())),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/blocks"),
            Some(&org),
            Some(json!({"seat_ids": ["back-A-1"]})),
        )
        .await;
    assert_error(s, &v, 409, "seats_unavailable");
    let (s, v) = gw
        .hold(
            &event,
            "bea",
            json!({"client_reservation_id": "2", "user_id": "bea", "seat_ids": ["front-A-1"]}),
        )
        .await;
    assert_error(s, &v, 409, "seats_unavailable");
    assert_eq!(v["error"]["details"]["unavailable"][0]["state"], "blocked");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/blocks/release"),
            Some(&org),
            Some(json!({"seat_ids": ["front-A-1"]})),
        )
        .await;
    assert_eq!(
        (s, v["released"].clone()),
        (StatusCode::OK, json!(["front-A-1"]))
    );
    // Postgres keeps the blocks Redis has, and only those (the refused back-A-1 is not kept),
    // so a section Redis loses is rebuilt with them.
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT seat_id FROM seat_blocks WHERE event_id = $1 ORDER BY seat_id")
            .bind(event.as_str())
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(kept, vec!["front-A-2".to_owned()]);

    // Freeze stops holds on every gateway (announced); unfreeze restores them.
    let (s, _, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/freeze"),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = gw
        .hold(
            &event,
            "bea",
            json!({"client_reservation_id": "3", "user_id": "bea", "seat_ids": ["front-B-1"]}),
        )
        .await;
    assert_error(s, &v, 409, "event_frozen");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/freeze"),
            Some(&buyer),
            None,
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, _, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/unfreeze"),
            Some(&org),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = gw
        .hold(
            &event,
            "bea",
            json!({"client_reservation_id": "3", "user_id": "bea", "seat_ids": ["front-B-1"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Another organizer cannot touch olga's event; an admin can.
    let otto = token("otto", Role::Organizer);
    for (method, path, body) in [
        (Method::POST, format!("/events/{event}/freeze"), None),
        (
            Method::PUT,
            format!("/events/{event}/prices"),
            Some(json!({"prices": {"gold": 1}})),
        ),
        (
            Method::POST,
            format!("/events/{event}/blocks"),
            Some(json!({"seat_ids": ["front-C-1"]})),
        ),
    ] {
        let (s, v, _) = gw.call(method, &path, Some(&otto), body).await;
        assert_error(s, &v, 403, "not_event_owner");
    }
    let (s, _, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/unfreeze"),
            Some(&token("root", Role::Admin)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = gw
        .call(Method::POST, "/events/nope/open", Some(&org), None)
        .await;
    assert_error(s, &v, 404, "unknown_event");
    db.drop().await;
}

#[tokio::test]
async fn admin_listener_metrics_and_openapi_agree_with_the_router() {
    let (gw, db, event) = setup("adm").await;
    let (_, hold) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "z", "user_id": "alice", "seat_ids": ["orch-T-1"]}),
        )
        .await;
    let id = hold["hold_id"].as_str().unwrap();
    // Admin routes live on the admin listener only, and need the admin role.
    let admin = token("root", Role::Admin);
    let r = gw
        .http
        .get(format!("{}/admin/holds/{id}", gw.admin))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = gw
        .http
        .get(format!("{}/admin/holds/{id}", gw.admin))
        .bearer_auth(token("alice", Role::Buyer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, _, _) = gw
        .call(
            Method::GET,
            &format!("/admin/holds/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let metrics = gw.metrics_text().await;
    for series in [
        "gateway_http_requests_total{route=\"POST /events/{event_id}/reservations\",status=\"201\"}",
        "gateway_holds_total{outcome=\"created\"}",
        "gateway_cache_lookups_total",
        "gateway_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }

    // Each listener's OpenAPI document lists exactly the routes that listener serves.
    let public_doc = document(&gw.http, &gw.base, "/openapi.json").await;
    let admin_doc = document(&gw.http, &gw.admin, "/admin/openapi.json").await;
    for (doc, routes, name) in [
        (&public_doc, gateway::filters::ROUTES, "openapi.json"),
        (
            &admin_doc,
            gateway::filters::ADMIN_ROUTES,
            "openapi-admin.json",
        ),
    ] {
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true)
        );
        let served: std::collections::BTreeSet<(String, String)> = routes
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(operations(doc), served, "{name} and the route table differ");
    }
    // And each route table is what its listener really serves: each route answers with
    // something other than "no such route" (placeholders filled with ids that exist or not).
    let order = uuid::Uuid::new_v4().to_string();
    let concrete = |path: &str| {
        path.replace("{event_id}", event.as_str())
            .replace("{hold_id}", id)
            .replace("{order_id}", &order)
            .replace("{ticket}", &order)
    };
    for (routes, base) in [
        (gateway::filters::ROUTES, &gw.base),
        (gateway::filters::ADMIN_ROUTES, &gw.admin),
    ] {
        for (method, path) in routes {
            let r = gw
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{base}{}", concrete(path)),
                )
                .send()
                .await
                .unwrap();
            let status = r.status();
            // An event stream never ends: its 200 answers that it is routed.
            let streaming = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body: Value = if streaming {
                Value::Null
            } else {
                r.json().await.unwrap_or(Value::Null)
            };
            assert!(
                body["error"]["code"] != "not_found" && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is not routed on {base}: {status} {body}"
            );
        }
    }
    db.drop().await;
}

/// A listener's OpenAPI document.
async fn document(http: &reqwest::Client, base: &str, path: &str) -> Value {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{base}{path}");
    r.json().await.unwrap()
}

/// Every (METHOD, path) a document describes.
fn operations(doc: &Value) -> std::collections::BTreeSet<(String, String)> {
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented
}

/// Fails unless `doc` documents `status` for the operation, with every header it requires.
fn assert_documented(
    doc: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let mut response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which its document does not list"
    );
    if let Some(name) = response["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap();
        response = &doc["components"]["responses"][name];
    }
    for (header, spec) in response["headers"].as_object().into_iter().flatten() {
        if spec["required"] == true {
            assert!(
                headers.contains_key(header.as_str()),
                "{method} {path} answered {status} without {header}"
            );
        }
    }
}

#[tokio::test]
async fn each_listener_serves_its_own_document_naming_its_configured_address() {
    let db = db::TestDb::new("docs").await;
    let gw = gateway_on(&db).await;
    let public = document(&gw.http, &gw.base, "/openapi.json").await;
    let admin = document(&gw.http, &gw.admin, "/admin/openapi.json").await;
    assert_eq!(public["servers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        public["servers"][0]["url"],
        gw.base.as_str(),
        "{}",
        public["servers"]
    );
    assert_eq!(
        admin["servers"][0]["url"],
        gw.admin.as_str(),
        "{}",
        admin["servers"]
    );
    // The public document never advertises the admin listener, its address or its routes.
    let text = public.to_string();
    let admin_port = gw.admin.rsplit(':').next().unwrap();
    assert!(
        !text.contains(&format!(":{admin_port}")),
        "{}",
        public["servers"]
    );
    assert!(!text.contains(":9090") && !text.contains("/admin/") && !text.contains("/metrics"));
    // Nor does the public listener serve the admin document.
    let (s, v, _) = gw
        .call(Method::GET, "/admin/openapi.json", None, None)
        .await;
    assert_error(s, &v, 404, "not_found");

    // Behind a proxy, the configured public URL is the server.
    let proxied = harness::gateway_opts(
        &db,
        harness::Opts {
            public_url: Some("https://tickets.example.com".into()),
            ..harness::Opts::default()
        },
    )
    .await;
    let public = document(&proxied.http, &proxied.base, "/openapi.json").await;
    assert_eq!(public["servers"][0]["url"], "https://tickets.example.com");
    db.drop().await;
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_naming_the_methods_of_the_path() {
    let db = db::TestDb::new("allow").await;
    let gw = gateway_on(&db).await;
    let id = uuid::Uuid::new_v4().to_string();
    for (routes, base) in [
        (gateway::filters::ROUTES, &gw.base),
        (gateway::filters::ADMIN_ROUTES, &gw.admin),
    ] {
        let paths: std::collections::BTreeSet<&str> = routes.iter().map(|(_, p)| *p).collect();
        for path in paths {
            let allowed: std::collections::BTreeSet<&str> = routes
                .iter()
                .filter(|(_, p)| *p == path)
                .map(|(m, _)| *m)
                .collect();
            let concrete = path
                .replace("{event_id}", "e1")
                .replace("{hold_id}", &id)
                .replace("{order_id}", &id)
                .replace("{ticket}", &id);
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
                if allowed.contains(method) {
                    continue;
                }
                let r = gw
                    .http
                    .request(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        format!("{base}{concrete}"),
                    )
                    .bearer_auth(token("root", Role::Admin))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let allow: std::collections::BTreeSet<String> = r
                    .headers()
                    .get("allow")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(
                    (status, allow.iter().map(String::as_str).collect()),
                    (StatusCode::METHOD_NOT_ALLOWED, allowed.clone()),
                    "{method} {base}{path}: {body}"
                );
                if method != "HEAD" {
                    assert_error(status, &body, 405, "method_not_allowed");
                }
            }
        }
    }
    db.drop().await;
}

#[tokio::test]
async fn every_429_is_documented_with_its_retry_after() {
    let db = db::TestDb::new("limited").await;
    let gw = harness::gateway_opts(
        &db,
        harness::Opts {
            rate_limits: settings::RateLimits {
                per_ip_per_sec: 1,
                per_ip_burst: 1,
                per_user_per_sec: 1,
                per_user_burst: 1,
                client_ip_header: None,
            },
            ..harness::Opts::default()
        },
    )
    .await;
    let public = document(&gw.http, &gw.base, "/openapi.json").await;
    let admin = document(&gw.http, &gw.admin, "/admin/openapi.json").await;
    let id = uuid::Uuid::new_v4().to_string();
    let admin_token = token("root", Role::Admin);
    for (doc, routes, base) in [
        (&public, gateway::filters::ROUTES, &gw.base),
        (&admin, gateway::filters::ADMIN_ROUTES, &gw.admin),
    ] {
        for (method, path) in routes {
            let concrete = path
                .replace("{event_id}", "e1")
                .replace("{hold_id}", &id)
                .replace("{order_id}", &id)
                .replace("{ticket}", &id);
            // Twice: the first may still find the bucket full.
            for _ in 0..2 {
                let r = gw
                    .http
                    .request(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        format!("{base}{concrete}"),
                    )
                    .bearer_auth(&admin_token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_documented(doc, method, path, r.status(), r.headers());
            }
        }
    }
    db.drop().await;
}

#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let (gw, db, event) = setup("cursor").await;
    let (s, first, _) = gw.call(Method::GET, "/events?limit=1", None, None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    for query in [
        "cursor=&limit=1",
        "limit=1&cursor=&q=&venue=&category=&from=&to=",
    ] {
        let (s, page, _) = gw
            .call(Method::GET, &format!("/events?{query}"), None, None)
            .await;
        assert_eq!((s, &page), (StatusCode::OK, &first), "{query}");
    }
    // An unknown parameter is still refused, empty or not.
    let (s, v, _) = gw.call(Method::GET, "/events?curser=", None, None).await;
    assert_error(s, &v, 400, "invalid_query");
    // The same rule on the admin listener's audit.
    let mut audits = Vec::new();
    for query in ["", "?seat=&limit="] {
        let r = gw
            .http
            .get(format!("{}/admin/events/{event}/audit{query}", gw.admin))
            .bearer_auth(token("root", Role::Admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "audit{query}");
        audits.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(audits[0], audits[1]);
    db.drop().await;
}

#[tokio::test]
async fn an_integer_may_be_written_with_a_zero_fraction() {
    let (gw, db, event) = setup("fraction").await;
    let (s, hold) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "f", "user_id": "alice", "quantity": 2.0, "ttl_seconds": 300.0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["seats"].as_array().map(Vec::len), Some(2), "{hold}");
    let id = hold["hold_id"].as_str().unwrap();
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{id}/extend"),
            Some(&token("alice", Role::Buyer)),
            Some(json!({"ttl_seconds": 400.0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A fraction is still no integer.
    let (s, v) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "g", "user_id": "alice", "quantity": 2.5}),
        )
        .await;
    assert_error(s, &v, 422, "invalid_body");
    db.drop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_not_a_client_error() {
    let db = db::TestDb::new("down").await;
    let redis = RedisSettings {
        nodes: support::shared_nodes(),
        ..RedisSettings::default()
    };
    let coordinator = Arc::new(support::connect(redis.nodes.clone(), support::test_limits()).await);
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .unwrap();
    let app = gateway::App::new(coordinator, dead, Keys::new(SECRET).unwrap(), &redis)
        .await
        .unwrap();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (public, _, _task) = gateway::serve(app, any, any, std::future::pending()).unwrap();
    let mut gw = gateway_on(&db).await;
    gw.base = format!("http://{public}");
    for path in ["/events", "/events/x", "/readyz"] {
        let (s, v, _) = gw.call(Method::GET, path, None, None).await;
        assert_error(s, &v, 503, "dependency_unavailable");
    }
    let (s, v) = gw
        .hold(
            &support::unique_event("x"),
            "u",
            json!({"client_reservation_id": "c", "user_id": "u", "seat_ids": ["a-1"]}),
        )
        .await;
    assert_error(s, &v, 503, "dependency_unavailable");
    db.drop().await;
}

#[test]
fn compose_file_describes_the_stack() {
    let root = support::repo_root();
    let text = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for wanted in ["postgres", "redis-cluster-init", "gateway", "reconciler"] {
        assert!(
            names.contains(&wanted),
            "compose.yaml lacks {wanted}: {names:?}"
        );
    }
    let redis_nodes = names
        .iter()
        .filter(|n| n.starts_with("redis-") && **n != "redis-cluster-init")
        .count();
    assert_eq!(redis_nodes, 6, "six Redis nodes");
    // Where docker-compose is installed, it must accept the file too.
    for tool in [vec!["docker-compose"], vec!["docker", "compose"]] {
        let works = std::process::Command::new(tool[0])
            .args(&tool[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            continue;
        }
        let out = std::process::Command::new(tool[0])
            .args(&tool[1..])
            .args(["-f", "compose.yaml", "config", "-q"])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool:?} config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{tool:?} config accepted compose.yaml");
        return;
    }
    println!("docker-compose not installed: checked compose.yaml's structure only");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (gw, db, event) = setup("stop").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (public, _, server) = gateway::serve(gw.app.clone(), any, any, async {
        let _ = stopped.await;
    })
    .unwrap();
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            client
                .post(format!("http://{public}/events/{event}/reservations"))
                .bearer_auth(token("sam", Role::Buyer))
                .json(&json!({"client_reservation_id": format!("s{i}"), "user_id": "sam", "seat_ids": [format!("balc-J-{}", i + 1)]}))
                .send()
        })
        .collect();
    let in_flight = tokio::spawn(futures::future::join_all(requests));
    tokio::time::sleep(Duration::from_millis(5)).await;
    stop.send(()).unwrap();
    let results = in_flight.await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    let mut created = 0;
    for r in results {
        match r {
            Ok(r) => {
                assert_eq!(
                    r.status(),
                    StatusCode::CREATED,
                    "an accepted request gets its whole answer"
                );
                created += 1;
            }
            // Only requests that arrived after the listener closed may fail, and only to connect.
            Err(e) => assert!(
                e.is_connect() || e.is_request(),
                "a request was cut mid-way: {e}"
            ),
        }
    }
    let a = gw
        .app
        .coordinator
        .availability(&event)
        .await
        .unwrap()
        .unwrap();
    let held: u64 = a.iter().map(|s| s.held).sum();
    println!("{created} of 20 holds answered before shutdown; {held} seats held");
    assert_eq!(held, created, "every hold made was answered");
    db.drop().await;
}

#[tokio::test]
async fn a_50000_seat_map_is_served_from_the_cache() {
    let db = db::TestDb::new("stadium").await;
    let gw = gateway_on(&db).await;
    let org = token("olga", Role::Organizer);
    let venue = format!("stadium-{}", std::process::id());
    let map = serde_json::to_value(catalog::seatmap::stadium(&venue, "Stadium")).unwrap();
    let started = Instant::now();
    let (s, v, _) = gw
        .call(Method::POST, "/venues", Some(&org), Some(map))
        .await;
    assert_eq!(
        (s, v["seats"].as_u64()),
        (StatusCode::CREATED, Some(50_000)),
        "{v}"
    );
    println!(
        "import of a 50,000-seat venue over HTTP: {:?}",
        started.elapsed()
    );
    let event = support::unique_event("stadium");
    let draft = json!({"id": event, "venue_id": venue, "title": "Final", "category": "sports",
        "starts_at": "2030-01-01T20:00:00Z", "sale_opens_at": "2026-01-01T10:00:00Z",
        "prices": {"club": 30000, "lower": 15000, "upper": 6000}});
    assert_eq!(
        gw.call(Method::POST, "/events", Some(&org), Some(draft))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        gw.call(
            Method::POST,
            &format!("/events/{event}/open"),
            Some(&org),
            None
        )
        .await
        .0,
        StatusCode::OK
    );

    let timed = |label: &'static str| {
        let gw = &gw;
        let event = &event;
        async move {
            let started = Instant::now();
            let r = gw
                .http
                .get(format!("{}/events/{event}/seatmap", gw.base))
                .send()
                .await
                .unwrap();
            let etag = r.headers()["etag"].to_str().unwrap().to_owned();
            let bytes = r.bytes().await.unwrap();
            println!("{label}: {} bytes in {:?}", bytes.len(), started.elapsed());
            (etag, bytes)
        }
    };
    let (etag1, body1) = timed("seat map, cold").await;
    let (etag2, body2) = timed("seat map, cached").await;
    assert_eq!((etag1.clone(), body1.len()), (etag2, body2.len()));
    let parsed: Value = serde_json::from_slice(&body1).unwrap();
    assert_eq!(parsed["layout"]["sections"].as_array().unwrap().len(), 40);
    assert_eq!(parsed["availability"].as_array().unwrap().len(), 40);
    let hits = gw
        .app
        .metrics
        .cache_total
        .with_label_values(&["seatmap", "hit"])
        .get();
    assert!(hits >= 1, "the second request was a cache hit");
    let r = gw
        .http
        .get(format!("{}/events/{event}/seatmap", gw.base))
        .header("if-none-match", etag1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    db.drop().await;
}

#[tokio::test]
async fn extension_past_the_cap_is_a_409_naming_the_cap() {
    let db = db::TestDb::new("cap").await;
    // A 70 s lifetime cap: a 60 s hold can be extended to at most 70 s after its creation.
    let limits = coordinator::Limits {
        max_hold_lifetime_secs: 70,
        ..coordinator::Limits::default()
    };
    let gw = gateway_with(&db, limits).await;
    let event = support::unique_event("cap");
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    let alice = token("alice", Role::Buyer);
    let (s, hold) = gw
        .hold(&event, "alice", json!({"client_reservation_id": "c", "user_id": "alice", "seat_ids": ["orch-A-1"], "ttl_seconds": 60}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let path = format!("/reservations/{}/extend", hold["hold_id"].as_str().unwrap());
    let (s, v, _) = gw
        .call(
            Method::POST,
            &path,
            Some(&alice),
            Some(json!({"ttl_seconds": 90})),
        )
        .await;
    assert_error(s, &v, 409, "extension_past_cap");
    assert_eq!(v["error"]["details"]["cap_at"], hold["cap_at"]);
    let (s, v, _) = gw
        .call(
            Method::POST,
            &path,
            Some(&alice),
            Some(json!({"ttl_seconds": 65})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    db.drop().await;
}
