//! Writing a run: every table as CSV, and `manifest.json`, into a temporary folder that replaces
//! the output folder only when everything is written — a failed run leaves earlier outputs intact.

use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_api::{Table, Value};

use crate::error::{Error, Result};
use crate::pipeline::{PluginUse, RunResults, StageRecord};

/// Whether a column holds p-values (`p_value`, or a name ending in `_p_value`).
pub fn is_p_value_column(name: &str) -> bool {
    name == "p_value" || name.ends_with("_p_value")
}

/// A p-value as written to CSV: scientific notation with 6 significant digits and a signed
/// exponent of at least two digits (`1.23456e-12`, `5.00000e-01`, `0.00000e+00`), so a p-value
/// far below the fixed float precision keeps its digits. Rust's float formatting rounds exactly,
/// so the bytes are the same on every platform.
pub fn p_value_text(p: f64) -> String {
    let text = format!("{p:.5e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        // `{:e}` always writes an exponent; kept as it is were it not to.
        None => text,
    }
}

/// How one column is written: all-whole-number columns as integers, other numbers at the fixed
/// float precision, p-value columns as [`p_value_text`], anything with text as text.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum ColumnKind {
    Text,
    PValue,
    Integer,
    Float,
}

pub fn column_kind(table: &Table, j: usize) -> ColumnKind {
    let cells = || {
        table
            .rows
            .iter()
            .map(move |r| r.get(j).unwrap_or(&Value::Missing))
    };
    if cells().any(|v| matches!(v, Value::Text(_))) {
        return ColumnKind::Text;
    }
    if is_p_value_column(&table.columns[j]) {
        return ColumnKind::PValue;
    }
    let mut finite = cells()
        .filter_map(|v| match v {
            Value::Number(n) if n.is_finite() => Some(*n),
            _ => None,
        })
        .peekable();
    // An i64 holds every whole number below 9e15 exactly; a column with no number is a float one.
    let any = finite.peek().is_some();
    if any && finite.all(|v| v.fract() == 0.0 && v.abs() < 9e15) {
        ColumnKind::Integer
    } else {
        ColumnKind::Float
    }
}

/// One cell's text, `None` for a missing cell (written as nothing). Non-finite numbers are missing,
/// except in a text column, where a number is written as Rust displays it.
fn cell_text(kind: ColumnKind, value: &Value, float_precision: usize) -> Option<String> {
    match (kind, value) {
        (_, Value::Missing) => None,
        (ColumnKind::Text, Value::Text(s)) => Some(s.clone()),
        (ColumnKind::Text, Value::Number(n)) => Some(n.to_string()),
        (_, Value::Number(n)) if !n.is_finite() => None,
        (ColumnKind::PValue, Value::Number(n)) => Some(p_value_text(*n)),
        (ColumnKind::Integer, Value::Number(n)) => Some((*n as i64).to_string()),
        (ColumnKind::Float, Value::Number(n)) => Some(format!("{n:.float_precision$}")),
        // Only a text column holds text (see `column_kind`).
        (_, Value::Text(s)) => Some(s.clone()),
    }
}

/// Appends one field: quoted (quotes doubled) by csv-core when it holds a comma, a quote, CR or
/// LF; an empty string as `""` so that it differs from a missing cell, which is written as nothing.
fn push_field(out: &mut Vec<u8>, text: Option<&str>) {
    let Some(text) = text else {
        return;
    };
    if text.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let mut writer = csv_core::WriterBuilder::new()
        .quote_style(csv_core::QuoteStyle::Necessary)
        .terminator(csv_core::Terminator::Any(b'\n'))
        .build();
    let start = out.len();
    // At most two quotes plus every byte doubled (csv-core's bound for one field).
    out.resize(start + 2 + 2 * text.len(), 0);
    let (_, _, written) = writer.field(text.as_bytes(), &mut out[start..]);
    let (_, closing) = writer.finish(&mut out[start + written..]);
    out.truncate(start + written + closing);
}

/// CSV text of a table at fixed float precision (same numbers, same bytes): a header row, then
/// one line per row, `,` between fields and `\n` after each line.
pub fn csv_bytes(table: &Table, float_precision: usize) -> Vec<u8> {
    let kinds: Vec<ColumnKind> = (0..table.columns.len())
        .map(|j| column_kind(table, j))
        .collect();
    let mut out = Vec::new();
    for (j, name) in table.columns.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        push_field(&mut out, Some(name));
    }
    out.push(b'\n');
    for row in &table.rows {
        for (j, kind) in kinds.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let value = row.get(j).unwrap_or(&Value::Missing);
            push_field(
                &mut out,
                cell_text(*kind, value, float_precision).as_deref(),
            );
        }
        out.push(b'\n');
    }
    out
}

#[derive(Serialize)]
pub struct Manifest {
    pub strata_version: String,
    pub recipe: String,
    pub recipe_name: String,
    pub year: String,
    pub recipe_fingerprint: String,
    /// SHA-256 of everything that decides the outputs: the recipe fingerprint, each plugin's id,
    /// version and origin, every input's checksum, the synthetic year's config checksum, scale
    /// and seed, and the published figures' checksum. Same run fingerprint, same outputs.
    pub run_fingerprint: String,
    pub plugins: Vec<PluginUse>,
    /// The synthetic year the run counted, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticRecord>,
    /// The published figures the recipe names (what `strata verify` compares with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<InputRecord>,
    /// SHA-256 of each input file, keyed by its recipe name.
    pub inputs: std::collections::BTreeMap<String, InputRecord>,
    /// The input mapping the extract was read through, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_mapping: Option<crate::input::mapping::InputMapping>,
    pub stages: Vec<StageRecord>,
    pub outputs: Vec<OutputRecord>,
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
pub struct SyntheticRecord {
    /// The calibration config and its SHA-256.
    pub config: String,
    pub sha256: String,
    pub scale: f64,
    pub seed: u64,
    /// How the record counts were drawn (`poisson` or `systematic`).
    pub sampling: String,
    /// The recipe's areas are made of the synthetic year's practices (absent when not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub areas_from_practices: bool,
}

#[derive(Serialize)]
pub struct InputRecord {
    pub path: String,
    pub sha256: String,
    pub rows: Option<u64>,
}

#[derive(Serialize)]
pub struct OutputRecord {
    pub file: String,
    pub rows: usize,
    /// The columns the table's stage declared as published counts (what disclosure protects).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<String>,
}

/// Files of a finished run, ready to write.
pub struct RunFiles {
    pub files: Vec<(String, Vec<u8>)>,
}

impl RunFiles {
    /// CSV per table; the manifest is added by [`write_run`].
    pub fn from_results(
        results: &RunResults,
        float_precision: usize,
    ) -> Result<(RunFiles, Vec<OutputRecord>)> {
        let mut files = Vec::new();
        let mut records = Vec::new();
        for t in &results.tables {
            let name = format!("{}.csv", t.name);
            records.push(OutputRecord {
                file: name.clone(),
                rows: t.rows.len(),
                counts: t.counts.clone(),
            });
            files.push((name, csv_bytes(t, float_precision)));
        }
        Ok((RunFiles { files }, records))
    }
}

/// Milliseconds to sleep after each file, from `STRATA_TEST_SLOW_WRITE` (tests only: it widens the
/// window in which a test can kill a run midway through writing; unset or unparsable means 0).
fn slow_write_pause() -> Option<std::time::Duration> {
    std::env::var("STRATA_TEST_SLOW_WRITE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis)
}

/// Whether the process that named a leftover folder `<...>-<pid>` is gone (Linux: no `/proc/<pid>`).
/// Elsewhere we cannot tell, so nothing is treated as stale.
fn process_gone(pid: &str) -> bool {
    cfg!(target_os = "linux")
        && pid.chars().all(|c| c.is_ascii_digit())
        && Path::new("/proc").is_dir()
        && !Path::new("/proc").join(pid).exists()
}

/// Tidies what a killed run left beside `dir`: its temporary folder is removed, and if it was killed
/// between its two renames (so `dir` is missing), the previous outputs are put back.
fn recover_killed_runs(parent: &Path, name: &str, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let tmp_prefix = format!(".{name}.tmp-");
    let old_prefix = format!(".{name}.old-");
    let mut leftovers: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    leftovers.sort();
    for path in leftovers {
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if let Some(pid) = file.strip_prefix(&tmp_prefix)
            && process_gone(pid)
        {
            let _ = std::fs::remove_dir_all(&path);
        } else if let Some(pid) = file.strip_prefix(&old_prefix)
            && process_gone(pid)
        {
            if dir.exists() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::rename(&path, dir);
            }
        }
    }
}

/// Whether `dir` is a folder strata may replace: absent, empty, or holding the `manifest.json` of
/// an earlier strata run. strata never deletes what it did not write.
fn replaceable(dir: &Path) -> std::result::Result<(), String> {
    // Absent (or unreadable, or under a file): nothing of anyone's is there to delete, and
    // writing reports what stands in the way.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let manifest = std::fs::read(dir.join("manifest.json")).ok();
    let written_by_strata = manifest
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|m| {
            m.get("strata_version").is_some() && m.get("recipe_fingerprint").is_some()
        });
    if written_by_strata {
        return Ok(());
    }
    names.sort();
    let shown: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 3 { ", ..." } else { "" };
    Err(format!(
        "it holds files strata did not write ({}{more}) and no strata manifest",
        shown.join(", ")
    ))
}

/// Checks, before any data is read, that the outputs may go to `dir`: it holds none of the run's
/// own files (the recipe, an input) and is absent, empty or an earlier strata run's folder.
pub fn check_output_dir(dir: &Path, own_files: &[&Path]) -> Result<()> {
    let refuse = |why: String, hint: &str| {
        Err(Error::Usage(format!(
            "{}: will not write the outputs here: {why} (hint: {hint})",
            dir.display()
        )))
    };
    let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let folder = folder.canonicalize().unwrap_or(folder);
    for file in own_files {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let file = file.canonicalize().unwrap_or(file);
        if file.starts_with(&folder) {
            return refuse(
                format!("it holds `{}`, which this run reads", file.display()),
                "choose an output folder of its own, e.g. `--out out/my-run`",
            );
        }
    }
    // The run writes beside the folder, in `.<name>.tmp-<pid>` (and `.old-`), which must fit in
    // a file name (255 bytes on common file systems).
    const TEMPORARY_EXTRA: usize = ".".len() + ".tmp-".len() + 10;
    if let Some(name) = dir.file_name()
        && name.len() + TEMPORARY_EXTRA > 255
    {
        return refuse(
            format!(
                "its name is {} bytes, too long for the temporary folder strata writes beside it",
                name.len()
            ),
            "use a folder name of at most 239 bytes",
        );
    }
    match replaceable(dir) {
        Ok(()) => Ok(()),
        Err(why) => refuse(
            why,
            "choose a new or empty folder (`--out`), or move those files; strata replaces only \
             folders it wrote",
        ),
    }
}

/// Writes every file into `.<dir>.tmp-<pid>`, then swaps it in place of `dir`. Until the swap, `dir`
/// is untouched: a run that fails, or is killed, while writing leaves the previous outputs as they
/// were (and the next run tidies its temporary folder).
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::output(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    recover_killed_runs(parent, &name, dir);
    if dir.exists() && !dir.is_dir() {
        return Err(Error::output(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file, not a folder, has this name",
            ),
        ));
    }
    // Checked before the run too; again here, as the folder may have changed meanwhile.
    if let Err(why) = replaceable(dir) {
        return Err(Error::Usage(format!(
            "{}: will not replace the folder: {why}",
            dir.display()
        )));
    }
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.tmp-{pid}"));
    let old = parent.join(format!(".{name}.old-{pid}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::output(&tmp, e))?;
    let pause = slow_write_pause();
    let result = (|| {
        for (file, bytes) in files {
            let path = tmp.join(file);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(|e| Error::output(p, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| Error::output(&path, e))?;
            if let Some(pause) = pause {
                std::thread::sleep(pause);
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            Error::output(dir, e)
        })?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        // Put the previous outputs back.
        let _ = std::fs::rename(&old, dir);
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::output(dir, e));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

pub fn manifest_bytes(manifest: &Manifest) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(manifest).map_err(|e| Error::Usage(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub fn relative(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_in_scientific_notation() {
        for (p, want) in [
            (1.234_56e-12, "1.23456e-12"),
            (1.234_565_1e-12, "1.23457e-12"),
            (5.626_162_325_361_21e-12, "5.62616e-12"),
            (1.523_970_604_832_11e-23, "1.52397e-23"),
            (0.5, "5.00000e-01"),
            (0.012_3, "1.23000e-02"),
            (1.0, "1.00000e+00"),
            (0.0, "0.00000e+00"),
            (5e-324, "4.94066e-324"),
        ] {
            assert_eq!(p_value_text(p), want, "{p:e}");
            // Read back, it is the same number to 6 significant digits.
            let back: f64 = want.parse().expect("a number");
            assert!((back - p).abs() <= 5e-6 * p.abs(), "{p:e} {want}");
        }
        assert!(is_p_value_column("p_value"));
        assert!(is_p_value_column("adjusted_p_value"));
        assert!(!is_p_value_column("top_value"));
        assert!(!is_p_value_column("p_values"));
    }

    #[test]
    fn only_p_value_columns_change_notation() {
        let mut table = Table::new("t", "", &["ratio", "p_value", "whole_p_value"]);
        for (ratio, p, whole) in [
            (
                Value::Number(0.79),
                Value::Number(2.5e-22),
                Value::Number(1.0),
            ),
            (Value::Number(1.0), Value::Missing, Value::Number(0.0)),
            (Value::Number(1.25), Value::Number(f64::NAN), Value::Missing),
            (Value::Missing, Value::Number(0.049), Value::Number(1.0)),
        ] {
            table.rows.push(vec![ratio, p, whole]);
        }
        let csv = String::from_utf8(csv_bytes(&table, 6)).expect("utf-8");
        assert_eq!(
            csv,
            "ratio,p_value,whole_p_value\n\
             0.790000,2.50000e-22,1.00000e+00\n\
             1.000000,,0.00000e+00\n\
             1.250000,,\n\
             ,4.90000e-02,1.00000e+00\n"
        );
    }
}

#[cfg(test)]
mod quoting_tests {
    use super::*;

    /// Every edge case of one table (cells chosen to exercise quoting, missing and number kinds).
    fn edge_table() -> Table {
        let mut table = Table::new(
            "edges",
            "",
            &[
                "text",
                "whole",
                "float",
                "p_value",
                "mixed",
                "a,b \"c\"",
                "",
            ],
        );
        let t = |s: &str| Value::Text(s.into());
        let n = Value::Number;
        for row in [
            vec![t("plain"), n(1.0), n(0.5), n(0.03), t("x"), n(1.0), t("")],
            vec![
                t("a,b"),
                n(-0.0),
                n(-0.0),
                n(-0.0),
                n(2.5),
                Value::Missing,
                t("e"),
            ],
            vec![
                t("say \"hi\""),
                n(8.99e15),
                n(f64::NAN),
                n(f64::INFINITY),
                n(f64::NAN),
                n(-3.0),
                t(" "),
            ],
            vec![
                t("line\nbreak"),
                Value::Missing,
                n(f64::NEG_INFINITY),
                Value::Missing,
                n(f64::INFINITY),
                n(4.0),
                t("\r"),
            ],
            vec![
                t(" lead and trail "),
                n(-42.0),
                n(1e20),
                n(1e-300),
                n(-0.0),
                n(5.0),
                t("\""),
            ],
            vec![
                t(""),
                n(0.0),
                n(123_456_789.123_456_7),
                n(1.0),
                Value::Missing,
                n(6.0),
                t("#"),
            ],
            vec![
                Value::Missing,
                n(7.0),
                n(-1.5e-7),
                n(0.5),
                n(1e20),
                n(7.0),
                t("'"),
            ],
        ] {
            table.rows.push(row);
        }
        table
    }

    /// The expected bytes are what polars 0.55.2's `CsvWriter` (quote style `Necessary`, float
    /// precision 6) wrote for the same tables before the writer moved to csv-core: an empty string
    /// is `""`, a missing cell nothing; comma, quote, CR and LF quote a field, spaces do not;
    /// negative zero stays `-0.000000` in a float column and `0` in a whole one; NaN and infinity
    /// are missing in number columns and `NaN`/`inf` in text ones; 9e15 and above is a float.
    #[test]
    fn quoting_and_number_edges_match_the_previous_writer() {
        let csv = csv_bytes(&edge_table(), 6);
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "text,whole,float,p_value,mixed,\"a,b \"\"c\"\"\",\"\"\n\
             plain,1,0.500000,3.00000e-02,x,1,\"\"\n\
             \"a,b\",0,-0.000000,-0.00000e+00,2.5,,e\n\
             \"say \"\"hi\"\"\",8990000000000000,,,NaN,-3, \n\
             \"line\nbreak\",,,,inf,4,\"\r\"\n \
             lead and trail ,-42,100000000000000000000.000000,1.00000e-300,-0,5,\"\"\"\"\n\
             \"\",0,123456789.123457,1.00000e+00,,6,#\n\
             ,7,-0.000000,5.00000e-01,100000000000000000000,7,'\n"
        );
    }

    #[test]
    fn whole_number_columns_and_missing_only_columns() {
        let mut whole = Table::new("w", "", &["huge", "only_missing", "whole_float"]);
        whole.rows.push(vec![
            Value::Number(9.5e15),
            Value::Missing,
            Value::Number(3.0),
        ]);
        whole.rows.push(vec![
            Value::Number(1.0),
            Value::Missing,
            Value::Number(f64::NAN),
        ]);
        assert_eq!(
            csv_bytes(&whole, 3),
            b"huge,only_missing,whole_float\n9500000000000000.000,,3\n1.000,,\n"
        );
    }

    #[test]
    fn a_single_column_keeps_missing_and_empty_apart() {
        let mut one = Table::new("one", "", &["only"]);
        one.rows.push(vec![Value::Missing]);
        one.rows.push(vec![Value::Text(String::new())]);
        one.rows.push(vec![Value::Text("v".into())]);
        assert_eq!(csv_bytes(&one, 0), b"only\n\n\"\"\nv\n");
        assert_eq!(
            csv_bytes(&Table::new("empty", "", &["a", "b"]), 6),
            b"a,b\n"
        );
    }
}
