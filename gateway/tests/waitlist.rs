//! The waiting list (issue 20): 50 buyers wait for a sold-out event; 20 seats come back by
//! expiry, cancel and refund; each is offered, in list order, as a hold for the next buyer while
//! a hammer of ordinary holds on the same seats gets none of them; an offer paid for is taken,
//! the others lapse and pass on. Then what bad input gets. Real gateway, Redis Cluster,
//! Postgres and reconciler (its offer loop).
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::auth::Role;
use harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Every seat of the event's venue, in a fixed order.
async fn all_seats(db: &harness::db::TestDb, event: &coordinator::EventId) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT s.id FROM seats s JOIN events e ON e.venue_id = s.venue_id WHERE e.id = $1
         ORDER BY s.section_id DESC, s.row_label, s.number",
    )
    .bind(event.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s,)| s)
    .collect()
}

async fn block(gw: &Gw, event: &coordinator::EventId, seats: &[String]) {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/blocks"),
            Some(&token("root", Role::Admin)),
            Some(json!({"seat_ids": seats, "tag": "production"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn join(
    gw: &Gw,
    event: &coordinator::EventId,
    user: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/waitlist"),
            Some(&token(user, Role::Buyer)),
            Some(body),
        )
        .await;
    (s, v)
}

/// The users whose entries are in `status`, in list order.
async fn users_in(
    db: &harness::db::TestDb,
    event: &coordinator::EventId,
    status: &str,
) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT user_id FROM waitlist_entries WHERE event_id = $1 AND status::text = $2 ORDER BY position",
    )
    .bind(event.as_str())
    .bind(status)
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(u,)| u)
    .collect()
}

/// `method path` as the buyer `user`, without a body.
async fn as_buyer(gw: &Gw, method: Method, path: &str, user: &str) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(method, path, Some(&token(user, Role::Buyer)), None)
        .await;
    (s, v)
}

fn waiter(i: usize) -> String {
    format!("w{i:02}")
}

fn waiters(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(waiter).collect()
}

/// Ordinary holds, one seat each, on `seats`, as fast as one client goes, until `stop` (or a
/// minute): how many were tried and how many placed.
fn hammer(
    gw: &Gw,
    event: &coordinator::EventId,
    seats: Vec<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    let (http, base, event) = (gw.http.clone(), gw.base.clone(), event.clone());
    let placed = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tried = 0u64;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
            for seat in &seats {
                let user = format!("hammer{}", tried % 5);
                let res = http
                    .post(format!("{base}/events/{event}/reservations"))
                    .bearer_auth(token(&user, Role::Buyer))
                    .json(
                        &json!({"client_reservation_id": format!("h{tried}"), "user_id": user,
                        "seat_ids": [seat], "ttl_seconds": 60}),
                    )
                    .send()
                    .await
                    .unwrap();
                tried += 1;
                if res.status() == StatusCode::CREATED {
                    placed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        (tried, placed.load(Ordering::Relaxed))
    })
}

#[tokio::test]
async fn returned_seats_go_to_the_waiting_list_in_order_never_to_the_open_sale() {
    let (gw, db, event) = setup_opts(
        "wl_offers",
        Opts {
            limits: coordinator::Limits {
                min_ttl_secs: 1,
                ..coordinator::Limits::default()
            },
            waitlist_offer_ttl: Duration::from_secs(8),
            ..Opts::default()
        },
    )
    .await;
    let seats = all_seats(&db, &event).await;
    let (kept, rest) = seats.split_at(20);
    let kept = kept.to_vec();
    block(&gw, &event, rest).await;
    // Seats are for sale: nobody joins a list yet.
    let (s, v) = join(&gw, &event, "early", json!({"quantity": 1})).await;
    assert_error(s, &v, 409, "seats_available");

    // The last 20 seats go: 8 in a short hold (they will expire), 6 in a hold that will be
    // cancelled, 6 bought (to be refunded).
    let short = hold_seats(&gw, &event, "early-a", &strs(&kept[..8]), 4).await;
    let cancel = hold_seats(&gw, &event, "early-b", &strs(&kept[8..14]), 300).await;
    let bought = hold_seats(&gw, &event, "early-c", &strs(&kept[14..]), 300).await;
    let (s, order) = commit(&gw, "early-c", &bought, "k-early-c", "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{order}");

    // Sold out: 50 buyers join, in order.
    let mut entries = Vec::new();
    for i in 0..50 {
        let (s, v) = join(&gw, &event, &waiter(i), json!({"quantity": 1})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["status"].as_str(), v["ahead"].as_i64()),
            (Some("waiting"), Some(i as i64)),
            "{v}"
        );
        entries.push(v["id"].as_str().unwrap().to_owned());
    }
    let (s, again) = join(&gw, &event, &waiter(0), json!({"quantity": 1})).await;
    assert_eq!(
        (s, again["id"].as_str()),
        (StatusCode::OK, Some(entries[0].as_str()))
    );

    let stop = Arc::new(AtomicBool::new(false));
    let hammering = hammer(&gw, &event, kept.clone(), stop.clone());
    // The seats come back: a cancel and a refund now, the short hold's expiry in a moment.
    let (s, v) = as_buyer(
        &gw,
        Method::DELETE,
        &format!("/reservations/{cancel}"),
        "early-b",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let res = gw
        .http
        .post(format!(
            "{}/admin/orders/{}/refund",
            gw.admin,
            order["order_id"].as_str().unwrap()
        ))
        .bearer_auth(token("root", Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!short.is_empty());

    // Each of the 20 seats is offered to the first 20 buyers, in list order, and to nobody else.
    eventually(
        Duration::from_secs(30),
        "20 offers to the first 20 buyers",
        || async { (users_in(&db, &event, "offered").await == waiters(0..20)).then_some(()) },
    )
    .await;
    let (s, first) = as_buyer(
        &gw,
        Method::GET,
        &format!("/events/{event}/waitlist/{}", entries[0]),
        &waiter(0),
    )
    .await;
    assert_eq!(
        (s, first["status"].as_str()),
        (StatusCode::OK, Some("offered")),
        "{first}"
    );
    assert_eq!(first["seats"].as_array().unwrap().len(), 1, "{first}");
    let offer_hold = first["hold_id"].as_str().unwrap().to_owned();
    let (s, hold) = as_buyer(
        &gw,
        Method::GET,
        &format!("/reservations/{offer_hold}"),
        &waiter(0),
    )
    .await;
    assert_eq!(
        (s, hold["state"].as_str()),
        (StatusCode::OK, Some("held")),
        "{hold}"
    );
    let offered_seats: std::collections::BTreeSet<String> = sqlx::query_as::<_, (Vec<String>,)>(
        "SELECT seats FROM waitlist_entries WHERE event_id = $1 AND status = 'offered'",
    )
    .bind(event.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .flat_map(|(s,)| s)
    .collect();
    assert_eq!(
        offered_seats,
        kept.iter().cloned().collect(),
        "each returned seat offered once"
    );
    let (_, avail, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/availability"),
            None,
            None,
        )
        .await;
    assert_eq!(avail["free"].as_u64(), Some(0), "{avail}");

    // The first buyer pays for the offer as for any hold; the other 19 offers lapse and pass on
    // to the next 19 buyers.
    let (s, paid) = commit(&gw, &waiter(0), &offer_hold, "k-w00", "tok_visa").await;
    assert_eq!(
        (s, paid["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{paid}"
    );
    eventually(
        Duration::from_secs(40),
        "lapsed offers passed on",
        || async {
            let done = users_in(&db, &event, "taken").await == waiters(0..1)
                && users_in(&db, &event, "lapsed").await == waiters(1..20)
                && users_in(&db, &event, "offered").await == waiters(20..39);
            done.then_some(())
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (tried, placed) = hammering.await.unwrap();
    assert!(tried > 100, "the hammer ran ({tried} holds)");
    assert_eq!(placed, 0, "the open sale took a seat the list was owed");
    let (_, last) = as_buyer(
        &gw,
        Method::GET,
        &format!("/events/{event}/waitlist/{}", entries[49]),
        &waiter(49),
    )
    .await;
    assert_eq!(
        (last["status"].as_str(), last["ahead"].as_i64()),
        (Some("waiting"), Some(10)),
        "{last}"
    );
    // Every setting aside is in the audit trail.
    eventually(Duration::from_secs(10), "set-asides audited", || async {
        (count(&db, &format!("SELECT count(*) FROM seat_audit WHERE event_id = '{event}' AND action = 'reserved'")).await >= 20)
            .then_some(())
    })
    .await;
    let m = gw.reconciler_metrics();
    assert!(
        m.waitlist_offers_total
            .with_label_values(&["offered"])
            .get()
            >= 39
    );
    assert!(m.waitlist_offers_total.with_label_values(&["lapsed"]).get() >= 19);
    assert_books_balance(&gw, &db).await;
}

fn strs(seats: &[String]) -> Vec<&str> {
    seats.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn joining_is_for_what_is_sold_out_and_bad_input_changes_nothing() {
    let (gw, db, event) = setup("wl_input").await;
    let seats = all_seats(&db, &event).await;
    let premium: Vec<String> = sqlx::query_as::<_, (String,)>(
        "SELECT s.id FROM seats s JOIN events e ON e.venue_id = s.venue_id
          WHERE e.id = $1 AND s.category = 'premium' ORDER BY s.id LIMIT 1",
    )
    .bind(event.as_str())
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s,)| s)
    .collect();
    // Everything but one premium seat is gone.
    let rest: Vec<String> = seats
        .iter()
        .filter(|s| **s != premium[0])
        .cloned()
        .collect();
    block(&gw, &event, &rest).await;
    let entries = "SELECT count(*) FROM waitlist_entries";

    for (body, status, code) in [
        (json!({"quantity": 0}), 422, "invalid_field"),
        (json!({"quantity": 11}), 422, "invalid_field"),
        (
            json!({"quantity": 1, "categories": ["nope"]}),
            422,
            "invalid_field",
        ),
        (
            json!({"quantity": 1, "categories": ["premium"]}),
            409,
            "seats_available",
        ),
        (json!({"quantity": 1}), 409, "seats_available"),
    ] {
        let (s, v) = join(&gw, &event, "ana", body.clone()).await;
        assert_error(s, &v, status, code);
        assert_eq!(count(&db, entries).await, 0, "{body}");
    }
    let (s, v) = join(&gw, &event, "ana", json!({"quantity": "two"})).await;
    assert!(
        s.is_client_error() && v["error"]["code"].is_string(),
        "{s} {v}"
    );
    let (s, v) = join(&gw, &event, "ana", json!({"quantity": 1, "extra": true})).await;
    assert!(
        s.is_client_error() && v["error"]["code"].is_string(),
        "{s} {v}"
    );
    let (s, v, _) = gw
        .call(
            Method::POST,
            "/events/no-such-event/waitlist",
            Some(&token("ana", Role::Buyer)),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_error(s, &v, 404, "unknown_event");
    let (s, _, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/waitlist"),
            None,
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/waitlist"),
            Some(&token("g", Role::Gate)),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    assert_eq!(count(&db, entries).await, 0);

    // Standard seats are sold out: that list takes her.
    let (s, entry) = join(
        &gw,
        &event,
        "ana",
        json!({"quantity": 2, "categories": ["standard"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{entry}");
    let id = entry["id"].as_str().unwrap();
    let path = format!("/events/{event}/waitlist/{id}");
    let (s, v) = as_buyer(&gw, Method::GET, &path, "bob").await;
    assert_error(s, &v, 404, "unknown_waitlist_entry");
    let (s, v) = as_buyer(
        &gw,
        Method::GET,
        &format!("/events/{event}/waitlist/not-a-uuid"),
        "ana",
    )
    .await;
    assert_error(s, &v, 404, "unknown_waitlist_entry");
    let (s, v) = as_buyer(&gw, Method::DELETE, &path, "bob").await;
    assert_error(s, &v, 404, "unknown_waitlist_entry");
    let (s, v) = as_buyer(&gw, Method::DELETE, &path, "ana").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("left")),
        "{v}"
    );
    let (s, v) = as_buyer(&gw, Method::DELETE, &path, "ana").await;
    assert_error(s, &v, 409, "waitlist_entry_closed");
    assert_eq!(count(&db, entries).await, 1);
}

/// The status of `user`'s latest entry, with its offer's hold and seats.
async fn entry_of(
    db: &harness::db::TestDb,
    event: &coordinator::EventId,
    user: &str,
) -> (String, Option<uuid::Uuid>, Vec<String>, bool) {
    sqlx::query_as(
        "SELECT status::text, hold_id, seats, offer_expires_at IS NOT NULL FROM waitlist_entries
          WHERE event_id = $1 AND user_id = $2 ORDER BY position DESC LIMIT 1",
    )
    .bind(event.as_str())
    .bind(user)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// Waits until `user`'s entry holds a confirmed offer of exactly `seats`.
async fn offered(
    db: &harness::db::TestDb,
    event: &coordinator::EventId,
    user: &str,
    seats: &[String],
    what: &str,
) {
    eventually(Duration::from_secs(20), what, || async {
        let (status, _, got, confirmed) = entry_of(db, event, user).await;
        (status == "offered" && confirmed && got == seats).then_some(())
    })
    .await;
}

/// `user` leaves the waiting list (their entry, found in Postgres): answered 200 `left`.
async fn leave(gw: &Gw, db: &harness::db::TestDb, event: &coordinator::EventId, user: &str) {
    let (_, id): (String, uuid::Uuid) = sqlx::query_as(
        "SELECT status::text, id FROM waitlist_entries WHERE event_id = $1 AND user_id = $2",
    )
    .bind(event.as_str())
    .bind(user)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let (s, v) = as_buyer(
        gw,
        Method::DELETE,
        &format!("/events/{event}/waitlist/{id}"),
        user,
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("left")),
        "{v}"
    );
}

async fn release(gw: &Gw, user: &str, hold: &str) {
    let (s, v) = as_buyer(gw, Method::DELETE, &format!("/reservations/{hold}"), user).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
}

#[tokio::test]
async fn ticket_limits_leavers_and_a_stopped_pass_never_strand_a_seat_or_an_entry() {
    let (gw, db, event) = setup_opts(
        "wl_edges",
        Opts {
            waitlist_offer_ttl: Duration::from_secs(120),
            ..Opts::default()
        },
    )
    .await;
    let seats = all_seats(&db, &event).await;
    let (kept, rest) = seats.split_at(4);
    block(&gw, &event, rest).await;
    // Sold out: "cap" holds two seats, "x" the other two; then the event's limit becomes 2.
    hold_seats(&gw, &event, "cap", &strs(&kept[..2]), 300).await;
    let x2 = hold_seats(&gw, &event, "x", &strs(&kept[2..3]), 300).await;
    let x3 = hold_seats(&gw, &event, "x", &strs(&kept[3..4]), 300).await;
    sqlx::query("UPDATE events SET max_tickets_per_buyer = 2 WHERE id = $1")
        .bind(event.as_str())
        .execute(&db.pool)
        .await
        .unwrap();
    for user in ["cap", "leaver", "next"] {
        let (s, v) = join(&gw, &event, user, json!({"quantity": 1})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    // A seat comes back. "cap" is first, but an offer would take them past the limit: it
    // lapses, and the seat goes to the next in line.
    release(&gw, "x", &x2).await;
    offered(
        &db,
        &event,
        "leaver",
        &kept[2..3],
        "the offer passes over cap",
    )
    .await;
    assert_eq!(entry_of(&db, &event, "cap").await.0, "lapsed");

    // "leaver" leaves with the offer open: its hold ends and "next" gets the seat.
    leave(&gw, &db, &event, "leaver").await;
    offered(
        &db,
        &event,
        "next",
        &kept[2..3],
        "the offer passes on to next",
    )
    .await;

    // "next" leaves too: nobody waits, so the seat goes back to the open sale at once (before
    // any pass), not held aside for a list that is empty.
    leave(&gw, &db, &event, "next").await;
    let open = hold_seats(&gw, &event, "open", &strs(&kept[2..3]), 300).await;
    assert!(!open.is_empty());

    // A pass that wrote an offer and stopped before holding it: the next pass puts the entry
    // back in line and offers it the next seat that comes back, with the same hold id.
    let (s, v) = join(&gw, &event, "late", json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let late_id = uuid::Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    let derived = coordinator::HoldId::derive(
        &event,
        &coordinator::UserId::parse("late").unwrap(),
        &coordinator::ClientReservationId::parse(&format!("waitlist-{}", late_id.simple()))
            .unwrap(),
    );
    let derived = uuid::Uuid::parse_str(&derived.to_string()).unwrap();
    sqlx::query(
        "UPDATE waitlist_entries SET status = 'offered', hold_id = $2, seats = $3,
                offered_at = now() - interval '10 seconds', offer_expires_at = NULL
          WHERE id = $1",
    )
    .bind(late_id)
    .bind(derived)
    .bind(&kept[3..4])
    .execute(&db.pool)
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "the unconfirmed offer is put back in line",
        || async { (entry_of(&db, &event, "late").await.0 == "waiting").then_some(()) },
    )
    .await;
    release(&gw, "x", &x3).await;
    eventually(Duration::from_secs(20), "late gets the seat", || async {
        let (status, hold, seats, confirmed) = entry_of(&db, &event, "late").await;
        (status == "offered" && confirmed && seats == kept[3..4] && hold == Some(derived))
            .then_some(())
    })
    .await;
    let (s, hold) = as_buyer(
        &gw,
        Method::GET,
        &format!("/reservations/{derived}"),
        "late",
    )
    .await;
    assert_eq!(
        (s, hold["state"].as_str()),
        (StatusCode::OK, Some("held")),
        "{hold}"
    );
    assert_books_balance(&gw, &db).await;
}
