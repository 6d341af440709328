//! One set of records, many ways of writing it: every output table must be the same bytes.
//!
//! `tests/fixtures/extracts/forms/` holds the same 23,680 records (the synthetic 2023/24 year at
//! scale 0.0005) written the ways real extracts arrive — by strata (polars), DuckDB in submission
//! order (PLAIN-encoded high-cardinality text in most row groups), pyarrow without dictionaries,
//! pyarrow with dictionaries that fall back to PLAIN mid column chunk, pandas with every column
//! text, pandas with float ages, pyarrow with large strings, int8/int16 dictionary indices,
//! timestamps and int16 ages, python polars with categoricals and zstd, and as CSV (quoted with
//! CRLF, gzip, DuckDB's) in shuffled, reversed and sorted orders; `make_extracts.py` there writes
//! them and checks each holds the same rows. Each is run on one thread and on two, twice.

use std::path::{Path, PathBuf};

use strata::pipeline::InputOverrides;

fn forms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/extracts/forms")
}

/// Every output table of the 2023/24 recipe on `activity`, rendered as the CLI writes it, and the
/// run's warnings.
fn tables(activity: &Path, threads: usize) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    tables_mapped(activity, None, threads)
}

/// As [`tables`], reading the extract through a mapping file.
fn tables_mapped(
    activity: &Path,
    mapping: Option<&Path>,
    threads: usize,
) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml");
    let prepared = strata::check(&recipe).expect("recipe checks");
    let overrides = InputOverrides {
        activity: Some(activity.to_path_buf()),
        population: Some(forms_dir().join("population.csv")),
        threads: Some(threads),
        mapping: mapping.map(Path::to_path_buf),
        ..Default::default()
    };
    let results = strata::pipeline::run(&prepared, &overrides)
        .unwrap_or_else(|e| panic!("{}: {e}", activity.display()));
    (strata_tests::rendered_tables(&results), results.warnings)
}

#[test]
fn every_writer_encoding_type_and_order_gives_the_same_tables() {
    let mut forms: Vec<PathBuf> = std::fs::read_dir(forms_dir())
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "population.csv"))
        .collect();
    forms.sort();
    assert!(forms.len() >= 10, "forms: {forms:?}");
    let reference = tables(&forms_dir().join("strata.parquet"), 1);
    assert!(
        reference.0.iter().any(|(name, _)| name == "area_rates.csv"),
        "the run writes area rates"
    );
    for form in &forms {
        for (threads, repeat) in [(1, 0), (2, 0), (2, 1)] {
            let what = format!(
                "{} on {threads} thread(s), run {}",
                form.file_name().unwrap_or_default().to_string_lossy(),
                repeat + 1
            );
            assert_same(&tables(form, threads), &reference, &what);
        }
    }
}

/// Fails naming the first differing line of the first differing table.
fn assert_same(
    (files, warnings): &(Vec<(String, Vec<u8>)>, Vec<String>),
    reference: &(Vec<(String, Vec<u8>)>, Vec<String>),
    what: &str,
) {
    assert_eq!(warnings, &reference.1, "warnings of {what}");
    if let Some(difference) = strata_tests::table_difference(files, &reference.0) {
        panic!("{what} differs from strata.parquet's: {difference}");
    }
}

/// The same records as a UDAL `[MESH_DIDS].[DIDS]` export (`fixtures/extracts/udal/`: UDAL's and
/// made-up column names, SNOMED CT modality descriptions, sex as `M`/`F`/`1.0`, timestamps, float
/// ages), read through the shipped UDAL mapping, give the canonical extract's tables byte for byte.
#[test]
fn a_udal_shaped_extract_read_through_its_mapping_gives_the_same_tables() {
    let udal = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/extracts/udal");
    let reference = tables(&forms_dir().join("strata.parquet"), 1);
    for form in ["udal-dids.parquet", "udal-dids.csv.gz"] {
        for threads in [1, 2] {
            let got = tables_mapped(&udal.join(form), Some(&udal.join("mapping.toml")), threads);
            assert_same(&got, &reference, &format!("{form} on {threads} thread(s)"));
        }
        // Without the mapping the extract is refused before a record is read, naming the column.
        let prepared = strata::check(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml"),
        )
        .expect("recipe checks");
        let overrides = InputOverrides {
            activity: Some(udal.join(form)),
            population: Some(forms_dir().join("population.csv")),
            ..Default::default()
        };
        let err = strata::pipeline::run(&prepared, &overrides)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("required column missing"), "{form}: {err}");
        assert!(err.contains("inputs.mapping"), "{form}: {err}");
    }
}

/// The same refused record is reported at the same row, whichever thread meets it first.
#[test]
fn a_refused_value_is_reported_at_its_row_whatever_the_threads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = std::fs::read_to_string(forms_dir().join("activity.csv")).expect("fixture");
    let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let date = header
        .iter()
        .position(|h| h.trim_matches('"') == "test_date")
        .expect("test_date column");
    // Two bad dates far apart: the earlier one (row 20,000) must be the one reported.
    for row in [20_000usize, 23_000] {
        let mut fields: Vec<String> = lines[row].split(',').map(str::to_string).collect();
        fields[date] = "\"31/04/2023\"".into();
        lines[row] = fields.join(",");
    }
    let path = dir.path().join("activity.csv");
    std::fs::write(&path, lines.join("\r\n")).expect("write");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml");
    let prepared = strata::check(&recipe).expect("recipe checks");
    for threads in [1, 2, 2, 2] {
        let overrides = InputOverrides {
            activity: Some(path.clone()),
            population: Some(forms_dir().join("population.csv")),
            threads: Some(threads),
            ..Default::default()
        };
        let err = match strata::pipeline::run(&prepared, &overrides) {
            Ok(_) => panic!("a bad date was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("row 20000 (line 20001)"),
            "{threads} threads: {err}"
        );
        assert!(err.contains("column `test_date`"), "{err}");
        assert!(err.contains("`31/04/2023`"), "{err}");
    }
}

/// A folder or a named pipe passed as the extract is refused at once with what it is, never read
/// (a pipe would block, waiting for a writer).
#[test]
fn a_folder_or_a_named_pipe_is_refused_as_an_extract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("activity.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml");
    let prepared = strata::check(&recipe).expect("recipe checks");
    let mut cases = vec![(dir.path().to_path_buf(), "is a folder")];
    if made {
        cases.push((fifo, "not a regular file"));
    }
    for (path, says) in cases {
        let overrides = InputOverrides {
            activity: Some(path.clone()),
            population: Some(forms_dir().join("population.csv")),
            ..Default::default()
        };
        match strata::pipeline::run(&prepared, &overrides) {
            Ok(_) => panic!("{} was read as an extract", path.display()),
            Err(e) => assert!(e.to_string().contains(says), "{e}"),
        }
    }
}
