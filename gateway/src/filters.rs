//! One function per route group, each returning `impl Filter + Clone`; state injected with
//! [`with_app`]; every rejection recovered into the one JSON error shape. [`ROUTES`] and
//! [`ADMIN_ROUTES`] list what each listener serves: a test keeps them, the router and the two
//! OpenAPI documents in agreement, and a method a path does not serve is answered 405 with
//! `Allow` from them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use catalog::events::Transition;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, StatusCode};
use warp::{Filter, Reply};

use crate::auth::{self, Principal, Role};
use crate::body::{self, MAX_BODY_BYTES, MAX_SEATMAP_BYTES};
use crate::errors::{self, ApiError};
use crate::handlers::{
    self, admin as admin_handlers, checkins, checkout, events, organizer, queue, reservations,
    tickets, waitlist,
};
use crate::App;

/// Every route of the public listener, as (method, OpenAPI path).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/events"),
    ("POST", "/events"),
    ("GET", "/events/{event_id}"),
    ("GET", "/events/{event_id}/seatmap"),
    ("GET", "/events/{event_id}/availability"),
    ("GET", "/events/{event_id}/availability/stream"),
    ("GET", "/payments/config"),
    ("POST", "/events/{event_id}/reservations"),
    ("PUT", "/events/{event_id}/prices"),
    ("POST", "/events/{event_id}/open"),
    ("POST", "/events/{event_id}/freeze"),
    ("POST", "/events/{event_id}/unfreeze"),
    ("POST", "/events/{event_id}/blocks"),
    ("POST", "/events/{event_id}/blocks/release"),
    ("GET", "/reservations/{hold_id}"),
    ("DELETE", "/reservations/{hold_id}"),
    ("POST", "/reservations/{hold_id}/extend"),
    ("POST", "/reservations/{hold_id}/commit"),
    ("GET", "/orders/{order_id}"),
    ("GET", "/orders/{order_id}/tickets"),
    ("GET", "/orders/{order_id}/tickets.pdf"),
    ("GET", "/tickets"),
    ("GET", "/tickets/{ticket_id}.svg"),
    ("POST", "/tickets/{ticket_id}/transfer"),
    ("POST", "/events/{event_id}/checkins"),
    ("GET", "/events/{event_id}/checkins"),
    ("POST", "/events/{event_id}/checkins/batch"),
    ("GET", "/events/{event_id}/checkin-kit"),
    ("POST", "/webhooks/payments"),
    ("POST", "/events/{event_id}/waitlist"),
    ("GET", "/events/{event_id}/waitlist/{entry_id}"),
    ("DELETE", "/events/{event_id}/waitlist/{entry_id}"),
    ("POST", "/events/{event_id}/queue"),
    ("GET", "/events/{event_id}/queue"),
    ("GET", "/events/{event_id}/queue/lottery"),
    ("GET", "/events/{event_id}/queue/{ticket}"),
    ("PUT", "/events/{event_id}/admission"),
    ("POST", "/venues"),
];

/// Every route of the admin listener.
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/admin/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/admin/holds/{hold_id}"),
    ("DELETE", "/admin/holds/{hold_id}"),
    ("POST", "/admin/orders/{order_id}/refund"),
    ("GET", "/admin/events/{event_id}/audit"),
];

/// Injects the application state.
pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// The caller, who must not be a gate: a gate's token opens gates and nothing else.
fn caller(app: &App) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    any_caller(app).and_then(|p: Principal| async move {
        if p.role == Role::Gate {
            return Err(warp::reject::custom(ApiError::client(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a gate's token only checks tickets in",
            )));
        }
        Ok(p)
    })
}

/// The caller, who must be a gate: checked before any body is read.
fn gate(app: &App) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    any_caller(app).and_then(|p: Principal| async move {
        p.require_gate().map(|()| p).map_err(warp::reject::custom)
    })
}

/// Any authenticated caller, counted against its rate limit.
fn any_caller(app: &App) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    auth::authenticated(app.keys.clone())
        .and(with_app(app.clone()))
        .and_then(|p: Principal, app: App| async move {
            app.limits.check_user(p.user.as_str()).map_err(|e| {
                app.metrics
                    .rate_limited_total
                    .with_label_values(&["user"])
                    .inc();
                warp::reject::custom(e)
            })?;
            Ok::<_, warp::Rejection>(p)
        })
}

/// Counts the request against its client IP's limit.
fn ip_limited(app: &App) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::ext::optional::<crate::listener::Peer>()
        .map(|peer: Option<crate::listener::Peer>| peer.map(|p| p.0))
        .and(warp::header::headers_cloned())
        .and(with_app(app.clone()))
        .and_then(
            |peer: Option<SocketAddr>, headers: warp::http::HeaderMap, app: App| async move {
                if let Some(ip) = app.limits.client_ip(peer, &headers) {
                    app.limits.check_ip(ip).map_err(|e| {
                        app.metrics
                            .rate_limited_total
                            .with_label_values(&["ip"])
                            .inc();
                        warp::reject::custom(e)
                    })?;
                }
                Ok::<_, warp::Rejection>(())
            },
        )
        .untuple_one()
}

/// The caller, who must be an organizer (or admin): checked before any body is read, so a buyer
/// cannot make the gateway buffer and parse a 16 MiB seat map.
fn organizer(app: &App) -> impl Filter<Extract = (Principal,), Error = warp::Rejection> + Clone {
    caller(app).and_then(|p: Principal| async move {
        p.require(Role::Organizer)
            .map(|()| p)
            .map_err(warp::reject::custom)
    })
}

fn if_none_match() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::header::optional::<String>("if-none-match")
        .or(warp::any().map(|| None))
        .unify()
}

/// The buyer-facing and organizer API.
pub fn public(app: App) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = app.metrics.clone();
    // Health checks are not limited (probes must always get through).
    health(app.clone())
        .or(ip_limited(&app).and(
            browse(app.clone())
                .or(reserve(app.clone()))
                .unify()
                .or(organize(app.clone()))
                .unify()
                .or(crate::web::routes(app))
                .unify()
                .or(wrong_method(ROUTES))
                .unify(),
        ))
        .recover(errors::recover)
        .with(warp::log::custom(move |info| {
            let route = route_label(info.method().as_str(), info.path());
            let status = info.status();
            metrics
                .http_requests_total
                .with_label_values(&[&route, status.as_str()])
                .inc();
            metrics
                .http_request_duration_seconds
                .with_label_values(&[&route, status.as_str()])
                .observe(info.elapsed().as_secs_f64());
        }))
}

/// The route template a request matched, for metric labels: ids never become labels. Runs on
/// every request, so matching walks the segments without allocating; only the label found is
/// formatted.
pub fn route_label(method: &str, path: &str) -> String {
    ROUTES
        .iter()
        .chain(ADMIN_ROUTES)
        .find(|(m, template)| *m == method && matches_template(template, path))
        .map(|(m, t)| format!("{m} {t}"))
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Whether `path` is an instance of `template` (`{name}` stands for any one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (mut t, mut s) = (
        template.trim_matches('/').split('/'),
        path.trim_matches('/').split('/'),
    );
    loop {
        match (t.next(), s.next()) {
            (None, None) => return true,
            (Some(t), Some(s)) if t.starts_with('{') || t == s => {}
            _ => return false,
        }
    }
}

/// The methods `routes` serve at `path`, in the table's order; empty for an unknown path.
pub fn allowed_methods(routes: &[(&'static str, &str)], path: &str) -> Vec<&'static str> {
    routes
        .iter()
        .filter(|(_, template)| matches_template(template, path))
        .map(|(method, _)| *method)
        .collect()
}

/// A path of `routes` asked with a method it does not serve: 405 in the one error shape, with
/// `Allow` naming the methods it does (RFC 9110 §15.5.6). Tried last, so it answers only what
/// no route took; any other request it passes on as "no such route".
fn wrong_method(
    routes: &'static [(&'static str, &'static str)],
) -> BoxedFilter<(warp::reply::Response,)> {
    warp::method()
        .and(warp::path::full())
        .and_then(
            move |method: Method, path: warp::path::FullPath| async move {
                let allowed = allowed_methods(routes, path.as_str());
                if allowed.is_empty() || allowed.contains(&method.as_str()) {
                    return Err(warp::reject::not_found());
                }
                let allow = allowed.join(", ");
                let mut response = errors::reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    &format!("{method} is not served here; this path allows {allow}"),
                    &serde_json::json!({ "allow": allowed }),
                );
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert("allow", v);
                }
                Ok::<_, warp::Rejection>(response)
            },
        )
        .boxed()
}

/// A route's answer once its path and method matched, rejections rendered here: the routes
/// after it never get to answer in its place (`GET /events/{id}/queue/lottery` is also a
/// ticket poll's path, and that route's 401 would otherwise hide the lottery's 404 or 409 from
/// the anonymous callers it serves).
async fn answered(result: Result<warp::reply::Response, warp::Rejection>) -> warp::reply::Response {
    match result {
        Ok(response) => response,
        Err(rejection) => match errors::recover(rejection).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
    }
}

/// The OpenAPI document of a listener, as [`crate::openapi::Docs`] rendered it at start.
fn document(
    app: App,
    pick: fn(&crate::openapi::Docs) -> &bytes::Bytes,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    with_app(app).map(move |app: App| {
        let mut response = warp::reply::Response::new(pick(app.docs()).clone().into());
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
    })
}

fn health(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and_then(handlers::readyz);
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .and(document(app, |docs| &docs.public));
    healthz.or(readyz).unify().or(openapi).unify().boxed()
}

fn browse(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let list = warp::path!("events")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(if_none_match())
        .and(with_app(app.clone()))
        .and_then(events::list);
    let one = warp::path!("events" / String)
        .and(warp::get())
        .and(if_none_match())
        .and(with_app(app.clone()))
        .and_then(events::get);
    let seatmap = warp::path!("events" / String / "seatmap")
        .and(warp::get())
        .and(if_none_match())
        .and(with_app(app.clone()))
        .and_then(events::seatmap);
    let availability = warp::path!("events" / String / "availability")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and_then(events::availability);
    let stream = warp::path!("events" / String / "availability" / "stream")
        .and(warp::get())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(with_app(app.clone()))
        .and_then(handlers::stream::stream);
    let payment_config = warp::path!("payments" / "config")
        .and(warp::get())
        .and(if_none_match())
        .and(with_app(app))
        .and_then(handlers::payments::get);
    list.or(one)
        .unify()
        .or(seatmap)
        .unify()
        .or(availability)
        .unify()
        .or(stream)
        .unify()
        .or(payment_config)
        .unify()
        .boxed()
}

fn reserve(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let create = warp::path!("events" / String / "reservations")
        .and(warp::post())
        .and(caller(&app))
        .and(warp::header::optional::<String>("x-admission-token"))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(reservations::create);
    let get = warp::path!("reservations" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(reservations::get);
    let cancel = warp::path!("reservations" / String)
        .and(warp::delete())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(reservations::cancel);
    let extend = warp::path!("reservations" / String / "extend")
        .and(warp::post())
        .and(caller(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(reservations::extend);
    let commit = warp::path!("reservations" / String / "commit")
        .and(warp::post())
        .and(caller(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(warp::ext::optional::<crate::listener::Arrived>())
        .and(with_app(app.clone()))
        .and_then(checkout::commit);
    let order = warp::path!("orders" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(checkout::get_order);
    // Authenticated by its signature, not a bearer token; the raw bytes are what is signed.
    let webhook = warp::path!("webhooks" / "payments")
        .and(warp::post())
        .and(warp::header::optional::<String>("stripe-signature"))
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and(with_app(app.clone()))
        .and_then(checkout::webhook);
    create
        .or(get)
        .unify()
        .or(cancel)
        .unify()
        .or(extend)
        .unify()
        .or(commit)
        .unify()
        .or(order)
        .unify()
        .or(webhook)
        .unify()
        .or(waiting_room(app.clone()))
        .unify()
        .or(after_sale(app))
        .unify()
        .boxed()
}

/// Tickets, transfers and the gates.
fn after_sale(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let order_tickets = warp::path!("orders" / String / "tickets")
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(tickets::of_order);
    let order_pdf = warp::path!("orders" / String / "tickets.pdf")
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(tickets::pdf);
    let held = warp::path!("tickets")
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(tickets::held);
    let svg = warp::path!("tickets" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(tickets::svg);
    let transfer = warp::path!("tickets" / String / "transfer")
        .and(warp::post())
        .and(caller(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(tickets::transfer);
    let scan = warp::path!("events" / String / "checkins")
        .and(warp::post())
        .and(gate(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(checkins::scan);
    let status = warp::path!("events" / String / "checkins")
        .and(warp::get())
        .and(organizer(&app))
        .and(with_app(app.clone()))
        .and_then(checkins::status);
    let batch = warp::path!("events" / String / "checkins" / "batch")
        .and(warp::post())
        .and(gate(&app))
        .and(body::json(checkins::MAX_BATCH_BYTES))
        .and(with_app(app.clone()))
        .and_then(checkins::batch);
    let app_for_list = app.clone();
    let kit = warp::path!("events" / String / "checkin-kit")
        .and(warp::get())
        .and(gate(&app))
        .and(with_app(app))
        .and_then(checkins::kit);
    order_tickets
        .or(order_pdf)
        .unify()
        .or(held)
        .unify()
        .or(svg)
        .unify()
        .or(transfer)
        .unify()
        .or(scan)
        .unify()
        .or(status)
        .unify()
        .or(batch)
        .unify()
        .or(kit)
        .unify()
        .or(waiting_list(app_for_list))
        .unify()
        .boxed()
}

/// A sold-out event's waiting list.
fn waiting_list(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let join = warp::path!("events" / String / "waitlist")
        .and(warp::post())
        .and(caller(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(waitlist::join);
    let get = warp::path!("events" / String / "waitlist" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(waitlist::get);
    let leave = warp::path!("events" / String / "waitlist" / String)
        .and(warp::delete())
        .and(caller(&app))
        .and(with_app(app))
        .and_then(waitlist::leave);
    join.or(get).unify().or(leave).unify().boxed()
}

fn waiting_room(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let join = warp::path!("events" / String / "queue")
        .and(warp::post())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(queue::join);
    let status = warp::path!("events" / String / "queue")
        .and(warp::get())
        .and(organizer(&app))
        .and(with_app(app.clone()))
        .and_then(queue::status);
    // Before `poll`, and answered in full: "lottery" would otherwise be taken for a ticket.
    let lottery = warp::path!("events" / String / "queue" / "lottery")
        .and(warp::get())
        .and(with_app(app.clone()))
        .then(|raw, app| async move { answered(queue::lottery(raw, app).await).await });
    let poll = warp::path!("events" / String / "queue" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(queue::poll);
    let admission = warp::path!("events" / String / "admission")
        .and(warp::put())
        .and(organizer(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app))
        .and_then(queue::set_admission);
    join.or(status)
        .unify()
        .or(lottery)
        .unify()
        .or(poll)
        .unify()
        .or(admission)
        .unify()
        .boxed()
}

fn organize(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    let venue = warp::path!("venues")
        .and(warp::post())
        .and(organizer(&app))
        .and(body::json(MAX_SEATMAP_BYTES))
        .and(with_app(app.clone()))
        .and_then(organizer::create_venue);
    let event = warp::path!("events")
        .and(warp::post())
        .and(organizer(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(organizer::create_event);
    let prices = warp::path!("events" / String / "prices")
        .and(warp::put())
        .and(organizer(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(organizer::set_prices);
    let action = |name: &'static str, t: Transition| {
        warp::path("events")
            .and(warp::path::param::<String>())
            .and(warp::path(name))
            .and(warp::path::end())
            .and(warp::post())
            .map(move |id: String| (id, t))
            .untuple_one()
            .and(organizer(&app))
            .and(with_app(app.clone()))
            .and_then(organizer::transition)
    };
    let open = action("open", Transition::Open);
    let freeze = action("freeze", Transition::Freeze);
    let unfreeze = action("unfreeze", Transition::Unfreeze);
    let block = warp::path!("events" / String / "blocks")
        .and(warp::post())
        .and(organizer(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app.clone()))
        .and_then(organizer::block);
    let unblock = warp::path!("events" / String / "blocks" / "release")
        .and(warp::post())
        .and(organizer(&app))
        .and(body::json(MAX_BODY_BYTES))
        .and(with_app(app))
        .and_then(organizer::unblock);
    venue
        .or(event)
        .unify()
        .or(prices)
        .unify()
        .or(open)
        .unify()
        .or(freeze)
        .unify()
        .or(unfreeze)
        .unify()
        .or(block)
        .unify()
        .or(unblock)
        .unify()
        .boxed()
}

/// The admin listener: metrics and admin routes (admin role), never on the public port.
pub fn admin(app: App) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app(app.clone()))
        .map(|app: App| {
            app.metrics.db_pool.observe(&app.db);
            app.metrics.render().into_response()
        });
    let read = warp::path!("admin" / "holds" / String)
        .and(warp::get())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(admin_read);
    let release = warp::path!("admin" / "holds" / String)
        .and(warp::delete())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(admin_release);
    let refund = warp::path!("admin" / "orders" / String / "refund")
        .and(warp::post())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(admin_handlers::refund);
    let audit = warp::path!("admin" / "events" / String / "audit")
        .and(warp::get())
        .and(warp::query::<admin_handlers::AuditQuery>())
        .and(caller(&app))
        .and(with_app(app.clone()))
        .and_then(admin_handlers::audit);
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    let openapi = warp::path!("admin" / "openapi.json")
        .and(warp::get())
        .and(document(app, |docs| &docs.admin));
    metrics
        .or(read)
        .unify()
        .or(release)
        .unify()
        .or(refund)
        .unify()
        .or(audit)
        .unify()
        .or(healthz)
        .unify()
        .or(openapi)
        .unify()
        .or(wrong_method(ADMIN_ROUTES))
        .unify()
        .recover(errors::recover)
}

async fn admin_read(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, warp::Rejection> {
    principal.require(Role::Admin)?;
    let id = reservations::hold_id(&raw)?;
    match app
        .coordinator
        .read_hold(&id, coordinator::Caller::System)
        .await
        .map_err(ApiError::from)?
    {
        coordinator::hold::ReadOutcome::Found(hold) => Ok(warp::reply::json(&hold).into_response()),
        _ => Err(ApiError::not_found("unknown_hold", "no such hold").into()),
    }
}

async fn admin_release(
    raw: String,
    principal: Principal,
    app: App,
) -> Result<warp::reply::Response, warp::Rejection> {
    principal.require(Role::Admin)?;
    let id = reservations::hold_id(&raw)?;
    match app
        .coordinator
        .release(&id, coordinator::Caller::System)
        .await
        .map_err(ApiError::from)?
    {
        coordinator::release::ReleaseOutcome::Released(_)
        | coordinator::release::ReleaseOutcome::AlreadyReleased(_) => Ok(warp::reply::with_status(
            warp::reply(),
            warp::http::StatusCode::NO_CONTENT,
        )
        .into_response()),
        coordinator::release::ReleaseOutcome::NotReleasable(state) => Err(ApiError::conflict(
            "hold_not_releasable",
            format!("the hold is {state:?}").to_lowercase(),
        )
        .into()),
        _ => Err(ApiError::not_found("unknown_hold", "no such hold").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn a_route_label_is_the_template_never_the_ids() {
        assert_eq!(route_label("GET", "/events"), "GET /events");
        assert_eq!(
            route_label("GET", "/events/e-1/seatmap"),
            "GET /events/{event_id}/seatmap"
        );
        assert_eq!(
            route_label("POST", "/events/e-1/reservations/"),
            "POST /events/{event_id}/reservations"
        );
        assert_eq!(route_label("DELETE", "/events/e-1/seatmap"), "unmatched");
        assert_eq!(route_label("GET", "/events/e-1/seatmap/x"), "unmatched");
        assert_eq!(route_label("GET", "/events/e-1/nope"), "unmatched");
    }
}
