//! `ci.exact` — exact Poisson confidence limits on the observed count O, at every O, divided by the
//! expected count E and scaled onto the standardised-rate scale.
//!
//! For a two-sided level `1 − α` (e.g. 0.95), with χ²(p; k) the p-quantile of the chi-square
//! distribution with k degrees of freedom:
//!
//! ```text
//! lower_count = χ²(α/2; 2O) / 2          (0 when O = 0)
//! upper_count = χ²(1 − α/2; 2O + 2) / 2
//! lower = lower_count / E × scale,  upper = upper_count / E × scale
//! ```
//!
//! These are the Garwood limits: the Poisson means at which P(X ≥ O) = α/2 and P(X ≤ O) = α/2.
//! `scale[i]` is the national rate per 10,000, so limits come back on the same scale as the
//! standardised rate `O / E × scale`.
//!
//! Edge cases: E = 0 (or negative, or not finite) gives NaN limits: there is no ratio to bound.
//! A negative or non-finite O also gives NaN. O = 0 gives a lower limit of exactly 0.
//!
//! Parameters: `levels` (default `[0.95, 0.998]`), each strictly between 0 and 1.
//!
//! The count-scale limit functions and the level checks are `strata-stats`', which `ci.byar-exact`
//! and `ci.lognormal` use too, so the three methods share one implementation of the exact limits.
//!
//! References: Garwood F. (1936), *Fiducial limits for the Poisson distribution*, Biometrika 28;
//! UKHSA PHEindicatormethods (R), `R/ISRatio.R` (the same qchisq formulae for O < 10).

use serde::Deserialize;
use strata_api::{
    ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
pub use strata_stats::{
    DEFAULT_LEVELS, check_levels, default_levels, exact_lower, exact_upper, level_label,
    levels_label, limits_on_rate_scale, two_sided_z,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.exact",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Exact Poisson (chi-square) limits on the observed count, divided by expected",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: ExactParams = params.parse()?;
    check_levels(&parsed.levels)?;
    Ok(Configured::ConfidenceInterval(Box::new(ExactPoisson {
        levels: parsed.levels,
    })))
}

/// The exact Poisson method.
pub struct ExactPoisson {
    levels: Vec<f64>,
}

impl ExactPoisson {
    /// Checked constructor for callers outside the recipe path.
    pub fn new(levels: Vec<f64>) -> Result<Self, ParamError> {
        check_levels(&levels)?;
        Ok(ExactPoisson { levels })
    }
}

impl ConfidenceIntervalMethod for ExactPoisson {
    fn method_name(&self) -> String {
        format!("exact Poisson {}", levels_label(&self.levels))
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
            |o, level| (exact_lower(o, level), exact_upper(o, level)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs()
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            close(actual, expected, rel),
            "{actual} vs {expected} (rel tol {rel})"
        );
    }

    fn params(text: &str) -> Params {
        Params::from_toml_str(text).expect("valid toml")
    }

    // Reference values computed independently with mpmath at 30 significant digits, solving the
    // regularized incomplete gamma function for the chi-square quantiles in the formulae above.
    #[test]
    fn hand_worked_values_from_mpmath() {
        // O = 0: upper = −ln(α/2).
        assert_eq!(exact_lower(0.0, 0.95), 0.0);
        assert_close(exact_upper(0.0, 0.95), 3.68887945411394, 1e-9);
        assert_close(exact_upper(0.0, 0.998), 6.90775527898214, 1e-9);
        assert_close(exact_lower(1.0, 0.95), 0.0253178079842899, 1e-9);
        assert_close(exact_upper(1.0, 0.95), 5.5716433909389, 1e-9);
        assert_close(exact_lower(9.0, 0.95), 4.11537309737833, 1e-9);
        assert_close(exact_upper(9.0, 0.95), 17.0848034514192, 1e-9);
        assert_close(exact_lower(9.0, 0.998), 2.45242440436377, 1e-9);
        assert_close(exact_upper(9.0, 0.998), 22.6573733090629, 1e-9);
        assert_close(exact_lower(100.0, 0.95), 81.3639912509231, 1e-9);
        assert_close(exact_upper(100.0, 0.95), 121.626793792426, 1e-9);
        assert_close(exact_lower(100.0, 0.998), 71.9213974950004, 1e-9);
        assert_close(exact_upper(100.0, 0.998), 134.924319061264, 1e-9);
    }

    // Published values: UKHSA PHEindicatormethods, tests/testthat/testdata_funnel_ratio_outputs.csv
    // (github.com/ukhsa-collaboration/PHEindicatormethods). Its columns upper_2s_exp_events /
    // lower_2s_exp_events (and _3s_) are the Poisson means at which the observed count sits on the
    // 95% (99.8%) limit, found by the package's iterative `poisson_funnel` search: they are the
    // exact lower / upper limits. Their search stops early, so they agree with the quantile form to
    // about 5e-5 relative (checked against mpmath), hence the tolerance.
    #[test]
    fn published_pheindicatormethods_funnel_values() {
        // (O, lower 95%, upper 95%, lower 99.8%, upper 99.8%)
        let published = [
            (1.0, 0.025317898, 5.571644585, 0.001000547, 9.233410143),
            (9.0, 4.11537405, 17.08479966, 2.452425215, 22.65737951),
            (10.0, 4.795387629, 18.39035799, 2.960519925, 24.13397235),
            (100.0, 81.36400699, 121.6268111, 71.92139974, 134.9243187),
        ];
        for (o, l95, u95, l998, u998) in published {
            assert_close(exact_lower(o, 0.95), l95, 1e-4);
            assert_close(exact_upper(o, 0.95), u95, 1e-4);
            assert_close(exact_lower(o, 0.998), l998, 1e-4);
            assert_close(exact_upper(o, 0.998), u998, 1e-4);
        }
    }

    #[test]
    fn limits_are_divided_by_expected_and_scaled() {
        let method = ExactPoisson::new(vec![0.95]).unwrap();
        let limits = method.limits(&[9.0], &[4.5], &[122.0]).expect("limits");
        assert_eq!(limits.len(), 1);
        assert_close(limits[0].lower[0], 4.11537309737833 / 4.5 * 122.0, 1e-9);
        assert_close(limits[0].upper[0], 17.0848034514192 / 4.5 * 122.0, 1e-9);
    }

    #[test]
    fn limits_bracket_the_standardised_rate() {
        let method = ExactPoisson::new(default_levels()).unwrap();
        let observed = [0.0, 1.0, 3.0, 9.0, 10.0, 57.0, 1234.0, 250_000.0];
        let expected = [2.0, 0.7, 5.5, 8.1, 12.0, 40.0, 1300.0, 245_000.0];
        let scale = [122.0, 2764.0, 5.0, 917.0, 33.0, 1347.0, 44.0, 3551.0];
        let limits = method.limits(&observed, &expected, &scale).expect("limits");
        assert_eq!(limits.len(), 2);
        for l in &limits {
            for i in 0..observed.len() {
                let rate = observed[i] / expected[i] * scale[i];
                assert!(l.lower[i] <= rate && rate < l.upper[i], "row {i}: {l:?}");
                assert!(l.lower[i] >= 0.0);
            }
        }
        // The wider level contains the narrower one.
        for i in 0..observed.len() {
            assert!(limits[1].lower[i] <= limits[0].lower[i]);
            assert!(limits[1].upper[i] >= limits[0].upper[i]);
        }
    }

    #[test]
    fn large_counts_stay_accurate() {
        // Exact and Byar's limits converge as O grows: at O = 100 they already differ by only
        // 2.3e-5 (lower) and 9.4e-6 (upper) relative (mpmath values above and in ci-byar-exact).
        // At O = 1,000,000 Byar's 95% limits (mpmath) are 998040.983324986 and 1001961.91196067;
        // this checks that statrs keeps its precision at two million degrees of freedom.
        assert_close(exact_lower(1e6, 0.95), 998040.983324986, 1e-6);
        assert_close(exact_upper(1e6, 0.95), 1001961.91196067, 1e-6);
    }

    #[test]
    fn zero_expected_gives_nan() {
        let method = ExactPoisson::new(vec![0.95]).unwrap();
        let limits = method
            .limits(
                &[5.0, 5.0, f64::NAN],
                &[0.0, -1.0, 3.0],
                &[10.0, 10.0, 10.0],
            )
            .expect("limits");
        assert!(limits[0].lower.iter().all(|v| v.is_nan()));
        assert!(limits[0].upper.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn zero_observed_has_zero_lower_limit() {
        let method = ExactPoisson::new(default_levels()).unwrap();
        let limits = method.limits(&[0.0], &[2.0], &[100.0]).expect("limits");
        for l in &limits {
            assert_eq!(l.lower[0], 0.0);
            assert!(l.upper[0] > 0.0);
        }
    }

    #[test]
    fn short_inputs_give_nan_not_panic() {
        let method = ExactPoisson::new(vec![0.95]).unwrap();
        let limits = method.limits(&[5.0, 6.0], &[5.0], &[]).expect("limits");
        assert_eq!(limits[0].lower.len(), 2);
        assert!(limits[0].lower[1].is_nan());
    }

    #[test]
    fn default_params_and_method_name() {
        let configured = (DESCRIPTOR.configure)(&Params::default()).unwrap();
        let Configured::ConfidenceInterval(method) = configured else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "exact Poisson 95%/99.8%");
        assert_eq!(
            method.limits(&[3.0], &[3.0], &[1.0]).expect("limits").len(),
            2
        );
    }

    #[test]
    fn unknown_param_is_refused_with_its_key() {
        let err = (DESCRIPTOR.configure)(&params("levels = [0.95]\nlevel = 0.9"))
            .err()
            .unwrap();
        assert_eq!(err.key.as_deref(), Some("level"));
    }

    #[test]
    fn levels_outside_zero_one_are_refused_with_the_key() {
        for text in [
            "levels = [95.0]",
            "levels = [0.95, 1.0]",
            "levels = [0.0]",
            "levels = [-0.5]",
            "levels = []",
            "levels = [0.95, 0.95]",
        ] {
            let err = (DESCRIPTOR.configure)(&params(text)).err().unwrap();
            assert_eq!(err.key.as_deref(), Some("levels"), "{text}: {err}");
        }
        let err = (DESCRIPTOR.configure)(&params("levels = \"95%\""))
            .err()
            .unwrap();
        assert_eq!(err.key.as_deref(), Some("levels"));
    }

    #[test]
    fn level_labels() {
        assert_eq!(level_label(0.95), "95%");
        assert_eq!(level_label(0.998), "99.8%");
        assert_eq!(level_label(0.9), "90%");
        assert_eq!(levels_label(&[0.95, 0.998]), "95%/99.8%");
    }

    #[test]
    fn z_values() {
        // qnorm(0.975) and qnorm(0.999), mpmath.
        assert_close(two_sided_z(0.95), 1.95996398454005, 1e-9);
        assert_close(two_sided_z(0.998), 3.09023230616781, 1e-9);
    }
}
