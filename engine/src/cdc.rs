//! Community diagnostic centre (CDC) activity (seed 004) as read for the `setting_share` stage:
//! NHS England's "CDC activity by provider" monthly file as CSV, the approved-site list, and each
//! DM01 provider's ICB.
//!
//! The activity file has one row per CDC × test type × month: `Region Code, Regional Name, ICB,
//! CDC Code, CDC Name, ID, Diagnostic Test Type, Reporting Month, Sum of Metric Value`, in any
//! order, names matched ignoring case and surrounding spaces. `ID` is a row number, not a key.
//! Test types are full names (`Computed Tomography`), mapped to DM01's codes (`CT`) by the
//! recipe's `cdc_test_names`; a name the map does not hold is an error, so no activity is
//! dropped unseen. Months are `Mon-YY` (`Aug-24`). A CDC is its code, name, region and ICB as the
//! file writes them: the file has no link to a trust, so activity counts where the file puts it.
//!
//! Checks, each naming file, row, column, rule and value: required columns present, cells
//! filled, months are `Mon-YY`, counts whole and not negative, one row per CDC × test × month.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use strata_api::{ListedSite, NamedArea, SettingActivityRow, SettingSite};

use crate::dm01::DM01_TESTS;
use crate::error::{Error, Result};
use crate::input::TextTable;

/// The map's value for a test type DM01 does not count (plain X-ray, phlebotomy): counted in the
/// CDC's own totals, never in a share of DM01.
pub const NOT_DM01: &str = "NOT_DM01";

/// The activity file's columns, as NHS England names them.
const COLUMNS: [&str; 9] = [
    "Region Code",
    "Regional Name",
    "ICB",
    "CDC Code",
    "CDC Name",
    "ID",
    "Diagnostic Test Type",
    "Reporting Month",
    "Sum of Metric Value",
];

/// The recipe's map of test type names (compared ignoring case and surrounding spaces) to DM01
/// test codes, or [`NOT_DM01`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TestNames(BTreeMap<String, Option<String>>);

impl TestNames {
    /// Checks every value is a DM01 test code (not `TOTAL`) or [`NOT_DM01`].
    pub fn new(map: &BTreeMap<String, String>) -> std::result::Result<TestNames, String> {
        let mut out = BTreeMap::new();
        for (name, code) in map {
            let code = code.trim().to_uppercase();
            let test = if code == NOT_DM01 {
                None
            } else if DM01_TESTS[..15].contains(&code.as_str()) {
                Some(code)
            } else {
                return Err(format!(
                    "`{name}` = `{code}`: not a DM01 test code (one of {}) nor `{NOT_DM01}`",
                    DM01_TESTS[..15].join(", ")
                ));
            };
            out.insert(name.trim().to_lowercase(), test);
        }
        Ok(TestNames(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The DM01 code of a test type name: `Some(None)` for a test DM01 does not count, `None`
    /// when the map does not hold the name.
    pub fn get(&self, name: &str) -> Option<Option<String>> {
        self.0.get(&name.trim().to_lowercase()).cloned()
    }
}

/// One activity row before sites are numbered: the CDC as the file names it, and its tests.
#[derive(Debug, Clone, PartialEq)]
pub struct CdcRecord {
    pub site: SettingSite,
    pub month: String,
    pub test_name: String,
    pub tests: f64,
}

/// The CDC activity, sites numbered, test types mapped, with the site list and the providers'
/// ICBs: what the board's [`strata_api::Slot::SettingActivity`] holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingActivity {
    pub sites: Vec<SettingSite>,
    pub activity: Vec<SettingActivityRow>,
    pub listed_sites: Vec<ListedSite>,
    /// Provider code → ICB code.
    pub provider_icbs: BTreeMap<String, String>,
    pub icbs: Vec<NamedArea>,
}

/// `Mon-YY` (`Aug-24`, any case) as `YYYY-MM`; years are 20YY.
pub fn parse_reporting_month(text: &str) -> Option<String> {
    let (month, year) = text.trim().split_once('-')?;
    if year.len() != 2 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let names = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = names.iter().position(|n| *n == month.to_lowercase())?;
    Some(format!("20{year}-{:02}", m + 1))
}

/// Reads one CDC activity file into records, every test type checked against the map.
pub fn read_activity(path: &Path, names: &TestNames) -> Result<Vec<CdcRecord>> {
    let t = TextTable::read(path, &[])?;
    t.require_rows("CDC activity")?;
    let mut values = Vec::new();
    for name in COLUMNS {
        let header = t.header_named(name).ok_or_else(|| {
            Error::data_hint(
                path,
                None,
                Some(name),
                format!(
                    "required column missing from the CDC activity file (found: {})",
                    t.names().join(", ")
                ),
                "the file has Region Code, Regional Name, ICB, CDC Code, CDC Name, ID, \
                 Diagnostic Test Type, Reporting Month and Sum of Metric Value",
            )
        })?;
        values.push(t.column(header)?);
    }
    let mut records = Vec::with_capacity(t.height());
    let mut first_row: HashMap<(String, String, String, String, String), usize> = HashMap::new();
    // Every column is indexed by the row, for its messages.
    #[allow(clippy::needless_range_loop)]
    for row in 0..t.height() {
        let cell = |k: usize| {
            values[k][row].ok_or_else(|| {
                Error::data_hint(
                    path,
                    Some(row + 1),
                    Some(COLUMNS[k]),
                    "empty value in a required column".into(),
                    "every CDC activity row names its region, ICB, CDC, test type and month",
                )
            })
        };
        let record = record_of(&t, row, &cell)?;
        check_test_name(path, row, &record.test_name, names)?;
        let key = (
            record.site.code.clone(),
            record.site.name.clone(),
            record.site.icb_code.clone(),
            record.month.clone(),
            record.test_name.to_lowercase(),
        );
        if let Some(first) = first_row.insert(key, row) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("CDC Code"),
                format!(
                    "CDC `{}` ({}), {} `{}` is on row {} too",
                    record.site.code,
                    record.site.name,
                    record.month,
                    record.test_name,
                    first + 1
                ),
                "one row per CDC × test type × month; `ID` is a row number, not a key",
            ));
        }
        records.push(record);
    }
    Ok(records)
}

/// One row's record; `cell(k)` is column `COLUMNS[k]`, filled.
fn record_of<'a>(
    t: &TextTable,
    row: usize,
    cell: &dyn Fn(usize) -> Result<&'a str>,
) -> Result<CdcRecord> {
    let month_text = cell(7)?;
    let month = parse_reporting_month(month_text).ok_or_else(|| {
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some("Reporting Month"),
            format!("`{month_text}` is not a month written `Mon-YY`"),
            "NHS England writes the reporting month as a three-letter month and two-digit year, \
             e.g. Aug-24",
        )
    })?;
    let tests = crate::input::count_value(t, row, "Sum of Metric Value", cell(8)?)?;
    Ok(CdcRecord {
        site: SettingSite {
            code: cell(3)?.to_string(),
            name: cell(4)?.to_string(),
            region_code: cell(0)?.to_string(),
            region_name: cell(1)?.to_string(),
            icb_code: cell(2)?.to_string(),
        },
        month,
        test_name: cell(6)?.to_string(),
        tests,
    })
}

fn check_test_name(path: &Path, row: usize, name: &str, names: &TestNames) -> Result<()> {
    if names.get(name).is_some() {
        return Ok(());
    }
    Err(Error::data_hint(
        path,
        Some(row + 1),
        Some("Diagnostic Test Type"),
        format!("test type `{name}` is not in the recipe's `cdc_test_names`"),
        "map it to its DM01 test code (e.g. \"Computed Tomography\" = \"CT\"), or to \
         \"NOT_DM01\" for a test DM01 does not count",
    ))
}

/// Numbers the records' sites (in order of code, name, ICB) and maps their test types.
pub fn assemble(records: Vec<CdcRecord>, names: &TestNames) -> Result<SettingActivity> {
    let mut keys: BTreeMap<(String, String, String), SettingSite> = BTreeMap::new();
    for r in &records {
        let key = (
            r.site.code.clone(),
            r.site.name.clone(),
            r.site.icb_code.clone(),
        );
        keys.entry(key).or_insert_with(|| r.site.clone());
    }
    let index: HashMap<(String, String, String), u32> = keys
        .keys()
        .enumerate()
        .map(|(i, k)| (k.clone(), i as u32))
        .collect();
    let mut activity = Vec::with_capacity(records.len());
    for r in records {
        let dm01_test = names.get(&r.test_name).ok_or_else(|| {
            Error::Usage(format!(
                "CDC test type `{}` is not in the recipe's `cdc_test_names`",
                r.test_name
            ))
        })?;
        let key = (r.site.code, r.site.name, r.site.icb_code);
        activity.push(SettingActivityRow {
            site: index[&key],
            month: r.month,
            test_name: r.test_name,
            dm01_test,
            tests: r.tests,
        });
    }
    Ok(SettingActivity {
        sites: keys.into_values().collect(),
        activity,
        ..SettingActivity::default()
    })
}

/// The approved-site list: `cdc_ods_site_code, name_of_cdc, icb_code, cdc_trust_code` (other
/// columns are kept in the file, not read). A code on two rows is kept twice: the share stage
/// reports it.
pub fn read_sites(path: &Path) -> Result<Vec<ListedSite>> {
    let columns = [
        "cdc_ods_site_code",
        "name_of_cdc",
        "icb_code",
        "cdc_trust_code",
    ];
    let t = TextTable::read(path, &columns)?;
    t.require_rows("CDC site")?;
    let codes = t.required_column("cdc_ods_site_code")?;
    let names = t.required_column("name_of_cdc")?;
    let icbs = t.required_column("icb_code")?;
    let trusts = t.required_column("cdc_trust_code")?;
    Ok((0..t.height())
        .map(|row| ListedSite {
            code: codes[row].to_string(),
            name: names[row].to_string(),
            icb_code: icbs[row].to_string(),
            host_trust_code: trusts[row].to_string(),
        })
        .collect())
}

/// Provider → ICB: `provider_code, icb_code, icb_name`, one row per provider, one name per ICB.
pub fn read_provider_icbs(path: &Path) -> Result<(BTreeMap<String, String>, Vec<NamedArea>)> {
    let t = TextTable::read(path, &["provider_code", "icb_code", "icb_name"])?;
    t.require_rows("provider ICB")?;
    let providers = t.required_column("provider_code")?;
    crate::input::unique_index(&t, "provider_code", &providers)?;
    let icbs = t.required_column("icb_code")?;
    let names = t.required_column("icb_name")?;
    let mut named: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for row in 0..t.height() {
        let (name, first) = *named.entry(icbs[row]).or_insert((names[row], row));
        if name != names[row] {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("icb_name"),
                format!(
                    "ICB `{}` is named `{}` here and `{name}` on row {}",
                    icbs[row],
                    names[row],
                    first + 1
                ),
                "give each ICB code one name",
            ));
        }
        out.insert(providers[row].to_string(), icbs[row].to_string());
    }
    let areas = named
        .into_iter()
        .map(|(code, (name, _))| NamedArea {
            code: code.to_string(),
            name: name.to_string(),
        })
        .collect();
    Ok((out, areas))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporting_months_are_mon_yy() {
        assert_eq!(parse_reporting_month("Aug-24").as_deref(), Some("2024-08"));
        assert_eq!(
            parse_reporting_month(" jan-23 ").as_deref(),
            Some("2023-01")
        );
        for bad in [
            "Aug-2024",
            "2024-08",
            "August-24",
            "Aug 24",
            "Aug-2a",
            "Foo-24",
        ] {
            assert_eq!(parse_reporting_month(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_test_name_map_takes_dm01_codes_and_not_dm01_only() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let names = TestNames::new(&map(&[
            ("Computed Tomography", "CT"),
            ("Plain X-ray", "not_dm01"),
        ]))
        .unwrap();
        assert_eq!(names.get("computed tomography "), Some(Some("CT".into())));
        assert_eq!(names.get("Plain X-ray"), Some(None));
        assert_eq!(names.get("Phlebotomy"), None);
        let err = TestNames::new(&map(&[("All", "TOTAL")])).unwrap_err();
        assert!(err.contains("not a DM01 test code"), "{err}");
    }
}
