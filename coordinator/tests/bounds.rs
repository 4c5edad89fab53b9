//! Every script's work is bounded: fed past Lua's `unpack` limit (about 8,000 values), a script
//! neither fails half-way (Lua errors do not roll back) nor locks a buyer or a section out.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use coordinator::block::{BlockOutcome, InvalidBlock, UnblockOutcome, MAX_SEATS_PER_BLOCK};
use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::snapshot::SectionAvailability;
use coordinator::{keys, ClientReservationId, SeatId, SectionId, UserId};
use fred::prelude::*;
use support::*;

#[tokio::test]
async fn a_block_past_the_cap_is_refused_whole_and_writes_nothing() {
    let c = shared().await;
    let event = unique_event("bigblock");
    open_grid(&c, &event, 1, 8_200).await;
    let all: Vec<SeatId> = (0..8_100).map(|n| seat(&format!("s0-{n}"))).collect();
    let outcome = c.block(&event, &all, "press").await.unwrap();
    assert_eq!(
        outcome,
        BlockOutcome::Invalid(InvalidBlock::TooManySeats {
            max: MAX_SEATS_PER_BLOCK,
            requested: 8_100
        })
    );
    let outcome = c.unblock(&event, &all).await.unwrap();
    assert!(matches!(
        outcome,
        UnblockOutcome::Invalid(InvalidBlock::TooManySeats { .. })
    ));
    let blocked: i64 = c
        .redis()
        .next()
        .hlen(keys::section(&event, &SectionId::parse("s0").unwrap()).blocked)
        .await
        .unwrap();
    assert_eq!(blocked, 0, "nothing was written");
    // At the cap, a block and its release go through whole.
    let most: Vec<SeatId> = all[..MAX_SEATS_PER_BLOCK].to_vec();
    match c.block(&event, &most, "press").await.unwrap() {
        BlockOutcome::Blocked(newly) => assert_eq!(newly.len(), MAX_SEATS_PER_BLOCK),
        other => panic!("{other:?}"),
    }
    match c.unblock(&event, &most).await.unwrap() {
        UnblockOutcome::Unblocked(freed) => assert_eq!(freed.len(), MAX_SEATS_PER_BLOCK),
        other => panic!("{other:?}"),
    }
    let availability = c.availability(&event).await.unwrap().unwrap();
    let free: u64 = availability
        .iter()
        .map(|s: &SectionAvailability| s.free)
        .sum();
    assert_eq!(free, 8_200);
}

#[tokio::test]
async fn a_pile_of_expired_counts_never_locks_a_buyer_out() {
    let c = shared().await;
    let limits = test_limits();
    let event = unique_event("pile");
    open_grid(&c, &event, 1, 20).await;
    let request = |client: &str, seat_ids: &[&str]| {
        HoldRequest::new(
            event.clone(),
            UserId::parse("piled").unwrap(),
            ClientReservationId::parse(client).unwrap(),
            seats(seat_ids),
            Some(60),
            &limits,
        )
        .unwrap()
        .with_ticket_limit(4)
    };
    // 9,000 expired counts on the buyer's tag (a long outage of everything that would have
    // purged them), a third of them this buyer's own.
    let first = request("first", &["s0-1"]);
    let [live, live_seats] = keys::counted(&first.hold_id());
    let client = c.redis().next();
    let owner = format!("{event} piled");
    for chunk in (0..9_000).collect::<Vec<u32>>().chunks(1_000) {
        let scores: Vec<(f64, String)> = chunk.iter().map(|n| (1.0, format!("old-{n}"))).collect();
        let _: () = client
            .zadd(&live, None, None, false, false, scores)
            .await
            .unwrap();
        let fields: Vec<(String, String)> = chunk
            .iter()
            .map(|n| {
                let who = if n % 3 == 0 {
                    owner.clone()
                } else {
                    format!("{event} other")
                };
                (format!("old-{n}"), format!("2 {who}"))
            })
            .collect();
        let _: () = client.hset(&live_seats, fields).await.unwrap();
    }
    // The buyer holds, within their limit: the expired pile counts for nothing.
    let outcome = c.hold(&first).await.unwrap();
    assert!(matches!(outcome, HoldOutcome::Created(_)), "{outcome:?}");
    let second = c
        .hold(&request("second", &["s0-2", "s0-3", "s0-4"]))
        .await
        .unwrap();
    assert!(matches!(second, HoldOutcome::Created(_)), "{second:?}");
    let over = c.hold(&request("third", &["s0-5"])).await.unwrap();
    assert!(
        matches!(
            over,
            HoldOutcome::OverLimit {
                limit: 4,
                counted: 4
            }
        ),
        "the limit still holds: {over:?}"
    );
    // Each call purged a slice: the pile shrinks without any call doing it all.
    let left: i64 = client.zcard(&live).await.unwrap();
    assert!(left < 9_000 && left > 2, "{left} counts left");
}
