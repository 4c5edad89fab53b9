//! General-admission areas: 2,000 buyers race for a 500-place floor spread over 4 shards (each
//! its own slot); exactly 500 places are sold, never a place twice, and Redis's counts equal the
//! test's ledger. Bad requests are refused before anything is written.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use coordinator::area::{area_inventory, AreaHoldOutcome, AreaHoldRequest};
use coordinator::hold::InvalidHold;
use coordinator::open::OpenOutcome;
use coordinator::sell::SellOutcome;
use coordinator::{ClientReservationId, SectionId, UserId};
use support::*;

const CAPACITY: usize = 500;
const SHARDS: usize = 4;
const BUYERS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_buyers_for_a_500_place_floor_buy_exactly_500() {
    let c = Arc::new(shared().await);
    let event = unique_event("floor");
    let floor = SectionId::parse("floor").unwrap();
    let outcome = c
        .open_event(&event, &area_inventory(&floor, CAPACITY, SHARDS))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        OpenOutcome::Opened {
            seats_added: CAPACITY as u64,
            capacity: CAPACITY as u64
        }
    );
    let sold = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    for b in 0..BUYERS {
        let (c, event, floor, sold, refused) = (
            c.clone(),
            event.clone(),
            floor.clone(),
            sold.clone(),
            refused.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let request = AreaHoldRequest::new(
                event,
                UserId::parse(&format!("fan-{b}")).unwrap(),
                ClientReservationId::parse("floor").unwrap(),
                floor,
                1,
                Some(60),
                c.limits(),
            )
            .unwrap()
            .with_ticket_limit(4);
            match c.hold_area(&request).await.unwrap() {
                AreaHoldOutcome::Created(hold) => {
                    assert_eq!(hold.seats.len(), 1);
                    // As checkout does: pinned for the payment, then sold.
                    assert!(matches!(
                        c.pin(&hold.id, std::time::Duration::from_secs(60))
                            .await
                            .unwrap(),
                        coordinator::extend::ExtendOutcome::Extended(_)
                    ));
                    match c.mark_sold(&hold.id).await.unwrap() {
                        SellOutcome::Sold { .. } => sold.lock().unwrap().extend(hold.seats),
                        other => panic!("a held place did not sell: {other:?}"),
                    }
                }
                AreaHoldOutcome::NotEnough { .. } => *refused.lock().unwrap() += 1,
                other => panic!("buyer {b}: {other:?}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sold = sold.lock().unwrap().clone();
    let distinct: BTreeSet<_> = sold.iter().cloned().collect();
    println!(
        "{BUYERS} buyers, {CAPACITY} places over {SHARDS} shards: {} sold, {} refused",
        sold.len(),
        refused.lock().unwrap()
    );
    assert_eq!(distinct.len(), sold.len(), "a place sold twice");
    assert_eq!(sold.len(), CAPACITY, "exactly the capacity is sold");
    assert_eq!(*refused.lock().unwrap(), (BUYERS - CAPACITY) as u64);
    // Redis agrees with the ledger, shard by shard.
    let counts = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(counts.len(), SHARDS);
    assert_eq!(counts.iter().map(|s| s.sold).sum::<u64>(), CAPACITY as u64);
    assert!(
        counts.iter().all(|s| s.held == 0 && s.free == 0),
        "{counts:?}"
    );
    // A sold-out floor says so, and how much is left.
    let late = AreaHoldRequest::new(
        event.clone(),
        UserId::parse("late").unwrap(),
        ClientReservationId::parse("late").unwrap(),
        floor.clone(),
        2,
        Some(60),
        c.limits(),
    )
    .unwrap();
    assert_eq!(
        c.hold_area(&late).await.unwrap(),
        AreaHoldOutcome::NotEnough { free: 0 }
    );
}

#[tokio::test]
async fn bad_area_requests_are_refused_and_write_nothing() {
    let c = shared().await;
    let event = unique_event("floor-bad");
    let floor = SectionId::parse("floor").unwrap();
    c.open_event(&event, &area_inventory(&floor, 20, 2))
        .await
        .unwrap();
    let request = |area: &str, quantity: usize| {
        AreaHoldRequest::new(
            event.clone(),
            UserId::parse("u").unwrap(),
            ClientReservationId::parse(&format!("{area}-{quantity}")).unwrap(),
            SectionId::parse(area).unwrap(),
            quantity,
            Some(60),
            c.limits(),
        )
    };
    assert!(matches!(
        request("floor", 11),
        Err(InvalidHold::TooManySeats {
            max: 10,
            requested: 11
        })
    ));
    assert_eq!(request("floor", 0).err(), Some(InvalidHold::NoSeats));
    assert_eq!(
        c.hold_area(&request("balcony", 2).unwrap()).await.unwrap(),
        AreaHoldOutcome::UnknownArea
    );
    // More than a shard has: refused with what is free, nothing held.
    let mut fill = Vec::new();
    for q in [10, 9] {
        match c.hold_area(&request("floor", q).unwrap()).await.unwrap() {
            AreaHoldOutcome::Created(h) => fill.push(h),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        c.hold_area(&request("floor", 2).unwrap()).await.unwrap(),
        AreaHoldOutcome::NotEnough { free: 1 }
    );
    let counts = c.availability(&event).await.unwrap().unwrap();
    assert_eq!(counts.iter().map(|s| s.held).sum::<u64>(), 19);
    // A replay finds the same places.
    match c.hold_area(&request("floor", 9).unwrap()).await.unwrap() {
        AreaHoldOutcome::Replayed(h) => assert_eq!(h.seats, fill[1].seats),
        other => panic!("{other:?}"),
    }
}
