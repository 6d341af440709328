//! # strata-synth — a deterministic synthetic Diagnostic Imaging Dataset
//!
//! Record-level DID is confidential, so strata ships this generator (SPEC §5). It builds one financial year
//! of examination records (SPEC §3 columns) on the real reference geography in `data/reference/`, plus the
//! matching registered population table, calibrated so that the engine reproduces the year's published
//! figures (`configs/published/did-<year>.toml`).
//!
//! ## What is calibrated, and how
//! - **Population**: ONS mid-2020 resident persons by area × 5-year age band × IMD 2015 quintile, rescaled per
//!   area to the registered list sizes of its practices, split by sex with the national registered male
//!   share of each age band; optionally rescaled to a national registered total (`registered_total`, used for
//!   2023/24 where the list sizes are from Jan 2021).
//! - **Stratum effects** (`calibrate`): expected complete-case tests of area `a`, stratum `j` are
//!   `u_a · λ_j · n_aj`, `λ_j = base · S_sex · Q_quintile · A_broad_age`. The effects are fitted on expected
//!   counts so that the engine's section-3 ratios (rates standardised for the other two factors, then odds or
//!   rate ratios against female / quintile 1 / 0-44) and the national rate hit the printed values within
//!   0.005. The 2020/21 X-ray note (65+ reported for 75+) is honoured: 65-74 and 75+ together are fitted.
//! - **Area effects** `u_a`: a share of areas within one SD of the mean and that range as printed (or the
//!   config's spread), assigned to areas by a seeded shuffle, named outliers forced, shortfalls of missing
//!   submissions applied; the population-weighted mean effect is 1 so national rates hold.
//! - **Faults** (Annex A): per-provider probabilities of no practice, no practice and no LSOA, missing LSOA
//!   (only on records with a practice: one with neither is unattributed), sex or age from Tables A.1/A.2,
//!   and national background shares; the named trusts' sizes and the background shares are fitted
//!   together (fixed point over the areas' provider mix and gross-up) so that the named providers'
//!   recorded volumes and the national counts by first reason (non-English, unattributed, no LSOA, a
//!   further no sex, a further no age) are Annex A's. Table A.3's areas are topped up to their printed
//!   share; Table A.4's providers supply the share of their area that, with their missing months, makes
//!   Annex A's estimate (the median month times the months missing) the printed share, submitting part of
//!   those months where their catchment share alone would lose more. Records lost to exclusions or
//!   missing months are grossed up per area, so complete-case counts keep their calibrated expectation.
//! - **Records**: provider from the area's trust catchment (plus independent-sector providers at their
//!   published national volume), practice by list size, LSOA by the age band's population within the area
//!   and quintile, date by month weights, exam code from the year's EDOC list or the config's other codes.
//!
//! ## Determinism
//! Area effects depend only on the config's `calibration_seed`; records on the `seed` given to
//! [`Generator::generate`]. Each area × modality stream has its own ChaCha8 RNG, so output is identical for a
//! seed whatever the batch size.
//!
//! ## Limits
//! EDOC tests are drawn as subsets of their modality; where an EDOC expectation exceeds its modality's in a
//! cell the remainder is clamped at zero ([`Generator::clamped_expected`] reports it). A share of patients
//! (Annex A's `resident_different_area_share`, about 7% in 2020/21 and 3% in 2023/24) live in an LSOA
//! of another area that shares a trust's catchment with their practice's (a stand-in for a
//! neighbour), in the same IMD quintile: attribution by practice and by LSOA then differ. Trust sizes are not modelled: within an
//! area trusts are chosen by catchment share.

// Stratum, area and category arithmetic reads best with explicit indices shared across arrays.
#![allow(clippy::needless_range_loop)]

mod calibrate;
pub mod cdc;
mod config;
mod csvio;
mod error;
mod generator;
pub mod periods;
mod reference;
mod write;

pub use calibrate::{
    FactorRates, FittedMeasure, MeasureTargets, area_targets, factor_rates, fit_stratum_effects,
    normal_quantile, ratio_of, spread_scores,
};
pub use config::{
    CountSampling, EDOC_PARENT, MEASURES, MODALITIES, Outlier, Published, RatioMethod,
    SpreadConfig, YearConfig,
};
pub use error::SynthError;
pub use generator::{Generator, MeasureCalibration, PopulationRow, ProviderFaults, RecordBatch};
pub use reference::{
    AGE_BANDS, Area, Provider, Reference, STRATA, broad_age_group, stratum, stratum_parts,
};
pub use write::RECORD_COLUMNS;
