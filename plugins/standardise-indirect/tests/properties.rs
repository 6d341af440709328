//! Properties of indirect standardisation on random counts.

use proptest::prelude::*;
use strata_api::{
    Area, Configured, Dimension, Params, StandardisationMethod, StandardisedRates, StratifiedCounts,
};

fn by_age() -> Box<dyn StandardisationMethod> {
    let params = Params::from_toml_str("strata = [\"age_band\"]").expect("valid toml");
    match (strata_standardise_indirect::DESCRIPTOR.configure)(&params) {
        Ok(Configured::Standardisation(m)) => m,
        _ => panic!("configures"),
    }
}

/// Areas × age strata, one measure: populations `hundreds[a][c] × 100`, and tests per person in
/// stratum c of `per_hundred[c] / 100` in every area, so every area's stratum rates equal the
/// national ones exactly (whole numbers throughout).
fn counts(hundreds: &[Vec<u32>], per_hundred: &[u32]) -> StratifiedCounts {
    let bands: Vec<String> = (0..per_hundred.len()).map(|c| format!("b{c}")).collect();
    let band_refs: Vec<&str> = bands.iter().map(String::as_str).collect();
    let areas = (0..hundreds.len())
        .map(|a| Area {
            code: format!("A{a}"),
            name: format!("Area {a}"),
        })
        .collect();
    let mut c = StratifiedCounts::zeroed(
        areas,
        vec!["xray".into()],
        vec![Dimension::new("age_band", &band_refs)],
    );
    for (a, row) in hundreds.iter().enumerate() {
        for (cell, &h) in row.iter().enumerate() {
            c.population_of_mut(a)[cell] = f64::from(h) * 100.0;
            c.tests_of_mut(0, a)[cell] = f64::from(h) * f64::from(per_hundred[cell]);
        }
    }
    c
}

/// (populations in hundreds per area × stratum, tests per hundred people per stratum).
fn world() -> impl Strategy<Value = (Vec<Vec<u32>>, Vec<u32>)> {
    (1usize..6, 1usize..6).prop_flat_map(|(areas, strata)| {
        (
            prop::collection::vec(prop::collection::vec(1u32..500, strata), areas),
            prop::collection::vec(0u32..300, strata),
        )
    })
}

fn area_rate(rates: &StandardisedRates, area: usize) -> f64 {
    rates
        .areas
        .iter()
        .find(|r| r.area == area && r.measure == 0)
        .map(|r| r.standardised_rate)
        .expect("a row per area")
}

proptest! {
    #[test]
    fn an_area_whose_stratum_rates_equal_the_national_ones_has_the_national_rate(
        (hundreds, per_hundred) in world()
    ) {
        prop_assume!(per_hundred.iter().any(|&r| r > 0));
        let rates = by_age().standardise(&counts(&hundreds, &per_hundred)).unwrap();
        let national = rates.national[0].rate;
        for a in 0..hundreds.len() {
            let sr = area_rate(&rates, a);
            prop_assert!((sr - national).abs() <= 1e-9 * national.max(1.0), "area {a}: {sr} vs {national}");
        }
    }

    #[test]
    fn rates_do_not_depend_on_the_order_of_areas(
        (hundreds, per_hundred) in world(),
        extra in prop::collection::vec(0u32..50, 1..6),
        rotate in 0usize..6,
    ) {
        // Perturb tests so areas differ, then list the areas in another order.
        let mut c = counts(&hundreds, &per_hundred);
        for (i, t) in c.tests.iter_mut().enumerate() {
            *t += f64::from(extra[i % extra.len()]);
        }
        let n = hundreds.len();
        let shift = rotate % n;
        let mut rotated = StratifiedCounts::zeroed(
            (0..n).map(|a| c.areas[(a + shift) % n].clone()).collect(),
            c.measures.clone(),
            c.dimensions.clone(),
        );
        for a in 0..n {
            let from = (a + shift) % n;
            rotated.population_of_mut(a).copy_from_slice(c.population_of(from));
            rotated.tests_of_mut(0, a).copy_from_slice(c.tests_of(0, from));
        }
        let m = by_age();
        let original = m.standardise(&c).unwrap();
        let reordered = m.standardise(&rotated).unwrap();
        prop_assert_eq!(original.national[0].rate, reordered.national[0].rate);
        for a in 0..n {
            let (x, y) = (area_rate(&original, (a + shift) % n), area_rate(&reordered, a));
            prop_assert!(
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                "area {}: {} vs {}", (a + shift) % n, x, y
            );
        }
    }

    #[test]
    fn expected_counts_add_up_to_the_observed_national_total((hundreds, per_hundred) in world()) {
        // Σ_areas E = Σ_areas Σ_strata n_ac · R_c = Σ_strata N_c · R_c = national observed.
        let rates = by_age().standardise(&counts(&hundreds, &per_hundred)).unwrap();
        let expected: f64 = rates.areas.iter().map(|r| r.expected).sum();
        let observed = rates.national[0].observed;
        prop_assert!((expected - observed).abs() <= 1e-6 * observed.max(1.0));
    }
}
