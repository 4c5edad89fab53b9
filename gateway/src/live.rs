//! Live availability for `GET /events/{id}/availability/stream`: one feed per event and process,
//! shared by every open stream of that event.
//!
//! The coordinator's announcements (`seat:update:{event}:{section}`, coalesced over 50 ms) say
//! *that* a section changed, not which seats. A feed turns them into seat-level diffs: on an
//! announcement its task reads the event's seat states afresh (through the seat-map cache, so
//! a stream costs no Redis reads of its own, and a rush costs at most one read per
//! [`MIN_REFRESH`] per event and process), compares the seats not free with the last read, and
//! broadcasts the difference as one frame. Each stream holds only a broadcast receiver: frames
//! are built once and shared (`Arc`), which is what lets one process hold 10,000 streams.
//!
//! Frame ids are `{feed epoch}-{sequence}`. The epoch is random per feed instance, so an id from
//! another process (behind a load balancer) or from before a restart is never mistaken for one
//! of this feed: such a resume, or one older than the [`HISTORY`] this feed keeps, gets a full
//! snapshot instead of the missed diffs. Announcements never decide anything: a lost one is
//! caught by the [`SAFETY_REFRESH`] re-read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use coordinator::{EventId, SeatId};
use tokio::sync::{broadcast, watch, Notify};

use crate::errors::ApiError;
use crate::App;

/// Diffs a feed keeps for resuming streams.
pub const HISTORY: usize = 64;
/// Frames a slow stream may fall behind before it is sent a snapshot instead.
const ROOM: usize = 128;
/// Least time between two reads of one event's seats by its feed.
pub const MIN_REFRESH: Duration = Duration::from_millis(200);
/// A feed re-reads this often without an announcement (a lost announcement costs at most this
/// much staleness), and a feed nobody listens to stops after this long.
pub const SAFETY_REFRESH: Duration = Duration::from_secs(10);

/// One frame of a stream: `snapshot` (every seat not free) or `diff` (seats taken and freed).
#[derive(Debug)]
pub struct Frame {
    /// `{epoch}-{sequence}`.
    pub id: String,
    /// `snapshot` or `diff`.
    pub kind: &'static str,
    /// The JSON data.
    pub data: String,
}

#[derive(Default)]
struct State {
    ready: bool,
    seq: u64,
    taken: HashSet<SeatId>,
    recent: VecDeque<(u64, Arc<Frame>)>,
    /// The snapshot of `seq`, built once for every stream that needs it.
    snapshot: Option<Arc<Frame>>,
}

/// One event's feed.
pub struct Feed {
    event: EventId,
    epoch: String,
    tx: broadcast::Sender<Arc<Frame>>,
    dirty: Notify,
    streams: AtomicUsize,
    state: tokio::sync::Mutex<State>,
}

/// What a new stream starts with.
pub struct Subscription {
    /// Frames to send first (a snapshot, or the diffs a resume missed).
    pub first: Vec<Arc<Frame>>,
    /// Later frames.
    pub rx: broadcast::Receiver<Arc<Frame>>,
    /// The feed (for a snapshot after falling behind); counts the stream while alive.
    pub guard: StreamGuard,
}

/// Counts an open stream on its feed.
pub struct StreamGuard(pub Arc<Feed>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every feed of this process.
#[derive(Default)]
pub struct Hub {
    feeds: Mutex<HashMap<EventId, Arc<Feed>>>,
    stop: OnceLock<watch::Receiver<bool>>,
}

impl Hub {
    /// Streams end when the listeners shut down (else a graceful stop would wait for them).
    pub fn stop_on(&self, stop: watch::Receiver<bool>) {
        let _ = self.stop.set(stop);
    }

    /// Resolves once the listeners shut down (never, before they start).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.stop.get().cloned();
        async move {
            match stop {
                Some(mut stop) => {
                    let _ = stop.wait_for(|s| *s).await;
                }
                None => std::future::pending().await,
            }
        }
    }

    /// Applies an announcement: the event's feed, if any stream listens, re-reads.
    pub fn announce(&self, update: &coordinator::updates::Update) {
        let event = match update {
            coordinator::updates::Update::Seats { event, .. } => event,
            coordinator::updates::Update::Event(event) => event,
            coordinator::updates::Update::Order(_) => return,
        };
        if let Some(feed) = self.feeds.lock().ok().and_then(|f| f.get(event).cloned()) {
            feed.dirty.notify_one();
        }
    }

    /// Open streams of all events in this process.
    pub fn open_streams(&self) -> usize {
        self.feeds.lock().map_or(0, |f| {
            f.values().map(|f| f.streams.load(Ordering::Acquire)).sum()
        })
    }

    /// A new stream of `event`, resuming after `last_event_id` when this feed still can.
    pub async fn subscribe(
        &self,
        app: &App,
        event: &EventId,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, ApiError> {
        let feed = {
            let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
            let feed = feeds
                .entry(event.clone())
                .or_insert_with(|| {
                    let feed = Arc::new(Feed {
                        event: event.clone(),
                        epoch: format!("{:08x}", rand::random::<u32>()),
                        tx: broadcast::channel(ROOM).0,
                        dirty: Notify::new(),
                        streams: AtomicUsize::new(0),
                        state: tokio::sync::Mutex::new(State::default()),
                    });
                    tokio::spawn(run(app.clone(), feed.clone()));
                    feed
                })
                .clone();
            // Counted under the hub's lock: the feed's task retires only a feed with none.
            feed.streams.fetch_add(1, Ordering::AcqRel);
            feed
        };
        let guard = StreamGuard(feed.clone());
        let mut state = feed.state.lock().await;
        if !state.ready {
            refresh_locked(app, &feed, &mut state).await?;
        }
        // Subscribed under the state lock: a frame is either in `first` or comes through `rx`.
        let rx = feed.tx.subscribe();
        let resume = last_event_id
            .and_then(|id| id.trim().split_once('-'))
            .filter(|(epoch, _)| *epoch == feed.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq <= state.seq);
        let first = match resume {
            Some(seq) if seq == state.seq => Vec::new(),
            Some(seq) if state.recent.front().is_some_and(|(s, _)| *s <= seq + 1) => state
                .recent
                .iter()
                .filter(|(s, _)| *s > seq)
                .map(|(_, f)| f.clone())
                .collect(),
            _ => vec![snapshot(&feed, &mut state)],
        };
        drop(state);
        Ok(Subscription { first, rx, guard })
    }
}

impl Feed {
    /// A snapshot of now, for a stream that fell behind.
    pub async fn snapshot(&self) -> Arc<Frame> {
        let mut state = self.state.lock().await;
        snapshot(self, &mut state)
    }
}

fn snapshot(feed: &Feed, state: &mut State) -> Arc<Frame> {
    if let Some(frame) = &state.snapshot {
        return frame.clone();
    }
    let mut taken: Vec<&SeatId> = state.taken.iter().collect();
    taken.sort();
    let id = format!("{}-{}", feed.epoch, state.seq);
    let frame = Arc::new(Frame {
        data: serde_json::json!({"v": id, "taken": taken}).to_string(),
        id,
        kind: "snapshot",
    });
    state.snapshot = Some(frame.clone());
    frame
}

/// Reads the event's seats and broadcasts what changed since the last read.
async fn refresh_locked(app: &App, feed: &Feed, state: &mut State) -> Result<(), ApiError> {
    let (id, event) = crate::handlers::events::visible_event(app, feed.event.as_str()).await?;
    let Some(map) = app.caches.seatmap(app, &event, &id, true).await? else {
        return Err(crate::handlers::events::no_inventory(app, &event).await);
    };
    if !state.ready {
        state.ready = true;
        state.taken = map.taken.clone();
        return Ok(());
    }
    let mut taken: Vec<&SeatId> = map.taken.difference(&state.taken).collect();
    let mut freed: Vec<&SeatId> = state.taken.difference(&map.taken).collect();
    if taken.is_empty() && freed.is_empty() {
        return Ok(());
    }
    taken.sort();
    freed.sort();
    state.seq += 1;
    let id = format!("{}-{}", feed.epoch, state.seq);
    let frame = Arc::new(Frame {
        data: serde_json::json!({"v": id, "taken": taken, "freed": freed}).to_string(),
        id,
        kind: "diff",
    });
    state.taken = map.taken.clone();
    state.snapshot = None;
    state.recent.push_back((state.seq, frame.clone()));
    if state.recent.len() > HISTORY {
        state.recent.pop_front();
    }
    // No receivers is not an error: the frame stays in `recent` for resumes.
    let _ = feed.tx.send(frame);
    Ok(())
}

/// A feed's task: re-reads on announcements (at most every [`MIN_REFRESH`]) and every
/// [`SAFETY_REFRESH`]; retires the feed once no stream listens.
async fn run(app: App, feed: Arc<Feed>) {
    loop {
        let _ = tokio::time::timeout(SAFETY_REFRESH, feed.dirty.notified()).await;
        {
            let mut feeds = app.live.feeds.lock().unwrap_or_else(|p| p.into_inner());
            if feed.streams.load(Ordering::Acquire) == 0 {
                if feeds
                    .get(&feed.event)
                    .is_some_and(|f| Arc::ptr_eq(f, &feed))
                {
                    feeds.remove(&feed.event);
                }
                return;
            }
        }
        let result = {
            let mut state = feed.state.lock().await;
            refresh_locked(&app, &feed, &mut state).await
        };
        if let Err(e) = result {
            // Streams keep what they have; the next announcement or safety re-read tries again.
            tracing::warn!(event = %feed.event, error = %e.message, "live availability not refreshed");
        }
        tokio::time::sleep(MIN_REFRESH).await;
    }
}
