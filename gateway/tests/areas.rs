//! General-admission areas over HTTP: a venue with a standing floor, holds by quantity, bad
//! requests refused with the field named and nothing written, a sold-out floor told what is
//! left, and a hold of places checked out like seats (Postgres sells each place once).
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use harness::*;
use reqwest::StatusCode;
use serde_json::json;

const FLOOR: u32 = 6;

#[tokio::test]
async fn a_floor_is_held_by_quantity_bad_requests_change_nothing_and_places_sell_once() {
    let db = db::TestDb::new("areas").await;
    let gw = gateway_on(&db).await;
    let floor = catalog::seatmap::Area {
        id: "floor".into(),
        name: "Standing floor".into(),
        capacity: FLOOR,
        category: "economy".into(),
        shards: Some(2),
    };
    let (event, _venue) =
        theatre_event(&db, "areas", vec![floor], -chrono::Duration::minutes(1)).await;
    catalog::open_sales(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    let held = || async {
        gw.app
            .coordinator
            .availability(&event)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .map(|s| s.held)
            .sum::<u64>()
    };
    let body = |client: &str, extra: serde_json::Value| {
        let user = if client == "f2" {
            "fan2"
        } else if client == "f3" {
            "fan3"
        } else {
            "fan"
        };
        let mut b = json!({"client_reservation_id": client, "user_id": user});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };

    // Bad requests: 422 naming the field, nothing held.
    for (extra, field) in [
        (json!({"area": "balcony", "quantity": 2}), "area"),
        (json!({"area": "floor", "quantity": 4}), "quantity"),
        (json!({"area": "floor", "quantity": 0}), "quantity"),
        (json!({"area": "floor"}), "quantity"),
        (
            json!({"area": "floor", "quantity": 1, "seat_ids": ["A-1"]}),
            "seat_ids",
        ),
        (
            json!({"area": "floor", "quantity": 1, "section": "orch"}),
            "section",
        ),
    ] {
        let (s, v) = gw.hold(&event, "fan", body("bad", extra.clone())).await;
        assert_error(s, &v, 422, "invalid_field");
        assert_eq!(v["error"]["details"]["field"], field, "{extra}: {v}");
    }
    assert_eq!(held().await, 0, "a refused request holds nothing");

    // A hold by quantity: places of the floor, priced by its category.
    let (s, first) = gw
        .hold(
            &event,
            "fan",
            body("f1", json!({"area": "floor", "quantity": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let places = first["seats"].as_array().unwrap();
    assert_eq!(places.len(), 3);
    assert!(places
        .iter()
        .all(|p| p.as_str().unwrap().starts_with("ga.floor.")));
    assert_eq!(first["total_amount"].as_f64(), Some(135.0), "{first}");
    // The same request again: the same hold.
    let (s, again) = gw
        .hold(
            &event,
            "fan",
            body("f1", json!({"area": "floor", "quantity": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["hold_id"], first["hold_id"]);

    // The other shard has 3; then the floor is sold out: 409 with what is left.
    let (s, v) = gw
        .hold(
            &event,
            "fan2",
            body("f2", json!({"area": "floor", "quantity": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = gw
        .hold(
            &event,
            "fan3",
            body("f3", json!({"area": "floor", "quantity": 1})),
        )
        .await;
    assert_error(s, &v, 409, "not_enough_seats");
    assert_eq!(v["error"]["details"]["free"], 0, "{v}");
    assert_eq!(held().await, FLOOR as u64);

    // Places check out like seats.
    let hold = first["hold_id"].as_str().unwrap();
    let (s, v) = commit(&gw, "fan", hold, "k-floor", "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM sold_seats WHERE event_id = '{event}' AND live AND seat_id LIKE 'ga.floor.%'"
            )
        )
        .await,
        3
    );
}
