//! `ci.midp-exact` — mid-p exact Poisson confidence limits on the observed count O, divided by the
//! expected count E and scaled onto the standardised-rate scale.
//!
//! For a two-sided level `1 − α` and X ~ Poisson(μ), the limits on the count scale are the means
//!
//! ```text
//! lower_count: P(X > O; μ) + ½·P(X = O; μ) = α/2      (0 when O = 0)
//! upper_count: P(X < O; μ) + ½·P(X = O; μ) = α/2      (−ln α when O = 0)
//! lower = lower_count / E × scale,  upper = upper_count / E × scale
//! ```
//!
//! Counting only half the probability of the observed count makes the limits narrower than the
//! exact (Garwood) ones of `ci.exact`, with coverage close to the nominal level rather than at
//! least it. The tails are evaluated through the regularized incomplete gamma function, so a
//! non-integer O (a weighted or imputed count) is handled continuously; the roots are found by
//! bisection between the Garwood limit and O (`strata-stats`). Both limits rise with O, so the
//! funnel limits (inverted from these limits) agree with the areas' own limits.
//!
//! Edge cases: E = 0 (or negative, or not finite) gives NaN limits: there is no ratio to bound.
//! A negative or non-finite O also gives NaN. O = 0 gives a lower limit of exactly 0.
//!
//! Parameters: `levels` (default `[0.95, 0.998]`), each strictly between 0 and 1.
//!
//! References: Rothman K.J., Greenland S., Lash T.L. (2008), *Modern Epidemiology*, 3rd ed.,
//! ch. 14 (mid-P limits); Dean A.G., Sullivan K.M., Soe M.M., *OpenEpi*, "Person-time rate"
//! (the same mid-P exact limits). The unit tests' figures were computed independently with
//! SciPy's Poisson distribution and a Brent root finder (see the test).

use serde::Deserialize;
use strata_api::{
    ConfidenceIntervalMethod, Configured, Limits, MethodError, ParamError, Params,
    PluginDescriptor, StageKind,
};
use strata_stats::{
    check_levels, default_levels, levels_label, limits_on_rate_scale, midp_lower, midp_upper,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ci.midp-exact",
    stage: StageKind::ConfidenceInterval,
    version: env!("CARGO_PKG_VERSION"),
    description: "Mid-p exact Poisson limits on the observed count, divided by expected",
    configure,
};

/// The recipe's `params` for this method (unknown keys are refused, naming the key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MidpParams {
    #[serde(default = "default_levels")]
    levels: Vec<f64>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: MidpParams = params.parse()?;
    Ok(Configured::ConfidenceInterval(Box::new(MidpExact::new(
        parsed.levels,
    )?)))
}

/// The mid-p exact Poisson method.
pub struct MidpExact {
    levels: Vec<f64>,
}

impl MidpExact {
    /// Checked constructor for callers outside the recipe path.
    pub fn new(levels: Vec<f64>) -> Result<Self, ParamError> {
        check_levels(&levels)?;
        Ok(MidpExact { levels })
    }
}

impl ConfidenceIntervalMethod for MidpExact {
    fn method_name(&self) -> String {
        format!("mid-p exact Poisson {}", levels_label(&self.levels))
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
            |o, level| (midp_lower(o, level), midp_upper(o, level)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_stats::{exact_lower, exact_upper};

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} vs {expected} (rel tol {rel})"
        );
    }

    // Reference values computed independently with SciPy 1.x (scipy.stats.poisson, integer O)
    // and scipy.optimize.brentq at xtol 1e-14, solving
    //   lower: poisson.sf(O, μ) + 0.5·poisson.pmf(O, μ) = α/2
    //   upper: poisson.cdf(O − 1, μ) + 0.5·poisson.pmf(O, μ) = α/2
    // The script is in the commit message that added this crate; SciPy 1.17.1.
    const SCIPY: &[(f64, f64, f64, f64)] = &[
        // (O, level, lower, upper)
        (1.0, 0.95, 0.050020344835335545, 4.931860524706773),
        (1.0, 0.998, 0.0020000013320034386, 8.572902454195624),
        (2.0, 0.95, 0.3353290555092989, 6.6079597474536005),
        (2.0, 0.998, 0.06393012412386335, 10.586750314542089),
        (5.0, 0.95, 1.8319948085284175, 11.082415664992014),
        (5.0, 0.998, 0.8416930900170551, 15.841912223188505),
        (10.0, 0.95, 5.0795218472173405, 17.82485369656968),
        (10.0, 0.998, 3.1478374616503983, 23.54373268651108),
        (17.0, 0.95, 10.233937926084122, 26.666290497200855),
        (17.0, 0.998, 7.276497444397207, 33.41829130987669),
        (100.0, 0.95, 81.7918210920123, 121.10349089745777),
        (100.0, 0.998, 72.30964923819296, 134.38916623145204),
        (1000.0, 0.95, 939.4498990064538, 1063.4445074654343),
        (1000.0, 0.998, 905.58451939723, 1101.1150825921748),
    ];

    #[test]
    fn agrees_with_scipy() {
        for &(o, level, lower, upper) in SCIPY {
            assert_close(midp_lower(o, level), lower, 1e-9);
            assert_close(midp_upper(o, level), upper, 1e-9);
        }
    }

    #[test]
    fn narrower_than_garwood_and_bracketing_the_count() {
        for o in [1.0, 2.0, 5.0, 17.0, 250.0, 10_000.0] {
            for level in [0.95, 0.998] {
                let (l, u) = (midp_lower(o, level), midp_upper(o, level));
                assert!(exact_lower(o, level) < l && l < o, "O {o}: {l}");
                assert!(o < u && u < exact_upper(o, level), "O {o}: {u}");
            }
        }
    }

    #[test]
    fn limits_rise_with_the_count() {
        // The funnel limits are inverted from these, which needs both limits to rise with O.
        for level in [0.95, 0.998] {
            let (mut lower, mut upper) = (midp_lower(0.0, level), midp_upper(0.0, level));
            for k in 1..400 {
                let (l, u) = (midp_lower(k as f64, level), midp_upper(k as f64, level));
                assert!(l > lower && u > upper, "O {k} at {level}");
                (lower, upper) = (l, u);
            }
        }
    }

    #[test]
    fn zero_count_and_bad_rows() {
        let method = MidpExact::new(vec![0.95]).unwrap();
        let limits = method
            .limits(&[0.0, 4.0, -1.0], &[2.0, 0.0, 2.0], &[50.0, 1.0, 1.0])
            .expect("limits");
        assert_eq!(limits[0].lower[0], 0.0);
        // ½·e^(−μ) = 0.025 → μ = −ln 0.05 = 2.99573227355399.
        assert_close(limits[0].upper[0], 2.99573227355399 / 2.0 * 50.0, 1e-12);
        for i in [1, 2] {
            assert!(limits[0].lower[i].is_nan() && limits[0].upper[i].is_nan());
        }
    }

    #[test]
    fn default_params_name_and_bad_params() {
        let Configured::ConfidenceInterval(method) =
            (DESCRIPTOR.configure)(&Params::default()).unwrap()
        else {
            panic!("wrong stage");
        };
        assert_eq!(method.method_name(), "mid-p exact Poisson 95%/99.8%");
        for text in ["levels = [1.5]", "level = 0.95"] {
            let params = Params::from_toml_str(text).unwrap();
            let Err(error) = configure(&params) else {
                panic!("{text} accepted");
            };
            assert!(error.key.is_some(), "{text}: {error}");
        }
    }
}
