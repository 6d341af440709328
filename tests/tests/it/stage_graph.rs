//! The engine wires a recipe's stages by what each takes and gives (`engine/src/board.rs`): a
//! recipe names only the stages it wants, and each output comes out the same bytes whatever else
//! the recipe asks for.

use std::path::Path;

use strata_tests::{strata, temp_dir, write_world};

/// Removes one `[stages.<kind>]` block (its header and the lines up to the next blank line).
fn without_stage(recipe: &str, kind: &str) -> String {
    let header = format!("[stages.{kind}]\n");
    let start = recipe.find(&header).expect("the stage is in the recipe");
    let end = recipe[start..]
        .find("\n\n")
        .map_or(recipe.len(), |i| start + i + 2);
    format!("{}{}", &recipe[..start], &recipe[end..])
}

fn run(recipe: &Path) {
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

fn output(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join("out").join(name)).ok()
}

/// Area rates alone: without factors, ratio, significance, summary and data quality the run
/// still writes area and national rates (and exclusions), byte for byte as the full recipe does,
/// and no table of a stage it lacks.
#[test]
fn a_recipe_of_area_rates_alone_gives_the_full_recipes_area_rates() {
    let tmp = temp_dir("graph-area-rates");
    let full = write_world(&tmp.path().join("full"), "ratio.rate");
    let lean = write_world(&tmp.path().join("lean"), "ratio.rate");
    let mut text = std::fs::read_to_string(&lean.recipe).unwrap();
    for kind in [
        "factors",
        "ratio",
        "significance",
        "summary",
        "data_quality",
    ] {
        text = without_stage(&text, kind);
    }
    std::fs::write(&lean.recipe, &text).unwrap();
    run(&full.recipe);
    run(&lean.recipe);
    for name in ["area_rates.csv", "national_rates.csv", "exclusions.csv"] {
        let want = output(&full.dir, name).expect("full run writes it");
        assert_eq!(
            output(&lean.dir, name).as_deref(),
            Some(want.as_slice()),
            "{name}"
        );
    }
    for name in ["factor_ratios.csv", "summary.csv", "dq_routes.csv"] {
        assert!(output(&lean.dir, name).is_none(), "{name} written");
    }
    assert!(output(&full.dir, "factor_ratios.csv").is_some());
}

/// A stage whose input no stage of the recipe gives is refused before any data is read, naming
/// the missing stage, what needs it and the plugins that could fill it.
#[test]
fn a_stage_without_the_stage_that_feeds_it_is_refused_naming_both() {
    let tmp = temp_dir("graph-missing-ratio");
    let world = write_world(tmp.path(), "ratio.rate");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    std::fs::write(&world.recipe, without_stage(&text, "ratio")).unwrap();
    let (code, out, err) = strata(&["check", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    for needle in [
        "stage `ratio` is missing",
        "`significance` takes factor ratios, which only it gives",
        "ratio.odds",
        "ratio.rate",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

/// The order of `[stages]` blocks in a recipe changes nothing: the slots decide the order.
#[test]
fn the_order_stages_are_written_in_changes_no_byte() {
    let tmp = temp_dir("graph-order");
    let written = write_world(&tmp.path().join("written"), "ratio.odds");
    let reordered = write_world(&tmp.path().join("reordered"), "ratio.odds");
    let text = std::fs::read_to_string(&reordered.recipe).unwrap();
    let start = text.find("[stages.").expect("stages");
    let blocks: Vec<&str> = text[start..]
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    assert!(blocks.len() >= 9, "{blocks:?}");
    let mut reversed: Vec<&str> = blocks.clone();
    reversed.reverse();
    let text = format!("{}{}\n", &text[..start], reversed.join("\n\n"));
    std::fs::write(&reordered.recipe, text).unwrap();
    run(&written.recipe);
    run(&reordered.recipe);
    let names: Vec<String> = std::fs::read_dir(written.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert_eq!(
            output(&reordered.dir, &name),
            output(&written.dir, &name),
            "{name}"
        );
    }
}

/// A stage kind added after the publications (overdispersion) joins a recipe by its slots alone:
/// its tables appear, each flag agrees with the row's own limits, and no other output changes.
#[test]
fn adding_the_overdispersion_stage_adds_its_tables_and_changes_no_other_byte() {
    let tmp = temp_dir("graph-overdispersion");
    let plain = write_world(&tmp.path().join("plain"), "ratio.rate");
    let widened = write_world(&tmp.path().join("widened"), "ratio.rate");
    let text = std::fs::read_to_string(&widened.recipe).unwrap();
    let text = text.replacen(
        "[stages.summary]",
        "[stages.overdispersion]\nplugin = \"overdispersion.spiegelhalter\"\nparams = { levels = [0.95, 0.998] }\n\n[stages.summary]",
        1,
    );
    std::fs::write(&widened.recipe, text).unwrap();
    run(&plain.recipe);
    run(&widened.recipe);
    let names: Vec<String> = std::fs::read_dir(plain.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv"))
        .collect();
    for name in &names {
        assert_eq!(
            output(&widened.dir, name),
            output(&plain.dir, name),
            "{name}"
        );
    }
    let estimates = String::from_utf8(output(&widened.dir, "overdispersion.csv").unwrap()).unwrap();
    let header: Vec<&str> = estimates.lines().next().unwrap().split(',').collect();
    assert_eq!(
        &header[..4],
        ["measure", "areas", "phi", "tau2"],
        "{estimates}"
    );
    assert!(estimates.lines().count() > 1, "{estimates}");
    let limits =
        String::from_utf8(output(&widened.dir, "overdispersed_limits.csv").unwrap()).unwrap();
    let header: Vec<&str> = limits.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    // Each area's Benjamini–Hochberg adjusted p-value is at least its own p-value, and at most 1.
    let (p_col, q_col) = (
        col("exact_poisson_p_value"),
        col("exact_poisson_fdr_p_value"),
    );
    let mut with_p = 0;
    for line in limits.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if let (Ok(p), Ok(q)) = (cells[p_col].parse::<f64>(), cells[q_col].parse::<f64>()) {
            assert!(p <= q * (1.0 + 1e-5) && q <= 1.0, "{line}");
            with_p += 1;
        }
    }
    assert!(with_p > 0, "{limits}");
    let (ratio, lower, upper, flag) = (
        col("ratio"),
        col("lower_95"),
        col("upper_95"),
        col("flag_95"),
    );
    let mut rows = 0;
    for line in limits.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let Ok(r) = cells[ratio].parse::<f64>() else {
            continue;
        };
        let (l, u): (f64, f64) = (cells[lower].parse().unwrap(), cells[upper].parse().unwrap());
        let want = if r > u {
            "high"
        } else if r < l {
            "low"
        } else {
            ""
        };
        // An empty flag is written as `""`.
        assert_eq!(cells[flag].trim_matches('"'), want, "{line}");
        assert!(l <= 1.0 && 1.0 <= u, "{line}");
        rows += 1;
    }
    assert!(rows > 10, "{limits}");
}
