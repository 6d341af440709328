//! `strata-stats`: numeric helpers several plugins share, so that a method has one
//! implementation. Like `strata-api`, every plugin crate may depend on it, and it depends on
//! nothing of strata but `strata-api` (for the types it returns and the parameter errors it
//! raises). It is not a plugin: it has no descriptor and is not in the registry.
//!
//! Today: exact (Garwood) and mid-p exact Poisson limits on a count, Normal quantiles, confidence-level checks and
//! labels, and the loop that puts count limits on the standardised-rate scale (used by
//! `ci.exact`, `ci.byar-exact` and `ci.lognormal`).
//!
//! References: Garwood F. (1936), *Fiducial limits for the Poisson distribution*, Biometrika 28;
//! UKHSA PHEindicatormethods (R), `R/ISRatio.R`.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::gamma::{checked_gamma_lr, ln_gamma};
use strata_api::{Limits, ParamError};

/// The confidence levels every CI plugin reports unless the recipe says otherwise.
pub const DEFAULT_LEVELS: [f64; 2] = [0.95, 0.998];

pub fn default_levels() -> Vec<f64> {
    DEFAULT_LEVELS.to_vec()
}

/// Refuses an empty list, a level outside (0, 1) and a repeated level, naming the `levels` key.
pub fn check_levels(levels: &[f64]) -> Result<(), ParamError> {
    if levels.is_empty() {
        return Err(ParamError::new(
            "levels",
            "levels must list at least one level",
        ));
    }
    for (i, &level) in levels.iter().enumerate() {
        if !(level > 0.0 && level < 1.0) {
            return Err(ParamError::new(
                "levels",
                format!(
                    "levels[{i}] = {level}: a confidence level must lie strictly between 0 and 1 (e.g. 0.95)"
                ),
            ));
        }
        if levels[..i].contains(&level) {
            return Err(ParamError::new(
                "levels",
                format!("levels[{i}] = {level} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A level as a percentage for method names: 0.95 → `95%`, 0.998 → `99.8%`.
pub fn level_label(level: f64) -> String {
    // Rounded so that 0.998 × 100 = 99.80000000000001 prints as 99.8.
    let text = format!("{:.6}", level * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// `95%/99.8%` for a list of levels.
pub fn levels_label(levels: &[f64]) -> String {
    levels
        .iter()
        .map(|&l| level_label(l))
        .collect::<Vec<_>>()
        .join("/")
}

/// The standard normal quantile z with P(|Z| ≤ z) = level, e.g. 1.959964 for 0.95.
pub fn two_sided_z(level: f64) -> f64 {
    let standard = Normal::standard();
    standard.inverse_cdf(0.5 + level / 2.0)
}

fn is_valid_count(observed: f64) -> bool {
    observed.is_finite() && observed >= 0.0
}

/// Exact lower limit on the count scale: χ²(α/2; 2O) / 2, 0 when O = 0, NaN for an invalid O.
pub fn exact_lower(observed: f64, level: f64) -> f64 {
    if !is_valid_count(observed) {
        return f64::NAN;
    }
    if observed == 0.0 {
        return 0.0;
    }
    let alpha = 1.0 - level;
    match ChiSquared::new(2.0 * observed) {
        Ok(chi) => chi.inverse_cdf(alpha / 2.0) / 2.0,
        Err(_) => f64::NAN,
    }
}

/// Exact upper limit on the count scale: χ²(1 − α/2; 2O + 2) / 2, NaN for an invalid O.
pub fn exact_upper(observed: f64, level: f64) -> f64 {
    if !is_valid_count(observed) {
        return f64::NAN;
    }
    let alpha = 1.0 - level;
    match ChiSquared::new(2.0 * observed + 2.0) {
        Ok(chi) => chi.inverse_cdf(1.0 - alpha / 2.0) / 2.0,
        Err(_) => f64::NAN,
    }
}

/// P(X ≥ O) − ½·P(X = O) for X ~ Poisson(μ), continuous in O through the regularized incomplete
/// gamma function (P(X ≥ O) = P(O, μ), the lower regularized gamma, for O > 0).
fn midp_upper_tail(observed: f64, mean: f64) -> f64 {
    let pmf = (observed * mean.ln() - mean - ln_gamma(observed + 1.0)).exp();
    checked_gamma_lr(observed, mean).unwrap_or(f64::NAN) - 0.5 * pmf
}

/// Root of an increasing function on [lo, hi] by bisection to the last bit: the tails are smooth
/// and monotone in μ, so bisection cannot miss, and 200 halvings exhaust f64.
fn bisect(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
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

/// Mid-p exact lower limit on the count scale: the μ at which P(X > O) + ½·P(X = O) = α/2;
/// 0 when O = 0, NaN for an invalid O. It lies between the Garwood lower limit and O.
pub fn midp_lower(observed: f64, level: f64) -> f64 {
    if !is_valid_count(observed) {
        return f64::NAN;
    }
    if observed == 0.0 {
        return 0.0;
    }
    let alpha = 1.0 - level;
    bisect(exact_lower(observed, level), observed, |mean| {
        midp_upper_tail(observed, mean) - alpha / 2.0
    })
}

/// Mid-p exact upper limit on the count scale: the μ at which P(X < O) + ½·P(X = O) = α/2,
/// i.e. 1 − [P(X ≥ O) − ½·P(X = O)] = α/2; −ln α at O = 0; NaN for an invalid O. It lies between
/// O and the Garwood upper limit.
pub fn midp_upper(observed: f64, level: f64) -> f64 {
    if !is_valid_count(observed) {
        return f64::NAN;
    }
    let alpha = 1.0 - level;
    if observed == 0.0 {
        // ½·e^(−μ) = α/2.
        return -alpha.ln();
    }
    bisect(observed, exact_upper(observed, level), |mean| {
        midp_upper_tail(observed, mean) - (1.0 - alpha / 2.0)
    })
}

/// Applies count-scale limits row by row: `count_limits(O, level)` gives (lower, upper) counts,
/// which are divided by E and multiplied by `scale`. E ≤ 0 or not finite gives NaN limits.
///
/// Rows are those of `observed`; a row missing from `expected` or `scale` (a caller error the
/// trait cannot report) gets NaN limits rather than a panic.
pub fn limits_on_rate_scale(
    observed: &[f64],
    expected: &[f64],
    scale: &[f64],
    levels: &[f64],
    count_limits: impl Fn(f64, f64) -> (f64, f64),
) -> Vec<Limits> {
    levels
        .iter()
        .map(|&level| {
            let (lower, upper) = observed
                .iter()
                .enumerate()
                .map(|(i, &o)| {
                    let e = expected.get(i).copied().unwrap_or(f64::NAN);
                    let s = scale.get(i).copied().unwrap_or(f64::NAN);
                    if !(e.is_finite() && e > 0.0) {
                        return (f64::NAN, f64::NAN);
                    }
                    let (lower_count, upper_count) = count_limits(o, level);
                    (lower_count / e * s, upper_count / e * s)
                })
                .unzip();
            Limits {
                level,
                lower,
                upper,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garwood_limits_at_published_values() {
        // PHEindicatormethods' exact limits for O = 10 at 95%: qchisq(0.025, 20)/2 = 4.795389 and
        // qchisq(0.975, 22)/2 = 18.390356.
        assert!((exact_lower(10.0, 0.95) - 4.795389).abs() < 1e-6);
        assert!((exact_upper(10.0, 0.95) - 18.390356).abs() < 1e-6);
        assert_eq!(exact_lower(0.0, 0.95), 0.0);
        assert!(exact_lower(-1.0, 0.95).is_nan() && exact_upper(f64::NAN, 0.95).is_nan());
    }

    #[test]
    fn levels_are_checked_and_labelled() {
        assert!(check_levels(&[]).is_err());
        assert!(check_levels(&[0.95, 0.95]).is_err());
        assert!(check_levels(&[1.0]).is_err());
        assert!(check_levels(&[0.95, 0.998]).is_ok());
        assert_eq!(levels_label(&[0.95, 0.998]), "95%/99.8%");
        assert!((two_sided_z(0.95) - 1.959_963_984_540_054).abs() < 1e-9);
    }

    #[test]
    fn rate_scale_limits_need_a_positive_expected_count() {
        let limits =
            limits_on_rate_scale(&[4.0, 4.0], &[2.0, 0.0], &[10.0, 10.0], &[0.95], |o, _| {
                (o / 2.0, o * 2.0)
            });
        assert_eq!(limits[0].lower[0], 10.0);
        assert_eq!(limits[0].upper[0], 40.0);
        assert!(limits[0].lower[1].is_nan());
    }
}
