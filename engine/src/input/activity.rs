//! Record-level activity counted in one streaming pass.
//!
//! The extract is read in batches (Parquet: one row group at a time, only the columns the pipeline
//! uses; CSV: one polars read; the synthetic year: the generator's batches). Text columns arrive as
//! categoricals, so a record is a handful of small integer codes. Each distinct code is resolved
//! once — practice → practice class, LSOA → LSOA class and IMD decile, sex/age/modality × exam
//! code through the derivation plugin, date → month — and cached in a per-column table; the
//! counting loop then only indexes tables and increments dense counters:
//! `StratifiedCounts` (measure × area × stratum cell) and a quality cube (provider × practice class
//! × LSOA class × month × modality class × missing sex/age/IMD). Batches are shared among worker
//! threads, each with its own counters, summed at the end (integer counts: the result does not
//! depend on the order).
//!
//! Plugins see what they saw when activity was grouped first: the attribution plugin every
//! practice-class × LSOA-area candidate (a few thousand at most), the derivation plugin the
//! distinct sex values, ages, IMD deciles and (modality, exam code) pairs of the extract. A value
//! first met mid-file is derived then, with every value met so far; each value must keep its
//! derived result when the rules are run again (the API's one-output-per-input contract).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, Utf8ViewArray};
use strata_api::{
    AttributionCandidate, DerivationInput, Derived, PracticeLookup, QualityCell, Route,
};

use super::{Dictionary, LsoaInfo};
use crate::error::{Error, Result};

/// Not yet resolved in a per-column table (the slow path resolves and caches it).
const UNRESOLVED: u32 = u32::MAX;
/// Resolved to "no value" (e.g. a sex code the rules do not know).
const NONE: u32 = u32::MAX - 1;
/// Missing IMD quintile in the packed LSOA value.
const NO_QUINTILE: u32 = 0xFF;
/// Month slot of a record dated outside the reporting year.
const OUTSIDE_YEAR: u32 = 12;
const MONTH_SLOTS: usize = 13;
/// Modality classes: standard (counts in a measure), known but in no measure, unknown modality.
const PAIR_CLASSES: usize = 3;
/// Quality counters per (provider, candidate): month × modality class × missing sex/age/IMD bits.
const BLOCK: usize = MONTH_SLOTS * PAIR_CLASSES * 8;
/// Practice classes (and LSOA classes) before the per-area ones.
const FIRST_AREA_CLASS: u32 = 3;
/// Integer keys (ages, dates as days) are cached in a window of this many values.
const INT_WINDOW: i64 = 4096;

/// The columns read, in kernel order.
pub const COLUMNS: [&str; 8] = [
    "provider_code",
    "gp_practice_code",
    "lsoa11",
    "sex",
    "age",
    "modality",
    "exam_code",
    "test_date",
];
const PROVIDER: usize = 0;
const PRACTICE: usize = 1;
const LSOA: usize = 2;
const SEX: usize = 3;
const AGE: usize = 4;
const MODALITY: usize = 5;
const EXAM: usize = 6;
const DATE: usize = 7;

/// The reference lookups the pass resolves codes against.
pub struct Lookups<'a> {
    pub practices: &'a HashMap<String, u32>,
    pub non_english: &'a HashSet<String>,
    pub lsoas: &'a HashMap<String, LsoaInfo>,
    pub areas: usize,
}

/// Attribution of every practice class × LSOA class, from one call of the attribution plugin.
pub struct AttributionTable {
    classes: usize,
    area: Vec<u32>,
    /// Per candidate, its outcome: what the quality cube keeps of it.
    outcome: Vec<u32>,
    /// (area, route, has practice, has LSOA) of each outcome.
    outcomes: Vec<(Option<u32>, Route, bool, bool)>,
}

impl AttributionTable {
    /// The distinct candidates to attribute (practice class × LSOA area) for `areas` areas.
    pub fn candidates(areas: usize) -> Vec<AttributionCandidate> {
        let classes = areas as u32 + FIRST_AREA_CLASS;
        let mut out = Vec::new();
        for p in 0..classes {
            for lsoa_area in std::iter::once(None).chain((0..areas as u32).map(Some)) {
                out.push(AttributionCandidate {
                    practice: practice_lookup(p),
                    lsoa_area,
                });
            }
        }
        out
    }

    /// Builds the table from the plugin's answers for [`AttributionTable::candidates`].
    pub fn new(areas: usize, attributed: &[strata_api::Attribution]) -> AttributionTable {
        let classes = areas + FIRST_AREA_CLASS as usize;
        let mut area = Vec::with_capacity(classes * classes);
        let mut outcome = Vec::with_capacity(classes * classes);
        let mut outcomes = Dictionary::default();
        for p in 0..classes {
            for l in 0..classes as u32 {
                let lsoa_slot = match lsoa_area(l) {
                    None => 0,
                    Some(a) => a as usize + 1,
                };
                let a = attributed[p * (areas + 1) + lsoa_slot];
                area.push(a.area.unwrap_or(NONE));
                outcome.push(outcomes.intern(&(a.area, a.route, p != 0, l != 0)) as u32);
            }
        }
        AttributionTable {
            classes,
            area,
            outcome,
            outcomes: outcomes.values,
        }
    }
}

fn practice_lookup(class: u32) -> PracticeLookup {
    match class {
        0 => PracticeLookup::Missing,
        1 => PracticeLookup::Unknown,
        2 => PracticeLookup::NonEnglish,
        c => PracticeLookup::English(c - FIRST_AREA_CLASS),
    }
}

/// LSOA classes: 0 missing, 1 not in the lookup, 2 in the lookup without an area, 3 + area.
fn lsoa_area(class: u32) -> Option<u32> {
    class.checked_sub(FIRST_AREA_CLASS)
}

/// What stopped a pass early.
pub enum Stop {
    /// A value the reader must refuse (bad date or age, missing provider): the caller finds the
    /// first such row for the error message.
    Invalid,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

type DeriveFn<'a> = dyn Fn(&DerivationInput) -> Result<Derived> + Sync + 'a;

/// Dictionaries shared by the workers: every distinct value, its derived result, the values
/// reported in warnings.
struct Shared<'a> {
    lookups: &'a Lookups<'a>,
    derive: &'a DeriveFn<'a>,
    providers: Dictionary<String>,
    /// Smallest raw (untrimmed) code of each provider: the published order sorts raw codes.
    provider_first_raw: Vec<String>,
    sexes: Dictionary<Option<String>>,
    ages: Dictionary<Option<i64>>,
    deciles: Dictionary<Option<u8>>,
    modalities: Dictionary<String>,
    exams: Dictionary<Option<String>>,
    pairs: Dictionary<(u32, u32)>,
    derived: Derived,
    derived_values: usize,
    derive_seconds: f64,
    derive_cpu_seconds: f64,
    unknown_lsoas: BTreeSet<String>,
    unknown_practices: BTreeSet<String>,
}

fn trimmed(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|v| !v.is_empty())
}

impl Shared<'_> {
    fn derivation_input(&self) -> DerivationInput {
        DerivationInput {
            sex_values: self.sexes.values.clone(),
            ages: self.ages.values.clone(),
            imd_deciles: self.deciles.values.clone(),
            modality_exams: self
                .pairs
                .values
                .iter()
                .map(|&(m, e)| {
                    (
                        self.modalities.values[m as usize].clone(),
                        self.exams.values[e as usize].clone(),
                    )
                })
                .collect(),
            exam_code_list: Vec::new(),
        }
    }

    /// Derives every value met so far when some are new; values derived before must keep their
    /// results.
    fn rederive(&mut self) -> Result<()> {
        let total = self.sexes.values.len()
            + self.ages.values.len()
            + self.deciles.values.len()
            + self.pairs.values.len();
        if total == self.derived_values {
            return Ok(());
        }
        let (start, cpu) = (Instant::now(), crate::metrics::cpu_seconds());
        let input = self.derivation_input();
        let d = (self.derive)(&input)?;
        self.derive_seconds += start.elapsed().as_secs_f64();
        self.derive_cpu_seconds += crate::metrics::cpu_seconds() - cpu;
        let changed = |old: &Derived| {
            old.sex.iter().zip(&d.sex).any(|(a, b)| a != b)
                || old.age_band.iter().zip(&d.age_band).any(|(a, b)| a != b)
                || old
                    .imd_quintile
                    .iter()
                    .zip(&d.imd_quintile)
                    .any(|(a, b)| a != b)
                || old.measures.iter().zip(&d.measures).any(|(a, b)| a != b)
                || old
                    .unknown_modality
                    .iter()
                    .zip(&d.unknown_modality)
                    .any(|(a, b)| a != b)
        };
        if changed(&self.derived) {
            return Err(Error::Usage(
                "the derivation plugin gave a different result for a value it had derived before; \
                 derivations must map each value on its own"
                    .into(),
            ));
        }
        self.derived = d;
        self.derived_values = total;
        Ok(())
    }

    fn derived_index(v: Option<u8>) -> u32 {
        v.map(u32::from).unwrap_or(NONE)
    }

    fn provider(&mut self, raw: Option<&str>) -> std::result::Result<u32, Stop> {
        let raw = raw.ok_or(Stop::Invalid)?;
        let code = raw.trim().to_string();
        let id = self.providers.intern(&code);
        if id == self.provider_first_raw.len() {
            self.provider_first_raw.push(raw.to_string());
        } else if raw < self.provider_first_raw[id].as_str() {
            self.provider_first_raw[id] = raw.to_string();
        }
        Ok(id as u32)
    }

    fn practice(&mut self, raw: Option<&str>) -> u32 {
        let Some(code) = trimmed(raw) else { return 0 };
        match self.lookups.practices.get(code) {
            Some(&a) => a + FIRST_AREA_CLASS,
            None if self.lookups.non_english.contains(code) => 2,
            None => {
                if !self.unknown_practices.contains(code) {
                    self.unknown_practices.insert(code.to_string());
                }
                1
            }
        }
    }

    /// LSOA class × 256 + IMD quintile (or [`NO_QUINTILE`]).
    fn lsoa(&mut self, raw: Option<&str>) -> Result<u32> {
        let (class, decile) = match trimmed(raw) {
            None => (0, None),
            Some(code) => match self.lookups.lsoas.get(code) {
                None => {
                    if !self.unknown_lsoas.contains(code) {
                        self.unknown_lsoas.insert(code.to_string());
                    }
                    (1, None)
                }
                Some(info) => (
                    info.area.map(|a| a + FIRST_AREA_CLASS).unwrap_or(2),
                    info.imd_decile,
                ),
            },
        };
        let id = self.deciles.intern(&decile);
        self.rederive()?;
        let quintile = self.derived.imd_quintile[id]
            .map(u32::from)
            .unwrap_or(NO_QUINTILE);
        Ok(class * 256 + quintile.min(NO_QUINTILE))
    }

    fn sex(&mut self, raw: Option<&str>) -> Result<u32> {
        let id = self.sexes.intern(&trimmed(raw).map(str::to_string));
        self.rederive()?;
        Ok(Self::derived_index(self.derived.sex[id]))
    }

    fn age(&mut self, age: Option<i64>) -> Result<u32> {
        let id = self.ages.intern(&age);
        self.rederive()?;
        Ok(Self::derived_index(self.derived.age_band[id]))
    }

    fn modality(&mut self, raw: Option<&str>) -> u32 {
        self.modalities
            .intern(&trimmed(raw).unwrap_or_default().to_string()) as u32
    }

    fn exam(&mut self, raw: Option<&str>) -> u32 {
        self.exams.intern(&trimmed(raw).map(str::to_string)) as u32
    }

    fn pair(&mut self, modality: u32, exam: u32) -> Result<(u32, PairInfo)> {
        let id = self.pairs.intern(&(modality, exam));
        self.rederive()?;
        Ok((id as u32, self.pair_info(id)))
    }

    fn pair_info(&self, id: usize) -> PairInfo {
        let measures = &self.derived.measures[id];
        let unknown = self
            .derived
            .unknown_modality
            .get(id)
            .copied()
            .unwrap_or(true);
        PairInfo {
            measures: measures.iter().map(|&m| m as u32).collect(),
            class: if unknown {
                2
            } else if measures.is_empty() {
                1
            } else {
                0
            },
        }
    }
}

#[derive(Clone, Default)]
struct PairInfo {
    measures: Vec<u32>,
    /// 0 standard modality, 1 known modality in no measure, 2 unknown modality.
    class: u32,
}

/// Where a column's keys come from, to resolve a key the tables do not know yet.
enum KeySource<'a> {
    /// Categorical codes; a table index `k ≥ 1` is code `k - 1`, 0 is null.
    Text(&'a CategoricalMapping),
    /// Keys into a Parquet row group's own dictionary (table index `k ≥ 1` is entry `k - 1`).
    Dict(&'a Utf8ViewArray),
    /// Whole numbers (ages, dates as days): a table index `k ≥ 1` is `low + k - 1`; values
    /// outside the window have key `u32::MAX` and are resolved from `values` each time.
    Int { low: i64, values: &'a Int64Chunked },
    /// The column is absent: every value is null.
    Absent,
}

/// One column of a batch as table keys.
struct KeyColumn<'a> {
    keys: Cow<'a, [u32]>,
    /// Added to a key to index the column's table (1 when the keys are raw categorical codes).
    offset: usize,
    source: KeySource<'a>,
}

impl KeyColumn<'_> {
    fn index(&self, row: usize) -> usize {
        self.keys[row] as usize + self.offset
    }
}

/// A worker's tables and counters.
pub struct Tally {
    tables: [Vec<u32>; 8],
    /// Per-column mapping the text tables were filled from (a new mapping empties the table).
    mappings: [usize; 8],
    /// Resolved value of each raw text met in a dictionary column, so each row group's table is
    /// filled from its dictionary without resolving again.
    seen_text: [PlHashMap<Box<str>, u32>; 8],
    /// Resolved value of a null, per column.
    null_value: [u32; 8],
    pair_rows: Vec<Vec<u32>>,
    pair_info: Vec<PairInfo>,
    classes: usize,
    attr_area: Vec<u32>,
    attr_outcome: Vec<u32>,
    outcomes: usize,
    /// Records whose LSOA / practice code is in no lookup (for the warnings).
    unknown_lsoa: u64,
    unknown_practice: u64,
    areas: usize,
    cells: usize,
    dims: [u32; 3],
    tests: Vec<u32>,
    /// Slot of each (provider, outcome) block in `cube`, or UNRESOLVED.
    slots: Vec<u32>,
    slot_keys: Vec<(u32, u32)>,
    cube: Vec<u32>,
    rows_since_flush: u64,
    tests_total: Vec<u64>,
    cube_total: Vec<u64>,
    year_start: (i32, u32),
    year_days: i64,
}

impl Tally {
    pub fn new(
        attribution: &AttributionTable,
        measures: usize,
        dims: [usize; 3],
        year_start: (i32, u32, u32),
    ) -> Tally {
        let areas = attribution.classes - FIRST_AREA_CLASS as usize;
        let cells = dims.iter().product::<usize>();
        Tally {
            tables: Default::default(),
            mappings: [0; 8],
            seen_text: Default::default(),
            null_value: [UNRESOLVED; 8],
            pair_rows: Vec::new(),
            pair_info: Vec::new(),
            classes: attribution.classes,
            attr_area: attribution.area.clone(),
            attr_outcome: attribution.outcome.clone(),
            outcomes: attribution.outcomes.len(),
            unknown_lsoa: 0,
            unknown_practice: 0,
            areas,
            cells,
            dims: [dims[0] as u32, dims[1] as u32, dims[2] as u32],
            tests: vec![0; measures * areas * cells],
            slots: Vec::new(),
            slot_keys: Vec::new(),
            cube: Vec::new(),
            rows_since_flush: 0,
            tests_total: vec![0; measures * areas * cells],
            cube_total: Vec::new(),
            year_start: (year_start.0, year_start.1),
            year_days: days_from_civil(year_start.0 as i64, year_start.1, 1),
        }
    }

    /// Moves the u32 counters into the u64 totals (before they could overflow, and at the end).
    fn flush(&mut self) {
        for (t, c) in self.tests_total.iter_mut().zip(self.tests.iter_mut()) {
            *t += u64::from(std::mem::take(c));
        }
        self.cube_total.resize(self.cube.len(), 0);
        for (t, c) in self.cube_total.iter_mut().zip(self.cube.iter_mut()) {
            *t += u64::from(std::mem::take(c));
        }
        self.rows_since_flush = 0;
    }

    /// Counts one record from its resolved values.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        provider: u32,
        practice: u32,
        lsoa: u32,
        sex: u32,
        age: u32,
        pair: u32,
        month: u32,
    ) {
        let lsoa_class = lsoa >> 8;
        let candidate = practice as usize * self.classes + lsoa_class as usize;
        let quintile = lsoa & 0xFF;
        let area = self.attr_area[candidate];
        let info = &self.pair_info[pair as usize];
        if area != NONE && sex != NONE && age != NONE && quintile != NO_QUINTILE {
            let cell = ((quintile * self.dims[1] + sex) * self.dims[2] + age) as usize;
            for &m in &info.measures {
                let at = (m as usize * self.areas + area as usize) * self.cells + cell;
                self.tests[at] += 1;
            }
        }
        self.unknown_lsoa += u64::from(lsoa_class == 1);
        self.unknown_practice += u64::from(practice == 1);
        let slot_at = provider as usize * self.outcomes + self.attr_outcome[candidate] as usize;
        let mut slot = self.slots[slot_at];
        if slot == UNRESOLVED {
            slot = self.slot_keys.len() as u32;
            self.slot_keys
                .push((provider, self.attr_outcome[candidate]));
            self.cube.resize(self.cube.len() + BLOCK, 0);
            self.slots[slot_at] = slot;
        }
        let bits = (sex == NONE) as usize
            | ((age == NONE) as usize) << 1
            | ((quintile == NO_QUINTILE) as usize) << 2;
        // Month innermost: a block's records of one kind share a cache line whatever their month.
        let at = slot as usize * BLOCK
            + ((info.class as usize * 8 + bits) * MONTH_SLOTS)
            + month as usize;
        self.cube[at] += 1;
    }

    /// Counts every row of a batch.
    fn count(
        &mut self,
        shared: &Mutex<Shared>,
        columns: &[KeyColumn; 8],
        rows: usize,
    ) -> std::result::Result<(), Stop> {
        if self.rows_since_flush + rows as u64 >= u64::from(u32::MAX) {
            self.flush();
        }
        self.rows_since_flush += rows as u64;
        for (c, column) in columns.iter().enumerate() {
            if let KeySource::Dict(values) = column.source {
                // A row group's own dictionary: its table is filled from the values met before.
                let (table, seen) = (&mut self.tables[c], &self.seen_text[c]);
                table.clear();
                table.reserve(values.len() + 1);
                table.push(self.null_value[c]);
                table.extend(
                    values
                        .values_iter()
                        .map(|v| seen.get(v).copied().unwrap_or(UNRESOLVED)),
                );
                self.mappings[c] = usize::MAX;
                continue;
            }
            let id = match column.source {
                KeySource::Text(m) => m as *const CategoricalMapping as usize,
                _ => 1,
            };
            if self.mappings[c] != id {
                // Codes of another dictionary: start the table afresh.
                self.tables[c].clear();
                self.mappings[c] = id;
            }
            if let KeySource::Text(m) = column.source {
                let wanted = m.num_cats_upper_bound() + 1;
                if self.tables[c].len() < wanted {
                    self.tables[c].resize(wanted, UNRESOLVED);
                }
            }
        }
        let keys: [&[u32]; 8] = std::array::from_fn(|c| &columns[c].keys[..rows]);
        let offsets: [usize; 8] = std::array::from_fn(|c| columns[c].offset);
        let mut row = 0;
        while row < rows {
            let fast = {
                let tables = &self.tables;
                let get = |c: usize| -> u32 {
                    tables[c]
                        .get(keys[c][row] as usize + offsets[c])
                        .copied()
                        .unwrap_or(UNRESOLVED)
                };
                let provider = get(PROVIDER);
                let practice = get(PRACTICE);
                let lsoa = get(LSOA);
                let sex = get(SEX);
                let age = get(AGE);
                let modality = get(MODALITY);
                let exam = get(EXAM);
                let month = get(DATE);
                let pair = self
                    .pair_rows
                    .get(modality as usize)
                    .and_then(|r| r.get(exam as usize))
                    .copied()
                    .unwrap_or(UNRESOLVED);
                let resolved = provider != UNRESOLVED
                    && practice != UNRESOLVED
                    && lsoa != UNRESOLVED
                    && sex != UNRESOLVED
                    && age != UNRESOLVED
                    && month != UNRESOLVED
                    && pair != UNRESOLVED
                    && (provider as usize + 1) * self.outcomes <= self.slots.len();
                resolved.then_some((provider, practice, lsoa, sex, age, pair, month))
            };
            match fast {
                Some((p, pr, l, s, a, pair, m)) => self.add(p, pr, l, s, a, pair, m),
                None => self.slow_row(shared, columns, row)?,
            }
            row += 1;
        }
        Ok(())
    }

    /// Resolves the values of one row the tables do not know yet, caches them, and counts the row.
    fn slow_row(
        &mut self,
        shared: &Mutex<Shared>,
        columns: &[KeyColumn; 8],
        row: usize,
    ) -> std::result::Result<(), Stop> {
        let mut shared = shared
            .lock()
            .map_err(|_| Stop::Failed(Error::Usage("a reader thread failed".into())))?;
        let mut values = [0u32; 8];
        for (c, column) in columns.iter().enumerate() {
            let index = column.index(row);
            if let Some(&v) = self.tables[c].get(index)
                && v != UNRESOLVED
            {
                values[c] = v;
                continue;
            }
            let value = match (c, &column.source) {
                (AGE, KeySource::Int { .. }) | (DATE, KeySource::Int { .. }) => {
                    let KeySource::Int { low, values } = &column.source else {
                        unreachable!()
                    };
                    let number = if column.keys[row] == u32::MAX {
                        values.get(row)
                    } else if index == 0 {
                        None
                    } else {
                        Some(low + index as i64 - 1)
                    };
                    if c == AGE {
                        shared.age(number)?
                    } else {
                        let days = number.ok_or(Stop::Invalid)?;
                        self.month_of_days(days)
                    }
                }
                _ => {
                    let text = match &column.source {
                        KeySource::Text(m) if index > 0 => m.cat_to_str(index as u32 - 1),
                        KeySource::Dict(values) if index > 0 && index <= values.len() => {
                            Some(values.value(index - 1))
                        }
                        _ => None,
                    };
                    match c {
                        PROVIDER => shared.provider(text)?,
                        PRACTICE => shared.practice(text),
                        LSOA => shared.lsoa(text)?,
                        SEX => shared.sex(text)?,
                        AGE => {
                            let age = match text {
                                None => None,
                                Some(t) => Some(parse_age(t).ok_or(Stop::Invalid)?),
                            };
                            shared.age(age.flatten())?
                        }
                        MODALITY => shared.modality(text),
                        EXAM => shared.exam(text),
                        _ => {
                            let days = text.and_then(parse_date).ok_or(Stop::Invalid)?;
                            self.month_of_days(days)
                        }
                    }
                }
            };
            values[c] = value;
            let cacheable =
                !matches!(column.source, KeySource::Int { .. }) || column.keys[row] != u32::MAX;
            if let KeySource::Dict(values) = column.source {
                if index == 0 {
                    self.null_value[c] = value;
                } else if index <= values.len() {
                    self.seen_text[c].insert(values.value(index - 1).into(), value);
                }
            }
            if cacheable {
                let table = &mut self.tables[c];
                if table.len() <= index {
                    table.resize(index + 1, UNRESOLVED);
                }
                table[index] = value;
            }
        }
        let (modality, exam) = (values[MODALITY], values[EXAM]);
        let pair = match self
            .pair_rows
            .get(modality as usize)
            .and_then(|r| r.get(exam as usize))
            .copied()
        {
            Some(p) if p != UNRESOLVED => p,
            _ => {
                let (pair, info) = shared.pair(modality, exam)?;
                if self.pair_rows.len() <= modality as usize {
                    self.pair_rows.resize(modality as usize + 1, Vec::new());
                }
                let r = &mut self.pair_rows[modality as usize];
                if r.len() <= exam as usize {
                    r.resize(exam as usize + 1, UNRESOLVED);
                }
                r[exam as usize] = pair;
                if self.pair_info.len() <= pair as usize {
                    self.pair_info
                        .resize(pair as usize + 1, PairInfo::default());
                }
                self.pair_info[pair as usize] = info;
                pair
            }
        };
        drop(shared);
        let provider = values[PROVIDER];
        let wanted = (provider as usize + 1) * self.outcomes;
        if self.slots.len() < wanted {
            self.slots.resize(wanted, UNRESOLVED);
        }
        self.add(
            provider,
            values[PRACTICE],
            values[LSOA],
            values[SEX],
            values[AGE],
            pair,
            values[DATE],
        );
        Ok(())
    }

    fn month_of_days(&self, days: i64) -> u32 {
        let (y, m, _) = civil_from_days(days);
        let months = (y - self.year_start.0 as i64) * 12 + (m as i64 - self.year_start.1 as i64);
        if (0..12).contains(&months) {
            months as u32
        } else {
            OUTSIDE_YEAR
        }
    }
}

/// `"47"` → 47 the way the polars reader casts text to a whole number (after trimming): a fast
/// path for plain digits, polars itself for anything else. `None` when the text is not a whole
/// number; `Some(None)` for blank text.
fn parse_age(text: &str) -> Option<Option<i64>> {
    if !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Some);
    }
    let df = df!("age" => [text]).ok()?;
    let out = df
        .lazy()
        .select([col("age")
            .str()
            .strip_chars(lit(NULL))
            .cast(DataType::Int64)
            .alias("age")])
        .collect()
        .ok()?;
    let value = out.column("age").ok()?.i64().ok()?.get(0);
    match value {
        Some(v) => Some(Some(v)),
        // Not a number: refused unless the text is empty (then it is a missing age).
        None if text.chars().count() == 0 => Some(None),
        None => None,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, as the polars reader parses it (`%Y-%m-%d`).
fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
        && (1..=12).contains(&m)
        && d >= 1
        && d <= days_in_month(y as i64, m)
    {
        return Some(days_from_civil(y as i64, m, d));
    }
    let df = df!("test_date" => [text]).ok()?;
    let out = df
        .lazy()
        .select([col("test_date")
            .str()
            .to_date(StrptimeOptions {
                format: Some("%Y-%m-%d".into()),
                strict: false,
                exact: true,
                cache: true,
            })
            .cast(DataType::Int32)
            .alias("d")])
        .collect()
        .ok()?;
    out.column("d").ok()?.i32().ok()?.get(0).map(i64::from)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// One column of a batch as read.
pub enum RawColumn {
    /// A Parquet dictionary column: `u32` keys into the row group's dictionary of text.
    Dict(Box<dyn Array>),
    Series(Series),
    Absent,
}

/// A batch's columns (text as dictionaries or categoricals, ages and dates as numbers), kept
/// alive while its keys are borrowed.
pub struct BatchColumns {
    rows: usize,
    columns: Vec<RawColumn>,
    date_is_days: bool,
    age_is_int: bool,
}

/// Keys of a dictionary column with nulls: null → 0, key k → k + 1 (branch-free).
fn shifted_keys(keys: &polars_arrow::array::PrimitiveArray<u32>) -> Vec<u32> {
    match keys.validity() {
        None => keys.values().iter().map(|&k| k + 1).collect(),
        Some(valid) => keys
            .values()
            .iter()
            .zip(valid.iter())
            .map(|(&k, ok)| (k + 1) * u32::from(ok))
            .collect(),
    }
}

fn as_dictionary(array: &dyn Array) -> Option<(&DictionaryArray<u32>, &Utf8ViewArray)> {
    let dict = array.as_any().downcast_ref::<DictionaryArray<u32>>()?;
    let values = dict.values().as_any().downcast_ref::<Utf8ViewArray>()?;
    Some((dict, values))
}

impl BatchColumns {
    /// Takes the pipeline's columns from a frame (absent `exam_code` allowed).
    pub fn new(df: &DataFrame) -> PolarsResult<BatchColumns> {
        let columns = COLUMNS
            .iter()
            .map(|name| match df.column(name) {
                Ok(c) => RawColumn::Series(c.as_materialized_series().clone()),
                Err(_) => RawColumn::Absent,
            })
            .collect();
        BatchColumns::from_raw(df.height(), columns)
    }

    /// Columns in [`COLUMNS`] order; text that is not a dictionary becomes categorical.
    pub fn from_raw(rows: usize, raw: Vec<RawColumn>) -> PolarsResult<BatchColumns> {
        let categorical = DataType::from_categories(Categories::global());
        let mut columns = Vec::with_capacity(8);
        let mut date_is_days = false;
        let mut age_is_int = false;
        for (c, column) in raw.into_iter().enumerate() {
            let s = match column {
                RawColumn::Dict(a) if as_dictionary(a.as_ref()).is_some() && c != AGE => {
                    columns.push(RawColumn::Dict(a));
                    continue;
                }
                RawColumn::Dict(a) => Series::from_arrow(COLUMNS[c].into(), a)?,
                RawColumn::Absent => {
                    columns.push(RawColumn::Absent);
                    continue;
                }
                RawColumn::Series(s) => s,
            };
            let s = match s.dtype() {
                DataType::Date if c == DATE => {
                    date_is_days = true;
                    s.cast(&DataType::Int64)?
                }
                dt if c == AGE && dt.is_integer() => {
                    age_is_int = true;
                    s.cast(&DataType::Int64)?
                }
                DataType::Categorical(..) if s.cat32().is_ok() => s,
                DataType::String => s.cast(&categorical)?,
                _ => s.cast(&DataType::String)?.cast(&categorical)?,
            };
            columns.push(RawColumn::Series(s));
        }
        Ok(BatchColumns {
            rows,
            columns,
            date_is_days,
            age_is_int,
        })
    }

    fn key_columns(&self, year_days: i64) -> PolarsResult<[KeyColumn<'_>; 8]> {
        let mut out = Vec::with_capacity(8);
        for (c, column) in self.columns.iter().enumerate() {
            let column = match column {
                RawColumn::Absent => KeyColumn {
                    keys: Cow::Owned(vec![0; self.rows]),
                    offset: 0,
                    source: KeySource::Absent,
                },
                RawColumn::Dict(a) => {
                    let (dict, values) = as_dictionary(a.as_ref())
                        .ok_or_else(|| polars_err!(ComputeError: "not a dictionary"))?;
                    let keys = dict.keys();
                    if keys.null_count() == 0 {
                        KeyColumn {
                            keys: Cow::Borrowed(keys.values().as_slice()),
                            offset: 1,
                            source: KeySource::Dict(values),
                        }
                    } else {
                        KeyColumn {
                            keys: Cow::Owned(shifted_keys(keys)),
                            offset: 0,
                            source: KeySource::Dict(values),
                        }
                    }
                }
                RawColumn::Series(s)
                    if (c == AGE && self.age_is_int) || (c == DATE && self.date_is_days) =>
                {
                    let low = if c == DATE {
                        year_days - INT_WINDOW / 2
                    } else {
                        0
                    };
                    let values = s.i64()?;
                    let key = |v: i64| {
                        if (low..low + INT_WINDOW).contains(&v) {
                            (v - low + 1) as u32
                        } else {
                            u32::MAX
                        }
                    };
                    let keys = match values.cont_slice() {
                        Ok(all) => all.iter().map(|&v| key(v)).collect(),
                        Err(_) => values.iter().map(|v| v.map_or(0, key)).collect(),
                    };
                    KeyColumn {
                        keys: Cow::Owned(keys),
                        offset: 0,
                        source: KeySource::Int { low, values },
                    }
                }
                RawColumn::Series(s) => {
                    let cat = s.cat32()?;
                    let physical = cat.physical();
                    let mapping = cat.get_mapping().as_ref();
                    match physical.cont_slice() {
                        // No nulls, one chunk: the raw codes are the keys (table index code + 1).
                        Ok(codes) => KeyColumn {
                            keys: Cow::Borrowed(codes),
                            offset: 1,
                            source: KeySource::Text(mapping),
                        },
                        Err(_) => KeyColumn {
                            keys: Cow::Owned(
                                physical.iter().map(|v| v.map_or(0, |v| v + 1)).collect(),
                            ),
                            offset: 0,
                            source: KeySource::Text(mapping),
                        },
                    }
                }
            };
            out.push(column);
        }
        out.try_into()
            .map_err(|_| polars_err!(ComputeError: "expected 8 columns"))
    }
}

/// Everything the pass found, after the workers' counters are summed.
pub struct PassResult {
    pub records: u64,
    /// Per measure × area × cell, as `StratifiedCounts::tests`.
    pub tests: Vec<u64>,
    pub cells: Vec<QualityCell>,
    /// Provider codes in the order `cells` refer to them.
    pub providers: Vec<String>,
    pub derivation_input: DerivationInput,
    pub derive_seconds: f64,
    pub derive_cpu_seconds: f64,
    pub warnings: Vec<String>,
}

/// The pass: workers pull batches from `next_batch` (called concurrently) and count them.
pub struct Pass<'a> {
    shared: Mutex<Shared<'a>>,
    attribution: &'a AttributionTable,
    measures: usize,
    dims: [usize; 3],
    year_start: (i32, u32, u32),
}

impl<'a> Pass<'a> {
    pub fn new(
        lookups: &'a Lookups<'a>,
        derive: &'a DeriveFn<'a>,
        attribution: &'a AttributionTable,
        measures: usize,
        dims: [usize; 3],
        year_start: (i32, u32, u32),
    ) -> Pass<'a> {
        Pass {
            shared: Mutex::new(Shared {
                lookups,
                derive,
                providers: Dictionary::default(),
                provider_first_raw: Vec::new(),
                sexes: Dictionary::default(),
                ages: Dictionary::default(),
                deciles: Dictionary::default(),
                modalities: Dictionary::default(),
                exams: Dictionary::default(),
                pairs: Dictionary::default(),
                derived: Derived::default(),
                derived_values: 0,
                derive_seconds: 0.0,
                derive_cpu_seconds: 0.0,
                unknown_lsoas: BTreeSet::new(),
                unknown_practices: BTreeSet::new(),
            }),
            attribution,
            measures,
            dims,
            year_start,
        }
    }

    pub fn tally(&self) -> Tally {
        Tally::new(self.attribution, self.measures, self.dims, self.year_start)
    }

    /// Counts one batch (a frame with the pipeline's columns) into a worker's tally.
    pub fn count(&self, tally: &mut Tally, df: &DataFrame) -> std::result::Result<(), Stop> {
        let columns =
            BatchColumns::new(df).map_err(|e| Stop::Failed(Error::polars("activity", e)))?;
        self.count_columns(tally, &columns)
    }

    /// Counts one batch of columns into a worker's tally.
    pub fn count_columns(
        &self,
        tally: &mut Tally,
        columns: &BatchColumns,
    ) -> std::result::Result<(), Stop> {
        let keys = columns
            .key_columns(tally.year_days)
            .map_err(|e| Stop::Failed(Error::polars("activity", e)))?;
        tally.count(&self.shared, &keys, columns.rows)
    }

    /// Runs `workers` threads, each calling `next_batch(worker)` until it returns `None`.
    pub fn run_parallel<F>(
        &self,
        workers: usize,
        next_batch: F,
    ) -> std::result::Result<Vec<Tally>, Stop>
    where
        F: Fn() -> Option<std::result::Result<BatchColumns, Stop>> + Sync,
    {
        let failed = AtomicBool::new(false);
        let results: Vec<std::result::Result<Tally, Stop>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.max(1))
                .map(|_| {
                    scope.spawn(|| {
                        let mut tally = self.tally();
                        while !failed.load(Ordering::Relaxed) {
                            let Some(batch) = next_batch() else { break };
                            let outcome =
                                batch.and_then(|columns| self.count_columns(&mut tally, &columns));
                            if let Err(e) = outcome {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        Ok(tally)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Stop::Failed(Error::Usage(
                            "a reader thread panicked".into(),
                        )))
                    })
                })
                .collect()
        });
        let mut tallies = Vec::new();
        let mut invalid = false;
        for r in results {
            match r {
                Ok(t) => tallies.push(t),
                Err(Stop::Invalid) => invalid = true,
                Err(e) => return Err(e),
            }
        }
        if invalid {
            return Err(Stop::Invalid);
        }
        Ok(tallies)
    }

    /// Sums the workers' counters and builds the quality cells and warnings.
    pub fn finish(self, mut tallies: Vec<Tally>) -> Result<PassResult> {
        let shared = self
            .shared
            .into_inner()
            .map_err(|_| Error::Usage("a reader thread failed".into()))?;
        let mut tests = vec![0u64; tallies.first().map_or(0, |t| t.tests.len())];
        // Provider order: by smallest raw code, as sorting the grouped records gave it.
        let mut order: Vec<usize> = (0..shared.providers.values.len()).collect();
        order.sort_by(|&a, &b| shared.provider_first_raw[a].cmp(&shared.provider_first_raw[b]));
        let mut rank = vec![0u32; order.len()];
        for (r, &p) in order.iter().enumerate() {
            rank[p] = r as u32;
        }
        type Key = (
            u32,
            Option<u32>,
            Route,
            bool,
            bool,
            bool,
            bool,
            bool,
            u8,
            bool,
        );
        let mut cube: BTreeMap<Key, u64> = BTreeMap::new();
        let (mut records, mut unknown_sex, mut unknown_age, mut unknown_lsoa, mut unknown_practice) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let (mut unknown_modality, mut outside_year) = (0u64, 0u64);
        for tally in tallies.iter_mut() {
            tally.flush();
            for (t, v) in tests.iter_mut().zip(&tally.tests_total) {
                *t += v;
            }
            unknown_lsoa += tally.unknown_lsoa;
            unknown_practice += tally.unknown_practice;
            for (slot, &(provider, outcome)) in tally.slot_keys.iter().enumerate() {
                let block = &tally.cube_total[slot * BLOCK..(slot + 1) * BLOCK];
                let (area, route, has_practice, has_lsoa) =
                    self.attribution.outcomes[outcome as usize];
                for (i, &n) in block.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let month = i % MONTH_SLOTS;
                    let bits = (i / MONTH_SLOTS) & 7;
                    let pair_class = i / MONTH_SLOTS / 8;
                    let (missing_sex, missing_age, missing_imd) =
                        (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
                    records += n;
                    unknown_sex += n * missing_sex as u64;
                    unknown_age += n * missing_age as u64;
                    unknown_modality += n * (pair_class == 2) as u64;
                    outside_year += n * (month == OUTSIDE_YEAR as usize) as u64;
                    let key: Key = (
                        rank[provider as usize],
                        area,
                        route,
                        has_practice,
                        has_lsoa,
                        missing_age,
                        missing_sex,
                        missing_imd,
                        if month == OUTSIDE_YEAR as usize {
                            u8::MAX
                        } else {
                            month as u8
                        },
                        pair_class == 0,
                    );
                    *cube.entry(key).or_insert(0) += n;
                }
            }
        }
        let cells = cube
            .into_iter()
            .map(|(k, n)| QualityCell {
                provider: k.0,
                area: k.1,
                route: k.2,
                has_practice: k.3,
                has_lsoa: k.4,
                missing_age: k.5,
                missing_sex: k.6,
                missing_imd: k.7,
                month: k.8,
                standard_modality: k.9,
                tests: n as f64,
            })
            .collect();
        let providers = order
            .iter()
            .map(|&p| shared.providers.values[p].clone())
            .collect();

        let total = records as f64;
        let mut warnings = Vec::new();
        let unknown_sex_values: BTreeSet<String> = shared
            .sexes
            .values
            .iter()
            .zip(&shared.derived.sex)
            .filter(|(_, d)| d.is_none())
            .map(|(v, _)| v.clone().unwrap_or_else(|| "(empty)".into()))
            .collect();
        let unknown_age_values: BTreeSet<String> = shared
            .ages
            .values
            .iter()
            .zip(&shared.derived.age_band)
            .filter(|(_, d)| d.is_none())
            .map(|(v, _)| v.map(|a| a.to_string()).unwrap_or_else(|| "(empty)".into()))
            .collect();
        for (records, values, what, consequence) in [
            (
                unknown_sex,
                &unknown_sex_values,
                "a sex code the derivation does not recognise",
                "excluded from rates",
            ),
            (
                unknown_age,
                &unknown_age_values,
                "an age the derivation puts in no age band",
                "excluded from rates",
            ),
            (
                unknown_lsoa,
                &shared.unknown_lsoas,
                "an LSOA code not in the LSOA lookup",
                "no area or IMD quintile from their LSOA",
            ),
            (
                unknown_practice,
                &shared.unknown_practices,
                "a practice code in neither the practice lookup nor the non-English list",
                "attributed as the attribution method treats unknown practices",
            ),
        ] {
            if let Some(w) =
                super::unknown_values_warning(records as f64, values, total, what, consequence)
            {
                warnings.push(w);
            }
        }
        if unknown_modality > 0 {
            warnings.push(format!(
                "{} records have a modality outside the recipe's keys; counted in no measure",
                unknown_modality as f64
            ));
        }
        if outside_year > 0 {
            warnings.push(format!(
                "{} records are dated outside the reporting year; counted in rates, but left out of the data-quality stage, whose checks are by month of the year",
                outside_year as f64
            ));
        }
        Ok(PassResult {
            records,
            tests,
            cells,
            providers,
            derivation_input: shared.derivation_input(),
            derive_seconds: shared.derive_seconds,
            derive_cpu_seconds: shared.derive_cpu_seconds,
            warnings,
        })
    }
}

/// Batches of a Parquet file: one row group each, only the pipeline's columns, text columns
/// kept as the file's dictionaries (keys + one dictionary per row group) when they are stored so.
pub struct ParquetBatches {
    file: std::fs::File,
    metadata: Arc<polars::io::parquet::read::FileMetadata>,
    schema: Arc<ArrowSchema>,
    next: AtomicUsize,
}

impl ParquetBatches {
    pub fn open(path: &Path) -> PolarsResult<ParquetBatches> {
        let file = std::fs::File::open(path)?;
        let mut reader = ParquetReader::new(file.try_clone()?);
        let metadata = reader.get_metadata()?.clone();
        let schema = reader.schema()?;
        Ok(ParquetBatches {
            file,
            metadata,
            schema,
            next: AtomicUsize::new(0),
        })
    }

    pub fn row_groups(&self) -> usize {
        self.metadata.row_groups.len()
    }

    /// The next row group, or `None` when all are taken; safe to call from several threads.
    pub fn next_batch(&self) -> Option<PolarsResult<BatchColumns>> {
        let g = self.next.fetch_add(1, Ordering::Relaxed);
        let group = self.metadata.row_groups.get(g)?;
        Some((|| {
            use std::os::unix::fs::FileExt;
            let rows = group.num_rows();
            let mut columns = Vec::with_capacity(COLUMNS.len());
            for name in COLUMNS {
                let (Some(field), Some(parts)) =
                    (self.schema.get(name), group.columns_under_root_iter(name))
                else {
                    columns.push(RawColumn::Absent);
                    continue;
                };
                let parts: Vec<_> = parts.collect();
                let decode = |field: ArrowField| -> PolarsResult<Vec<ArrayRef>> {
                    let mut chunks = Vec::with_capacity(parts.len());
                    for part in &parts {
                        let range = part.byte_range();
                        let mut bytes = vec![0u8; (range.end - range.start) as usize];
                        self.file.read_exact_at(&mut bytes, range.start)?;
                        chunks.push((*part, polars_buffer::Buffer::from_vec(bytes)));
                    }
                    polars::io::parquet::read::_internal::to_deserializer(chunks, field, None)
                        .map(|(arrays, _)| arrays)
                };
                // Text stored with dictionary pages (as most writers do) is decoded as its
                // dictionary and keys, whatever type the file's schema gives it; a column chunk
                // with plain pages is decoded as text.
                let text = matches!(
                    field.dtype(),
                    ArrowDataType::Utf8View | ArrowDataType::Utf8 | ArrowDataType::LargeUtf8
                ) && name != "age";
                let as_dictionary_field = || {
                    DataType::from_categories(Categories::global())
                        .to_arrow_field(field.name.clone(), CompatLevel::newest())
                };
                let dictionary = text
                    .then(|| {
                        let field = as_dictionary_field();
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            decode(field.clone())
                        }))
                        .ok()
                        .and_then(Result::ok)
                        .map(|arrays| (field, arrays))
                    })
                    .flatten();
                let (used, mut arrays) = match dictionary {
                    Some(decoded) => decoded,
                    None => (field.clone(), decode(field.clone())?),
                };
                let column = if arrays.len() == 1 && as_dictionary(arrays[0].as_ref()).is_some() {
                    RawColumn::Dict(arrays.remove(0))
                } else {
                    RawColumn::Series(Series::try_from((&used, arrays))?)
                };
                columns.push(column);
            }
            BatchColumns::from_raw(rows, columns)
        })())
    }
}
