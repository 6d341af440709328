//! `share.cdc-over-dm01` — the community diagnostic centre (CDC) share of DM01 activity (seed
//! 004), by test × month × England, NHS region and ICB.
//!
//! For a level (England, a region, an ICB), a month `m` and a DM01 test `t`:
//! - **CDC share** `100 · C(t, m) / D(t, m)`: `C` the CDC tests of type `t` the CDC activity file
//!   puts in the level, `D` the DM01 `Total Activity` of test `t` of the providers in the level
//!   (a provider's region from `provider_regions`, its ICB from `provider_icbs`). The file has no
//!   link from a CDC to a trust, so the two are counted apart and set side by side; `ALL` is the
//!   sum over the `tests` parameter (default all fifteen DM01 tests).
//! - **Share of all DM01 activity** of each test or group in `share_of_all` (default CT, MRI,
//!   and CT with MRI): `100 · D(group, m) / D(ALL, m)`, over every setting.
//! - **CDC tests** in the month and **cumulative** from the file's first month, over every test
//!   type, DM01's or not (the CDC programme's own count).
//!
//! Each share is set against the same month a year earlier (`share_pct_year_earlier`,
//! `change_pct_points`). A level × month without DM01 activity of the test has no share (a note
//! says so); months outside DM01 have no shares, only CDC tests. Tables: `cdc_share_england`
//! (England, published exactly as NHS England's national totals are), `cdc_share` (regions and
//! ICBs: its `numerator` and `denominator` are declared counts, so the recipe's disclosure stage
//! protects them; shares are of the unprotected counts) and `cdc_site_join`, the join of the
//! activity's CDCs to the approved-site list by site code: a code the list gives to two CDCs
//! (`J2H6R`) is a finding, never joined to either.
//!
//! **Over a period** (parameter `periods`, e.g. a DID financial year `{ label = "2023/24", from =
//! "2023-04", to = "2024-03" }`): for each region and ICB and each test, `100 · ΣC / ΣD` over the
//! months of the period that both DM01 and the CDC file cover (`months_covered` names them, e.g.
//! `2023-08 to 2024-03`, `months_counted` how many, and `months_in_period` of how many), in `cdc_share_period`, its
//! counts declared for disclosure as `cdc_share`'s are. `monthly = false` gives that table alone
//! (a recipe that wants the period's share as context, not the monthly publication).
//!
//! Reference: NHS England, *Diagnostics Waiting Times and Activity (DM01)* and *Community
//! Diagnostic Centre activity*, monthly.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, ParamError, Params, PluginDescriptor, SettingShareInput,
    SettingShareMethod, StageKind, Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "share.cdc-over-dm01",
    stage: StageKind::SettingShare,
    version: env!("CARGO_PKG_VERSION"),
    description: "CDC share of DM01 activity by test, month, England, region and ICB, against a year earlier; CT and MRI share of DM01; cumulative CDC tests",
    configure,
};

const DM01_TESTS: [&str; 15] = [
    "MRI",
    "CT",
    "NON_OBSTETRIC_ULTRASOUND",
    "BARIUM_ENEMA",
    "DEXA_SCAN",
    "AUDIOLOGY_ASSESSMENTS",
    "ECHOCARDIOGRAPHY",
    "ELECTROPHYSIOLOGY",
    "PERIPHERAL_NEUROPHYSIOLOGY",
    "SLEEP_STUDIES",
    "URODYNAMICS",
    "COLONOSCOPY",
    "FLEXI_SIGMOIDOSCOPY",
    "CYSTOSCOPY",
    "GASTROSCOPY",
];

/// The test key of every DM01 test the parameters name together.
const ALL: &str = "ALL";
/// The test key of CDC tests of every type.
const ALL_TYPES: &str = "ALL_TYPES";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareParams {
    #[serde(default = "default_tests")]
    tests: Vec<String>,
    #[serde(default = "default_share_of_all")]
    share_of_all: Vec<Vec<String>>,
    #[serde(default)]
    periods: Vec<PeriodParam>,
    #[serde(default = "default_monthly")]
    monthly: bool,
}

/// A period over which shares are summed: months `from` to `to` (`YYYY-MM`), both included.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodParam {
    pub label: String,
    pub from: String,
    pub to: String,
}

fn default_monthly() -> bool {
    true
}

/// `YYYY-MM` as a month number (year × 12 + month − 1); none for anything else.
fn month_index(text: &str) -> Option<i64> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m) = (y.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

fn default_tests() -> Vec<String> {
    DM01_TESTS.iter().map(|t| t.to_string()).collect()
}

fn default_share_of_all() -> Vec<Vec<String>> {
    vec![
        vec!["CT".into()],
        vec!["MRI".into()],
        vec!["CT".into(), "MRI".into()],
    ]
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: ShareParams = params.parse()?;
    let unknown = |t: &String| !DM01_TESTS.contains(&t.as_str());
    if p.tests.is_empty() || p.tests.iter().any(unknown) {
        return Err(ParamError::new(
            "tests",
            format!(
                "tests must name DM01 tests (of {}): {:?}",
                DM01_TESTS.join(", "),
                p.tests
            ),
        ));
    }
    if let Some(g) = p
        .share_of_all
        .iter()
        .find(|g| g.is_empty() || g.iter().any(|t| !p.tests.contains(t)))
    {
        return Err(ParamError::new(
            "share_of_all",
            format!("each group names one or more of the `tests`: {g:?}"),
        ));
    }
    for (i, period) in p.periods.iter().enumerate() {
        let (from, to) = (month_index(&period.from), month_index(&period.to));
        match (from, to) {
            (Some(a), Some(b)) if a <= b => {}
            _ => {
                return Err(ParamError::new(
                    "periods",
                    format!(
                        "period {} (`{}`): `from` and `to` must be months `YYYY-MM`, `from` not \
                         after `to`: from = {:?}, to = {:?}",
                        i + 1,
                        period.label,
                        period.from,
                        period.to
                    ),
                ));
            }
        }
    }
    if !p.monthly && p.periods.is_empty() {
        return Err(ParamError::new(
            "monthly",
            "monthly = false leaves no table: name `periods` too",
        ));
    }
    Ok(Configured::SettingShare(Box::new(CdcShare {
        tests: p.tests,
        share_of_all: p.share_of_all,
        periods: p.periods,
        monthly: p.monthly,
    })))
}

/// The CDC share of DM01 activity.
pub struct CdcShare {
    pub tests: Vec<String>,
    pub share_of_all: Vec<Vec<String>>,
    /// Periods to sum each region's and ICB's share over (`cdc_share_period`).
    pub periods: Vec<PeriodParam>,
    /// Whether to give the monthly tables and the site join.
    pub monthly: bool,
}

/// (level order, code): 0 England, 1 region, 2 ICB.
type Level = (u8, String);

/// What is summed per level × month × test: CDC tests, DM01 activity.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    cdc: f64,
    dm01: f64,
}

/// Sums by level, then month, then test key; names by level.
#[derive(Default)]
struct Summed {
    sums: BTreeMap<Level, BTreeMap<String, BTreeMap<String, Sums>>>,
    names: BTreeMap<Level, String>,
    /// Months DM01 has activity in (any level).
    dm01_months: BTreeSet<String>,
    /// Months the CDC file has activity in (any level).
    cdc_months: BTreeSet<String>,
}

impl Summed {
    fn add(&mut self, level: &Level, month: &str, test: &str, sums: Sums) {
        // Keys are cloned only when first met: a year of DM01 and CDC rows adds to the same few
        // thousand cells hundreds of thousands of times.
        if !self.sums.contains_key(level) {
            self.sums.insert(level.clone(), BTreeMap::new());
        }
        let Some(months) = self.sums.get_mut(level) else {
            return;
        };
        if !months.contains_key(month) {
            months.insert(month.to_string(), BTreeMap::new());
        }
        let Some(tests) = months.get_mut(month) else {
            return;
        };
        match tests.get_mut(test) {
            Some(cell) => {
                cell.cdc += sums.cdc;
                cell.dm01 += sums.dm01;
            }
            None => {
                tests.insert(test.to_string(), sums);
            }
        }
    }

    fn get(&self, level: &Level, month: &str, test: &str) -> Sums {
        self.sums
            .get(level)
            .and_then(|m| m.get(month))
            .and_then(|t| t.get(test))
            .copied()
            .unwrap_or_default()
    }
}

fn england() -> Level {
    (0, "E92000001".into())
}

impl CdcShare {
    /// The levels a row counts in, with their names.
    fn levels(
        region: (&str, &str),
        icb: &str,
        icb_names: &BTreeMap<&str, &str>,
    ) -> Vec<(Level, String)> {
        let mut out = vec![(england(), "England".to_string())];
        if !region.0.is_empty() {
            out.push(((1, region.0.to_string()), region.1.to_string()));
        }
        if !icb.is_empty() {
            let name = icb_names.get(icb).copied().unwrap_or(icb);
            out.push(((2, icb.to_string()), name.to_string()));
        }
        out
    }

    /// Every count summed into its levels: DM01 activity of the `tests`, CDC tests by DM01 test
    /// and of every type.
    fn sum(&self, input: &SettingShareInput) -> Result<Summed, MethodError> {
        let icb_names: BTreeMap<&str, &str> = input
            .icbs
            .iter()
            .map(|a| (a.code.as_str(), a.name.as_str()))
            .collect();
        let mut out = Summed::default();
        // Without the monthly tables only the periods' months are summed (every month still
        // counts towards the months each file covers).
        let periods: Vec<(i64, i64)> = self
            .periods
            .iter()
            .filter_map(|p| Some((month_index(&p.from)?, month_index(&p.to)?)))
            .collect();
        let wanted = |month: &str| {
            self.monthly
                || month_index(month)
                    .is_some_and(|m| periods.iter().any(|&(a, b)| (a..=b).contains(&m)))
        };
        for row in input
            .dm01
            .rows
            .iter()
            .filter(|r| self.tests.contains(&r.test))
        {
            let i = row.provider as usize;
            let (Some(p), Some(icb)) = (input.dm01.providers.get(i), input.provider_icbs.get(i))
            else {
                return Err(MethodError::new(format!(
                    "a DM01 row names provider {i} of {}",
                    input.dm01.providers.len()
                )));
            };
            out.dm01_months.insert(row.month.clone());
            let add = wanted(&row.month);
            let dm01 = Sums {
                cdc: 0.0,
                dm01: row.total_activity,
            };
            for (level, name) in Self::levels((&p.region_code, &p.region_name), icb, &icb_names) {
                if add {
                    out.add(&level, &row.month, &row.test, dm01);
                    out.add(&level, &row.month, ALL, dm01);
                }
                out.names.entry(level).or_insert(name);
            }
        }
        for row in &input.activity {
            let site = input.sites.get(row.site as usize).ok_or_else(|| {
                MethodError::new(format!("an activity row names site {}", row.site))
            })?;
            out.cdc_months.insert(row.month.clone());
            let add = wanted(&row.month);
            let cdc = Sums {
                cdc: row.tests,
                dm01: 0.0,
            };
            let region = (site.region_code.as_str(), site.region_name.as_str());
            for (level, name) in Self::levels(region, &site.icb_code, &icb_names) {
                if add {
                    out.add(&level, &row.month, ALL_TYPES, cdc);
                    if let Some(test) = row.dm01_test.as_ref().filter(|t| self.tests.contains(t)) {
                        out.add(&level, &row.month, test, cdc);
                        out.add(&level, &row.month, ALL, cdc);
                    }
                }
                out.names.entry(level).or_insert(name);
            }
        }
        Ok(out)
    }
}

/// `YYYY-MM` twelve months earlier.
fn year_earlier(month: &str) -> Option<String> {
    let (y, m) = month.split_once('-')?;
    Some(format!("{:04}-{m}", y.parse::<i32>().ok()? - 1))
}

fn number(v: Option<f64>) -> Value {
    v.map(Value::Number).unwrap_or(Value::Missing)
}

/// One row before it is a table row.
struct Row<'a> {
    level: &'a Level,
    name: &'a str,
    month: &'a str,
    measure: &'static str,
    test: String,
    numerator: f64,
    denominator: Option<f64>,
    share: Option<f64>,
    share_before: Option<f64>,
    method: String,
    note: &'static str,
}

impl Row<'_> {
    fn values(self) -> Vec<Value> {
        let level = ["england", "region", "icb"][self.level.0 as usize];
        let change = self.share.zip(self.share_before).map(|(a, b)| a - b);
        vec![
            Value::Text(level.into()),
            Value::Text(self.level.1.clone()),
            Value::Text(self.name.into()),
            Value::Text(self.month.into()),
            Value::Text(self.measure.into()),
            Value::Text(self.test),
            Value::Number(self.numerator),
            number(self.denominator),
            number(self.share),
            number(self.share_before),
            number(change),
            Value::Text(self.method),
            Value::Text(self.note.into()),
        ]
    }
}

const COLUMNS: [&str; 13] = [
    "level",
    "code",
    "name",
    "month",
    "measure",
    "test",
    "numerator",
    "denominator",
    "share_pct",
    "share_pct_year_earlier",
    "change_pct_points",
    "method",
    "note",
];

/// `100 · a / b`, none when `b` is 0.
fn pct(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| 100.0 * a / b)
}

impl CdcShare {
    /// The rows of one level: CDC shares by test, shares of all DM01 activity, CDC tests and
    /// their running total.
    fn level_rows<'a>(&self, s: &'a Summed, level: &'a Level, name: &'a str) -> Vec<Row<'a>> {
        let Some(months) = s.sums.get(level) else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        let mut cumulative = 0.0;
        for month in months.keys() {
            let before = year_earlier(month);
            let row =
                |measure, test: String, numerator, denominator, share, share_before, note| Row {
                    level,
                    name,
                    month,
                    measure,
                    test,
                    numerator,
                    denominator,
                    share,
                    share_before,
                    method: String::new(),
                    note,
                };
            if s.dm01_months.contains(month) {
                let tests = std::iter::once(ALL).chain(self.tests.iter().map(String::as_str));
                for test in tests {
                    let now = s.get(level, month, test);
                    if now.cdc == 0.0 && now.dm01 == 0.0 {
                        continue;
                    }
                    let earlier = before.as_ref().map(|b| s.get(level, b, test));
                    let share_before = earlier.and_then(|e| pct(e.cdc, e.dm01));
                    let share = pct(now.cdc, now.dm01);
                    let note = if share.is_none() {
                        "no DM01 activity of the test: no share"
                    } else {
                        ""
                    };
                    let test = test.to_string();
                    rows.push(row(
                        "cdc_share",
                        test,
                        now.cdc,
                        Some(now.dm01),
                        share,
                        share_before,
                        note,
                    ));
                }
                for group in &self.share_of_all {
                    let of = |m: &str| group.iter().map(|t| s.get(level, m, t).dm01).sum::<f64>();
                    let all = |m: &str| s.get(level, m, ALL).dm01;
                    let share_before = before.as_ref().and_then(|b| pct(of(b), all(b)));
                    let (n, d) = (of(month), all(month));
                    let note = if d > 0.0 {
                        ""
                    } else {
                        "no DM01 activity: no share"
                    };
                    rows.push(row(
                        "share_of_dm01",
                        group.join("+"),
                        n,
                        Some(d),
                        pct(n, d),
                        share_before,
                        note,
                    ));
                }
            }
            let tests = s.get(level, month, ALL_TYPES).cdc;
            cumulative += tests;
            let all_types = || ALL_TYPES.to_string();
            rows.push(row("cdc_tests", all_types(), tests, None, None, None, ""));
            rows.push(row(
                "cdc_tests_cumulative",
                all_types(),
                cumulative,
                None,
                None,
                None,
                "",
            ));
        }
        rows
    }

    fn method_for(&self, measure: &str) -> String {
        match measure {
            "cdc_share" => "CDC tests / DM01 total activity, same test and month".into(),
            "share_of_dm01" => "DM01 total activity of the tests / of all DM01 tests".into(),
            "cdc_tests" => "CDC tests of every type in the month".into(),
            _ => "CDC tests of every type, running total from the file's first month".into(),
        }
    }
}

/// The join of the activity's CDCs to the site list by site code: one row per CDC of the
/// activity, then one per listed site without activity.
fn site_join(input: &SettingShareInput, method: &str) -> Table {
    let mut t = Table::new(
        "cdc_site_join",
        "CDC activity joined to the approved-site list by site code: duplicate codes and unlisted sites",
        &[
            "cdc_code",
            "cdc_name",
            "icb_code",
            "listed_sites",
            "listed_names",
            "finding",
            "cdc_tests",
            "method",
        ],
    )
    .with_counts(&["cdc_tests"]);
    let mut tests = vec![0.0; input.sites.len()];
    for row in &input.activity {
        if let Some(t) = tests.get_mut(row.site as usize) {
            *t += row.tests;
        }
    }
    let listed = |code: &str| -> Vec<&str> {
        input
            .listed_sites
            .iter()
            .filter(|l| l.code == code)
            .map(|l| l.name.as_str())
            .collect()
    };
    for (site, n) in input.sites.iter().zip(tests) {
        let names = listed(&site.code);
        let finding = match names.len() {
            0 => "not in the site list",
            1 => "joined",
            _ => "site code given to more than one CDC in the site list: not joined to any",
        };
        t.rows.push(vec![
            Value::Text(site.code.clone()),
            Value::Text(site.name.clone()),
            Value::Text(site.icb_code.clone()),
            Value::Number(names.len() as f64),
            Value::Text(names.join("; ")),
            Value::Text(finding.into()),
            Value::Number(n),
            Value::Text(method.into()),
        ]);
    }
    for l in &input.listed_sites {
        if input.sites.iter().all(|s| s.code != l.code) {
            t.rows.push(vec![
                Value::Text(l.code.clone()),
                Value::Text(l.name.clone()),
                Value::Text(l.icb_code.clone()),
                Value::Number(listed(&l.code).len() as f64),
                Value::Text(listed(&l.code).join("; ")),
                Value::Text("listed, no activity in the file".into()),
                Value::Number(0.0),
                Value::Text(method.into()),
            ]);
        }
    }
    t
}

/// Months as text, runs of consecutive months joined: `2023-08 to 2024-03, 2024-05`.
fn month_runs(months: &[&String]) -> String {
    let mut runs: Vec<(&String, &String)> = Vec::new();
    for m in months {
        match runs.last_mut() {
            Some((_, last))
                if month_index(last)
                    .zip(month_index(m))
                    .is_some_and(|(a, b)| b == a + 1) =>
            {
                *last = m;
            }
            _ => runs.push((m, m)),
        }
    }
    runs.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a} to {b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const PERIOD_COLUMNS: [&str; 14] = [
    "level",
    "code",
    "name",
    "period",
    "months_covered",
    "months_counted",
    "months_in_period",
    "measure",
    "test",
    "numerator",
    "denominator",
    "share_pct",
    "method",
    "note",
];

impl CdcShare {
    /// Regions' and ICBs' CDC share of each test summed over each period's months that both DM01
    /// and the CDC file cover.
    fn period_table(&self, s: &Summed) -> Table {
        let mut t = Table::new(
            "cdc_share_period",
            "Community diagnostic centre share of DM01 activity by NHS region and ICB, over the \
             months of each period that DM01 and the CDC file both cover",
            &PERIOD_COLUMNS,
        )
        .with_counts(&["numerator", "denominator"]);
        for period in &self.periods {
            let (Some(from), Some(to)) = (month_index(&period.from), month_index(&period.to))
            else {
                continue;
            };
            let months: Vec<&String> = s
                .dm01_months
                .intersection(&s.cdc_months)
                .filter(|m| month_index(m).is_some_and(|i| (from..=to).contains(&i)))
                .collect();
            let covered = month_runs(&months);
            let note = if months.is_empty() {
                "DM01 and the CDC file share no month of the period: no share"
            } else {
                ""
            };
            let method = format!(
                "{}: CDC tests / DM01 total activity, same test, summed over {} of the {} \
                 months of {} ({})",
                self.method_name(),
                months.len(),
                to - from + 1,
                period.label,
                if covered.is_empty() { "none" } else { &covered }
            );
            for (level, name) in s.names.iter().filter(|(l, _)| l.0 > 0) {
                let tests = std::iter::once(ALL).chain(self.tests.iter().map(String::as_str));
                for test in tests {
                    let sum = months.iter().fold(Sums::default(), |acc, m| {
                        let c = s.get(level, m, test);
                        Sums {
                            cdc: acc.cdc + c.cdc,
                            dm01: acc.dm01 + c.dm01,
                        }
                    });
                    if sum.cdc == 0.0 && sum.dm01 == 0.0 && !months.is_empty() {
                        continue;
                    }
                    let share = pct(sum.cdc, sum.dm01);
                    let note = match (note, share) {
                        ("", None) => "no DM01 activity of the test: no share",
                        (n, _) => n,
                    };
                    t.rows.push(vec![
                        Value::Text(["england", "region", "icb"][level.0 as usize].into()),
                        Value::Text(level.1.clone()),
                        Value::Text(name.clone()),
                        Value::Text(period.label.clone()),
                        Value::Text(covered.clone()),
                        Value::Number(months.len() as f64),
                        Value::Number((to - from + 1) as f64),
                        Value::Text("cdc_share".into()),
                        Value::Text(test.to_string()),
                        Value::Number(sum.cdc),
                        Value::Number(sum.dm01),
                        number(share),
                        Value::Text(method.clone()),
                        Value::Text(note.into()),
                    ]);
                }
            }
        }
        t
    }
}

impl SettingShareMethod for CdcShare {
    fn method_name(&self) -> String {
        format!(
            "CDC share of DM01 total activity ({} tests)",
            self.tests.len()
        )
    }

    fn tables(&self, input: &SettingShareInput) -> Result<Vec<Table>, MethodError> {
        let summed = self.sum(input)?;
        let mut england = Table::new(
            "cdc_share_england",
            "Community diagnostic centre share of DM01 activity, England, by test and month",
            &COLUMNS,
        );
        let mut sub = Table::new(
            "cdc_share",
            "Community diagnostic centre share of DM01 activity by NHS region and ICB, by test and month",
            &COLUMNS,
        )
        .with_counts(&["numerator", "denominator"]);
        for (level, name) in &summed.names {
            let table = if level.0 == 0 { &mut england } else { &mut sub };
            for mut row in self.level_rows(&summed, level, name) {
                row.method = format!("{}: {}", self.method_name(), self.method_for(row.measure));
                table.rows.push(row.values());
            }
        }
        let mut out = Vec::new();
        if self.monthly {
            let join = site_join(input, "site code against the approved-site list");
            out.extend([england, sub, join]);
        }
        if !self.periods.is_empty() {
            out.push(self.period_table(&summed));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{
        ListedSite, NamedArea, RegionalProvider, SettingActivityRow, SettingSite, WaitingListInput,
        WaitingListRow,
    };

    fn provider(code: &str, region: &str) -> RegionalProvider {
        RegionalProvider {
            code: code.into(),
            name: code.into(),
            region_code: region.into(),
            region_name: format!("Region {region}"),
        }
    }

    fn dm01(provider: u32, month: &str, test: &str, activity: f64) -> WaitingListRow {
        WaitingListRow {
            provider,
            month: month.into(),
            test: test.into(),
            weeks: vec![0.0; 14],
            total_activity: activity,
        }
    }

    fn site(code: &str, name: &str, region: &str, icb: &str) -> SettingSite {
        SettingSite {
            code: code.into(),
            name: name.into(),
            region_code: region.into(),
            region_name: format!("Region {region}"),
            icb_code: icb.into(),
        }
    }

    fn cdc(site: u32, month: &str, test: Option<&str>, tests: f64) -> SettingActivityRow {
        SettingActivityRow {
            site,
            month: month.into(),
            test_name: test.unwrap_or("Plain X-ray").into(),
            dm01_test: test.map(String::from),
            tests,
        }
    }

    /// Two trusts (P1 in ICB I1, P2 in I2, both region R), two CDCs (S1 in I1; S2 in I2, whose
    /// code the site list gives twice), August 2023 and 2024.
    fn input() -> SettingShareInput {
        let mut dm = Vec::new();
        for (month, k) in [("2023-08", 1.0), ("2024-08", 2.0)] {
            dm.extend([
                dm01(0, month, "CT", 100.0 * k),
                dm01(0, month, "MRI", 50.0 * k),
                dm01(1, month, "CT", 300.0 * k),
                dm01(1, month, "ECHOCARDIOGRAPHY", 150.0 * k),
            ]);
        }
        SettingShareInput {
            sites: vec![site("S1", "One", "R", "I1"), site("S2", "Two", "R", "I2")],
            activity: vec![
                cdc(0, "2023-08", Some("CT"), 10.0),
                cdc(0, "2024-08", Some("CT"), 40.0),
                cdc(0, "2024-08", Some("MRI"), 25.0),
                cdc(1, "2024-08", Some("CT"), 20.0),
                cdc(1, "2024-08", None, 15.0),
            ],
            listed_sites: vec![
                ListedSite {
                    code: "S2".into(),
                    name: "Two".into(),
                    icb_code: "I2".into(),
                    host_trust_code: "P2".into(),
                },
                ListedSite {
                    code: "S2".into(),
                    name: "Two elsewhere".into(),
                    icb_code: "I3".into(),
                    host_trust_code: "P9".into(),
                },
            ],
            dm01: WaitingListInput {
                providers: vec![provider("P1", "R"), provider("P2", "R")],
                rows: dm,
                other_nations: Vec::new(),
            },
            provider_icbs: vec!["I1".into(), "I2".into()],
            icbs: vec![
                NamedArea {
                    code: "I1".into(),
                    name: "ICB one".into(),
                },
                NamedArea {
                    code: "I2".into(),
                    name: "ICB two".into(),
                },
            ],
        }
    }

    fn cell(t: &Table, keys: &[(&str, &str)], column: &str) -> Value {
        let index = |c: &str| t.columns.iter().position(|x| x == c).unwrap();
        let row = t
            .rows
            .iter()
            .find(|r| {
                keys.iter()
                    .all(|(c, v)| r[index(c)] == Value::Text(v.to_string()))
            })
            .unwrap_or_else(|| panic!("no row {keys:?} in {}", t.name));
        row[index(column)].clone()
    }

    fn tables() -> Vec<Table> {
        let Ok(Configured::SettingShare(m)) = configure(&Params::default()) else {
            panic!("default parameters configure");
        };
        m.tables(&input()).unwrap()
    }

    #[test]
    fn shares_are_cdc_tests_over_dm01_activity_of_the_same_test_and_month() {
        let t = tables();
        let ct = [
            ("month", "2024-08"),
            ("measure", "cdc_share"),
            ("test", "CT"),
        ];
        // England: CDC CT 40 + 20 over DM01 CT 200 + 600; a year earlier 10 / 400.
        assert_eq!(cell(&t[0], &ct, "numerator"), Value::Number(60.0));
        assert_eq!(cell(&t[0], &ct, "denominator"), Value::Number(800.0));
        assert_eq!(cell(&t[0], &ct, "share_pct"), Value::Number(7.5));
        assert_eq!(
            cell(&t[0], &ct, "share_pct_year_earlier"),
            Value::Number(2.5)
        );
        assert_eq!(cell(&t[0], &ct, "change_pct_points"), Value::Number(5.0));
        // ICB I2: 20 / 600; region R is England here.
        let i2 = [&ct[..], &[("code", "I2")]].concat();
        assert_eq!(
            cell(&t[1], &i2, "share_pct"),
            Value::Number(100.0 * 20.0 / 600.0)
        );
        assert_eq!(cell(&t[1], &i2, "name"), Value::Text("ICB two".into()));
        // ALL: DM01-type CDC tests 85 (the X-ray not among them) over all DM01 1,200.
        let all = [
            ("month", "2024-08"),
            ("measure", "cdc_share"),
            ("test", "ALL"),
        ];
        assert_eq!(cell(&t[0], &all, "numerator"), Value::Number(85.0));
        assert_eq!(cell(&t[0], &all, "denominator"), Value::Number(1200.0));
    }

    #[test]
    fn ct_and_mri_share_of_dm01_and_cumulative_cdc_tests() {
        let t = tables();
        let both = [
            ("month", "2024-08"),
            ("measure", "share_of_dm01"),
            ("test", "CT+MRI"),
        ];
        assert_eq!(cell(&t[0], &both, "numerator"), Value::Number(900.0));
        assert_eq!(cell(&t[0], &both, "share_pct"), Value::Number(75.0));
        let cumulative = [("month", "2024-08"), ("measure", "cdc_tests_cumulative")];
        assert_eq!(cell(&t[0], &cumulative, "numerator"), Value::Number(110.0));
        let month = [("month", "2024-08"), ("measure", "cdc_tests")];
        assert_eq!(cell(&t[0], &month, "numerator"), Value::Number(100.0));
    }

    #[test]
    fn only_sub_national_counts_are_declared_for_disclosure() {
        let t = tables();
        assert!(t[0].counts.is_empty());
        assert_eq!(t[1].counts, ["numerator", "denominator"]);
        assert!(
            t[1].rows
                .iter()
                .all(|r| r[0] != Value::Text("england".into()))
        );
    }

    #[test]
    fn a_site_code_listed_twice_is_a_finding_not_a_join() {
        let t = &tables()[2];
        let s2 = [("cdc_code", "S2")];
        assert_eq!(cell(t, &s2, "listed_sites"), Value::Number(2.0));
        let finding = cell(t, &s2, "finding");
        assert_eq!(
            finding,
            Value::Text(
                "site code given to more than one CDC in the site list: not joined to any".into()
            )
        );
        assert_eq!(
            cell(t, &[("cdc_code", "S1")], "finding"),
            Value::Text("not in the site list".into())
        );
    }

    #[test]
    fn parameters_name_dm01_tests() {
        for text in [
            "tests = [\"XRAY\"]",
            "tests = [\"CT\"]\nshare_of_all = [[\"CT\", \"GASTROSCOPY\"]]",
            "share_of_all = [[]]",
        ] {
            let params = Params::from_toml_str(text).expect("toml");
            assert!(configure(&params).is_err(), "{text}");
        }
    }

    #[test]
    fn a_period_sums_the_months_both_files_cover() {
        let params = Params::from_toml_str(
            "monthly = false\nperiods = [{ label = \"2023/24\", from = \"2023-04\", to = \"2024-03\" }, { label = \"both\", from = \"2023-01\", to = \"2024-12\" }]",
        )
        .expect("toml");
        let Ok(Configured::SettingShare(m)) = configure(&params) else {
            panic!("period parameters configure");
        };
        let t = m.tables(&input()).unwrap();
        assert_eq!(t.len(), 1, "monthly = false: the period table alone");
        let t = &t[0];
        assert_eq!(t.name, "cdc_share_period");
        assert_eq!(t.counts, ["numerator", "denominator"]);
        // 2023/24 holds 2023-08 only: ICB I1's CT is 10 CDC tests over 100 DM01.
        let i1 = [("period", "2023/24"), ("code", "I1"), ("test", "CT")];
        assert_eq!(cell(t, &i1, "numerator"), Value::Number(10.0));
        assert_eq!(cell(t, &i1, "denominator"), Value::Number(100.0));
        assert_eq!(cell(t, &i1, "share_pct"), Value::Number(10.0));
        assert_eq!(
            cell(t, &i1, "months_covered"),
            Value::Text("2023-08".into())
        );
        assert_eq!(cell(t, &i1, "months_counted"), Value::Number(1.0));
        assert_eq!(cell(t, &i1, "months_in_period"), Value::Number(12.0));
        // Both months: (10 + 40) / (100 + 200); two months a year apart are two runs.
        let both = [("period", "both"), ("code", "I1"), ("test", "CT")];
        assert_eq!(
            cell(t, &both, "share_pct"),
            Value::Number(100.0 * 50.0 / 300.0)
        );
        assert_eq!(
            cell(t, &both, "months_covered"),
            Value::Text("2023-08, 2024-08".into())
        );
        let method = cell(t, &both, "method");
        assert!(
            matches!(&method, Value::Text(m) if m.contains("summed over 2 of the 24 months of both")),
            "{method:?}"
        );
        assert!(t.rows.iter().all(|r| r[0] != Value::Text("england".into())));
    }

    #[test]
    fn months_in_runs_and_bad_periods() {
        let months: Vec<String> = ["2023-11", "2023-12", "2024-01", "2024-03"]
            .iter()
            .map(|m| m.to_string())
            .collect();
        let refs: Vec<&String> = months.iter().collect();
        assert_eq!(month_runs(&refs), "2023-11 to 2024-01, 2024-03");
        for text in [
            "periods = [{ label = \"x\", from = \"2024-03\", to = \"2023-04\" }]",
            "periods = [{ label = \"x\", from = \"Apr-23\", to = \"2024-03\" }]",
            "monthly = false",
        ] {
            let params = Params::from_toml_str(text).expect("toml");
            assert!(configure(&params).is_err(), "{text}");
        }
    }
}
