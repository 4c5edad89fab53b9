//! Organizer blocks (press, production holds): no expiry, only on free seats, all or nothing
//! across sections.

use crate::hold::{parse_unavailable, Unavailable};
use crate::ids::{EventId, SeatId, SectionId};
use crate::protocol::{BlockCode, UnblockCode};
use crate::{keys, seat_ids, Coordinator, CoordinatorError};

/// Why a block request was refused before touching Redis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBlock {
    /// No seats.
    #[error("no seats given")]
    NoSeats,
    /// The tag is empty, too long or has spaces.
    #[error("the block tag must be 1 to 64 characters without spaces")]
    BadTag,
    /// More seats than one request may name ([`MAX_SEATS_PER_BLOCK`]).
    #[error("{requested} seats given; at most {max} per request")]
    TooManySeats {
        /// The bound.
        max: usize,
        /// What was asked.
        requested: usize,
    },
}

/// Most seats one block or unblock names. `lua/block.lua` answers with up to two values per
/// seat, and Lua's `unpack` stops at about 8,000 values: past it the script would fail after
/// writing (Lua errors do not roll back). A whole 2,000-seat theatre fits; a bigger venue is
/// blocked in several requests.
pub const MAX_SEATS_PER_BLOCK: usize = 2_000;

fn check_count(seats: &[SeatId]) -> Option<InvalidBlock> {
    if seats.is_empty() {
        Some(InvalidBlock::NoSeats)
    } else if seats.len() > MAX_SEATS_PER_BLOCK {
        Some(InvalidBlock::TooManySeats {
            max: MAX_SEATS_PER_BLOCK,
            requested: seats.len(),
        })
    } else {
        None
    }
}

/// What blocking came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Every seat is blocked; these were newly blocked by this call.
    Blocked(Vec<SeatId>),
    /// Some seats are held or sold; nothing was blocked.
    Unavailable(Vec<Unavailable>),
    /// The event is not open.
    UnknownEvent,
    /// Seats the event does not know; nothing was blocked.
    UnknownSeats(Vec<SeatId>),
    /// Refused before touching Redis.
    Invalid(InvalidBlock),
}

/// What unblocking came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnblockOutcome {
    /// These seats were blocked and are free now (others were left as they were).
    Unblocked(Vec<SeatId>),
    /// The event is not open.
    UnknownEvent,
    /// Seats the event does not know; nothing was changed.
    UnknownSeats(Vec<SeatId>),
    /// Refused before touching Redis.
    Invalid(InvalidBlock),
}

impl Coordinator {
    /// Blocks free seats for the organizer, all or nothing.
    pub async fn block(
        &self,
        event: &EventId,
        seats: &[SeatId],
        tag: &str,
    ) -> Result<BlockOutcome, CoordinatorError> {
        if let Some(invalid) = check_count(seats) {
            return Ok(BlockOutcome::Invalid(invalid));
        }
        if tag.is_empty() || tag.len() > 64 || tag.contains(char::is_whitespace) {
            return Ok(BlockOutcome::Invalid(InvalidBlock::BadTag));
        }
        let groups = match self.group_by_section(event, seats).await? {
            None => return Ok(BlockOutcome::UnknownEvent),
            Some(Err(unknown)) => return Ok(BlockOutcome::UnknownSeats(unknown)),
            Some(Ok(groups)) => groups,
        };
        let client = self.client();
        let mut newly: Vec<(SectionId, Vec<SeatId>)> = Vec::new();
        let mut refusal = None;
        for (section, seats) in &groups {
            let k = keys::section(event, section);
            let mut args = Vec::with_capacity(seats.len() + 2);
            args.push(tag.to_owned());
            args.push("organizer".to_owned());
            args.extend(seats.iter().map(ToString::to_string));
            let script = &self.scripts.block;
            let (code, reply) = script
                .call::<BlockCode>(
                    client,
                    vec![k.inv, k.held, k.sold, k.blocked, k.ver, k.audit, k.reserved],
                    args,
                )
                .await?;
            match code {
                BlockCode::Blocked => newly.push((
                    section.clone(),
                    seat_ids(script.name, reply.strings_from(1)?)?,
                )),
                BlockCode::Unavailable => {
                    refusal = Some(BlockOutcome::Unavailable(parse_unavailable(
                        script.name,
                        reply.strings_from(1)?,
                    )?));
                    break;
                }
                BlockCode::UnknownSeats => {
                    refusal = Some(BlockOutcome::UnknownSeats(seat_ids(
                        script.name,
                        reply.strings_from(1)?,
                    )?));
                    break;
                }
            }
        }
        if let Some(refusal) = refusal {
            for (section, seats) in newly.iter().rev() {
                if !seats.is_empty() {
                    self.unblock_section(client, event, section, seats).await?;
                }
            }
            return Ok(refusal);
        }
        let changed: Vec<&SectionId> = newly
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(section, _)| section)
            .collect();
        self.announce_sections(event, changed).await;
        Ok(BlockOutcome::Blocked(
            newly.into_iter().flat_map(|(_, s)| s).collect(),
        ))
    }

    /// Returns blocked seats to sale.
    pub async fn unblock(
        &self,
        event: &EventId,
        seats: &[SeatId],
    ) -> Result<UnblockOutcome, CoordinatorError> {
        if let Some(invalid) = check_count(seats) {
            return Ok(UnblockOutcome::Invalid(invalid));
        }
        let groups = match self.group_by_section(event, seats).await? {
            None => return Ok(UnblockOutcome::UnknownEvent),
            Some(Err(unknown)) => return Ok(UnblockOutcome::UnknownSeats(unknown)),
            Some(Ok(groups)) => groups,
        };
        let client = self.client();
        let mut freed = Vec::new();
        let mut changed = Vec::new();
        for (section, seats) in &groups {
            let now_free = self.unblock_section(client, event, section, seats).await?;
            if !now_free.is_empty() {
                changed.push(section);
            }
            freed.extend(now_free);
        }
        self.announce_sections(event, changed).await;
        Ok(UnblockOutcome::Unblocked(freed))
    }

    async fn unblock_section(
        &self,
        client: &fred::prelude::Client,
        event: &EventId,
        section: &SectionId,
        seats: &[SeatId],
    ) -> Result<Vec<SeatId>, CoordinatorError> {
        let k = keys::section(event, section);
        let script = &self.scripts.unblock;
        let (UnblockCode::Unblocked, reply) = script
            .call::<UnblockCode>(
                client,
                vec![k.blocked, k.ver, k.audit, k.wl, k.reserved],
                std::iter::once("organizer".to_owned())
                    .chain(seats.iter().map(ToString::to_string))
                    .collect(),
            )
            .await?;
        seat_ids(script.name, reply.strings_from(1)?)
    }
}
