//! `ratio.rate` — the rate ratio the 2023/24 publication reports (section 3.1).
//!
//! `ratio = r2 / r1`, r1 the base category's standardised rate, r2 the comparison's.
//!
//! Edge cases: undefined (with a note) when r1 is 0 or either rate is missing; defined for any
//! rate, including rates above one test per person.
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised ICB rates 2023/24*, §3.1
//! (female 3,894 and male 3,087 per 10,000 give 0.79).

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, ParamError, Params, PluginDescriptor, RatioMethod, RatioValue,
    StageKind,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "ratio.rate",
    stage: StageKind::Ratio,
    version: env!("CARGO_PKG_VERSION"),
    description: "Rate ratio r2/r1 of standardised rates",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateParams {}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let _: RateParams = params.parse()?;
    Ok(Configured::Ratio(Box::new(RateRatio)))
}

/// The rate-ratio method.
pub struct RateRatio;

impl RateRatio {
    pub fn rate_ratio(base_rate: f64, comparison_rate: f64) -> RatioValue {
        if !(base_rate.is_finite() && comparison_rate.is_finite()) {
            return RatioValue {
                value: None,
                note: Some("rate ratio undefined: a rate is missing".into()),
            };
        }
        if base_rate <= 0.0 {
            return RatioValue {
                value: None,
                note: Some("rate ratio undefined: base rate is 0".into()),
            };
        }
        RatioValue {
            value: Some(comparison_rate / base_rate),
            note: None,
        }
    }
}

impl RatioMethod for RateRatio {
    fn method_name(&self) -> String {
        "rate ratio".into()
    }

    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        _rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        Ok(base_rate
            .iter()
            .zip(comparison_rate)
            .map(|(&b, &c)| Self::rate_ratio(b, c))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_worked_example_2023_24() {
        // §3.1: female 3,894, male 3,087 per 10,000 → 0.79.
        let r = RateRatio::rate_ratio(3894.0, 3087.0).value.unwrap();
        assert!((r - 0.79276).abs() < 1e-4, "{r}");
        assert_eq!(format!("{r:.2}"), "0.79");
    }

    #[test]
    fn defined_above_one_test_per_person() {
        let r = RateRatio::rate_ratio(1500.0, 15_000.0).value.unwrap();
        assert!((r - 10.0).abs() < 1e-12);
    }

    #[test]
    fn undefined_for_zero_base() {
        let r = RateRatio::rate_ratio(0.0, 10.0);
        assert_eq!(r.value, None);
        assert!(r.note.is_some());
    }
}
