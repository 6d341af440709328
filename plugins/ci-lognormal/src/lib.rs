//! `ci.lognormal` — log-normal (delta-method) confidence limits for the standardised ratio O/E,
//! multiplied by `scale` (the national rate per 10,000) onto the standardised-rate scale.
//!
//! With z the standard normal quantile at `1 − α/2` for a two-sided level `1 − α`, and treating O as
//! Poisson so that the standard error of ln(O) is about 1/√O (E taken as fixed):
//!
//! ```text
//! lower = O/E × exp(−z/√O) × scale
//! upper = O/E × exp(+z/√O) × scale
//! ```
//!
//! Edge cases:
//! - O = 0: ln(O/E) is undefined, so the lower limit is 0 and the upper limit is the exact Poisson
//!   upper limit χ²(1 − α/2; 2) / 2 = −ln(α/2), divided by E and scaled (as `ci.exact` gives it).
//! - E = 0 (or negative, or not finite), and a negative or non-finite O: NaN limits.
//!
//! The approximation is poor for small O (the limits are symmetric on the log scale, while the
//! Poisson is skewed); prefer `ci.byar-exact` unless comparing methods.
//!
//! Parameters: `levels` (default `[0.95, 0.998]`), each strictly between 0 and 1.
//!
//! Reference: Breslow N.E., Day N.E. (1987), *Statistical methods in cancer research, vol. II*,
//! IARC (log-transformed limits for the SMR).

use serde::Deserialize;
use strata_api::{
    ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
use strata_stats::{
    check_levels, default_levels, exact_upper, levels_label, limits_on_rate_scale, two_sided_z,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.lognormal",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Log-normal limits O/E × exp(±z/√O); exact upper limit at O = 0",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogNormalParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: LogNormalParams = params.parse()?;
    Ok(Configured::ConfidenceInterval(Box::new(LogNormal::new(
        parsed.levels,
    )?)))
}

/// (lower, upper) on the count scale: O × exp(∓z/√O); (0, exact upper) at O = 0.
pub fn lognormal_count_limits(observed: f64, level: f64) -> (f64, f64) {
    if !(observed.is_finite() && observed >= 0.0) {
        return (f64::NAN, f64::NAN);
    }
    if observed == 0.0 {
        return (0.0, exact_upper(0.0, level));
    }
    let half_width = two_sided_z(level) / observed.sqrt();
    (observed * (-half_width).exp(), observed * half_width.exp())
}

/// The log-normal method.
pub struct LogNormal {
    levels: Vec<f64>,
}

impl LogNormal {
    pub fn new(levels: Vec<f64>) -> Result<Self, ParamError> {
        check_levels(&levels)?;
        Ok(LogNormal { levels })
    }
}

impl ConfidenceIntervalMethod for LogNormal {
    fn method_name(&self) -> String {
        format!("log-normal {}", levels_label(&self.levels))
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
            lognormal_count_limits,
        ))
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

    fn params(text: &str) -> Params {
        Params::from_toml_str(text).expect("valid toml")
    }

    #[test]
    fn hand_worked_values() {
        // O = 100, E = 80, scale 917: 100/80 × 917 = 1146.25; z/√100 = 0.195996398454005;
        // exp(∓0.195996398454005) = 0.822015195198389 / 1.21652252396460 (mpmath)
        // → 942.234917496153 / 1394.43894309443.
        let method = LogNormal::new(vec![0.95]).unwrap();
        let limits = method.limits(&[100.0], &[80.0], &[917.0]).expect("limits");
        assert_close(limits[0].lower[0], 942.234917496153, 1e-12);
        assert_close(limits[0].upper[0], 1394.43894309443, 1e-12);
    }

    #[test]
    fn close_to_exact_for_large_counts() {
        // At O = 100 the exact 95% limits are 81.3639912509231 and 121.626793792426 (mpmath); the
        // log-normal ones, 82.2015195198389 and 121.652252396460, are 1.03% and 0.021% away.
        let (l, u) = lognormal_count_limits(100.0, 0.95);
        assert_close(l, 81.3639912509231, 0.011);
        assert_close(u, 121.626793792426, 0.0003);
    }

    #[test]
    fn zero_observed_uses_exact_upper() {
        let method = LogNormal::new(vec![0.95, 0.998]).unwrap();
        let limits = method.limits(&[0.0], &[2.0], &[50.0]).expect("limits");
        assert_eq!(limits[0].lower[0], 0.0);
        assert_eq!(limits[1].lower[0], 0.0);
        // −ln(0.025) = 3.68887945411394 and −ln(0.001) = 6.90775527898214 (mpmath).
        assert_close(limits[0].upper[0], 3.68887945411394 / 2.0 * 50.0, 1e-9);
        assert_close(limits[1].upper[0], 6.90775527898214 / 2.0 * 50.0, 1e-9);
    }

    #[test]
    fn limits_bracket_the_standardised_rate() {
        let method = LogNormal::new(default_levels()).unwrap();
        let observed = [0.0, 1.0, 9.0, 10.0, 500.0, 3_000_000.0];
        let expected = [0.5, 3.0, 11.0, 7.0, 480.0, 2_900_000.0];
        let scale = [5.0, 33.0, 122.0, 917.0, 2764.0, 3551.0];
        let limits = method.limits(&observed, &expected, &scale).expect("limits");
        for l in &limits {
            for i in 0..observed.len() {
                let rate = observed[i] / expected[i] * scale[i];
                assert!(l.lower[i] <= rate && rate < l.upper[i], "row {i}: {l:?}");
            }
        }
    }

    #[test]
    fn zero_expected_gives_nan() {
        let method = LogNormal::new(vec![0.95]).unwrap();
        let limits = method
            .limits(&[4.0, -1.0], &[0.0, 2.0], &[1.0, 1.0])
            .expect("limits");
        assert!(
            limits[0]
                .lower
                .iter()
                .chain(&limits[0].upper)
                .all(|v| v.is_nan())
        );
    }

    #[test]
    fn default_params_and_method_name() {
        let Configured::ConfidenceInterval(method) =
            (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "log-normal 95%/99.8%");
    }

    #[test]
    fn bad_params_are_refused_with_the_key() {
        let err = (DESCRIPTOR.configure)(&params("byar_from = 10"))
            .err()
            .unwrap();
        assert_eq!(err.key.as_deref(), Some("byar_from"));
        for text in ["levels = [1.0]", "levels = [95.0]", "levels = [0.95, -0.1]"] {
            let err = (DESCRIPTOR.configure)(&params(text)).err().unwrap();
            assert_eq!(err.key.as_deref(), Some("levels"), "{text}: {err}");
        }
    }
}
