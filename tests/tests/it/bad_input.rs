//! The bad-input corpus: every folder under `tests/bad-input/` is one late, partial or messy input
//! and the answer strata must give. Each holds a `case.toml`:
//!
//! - `about`: what is wrong, in a sentence;
//! - `input`: the world file (see `strata_tests::write_world`) the case replaces or edits;
//! - `file`: a file in the case folder that replaces `input` whole (bytes as they are, so
//!   non-UTF-8 cases are real bytes), or `edits` (`find`, `replace`, optional `all`) and
//!   `drop_lines` (lines containing any of these are removed) applied to the world's `input`,
//!   and `cut_end` (that many bytes cut from its end);
//! - `recipe_edits`: the same kind of edits on `recipe.toml` (`{plugins}` is the folder the case's
//!   `fixture` plugin library is built into);
//! - `fixture`: a plugin crate under `tests/fixtures/` to build as a shared library;
//! - `exit`: the exit code of `strata run` (1 bad data or a failed run, 2 bad recipe or plugin,
//!   0 data that is only suspicious);
//! - `contains`: what the error must say — file, `row N`, column, the rule broken, `hint:`;
//! - `warnings`: for `exit = 0`, what the manifest's warnings must say.
//!
//! A failed run must also leave no output folder and no temporary folder behind.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_tests::{build_fixture, strata, temp_dir, write_world};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    input: Option<String>,
    file: Option<String>,
    #[serde(default)]
    edits: Vec<Edit>,
    #[serde(default)]
    drop_lines: Vec<String>,
    /// Bytes cut from the end of `input` after the edits (a file copied short).
    #[serde(default)]
    cut_end: usize,
    #[serde(default)]
    recipe_edits: Vec<Edit>,
    fixture: Option<String>,
    exit: u8,
    #[serde(default)]
    contains: Vec<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    find: String,
    replace: String,
    #[serde(default)]
    all: bool,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-input")
}

fn cases() -> Vec<(String, PathBuf, Case)> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad-input exists")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(dir.join("case.toml")).expect("read case.toml");
            let case: Case = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("tests/bad-input/{name}/case.toml: {e}"));
            (name, dir, case)
        })
        .collect()
}

/// Applies edits to a text, failing the case (not panicking) if one finds nothing.
fn apply(text: &str, edits: &[Edit], what: &str) -> Result<String, String> {
    let mut text = text.to_string();
    for e in edits {
        if !text.contains(&e.find) {
            return Err(format!("{what}: `{}` not found to edit", e.find));
        }
        text = if e.all {
            text.replace(&e.find, &e.replace)
        } else {
            text.replacen(&e.find, &e.replace, 1)
        };
    }
    Ok(text)
}

/// Sets the case up in a fresh world under `root`, runs it, and says what was wrong, if anything.
fn run_case(name: &str, dir: &Path, case: &Case, root: &Path) -> Result<String, String> {
    let world = write_world(&root.join(name), "ratio.rate");
    let plugins = root.join(format!("{name}-plugins"));
    if let Some(fixture) = &case.fixture {
        build_fixture(
            fixture,
            &fixture.replace("plugin-", "strata_").replace('-', "_"),
            &plugins,
        );
    }
    if let Some(input) = &case.input {
        let target = world.dir.join(input);
        if let Some(file) = &case.file {
            std::fs::copy(dir.join(file), &target).map_err(|e| format!("copy {file}: {e}"))?;
        }
        if !case.edits.is_empty() || !case.drop_lines.is_empty() || case.cut_end > 0 {
            let text = std::fs::read_to_string(&target).map_err(|e| format!("{input}: {e}"))?;
            let mut text = apply(&text, &case.edits, input)?;
            if !case.drop_lines.is_empty() {
                text = text
                    .split_inclusive('\n')
                    .filter(|l| !case.drop_lines.iter().any(|d| l.contains(d.as_str())))
                    .collect();
            }
            text.truncate(text.len().saturating_sub(case.cut_end));
            std::fs::write(&target, text).map_err(|e| format!("{input}: {e}"))?;
        }
    }
    let recipe = std::fs::read_to_string(&world.recipe).map_err(|e| e.to_string())?;
    let edits: Vec<Edit> = case
        .recipe_edits
        .iter()
        .map(|e| Edit {
            find: e.find.clone(),
            replace: e
                .replace
                .replace("{plugins}", &plugins.display().to_string()),
            all: e.all,
        })
        .collect();
    std::fs::write(&world.recipe, apply(&recipe, &edits, "recipe.toml")?)
        .map_err(|e| e.to_string())?;

    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap_or_default()]);
    let said = format!("exit {code}\nstdout: {out}\nstderr: {err}");
    if code != case.exit {
        return Err(format!("expected exit {}, got {said}", case.exit));
    }
    for needle in &case.contains {
        if !err.contains(needle.as_str()) {
            return Err(format!("the error does not say `{needle}`: {said}"));
        }
    }
    let out_dir = world.dir.join("out");
    if case.exit == 0 {
        let manifest = std::fs::read(out_dir.join("manifest.json"))
            .map_err(|e| format!("manifest.json: {e}"))?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
        let warnings: Vec<&str> = manifest["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for needle in &case.warnings {
            if !warnings.iter().any(|w| w.contains(needle.as_str())) {
                return Err(format!(
                    "no manifest warning says `{needle}`: {warnings:#?}"
                ));
            }
            if !err.contains(needle.as_str()) {
                return Err(format!("the run did not warn `{needle}`: {said}"));
            }
        }
    } else {
        if out_dir.exists() {
            return Err("a failed run left an output folder".into());
        }
        let leftovers: Vec<String> = std::fs::read_dir(&world.dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".out."))
            .collect();
        if !leftovers.is_empty() {
            return Err(format!("a failed run left {leftovers:?}"));
        }
    }
    Ok(err.lines().next().unwrap_or_default().to_string())
}

#[test]
fn every_bad_input_in_the_corpus_gets_its_clear_error() {
    let cases = cases();
    let tmp = temp_dir("bad-input");
    let mut failures = Vec::new();
    for (name, dir, case) in &cases {
        match run_case(name, dir, case, tmp.path()) {
            // `cargo test -- --nocapture` shows every case with the first line strata said.
            Ok(said) => println!("ok {name} (exit {}): {said}", case.exit),
            Err(problem) => failures.push(format!("{name} ({}): {problem}", case.about)),
        }
    }
    let errors = cases.iter().filter(|(_, _, c)| c.exit != 0).count();
    println!(
        "{} bad-input cases: {errors} errors, {} suspicious-only",
        cases.len(),
        cases.len() - errors
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_corpus_has_at_least_30_cases_and_every_error_case_asks_for_a_hint_or_a_position() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    for (name, _, case) in &cases {
        assert!(!case.about.is_empty(), "{name}: say what is wrong");
        if case.exit == 0 {
            assert!(
                !case.warnings.is_empty(),
                "{name}: what must the manifest say?"
            );
        } else {
            assert!(
                !case.contains.is_empty(),
                "{name}: what must the error say?"
            );
        }
        // Data errors (exit 1 on an input file) name the file and give a hint.
        if case.exit == 1
            && let Some(input) = &case.input
        {
            assert!(case.contains.contains(input), "{name}: name the file");
            assert!(
                case.contains.iter().any(|c| c == "hint:"),
                "{name}: ask for a hint"
            );
        }
    }
}

/// Not bad input: Excel's "CSV UTF-8" starts a file with a byte-order mark, which must not become
/// part of the first column's name (the CSV reader strips it; this keeps it so).
#[test]
fn files_starting_with_a_byte_order_mark_are_read() {
    let tmp = temp_dir("bom");
    let world = write_world(tmp.path(), "ratio.rate");
    for file in [
        "areas.csv",
        "population.csv",
        "activity.csv",
        "practices.csv",
    ] {
        let path = world.dir.join(file);
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend(std::fs::read(&path).unwrap());
        std::fs::write(&path, bytes).unwrap();
    }
    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
