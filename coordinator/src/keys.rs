//! The ONLY place that formats a Redis key.
//!
//! Seat state is hash-tagged per (event, section): `seat:{ev:E:sec:S}:...`, so one hot event's
//! sections spread over every primary, and each per-section script touches one slot. The event's
//! layout lives under `{ev:E}`; each hold's record, and the ticket count of the buyer who made it,
//! under the buyer's tag for the event `{h:T}` (16 bits carried in the hold id). None of these is
//! touched by the same script as seat state, so no script ever spans two slots.

use crate::ids::{EventId, HoldId, SectionId};

/// The keys of one section's seat state (see `lua/hold.lua` for their types).
#[derive(Debug, Clone)]
pub struct SectionKeys {
    /// SET of every seat id: the section's inventory and capacity.
    pub inv: String,
    /// ZSET seat id -> hold expiry (unix ms).
    pub held: String,
    /// HASH seat id -> hold id.
    pub holder: String,
    /// HASH seat id -> buying hold id.
    pub sold: String,
    /// HASH seat id -> organizer's tag.
    pub blocked: String,
    /// STRING change counter (seat-map cache version).
    pub ver: String,
    /// STREAM of the section's seat state changes (`lua/sweep.lua` documents the entries).
    pub audit: String,
    /// STRING: how many waiting-list entries want the section (`lua/include/waitlist.lua`).
    pub wl: String,
    /// HASH seat id -> when it came back: seats set aside for the waiting list.
    pub reserved: String,
}

/// The hash tag shared by every key of one section.
pub fn section_tag(event: &EventId, section: &SectionId) -> String {
    format!("{{ev:{event}:sec:{section}}}")
}

/// Keys of one section's seat state.
pub fn section(event: &EventId, section: &SectionId) -> SectionKeys {
    let tag = section_tag(event, section);
    SectionKeys {
        inv: format!("seat:{tag}:inv"),
        held: format!("seat:{tag}:held"),
        holder: format!("seat:{tag}:holder"),
        sold: format!("seat:{tag}:sold"),
        blocked: format!("seat:{tag}:blocked"),
        ver: format!("seat:{tag}:ver"),
        audit: format!("seat:{tag}:audit"),
        wl: format!("seat:{tag}:wl"),
        reserved: format!("seat:{tag}:reserved"),
    }
}

/// HASH seat id -> section id of an event.
pub fn layout(event: &EventId) -> String {
    format!("seat:{{ev:{event}}}:layout")
}

/// SET of an event's section ids.
pub fn sections(event: &EventId) -> String {
    format!("seat:{{ev:{event}}}:sections")
}

/// The hash tag of a buyer's holds for one event ([`HoldId::tag_of`]).
fn buyer_tag(tag: u16) -> String {
    format!("{{h:{tag:04x}}}")
}

/// HASH: a hold's record (see `lua/hold_begin.lua`).
pub fn hold(hold: &HoldId) -> String {
    format!("seat:{}:hold:{hold}", buyer_tag(hold.tag()))
}

/// The live holds (pending, held, pinned) counted against their buyer's ticket limit, of every
/// buyer whose holds carry `hold`'s tag: (ZSET hold id -> the hold's expiry + 5 s, unix ms;
/// HASH hold id -> "seats event user"). Named from the hold id alone, so the script that moves a
/// hold (a cancel, a pin, an extension, a sale: `lua/hold_transition.lua`) keeps its count in the
/// same step, though a cancel names only the hold.
pub fn counted(hold: &HoldId) -> [String; 2] {
    let tag = buyer_tag(hold.tag());
    [
        format!("seat:{tag}:quota:live"),
        format!("seat:{tag}:quota:live:seats"),
    ]
}

/// HASH hold id -> seats: a buyer's bought seats for one event, which count against the limit
/// for good. Tagged like the buyer's hold records ([`HoldId::tag_of`]), so `lua/hold_begin.lua`
/// sums it in the script that opens a hold.
pub fn bought(event: &EventId, user: &crate::ids::UserId) -> String {
    let tag = buyer_tag(HoldId::tag_of(event, user));
    format!("seat:{tag}:quota:{event}:{user}:bought")
}

/// The keys of an event's waiting room (see `lua/queue.lua` for their types).
#[derive(Debug, Clone)]
pub struct QueueKeys {
    /// HASH: mode, rate, burst, window_ms, opens_ms, seed.
    pub cfg: String,
    /// HASH user -> ticket.
    pub users: String,
    /// HASH ticket -> position.
    pub tickets: String,
    /// LIST: the lottery pre-queue, in joining order.
    pub pre: String,
    /// HASH: joined, admitted, tokens, last_ms, drawn.
    pub state: String,
    /// HASH ticket -> first seen admitted (ms).
    pub admitted: String,
    /// HASH ticket -> user.
    pub owners: String,
    /// ZSET: admissions and finished checkouts by second, for the buyers shopping now.
    pub marks: String,
}

/// Keys of an event's waiting room: one tag per event, so every queue operation is one script
/// on one slot.
pub fn queue(event: &EventId) -> QueueKeys {
    let tag = format!("{{q:{event}}}");
    QueueKeys {
        cfg: format!("seat:{tag}:cfg"),
        users: format!("seat:{tag}:users"),
        tickets: format!("seat:{tag}:tickets"),
        pre: format!("seat:{tag}:pre"),
        state: format!("seat:{tag}:state"),
        admitted: format!("seat:{tag}:admitted"),
        owners: format!("seat:{tag}:owners"),
        marks: format!("seat:{tag}:marks"),
    }
}

/// STREAM of committed sales waiting for the durable writer (reconciler), read by the consumer
/// group [`COMMIT_GROUP`]. One stream on one slot: a few thousand commits a second at most
/// (seats are scarce), far below what one node streams. `name` keeps deployments sharing a
/// cluster apart.
pub fn commit_queue(name: &str) -> String {
    format!("seat:{{commits:{name}}}:queue")
}

/// The durable writers' consumer group on [`commit_queue`].
pub const COMMIT_GROUP: &str = "writers";

/// Pub/sub channel on which the writer announces what became of each commit.
pub const ORDER_DONE_CHANNEL: &str = "order:done";

/// Prefix of the channels announcing seat changes.
pub const SEAT_UPDATE_PREFIX: &str = "seat:update:";
/// Prefix of the channels announcing catalog changes of an event.
pub const EVENT_UPDATE_PREFIX: &str = "event:update:";

/// Pub/sub channel announcing that a section's availability changed (design document §9).
pub fn seat_update_channel(event: &EventId, section: &SectionId) -> String {
    format!("{SEAT_UPDATE_PREFIX}{event}:{section}")
}

/// Pub/sub channel announcing that an event's status or prices changed.
pub fn event_update_channel(event: &EventId) -> String {
    format!("{EVENT_UPDATE_PREFIX}{event}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_keys_share_one_tag_and_events_differ() {
        let e = EventId::parse("e1").expect("valid");
        let a = SectionId::parse("a").expect("valid");
        let k = section(&e, &a);
        for key in [
            &k.inv, &k.held, &k.holder, &k.sold, &k.blocked, &k.ver, &k.audit,
        ] {
            assert!(key.contains("{ev:e1:sec:a}"), "{key}");
        }
        assert_eq!(layout(&e), "seat:{ev:e1}:layout");
    }
}
