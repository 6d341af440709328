//! `ci.byar-exact` — the default confidence limits for standardised rates (SPEC §2.4): exact Poisson
//! limits on the observed count O when O is small, Byar's approximation when it is not, each divided
//! by the expected count E and multiplied by `scale` (the national rate per 10,000), so the limits
//! are on the standardised-rate scale.
//!
//! For a two-sided level `1 − α` with z the standard normal quantile at `1 − α/2`:
//!
//! ```text
//! O < byar_from (exact):  lower = χ²(α/2; 2O) / 2            (0 when O = 0)
//!                         upper = χ²(1 − α/2; 2O + 2) / 2
//! O ≥ byar_from (Byar):   lower = O (1 − 1/(9O) − z/(3√O))³
//!                         upper = (O + 1) (1 − 1/(9(O + 1)) + z/(3√(O + 1)))³
//! limits = count limits / E × scale
//! ```
//!
//! This is the rule of the UKHSA PHEindicatormethods R package (`calculate_ISRatio`: exact for
//! O < 10, Byar's from 10), whose formulae these follow.
//!
//! Parameters:
//! - `levels` (default `[0.95, 0.998]`): each strictly between 0 and 1;
//! - `byar_from` (default `10`, at least 1): the smallest count at which Byar's method is used.
//!
//! Edge cases: E = 0 (or negative, or not finite) gives NaN limits — there is no ratio to bound.
//! A negative or non-finite O gives NaN. O = 0 gives a lower limit of exactly 0. Byar's lower limit
//! is clamped at 0 where its cubed term would be negative (e.g. O = 1 at 99.8%, reachable only when
//! `byar_from` is lowered).
//!
//! References: Breslow N.E., Day N.E. (1987), *Statistical methods in cancer research, vol. II*,
//! IARC (Byar's method); UKHSA PHEindicatormethods, `R/Byars.R` and `R/ISRatio.R`.

use serde::Deserialize;
use strata_api::{
    ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
use strata_stats::{
    check_levels, default_levels, exact_lower, exact_upper, levels_label, limits_on_rate_scale,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.byar-exact",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Exact Poisson limits for O < 10, Byar's approximation from 10, divided by expected",
    configure,
};

/// The count from which Byar's approximation replaces the exact limits by default.
pub const DEFAULT_BYAR_FROM: u32 = 10;

fn default_byar_from() -> u32 {
    DEFAULT_BYAR_FROM
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ByarExactParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
    #[serde(default = "default_byar_from")]
    byar_from: u32,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: ByarExactParams = params.parse()?;
    let method = ByarExact::new(parsed.levels, parsed.byar_from)?;
    Ok(Configured::ConfidenceInterval(Box::new(method)))
}

// Byar's limits live in strata-stats (Dobson's direct-standardisation limits use them too).
pub use strata_stats::{byar_lower, byar_upper};

/// Exact below `byar_from`, Byar's from it.
pub struct ByarExact {
    levels: Vec<f64>,
    byar_from: u32,
}

impl ByarExact {
    /// Checked constructor: levels in (0, 1), `byar_from` at least 1 (Byar's is undefined at 0).
    pub fn new(levels: Vec<f64>, byar_from: u32) -> Result<Self, ParamError> {
        check_levels(&levels)?;
        if byar_from < 1 {
            return Err(ParamError::new(
                "byar_from",
                "byar_from must be at least 1: Byar's method is undefined at a count of 0",
            ));
        }
        Ok(ByarExact { levels, byar_from })
    }

    /// (lower, upper) on the count scale for one observed count.
    pub fn count_limits(&self, observed: f64, level: f64) -> (f64, f64) {
        if observed < f64::from(self.byar_from) {
            (exact_lower(observed, level), exact_upper(observed, level))
        } else {
            (byar_lower(observed, level), byar_upper(observed, level))
        }
    }
}

impl ConfidenceIntervalMethod for ByarExact {
    fn method_name(&self) -> String {
        let name = format!("byar-exact {}", levels_label(&self.levels));
        if self.byar_from == DEFAULT_BYAR_FROM {
            name
        } else {
            format!("{name} (Byar from O={})", self.byar_from)
        }
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

    fn default_method() -> ByarExact {
        ByarExact::new(default_levels(), DEFAULT_BYAR_FROM).unwrap()
    }

    // Byar's formula as in UKHSA PHEindicatormethods R/Byars.R (byars_lower / byars_upper, with
    // z = qnorm(confidence + (1 − confidence)/2)); reference values computed with mpmath at 30
    // significant digits.
    #[test]
    fn byar_hand_worked_values_from_mpmath() {
        assert_close(byar_lower(10.0, 0.95), 4.78744991396756, 1e-12);
        assert_close(byar_upper(10.0, 0.95), 18.3914586057565, 1e-12);
        assert_close(byar_lower(10.0, 0.998), 2.91631837469569, 1e-12);
        assert_close(byar_upper(10.0, 0.998), 24.1937249278805, 1e-12);
        assert_close(byar_lower(100.0, 0.95), 81.3621054905279, 1e-12);
        assert_close(byar_upper(100.0, 0.95), 121.627937579206, 1e-12);
        assert_close(byar_lower(100.0, 0.998), 71.9036918725984, 1e-12);
        assert_close(byar_upper(100.0, 0.998), 134.943621762263, 1e-12);
        assert_close(byar_lower(1e6, 0.95), 998040.983324986, 1e-12);
        assert_close(byar_upper(1e6, 0.95), 1001961.91196067, 1e-12);
    }

    #[test]
    fn switch_at_ten_is_exact_below_and_byar_from() {
        let method = default_method();
        // O = 9 at 95% and 99.8%: exact (mpmath; PHEindicatormethods funnel test data gives
        // 4.11537405 / 17.08479966 and 2.452425215 / 22.65737951 from its own iterative search).
        let (l, u) = method.count_limits(9.0, 0.95);
        assert_close(l, 4.11537309737833, 1e-9);
        assert_close(u, 17.0848034514192, 1e-9);
        let (l, u) = method.count_limits(9.0, 0.998);
        assert_close(l, 2.45242440436377, 1e-9);
        assert_close(u, 22.6573733090629, 1e-9);
        // O = 10: Byar's (the exact values would be 4.79538869613243 / 18.3903560420178).
        let (l, u) = method.count_limits(10.0, 0.95);
        assert_close(l, 4.78744991396756, 1e-12);
        assert_close(u, 18.3914586057565, 1e-12);
        let (l, u) = method.count_limits(10.0, 0.998);
        assert_close(l, 2.91631837469569, 1e-12);
        assert_close(u, 24.1937249278805, 1e-12);
    }

    #[test]
    fn byar_from_moves_the_switch() {
        let method = ByarExact::new(vec![0.95], 11).unwrap();
        let (l, _) = method.count_limits(10.0, 0.95);
        assert_close(l, 4.79538869613243, 1e-9);
        assert_eq!(method.method_name(), "byar-exact 95% (Byar from O=11)");
    }

    #[test]
    fn zero_observed_has_zero_lower_limit() {
        let limits = default_method()
            .limits(&[0.0], &[3.2], &[122.0])
            .expect("limits");
        assert_eq!(limits.len(), 2);
        assert_eq!(limits[0].lower[0], 0.0);
        assert_eq!(limits[1].lower[0], 0.0);
        // −ln(0.025) / 3.2 × 122 (mpmath: −ln(0.025) = 3.68887945411394).
        assert_close(limits[0].upper[0], 3.68887945411394 / 3.2 * 122.0, 1e-9);
    }

    #[test]
    fn limits_are_on_the_rate_scale() {
        // 100 observed against 80 expected, national rate 917 per 10,000.
        let limits = default_method()
            .limits(&[100.0], &[80.0], &[917.0])
            .expect("limits");
        assert_close(limits[0].lower[0], 81.3621054905279 / 80.0 * 917.0, 1e-12);
        assert_close(limits[0].upper[0], 121.627937579206 / 80.0 * 917.0, 1e-12);
        assert_close(limits[1].lower[0], 71.9036918725984 / 80.0 * 917.0, 1e-12);
        assert_close(limits[1].upper[0], 134.943621762263 / 80.0 * 917.0, 1e-12);
    }

    #[test]
    fn limits_bracket_the_standardised_rate() {
        let method = default_method();
        let observed = [0.0, 1.0, 2.0, 9.0, 10.0, 11.0, 99.0, 4321.0, 2_000_000.0];
        let expected = [1.5, 0.4, 6.0, 9.5, 9.0, 30.0, 80.0, 4000.0, 2_100_000.0];
        let scale = [5.0, 33.0, 122.0, 44.0, 917.0, 2764.0, 1347.0, 93.0, 3551.0];
        let limits = method.limits(&observed, &expected, &scale).expect("limits");
        for l in &limits {
            for i in 0..observed.len() {
                let rate = observed[i] / expected[i] * scale[i];
                assert!(l.lower[i] <= rate && rate < l.upper[i], "row {i}: {l:?}");
                assert!(l.lower[i] >= 0.0);
            }
        }
        for i in 0..observed.len() {
            assert!(limits[1].lower[i] <= limits[0].lower[i]);
            assert!(limits[1].upper[i] >= limits[0].upper[i]);
        }
    }

    #[test]
    fn zero_expected_gives_nan() {
        let limits = default_method()
            .limits(&[12.0, 3.0], &[0.0, 0.0], &[100.0, 100.0])
            .expect("limits");
        for l in &limits {
            assert!(l.lower.iter().chain(&l.upper).all(|v| v.is_nan()));
        }
    }

    #[test]
    fn byar_lower_never_negative() {
        // At O = 1, 99.8% (z = 3.0902): 1 − 1/9 − z/3 = −0.141, so the cube is negative; the limit
        // is clamped at 0. Reachable only when byar_from is lowered to 1.
        assert_eq!(byar_lower(1.0, 0.998), 0.0);
        let method = ByarExact::new(vec![0.998], 1).unwrap();
        assert_eq!(
            method.limits(&[1.0], &[1.0], &[1.0]).expect("limits")[0].lower[0],
            0.0
        );
    }

    #[test]
    fn default_params_and_method_name() {
        let Configured::ConfidenceInterval(method) =
            (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "byar-exact 95%/99.8%");
        let limits = method.limits(&[20.0], &[20.0], &[1.0]).expect("limits");
        assert_eq!(limits.len(), 2);
        assert_eq!(limits[0].level, 0.95);
        assert_eq!(limits[1].level, 0.998);
    }

    #[test]
    fn explicit_params_are_accepted() {
        let Configured::ConfidenceInterval(method) =
            (DESCRIPTOR.configure)(&params("levels = [0.9]\nbyar_from = 10")).unwrap()
        else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "byar-exact 90%");
    }

    #[test]
    fn unknown_param_is_refused_with_its_key() {
        let err = (DESCRIPTOR.configure)(&params("byar_form = 10"))
            .err()
            .unwrap();
        assert_eq!(err.key.as_deref(), Some("byar_form"));
    }

    #[test]
    fn bad_levels_and_byar_from_are_refused_with_the_key() {
        for text in ["levels = [1.5]", "levels = [0.95, 0.0]", "levels = [99.8]"] {
            let err = (DESCRIPTOR.configure)(&params(text)).err().unwrap();
            assert_eq!(err.key.as_deref(), Some("levels"), "{text}: {err}");
        }
        for text in ["byar_from = 0", "byar_from = -1", "byar_from = 9.5"] {
            let err = (DESCRIPTOR.configure)(&params(text)).err().unwrap();
            assert_eq!(err.key.as_deref(), Some("byar_from"), "{text}: {err}");
        }
    }
}
