//! Operations: a real Prometheus (the binary `scripts/test-ops --prometheus` provides; the test
//! command sets SEATS_TEST_PROMETHEUS) scrapes a gateway and a reconciler during a small sale,
//! with the project's alert rules loaded. The scrape must succeed, the key series must show the
//! sale, no alert about correctness may fire, and every metric the alerts and the Grafana
//! dashboard use must be one the processes export.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gateway::auth::Role;
use harness::{reconciler, setup, token};
use reqwest::Method;
use serde_json::{json, Value};

fn prometheus_binary() -> String {
    std::env::var("SEATS_TEST_PROMETHEUS").unwrap_or_else(|_| {
        panic!(
            "SEATS_TEST_PROMETHEUS is not set: scripts/test sets it (scripts/test-ops --prometheus \
             prints a Prometheus binary's path)"
        )
    })
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A histogram's series name without its `_bucket`, `_sum` or `_count` suffix.
fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// A JSON answer of Prometheus's API.
async fn api(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Metric names (not recording rules: those hold a colon) the alerts and the dashboard read.
fn metrics_used() -> BTreeSet<String> {
    let mut text = std::fs::read_to_string(repo().join("ops/prometheus/alerts.yml")).unwrap();
    text.push_str(
        &std::fs::read_to_string(repo().join("ops/grafana/dashboards/seatalloc.json")).unwrap(),
    );
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        let rest = &text[i..];
        if word_start
            && ["gateway_", "reconciler_", "coordinator_"]
                .iter()
                .any(|p| rest.starts_with(p))
        {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
                .count();
            let after = rest.as_bytes().get(len).copied();
            if after != Some(b':') {
                names.insert(base_name(&rest[..len]).to_owned());
            }
            i += len.max(1);
        } else {
            i += 1;
        }
    }
    names
}

/// A query's result; empty while Prometheus is still starting (the loops below retry).
async fn query(http: &reqwest::Client, prom: &str, q: &str) -> Vec<Value> {
    let Ok(res) = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
    else {
        return Vec::new();
    };
    let v: Value = res.json().await.unwrap_or(Value::Null);
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value(series: &[Value]) -> f64 {
    series
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_both_processes_during_a_sale_and_every_dashboard_metric_exists() {
    let binary = prometheus_binary();
    let (gw, db, event) = setup("ops").await;
    // The reconciler's own HTTP routes, as its binary serves them, over the in-process daemon.
    let routes = reconciler::routes(
        gw.reconciler_metrics(),
        db.pool.clone(),
        gw.app.coordinator.clone(),
    );
    let (reconciler_addr, server) = warp::serve(routes).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    let gateway_admin = gw.admin.trim_start_matches("http://").to_owned();
    let ready: Value = reqwest::get(format!("http://{reconciler_addr}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({"postgres": true, "redis": true}));

    let dir = std::env::temp_dir().join(format!("seats-prom-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ['{gateway_admin}']\n\
             \x20 - job_name: reconciler\n    static_configs:\n      - targets: ['{reconciler_addr}']\n",
            repo().join("ops/prometheus/alerts.yml").display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let _prometheus = harness::Child(
        std::process::Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}")),
    );
    let prom = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < until,
            "Prometheus did not start: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A small sale: browse, a hold refused, a hold bought and its ticket scanned in, a waiting
    // room joined.
    let (s, _, _) = gw
        .call(Method::GET, &format!("/events/{event}/seatmap"), None, None)
        .await;
    assert_eq!(s, 200);
    let alice = token("alice", Role::Buyer);
    let (s, hold) = gw
        .hold(
            &event,
            "alice",
            json!({"client_reservation_id": "a", "user_id": "alice", "seat_ids": ["orch-A-1"]}),
        )
        .await;
    assert_eq!(s, 201, "{hold}");
    let (s, _) = gw
        .hold(
            &event,
            "bob",
            json!({"client_reservation_id": "b", "user_id": "bob", "seat_ids": ["orch-A-1"]}),
        )
        .await;
    assert_eq!(s, 409);
    let commit = format!("/reservations/{}/commit", hold["hold_id"].as_str().unwrap());
    let (s, v, _) = gw
        .call(
            Method::POST,
            &commit,
            Some(&alice),
            Some(json!({"idempotency_key": "k", "payment_token": "tok_visa"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Its ticket scanned in at a gate.
    let (s, tickets, _) = gw
        .call(
            Method::GET,
            &format!("/orders/{}/tickets", v["order_id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 200, "{tickets}");
    let (s, verdict, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/checkins"),
            Some(&token("north-1", Role::Gate)),
            Some(json!({"payload": tickets["tickets"][0]["payload"]})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), &verdict["verdict"]),
        (200, &json!("admitted")),
        "{verdict}"
    );
    let root = token("root", Role::Admin);
    let (s, v, _) = gw
        .call(
            Method::PUT,
            &format!("/events/{event}/admission"),
            Some(&root),
            Some(json!({"mode": "queue", "rate_per_second": 1, "burst": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/queue"),
            Some(&token("carol", Role::Buyer)),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Prometheus sees both processes and the sale.
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let up = query(&http, &prom, "up").await;
        let paid = value(&query(&http, &prom, "gateway_orders_total{outcome=\"paid\"}").await);
        let written =
            value(&query(&http, &prom, "reconciler_commits_total{outcome=\"paid\"}").await);
        if up.len() == 2 && value(&up) == 2.0 && paid >= 1.0 && written >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "Prometheus never saw the sale: up {up:?}, paid {paid}, written {written}; log: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let scripts = value(
        &query(
            &http,
            &prom,
            "sum(coordinator_script_duration_seconds_count{job=\"gateway\",script=\"hold\"})",
        )
        .await,
    );
    assert!(scripts >= 2.0, "hold scripts timed: {scripts}");
    assert_eq!(
        value(&query(&http, &prom, "sum(reconciler_oversell_total)").await),
        0.0
    );
    let held = value(
        &query(
            &http,
            &prom,
            "gateway_holds_total{outcome=\"seats_unavailable\"}",
        )
        .await,
    );
    assert_eq!(held, 1.0);

    // Every metric the alerts and the dashboard read is exported by one of the processes.
    let names = api(&http, format!("{prom}/api/v1/label/__name__/values")).await;
    let exported: BTreeSet<String> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .map(|n| base_name(n).to_owned())
        .collect();
    let used = metrics_used();
    assert!(used.len() >= 20, "the parser found the metrics: {used:?}");
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "used by the alerts or the dashboard, exported by nobody: {missing:?}"
    );

    // The project's rules loaded and evaluate without errors (each once evaluated), and no
    // correctness alert fires on a healthy sale.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = api(&http, format!("{prom}/api/v1/rules")).await;
        let groups = rules["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!groups.is_empty(), "{rules}");
        let health: Vec<(String, String)> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bad: Vec<&(String, String)> = health.iter().filter(|(_, h)| h == "err").collect();
        assert!(bad.is_empty(), "rules failing: {bad:?} ({rules})");
        if health.iter().all(|(_, h)| h == "ok") {
            break;
        }
        assert!(
            Instant::now() < until,
            "rules never all evaluated: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let firing = query(
        &http,
        &prom,
        "ALERTS{alertstate=\"firing\",severity=\"critical\"}",
    )
    .await;
    assert!(firing.is_empty(), "{firing:?}");
    drop(_prometheus);
    let _ = std::fs::remove_dir_all(&dir);
    db.drop().await;
}
