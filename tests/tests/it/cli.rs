//! The command line as a newcomer meets it: `check`, `plugins`, `run`, exit codes.

use strata_tests::{strata, temp_dir, write_world};

#[test]
fn check_reports_a_misspelt_key_with_its_position() {
    let tmp = temp_dir("misspelt");
    let world = write_world(tmp.path(), "ratio.rate");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    // Line 4 is `area_kind = "ICB"`; misspell it.
    let bad = text.replacen("area_kind =", "area_knd =", 1);
    assert_eq!(bad.lines().nth(3), Some("area_knd = \"ICB\""));
    std::fs::write(&world.recipe, bad).unwrap();

    let (code, _, err) = strata(&["check", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let expected = format!("{}:4:1:", world.recipe.display());
    assert!(err.contains(&expected), "wanted `{expected}` in: {err}");
    assert!(err.contains("area_knd"), "{err}");
}

#[test]
fn check_reports_an_unknown_plugin_and_a_refused_parameter() {
    let tmp = temp_dir("unknown-plugin");
    let world = write_world(tmp.path(), "ratio.odd");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    let text = text.replace("levels = [0.95, 0.998]", "levels = [0.95, 1.5]");
    std::fs::write(&world.recipe, &text).unwrap();

    let (code, _, err) = strata(&["check", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let plugin_line = line_of("\"ratio.odd\"");
    assert!(
        err.contains(&format!(":{plugin_line}:10: unknown plugin `ratio.odd`")),
        "{err}"
    );
    assert!(err.contains("ratio.odds"), "lists the available ids: {err}");
    let levels_line = line_of("levels = [0.95, 1.5]");
    assert!(err.contains(&format!(":{levels_line}:")), "{err}");
    assert!(err.contains("`levels`"), "{err}");
}

#[test]
fn check_reports_a_missing_input_file_and_a_wrong_schema() {
    let tmp = temp_dir("missing-file");
    let world = write_world(tmp.path(), "ratio.rate");
    std::fs::remove_file(world.dir.join("lsoa.csv")).unwrap();
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    std::fs::write(&world.recipe, text.replace("schema = 1", "schema = 7")).unwrap();
    let (code, _, err) = strata(&["check", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":1:10: schema version 7 is not supported"),
        "{err}"
    );
    assert!(err.contains("file `lsoa.csv` not found"), "{err}");
}

#[test]
fn plugins_lists_every_builtin_with_stage_and_version() {
    let (code, out, _) = strata(&["plugins"]);
    assert_eq!(code, 0);
    for d in strata::plugins::builtin() {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(d.id))
            .unwrap_or_else(|| panic!("{} not listed in:\n{out}", d.id));
        assert!(line.starts_with(d.stage.key()), "{line}");
        assert!(line.contains(d.version), "{line}");
    }
    // Every stage has at least one plugin.
    for stage in strata_api::StageKind::ALL {
        assert!(
            out.lines().any(|l| l.starts_with(stage.key())),
            "{stage} missing"
        );
    }
}

#[test]
fn bad_invocation_exits_2_and_help_exits_0() {
    assert_eq!(strata(&["frobnicate"]).0, 2);
    let (code, out, _) = strata(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("strata run"), "{out}");
}

#[test]
fn run_writes_every_table_and_a_manifest() {
    let tmp = temp_dir("run");
    let world = write_world(tmp.path(), "ratio.rate");
    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let dir = world.dir.join("out");
    for name in [
        "national_rates.csv",
        "area_rates.csv",
        "factor_ratios.csv",
        "summary.csv",
        "exclusions.csv",
        "manifest.json",
    ] {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["recipe_fingerprint"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(manifest["plugins"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        manifest["inputs"]["activity"]["sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert!(manifest["inputs"]["activity"]["rows"].as_u64().unwrap() > 1000);
    let stages = manifest["stages"].as_array().unwrap();
    assert!(
        stages
            .iter()
            .any(|s| s["stage"] == "standardisation" && s["rows_out"].as_u64() == Some(3 * 14))
    );
    // Every area row names its method.
    let area_rates = std::fs::read_to_string(dir.join("area_rates.csv")).unwrap();
    assert!(
        area_rates
            .lines()
            .skip(1)
            .all(|l| l.contains("byar-exact 95%/99.8%"))
    );
}

#[test]
fn a_synthetic_scale_outside_zero_to_one_is_refused() {
    let tmp = temp_dir("scale");
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/did-2023-24-icb.toml"
    );
    let out = tmp.path().join("out");
    for scale in ["2", "0", "-0.5", "NaN"] {
        let scale_arg = format!("--scale={scale}");
        let (code, _, err) = strata(&["run", recipe, &scale_arg, "--out", &out.to_string_lossy()]);
        assert_eq!(code, 2, "--scale {scale}: {err}");
        assert!(err.contains("scale is in (0, 1]"), "{err}");
    }
    assert!(!out.exists());
}

/// A stale `STRATA_PLUGIN_PATH` (a folder that is gone) is named in the error, exit 2.
#[test]
fn a_stale_plugin_path_variable_is_named() {
    let recipe = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/example.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata-under-test"))
        .args(["check", recipe])
        .env("STRATA_PLUGIN_PATH", "/nonexistent/strata-plugins")
        .output()
        .expect("run strata");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("STRATA_PLUGIN_PATH"), "{err}");
    assert!(err.contains("/nonexistent/strata-plugins"), "{err}");
}

/// `--mapping` is for a record-level extract: with aggregated counts or the synthetic year it
/// would be silently unused, so it is refused before anything is read.
#[test]
fn a_mapping_without_an_extract_is_refused() {
    let tmp = temp_dir("mapping-without-extract");
    let world = write_world(tmp.path(), "ratio.rate");
    let mapping = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/mappings/udal-dids.toml"
    );
    let counts = world.dir.join("activity.csv");
    let (code, _, err) = strata(&[
        "run",
        world.recipe.to_str().unwrap_or_default(),
        "--counts",
        counts.to_str().unwrap_or_default(),
        "--mapping",
        mapping,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--mapping maps a record-level extract"),
        "{err}"
    );
    assert!(!world.dir.join("out").exists(), "nothing written");
}

/// `--sampling poisson` draws the synthetic year's counts independently (the manifest says so)
/// and verify then allows every figure from counts its sampling error ("4 standard errors" in
/// the tolerance);
/// the recipe's own (systematic) sampling gives other counts and the recipe's tolerances alone.
/// A sampling that does not exist is refused, exit 2, naming the two that do.
#[test]
fn poisson_sampling_is_recorded_and_widens_verify_by_its_error() {
    let tmp = temp_dir("sampling");
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/did-2023-24-icb.toml"
    );
    let run = |sampling: &str| {
        let out = tmp.path().join(sampling);
        let (code, stdout, err) = strata(&[
            "verify",
            recipe,
            "--scale=0.002",
            &format!("--sampling={sampling}"),
            "--out",
            &out.to_string_lossy(),
        ]);
        assert!(code == 0 || code == 1, "{stdout}{err}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let verify = std::fs::read_to_string(out.join("verify.csv")).unwrap();
        let national = std::fs::read_to_string(out.join("national_rates.csv")).unwrap();
        (manifest["synthetic"]["sampling"].clone(), verify, national)
    };
    let (poisson, poisson_verify, poisson_national) = run("poisson");
    let (systematic, systematic_verify, systematic_national) = run("systematic");
    assert_eq!(poisson, "poisson");
    assert_eq!(systematic, "systematic");
    assert_ne!(poisson_national, systematic_national);
    let national_xray = |verify: &str| {
        verify
            .lines()
            .find(|l| l.contains("xray rate per 10,000"))
            .unwrap()
            .to_string()
    };
    assert!(
        national_xray(&poisson_verify).contains("(4 standard errors)"),
        "{poisson_verify}"
    );
    assert!(
        !systematic_verify.contains("standard errors"),
        "{systematic_verify}"
    );

    let (code, _, err) = strata(&["run", recipe, "--sampling=uniform"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`poisson` or `systematic`"), "{err}");
}
