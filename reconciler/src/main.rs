//! `reconciler`: the daemon, with `/healthz` and `/metrics` on its own listener.

use std::sync::Arc;

use secrecy::ExposeSecret;
use warp::Filter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    settings::init_tracing();
    let settings = settings::Settings::load()?;
    let coordinator = Arc::new(
        coordinator::Coordinator::connect(&settings.redis, settings.limits.clone()).await?,
    );
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(settings.database.url.expose_secret())
        .await?;
    catalog::migrate(&db).await?;
    let payments = orders::provider(&settings.payments, &db)?;
    let metrics = Arc::new(reconciler::Metrics::new()?);

    // Ready: both stores answer (a reconciler that cannot reach them does no work).
    let readyz = warp::path!("readyz").and_then({
        let (db, coordinator) = (db.clone(), coordinator.clone());
        move || {
            let (db, coordinator) = (db.clone(), coordinator.clone());
            async move {
                let pg = sqlx::query("SELECT 1").execute(&db).await.is_ok();
                let redis = coordinator.ping().await.is_ok();
                let status = if pg && redis {
                    warp::http::StatusCode::OK
                } else {
                    warp::http::StatusCode::SERVICE_UNAVAILABLE
                };
                Ok::<_, std::convert::Infallible>(warp::reply::with_status(
                    warp::reply::json(&serde_json::json!({"postgres": pg, "redis": redis})),
                    status,
                ))
            }
        }
    });
    let routes = warp::path!("healthz")
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})))
        .or(readyz)
        .or(warp::path!("metrics").map({
            let (metrics, db) = (metrics.clone(), db.clone());
            move || {
                metrics.db_pool.observe(&db);
                metrics.render()
            }
        }));
    let (addr, server) = warp::serve(routes).try_bind_ephemeral(settings.reconciler.addr)?;
    tracing::info!(%addr, "reconciler listening");
    tokio::spawn(server);

    // Unique per process: the consumer group tells writers apart by it.
    let consumer = format!(
        "writer-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    reconciler::run(
        orders::Services {
            db,
            coordinator,
            payments,
        },
        metrics,
        reconciler::Config::from_settings(&settings.reconciler, consumer),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    Ok(())
}
