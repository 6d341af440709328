//! `waits.quantiles-hyndman-fan-7` — DID waits (seed 002) from record dates: for each provider,
//! NHS region and England, modality (and all modalities together), month of test and interval
//! (request → test, test → report), the waits counted, their median, 90th and 95th percentiles
//! in days, and the number and share waiting `threshold_days` or more (default 42, six weeks, the
//! DM01 operational standard's "six weeks or more").
//!
//! **Quantile definition.** Hyndman & Fan (1996) type 7, R's default `quantile(type = 7)` and
//! numpy's default (`method = "linear"`): with the `n` waits sorted `x_1 ≤ … ≤ x_n`,
//! `h = (n − 1)·p + 1` and `Q(p) = x_⌊h⌋ + (h − ⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋)` (`Q = x_n` when
//! `⌊h⌋ = n`). The waits arrive as a histogram of whole days, so `x_k` is read off the
//! cumulative counts and no list of records is ever built; a quantile may fall between two
//! whole days (e.g. 2.5).
//!
//! **Rules for dates** (which waits count): a wait of 0 days or more counts. A negative wait is a
//! date error and is excluded, counted in `bad_dates` under its rule: `request_after_test`
//! (request → test below 0) or `report_before_test` (test → report below 0). A record without
//! the interval's date is counted in `missing_date`. Neither is silently kept.
//!
//! **Small cells.** A cell with fewer than `min_records` waits (default 10) has no quantiles and
//! no share (a note says so): the median of a handful of waits is a patient's own wait. Its
//! counts are declared, so a recipe's disclosure stage protects them too.
//!
//! Parameters: `threshold_days` (1–3650, default 42), `min_records` (≥ 1, default 10).
//!
//! Reference: R. J. Hyndman and Y. Fan (1996), "Sample quantiles in statistical packages", *The
//! American Statistician* 50(4), 361–365.

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_api::{
    Configured, DidWaitsInput, DidWaitsMethod, MethodError, ParamError, Params, PluginDescriptor,
    StageKind, Table, Value, WaitInterval,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "waits.quantiles-hyndman-fan-7",
    stage: StageKind::DidWaits,
    version: env!("CARGO_PKG_VERSION"),
    description: "DID waits from record dates: median, 90th and 95th percentiles (Hyndman & Fan type 7) and share waiting six weeks or more",
    configure,
};

/// The probabilities reported, with their column names.
const QUANTILES: [(f64, &str); 3] = [(0.5, "median_days"), (0.9, "p90_days"), (0.95, "p95_days")];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantileParams {
    #[serde(default = "default_threshold")]
    threshold_days: i64,
    #[serde(default = "default_min_records")]
    min_records: u64,
}

fn default_threshold() -> i64 {
    42
}

fn default_min_records() -> u64 {
    10
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: QuantileParams = params.parse()?;
    if !(1..=3650).contains(&p.threshold_days) {
        return Err(ParamError::new(
            "threshold_days",
            format!(
                "threshold_days = {}: a wait threshold is 1 to 3650 days (six weeks is 42)",
                p.threshold_days
            ),
        ));
    }
    if p.min_records == 0 {
        return Err(ParamError::new(
            "min_records",
            "min_records must be at least 1 (a quantile of no waits is nothing)",
        ));
    }
    Ok(Configured::DidWaits(Box::new(Quantiles {
        threshold_days: p.threshold_days,
        min_records: p.min_records,
    })))
}

/// Hyndman & Fan type 7 quantiles of whole-day waits, and the share at or over a threshold.
pub struct Quantiles {
    pub threshold_days: i64,
    pub min_records: u64,
}

/// The type 7 quantile `p` of the waits in `days` ((day, records), days increasing, records
/// > 0); `None` for no waits.
pub fn type7(days: &[(i64, u64)], p: f64) -> Option<f64> {
    let n: u64 = days.iter().map(|d| d.1).sum();
    if n == 0 {
        return None;
    }
    // 0-based: the quantile lies between order statistics `low` and `low + 1`.
    let h = (n - 1) as f64 * p;
    let low = h.floor() as u64;
    let fraction = h - low as f64;
    let x_low = order_statistic(days, low)?;
    let x_high = order_statistic(days, (low + 1).min(n - 1))?;
    Some(x_low as f64 + fraction * (x_high - x_low) as f64)
}

/// The wait of 0-based rank `rank` in the sorted waits, read off the cumulative counts.
fn order_statistic(days: &[(i64, u64)], rank: u64) -> Option<i64> {
    let mut below = 0;
    for &(day, records) in days {
        below += records;
        if rank < below {
            return Some(day);
        }
    }
    None
}

/// One cell's waits after the rules: kept days, and the counts of the others.
#[derive(Default, Clone)]
struct Cell {
    days: BTreeMap<i64, u64>,
    missing: u64,
    bad: u64,
}

/// (level order, code) → (name, region code); cells by (measure, month, interval).
type Levels = BTreeMap<(u8, String), ((String, String), BTreeMap<CellKey, Cell>)>;
type CellKey = (String, String, WaitInterval);

/// The measure every modality sums to.
const ALL: &str = "all";

fn rule(interval: WaitInterval) -> &'static str {
    match interval {
        WaitInterval::RequestToTest => "request_after_test",
        WaitInterval::TestToReport => "report_before_test",
    }
}

impl Quantiles {
    /// Every histogram added to its provider, region and England, under its modality and `all`.
    fn levels(&self, input: &DidWaitsInput) -> Result<Levels, MethodError> {
        let mut out = Levels::new();
        for h in &input.histograms {
            let p = input.providers.get(h.provider as usize).ok_or_else(|| {
                MethodError::new(format!(
                    "a histogram names provider {} of {}",
                    h.provider,
                    input.providers.len()
                ))
            })?;
            let mut owners = vec![
                (
                    (0, "E92000001".to_string()),
                    ("England".to_string(), String::new()),
                ),
                ((2, p.code.clone()), (p.name.clone(), p.region_code.clone())),
            ];
            if !p.region_code.is_empty() {
                let region = (p.region_name.clone(), p.region_code.clone());
                owners.push(((1, p.region_code.clone()), region));
            }
            for (key, names) in owners {
                let cells = &mut out.entry(key).or_insert((names, BTreeMap::new())).1;
                for measure in [ALL, h.measure.as_str()] {
                    let key = (measure.to_string(), h.month.clone(), h.interval);
                    let cell = cells.entry(key).or_default();
                    cell.missing += h.missing;
                    for &(day, records) in &h.days {
                        if day < 0 {
                            cell.bad += records;
                        } else {
                            *cell.days.entry(day).or_default() += records;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The row's statistics: waits, quantiles, number and share at or over the threshold, note.
    fn statistics(&self, cell: &Cell) -> (u64, Vec<Value>, u64, Value, String) {
        let days: Vec<(i64, u64)> = cell.days.iter().map(|(d, n)| (*d, *n)).collect();
        let n: u64 = days.iter().map(|d| d.1).sum();
        let over: u64 = days
            .iter()
            .filter(|d| d.0 >= self.threshold_days)
            .map(|d| d.1)
            .sum();
        if n < self.min_records {
            let note = format!(
                "fewer than {} waits: quantiles and share not published",
                self.min_records
            );
            return (
                n,
                vec![Value::Missing; QUANTILES.len()],
                over,
                Value::Missing,
                note,
            );
        }
        let quantiles = QUANTILES
            .iter()
            .map(|(p, _)| type7(&days, *p).map_or(Value::Missing, Value::Number))
            .collect();
        let share = Value::Number(100.0 * over as f64 / n as f64);
        (n, quantiles, over, share, String::new())
    }
}

impl DidWaitsMethod for Quantiles {
    fn method_name(&self) -> String {
        format!(
            "Hyndman & Fan type 7 quantiles (R default) of whole days; {}+ days share; negative waits excluded",
            self.threshold_days
        )
    }

    fn tables(&self, input: &DidWaitsInput) -> Result<Vec<Table>, MethodError> {
        let over = format!("waiting_{}_plus_days", self.threshold_days);
        let pct = format!("pct_waiting_{}_plus_days", self.threshold_days);
        let mut columns = vec![
            "level",
            "code",
            "name",
            "region_code",
            "measure",
            "month",
            "interval",
            "waits",
        ];
        columns.extend(QUANTILES.iter().map(|q| q.1));
        columns.extend([
            over.as_str(),
            pct.as_str(),
            "missing_date",
            "bad_dates",
            "bad_date_rule",
            "method",
            "note",
        ]);
        let mut table = Table::new(
            "did_waits",
            "DID waits from record dates: request to test and test to report, by provider, region and England",
            &columns,
        )
        .with_counts(&["waits", &over, "missing_date", "bad_dates"]);
        let method = self.method_name();
        for ((level, code), ((name, region), cells)) in self.levels(input)? {
            for ((measure, month, interval), cell) in &cells {
                let (n, quantiles, over, share, note) = self.statistics(cell);
                let mut row = vec![
                    Value::Text(["england", "region", "provider"][level as usize].into()),
                    Value::Text(code.clone()),
                    Value::Text(name.clone()),
                    Value::Text(region.clone()),
                    Value::Text(measure.clone()),
                    Value::Text(month.clone()),
                    Value::Text(interval.key().into()),
                    Value::Number(n as f64),
                ];
                row.extend(quantiles);
                row.extend([
                    Value::Number(over as f64),
                    share,
                    Value::Number(cell.missing as f64),
                    Value::Number(cell.bad as f64),
                    Value::Text(rule(*interval).into()),
                    Value::Text(method.clone()),
                    Value::Text(note),
                ]);
                table.rows.push(row);
            }
        }
        Ok(vec![table])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{RegionalProvider, WaitHistogram};

    /// A histogram of the waits listed.
    fn hist(waits: &[i64]) -> Vec<(i64, u64)> {
        let mut h = BTreeMap::new();
        for w in waits {
            *h.entry(*w).or_insert(0u64) += 1;
        }
        h.into_iter().collect()
    }

    /// Worked by hand from the definition above (R's `quantile(x, p)` and numpy's
    /// `percentile(x, 100 p)` define the same): h = (n − 1)p on 0-based ranks.
    #[test]
    fn type7_matches_hand_worked_values() {
        let q = |x: &[i64], p: f64| type7(&hist(x), p).expect("waits");
        // 1..4: median h = 1.5 → 2 + 0.5·(3 − 2) = 2.5; p90 h = 2.7 → 3 + 0.7 = 3.7;
        // p95 h = 2.85 → 3.85.
        assert_eq!(q(&[1, 2, 3, 4], 0.5), 2.5);
        assert!((q(&[1, 2, 3, 4], 0.9) - 3.7).abs() < 1e-12);
        assert!((q(&[1, 2, 3, 4], 0.95) - 3.85).abs() < 1e-12);
        // Ties: 2, 2, 2, 5: median h = 1.5 → 2; p90 h = 2.7 → 2 + 0.7·3 = 4.1.
        assert_eq!(q(&[2, 2, 2, 5], 0.5), 2.0);
        assert!((q(&[5, 2, 2, 2], 0.9) - 4.1).abs() < 1e-12);
        // Tiny n: one wait is every quantile; two waits 0 and 10: p95 h = 0.95 → 9.5.
        assert_eq!(q(&[7], 0.5), 7.0);
        assert_eq!(q(&[7], 0.95), 7.0);
        assert_eq!(q(&[0, 10], 0.5), 5.0);
        assert!((q(&[0, 10], 0.95) - 9.5).abs() < 1e-12);
        // Odd n is the middle value: 3, 1, 4, 1, 5 sorted 1 1 3 4 5 → 3; p90 h = 3.6 → 4.6.
        assert_eq!(q(&[3, 1, 4, 1, 5], 0.5), 3.0);
        assert!((q(&[3, 1, 4, 1, 5], 0.9) - 4.6).abs() < 1e-12);
        // p = 0 and 1 are the minimum and maximum.
        assert_eq!(q(&[9, 3, 6], 0.0), 3.0);
        assert_eq!(q(&[9, 3, 6], 1.0), 9.0);
        assert_eq!(type7(&[], 0.5), None);
    }

    /// A histogram is the same as its list: 1,000 waits of 0–99 days, 10 each → p90 h = 899.1
    /// → ranks 899 and 900 hold 89 and 90 → 89.1.
    #[test]
    fn a_large_histogram_agrees_with_its_list() {
        let days: Vec<(i64, u64)> = (0..100).map(|d| (d, 10)).collect();
        assert!((type7(&days, 0.9).expect("waits") - 89.1).abs() < 1e-9);
        assert!((type7(&days, 0.5).expect("waits") - 49.5).abs() < 1e-9);
    }

    fn provider(code: &str, region: &str) -> RegionalProvider {
        RegionalProvider {
            code: code.into(),
            name: format!("Trust {code}"),
            region_code: region.into(),
            region_name: format!("Region {region}"),
        }
    }

    fn column(t: &Table, name: &str) -> usize {
        t.columns.iter().position(|c| c == name).expect("column")
    }

    /// Hand-worked: trust A's CT in 2020-04 waited 0..=49 days (one each, 50 waits) and had two
    /// requests after their test (−1, −3 days) and one record without a request date: 50 kept,
    /// 2 bad under `request_after_test`, 1 missing; 42+ days: 42..=49, 8 waits, 16%; median
    /// h = 24.5 → 24.5. Trust B (same region) has 3 waits of 60 days: too few on its own, but in
    /// the region's 53 waits.
    #[test]
    fn rules_small_cells_and_levels() {
        let mut a: Vec<(i64, u64)> = (0..50).map(|d| (d, 1)).collect();
        a.insert(0, (-1, 1));
        a.insert(0, (-3, 1));
        let input = DidWaitsInput {
            providers: vec![provider("A", "Y62"), provider("B", "Y62")],
            histograms: vec![
                WaitHistogram {
                    provider: 0,
                    measure: "ct".into(),
                    month: "2020-04".into(),
                    interval: WaitInterval::RequestToTest,
                    days: a,
                    missing: 1,
                },
                WaitHistogram {
                    provider: 1,
                    measure: "ct".into(),
                    month: "2020-04".into(),
                    interval: WaitInterval::RequestToTest,
                    days: vec![(60, 3)],
                    missing: 0,
                },
            ],
        };
        let method = Quantiles {
            threshold_days: 42,
            min_records: 10,
        };
        let tables = method.tables(&input).expect("tables");
        let t = &tables[0];
        let find = |code: &str, measure: &str| {
            t.rows
                .iter()
                .find(|r| r[1] == Value::Text(code.into()) && r[4] == Value::Text(measure.into()))
                .expect("row")
        };
        let a = find("A", "ct");
        assert_eq!(a[column(t, "waits")], Value::Number(50.0));
        assert_eq!(a[column(t, "median_days")], Value::Number(24.5));
        assert_eq!(a[column(t, "waiting_42_plus_days")], Value::Number(8.0));
        assert_eq!(
            a[column(t, "pct_waiting_42_plus_days")],
            Value::Number(16.0)
        );
        assert_eq!(a[column(t, "bad_dates")], Value::Number(2.0));
        assert_eq!(
            a[column(t, "bad_date_rule")],
            Value::Text("request_after_test".into())
        );
        assert_eq!(a[column(t, "missing_date")], Value::Number(1.0));
        let b = find("B", "ct");
        assert_eq!(b[column(t, "median_days")], Value::Missing);
        assert_eq!(b[column(t, "pct_waiting_42_plus_days")], Value::Missing);
        let region = find("Y62", "all");
        assert_eq!(region[column(t, "waits")], Value::Number(53.0));
        assert_eq!(
            region[column(t, "waiting_42_plus_days")],
            Value::Number(11.0)
        );
        let england = find("E92000001", "ct");
        assert_eq!(england[column(t, "waits")], Value::Number(53.0));
        assert!(
            t.rows
                .iter()
                .all(|r| r[column(t, "method")] == Value::Text(method.method_name()))
        );
        assert_eq!(
            t.counts,
            ["waits", "waiting_42_plus_days", "missing_date", "bad_dates"]
        );
    }

    #[test]
    fn parameters_are_checked() {
        let bad = |text: &str| {
            let params = Params::from_toml_str(text).expect("toml");
            configure(&params).err().expect("refused").to_string()
        };
        assert!(bad("threshold_days = 0").contains("threshold_days"));
        assert!(bad("min_records = 0").contains("min_records"));
        assert!(bad("quantile_type = 6").contains("quantile_type"));
    }
}
