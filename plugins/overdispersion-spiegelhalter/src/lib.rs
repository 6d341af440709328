//! `overdispersion.spiegelhalter` — how far the spread of area standardised ratios exceeds Poisson
//! noise, and funnel limits widened for it: Spiegelhalter's additive random-effects model with
//! winsorised z-scores (D. J. Spiegelhalter, "Handling over-dispersion of performance
//! indicators", *Qual Saf Health Care* 2005;14:347–351), as FunnelPlotR's `draw_adjusted` does it.
//!
//! For each measure, over the areas with an expected count E > 0 (observed O, ratio O/E):
//!
//! - a transformed ratio y with target θ and within-area standard error s (param `transform`):
//!   `"square-root"` (default): y = √(O/E), θ = 1, s = 1 / (2√E);
//!   `"log"`: y = ln(O/E), θ = 0, s = 1 / √E (an area with O = 0 has no y and is left out of the
//!   estimate; its row has no z-score);
//! - z-scores zᵢ = (yᵢ − θ) / sᵢ, winsorised at the `winsorise` and 1 − `winsorise` quantiles
//!   (R's default type 7 quantile; default 0.1, i.e. 10% at each end): values beyond are set to
//!   the quantile;
//! - the dispersion ratio φ = (1/n) Σ wzᵢ² over the n areas;
//! - the between-area variance τ² = max(0, (nφ − (n − 1)) / (Σwᵢ − Σwᵢ² / Σwᵢ)) with wᵢ = 1/sᵢ²,
//!   and τ² = 0 when nφ < n − 1 (no overdispersion);
//! - each area's adjusted z-score (y − θ) / √(s² + τ²) and, at each level of param `levels`
//!   (default 95% and 99.8%), limits on the ratio scale back-transformed from
//!   θ ± z_α √(s² + τ²) (square-root: squared, the lower limit 0 where θ − z_α√(s² + τ²) < 0;
//!   log: exponentiated). An area is flagged `high` above its upper limit and `low` below its lower.
//!
//! With τ² = 0 the limits are the normal approximation on the transformed scale, so each level
//! also reports how many areas that flags (`flagged_unadjusted_…`) beside the n × (1 − level)
//! expected by chance alone and the number flagged after adjustment (`flagged_adjusted_…`).
//!
//! **Small counts and many areas.** At practice level most expected counts are small and there
//! are thousands of areas, so each area also gets its two-sided exact Poisson p-value of O given
//! E (`strata_stats::exact_poisson_p_value`: doubling the smaller tail, below 1 − level exactly
//! when the Garwood exact limits exclude E) and the two-sided normal p-value of its adjusted
//! z-score, each with its Benjamini–Hochberg adjusted p-value over the measure's areas (the false
//! discovery rate at which it would be flagged; `strata_stats::benjamini_hochberg`, as R's
//! `p.adjust(method = "BH")`). Per level the measure's row counts the areas flagged by the exact
//! test (`flagged_exact_…`, to set beside `expected_by_chance_…`) and those still flagged at a
//! false discovery rate of 1 − level (`flagged_exact_fdr_…`, `flagged_adjusted_fdr_…`).
//!
//! Tables: `overdispersion` (one row per measure: `measure, areas, phi, tau2,
//! winsorised_z_lower, winsorised_z_upper`, per level `expected_by_chance_<level>,
//! flagged_unadjusted_<level>, flagged_adjusted_<level>, flagged_exact_<level>,
//! flagged_exact_fdr_<level>, flagged_adjusted_fdr_<level>`, `method`) and `overdispersed_limits`
//! (one row per area × measure: `area_code, area_name, measure, observed, expected, ratio, z_score,
//! adjusted_z_score, exact_poisson_p_value, exact_poisson_fdr_p_value, adjusted_p_value,
//! adjusted_fdr_p_value`, per level `lower_<level>, upper_<level>, flag_<level>`, `method`);
//! `observed` is the declared count. `<level>` is the percent with `_` for the point (`95`,
//! `99_8`).
//!
//! FunnelPlotR's `"SHMI"` option truncates (drops) the extreme z-scores instead of winsorising
//! them; this plugin winsorises for both transforms, as Spiegelhalter (2005) describes. The unit
//! tests check φ and τ² against FunnelPlotR's own functions (`R/od_adjustment.R`) run in R on its
//! own test data.

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, OverdispersionMethod, ParamError, Params, PluginDescriptor, StageKind,
    StandardisedRates, StratifiedCounts, Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "overdispersion.spiegelhalter",
    stage: StageKind::Overdispersion,
    version: env!("CARGO_PKG_VERSION"),
    description: "Spiegelhalter's additive random-effects overdispersion (phi, tau²) and widened funnel limits",
    configure,
};

/// The scale z-scores are taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Transform {
    #[serde(rename = "square-root")]
    SquareRoot,
    #[serde(rename = "log")]
    Log,
}

impl Transform {
    /// θ, the target of y.
    fn target(self) -> f64 {
        match self {
            Transform::SquareRoot => 1.0,
            Transform::Log => 0.0,
        }
    }

    /// The within-area standard error s at expected count E (NaN without one).
    fn standard_error(self, expected: f64) -> f64 {
        if !(expected > 0.0 && expected.is_finite()) {
            return f64::NAN;
        }
        match self {
            Transform::SquareRoot => 1.0 / (2.0 * expected.sqrt()),
            Transform::Log => 1.0 / expected.sqrt(),
        }
    }

    /// y and s of an area, if it has them.
    pub fn point(self, observed: f64, expected: f64) -> Option<Point> {
        if !(expected > 0.0 && expected.is_finite() && observed >= 0.0 && observed.is_finite()) {
            return None;
        }
        let ratio = observed / expected;
        let y = match self {
            Transform::SquareRoot => ratio.sqrt(),
            Transform::Log if observed > 0.0 => ratio.ln(),
            Transform::Log => return None,
        };
        Some(Point {
            y,
            s: self.standard_error(expected),
        })
    }

    /// A transformed value back on the ratio scale.
    fn ratio_of(self, y: f64) -> f64 {
        match self {
            Transform::SquareRoot => y.max(0.0).powi(2),
            Transform::Log => y.exp(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transform::SquareRoot => "square-root",
            Transform::Log => "log",
        }
    }
}

/// An area's transformed ratio y and its within-area standard error s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub y: f64,
    pub s: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpiegelhalterParams {
    #[serde(default = "default_transform")]
    transform: Transform,
    #[serde(default = "default_winsorise")]
    winsorise: f64,
    #[serde(default = "strata_stats::default_levels")]
    levels: Vec<f64>,
}

fn default_transform() -> Transform {
    Transform::SquareRoot
}

fn default_winsorise() -> f64 {
    0.1
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    Ok(Configured::Overdispersion(Box::new(
        Spiegelhalter::configured(params)?,
    )))
}

/// The method, configured.
#[derive(Debug, Clone)]
pub struct Spiegelhalter {
    pub transform: Transform,
    pub winsorise: f64,
    pub levels: Vec<f64>,
}

impl Spiegelhalter {
    pub fn configured(params: &Params) -> Result<Self, ParamError> {
        let parsed: SpiegelhalterParams = params.parse()?;
        if !(parsed.winsorise.is_finite() && (0.0..0.5).contains(&parsed.winsorise)) {
            return Err(ParamError::new(
                "winsorise",
                "winsorise is the share trimmed at each end, in [0, 0.5), e.g. 0.1 for 10%",
            ));
        }
        strata_stats::check_levels(&parsed.levels)?;
        Ok(Spiegelhalter {
            transform: parsed.transform,
            winsorise: parsed.winsorise,
            levels: parsed.levels,
        })
    }
}

/// One measure's estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Areas in the estimate.
    pub areas: usize,
    /// The winsorisation bounds of the z-scores.
    pub z_lower: f64,
    pub z_upper: f64,
    /// Dispersion ratio φ.
    pub phi: f64,
    /// Between-area variance τ² on the transformed scale.
    pub tau2: f64,
}

/// R's default (type 7) quantile of ascending `sorted` values: linear between order statistics
/// at h = (n − 1)p.
pub fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let h = (n - 1) as f64 * p;
            let low = h.floor() as usize;
            let high = (low + 1).min(n - 1);
            sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
        }
    }
}

/// φ and τ² over `points` (module doc); `None` without any point.
pub fn estimate(points: &[Point], transform: Transform, winsorise: f64) -> Option<Estimate> {
    if points.is_empty() {
        return None;
    }
    let theta = transform.target();
    let z: Vec<f64> = points.iter().map(|p| (p.y - theta) / p.s).collect();
    let mut sorted = z.clone();
    sorted.sort_by(f64::total_cmp);
    let z_lower = quantile_type7(&sorted, winsorise);
    let z_upper = quantile_type7(&sorted, 1.0 - winsorise);
    let n = points.len() as f64;
    let phi = z
        .iter()
        .map(|z| z.clamp(z_lower, z_upper).powi(2))
        .sum::<f64>()
        / n;
    let weights: Vec<f64> = points.iter().map(|p| 1.0 / (p.s * p.s)).collect();
    let sum_w: f64 = weights.iter().sum();
    let sum_w2: f64 = weights.iter().map(|w| w * w).sum();
    let tau2 = if n * phi < n - 1.0 {
        0.0
    } else {
        ((n * phi - (n - 1.0)) / (sum_w - sum_w2 / sum_w)).max(0.0)
    };
    Some(Estimate {
        areas: points.len(),
        z_lower,
        z_upper,
        phi,
        tau2: if tau2.is_finite() { tau2 } else { 0.0 },
    })
}

/// The ratio-scale limits of an area with within-area error `s` at the two-sided normal
/// quantile `z`, widened by `tau2`.
pub fn limits(transform: Transform, s: f64, tau2: f64, z: f64) -> (f64, f64) {
    let spread = z * (s * s + tau2).sqrt();
    let theta = transform.target();
    (
        transform.ratio_of(theta - spread),
        transform.ratio_of(theta + spread),
    )
}

/// `0.998` → `99_8`, `0.95` → `95`.
fn level_tag(level: f64) -> String {
    format!("{}", (level * 1000.0).round() / 10.0).replace('.', "_")
}

/// One measure's areas: their row indices in the rates and their points.
struct MeasureAreas {
    rows: Vec<usize>,
    points: Vec<Option<Point>>,
}

impl Spiegelhalter {
    fn measure_areas(&self, rates: &StandardisedRates, measure: usize) -> MeasureAreas {
        let rows: Vec<usize> = (0..rates.areas.len())
            .filter(|&i| rates.areas[i].measure == measure)
            .collect();
        let points = rows
            .iter()
            .map(|&i| {
                let r = &rates.areas[i];
                self.transform.point(r.observed, r.expected)
            })
            .collect();
        MeasureAreas { rows, points }
    }

    fn estimates_table(&self) -> Table {
        let mut columns: Vec<String> = [
            "measure",
            "areas",
            "phi",
            "tau2",
            "winsorised_z_lower",
            "winsorised_z_upper",
        ]
        .map(String::from)
        .to_vec();
        for level in &self.levels {
            let tag = level_tag(*level);
            columns.push(format!("expected_by_chance_{tag}"));
            columns.push(format!("flagged_unadjusted_{tag}"));
            columns.push(format!("flagged_adjusted_{tag}"));
            columns.push(format!("flagged_exact_{tag}"));
            columns.push(format!("flagged_exact_fdr_{tag}"));
            columns.push(format!("flagged_adjusted_fdr_{tag}"));
        }
        columns.push("method".into());
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        Table::new(
            "overdispersion",
            "Overdispersion of area ratios by measure: dispersion ratio, between-area variance and flags",
            &columns,
        )
    }

    fn limits_table(&self) -> Table {
        let mut columns: Vec<String> = [
            "area_code",
            "area_name",
            "measure",
            "observed",
            "expected",
            "ratio",
            "z_score",
            "adjusted_z_score",
            "exact_poisson_p_value",
            "exact_poisson_fdr_p_value",
            "adjusted_p_value",
            "adjusted_fdr_p_value",
        ]
        .map(String::from)
        .to_vec();
        for level in &self.levels {
            let tag = level_tag(*level);
            columns.push(format!("lower_{tag}"));
            columns.push(format!("upper_{tag}"));
            columns.push(format!("flag_{tag}"));
        }
        columns.push("method".into());
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        Table::new(
            "overdispersed_limits",
            "Area ratios with funnel limits widened for overdispersion",
            &columns,
        )
        .with_counts(&["observed"])
    }
}

impl OverdispersionMethod for Spiegelhalter {
    fn method_name(&self) -> String {
        format!(
            "Spiegelhalter additive random effects: {} transform; {}% winsorised",
            self.transform.name(),
            (self.winsorise * 1000.0).round() / 10.0
        )
    }

    fn tables(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Vec<Table>, MethodError> {
        let method = self.method_name();
        let quantiles: Vec<f64> = self
            .levels
            .iter()
            .map(|l| strata_stats::two_sided_z(*l))
            .collect();
        let theta = self.transform.target();
        let mut estimates = self.estimates_table();
        let mut areas = self.limits_table();
        for (m, measure) in counts_shape.measures.iter().enumerate() {
            let MeasureAreas { rows, points } = self.measure_areas(rates, m);
            let present: Vec<Point> = points.iter().flatten().copied().collect();
            let Some(estimate) = estimate(&present, self.transform, self.winsorise) else {
                continue;
            };
            let mut flagged_unadjusted = vec![0usize; quantiles.len()];
            let mut flagged_adjusted = vec![0usize; quantiles.len()];
            let exact_p: Vec<Option<f64>> = rows
                .iter()
                .map(|&i| {
                    let r = &rates.areas[i];
                    strata_stats::exact_poisson_p_value(r.observed, r.expected)
                })
                .collect();
            let adjusted_p: Vec<Option<f64>> = points
                .iter()
                .map(|point| {
                    point.and_then(|p| {
                        strata_stats::two_sided_normal_p(
                            (p.y - theta) / (p.s * p.s + estimate.tau2).sqrt(),
                        )
                    })
                })
                .collect();
            let exact_q = strata_stats::benjamini_hochberg(&exact_p);
            let adjusted_q = strata_stats::benjamini_hochberg(&adjusted_p);
            let below = |values: &[Option<f64>], level: f64| {
                values
                    .iter()
                    .filter(|p| p.is_some_and(|p| p < 1.0 - level))
                    .count() as f64
            };
            for (k, (&i, point)) in rows.iter().zip(&points).enumerate() {
                let r = &rates.areas[i];
                let area = counts_shape.areas.get(r.area).ok_or_else(|| {
                    MethodError::new(format!("area index {} out of range", r.area))
                })?;
                let ratio = r.observed / r.expected;
                // An area with E = 0 has no limits; one with O = 0 on the log scale has
                // limits and is low whenever its lower limit is above 0.
                let s = self.transform.standard_error(r.expected);
                let (z, adjusted) = match point {
                    Some(p) => (
                        (p.y - theta) / p.s,
                        (p.y - theta) / (p.s * p.s + estimate.tau2).sqrt(),
                    ),
                    None => (f64::NAN, f64::NAN),
                };
                let mut row = vec![
                    Value::Text(area.code.clone()),
                    Value::Text(area.name.clone()),
                    Value::Text(measure.clone()),
                    Value::Number(r.observed),
                    Value::Number(r.expected),
                    Value::finite(ratio),
                    Value::finite(z),
                    Value::finite(adjusted),
                ];
                for p in [exact_p[k], exact_q[k], adjusted_p[k], adjusted_q[k]] {
                    row.push(p.map_or(Value::Missing, Value::Number));
                }
                for (q, &quantile) in quantiles.iter().enumerate() {
                    if z.abs() > quantile {
                        flagged_unadjusted[q] += 1;
                    }
                    let (lower, upper) = limits(self.transform, s, estimate.tau2, quantile);
                    let flag = if ratio > upper {
                        "high"
                    } else if ratio < lower {
                        "low"
                    } else {
                        ""
                    };
                    if !flag.is_empty() {
                        flagged_adjusted[q] += 1;
                    }
                    row.extend([
                        Value::finite(lower),
                        Value::finite(upper),
                        Value::Text(flag.into()),
                    ]);
                }
                row.push(Value::Text(method.clone()));
                areas.rows.push(row);
            }
            let mut row = vec![
                Value::Text(measure.clone()),
                Value::Number(estimate.areas as f64),
                Value::finite(estimate.phi),
                Value::finite(estimate.tau2),
                Value::finite(estimate.z_lower),
                Value::finite(estimate.z_upper),
            ];
            for (q, level) in self.levels.iter().enumerate() {
                row.push(Value::Number(estimate.areas as f64 * (1.0 - level)));
                row.push(Value::Number(flagged_unadjusted[q] as f64));
                row.push(Value::Number(flagged_adjusted[q] as f64));
                row.push(Value::Number(below(&exact_p, *level)));
                row.push(Value::Number(below(&exact_q, *level)));
                row.push(Value::Number(below(&adjusted_q, *level)));
            }
            row.push(Value::Text(method.clone()));
            estimates.rows.push(row);
        }
        Ok(vec![estimates, areas])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FunnelPlotR's test data (`tests/testthat/test-funnel_plot.R`): observed and expected.
    const OBSERVED: [f64; 6] = [100.0, 150.0, 180.0, 80.0, 120.0, 225.0];
    const EXPECTED: [f64; 6] = [108.0, 112.0, 165.0, 95.0, 100.0, 220.0];

    fn points(transform: Transform) -> Vec<Point> {
        OBSERVED
            .iter()
            .zip(EXPECTED)
            .map(|(&o, e)| transform.point(o, e).expect("a point"))
            .collect()
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    /// φ and τ² as FunnelPlotR's own functions give them: `transformed_zscore`, `winsorisation`
    /// (0.1), `phi_func` and `tau_func` of `R/od_adjustment.R` (nhs-r-community/FunnelPlotR,
    /// commit 225b14db), sourced unchanged and run in R 4 on the data above:
    /// CQC (square-root) φ = 2.32717825759412, τ² = 0.00343978015418627;
    /// SHMI (log, winsorised) φ = 2.14905309917045, τ² = 0.0121184914591765.
    #[test]
    fn phi_and_tau2_equal_funnelplotrs_on_its_test_data() {
        for (transform, phi, tau2) in [
            (Transform::SquareRoot, 2.32717825759412, 0.00343978015418627),
            (Transform::Log, 2.14905309917045, 0.0121184914591765),
        ] {
            let e = estimate(&points(transform), transform, 0.1).expect("estimate");
            assert!(close(e.phi, phi, 1e-12), "{transform:?} phi {}", e.phi);
            assert!(close(e.tau2, tau2, 1e-12), "{transform:?} tau2 {}", e.tau2);
            assert_eq!(e.areas, 6);
        }
    }

    /// The same run's winsorised z-scores: the second area's 3.32888693931506 is pulled in to the
    /// 90% quantile 2.61889461976085 and the fourth's −1.60504486961961 up to −1.19482728022307.
    #[test]
    fn winsorisation_bounds_equal_funnelplotrs() {
        let e = estimate(&points(Transform::SquareRoot), Transform::SquareRoot, 0.1).unwrap();
        assert!(close(e.z_upper, 2.61889461976085, 1e-12), "{}", e.z_upper);
        assert!(close(e.z_lower, -1.19482728022307, 1e-12), "{}", e.z_lower);
    }

    /// Type 7 by hand: 1, 2, 3, 4 at p = 0.1 → h = 0.3, 1 + 0.3 × 1 = 1.3; at p = 0.9 → 3.7.
    #[test]
    fn quantile_type7_by_hand() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!(close(quantile_type7(&x, 0.1), 1.3, 1e-15));
        assert!(close(quantile_type7(&x, 0.9), 3.7, 1e-15));
        assert_eq!(quantile_type7(&[5.0], 0.1), 5.0);
        assert!(quantile_type7(&[], 0.5).is_nan());
    }

    /// Areas all on target: no spread beyond Poisson, τ² = 0, and the limits are the plain
    /// normal-approximation limits: square-root at E = 100, 95%: (1 ± 1.959964 × 0.05)².
    #[test]
    fn no_overdispersion_gives_tau2_zero_and_plain_limits() {
        let p: Vec<Point> = [100.0, 200.0, 50.0]
            .iter()
            .map(|&e| Transform::SquareRoot.point(e, e).unwrap())
            .collect();
        let e = estimate(&p, Transform::SquareRoot, 0.1).unwrap();
        assert_eq!(e.phi, 0.0);
        assert_eq!(e.tau2, 0.0);
        let z = strata_stats::two_sided_z(0.95);
        let (lower, upper) = limits(Transform::SquareRoot, 0.05, 0.0, z);
        assert!(close(lower, (1.0 - z * 0.05f64).powi(2), 1e-15));
        assert!(close(upper, (1.0 + z * 0.05f64).powi(2), 1e-15));
    }

    /// τ² widens the limits, most for the largest areas (whose own s is smallest).
    #[test]
    fn tau2_widens_limits() {
        let z = strata_stats::two_sided_z(0.998);
        let (l0, u0) = limits(Transform::Log, 0.01, 0.0, z);
        let (l1, u1) = limits(Transform::Log, 0.01, 0.01, z);
        assert!(l1 < l0 && u1 > u0);
        // Square-root limits never go below 0.
        let (lower, _) = limits(Transform::SquareRoot, 2.0, 0.0, z);
        assert_eq!(lower, 0.0);
    }

    #[test]
    fn zero_observed_has_no_log_point_but_a_square_root_one() {
        assert!(Transform::Log.point(0.0, 4.0).is_none());
        assert_eq!(
            Transform::SquareRoot.point(0.0, 4.0),
            Some(Point { y: 0.0, s: 0.25 })
        );
        assert!(Transform::SquareRoot.point(3.0, 0.0).is_none());
    }

    #[test]
    fn parameters_are_checked() {
        let params = |text: &str| Params::from_toml_str(text).expect("toml");
        assert!(Spiegelhalter::configured(&params("winsorise = 0.5")).is_err());
        assert!(Spiegelhalter::configured(&params("transform = \"cube\"")).is_err());
        assert!(Spiegelhalter::configured(&params("levels = [1.5]")).is_err());
        let configured =
            Spiegelhalter::configured(&params("transform = \"log\"\nwinsorise = 0.05")).unwrap();
        assert_eq!(
            configured.method_name(),
            "Spiegelhalter additive random effects: log transform; 5% winsorised"
        );
    }
}
