//! `GET /events/{id}/availability/stream`: server-sent events of the seats that change, from
//! the process's shared feed ([`crate::live`]).
//!
//! A stream opens with a `snapshot` (every seat not free), or, when `Last-Event-ID` names a
//! frame this feed still has, with the `diff`s missed since; then one `diff` per change
//! (`{"v": id, "taken": [...], "freed": [...]}`), and a comment every
//! [`HEARTBEAT`] so proxies and the browser know the connection is alive. A stream that falls
//! behind by more than the feed's room gets a fresh snapshot instead of the frames it missed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use warp::http::HeaderValue;
use warp::{Rejection, Reply};

use crate::live::{Frame, Subscription};
use crate::App;

/// How often an idle stream sends a comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// What a browser waits before reconnecting after the stream drops (the SSE `retry` field).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

fn event(frame: &Frame) -> warp::sse::Event {
    warp::sse::Event::default()
        .id(frame.id.clone())
        .event(frame.kind)
        .data(frame.data.clone())
}

/// `GET /events/{id}/availability/stream`.
pub async fn stream(
    raw: String,
    last_event_id: Option<String>,
    app: App,
) -> Result<warp::reply::Response, Rejection> {
    let (id, _) = super::events::visible_event(&app, &raw).await?;
    let Subscription { first, rx, guard } = app
        .live
        .subscribe(&app, &id, last_event_id.as_deref())
        .await?;
    let retry = futures::stream::once(async {
        Ok::<_, Infallible>(warp::sse::Event::default().retry(RECONNECT_AFTER))
    });
    let first = futures::stream::iter(first.into_iter().map(|f| Ok(event(&f))));
    let later = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let frame: Arc<Frame> = match rx.recv().await {
            Ok(frame) => frame,
            // Fell behind: the seats as they are now replace the frames it missed.
            Err(RecvError::Lagged(_)) => guard.0.snapshot().await,
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event(&frame)), (rx, guard)))
    });
    let events = retry
        .chain(first)
        .chain(later)
        .take_until(app.live.stopped());
    let mut response = warp::sse::reply(warp::sse::keep_alive().interval(HEARTBEAT).stream(events))
        .into_response();
    // Proxies that buffer responses (nginx) would hold the frames back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
