//! Period comparison (seed 002): tests by provider × month × measure, each provider with its NHS
//! region, read from the aggregated entry (`provider_months`) or the synthetic pair of years, and
//! summed into the two periods of the recipe's `[comparison]` for each provider, region and
//! England. The engine only sums and orders; the ratio of the two counts and its limits are the
//! `period_comparison` stage's plugin's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use strata_api::{
    CountRatio, CountRatioMethod, DidWaitsInput, MethodError, RegionalProvider, Table, Value,
    WaitHistogram, WaitInterval,
};

use crate::error::{Error, Result};
use crate::input::TextTable;
use crate::recipe::Period;

/// The modality keys of SPEC §3 (the synthetic year's list, which its records carry): what a
/// provider × month count may be of.
pub use strata_synth::MODALITIES;

/// The measure every row of a provider × month sums to: all modalities together.
pub const ALL_MEASURES: &str = "all";

/// A provider and its NHS England region.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRegion {
    pub name: String,
    pub region_code: String,
    pub region_name: String,
}

/// Tests by provider × measure × month (`YYYY-MM`), with every provider's region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderMonths {
    pub providers: BTreeMap<String, ProviderRegion>,
    pub tests: BTreeMap<(String, String, String), f64>,
}

/// Provider → region: `provider_code, provider_name, region_code, region_name`.
pub fn read_provider_regions(path: &Path) -> Result<BTreeMap<String, ProviderRegion>> {
    let columns = [
        "provider_code",
        "provider_name",
        "region_code",
        "region_name",
    ];
    let t = TextTable::read(path, &columns)?;
    t.require_rows("provider")?;
    let codes = t.required_column("provider_code")?;
    crate::input::unique_index(&t, "provider_code", &codes)?;
    let names = t.required_column("provider_name")?;
    let regions = t.required_column("region_code")?;
    let region_names = t.required_column("region_name")?;
    let mut region_of: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut out = BTreeMap::new();
    for row in 0..t.height() {
        // One region code, one name: a second spelling would split the region's rows.
        let (name, first) = *region_of
            .entry(regions[row])
            .or_insert((region_names[row], row));
        if name != region_names[row] {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("region_name"),
                format!(
                    "region `{}` is named `{}` here and `{name}` on row {}",
                    regions[row],
                    region_names[row],
                    first + 1
                ),
                "give each region code one name",
            ));
        }
        out.insert(
            codes[row].to_string(),
            ProviderRegion {
                name: names[row].to_string(),
                region_code: regions[row].to_string(),
                region_name: region_names[row].to_string(),
            },
        );
    }
    Ok(out)
}

/// `YYYY-MM` with a month 01–12, or `None`.
pub fn parse_month(text: &str) -> Option<(i32, u32)> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some((y, m))
}

/// The aggregated entry: `provider_code, month, measure, tests`, one row per provider × month ×
/// modality, every provider in `regions`.
pub fn read_provider_months(
    path: &Path,
    regions: &BTreeMap<String, ProviderRegion>,
) -> Result<ProviderMonths> {
    let t = TextTable::read(path, &["provider_code", "month", "measure", "tests"])?;
    t.require_rows("provider × month count")?;
    let providers = t.required_column("provider_code")?;
    let months = t.required_column("month")?;
    let measures = t.required_column("measure")?;
    let tests = t.required_column("tests")?;
    let mut first_row: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut out = ProviderMonths::default();
    for row in 0..t.height() {
        let (provider, month, measure) = (providers[row], months[row], measures[row]);
        let Some(region) = regions.get(provider) else {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("provider_code"),
                format!("provider `{provider}` is not in the recipe's provider_regions file"),
                "add the provider with its NHS region to provider_regions, or fix the code",
            ));
        };
        if parse_month(month).is_none() {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("month"),
                format!("`{month}` is not a month (YYYY-MM, e.g. 2020-04)"),
                "write each month as four-digit year, hyphen, two-digit month",
            ));
        }
        if !MODALITIES.contains(&measure) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("measure"),
                format!(
                    "`{measure}` is not a modality key (one of {})",
                    MODALITIES.join(", ")
                ),
                "map the extract's modality names to SPEC §3's keys",
            ));
        }
        let value = crate::input::count_value(&t, row, "tests", tests[row])?;
        if let Some(first) = first_row.insert((provider, month, measure), row) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("provider_code"),
                format!(
                    "provider `{provider}`, month {month}, measure {measure} is on row {} too",
                    first + 1
                ),
                "each provider × month × measure has one row; sum the rows first",
            ));
        }
        out.providers.insert(provider.to_string(), region.clone());
        out.tests.insert(
            (provider.to_string(), measure.to_string(), month.to_string()),
            value,
        );
    }
    Ok(out)
}

/// Where record-level activity for a period comparison comes from: a file, or a frame in memory
/// with its label, read through an input mapping on up to `threads` workers.
pub struct RecordSource<'a> {
    pub label: &'a Path,
    pub frame: Option<&'a crate::pipeline::InputFrame>,
    pub mapping: &'a crate::input::mapping::InputMapping,
    pub threads: usize,
}

/// Record-level activity counted to tests by provider × month × modality (and the waits of
/// each cell, [`crate::input::activity::provider_months`]), in one streaming pass: the same
/// readers, checks and input mapping as the stratified pass, every provider in `regions`.
pub fn read_records(
    source: &RecordSource,
    regions: &BTreeMap<String, ProviderRegion>,
) -> Result<RecordCounts> {
    use crate::input::activity::{COLUMNS, REPORT, REQUEST, provider_months};
    use crate::input::extract::Extract;
    let columns = provider_months::MonthPass::columns_read();
    let extract = match source.frame {
        None => Extract::open_columns(source.label, source.mapping, columns)?,
        Some(frame) => Extract::from_batches_columns(
            source.label,
            frame.batches.clone(),
            source.mapping,
            columns,
        )?,
    };
    let intervals: Vec<WaitInterval> = [
        (REQUEST, WaitInterval::RequestToTest),
        (REPORT, WaitInterval::TestToReport),
    ]
    .into_iter()
    .filter(|(c, _)| extract.has_column(*c))
    .map(|(_, interval)| interval)
    .collect();
    let value_maps = std::array::from_fn(|c| source.mapping.value_map(COLUMNS[c]));
    let providers = regions.keys().cloned().collect();
    let counted = provider_months::count_extract(&extract, value_maps, providers, source.threads)?;
    if counted.records == 0 {
        return Err(Error::data_hint(
            source.label,
            None,
            None,
            "header only: no activity records".into(),
            "the extract is empty or was cut short; a comparison of no records would be all zeros",
        ));
    }
    let mut months = ProviderMonths::default();
    for ((provider, measure, month), tests) in &counted.tests {
        if let Some(region) = regions.get(provider) {
            months.providers.insert(provider.clone(), region.clone());
        }
        months.tests.insert(
            (provider.clone(), measure.clone(), month.clone()),
            *tests as f64,
        );
    }
    let waits = (!intervals.is_empty()).then(|| wait_input(&counted, &intervals, regions));
    Ok(RecordCounts {
        months,
        waits,
        records: counted.records,
    })
}

/// What records give a period comparison: tests by provider × month × modality, and the DID
/// waits when the extract has a request or a report date.
pub struct RecordCounts {
    pub months: ProviderMonths,
    pub waits: Option<DidWaitsInput>,
    pub records: u64,
}

/// The waits of the `intervals` the extract has dates for, as the DID-waits stage takes them:
/// providers in code order, histograms by provider, measure, month and interval.
pub fn wait_input(
    counted: &crate::input::activity::provider_months::MonthCounts,
    intervals: &[WaitInterval],
    regions: &BTreeMap<String, ProviderRegion>,
) -> DidWaitsInput {
    use crate::input::activity::provider_months::{REQUEST_TO_TEST, TEST_TO_REPORT};
    let mut input = DidWaitsInput::default();
    let mut index: HashMap<&str, u32> = HashMap::new();
    for (provider, measure, month) in counted.tests.keys() {
        let Some(region) = regions.get(provider) else {
            continue;
        };
        let at = *index.entry(provider.as_str()).or_insert_with(|| {
            input.providers.push(RegionalProvider {
                code: provider.clone(),
                name: region.name.clone(),
                region_code: region.region_code.clone(),
                region_name: region.region_name.clone(),
            });
            (input.providers.len() - 1) as u32
        });
        let key = (provider.clone(), measure.clone(), month.clone());
        for &interval in intervals {
            let code = match interval {
                WaitInterval::RequestToTest => REQUEST_TO_TEST,
                WaitInterval::TestToReport => TEST_TO_REPORT,
            };
            let cell = (key.clone(), code);
            input.histograms.push(WaitHistogram {
                provider: at,
                measure: measure.clone(),
                month: month.clone(),
                interval,
                days: counted
                    .waits
                    .get(&cell)
                    .map(|d| d.iter().map(|(d, n)| (*d, *n)).collect())
                    .unwrap_or_default(),
                missing: counted.missing.get(&cell).copied().unwrap_or(0),
            });
        }
    }
    input
}

/// One row of the comparison before its ratio: who, what, when, and the two periods' tests.
struct Compared {
    level: &'static str,
    code: String,
    name: String,
    region_code: String,
    measure: String,
    month_a: String,
    month_b: String,
    period_a: f64,
    period_b: f64,
}

/// Level × code, measure, and month of the period (`None`: the whole period).
type SumKey<'a> = (&'a (u8, String), &'a str, Option<u32>);

/// Sums of each period by level × code × measure × month (the period's own months, `all` for the
/// whole period), in output order: England, regions, providers; measures in SPEC order after
/// `all`; the whole period before its months.
fn compare(counts: &ProviderMonths, a: &Period, b: &Period) -> Vec<Compared> {
    let measures: Vec<&str> = std::iter::once(ALL_MEASURES)
        .chain(
            MODALITIES
                .into_iter()
                .filter(|m| counts.tests.keys().any(|(_, measure, _)| measure == m)),
        )
        .collect();
    // (level order, code) → (name, region); each provider adds to itself, its region, England.
    let mut entities: BTreeMap<(u8, String), (&'static str, String, String)> = BTreeMap::new();
    let mut owners: HashMap<&str, [(u8, String); 3]> = HashMap::new();
    for (code, p) in &counts.providers {
        let keys = [
            (0, "E92000001".to_string()),
            (1, p.region_code.clone()),
            (2, code.clone()),
        ];
        entities.insert(
            keys[0].clone(),
            ("england", "England".into(), String::new()),
        );
        entities.insert(
            keys[1].clone(),
            ("region", p.region_name.clone(), p.region_code.clone()),
        );
        entities.insert(
            keys[2].clone(),
            ("provider", p.name.clone(), p.region_code.clone()),
        );
        owners.insert(code.as_str(), keys);
    }
    // Month k of a period pairs with month k of the other; k = None is the whole period.
    let index_of =
        |period: &Period, month: &str| (0..period.months()).find(|k| period.month(*k) == month);
    let mut sums: HashMap<SumKey, [f64; 2]> = HashMap::new();
    for ((provider, measure, month), tests) in &counts.tests {
        let Some(keys) = owners.get(provider.as_str()) else {
            continue;
        };
        for (side, period) in [a, b].into_iter().enumerate() {
            let Some(k) = index_of(period, month) else {
                continue;
            };
            for key in keys {
                for m in [ALL_MEASURES, measure.as_str()] {
                    for month in [None, Some(k)] {
                        let cell = sums.entry((key, m, month)).or_insert([0.0; 2]);
                        cell[side] += tests;
                    }
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (key, (level, name, region_code)) in &entities {
        for measure in &measures {
            for month in std::iter::once(None).chain((0..a.months()).map(Some)) {
                let [period_a, period_b] = sums
                    .get(&(key, *measure, month))
                    .copied()
                    .unwrap_or([0.0; 2]);
                let (month_a, month_b) = match month {
                    None => ("all".to_string(), "all".to_string()),
                    Some(k) => (a.month(k), b.month(k)),
                };
                rows.push(Compared {
                    level,
                    code: key.1.clone(),
                    name: name.clone(),
                    region_code: region_code.clone(),
                    measure: measure.to_string(),
                    month_a,
                    month_b,
                    period_a,
                    period_b,
                });
            }
        }
    }
    rows
}

/// The `period_comparison` table: each level × code × measure × month's tests in the two
/// periods, their change, and the method's ratio with its limits; providers ranked by recovery
/// (ratio of the later period to the earlier, highest first) within each measure over the whole
/// period.
pub fn period_comparison_table(
    method: &dyn CountRatioMethod,
    counts: &ProviderMonths,
    a: &Period,
    b: &Period,
) -> std::result::Result<Table, MethodError> {
    let rows = compare(counts, a, b);
    let ratios = method.intervals(
        &rows.iter().map(|r| r.period_a).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.period_b).collect::<Vec<_>>(),
    )?;
    if ratios.len() != rows.len() {
        return Err(MethodError::new(format!(
            "returned {} ratios for {} comparisons",
            ratios.len(),
            rows.len()
        )));
    }
    let ranks = recovery_ranks(&rows, &ratios);
    let method_name = method.method_name();
    let mut t = Table::new(
        "period_comparison",
        &format!(
            "Tests in {} ({} to {}) against {} ({} to {}) by provider, region and England",
            b.label,
            b.month(0),
            b.month(b.months() - 1),
            a.label,
            a.month(0),
            a.month(a.months() - 1)
        ),
        &[
            "level",
            "code",
            "name",
            "region_code",
            "measure",
            "period_a",
            "period_b",
            "month_a",
            "month_b",
            "period_a_tests",
            "period_b_tests",
            "change",
            "pct_change",
            "ratio",
            "ci_lower",
            "ci_upper",
            "method",
            "recovery_rank",
            "note",
        ],
    )
    .with_counts(&["period_a_tests", "period_b_tests"]);
    let number = |v: Option<f64>| v.map(Value::finite).unwrap_or(Value::Missing);
    for ((r, ratio), rank) in rows.iter().zip(&ratios).zip(ranks) {
        let CountRatio {
            ratio: value,
            lower,
            upper,
            note,
        } = ratio;
        t.rows.push(vec![
            Value::Text(r.level.into()),
            Value::Text(r.code.clone()),
            Value::Text(r.name.clone()),
            Value::Text(r.region_code.clone()),
            Value::Text(r.measure.clone()),
            Value::Text(a.label.clone()),
            Value::Text(b.label.clone()),
            Value::Text(r.month_a.clone()),
            Value::Text(r.month_b.clone()),
            Value::Number(r.period_a),
            Value::Number(r.period_b),
            Value::Number(r.period_b - r.period_a),
            number(value.map(|v| (v - 1.0) * 100.0)),
            number(*value),
            number(*lower),
            number(*upper),
            Value::Text(method_name.clone()),
            rank.map(|k| Value::Number(k as f64))
                .unwrap_or(Value::Missing),
            Value::Text(note.clone().unwrap_or_default()),
        ]);
    }
    Ok(t)
}

/// 1 for the provider whose tests recovered most (highest ratio) in each measure over the whole
/// period, ties by code; `None` for other rows and for providers without a ratio.
fn recovery_ranks(rows: &[Compared], ratios: &[CountRatio]) -> Vec<Option<usize>> {
    let mut ranks = vec![None; rows.len()];
    let mut by_measure: BTreeMap<&str, Vec<(f64, &str, usize)>> = BTreeMap::new();
    for (i, (r, ratio)) in rows.iter().zip(ratios).enumerate() {
        if let (true, true, Some(v)) = (r.level == "provider", r.month_a == "all", ratio.ratio) {
            by_measure
                .entry(r.measure.as_str())
                .or_default()
                .push((v, r.code.as_str(), i));
        }
    }
    for list in by_measure.values_mut() {
        list.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
        for (rank, (_, _, i)) in list.iter().enumerate() {
            ranks[*i] = Some(rank + 1);
        }
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_four_digit_years_and_two_digit_months() {
        assert_eq!(parse_month("2020-04"), Some((2020, 4)));
        for bad in [
            "2020-4",
            "20-04",
            "2020-13",
            "2020/04",
            "2020-00",
            "2020-04-01",
        ] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
    }
}
