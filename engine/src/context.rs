//! The recipe's `[[context]]`: a table of one output table's rows, each beside the matching row
//! of another output table (e.g. each ICB's standardised CT and MRI rates beside its community
//! diagnostic centre share of the same test). Which tables, rows, keys and columns is the
//! recipe's to say; the engine only joins cells, after disclosure control, so every joined count
//! is the published (protected) one and stays declared a count.

use std::collections::HashMap;

use strata_api::{Table, Value};

use crate::error::{Error, Result};
use crate::recipe::ContextSpec;

/// A cell as the text a `where` or `on` value is compared with.
fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Missing => String::new(),
    }
}

/// Rows of `t` whose columns hold one of their `filter` values.
fn kept<'a>(
    spec: &ContextSpec,
    t: &'a Table,
    filter: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<&'a Vec<Value>>> {
    let filter: Vec<(usize, &Vec<String>)> = filter
        .iter()
        .map(|(c, v)| Ok((index(spec, t, c)?, v)))
        .collect::<Result<_>>()?;
    Ok(t.rows
        .iter()
        .filter(|r| filter.iter().all(|(c, v)| v.contains(&text(&r[*c]))))
        .collect())
}

fn index(spec: &ContextSpec, t: &Table, column: &str) -> Result<usize> {
    t.columns.iter().position(|x| x == column).ok_or_else(|| {
        Error::Usage(format!(
            "context `{}`: table `{}` has no column `{column}`",
            spec.name, t.name
        ))
    })
}

/// One context table.
fn context(spec: &ContextSpec, tables: &[Table]) -> Result<Table> {
    let find = |name: &str| {
        tables.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::Usage(format!(
                "context `{}`: the run has no table `{name}`",
                spec.name
            ))
        })
    };
    let (left, right) = (find(&spec.table)?, find(&spec.join)?);
    let columns: Vec<usize> = spec
        .columns
        .iter()
        .map(|c| index(spec, left, c))
        .collect::<Result<_>>()?;
    let joined: Vec<usize> = spec
        .join_columns
        .iter()
        .map(|c| index(spec, right, c))
        .collect::<Result<_>>()?;
    let on: Vec<(usize, usize)> = spec
        .on
        .iter()
        .map(|[l, r]| Ok((index(spec, left, l)?, index(spec, right, r)?)))
        .collect::<Result<_>>()?;
    let key = |row: &[Value], side: fn(&(usize, usize)) -> usize| -> Vec<String> {
        on.iter()
            .map(|p| text(&row[side(p)]).to_ascii_uppercase())
            .collect()
    };
    // The join side by key; a key held by two rows would make the context ambiguous.
    let mut by_key: HashMap<Vec<String>, &Vec<Value>> = HashMap::new();
    for row in kept(spec, right, &spec.join_where)? {
        if by_key.insert(key(row, |p| p.1), row).is_some() {
            return Err(Error::Usage(format!(
                "context `{}`: table `{}` has more than one row for {} = {:?} (narrow it with \
                 `join_where`)",
                spec.name,
                right.name,
                spec.on
                    .iter()
                    .map(|p| p[1].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                key(row, |p| p.1)
            )));
        }
    }
    let mut names: Vec<String> = spec.columns.clone();
    names.extend(
        spec.join_columns
            .iter()
            .map(|c| format!("{}{c}", spec.prefix)),
    );
    names.push("context_note".into());
    // Counts stay counts: a column either table declared is declared here too, so the manifest
    // says which columns are (already protected) counts.
    let mut counts: Vec<String> = spec
        .columns
        .iter()
        .filter(|c| left.counts.contains(c))
        .cloned()
        .collect();
    counts.extend(
        spec.join_columns
            .iter()
            .filter(|c| right.counts.contains(c))
            .map(|c| format!("{}{c}", spec.prefix)),
    );
    let mut rows = Vec::new();
    for row in kept(spec, left, &spec.filter)? {
        let mut out: Vec<Value> = columns.iter().map(|&i| row[i].clone()).collect();
        match by_key.get(&key(row, |p| p.0)) {
            Some(other) => {
                out.extend(joined.iter().map(|&i| other[i].clone()));
                out.push(Value::Text(String::new()));
            }
            None => {
                out.extend(joined.iter().map(|_| Value::Missing));
                out.push(Value::Text(format!(
                    "no row of {} for this row",
                    right.name
                )));
            }
        }
        rows.push(out);
    }
    Ok(Table {
        name: spec.name.clone(),
        title: spec.title.clone(),
        columns: names,
        rows,
        counts,
    })
}

/// Every context table the recipe names, in its order, from the run's (protected) tables.
pub fn tables(specs: &[ContextSpec], tables: &[Table]) -> Result<Vec<Table>> {
    specs.iter().map(|spec| context(spec, tables)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, columns: &[&str], rows: &[&[&str]]) -> Table {
        let mut t = Table::new(name, "", columns);
        for r in rows {
            t.rows.push(
                r.iter()
                    .map(|c| match c.parse::<f64>() {
                        Ok(x) => Value::Number(x),
                        Err(_) => Value::Text(c.to_string()),
                    })
                    .collect(),
            );
        }
        t
    }

    fn spec() -> ContextSpec {
        ContextSpec {
            name: "ctx".into(),
            title: "t".into(),
            table: "rates".into(),
            filter: [("measure".to_string(), vec!["ct".to_string()])].into(),
            columns: vec!["area_code".into(), "measure".into(), "rate".into()],
            join: "shares".into(),
            join_where: [("level".to_string(), vec!["icb".to_string()])].into(),
            on: vec![
                ["area_code".into(), "code".into()],
                ["measure".into(), "test".into()],
            ],
            join_columns: vec!["share_pct".into()],
            prefix: "cdc_".into(),
        }
    }

    #[test]
    fn joins_on_every_key_ignoring_case_and_says_when_a_row_has_no_match() {
        let rates = table(
            "rates",
            &["area_code", "measure", "rate"],
            &[
                &["QU9", "ct", "100"],
                &["QOP", "ct", "90"],
                &["QU9", "mri", "50"],
            ],
        );
        let shares = table(
            "shares",
            &["level", "code", "test", "share_pct"],
            &[
                &["icb", "QU9", "CT", "8.5"],
                &["icb", "QU9", "MRI", "12"],
                &["region", "QOP", "CT", "1"],
            ],
        );
        let t = context(&spec(), &[rates, shares]).unwrap();
        assert_eq!(
            t.columns,
            [
                "area_code",
                "measure",
                "rate",
                "cdc_share_pct",
                "context_note"
            ]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][3], Value::Number(8.5));
        assert_eq!(t.rows[1][3], Value::Missing);
        assert_eq!(
            t.rows[1][4],
            Value::Text("no row of shares for this row".into())
        );
    }

    #[test]
    fn an_ambiguous_join_or_a_missing_column_is_an_error() {
        let rates = table("rates", &["area_code", "measure", "rate"], &[]);
        let shares = table(
            "shares",
            &["level", "code", "test", "share_pct"],
            &[&["icb", "QU9", "CT", "8.5"], &["icb", "qu9", "ct", "9"]],
        );
        let e = context(&spec(), &[rates.clone(), shares.clone()]).unwrap_err();
        assert!(e.to_string().contains("more than one row"), "{e}");
        let mut bad = spec();
        bad.join_columns = vec!["nope".into()];
        let e = context(&bad, &[rates.clone(), shares]).unwrap_err();
        assert!(e.to_string().contains("has no column `nope`"), "{e}");
        let e = context(&spec(), &[rates]).unwrap_err();
        assert!(e.to_string().contains("no table `shares`"), "{e}");
    }
}
