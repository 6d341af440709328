//! Properties of the rate ratio on random rates.

use proptest::prelude::*;
use strata_api::{Configured, Params, RatioMethod, RatioValue};

fn method() -> Box<dyn RatioMethod> {
    match (strata_ratio_rate::DESCRIPTOR.configure)(&Params::default()) {
        Ok(Configured::Ratio(m)) => m,
        _ => panic!("configures"),
    }
}

fn rates() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0f64..20_000.0, 0.0f64..20_000.0), 0..40)
}

proptest! {
    #[test]
    fn ratios_do_not_depend_on_the_order_of_rows(pairs in rates(), seed in any::<u64>()) {
        let m = method();
        let (base, comparison): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        let out = m.ratios(&base, &comparison, 10_000.0).expect("ratios");
        prop_assert_eq!(out.len(), pairs.len());
        // A deterministic shuffle: sort the row indices by a hash of (seed, index).
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
    fn a_rate_against_itself_is_one_and_swapping_inverts(b in 0.001f64..20_000.0, c in 0.001f64..20_000.0) {
        let m = method();
        let same = m.ratios(&[b], &[b], 10_000.0).expect("ratios")[0].value.unwrap();
        prop_assert!((same - 1.0).abs() < 1e-12);
        let forth = m.ratios(&[b], &[c], 10_000.0).expect("ratios")[0].value.unwrap();
        let back = m.ratios(&[c], &[b], 10_000.0).expect("ratios")[0].value.unwrap();
        prop_assert!((forth * back - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_zero_or_missing_base_gives_no_ratio_and_a_note(c in 0.0f64..20_000.0) {
        for base in [0.0, f64::NAN] {
            let r = &method().ratios(&[base], &[c], 10_000.0).expect("ratios")[0];
            prop_assert!(r.value.is_none());
            prop_assert!(r.note.is_some());
        }
    }
}
