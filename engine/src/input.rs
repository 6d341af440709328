//! Reading inputs: reference lookups, population, aggregated counts and record-level activity.
//!
//! Reference tables, population and counts are read with the `csv` crate, every column as text;
//! the engine then works on small dictionaries and dense arrays. Record-level activity is
//! aggregated to distinct value combinations *before* any lookup is joined (SPEC: aggregate before
//! joining), so lookups run once per distinct value, not per record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use strata_api::{Area, DerivationShape, StratifiedCounts};

use crate::error::{Error, Result};

pub mod activity;
pub mod extract;
mod frame_table;
pub mod mapping;
pub mod practice_population;

/// A CSV read with every column as text.
pub struct TextTable {
    pub path: std::path::PathBuf,
    /// The header's names, as written (a UTF-8 byte-order mark before the first is dropped).
    names: Vec<String>,
    /// The data rows; a row shorter than the header has its last fields missing.
    rows: Vec<csv::StringRecord>,
}

impl TextTable {
    /// Reads a CSV (optionally gzip-, zlib- or zstd-compressed, told by its first bytes) with all
    /// columns as strings, checking that the required columns exist and are not duplicated.
    pub fn read(path: &Path, required: &[&str]) -> Result<TextTable> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(Error::data_hint(
                path,
                None,
                None,
                "the file is empty (not even a header row)".into(),
                "the export failed or was cut short; export the table again with its header row",
            ));
        }
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut open_text(path)?, &mut text)
            .map_err(|e| Error::io(path, e))?;
        check_layout(path, &text)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&text[..]);
        let mut records = reader.byte_records();
        let header = match records.next() {
            Some(record) => record.map_err(|e| csv_error(path, e))?,
            None => csv::ByteRecord::new(),
        };
        let names = header_names(path, &header)?;
        let mut rows = Vec::new();
        for (i, record) in records.enumerate() {
            let record = record.map_err(|e| csv_error(path, e))?;
            rows.push(text_row(path, &names, i + 1, record)?);
        }
        check_unique_header(path, &names)?;
        for c in required {
            if !names.iter().any(|n| n == c) {
                return Err(Error::data_hint(
                    path,
                    None,
                    Some(c),
                    format!("required column missing (found: {})", names.join(", ")),
                    "check the header row against the data contract in SPEC §3",
                ));
            }
        }
        Ok(TextTable {
            path: path.to_path_buf(),
            names,
            rows,
        })
    }

    pub fn height(&self) -> usize {
        self.rows.len()
    }

    /// The header's names, as written.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The header's name for `name` as written, matched ignoring letter case and spaces around
    /// it (published files vary in both).
    pub fn header_named(&self, name: &str) -> Option<&str> {
        let want = name.to_lowercase();
        self.names
            .iter()
            .find(|n| n.trim().to_lowercase() == want)
            .map(String::as_str)
    }

    /// A column's values, trimmed, `None` for empty or missing cells.
    pub fn column(&self, name: &str) -> Result<Vec<Option<&str>>> {
        let j =
            self.names.iter().position(|n| n == name).ok_or_else(|| {
                Error::data(&self.path, None, Some(name), "no such column".into())
            })?;
        Ok(self
            .rows
            .iter()
            .map(|r| r.get(j).map(str::trim).filter(|v| !v.is_empty()))
            .collect())
    }

    /// Refuses a table with a header and no data rows.
    pub fn require_rows(&self, what: &str) -> Result<()> {
        if self.height() == 0 {
            return Err(Error::data_hint(
                &self.path,
                None,
                None,
                format!("header only: no {what} rows"),
                "the export stopped after the header, or the wrong file is named in the recipe",
            ));
        }
        Ok(())
    }

    /// A column that must be filled on every row.
    pub fn required_column(&self, name: &str) -> Result<Vec<&str>> {
        self.column(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| {
                    Error::data_hint(
                        &self.path,
                        Some(i + 1),
                        Some(name),
                        "empty value in a required column".into(),
                        "every row needs a value here; remove the row or fill it in",
                    )
                })
            })
            .collect()
    }
}

/// The file's bytes, decompressed when its first bytes are a gzip, zlib or zstd header.
fn open_text(path: &Path) -> Result<Box<dyn std::io::Read>> {
    use std::io::{BufRead, BufReader};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut input = BufReader::new(file);
    let start = input.fill_buf().map_err(|e| Error::io(path, e))?;
    let magic = [0, 1, 2, 3].map(|i| start.get(i).copied());
    Ok(match magic {
        [Some(0x1f), Some(0x8b), ..] => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        [Some(0x78), Some(0x01 | 0x5e | 0x9c | 0xda), ..] => {
            Box::new(flate2::bufread::ZlibDecoder::new(input))
        }
        [Some(0x28), Some(0xb5), Some(0x2f), Some(0xfd)] => Box::new(
            zstd::stream::read::Decoder::with_buffer(input).map_err(|e| Error::io(path, e))?,
        ),
        _ => Box::new(input),
    })
}

/// Refuses what the csv crate would read silently but the file cannot mean (polars, which read
/// these tables before, refused them too): a blank line after the header (a row cut out, or a
/// second table pasted below), a quote inside an unquoted value, and a quote never closed (the
/// rest of the file would be one value). Rows count data rows from 1, as everywhere else.
fn check_layout(path: &Path, text: &[u8]) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        RecordStart,
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let refuse = |row: usize, column: Option<usize>, rule: &str, hint: &str| {
        let name = column.and_then(|c| header_field(text, c));
        Err(Error::data_hint(
            path,
            Some(row),
            name.as_deref(),
            rule.into(),
            hint,
        ))
    };
    let (mut at, mut records, mut field) = (At::RecordStart, 0usize, 0usize);
    let mut opened = (0, 0);
    for (i, &byte) in text.iter().enumerate() {
        let line_end = byte == b'\n' || byte == b'\r';
        at = match (at, byte) {
            (At::Quoted, b'"') => At::QuoteInQuoted,
            (At::Quoted, _) => At::Quoted,
            (At::QuoteInQuoted, b'"') => At::Quoted,
            // The `\n` of a CRLF, or the header's line end.
            (At::RecordStart, b'\n') if i > 0 && text[i - 1] == b'\r' => At::RecordStart,
            (At::RecordStart, _) if line_end && records == 0 => At::RecordStart,
            (At::RecordStart, _) if line_end => {
                return refuse(
                    records,
                    None,
                    "blank line (a line with no fields)",
                    "remove blank lines: they hold no row, and may be where part of the file was lost",
                );
            }
            (At::Unquoted, b'"') => {
                return refuse(
                    records,
                    Some(field),
                    "a quote inside an unquoted value",
                    "quote the whole value and double the quote inside it, e.g. \"5'10\"\"\"",
                );
            }
            (_, b'"') => {
                opened = (records, field);
                At::Quoted
            }
            (_, b',') => {
                field += 1;
                At::FieldStart
            }
            (_, _) if line_end => {
                (records, field) = (records + 1, 0);
                At::RecordStart
            }
            (_, _) => At::Unquoted,
        };
    }
    if at == At::Quoted {
        return refuse(
            opened.0,
            Some(opened.1),
            "a quote opened here is never closed: the rest of the file would be one value",
            "close the quote, or double a quote inside a quoted value (\"\")",
        );
    }
    Ok(())
}

/// The header's name of column `c` (for a message), read from the header line.
fn header_field(text: &[u8], c: usize) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let header = reader.byte_records().next()?.ok()?;
    Some(String::from_utf8_lossy(header.get(c)?).into_owned())
}

/// A read failure of the CSV parser (in practice the decompressor's, or the disk's).
fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::data_hint(
        path,
        e.position().map(|p| p.record() as usize),
        None,
        format!("cannot read as CSV: {e}"),
        "check that the file is a comma-separated table with a header row",
    )
}

/// The header's names; a missing header or one that is not UTF-8 is refused.
fn header_names(path: &Path, header: &csv::ByteRecord) -> Result<Vec<String>> {
    if header.is_empty() || (header.len() == 1 && header[0].iter().all(u8::is_ascii_whitespace)) {
        return Err(Error::data_hint(
            path,
            None,
            None,
            "cannot read as CSV: no header row (the file holds only blank lines)".into(),
            "the file has no header row",
        ));
    }
    header
        .iter()
        .map(|name| match std::str::from_utf8(name) {
            Ok(name) => Ok(name.to_string()),
            Err(e) => Err(Error::data_hint(
                path,
                None,
                None,
                format!(
                    "not UTF-8 text (byte 0x{:02X} in the header row)",
                    name[e.valid_up_to()]
                ),
                "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
            )),
        })
        .collect()
}

/// One data row (`row` counts from 1) as text: refused when it has more fields than the header,
/// or a field that is not UTF-8 (named by its column and first bad byte).
fn text_row(
    path: &Path,
    names: &[String],
    row: usize,
    record: csv::ByteRecord,
) -> Result<csv::StringRecord> {
    if record.len() > names.len() {
        return Err(Error::data_hint(
            path,
            Some(row),
            None,
            format!(
                "cannot read as CSV: the row has {} fields but the header has {}",
                record.len(),
                names.len()
            ),
            "a comma inside a value must be quoted (\"a,b\"); check that the file is a \
             comma-separated table with a header row",
        ));
    }
    csv::StringRecord::from_byte_record(record).map_err(|e| {
        let (field, at) = (e.utf8_error().field(), e.utf8_error().valid_up_to());
        let byte = e.into_byte_record()[field][at];
        Error::data_hint(
            path,
            Some(row),
            names.get(field).map(String::as_str),
            format!("not UTF-8 text (byte 0x{byte:02X})"),
            "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
        )
    })
}

/// A header naming a column twice is refused (a lookup cannot say which one it means).
fn check_unique_header(path: &Path, names: &[String]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::data_hint(
                path,
                None,
                Some(name),
                "column appears twice in the header row".into(),
                "each column must be named once; remove or rename the repeated one",
            ));
        }
    }
    Ok(())
}

/// Builds a code → index map, refusing duplicate keys.
pub(crate) fn unique_index<'a>(
    table: &TextTable,
    column: &str,
    codes: &[&'a str],
) -> Result<HashMap<&'a str, usize>> {
    let mut map = HashMap::with_capacity(codes.len());
    for (i, code) in codes.iter().enumerate() {
        if let Some(first) = map.insert(*code, i) {
            return Err(Error::data_hint(
                &table.path,
                Some(i + 1),
                Some(column),
                format!(
                    "duplicate key `{code}` (first on row {}): a lookup must name each key once",
                    first + 1
                ),
                "remove the repeated row, or fix the code if two keys were meant",
            ));
        }
    }
    Ok(map)
}

/// The areas of the year: `area_code, area_name`.
pub fn read_areas(path: &Path) -> Result<Vec<Area>> {
    let t = TextTable::read(path, &["area_code", "area_name"])?;
    let codes = t.required_column("area_code")?;
    let names = t.column("area_name")?;
    t.require_rows("area")?;
    unique_index(&t, "area_code", &codes)?;
    Ok(codes
        .iter()
        .zip(names)
        .map(|(c, n)| Area {
            code: c.to_string(),
            name: n.unwrap_or(c).to_string(),
        })
        .collect())
}

/// Each area's parent (`parent_code`, optional `parent_name`) when the areas file names them (a
/// practice's sub-ICB, a sub-ICB's ICB), in the areas' order; `None` without a `parent_code`
/// column.
pub fn read_area_parents(path: &Path) -> Result<Option<Vec<(String, String)>>> {
    let t = TextTable::read(path, &["area_code"])?;
    if !t.names.iter().any(|h| h == "parent_code") {
        return Ok(None);
    }
    let codes = t.required_column("parent_code")?;
    let names = match t.names.iter().any(|h| h == "parent_name") {
        true => t.column("parent_name")?,
        false => vec![None; codes.len()],
    };
    Ok(Some(
        codes
            .iter()
            .zip(names)
            .map(|(c, n)| (c.to_string(), n.unwrap_or(c).to_string()))
            .collect(),
    ))
}

/// Providers: `provider_code, provider_name`.
pub fn read_providers(path: &Path) -> Result<HashMap<String, String>> {
    let t = TextTable::read(path, &["provider_code", "provider_name"])?;
    let codes = t.required_column("provider_code")?;
    let names = t.column("provider_name")?;
    unique_index(&t, "provider_code", &codes)?;
    Ok(codes
        .iter()
        .zip(names)
        .map(|(c, n)| (c.to_string(), n.unwrap_or(c).to_string()))
        .collect())
}

fn area_lookup(areas: &[Area]) -> HashMap<&str, u32> {
    areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.code.as_str(), i as u32))
        .collect()
}

fn area_of(
    t: &TextTable,
    areas: &HashMap<&str, u32>,
    row: usize,
    column: &str,
    code: &str,
) -> Result<u32> {
    areas.get(code).copied().ok_or_else(|| {
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some(column),
            format!("area `{code}` is not in the recipe's areas file"),
            "the lookup and the areas file must be of the same year",
        )
    })
}

/// Practice → area: `practice_code, area_code`.
pub fn read_practices(path: &Path, areas: &[Area]) -> Result<HashMap<String, u32>> {
    let t = TextTable::read(path, &["practice_code", "area_code"])?;
    t.require_rows("practice")?;
    let codes = t.required_column("practice_code")?;
    let area_codes = t.required_column("area_code")?;
    unique_index(&t, "practice_code", &codes)?;
    let lookup = area_lookup(areas);
    let mut map = HashMap::with_capacity(codes.len());
    for (row, (p, a)) in codes.iter().zip(area_codes).enumerate() {
        map.insert(p.to_string(), area_of(&t, &lookup, row, "area_code", a)?);
    }
    Ok(map)
}

/// Valid practices outside the year's areas: `practice_code`.
pub fn read_non_english(path: &Path) -> Result<HashSet<String>> {
    let t = TextTable::read(path, &["practice_code"])?;
    let codes = t.required_column("practice_code")?;
    unique_index(&t, "practice_code", &codes)?;
    Ok(codes.into_iter().map(str::to_string).collect())
}

/// What the LSOA lookup says of one LSOA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsoaInfo {
    pub area: Option<u32>,
    pub imd_decile: Option<u8>,
}

/// LSOA → area (`lsoa11_code, area_code`), joined with LSOA → IMD decile
/// (`lsoa11_code, imd_decile`). An LSOA may have an area but no decile or the reverse.
pub fn read_lsoa(
    area_path: &Path,
    imd_path: &Path,
    areas: &[Area],
) -> Result<HashMap<String, LsoaInfo>> {
    let t = TextTable::read(area_path, &["lsoa11_code", "area_code"])?;
    t.require_rows("LSOA")?;
    let codes = t.required_column("lsoa11_code")?;
    let area_codes = t.column("area_code")?;
    unique_index(&t, "lsoa11_code", &codes)?;
    let lookup = area_lookup(areas);
    let mut map: HashMap<String, LsoaInfo> = HashMap::with_capacity(codes.len());
    for (row, (code, area)) in codes.iter().zip(area_codes).enumerate() {
        let area = area
            .map(|a| area_of(&t, &lookup, row, "area_code", a))
            .transpose()?;
        map.insert(
            code.to_string(),
            LsoaInfo {
                area,
                imd_decile: None,
            },
        );
    }
    let t = TextTable::read(imd_path, &["lsoa11_code", "imd_decile"])?;
    let codes = t.required_column("lsoa11_code")?;
    let deciles = t.column("imd_decile")?;
    unique_index(&t, "lsoa11_code", &codes)?;
    for (row, (code, decile)) in codes.iter().zip(deciles).enumerate() {
        let imd_decile = decile
            .map(|d| {
                let problem = match d.parse::<u8>() {
                    Ok(n) if (1..=10).contains(&n) => return Ok(n),
                    Ok(_) => "is outside 1 to 10",
                    Err(_) => "is not a whole number",
                };
                Err(Error::data_hint(
                    imd_path,
                    Some(row + 1),
                    Some("imd_decile"),
                    format!("`{d}` {problem}"),
                    "IMD deciles are whole numbers 1 (most deprived) to 10",
                ))
            })
            .transpose()?;
        map.entry(code.to_string())
            .or_insert(LsoaInfo {
                area: None,
                imd_decile: None,
            })
            .imd_decile = imd_decile;
    }
    Ok(map)
}

/// The year's exam-code list: `exam_code, measure`.
pub fn read_exam_codes(path: &Path) -> Result<Vec<(String, String)>> {
    let t = TextTable::read(path, &["exam_code", "measure"])?;
    t.require_rows("exam code")?;
    let codes = t.required_column("exam_code")?;
    let measures = t.required_column("measure")?;
    let mut seen = HashSet::new();
    for (row, (c, m)) in codes.iter().zip(&measures).enumerate() {
        if !seen.insert((*c, *m)) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("exam_code"),
                format!("duplicate key: exam code `{c}` listed twice for `{m}`"),
                "remove the repeated row",
            ));
        }
    }
    Ok(codes
        .into_iter()
        .zip(measures)
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect())
}

/// A stage's `data` file as a plugin parameter: an array of tables, one per data row, each
/// cell the row's trimmed text under its column's name (empty cells left out), so the plugin
/// checks the values and a refused one names its row (`key[i]`, data row i + 1).
pub fn read_stage_data(path: &Path) -> Result<toml::Value> {
    let t = TextTable::read(path, &[])?;
    t.require_rows("data")?;
    let rows = t
        .rows
        .iter()
        .map(|row| {
            let table: toml::Table = t
                .names
                .iter()
                .zip(row.iter())
                .map(|(name, value)| (name.clone(), value.trim()))
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name, toml::Value::String(value.to_string())))
                .collect();
            toml::Value::Table(table)
        })
        .collect();
    Ok(toml::Value::Array(rows))
}

/// Parses a non-negative population (estimates may be fractional).
fn population_value(t: &TextTable, row: usize, text: &str) -> Result<f64> {
    let value: f64 = text.parse().map_err(|_| {
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some("population"),
            format!("`{text}` is not a number"),
            "a population is a number of people, written in digits",
        )
    })?;
    if !value.is_finite() || value < 0.0 {
        return Err(Error::data_hint(
            &t.path,
            Some(row + 1),
            Some("population"),
            format!("`{text}` is not a non-negative population"),
            "a population is a number of people, 0 or more",
        ));
    }
    Ok(value)
}

/// Parses a whole, non-negative count.
pub(crate) fn count_value(t: &TextTable, row: usize, column: &str, text: &str) -> Result<f64> {
    let value: f64 = text.parse().map_err(|_| {
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some(column),
            format!("`{text}` is not a number"),
            "counts and populations are whole numbers of people or tests, e.g. 42",
        )
    })?;
    let problem = if !value.is_finite() {
        Some("is not a finite number")
    } else if value < 0.0 {
        Some("is negative")
    } else if value.fract() != 0.0 {
        Some("is not a whole number")
    } else if value > 9_007_199_254_740_992.0 {
        // Beyond 2^53 a float no longer holds every whole number: sums would be silently wrong.
        Some("is beyond 2^53, where counts are no longer exact")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(Error::data_hint(
            &t.path,
            Some(row + 1),
            Some(column),
            format!("`{text}` {problem}: a count must be a whole, non-negative number"),
            "counts and populations are whole numbers of people or tests, e.g. 42",
        ));
    }
    Ok(value)
}

/// Index of a category code in a dimension, or a data error naming the row.
fn category(
    t: &TextTable,
    row: usize,
    column: &str,
    categories: &HashMap<&str, usize>,
    value: &str,
) -> Result<usize> {
    categories.get(value).copied().ok_or_else(|| {
        let mut known: Vec<&&str> = categories.keys().collect();
        known.sort();
        Error::data_hint(
            &t.path,
            Some(row + 1),
            Some(column),
            format!(
                "unknown value `{value}` (expected one of: {})",
                known
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "aggregated inputs use the recipe derivation's codes (SPEC §3); recode the value",
        )
    })
}

/// The dimensions every stratified table uses, in cell order.
pub fn dimensions(shape: &DerivationShape) -> Vec<strata_api::Dimension> {
    vec![
        shape.imd_quintile.clone(),
        shape.sex.clone(),
        shape.age_band.clone(),
    ]
}

fn category_map(d: &strata_api::Dimension) -> HashMap<&str, usize> {
    d.categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect()
}

fn category_maps(shape: &DerivationShape) -> [HashMap<&str, usize>; 3] {
    [
        category_map(&shape.imd_quintile),
        category_map(&shape.sex),
        category_map(&shape.age_band),
    ]
}

/// The `area_code, sex, age_band, imd_quintile` columns that population and counts files share,
/// resolved row by row to an area and a stratum cell.
struct StratumKeys<'t, 's> {
    table: &'t TextTable,
    areas: HashMap<String, u32>,
    imd: HashMap<&'s str, usize>,
    sex: HashMap<&'s str, usize>,
    age: HashMap<&'s str, usize>,
    area_col: Vec<&'t str>,
    sex_col: Vec<&'t str>,
    age_col: Vec<&'t str>,
    imd_col: Vec<&'t str>,
}

impl<'t, 's> StratumKeys<'t, 's> {
    fn new(
        table: &'t TextTable,
        counts: &StratifiedCounts,
        shape: &'s DerivationShape,
        unknown: bool,
    ) -> Result<Self> {
        let [mut imd, mut sex, mut age] = category_maps(shape);
        // Counts made elsewhere (`strata sql`) keep records of an unknown value in each
        // dimension's last category, as the record-level pass does; a population never has one.
        if unknown {
            for map in [&mut imd, &mut sex, &mut age] {
                map.insert(strata_api::UNKNOWN_CATEGORY, map.len());
            }
        }
        Ok(StratumKeys {
            table,
            areas: area_lookup(&counts.areas)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            imd,
            sex,
            age,
            area_col: table.required_column("area_code")?,
            sex_col: table.required_column("sex")?,
            age_col: table.required_column("age_band")?,
            imd_col: table.required_column("imd_quintile")?,
        })
    }

    /// (area index, cell index) of a row, or an error naming its row and column.
    fn at(&self, row: usize, counts: &StratifiedCounts) -> Result<(usize, usize)> {
        let t = self.table;
        let area = *self.areas.get(self.area_col[row]).ok_or_else(|| {
            Error::data_hint(
                &t.path,
                Some(row + 1),
                Some("area_code"),
                format!(
                    "area `{}` is not in the recipe's areas file",
                    self.area_col[row]
                ),
                "the file and the areas file must be of the same year and area kind",
            )
        })? as usize;
        let coords = [
            category(t, row, "imd_quintile", &self.imd, self.imd_col[row])?,
            category(t, row, "sex", &self.sex, self.sex_col[row])?,
            category(t, row, "age_band", &self.age, self.age_col[row])?,
        ];
        Ok((area, counts.cell_index(&coords)))
    }
}

/// Population `area_code, sex, age_band, imd_quintile, population` into `counts.population`.
pub fn read_population(
    path: &Path,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    population_from(TextTable::read(path, &POPULATION_COLUMNS)?, counts, shape)
}

/// The population's columns (SPEC §3).
pub const POPULATION_COLUMNS: [&str; 5] =
    ["area_code", "sex", "age_band", "imd_quintile", "population"];

/// The aggregated counts' columns (SPEC §3).
pub const COUNTS_COLUMNS: [&str; 6] = [
    "area_code",
    "sex",
    "age_band",
    "imd_quintile",
    "measure",
    "tests",
];

/// A population handed over in memory ([`crate::pipeline::InputFrame`]), read as its file would
/// be.
pub fn population_from_frame(
    frame: &crate::pipeline::InputFrame,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    let t = TextTable::from_batches(Path::new(&frame.label), &frame.batches, &POPULATION_COLUMNS)?;
    population_from(t, counts, shape)
}

/// Aggregated counts handed over in memory, read as their file would be.
pub fn counts_from_frame(
    frame: &crate::pipeline::InputFrame,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    let t = TextTable::from_batches(Path::new(&frame.label), &frame.batches, &COUNTS_COLUMNS)?;
    counts_from(t, counts, shape)
}

fn population_from(
    t: TextTable,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    let path = t.path.as_path();
    t.require_rows("population")?;
    let keys = StratumKeys::new(&t, counts, shape, false)?;
    let pop_col = t.required_column("population")?;
    let mut seen = HashSet::new();
    for (row, text) in pop_col.iter().enumerate() {
        let (area, cell) = keys.at(row, counts)?;
        let value = population_value(&t, row, text)?;
        if !seen.insert((area, cell)) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some("area_code"),
                "duplicate key: the same area × sex × age band × IMD quintile appears twice".into(),
                "each stratum has one population row; sum or remove the repeated one",
            ));
        }
        counts.population_of_mut(area)[cell] += value;
    }
    Ok(t.height())
}
/// Aggregated counts `area_code, sex, age_band, imd_quintile, measure, tests` into `counts.tests`.
pub fn read_counts(
    path: &Path,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    counts_from(TextTable::read(path, &COUNTS_COLUMNS)?, counts, shape)
}

fn counts_from(
    t: TextTable,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    t.require_rows("count")?;
    // Counts with an `unknown` category on each dimension take rows of it.
    let unknown = counts.dimensions[0].categories.len() > shape.imd_quintile.categories.len();
    let keys = StratumKeys::new(&t, counts, shape, unknown)?;
    let measures: HashMap<&str, usize> = shape
        .measures
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let measure_col = t.required_column("measure")?;
    let tests_col = t.required_column("tests")?;
    // A stratum counted twice (a query that grouped by one column too many) would be summed
    // silently: each measure × area × stratum has one row.
    let mut first_row: HashMap<(usize, usize, usize), usize> = HashMap::new();
    for row in 0..t.height() {
        let (area, cell) = keys.at(row, counts)?;
        let measure = category(&t, row, "measure", &measures, measure_col[row])?;
        let value = count_value(&t, row, "tests", tests_col[row])?;
        if let Some(first) = first_row.insert((measure, area, cell), row) {
            return Err(Error::data_hint(
                &t.path,
                Some(row + 1),
                Some("area_code"),
                format!(
                    "duplicate stratum: the same area × sex × age band × IMD quintile × measure \
                     is on row {} too",
                    first + 1
                ),
                "each stratum has one count row; sum the rows in the query (GROUP BY all five)",
            ));
        }
        counts.tests_of_mut(measure, area)[cell] += value;
    }
    // A measure the recipe publishes with no row at all is a query that left it out (or a recipe
    // for other data): its rates would all be zero, as if no test had been done.
    let mut with_rows = vec![false; shape.measures.len()];
    for (measure, _, _) in first_row.keys() {
        with_rows[*measure] = true;
    }
    let missing: Vec<&str> = shape
        .measures
        .iter()
        .zip(&with_rows)
        .filter(|(_, has)| !**has)
        .map(|(m, _)| m.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::data_hint(
            &t.path,
            None,
            Some("measure"),
            format!(
                "no rows at all for {} of the recipe's measures: {} (rates of a measure with no \
                 rows would all be zero)",
                missing.len(),
                missing.join(", ")
            ),
            "add the measure's rows to the query, or leave the measure out of the recipe's \
             derivation (e.g. rules.did's `modalities` and `edoc_measures`)",
        ));
    }
    Ok(t.height())
}

/// "31 of 1040 records (3.0%) have <what> (`9`, `X`); <consequence>", or `None` when no record does.
pub fn unknown_values_warning(
    records: f64,
    values: &std::collections::BTreeSet<String>,
    total: f64,
    what: &str,
    consequence: &str,
) -> Option<String> {
    if records <= 0.0 || total <= 0.0 {
        return None;
    }
    let shown: Vec<String> = values.iter().take(5).map(|v| format!("`{v}`")).collect();
    let more = if values.len() > 5 { ", ..." } else { "" };
    Some(format!(
        "{records} of {total} records ({:.1}%) have {what} ({}{more}); {consequence}",
        100.0 * records / total,
        shown.join(", ")
    ))
}

/// SHA-256 of a file, for the manifest.
/// SHA-256 of record batches as their Arrow IPC stream: the checksum of an activity frame handed
/// over in memory (the same batches, the same checksum).
pub fn frame_checksum(label: &Path, batches: &[arrow_array::RecordBatch]) -> Result<String> {
    use sha2::{Digest, Sha256};
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let Some(first) = batches.first() else {
        return Ok(crate::recipe::hex(&Sha256::new().finalize()));
    };
    let failed = |e: arrow_schema::ArrowError| {
        Error::data_hint(
            label,
            None,
            None,
            format!("cannot checksum the frame: {e}"),
            "hand over a table of plain columns",
        )
    };
    let mut writer =
        arrow_ipc::writer::StreamWriter::try_new(Hashing(Sha256::new()), &first.schema())
            .map_err(failed)?;
    for batch in batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    let hashing = writer.into_inner().map_err(failed)?;
    Ok(crate::recipe::hex(&hashing.0.finalize()))
}

pub fn checksum(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::recipe::hex(&hasher.finalize()))
}

/// Distinct values in first-seen order with their index, for dictionary-level lookups.
pub struct Dictionary<T: std::hash::Hash + Eq + Clone> {
    pub values: Vec<T>,
    index: HashMap<T, usize>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Dictionary<T> {
    fn default() -> Self {
        Dictionary {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Dictionary<T> {
    pub fn intern(&mut self, value: &T) -> usize {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.values.len();
        self.values.push(value.clone());
        self.index.insert(value.clone(), i);
        i
    }
}

/// Sorted map helper for deterministic output.
pub type Sorted<K, V> = BTreeMap<K, V>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `bytes` to a file of its own under the system's temporary folder.
    fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn cells(t: &TextTable, column: &str) -> Vec<Option<String>> {
        let values = t.column(column).expect("column");
        values.into_iter().map(|v| v.map(str::to_string)).collect()
    }

    fn message(result: Result<TextTable>) -> String {
        match result {
            Ok(_) => panic!("the table was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bom_crlf_quotes_and_short_rows() {
        let path = file(
            "forms.csv",
            b"\xEF\xBB\xBFcode,name,extra\r\n\
              A1,\"Name, with comma\",x\r\n\
              A2,\"say \"\"hi\"\"\"\r\n\
              \" A3 \",\"two\nlines\",\r\n\
              A4,,\"\"\r\n",
        );
        let t = TextTable::read(&path, &["code", "name"]).expect("read");
        assert_eq!(t.height(), 4);
        let s = |v: &str| Some(v.to_string());
        assert_eq!(cells(&t, "code"), [s("A1"), s("A2"), s("A3"), s("A4")]);
        assert_eq!(
            cells(&t, "name"),
            [
                s("Name, with comma"),
                s("say \"hi\""),
                s("two\nlines"),
                None
            ]
        );
        // A short row's missing fields, an empty field and `""` are all no value.
        assert_eq!(cells(&t, "extra"), [s("x"), None, None, None]);
    }

    #[test]
    fn compressed_tables_read_as_the_plain_one() {
        let plain = b"code,name\nA1,First\nA2,Second\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(plain).expect("gzip");
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(plain).expect("zlib");
        let zstd = zstd::encode_all(&plain[..], 3).expect("zstd");
        for (name, bytes) in [
            ("plain.csv", plain.to_vec()),
            ("gz.csv.gz", gz.finish().expect("gzip")),
            ("zlib.csv", zlib.finish().expect("zlib")),
            ("zstd.csv.zst", zstd),
        ] {
            let t = TextTable::read(&file(name, &bytes), &["code", "name"]).expect(name);
            let want = [Some("First".to_string()), Some("Second".to_string())];
            assert_eq!(cells(&t, "name"), want, "{name}");
        }
    }

    #[test]
    fn refusals_name_the_row_column_and_rule() {
        let err = message(TextTable::read(&file("empty.csv", b""), &[]));
        assert!(err.contains("the file is empty"), "{err}");
        let err = message(TextTable::read(&file("blank.csv", b"\n\n"), &[]));
        assert!(err.contains("no header row"), "{err}");
        let err = message(TextTable::read(
            &file("bad.csv", b"code,name\nA1,ok\nA2,\"Caf\xE9, bar\"\n"),
            &[],
        ));
        assert!(
            err.contains("row 2 (line 3), column `name`: not UTF-8 text (byte 0xE9)"),
            "{err}"
        );
        let err = message(TextTable::read(&file("head.csv", b"co\xFFde\nA1\n"), &[]));
        assert!(err.contains("byte 0xFF in the header row"), "{err}");
        let err = message(TextTable::read(
            &file("wide.csv", b"code,name\nA1,ok\nA2,b,c\n"),
            &[],
        ));
        assert!(err.contains("row 2 (line 3)"), "{err}");
        assert!(
            err.contains("the row has 3 fields but the header has 2"),
            "{err}"
        );
        let err = message(TextTable::read(&file("twice.csv", b"a,b,a\n1,2,3\n"), &[]));
        assert!(err.contains("column `a`: column appears twice"), "{err}");
        // What polars refused and the csv crate would read silently (same rows as polars named).
        for (name, bytes, want) in [
            (
                "blank-mid.csv",
                &b"code,name\nA1,x\n\nA2,y\n"[..],
                "row 2 (line 3): blank line",
            ),
            (
                "blank-end.csv",
                b"code,name\r\nA1,x\r\n\r\n",
                "row 2 (line 3): blank line",
            ),
            (
                "blank-first.csv",
                b"code,name\n\nA1,x\n",
                "row 1 (line 2): blank line",
            ),
            (
                "stray.csv",
                b"code,name\nA1,x\nA2,Al\"pha\n",
                "row 2 (line 3), column `name`: a quote inside an unquoted value",
            ),
            (
                "unclosed.csv",
                b"code,name\nA1,\"x\nA2,y\n",
                "row 1 (line 2), column `name`: a quote opened here is never closed",
            ),
        ] {
            let err = message(TextTable::read(&file(name, bytes), &[]));
            assert!(err.contains(want), "{name}: {err}");
        }
        // Blank lines before the header, a quoted line end and a final line end are fine.
        let t = TextTable::read(&file("fine.csv", b"\n\ncode,name\nA1,\"x\n\"\"y\"\n"), &[])
            .expect("read");
        assert_eq!(cells(&t, "name"), [Some("x\n\"y".to_string())]);
        let err = message(TextTable::read(&file("miss.csv", b"a\n1\n"), &["b"]));
        assert!(
            err.contains("column `b`: required column missing (found: a)"),
            "{err}"
        );
    }
}
