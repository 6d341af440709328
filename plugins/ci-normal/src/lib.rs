//! `ci.normal` — normal-approximation (Wald) confidence limits for the standardised ratio O/E, as
//! SAS PROC STDRATE gives them for an SMR with `CL=NORMAL`, multiplied by `scale` (the national
//! rate per 10,000) onto the standardised-rate scale.
//!
//! The Wald interval is on O itself, not on ln O (that is `ci.lognormal`, STDRATE's
//! `CL=LOGNORMAL`). Treating O as Poisson with E fixed, Var(O/E) = O/E², so with z the standard
//! normal quantile at `1 − α/2`:
//!
//! ```text
//! lower = max(0, O − z·√O) / E × scale
//! upper = (O + z·√O) / E × scale
//! ```
//!
//! Edge cases:
//! - The lower limit is clipped at 0 (a count cannot be negative), which happens for O < z²
//!   (O < 3.84 at 95%, O < 9.55 at 99.8%). STDRATE prints the negative value; clipping changes no
//!   conclusion (a ratio is never below 0) and keeps the lower limit rising with O, so the funnel
//!   limits (inverted from these) agree with the areas' own limits.
//! - O = 0 gives the zero-width interval (0, 0): the approximation's known failure, and the
//!   reason to prefer `ci.byar-exact` or `ci.midp-exact` for small counts.
//! - E = 0 (or negative, or not finite), and a negative or non-finite O: NaN limits.
//!
//! Parameters: `levels` (default `[0.95, 0.998]`), each strictly between 0 and 1.
//!
//! Reference: SAS Institute, *SAS/STAT User's Guide*, "The STDRATE Procedure", Details:
//! "Indirect Standardization and Standardized Morbidity/Mortality Ratio" (the Poisson variance of
//! the SMR, D/E²) and the `CL=NORMAL` option of the PROC STDRATE statement
//! (<https://support.sas.com/documentation/cdl/en/statug/68162/HTML/default/statug_stdrate_details23.htm>).

use serde::Deserialize;
use strata_api::{
    ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
use strata_stats::{check_levels, default_levels, levels_label, limits_on_rate_scale, two_sided_z};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.normal",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Normal-approximation (Wald) limits (O ± z√O)/E, as SAS PROC STDRATE CL=NORMAL",
    configure,
};

/// The recipe's `params` for this method (unknown keys are refused, naming the key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NormalParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: NormalParams = params.parse()?;
    Ok(Configured::ConfidenceInterval(Box::new(Normal::new(
        parsed.levels,
    )?)))
}

/// (lower, upper) on the count scale: O ∓ z·√O, the lower clipped at 0; NaN for an invalid O.
pub fn normal_count_limits(observed: f64, level: f64) -> (f64, f64) {
    if !(observed.is_finite() && observed >= 0.0) {
        return (f64::NAN, f64::NAN);
    }
    let half_width = two_sided_z(level) * observed.sqrt();
    ((observed - half_width).max(0.0), observed + half_width)
}

/// The normal-approximation method.
pub struct Normal {
    levels: Vec<f64>,
}

impl Normal {
    /// Checked constructor for callers outside the recipe path.
    pub fn new(levels: Vec<f64>) -> Result<Self, ParamError> {
        check_levels(&levels)?;
        Ok(Normal { levels })
    }
}

impl ConfidenceIntervalMethod for Normal {
    fn method_name(&self) -> String {
        format!("normal (Wald) {}", levels_label(&self.levels))
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
            normal_count_limits,
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

    // Reference values computed independently with SciPy 1.17.1 (scipy.stats.norm.ppf for z):
    // (O, E, scale, level, lower, upper) with lower = max(0, O − z√O)/E·scale.
    const SCIPY: &[(f64, f64, f64, f64, f64, f64)] = &[
        (1.0, 2.0, 50.0, 0.95, 0.0, 73.99909961350136),
        (1.0, 2.0, 50.0, 0.998, 0.0, 102.25580765419534),
        (4.0, 3.0, 8.0, 0.95, 0.2135254157863784, 21.119807917546954),
        (4.0, 3.0, 8.0, 0.998, 0.0, 27.147905632895004),
        (
            10.0,
            7.0,
            917.0,
            0.95,
            498.06850768102436,
            2121.931492318976,
        ),
        (
            10.0,
            7.0,
            917.0,
            0.998,
            29.84539116521354,
            2590.1546088347864,
        ),
        (
            100.0,
            80.0,
            917.0,
            0.95,
            921.5891282720964,
            1370.9108717279037,
        ),
        (
            100.0,
            80.0,
            917.0,
            0.998,
            792.0321219055144,
            1500.4678780944857,
        ),
        (
            3000.0,
            2900.0,
            3551.0,
            0.95,
            3541.9980330136627,
            3804.8985187104754,
        ),
        (
            3000.0,
            2900.0,
            3551.0,
            0.998,
            3466.1935557203237,
            3880.702996003814,
        ),
    ];

    #[test]
    fn agrees_with_scipy() {
        let method = Normal::new(vec![0.95, 0.998]).unwrap();
        for &(o, e, s, level, lower, upper) in SCIPY {
            let limits = method.limits(&[o], &[e], &[s]).expect("limits");
            let l = limits.iter().find(|l| l.level == level).unwrap();
            if lower == 0.0 {
                assert_eq!(l.lower[0], 0.0);
            } else {
                assert_close(l.lower[0], lower, 1e-12);
            }
            assert_close(l.upper[0], upper, 1e-12);
        }
    }

    #[test]
    fn limits_never_fall_as_the_count_rises() {
        for level in [0.95, 0.998] {
            let (mut lower, mut upper) = normal_count_limits(0.0, level);
            assert_eq!((lower, upper), (0.0, 0.0));
            for k in 1..400 {
                let (l, u) = normal_count_limits(k as f64, level);
                assert!(l >= lower && u > upper, "O {k} at {level}");
                (lower, upper) = (l, u);
            }
        }
    }

    #[test]
    fn bad_rows_give_nan() {
        let method = Normal::new(vec![0.95]).unwrap();
        let limits = method
            .limits(&[4.0, -1.0, f64::NAN], &[0.0, 2.0, 2.0], &[1.0, 1.0, 1.0])
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
    fn default_params_name_and_bad_params() {
        let Configured::ConfidenceInterval(method) =
            (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "normal (Wald) 95%/99.8%");
        for text in ["levels = [1.0]", "levels = [95.0]", "cl = \"wald\""] {
            let params = Params::from_toml_str(text).unwrap();
            let Err(error) = configure(&params) else {
                panic!("{text} accepted");
            };
            assert!(error.key.is_some(), "{text}: {error}");
        }
    }
}
