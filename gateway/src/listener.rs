//! The HTTP listeners: our own accept loop over hyper, so that a public server's bounds against
//! slow and hoarding clients exist (warp's `serve` has none of them):
//!
//! - **a header-read timeout** ([`Connections::header_read_timeout`]): a connection must send a
//!   complete request head within it, or it is closed. hyper starts the timer whenever it waits
//!   for a request head, so it is also the idle timeout of a kept-alive connection. A handler
//!   that runs long (a commit waiting for its order) is not cut: the timer runs only while a
//!   head is awaited.
//! - **a connection cap** ([`Connections::max_connections`]) per listener: past it a new
//!   connection gets a bare `503` with `Retry-After` and is closed at once, so a thousand
//!   half-sent requests cannot take every socket and task of the process.
//! - **metrics**: connections open, refused at the cap, and closed for a timed-out head.
//! - **load shedding** ([`crate::shed`]): a hold or commit over its class's concurrency limit
//!   is answered `503 overloaded` before it reaches the router.
//!
//! - **request ids** ([`crate::request_id`]): every request gets its id and its tracing span
//!   here, before shedding and routing, and every answer carries the id back.
//!
//! The client's address travels to the filters as a request extension ([`Peer`]), since a
//! service built from a filter does not see the socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::Http;
use hyper::service::Service;
use hyper::{Body, Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::request_id::{self, RequestId};

/// The bounds of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// Longest wait for a complete request head (also the idle timeout between requests).
    pub header_read_timeout: Duration,
    /// Most connections open at once; past it, new ones are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Connections {
    /// The settings' defaults.
    fn default() -> Self {
        Self::from_settings(&settings::Http::default())
    }
}

impl Connections {
    /// From `http.header_read_timeout_ms` and `http.max_connections`.
    pub fn from_settings(http: &settings::Http) -> Self {
        Self {
            header_read_timeout: http.header_read_timeout.max(Duration::from_millis(1)),
            max_connections: http.max_connections.max(1),
        }
    }
}

/// The client's socket address, as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// When a commit was read, before any wait for a place ([`crate::shed`]): what its client
/// waited is measured from here (the waiting rooms' pace). Only commits carry it.
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub std::time::Instant);

/// The answer to a connection over the cap: written straight to the socket, no parsing.
static OVER_CAP: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server is at capacity; retry shortly","details":null}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Serves `service` on `listener` until `stop` turns true, then lets open connections finish
/// their requests (graceful shutdown) and returns once all are closed.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    bounds: Connections,
    shedder: Option<crate::shed::Shedder>,
    metrics: Arc<crate::metrics::Metrics>,
    name: &'static str,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = Http::new();
    http.http1_header_read_timeout(bounds.header_read_timeout);
    let open = metrics.connections_open.with_label_values(&[name]);
    let refused = metrics.connections_refused_total.with_label_values(&[name]);
    let timed_out = metrics
        .connections_timed_out_total
        .with_label_values(&[name]);
    let permits = Arc::new(Semaphore::new(bounds.max_connections));
    while let Some((stream, peer)) = next_connection(&listener, &mut stop, name).await {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.inc();
            over_cap(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (service, shedder) = (service.clone(), shedder.clone());
        let per_request = hyper::service::service_fn(move |request: Request<Body>| {
            handle(service.clone(), shedder.as_ref(), request, peer)
        });
        let connection = http.serve_connection(stream, per_request);
        let (open, timed_out, mut stop) = (open.clone(), timed_out.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            open.inc();
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            open.dec();
            if let Err(e) = ended {
                if e.is_timeout() || e.to_string() == HEADER_TIMEOUT {
                    timed_out.inc();
                }
                tracing::debug!(listener = name, error = %e, "connection ended");
            }
        });
    }
    // Every connection holds a permit until it is closed.
    let _all_closed = permits
        .acquire_many(u32::try_from(bounds.max_connections).unwrap_or(u32::MAX))
        .await;
}

/// One request: its id and span, load shedding, then the service's answer with the id echoed.
fn handle<S>(
    mut service: S,
    shedder: Option<&crate::shed::Shedder>,
    mut request: Request<Body>,
    peer: std::net::SocketAddr,
) -> impl std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    request.extensions_mut().insert(Peer(peer));
    let class = crate::shed::Class::of(&request);
    // Only a commit is timed from its arrival; every other request is spared the extension.
    if class == Some(crate::shed::Class::Commit) {
        request
            .extensions_mut()
            .insert(Arrived(std::time::Instant::now()));
    }
    let id = RequestId::from_header(request.headers().get(request_id::HEADER));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    // Only holds and commits are limited; the rest never waits on a shedder (nor clones it).
    let limited = shedder.zip(class).map(|(s, class)| (s.clone(), class));
    let answer = async move {
        let admitted = match limited {
            Some((shedder, class)) => shedder.admit_class(class).await.map(Some),
            None => Ok(None),
        };
        let mut response = match admitted {
            Err(class) => crate::shed::overloaded(class),
            Ok(permit) => {
                let answer = service.call(request).await;
                // The request's latency is measured up to here.
                drop(permit);
                match answer {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        };
        tracing::debug!(status = response.status().as_u16(), "answered");
        if let Some(id) = request_id::current() {
            response
                .headers_mut()
                .insert(request_id::HEADER, id.header_value());
        }
        Ok::<_, Infallible>(response)
    };
    request_id::scope(id, answer.instrument(span))
}

/// The next connection, or `None` once the listener is told to stop.
async fn next_connection(
    listener: &TcpListener,
    stop: &mut watch::Receiver<bool>,
    name: &'static str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(stop) => return None,
        };
        match accepted {
            Ok(accepted) => return Some(accepted),
            Err(error) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(listener = name, error = %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How hyper 0.14 words its header-read timeout: it has no predicate for it (`is_timeout` is
/// about other timers), and the 0.14 line is frozen.
const HEADER_TIMEOUT: &str = "read header from client timeout";

/// Resolves once the listener is told to stop (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Answers a connection over the cap without reading it, and closes it.
fn over_cap(stream: TcpStream) {
    // A fresh socket's send buffer takes the whole answer; if not, the client gets a reset,
    // which says the same.
    let _ = stream.try_write(&OVER_CAP);
}

#[cfg(test)]
mod tests {
    use super::OVER_CAP;

    #[test]
    fn the_over_cap_answer_is_well_formed() {
        let text = std::str::from_utf8(&OVER_CAP).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|l| l.parse().ok())
            .expect("content-length");
        assert_eq!(length, body.len());
        let parsed: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(parsed["error"]["code"], "too_many_connections");
    }
}
