//! One function per route, each returning `impl Filter + Clone`; state injected with
//! [`with_app`]; every rejection recovered into the one JSON error shape.

use std::convert::Infallible;

use warp::Filter;

use crate::{errors, handlers, App};

/// Injects the application state.
pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// The buyer-facing API.
pub fn public(app: App) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let metrics = app.metrics.clone();
    healthz()
        .or(readyz(app.clone()))
        .or(availability(app))
        .recover(errors::recover)
        .with(warp::log::custom(move |info| {
            // Route label: the first path segment, so ids never become labels.
            let route = info.path().split('/').nth(1).unwrap_or("");
            let route = match route {
                "healthz" | "readyz" | "events" => route,
                _ => "other",
            };
            metrics
                .http_requests_total
                .with_label_values(&[route, info.status().as_str()])
                .inc();
            metrics
                .http_request_duration_seconds
                .with_label_values(&[route])
                .observe(info.elapsed().as_secs_f64());
        }))
}

/// The admin listener: metrics (and, later, admin routes), never on the public port.
pub fn admin(app: App) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_app(app))
        .map(|app: App| app.metrics.render())
        .or(healthz())
        .recover(errors::recover)
}

/// `GET /healthz`: the process is alive.
pub fn healthz() -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})))
}

/// `GET /readyz`: Redis and Postgres answer.
pub fn readyz(
    app: App,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path!("readyz")
        .and(warp::get())
        .and(with_app(app))
        .and_then(handlers::readyz)
}

/// `GET /events/{id}/availability`: free, held, sold and blocked per section.
pub fn availability(
    app: App,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path!("events" / String / "availability")
        .and(warp::get())
        .and(with_app(app))
        .and_then(handlers::availability)
}
