//! Spread factors for the synthetic community diagnostic centre set (seed 004): each unit (a
//! trust's test, a CDC's test type) gets `exp(σ·z − σ²/2)`, `z` standard normal from a ChaCha8
//! stream of the seed, so units differ around their weights with mean factor 1 and the same seed
//! gives the same factors.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// `count` log-normal factors of mean 1 and log-scale spread `sigma` (0: all 1).
pub fn spread_factors(count: usize, sigma: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (sigma * z - sigma * sigma / 2.0).exp()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_deterministic_positive_and_spread_by_sigma() {
        let a = spread_factors(1000, 0.3, 7);
        assert_eq!(a, spread_factors(1000, 0.3, 7));
        assert_ne!(a, spread_factors(1000, 0.3, 8));
        assert!(a.iter().all(|f| *f > 0.0));
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        assert!(spread_factors(5, 0.0, 1).iter().all(|f| *f == 1.0));
    }
}
