//! Holds on one section gathered into one script call: 100 concurrent holds on one section, 60
//! seats, two buyers for 40 of them. Each buyer gets their own right answer (60 holds, 40
//! refusals naming the seat), and Redis, by its own account (`INFO commandstats` on a cluster no
//! other test uses), served the section in fewer calls than holds.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::BTreeSet;
use std::sync::Arc;

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::{ClientReservationId, SeatState, UserId};
use support::*;

const HOLDS: usize = 100;
const SEATS: usize = 60;

fn evalsha_calls(ports: &[u16]) -> u64 {
    command_calls(ports, "evalsha")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_on_one_section_share_calls_and_each_gets_its_answer() {
    let cluster = Dedicated::start("batch");
    let ports = cluster.ports();
    let c = Arc::new(connect(cluster.nodes.clone(), test_limits()).await);
    let event = unique_event("batch");
    open_grid(&c, &event, 1, SEATS).await;
    // The layout is read once per process: before counting.
    let warm = HoldRequest::new(
        event.clone(),
        UserId::parse("warm").unwrap(),
        ClientReservationId::parse("warm").unwrap(),
        seats(&["s0-0"]),
        Some(60),
        c.limits(),
    )
    .unwrap();
    let warm = match c.hold(&warm).await.unwrap() {
        HoldOutcome::Created(h) => h,
        other => panic!("{other:?}"),
    };
    c.release(&warm.id, coordinator::Caller::System)
        .await
        .unwrap();

    let before = evalsha_calls(&ports);
    let start = Arc::new(tokio::sync::Barrier::new(HOLDS));
    let tasks: Vec<_> = (0..HOLDS)
        .map(|b| {
            let (c, event, start) = (c.clone(), event.clone(), start.clone());
            tokio::spawn(async move {
                let seat = format!("s0-{}", b % SEATS);
                let request = HoldRequest::new(
                    event,
                    UserId::parse(&format!("b{b}")).unwrap(),
                    ClientReservationId::parse("one").unwrap(),
                    seats(&[&seat]),
                    Some(60),
                    c.limits(),
                )
                .unwrap();
                start.wait().await;
                (seat, c.hold(&request).await.unwrap())
            })
        })
        .collect();
    let mut held = BTreeSet::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (seat, HoldOutcome::Created(h)) => {
                assert_eq!(h.seats, seats(&[&seat]));
                assert!(held.insert(seat.clone()), "{seat} held twice");
            }
            (seat, HoldOutcome::Unavailable(list)) => {
                assert_eq!(list.len(), 1);
                assert_eq!(
                    (list[0].seat.as_str(), list[0].state),
                    (seat.as_str(), SeatState::Held)
                );
                refused += 1;
            }
            (seat, other) => panic!("{seat}: {other:?}"),
        }
    }
    let after = evalsha_calls(&ports);
    assert_eq!(held.len(), SEATS, "every seat held once");
    assert_eq!(
        refused,
        HOLDS - SEATS,
        "every second buyer of a seat refused"
    );
    let counts = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(counts[0].held, SEATS as u64);
    // Every hold made one call to its buyer's record (hold_begin.lua), and every refusal one
    // more to forget it (hold_settle.lua): the rest went to the section.
    let section_calls = after - before - HOLDS as u64 - refused as u64;
    println!("{HOLDS} concurrent holds on one section: {section_calls} calls to the section");
    assert!(
        section_calls < HOLDS as u64,
        "{section_calls} section calls for {HOLDS} holds"
    );
}

/// The durable writer's sales of a batch, together: seven pinned holds on one section are sold
/// in one call to it (each answered on its own: six sold, one whose seat was released before
/// refused, naming it), a hold over two sections is sold section by section as before, and each
/// sale counts its record sold. Redis served it in 10 script calls, where one call per section
/// per hold made it 16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_sales_on_one_section_shares_a_call_and_each_gets_its_answer() {
    use coordinator::hold::{Hold, HoldState, ReadOutcome};
    use coordinator::sell::SellOutcome;
    use coordinator::Caller;

    let cluster = Dedicated::start("sellbatch");
    let ports = cluster.ports();
    let c = connect(cluster.nodes.clone(), test_limits()).await;
    let event = unique_event("sellbatch");
    open_grid(&c, &event, 2, 10).await;
    let hold = |user: String, list: Vec<String>| {
        let c = &c;
        let event = event.clone();
        async move {
            let list: Vec<&str> = list.iter().map(String::as_str).collect();
            let request = HoldRequest::new(
                event,
                UserId::parse(&user).unwrap(),
                ClientReservationId::parse("one").unwrap(),
                seats(&list),
                Some(60),
                c.limits(),
            )
            .unwrap();
            let HoldOutcome::Created(h) = c.hold(&request).await.unwrap() else {
                panic!("{user} not held");
            };
            match c
                .pin(&h.id, std::time::Duration::from_secs(30))
                .await
                .unwrap()
            {
                coordinator::extend::ExtendOutcome::Extended(h) => h,
                other => panic!("{other:?}"),
            }
        }
    };
    let mut holds: Vec<Hold> = Vec::new();
    for b in 0..7 {
        holds.push(hold(format!("b{b}"), vec![format!("s0-{b}")]).await);
    }
    // Over two sections: sold one section at a time, as before.
    holds.push(hold("both".into(), vec!["s0-9".into(), "s1-0".into()]).await);
    // b6's seat goes back before the sale (its record, as read, still names it).
    c.unpin(&holds[6].id).await.unwrap();
    c.release(&holds[6].id, Caller::System).await.unwrap();

    let before = evalsha_calls(&ports);
    let refs: Vec<&Hold> = holds.iter().collect();
    let outcomes = c.mark_read_holds_sold(&refs).await;
    let after = evalsha_calls(&ports);

    for (i, outcome) in outcomes.iter().enumerate() {
        let want = match i {
            6 => SellOutcome::SeatsNotHeld(seats(&["s0-6"])),
            7 => SellOutcome::Sold { newly_sold: 2 },
            _ => SellOutcome::Sold { newly_sold: 1 },
        };
        assert_eq!(outcome.as_ref().unwrap(), &want, "hold {i}");
        let ReadOutcome::Found(record) = c.read_hold(&holds[i].id, Caller::System).await.unwrap()
        else {
            panic!("hold {i} has no record");
        };
        let state = if i == 6 {
            HoldState::Released
        } else {
            HoldState::Sold
        };
        assert_eq!(record.state, state, "hold {i}");
    }
    let counts = c.availability(&event).await.unwrap().unwrap();
    assert_eq!((counts[0].sold, counts[0].held), (7, 0), "{counts:?}");
    assert_eq!((counts[1].sold, counts[1].held), (1, 0), "{counts:?}");
    // One call for the seven on section 0, a record marked sold for each of the six sold there,
    // and the two-section hold's two sales and its record.
    assert_eq!(
        after - before,
        1 + 6 + 3,
        "script calls for the batch's sales"
    );
}
