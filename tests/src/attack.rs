//! The differencing attack on published counts: what an analyst holding the published tables and
//! knowing the disclosure rule can work out about each suppressed cell.
//!
//! Every published cell is an unknown true count within an interval: an exact count is itself; a
//! count rounded to the nearest `round_to` lies within half a step of its printed value (and
//! above `suppress_max`, or it would have been suppressed); a suppressed cell is at least 1
//! where zeros are printed (at least 0 where the rule may hide one) and otherwise unbounded (a secondary suppression can be any size). Each
//! published total gives an equation total = Σ members. The attack narrows every interval through
//! the equations until nothing changes (lower bound ≥ total's lower − the others' upper, upper
//! bound ≤ total's upper − the others' lower; a total within the sum of its members' bounds),
//! keeping bounds whole numbers. A suppressed cell whose interval closes to one value is
//! recovered. This bound propagation is exact for one equation and finds every chain of
//! differences (a cell recovered from a total found from another total); on the tables here, sums
//! over a tree of areas, its intervals are what linear programming gives on a single equation and
//! a lower bound of what it can give where equations share cells.

/// What a table shows of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown {
    Exact(f64),
    Rounded(f64),
    Suppressed,
    /// Not published at all, known only to be 0 or more (e.g. the records a parent level holds
    /// that none of its children do).
    Unpublished,
}

/// The attacker's knowledge of the rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub suppress_max: f64,
    pub round_to: f64,
    /// The least a suppressed cell can be: 1 where zeros are always printed, 0 where the rule
    /// may hide a zero (the disclosure plugin does when a group's every non-zero cell is hidden
    /// and its total is printed in another table).
    pub hidden_at_least: f64,
}

/// Σ `members` = `total` (cell indices).
#[derive(Debug, Clone)]
pub struct Equation {
    pub total: usize,
    pub members: Vec<usize>,
}

/// The interval [lower, upper] the attacker knows a cell's true count to lie in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    pub fn of(shown: Shown, rule: Rule) -> Interval {
        match shown {
            Shown::Exact(v) => Interval { lower: v, upper: v },
            Shown::Rounded(0.0) => Interval {
                lower: 0.0,
                upper: 0.0,
            },
            Shown::Rounded(v) => {
                let half = rule.round_to / 2.0;
                // Halves round away from zero, so v − half rounds up to v: it is possible.
                Interval {
                    lower: (v - half).ceil().max(rule.suppress_max + 1.0),
                    upper: (v + half - 1e-9).floor(),
                }
            }
            Shown::Suppressed => Interval {
                lower: rule.hidden_at_least,
                upper: f64::INFINITY,
            },
            Shown::Unpublished => Interval {
                lower: 0.0,
                upper: f64::INFINITY,
            },
        }
    }

    pub fn is_point(&self) -> bool {
        self.lower == self.upper
    }
}

/// Narrows `intervals` through `equations` to a fixed point (at most `cells × 4` sweeps).
/// Returns `Err` naming an equation the published figures cannot satisfy.
pub fn narrow(intervals: &mut [Interval], equations: &[Equation]) -> Result<(), String> {
    for _ in 0..(intervals.len() * 4 + 4) {
        let mut changed = false;
        for (e, eq) in equations.iter().enumerate() {
            let sum_lower: f64 = eq.members.iter().map(|&m| intervals[m].lower).sum();
            let sum_upper: f64 = eq.members.iter().map(|&m| intervals[m].upper).sum();
            let total = intervals[eq.total];
            let tightened = Interval {
                lower: total.lower.max(sum_lower),
                upper: total.upper.min(sum_upper),
            };
            changed |= update(&mut intervals[eq.total], tightened);
            let total = intervals[eq.total];
            // The members' finite upper bounds summed and how many are infinite, so that each
            // member's others' upper sum is one subtraction (equations of thousands of members).
            // Bounds narrowed earlier in this loop are taken at their older, wider values (as
            // `sum_lower` always was): still true bounds, and the sweeps reach the same fixed point.
            let finite_upper: f64 = eq
                .members
                .iter()
                .map(|&m| intervals[m].upper)
                .filter(|u| u.is_finite())
                .sum();
            let infinite = eq
                .members
                .iter()
                .filter(|&&m| intervals[m].upper.is_infinite())
                .count();
            for &m in &eq.members {
                let own = intervals[m];
                let others_lower = sum_lower - own.lower;
                // `own` is not narrowed before its turn, so it is as summed above.
                let others_upper = match (own.upper.is_finite(), infinite) {
                    (true, 0) => finite_upper - own.upper,
                    (false, 1) => finite_upper,
                    _ => f64::INFINITY,
                };
                let tightened = Interval {
                    lower: own.lower.max((total.lower - others_upper).ceil()),
                    upper: own.upper.min((total.upper - others_lower).floor()),
                };
                changed |= update(&mut intervals[m], tightened);
            }
            // Only this equation's cells changed (the others were checked when they did).
            if std::iter::once(&eq.total)
                .chain(&eq.members)
                .any(|&c| intervals[c].lower > intervals[c].upper)
            {
                return Err(format!("equation {e} has no solution"));
            }
        }
        if !changed {
            return Ok(());
        }
    }
    Ok(())
}

fn update(slot: &mut Interval, new: Interval) -> bool {
    let new = Interval {
        lower: new.lower.max(slot.lower),
        upper: new.upper.min(slot.upper),
    };
    if new != *slot {
        *slot = new;
        true
    } else {
        false
    }
}

/// The suppressed cells (indices) whose true count the attack recovers.
pub fn recovered(
    shown: &[Shown],
    rule: Rule,
    equations: &[Equation],
) -> Result<Vec<usize>, String> {
    let mut intervals: Vec<Interval> = shown.iter().map(|&s| Interval::of(s, rule)).collect();
    narrow(&mut intervals, equations)?;
    Ok(shown
        .iter()
        .zip(&intervals)
        .enumerate()
        .filter(|(_, (s, i))| **s == Shown::Suppressed && i.is_point())
        .map(|(c, _)| c)
        .collect())
}
