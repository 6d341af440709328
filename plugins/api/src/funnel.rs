//! Funnel-plot control limits drawn from a confidence-interval method, so that a funnel chart and
//! the area limits in `area_rates` never disagree.
//!
//! A funnel plot shows each area's standardised ratio O/E against its expected count E, with
//! control limits around 1. The limits here are the method's own limits turned inside out. Counts
//! are whole numbers, so at expected count E the method is asked which counts it calls
//! significantly high (lower limit of O/E above 1) and low (upper limit below 1): with O* the
//! smallest count called high, the upper control limit is (O* − ½)/E, and with O_* the largest
//! count called low, the lower control limit is (O_* + ½)/E (0 where no count is low). An area is
//! then above the upper control limit exactly when its own lower confidence limit is above the
//! national rate, and below the lower one exactly when its upper limit is below it — for every
//! method whose limits rise with the count, as `ci.byar-exact`'s and `ci.exact`'s do. (Log-normal
//! upper limits fall between O = 1 and 2 at 99.8%; no single curve can follow that.)
//!
//! Drawing Byar's limits with E in place of O (as the PHE funnel-plot guidance does) gives other
//! curves: an area whose own 99.8% lower limit is above the national rate could sit inside the
//! 99.8% funnel.

use crate::{ConfidenceIntervalMethod, Limits, MethodError};

/// Control limits of the ratio O/E at each `expected` count, one [`Limits`] per level the method
/// gives. A non-positive or non-finite E gives NaN.
pub fn funnel_limits<M: ConfidenceIntervalMethod + ?Sized>(
    method: &M,
    expected: &[f64],
) -> Result<Vec<Limits>, MethodError> {
    let ones = vec![1.0; expected.len()];
    // Limits of O/E (scale 1) at each expected count, for counts `observed`. A failing call
    // stops the search; its error is returned.
    let failure = std::cell::RefCell::new(None);
    let at = |observed: &[f64]| match method.limits(observed, expected, &ones) {
        Ok(limits) => limits,
        Err(e) => {
            failure.borrow_mut().get_or_insert(e);
            Vec::new()
        }
    };
    let levels: Vec<f64> = at(expected).iter().map(|l| l.level).collect();
    let valid: Vec<bool> = expected.iter().map(|e| e.is_finite() && *e > 0.0).collect();
    let funnel: Vec<Limits> = levels
        .iter()
        .enumerate()
        .map(|(k, &level)| {
            let limit_of = |observed: &[f64], upper: bool| -> Vec<f64> {
                at(observed)
                    .get(k)
                    .map(|l| {
                        if upper {
                            l.upper.clone()
                        } else {
                            l.lower.clone()
                        }
                    })
                    .unwrap_or_default()
            };
            // The first count called high: its lower limit of O/E is above 1.
            let high = first_count(expected, &valid, &|o| {
                limit_of(o, false).iter().map(|v| *v > 1.0).collect()
            });
            // The first count not called low: its upper limit of O/E is not below 1.
            let not_low = first_count(expected, &valid, &|o| {
                limit_of(o, true)
                    .iter()
                    .map(|v| v.partial_cmp(&1.0) != Some(std::cmp::Ordering::Less))
                    .collect()
            });
            let ratio = |counts: &[f64], shift: f64| -> Vec<f64> {
                counts
                    .iter()
                    .zip(expected)
                    .zip(&valid)
                    .map(|((o, e), ok)| {
                        if *ok {
                            ((o + shift) / e).max(0.0)
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            };
            Limits {
                level,
                lower: ratio(&not_low, -0.5),
                upper: ratio(&high, -0.5),
            }
        })
        .collect();
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(funnel),
    }
}

/// For each expected count E, the smallest whole count O for which `holds(O)` is true, where
/// `holds` is false at O = 0 or turns true once and stays true as O grows (NaN where E is not
/// valid). Found by doubling a bracket above E, then bisection, on every E at once: one method
/// call per step.
fn first_count(expected: &[f64], valid: &[bool], holds: &dyn Fn(&[f64]) -> Vec<bool>) -> Vec<f64> {
    let n = expected.len();
    let start: Vec<f64> = expected
        .iter()
        .map(|e| {
            if e.is_finite() && *e > 0.0 {
                e.floor()
            } else {
                0.0
            }
        })
        .collect();
    let mut result = vec![f64::NAN; n];
    // Where it already holds at 0, 0 is the answer (e.g. nothing is "low" at tiny E).
    let at_zero = holds(&vec![0.0; n]);
    // lo: a count where it does not hold; hi: one where it does.
    let mut lo = vec![0.0; n];
    let mut hi: Vec<f64> = start.iter().map(|s| s + 1.0).collect();
    let mut open: Vec<bool> = (0..n)
        .map(|i| valid[i] && !at_zero.get(i).copied().unwrap_or(true))
        .collect();
    for i in 0..n {
        if valid[i] && !open[i] {
            result[i] = 0.0;
        }
    }
    for _ in 0..64 {
        let values = holds(&hi);
        let mut widened = false;
        for i in (0..n).filter(|&i| open[i]) {
            if !values.get(i).copied().unwrap_or(true) {
                lo[i] = hi[i];
                hi[i] = hi[i] * 2.0 + 1.0;
                widened = true;
            }
        }
        if !widened {
            break;
        }
    }
    loop {
        let mid: Vec<f64> = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| ((l + h) / 2.0).floor())
            .collect();
        let searching: Vec<usize> = (0..n).filter(|&i| open[i] && hi[i] - lo[i] > 1.0).collect();
        if searching.is_empty() {
            break;
        }
        let values = holds(&mid);
        for i in searching {
            if values.get(i).copied().unwrap_or(true) {
                hi[i] = mid[i];
            } else {
                lo[i] = mid[i];
            }
        }
    }
    for i in 0..n {
        if open[i] {
            result[i] = hi[i];
            open[i] = false;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normal-approximation limits of O/E: O ± z√O, over E; rising with O.
    struct Normal;
    impl ConfidenceIntervalMethod for Normal {
        fn method_name(&self) -> String {
            "normal".into()
        }
        fn limits(
            &self,
            observed: &[f64],
            expected: &[f64],
            scale: &[f64],
        ) -> Result<Vec<Limits>, MethodError> {
            let z = 1.959_963_984_540_054;
            let f = |sign: f64| -> Vec<f64> {
                observed
                    .iter()
                    .zip(expected)
                    .zip(scale)
                    .map(|((o, e), s)| ((o + sign * z * o.sqrt()) / e * s).max(0.0))
                    .collect()
            };
            Ok(vec![Limits {
                level: 0.95,
                lower: f(-1.0),
                upper: f(1.0),
            }])
        }
    }

    #[test]
    fn the_funnel_is_half_a_count_inside_the_first_count_called_high_or_low() {
        // At E = 100 with O ± z√O: 122 − z√122 = 100.35 > 100 is the first high count
        // (121 − z√121 = 99.44), and 82 + z√82 = 99.75 < 100 the last low one (83 + z√83 =
        // 100.86).
        let f = funnel_limits(&Normal, &[100.0, 0.0, -1.0, f64::NAN]).expect("limits");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, 0.95);
        assert_eq!(f[0].upper[0], 1.215);
        assert_eq!(f[0].lower[0], 0.825);
        for i in 1..4 {
            assert!(f[0].upper[i].is_nan() && f[0].lower[i].is_nan());
        }
    }

    #[test]
    fn a_point_is_outside_the_funnel_exactly_when_its_own_limits_exclude_one() {
        let expected: Vec<f64> = (1..400).map(|i| i as f64 * 0.37).collect();
        let f = funnel_limits(&Normal, &expected).expect("limits");
        for (i, e) in expected.iter().enumerate() {
            for o in 0..200 {
                let o = o as f64;
                let own = Normal.limits(&[o], &[*e], &[1.0]).expect("limits");
                let ratio = o / e;
                assert_eq!(ratio > f[0].upper[i], own[0].lower[0] > 1.0, "O {o}, E {e}");
                assert_eq!(ratio < f[0].lower[i], own[0].upper[0] < 1.0, "O {o}, E {e}");
            }
        }
    }
}
