//! The HTML report: one self-contained page in the publication's order, with every chart and map
//! inlined as SVG and no external resource.

use std::collections::HashMap;
use std::fmt::Write;

use strata_api::Value;

use crate::ReportError;
use crate::charts::ranked_chart_svg;
use crate::explorer;
use crate::format::{self, escape};
use crate::funnel::funnel_svg;
use crate::input::{ReportInput, SUMMARY_TABLE, is_edoc};
use crate::map::map_svg;

pub(crate) const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;color:#212b32;max-width:1100px;margin:0 auto;padding:1em 1.5em;line-height:1.45}\
h1{color:#005eb8}h2{border-bottom:2px solid #005eb8;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.8em 0 1.2em;font-size:.9em}\
th,td{border:1px solid #d8dde0;padding:.3em .55em;text-align:right;vertical-align:top}\
th:first-child,td:first-child{text-align:left}thead th{background:#f0f4f5}\
caption{text-align:left;font-weight:bold;padding:.3em 0}\
figure{margin:1em 0;overflow-x:auto}figcaption{font-weight:bold;margin:.3em 0}\
svg{max-width:100%;height:auto}pre{background:#f0f4f5;padding:1em;overflow-x:auto;font-size:.8em}\
.meta{color:#4c6272}nav ol{columns:2}";

/// Publication wording for a factor and its categories.
fn factor_title(factor: &str) -> &str {
    match factor {
        "sex" => "Sex",
        "imd_quintile" => "Deprivation",
        "age_band" => "Age band",
        other => other,
    }
}

fn category_label(factor: &str, category: &str) -> String {
    let label = match (factor, category) {
        ("sex", "1") => "Male",
        ("sex", "2") => "Female",
        ("imd_quintile", "1") => "1 Most deprived",
        ("imd_quintile", "2") => "2 More deprived",
        ("imd_quintile", "3") => "3 Mid quintile",
        ("imd_quintile", "4") => "4 Less deprived",
        ("imd_quintile", "5") => "5 Least deprived",
        ("age_band", "0-44") => "0 - <45",
        ("age_band", "45-54") => "45 - <55",
        ("age_band", "55-64") => "55 - <65",
        ("age_band", "65-74") => "65 - <75",
        _ => category,
    };
    label.to_string()
}

/// The measure groups the publication tabulates apart: modalities, then EDOC tests.
fn measure_groups(input: &ReportInput) -> Vec<(&'static str, Vec<usize>)> {
    let (edoc, modality): (Vec<usize>, Vec<usize>) =
        (0..input.measures.len()).partition(|&m| is_edoc(&input.measures[m].key));
    [("modality", modality), ("Early Diagnosis of Cancer", edoc)]
        .into_iter()
        .filter(|(_, ms)| !ms.is_empty())
        .collect()
}

/// The sentences of one measure's section, each only when its figures are in the run.
pub(crate) fn measure_sentences(input: &ReportInput, measure: usize) -> Vec<String> {
    let plural = format!("{}s", input.area_kind);
    let label = input.measure_label(measure);
    let stat = |name: &str| input.summary_stat(measure, name);
    let value = |name: &str| stat(name).map(|(v, _)| v);
    let mut sentences = Vec::new();
    let unit = input.rate_per();

    let national = value("national_rate").or_else(|| input.national_rate(measure));
    if let Some(national) = national {
        sentences.push(format!(
            "The national rate was {} {label} tests per {unit} registered population.",
            format::rate(national)
        ));
    }
    let sd_range = match (value("within_1sd_lower"), value("within_1sd_upper")) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        _ => match (
            value("mean_standardised_rate"),
            value("sd_standardised_rate"),
        ) {
            (Some(mean), Some(sd)) => Some((mean - sd, mean + sd)),
            _ => None,
        },
    };
    match (value("share_within_1sd"), sd_range) {
        (Some(share), Some((lo, hi))) => sentences.push(format!(
            "{} of {plural} were within one standard deviation of the mean, that is between {} and {} tests per {unit} population.",
            format::percent(share),
            format::rate(lo),
            format::rate(hi)
        )),
        (None, Some((lo, hi))) => sentences.push(format!(
            "One standard deviation of the mean extended from {} to {} tests per {unit} population.",
            format::rate(lo),
            format::rate(hi)
        )),
        _ => {}
    }
    if let Some(share) = value("share_within_10pct_of_crude") {
        sentences.push(format!(
            "{} of {plural} had a standardised rate within 10% of their crude rate.",
            format::percent(share)
        ));
    }
    if let (Some(min), Some(max)) = (
        value("min_standardised_rate"),
        value("max_standardised_rate"),
    ) {
        sentences.push(format!(
            "Standardised rates ranged from {} to {} tests per {unit} population.",
            format::rate(min),
            format::rate(max)
        ));
    }
    for (statistic, times) in [
        ("areas_above_2x_national", "twice"),
        ("areas_above_4x_national", "four times"),
    ] {
        let Some((count, areas)) = stat(statistic) else {
            continue;
        };
        let count = count.round() as i64;
        let names = areas.map(|codes| area_names(input, codes));
        sentences.push(match (count, names) {
            (0, _) => format!(
                "No {} had more than {times} the national rate.",
                input.area_kind
            ),
            (1, Some(names)) => {
                format!(
                    "One {} had more than {times} the national rate: {names}.",
                    input.area_kind
                )
            }
            (1, None) => format!(
                "One {} had more than {times} the national rate.",
                input.area_kind
            ),
            (n, Some(names)) => {
                format!("{n} {plural} had more than {times} the national rate: {names}.")
            }
            (n, None) => format!("{n} {plural} had more than {times} the national rate."),
        });
    }
    sentences
}

/// At most this many areas are named in a sentence; the rest are counted.
const NAMED_AREAS: usize = 10;

/// "NHS Leeds (QWO), NHS Wakefield (QWP)" from a list of codes separated by `;`, `,` or spaces;
/// past [`NAMED_AREAS`], "… and 12 more (see the table below and summary.csv)".
fn area_names(input: &ReportInput, codes: &str) -> String {
    let by_code: HashMap<&str, &str> = input
        .areas
        .iter()
        .map(|a| (a.code.as_str(), a.name.as_str()))
        .collect();
    let codes: Vec<&str> = codes
        .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .collect();
    let mut names = codes
        .iter()
        .take(NAMED_AREAS)
        .map(|code| match by_code.get(code) {
            Some(name) => format!("{name} ({code})"),
            None => code.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    if codes.len() > NAMED_AREAS {
        let _ = write!(
            names,
            " and {} more (every one in the table below and in summary.csv)",
            codes.len() - NAMED_AREAS
        );
    }
    names
}

pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::Text(t) => escape(t),
        Value::Number(x) if x.fract() == 0.0 => format::rate(*x),
        Value::Number(x) if x.abs() < 1.0 => format::thousands(*x, 3),
        Value::Number(x) => format::thousands(*x, 1),
        Value::Missing => format::NOT_AVAILABLE.to_string(),
    }
}

/// The HTML report. Needs boundaries for the maps; without them the maps are left out.
pub fn report_html(input: &ReportInput) -> Result<String, ReportError> {
    let title = format!("{} {}", input.title, input.year_label);
    let mut h = page_start(
        &title,
        explorer::STYLE,
        &format!("{}s", input.area_kind),
        input.recipe_fingerprint,
    );

    // Contents.
    h.push_str(
        "<nav><h2>Contents</h2><ol>\n<li><a href=\"#national-rates\">National rates</a></li>\n",
    );
    for m in input.measures {
        let _ = writeln!(
            h,
            "<li><a href=\"#measure-{}\">{}</a></li>",
            escape(&m.key),
            escape(&m.label)
        );
    }
    h.push_str("<li><a href=\"#rates-ratios\">Rates ratios</a></li>\n<li><a href=\"#annex-a\">Annex A: data quality</a></li>\n<li><a href=\"#sources\">Sources and notes</a></li>\n<li><a href=\"#manifest\">Manifest</a></li>\n</ol></nav>\n");

    // National rates, modalities and EDOC tests apart, as Tables 1 and 2.
    h.push_str("<section id=\"national-rates\">\n<h2>National rates</h2>\n");
    for (n, (group, measures)) in measure_groups(input).iter().enumerate() {
        let _ = write!(
            h,
            "<table>\n<caption>Table {}. National imaging rates per {} by {group}, {}</caption>\n<thead><tr><th scope=\"col\"></th>",
            n + 1,
            input.rate_per(),
            escape(input.year_label)
        );
        for &m in measures {
            let _ = write!(
                h,
                "<th scope=\"col\">{}</th>",
                escape(input.measure_label(m))
            );
        }
        let _ = write!(
            h,
            "</tr></thead>\n<tbody><tr><th scope=\"row\">Rate per {} people</th>",
            input.rate_per()
        );
        for &m in measures {
            let rate = input
                .national_rate(m)
                .map_or_else(|| format::NOT_AVAILABLE.to_string(), format::rate);
            let _ = write!(h, "<td>{rate}</td>");
        }
        h.push_str("</tr></tbody>\n</table>\n");
    }
    h.push_str("</section>\n");

    // One section per measure.
    // The funnels' levels are the method's, the same for every measure.
    let funnel_levels = input.funnel.levels_text()?;
    for measure in 0..input.measures.len() {
        measure_section(&mut h, input, measure, &funnel_levels)?;
    }

    // Rates ratios: one table per factor and measure group, categories down, measures across.
    h.push_str("<section id=\"rates-ratios\">\n<h2>Rates ratios</h2>\n");
    let mut factors: Vec<&str> = Vec::new();
    for row in input.factor_ratios {
        if !factors.contains(&row.factor.as_str()) {
            factors.push(&row.factor);
        }
    }
    let mut table_number = 0;
    for factor in &factors {
        let rows: Vec<_> = input
            .factor_ratios
            .iter()
            .filter(|r| r.factor == *factor)
            .collect();
        let mut categories: Vec<&str> = Vec::new();
        for r in &rows {
            if !categories.contains(&r.category.as_str()) {
                categories.push(&r.category);
            }
        }
        let method = rows.first().map_or("", |r| r.ratio_method.as_str());
        let _ = writeln!(h, "<h3>{}</h3>", escape(factor_title(factor)));
        for (group, measures) in measure_groups(input) {
            let measures: Vec<usize> = measures
                .into_iter()
                .filter(|m| rows.iter().any(|r| r.measure == *m))
                .collect();
            if measures.is_empty() {
                continue;
            }
            table_number += 1;
            let _ = write!(
                h,
                "<table>\n<caption>Table {table_number}. {} ratios ({}) by {group}, {}</caption>\n<thead><tr><th scope=\"col\"></th>",
                escape(factor_title(factor)),
                escape(method),
                escape(input.year_label)
            );
            for &m in &measures {
                let _ = write!(
                    h,
                    "<th scope=\"col\">{}</th>",
                    escape(input.measure_label(m))
                );
            }
            h.push_str("</tr></thead>\n<tbody>\n");
            for category in &categories {
                let _ = write!(
                    h,
                    "<tr><th scope=\"row\">{}</th>",
                    escape(&category_label(factor, category))
                );
                for &m in &measures {
                    let row = rows
                        .iter()
                        .find(|r| r.category == *category && r.measure == m);
                    let text = match row {
                        Some(r) => match r.ratio {
                            Some(ratio) => format!("{}{}", format::ratio(ratio), r.stars),
                            None => format::NOT_AVAILABLE.to_string(),
                        },
                        None => String::new(),
                    };
                    let note = row
                        .filter(|r| !r.note.is_empty())
                        .map(|r| format!(" title=\"{}\"", escape(&r.note)))
                        .unwrap_or_default();
                    let _ = write!(h, "<td{note}>{}</td>", escape(&text));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</tbody>\n</table>\n");
        }
        let notes: Vec<String> = rows
            .iter()
            .filter(|r| !r.note.is_empty())
            .map(|r| {
                format!(
                    "{} {}, {}: {}",
                    factor_title(factor),
                    category_label(factor, &r.category),
                    input.measure_label(r.measure),
                    r.note
                )
            })
            .collect();
        if !notes.is_empty() {
            h.push_str("<ul class=\"notes\">\n");
            for note in notes {
                let _ = writeln!(h, "<li>{}</li>", escape(&note));
            }
            h.push_str("</ul>\n");
        }
    }
    h.push_str("<p>Stars mark a significant difference from the base category (ratio 1.00): * p&lt;0.05, ** p&lt;0.01, *** p&lt;0.001.</p>\n</section>\n");

    annex_a(&mut h, input);

    let methods = [format!("Confidence interval method: {}.", input.ci_method)];
    page_end(
        &mut h,
        input.sources,
        input.notes,
        &methods,
        input.manifest_json,
    );
    // The tables' data and script last, so the page's text shows before they run.
    let at = h.rfind("</body>").unwrap_or(h.len());
    h.insert_str(
        at,
        &format!(
            "{}<script>\n{}</script>\n",
            explorer::data_element(input),
            explorer::SCRIPT
        ),
    );
    Ok(h)
}

/// The start of every report page: the document head with the house style (and `style`, a
/// page's own rules), the title as the page's heading, and a line naming what it covers and the
/// recipe's fingerprint.
pub(crate) fn page_start(
    title: &str,
    style: &str,
    covers: &str,
    recipe_fingerprint: &str,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        style,
        escape(title)
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} · recipe fingerprint <code>{}</code></p>",
        escape(covers),
        escape(recipe_fingerprint)
    );
    h
}

/// A run's table as it is, one HTML row per row ("None." when it has none), each cell printed by
/// `print(column, value)`.
pub(crate) fn data_table_with(
    h: &mut String,
    id: &str,
    caption: &str,
    table: &strata_api::Table,
    print: &dyn Fn(&str, &Value) -> String,
) {
    let _ = write!(
        h,
        "<table id=\"{}\">\n<caption>{}</caption>\n<thead><tr>",
        escape(id),
        escape(caption)
    );
    for c in &table.columns {
        let _ = write!(h, "<th scope=\"col\">{}</th>", escape(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    if table.rows.is_empty() {
        let _ = writeln!(
            h,
            "<tr><td colspan=\"{}\">None.</td></tr>",
            table.columns.len().max(1)
        );
    }
    for row in &table.rows {
        h.push_str("<tr>");
        for (c, v) in table.columns.iter().zip(row) {
            let _ = write!(h, "<td>{}</td>", print(c, v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The end of every report page: sources and notes (then the lines naming the methods), and the
/// run's manifest.
pub(crate) fn page_end(
    h: &mut String,
    sources: &[String],
    notes: &[String],
    methods: &[String],
    manifest_json: &str,
) {
    h.push_str("<section id=\"sources\">\n<h2>Sources and notes</h2>\n<ul>\n");
    for line in sources.iter().chain(notes).chain(methods) {
        let _ = writeln!(h, "<li>{}</li>", escape(line));
    }
    h.push_str("</ul>\n</section>\n");
    let _ = writeln!(
        h,
        "<section id=\"manifest\">\n<h2>Manifest</h2>\n<pre>{}</pre>\n</section>\n</body>\n</html>",
        escape(manifest_json.trim_end())
    );
}

/// One measure's section: its sentences, map, ranked chart (all but a compact report), funnel
/// plot with both limit sets, and its table of every area.
fn measure_section(
    h: &mut String,
    input: &ReportInput,
    measure: usize,
    funnel_levels: &str,
) -> Result<(), ReportError> {
    let m = &input.measures[measure];
    let n = measure + 1;
    let _ = writeln!(
        h,
        "<section id=\"measure-{}\">\n<h2>{n}. {}</h2>",
        escape(&m.key),
        escape(&m.label)
    );
    let mut sentences = measure_sentences(input, measure);
    sentences.extend(overdispersion_sentence(input, measure));
    if !sentences.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", escape(&sentences.join(" ")));
    }
    let what = format!(
        "Standardised {} rates by {}, {}",
        m.label, input.area_kind, input.year_label
    );
    if input.boundaries.is_some() {
        let _ = write!(
            h,
            "<figure>\n<figcaption>Map {n}. {}</figcaption>\n{}</figure>\n",
            escape(&what),
            map_svg(input, measure)?
        );
    }
    // A bar per area is unreadable past a few hundred areas: the parent's chart below and
    // the table take its place.
    if !input.compact() {
        let _ = write!(
            h,
            "<figure>\n<figcaption>Graph {n}. {}</figcaption>\n{}</figure>\n",
            escape(&what),
            ranked_chart_svg(input, measure)
        );
    }
    let adjusted = if input.adjusted.iter().any(|a| a.measure == measure) {
        format!(
            " (Poisson, solid) and overdispersion-adjusted limits ({}, dashed)",
            input.adjusted_method
        )
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<figure>\n<figcaption>Funnel plot {n}. {}: standardised ratio against expected tests, with {} control limits{}</figcaption>\n{}</figure>\n",
        escape(&m.label),
        funnel_levels,
        escape(&adjusted),
        funnel_svg(input, measure)?
    );
    let parents = if input.has_parents() {
        format!(
            "; choose a parent to chart its {}s, ranked, with 95% confidence intervals",
            input.area_kind
        )
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<h3>{} by {}</h3>\n<p class=\"meta\">Every {}: search by code or name, sort by any column{}.</p>\n<div class=\"explorer\" data-measure=\"{measure}\"></div>\n</section>\n",
        escape(&m.label),
        escape(input.area_kind),
        escape(input.area_kind),
        escape(&parents)
    );
    Ok(())
}

/// φ and τ² of a measure and the areas its adjusted limits flag, from the `overdispersion`
/// table when the run has one.
fn overdispersion_sentence(input: &ReportInput, measure: usize) -> Option<String> {
    let table = input.tables.iter().find(|t| t.name == "overdispersion")?;
    let key = &input.measures.get(measure)?.key;
    let col = |name: &str| table.columns.iter().position(|c| c == name);
    let measure_col = col("measure")?;
    let row = table
        .rows
        .iter()
        .find(|r| matches!(r.get(measure_col), Some(Value::Text(t)) if t == key))?;
    let value = |name: &str| match col(name).and_then(|i| row.get(i)) {
        Some(Value::Number(v)) if v.is_finite() => Some(*v),
        _ => None,
    };
    let (phi, tau2) = (value("phi")?, value("tau2")?);
    let mut text = format!(
        "Overdispersion: dispersion ratio φ = {}, between-area variance τ² = {}.",
        format::thousands(phi, 3),
        format::thousands(tau2, 5)
    );
    if let (Some(flagged), Some(chance)) = (
        value("flagged_adjusted_99_8"),
        value("expected_by_chance_99_8"),
    ) {
        let _ = write!(
            text,
            " {} {}s are outside the adjusted 99.8% limits, against {} expected by chance alone.",
            format::rate(flagged),
            input.area_kind,
            format::thousands(chance, 1)
        );
    }
    Some(text)
}

/// At most this many rows of a table are shown in Annex A; the rest are counted.
const ANNEX_ROWS: usize = 100;

/// Annex A: every table but the summary, each capped at [`ANNEX_ROWS`] rows.
fn annex_a(h: &mut String, input: &ReportInput) {
    h.push_str(
        "<section id=\"annex-a\">\n<h2>Annex A: data quality and the impact of missing data</h2>\n",
    );
    for (i, table) in input
        .tables
        .iter()
        .filter(|t| t.name != SUMMARY_TABLE)
        .enumerate()
    {
        let caption = if table.title.is_empty() {
            &table.name
        } else {
            &table.title
        };
        let _ = write!(
            h,
            "<table id=\"table-{}\" class=\"sortable\">\n<caption>Table A.{}. {}, {}</caption>\n<thead><tr>",
            escape(&table.name),
            i + 1,
            escape(caption),
            escape(input.year_label)
        );
        for c in &table.columns {
            let _ = write!(h, "<th scope=\"col\">{}</th>", escape(c));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        if table.rows.is_empty() {
            let _ = writeln!(
                h,
                "<tr><td colspan=\"{}\">None.</td></tr>",
                table.columns.len().max(1)
            );
        }
        for row in table.rows.iter().take(ANNEX_ROWS) {
            h.push_str("<tr>");
            for v in row {
                let _ = write!(h, "<td>{}</td>", cell(v));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
        if table.rows.len() > ANNEX_ROWS {
            let _ = writeln!(
                h,
                "<p class=\"meta\">The first {ANNEX_ROWS} of {} rows; the other {} are in {}.csv and the workbook.</p>",
                format::rate(table.rows.len() as f64),
                format::rate((table.rows.len() - ANNEX_ROWS) as f64),
                escape(&table.name)
            );
        }
    }
    h.push_str("</section>\n");
}
