//! DM01 (NHS England's monthly diagnostics waiting times and activity) as read for the
//! waiting-times stage, in both of its CSV layouts, told apart by the header:
//!
//! - the **current full extract**, one row per month × provider × commissioner × test:
//!   `Period, Provider Parent Org Code, Provider Parent Name, Provider Org Code, Provider Org Name,
//!   Commissioner Parent Org Code, Commissioner Parent Name, Commissioner Org Code, Commissioner
//!   Org Name, Diagnostic Tests Sort Order, Diagnostic Tests, 00 < 01 Week … 12 < 13 Weeks, 13+
//!   Weeks, Total WL, Waiting List Activity, Planned Activity, Unscheduled Activity, Total
//!   Activity`;
//! - the **older provider web file**, one row per provider of one month and test (the recipe says
//!   which): `Region Code, Region Name, Provider Code, Provider Name, Total Waiting List, Number
//!   waiting 6+ Weeks, Number waiting 13+ Weeks`, the 14 weekly bands, `Waiting List Activity,
//!   Planned Activity, Unscheduled Activity`.
//!
//! Names are matched ignoring case and surrounding spaces. Checks, each naming file, row, column
//! and value: `Total WL` (`Total Waiting List`) equals the sum of the bands, the older file's 6+
//! and 13+ columns equal theirs, counts are whole and not negative, months are months. `TOTAL`
//! rows are totals, never added to the tests (a warning names any whose waiting list differs from
//! its tests' sum); tests DM01 does not name and providers the recipe's `provider_regions` does
//! not know are reported as warnings (unknown providers count in England only).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use strata_api::{RegionalProvider, WAITING_WEEK_BANDS, WaitingListInput, WaitingListRow};

use crate::error::{Error, Result};
use crate::input::TextTable;
use crate::periods::ProviderRegion;

/// The fifteen tests DM01 reports, as the full extract names them, and its total.
pub const DM01_TESTS: [&str; 16] = [
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
    "TOTAL",
];

/// One DM01 file the recipe names; the older layout's month and test come from here.
#[derive(Debug, Clone, PartialEq)]
pub struct Dm01File {
    pub path: PathBuf,
    pub written: String,
    pub period: Option<String>,
    pub test: Option<String>,
}

/// The header names of the 14 weekly bands.
fn band_names() -> Vec<String> {
    let mut names: Vec<String> = (0..13)
        .map(|k| {
            let unit = if k == 0 { "Week" } else { "Weeks" };
            format!("{k:02} < {:02} {unit}", k + 1)
        })
        .collect();
    names.push("13+ Weeks".into());
    names
}

/// Header name → column, ignoring case and spaces around.
fn columns_of(t: &TextTable) -> HashMap<String, String> {
    t.names()
        .iter()
        .map(|n| (n.trim().to_lowercase(), n.clone()))
        .collect()
}

/// A month: `YYYY-MM`, `YYYY-MM-DD`, or a month name and four-digit year at the end of the text
/// (`APRIL-2020`, `DIAGNOSTICS-APRIL-2020`, `April 2020`).
pub fn parse_period(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some((y, m)) = crate::periods::parse_month(t.get(..7).unwrap_or(t))
        && (t.len() == 7 || (t.len() == 10 && t.as_bytes()[7] == b'-'))
    {
        return Some(format!("{y:04}-{m:02}"));
    }
    let parts: Vec<&str> = t.split(['-', ' ', '_']).filter(|p| !p.is_empty()).collect();
    let [.., month, year] = parts.as_slice() else {
        return None;
    };
    let year: i32 = (year.len() == 4).then(|| year.parse().ok()).flatten()?;
    let names = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let m = names
        .iter()
        .position(|n| *n == month.to_lowercase() || n[..3] == month.to_lowercase())?;
    Some(format!("{year:04}-{:02}", m + 1))
}

/// A row's count in `column` (whole, not negative).
fn count(t: &TextTable, values: &[Option<&str>], row: usize, column: &str) -> Result<f64> {
    let text = values[row].unwrap_or("0");
    crate::input::count_value(t, row, column, text)
}

/// What one file gave: (provider, month, test) → weekly bands and activity, with the rows' first
/// number for messages.
type Read = BTreeMap<(String, String, String), ([f64; WAITING_WEEK_BANDS], f64)>;

/// Reads every DM01 file into the stage's input, with the warnings to report.
pub fn read(
    files: &[Dm01File],
    regions: &BTreeMap<String, ProviderRegion>,
) -> Result<(WaitingListInput, Vec<String>)> {
    let mut all: Read = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let t = TextTable::read(&file.path, &[])?;
        t.require_rows("DM01")?;
        let columns = columns_of(&t);
        if columns.contains_key("total wl") {
            read_full_extract(&t, &columns, &mut all, &mut names, &mut warnings)?;
        } else if columns.contains_key("total waiting list") {
            read_provider_file(&t, file, &columns, &mut all, &mut names)?;
        } else {
            return Err(Error::data_hint(
                &file.path,
                None,
                None,
                format!(
                    "not a DM01 file: neither `Total WL` (full extract) nor `Total Waiting List` \
                     (provider file) in the header (found: {})",
                    t.names().join(", ")
                ),
                "export NHS England's DM01 full-extract CSV, or a provider sheet as CSV",
            ));
        }
    }
    let mut providers = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut unknown = BTreeSet::new();
    for (code, name) in &names {
        let region = regions.get(code);
        if region.is_none() {
            unknown.insert(code.clone());
        }
        index.insert(code.clone(), providers.len() as u32);
        providers.push(RegionalProvider {
            code: code.clone(),
            name: region
                .map(|r| r.name.clone())
                .unwrap_or_else(|| name.clone()),
            region_code: region.map(|r| r.region_code.clone()).unwrap_or_default(),
            region_name: region.map(|r| r.region_name.clone()).unwrap_or_default(),
        });
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "DM01: {} providers are not in provider_regions and count in England only: {}",
            unknown.len(),
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let rows = all
        .into_iter()
        .map(
            |((provider, month, test), (weeks, activity))| WaitingListRow {
                provider: index[&provider],
                month,
                test,
                weeks: weeks.to_vec(),
                total_activity: activity,
            },
        )
        .collect();
    let other_nations = Vec::new();
    Ok((
        WaitingListInput {
            providers,
            rows,
            other_nations,
        },
        warnings,
    ))
}

/// The full extract: commissioners summed per provider × month × test; `TOTAL` rows checked
/// against their tests, never added.
fn read_full_extract(
    t: &TextTable,
    columns: &HashMap<String, String>,
    all: &mut Read,
    names: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let column = |name: &str| {
        layout_column(
            t,
            columns,
            name,
            "the DM01 full extract",
            "the full extract has Period, Provider Org Code, Diagnostic Tests, the 14 weekly \
             bands, Total WL and Total Activity",
        )
    };
    let periods = column("Period")?;
    let providers = column("Provider Org Code")?;
    let provider_names = column("Provider Org Name")?;
    let commissioners = column("Commissioner Org Code")?;
    let tests = column("Diagnostic Tests")?;
    let total_wl = column("Total WL")?;
    let activity = column("Total Activity")?;
    let bands: Vec<Vec<Option<&str>>> = band_names()
        .iter()
        .map(|b| column(b))
        .collect::<Result<_>>()?;
    let band_headers = band_names();
    let mut totals: BTreeMap<(String, String, String), (f64, f64, usize)> = BTreeMap::new();
    let mut unknown_tests: BTreeMap<String, usize> = BTreeMap::new();
    // Every column is indexed by the row, for its messages.
    #[allow(clippy::needless_range_loop)]
    for row in 0..t.height() {
        let period_text = required(t, row, &periods, "Period")?;
        let month = parse_period(period_text).ok_or_else(|| {
            Error::data_hint(
                &t.path,
                Some(row + 1),
                Some("Period"),
                format!("`{period_text}` is not a month"),
                "a period is YYYY-MM, YYYY-MM-DD or ends in a month name and year (APRIL-2020)",
            )
        })?;
        let provider = required(t, row, &providers, "Provider Org Code")?.to_string();
        let commissioner = required(t, row, &commissioners, "Commissioner Org Code")?.to_string();
        let test = required(t, row, &tests, "Diagnostic Tests")?.to_uppercase();
        let weeks = weeks_of(t, row, &bands, &band_headers)?;
        let listed = count(t, &total_wl, row, "Total WL")?;
        check_sum(
            t,
            row,
            "Total WL",
            listed,
            weeks.iter().sum(),
            "the 14 weekly bands",
        )?;
        if !DM01_TESTS.contains(&test.as_str()) {
            *unknown_tests.entry(test).or_default() += 1;
            continue;
        }
        names
            .entry(provider.clone())
            .or_insert_with(|| provider_names[row].unwrap_or(&provider).to_string());
        let key = (provider.clone(), month.clone(), commissioner);
        let cell = totals.entry(key).or_insert((0.0, 0.0, row));
        if test == "TOTAL" {
            cell.1 += listed;
            continue;
        }
        cell.0 += listed;
        let entry = all
            .entry((provider, month, test))
            .or_insert(([0.0; WAITING_WEEK_BANDS], 0.0));
        for (sum, w) in entry.0.iter_mut().zip(weeks) {
            *sum += w;
        }
        entry.1 += count(t, &activity, row, "Total Activity")?;
    }
    unknown_tests_and_totals(t, &unknown_tests, &totals, warnings);
    Ok(())
}

/// Warnings on the full extract's rows of tests DM01 does not name, and on TOTAL rows that are
/// not the sum of their tests.
fn unknown_tests_and_totals(
    t: &TextTable,
    unknown_tests: &BTreeMap<String, usize>,
    totals: &BTreeMap<(String, String, String), (f64, f64, usize)>,
    warnings: &mut Vec<String>,
) {
    if !unknown_tests.is_empty() {
        warnings.push(format!(
            "{}: rows of tests DM01 does not name were left out: {}",
            t.path.display(),
            unknown_tests
                .iter()
                .map(|(k, n)| format!("{k} ({n} rows)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mismatched: Vec<String> = totals
        .iter()
        .filter(|(_, (tests, total, _))| *total > 0.0 && tests != total)
        .map(|((p, m, c), (tests, total, _))| format!("{p} {c} {m}: TOTAL {total}, tests {tests}"))
        .collect();
    if !mismatched.is_empty() {
        warnings.push(format!(
            "{}: {} TOTAL rows differ from the sum of their tests (left as totals, not added): {}",
            t.path.display(),
            mismatched.len(),
            mismatched
                .into_iter()
                .take(5)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
}

/// The older provider file: one month and test, given by the recipe.
fn read_provider_file(
    t: &TextTable,
    file: &Dm01File,
    columns: &HashMap<String, String>,
    all: &mut Read,
    names: &mut BTreeMap<String, String>,
) -> Result<()> {
    let (Some(period), Some(test)) = (&file.period, &file.test) else {
        return Err(Error::data_hint(
            &t.path,
            None,
            None,
            "a DM01 provider file holds one month and test, which it does not name".into(),
            "give them in the recipe: { file = \"…\", period = \"2020-06\", test = \"MRI\" }",
        ));
    };
    let month = parse_period(period).ok_or_else(|| {
        Error::data(
            &t.path,
            None,
            None,
            format!("the recipe's period `{period}` is not a month"),
        )
    })?;
    let column = |name: &str| {
        layout_column(
            t,
            columns,
            name,
            "the DM01 provider file",
            "the provider file has Provider Code, Provider Name, Total Waiting List, Number \
             waiting 6+ Weeks, Number waiting 13+ Weeks and the 14 weekly bands",
        )
    };
    let providers = column("Provider Code")?;
    let provider_names = column("Provider Name")?;
    let total = column("Total Waiting List")?;
    let six = column("Number waiting 6+ Weeks")?;
    let thirteen = column("Number waiting 13+ Weeks")?;
    let band_headers = band_names();
    let bands: Vec<Vec<Option<&str>>> = band_headers
        .iter()
        .map(|b| column(b))
        .collect::<Result<_>>()?;
    let activity: Vec<Vec<Option<&str>>> = [
        "Waiting List Activity",
        "Planned Activity",
        "Unscheduled Activity",
    ]
    .iter()
    .map(|c| column(c))
    .collect::<Result<_>>()?;
    let test = test.to_uppercase();
    for row in 0..t.height() {
        let Some(provider) = providers[row] else {
            return Err(Error::data(
                &t.path,
                Some(row + 1),
                Some("Provider Code"),
                "empty value in a required column".into(),
            ));
        };
        let weeks = weeks_of(t, row, &bands, &band_headers)?;
        check_provider_totals(t, row, &weeks, [&total, &six, &thirteen])?;
        let mut done = 0.0;
        for (values, name) in activity.iter().zip([
            "Waiting List Activity",
            "Planned Activity",
            "Unscheduled Activity",
        ]) {
            done += count(t, values, row, name)?;
        }
        names
            .entry(provider.to_string())
            .or_insert_with(|| provider_names[row].unwrap_or(provider).to_string());
        let key = (provider.to_string(), month.clone(), test.clone());
        if all.insert(key, (weeks, done)).is_some() {
            return Err(Error::data_hint(
                &t.path,
                Some(row + 1),
                Some("Provider Code"),
                format!("provider `{provider}` has a second row for {month} {test}"),
                "a provider file has one row per provider",
            ));
        }
    }
    Ok(())
}

/// A column of one of DM01's layouts by its published name (any case), or an error naming the
/// layout and what it holds.
fn layout_column<'t>(
    t: &'t TextTable,
    columns: &HashMap<String, String>,
    name: &str,
    layout: &str,
    holds: &str,
) -> Result<Vec<Option<&'t str>>> {
    let header = columns.get(&name.to_lowercase()).ok_or_else(|| {
        Error::data_hint(
            &t.path,
            None,
            Some(name),
            format!("required column missing from {layout}"),
            holds,
        )
    })?;
    t.column(header)
}

/// The provider file's three totals against the weekly bands they sum.
fn check_provider_totals(
    t: &TextTable,
    row: usize,
    weeks: &[f64; WAITING_WEEK_BANDS],
    [total, six, thirteen]: [&[Option<&str>]; 3],
) -> Result<()> {
    check_sum(
        t,
        row,
        "Total Waiting List",
        count(t, total, row, "Total Waiting List")?,
        weeks.iter().sum(),
        "the 14 weekly bands",
    )?;
    check_sum(
        t,
        row,
        "Number waiting 6+ Weeks",
        count(t, six, row, "Number waiting 6+ Weeks")?,
        weeks[6..].iter().sum(),
        "the bands from 06 < 07 Weeks",
    )?;
    check_sum(
        t,
        row,
        "Number waiting 13+ Weeks",
        count(t, thirteen, row, "Number waiting 13+ Weeks")?,
        weeks[WAITING_WEEK_BANDS - 1],
        "the 13+ Weeks band",
    )
}

/// A value every full-extract row has.
fn required<'a>(
    t: &TextTable,
    row: usize,
    values: &[Option<&'a str>],
    name: &str,
) -> Result<&'a str> {
    values[row].ok_or_else(|| {
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some(name),
            "empty value in a required column".into(),
            "every DM01 row names its period, provider, commissioner and test",
        )
    })
}

fn weeks_of(
    t: &TextTable,
    row: usize,
    bands: &[Vec<Option<&str>>],
    headers: &[String],
) -> Result<[f64; WAITING_WEEK_BANDS]> {
    let mut weeks = [0.0; WAITING_WEEK_BANDS];
    for (k, (values, header)) in bands.iter().zip(headers).enumerate() {
        weeks[k] = count(t, values, row, header)?;
    }
    Ok(weeks)
}

/// A total column must equal the sum it stands for.
fn check_sum(
    t: &TextTable,
    row: usize,
    column: &str,
    total: f64,
    sum: f64,
    of: &str,
) -> Result<()> {
    if total == sum {
        return Ok(());
    }
    Err(Error::data_hint(
        &t.path,
        Some(row + 1),
        Some(column),
        format!("`{total}` is not the sum of {of} ({sum})"),
        "a DM01 total is the sum of its bands: the row was edited or cut short",
    ))
}

/// Other nations' published waiting figures: `nation, nation_code, first_month, last_month,
/// pct_waiting_6_plus_weeks, source` (months `YYYY-MM`, the share a percentage 0–100), checked
/// with file, row and column.
pub fn read_other_nations(path: &std::path::Path) -> Result<Vec<strata_api::NationWaitFigure>> {
    let columns = [
        "nation",
        "nation_code",
        "first_month",
        "last_month",
        "pct_waiting_6_plus_weeks",
        "source",
    ];
    let t = TextTable::read(path, &columns)?;
    t.require_rows("nation's waiting figure")?;
    let [nation, code, first, last, pct, source] = columns.map(|name| t.required_column(name));
    let (nation, code, first, last, pct, source) = (nation?, code?, first?, last?, pct?, source?);
    let mut out = Vec::new();
    for row in 0..t.height() {
        for (values, column) in [(&first, "first_month"), (&last, "last_month")] {
            if crate::periods::parse_month(values[row]).is_none() {
                return Err(Error::data_hint(
                    path,
                    Some(row + 1),
                    Some(column),
                    format!("`{}` is not a month (YYYY-MM)", values[row]),
                    "write the months the figure covers, e.g. 2020-04 and 2020-09",
                ));
            }
        }
        let share = pct[row].trim().parse::<f64>().ok();
        let Some(share) = share.filter(|p| (0.0..=100.0).contains(p)) else {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("pct_waiting_6_plus_weeks"),
                format!("`{}` is not a percentage from 0 to 100", pct[row]),
                "write the published share as printed, e.g. 47",
            ));
        };
        out.push(strata_api::NationWaitFigure {
            nation: nation[row].to_string(),
            code: code[row].to_string(),
            first: first[row].to_string(),
            last: last[row].to_string(),
            pct_waiting_6_plus_weeks: share,
            source: source[row].to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_nations_figures_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("strata-nations-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("nations.csv");
        let header = "source,nation,nation_code,first_month,last_month,pct_waiting_6_plus_weeks\n";
        std::fs::write(
            &path,
            format!("{header}\"a, b\",Scotland,S92000003,2020-04,2020-09,47\n"),
        )
        .expect("write");
        let read = read_other_nations(&path).expect("read");
        assert_eq!(read[0].pct_waiting_6_plus_weeks, 47.0);
        assert_eq!(read[0].source, "a, b");
        for (bad, column) in [
            ("2020-4,2020-09,47", "first_month"),
            ("2020-04,2020-09,147", "pct"),
        ] {
            std::fs::write(&path, format!("{header}s,Wales,W92000004,{bad}\n")).expect("write");
            let e = read_other_nations(&path).expect_err("refused").to_string();
            assert!(e.contains("row 1") && e.contains(column), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn periods_in_every_form_dm01_writes() {
        for (text, month) in [
            ("2020-06", "2020-06"),
            ("2020-06-01", "2020-06"),
            ("APRIL-2020", "2020-04"),
            ("DIAGNOSTICS-JUNE-2020", "2020-06"),
            ("June 2020", "2020-06"),
            ("Sep-2019", "2019-09"),
        ] {
            assert_eq!(parse_period(text).as_deref(), Some(month), "{text}");
        }
        for bad in ["2020-13", "JUNE", "June 20", "2020/06"] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }

    #[test]
    fn band_names_are_dm01s() {
        let names = band_names();
        assert_eq!(names[0], "00 < 01 Week");
        assert_eq!(names[1], "01 < 02 Weeks");
        assert_eq!(names[12], "12 < 13 Weeks");
        assert_eq!(names[13], "13+ Weeks");
    }
}
