//! The Annex B workbook, laid out to the UK government accessible-spreadsheet conventions.
//!
//! Every table sheet: A1 the table's title with its note markers, A2 one line saying what the
//! sheet holds, row 3 the header of an Excel table, data below. No merged cells, no blank rows or
//! columns inside a table, numbers stored as numbers with a display format, `[x]` where a value is
//! not available.
//!
//! At practice level a measure's sheet has thousands of rows, grouped by parent; a table of more
//! than [`SHEET_ROWS`] rows (`overdispersed_limits`, a row per practice × measure) is left to its
//! CSV file with a note, its figures that matter per area (adjusted limits and flag, the false
//! discovery rate) being on each measure's sheet.

use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, Table, TableColumn, Workbook, Worksheet,
};
use strata_api::Value;

use crate::ReportError;
use crate::format::NOT_AVAILABLE;
use crate::input::ReportInput;

/// Row (0-based) of every table sheet's header row.
pub const HEADER_ROW: u32 = 2;

/// Sheet names are at most this long in Excel.
const MAX_SHEET_NAME: usize = 31;

/// A cell to write.
pub(crate) enum Cell {
    Text(String),
    /// A number and its display format.
    Number(f64, &'static str),
}

pub(crate) const WHOLE: &str = "#,##0";
pub(crate) const ONE_DP: &str = "#,##0.0";
const TWO_DP: &str = "0.00";
/// Four decimals, and below 0.001 scientific notation (`8.81E-05`), so a small p-value does not
/// show as 0.0000; the cell holds the full number either way.
const P_VALUE: &str = "[<0.001]0.00E+00;0.0000";

pub(crate) fn number(x: f64, fmt: &'static str) -> Cell {
    if x.is_finite() {
        Cell::Number(x, fmt)
    } else {
        Cell::Text(NOT_AVAILABLE.to_string())
    }
}

fn optional(x: Option<f64>, fmt: &'static str) -> Cell {
    number(x.unwrap_or(f64::NAN), fmt)
}

pub(crate) fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

/// One table sheet to write.
pub(crate) struct SheetTable {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) headers: Vec<String>,
    pub(crate) rows: Vec<Vec<Cell>>,
}

/// A table with more rows than this is left to its CSV file (module doc).
pub const SHEET_ROWS: usize = 50_000;

/// Notes every workbook carries, before the recipe's own; numbered from 1 in this order.
const NOTE_RATES: usize = 1;
const NOTE_CI: usize = 2;
const NOTE_STARS: usize = 3;
const NOTE_NOT_AVAILABLE: usize = 4;
const FIXED_NOTES: usize = 4;

pub(crate) fn note(n: usize) -> String {
    format!("[note {n}]")
}

/// The workbook's notes, in order.
fn notes(input: &ReportInput) -> Vec<String> {
    let mut notes = vec![
        format!(
            "Rates are per {} registered population, indirectly standardised for age, sex and \
             deprivation (IMD quintile); observed and expected are numbers of tests.",
            input.rate_per()
        ),
        format!(
            "Confidence limits are on the standardised-rate scale, by the method named in the \
             CI method column: {}.",
            input.ci_method
        ),
        "Stars mark a significant difference from the base category: * p<0.05, ** p<0.01, \
         *** p<0.001. The base category has a ratio of 1."
            .to_string(),
        "[x] means the value is not available (for example a ratio that is undefined, or a rate \
         with no expected tests)."
            .to_string(),
    ];
    notes.extend(input.notes.iter().cloned());
    for table in input.tables.iter().filter(|t| t.rows.len() > SHEET_ROWS) {
        notes.push(format!(
            "The table {} ({} rows) is too long for a readable sheet: it is in {}.csv beside this \
             workbook. Each measure's sheet has its overdispersion-adjusted limits and flags.",
            table.name,
            crate::format::rate(table.rows.len() as f64),
            table.name
        ));
    }
    notes
}

/// A valid, unique sheet name from free text.
pub(crate) fn sheet_name(raw: &str, taken: &mut Vec<String>) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' | '\'' | ' ' => '_',
            c => c,
        })
        .take(MAX_SHEET_NAME)
        .collect();
    let mut name = cleaned.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
        let suffix = format!("_{n}");
        let keep = MAX_SHEET_NAME.saturating_sub(suffix.len());
        name = format!("{}{suffix}", cleaned.chars().take(keep).collect::<String>());
        n += 1;
    }
    taken.push(name.clone());
    name
}

/// The sheet names every workbook starts with, which table sheets may not take.
pub(crate) fn fixed_sheet_names() -> Vec<String> {
    vec!["Cover".to_string(), "Contents".into(), "Notes".into()]
}

fn table_sheets(input: &ReportInput) -> Vec<SheetTable> {
    let mut taken = fixed_sheet_names();
    let mut sheets = Vec::new();
    let year = input.year_label;
    let unit = input.rate_per();

    // National rates.
    sheets.push(SheetTable {
        name: sheet_name("National_rates", &mut taken),
        title: format!(
            "National imaging rates per {unit} by measure, {year} {}",
            note(NOTE_RATES)
        ),
        description: "This worksheet contains one table, one row per measure.".into(),
        headers: vec![
            "Measure".into(),
            "Measure key".into(),
            "Observed tests".into(),
            "Population".into(),
            format!("Rate per {unit}"),
        ],
        rows: input
            .rates
            .national
            .iter()
            .map(|n| {
                let key = input.measures.get(n.measure).map_or("", |m| m.key.as_str());
                vec![
                    text(input.measure_label(n.measure)),
                    text(key),
                    number(n.observed, WHOLE),
                    number(n.population, WHOLE),
                    number(n.rate, WHOLE),
                ]
            })
            .collect(),
    });

    // Standardised rates, one sheet per measure.
    for (measure, label) in input.measures.iter().enumerate() {
        sheets.push(rates_sheet(input, measure, label, &mut taken));
    }

    // Factor ratios.
    sheets.push(SheetTable {
        name: sheet_name("Factor_ratios", &mut taken),
        title: format!(
            "Rates ratios by sex, deprivation and age band, {year} {} {} {}",
            note(NOTE_RATES),
            note(NOTE_STARS),
            note(NOTE_NOT_AVAILABLE)
        ),
        description: "This worksheet contains one table, one row per factor category and measure."
            .into(),
        headers: [
            "Factor",
            "Category",
            "Measure",
            &format!("Standardised rate per {unit}"),
            "Ratio",
            "Ratio method",
            "Test statistic",
            "p value",
            "Stars",
            "Note",
        ]
        .map(String::from)
        .to_vec(),
        rows: input
            .factor_ratios
            .iter()
            .map(|f| {
                vec![
                    text(&f.factor),
                    text(&f.category),
                    text(input.measure_label(f.measure)),
                    number(f.standardised_rate, ONE_DP),
                    optional(f.ratio, TWO_DP),
                    text(&f.ratio_method),
                    optional(f.statistic, TWO_DP),
                    optional(f.p_value, P_VALUE),
                    text(&f.stars),
                    text(&f.note),
                ]
            })
            .collect(),
    });

    // Summary, data quality and any other tables, as given; one too long for a readable sheet
    // (a row per area × measure at practice level) is left to its CSV, as a note says.
    for table in input.tables.iter().filter(|t| t.rows.len() <= SHEET_ROWS) {
        let title = if table.title.is_empty() {
            table.name.clone()
        } else {
            table.title.clone()
        };
        sheets.push(table_sheet(
            sheet_name(&table.name, &mut taken),
            format!("{title}, {year}"),
            table,
        ));
    }
    sheets
}

/// A table sheet holding a run's table as it is: its columns as headers, one row per row.
pub(crate) fn table_sheet(name: String, title: String, table: &strata_api::Table) -> SheetTable {
    SheetTable {
        name,
        title,
        description: "This worksheet contains one table.".into(),
        headers: table.columns.clone(),
        rows: table
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        Value::Text(t) => text(t),
                        // Keep whatever precision the table has; whole numbers display whole.
                        Value::Number(x) if x.fract() == 0.0 => number(*x, WHOLE),
                        Value::Number(x) => number(*x, "#,##0.0###"),
                        Value::Missing => text(NOT_AVAILABLE),
                    })
                    .collect()
            })
            .collect(),
    }
}

/// One measure's standardised rates, one row per area. With a parent level, each area's parent
/// follows its name and the rows go by parent, then area code, so a parent's areas sit together;
/// with an overdispersion stage, the area's adjusted flag follows its limits.
fn rates_sheet(
    input: &ReportInput,
    measure: usize,
    label: &crate::MeasureLabel,
    taken: &mut Vec<String>,
) -> SheetTable {
    let (kind, year, unit) = (input.area_kind, input.year_label, input.rate_per());
    let limits = input.limits_index();
    let adjusted = input.adjusted_index(measure);
    let with_parents = input.has_parents();
    let with_adjusted = !adjusted.is_empty();
    let parent = |area: usize| input.parents.get(area).and_then(Option::as_ref);
    let mut rates = input.area_rates(measure);
    if with_parents {
        let key = |area: usize| {
            (
                parent(area).map_or("", |p| p.code.as_str()),
                input.area(area).map_or("", |a| a.code.as_str()),
            )
        };
        rates.sort_by(|a, b| key(a.area).cmp(&key(b.area)));
    }
    let rows = rates
        .into_iter()
        .map(|r| {
            let area = input.area(r.area);
            let ci = limits.get(&(r.area, r.measure));
            let limit = |f: fn(&crate::ConfidenceLimits) -> f64| {
                number(ci.map_or(f64::NAN, |c| f(c)), ONE_DP)
            };
            let mut row = vec![
                text(area.map_or("", |a| a.code.as_str())),
                text(area.map_or("", |a| a.name.as_str())),
            ];
            if with_parents {
                let p = parent(r.area);
                row.push(text(p.map_or("", |p| p.code.as_str())));
                row.push(text(p.map_or("", |p| p.name.as_str())));
            }
            row.extend([
                number(r.observed, WHOLE),
                number(r.expected, ONE_DP),
                number(r.population, WHOLE),
                number(r.crude_rate, ONE_DP),
                number(r.standardised_rate, ONE_DP),
                limit(|c| c.lower_95),
                limit(|c| c.upper_95),
                limit(|c| c.lower_998),
                limit(|c| c.upper_998),
                text(input.ci_method),
            ]);
            if with_adjusted {
                let a = adjusted.get(&r.area).copied();
                let widest = a.and_then(|a| a.levels.last());
                row.extend([
                    number(a.map_or(f64::NAN, |a| a.exact_fdr_p_value), P_VALUE),
                    number(widest.map_or(f64::NAN, |l| l.lower), TWO_DP),
                    number(widest.map_or(f64::NAN, |l| l.upper), TWO_DP),
                    text(&adjusted_flag(a)),
                ]);
            }
            row
        })
        .collect();
    let mut headers = vec![format!("{kind} code"), format!("{kind} name")];
    if with_parents {
        headers.extend(["Parent code".to_string(), "Parent name".to_string()]);
    }
    headers.extend([
        "Observed tests".into(),
        "Expected tests".into(),
        "Population".into(),
        format!("Crude rate per {unit}"),
        format!("Standardised rate per {unit}"),
        "95% lower limit".into(),
        "95% upper limit".into(),
        "99.8% lower limit".into(),
        "99.8% upper limit".into(),
        "CI method".into(),
    ]);
    if with_adjusted {
        let widest = input
            .adjusted
            .first()
            .and_then(|a| a.levels.last())
            .map_or(String::new(), |l| {
                format!("{}% ", (l.level * 1000.0).round() / 10.0)
            });
        headers.extend([
            "Exact Poisson p value, false discovery rate adjusted".into(),
            format!("Overdispersion-adjusted {widest}lower limit of ratio"),
            format!("Overdispersion-adjusted {widest}upper limit of ratio"),
            "Overdispersion-adjusted flag".into(),
        ]);
    }
    let order = if with_parents {
        format!(", by parent then {kind} code")
    } else {
        String::new()
    };
    SheetTable {
        name: sheet_name(&format!("SR_{}", label.label), taken),
        title: format!(
            "Standardised {} rates per {unit} by {kind}, {year} {} {}",
            label.label,
            note(NOTE_RATES),
            note(NOTE_CI)
        ),
        description: format!("This worksheet contains one table, one row per {kind}{order}."),
        headers,
        rows,
    }
}

/// "high at 99.8%", "low at 95%", "within" (empty without adjusted limits for the area).
fn adjusted_flag(adjusted: Option<&crate::AdjustedLimits>) -> String {
    let Some(a) = adjusted else {
        return String::new();
    };
    let flag = a.signed_flag();
    match a.levels.get((flag.unsigned_abs() as usize).wrapping_sub(1)) {
        Some(l) if flag > 0 => format!("high at {}%", (l.level * 1000.0).round() / 10.0),
        Some(l) => format!("low at {}%", (l.level * 1000.0).round() / 10.0),
        None => "within".into(),
    }
}

/// Excel wants unique, non-empty table headers.
fn unique_headers(headers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let base = if h.trim().is_empty() {
            format!("Column {}", i + 1)
        } else {
            h.clone()
        };
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|o| o.eq_ignore_ascii_case(&name)) {
            name = format!("{base} {n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// Excel's limit on the characters in a cell.
const EXCEL_CELL_CHARS: usize = 32_767;

/// A cell's text as Excel can hold it: a longer text (at practice level, e.g. the list of
/// thousands of areas above twice the national rate) is cut at a character boundary with a note
/// saying the whole text is in the table's CSV file.
fn excel_text(text: &str) -> std::borrow::Cow<'_, str> {
    const MARK: &str = " … (cut to fit Excel's cell limit; the CSV table has the whole text)";
    if text.chars().count() <= EXCEL_CELL_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let keep = EXCEL_CELL_CHARS - MARK.chars().count();
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(MARK);
    std::borrow::Cow::Owned(cut)
}

fn write_table_sheet(
    sheet: &mut Worksheet,
    table: &SheetTable,
    bold: &Format,
) -> Result<(), ReportError> {
    sheet.set_name(&table.name)?;
    sheet.write_string_with_format(0, 0, &table.title, bold)?;
    sheet.write_string(1, 0, &table.description)?;
    let headers = unique_headers(&table.headers);
    let mut formats: Vec<(&'static str, Format)> = Vec::new();
    for (r, row) in table.rows.iter().enumerate() {
        let r = HEADER_ROW + 1 + r as u32;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(t) => {
                    sheet.write_string(r, c, excel_text(t).as_ref())?;
                }
                Cell::Number(x, fmt) => {
                    let format = match formats.iter().find(|(f, _)| f == fmt) {
                        Some((_, format)) => format.clone(),
                        None => {
                            let format = Format::new().set_num_format(*fmt);
                            formats.push((fmt, format.clone()));
                            format
                        }
                    };
                    sheet.write_number_with_format(r, c, *x, &format)?;
                }
            }
        }
    }
    let last_col = headers.len().saturating_sub(1) as u16;
    if table.rows.is_empty() {
        // An Excel table needs a data row; an empty one is just its header.
        for (c, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(HEADER_ROW, c as u16, h, bold)?;
        }
    } else {
        let columns: Vec<TableColumn> = headers
            .iter()
            .map(|h| TableColumn::new().set_header(h))
            .collect();
        let excel_table = Table::new().set_columns(&columns);
        sheet.add_table(
            HEADER_ROW,
            0,
            HEADER_ROW + table.rows.len() as u32,
            last_col,
            &excel_table,
        )?;
    }
    sheet.autofit();
    // Autofit measures the long title in A1 too; cap column A so codes stay readable.
    sheet.set_column_width(0, 16)?;
    Ok(())
}

/// The Annex B workbook as `.xlsx` bytes. Sheet order: Cover, Contents, Notes, National_rates,
/// one `SR_<measure>` per measure, Factor_ratios, then one per extra table (named as the table).
pub fn workbook_xlsx(input: &ReportInput) -> Result<Vec<u8>, ReportError> {
    let notes = notes(input);
    debug_assert!(notes.len() >= FIXED_NOTES);
    write_workbook(&WorkbookParts {
        title: input.title,
        year_label: input.year_label,
        recipe_fingerprint: input.recipe_fingerprint,
        cover_lines: vec![
            format!("Year: {}", input.year_label),
            format!("Areas: {}s", input.area_kind),
            format!("Recipe fingerprint: {}", input.recipe_fingerprint),
            "This workbook has a contents sheet, a notes sheet and one table per sheet.".into(),
        ],
        sources: input.sources,
        notes: &notes,
        sheets: &table_sheets(input),
    })
}

/// What any publication's workbook is made of: the cover's lines, sources and numbered notes, and
/// the table sheets (in order, after Cover, Contents and Notes).
pub(crate) struct WorkbookParts<'a> {
    pub(crate) title: &'a str,
    pub(crate) year_label: &'a str,
    pub(crate) recipe_fingerprint: &'a str,
    /// Lines under the cover's title, before its sources.
    pub(crate) cover_lines: Vec<String>,
    pub(crate) sources: &'a [String],
    /// Numbered `[note 1]`, `[note 2]`, … in this order.
    pub(crate) notes: &'a [String],
    pub(crate) sheets: &'a [SheetTable],
}

/// A workbook as `.xlsx` bytes, laid out as the module doc says: Cover, Contents, Notes, then
/// one sheet per table. Every publication's workbook is written here.
pub(crate) fn write_workbook(parts: &WorkbookParts) -> Result<Vec<u8>, ReportError> {
    let mut workbook = Workbook::new();
    // A fixed creation date keeps the bytes the same from run to run.
    let properties = DocProperties::new()
        .set_title(format!("{} {}", parts.title, parts.year_label))
        .set_author("strata")
        .set_comment(format!("Recipe fingerprint {}", parts.recipe_fingerprint))
        .set_creation_datetime(&ExcelDateTime::from_ymd(2000, 1, 1)?);
    workbook.set_properties(&properties);

    let bold = Format::new().set_bold();
    write_cover(workbook.add_worksheet(), parts, &bold)?;
    write_contents(workbook.add_worksheet(), parts.sheets, &bold)?;
    write_notes(workbook.add_worksheet(), parts.notes, &bold)?;
    for table in parts.sheets {
        let sheet = workbook.add_worksheet();
        write_table_sheet(sheet, table, &bold)?;
    }
    Ok(workbook.save_to_buffer()?)
}

/// Cover: everything in column A, one item per row, headings in bold.
fn write_cover(
    cover: &mut Worksheet,
    parts: &WorkbookParts,
    bold: &Format,
) -> Result<(), ReportError> {
    let title_format = Format::new().set_bold().set_font_size(16);
    cover.set_name("Cover")?;
    cover.write_string_with_format(0, 0, parts.title, &title_format)?;
    let mut row = 1;
    let mut line = |sheet: &mut Worksheet, text: &str, format: Option<&Format>| {
        let written = match format {
            Some(f) => sheet.write_string_with_format(row, 0, text, f).map(|_| ()),
            None => sheet.write_string(row, 0, text).map(|_| ()),
        };
        row += 1;
        written
    };
    for text in &parts.cover_lines {
        line(cover, text, None)?;
    }
    line(cover, "Sources and licences", Some(bold))?;
    for source in parts.sources {
        line(cover, source, None)?;
    }
    line(cover, "Notes on method and data quality", Some(bold))?;
    for (i, text) in parts.notes.iter().enumerate() {
        line(cover, &format!("{} {text}", note(i + 1)), None)?;
    }
    cover.set_column_width(0, 120)?;
    Ok(())
}

/// Contents: a table of sheets with links.
fn write_contents(
    contents: &mut Worksheet,
    sheets: &[SheetTable],
    bold: &Format,
) -> Result<(), ReportError> {
    contents.set_name("Contents")?;
    contents.write_string_with_format(0, 0, "Table of contents", bold)?;
    contents.write_string(
        1,
        0,
        "This worksheet contains one table, one row per sheet.",
    )?;
    let mut entries = vec![(
        "Notes".to_string(),
        "Notes used in this workbook".to_string(),
    )];
    entries.extend(sheets.iter().map(|s| (s.name.clone(), s.title.clone())));
    for (i, (name, title)) in entries.iter().enumerate() {
        let r = HEADER_ROW + 1 + i as u32;
        contents.write_url_with_text(r, 0, format!("internal:'{name}'!A1").as_str(), name)?;
        contents.write_string(r, 1, title)?;
    }
    contents.add_table(
        HEADER_ROW,
        0,
        HEADER_ROW + entries.len() as u32,
        1,
        &Table::new().set_columns(&[
            TableColumn::new().set_header("Sheet name"),
            TableColumn::new().set_header("Table title"),
        ]),
    )?;
    contents.set_column_width(0, 32)?;
    contents.set_column_width(1, 100)?;
    Ok(())
}

/// Notes: number and text.
fn write_notes(
    notes_sheet: &mut Worksheet,
    notes: &[String],
    bold: &Format,
) -> Result<(), ReportError> {
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    notes_sheet.set_name("Notes")?;
    notes_sheet.write_string_with_format(0, 0, "Notes", bold)?;
    notes_sheet.write_string(1, 0, "This worksheet contains one table, one row per note.")?;
    for (i, text) in notes.iter().enumerate() {
        let r = HEADER_ROW + 1 + i as u32;
        notes_sheet.write_string(r, 0, note(i + 1))?;
        notes_sheet.write_string_with_format(r, 1, text, &wrap)?;
    }
    notes_sheet.add_table(
        HEADER_ROW,
        0,
        HEADER_ROW + notes.len() as u32,
        1,
        &Table::new().set_columns(&[
            TableColumn::new().set_header("Note number"),
            TableColumn::new().set_header("Note text"),
        ]),
    )?;
    notes_sheet.set_column_width(0, 14)?;
    notes_sheet.set_column_width(1, 110)?;
    Ok(())
}

#[cfg(test)]
mod excel_text_tests {
    use super::*;

    #[test]
    fn text_longer_than_an_excel_cell_is_cut_with_a_note() {
        let long = "é".repeat(40_000);
        let cut = excel_text(&long);
        assert_eq!(cut.chars().count(), EXCEL_CELL_CHARS);
        assert!(cut.ends_with("the CSV table has the whole text)"));
        assert_eq!(excel_text("short"), "short");
    }
}
