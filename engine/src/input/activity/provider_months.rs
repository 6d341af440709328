//! The provider × month pass (seed 002): record-level activity counted to tests by provider ×
//! modality × month of test, and the days from request to test and from test to report
//! counted by provider × modality × month and whole day (a histogram, never a list of records),
//! so memory grows with the distinct cells and days, not with the records.
//!
//! It reads through the same readers, caches and input mapping as the stratified pass
//! ([`super::Pass`]): each distinct raw value is resolved once, under the shared lock, with the
//! recipe's value map applied first. What differs is what a value resolves to: a provider must be
//! one of the recipe's `provider_regions` (else the record is refused at its row, as the
//! aggregated entry refuses the row), a modality must be one of SPEC §3's keys, and the three
//! dates resolve to their day (the test date is required; an empty request or report date is
//! no date).
//!
//! Days are signed (the later date minus the earlier): which waits count, and what a request
//! after its test or a report before it becomes, is the DID-waits stage's plugin's rule.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use strata_api::{AttributionCandidate, DerivationInput, Derived};

use super::{
    Batch, COLUMNS, ColumnCache, ColumnSink, Columns, Counter, DATE, FastMap, INVALID, Lookups,
    MODALITY, NONE, PROVIDER, REPORT, REQUEST, Shared, Stop, code_days,
};
use crate::dates;
use crate::error::{Error, Result};
use crate::input::extract::Extract;
use crate::input::mapping::ValueMap;

/// The columns this pass reads, in the order it resolves them.
const READ: [usize; 5] = [PROVIDER, MODALITY, DATE, REQUEST, REPORT];

/// Which interval a wait measures: request → test, or test → report.
pub const REQUEST_TO_TEST: u8 = 0;
pub const TEST_TO_REPORT: u8 = 1;

/// Provider, modality key and month (`YYYY-MM`) of the test.
pub type CellKey = (String, String, String);

/// What the pass counted, in code order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MonthCounts {
    pub records: u64,
    /// Tests by provider × modality × month.
    pub tests: BTreeMap<CellKey, u64>,
    /// Records by cell and interval ([`REQUEST_TO_TEST`], [`TEST_TO_REPORT`]) and signed days
    /// (the later date of the interval minus the earlier).
    pub waits: BTreeMap<(CellKey, u8), BTreeMap<i64, u64>>,
    /// Records of a cell without the interval's other date.
    pub missing: BTreeMap<(CellKey, u8), u64>,
}

/// The pass: the shared tables of distinct values, as the stratified pass keeps them.
pub struct MonthPass<'a> {
    shared: Mutex<Shared<'a>>,
}

/// A worker's caches and counters. Ids are the shared tables' (provider) and SPEC §3's
/// modality order; months are `year × 12 + month − 1`.
pub struct MonthTally {
    caches: [ColumnCache; COLUMNS.len()],
    resolved: [Vec<u32>; COLUMNS.len()],
    tests: FastMap<(u32, u32, i32), u64>,
    waits: FastMap<(u32, u32, i32, u8, i64), u64>,
    missing: FastMap<(u32, u32, i32, u8), u64>,
    /// Month of each test day met.
    months: FastMap<i64, i32>,
    records: u64,
}

fn no_derivation(_: &DerivationInput) -> Result<Derived> {
    Ok(Derived::default())
}

fn no_attribution(_: &[AttributionCandidate]) -> Result<Vec<strata_api::Attribution>> {
    Ok(Vec::new())
}

impl Counter for MonthPass<'_> {
    type Tally = MonthTally;

    fn tally(&self) -> MonthTally {
        MonthTally {
            // Dates as whole numbers (Parquet date columns) are cached in a window around
            // 2019-04 (day 18,000), the seed's years; others in the cache's map.
            caches: std::array::from_fn(|c| {
                ColumnCache::new(if super::is_date(c) {
                    18_000 - super::INT_WINDOW / 2
                } else {
                    0
                })
            }),
            resolved: Default::default(),
            tests: FastMap::default(),
            waits: FastMap::default(),
            missing: FastMap::default(),
            months: FastMap::default(),
            records: 0,
        }
    }

    fn count(&self, tally: &mut MonthTally, batch: &dyn Batch) -> std::result::Result<(), Stop> {
        let rows = batch.rows();
        for c in READ {
            let sink = ColumnSink {
                column: c,
                cache: &mut tally.caches[c],
                out: &mut tally.resolved[c],
                shared: &self.shared,
            };
            batch.resolve(sink)?;
            if tally.resolved[c].len() != rows {
                return Err(Stop::from(Error::Usage(format!(
                    "reader: column `{}` gave {} values for {rows} rows",
                    COLUMNS[c],
                    tally.resolved[c].len()
                ))));
            }
        }
        let refused = READ
            .into_iter()
            .filter(|&c| tally.caches[c].refuses)
            .filter_map(|c| {
                let at = tally.resolved[c].iter().position(|&v| v == INVALID);
                at.map(|row| (row, c))
            })
            .min();
        if let Some((row, column)) = refused {
            return Err(Stop::Invalid {
                row,
                column,
                value: batch.raw(column, row),
            });
        }
        tally.count_rows(rows);
        Ok(())
    }
}

impl MonthPass<'_> {
    /// The provider, the modality and the test date are required; the request and report
    /// dates are read when the extract has them.
    pub fn columns_read() -> Columns {
        Columns {
            read: std::array::from_fn(|c| READ.contains(&c)),
            required: std::array::from_fn(|c| matches!(c, PROVIDER | MODALITY | DATE)),
        }
    }
}

impl MonthTally {
    fn count_rows(&mut self, rows: usize) {
        let resolved = std::mem::take(&mut self.resolved);
        let (provider, modality, test) =
            (&resolved[PROVIDER], &resolved[MODALITY], &resolved[DATE]);
        for i in 0..rows {
            let day = code_days(test[i]);
            let month = *self.months.entry(day).or_insert_with(|| month_serial(day));
            let cell = (provider[i], modality[i], month);
            *self.tests.entry(cell).or_default() += 1;
            // Request → test is the test day minus the request day; test → report the report
            // day minus the test day.
            for (interval, other) in [
                (REQUEST_TO_TEST, resolved[REQUEST][i]),
                (TEST_TO_REPORT, resolved[REPORT][i]),
            ] {
                let (p, m, mo) = cell;
                if other == NONE {
                    *self.missing.entry((p, m, mo, interval)).or_default() += 1;
                    continue;
                }
                let days = if interval == REQUEST_TO_TEST {
                    day - code_days(other)
                } else {
                    code_days(other) - day
                };
                *self.waits.entry((p, m, mo, interval, days)).or_default() += 1;
            }
        }
        self.records += rows as u64;
        self.resolved = resolved;
    }
}

/// `year × 12 + month − 1` of a day (every resolved day is within chrono's range).
fn month_serial(day: i64) -> i32 {
    dates::civil_from_days(day).map_or(i32::MIN, |(y, m, _)| y * 12 + m as i32 - 1)
}

/// `YYYY-MM` of a month serial.
fn month_text(serial: i32) -> String {
    format!(
        "{:04}-{:02}",
        serial.div_euclid(12),
        serial.rem_euclid(12) + 1
    )
}

/// Counts every record of `extract` (opened with [`MonthPass::columns`]) on up to `threads`
/// workers: providers must be among `providers`, values go through `value_maps` first.
pub fn count_extract(
    extract: &Extract,
    value_maps: [Option<&ValueMap>; COLUMNS.len()],
    providers: HashSet<String>,
    threads: usize,
) -> Result<MonthCounts> {
    let (practices, non_english, lsoas) = (HashMap::new(), HashSet::new(), HashMap::new());
    let lookups = Lookups {
        practices: &practices,
        non_english: &non_english,
        lsoas: &lsoas,
        areas: 0,
        value_maps,
    };
    let pass = MonthPass {
        shared: Mutex::new(Shared::new(
            &lookups,
            &no_derivation,
            &no_attribution,
            Vec::new(),
            [0; 13],
            Some(providers),
        )),
    };
    let tallies = extract.count(&pass, threads)?;
    let shared = pass
        .shared
        .into_inner()
        .map_err(|_| Error::Usage("a reader thread failed".into()))?;
    Ok(sum(&shared.providers.values, tallies))
}

/// The workers' counters summed, by code.
fn sum(providers: &[String], tallies: Vec<MonthTally>) -> MonthCounts {
    let key = |p: u32, m: u32, month: i32| -> CellKey {
        (
            providers[p as usize].clone(),
            crate::periods::MODALITIES[m as usize].to_string(),
            month_text(month),
        )
    };
    let mut out = MonthCounts::default();
    for t in tallies {
        out.records += t.records;
        for ((p, m, month), n) in t.tests {
            *out.tests.entry(key(p, m, month)).or_default() += n;
        }
        for ((p, m, month, interval, days), n) in t.waits {
            let cell = out.waits.entry((key(p, m, month), interval)).or_default();
            *cell.entry(days).or_default() += n;
        }
        for ((p, m, month, interval), n) in t.missing {
            *out.missing.entry((key(p, m, month), interval)).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_serials_round_trip_through_their_text() {
        let day = dates::days_from_civil(2020, 4, 30).expect("a date");
        assert_eq!(month_text(month_serial(day)), "2020-04");
        let day = dates::days_from_civil(1969, 12, 31).expect("a date");
        assert_eq!(month_text(month_serial(day)), "1969-12");
    }
}
