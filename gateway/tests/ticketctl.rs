//! `ticketctl` as a user runs it: generate a venue file, import it, create an event, open sales,
//! mint a token, load the demo; against the real cluster and a database of the test's own.
#![allow(clippy::unwrap_used)]

use test_support::cluster as support;

use test_support::db;

use std::process::Command;

const SECRET: &str = "ticketctl-test-secret-0123456789abcdef";

fn ticketctl(db: &db::TestDb, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketctl"))
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("SEATS_REDIS__NODES", support::shared_nodes().join(","))
        .env("SEATS_AUTH__JWT_SECRET", SECRET)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_organizer_sets_up_a_sale_from_the_shell() {
    let db = db::TestDb::new("ctl").await;
    let dir = std::env::temp_dir().join(format!("ticketctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let (ok, venue_json, err) = ticketctl(&db, &["generate", "theatre"]);
    assert!(ok, "{err}");
    let file = dir.join("theatre.json");
    std::fs::write(&file, &venue_json).unwrap();
    let (ok, out, err) = ticketctl(&db, &["import-venue", file.to_str().unwrap()]);
    assert!(ok && out.contains("2000 seats"), "{out}{err}");
    let (ok, _, err) = ticketctl(&db, &["import-venue", file.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // A broken file names its problem and fails.
    std::fs::write(&file, venue_json.replace("\"premium\"", "\"prem ium\"")).unwrap();
    let (ok, _, err) = ticketctl(&db, &["import-venue", file.to_str().unwrap()]);
    assert!(!ok, "{err}");

    let event = support::unique_event("ctl");
    let (ok, out, err) = ticketctl(
        &db,
        &[
            "create-event",
            "--id",
            event.as_str(),
            "--venue",
            "demo-theatre",
            "--title",
            "Shell Night",
            "--starts-at",
            "2030-05-01T19:00:00Z",
            "--price",
            "premium=9000",
            "--price",
            "standard=6000",
            "--price",
            "economy=3000",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = ticketctl(&db, &["open-sales", event.as_str()]);
    assert!(ok && out.contains("on sale"), "{out}{err}");
    let stored = catalog::events::get_event(&db.pool, event.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, catalog::events::EventStatus::OnSale);
    let c = support::shared().await;
    let capacity: u64 = c
        .availability(&event)
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|s| s.capacity)
        .sum();
    assert_eq!(
        capacity, 2_000,
        "open-sales loaded the inventory into Redis"
    );

    let (ok, token, err) = ticketctl(
        &db,
        &[
            "token",
            "--sub",
            "alice",
            "--role",
            "organizer",
            "--ttl-secs",
            "60",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(token.trim().split('.').count(), 3, "a JWT");

    let demo = support::unique_event("ctl-demo");
    let (ok, out, err) = ticketctl(&db, &["demo", "--event", demo.as_str()]);
    assert!(ok && out.contains("on sale"), "{out}{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    db.drop().await;
}
