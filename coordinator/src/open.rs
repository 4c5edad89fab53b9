//! Opening an event's inventory: its seat ids per section, loaded from the catalog.

use std::collections::HashMap;

use fred::prelude::*;

use crate::ids::{EventId, HoldId, SeatId, SectionId};
use crate::protocol::{OpenLayoutCode, OpenSectionCode};
use crate::{keys, seat_ids, Coordinator, CoordinatorError};

/// One section's seats, as the catalog lists them, with the ones Postgres says are sold.
#[derive(Debug, Clone)]
pub struct SectionInventory {
    /// The section.
    pub section: SectionId,
    /// Its seats.
    pub seats: Vec<SeatId>,
    /// Its live sales: seat -> the hold that bought it. Loaded with the seats, in the same
    /// script call, so a section rebuilt after Redis lost it never shows a sold seat free.
    pub sold: HashMap<SeatId, HoldId>,
    /// Its organizer blocks: seat -> tag, loaded the same way.
    pub blocked: HashMap<SeatId, String>,
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
    /// Whether Redis holds an event's whole inventory, by counts: the layout has `seats` seats
    /// and each section its count (`(section, seats)` pairs). One O(1) call per section, so a
    /// reconciliation pass can look every few seconds without re-sending every seat (a 50,000-seat
    /// event: 50 script calls, a layout re-read by every process, and every section's cache
    /// dropped, each pass). Keys are lost whole in a failover (a slot's keys live together), so
    /// a count short of the catalog's is what a loss looks like.
    pub async fn inventory_complete(
        &self,
        event: &EventId,
        sections: &[(SectionId, u64)],
    ) -> Result<bool, CoordinatorError> {
        let client = self.client();
        let seats: u64 = sections.iter().map(|(_, n)| n).sum();
        let layout: u64 = client.hlen(keys::layout(event)).await?;
        if layout != seats {
            return Ok(false);
        }
        let counts = futures::future::try_join_all(
            sections
                .iter()
                .map(|(section, _)| client.scard::<u64, _>(keys::section(event, section).inv)),
        )
        .await?;
        Ok(sections
            .iter()
            .zip(counts)
            .all(|((_, want), have)| *want == have))
    }

    /// Seats marked sold in Redis per section (`HLEN` of each section's sold hash, one call per
    /// section, concurrently), in the order of `sections`: what the reconciler compares with
    /// Postgres's live sales to find sales Redis lacks, whatever their age.
    pub async fn sold_counts(
        &self,
        event: &EventId,
        sections: &[SectionId],
    ) -> Result<Vec<u64>, CoordinatorError> {
        let client = self.client();
        Ok(futures::future::try_join_all(
            sections
                .iter()
                .map(|section| client.hlen::<u64, _>(keys::section(event, section).sold)),
        )
        .await?)
    }

    /// Loads (or re-loads, idempotently) an event's inventory. Layout first, then each section's
    /// seats with their sales, so a seat the layout knows but whose section is not loaded yet is
    /// simply refused as "not open" by hold.lua for that instant, and a seat is never holdable
    /// before its sale is marked.
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
                let (code, reply) = script
                    .call::<OpenLayoutCode>(
                        client,
                        vec![keys::layout(event), keys::sections(event)],
                        args,
                    )
                    .await?;
                match code {
                    OpenLayoutCode::Recorded => {}
                    OpenLayoutCode::OtherSection => {
                        return Ok(OpenOutcome::SeatInTwoSections(seat_ids(
                            script.name,
                            reply.strings_from(1)?,
                        )?))
                    }
                }
            }
        }

        let (mut seats_added, mut capacity) = (0, 0);
        for inv in sections {
            let k = keys::section(event, &inv.section);
            let mut section_capacity = 0;
            for chunk in inv.seats.chunks(CHUNK) {
                let sold: Vec<(&SeatId, &HoldId)> = chunk
                    .iter()
                    .filter_map(|seat| inv.sold.get(seat).map(|hold| (seat, hold)))
                    .collect();
                let blocked: Vec<(&SeatId, &String)> = chunk
                    .iter()
                    .filter_map(|seat| inv.blocked.get(seat).map(|tag| (seat, tag)))
                    .collect();
                let mut args =
                    Vec::with_capacity(2 + 2 * (sold.len() + blocked.len()) + chunk.len());
                args.push(sold.len().to_string());
                args.push(blocked.len().to_string());
                for (seat, hold) in &sold {
                    args.push(seat.to_string());
                    args.push(hold.to_string());
                }
                for (seat, tag) in &blocked {
                    args.push(seat.to_string());
                    args.push((*tag).clone());
                }
                args.extend(chunk.iter().map(ToString::to_string));
                let script = &self.scripts.open_section;
                let (OpenSectionCode::Opened, reply) = script
                    .call::<OpenSectionCode>(
                        client,
                        vec![
                            k.inv.clone(),
                            k.ver.clone(),
                            k.sold.clone(),
                            k.audit.clone(),
                            k.blocked.clone(),
                        ],
                        args,
                    )
                    .await?;
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
