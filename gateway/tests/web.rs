//! The web app's serving (`/app/`), the development sign-in (absent with production settings),
//! and the live availability stream, over real HTTP against real Redis Cluster and Postgres.
#![allow(clippy::unwrap_used)]

use test_support::stack as harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use coordinator::RedisSettings;
use gateway::auth::{Keys, Role};
use harness::{assert_error, db, setup, support, token, Gw, SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A gateway (no reconciler, no payments) serving `web`.
async fn gateway_with_web(db: &db::TestDb, web: gateway::web::Web) -> (String, reqwest::Client) {
    let redis = RedisSettings {
        nodes: support::shared_nodes(),
        commit_queue: harness::queue_of(db),
        ..RedisSettings::default()
    };
    let coordinator = Arc::new(
        support::connect(redis.nodes.clone(), coordinator::Limits::default())
            .await
            .with_commit_queue(&redis.commit_queue),
    );
    let app = gateway::App::new(
        coordinator,
        db.pool.clone(),
        Keys::new(SECRET).unwrap(),
        &redis,
    )
    .await
    .unwrap()
    .with_web(web);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (public, _, _task) = gateway::serve(app, any, any, std::future::pending()).unwrap();
    (format!("http://{public}"), reqwest::Client::new())
}

async fn post_signin(http: &reqwest::Client, base: &str, body: Value) -> (StatusCode, Value) {
    let r = http
        .post(format!("{base}/dev/signin"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn with_production_settings_there_is_no_sign_in_route() {
    // The settings as a deployment loads them: only the signing key is given.
    std::env::set_var(
        "SEATS_AUTH__JWT_SECRET",
        "0123456789abcdef0123456789abcdef-production",
    );
    std::env::remove_var("SEATS_AUTH__DEV_SIGNIN");
    let settings = settings::Settings::load().unwrap();
    let db = db::TestDb::new("nosignin").await;
    let (base, http) = gateway_with_web(&db, gateway::web::Web::from_settings(&settings)).await;
    let (s, v) = post_signin(&http, &base, json!({"name": "mallory"})).await;
    assert_error(s, &v, 404, "not_found");
    assert!(v.get("token").is_none(), "{v}");
    // Nor under any other method.
    let r = http.get(format!("{base}/dev/signin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    db.drop().await;
}

#[tokio::test]
async fn the_development_sign_in_hands_out_a_buyer_token_when_turned_on() {
    let db = db::TestDb::new("devsignin").await;
    let (base, http) = gateway_with_web(&db, gateway::web::Web::load(None, true)).await;
    let (s, v) = post_signin(&http, &base, json!({"name": "alice"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user_id"], "alice");
    assert_eq!(v["role"], "buyer");
    let token = v["token"].as_str().unwrap();
    // The token is accepted as a buyer's: an unknown hold is "unknown", not "unauthorized".
    let r = http
        .get(format!("{base}/reservations/{}", uuid::Uuid::new_v4()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_error(status, &r.json().await.unwrap(), 404, "unknown_hold");
    // Bad input gets the one error shape.
    let (s, v) = post_signin(&http, &base, json!({"name": "no spaces allowed"})).await;
    assert_error(s, &v, 422, "invalid_name");
    let (s, v) = post_signin(&http, &base, json!({"name": "a", "role": "admin"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    db.drop().await;
}

#[tokio::test]
async fn the_app_is_served_with_immutable_assets_and_a_short_lived_index() {
    let dir = std::env::temp_dir().join(format!("web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    std::fs::write(dir.join("assets/app-3F2A9C1B.js"), "console.log(1)").unwrap();
    std::fs::write(dir.join("gate.html"), "<!doctype html><title>gate</title>").unwrap();
    let db = db::TestDb::new("webapp").await;
    let (base, http) = gateway_with_web(&db, gateway::web::Web::load(Some(&dir), false)).await;
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    let r = get("/app/").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<title>t</title>"));
    // The gate scanner's page: like the index, short-lived.
    let r = get("/app/gate.html").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    assert!(r.text().await.unwrap().contains("<title>gate</title>"));

    let r = get("/app/assets/app-3F2A9C1B.js").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], "/app/");

    // Only the files read at start exist: nothing else of the file system is reachable.
    for path in [
        "/app/assets/nope.js",
        "/app/assets/",
        "/app/%2e%2e/%2e%2e/etc/passwd",
        "/app/../Cargo.toml",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    db.drop().await;
}

/// Reads a server-sent events stream frame by frame.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

/// One event: (id, event name, data).
type SseEvent = (String, String, Value);

impl Sse {
    async fn open(gw: &Gw, path: &str, last_event_id: Option<&str>) -> Self {
        let mut req = gw.http.get(format!("{}{path}", gw.base));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with data (the `retry` field and heartbeats are skipped). A generous
    /// bound so a broken stream fails the test instead of hanging it.
    async fn next(&mut self) -> SseEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !data.is_empty() {
                    return (id, name, serde_json::from_str(&data).unwrap());
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("no event within 30 s")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn seats(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_stream_pushes_the_seats_that_change_and_resumes_from_last_event_id() {
    let (gw, db, event) = setup("stream").await;
    let path = format!("/events/{event}/availability/stream");
    let buyer = token("alice", Role::Buyer);

    // An unknown event: the one error shape, no stream.
    let (s, v, _) = gw
        .call(Method::GET, "/events/nope/availability/stream", None, None)
        .await;
    assert_error(s, &v, 404, "unknown_event");

    let mut stream = Sse::open(&gw, &path, None).await;
    let (first_id, kind, snapshot) = stream.next().await;
    assert_eq!(kind, "snapshot");
    assert!(!seats(&snapshot, "taken").contains(&"orch-A-1".to_owned()));

    // Someone holds two seats: the stream says they are taken, without a reload.
    let (s, hold, _) = gw
        .call(
            Method::POST,
            &format!("/events/{event}/reservations"),
            Some(&buyer),
            Some(json!({"client_reservation_id": "s1", "user_id": "alice", "seat_ids": ["orch-A-1", "orch-A-2"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    let (held_id, kind, diff) = stream.next().await;
    assert_eq!(kind, "diff");
    assert_eq!(seats(&diff, "taken"), ["orch-A-1", "orch-A-2"]);
    assert!(seats(&diff, "freed").is_empty());

    // Cancelled: they are free again.
    let (s, _, _) = gw
        .call(
            Method::DELETE,
            &format!("/reservations/{}", hold["hold_id"].as_str().unwrap()),
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, kind, diff) = stream.next().await;
    assert_eq!(kind, "diff");
    assert_eq!(seats(&diff, "freed"), ["orch-A-1", "orch-A-2"]);

    // A browser that reconnects after the snapshot gets the two diffs it missed, in order.
    let mut resumed = Sse::open(&gw, &path, Some(&first_id)).await;
    let (id, kind, diff) = resumed.next().await;
    assert_eq!((id.as_str(), kind.as_str()), (held_id.as_str(), "diff"));
    assert_eq!(seats(&diff, "taken"), ["orch-A-1", "orch-A-2"]);
    let (_, kind, diff) = resumed.next().await;
    assert_eq!(kind, "diff");
    assert_eq!(seats(&diff, "freed"), ["orch-A-1", "orch-A-2"]);

    // An id this process never issued (another gateway's, or from before a restart): a snapshot.
    let mut foreign = Sse::open(&gw, &path, Some("0badf00d-7")).await;
    let (_, kind, snapshot) = foreign.next().await;
    assert_eq!(kind, "snapshot");
    assert!(!seats(&snapshot, "taken").contains(&"orch-A-1".to_owned()));
    assert_eq!(gw.app.live.open_streams(), 3);
    db.drop().await;
}
