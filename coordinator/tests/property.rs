//! The concurrency property: many tasks race for overlapping multi-seat holds across sections for
//! several seconds (holding, releasing, selling, blocking). A ledger kept by the test checks, at
//! every successful hold, that no seat is in two live holds; at the end Redis must agree with the
//! ledger seat for seat, every hold is all or nothing, and each section's counts add up.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coordinator::block::BlockOutcome;
use coordinator::hold::{HoldOutcome, HoldRequest, ReadOutcome};
use coordinator::release::ReleaseOutcome;
use coordinator::sell::SellOutcome;
use coordinator::{Caller, ClientReservationId, HoldId, HoldState, SeatId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

#[derive(Debug, Clone, PartialEq)]
enum Owner {
    Hold(HoldId),
    Sold(HoldId),
    Blocked,
}

#[derive(Default)]
struct Ledger {
    seats: HashMap<SeatId, Owner>,
    live: HashMap<HoldId, Vec<SeatId>>,
    violations: Vec<String>,
    stats: HashMap<&'static str, u64>,
}

impl Ledger {
    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }
}

const SECTIONS: usize = 4;
const PER_SECTION: usize = 60;
const TASKS: usize = 32;
const RUN_FOR: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_holds_never_share_a_seat() {
    let c = Arc::new(shared().await);
    let event = unique_event("race");
    open_grid(&c, &event, SECTIONS, PER_SECTION).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let seed: u64 = rand::thread_rng().gen();
    println!("seed {seed}");

    let deadline = Instant::now() + RUN_FOR;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (c, ledger, event) = (c.clone(), ledger.clone(), event.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ task as u64);
            let user = UserId::parse(&format!("u{task}")).unwrap();
            let mut mine: Vec<HoldId> = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let roll = rng.gen_range(0..100);
                if roll < 55 || mine.is_empty() {
                    // Hold 1..=4 seats from random sections; a hot corner (seats 0..12) makes
                    // overlaps frequent.
                    let k = rng.gen_range(1..=4);
                    let mut wanted = BTreeSet::new();
                    while wanted.len() < k {
                        let s = rng.gen_range(0..SECTIONS);
                        let seat = if rng.gen_bool(0.7) {
                            rng.gen_range(0..12)
                        } else {
                            rng.gen_range(0..PER_SECTION)
                        };
                        wanted.insert(seat_name(s, seat));
                    }
                    let req = HoldRequest::new(
                        event.clone(),
                        user.clone(),
                        ClientReservationId::parse(&format!("t{task}-{n}")).unwrap(),
                        wanted.into_iter().collect(),
                        Some(60),
                        c.limits(),
                    )
                    .unwrap();
                    match c.hold(&req).await.unwrap() {
                        HoldOutcome::Created(h) => {
                            let mut l = ledger.lock().unwrap();
                            l.count("held");
                            for s in &h.seats {
                                if let Some(owner) = l.seats.get(s) {
                                    let v =
                                        format!("{s} held by {} while owned by {owner:?}", h.id);
                                    l.violations.push(v);
                                }
                                l.seats.insert(s.clone(), Owner::Hold(h.id));
                            }
                            l.live.insert(h.id, h.seats.clone());
                            mine.push(h.id);
                        }
                        HoldOutcome::Unavailable(list) => {
                            assert!(!list.is_empty());
                            ledger.lock().unwrap().count("refused");
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                } else if roll < 85 {
                    // Release one of mine. The ledger forgets it first: until release.lua runs the
                    // seats are still held in Redis, so nobody else can record them meanwhile.
                    let id = mine.swap_remove(rng.gen_range(0..mine.len()));
                    {
                        let mut l = ledger.lock().unwrap();
                        let seats = l.live.remove(&id).unwrap();
                        for s in seats {
                            l.seats.remove(&s);
                        }
                        l.count("released");
                    }
                    assert!(matches!(
                        c.release(&id, Caller::User(&user)).await.unwrap(),
                        ReleaseOutcome::Released(_)
                    ));
                } else if roll < 91 {
                    // Check out one of mine: pin, then sell.
                    let id = mine.swap_remove(rng.gen_range(0..mine.len()));
                    assert!(matches!(
                        c.pin(&id, Duration::from_secs(30)).await.unwrap(),
                        coordinator::extend::ExtendOutcome::Extended(_)
                    ));
                    assert!(matches!(
                        c.mark_sold(&id).await.unwrap(),
                        SellOutcome::Sold { .. }
                    ));
                    let mut l = ledger.lock().unwrap();
                    let seats = l.live.remove(&id).unwrap();
                    for s in seats {
                        l.seats.insert(s, Owner::Sold(id));
                    }
                    l.count("sold");
                } else {
                    // The organizer blocks a random seat, or unblocks one.
                    let seat = seat_name(rng.gen_range(0..SECTIONS), rng.gen_range(0..PER_SECTION));
                    if rng.gen_bool(0.5) {
                        if let BlockOutcome::Blocked(newly) = c
                            .block(&event, std::slice::from_ref(&seat), "ops")
                            .await
                            .unwrap()
                        {
                            let mut l = ledger.lock().unwrap();
                            for s in newly {
                                if let Some(owner) = l.seats.get(&s) {
                                    let v = format!("{s} blocked while owned by {owner:?}");
                                    l.violations.push(v);
                                }
                                l.seats.insert(s, Owner::Blocked);
                            }
                            l.count("blocked");
                        }
                    } else {
                        let blocked =
                            ledger.lock().unwrap().seats.get(&seat) == Some(&Owner::Blocked);
                        if blocked {
                            ledger.lock().unwrap().seats.remove(&seat);
                            c.unblock(&event, std::slice::from_ref(&seat))
                                .await
                                .unwrap();
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    println!("operations: {:?}", ledger.stats);
    assert!(
        ledger.violations.is_empty(),
        "double ownership: {:#?}",
        ledger.violations
    );
    assert!(
        ledger.stats.get("refused").copied().unwrap_or(0) > 50,
        "contention too low to prove anything"
    );
    assert!(ledger.stats.get("sold").copied().unwrap_or(0) > 10);

    // Redis agrees with the ledger, seat for seat.
    let states = c.seat_states(&event).await.unwrap().unwrap();
    assert_eq!(states.len(), SECTIONS);
    let mut redis_owner: HashMap<SeatId, &'static str> = HashMap::new();
    for s in &states {
        let a = &s.availability;
        assert_eq!(
            a.free + a.held + a.sold + a.blocked,
            a.capacity,
            "counts add up in {}",
            a.section
        );
        assert_eq!(a.capacity, PER_SECTION as u64);
        for seat in &s.held {
            redis_owner.insert(seat.clone(), "held");
        }
        for seat in &s.sold {
            assert!(
                redis_owner.insert(seat.clone(), "sold").is_none(),
                "{seat} in two states"
            );
        }
        for seat in &s.blocked {
            assert!(
                redis_owner.insert(seat.clone(), "blocked").is_none(),
                "{seat} in two states"
            );
        }
    }
    let ledger_owner: HashMap<SeatId, &'static str> = ledger
        .seats
        .iter()
        .map(|(s, o)| {
            let kind = match o {
                Owner::Hold(_) => "held",
                Owner::Sold(_) => "sold",
                Owner::Blocked => "blocked",
            };
            (s.clone(), kind)
        })
        .collect();
    assert_eq!(
        redis_owner, ledger_owner,
        "no seat is held by a refused (rolled back) attempt"
    );

    // Every live hold still holds all of its seats (all or nothing) and reads as held.
    for (id, seats) in &ledger.live {
        match c.read_hold(id, Caller::System).await.unwrap() {
            ReadOutcome::Found(h) => {
                assert_eq!(h.state, HoldState::Held);
                let mut expected = seats.clone();
                expected.sort();
                assert_eq!(h.seats, expected);
            }
            other => panic!("{other:?}"),
        }
    }
}

fn seat_name(section: usize, n: usize) -> SeatId {
    SeatId::parse(&format!("s{section}-{n}")).unwrap()
}
