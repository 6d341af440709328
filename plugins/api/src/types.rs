//! Plain data that crosses a stage boundary. Counts are `f64` so that one type serves record-level
//! and aggregated input alike; they hold whole numbers.
//!
//! The types derive serde so that a shared-library plugin of a structured stage receives and
//! returns them as bytes ([`crate::ffi::call`]).

use serde::{Deserialize, Serialize};

/// The per-population unit of rates when a recipe names none (`rate_per`): the DID publications
/// print rates per 10,000 registered population.
pub const DEFAULT_RATE_PER: f64 = 10_000.0;

/// A per-population unit as titles and method names print it: `10,000`, `1,000`, `100,000`
/// (whole numbers with thousands separators; a fractional unit as written).
pub fn rate_per_text(rate_per: f64) -> String {
    if rate_per.fract() != 0.0 || !rate_per.is_finite() || rate_per.abs() >= 1e15 {
        return rate_per.to_string();
    }
    let digits = format!("{}", rate_per.abs() as u64);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// One area (CCG, ICB, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    pub code: String,
    pub name: String,
}

/// One axis of the standardisation strata, e.g. `age_band` with categories `0-4` … `90+`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub categories: Vec<String>,
}

impl Dimension {
    pub fn new(name: &str, categories: &[&str]) -> Self {
        Dimension {
            name: name.to_string(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
        }
    }
}

/// Tests and population per area × stratum cell (× measure for tests), dense.
///
/// A cell is one combination of the dimensions' categories, numbered row-major in dimension order.
/// `tests[(measure * areas + area) * cells + cell]`, `population[area * cells + cell]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StratifiedCounts {
    pub areas: Vec<Area>,
    pub measures: Vec<String>,
    pub dimensions: Vec<Dimension>,
    pub tests: Vec<f64>,
    pub population: Vec<f64>,
    /// Rates computed from these counts are per this many people (the recipe's `rate_per`,
    /// [`DEFAULT_RATE_PER`] unless it names one); every rate-producing stage scales by it.
    pub rate_per: f64,
}

impl StratifiedCounts {
    /// All zero, shaped for these areas, measures and dimensions, rates per [`DEFAULT_RATE_PER`].
    pub fn zeroed(areas: Vec<Area>, measures: Vec<String>, dimensions: Vec<Dimension>) -> Self {
        let cells: usize = dimensions.iter().map(|d| d.categories.len()).product();
        let tests = vec![0.0; measures.len() * areas.len() * cells];
        let population = vec![0.0; areas.len() * cells];
        StratifiedCounts {
            areas,
            measures,
            dimensions,
            tests,
            population,
            rate_per: DEFAULT_RATE_PER,
        }
    }

    pub fn cells(&self) -> usize {
        self.dimensions.iter().map(|d| d.categories.len()).product()
    }

    /// Cell number of one category index per dimension.
    pub fn cell_index(&self, coords: &[usize]) -> usize {
        debug_assert_eq!(coords.len(), self.dimensions.len());
        coords
            .iter()
            .zip(&self.dimensions)
            .fold(0, |acc, (&c, d)| acc * d.categories.len() + c)
    }

    /// Category index per dimension of a cell number.
    pub fn cell_coords(&self, mut cell: usize) -> Vec<usize> {
        let mut coords = vec![0; self.dimensions.len()];
        for (slot, d) in coords.iter_mut().zip(&self.dimensions).rev() {
            let n = d.categories.len();
            *slot = cell % n;
            cell /= n;
        }
        coords
    }

    pub fn dimension_index(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.name == name)
    }

    /// The tests of one measure in one area, one value per cell.
    pub fn tests_of(&self, measure: usize, area: usize) -> &[f64] {
        let cells = self.cells();
        let start = (measure * self.areas.len() + area) * cells;
        &self.tests[start..start + cells]
    }

    pub fn tests_of_mut(&mut self, measure: usize, area: usize) -> &mut [f64] {
        let cells = self.cells();
        let start = (measure * self.areas.len() + area) * cells;
        &mut self.tests[start..start + cells]
    }

    pub fn population_of(&self, area: usize) -> &[f64] {
        let cells = self.cells();
        &self.population[area * cells..(area + 1) * cells]
    }

    pub fn population_of_mut(&mut self, area: usize) -> &mut [f64] {
        let cells = self.cells();
        &mut self.population[area * cells..(area + 1) * cells]
    }
}

/// The last category of every dimension in the counts the exclusions stage receives: records
/// whose value on that dimension is not known.
pub const UNKNOWN_CATEGORY: &str = "unknown";

/// Unknown values that leave a record out of the rates under an exclusion rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedUnknowns {
    pub sex: bool,
    pub age_band: bool,
    pub imd_quintile: bool,
}

impl StratifiedCounts {
    /// These counts with every dimension's [`UNKNOWN_CATEGORY`] appended (all zero there).
    pub fn with_unknown_categories(&self) -> StratifiedCounts {
        let dimensions: Vec<Dimension> = self
            .dimensions
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.categories.push(UNKNOWN_CATEGORY.to_string());
                d
            })
            .collect();
        let mut out =
            StratifiedCounts::zeroed(self.areas.clone(), self.measures.clone(), dimensions);
        out.rate_per = self.rate_per;
        out.copy_known_cells_from(self);
        out
    }

    /// These counts without the last category of each dimension (the [`UNKNOWN_CATEGORY`] of
    /// counts made by [`Self::with_unknown_categories`]); what falls there is dropped.
    pub fn without_unknown_categories(&self) -> StratifiedCounts {
        let dimensions: Vec<Dimension> = self
            .dimensions
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.categories.pop();
                d
            })
            .collect();
        let mut out =
            StratifiedCounts::zeroed(self.areas.clone(), self.measures.clone(), dimensions);
        out.rate_per = self.rate_per;
        out.copy_known_cells_from(self);
        out
    }

    /// Copies every cell both shapes have (the same categories by position, up to the shorter
    /// dimension) from `other`, which has the same areas and measures.
    fn copy_known_cells_from(&mut self, other: &StratifiedCounts) {
        let (cells, other_cells) = (self.cells(), other.cells());
        let shared: Vec<usize> = self
            .dimensions
            .iter()
            .zip(&other.dimensions)
            .map(|(a, b)| a.categories.len().min(b.categories.len()))
            .collect();
        let map: Vec<(usize, usize)> = (0..cells)
            .filter_map(|cell| {
                let coords = self.cell_coords(cell);
                coords
                    .iter()
                    .zip(&shared)
                    .all(|(c, n)| c < n)
                    .then(|| (cell, other.cell_index(&coords)))
            })
            .collect();
        for block in 0..self.measures.len() * self.areas.len() {
            for &(to, from) in &map {
                self.tests[block * cells + to] = other.tests[block * other_cells + from];
            }
        }
        for area in 0..self.areas.len() {
            for &(to, from) in &map {
                self.population[area * cells + to] = other.population[area * other_cells + from];
            }
        }
    }
}

/// National rate of one measure over the complete cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NationalRate {
    pub measure: usize,
    pub observed: f64,
    pub population: f64,
    /// Per [`StandardisedRates::rate_per`] people.
    pub rate: f64,
}

/// One area × measure row of the standardisation stage. Rates per [`StandardisedRates::rate_per`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaRate {
    pub area: usize,
    pub measure: usize,
    pub observed: f64,
    pub expected: f64,
    pub population: f64,
    pub crude_rate: f64,
    /// `observed / expected × national rate`; NaN when expected is 0.
    pub standardised_rate: f64,
    /// The national rate this area's ratio is scaled by.
    pub national_rate: f64,
    /// The variance of `standardised_rate` (in squared rate units), where the standardisation
    /// method estimates one from the strata (direct standardisation: `U² Σ_j w_j² t_j / n_j²`;
    /// NaN where the rate is undefined); `None` where limits come from O and E alone (indirect
    /// standardisation). Dobson's limits (`ci.dobson`) need it.
    pub variance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardisedRates {
    pub method: String,
    /// Every rate here is per this many people (the counts' [`StratifiedCounts::rate_per`]).
    pub rate_per: f64,
    pub national: Vec<NationalRate>,
    pub areas: Vec<AreaRate>,
}

/// One category of one factor, standardised for the other factors. Rates per
/// [`FactorRates::rate_per`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorRate {
    pub factor: String,
    /// The category's code (e.g. `2`, `75+`), stable whatever the labels.
    pub code: String,
    /// The category's label as published (e.g. `Female`, `2 More deprived`).
    pub category: String,
    pub measure: usize,
    /// True for the category every other is compared with (ratio 1).
    pub is_base: bool,
    /// Set on a category computed only to stand in for another whose ratio is undefined, e.g. `65+`
    /// standing in for `75+`; names the category it stands in for.
    pub fallback_for: Option<String>,
    pub observed: f64,
    pub expected: f64,
    pub population: f64,
    pub standardised_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorRates {
    pub method: String,
    /// Every rate here is per this many people (the counts' [`StratifiedCounts::rate_per`]).
    pub rate_per: f64,
    pub rows: Vec<FactorRate>,
}

/// A ratio of two rates, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioValue {
    pub value: Option<f64>,
    pub note: Option<String>,
}

/// The two categories a significance test compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Standardised rates per `rate_per` people.
    pub base_rate: f64,
    pub comparison_rate: f64,
    /// The recipe's per-population unit of the two rates.
    pub rate_per: f64,
    pub base_observed: f64,
    pub comparison_observed: f64,
    pub base_expected: f64,
    pub comparison_expected: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignificanceResult {
    pub statistic: f64,
    pub p_value: f64,
    /// `*`, `**`, `***` or empty.
    pub stars: String,
}

/// Lower and upper limits of one confidence level, on the standardised-rate scale (or, from a
/// ratio method's [`crate::RatioMethod::limits`], on the ratio scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// E.g. 0.95.
    pub level: f64,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// How a record found its area (SPEC §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Route {
    GpPractice,
    Lsoa,
    NonEnglishPractice,
    Unattributed,
}

impl Route {
    pub const ALL: [Route; 4] = [
        Route::GpPractice,
        Route::Lsoa,
        Route::NonEnglishPractice,
        Route::Unattributed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Route::GpPractice => "gp_practice",
            Route::Lsoa => "lsoa",
            Route::NonEnglishPractice => "non_english_practice",
            Route::Unattributed => "unattributed",
        }
    }
}

/// What the year's practice map says about a record's GP practice code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PracticeLookup {
    /// No code submitted.
    Missing,
    /// A code in no map of the year.
    Unknown,
    /// A valid practice outside England's areas (Wales, prisons, MoD, ...).
    NonEnglish,
    /// An English practice, with its area index.
    English(u32),
}

/// One distinct practice × LSOA combination to attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributionCandidate {
    pub practice: PracticeLookup,
    /// Area of the patient's LSOA, if the LSOA is known.
    pub lsoa_area: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub area: Option<u32>,
    pub route: Route,
}

/// Distinct raw values the derivation rules map, one output per input, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DerivationInput {
    pub sex_values: Vec<Option<String>>,
    pub ages: Vec<Option<i64>>,
    pub imd_deciles: Vec<Option<u8>>,
    /// Distinct (modality, exam code) pairs.
    pub modality_exams: Vec<(String, Option<String>)>,
    /// The year's exam-code list: (exam code, measure key) pairs, from the recipe's input file.
    pub exam_code_list: Vec<(String, String)>,
}

/// Derived values, indices into the dimension categories and measure keys it declares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub sex: Vec<Option<u8>>,
    pub age_band: Vec<Option<u8>>,
    pub imd_quintile: Vec<Option<u8>>,
    /// Measures each (modality, exam code) pair counts towards; empty for none.
    pub measures: Vec<Vec<u16>>,
    /// An (modality) value outside the recipe's keys, per pair; reported as a data-quality issue.
    pub unknown_modality: Vec<bool>,
}

/// The dimensions and measures a derivation plugin produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivationShape {
    pub sex: Dimension,
    pub age_band: Dimension,
    pub imd_quintile: Dimension,
    pub measures: Vec<String>,
}

/// One cell of the data-quality cube the engine counts from record-level input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityCell {
    pub provider: u32,
    pub area: Option<u32>,
    pub route: Route,
    pub has_practice: bool,
    pub has_lsoa: bool,
    pub missing_age: bool,
    pub missing_sex: bool,
    pub missing_imd: bool,
    /// 0 = first month of the year; [`OUTSIDE_YEAR`] for a record dated outside the reporting year.
    pub month: u8,
    /// The record's modality is a standard one (not an EDOC-only measure); Annex A counts these.
    pub standard_modality: bool,
    pub tests: f64,
}

/// The month of a quality cell whose records are dated outside the reporting year.
pub const OUTSIDE_YEAR: u8 = u8::MAX;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QualityInput {
    pub providers: Vec<Area>,
    pub areas: Vec<Area>,
    pub cells: Vec<QualityCell>,
}

/// A cell of a generic output table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Text(String),
    Number(f64),
    Missing,
}

impl Value {
    /// A finite number, or missing (an undefined statistic, a NaN from a zero denominator).
    pub fn finite(x: f64) -> Value {
        if x.is_finite() {
            Value::Number(x)
        } else {
            Value::Missing
        }
    }
}

/// A generic output table (data-quality tables, summaries).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// What this table is, for the workbook and the report.
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// The columns that are published counts of tests or people, declared by the stage that
    /// makes the table: disclosure control protects these and only these (rates, ratios, shares
    /// and limits are not counts).
    pub counts: Vec<String>,
}

impl Table {
    pub fn new(name: &str, title: &str, columns: &[&str]) -> Self {
        Table {
            name: name.to_string(),
            title: title.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Declares which of the table's columns are published counts (names not among its columns
    /// are ignored).
    pub fn with_counts(mut self, counts: &[&str]) -> Self {
        self.counts = counts
            .iter()
            .filter(|c| self.columns.iter().any(|column| column == *c))
            .map(|c| c.to_string())
            .collect();
        self
    }
}

/// Stars for a p-value at the published thresholds (0.05, 0.01, 0.001).
pub fn stars_for(p_value: f64) -> &'static str {
    match StarThresholds::default().count(p_value) {
        3 => "***",
        2 => "**",
        1 => "*",
        _ => "",
    }
}

/// A provider and its NHS England region (empty codes when the region is not known).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionalProvider {
    pub code: String,
    pub name: String,
    pub region_code: String,
    pub region_name: String,
}

/// Weekly bands of a DM01 waiting list: `00 < 01 Week` … `12 < 13 Weeks`, then `13+ Weeks`.
pub const WAITING_WEEK_BANDS: usize = 14;

/// One provider × month × diagnostic test of DM01: patients waiting by completed weeks
/// ([`WAITING_WEEK_BANDS`] bands, the last 13 weeks or more) and tests done in the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingListRow {
    /// Index into [`WaitingListInput::providers`].
    pub provider: u32,
    /// `YYYY-MM`.
    pub month: String,
    /// DM01's name of the test, e.g. `MRI`, `NON_OBSTETRIC_ULTRASOUND`.
    pub test: String,
    pub weeks: Vec<f64>,
    pub total_activity: f64,
}

/// DM01 waiting lists as read (commissioners summed, `TOTAL` rows left out), with other
/// nations' published figures to show beside England's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WaitingListInput {
    pub providers: Vec<RegionalProvider>,
    pub rows: Vec<WaitingListRow>,
    pub other_nations: Vec<NationWaitFigure>,
}

/// Another nation's published share waiting six weeks or more over months `first` to `last`
/// (`YYYY-MM`), as printed, with where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NationWaitFigure {
    pub nation: String,
    pub code: String,
    pub first: String,
    pub last: String,
    pub pct_waiting_6_plus_weeks: f64,
    pub source: String,
}

/// What a DID wait measures: the days from the request to the test, or from the test to its
/// report (SPEC §3's optional `request_date` and `report_date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WaitInterval {
    RequestToTest,
    TestToReport,
}

impl WaitInterval {
    pub const ALL: [WaitInterval; 2] = [WaitInterval::RequestToTest, WaitInterval::TestToReport];

    /// The name tables use.
    pub fn key(self) -> &'static str {
        match self {
            WaitInterval::RequestToTest => "request_to_test",
            WaitInterval::TestToReport => "test_to_report",
        }
    }
}

/// One provider × modality × month of test and interval: how many records waited each whole
/// number of days (the later date minus the earlier, so a request after its test or a report
/// before it is a negative day: the method's rule decides what those become), and how many had
/// no date for the interval. A histogram, never a list of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitHistogram {
    /// Index into [`DidWaitsInput::providers`].
    pub provider: u32,
    /// A modality key of SPEC §3.
    pub measure: String,
    /// `YYYY-MM` of the test.
    pub month: String,
    pub interval: WaitInterval,
    /// (days, records), days increasing, each records > 0.
    pub days: Vec<(i64, u64)>,
    /// Records of the cell without the interval's other date.
    pub missing: u64,
}

/// DID waits as counted from record dates, in code order (provider, measure, month, interval).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DidWaitsInput {
    pub providers: Vec<RegionalProvider>,
    pub histograms: Vec<WaitHistogram>,
}

/// One site of a care setting outside hospital (e.g. a community diagnostic centre) as its
/// activity file names it, with the region and ICB the file puts it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingSite {
    pub code: String,
    pub name: String,
    pub region_code: String,
    pub region_name: String,
    pub icb_code: String,
}

/// Tests one site did in one month of one test type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingActivityRow {
    /// Index into [`SettingShareInput::sites`].
    pub site: u32,
    /// `YYYY-MM`.
    pub month: String,
    /// The test type as the file names it (e.g. `Computed Tomography`).
    pub test_name: String,
    /// The DM01 test it is (e.g. `CT`), `None` for a test DM01 does not count (e.g. plain X-ray).
    pub dm01_test: Option<String>,
    pub tests: f64,
}

/// One site of the setting's reference list (e.g. NHS England's approved CDC sites), which
/// activity is joined to by site code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedSite {
    pub code: String,
    pub name: String,
    pub icb_code: String,
    pub host_trust_code: String,
}

/// An ICB: code and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedArea {
    pub code: String,
    pub name: String,
}

/// What a setting-share stage takes: the setting's activity by site, and DM01 activity (the
/// denominator) by provider, each provider with its region and ICB.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SettingShareInput {
    pub sites: Vec<SettingSite>,
    pub activity: Vec<SettingActivityRow>,
    /// The setting's reference list of sites (empty when the recipe names none).
    pub listed_sites: Vec<ListedSite>,
    /// DM01 by provider × month × test; only `total_activity` is a denominator.
    pub dm01: WaitingListInput,
    /// Each DM01 provider's ICB code (parallel to `dm01.providers`; empty when not known).
    pub provider_icbs: Vec<String>,
    /// ICB names by code, for every ICB a provider or site is in.
    pub icbs: Vec<NamedArea>,
}

/// The ratio of a later period's count to an earlier one's, with confidence limits; `None` where
/// the method cannot give one (e.g. no tests in the earlier period), with a note saying why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountRatio {
    pub ratio: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub note: Option<String>,
}

/// Significance stars: one star for each threshold a p-value is below. The thresholds decrease
/// strictly and lie in (0, 1); the publications use 0.05, 0.01 and 0.001 (`*`, `**`, `***`). A
/// significance plugin takes them as its `star_thresholds` parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct StarThresholds(Vec<f64>);

impl StarThresholds {
    /// The publications' thresholds.
    pub const PUBLISHED: [f64; 3] = [0.05, 0.01, 0.001];

    /// Checks the thresholds: each in (0, 1), strictly decreasing; none means no stars.
    pub fn new(thresholds: Vec<f64>) -> Result<Self, String> {
        if let Some(t) = thresholds.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
            return Err(format!("threshold {t} is not strictly between 0 and 1"));
        }
        if let Some(w) = thresholds.windows(2).find(|w| w[1] >= w[0]) {
            return Err(format!(
                "thresholds must decrease (one star below the first, two below the second, …): \
                 {} then {}",
                w[0], w[1]
            ));
        }
        Ok(StarThresholds(thresholds))
    }

    /// How many thresholds `p_value` is below (0 for NaN).
    pub fn count(&self, p_value: f64) -> usize {
        if p_value.is_finite() {
            self.0.iter().filter(|t| p_value < **t).count()
        } else {
            0
        }
    }

    /// The stars of a p-value: `*` repeated [`Self::count`] times.
    pub fn stars(&self, p_value: f64) -> String {
        "*".repeat(self.count(p_value))
    }

    pub fn is_published(&self) -> bool {
        self.0 == Self::PUBLISHED
    }

    /// The publications' thresholds as a parameter's default (`#[serde(default = ...)]`).
    pub fn published_parameter() -> Vec<f64> {
        Self::PUBLISHED.to_vec()
    }

    /// Checks a plugin's `star_thresholds` parameter, naming the key in its error.
    pub fn from_parameter(thresholds: Vec<f64>) -> Result<Self, crate::ParamError> {
        Self::new(thresholds).map_err(|e| crate::ParamError::new("star_thresholds", e))
    }

    /// A method name with these thresholds named when they are not the publications'.
    pub fn method_name(&self, name: &str) -> String {
        if self.is_published() {
            name.to_string()
        } else {
            format!("{name}; {}", self.describe())
        }
    }

    /// For a method name: `stars at p < 0.1, 0.05`.
    pub fn describe(&self) -> String {
        let list: Vec<String> = self.0.iter().map(|t| t.to_string()).collect();
        format!("stars at p < {}", list.join(", "))
    }
}

impl Default for StarThresholds {
    fn default() -> Self {
        StarThresholds(Self::PUBLISHED.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_print_with_thousands_separators() {
        assert_eq!(super::rate_per_text(10_000.0), "10,000");
        assert_eq!(super::rate_per_text(1_000.0), "1,000");
        assert_eq!(super::rate_per_text(100.0), "100");
        assert_eq!(super::rate_per_text(100_000.0), "100,000");
        assert_eq!(super::rate_per_text(1_000_000.0), "1,000,000");
        assert_eq!(super::rate_per_text(2.5), "2.5");
    }

    use super::*;

    #[test]
    fn cell_index_and_coords_round_trip() {
        let c = StratifiedCounts::zeroed(
            vec![],
            vec![],
            vec![
                Dimension::new("imd_quintile", &["1", "2", "3"]),
                Dimension::new("sex", &["1", "2"]),
            ],
        );
        assert_eq!(c.cells(), 6);
        for cell in 0..6 {
            assert_eq!(c.cell_index(&c.cell_coords(cell)), cell);
        }
        assert_eq!(c.cell_index(&[2, 1]), 5);
    }

    #[test]
    fn stars_follow_published_thresholds() {
        assert_eq!(stars_for(0.0009), "***");
        assert_eq!(stars_for(0.001), "**");
        assert_eq!(stars_for(0.049), "*");
        assert_eq!(stars_for(0.05), "");
        assert_eq!(stars_for(f64::NAN), "");
    }

    #[test]
    fn star_thresholds_are_checked_and_counted() {
        let t = StarThresholds::new(vec![0.1, 0.05]).expect("valid");
        assert_eq!(t.stars(0.07), "*");
        assert_eq!(t.stars(0.05), "*");
        assert_eq!(t.stars(0.049), "**");
        assert_eq!(t.stars(0.2), "");
        assert_eq!(t.describe(), "stars at p < 0.1, 0.05");
        assert!(!t.is_published() && StarThresholds::default().is_published());
        assert!(StarThresholds::new(vec![0.01, 0.05]).is_err());
        assert!(StarThresholds::new(vec![0.05, 0.05]).is_err());
        assert!(StarThresholds::new(vec![1.0]).is_err());
        assert!(StarThresholds::new(vec![f64::NAN]).is_err());
        assert_eq!(
            StarThresholds::new(Vec::new()).expect("none").stars(0.0),
            ""
        );
    }
}
