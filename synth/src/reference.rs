//! Reference tables of one year, loaded from `data/reference/<year>/` and `data/reference/common/`.

use crate::csvio::Table;
use crate::error::SynthError;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The 19 age bands of the house convention.
pub const AGE_BANDS: [&str; 19] = [
    "0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
    "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
];
/// Strata = sex (2) × age band (19) × IMD quintile (5).
pub const STRATA: usize = 2 * 19 * 5;

/// Index of the stratum (sex 0 = male "1", 1 = female "2"; age band 0..19; quintile 0..5 = "1".."5").
pub fn stratum(sex: usize, age: usize, quintile: usize) -> usize {
    sex * 95 + age * 5 + quintile
}

/// Inverse of [`stratum`].
pub fn stratum_parts(j: usize) -> (usize, usize, usize) {
    (j / 95, (j % 95) / 5, j % 5)
}

/// Broad age group of section 3 (0 = 0-44, 1 = 45-54, 2 = 55-64, 3 = 65-74, 4 = 75+) of an age band.
pub fn broad_age_group(age_band: usize) -> usize {
    match age_band {
        0..=8 => 0,
        9..=10 => 1,
        11..=12 => 2,
        13..=14 => 3,
        _ => 4,
    }
}

/// Weighted choice by cumulative weights (binary search).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cumulative {
    totals: Vec<f64>,
}

impl Cumulative {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Cumulative {
        let mut running = 0.0;
        let totals = weights
            .into_iter()
            .map(|w| {
                running += w.max(0.0);
                running
            })
            .collect();
        Cumulative { totals }
    }

    pub fn total(&self) -> f64 {
        self.totals.last().copied().unwrap_or(0.0)
    }

    /// Each weight over the total (all zero when the total is).
    pub fn shares(&self) -> Vec<f64> {
        let total = self.total();
        let mut previous = 0.0;
        self.totals
            .iter()
            .map(|&t| {
                let w = t - previous;
                previous = t;
                if total > 0.0 { w / total } else { 0.0 }
            })
            .collect()
    }

    /// Index for a uniform draw `u` in [0, 1); `None` when all weights are zero.
    pub fn pick(&self, u: f64) -> Option<usize> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let target = u * total;
        let index = self.totals.partition_point(|&t| t <= target);
        Some(index.min(self.totals.len() - 1))
    }
}

#[derive(Debug, Clone)]
pub struct Area {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub independent: bool,
}

/// LSOAs of one area and IMD quintile, with a cumulative weight per age band.
#[derive(Debug, Clone, Default)]
pub(crate) struct LsoaPool {
    pub codes: Vec<String>,
    pub by_age: Vec<Cumulative>,
}

/// LSOA codes of one area and quintile with their population by age band, before accumulation.
type RawPool = (Vec<String>, Vec<[f64; 19]>);

/// Everything the generator needs from the reference files.
#[derive(Debug, Clone)]
pub struct Reference {
    pub areas: Vec<Area>,
    pub area_index: HashMap<String, usize>,
    /// Registered population per area and stratum.
    pub population: Vec<[f64; STRATA]>,
    pub providers: Vec<Provider>,
    pub provider_index: HashMap<String, usize>,
    /// Per area: (provider index, catchment weight).
    pub catchment: Vec<Vec<(usize, f64)>>,
    pub edoc_exam_codes: BTreeMap<String, Vec<String>>,
    pub non_english_practices: Vec<String>,
    pub(crate) lsoas: Vec<[LsoaPool; 5]>,
    pub(crate) practices: Vec<(Vec<String>, Cumulative)>,
}

impl Reference {
    /// Load a year folder and the common folder. `registered_scaling` rescales each area's resident
    /// population to the sum of its practices' list sizes.
    pub fn load(
        year_dir: &Path,
        common_dir: &Path,
        registered_scaling: bool,
    ) -> Result<Reference, SynthError> {
        // Areas.
        let table = Table::read(&year_dir.join("areas.csv"))?;
        let (code_col, name_col) = (table.column("area_code")?, table.column("area_name")?);
        let mut areas = Vec::new();
        let mut area_index = HashMap::new();
        for (_, row) in table.rows() {
            let code = table.text(row, code_col).to_string();
            area_index.insert(code.clone(), areas.len());
            areas.push(Area {
                code,
                name: table.text(row, name_col).to_string(),
            });
        }
        let area_of = |table: &Table, line: u64, col: usize, row: &csv::StringRecord| {
            let code = table.text(row, col);
            area_index
                .get(code)
                .copied()
                .ok_or_else(|| table.field_error(line, col, format!("unknown area `{code}`")))
        };

        // Resident population by area × age band × quintile, sex split by the national registered share.
        let table = Table::read(&common_dir.join("registered_sex_ratio_by_age.csv"))?;
        let (band_col, share_col) = (table.column("age_band")?, table.column("male_share")?);
        let mut male_share = [0.5; 19];
        for (line, row) in table.rows() {
            let band = age_band_index(&table, line, band_col, row)?;
            male_share[band] = table.parse(line, row, share_col)?;
        }
        let table = Table::read(&year_dir.join("population_area_age_imd.csv"))?;
        let cols = (
            table.column("area_code")?,
            table.column("age_band")?,
            table.column("imd_quintile")?,
            table.column("population")?,
        );
        let mut resident = vec![[[0.0f64; 5]; 19]; areas.len()];
        for (line, row) in table.rows() {
            let area = area_of(&table, line, cols.0, row)?;
            let band = age_band_index(&table, line, cols.1, row)?;
            let quintile = quintile_index(&table, line, cols.2, row)?;
            resident[area][band][quintile] += table.parse::<f64>(line, row, cols.3)?;
        }

        // Practices and list sizes.
        let table = Table::read(&year_dir.join("practice_area.csv"))?;
        let (prac_col, parea_col) = (table.column("practice_code")?, table.column("area_code")?);
        let size_col = table
            .headers()
            .iter()
            .position(|h| h.starts_with("list_size"))
            .ok_or_else(|| SynthError::MissingColumn {
                path: table.path.clone(),
                column: "list_size".into(),
            })?;
        let mut practice_lists: Vec<Vec<(String, Option<f64>)>> = vec![Vec::new(); areas.len()];
        for (line, row) in table.rows() {
            let area = area_of(&table, line, parea_col, row)?;
            let size = match table.text(row, size_col).trim() {
                "" => None,
                _ => Some(table.parse::<f64>(line, row, size_col)?),
            };
            practice_lists[area].push((table.text(row, prac_col).to_string(), size));
        }
        let mut practices = Vec::with_capacity(areas.len());
        let mut registered = vec![0.0; areas.len()];
        for (area, list) in practice_lists.into_iter().enumerate() {
            // Practices without a list size get the area's median (they are newer practices).
            let mut known: Vec<f64> = list.iter().filter_map(|(_, s)| *s).collect();
            known.sort_by(f64::total_cmp);
            let median = known.get(known.len() / 2).copied().unwrap_or(1.0);
            let sizes: Vec<f64> = list.iter().map(|(_, s)| s.unwrap_or(median)).collect();
            registered[area] = sizes.iter().sum();
            practices.push((
                list.into_iter().map(|(c, _)| c).collect(),
                Cumulative::new(sizes),
            ));
        }

        let mut population = vec![[0.0; STRATA]; areas.len()];
        for area in 0..areas.len() {
            let resident_total: f64 = resident[area].iter().flatten().sum();
            let scale = if registered_scaling && resident_total > 0.0 && registered[area] > 0.0 {
                registered[area] / resident_total
            } else {
                1.0
            };
            for band in 0..19 {
                for quintile in 0..5 {
                    let persons = resident[area][band][quintile] * scale;
                    let male = (persons * male_share[band]).round();
                    population[area][stratum(0, band, quintile)] = male;
                    population[area][stratum(1, band, quintile)] = persons.round() - male;
                }
            }
        }

        // LSOAs: area, IMD quintile and population by age band.
        let table = Table::read(&common_dir.join("lsoa11_imd2015.csv.gz"))?;
        let (lcode, lq) = (table.column("lsoa11_code")?, table.column("imd_quintile")?);
        let mut quintile_of = HashMap::new();
        for (line, row) in table.rows() {
            quintile_of.insert(
                table.text(row, lcode).to_string(),
                quintile_index(&table, line, lq, row)?,
            );
        }
        let table = Table::read(&common_dir.join("lsoa11_population_mid2020.csv.gz"))?;
        let lcode = table.column("lsoa11_code")?;
        let band_cols: Vec<usize> = AGE_BANDS
            .iter()
            .map(|b| table.column(b))
            .collect::<Result<_, _>>()?;
        let mut lsoa_population = HashMap::new();
        for (line, row) in table.rows() {
            let mut by_band = [0.0f64; 19];
            for (band, &col) in band_cols.iter().enumerate() {
                by_band[band] = table.parse(line, row, col)?;
            }
            lsoa_population.insert(table.text(row, lcode).to_string(), by_band);
        }
        let table = Table::read(&year_dir.join("lsoa11_area.csv.gz"))?;
        let (lcode, larea) = (table.column("lsoa11_code")?, table.column("area_code")?);
        let mut pools: Vec<[RawPool; 5]> = (0..areas.len()).map(|_| Default::default()).collect();
        for (line, row) in table.rows() {
            let area = area_of(&table, line, larea, row)?;
            let code = table.text(row, lcode);
            let quintile = *quintile_of.get(code).ok_or_else(|| {
                table.field_error(
                    line,
                    lcode,
                    format!("LSOA `{code}` has no IMD 2015 quintile"),
                )
            })?;
            let by_band = lsoa_population.get(code).copied().unwrap_or([1.0; 19]);
            pools[area][quintile].0.push(code.to_string());
            pools[area][quintile].1.push(by_band);
        }
        let lsoas = pools
            .into_iter()
            .map(|area_pools| {
                area_pools.map(|(codes, weights)| LsoaPool {
                    by_age: (0..19)
                        .map(|b| Cumulative::new(weights.iter().map(|w| w[b])))
                        .collect(),
                    codes,
                })
            })
            .collect();

        // Providers and catchments.
        let table = Table::read(&year_dir.join("providers.csv"))?;
        let cols = (
            table.column("provider_code")?,
            table.column("provider_name")?,
            table.column("provider_type")?,
        );
        let mut providers = Vec::new();
        let mut provider_index = HashMap::new();
        for (_, row) in table.rows() {
            let code = table.text(row, cols.0).to_string();
            provider_index.insert(code.clone(), providers.len());
            providers.push(Provider {
                code,
                name: table.text(row, cols.1).to_string(),
                independent: table.text(row, cols.2) == "independent_sector",
            });
        }
        let table = Table::read(&year_dir.join("trust_catchment.csv"))?;
        let cols = (
            table.column("provider_code")?,
            table.column("area_code")?,
            table.column("proportion")?,
        );
        let mut catchment = vec![Vec::new(); areas.len()];
        for (line, row) in table.rows() {
            let code = table.text(row, cols.0);
            let provider = *provider_index.get(code).ok_or_else(|| {
                table.field_error(
                    line,
                    cols.0,
                    format!("provider `{code}` not in providers.csv"),
                )
            })?;
            let area = area_of(&table, line, cols.1, row)?;
            catchment[area].push((provider, table.parse(line, row, cols.2)?));
        }

        // EDOC exam codes and non-English practices.
        let table = Table::read(&year_dir.join("edoc_exam_codes.csv"))?;
        let (ecode, emeasure) = (table.column("exam_code")?, table.column("measure")?);
        let mut edoc_exam_codes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, row) in table.rows() {
            edoc_exam_codes
                .entry(table.text(row, emeasure).to_string())
                .or_default()
                .push(table.text(row, ecode).to_string());
        }
        let table = Table::read(&year_dir.join("non_english_practices.csv"))?;
        let ncode = table.column("practice_code")?;
        let non_english_practices = table
            .rows()
            .map(|(_, r)| table.text(r, ncode).to_string())
            .collect();

        Ok(Reference {
            areas,
            area_index,
            population,
            providers,
            provider_index,
            catchment,
            edoc_exam_codes,
            non_english_practices,
            lsoas,
            practices,
        })
    }

    /// National population per stratum.
    pub fn national_population(&self) -> [f64; STRATA] {
        let mut total = [0.0; STRATA];
        for area in &self.population {
            for (t, p) in total.iter_mut().zip(area) {
                *t += p;
            }
        }
        total
    }
}

fn age_band_index(
    table: &Table,
    line: u64,
    col: usize,
    row: &csv::StringRecord,
) -> Result<usize, SynthError> {
    let text = table.text(row, col);
    AGE_BANDS
        .iter()
        .position(|b| *b == text)
        .ok_or_else(|| table.field_error(line, col, format!("unknown age band `{text}`")))
}

fn quintile_index(
    table: &Table,
    line: u64,
    col: usize,
    row: &csv::StringRecord,
) -> Result<usize, SynthError> {
    let quintile: usize = table.parse(line, row, col)?;
    if (1..=5).contains(&quintile) {
        Ok(quintile - 1)
    } else {
        Err(table.field_error(line, col, format!("IMD quintile {quintile} not in 1..5")))
    }
}
