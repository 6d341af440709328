//! `factors.standardised-by-others` — each factor's categories indirectly standardised for the other
//! factors (SPEC §2.5; section 3.1 of both publications).
//!
//! Factors: `sex` (dimension `sex`), `imd_quintile` (dimension `imd_quintile`) and `age_group`
//! (dimension `age_band`, its 5-year bands grouped into broad groups, by default `0-44`, `45-54`,
//! `55-64`, `65-74`, `75+`). For a factor on dimension d, the "others" are every other dimension
//! of the counts at full resolution: sex and IMD are standardised by the other one × 5-year age
//! band, the age groups by sex × IMD quintile. Per measure, summed over all areas, with `t_ko` and
//! `n_ko` the tests and population in category k of d and cell o of the others:
//!
//! - `R_o = Σ_k t_ko / Σ_k n_ko`, the national rate of the others' cell pooled over the factor
//!   (0 where there is no population);
//! - for a category c (a set of d's categories): `O_c = Σ_{k∈c,o} t_ko`,
//!   `E_c = Σ_{k∈c,o} R_o · n_ko`;
//! - `standardised_rate_c = O_c / E_c × national_rate × U`, national rate `Σ t / Σ n`, U the
//!   recipe's per-population unit (`rate_per`) carried in the counts.
//!
//! Edge cases: `standardised_rate` is NaN when `E_c` is 0 (no population in the category); tests in
//! cells with no population count in `O_c` only. Rows with an undefined ratio downstream (odds at
//! p ≥ 1) are why `fallback_groups` exists: `{ "75+" = "65+" }` adds a category `65+` — every
//! 5-year band from 65 up — computed the same way, with `fallback_for = Some("75+")` (the label of
//! the category it stands in for); the 2020/21 publication reports 65+ in place of 75+ for X-ray.
//!
//! Parameters (all optional):
//! - `factors = ["sex", "imd_quintile", "age_group"]`: which factors to report, in this order;
//! - `base = { sex = "2", imd_quintile = "1", age_group = "0-44" }`: base category codes (female,
//!   most deprived quintile, under 45); a key left out keeps its default;
//! - `age_groups = [0, 45, 55, 65, 75]`: lower bounds of the broad age groups, increasing; each
//!   group is named `lo-hi` (`hi` = next bound − 1) and the last `lo+`;
//! - `fallback_groups = {}`: age-group code → fallback category code (`"A+"` or `"A-B"`), which
//!   must contain the group;
//! - `labels`: per factor, category code → printed label. Defaults: sex `1` Male, `2` Female;
//!   IMD `1 Most deprived`, `2 More deprived`, `3 Mid quintile`, `4 Less deprived`,
//!   `5 Least deprived` (2023/24 publication, Table 3); age groups print as their codes. A factor
//!   given in `labels` replaces its defaults entirely (codes it leaves out print as codes), so
//!   `labels = { sex = {}, imd_quintile = {} }` prints plain codes.
//!
//! Rows come per factor, per measure: the base category first, then the others in dimension order,
//! then any fallback categories. `category` holds the label.
//!
//! Run-time errors ([`MethodError`]): a factor's dimension missing from the counts, a base code
//! that is not a category, an age band that cannot be read as `lo-hi` / `lo+` or that straddles a
//! group boundary, a total population of 0, mis-shaped or negative counts.
//!
//! References: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* §3.1 and
//! the note under its Table 5 (65+ reported for X-ray); *Standardised ICB rates 2023/24* §3.1
//! ("if rates ratios were being calculated for IMD, rates were standardised by Sex and Age").

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_api::{
    Configured, FactorMethod, FactorRate, FactorRates, MethodError, ParamError, Params,
    PluginDescriptor, StageKind, StratifiedCounts,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "factors.standardised-by-others",
    stage: StageKind::Factors,
    version: env!("CARGO_PKG_VERSION"),
    description: "Factor categories (sex, IMD, broad age) indirectly standardised for the other factors",
    configure,
};

/// The three factors, by the key used in parameters and in output rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Sex,
    ImdQuintile,
    AgeGroup,
}

impl Factor {
    pub const ALL: [Factor; 3] = [Factor::Sex, Factor::ImdQuintile, Factor::AgeGroup];

    pub fn key(self) -> &'static str {
        match self {
            Factor::Sex => "sex",
            Factor::ImdQuintile => "imd_quintile",
            Factor::AgeGroup => "age_group",
        }
    }

    /// The counts dimension the factor's categories come from.
    pub fn dimension(self) -> &'static str {
        match self {
            Factor::Sex => "sex",
            Factor::ImdQuintile => "imd_quintile",
            Factor::AgeGroup => "age_band",
        }
    }

    fn from_key(key: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|f| f.key() == key)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactorParams {
    #[serde(default = "default_factors")]
    factors: Vec<String>,
    #[serde(default)]
    base: BaseParams,
    #[serde(default = "default_age_groups")]
    age_groups: Vec<u32>,
    #[serde(default)]
    fallback_groups: BTreeMap<String, String>,
    #[serde(default)]
    labels: LabelParams,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseParams {
    #[serde(default = "default_base_sex")]
    sex: String,
    #[serde(default = "default_base_imd")]
    imd_quintile: String,
    #[serde(default = "default_base_age")]
    age_group: String,
}

impl Default for BaseParams {
    fn default() -> Self {
        BaseParams {
            sex: default_base_sex(),
            imd_quintile: default_base_imd(),
            age_group: default_base_age(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelParams {
    sex: Option<BTreeMap<String, String>>,
    imd_quintile: Option<BTreeMap<String, String>>,
    age_group: Option<BTreeMap<String, String>>,
}

fn default_factors() -> Vec<String> {
    Factor::ALL.iter().map(|f| f.key().to_string()).collect()
}
fn default_base_sex() -> String {
    "2".into()
}
fn default_base_imd() -> String {
    "1".into()
}
fn default_base_age() -> String {
    "0-44".into()
}
/// Lower bounds of the broad age groups both publications report.
pub fn default_age_groups() -> Vec<u32> {
    vec![0, 45, 55, 65, 75]
}

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(code, label)| (code.to_string(), label.to_string()))
        .collect()
}

fn default_sex_labels() -> BTreeMap<String, String> {
    labels_of(&[("1", "Male"), ("2", "Female")])
}

fn default_imd_labels() -> BTreeMap<String, String> {
    labels_of(&[
        ("1", "1 Most deprived"),
        ("2", "2 More deprived"),
        ("3", "3 Mid quintile"),
        ("4", "4 Less deprived"),
        ("5", "5 Least deprived"),
    ])
}

/// An age range in whole years; `upper` is inclusive, `None` for open-ended (`75+`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeRange {
    pub lower: u32,
    pub upper: Option<u32>,
}

impl AgeRange {
    /// Reads `lo-hi` or `lo+` (spaces allowed).
    pub fn parse(text: &str) -> Option<AgeRange> {
        let text = text.trim();
        if let Some(lower) = text.strip_suffix('+') {
            return Some(AgeRange {
                lower: lower.trim().parse().ok()?,
                upper: None,
            });
        }
        let (lower, upper) = text.split_once('-')?;
        let range = AgeRange {
            lower: lower.trim().parse().ok()?,
            upper: Some(upper.trim().parse().ok()?),
        };
        (range.upper >= Some(range.lower)).then_some(range)
    }

    pub fn contains(&self, other: &AgeRange) -> bool {
        other.lower >= self.lower
            && match (self.upper, other.upper) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => theirs <= mine,
            }
    }

    /// True when the two ranges share at least one year.
    pub fn overlaps(&self, other: &AgeRange) -> bool {
        let below = |a: &AgeRange, b: &AgeRange| a.upper.is_some_and(|u| u < b.lower);
        !below(self, other) && !below(other, self)
    }

    pub fn code(&self) -> String {
        match self.upper {
            Some(upper) => format!("{}-{}", self.lower, upper),
            None => format!("{}+", self.lower),
        }
    }
}

/// Broad age groups from increasing lower bounds: `[0, 45, 75]` → `0-44`, `45-74`, `75+`.
fn age_groups_from_bounds(bounds: &[u32]) -> Result<Vec<AgeRange>, ParamError> {
    if bounds.is_empty() {
        return Err(ParamError::new("age_groups", "age_groups is empty"));
    }
    for (i, pair) in bounds.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(ParamError::new(
                format!("age_groups[{}]", i + 1),
                "age_groups must be strictly increasing lower bounds",
            ));
        }
    }
    Ok(bounds
        .iter()
        .enumerate()
        .map(|(i, &lower)| AgeRange {
            lower,
            upper: bounds.get(i + 1).map(|next| next - 1),
        })
        .collect())
}

/// A fallback age category: the union of the bands inside `range`, standing in for `stands_in_for`.
#[derive(Debug, Clone)]
struct FallbackGroup {
    range: AgeRange,
    stands_in_for: String,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: FactorParams = params.parse()?;
    Ok(Configured::Factors(Box::new(StandardisedByOthers::new(
        parsed,
    )?)))
}

/// Factor rates, each factor standardised for the others.
#[derive(Debug, Clone)]
pub struct StandardisedByOthers {
    factors: Vec<Factor>,
    base_sex: String,
    base_imd: String,
    base_age: String,
    age_groups: Vec<AgeRange>,
    fallbacks: Vec<FallbackGroup>,
    sex_labels: BTreeMap<String, String>,
    imd_labels: BTreeMap<String, String>,
    age_labels: BTreeMap<String, String>,
}

impl Default for StandardisedByOthers {
    fn default() -> Self {
        StandardisedByOthers::configured(&Params::default())
            .expect("the defaults are valid parameters")
    }
}

/// One reported category of one factor: which categories of the factor's dimension it pools.
struct CategoryPlan {
    code: String,
    label: String,
    members: Vec<bool>,
    is_base: bool,
    fallback_for: Option<String>,
}

impl StandardisedByOthers {
    /// Builds the method from recipe parameters.
    pub fn configured(params: &Params) -> Result<Self, ParamError> {
        StandardisedByOthers::new(params.parse()?)
    }

    fn new(parsed: FactorParams) -> Result<Self, ParamError> {
        let mut factors = Vec::with_capacity(parsed.factors.len());
        for (i, key) in parsed.factors.iter().enumerate() {
            let factor = Factor::from_key(key).ok_or_else(|| {
                ParamError::new(
                    format!("factors[{i}]"),
                    format!("unknown factor `{key}` (known: sex, imd_quintile, age_group)"),
                )
            })?;
            if factors.contains(&factor) {
                return Err(ParamError::new(
                    format!("factors[{i}]"),
                    format!("factor `{key}` is named twice"),
                ));
            }
            factors.push(factor);
        }
        let age_groups = age_groups_from_bounds(&parsed.age_groups)?;
        let group_codes: Vec<String> = age_groups.iter().map(AgeRange::code).collect();
        if !group_codes.contains(&parsed.base.age_group) {
            return Err(ParamError::new(
                "base.age_group",
                format!(
                    "base age group `{}` is not one of the age groups ({})",
                    parsed.base.age_group,
                    group_codes.join(", ")
                ),
            ));
        }
        let mut fallbacks = Vec::new();
        for (stands_in_for, code) in &parsed.fallback_groups {
            let key = format!("fallback_groups.{stands_in_for}");
            let Some(group) = age_groups.iter().find(|g| &g.code() == stands_in_for) else {
                return Err(ParamError::new(
                    key,
                    format!(
                        "`{stands_in_for}` is not one of the age groups ({})",
                        group_codes.join(", ")
                    ),
                ));
            };
            let range = AgeRange::parse(code).ok_or_else(|| {
                ParamError::new(
                    key.clone(),
                    format!("fallback `{code}` is not an age range like `65+` or `65-89`"),
                )
            })?;
            if !range.contains(group) {
                return Err(ParamError::new(
                    key,
                    format!("fallback `{code}` does not contain the group `{stands_in_for}`"),
                ));
            }
            if group_codes.contains(&range.code()) {
                return Err(ParamError::new(
                    key,
                    format!("fallback `{code}` is already an age group"),
                ));
            }
            fallbacks.push(FallbackGroup {
                range,
                stands_in_for: stands_in_for.clone(),
            });
        }
        Ok(StandardisedByOthers {
            factors,
            base_sex: parsed.base.sex,
            base_imd: parsed.base.imd_quintile,
            base_age: parsed.base.age_group,
            age_groups,
            fallbacks,
            sex_labels: parsed.labels.sex.unwrap_or_else(default_sex_labels),
            imd_labels: parsed
                .labels
                .imd_quintile
                .unwrap_or_else(default_imd_labels),
            age_labels: parsed.labels.age_group.unwrap_or_default(),
        })
    }

    fn label(&self, factor: Factor, code: &str) -> String {
        let labels = match factor {
            Factor::Sex => &self.sex_labels,
            Factor::ImdQuintile => &self.imd_labels,
            Factor::AgeGroup => &self.age_labels,
        };
        labels
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }

    /// The categories to report for one factor, given its dimension's categories.
    fn plan(
        &self,
        factor: Factor,
        categories: &[String],
    ) -> Result<Vec<CategoryPlan>, MethodError> {
        let mut plans = match factor {
            Factor::Sex | Factor::ImdQuintile => {
                let base = if factor == Factor::Sex {
                    &self.base_sex
                } else {
                    &self.base_imd
                };
                if !categories.contains(base) {
                    return Err(MethodError::new(format!(
                        "base {} category `{base}` is not one of the counts' categories ({})",
                        factor.key(),
                        categories.join(", ")
                    )));
                }
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, code)| CategoryPlan {
                        code: code.clone(),
                        label: self.label(factor, code),
                        members: (0..categories.len()).map(|k| k == i).collect(),
                        is_base: code == base,
                        fallback_for: None,
                    })
                    .collect::<Vec<_>>()
            }
            Factor::AgeGroup => self.age_plans(categories)?,
        };
        // Base first, the rest in their order (a stable sort keeps it).
        plans.sort_by_key(|p| (p.fallback_for.is_some(), !p.is_base));
        Ok(plans)
    }

    fn age_plans(&self, bands: &[String]) -> Result<Vec<CategoryPlan>, MethodError> {
        let ranges = bands
            .iter()
            .map(|band| {
                AgeRange::parse(band).ok_or_else(|| {
                    MethodError::new(format!(
                        "age band `{band}` cannot be read as an age range like `45-49` or `90+`"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (band, range) in bands.iter().zip(&ranges) {
            let holders = self.age_groups.iter().filter(|g| g.contains(range)).count();
            if holders != 1 {
                return Err(MethodError::new(format!(
                    "age band `{band}` does not fall within exactly one age group ({})",
                    self.group_codes().join(", ")
                )));
            }
        }
        let mut plans: Vec<CategoryPlan> = self
            .age_groups
            .iter()
            .map(|group| {
                let code = group.code();
                CategoryPlan {
                    label: self.label(Factor::AgeGroup, &code),
                    members: ranges.iter().map(|r| group.contains(r)).collect(),
                    is_base: code == self.base_age,
                    code,
                    fallback_for: None,
                }
            })
            .collect();
        for fallback in &self.fallbacks {
            if let Some((band, _)) = bands
                .iter()
                .zip(&ranges)
                .find(|(_, r)| fallback.range.overlaps(r) && !fallback.range.contains(r))
            {
                return Err(MethodError::new(format!(
                    "age band `{band}` straddles the fallback group `{}`",
                    fallback.range.code()
                )));
            }
            plans.push(CategoryPlan {
                code: fallback.range.code(),
                label: self.label(Factor::AgeGroup, &fallback.range.code()),
                members: ranges.iter().map(|r| fallback.range.contains(r)).collect(),
                is_base: false,
                fallback_for: Some(self.label(Factor::AgeGroup, &fallback.stands_in_for)),
            });
        }
        Ok(plans)
    }

    fn group_codes(&self) -> Vec<String> {
        self.age_groups.iter().map(AgeRange::code).collect()
    }
}

/// Refuses counts whose vectors do not match their declared shape or hold impossible values.
fn check_counts(counts: &StratifiedCounts) -> Result<(), MethodError> {
    let cells = counts.cells();
    let areas = counts.areas.len();
    if counts.tests.len() != counts.measures.len() * areas * cells
        || counts.population.len() != areas * cells
    {
        return Err(MethodError::new(format!(
            "counts are mis-shaped: {} test and {} population values for {} measures × {} areas × {} cells",
            counts.tests.len(),
            counts.population.len(),
            counts.measures.len(),
            areas,
            cells
        )));
    }
    let bad = |v: &f64| !v.is_finite() || *v < 0.0;
    if counts.tests.iter().any(bad) || counts.population.iter().any(bad) {
        return Err(MethodError::new(
            "counts hold a negative or non-finite number of tests or people",
        ));
    }
    Ok(())
}

impl FactorMethod for StandardisedByOthers {
    fn method_name(&self) -> String {
        let mut name = format!(
            "indirect by the other factors; age groups {}",
            self.group_codes().join(", ")
        );
        for fallback in &self.fallbacks {
            name.push_str(&format!(
                "; {} for {}",
                fallback.range.code(),
                fallback.stands_in_for
            ));
        }
        name
    }

    fn factor_rates(&self, counts: &StratifiedCounts) -> Result<FactorRates, MethodError> {
        check_counts(counts)?;
        let cells = counts.cells();
        let n_areas = counts.areas.len();

        // Everything is national: pool population and tests over areas once.
        let mut population = vec![0.0; cells];
        for area in 0..n_areas {
            for (total, &people) in population.iter_mut().zip(counts.population_of(area)) {
                *total += people;
            }
        }
        let total_population: f64 = population.iter().sum();
        if total_population <= 0.0 {
            return Err(MethodError::new(
                "the total population is 0: no factor rate can be standardised",
            ));
        }
        let tests: Vec<Vec<f64>> = (0..counts.measures.len())
            .map(|measure| {
                let mut by_cell = vec![0.0; cells];
                for area in 0..n_areas {
                    for (total, &t) in by_cell.iter_mut().zip(counts.tests_of(measure, area)) {
                        *total += t;
                    }
                }
                by_cell
            })
            .collect();

        let mut rows = Vec::new();
        for &factor in &self.factors {
            let dimension = counts.dimension_index(factor.dimension()).ok_or_else(|| {
                MethodError::new(format!(
                    "factor `{}` needs dimension `{}`, which the counts do not have",
                    factor.key(),
                    factor.dimension()
                ))
            })?;
            let plans = self.plan(factor, &counts.dimensions[dimension].categories)?;

            // Per cell: its category in the factor's dimension, and its cell of the other
            // dimensions (the cell number with the factor's dimension removed, row-major).
            let mut factor_category = Vec::with_capacity(cells);
            let mut other_cell = Vec::with_capacity(cells);
            for cell in 0..cells {
                let coords = counts.cell_coords(cell);
                factor_category.push(coords[dimension]);
                other_cell.push(
                    coords
                        .iter()
                        .zip(&counts.dimensions)
                        .enumerate()
                        .filter(|(d, _)| *d != dimension)
                        .fold(0, |acc, (_, (&c, dim))| acc * dim.categories.len() + c),
                );
            }
            let n_other = cells / counts.dimensions[dimension].categories.len().max(1);
            let mut other_population = vec![0.0; n_other];
            for cell in 0..cells {
                other_population[other_cell[cell]] += population[cell];
            }

            for (measure, measure_tests) in tests.iter().enumerate() {
                let mut other_tests = vec![0.0; n_other];
                for cell in 0..cells {
                    other_tests[other_cell[cell]] += measure_tests[cell];
                }
                let other_rate: Vec<f64> = other_tests
                    .iter()
                    .zip(&other_population)
                    .map(|(&t, &n)| if n > 0.0 { t / n } else { 0.0 })
                    .collect();
                let national_rate = measure_tests.iter().sum::<f64>() / total_population;

                for plan in &plans {
                    let (mut observed, mut expected, mut people) = (0.0, 0.0, 0.0);
                    for cell in 0..cells {
                        if plan.members[factor_category[cell]] {
                            observed += measure_tests[cell];
                            people += population[cell];
                            expected += other_rate[other_cell[cell]] * population[cell];
                        }
                    }
                    let standardised_rate = if expected > 0.0 {
                        observed / expected * national_rate * counts.rate_per
                    } else {
                        f64::NAN
                    };
                    rows.push(FactorRate {
                        factor: factor.key().to_string(),
                        code: plan.code.clone(),
                        category: plan.label.clone(),
                        measure,
                        is_base: plan.is_base,
                        fallback_for: plan.fallback_for.clone(),
                        observed,
                        expected,
                        population: people,
                        standardised_rate,
                    });
                }
            }
        }
        Ok(FactorRates {
            method: self.method_name(),
            rate_per: counts.rate_per,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, Dimension};

    const AGE_BANDS: [&str; 6] = ["0-44", "45-54", "55-64", "65-74", "75-84", "85+"];
    /// Test rate per person by age band, IMD quintile and sex (male, female).
    const AGE_RATE: [f64; 6] = [0.1, 0.2, 0.3, 0.45, 0.7, 1.2];
    const IMD_MULTIPLIER: [f64; 3] = [1.0, 0.9, 0.8];
    const SEX_MULTIPLIER: [f64; 2] = [0.8, 1.0];
    /// Population shares by age band and IMD quintile, and people per sex.
    const AGE_SHARE: [f64; 6] = [0.5, 0.15, 0.12, 0.1, 0.08, 0.05];
    const IMD_SHARE: [f64; 3] = [0.3, 0.3, 0.4];
    const SEX_PEOPLE: [f64; 2] = [90_000.0, 100_000.0];

    fn method(text: &str) -> Result<StandardisedByOthers, ParamError> {
        StandardisedByOthers::configured(&Params::from_toml_str(text).expect("valid toml"))
    }

    /// A multiplicative model over sex × IMD × age, split over two areas; `male_age_share` lets the
    /// men's age mix differ from the women's.
    fn multiplicative(male_age_share: [f64; 6]) -> StratifiedCounts {
        let areas = vec![
            Area {
                code: "A".into(),
                name: "Area A".into(),
            },
            Area {
                code: "B".into(),
                name: "Area B".into(),
            },
        ];
        let mut counts = StratifiedCounts::zeroed(
            areas,
            vec!["xray".into()],
            vec![
                Dimension::new("sex", &["1", "2"]),
                Dimension::new("imd_quintile", &["1", "2", "3"]),
                Dimension::new("age_band", &AGE_BANDS),
            ],
        );
        for sex in 0..2 {
            for imd in 0..3 {
                for age in 0..6 {
                    let share = if sex == 0 {
                        male_age_share[age]
                    } else {
                        AGE_SHARE[age]
                    };
                    let people = SEX_PEOPLE[sex] * IMD_SHARE[imd] * share;
                    let rate = AGE_RATE[age] * IMD_MULTIPLIER[imd] * SEX_MULTIPLIER[sex];
                    let cell = counts.cell_index(&[sex, imd, age]);
                    // Area A holds a quarter of every cell, B the rest.
                    for (area, part) in [(0, 0.25), (1, 0.75)] {
                        counts.population_of_mut(area)[cell] = people * part;
                        counts.tests_of_mut(0, area)[cell] = people * part * rate;
                    }
                }
            }
        }
        counts
    }

    fn rate(rates: &FactorRates, factor: &str, category: &str) -> f64 {
        rates
            .rows
            .iter()
            .find(|r| r.factor == factor && r.category == category)
            .unwrap_or_else(|| panic!("no row {factor} {category}"))
            .standardised_rate
    }

    #[test]
    fn identical_mix_recovers_the_true_ratios_exactly() {
        let rates = method("")
            .unwrap()
            .factor_rates(&multiplicative(AGE_SHARE))
            .unwrap();
        let ratio =
            |factor, category, base| rate(&rates, factor, category) / rate(&rates, factor, base);
        assert!((ratio("sex", "Male", "Female") - 0.8).abs() < 1e-12);
        assert!((ratio("imd_quintile", "2 More deprived", "1 Most deprived") - 0.9).abs() < 1e-12);
        assert!((ratio("imd_quintile", "3 Mid quintile", "1 Most deprived") - 0.8).abs() < 1e-12);
        assert!((ratio("age_group", "45-54", "0-44") - 2.0).abs() < 1e-12);
        assert!((ratio("age_group", "55-64", "0-44") - 3.0).abs() < 1e-12);
        assert!((ratio("age_group", "65-74", "0-44") - 4.5).abs() < 1e-12);
        // 75+ pools 75-84 and 85+: (0.7·0.08 + 1.2·0.05) / 0.13 / 0.1 = 116/13.
        assert!((ratio("age_group", "75+", "0-44") - 116.0 / 13.0).abs() < 1e-12);

        // Absolute level: O_f / E_f = 1/s with s = (P_f + 0.8 P_m) / (P_f + P_m), so the female
        // standardised rate is the national rate × 190,000 / 172,000.
        let tests: f64 = multiplicative(AGE_SHARE).tests.iter().sum();
        let national = tests / 190_000.0 * strata_api::DEFAULT_RATE_PER;
        assert!((rate(&rates, "sex", "Female") - national * 190.0 / 172.0).abs() < 1e-9);
    }

    #[test]
    fn different_mix_gives_a_close_ratio() {
        // Men younger than women: the pooled national rates R_o are then a different blend of the
        // sexes in each stratum, so the ratio moves slightly off 0.8.
        let rates = method("")
            .unwrap()
            .factor_rates(&multiplicative([0.6, 0.14, 0.1, 0.08, 0.05, 0.03]))
            .unwrap();
        let ratio = rate(&rates, "sex", "Male") / rate(&rates, "sex", "Female");
        // Worked independently (Python, same model): 0.802783; the crude ratio is 0.649819.
        assert!((ratio - 0.8).abs() < 0.005, "{ratio}");
        assert!((ratio - 0.802783).abs() < 1e-6, "{ratio}");
        let crude_male_female = {
            let rows = &rates.rows;
            let crude = |c: &str| {
                let r = rows
                    .iter()
                    .find(|r| r.factor == "sex" && r.category == c)
                    .unwrap();
                r.observed / r.population
            };
            crude("Male") / crude("Female")
        };
        // The crude ratio is much further off: standardising for age did its job.
        assert!(
            (crude_male_female - 0.8).abs() > 0.05,
            "{crude_male_female}"
        );
    }

    #[test]
    fn rows_are_ordered_and_flag_the_base() {
        let rates = method("")
            .unwrap()
            .factor_rates(&multiplicative(AGE_SHARE))
            .unwrap();
        let sex: Vec<(&str, bool)> = rates
            .rows
            .iter()
            .filter(|r| r.factor == "sex")
            .map(|r| (r.category.as_str(), r.is_base))
            .collect();
        assert_eq!(sex, vec![("Female", true), ("Male", false)]);
        assert_eq!(rates.rows.len(), 2 + 3 + 5);
        let age_base: Vec<&str> = rates
            .rows
            .iter()
            .filter(|r| r.is_base)
            .map(|r| r.category.as_str())
            .collect();
        assert_eq!(age_base, vec!["Female", "1 Most deprived", "0-44"]);
        assert!(rates.rows.iter().all(|r| r.fallback_for.is_none()));
        // Every factor splits the same national total.
        for factor in ["sex", "imd_quintile", "age_group"] {
            let (o, e): (f64, f64) = rates
                .rows
                .iter()
                .filter(|r| r.factor == factor)
                .fold((0.0, 0.0), |(o, e), r| (o + r.observed, e + r.expected));
            assert!((o - e).abs() < 1e-6 * o, "{factor}");
        }
    }

    #[test]
    fn fallback_65_plus_stands_in_for_75_plus() {
        let rates = method("fallback_groups = { \"75+\" = \"65+\" }")
            .unwrap()
            .factor_rates(&multiplicative(AGE_SHARE))
            .unwrap();
        let fallback = rates
            .rows
            .iter()
            .find(|r| r.category == "65+")
            .expect("65+ row");
        assert_eq!(fallback.fallback_for.as_deref(), Some("75+"));
        assert!(!fallback.is_base);
        assert_eq!(rates.rows.last().map(|r| r.category.as_str()), Some("65+"));
        // 65+ pools 65-74, 75-84, 85+: (0.45·0.1 + 0.7·0.08 + 1.2·0.05) / 0.23 / 0.1 = 7.
        let ratio = fallback.standardised_rate / rate(&rates, "age_group", "0-44");
        assert!((ratio - 7.0).abs() < 1e-12, "{ratio}");
        // Its counts are the union of the two groups'.
        let union: f64 = rates
            .rows
            .iter()
            .filter(|r| r.category == "65-74" || r.category == "75+")
            .map(|r| r.observed)
            .sum();
        assert!((fallback.observed - union).abs() < 1e-9);
        assert!(rates.method.ends_with("; 65+ for 75+"), "{}", rates.method);
    }

    #[test]
    fn broad_groups_and_base_are_configurable() {
        let m = method(
            "age_groups = [0, 65]\nbase = { age_group = \"65+\", sex = \"1\" }\n\
             labels = { sex = {}, age_group = { \"65+\" = \"65 and over\" } }",
        )
        .unwrap();
        let rates = m.factor_rates(&multiplicative(AGE_SHARE)).unwrap();
        let age: Vec<(&str, bool)> = rates
            .rows
            .iter()
            .filter(|r| r.factor == "age_group")
            .map(|r| (r.category.as_str(), r.is_base))
            .collect();
        assert_eq!(age, vec![("65 and over", true), ("0-64", false)]);
        let sex: Vec<(&str, bool)> = rates
            .rows
            .iter()
            .filter(|r| r.factor == "sex")
            .map(|r| (r.category.as_str(), r.is_base))
            .collect();
        assert_eq!(sex, vec![("1", true), ("2", false)]);
    }

    #[test]
    fn bad_params_are_refused_with_their_key() {
        let key = |text: &str| method(text).err().and_then(|e| e.key);
        assert_eq!(key("fallback = 1").as_deref(), Some("fallback"));
        assert_eq!(
            key("base = { age = \"0-44\" }").as_deref(),
            Some("base.age")
        );
        assert_eq!(
            key("factors = [\"ethnicity\"]").as_deref(),
            Some("factors[0]")
        );
        assert_eq!(
            key("factors = [\"sex\", \"sex\"]").as_deref(),
            Some("factors[1]")
        );
        assert_eq!(
            key("age_groups = [0, 65, 45]").as_deref(),
            Some("age_groups[2]")
        );
        assert_eq!(
            key("base = { age_group = \"0-45\" }").as_deref(),
            Some("base.age_group")
        );
        assert_eq!(
            key("fallback_groups = { \"80+\" = \"65+\" }").as_deref(),
            Some("fallback_groups.80+")
        );
        assert_eq!(
            key("fallback_groups = { \"75+\" = \"65-89\" }").as_deref(),
            Some("fallback_groups.75+")
        );
        assert_eq!(key("labels = { age = {} }").as_deref(), Some("labels.age"));
    }

    #[test]
    fn run_time_problems_are_method_errors() {
        let counts = multiplicative(AGE_SHARE);
        // A group boundary inside a band.
        let err = method("age_groups = [0, 50]\nbase = { age_group = \"0-49\" }")
            .unwrap()
            .factor_rates(&counts)
            .unwrap_err();
        assert!(err.message.contains("`45-54`"), "{}", err.message);
        // A base category the counts lack.
        let err = method("base = { imd_quintile = \"5\" }")
            .unwrap()
            .factor_rates(&counts)
            .unwrap_err();
        assert!(err.message.contains("`5`"), "{}", err.message);
        // A missing dimension.
        let mut no_sex = counts.clone();
        no_sex.dimensions[0].name = "gender".into();
        let err = method("").unwrap().factor_rates(&no_sex).unwrap_err();
        assert!(err.message.contains("`sex`"), "{}", err.message);
    }

    #[test]
    fn empty_category_has_no_rate() {
        // Nobody in IMD quintile 3: its expected count is 0 and its rate undefined.
        let mut counts = multiplicative(AGE_SHARE);
        for cell in 0..counts.cells() {
            if counts.cell_coords(cell)[1] == 2 {
                for area in 0..2 {
                    counts.population_of_mut(area)[cell] = 0.0;
                    counts.tests_of_mut(0, area)[cell] = 0.0;
                }
            }
        }
        let rates = method("").unwrap().factor_rates(&counts).unwrap();
        assert!(rate(&rates, "imd_quintile", "3 Mid quintile").is_nan());
        let ratio = rate(&rates, "imd_quintile", "2 More deprived")
            / rate(&rates, "imd_quintile", "1 Most deprived");
        assert!((ratio - 0.9).abs() < 1e-12);
    }

    #[test]
    fn age_ranges_parse() {
        assert_eq!(
            AgeRange::parse("90+"),
            Some(AgeRange {
                lower: 90,
                upper: None
            })
        );
        assert_eq!(
            AgeRange::parse("0 - 4"),
            Some(AgeRange {
                lower: 0,
                upper: Some(4)
            })
        );
        assert_eq!(AgeRange::parse("9-5"), None);
        assert_eq!(AgeRange::parse("old"), None);
    }
}
