//! `count_ratio.log-normal` — the ratio of two counts over two periods of equal length with
//! Wald limits on the log scale: the large-sample alternative to `count_ratio.exact-conditional`.
//!
//! With `a` tests in the earlier period and `b` in the later, `R = b / a` and
//! `ln R ± z · √(1/a + 1/b)`, `z` the standard normal quantile of `(1 + level) / 2` (1.959964 at
//! 95%); the limits are their exponentials.
//!
//! Edge cases: a zero count in either period leaves the limits undefined (the log of 0), with a
//! note; `a = 0` leaves the ratio undefined too. A negative, infinite or missing count is an
//! error.
//!
//! Parameter: `level` (default 0.95), strictly between 0 and 1.
//!
//! Reference: Armitage P., Berry G. & Matthews J.N.S. (2002), *Statistical Methods in Medical
//! Research*, 4th ed., §5.3; statsmodels `confint_poisson_2indep(method="wald-log")`.

use serde::Deserialize;
use strata_api::{
    Configured, CountRatio, CountRatioMethod, MethodError, ParamError, Params, PluginDescriptor,
    StageKind,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "count_ratio.log-normal",
    stage: StageKind::PeriodComparison,
    version: env!("CARGO_PKG_VERSION"),
    description: "Ratio of two counts (later/earlier period) with Wald limits on the log scale",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogNormalParams {
    #[serde(default = "default_level")]
    level: f64,
}

fn default_level() -> f64 {
    0.95
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: LogNormalParams = params.parse()?;
    strata_stats::check_level(p.level)?;
    Ok(Configured::PeriodComparison(Box::new(LogNormal {
        level: p.level,
    })))
}

/// Wald limits on the log of the ratio, at one level.
pub struct LogNormal {
    pub level: f64,
}

impl LogNormal {
    pub fn interval(&self, a: f64, b: f64) -> Result<CountRatio, MethodError> {
        strata_stats::check_period_counts(a, b)?;
        if a == 0.0 || b == 0.0 {
            let which = if a == 0.0 { "earlier" } else { "later" };
            return Ok(CountRatio {
                ratio: (a > 0.0).then(|| b / a),
                lower: None,
                upper: None,
                note: Some(format!(
                    "log-normal limits undefined: no tests in the {which} period"
                )),
            });
        }
        let ratio = b / a;
        let half_width = strata_stats::two_sided_z(self.level) * (1.0 / a + 1.0 / b).sqrt();
        Ok(CountRatio {
            ratio: Some(ratio),
            lower: Some((ratio.ln() - half_width).exp()),
            upper: Some((ratio.ln() + half_width).exp()),
            note: None,
        })
    }
}

impl CountRatioMethod for LogNormal {
    fn method_name(&self) -> String {
        format!(
            "log-normal (Wald on log ratio) {}",
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

    fn close(got: Option<f64>, want: f64) {
        let got = got.expect("a number");
        assert!(((got - want) / want).abs() < 1e-9, "{got} against {want}");
    }

    /// a = 10, b = 5: R = 0.5, SE = √(0.1 + 0.2) = 0.5477226, z = 1.959964:
    /// exp(ln 0.5 ∓ 1.0735085) = 0.1709022 and 1.4628247.
    #[test]
    fn hand_worked_example() {
        let r = LogNormal { level: 0.95 }
            .interval(10.0, 5.0)
            .expect("interval");
        close(r.ratio, 0.5);
        close(r.lower, 0.17090222548631334);
        close(r.upper, 1.4628247191551125);
    }

    /// statsmodels 0.14 `confint_poisson_2indep(b, 1, a, 1, method="wald-log")` in a
    /// throwaway venv.
    #[test]
    fn agrees_with_statsmodels() {
        for (a, b, lower, upper) in [
            (100.0, 130.0, 1.0016660699960982, 1.6871890249877217),
            (479215.0, 269830.0, 0.5604167933788031, 0.5657291003587205),
            (267.0, 169.0, 0.5220404013286796, 0.7674441353087968),
        ] {
            let r = LogNormal { level: 0.95 }.interval(a, b).expect("interval");
            close(r.lower, lower);
            close(r.upper, upper);
        }
    }

    #[test]
    fn a_zero_count_leaves_the_limits_undefined_with_a_note() {
        let m = LogNormal { level: 0.95 };
        let later = m.interval(4.0, 0.0).expect("interval");
        assert_eq!(
            (later.ratio, later.lower, later.upper),
            (Some(0.0), None, None)
        );
        let earlier = m.interval(0.0, 4.0).expect("interval");
        assert_eq!(earlier.ratio, None);
        assert!(earlier.note.expect("note").contains("earlier"));
        assert!(m.interval(-1.0, 2.0).is_err());
    }

    #[test]
    fn the_level_is_checked() {
        let params = Params::from_toml_str("level = 0").expect("toml");
        let Err(e) = configure(&params) else {
            panic!("refused")
        };
        assert_eq!(e.key.as_deref(), Some("level"));
    }
}
