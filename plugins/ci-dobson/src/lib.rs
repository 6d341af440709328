//! `ci.dobson` — Dobson's confidence limits for a directly standardised rate (a weighted sum of
//! Poisson counts), from the rate's variance that a direct standardisation gives
//! (`standardise.direct-dobson`, [`AreaRate::variance`]).
//!
//! With O the area's total tests, `(O_L, O_U)` the Poisson limits of O at the level, DSR the rate
//! and V its variance:
//!
//! ```text
//! lower = DSR + √(V / O) × (O_L − O)
//! upper = DSR + √(V / O) × (O_U − O)
//! ```
//!
//! `count_limits` (default `exact`) picks `(O_L, O_U)`: `exact` — Garwood's exact limits
//! `χ²(α/2; 2O)/2`, `χ²(1 − α/2; 2O + 2)/2`; `byar` — Byar's approximation to them, as
//! PHEindicatormethods' `calculate_dsr` uses.
//!
//! Edge cases: O = 0, or a missing rate or variance (an area with no DSR), gives no limits (NaN,
//! written empty). Rows without a variance at all (an indirect standardisation) are refused with an
//! error naming the plugin to choose. The funnel plots and a caller with only O, E and the national
//! rate get the same formula with the variance a DSR has when every stratum's weight is
//! proportional to its population, `V = DSR²/O`, i.e. the Poisson limits of O scaled:
//! `(O_L, O_U) / E × national rate`.
//!
//! Parameters: `levels` (default `[0.95, 0.998]`), `count_limits` (`exact` or `byar`).
//!
//! References: Dobson A.J., Kuulasmaa K., Eberle E. & Scherer J. (1991), *Confidence intervals for
//! weighted sums of Poisson parameters*, Statistics in Medicine 10, 457–462; Garwood F. (1936),
//! Biometrika 28; Breslow N.E. & Day N.E. (1987), *Statistical methods in cancer research, vol.
//! II*, IARC (Byar's approximation); UKHSA PHEindicatormethods (R), `R/DSR.R`.

use serde::Deserialize;
use strata_api::{
    AreaRate, ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
use strata_stats::{
    byar_lower, byar_upper, check_levels, default_levels, exact_lower, exact_upper, levels_label,
    limits_on_rate_scale,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.dobson",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Dobson's limits DSR + √(V/O)(O_L − O) for directly standardised rates",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DobsonParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
    #[serde(default = "default_count_limits")]
    count_limits: String,
}

fn default_count_limits() -> String {
    "exact".into()
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: DobsonParams = params.parse()?;
    check_levels(&p.levels)?;
    let byar = match p.count_limits.as_str() {
        "exact" => false,
        "byar" => true,
        other => {
            return Err(ParamError::new(
                "count_limits",
                format!("unknown count limits `{other}`: give `exact` or `byar`"),
            ));
        }
    };
    Ok(Configured::ConfidenceInterval(Box::new(Dobson {
        levels: p.levels,
        byar,
    })))
}

/// Dobson's limits at these levels, from exact or Byar Poisson limits of the count.
pub struct Dobson {
    pub levels: Vec<f64>,
    pub byar: bool,
}

impl Dobson {
    /// Poisson limits `(O_L, O_U)` of a count.
    pub fn count_limits(&self, observed: f64, level: f64) -> (f64, f64) {
        if self.byar {
            (byar_lower(observed, level), byar_upper(observed, level))
        } else {
            (exact_lower(observed, level), exact_upper(observed, level))
        }
    }

    /// Dobson's limits of one rate (NaN without a positive count, a rate or a variance).
    pub fn dobson(&self, observed: f64, rate: f64, variance: f64, level: f64) -> (f64, f64) {
        if !(observed > 0.0 && rate.is_finite() && variance.is_finite() && variance >= 0.0) {
            return (f64::NAN, f64::NAN);
        }
        let (lower, upper) = self.count_limits(observed, level);
        let slope = (variance / observed).sqrt();
        (
            rate + slope * (lower - observed),
            rate + slope * (upper - observed),
        )
    }
}

impl ConfidenceIntervalMethod for Dobson {
    fn method_name(&self) -> String {
        let counts = if self.byar { "Byar" } else { "exact Poisson" };
        format!("Dobson ({counts}) {}", levels_label(&self.levels))
    }

    fn limits(
        &self,
        observed: &[f64],
        expected: &[f64],
        scale: &[f64],
    ) -> Result<Vec<Limits>, MethodError> {
        Ok(limits_on_rate_scale(
            observed,
            expected,
            scale,
            &self.levels,
            |o, level| self.count_limits(o, level),
        ))
    }

    fn rate_limits(&self, rates: &[AreaRate]) -> Result<Vec<Limits>, MethodError> {
        if rates.iter().any(|r| r.variance.is_none()) {
            return Err(MethodError::new(
                "Dobson's limits need the variance of each directly standardised rate, which \
                 this standardisation does not give: choose `standardise.direct-dobson`",
            ));
        }
        Ok(self
            .levels
            .iter()
            .map(|&level| {
                let (lower, upper) = rates
                    .iter()
                    .map(|r| {
                        let variance = r.variance.unwrap_or(f64::NAN);
                        self.dobson(r.observed, r.standardised_rate, variance, level)
                    })
                    .unzip();
                Limits {
                    level,
                    lower,
                    upper,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(text: &str) -> Result<Box<dyn ConfidenceIntervalMethod>, ParamError> {
        match configure(&Params::from_toml_str(text).expect("toml"))? {
            Configured::ConfidenceInterval(m) => Ok(m),
            _ => panic!("a CI method"),
        }
    }

    /// PHEindicatormethods' DSR test data (`tests/testthat/testdata_DSR_ISR.xlsx`, commit
    /// 093fd28): population and tests of `testdata_big` and `testdata_small` by the 19 ESP bands.
    const POPULATION: [f64; 19] = [
        636.0, 558.0, 609.0, 543.0, 384.0, 594.0, 669.0, 843.0, 660.0, 576.0, 606.0, 522.0, 426.0,
        273.0, 300.0, 288.0, 153.0, 123.0, 207.0,
    ];
    const BIG: [f64; 19] = [
        127.0, 25.0, 18.0, 21.0, 12.0, 27.0, 48.0, 27.0, 29.0, 32.0, 32.0, 34.0, 45.0, 65.0, 38.0,
        68.0, 74.0, 82.0, 91.0,
    ];
    const SMALL: [f64; 19] = [
        12.0, 4.0, 3.0, 2.0, 3.0, 4.0, 8.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 5.0, 6.0, 5.0, 5.0,
        4.0,
    ];
    const ESP_2013: [f64; 19] = [
        5000.0, 5500.0, 5500.0, 5500.0, 6000.0, 6000.0, 6500.0, 7000.0, 7000.0, 7000.0, 7000.0,
        6500.0, 6000.0, 5500.0, 5000.0, 4000.0, 2500.0, 1500.0, 1000.0,
    ];

    /// The area row of a DSR per 100,000 computed by hand: DSR = 10⁵ Σ w t/n, V = 10¹⁰ Σ w² t/n²,
    /// w the ESP weight / 100,000.
    fn row(tests: &[f64; 19]) -> AreaRate {
        let w = |j: usize| ESP_2013[j] / 100_000.0;
        let rate: f64 = (0..19)
            .map(|j| w(j) * tests[j] / POPULATION[j])
            .sum::<f64>()
            * 1e5;
        let variance: f64 = (0..19)
            .map(|j| w(j) * w(j) * tests[j] / (POPULATION[j] * POPULATION[j]))
            .sum::<f64>()
            * 1e10;
        AreaRate {
            area: 0,
            measure: 0,
            observed: tests.iter().sum(),
            expected: f64::NAN,
            population: POPULATION.iter().sum(),
            crude_rate: f64::NAN,
            standardised_rate: rate,
            national_rate: f64::NAN,
            variance: Some(variance),
        }
    }

    #[test]
    fn byar_counts_reproduce_phe_indicator_methods_limits() {
        // testresults_DSR, dsr per 100,000: testdata_big 9,717.709067985681 to 11,178.94091547925
        // (95%) and 9,323.2878802199029 to 11,620.595999522058 (99.8%); testdata_small
        // 877.455767536709 to 1,367.0882227251795 and 763.64203579398793 to 1,530.0328948244762.
        let m = configured("count_limits = \"byar\"").expect("params");
        let l = m.rate_limits(&[row(&BIG), row(&SMALL)]).expect("limits");
        let want = [
            [
                (9_717.709_067_985_681, 11_178.940_915_479_25),
                (877.455_767_536_709, 1_367.088_222_725_179_5),
            ],
            [
                (9_323.287_880_219_903, 11_620.595_999_522_058),
                (763.642_035_793_987_9, 1_530.032_894_824_476_2),
            ],
        ];
        for (limits, want) in l.iter().zip(want) {
            for (i, (lower, upper)) in want.iter().enumerate() {
                assert!(
                    (limits.lower[i] - lower).abs() < 1e-6,
                    "{} {lower}",
                    limits.lower[i]
                );
                assert!(
                    (limits.upper[i] - upper).abs() < 1e-6,
                    "{} {upper}",
                    limits.upper[i]
                );
            }
        }
        assert_eq!(m.method_name(), "Dobson (Byar) 95%/99.8%");
    }

    #[test]
    fn exact_counts_are_dobson_with_garwood_limits() {
        let m = configured("levels = [0.95]").expect("params");
        let big = row(&BIG);
        let l = m.rate_limits(std::slice::from_ref(&big)).expect("limits");
        // By hand: DSR + √(V/O)(χ²(0.025; 1790)/2 − 895). Garwood's lower limit of 895 is
        // 837.3175; Byar's approximation, O(1 − 1/(9O) − z/(3√O))³ = 837.3169, differs from it by
        // under 0.001 at this count, so the limits are PHE's within a hundredth.
        let slope = (big.variance.unwrap() / 895.0).sqrt();
        let exact_lower = strata_stats::exact_lower(895.0, 0.95);
        let byar_lower =
            895.0 * (1.0 - 1.0 / (9.0 * 895.0) - 1.959_964 / (3.0 * 895f64.sqrt())).powi(3);
        assert!((exact_lower - 837.3175).abs() < 1e-4, "{exact_lower}");
        assert!((exact_lower - byar_lower).abs() < 1e-3, "{byar_lower}");
        assert!(
            (l[0].lower[0] - (big.standardised_rate + slope * (exact_lower - 895.0))).abs() < 1e-9
        );
        assert!(
            (l[0].lower[0] - 9_717.709).abs() < 0.01 && (l[0].upper[0] - 11_178.941).abs() < 0.01
        );
        assert_eq!(m.method_name(), "Dobson (exact Poisson) 95%");
    }

    #[test]
    fn rows_without_a_variance_are_refused_and_empty_rates_have_no_limits() {
        let m = configured("").expect("defaults");
        let mut indirect = row(&BIG);
        indirect.variance = None;
        let err = m.rate_limits(&[indirect]).unwrap_err();
        assert!(
            err.message.contains("standardise.direct-dobson"),
            "{}",
            err.message
        );
        let mut none = row(&SMALL);
        none.standardised_rate = f64::NAN;
        none.variance = Some(f64::NAN);
        let l = m.rate_limits(&[none]).expect("limits");
        assert!(l[0].lower[0].is_nan() && l[1].upper[0].is_nan());
        assert_eq!(
            configured("count_limits = \"wald\"")
                .err()
                .unwrap()
                .key
                .as_deref(),
            Some("count_limits")
        );
    }
}
