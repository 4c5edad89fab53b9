//! The Rust side of the Lua protocol: one enum per script for the return codes its header lists
//! (a test reads every header and checks they agree), and enums for the operations and modes
//! the scripts take as strings. [`crate::scripts::Script::call`] runs a script and gives back its
//! code as the script's enum with the rest of the reply; a code the enum does not know is a
//! protocol error, so no caller matches on numbers or has an "unknown code" arm.

/// A script's return codes (the first item of its reply).
pub trait Codes: Sized + Copy + std::fmt::Debug + 'static {
    /// The script's file name under `lua/`.
    const SCRIPT: &'static str;
    /// Every code, in the enum's order.
    const CODES: &'static [i64];
    /// The variant of a code, `None` for a code the header does not list.
    fn from_code(code: i64) -> Option<Self>;
}

macro_rules! codes {
    ($(
        $(#[$meta:meta])*
        $name:ident for $file:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),+ $(,)?
        }
    )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $name {
                $( $(#[$vmeta])* $variant ),+
            }

            impl Codes for $name {
                const SCRIPT: &'static str = $file;
                const CODES: &'static [i64] = &[$($code),+];
                fn from_code(code: i64) -> Option<Self> {
                    match code {
                        $( $code => Some(Self::$variant), )+
                        _ => None,
                    }
                }
            }
        )+

        /// Every script's codes, by file name (for the header test).
        pub fn all_codes() -> Vec<(&'static str, &'static [i64])> {
            vec![$( ($file, <$name as Codes>::CODES) ),+]
        }
    };
}

codes! {
    /// `open_layout.lua`.
    OpenLayoutCode for "open_layout.lua" {
        /// Recorded; the number of new seats follows.
        Recorded = 0,
        /// Seats recorded under another section follow; nothing written.
        OtherSection = -1,
    }
    /// `open_section.lua`.
    OpenSectionCode for "open_section.lua" {
        /// Opened; added, capacity and marked follow.
        Opened = 0,
    }
    /// `hold.lua`.
    HoldCode for "hold.lua" {
        /// Every seat is held; newly held and version follow.
        Held = 0,
        /// Pairs of (seat, why) follow; nothing written.
        Unavailable = -1,
        /// Seats not in the section follow; nothing written.
        UnknownSeats = -2,
        /// The expiry is not in the future; nothing written.
        ExpiryPast = -3,
        /// The section has no inventory; nothing written.
        NoInventory = -4,
        /// Past the attempt's deadline, or not confirmed; nothing written.
        NotNow = -5,
    }
    /// `hold_batch.lua`: each request's reply follows, in `hold.lua`'s codes.
    HoldBatchCode for "hold_batch.lua" {
        /// Every request answered.
        Answered = 0,
    }
    /// `sell_batch.lua`: each hold's reply follows, in `sell.lua`'s codes.
    SellBatchCode for "sell_batch.lua" {
        /// Every hold answered.
        Answered = 0,
    }
    /// `hold_area.lua`.
    HoldAreaCode for "hold_area.lua" {
        /// Held; newly held, version and the places follow.
        Held = 0,
        /// The expiry is not in the future; nothing written.
        ExpiryPast = -3,
        /// The shard has no inventory; nothing written.
        NoInventory = -4,
        /// Past the attempt's deadline; nothing written.
        NotNow = -5,
        /// Not enough free places in this shard; how many are free follows.
        NotEnough = -6,
    }
    /// `release.lua`.
    ReleaseCode for "release.lua" {
        /// Done; the number of seats freed follows.
        Released = 0,
    }
    /// `extend.lua`.
    ExtendCode for "extend.lua" {
        /// Every seat's expiry moved.
        Moved = 0,
        /// Seats no longer the hold's follow; nothing written.
        Lost = -1,
    }
    /// `sell.lua`.
    SellCode for "sell.lua" {
        /// Sold; newly sold and version follow.
        Sold = 0,
        /// Seats sold to another hold follow; nothing written.
        SoldToAnother = -1,
        /// Seats not in the section follow; nothing written.
        UnknownSeats = -2,
        /// Strict: seats not live-held by the hold follow; nothing written.
        NotHeld = -3,
    }
    /// `block.lua`.
    BlockCode for "block.lua" {
        /// Every seat is blocked; the newly blocked follow.
        Blocked = 0,
        /// Pairs of (seat, why) follow; nothing written.
        Unavailable = -1,
        /// Seats not in the section follow; nothing written.
        UnknownSeats = -2,
    }
    /// `unblock.lua`.
    UnblockCode for "unblock.lua" {
        /// Done; the freed seats follow.
        Unblocked = 0,
    }
    /// `snapshot.lua`.
    SnapshotCode for "snapshot.lua" {
        /// Counts (and lists with detail) follow.
        Counts = 0,
        /// The section has no inventory.
        NoInventory = -1,
    }
    /// `hold_begin.lua`.
    BeginCode for "hold_begin.lua" {
        /// A new attempt: expires, cap and now follow.
        Started = 0,
        /// A finished request replayed: its hold follows; nothing written.
        Replayed = 1,
        /// A direct hold replayed inside its attempt window: confirm with the section.
        Confirm = 2,
        /// A direct hold replayed after its window: taken over; take the section again.
        TakenOver = 3,
        /// The id was used for another request.
        Conflict = -1,
        /// Another attempt is in flight; retry after the ms that follow.
        InProgress = -2,
        /// Over the buyer's ticket limit; the seats counted follow.
        OverLimit = -3,
    }
    /// `hold_settle.lua`.
    SettleCode for "hold_settle.lua" {
        /// Done.
        Done = 0,
        /// The record is not this attempt's; nothing written.
        NotMine = -1,
    }
    /// `hold_transition.lua`.
    TransitionCode for "hold_transition.lua" {
        /// Done (for read: found).
        Done = 0,
        /// Already in the target state: nothing written.
        Replay = 1,
        /// No such hold.
        NotFound = -1,
        /// Another user's hold.
        NotOwner = -2,
        /// Not allowed from the hold's state.
        WrongState = -3,
        /// The hold has expired.
        Expired = -4,
        /// Extend: past the cap.
        PastCap = -5,
    }
    /// `sweep.lua`.
    SweepCode for "sweep.lua" {
        /// Done; swept and version follow.
        Swept = 0,
    }
    /// `ack_commits.lua`.
    AckCode for "ack_commits.lua" {
        /// Done; how many were still pending follows.
        Acked = 0,
    }
    /// `unsell.lua`.
    UnsellCode for "unsell.lua" {
        /// Done; the number freed follows.
        Unsold = 0,
    }
    /// `queue.lua`.
    QueueCode for "queue.lua" {
        /// Waiting.
        Waiting = 0,
        /// In the lottery pre-queue, not drawn yet.
        PreQueue = 1,
        /// Admitted.
        Admitted = 2,
        /// Done.
        Done = 3,
        /// The event has no waiting room.
        NoQueue = -1,
        /// Unknown ticket.
        UnknownTicket = -2,
        /// Another buyer's ticket.
        NotOwner = -3,
    }
    /// `quota.lua`.
    QuotaCode for "quota.lua" {
        /// Done.
        Done = 0,
    }
    /// `waitlist.lua`.
    WaitlistCode for "waitlist.lua" {
        /// Done; the seats given back to the open sale and the version follow.
        Set = 0,
    }
}

macro_rules! arg_enum {
    ($(
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $name {
                $( $(#[$vmeta])* $variant ),+
            }

            impl $name {
                /// The argument as the script reads it.
                pub fn as_arg(self) -> &'static str {
                    match self {
                        $( Self::$variant => $text, )+
                    }
                }
            }
        )+
    };
}

arg_enum! {
    /// `hold_transition.lua` ARGV[1].
    TransitionOp {
        /// Read the hold.
        Read => "read",
        /// Release it.
        Release => "release",
        /// Move its expiry.
        Extend => "extend",
        /// Pin it for a payment.
        Pin => "pin",
        /// Unpin it (payment declined).
        Unpin => "unpin",
        /// Mark it sold.
        Sold => "sold",
    }
    /// `hold_settle.lua` ARGV[1].
    SettleOutcome {
        /// Every section is held.
        Held => "held",
        /// A section refused: hold other attempts off while the sections are released.
        Aborting => "aborting",
        /// Forget the attempt.
        Abort => "abort",
        /// A replay confirmed a direct hold: it owns the attempt now.
        Adopt => "adopt",
    }
    /// `hold.lua` ARGV[4].
    SectionMode {
        /// Hold the seats.
        Take => "take",
        /// Only check that they are the hold's already; write nothing.
        Confirm => "confirm",
        /// A waiting-list offer: take only seats set aside for the list.
        Offer => "offer",
    }
    /// `sell.lua` ARGV[2].
    SellMode {
        /// Every seat must be live-held by the hold.
        Strict => "strict",
        /// The writer's repair: Postgres has the sale; take seats not sold to another.
        Repair => "repair",
    }
    /// `extend.lua` ARGV[3]: what the audit trail records.
    ExtendAction {
        /// A pin taken.
        Pinned => "pinned",
        /// A pin given back.
        Unpinned => "unpinned",
        /// An expiry moved.
        Extended => "extended",
        /// Nothing moved: the seats are confirmed held until at least the expiry given.
        Check => "check",
    }
    /// `queue.lua` ARGV[1].
    QueueOp {
        /// Join the room.
        Join => "join",
        /// Poll a ticket.
        Poll => "poll",
        /// A checkout finished.
        Done => "done",
        /// Is the buyer admitted.
        Check => "check",
        /// The room's status.
        Status => "status",
    }
    /// `quota.lua` ARGV[1].
    QuotaOp {
        /// Counted for good.
        Sold => "sold",
        /// Given back.
        Release => "release",
    }
    /// `snapshot.lua` ARGV[1].
    SnapshotDetail {
        /// Counts only.
        Counts => "0",
        /// Counts and the held, sold and blocked seats.
        Lists => "1",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The codes a script's header lists in its `Returns` block: `{N` and `code N` entries.
    fn header_codes(source: &str) -> BTreeSet<i64> {
        let header = source.split("]]").next().unwrap_or_default();
        let mut codes = BTreeSet::new();
        let mut in_returns = false;
        for line in header.lines() {
            if line.trim_start().starts_with("Returns") {
                in_returns = true;
            } else if in_returns && line.trim().is_empty() {
                break;
            }
            if !in_returns {
                continue;
            }
            let mut rest = line;
            while let Some(at) = rest.find(['{', 'c']) {
                let tail = &rest[at..];
                let number = if let Some(t) = tail.strip_prefix('{') {
                    Some(t)
                } else {
                    tail.strip_prefix("code").map(str::trim_start)
                };
                if let Some(t) = number {
                    let digits: String = t
                        .chars()
                        .enumerate()
                        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
                        .map(|(_, c)| c)
                        .collect();
                    if let Ok(n) = digits.parse() {
                        codes.insert(n);
                    }
                }
                rest = &tail[1..];
            }
        }
        codes
    }

    #[test]
    fn every_enum_lists_the_codes_its_scripts_header_lists() {
        let scripts = crate::scripts::Scripts::load(&Default::default());
        let enums = all_codes();
        for script in scripts.all() {
            let (_, codes) = enums
                .iter()
                .find(|(name, _)| *name == script.name)
                .unwrap_or_else(|| panic!("{} has no codes enum", script.name));
            let ours: BTreeSet<i64> = codes.iter().copied().collect();
            let header = header_codes(script.source());
            assert!(
                !header.is_empty(),
                "{}: no codes in its header",
                script.name
            );
            assert_eq!(ours, header, "{}: enum against header", script.name);
        }
        assert_eq!(
            enums.len(),
            scripts.all().len(),
            "an enum for a script that is gone"
        );
    }

    #[test]
    fn the_header_reader_reads_both_styles() {
        let src = "--[[\n  x.lua\n  Returns  {0, a}  done\n           {-2, b} no\n           code -5  past\n\n  {7} not codes\n]]";
        assert_eq!(header_codes(src), BTreeSet::from([0, -2, -5]));
    }
}
