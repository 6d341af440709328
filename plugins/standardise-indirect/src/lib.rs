//! `standardise.indirect` — indirectly standardised area rates (SPEC §2.4; section 2 of both
//! publications).
//!
//! Strata are the cells over the dimensions named by the `strata` parameter (default
//! `["imd_quintile", "sex", "age_band"]`); any other dimension of the counts is collapsed by summing.
//! Per measure, with `t_aj` the tests and `n_aj` the population of area a in stratum j:
//!
//! - national stratum rate `R_j = Σ_a t_aj / Σ_a n_aj` (0 where `Σ_a n_aj = 0`);
//! - `expected_a = Σ_j R_j · n_aj`, `observed_a = Σ_j t_aj`;
//! - `national_rate = Σ_aj t_aj / Σ_aj n_aj × U`;
//! - `crude_rate_a = observed_a / population_a × U`;
//! - `standardised_rate_a = observed_a / expected_a × national_rate`,
//!
//! with U the recipe's per-population unit (`rate_per`, 10,000 in the DID publications), carried
//! in the counts.
//!
//! Edge cases:
//! - tests in a stratum with no population count in `observed` (and in the national rate) but add
//!   nothing to `expected`, since nobody there is expected to be tested;
//! - an area with no tests in a measure still gets a row: observed 0, standardised rate 0;
//! - `standardised_rate` is NaN when `expected` is 0 (the area has no population in any stratum with
//!   activity), and `crude_rate` is NaN when the area's population is 0: no rate is defined there;
//! - a `strata` entry naming a dimension the counts lack is refused at run time ([`MethodError`]
//!   naming it), since dimensions are only known once the counts exist; a total population of 0,
//!   mis-shaped counts, or negative or non-finite counts are refused likewise.
//!
//! External standard (opt-in): the recipe names a standard's stratum counts as the stage's
//! `data` files, `standard_tests` (columns `measure`, each `strata` dimension, `tests`) and
//! `standard_population` (each `strata` dimension, `population`) — e.g. another year's
//! `stratum_counts.csv` and `stratum_population.csv`; any other column (`area_code`) is summed
//! over. The standard's rates `R*_j = T*_j / N*_j` (0 where `N*_j = 0`) replace the run's own
//! `R_j` in `expected_a`, and `standardised_rate_a = observed_a / expected_a × R* × U` with
//! `R* = Σ T* / Σ N*` the standard's own national rate (each area row's `national_rate`), so a
//! standard equal to the run's own counts gives the run's own rates, and trends can be
//! standardised on one standard. `national_rates` stays the run's own. A run stratum with
//! population but no standard population, or a measure the standard lacks, is refused; a
//! `standard_label` names the standard in the method name.
//!
//! References: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24*, section 2 ("Standardised Rate = Observed / Expected × National
//! Rate").

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_api::{
    AreaRate, Configured, MethodError, NationalRate, ParamError, Params, PluginDescriptor,
    StageKind, StandardisationMethod, StandardisedRates, StratifiedCounts,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "standardise.indirect",
    stage: StageKind::Standardisation,
    version: env!("CARGO_PKG_VERSION"),
    description: "Indirect standardisation: observed / expected (national stratum rates) × national rate",
    configure,
};

/// The strata the publications standardise by.
pub const DEFAULT_STRATA: [&str; 3] = ["imd_quintile", "sex", "age_band"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndirectParams {
    /// Dimensions whose cells are the strata; others are summed over.
    #[serde(default = "default_strata")]
    strata: Vec<String>,
    /// An external standard's tests by measure × stratum (the stage's `data` file's rows).
    standard_tests: Option<Vec<BTreeMap<String, String>>>,
    /// Its population by stratum.
    standard_population: Option<Vec<BTreeMap<String, String>>>,
    /// What the method name calls the external standard.
    standard_label: Option<String>,
}

fn default_strata() -> Vec<String> {
    DEFAULT_STRATA.iter().map(|s| s.to_string()).collect()
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: IndirectParams = params.parse()?;
    let mut method = IndirectStandardisation::new(parsed.strata)?;
    method.standard = match (parsed.standard_tests, parsed.standard_population) {
        (None, None) => {
            if parsed.standard_label.is_some() {
                return Err(ParamError::new(
                    "standard_label",
                    "a label names an external standard: give `standard_tests` and \
                     `standard_population` too",
                ));
            }
            None
        }
        (Some(tests), Some(population)) => Some(ExternalStandard::new(
            &method.strata,
            &tests,
            &population,
            parsed
                .standard_label
                .unwrap_or_else(|| "external standard".into()),
        )?),
        (tests, _) => {
            let missing = if tests.is_none() {
                "standard_tests"
            } else {
                "standard_population"
            };
            return Err(ParamError::new(
                missing,
                "an external standard needs both `standard_tests` and `standard_population`",
            ));
        }
    };
    Ok(Configured::Standardisation(Box::new(method)))
}

/// An external standard: tests by (measure, stratum labels) and population by stratum labels,
/// summed over any other column.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalStandard {
    tests: BTreeMap<(String, Vec<String>), f64>,
    population: BTreeMap<Vec<String>, f64>,
    label: String,
}

/// A non-negative number in column `column` of row `i` of data `key`.
fn data_number(
    key: &str,
    i: usize,
    row: &BTreeMap<String, String>,
    column: &str,
) -> Result<f64, ParamError> {
    let at = format!("{key}[{i}].{column}");
    let text = row
        .get(column)
        .ok_or_else(|| ParamError::new(&at, format!("column `{column}` is missing or empty")))?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(ParamError::new(
            &at,
            format!("`{text}` in column `{column}` is not a count of 0 or more"),
        )),
    }
}

/// The labels of the strata dimensions (and the measure first, when `measure`) of row `i`.
fn data_key(
    key: &str,
    i: usize,
    row: &BTreeMap<String, String>,
    columns: &[&str],
) -> Result<Vec<String>, ParamError> {
    columns
        .iter()
        .map(|c| {
            row.get(*c).cloned().ok_or_else(|| {
                ParamError::new(
                    format!("{key}[{i}].{c}"),
                    format!("column `{c}` is missing or empty"),
                )
            })
        })
        .collect()
}

impl ExternalStandard {
    fn new(
        strata: &[String],
        tests: &[BTreeMap<String, String>],
        population: &[BTreeMap<String, String>],
        label: String,
    ) -> Result<Self, ParamError> {
        let dims: Vec<&str> = strata.iter().map(String::as_str).collect();
        let with_measure: Vec<&str> = std::iter::once("measure").chain(dims.clone()).collect();
        let mut standard = ExternalStandard {
            tests: BTreeMap::new(),
            population: BTreeMap::new(),
            label,
        };
        for (i, row) in tests.iter().enumerate() {
            let mut labels = data_key("standard_tests", i, row, &with_measure)?;
            let value = data_number("standard_tests", i, row, "tests")?;
            let measure = labels.remove(0);
            *standard.tests.entry((measure, labels)).or_default() += value;
        }
        for (i, row) in population.iter().enumerate() {
            let labels = data_key("standard_population", i, row, &dims)?;
            let value = data_number("standard_population", i, row, "population")?;
            *standard.population.entry(labels).or_default() += value;
        }
        Ok(standard)
    }

    /// The standard's stratum rates for one measure (per person, in the order of `strata`'s
    /// labels) and its national rate per person; a measure it lacks, or a stratum the run has
    /// people in and the standard none, is refused.
    fn rates(
        &self,
        measure: &str,
        strata: &[Vec<String>],
        run_population: &[f64],
    ) -> Result<(Vec<f64>, f64), MethodError> {
        if !self.tests.keys().any(|(m, _)| m == measure) {
            return Err(MethodError::new(format!(
                "the external standard has no tests for measure `{measure}`"
            )));
        }
        let mut rates = Vec::with_capacity(strata.len());
        for (labels, &people) in strata.iter().zip(run_population) {
            let n = self.population.get(labels).copied().unwrap_or(0.0);
            if n <= 0.0 && people > 0.0 {
                return Err(MethodError::new(format!(
                    "the external standard has no population in stratum {}",
                    labels.join(" × ")
                )));
            }
            let t = self
                .tests
                .get(&(measure.to_string(), labels.clone()))
                .copied()
                .unwrap_or(0.0);
            rates.push(if n > 0.0 { t / n } else { 0.0 });
        }
        let total_tests: f64 = self
            .tests
            .iter()
            .filter(|((m, _), _)| m == measure)
            .map(|(_, t)| t)
            .sum();
        let total_people: f64 = self.population.values().sum();
        Ok((rates, total_tests / total_people))
    }
}

/// Indirect standardisation over a chosen set of stratifying dimensions.
#[derive(Debug, Clone)]
pub struct IndirectStandardisation {
    strata: Vec<String>,
    /// The recipe's external standard, in place of the run's own national stratum rates.
    standard: Option<ExternalStandard>,
}

impl IndirectStandardisation {
    /// Refuses duplicate or empty dimension names; whether they exist is checked at run time.
    pub fn new(strata: Vec<String>) -> Result<Self, ParamError> {
        for (i, name) in strata.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(ParamError::new(
                    format!("strata[{i}]"),
                    "a stratum dimension name is empty",
                ));
            }
            if strata[..i].contains(name) {
                return Err(ParamError::new(
                    format!("strata[{i}]"),
                    format!("dimension `{name}` is named twice in strata"),
                ));
            }
        }
        Ok(IndirectStandardisation {
            strata,
            standard: None,
        })
    }

    pub fn strata(&self) -> &[String] {
        &self.strata
    }
}

impl Default for IndirectStandardisation {
    fn default() -> Self {
        IndirectStandardisation {
            strata: default_strata(),
            standard: None,
        }
    }
}

/// Refuses counts whose vectors do not match their declared shape or hold impossible values.
pub fn check_counts(counts: &StratifiedCounts) -> Result<(), MethodError> {
    let cells = counts.cells();
    let areas = counts.areas.len();
    let expected_tests = counts.measures.len() * areas * cells;
    if counts.tests.len() != expected_tests {
        return Err(MethodError::new(format!(
            "counts hold {} test values, but {} measures × {} areas × {} cells need {}",
            counts.tests.len(),
            counts.measures.len(),
            areas,
            cells,
            expected_tests
        )));
    }
    if counts.population.len() != areas * cells {
        return Err(MethodError::new(format!(
            "counts hold {} population values, but {} areas × {} cells need {}",
            counts.population.len(),
            areas,
            cells,
            areas * cells
        )));
    }
    let bad = |v: &f64| !v.is_finite() || *v < 0.0;
    if counts.tests.iter().any(bad) {
        return Err(MethodError::new(
            "counts hold a negative or non-finite number of tests",
        ));
    }
    if counts.population.iter().any(bad) {
        return Err(MethodError::new(
            "counts hold a negative or non-finite population",
        ));
    }
    Ok(())
}

/// One area × measure row from its tests and population by stratum and the standard's stratum
/// rates (per person) and national rate (per `rate_per`).
fn area_rate(
    (area, measure): (usize, usize),
    (tests, people): (&[f64], &[f64]),
    stratum_rate: &[f64],
    national_rate: f64,
    rate_per: f64,
) -> AreaRate {
    let observed: f64 = tests.iter().sum();
    let population: f64 = people.iter().sum();
    let expected: f64 = people
        .iter()
        .zip(stratum_rate)
        .map(|(&people, &rate)| people * rate)
        .sum();
    let crude_rate = if population > 0.0 {
        observed / population * rate_per
    } else {
        f64::NAN
    };
    let standardised_rate = if expected > 0.0 {
        observed / expected * national_rate
    } else {
        f64::NAN
    };
    AreaRate {
        area,
        measure,
        observed,
        expected,
        population,
        crude_rate,
        standardised_rate,
        national_rate,
        variance: None,
    }
}

/// Each stratum's category labels over the dimensions `kept`, in the numbering of
/// [`strata_of_cells`].
fn stratum_labels(counts: &StratifiedCounts, kept: &[usize]) -> Vec<Vec<String>> {
    let mut labels = vec![Vec::new()];
    for &d in kept {
        labels = labels
            .into_iter()
            .flat_map(|prefix: Vec<String>| {
                counts.dimensions[d].categories.iter().map(move |c| {
                    let mut next = prefix.clone();
                    next.push(c.clone());
                    next
                })
            })
            .collect();
    }
    labels
}

/// For each cell of `counts`, the stratum it falls in when only the dimensions `kept` (indices into
/// `counts.dimensions`) are kept, numbered row-major in the order of `kept`; and the stratum count.
fn strata_of_cells(counts: &StratifiedCounts, kept: &[usize]) -> (Vec<usize>, usize) {
    let sizes: Vec<usize> = kept
        .iter()
        .map(|&d| counts.dimensions[d].categories.len())
        .collect();
    let n_strata = sizes.iter().product();
    let stratum_of_cell = (0..counts.cells())
        .map(|cell| {
            let coords = counts.cell_coords(cell);
            kept.iter()
                .zip(&sizes)
                .fold(0, |acc, (&d, &n)| acc * n + coords[d])
        })
        .collect();
    (stratum_of_cell, n_strata)
}

impl StandardisationMethod for IndirectStandardisation {
    fn method_name(&self) -> String {
        let name = if self.strata.is_empty() {
            "indirect (no strata)".to_string()
        } else {
            format!("indirect ({})", self.strata.join(" × "))
        };
        match &self.standard {
            Some(standard) => format!("{name} against {}", standard.label),
            None => name,
        }
    }

    fn standardise(&self, counts: &StratifiedCounts) -> Result<StandardisedRates, MethodError> {
        check_counts(counts)?;
        let kept = self
            .strata
            .iter()
            .map(|name| {
                counts.dimension_index(name).ok_or_else(|| {
                    let present: Vec<&str> =
                        counts.dimensions.iter().map(|d| d.name.as_str()).collect();
                    MethodError::new(format!(
                        "strata names dimension `{name}`, which the counts do not have (they have: {})",
                        present.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<usize>, MethodError>>()?;
        let (stratum_of_cell, n_strata) = strata_of_cells(counts, &kept);
        let n_areas = counts.areas.len();

        // Population per area × stratum, and per stratum nationally.
        let mut area_population = vec![0.0; n_areas * n_strata];
        for area in 0..n_areas {
            for (cell, &people) in counts.population_of(area).iter().enumerate() {
                area_population[area * n_strata + stratum_of_cell[cell]] += people;
            }
        }
        let mut national_population = vec![0.0; n_strata];
        for area in 0..n_areas {
            for stratum in 0..n_strata {
                national_population[stratum] += area_population[area * n_strata + stratum];
            }
        }
        let total_population: f64 = national_population.iter().sum();
        if total_population <= 0.0 {
            return Err(MethodError::new(
                "the total population is 0: no rate can be standardised",
            ));
        }

        let mut result = StandardisedRates {
            method: self.method_name(),
            rate_per: counts.rate_per,
            national: Vec::with_capacity(counts.measures.len()),
            areas: Vec::with_capacity(counts.measures.len() * n_areas),
        };
        let mut area_tests = vec![0.0; n_areas * n_strata];
        for measure in 0..counts.measures.len() {
            area_tests.iter_mut().for_each(|t| *t = 0.0);
            for area in 0..n_areas {
                for (cell, &tests) in counts.tests_of(measure, area).iter().enumerate() {
                    area_tests[area * n_strata + stratum_of_cell[cell]] += tests;
                }
            }
            let mut national_tests = vec![0.0; n_strata];
            for area in 0..n_areas {
                for stratum in 0..n_strata {
                    national_tests[stratum] += area_tests[area * n_strata + stratum];
                }
            }
            let stratum_rate: Vec<f64> = national_tests
                .iter()
                .zip(&national_population)
                .map(|(&tests, &people)| if people > 0.0 { tests / people } else { 0.0 })
                .collect();
            let total_tests: f64 = national_tests.iter().sum();
            let national_rate = total_tests / total_population * counts.rate_per;
            result.national.push(NationalRate {
                measure,
                observed: total_tests,
                population: total_population,
                rate: national_rate,
            });
            // An external standard's rates replace the run's own, and its national rate scales.
            let (stratum_rate, national_rate) = match &self.standard {
                None => (stratum_rate, national_rate),
                Some(standard) => {
                    let labels = stratum_labels(counts, &kept);
                    let (rates, rate) =
                        standard.rates(&counts.measures[measure], &labels, &national_population)?;
                    (rates, rate * counts.rate_per)
                }
            };

            for area in 0..n_areas {
                let row = area * n_strata..(area + 1) * n_strata;
                result.areas.push(area_rate(
                    (area, measure),
                    (&area_tests[row.clone()], &area_population[row]),
                    &stratum_rate,
                    national_rate,
                    counts.rate_per,
                ));
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, Dimension};

    const TOL: f64 = 1e-9;

    fn area(code: &str) -> Area {
        Area {
            code: code.to_string(),
            name: format!("Area {code}"),
        }
    }

    fn configured(text: &str) -> Result<Box<dyn StandardisationMethod>, ParamError> {
        let params = Params::from_toml_str(text).expect("valid toml");
        match configure(&params)? {
            Configured::Standardisation(m) => Ok(m),
            _ => panic!("wrong stage"),
        }
    }

    fn by_age() -> Box<dyn StandardisationMethod> {
        configured("strata = [\"age_band\"]").expect("valid params")
    }

    fn row(rates: &StandardisedRates, measure: usize, area: usize) -> &AreaRate {
        rates
            .areas
            .iter()
            .find(|r| r.measure == measure && r.area == area)
            .expect("row present")
    }

    /// Two areas × two age strata, one measure.
    /// A: young 1,000 people / 50 tests, old 500 / 100; B: young 2,000 / 60, old 500 / 150.
    fn two_by_two() -> StratifiedCounts {
        let mut c = StratifiedCounts::zeroed(
            vec![area("A"), area("B")],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["young", "old"])],
        );
        c.population_of_mut(0).copy_from_slice(&[1000.0, 500.0]);
        c.population_of_mut(1).copy_from_slice(&[2000.0, 500.0]);
        c.tests_of_mut(0, 0).copy_from_slice(&[50.0, 100.0]);
        c.tests_of_mut(0, 1).copy_from_slice(&[60.0, 150.0]);
        c
    }

    #[test]
    fn two_areas_two_strata_by_hand() {
        // R_young = 110/3000, R_old = 250/1000; national 360/4000 = 900 per 10,000.
        // E_A = 1000·110/3000 + 500·0.25 = 485/3; E_B = 2000·110/3000 + 500·0.25 = 595/3.
        // SR_A = 150 / (485/3) × 900 = 405000/485; SR_B = 210 / (595/3) × 900 = 567000/595.
        let rates = by_age().standardise(&two_by_two()).unwrap();
        assert_eq!(rates.method, "indirect (age_band)");
        assert_eq!(rates.national.len(), 1);
        assert!((rates.national[0].rate - 900.0).abs() < TOL);
        assert_eq!(rates.national[0].observed, 360.0);
        assert_eq!(rates.national[0].population, 4000.0);

        let a = row(&rates, 0, 0);
        assert_eq!(a.observed, 150.0);
        assert_eq!(a.population, 1500.0);
        assert!((a.expected - 485.0 / 3.0).abs() < TOL, "{}", a.expected);
        assert!((a.crude_rate - 1000.0).abs() < TOL);
        assert!((a.standardised_rate - 405000.0 / 485.0).abs() < TOL);
        assert!((a.standardised_rate - 835.0515).abs() < 1e-4);
        assert!((a.national_rate - 900.0).abs() < TOL);

        let b = row(&rates, 0, 1);
        assert_eq!(b.observed, 210.0);
        assert!((b.expected - 595.0 / 3.0).abs() < TOL, "{}", b.expected);
        assert!((b.crude_rate - 840.0).abs() < TOL);
        assert!((b.standardised_rate - 567000.0 / 595.0).abs() < TOL);
        assert!((b.standardised_rate - 952.9412).abs() < 1e-4);

        // Indirect standardisation reproduces the national total.
        assert!((a.expected + b.expected - 360.0).abs() < TOL);
    }

    #[test]
    fn an_external_standard_replaces_the_national_rates_by_hand() {
        // Standard: young 20 tests in 1,000 (0.02), old 100 in 400 (0.25); R* = 120/1,400.
        // E_A = 1000·0.02 + 500·0.25 = 145; SR_A = 150/145 × 120/1,400 × 10,000.
        let standard = "strata = [\"age_band\"]\nstandard_label = \"2020/21\"\n\
            standard_tests = [{ area_code = \"X\", measure = \"xray\", age_band = \"young\", tests = \"20\" }, \
              { measure = \"xray\", age_band = \"old\", tests = \"60\" }, \
              { measure = \"xray\", age_band = \"old\", tests = \"40\" }]\n\
            standard_population = [{ age_band = \"young\", population = \"1000\" }, \
              { age_band = \"old\", population = \"400\" }]";
        let m = configured(standard).expect("params");
        let rates = m.standardise(&two_by_two()).expect("rates");
        assert_eq!(rates.method, "indirect (age_band) against 2020/21");
        let a = row(&rates, 0, 0);
        assert!((a.expected - 145.0).abs() < TOL);
        let national = 120.0 / 1400.0 * 10_000.0;
        assert!((a.national_rate - national).abs() < TOL);
        assert!((a.standardised_rate - 150.0 / 145.0 * national).abs() < TOL);
        // The national_rates table stays the run's own.
        assert!((rates.national[0].rate - 900.0).abs() < TOL);
    }

    #[test]
    fn an_external_standard_is_checked() {
        for (text, key) in [
            ("standard_tests = []", "standard_population"),
            ("standard_label = \"x\"", "standard_label"),
            (
                "standard_tests = [{ measure = \"xray\", sex = \"1\", imd_quintile = \"1\", tests = \"2\" }]\nstandard_population = []",
                "standard_tests[0].age_band",
            ),
            (
                "strata = [\"age_band\"]\nstandard_tests = [{ measure = \"xray\", age_band = \"young\", tests = \"-2\" }]\nstandard_population = []",
                "standard_tests[0].tests",
            ),
        ] {
            let err = configured(text).err().expect(text);
            assert_eq!(err.key.as_deref(), Some(key), "{text}: {}", err.message);
        }
        // A stratum with people in the run but none in the standard is refused at run time.
        let m = configured(
            "strata = [\"age_band\"]\nstandard_tests = [{ measure = \"xray\", age_band = \"young\", tests = \"2\" }]\nstandard_population = [{ age_band = \"young\", population = \"10\" }]",
        )
        .expect("params");
        let err = m.standardise(&two_by_two()).unwrap_err();
        assert!(err.message.contains("old"), "{}", err.message);
    }

    #[test]
    fn area_at_national_stratum_rates_gets_the_national_rate() {
        // C tests 11 of 300 young (= 110/3000) and 25 of 100 old (= 0.25): the national stratum
        // rates, which adding C leaves unchanged; national = 396/4400 = 900 per 10,000.
        let base = two_by_two();
        let mut c = StratifiedCounts::zeroed(
            vec![area("A"), area("B"), area("C")],
            base.measures.clone(),
            base.dimensions.clone(),
        );
        for a in 0..2 {
            c.population_of_mut(a)
                .copy_from_slice(base.population_of(a));
            c.tests_of_mut(0, a).copy_from_slice(base.tests_of(0, a));
        }
        c.population_of_mut(2).copy_from_slice(&[300.0, 100.0]);
        c.tests_of_mut(0, 2).copy_from_slice(&[11.0, 25.0]);
        let rates = by_age().standardise(&c).unwrap();
        let area_c = row(&rates, 0, 2);
        assert!((area_c.expected - 36.0).abs() < TOL);
        assert!((area_c.standardised_rate - 900.0).abs() < TOL);
        assert!((area_c.standardised_rate - rates.national[0].rate).abs() < TOL);
    }

    #[test]
    fn zero_observed_and_no_activity_in_a_measure() {
        // A second measure in which only A has tests: B's row is there with observed 0, rate 0.
        let base = two_by_two();
        let mut c = StratifiedCounts::zeroed(
            base.areas.clone(),
            vec!["xray".into(), "ct".into()],
            base.dimensions.clone(),
        );
        for a in 0..2 {
            c.population_of_mut(a)
                .copy_from_slice(base.population_of(a));
            c.tests_of_mut(0, a).copy_from_slice(base.tests_of(0, a));
        }
        c.tests_of_mut(1, 0).copy_from_slice(&[3.0, 9.0]);
        let rates = by_age().standardise(&c).unwrap();
        assert_eq!(rates.areas.len(), 4);
        let b = row(&rates, 1, 1);
        assert_eq!(b.observed, 0.0);
        assert_eq!(b.standardised_rate, 0.0);
        assert_eq!(b.crude_rate, 0.0);
        // R_young = 3/3000, R_old = 9/1000: E_B = 2 + 4.5.
        assert!((b.expected - 6.5).abs() < TOL);
        // National ct = 12/4000 = 30 per 10,000; A: E = 1 + 4.5, SR = 12/5.5 × 30.
        let a = row(&rates, 1, 0);
        assert!((rates.national[1].rate - 30.0).abs() < TOL);
        assert!((a.standardised_rate - 12.0 / 5.5 * 30.0).abs() < TOL);
        // The first measure is untouched by the second.
        assert!((row(&rates, 0, 0).standardised_rate - 405000.0 / 485.0).abs() < TOL);
    }

    #[test]
    fn tests_in_a_stratum_without_population_count_only_as_observed() {
        // A third stratum with nobody in it, but 5 tests in A (e.g. a population file gap).
        let mut c = StratifiedCounts::zeroed(
            vec![area("A"), area("B")],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["young", "old", "90+"])],
        );
        c.population_of_mut(0)
            .copy_from_slice(&[1000.0, 500.0, 0.0]);
        c.population_of_mut(1)
            .copy_from_slice(&[2000.0, 500.0, 0.0]);
        c.tests_of_mut(0, 0).copy_from_slice(&[50.0, 100.0, 5.0]);
        c.tests_of_mut(0, 1).copy_from_slice(&[60.0, 150.0, 0.0]);
        let rates = by_age().standardise(&c).unwrap();
        // National = 365/4000 = 912.5 per 10,000; E_A unchanged at 485/3; O_A = 155.
        assert!((rates.national[0].rate - 912.5).abs() < TOL);
        let a = row(&rates, 0, 0);
        assert_eq!(a.observed, 155.0);
        assert!((a.expected - 485.0 / 3.0).abs() < TOL);
        assert!((a.standardised_rate - 155.0 / (485.0 / 3.0) * 912.5).abs() < TOL);
        let b = row(&rates, 0, 1);
        assert!((b.expected - 595.0 / 3.0).abs() < TOL);
    }

    #[test]
    fn area_without_population_has_no_rate() {
        let mut c = StratifiedCounts::zeroed(
            vec![area("A"), area("Z")],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["young", "old"])],
        );
        c.population_of_mut(0).copy_from_slice(&[100.0, 100.0]);
        c.tests_of_mut(0, 0).copy_from_slice(&[1.0, 2.0]);
        c.tests_of_mut(0, 1).copy_from_slice(&[0.0, 4.0]);
        let rates = by_age().standardise(&c).unwrap();
        let z = row(&rates, 0, 1);
        assert_eq!(z.observed, 4.0);
        assert_eq!(z.expected, 0.0);
        assert!(z.standardised_rate.is_nan());
        assert!(z.crude_rate.is_nan());
    }

    /// Sex × age counts whose sum over sex is [`two_by_two`].
    fn sex_by_age() -> StratifiedCounts {
        let mut c = StratifiedCounts::zeroed(
            vec![area("A"), area("B")],
            vec!["xray".into()],
            vec![
                Dimension::new("sex", &["1", "2"]),
                Dimension::new("age_band", &["young", "old"]),
            ],
        );
        // Cells: (1, young), (1, old), (2, young), (2, old).
        c.population_of_mut(0)
            .copy_from_slice(&[400.0, 200.0, 600.0, 300.0]);
        c.population_of_mut(1)
            .copy_from_slice(&[1200.0, 100.0, 800.0, 400.0]);
        c.tests_of_mut(0, 0)
            .copy_from_slice(&[10.0, 30.0, 40.0, 70.0]);
        c.tests_of_mut(0, 1)
            .copy_from_slice(&[45.0, 50.0, 15.0, 100.0]);
        c
    }

    #[test]
    fn strata_param_collapses_the_other_dimensions() {
        let collapsed = by_age().standardise(&sex_by_age()).unwrap();
        let direct = by_age().standardise(&two_by_two()).unwrap();
        assert_eq!(collapsed.areas.len(), direct.areas.len());
        for (x, y) in collapsed.areas.iter().zip(&direct.areas) {
            assert!((x.expected - y.expected).abs() < TOL);
            assert!((x.standardised_rate - y.standardised_rate).abs() < TOL);
            assert_eq!(x.observed, y.observed);
        }
        // Standardising by sex as well gives different expected counts.
        let both = configured("strata = [\"sex\", \"age_band\"]")
            .unwrap()
            .standardise(&sex_by_age())
            .unwrap();
        assert!((both.areas[0].expected - direct.areas[0].expected).abs() > 1.0);
        let total_expected: f64 = both.areas.iter().map(|r| r.expected).sum();
        assert!((total_expected - 360.0).abs() < TOL);
    }

    #[test]
    fn strata_order_does_not_change_numbers() {
        let forward = configured("strata = [\"sex\", \"age_band\"]")
            .unwrap()
            .standardise(&sex_by_age())
            .unwrap();
        let reverse = configured("strata = [\"age_band\", \"sex\"]")
            .unwrap()
            .standardise(&sex_by_age())
            .unwrap();
        for (x, y) in forward.areas.iter().zip(&reverse.areas) {
            assert!((x.standardised_rate - y.standardised_rate).abs() < TOL);
        }
        assert_eq!(reverse.method, "indirect (age_band × sex)");
    }

    #[test]
    fn default_strata_are_the_published_ones() {
        let method = configured("").unwrap();
        assert_eq!(
            method.method_name(),
            "indirect (imd_quintile × sex × age_band)"
        );
    }

    #[test]
    fn missing_dimension_is_refused_at_run_time_by_name() {
        let err = configured("")
            .unwrap()
            .standardise(&sex_by_age())
            .unwrap_err();
        assert!(err.message.contains("`imd_quintile`"), "{}", err.message);
    }

    #[test]
    fn unknown_and_duplicate_params_are_refused() {
        let err = configured("strata = [\"sex\"]\nstrat = []").err().unwrap();
        assert_eq!(err.key.as_deref(), Some("strat"));
        let err = configured("strata = [\"sex\", \"sex\"]").err().unwrap();
        assert_eq!(err.key.as_deref(), Some("strata[1]"));
        let err = configured("strata = \"sex\"").err().unwrap();
        assert_eq!(err.key.as_deref(), Some("strata"));
    }

    #[test]
    fn mis_shaped_or_empty_counts_are_refused() {
        let mut c = two_by_two();
        c.tests.pop();
        assert!(by_age().standardise(&c).is_err());
        let mut c = two_by_two();
        c.population.iter_mut().for_each(|p| *p = 0.0);
        assert!(by_age().standardise(&c).is_err());
        let mut c = two_by_two();
        c.tests[0] = -1.0;
        assert!(by_age().standardise(&c).is_err());
    }
}
