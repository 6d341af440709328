//! Per-year calibration settings (`configs/synth/did-<year>.toml`) and the published-figures file they point at.

use crate::error::SynthError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The 14 measure keys of SPEC §3, modalities first.
pub const MEASURES: [&str; 14] = [
    "xray",
    "ultrasound",
    "ct",
    "mri",
    "fluoroscopy",
    "nuclear_medicine",
    "pet",
    "spect",
    "medical_photography",
    "brain_mri",
    "chest_xray",
    "chest_ct",
    "kidney_bladder_us",
    "abdomen_pelvis_us",
];

/// The 9 modalities (records carry one of these in `modality`).
pub const MODALITIES: [&str; 9] = [
    "xray",
    "ultrasound",
    "ct",
    "mri",
    "fluoroscopy",
    "nuclear_medicine",
    "pet",
    "spect",
    "medical_photography",
];

/// Which modality each EDOC measure is a subset of.
pub const EDOC_PARENT: [(&str, &str); 5] = [
    ("brain_mri", "mri"),
    ("chest_xray", "xray"),
    ("chest_ct", "ct"),
    ("kidney_bladder_us", "ultrasound"),
    ("abdomen_pelvis_us", "ultrasound"),
];

/// How the generator turns expected counts into record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CountSampling {
    /// Independent Poisson draws per cell (realistic noise).
    #[default]
    Poisson,
    /// Systematic sampling along each area × modality stream: totals exact to ±1 (for tests at tiny scale).
    Systematic,
}

impl CountSampling {
    /// The name a config, a recipe and the command line give it.
    pub fn name(self) -> &'static str {
        match self {
            CountSampling::Poisson => "poisson",
            CountSampling::Systematic => "systematic",
        }
    }
}

impl std::str::FromStr for CountSampling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "poisson" => Ok(CountSampling::Poisson),
            "systematic" => Ok(CountSampling::Systematic),
            other => Err(format!(
                "`{other}` is not a count sampling: `poisson` or `systematic`"
            )),
        }
    }
}

/// Ratio definition of the year's section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatioMethod {
    Odds,
    Rate,
}

/// Spread of area standardised rates for one measure when the publication does not print it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadConfig {
    /// Standard deviation of area standardised rates over the national rate.
    pub cv: f64,
    /// Share of areas within one standard deviation of the mean.
    pub share_within_1sd: f64,
}

/// An area forced to a multiple of the national standardised rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    pub measure: String,
    pub area_code: String,
    pub rate_multiple: f64,
}

/// A provider whose submissions are missing for some months, lowering an area's rates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingSubmission {
    pub area_code: String,
    pub provider_code: String,
    /// Months as `YYYY-MM`.
    pub months: Vec<String>,
    /// Share of the area's activity lost.
    pub missing_share: f64,
}

/// The per-year calibration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearConfig {
    pub year: String,
    pub area_type: String,
    /// Year's reference folder, relative to the workspace root.
    pub reference_dir: PathBuf,
    /// Shared reference folder, relative to the workspace root.
    pub common_dir: PathBuf,
    /// Published-figures TOML, relative to the workspace root.
    pub published: PathBuf,
    pub ratio_method: RatioMethod,
    /// First day of the financial year, `YYYY-MM-DD`.
    pub start_date: String,
    /// Relative activity per month, April first.
    pub month_weights: [f64; 12],
    /// Rescale each area's resident population to its practices' registered list sizes.
    #[serde(default = "default_true")]
    pub registered_scaling: bool,
    /// National registered population to rescale to (all areas alike), when list sizes are older than the year.
    #[serde(default)]
    pub registered_total: Option<f64>,
    #[serde(default)]
    pub count_sampling: CountSampling,
    /// Whether the areas whose recorded totals Annex A prints (Tables A.3 and A.4) are fitted to
    /// them (a round trip): each sits at the printed spread's mean times a level found so that its
    /// recorded tests are the printed total. Off by default: the areas draw their rates from the
    /// spread like every other.
    #[serde(default)]
    pub area_totals_from_annex: bool,
    /// Seed of the area effects (the "truth" of the year); record sampling uses the seed given to `generate`.
    pub calibration_seed: u64,
    /// Spread used for measures whose spread the publication does not print.
    pub default_spread: SpreadConfig,
    #[serde(default)]
    pub spread: BTreeMap<String, SpreadConfig>,
    #[serde(default)]
    pub outliers: Vec<Outlier>,
    #[serde(default)]
    pub missing_submissions: Vec<MissingSubmission>,
    /// Exam codes used for records of a modality that are not EDOC tests.
    pub other_exam_codes: BTreeMap<String, Vec<String>>,
    /// Weights of patient source `01`..`07`.
    pub patient_source_weights: [f64; 7],
    /// Rows per emitted batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_true() -> bool {
    true
}

fn default_batch_rows() -> usize {
    1_000_000
}

pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SynthError> {
    let text = std::fs::read_to_string(path).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| SynthError::Toml {
        path: path.to_path_buf(),
        source,
    })
}

impl YearConfig {
    /// Read and check a year config.
    pub fn load(path: &Path) -> Result<YearConfig, SynthError> {
        let config: YearConfig = read_toml(path)?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), SynthError> {
        let fail = |message: String| SynthError::Config {
            path: path.to_path_buf(),
            message,
        };
        if self
            .month_weights
            .iter()
            .any(|w| !(w.is_finite() && *w >= 0.0))
            || self.month_weights.iter().sum::<f64>() <= 0.0
        {
            return Err(fail(
                "month_weights must be non-negative with a positive sum".into(),
            ));
        }
        for modality in MODALITIES {
            if self
                .other_exam_codes
                .get(modality)
                .is_none_or(|c| c.is_empty())
            {
                return Err(fail(format!(
                    "other_exam_codes.{modality} is missing or empty"
                )));
            }
        }
        for (measure, spread) in &self.spread {
            if !MEASURES.contains(&measure.as_str()) {
                return Err(fail(format!("spread.{measure}: unknown measure")));
            }
            if !(spread.cv >= 0.0 && spread.share_within_1sd > 0.5 && spread.share_within_1sd < 1.0)
            {
                return Err(fail(format!(
                    "spread.{measure}: cv ≥ 0 and 0.5 < share_within_1sd < 1"
                )));
            }
        }
        for outlier in &self.outliers {
            if !MEASURES.contains(&outlier.measure.as_str()) || outlier.rate_multiple <= 0.0 {
                return Err(fail(format!(
                    "outlier {} / {}: unknown measure or non-positive multiple",
                    outlier.measure, outlier.area_code
                )));
            }
        }
        for missing in &self.missing_submissions {
            if !(0.0..0.9).contains(&missing.missing_share) || missing.months.is_empty() {
                return Err(fail(format!(
                    "missing submission {}/{}: share must be in [0, 0.9) with at least one month",
                    missing.area_code, missing.provider_code
                )));
            }
        }
        if self
            .registered_total
            .is_some_and(|t| !(t.is_finite() && t > 0.0))
        {
            return Err(fail("registered_total must be positive".into()));
        }
        if self.batch_rows == 0 {
            return Err(fail("batch_rows must be positive".into()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- published figures

/// The parts of `configs/published/did-<year>.toml` the generator calibrates to.
#[derive(Debug, Clone, Deserialize)]
pub struct Published {
    pub national_rates: BTreeMap<String, f64>,
    pub factor_ratios: FactorRatios,
    #[serde(default)]
    pub notes: Vec<PublishedNote>,
    #[serde(default)]
    pub summary: BTreeMap<String, toml::Value>,
    pub annex_a: AnnexA,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FactorRatios {
    pub sex: BTreeMap<String, BTreeMap<String, String>>,
    pub imd_quintile: BTreeMap<String, BTreeMap<String, String>>,
    pub age_group: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublishedNote {
    pub factor: String,
    pub category: String,
    pub measure: String,
    pub reported_category: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AnnexA {
    /// Share of patients living in another area than their practice's ("around 7%").
    #[serde(default)]
    pub resident_different_area_share: f64,
    pub route_gp_practice_count: f64,
    pub route_gp_practice_share: f64,
    pub route_lsoa_count: f64,
    pub route_non_english_count: f64,
    pub route_unknown_count: f64,
    pub omitted_no_lsoa_count: f64,
    pub omitted_no_sex_count: f64,
    pub omitted_no_age_count: f64,
    #[serde(default)]
    pub providers_no_practice: Vec<ProviderNoPractice>,
    #[serde(default)]
    pub providers_incomplete: Vec<ProviderIncomplete>,
    #[serde(default)]
    pub areas_incomplete: Vec<AreaIncomplete>,
    /// Table A.4 (2023/24): only the areas' recorded totals are read here.
    #[serde(default)]
    pub areas_missing_submissions: Vec<AreaTotal>,
    /// Table A.3's listing rule ("more than 1% and 5,000 tests"): only its share is read here.
    #[serde(default)]
    pub area_incomplete_threshold: Option<ListingThreshold>,
}

impl AnnexA {
    /// The areas whose recorded total Tables A.3 and A.4 print (an area in both comes twice).
    pub fn printed_area_totals(&self) -> impl Iterator<Item = (&String, Option<f64>)> {
        self.areas_incomplete
            .iter()
            .map(|r| (&r.area_code, r.total_tests))
            .chain(
                self.areas_missing_submissions
                    .iter()
                    .map(|r| (&r.area_code, r.total_tests)),
            )
    }
}

/// An Annex A table's listing rule ("more than 1% and 5,000 tests"): the generator reads only the
/// share.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ListingThreshold {
    pub share: f64,
}

/// An area whose recorded total Annex A prints (Tables A.3 and A.4).
#[derive(Debug, Clone, Deserialize)]
pub struct AreaTotal {
    pub area_code: String,
    #[serde(default)]
    pub total_tests: Option<f64>,
}

/// A row of Table A.3: an area with more than the threshold share of tests missing age, sex or LSOA.
#[derive(Debug, Clone, Deserialize)]
pub struct AreaIncomplete {
    pub area_code: String,
    /// The area's recorded tests, complete or not.
    #[serde(default)]
    pub total_tests: Option<f64>,
    pub missing_share: f64,
    pub most_common_missing: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderNoPractice {
    pub provider_code: String,
    pub no_practice_tests: f64,
    pub no_practice_share: f64,
    pub no_lsoa_tests: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderIncomplete {
    pub provider_code: String,
    pub total_tests: f64,
    pub missing_tests: f64,
    /// The printed percentage, more precise than the rounded counts' ratio (9,000 of 11,000 is
    /// printed 83.3%).
    #[serde(default)]
    pub missing_share: Option<f64>,
    pub most_common_missing: String,
}

/// Area spread printed in section 2.2 for one measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedSpread {
    pub share_within_1sd: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Published {
    pub fn load(path: &Path) -> Result<Published, SynthError> {
        read_toml(path)
    }

    /// A printed ratio such as `"0.77***"` as a number.
    pub fn ratio_value(path: &Path, printed: &str) -> Result<f64, SynthError> {
        printed
            .trim_end_matches('*')
            .trim()
            .parse()
            .map_err(|_| SynthError::Config {
                path: path.to_path_buf(),
                message: format!("cannot read ratio `{printed}`"),
            })
    }

    pub fn spread(&self, measure: &str) -> Option<PublishedSpread> {
        let table = self.summary.get(measure)?.as_table()?;
        let number = |key: &str| {
            table
                .get(key)
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
        };
        Some(PublishedSpread {
            share_within_1sd: number("share_within_1sd")?,
            lower: number("within_1sd_lower")?,
            upper: number("within_1sd_upper")?,
        })
    }

    /// National total of records implied by Annex A (GP-attributed count over its share).
    pub fn national_records(&self) -> f64 {
        self.annex_a.route_gp_practice_count / self.annex_a.route_gp_practice_share
    }
}
