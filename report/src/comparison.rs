//! The period-comparison publication (seed 002): a report and a workbook made from a run's
//! `period_comparison` table (tests by trust, NHS region and England, two periods, month by month)
//! and, when the run has it, its DM01 `waits` table. Every number printed comes from those tables
//! (or, quoted as published, from the recipe's published figures); the page shell, the data
//! tables, the ranked charts and the workbook's layout are the standardised-rates publication's
//! own (`html`, `charts`, `workbook`).

use std::fmt::Write;

use strata_api::{Table, Value};

use crate::ReportError;
use crate::charts::{Bar, RankedLabels, ranked_svg};
use crate::format::{self, escape};
use crate::html::{cell, data_table_with, page_end, page_start};
use crate::line::{LineChart, LinePalette, LineSeries, line_chart_svg};
use crate::rows::Rows;
use crate::workbook::{
    SheetTable, WorkbookParts, fixed_sheet_names, note, sheet_name, table_sheet, write_workbook,
};

/// The name of the period-comparison table among a run's tables.
pub const COMPARISON_TABLE: &str = "period_comparison";
/// The name of the DM01 waiting-list table among a run's tables.
pub const WAITS_TABLE: &str = "waits";

/// The columns of `period_comparison` the page shows for England and the regions (the method is
/// named with each table).
const PERIOD_COLUMNS: [&str; 12] = [
    "code",
    "name",
    "measure",
    "month_a",
    "month_b",
    "period_a_tests",
    "period_b_tests",
    "change",
    "pct_change",
    "ratio",
    "ci_lower",
    "ci_upper",
];

/// The columns of the page's ranked table of trusts, the rank first (the method is named in its
/// caption).
const RANKED_COLUMNS: [&str; 13] = [
    "recovery_rank",
    "code",
    "name",
    "region_code",
    "measure",
    "period_a_tests",
    "period_b_tests",
    "change",
    "pct_change",
    "ratio",
    "ci_lower",
    "ci_upper",
    "note",
];

/// The columns of `waits` the page shows (the method is named in the sources).
const WAITS_COLUMNS: [&str; 10] = [
    "code",
    "name",
    "region_code",
    "month",
    "waiting_list",
    "waiting_6_plus_weeks",
    "waiting_13_plus_weeks",
    "pct_waiting_6_plus_weeks",
    "pct_waiting_6_plus_weeks_year_earlier",
    "change_pct_points",
];

/// The measure of all modalities together in `period_comparison`.
const ALL: &str = "all";

/// One published figure beside the run's value of the cell it names (a recipe's
/// `[[figures]]`, found as `strata verify` finds it).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedFigure {
    /// The published sentence or figure, as printed.
    pub figure: String,
    /// The run's table the figure is of, and the `level` its row is at (`england`, `region`,
    /// `provider`; empty when the figure names none).
    pub table: String,
    pub level: String,
    /// The `measure` its row is of (empty when the figure names none).
    pub measure: String,
    pub published: f64,
    /// The run's value; none when the figure names no single cell of the run.
    pub reproduced: Option<f64>,
    /// Within the figure's tolerance (or on the side an "at least" / "at most" says).
    pub agrees: bool,
    /// `round_trip`, `derived` or `independent` (see `strata verify`).
    pub kind: String,
}

/// Everything the period-comparison publication is made from.
#[derive(Debug, Clone, Copy)]
pub struct ComparisonInput<'a> {
    /// E.g. "Diagnostic scan backlog: April-September 2020 against 2019".
    pub title: &'a str,
    /// E.g. "2020/21".
    pub year_label: &'a str,
    pub recipe_fingerprint: &'a str,
    /// The run's `period_comparison` table, as written.
    pub comparison: &'a Table,
    /// The run's `waits` table, if it has one.
    pub waits: Option<&'a Table>,
    /// Every other table of the run; each gets a workbook sheet and a report table.
    pub tables: &'a [Table],
    pub figures: &'a [PublishedFigure],
    pub manifest_json: &'a str,
    pub sources: &'a [String],
    pub notes: &'a [String],
}

impl<'a> Rows<'a> {
    /// A table of `columns` only (those the table has, in that order) holding `rows`: the page
    /// shows what a reader compares, the workbook and the CSV every column.
    fn columns(&self, columns: &[&str], rows: &[&Vec<Value>]) -> Table {
        let index: Vec<usize> = columns.iter().filter_map(|c| self.col(c)).collect();
        Table {
            name: self.table.name.clone(),
            title: String::new(),
            columns: index
                .iter()
                .map(|&i| self.table.columns[i].clone())
                .collect(),
            rows: rows
                .iter()
                .map(|r| index.iter().map(|&i| r[i].clone()).collect())
                .collect(),
            counts: Vec::new(),
        }
    }

    /// A table of the same columns holding `rows`, titled `title`.
    fn subset(&self, title: &str, rows: &[&Vec<Value>]) -> Table {
        Table {
            name: self.table.name.clone(),
            title: title.to_string(),
            columns: self.table.columns.clone(),
            rows: rows.iter().map(|r| (*r).clone()).collect(),
            counts: self.table.counts.clone(),
        }
    }
}

impl<'a> ComparisonInput<'a> {
    fn rows(&self) -> Rows<'a> {
        Rows {
            table: self.comparison,
        }
    }

    /// The measures of the comparison in the table's order, `all` first as the table has it.
    pub fn measures(&self) -> Vec<String> {
        let rows = self.rows();
        let mut out: Vec<String> = Vec::new();
        for row in &self.comparison.rows {
            let m = rows.text(row, "measure");
            if !out.iter().any(|o| o == m) {
                out.push(m.to_string());
            }
        }
        out
    }

    /// England's rows of one measure, month by month (`month_b` not `all`), in table order.
    fn england_months(&self, measure: &str) -> Vec<&'a Vec<Value>> {
        let rows = self.rows();
        rows.filter(|r| {
            rows.text(r, "level") == "england"
                && rows.text(r, "measure") == measure
                && rows.text(r, "month_b") != ALL
        })
    }

    /// The whole-period row of one level and measure (England's: there is one).
    fn whole_period(&self, level: &str, measure: &str) -> Vec<&'a Vec<Value>> {
        let rows = self.rows();
        rows.filter(|r| {
            rows.text(r, "level") == level
                && rows.text(r, "measure") == measure
                && rows.text(r, "month_b") == ALL
        })
    }

    /// Trusts over the whole period, ranked by recovery (1 = recovered most) within each measure,
    /// measures in table order.
    pub fn trusts_ranked(&self) -> Vec<&'a Vec<Value>> {
        let rows = self.rows();
        let mut out = Vec::new();
        for measure in self.measures() {
            let mut trusts = self.whole_period("provider", &measure);
            trusts.sort_by(|a, b| {
                rows.number(a, "recovery_rank")
                    .total_cmp(&rows.number(b, "recovery_rank"))
                    .then_with(|| rows.text(a, "code").cmp(rows.text(b, "code")))
            });
            out.extend(trusts);
        }
        out
    }

    fn period_labels(&self) -> (&'a str, &'a str) {
        let rows = self.rows();
        self.comparison.rows.first().map_or(("", ""), |r| {
            (rows.text(r, "period_a"), rows.text(r, "period_b"))
        })
    }

    /// The waits table's latest month with a year-earlier figure, the month its sentences are of.
    pub fn latest_waits_month(&self) -> Option<String> {
        let waits = Rows { table: self.waits? };
        waits
            .table
            .rows
            .iter()
            .filter(|r| {
                waits
                    .number(r, "pct_waiting_6_plus_weeks_year_earlier")
                    .is_finite()
            })
            .map(|r| waits.text(r, "month"))
            .max()
            .map(str::to_string)
    }
}

/// `2020-04` → `April 2020`; anything else as it is.
pub(crate) fn month_name(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let parsed = month
        .split_once('-')
        .and_then(|(y, m)| Some((y, m.parse::<usize>().ok()?)));
    match parsed {
        Some((y, m)) if (1..=12).contains(&m) && y.len() == 4 => format!("{} {y}", NAMES[m - 1]),
        _ => month.to_string(),
    }
}

/// The modality's label (SPEC §3 keys), `all` as all modalities.
fn measure_label(key: &str) -> String {
    match key {
        ALL => "All modalities".to_string(),
        other => crate::publication_label(other).unwrap_or(other).to_string(),
    }
}

fn count(x: f64) -> String {
    format::thousands(x, 0)
}

/// A percentage already in percent (`-27.0%`), one decimal place.
fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{}%", format::thousands(x, 1))
    } else {
        format::NOT_AVAILABLE.to_string()
    }
}

fn ratio3(x: f64) -> String {
    format::thousands(x, 3)
}

/// A ratio and its limits in a sentence: four places, so tight limits still differ.
fn ratio4(x: f64) -> String {
    format::thousands(x, 4)
}

/// "six" for 6, as a sentence says a small count; figures above twelve.
fn number_word(n: usize) -> String {
    const WORDS: [&str; 13] = [
        "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| w.to_string())
}

/// Monthly line chart of one measure in England: the earlier period's tests against the later's,
/// month by month (the later period's months on the axis).
pub fn monthly_chart_svg(input: &ComparisonInput, measure: &str) -> String {
    let rows = input.rows();
    let months = input.england_months(measure);
    let (a, b) = input.period_labels();
    let caption = format!(
        "{}: tests in England by month, {a} and {b}",
        measure_label(measure)
    )
    .replace('&', "and");
    let x_labels: Vec<String> = months
        .iter()
        .map(|r| {
            let name = month_name(rows.text(r, "month_b"));
            name.split(' ')
                .next()
                .unwrap_or_default()
                .chars()
                .take(3)
                .collect()
        })
        .collect();
    let title = |month: &str, tests: &str, row: &[Value]| {
        format!(
            "{} {}: {} tests",
            rows.text(row, month),
            measure_label(measure),
            count(rows.number(row, tests))
        )
    };
    // The earlier period grey, the later blue; each point titled with its own month and count.
    let line = |group: usize, label: &str, month: &str, tests: &str| {
        let kept: Vec<(usize, &&Vec<Value>)> = months
            .iter()
            .enumerate()
            .filter(|(_, r)| rows.number(r, tests).is_finite())
            .collect();
        LineSeries {
            label: label.to_string(),
            points: kept
                .iter()
                .map(|(i, r)| (*i, rows.number(r, tests)))
                .collect(),
            group,
            dashed: false,
            titles: kept.iter().map(|(_, r)| title(month, tests, r)).collect(),
        }
    };
    line_chart_svg(&LineChart {
        caption,
        y_label: "Tests".into(),
        x_labels,
        series: vec![
            line(0, a, "month_a", "period_a_tests"),
            line(1, b, "month_b", "period_b_tests"),
        ],
        palette: LinePalette::Periods,
    })
}

/// Trusts ranked by the ratio of the later period's tests to the earlier's over the whole
/// period, with each ratio's confidence limits and a line at England's ratio.
pub fn trusts_ranked_svg(input: &ComparisonInput, measure: &str) -> String {
    let rows = input.rows();
    let (a, b) = input.period_labels();
    let caption = format!(
        "{}: ratio of {b} to {a} tests by trust, lowest to highest",
        measure_label(measure)
    )
    .replace('&', "and");
    let y_desc = format!("Tests in {b} / tests in {a}");
    let bars = input
        .whole_period("provider", measure)
        .into_iter()
        .filter(|r| rows.number(r, "ratio").is_finite())
        .map(|r| Bar {
            code: rows.text(r, "code").to_string(),
            name: rows.text(r, "name").to_string(),
            rate: rows.number(r, "ratio"),
            lower: rows.number(r, "ci_lower"),
            upper: rows.number(r, "ci_upper"),
        })
        .collect();
    let england = input
        .whole_period("england", measure)
        .first()
        .map(|r| rows.number(r, "ratio"))
        .filter(|r| r.is_finite());
    let labels = RankedLabels {
        caption: &caption,
        y_desc: &y_desc,
        bars: "Trust: ratio of tests",
        whiskers: true,
        reference: |r| format!("England ({})", ratio3(r)),
        value: ratio3,
        limit: ratio3,
        axis: format::ratio,
    };
    ranked_svg(&labels, bars, england)
}

/// NHS regions' share of their waiting list waiting six weeks or more in one month, lowest to
/// highest, with a line at England's share.
pub fn regional_waits_svg(input: &ComparisonInput, month: &str) -> String {
    let caption = format!(
        "Share waiting six weeks or more by NHS region, {}",
        month_name(month)
    );
    let Some(table) = input.waits else {
        return ranked_svg(&waits_labels(&caption), Vec::new(), None);
    };
    let waits = Rows { table };
    let in_month = |level: &str| {
        waits.filter(|r| waits.text(r, "level") == level && waits.text(r, "month") == month)
    };
    let bars = in_month("region")
        .into_iter()
        .map(|r| Bar {
            code: waits.text(r, "code").to_string(),
            name: waits.text(r, "name").to_string(),
            rate: waits.number(r, "pct_waiting_6_plus_weeks"),
            lower: f64::NAN,
            upper: f64::NAN,
        })
        .filter(|b| b.rate.is_finite())
        .collect();
    let england = in_month("england")
        .first()
        .map(|r| waits.number(r, "pct_waiting_6_plus_weeks"))
        .filter(|r| r.is_finite());
    ranked_svg(&waits_labels(&caption), bars, england)
}

fn waits_labels(caption: &str) -> RankedLabels<'_> {
    RankedLabels {
        caption,
        y_desc: "% of the waiting list waiting 6+ weeks",
        bars: "Region: % waiting 6+ weeks",
        whiskers: false,
        reference: |share| format!("England ({})", pct(share)),
        value: pct,
        limit: pct,
        axis: |y| format::thousands(y, 0),
    }
}

/// The search box that filters the rows of the table `id` as one types (the page has no other
/// script and fetches nothing).
fn search_box(h: &mut String, id: &str, what: &str) {
    let _ = writeln!(
        h,
        "<p><label>Search {}: <input type=\"search\" data-filter=\"{}\"></label></p>",
        escape(what),
        escape(id)
    );
}

const SEARCH_SCRIPT: &str = "<script>\ndocument.querySelectorAll('input[data-filter]').forEach(function(box){box.addEventListener('input',function(){var q=box.value.toLowerCase();document.querySelectorAll('#'+box.dataset.filter+' tbody tr').forEach(function(row){row.hidden=q!==''&&row.textContent.toLowerCase().indexOf(q)<0;});});});\n</script>\n";

/// The published figures of one table, at one of `levels` and (if given) of one measure, beside
/// the run's values.
fn figures_beside(
    h: &mut String,
    input: &ComparisonInput,
    table: &str,
    levels: &[&str],
    measure: Option<&str>,
) {
    let figures: Vec<&PublishedFigure> = input
        .figures
        .iter()
        .filter(|f| f.table == table && levels.contains(&f.level.as_str()))
        .filter(|f| measure.is_none_or(|m| f.measure == m || (m == ALL && f.measure.is_empty())))
        .collect();
    if figures.is_empty() {
        return;
    }
    h.push_str("<table class=\"published\">\n<caption>Published figures beside this run's</caption>\n<thead><tr><th scope=\"col\">Published sentence or figure</th><th scope=\"col\">Published</th><th scope=\"col\">This run</th><th scope=\"col\">Agrees</th><th scope=\"col\">Kind</th></tr></thead>\n<tbody>\n");
    for f in figures {
        let reproduced = f
            .reproduced
            .map_or_else(|| format::NOT_AVAILABLE.to_string(), figure_value);
        let _ = writeln!(
            h,
            "<tr><td>“{}”</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.figure),
            figure_value(f.published),
            reproduced,
            if f.agrees { "yes" } else { "no" },
            escape(&f.kind)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// A published or reproduced figure: whole numbers with separators, others to one place.
fn figure_value(x: f64) -> String {
    if x.fract() == 0.0 {
        count(x)
    } else {
        format::thousands(x, 1)
    }
}

/// "7,631,155 fewer" or "12 more".
fn fewer_or_more(change: f64) -> String {
    if change < 0.0 {
        format!("{} fewer", count(-change))
    } else {
        format!("{} more", count(change))
    }
}

/// England's headline sentence, in the seed's words, from the whole-period row of all
/// modalities.
fn england_sentence(input: &ComparisonInput) -> Option<String> {
    let rows = input.rows();
    let row = *input.whole_period("england", ALL).first()?;
    let months = input.england_months(ALL);
    let (first, last) = (months.first()?, months.last()?);
    let (a, _) = input.period_labels();
    let span = format!(
        "the {} months between {} and {}",
        number_word(months.len()),
        month_name(rows.text(first, "month_b"))
            .split(' ')
            .next()
            .unwrap_or_default(),
        month_name(rows.text(last, "month_b"))
    );
    Some(format!(
        "{} diagnostic imaging tests were carried out in England in {span}, compared to the same \
         period in {a}: {} against {} ({}; ratio {}, 95% confidence interval {} to {}, {}).",
        fewer_or_more(rows.number(row, "change")),
        count(rows.number(row, "period_b_tests")),
        count(rows.number(row, "period_a_tests")),
        pct(rows.number(row, "pct_change")),
        ratio4(rows.number(row, "ratio")),
        ratio4(rows.number(row, "ci_lower")),
        ratio4(rows.number(row, "ci_upper")),
        rows.text(row, "method")
    ))
}

/// The trusts' sentence: how many fell, and which recovered most and least (all modalities).
fn trusts_sentence(input: &ComparisonInput) -> Option<String> {
    let rows = input.rows();
    let trusts = input.whole_period("provider", ALL);
    let fell = trusts
        .iter()
        .filter(|r| rows.number(r, "change") < 0.0)
        .count();
    // Ranked: the trusts with a ratio (none without tests in the earlier period).
    let mut ranked = trusts.clone();
    ranked.retain(|r| rows.number(r, "recovery_rank").is_finite());
    ranked.sort_by(|a, b| {
        rows.number(a, "recovery_rank")
            .total_cmp(&rows.number(b, "recovery_rank"))
    });
    let (best, worst) = (ranked.first()?, ranked.last()?);
    let name = |r: &[Value]| format!("{} ({})", rows.text(r, "name"), rows.text(r, "code"));
    Some(format!(
        "{fell} of {} trusts carried out fewer tests across all modalities. The trust that \
         recovered most was {}, at {}; the one that recovered least was {}, at {}.",
        trusts.len(),
        name(best),
        pct(rows.number(best, "pct_change")),
        name(worst),
        pct(rows.number(worst, "pct_change"))
    ))
}

/// The regions' sentence in the seed's words: the highest and lowest share waiting six weeks or
/// more in the month, and England's.
fn regions_sentence(waits: Rows, month: &str) -> Option<String> {
    let mut regions = waits.filter(|r| {
        waits.text(r, "level") == "region"
            && waits.text(r, "month") == month
            && waits.number(r, "pct_waiting_6_plus_weeks").is_finite()
    });
    regions.sort_by(|a, b| {
        waits
            .number(b, "pct_waiting_6_plus_weeks")
            .total_cmp(&waits.number(a, "pct_waiting_6_plus_weeks"))
            .then_with(|| waits.text(a, "code").cmp(waits.text(b, "code")))
    });
    let (top, bottom) = (regions.first()?, regions.last()?);
    let share = |r: &[Value]| pct(waits.number(r, "pct_waiting_6_plus_weeks"));
    let mut sentence = format!(
        "In {}, in the {}, {} of patients were waiting more than six weeks, compared to {} in the {}.",
        month_name(month),
        waits.text(top, "name"),
        share(top),
        share(bottom),
        waits.text(bottom, "name")
    );
    let england =
        waits.filter(|r| waits.text(r, "level") == "england" && waits.text(r, "month") == month);
    if let Some(e) = england.first() {
        let _ = write!(
            sentence,
            " Across England {} patients were waiting six weeks or more ({} of {}), against {} a year earlier.",
            count(waits.number(e, "waiting_6_plus_weeks")),
            share(e),
            count(waits.number(e, "waiting_list")),
            pct(waits.number(e, "pct_waiting_6_plus_weeks_year_earlier"))
        );
    }
    Some(sentence)
}

/// The trusts' waiting sentence in the seed's words: the trust with the highest share waiting six
/// weeks or more in the month, against the same month a year earlier.
fn trust_waits_sentence(trusts: &[&Vec<Value>], waits: Rows, month: &str) -> Option<String> {
    let top = trusts.first()?;
    Some(format!(
        "In one hospital trust, {} ({}), {} of patients were waiting more than six weeks for a \
         test in {}, compared to {} a year earlier.",
        waits.text(top, "name"),
        waits.text(top, "code"),
        pct(waits.number(top, "pct_waiting_6_plus_weeks")),
        month_name(month),
        pct(waits.number(top, "pct_waiting_6_plus_weeks_year_earlier"))
    ))
}

/// Trusts' waiting lists in one month, highest share waiting six weeks or more first.
fn trust_waits<'a>(waits: Rows<'a>, month: &str) -> Vec<&'a Vec<Value>> {
    let mut trusts = waits.filter(|r| {
        waits.text(r, "level") == "provider"
            && waits.text(r, "month") == month
            && waits.number(r, "pct_waiting_6_plus_weeks").is_finite()
    });
    trusts.sort_by(|a, b| {
        waits
            .number(b, "pct_waiting_6_plus_weeks")
            .total_cmp(&waits.number(a, "pct_waiting_6_plus_weeks"))
            .then_with(|| waits.text(a, "code").cmp(waits.text(b, "code")))
    });
    trusts
}

/// A data table in a box that scrolls sideways, so a wide table never widens the page; ratios
/// and their limits at three places, percentages at one, counts whole.
fn wide_table(h: &mut String, id: &str, caption: &str, table: &Table) {
    h.push_str("<div style=\"overflow-x:auto\">\n");
    data_table_with(h, id, caption, table, &|column, value| match value {
        Value::Number(x) if matches!(column, "ratio" | "ci_lower" | "ci_upper") => ratio3(*x),
        Value::Number(x) if column.starts_with("pct_") || column.ends_with("_pct_points") => {
            format::thousands(*x, 1)
        }
        _ => cell(value),
    });
    h.push_str("</div>\n");
}

/// The method named in a table's first row's `method` column.
fn method_of<'a>(rows: Rows<'a>) -> &'a str {
    rows.table
        .rows
        .first()
        .map_or("", |r| rows.text(r, "method"))
}

fn paragraph(h: &mut String, sentence: Option<String>) {
    if let Some(s) = sentence {
        let _ = writeln!(h, "<p>{}</p>", escape(&s));
    }
}

fn figure(h: &mut String, caption: &str, svg: &str) {
    let _ = write!(
        h,
        "<figure>\n<figcaption>{}</figcaption>\n{svg}</figure>\n",
        escape(caption)
    );
}

/// England month by month: the headline sentence, then per measure the line chart and its rows.
fn england_section(h: &mut String, input: &ComparisonInput) {
    let (a, b) = input.period_labels();
    let _ = writeln!(
        h,
        "<section id=\"england\">\n<h2>England: {} against {}</h2>",
        escape(b),
        escape(a)
    );
    paragraph(h, england_sentence(input));
    let rows = input.rows();
    for (n, measure) in input.measures().iter().enumerate() {
        let label = measure_label(measure);
        figures_beside(h, input, COMPARISON_TABLE, &["england"], Some(measure));
        figure(
            h,
            &format!(
                "Figure {}. {label}: tests in England by month, {a} and {b}",
                n + 1
            ),
            &monthly_chart_svg(input, measure),
        );
        let mut months = input.england_months(measure);
        months.extend(input.whole_period("england", measure));
        wide_table(
            h,
            &format!("england-{measure}"),
            &format!(
                "Table {}. {label}: tests in England by month and over the period; ratio and \
                 limits by {}",
                n + 1,
                method_of(rows)
            ),
            &rows.columns(&PERIOD_COLUMNS, &months),
        );
    }
    h.push_str("</section>\n");
}

/// Regions over the whole period, every measure.
fn regions_section(h: &mut String, input: &ComparisonInput) {
    let rows = input.rows();
    h.push_str("<section id=\"regions\">\n<h2>NHS regions</h2>\n");
    let regions =
        rows.filter(|r| rows.text(r, "level") == "region" && rows.text(r, "month_b") == ALL);
    wide_table(
        h,
        "regions-period",
        &format!(
            "Tests by NHS region and measure over the whole period; ratio and limits by {}",
            method_of(rows)
        ),
        &rows.columns(&PERIOD_COLUMNS, &regions),
    );
    h.push_str("</section>\n");
}

/// Trusts ranked by % change: the chart of all modalities and the searchable ranked table.
fn trusts_section(h: &mut String, input: &ComparisonInput) {
    let rows = input.rows();
    h.push_str("<section id=\"trusts\">\n<h2>Trusts ranked by % change</h2>\n");
    paragraph(h, trusts_sentence(input));
    figures_beside(h, input, COMPARISON_TABLE, &["provider"], None);
    // At its own width, scrolling sideways: shrunk to the page, 137 trusts' codes are unreadable.
    figure(
        h,
        "Figure. All modalities: ratio of tests by trust, with 95% confidence intervals",
        &trusts_ranked_svg(input, ALL).replacen("<svg ", "<svg style=\"max-width:none\" ", 1),
    );
    search_box(h, "trusts-ranked", "trusts");
    wide_table(
        h,
        "trusts-ranked",
        &format!(
            "Trusts ranked by recovery (recovery_rank 1 = recovered most) within each measure, \
             whole period; ratio and limits by {}",
            method_of(rows)
        ),
        &rows.columns(&RANKED_COLUMNS, &input.trusts_ranked()),
    );
    h.push_str("</section>\n");
}

/// Waiting lists: the regional bar chart with its sentence, the regions' rows, and trusts in the
/// latest month, searchable.
fn waits_section(h: &mut String, input: &ComparisonInput) {
    let (Some(table), Some(month)) = (input.waits, input.latest_waits_month()) else {
        return;
    };
    let waits = Rows { table };
    h.push_str(
        "<section id=\"waits-regions\">\n<h2>Waiting six weeks or more, by NHS region</h2>\n",
    );
    paragraph(h, regions_sentence(waits, &month));
    figures_beside(h, input, WAITS_TABLE, &["region", "england"], None);
    figure(
        h,
        &format!(
            "Figure. Share of the waiting list waiting six weeks or more by NHS region, {}",
            month_name(&month)
        ),
        &regional_waits_svg(input, &month),
    );
    let regions = waits.filter(|r| matches!(waits.text(r, "level"), "england" | "region"));
    wide_table(
        h,
        "waits-regions-table",
        "Waiting lists of England and the NHS regions by month",
        &waits.columns(&WAITS_COLUMNS, &regions),
    );
    h.push_str(
        "</section>\n<section id=\"waits-trusts\">\n<h2>Waiting six weeks or more, by trust</h2>\n",
    );
    let trusts = trust_waits(waits, &month);
    paragraph(h, trust_waits_sentence(&trusts, waits, &month));
    figures_beside(h, input, WAITS_TABLE, &["provider"], None);
    search_box(h, "waits-trusts-table", "trusts");
    wide_table(
        h,
        "waits-trusts-table",
        &format!(
            "Trusts' waiting lists in {}, highest share waiting six weeks or more first",
            month_name(&month)
        ),
        &waits.columns(&WAITS_COLUMNS, &trusts),
    );
    h.push_str("</section>\n");
}

/// The period-comparison report: one self-contained page, every chart inlined as SVG.
pub fn comparison_html(input: &ComparisonInput) -> Result<String, ReportError> {
    let mut h = page_start(
        &format!("{} {}", input.title, input.year_label),
        "",
        "NHS trusts, NHS regions and England",
        input.recipe_fingerprint,
    );
    h.push_str("<nav><h2>Contents</h2><ol>\n<li><a href=\"#england\">England by month</a></li>\n<li><a href=\"#regions\">NHS regions</a></li>\n<li><a href=\"#trusts\">Trusts ranked by % change</a></li>\n");
    if input.waits.is_some() {
        h.push_str("<li><a href=\"#waits-regions\">Waiting six weeks or more, by NHS region</a></li>\n<li><a href=\"#waits-trusts\">Waiting six weeks or more, by trust</a></li>\n");
    }
    if !input.tables.is_empty() {
        h.push_str("<li><a href=\"#tables\">Further tables</a></li>\n");
    }
    h.push_str("<li><a href=\"#sources\">Sources and notes</a></li>\n<li><a href=\"#manifest\">Manifest</a></li>\n</ol></nav>\n");
    england_section(&mut h, input);
    regions_section(&mut h, input);
    trusts_section(&mut h, input);
    waits_section(&mut h, input);
    if !input.tables.is_empty() {
        h.push_str("<section id=\"tables\">\n<h2>Further tables</h2>\n");
        for table in input.tables {
            let caption = if table.title.is_empty() {
                &table.name
            } else {
                &table.title
            };
            wide_table(&mut h, &format!("table-{}", table.name), caption, table);
        }
        h.push_str("</section>\n");
    }
    h.push_str(SEARCH_SCRIPT);
    page_end(
        &mut h,
        input.sources,
        input.notes,
        &methods(input),
        input.manifest_json,
    );
    Ok(h)
}

/// The lines naming the methods, from the tables' own `method` columns.
fn methods(input: &ComparisonInput) -> Vec<String> {
    let mut out = Vec::new();
    let rows = input.rows();
    if let Some(row) = input.comparison.rows.first() {
        out.push(format!(
            "Ratio and confidence interval method: {}.",
            rows.text(row, "method")
        ));
    }
    if let Some(table) = input.waits {
        let waits = Rows { table };
        if let Some(row) = table.rows.first() {
            out.push(format!(
                "Waiting-list method: {}.",
                waits.text(row, "method")
            ));
        }
    }
    out
}

/// The workbook's notes, in order, then the run's.
fn workbook_notes(input: &ComparisonInput) -> Vec<String> {
    let (a, b) = input.period_labels();
    let mut notes = vec![
        format!(
            "Tests are Diagnostic Imaging Dataset examinations; period_a is {a}, period_b {b}. \
             change is period_b_tests minus period_a_tests, pct_change that change as a \
             percentage of period_a_tests; month_a and month_b are the months compared, all for \
             the whole period."
        ),
        "ratio is period_b_tests over period_a_tests; ci_lower and ci_upper are its confidence \
         limits by the method named in each row's method column."
            .to_string(),
        "recovery_rank ranks trusts by ratio within each measure over the whole period \
         (1 = recovered most)."
            .to_string(),
        "Waiting lists are NHS England's DM01: patients waiting at the month's end; \
         pct_waiting_6_plus_weeks is the share waiting six weeks or more, in percent, and \
         change_pct_points its change against the same month a year earlier, in percentage \
         points."
            .to_string(),
        "[x] means the value is not available (for example a ratio with no tests in the \
         earlier period)."
            .to_string(),
    ];
    notes.extend(input.notes.iter().cloned());
    notes
}

/// The workbook's table sheets: period comparison by level, trusts ranked, waits by region and
/// by trust, then every other table.
fn comparison_sheets(input: &ComparisonInput) -> Vec<SheetTable> {
    let mut taken = fixed_sheet_names();
    let rows = input.rows();
    let year = input.year_label;
    let notes = format!("{} {} {}", note(1), note(2), note(5));
    let mut sheets = Vec::new();
    let mut push = |name: &str, title: String, table: Table| {
        let name = sheet_name(name, &mut taken);
        sheets.push(table_sheet(name, title, &table));
    };
    for (name, level, what) in [
        ("England", "england", "England"),
        ("Regions", "region", "NHS region"),
        ("Trusts", "provider", "trust"),
    ] {
        let subset = rows.filter(|r| rows.text(r, "level") == level);
        push(
            name,
            format!("Tests by {what}, measure and month, {year} {notes}"),
            rows.subset("", &subset),
        );
    }
    push(
        "Trusts_ranked",
        format!(
            "Trusts ranked by recovery within each measure, whole period, {year} {notes} {}",
            note(3)
        ),
        rows.subset("", &input.trusts_ranked()),
    );
    if let Some(table) = input.waits {
        let waits = Rows { table };
        let regions = waits.filter(|r| matches!(waits.text(r, "level"), "england" | "region"));
        let trusts = waits.filter(|r| waits.text(r, "level") == "provider");
        push(
            "Waits_regions",
            format!(
                "Waiting lists of England and the NHS regions by month, {year} {}",
                note(4)
            ),
            waits.subset("", &regions),
        );
        push(
            "Waits_trusts",
            format!("Waiting lists by trust and month, {year} {}", note(4)),
            waits.subset("", &trusts),
        );
    }
    for table in input.tables {
        let title = if table.title.is_empty() {
            &table.name
        } else {
            &table.title
        };
        push(&table.name, format!("{title}, {year}"), table.clone());
    }
    sheets
}

/// The period-comparison workbook as `.xlsx` bytes: Cover, Contents, Notes, then England,
/// Regions, Trusts, Trusts_ranked, Waits_regions, Waits_trusts (with a waits table) and one sheet
/// per other table. Each sheet's cells are its table's rows as the CSV holds them.
pub fn comparison_workbook_xlsx(input: &ComparisonInput) -> Result<Vec<u8>, ReportError> {
    let notes = workbook_notes(input);
    write_workbook(&WorkbookParts {
        title: input.title,
        year_label: input.year_label,
        recipe_fingerprint: input.recipe_fingerprint,
        cover_lines: vec![
            format!("Year: {}", input.year_label),
            "Areas: NHS trusts, NHS regions and England".into(),
            format!("Recipe fingerprint: {}", input.recipe_fingerprint),
            "This workbook has a contents sheet, a notes sheet and one table per sheet.".into(),
        ],
        sources: input.sources,
        notes: &notes,
        sheets: &comparison_sheets(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_named() {
        assert_eq!(month_name("2020-04"), "April 2020");
        assert_eq!(month_name("2019-12"), "December 2019");
        assert_eq!(month_name("all"), "all");
        assert_eq!(month_name("2019-13"), "2019-13");
    }

    #[test]
    fn changes_read_as_fewer_or_more() {
        assert_eq!(fewer_or_more(-7_631_155.0), "7,631,155 fewer");
        assert_eq!(fewer_or_more(12.0), "12 more");
        assert_eq!(pct(-27.002443), "-27.0%");
        assert_eq!(pct(f64::NAN), "[x]");
    }
}
