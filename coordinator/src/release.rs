//! Releasing a hold: its buyer cancels it, or the system tidies it up.

use crate::hold::{Hold, HoldState, Refusal, Transition};
use crate::ids::{EventId, HoldId, SeatId, SectionId};
use crate::protocol::{ReleaseCode, TransitionOp};
use crate::{keys, Caller, Coordinator, CoordinatorError};

/// What a release came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold is released and its seats are free.
    Released(Hold),
    /// It was already released (a replay); its seats are free.
    AlreadyReleased(Hold),
    /// No such hold.
    NotFound,
    /// Another buyer's hold.
    NotOwner,
    /// The hold cannot be released in its state (pinned for a payment, sold, still being placed).
    NotReleasable(HoldState),
}

impl Coordinator {
    /// Releases a hold and frees its seats.
    pub async fn release(
        &self,
        hold_id: &HoldId,
        caller: Caller<'_>,
    ) -> Result<ReleaseOutcome, CoordinatorError> {
        let hold = match self
            .transition(hold_id, TransitionOp::Release, caller, 0, None)
            .await?
        {
            Transition::NotFound => return Ok(ReleaseOutcome::NotFound),
            Transition::NotOwner => return Ok(ReleaseOutcome::NotOwner),
            Transition::Refused(
                Refusal::WrongState | Refusal::Expired | Refusal::PastCap,
                hold,
            ) => return Ok(ReleaseOutcome::NotReleasable(hold.state)),
            Transition::Done(hold) => Ok(hold),
            // A replay frees the seats again: a caller that crashed between the record and the
            // sections is completed by its retry.
            Transition::Replay(hold) => Err(hold),
        };
        let (Ok(h) | Err(h)) = &hold;
        let client = self.client();
        let mut changed = Vec::new();
        for (section, seats) in self.hold_groups(h).await? {
            if self
                .release_section(client, &h.event, &section, hold_id, &caller.actor(), &seats)
                .await?
                > 0
            {
                changed.push(section);
            }
        }
        self.announce_sections(&h.event, &changed).await;
        Ok(match hold {
            Ok(h) => ReleaseOutcome::Released(h),
            Err(h) => ReleaseOutcome::AlreadyReleased(h),
        })
    }

    pub(crate) async fn release_section(
        &self,
        client: &fred::prelude::Client,
        event: &EventId,
        section: &SectionId,
        hold_id: &HoldId,
        actor: &str,
        seats: &[SeatId],
    ) -> Result<u64, CoordinatorError> {
        let k = keys::section(event, section);
        let mut args = Vec::with_capacity(seats.len() + 2);
        args.push(hold_id.to_string());
        args.push(actor.to_owned());
        args.extend(seats.iter().map(ToString::to_string));
        let script = &self.scripts.release;
        let (ReleaseCode::Released, reply) = script
            .call::<ReleaseCode>(
                client,
                vec![k.held, k.holder, k.ver, k.audit, k.wl, k.reserved],
                args,
            )
            .await?;
        Ok(reply.int(1)? as u64)
    }
}
