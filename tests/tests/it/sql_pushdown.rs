//! `strata sql` end to end: the generated DuckDB SQL, executed by DuckDB (from PyPI, in
//! `target/duckdb-venv`, the venv `bench/duckdb_compare.py` uses), counts a record-level input;
//! `strata run --counts --quality` on its result writes every table file byte for byte as the
//! record-level run on the same records does. Inputs: the synthetic year as `strata synth` writes
//! it (Parquet), the same records rewritten by DuckDB as CSV in a hashed order, and the example
//! recipe's hand-made CSV and the UDAL-shaped export through its mapping (none written by
//! strata). The T-SQL and Spark texts are golden
//! (`snapshots/sql/`), parse-checked by `strata sql` itself; they have not been executed
//! against SQL Server or Spark here.
//!
//! Without DuckDB (no venv and no network to make one) the execution test fails when `CI=true`
//! and otherwise says loudly that it did not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_tests::{strata, temp_dir};

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's python with duckdb, made on first use as `bench/duckdb_compare.py` makes it.
fn duckdb_python() -> Option<PathBuf> {
    let venv = workspace().join("target").join("duckdb-venv");
    let python = venv.join("bin").join("python");
    let has_duckdb = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_duckdb(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "duckdb"])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !has_duckdb(&python) {
            let why = format!(
                "no DuckDB in {} and it could not be installed",
                venv.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}: CI must run the pushed-down SQL test");
            }
            eprintln!("NOT RUN: sql_pushdown's DuckDB test ({why})");
            return None;
        }
    }
    Some(python)
}

pub(crate) fn ok(args: &[&str]) -> String {
    let (code, out, err) = strata(args);
    assert_eq!(code, 0, "strata {args:?}: {err}");
    out
}

/// Writes the three DuckDB parts of `recipe` into `dir` (`extra`: more `strata sql` options).
fn sql_parts(recipe: &Path, dir: &Path, extra: &[&str]) -> [PathBuf; 3] {
    ["setup", "counts", "quality"].map(|part| {
        let mut args = vec![
            "sql",
            recipe.to_str().unwrap(),
            "--dialect",
            "duckdb",
            "--part",
            part,
        ];
        args.extend(extra);
        let text = ok(&args);
        let path = dir.join(format!("{part}.sql"));
        std::fs::write(&path, text).unwrap();
        path
    })
}

/// Runs the parts on `input` with DuckDB (`extra`: the script's options); answers the folder with
/// `counts.csv` and `quality.csv`.
fn run_duckdb(python: &Path, parts: &[PathBuf; 3], input: &Path, out: &Path, extra: &[&str]) {
    let status = Command::new(python)
        .arg(workspace().join("tests/sql/duckdb_run.py"))
        .args(parts)
        .arg(input)
        .arg(out)
        .args(extra)
        .status()
        .expect("run python");
    assert!(
        status.success(),
        "duckdb_run.py failed on {}",
        input.display()
    );
}

/// Every CSV table of `a` equals the one of the same name in `b`, and they have the same tables.
pub(crate) fn assert_same_tables(a: &Path, b: &Path) {
    let csvs = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".csv"))
            .collect();
        v.sort();
        v
    };
    let (names_a, names_b) = (csvs(a), csvs(b));
    assert_eq!(names_a, names_b);
    assert!(names_a.len() >= 8, "{names_a:?}");
    for name in &names_a {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn pushed_run(recipe: &Path, counted: &Path, population: &Path, out: &Path) {
    let p = |x: &Path| x.to_str().unwrap().to_string();
    ok(&[
        "run",
        &p(recipe),
        "--counts",
        &p(&counted.join("counts.csv")),
        "--quality",
        &p(&counted.join("quality.csv")),
        "--population",
        &p(population),
        "--out",
        &p(out),
    ]);
}

#[test]
fn duckdb_counts_give_the_record_level_outputs() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let tmp = temp_dir("sql-pushdown");
    let dir = tmp.path();
    let recipe = workspace().join("configs/did-2023-24-icb.toml");
    let r = recipe.to_str().unwrap();
    let synth = dir.join("synth");
    ok(&[
        "synth",
        r,
        "--out",
        synth.to_str().unwrap(),
        "--scale",
        "0.002",
    ]);
    let (activity, population) = (synth.join("activity.parquet"), synth.join("population.csv"));
    let record_level = dir.join("record-level");
    ok(&[
        "run",
        r,
        "--activity",
        activity.to_str().unwrap(),
        "--population",
        population.to_str().unwrap(),
        "--out",
        record_level.to_str().unwrap(),
    ]);
    let parts = sql_parts(&recipe, dir, &[]);

    run_duckdb(&python, &parts, &activity, &dir.join("parquet"), &[]);
    pushed_run(
        &recipe,
        &dir.join("parquet"),
        &population,
        &dir.join("out-parquet"),
    );
    assert_same_tables(&record_level, &dir.join("out-parquet"));

    // The same records as DuckDB writes them, in another order, types found by its CSV reader.
    let shuffled = dir.join("shuffled.csv");
    let shuffled_arg = shuffled.to_str().unwrap();
    run_duckdb(
        &python,
        &parts,
        &activity,
        &dir.join("csv"),
        &["--shuffle-csv", shuffled_arg],
    );
    pushed_run(&recipe, &dir.join("csv"), &population, &dir.join("out-csv"));
    assert_same_tables(&record_level, &dir.join("out-csv"));
}

#[test]
fn duckdb_counts_of_the_hand_made_example() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let tmp = temp_dir("sql-example");
    let dir = tmp.path();
    let recipe = workspace().join("configs/example.toml");
    let data = workspace().join("data/example");
    let record_level = dir.join("record-level");
    ok(&[
        "run",
        recipe.to_str().unwrap(),
        "--out",
        record_level.to_str().unwrap(),
    ]);
    let parts = sql_parts(&recipe, dir, &[]);
    run_duckdb(
        &python,
        &parts,
        &data.join("activity.csv"),
        &dir.join("counted"),
        &[],
    );
    pushed_run(
        &recipe,
        &dir.join("counted"),
        &data.join("population.csv"),
        &dir.join("out"),
    );
    assert_same_tables(&record_level, &dir.join("out"));
}

/// A UDAL-shaped export (its column names, SNOMED CT modality descriptions, `M`/`F`/`1.0` sex
/// codes, float ages, timestamps; `tests/fixtures/extracts/udal/`) through its input mapping: the
/// SQL applies the mapping's names and value maps as the record-level reader does, on the
/// Parquet and on the gzip CSV as DuckDB reads them.
#[test]
fn duckdb_counts_of_a_udal_shaped_export_through_its_mapping() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let tmp = temp_dir("sql-udal");
    let dir = tmp.path();
    let recipe = workspace().join("configs/did-2023-24-icb.toml");
    let udal = workspace().join("tests/fixtures/extracts/udal");
    let mapping = udal.join("mapping.toml");
    let population = workspace().join("tests/fixtures/extracts/forms/population.csv");
    let record_level = dir.join("record-level");
    let parquet = udal.join("udal-dids.parquet");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    ok(&[
        "run",
        &p(&recipe),
        "--activity",
        &p(&parquet),
        "--mapping",
        &p(&mapping),
        "--population",
        &p(&population),
        "--out",
        &p(&record_level),
    ]);
    let parts = sql_parts(&recipe, dir, &["--mapping", &p(&mapping)]);
    for (form, name) in [
        (parquet.clone(), "parquet"),
        (udal.join("udal-dids.csv.gz"), "csv"),
    ] {
        run_duckdb(&python, &parts, &form, &dir.join(name), &[]);
        let out = dir.join(format!("out-{name}"));
        pushed_run(&recipe, &dir.join(name), &population, &out);
        assert_same_tables(&record_level, &out);
    }
}

/// `recipe` rewritten into `dir` with its relative paths made absolute and each `(from, to)`
/// replaced once (e.g. another stage plugin); answers the new recipe's path.
pub(crate) fn variant_recipe(recipe: &Path, dir: &Path, swaps: &[(&str, &str)]) -> PathBuf {
    let configs = recipe.parent().unwrap().canonicalize().unwrap();
    let configs = configs.to_str().unwrap();
    let mut text = std::fs::read_to_string(recipe)
        .unwrap()
        .replace("\"../", &format!("\"{configs}/../"))
        .replace("\"synth/", &format!("\"{configs}/synth/"))
        .replace("\"published/", &format!("\"{configs}/published/"));
    for (from, to) in swaps {
        assert!(text.contains(from), "{from} not in {}", recipe.display());
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(recipe.file_name().unwrap());
    std::fs::write(&path, text).unwrap();
    path
}

/// The SQL of the other attribution and exclusions plugins (`attribution.lsoa-then-gp-practice`,
/// `exclusions.impute-unknown` on every dimension), executed: the same outputs as the
/// record-level run of the same recipe.
#[test]
fn duckdb_counts_under_lsoa_first_attribution_and_imputed_unknowns() {
    let Some(python) = duckdb_python() else {
        return;
    };
    let tmp = temp_dir("sql-variants");
    let dir = tmp.path();
    let base = workspace().join("configs/did-2023-24-icb.toml");
    let synth = dir.join("synth");
    let p = |x: &Path| x.to_str().unwrap().to_string();
    ok(&["synth", &p(&base), "--out", &p(&synth), "--scale", "0.002"]);
    let (activity, population) = (synth.join("activity.parquet"), synth.join("population.csv"));
    let recipe = variant_recipe(
        &base,
        dir,
        &[
            (
                "\"attribution.gp-practice-then-lsoa@1\"",
                "\"attribution.lsoa-then-gp-practice@1\"",
            ),
            (
                "plugin = \"exclusions.complete-case@1\"",
                "plugin = \"exclusions.impute-unknown\"\n\
                 params = { impute = [\"sex\", \"age_band\", \"imd_quintile\"] }",
            ),
        ],
    );
    let record_level = dir.join("record-level");
    ok(&[
        "run",
        &p(&recipe),
        "--activity",
        &p(&activity),
        "--population",
        &p(&population),
        "--out",
        &p(&record_level),
    ]);
    let manifest = std::fs::read_to_string(record_level.join("manifest.json")).unwrap();
    for id in [
        "attribution.lsoa-then-gp-practice",
        "exclusions.impute-unknown",
    ] {
        assert!(manifest.contains(id), "{id} did not run");
    }
    let parts = sql_parts(&recipe, dir, &[]);
    run_duckdb(&python, &parts, &activity, &dir.join("counted"), &[]);
    pushed_run(&recipe, &dir.join("counted"), &population, &dir.join("out"));
    assert_same_tables(&record_level, &dir.join("out"));
}

/// The whole T-SQL and Spark scripts of the example recipe, golden.
#[test]
fn tsql_and_spark_text() {
    let recipe = workspace().join("configs/example.toml");
    for dialect in ["tsql", "spark", "duckdb"] {
        let text = ok(&["sql", recipe.to_str().unwrap(), "--dialect", dialect]);
        insta::with_settings!({
            snapshot_path => workspace().join("snapshots").join("sql"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("strata sql configs/example.toml --dialect {dialect}"),
        }, {
            insta::assert_snapshot!(format!("sql__example_{dialect}"), text);
        });
    }
}

/// A strata built without Spark Connect says so and how to count elsewhere instead.
#[cfg(not(feature = "spark"))]
#[test]
fn spark_needs_its_feature() {
    let recipe = workspace().join("configs/example.toml");
    let args = [
        "run",
        recipe.to_str().unwrap(),
        "--spark",
        "sc://127.0.0.1:15002",
    ];
    let (code, _, err) = strata(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("feature `spark`") && err.contains("--counts"),
        "{err}"
    );
}

/// A data-quality cube without the counts it belongs to is refused by the command line.
#[test]
fn quality_needs_counts() {
    let recipe = workspace().join("configs/example.toml");
    let (code, _, err) = strata(&["run", recipe.to_str().unwrap(), "--quality", "q.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--counts"), "{err}");
}
