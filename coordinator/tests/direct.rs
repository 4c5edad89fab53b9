//! The direct (single-section, no settle) hold protocol: what replays see while an original may
//! still be in flight, after it died, and what a slow original may still do.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::time::Duration;

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::release::ReleaseOutcome;
use coordinator::{keys, Caller, ClientReservationId, HoldState, Limits, SectionId, UserId};
use fred::prelude::*;
use support::*;

fn limits() -> Limits {
    Limits {
        attempt_window_ms: 400,
        ..test_limits()
    }
}

fn request(event: &coordinator::EventId, user: &str, list: &[&str]) -> HoldRequest {
    HoldRequest::new(
        event.clone(),
        UserId::parse(user).unwrap(),
        ClientReservationId::parse("r").unwrap(),
        seats(list),
        Some(60),
        &limits(),
    )
    .unwrap()
    .with_ticket_limit(4)
}

fn code(v: &Value) -> i64 {
    match v {
        Value::Array(items) => items[0].as_i64().unwrap(),
        other => panic!("{other:?}"),
    }
}

/// A replay inside the attempt window is confirmed by the section (same hold, same clocks); one
/// after the window takes the record over and keeps its clocks, so replaying never lengthens a
/// hold; a replay after a release sees the released hold and holds nothing.
#[tokio::test]
async fn replays_of_a_direct_hold_get_the_same_hold_and_never_lengthen_it() {
    let c = connect(shared_nodes(), limits()).await;
    let event = unique_event("direct");
    open_grid(&c, &event, 2, 10).await;
    let req = request(&event, "alice", &["s0-1", "s0-2"]);
    let first = match c.hold(&req).await.unwrap() {
        HoldOutcome::Created(h) => h,
        other => panic!("{other:?}"),
    };
    for wait in [0, 600] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        match c.hold(&req).await.unwrap() {
            HoldOutcome::Replayed(h) => {
                assert_eq!((h.id, h.state), (first.id, HoldState::Held));
                assert_eq!(h.expires_at_ms, first.expires_at_ms, "after {wait} ms");
            }
            other => panic!("after {wait} ms: {other:?}"),
        }
    }
    let a = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(a.iter().map(|s| s.held).sum::<u64>(), 2);
    assert!(matches!(
        c.release(&first.id, Caller::User(&first.user))
            .await
            .unwrap(),
        ReleaseOutcome::Released(_)
    ));
    match c.hold(&req).await.unwrap() {
        HoldOutcome::Replayed(h) => assert_eq!(h.state, HoldState::Released),
        other => panic!("{other:?}"),
    }
    let a = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(a.iter().map(|s| s.held).sum::<u64>(), 0);
}

/// An original that wrote its record and died before its section: a replay inside the window
/// is told "in progress" (nothing confirmed, nothing taken); after the window it takes over and
/// gets the seats. The dead original, should it wake after its deadline, takes nothing.
#[tokio::test]
async fn a_dead_original_is_taken_over_and_cannot_take_seats_after_its_deadline() {
    let c = connect(shared_nodes(), limits()).await;
    let client = c.redis().next();
    let event = unique_event("dead");
    open_grid(&c, &event, 1, 10).await;
    let req = request(&event, "bob", &["s0-3"]);
    let id = req.hold_id();
    let [live, live_seats] = keys::counted(&id);
    let record = vec![
        keys::hold(&id),
        live,
        live_seats,
        keys::bought(&event, req.user()),
    ];
    // The original's begin, as the coordinator sends it for one section.
    let begun: Value = client
        .evalsha(
            c.scripts().hold_begin.sha1(),
            record,
            vec![
                event.to_string(),
                "bob".into(),
                "s0-3|ttl=60000".into(),
                "60000".into(),
                "1800000".into(),
                "400".into(),
                "s0-3".into(),
                "s0".into(),
                "original".into(),
                String::new(),
                id.to_string(),
                "4".into(),
                "direct".into(),
                "86400000".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(code(&begun), 0, "{begun:?}");
    let expires = match &begun {
        Value::Array(items) => items[1].as_i64().unwrap(),
        _ => unreachable!(),
    };
    assert!(matches!(
        c.hold(&req).await.unwrap(),
        HoldOutcome::InProgress { .. }
    ));
    let held = |c: &coordinator::Coordinator| {
        let c = c.clone();
        let event = event.clone();
        async move { c.availability(&event).await.unwrap().unwrap()[0].held }
    };
    assert_eq!(held(&c).await, 0, "a replay in the window takes nothing");
    tokio::time::sleep(Duration::from_millis(500)).await;
    match c.hold(&req).await.unwrap() {
        HoldOutcome::Replayed(h) => {
            assert_eq!((h.state, h.expires_at_ms), (HoldState::Held, expires))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(held(&c).await, 1);
    // The original wakes past its deadline (the window's middle): hold.lua writes nothing.
    assert!(matches!(
        c.release(&id, Caller::System).await.unwrap(),
        ReleaseOutcome::Released(_)
    ));
    let k = keys::section(&event, &SectionId::parse("s0").unwrap());
    let late: Value = client
        .evalsha(
            c.scripts().hold.sha1(),
            vec![k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.audit],
            vec![
                id.to_string(),
                expires.to_string(),
                "bob".into(),
                "take".into(),
                (expires - 60_000 + 200).to_string(),
                "s0-3".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(code(&late), -5, "{late:?}");
    assert_eq!(held(&c).await, 0);
}
