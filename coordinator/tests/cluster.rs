//! Cluster behaviour: one event spreads over several primaries; the client survives SCRIPT FLUSH
//! and a CLUSTER FAILOVER of a primary while operations run.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::release::ReleaseOutcome;
use coordinator::{keys, Caller, ClientReservationId, Coordinator, EventId, SectionId, UserId};
use fred::prelude::*;
use support::*;

#[tokio::test]
async fn one_event_spreads_over_every_primary() {
    let c = shared().await;
    let event = unique_event("spread");
    open_grid(&c, &event, 12, 5).await;
    let state = c.redis().next().cached_cluster_state().unwrap();
    let mut primaries = BTreeSet::new();
    for s in 0..12 {
        let k = keys::section(&event, &SectionId::parse(&format!("s{s}")).unwrap());
        let slots: BTreeSet<u16> = [&k.inv, &k.held, &k.holder, &k.sold, &k.blocked, &k.ver]
            .iter()
            .map(|key| fred::util::redis_keyslot(key.as_bytes()))
            .collect();
        assert_eq!(slots.len(), 1, "a section's keys share one slot");
        primaries.insert(state.get_server(*slots.first().unwrap()).unwrap().clone());
    }
    println!(
        "12 sections on {} primaries: {primaries:?}",
        primaries.len()
    );
    assert!(primaries.len() >= 2, "one event must not pin one shard");
    assert_eq!(state.unique_primary_nodes().len(), 3);
}

/// Runs holds and releases from `workers` tasks until `stop`; counts successes and failures.
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

fn start_load(c: Arc<Coordinator>, event: EventId, workers: usize, sections: usize) -> Load {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles = (0..workers)
        .map(|w| {
            let (c, event, ok, failed, stop) = (
                c.clone(),
                event.clone(),
                ok.clone(),
                failed.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let user = UserId::parse(&format!("w{w}")).unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Each worker owns distinct seats, in two sections, so every refusal is a failure.
                    let s1 = w % sections;
                    let s2 = (w + 1) % sections;
                    let seats = vec![
                        seat(&format!("s{s1}-{w}")),
                        seat(&format!("s{s2}-{}", w + 100)),
                    ];
                    let req = HoldRequest::new(
                        event.clone(),
                        user.clone(),
                        ClientReservationId::parse(&format!("w{w}-{n}")).unwrap(),
                        seats,
                        Some(60),
                        c.limits(),
                    )
                    .unwrap();
                    let held = match c.hold(&req).await {
                        Ok(HoldOutcome::Created(h)) => h,
                        Ok(other) => panic!("worker {w}: unexpected {other:?}"),
                        Err(e) => {
                            eprintln!("worker {w}: hold failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    // Release until it is released: a failed release would leave the seats held
                    // and make the next hold refuse.
                    loop {
                        match c.release(&held.id, Caller::User(&user)).await {
                            Ok(
                                ReleaseOutcome::Released(_) | ReleaseOutcome::AlreadyReleased(_),
                            ) => break,
                            Ok(other) => panic!("worker {w}: unexpected {other:?}"),
                            Err(e) => {
                                eprintln!("worker {w}: release failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    Load {
        ok,
        failed,
        handles,
        stop,
    }
}

impl Load {
    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.await.unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_mid_run_costs_no_operation() {
    let cluster = Dedicated::start("flush");
    let c = Arc::new(connect(cluster.nodes.clone(), test_limits()).await);
    let event = unique_event("flush");
    open_grid(&c, &event, 6, 200).await;
    let load = start_load(c.clone(), event.clone(), 16, 6);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        for port in cluster.ports() {
            assert_eq!(redis_cli(port, &["SCRIPT", "FLUSH"]), "OK");
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (ok, failed) = load.finish().await;
    println!(
        "SCRIPT FLUSH x3 on all 6 nodes: {ok} hold+release cycles, {failed} failed operations"
    );
    assert!(ok > 100, "the load ran");
    assert_eq!(
        failed, 0,
        "NOSCRIPT is answered by reloading, never surfaced"
    );
    let a = c.availability(&event).await.unwrap().unwrap();
    assert!(a.iter().all(|s| s.held == 0 && s.free == s.capacity));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_mid_run_leaves_the_client_working() {
    let cluster = Dedicated::start("failover");
    let c = Arc::new(connect(cluster.nodes.clone(), test_limits()).await);
    let event = unique_event("failover");
    open_grid(&c, &event, 6, 200).await;

    // Fail over the primary that owns section s0: its replica takes over.
    let s0 = keys::section(&event, &SectionId::parse("s0").unwrap());
    let slot = fred::util::redis_keyslot(s0.inv.as_bytes());
    let primary = c
        .redis()
        .next()
        .cached_cluster_state()
        .unwrap()
        .get_server(slot)
        .unwrap()
        .clone();
    let replica_port = cluster
        .ports()
        .into_iter()
        .find(|p| {
            let info = redis_cli(*p, &["ROLE"]);
            info.starts_with("slave") && info.contains(&primary.port.to_string())
        })
        .expect("a replica of the primary");

    let load = start_load(c.clone(), event.clone(), 16, 6);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = load.ok.load(Ordering::Relaxed);
    let started = Instant::now();
    assert_eq!(redis_cli(replica_port, &["CLUSTER", "FAILOVER"]), "OK");
    while !redis_cli(replica_port, &["ROLE"]).starts_with("master") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "failover did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted_after = started.elapsed();
    // Operations keep completing after the promotion.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let at_promotion_plus = load.ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (ok, failed) = load.finish().await;
    println!(
        "CLUSTER FAILOVER of {primary}: replica 127.0.0.1:{replica_port} promoted after {promoted_after:?}; \
         {before} cycles before, {ok} in all, {failed} failed operations during the run"
    );
    assert!(
        ok > at_promotion_plus,
        "the client keeps working after the failover"
    );
    // Once the new primary serves, every operation succeeds (checked without load, so a slow
    // shared machine cannot blur it): 50 hold/release cycles on the failed-over section.
    let user = UserId::parse("after").unwrap();
    for n in 0..50 {
        let req = HoldRequest::new(
            event.clone(),
            user.clone(),
            ClientReservationId::parse(&format!("after-{n}")).unwrap(),
            vec![
                seat(&format!("s0-{}", 150 + n % 40)),
                seat(&format!("s1-{}", 150 + n % 40)),
            ],
            Some(60),
            c.limits(),
        )
        .unwrap();
        let hold = match c.hold(&req).await.unwrap() {
            HoldOutcome::Created(h) => h,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            c.release(&hold.id, Caller::User(&user)).await.unwrap(),
            ReleaseOutcome::Released(_)
        ));
    }
    // Seats released by the workers are free; the cluster answers from the new primary.
    let a = c.availability(&event).await.unwrap().unwrap();
    assert!(a.iter().all(|s| s.held == 0), "{a:?}");
}
