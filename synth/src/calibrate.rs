//! Calibration: stratum effects fitted analytically on expected counts, and area effects matching the spread.
//!
//! Model per measure: the expected count of area `a` in stratum `j = (sex, age band, quintile)` is
//! `u_a · λ_j · n_aj` with `λ_j = base · S_sex · Q_quintile · A_broad_age(j)`. The section-3 ratios are not
//! the model's effects: each is a ratio of rates *indirectly standardised for the other two factors*
//! (SPEC §2.5). So the effects are fitted by fixed-point iteration on expected counts (no sampling):
//! compute each category's standardised rate as the engine will, move its effect by
//! `target_rate / current_rate` (odds ratios converted to a target rate through the base category's
//! standardised rate), rescale `base` to the national rate, and repeat until every ratio is within
//! 0.005 of the printed value.

use crate::config::RatioMethod;
use crate::reference::{STRATA, broad_age_group, stratum_parts};

/// Targets of one measure: national rate (per person) and printed ratios against the base categories.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureTargets {
    pub national_rate: f64,
    pub male: f64,
    /// Quintiles 2..5 against quintile 1.
    pub imd: [f64; 4],
    /// 45-54, 55-64, 65-74, 75+ against 0-44.
    pub age: [f64; 4],
    /// When the publication reports 65+ in place of 75+ (2020/21 X-ray), the 65+ ratio replaces `age[3]`.
    pub age_75_reported_as_65_plus: bool,
}

/// Standardised rates (per person) per category, as the engine computes them (SPEC §2.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactorRates {
    pub national: f64,
    /// Male, female.
    pub sex: [f64; 2],
    pub imd: [f64; 5],
    pub age: [f64; 5],
    /// 65-74 and 75+ merged.
    pub age_65_plus: f64,
}

/// Indirectly standardised rate per category of each factor, with observed counts `λ_j · effective_j`
/// and population `population_j`.
pub fn factor_rates(
    lambda: &[f64; STRATA],
    effective: &[f64; STRATA],
    population: &[f64; STRATA],
) -> FactorRates {
    let observed: Vec<f64> = lambda.iter().zip(effective).map(|(l, m)| l * m).collect();
    let national = observed.iter().sum::<f64>() / population.iter().sum::<f64>();
    // For a factor, `other` maps a stratum to the cell of the other two factors.
    let standardise = |category_of: &dyn Fn(usize) -> usize,
                       other_of: &dyn Fn(usize) -> usize,
                       n_cat: usize,
                       n_other: usize| {
        let mut other_obs = vec![0.0; n_other];
        let mut other_pop = vec![0.0; n_other];
        for j in 0..STRATA {
            other_obs[other_of(j)] += observed[j];
            other_pop[other_of(j)] += population[j];
        }
        let mut cat_obs = vec![0.0; n_cat];
        let mut cat_exp = vec![0.0; n_cat];
        for j in 0..STRATA {
            let o = other_of(j);
            let rate = if other_pop[o] > 0.0 {
                other_obs[o] / other_pop[o]
            } else {
                0.0
            };
            cat_obs[category_of(j)] += observed[j];
            cat_exp[category_of(j)] += rate * population[j];
        }
        (cat_obs, cat_exp)
    };
    let ratio = |o: f64, e: f64| if e > 0.0 { o / e * national } else { 0.0 };
    let (so, se) = standardise(&|j| stratum_parts(j).0, &|j| j % 95, 2, 95);
    let (qo, qe) = standardise(&|j| stratum_parts(j).2, &|j| j / 5, 5, 38);
    let (ao, ae) = standardise(
        &|j| broad_age_group(stratum_parts(j).1),
        &|j| {
            let (s, _, q) = stratum_parts(j);
            s * 5 + q
        },
        5,
        10,
    );
    FactorRates {
        national,
        sex: [ratio(so[0], se[0]), ratio(so[1], se[1])],
        imd: std::array::from_fn(|q| ratio(qo[q], qe[q])),
        age: std::array::from_fn(|b| ratio(ao[b], ae[b])),
        age_65_plus: ratio(ao[3] + ao[4], ae[3] + ae[4]),
    }
}

/// Ratio of a category's standardised rate to the base's; `None` for an odds ratio with p ≥ 1.
pub fn ratio_of(method: RatioMethod, category: f64, base: f64) -> Option<f64> {
    match method {
        RatioMethod::Rate => (base > 0.0).then(|| category / base),
        RatioMethod::Odds => {
            if category >= 1.0 || base >= 1.0 || base <= 0.0 {
                None
            } else {
                Some((category / (1.0 - category)) / (base / (1.0 - base)))
            }
        }
    }
}

/// The standardised rate a category needs for `ratio` against a base with rate `base`.
fn target_rate(method: RatioMethod, ratio: f64, base: f64) -> f64 {
    match method {
        RatioMethod::Rate => ratio * base,
        RatioMethod::Odds => {
            let odds = ratio * base / (1.0 - base);
            odds / (1.0 + odds)
        }
    }
}

/// Fitted stratum effects of one measure.
#[derive(Debug, Clone)]
pub struct FittedMeasure {
    pub lambda: [f64; STRATA],
    pub achieved: FactorRates,
    pub iterations: usize,
    /// Largest |achieved − printed| over the ratios, and the relative error of the national rate.
    pub max_ratio_error: f64,
    pub national_relative_error: f64,
}

/// Fit `λ` so that the engine's factor ratios and national rate hit the targets.
/// `effective_j = Σ_a u_a n_aj` carries the area effects; `population_j = Σ_a n_aj`.
pub fn fit_stratum_effects(
    targets: &MeasureTargets,
    method: RatioMethod,
    effective: &[f64; STRATA],
    population: &[f64; STRATA],
) -> Result<FittedMeasure, String> {
    let mut base = targets.national_rate;
    let mut sex = [targets.male, 1.0];
    let mut imd = [
        1.0,
        targets.imd[0],
        targets.imd[1],
        targets.imd[2],
        targets.imd[3],
    ];
    let mut age = [
        1.0,
        targets.age[0],
        targets.age[1],
        targets.age[2],
        targets.age[3],
    ];
    let lambda_of = |base: f64, sex: &[f64; 2], imd: &[f64; 5], age: &[f64; 5]| -> [f64; STRATA] {
        std::array::from_fn(|j| {
            let (s, g, q) = stratum_parts(j);
            base * sex[s] * imd[q] * age[broad_age_group(g)]
        })
    };
    let errors = |rates: &FactorRates| -> f64 {
        let mut worst = 0.0f64;
        let mut check = |achieved: Option<f64>, target: f64| {
            worst = worst.max(achieved.map_or(f64::INFINITY, |a| (a - target).abs()));
        };
        check(ratio_of(method, rates.sex[0], rates.sex[1]), targets.male);
        for q in 0..4 {
            check(
                ratio_of(method, rates.imd[q + 1], rates.imd[0]),
                targets.imd[q],
            );
        }
        for b in 0..3 {
            check(
                ratio_of(method, rates.age[b + 1], rates.age[0]),
                targets.age[b],
            );
        }
        let last = if targets.age_75_reported_as_65_plus {
            rates.age_65_plus
        } else {
            rates.age[4]
        };
        check(ratio_of(method, last, rates.age[0]), targets.age[3]);
        worst
    };
    let max_iterations = 2000;
    for iteration in 0..max_iterations {
        let lambda = lambda_of(base, &sex, &imd, &age);
        let rates = factor_rates(&lambda, effective, population);
        let national_error = (rates.national - targets.national_rate).abs() / targets.national_rate;
        let ratio_error = errors(&rates);
        if ratio_error < 1e-4 && national_error < 1e-6 {
            return Ok(FittedMeasure {
                lambda,
                achieved: rates,
                iterations: iteration,
                max_ratio_error: ratio_error,
                national_relative_error: national_error,
            });
        }
        // Move each non-base effect toward its target standardised rate; damped for stability.
        let step = |effect: &mut f64, current: f64, wanted: f64| {
            if current > 0.0 && wanted > 0.0 {
                *effect *= (wanted / current).powf(0.7);
            }
        };
        step(
            &mut sex[0],
            rates.sex[0],
            target_rate(method, targets.male, rates.sex[1]),
        );
        for q in 1..5 {
            step(
                &mut imd[q],
                rates.imd[q],
                target_rate(method, targets.imd[q - 1], rates.imd[0]),
            );
        }
        for b in 1..4 {
            step(
                &mut age[b],
                rates.age[b],
                target_rate(method, targets.age[b - 1], rates.age[0]),
            );
        }
        if targets.age_75_reported_as_65_plus {
            // Solve the 75+ effect so that 65-74 and 75+ together reach the 65+ target.
            let wanted_65_plus = target_rate(method, targets.age[3], rates.age[0]);
            let (o3, o4, e34) = age_65_plus_parts(&lambda, effective, population);
            let wanted_o4 = wanted_65_plus / rates.national * e34 - o3;
            if o4 > 0.0 && wanted_o4 > 0.0 {
                age[4] *= (wanted_o4 / o4).powf(0.7);
            }
        } else {
            step(
                &mut age[4],
                rates.age[4],
                target_rate(method, targets.age[3], rates.age[0]),
            );
        }
        let lambda = lambda_of(base, &sex, &imd, &age);
        let national = factor_rates(&lambda, effective, population).national;
        if national > 0.0 {
            base *= targets.national_rate / national;
        }
    }
    let lambda = lambda_of(base, &sex, &imd, &age);
    let rates = factor_rates(&lambda, effective, population);
    let ratio_error = errors(&rates);
    let national_error = (rates.national - targets.national_rate).abs() / targets.national_rate;
    if ratio_error <= 0.005 && national_error < 1e-3 {
        Ok(FittedMeasure {
            lambda,
            achieved: rates,
            iterations: max_iterations,
            max_ratio_error: ratio_error,
            national_relative_error: national_error,
        })
    } else {
        Err(format!(
            "no convergence after {max_iterations} iterations: largest ratio error {ratio_error:.4}, national rate error {national_error:.2e}"
        ))
    }
}

/// Observed 65-74, observed 75+ and their joint expected count (expected in units of national-rate persons).
fn age_65_plus_parts(
    lambda: &[f64; STRATA],
    effective: &[f64; STRATA],
    population: &[f64; STRATA],
) -> (f64, f64, f64) {
    // Expected counts use national rates by sex × quintile, as in `factor_rates`.
    let mut cell_obs = [0.0; 10];
    let mut cell_pop = [0.0; 10];
    for j in 0..STRATA {
        let (s, _, q) = stratum_parts(j);
        cell_obs[s * 5 + q] += lambda[j] * effective[j];
        cell_pop[s * 5 + q] += population[j];
    }
    let (mut o3, mut o4, mut expected) = (0.0, 0.0, 0.0);
    for j in 0..STRATA {
        let (s, g, q) = stratum_parts(j);
        let group = broad_age_group(g);
        if group < 3 {
            continue;
        }
        let cell = s * 5 + q;
        if cell_pop[cell] > 0.0 {
            expected += cell_obs[cell] / cell_pop[cell] * population[j];
        }
        if group == 3 {
            o3 += lambda[j] * effective[j];
        } else {
            o4 += lambda[j] * effective[j];
        }
    }
    (o3, o4, expected)
}

/// Standard normal quantile (statrs).
pub fn normal_quantile(p: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().inverse_cdf(p)
}

/// `n` scores with mean 0 and standard deviation 1 (population SD) of which a share `within` lies inside ±1.
/// Sorted ascending. See [`spread_scores_between`].
pub fn spread_scores(n: usize, within: f64) -> Vec<f64> {
    spread_scores_between(n, -1.0, 1.0, |inside| inside as f64 / n as f64, within)
}

/// `n` standardised scores (mean 0, population SD 1) whose `share(count inside [lower, upper])`
/// is `within`. The window need not be centred: an area set whose fixed areas pull the free
/// areas' mean away from the whole set's mean counts the free areas against the whole set's
/// window, and `share` adds the fixed areas inside it.
///
/// Starting from normal scores `Φ⁻¹((i + ½)/n)`: heavier tails (`sign(v)|v|^γ`, γ > 1) put more
/// scores near the centre, mixing toward uniform scores fewer; one parameter runs through both
/// families (flat for `t < 0`, heavy for `t > 0`) and is found by bisection. A share out of the
/// families' reach gets the nearer end.
pub fn spread_scores_between(
    n: usize,
    lower: f64,
    upper: f64,
    share: impl Fn(usize) -> f64,
    within: f64,
) -> Vec<f64> {
    if n < 2 {
        return vec![0.0; n];
    }
    let normal: Vec<f64> = (0..n)
        .map(|i| normal_quantile((i as f64 + 0.5) / n as f64))
        .collect();
    let uniform: Vec<f64> = (0..n)
        .map(|i| 2.0 * (i as f64 + 0.5) / n as f64 - 1.0)
        .collect();
    let family = |t: f64| -> Vec<f64> {
        let raw: Vec<f64> = if t < 0.0 {
            let mix = -t;
            normal
                .iter()
                .zip(&uniform)
                .map(|(v, u)| (1.0 - mix) * v + mix * u * 3f64.sqrt())
                .collect()
        } else {
            let gamma = 1.0 + t;
            normal
                .iter()
                .map(|v| v.signum() * v.abs().powf(gamma))
                .collect()
        };
        normal_scores_standardised(&raw)
    };
    let share_of = |scores: &[f64]| {
        share(
            scores
                .iter()
                .filter(|z| (lower..=upper).contains(*z))
                .count(),
        )
    };
    let (mut low, mut high) = (-1.0, 7.0);
    let rising = share_of(&family(high)) >= share_of(&family(low));
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if (share_of(&family(mid)) < within) == rising {
            low = mid;
        } else {
            high = mid;
        }
    }
    // Shares move in steps of 1/n: keep whichever end is nearer the target.
    let (at_low, at_high) = (family(low), family(high));
    if (share_of(&at_low) - within).abs() < (share_of(&at_high) - within).abs() {
        at_low
    } else {
        at_high
    }
}

fn normal_scores_standardised(normal: &[f64]) -> Vec<f64> {
    let n = normal.len() as f64;
    let mean = normal.iter().sum::<f64>() / n;
    let sd = (normal.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    normal.iter().map(|x| (x - mean) / sd).collect()
}

/// Target standardised rates (per 10,000) of all areas: `fixed` areas keep their value (outliers, areas with
/// missing submissions); the free areas get a spread chosen so that the whole set has mean `mean`, standard
/// deviation `sd` (population SD) and a share `within` inside mean ± sd. Values are assigned to free areas by
/// a seeded shuffle, then pairs are swapped until the population-weighted mean equals `national`, so that
/// the engine's standardised rates (which average to the national rate when weighted) land on the targets.
/// Free values are capped at `cap` (so that only the named outliers exceed a printed multiple of national).
#[allow(clippy::too_many_arguments)]
pub fn area_targets<R: rand::Rng>(
    populations: &[f64],
    national: f64,
    mean: f64,
    sd: f64,
    within: f64,
    fixed: &[Option<f64>],
    cap: f64,
    rng: &mut R,
) -> Vec<f64> {
    use rand::seq::SliceRandom;
    let n = populations.len();
    let free: Vec<usize> = (0..n).filter(|&a| fixed[a].is_none()).collect();
    let n_free = free.len();
    let mut targets: Vec<f64> = fixed.iter().map(|f| f.unwrap_or(mean)).collect();
    if n_free == 0 {
        return targets;
    }
    let fixed_values: Vec<f64> = fixed.iter().flatten().copied().collect();
    let free_mean = (n as f64 * mean - fixed_values.iter().sum::<f64>()) / n_free as f64;
    let free_variance = (n as f64 * sd * sd
        - fixed_values.iter().map(|f| (f - mean).powi(2)).sum::<f64>()
        - n_free as f64 * (free_mean - mean).powi(2))
        / n_free as f64;
    let free_sd = free_variance.max((0.05 * sd).powi(2)).sqrt();
    // The printed share is of all areas inside the whole set's mean ± SD: the free areas are
    // fitted against that window, with the fixed areas already inside it counted.
    let fixed_inside = fixed_values
        .iter()
        .filter(|f| (*f - mean).abs() <= sd)
        .count();
    let scores = spread_scores_between(
        n_free,
        (mean - sd - free_mean) / free_sd,
        (mean + sd - free_mean) / free_sd,
        |inside| (fixed_inside + inside) as f64 / n as f64,
        within,
    );
    let mut values: Vec<f64> = scores
        .iter()
        .map(|z| (free_mean + free_sd * z).clamp(0.05 * national, cap))
        .collect();
    values.shuffle(rng);
    for (slot, &a) in free.iter().enumerate() {
        targets[a] = values[slot];
    }
    let total_population: f64 = populations.iter().sum();
    let weighted =
        |t: &[f64]| t.iter().zip(populations).map(|(v, p)| v * p).sum::<f64>() / total_population;
    let mut current = weighted(&targets);
    for _ in 0..(200 * n_free) {
        if (current - national).abs() <= 1e-3 * national || n_free < 2 {
            break;
        }
        let i = free[rng.random_range(0..n_free)];
        let j = free[rng.random_range(0..n_free)];
        let change =
            (targets[j] - targets[i]) * (populations[i] - populations[j]) / total_population;
        if (current + change - national).abs() < (current - national).abs() {
            targets.swap(i, j);
            current += change;
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ratios_reproduce_the_published_worked_examples() {
        // 2020/21 section 3.1: female 2,973 and male 2,465 per 10,000 give an odds ratio of 0.77.
        let odds = ratio_of(RatioMethod::Odds, 0.2465, 0.2973).expect("p < 1");
        assert!((odds - 0.77).abs() < 0.005, "{odds}");
        // 2023/24 section 3.1: female 3,894 and male 3,087 give a rates ratio of 0.79.
        let rate = ratio_of(RatioMethod::Rate, 0.3087, 0.3894).expect("positive base");
        assert!((rate - 0.79).abs() < 0.005, "{rate}");
        assert_eq!(ratio_of(RatioMethod::Odds, 1.2, 0.3), None);
    }

    #[test]
    fn normal_quantile_matches_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
    }

    #[test]
    fn spread_scores_hit_the_share_within_one_sd() {
        for (n, within) in [(135, 0.79), (135, 0.90), (42, 0.67), (42, 0.62)] {
            let scores = spread_scores(n, within);
            let mean = scores.iter().sum::<f64>() / n as f64;
            let sd = (scores.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            let share = scores.iter().filter(|z| z.abs() <= 1.0).count() as f64 / n as f64;
            assert!(mean.abs() < 1e-9 && (sd - 1.0).abs() < 1e-9);
            assert!(
                (share - within).abs() <= 1.5 / n as f64,
                "n {n}: {share} vs {within}"
            );
        }
    }

    #[test]
    fn area_targets_keep_fixed_areas_and_the_spread() {
        let populations = vec![1000.0; 100];
        let mut fixed = vec![None; 100];
        fixed[3] = Some(200.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let targets = area_targets(
            &populations,
            100.0,
            100.0,
            10.0,
            0.75,
            &fixed,
            190.0,
            &mut rng,
        );
        assert_eq!(targets[3], 200.0);
        let mean = targets.iter().sum::<f64>() / 100.0;
        let sd = (targets.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / 100.0).sqrt();
        assert!((mean - 100.0).abs() < 0.5, "{mean}");
        assert!((sd - 10.0).abs() < 0.5, "{sd}");
        assert!(
            targets
                .iter()
                .enumerate()
                .all(|(a, t)| a == 3 || *t <= 190.0)
        );
    }

    /// 2023/24 X-ray with the Annex A areas' printed totals: six of the eleven fixed areas sit below
    /// mean − SD, which pulls the free areas' mean up; the whole set still has the printed mean, SD
    /// and share within one SD (counted around its own mean, as `summary.dispersion` counts it).
    #[test]
    fn area_targets_keep_the_share_within_one_sd_when_fixed_areas_sit_outside() {
        let n = 42;
        let populations = vec![1000.0; n];
        let (mean, sd, within) = (3551.0, 400.0, 0.67);
        let mut fixed = vec![None; n];
        for (a, slot) in fixed.iter_mut().enumerate().take(11) {
            *slot = Some(if a < 6 {
                mean - 1.4 * sd
            } else {
                mean - 0.5 * sd
            });
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let targets = area_targets(
            &populations,
            mean,
            mean,
            sd,
            within,
            &fixed,
            f64::INFINITY,
            &mut rng,
        );
        let set_mean = targets.iter().sum::<f64>() / n as f64;
        let set_sd =
            (targets.iter().map(|t| (t - set_mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let share = targets
            .iter()
            .filter(|t| (*t - set_mean).abs() <= set_sd)
            .count() as f64
            / n as f64;
        assert!((set_mean - mean).abs() < 1.0, "{set_mean}");
        assert!((set_sd - sd).abs() < 1.0, "{set_sd}");
        assert!((share - within).abs() <= 1.5 / n as f64, "{share}");
    }

    /// A population with more old people in deprived quintiles, so that the factors are confounded and
    /// the fitted effects must differ from the printed ratios.
    fn confounded_population() -> [f64; STRATA] {
        std::array::from_fn(|j| {
            let (s, g, q) = stratum_parts(j);
            1000.0 + 50.0 * (g as f64) * (5 - q) as f64 + 30.0 * s as f64
        })
    }

    fn check_fit(method: RatioMethod, targets: MeasureTargets) {
        let population = confounded_population();
        let fitted =
            fit_stratum_effects(&targets, method, &population, &population).expect("converges");
        let rates = fitted.achieved;
        let ratio = |c: f64, b: f64| ratio_of(method, c, b).expect("defined");
        assert!((rates.national - targets.national_rate).abs() < 1e-9);
        assert!((ratio(rates.sex[0], rates.sex[1]) - targets.male).abs() <= 0.005);
        for q in 0..4 {
            assert!((ratio(rates.imd[q + 1], rates.imd[0]) - targets.imd[q]).abs() <= 0.005);
        }
        for b in 0..3 {
            assert!((ratio(rates.age[b + 1], rates.age[0]) - targets.age[b]).abs() <= 0.005);
        }
        let last = if targets.age_75_reported_as_65_plus {
            rates.age_65_plus
        } else {
            rates.age[4]
        };
        assert!((ratio(last, rates.age[0]) - targets.age[3]).abs() <= 0.005);
    }

    #[test]
    fn fit_reaches_printed_rate_ratios() {
        // 2023/24 X-ray: national 3,551; male 0.79; IMD 0.90 0.84 0.81 0.75; age 1.74 2.49 3.42 5.27.
        check_fit(
            RatioMethod::Rate,
            MeasureTargets {
                national_rate: 0.3551,
                male: 0.79,
                imd: [0.90, 0.84, 0.81, 0.75],
                age: [1.74, 2.49, 3.42, 5.27],
                age_75_reported_as_65_plus: false,
            },
        );
    }

    #[test]
    fn fit_reaches_printed_odds_ratios_with_the_65_plus_note() {
        // 2020/21 X-ray: national 2,764; male 0.77; IMD 0.84 0.73 0.68 0.62; age 2.16 3.24 5.21, 65+ 28.36.
        let targets = MeasureTargets {
            national_rate: 0.2764,
            male: 0.77,
            imd: [0.84, 0.73, 0.68, 0.62],
            age: [2.16, 3.24, 5.21, 28.36],
            age_75_reported_as_65_plus: true,
        };
        check_fit(RatioMethod::Odds, targets.clone());
        let population = confounded_population();
        let fitted = fit_stratum_effects(&targets, RatioMethod::Odds, &population, &population)
            .expect("converges");
        assert!(fitted.achieved.age[4] > fitted.achieved.age[3]);
    }
}
