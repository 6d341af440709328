//! A methodologist swaps one method and sees exactly which results change.

use strata_tests::{strata, temp_dir, write_world};

#[test]
fn diff_between_odds_and_rate_ratios_lists_the_changed_cells() {
    let tmp = temp_dir("diff");
    let odds = write_world(&tmp.path().join("odds"), "ratio.odds");
    let rate = write_world(&tmp.path().join("rate"), "ratio.rate");
    let out = tmp.path().join("diff.csv");
    let (code, stdout, err) = strata(&[
        "diff",
        odds.recipe.to_str().unwrap(),
        rate.recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains("factor_ratios.ratio_method: `odds ratio` → `rate ratio`"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // Only factor-ratio cells change: the ratio, or the note saying why there is none.
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.starts_with("factor_ratios,")
                && (r.contains(",ratio,") || r.contains(",note,"))),
        "{csv}"
    );
    // Non-base categories of measures with activity change; base categories (ratio 1) do not.
    assert!(
        rows.iter().any(|r| r.contains("sex / Male / xray")),
        "{csv}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.contains("Female") && r.contains(",ratio,")),
        "{csv}"
    );
}

#[test]
fn diff_of_a_recipe_with_itself_is_empty() {
    let tmp = temp_dir("diff-self");
    let rate = write_world(tmp.path(), "ratio.rate");
    let recipe = rate.recipe.to_str().unwrap();
    let (code, stdout, _) = strata(&["diff", recipe, recipe]);
    assert_eq!(code, 0);
    assert!(stdout.contains("0 cells differ"), "{stdout}");
}

/// Exclusions are a stage: sharing out unknown sex instead of leaving those records out keeps
/// them in the rates (national observed counts rise by at most what the complete-case run left
/// out for sex alone) and drops `missing_sex` from the exclusions table.
#[test]
fn imputing_unknown_sex_keeps_those_records_in_the_rates() {
    let tmp = temp_dir("impute");
    let complete = write_world(&tmp.path().join("complete"), "ratio.rate");
    let impute = write_world(&tmp.path().join("impute"), "ratio.rate");
    let text = std::fs::read_to_string(&impute.recipe).unwrap();
    let text = text.replacen(
        "plugin = \"exclusions.complete-case\"",
        "plugin = \"exclusions.impute-unknown\"\nparams = { impute = [\"sex\"] }",
        1,
    );
    std::fs::write(&impute.recipe, text).unwrap();
    for world in [&complete, &impute] {
        let (code, out, err) = strata(&["run", world.recipe.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let read = |dir: &std::path::Path, name: &str| {
        std::fs::read_to_string(dir.join("out").join(name)).unwrap()
    };
    // Total tests of the modality measures in national_rates (observed is column 2).
    let modalities = [
        "xray",
        "ultrasound",
        "ct",
        "mri",
        "fluoroscopy",
        "nuclear_medicine",
        "pet",
        "spect",
        "medical_photography",
    ];
    let observed = |dir: &std::path::Path| -> f64 {
        read(dir, "national_rates.csv")
            .lines()
            .skip(1)
            .filter(|l| modalities.iter().any(|m| l.starts_with(&format!("{m},"))))
            .map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap())
            .sum()
    };
    // Tests in the exclusions table under one reason.
    let excluded = |dir: &std::path::Path, reason: &str| -> f64 {
        read(dir, "exclusions.csv")
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(2) == Some(reason))
            .map(|l| l.split(',').nth(3).unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let gained = observed(&impute.dir) - observed(&complete.dir);
    let no_longer_excluded =
        excluded(&complete.dir, "excluded") - excluded(&impute.dir, "excluded");
    assert!(
        excluded(&complete.dir, "missing_sex") > 0.0,
        "the world has unknown sexes"
    );
    assert_eq!(excluded(&impute.dir, "missing_sex"), 0.0);
    assert!(gained > 0.0, "imputed records count: {gained}");
    // Records of an unknown modality are in no measure, so the gain is at most the drop.
    assert!(
        gained <= no_longer_excluded + 1e-6,
        "{gained} gained, {no_longer_excluded} no longer excluded"
    );
    let manifest = read(&impute.dir, "manifest.json");
    assert!(manifest.contains("exclusions.impute-unknown"), "{manifest}");
}
