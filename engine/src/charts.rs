//! The recipe's `[[charts]]`: line charts of output tables (e.g. the monthly CDC share of CT and
//! MRI against the same month a year before), drawn by `strata-report` from the run's
//! disclosure-protected tables into `charts/<name>.svg`. Which table, rows and columns is the
//! recipe's to say; the engine only picks the cells out.

use std::collections::BTreeSet;

use strata_api::{Table, Value};
use strata_report::{LineChart, LineSeries, line_chart_svg};

use crate::error::{Error, Result};
use crate::recipe::{ChartSpec, Recipe};

/// A cell as the text a `where` value is compared with.
fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// One chart's lines from its table.
fn chart(spec: &ChartSpec, tables: &[Table]) -> Result<LineChart> {
    let problem = |what: String| Error::Usage(format!("chart `{}`: {what}", spec.name));
    let t = tables
        .iter()
        .find(|t| t.name == spec.table)
        .ok_or_else(|| problem(format!("the run has no table `{}`", spec.table)))?;
    let index = |c: &str| {
        t.columns
            .iter()
            .position(|x| x == c)
            .ok_or_else(|| problem(format!("table `{}` has no column `{c}`", spec.table)))
    };
    let filter: Vec<(usize, &String)> = spec
        .filter
        .iter()
        .map(|(c, v)| Ok((index(c)?, v)))
        .collect::<Result<_>>()?;
    let (x, series) = (index(&spec.x)?, index(&spec.series)?);
    let ys: Vec<usize> = spec
        .y
        .iter()
        .map(|y| index(&y.column))
        .collect::<Result<_>>()?;
    let rows: Vec<&Vec<Value>> = t
        .rows
        .iter()
        .filter(|r| filter.iter().all(|(c, v)| text(&r[*c]) == **v))
        .collect();
    let x_labels: Vec<String> = rows
        .iter()
        .map(|r| text(&r[x]))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut lines = Vec::new();
    for (group, value) in spec.series_values.iter().enumerate() {
        for (y, column) in ys.iter().zip(&spec.y) {
            let points = rows
                .iter()
                .filter(|r| text(&r[series]) == *value)
                .filter_map(|r| {
                    let at = x_labels.iter().position(|l| *l == text(&r[x]))?;
                    match r[*y] {
                        Value::Number(n) => Some((at, n)),
                        _ => None,
                    }
                })
                .collect();
            let label = match column.label.as_str() {
                "" => value.clone(),
                l => format!("{value}, {l}"),
            };
            lines.push(LineSeries {
                label,
                points,
                group,
                dashed: column.dashed,
                titles: Vec::new(),
            });
        }
    }
    Ok(LineChart {
        caption: spec.title.clone(),
        y_label: spec.y_label.clone(),
        x_labels,
        series: lines,
        palette: Default::default(),
    })
}

/// Every chart the recipe names, as `charts/<name>.svg`.
pub fn files(recipe: &Recipe, tables: &[Table]) -> Result<Vec<(String, Vec<u8>)>> {
    recipe
        .charts
        .iter()
        .map(|spec| {
            let svg = line_chart_svg(&chart(spec, tables)?);
            Ok((format!("charts/{}.svg", spec.name), svg.into_bytes()))
        })
        .collect()
}
