//! `waits.six-weeks` — DM01 waiting lists summed over the chosen diagnostic tests, by provider,
//! NHS region and England, for each month: the waiting list, those waiting `threshold_weeks` or
//! more (default 6, the operational standard) and 13 or more, the share waiting over the
//! threshold, and its change in percentage points against the same month a year earlier.
//!
//! With weekly bands `w_0 … w_13` (`w_k`: waiting k to k+1 completed weeks, `w_13` 13 weeks or
//! more), the waiting list is `Σ w_k`, those waiting `t` weeks or more `Σ_{k ≥ t} w_k`, and the
//! share `100 · Σ_{k ≥ t} w_k / Σ w_k`.
//!
//! Edge cases: a level × month with an empty waiting list has no share (a note says so); a month
//! without the same month a year earlier has no change. Providers of an unknown region count in
//! England only.
//!
//! Parameters: `tests` (DM01 test names to sum; default the five imaging tests `MRI`, `CT`,
//! `NON_OBSTETRIC_ULTRASOUND`, `BARIUM_ENEMA`, `DEXA_SCAN`), `threshold_weeks` (1–13, default 6).
//!
//! Reference: NHS England, *Diagnostics Waiting Times and Activity (DM01)*, monthly; the
//! operational standard that fewer than 1% of patients wait six weeks or more.

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, ParamError, Params, PluginDescriptor, StageKind, Table, Value,
    WAITING_WEEK_BANDS, WaitingListInput, WaitingTimesMethod,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "waits.six-weeks",
    stage: StageKind::WaitingTimes,
    version: env!("CARGO_PKG_VERSION"),
    description: "DM01 share waiting six weeks or more by provider, region and England, against a year earlier",
    configure,
};

const IMAGING_TESTS: [&str; 5] = [
    "MRI",
    "CT",
    "NON_OBSTETRIC_ULTRASOUND",
    "BARIUM_ENEMA",
    "DEXA_SCAN",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitsParams {
    #[serde(default = "default_tests")]
    tests: Vec<String>,
    #[serde(default = "default_threshold")]
    threshold_weeks: usize,
}

fn default_tests() -> Vec<String> {
    IMAGING_TESTS.iter().map(|t| t.to_string()).collect()
}

fn default_threshold() -> usize {
    6
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: WaitsParams = params.parse()?;
    if p.tests.is_empty() {
        return Err(ParamError::new(
            "tests",
            "tests must name at least one DM01 test",
        ));
    }
    if !(1..WAITING_WEEK_BANDS).contains(&p.threshold_weeks) {
        return Err(ParamError::new(
            "threshold_weeks",
            format!(
                "threshold_weeks = {}: DM01 counts whole weeks from 1 to 13",
                p.threshold_weeks
            ),
        ));
    }
    Ok(Configured::WaitingTimes(Box::new(SixWeeks {
        tests: p.tests,
        threshold: p.threshold_weeks,
    })))
}

/// The share waiting `threshold` weeks or more over `tests`.
pub struct SixWeeks {
    pub tests: Vec<String>,
    pub threshold: usize,
}

/// Waiting list, over the threshold, 13 weeks or more.
type Sums = [f64; 3];

/// (level order, code) → name, region code and the sums by month.
type ByLevel = BTreeMap<(u8, String), (String, String, BTreeMap<String, Sums>)>;

impl SixWeeks {
    /// Sums by (level order, code) × month, with each key's name and region.
    fn sums(&self, input: &WaitingListInput) -> Result<ByLevel, MethodError> {
        let mut out = ByLevel::new();
        for row in input.rows.iter().filter(|r| self.tests.contains(&r.test)) {
            let provider = input.providers.get(row.provider as usize).ok_or_else(|| {
                MethodError::new(format!(
                    "row names provider {} of {}",
                    row.provider,
                    input.providers.len()
                ))
            })?;
            if row.weeks.len() != WAITING_WEEK_BANDS {
                return Err(MethodError::new(format!(
                    "{} weekly bands for provider {} in {}: DM01 has {WAITING_WEEK_BANDS}",
                    row.weeks.len(),
                    provider.code,
                    row.month
                )));
            }
            let sums: Sums = [
                row.weeks.iter().sum(),
                row.weeks[self.threshold..].iter().sum(),
                row.weeks[WAITING_WEEK_BANDS - 1],
            ];
            let mut keys = vec![
                (
                    (0, "E92000001".to_string()),
                    ("England".to_string(), String::new()),
                ),
                (
                    (2, provider.code.clone()),
                    (provider.name.clone(), provider.region_code.clone()),
                ),
            ];
            if !provider.region_code.is_empty() {
                keys.push((
                    (1, provider.region_code.clone()),
                    (provider.region_name.clone(), provider.region_code.clone()),
                ));
            }
            for (key, (name, region)) in keys {
                let entry = out.entry(key).or_insert((name, region, BTreeMap::new()));
                let cell = entry.2.entry(row.month.clone()).or_insert([0.0; 3]);
                for (total, s) in cell.iter_mut().zip(sums) {
                    *total += s;
                }
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

impl WaitingTimesMethod for SixWeeks {
    fn method_name(&self) -> String {
        format!(
            "share waiting {}+ weeks ({})",
            self.threshold,
            self.tests.join(", ")
        )
    }

    fn tables(&self, input: &WaitingListInput) -> Result<Vec<Table>, MethodError> {
        let t = self.threshold;
        let over = format!("waiting_{t}_plus_weeks");
        let pct = format!("pct_waiting_{t}_plus_weeks");
        let pct_before = format!("pct_waiting_{t}_plus_weeks_year_earlier");
        let mut table = Table::new(
            "waits",
            &format!("DM01 waiting lists: share waiting {t} weeks or more, by provider, region and England"),
            &[
                "level",
                "code",
                "name",
                "region_code",
                "month",
                "waiting_list",
                &over,
                "waiting_13_plus_weeks",
                &pct,
                &pct_before,
                "change_pct_points",
                "method",
                "note",
            ],
        )
        .with_counts(&["waiting_list", &over, "waiting_13_plus_weeks"]);
        let share = |s: &Sums| (s[0] > 0.0).then(|| 100.0 * s[1] / s[0]);
        let number = |v: Option<f64>| v.map(Value::Number).unwrap_or(Value::Missing);
        let method = self.method_name();
        for ((level, code), (name, region, months)) in self.sums(input)? {
            for (month, s) in &months {
                let now = share(s);
                let before = year_earlier(month)
                    .and_then(|m| months.get(&m))
                    .and_then(share);
                let note = if now.is_none() {
                    "no one on the waiting list"
                } else {
                    ""
                };
                table.rows.push(vec![
                    Value::Text(["england", "region", "provider"][level as usize].into()),
                    Value::Text(code.clone()),
                    Value::Text(name.clone()),
                    Value::Text(region.clone()),
                    Value::Text(month.clone()),
                    Value::Number(s[0]),
                    Value::Number(s[1]),
                    Value::Number(s[2]),
                    number(now),
                    number(before),
                    number(now.zip(before).map(|(n, b)| n - b)),
                    Value::Text(method.clone()),
                    Value::Text(note.into()),
                ]);
            }
        }
        let mut tables = vec![table];
        if !input.other_nations.is_empty() {
            tables.push(self.nations(input)?);
        }
        Ok(tables)
    }
}

impl SixWeeks {
    /// Other nations' published shares beside England's over the same months: England's is
    /// the share of its month-end waiting lists (summed over the months each figure covers,
    /// over `tests`) waiting the threshold or more.
    fn nations(&self, input: &WaitingListInput) -> Result<Table, MethodError> {
        let sums = self.sums(input)?;
        let england = sums.get(&(0, "E92000001".to_string()));
        let mut table = Table::new(
            "waits_nations",
            "Share waiting six weeks or more: England (DM01) beside other nations' published figures",
            &[
                "nation",
                "code",
                "first_month",
                "last_month",
                "pct_waiting_6_plus_weeks",
                "source",
                "method",
                "note",
            ],
        );
        let method = self.method_name();
        for n in &input.other_nations {
            let (mut list, mut over) = (0.0, 0.0);
            let months = england.map(|e| &e.2);
            for (_, s) in months
                .into_iter()
                .flatten()
                .filter(|(m, _)| **m >= n.first && **m <= n.last)
            {
                list += s[0];
                over += s[1];
            }
            let note = if self.threshold != 6 {
                format!(
                    "England at {} weeks or more: not the same measure",
                    self.threshold
                )
            } else if list == 0.0 {
                "no DM01 months in this span".to_string()
            } else {
                String::new()
            };
            table.rows.push(vec![
                Value::Text("England".into()),
                Value::Text("E92000001".into()),
                Value::Text(n.first.clone()),
                Value::Text(n.last.clone()),
                if list > 0.0 {
                    Value::Number(100.0 * over / list)
                } else {
                    Value::Missing
                },
                Value::Text("DM01, month-end waiting lists over the months".into()),
                Value::Text(method.clone()),
                Value::Text(note),
            ]);
            table.rows.push(vec![
                Value::Text(n.nation.clone()),
                Value::Text(n.code.clone()),
                Value::Text(n.first.clone()),
                Value::Text(n.last.clone()),
                Value::Number(n.pct_waiting_6_plus_weeks),
                Value::Text(n.source.clone()),
                Value::Text("published".into()),
                Value::Text(String::new()),
            ]);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{RegionalProvider, WaitingListRow};

    fn provider(code: &str, region: &str) -> RegionalProvider {
        RegionalProvider {
            code: code.into(),
            name: format!("Trust {code}"),
            region_code: region.into(),
            region_name: format!("Region {region}"),
        }
    }

    fn row(
        provider: u32,
        month: &str,
        test: &str,
        under_six: f64,
        six_to_13: f64,
        over_13: f64,
    ) -> WaitingListRow {
        let mut weeks = vec![0.0; WAITING_WEEK_BANDS];
        weeks[0] = under_six;
        weeks[7] = six_to_13;
        weeks[13] = over_13;
        WaitingListRow {
            provider,
            month: month.into(),
            test: test.into(),
            weeks,
            total_activity: 0.0,
        }
    }

    /// Hand-worked: trust A, June 2020, MRI 20 under six weeks, 60 six to 13, 20 over 13 →
    /// 100 waiting, 80 six weeks or more (80%); June 2019 100 under six weeks → 0%, change +80
    /// points. Gastroscopy (not imaging) is left out.
    #[test]
    fn hand_worked_example() {
        let input = WaitingListInput {
            providers: vec![provider("A", "Y62"), provider("B", "")],
            rows: vec![
                row(0, "2020-06", "MRI", 20.0, 60.0, 20.0),
                row(0, "2019-06", "MRI", 100.0, 0.0, 0.0),
                row(0, "2020-06", "GASTROSCOPY", 0.0, 500.0, 0.0),
                row(1, "2020-06", "CT", 100.0, 0.0, 0.0),
            ],
            other_nations: Vec::new(),
        };
        let m = SixWeeks {
            tests: default_tests(),
            threshold: 6,
        };
        let t = &m.tables(&input).expect("tables")[0];
        let find = |code: &str, month: &str| {
            t.rows
                .iter()
                .find(|r| r[1] == Value::Text(code.into()) && r[4] == Value::Text(month.into()))
                .expect("row")
        };
        let a = find("A", "2020-06");
        assert_eq!(a[5], Value::Number(100.0));
        assert_eq!(a[6], Value::Number(80.0));
        assert_eq!(a[7], Value::Number(20.0));
        assert_eq!(a[8], Value::Number(80.0));
        assert_eq!(a[9], Value::Number(0.0));
        assert_eq!(a[10], Value::Number(80.0));
        // England: A's 100 and B's 100, 80 waiting six weeks or more: 40%; B has no region row.
        assert_eq!(find("E92000001", "2020-06")[8], Value::Number(40.0));
        assert_eq!(find("Y62", "2020-06")[8], Value::Number(80.0));
        assert_eq!(
            t.rows
                .iter()
                .filter(|r| r[0] == Value::Text("region".into()))
                .count(),
            2
        );
        assert_eq!(find("A", "2019-06")[9], Value::Missing, "no 2018 month");
    }

    #[test]
    fn parameters_are_checked() {
        for (text, key) in [
            ("threshold_weeks = 14", "threshold_weeks"),
            ("tests = []", "tests"),
        ] {
            let Err(e) = configure(&Params::from_toml_str(text).expect("toml")) else {
                panic!("{text} refused")
            };
            assert_eq!(e.key.as_deref(), Some(key));
        }
    }

    /// Hand-worked: in 2020-04 to 2020-09 England's imaging lists are A's MRI (100, 80 waiting
    /// six weeks or more) and B's CT (100, none): 80 / 200 = 40%, beside Scotland's 47% as
    /// printed; June 2019 is outside the span.
    #[test]
    fn other_nations_beside_england() {
        let input = WaitingListInput {
            providers: vec![provider("A", "Y62"), provider("B", "")],
            rows: vec![
                row(0, "2020-06", "MRI", 20.0, 60.0, 20.0),
                row(0, "2019-06", "MRI", 100.0, 0.0, 0.0),
                row(1, "2020-06", "CT", 100.0, 0.0, 0.0),
            ],
            other_nations: vec![strata_api::NationWaitFigure {
                nation: "Scotland".into(),
                code: "S92000003".into(),
                first: "2020-04".into(),
                last: "2020-09".into(),
                pct_waiting_6_plus_weeks: 47.0,
                source: "seed".into(),
            }],
        };
        let m = SixWeeks {
            tests: default_tests(),
            threshold: 6,
        };
        let tables = m.tables(&input).expect("tables");
        let t = &tables[1];
        assert_eq!(t.name, "waits_nations");
        assert_eq!(t.rows[0][4], Value::Number(40.0));
        assert_eq!(t.rows[1][0], Value::Text("Scotland".into()));
        assert_eq!(t.rows[1][4], Value::Number(47.0));
    }
}
