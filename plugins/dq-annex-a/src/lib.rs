//! `data_quality.annex-a` — the data-quality tables of Annex A of both publications (SPEC §2.8),
//! computed from the engine's quality cube over the standard modalities only, as the publications
//! do ("For the standard modalities, …"). Cells with `standard_modality = false` are ignored.
//!
//! Tables (counts are whole numbers, percentages are numbers in percent, unrounded):
//!
//! - `dq_routes` — tests and share by route of attribution, in the order `gp_practice`, `lsoa`,
//!   `non_english_practice`, `unattributed` (2020/21: 96.0%, 3.3%, 0.4%, 0.2%).
//! - `dq_exclusions` — tests left out of the rates, by first reason in the publication's order: no
//!   area (whatever the route: under the published attribution, non-English practice or
//!   unattributed, as 2023/24's "275,000 (0.6%) … no valid ICB" = 149,000 + 126,000; 2020/21's
//!   85,000 counts the unattributed only), then among attributed tests no IMD (LSOA), a
//!   further no sex, a further no age band; share of all tests ("Nationally, 123,000 (0.4%) … a
//!   further 77,000 (0.2%) had gender missing and a further 4,000 (0.0%)" in 2020/21).
//! - `dq_providers_no_practice` (Table A.1) — providers with more than `no_practice_share` (0.10) *and*
//!   more than `no_practice_tests` (10,000) tests without a GP practice code; with the tests of
//!   those that also have no LSOA. Both percentages are of the provider's total tests (2020/21:
//!   RTD 47,000 = 12% and 2,100 = 0.5%, which fit one total and not 2,100 / 47,000).
//! - `dq_providers_incomplete` (Table A.2) — among tests attributed to an area ("with a valid
//!   CCG"), providers with more than `incomplete_share` (0.05) and more than `incomplete_tests`
//!   (5,000) tests missing age, sex or IMD (LSOA), and the most common missing field.
//! - `dq_areas_incomplete` (Table A.3) — the same by area, with `area_incomplete_share` (0.05 in
//!   2020/21, 0.01 in 2023/24) and `area_incomplete_tests` (5,000).
//! - `dq_areas_missing_submissions` (Table A.4) — estimated missing submissions. A provider's
//!   typical month is the median of its monthly totals over all `months` months of the year (a
//!   month with no records counts as 0); a month below `missing_month_fraction` (0.5) of typical is
//!   a shortfall of typical − actual. The provider's shortfall is shared to areas by its area mix
//!   over the year (tests in the area / all the provider's tests, so the unattributed share of the
//!   shortfall goes to no area). Areas with estimated missing more than `missing_share` (0.05) of
//!   their recorded tests and more than `missing_tests` (5,000) are listed; `missing_pct` = missing /
//!   recorded tests (2023/24: 415,000 of 1,121,000 = 37%), `main_provider` the provider contributing
//!   most. Estimated missing is rounded to a whole number before the thresholds apply.
//!
//! Stopping thresholds (not in the publications): data this incomplete should not be published, so
//! the stage fails, and so does the run, naming the column, the counts and the parameter:
//! - `refuse_excluded_share` (default 0.5, in (0, 1]; 1 refuses only a reason that leaves out
//!   every test): when one reason of `dq_exclusions` (no area, no IMD, no sex, no age band; by
//!   first reason, standard modalities, in the year) leaves out at least this share of the tests. An extract whose sex
//!   codes are all unrecognised, or a practice map of the wrong year, stops here.
//! - `max_outside_year_share` (default 0.01): when more than this share of all tests (any
//!   modality) is dated outside the reporting year: last year's extract run with this year's
//!   recipe must not yield a publication. Cells dated outside the year (month
//!   `strata_api::OUTSIDE_YEAR`) are otherwise left out of every table here, whose checks are by
//!   month.
//! - `max_unknown_sex_share`, `max_unknown_age_share` (off unless set): when more than that share
//!   of all tests (every cell, any modality) has no known sex or age band.
//!
//! Shares within them only show in the tables (and the engine's manifest warnings).
//!
//! The table thresholds are strict ("more than") and both must be passed. Most common missing: the field
//! (`LSOA`, `Sex`, `Age`) missing on the most incomplete tests, each counted on its own (a test
//! missing two fields counts for both); ties go in that order. Rows of the provider and area tables
//! are sorted by their listed count, largest first, then by code.
//!
//! Edge cases: a cell naming a provider, area or month outside the input is an error, as is a
//! negative or non-finite count. Providers or areas with no tests are never listed.
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24*, Annex A, Tables A.1–A.4.

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_api::{
    Area, Configured, DataQualityMethod, MethodError, OUTSIDE_YEAR, ParamError, Params,
    PluginDescriptor, QualityInput, Route, StageKind, Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "data_quality.annex-a",
    stage: StageKind::DataQuality,
    version: env!("CARGO_PKG_VERSION"),
    description: "Annex A tables: routes of attribution, providers/areas with missing practice, age, sex or LSOA, estimated missing submissions",
    configure,
};

fn default_no_practice_share() -> f64 {
    0.10
}
fn default_no_practice_tests() -> f64 {
    10_000.0
}
fn default_incomplete_share() -> f64 {
    0.05
}
fn default_incomplete_tests() -> f64 {
    5_000.0
}
fn default_missing_month_fraction() -> f64 {
    0.5
}
fn default_months() -> u8 {
    12
}
fn default_refuse_excluded_share() -> f64 {
    0.5
}
fn default_max_outside_year_share() -> f64 {
    0.01
}
fn default_area_label() -> String {
    "Area".into()
}

/// Thresholds of the Annex A tables; every one belongs to the recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnexAParams {
    #[serde(default = "default_no_practice_share")]
    pub no_practice_share: f64,
    #[serde(default = "default_no_practice_tests")]
    pub no_practice_tests: f64,
    #[serde(default = "default_incomplete_share")]
    pub incomplete_share: f64,
    #[serde(default = "default_incomplete_tests")]
    pub incomplete_tests: f64,
    #[serde(default = "default_incomplete_share")]
    pub area_incomplete_share: f64,
    #[serde(default = "default_incomplete_tests")]
    pub area_incomplete_tests: f64,
    #[serde(default = "default_missing_month_fraction")]
    pub missing_month_fraction: f64,
    #[serde(default = "default_incomplete_share")]
    pub missing_share: f64,
    #[serde(default = "default_incomplete_tests")]
    pub missing_tests: f64,
    /// Months in the year; cells carry month 0..months.
    #[serde(default = "default_months")]
    pub months: u8,
    /// What an area is called in table titles, e.g. `CCG` or `ICB`.
    #[serde(default = "default_area_label")]
    pub area_label: String,
    /// Fail the run when one exclusion reason leaves out at least this share of the tests.
    #[serde(default = "default_refuse_excluded_share")]
    pub refuse_excluded_share: f64,
    /// Fail the run when more than this share of tests is dated outside the reporting year.
    #[serde(default = "default_max_outside_year_share")]
    pub max_outside_year_share: f64,
    /// Fail the run when more than this share of tests has no known sex (off when absent).
    #[serde(default)]
    pub max_unknown_sex_share: Option<f64>,
    /// Fail the run when more than this share of tests has no known age band (off when absent).
    #[serde(default)]
    pub max_unknown_age_share: Option<f64>,
}

impl Default for AnnexAParams {
    fn default() -> Self {
        AnnexAParams {
            no_practice_share: default_no_practice_share(),
            no_practice_tests: default_no_practice_tests(),
            incomplete_share: default_incomplete_share(),
            incomplete_tests: default_incomplete_tests(),
            area_incomplete_share: default_incomplete_share(),
            area_incomplete_tests: default_incomplete_tests(),
            missing_month_fraction: default_missing_month_fraction(),
            missing_share: default_incomplete_share(),
            missing_tests: default_incomplete_tests(),
            months: default_months(),
            area_label: default_area_label(),
            refuse_excluded_share: default_refuse_excluded_share(),
            max_outside_year_share: default_max_outside_year_share(),
            max_unknown_sex_share: None,
            max_unknown_age_share: None,
        }
    }
}

impl AnnexAParams {
    fn check(&self) -> Result<(), ParamError> {
        let shares = [
            ("no_practice_share", self.no_practice_share),
            ("incomplete_share", self.incomplete_share),
            ("area_incomplete_share", self.area_incomplete_share),
            ("missing_share", self.missing_share),
            ("max_outside_year_share", self.max_outside_year_share),
            (
                "max_unknown_sex_share",
                self.max_unknown_sex_share.unwrap_or(0.0),
            ),
            (
                "max_unknown_age_share",
                self.max_unknown_age_share.unwrap_or(0.0),
            ),
        ];
        for (key, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(ParamError::new(
                    key,
                    format!("{key} is a share between 0 and 1, not {share}"),
                ));
            }
        }
        let counts = [
            ("no_practice_tests", self.no_practice_tests),
            ("incomplete_tests", self.incomplete_tests),
            ("area_incomplete_tests", self.area_incomplete_tests),
            ("missing_tests", self.missing_tests),
        ];
        for (key, count) in counts {
            if !(count.is_finite() && count >= 0.0) {
                return Err(ParamError::new(
                    key,
                    format!("{key} must be a count ≥ 0, not {count}"),
                ));
            }
        }
        if !(self.missing_month_fraction > 0.0 && self.missing_month_fraction <= 1.0) {
            return Err(ParamError::new(
                "missing_month_fraction",
                "missing_month_fraction must be in (0, 1]",
            ));
        }
        if !(self.refuse_excluded_share > 0.0 && self.refuse_excluded_share <= 1.0) {
            return Err(ParamError::new(
                "refuse_excluded_share",
                format!(
                    "refuse_excluded_share is a share in (0, 1], not {}",
                    self.refuse_excluded_share
                ),
            ));
        }
        if self.months == 0 {
            return Err(ParamError::new("months", "months must be at least 1"));
        }
        Ok(())
    }
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: AnnexAParams = params.parse()?;
    Ok(Configured::DataQuality(Box::new(AnnexA::new(parsed)?)))
}

/// The configured Annex A method.
#[derive(Debug, Clone)]
pub struct AnnexA {
    params: AnnexAParams,
}

impl AnnexA {
    pub fn new(params: AnnexAParams) -> Result<Self, ParamError> {
        params.check()?;
        Ok(AnnexA { params })
    }
}

/// True when `count` is more than `share` of `total` and more than `min_count`: the publications'
/// "more than 10% and 10,000" test. Division keeps an exact boundary (e.g. 1,000 of 10,000 at 10%)
/// on the boundary.
pub fn exceeds(count: f64, total: f64, share: f64, min_count: f64) -> bool {
    total > 0.0 && count > min_count && count / total > share
}

/// Fails when unknown sex or age is on more tests than the recipe's stopping threshold allows.
fn check_unknown_shares(p: &AnnexAParams, input: &QualityInput) -> Result<(), MethodError> {
    let total: f64 = input.cells.iter().map(|c| c.tests).sum();
    let checks = [
        ("sex", "max_unknown_sex_share", p.max_unknown_sex_share, {
            let unknown: f64 = input
                .cells
                .iter()
                .filter(|c| c.missing_sex)
                .map(|c| c.tests)
                .sum();
            unknown
        }),
        ("age", "max_unknown_age_share", p.max_unknown_age_share, {
            let unknown: f64 = input
                .cells
                .iter()
                .filter(|c| c.missing_age)
                .map(|c| c.tests)
                .sum();
            unknown
        }),
    ];
    for (field, key, limit, unknown) in checks {
        if let Some(limit) = limit
            && total > 0.0
            && unknown / total > limit
        {
            return Err(MethodError::new(format!(
                "column `{field}`: {field} is unknown or missing on {} of {} tests ({:.1}%), more than \
                 {key} = {} allows (hint: fix the extract's {field} codes, or raise {key} in the \
                 recipe if this year's data is known to be so)",
                format_count(unknown),
                format_count(total),
                100.0 * unknown / total,
                limit
            )));
        }
    }
    Ok(())
}

/// Fails when more of the tests than the recipe allows are dated outside the reporting year.
fn check_outside_year(p: &AnnexAParams, input: &QualityInput) -> Result<(), MethodError> {
    let total: f64 = input.cells.iter().map(|c| c.tests).sum();
    let outside: f64 = input
        .cells
        .iter()
        .filter(|c| c.month == OUTSIDE_YEAR)
        .map(|c| c.tests)
        .sum();
    if total > 0.0 && outside / total > p.max_outside_year_share {
        return Err(MethodError::new(format!(
            "column `test_date`: {} of {} tests ({:.1}%) are dated outside the reporting year, \
             more than max_outside_year_share = {} allows (hint: is this extract of the recipe's \
             year? Run it with its own year's recipe, or raise max_outside_year_share if records \
             from outside the year are expected)",
            format_count(outside),
            format_count(total),
            100.0 * outside / total,
            p.max_outside_year_share
        )));
    }
    Ok(())
}

/// Fails when one exclusion reason leaves out at least `refuse_excluded_share` of the tests.
fn check_exclusion_reasons(p: &AnnexAParams, cube: &Cube) -> Result<(), MethodError> {
    let reasons = [
        (
            "no_area",
            "`gp_practice_code` and `lsoa11`",
            "no area from the practice or the LSOA",
            cube.no_area,
        ),
        (
            "no_imd",
            "`lsoa11`",
            "no IMD quintile (no known LSOA)",
            cube.no_imd,
        ),
        ("no_sex", "`sex`", "no known sex", cube.no_sex),
        ("no_age", "`age`", "no age band", cube.no_age),
    ];
    for (reason, columns, what, tests) in reasons {
        let share = if cube.all_tests > 0.0 {
            tests / cube.all_tests
        } else {
            0.0
        };
        if tests > 0.0 && share >= p.refuse_excluded_share {
            return Err(MethodError::new(format!(
                "column {columns}: {} of {} tests ({:.1}%) are left out of the rates with {what} \
                 (`{reason}` in dq_exclusions), at least refuse_excluded_share = {} (hint: check \
                 the extract's codes against the lookups and rules, or map them with \
                 inputs.mapping; raise refuse_excluded_share in the recipe only if this year's \
                 data is known to be so)",
                format_count(tests),
                format_count(cube.all_tests),
                100.0 * share,
                p.refuse_excluded_share
            )));
        }
    }
    Ok(())
}

/// Median of the values (mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    }
}

/// `0.05` → `5`, `0.125` → `12.5` (for titles).
fn format_share(share: f64) -> String {
    let pct = (share * 100.0 * 1e6).round() / 1e6;
    format!("{pct}")
}

/// `10000` → `10,000`; non-whole counts as written.
fn format_count(count: f64) -> String {
    if count.fract() != 0.0 || count.abs() >= 1e15 {
        return format!("{count}");
    }
    let digits = format!("{}", count.abs() as u64);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Tests missing each field among incomplete tests, for "most common missing".
#[derive(Debug, Default, Clone, Copy)]
struct Incomplete {
    total: f64,
    incomplete: f64,
    missing_imd: f64,
    missing_sex: f64,
    missing_age: f64,
}

impl Incomplete {
    fn add(&mut self, tests: f64, missing_age: bool, missing_sex: bool, missing_imd: bool) {
        self.total += tests;
        if missing_age || missing_sex || missing_imd {
            self.incomplete += tests;
        }
        if missing_imd {
            self.missing_imd += tests;
        }
        if missing_sex {
            self.missing_sex += tests;
        }
        if missing_age {
            self.missing_age += tests;
        }
    }

    /// `LSOA`, `Sex` or `Age`; ties in that order.
    fn most_common(&self) -> &'static str {
        let mut best = ("LSOA", self.missing_imd);
        for candidate in [("Sex", self.missing_sex), ("Age", self.missing_age)] {
            if candidate.1 > best.1 {
                best = candidate;
            }
        }
        best.0
    }
}

#[derive(Debug, Clone)]
struct ProviderTotals {
    total: f64,
    no_practice: f64,
    no_practice_no_lsoa: f64,
    attributed: Incomplete,
    monthly: Vec<f64>,
    /// Attributed tests by area over the year.
    area_tests: BTreeMap<u32, f64>,
}

/// Everything Annex A needs, summed once over the standard-modality cells.
#[derive(Debug)]
struct Cube {
    all_tests: f64,
    by_route: BTreeMap<Route, f64>,
    no_area: f64,
    no_imd: f64,
    no_sex: f64,
    no_age: f64,
    providers: Vec<ProviderTotals>,
    areas: Vec<Incomplete>,
}

impl Cube {
    fn build(input: &QualityInput, months: u8) -> Result<Cube, MethodError> {
        let provider_init = ProviderTotals {
            total: 0.0,
            no_practice: 0.0,
            no_practice_no_lsoa: 0.0,
            attributed: Incomplete::default(),
            monthly: vec![0.0; usize::from(months)],
            area_tests: BTreeMap::new(),
        };
        let mut cube = Cube {
            all_tests: 0.0,
            by_route: Route::ALL.iter().map(|&r| (r, 0.0)).collect(),
            no_area: 0.0,
            no_imd: 0.0,
            no_sex: 0.0,
            no_age: 0.0,
            providers: vec![provider_init; input.providers.len()],
            areas: vec![Incomplete::default(); input.areas.len()],
        };
        for (i, cell) in input.cells.iter().enumerate() {
            // Records dated outside the year are in no month: `check_outside_year` weighs them.
            if !cell.standard_modality || cell.month == OUTSIDE_YEAR {
                continue;
            }
            let bad = |what: String| MethodError::new(format!("quality cell {}: {what}", i + 1));
            if !(cell.tests.is_finite() && cell.tests >= 0.0) {
                return Err(bad(format!("{} is not a count of tests", cell.tests)));
            }
            if cell.month >= months {
                return Err(bad(format!(
                    "month {} is outside the year's {months} months (0-based)",
                    cell.month
                )));
            }
            let Some(provider) = cube.providers.get_mut(cell.provider as usize) else {
                return Err(bad(format!(
                    "provider index {} but only {} providers",
                    cell.provider,
                    input.providers.len()
                )));
            };
            let tests = cell.tests;
            cube.all_tests += tests;
            *cube.by_route.entry(cell.route).or_default() += tests;
            provider.total += tests;
            provider.monthly[usize::from(cell.month)] += tests;
            if !cell.has_practice {
                provider.no_practice += tests;
                if !cell.has_lsoa {
                    provider.no_practice_no_lsoa += tests;
                }
            }
            let Some(area) = cell.area else {
                cube.no_area += tests;
                continue;
            };
            let Some(area_totals) = cube.areas.get_mut(area as usize) else {
                return Err(bad(format!(
                    "area index {area} but only {} areas",
                    input.areas.len()
                )));
            };
            area_totals.add(tests, cell.missing_age, cell.missing_sex, cell.missing_imd);
            provider
                .attributed
                .add(tests, cell.missing_age, cell.missing_sex, cell.missing_imd);
            *provider.area_tests.entry(area).or_default() += tests;
            // First reason in the publication's order: LSOA, then sex, then age.
            if cell.missing_imd {
                cube.no_imd += tests;
            } else if cell.missing_sex {
                cube.no_sex += tests;
            } else if cell.missing_age {
                cube.no_age += tests;
            }
        }
        Ok(cube)
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn number(n: f64) -> Value {
    Value::Number(n)
}

/// Sorts (sort key, code, row) largest key first, then by code, and keeps the rows.
fn sorted_rows(mut rows: Vec<(f64, String, Vec<Value>)>) -> Vec<Vec<Value>> {
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

impl AnnexA {
    fn routes(&self, cube: &Cube) -> Table {
        let mut table = Table::new(
            "dq_routes",
            "Routes of attribution, imaging tests (standard modalities)",
            &["route", "tests", "pct"],
        )
        .with_counts(&["tests"]);
        for route in Route::ALL {
            let tests = cube.by_route.get(&route).copied().unwrap_or(0.0);
            table.rows.push(vec![
                text(route.key()),
                number(tests),
                number(percent(tests, cube.all_tests)),
            ]);
        }
        table
    }

    fn exclusions(&self, cube: &Cube) -> Table {
        let mut table = Table::new(
            "dq_exclusions",
            "Imaging tests (standard modalities) omitted from standardised rates, by first reason",
            &["reason", "tests", "pct"],
        )
        .with_counts(&["tests"]);
        for (reason, tests) in [
            ("no_area", cube.no_area),
            ("no_imd", cube.no_imd),
            ("no_sex", cube.no_sex),
            ("no_age", cube.no_age),
        ] {
            table.rows.push(vec![
                text(reason),
                number(tests),
                number(percent(tests, cube.all_tests)),
            ]);
        }
        table
    }

    fn providers_no_practice(&self, cube: &Cube, providers: &[Area]) -> Table {
        let p = &self.params;
        let mut table = Table::new(
            "dq_providers_no_practice",
            &format!(
                "Table A.1. Providers with more than {}% and {} imaging tests with no GP Practice",
                format_share(p.no_practice_share),
                format_count(p.no_practice_tests)
            ),
            &[
                "provider_code",
                "provider_name",
                "no_practice_tests",
                "no_practice_pct",
                "no_practice_no_lsoa_tests",
                "no_practice_no_lsoa_pct",
            ],
        )
        .with_counts(&["no_practice_tests", "no_practice_no_lsoa_tests"]);
        let rows = providers
            .iter()
            .zip(&cube.providers)
            .filter(|(_, t)| {
                exceeds(
                    t.no_practice,
                    t.total,
                    p.no_practice_share,
                    p.no_practice_tests,
                )
            })
            .map(|(provider, t)| {
                let row = vec![
                    text(&provider.code),
                    text(&provider.name),
                    number(t.no_practice),
                    number(percent(t.no_practice, t.total)),
                    number(t.no_practice_no_lsoa),
                    number(percent(t.no_practice_no_lsoa, t.total)),
                ];
                (t.no_practice, provider.code.clone(), row)
            })
            .collect();
        table.rows = sorted_rows(rows);
        table
    }

    fn incomplete_table<'a>(
        name: &str,
        title: String,
        code_column: &str,
        name_column: &str,
        entities: impl Iterator<Item = (&'a Area, &'a Incomplete)>,
        share: f64,
        min_tests: f64,
    ) -> Table {
        let mut table = Table::new(
            name,
            &title,
            &[
                code_column,
                name_column,
                "total_tests",
                "incomplete_tests",
                "incomplete_pct",
                "most_common_missing",
            ],
        )
        .with_counts(&["total_tests", "incomplete_tests"]);
        let rows = entities
            .filter(|(_, t)| exceeds(t.incomplete, t.total, share, min_tests))
            .map(|(entity, t)| {
                let row = vec![
                    text(&entity.code),
                    text(&entity.name),
                    number(t.total),
                    number(t.incomplete),
                    number(percent(t.incomplete, t.total)),
                    text(t.most_common()),
                ];
                (t.incomplete, entity.code.clone(), row)
            })
            .collect();
        table.rows = sorted_rows(rows);
        table
    }

    fn missing_submissions(&self, cube: &Cube, input: &QualityInput) -> Table {
        let p = &self.params;
        // Area → provider → estimated missing tests.
        let mut contributions: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); input.areas.len()];
        for (provider_idx, provider) in cube.providers.iter().enumerate() {
            if provider.total <= 0.0 {
                continue;
            }
            let typical = median(&provider.monthly);
            let shortfall: f64 = provider
                .monthly
                .iter()
                .filter(|&&actual| actual < p.missing_month_fraction * typical)
                .map(|&actual| typical - actual)
                .sum();
            if shortfall <= 0.0 {
                continue;
            }
            for (&area, &tests) in &provider.area_tests {
                *contributions[area as usize]
                    .entry(provider_idx)
                    .or_default() += shortfall * tests / provider.total;
            }
        }

        let label = &p.area_label;
        let mut table = Table::new(
            "dq_areas_missing_submissions",
            &format!(
                "Table A.4. {label}s with more than {}% and {} estimated missing imaging tests",
                format_share(p.missing_share),
                format_count(p.missing_tests)
            ),
            &[
                "area_code",
                "area_name",
                "total_tests",
                "estimated_missing",
                "missing_pct",
                "main_provider",
                "main_provider_name",
            ],
        )
        .with_counts(&["total_tests", "estimated_missing"]);
        let rows = input
            .areas
            .iter()
            .zip(&cube.areas)
            .zip(&contributions)
            .filter_map(|((area, totals), by_provider)| {
                let missing = by_provider.values().sum::<f64>().round();
                if !exceeds(missing, totals.total, p.missing_share, p.missing_tests) {
                    return None;
                }
                // Largest contribution; ties to the first provider.
                let (main, _) =
                    by_provider
                        .iter()
                        .fold(None::<(usize, f64)>, |best, (&idx, &amount)| match best {
                            Some((_, best_amount)) if best_amount >= amount => best,
                            _ => Some((idx, amount)),
                        })?;
                let provider = &input.providers[main];
                let row = vec![
                    text(&area.code),
                    text(&area.name),
                    number(totals.total),
                    number(missing),
                    number(percent(missing, totals.total)),
                    text(&provider.code),
                    text(&provider.name),
                ];
                Some((missing, area.code.clone(), row))
            })
            .collect();
        table.rows = sorted_rows(rows);
        table
    }
}

impl DataQualityMethod for AnnexA {
    fn method_name(&self) -> String {
        let p = &self.params;
        format!(
            "annex a: no practice >{}% & >{}, incomplete >{}% & >{} (areas >{}% & >{}), missing months <{}× median, missing >{}% & >{}",
            format_share(p.no_practice_share),
            format_count(p.no_practice_tests),
            format_share(p.incomplete_share),
            format_count(p.incomplete_tests),
            format_share(p.area_incomplete_share),
            format_count(p.area_incomplete_tests),
            p.missing_month_fraction,
            format_share(p.missing_share),
            format_count(p.missing_tests),
        )
    }

    fn tables(&self, input: &QualityInput) -> Result<Vec<Table>, MethodError> {
        let p = &self.params;
        let cube = Cube::build(input, p.months)?;
        check_outside_year(p, input)?;
        check_exclusion_reasons(p, &cube)?;
        check_unknown_shares(p, input)?;
        let label = &p.area_label;
        Ok(vec![
            self.routes(&cube),
            self.exclusions(&cube),
            self.providers_no_practice(&cube, &input.providers),
            Self::incomplete_table(
                "dq_providers_incomplete",
                format!(
                    "Table A.2. Providers with more than {}% and {} imaging tests with no Age or Sex or LSOA",
                    format_share(p.incomplete_share),
                    format_count(p.incomplete_tests)
                ),
                "provider_code",
                "provider_name",
                input
                    .providers
                    .iter()
                    .zip(cube.providers.iter().map(|t| &t.attributed)),
                p.incomplete_share,
                p.incomplete_tests,
            ),
            Self::incomplete_table(
                "dq_areas_incomplete",
                format!(
                    "Table A.3. {label}s with more than {}% and {} imaging tests with no Age or Sex or LSOA",
                    format_share(p.area_incomplete_share),
                    format_count(p.area_incomplete_tests)
                ),
                "area_code",
                "area_name",
                input.areas.iter().zip(&cube.areas),
                p.area_incomplete_share,
                p.area_incomplete_tests,
            ),
            self.missing_submissions(&cube, input),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::QualityCell;

    fn entities(prefix: &str, n: usize) -> Vec<Area> {
        (0..n)
            .map(|i| Area {
                code: format!("{prefix}{i}"),
                name: format!("{prefix} number {i}"),
            })
            .collect()
    }

    /// A complete, standard-modality test attributed by GP practice in month 0.
    fn cell(provider: u32, area: Option<u32>, tests: f64) -> QualityCell {
        QualityCell {
            provider,
            area,
            route: if area.is_some() {
                Route::GpPractice
            } else {
                Route::Unattributed
            },
            has_practice: true,
            has_lsoa: true,
            missing_age: false,
            missing_sex: false,
            missing_imd: false,
            month: 0,
            standard_modality: true,
            tests,
        }
    }

    fn run(method: &AnnexA, input: &QualityInput) -> BTreeMap<String, Table> {
        method
            .tables(input)
            .expect("tables")
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect()
    }

    fn defaults() -> AnnexA {
        AnnexA::new(AnnexAParams::default()).expect("valid defaults")
    }

    fn num(v: &Value) -> f64 {
        match v {
            Value::Number(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }

    fn txt(v: &Value) -> &str {
        match v {
            Value::Text(t) => t,
            other => panic!("not text: {other:?}"),
        }
    }

    fn codes(table: &Table) -> Vec<&str> {
        table.rows.iter().map(|r| txt(&r[0])).collect()
    }

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} vs {expected}");
    }

    #[test]
    fn exceeds_is_strict_on_both_thresholds() {
        assert!(!exceeds(1_000.0, 10_000.0, 0.10, 100.0));
        assert!(exceeds(1_001.0, 10_000.0, 0.10, 100.0));
        assert!(!exceeds(10_000.0, 50_000.0, 0.10, 10_000.0));
        assert!(exceeds(10_001.0, 50_000.0, 0.10, 10_000.0));
        assert!(!exceeds(6_000.0, 120_000.0, 0.05, 5_000.0));
        assert!(!exceeds(1.0, 0.0, 0.05, 0.0));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn routes_count_standard_modalities_only() {
        let mut cells = vec![
            cell(0, Some(0), 960.0),
            QualityCell {
                route: Route::Lsoa,
                has_practice: false,
                ..cell(0, Some(0), 33.0)
            },
            QualityCell {
                route: Route::NonEnglishPractice,
                ..cell(0, None, 4.0)
            },
            QualityCell {
                has_practice: false,
                has_lsoa: false,
                ..cell(0, None, 3.0)
            },
        ];
        // EDOC-only records are not in Annex A.
        cells.push(QualityCell {
            standard_modality: false,
            ..cell(0, Some(0), 500.0)
        });
        let input = QualityInput {
            providers: entities("P", 1),
            areas: entities("A", 1),
            cells,
        };
        let tables = run(&defaults(), &input);
        let routes = &tables["dq_routes"];
        assert_eq!(routes.columns, ["route", "tests", "pct"]);
        assert_eq!(
            codes(routes),
            [
                "gp_practice",
                "lsoa",
                "non_english_practice",
                "unattributed"
            ]
        );
        let tests: Vec<f64> = routes.rows.iter().map(|r| num(&r[1])).collect();
        assert_eq!(tests, [960.0, 33.0, 4.0, 3.0]);
        let pct: Vec<f64> = routes.rows.iter().map(|r| num(&r[2])).collect();
        for (got, want) in pct.iter().zip([96.0, 3.3, 0.4, 0.3]) {
            close(*got, want);
        }
    }

    #[test]
    fn exclusions_by_first_reason() {
        let cells = vec![
            cell(0, Some(0), 900.0),
            QualityCell {
                missing_imd: true,
                missing_sex: true,
                ..cell(0, Some(0), 10.0)
            },
            QualityCell {
                route: Route::Lsoa,
                missing_sex: true,
                ..cell(0, Some(0), 5.0)
            },
            QualityCell {
                missing_age: true,
                ..cell(0, Some(0), 2.0)
            },
            QualityCell {
                route: Route::NonEnglishPractice,
                missing_imd: true,
                ..cell(0, None, 50.0)
            },
            cell(0, None, 33.0),
        ];
        let input = QualityInput {
            providers: entities("P", 1),
            areas: entities("A", 1),
            cells,
        };
        let table = &run(&defaults(), &input)["dq_exclusions"];
        assert_eq!(codes(table), ["no_area", "no_imd", "no_sex", "no_age"]);
        let tests: Vec<f64> = table.rows.iter().map(|r| num(&r[1])).collect();
        assert_eq!(tests, [83.0, 10.0, 5.0, 2.0]);
        close(num(&table.rows[0][2]), 8.3);
        close(num(&table.rows[3][2]), 0.2);
    }

    /// `no_practice` tests without a GP practice (of which `no_lsoa` without LSOA either) out of `total`.
    fn no_practice_cells(
        provider: u32,
        total: f64,
        no_practice: f64,
        no_lsoa: f64,
    ) -> Vec<QualityCell> {
        vec![
            cell(provider, Some(0), total - no_practice),
            QualityCell {
                route: Route::Lsoa,
                has_practice: false,
                ..cell(provider, Some(0), no_practice - no_lsoa)
            },
            QualityCell {
                has_practice: false,
                has_lsoa: false,
                ..cell(provider, None, no_lsoa)
            },
        ]
    }

    #[test]
    fn table_a1_thresholds_and_order() {
        let cells = [
            no_practice_cells(0, 100_000.0, 10_001.0, 100.0), // listed
            no_practice_cells(1, 100_000.0, 10_000.0, 0.0),   // 10% and 10,000: neither exceeded
            no_practice_cells(2, 50_000.0, 10_000.0, 0.0),    // 20% but not more than 10,000
            no_practice_cells(3, 200_000.0, 20_000.0, 0.0),   // 20,000 but exactly 10%
            no_practice_cells(4, 200_000.0, 20_001.0, 5.0),   // listed
        ]
        .concat();
        let input = QualityInput {
            providers: entities("P", 5),
            areas: entities("A", 1),
            cells,
        };
        let table = &run(&defaults(), &input)["dq_providers_no_practice"];
        assert_eq!(
            table.columns,
            [
                "provider_code",
                "provider_name",
                "no_practice_tests",
                "no_practice_pct",
                "no_practice_no_lsoa_tests",
                "no_practice_no_lsoa_pct"
            ]
        );
        assert_eq!(codes(table), ["P4", "P0"]);
        assert_eq!(txt(&table.rows[1][1]), "P number 0");
        assert_eq!(num(&table.rows[1][2]), 10_001.0);
        close(num(&table.rows[1][3]), 10.001);
        assert_eq!(num(&table.rows[1][4]), 100.0);
        close(num(&table.rows[1][5]), 0.1);
        assert!(
            table.title.contains("more than 10% and 10,000"),
            "{}",
            table.title
        );
    }

    #[test]
    fn table_a1_percentages_are_of_the_provider_total() {
        // Shaped like NT9 in 2020/21 (78,300 = 46%, of which no LSOA 200 = 0.1%): with 170,000
        // tests, 78,300 is 46.06% and 200 is 0.118% of all tests (not 0.26% of 78,300).
        let input = QualityInput {
            providers: entities("P", 1),
            areas: entities("A", 1),
            cells: no_practice_cells(0, 170_000.0, 78_300.0, 200.0),
        };
        let table = &run(&defaults(), &input)["dq_providers_no_practice"];
        assert_eq!(num(&table.rows[0][3]).round(), 46.0);
        assert_eq!((num(&table.rows[0][5]) * 10.0).round() / 10.0, 0.1);
    }

    /// Attributed tests of one provider in area 0 with the given missing flags.
    fn flagged(provider: u32, tests: f64, age: bool, sex: bool, imd: bool) -> QualityCell {
        QualityCell {
            missing_age: age,
            missing_sex: sex,
            missing_imd: imd,
            ..cell(provider, Some(0), tests)
        }
    }

    #[test]
    fn table_a2_thresholds_most_common_and_attributed_only() {
        let cells = vec![
            // Q0: 5,001 of 100,000 incomplete; LSOA 3,001, sex 2,500.
            flagged(0, 94_999.0, false, false, false),
            flagged(0, 2_501.0, false, false, true),
            flagged(0, 2_000.0, false, true, false),
            flagged(0, 500.0, false, true, true),
            // Unattributed tests are not in Table A.2, however incomplete.
            QualityCell {
                missing_imd: true,
                ..cell(0, None, 50_000.0)
            },
            // Q1: exactly 5% and 5,000.
            flagged(1, 95_000.0, false, false, false),
            flagged(1, 5_000.0, false, true, false),
            // Q2: 10,000 but exactly 5%.
            flagged(2, 190_000.0, false, false, false),
            flagged(2, 10_000.0, false, true, false),
            // Q3: 10% but exactly 5,000.
            flagged(3, 45_000.0, false, false, false),
            flagged(3, 5_000.0, false, true, false),
            // Q4: 5,001 of 10,000, sex.
            flagged(4, 4_999.0, false, false, false),
            flagged(4, 5_001.0, false, true, false),
            // Q5: 6,000 of 20,000, age.
            flagged(5, 14_000.0, false, false, false),
            flagged(5, 6_000.0, true, false, false),
            // Q6: 6,000 of 20,000, LSOA and sex tie → LSOA.
            flagged(6, 14_000.0, false, false, false),
            flagged(6, 3_000.0, false, false, true),
            flagged(6, 3_000.0, false, true, false),
        ];
        let providers = entities("Q", 7);
        let input = QualityInput {
            providers,
            areas: entities("A", 1),
            cells,
        };
        let table = &run(&defaults(), &input)["dq_providers_incomplete"];
        assert_eq!(
            table.columns,
            [
                "provider_code",
                "provider_name",
                "total_tests",
                "incomplete_tests",
                "incomplete_pct",
                "most_common_missing"
            ]
        );
        assert_eq!(codes(table), ["Q5", "Q6", "Q0", "Q4"]);
        let row = |code: &str| {
            table
                .rows
                .iter()
                .find(|r| txt(&r[0]) == code)
                .expect("listed")
        };
        assert_eq!(num(&row("Q0")[2]), 100_000.0);
        assert_eq!(num(&row("Q0")[3]), 5_001.0);
        close(num(&row("Q0")[4]), 5.001);
        assert_eq!(txt(&row("Q0")[5]), "LSOA");
        assert_eq!(txt(&row("Q4")[5]), "Sex");
        assert_eq!(txt(&row("Q5")[5]), "Age");
        assert_eq!(txt(&row("Q6")[5]), "LSOA");
    }

    #[test]
    fn table_a2_published_row() {
        // RQ3 in 2020/21: 132,200 tests, 58,600 missing age, sex or LSOA, 44.3%, most common Sex.
        let input = QualityInput {
            providers: vec![Area {
                code: "RQ3".into(),
                name: "Birmingham Women's & Children's NHS Foundation Trust".into(),
            }],
            areas: entities("A", 1),
            cells: vec![
                flagged(0, 132_200.0 - 58_600.0, false, false, false),
                flagged(0, 50_000.0, false, true, false),
                flagged(0, 8_600.0, false, false, true),
            ],
        };
        let table = &run(&defaults(), &input)["dq_providers_incomplete"];
        assert_eq!(codes(table), ["RQ3"]);
        assert_eq!(num(&table.rows[0][2]), 132_200.0);
        assert_eq!(num(&table.rows[0][3]), 58_600.0);
        assert_eq!((num(&table.rows[0][4]) * 10.0).round() / 10.0, 44.3);
        assert_eq!(txt(&table.rows[0][5]), "Sex");
    }

    fn area_incomplete_input() -> QualityInput {
        let in_area = |area: u32, tests: f64, imd: bool| QualityCell {
            missing_imd: imd,
            ..cell(0, Some(area), tests)
        };
        QualityInput {
            providers: entities("P", 1),
            areas: vec![
                Area {
                    code: "QK1".into(),
                    name: "NHS Leicester, Leicestershire and Rutland ICB".into(),
                },
                Area {
                    code: "B".into(),
                    name: "exactly 1% and 5,000".into(),
                },
                Area {
                    code: "C".into(),
                    name: "5,001 of 500,000".into(),
                },
            ],
            cells: vec![
                // QK1 in 2023/24: 642,000 tests, 6,700 missing (1.0%), most common LSOA.
                in_area(0, 642_000.0 - 6_700.0, false),
                in_area(0, 6_700.0, true),
                in_area(1, 495_000.0, false),
                in_area(1, 5_000.0, true),
                in_area(2, 494_999.0, false),
                in_area(2, 5_001.0, true),
            ],
        }
    }

    #[test]
    fn unknown_sex_above_the_recipes_share_fails_and_at_it_passes() {
        // 3 of 100 tests have no known sex: 3%.
        let mut unknown = cell(0, Some(0), 3.0);
        unknown.missing_sex = true;
        let input = QualityInput {
            providers: entities("R", 1),
            areas: entities("A", 1),
            cells: vec![cell(0, Some(0), 97.0), unknown],
        };
        let with = |share: f64| {
            AnnexA::new(AnnexAParams {
                max_unknown_sex_share: Some(share),
                ..AnnexAParams::default()
            })
            .expect("valid")
        };
        assert!(defaults().tables(&input).is_ok(), "off by default");
        assert!(with(0.03).tables(&input).is_ok(), "3% is not more than 3%");
        let err = with(0.02).tables(&input).expect_err("3% > 2%").message;
        assert!(err.contains("3 of 100 tests (3.0%)"), "{err}");
        assert!(err.contains("max_unknown_sex_share = 0.02"), "{err}");
        assert!(
            AnnexA::new(AnnexAParams {
                max_unknown_age_share: Some(1.5),
                ..AnnexAParams::default()
            })
            .is_err()
        );
    }

    #[test]
    fn one_reason_excluding_half_the_tests_fails_by_default_and_less_passes() {
        let with_no_sex = |unknown: f64| {
            let mut no_sex = cell(0, Some(0), unknown);
            no_sex.missing_sex = true;
            QualityInput {
                providers: entities("R", 1),
                areas: entities("A", 1),
                cells: vec![cell(0, Some(0), 100.0 - unknown), no_sex],
            }
        };
        assert!(defaults().tables(&with_no_sex(49.0)).is_ok(), "49% < 50%");
        let err = defaults()
            .tables(&with_no_sex(50.0))
            .expect_err("50% is at the default")
            .message;
        assert!(err.contains("column `sex`"), "{err}");
        assert!(err.contains("50 of 100 tests (50.0%)"), "{err}");
        assert!(err.contains("refuse_excluded_share = 0.5"), "{err}");
        // No area is the first reason: a test with neither area nor sex counts there only.
        let mut nowhere = cell(0, None, 60.0);
        nowhere.missing_sex = true;
        let input = QualityInput {
            providers: entities("R", 1),
            areas: entities("A", 1),
            cells: vec![cell(0, Some(0), 40.0), nowhere],
        };
        let err = defaults().tables(&input).expect_err("60% no area").message;
        assert!(err.contains("`no_area`"), "{err}");
        let allowed = AnnexA::new(AnnexAParams {
            refuse_excluded_share: 0.7,
            ..AnnexAParams::default()
        })
        .expect("valid");
        assert!(allowed.tables(&input).is_ok(), "the recipe allows 60%");
        for bad in [0.0, 1.5, f64::NAN] {
            let params = AnnexAParams {
                refuse_excluded_share: bad,
                ..AnnexAParams::default()
            };
            assert!(AnnexA::new(params).is_err(), "{bad}");
        }
    }

    #[test]
    fn tests_dated_outside_the_year_are_in_no_table_and_too_many_fail() {
        let with_outside = |outside: f64| {
            let mut late = cell(0, Some(0), outside);
            late.month = OUTSIDE_YEAR;
            QualityInput {
                providers: entities("R", 1),
                areas: entities("A", 1),
                cells: vec![cell(0, Some(0), 1000.0 - outside), late],
            }
        };
        // 1% is not more than the default 1%; the table counts only the 990 in the year.
        let tables = run(&defaults(), &with_outside(10.0));
        close(num(&tables["dq_routes"].rows[0][1]), 990.0);
        let err = defaults()
            .tables(&with_outside(11.0))
            .expect_err("1.1% > 1%")
            .message;
        assert!(err.contains("column `test_date`"), "{err}");
        assert!(err.contains("11 of 1,000 tests (1.1%)"), "{err}");
        assert!(err.contains("max_outside_year_share = 0.01"), "{err}");
        // Last year's extract: every test outside the year.
        assert!(defaults().tables(&with_outside(1000.0)).is_err());
    }

    #[test]
    fn table_a3_uses_the_area_share_parameter() {
        let input = area_incomplete_input();
        let at_5 = &run(&defaults(), &input)["dq_areas_incomplete"];
        assert!(at_5.rows.is_empty());

        let params = AnnexAParams {
            area_incomplete_share: 0.01,
            area_label: "ICB".into(),
            ..AnnexAParams::default()
        };
        let at_1 = &run(&AnnexA::new(params).expect("valid"), &input)["dq_areas_incomplete"];
        assert_eq!(at_1.columns[..2], ["area_code", "area_name"]);
        assert_eq!(codes(at_1), ["QK1", "C"]);
        assert_eq!(num(&at_1.rows[0][2]), 642_000.0);
        assert_eq!(num(&at_1.rows[0][3]), 6_700.0);
        assert_eq!((num(&at_1.rows[0][4]) * 10.0).round() / 10.0, 1.0);
        assert_eq!(txt(&at_1.rows[0][5]), "LSOA");
        assert!(
            at_1.title
                .starts_with("Table A.3. ICBs with more than 1% and 5,000"),
            "{}",
            at_1.title
        );
    }

    /// One provider's tests in one area (or none) for each month, skipping `None` months.
    fn monthly(provider: u32, area: Option<u32>, per_month: &[Option<f64>]) -> Vec<QualityCell> {
        per_month
            .iter()
            .enumerate()
            .filter_map(|(month, tests)| {
                tests.map(|t| QualityCell {
                    month: month as u8,
                    ..cell(provider, area, t)
                })
            })
            .collect()
    }

    /// `tests` every month except the months listed as missing.
    fn steady(tests: f64, missing: &[usize]) -> Vec<Option<f64>> {
        (0..12)
            .map(|m| (!missing.contains(&m)).then_some(tests))
            .collect()
    }

    #[test]
    fn table_a4_estimates_shortfalls_and_shares_them_by_area_mix() {
        // Provider P0: 10,000 a month, 70% area X, 20% area Y, 10% unattributed; month 5 missing,
        // month 6 at 4,000 (below half of typical), month 7 at 5,000 (exactly half: not a shortfall).
        // Typical = median = 10,000; shortfall = 10,000 + 6,000 = 16,000 → X 11,200, Y 3,200.
        let mut p0_total: Vec<Option<f64>> = steady(10_000.0, &[5]);
        p0_total[6] = Some(4_000.0);
        p0_total[7] = Some(5_000.0);
        let share =
            |f: f64| -> Vec<Option<f64>> { p0_total.iter().map(|t| t.map(|t| t * f)).collect() };
        let mut cells = [
            monthly(0, Some(0), &share(0.7)),
            monthly(0, Some(1), &share(0.2)),
            monthly(0, None, &share(0.1)),
            // P1: steady in X, no shortfall.
            monthly(1, Some(0), &steady(1_000.0, &[])),
            // Area V: P2 6,000 a month missing month 0, P3 2,000 a month missing month 1.
            monthly(2, Some(2), &steady(6_000.0, &[0])),
            monthly(3, Some(2), &steady(2_000.0, &[1])),
        ]
        .concat();
        // EDOC-only records do not change the typical month.
        cells.push(QualityCell {
            standard_modality: false,
            month: 5,
            ..cell(0, Some(0), 50_000.0)
        });
        let input = QualityInput {
            providers: entities("P", 4),
            areas: vec![
                Area {
                    code: "X".into(),
                    name: "Area X".into(),
                },
                Area {
                    code: "Y".into(),
                    name: "Area Y".into(),
                },
                Area {
                    code: "V".into(),
                    name: "Area V".into(),
                },
            ],
            cells,
        };
        let table = &run(&defaults(), &input)["dq_areas_missing_submissions"];
        assert_eq!(
            table.columns,
            [
                "area_code",
                "area_name",
                "total_tests",
                "estimated_missing",
                "missing_pct",
                "main_provider",
                "main_provider_name"
            ]
        );
        // Y (3,200 missing of 19,800) is 16% but not more than 5,000.
        assert_eq!(codes(table), ["X", "V"]);
        // X: 69,300 from P0 + 12,000 from P1 = 81,300 recorded; 11,200 missing = 13.78%.
        assert_eq!(num(&table.rows[0][2]), 81_300.0);
        assert_eq!(num(&table.rows[0][3]), 11_200.0);
        close(num(&table.rows[0][4]), 11_200.0 / 81_300.0 * 100.0);
        assert_eq!(txt(&table.rows[0][5]), "P0");
        // V: 66,000 + 22,000 = 88,000 recorded; 6,000 + 2,000 missing, mostly P2.
        assert_eq!(num(&table.rows[1][2]), 88_000.0);
        assert_eq!(num(&table.rows[1][3]), 8_000.0);
        assert_eq!(txt(&table.rows[1][5]), "P2");
        assert_eq!(txt(&table.rows[1][6]), "P number 2");
    }

    #[test]
    fn table_a4_threshold_boundaries() {
        let cells = [
            // Z0: exactly 5,000 missing (of 55,000).
            monthly(0, Some(0), &steady(5_000.0, &[3])),
            // Z1: 5,001 missing (of 55,011).
            monthly(1, Some(1), &steady(5_001.0, &[3])),
            // W0: 6,000 missing of 66,000 + 54,000 = 120,000: exactly 5%.
            monthly(2, Some(2), &steady(6_000.0, &[0])),
            monthly(3, Some(2), &steady(4_500.0, &[])),
            // W1: 6,000 missing of 66,000 + 53,988 = 119,988: just over 5%.
            monthly(4, Some(3), &steady(6_000.0, &[0])),
            monthly(5, Some(3), &steady(4_499.0, &[])),
        ]
        .concat();
        let input = QualityInput {
            providers: entities("P", 6),
            areas: vec![
                Area {
                    code: "Z0".into(),
                    name: String::new(),
                },
                Area {
                    code: "Z1".into(),
                    name: String::new(),
                },
                Area {
                    code: "W0".into(),
                    name: String::new(),
                },
                Area {
                    code: "W1".into(),
                    name: String::new(),
                },
            ],
            cells,
        };
        let table = &run(&defaults(), &input)["dq_areas_missing_submissions"];
        assert_eq!(codes(table), ["W1", "Z1"]);
        assert_eq!(num(&table.rows[0][2]), 119_988.0);
        assert_eq!(num(&table.rows[1][3]), 5_001.0);
    }

    #[test]
    fn table_a4_published_percentage() {
        // QKK in 2023/24: 415,000 missing of 1,121,000 recorded = 37%. P0 has seven months of
        // 83,000 and five with nothing: its median month is 83,000 and its shortfall 5 × 83,000 =
        // 415,000; with P1's 12 × 45,000 = 540,000 the area records 581,000 + 540,000 = 1,121,000.
        let mut months: Vec<Option<f64>> = vec![Some(83_000.0); 12];
        for m in months.iter_mut().take(5) {
            *m = None;
        }
        let mut cells = monthly(0, Some(0), &months);
        cells.extend(monthly(1, Some(0), &steady(45_000.0, &[])));
        let input = QualityInput {
            providers: entities("P", 2),
            areas: entities("Q", 1),
            cells,
        };
        let table = &run(&defaults(), &input)["dq_areas_missing_submissions"];
        assert_eq!(num(&table.rows[0][2]), 1_121_000.0);
        assert_eq!(num(&table.rows[0][3]), 415_000.0);
        assert_eq!(num(&table.rows[0][4]).round(), 37.0);
    }

    #[test]
    fn bad_cells_are_errors() {
        let input = |c: QualityCell| QualityInput {
            providers: entities("P", 1),
            areas: entities("A", 1),
            cells: vec![c],
        };
        let method = defaults();
        let err = method.tables(&input(cell(3, Some(0), 1.0))).unwrap_err();
        assert!(err.message.contains("provider index 3"), "{err}");
        let err = method.tables(&input(cell(0, Some(9), 1.0))).unwrap_err();
        assert!(err.message.contains("area index 9"), "{err}");
        let err = method
            .tables(&input(QualityCell {
                month: 12,
                ..cell(0, Some(0), 1.0)
            }))
            .unwrap_err();
        assert!(err.message.contains("month 12"), "{err}");
        let err = method.tables(&input(cell(0, Some(0), -1.0))).unwrap_err();
        assert!(err.message.contains("not a count"), "{err}");
    }

    #[test]
    fn params_are_checked() {
        let refused = |toml: &str| {
            configure(&Params::from_toml_str(toml).expect("toml"))
                .err()
                .expect("refused")
                .key
        };
        assert_eq!(
            refused("no_practice_share = 10").as_deref(),
            Some("no_practice_share")
        );
        assert_eq!(
            refused("missing_tests = -1").as_deref(),
            Some("missing_tests")
        );
        assert_eq!(
            refused("missing_month_fraction = 0").as_deref(),
            Some("missing_month_fraction")
        );
        assert_eq!(refused("months = 0").as_deref(), Some("months"));
        assert_eq!(refused("threshold = 1").as_deref(), Some("threshold"));
        let ok = Params::from_toml_str("area_incomplete_share = 0.01\narea_label = \"ICB\"")
            .expect("toml");
        assert!(configure(&ok).is_ok());
    }

    #[test]
    fn all_tables_are_produced_in_order() {
        let input = QualityInput {
            providers: entities("P", 1),
            areas: entities("A", 1),
            cells: vec![cell(0, Some(0), 10.0)],
        };
        let names: Vec<String> = defaults()
            .tables(&input)
            .expect("tables")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            [
                "dq_routes",
                "dq_exclusions",
                "dq_providers_no_practice",
                "dq_providers_incomplete",
                "dq_areas_incomplete",
                "dq_areas_missing_submissions"
            ]
        );
    }
}
