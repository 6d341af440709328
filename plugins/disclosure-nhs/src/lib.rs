//! `disclosure.nhs-sub-national` — the NHS rule for published sub-national counts, with secondary
//! suppression so a suppressed cell cannot be recovered from a published total.
//!
//! **Primary rule**, on each cell of the named count columns: `0` stays `0`; a count from 1 to
//! `suppress_max` (default 7) becomes the text `symbol` (default `*`); any other count is rounded to
//! the nearest `round_to` (default 5), halves away from zero (12 → 10, 13 → 15, 8 → 10).
//!
//! **Secondary rule.** A *group* is a set of member cells whose sum is published as a total. When a
//! group's total is published (not suppressed) and exactly one member is suppressed, that member
//! could be recovered as total − the others, so the group's smallest other non-zero member (by its
//! unrounded value; ties to the first row or column) is suppressed too; if there is none, the total
//! is. This repeats until no group is left with a single suppressed member, so that a cell
//! suppressed for one group is checked in every other group it belongs to.
//!
//! Totals convention (all optional; without any, only the primary rule applies):
//! - `group_by = "<column>"`: rows sharing this column's value form a group, per count column.
//!   Without it, all rows form one group. A table that lacks the column (one parameter set serves
//!   every output table) gets the primary rule only: its rows have no published total.
//! - `total_row_column = "<column>"` and `total_row_label` (default `"total"`): the row whose text in
//!   that column equals the label (ignoring ASCII case) is its group's total row; the other rows
//!   are its members. At most one total row per group.
//! - `total_published_elsewhere = true`: every row group counts as having a published total even
//!   without a total row (e.g. area counts per measure whose national total is in another table).
//! - `total_column = "<count column>"`: that count column holds each row's total of the other count
//!   columns (e.g. `male`, `female`, `total`): each row is then a group across the count columns.
//!
//! Totals are protected like any other cell (rounded independently, not re-summed). Cells that are
//! already the suppression symbol count as suppressed; other text and missing cells are left alone.
//! A negative or non-finite count is an error naming its row and column. Columns not named as
//! count columns are never changed.
//!
//! Reference: the NHS rule for published sub-national counts as the project applies it (suppress
//! 1–7, round others to the nearest 5); both thresholds are recipe parameters. The publications
//! print rounded counts but state no disclosure rule, so the tests are hand-worked.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use strata_api::{
    Configured, DisclosureMethod, MethodError, ParamError, Params, PluginDescriptor, StageKind,
    Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "disclosure.nhs-sub-national",
    stage: StageKind::Disclosure,
    version: env!("CARGO_PKG_VERSION"),
    description: "0 kept, 1-7 suppressed, others rounded to the nearest 5; secondary suppression against published totals",
    configure,
};

fn default_suppress_max() -> u64 {
    7
}
fn default_round_to() -> u64 {
    5
}
fn default_symbol() -> String {
    "*".into()
}
fn default_total_row_label() -> String {
    "total".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NhsParams {
    #[serde(default = "default_suppress_max")]
    suppress_max: u64,
    #[serde(default = "default_round_to")]
    round_to: u64,
    #[serde(default = "default_symbol")]
    symbol: String,
    group_by: Option<String>,
    total_row_column: Option<String>,
    #[serde(default = "default_total_row_label")]
    total_row_label: String,
    #[serde(default)]
    total_published_elsewhere: bool,
    total_column: Option<String>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let method = NhsSubNational::from_params(params.parse()?)?;
    Ok(Configured::Disclosure(Box::new(method)))
}

/// The configured rule.
#[derive(Debug, Clone)]
pub struct NhsSubNational {
    pub suppress_max: f64,
    pub round_to: f64,
    pub symbol: String,
    pub group_by: Option<String>,
    pub total_row_column: Option<String>,
    pub total_row_label: String,
    pub total_published_elsewhere: bool,
    pub total_column: Option<String>,
}

impl Default for NhsSubNational {
    fn default() -> Self {
        NhsSubNational {
            suppress_max: default_suppress_max() as f64,
            round_to: default_round_to() as f64,
            symbol: default_symbol(),
            group_by: None,
            total_row_column: None,
            total_row_label: default_total_row_label(),
            total_published_elsewhere: false,
            total_column: None,
        }
    }
}

/// (row, column index) of a cell.
type Cell = (usize, usize);

/// Member cells whose sum is published as `total` (`None`: published in another table).
#[derive(Debug)]
struct Group {
    members: Vec<Cell>,
    total: Option<Cell>,
}

/// What the primary rule knows of one count cell.
#[derive(Debug, Clone, Copy)]
enum CountCell {
    Count(f64),
    Suppressed,
    /// Text or missing: not a count, left alone.
    Other,
}

impl NhsSubNational {
    fn from_params(p: NhsParams) -> Result<Self, ParamError> {
        if p.round_to == 0 {
            return Err(ParamError::new("round_to", "round_to must be at least 1"));
        }
        if p.symbol.is_empty() {
            return Err(ParamError::new("symbol", "symbol must not be empty"));
        }
        Ok(NhsSubNational {
            suppress_max: p.suppress_max as f64,
            round_to: p.round_to as f64,
            symbol: p.symbol,
            group_by: p.group_by,
            total_row_column: p.total_row_column,
            total_row_label: p.total_row_label,
            total_published_elsewhere: p.total_published_elsewhere,
            total_column: p.total_column,
        })
    }

    /// The primary rule for one count: `None` when suppressed.
    pub fn primary(&self, count: f64) -> Option<f64> {
        if count == 0.0 {
            Some(0.0)
        } else if count <= self.suppress_max {
            None
        } else {
            // f64::round rounds halves away from zero.
            Some((count / self.round_to).round() * self.round_to)
        }
    }

    fn column(table: &Table, name: &str, what: &str) -> Result<usize, MethodError> {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            MethodError::new(format!(
                "{what} `{name}` is not a column of table `{}`",
                table.name
            ))
        })
    }

    fn key_text(value: &Value) -> String {
        match value {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Missing => String::new(),
        }
    }

    fn groups(&self, table: &Table, count_cols: &[usize]) -> Result<Vec<Group>, MethodError> {
        let mut groups = Vec::new();
        let total_col = match &self.total_column {
            Some(name) => {
                let idx = Self::column(table, name, "total_column")?;
                if !count_cols.contains(&idx) {
                    return Err(MethodError::new(format!(
                        "total_column `{name}` is not one of the count columns of table `{}`",
                        table.name
                    )));
                }
                Some(idx)
            }
            None => None,
        };
        if let Some(total_col) = total_col {
            for row in 0..table.rows.len() {
                groups.push(Group {
                    members: count_cols
                        .iter()
                        .filter(|&&c| c != total_col)
                        .map(|&c| (row, c))
                        .collect(),
                    total: Some((row, total_col)),
                });
            }
        }

        if self.total_row_column.is_none() && !self.total_published_elsewhere {
            return Ok(groups);
        }
        let group_col = match &self.group_by {
            // One parameter set serves every output table; a table without the grouping column
            // (e.g. a list of providers) publishes no total over its rows: primary rule only.
            Some(name) if !table.columns.iter().any(|c| c == name) => return Ok(groups),
            Some(name) => Some(Self::column(table, name, "group_by")?),
            None => None,
        };
        let marker_col = match &self.total_row_column {
            Some(name) => Some(Self::column(table, name, "total_row_column")?),
            None => None,
        };
        // Group key → (member rows, total row).
        let mut row_groups: BTreeMap<String, (Vec<usize>, Option<usize>)> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            let key = group_col
                .map(|c| Self::key_text(&values[c]))
                .unwrap_or_default();
            let is_total = marker_col.is_some_and(|c| {
                matches!(&values[c], Value::Text(t) if t.eq_ignore_ascii_case(&self.total_row_label))
            });
            let entry = row_groups.entry(key.clone()).or_default();
            if is_total {
                if entry.1.is_some() {
                    return Err(MethodError::new(format!(
                        "table `{}` has more than one total row in group `{key}`",
                        table.name
                    )));
                }
                entry.1 = Some(row);
            } else {
                entry.0.push(row);
            }
        }
        for (members, total_row) in row_groups.into_values() {
            if total_row.is_none() && !self.total_published_elsewhere {
                continue;
            }
            for &col in count_cols {
                groups.push(Group {
                    members: members.iter().map(|&r| (r, col)).collect(),
                    total: total_row.map(|r| (r, col)),
                });
            }
        }
        Ok(groups)
    }
}

impl DisclosureMethod for NhsSubNational {
    fn method_name(&self) -> String {
        format!(
            "nhs sub-national: 1-{} suppressed, others rounded to {}, secondary suppression",
            self.suppress_max, self.round_to
        )
    }

    fn protect(&self, table: &mut Table, count_columns: &[String]) -> Result<usize, MethodError> {
        let count_cols: Vec<usize> = count_columns
            .iter()
            .map(|name| Self::column(table, name, "count column"))
            .collect::<Result<_, _>>()?;
        for (row, values) in table.rows.iter().enumerate() {
            if values.len() != table.columns.len() {
                return Err(MethodError::new(format!(
                    "table `{}` row {} has {} values for {} columns",
                    table.name,
                    row + 1,
                    values.len(),
                    table.columns.len()
                )));
            }
        }

        let mut cells: BTreeMap<Cell, CountCell> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            for &col in &count_cols {
                let cell = match &values[col] {
                    Value::Number(n) if !n.is_finite() || *n < 0.0 => {
                        return Err(MethodError::new(format!(
                            "table `{}` row {} column `{}`: {n} is not a count",
                            table.name,
                            row + 1,
                            table.columns[col]
                        )));
                    }
                    Value::Number(n) => CountCell::Count(*n),
                    Value::Text(t) if *t == self.symbol => CountCell::Suppressed,
                    Value::Text(_) | Value::Missing => CountCell::Other,
                };
                cells.insert((row, col), cell);
            }
        }

        let mut suppressed: BTreeSet<Cell> = cells
            .iter()
            .filter(|(_, c)| match c {
                CountCell::Count(n) => self.primary(*n).is_none(),
                CountCell::Suppressed => true,
                CountCell::Other => false,
            })
            .map(|(&cell, _)| cell)
            .collect();

        let groups = self.groups(table, &count_cols)?;
        // Each pass suppresses at least one more cell, so this ends.
        loop {
            let mut added = false;
            for group in &groups {
                let total_published = group.total.is_none_or(|t| !suppressed.contains(&t));
                let hidden = group
                    .members
                    .iter()
                    .filter(|m| suppressed.contains(m))
                    .count();
                if !total_published || hidden != 1 {
                    continue;
                }
                let complement = group
                    .members
                    .iter()
                    .filter(|m| !suppressed.contains(m))
                    .filter_map(|m| match cells.get(m) {
                        Some(CountCell::Count(n)) if *n > 0.0 => Some((*m, *n)),
                        _ => None,
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                let to_hide = match (complement, group.total) {
                    (Some((cell, _)), _) => Some(cell),
                    (None, Some(total)) => Some(total),
                    // The total is in another table: nothing here can hide the cell.
                    (None, None) => None,
                };
                if let Some(cell) = to_hide {
                    added |= suppressed.insert(cell);
                }
            }
            if !added {
                break;
            }
        }

        let mut changed = 0;
        for (&(row, col), cell) in &cells {
            let new_value = if suppressed.contains(&(row, col)) {
                Value::Text(self.symbol.clone())
            } else {
                match cell {
                    CountCell::Count(n) => match self.primary(*n) {
                        Some(v) => Value::Number(v),
                        None => Value::Text(self.symbol.clone()),
                    },
                    CountCell::Suppressed | CountCell::Other => continue,
                }
            };
            let slot = &mut table.rows[row][col];
            if *slot != new_value {
                *slot = new_value;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn star() -> Value {
        Value::Text("*".into())
    }
    fn num(n: f64) -> Value {
        Value::Number(n)
    }
    fn text(t: &str) -> Value {
        Value::Text(t.into())
    }

    fn method(toml: &str) -> NhsSubNational {
        let params = Params::from_toml_str(toml).expect("valid toml");
        NhsSubNational::from_params(params.parse().expect("parses")).expect("valid params")
    }

    fn counts(name: &str, values: &[f64]) -> Table {
        let mut t = Table::new(name, "test", &["area", "tests"]);
        for (i, v) in values.iter().enumerate() {
            t.rows.push(vec![text(&format!("A{i}")), num(*v)]);
        }
        t
    }

    fn column(t: &Table, col: usize) -> Vec<Value> {
        t.rows.iter().map(|r| r[col].clone()).collect()
    }

    #[test]
    fn primary_rule_at_the_boundaries() {
        let m = NhsSubNational::default();
        assert_eq!(m.primary(0.0), Some(0.0));
        assert_eq!(m.primary(1.0), None);
        assert_eq!(m.primary(7.0), None);
        assert_eq!(m.primary(8.0), Some(10.0));
        assert_eq!(m.primary(12.0), Some(10.0));
        assert_eq!(m.primary(13.0), Some(15.0));
        assert_eq!(m.primary(415_002.0), Some(415_000.0));
    }

    #[test]
    fn primary_rule_on_a_table_without_totals() {
        let m = NhsSubNational::default();
        let mut t = counts("t", &[0.0, 1.0, 7.0, 8.0, 12.0, 13.0, 15.0]);
        let changed = m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 1),
            [
                num(0.0),
                star(),
                star(),
                num(10.0),
                num(10.0),
                num(15.0),
                num(15.0)
            ]
        );
        // 0 and 15 are unchanged.
        assert_eq!(changed, 5);
        // Without a totals convention one suppressed cell stays alone.
        let mut single = counts("t", &[3.0, 40.0, 50.0]);
        m.protect(&mut single, &["tests".into()]).expect("protects");
        assert_eq!(column(&single, 1), [star(), num(40.0), num(50.0)]);
    }

    #[test]
    fn non_count_columns_are_untouched() {
        let m = NhsSubNational::default();
        let mut t = Table::new("t", "test", &["area", "tests", "rate"]);
        t.rows.push(vec![text("A"), num(3.0), num(3.0)]);
        t.rows.push(vec![num(2.0), num(12.0), num(12.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(t.rows[0], [text("A"), star(), num(3.0)]);
        assert_eq!(t.rows[1], [num(2.0), num(10.0), num(12.0)]);
    }

    #[test]
    fn total_row_forces_a_second_suppression() {
        // measure, area, tests: area B (3) is suppressed; with the xray total 163 published it
        // would be 163 − 100 − 60 = 3, so the next smallest, C (60), is suppressed too.
        let m = method("group_by = \"measure\"\ntotal_row_column = \"area\"");
        let mut t = Table::new("t", "test", &["measure", "area", "tests"]);
        for (measure, area, tests) in [
            ("xray", "A", 100.0),
            ("xray", "B", 3.0),
            ("xray", "C", 60.0),
            ("xray", "Total", 163.0),
            ("ct", "A", 30.0),
            ("ct", "B", 20.0),
            ("ct", "C", 25.0),
            ("ct", "Total", 75.0),
        ] {
            t.rows.push(vec![text(measure), text(area), num(tests)]);
        }
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 2),
            [
                num(100.0),
                star(),
                star(),
                num(165.0),
                num(30.0),
                num(20.0),
                num(25.0),
                num(75.0)
            ]
        );
        // No single suppressed cell is left in a group with a published total.
        let xray_hidden = t.rows[..3].iter().filter(|r| r[2] == star()).count();
        assert_eq!(xray_hidden, 2);
    }

    #[test]
    fn two_suppressed_cells_need_nothing_more() {
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[2.0, 5.0, 40.0]);
        t.rows.push(vec![text("total"), num(47.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [star(), star(), num(40.0), num(45.0)]);
    }

    #[test]
    fn zeros_are_not_used_as_the_complement() {
        // The only other non-zero member is 50; the zero stays published.
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[0.0, 4.0, 50.0]);
        t.rows.push(vec![text("TOTAL"), num(54.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [num(0.0), star(), star(), num(55.0)]);
    }

    #[test]
    fn lone_member_suppresses_the_total() {
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[0.0, 6.0]);
        // An inconsistent total (rounded elsewhere) must not reveal the 6.
        t.rows.push(vec![text("total"), num(9.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [num(0.0), star(), star()]);
    }

    #[test]
    fn total_published_elsewhere() {
        let m = method("group_by = \"measure\"\ntotal_published_elsewhere = true");
        let mut t = Table::new("t", "test", &["measure", "area", "tests"]);
        for (measure, area, tests) in [
            ("mri", "A", 5.0),
            ("mri", "B", 90.0),
            ("mri", "C", 30.0),
            ("pet", "A", 9.0),
            ("pet", "B", 11.0),
        ] {
            t.rows.push(vec![text(measure), text(area), num(tests)]);
        }
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 2),
            [star(), num(90.0), star(), num(10.0), num(10.0)]
        );
    }

    #[test]
    fn total_column_and_total_row_together() {
        // Rows: areas; columns male, female, total; last row the total row.
        //        male female total
        //   A      3    40    43
        //   B     20    30    50
        //   total 23    70    93
        // Row A: male 3 suppressed → female 40 (row complement) suppressed.
        // Column male: A suppressed → B male 20 suppressed.
        // Column female: A suppressed → B female 30 suppressed. Row B now has two: fine.
        let m = method("total_row_column = \"area\"\ntotal_column = \"total\"");
        let mut t = Table::new("t", "test", &["area", "male", "female", "total"]);
        t.rows.push(vec![text("A"), num(3.0), num(40.0), num(43.0)]);
        t.rows
            .push(vec![text("B"), num(20.0), num(30.0), num(50.0)]);
        t.rows
            .push(vec![text("total"), num(23.0), num(70.0), num(93.0)]);
        let cols: Vec<String> = ["male", "female", "total"].map(String::from).to_vec();
        m.protect(&mut t, &cols).expect("protects");
        assert_eq!(t.rows[0], [text("A"), star(), star(), num(45.0)]);
        assert_eq!(t.rows[1], [text("B"), star(), star(), num(50.0)]);
        assert_eq!(t.rows[2], [text("total"), num(25.0), num(70.0), num(95.0)]);
        // Every row and column group now has zero or at least two suppressed members.
        for row in &t.rows {
            let hidden = row[1..3].iter().filter(|v| **v == star()).count();
            assert_ne!(hidden, 1);
        }
        for col in 1..4 {
            let hidden = t.rows[..2].iter().filter(|r| r[col] == star()).count();
            assert_ne!(hidden, 1);
        }
    }

    #[test]
    fn other_params() {
        let m = method("suppress_max = 4\nround_to = 10\nsymbol = \"c\"");
        let mut t = counts("t", &[4.0, 5.0, 15.0, 24.0]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [text("c"), num(10.0), num(20.0), num(20.0)]);
    }

    #[test]
    fn errors() {
        let m = NhsSubNational::default();
        let mut t = counts("t", &[-1.0]);
        let err = m.protect(&mut t, &["tests".into()]).unwrap_err();
        assert!(
            err.message.contains("row 1") && err.message.contains("tests"),
            "{err}"
        );
        let err = m
            .protect(&mut counts("t", &[1.0]), &["n".into()])
            .unwrap_err();
        assert!(err.message.contains("`n`"), "{err}");
        // A table without the grouping column gets the primary rule only.
        let m = method("group_by = \"measure\"\ntotal_published_elsewhere = true");
        let mut t = counts("t", &[1.0, 20.0]);
        assert_eq!(m.protect(&mut t, &["tests".into()]).unwrap(), 1);
        assert_eq!(t.rows[1][1], Value::Number(20.0));
        let bad = |toml: &str| {
            configure(&Params::from_toml_str(toml).expect("toml"))
                .err()
                .expect("refused")
                .key
        };
        assert_eq!(bad("round_to = 0").as_deref(), Some("round_to"));
        assert_eq!(bad("suppress_max = -1").as_deref(), Some("suppress_max"));
        assert_eq!(bad("groupby = \"x\"").as_deref(), Some("groupby"));
    }
}
