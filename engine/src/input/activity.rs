//! Record-level activity counted in one streaming pass.
//!
//! Every record-level entry (Parquet, CSV, the synthetic year) hands the pass batches through the
//! [`Batch`] trait: per column, the raw values of its rows (text, text as dictionary keys, whole
//! numbers, floats). Each worker thread keeps, per column, a cache from raw value to resolved
//! value (practice → practice class, LSOA → LSOA class and IMD quintile, sex/age through the
//! derivation plugin, date → month, provider/modality/exam code → an id). A value the cache does
//! not know is resolved under the shared lock together with the batch's other new values, and the
//! derivation plugin is called once per batch with only the values it has not seen: each distinct
//! value is derived once, whatever the order of the records.
//!
//! Invariants:
//! - A resolved value is a function of the raw value alone (never of a batch, a thread or the
//!   order values were met), so caches may be filled in any order and every worker agrees.
//! - Counts are integers summed over workers at the end: the result does not depend on how
//!   batches were shared among threads.
//! - A refused value (no provider, no or a malformed date, an age that is not a whole number, text
//!   that is not UTF-8) stops the pass; of all refused values met, the earliest in the file is
//!   reported, and every batch before it was counted to the end, so the report does not depend on
//!   the thread count.
//!
//! The counting loop indexes small tables and increments dense counters: `StratifiedCounts`
//! (measure × area × stratum cell) and a quality cube (provider × attribution outcome × month ×
//! modality class × missing sex/age/IMD).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use strata_api::{
    AttributionCandidate, DerivationInput, Derived, PracticeLookup, QualityCell, Route,
};

pub mod provider_months;

use super::{Dictionary, LsoaInfo};
use crate::dates;
use crate::error::{Error, Result};

/// The caches' maps: hashbrown with foldhash's quality hasher (what polars' `PlHashMap` was, so the
/// counting kernel's lookups cost the same).
type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::quality::RandomState>;
type FastSet<V> = hashbrown::HashSet<V, foldhash::quality::RandomState>;

/// Not (yet) in a worker's table.
const UNRESOLVED: u32 = u32::MAX;
/// Resolved to "no value" (e.g. a sex code the rules do not know).
const NONE: u32 = u32::MAX - 1;
/// A value the reader refuses; the pass stops at the first row holding one.
pub const INVALID: u32 = u32::MAX - 2;
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
/// A float that is not a whole number, among whole numbers: refused as an age or a date.
const NOT_WHOLE: i64 = i64::MIN;
/// Integer values (ages, dates as days) are cached in a window of this many values.
const INT_WINDOW: i64 = 4096;

/// The columns a reader can hand a pass, in kernel order: the stratified pass reads the first
/// [`STRATIFIED_COLUMNS`]; the provider × month pass (`provider_months`) reads the provider, the
/// modality and the three dates.
pub const COLUMNS: [&str; 10] = [
    "provider_code",
    "gp_practice_code",
    "lsoa11",
    "sex",
    "age",
    "modality",
    "exam_code",
    "test_date",
    "request_date",
    "report_date",
];
/// How many of [`COLUMNS`] the stratified pass reads (the first ones).
pub const STRATIFIED_COLUMNS: usize = 8;
pub const PROVIDER: usize = 0;
pub const PRACTICE: usize = 1;
pub const LSOA: usize = 2;
pub const SEX: usize = 3;
pub const AGE: usize = 4;
pub const MODALITY: usize = 5;
pub const EXAM: usize = 6;
pub const DATE: usize = 7;
pub const REQUEST: usize = 8;
pub const REPORT: usize = 9;

/// Whether column `c` holds dates (read from date, timestamp or `YYYY-MM-DD` text columns).
pub fn is_date(c: usize) -> bool {
    matches!(c, DATE | REQUEST | REPORT)
}

/// The reference lookups the pass resolves codes against.
pub struct Lookups<'a> {
    pub practices: &'a HashMap<String, u32>,
    pub non_english: &'a HashSet<String>,
    pub lsoas: &'a HashMap<String, LsoaInfo>,
    pub areas: usize,
    /// The recipe's value map of each column, by [`COLUMNS`] index (`input::mapping`).
    pub value_maps: [Option<&'a super::mapping::ValueMap>; COLUMNS.len()],
}

/// (area, route, has practice, has LSOA) of an attribution outcome: what the quality cube keeps.
type Outcome = (Option<u32>, Route, bool, bool);

/// Attribution of the practice class × LSOA class combinations the records hold, each handed to
/// the attribution plugin once, when first met: linear in the data, where tabling every practice
/// class × LSOA class up front grew with the square of the areas.
#[derive(Default)]
struct Attributions {
    /// Distinct candidates handed to the plugin, by (practice class, LSOA area slot).
    candidates: Dictionary<(u32, u32)>,
    /// The plugin's answer for each candidate, index for index.
    attributed: Vec<strata_api::Attribution>,
    outcomes: Dictionary<Outcome>,
    seconds: f64,
    cpu_seconds: f64,
}

/// The attribution stage's record of the pass: the distinct candidates it attributed and the
/// time the plugin took over them.
pub struct AttributionRecord {
    pub candidates: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
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

/// The attribution candidate's LSOA slot of an LSOA class: 0 no area, 1 + area.
fn lsoa_slot(class: u32) -> u32 {
    lsoa_area(class).map_or(0, |a| a + 1)
}

/// What stopped a pass early.
#[derive(Debug)]
pub enum Stop {
    /// A value the reader refuses, at this row of the batch and this column ([`COLUMNS`] index).
    Invalid {
        row: usize,
        column: usize,
        value: Option<Vec<u8>>,
    },
    /// A record the reader cannot split into the header's fields, at a row of the unit: the rule
    /// broken and a hint.
    Malformed(String, &'static str),
    Failed(Box<Error>),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(Box::new(e))
    }
}

/// A stop with where it happened: the unit of work (row group, block) and the row in it.
#[derive(Debug)]
pub struct Located {
    pub unit: usize,
    pub row: usize,
    pub stop: Stop,
}

/// Why a value is refused, for the error message: (rule, hint).
pub fn refusal(column: usize, raw: Option<&[u8]>) -> (String, &'static str) {
    if let Some(bytes) = raw
        && let Err(e) = std::str::from_utf8(bytes)
    {
        let byte = bytes[e.valid_up_to()];
        return (
            format!("not UTF-8 text (byte 0x{byte:02X})"),
            "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
        );
    }
    let seen = match raw.map(String::from_utf8_lossy) {
        Some(text) if !text.trim().is_empty() => format!("`{}`", shorten(&text)),
        _ => "an empty value".to_string(),
    };
    let empty = raw.is_none_or(|b| b.trim_ascii().is_empty());
    match column {
        c if is_date(c) => (
            format!("not a date in YYYY-MM-DD form (found {seen})"),
            "dates are written like 2023-04-01",
        ),
        AGE => (
            format!("not a whole number of years (found {seen})"),
            "age is years at test, e.g. 47",
        ),
        PROVIDER if empty => (
            "empty value in a required column".to_string(),
            "every record names its provider",
        ),
        // Only the provider × month pass refuses a provider it has a code for.
        PROVIDER => (
            format!("provider {seen} is not in the recipe's provider_regions file"),
            "add the provider with its NHS region to provider_regions, or fix the code",
        ),
        // Only the provider × month pass refuses a modality: it counts SPEC §3's keys.
        MODALITY => (
            format!(
                "{seen} is not a modality key (one of {})",
                crate::periods::MODALITIES.join(", ")
            ),
            "map the extract's modality names to SPEC §3's keys (inputs.mapping values.modality)",
        ),
        _ => (format!("value refused (found {seen})"), "see SPEC §3"),
    }
}

/// At most 60 characters of a value, for messages.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(60).collect::<String>())
    }
}

type DeriveFn<'a> = dyn Fn(&DerivationInput) -> Result<Derived> + Sync + 'a;
/// The attribution plugin's call, one answer per candidate (checked by the caller).
pub type AttributeFn<'a> =
    dyn Fn(&[AttributionCandidate]) -> Result<Vec<strata_api::Attribution>> + Sync + 'a;

/// Tables shared by the workers: every distinct value met, its derived result, the values
/// reported in warnings.
struct Shared<'a> {
    lookups: &'a Lookups<'a>,
    derive: &'a DeriveFn<'a>,
    attribute: &'a AttributeFn<'a>,
    attributions: Attributions,
    exam_code_list: Vec<(String, String)>,
    providers: Dictionary<String>,
    /// Smallest raw (untrimmed) code of each provider: the published order sorts raw codes.
    provider_first_raw: Vec<String>,
    sexes: Dictionary<Option<String>>,
    ages: Dictionary<Option<i64>>,
    deciles: Dictionary<Option<u8>>,
    modalities: Dictionary<String>,
    exams: Dictionary<Option<String>>,
    pairs: Dictionary<(u32, u32)>,
    /// Derived results of every value in the dictionaries above, index for index.
    derived: Derived,
    derive_seconds: f64,
    derive_cpu_seconds: f64,
    unknown_lsoas: BTreeSet<String>,
    unknown_practices: BTreeSet<String>,
    /// The first day of each month of the reporting year, and of the month after it.
    month_starts: [i64; 13],
    /// The provider × month pass's providers (`None`: the stratified pass): it refuses a
    /// provider not among them, reads modalities as SPEC §3's keys and dates as days.
    known_providers: Option<HashSet<String>>,
}

/// Offset of a day count in a resolved date of the provider × month pass (days since
/// 1970-01-01 within ±100,000,000, well clear of the reserved values at the top of `u32`).
const DAY_BIAS: i64 = 1 << 31;

/// A day count as the provider × month pass resolves it.
fn day_code(days: i64) -> u32 {
    if (-100_000_000..100_000_000).contains(&days) {
        (days + DAY_BIAS) as u32
    } else {
        INVALID
    }
}

/// The day count of a resolved date of the provider × month pass.
fn code_days(code: u32) -> i64 {
    i64::from(code) - DAY_BIAS
}

impl<'a> Shared<'a> {
    fn new(
        lookups: &'a Lookups<'a>,
        derive: &'a DeriveFn<'a>,
        attribute: &'a AttributeFn<'a>,
        exam_code_list: Vec<(String, String)>,
        month_starts: [i64; 13],
        known_providers: Option<HashSet<String>>,
    ) -> Shared<'a> {
        Shared {
            lookups,
            derive,
            attribute,
            attributions: Attributions::default(),
            exam_code_list,
            providers: Dictionary::default(),
            provider_first_raw: Vec::new(),
            sexes: Dictionary::default(),
            ages: Dictionary::default(),
            deciles: Dictionary::default(),
            modalities: Dictionary::default(),
            exams: Dictionary::default(),
            pairs: Dictionary::default(),
            derived: Derived::default(),
            derive_seconds: 0.0,
            derive_cpu_seconds: 0.0,
            unknown_lsoas: BTreeSet::new(),
            unknown_practices: BTreeSet::new(),
            month_starts,
            known_providers,
        }
    }
}

fn trimmed(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|v| !v.is_empty())
}

/// What a text value stands for before derivation.
enum Pending {
    Done(u32),
    Lsoa { class: u32, decile: usize },
    Sex(usize),
    Age(usize),
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
                .map(|&(m, e)| self.pair_text(m, e))
                .collect(),
            exam_code_list: Vec::new(),
        }
    }

    fn pair_text(&self, modality: u32, exam: u32) -> (String, Option<String>) {
        (
            self.modalities.values[modality as usize].clone(),
            self.exams.values[exam as usize].clone(),
        )
    }

    /// Attributes (practice class, LSOA class) combinations: those not met before in one call of
    /// the attribution plugin. Answers each combination's (area or NONE, outcome id).
    fn attribute_new(&mut self, combinations: &[(u32, u32)]) -> Result<Vec<(u32, u32)>> {
        let at = &mut self.attributions;
        let first_new = at.candidates.values.len();
        let ids: Vec<usize> = combinations
            .iter()
            .map(|&(practice, lsoa)| at.candidates.intern(&(practice, lsoa_slot(lsoa))))
            .collect();
        if at.candidates.values.len() > first_new {
            let new: Vec<AttributionCandidate> = at.candidates.values[first_new..]
                .iter()
                .map(|&(practice, slot)| AttributionCandidate {
                    practice: practice_lookup(practice),
                    lsoa_area: slot.checked_sub(1),
                })
                .collect();
            let (start, cpu) = (Instant::now(), crate::metrics::cpu_seconds());
            let answers = (self.attribute)(&new)?;
            at.seconds += start.elapsed().as_secs_f64();
            at.cpu_seconds += crate::metrics::cpu_seconds() - cpu;
            at.attributed.extend(answers);
        }
        Ok(combinations
            .iter()
            .zip(ids)
            .map(|(&(practice, lsoa), id)| {
                let a = at.attributed[id];
                let outcome = at
                    .outcomes
                    .intern(&(a.area, a.route, practice != 0, lsoa != 0));
                (a.area.unwrap_or(NONE), outcome as u32)
            })
            .collect())
    }

    /// Derives the values met since the last call, in one call of the derivation plugin.
    fn derive_new(&mut self) -> Result<()> {
        let d = &self.derived;
        let (s0, a0, i0, p0) = (
            d.sex.len(),
            d.age_band.len(),
            d.imd_quintile.len(),
            d.measures.len(),
        );
        if s0 == self.sexes.values.len()
            && a0 == self.ages.values.len()
            && i0 == self.deciles.values.len()
            && p0 == self.pairs.values.len()
        {
            return Ok(());
        }
        let input = DerivationInput {
            sex_values: self.sexes.values[s0..].to_vec(),
            ages: self.ages.values[a0..].to_vec(),
            imd_deciles: self.deciles.values[i0..].to_vec(),
            modality_exams: self.pairs.values[p0..]
                .iter()
                .map(|&(m, e)| self.pair_text(m, e))
                .collect(),
            // Moved in and back out: the list is not copied per call.
            exam_code_list: std::mem::take(&mut self.exam_code_list),
        };
        let (start, cpu) = (Instant::now(), crate::metrics::cpu_seconds());
        let outcome = (self.derive)(&input);
        self.exam_code_list = input.exam_code_list;
        let mut new = outcome?;
        self.derive_seconds += start.elapsed().as_secs_f64();
        self.derive_cpu_seconds += crate::metrics::cpu_seconds() - cpu;
        // A missing flag counts as an unknown modality, as it always has.
        new.unknown_modality.resize(new.measures.len(), true);
        let d = &mut self.derived;
        d.sex.extend(new.sex);
        d.age_band.extend(new.age_band);
        d.imd_quintile.extend(new.imd_quintile);
        d.measures.extend(new.measures);
        d.unknown_modality.extend(new.unknown_modality);
        Ok(())
    }

    fn provider(&mut self, raw: &str) -> u32 {
        let Some(code) = trimmed(Some(raw)) else {
            return INVALID;
        };
        if let Some(known) = &self.known_providers
            && !known.contains(code)
        {
            return INVALID;
        }
        let id = self.providers.intern(&code.to_string());
        if id == self.provider_first_raw.len() {
            self.provider_first_raw.push(raw.to_string());
        } else if raw < self.provider_first_raw[id].as_str() {
            self.provider_first_raw[id] = raw.to_string();
        }
        id as u32
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

    /// LSOA class and the IMD decile's index (for the quintile after derivation).
    fn lsoa(&mut self, raw: Option<&str>) -> Pending {
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
        Pending::Lsoa {
            class,
            decile: self.deciles.intern(&decile),
        }
    }

    fn month_of_days(&self, days: i64) -> u32 {
        // Beyond ±270,000 years a day count is no date.
        if !(-100_000_000..100_000_000).contains(&days) {
            return INVALID;
        }
        dates::month_index(&self.month_starts, days).unwrap_or(OUTSIDE_YEAR)
    }

    /// One text value of `column`, up to its derivation.
    fn pending_text(&mut self, column: usize, raw: Option<&[u8]>) -> Pending {
        let text = match raw.map(std::str::from_utf8) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => return Pending::Done(INVALID),
        };
        // The recipe's value map translates the trimmed value before any rule sees it.
        let lookups = self.lookups;
        let text = match (lookups.value_maps[column], trimmed(text)) {
            (Some(map), Some(value)) => Some(map.apply(value)),
            _ => text,
        };
        match column {
            PROVIDER => Pending::Done(text.map_or(INVALID, |t| self.provider(t))),
            PRACTICE => Pending::Done(self.practice(text)),
            LSOA => self.lsoa(text),
            SEX => Pending::Sex(self.sexes.intern(&trimmed(text).map(str::to_string))),
            AGE => match trimmed(text).map(parse_whole_number) {
                None => Pending::Age(self.ages.intern(&None)),
                Some(Some(age)) => Pending::Age(self.ages.intern(&Some(age))),
                Some(None) => Pending::Done(INVALID),
            },
            MODALITY if self.known_providers.is_some() => Pending::Done(
                trimmed(text)
                    .and_then(|t| crate::periods::MODALITIES.iter().position(|m| *m == t))
                    .map_or(INVALID, |m| m as u32),
            ),
            MODALITY => Pending::Done(
                self.modalities
                    .intern(&trimmed(text).unwrap_or_default().to_string()) as u32,
            ),
            EXAM => Pending::Done(self.exams.intern(&trimmed(text).map(str::to_string)) as u32),
            // An empty request or report date is no date (they are optional); a malformed one
            // is refused like a test date.
            REQUEST | REPORT if trimmed(text).is_none() => Pending::Done(NONE),
            c => Pending::Done(
                trimmed(text)
                    .and_then(dates::parse_extract_date)
                    .map_or(INVALID, |days| self.date_of_days(c, days)),
            ),
        }
    }

    /// A date as the pass resolves it: the month of the reporting year (stratified pass), or
    /// the day (provider × month pass).
    fn date_of_days(&self, column: usize, days: i64) -> u32 {
        if self.known_providers.is_some() {
            day_code(days)
        } else if column == DATE {
            self.month_of_days(days)
        } else {
            NONE
        }
    }

    /// One whole-number value of `column` (ages in years, dates as days since 1970-01-01; other
    /// columns read it as its decimal text).
    fn pending_int(&mut self, column: usize, value: Option<i64>) -> Pending {
        match column {
            _ if value == Some(NOT_WHOLE) && (column == AGE || is_date(column)) => {
                Pending::Done(INVALID)
            }
            AGE => Pending::Age(self.ages.intern(&value)),
            DATE => Pending::Done(value.map_or(INVALID, |days| self.date_of_days(DATE, days))),
            REQUEST | REPORT => {
                Pending::Done(value.map_or(NONE, |days| self.date_of_days(column, days)))
            }
            _ => {
                let text = value.map(|v| v.to_string());
                self.pending_text(column, text.as_deref().map(str::as_bytes))
            }
        }
    }

    fn finish_pending(&self, p: Pending) -> u32 {
        let index = |v: Option<u8>| v.map(u32::from).unwrap_or(NONE);
        match p {
            Pending::Done(v) => v,
            Pending::Lsoa { class, decile } => {
                let quintile = self.derived.imd_quintile[decile]
                    .map(u32::from)
                    .unwrap_or(NO_QUINTILE);
                class * 256 + quintile.min(NO_QUINTILE)
            }
            Pending::Sex(id) => index(self.derived.sex[id]),
            Pending::Age(id) => index(self.derived.age_band[id]),
        }
    }

    /// Resolves values met for the first time (text or whole numbers), deriving the new ones once.
    fn resolve<T>(
        &mut self,
        values: &[T],
        pending: impl Fn(&mut Self, &T) -> Pending,
    ) -> Result<Vec<u32>> {
        let pending: Vec<Pending> = values.iter().map(|v| pending(self, v)).collect();
        self.derive_new()?;
        Ok(pending
            .into_iter()
            .map(|p| self.finish_pending(p))
            .collect())
    }

    fn resolve_pairs(&mut self, pairs: &[(u32, u32)]) -> Result<Vec<(u32, PairInfo)>> {
        let ids: Vec<usize> = pairs.iter().map(|p| self.pairs.intern(p)).collect();
        self.derive_new()?;
        Ok(ids
            .into_iter()
            .map(|id| (id as u32, self.pair_info(id)))
            .collect())
    }

    fn pair_info(&self, id: usize) -> PairInfo {
        let measures = &self.derived.measures[id];
        let unknown = self.derived.unknown_modality[id];
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

/// A worker's resolved values of one column, by raw value.
struct ColumnCache {
    /// Values of at most 15 bytes (nearly every code in DID), packed into one integer key: one
    /// integer hash and compare per lookup.
    short: FastMap<u128, u32>,
    text: FastMap<Box<[u8]>, u32>,
    /// Resolved value of a null.
    null: Option<u32>,
    /// Whole numbers `low .. low + INT_WINDOW` (UNRESOLVED until met); others in `ints`.
    window: Vec<u32>,
    low: i64,
    ints: FastMap<i64, u32>,
    /// Whether a refused value was ever resolved here: only then are rows searched for one.
    refuses: bool,
}

impl ColumnCache {
    fn new(low: i64) -> ColumnCache {
        ColumnCache {
            short: FastMap::default(),
            text: FastMap::default(),
            null: None,
            window: Vec::new(),
            low,
            ints: FastMap::default(),
            refuses: false,
        }
    }

    #[inline]
    fn text(&self, raw: Option<&[u8]>) -> Option<u32> {
        match raw {
            None => self.null,
            Some(bytes) => match short_key(bytes) {
                Some(key) => self.short.get(&key).copied(),
                None => self.text.get(bytes).copied(),
            },
        }
    }

    fn store_text(&mut self, raw: Option<&[u8]>, value: u32) {
        self.refuses |= value == INVALID;
        match raw {
            None => self.null = Some(value),
            Some(bytes) => match short_key(bytes) {
                Some(key) => {
                    self.short.insert(key, value);
                }
                None => {
                    self.text.insert(bytes.into(), value);
                }
            },
        }
    }

    fn int(&self, value: Option<i64>) -> Option<u32> {
        let Some(v) = value else { return self.null };
        let at = v.wrapping_sub(self.low);
        if (0..INT_WINDOW).contains(&at) {
            self.window
                .get(at as usize)
                .copied()
                .filter(|&r| r != UNRESOLVED)
        } else {
            self.ints.get(&v).copied()
        }
    }

    fn store_int(&mut self, value: Option<i64>, resolved: u32) {
        self.refuses |= resolved == INVALID;
        let Some(v) = value else {
            self.null = Some(resolved);
            return;
        };
        let at = v.wrapping_sub(self.low);
        if (0..INT_WINDOW).contains(&at) {
            if self.window.is_empty() {
                self.window = vec![UNRESOLVED; INT_WINDOW as usize];
            }
            self.window[at as usize] = resolved;
        } else {
            self.ints.insert(v, resolved);
        }
    }
}

/// A value shorter than 16 bytes as one integer: its bytes in order and, in the top byte, its
/// length (so distinct values give distinct keys). Built from word loads, without a copy.
#[inline]
fn short_key(b: &[u8]) -> Option<u128> {
    let n = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default());
    // The tail is loaded ending at the last byte and shifted down past the bytes already held.
    let (lo, hi) = match n {
        16.. => return None,
        9.. => (word(0), word(n - 8) >> ((16 - n) * 8)),
        8 => (word(0), 0),
        5.. => {
            let tail = half(n - 4) >> ((8 - n) * 8);
            (u64::from(half(0)) | u64::from(tail) << 32, 0)
        }
        4 => (u64::from(half(0)), 0),
        _ => (
            b.iter()
                .enumerate()
                .fold(0u64, |k, (i, &c)| k | u64::from(c) << (8 * i)),
            0,
        ),
    };
    Some(u128::from(lo) | u128::from(hi) << 64 | (n as u128) << 120)
}

fn lock<'s, 'a>(
    shared: &'s Mutex<Shared<'a>>,
) -> std::result::Result<std::sync::MutexGuard<'s, Shared<'a>>, Stop> {
    shared
        .lock()
        .map_err(|_| Stop::from(Error::Usage("a reader thread failed".into())))
}

/// Where a batch puts one column's values: the worker's cache for the column, its output (one
/// resolved value per row) and the shared tables for values met for the first time.
pub struct ColumnSink<'w, 'a> {
    column: usize,
    cache: &'w mut ColumnCache,
    out: &'w mut Vec<u32>,
    shared: &'w Mutex<Shared<'a>>,
}

impl<'w, 'a> ColumnSink<'w, 'a> {
    /// The column's index in [`COLUMNS`].
    pub fn column(&self) -> usize {
        self.column
    }

    /// The column is not in the extract: every row is null.
    pub fn absent(self, rows: usize) -> std::result::Result<(), Stop> {
        self.text(rows, |_| None)
    }

    /// Text, one value per row (`None` for null).
    pub fn text<'v>(
        self,
        rows: usize,
        value: impl Fn(usize) -> Option<&'v [u8]>,
    ) -> std::result::Result<(), Stop> {
        fill_text(self.cache, self.shared, self.column, rows, &value, self.out)
    }

    /// Text as keys (`None` for null) into a dictionary of `entries` values: each entry a row
    /// uses is resolved once, then rows only index the table. Entries no row uses (a writer may
    /// keep a column chunk's whole dictionary, or unused categories) and the null, when no row is
    /// null, are never resolved: they would reach the warnings as values no record holds.
    pub fn dictionary<'v>(
        self,
        entries: usize,
        entry: impl Fn(usize) -> Option<&'v [u8]>,
        rows: usize,
        key: impl Fn(usize) -> Option<usize>,
    ) -> std::result::Result<(), Stop> {
        let mut used = vec![false; entries];
        let (mut nulls, mut stray) = (false, false);
        for r in 0..rows {
            match key(r) {
                None => nulls = true,
                Some(k) => match used.get_mut(k) {
                    Some(u) => *u = true,
                    None => stray = true,
                },
            }
        }
        let wanted: Vec<usize> = (0..entries).filter(|&k| used[k]).collect();
        let mut resolved = Vec::new();
        fill_text(
            self.cache,
            self.shared,
            self.column,
            wanted.len(),
            &|i| entry(wanted[i]),
            &mut resolved,
        )?;
        // Slots of unused entries are never read: every key below is a used entry.
        let mut table = vec![INVALID; entries];
        for (&k, &value) in wanted.iter().zip(&resolved) {
            table[k] = value;
        }
        let null = if nulls {
            let mut one = Vec::new();
            fill_text(self.cache, self.shared, self.column, 1, &|_| None, &mut one)?;
            one[0]
        } else {
            INVALID
        };
        // A refused entry or null was flagged when it was stored; only a key beyond the
        // dictionary is left to flag here.
        self.out.clear();
        self.out.extend((0..rows).map(|r| match key(r) {
            None => null,
            Some(k) => table.get(k).copied().unwrap_or(INVALID),
        }));
        self.cache.refuses |= stray;
        Ok(())
    }

    /// Whole numbers (`None` for null): ages in years, dates as days since 1970-01-01.
    pub fn ints(
        self,
        rows: usize,
        value: impl Fn(usize) -> Option<i64>,
    ) -> std::result::Result<(), Stop> {
        let (column, shared) = (self.column, self.shared);
        fill(
            self.cache,
            self.out,
            rows,
            value,
            ColumnCache::int,
            ColumnCache::store_int,
            |missed| Ok(lock(shared)?.resolve(missed, |s, v| s.pending_int(column, *v))?),
        )
    }

    /// Numbers stored as floats (e.g. ages from pandas): whole values are whole numbers, others
    /// are refused as ages and read as their decimal text elsewhere.
    pub fn floats(
        self,
        rows: usize,
        value: impl Fn(usize) -> Option<f64>,
    ) -> std::result::Result<(), Stop> {
        let whole = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                v as i64
            } else {
                NOT_WHOLE
            }
        };
        if self.column == AGE || is_date(self.column) {
            return self.ints(rows, |i| value(i).map(whole));
        }
        let texts: Vec<Option<String>> = (0..rows)
            .map(|i| {
                value(i).map(|v| match whole(v) {
                    NOT_WHOLE => v.to_string(),
                    w => w.to_string(),
                })
            })
            .collect();
        self.text(rows, |i| texts[i].as_deref().map(str::as_bytes))
    }
}

/// Resolves `rows` text values through the cache, the values it does not know together under the
/// shared lock.
fn fill_text<'v>(
    cache: &mut ColumnCache,
    shared: &Mutex<Shared>,
    column: usize,
    rows: usize,
    value: &impl Fn(usize) -> Option<&'v [u8]>,
    out: &mut Vec<u32>,
) -> std::result::Result<(), Stop> {
    fill(
        cache,
        out,
        rows,
        value,
        ColumnCache::text,
        ColumnCache::store_text,
        |missed| Ok(lock(shared)?.resolve(missed, |s, v| s.pending_text(column, *v))?),
    )
}

/// Resolves `rows` values through the cache (`get`); the distinct values it does not know are
/// resolved together (`resolve`, one lock and one derivation call) and stored (`store`).
#[inline]
fn fill<K: Copy + Eq + std::hash::Hash>(
    cache: &mut ColumnCache,
    out: &mut Vec<u32>,
    rows: usize,
    value: impl Fn(usize) -> K,
    get: impl Fn(&ColumnCache, K) -> Option<u32>,
    store: impl Fn(&mut ColumnCache, K, u32),
    resolve: impl FnOnce(&[K]) -> std::result::Result<Vec<u32>, Stop>,
) -> std::result::Result<(), Stop> {
    out.clear();
    out.reserve(rows);
    let mut missed_rows = Vec::new();
    let mut missed = Vec::new();
    let mut seen = FastSet::default();
    for i in 0..rows {
        let v = value(i);
        match get(cache, v) {
            Some(r) => out.push(r),
            None => {
                out.push(UNRESOLVED);
                missed_rows.push(i);
                if seen.insert(v) {
                    missed.push(v);
                }
            }
        }
    }
    if !missed.is_empty() {
        for (&v, r) in missed.iter().zip(resolve(&missed)?) {
            store(cache, v, r);
        }
        for i in missed_rows {
            out[i] = get(cache, value(i)).unwrap_or(INVALID);
        }
    }
    Ok(())
}

/// A batch of records as a reader hands it to the pass.
pub trait Batch {
    fn rows(&self) -> usize;
    /// Gives column `sink.column()`'s values to the sink (`absent` when the extract lacks it).
    fn resolve(&self, sink: ColumnSink<'_, '_>) -> std::result::Result<(), Stop>;
    /// The raw value at a row, for an error message (`None` for null).
    fn raw(&self, column: usize, row: usize) -> Option<Vec<u8>>;
}

/// A worker's caches and counters.
pub struct Tally {
    caches: [ColumnCache; 8],
    /// The current batch's resolved values, per column.
    resolved: [Vec<u32>; 8],
    pair_ids: Vec<u32>,
    /// Pair id by (modality id, exam id), UNRESOLVED until met.
    pair_rows: Vec<Vec<u32>>,
    pair_info: Vec<PairInfo>,
    /// (area or NONE, outcome) by practice class << 32 | LSOA class, as attributed so far.
    attributed: FastMap<u64, (u32, u32)>,
    /// The current batch's (area or NONE, outcome) per row.
    row_attribution: Vec<(u32, u32)>,
    /// Records whose LSOA / practice code is in no lookup (for the warnings).
    unknown_lsoa: u64,
    unknown_practice: u64,
    areas: usize,
    cells: usize,
    dims: [u32; 3],
    tests: Vec<u32>,
    /// Slot of each (provider, outcome) block in `cube`, by provider then outcome, or UNRESOLVED.
    slots: Vec<Vec<u32>>,
    slot_keys: Vec<(u32, u32)>,
    cube: Vec<u32>,
    rows_since_flush: u64,
    tests_total: Vec<u64>,
    cube_total: Vec<u64>,
}

impl Tally {
    fn new(areas: usize, measures: usize, dims: [usize; 3], month_starts: &[i64; 13]) -> Tally {
        let cells = dims.iter().product::<usize>();
        let year_days = month_starts[0];
        Tally {
            caches: std::array::from_fn(|c| {
                ColumnCache::new(if c == DATE {
                    year_days - INT_WINDOW / 2
                } else {
                    0
                })
            }),
            resolved: Default::default(),
            pair_ids: Vec::new(),
            pair_rows: Vec::new(),
            pair_info: Vec::new(),
            attributed: FastMap::default(),
            row_attribution: Vec::new(),
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
            // u64 totals only once a worker's u32 counters could overflow (4 billion records):
            // at practice level each copy is 14 measures × 6,446 areas × 360 cells.
            tests_total: Vec::new(),
            cube_total: Vec::new(),
        }
    }

    /// Moves the u32 counters into the u64 totals (before they could overflow).
    fn flush(&mut self) {
        self.tests_total.resize(self.tests.len(), 0);
        for (t, c) in self.tests_total.iter_mut().zip(self.tests.iter_mut()) {
            *t += u64::from(std::mem::take(c));
        }
        self.flush_cube();
    }

    /// Adds this worker's test counts into `into` (the run's counts) and frees them, at the end
    /// of the pass: each worker's dense u32 copy is the only other one held.
    fn drain_tests(&mut self, into: &mut [f64]) {
        for (t, c) in into.iter_mut().zip(&self.tests) {
            *t += f64::from(*c);
        }
        // Empty unless the worker flushed on its way. Exact: counts stay far below 2^53.
        for (t, c) in into.iter_mut().zip(&self.tests_total) {
            *t += *c as f64;
        }
        self.tests = Vec::new();
        self.tests_total = Vec::new();
    }

    /// Moves the data-quality cube's u32 counters into its u64 totals.
    fn flush_cube(&mut self) {
        self.cube_total.resize(self.cube.len(), 0);
        for (t, c) in self.cube_total.iter_mut().zip(self.cube.iter_mut()) {
            *t += u64::from(std::mem::take(c));
        }
        self.rows_since_flush = 0;
    }

    /// The first row of the batch holding a refused value, and its column.
    fn first_refused(&self, rows: usize) -> Option<(usize, usize)> {
        (0..8)
            .filter(|&c| self.caches[c].refuses)
            .filter_map(|c| {
                self.resolved[c][..rows]
                    .iter()
                    .position(|&v| v == INVALID)
                    .map(|row| (row, c))
            })
            .min()
    }

    /// Pair ids of the batch's (modality, exam) values, new pairs derived together.
    fn resolve_pairs(
        &mut self,
        shared: &Mutex<Shared>,
        rows: usize,
    ) -> std::result::Result<(), Stop> {
        let (modality, exam) = (&self.resolved[MODALITY], &self.resolved[EXAM]);
        let lookup = |rows: &Vec<Vec<u32>>, m: u32, e: u32| {
            rows.get(m as usize)
                .and_then(|r| r.get(e as usize))
                .copied()
                .unwrap_or(UNRESOLVED)
        };
        self.pair_ids.clear();
        let mut missed = Vec::new();
        let mut seen = FastSet::default();
        for i in 0..rows {
            let id = lookup(&self.pair_rows, modality[i], exam[i]);
            if id == UNRESOLVED && seen.insert((modality[i], exam[i])) {
                missed.push((modality[i], exam[i]));
            }
            self.pair_ids.push(id);
        }
        if missed.is_empty() {
            return Ok(());
        }
        let resolved = lock(shared)?.resolve_pairs(&missed)?;
        for (&(m, e), (id, info)) in missed.iter().zip(resolved) {
            if self.pair_rows.len() <= m as usize {
                self.pair_rows.resize(m as usize + 1, Vec::new());
            }
            let r = &mut self.pair_rows[m as usize];
            if r.len() <= e as usize {
                r.resize(e as usize + 1, UNRESOLVED);
            }
            r[e as usize] = id;
            if self.pair_info.len() <= id as usize {
                self.pair_info.resize(id as usize + 1, PairInfo::default());
            }
            self.pair_info[id as usize] = info;
        }
        for i in 0..rows {
            if self.pair_ids[i] == UNRESOLVED {
                self.pair_ids[i] = lookup(&self.pair_rows, modality[i], exam[i]);
            }
        }
        Ok(())
    }

    /// Area and outcome of the batch's rows, combinations not met before attributed together.
    fn resolve_attribution(
        &mut self,
        shared: &Mutex<Shared>,
        rows: usize,
    ) -> std::result::Result<(), Stop> {
        let key = |practice: u32, lsoa: u32| u64::from(practice) << 32 | u64::from(lsoa >> 8);
        let (practice, lsoa) = (&self.resolved[PRACTICE], &self.resolved[LSOA]);
        let mut missed = Vec::new();
        let mut seen = FastSet::default();
        for i in 0..rows {
            let k = key(practice[i], lsoa[i]);
            if !self.attributed.contains_key(&k) && seen.insert(k) {
                missed.push((practice[i], lsoa[i] >> 8));
            }
        }
        if !missed.is_empty() {
            let answers = lock(shared)?.attribute_new(&missed)?;
            for (&(p, l), answer) in missed.iter().zip(answers) {
                self.attributed
                    .insert(u64::from(p) << 32 | u64::from(l), answer);
            }
        }
        self.row_attribution.clear();
        for i in 0..rows {
            self.row_attribution
                .push(self.attributed[&key(practice[i], lsoa[i])]);
        }
        Ok(())
    }

    /// Counts the batch's rows from their resolved values.
    fn count_rows(&mut self, rows: usize) {
        if self.rows_since_flush + rows as u64 >= u64::from(u32::MAX) {
            self.flush();
        }
        self.rows_since_flush += rows as u64;
        let resolved = std::mem::take(&mut self.resolved);
        let pairs = std::mem::take(&mut self.pair_ids);
        let attributed = std::mem::take(&mut self.row_attribution);
        let [provider, practice, lsoa, sex, age, _, _, month] = &resolved;
        for i in 0..rows {
            self.add(
                provider[i],
                (practice[i], lsoa[i]),
                attributed[i],
                sex[i],
                age[i],
                pairs[i],
                month[i],
            );
        }
        self.resolved = resolved;
        self.pair_ids = pairs;
        self.row_attribution = attributed;
    }

    /// Counts one record from its resolved values.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        provider: u32,
        (practice, lsoa): (u32, u32),
        (area, outcome): (u32, u32),
        sex: u32,
        age: u32,
        pair: u32,
        month: u32,
    ) {
        let lsoa_class = lsoa >> 8;
        let quintile = lsoa & 0xFF;
        let info = &self.pair_info[pair as usize];
        if area != NONE {
            // An unknown value counts in its dimension's last category (`unknown`), which the
            // exclusions stage resolves.
            let known = |v: u32, unknown: u32, dim: u32| if v == unknown { dim - 1 } else { v };
            let q = known(quintile, NO_QUINTILE, self.dims[0]);
            let s = known(sex, NONE, self.dims[1]);
            let g = known(age, NONE, self.dims[2]);
            let cell = ((q * self.dims[1] + s) * self.dims[2] + g) as usize;
            for &m in &info.measures {
                let at = (m as usize * self.areas + area as usize) * self.cells + cell;
                self.tests[at] += 1;
            }
        }
        self.unknown_lsoa += u64::from(lsoa_class == 1);
        self.unknown_practice += u64::from(practice == 1);
        let (p, o) = (provider as usize, outcome as usize);
        if p >= self.slots.len() {
            self.slots.resize(p + 1, Vec::new());
        }
        if o >= self.slots[p].len() {
            self.slots[p].resize(o + 1, UNRESOLVED);
        }
        let mut slot = self.slots[p][o];
        if slot == UNRESOLVED {
            slot = self.slot_keys.len() as u32;
            self.slot_keys.push((provider, outcome));
            self.cube.resize(self.cube.len() + BLOCK, 0);
            self.slots[p][o] = slot;
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
}

/// Everything the pass found, after the workers' counters are summed.
pub struct PassResult {
    pub records: u64,
    pub cells: Vec<QualityCell>,
    /// Provider codes in the order `cells` refer to them.
    pub providers: Vec<String>,
    pub derivation_input: DerivationInput,
    pub derive_seconds: f64,
    pub derive_cpu_seconds: f64,
    pub attribution: AttributionRecord,
    pub warnings: Vec<String>,
}

/// Gives the next unit of work (its index in file order and the unit), `None` when all are taken.
pub type NextUnit<'f, U> = dyn Fn() -> Option<std::result::Result<(usize, U), Located>> + Sync + 'f;
/// Counts one unit (by index) into a worker's tally.
pub type CountUnit<'f, C, U> = dyn Fn(&C, &mut <C as Counter>::Tally, usize, U) -> std::result::Result<(), Located>
    + Sync
    + 'f;

/// A pass the readers hand batches to: the stratified pass ([`Pass`]) or the provider × month
/// pass ([`provider_months::MonthPass`]). Each worker counts into its own tally.
pub trait Counter: Sync {
    type Tally: Send;
    /// A fresh tally for one worker.
    fn tally(&self) -> Self::Tally;
    /// Resolves and counts one batch into a worker's tally.
    fn count(&self, tally: &mut Self::Tally, batch: &dyn Batch) -> std::result::Result<(), Stop>;
}

/// The columns a pass reads and those of them an extract must have.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub read: [bool; COLUMNS.len()],
    pub required: [bool; COLUMNS.len()],
}

impl Columns {
    /// The stratified pass's: the first [`STRATIFIED_COLUMNS`], all required but `exam_code`
    /// (SPEC §3).
    pub fn stratified() -> Columns {
        Columns {
            read: std::array::from_fn(|c| c < STRATIFIED_COLUMNS),
            required: std::array::from_fn(|c| c < STRATIFIED_COLUMNS && c != EXAM),
        }
    }
}

impl Counter for Pass<'_> {
    type Tally = Tally;

    fn tally(&self) -> Tally {
        Pass::tally(self)
    }

    fn count(&self, tally: &mut Tally, batch: &dyn Batch) -> std::result::Result<(), Stop> {
        Pass::count(self, tally, batch)
    }
}

/// The pass: workers count batches into their own tallies, summed by [`Pass::finish`].
pub struct Pass<'a> {
    shared: Mutex<Shared<'a>>,
    areas: usize,
    measures: usize,
    dims: [usize; 3],
    month_starts: [i64; 13],
}

impl<'a> Pass<'a> {
    pub fn new(
        lookups: &'a Lookups<'a>,
        derive: &'a DeriveFn<'a>,
        attribute: &'a AttributeFn<'a>,
        exam_code_list: Vec<(String, String)>,
        measures: usize,
        dims: [usize; 3],
        year_start: (i32, u32, u32),
    ) -> Pass<'a> {
        // The recipe refuses a year_start whose twelve months are not all dates; were one let
        // through, every record would be dated outside the year rather than the pass panic.
        let month_starts =
            dates::month_starts(year_start.0, year_start.1).unwrap_or([i64::MAX; 13]);
        Pass {
            shared: Mutex::new(Shared::new(
                lookups,
                derive,
                attribute,
                exam_code_list,
                month_starts,
                None,
            )),
            areas: lookups.areas,
            measures,
            dims,
            month_starts,
        }
    }

    pub fn tally(&self) -> Tally {
        Tally::new(self.areas, self.measures, self.dims, &self.month_starts)
    }

    /// Resolves and counts one batch into a worker's tally.
    pub fn count(&self, tally: &mut Tally, batch: &dyn Batch) -> std::result::Result<(), Stop> {
        let rows = batch.rows();
        for (column, (cache, out)) in tally
            .caches
            .iter_mut()
            .zip(tally.resolved.iter_mut())
            .enumerate()
        {
            let sink = ColumnSink {
                column,
                cache,
                out,
                shared: &self.shared,
            };
            batch.resolve(sink)?;
            if out.len() != rows {
                return Err(Stop::from(Error::Usage(format!(
                    "reader: column `{}` gave {} values for {rows} rows",
                    COLUMNS[column],
                    out.len()
                ))));
            }
        }
        if let Some((row, column)) = tally.first_refused(rows) {
            return Err(Stop::Invalid {
                row,
                column,
                value: batch.raw(column, row),
            });
        }
        tally.resolve_pairs(&self.shared, rows)?;
        tally.resolve_attribution(&self.shared, rows)?;
        tally.count_rows(rows);
        Ok(())
    }

    /// Adds the workers' test counts into `tests` (per measure × area × cell, as
    /// `StratifiedCounts::tests`), freeing them as it goes, and builds the quality cells and
    /// warnings.
    pub fn finish(self, mut tallies: Vec<Tally>, tests: &mut [f64]) -> Result<PassResult> {
        let shared = self
            .shared
            .into_inner()
            .map_err(|_| Error::Usage("a reader thread failed".into()))?;
        if let Some(t) = tallies.iter().find(|t| t.tests.len() != tests.len()) {
            return Err(Error::Usage(format!(
                "the pass counted {} measure × area × cell counters, the run holds {}",
                t.tests.len(),
                tests.len()
            )));
        }
        let (order, rank) = provider_ranks(&shared);
        let (cube, seen) = sum_tallies(
            &shared.attributions.outcomes.values,
            &mut tallies,
            &rank,
            tests,
        );
        let providers = order
            .iter()
            .map(|&p| shared.providers.values[p].clone())
            .collect();
        let warnings = reader_warnings(&shared, &seen);
        Ok(PassResult {
            records: seen.records,
            cells: quality_cells(cube),
            providers,
            derivation_input: shared.derivation_input(),
            derive_seconds: shared.derive_seconds,
            derive_cpu_seconds: shared.derive_cpu_seconds,
            attribution: AttributionRecord {
                candidates: shared.attributions.candidates.values.len() as u64,
                seconds: shared.attributions.seconds,
                cpu_seconds: shared.attributions.cpu_seconds,
            },
            warnings,
        })
    }
}

/// Runs `workers` threads, each taking units of work from `next` (a unit's index and the unit)
/// and counting them with `count`, until `next` gives `None` or a unit fails. Of the failures,
/// the earliest (by unit, then row) is returned: every unit before it was counted to the end.
pub fn run_parallel<C: Counter, U>(
    counter: &C,
    workers: usize,
    next: &NextUnit<'_, U>,
    count: &CountUnit<'_, C, U>,
) -> std::result::Result<Vec<C::Tally>, Located> {
    let failed = AtomicBool::new(false);
    let results: Vec<std::result::Result<C::Tally, Located>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut tally = counter.tally();
                    while !failed.load(Ordering::Acquire) {
                        let Some(unit) = next() else { break };
                        let outcome =
                            unit.and_then(|(index, unit)| count(counter, &mut tally, index, unit));
                        if let Err(e) = outcome {
                            failed.store(true, Ordering::Release);
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
                    Err(Located {
                        unit: usize::MAX,
                        row: 0,
                        stop: Error::Usage("a reader thread panicked".into()).into(),
                    })
                })
            })
            .collect()
    });
    let mut tallies = Vec::new();
    let mut first: Option<Located> = None;
    for r in results {
        match r {
            Ok(t) => tallies.push(t),
            Err(e) => {
                if first
                    .as_ref()
                    .is_none_or(|f| (e.unit, e.row) < (f.unit, f.row))
                {
                    first = Some(e);
                }
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(tallies),
    }
}

/// The workers' counters summed: tests per measure × area × cell into `tests`, the data-quality
/// cube by provider rank, and how many records had each unrecognised value. Each worker's
/// counters are freed once summed, and its cube is read where it lies (no u64 copy unless a
/// flush made one), so the pass's peak is one dense copy per worker beside the cells met.
fn sum_tallies(
    outcomes: &[Outcome],
    tallies: &mut [Tally],
    rank: &[u32],
    tests: &mut [f64],
) -> (BTreeMap<CubeKey, u64>, Unrecognised) {
    let mut cube: BTreeMap<CubeKey, u64> = BTreeMap::new();
    let mut seen = Unrecognised::default();
    for tally in tallies.iter_mut() {
        tally.drain_tests(tests);
        seen.unknown_lsoa += tally.unknown_lsoa;
        seen.unknown_practice += tally.unknown_practice;
        let counters = std::mem::take(&mut tally.cube);
        let flushed = std::mem::take(&mut tally.cube_total);
        let count = |i: usize| u64::from(counters[i]) + flushed.get(i).copied().unwrap_or(0);
        for (slot, &(provider, outcome)) in tally.slot_keys.iter().enumerate() {
            let block = (slot * BLOCK..(slot + 1) * BLOCK).map(count);
            let (area, route, has_practice, has_lsoa) = outcomes[outcome as usize];
            for (i, n) in block.enumerate().filter(|(_, n)| *n > 0) {
                let month = i % MONTH_SLOTS;
                let bits = (i / MONTH_SLOTS) & 7;
                let pair_class = i / MONTH_SLOTS / 8;
                let (missing_sex, missing_age, missing_imd) =
                    (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
                seen.records += n;
                seen.unknown_sex += n * missing_sex as u64;
                seen.unknown_age += n * missing_age as u64;
                seen.unknown_modality += n * (pair_class == 2) as u64;
                seen.outside_year += n * (month == OUTSIDE_YEAR as usize) as u64;
                let key: CubeKey = (
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
    (cube, seen)
}

/// A data-quality cube cell's key: provider rank, area, route, has practice, has LSOA, missing
/// age, sex and IMD, month (`u8::MAX` outside the year), standard modality.
pub(crate) type CubeKey = (
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

/// How many records the pass read, and how many had each unrecognised or out-of-year value.
#[derive(Default)]
struct Unrecognised {
    records: u64,
    unknown_sex: u64,
    unknown_age: u64,
    unknown_lsoa: u64,
    unknown_practice: u64,
    unknown_modality: u64,
    outside_year: u64,
}

/// Providers in order of their smallest raw code (as sorting the grouped records gave it), and
/// each provider's rank in that order.
fn provider_ranks(shared: &Shared) -> (Vec<usize>, Vec<u32>) {
    let mut order: Vec<usize> = (0..shared.providers.values.len()).collect();
    order.sort_by(|&a, &b| shared.provider_first_raw[a].cmp(&shared.provider_first_raw[b]));
    let mut rank = vec![0u32; order.len()];
    for (r, &p) in order.iter().enumerate() {
        rank[p] = r as u32;
    }
    (order, rank)
}

/// The cube as the data-quality stage's cells, in key order.
pub(crate) fn quality_cells(cube: BTreeMap<CubeKey, u64>) -> Vec<QualityCell> {
    cube.into_iter()
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
        .collect()
}

/// Warnings about values the rules did not recognise, naming them, and out-of-year records.
fn reader_warnings(shared: &Shared, seen: &Unrecognised) -> Vec<String> {
    let total = seen.records as f64;
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
            seen.unknown_sex,
            &unknown_sex_values,
            "a sex code the derivation does not recognise",
            "counted as unknown sex (the recipe's exclusions stage decides whether rates keep them)",
        ),
        (
            seen.unknown_age,
            &unknown_age_values,
            "an age the derivation puts in no age band",
            "counted as unknown age (the recipe's exclusions stage decides whether rates keep them)",
        ),
        (
            seen.unknown_lsoa,
            &shared.unknown_lsoas,
            "an LSOA code not in the LSOA lookup",
            "no area or IMD quintile from their LSOA",
        ),
        (
            seen.unknown_practice,
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
    if seen.unknown_modality > 0 {
        warnings.push(format!(
            "{} records have a modality outside the recipe's keys; counted in no measure",
            seen.unknown_modality as f64
        ));
    }
    if seen.outside_year > 0 {
        warnings.push(format!(
                "{} records are dated outside the reporting year; counted in rates, and left out of the data-quality tables by month",
                seen.outside_year as f64
            ));
    }
    warnings
}

/// `"47"`, `" 47 "`, `"+47"` or `"47.0"` → 47; `None` when the text is not a whole number.
fn parse_whole_number(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // A whole float as written by pandas or Excel: `47.0`, `47.`.
    let digits = match digits.split_once('.') {
        Some((whole, zeros)) if zeros.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => digits,
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker holds one dense copy of its test counts; a flush on the way (its u32 counters
    /// near overflow) moves them into u64 totals, and draining sums both into the pass's totals.
    #[test]
    fn drained_counts_include_what_a_flush_moved() {
        let month_starts: [i64; 13] = std::array::from_fn(|m| 19_448 + 30 * m as i64);
        let mut tally = Tally::new(2, 3, [2, 2, 2], &month_starts);
        assert_eq!(tally.tests.len(), 2 * 3 * 8);
        assert!(tally.tests_total.is_empty(), "no u64 copy until a flush");
        tally.tests[5] = u32::MAX;
        tally.flush();
        assert_eq!(tally.tests[5], 0);
        tally.tests[5] = 7;
        tally.tests[47] = 1;
        let mut totals = vec![10f64; 48];
        tally.drain_tests(&mut totals);
        assert_eq!(totals[5], 10.0 + f64::from(u32::MAX) + 7.0);
        assert_eq!(totals[47], 11.0);
        assert_eq!(
            totals.iter().sum::<f64>(),
            480.0 + f64::from(u32::MAX) + 8.0
        );
        assert!(
            tally.tests.is_empty() && tally.tests_total.is_empty(),
            "freed"
        );
    }

    #[test]
    fn short_keys_tell_every_value_apart() {
        let values: Vec<Vec<u8>> = (0..16)
            .flat_map(|n| {
                [b'a', b'b', 0, 0xFF]
                    .into_iter()
                    .flat_map(move |fill| (0..n.max(1)).map(move |at| (n, fill, at)))
            })
            .map(|(n, fill, at)| {
                let mut v = vec![b'a'; n];
                if n > 0 {
                    v[at] = fill;
                }
                v
            })
            .collect();
        let mut keys = std::collections::HashMap::new();
        for v in &values {
            let key = short_key(v).expect("short");
            if let Some(other) = keys.insert(key, v.clone()) {
                assert_eq!(&other, v, "two values share key {key:x}");
            }
        }
        // Each byte of the key is the value's byte at that place.
        let key = short_key(b"E01012345ab").expect("short");
        assert_eq!(key >> 120, 11);
        let bytes = key.to_le_bytes();
        assert_eq!(&bytes[..8], b"E0101234");
        assert_eq!(&bytes[8..11], b"5ab");
        assert_eq!(short_key(&[b'x'; 16]), None);
    }

    #[test]
    fn whole_numbers_as_extracts_write_them() {
        for (text, want) in [
            ("47", Some(47)),
            ("047", Some(47)),
            ("+5", Some(5)),
            ("-3", Some(-3)),
            ("47.0", Some(47)),
            ("47.", Some(47)),
            ("47.5", None),
            ("4 7", None),
            ("", None),
            ("-", None),
            ("1e2", None),
            ("forty", None),
            ("9999999999999999999", None),
        ] {
            assert_eq!(parse_whole_number(text), want, "{text:?}");
        }
    }

    #[test]
    fn dates_with_and_without_times() {
        let april = dates::days_from_civil(2023, 4, 1).expect("a date");
        for (text, want) in [
            ("2023-04-01", Some(april)),
            ("2023-4-1", Some(april)),
            ("2023-04-01 00:00:00", Some(april)),
            ("2023-04-01T09:30:00.000Z", Some(april)),
            ("2023-04-01 09:30:00+01:00", Some(april)),
            ("2023-02-29", None),
            ("2024-02-29", dates::days_from_civil(2024, 2, 29)),
            ("2023-13-01", None),
            ("01/04/2023", None),
            ("2023-04-01 noon", None),
            ("2023-04", None),
            ("2023-04-01-02", None),
        ] {
            assert_eq!(dates::parse_extract_date(text), want, "{text:?}");
        }
        assert_eq!(dates::civil_from_days(april), Some((2023, 4, 1)));
        assert_eq!(dates::days_from_civil(1970, 1, 1), Some(0));
    }
}
