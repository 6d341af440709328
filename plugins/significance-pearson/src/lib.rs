//! `significance.pearson-rates-per-10k` — the significance test the publications report as
//! "Pearson's Chi Square test" (2020/21 and 2023/24, §3.1), as SPEC §6 reconstructs it.
//!
//! The two categories' standardised rates **per 10,000** are treated as if they were counts in a
//! one-way table with equal expected counts (their mean), giving one degree of freedom:
//!
//! ```text
//! χ² = (r2 − r1)² / (r1 + r2)        r1 base rate, r2 comparison rate, both per 10,000
//! p  = P(χ²₁ > χ²)                   chi-square survival function, never 1 − cdf
//! stars: *** p < 0.001, ** p < 0.01, * p < 0.05 by default; parameter `star_thresholds`
//! (decreasing, in (0, 1); default `[0.05, 0.01, 0.001]`) sets others, named in the method name.
//! ```
//!
//! What it is and is not: the statistic depends only on the two rates and on the arbitrary unit
//! "per 10,000" (per 1,000 would shrink every χ² tenfold), not on how many tests or people lie
//! behind them. That is why a ratio of 1.15 on fluoroscopy rates around 122 per 10,000 is "not
//! significant" while the same ratio on X-ray rates in the thousands is. It reproduces the
//! published stars; it is not a test of the sampling variability of the rates. The count-based
//! alternative is `significance.poisson-rate-ratio`.
//!
//! Edge cases: a missing (non-finite) or negative rate, or both rates 0 (χ² = 0/0), gives a NaN
//! statistic and p-value and no stars.
//!
//! Parameters: `star_thresholds` (above); `count_basis` (default 10,000, the published unit): the
//! rates are re-expressed per `count_basis` people before the statistic, whatever the recipe's
//! `rate_per`, so a recipe that prints rates per 1,000 keeps the published stars. A `count_basis`
//! other than 10,000 is a different test, named in the method name.
//!
//! Checked against the publications: all 200 of the 248 published sex, deprivation and age stars
//! whose class is fixed by the published ratios and national rates match (see
//! `tests/published_stars.rs`), among them 2020/21 X-ray female 2,973 vs male 2,465 → `***` (§3.1)
//! and the 2020/21 fluoroscopy odds ratio 1.15 → not significant (Table 1).

use serde::Deserialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};
use strata_api::{
    Comparison, Configured, DEFAULT_RATE_PER, MethodError, ParamError, Params, PluginDescriptor,
    SignificanceMethod, SignificanceResult, StageKind, StarThresholds, rate_per_text, stars_for,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "significance.pearson-rates-per-10k",
    stage: StageKind::Significance,
    version: env!("CARGO_PKG_VERSION"),
    description: "Published method: Pearson chi-square (r2-r1)^2/(r1+r2) on rates per 10,000, 1 df",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PearsonParams {
    #[serde(default = "StarThresholds::published_parameter")]
    star_thresholds: Vec<f64>,
    #[serde(default = "published_count_basis")]
    count_basis: f64,
}

/// The unit the publications' rates, and so their χ², are per.
fn published_count_basis() -> f64 {
    DEFAULT_RATE_PER
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: PearsonParams = params.parse()?;
    let stars = StarThresholds::from_parameter(p.star_thresholds)?;
    if !(p.count_basis.is_finite() && p.count_basis > 0.0) {
        return Err(ParamError {
            key: Some("count_basis".into()),
            message: format!(
                "`count_basis` must be a positive number of people, got {}",
                p.count_basis
            ),
        });
    }
    Ok(Configured::Significance(Box::new(
        ConfiguredPearsonRatesPer10k {
            stars,
            count_basis: p.count_basis,
        },
    )))
}

/// The method with the recipe's star thresholds and count basis.
struct ConfiguredPearsonRatesPer10k {
    stars: StarThresholds,
    /// Rates are re-expressed per this many people before the statistic.
    count_basis: f64,
}

/// The published Pearson chi-square on two rates per 10,000.
pub struct PearsonRatesPer10k;

impl PearsonRatesPer10k {
    /// χ² = (r2 − r1)² / (r1 + r2); NaN for a missing or negative rate or two zero rates.
    pub fn statistic(base_rate: f64, comparison_rate: f64) -> f64 {
        let valid = |r: f64| r.is_finite() && r >= 0.0;
        if !(valid(base_rate) && valid(comparison_rate)) {
            return f64::NAN;
        }
        let total = base_rate + comparison_rate;
        if total == 0.0 {
            return f64::NAN;
        }
        (comparison_rate - base_rate).powi(2) / total
    }

    pub fn test_rates(base_rate: f64, comparison_rate: f64) -> SignificanceResult {
        let statistic = Self::statistic(base_rate, comparison_rate);
        let p_value = if statistic.is_nan() {
            f64::NAN
        } else {
            chi_square_1df_sf(statistic)
        };
        SignificanceResult {
            statistic,
            p_value,
            stars: stars_for(p_value).to_string(),
        }
    }
}

fn chi_square_1df_sf(statistic: f64) -> f64 {
    match ChiSquared::new(1.0) {
        Ok(chi) => chi.sf(statistic),
        Err(_) => f64::NAN,
    }
}

impl SignificanceMethod for ConfiguredPearsonRatesPer10k {
    fn method_name(&self) -> String {
        self.stars.method_name(&format!(
            "Pearson chi-square on rates per {} (1 df)",
            rate_per_text(self.count_basis)
        ))
    }

    fn test(&self, comparisons: &[Comparison]) -> Result<Vec<SignificanceResult>, MethodError> {
        Ok(comparisons
            .iter()
            .map(|c| {
                // 1.0 when the recipe's unit is the count basis, so the published path does no
                // arithmetic on the rates.
                let to_basis = self.count_basis / c.rate_per;
                let (base, comparison) = if to_basis == 1.0 {
                    (c.base_rate, c.comparison_rate)
                } else {
                    (c.base_rate * to_basis, c.comparison_rate * to_basis)
                };
                let mut r = PearsonRatesPer10k::test_rates(base, comparison);
                r.stars = self.stars.stars(r.p_value);
                r
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_thresholds_are_a_parameter() {
        let configure =
            |text: &str| (DESCRIPTOR.configure)(&Params::from_toml_str(text).expect("toml"));
        let Ok(Configured::Significance(m)) = configure("star_thresholds = [0.1]") else {
            panic!("configures");
        };
        // 2973 vs 2465 per 10,000: chi-square 47.5, p about 6e-12: one star at the one threshold.
        let c = Comparison {
            base_rate: 2973.0,
            comparison_rate: 2465.0,
            base_observed: 0.0,
            comparison_observed: 0.0,
            base_expected: 0.0,
            comparison_expected: 0.0,
            rate_per: 10_000.0,
        };
        assert_eq!(m.test(&[c]).expect("test")[0].stars, "*");
        assert!(
            m.method_name().ends_with("; stars at p < 0.1"),
            "{}",
            m.method_name()
        );
        let Ok(Configured::Significance(published)) = configure("") else {
            panic!("configures");
        };
        assert_eq!(published.test(&[c]).expect("test")[0].stars, "***");
        assert_eq!(
            published.method_name(),
            "Pearson chi-square on rates per 10,000 (1 df)"
        );
        assert!(configure("star_thresholds = [0.01, 0.05]").is_err());
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} vs {expected} (rel tol {rel})"
        );
    }

    fn comparison(base_rate: f64, comparison_rate: f64) -> Comparison {
        Comparison {
            base_rate,
            comparison_rate,
            // Counts play no part in this method.
            base_observed: f64::NAN,
            comparison_observed: f64::NAN,
            base_expected: f64::NAN,
            comparison_expected: f64::NAN,
            rate_per: 10_000.0,
        }
    }

    #[test]
    fn rates_per_another_unit_are_tested_on_the_count_basis() {
        let configure =
            |text: &str| (DESCRIPTOR.configure)(&Params::from_toml_str(text).expect("toml"));
        let Ok(Configured::Significance(published)) = configure("") else {
            panic!("configures");
        };
        // §3.1's X-ray rates printed per 1,000 (297.3 and 246.5): the published χ² all the same.
        let per_thousand = Comparison {
            rate_per: 1_000.0,
            ..comparison(297.3, 246.5)
        };
        let r = &published.test(&[per_thousand]).expect("test")[0];
        assert_close(r.statistic, 47.4556822361162, 1e-12);
        assert_eq!(r.stars, "***");
        // A count basis of 1,000 is another test: χ² a tenth, named so.
        let Ok(Configured::Significance(thousand)) = configure("count_basis = 1000") else {
            panic!("configures");
        };
        let r = &thousand.test(&[per_thousand]).expect("test")[0];
        assert_close(r.statistic, 4.74556822361162, 1e-12);
        assert_eq!(
            thousand.method_name(),
            "Pearson chi-square on rates per 1,000 (1 df)"
        );
        for bad in ["count_basis = 0", "count_basis = -5", "count_basis = nan"] {
            let Err(e) = configure(bad) else {
                panic!("{bad} configures");
            };
            assert_eq!(e.key.as_deref(), Some("count_basis"), "{bad}");
        }
    }

    #[test]
    fn published_xray_sex_example_2020_21() {
        // §3.1: female 2,973, male 2,465 per 10,000; Table 1 shows male X-ray 0.77***.
        // χ² = 508² / 5,438 = 47.4556822361162; p = 5.62616232536121e-12 (mpmath).
        let r = PearsonRatesPer10k::test_rates(2973.0, 2465.0);
        assert_close(r.statistic, 47.4556822361162, 1e-12);
        assert_close(r.p_value, 5.62616232536121e-12, 1e-6);
        assert_eq!(r.stars, "***");
    }

    #[test]
    fn fluoroscopy_size_ratio_of_1_15_is_not_significant() {
        // 2020/21 Table 1: male fluoroscopy odds ratio 1.15 without a star; national rate 122 per
        // 10,000. With rates near it, 113 vs 130 (ratio 1.150): χ² = 17² / 243 = 1.18930041152263,
        // p = 0.275470716993432 (mpmath).
        let r = PearsonRatesPer10k::test_rates(113.0, 130.0);
        assert_close(r.statistic, 1.18930041152263, 1e-12);
        assert_close(r.p_value, 0.275470716993432, 1e-9);
        assert_eq!(r.stars, "");
    }

    #[test]
    fn symmetric_and_zero_for_equal_rates() {
        let a = PearsonRatesPer10k::test_rates(2465.0, 2973.0);
        let b = PearsonRatesPer10k::test_rates(2973.0, 2465.0);
        assert_eq!(a, b);
        let same = PearsonRatesPer10k::test_rates(2764.0, 2764.0);
        assert_eq!(same.statistic, 0.0);
        assert_eq!(same.p_value, 1.0);
        assert_eq!(same.stars, "");
    }

    #[test]
    fn tiny_p_values_come_from_the_survival_function() {
        // 500² / 2,500 = 100; p = 1.52397060483211e-23 (mpmath), which 1 − cdf would round to 0.
        let r = PearsonRatesPer10k::test_rates(1000.0, 1500.0);
        assert_eq!(r.statistic, 100.0);
        assert_close(r.p_value, 1.52397060483211e-23, 1e-6);
        assert_eq!(r.stars, "***");
    }

    #[test]
    fn missing_or_zero_rates_give_nan_and_no_stars() {
        for (a, b) in [
            (f64::NAN, 10.0),
            (10.0, f64::INFINITY),
            (-1.0, 5.0),
            (0.0, 0.0),
        ] {
            let r = PearsonRatesPer10k::test_rates(a, b);
            assert!(r.statistic.is_nan() && r.p_value.is_nan(), "{a} {b}");
            assert_eq!(r.stars, "");
        }
        // One zero rate is a defined comparison.
        let r = PearsonRatesPer10k::test_rates(0.0, 9.0);
        assert_eq!(r.statistic, 9.0);
    }

    #[test]
    fn trait_maps_each_comparison() {
        let Configured::Significance(method) = (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        let results = method
            .test(&[comparison(2973.0, 2465.0), comparison(113.0, 130.0)])
            .expect("test");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].stars, "***");
        assert_eq!(results[1].stars, "");
        assert!(method.method_name().contains("Pearson"));
    }

    #[test]
    fn unknown_param_is_refused_with_its_key() {
        let params = Params::from_toml_str("per = 1000").unwrap();
        let err = (DESCRIPTOR.configure)(&params).err().unwrap();
        assert_eq!(err.key.as_deref(), Some("per"));
    }
}
