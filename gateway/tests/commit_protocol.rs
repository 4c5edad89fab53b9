//! The commit protocol's holes (issue 17), one test each, over real HTTP against the real
//! cluster and Postgres: every captured payment ends as an order or a refund (reconciliation
//! pages through any volume and forgets no payment for its age; a webhook that arrives while its
//! commit is in flight is not lost); a refunded sale is never sold again in Redis; a pin never
//! keeps a hold past its cap; a declined commit never unpins a hold already sold; the writer
//! sells exactly the seats it records.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::{keys, ClientReservationId, EventId, HoldId, UserId};
use fred::prelude::*;
use gateway::auth::Role;
use harness::{commit, count, db, eventually, hold_seats, reconciler, sandbox, token, Gw};
use payments::{ChargeOutcome, ChargeRequest, PaymentStatus};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn reservation(gw: &Gw, user: &str, hold: &str) -> Value {
    let (s, v, _) = gw
        .call(
            Method::GET,
            &format!("/reservations/{hold}"),
            Some(&token(user, Role::Buyer)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// A seat's state as Redis has it: free, held, sold or blocked.
async fn seat_state(gw: &Gw, event: &EventId, seat: &str) -> &'static str {
    let sections = gw
        .app
        .coordinator
        .seat_states(event)
        .await
        .unwrap()
        .unwrap();
    let is = |seats: &[coordinator::SeatId]| seats.iter().any(|s| s.as_str() == seat);
    for section in &sections {
        if is(&section.held) {
            return "held";
        }
        if is(&section.sold) {
            return "sold";
        }
        if is(&section.blocked) {
            return "blocked";
        }
    }
    "free"
}

/// A captured payment for a hold whose commit died before anything else happened: charged as
/// checkout charges, then nobody wrote its order.
async fn orphaned_payment(provider: &payments::Provider, event: &EventId, n: usize) -> String {
    let user = UserId::parse("orphan").unwrap();
    let client = ClientReservationId::parse(&format!("orphan-{n}")).unwrap();
    let hold = HoldId::derive(event, &user, &client);
    let request = ChargeRequest {
        idempotency_key: format!("{hold}:k"),
        amount_cents: 1_000,
        currency: "EUR".into(),
        token: "tok_visa".into(),
        metadata: [
            (orders::meta::ORDER, orders::order_id(&hold).to_string()),
            (orders::meta::HOLD, hold.to_string()),
            (orders::meta::EVENT, event.to_string()),
            (orders::meta::USER, user.to_string()),
            (orders::meta::CLIENT_KEY, "k".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    match provider.charge(&request).await.unwrap() {
        ChargeOutcome::Succeeded { payment_id } => payment_id,
        other => panic!("{other:?}"),
    }
}

/// Reconciliation passes run by hand, by a reconciler that starts now, with no grace: every
/// payment is old enough to settle. At most two pages of the provider's listing a pass.
async fn reconcile(gw: &Gw, passes: usize) {
    let svc = gw.app.services();
    let metrics = reconciler::Metrics::new().unwrap();
    let config = reconciler::Config {
        payment_grace: Duration::ZERO,
        payment_pages_per_pass: 2,
        ..harness::reconciler_config("by-hand")
    };
    let counts = catalog::SectionCounts::default();
    let mut repaired = reconciler::RepairCursor::default();
    for _ in 0..passes {
        reconciler::reconcile_once(&svc, &metrics, &config, &mut repaired, &counts).await;
    }
}

async fn status_of(provider: &payments::Provider, payment: &str) -> PaymentStatus {
    provider.retrieve(payment).await.unwrap().unwrap().status
}

/// Hole 1: the provider's listing of a window longer than the client's page bound was refused,
/// every pass, and its payments were never settled.
#[tokio::test]
async fn reconciliation_pages_through_any_volume_and_refunds_every_orphan() {
    let db = db::TestDb::new("pages").await;
    let (addr, _stub) = payments::stripe::stub::spawn_stub("sk_test_stub").await;
    let mut config = payments::stripe::StripeConfig::new("sk_test_stub".to_owned().into());
    config.base_url = format!("http://{addr}");
    // One payment a page; the client used to refuse a listing of more than two.
    let stripe = payments::stripe::Stripe::new(config)
        .unwrap()
        .with_list_paging(1, 2);
    let provider = payments::Provider::Stripe(Arc::new(stripe));
    let gw = harness::gateway_opts(
        &db,
        harness::Opts {
            provider: Some(provider.clone()),
            reconciler: false,
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let event = harness::support::unique_event("pages");
    let mut orphans = Vec::new();
    for n in 0..3 {
        orphans.push(orphaned_payment(&provider, &event, n).await);
    }
    reconcile(&gw, 1).await;
    let mut refunded = 0;
    for p in &orphans {
        if status_of(&provider, p).await == PaymentStatus::Refunded {
            refunded += 1;
        }
    }
    assert_eq!(refunded, 2, "the first pass reads two pages of one");
    reconcile(&gw, 1).await;
    for p in &orphans {
        assert_eq!(
            status_of(&provider, p).await,
            PaymentStatus::Refunded,
            "{p} refunded after two passes"
        );
    }
    db.drop().await;
}

/// Hole 1: a reconciler looked back six hours at most; an older payment without an order was
/// never settled.
#[tokio::test]
async fn an_orphaned_payment_seven_hours_old_is_refunded() {
    let (gw, db, event) = harness::setup_opts(
        "oldpay",
        harness::Opts {
            reconciler: false,
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let payment = orphaned_payment(&gw.app.payments, &event, 0).await;
    sqlx::query(
        "UPDATE sandbox_payments SET created_at = now() - interval '7 hours' WHERE id = $1",
    )
    .bind(&payment)
    .execute(&db.pool)
    .await
    .unwrap();
    reconcile(&gw, 2).await;
    assert_eq!(
        status_of(&gw.app.payments, &payment).await,
        PaymentStatus::Refunded
    );
    assert!(sandbox(&gw).kept_payments().await.unwrap().is_empty());
    db.drop().await;
}

/// Hole 1: the provider's webhook for a charge that answers after the commit's deadline (202)
/// arrives while the commit is still charging; it was recorded as handled and did nothing, so
/// only reconciliation could write the order. Reconciliation is off here: the webhook must do it.
#[tokio::test]
async fn a_timed_out_charge_is_finished_by_its_webhook() {
    let (gw, db, event) = harness::setup_opts(
        "hook202",
        harness::Opts {
            // The reconciler's first pass runs at once (nothing to settle yet); the next in an hour.
            reconcile_every: Duration::from_secs(3_600),
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-C-5"], 300).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-slow", "tok_timeout").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending")),
        "{v}"
    );
    let order = v["order_id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(15),
        "the webhook writes the order",
        || async {
            let n: (i64,) = sqlx::query_as(
                "SELECT count(*) FROM orders WHERE id = $1::uuid AND status = 'paid'",
            )
            .bind(&order)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            (n.0 == 1).then_some(())
        },
    )
    .await;
    assert_eq!(seat_state(&gw, &event, "orch-C-5").await, "sold");
    db.drop().await;
}

/// Hole 2: a replayed commit job of an order refunded since, whose hold record is gone, was read
/// as paid and its seats sold again in Redis (repair mode).
#[tokio::test]
async fn a_replayed_job_of_a_refunded_order_sells_nothing_again() {
    let (gw, db, event) = harness::setup_opts(
        "resell",
        harness::Opts {
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-E-5"], 300).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-1", "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let order = v["order_id"].as_str().unwrap().to_owned();
    let (payment, total, currency): (String, i64, String) =
        sqlx::query_as("SELECT payment_ref, total_cents, currency FROM orders WHERE id = $1::uuid")
            .bind(&order)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let res = gw
        .http
        .post(format!("{}/admin/orders/{order}/refund", gw.admin))
        .bearer_auth(token("root", Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(seat_state(&gw, &event, "orch-E-5").await, "free");

    // The hold's record is gone (its retention ran out, or a failover lost it), and the original
    // job comes round again (a writer that died before acknowledging it).
    let hold_id = HoldId::parse(&hold).unwrap();
    let redis = gw.app.coordinator.redis().next().clone();
    let _: i64 = redis.del(keys::hold(&hold_id)).await.unwrap();
    let job = orders::CommitJob {
        order_id: uuid::Uuid::parse_str(&order).unwrap(),
        hold_id: hold.clone(),
        event_id: event.to_string(),
        user_id: "alice".into(),
        seats: vec!["orch-E-5".into()],
        total_cents: total,
        currency,
        payment_ref: payment,
        idempotency_key: "k-1".into(),
    };
    let metrics = gw.reconciler_metrics();
    let written = || {
        ["paid", "superseded", "oversold", "expired"]
            .iter()
            .map(|l| metrics.commits_total.with_label_values(&[l]).get())
            .sum::<u64>()
    };
    let before = written();
    gw.app
        .coordinator
        .enqueue_commit(&serde_json::to_string(&job).unwrap())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the writer takes the job",
        || async { (written() > before).then_some(()) },
    )
    .await;
    assert_eq!(seat_state(&gw, &event, "orch-E-5").await, "free");
    let (status,): (String,) =
        sqlx::query_as("SELECT status::text FROM orders WHERE id = $1::uuid")
            .bind(&order)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(status, "refunded");
    db.drop().await;
}

/// Hole 2, the race: a sale read as paid, then refunded (which returned its seats), then told to
/// Redis. Whoever told it reads Postgres again afterwards and takes it back, audited.
#[tokio::test]
async fn a_sale_told_to_redis_after_its_refund_is_taken_back_and_audited() {
    let (gw, db, event) = harness::setup_opts(
        "untold",
        harness::Opts {
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-E-7"], 300).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-1", "tok_visa").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let order = uuid::Uuid::parse_str(v["order_id"].as_str().unwrap()).unwrap();
    let refunded = orders::refund::refund_order(&gw.app.services(), order, "root")
        .await
        .unwrap();
    assert!(matches!(
        refunded,
        orders::refund::RefundResult::Refunded { .. }
    ));
    assert_eq!(seat_state(&gw, &event, "orch-E-7").await, "free");
    // The late sale (a writer or a repair pass that read the order before the refund).
    let (hold_id, user) = (
        HoldId::parse(&hold).unwrap(),
        UserId::parse("alice").unwrap(),
    );
    let seats = vec![coordinator::SeatId::parse("orch-E-7").unwrap()];
    gw.app
        .coordinator
        .repair_sale(&event, &hold_id, Some(&user), &seats)
        .await
        .unwrap();
    assert_eq!(seat_state(&gw, &event, "orch-E-7").await, "sold");
    let sale = orders::refund::ToldSale {
        order,
        event: event.clone(),
        hold: hold_id,
        user: Some(user),
        seats,
    };
    let freed = orders::refund::untell_unpaid(&db.pool, &gw.app.coordinator, &[sale], "test")
        .await
        .unwrap();
    assert_eq!(freed, 1);
    assert_eq!(seat_state(&gw, &event, "orch-E-7").await, "free");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM seat_audit WHERE seat_id = 'orch-E-7' AND action = 'refunded'
             AND actor = 'test'"
        )
        .await,
        1
    );
    db.drop().await;
}

/// Hole 3: every replay of a commit waiting for the buyer's action (3-D Secure) pinned the hold
/// again, past its cap, for as long as replays came.
#[tokio::test]
async fn replayed_commits_never_pin_a_hold_past_its_cap() {
    let limits = coordinator::Limits {
        min_ttl_secs: 1,
        max_ttl_secs: 4,
        default_ttl_secs: 2,
        max_hold_lifetime_secs: 4,
        max_pin_secs: 2,
        ..coordinator::Limits::default()
    };
    let (gw, db, event) = harness::setup_opts(
        "pincap",
        harness::Opts {
            limits,
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-F-1"], 2).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-3ds", "tok_requires_action").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("requires_action")),
        "{v}"
    );
    let cap_at = reservation(&gw, "alice", &hold).await["cap_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let cap_at = chrono::DateTime::parse_from_rfc3339(&cap_at).unwrap();
    // The buyer's client replays the commit every 1.5 s for 10 s.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let (s, v) = commit(&gw, "alice", &hold, "k-3ds", "tok_requires_action").await;
        assert!(
            s == StatusCode::ACCEPTED || s == StatusCode::GONE,
            "{s}: {v}"
        );
    }
    assert!(chrono::Utc::now() > cap_at);
    let after = reservation(&gw, "alice", &hold).await;
    assert_eq!(after["state"], "expired", "{after}");
    assert_eq!(seat_state(&gw, &event, "orch-F-1").await, "free");
    db.drop().await;
}

/// Hole 4: a declined commit unpinned the hold although another key's commit of it was already
/// paid in Postgres (its seats about to be marked sold).
#[tokio::test]
async fn a_declined_commit_leaves_a_hold_sold_in_postgres_pinned() {
    let (gw, db, event) = harness::setup_opts(
        "declpaid",
        harness::Opts {
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-G-5"], 300).await;
    let (s, v) = commit(&gw, "alice", &hold, "k-paid", "tok_requires_action").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(reservation(&gw, "alice", &hold).await["state"], "pinned");
    // That commit's order is written (the writer marks its attempt paid in the same
    // transaction); Redis is not told yet.
    sqlx::query("UPDATE commit_attempts SET status = 'paid' WHERE idempotency_key = 'k-paid'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (s, v) = commit(&gw, "alice", &hold, "k-declined", "tok_chargeDeclined").await;
    assert_eq!(s.as_u16(), 402, "{v}");
    assert_eq!(reservation(&gw, "alice", &hold).await["state"], "pinned");
    db.drop().await;
}

/// Hole 5: the writer recorded the job's seats in Postgres but sold the seats of the hold's
/// record, as its pin read them, without comparing the two.
#[tokio::test]
async fn the_writer_refuses_a_job_whose_seats_are_not_the_holds() {
    let (gw, db, event) = harness::setup_opts(
        "seatdiff",
        harness::Opts {
            reconciler: false,
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-H-1", "orch-H-2"], 300).await;
    // No writer runs: the commit charges, queues its job and answers 202 after its deadline.
    let (s, v) = commit(&gw, "alice", &hold, "k", "tok_visa").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Between the job's queueing and its write, the record's seats change (one of the two).
    let hold_id = HoldId::parse(&hold).unwrap();
    let redis = gw.app.coordinator.redis().next().clone();
    let _: i64 = redis
        .hset(keys::hold(&hold_id), ("seats", "orch-H-1"))
        .await
        .unwrap();
    let svc = gw.app.services();
    svc.coordinator.ensure_commit_group().await.unwrap();
    let report = orders::writer::step(
        &svc,
        &orders::writer::WriterConfig {
            consumer: "seatdiff".into(),
            batch: 64,
            stale_after: Duration::from_secs(2),
            pause_in_batch: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!((report.jobs, report.paid), (1, 0), "{report:?}");
    assert_eq!(count(&db, "SELECT count(*) FROM orders").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM sold_seats").await, 0);
    assert!(
        sandbox(&gw).kept_payments().await.unwrap().is_empty(),
        "refunded"
    );
    for seat in ["orch-H-1", "orch-H-2"] {
        assert_ne!(seat_state(&gw, &event, seat).await, "sold", "{seat}");
    }
    db.drop().await;
}

/// An idle writer waits for the next job on a connection of its own (it used to poll the queue
/// every 5 ms, about 260 Redis calls a second for nothing), and a job queued during the wait is
/// written at once, not when the wait ends.
#[tokio::test]
async fn a_waiting_writer_writes_a_job_as_soon_as_it_is_queued() {
    let (gw, db, event) = harness::setup_opts(
        "writerwait",
        harness::Opts {
            reconciler: false,
            webhooks: false,
            ..harness::Opts::default()
        },
    )
    .await;
    let hold = hold_seats(&gw, &event, "alice", &["orch-H-1"], 300).await;
    let svc = gw.app.services();
    svc.coordinator.ensure_commit_group().await.unwrap();
    let wait = Duration::from_secs(30);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let config = orders::writer::WriterConfig {
            consumer: "waiter".into(),
            batch: 64,
            stale_after: Duration::from_secs(2),
            pause_in_batch: Duration::ZERO,
        };
        let reading = orders::writer::Reading {
            claim_stale: false,
            wait,
        };
        orders::writer::step_reading(&svc, &config, reading).await
    });
    // The queue is empty: the writer is waiting when the commit queues its job.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = commit(&gw, "alice", &hold, "k", "tok_visa").await;
    let report = writer.await.unwrap().unwrap();
    assert_eq!((report.jobs, report.paid), (1, 1), "{report:?}");
    assert!(
        started.elapsed() < wait,
        "the read answered with the job, not at the end of its wait"
    );
    assert!(s == StatusCode::OK || s == StatusCode::ACCEPTED, "{s} {v}");
    assert_eq!(count(&db, "SELECT count(*) FROM orders").await, 1);
    db.drop().await;
}
