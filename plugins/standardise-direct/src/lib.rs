//! `standardise.direct-dobson` — directly standardised area rates against a named standard
//! population, with the variance Dobson's confidence limits (`ci.dobson`) are built from.
//!
//! With `t_aj` the tests and `n_aj` the population of area a in standard stratum j, and `w_j`
//! the standard population's weights scaled to sum to 1, per measure:
//!
//! - `DSR_a = U Σ_j w_j t_aj / n_aj` (the rate the area would have with the standard's age (or
//!   stratum) structure), U the recipe's per-population unit (`rate_per`);
//! - `var(DSR_a) = U² Σ_j w_j² t_aj / n_aj²` (each `t_aj` Poisson), carried as
//!   [`AreaRate::variance`];
//! - England's rate is the same DSR of the national counts (`Σ_a t_aj / Σ_a n_aj`), and is each
//!   area row's `national_rate` and the `national_rates` table's `rate`;
//! - `expected_a = observed_a × national DSR / DSR_a`, so that O/E is the area's rate relative
//!   to England's on the same standard (the comparative rate) and `O/E × national rate = DSR_a`
//!   as every later stage (confidence limits, summaries, funnels) reads it.
//!
//! Standards (`standard`):
//! - `esp2013` (default): the 2013 European Standard Population, 19 five-year age bands `0-4` …
//!   `85-89`, `90+`, per 100,000: 5,000, 5,500, 5,500, 5,500, 6,000, 6,000, 6,500, 7,000, 7,000,
//!   7,000, 7,000, 6,500, 6,000, 5,500, 5,000, 4,000, 2,500, 1,500, 1,000 (Eurostat 2013, *Revision
//!   of the European Standard Population: report of Eurostat's task force*, Table 3.1; the same
//!   weights as PHEindicatormethods' `esp2013`). Strata are the `age_band` dimension alone (sex
//!   and IMD quintile are summed over); its categories must be those 19 bands.
//! - `national`: the run's own national registered population over the dimensions named by
//!   `strata` (default `["imd_quintile", "sex", "age_band"]`), `w_j = Σ_a n_aj / Σ n`. England's
//!   DSR then equals its crude rate.
//!
//! Edge cases: an area × measure with fewer than `min_observed` tests (default 10, the
//! PHEindicatormethods rule: Dobson's approximation is poor for small counts), or with no
//! population in a stratum of positive weight, has no DSR, expected count or variance (NaN,
//! written empty); its observed count, population and crude rate are still given. Counts whose
//! age bands are not the standard's, a `strata` dimension the counts lack and a national
//! population of 0 are refused ([`MethodError`]).
//!
//! References: Dobson A.J., Kuulasmaa K., Eberle E. & Scherer J. (1991), *Confidence intervals for
//! weighted sums of Poisson parameters*, Statistics in Medicine 10, 457–462; Eurostat (2013), as
//! above; UKHSA PHEindicatormethods (R), `calculate_dsr` (`R/DSR.R`).

use serde::Deserialize;
use strata_api::{
    AreaRate, Configured, MethodError, NationalRate, ParamError, Params, PluginDescriptor,
    StageKind, StandardisationMethod, StandardisedRates, StratifiedCounts,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "standardise.direct-dobson",
    stage: StageKind::Standardisation,
    version: env!("CARGO_PKG_VERSION"),
    description: "Direct standardisation against the 2013 European Standard Population or the national population, with Dobson's variance",
    configure,
};

/// The 2013 European Standard Population: five-year age bands and their people per 100,000.
pub const ESP_2013: [(&str, f64); 19] = [
    ("0-4", 5000.0),
    ("5-9", 5500.0),
    ("10-14", 5500.0),
    ("15-19", 5500.0),
    ("20-24", 6000.0),
    ("25-29", 6000.0),
    ("30-34", 6500.0),
    ("35-39", 7000.0),
    ("40-44", 7000.0),
    ("45-49", 7000.0),
    ("50-54", 7000.0),
    ("55-59", 6500.0),
    ("60-64", 6000.0),
    ("65-69", 5500.0),
    ("70-74", 5000.0),
    ("75-79", 4000.0),
    ("80-84", 2500.0),
    ("85-89", 1500.0),
    ("90+", 1000.0),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectParams {
    /// `esp2013` or `national`.
    #[serde(default = "default_standard")]
    standard: String,
    /// The national standard's dimensions (not allowed with `esp2013`, which is by age alone).
    strata: Option<Vec<String>>,
    /// Fewest tests an area × measure needs for a DSR.
    #[serde(default = "default_min_observed")]
    min_observed: f64,
}

fn default_standard() -> String {
    "esp2013".into()
}

fn default_min_observed() -> f64 {
    10.0
}

/// The standard population the rates are standardised to.
#[derive(Debug, Clone, PartialEq)]
pub enum Standard {
    /// The 2013 European Standard Population, by age band.
    Esp2013,
    /// The run's national population over these dimensions.
    National(Vec<String>),
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: DirectParams = params.parse()?;
    let standard = match (p.standard.as_str(), p.strata) {
        ("esp2013", None) => Standard::Esp2013,
        ("esp2013", Some(_)) => {
            return Err(ParamError::new(
                "strata",
                "the 2013 European Standard Population is by age band alone: `strata` goes with \
                 `standard = \"national\"`",
            ));
        }
        ("national", strata) => Standard::National(checked_strata(strata.unwrap_or_else(|| {
            ["imd_quintile", "sex", "age_band"]
                .map(String::from)
                .to_vec()
        }))?),
        (other, _) => {
            return Err(ParamError::new(
                "standard",
                format!("unknown standard `{other}`: give `esp2013` or `national`"),
            ));
        }
    };
    if !(p.min_observed.is_finite() && p.min_observed >= 0.0) {
        return Err(ParamError::new(
            "min_observed",
            format!(
                "min_observed = {}: give a count of 0 or more",
                p.min_observed
            ),
        ));
    }
    Ok(Configured::Standardisation(Box::new(
        DirectStandardisation {
            standard,
            min_observed: p.min_observed,
        },
    )))
}

/// Refuses an empty or repeated dimension name.
fn checked_strata(strata: Vec<String>) -> Result<Vec<String>, ParamError> {
    for (i, name) in strata.iter().enumerate() {
        if name.trim().is_empty() || strata[..i].contains(name) {
            return Err(ParamError::new(
                format!("strata[{i}]"),
                format!("dimension `{name}` is empty or named twice"),
            ));
        }
    }
    Ok(strata)
}

/// Direct standardisation to one standard population.
#[derive(Debug, Clone)]
pub struct DirectStandardisation {
    pub standard: Standard,
    pub min_observed: f64,
}

/// Each cell's standard stratum, and each stratum's weight (summing to 1).
struct StandardStrata {
    stratum_of_cell: Vec<usize>,
    weights: Vec<f64>,
}

/// Index of each named dimension in the counts, refusing one they lack.
fn dimension_indices(
    counts: &StratifiedCounts,
    names: &[String],
) -> Result<Vec<usize>, MethodError> {
    names
        .iter()
        .map(|name| {
            counts.dimension_index(name).ok_or_else(|| {
                let present: Vec<&str> =
                    counts.dimensions.iter().map(|d| d.name.as_str()).collect();
                MethodError::new(format!(
                    "the standard is by dimension `{name}`, which the counts do not have (they \
                     have: {})",
                    present.join(", ")
                ))
            })
        })
        .collect()
}

/// For each cell, its stratum over the dimensions `kept` (row-major in their order), and the
/// number of strata.
fn strata_of_cells(counts: &StratifiedCounts, kept: &[usize]) -> (Vec<usize>, usize) {
    let sizes: Vec<usize> = kept
        .iter()
        .map(|&d| counts.dimensions[d].categories.len())
        .collect();
    let cells = (0..counts.cells())
        .map(|cell| {
            let coords = counts.cell_coords(cell);
            kept.iter()
                .zip(&sizes)
                .fold(0, |acc, (&d, &n)| acc * n + coords[d])
        })
        .collect();
    (cells, sizes.iter().product())
}

impl DirectStandardisation {
    /// The 2013 ESP's strata: the counts' age bands, each weighted by its band's share of
    /// 100,000, every band of the standard present once.
    fn esp_strata(&self, counts: &StratifiedCounts) -> Result<StandardStrata, MethodError> {
        let age = dimension_indices(counts, &["age_band".to_string()])?;
        let bands = &counts.dimensions[age[0]].categories;
        let standard: Vec<&str> = ESP_2013.iter().map(|(band, _)| *band).collect();
        let mut sorted: Vec<&str> = bands.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let mut wanted = standard.clone();
        wanted.sort_unstable();
        if sorted != wanted {
            return Err(MethodError::new(format!(
                "the 2013 European Standard Population has the age bands {}; the counts have {}",
                standard.join(", "),
                bands.join(", ")
            )));
        }
        let weights = bands
            .iter()
            .map(|b| {
                let (_, people) = ESP_2013
                    .iter()
                    .find(|(band, _)| band == b)
                    .copied()
                    .unwrap_or_default();
                people / 100_000.0
            })
            .collect();
        let (stratum_of_cell, _) = strata_of_cells(counts, &age);
        Ok(StandardStrata {
            stratum_of_cell,
            weights,
        })
    }

    /// The national population's strata over `names`, weighted by their share of it.
    fn national_strata(
        counts: &StratifiedCounts,
        names: &[String],
    ) -> Result<StandardStrata, MethodError> {
        let kept = dimension_indices(counts, names)?;
        let (stratum_of_cell, n_strata) = strata_of_cells(counts, &kept);
        let mut people = vec![0.0; n_strata];
        for area in 0..counts.areas.len() {
            for (cell, n) in counts.population_of(area).iter().enumerate() {
                people[stratum_of_cell[cell]] += n;
            }
        }
        let total: f64 = people.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return Err(MethodError::new(
                "the national population is 0: it cannot be a standard",
            ));
        }
        let weights = people.iter().map(|n| n / total).collect();
        Ok(StandardStrata {
            stratum_of_cell,
            weights,
        })
    }

    fn strata(&self, counts: &StratifiedCounts) -> Result<StandardStrata, MethodError> {
        match &self.standard {
            Standard::Esp2013 => self.esp_strata(counts),
            Standard::National(names) => Self::national_strata(counts, names),
        }
    }
}

/// A DSR and its variance from stratum tests and population (rates per `rate_per`); NaN when a
/// stratum of positive weight has no population.
pub fn dsr(tests: &[f64], population: &[f64], weights: &[f64], rate_per: f64) -> (f64, f64) {
    let mut rate = 0.0;
    let mut variance = 0.0;
    for ((&t, &n), &w) in tests.iter().zip(population).zip(weights) {
        if w == 0.0 {
            continue;
        }
        if n.is_nan() || n <= 0.0 {
            return (f64::NAN, f64::NAN);
        }
        rate += w * t / n;
        variance += w * w * t / (n * n);
    }
    (rate * rate_per, variance * rate_per * rate_per)
}

/// Sums `values` (one per cell) into strata.
fn by_stratum(values: &[f64], strata: &StandardStrata) -> Vec<f64> {
    let mut out = vec![0.0; strata.weights.len()];
    for (cell, v) in values.iter().enumerate() {
        out[strata.stratum_of_cell[cell]] += v;
    }
    out
}

/// Refuses counts whose vectors do not match their shape or hold negative or non-finite values.
fn check_counts(counts: &StratifiedCounts) -> Result<(), MethodError> {
    let cells = counts.cells();
    let areas = counts.areas.len();
    if counts.tests.len() != counts.measures.len() * areas * cells
        || counts.population.len() != areas * cells
    {
        return Err(MethodError::new(
            "counts do not match their shape (measures × areas × cells)",
        ));
    }
    let bad = |v: &f64| !v.is_finite() || *v < 0.0;
    if counts.tests.iter().chain(&counts.population).any(bad) {
        return Err(MethodError::new(
            "counts hold a negative or non-finite number of tests or people",
        ));
    }
    Ok(())
}

impl StandardisationMethod for DirectStandardisation {
    fn method_name(&self) -> String {
        let standard = match &self.standard {
            Standard::Esp2013 => "2013 European Standard Population (age_band)".to_string(),
            Standard::National(names) => format!("national population ({})", names.join(" × ")),
        };
        let mut name = format!("direct, {standard}");
        if self.min_observed > 0.0 {
            name.push_str(&format!("; none below {} tests", self.min_observed));
        }
        name
    }

    fn standardise(&self, counts: &StratifiedCounts) -> Result<StandardisedRates, MethodError> {
        check_counts(counts)?;
        let strata = self.strata(counts)?;
        let n_areas = counts.areas.len();
        let population: Vec<Vec<f64>> = (0..n_areas)
            .map(|a| by_stratum(counts.population_of(a), &strata))
            .collect();
        let national_population: Vec<f64> = (0..strata.weights.len())
            .map(|j| population.iter().map(|p| p[j]).sum())
            .collect();
        let mut result = StandardisedRates {
            method: self.method_name(),
            rate_per: counts.rate_per,
            national: Vec::with_capacity(counts.measures.len()),
            areas: Vec::with_capacity(counts.measures.len() * n_areas),
        };
        for measure in 0..counts.measures.len() {
            let tests: Vec<Vec<f64>> = (0..n_areas)
                .map(|a| by_stratum(counts.tests_of(measure, a), &strata))
                .collect();
            let national_tests: Vec<f64> = (0..strata.weights.len())
                .map(|j| tests.iter().map(|t| t[j]).sum())
                .collect();
            let (national_rate, _) = dsr(
                &national_tests,
                &national_population,
                &strata.weights,
                counts.rate_per,
            );
            result.national.push(NationalRate {
                measure,
                observed: national_tests.iter().sum(),
                population: national_population.iter().sum(),
                rate: national_rate,
            });
            for area in 0..n_areas {
                result.areas.push(self.area_rate(
                    (measure, area),
                    (&tests[area], &population[area]),
                    &strata.weights,
                    (national_rate, counts.rate_per),
                ));
            }
        }
        Ok(result)
    }
}

impl DirectStandardisation {
    /// One area × measure row: its DSR and variance, and the expected count that makes
    /// `O/E × national DSR` that DSR.
    fn area_rate(
        &self,
        (measure, area): (usize, usize),
        (tests, population): (&[f64], &[f64]),
        weights: &[f64],
        (national_rate, rate_per): (f64, f64),
    ) -> AreaRate {
        let observed: f64 = tests.iter().sum();
        let people: f64 = population.iter().sum();
        let (mut rate, mut variance) = dsr(tests, population, weights, rate_per);
        if observed < self.min_observed {
            (rate, variance) = (f64::NAN, f64::NAN);
        }
        let expected = if rate > 0.0 {
            observed * national_rate / rate
        } else {
            f64::NAN
        };
        AreaRate {
            area,
            measure,
            observed,
            expected,
            population: people,
            crude_rate: if people > 0.0 {
                observed / people * rate_per
            } else {
                f64::NAN
            },
            standardised_rate: rate,
            national_rate,
            variance: Some(variance),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, Dimension};

    /// PHEindicatormethods' DSR test data (`tests/testthat/testdata_DSR_ISR.xlsx`, sheet
    /// `testdata_multiarea`, commit 093fd28): one population by the 19 ESP age bands and the tests
    /// of areas `testdata_big`, `testdata_small` and `testdata_tiny` (a blank count read as 0).
    pub const PHE_POPULATION: [f64; 19] = [
        636.0, 558.0, 609.0, 543.0, 384.0, 594.0, 669.0, 843.0, 660.0, 576.0, 606.0, 522.0, 426.0,
        273.0, 300.0, 288.0, 153.0, 123.0, 207.0,
    ];
    pub const PHE_BIG: [f64; 19] = [
        127.0, 25.0, 18.0, 21.0, 12.0, 27.0, 48.0, 27.0, 29.0, 32.0, 32.0, 34.0, 45.0, 65.0, 38.0,
        68.0, 74.0, 82.0, 91.0,
    ];
    pub const PHE_SMALL: [f64; 19] = [
        12.0, 4.0, 3.0, 2.0, 3.0, 4.0, 8.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 5.0, 6.0, 5.0, 5.0,
        4.0,
    ];
    pub const PHE_TINY: [f64; 19] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0,
        3.0,
    ];

    fn configured(text: &str) -> Result<Box<dyn StandardisationMethod>, ParamError> {
        match configure(&Params::from_toml_str(text).expect("toml"))? {
            Configured::Standardisation(m) => Ok(m),
            _ => panic!("a standardisation"),
        }
    }

    /// Three areas with the PHE tests, by age band and (to be summed over) sex, half the people
    /// and tests in each sex.
    fn phe_counts() -> StratifiedCounts {
        let bands: Vec<&str> = ESP_2013.iter().map(|(b, _)| *b).collect();
        let mut counts = StratifiedCounts::zeroed(
            ["big", "small", "tiny"]
                .map(|c| Area {
                    code: c.into(),
                    name: c.into(),
                })
                .to_vec(),
            vec!["xray".into()],
            vec![
                Dimension::new("sex", &["1", "2"]),
                Dimension::new("age_band", &bands),
            ],
        );
        for (area, tests) in [PHE_BIG, PHE_SMALL, PHE_TINY].iter().enumerate() {
            for (sex, half) in [0.25, 0.75].iter().enumerate() {
                for band in 0..19 {
                    let cell = counts.cell_index(&[sex, band]);
                    counts.tests_of_mut(0, area)[cell] = tests[band] * half;
                    counts.population_of_mut(area)[cell] = PHE_POPULATION[band] * half;
                }
            }
        }
        counts.rate_per = 100_000.0;
        counts
    }

    #[test]
    fn esp2013_rates_equal_phe_indicator_methods_test_results() {
        // testresults_DSR: testdata_big 895 tests in 8,970 people, DSR 10,430.247991469423 per
        // 100,000; testdata_small 91, 1,103.212025300104; testdata_tiny 9 tests: no DSR (< 10).
        let rates = configured("")
            .expect("defaults")
            .standardise(&phe_counts())
            .expect("rates");
        let area = |a: usize| &rates.areas[a];
        assert_eq!((area(0).observed, area(0).population), (895.0, 8970.0));
        assert!((area(0).standardised_rate - 10_430.247_991_469_423).abs() < 1e-8);
        assert!((area(1).standardised_rate - 1_103.212_025_300_104).abs() < 1e-8);
        assert!(area(2).standardised_rate.is_nan() && area(2).expected.is_nan());
        assert_eq!(area(2).observed, 9.0);
        // The variance by hand for testdata_big: U² Σ w² t / n² (10⁵² × 1.36566e-5).
        let v: f64 = ESP_2013
            .iter()
            .zip(PHE_BIG.iter().zip(PHE_POPULATION))
            .map(|((_, w), (t, n))| (w / 1e5).powi(2) * t / (n * n))
            .sum::<f64>()
            * 1e10;
        assert!((area(0).variance.unwrap() - v).abs() < 1e-6 && (v - 136_566.19).abs() < 0.01);
        // O/E × national DSR is the area's DSR.
        let r = area(1);
        assert!((r.observed / r.expected * r.national_rate - r.standardised_rate).abs() < 1e-8);
    }

    #[test]
    fn the_national_standard_gives_england_its_crude_rate() {
        let m = configured("standard = \"national\"\nstrata = [\"age_band\"]\nmin_observed = 0")
            .expect("params");
        let counts = phe_counts();
        let rates = m.standardise(&counts).expect("rates");
        let crude = (895.0 + 91.0 + 9.0) / (3.0 * 8970.0) * 1e5;
        assert!((rates.national[0].rate - crude).abs() < 1e-9);
        // All three areas share one population, so each DSR is its crude rate.
        let r = &rates.areas[2];
        assert!((r.standardised_rate - 9.0 / 8970.0 * 1e5).abs() < 1e-9);
        assert!(m.method_name().contains("national population (age_band)"));
    }

    #[test]
    fn parameters_and_shapes_are_checked() {
        for (text, key) in [
            ("standard = \"esp1976\"", "standard"),
            ("strata = [\"sex\"]", "strata"),
            (
                "standard = \"national\"\nstrata = [\"sex\", \"sex\"]",
                "strata[1]",
            ),
            ("min_observed = -1", "min_observed"),
        ] {
            let err = configured(text).err().expect(text);
            assert_eq!(err.key.as_deref(), Some(key), "{text}");
        }
        let mut counts = phe_counts();
        counts.dimensions[1].categories[18] = "90-94".into();
        let err = configured("").unwrap().standardise(&counts).unwrap_err();
        assert!(err.message.contains("90-94"), "{}", err.message);
    }

    #[test]
    fn a_stratum_without_people_leaves_the_rate_undefined() {
        let mut counts = phe_counts();
        for sex in 0..2 {
            let cell = counts.cell_index(&[sex, 3]);
            counts.population_of_mut(0)[cell] = 0.0;
        }
        let rates = configured("").unwrap().standardise(&counts).unwrap();
        assert!(rates.areas[0].standardised_rate.is_nan());
        assert!(rates.areas[1].standardised_rate.is_finite());
    }
}
