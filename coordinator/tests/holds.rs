//! Hold operations against the real cluster: outcomes, replays, bad input, expiry, pins, blocks.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::time::Duration;

use coordinator::block::{BlockOutcome, UnblockOutcome};
use coordinator::extend::ExtendOutcome;
use coordinator::hold::{HoldOutcome, HoldRequest, InvalidHold, ReadOutcome};
use coordinator::open::{OpenOutcome, SectionInventory};
use coordinator::release::ReleaseOutcome;
use coordinator::sell::SellOutcome;
use coordinator::snapshot::SectionAvailability;
use coordinator::{
    Caller, ClientReservationId, Coordinator, EventId, HoldState, Limits, SeatId, SeatState, UserId,
};
use support::*;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn request(
    event: &EventId,
    u: &str,
    client: &str,
    list: &[&str],
    ttl: Option<u64>,
    limits: &Limits,
) -> HoldRequest {
    HoldRequest::new(
        event.clone(),
        user(u),
        ClientReservationId::parse(client).unwrap(),
        seats(list),
        ttl,
        limits,
    )
    .unwrap()
}

async fn hold_ok(c: &Coordinator, req: &HoldRequest) -> coordinator::Hold {
    match c.hold(req).await.unwrap() {
        HoldOutcome::Created(h) => h,
        other => panic!("expected a hold, got {other:?}"),
    }
}

async fn counts(c: &Coordinator, event: &EventId) -> Vec<SectionAvailability> {
    c.availability(event).await.unwrap().unwrap()
}

fn totals(a: &[SectionAvailability]) -> (u64, u64, u64, u64) {
    a.iter().fold((0, 0, 0, 0), |t, s| {
        (t.0 + s.free, t.1 + s.held, t.2 + s.sold, t.3 + s.blocked)
    })
}

#[tokio::test]
async fn hold_read_replay_release() {
    let c = shared().await;
    let event = unique_event("basic");
    open_grid(&c, &event, 2, 10).await;
    let limits = c.limits().clone();

    let req = request(&event, "alice", "r1", &["s0-1", "s1-2"], Some(120), &limits);
    let hold = hold_ok(&c, &req).await;
    assert_eq!(hold.state, HoldState::Held);
    assert_eq!(hold.seats, seats(&["s0-1", "s1-2"]));
    let ttl = hold.expires_at_ms - hold.created_at_ms;
    assert_eq!(ttl, 120_000, "expiry is created + ttl");
    assert_eq!(totals(&counts(&c, &event).await), (18, 2, 0, 0));

    // The same request again: the same hold, nothing new held.
    match c.hold(&req).await.unwrap() {
        HoldOutcome::Replayed(h) => {
            assert_eq!(h.id, hold.id);
            assert_eq!(h.expires_at_ms, hold.expires_at_ms);
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    // Same client id, other seats: refused, nothing changed.
    let other = request(&event, "alice", "r1", &["s0-3"], Some(120), &limits);
    assert_eq!(
        c.hold(&other).await.unwrap(),
        HoldOutcome::IdempotencyConflict
    );
    assert_eq!(totals(&counts(&c, &event).await), (18, 2, 0, 0));

    // Someone else wants one of the seats.
    let bob = request(&event, "bob", "b1", &["s1-2", "s1-3"], None, &limits);
    match c.hold(&bob).await.unwrap() {
        HoldOutcome::Unavailable(list) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].seat, seat("s1-2"));
            assert_eq!(list[0].state, SeatState::Held);
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(
        totals(&counts(&c, &event).await),
        (18, 2, 0, 0),
        "refused hold took nothing"
    );

    // Only the holder reads or releases it.
    assert_eq!(
        c.read_hold(&hold.id, Caller::User(&user("bob")))
            .await
            .unwrap(),
        ReadOutcome::NotOwner
    );
    assert_eq!(
        c.release(&hold.id, Caller::User(&user("bob")))
            .await
            .unwrap(),
        ReleaseOutcome::NotOwner
    );
    match c
        .read_hold(&hold.id, Caller::User(&user("alice")))
        .await
        .unwrap()
    {
        ReadOutcome::Found(h) => assert_eq!(h.state, HoldState::Held),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.release(&hold.id, Caller::User(&user("alice")))
            .await
            .unwrap(),
        ReleaseOutcome::Released(_)
    ));
    assert!(matches!(
        c.release(&hold.id, Caller::User(&user("alice")))
            .await
            .unwrap(),
        ReleaseOutcome::AlreadyReleased(_)
    ));
    assert_eq!(totals(&counts(&c, &event).await), (20, 0, 0, 0));
    // A replay after release still finds the same (released) hold, never a second one.
    match c.hold(&req).await.unwrap() {
        HoldOutcome::Replayed(h) => assert_eq!((h.id, h.state), (hold.id, HoldState::Released)),
        other => panic!("{other:?}"),
    }
    assert_eq!(totals(&counts(&c, &event).await), (20, 0, 0, 0));
    // Now bob can have them.
    hold_ok(&c, &bob).await;
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let c = shared().await;
    let event = unique_event("bad");
    open_grid(&c, &event, 2, 5).await;
    let limits = c.limits().clone();
    let before = counts(&c, &event).await;

    let mk = |list: &[&str], ttl| {
        HoldRequest::new(
            event.clone(),
            user("u"),
            ClientReservationId::parse("x").unwrap(),
            seats(list),
            ttl,
            &limits,
        )
    };
    assert_eq!(mk(&[], None).err(), Some(InvalidHold::NoSeats));
    assert!(matches!(
        mk(&["s0-1", "s0-1"], None),
        Err(InvalidHold::DuplicateSeat(_))
    ));
    let many: Vec<String> = (0..11).map(|i| format!("s0-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(
        mk(&many, None),
        Err(InvalidHold::TooManySeats { .. })
    ));
    assert!(matches!(
        mk(&["s0-1"], Some(0)),
        Err(InvalidHold::TtlOutOfRange { .. })
    ));
    assert!(matches!(
        mk(&["s0-1"], Some(901)),
        Err(InvalidHold::TtlOutOfRange { .. })
    ));
    assert!(SeatId::parse("s0 1").is_err());
    assert!(EventId::parse("{evil}").is_err());

    // Unknown seats: named, nothing held (also the valid seat in the same request).
    let req = request(
        &event,
        "u",
        "x",
        &["s0-1", "nope-1", "s1-99"],
        None,
        &limits,
    );
    match c.hold(&req).await.unwrap() {
        HoldOutcome::UnknownSeats(list) => assert_eq!(list, seats(&["nope-1", "s1-99"])),
        other => panic!("{other:?}"),
    }
    // Unknown event.
    let ghost = unique_event("ghost");
    let req = request(&ghost, "u", "x", &["s0-1"], None, &limits);
    assert_eq!(c.hold(&req).await.unwrap(), HoldOutcome::UnknownEvent);
    assert_eq!(c.availability(&ghost).await.unwrap(), None);
    assert_eq!(
        c.block(&ghost, &seats(&["s0-1"]), "press").await.unwrap(),
        BlockOutcome::UnknownEvent
    );
    // Opening with a seat in two sections is refused.
    let twice = vec![SectionInventory {
        sold: Default::default(),
        blocked: Default::default(),
        section: coordinator::SectionId::parse("s0").unwrap(),
        seats: seats(&["s1-1"]),
    }];
    assert_eq!(
        c.open_event(&event, &twice).await.unwrap(),
        OpenOutcome::SeatInTwoSections(seats(&["s1-1"]))
    );

    assert_eq!(counts(&c, &event).await, before);
}

#[tokio::test]
async fn multi_section_hold_is_all_or_nothing() {
    let c = shared().await;
    let event = unique_event("aon");
    open_grid(&c, &event, 4, 5).await;
    let limits = c.limits().clone();
    // Bob holds a seat of the third section (in lock order).
    hold_ok(&c, &request(&event, "bob", "b", &["s2-0"], None, &limits)).await;
    // Alice wants seats in all four: refused at s2, and s0, s1 (taken before) are rolled back.
    let req = request(
        &event,
        "alice",
        "a",
        &["s0-0", "s1-0", "s2-0", "s3-0"],
        None,
        &limits,
    );
    match c.hold(&req).await.unwrap() {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].seat, seat("s2-0")),
        other => panic!("{other:?}"),
    }
    let states = c.seat_states(&event).await.unwrap().unwrap();
    let held: Vec<SeatId> = states.iter().flat_map(|s| s.held.clone()).collect();
    assert_eq!(held, seats(&["s2-0"]), "only bob's seat is held");
    // The refused attempt was forgotten: the same client id may try again and succeed later.
    c.block(&event, &seats(&["s3-4"]), "press").await.unwrap();
    let bob_hold = hold_ok(&c, &request(&event, "carol", "c", &["s1-1"], None, &limits)).await;
    assert_eq!(bob_hold.state, HoldState::Held);
    let retry = request(
        &event,
        "alice",
        "a",
        &["s0-0", "s1-0", "s2-1", "s3-0"],
        None,
        &limits,
    );
    assert_eq!(hold_ok(&c, &retry).await.seats.len(), 4);
}

#[tokio::test]
async fn holds_expire_with_no_process_running_and_extension_stops_at_the_cap() {
    let limits = Limits {
        min_ttl_secs: 1,
        max_hold_lifetime_secs: 3,
        ..Limits::default()
    };
    let c = connect(shared_nodes(), limits.clone()).await;
    let event = unique_event("ttl");
    open_grid(&c, &event, 2, 3).await;

    let short = hold_ok(
        &c,
        &request(&event, "alice", "a", &["s0-0", "s1-0"], Some(1), &limits),
    )
    .await;
    assert_eq!(totals(&counts(&c, &event).await).1, 2);
    // Nothing runs but Redis: the seats are free once the expiry passes.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(totals(&counts(&c, &event).await), (6, 0, 0, 0));
    match c
        .read_hold(&short.id, Caller::User(&user("alice")))
        .await
        .unwrap()
    {
        ReadOutcome::Found(h) => assert_eq!(h.state, HoldState::Expired),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.extend(&short.id, Caller::User(&user("alice")), 2)
            .await
            .unwrap(),
        ExtendOutcome::Expired(_)
    ));
    assert!(matches!(
        c.pin(&short.id, Duration::from_secs(5)).await.unwrap(),
        ExtendOutcome::Expired(_)
    ));
    // Another buyer takes them.
    let bob = hold_ok(
        &c,
        &request(&event, "bob", "b", &["s0-0", "s1-0"], Some(2), &limits),
    )
    .await;
    // Extension within the cap (3 s from creation) works and moves the seats' expiry too...
    match c
        .extend(&bob.id, Caller::User(&user("bob")), 2)
        .await
        .unwrap()
    {
        ExtendOutcome::Extended(h) => assert!(h.expires_at_ms > bob.expires_at_ms - 1_000),
        other => panic!("{other:?}"),
    }
    // ...past it is refused and changes nothing.
    match c
        .extend(&bob.id, Caller::User(&user("bob")), 5)
        .await
        .unwrap()
    {
        ExtendOutcome::PastCap(h) => assert_eq!(h.cap_at_ms, bob.cap_at_ms),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.extend(&bob.id, Caller::User(&user("alice")), 2)
            .await
            .unwrap(),
        ExtendOutcome::NotOwner
    ));
    assert!(matches!(
        c.extend(&bob.id, Caller::User(&user("bob")), 1_000)
            .await
            .unwrap(),
        ExtendOutcome::Invalid(_)
    ));
    // A payment's pin stops at the cap too, however often it is taken again.
    for _ in 0..2 {
        match c.pin(&bob.id, Duration::from_secs(60)).await.unwrap() {
            ExtendOutcome::Extended(h) => assert_eq!(h.expires_at_ms, bob.cap_at_ms),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn pin_sell_and_never_sell_twice() {
    let c = shared().await;
    let event = unique_event("sell");
    open_grid(&c, &event, 2, 4).await;
    let limits = c.limits().clone();
    let alice = user("alice");
    let hold = hold_ok(
        &c,
        &request(&event, "alice", "a", &["s0-0", "s1-0"], None, &limits),
    )
    .await;

    match c.pin(&hold.id, Duration::from_secs(60)).await.unwrap() {
        ExtendOutcome::Extended(h) => assert_eq!(h.state, HoldState::Pinned),
        other => panic!("{other:?}"),
    }
    // A payment is in flight: the buyer cannot release, and cannot extend a pinned hold.
    assert_eq!(
        c.release(&hold.id, Caller::User(&alice)).await.unwrap(),
        ReleaseOutcome::NotReleasable(HoldState::Pinned)
    );
    assert!(matches!(
        c.extend(&hold.id, Caller::User(&alice), 200).await.unwrap(),
        ExtendOutcome::WrongState(_)
    ));
    assert!(matches!(
        c.pin(&hold.id, Duration::from_secs(3600)).await.unwrap(),
        ExtendOutcome::Invalid(_)
    ));

    assert_eq!(
        c.mark_sold(&hold.id).await.unwrap(),
        SellOutcome::Sold { newly_sold: 2 }
    );
    assert_eq!(
        c.mark_sold(&hold.id).await.unwrap(),
        SellOutcome::Sold { newly_sold: 0 },
        "replay sells nothing"
    );
    assert_eq!(totals(&counts(&c, &event).await), (6, 0, 2, 0));
    match c.read_hold(&hold.id, Caller::System).await.unwrap() {
        ReadOutcome::Found(h) => assert_eq!(h.state, HoldState::Sold),
        other => panic!("{other:?}"),
    }
    // Sold seats cannot be held, blocked, or sold to another hold, even by the repair path.
    match c
        .hold(&request(&event, "bob", "b", &["s0-0"], None, &limits))
        .await
        .unwrap()
    {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Sold),
        other => panic!("{other:?}"),
    }
    let bob_hold = hold_ok(&c, &request(&event, "bob", "b2", &["s0-1"], None, &limits)).await;
    assert_eq!(
        c.repair_sold(&event, &bob_hold.id, &seats(&["s0-1", "s1-0"]))
            .await
            .unwrap(),
        SellOutcome::SoldToAnother(seats(&["s1-0"]))
    );
    match c.block(&event, &seats(&["s1-0"]), "press").await.unwrap() {
        BlockOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Sold),
        other => panic!("{other:?}"),
    }
    // Repair (Postgres says sold) overrides a hold on a seat, never a sale.
    let carol = hold_ok(&c, &request(&event, "carol", "c", &["s0-2"], None, &limits)).await;
    assert_eq!(
        c.repair_sold(&event, &bob_hold.id, &seats(&["s0-2"]))
            .await
            .unwrap(),
        SellOutcome::Sold { newly_sold: 1 }
    );
    // ... and says so in the audit trail: carol's hold released by the repair, then the sale.
    let trail = c
        .read_audit(
            &event,
            &coordinator::SectionId::parse("s0").unwrap(),
            "0-0",
            1_000,
        )
        .await
        .unwrap();
    let on_s0_2: Vec<(&str, &str)> = trail
        .iter()
        .filter(|e| e.seats.iter().any(|s| s == "s0-2"))
        .map(|e| (e.action.as_str(), e.hold.as_str()))
        .collect();
    let carol_id = carol.id.to_string();
    let bob_id = bob_hold.id.to_string();
    assert_eq!(
        on_s0_2,
        vec![
            ("held", carol_id.as_str()),
            ("released", carol_id.as_str()),
            ("sold", bob_id.as_str())
        ]
    );
    // Carol's hold lost its seat: selling it is refused. (Only pinned holds are sold; the pin
    // itself reports the lost seat.)
    assert_eq!(
        c.mark_sold(&carol.id).await.unwrap(),
        SellOutcome::WrongState(HoldState::Held)
    );
    assert_eq!(
        c.pin(&carol.id, Duration::from_secs(30)).await.unwrap(),
        ExtendOutcome::SeatsLost(seats(&["s0-2"]))
    );
    assert_eq!(
        c.mark_sold(&carol.id).await.unwrap(),
        SellOutcome::SoldToAnother(seats(&["s0-2"]))
    );
    // Repair is per section: s0-1 (another section than the conflicting s1-0) was repaired too.
    assert_eq!(totals(&counts(&c, &event).await), (4, 0, 4, 0));
}

#[tokio::test]
async fn organizer_blocks() {
    let c = shared().await;
    let event = unique_event("block");
    open_grid(&c, &event, 2, 4).await;
    let limits = c.limits().clone();
    let held = hold_ok(&c, &request(&event, "alice", "a", &["s1-0"], None, &limits)).await;

    assert_eq!(
        c.block(&event, &seats(&["s0-0", "s1-1"]), "press")
            .await
            .unwrap(),
        BlockOutcome::Blocked(seats(&["s0-0", "s1-1"]))
    );
    // Idempotent; and a block never breaks a live hold (all or nothing across sections).
    assert_eq!(
        c.block(&event, &seats(&["s0-0"]), "press").await.unwrap(),
        BlockOutcome::Blocked(vec![])
    );
    match c
        .block(&event, &seats(&["s0-3", "s1-0"]), "press")
        .await
        .unwrap()
    {
        BlockOutcome::Unavailable(list) => assert_eq!(
            (list[0].seat.clone(), list[0].state),
            (seat("s1-0"), SeatState::Held)
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.block(&event, &seats(&["s0-1"]), "has space")
            .await
            .unwrap(),
        BlockOutcome::Invalid(_)
    ));
    let states = c.seat_states(&event).await.unwrap().unwrap();
    assert_eq!(states[0].blocked, seats(&["s0-0"]), "s0-3 was rolled back");
    match c
        .hold(&request(&event, "bob", "b", &["s1-1"], None, &limits))
        .await
        .unwrap()
    {
        HoldOutcome::Unavailable(list) => assert_eq!(list[0].state, SeatState::Blocked),
        other => panic!("{other:?}"),
    }
    // Blocks have no TTL; unblock returns only blocked seats to sale.
    assert_eq!(
        c.unblock(&event, &seats(&["s0-0", "s1-1", "s1-0"]))
            .await
            .unwrap(),
        UnblockOutcome::Unblocked(seats(&["s0-0", "s1-1"]))
    );
    assert_eq!(totals(&counts(&c, &event).await), (7, 1, 0, 0));
    assert!(matches!(
        c.release(&held.id, Caller::System).await.unwrap(),
        ReleaseOutcome::Released(_)
    ));
}

#[tokio::test]
async fn large_venue_snapshot_counts() {
    let c = shared().await;
    let event = unique_event("stadium");
    // 50,000 seats: 25 sections of 2,000.
    open_grid(&c, &event, 25, 2_000).await;
    let a = counts(&c, &event).await;
    assert_eq!(a.len(), 25);
    assert_eq!(a.iter().map(|s| s.capacity).sum::<u64>(), 50_000);
    assert_eq!(totals(&a), (50_000, 0, 0, 0));
    // Re-opening is idempotent.
    let inv = (0..25)
        .map(|s| SectionInventory {
            sold: Default::default(),
            blocked: Default::default(),
            section: coordinator::SectionId::parse(&format!("s{s}")).unwrap(),
            seats: (0..2_000).map(|n| seat(&format!("s{s}-{n}"))).collect(),
        })
        .collect::<Vec<_>>();
    assert_eq!(
        c.open_event(&event, &inv).await.unwrap(),
        OpenOutcome::Opened {
            seats_added: 0,
            capacity: 50_000
        }
    );
}

/// The keys hold_begin.lua takes (the record, the live counts and seats, the buyer's bought
/// hash, on one slot as keys::hold, keys::counted and keys::bought put them) and the first three,
/// which hold_settle.lua takes.
fn attempt_keys(tag: &EventId) -> (Vec<String>, Vec<String>) {
    let record = vec![
        format!("seat:{{t-{tag}}}:hold"),
        format!("seat:{{t-{tag}}}:quota:live"),
        format!("seat:{{t-{tag}}}:quota:live:seats"),
        format!("seat:{{t-{tag}}}:quota:e:u:bought"),
    ];
    let settled = record[..3].to_vec();
    (record, settled)
}

/// The attempt protocol of hold_begin.lua / hold_settle.lua, driven directly: an attempt that
/// was taken over after the attempt window can neither settle nor roll back its successor.
#[tokio::test]
async fn a_taken_over_attempt_cannot_settle_or_abort_its_successor() {
    use fred::prelude::*;
    let c = shared().await;
    let client = c.redis().next();
    let tag = unique_event("attempt");
    let (record, settled) = attempt_keys(&tag);
    let begin = c.scripts().hold_begin.source();
    let settle = c.scripts().hold_settle.source();
    let begin_args = |token: &str| -> Vec<String> {
        [
            "e", "u", "fp", "60000", "600000", "100", "s1 s2", "a", token, "", "h1", "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let settle_args = |outcome: &str, token: &str| -> Vec<String> {
        vec![
            outcome.to_owned(),
            "1000".to_owned(),
            token.to_owned(),
            "h1".to_owned(),
        ]
    };
    let code = |v: Value| -> i64 {
        match v {
            Value::Array(items) => items[0].as_i64().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    // Attempt A begins; a retry inside the window is told to wait, even with other parameters.
    assert_eq!(
        code(
            client
                .eval(begin, record.clone(), begin_args("A"))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        code(
            client
                .eval(begin, record.clone(), begin_args("B"))
                .await
                .unwrap()
        ),
        -2
    );
    // After the window, B takes over.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        code(
            client
                .eval(begin, record.clone(), begin_args("B"))
                .await
                .unwrap()
        ),
        0
    );
    // A, slow but alive, can neither roll back nor settle.
    assert_eq!(
        code(
            client
                .eval(settle, settled.clone(), settle_args("aborting", "A"))
                .await
                .unwrap()
        ),
        -1
    );
    assert_eq!(
        code(
            client
                .eval(settle, settled.clone(), settle_args("held", "A"))
                .await
                .unwrap()
        ),
        -1
    );
    // B settles; a later replay sees the finished hold.
    assert_eq!(
        code(
            client
                .eval(settle, settled.clone(), settle_args("held", "B"))
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        code(
            client
                .eval(begin, record.clone(), begin_args("C"))
                .await
                .unwrap()
        ),
        1
    );
    // B's takeover did not count the seats twice: the buyer has 2 of 3, so another hold of 2
    // seats is over the limit and writes nothing.
    let counted: Option<String> = client.hget(&record[2], "h1").await.unwrap();
    assert_eq!(counted.as_deref(), Some("2 e u"));
    let mut other = begin_args("D");
    other[10] = "h2".to_owned();
    let mut other_keys = record.clone();
    other_keys[0] = format!("{}2", record[0]);
    let reply: Value = client.eval(begin, other_keys.clone(), other).await.unwrap();
    assert_eq!(code(reply.clone()), -3, "{reply:?}");
    let written: i64 = client.exists(other_keys[0].clone()).await.unwrap();
    assert_eq!(written, 0);
    let _: i64 = client.del(record).await.unwrap();
}

/// A pin's or extension's expiry is computed on the record's node and written on the section's:
/// one already past by the section's clock is refused as lost seats, never written (it would
/// free seats the record calls pinned). An unpin may write a past expiry: the hold has ended.
#[tokio::test]
async fn an_expiry_already_past_on_the_sections_clock_is_not_written() {
    use fred::prelude::*;
    let c = shared().await;
    let client = c.redis().next();
    let tag = unique_event("skew");
    let keys = vec![
        format!("seat:{{t-{tag}}}:held"),
        format!("seat:{{t-{tag}}}:holder"),
        format!("seat:{{t-{tag}}}:audit"),
    ];
    let extend = c.scripts().extend.source();
    let far = 32_503_680_000_000_i64; // year 3000
    let _: () = client
        .zadd(&keys[0], None, None, false, false, (far as f64, "s1"))
        .await
        .unwrap();
    let _: () = client.hset(&keys[1], ("s1", "h1")).await.unwrap();
    for action in ["pinned", "extended"] {
        let reply: Value = client
            .eval(extend, keys.clone(), vec!["h1", "1", action, "alice", "s1"])
            .await
            .unwrap();
        let code = match &reply {
            Value::Array(items) => items[0].as_i64().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code, -1, "{action}: {reply:?}");
        let score: f64 = client.zscore(&keys[0], "s1").await.unwrap();
        assert_eq!(score as i64, far, "{action} wrote a past expiry");
    }
    let reply: Value = client
        .eval(
            extend,
            keys.clone(),
            vec!["h1", "1", "unpinned", "alice", "s1"],
        )
        .await
        .unwrap();
    assert!(
        matches!(&reply, Value::Array(items) if items[0].as_i64() == Some(0)),
        "{reply:?}"
    );
    let _: i64 = client.del(keys).await.unwrap();
}

/// The Redis client resends a call whose reply it lost (a dropped connection): the resent
/// begin or settle, carrying the same attempt token, gets the answer the first call got, so a
/// hold that exists is never answered 409 `request_in_progress`.
#[tokio::test]
async fn a_call_resent_after_a_lost_reply_gets_the_first_answer() {
    use fred::prelude::*;
    let c = shared().await;
    let client = c.redis().next();
    let tag = unique_event("resent");
    let (record, settled) = attempt_keys(&tag);
    let begin = c.scripts().hold_begin.source();
    let settle = c.scripts().hold_settle.source();
    let begin_args: Vec<String> = [
        "e", "u", "fp", "60000", "600000", "10000", "s1 s2", "a", "A", "", "h1", "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let settle_args: Vec<String> = ["held", "1000", "A", "h1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let reply = |v: Value| -> Vec<i64> {
        match v {
            Value::Array(items) => items.iter().map(|i| i.as_i64().unwrap_or(-99)).collect(),
            other => panic!("{other:?}"),
        }
    };
    let first = reply(
        client
            .eval(begin, record.clone(), begin_args.clone())
            .await
            .unwrap(),
    );
    let again = reply(
        client
            .eval(begin, record.clone(), begin_args.clone())
            .await
            .unwrap(),
    );
    assert_eq!(first[0], 0);
    assert_eq!(
        (again[0], again[1], again[2]),
        (0, first[1], first[2]),
        "the resent begin is the same attempt, with the same clocks"
    );
    // Counted once, not twice.
    let counted: Option<String> = client.hget(&record[2], "h1").await.unwrap();
    assert_eq!(counted.as_deref(), Some("2 e u"));
    let held = reply(
        client
            .eval(settle, settled.clone(), settle_args.clone())
            .await
            .unwrap(),
    );
    let resent = reply(
        client
            .eval(settle, settled.clone(), settle_args.clone())
            .await
            .unwrap(),
    );
    assert_eq!((held[0], resent[0]), (0, 0), "{held:?} {resent:?}");
    assert_eq!(held[1], resent[1]);
    // Another attempt's token is still refused, and a later replay sees the finished hold.
    let mut other = settle_args.clone();
    other[2] = "B".to_owned();
    assert_eq!(
        reply(client.eval(settle, settled.clone(), other).await.unwrap())[0],
        -1
    );
    let mut replay = begin_args.clone();
    replay[8] = "C".to_owned();
    assert_eq!(
        reply(client.eval(begin, record.clone(), replay).await.unwrap())[0],
        1
    );
    let _: i64 = client.del(record).await.unwrap();
}

/// The live ticket counts are kept per buyer tag, shared by every buyer whose holds carry it:
/// two buyers of one tag are counted apart, and each transition of a hold moves its count in the
/// same script (a cancel gives the seats back, an extension and a pin move the count's expiry, a
/// sale counts the seats for good).
#[tokio::test]
async fn buyers_sharing_a_tag_are_counted_apart_and_each_transition_moves_the_count() {
    use coordinator::{keys, HoldId};
    use fred::prelude::*;
    let c = shared().await;
    let event = unique_event("tagmates");
    open_grid(&c, &event, 1, 20).await;
    let limits = c.limits().clone();
    // Two buyers whose holds for this event share a tag (16 bits: a short search finds them).
    let alice = user("alice");
    let tag = HoldId::tag_of(&event, &alice);
    let mate = (0..2_000_000)
        .map(|i| format!("mate{i}"))
        .find(|u| HoldId::tag_of(&event, &user(u)) == tag)
        .expect("a buyer sharing alice's tag");
    let limited = |u: &str, client: &str, list: &[&str]| {
        request(&event, u, client, list, Some(60), &limits).with_ticket_limit(2)
    };
    let a1 = hold_ok(&c, &limited("alice", "a1", &["s0-1", "s0-2"])).await;
    // The tag-mate's seats are theirs: alice's two do not count against them.
    let m1 = hold_ok(&c, &limited(&mate, "m1", &["s0-3", "s0-4"])).await;
    for (u, seat) in [("alice", "s0-5"), (mate.as_str(), "s0-6")] {
        match c.hold(&limited(u, "over", &[seat])).await.unwrap() {
            HoldOutcome::OverLimit { limit, counted } => assert_eq!((limit, counted), (2, 2)),
            other => panic!("{u}: expected over the limit, got {other:?}"),
        }
    }
    let client = c.redis().next().clone();
    let [live, live_seats] = keys::counted(&a1.id);
    assert_eq!(keys::counted(&m1.id), [live.clone(), live_seats.clone()]);
    let count_expiry = |id: HoldId| {
        let (client, live) = (client.clone(), live.clone());
        async move {
            let score: Option<f64> = client.zscore(&live, id.to_string()).await.unwrap();
            score
        }
    };
    assert_eq!(
        count_expiry(a1.id).await,
        Some((a1.expires_at_ms + 5_000) as f64)
    );
    // An extension moves the count's expiry with the hold's.
    let extended = match c.extend(&a1.id, Caller::User(&alice), 300).await.unwrap() {
        ExtendOutcome::Extended(h) => h,
        other => panic!("{other:?}"),
    };
    assert!(extended.expires_at_ms > a1.expires_at_ms);
    assert_eq!(
        count_expiry(a1.id).await,
        Some((extended.expires_at_ms + 5_000) as f64)
    );
    // A cancel gives alice's seats back; the tag-mate's stay counted.
    assert!(matches!(
        c.release(&a1.id, Caller::User(&alice)).await.unwrap(),
        ReleaseOutcome::Released(_)
    ));
    assert_eq!(count_expiry(a1.id).await, None);
    let a2 = hold_ok(&c, &limited("alice", "a2", &["s0-7", "s0-8"])).await;
    assert!(matches!(
        c.hold(&limited(&mate, "over2", &["s0-9"])).await.unwrap(),
        HoldOutcome::OverLimit { counted: 2, .. }
    ));
    // A pin moves the count's expiry; the sale counts the seats for good, out of the live set.
    let pinned = match c.pin(&a2.id, Duration::from_secs(120)).await.unwrap() {
        ExtendOutcome::Extended(h) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        count_expiry(a2.id).await,
        Some((pinned.expires_at_ms + 5_000) as f64)
    );
    assert!(matches!(
        c.mark_sold(&a2.id).await.unwrap(),
        SellOutcome::Sold { .. }
    ));
    assert_eq!(count_expiry(a2.id).await, None);
    let bought: Option<String> = client
        .hget(keys::bought(&event, &alice), a2.id.to_string())
        .await
        .unwrap();
    assert_eq!(bought.as_deref(), Some("2"));
    match c.hold(&limited("alice", "a3", &["s0-10"])).await.unwrap() {
        HoldOutcome::OverLimit { counted, .. } => assert_eq!(counted, 2),
        other => panic!("bought seats count for good: {other:?}"),
    }
}

/// The sweep's one call does a section's whole audit pass when given the copier's cursor: it
/// trims what is up to the cursor (copied), counts the trail after the trim, reads what is
/// after the cursor, and says when the next hold expires.
#[tokio::test]
async fn a_sweep_given_the_copiers_cursor_trims_counts_and_reads_what_is_new() {
    let limits = Limits {
        min_ttl_secs: 1,
        ..Limits::default()
    };
    let c = connect(shared_nodes(), limits.clone()).await;
    let event = unique_event("sweepread");
    open_grid(&c, &event, 1, 4).await;
    let s0 = coordinator::SectionId::parse("s0").unwrap();
    // Without a cursor: nothing is read, nothing held.
    let quiet = c.sweep(&event, &s0, 100, None, 100).await.unwrap();
    assert_eq!(
        (quiet.swept, quiet.next_expiry_ms, quiet.after_copied),
        (0, None, None)
    );

    let a = hold_ok(
        &c,
        &request(&event, "alice", "a", &["s0-0"], Some(60), &limits),
    )
    .await;
    let b = hold_ok(
        &c,
        &request(&event, "bob", "b", &["s0-1"], Some(1), &limits),
    )
    .await;
    let trail = c.read_audit(&event, &s0, "0-0", 100).await.unwrap();
    assert_eq!(trail.len(), 2, "{trail:?}");
    let first = trail[0].id.clone();

    // Copied up to the first entry: it is trimmed, the second is read, the counts agree.
    let swept = c.sweep(&event, &s0, 100, Some(&first), 100).await.unwrap();
    assert_eq!(swept.swept, 0);
    assert_eq!(swept.last_audit_id, trail[1].id);
    assert_eq!(
        swept.next_expiry_ms,
        Some(b.expires_at_ms),
        "bob's ends first"
    );
    let read = swept.after_copied.unwrap();
    assert_eq!(read.cursor, first);
    assert_eq!(
        read.counts,
        Some(coordinator::streams::AuditCounts {
            added: 2,
            length: 1
        })
    );
    assert_eq!(
        read.entries
            .iter()
            .map(|e| (e.action.as_str(), e.hold.clone()))
            .collect::<Vec<_>>(),
        vec![("held", b.id.to_string())]
    );
    let left = c.read_audit(&event, &s0, "0-0", 100).await.unwrap();
    assert_eq!(left, trail[1..].to_vec(), "only the copied entry is gone");

    // Bob's hold ends: the sweep records it, and the next expiry is alice's.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let swept = c
        .sweep(&event, &s0, 100, Some(&trail[1].id), 100)
        .await
        .unwrap();
    assert_eq!(swept.swept, 1);
    assert_eq!(swept.next_expiry_ms, Some(a.expires_at_ms));
    let read = swept.after_copied.unwrap();
    assert_eq!(
        read.entries
            .iter()
            .map(|e| (e.action.as_str(), e.actor.as_str(), e.seats.clone()))
            .collect::<Vec<_>>(),
        vec![("expired", "system:expiry", vec!["s0-1".to_owned()])]
    );
    assert_eq!(read.counts.map(|c| (c.added, c.length)), Some((3, 1)));

    // Everything copied: the trail is trimmed empty, and still ends at the cursor, so the
    // copier sees nothing new (it once saw "0-0" and copied an empty trail every pass).
    let last = read.entries[0].id.clone();
    let swept = c.sweep(&event, &s0, 100, Some(&last), 100).await.unwrap();
    assert_eq!(swept.last_audit_id, last);
    let read = swept.after_copied.unwrap();
    assert!(read.entries.is_empty());
    assert_eq!(read.counts.map(|c| (c.added, c.length)), Some((3, 0)));
    let again = c.sweep(&event, &s0, 100, Some(&last), 100).await.unwrap();
    assert_eq!(again.last_audit_id, last);
}
