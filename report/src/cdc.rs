//! The community diagnostic centre (CDC) share publication (seed 004): a report and a workbook
//! made from a run's `cdc_share_england` (England, national totals) and `cdc_share` (NHS regions
//! and ICBs, disclosure-protected) tables. Every number printed comes from those tables or,
//! quoted as published with its verify status, from the recipe's published figures. The page
//! shell, data tables, line chart, map and workbook are the other publications' own (`html`,
//! `line`, `map`, `workbook`).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use strata_api::{Table, Value};

use crate::ReportError;
use crate::comparison::PublishedFigure;
use crate::format::{self, escape};
use crate::html::{cell, data_table_with, page_end, page_start};
use crate::input::Boundaries;
use crate::line::{LineChart, LinePalette, LineSeries, line_chart_svg};
use crate::map::{Choropleth, choropleth_svg, parse_features};
use crate::rows::Rows;
use crate::workbook::{
    SheetTable, WorkbookParts, fixed_sheet_names, note, sheet_name, table_sheet, write_workbook,
};

/// England's CDC table among a run's tables: the publication is made when a run has it.
pub const CDC_ENGLAND_TABLE: &str = "cdc_share_england";
/// The regions' and ICBs' CDC table.
pub const CDC_TABLE: &str = "cdc_share";

/// The tests the chart draws, and the maps (DM01's code and the words for it).
const CHART_TESTS: [&str; 2] = ["CT", "MRI"];
pub const MAP_TESTS: [(&str, &str); 3] = [("CT", "CT"), ("MRI", "MRI"), ("ALL", "all DM01 tests")];

/// The columns the page and the level sheets show, with the disclosure the engine applied.
const SHARE_COLUMNS: [&str; 13] = [
    "code",
    "name",
    "month",
    "measure",
    "test",
    "numerator",
    "denominator",
    "share_pct",
    "share_pct_year_earlier",
    "change_pct_points",
    "method",
    "disclosure",
    "note",
];

/// Everything the CDC publication is made from.
#[derive(Debug, Clone, Copy)]
pub struct CdcInput<'a> {
    pub title: &'a str,
    pub year_label: &'a str,
    pub recipe_fingerprint: &'a str,
    /// `cdc_share_england` as written.
    pub england: &'a Table,
    /// `cdc_share` (regions and ICBs) as written, if the run has it.
    pub sub_national: Option<&'a Table>,
    /// What protects `cdc_share`'s counts (the disclosure stage's method), and England's.
    pub sub_national_disclosure: &'a str,
    pub england_disclosure: &'a str,
    /// Every other table of the run; each gets a workbook sheet and a report table.
    pub tables: &'a [Table],
    pub figures: &'a [PublishedFigure],
    /// ICB boundaries, for the maps; none leaves them out.
    pub boundaries: Option<Boundaries<'a>>,
    pub manifest_json: &'a str,
    pub sources: &'a [String],
    pub notes: &'a [String],
}

impl<'a> Rows<'a> {
    /// `rows` in the page's columns, `disclosure` in its own column.
    fn shown(&self, rows: &[&Vec<Value>], disclosure: &str) -> Table {
        let columns: Vec<String> = SHARE_COLUMNS
            .iter()
            .filter(|c| **c == "disclosure" || self.col(c).is_some())
            .map(|c| c.to_string())
            .collect();
        Table {
            name: self.table.name.clone(),
            title: String::new(),
            columns: columns.clone(),
            rows: rows
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .map(|c| match self.col(c) {
                            Some(i) => r[i].clone(),
                            None => Value::Text(disclosure.to_string()),
                        })
                        .collect()
                })
                .collect(),
            counts: Vec::new(),
        }
    }
}

/// How one map's ICBs joined to the boundaries: codes in both, codes in the CDC table the
/// boundaries lack (drawn nowhere: the report lists them), and boundaries with no CDC row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapJoin {
    pub joined: Vec<String>,
    pub not_in_boundaries: Vec<String>,
    pub no_data: Vec<String>,
}

impl<'a> CdcInput<'a> {
    fn england_rows(&self) -> Rows<'a> {
        Rows {
            table: self.england,
        }
    }

    /// The latest month with a CDC share of CT in England: the month the headline, tables and maps
    /// are of.
    pub fn latest_month(&self) -> Option<String> {
        let e = self.england_rows();
        e.filter(|r| e.text(r, "measure") == "cdc_share" && e.number(r, "share_pct").is_finite())
            .into_iter()
            .map(|r| e.text(r, "month").to_string())
            .max()
    }

    /// The twelve months the chart covers, ending at the latest month (those England has a
    /// share for), in order.
    fn chart_months(&self) -> Vec<String> {
        let e = self.england_rows();
        let months: BTreeSet<String> = e
            .filter(|r| e.text(r, "measure") == "cdc_share" && e.number(r, "share_pct").is_finite())
            .into_iter()
            .map(|r| e.text(r, "month").to_string())
            .collect();
        let months: Vec<String> = months.into_iter().collect();
        months[months.len().saturating_sub(12)..].to_vec()
    }

    /// The ICB rows of one test's CDC share in the latest month.
    fn icb_shares(&self, test: &str) -> Vec<&'a Vec<Value>> {
        let (Some(table), Some(month)) = (self.sub_national, self.latest_month()) else {
            return Vec::new();
        };
        let s = Rows { table };
        s.filter(|r| {
            s.text(r, "level") == "icb"
                && s.text(r, "measure") == "cdc_share"
                && s.text(r, "test") == test
                && s.text(r, "month") == month
        })
    }

    /// How the ICBs of the CDC table join to the boundaries' codes (every test's rows).
    pub fn map_join(&self) -> Result<Option<MapJoin>, ReportError> {
        let (Some(b), Some(table)) = (self.boundaries, self.sub_national) else {
            return Ok(None);
        };
        let features = parse_features(b.geojson, b.join_property)?;
        let keys: BTreeSet<&str> = features.iter().map(|f| f.key.as_str()).collect();
        let s = Rows { table };
        let codes: BTreeSet<&str> = s
            .filter(|r| s.text(r, "level") == "icb")
            .into_iter()
            .map(|r| s.text(r, "code"))
            .collect();
        Ok(Some(MapJoin {
            joined: codes
                .iter()
                .filter(|c| keys.contains(*c))
                .map(|c| c.to_string())
                .collect(),
            not_in_boundaries: codes
                .iter()
                .filter(|c| !keys.contains(*c))
                .map(|c| c.to_string())
                .collect(),
            no_data: keys
                .iter()
                .filter(|k| !codes.contains(*k))
                .map(|k| k.to_string())
                .collect(),
        }))
    }
}

/// `2024-08` → `August 2024`; anything else as it is.
fn month_name(month: &str) -> String {
    crate::comparison::month_name(month)
}

/// `2024-08` → `Aug 24`, for an axis.
fn month_short(month: &str) -> String {
    let name = month_name(month);
    match name.split_once(' ') {
        Some((m, y)) if y.len() == 4 => format!("{} {}", &m[..3.min(m.len())], &y[2..]),
        _ => name,
    }
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{}%", format::thousands(x, 1))
    } else {
        format::NOT_AVAILABLE.to_string()
    }
}

fn count(x: f64) -> String {
    format::thousands(x, 0)
}

/// England's monthly CDC share of CT and of MRI over the twelve months to the latest, each against
/// the same month a year before (dashed, where DM01 has that month).
pub fn cdc_share_chart_svg(input: &CdcInput) -> String {
    let e = input.england_rows();
    let months = input.chart_months();
    let caption = match (months.first(), months.last()) {
        (Some(a), Some(b)) => format!(
            "CDC share of CT and MRI, England, {} to {}, against a year before",
            month_name(a),
            month_name(b)
        ),
        _ => "CDC share of CT and MRI, England".to_string(),
    };
    let mut series = Vec::new();
    for (group, test) in CHART_TESTS.iter().enumerate() {
        let rows = e.filter(|r| e.text(r, "measure") == "cdc_share" && e.text(r, "test") == *test);
        for (column, label, dashed) in [
            ("share_pct", test.to_string(), false),
            (
                "share_pct_year_earlier",
                format!("{test}, same month a year before"),
                true,
            ),
        ] {
            let points = months
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let row = rows.iter().find(|r| e.text(r, "month") == m)?;
                    Some((i, e.number(row, column)))
                })
                .filter(|(_, v)| v.is_finite())
                .collect();
            series.push(LineSeries {
                label,
                points,
                group,
                dashed,
                titles: Vec::new(),
            });
        }
    }
    line_chart_svg(&LineChart {
        caption,
        y_label: "% of DM01 activity in CDCs".into(),
        x_labels: months.iter().map(|m| month_short(m)).collect(),
        series,
        palette: LinePalette::Series,
    })
}

/// The ICB map of one test's CDC share in the latest month (`test` one of [`MAP_TESTS`]' codes).
pub fn cdc_map_svg(input: &CdcInput, test: &str) -> Result<String, ReportError> {
    let boundaries = input
        .boundaries
        .ok_or_else(|| ReportError::Boundaries("the report has no boundaries".into()))?;
    let features = parse_features(boundaries.geojson, boundaries.join_property)?;
    let words = MAP_TESTS
        .iter()
        .find(|(code, _)| *code == test)
        .map_or(test, |(_, words)| words);
    let month = input.latest_month().unwrap_or_default();
    let shares = input.icb_shares(test);
    let table = input.sub_national;
    let mut values: HashMap<&str, (f64, &str)> = HashMap::new();
    if let Some(table) = table {
        let s = Rows { table };
        for r in &shares {
            values.insert(
                s.text(r, "code"),
                (s.number(r, "share_pct"), s.text(r, "name")),
            );
        }
    }
    let e = input.england_rows();
    let england = e
        .filter(|r| {
            e.text(r, "measure") == "cdc_share"
                && e.text(r, "test") == test
                && e.text(r, "month") == month
        })
        .first()
        .map(|r| e.number(r, "share_pct"))
        .filter(|x| x.is_finite());
    let map = Choropleth {
        caption: format!("CDC share of {words} by ICB, {}", month_name(&month)),
        values,
        legend: ["CDC share".into(), "% of DM01 activity".into()],
        print: pct,
        break_decimals: 1,
        reference: england.map(|x| format!("England: {}", pct(x))),
    };
    Ok(choropleth_svg(&features, &map))
}

fn figure(h: &mut String, caption: &str, svg: &str) {
    let _ = write!(
        h,
        "<figure>\n<figcaption>{}</figcaption>\n{svg}</figure>\n",
        escape(caption)
    );
}

/// A data table in a box that scrolls sideways; shares at one place, counts whole.
fn wide_table(h: &mut String, id: &str, caption: &str, table: &Table) {
    h.push_str("<div style=\"overflow-x:auto\">\n");
    data_table_with(h, id, caption, table, &|column, value| match value {
        Value::Number(x) if column.ends_with("_pct") || column.contains("_pct_") => {
            format::thousands(*x, 1)
        }
        _ => cell(value),
    });
    h.push_str("</div>\n");
}

/// A published or reproduced figure: whole numbers with separators, others to two places.
fn figure_value(x: f64) -> String {
    if x.fract() == 0.0 {
        count(x)
    } else {
        format::thousands(x, 2)
    }
}

/// Every published figure beside the run's value, with whether it agrees (verify's test).
fn figures_table(h: &mut String, figures: &[PublishedFigure]) {
    if figures.is_empty() {
        return;
    }
    h.push_str("<table id=\"published-figures\" class=\"published\">\n<caption>The seed's figures beside this run's, as strata verify checks them</caption>\n<thead><tr><th scope=\"col\">Published sentence or figure</th><th scope=\"col\">Table</th><th scope=\"col\">Published</th><th scope=\"col\">This run</th><th scope=\"col\">Verify</th><th scope=\"col\">Kind</th></tr></thead>\n<tbody>\n");
    for f in figures {
        let reproduced = f
            .reproduced
            .map_or_else(|| format::NOT_AVAILABLE.to_string(), figure_value);
        let _ = writeln!(
            h,
            "<tr><td>“{}”</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.figure),
            escape(&f.table),
            figure_value(f.published),
            reproduced,
            if f.agrees { "pass" } else { "FAIL" },
            escape(&f.kind)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// England's headline sentences in the seed's words, from England's rows of the latest month.
fn headline(input: &CdcInput) -> Vec<String> {
    let e = input.england_rows();
    let Some(month) = input.latest_month() else {
        return Vec::new();
    };
    let find = |measure: &str, test: &str| {
        e.filter(|r| {
            e.text(r, "measure") == measure
                && e.text(r, "test") == test
                && e.text(r, "month") == month
        })
        .first()
        .copied()
    };
    let mut out = Vec::new();
    for test in CHART_TESTS {
        if let Some(r) = find("cdc_share", test) {
            let mut s = format!(
                "In {}, there were {} {test} scans in England's DM01 activity, {} ({}) of which \
                 took place in community diagnostic centres",
                month_name(&month),
                count(e.number(r, "denominator")),
                count(e.number(r, "numerator")),
                pct(e.number(r, "share_pct"))
            );
            let before = e.number(r, "share_pct_year_earlier");
            if before.is_finite() {
                let _ = write!(s, ", against {} a year before", pct(before));
            }
            s.push('.');
            out.push(s);
        }
    }
    if let Some(r) = find("share_of_dm01", "CT+MRI") {
        out.push(format!(
            "CT and MRI made up {} ({} of {} tests) of all DM01 activity.",
            pct(e.number(r, "share_pct")),
            count(e.number(r, "numerator")),
            count(e.number(r, "denominator"))
        ));
    }
    if let Some(r) = find("cdc_share", "ALL") {
        let mut s = format!(
            "CDCs did {} of all DM01 tests",
            pct(e.number(r, "share_pct"))
        );
        let before = e.number(r, "share_pct_year_earlier");
        if before.is_finite() {
            let _ = write!(s, " ({} a year before)", pct(before));
        }
        s.push('.');
        out.push(s);
    }
    if let Some(r) = find("cdc_tests_cumulative", "ALL_TYPES") {
        out.push(format!(
            "CDCs had done {} tests of every type by the end of {}.",
            count(e.number(r, "numerator")),
            month_name(&month)
        ));
    }
    out
}

/// The sentence on the ICBs' spread of one test's share in the latest month.
fn icb_spread(input: &CdcInput, test: &str, words: &str) -> Option<String> {
    let s = Rows {
        table: input.sub_national?,
    };
    let mut rows = input.icb_shares(test);
    rows.retain(|r| s.number(r, "share_pct").is_finite());
    rows.sort_by(|a, b| {
        s.number(a, "share_pct")
            .total_cmp(&s.number(b, "share_pct"))
            .then_with(|| s.text(a, "code").cmp(s.text(b, "code")))
    });
    let (low, high) = (rows.first()?, rows.last()?);
    Some(format!(
        "The CDC share of {words} ran from {} in {} ({}) to {} in {} ({}) across {} ICBs.",
        pct(s.number(low, "share_pct")),
        s.text(low, "name"),
        s.text(low, "code"),
        pct(s.number(high, "share_pct")),
        s.text(high, "name"),
        s.text(high, "code"),
        rows.len()
    ))
}

fn paragraph(h: &mut String, s: &str) {
    let _ = writeln!(h, "<p>{}</p>", escape(s));
}

/// England: the headline, the figures with their verify status, the chart and England's rows.
fn england_section(h: &mut String, input: &CdcInput) {
    h.push_str("<section id=\"england\">\n<h2>England</h2>\n");
    for s in headline(input) {
        paragraph(h, &s);
    }
    figures_table(h, input.figures);
    let e = input.england_rows();
    let months = input.chart_months();
    figure(
        h,
        "Figure 1. CDC share of CT and MRI scans, England, by month, against the same month a year before",
        &cdc_share_chart_svg(input),
    );
    let chart_rows = e.filter(|r| {
        e.text(r, "measure") == "cdc_share"
            && CHART_TESTS.contains(&e.text(r, "test"))
            && months.iter().any(|m| m == e.text(r, "month"))
    });
    wide_table(
        h,
        "england-chart",
        "Table 1. The figures of Figure 1: CDC tests (numerator) over DM01 total activity \
         (denominator) of CT and MRI, England, by month",
        &e.shown(&chart_rows, input.england_disclosure),
    );
    if let Some(month) = input.latest_month() {
        let latest = e.filter(|r| e.text(r, "month") == month);
        wide_table(
            h,
            "england-latest",
            &format!(
                "Table 2. England, {}: every test's CDC share, CT and MRI as a share of all DM01 \
                 activity, and CDC tests",
                month_name(&month)
            ),
            &e.shown(&latest, input.england_disclosure),
        );
    }
    h.push_str("</section>\n");
}

/// The regions' rows of the latest month.
fn regions_section(h: &mut String, input: &CdcInput) {
    let (Some(table), Some(month)) = (input.sub_national, input.latest_month()) else {
        return;
    };
    let s = Rows { table };
    h.push_str("<section id=\"regions\">\n<h2>NHS regions</h2>\n");
    let rows = s.filter(|r| {
        s.text(r, "level") == "region"
            && s.text(r, "month") == month
            && matches!(s.text(r, "measure"), "cdc_share" | "share_of_dm01")
            && (s.text(r, "measure") != "cdc_share"
                || MAP_TESTS.iter().any(|(t, _)| *t == s.text(r, "test")))
    });
    wide_table(
        h,
        "regions-latest",
        &format!(
            "Table 3. NHS regions, {}: CDC share of CT, MRI and all DM01 tests, and CT and MRI as \
             a share of all DM01 activity",
            month_name(&month)
        ),
        &s.shown(&rows, input.sub_national_disclosure),
    );
    h.push_str("</section>\n");
}

/// The ICBs: one map per test, how the ICB codes joined to the boundaries, and the ICBs' rows.
fn icbs_section(h: &mut String, input: &CdcInput) -> Result<(), ReportError> {
    let (Some(table), Some(month)) = (input.sub_national, input.latest_month()) else {
        return Ok(());
    };
    let s = Rows { table };
    h.push_str("<section id=\"icbs\">\n<h2>Integrated care boards</h2>\n");
    for (test, words) in MAP_TESTS {
        if let Some(sentence) = icb_spread(input, test, words) {
            paragraph(h, &sentence);
        }
    }
    if let Some(join) = input.map_join()? {
        let mut sentence = format!(
            "{} ICB codes of the CDC table join to the ICB boundaries.",
            join.joined.len()
        );
        if join.not_in_boundaries.is_empty() {
            sentence.push_str(" Every ICB code of the table has a boundary.");
        } else {
            let _ = write!(
                sentence,
                " Not on the map, no boundary has their code: {}.",
                join.not_in_boundaries.join(", ")
            );
        }
        if !join.no_data.is_empty() {
            let _ = write!(
                sentence,
                " Boundaries with no CDC row (grey): {}.",
                join.no_data.join(", ")
            );
        }
        let _ = writeln!(
            h,
            "<p id=\"map-join\" data-joined=\"{}\" data-not-in-boundaries=\"{}\" data-no-data=\"{}\">{}</p>",
            join.joined.len(),
            escape(&join.not_in_boundaries.join(" ")),
            escape(&join.no_data.join(" ")),
            escape(&sentence)
        );
        for (n, (test, words)) in MAP_TESTS.iter().enumerate() {
            figure(
                h,
                &format!(
                    "Map {}. CDC share of {words} by ICB, {}",
                    n + 1,
                    month_name(&month)
                ),
                &cdc_map_svg(input, test)?,
            );
        }
    }
    let rows = s.filter(|r| {
        s.text(r, "level") == "icb"
            && s.text(r, "month") == month
            && s.text(r, "measure") == "cdc_share"
            && MAP_TESTS.iter().any(|(t, _)| *t == s.text(r, "test"))
    });
    let _ = writeln!(
        h,
        "<p><label>Search ICBs: <input type=\"search\" data-filter=\"icbs-latest\"></label></p>"
    );
    wide_table(
        h,
        "icbs-latest",
        &format!(
            "Table 4. ICBs, {}: CDC share of CT, MRI and all DM01 tests",
            month_name(&month)
        ),
        &s.shown(&rows, input.sub_national_disclosure),
    );
    h.push_str("</section>\n");
    Ok(())
}

const SEARCH_SCRIPT: &str = "<script>\ndocument.querySelectorAll('input[data-filter]').forEach(function(box){box.addEventListener('input',function(){var q=box.value.toLowerCase();document.querySelectorAll('#'+box.dataset.filter+' tbody tr').forEach(function(row){row.hidden=q!==''&&row.textContent.toLowerCase().indexOf(q)<0;});});});\n</script>\n";

/// The methods, from the tables' own `method` columns (one line per distinct method).
fn methods(input: &CdcInput) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for table in std::iter::once(input.england).chain(input.sub_national) {
        let r = Rows { table };
        for row in &table.rows {
            let m = r.text(row, "method");
            if !m.is_empty() && seen.insert(m.to_string()) {
                out.push(format!("Method: {m}."));
            }
        }
    }
    out.push(format!(
        "Disclosure: England's counts {}; regions' and ICBs' counts {}.",
        input.england_disclosure, input.sub_national_disclosure
    ));
    out
}

/// The CDC report: one self-contained page, the chart and maps inlined as SVG.
pub fn cdc_html(input: &CdcInput) -> Result<String, ReportError> {
    let mut h = page_start(
        &format!("{} {}", input.title, input.year_label),
        "",
        "England, NHS regions and integrated care boards",
        input.recipe_fingerprint,
    );
    h.push_str("<nav><h2>Contents</h2><ol>\n<li><a href=\"#england\">England</a></li>\n");
    if input.sub_national.is_some() {
        h.push_str("<li><a href=\"#regions\">NHS regions</a></li>\n<li><a href=\"#icbs\">Integrated care boards</a></li>\n");
    }
    if !input.tables.is_empty() {
        h.push_str("<li><a href=\"#tables\">Further tables</a></li>\n");
    }
    h.push_str("<li><a href=\"#sources\">Sources and notes</a></li>\n<li><a href=\"#manifest\">Manifest</a></li>\n</ol></nav>\n");
    england_section(&mut h, input);
    regions_section(&mut h, input);
    icbs_section(&mut h, input)?;
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

/// The published figures as a table: figure, table, published, reproduced, verify, kind.
fn figures_sheet_table(figures: &[PublishedFigure]) -> Table {
    let mut t = Table::new(
        "published_figures",
        "",
        &[
            "figure",
            "table",
            "published",
            "reproduced",
            "verify",
            "kind",
        ],
    );
    for f in figures {
        t.rows.push(vec![
            Value::Text(f.figure.clone()),
            Value::Text(f.table.clone()),
            Value::Number(f.published),
            f.reproduced.map_or(Value::Missing, Value::Number),
            Value::Text(if f.agrees { "pass" } else { "FAIL" }.into()),
            Value::Text(f.kind.clone()),
        ]);
    }
    t
}

/// The workbook's sheets: the published figures, England, Regions, ICBs (every row, every
/// column of the CSV and the disclosure applied), then every other table.
fn sheets(input: &CdcInput) -> Vec<SheetTable> {
    let mut taken = fixed_sheet_names();
    let year = input.year_label;
    let mut sheets = Vec::new();
    let mut push = |name: &str, title: String, table: Table| {
        let name = sheet_name(name, &mut taken);
        sheets.push(table_sheet(name, title, &table));
    };
    if !input.figures.is_empty() {
        push(
            "Published_figures",
            format!(
                "The seed's figures beside this run's, as strata verify checks them, {year} {}",
                note(3)
            ),
            figures_sheet_table(input.figures),
        );
    }
    let with_disclosure = |table: &Table, rows: &[&Vec<Value>], disclosure: &str| {
        let mut t = Table {
            name: table.name.clone(),
            title: String::new(),
            columns: table.columns.clone(),
            rows: rows.iter().map(|r| (*r).clone()).collect(),
            counts: Vec::new(),
        };
        t.columns.push("disclosure".into());
        for r in &mut t.rows {
            r.push(Value::Text(disclosure.to_string()));
        }
        t
    };
    let e = input.england_rows();
    push(
        "England",
        format!(
            "CDC share of DM01 activity, England, by test and month, {year} {} {}",
            note(1),
            note(2)
        ),
        with_disclosure(input.england, &e.filter(|_| true), input.england_disclosure),
    );
    if let Some(table) = input.sub_national {
        let s = Rows { table };
        for (name, level, what) in [("Regions", "region", "NHS region"), ("ICBs", "icb", "ICB")] {
            push(
                name,
                format!(
                    "CDC share of DM01 activity by {what}, test and month, {year} {} {}",
                    note(1),
                    note(2)
                ),
                with_disclosure(
                    table,
                    &s.filter(|r| s.text(r, "level") == level),
                    input.sub_national_disclosure,
                ),
            );
        }
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

/// The CDC workbook as `.xlsx` bytes: Cover, Contents, Notes, Published_figures, England,
/// Regions, ICBs and one sheet per other table, each sheet's cells its table's rows.
pub fn cdc_workbook_xlsx(input: &CdcInput) -> Result<Vec<u8>, ReportError> {
    let mut notes = vec![
        "cdc_share rows: numerator is CDC tests of the test in the month (NHS England's CDC \
         activity file), denominator DM01 total activity of the same test and month; share_pct is \
         their ratio in percent, share_pct_year_earlier the same month a year before and \
         change_pct_points the difference. The CDC file has no link from a CDC to a trust, so the \
         two are counted apart. share_of_dm01 rows: DM01 activity of the tests over all DM01 \
         activity. cdc_tests and cdc_tests_cumulative: CDC tests of every type."
            .to_string(),
        format!(
            "disclosure names what protects the row's counts: England's {}; regions' and ICBs' {}. \
             Shares are of the unprotected counts. [x] means not available (suppressed, or no DM01 \
             activity of the test).",
            input.england_disclosure, input.sub_national_disclosure
        ),
        "verify is pass when the run's value is within the published figure's tolerance (strata \
         verify's own test); kind says whether the synthetic generator was given the figure \
         (round_trip) or the engine derived it (derived)."
            .to_string(),
    ];
    notes.extend(input.notes.iter().cloned());
    write_workbook(&WorkbookParts {
        title: input.title,
        year_label: input.year_label,
        recipe_fingerprint: input.recipe_fingerprint,
        cover_lines: vec![
            format!("Year: {}", input.year_label),
            "Areas: England, NHS regions and integrated care boards".into(),
            format!("Recipe fingerprint: {}", input.recipe_fingerprint),
            "This workbook has a contents sheet, a notes sheet and one table per sheet.".into(),
        ],
        sources: input.sources,
        notes: &notes,
        sheets: &sheets(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_short_on_the_axis() {
        assert_eq!(month_short("2024-08"), "Aug 24");
        assert_eq!(month_short("2023-09"), "Sep 23");
        assert_eq!(month_short("all"), "all");
    }
}
