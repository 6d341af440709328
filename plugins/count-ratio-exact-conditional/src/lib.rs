//! `count_ratio.exact-conditional` — the ratio of two counts over two periods of equal length
//! (seed 002: April–September 2020 against April–September 2019), with exact confidence limits
//! conditional on their total.
//!
//! With `a` tests in the earlier period and `b` in the later, each a Poisson count over the same
//! length of time, the ratio of their rates is `R = b / a`. Given the total `n = a + b`, `b` is
//! binomial with `n` trials and probability `π = R / (1 + R)`, so exact (Clopper–Pearson) limits
//! on `π` give exact limits on `R` through `R = π / (1 − π)`:
//!
//! - `π_L = B⁻¹(α/2; b, a + 1)` (0 when `b = 0`), `π_U = B⁻¹(1 − α/2; b + 1, a)` (1 when `a = 0`),
//!   `B⁻¹(p; s, t)` the inverse regularised incomplete beta function, `α = 1 − level`;
//! - `R_L = π_L / (1 − π_L)`, `R_U = π_U / (1 − π_U)`.
//!
//! Edge cases: `b = 0` gives ratio 0 and lower limit 0; `a = 0` leaves the ratio and the upper
//! limit undefined (no tests in the earlier period: a note says so) but keeps the lower limit;
//! `a = b = 0` leaves all three undefined. A negative, infinite or missing count is an error.
//!
//! Parameter: `level` (default 0.95), strictly between 0 and 1.
//!
//! References: Clopper C.J. & Pearson E.S. (1934), Biometrika 26, 404–413; the conditional
//! binomial argument for two Poisson counts: Armitage P., Berry G. & Matthews J.N.S. (2002),
//! *Statistical Methods in Medical Research*, 4th ed., §5.3; also R's `poisson.test(c(b, a))`.

use serde::Deserialize;
use strata_api::{
    Configured, CountRatio, CountRatioMethod, MethodError, ParamError, Params, PluginDescriptor,
    StageKind,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "count_ratio.exact-conditional",
    stage: StageKind::PeriodComparison,
    version: env!("CARGO_PKG_VERSION"),
    description: "Ratio of two counts (later/earlier period) with exact limits conditional on their total (Clopper-Pearson)",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactConditionalParams {
    #[serde(default = "default_level")]
    level: f64,
}

fn default_level() -> f64 {
    0.95
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: ExactConditionalParams = params.parse()?;
    strata_stats::check_level(p.level)?;
    Ok(Configured::PeriodComparison(Box::new(ExactConditional {
        level: p.level,
    })))
}

/// The exact conditional method at one confidence level.
pub struct ExactConditional {
    pub level: f64,
}

impl ExactConditional {
    /// The ratio `b / a` and its limits; `Err` for a count that is not a finite non-negative
    /// number.
    pub fn interval(&self, a: f64, b: f64) -> Result<CountRatio, MethodError> {
        strata_stats::check_period_counts(a, b)?;
        if a == 0.0 && b == 0.0 {
            return Ok(CountRatio {
                ratio: None,
                lower: None,
                upper: None,
                note: Some("ratio undefined: no tests in either period".into()),
            });
        }
        let (lower_share, upper_share) = strata_stats::clopper_pearson(b, a + b, self.level);
        let odds = |share: f64| share / (1.0 - share);
        if a == 0.0 {
            return Ok(CountRatio {
                ratio: None,
                lower: Some(odds(lower_share)),
                upper: None,
                note: Some("ratio undefined: no tests in the earlier period".into()),
            });
        }
        Ok(CountRatio {
            ratio: Some(b / a),
            lower: Some(odds(lower_share)),
            upper: Some(odds(upper_share)),
            note: None,
        })
    }
}

impl CountRatioMethod for ExactConditional {
    fn method_name(&self) -> String {
        format!(
            "exact conditional (Clopper-Pearson) {}",
            strata_stats::level_label(self.level)
        )
    }

    fn intervals(
        &self,
        period_a: &[f64],
        period_b: &[f64],
    ) -> Result<Vec<CountRatio>, MethodError> {
        strata_stats::count_pairs(period_a, period_b, |a, b| self.interval(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_95() -> ExactConditional {
        ExactConditional { level: 0.95 }
    }

    fn close(got: Option<f64>, want: f64, relative: f64) {
        let got = got.expect("a number");
        assert!(
            ((got - want) / want).abs() < relative,
            "{got} against {want}"
        );
    }

    /// With one period empty the beta quantile has a closed form: `B⁻¹(p; s, 1) = p^(1/s)`.
    /// a = 0, b = 3: π_L = 0.025^(1/3) = 0.292401774, R_L = 0.292401774 / 0.707598226 =
    /// 0.413231355. a = 3, b = 0: π_U = 1 − 0.025^(1/3) = 0.707598226, R_U = 2.419951893.
    #[test]
    fn hand_worked_example() {
        let empty_before = at_95().interval(0.0, 3.0).expect("interval");
        assert_eq!(empty_before.ratio, None);
        assert_eq!(empty_before.upper, None);
        close(empty_before.lower, 0.413231355, 1e-8);
        assert!(empty_before.note.expect("note").contains("earlier period"));
        let empty_after = at_95().interval(3.0, 0.0).expect("interval");
        assert_eq!(empty_after.ratio, Some(0.0));
        assert_eq!(empty_after.lower, Some(0.0));
        close(empty_after.upper, 2.419951893, 1e-8);
    }

    /// SciPy 1.x `beta.ppf` (independent of statrs), transformed by π/(1−π), in a throwaway
    /// venv:
    /// `pl = beta.ppf(0.025, b, a + 1); pu = beta.ppf(0.975, b + 1, a)`. The last three pairs
    /// are England's CT, ultrasound and MRI tests, April–June 2019 against 2020 (PMC7808358
    /// Table 5), whose limits rest on counts of millions.
    #[test]
    fn agrees_with_scipy() {
        let cases = [
            (10.0, 5.0, 0.13409686459458373, 1.6054983712092294),
            (1.0, 1.0, 0.012739367083666617, 78.49683531626285),
            (100.0, 130.0, 0.9939622683564093, 1.7044993024473383),
            (7.0, 2.0, 0.028960053413129235, 1.500584972572094),
            (479215.0, 269830.0, 0.5604147391210608, 0.5657303042656021),
            (2532780.0, 1356975.0, 0.53464870552731, 0.5368835485953433),
        ];
        for (a, b, lower, upper) in cases {
            let r = at_95().interval(a, b).expect("interval");
            close(r.ratio, b / a, 1e-12);
            close(r.lower, lower, 1e-7);
            close(r.upper, upper, 1e-7);
        }
    }

    #[test]
    fn no_tests_in_either_period_is_undefined_with_a_note() {
        let r = at_95().interval(0.0, 0.0).expect("interval");
        assert_eq!((r.ratio, r.lower, r.upper), (None, None, None));
        assert!(r.note.is_some());
    }

    #[test]
    fn a_negative_or_missing_count_is_an_error() {
        assert!(at_95().interval(-1.0, 3.0).is_err());
        assert!(at_95().interval(3.0, f64::NAN).is_err());
    }

    #[test]
    fn a_wider_level_gives_wider_limits() {
        let narrow = at_95().interval(40.0, 30.0).expect("interval");
        let wide = ExactConditional { level: 0.998 }
            .interval(40.0, 30.0)
            .expect("interval");
        assert!(wide.lower < narrow.lower && wide.upper > narrow.upper);
    }

    #[test]
    fn the_level_is_checked_and_named() {
        let params = Params::from_toml_str("level = 1.5").expect("toml");
        let Err(e) = configure(&params) else {
            panic!("refused")
        };
        assert_eq!(e.key.as_deref(), Some("level"));
        let Ok(Configured::PeriodComparison(m)) = configure(&Params::default()) else {
            panic!("defaults")
        };
        assert_eq!(m.method_name(), "exact conditional (Clopper-Pearson) 95%");
    }
}
