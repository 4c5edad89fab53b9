//! The gateway: the buyer-facing HTTP API and a separate admin listener (metrics).
//!
//! Layout follows warp's examples: [`filters`] (one function per route), [`handlers`],
//! [`errors`] (the one JSON error shape and the single `recover`), [`metrics`] (declared in one
//! place), [`auth`] (bearer JWTs and roles), [`body`] (JSON bodies: 400/413/415/422),
//! [`cache`] (per-process caches invalidated by pub/sub), [`best`] (best-available seating),
//! [`room`] (waiting-room polls answered from memory), [`pace`] (back-pressure from checkout to
//! the waiting rooms), [`openapi`] (each listener's OpenAPI document), [`shed`] (load shedding:
//! adaptive concurrency limits for holds and commits), [`live`] (availability streams fed by the
//! announcements), [`web`] (the buyer's web app under `/app/`, and the development sign-in).

pub mod auth;
pub mod best;
pub mod body;
pub mod cache;
pub mod errors;
pub mod filters;
pub mod handlers;
pub mod limits;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod pace;
pub mod quote;
pub mod request_id;
pub mod room;
pub mod shed;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use coordinator::Coordinator;
use secrecy::ExposeSecret;
use settings::Settings;
use sqlx::PgPool;

/// What every handler may use. Cloning it is one reference count: warp clones it into every
/// route a request is tried against, where a field-by-field copy would copy heap buffers (the
/// JWT keys) on every request.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// The state behind [`App`].
#[derive(Clone)]
pub struct AppState {
    /// Seat holds on Redis Cluster.
    pub coordinator: Arc<Coordinator>,
    /// The catalog and orders.
    pub db: PgPool,
    /// Prometheus registry and series.
    pub metrics: Arc<metrics::Metrics>,
    /// JWT keys.
    pub keys: auth::Keys,
    /// Signs tickets and verifies scanned payloads.
    pub tickets: Arc<orders::tickets::TicketKeys>,
    /// Per-process caches.
    pub caches: Arc<cache::Caches>,
    /// The payment provider.
    pub payments: payments::Provider,
    /// What browsers need to pay through the provider (`GET /payments/config`).
    pub payment_config: Arc<handlers::payments::PaymentConfig>,
    /// Checkout's deadlines and the webhook secret.
    pub checkout: Arc<CheckoutConfig>,
    /// Commits waiting for the durable writer's answer.
    pub waiters: Arc<orders::checkout::Waiters>,
    /// Times commits and paces the waiting rooms by them.
    pub pacer: Arc<pace::Pacer>,
    /// Request rate limits.
    pub limits: Arc<limits::Limits>,
    /// Header-read timeout and connection cap of the listeners.
    pub connections: listener::Connections,
    /// Load shedding of the public listener's holds and commits; `None`: off.
    pub shedder: Option<shed::Shedder>,
    /// Where clients reach the public listener (`http.public_url`); `None`: its bound address.
    pub public_url: Option<String>,
    /// The feeds of the availability streams.
    pub live: Arc<live::Hub>,
    /// The web app's files and the development sign-in switch.
    pub web: Arc<web::Web>,
    /// The listeners' OpenAPI documents, rendered by [`serve`] once the listeners are bound.
    docs: Arc<OnceLock<openapi::Docs>>,
    /// Evicts idle rate-limit keys; stops with the last clone of the app.
    _evictor: Arc<runtime::AbortOnDrop>,
    /// The pub/sub watcher that invalidates `caches`; stops with the last clone of the app.
    _watcher: Arc<runtime::AbortOnDrop>,
}

/// Checkout's settings.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// How long a commit waits for the provider before answering 202.
    pub charge_deadline: std::time::Duration,
    /// How long a commit waits for the durable writer before answering 202.
    pub write_deadline: std::time::Duration,
    /// Verifies `Stripe-Signature` on webhooks; `None`: the webhook endpoint answers 503.
    pub webhook_secret: Option<secrecy::SecretString>,
    /// The commit latency the waiting rooms are paced to keep; `None`: never slowed.
    pub pace_target: Option<std::time::Duration>,
}

impl CheckoutConfig {
    /// From the payments settings (a zero pace target: never slowed).
    pub fn from_settings(payments: &settings::Payments) -> Self {
        Self {
            charge_deadline: payments.charge_deadline,
            write_deadline: payments.write_deadline,
            webhook_secret: payments.webhook_secret.clone(),
            pace_target: (!payments.pace_target.is_zero()).then_some(payments.pace_target),
        }
    }
}

impl Default for CheckoutConfig {
    /// The settings' defaults.
    fn default() -> Self {
        Self::from_settings(&settings::Payments::default())
    }
}

/// Forgets idle rate-limit keys every minute.
fn evictor(limits: Arc<limits::Limits>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            limits.evict_idle();
        }
    })
}

impl App {
    /// Connects to Redis and Postgres.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let coordinator = Coordinator::connect(&settings.redis, settings.limits.clone()).await?;
        let db = catalog::pool::options(settings.database.max_connections)
            .connect(settings.database.url.expose_secret())
            .await?;
        let keys = auth::Keys::from_settings(settings)?;
        let tickets = match &settings.tickets {
            Some(configured) => orders::tickets::TicketKeys::from_config(configured)?,
            None => {
                tracing::warn!("tickets.signing_key is not set: tickets are signed with a key derived from auth.jwt_secret (key id jwt-derived); set SEATS_TICKETS__SIGNING_KEY and SEATS_TICKETS__KEY_ID for a deployment");
                keys.derived_ticket_keys()
            }
        };
        let payments = orders::provider(&settings.payments, &db)?;
        let checkout = CheckoutConfig::from_settings(&settings.payments);
        Ok(Self::new(Arc::new(coordinator), db, keys, &settings.redis)
            .await?
            .with_payments(payments, checkout)
            .with_payment_config(handlers::payments::PaymentConfig::from_settings(
                &settings.payments,
            ))
            .with_rate_limits(&settings.rate_limits)
            .with_connections(listener::Connections::from_settings(&settings.http))
            .with_shedding(&settings.shed)
            .with_public_url(settings.http.public_url.clone())
            .with_web(web::Web::from_settings(settings))
            .with_tickets(tickets))
    }

    /// Replaces the ticket keys (the default: derived from the token secret).
    pub fn with_tickets(mut self, tickets: orders::tickets::TicketKeys) -> Self {
        Arc::make_mut(&mut self.0).tickets = Arc::new(tickets);
        self
    }

    /// Replaces the web app and the development sign-in switch (the default: neither).
    pub fn with_web(mut self, web: web::Web) -> Self {
        Arc::make_mut(&mut self.0).web = Arc::new(web);
        self
    }

    /// Replaces the listeners' connection bounds (the default is [`listener::Connections::default`]).
    pub fn with_connections(mut self, connections: listener::Connections) -> Self {
        Arc::make_mut(&mut self.0).connections = connections;
        self
    }

    /// Replaces load shedding (the default is off).
    pub fn with_shedding(mut self, settings: &settings::Shed) -> Self {
        let shedder = shed::Shedder::new(settings, Some(self.metrics.clone()));
        Arc::make_mut(&mut self.0).shedder = shedder;
        self
    }

    /// The URL the public OpenAPI document names as its server (the default: the public
    /// listener's bound address).
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        Arc::make_mut(&mut self.0).public_url = url;
        self
    }

    /// The listeners' OpenAPI documents (servers relative until [`serve`] has bound them).
    pub fn docs(&self) -> &openapi::Docs {
        self.docs.get_or_init(openapi::Docs::default)
    }

    /// Replaces the rate limits (the default is [`settings::RateLimits::default`]).
    pub fn with_rate_limits(mut self, settings: &settings::RateLimits) -> Self {
        let limits = Arc::new(limits::Limits::new(settings));
        let state = Arc::make_mut(&mut self.0);
        state._evictor = Arc::new(runtime::AbortOnDrop(evictor(limits.clone())));
        state.limits = limits;
        self
    }

    /// Replaces the payment provider and checkout's settings (the default is a sandbox without
    /// webhooks).
    pub fn with_payments(mut self, payments: payments::Provider, checkout: CheckoutConfig) -> Self {
        let state = Arc::make_mut(&mut self.0);
        state.payments = payments;
        state.pacer = Arc::new(pace::Pacer::new(
            checkout.pace_target,
            state.metrics.admission_pace.clone(),
        ));
        state.checkout = Arc::new(checkout);
        self
    }

    /// Replaces what `GET /payments/config` tells browsers (the default: the embedded
    /// sandbox's).
    pub fn with_payment_config(mut self, config: handlers::payments::PaymentConfig) -> Self {
        Arc::make_mut(&mut self.0).payment_config = Arc::new(config);
        self
    }

    /// What settling and refunding need.
    pub fn services(&self) -> orders::Services {
        orders::Services {
            db: self.db.clone(),
            coordinator: self.coordinator.clone(),
            payments: self.payments.clone(),
        }
    }

    /// The commit protocol with this app's services, deadlines and waiters.
    pub fn checkout_flow(&self) -> orders::checkout::Checkout {
        let metrics = self.metrics.clone();
        orders::checkout::Checkout {
            services: self.services(),
            waiters: self.waiters.clone(),
            charge_deadline: self.checkout.charge_deadline,
            write_deadline: self.checkout.write_deadline,
            on_charge: Arc::new(move |outcome| {
                metrics.payments_total.with_label_values(&[outcome]).inc();
            }),
        }
    }

    /// Assembles the state and starts the cache-invalidation watcher.
    pub async fn new(
        coordinator: Arc<Coordinator>,
        db: PgPool,
        keys: auth::Keys,
        redis: &coordinator::RedisSettings,
    ) -> anyhow::Result<Self> {
        let caches = Arc::new(cache::Caches::default());
        let live = Arc::new(live::Hub::default());
        let limits = Arc::new(limits::Limits::new(&settings::RateLimits::default()));
        let waiters = Arc::new(orders::checkout::Waiters::default());
        let watcher = coordinator::updates::watch(redis, {
            let caches = caches.clone();
            let waiters = waiters.clone();
            let live = live.clone();
            move |update| match update {
                coordinator::updates::Update::Order(payload) => waiters.notify(&payload),
                other => {
                    caches.invalidate(&other);
                    live.announce(&other);
                }
            }
        })
        .await?;
        let metrics = Arc::new(metrics::Metrics::new()?);
        let checkout = CheckoutConfig::default();
        let pacer = Arc::new(pace::Pacer::new(
            checkout.pace_target,
            metrics.admission_pace.clone(),
        ));
        let tickets = Arc::new(keys.derived_ticket_keys());
        Ok(Self(Arc::new(AppState {
            coordinator,
            db: db.clone(),
            metrics,
            keys,
            tickets,
            caches,
            payments: payments::Provider::Sandbox(Arc::new(payments::sandbox::Sandbox::new(
                db.clone(),
                payments::sandbox::SandboxConfig::default(),
            ))),
            payment_config: Arc::default(),
            checkout: Arc::new(checkout),
            waiters,
            pacer,
            limits: limits.clone(),
            connections: listener::Connections::default(),
            shedder: None,
            public_url: None,
            live,
            web: Arc::new(web::Web::default()),
            docs: Arc::new(OnceLock::new()),
            _evictor: Arc::new(runtime::AbortOnDrop(evictor(limits))),
            _watcher: Arc::new(runtime::AbortOnDrop(watcher)),
        })))
    }
}

/// Binds both listeners and serves until `shutdown` resolves. Returns the bound addresses (port 0
/// picks a free port, as the tests do) and the server task, which ends once every connection
/// has finished its request.
pub fn serve(
    app: App,
    public: SocketAddr,
    admin: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, SocketAddr, tokio::task::JoinHandle<()>)> {
    let (public_listener, admin_listener) = (bind(public)?, bind(admin)?);
    let (public_addr, admin_addr) = (public_listener.local_addr()?, admin_listener.local_addr()?);
    // Before the first request can arrive: the servers are the addresses just bound.
    let _ = app.docs.set(openapi::Docs::for_listeners(
        app.public_url.as_deref(),
        public_addr,
        admin_addr,
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    app.live.stop_on(stopped.clone());
    let warmer = runtime::AbortOnDrop(tokio::spawn(warm_loop(app.clone())));
    let (bounds, metrics) = (app.connections, app.metrics.clone());
    let public_server = listener::serve(
        public_listener,
        warp::service(filters::public(app.clone())),
        bounds,
        app.shedder.clone(),
        metrics.clone(),
        "public",
        stopped.clone(),
    );
    let admin_server = listener::serve(
        admin_listener,
        warp::service(filters::admin(app)),
        bounds,
        None,
        metrics,
        "admin",
        stopped,
    );
    let task = tokio::spawn(async move {
        // Stops with the servers, or when this task is aborted.
        let _warmer = warmer;
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        tokio::join!(public_server, admin_server);
        signal.abort();
    });
    Ok((public_addr, admin_addr, task))
}

/// Keeps the venues of sales on (or about to go on) sale loaded ([`cache::Caches::warm`]).
async fn warm_loop(app: App) {
    let mut every = tokio::time::interval(cache::WARM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = app.caches.warm(&app).await {
            // The next tick tries again (a database that is down is what readiness reports).
            tracing::warn!(error = ?e, "sales to warm not read");
        }
    }
}

/// A listening socket with the backlog a flash sale's connection storm needs (the kernel's
/// default of 128 drops SYNs while the accept loop catches up).
fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}
