//! The gateway: the buyer-facing HTTP API and a separate admin listener (metrics).
//!
//! Layout follows warp's examples: [`filters`] (one function per route), [`handlers`],
//! [`errors`] (the one JSON error shape and the single `recover`), [`metrics`] (declared in one
//! place), [`auth`] (bearer JWTs and roles), [`body`] (JSON bodies: 400/413/415/422),
//! [`cache`] (per-process caches invalidated by pub/sub), [`best`] (best-available seating).

pub mod auth;
pub mod best;
pub mod body;
pub mod cache;
pub mod errors;
pub mod filters;
pub mod handlers;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use coordinator::Coordinator;
use secrecy::ExposeSecret;
use settings::Settings;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// What every handler may use.
#[derive(Clone)]
pub struct App {
    /// Seat holds on Redis Cluster.
    pub coordinator: Arc<Coordinator>,
    /// The catalog and orders.
    pub db: PgPool,
    /// Prometheus registry and series.
    pub metrics: Arc<metrics::Metrics>,
    /// JWT keys.
    pub keys: auth::Keys,
    /// Per-process caches.
    pub caches: Arc<cache::Caches>,
    /// The payment provider (the embedded sandbox).
    pub payments: Arc<payments::sandbox::Sandbox>,
    /// The pub/sub watcher that invalidates `caches`; stops with the last clone of the app.
    _watcher: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl App {
    /// Connects to Redis and Postgres.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let coordinator = Coordinator::connect(&settings.redis, settings.limits.clone()).await?;
        let db = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .connect(settings.database.url.expose_secret())
            .await?;
        let keys = auth::Keys::from_settings(settings)?;
        Self::new(Arc::new(coordinator), db, keys, &settings.redis).await
    }

    /// Assembles the state and starts the cache-invalidation watcher.
    pub async fn new(
        coordinator: Arc<Coordinator>,
        db: PgPool,
        keys: auth::Keys,
        redis: &coordinator::RedisSettings,
    ) -> anyhow::Result<Self> {
        let caches = Arc::new(cache::Caches::default());
        let watcher = coordinator::updates::watch(redis, {
            let caches = caches.clone();
            move |update| caches.invalidate(&update)
        })
        .await?;
        Ok(Self {
            coordinator,
            db,
            metrics: Arc::new(metrics::Metrics::new()?),
            keys,
            caches,
            payments: Arc::new(payments::sandbox::Sandbox::new(
                payments::sandbox::SandboxConfig::default(),
            )),
            _watcher: Arc::new(AbortOnDrop(watcher)),
        })
    }
}

/// Binds both listeners and serves until `shutdown` resolves. Returns the bound addresses (port 0
/// picks a free port, as the tests do) and the server task.
pub fn serve(
    app: App,
    public: SocketAddr,
    admin: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, SocketAddr, tokio::task::JoinHandle<()>)> {
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let (public_addr, public_server) = warp::serve(filters::public(app.clone()))
        .try_bind_with_graceful_shutdown(public, {
            let mut rx = tx.subscribe();
            async move {
                let _ = rx.recv().await;
            }
        })?;
    let (admin_addr, admin_server) = warp::serve(filters::admin(app))
        .try_bind_with_graceful_shutdown(admin, {
            let mut rx = tx.subscribe();
            async move {
                let _ = rx.recv().await;
            }
        })?;
    let task = tokio::spawn(async move {
        let stop = tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(());
        });
        tokio::join!(public_server, admin_server);
        stop.abort();
    });
    Ok((public_addr, admin_addr, task))
}
