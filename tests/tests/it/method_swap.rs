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
