//! The seat scripts' side of the waiting list (`lua/include/waitlist.lua`): while a section is
//! told someone waits, every way a seat comes back (expiry seen by a hold or by the sweep, a
//! release, a refunded sale, a lifted block) sets it aside instead of freeing it; only an offer
//! hold takes it; the seat map counts it as taken; telling the section nobody waits gives it
//! back. Real Redis Cluster.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::BTreeSet;
use std::time::Duration;

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::sell::SellOutcome;
use coordinator::{
    Caller, ClientReservationId, Coordinator, EventId, Limits, SeatId, SeatState, SectionId, UserId,
};
use support::*;

fn request(event: &EventId, user: &str, client: &str, list: &[&str], ttl: u64) -> HoldRequest {
    HoldRequest::new(
        event.clone(),
        UserId::parse(user).unwrap(),
        ClientReservationId::parse(client).unwrap(),
        seats(list),
        Some(ttl),
        &Limits {
            min_ttl_secs: 1,
            ..Limits::default()
        },
    )
    .unwrap()
}

async fn held(c: &Coordinator, req: &HoldRequest) -> coordinator::Hold {
    match c.hold(req).await.unwrap() {
        HoldOutcome::Created(h) | HoldOutcome::Replayed(h) => h,
        other => panic!("expected a hold, got {other:?}"),
    }
}

/// Why an ordinary hold on `list` is refused, seat by seat (panics if it is placed).
async fn refused(c: &Coordinator, event: &EventId, user: &str, list: &[&str]) -> Vec<SeatState> {
    let client = format!("r-{}", uuid::Uuid::new_v4().simple());
    match c
        .hold(&request(event, user, &client, list, 60))
        .await
        .unwrap()
    {
        HoldOutcome::Unavailable(list) => list.into_iter().map(|u| u.state).collect(),
        other => panic!("the open sale took a seat set aside: {other:?}"),
    }
}

async fn aside(c: &Coordinator, event: &EventId, section: &SectionId) -> BTreeSet<SeatId> {
    c.set_aside(event, section)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

async fn free_and_held(c: &Coordinator, event: &EventId) -> (u64, u64) {
    let a = c.availability(event).await.unwrap().unwrap();
    (
        a.iter().map(|s| s.free).sum(),
        a.iter().map(|s| s.held).sum(),
    )
}

#[tokio::test]
async fn seats_that_come_back_while_someone_waits_go_only_to_an_offer() {
    let c = shared().await;
    let event = unique_event("wl_scripts");
    open_grid(&c, &event, 1, 6).await;
    let s0 = SectionId::parse("s0").unwrap();

    // Before anyone waits, a release frees the seat for anyone.
    let h = held(&c, &request(&event, "a", "a0", &["s0-0"], 60)).await;
    c.release(&h.id, Caller::System).await.unwrap();
    assert!(aside(&c, &event, &s0).await.is_empty());
    held(&c, &request(&event, "z", "z0", &["s0-0"], 60)).await;

    // Someone waits now. Five more seats are taken: a short hold (expiry), a hold released, a
    // sale refunded, a block lifted, and one expired hold the sweep finds.
    c.set_waiting(&event, &s0, 3, &[]).await.unwrap();
    let short = held(&c, &request(&event, "b", "b0", &["s0-1"], 1)).await;
    let cancel = held(&c, &request(&event, "c", "c0", &["s0-2"], 60)).await;
    let bought = held(&c, &request(&event, "d", "d0", &["s0-3"], 60)).await;
    assert!(matches!(
        c.mark_read_hold_sold(&bought).await.unwrap(),
        SellOutcome::Sold { .. }
    ));
    c.block(&event, &seats(&["s0-4"]), "press").await.unwrap();
    let swept = held(&c, &request(&event, "e", "e0", &["s0-5"], 1)).await;
    assert_eq!(free_and_held(&c, &event).await, (0, 4));

    c.release(&cancel.id, Caller::System).await.unwrap();
    c.unsell(&event, &bought.id, &seats(&["s0-3"]))
        .await
        .unwrap();
    c.unblock(&event, &seats(&["s0-4"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // s0-1 and s0-5 have ended: the open sale is refused them before any purge or sweep.
    assert_eq!(
        refused(&c, &event, "hammer", &["s0-1"]).await,
        vec![SeatState::Reserved]
    );
    assert!(short.expires_at_ms > 0 && swept.expires_at_ms > 0);
    c.sweep_expired(&event, &s0, 100).await.unwrap();
    assert_eq!(
        aside(&c, &event, &s0).await,
        seats(&["s0-1", "s0-2", "s0-3", "s0-4", "s0-5"])
            .into_iter()
            .collect()
    );
    // The seat map shows none of them free.
    assert_eq!(free_and_held(&c, &event).await, (0, 6));
    for seat in ["s0-1", "s0-2", "s0-3", "s0-4", "s0-5"] {
        assert_eq!(
            refused(&c, &event, "hammer", &[seat]).await,
            vec![SeatState::Reserved],
            "{seat}"
        );
    }

    // An offer takes set-aside seats only: a seat someone holds, or a free one, is not the
    // list's to offer.
    let offer =
        request(&event, "w1", "waitlist-1", &["s0-2", "s0-3"], 60).as_offer(Duration::from_secs(5));
    let made = held(&c, &offer).await;
    assert_eq!(made.seats, seats(&["s0-2", "s0-3"]));
    assert!(made.expires_at_ms - made.created_at_ms <= 5_000);
    assert_eq!(aside(&c, &event, &s0).await.len(), 3);
    let wrong = request(&event, "w2", "waitlist-2", &["s0-0"], 60).as_offer(Duration::from_secs(5));
    match c.hold(&wrong).await.unwrap() {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Held),
        other => panic!("{other:?}"),
    }
    // The offer's buyer releases it: set aside again, for the next on the list.
    c.release(&made.id, Caller::System).await.unwrap();
    assert_eq!(aside(&c, &event, &s0).await.len(), 5);

    // Seats no entry can use go back on their own; nobody waiting gives the rest back.
    assert_eq!(
        c.set_waiting(&event, &s0, 2, &seats(&["s0-1"]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(aside(&c, &event, &s0).await.len(), 4);
    held(&c, &request(&event, "open", "o1", &["s0-1"], 60)).await;
    assert_eq!(c.set_waiting(&event, &s0, 0, &[]).await.unwrap(), 4);
    assert!(aside(&c, &event, &s0).await.is_empty());
    assert_eq!(free_and_held(&c, &event).await, (4, 2));
    let free = held(
        &c,
        &request(&event, "open", "o2", &["s0-2", "s0-3", "s0-4", "s0-5"], 60),
    )
    .await;
    assert_eq!(free.seats.len(), 4);
    // With nobody waiting, an offer takes nothing.
    let late = request(&event, "w3", "waitlist-3", &["s0-0"], 60).as_offer(Duration::from_secs(5));
    assert!(matches!(
        c.hold(&late).await.unwrap(),
        HoldOutcome::Unavailable(_)
    ));
}

#[tokio::test]
async fn a_seat_whose_hold_ended_unswept_is_not_blocked_so_no_expiry_sets_a_blocked_seat_aside() {
    let c = shared().await;
    let event = unique_event("wl_block");
    open_grid(&c, &event, 1, 2).await;
    let s0 = SectionId::parse("s0").unwrap();
    let version = |c: Coordinator, event: EventId| async move {
        c.availability(&event).await.unwrap().unwrap()[0].version
    };
    // Someone starting to wait changes what the seat map shows: its version moves (a repeated
    // count does not).
    let before = version(c.clone(), event.clone()).await;
    c.set_waiting(&event, &s0, 1, &[]).await.unwrap();
    let after = version(c.clone(), event.clone()).await;
    assert!(after > before, "{before} -> {after}");
    c.set_waiting(&event, &s0, 1, &[]).await.unwrap();
    assert_eq!(version(c.clone(), event.clone()).await, after);
    held(&c, &request(&event, "a", "a0", &["s0-0"], 1)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The hold has ended but nothing swept it: a block is refused (the seat still reads held)...
    match c.block(&event, &seats(&["s0-0"]), "press").await.unwrap() {
        coordinator::block::BlockOutcome::Unavailable(list) => {
            assert_eq!(list.len(), 1, "{list:?}");
        }
        other => panic!("blocked a seat an expiry is about to return: {other:?}"),
    }
    // ...the sweep sets it aside for the list, and from there a block takes it out of the list.
    c.sweep_expired(&event, &s0, 100).await.unwrap();
    assert_eq!(
        aside(&c, &event, &s0).await,
        seats(&["s0-0"]).into_iter().collect()
    );
    assert!(matches!(
        c.block(&event, &seats(&["s0-0"]), "press").await.unwrap(),
        coordinator::block::BlockOutcome::Blocked(_)
    ));
    assert!(aside(&c, &event, &s0).await.is_empty());
}
