//! Every output table of both published-year recipes and of the sub-ICB and region recipes, at a
//! small synthetic scale, and the practice and PCN recipes' tables (their per-area tables for the
//! practices or PCNs of one sub-ICB), as reviewed
//! snapshots in `snapshots/`: any change to any number is a diff someone reads.
//!
//! Accept a reviewed change with
//! `INSTA_UPDATE=always cargo test -p strata-tests --test it snapshots::` (or `cargo insta review`).
//! CI runs with `CI=true`, where a changed or missing snapshot fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata_tests::{strata, temp_dir};

/// Small enough for a debug build, large enough that every table has rows.
const SCALE: &str = "0.002";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn snapshot_dir() -> PathBuf {
    workspace().join("snapshots")
}

/// Runs a recipe and snapshots every CSV it writes; returns the snapshot names.
fn snapshot_recipe(recipe: &str, tag: &str) -> Vec<String> {
    let tmp = temp_dir(tag);
    let out = tmp.path().join("out");
    let recipe = workspace().join("configs").join(recipe);
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--scale",
        SCALE,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut names = Vec::new();
    for file in files {
        let table = file.file_stem().unwrap().to_string_lossy().into_owned();
        let name = format!("{tag}__{table}");
        let text = std::fs::read_to_string(&file).unwrap();
        insta::with_settings!({
            snapshot_path => snapshot_dir(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("{tag}: {table}.csv at synthetic scale {SCALE}"),
        }, {
            insta::assert_snapshot!(name.clone(), text);
        });
        names.push(name);
        assert_no_small_counts(&file, &text);
    }
    names
}

/// Whether a column's name says it holds a count of tests or people (this test's own reading,
/// independent of the declarations it checks).
fn looks_like_a_count(name: &str) -> bool {
    ["observed", "population", "tests", "estimated_missing"].contains(&name)
        || name.ends_with("_tests")
}

/// The NHS rule: no published count from 1 to 7, in every column the table's stage declared a
/// count (`manifest.json`'s `outputs[].counts`, what disclosure protected); and every column that
/// looks like a count is declared one.
fn assert_no_small_counts(file: &Path, text: &str) {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(file.with_file_name("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let declared: Vec<String> = manifest["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["file"] == name.as_str())
        .and_then(|o| o["counts"].as_array())
        .map(|c| {
            c.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    for column in header.iter().filter(|c| looks_like_a_count(c)) {
        assert!(
            declared.iter().any(|d| d == column),
            "{name}: column {column} holds counts but its stage did not declare it ({declared:?})"
        );
    }
    let counts: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, c)| declared.iter().any(|d| d == c))
        .map(|(i, _)| i)
        .collect();
    for (row, record) in reader.records().enumerate() {
        let record = record.unwrap();
        for &c in &counts {
            if let Some(Ok(v)) = record.get(c).map(|v| v.parse::<f64>()) {
                assert!(
                    !(1.0..=7.0).contains(&v),
                    "{}: row {} column {} publishes a small count {v}",
                    file.display(),
                    row + 1,
                    &header[c]
                );
            }
        }
    }
}

#[test]
fn every_table_of_the_year_and_level_recipes_matches_its_snapshot_and_publishes_no_small_count() {
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (recipe, tag) in [
        ("did-2020-21-ccg.toml", "did-2020-21-ccg"),
        ("did-2023-24-icb.toml", "did-2023-24-icb"),
        // A geography level of its own (each area with its parent) and the overdispersion
        // stage's tables (overdispersion.csv, overdispersed_limits.csv).
        ("did-2023-24-sub-icb.toml", "did-2023-24-sub-icb"),
        // NHS England's 7 commissioning regions, each with its parent England.
        ("did-2023-24-region.toml", "did-2023-24-region"),
    ] {
        expected.extend(snapshot_recipe(recipe, tag));
    }
    // No snapshot may outlive the table it was taken of (the practice and PCN recipes' are the
    // next tests').
    assert_no_orphans(&expected, |name| {
        !name.starts_with(PRACTICE_TAG) && !name.starts_with(PCN_TAG)
    });
}

/// Every snapshot on disk that `owned` picks is one of `expected`.
fn assert_no_orphans(expected: &BTreeSet<String>, owned: impl Fn(&str) -> bool) {
    let on_disk: BTreeSet<String> = std::fs::read_dir(snapshot_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".snap").map(str::to_string)
        })
        .filter(|name| owned(name))
        .collect();
    let unreferenced: Vec<&String> = on_disk.difference(expected).collect();
    assert!(
        unreferenced.is_empty(),
        "snapshots no test takes (delete them): {unreferenced:?}"
    );
}

const PRACTICE_TAG: &str = "did-2023-24-practice";
const PCN_TAG: &str = "did-2023-24-pcn";

/// The sub-ICB whose practices (or PCNs) the practice and PCN recipes' per-area tables are
/// snapshotted for: NHS Nottingham and Nottinghamshire ICB - 02Q (Bassetlaw), the smallest of
/// the 106 (9 practices in 3 PCNs), so each per-practice table has 14 × 9 rows.
const PRACTICE_PARENT: &str = "02Q";

/// A table with an `area_code` column and more rows than this has rows per practice (or PCN).
const PER_PRACTICE_ROWS: usize = 1000;

/// The practice recipe (6,445 practices) run in this process at the same scale, without its
/// publication. Tables of rows per practice (an `area_code` column, [`PER_PRACTICE_ROWS`]) are
/// snapshotted for the practices of [`PRACTICE_PARENT`]; `summary` is left out (its `areas`
/// column lists thousands of practice codes; its numbers are the summary plugin's, snapshotted
/// at the other levels); every other table whole. Each is rendered by the CSV writer the run
/// uses, at the recipe's precision.
#[test]
fn the_practice_recipe_s_tables_match_their_snapshots_for_one_sub_icb() {
    snapshot_level_for_one_parent("did-2023-24-practice.toml", PRACTICE_TAG, 9);
}

/// The PCN recipe (1,299 PCN-level areas) as the practice recipe: its per-PCN tables for the 3
/// PCNs of [`PRACTICE_PARENT`], every other table but `summary` whole.
#[test]
fn the_pcn_recipe_s_tables_match_their_snapshots_for_one_sub_icb() {
    snapshot_level_for_one_parent("did-2023-24-pcn.toml", PCN_TAG, 3);
}

/// Runs `recipe` in this process and snapshots its tables, the per-area ones for the `areas`
/// areas whose parent is [`PRACTICE_PARENT`].
fn snapshot_level_for_one_parent(recipe: &str, tag: &str, areas: usize) {
    let recipe = workspace().join("configs").join(recipe);
    let prepared = strata::check(&recipe).expect("the recipe checks");
    let overrides = strata::pipeline::InputOverrides {
        scale: Some(SCALE.parse().unwrap()),
        ..Default::default()
    };
    let results = strata::pipeline::run(&prepared, &overrides).expect("runs");
    let area_rates = results
        .tables
        .iter()
        .find(|t| t.name == "area_rates")
        .expect("area_rates");
    let column = |name: &str| area_rates.columns.iter().position(|c| c == name).unwrap();
    let (code, parent) = (column("area_code"), column("parent_code"));
    let children: BTreeSet<String> = area_rates
        .rows
        .iter()
        .filter(|r| r[parent] == strata_api::Value::Text(PRACTICE_PARENT.into()))
        .filter_map(|r| match &r[code] {
            strata_api::Value::Text(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(children.len(), areas, "{children:?}");
    let mut expected = BTreeSet::new();
    for table in results.tables.iter().filter(|t| t.name != "summary") {
        let mut table = table.clone();
        let per_area = table.rows.len() > PER_PRACTICE_ROWS;
        let name = match table.columns.iter().position(|c| c == "area_code") {
            Some(area) if per_area => {
                // A table with a row per area keeps one per child; a sparse one (`exclusions`,
                // rows only where records were left out) may keep none: at this scale 02Q's
                // practices expect about two excluded records, and a header alone then says
                // that none was.
                let dense = table.rows.len() >= area_rates.rows.len();
                table.rows.retain(
                    |r| matches!(&r[area], strata_api::Value::Text(c) if children.contains(c)),
                );
                assert!(
                    !dense || !table.rows.is_empty(),
                    "{}: no row for {PRACTICE_PARENT}",
                    table.name
                );
                format!("{tag}__{}_{PRACTICE_PARENT}", table.name)
            }
            _ => format!("{tag}__{}", table.name),
        };
        assert_no_small_declared_counts(&table);
        let text = String::from_utf8(strata::output::csv_bytes(
            &table,
            prepared.recipe.float_precision,
        ))
        .expect("UTF-8");
        insta::with_settings!({
            snapshot_path => snapshot_dir(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!(
                "{tag}: {}.csv at synthetic scale {SCALE}{}",
                table.name,
                if name.ends_with(PRACTICE_PARENT) {
                    format!(", the {} of {PRACTICE_PARENT}", if tag == PRACTICE_TAG { "practices" } else { "PCNs" })
                } else {
                    String::new()
                }
            ),
        }, {
            insta::assert_snapshot!(name.clone(), text);
        });
        expected.insert(name);
    }
    assert!(expected.len() >= 10, "{expected:?}");
    assert_no_orphans(&expected, |name| name.starts_with(tag));
}

/// The NHS rule on the columns the table's stage declared counts: none from 1 to 7. Populations
/// are left out: at a synthetic scale a practice's population is fractional, and the rule rounds
/// e.g. 7.4 (above 7, so not suppressed) to 5; whole counts of tests never do.
fn assert_no_small_declared_counts(table: &strata_api::Table) {
    for column in table.counts.iter().filter(|c| *c != "population") {
        let Some(c) = table.columns.iter().position(|n| n == column) else {
            continue;
        };
        for (i, row) in table.rows.iter().enumerate() {
            if let strata_api::Value::Number(v) = row[c] {
                assert!(
                    !(1.0..=7.0).contains(&v),
                    "{}: row {} column {column} publishes a small count {v}",
                    table.name,
                    i + 1
                );
            }
        }
    }
}
