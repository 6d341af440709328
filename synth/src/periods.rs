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

/// One span of months' synthetic DID waits: from `from` (`YYYY-MM`) until the next span, the
/// share of request → test waits of 42 days or more and the mean test → report wait in days,
/// England's; each provider's mean waits are England's times its own factor.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitSpan {
    pub from: String,
    pub request_to_test_share_42_days: f64,
    pub test_to_report_mean_days: f64,
}

/// The longest wait drawn, in days: the geometric tail beyond it is counted at it.
pub const MAX_WAIT_DAYS: i64 = 365;

/// `tests` waits shared over whole days `0..=MAX_WAIT_DAYS` by a geometric distribution of mean
/// `mean` days (`P(d) = (1 − q) q^d`, `q = mean / (1 + mean)`; the tail in the last day), whole
/// by the largest remainder: (day, waits), only days with waits.
pub fn geometric_days(tests: u64, mean: f64) -> Vec<(i64, u64)> {
    let q = mean / (1.0 + mean);
    let shares: Vec<f64> = (0..=MAX_WAIT_DAYS)
        .map(|d| {
            if d == MAX_WAIT_DAYS {
                q.powi(d as i32)
            } else {
                (1.0 - q) * q.powi(d as i32)
            }
        })
        .collect();
    largest_remainder(tests, &shares)
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| (d as i64, n))
        .collect()
}

/// The mean of a geometric wait whose share of 42 days or more is `share` (`q^42 = share`).
pub fn mean_for_share_42(share: f64) -> f64 {
    let q = share.powf(1.0 / 42.0);
    q / (1.0 - q)
}

/// Each provider's factor on England's mean waits, `exp(σ·z − σ²/2)`, `z` standard normal drawn
/// in provider order from ChaCha8 seeded by `seed` (so trusts wait unevenly).
pub fn wait_factors(providers: usize, spread: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..providers)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (spread * z - spread * spread / 2.0).exp()
        })
        .collect()
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

/// One month of the synthetic DM01 waiting lists: England's list, and the share waiting six
/// weeks or more in each region (`default_share` where the region is not named).
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingMonth {
    pub month: String,
    pub waiting_list: u64,
    /// England's number waiting six weeks or more, when the month is calibrated to it: the
    /// regions' shares are then scaled so the providers' sum is exactly this.
    pub england_six_plus: Option<u64>,
    pub default_share: f64,
    pub region_shares: Vec<(String, f64)>,
    /// Providers held at their own share (e.g. the seed's trust with almost 80%).
    pub provider_shares: Vec<(String, f64)>,
}

/// A provider's weight and region, for the waiting lists.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingProvider {
    pub code: String,
    pub region: String,
    pub weight: f64,
}

/// Waiting lists by provider × month: `(provider, month, 14 weekly bands)`. England's list is
/// shared by weight (largest remainder); each provider's number waiting six weeks or more is its
/// share of its list (the region's, or its own), whole by the largest remainder over England
/// when England's number is given; under six weeks spread evenly over bands 0–5, six weeks or
/// more 60% over bands 6–12 and 40% in 13+ (an ASSUMPTION of shape, not calibrated).
pub fn waiting_lists(
    months: &[WaitingMonth],
    providers: &[WaitingProvider],
) -> Vec<(String, String, [u64; 14])> {
    let weights: Vec<f64> = providers.iter().map(|p| p.weight).collect();
    let mut out = Vec::new();
    for m in months {
        let lists = largest_remainder(m.waiting_list, &weights);
        let own = |p: &WaitingProvider| m.provider_shares.iter().find(|(c, _)| *c == p.code);
        // A region's share is of its whole list: the providers not held at their own share
        // make up what those held leave (clamped to [0, 1]).
        let region_rest = |region: &str, target: f64| {
            let (mut list, mut held_list, mut held) = (0.0, 0.0, 0.0);
            for (p, &l) in providers
                .iter()
                .zip(&lists)
                .filter(|(p, _)| p.region == region)
            {
                list += l as f64;
                if let Some((_, s)) = own(p) {
                    held_list += l as f64;
                    held += s * l as f64;
                }
            }
            let rest = list - held_list;
            if rest > 0.0 {
                ((target * list - held) / rest).clamp(0.0, 1.0)
            } else {
                target
            }
        };
        let share = |p: &WaitingProvider| match own(p) {
            Some((_, s)) => *s,
            None => m
                .region_shares
                .iter()
                .find(|(r, _)| *r == p.region)
                .map_or(m.default_share, |(r, s)| region_rest(r, *s)),
        };
        let exact: Vec<f64> = providers
            .iter()
            .zip(&lists)
            .map(|(p, &l)| share(p) * l as f64)
            .collect();
        let total = m
            .england_six_plus
            .unwrap_or_else(|| exact.iter().sum::<f64>().round() as u64);
        let six_plus = largest_remainder(total, &exact);
        for ((p, &list), &over) in providers.iter().zip(&lists).zip(&six_plus) {
            let over = over.min(list);
            let mut weeks = [0u64; 14];
            let under = largest_remainder(list - over, &[1.0; 6]);
            weeks[..6].copy_from_slice(&under);
            let long = (over as f64 * 0.4).round() as u64;
            let mid = largest_remainder(over - long, &[1.0; 7]);
            weeks[6..13].copy_from_slice(&mid);
            weeks[13] = long;
            if list > 0 {
                out.push((p.code.clone(), m.month.clone(), weeks));
            }
        }
    }
    out
}

#[cfg(test)]
mod waiting_tests {
    use super::*;

    #[test]
    fn england_regions_and_a_named_trust_hold() {
        let providers: Vec<WaitingProvider> = [("A", "N", 1.0), ("B", "N", 1.0), ("C", "S", 2.0)]
            .iter()
            .map(|(c, r, w)| WaitingProvider {
                code: c.to_string(),
                region: r.to_string(),
                weight: *w,
            })
            .collect();
        let month = WaitingMonth {
            month: "2020-09".into(),
            waiting_list: 1_000,
            england_six_plus: None,
            default_share: 0.5,
            region_shares: vec![("S".into(), 0.2)],
            provider_shares: vec![("A".into(), 0.8)],
        };
        let rows = waiting_lists(&[month], &providers);
        let over = |c: &str| {
            let w = rows.iter().find(|r| r.0 == c).expect("row").2;
            (w.iter().sum::<u64>(), w[6..].iter().sum::<u64>())
        };
        // N has no region share: A is held at 80%, B takes the default 50%; S is 20%.
        assert_eq!(over("A"), (250, 200));
        assert_eq!(over("B"), (250, 125));
        assert_eq!(over("C"), (500, 100));
        let region = WaitingMonth {
            month: "2020-09".into(),
            waiting_list: 1_000,
            england_six_plus: None,
            default_share: 0.5,
            region_shares: vec![("N".into(), 0.5)],
            provider_shares: vec![("A".into(), 0.8)],
        };
        let rows = waiting_lists(&[region], &providers);
        let n: u64 = rows
            .iter()
            .filter(|r| r.0 != "C")
            .map(|r| r.2[6..].iter().sum::<u64>())
            .sum();
        assert_eq!(
            n, 250,
            "N's 500 half waiting six weeks or more, A's 200 included"
        );
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    /// Hand-worked: a share of 3% waiting 42 days or more is q = 0.03^(1/42) = 0.91995, mean
    /// q / (1 − q) = 11.49 days; 10,000 waits put 300 (± rounding) at 42 days or more.
    #[test]
    fn geometric_waits_hold_their_total_and_their_share() {
        let mean = mean_for_share_42(0.03);
        assert!((mean - 11.49).abs() < 0.01, "{mean}");
        let days = geometric_days(10_000, mean);
        assert_eq!(days.iter().map(|d| d.1).sum::<u64>(), 10_000);
        let over: u64 = days.iter().filter(|d| d.0 >= 42).map(|d| d.1).sum();
        assert!((295..=305).contains(&over), "{over}");
        assert_eq!(geometric_days(0, mean), []);
        assert_eq!(wait_factors(3, 0.2, 5), wait_factors(3, 0.2, 5));
    }
}
