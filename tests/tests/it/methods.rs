//! Methods a methodologist asks for beyond the publications' (issue 13), each chosen by a recipe
//! and named in every row it produces: confidence limits for the factor ratios.

use strata_tests::{strata, temp_dir, write_world};

/// A CSV table as a header and rows of text cells.
fn read_table(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("a CSV table");
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Runs the test world with the ratio plugin `ratio` and its `params` (TOML inline-table body,
/// empty for none), returning `factor_ratios.csv`.
fn factor_ratios(name: &str, ratio: &str, params: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let tmp = temp_dir(name);
    let world = write_world(tmp.path(), ratio);
    if !params.is_empty() {
        let text = std::fs::read_to_string(&world.recipe).expect("recipe");
        let text = text.replacen(
            &format!("plugin = \"{ratio}\"\n"),
            &format!("plugin = \"{ratio}\"\nparams = {{ {params} }}\n"),
            1,
        );
        std::fs::write(&world.recipe, text).expect("recipe");
    }
    let (code, out, err) = strata(&["run", world.recipe.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    read_table(&world.dir.join("out").join("factor_ratios.csv"))
}

/// The table without the columns whose names start with `ratio_ci`.
fn without_limits(table: &(Vec<String>, Vec<Vec<String>>)) -> (Vec<String>, Vec<Vec<String>>) {
    let keep: Vec<usize> = (0..table.0.len())
        .filter(|&i| !table.0[i].starts_with("ratio_ci"))
        .collect();
    let pick = |row: &Vec<String>| keep.iter().map(|&i| row[i].clone()).collect::<Vec<_>>();
    (pick(&table.0), table.1.iter().map(pick).collect())
}

/// Asking the rate ratio for Katz limits adds their columns and changes nothing else; each
/// non-base row's limits are ratio × exp(∓ z √(1/O_base + 1/O)) of the printed counts, and every
/// row names the limits' method.
#[test]
fn katz_limits_of_rate_ratios_are_opt_in_and_by_the_formula() {
    let plain = factor_ratios("ratio-plain", "ratio.rate", "");
    assert!(
        !plain.0.iter().any(|c| c.starts_with("ratio_ci")),
        "{:?}",
        plain.0
    );
    let limited = factor_ratios(
        "ratio-katz",
        "ratio.rate",
        "limits = \"log-normal\", levels = [0.95, 0.998]",
    );
    assert_eq!(
        without_limits(&limited),
        plain,
        "only the limit columns differ"
    );
    let col = |name: &str| limited.0.iter().position(|c| c == name).expect(name);
    let number = |row: &Vec<String>, name: &str| row[col(name)].parse::<f64>().ok();
    let mut checked = 0;
    for row in &limited.1 {
        assert_eq!(row[col("ratio_ci_method")], "Katz log-normal 95%/99.8%");
        // The base category is the first row of its factor × measure, with no limits.
        let base = limited
            .1
            .iter()
            .find(|b| {
                b[col("factor")] == row[col("factor")] && b[col("measure")] == row[col("measure")]
            })
            .expect("a base row");
        assert!(base[col("ratio_ci_lower")].is_empty(), "{base:?}");
        if std::ptr::eq(base, row) {
            continue;
        }
        let (Some(ratio), Some(o), Some(o_base)) = (
            number(row, "ratio"),
            number(row, "observed"),
            number(base, "observed"),
        ) else {
            continue;
        };
        let se = (1.0 / o_base + 1.0 / o).sqrt();
        for (lower, upper, z) in [
            ("ratio_ci_lower", "ratio_ci_upper", 1.959_963_984_540_054),
            (
                "ratio_ci_lower_99_8",
                "ratio_ci_upper_99_8",
                3.090_232_306_167_813,
            ),
        ] {
            let (l, u) = (
                number(row, lower).expect("lower"),
                number(row, upper).expect("upper"),
            );
            // The CSV prints ratios and limits at fixed precision.
            assert!((l - ratio * (-z * se).exp()).abs() < 1e-4, "{row:?}");
            assert!((u - ratio * (z * se).exp()).abs() < 1e-4, "{row:?}");
            assert!(l <= ratio && ratio <= u);
        }
        checked += 1;
    }
    assert!(checked > 20, "{checked} rows checked");
}

/// Woolf's limits of the odds ratios: every defined non-base odds ratio gets limits that bracket
/// it, a ratio without odds (p ≥ 1) none.
#[test]
fn woolf_limits_of_odds_ratios_bracket_each_ratio() {
    let plain = factor_ratios("odds-plain", "ratio.odds", "");
    let limited = factor_ratios("odds-woolf", "ratio.odds", "limits = \"woolf\"");
    assert_eq!(without_limits(&limited), plain);
    let col = |name: &str| limited.0.iter().position(|c| c == name).expect(name);
    let mut bracketed = 0;
    for row in &limited.1 {
        assert_eq!(row[col("ratio_ci_method")], "Woolf logit 95%");
        assert_eq!(row[col("ratio_ci_level")], "0.950000");
        let ratio = row[col("ratio")].parse::<f64>();
        match (
            ratio,
            row[col("ratio_ci_lower")].parse::<f64>(),
            row[col("ratio_ci_upper")].parse::<f64>(),
        ) {
            (Ok(r), Ok(l), Ok(u)) => {
                assert!(l < r && r < u, "{row:?}");
                bracketed += 1;
            }
            (Err(_), lower, _) => assert!(lower.is_err(), "no ratio, no limits: {row:?}"),
            _ => {}
        }
    }
    assert!(bracketed > 20, "{bracketed}");
}
