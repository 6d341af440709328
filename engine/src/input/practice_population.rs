//! NHS Digital's *Patients Registered at a GP Practice* in five-year age bands
//! (`gp-reg-pat-prac-quin-age.csv`) as a level's population: each practice's patients by sex and
//! age band, summed into the recipe's areas through its practice map, with each practice's IMD
//! quintile mix taken from the area it belongs to in an IMD-mix table (e.g. its ICB's resident
//! population by age band and quintile).
//!
//! The published file has one row per practice × sex × age group, with totals among them:
//! `PUBLICATION, EXTRACT_DATE, TYPE, SUB_ICB_LOCATION_CODE (CCG_CODE before July 2022),
//! ONS_SUB_ICB_LOCATION_CODE, ORG_CODE, POSTCODE, SEX (MALE, FEMALE, ALL), AGE_GROUP_5 (0_4, 5_9,
//! …, 90_94, 95+, ALL), NUMBER_OF_PATIENTS`. Only `ORG_CODE, SEX, AGE_GROUP_5, NUMBER_OF_PATIENTS`
//! are read (any order, any letter case); `TYPE` (or `ORG_TYPE`), when present, must say `GP`: a
//! file of sub-ICB or regional rows would count every patient twice. Rows of `SEX = ALL` or
//! `AGE_GROUP_5 = ALL` are totals: they are not added, but each practice's all-ages all-sexes row
//! is checked against the sum of its rows.
//!
//! Assumption (said in the recipes and README): no open file gives a practice's patients by IMD
//! quintile, so within each age band a practice's patients are shared over the quintiles as the
//! IMD-mix area's population of that age band is (both sexes alike). Standardising by age and sex
//! only (`standardise.indirect` with `strata = ["sex", "age_band"]`) sums the quintiles back and
//! so does not depend on this assumption at all.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use strata_api::{DerivationShape, StratifiedCounts};

use super::{TextTable, category_map, count_value};
use crate::error::{Error, Result};

/// What reading the file found, for the run's warnings and manifest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PracticePopulationRead {
    /// Data rows of the file (totals among them).
    pub rows: usize,
    /// Practices whose patients went into one of the recipe's areas.
    pub practices: usize,
    /// Patients added into the recipe's areas.
    pub patients: f64,
    /// Practices of the file that are not in the level's practice map, with their patients:
    /// not in any area of this level (e.g. closed or opened since the map), reported, not added.
    pub unmapped: BTreeMap<String, f64>,
    /// Practices of the level's map with no row in the file (their areas get nothing from them).
    pub without_rows: usize,
}

impl PracticePopulationRead {
    /// The run's warning about practices on one side only, if any.
    pub fn warning(&self, path: &Path) -> Option<String> {
        let mut parts = Vec::new();
        if !self.unmapped.is_empty() {
            let patients: f64 = self.unmapped.values().sum();
            let first: Vec<&str> = self.unmapped.keys().take(5).map(String::as_str).collect();
            parts.push(format!(
                "{} practices of the file are not in the recipe's practice map and were not \
                 added ({patients} patients; e.g. {})",
                self.unmapped.len(),
                first.join(", ")
            ));
        }
        if self.without_rows > 0 {
            parts.push(format!(
                "{} practices of the recipe's practice map have no rows in the file",
                self.without_rows
            ));
        }
        (!parts.is_empty()).then(|| format!("{}: {}", path.display(), parts.join("; ")))
    }
}

/// One practice's patients: the sum of its sex × age group rows, and its all-ages all-sexes row
/// (row, value) if it has one.
#[derive(Default)]
struct PracticeSum {
    of_rows: f64,
    all_row: Option<(usize, f64)>,
}

/// The practice population's files: the published file, the IMD-mix table
/// (`area_code, age_band, imd_quintile, population`) and each practice's IMD-mix area
/// (`practice_code, area_code`).
#[derive(Debug, Clone, Copy)]
pub struct PracticePopulationFiles<'a> {
    pub file: &'a Path,
    pub imd_mix: &'a Path,
    pub imd_mix_areas: &'a Path,
}

/// The column of `t` named `name` in any letter case (the first of `names` found).
fn column_named<'t>(t: &'t TextTable, names: &[&str]) -> Option<&'t str> {
    names.iter().find_map(|want| t.header_named(want))
}

fn required<'t>(t: &'t TextTable, name: &str) -> Result<Vec<&'t str>> {
    let Some(column) = column_named(t, &[name]) else {
        return Err(Error::data_hint(
            &t.path,
            None,
            Some(name),
            format!("required column missing (found: {})", t.names().join(", ")),
            "the file must be NHS Digital's gp-reg-pat-prac-quin-age.csv layout (ORG_CODE, SEX, \
             AGE_GROUP_5, NUMBER_OF_PATIENTS)",
        ));
    };
    t.required_column(column)
}

/// The published groups `0_4`, `5_9`, …, `90_94` → their first age, `95+` → 95; `None` for
/// anything else (e.g. `95_99` or `0-4`, which the file never holds).
fn age_group_start(text: &str) -> Option<u32> {
    if text == "95+" {
        return Some(95);
    }
    let (low, high) = text.split_once('_')?;
    let (low, high): (u32, u32) = (low.parse().ok()?, high.parse().ok()?);
    (low % 5 == 0 && low <= 90 && high == low + 4).then_some(low)
}

/// The derivation's band holding the age `start` (bands `a-b` and a top band `a+`).
fn band_of(shape: &DerivationShape, start: u32) -> Option<usize> {
    shape.age_band.categories.iter().position(|band| {
        if let Some(low) = band.strip_suffix('+') {
            low.parse::<u32>().is_ok_and(|low| start >= low)
        } else {
            band.split_once('-').is_some_and(|(low, high)| {
                matches!((low.parse::<u32>(), high.parse::<u32>()), (Ok(l), Ok(h)) if (l..=h).contains(&start))
            })
        }
    })
}

/// Each IMD-mix area's share of each age band's population by quintile: area → band → shares.
fn read_imd_mix(path: &Path, shape: &DerivationShape) -> Result<HashMap<String, Vec<Vec<f64>>>> {
    let t = TextTable::read(
        path,
        &["area_code", "age_band", "imd_quintile", "population"],
    )?;
    t.require_rows("IMD mix")?;
    let (areas, bands, quintiles, people) = (
        t.required_column("area_code")?,
        t.required_column("age_band")?,
        t.required_column("imd_quintile")?,
        t.required_column("population")?,
    );
    let band_index = category_map(&shape.age_band);
    let quintile_index = category_map(&shape.imd_quintile);
    let (n_bands, n_q) = (
        shape.age_band.categories.len(),
        shape.imd_quintile.categories.len(),
    );
    let mut mix: HashMap<String, Vec<Vec<f64>>> = HashMap::new();
    for row in 0..t.height() {
        let b = super::category(&t, row, "age_band", &band_index, bands[row])?;
        let q = super::category(&t, row, "imd_quintile", &quintile_index, quintiles[row])?;
        let n: f64 = people[row]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                Error::data_hint(
                    path,
                    Some(row + 1),
                    Some("population"),
                    format!("`{}` is not a non-negative population", people[row]),
                    "a population is a number of people, 0 or more",
                )
            })?;
        mix.entry(areas[row].to_string())
            .or_insert_with(|| vec![vec![0.0; n_q]; n_bands])[b][q] += n;
    }
    for bands in mix.values_mut() {
        for shares in bands.iter_mut() {
            let total: f64 = shares.iter().sum();
            if total > 0.0 {
                shares.iter_mut().for_each(|s| *s /= total);
            }
        }
    }
    Ok(mix)
}

/// Reads the practice population into `counts.population` through `practice_areas` (the level's
/// practice → area index map).
pub fn read(
    files: PracticePopulationFiles,
    practice_areas: &HashMap<String, u32>,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<PracticePopulationRead> {
    let path = files.file;
    let mix = read_imd_mix(files.imd_mix, shape)?;
    let mix_table = TextTable::read(files.imd_mix_areas, &["practice_code", "area_code"])?;
    let mix_codes = mix_table.required_column("practice_code")?;
    let mix_areas = mix_table.required_column("area_code")?;
    super::unique_index(&mix_table, "practice_code", &mix_codes)?;
    let mix_area_of: HashMap<&str, (usize, &str)> = mix_codes
        .iter()
        .zip(&mix_areas)
        .enumerate()
        .map(|(row, (p, a))| (*p, (row, *a)))
        .collect();

    let t = TextTable::read(path, &[])?;
    t.require_rows("practice population")?;
    let type_column = column_named(&t, &["TYPE", "ORG_TYPE"]);
    let types = match type_column {
        Some(c) => Some(t.column(c)?),
        None => None,
    };
    let codes = required(&t, "ORG_CODE")?;
    let sexes = required(&t, "SEX")?;
    let ages = required(&t, "AGE_GROUP_5")?;
    let patients = required(&t, "NUMBER_OF_PATIENTS")?;
    let (code_column, sex_column, age_column, count_column) = (
        column_named(&t, &["ORG_CODE"]).unwrap_or("ORG_CODE"),
        column_named(&t, &["SEX"]).unwrap_or("SEX"),
        column_named(&t, &["AGE_GROUP_5"]).unwrap_or("AGE_GROUP_5"),
        column_named(&t, &["NUMBER_OF_PATIENTS"]).unwrap_or("NUMBER_OF_PATIENTS"),
    );
    // SPEC §3's sex codes (NHS Data Dictionary: 1 male, 2 female).
    let sex_index = category_map(&shape.sex);
    let sex_of = |text: &str| {
        if text.eq_ignore_ascii_case("MALE") {
            sex_index.get("1").copied()
        } else if text.eq_ignore_ascii_case("FEMALE") {
            sex_index.get("2").copied()
        } else {
            None
        }
    };

    let mut read = PracticePopulationRead {
        rows: t.height(),
        ..Default::default()
    };
    let mut sums: BTreeMap<&str, PracticeSum> = BTreeMap::new();
    let mut seen: HashMap<(&str, Option<usize>, Option<u32>), usize> = HashMap::new();
    let mut practices_added = std::collections::HashSet::new();
    for row in 0..t.height() {
        if let (Some(column), Some(types)) = (type_column, &types) {
            let kind = types[row].unwrap_or("");
            if !kind.eq_ignore_ascii_case("GP") {
                return Err(Error::data_hint(
                    path,
                    Some(row + 1),
                    Some(column),
                    format!("`{kind}` is not a GP practice row (TYPE must be GP)"),
                    "use the practice-level file gp-reg-pat-prac-quin-age.csv: rows of sub-ICBs, \
                     ICBs or regions would count their patients again",
                ));
            }
        }
        let code = codes[row];
        let (sex_text, age_text) = (sexes[row], ages[row]);
        // SEX: its category, or `None` for ALL (a total); AGE_GROUP_5: its first age and band,
        // or `None` for ALL.
        let sex = if sex_text.eq_ignore_ascii_case("ALL") {
            None
        } else {
            Some(sex_of(sex_text).ok_or_else(|| {
                Error::data_hint(
                    path,
                    Some(row + 1),
                    Some(sex_column),
                    format!("unknown SEX `{sex_text}` (expected MALE, FEMALE or ALL)"),
                    "the published file's SEX is MALE, FEMALE or ALL",
                )
            })?)
        };
        let group = if age_text.eq_ignore_ascii_case("ALL") {
            None
        } else {
            Some(
                age_group_start(age_text)
                    .and_then(|start| Some((start, band_of(shape, start)?)))
                    .ok_or_else(|| {
                        Error::data_hint(
                            path,
                            Some(row + 1),
                            Some(age_column),
                            format!(
                                "unknown AGE_GROUP_5 `{age_text}` (expected 0_4, 5_9, …, 90_94, \
                                 95+ or ALL, within the derivation's age bands)"
                            ),
                            "the published file's five-year groups are written 0_4 … 90_94, 95+",
                        )
                    })?,
            )
        };
        if let Some(first) = seen.insert((code, sex, group.map(|g| g.0)), row) {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some(code_column),
                format!(
                    "duplicate key `{code}` × `{sex_text}` × `{age_text}` (first on row {})",
                    first + 1
                ),
                "each practice × sex × age group appears once; remove the repeated row",
            ));
        }
        let n = count_value(&t, row, count_column, patients[row])?;
        let band = group.map(|g| g.1);
        let sum = sums.entry(code).or_default();
        let (sex, band) = match (sex, band) {
            (Some(sex), Some(band)) => (sex, band),
            (None, None) => {
                sum.all_row = Some((row, n));
                continue;
            }
            // A total of one sex over ages, or of one age group over sexes: not added.
            _ => continue,
        };
        sum.of_rows += n;
        let Some(&area) = practice_areas.get(code) else {
            *read.unmapped.entry(code.to_string()).or_default() += n;
            continue;
        };
        let Some(&(_, mix_area)) = mix_area_of.get(code) else {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some(code_column),
                format!(
                    "practice `{code}` has no IMD-mix area in {}",
                    files.imd_mix_areas.display()
                ),
                "every practice of the level's map needs its area in the IMD-mix map",
            ));
        };
        let shares = mix
            .get(mix_area)
            .map(|bands| &bands[band])
            .filter(|s| s.iter().sum::<f64>() > 0.0);
        let Some(shares) = shares else {
            return Err(Error::data_hint(
                files.imd_mix,
                None,
                Some("area_code"),
                format!(
                    "area `{mix_area}` (practice `{code}`'s IMD-mix area) has no population in \
                     age band `{}`",
                    shape.age_band.categories[band]
                ),
                "the IMD-mix table needs every area of the IMD-mix map, every age band",
            ));
        };
        // The cube's cells (its dimensions carry an `unknown` category each, so its own index).
        let cells: Vec<usize> = (0..shares.len())
            .map(|q| counts.cell_index(&[q, sex, band]))
            .collect();
        let population = counts.population_of_mut(area as usize);
        for (cell, share) in cells.into_iter().zip(shares) {
            population[cell] += n * share;
        }
        read.patients += n;
        practices_added.insert(code);
    }
    for (
        code,
        PracticeSum {
            of_rows: sum,
            all_row,
        },
    ) in &sums
    {
        if let Some((row, total)) = all_row
            && (sum - total).abs() > 0.5
        {
            return Err(Error::data_hint(
                path,
                Some(row + 1),
                Some(count_column),
                format!(
                    "practice `{code}`'s ALL × ALL row says {total} patients but its sex × age \
                     group rows sum to {sum}"
                ),
                "the file is cut short or edited; download it again",
            ));
        }
    }
    read.practices = practices_added.len();
    read.without_rows = practice_areas
        .keys()
        .filter(|p| !sums.contains_key(p.as_str()))
        .count();
    Ok(read)
}
