//! Every scenario of the benchmark at a tiny scale against a real gateway (real Redis Cluster,
//! real Postgres, the in-process durable writer), so the harness cannot rot. This checks that
//! each run completes and that the correctness checks hold, never a timing.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::sync::Arc;

use loadgen::bench::{self, Plan};
use loadgen::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_at_smoke_scale_and_its_checks_hold() {
    let db = harness::db::TestDb::new("loadgen").await;
    let gw = harness::gateway_on(&db).await;
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
    let plan = Plan::smoke();
    let report = bench::run(&target, &plan).await.unwrap();

    // Every open-loop run sent its whole schedule and got answers, without errors.
    for s in report.runs.iter().chain([&report.sustained_holds]) {
        let expected = (s.target_rate.unwrap() * plan.step_secs as f64).round() as u64;
        assert_eq!(s.completed, expected, "{s:?}");
        assert_eq!(s.failed, 0, "{s:?}");
        assert!(s.ok > 0, "{s:?}");
    }
    // At full contention on 100 seats, with every hold released at once, some holds find their
    // seat taken and some do not; at none, no hold is refused.
    let hot = report
        .runs
        .iter()
        .find(|s| s.name.contains("contention 1.00"))
        .unwrap();
    assert!(hot.ok > 0, "{hot:?}");
    let cold = report
        .runs
        .iter()
        .find(|s| s.name.contains("contention 0.00"))
        .unwrap();
    assert_eq!(cold.refused, 0, "{cold:?}");

    // The flash sale sold every seat exactly once, and the books balance.
    let f = &report.flash;
    assert!(f.correct, "{f:?}");
    assert_eq!(f.sold_in_postgres, plan.flash_seats as i64, "{f:?}");
    assert_eq!(f.seats_sold_twice, 0);
    assert_eq!(f.confirmed_orders_missing, 0);
    assert_eq!(f.payments_without_order, 0);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(
        f.orders_200 + f.orders_pending_then_paid,
        plan.flash_seats as u64
    );
    assert_eq!(
        f.orders_200 + f.orders_pending_then_paid + f.left_without_seats,
        plan.flash_users as u64,
        "every buyer either bought or left: {f:?}"
    );
    // The gateway's admission pace was read during the sale, and is a share.
    assert!(f.pace.readings > 0, "{:?}", f.pace);
    assert!(
        f.pace.lowest.is_some_and(|p| (0.0..=1.0).contains(&p)),
        "{:?}",
        f.pace
    );

    // Ceilings and baselines ran; each strategy held seats at both contention levels.
    assert!(report.redis_ceiling.ok > 0 && report.redis_ceiling.failed == 0);
    assert!(report.http_ceiling.ok > 0 && report.http_ceiling.failed == 0);
    if std::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok()
    {
        let pg = report.pg_ceiling.as_ref().expect("pgbench ran");
        assert!(pg.tps > 0.0);
    }
    assert_eq!(report.baselines.len(), 6);
    for c in &report.baselines {
        assert!(c.stats.ok > 0, "{c:?}");
        assert_eq!(c.stats.failed, 0, "{c:?}");
    }
    // The baselines left no seat held behind them.
    let (held,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM bench_inventory WHERE status <> 'available'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(held, 0);

    // The overload runs: holds and checkout at twice what each sustained, every operation
    // either done, refused (a seat taken, or shed at once) or counted as an error.
    assert_eq!(
        report
            .overload
            .iter()
            .map(|o| (o.class, o.factor))
            .collect::<Vec<_>>(),
        [("holds", 2.0), ("checkout", 2.0)]
    );
    for o in &report.overload {
        assert!(o.stats.completed > 0, "{o:?}");
    }
    // Postgres's work per checkout was read: a paid checkout writes rows.
    assert!(
        report.pg_per_checkout.iter().all(|p| p.rows_written > 0.0),
        "{:?}",
        report.pg_per_checkout
    );
    assert!(!report.pg_per_checkout.is_empty());
    // ... and it wrote in transactions of its own (each given a transaction id).
    assert!(
        report.pg_per_checkout.iter().all(|p| p.writing_xacts > 0.0),
        "{:?}",
        report.pg_per_checkout
    );

    // The hot event's general-admission floor was held by quantity, and its places came back.
    let floor = report
        .runs
        .iter()
        .find(|s| {
            s.name
                .starts_with("holds, GA floor of 200 places over 8 shards")
        })
        .expect("the floor's run");
    assert!(floor.ok > 0 && floor.failed == 0, "{floor:?}");
    // Redis's time is told apart for its primaries: the busy ceiling run found them (a short
    // smoke step may spend less than the 10 ms /proc counts in).
    assert!(
        report.redis_ceiling.redis_primaries_us_per_op > 0.0,
        "{:?}",
        report.redis_ceiling
    );

    // The report names every target with a figure.
    let md = report.markdown("scripts/bench --smoke", "test");
    assert!(md.contains("## Overload: load shedding"));
    assert!(md.contains("## Cores for the design's rates"), "{md}");
    assert!(
        md.contains("| hold + release (the sustained run) |"),
        "{md}"
    );
    assert_eq!(report.targets.len(), 7);
    for t in &report.targets {
        assert!(md.contains(&t.target), "{}", t.target);
    }
    // ... and each one missed (at this scale, at least the rates) once more with by how much.
    let missed = report.targets.iter().filter(|t| !t.met).count();
    assert!(missed > 0);
    let section = md
        .split("## Missed targets: by how much, and what bounds them")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the missed targets section");
    assert_eq!(section.matches("\n- **").count(), missed, "{section}");
    db.drop().await;
}
