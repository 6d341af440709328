//! `strata-stats`: numeric helpers several plugins share, so that a method has one
//! implementation. Like `strata-api`, every plugin crate may depend on it, and it depends on
//! nothing of strata but `strata-api` (for the types it returns and the parameter errors it
//! raises). It is not a plugin: it has no descriptor and is not in the registry.
//!
//! Today: exact (Garwood) and mid-p exact Poisson limits on a count, log-normal limits of a ratio
//! (the ratio plugins' Katz and Woolf limits), Normal quantiles, confidence-level checks and
//! labels, and the loop that puts count limits on the standardised-rate scale (used by
//! `ci.exact`, `ci.byar-exact` and `ci.lognormal`), the conditional odds ratio of a 2×2 table
//! with its exact and mid-p limits ([`conditional_odds_ratio`]), and the ratio plugins' shared
//! `limits` and `levels` parameters ([`ratio_limits_params`]).
//!
//! References: Garwood F. (1936), *Fiducial limits for the Poisson distribution*, Biometrika 28;
//! UKHSA PHEindicatormethods (R), `R/ISRatio.R`.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::beta::inv_beta_reg;
use statrs::function::gamma::{checked_gamma_lr, checked_gamma_ur, ln_gamma};
use strata_api::{Limits, MethodError, ParamError};

mod conditional_odds;
pub use conditional_odds::{ConditionalOddsRatio, ConditionalTails, conditional_odds_ratio};

/// `interval(a, b)` of every pair of two periods' counts, refusing columns of different lengths
/// (the loop of every count-ratio method).
pub fn count_pairs<T>(
    period_a: &[f64],
    period_b: &[f64],
    interval: impl Fn(f64, f64) -> Result<T, MethodError>,
) -> Result<Vec<T>, MethodError> {
    if period_a.len() != period_b.len() {
        return Err(MethodError::new(format!(
            "{} earlier counts for {} later ones",
            period_a.len(),
            period_b.len()
        )));
    }
    period_a
        .iter()
        .zip(period_b)
        .map(|(&a, &b)| interval(a, b))
        .collect()
}

/// Refuses an earlier- or later-period count that is not a finite, non-negative number.
pub fn check_period_counts(a: f64, b: f64) -> Result<(), MethodError> {
    for (which, count) in [("earlier", a), ("later", b)] {
        if !(count.is_finite() && count >= 0.0) {
            return Err(MethodError::new(format!(
                "{which} period's count is {count}: counts are finite and not negative"
            )));
        }
    }
    Ok(())
}

/// Refuses a single confidence level outside (0, 1), naming the `level` key.
pub fn check_level(level: f64) -> Result<(), ParamError> {
    if level > 0.0 && level < 1.0 {
        return Ok(());
    }
    Err(ParamError::new(
        "level",
        format!("level = {level}: a confidence level lies strictly between 0 and 1 (e.g. 0.95)"),
    ))
}

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

/// The ratio plugins' `limits` and `levels` parameters: `None` without `limits` (no limits; then
/// `levels` is refused), else the method named, one of `methods`, and its checked levels
/// (default `[0.95]`). `plugin` names the plugin in the message for an unknown method.
pub fn ratio_limits_params(
    plugin: &str,
    methods: &[&str],
    limits: Option<String>,
    levels: Option<Vec<f64>>,
) -> Result<Option<(String, Vec<f64>)>, ParamError> {
    match (limits, levels) {
        (None, Some(_)) => Err(ParamError::new(
            "levels",
            format!(
                "`levels` are the levels of the ratios' confidence limits: name their method too \
                 (`limits = \"{}\"`)",
                methods.first().copied().unwrap_or_default()
            ),
        )),
        (None, None) => Ok(None),
        (Some(method), levels) => {
            if !methods.contains(&method.as_str()) {
                return Err(ParamError::new(
                    "limits",
                    format!(
                        "unknown limits method `{method}`: {plugin} gives {}",
                        methods.join(", ")
                    ),
                ));
            }
            let levels = levels.unwrap_or_else(|| vec![0.95]);
            check_levels(&levels)?;
            Ok(Some((method, levels)))
        }
    }
}

/// One [`Limits`] per level from a per-row `(lower, upper)` at that level.
pub fn limits_by_level<T>(
    rows: &[T],
    levels: &[f64],
    limits: impl Fn(&T, f64) -> (f64, f64),
) -> Vec<Limits> {
    levels
        .iter()
        .map(|&level| {
            let (lower, upper) = rows.iter().map(|row| limits(row, level)).unzip();
            Limits {
                level,
                lower,
                upper,
            }
        })
        .collect()
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

/// Byar's approximation to the exact lower limit on the count scale,
/// `O (1 − 1/(9O) − z/(3√O))³`; NaN for an invalid or zero O (Byar's is undefined at 0).
pub fn byar_lower(observed: f64, level: f64) -> f64 {
    if !(observed.is_finite() && observed > 0.0) {
        return f64::NAN;
    }
    let z = two_sided_z(level);
    let base = 1.0 - 1.0 / (9.0 * observed) - z / (3.0 * observed.sqrt());
    (observed * base.powi(3)).max(0.0)
}

/// Byar's approximation to the exact upper limit on the count scale,
/// `(O + 1) (1 − 1/(9(O + 1)) + z/(3√(O + 1)))³`; NaN for an invalid O.
pub fn byar_upper(observed: f64, level: f64) -> f64 {
    if !(observed.is_finite() && observed >= 0.0) {
        return f64::NAN;
    }
    let z = two_sided_z(level);
    let next = observed + 1.0;
    let base = 1.0 - 1.0 / (9.0 * next) + z / (3.0 * next.sqrt());
    next * base.powi(3)
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

/// Clopper–Pearson (exact) limits of a binomial share, `successes` of `trials`:
/// `B⁻¹(α/2; s, t − s + 1)` (0 when s = 0) and `B⁻¹(1 − α/2; s + 1, t − s)` (1 when s = t),
/// `B⁻¹(p; a, b)` the inverse regularised incomplete beta function; NaN for counts that are not
/// whole-number-like, finite and 0 ≤ s ≤ t with t > 0. The exact conditional limits of a ratio of
/// two Poisson counts are these, on the share of the total the later or comparison count holds.
pub fn clopper_pearson(successes: f64, trials: f64, level: f64) -> (f64, f64) {
    let (s, t) = (successes, trials);
    if !(s.is_finite() && t.is_finite() && s >= 0.0 && t > 0.0 && s <= t) {
        return (f64::NAN, f64::NAN);
    }
    let alpha = 1.0 - level;
    let lower = if s == 0.0 {
        0.0
    } else {
        inv_beta_reg(s, t - s + 1.0, alpha / 2.0)
    };
    let upper = if s == t {
        1.0
    } else {
        inv_beta_reg(s + 1.0, t - s, 1.0 - alpha / 2.0)
    };
    (lower, upper)
}

/// Log-normal limits of ratios: `ratio × exp(∓ z · √v)`, `v` the variance of the ratio's
/// natural logarithm and `z` the two-sided standard normal quantile of each level (one [`Limits`]
/// per level, one pair per ratio). This is Katz's interval for a ratio of rates and Woolf's for an
/// odds ratio; the methods differ only in `v`. A ratio that is missing, not positive or not finite,
/// or a variance that is not finite and non-negative, gives NaN limits.
pub fn log_normal_ratio_limits(
    ratios: &[Option<f64>],
    log_variances: &[f64],
    levels: &[f64],
) -> Vec<Limits> {
    levels
        .iter()
        .map(|&level| {
            let z = two_sided_z(level);
            let (lower, upper) = ratios
                .iter()
                .enumerate()
                .map(|(i, ratio)| {
                    let v = log_variances.get(i).copied().unwrap_or(f64::NAN);
                    match ratio {
                        Some(r) if *r > 0.0 && r.is_finite() && v.is_finite() && v >= 0.0 => {
                            let half_width = z * v.sqrt();
                            (r * (-half_width).exp(), r * half_width.exp())
                        }
                        _ => (f64::NAN, f64::NAN),
                    }
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

    #[test]
    fn log_normal_ratio_limits_by_hand() {
        // ratio 2, var(ln) = 0.04: 2·exp(∓1.959964·0.2) = 1.351 and 2.961.
        let l =
            log_normal_ratio_limits(&[Some(2.0), None, Some(0.0)], &[0.04, 0.04, 0.04], &[0.95]);
        let half: f64 = 1.959_963_984_540_054 * 0.2;
        assert!((l[0].lower[0] - 2.0 * (-half).exp()).abs() < 1e-12);
        assert!((l[0].upper[0] - 2.0 * half.exp()).abs() < 1e-12);
        assert!((l[0].lower[0] - 1.35142).abs() < 1e-5 && (l[0].upper[0] - 2.95985).abs() < 1e-5);
        assert!(l[0].lower[1].is_nan() && l[0].upper[2].is_nan());
    }
}

/// Two-sided exact Poisson p-value of O given expected E (the doubling rule):
/// p = min(1, 2 · min(P(X ≤ O), P(X ≥ O))), X ~ Poisson(E), through the regularized incomplete
/// gamma functions (P(X ≤ O) = Q(O + 1, E), P(X ≥ O) = P(O, E) for O > 0, 1 at O = 0), so
/// neither tail is taken as 1 − the other and a fractional O (imputed counts) is continuous.
/// It is below 1 − level exactly when the Garwood exact limits at that level exclude E, so it
/// flags the areas the exact funnel does. `None` without a valid O or a positive, finite E.
pub fn exact_poisson_p_value(observed: f64, expected: f64) -> Option<f64> {
    if !(is_valid_count(observed) && expected > 0.0 && expected.is_finite()) {
        return None;
    }
    let lower_tail = checked_gamma_ur(observed + 1.0, expected).ok()?;
    let upper_tail = if observed == 0.0 {
        1.0
    } else {
        checked_gamma_lr(observed, expected).ok()?
    };
    Some((2.0 * lower_tail.min(upper_tail)).min(1.0))
}

/// Benjamini–Hochberg adjusted p-values (the false discovery rate at which each test would be
/// rejected), in the order given: sorted ascending p₍ᵢ₎ of the m present values, q₍ᵢ₎ =
/// min over j ≥ i of m · p₍ⱼ₎ / j, at most 1; a missing p stays missing and does not count in m.
/// As R's `p.adjust(method = "BH")` and SciPy's `false_discovery_control`.
pub fn benjamini_hochberg(p_values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut present: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    present.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let m = present.len() as f64;
    let mut adjusted = vec![None; p_values.len()];
    let mut running_min = 1.0f64;
    for (rank, &(i, p)) in present.iter().enumerate().rev() {
        running_min = running_min.min(m * p / (rank as f64 + 1.0));
        adjusted[i] = Some(running_min);
    }
    adjusted
}

/// Two-sided standard normal p-value of a z-score, 2 · P(Z > |z|) from the upper tail.
pub fn two_sided_normal_p(z: f64) -> Option<f64> {
    z.is_finite()
        .then(|| (2.0 * Normal::standard().sf(z.abs())).min(1.0))
}

#[cfg(test)]
mod p_value_tests {
    use super::*;

    /// SciPy 1.17.1: `min(1, 2 * min(poisson.cdf(o, e), poisson.sf(o - 1, e)))`; the fractional
    /// O from `gammaincc(o + 1, e)` and `gammainc(o, e)`.
    #[test]
    fn exact_poisson_p_values_equal_scipys() {
        for (o, e, p) in [
            (0.0, 0.5, 1.0),
            (0.0, 3.2, 0.08152440795673244),
            (1.0, 0.3, 0.5183635586365641),
            (2.0, 7.5, 0.04051343011332877),
            (5.0, 1.1, 0.010870586922478468),
            (9.0, 4.0, 0.04272686897596829),
            (12.0, 20.5, 0.06206820337546209),
            (150.0, 120.0, 0.009126882608302472),
            (40.0, 41.3, 0.9213011265672101),
            (3.5, 2.0, 0.4404451830485681),
        ] {
            let got = exact_poisson_p_value(o, e).expect("a p-value");
            assert!(
                (got - p).abs() <= 1e-10 * p,
                "O {o} E {e}: {got} against {p}"
            );
        }
        assert_eq!(exact_poisson_p_value(3.0, 0.0), None);
        assert_eq!(exact_poisson_p_value(-1.0, 2.0), None);
        assert_eq!(exact_poisson_p_value(f64::NAN, 2.0), None);
    }

    /// Below 1 − level exactly when the exact limits exclude E.
    #[test]
    fn exact_p_value_agrees_with_the_exact_limits() {
        for o in 0..40 {
            for e10 in 1..400 {
                let (o, e) = (o as f64, e10 as f64 / 10.0);
                let p = exact_poisson_p_value(o, e).expect("p");
                let outside = e < exact_lower(o, 0.95) || e > exact_upper(o, 0.95);
                assert_eq!(p < 0.05, outside, "O {o} E {e} p {p}");
            }
        }
    }

    /// SciPy 1.17.1 `false_discovery_control([0.01, 0.04, 0.03, 0.005, 0.5, 0.2, 0.04])`
    /// (the missing value left out): 0.035, 0.056, 0.056, 0.035, 0.5, 0.233…, 0.056.
    #[test]
    fn benjamini_hochberg_equals_scipys() {
        let p = [
            Some(0.01),
            Some(0.04),
            Some(0.03),
            Some(0.005),
            Some(0.5),
            None,
            Some(0.2),
            Some(0.04),
        ];
        let want = [
            Some(0.035),
            Some(0.055999999999999994),
            Some(0.055999999999999994),
            Some(0.035),
            Some(0.5),
            None,
            Some(0.23333333333333336),
            Some(0.055999999999999994),
        ];
        let got = benjamini_hochberg(&p);
        for (g, w) in got.iter().zip(want) {
            match (g, w) {
                (Some(g), Some(w)) => assert!((g - w).abs() <= 1e-15, "{g} against {w}"),
                (None, None) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(benjamini_hochberg(&[]), Vec::<Option<f64>>::new());
        assert_eq!(
            two_sided_normal_p(1.959963984540054).map(|p| (p * 1e9).round()),
            Some(5e7)
        );
        assert_eq!(two_sided_normal_p(f64::NAN), None);
    }
}
