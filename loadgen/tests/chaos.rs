//! The chaos suite's client and books checker against a real gateway (real Redis Cluster, real
//! Postgres, the in-process durable writer and reconciliation), without faults: a small sale
//! balances, and the checker fails the books it must fail. `scripts/chaos` runs them with faults.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use loadgen::chaos::{self, ChaosSale};
use loadgen::{books, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_sale_balances_and_the_checker_fails_broken_books() {
    let db = harness::db::TestDb::new("chaos").await;
    // Abandoned holds ask for 8 s.
    let gw = harness::gateway_with(
        &db,
        coordinator::Limits {
            min_ttl_secs: 5,
            ..coordinator::Limits::default()
        },
    )
    .await;
    let target = Target {
        api: gw.base.clone(),
        admin: gw.admin.clone(),
        http: Target::client().unwrap(),
        db: db.pool.clone(),
        coordinator: gw.app.coordinator.clone(),
        keys: Arc::new(gateway::auth::Keys::new(harness::SECRET).unwrap()),
        database_url: db.url().into(),
        payments: gw.app.payments.clone(),
    };
    let id = loadgen::run_id();
    let dir = std::env::temp_dir().join(format!("seatalloc-chaos-test-{id}"));
    let sale = ChaosSale {
        event: format!("chaos-{id}"),
        gateways: vec![gw.base.clone()],
        buyers: 80,
        seats: 75,
        arrival_rate: 40.0,
        deadline: Duration::from_secs(60),
        dir: dir.clone(),
    };
    chaos::setup(&target, &sale).await.unwrap();
    let sandbox = payments::sandbox::Sandbox::new(
        db.pool.clone(),
        payments::sandbox::SandboxConfig {
            webhook: Some(payments::sandbox::WebhookTarget {
                url: format!("{}/webhooks/payments", gw.base),
                secret: harness::WEBHOOK_SECRET.to_owned().into(),
            }),
            ..Default::default()
        },
    );
    let summary = chaos::run(&target, &sale, sandbox).await.unwrap();
    assert!(summary["paid_seen"].as_u64().unwrap() > 0, "{summary}");
    let ended: u64 = summary["buyers_ended"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(ended, 80, "every buyer ended somehow: {summary}");
    assert!(
        books::check(&target, &dir, &sale.event, Duration::from_secs(30))
            .await
            .unwrap(),
        "{summary}"
    );

    // An order the client saw paid that Postgres does not have.
    let paid = chaos::paid_file(&dir);
    let kept = std::fs::read_to_string(&paid).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&paid)
        .unwrap();
    writeln!(
        f,
        r#"{{"order_id":"{}","user":"x","seats":["hot-A-1"],"seen":"commit_200"}}"#,
        uuid::Uuid::new_v4()
    )
    .unwrap();
    assert!(!books::check(&target, &dir, &sale.event, Duration::ZERO)
        .await
        .unwrap());
    // The same order told other seats than it has.
    let first: serde_json::Value = serde_json::from_str(kept.lines().next().unwrap()).unwrap();
    let line = serde_json::json!({"order_id": first["order_id"], "seats": ["s9-Z-99"]});
    std::fs::write(&paid, format!("{kept}{line}\n")).unwrap();
    assert!(!books::check(&target, &dir, &sale.event, Duration::ZERO)
        .await
        .unwrap());
    std::fs::write(&paid, &kept).unwrap();
    assert!(books::check(&target, &dir, &sale.event, Duration::ZERO)
        .await
        .unwrap());

    // A frozen event.
    sqlx::query("UPDATE events SET status = 'frozen' WHERE id = $1")
        .bind(&sale.event)
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(!books::check(&target, &dir, &sale.event, Duration::ZERO)
        .await
        .unwrap());

    let _ = std::fs::remove_dir_all(&dir);
    db.drop().await;
}
