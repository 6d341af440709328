//! The conditional maximum-likelihood odds ratio of a 2×2 table and its exact (and mid-p exact)
//! limits, as R's `fisher.test` and `scipy.stats.contingency.odds_ratio(kind="conditional")` give
//! them.
//!
//! For the table `[[a, b], [c, d]]` (rows the comparison and base categories, columns tested and
//! not tested), given all four margins the count `a` follows Fisher's noncentral hypergeometric
//! distribution with odds ratio ψ:
//!
//! ```text
//! P(X = x; ψ) ∝ C(a + b, x) · C(c + d, a + c − x) · ψˣ,   max(0, a − d) ≤ x ≤ min(a + b, a + c)
//! ```
//!
//! The conditional maximum-likelihood estimate solves `E[X; ψ] = a`; the exact limits at level
//! 1 − α are the ψ with `P(X ≥ a; ψ) = α/2` (lower) and `P(X ≤ a; ψ) = α/2` (upper), and the
//! mid-p limits count half of `P(X = a)` in each tail instead (`P(X > a) + ½P(X = a) = α/2`,
//! Lancaster 1961). At the ends of the support the estimate and the limit on that side are 0 or
//! ∞, as in R.
//!
//! Tables of millions of persons: the distribution is log-concave, so every probability is
//! summed outward from the mode through the ratio of successive terms (`P(x + 1)/P(x)` =
//! `(n₁ − x)(m − x)ψ / ((x + 1)(n₂ − m + x + 1))`) until a term falls below 10⁻²⁰ of the mode's,
//! never through factorials; the roots are found by bisection on ln ψ, bracketed around Woolf's
//! estimate. The work per evaluation grows with the distribution's standard deviation (about
//! 20 standard deviations of terms), not with the table's size.
//!
//! References: Fisher R.A. (1935), *The logic of inductive inference*, JRSS 98; Cornfield J.
//! (1956), *A statistical problem arising from retrospective studies*; R's `fisher.test`
//! (`src/library/stats/R/fisher.test.R`); Lancaster H.O. (1961), *Significance tests in discrete
//! distributions*, JASA 56; Agresti A. (2013), *Categorical Data Analysis*, 3rd ed., §16.6.

/// Which tail convention the limits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalTails {
    /// `P(X ≥ a) = α/2` and `P(X ≤ a) = α/2` (R's `fisher.test`).
    Exact,
    /// `P(X > a) + ½P(X = a) = α/2` on each side.
    MidP,
}

/// The conditional maximum-likelihood odds ratio and its limits at one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConditionalOddsRatio {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Fisher's noncentral hypergeometric distribution of `a` given the margins of a 2×2 table.
struct Margins {
    /// Row totals (comparison, base) and the tested column's total.
    n1: f64,
    n2: f64,
    m: f64,
    lo: f64,
    hi: f64,
}

/// Sums of the distribution at one ψ, relative to its mode.
struct Sums {
    total: f64,
    /// P(X = a), P(X > a) and P(X < a) unnormalised, and Σ x·P(x).
    at: f64,
    above: f64,
    below: f64,
    first_moment: f64,
}

/// A term below this share of the mode's ends the walk: the tail beyond it is smaller still
/// (log-concavity) and below every f64 sum it could change.
const NEGLIGIBLE: f64 = 1e-20;

impl Margins {
    /// ln of P(x + 1)/P(x) at ψ = 1.
    fn log_step(&self, x: f64) -> f64 {
        ((self.n1 - x) * (self.m - x)).ln() - ((x + 1.0) * (self.n2 - self.m + x + 1.0)).ln()
    }

    /// The mode at ln ψ = `theta`: the smallest x whose step to x + 1 does not rise.
    fn mode(&self, theta: f64) -> f64 {
        let (mut lo, mut hi) = (self.lo, self.hi);
        // The step falls with x (log-concavity): find the first x with log_step + θ ≤ 0.
        while lo < hi {
            let mid = ((lo + hi) / 2.0).floor();
            if self.log_step(mid) + theta > 0.0 {
                lo = mid + 1.0;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn sums(&self, theta: f64, a: f64) -> Sums {
        let mode = self.mode(theta);
        let mut sums = Sums {
            total: 0.0,
            at: 0.0,
            above: 0.0,
            below: 0.0,
            first_moment: 0.0,
        };
        let mut add = |x: f64, term: f64| {
            sums.total += term;
            sums.first_moment += x * term;
            if x == a {
                sums.at += term;
            } else if x > a {
                sums.above += term;
            } else {
                sums.below += term;
            }
        };
        add(mode, 1.0);
        // Upward from the mode.
        let (mut x, mut log_term) = (mode, 0.0);
        while x < self.hi {
            log_term += self.log_step(x) + theta;
            x += 1.0;
            let term = log_term.exp();
            if term < NEGLIGIBLE {
                break;
            }
            add(x, term);
        }
        // Downward.
        let (mut x, mut log_term) = (mode, 0.0);
        while x > self.lo {
            log_term -= self.log_step(x - 1.0) + theta;
            x -= 1.0;
            let term = log_term.exp();
            if term < NEGLIGIBLE {
                break;
            }
            add(x, term);
        }
        sums
    }
}

/// Root in ln ψ of a function increasing in ln ψ, starting from a bracket around `centre` of
/// half-width `width`, widened until it holds the root, then halved to the last useful bit.
fn log_root(centre: f64, width: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (centre - width, centre + width);
    let mut step = width;
    for _ in 0..200 {
        if f(lo) <= 0.0 {
            break;
        }
        step *= 2.0;
        lo -= step;
    }
    let mut step = width;
    for _ in 0..200 {
        if f(hi) >= 0.0 {
            break;
        }
        step *= 2.0;
        hi += step;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi || hi - lo <= 1e-13 * (1.0 + mid.abs()) {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The conditional odds ratio `(a/b)/(c/d)` of the table `[[a, b], [c, d]]` and its limits at
/// `level`; NaN for entries that are not finite, whole and non-negative, for a level outside
/// (0, 1), or for a table with an empty row or column (no information on ψ).
pub fn conditional_odds_ratio(
    a: f64,
    b: f64,
    c: f64,
    d: f64,
    level: f64,
    tails: ConditionalTails,
) -> ConditionalOddsRatio {
    let nan = ConditionalOddsRatio {
        estimate: f64::NAN,
        lower: f64::NAN,
        upper: f64::NAN,
    };
    let whole = |v: f64| v.is_finite() && v >= 0.0 && v.fract() == 0.0;
    if !([a, b, c, d].into_iter().all(whole) && level > 0.0 && level < 1.0) {
        return nan;
    }
    let (n1, n2, m) = (a + b, c + d, a + c);
    if n1 == 0.0 || n2 == 0.0 || m == 0.0 || b + d == 0.0 {
        return nan;
    }
    let margins = Margins {
        n1,
        n2,
        m,
        lo: (m - n2).max(0.0),
        hi: n1.min(m),
    };
    let half_alpha = (1.0 - level) / 2.0;
    // Woolf's estimate and standard error (with ½ added to every cell, so that a zero cell
    // still gives a finite centre) only place the first bracket.
    let centre = ((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))).ln();
    let width =
        4.0 * (1.0 / (a + 0.5) + 1.0 / (b + 0.5) + 1.0 / (c + 0.5) + 1.0 / (d + 0.5)).sqrt();
    let (at_lo, at_hi) = (a == margins.lo, a == margins.hi);
    if at_lo && at_hi {
        // A single possible table: ψ is not identified.
        return nan;
    }
    let mid_weight = match tails {
        ConditionalTails::Exact => 1.0,
        ConditionalTails::MidP => 0.5,
    };
    let estimate = if at_lo {
        0.0
    } else if at_hi {
        f64::INFINITY
    } else {
        log_root(centre, width, |theta| {
            let s = margins.sums(theta, a);
            s.first_moment / s.total - a
        })
        .exp()
    };
    let lower = if at_lo {
        0.0
    } else {
        // P(X ≥ a) (or the mid-p tail) rises with ψ.
        log_root(centre, width, |theta| {
            let s = margins.sums(theta, a);
            (s.above + mid_weight * s.at) / s.total - half_alpha
        })
        .exp()
    };
    let upper = if at_hi {
        f64::INFINITY
    } else {
        // P(X ≤ a) falls with ψ: its negative rises.
        log_root(centre, width, |theta| {
            let s = margins.sums(theta, a);
            half_alpha - (s.below + mid_weight * s.at) / s.total
        })
        .exp()
    };
    ConditionalOddsRatio {
        estimate,
        lower,
        upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mpmath, 40 digits (`findroot` of the mid-p tails of [[3, 1], [1, 3]]).
    const MIDP_TEA_LOWER: f64 = 0.310_054_881_719_079_7;
    const MIDP_TEA_UPPER: f64 = 308.556_771_581_154_8;

    fn close(x: f64, y: f64, relative: f64) -> bool {
        (x - y).abs() <= relative * y.abs()
    }

    #[test]
    fn r_fisher_test_tea_tasting() {
        // R, ?fisher.test: TeaTasting = matrix(c(3, 1, 1, 3), 2); fisher.test(TeaTasting)
        // prints "odds ratio 6.408309", "95 percent confidence interval: 0.2117329 621.9337290".
        // R finds each root with `uniroot`'s default tolerance (ε^¼ ≈ 1.2e-4, on ψ in (0, 1) and
        // on 1/ψ for the upper limit), so its figures are right to about that: solved to 40
        // digits (mpmath, `findroot` on the same equations over the five possible tables) the
        // estimate is 6.40831965819967, the limits 0.211735595446579 and 626.243530588814, and
        // SciPy 1.17.1's `odds_ratio([[3, 1], [1, 3]], kind="conditional")` gives the same.
        let r = conditional_odds_ratio(3.0, 1.0, 1.0, 3.0, 0.95, ConditionalTails::Exact);
        assert!(close(r.estimate, 6.408_319_658_199_67, 1e-10), "{r:?}");
        assert!(close(r.lower, 0.211_735_595_446_579, 1e-10), "{r:?}");
        assert!(close(r.upper, 626.243_530_588_814, 1e-10), "{r:?}");
        // R's printed figures, within its root-finding tolerance.
        assert!((r.estimate - 6.408309).abs() < 1.2e-4 * r.estimate);
        assert!((r.lower - 0.2117329).abs() < 1.2e-4);
        assert!((1.0 / r.upper - 1.0 / 621.9337).abs() < 1.2e-4);
    }

    #[test]
    fn scipy_conditional_odds_ratios() {
        // SciPy 1.17.1, `scipy.stats.contingency.odds_ratio([[a, b], [c, d]],
        // kind="conditional")`, `.statistic` and `.confidence_interval(level)`, for tables small,
        // with a zero cell, and of 200,000 persons (SciPy takes five minutes over the last).
        let cases: [([f64; 4], f64, [f64; 3]); 10] = [
            (
                [12.0, 5.0, 7.0, 14.0],
                0.95,
                [4.586730434376699, 1.0063298166860701, 24.264482923282195],
            ),
            (
                [12.0, 5.0, 7.0, 14.0],
                0.998,
                [4.586730434376699, 0.49046522089916694, 61.57228672801119],
            ),
            ([0.0, 5.0, 4.0, 6.0], 0.95, [0.0, 0.0, 2.879471751872135]),
            (
                [7.0, 0.0, 3.0, 9.0],
                0.998,
                [f64::INFINITY, 0.7782791626972163, f64::INFINITY],
            ),
            (
                [120.0, 380.0, 90.0, 410.0],
                0.95,
                [1.4380734662243486, 1.0466754230035398, 1.9807257005232592],
            ),
            (
                [120.0, 380.0, 90.0, 410.0],
                0.998,
                [1.4380734662243486, 0.878295196778365, 2.3710724252906505],
            ),
            (
                [2465.0, 7535.0, 2973.0, 7027.0],
                0.95,
                [0.7732399811999406, 0.7260011059373226, 0.8235097156795221],
            ),
            (
                [2465.0, 7535.0, 2973.0, 7027.0],
                0.998,
                [0.7732399811999406, 0.7002596244115749, 0.853694665623522],
            ),
            (
                [24650.0, 75350.0, 29730.0, 70270.0],
                0.95,
                [0.7732310233218621, 0.7580568755123189, 0.7887049012392364],
            ),
            (
                [24650.0, 75350.0, 29730.0, 70270.0],
                0.998,
                [0.7732310233218621, 0.7494611910575152, 0.797742583959898],
            ),
        ];
        for ([a, b, c, d], level, [estimate, lower, upper]) in cases {
            let r = conditional_odds_ratio(a, b, c, d, level, ConditionalTails::Exact);
            for (got, want) in [(r.estimate, estimate), (r.lower, lower), (r.upper, upper)] {
                let agrees = if want.is_finite() {
                    close(got, want, 1e-8)
                } else {
                    got == want
                };
                assert!(agrees, "{a} {b} {c} {d} at {level}: {r:?}");
            }
        }
    }

    #[test]
    fn mid_p_limits_by_hand_in_high_precision() {
        // mpmath at 40 digits, the table [[3, 1], [1, 3]] (five possible tables, weights
        // C(4, x) C(4, 4 − x) ψˣ): the ψ at which P(X > 3) + ½P(X = 3) = 0.025 and at which
        // P(X < 3) + ½P(X = 3) = 0.025.
        let r = conditional_odds_ratio(3.0, 1.0, 1.0, 3.0, 0.95, ConditionalTails::MidP);
        assert!(close(r.estimate, 6.408_319_658_199_67, 1e-10), "{r:?}");
        assert!(close(r.lower, MIDP_TEA_LOWER, 1e-9), "{r:?}");
        assert!(close(r.upper, MIDP_TEA_UPPER, 1e-9), "{r:?}");
    }

    #[test]
    fn a_large_tables_exact_limits_approach_woolfs() {
        // Seven million persons in each row (the size of a 2020/21 X-ray category): Woolf's
        // logit limits ψ̂·exp(∓1.96·√(Σ 1/cell)) and the exact conditional ones agree to 1e-4.
        let (a, b, c, d) = (2_000_000.0, 5_000_000.0, 1_800_000.0, 5_200_000.0);
        let r = conditional_odds_ratio(a, b, c, d, 0.95, ConditionalTails::Exact);
        let woolf = a * d / (b * c);
        let half_width = 1.959_963_984_540_054 * (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d).sqrt();
        assert!(close(r.estimate, woolf, 1e-5), "{r:?} against {woolf}");
        assert!(close(r.lower, woolf * (-half_width).exp(), 1e-4), "{r:?}");
        assert!(close(r.upper, woolf * half_width.exp(), 1e-4), "{r:?}");
        let midp = conditional_odds_ratio(a, b, c, d, 0.95, ConditionalTails::MidP);
        assert!(midp.lower > r.lower && midp.upper < r.upper);
        assert!(close(midp.lower, r.lower, 1e-5) && close(midp.upper, r.upper, 1e-5));
    }

    #[test]
    fn ends_of_the_support_give_zero_and_infinity() {
        // a = 0: estimate 0, lower 0; d = 0 with a at its maximum: estimate and upper ∞.
        let r = conditional_odds_ratio(0.0, 5.0, 4.0, 6.0, 0.95, ConditionalTails::Exact);
        assert_eq!((r.estimate, r.lower), (0.0, 0.0));
        assert!(r.upper.is_finite() && r.upper > 0.0);
        let r = conditional_odds_ratio(5.0, 0.0, 4.0, 6.0, 0.95, ConditionalTails::MidP);
        assert!(r.estimate.is_infinite() && r.upper.is_infinite());
        assert!(r.lower.is_finite() && r.lower > 0.0);
    }

    #[test]
    fn mid_p_limits_lie_inside_the_exact_ones() {
        let exact = conditional_odds_ratio(12.0, 5.0, 7.0, 14.0, 0.95, ConditionalTails::Exact);
        let midp = conditional_odds_ratio(12.0, 5.0, 7.0, 14.0, 0.95, ConditionalTails::MidP);
        assert_eq!(exact.estimate, midp.estimate);
        assert!(exact.lower < midp.lower && midp.upper < exact.upper);
    }

    #[test]
    fn invalid_tables_give_nan() {
        for (a, b, c, d) in [
            (-1.0, 2.0, 3.0, 4.0),
            (1.5, 2.0, 3.0, 4.0),
            (0.0, 0.0, 3.0, 4.0),
            (0.0, 2.0, 0.0, 4.0),
            (f64::NAN, 2.0, 3.0, 4.0),
        ] {
            let r = conditional_odds_ratio(a, b, c, d, 0.95, ConditionalTails::Exact);
            assert!(r.estimate.is_nan() && r.lower.is_nan() && r.upper.is_nan());
        }
        assert!(
            conditional_odds_ratio(1.0, 2.0, 3.0, 4.0, 1.0, ConditionalTails::Exact)
                .lower
                .is_nan()
        );
    }
}
