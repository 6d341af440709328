//! `significance.poisson-rate-ratio` — a count-based alternative to the published significance
//! test: a Wald test on the log of the ratio of two categories' standardised ratios O/E.
//!
//! What it tests: H0 "the comparison category's O/E equals the base category's", i.e. their
//! standardised rates are equal (both are O/E × the same national rate). The observed counts O are
//! taken as Poisson and the expected counts E as fixed, so ln(O/E) has standard error ≈ 1/√O:
//!
//! ```text
//! z = ln((O2/E2) / (O1/E1)) / √(1/O1 + 1/O2)     1 = base, 2 = comparison
//! p = 2 · P(Z > |z|)                             two-sided, normal survival function
//! stars: *** p < 0.001, ** p < 0.01, * p < 0.05 by default; parameter `star_thresholds`
//! (decreasing, in (0, 1); default `[0.05, 0.01, 0.001]`) sets others, named in the method name.
//! ```
//!
//! The statistic reported is z (signed: positive when the comparison category's rate is higher).
//!
//! How it differs from the published method (`significance.pearson-rates-per-10k`): that one sees
//! only the two rates per 10,000, never the counts. This one sees the counts, so with the millions
//! of tests behind a national factor category almost any difference is significant (rates 1% apart
//! on a million tests each give p ≈ 1.7e-12, where the published method gives p ≈ 0.82), while with
//! a few dozen tests (SPECT, medical photography in small areas) even large ratios may not be. It
//! ignores the sampling error of E and any over-dispersion between areas, so it overstates
//! significance when the counts are large; it is here so a methodologist can see which published
//! conclusions change, not as a better-calibrated replacement.
//!
//! Edge cases: a zero observed count in either category (the log ratio is infinite), a negative or
//! non-finite count, or an expected count ≤ 0 gives a NaN statistic and p-value and no stars.
//!
//! Parameters: none.
//!
//! Reference: Breslow N.E., Day N.E. (1987), *Statistical methods in cancer research, vol. II*,
//! IARC (comparison of SMRs on the log scale).

use serde::Deserialize;
use statrs::distribution::{ContinuousCDF, Normal};
use strata_api::{
    Comparison, Configured, MethodError, ParamError, Params, PluginDescriptor, SignificanceMethod,
    SignificanceResult, StageKind, StarThresholds, stars_for,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "significance.poisson-rate-ratio",
    stage: StageKind::Significance,
    version: env!("CARGO_PKG_VERSION"),
    description: "Wald z on ln((O2/E2)/(O1/E1)) with SE sqrt(1/O1+1/O2), two-sided normal p",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoissonParams {
    #[serde(default = "StarThresholds::published_parameter")]
    star_thresholds: Vec<f64>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: PoissonParams = params.parse()?;
    let stars = StarThresholds::from_parameter(p.star_thresholds)?;
    Ok(Configured::Significance(Box::new(
        ConfiguredPoissonRateRatio { stars },
    )))
}

/// The method with the recipe's star thresholds.
struct ConfiguredPoissonRateRatio {
    stars: StarThresholds,
}

/// The log rate-ratio Wald test on observed and expected counts.
pub struct PoissonRateRatio;

impl PoissonRateRatio {
    /// z, or NaN when either category has no tests, an invalid count or no expected tests.
    pub fn statistic(
        base_observed: f64,
        base_expected: f64,
        comparison_observed: f64,
        comparison_expected: f64,
    ) -> f64 {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(base_observed)
            && positive(base_expected)
            && positive(comparison_observed)
            && positive(comparison_expected))
        {
            return f64::NAN;
        }
        let log_ratio =
            (comparison_observed / comparison_expected).ln() - (base_observed / base_expected).ln();
        let standard_error = (1.0 / base_observed + 1.0 / comparison_observed).sqrt();
        log_ratio / standard_error
    }

    pub fn test_counts(
        base_observed: f64,
        base_expected: f64,
        comparison_observed: f64,
        comparison_expected: f64,
    ) -> SignificanceResult {
        let statistic = Self::statistic(
            base_observed,
            base_expected,
            comparison_observed,
            comparison_expected,
        );
        let p_value = if statistic.is_nan() {
            f64::NAN
        } else {
            2.0 * Normal::standard().sf(statistic.abs())
        };
        SignificanceResult {
            statistic,
            p_value,
            stars: stars_for(p_value).to_string(),
        }
    }
}

impl SignificanceMethod for ConfiguredPoissonRateRatio {
    fn method_name(&self) -> String {
        self.stars
            .method_name("Poisson log rate-ratio Wald test on counts (two-sided)")
    }

    fn test(&self, comparisons: &[Comparison]) -> Result<Vec<SignificanceResult>, MethodError> {
        Ok(comparisons
            .iter()
            .map(|c| {
                let mut r = PoissonRateRatio::test_counts(
                    c.base_observed,
                    c.base_expected,
                    c.comparison_observed,
                    c.comparison_expected,
                );
                r.stars = self.stars.stars(r.p_value);
                r
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} vs {expected} (rel tol {rel})"
        );
    }

    fn comparison(o1: f64, e1: f64, o2: f64, e2: f64) -> Comparison {
        Comparison {
            // Rates play no part in this method.
            base_rate: f64::NAN,
            comparison_rate: f64::NAN,
            base_observed: o1,
            comparison_observed: o2,
            base_expected: e1,
            comparison_expected: e2,
            rate_per: f64::NAN,
        }
    }

    #[test]
    fn hand_worked_small_counts() {
        // O1 = 20, E1 = 25, O2 = 30, E2 = 24: ratio 1.25 / 0.8 = 1.5625, ln = 0.446287102628419,
        // SE = √(1/20 + 1/30) = 0.288675134594813, z = 1.54598387303026, p = 0.12210846267492
        // (mpmath).
        let r = PoissonRateRatio::test_counts(20.0, 25.0, 30.0, 24.0);
        assert_close(r.statistic, 1.54598387303026, 1e-12);
        assert_close(r.p_value, 0.12210846267492, 1e-9);
        assert_eq!(r.stars, "");
        // Swapping the categories flips the sign only.
        let swapped = PoissonRateRatio::test_counts(30.0, 24.0, 20.0, 25.0);
        assert_close(swapped.statistic, -1.54598387303026, 1e-12);
        assert_eq!(swapped.p_value, r.p_value);
    }

    #[test]
    fn large_counts_make_a_one_percent_difference_significant() {
        // 1,000,000 vs 1,010,000 tests against 1,000,000 expected each: z = 7.0534270604936,
        // p = 1.74564032419934e-12 (mpmath). The published method on the same rates, 1,000 vs
        // 1,010 per 10,000, gives χ² = 100 / 2,010 = 0.0497512437810945, p = 0.823496694654739.
        let r = PoissonRateRatio::test_counts(1e6, 1e6, 1.01e6, 1e6);
        assert_close(r.statistic, 7.0534270604936, 1e-9);
        assert_close(r.p_value, 1.74564032419934e-12, 1e-6);
        assert_eq!(r.stars, "***");
    }

    #[test]
    fn equal_ratios_are_not_significant() {
        let r = PoissonRateRatio::test_counts(40.0, 50.0, 80.0, 100.0);
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.stars, "");
    }

    #[test]
    fn zero_counts_give_nan_and_no_stars() {
        for (o1, e1, o2, e2) in [
            (0.0, 5.0, 10.0, 5.0),
            (10.0, 5.0, 0.0, 5.0),
            (0.0, 5.0, 0.0, 5.0),
            (10.0, 0.0, 10.0, 5.0),
            (10.0, 5.0, 10.0, -1.0),
            (f64::NAN, 5.0, 10.0, 5.0),
            (-3.0, 5.0, 10.0, 5.0),
        ] {
            let r = PoissonRateRatio::test_counts(o1, e1, o2, e2);
            assert!(r.statistic.is_nan(), "{o1} {e1} {o2} {e2}");
            assert!(r.p_value.is_nan());
            assert_eq!(r.stars, "");
        }
    }

    #[test]
    fn trait_maps_each_comparison() {
        let Configured::Significance(method) = (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        let results = method
            .test(&[
                comparison(20.0, 25.0, 30.0, 24.0),
                comparison(0.0, 1.0, 3.0, 1.0),
                comparison(1e6, 1e6, 1.01e6, 1e6),
            ])
            .expect("test");
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].stars, "");
        assert!(results[1].p_value.is_nan());
        assert_eq!(results[2].stars, "***");
    }

    #[test]
    fn unknown_param_is_refused_with_its_key() {
        let params = Params::from_toml_str("two_sided = false").unwrap();
        let err = (DESCRIPTOR.configure)(&params).err().unwrap();
        assert_eq!(err.key.as_deref(), Some("two_sided"));
    }
}
