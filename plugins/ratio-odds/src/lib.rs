//! `ratio.odds` — the odds ratio the 2020/21 publication reports (section 3.1).
//!
//! With p the standardised rate per person (the rate per U people / U, U the recipe's `rate_per`,
//! 10,000 in the publications):
//! `ratio = (p2 / (1 − p2)) / (p1 / (1 − p1))`, p1 the base category, p2 the comparison.
//!
//! Edge cases: odds are undefined when p ≥ 1 (more tests than people, as for X-ray at 75+); the
//! result is then `None` with a note saying so, and the engine reports the recipe's fallback
//! category instead. A base odds of 0 (p1 = 0) also gives `None`.
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21*, §3.1
//! (female 2,973 and male 2,465 per 10,000 give 0.77).

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, ParamError, Params, PluginDescriptor, RatioMethod, RatioValue,
    StageKind,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ratio.odds",
    stage: StageKind::Ratio,
    version: env!("CARGO_PKG_VERSION"),
    description: "Odds ratio (p2/(1-p2))/(p1/(1-p1)) of standardised rates per person",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OddsParams {}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let _: OddsParams = params.parse()?;
    Ok(Configured::Ratio(Box::new(OddsRatio)))
}

/// The odds-ratio method.
pub struct OddsRatio;

impl OddsRatio {
    /// The odds ratio of two rates per `rate_per` people.
    pub fn odds_ratio(base_rate: f64, comparison_rate: f64, rate_per: f64) -> RatioValue {
        let p1 = base_rate / rate_per;
        let p2 = comparison_rate / rate_per;
        let undefined = |why: String| RatioValue {
            value: None,
            note: Some(why),
        };
        if !(p1.is_finite() && p2.is_finite()) {
            return undefined("odds ratio undefined: a rate is missing".into());
        }
        if p2 >= 1.0 || p1 >= 1.0 {
            let p = if p2 >= 1.0 { p2 } else { p1 };
            return undefined(format!(
                "odds ratio undefined: rate per person p = {p:.4} ≥ 1"
            ));
        }
        if p1 <= 0.0 {
            return undefined("odds ratio undefined: base rate is 0".into());
        }
        let value = (p2 / (1.0 - p2)) / (p1 / (1.0 - p1));
        RatioValue {
            value: Some(value),
            note: None,
        }
    }
}

impl RatioMethod for OddsRatio {
    fn method_name(&self) -> String {
        "odds ratio".into()
    }

    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        Ok(base_rate
            .iter()
            .zip(comparison_rate)
            .map(|(&b, &c)| Self::odds_ratio(b, c, rate_per))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_worked_example_2020_21() {
        // §3.1: female 2,973, male 2,465 per 10,000 → p/(1-p) 0.4231 and 0.3271 → 0.77.
        let r = OddsRatio::odds_ratio(2973.0, 2465.0, 10_000.0)
            .value
            .unwrap();
        assert!((r - 0.7731).abs() < 5e-4, "{r}");
        assert_eq!(format!("{r:.2}"), "0.77");
    }

    #[test]
    fn hand_worked_value() {
        // p1 = 0.1 → odds 1/9; p2 = 0.2 → odds 1/4; ratio 9/4.
        let r = OddsRatio::odds_ratio(1000.0, 2000.0, 10_000.0)
            .value
            .unwrap();
        assert!((r - 2.25).abs() < 1e-12);
    }

    #[test]
    fn base_is_one() {
        let r = OddsRatio::odds_ratio(500.0, 500.0, 10_000.0).value.unwrap();
        assert!((r - 1.0).abs() < 1e-15);
    }

    #[test]
    fn undefined_when_p_reaches_one() {
        let r = OddsRatio::odds_ratio(1500.0, 12_000.0, 10_000.0);
        assert_eq!(r.value, None);
        assert!(r.note.unwrap().contains("≥ 1"));
        assert_eq!(
            OddsRatio::odds_ratio(1500.0, 10_000.0, 10_000.0).value,
            None
        );
    }

    #[test]
    fn the_unit_scales_the_rates_into_proportions() {
        // The hand-worked p1 = 0.1, p2 = 0.2 as rates per 1,000: the same 9/4.
        let r = OddsRatio::odds_ratio(100.0, 200.0, 1_000.0).value.unwrap();
        assert!((r - 2.25).abs() < 1e-12);
        // 1,500 per 1,000 is p = 1.5: undefined, where per 10,000 it is p = 0.15.
        assert_eq!(OddsRatio::odds_ratio(100.0, 1_500.0, 1_000.0).value, None);
    }

    #[test]
    fn undefined_when_base_is_zero() {
        assert_eq!(OddsRatio::odds_ratio(0.0, 10.0, 10_000.0).value, None);
    }

    #[test]
    fn unknown_parameter_is_refused() {
        let p = Params::from_toml_str("fallback = 1").unwrap();
        let err = configure(&p).err().unwrap();
        assert_eq!(err.key.as_deref(), Some("fallback"));
    }
}
