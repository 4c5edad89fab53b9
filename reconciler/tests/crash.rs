//! kill -9 of the reconciler in the middle of a batch: its transaction never commits, its queue
//! entries stay unacknowledged, and another reconciler takes them over. Afterwards every commit
//! that got a 200 is in Postgres, every other one resolves to paid, no seat is sold twice, and
//! every captured payment has its order.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::time::{Duration, Instant};

use harness::{assert_books_balance, db, free_port, gateway_full, support, token, Child, Role};
use reqwest::StatusCode;
use serde_json::json;

async fn reconciler(db: &db::TestDb, pause_ms: u64) -> (Child, u16) {
    let port = free_port();
    let child = Child::start(
        env!("CARGO_BIN_EXE_reconciler"),
        db,
        &[
            ("SEATS_RECONCILER__ADDR", format!("127.0.0.1:{port}")),
            ("SEATS_RECONCILER__INTERVAL_MS", "300".into()),
            ("SEATS_RECONCILER__WRITER_STALE_AFTER_MS", "1000".into()),
            (
                "SEATS_RECONCILER__WRITER_PAUSE_IN_BATCH_MS",
                pause_ms.to_string(),
            ),
            ("SEATS_RECONCILER__PAYMENT_GRACE_MS", "2000".into()),
        ],
        &format!("http://127.0.0.1:{port}/healthz"),
    )
    .await;
    (child, port)
}

async fn paid_orders(db: &db::TestDb) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE status = 'paid'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_reconciler_killed_in_the_middle_of_a_batch_loses_no_commit() {
    let db = db::TestDb::new("rccrash").await;
    // A gateway with no reconciler of its own (the child processes are the only writers) and
    // no webhooks (which would queue each commit a second time and hide the takeover).
    let gw = gateway_full(
        &db,
        coordinator::Limits::default(),
        Duration::ZERO,
        false,
        false,
    )
    .await;
    let event = support::unique_event("rccrash");
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    // The first writer sleeps 3 s inside every batch's transaction: the kill lands mid-batch.
    let (mut first, _) = reconciler(&db, 3_000).await;

    let buyers: Vec<String> = (1..=8).map(|i| format!("buyer{i}")).collect();
    let mut holds = Vec::new();
    for (i, user) in buyers.iter().enumerate() {
        let (s, v) = gw
            .hold(
                &event,
                user,
                json!({"client_reservation_id": "c", "user_id": user,
                "seat_ids": [format!("orch-C-{}", i + 1)]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        holds.push(v["hold_id"].as_str().unwrap().to_owned());
    }
    let commits = futures::future::join_all(buyers.iter().zip(&holds).map(|(user, hold)| {
        let gw = &gw;
        async move {
            gw.call(
                reqwest::Method::POST,
                &format!("/reservations/{hold}/commit"),
                Some(&token(user, Role::Buyer)),
                Some(json!({"idempotency_key": "k", "payment_token": "tok_visa"})),
            )
            .await
        }
    }));
    let killer = async {
        // Every commit is charged and queued, the writer has read them and sits in its
        // transaction: kill it there.
        let until = Instant::now() + Duration::from_secs(10);
        while harness::sandbox(&gw).kept_payments().await.unwrap().len() < buyers.len() {
            assert!(Instant::now() < until, "the commits were not charged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        first.kill();
        assert_eq!(
            paid_orders(&db).await,
            0,
            "killed before its batch committed"
        );
        // Another reconciler takes the dead one's entries over.
        reconciler(&db, 0).await
    };
    let (answers, (second, second_port)) = tokio::join!(commits, killer);

    let mut ok = 0;
    for ((s, v, _), hold) in answers.iter().zip(&holds) {
        match *s {
            StatusCode::OK => {
                ok += 1;
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM orders WHERE hold_id = $1::uuid AND status = 'paid'",
                )
                .bind(hold)
                .fetch_one(&db.pool)
                .await
                .unwrap();
                assert_eq!(n, 1, "a 200 without its order in Postgres: {v}");
            }
            StatusCode::ACCEPTED => assert_eq!(v["status"], "pending", "{v}"),
            other => panic!("{other}: {v}"),
        }
    }
    // Every commit ends paid: the 202s too.
    let until = Instant::now() + Duration::from_secs(20);
    while paid_orders(&db).await < buyers.len() as i64 {
        assert!(Instant::now() < until, "not every commit was written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("answers: {ok} x 200, {} x 202", buyers.len() - ok);
    // The second writer took the dead one's entries over (they were delivered, never acked).
    let metrics = reqwest::get(format!("http://127.0.0.1:{second_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let claimed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("reconciler_commits_claimed_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    // (The dead writer's batch held the commits that had arrived when it read; the rest were
    // read fresh by the second writer.)
    assert!(claimed >= 1.0, "nothing was taken over: {metrics}");
    assert_eq!(
        harness::sandbox(&gw).kept_payments().await.unwrap().len(),
        buyers.len(),
        "each buyer charged once"
    );
    println!("taken over from the killed writer: {claimed}");
    assert_books_balance(&gw, &db).await;
    drop(second);
    db.drop().await;
}
