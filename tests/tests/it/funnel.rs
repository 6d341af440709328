//! Funnel plots agree with the area limits: every area's point is outside a funnel level exactly
//! when its own confidence limits at that level (in `area_rates`) exclude the national rate, for
//! both published years' runs and every built-in confidence-interval method.

use std::path::Path;

use strata_api::{ConfidenceIntervalMethod, Configured, Params, Table, Value};

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn column(t: &Table, name: &str) -> usize {
    t.columns
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("{} has no column {name}", t.name))
}

fn number(row: &[Value], i: usize) -> f64 {
    match &row[i] {
        Value::Number(n) => *n,
        other => panic!("not a number: {other:?}"),
    }
}

/// Runs a recipe at a small synthetic scale and checks every point against its own limits;
/// returns how many points were outside some funnel level.
fn check_recipe(recipe: &str) -> usize {
    let prepared = strata::check(&workspace().join("configs").join(recipe)).expect("checks");
    let overrides = strata::pipeline::InputOverrides {
        scale: Some(0.002),
        ..Default::default()
    };
    let results = strata::pipeline::run(&prepared, &overrides).expect("runs");
    let method = prepared
        .methods
        .confidence_interval()
        .expect("the recipe has a confidence-interval stage");
    let rates = results.rates.as_ref().expect("the recipe standardises");
    let area_rates = results
        .tables
        .iter()
        .find(|t| t.name == "area_rates")
        .expect("area_rates");
    // The limits columns of each level, in the method's order (the first level is `ci_lower`).
    let level_columns = [
        (
            column(area_rates, "ci_lower"),
            column(area_rates, "ci_upper"),
        ),
        (
            column(area_rates, "ci_lower_99_8"),
            column(area_rates, "ci_upper_99_8"),
        ),
    ];
    // `area_rates` has one row per standardised rate, in the same order.
    let points: Vec<usize> = (0..rates.areas.len())
        .filter(|&j| rates.areas[j].expected > 0.0)
        .collect();
    let expected: Vec<f64> = points.iter().map(|&j| rates.areas[j].expected).collect();
    let funnel = method.funnel_limits(&expected).expect("funnel_limits");
    assert_eq!(
        funnel.len(),
        level_columns.len(),
        "{recipe}: one funnel per level"
    );
    let mut outside = 0;
    for (i, &j) in points.iter().enumerate() {
        let r = &rates.areas[j];
        let row = &area_rates.rows[j];
        let ratio = r.standardised_rate / r.national_rate;
        for (level, (lower, upper)) in funnel.iter().zip(level_columns) {
            let (own_lower, own_upper) = (number(row, lower), number(row, upper));
            let above = ratio > level.upper[i];
            let below = ratio < level.lower[i];
            let context = format!(
                "{recipe}: area {} measure {} O {} E {} ratio {ratio} at {}: funnel {}..{}, own \
                 limits {own_lower}..{own_upper} against national {}",
                r.area,
                r.measure,
                r.observed,
                r.expected,
                level.level,
                level.lower[i],
                level.upper[i],
                r.national_rate
            );
            assert_eq!(above, own_lower > r.national_rate, "{context}");
            assert_eq!(below, own_upper < r.national_rate, "{context}");
            outside += usize::from(above || below);
        }
    }
    outside
}

#[test]
fn every_funnel_point_is_on_the_side_its_own_limits_say_2023_24() {
    assert!(
        check_recipe("did-2023-24-icb.toml") > 10,
        "some areas are outside the funnel"
    );
}

#[test]
fn every_funnel_point_is_on_the_side_its_own_limits_say_2020_21() {
    assert!(
        check_recipe("did-2020-21-ccg.toml") > 10,
        "some areas are outside the funnel"
    );
}

/// Every built-in method, on every count from 0 to 300 at expected counts from 0.25 to 600: a
/// count is outside its funnel exactly when its own limits exclude 1, wherever the method's limits
/// rise with the count. The default and exact methods must rise everywhere (a jump where one
/// formula hands over to another would show here); log-normal upper limits do not at the
/// smallest counts, where no curve can agree and the chart's hover text gives the area's own
/// limits.
#[test]
fn every_built_in_method_s_funnel_agrees_with_its_limits() {
    let registry = strata::plugins::builtin();
    let methods: Vec<(&str, Box<dyn ConfidenceIntervalMethod>)> = registry
        .iter()
        .filter(|d| d.stage == strata_api::StageKind::ConfidenceInterval)
        .map(|d| match (d.configure)(&Params::default()) {
            Ok(Configured::ConfidenceInterval(m)) => (d.id, m),
            _ => panic!("{} configures with its defaults", d.id),
        })
        .collect();
    assert!(methods.len() >= 3, "{} methods", methods.len());
    let expected: Vec<f64> = (0..400).map(|i| 0.25 * 1.02f64.powi(i)).collect();
    let counts: Vec<f64> = (0..=300).map(f64::from).collect();
    for (id, method) in &methods {
        let funnel = method.funnel_limits(&expected).expect("funnel_limits");
        // own[o][level]: limits of every expected count at count o.
        let own: Vec<_> = counts
            .iter()
            .map(|&o| {
                method
                    .limits(
                        &vec![o; expected.len()],
                        &expected,
                        &vec![1.0; expected.len()],
                    )
                    .expect("limits")
            })
            .collect();
        let mut checked = 0;
        for (k, level) in funnel.iter().enumerate() {
            for (i, e) in expected.iter().enumerate() {
                let rises = own.windows(2).all(|w| {
                    w[1][k].lower[i] >= w[0][k].lower[i] && w[1][k].upper[i] >= w[0][k].upper[i]
                });
                if !rises {
                    assert!(
                        !matches!(*id, "ci.byar-exact" | "ci.exact"),
                        "{id} at {}: limits fall somewhere between counts 0 and 300 at E {e}",
                        level.level
                    );
                    continue;
                }
                for (o, limits) in counts.iter().zip(&own) {
                    let ratio = o / e;
                    let (lower, upper) = (limits[k].lower[i], limits[k].upper[i]);
                    let context = format!(
                        "{id} at {}: O {o} E {e} funnel {}..{} own {lower}..{upper}",
                        level.level, level.lower[i], level.upper[i]
                    );
                    assert_eq!(ratio > level.upper[i], lower > 1.0, "{context}");
                    assert_eq!(ratio < level.lower[i], upper < 1.0, "{context}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100_000, "{id}: {checked} checked");
    }
}
