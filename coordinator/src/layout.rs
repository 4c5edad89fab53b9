//! An in-process cache of event layouts (seat -> section). A layout only grows while an event is
//! open, so a cached one is reloaded when it is asked about a seat it does not know, at most once
//! a second per event, and never for an event Redis does not know.
//!
//! Loads are single-flight: when a sale opens, thousands of requests miss the cache at the same
//! instant; one of them reads the layout (an HGETALL of every seat) and the others wait for it,
//! instead of each reading megabytes from the same Redis node at once.

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
    loaded_at: Instant,
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
            layout.knows(seats) || layout.loaded_at.elapsed() < RELOAD_AT_MOST_EVERY
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
        let raw: HashMap<String, String> = client.hgetall(keys::layout(event)).await?;
        if raw.is_empty() {
            return Ok(None);
        }
        let mut seat_section = HashMap::with_capacity(raw.len());
        let mut sections = std::collections::BTreeSet::new();
        for (seat, section) in raw {
            let seat = SeatId::parse(&seat)
                .map_err(|e| CoordinatorError::protocol("layout", e.to_string()))?;
            let section = SectionId::parse(&section)
                .map_err(|e| CoordinatorError::protocol("layout", e.to_string()))?;
            sections.insert(section.clone());
            seat_section.insert(seat, section);
        }
        let layout = Arc::new(Layout {
            seat_section,
            sections: sections.into_iter().collect(),
            loaded_at: Instant::now(),
        });
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
