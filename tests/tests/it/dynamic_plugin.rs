//! Shared-library plugins: an out-of-tree method built as a `cdylib`, selected by id in a recipe
//! and loaded with libloading; and a library built for another plugin API, refused.

use strata_tests::{build_fixture, strata, temp_dir, write_world};

#[test]
fn an_out_of_tree_ratio_plugin_is_loaded_and_used() {
    let tmp = temp_dir("dynamic");
    let plugin_dir = tmp.path().join("plugins");
    build_fixture(
        "plugin-ratio-difference",
        "strata_ratio_difference",
        &plugin_dir,
    );
    let world = write_world(&tmp.path().join("world"), "ratio.difference");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    let text = text.replacen(
        "year_start",
        &format!("plugin_paths = [\"{}\"]\nyear_start", plugin_dir.display()),
        1,
    );
    std::fs::write(&world.recipe, text).unwrap();

    // Listed, with where it came from.
    let (code, out, err) = strata(&["plugins", "--plugin-path", plugin_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("ratio.difference"))
        .expect("listed");
    assert!(line.starts_with("ratio"), "{line}");
    assert!(line.contains("strata_ratio_difference"), "{line}");

    // Selected by id and used: every ratio equals the rate difference.
    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let csv = std::fs::read_to_string(world.dir.join("out/factor_ratios.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut checked = 0;
    for line in csv.lines().skip(1).filter(|l| l.starts_with("sex,")) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[col("ratio_method")], "rate difference per 10000");
        let (Ok(rate), Ok(ratio)) = (
            cells[col("standardised_rate")].parse::<f64>(),
            cells[col("ratio")].parse::<f64>(),
        ) else {
            continue;
        };
        if cells[col("category")] == "Female" {
            assert!(ratio.abs() < 1e-9, "base difference is 0: {line}");
        } else {
            let female = csv
                .lines()
                .find(|l| {
                    l.starts_with("sex,Female,")
                        && l.split(',').nth(col("measure")) == Some(cells[col("measure")])
                })
                .and_then(|l| {
                    l.split(',')
                        .nth(col("standardised_rate"))?
                        .parse::<f64>()
                        .ok()
                })
                .unwrap();
            assert!((ratio - (rate - female)).abs() < 1e-5, "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked {checked} rows");
    let manifest = std::fs::read_to_string(world.dir.join("out/manifest.json")).unwrap();
    assert!(
        manifest.contains("strata_ratio_difference"),
        "manifest names the library"
    );
}

#[test]
fn a_plugin_built_for_another_api_version_is_refused() {
    let tmp = temp_dir("old-api");
    let plugin_dir = tmp.path().join("plugins");
    build_fixture("plugin-old-api", "strata_old_api", &plugin_dir);
    let (code, _, err) = strata(&["plugins", "--plugin-path", plugin_dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("strata_old_api"), "names the plugin: {err}");
    assert!(
        err.contains("API version 0"),
        "names the version found: {err}"
    );
    assert!(
        err.contains(&format!("expects API version {}", strata_api::API_VERSION)),
        "names the version expected: {err}"
    );
}
