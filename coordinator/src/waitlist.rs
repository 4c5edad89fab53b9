//! A section's side of the waiting list (`lua/include/waitlist.lua`, `lua/waitlist.lua`): how
//! many entries want it, and the seats that came back and were set aside for them. The list
//! itself (who waits, in what order) is in Postgres; the reconciler's offer loop reads both and
//! offers set-aside seats through an ordinary hold in offer mode ([`crate::hold::HoldRequest::as_offer`]).

use fred::prelude::*;

use crate::ids::{EventId, SeatId, SectionId};
use crate::protocol::WaitlistCode;
use crate::{keys, Coordinator, CoordinatorError};

impl Coordinator {
    /// Tells a section how many waiting entries want it (`waiting`) and gives `give_back` (seats
    /// set aside that no entry can use) back to the open sale; with `waiting` 0, every seat set
    /// aside goes back. Returns how many went back; the section is announced when any did, or
    /// when it went from nobody waiting to someone (or back).
    pub async fn set_waiting(
        &self,
        event: &EventId,
        section: &SectionId,
        waiting: u64,
        give_back: &[SeatId],
    ) -> Result<u64, CoordinatorError> {
        let k = keys::section(event, section);
        let script = &self.scripts.waitlist;
        let (WaitlistCode::Set, reply) = script
            .call::<WaitlistCode>(
                self.client(),
                vec![k.wl, k.reserved, k.ver, k.audit],
                std::iter::once(waiting.to_string())
                    .chain(give_back.iter().map(ToString::to_string))
                    .collect(),
            )
            .await?;
        let back = reply.int(1)?.max(0) as u64;
        // Someone starting or stopping to wait changes what the seat map shows (an ended,
        // unswept hold's seat is the list's while someone waits, free otherwise).
        let flipped = reply.int(3)? == 1;
        if back > 0 || flipped {
            self.announce_sections(event, [section]).await;
        }
        Ok(back)
    }

    /// The seats of a section set aside for the waiting list, oldest return first, with when
    /// each came back (unix ms, Redis `TIME`).
    pub async fn set_aside(
        &self,
        event: &EventId,
        section: &SectionId,
    ) -> Result<Vec<(SeatId, i64)>, CoordinatorError> {
        let raw: std::collections::HashMap<String, i64> = self
            .client()
            .hgetall(keys::section(event, section).reserved)
            .await?;
        let mut seats = raw
            .into_iter()
            .map(|(seat, at)| {
                SeatId::parse(&seat)
                    .map(|seat| (seat, at))
                    .map_err(|e| CoordinatorError::protocol("waitlist", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        seats.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(seats)
    }
}
