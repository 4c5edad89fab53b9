//! What a hold costs Redis, by Redis's own account (`INFO commandstats` on every primary of a
//! cluster no other test uses): calls per single-section hold, and per hold and its release.
//! Counts, not times: they do not depend on the machine.
//!
//! commandstats also counts the commands a script runs inside Redis (under their own names):
//! those are not calls anyone sent. The calls are the script calls (`EVALSHA`, `EVAL`) and the
//! commands the coordinator sends outside scripts on this path: announcements (`PUBLISH`) and
//! the layout read, made once per event and process (warmed up before counting).
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use std::collections::BTreeMap;

use coordinator::hold::{HoldOutcome, HoldRequest};
use coordinator::release::ReleaseOutcome;
use coordinator::{Caller, ClientReservationId, UserId};
use support::*;

/// The commands a caller sends on a hold's path (the rest of commandstats ran inside scripts, or
/// is the cluster's and the test's own business).
const CALLS: &[&str] = &[
    "evalsha",
    "eval",
    "evalsha_ro",
    "eval_ro",
    "fcall",
    "fcall_ro",
    "publish",
    "spublish",
];

/// Calls by command over every primary of `ports`.
fn calls(ports: &[u16]) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for port in ports {
        if !redis_cli(*port, &["ROLE"]).starts_with("master") {
            continue;
        }
        for line in redis_cli(*port, &["INFO", "commandstats"]).lines() {
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let (name, stats) = rest.split_once(':').unwrap();
            if !CALLS.contains(&name) {
                continue;
            }
            let n: u64 = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .unwrap()
                .parse()
                .unwrap();
            *all.entry(name.to_owned()).or_default() += n;
        }
    }
    all
}

fn minus(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

const HOLDS: u64 = 200;

#[tokio::test]
async fn a_single_section_hold_costs_two_calls_and_its_release_two() {
    let cluster = Dedicated::start("calls");
    let ports = cluster.ports();
    let c = connect(cluster.nodes.clone(), test_limits()).await;
    let event = unique_event("calls");
    open_grid(&c, &event, 4, 110).await;
    let request = |n: u64| {
        HoldRequest::new(
            event.clone(),
            UserId::parse(&format!("buyer-{n}")).unwrap(),
            ClientReservationId::parse(&format!("r{n}")).unwrap(),
            seats(&[
                &format!("s{}-{}", n % 4, n / 4 * 2),
                &format!("s{}-{}", n % 4, n / 4 * 2 + 1),
            ]),
            Some(60),
            c.limits(),
        )
        .unwrap()
        // As the gateway sends them: counted against the buyer's ticket limit.
        .with_ticket_limit(4)
    };
    // Warm up: the event's layout is read once per process, not per hold.
    let warm = match c.hold(&request(HOLDS)).await.unwrap() {
        HoldOutcome::Created(h) => h,
        other => panic!("{other:?}"),
    };
    c.release(&warm.id, Caller::System).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let before = calls(&ports);
    let mut held = Vec::new();
    for n in 0..HOLDS {
        match c.hold(&request(n)).await.unwrap() {
            HoldOutcome::Created(h) => held.push(h),
            other => panic!("hold {n}: {other:?}"),
        }
    }
    let after_holds = calls(&ports);
    for h in &held {
        assert!(matches!(
            c.release(&h.id, Caller::User(&h.user)).await.unwrap(),
            ReleaseOutcome::Released(_)
        ));
    }
    // Announcements go out within their coalescing window: let them land in the count.
    tokio::time::sleep(coordinator::updates::ANNOUNCE_COALESCE * 4).await;
    let after = calls(&ports);

    let holds = minus(&after_holds, &before);
    let all = minus(&after, &before);
    let scripts = |m: &BTreeMap<String, u64>| {
        m.iter()
            .filter(|(k, _)| k.as_str() != "publish" && k.as_str() != "spublish")
            .map(|(_, v)| *v)
            .sum::<u64>() as f64
            / HOLDS as f64
    };
    let announcements = all.get("publish").copied().unwrap_or(0) as f64 / HOLDS as f64;
    println!(
        "{HOLDS} single-section holds: {:.2} script calls per hold {holds:?}; with their \
         releases: {:.2} script calls per hold and release, and {announcements:.2} coalesced \
         announcements {all:?}",
        scripts(&holds),
        scripts(&all)
    );
    // The latency path of a hold: the buyer's record and count, then the section's seats.
    assert!(scripts(&holds) <= 2.0, "calls per hold: {holds:?}");
    // A hold counted against its buyer's limit and a release that gives the seats back at once
    // each change the buyer's count (its slot) and the section's seats (another slot): 2 + 2.
    assert!(scripts(&all) <= 4.0, "calls per hold and release: {all:?}");
    // Announcements are sent off the latency path, coalesced per section: at most one per
    // change, far fewer under load.
    assert!(announcements <= 2.0, "announcements: {all:?}");
}

/// A client asking about seats the event does not have costs Redis a count of the layout
/// (`HLEN`) at most once a second, never a read of the whole layout (it was an `HGETALL` of every
/// seat each second: 20 to 60 ms of a stadium's Redis node); a layout that grew since a process
/// read it is read again when that process is asked about a new seat, page by page.
#[tokio::test]
async fn made_up_seats_cost_a_count_and_a_grown_layout_is_read_again() {
    use coordinator::open::SectionInventory;
    use coordinator::SectionId;

    let cluster = Dedicated::start("layout");
    let ports = cluster.ports();
    let c = connect(cluster.nodes.clone(), test_limits()).await;
    // Another process: it reads the layout, and later finds it grown by `c`.
    let other = connect(cluster.nodes.clone(), test_limits()).await;
    let event = unique_event("layout");
    open_grid(&c, &event, 1, 10).await;
    let request = |seat: &str| {
        HoldRequest::new(
            event.clone(),
            UserId::parse("u").unwrap(),
            ClientReservationId::parse(&format!("r-{seat}")).unwrap(),
            seats(&[seat]),
            Some(60),
            c.limits(),
        )
        .unwrap()
    };
    let created = |o: &HoldOutcome| matches!(o, HoldOutcome::Created(_));
    let held = other.hold(&request("s0-1")).await.unwrap();
    assert!(created(&held), "{held:?}");

    let (hscan, hgetall, hlen) = (
        command_calls(&ports, "hscan"),
        command_calls(&ports, "hgetall"),
        command_calls(&ports, "hlen"),
    );
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let refused = other.hold(&request("nope-1")).await.unwrap();
        assert!(
            matches!(&refused, HoldOutcome::UnknownSeats(s) if s == &seats(&["nope-1"])),
            "{refused:?}"
        );
    }
    assert_eq!(command_calls(&ports, "hscan"), hscan, "no layout read");
    assert_eq!(command_calls(&ports, "hgetall"), hgetall, "no layout read");
    assert!(
        command_calls(&ports, "hlen") >= hlen + 2,
        "a count a second"
    );

    // The event grows: `other` finds the new section's seats.
    let grown = SectionInventory {
        section: SectionId::parse("s1").unwrap(),
        seats: (0..10).map(|n| seat(&format!("s1-{n}"))).collect(),
        sold: Default::default(),
        blocked: Default::default(),
    };
    c.open_event(&event, &[grown]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let held = other.hold(&request("s1-3")).await.unwrap();
    assert!(created(&held), "{held:?}");
    assert!(
        command_calls(&ports, "hscan") > hscan,
        "the grown layout read"
    );
}
