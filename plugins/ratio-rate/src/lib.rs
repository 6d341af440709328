//! `ratio.rate` — the rate ratio the 2023/24 publication reports (section 3.1).
//!
//! `ratio = r2 / r1`, r1 the base category's standardised rate, r2 the comparison's.
//!
//! Edge cases: undefined (with a note) when r1 is 0 or either rate is missing; defined for any
//! rate, including rates above one test per person.
//!
//! Confidence limits (opt-in: `params = { limits = "log-normal", levels = [0.95] }`; without
//! `limits` the method gives none and `factor_ratios` has no limit columns). Each category's
//! standardised rate is `O/E × national rate`, E the count its population would have at the
//! national rates of the other factors, taken as fixed; O is Poisson, so the standard error of
//! ln(O) is about 1/√O and (Katz's log-normal interval for a ratio of two Poisson rates)
//!
//! ```text
//! var(ln ratio) = 1/O1 + 1/O2
//! lower, upper  = ratio × exp(∓ z · √(1/O1 + 1/O2)),  z the two-sided normal quantile of the level
//! ```
//!
//! `limits = "exact-conditional"` gives exact limits instead: given the total `n = O1 + O2`, O2 is
//! binomial with share `π = ψ E2 / (E1 + ψ E2)`, ψ the ratio of the two O/E (the rate ratio, both
//! rates being O/E times the same national rate), so the Clopper–Pearson limits of π give
//! `ψ = π E1 / ((1 − π) E2)` (Armitage, Berry & Matthews 2002, §5.3; R's `poisson.test` with
//! expected counts as time bases).
//!
//! A ratio that is undefined or 0, or an observed count of 0, gives no log-normal limits (NaN,
//! written empty); the exact limits of O2 = 0 are 0 and a finite upper limit.
//! `levels` (default `[0.95]`) are checked like every CI plugin's.
//!
//! References: NHS England, *Diagnostic Imaging Dataset: Standardised ICB rates 2023/24*, §3.1
//! (female 3,894 and male 3,087 per 10,000 give 0.79); Katz D., Baptista J., Azen S.P. & Pike
//! M.C. (1978), *Obtaining confidence intervals for the risk ratio in cohort studies*, Biometrics
//! 34, 469–474; Rothman K.J., Greenland S. & Lash T.L. (2008), *Modern Epidemiology*, 3rd ed.,
//! ch. 14 (the rate ratio's SE √(1/A1 + 1/A0) for person-time data).

use serde::Deserialize;
use strata_api::{
    Comparison, Configured, Limits, MethodError, ParamError, Params, PluginDescriptor, RatioMethod,
    RatioValue, StageKind,
};
use strata_stats::{levels_label, limits_by_level, log_normal_ratio_limits, ratio_limits_params};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ratio.rate",
    stage: StageKind::Ratio,
    version: env!("CARGO_PKG_VERSION"),
    description: "Rate ratio r2/r1 of standardised rates",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateParams {
    /// Confidence limits for the ratios: `log-normal` (Katz) or `exact-conditional`; none unless
    /// named.
    limits: Option<String>,
    /// Their levels, when `limits` names a method (default 0.95).
    levels: Option<Vec<f64>>,
}

/// The limits methods `limits` may name.
const LIMITS: [&str; 2] = ["log-normal", "exact-conditional"];

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: RateParams = params.parse()?;
    let limits = ratio_limits_params("ratio.rate", &LIMITS, p.limits, p.levels)?;
    let exact = limits
        .as_ref()
        .is_some_and(|(method, _)| method == "exact-conditional");
    Ok(Configured::Ratio(Box::new(ConfiguredRateRatio {
        levels: limits.map(|(_, levels)| levels),
        exact,
    })))
}

/// The rate ratio with the recipe's limits at these levels (Katz log-normal, or exact
/// conditional), or none.
struct ConfiguredRateRatio {
    levels: Option<Vec<f64>>,
    exact: bool,
}

/// Exact conditional limits of ψ = (O2/E2)/(O1/E1): Clopper–Pearson limits of O2's share of
/// O1 + O2, mapped through ψ = π E1 / ((1 − π) E2); NaN without positive expected counts or any
/// tests.
pub fn exact_conditional_limits(c: &Comparison, level: f64) -> (f64, f64) {
    let (e1, e2) = (c.base_expected, c.comparison_expected);
    if !(e1 > 0.0 && e2 > 0.0 && e1.is_finite() && e2.is_finite()) {
        return (f64::NAN, f64::NAN);
    }
    let (o1, o2) = (c.base_observed, c.comparison_observed);
    let (lower, upper) = strata_stats::clopper_pearson(o2, o1 + o2, level);
    let ratio = |share: f64| share * e1 / ((1.0 - share) * e2);
    (
        ratio(lower),
        if upper >= 1.0 { f64::NAN } else { ratio(upper) },
    )
}

/// The rate-ratio method.
pub struct RateRatio;

impl RateRatio {
    pub fn rate_ratio(base_rate: f64, comparison_rate: f64) -> RatioValue {
        if !(base_rate.is_finite() && comparison_rate.is_finite()) {
            return RatioValue {
                value: None,
                note: Some("rate ratio undefined: a rate is missing".into()),
            };
        }
        if base_rate <= 0.0 {
            return RatioValue {
                value: None,
                note: Some("rate ratio undefined: base rate is 0".into()),
            };
        }
        RatioValue {
            value: Some(comparison_rate / base_rate),
            note: None,
        }
    }
    /// Katz's variance of the log rate ratio, `1/O1 + 1/O2` (NaN when a count is not positive).
    pub fn log_variance(base_observed: f64, comparison_observed: f64) -> f64 {
        if base_observed > 0.0 && comparison_observed > 0.0 {
            1.0 / base_observed + 1.0 / comparison_observed
        } else {
            f64::NAN
        }
    }
}

impl RatioMethod for RateRatio {
    fn method_name(&self) -> String {
        "rate ratio".into()
    }

    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        _rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        Ok(base_rate
            .iter()
            .zip(comparison_rate)
            .map(|(&b, &c)| Self::rate_ratio(b, c))
            .collect())
    }
}

impl RatioMethod for ConfiguredRateRatio {
    fn method_name(&self) -> String {
        RateRatio.method_name()
    }

    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        RateRatio.ratios(base_rate, comparison_rate, rate_per)
    }

    fn limits_method(&self) -> Option<String> {
        let levels = self.levels.as_ref()?;
        let name = if self.exact {
            "exact conditional (Clopper-Pearson)"
        } else {
            "Katz log-normal"
        };
        Some(format!("{name} {}", levels_label(levels)))
    }

    fn limits(&self, comparisons: &[Comparison]) -> Result<Vec<Limits>, MethodError> {
        let Some(levels) = &self.levels else {
            return Ok(Vec::new());
        };
        if self.exact {
            return Ok(limits_by_level(
                comparisons,
                levels,
                exact_conditional_limits,
            ));
        }
        let ratios: Vec<Option<f64>> = comparisons
            .iter()
            .map(|c| RateRatio::rate_ratio(c.base_rate, c.comparison_rate).value)
            .collect();
        let variances: Vec<f64> = comparisons
            .iter()
            .map(|c| RateRatio::log_variance(c.base_observed, c.comparison_observed))
            .collect();
        Ok(log_normal_ratio_limits(&ratios, &variances, levels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_worked_example_2023_24() {
        // §3.1: female 3,894, male 3,087 per 10,000 → 0.79.
        let r = RateRatio::rate_ratio(3894.0, 3087.0).value.unwrap();
        assert!((r - 0.79276).abs() < 1e-4, "{r}");
        assert_eq!(format!("{r:.2}"), "0.79");
    }

    #[test]
    fn defined_above_one_test_per_person() {
        let r = RateRatio::rate_ratio(1500.0, 15_000.0).value.unwrap();
        assert!((r - 10.0).abs() < 1e-12);
    }

    fn configured(params: &str) -> Result<Box<dyn RatioMethod>, ParamError> {
        match configure(&Params::from_toml_str(params).expect("toml"))? {
            Configured::Ratio(m) => Ok(m),
            _ => panic!("a ratio method"),
        }
    }

    fn comparison(base: (f64, f64), comparison: (f64, f64)) -> Comparison {
        // (observed, person-time); rates per 10,000.
        Comparison {
            base_rate: base.0 / base.1 * 10_000.0,
            comparison_rate: comparison.0 / comparison.1 * 10_000.0,
            rate_per: 10_000.0,
            base_observed: base.0,
            comparison_observed: comparison.0,
            base_expected: base.1,
            comparison_expected: comparison.1,
        }
    }

    #[test]
    fn katz_limits_by_hand_on_a_two_group_rate_ratio() {
        // Boice & Monson's (1977) breast cancer after fluoroscopy, the person-time example of
        // Rothman, Greenland & Lash ch. 14: A1 = 41 cases in 28,010 person-years against A0 = 15
        // in 19,017. IR = (41/28,010)/(15/19,017) = 1.8558; SE(ln IR) = √(1/41 + 1/15) = 0.30176;
        // 95%: exp(ln 1.8558 ∓ 1.959964 × 0.30176) = 1.0272 to 3.3526.
        let m = configured("limits = \"log-normal\"").expect("configures");
        let l = m
            .limits(&[comparison((15.0, 19_017.0), (41.0, 28_010.0))])
            .expect("limits");
        let ir: f64 = (41.0 / 28_010.0) / (15.0 / 19_017.0);
        let se = (1.0_f64 / 41.0 + 1.0 / 15.0).sqrt();
        let z = 1.959_963_984_540_054;
        assert!((ir - 1.8558).abs() < 1e-4 && (se - 0.30176).abs() < 1e-5);
        assert!((l[0].lower[0] - (ir.ln() - z * se).exp()).abs() < 1e-12);
        assert!((l[0].upper[0] - (ir.ln() + z * se).exp()).abs() < 1e-12);
        assert!((l[0].lower[0] - 1.0272).abs() < 1e-4, "{}", l[0].lower[0]);
        assert!((l[0].upper[0] - 3.3526).abs() < 1e-4, "{}", l[0].upper[0]);
        assert_eq!(l[0].level, 0.95);
        assert_eq!(m.limits_method().as_deref(), Some("Katz log-normal 95%"));
    }

    #[test]
    fn katz_limits_on_the_published_worked_example() {
        // §3.1's rates, female 3,894 and male 3,087 per 10,000, as counts in 10,000 people each:
        // ratio 0.79276, SE(ln) = √(1/3,894 + 1/3,087) = 0.024099; 95% 0.7562 to 0.8311; at
        // 99.8% (z = 3.090232) 0.7359 to 0.8540.
        let m = configured("limits = \"log-normal\"\nlevels = [0.95, 0.998]").expect("configures");
        let l = m
            .limits(&[comparison((3894.0, 10_000.0), (3087.0, 10_000.0))])
            .expect("limits");
        let ratio: f64 = 3087.0 / 3894.0;
        let se = (1.0_f64 / 3894.0 + 1.0 / 3087.0).sqrt();
        assert!((se - 0.024099).abs() < 1e-6, "{se}");
        for (limits, z) in l.iter().zip([1.959_963_984_540_054, 3.090_232_306_167_813]) {
            assert!((limits.lower[0] - ratio * (-z * se).exp()).abs() < 1e-12);
            assert!((limits.upper[0] - ratio * (z * se).exp()).abs() < 1e-12);
        }
        assert!((l[0].lower[0] - 0.7562).abs() < 1e-4 && (l[0].upper[0] - 0.8311).abs() < 1e-4);
        assert!((l[1].lower[0] - 0.7359).abs() < 1e-4 && (l[1].upper[0] - 0.8540).abs() < 1e-4);
    }

    /// P(X ≥ k) for X ~ Binomial(n, p), summed term by term in logs.
    fn binomial_at_least(k: u64, n: u64, p: f64) -> f64 {
        let ln_choose = |n: u64, k: u64| -> f64 {
            (1..=k)
                .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
                .sum()
        };
        (k..=n)
            .map(|j| (ln_choose(n, j) + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).ln()).exp())
            .sum()
    }

    #[test]
    fn exact_conditional_limits_satisfy_their_definition() {
        // Boice & Monson's data again: O2 = 41 of n = 56, E2 = 28,010, E1 = 19,017. The lower
        // limit's share π_L has P(X ≥ 41 | 56, π_L) = 0.025 and the upper's P(X ≤ 41) = 0.025,
        // checked here by summing the binomial, not by the beta function the method uses.
        let m = configured("limits = \"exact-conditional\"").expect("configures");
        let c = comparison((15.0, 19_017.0), (41.0, 28_010.0));
        let l = m.limits(&[c]).expect("limits");
        let share = |psi: f64| psi * 28_010.0 / (19_017.0 + psi * 28_010.0);
        let (lower, upper) = (l[0].lower[0], l[0].upper[0]);
        assert!(
            (binomial_at_least(41, 56, share(lower)) - 0.025).abs() < 1e-9,
            "{lower}"
        );
        assert!(
            (1.0 - binomial_at_least(42, 56, share(upper)) - 0.025).abs() < 1e-9,
            "{upper}"
        );
        let ratio = (41.0 / 28_010.0) / (15.0 / 19_017.0);
        assert!(lower < ratio && ratio < upper, "{lower} {upper}");
        // Wider than Katz's 1.0272 to 3.3526 at these counts, as exact limits are.
        assert!(lower < 1.0272 && upper > 3.3526, "{lower} {upper}");
        assert_eq!(
            m.limits_method().as_deref(),
            Some("exact conditional (Clopper-Pearson) 95%")
        );
    }

    #[test]
    fn limits_are_opt_in_and_checked() {
        let plain = configured("").expect("configures");
        assert_eq!(plain.limits_method(), None);
        assert!(
            plain
                .limits(&[comparison((1.0, 2.0), (1.0, 2.0))])
                .unwrap()
                .is_empty()
        );
        let err = configured("levels = [0.95]")
            .err()
            .expect("levels alone refused");
        assert_eq!(err.key.as_deref(), Some("levels"));
        let err = configured("limits = \"wald\"")
            .err()
            .expect("unknown method refused");
        assert_eq!(err.key.as_deref(), Some("limits"));
        let err = configured("limits = \"log-normal\"\nlevels = [1.5]")
            .err()
            .expect("level");
        assert_eq!(err.key.as_deref(), Some("levels"));
    }

    #[test]
    fn no_limits_without_counts() {
        let m = configured("limits = \"log-normal\"").expect("configures");
        let l = m
            .limits(&[
                comparison((0.0, 10.0), (3.0, 10.0)),
                comparison((4.0, 10.0), (0.0, 10.0)),
            ])
            .expect("limits");
        assert!(l[0].lower.iter().chain(&l[0].upper).all(|v| v.is_nan()));
    }

    #[test]
    fn undefined_for_zero_base() {
        let r = RateRatio::rate_ratio(0.0, 10.0);
        assert_eq!(r.value, None);
        assert!(r.note.is_some());
    }
}
