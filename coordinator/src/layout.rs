//! An in-process cache of event layouts (seat -> section). A layout only grows while an event is
//! open, so a cached one is reloaded when it is asked about a seat it does not know, at most once
//! a second per event, only when Redis's layout has more seats than the cached one (an `HLEN`:
//! a client asking about made-up seats costs that, not a read of the whole layout), and never
//! for an event Redis does not know.
//!
//! Loads are single-flight: when a sale opens, thousands of requests miss the cache at the same
//! instant; one of them reads the layout and the others wait for it, instead of each reading
//! megabytes from the same Redis node at once. It is read in pages (`HSCAN`), not in one
//! `HGETALL`: a stadium's 50,000 seats in one command held its Redis primary for 20 to 60 ms
//! (SLOWLOG, in the checkout profile), every other client of that node waiting meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fred::prelude::*;

use crate::error::CoordinatorError;
use crate::ids::{EventId, SeatId, SectionId};
use crate::keys;

/// Which section each seat of an event belongs to.
#[derive(Debug)]
pub(crate) struct Layout {
    seat_section: HashMap<SeatId, SectionId>,
    pub(crate) sections: Vec<SectionId>,
    /// When Redis's layout was last seen to be this one (loaded, or its size checked).
    checked_at: std::sync::Mutex<Instant>,
}

impl Layout {
    /// Seats grouped by section (sections sorted: the lock order), or the seats it does not know.
    pub(crate) fn group(
        &self,
        seats: &[SeatId],
    ) -> Result<BTreeMap<SectionId, Vec<SeatId>>, Vec<SeatId>> {
        let mut groups: BTreeMap<SectionId, Vec<SeatId>> = BTreeMap::new();
        let mut unknown = Vec::new();
        for seat in seats {
            match self.seat_section.get(seat) {
                Some(section) => groups
                    .entry(section.clone())
                    .or_default()
                    .push(seat.clone()),
                None => unknown.push(seat.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(groups)
        } else {
            Err(unknown)
        }
    }

    fn knows(&self, seats: &[SeatId]) -> bool {
        seats.iter().all(|s| self.seat_section.contains_key(s))
    }
}

const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct LayoutCache {
    events: RwLock<HashMap<EventId, Arc<Layout>>>,
    /// Per event, held while its layout is read from Redis (one event's load, or a slow node,
    /// never holds up another's).
    loading: std::sync::Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<()>>>>,
}

impl LayoutCache {
    /// The event's layout, loading it when absent or when it misses one of `seats`.
    pub(crate) async fn get(
        &self,
        client: &Client,
        event: &EventId,
        seats: &[SeatId],
    ) -> Result<Option<Arc<Layout>>, CoordinatorError> {
        let fresh_enough = |layout: &Arc<Layout>| {
            layout.knows(seats)
                || layout
                    .checked_at
                    .lock()
                    .is_ok_and(|at| at.elapsed() < RELOAD_AT_MOST_EVERY)
        };
        let cached = self.cached(event)?;
        if cached.as_ref().is_some_and(fresh_enough) {
            return Ok(cached);
        }
        let lock = self
            .loading
            .lock()
            .map_err(|_| CoordinatorError::protocol("layout", "cache lock poisoned"))?
            .entry(event.clone())
            .or_default()
            .clone();
        let _loading = lock.lock().await;
        // Whoever held the lock before us may have loaded it.
        let cached = self.cached(event)?;
        if cached.as_ref().is_some_and(fresh_enough) {
            return Ok(cached);
        }
        if let Some(layout) = &cached {
            // Seats are only ever added: the same count is the same layout, and the seats it
            // does not know are not the event's.
            let seats_now: u64 = client.hlen(keys::layout(event)).await?;
            if seats_now == layout.seat_section.len() as u64 {
                if let Ok(mut at) = layout.checked_at.lock() {
                    *at = Instant::now();
                }
                return Ok(cached);
            }
        }
        let Some(layout) = load(client, event).await? else {
            return Ok(None);
        };
        let layout = Arc::new(layout);
        self.events
            .write()
            .map_err(|_| CoordinatorError::protocol("layout", "cache lock poisoned"))?
            .insert(event.clone(), layout.clone());
        Ok(Some(layout))
    }

    fn cached(&self, event: &EventId) -> Result<Option<Arc<Layout>>, CoordinatorError> {
        Ok(self
            .events
            .read()
            .map_err(|_| CoordinatorError::protocol("layout", "cache lock poisoned"))?
            .get(event)
            .cloned())
    }

    /// Forgets an event's layout (after it was opened or extended).
    pub(crate) fn forget(&self, event: &EventId) {
        if let Ok(mut events) = self.events.write() {
            events.remove(event);
        }
    }
}

/// Seats read per `HSCAN` page: a page is about a millisecond of its Redis node's time.
const PAGE: u32 = 2_000;

/// Reads an event's layout, page by page; `None` when Redis has none.
async fn load(client: &Client, event: &EventId) -> Result<Option<Layout>, CoordinatorError> {
    use fred::types::scan::Scanner;
    use futures::StreamExt;
    let bad = |e: String| CoordinatorError::protocol("layout", e);
    let mut seat_section = HashMap::new();
    let mut sections = std::collections::BTreeSet::new();
    let mut pages = std::pin::pin!(client.hscan(keys::layout(event), "*", Some(PAGE)));
    while let Some(page) = pages.next().await {
        let mut page = page?;
        if let Some(entries) = page.take_results() {
            for (seat, section) in entries.inner() {
                let seat = seat
                    .as_str()
                    .ok_or_else(|| bad("a seat id that is not text".into()))?;
                let section = section
                    .as_string()
                    .ok_or_else(|| bad("a section id that is not text".into()))?;
                let seat = SeatId::parse(seat).map_err(|e| bad(e.to_string()))?;
                let section = SectionId::parse(&section).map_err(|e| bad(e.to_string()))?;
                sections.insert(section.clone());
                seat_section.insert(seat, section);
            }
        }
        page.next();
    }
    if seat_section.is_empty() {
        return Ok(None);
    }
    Ok(Some(Layout {
        seat_section,
        sections: sections.into_iter().collect(),
        checked_at: std::sync::Mutex::new(Instant::now()),
    }))
}
