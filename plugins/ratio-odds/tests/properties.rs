//! Properties of the odds ratio on random rates per 10,000.

use proptest::prelude::*;
use strata_api::{Configured, Params, RatioMethod, RatioValue};

fn method() -> Box<dyn RatioMethod> {
    match (strata_ratio_odds::DESCRIPTOR.configure)(&Params::default()) {
        Ok(Configured::Ratio(m)) => m,
        _ => panic!("configures"),
    }
}

proptest! {
    #[test]
    fn ratios_do_not_depend_on_the_order_of_rows(
        pairs in prop::collection::vec((0.0f64..12_000.0, 0.0f64..12_000.0), 0..40),
        seed in any::<u64>(),
    ) {
        let m = method();
        let (base, comparison): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        let out = m.ratios(&base, &comparison, 10_000.0).expect("ratios");
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let shuffled = m.ratios(
            &order.iter().map(|&i| base[i]).collect::<Vec<_>>(),
            &order.iter().map(|&i| comparison[i]).collect::<Vec<_>>(),
            10_000.0,
        ).expect("ratios");
        let expected: Vec<&RatioValue> = order.iter().map(|&i| &out[i]).collect();
        prop_assert_eq!(shuffled.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn odds_ratio_is_one_for_equal_rates_and_moves_with_the_rate_ratio(
        b in 1.0f64..9_999.0, c in 1.0f64..9_999.0,
    ) {
        let m = method();
        let same = m.ratios(&[b], &[b], 10_000.0).expect("ratios")[0].value.unwrap();
        prop_assert!((same - 1.0).abs() < 1e-12);
        let odds = m.ratios(&[b], &[c], 10_000.0).expect("ratios")[0].value.unwrap();
        let rate_ratio = c / b;
        // Odds exaggerate the rate ratio away from 1, never cross it.
        if c > b {
            prop_assert!(odds >= rate_ratio * (1.0 - 1e-12) && rate_ratio > 1.0);
        } else if c < b {
            prop_assert!(odds <= rate_ratio * (1.0 + 1e-12) && rate_ratio < 1.0);
        }
    }
}
