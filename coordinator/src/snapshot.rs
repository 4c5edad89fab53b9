//! Per-section availability: counts (cheap: O(log N) per section, whatever the venue size) and,
//! for seat maps, the ids of the seats that are not free.

use futures::future::try_join_all;
use serde::Serialize;

use crate::ids::{EventId, SeatId, SectionId};
use crate::protocol::{SnapshotCode, SnapshotDetail};
use crate::{keys, seat_ids, Coordinator, CoordinatorError};

/// One section's counts. `free + held + sold + blocked == capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionAvailability {
    /// The section.
    pub section: SectionId,
    /// Seats in all.
    pub capacity: u64,
    /// Free to hold.
    pub free: u64,
    /// In live holds.
    pub held: u64,
    /// Sold.
    pub sold: u64,
    /// Blocked by the organizer.
    pub blocked: u64,
    /// Bumped on every availability change: a cache key for seat maps.
    pub version: u64,
}

/// One section's counts and the seats that are not free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSeats {
    /// Counts.
    pub availability: SectionAvailability,
    /// Seats in live holds.
    pub held: Vec<SeatId>,
    /// Sold seats.
    pub sold: Vec<SeatId>,
    /// Blocked seats.
    pub blocked: Vec<SeatId>,
}

impl Coordinator {
    /// Counts per section; `None` when the event is not open. Sections are read concurrently.
    pub async fn availability(
        &self,
        event: &EventId,
    ) -> Result<Option<Vec<SectionAvailability>>, CoordinatorError> {
        Ok(self
            .snapshot(event, false)
            .await?
            .map(|sections| sections.into_iter().map(|s| s.availability).collect()))
    }

    /// Counts and non-free seat ids per section; `None` when the event is not open.
    pub async fn seat_states(
        &self,
        event: &EventId,
    ) -> Result<Option<Vec<SectionSeats>>, CoordinatorError> {
        self.snapshot(event, true).await
    }

    async fn snapshot(
        &self,
        event: &EventId,
        detail: bool,
    ) -> Result<Option<Vec<SectionSeats>>, CoordinatorError> {
        let Some(layout) = self.sections_of(event).await? else {
            return Ok(None);
        };
        let reads = layout
            .sections
            .iter()
            .map(|section| self.snapshot_section(event, section, detail));
        Ok(Some(
            try_join_all(reads).await?.into_iter().flatten().collect(),
        ))
    }

    async fn snapshot_section(
        &self,
        event: &EventId,
        section: &SectionId,
        detail: bool,
    ) -> Result<Option<SectionSeats>, CoordinatorError> {
        let k = keys::section(event, section);
        let script = &self.scripts.snapshot;
        let detail_arg = if detail {
            SnapshotDetail::Lists
        } else {
            SnapshotDetail::Counts
        };
        let (code, reply) = script
            .call::<SnapshotCode>(
                self.client(),
                vec![
                    k.inv, k.held, k.holder, k.sold, k.blocked, k.ver, k.wl, k.reserved,
                ],
                vec![detail_arg.as_arg().to_owned()],
            )
            .await?;
        match code {
            SnapshotCode::Counts => {}
            // The layout names the section but its inventory is not loaded yet.
            SnapshotCode::NoInventory => return Ok(None),
        }
        let count = |i| reply.int(i).map(|v| v.max(0) as u64);
        let (capacity, held, sold, blocked, version) =
            (count(1)?, count(2)?, count(3)?, count(4)?, count(5)?);
        let availability = SectionAvailability {
            section: section.clone(),
            capacity,
            free: capacity.saturating_sub(held + sold + blocked),
            held,
            sold,
            blocked,
            version,
        };
        let (mut held_ids, mut sold_ids, mut blocked_ids) = (Vec::new(), Vec::new(), Vec::new());
        if detail {
            let rest = seat_ids(script.name, reply.strings_from(7)?)?;
            if rest.len() as u64 != held + sold + blocked {
                return Err(crate::error::CoordinatorError::protocol(
                    script.name,
                    "list lengths disagree with counts",
                ));
            }
            let mut it = rest.into_iter();
            held_ids = it.by_ref().take(held as usize).collect();
            sold_ids = it.by_ref().take(sold as usize).collect();
            blocked_ids = it.collect();
        }
        Ok(Some(SectionSeats {
            availability,
            held: held_ids,
            sold: sold_ids,
            blocked: blocked_ids,
        }))
    }
}
