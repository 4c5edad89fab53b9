//! Opening an event's inventory: its seat ids per section, loaded from the catalog.

use std::collections::HashMap;

use crate::ids::{EventId, SeatId, SectionId};
use crate::reply::Reply;
use crate::{keys, seat_ids, Coordinator, CoordinatorError};

/// One section's seats, as the catalog lists them.
#[derive(Debug, Clone)]
pub struct SectionInventory {
    /// The section.
    pub section: SectionId,
    /// Its seats.
    pub seats: Vec<SeatId>,
}

/// What opening did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The inventory is loaded; `seats_added` were new (0 when re-opened).
    Opened {
        /// Seats added by this call.
        seats_added: u64,
        /// Seats of the event in all.
        capacity: u64,
    },
    /// These seats appear in two sections (in the request, or against what is already open);
    /// nothing was changed for them.
    SeatInTwoSections(Vec<SeatId>),
    /// No seat at all was given.
    Empty,
}

/// Seats sent per script call: small enough to keep one call well under a millisecond of work.
const CHUNK: usize = 2_000;

impl Coordinator {
    /// Loads (or re-loads, idempotently) an event's inventory. Layout first, then each section's
    /// seats, so a seat the layout knows but whose section is not loaded yet is simply refused as
    /// "not open" by hold.lua for that instant.
    pub async fn open_event(
        &self,
        event: &EventId,
        sections: &[SectionInventory],
    ) -> Result<OpenOutcome, CoordinatorError> {
        let mut seen: HashMap<&SeatId, &SectionId> = HashMap::new();
        let mut twice = Vec::new();
        for inv in sections {
            for seat in &inv.seats {
                if let Some(previous) = seen.insert(seat, &inv.section) {
                    if previous != &inv.section || !twice.contains(seat) {
                        twice.push(seat.clone());
                    }
                }
            }
        }
        if !twice.is_empty() {
            return Ok(OpenOutcome::SeatInTwoSections(twice));
        }
        if seen.is_empty() {
            return Ok(OpenOutcome::Empty);
        }

        let client = self.client();
        for inv in sections {
            for chunk in inv.seats.chunks(CHUNK) {
                let mut args = Vec::with_capacity(chunk.len() + 1);
                args.push(inv.section.to_string());
                args.extend(chunk.iter().map(ToString::to_string));
                let script = &self.scripts.open_layout;
                let reply = Reply::new(
                    script.name,
                    script
                        .run(
                            client,
                            vec![keys::layout(event), keys::sections(event)],
                            args,
                        )
                        .await?,
                )?;
                match reply.code()? {
                    0 => {}
                    -1 => {
                        return Ok(OpenOutcome::SeatInTwoSections(seat_ids(
                            script.name,
                            reply.strings_from(1)?,
                        )?))
                    }
                    _ => return Err(reply.unknown_code()),
                }
            }
        }

        let (mut seats_added, mut capacity) = (0, 0);
        for inv in sections {
            let k = keys::section(event, &inv.section);
            let mut section_capacity = 0;
            for chunk in inv.seats.chunks(CHUNK) {
                let script = &self.scripts.open_section;
                let reply = Reply::new(
                    script.name,
                    script
                        .run(
                            client,
                            vec![k.inv.clone(), k.ver.clone()],
                            chunk.iter().map(ToString::to_string).collect(),
                        )
                        .await?,
                )?;
                if reply.code()? != 0 {
                    return Err(reply.unknown_code());
                }
                seats_added += reply.int(1)? as u64;
                section_capacity = reply.int(2)? as u64;
            }
            capacity += section_capacity;
        }
        self.layouts.forget(event);
        self.announce_sections(event, sections.iter().map(|s| &s.section))
            .await;
        Ok(OpenOutcome::Opened {
            seats_added,
            capacity,
        })
    }
}
