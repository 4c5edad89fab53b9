//! Moving a live hold's expiry: a buyer's extension and the payment pin (the hold cannot be
//! released while a payment is in flight; bounded by `max_pin_secs`). Neither ever moves the
//! expiry past the hold's cap.

use std::time::Duration;

use crate::hold::{check_ttl, Hold, HoldState, InvalidHold, Refusal, Transition};
use crate::ids::{HoldId, SeatId};
use crate::protocol::{ExtendAction, ExtendCode, TransitionOp};
use crate::{keys, seat_ids, Caller, Coordinator, CoordinatorError};

/// What an extension or a pin came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendOutcome {
    /// Done: the hold and its seats now expire at `hold.expires_at_ms`.
    Extended(Hold),
    /// No such hold.
    NotFound,
    /// Another buyer's hold.
    NotOwner,
    /// The hold has expired; its seats may already be someone else's.
    Expired(Hold),
    /// The new expiry would pass the hold's absolute cap; nothing changed.
    PastCap(Hold),
    /// The hold is not in a state that can be extended (pinned, sold, released...).
    WrongState(Hold),
    /// The TTL asked for is outside the configured range, or the pin is too long.
    Invalid(InvalidHold),
    /// The record moved but these seats are no longer held by the hold (lost in a failover, or
    /// expired an instant ago). The caller should treat the hold as lost.
    SeatsLost(Vec<SeatId>),
}

/// What [`Coordinator::check_pinned`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Pinned, with at least the margin asked for left, and every section holds its seats for
    /// it until the record's expiry.
    Pinned(Hold),
    /// Sold already, to this hold.
    Sold,
    /// Anything else (not pinned, too little time left, a section that lost seats, no record):
    /// the caller pins it again, which says what became of it.
    Unsure,
}

impl Coordinator {
    /// Whether a pinned hold keeps its seats for at least `margin`, checked without writing
    /// anything: the record read, then each section asked to confirm (`extend.lua` "check").
    /// The durable writer's check before it writes a hold's order: the commit pinned it moments
    /// before, and pinning it again moved every expiry, added an audit entry per section (which
    /// the reconciler then copied to Postgres) and replicated all of it, once per checkout.
    pub async fn check_pinned(
        &self,
        hold_id: &HoldId,
        margin: Duration,
    ) -> Result<PinCheck, CoordinatorError> {
        let hold = match self
            .transition(hold_id, TransitionOp::Read, Caller::System, 0, None)
            .await?
        {
            Transition::Done(h) | Transition::Replay(h) => h,
            _ => return Ok(PinCheck::Unsure),
        };
        match hold.state {
            HoldState::Sold => return Ok(PinCheck::Sold),
            HoldState::Pinned
                if hold.expires_at_ms.saturating_sub(hold.now_ms) >= margin.as_millis() as i64 => {}
            _ => return Ok(PinCheck::Unsure),
        }
        for (section, seats) in self.hold_groups(&hold).await? {
            let k = keys::section(&hold.event, &section);
            let mut args = Vec::with_capacity(seats.len() + 4);
            args.push(hold_id.to_string());
            args.push(hold.expires_at_ms.to_string());
            args.push(ExtendAction::Check.as_arg().to_owned());
            args.push(Caller::System.actor());
            args.extend(seats.iter().map(ToString::to_string));
            let (code, _) = self
                .scripts
                .extend
                .call::<ExtendCode>(self.client(), vec![k.held, k.holder, k.audit], args)
                .await?;
            if code == ExtendCode::Lost {
                return Ok(PinCheck::Unsure);
            }
        }
        Ok(PinCheck::Pinned(hold))
    }

    /// Extends a held hold to `ttl_secs` from now, within the TTL range and the absolute cap.
    pub async fn extend(
        &self,
        hold_id: &HoldId,
        caller: Caller<'_>,
        ttl_secs: u64,
    ) -> Result<ExtendOutcome, CoordinatorError> {
        let ttl = match check_ttl(Some(ttl_secs), &self.limits) {
            Ok(ttl) => ttl,
            Err(e) => return Ok(ExtendOutcome::Invalid(e)),
        };
        self.move_expiry(hold_id, TransitionOp::Extend, caller, ttl)
            .await
    }

    /// Pins a live hold for a payment: it stays held `pin_for` from now (at most `max_pin_secs`)
    /// or until its cap, whichever comes first, and cannot be released meanwhile.
    pub async fn pin(
        &self,
        hold_id: &HoldId,
        pin_for: Duration,
    ) -> Result<ExtendOutcome, CoordinatorError> {
        let max = Duration::from_secs(self.limits.max_pin_secs);
        if pin_for > max || pin_for.is_zero() {
            return Ok(ExtendOutcome::Invalid(InvalidHold::TtlOutOfRange {
                min: 1,
                max: self.limits.max_pin_secs,
                requested: pin_for.as_secs(),
            }));
        }
        self.move_expiry(hold_id, TransitionOp::Pin, Caller::System, pin_for)
            .await
    }

    /// Ends a pin (the payment was declined): the hold goes back to the expiry it had, so the
    /// buyer may try again, or cancel, as before.
    pub async fn unpin(&self, hold_id: &HoldId) -> Result<ExtendOutcome, CoordinatorError> {
        self.move_expiry(hold_id, TransitionOp::Unpin, Caller::System, Duration::ZERO)
            .await
    }

    async fn move_expiry(
        &self,
        hold_id: &HoldId,
        op: TransitionOp,
        caller: Caller<'_>,
        by: Duration,
    ) -> Result<ExtendOutcome, CoordinatorError> {
        let hold = match self
            .transition(hold_id, op, caller, by.as_millis() as u64, None)
            .await?
        {
            Transition::NotFound => return Ok(ExtendOutcome::NotFound),
            Transition::NotOwner => return Ok(ExtendOutcome::NotOwner),
            Transition::Refused(Refusal::Expired, h) => return Ok(ExtendOutcome::Expired(h)),
            Transition::Refused(Refusal::PastCap, h) => return Ok(ExtendOutcome::PastCap(h)),
            Transition::Refused(Refusal::WrongState, h) => {
                return Ok(if h.state == HoldState::Expired {
                    ExtendOutcome::Expired(h)
                } else {
                    ExtendOutcome::WrongState(h)
                })
            }
            Transition::Done(h) => (h, true),
            Transition::Replay(h) => (h, false),
        };
        // A pin of a hold pinned already only moves the pin: an extension, not a new state.
        let (hold, changed_state) = hold;
        let client = self.client();
        let mut lost = Vec::new();
        for (section, seats) in self.hold_groups(&hold).await? {
            let k = keys::section(&hold.event, &section);
            let mut args = Vec::with_capacity(seats.len() + 4);
            args.push(hold_id.to_string());
            args.push(hold.expires_at_ms.to_string());
            args.push(
                match op {
                    TransitionOp::Pin if changed_state => ExtendAction::Pinned,
                    TransitionOp::Unpin if changed_state => ExtendAction::Unpinned,
                    _ => ExtendAction::Extended,
                }
                .as_arg()
                .to_owned(),
            );
            args.push(caller.actor());
            args.extend(seats.iter().map(ToString::to_string));
            let script = &self.scripts.extend;
            let (code, reply) = script
                .call::<ExtendCode>(client, vec![k.held, k.holder, k.audit], args)
                .await?;
            match code {
                ExtendCode::Moved => {}
                ExtendCode::Lost => lost.extend(seat_ids(script.name, reply.strings_from(1)?)?),
            }
        }
        if lost.is_empty() {
            return Ok(ExtendOutcome::Extended(hold));
        }
        if matches!(op, TransitionOp::Extend | TransitionOp::Unpin) {
            // The buyer is told the hold is gone: make it so, rather than leave a record that
            // reads "held" and sections extended for seats it no longer has all of.
            let released = self.release(hold_id, Caller::System).await?;
            tracing::info!(hold = %hold_id, ?released, "extension found lost seats; hold released");
        }
        Ok(ExtendOutcome::SeatsLost(lost))
    }
}
