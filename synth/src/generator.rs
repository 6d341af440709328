//! The generator: calibration at construction, streaming record generation in `generate`.

use crate::calibrate::{FittedMeasure, MeasureTargets, area_targets, fit_stratum_effects};
use crate::config::{CountSampling, EDOC_PARENT, MEASURES, MODALITIES, Published, YearConfig};
use crate::error::SynthError;
use crate::reference::{AGE_BANDS, Cumulative, Reference, STRATA, stratum_parts};
use chrono::Datelike;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One row of the population table (SPEC §3 aggregated entry).
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationRow {
    pub area_code: String,
    /// `"1"` male, `"2"` female.
    pub sex: String,
    pub age_band: String,
    /// 1 = most deprived.
    pub imd_quintile: u8,
    pub population: f64,
}

/// A batch of records, one vector per SPEC §3 column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordBatch {
    pub provider_code: Vec<String>,
    pub site_code: Vec<Option<String>>,
    pub test_date: Vec<String>,
    pub gp_practice_code: Vec<Option<String>>,
    pub lsoa11: Vec<Option<String>>,
    /// `"1"`, `"2"`, or a not-known value (`"0"`, `"9"`, `"X"`, `""`).
    pub sex: Vec<String>,
    pub age: Vec<Option<u32>>,
    pub modality: Vec<String>,
    pub exam_code: Vec<Option<String>>,
    pub patient_source: Vec<Option<String>>,
}

impl RecordBatch {
    fn with_capacity(rows: usize) -> RecordBatch {
        RecordBatch {
            provider_code: Vec::with_capacity(rows),
            site_code: Vec::with_capacity(rows),
            test_date: Vec::with_capacity(rows),
            gp_practice_code: Vec::with_capacity(rows),
            lsoa11: Vec::with_capacity(rows),
            sex: Vec::with_capacity(rows),
            age: Vec::with_capacity(rows),
            modality: Vec::with_capacity(rows),
            exam_code: Vec::with_capacity(rows),
            patient_source: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.provider_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.provider_code.is_empty()
    }
}

/// Data-quality fault probabilities of one provider (independent events per record).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProviderFaults {
    /// Practice replaced by a non-English one (not attributed).
    pub non_english: f64,
    /// Neither practice nor LSOA (unattributed).
    pub unknown: f64,
    /// No practice; LSOA kept (attributed by LSOA).
    pub no_practice: f64,
    pub missing_lsoa: f64,
    pub missing_sex: f64,
    pub missing_age: f64,
}

impl ProviderFaults {
    /// Chance a record is excluded from the rates.
    pub fn loss(&self) -> f64 {
        self.loss_in((0.0, 0.0))
    }

    /// Chance a record is excluded from the rates in an area with these Table A.3 top-ups
    /// (missing LSOA, missing sex).
    fn loss_in(&self, area: (f64, f64)) -> f64 {
        self.reason_shares(area).iter().sum()
    }

    /// Chance of each first reason a record is left out, as `dq_exclusions` counts them:
    /// non-English practice, unattributed, then among attributed records no LSOA (IMD), a
    /// further no sex, a further no age. A missing LSOA falls only on records with a practice
    /// code (one without either is unattributed, which `unknown` counts).
    fn reason_shares(&self, area: (f64, f64)) -> [f64; 5] {
        let attributed = (1.0 - self.non_english) * (1.0 - self.unknown);
        let lsoa = (1.0 - self.no_practice) * (1.0 - (1.0 - self.missing_lsoa) * (1.0 - area.0));
        let sex = 1.0 - (1.0 - self.missing_sex) * (1.0 - area.1);
        [
            self.non_english,
            (1.0 - self.non_english) * self.unknown,
            attributed * lsoa,
            attributed * (1.0 - lsoa) * sex,
            attributed * (1.0 - lsoa) * (1.0 - sex) * self.missing_age,
        ]
    }

    /// Share of attributed records missing LSOA, sex or age (Tables A.2 and A.3).
    fn incomplete_share(&self, area: (f64, f64)) -> f64 {
        let [_, _, lsoa, sex, age] = self.reason_shares(area);
        (lsoa + sex + age) / ((1.0 - self.non_english) * (1.0 - self.unknown)).max(1e-12)
    }
}

/// Calibration result of one measure.
#[derive(Debug, Clone)]
pub struct MeasureCalibration {
    pub measure: String,
    pub targets: MeasureTargets,
    pub fitted: FittedMeasure,
    /// Complete-case area effect per area (standardised rate over national rate, before renormalisation).
    pub area_effects: Vec<f64>,
}

/// Equidistributed draws in [0, 1): a Weyl sequence `x_k = frac(x_0 + k·step)`. With systematic
/// sampling every per-record choice (provider, month, each fault) walks its own stream, so shares
/// come out as configured over any run of records instead of with binomial noise. Streams consulted
/// for the same record use rationally independent steps (fractional parts of square roots of
/// distinct primes), so their draws are jointly equidistributed, i.e. the faults stay independent.
#[derive(Debug, Clone, Copy)]
struct Weyl {
    x: f64,
    step: f64,
}

impl Weyl {
    fn next(&mut self) -> f64 {
        self.x = (self.x + self.step).fract();
        self.x
    }
}

/// Steps: frac(√p) for the primes 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37.
const STEPS: [f64; 12] = [
    0.414_213_562_373_095_1,
    0.732_050_807_568_877_2,
    0.236_067_977_499_789_7,
    0.645_751_311_064_590_6,
    0.316_624_790_355_400_1,
    0.605_551_275_463_989_3,
    0.123_105_625_617_660_5,
    0.358_898_943_540_673_6,
    0.795_831_523_312_719_5,
    0.385_164_807_134_504,
    0.567_764_362_830_021_9,
    0.082_762_530_298_219_4,
];

/// A uniform draw: from the record's stream when systematic, else from the RNG.
fn uniform(rng: &mut ChaCha8Rng, stream: &mut Weyl, systematic: bool) -> f64 {
    if systematic {
        stream.next()
    } else {
        rng.random::<f64>()
    }
}

/// Deterministic synthetic DID year.
#[derive(Debug, Clone)]
pub struct Generator {
    config: YearConfig,
    reference: Reference,
    calibrations: Vec<MeasureCalibration>,
    /// Gross-up per area for records lost to exclusions and missing submissions.
    gross_up: Vec<f64>,
    provider_choice: Vec<(Vec<usize>, Cumulative)>,
    faults: Vec<ProviderFaults>,
    /// Extra chance per area of a missing LSOA and of a missing sex, on top of its providers' faults,
    /// so the areas of Table A.3 reach their printed incomplete shares.
    area_faults: Vec<(f64, f64)>,
    /// Per provider and month, the chance a record is not submitted (1 for a missing month; less
    /// where the provider's catchment share alone would lose more than Table A.4 prints).
    missing_months: Vec<[f64; 12]>,
    /// Share of records whose patient lives in another area than the practice's (Annex A).
    resident_elsewhere: f64,
    /// Per area: the areas its residents-elsewhere live in (areas sharing a trust's catchment),
    /// weighted by how much of the catchment they share.
    neighbours: Vec<(Vec<usize>, Cumulative)>,
    days: Vec<(String, usize)>,
    month_choice: Cumulative,
    month_days: Vec<Vec<usize>>,
    /// Records of a modality minus its EDOC subsets that went negative (clamped to zero), expected count.
    pub clamped_expected: f64,
}

fn measure_index(measure: &str) -> usize {
    MEASURES
        .iter()
        .position(|m| *m == measure)
        .unwrap_or(usize::MAX)
}

impl Generator {
    /// Load the year config (`configs/synth/did-<year>.toml`), whose paths are relative to `workspace_root`,
    /// and calibrate.
    pub fn from_config_file(
        workspace_root: &Path,
        config_path: &Path,
    ) -> Result<Generator, SynthError> {
        let config = YearConfig::load(config_path)?;
        Generator::from_reference(workspace_root, config)
    }

    /// Calibrate a generator from the reference data under `workspace_root` and a year config.
    pub fn from_reference(
        workspace_root: &Path,
        config: YearConfig,
    ) -> Result<Generator, SynthError> {
        let published_path = workspace_root.join(&config.published);
        let published = Published::load(&published_path)?;
        let mut reference = Reference::load(
            &workspace_root.join(&config.reference_dir),
            &workspace_root.join(&config.common_dir),
            config.registered_scaling,
        )?;
        if let Some(total) = config.registered_total {
            let current: f64 = reference.population.iter().flatten().sum();
            let factor = total / current.max(1.0);
            for cell in reference.population.iter_mut().flatten() {
                *cell = (*cell * factor).round();
            }
        }
        Generator::calibrate(config, published, &published_path, reference)
    }

    /// Calibrate from already loaded parts (used by tests with hand-made reference data).
    pub fn calibrate(
        config: YearConfig,
        published: Published,
        published_path: &Path,
        reference: Reference,
    ) -> Result<Generator, SynthError> {
        let n_areas = reference.areas.len();
        let config_error = |message: String| SynthError::Config {
            path: PathBuf::from(published_path),
            message,
        };
        let (days, month_days) = financial_year_days(&config.start_date).map_err(config_error)?;
        let month_total: f64 = config.month_weights.iter().sum();
        let month_share: Vec<f64> = config
            .month_weights
            .iter()
            .map(|w| w / month_total)
            .collect();
        let month_keys: Vec<String> = month_days
            .iter()
            .map(|d| days[d[0]].0[..7].to_string())
            .collect();

        // Provider faults from Annex A: named providers override the national background.
        let national_records = published.national_records();
        let annex = &published.annex_a;
        let mut faults = vec![ProviderFaults::default(); reference.providers.len()];
        let mut named_volume: HashMap<usize, f64> = HashMap::new();
        let (mut a1_volume, mut a1_lsoa_route, mut a1_unknown) = (0.0, 0.0, 0.0);
        for row in &annex.providers_no_practice {
            if let Some(&p) = reference.provider_index.get(&row.provider_code) {
                let volume = row.no_practice_tests / row.no_practice_share.max(1e-9);
                named_volume.insert(p, volume);
                a1_volume += volume;
                a1_lsoa_route += row.no_practice_tests - row.no_lsoa_tests;
                a1_unknown += row.no_lsoa_tests;
            }
        }
        let mut a2_volume = 0.0;
        let mut a2_missing: HashMap<&str, f64> = HashMap::new();
        for row in &annex.providers_incomplete {
            if let Some(&p) = reference.provider_index.get(&row.provider_code) {
                named_volume.insert(p, row.total_tests);
                a2_volume += row.total_tests;
                *a2_missing
                    .entry(row.most_common_missing.as_str())
                    .or_default() += row.missing_tests;
            }
        }
        let share = |count: f64, named: f64, volume: f64| {
            ((count - named).max(0.0) / (national_records - volume)).min(1.0)
        };
        let background = ProviderFaults {
            non_english: annex.route_non_english_count / national_records,
            unknown: share(annex.route_unknown_count, a1_unknown, a1_volume),
            no_practice: share(annex.route_lsoa_count, a1_lsoa_route, a1_volume),
            missing_lsoa: share(
                annex.omitted_no_lsoa_count,
                a2_missing.get("lsoa").copied().unwrap_or(0.0),
                a2_volume,
            ),
            missing_sex: share(
                annex.omitted_no_sex_count,
                a2_missing.get("sex").copied().unwrap_or(0.0),
                a2_volume,
            ),
            missing_age: share(
                annex.omitted_no_age_count,
                a2_missing.get("age").copied().unwrap_or(0.0),
                a2_volume,
            ),
        };
        faults.iter_mut().for_each(|f| *f = background);
        for row in &annex.providers_no_practice {
            if let Some(&p) = reference.provider_index.get(&row.provider_code) {
                let volume = named_volume[&p];
                // A missing LSOA falls only on records with a practice, so the records with
                // neither are the unattributed ones: P(no practice) = u + (1 − u)·no_practice.
                let unknown = (row.no_lsoa_tests / volume).min(0.999);
                faults[p].unknown = unknown;
                faults[p].no_practice =
                    ((row.no_practice_share - unknown) / (1.0 - unknown)).clamp(0.0, 1.0);
            }
        }
        for row in &annex.providers_incomplete {
            if let Some(&p) = reference.provider_index.get(&row.provider_code) {
                let rate = row
                    .missing_share
                    .unwrap_or(row.missing_tests / row.total_tests.max(1.0))
                    .min(0.999);
                match row.most_common_missing.as_str() {
                    "sex" => faults[p].missing_sex = rate,
                    "age" => faults[p].missing_age = rate,
                    // Only records with a practice can lose their LSOA; one whose attributed
                    // tests nearly all miss it (NFO: 100%) has nearly all a practice.
                    _ => {
                        let with_practice = (1.0 - faults[p].no_practice).max(rate).max(0.05);
                        faults[p].no_practice = 1.0 - with_practice;
                        faults[p].missing_lsoa = (rate / with_practice).min(1.0)
                    }
                }
            }
        }

        // Missing submission months per provider. Table A.4 prints missing over recorded tests,
        // m; the share of the area's would-be records lost is then m / (1 + m), which is also by how
        // much its rates fall short.
        let mut missing_months = vec![[false; 12]; reference.providers.len()];
        let mut missing_supply: Vec<MissingSupply> = Vec::new();
        let mut area_shortfall = vec![0.0; n_areas];
        for missing in &config.missing_submissions {
            let p = *reference
                .provider_index
                .get(&missing.provider_code)
                .ok_or_else(|| {
                    config_error(format!(
                        "missing submission: unknown provider {}",
                        missing.provider_code
                    ))
                })?;
            let a = *reference
                .area_index
                .get(&missing.area_code)
                .ok_or_else(|| {
                    config_error(format!(
                        "missing submission: unknown area {}",
                        missing.area_code
                    ))
                })?;
            let mut year_lost = 0.0;
            for month in &missing.months {
                let m = month_keys
                    .iter()
                    .position(|k| k == month)
                    .ok_or_else(|| config_error(format!("month {month} is not in the year")))?;
                missing_months[p][m] = true;
                year_lost += month_share[m];
            }
            // Annex A estimates a provider's missing tests as its typical (median) month times
            // the months missing, E; with a share w of the area's drawn records D, missing over
            // recorded is D·w·E / (D·(1 − w·Y)), Y the share of the year really lost. Setting it
            // to the printed m gives w = m / (E + m·Y); the area then really loses w·Y.
            let mut months: Vec<f64> = (0..12)
                .map(|m| {
                    if missing_months[p][m] {
                        0.0
                    } else {
                        month_share[m]
                    }
                })
                .collect();
            months.sort_by(f64::total_cmp);
            let estimated = 0.5 * (months[5] + months[6]) * missing.months.len() as f64;
            let m = missing.missing_share;
            let supply = (m / (estimated + m * year_lost).max(1e-9)).min(0.95);
            missing_supply.push(MissingSupply {
                area: a,
                provider: p,
                supply,
                months: missing_months[p],
            });
            let lost = supply * year_lost;
            area_shortfall[a] = 1.0 - (1.0 - area_shortfall[a]) * (1.0 - lost);
        }

        // Independent-sector providers by their published national volume.
        let independent: Vec<(usize, f64)> = reference
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.independent)
            .filter_map(|(i, _)| named_volume.get(&i).map(|v| (i, v / national_records)))
            .collect();
        // Table A.3 areas: the incomplete share their providers give them, topped up to the printed
        // one in the most common field. A printed share at the listing threshold (2023/24's QK1:
        // 1.0% against "more than 1%") is aimed 5% above it, so the area stays listed after
        // sampling; the others are aimed at the printed share itself, so that two close areas
        // (2020/21's 15E at 6.5% and 01T at 6.4%) keep their printed order.
        let listing_floor = annex
            .area_incomplete_threshold
            .map_or(0.0, |threshold| threshold.share * 1.05);
        let mut area_target = vec![None; n_areas];
        for row in &annex.areas_incomplete {
            if let Some(a) = reference.areas.iter().position(|x| x.code == row.area_code) {
                area_target[a] = Some((
                    row.missing_share.max(listing_floor),
                    row.most_common_missing == "sex",
                ));
            }
        }
        // Which faults of a provider Annex A names (the others take the national background).
        let named: Vec<NamedFaults> = (0..reference.providers.len())
            .map(|p| NamedFaults {
                unknown: annex
                    .providers_no_practice
                    .iter()
                    .any(|r| reference.provider_index.get(&r.provider_code) == Some(&p)),
                field: annex
                    .providers_incomplete
                    .iter()
                    .find(|r| reference.provider_index.get(&r.provider_code) == Some(&p))
                    .map(|r| r.most_common_missing.clone()),
            })
            .collect();
        // The national counts by first reason Annex A prints: non-English practice, unattributed,
        // no LSOA (IMD), a further no sex, a further no age.
        let reason_targets = [
            annex.route_non_english_count,
            annex.route_unknown_count,
            annex.omitted_no_lsoa_count,
            annex.omitted_no_sex_count,
            annex.omitted_no_age_count,
        ];
        // Tables A.3 and A.4 print some areas' recorded totals. Where the config says so
        // (`area_totals_from_annex`) the generator is told them (a round trip): each such area's
        // rates in the measures with no printed spread are the spread's mean times a level,
        // refitted until the area's recorded tests are the printed total.
        let mut area_total: Vec<Option<f64>> = vec![None; n_areas];
        let printed_totals = annex.printed_area_totals();
        for (code, total) in printed_totals.filter(|_| config.area_totals_from_annex) {
            if let (Some(&a), Some(total)) = (reference.area_index.get(code), total) {
                area_total[a] = Some(total);
            }
        }
        let mut area_level: Vec<Option<f64>> = area_total.iter().map(|t| t.map(|_| 1.0)).collect();
        let passes = if area_total.iter().any(Option::is_some) {
            6
        } else {
            1
        };
        // Trust sizes (so the named trusts' recorded volume is the printed one) and the national
        // background faults (so the counts by reason are the printed ones) depend on each other
        // through the areas' provider mix and gross-up: fitted together by fixed-point iteration.
        let mut trust_size = vec![1.0; reference.providers.len()];
        let mut layout = Layout::default();
        let mut pass = 0;
        let calibrations = loop {
            // Area effects and stratum effects per measure.
            let calibrations = calibrate_measures(
                &config,
                &published,
                published_path,
                &reference,
                &area_shortfall,
                &area_level,
            )?;
            // Expected complete-case records per area (the modalities; EDOC tests are among them),
            // and the part of them in modalities whose spread is not printed (the part an area's
            // level moves).
            let expected = |a: usize, c: &MeasureCalibration| -> f64 {
                (0..STRATA)
                    .map(|j| c.area_effects[a] * c.fitted.lambda[j] * reference.population[a][j])
                    .sum()
            };
            let modalities = &calibrations[..MODALITIES.len()];
            let levelled: Vec<bool> = modalities
                .iter()
                .map(|c| published.spread(&c.measure).is_none())
                .collect();
            let area_complete: Vec<f64> = (0..n_areas)
                .map(|a| modalities.iter().map(|c| expected(a, c)).sum())
                .collect();
            let area_levelled: Vec<f64> = (0..n_areas)
                .map(|a| {
                    modalities
                        .iter()
                        .zip(&levelled)
                        .filter(|(_, levelled)| **levelled)
                        .map(|(c, _)| expected(a, c))
                        .sum()
                })
                .collect();

            for _ in 0..40 {
                layout = Layout::build(&LayoutInputs {
                    reference: &reference,
                    faults: &faults,
                    trust_size: &trust_size,
                    independent: &independent,
                    missing_supply: &missing_supply,
                    month_share: &month_share,
                    area_target: &area_target,
                });
                let mut volume = vec![0.0; reference.providers.len()];
                let mut reasons = [0.0; 5];
                for a in 0..n_areas {
                    let drawn = area_complete[a] * layout.gross_up[a];
                    for &(p, share) in &layout.entries[a] {
                        let recorded = drawn * share * layout.submitted[p];
                        volume[p] += recorded;
                        let by_reason = faults[p].reason_shares(layout.area_faults[a]);
                        for r in 0..5 {
                            reasons[r] += recorded * by_reason[r];
                        }
                    }
                }
                for (&p, &target) in &named_volume {
                    if !reference.providers[p].independent && volume[p] > 0.0 {
                        trust_size[p] *= (target / volume[p]).clamp(0.5, 2.0);
                    }
                }
                // Named providers' own faults stay; the background is scaled on the rest, so each
                // reason's share of the recorded tests is the printed count's share of the printed total.
                let recorded: f64 = volume.iter().sum::<f64>().max(1.0);
                let factor: Vec<f64> = (0..5)
                    .map(|r| {
                        if reasons[r] > 0.0 {
                            (reason_targets[r] / national_records * recorded / reasons[r])
                                .clamp(0.5, 2.0)
                        } else {
                            1.0
                        }
                    })
                    .collect();
                for (p, f) in faults.iter_mut().enumerate() {
                    let n = &named[p];
                    f.non_english = (f.non_english * factor[0]).min(0.5);
                    if !n.unknown {
                        f.unknown = (f.unknown * factor[1]).min(0.5);
                    }
                    if n.field.as_deref() != Some("lsoa") {
                        f.missing_lsoa = (f.missing_lsoa * factor[2]).min(0.5);
                    }
                    if n.field.as_deref() != Some("sex") {
                        f.missing_sex = (f.missing_sex * factor[3]).min(0.5);
                    }
                    if n.field.as_deref() != Some("age") {
                        f.missing_age = (f.missing_age * factor[4]).min(0.5);
                    }
                }
            }
            pass += 1;
            if pass == passes {
                break calibrations;
            }
            // The printed areas' recorded tests against their totals.
            for a in 0..n_areas {
                let (Some(target), Some(level)) = (area_total[a], area_level[a]) else {
                    continue;
                };
                let drawn = area_complete[a] * layout.gross_up[a];
                let recorded: f64 = layout.entries[a]
                    .iter()
                    .map(|&(p, share)| drawn * share * layout.submitted[p])
                    .sum();
                // Recorded tests are linear in the area's records: of its expected records P + U,
                // only the levelled part U scales with the level, so U·L'/L = (target/recorded)(P + U) − P.
                let (whole, levelled) = (area_complete[a], area_levelled[a]);
                if recorded > 0.0 && levelled > 0.0 {
                    let wanted = target / recorded * whole - (whole - levelled);
                    area_level[a] = Some(level * (wanted / levelled).clamp(0.1, 4.0));
                }
            }
        };
        let provider_choice = layout
            .entries
            .into_iter()
            .map(|entries| {
                let (providers, weights): (Vec<usize>, Vec<f64>) = entries.into_iter().unzip();
                (providers, Cumulative::new(weights))
            })
            .collect();
        let (gross_up, area_faults) = (layout.gross_up, layout.area_faults);
        let missing_months: Vec<[f64; 12]> = missing_months
            .iter()
            .zip(&layout.drop)
            .map(|(months, &drop)| months.map(|missing| if missing { drop } else { 0.0 }))
            .collect();

        let neighbours = neighbouring_areas(&reference);
        let mut generator = Generator {
            resident_elsewhere: published
                .annex_a
                .resident_different_area_share
                .clamp(0.0, 0.5),
            neighbours,
            month_choice: Cumulative::new(month_share.iter().copied()),
            config,
            reference,
            calibrations,
            gross_up,
            provider_choice,
            faults,
            area_faults,
            missing_months,
            days,
            month_days,
            clamped_expected: 0.0,
        };
        generator.clamped_expected = generator.clamped_total();
        Ok(generator)
    }

    pub fn config(&self) -> &YearConfig {
        &self.config
    }

    /// The same calibrated year with records drawn by `sampling` in place of the config's
    /// `count_sampling` (the calibration does not depend on it: only how expected counts become
    /// record counts does).
    pub fn with_count_sampling(mut self, sampling: CountSampling) -> Generator {
        self.config.count_sampling = sampling;
        self
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    pub fn calibrations(&self) -> &[MeasureCalibration] {
        &self.calibrations
    }

    pub fn provider_faults(&self, provider_code: &str) -> Option<ProviderFaults> {
        self.reference
            .provider_index
            .get(provider_code)
            .map(|&p| self.faults[p])
    }

    /// Registered population per area × sex × age band × IMD quintile (full size).
    pub fn population(&self) -> Vec<PopulationRow> {
        self.population_scaled(1.0)
    }

    /// The population multiplied by `scale`, to pair with records generated at that scale.
    pub fn population_scaled(&self, scale: f64) -> Vec<PopulationRow> {
        let mut rows = Vec::new();
        for (a, area) in self.reference.areas.iter().enumerate() {
            for j in 0..STRATA {
                let people = self.reference.population[a][j];
                if people <= 0.0 {
                    continue;
                }
                let (s, g, q) = stratum_parts(j);
                rows.push(PopulationRow {
                    area_code: area.code.clone(),
                    sex: if s == 0 { "1" } else { "2" }.to_string(),
                    age_band: AGE_BANDS[g].to_string(),
                    imd_quintile: q as u8 + 1,
                    population: people * scale,
                });
            }
        }
        rows
    }

    /// Each area's practices with their shares of its list size (by area code). Records are
    /// drawn to a practice within their area by list size whatever their stratum, so a practice's
    /// expected activity in a stratum is its share of its area's, and its population is that
    /// share of the area's population: the practice's age, sex and IMD mix is its area's (the
    /// synthetic year's assumption; no open file gives a practice's IMD mix).
    pub fn practice_shares(&self) -> BTreeMap<String, Vec<(String, f64)>> {
        self.reference
            .areas
            .iter()
            .zip(&self.reference.practices)
            .map(|(area, (codes, weights))| {
                (
                    area.code.clone(),
                    codes.iter().cloned().zip(weights.shares()).collect(),
                )
            })
            .collect()
    }

    /// Expected complete-case tests of a measure in an area and stratum at scale 1.
    pub fn expected_complete(&self, measure: &str, area: usize, stratum: usize) -> f64 {
        let m = measure_index(measure);
        let calibration = &self.calibrations[m];
        calibration.area_effects[area]
            * calibration.fitted.lambda[stratum]
            * self.reference.population[area][stratum]
    }

    /// Gross expected records (before exclusions and missing months) of a measure, area and stratum.
    fn expected_gross(&self, m: usize, area: usize, stratum: usize) -> f64 {
        let calibration = &self.calibrations[m];
        self.gross_up[area]
            * calibration.area_effects[area]
            * calibration.fitted.lambda[stratum]
            * self.reference.population[area][stratum]
    }

    /// Record kinds of a modality: its EDOC measures then the rest, with expected gross counts.
    fn kinds(&self, modality: usize, area: usize, stratum: usize) -> Vec<(Option<usize>, f64)> {
        let modality_key = MODALITIES[modality];
        let total = self.expected_gross(modality, area, stratum);
        let mut kinds = Vec::with_capacity(3);
        let mut edoc_sum = 0.0;
        for (edoc, parent) in EDOC_PARENT {
            if parent == modality_key {
                let e = measure_index(edoc);
                let expected = self.expected_gross(e, area, stratum);
                edoc_sum += expected;
                kinds.push((Some(e), expected));
            }
        }
        kinds.push((None, (total - edoc_sum).max(0.0)));
        kinds
    }

    fn clamped_total(&self) -> f64 {
        let mut clamped = 0.0;
        for a in 0..self.reference.areas.len() {
            for modality in 0..MODALITIES.len() {
                for j in 0..STRATA {
                    let total = self.expected_gross(modality, a, j);
                    let edoc: f64 = self
                        .kinds(modality, a, j)
                        .iter()
                        .filter(|k| k.0.is_some())
                        .map(|k| k.1)
                        .sum();
                    clamped += (edoc - total).max(0.0);
                }
            }
        }
        clamped
    }

    /// Stream records at `scale` (1.0 = a full year), deterministic for `seed` whatever the batch size:
    /// each area × modality stream has its own RNG seeded from (`seed`, area, modality), and batches only
    /// cut the stream. Batches are the config's `batch_rows`. Returns the number of records emitted.
    pub fn generate<F, E>(&self, scale: f64, seed: u64, sink: F) -> Result<u64, SynthError>
    where
        F: FnMut(RecordBatch) -> Result<(), E>,
        E: std::fmt::Display,
    {
        self.generate_in_batches(scale, seed, self.config.batch_rows, sink)
    }

    /// [`Generator::generate`] in batches of `batch_rows` (at least 1): the same records in the
    /// same order. A batch holds its records' text, about 400 bytes a record, so a consumer that
    /// does not need large batches bounds its memory with small ones.
    pub fn generate_in_batches<F, E>(
        &self,
        scale: f64,
        seed: u64,
        batch_rows: usize,
        mut sink: F,
    ) -> Result<u64, SynthError>
    where
        F: FnMut(RecordBatch) -> Result<(), E>,
        E: std::fmt::Display,
    {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(SynthError::Sink(format!(
                "scale must be positive, got {scale}"
            )));
        }
        let batch_rows = batch_rows.max(1);
        let mut batch = RecordBatch::with_capacity(batch_rows.min(1 << 20));
        let mut emitted = 0u64;
        let source_choice = Cumulative::new(self.config.patient_source_weights.iter().copied());
        let sources: Vec<String> = (1..=7).map(|i| format!("{i:02}")).collect();
        let not_known_sex = ["9", "0", "X", ""];
        // Systematic sampling: one running total per measure kind (EDOC measure, or a modality's other
        // tests), with a seeded random start, walking stratum by stratum and, within a stratum, area by
        // area. Every stratum's national total is then exact to ±1, so the section-3 factor rates (sums
        // of strata) carry almost no sampling noise even at small scales.
        let systematic = match self.config.count_sampling {
            CountSampling::Poisson => None,
            CountSampling::Systematic => {
                let mut start_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5EED_5EED_5EED);
                let offsets: Vec<f64> = (0..MEASURES.len() * 2)
                    .map(|_| start_rng.random::<f64>())
                    .collect();
                let mut cumulative = vec![0.0f64; MEASURES.len() * 2];
                let areas = self.reference.areas.len();
                let mut counts = vec![Vec::new(); areas * MODALITIES.len() * STRATA];
                for modality in 0..MODALITIES.len() {
                    for j in 0..STRATA {
                        for a in 0..areas {
                            if self.reference.population[a][j] <= 0.0 {
                                continue;
                            }
                            let cell = &mut counts[(a * MODALITIES.len() + modality) * STRATA + j];
                            for (kind, expected) in self.kinds(modality, a, j) {
                                let k = kind.unwrap_or(MEASURES.len() + modality);
                                let before = (cumulative[k] + offsets[k]).floor();
                                cumulative[k] += expected * scale;
                                cell.push(((cumulative[k] + offsets[k]).floor() - before) as u64);
                            }
                        }
                    }
                }
                Some(counts)
            }
        };
        let even = systematic.is_some();
        let mut stream_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57EA_D157_57EA_D157);
        let mut fresh = |steps: &[f64]| -> Vec<Weyl> {
            steps
                .iter()
                .map(|&step| Weyl {
                    x: stream_rng.random(),
                    step,
                })
                .collect()
        };
        let n_providers = self.reference.providers.len();
        let n_areas = self.reference.areas.len();
        let mut provider_streams: Vec<Weyl> =
            (0..n_areas).flat_map(|_| fresh(&STEPS[6..7])).collect();
        let mut month_streams: Vec<Weyl> =
            (0..n_providers).flat_map(|_| fresh(&STEPS[7..8])).collect();
        let mut drop_streams: Vec<Weyl> = (0..n_providers)
            .flat_map(|_| fresh(&STEPS[10..11]))
            .collect();
        let mut residence_streams: Vec<Weyl> =
            (0..n_areas).flat_map(|_| fresh(&STEPS[11..12])).collect();
        // Per provider: non-English, unknown, no practice, missing LSOA, missing sex, missing age.
        let mut fault_streams: Vec<Vec<Weyl>> =
            (0..n_providers).map(|_| fresh(&STEPS[0..6])).collect();
        // Per area: the Table A.3 top-ups of missing LSOA and missing sex.
        let mut area_streams: Vec<Vec<Weyl>> = (0..n_areas).map(|_| fresh(&STEPS[8..10])).collect();
        for a in 0..self.reference.areas.len() {
            for modality in 0..MODALITIES.len() {
                let stream_seed = seed
                    ^ (a as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
                    ^ (modality as u64 + 1).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
                let mut rng = ChaCha8Rng::seed_from_u64(stream_seed);
                let other_codes = &self.config.other_exam_codes[MODALITIES[modality]];
                for j in 0..STRATA {
                    if self.reference.population[a][j] <= 0.0 {
                        continue;
                    }
                    let (s, g, q) = stratum_parts(j);
                    for (i, (kind, expected)) in self.kinds(modality, a, j).into_iter().enumerate()
                    {
                        let lambda = expected * scale;
                        let count = match &systematic {
                            Some(counts) => counts[(a * MODALITIES.len() + modality) * STRATA + j]
                                .get(i)
                                .copied()
                                .unwrap_or(0),
                            None if lambda > 0.0 => Poisson::new(lambda)
                                .map(|d| d.sample(&mut rng) as u64)
                                .unwrap_or(0),
                            None => 0,
                        };
                        for _ in 0..count {
                            let u = uniform(&mut rng, &mut provider_streams[a], even);
                            let provider_slot = self.provider_choice[a].1.pick(u).unwrap_or(0);
                            let provider = self.provider_choice[a].0[provider_slot];
                            let u = uniform(&mut rng, &mut month_streams[provider], even);
                            let month = self.month_choice.pick(u).unwrap_or(0);
                            let day = self.month_days[month]
                                [rng.random_range(0..self.month_days[month].len())];
                            let dropped = self.missing_months[provider][month];
                            if dropped > 0.0
                                && (dropped >= 1.0
                                    || uniform(&mut rng, &mut drop_streams[provider], even)
                                        < dropped)
                            {
                                continue; // the provider did not submit this record's month
                            }
                            let faults = &self.faults[provider];
                            // Some patients live in a neighbouring area (same IMD quintile, so
                            // their stratum is the same whichever area attribution gives them).
                            let home = if self.resident_elsewhere > 0.0
                                && uniform(&mut rng, &mut residence_streams[a], even)
                                    < self.resident_elsewhere
                            {
                                let (areas, weights) = &self.neighbours[a];
                                weights
                                    .pick(rng.random())
                                    .map(|i| areas[i])
                                    .filter(|&b| {
                                        self.reference.lsoas[b][q]
                                            .by_age
                                            .get(g)
                                            .is_some_and(|c| c.total() > 0.0)
                                    })
                                    .unwrap_or(a)
                            } else {
                                a
                            };
                            let pool = &self.reference.lsoas[home][q];
                            let mut lsoa = pool.by_age[g]
                                .pick(rng.random())
                                .map(|i| pool.codes[i].clone());
                            let (codes, weights) = &self.reference.practices[a];
                            let mut practice = weights.pick(rng.random()).map(|i| codes[i].clone());
                            let streams = &mut fault_streams[provider];
                            if uniform(&mut rng, &mut streams[0], even) < faults.non_english
                                && !self.reference.non_english_practices.is_empty()
                            {
                                let i =
                                    rng.random_range(0..self.reference.non_english_practices.len());
                                practice = Some(self.reference.non_english_practices[i].clone());
                                lsoa = None;
                            } else if uniform(&mut rng, &mut streams[1], even) < faults.unknown {
                                practice = None;
                                lsoa = None;
                            } else {
                                if uniform(&mut rng, &mut streams[2], even) < faults.no_practice {
                                    practice = None;
                                }
                                // A record without a practice keeps its LSOA (its only route to
                                // an area); one with neither is what `unknown` draws.
                                if practice.is_some() {
                                    if uniform(&mut rng, &mut streams[3], even)
                                        < faults.missing_lsoa
                                    {
                                        lsoa = None;
                                    }
                                    if self.area_faults[a].0 > 0.0
                                        && uniform(&mut rng, &mut area_streams[a][0], even)
                                            < self.area_faults[a].0
                                    {
                                        lsoa = None;
                                    }
                                }
                            }
                            let area_sex_missing = self.area_faults[a].1 > 0.0
                                && uniform(&mut rng, &mut area_streams[a][1], even)
                                    < self.area_faults[a].1;
                            let sex = if area_sex_missing
                                || uniform(&mut rng, &mut fault_streams[provider][4], even)
                                    < faults.missing_sex
                            {
                                not_known_sex[rng.random_range(0..not_known_sex.len())]
                            } else if s == 0 {
                                "1"
                            } else {
                                "2"
                            };
                            let age = if uniform(&mut rng, &mut fault_streams[provider][5], even)
                                < faults.missing_age
                            {
                                None
                            } else if g == 18 {
                                // 90+: ages thinning out to 104.
                                Some(90 + (rng.random::<f64>().powi(2) * 15.0) as u32)
                            } else {
                                Some(g as u32 * 5 + rng.random_range(0..5))
                            };
                            let exam_code = match kind {
                                Some(e) => {
                                    let list = self.reference.edoc_exam_codes.get(MEASURES[e]);
                                    list.and_then(|l| {
                                        (!l.is_empty())
                                            .then(|| l[rng.random_range(0..l.len())].clone())
                                    })
                                }
                                None => Some(
                                    other_codes[rng.random_range(0..other_codes.len())].clone(),
                                ),
                            };
                            let source =
                                source_choice.pick(rng.random()).map(|i| sources[i].clone());
                            let provider_code = &self.reference.providers[provider].code;
                            batch.provider_code.push(provider_code.clone());
                            batch.site_code.push(Some(format!("{provider_code}01")));
                            batch.test_date.push(self.days[day].0.clone());
                            batch.gp_practice_code.push(practice);
                            batch.lsoa11.push(lsoa);
                            batch.sex.push(sex.to_string());
                            batch.age.push(age);
                            batch.modality.push(MODALITIES[modality].to_string());
                            batch.exam_code.push(exam_code);
                            batch.patient_source.push(source);
                            if batch.len() >= batch_rows {
                                emitted += batch.len() as u64;
                                let full = std::mem::replace(
                                    &mut batch,
                                    RecordBatch::with_capacity(batch_rows.min(1 << 20)),
                                );
                                sink(full).map_err(|e| SynthError::Sink(e.to_string()))?;
                            }
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            emitted += batch.len() as u64;
            sink(batch).map_err(|e| SynthError::Sink(e.to_string()))?;
        }
        Ok(emitted)
    }
}

/// Per area, the other areas sharing a trust's catchment with it (a stand-in for its neighbours),
/// weighted by Σ over shared trusts of the two areas' catchment weights.
fn neighbouring_areas(reference: &Reference) -> Vec<(Vec<usize>, Cumulative)> {
    let n_areas = reference.areas.len();
    let mut by_trust: HashMap<usize, Vec<(usize, f64)>> = HashMap::new();
    for (a, trusts) in reference.catchment.iter().enumerate() {
        for &(p, w) in trusts {
            by_trust.entry(p).or_default().push((a, w));
        }
    }
    (0..n_areas)
        .map(|a| {
            let mut weight = vec![0.0; n_areas];
            for &(p, w) in &reference.catchment[a] {
                for &(b, v) in by_trust.get(&p).map(|v| v.as_slice()).unwrap_or(&[]) {
                    if b != a {
                        weight[b] += w * v;
                    }
                }
            }
            let (areas, weights): (Vec<usize>, Vec<f64>) = weight
                .into_iter()
                .enumerate()
                .filter(|&(_, w)| w > 0.0)
                .unzip();
            (areas, Cumulative::new(weights))
        })
        .collect()
}

/// Area and stratum effects of every measure: each area's target rate from the printed spread
/// (or the config's), the named outliers and the missing-submission shortfalls, then the stratum
/// effects fitted to the printed ratios.
fn calibrate_measures(
    config: &YearConfig,
    published: &Published,
    published_path: &Path,
    reference: &Reference,
    area_shortfall: &[f64],
    area_level: &[Option<f64>],
) -> Result<Vec<MeasureCalibration>, SynthError> {
    let n_areas = reference.areas.len();
    let config_error = |message: String| SynthError::Config {
        path: PathBuf::from(published_path),
        message,
    };
    let population = reference.national_population();
    let area_population: Vec<f64> = reference
        .population
        .iter()
        .map(|p| p.iter().sum())
        .collect();
    let mut calibrations = Vec::with_capacity(MEASURES.len());
    for (m, &measure) in MEASURES.iter().enumerate() {
        let targets = measure_targets(published, published_path, measure)?;
        let national = targets.national_rate * 1e4;
        let (mean, sd, within) = match published.spread(measure) {
            Some(s) => (
                0.5 * (s.lower + s.upper),
                0.5 * (s.upper - s.lower),
                s.share_within_1sd,
            ),
            None => {
                let spread = config
                    .spread
                    .get(measure)
                    .copied()
                    .unwrap_or(config.default_spread);
                (national, spread.cv * national, spread.share_within_1sd)
            }
        };
        let mut fixed: Vec<Option<f64>> = vec![None; n_areas];
        // Named outliers above 2x (or 4x) national are the only areas allowed above that multiple.
        let smallest_multiple = config
            .outliers
            .iter()
            .filter(|o| o.measure == measure)
            .map(|o| o.rate_multiple.floor())
            .fold(f64::INFINITY, f64::min);
        let cap = if smallest_multiple >= 2.0 {
            0.97 * smallest_multiple * national
        } else {
            f64::INFINITY
        };
        for outlier in config.outliers.iter().filter(|o| o.measure == measure) {
            let a = *reference
                .area_index
                .get(&outlier.area_code)
                .ok_or_else(|| {
                    config_error(format!("outlier: unknown area {}", outlier.area_code))
                })?;
            fixed[a] = Some(outlier.rate_multiple * national);
        }
        // An area whose printed total the generator is told sits at the spread's mean times its
        // level, in the measures whose spread the publication does not print and where it is not
        // a named outlier. In a printed spread it is drawn like any other area: levelling every
        // measure put six of 2023/24's eleven such ICBs below X-ray's mean − SD and left too
        // little of the printed variance for the other areas (a share within one SD of 0.86
        // against the printed 0.67).
        let printed_spread = published.spread(measure).is_some();
        for a in 0..n_areas {
            if let (None, Some(level), false) = (fixed[a], area_level[a], printed_spread) {
                fixed[a] = Some(mean * level);
            }
        }
        for a in 0..n_areas {
            if area_shortfall[a] > 0.0 {
                fixed[a] = Some(fixed[a].unwrap_or(mean) * (1.0 - area_shortfall[a]));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.calibration_seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(m as u64 + 1)),
        );
        let area_rates = area_targets(
            &area_population,
            national,
            mean,
            sd,
            within,
            &fixed,
            cap,
            &mut rng,
        );
        let effects: Vec<f64> = area_rates.iter().map(|t| t / national).collect();
        let mut effective = [0.0; STRATA];
        for a in 0..n_areas {
            for j in 0..STRATA {
                effective[j] += effects[a] * reference.population[a][j];
            }
        }
        let fitted = fit_stratum_effects(&targets, config.ratio_method, &effective, &population)
            .map_err(|message| SynthError::Calibration {
                measure: measure.to_string(),
                message,
            })?;
        calibrations.push(MeasureCalibration {
            measure: measure.to_string(),
            targets,
            fitted,
            area_effects: effects,
        });
    }
    Ok(calibrations)
}

/// A provider that must supply `supply` of an area's would-be records (its catchment share
/// included), so that its missing months lose the printed share of the area.
#[derive(Debug, Clone, Copy)]
struct MissingSupply {
    area: usize,
    provider: usize,
    supply: f64,
    /// The provider's missing months.
    months: [bool; 12],
}

/// Which faults Annex A sets for a provider itself: the unattributed share (Table A.1) and the
/// most common missing field (Table A.2).
struct NamedFaults {
    unknown: bool,
    field: Option<String>,
}

/// What the areas' provider mix is built from.
struct LayoutInputs<'a> {
    reference: &'a Reference,
    faults: &'a [ProviderFaults],
    trust_size: &'a [f64],
    independent: &'a [(usize, f64)],
    missing_supply: &'a [MissingSupply],
    /// Share of the year's records in each month.
    month_share: &'a [f64],
    /// Table A.3 areas: the incomplete share to reach, and whether sex (else LSOA) is topped up.
    area_target: &'a [Option<(f64, bool)>],
}

/// Per area: providers with their share of drawn records, the Table A.3 top-ups (missing LSOA,
/// missing sex) and the gross-up for records lost to exclusions and missing months.
#[derive(Debug, Default)]
struct Layout {
    entries: Vec<Vec<(usize, f64)>>,
    area_faults: Vec<(f64, f64)>,
    gross_up: Vec<f64>,
    /// Per provider: the chance a record of a missing month is not submitted.
    drop: Vec<f64>,
    /// Per provider: the share of its drawn records submitted.
    submitted: Vec<f64>,
}

impl Layout {
    fn build(inputs: &LayoutInputs) -> Layout {
        let reference = inputs.reference;
        let n_areas = reference.areas.len();
        let all_trusts: Vec<(usize, f64)> = reference
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.independent)
            .map(|(i, _)| (i, 1.0))
            .collect();
        let independent_total: f64 = inputs.independent.iter().map(|(_, s)| s).sum();
        let mut layout = Layout::default();
        let mut drop = vec![1.0; reference.providers.len()];
        for a in 0..n_areas {
            let trusts = if reference.catchment[a].is_empty() {
                &all_trusts
            } else {
                &reference.catchment[a]
            };
            let trust_total: f64 = trusts
                .iter()
                .map(|&(p, w)| w * inputs.trust_size[p])
                .sum::<f64>()
                .max(1e-12);
            let catchment_share = |p: usize| {
                trusts
                    .iter()
                    .filter(|&&(t, _)| t == p)
                    .map(|&(t, w)| w * inputs.trust_size[t] / trust_total)
                    .sum::<f64>()
            };
            // A forced supplier's own share on top of its catchment share c: s + (R − s)·c = supply,
            // R the share left to trusts before any forced supplier.
            let supplies: Vec<&MissingSupply> = inputs
                .missing_supply
                .iter()
                .filter(|m| m.area == a)
                .collect();
            let left = (1.0 - independent_total).max(0.0);
            let mut forced: Vec<(usize, f64)> = Vec::new();
            for m in &supplies {
                let c = catchment_share(m.provider);
                let s = ((m.supply - left * c) / (1.0 - c).max(1e-9)).clamp(0.0, 0.95);
                forced.push((m.provider, s));
                // A catchment share that alone loses more than printed: the provider submits part
                // of those months (at most 48%, so each stays below half its typical month).
                if s == 0.0 && left * c > 0.0 {
                    drop[m.provider] = (m.supply / (left * c)).clamp(0.52, 1.0);
                }
            }
            let forced_total: f64 = forced.iter().map(|(_, s)| s).sum();
            if forced_total > left * 0.95 {
                let shrink = left * 0.95 / forced_total;
                forced.iter_mut().for_each(|(_, s)| *s *= shrink);
            }
            let remaining = (left - forced.iter().map(|(_, s)| s).sum::<f64>()).max(0.0);
            let mut entries = forced;
            entries.extend(inputs.independent.iter().copied());
            entries.extend(
                trusts
                    .iter()
                    .map(|&(p, w)| (p, remaining * w * inputs.trust_size[p] / trust_total)),
            );
            layout.entries.push(entries);
        }
        layout.submitted = inputs.missing_supply.iter().fold(
            vec![1.0; reference.providers.len()],
            |mut submitted, m| {
                let lost: f64 = (0..12)
                    .filter(|&month| m.months[month])
                    .map(|month| inputs.month_share[month])
                    .sum();
                submitted[m.provider] = 1.0 - lost * drop[m.provider];
                submitted
            },
        );
        layout.drop = drop;
        for a in 0..n_areas {
            let entries = &layout.entries[a];
            let drawn_total: f64 = entries.iter().map(|(_, s)| s).sum::<f64>().max(1e-12);
            let mut area_faults = (0.0, 0.0);
            if let Some((target, sex)) = inputs.area_target[a] {
                // Table A.3 counts submitted records: a provider's months not submitted (Table
                // A.4) leave the others a larger part of the area's tests.
                let submitted_total: f64 = entries
                    .iter()
                    .map(|&(p, s)| s * layout.submitted[p])
                    .sum::<f64>()
                    .max(1e-12);
                let mix = |f: &dyn Fn(&ProviderFaults) -> f64| {
                    entries
                        .iter()
                        .map(|&(p, s)| s * layout.submitted[p] * f(&inputs.faults[p]))
                        .sum::<f64>()
                        / submitted_total
                };
                let baseline = mix(&|f| f.incomplete_share((0.0, 0.0)));
                let extra = ((target - baseline) / (1.0 - baseline)).clamp(0.0, 0.999);
                area_faults = if sex {
                    (0.0, extra)
                } else {
                    // The LSOA top-up falls only on records with a practice code.
                    let with_practice = mix(&|f| 1.0 - f.no_practice).max(0.05);
                    ((extra / with_practice).min(0.999), 0.0)
                };
            }
            let complete: f64 = entries
                .iter()
                .map(|&(p, s)| {
                    s * layout.submitted[p] * (1.0 - inputs.faults[p].loss_in(area_faults))
                })
                .sum::<f64>()
                / drawn_total;
            layout.gross_up.push(1.0 / complete.max(0.02));
            layout.area_faults.push(area_faults);
        }
        layout
    }
}

/// Targets of one measure from the published file.
fn measure_targets(
    published: &Published,
    path: &Path,
    measure: &str,
) -> Result<MeasureTargets, SynthError> {
    let missing = |what: &str| SynthError::Config {
        path: path.to_path_buf(),
        message: format!("{what} has no value for `{measure}`"),
    };
    let national = *published
        .national_rates
        .get(measure)
        .ok_or_else(|| missing("national_rates"))?;
    let ratio =
        |table: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
         category: &str|
         -> Result<f64, SynthError> {
            let printed = table
                .get(category)
                .and_then(|row| row.get(measure))
                .ok_or_else(|| missing(&format!("factor ratio category `{category}`")))?;
            Published::ratio_value(path, printed)
        };
    let ratios = &published.factor_ratios;
    Ok(MeasureTargets {
        national_rate: national / 1e4,
        male: ratio(&ratios.sex, "Male")?,
        imd: [
            ratio(&ratios.imd_quintile, "2")?,
            ratio(&ratios.imd_quintile, "3")?,
            ratio(&ratios.imd_quintile, "4")?,
            ratio(&ratios.imd_quintile, "5")?,
        ],
        age: [
            ratio(&ratios.age_group, "45-54")?,
            ratio(&ratios.age_group, "55-64")?,
            ratio(&ratios.age_group, "65-74")?,
            ratio(&ratios.age_group, "75+")?,
        ],
        age_75_reported_as_65_plus: published.notes.iter().any(|n| {
            n.factor == "age_group"
                && n.category == "75+"
                && n.measure == measure
                && n.reported_category == "65+"
        }),
    })
}

/// Days of a year as (`YYYY-MM-DD`, month index), and the day indices of each month.
type YearDays = (Vec<(String, usize)>, Vec<Vec<usize>>);

/// Every day of the financial year starting at `start` (`YYYY-MM-DD`, the 1st of a month) as
/// (`YYYY-MM-DD`, month index 0..12), and the day indices of each month.
fn financial_year_days(start: &str) -> Result<YearDays, String> {
    let parts: Vec<&str> = start.split('-').collect();
    let parse = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
    let (Some(year), Some(month), Some(1)) = (parse(0), parse(1), parse(2)) else {
        return Err(format!("start_date `{start}` must be YYYY-MM-01"));
    };
    if !(1..=12).contains(&month) {
        return Err(format!("start_date `{start}`: bad month"));
    }
    // Calendar arithmetic through chrono, as the engine's `dates` module does (this crate cannot
    // depend on the engine, which depends on it).
    let first = i32::try_from(year)
        .ok()
        .and_then(|year| chrono::NaiveDate::from_ymd_opt(year, month, 1));
    let month_start = |m: u32| first.and_then(|f| f.checked_add_months(chrono::Months::new(m)));
    let mut days = Vec::with_capacity(366);
    let mut month_days = Vec::with_capacity(12);
    for m in 0..12 {
        let (Some(from), Some(to)) = (month_start(m as u32), month_start(m as u32 + 1)) else {
            return Err(format!(
                "start_date `{start}`: the year is beyond the calendar"
            ));
        };
        let mut indices = Vec::with_capacity(31);
        for day in from.iter_days().take_while(|&day| day < to) {
            indices.push(days.len());
            days.push((
                format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day()),
                m,
            ));
        }
        month_days.push(indices);
    }
    Ok((days, month_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn financial_year_covers_every_day_once() {
        let (days, months) = financial_year_days("2023-04-01").expect("valid date");
        assert_eq!(days.len(), 366); // 2024 is a leap year
        assert_eq!(days[0].0, "2023-04-01");
        assert_eq!(days[365].0, "2024-03-31");
        assert_eq!(months[10].len(), 29);
        let (days, _) = financial_year_days("2020-04-01").expect("valid date");
        assert_eq!(days.len(), 365);
        assert!(financial_year_days("2020-04-02").is_err());
    }

    #[test]
    fn loss_combines_independent_faults() {
        let faults = ProviderFaults {
            missing_sex: 0.5,
            missing_lsoa: 0.5,
            no_practice: 0.9,
            ..Default::default()
        };
        // A missing LSOA falls only on the 10% of records with a practice: 0.05 lost for LSOA,
        // then half of the other 0.95 for sex: 0.525.
        assert!((faults.loss() - 0.525).abs() < 1e-12);
        let [non_english, unknown, lsoa, sex, age] = faults.reason_shares((0.0, 0.0));
        assert_eq!((non_english, unknown, age), (0.0, 0.0, 0.0));
        assert!((lsoa - 0.05).abs() < 1e-12 && (sex - 0.475).abs() < 1e-12);
    }
}
