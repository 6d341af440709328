//! Properties of the Byar/exact limits on random observed and expected counts.

use proptest::prelude::*;
use strata_api::{ConfidenceIntervalMethod, Configured, Params};

fn method(levels: &str) -> Box<dyn ConfidenceIntervalMethod> {
    let params = Params::from_toml_str(&format!("levels = {levels}")).expect("valid toml");
    match (strata_ci_byar_exact::DESCRIPTOR.configure)(&params) {
        Ok(Configured::ConfidenceInterval(m)) => m,
        _ => panic!("configures"),
    }
}

proptest! {
    #[test]
    fn limits_bracket_o_over_e_and_widen_with_the_level(
        rows in prop::collection::vec((0u32..5_000, 0.5f64..5_000.0, 1.0f64..20_000.0), 1..30),
    ) {
        let observed: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
        let expected: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let scale: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let limits = method("[0.95, 0.998]").limits(&observed, &expected, &scale).expect("limits");
        prop_assert_eq!(limits.len(), 2);
        let (narrow, wide) = (&limits[0], &limits[1]);
        for i in 0..rows.len() {
            let rate = observed[i] / expected[i] * scale[i];
            let tol = 1e-9 * rate.max(1.0);
            prop_assert!(narrow.lower[i] >= 0.0, "row {i}: negative lower limit");
            prop_assert!(narrow.lower[i] <= rate + tol && rate <= narrow.upper[i] + tol,
                "row {}: {} not in [{}, {}]", i, rate, narrow.lower[i], narrow.upper[i]);
            prop_assert!(wide.lower[i] <= narrow.lower[i] + tol && narrow.upper[i] <= wide.upper[i] + tol,
                "row {i}: 99.8% limits inside 95%");
            if observed[i] > 0.0 {
                prop_assert!(narrow.lower[i] < rate && rate < narrow.upper[i]);
            }
        }
    }
}
