//! The report's searchable, sortable tables of every area and, where areas have parents, one
//! parent's areas on one chart: the run's figures as one JSON document in the page, read by a
//! small script of plain JavaScript (`explorer.js`, inlined; no network, no library).
//!
//! The JSON holds each area once (code, name, parent) and per measure one short row per area, at
//! the precision the report prints (rates and limits whole, expected counts to one decimal
//! place), so a report of thousands of areas stays a few megabytes. Every figure is the run's:
//! the flags are those the area's own limits (`area_rates`) and the overdispersion method
//! (`overdispersed_limits`) give it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::input::ReportInput;

/// The script that draws the tables and charts.
pub(crate) const SCRIPT: &str = include_str!("explorer.js");

/// Its styles.
pub(crate) const STYLE: &str = ".controls{display:flex;gap:.8em;flex-wrap:wrap;margin:.5em 0}\
.controls input,.controls select{font-size:1em;padding:.25em;max-width:100%}\
.explorer-table th{cursor:pointer}.explorer-table th[aria-sort=ascending]::after{content:\" \\25B2\"}\
.explorer-table th[aria-sort=descending]::after{content:\" \\25BC\"}.status{color:#4c6272}\
table.sortable th{cursor:pointer}";

/// A number as JSON at `decimals` places (`null` when not finite), never `-0`.
fn number(x: f64, decimals: i32) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    let scale = 10f64.powi(decimals);
    let rounded = (x * scale).round() / scale;
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    format!("{rounded:.prec$}", prec = decimals.max(0) as usize)
}

/// A string as JSON, with `<` escaped so that no text can close the script element.
fn string(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c")
}

/// The parents in code order, and each area's index into them (−1 without a parent).
fn parents(input: &ReportInput) -> (Vec<(String, String)>, Vec<i64>) {
    let mut by_code: BTreeMap<&str, &str> = BTreeMap::new();
    for parent in input.parents.iter().flatten() {
        by_code.entry(&parent.code).or_insert(&parent.name);
    }
    let index: BTreeMap<&str, usize> = by_code.keys().enumerate().map(|(i, c)| (*c, i)).collect();
    let of_area = (0..input.areas.len())
        .map(|a| match input.parents.get(a) {
            Some(Some(p)) => index.get(p.code.as_str()).map_or(-1, |&i| i as i64),
            _ => -1,
        })
        .collect();
    let list = by_code
        .into_iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    (list, of_area)
}

/// The `<script type="application/json">` element the explorer script reads.
pub(crate) fn data_element(input: &ReportInput) -> String {
    let (parents, parent_of) = parents(input);
    let mut json = format!(
        "{{\"kind\":{},\"ratePer\":{},\"parents\":[",
        string(input.area_kind),
        string(&input.rate_per())
    );
    for (i, (code, name)) in parents.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(json, "{comma}[{},{}]", string(code), string(name));
    }
    json.push_str("],\n\"areas\":[");
    for (i, area) in input.areas.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            json,
            "{comma}[{},{},{}]",
            string(&area.code),
            string(&area.name),
            parent_of[i]
        );
    }
    let levels: Vec<String> = input
        .adjusted
        .first()
        .map(|a| {
            a.levels
                .iter()
                .map(|l| string(&format!("{}%", (l.level * 1000.0).round() / 10.0)))
                .collect()
        })
        .unwrap_or_default();
    let _ = write!(
        json,
        "],\n\"adjustedLevels\":[{}],\n\"measures\":[",
        levels.join(",")
    );
    for measure in 0..input.measures.len() {
        if measure > 0 {
            json.push_str(",\n");
        }
        measure_json(input, measure, &mut json);
    }
    json.push_str("]}");
    format!("<script id=\"strata-data\" type=\"application/json\">{json}</script>\n")
}

/// One measure: its label, national rate and a row per area
/// `[area, observed, expected, standardised rate, lower 95%, upper 95%, Poisson flag, adjusted
/// flag]`; the flags as ±k for above/below at the k-th level, 0 within, null without limits.
fn measure_json(input: &ReportInput, measure: usize, json: &mut String) {
    let limits = input.limits_index();
    let adjusted = input.adjusted_index(measure);
    let national = input.national_rate(measure).unwrap_or(f64::NAN);
    let _ = write!(
        json,
        "{{\"label\":{},\"national\":{},\"rows\":[",
        string(input.measure_label(measure)),
        number(national, 0)
    );
    for (i, r) in input.area_rates(measure).into_iter().enumerate() {
        let ci = limits.get(&(r.area, r.measure));
        let poisson = match ci {
            Some(c) if national.is_finite() => c.flag(national).to_string(),
            _ => "null".into(),
        };
        let adjusted = adjusted
            .get(&r.area)
            .map_or_else(|| "null".to_string(), |a| a.signed_flag().to_string());
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            json,
            "{comma}[{},{},{},{},{},{},{poisson},{adjusted}]",
            r.area,
            number(r.observed, 0),
            number(r.expected, 1),
            number(r.standardised_rate, 0),
            number(ci.map_or(f64::NAN, |c| c.lower_95), 0),
            number(ci.map_or(f64::NAN, |c| c.upper_95), 0),
        );
    }
    json.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_are_safe_json() {
        assert_eq!(number(1234.56, 0), "1235");
        assert_eq!(number(12.345, 1), "12.3");
        assert_eq!(number(-0.01, 1), "0.0");
        assert_eq!(number(f64::NAN, 0), "null");
        assert_eq!(string("A & </script>"), "\"A & \\u003c/script>\"");
    }
}
