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

#[allow(clippy::excessive_precision)] // published coefficients, kept as printed
/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// `n` scores with mean 0 and standard deviation 1 (population SD) of which a share `within` lies inside ±1:
/// normal scores `Φ⁻¹((i + ½)/n)` power-transformed `sign(v)|v|^γ`, with γ found by bisection
/// (heavier tails put more areas inside one SD). Sorted ascending.
pub fn spread_scores(n: usize, within: f64) -> Vec<f64> {
    if n < 2 {
        return vec![0.0; n];
    }
    let normal: Vec<f64> = (0..n)
        .map(|i| normal_quantile((i as f64 + 0.5) / n as f64))
        .collect();
    let scores_for = |gamma: f64| -> Vec<f64> {
        let raw: Vec<f64> = normal
            .iter()
            .map(|v| v.signum() * v.abs().powf(gamma))
            .collect();
        let mean = raw.iter().sum::<f64>() / n as f64;
        let sd = (raw.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        raw.iter().map(|x| (x - mean) / sd).collect()
    };
    let share = |scores: &[f64]| scores.iter().filter(|z| z.abs() <= 1.0).count() as f64 / n as f64;
    let (mut low, mut high) = (0.2, 6.0);
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if share(&scores_for(mid)) < within {
            low = mid;
        } else {
            high = mid;
        }
    }
    scores_for(high)
}
