//! The gateway over HTTP against a real cluster and a real Postgres database of its own.
#![allow(clippy::unwrap_used)]

#[path = "../../coordinator/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

#[path = "../../catalog/tests/db/mod.rs"]
mod db;

/// A gateway on free ports with its own database.
async fn spawn_app() -> (SocketAddr, SocketAddr, gateway::App, db::TestDb) {
    let test_db = db::TestDb::new("gw").await;
    let app = gateway::App {
        coordinator: Arc::new(support::shared().await),
        db: test_db.pool.clone(),
        metrics: Arc::new(gateway::metrics::Metrics::new().unwrap()),
    };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (public, admin, _task) =
        gateway::serve(app.clone(), any, any, std::future::pending()).unwrap();
    (public, admin, app, test_db)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // Bodies may be chunked: take the JSON between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    (status, json, body.to_owned())
}

#[tokio::test]
async fn health_availability_and_the_one_error_shape() {
    let (public, admin, app, test_db) = spawn_app().await;
    assert_eq!(get(public, "/healthz").await.0, 200);
    let (status, body, _) = get(public, "/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    let event = support::unique_event("gw");
    support::open_grid(&app.coordinator, &event, 3, 10).await;
    let (status, body, _) = get(public, &format!("/events/{event}/availability")).await;
    assert_eq!(status, 200);
    assert_eq!(body["capacity"], 30);
    assert_eq!(body["free"], 30);
    assert_eq!(body["sections"].as_array().unwrap().len(), 3);

    // Client mistakes: the right 4xx, one JSON shape.
    for (path, want_status, want_code) in [
        (
            format!("/events/{}/availability", support::unique_event("nope")),
            404,
            "unknown_event",
        ),
        (
            "/events/bad%20id/availability".to_owned(),
            400,
            "invalid_event_id",
        ),
        ("/no/such/route".to_owned(), 404, "not_found"),
    ] {
        let (status, body, raw) = get(public, &path).await;
        assert_eq!(status, want_status, "{path}: {raw}");
        assert_eq!(body["error"]["code"], want_code, "{path}: {raw}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    // Metrics live on the admin listener only.
    let (status, _, text) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("gateway_http_requests_total"), "{text}");
    assert_eq!(get(public, "/metrics").await.0, 404);
    test_db.drop().await;
}

#[test]
fn compose_file_describes_the_stack() {
    let root = support::repo_root();
    let text = std::fs::read_to_string(root.join("compose.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for wanted in ["postgres", "redis-cluster-init", "gateway", "reconciler"] {
        assert!(
            names.contains(&wanted),
            "compose.yaml lacks {wanted}: {names:?}"
        );
    }
    let redis_nodes = names
        .iter()
        .filter(|n| n.starts_with("redis-") && **n != "redis-cluster-init")
        .count();
    assert_eq!(redis_nodes, 6, "six Redis nodes");
    // Where docker-compose is installed, it must accept the file too.
    for tool in [vec!["docker-compose"], vec!["docker", "compose"]] {
        let works = std::process::Command::new(tool[0])
            .args(&tool[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            continue;
        }
        let out = std::process::Command::new(tool[0])
            .args(&tool[1..])
            .args(["-f", "compose.yaml", "config", "-q"])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool:?} config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{tool:?} config accepted compose.yaml");
        return;
    }
    println!("docker-compose not installed: checked compose.yaml's structure only");
}
