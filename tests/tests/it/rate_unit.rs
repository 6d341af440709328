//! The per-population unit is a recipe parameter (`rate_per`): the same year per 1,000 people
//! gives every rate and confidence limit a tenth of its value per 10,000, and every count, ratio,
//! test statistic, p-value and star unchanged — the odds ratio included, which depends on the unit
//! (it turns rates into proportions), and the published Pearson test, which keeps its count basis.

use std::path::{Path, PathBuf};

use strata::pipeline::{InputOverrides, RunResults};
use strata::recipe::Recipe;
use strata_api::{Table, Value};

fn recipe_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name)
}

/// The recipe's own text with `rate_per` set (after `year_start`), read from its own folder so
/// its inputs resolve.
fn with_rate_per(name: &str, rate_per: Option<&str>) -> strata::pipeline::Prepared {
    let path = recipe_path(name);
    let mut source = std::fs::read_to_string(&path).unwrap();
    if let Some(unit) = rate_per {
        let at = source.find("\nyear_start").expect("year_start");
        source.insert_str(at, &format!("\nrate_per = {unit}"));
    }
    let recipe = Recipe::parse(&path, source).expect("recipe");
    strata::pipeline::prepare(recipe).expect("prepare")
}

fn run(prepared: &strata::pipeline::Prepared) -> RunResults {
    let overrides = InputOverrides {
        scale: Some(0.002),
        ..Default::default()
    };
    strata::pipeline::run(prepared, &overrides).expect("run")
}

fn table<'a>(results: &'a RunResults, name: &str) -> &'a Table {
    results
        .tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no {name} table"))
}

/// Statistics of the summary table that are rates (the rest are shares and numbers of areas).
const SUMMARY_RATES: [&str; 7] = [
    "national_rate",
    "mean_standardised_rate",
    "sd_standardised_rate",
    "within_1sd_lower",
    "within_1sd_upper",
    "min_standardised_rate",
    "max_standardised_rate",
];

/// Every cell of `got` against `want`: numbers in rate columns (`is_rate(row, column)`) are
/// `factor` times `want`'s, every other cell is the same value; returns how many rate cells
/// were compared.
fn compare(
    name: &str,
    want: &Table,
    got: &Table,
    factor: f64,
    is_rate: impl Fn(&[Value], &str) -> bool,
) -> usize {
    assert_eq!(got.columns, want.columns, "{name} columns");
    assert_eq!(got.rows.len(), want.rows.len(), "{name} rows");
    let mut rates = 0;
    for (i, (g, w)) in got.rows.iter().zip(&want.rows).enumerate() {
        for ((column, a), b) in want.columns.iter().zip(g).zip(w) {
            let at = format!("{name} row {i} `{column}`");
            match (a, b) {
                (Value::Number(a), Value::Number(b)) if is_rate(w, column) => {
                    assert!(
                        (a - b * factor).abs() <= 1e-12 * (b * factor).abs().max(1e-300),
                        "{at}: {a} is not {factor} × {b}"
                    );
                    rates += 1;
                }
                // Relative to the value, or absolute below 1: a statistic near 0 (Pearson's
                // 0.000021 for a 2020/21 category almost at its reference) is a difference of
                // terms of order 1, so rescaling the rates moves it by rounding of ~1e-17.
                (Value::Number(a), Value::Number(b)) => {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0) || a == b,
                        "{at}: {a} differs from {b}"
                    );
                }
                (a, b) => assert_eq!(a, b, "{at}"),
            }
        }
    }
    rates
}

fn text(row: &[Value], table: &Table, column: &str) -> String {
    let i = table.columns.iter().position(|c| c == column).unwrap();
    match &row[i] {
        Value::Text(s) => s.clone(),
        _ => String::new(),
    }
}

/// 2020/21 (odds ratios, 65+ standing in for 75+ X-ray) per 1,000 against per 10,000.
#[test]
fn rates_per_1000_are_a_tenth_and_ratios_p_values_and_stars_are_unchanged() {
    let per_10k = run(&with_rate_per("did-2020-21-ccg.toml", None));
    let per_1k = run(&with_rate_per("did-2020-21-ccg.toml", Some("1000")));
    let tenth = 0.1;

    let national = table(&per_10k, "national_rates");
    let n = compare(
        "national_rates",
        national,
        table(&per_1k, "national_rates"),
        tenth,
        |_, c| c == "rate",
    );
    assert_eq!(n, national.rows.len());

    let area_rate_columns = [
        "crude_rate",
        "standardised_rate",
        "ci_lower",
        "ci_upper",
        "ci_lower_99_8",
        "ci_upper_99_8",
    ];
    let n = compare(
        "area_rates",
        table(&per_10k, "area_rates"),
        table(&per_1k, "area_rates"),
        tenth,
        |_, c| area_rate_columns.contains(&c),
    );
    assert!(n > 1000, "{n} area rate cells");

    let factors = table(&per_10k, "factor_ratios");
    let n = compare(
        "factor_ratios",
        factors,
        table(&per_1k, "factor_ratios"),
        tenth,
        |_, c| c == "standardised_rate",
    );
    assert_eq!(n, factors.rows.len());
    // The comparison covers what the unit could move: defined odds ratios, stars set, and the
    // row 65+ fills for X-ray because odds are undefined at 75+.
    let stars = factors
        .rows
        .iter()
        .filter(|r| !text(r, factors, "stars").is_empty())
        .count();
    assert!(stars > 10, "{stars} starred rows");
    assert!(
        factors
            .rows
            .iter()
            .any(|r| text(r, factors, "category") == "65+"
                && text(r, factors, "measure") == "xray"
                && text(r, factors, "note").contains("65+ reported instead")),
        "65+ stands in for 75+ X-ray per 1,000 as per 10,000"
    );

    let summary = table(&per_10k, "summary");
    let n = compare(
        "summary",
        summary,
        table(&per_1k, "summary"),
        tenth,
        |row, c| c == "value" && SUMMARY_RATES.contains(&text(row, summary, "statistic").as_str()),
    );
    assert!(n > 50, "{n} summary rate cells");

    // The unit is in the titles, never in a table name or column.
    assert_eq!(
        table(&per_1k, "area_rates").title,
        "Standardised rates per 1,000 by area and measure"
    );
    assert_eq!(
        table(&per_10k, "national_rates").title,
        "National rates per 10,000 by measure"
    );
}

/// A recipe that names the default unit is the recipe that names none, fingerprint included;
/// another unit is another recipe.
#[test]
fn the_default_unit_keeps_the_fingerprint_and_another_changes_it() {
    let none = with_rate_per("did-2023-24-icb.toml", None).recipe;
    let default = with_rate_per("did-2023-24-icb.toml", Some("10000")).recipe;
    let thousand = with_rate_per("did-2023-24-icb.toml", Some("1000.0")).recipe;
    assert_eq!(none.rate_per, 10_000.0);
    assert_eq!(thousand.rate_per, 1_000.0);
    assert_eq!(none.fingerprint(), default.fingerprint());
    assert_ne!(none.fingerprint(), thousand.fingerprint());
}

/// A unit that is not a positive number of people is refused at its place in the recipe.
#[test]
fn a_unit_that_is_not_a_positive_number_is_refused_with_its_position() {
    let path = recipe_path("did-2023-24-icb.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    let at = source.find("\nyear_start").unwrap();
    let line = source[..at].lines().count() + 1;
    for bad in ["0", "-1000", "\"ten thousand\"", "nan"] {
        let mut text = source.clone();
        text.insert_str(at, &format!("\nrate_per = {bad}"));
        let Err(e) = Recipe::parse(&path, text) else {
            panic!("rate_per = {bad} is accepted");
        };
        let message = e.to_string();
        for needle in [
            format!("did-2023-24-icb.toml:{line}:"),
            "rate_per must be a positive number of people".to_string(),
        ] {
            assert!(message.contains(&needle), "{needle} not in {message}");
        }
    }
}
