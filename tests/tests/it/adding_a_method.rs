//! CONTRIBUTING.md's "Adding a method", followed mechanically as a newcomer would, in a temporary
//! folder (the real tree is not touched): the template crate from `cargo xtask new-plugin`, a
//! formula written in, built as a shared library (the out-of-tree form of the same crate),
//! selected by id in a recipe, run, and its output checked against the formula.

use std::path::Path;
use std::time::Instant;

use strata_tests::{strata, temp_dir, write_world};
use xtask::{NewPlugin, Stage};

/// The template's formula line, and the one the newcomer writes in its place.
const TEMPLATE_FORMULA: &str = "let ratio = comparison_rate / base_rate;";
const NEW_FORMULA: &str = "let ratio = comparison_rate - base_rate;";

#[test]
fn a_new_ratio_method_from_the_template_is_built_selected_and_used() {
    let started = Instant::now();
    let tmp = temp_dir("adding-a-method");
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));

    // 1. `cargo xtask new-plugin ratio ratio-my-method ratio.my-method --out-of-tree <folder>`.
    let plugin =
        NewPlugin::new(Stage::Ratio, "ratio-my-method", "ratio.my-method").expect("valid names");
    let crate_dir = xtask::new_out_of_tree_plugin(
        &tmp.path().join("src"),
        &plugin,
        &tests_dir.join("../plugins/api"),
    )
    .expect("crate from the template");

    // 2. Write the formula into src/lib.rs.
    let lib = crate_dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    assert!(
        text.contains(TEMPLATE_FORMULA),
        "the template's formula line moved; update this test and CONTRIBUTING.md:\n{text}"
    );
    std::fs::write(&lib, text.replace(TEMPLATE_FORMULA, NEW_FORMULA)).unwrap();

    // 3. Build it as a shared library. The fixture's lock file has the same dependencies
    //    (strata-api, serde), so the build uses the versions the tests already use; the target
    //    folder persists between runs so only this small crate is compiled again.
    std::fs::copy(
        tests_dir.join("fixtures/plugin-ratio-difference/Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    let target = tests_dir.join("../target/adding-a-method");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the new plugin failed");
    let file = format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        plugin.ident(),
        std::env::consts::DLL_EXTENSION
    );
    let plugin_dir = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(target.join("debug").join(&file), plugin_dir.join(&file)).unwrap();

    // 4. Select it by id in a recipe (`[stages.ratio] plugin = "ratio.my-method"`), with the
    //    folder of the library in `plugin_paths`.
    let world = write_world(&tmp.path().join("world"), "ratio.my-method");
    let recipe = std::fs::read_to_string(&world.recipe).unwrap();
    let recipe = recipe.replacen(
        "year_start",
        &format!("plugin_paths = [\"{}\"]\nyear_start", plugin_dir.display()),
        1,
    );
    std::fs::write(&world.recipe, recipe).unwrap();

    // Listed with its own version.
    let (code, out, err) = strata(&["plugins", "--plugin-path", plugin_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("ratio.my-method"))
        .unwrap_or_else(|| panic!("ratio.my-method not listed:\n{out}"));
    assert!(line.contains("0.1.0"), "{line}");

    // 5. `strata run`: every ratio row names the method and follows the formula r2 − r1.
    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let csv = std::fs::read_to_string(world.dir.join("out/factor_ratios.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("sex,"))
        .map(|l| l.split(',').collect())
        .collect();
    let rate = |category: &str, measure: &str| -> Option<f64> {
        let row = rows
            .iter()
            .find(|r| r[col("category")] == category && r[col("measure")] == measure)?;
        row[col("standardised_rate")].parse().ok()
    };
    let mut checked = 0;
    for row in &rows {
        assert_eq!(row[col("ratio_method")], "my method", "{row:?}");
        let measure = row[col("measure")];
        let (Some(female), Some(own), Ok(ratio)) = (
            rate("Female", measure),
            rate(row[col("category")], measure),
            row[col("ratio")].parse::<f64>(),
        ) else {
            continue;
        };
        // Female is the base category of sex.
        let want = own - female;
        assert!(
            (ratio - want).abs() < 1e-5,
            "ratio {ratio}, want {want}: {row:?}"
        );
        if row[col("category")] != "Female" {
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked {checked} rows");
    eprintln!("adding a method: {:.1} s", started.elapsed().as_secs_f64());
}
