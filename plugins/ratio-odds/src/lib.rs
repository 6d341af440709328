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
//! Confidence limits (opt-in: `params = { limits = "woolf", levels = [0.95] }`; without `limits`
//! the method gives none and `factor_ratios` has no limit columns): Woolf's logit interval. For a
//! crude 2×2 table of a tested and b not tested in the comparison category, c and d in the base,
//! `var(ln OR) = 1/a + 1/b + 1/c + 1/d`. A standardised category has O tests and a standardised
//! proportion p, so its table is taken as a = O and b = O(1 − p)/p (the untested that give
//! proportion p; with p = O/N, the crude proportion, b = N − O and this is Woolf's formula
//! exactly):
//!
//! ```text
//! var(ln ratio) = 1/(O2 (1 − p2)) + 1/(O1 (1 − p1))
//! lower, upper  = ratio × exp(∓ z · √var),  z the two-sided normal quantile of the level
//! ```
//!
//! `limits = "exact-conditional"` gives exact conditional limits instead (R's `fisher.test`,
//! Cornfield 1956): on the same table, rounded to whole persons, given its margins the tested count
//! of the comparison category follows Fisher's noncentral hypergeometric distribution with odds
//! ratio ψ, and the limits are the ψ at which P(X ≥ a) and P(X ≤ a) are α/2;
//! `"mid-p-exact-conditional"` counts half of P(X = a) in each tail (Lancaster 1961), so its
//! limits are narrower. Both are computed in log space outward from the distribution's mode, so
//! tables of millions of persons take milliseconds (`strata_stats::conditional_odds_ratio`, which
//! also gives the conditional maximum-likelihood estimate; the `ratio` column stays the
//! standardised odds ratio the publication prints). For a large table they approach Woolf's.
//!
//! An undefined ratio, a proportion not strictly between 0 and 1 or an observed count of 0
//! gives no Woolf limits (NaN, written empty); the exact limits of a = 0 are 0 and a finite upper
//! limit. `levels` (default `[0.95]`) are checked like every CI
//! plugin's.
//!
//! References: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21*, §3.1
//! (female 2,973 and male 2,465 per 10,000 give 0.77); Woolf B. (1955), *On estimating the
//! relation between blood group and disease*, Annals of Human Genetics 19, 251–253; Altman D.G.
//! (1991), *Practical Statistics for Medical Research*, Chapman & Hall (SE of ln OR).

use serde::Deserialize;
use strata_api::{
    Comparison, Configured, Limits, MethodError, ParamError, Params, PluginDescriptor, RatioMethod,
    RatioValue, StageKind,
};
use strata_stats::{
    ConditionalTails, conditional_odds_ratio, levels_label, limits_by_level,
    log_normal_ratio_limits, ratio_limits_params,
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
struct OddsParams {
    /// Confidence limits for the ratios: `woolf` (logit), `exact-conditional` or
    /// `mid-p-exact-conditional`; none unless named.
    limits: Option<String>,
    /// Their levels, when `limits` names a method (default 0.95).
    levels: Option<Vec<f64>>,
}

/// The limits methods `limits` may name.
const LIMITS: [&str; 3] = ["woolf", "exact-conditional", "mid-p-exact-conditional"];

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: OddsParams = params.parse()?;
    let limits =
        ratio_limits_params("ratio.odds", &LIMITS, p.limits, p.levels)?.map(|(method, levels)| {
            let method = match method.as_str() {
                "exact-conditional" => OddsLimits::Conditional(ConditionalTails::Exact),
                "mid-p-exact-conditional" => OddsLimits::Conditional(ConditionalTails::MidP),
                _ => OddsLimits::Woolf,
            };
            (method, levels)
        });
    Ok(Configured::Ratio(Box::new(ConfiguredOddsRatio { limits })))
}

/// Which limits the recipe named.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OddsLimits {
    Woolf,
    Conditional(ConditionalTails),
}

/// The odds ratio with the recipe's limits at these levels, or none.
struct ConfiguredOddsRatio {
    limits: Option<(OddsLimits, Vec<f64>)>,
}

/// A standardised category as a 2×2 row: O tests and the untested `O (1 − p)/p` that give its
/// standardised proportion p, both rounded to whole persons (the conditional distribution is
/// defined on whole counts; with p = O/N, the crude proportion, the row is the crude table's).
/// `None` unless O ≥ 0 and 0 < p < 1.
fn pseudo_row(observed: f64, rate: f64, rate_per: f64) -> Option<(f64, f64)> {
    let p = rate / rate_per;
    (observed.is_finite() && observed >= 0.0 && p > 0.0 && p < 1.0)
        .then(|| (observed.round(), (observed * (1.0 - p) / p).round()))
}

/// Exact (or mid-p) conditional limits of one comparison's odds ratio (NaN where a row is
/// undefined).
pub fn conditional_limits(c: &Comparison, level: f64, tails: ConditionalTails) -> (f64, f64) {
    match (
        pseudo_row(c.comparison_observed, c.comparison_rate, c.rate_per),
        pseudo_row(c.base_observed, c.base_rate, c.rate_per),
    ) {
        (Some((a, b)), Some((c, d))) => {
            let r = conditional_odds_ratio(a, b, c, d, level, tails);
            (r.lower, r.upper)
        }
        _ => (f64::NAN, f64::NAN),
    }
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

impl OddsRatio {
    /// Woolf's variance of one category's log odds, `1/a + 1/b` with a = O and b = O(1 − p)/p,
    /// i.e. `1/(O (1 − p))`, p = rate / rate_per (NaN unless O > 0 and 0 < p < 1).
    pub fn log_odds_variance(observed: f64, rate: f64, rate_per: f64) -> f64 {
        let p = rate / rate_per;
        if observed > 0.0 && p > 0.0 && p < 1.0 {
            let untested = observed * (1.0 - p) / p;
            1.0 / observed + 1.0 / untested
        } else {
            f64::NAN
        }
    }
}

impl RatioMethod for ConfiguredOddsRatio {
    fn method_name(&self) -> String {
        OddsRatio.method_name()
    }

    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError> {
        OddsRatio.ratios(base_rate, comparison_rate, rate_per)
    }

    fn limits_method(&self) -> Option<String> {
        let (method, levels) = self.limits.as_ref()?;
        let name = match method {
            OddsLimits::Woolf => "Woolf logit",
            OddsLimits::Conditional(ConditionalTails::Exact) => {
                "exact conditional (Fisher, noncentral hypergeometric)"
            }
            OddsLimits::Conditional(ConditionalTails::MidP) => {
                "mid-p exact conditional (noncentral hypergeometric)"
            }
        };
        Some(format!("{name} {}", levels_label(levels)))
    }

    fn limits(&self, comparisons: &[Comparison]) -> Result<Vec<Limits>, MethodError> {
        let Some((method, levels)) = &self.limits else {
            return Ok(Vec::new());
        };
        if let OddsLimits::Conditional(tails) = *method {
            return Ok(limits_by_level(comparisons, levels, |c, level| {
                conditional_limits(c, level, tails)
            }));
        }
        let ratios: Vec<Option<f64>> = comparisons
            .iter()
            .map(|c| OddsRatio::odds_ratio(c.base_rate, c.comparison_rate, c.rate_per).value)
            .collect();
        let variances: Vec<f64> = comparisons
            .iter()
            .map(|c| {
                OddsRatio::log_odds_variance(c.base_observed, c.base_rate, c.rate_per)
                    + OddsRatio::log_odds_variance(
                        c.comparison_observed,
                        c.comparison_rate,
                        c.rate_per,
                    )
            })
            .collect();
        Ok(log_normal_ratio_limits(&ratios, &variances, levels))
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

    fn configured(params: &str) -> Result<Box<dyn RatioMethod>, ParamError> {
        match configure(&Params::from_toml_str(params).expect("toml"))? {
            Configured::Ratio(m) => Ok(m),
            _ => panic!("a ratio method"),
        }
    }

    /// A crude 2×2 table as a comparison: (tested, not tested) of base and comparison, rates
    /// per 10,000 the crude proportions.
    fn crude(base: (f64, f64), comparison: (f64, f64)) -> Comparison {
        let rate = |(a, b): (f64, f64)| a / (a + b) * 10_000.0;
        Comparison {
            base_rate: rate(base),
            comparison_rate: rate(comparison),
            rate_per: 10_000.0,
            base_observed: base.0,
            comparison_observed: comparison.0,
            base_expected: base.0 + base.1,
            comparison_expected: comparison.0 + comparison.1,
        }
    }

    #[test]
    fn woolf_limits_by_hand_on_a_crude_table() {
        // a = 20, b = 80 (comparison), c = 10, d = 90 (base): OR = ad/bc = 2.25;
        // SE(ln OR) = √(1/20 + 1/80 + 1/10 + 1/90) = 0.41667; 95% 2.25·exp(∓1.959964·0.41667)
        // = 0.9943 to 5.0915.
        let m = configured("limits = \"woolf\"").expect("configures");
        let l = m
            .limits(&[crude((10.0, 90.0), (20.0, 80.0))])
            .expect("limits");
        let or: f64 = (20.0 * 90.0) / (80.0 * 10.0);
        let se = (1.0_f64 / 20.0 + 1.0 / 80.0 + 1.0 / 10.0 + 1.0 / 90.0).sqrt();
        let z = 1.959_963_984_540_054;
        assert!((l[0].lower[0] - or * (-z * se).exp()).abs() < 1e-9);
        assert!((l[0].upper[0] - or * (z * se).exp()).abs() < 1e-9);
        assert!((l[0].lower[0] - 0.9943).abs() < 1e-4 && (l[0].upper[0] - 5.0915).abs() < 1e-4);
        assert_eq!(m.limits_method().as_deref(), Some("Woolf logit 95%"));
    }

    #[test]
    fn woolf_limits_on_the_published_worked_example() {
        // §3.1's proportions, female 0.2973 and male 0.2465, as tables of 10,000 people each:
        // a = 2,465, b = 7,535, c = 2,973, d = 7,027; OR 0.77323, SE(ln OR) = √(1/2,465 +
        // 1/7,535 + 1/2,973 + 1/7,027) = 0.031891; 95% 0.7264 to 0.8231.
        let m = configured("limits = \"woolf\"\nlevels = [0.95]").expect("configures");
        let l = m
            .limits(&[crude((2973.0, 7027.0), (2465.0, 7535.0))])
            .expect("limits");
        let se = (1.0_f64 / 2465.0 + 1.0 / 7535.0 + 1.0 / 2973.0 + 1.0 / 7027.0).sqrt();
        assert!((se - 0.031891).abs() < 1e-6, "{se}");
        let or = (2465.0 * 7027.0) / (7535.0 * 2973.0);
        let z = 1.959_963_984_540_054;
        assert!((l[0].lower[0] - or * (-z * se).exp()).abs() < 1e-9);
        assert!((l[0].lower[0] - 0.7264).abs() < 1e-4 && (l[0].upper[0] - 0.8231).abs() < 1e-4);
    }

    #[test]
    fn exact_conditional_limits_equal_scipys_on_crude_tables() {
        // SciPy 1.17.1, `odds_ratio([[a, b], [c, d]], kind="conditional").confidence_interval()`
        // with [a, b] the comparison row (tested, not tested) and [c, d] the base row.
        let m = configured("limits = \"exact-conditional\"\nlevels = [0.95, 0.998]")
            .expect("configures");
        assert_eq!(
            m.limits_method().as_deref(),
            Some("exact conditional (Fisher, noncentral hypergeometric) 95%/99.8%")
        );
        let l = m
            .limits(&[
                crude((7.0, 14.0), (12.0, 5.0)),
                crude((2973.0, 7027.0), (2465.0, 7535.0)),
            ])
            .expect("limits");
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-8 * y;
        assert!(close(l[0].lower[0], 1.0063298166860701), "{l:?}");
        assert!(close(l[0].upper[0], 24.264482923282195), "{l:?}");
        assert!(close(l[1].lower[0], 0.49046522089916694), "{l:?}");
        assert!(close(l[1].upper[0], 61.57228672801119), "{l:?}");
        // §3.1's worked example as tables of 10,000 people: near Woolf's 0.7264 to 0.8231.
        assert!(close(l[0].lower[1], 0.7260011059373226), "{l:?}");
        assert!(close(l[0].upper[1], 0.8235097156795221), "{l:?}");
    }

    #[test]
    fn mid_p_limits_are_named_and_narrower() {
        let exact = configured("limits = \"exact-conditional\"").expect("configures");
        let midp = configured("limits = \"mid-p-exact-conditional\"").expect("configures");
        assert_eq!(
            midp.limits_method().as_deref(),
            Some("mid-p exact conditional (noncentral hypergeometric) 95%")
        );
        let table = [crude((7.0, 14.0), (12.0, 5.0))];
        let (e, p) = (exact.limits(&table).unwrap(), midp.limits(&table).unwrap());
        assert!(e[0].lower[0] < p[0].lower[0] && p[0].upper[0] < e[0].upper[0]);
        // Undefined odds (p ≥ 1) give no limits here either.
        let mut c = crude((10.0, 90.0), (20.0, 80.0));
        c.comparison_rate = 12_000.0;
        let l = exact.limits(&[c]).expect("limits");
        assert!(l[0].lower[0].is_nan() && l[0].upper[0].is_nan());
    }

    #[test]
    fn limits_are_opt_in_checked_and_undefined_where_odds_are() {
        let plain = configured("").expect("configures");
        assert_eq!(plain.limits_method(), None);
        assert!(
            plain
                .limits(&[crude((1.0, 2.0), (1.0, 2.0))])
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            configured("levels = [0.9]").err().unwrap().key.as_deref(),
            Some("levels")
        );
        assert_eq!(
            configured("limits = \"exact\"")
                .err()
                .unwrap()
                .key
                .as_deref(),
            Some("limits")
        );
        // p ≥ 1 (more tests than people): no odds, no limits.
        let m = configured("limits = \"woolf\"").expect("configures");
        let mut c = crude((10.0, 90.0), (20.0, 80.0));
        c.comparison_rate = 12_000.0;
        let l = m.limits(&[c]).expect("limits");
        assert!(l[0].lower[0].is_nan() && l[0].upper[0].is_nan());
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
