//! Checkout's commit protocol: a held hold becomes a paid order, or nothing is charged, or the
//! charge is refunded. The gateway parses the request, calls [`Checkout::commit`] and maps its
//! typed outcome ([`Commit`]) to HTTP.
//!
//! The order of steps is what keeps the invariants:
//! 1. the buyer's idempotency key is claimed (`commit_attempts`): the same key for another hold
//!    or another payment token is refused;
//! 2. the hold is pinned: it cannot expire or be cancelled while the payment is in flight;
//! 3. the provider is charged with a key derived from the hold and the client's key, with our
//!    order/hold/event in its metadata (a replay charges once; a payment alone says what it was
//!    for, so reconciliation can finish the job if this process dies);
//! 4. the sale goes on the commit queue, and the reconciler's durable writer writes it to
//!    Postgres in a batch through the live-sale unique index (and settles the attempt `paid`
//!    in the same transaction: a paid checkout makes two commits of ours, the claim and the
//!    writer's batch);
//! 5. **[`Commit::Paid`] only once the writer reports the order committed** (or Postgres shows
//!    it). An outcome not known within a deadline is [`Commit::Pending`]; the order, webhooks
//!    and reconciliation resolve it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coordinator::extend::ExtendOutcome;
use coordinator::hold::ReadOutcome;
use coordinator::{Caller, CoordinatorError, EventId, Hold, HoldId, HoldState, UserId};
use payments::{ChargeOutcome, ChargeRequest, PaymentError};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::attempts::{self, Attempt, Claim, OrderView, Status};
use crate::{meta, CommitJob, Done, OrdersError, Services, Written};

/// One commit request, parsed.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The buyer.
    pub user: UserId,
    /// The hold being bought.
    pub hold: HoldId,
    /// The buyer's idempotency key.
    pub key: String,
    /// The provider's one-time payment token.
    pub token: String,
}

/// What a commit came to.
#[derive(Debug)]
pub enum Commit {
    /// The order is written and paid: by this request (`fresh`), or by an earlier one.
    Paid {
        /// The order.
        order: Uuid,
        /// As the buyer sees it.
        view: OrderView,
        /// The hold's event (known when `fresh`).
        event: Option<EventId>,
        /// This request's payment wrote it.
        fresh: bool,
    },
    /// Not known yet: the payment is being confirmed, or needs the buyer (3-D Secure).
    Pending {
        /// The order it will be.
        order: Uuid,
        /// Why it is not final.
        status: Waiting,
        /// The provider's payment, once there is one.
        payment: Option<String>,
    },
    /// Refused; what was charged, if anything, is refunded.
    Refused(Refusal),
}

/// Why a commit is not final yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The provider or the writer has not answered in time.
    Pending,
    /// The payment needs the buyer (3-D Secure); its webhook finishes the commit.
    RequiresAction,
}

impl Waiting {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
        }
    }
}

/// A refused commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The hold is another buyer's.
    NotYourHold,
    /// No such hold.
    UnknownHold,
    /// The hold expired or was cancelled (nothing charged).
    HoldGone,
    /// The hold expired before its order could be written: the payment was refunded.
    HoldGoneRefunded,
    /// The hold is being placed or committed by another request right now.
    InProgress,
    /// The hold's order was paid under another idempotency key (`refunded`: and this
    /// request's payment was refunded).
    CommittedWithOtherKey {
        /// This request's payment was refunded.
        refunded: bool,
    },
    /// This key was already used for another hold or payment token.
    KeyUsedElsewhere,
    /// The provider knows this key with another payment.
    KeyUsedWithOtherPayment,
    /// The hold costs nothing: checkout sells paid seats only.
    NothingToCharge,
    /// The hold costs more than one payment may be.
    TotalOutOfRange,
    /// The card was declined (the hold stays, unpinned).
    Declined {
        /// The provider's reason.
        reason: String,
    },
    /// A seat was already sold (Postgres' last guard): the payment was refunded.
    Oversold,
}

/// This process's commits: those waiting for the durable writer, by order (the writer's
/// announcements (pub/sub) wake them; they also poll Postgres, so a lost announcement costs
/// latency, never correctness), those between their charge and their verdict, and the payments
/// whose order they saw written. The last two let the provider's webhook about a payment this
/// process is settling, or has settled, be answered without asking the provider or Postgres
/// ([`Checkout::on_webhook`]); another process, or this one after a restart, asks them.
#[derive(Default)]
pub struct Waiters {
    waiting: Mutex<HashMap<Uuid, Vec<oneshot::Sender<Done>>>>,
    /// Commits of this process from their charge to their verdict, by order (a count: two
    /// requests of one commit may overlap).
    charging: Mutex<HashMap<Uuid, u32>>,
    /// Payments whose order a commit of this process saw written, oldest first.
    paid: Mutex<RecentlyPaid>,
}

/// At most this many payments are remembered as paid (about 100 bytes each): a webhook is sent
/// within seconds of its charge, and one about a payment forgotten here asks Postgres.
const PAID_REMEMBERED: usize = 65_536;

#[derive(Default)]
struct RecentlyPaid {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

/// A commit of this process between its charge and its verdict (see [`Waiters::charging`]);
/// dropping it ends that, however the commit ends (answered, failed, or its request dropped).
struct Charging<'a> {
    waiters: &'a Waiters,
    order: Uuid,
}

impl Drop for Charging<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.waiters.charging.lock() {
            if let Some(n) = c.get_mut(&self.order) {
                *n -= 1;
                if *n == 0 {
                    c.remove(&self.order);
                }
            }
        }
    }
}

impl Waiters {
    fn register(&self, order: Uuid) -> oneshot::Receiver<Done> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.entry(order).or_default().push(tx);
        }
        rx
    }

    fn forget(&self, order: Uuid) {
        if let Ok(mut w) = self.waiting.lock() {
            if let Some(list) = w.get_mut(&order) {
                list.retain(|tx| !tx.is_closed());
                if list.is_empty() {
                    w.remove(&order);
                }
            }
        }
    }

    /// Delivers one writer announcement: a batch's outcomes (a JSON array of [`Done`]), or one
    /// outcome (a JSON [`Done`], as writers before batched announcements sent it).
    pub fn notify(&self, payload: &str) {
        let outcomes = match serde_json::from_str::<Vec<Done>>(payload) {
            Ok(outcomes) => outcomes,
            Err(_) => match serde_json::from_str::<Done>(payload) {
                Ok(done) => vec![done],
                Err(_) => return,
            },
        };
        let Ok(mut waiting) = self.waiting.lock() else {
            return;
        };
        for done in outcomes {
            for tx in waiting.remove(&done.order_id).into_iter().flatten() {
                let _ = tx.send(done.clone());
            }
        }
    }

    fn charging(&self, order: Uuid) -> Charging<'_> {
        if let Ok(mut c) = self.charging.lock() {
            *c.entry(order).or_default() += 1;
        }
        Charging {
            waiters: self,
            order,
        }
    }

    /// Whether a commit of this process is between its charge and its verdict for `order`.
    pub fn is_charging(&self, order: Uuid) -> bool {
        self.charging.lock().is_ok_and(|c| c.contains_key(&order))
    }

    fn remember_paid(&self, payment: &str) {
        if let Ok(mut p) = self.paid.lock() {
            if p.set.insert(payment.to_owned()) {
                p.order.push_back(payment.to_owned());
                while p.order.len() > PAID_REMEMBERED {
                    if let Some(old) = p.order.pop_front() {
                        p.set.remove(&old);
                    }
                }
            }
        }
    }

    /// Whether a commit of this process saw `payment`'s order written (and not forgotten it
    /// since).
    pub fn saw_paid(&self, payment: &str) -> bool {
        self.paid.lock().is_ok_and(|p| p.set.contains(payment))
    }
}

/// What checkout needs.
#[derive(Clone)]
pub struct Checkout {
    /// Postgres, Redis, the provider.
    pub services: Services,
    /// Commits waiting for the writer.
    pub waiters: Arc<Waiters>,
    /// Longest wait for the provider's answer to a charge.
    pub charge_deadline: Duration,
    /// Longest wait for the writer's verdict.
    pub write_deadline: Duration,
    /// Told each charge's outcome (`succeeded`, `declined`, `timeout`, …), for metrics.
    pub on_charge: Arc<dyn Fn(&'static str) + Send + Sync>,
}

/// A hold found, checked and priced: ready to be charged.
struct Ready {
    hold: Hold,
    order: Uuid,
    total_cents: i64,
    currency: String,
}

impl Checkout {
    /// Commits `request`. `price` gives a hold's total (the quote it was placed with, or the
    /// catalog's prices); its error and [`OrdersError`] are the caller's error type.
    pub async fn commit<E, F, Fut>(&self, request: &CommitRequest, price: F) -> Result<Commit, E>
    where
        E: From<OrdersError>,
        F: Fn(Hold) -> Fut,
        Fut: Future<Output = Result<(i64, String), E>>,
    {
        // A commit superseded by another key's replays once, to answer with that order.
        for replay in [false, true] {
            let ready = match self.ready(request, &price).await? {
                Ok(ready) => ready,
                Err(done) => return Ok(done),
            };
            match self.pin_and_charge(request, ready, replay).await? {
                Some(done) => return Ok(done),
                None => continue,
            }
        }
        Ok(Commit::Refused(Refusal::CommittedWithOtherKey {
            refunded: true,
        }))
    }

    /// The hold, checked and priced, with the key claimed; or the answer when there is nothing
    /// to charge (a replay of a written order, a refusal).
    async fn ready<E, F, Fut>(
        &self,
        request: &CommitRequest,
        price: &F,
    ) -> Result<Result<Ready, Commit>, E>
    where
        E: From<OrdersError>,
        F: Fn(Hold) -> Fut,
        Fut: Future<Output = Result<(i64, String), E>>,
    {
        let svc = &self.services;
        let order = crate::order_id(&request.hold);
        let read = svc
            .coordinator
            .read_hold(&request.hold, Caller::User(&request.user))
            .await
            .map_err(OrdersError::from)?;
        // A replay: the order exists. Not for a hold still `held`: an order is only written for
        // a pinned hold, and a first commit (the common case) need not ask Postgres. (Were one
        // there anyway, the charge is a replay of the provider's and the writer finds the order.)
        if !matches!(&read, ReadOutcome::Found(h) if h.state == HoldState::Held) {
            if let Some(done) = self.written(request, order).await? {
                return Ok(Err(done));
            }
        }
        let refused = |r| Ok(Err(Commit::Refused(r)));
        let hold = match read {
            ReadOutcome::Found(hold) => hold,
            ReadOutcome::NotOwner => return refused(Refusal::NotYourHold),
            ReadOutcome::NotFound => return refused(Refusal::UnknownHold),
        };
        match hold.state {
            HoldState::Held | HoldState::Pinned => {}
            HoldState::Expired | HoldState::Released => return refused(Refusal::HoldGone),
            HoldState::Pending | HoldState::Sold => return refused(Refusal::InProgress),
        }
        // What will be charged, checked before anything is written: a provider never sees
        // zero, a negative amount or more than one charge may be.
        let (total_cents, currency) = price(hold.clone()).await?;
        if total_cents <= 0 {
            return refused(Refusal::NothingToCharge);
        }
        if total_cents > payments::MAX_CHARGE_CENTS {
            return refused(Refusal::TotalOutOfRange);
        }
        let attempt = Attempt {
            user: &request.user,
            key: &request.key,
            token: &request.token,
            order,
            hold: &request.hold,
            event: hold.event.as_str(),
        };
        if attempts::claim(&svc.db, attempt)
            .await
            .map_err(OrdersError::from)?
            == Claim::Conflict
        {
            return refused(Refusal::KeyUsedElsewhere);
        }
        Ok(Ok(Ready {
            hold,
            order,
            total_cents,
            currency,
        }))
    }

    /// The answer for an order already written: it, or a refusal when it is another buyer's or
    /// another key's.
    async fn written(
        &self,
        request: &CommitRequest,
        order: Uuid,
    ) -> Result<Option<Commit>, OrdersError> {
        let Some(view) = attempts::order(&self.services.db, order).await? else {
            return Ok(None);
        };
        Ok(Some(if view.user != request.user.as_str() {
            Commit::Refused(Refusal::NotYourHold)
        } else if view.key != request.key {
            Commit::Refused(Refusal::CommittedWithOtherKey { refunded: false })
        } else {
            Commit::Paid {
                order,
                view,
                event: None,
                fresh: false,
            }
        }))
    }

    /// Pins the hold, charges, queues the sale and waits for its verdict. `None`: another key's
    /// commit won the hold and this one was refunded; ask again (once) for that order.
    async fn pin_and_charge(
        &self,
        request: &CommitRequest,
        ready: Ready,
        replay: bool,
    ) -> Result<Option<Commit>, OrdersError> {
        if let Some(refused) = self.pin(request, ready.order, replay).await? {
            return Ok(refused);
        }
        // From here to the verdict, the provider's webhook about this payment (sent the moment
        // it is captured, often before the charge's answer reaches us) is answered "in flight"
        // from memory: this commit queues the order itself.
        let _charging = self.waiters.charging(ready.order);
        let payment = match self.charge(request, &ready).await? {
            Ok(payment) => payment,
            Err(done) => return Ok(Some(done)),
        };
        self.write(request, ready, payment).await
    }

    /// Pins the hold for the payment (the buyer's ticket count moves with it, in the same
    /// step). `Some`: the answer instead (`None` inside it: replay for the order just written).
    async fn pin(
        &self,
        request: &CommitRequest,
        order: Uuid,
        replay: bool,
    ) -> Result<Option<Option<Commit>>, OrdersError> {
        let svc = &self.services;
        let pin_for = Duration::from_secs(svc.coordinator.limits().max_pin_secs);
        let refusal = match svc.coordinator.pin(&request.hold, pin_for).await? {
            ExtendOutcome::Extended(_) => return Ok(None),
            ExtendOutcome::NotFound => {
                return Ok(Some(Some(Commit::Refused(Refusal::UnknownHold))))
            }
            ExtendOutcome::NotOwner => {
                return Ok(Some(Some(Commit::Refused(Refusal::NotYourHold))))
            }
            ExtendOutcome::Invalid(e) => {
                return Err(OrdersError::Coordinator(CoordinatorError::Protocol {
                    script: "pin",
                    detail: e.to_string(),
                }))
            }
            // The hold moved on under us: a concurrent commit may have just sold it (then its
            // order answers), otherwise it expired or is being committed right now.
            other => {
                if !replay && attempts::order(&svc.db, order).await?.is_some() {
                    return Ok(Some(None));
                }
                match other {
                    ExtendOutcome::WrongState(h)
                        if matches!(h.state, HoldState::Pending | HoldState::Sold) =>
                    {
                        Refusal::InProgress
                    }
                    _ => Refusal::HoldGone,
                }
            }
        };
        // Nothing was charged: the key's claim goes, so the order does not say "pending".
        if let Err(e) = attempts::drop_unused(&svc.db, &request.user, &request.key).await {
            tracing::warn!(error = %e, "unused commit attempt not removed");
        }
        Ok(Some(Some(Commit::Refused(refusal))))
    }

    /// Charges the hold's total. `Ok(payment)` when it succeeded; otherwise the answer.
    async fn charge(
        &self,
        request: &CommitRequest,
        ready: &Ready,
    ) -> Result<Result<String, Commit>, OrdersError> {
        let svc = &self.services;
        let charge = ChargeRequest {
            idempotency_key: format!("{}:{}", request.hold, request.key),
            amount_cents: ready.total_cents,
            currency: ready.currency.clone(),
            token: request.token.clone(),
            metadata: [
                (meta::ORDER, ready.order.to_string()),
                (meta::HOLD, request.hold.to_string()),
                (meta::EVENT, ready.hold.event.to_string()),
                (meta::USER, request.user.to_string()),
                (meta::CLIENT_KEY, request.key.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        };
        let charged = tokio::time::timeout(self.charge_deadline, svc.payments.charge(&charge))
            .await
            .unwrap_or(Err(PaymentError::Timeout));
        (self.on_charge)(charge_label(&charged));
        let pending = |status, payment| Commit::Pending {
            order: ready.order,
            status,
            payment,
        };
        Ok(Err(match charged {
            Ok(ChargeOutcome::Succeeded { payment_id }) => return Ok(Ok(payment_id)),
            Err(PaymentError::Timeout) => {
                self.set_attempt(request, Status::Pending, None).await;
                pending(Waiting::Pending, None)
            }
            Err(PaymentError::IdempotencyMismatch) => {
                Commit::Refused(Refusal::KeyUsedWithOtherPayment)
            }
            Err(PaymentError::TokenRefused(reason))
            | Ok(ChargeOutcome::Declined { reason, .. }) => {
                self.declined(request, ready.order).await?;
                Commit::Refused(Refusal::Declined { reason })
            }
            Err(e) => return Err(e.into()),
            Ok(ChargeOutcome::RequiresAction { payment_id }) => {
                self.set_attempt(request, Status::RequiresAction, Some(&payment_id))
                    .await;
                pending(Waiting::RequiresAction, Some(payment_id))
            }
        }))
    }

    /// A declined card: the hold stays, unpinned, so the buyer may try another card or cancel
    /// until it expires. Not while another commit of the same hold (another key) is in flight:
    /// unpinning would let the hold expire under a payment that succeeds. Nor once one is paid:
    /// its order is in Postgres and the writer is about to mark the seats sold; an unpinned hold
    /// could expire first and its seats go to another buyer.
    async fn declined(&self, request: &CommitRequest, order: Uuid) -> Result<(), OrdersError> {
        let svc = &self.services;
        self.set_attempt(request, Status::Declined, None).await;
        if !attempts::others_may_pay(&svc.db, order, &request.user, &request.key).await? {
            if let Err(e) = svc.coordinator.unpin(&request.hold).await {
                tracing::warn!(hold = %request.hold, error = %e, "declined payment: hold stays pinned until the pin ends");
            }
        }
        Ok(())
    }

    /// Queues the sale for the durable writer and waits for its verdict. The attempt stays
    /// `charging` meanwhile (a webhook then is delivered again): the writer's batch settles it
    /// `paid` with the payment, so the common case writes nothing here. `None`: superseded by
    /// another key's order, ask again.
    async fn write(
        &self,
        request: &CommitRequest,
        ready: Ready,
        payment: String,
    ) -> Result<Option<Commit>, OrdersError> {
        let svc = &self.services;
        let Ready {
            hold,
            order,
            total_cents,
            currency,
        } = ready;
        let job = CommitJob {
            order_id: order,
            hold_id: request.hold.to_string(),
            event_id: hold.event.to_string(),
            user_id: request.user.to_string(),
            seats: hold.seats.iter().map(ToString::to_string).collect(),
            total_cents,
            currency,
            payment_ref: payment.clone(),
            idempotency_key: request.key.clone(),
        };
        let waiting = self.waiters.register(order);
        let queued = match serde_json::to_string(&job) {
            Ok(text) => svc.coordinator.enqueue_commit(&text).await.map(|_| ()),
            Err(e) => {
                tracing::error!(error = %e, "commit job not encodable");
                Ok(())
            }
        };
        let written = match queued {
            Ok(()) => self.wait_written(order, &payment, waiting).await?,
            Err(e) => {
                // Charged but not queued: reconciliation finds the payment (its metadata names
                // the hold, which stays pinned) and writes the order or refunds it.
                tracing::error!(hold = %request.hold, error = %e, "captured payment not queued; reconciliation will settle it");
                self.waiters.forget(order);
                None
            }
        };
        if written == Some(Written::Paid) {
            self.waiters.remember_paid(&payment);
        }
        self.verdict(request, job, hold.event, written).await
    }

    /// Acts on a provider's webhook `event` (its signature already checked). A payment that a
    /// commit of this process captured is answered from memory, without asking the provider or
    /// Postgres: its order written (paid), or its commit still running (in flight: the provider
    /// delivers it again). Only for the "captured" event: any other (a refund, a failure) is
    /// about a state this process did not see, and is settled by
    /// [`crate::settle::on_event`], as is every event about a payment this process did not
    /// capture or no longer remembers.
    pub async fn on_webhook(
        &self,
        event: &payments::webhook::WebhookEvent,
    ) -> Result<crate::settle::EventOutcome, OrdersError> {
        use crate::settle::{EventOutcome, Settled};
        if event.kind == payments::webhook::PAYMENT_SUCCEEDED {
            if self.waiters.saw_paid(&event.payment_id) {
                return Ok(EventOutcome::Settled(Settled::Paid));
            }
            let order = event
                .metadata
                .get(meta::ORDER)
                .and_then(|o| Uuid::parse_str(o).ok());
            if order.is_some_and(|o| self.waiters.is_charging(o)) {
                return Ok(EventOutcome::CommitInFlight);
            }
        }
        crate::settle::on_event(&self.services, event).await
    }

    /// The answer for the writer's verdict on this request's job (`None`: not known in time).
    async fn verdict(
        &self,
        request: &CommitRequest,
        job: CommitJob,
        event: EventId,
        written: Option<Written>,
    ) -> Result<Option<Commit>, OrdersError> {
        if matches!(
            written,
            Some(Written::Superseded | Written::Oversold | Written::Expired)
        ) {
            // The writer refunds these too; refunding here as well (refunds are idempotent)
            // makes "the payment was refunded" true by the time the buyer reads it.
            self.services.payments.refund(&job.payment_ref).await?;
        }
        let order = job.order_id;
        Ok(match written {
            // The order the writer just committed for this payment: what it wrote is the job.
            Some(Written::Paid) => Some(Commit::Paid {
                order,
                view: OrderView {
                    key: job.idempotency_key,
                    user: job.user_id,
                    status: "paid".to_owned(),
                    seats: job.seats,
                    total_cents: job.total_cents,
                    currency: job.currency,
                },
                event: Some(event),
                fresh: true,
            }),
            // Another commit of this hold (another key) won; ours was refunded.
            Some(Written::Superseded) => None,
            Some(Written::Oversold) => Some(Commit::Refused(Refusal::Oversold)),
            Some(Written::Expired) => Some(Commit::Refused(Refusal::HoldGoneRefunded)),
            None => {
                // Not final: the payment is recorded on the attempt (for the order's status).
                self.set_attempt(request, Status::Pending, Some(&job.payment_ref))
                    .await;
                Some(Commit::Pending {
                    order,
                    status: Waiting::Pending,
                    payment: Some(job.payment_ref),
                })
            }
        })
    }

    /// Waits for the writer's verdict on this payment's order, up to the write deadline.
    async fn wait_written(
        &self,
        order: Uuid,
        payment: &str,
        mut waiting: oneshot::Receiver<Done>,
    ) -> Result<Option<Written>, OrdersError> {
        let until = Instant::now() + self.write_deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            tokio::select! {
                done = &mut waiting => match done {
                    Ok(done) if done.payment_ref == payment && done.written == Written::Paid => {
                        return Ok(Some(Written::Paid))
                    }
                    // Any other verdict is read back from Postgres below, where the most
                    // decisive fact wins: the same payment may have been queued twice (the
                    // provider's webhook and this request), and the second copy's verdict is
                    // not the first's. So is another payment's verdict on this order, or a
                    // dropped sender. Either way the spent receiver is replaced (polling it
                    // again panics).
                    _ => waiting = self.waiters.register(order),
                },
                _ = tokio::time::sleep(left.min(Duration::from_millis(250))) => {}
            }
            // The announcement may be lost: Postgres is the truth.
            let verdict = attempts::verdict(&self.services.db, order, payment).await?;
            if verdict.is_some() || Instant::now() >= until {
                self.waiters.forget(order);
                return Ok(verdict);
            }
        }
    }

    /// Records what became of an attempt (best effort: a hint for the order's status).
    async fn set_attempt(&self, request: &CommitRequest, status: Status, payment: Option<&str>) {
        if let Err(e) = attempts::set_status(
            &self.services.db,
            &request.user,
            &request.key,
            status,
            payment,
        )
        .await
        {
            tracing::warn!(error = %e, "commit attempt status not recorded");
        }
    }
}

/// A charge's outcome as metrics label it.
fn charge_label(charged: &Result<ChargeOutcome, PaymentError>) -> &'static str {
    match charged {
        Err(PaymentError::Timeout) => "timeout",
        Err(PaymentError::TokenRefused(_)) | Ok(ChargeOutcome::Declined { .. }) => "declined",
        Err(_) => "error",
        Ok(ChargeOutcome::RequiresAction { .. }) => "requires_action",
        Ok(ChargeOutcome::Succeeded { .. }) => "succeeded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_charging_until_its_last_request_ends() {
        let w = Waiters::default();
        let order = Uuid::from_u128(7);
        let first = w.charging(order);
        let second = w.charging(order);
        assert!(w.is_charging(order));
        drop(first);
        assert!(w.is_charging(order), "the second request still charges");
        drop(second);
        assert!(!w.is_charging(order));
        assert!(
            w.charging.lock().expect("unpoisoned").is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn paid_payments_are_remembered_up_to_the_bound_oldest_forgotten_first() {
        let w = Waiters::default();
        for i in 0..PAID_REMEMBERED + 2 {
            w.remember_paid(&format!("pi_{i}"));
        }
        w.remember_paid("pi_5");
        assert!(!w.saw_paid("pi_0") && !w.saw_paid("pi_1"));
        assert!(w.saw_paid("pi_2") && w.saw_paid(&format!("pi_{}", PAID_REMEMBERED + 1)));
        let p = w.paid.lock().expect("unpoisoned");
        assert_eq!(
            (p.set.len(), p.order.len()),
            (PAID_REMEMBERED, PAID_REMEMBERED)
        );
    }
}
