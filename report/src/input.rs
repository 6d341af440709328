//! What a report is made from, and the look-ups every output shares.

use std::collections::HashMap;

use strata_api::{
    Area, AreaRate, ConfidenceIntervalMethod, Limits, StandardisedRates, Table, Value,
};

/// A measure key and the label the publication gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureLabel {
    /// SPEC §3 key, e.g. `ct`.
    pub key: String,
    /// Display label, e.g. `CT Scan`.
    pub label: String,
}

impl MeasureLabel {
    pub fn new(key: &str, label: &str) -> Self {
        MeasureLabel {
            key: key.to_string(),
            label: label.to_string(),
        }
    }

    /// The publication's label for a known key, else the key itself.
    pub fn for_key(key: &str) -> Self {
        MeasureLabel::new(key, publication_label(key).unwrap_or(key))
    }
}

/// The label the 2023/24 publication uses for a measure key (SPEC §3).
pub fn publication_label(key: &str) -> Option<&'static str> {
    Some(match key {
        "xray" => "X-ray",
        "ultrasound" => "Ultrasound",
        "ct" => "CT Scan",
        "mri" => "MRI",
        "fluoroscopy" => "Fluoroscopy",
        "nuclear_medicine" => "Nuclear Medicine",
        "pet" => "PET Scan",
        "spect" => "SPECT Scan",
        "medical_photography" => "Medical Photography",
        "brain_mri" => "Brain MRI",
        "chest_xray" => "Chest X-ray",
        "chest_ct" => "Chest CT",
        "kidney_bladder_us" => "Kidney or Bladder Ultrasound",
        "abdomen_pelvis_us" => "Abdomen or Pelvis Ultrasound",
        _ => return None,
    })
}

/// The early-diagnosis-of-cancer measures, which the publication tabulates apart from modalities.
pub(crate) fn is_edoc(key: &str) -> bool {
    matches!(
        key,
        "brain_mri" | "chest_xray" | "chest_ct" | "kidney_bladder_us" | "abdomen_pelvis_us"
    )
}

/// Confidence limits of one area × measure, on the standardised-rate scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidenceLimits {
    /// Index into [`ReportInput::areas`].
    pub area: usize,
    /// Index into [`ReportInput::measures`].
    pub measure: usize,
    pub lower_95: f64,
    pub upper_95: f64,
    pub lower_998: f64,
    pub upper_998: f64,
}

impl ConfidenceLimits {
    /// ±k when the limits put the area above (below) `national` at the k-th level (1 = 95%,
    /// 2 = 99.8%), 0 when both levels include it: the test that places a point outside or inside
    /// the Poisson funnel.
    pub(crate) fn flag(&self, national: f64) -> i32 {
        if self.lower_998 > national {
            2
        } else if self.upper_998 < national {
            -2
        } else if self.lower_95 > national {
            1
        } else if self.upper_95 < national {
            -1
        } else {
            0
        }
    }
}

/// One row of the `factor_ratios` output (SPEC §3).
#[derive(Debug, Clone, PartialEq)]
pub struct FactorRatioRow {
    /// `sex`, `imd_quintile` or `age_band`.
    pub factor: String,
    pub category: String,
    /// Index into [`ReportInput::measures`].
    pub measure: usize,
    pub standardised_rate: f64,
    /// None when the ratio is undefined (the note says why).
    pub ratio: Option<f64>,
    pub ratio_method: String,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub stars: String,
    pub note: String,
}

/// One level of an area's overdispersion-adjusted limits, on the ratio (O/E) scale.
#[derive(Debug, Clone, PartialEq)]
pub struct AdjustedLevel {
    /// E.g. 0.998.
    pub level: f64,
    pub lower: f64,
    pub upper: f64,
    /// `high`, `low` or empty, as the overdispersion method flagged the area at this level.
    pub flag: String,
}

/// One row of the `overdispersed_limits` output: an area's funnel limits widened for
/// overdispersion by the run's overdispersion method, at each of its levels (narrowest first).
#[derive(Debug, Clone, PartialEq)]
pub struct AdjustedLimits {
    /// Index into [`ReportInput::areas`].
    pub area: usize,
    /// Index into [`ReportInput::measures`].
    pub measure: usize,
    /// The expected count the limits are at.
    pub expected: f64,
    pub levels: Vec<AdjustedLevel>,
    /// The area's exact Poisson p-value adjusted for the false discovery rate over the measure's
    /// areas (Benjamini–Hochberg), as the overdispersion method gives it; NaN without one.
    pub exact_fdr_p_value: f64,
}

impl AdjustedLimits {
    /// +k when the area is flagged high at its k-th level (1-based; the widest flagged level),
    /// −k when low, 0 when within every level.
    pub(crate) fn signed_flag(&self) -> i32 {
        let mut flag = 0;
        for (k, level) in self.levels.iter().enumerate() {
            let k = k as i32 + 1;
            match level.flag.as_str() {
                "high" => flag = k,
                "low" => flag = -k,
                _ => {}
            }
        }
        flag
    }
}

/// Area boundaries: a GeoJSON FeatureCollection in WGS84 (Polygon and MultiPolygon features).
#[derive(Debug, Clone, Copy)]
pub struct Boundaries<'a> {
    pub geojson: &'a str,
    /// The feature property holding the area code the run's areas use, e.g. `ICB23CD`.
    pub join_property: &'a str,
}

/// The run's confidence-interval method, which draws the funnel plots' control limits
/// ([`ConfidenceIntervalMethod::funnel_limits`]) so that a point is outside the funnel exactly when
/// its own limits in `area_rates` exclude the national rate.
#[derive(Clone, Copy)]
pub struct FunnelLimits<'a> {
    pub method: &'a dyn ConfidenceIntervalMethod,
}

impl FunnelLimits<'_> {
    /// Control limits of O/E at each expected count, one [`Limits`] per level of the method.
    pub(crate) fn at(&self, expected: &[f64]) -> Result<Vec<Limits>, strata_api::MethodError> {
        self.method.funnel_limits(expected)
    }

    /// The levels the funnel draws, e.g. "95% and 99.8%".
    pub(crate) fn levels_text(&self) -> Result<String, strata_api::MethodError> {
        let levels: Vec<String> = self
            .at(&[1.0])?
            .iter()
            .map(|l| format!("{}%", (l.level * 1000.0).round() / 10.0))
            .collect();
        Ok(match levels.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "no".into(),
        })
    }
}

impl std::fmt::Debug for FunnelLimits<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunnelLimits")
            .field("method", &self.method.method_name())
            .finish()
    }
}

/// Everything a report is made from. Measure and area indices are those of `rates`.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// E.g. "Diagnostic Imaging Dataset: Standardised ICB rates".
    pub title: &'a str,
    /// E.g. "2023/24".
    pub year_label: &'a str,
    /// "ICB" or "CCG".
    pub area_kind: &'a str,
    pub recipe_fingerprint: &'a str,
    /// Indexed as `rates` indexes measures.
    pub measures: &'a [MeasureLabel],
    /// Indexed as `rates` indexes areas.
    pub areas: &'a [Area],
    pub rates: &'a StandardisedRates,
    /// Any order; matched to rates by (area, measure).
    pub limits: &'a [ConfidenceLimits],
    /// Name of the confidence-interval method, e.g. "exact Poisson (O < 10) / Byar (O ≥ 10)".
    pub ci_method: &'a str,
    /// The funnel plots' control limits, from the same method.
    pub funnel: FunnelLimits<'a>,
    pub factor_ratios: &'a [FactorRatioRow],
    /// Summary (named `summary`, long format `measure, statistic, value, areas`), data-quality and
    /// any other tables; each gets a workbook sheet, and all but the summary an Annex A section.
    pub tables: &'a [Table],
    pub manifest_json: &'a str,
    /// Sources and licence lines, one per entry.
    pub sources: &'a [String],
    /// Notes on method and data quality, one per entry.
    pub notes: &'a [String],
    pub boundaries: Option<Boundaries<'a>>,
    /// Each area's parent (a practice's sub-ICB, a sub-ICB's ICB), indexed as `areas`; empty when
    /// the run's areas have no parent level.
    pub parents: &'a [Option<Area>],
    /// Overdispersion-adjusted funnel limits (`overdispersed_limits`), any order; empty without
    /// an overdispersion stage.
    pub adjusted: &'a [AdjustedLimits],
    /// Name of the overdispersion method, e.g. "Spiegelhalter additive random effects: …".
    pub adjusted_method: &'a str,
}

/// Above this many areas a report is compact: no chart with a bar per area, funnel points without
/// a title each (but those flagged), capped area lists and tables, and every area in the
/// searchable tables instead. The published levels (42 ICBs, 135 CCGs, 106 sub-ICB locations) are
/// below it; PCNs (about 1,250) and practices (about 6,500) above.
pub const COMPACT_ABOVE_AREAS: usize = 300;

/// The name of the summary table among [`ReportInput::tables`].
pub(crate) const SUMMARY_TABLE: &str = "summary";

impl<'a> ReportInput<'a> {
    /// Whether the report is compact ([`COMPACT_ABOVE_AREAS`]).
    pub fn compact(&self) -> bool {
        self.areas.len() > COMPACT_ABOVE_AREAS
    }

    /// Whether the areas have parents to group them by.
    pub(crate) fn has_parents(&self) -> bool {
        self.parents.iter().any(Option::is_some)
    }

    /// The adjusted limits of one measure, keyed by area.
    pub(crate) fn adjusted_index(&self, measure: usize) -> HashMap<usize, &'a AdjustedLimits> {
        self.adjusted
            .iter()
            .filter(|a| a.measure == measure)
            .map(|a| (a.area, a))
            .collect()
    }

    pub(crate) fn measure_label(&self, measure: usize) -> &str {
        self.measures
            .get(measure)
            .map(|m| m.label.as_str())
            .unwrap_or("unknown measure")
    }

    /// The unit rates are per, as printed: `10,000`.
    pub(crate) fn rate_per(&self) -> String {
        strata_api::rate_per_text(self.rates.rate_per)
    }

    pub(crate) fn area(&self, area: usize) -> Option<&'a Area> {
        self.areas.get(area)
    }

    /// Area rows of one measure, in the order of `rates`.
    pub(crate) fn area_rates(&self, measure: usize) -> Vec<&'a AreaRate> {
        self.rates
            .areas
            .iter()
            .filter(|r| r.measure == measure)
            .collect()
    }

    pub(crate) fn national_rate(&self, measure: usize) -> Option<f64> {
        self.rates
            .national
            .iter()
            .find(|n| n.measure == measure)
            .map(|n| n.rate)
            .filter(|r| r.is_finite())
    }

    /// Confidence limits keyed by (area, measure).
    pub(crate) fn limits_index(&self) -> HashMap<(usize, usize), &'a ConfidenceLimits> {
        self.limits
            .iter()
            .map(|l| ((l.area, l.measure), l))
            .collect()
    }

    pub(crate) fn summary(&self) -> Option<&'a Table> {
        self.tables.iter().find(|t| t.name == SUMMARY_TABLE)
    }

    /// A summary statistic of one measure: its `value`, and its `areas` text if any. The summary's
    /// `measure` column may hold the key or the label.
    pub(crate) fn summary_stat(
        &self,
        measure: usize,
        statistic: &str,
    ) -> Option<(f64, Option<&'a str>)> {
        let table = self.summary()?;
        let label = self.measures.get(measure)?;
        let col = |name: &str| table.columns.iter().position(|c| c == name);
        let (measure_col, statistic_col, value_col) =
            (col("measure")?, col("statistic")?, col("value")?);
        let areas_col = col("areas");
        table.rows.iter().find_map(|row| {
            let text = |i: usize| match row.get(i) {
                Some(Value::Text(t)) => Some(t.as_str()),
                _ => None,
            };
            let m = text(measure_col)?;
            if (m != label.key && m != label.label) || text(statistic_col)? != statistic {
                return None;
            }
            let value = match row.get(value_col) {
                Some(Value::Number(v)) if v.is_finite() => *v,
                _ => return None,
            };
            Some((value, areas_col.and_then(text).filter(|t| !t.is_empty())))
        })
    }
}
