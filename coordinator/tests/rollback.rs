//! A hold attempt that Redis failed part-way (the caller was told 503) must not leave its record
//! "in progress": the replay the client sends once Redis answers again gets a hold, not 409
//! `request_in_progress` for the rest of the attempt window.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::time::{Duration, Instant};

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::{keys, ClientReservationId, Coordinator, RedisSettings, SectionId, UserId};
use support::*;

/// The primary (of `ports`) that owns `key`: the one that answers for it (the others redirect;
/// while the cluster settles, a node may answer with an error: asked again).
fn owner(ports: &[u16], key: &str) -> u16 {
    for _ in 0..100 {
        let found = ports.iter().copied().find(|p| {
            redis_cli(*p, &["ROLE"]).starts_with("master")
                && matches!(redis_cli(*p, &["EXISTS", key]).as_str(), "0" | "1")
        });
        if let Some(port) = found {
            return port;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no primary owns {key}")
}

#[tokio::test]
async fn a_replay_after_a_failed_attempt_takes_over_once_redis_answers() {
    let cluster = Dedicated::start("rollback");
    let ports = cluster.ports();
    let limits = test_limits();
    let settings = RedisSettings {
        nodes: cluster.nodes.clone(),
        command_timeout_ms: 1_000,
        max_command_attempts: 1,
        ..RedisSettings::default()
    };
    let c = Coordinator::connect(&settings, limits.clone())
        .await
        .unwrap();
    let event = unique_event("rollback");
    open_grid(&c, &event, 1, 10).await;
    let section_node = owner(
        &ports,
        &keys::section(&event, &SectionId::parse("s0").unwrap()).inv,
    );
    // A request whose record lives on another primary than the section (the record takes its
    // slot from the buyer's tag, which the hold id carries).
    let request = (0..200)
        .map(|n| {
            HoldRequest::new(
                event.clone(),
                UserId::parse(&format!("buyer-{n}")).unwrap(),
                ClientReservationId::parse("try").unwrap(),
                seats(&["s0-1", "s0-2"]),
                Some(60),
                &limits,
            )
            .unwrap()
        })
        .find(|r| owner(&ports, &keys::hold(&r.hold_id())) != section_node)
        .unwrap();

    // The section's primary refuses every script: the hold's section step fails, and so does
    // the release of its rollback.
    redis_cli(
        section_node,
        &["ACL", "SETUSER", "default", "-evalsha", "-eval"],
    );
    let failed = c.hold(&request).await;
    redis_cli(section_node, &["ACL", "SETUSER", "default", "+@all"]);
    assert!(failed.is_err(), "a Redis failure is an error: {failed:?}");

    // Redis answers again; the client replays well inside the attempt window (10 s).
    let started = Instant::now();
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match c.hold(&request).await.unwrap() {
            HoldOutcome::InProgress { .. } if started.elapsed() < Duration::from_secs(3) => {}
            other => break other,
        }
    };
    assert!(
        matches!(outcome, HoldOutcome::Created(_)),
        "the replay takes over the failed attempt: {outcome:?} after {:?}",
        started.elapsed()
    );
}
