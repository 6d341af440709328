//! Shared-library plugins of the structured stages (exclusions, standardisation, summary,
//! disclosure), which cross the C ABI as serialized calls: a foreign copy of a built-in gives
//! byte-identical outputs, and a broken one fails the run naming the plugin.

use std::path::{Path, PathBuf};

use strata_tests::{World, build_fixture, strata, temp_dir, write_world};

/// The settings of the NHS rule in the published recipes, on the test world's tables.
const DISCLOSURE: &str = "\n[stages.disclosure]\nplugin = \"disclosure.nhs-sub-national\"\n\
    params = { suppress_max = 7, round_to = 5, group_by = \"measure\", total_published_elsewhere = true }\n";

/// A test world whose recipe selects `plugin` where `builtin` was, with `plugin_dir` searched.
fn world_with(dir: &Path, builtin: &str, plugin: &str, plugin_dir: &Path) -> World {
    let world = write_world(dir, "ratio.odds");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    let text = text.replacen("[outputs]", &format!("{DISCLOSURE}\n[outputs]"), 1);
    let selected = format!("plugin = \"{builtin}\"");
    assert!(
        text.contains(&selected),
        "the test recipe selects {builtin}"
    );
    let text = text
        .replacen(&selected, &format!("plugin = \"{plugin}\""), 1)
        .replacen(
            "year_start",
            &format!("plugin_paths = [\"{}\"]\nyear_start", plugin_dir.display()),
            1,
        );
    std::fs::write(&world.recipe, text).unwrap();
    world
}

/// Every output file of a run, by name, except the manifest (which names the plugins and where
/// they came from, so it differs by design).
fn outputs(world: &World) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(world.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "manifest.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn run_ok(world: &World) {
    let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn foreign_copies_of_structured_stages_give_byte_identical_outputs() {
    let tmp = temp_dir("foreign-copies");
    let plugin_dir = tmp.path().join("plugins");
    let copies = [
        (
            "plugin-exclusions-copy",
            "strata_exclusions_copy",
            "exclusions.complete-case",
        ),
        (
            "plugin-standardise-copy",
            "strata_standardise_copy",
            "standardise.indirect",
        ),
        (
            "plugin-summary-copy",
            "strata_summary_copy",
            "summary.dispersion",
        ),
        (
            "plugin-disclosure-copy",
            "strata_disclosure_copy",
            "disclosure.nhs-sub-national",
        ),
    ];
    for (fixture, library, _) in copies {
        build_fixture(fixture, library, &plugin_dir);
    }
    let builtin = world_with(
        &tmp.path().join("builtin"),
        "ratio.odds",
        "ratio.odds",
        &plugin_dir,
    );
    run_ok(&builtin);
    let expected = outputs(&builtin);
    let table = |name: &str| {
        let (_, bytes) = expected.iter().find(|(n, _)| n == name).expect(name);
        String::from_utf8_lossy(bytes).into_owned()
    };
    // The disclosure rule has cells to protect, and the summary has rows: the copies are used.
    assert!(
        table("exclusions.csv").contains(",*"),
        "disclosure suppressed a cell"
    );
    assert!(
        table("summary.csv").lines().count() > 1,
        "the summary has rows"
    );
    assert!(
        expected.iter().any(|(n, _)| n == "area_rates.csv"),
        "the run wrote its tables"
    );
    for (_, library, id) in copies {
        let copy = format!("{id}-copy");
        let world = world_with(&tmp.path().join(library), id, &copy, &plugin_dir);
        run_ok(&world);
        let got = outputs(&world);
        let names = |o: &[(String, Vec<u8>)]| o.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&got),
            names(&expected),
            "{copy} writes the same files"
        );
        let mut tables = 0;
        for ((name, a), (_, b)) in expected.iter().zip(&got) {
            // The report and the workbook embed the manifest or the recipe's path and
            // fingerprint, which differ by design (another plugin, from a library); they are
            // made from the tables compared here.
            if name == "report.html" || name.ends_with(".xlsx") {
                continue;
            }
            assert!(a == b, "{copy}: {name} differs from the built-in's");
            tables += usize::from(name.ends_with(".csv"));
        }
        assert!(tables >= 5, "{copy}: compared {tables} tables");
        let manifest = std::fs::read_to_string(world.dir.join("out/manifest.json")).unwrap();
        assert!(
            manifest.contains(library),
            "the manifest names the library: {manifest}"
        );
    }
}

#[test]
fn a_failing_foreign_structured_stage_fails_the_run_naming_the_plugin() {
    let tmp = temp_dir("foreign-broken");
    let plugin_dir = tmp.path().join("plugins");
    build_fixture(
        "plugin-exclusions-broken",
        "strata_exclusions_broken",
        &plugin_dir,
    );
    let cases = [
        ("error", "exclusions.broken was told to fail"),
        ("shape", "counts of another shape"),
        ("nan", "a count of NaN"),
        ("panic", "plugin panicked: exclusions.broken was given"),
        ("garbage", "undecodable bytes"),
    ];
    for (fail, says) in cases {
        let world = world_with(
            &tmp.path().join(fail),
            "exclusions.complete-case",
            "exclusions.broken",
            &plugin_dir,
        );
        let text = std::fs::read_to_string(&world.recipe).unwrap();
        let text = text.replacen(
            "plugin = \"exclusions.broken\"",
            &format!("plugin = \"exclusions.broken\"\nparams = {{ fail = \"{fail}\" }}"),
            1,
        );
        std::fs::write(&world.recipe, text).unwrap();
        let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
        assert_ne!(code, 0, "{fail}: the run must fail\n{out}{err}");
        assert!(
            !err.contains("RUST_BACKTRACE"),
            "{fail}: no panic reaches the host: {err}"
        );
        assert!(
            err.contains("exclusions.broken"),
            "{fail}: names the plugin: {err}"
        );
        assert!(err.contains(says), "{fail}: says `{says}`: {err}");
        assert!(
            !world.dir.join("out/area_rates.csv").exists(),
            "{fail}: no table is written from a failed stage"
        );
    }
}
