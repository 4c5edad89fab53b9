//! Where the reconciler's passes resume: which recent sales a pass tells Redis again.

use std::time::Duration;

/// Which recent sales a pass tells Redis again. The durable writer tells Redis of each sale
/// right after writing it, and a sale it could not tell stays in the commit queue to be done
/// again; what else can lose one is Redis losing acknowledged writes, which only a failover or a
/// restart does, and either changes the [`DataEpoch`](coordinator::epoch::DataEpoch). So a pass
/// tells again only when the epoch is not the one its last good pass started with (or cannot be
/// read): every sale from a minute before that pass's start, which covers the writes a replica
/// had not received yet, seconds before the failover. A reconciler's first pass looks ten
/// minutes back, not knowing what happened before it. Looking back on every pass would cost two
/// or three Redis calls per sale per pass, pass after pass. A loss of whole keys is caught by the
/// inventory pass, which repairs the event's every sale.
#[derive(Debug, Default)]
pub struct RepairCursor {
    last_ok: Option<(std::time::Instant, Option<coordinator::epoch::DataEpoch>)>,
}

/// Why a pass tells sales again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retell {
    /// The reconciler's first pass.
    FirstPass,
    /// The primaries' replication ids changed since the last good pass (failover, restart).
    EpochChanged,
    /// The epoch could not be read, now or at the last good pass.
    EpochUnknown,
}

impl Retell {
    pub(crate) const ALL: [Retell; 3] = [Self::FirstPass, Self::EpochChanged, Self::EpochUnknown];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::FirstPass => "first_pass",
            Self::EpochChanged => "epoch_changed",
            Self::EpochUnknown => "epoch_unknown",
        }
    }
}

impl RepairCursor {
    const FIRST: Duration = Duration::from_secs(600);
    const MARGIN: Duration = Duration::from_secs(60);

    /// The window of the pass starting now with Redis at `epoch` (`Some(None)`: every live sale
    /// of the events on sale, whatever its age), and why; `None`: nothing Redis acknowledged was
    /// lost since the last good pass.
    ///
    /// A changed epoch means a primary lost data or restarted: whatever it held is gone, sales
    /// of any age included (the buyers' ticket counts live on the buyers' slots, which the
    /// sections' count check does not see), so every sale is told again, once. An unknown epoch
    /// (a primary not answering) tells the recent window, pass after pass, until it is known.
    pub fn window(
        &self,
        epoch: Option<&coordinator::epoch::DataEpoch>,
    ) -> Option<(Option<Duration>, Retell)> {
        let Some((start, then)) = &self.last_ok else {
            return Some((Some(Self::FIRST), Retell::FirstPass));
        };
        let back = start.elapsed() + Self::MARGIN;
        match (epoch, then) {
            (Some(now), Some(then)) if now == then => None,
            (Some(_), Some(_)) => Some((None, Retell::EpochChanged)),
            _ => Some((Some(back), Retell::EpochUnknown)),
        }
    }

    /// A pass that started at `start` with Redis at `epoch` told Redis what it had to.
    pub fn passed(
        &mut self,
        start: std::time::Instant,
        epoch: Option<coordinator::epoch::DataEpoch>,
    ) {
        self.last_ok = Some((start, epoch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sales_are_told_again_only_when_redis_may_have_lost_writes() {
        use coordinator::epoch::DataEpoch;
        let epoch = |id: &str| DataEpoch::from(vec![format!("127.0.0.1:7000={id}")]);
        let mut cursor = RepairCursor::default();
        assert_eq!(
            cursor.window(Some(&epoch("a"))),
            Some((Some(Duration::from_secs(600)), Retell::FirstPass)),
            "first pass"
        );
        let started = std::time::Instant::now() - Duration::from_secs(30);
        cursor.passed(started, Some(epoch("a")));
        assert_eq!(cursor.window(Some(&epoch("a"))), None, "same epoch");
        assert_eq!(
            cursor.window(Some(&epoch("b"))),
            Some((None, Retell::EpochChanged)),
            "a changed epoch tells every sale again, whatever its age"
        );
        let (w, reason) = cursor.window(None).expect("a window");
        assert_eq!(reason, Retell::EpochUnknown);
        let w = w.expect("a window, not everything");
        assert!(
            (Duration::from_secs(90)..Duration::from_secs(95)).contains(&w),
            "30 s since the last good pass, plus the margin: {w:?}"
        );
        cursor.passed(started, None);
        assert_eq!(
            cursor.window(Some(&epoch("a"))).map(|(_, r)| r),
            Some(Retell::EpochUnknown),
            "the last good pass did not know its epoch"
        );
    }
}
