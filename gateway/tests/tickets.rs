//! After the sale (issue 20): tickets from a paid order, gate check-in online (many gates at
//! once) and offline (uploaded batches and their doubles), refunds revoking, transfers
//! re-issuing. Real gateway, Redis Cluster, Postgres and durable writer.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use gateway::auth::Role;
use harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `n` seats of the event's venue, in a fixed order (section, row, number).
async fn seats_of(db: &harness::db::TestDb, event: &coordinator::EventId, n: i64) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT s.id FROM seats s JOIN events e ON e.venue_id = s.venue_id WHERE e.id = $1
         ORDER BY s.section_id, s.row_label, s.number LIMIT $2",
    )
    .bind(event.as_str())
    .bind(n)
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s,)| s)
    .collect()
}

/// Holds and pays for `seats` as `user`: the paid order's id.
async fn buy(gw: &Gw, event: &coordinator::EventId, user: &str, seats: &[String]) -> String {
    let client_id = format!("t-{}", uuid::Uuid::new_v4().simple());
    let (s, v) = gw
        .hold(
            event,
            user,
            json!({"client_reservation_id": client_id, "user_id": user, "seat_ids": seats, "ttl_seconds": 300}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let hold = v["hold_id"].as_str().unwrap().to_owned();
    let (s, v) = commit(gw, user, &hold, &format!("k-{client_id}"), "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "paid", "{v}");
    v["order_id"].as_str().unwrap().to_owned()
}

/// The order's tickets as its buyer sees them.
async fn tickets_of(gw: &Gw, user: &str, order: &str) -> Vec<Value> {
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order}/tickets"),
            Some(&token(user, Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["tickets"].as_array().unwrap().clone()
}

async fn scan(gw: &Gw, event: &coordinator::EventId, gate_token: &str, payload: &str) -> Value {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins"),
            Some(gate_token),
            Some(json!({"payload": payload})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn payload(ticket: &Value) -> String {
    ticket["payload"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_paid_order_becomes_tickets_that_open_the_gate_once() {
    let (gw, db, event) = setup("tix_flow").await;
    let seats = seats_of(&db, &event, 2).await;
    let order = buy(&gw, &event, "alice", &seats).await;

    let tickets = tickets_of(&gw, "alice", &order).await;
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    let mut seen: Vec<&str> = tickets
        .iter()
        .map(|t| t["seat_id"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    let mut want: Vec<&str> = seats.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    for t in &tickets {
        assert_eq!(t["status"], "valid");
        assert_eq!(t["holder"], "alice");
        let claims = gw.app.tickets.verify(&payload(t)).unwrap();
        assert_eq!(claims.ticket.to_string(), t["ticket_id"].as_str().unwrap());
        assert_eq!(claims.event, event.as_str());
    }
    // Another buyer's order is unknown to them; so is its QR code.
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order}/tickets"),
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 404, "unknown_order");
    let ticket = tickets[0]["ticket_id"].as_str().unwrap();
    let svg = gw
        .http
        .get(format!("{}/tickets/{ticket}.svg", gw.base))
        .bearer_auth(token("alice", Role::Buyer))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), StatusCode::OK);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/tickets/{ticket}.svg"),
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 404, "unknown_ticket");
    // The order on one printable page.
    let pdf = gw
        .http
        .get(format!("{}/orders/{order}/tickets.pdf", gw.base))
        .bearer_auth(token("alice", Role::Buyer))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order}/tickets.pdf"),
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 404, "unknown_order");

    // Only a gate checks in; a gate does nothing else.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins"),
            Some(&token("alice", Role::Buyer)),
            Some(json!({"payload": payload(&tickets[0])})),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins"),
            Some(&token("org", Role::Admin)),
            Some(json!({"payload": payload(&tickets[0])})),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let gate = token("gate-1", Role::Gate);
    let (s, v, _) = gw
        .call(Method::GET, &format!("/orders/{order}"), Some(&gate), None)
        .await;
    assert_error(s, &v, 403, "forbidden");

    let v = scan(&gw, &event, &gate, &payload(&tickets[0])).await;
    assert_eq!(v["verdict"], "admitted", "{v}");
    assert_eq!(v["seat_id"], tickets[0]["seat_id"]);
    let v = scan(
        &gw,
        &event,
        &token("gate-2", Role::Gate),
        &payload(&tickets[0]),
    )
    .await;
    assert_eq!(v["verdict"], "already_used", "{v}");
    assert_eq!(v["first"]["gate"], "gate-1", "{v}");
    assert!(v["first"]["at"].is_string(), "{v}");

    // Not ours, tampered, another event's: verdicts, not errors.
    let v = scan(&gw, &event, &gate, "https://example.com/not-a-ticket").await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid"), Some("malformed")),
        "{v}"
    );
    let foreign = orders::tickets::TicketKeys::new(&[1u8; 32], "jwt-derived").unwrap();
    let forged = foreign.payload(
        uuid::Uuid::parse_str(ticket).unwrap(),
        event.as_str(),
        &seats[0],
        "alice",
    );
    let v = scan(&gw, &event, &gate, &forged).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid"), Some("bad_signature")),
        "{v}"
    );
    let elsewhere = gw
        .app
        .tickets
        .payload(uuid::Uuid::new_v4(), "another-show", "A-1", "alice");
    let v = scan(&gw, &event, &gate, &elsewhere).await;
    assert_eq!(
        (v["verdict"].as_str(), v["ticket_event"].as_str()),
        (Some("wrong_event"), Some("another-show")),
        "{v}"
    );
    let unissued = gw
        .app
        .tickets
        .payload(uuid::Uuid::new_v4(), event.as_str(), "A-1", "alice");
    let v = scan(&gw, &event, &gate, &unissued).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("invalid"), Some("unknown_ticket")),
        "{v}"
    );
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins"),
            Some(&gate),
            Some(json!({"payload": 5})),
        )
        .await;
    assert_error(s, &v, 422, "invalid_body");
    let (s, v, _) = gw
        .call(
            Method::POST,
            "/events/no-such-event/checkins",
            Some(&gate),
            Some(json!({"payload": "x"})),
        )
        .await;
    assert_error(s, &v, 404, "unknown_event");

    // The kit, the organizer's figures, the metrics, the audit log.
    let (s, kit, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/checkin-kit"),
            Some(&gate),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{kit}");
    assert_eq!(kit["keys"][0]["kid"], "jwt-derived");
    assert_eq!(kit["keys"][0]["alg"], "Ed25519");
    assert_eq!(kit["revoked"], json!([]));
    // The one ticket let in is in the kit, so a gate that goes offline refuses it too.
    let admitted = kit["admitted"]
        .as_array()
        .unwrap_or_else(|| panic!("{kit}"));
    assert_eq!(admitted.len(), 1, "{kit}");
    assert_eq!(admitted[0]["ticket_id"], json!(ticket), "{kit}");
    assert_eq!(admitted[0]["gate"], "gate-1", "{kit}");
    assert!(admitted[0]["at"].as_str().is_some(), "{kit}");
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/checkins"),
            Some(&token("root", Role::Admin)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["checkins"]["sold"], 2, "{v}");
    assert_eq!(v["checkins"]["admitted"], 1, "{v}");
    assert_eq!(v["checkins"]["doubles"], 1, "{v}");
    assert_eq!(
        v["checkins"]["by_gate"],
        json!([{"gate": "gate-1", "admitted": 1}])
    );
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/checkins"),
            Some(&gate),
            None,
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let metrics = gw.metrics_text().await;
    for line in [
        r#"gateway_checkins_total{gate="gate-1",mode="online",verdict="admitted"} 1"#,
        r#"gateway_checkins_total{gate="gate-2",mode="online",verdict="already_used"} 1"#,
        r#"gateway_checkins_total{gate="gate-1",mode="online",verdict="invalid"} 3"#,
        r#"gateway_checkins_total{gate="gate-1",mode="online",verdict="wrong_event"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    let audit = count(
        &db,
        &format!(
            "SELECT count(*) FROM seat_audit WHERE event_id = '{event}' AND action IN ('ticket_issued', 'checked_in')"
        ),
    )
    .await;
    assert_eq!(audit, 3, "two issued, one admitted");
}

#[tokio::test]
async fn a_refund_revokes_the_tickets() {
    let (gw, db, event) = setup("tix_refund").await;
    let seats = seats_of(&db, &event, 2).await;
    let order = buy(&gw, &event, "alice", &seats).await;
    let tickets = tickets_of(&gw, "alice", &order).await;
    let res = gw
        .http
        .post(format!("{}/admin/orders/{order}/refund", gw.admin))
        .bearer_auth(token("root", Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let gate = token("gate-1", Role::Gate);
    for t in &tickets {
        let v = scan(&gw, &event, &gate, &payload(t)).await;
        assert_eq!(
            (v["verdict"].as_str(), v["reason"].as_str()),
            (Some("revoked"), Some("refunded")),
            "{v}"
        );
    }
    let after = tickets_of(&gw, "alice", &order).await;
    assert!(
        after
            .iter()
            .all(|t| t["status"] == "refunded" && t.get("payload").is_none()),
        "{after:?}"
    );
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/tickets/{}.svg", tickets[0]["ticket_id"].as_str().unwrap()),
            Some(&token("alice", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 409, "ticket_revoked");
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{order}/tickets.pdf"),
            Some(&token("alice", Role::Buyer)),
            None,
        )
        .await;
    assert_error(s, &v, 409, "no_valid_tickets");
    let (_, kit, _) = gw
        .call(
            Method::GET,
            &format!("/events/{event}/checkin-kit"),
            Some(&gate),
            None,
        )
        .await;
    let revoked: BTreeSet<&str> = kit["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let issued: BTreeSet<&str> = tickets
        .iter()
        .map(|t| t["ticket_id"].as_str().unwrap())
        .collect();
    assert_eq!(revoked, issued);
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM seat_audit WHERE event_id = '{event}' AND action = 'ticket_revoked'")).await,
        2
    );
    // The seats sell again, with new tickets.
    let again = buy(&gw, &event, "bob", &seats).await;
    let new = tickets_of(&gw, "bob", &again).await;
    let v = scan(&gw, &event, &gate, &payload(&new[0])).await;
    assert_eq!(v["verdict"], "admitted", "{v}");
}

#[tokio::test]
async fn a_transfer_revokes_the_old_payload_and_admits_the_new() {
    let (gw, db, event) = setup("tix_transfer").await;
    let seats = seats_of(&db, &event, 2).await;
    let order = buy(&gw, &event, "alice", &seats).await;
    let tickets = tickets_of(&gw, "alice", &order).await;
    let id = tickets[0]["ticket_id"].as_str().unwrap();
    let alice = token("alice", Role::Buyer);
    let transfer = |to: &str| json!({"to": to});
    let path = format!("/tickets/{id}/transfer");

    let (s, v, _) = gw
        .call(Method::POST, &path, Some(&alice), Some(transfer("alice")))
        .await;
    assert_error(s, &v, 409, "transfer_to_self");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &path,
            Some(&token("bob", Role::Buyer)),
            Some(transfer("carol")),
        )
        .await;
    assert_error(s, &v, 404, "unknown_ticket");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &path,
            Some(&alice),
            Some(transfer("not valid!")),
        )
        .await;
    assert_error(s, &v, 422, "invalid_field");

    let (s, v, _) = gw
        .call(Method::POST, &path, Some(&alice), Some(transfer("bob")))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let new_id = v["ticket"]["ticket_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(v["ticket"]["holder"], "bob");
    assert!(
        v["ticket"].get("payload").is_none(),
        "the old holder never sees the new payload"
    );

    let (s, v, _) = gw
        .call(Method::POST, &path, Some(&alice), Some(transfer("carol")))
        .await;
    assert_error(s, &v, 409, "ticket_revoked");
    let gate = token("gate-1", Role::Gate);
    let v = scan(&gw, &event, &gate, &payload(&tickets[0])).await;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("revoked"), Some("transferred")),
        "{v}"
    );

    let (s, held, _) = gw
        .call(
            Method::GET,
            "/tickets",
            Some(&token("bob", Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{held}");
    let bobs = held["tickets"].as_array().unwrap();
    assert_eq!(bobs.len(), 1, "{held}");
    assert_eq!(bobs[0]["ticket_id"], new_id.as_str());
    let v = scan(&gw, &event, &gate, &payload(&bobs[0])).await;
    assert_eq!(
        (v["verdict"].as_str(), v["holder"].as_str()),
        (Some("admitted"), Some("bob")),
        "{v}"
    );
    // Used: it stays with whoever came in.
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/tickets/{new_id}/transfer"),
            Some(&token("bob", Role::Buyer)),
            Some(transfer("carol")),
        )
        .await;
    assert_error(s, &v, 409, "ticket_used");
    // Alice's order shows where the seat went; her other ticket is still hers.
    let after = tickets_of(&gw, "alice", &order).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(
        after
            .iter()
            .filter(|t| t["status"] == "transferred")
            .count(),
        1
    );
    assert_eq!(
        after.iter().filter(|t| t.get("payload").is_some()).count(),
        1,
        "only alice's own valid ticket"
    );
    // Two transfers of her other ticket at once: one happens, the other finds it revoked.
    let other = tickets[1]["ticket_id"].as_str().unwrap();
    let other_path = format!("/tickets/{other}/transfer");
    let (a, b) = tokio::join!(
        gw.call(
            Method::POST,
            &other_path,
            Some(&alice),
            Some(transfer("carol"))
        ),
        gw.call(
            Method::POST,
            &other_path,
            Some(&alice),
            Some(transfer("dave"))
        ),
    );
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.1, b.1);
    let valid = count(
        &db,
        &format!(
            "SELECT count(*) FROM tickets WHERE event_id = '{event}' AND seat_id = '{}' AND revoked_at IS NULL",
            tickets[1]["seat_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(valid, 1, "one valid ticket per seat");
    let actors = count(
        &db,
        &format!(
            "SELECT count(*) FROM seat_audit WHERE event_id = '{event}' AND actor = 'transfer:alice->bob'
             AND action IN ('ticket_revoked', 'ticket_issued')"
        ),
    )
    .await;
    assert_eq!(actors, 2);
}

/// Buys `n` seats in holds of 10 spread over buyers; every ticket's payload.
async fn buy_many(
    gw: &Gw,
    db: &harness::db::TestDb,
    event: &coordinator::EventId,
    n: i64,
) -> Vec<Value> {
    let seats = seats_of(db, event, n).await;
    assert_eq!(seats.len() as i64, n);
    let groups: Vec<(String, Vec<String>)> = seats
        .chunks(10)
        .enumerate()
        .map(|(i, c)| (format!("buyer-{}", i % 10), c.to_vec()))
        .collect();
    let mut tickets = Vec::new();
    for wave in groups.chunks(10) {
        let orders = futures::future::join_all(wave.iter().map(|(user, seats)| async move {
            let order = buy(gw, event, user, seats).await;
            tickets_of(gw, user, &order).await
        }))
        .await;
        tickets.extend(orders.into_iter().flatten());
    }
    tickets
}

#[tokio::test]
async fn eight_gates_scanning_the_same_thousand_tickets_admit_each_once() {
    let (gw, db, event) = setup("tix_gates").await;
    let started = std::time::Instant::now();
    let tickets = buy_many(&gw, &db, &event, 1_000).await;
    assert_eq!(tickets.len(), 1_000);
    eprintln!("bought 1,000 seats in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let payloads: Vec<String> = tickets.iter().map(payload).collect();
    let verdicts = futures::future::join_all((0..8).map(|g| {
        let gw = &gw;
        let event = &event;
        let mut order = payloads.clone();
        // Each gate its own order: the same ticket reaches several gates at once.
        order.rotate_left(g * 125);
        async move {
            let gate = token(&format!("gate-{g}"), Role::Gate);
            let mut out = Vec::new();
            for chunk in order.chunks(8) {
                let answers =
                    futures::future::join_all(chunk.iter().map(|p| scan(gw, event, &gate, p)))
                        .await;
                out.extend(answers);
            }
            out
        }
    }))
    .await;
    eprintln!("8,000 scans in {:?}", started.elapsed());
    let mut admitted: HashMap<String, usize> = HashMap::new();
    let mut used = 0;
    for v in verdicts.iter().flatten() {
        match v["verdict"].as_str().unwrap() {
            "admitted" => {
                *admitted
                    .entry(v["ticket_id"].as_str().unwrap().to_owned())
                    .or_default() += 1
            }
            "already_used" => used += 1,
            other => panic!("unexpected verdict {other}: {v}"),
        }
    }
    assert_eq!(admitted.len(), 1_000, "every ticket admitted");
    assert!(admitted.values().all(|&n| n == 1), "none admitted twice");
    assert_eq!(used, 7_000);
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM checkins WHERE event_id = '{event}'")
        )
        .await,
        1_000
    );
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM seat_audit WHERE event_id = '{event}' AND action = 'checked_in'")).await,
        1_000
    );
}

#[tokio::test]
async fn an_offline_batch_reports_exactly_the_doubles() {
    let (gw, db, event) = setup("tix_batch").await;
    let tickets = buy_many(&gw, &db, &event, 20).await;
    let gate1 = token("gate-1", Role::Gate);
    // Online: tickets 0..10 at gate-1.
    for t in &tickets[..10] {
        assert_eq!(
            scan(&gw, &event, &gate1, &payload(t)).await["verdict"],
            "admitted"
        );
    }
    // Offline, earlier or later: gate-9 scanned 5..15; ticket 15 also at gate-8 later; two
    // lines are not scans.
    let at = |minute: u32| format!("2026-12-07T18:{minute:02}:00.123456789Z");
    let mut lines: Vec<Value> = tickets[5..16]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"payload": payload(t), "gate": "gate-9", "scanned_at": at(i as u32)}))
        .collect();
    lines.push(json!({"payload": payload(&tickets[15]), "gate": "gate-8", "scanned_at": at(40)}));
    lines.insert(
        3,
        json!({"payload": payload(&tickets[16]), "scanned_at": at(1)}),
    );
    lines.push(
        json!({"payload": payload(&tickets[17]), "gate": "gate-9", "scanned_at": "yesterday"}),
    );
    let body = json!({"scans": lines});
    let batch_path = format!("/events/{event}/checkins/batch");
    let upload = || gw.call(Method::POST, &batch_path, Some(&gate1), Some(body.clone()));

    let (s, v, _) = upload().await;
    assert_error(s, &v, 422, "malformed_scans");
    let details = &v["error"]["details"];
    let bad: Vec<u64> = details["bad_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert_eq!(bad, vec![3, 13], "{details}");
    assert_eq!(details["recorded"], 12);
    let doubles: BTreeSet<String> = details["doubles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["ticket_id"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = tickets[5..10]
        .iter()
        .chain(std::iter::once(&tickets[15]))
        .map(|t| t["ticket_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(doubles, want, "{details}");
    for d in details["doubles"].as_array().unwrap() {
        let gates: Vec<&str> = d["admissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["gate"].as_str().unwrap())
            .collect();
        if d["ticket_id"] == tickets[15]["ticket_id"] {
            assert_eq!(gates, ["gate-9", "gate-8"], "{d}");
        } else {
            assert_eq!(gates, ["gate-1", "gate-9"], "{d}");
            assert_eq!(d["admissions"][0]["mode"], "online");
            assert_eq!(d["admissions"][1]["mode"], "offline");
        }
    }
    // 10..15 came in offline; 16 and 17 were never scanned.
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM checkins WHERE event_id = '{event}'")
        )
        .await,
        16
    );
    let doubles_kept = count(
        &db,
        &format!("SELECT count(*) FROM checkin_doubles WHERE event_id = '{event}'"),
    )
    .await;
    assert_eq!(doubles_kept, 6);

    // The gate did not hear the answer and uploads again: the same doubles, nothing new.
    let (s, again, _) = upload().await;
    assert_eq!(s.as_u16(), 422);
    assert_eq!(again["error"]["details"]["doubles"], details["doubles"]);
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM checkin_doubles WHERE event_id = '{event}'")
        )
        .await,
        doubles_kept
    );

    // Online after the upload: already used, at the offline gate.
    let v = scan(&gw, &event, &gate1, &payload(&tickets[12])).await;
    assert_eq!(
        (v["verdict"].as_str(), v["first"]["gate"].as_str()),
        (Some("already_used"), Some("gate-9")),
        "{v}"
    );
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins/batch"),
            Some(&token("alice", Role::Buyer)),
            Some(body.clone()),
        )
        .await;
    assert_error(s, &v, 403, "forbidden");
    let clean = json!({"scans": [{"payload": payload(&tickets[16]), "gate": "gate-7", "scanned_at": at(50)}]});
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins/batch"),
            Some(&gate1),
            Some(clean),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["verdict"], "admitted");
    assert_eq!(v["doubles"], json!([]));
    tokio::time::sleep(Duration::from_millis(10)).await;
}
