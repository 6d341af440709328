//! `strata diff`: run two recipes and list every output cell that differs — how a methodologist
//! sees which results a method swap changes.

use std::collections::BTreeMap;

use strata_api::{Table, Value};

/// Columns that identify a row of an output table.
fn key_columns(table: &str) -> &'static [&'static str] {
    match table {
        "national_rates" => &["measure"],
        "area_rates" => &["area_code", "measure"],
        "factor_ratios" => &["factor", "category", "measure"],
        "summary" => &["measure", "statistic"],
        "stratum_counts" => &["area_code", "sex", "age_band", "imd_quintile", "measure"],
        "stratum_population" => &["area_code", "sex", "age_band", "imd_quintile"],
        "exclusions" => &["provider_code", "area_code", "reason"],
        _ => &["provider_code", "area_code", "route", "measure", "reason"],
    }
}

/// Relative difference below which two numbers are the same (float noise across methods).
const RELATIVE_TOLERANCE: f64 = 1e-9;

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Text(s)) => s.clone(),
        Some(Value::Number(n)) => format!("{n}"),
        _ => String::new(),
    }
}

fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x == y
                || (x.is_nan() && y.is_nan())
                || (x - y).abs() <= RELATIVE_TOLERANCE * x.abs().max(y.abs())
        }
        (Some(Value::Missing) | None, Some(Value::Missing) | None) => true,
        (Some(Value::Text(x)), Some(Value::Text(y))) => x == y,
        _ => false,
    }
}

fn keyed(t: &Table) -> (Vec<usize>, BTreeMap<Vec<String>, &Vec<Value>>) {
    let keys: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| key_columns(&t.name).contains(&c.as_str()))
        .map(|(i, _)| i)
        .collect();
    let rows = t
        .rows
        .iter()
        .map(|r| (keys.iter().map(|&i| text(r.get(i))).collect(), r))
        .collect();
    (keys, rows)
}

/// Every differing cell of the tables both runs have, as a table; method-name columns (which
/// differ by design) are reported once per table in `method_changes`.
pub fn diff_tables(a: &[Table], b: &[Table]) -> (Table, Vec<String>) {
    let mut out = Table::new(
        "diff",
        "Output cells that differ between two recipes",
        &["table", "key", "column", "value_a", "value_b"],
    );
    let mut method_changes = Vec::new();
    for ta in a {
        let Some(tb) = b.iter().find(|t| t.name == ta.name) else {
            method_changes.push(format!("table `{}` only in the first run", ta.name));
            continue;
        };
        let (keys, rows_a) = keyed(ta);
        let (_, rows_b) = keyed(tb);
        let mut reported_methods = std::collections::BTreeSet::new();
        for (key, ra) in &rows_a {
            let key_text = key.join(" / ");
            let Some(rb) = rows_b.get(key) else {
                out.rows.push(vec![
                    Value::Text(ta.name.clone()),
                    Value::Text(key_text),
                    Value::Text("(row)".into()),
                    Value::Text("present".into()),
                    Value::Text("absent".into()),
                ]);
                continue;
            };
            for (j, column) in ta.columns.iter().enumerate() {
                if keys.contains(&j) {
                    continue;
                }
                let jb = tb.columns.iter().position(|c| c == column);
                let va = ra.get(j);
                let vb = jb.and_then(|jb| rb.get(jb));
                if same(va, vb) {
                    continue;
                }
                if column.ends_with("_method") {
                    if reported_methods.insert(column.clone()) {
                        method_changes.push(format!(
                            "{}.{}: `{}` → `{}`",
                            ta.name,
                            column,
                            text(va),
                            text(vb)
                        ));
                    }
                    continue;
                }
                out.rows.push(vec![
                    Value::Text(ta.name.clone()),
                    Value::Text(key_text.clone()),
                    Value::Text(column.clone()),
                    va.cloned().unwrap_or(Value::Missing),
                    vb.cloned().unwrap_or(Value::Missing),
                ]);
            }
        }
        for key in rows_b.keys().filter(|k| !rows_a.contains_key(*k)) {
            out.rows.push(vec![
                Value::Text(ta.name.clone()),
                Value::Text(key.join(" / ")),
                Value::Text("(row)".into()),
                Value::Text("absent".into()),
                Value::Text("present".into()),
            ]);
        }
    }
    (out, method_changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(values: &[(&str, f64, &str)]) -> Table {
        let mut t = Table::new("t", "t", &["measure", "ratio", "stars", "ratio_method"]);
        for (m, r, s) in values {
            t.rows.push(vec![
                Value::Text(m.to_string()),
                Value::Number(*r),
                Value::Text(s.to_string()),
                Value::Text("x".into()),
            ]);
        }
        t
    }

    #[test]
    fn lists_changed_cells_only() {
        let a = table(&[("xray", 0.77, "***"), ("ct", 1.0, "")]);
        let b = table(&[("xray", 0.79, "***"), ("ct", 1.0 + 1e-12, "")]);
        let (d, _) = diff_tables(&[a], &[b]);
        assert_eq!(d.rows.len(), 1);
        assert_eq!(d.rows[0][1], Value::Text("xray".into()));
        assert_eq!(d.rows[0][2], Value::Text("ratio".into()));
    }
}
