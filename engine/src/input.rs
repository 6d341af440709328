//! Reading inputs: reference lookups, population, aggregated counts and record-level activity.
//!
//! Everything is read through polars; the engine then works on small dictionaries and dense
//! arrays. Record-level activity is aggregated to distinct value combinations *before* any lookup
//! is joined (SPEC: aggregate before joining), so lookups run once per distinct value, not per record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use polars::prelude::*;
use strata_api::{Area, DerivationShape, StratifiedCounts};

use crate::error::{Error, Result};

pub mod activity;
pub mod extract;
pub mod mapping;

/// A CSV read with every column as text.
pub struct TextTable {
    pub path: std::path::PathBuf,
    pub frame: DataFrame,
}

impl TextTable {
    /// Reads a CSV (optionally gzip-compressed) with all columns as strings, checking that the
    /// required columns exist and are not duplicated.
    pub fn read(path: &Path, required: &[&str]) -> Result<TextTable> {
        let frame = without_panic(path, || {
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
                .map_err(|e| read_error(path, e))
        })?;
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
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
            frame,
        })
    }

    pub fn height(&self) -> usize {
        self.frame.height()
    }

    /// A column's values, `None` for empty cells.
    pub fn column(&self, name: &str) -> Result<Vec<Option<&str>>> {
        let col = self
            .frame
            .column(name)
            .and_then(|c| c.str())
            .map_err(|e| Error::data(&self.path, None, Some(name), e.to_string()))?;
        Ok(col
            .iter()
            .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
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

fn read_error(path: &Path, e: PolarsError) -> Error {
    let message = e.to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Error::data_hint(
            path,
            None,
            None,
            "the file is empty (not even a header row)".into(),
            "the export failed or was cut short; export the table again with its header row",
        );
    }
    if message.contains("utf-8") || message.contains("utf8") {
        let (row, column, detail) = locate_invalid_utf8(path);
        return Error::data_hint(
            path,
            row,
            column.as_deref(),
            format!("not UTF-8 text{detail}"),
            "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
        );
    }
    let hint = if message.contains("empty") {
        "the file has no header row"
    } else {
        "check that the file is a comma-separated table with a header row"
    };
    Error::data_hint(
        path,
        None,
        None,
        format!("cannot read as CSV: {message}"),
        hint,
    )
}

/// Runs a polars read, turning a panic inside it into a data error: a malformed file must give an
/// error naming it, never abort the run.
fn without_panic<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::data_hint(
            path,
            None,
            None,
            format!("cannot read as CSV: the reader failed ({what})"),
            "check that the file is a comma-separated table with a header row",
        ))
    })
}

/// Where the first byte that is not UTF-8 is: (1-based data row, column, detail), read from the
/// raw bytes because the CSV reader only says that there is one.
fn locate_invalid_utf8(path: &Path) -> (Option<usize>, Option<String>, String) {
    let Ok(bytes) = std::fs::read(path) else {
        return (None, None, String::new());
    };
    // Compressed files: the raw bytes say nothing about rows.
    if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return (None, None, String::new());
    }
    let mut lines = bytes.split(|b| *b == b'\n');
    let header = lines.next().unwrap_or_default();
    let names: Vec<String> = String::from_utf8_lossy(header)
        .trim_end_matches('\r')
        .split(',')
        .map(|n| n.trim().trim_matches('"').to_string())
        .collect();
    let describe = |line: &[u8]| -> Option<(usize, u8)> {
        let err = std::str::from_utf8(line).err()?;
        let at = err.valid_up_to();
        let column = line[..at].iter().filter(|b| **b == b',').count();
        Some((column, line[at]))
    };
    if let Some((_, byte)) = describe(header) {
        return (
            None,
            None,
            format!(" (byte 0x{byte:02X} in the header row)"),
        );
    }
    for (i, line) in lines.enumerate() {
        if let Some((column, byte)) = describe(line) {
            return (
                Some(i + 1),
                names.get(column).cloned(),
                format!(" (byte 0x{byte:02X})"),
            );
        }
    }
    (None, None, String::new())
}

/// The CSV reader renames a repeated header to `name_duplicated_0`; say so plainly instead.
fn check_unique_header(path: &Path, names: &[String]) -> Result<()> {
    for name in names {
        if let Some((original, _)) = name.rsplit_once("_duplicated_")
            && names.iter().any(|n| n == original)
        {
            return Err(Error::data_hint(
                path,
                None,
                Some(original),
                "column appears twice in the header row".into(),
                "each column must be named once; remove or rename the repeated one",
            ));
        }
    }
    Ok(())
}

/// Builds a code → index map, refusing duplicate keys.
fn unique_index<'a>(
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
fn count_value(t: &TextTable, row: usize, column: &str, text: &str) -> Result<f64> {
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
    ) -> Result<Self> {
        let [imd, sex, age] = category_maps(shape);
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
    let t = TextTable::read(
        path,
        &["area_code", "sex", "age_band", "imd_quintile", "population"],
    )?;
    t.require_rows("population")?;
    let keys = StratumKeys::new(&t, counts, shape)?;
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
    let t = TextTable::read(
        path,
        &[
            "area_code",
            "sex",
            "age_band",
            "imd_quintile",
            "measure",
            "tests",
        ],
    )?;
    t.require_rows("count")?;
    let keys = StratumKeys::new(&t, counts, shape)?;
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
