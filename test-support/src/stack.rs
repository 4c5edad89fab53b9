//! The whole stack for a test: a gateway over real HTTP on port 0, against the shared Redis
//! Cluster and a Postgres database of the test's own, with an in-process reconciler (the durable
//! writer) on a commit queue of the test's own; the gateway and reconciler binaries as child
//! processes; the books check every checkout test ends with.

pub use crate::cluster as support;
pub use crate::db;
pub use crate::tokens::{token, Role, SECRET};
/// For the tests that drive the reconciler's passes themselves: the gateway's tests reach the
/// reconciler through here, never as a dependency of their own.
pub use reconciler;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coordinator::{EventId, RedisSettings};
use gateway::auth::Keys;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Creates the demo theatre's seat map as a venue of its own (`{name}-{uuid}`, with `areas`)
/// and a draft event on it whose sale opens `opens_in` from now, owned by the demo organizer,
/// priced 120/80/45 USD by category. Returns the event and the venue's id.
pub async fn theatre_event(
    db: &db::TestDb,
    name: &str,
    areas: Vec<catalog::seatmap::Area>,
    opens_in: chrono::Duration,
) -> (EventId, String) {
    let mut map =
        catalog::seatmap::demo_theatre_as(&format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    map.areas = areas;
    assert!(matches!(
        catalog::venues::create_venue(&db.pool, &map).await.unwrap(),
        catalog::venues::VenueOutcome::Created { .. }
    ));
    let event = support::unique_event(name);
    let draft = catalog::events::EventDraft {
        id: event.to_string(),
        venue_id: map.venue.id.clone(),
        title: format!("{name} night"),
        category: "concert".into(),
        starts_at: chrono::Utc::now() + chrono::Duration::days(30),
        sale_opens_at: chrono::Utc::now() + opens_in,
        prices: [("premium", 12_000), ("standard", 8_000), ("economy", 4_500)]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
        currency: "USD".into(),
    };
    catalog::events::create_event(&db.pool, &draft, Some(catalog::DEMO_ORGANIZER))
        .await
        .unwrap();
    (event, map.venue.id)
}

/// The webhook signing secret the tests' sandbox and gateways share.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

pub struct Gw {
    pub base: String,
    pub admin: String,
    pub app: gateway::App,
    pub http: reqwest::Client,
    /// The in-process reconciler (durable writer, sweeper, reconciliation); stops with `self`.
    reconciler: Option<(runtime::AbortOnDrop, Arc<reconciler::Metrics>)>,
}

/// The commit queue of a test database (gateways and writers of one test share it; tests do not).
pub fn queue_of(db: &db::TestDb) -> String {
    db.url().rsplit('/').next().unwrap().to_owned()
}

/// Fast reconciler settings for tests.
pub fn reconciler_config(consumer: &str) -> reconciler::Config {
    reconciler::Config {
        interval: Duration::from_millis(300),
        sweep_interval: Duration::from_millis(200),
        writer: orders::writer::WriterConfig {
            consumer: consumer.to_owned(),
            batch: 64,
            stale_after: Duration::from_secs(2),
            pause_in_batch: Duration::ZERO,
        },
        payment_grace: Duration::from_secs(2),
        // Small: with a provider paging small, a listing is read over several passes.
        payment_pages_per_pass: 2,
        waitlist_offer_ttl: Duration::from_secs(900),
    }
}

/// The sandbox behind a test gateway.
pub fn sandbox(gw: &Gw) -> &payments::sandbox::Sandbox {
    match &gw.app.payments {
        payments::Provider::Sandbox(s) => s,
        other => panic!("not the sandbox: {other:?}"),
    }
}

pub async fn gateway_on(db: &db::TestDb) -> Gw {
    // The production bounds (TTL 60-900 s), not the tests' short ones.
    gateway_with(db, coordinator::Limits::default()).await
}

pub async fn gateway_with(db: &db::TestDb, limits: coordinator::Limits) -> Gw {
    gateway_opts(
        db,
        Opts {
            limits,
            ..Opts::default()
        },
    )
    .await
}

/// How a test gateway is put together.
pub struct Opts {
    /// Hold bounds.
    pub limits: coordinator::Limits,
    /// The sandbox's answer latency.
    pub latency: Duration,
    /// Run a reconciler (durable writer) in process.
    pub reconciler: bool,
    /// How often its reconciliation pass runs (payments settled, Redis repaired from Postgres).
    pub reconcile_every: Duration,
    /// The sandbox delivers signed webhooks to this gateway.
    pub webhooks: bool,
    /// Another provider than the sandbox (the Stripe stub).
    pub provider: Option<payments::Provider>,
    /// Rate limits (default: too high to matter; tests send bursts from one IP).
    pub rate_limits: settings::RateLimits,
    /// A Redis Cluster of the test's own (default: the shared one).
    pub redis_nodes: Option<Vec<String>>,
    /// The commit latency the waiting rooms are paced to keep (default: the production one).
    pub pace_target: Option<Duration>,
    /// The listeners' header-read timeout and connection cap (default: the production ones).
    pub connections: gateway::listener::Connections,
    /// The public listener's URL as configured (`http.public_url`; default: its address).
    pub public_url: Option<String>,
    /// The public listener's port (default: a free one), for a provider that must know where
    /// to send webhooks before the gateway starts.
    pub port: Option<u16>,
    /// Load shedding (default: off, as tests send bursts a production limit would shed).
    pub shed: Option<settings::Shed>,
    /// How long the reconciler's waiting-list offers last (default: the production 15 min).
    pub waitlist_offer_ttl: Duration,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            limits: coordinator::Limits::default(),
            latency: Duration::ZERO,
            reconciler: true,
            reconcile_every: Duration::from_millis(300),
            webhooks: true,
            provider: None,
            rate_limits: settings::RateLimits {
                per_ip_per_sec: 100_000,
                per_ip_burst: 100_000,
                per_user_per_sec: 100_000,
                per_user_burst: 100_000,
                client_ip_header: None,
            },
            redis_nodes: None,
            pace_target: gateway::CheckoutConfig::default().pace_target,
            connections: gateway::listener::Connections::default(),
            public_url: None,
            port: None,
            shed: None,
            waitlist_offer_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// A gateway whose sandbox answers after `latency`, with or without an in-process reconciler,
/// and with or without the sandbox's signed webhooks to this gateway.
pub async fn gateway_full(
    db: &db::TestDb,
    limits: coordinator::Limits,
    latency: Duration,
    reconciler: bool,
    webhooks: bool,
) -> Gw {
    gateway_opts(
        db,
        Opts {
            limits,
            latency,
            reconciler,
            webhooks,
            ..Opts::default()
        },
    )
    .await
}

/// A gateway put together as `opts` says.
pub async fn gateway_opts(db: &db::TestDb, opts: Opts) -> Gw {
    let Opts {
        limits,
        latency,
        reconciler: with_reconciler,
        reconcile_every,
        webhooks,
        provider,
        rate_limits,
        redis_nodes,
        pace_target,
        connections,
        public_url,
        port,
        shed,
        waitlist_offer_ttl,
    } = opts;
    let redis = RedisSettings {
        nodes: redis_nodes.unwrap_or_else(support::shared_nodes),
        commit_queue: queue_of(db),
        ..RedisSettings::default()
    };
    let coordinator = Arc::new(
        support::connect(redis.nodes.clone(), limits)
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
    .unwrap();
    // Chosen first: the sandbox needs the webhook URL.
    let port = port.unwrap_or_else(free_port);
    let sandbox = payments::sandbox::Sandbox::new(
        db.pool.clone(),
        payments::sandbox::SandboxConfig {
            latency,
            slow_answer: Duration::from_secs(30),
            webhook: webhooks.then(|| payments::sandbox::WebhookTarget {
                url: format!("http://127.0.0.1:{port}/webhooks/payments"),
                secret: WEBHOOK_SECRET.to_owned().into(),
            }),
            ..payments::sandbox::SandboxConfig::default()
        },
    );
    let app = app
        .with_payments(
            provider.unwrap_or_else(|| payments::Provider::Sandbox(Arc::new(sandbox))),
            gateway::CheckoutConfig {
                charge_deadline: Duration::from_secs(3),
                write_deadline: Duration::from_secs(5),
                webhook_secret: Some(WEBHOOK_SECRET.to_owned().into()),
                pace_target,
            },
        )
        .with_rate_limits(&rate_limits)
        .with_connections(connections)
        .with_public_url(public_url);
    let app = match shed {
        Some(shed) => app.with_shedding(&shed),
        None => app,
    };
    let public = SocketAddr::from(([127, 0, 0, 1], port));
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (public, admin, _task) =
        gateway::serve(app.clone(), public, any, std::future::pending()).unwrap();
    let reconciler = with_reconciler.then(|| {
        let svc = app.services();
        let metrics = Arc::new(reconciler::Metrics::new().unwrap());
        let consumer = format!("test-{}", uuid::Uuid::new_v4().simple());
        let task = runtime::AbortOnDrop(tokio::spawn(reconciler::run(
            svc,
            metrics.clone(),
            reconciler::Config {
                interval: reconcile_every,
                waitlist_offer_ttl,
                ..reconciler_config(&consumer)
            },
            runtime::CancellationToken::new(),
        )));
        (task, metrics)
    });
    Gw {
        base: format!("http://{public}"),
        admin: format!("http://{admin}"),
        app,
        http: reqwest::Client::new(),
        reconciler,
    }
}

/// A database, the demo venue with an event on sale (its own id), and a gateway.
pub async fn setup(prefix: &str) -> (Gw, db::TestDb, EventId) {
    setup_opts(prefix, Opts::default()).await
}

/// [`setup`] with a gateway put together as `opts` says.
pub async fn setup_opts(prefix: &str, opts: Opts) -> (Gw, db::TestDb, EventId) {
    let db = db::TestDb::new(prefix).await;
    let gw = gateway_opts(&db, opts).await;
    let event = support::unique_event(prefix);
    catalog::load_demo(&db.pool, &gw.app.coordinator, &event)
        .await
        .unwrap();
    // Tests place many holds for one buyer; the ticket limit has its own test.
    sqlx::query("UPDATE events SET max_tickets_per_buyer = 100 WHERE id = $1")
        .bind(event.as_str())
        .execute(&db.pool)
        .await
        .unwrap();
    (gw, db, event)
}

impl Gw {
    /// The in-process reconciler's metrics.
    pub fn reconciler_metrics(&self) -> Arc<reconciler::Metrics> {
        self.reconciler
            .as_ref()
            .map(|(_, m)| m.clone())
            .expect("no in-process reconciler")
    }

    /// The gateway's `/metrics` text (admin listener).
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until the in-process reconciler has finished `n` whole reconciliation passes.
    pub async fn reconciled(&self, n: u64) {
        let (_, metrics) = self.reconciler.as_ref().expect("no in-process reconciler");
        let passes = || {
            ["repair_ok", "repair_error"]
                .iter()
                .map(|l| metrics.passes_total.with_label_values(&[l]).get())
                .sum::<u64>()
        };
        let until = Instant::now() + Duration::from_secs(10);
        while passes() < n {
            assert!(
                Instant::now() < until,
                "the reconciler made no pass in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }

    pub async fn hold(&self, event: &EventId, user: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(
                Method::POST,
                &format!("/events/{event}/reservations"),
                Some(&token(user, Role::Buyer)),
                Some(body),
            )
            .await;
        (s, v)
    }
}

pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"].get("details").is_some(),
        "details is always present: {body}"
    );
}

/// A free local port (bound, then released for a child process to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process of ours (gateway or reconciler binary), killed with SIGKILL when dropped.
pub struct Child(pub std::process::Child);

impl Child {
    /// Starts `binary` with the settings of a test database and its commit queue, plus `env`,
    /// and waits until `health` (a URL) answers.
    pub async fn start(
        binary: &str,
        db: &db::TestDb,
        env: &[(&str, String)],
        health: &str,
    ) -> Self {
        let mut cmd = std::process::Command::new(binary);
        cmd.env("SEATS_REDIS__NODES", support::shared_nodes().join(","))
            .env("SEATS_REDIS__COMMIT_QUEUE", queue_of(db))
            .env("DATABASE_URL", db.url())
            .env(
                "SEATS_AUTH__JWT_SECRET",
                std::str::from_utf8(SECRET).unwrap(),
            )
            .env("SEATS_PAYMENTS__WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env(
                "RUST_LOG",
                std::env::var("CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Logs go to stderr (inherited: shown with the test's output); CHILD_LOG sets
            // their filter.
            .stdout(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = Child(cmd.spawn().unwrap());
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if http
                .get(health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return child;
            }
            assert!(
                std::time::Instant::now() < until,
                "{binary} did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The invariants after any crash: no seat sold twice, and every payment the provider kept
/// has an order (and every order's payment is kept): no money without seats.
pub async fn assert_books_balance(gw: &Gw, db: &db::TestDb) {
    assert_books_balance_with(&gw.app.payments, db).await;
}

/// [`assert_books_balance`] against any provider: its captured payments, listed page by page
/// as reconciliation reads them.
pub async fn assert_books_balance_with(provider: &payments::Provider, db: &db::TestDb) {
    let (doubles,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT event_id, seat_id FROM sold_seats WHERE live
         GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(doubles, 0, "a seat sold twice");
    let mut kept = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = provider
            .list_succeeded_page(0, payments::now_unix() + 86_400, after.as_deref())
            .await
            .unwrap();
        kept.extend(page.payments.into_iter().map(|p| p.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    kept.sort();
    let mut ordered: Vec<String> =
        sqlx::query_as::<_, (String,)>("SELECT payment_ref FROM orders WHERE status = 'paid'")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(p,)| p)
            .collect();
    ordered.sort();
    assert_eq!(kept, ordered, "captured payments and paid orders differ");
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < until, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn count(db: &db::TestDb, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&db.pool).await.unwrap();
    n
}

pub async fn hold_seats(gw: &Gw, event: &EventId, user: &str, seats: &[&str], ttl: u64) -> String {
    let (s, v) = gw
        .hold(
            event,
            user,
            serde_json::json!({"client_reservation_id": format!("c-{user}-{}", seats.join("-")),
                "user_id": user, "seat_ids": seats, "ttl_seconds": ttl}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["hold_id"].as_str().unwrap().to_owned()
}

pub async fn commit(
    gw: &Gw,
    user: &str,
    hold: &str,
    key: &str,
    token_: &str,
) -> (StatusCode, Value) {
    let (s, v, _) = gw
        .call(
            Method::POST,
            &format!("/reservations/{hold}/commit"),
            Some(&token(user, Role::Buyer)),
            Some(serde_json::json!({"idempotency_key": key, "payment_token": token_})),
        )
        .await;
    (s, v)
}
