//! The daemon's own listener: health, readiness and metrics.

use std::sync::Arc;

use coordinator::Coordinator;
use sqlx::PgPool;

use crate::metrics::Metrics;

/// The daemon's HTTP routes: `/healthz` (alive), `/readyz` (both stores answer), `/metrics`
/// (pool and queue gauges read at each scrape).
pub fn routes(
    metrics: Arc<Metrics>,
    db: PgPool,
    coordinator: Arc<Coordinator>,
) -> impl warp::Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    let state = warp::any().map(move || (metrics.clone(), db.clone(), coordinator.clone()));
    let healthz =
        warp::path!("healthz").map(|| warp::reply::json(&serde_json::json!({"status": "ok"})));
    let readyz = warp::path!("readyz").and(state.clone()).then(
        |(_, db, coordinator): (Arc<Metrics>, PgPool, Arc<Coordinator>)| async move {
            let pg = sqlx::query("SELECT 1").execute(&db).await.is_ok();
            let redis = coordinator.ping().await.is_ok();
            let status = if pg && redis {
                warp::http::StatusCode::OK
            } else {
                warp::http::StatusCode::SERVICE_UNAVAILABLE
            };
            warp::reply::with_status(
                warp::reply::json(&serde_json::json!({"postgres": pg, "redis": redis})),
                status,
            )
        },
    );
    let metrics = warp::path!("metrics").and(state).then(
        |(metrics, db, coordinator): (Arc<Metrics>, PgPool, Arc<Coordinator>)| async move {
            metrics.db_pool.observe(&db);
            if let Ok(n) = coordinator.commit_backlog().await {
                metrics.commit_backlog.set(n as i64);
            }
            metrics.render()
        },
    );
    healthz.or(readyz).or(metrics)
}
