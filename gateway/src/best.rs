//! Best-available seating: the server picks seats for `quantity` people.
//!
//! "Best" is the seat map's own order: sections as listed (the venue lists its best first), rows
//! front to back, and within a row the seats closest to its centre. The group sits together in
//! one row when any row can take it; a window that would leave a single free seat stranded
//! beside it (an orphan nobody can buy as a pair) is avoided when another window exists. When no
//! row can take the whole group, the best free seats are taken one by one (front rows first,
//! nearest each row's centre) and the answer says the group was split.
//!
//! Under a rush every buyer's first pick is the same window; [`Wanted::skip`] lets a retry pick
//! among the next-best windows at random, so each round of retries seats many buyers, not one.

use std::collections::HashSet;

use coordinator::{SeatId, SectionId};

use crate::cache::{RowLayout, VenueLayout};

/// What the buyer asks for.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// Seats.
    pub quantity: usize,
    /// Only this section.
    pub section: Option<&'a SectionId>,
    /// Only this category.
    pub category: Option<&'a str>,
    /// Pass over this many acceptable windows (in rank order) before picking one. 0 is the best
    /// pick; a retry after losing a race uses a random skip, so buyers racing for the same best
    /// seats spread over the next-best instead of all colliding again on one window.
    pub skip: usize,
}

/// The pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Adjacent seats in one row.
    Together(Vec<SeatId>),
    /// No row had room: the best seats, not all together.
    Split(Vec<SeatId>),
    /// Fewer free seats than wanted match the filters.
    NotEnough {
        /// Free matching seats.
        free: usize,
    },
}

/// Picks seats; `taken` are the seats not free (held, sold, blocked).
pub fn choose(layout: &VenueLayout, taken: &HashSet<SeatId>, wanted: &Wanted<'_>) -> Choice {
    choose_with(layout, &|s| taken.contains(s), wanted)
}

/// [`choose`], with the seats not free told by `is_taken` (the seat map's, and those taken since
/// it was read).
pub fn choose_with(
    layout: &VenueLayout,
    is_taken: &dyn Fn(&SeatId) -> bool,
    wanted: &Wanted<'_>,
) -> Choice {
    let eligible = |category: &str| wanted.category.is_none_or(|c| c == category);
    let is_free = |id: &SeatId, category: &str| !is_taken(id) && eligible(category);
    let mut rows: Vec<&RowLayout> = layout
        .rows
        .iter()
        .filter(|r| wanted.section.is_none_or(|s| s == &r.section))
        // A general-admission area's places are held by quantity on the area, never picked.
        .filter(|r| coordinator::area::area_of(&r.section).is_none())
        .collect();
    rows.sort_by_key(|r| (r.section_rank, r.row_rank));
    let q = wanted.quantity;
    for allow_orphans in [false, true] {
        if let Some((r, first)) = best_window(&rows, &is_free, wanted, allow_orphans) {
            return Choice::Together(
                rows[r].seats[first..first + q]
                    .iter()
                    .map(|(_, id, _)| id.clone())
                    .collect(),
            );
        }
    }
    best_singles(&rows, &is_free, wanted)
}

/// Runs of consecutive free seats in a row, as index ranges into `row.seats`.
fn runs_of(row: &RowLayout, is_free: &dyn Fn(&SeatId, &str) -> bool) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    for (i, (number, id, category)) in row.seats.iter().enumerate() {
        let free = is_free(id, category);
        let continues = i > 0 && row.seats[i - 1].0.checked_add(1) == Some(*number);
        match (free, start) {
            (true, Some(_)) if continues => {}
            (true, Some(s)) => {
                runs.push((s, i));
                start = Some(i);
            }
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            (false, None) => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, row.seats.len()));
    }
    runs
}

/// The `skip`-th acceptable window of `quantity` seats together (row index, first seat index):
/// windows in rank order (rows in order, each row's nearest its centre first), gathered until
/// the `skip`-th; fewer than that wrap around. Without `allow_orphans`, a window that would
/// leave one lone free seat beside it is not acceptable.
fn best_window(
    rows: &[&RowLayout],
    is_free: &dyn Fn(&SeatId, &str) -> bool,
    wanted: &Wanted<'_>,
    allow_orphans: bool,
) -> Option<(usize, usize)> {
    let q = wanted.quantity;
    let mut ranked: Vec<(usize, usize)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let centre = (row.seats.len() as f64 - 1.0) / 2.0;
        let mut windows: Vec<(f64, usize)> = Vec::new();
        for (start, end) in runs_of(row, is_free) {
            let len = end - start;
            if len < q {
                continue;
            }
            for offset in 0..=len - q {
                let (left, right) = (offset, len - q - offset);
                if !allow_orphans && (left == 1 || right == 1) {
                    continue;
                }
                let first = start + offset;
                let distance = ((first as f64 + (q as f64 - 1.0) / 2.0) - centre).abs();
                windows.push((distance, first));
            }
        }
        // Stable: among equally central windows the leftmost comes first. Only windows that
        // share no seat with a better one count as alternatives: buyers skipped to overlapping
        // windows would collide again.
        windows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut kept: Vec<usize> = Vec::new();
        for (_, first) in windows {
            if kept.iter().all(|k| first + q <= *k || *k + q <= first) {
                kept.push(first);
                ranked.push((r, first));
            }
        }
        if ranked.len() > wanted.skip {
            return Some(ranked[wanted.skip]);
        }
    }
    (!ranked.is_empty()).then(|| ranked[wanted.skip % ranked.len()])
}

/// No row fits the group: the best free seats one by one, front rows first and, within a row,
/// nearest its centre.
fn best_singles(
    rows: &[&RowLayout],
    is_free: &dyn Fn(&SeatId, &str) -> bool,
    wanted: &Wanted<'_>,
) -> Choice {
    let q = wanted.quantity;
    let mut candidates: Vec<(usize, usize, u64, &SeatId)> = Vec::new();
    for row in rows {
        let centre = (row.seats.len() as f64 - 1.0) / 2.0;
        for (i, (_, id, category)) in row.seats.iter().enumerate() {
            if is_free(id, category) {
                let distance = ((i as f64 - centre).abs() * 2.0) as u64;
                candidates.push((row.section_rank, row.row_rank, distance, id));
            }
        }
    }
    let free = candidates.len();
    candidates.sort();
    // A retry starts further down the list, so racing buyers do not all take the same seats.
    let start = if free >= q {
        wanted.skip % (free - q + 1)
    } else {
        0
    };
    let picked: Vec<SeatId> = candidates
        .into_iter()
        .skip(start)
        .take(q)
        .map(|(_, _, _, id)| id.clone())
        .collect();
    if picked.len() < q {
        Choice::NotEnough { free }
    } else {
        Choice::Split(picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_picks_the_next_best_windows_and_wraps_when_few_are_left() {
        let map = catalog::seatmap::demo_theatre();
        let layout = crate::cache::VenueLayout::new(&map).expect("the demo theatre is valid");
        let pick = |skip: usize, taken: &HashSet<SeatId>| {
            choose(
                &layout,
                taken,
                &Wanted {
                    quantity: 2,
                    section: None,
                    category: None,
                    skip,
                },
            )
        };
        let none = HashSet::new();
        let best = pick(0, &none);
        let picks: HashSet<_> = (0..50).map(|k| format!("{:?}", pick(k, &none))).collect();
        assert_eq!(picks.len(), 50, "50 skips, 50 different windows");
        assert!(matches!(best, Choice::Together(_)));
        // All but one pair taken: every skip lands on that pair, together.
        let all: Vec<SeatId> = map
            .seats()
            .map(|(_, _, s)| SeatId::parse(&s.id).expect("valid seat id"))
            .collect();
        let keep = [all[0].clone(), all[1].clone()];
        let taken: HashSet<SeatId> = all.iter().filter(|s| !keep.contains(s)).cloned().collect();
        for skip in [0, 7, 511] {
            assert_eq!(pick(skip, &taken), Choice::Together(keep.to_vec()));
        }
    }
    use catalog::seatmap::theatre;

    fn layout(per_row: usize, rows: usize) -> VenueLayout {
        VenueLayout::new(&theatre(
            "v",
            "V",
            &[("a", "A", "std", rows), ("b", "B", "cheap", rows)],
            per_row,
        ))
        .expect("valid")
    }

    fn ids(list: &[&str]) -> Vec<SeatId> {
        list.iter()
            .map(|s| SeatId::parse(s).expect("valid"))
            .collect()
    }

    fn taken(list: &[&str]) -> HashSet<SeatId> {
        ids(list).into_iter().collect()
    }

    fn want(q: usize) -> Wanted<'static> {
        Wanted {
            quantity: q,
            section: None,
            category: None,
            skip: 0,
        }
    }

    #[test]
    fn centre_of_the_front_row_first() {
        let l = layout(10, 2);
        assert_eq!(
            choose(&l, &taken(&[]), &want(2)),
            Choice::Together(ids(&["a-A-5", "a-A-6"]))
        );
    }

    #[test]
    fn never_a_taken_seat_and_no_orphan_when_avoidable() {
        let l = layout(6, 2);
        // Row A: seats 1..6, 2 and 5 taken -> free runs [1], [3,4], [6]: a pair fits only at 3-4.
        assert_eq!(
            choose(&l, &taken(&["a-A-2", "a-A-5"]), &want(2)),
            Choice::Together(ids(&["a-A-3", "a-A-4"]))
        );
        // Row A: 1 taken -> run 2..6 (5 seats). A pair at 2-3 leaves 4..6 (fine), at 3-4 leaves
        // an orphan 2; at 4-5 orphan 6. The picker must not strand a single seat.
        let got = choose(&l, &taken(&["a-A-1"]), &want(2));
        let Choice::Together(seats) = got else {
            panic!("{got:?}")
        };
        assert!(
            seats == ids(&["a-A-2", "a-A-3"]) || seats == ids(&["a-A-5", "a-A-6"]),
            "{seats:?}"
        );
    }

    #[test]
    fn accepts_an_orphan_rather_than_failing_and_filters_apply() {
        let l = layout(3, 1);
        // Row a-A has 3 seats: a pair always leaves one orphan; allowed as a last resort.
        assert!(matches!(
            choose(&l, &taken(&[]), &want(2)),
            Choice::Together(_)
        ));
        let section = SectionId::parse("b").expect("valid");
        let in_b = Wanted {
            quantity: 2,
            section: Some(&section),
            category: None,
            skip: 0,
        };
        let Choice::Together(seats) = choose(&l, &taken(&[]), &in_b) else {
            panic!()
        };
        assert!(seats.iter().all(|s| s.as_str().starts_with("b-")));
        let cheap = Wanted {
            quantity: 1,
            section: None,
            category: Some("cheap"),
            skip: 0,
        };
        let Choice::Together(seats) = choose(&l, &taken(&[]), &cheap) else {
            panic!()
        };
        assert!(seats[0].as_str().starts_with("b-"));
    }

    #[test]
    fn splits_when_no_row_fits_and_counts_when_not_enough() {
        let l = layout(4, 1);
        // Every row has at most 2 free adjacent seats.
        let t = taken(&["a-A-2", "b-A-2"]);
        match choose(&l, &t, &want(3)) {
            Choice::Split(seats) => {
                assert_eq!(seats.len(), 3);
                assert!(seats.iter().all(|s| !t.contains(s)));
                // The better section's three free seats, the centre one first.
                assert_eq!(seats, ids(&["a-A-3", "a-A-1", "a-A-4"]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(choose(&l, &t, &want(7)), Choice::NotEnough { free: 6 });
    }
}
