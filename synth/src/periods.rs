//! The synthetic pair of years for a period comparison (seed 002): tests by provider × month ×
//! measure on the real providers, whose national totals are exactly the config's national
//! monthly figures.
//!
//! Each provider's share of a measure is its weight (e.g. its scanners of that modality, from
//! NHS England's imaging asset count). In the later months (`from` onwards) each provider's
//! share is also multiplied by its recovery factor `exp(σ·z − σ²/2)`, `z` standard normal drawn
//! once per provider from ChaCha8 seeded by `seed` (in code order), so trusts recover unevenly
//! while England's figure holds. Whole tests are shared out by the largest remainder, ties in
//! code order, so the same inputs give the same counts.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// One national monthly figure: tests of `measure` in `month` (`YYYY-MM`) in England.
#[derive(Debug, Clone, PartialEq)]
pub struct NationalMonth {
    pub measure: String,
    pub month: String,
    pub tests: u64,
}

/// A provider and its weight for each measure (measures it has no weight for get no tests).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderWeights {
    pub code: String,
    pub weights: Vec<(String, f64)>,
}

/// Tests by provider × measure × month: `(provider, measure, month, tests)`, only non-zero ones.
pub fn provider_months(
    national: &[NationalMonth],
    providers: &[ProviderWeights],
    from: &str,
    recovery_spread: f64,
    seed: u64,
) -> Vec<(String, String, String, u64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let recovery: Vec<f64> = providers
        .iter()
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (recovery_spread * z - recovery_spread * recovery_spread / 2.0).exp()
        })
        .collect();
    let mut out = Vec::new();
    for n in national {
        let later = n.month.as_str() >= from;
        let shares: Vec<f64> = providers
            .iter()
            .zip(&recovery)
            .map(|(p, r)| {
                let w = p
                    .weights
                    .iter()
                    .find(|(m, _)| *m == n.measure)
                    .map_or(0.0, |(_, w)| *w);
                if later { w * r } else { w }
            })
            .collect();
        for (i, tests) in largest_remainder(n.tests, &shares).into_iter().enumerate() {
            if tests > 0 {
                out.push((
                    providers[i].code.clone(),
                    n.measure.clone(),
                    n.month.clone(),
                    tests,
                ));
            }
        }
    }
    out
}

/// `total` shared in proportion to `shares`, whole numbers summing to `total` (none when every
/// share is zero); remainders go to the largest fractions, ties to the earlier index.
pub fn largest_remainder(total: u64, shares: &[f64]) -> Vec<u64> {
    let sum: f64 = shares.iter().sum();
    if sum <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| total as f64 * s / sum).collect();
    let mut whole: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let short = total.saturating_sub(whole.iter().sum());
    let mut order: Vec<usize> = (0..shares.len()).filter(|&i| shares[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(short as usize) {
        whole[i] += 1;
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_keeps_the_total_and_the_proportions() {
        assert_eq!(largest_remainder(10, &[1.0, 1.0, 1.0]), [4, 3, 3]);
        assert_eq!(largest_remainder(7, &[0.0, 2.0, 5.0]), [0, 2, 5]);
        assert_eq!(largest_remainder(5, &[0.0, 0.0]), [0, 0]);
    }

    #[test]
    fn national_totals_hold_and_later_months_vary_by_provider() {
        let national = ["2019-04", "2020-04"].map(|month| NationalMonth {
            measure: "ct".into(),
            month: month.into(),
            tests: 1_000,
        });
        let providers: Vec<ProviderWeights> = ["A", "B", "C"]
            .iter()
            .map(|c| ProviderWeights {
                code: c.to_string(),
                weights: vec![("ct".into(), 1.0)],
            })
            .collect();
        let rows = provider_months(&national, &providers, "2020-01", 0.3, 7);
        for month in ["2019-04", "2020-04"] {
            let total: u64 = rows.iter().filter(|r| r.2 == month).map(|r| r.3).sum();
            assert_eq!(total, 1_000, "{month}");
        }
        let earlier: Vec<u64> = rows
            .iter()
            .filter(|r| r.2 == "2019-04")
            .map(|r| r.3)
            .collect();
        let later: Vec<u64> = rows
            .iter()
            .filter(|r| r.2 == "2020-04")
            .map(|r| r.3)
            .collect();
        assert_eq!(earlier, [334, 333, 333]);
        assert_ne!(later, earlier, "recovery differs by provider");
        assert_eq!(
            rows,
            provider_months(&national, &providers, "2020-01", 0.3, 7)
        );
    }
}
