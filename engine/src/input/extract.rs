//! Record-level extracts from files, read in batches by the workers of an activity pass.
//!
//! The format is found from the content, not the name: Parquet (`PAR1`), gzip-compressed CSV, or
//! CSV. Parquet goes through arrow-rs' public reader, one row group per unit of work, text columns
//! asked for as dictionaries (dictionary pages come back as keys and values, plain pages are packed
//! into a dictionary by the reader), whatever the writer, the encoding, the text, integer, float,
//! date or timestamp type and the row-group layout. CSV is cut into blocks of whole records (a
//! line end outside quotes) by whichever worker takes the next block, and each block is parsed by
//! its worker; memory is a few blocks per worker, whatever the size of the file.
//!
//! Every unit (row group, block) has an index in file order; a refused value is reported at its
//! row in the file, counted from the units before it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use super::activity::{self, AGE, Batch, COLUMNS, ColumnSink, Columns, Counter, Located, Stop};
use super::mapping::InputMapping;
use crate::error::{Error, Result};

/// Records per Parquet batch (a row group is read in batches of at most this many).
const PARQUET_BATCH: usize = 128 * 1024;
/// Bytes of CSV per block (a block ends at the last whole record within it).
const CSV_BLOCK: usize = 4 << 20;
/// A CSV record longer than this (no line end outside quotes) is refused: it is not a table.
const CSV_MAX_RECORD: usize = 64 << 20;

/// A record-level extract whose header has been checked.
pub struct Extract {
    path: PathBuf,
    format: Format,
}

enum Format {
    Parquet(ParquetExtract),
    Csv(CsvExtract),
    Frame(FrameExtract),
}

impl Extract {
    /// Opens an extract and checks its columns (every required one, none twice, types that can
    /// hold the column's values), before any record is read.
    pub fn open(path: &Path, mapping: &InputMapping) -> Result<Extract> {
        Extract::open_columns(path, mapping, Columns::stratified())
    }

    /// Opens an extract for a pass reading `columns` (the stratified pass's, or another's).
    pub fn open_columns(path: &Path, mapping: &InputMapping, columns: Columns) -> Result<Extract> {
        let names = Names::of(mapping, columns);
        if path.is_dir() {
            return Err(Error::data_hint(
                path,
                None,
                None,
                "is a folder, not a file".into(),
                "pass the extract file itself",
            ));
        }
        let kind = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .file_type();
        if !kind.is_file() {
            return Err(Error::data_hint(
                path,
                None,
                None,
                "is not a regular file (a named pipe or a device?)".into(),
                "strata reads an extract twice (header, then records): save it to a file first",
            ));
        }
        let mut magic = [0u8; 4];
        let read = File::open(path)
            .and_then(|mut f| read_up_to(&mut f, &mut magic))
            .map_err(|e| Error::io(path, e))?;
        let magic = &magic[..read];
        let format = if magic == b"PAR1" {
            Format::Parquet(ParquetExtract::open(path, names)?)
        } else if magic.starts_with(&[0x1f, 0x8b]) {
            Format::Csv(CsvExtract::open(path, true, names)?)
        } else if magic.starts_with(&[0xFF, 0xFE]) || magic.starts_with(&[0xFE, 0xFF]) {
            return Err(Error::data_hint(
                path,
                None,
                None,
                "UTF-16 text (it starts with a UTF-16 byte order mark)".into(),
                "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
            ));
        } else {
            Format::Csv(CsvExtract::open(path, false, names)?)
        };
        Ok(Extract {
            path: path.to_path_buf(),
            format,
        })
    }

    /// An in-memory table (Arrow record batches, e.g. a polars or pandas frame handed over the
    /// Arrow C stream interface), checked like a Parquet file's columns; `label` names it in
    /// messages.
    pub fn from_batches(
        label: &Path,
        batches: Vec<RecordBatch>,
        mapping: &InputMapping,
    ) -> Result<Extract> {
        Extract::from_batches_columns(label, batches, mapping, Columns::stratified())
    }

    /// An in-memory table for a pass reading `columns`.
    pub fn from_batches_columns(
        label: &Path,
        batches: Vec<RecordBatch>,
        mapping: &InputMapping,
        columns: Columns,
    ) -> Result<Extract> {
        let names = Names::of(mapping, columns);
        Ok(Extract {
            path: label.to_path_buf(),
            format: Format::Frame(FrameExtract::open(label, batches, names)?),
        })
    }

    /// Records in the file when its metadata says (Parquet, a frame), for the manifest.
    pub fn rows(&self) -> Option<u64> {
        match &self.format {
            Format::Parquet(p) => Some(p.rows),
            Format::Frame(f) => Some(f.rows),
            Format::Csv(_) => None,
        }
    }

    /// Whether the extract has column `c` ([`COLUMNS`] index) among those its pass reads.
    pub fn has_column(&self, c: usize) -> bool {
        let positions = match &self.format {
            Format::Parquet(p) => &p.positions,
            Format::Csv(c) => &c.positions,
            Format::Frame(f) => &f.positions,
        };
        positions[c].is_some()
    }

    /// Reads and counts every record with `pass` on up to `threads` workers.
    pub fn count<C: Counter>(&self, pass: &C, threads: usize) -> Result<Vec<C::Tally>> {
        let threads = threads.clamp(1, 8);
        keep_freed_memory();
        match &self.format {
            Format::Parquet(p) => p.count(&self.path, pass, threads),
            Format::Csv(c) => c.count(&self.path, pass, threads),
            Format::Frame(f) => f.count(&self.path, pass, threads),
        }
    }
}

/// Asks the C allocator to keep freed blocks for reuse instead of returning them to the kernel:
/// every batch decodes into megabytes of fresh buffers, and without this each paid for the kernel
/// zeroing new pages (measured: a third of the pass's time at 10 M records).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The extract's name of each column, by [`COLUMNS`] index, how messages name it, and which
/// columns the pass reads and requires.
struct Names {
    source: [String; COLUMNS.len()],
    label: [String; COLUMNS.len()],
    mapped: bool,
    columns: Columns,
}

impl Names {
    fn of(mapping: &InputMapping, columns: Columns) -> Names {
        Names {
            source: std::array::from_fn(|c| mapping.source_name(COLUMNS[c]).to_string()),
            label: std::array::from_fn(|c| mapping.describe(COLUMNS[c])),
            mapped: !mapping.columns.is_empty(),
            columns,
        }
    }
}

/// Where each column the pass reads is in the header, by [`COLUMNS`] index.
type Positions = [Option<usize>; COLUMNS.len()];

/// Checks a header's names: unique, and every required column there (by the extract's names).
fn check_names(path: &Path, names: &[String], read: &Names) -> Result<Positions> {
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(Error::data_hint(
                path,
                None,
                Some(name),
                "column appears twice in the header row".into(),
                "each column must be named once; remove or rename the repeated one",
            ));
        }
    }
    for column in (0..COLUMNS.len()).filter(|&c| read.columns.required[c]) {
        if !names.iter().any(|n| *n == read.source[column]) {
            // At most a line of the header: a file that is not a table must not fill the screen.
            let mut found = names.join(", ");
            if found.chars().count() > 200 {
                found = format!("{}…", found.chars().take(200).collect::<String>());
            }
            let hint = if names.len() == 1 && names[0].contains(';') {
                "the header has no commas but semicolons: export the file comma-separated"
            } else if read.mapped {
                "record-level activity follows SPEC §3, with the names the recipe's \
                 inputs.mapping gives; add or correct the column's entry there"
            } else {
                "record-level activity follows SPEC §3; an extract with its own column names \
                 needs an inputs.mapping in the recipe"
            };
            return Err(Error::data_hint(
                path,
                None,
                Some(&read.label[column]),
                format!("required column missing (found: {found})"),
                hint,
            ));
        }
    }
    Ok(std::array::from_fn(|c| {
        if read.columns.read[c] {
            names.iter().position(|n| *n == read.source[c])
        } else {
            None
        }
    }))
}

/// The error for a located stop, with the row counted in the file.
fn located_error(
    path: &Path,
    names: &Names,
    e: Located,
    row_in_file: impl FnOnce(usize, usize) -> usize,
) -> Error {
    match e.stop {
        Stop::Failed(e) => *e,
        Stop::Malformed(rule, hint) => {
            Error::data_hint(path, Some(row_in_file(e.unit, e.row)), None, rule, hint)
        }
        Stop::Invalid { row, column, value } => {
            let (rule, hint) = activity::refusal(column, value.as_deref());
            Error::data_hint(
                path,
                Some(row_in_file(e.unit, row)),
                Some(&names.label[column]),
                rule,
                hint,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet

struct ParquetExtract {
    names: Names,
    positions: Positions,
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
    /// First record (0-based) of each row group.
    group_starts: Vec<u64>,
    rows: u64,
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::data_hint(
        path,
        None,
        None,
        format!("cannot read as Parquet: {e}"),
        "the file may be truncated or not Parquet; write it again",
    )
}

/// What a column's type holds.
#[derive(Clone, Copy, PartialEq)]
enum Holds {
    Text,
    Binary,
    Number,
    Date,
}

fn holds(dt: &DataType) -> Option<Holds> {
    use DataType::*;
    match dt {
        Utf8 | LargeUtf8 | Utf8View => Some(Holds::Text),
        Binary | LargeBinary | BinaryView => Some(Holds::Binary),
        Dictionary(_, v) => holds(v).filter(|h| matches!(h, Holds::Text | Holds::Binary)),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float32 | Float64 => {
            Some(Holds::Number)
        }
        Date32 | Date64 | Timestamp(..) => Some(Holds::Date),
        _ => None,
    }
}

/// What a column of Arrow type `dt` holds, if it can hold SPEC §3 column `c`'s values.
fn check_column_type(
    path: &Path,
    c: usize,
    dt: &DataType,
    read: &Names,
    form: &str,
) -> Result<Option<Holds>> {
    let held = holds(dt);
    let fits = match (c, held) {
        (_, Some(Holds::Text | Holds::Binary)) => true,
        (AGE, Some(Holds::Number)) => true,
        (c, Some(Holds::Date)) if activity::is_date(c) => true,
        (AGE, _) => false,
        (c, _) if activity::is_date(c) => false,
        (_, Some(Holds::Number)) => true,
        _ => false,
    };
    if fits {
        return Ok(held);
    }
    let expected = match c {
        AGE => "whole numbers of years (integer, whole float or text)",
        c if activity::is_date(c) => "dates (date, timestamp or YYYY-MM-DD text)",
        _ => "text",
    };
    Err(Error::data_hint(
        path,
        None,
        Some(&read.label[c]),
        format!("column of {form} type {dt}, which cannot hold {expected}"),
        "write the column with the type SPEC §3 gives it",
    ))
}

impl ParquetExtract {
    fn open(path: &Path, read: Names) -> Result<ParquetExtract> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let plain = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| parquet_error(path, e))?;
        let schema = plain.schema().clone();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let positions = check_names(path, &names, &read)?;
        // Text (and text-like) columns are asked for as dictionaries; the others as stored.
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (c, position) in positions.iter().enumerate() {
            let Some(p) = *position else { continue };
            let dt = fields[p].data_type().clone();
            let held = check_column_type(path, c, &dt, &read, "Parquet")?;
            let values = match held {
                Some(Holds::Text) => DataType::Utf8,
                Some(Holds::Binary) => DataType::Binary,
                _ => continue,
            };
            fields[p] = fields[p].clone().with_data_type(DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(values),
            ));
        }
        let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
        let metadata = ArrowReaderMetadata::try_new(plain.metadata().clone(), options)
            .map_err(|e| parquet_error(path, e))?;
        let roots: Vec<usize> = positions.iter().flatten().copied().collect();
        let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
        let mut group_starts = Vec::new();
        let mut rows = 0u64;
        for group in metadata.metadata().row_groups() {
            group_starts.push(rows);
            rows += group.num_rows().max(0) as u64;
        }
        Ok(ParquetExtract {
            names: read,
            positions,
            metadata,
            mask,
            group_starts,
            rows,
        })
    }

    fn count<C: Counter>(&self, path: &Path, pass: &C, threads: usize) -> Result<Vec<C::Tally>> {
        let groups = self.group_starts.len();
        let next_group = AtomicUsize::new(0);
        let bar = crate::progress::bar(self.rows, false);
        let next = || {
            let g = next_group.fetch_add(1, Ordering::Relaxed);
            (g < groups).then_some(Ok((g, g)))
        };
        let count = |pass: &C, tally: &mut C::Tally, g: usize, _: usize| {
            let fail = |row: usize, e: Error| Located {
                unit: g,
                row,
                stop: e.into(),
            };
            // Each unit opens the file itself: no file position is shared between threads.
            let file = File::open(path).map_err(|e| fail(0, Error::io(path, e)))?;
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
                    .with_projection(self.mask.clone())
                    .with_row_groups(vec![g])
                    .with_batch_size(PARQUET_BATCH)
                    .build()
                    .map_err(|e| fail(0, parquet_error(path, e)))?;
            let mut row = 0;
            for batch in reader {
                let batch = batch.map_err(|e| fail(row, parquet_error(path, e)))?;
                let rows = batch.num_rows();
                pass.count(tally, &ArrowBatch::new(&batch, &self.names))
                    .map_err(|stop| match stop {
                        Stop::Invalid { row: r, .. } => Located {
                            unit: g,
                            row: row + r,
                            stop,
                        },
                        stop => Located { unit: g, row, stop },
                    })?;
                row += rows;
                bar.inc(rows as u64);
            }
            Ok(())
        };
        let workers = threads.min(groups.max(1));
        let outcome = activity::run_parallel(pass, workers, &next, &count);
        bar.finish_and_clear();
        outcome.map_err(|e| {
            located_error(path, &self.names, e, |unit, row| {
                self.group_starts.get(unit).copied().unwrap_or(0) as usize + row + 1
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory Arrow batches

/// Record batches already in memory; each batch is a unit of work.
struct FrameExtract {
    names: Names,
    positions: Positions,
    batches: Vec<RecordBatch>,
    /// First record (0-based) of each batch.
    starts: Vec<u64>,
    rows: u64,
}

impl FrameExtract {
    fn open(label: &Path, batches: Vec<RecordBatch>, read: Names) -> Result<FrameExtract> {
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => Arc::new(Schema::empty()),
        };
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let positions = check_names(label, &names, &read)?;
        for (c, position) in positions.iter().enumerate() {
            if let Some(p) = *position {
                check_column_type(label, c, schema.field(p).data_type(), &read, "Arrow")?;
            }
        }
        // A stream's batches share one schema; a batch that does not is refused, not misread.
        if let Some((i, _)) = batches
            .iter()
            .enumerate()
            .find(|(_, b)| b.schema() != schema)
        {
            return Err(Error::data_hint(
                label,
                None,
                None,
                format!("batch {i} has another schema than the first batch"),
                "hand over one table (e.g. a single DataFrame), whose batches share a schema",
            ));
        }
        let mut starts = Vec::with_capacity(batches.len());
        let mut rows = 0u64;
        for b in &batches {
            starts.push(rows);
            rows += b.num_rows() as u64;
        }
        Ok(FrameExtract {
            names: read,
            positions,
            batches,
            starts,
            rows,
        })
    }

    fn count<C: Counter>(&self, label: &Path, pass: &C, threads: usize) -> Result<Vec<C::Tally>> {
        let units = self.batches.len();
        let next_unit = AtomicUsize::new(0);
        let next = || {
            let u = next_unit.fetch_add(1, Ordering::Relaxed);
            (u < units).then_some(Ok((u, u)))
        };
        let count = |pass: &C, tally: &mut C::Tally, u: usize, _: usize| {
            pass.count(tally, &ArrowBatch::new(&self.batches[u], &self.names))
                .map_err(|stop| match stop {
                    Stop::Invalid { row, .. } => Located { unit: u, row, stop },
                    stop => Located {
                        unit: u,
                        row: 0,
                        stop,
                    },
                })
        };
        let workers = threads.min(units.max(1));
        activity::run_parallel(pass, workers, &next, &count).map_err(|e| {
            located_error(label, &self.names, e, |unit, row| {
                self.starts.get(unit).copied().unwrap_or(0) as usize + row + 1
            })
        })
    }
}

/// Text values of an Arrow array of any string or binary type.
enum Texts<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Binary(&'a arrow_array::BinaryArray),
    LargeBinary(&'a arrow_array::LargeBinaryArray),
    BinaryView(&'a arrow_array::BinaryViewArray),
}

impl<'a> Texts<'a> {
    fn of(a: &'a dyn Array) -> Option<Texts<'a>> {
        Some(match a.data_type() {
            DataType::Utf8 => Texts::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Texts::LargeUtf8(a.as_string::<i64>()),
            DataType::Utf8View => Texts::Utf8View(a.as_string_view()),
            DataType::Binary => Texts::Binary(a.as_binary::<i32>()),
            DataType::LargeBinary => Texts::LargeBinary(a.as_binary::<i64>()),
            DataType::BinaryView => Texts::BinaryView(a.as_binary_view()),
            _ => return None,
        })
    }

    fn len(&self) -> usize {
        match self {
            Texts::Utf8(a) => a.len(),
            Texts::LargeUtf8(a) => a.len(),
            Texts::Utf8View(a) => a.len(),
            Texts::Binary(a) => a.len(),
            Texts::LargeBinary(a) => a.len(),
            Texts::BinaryView(a) => a.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            Texts::Utf8(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
            Texts::LargeUtf8(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
            Texts::Utf8View(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
            Texts::Binary(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::LargeBinary(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::BinaryView(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Whole numbers of an integer array, as i64 (`None` for null); `None` for other types.
fn integers(a: &dyn Array) -> Option<Vec<Option<i64>>> {
    fn collect<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array) -> Vec<Option<i64>>
    where
        T::Native: TryInto<i64>,
    {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.map(|v| v.try_into().unwrap_or(i64::MAX)))
            .collect()
    }
    Some(match a.data_type() {
        DataType::Int8 => collect::<Int8Type>(a),
        DataType::Int16 => collect::<Int16Type>(a),
        DataType::Int32 => collect::<Int32Type>(a),
        DataType::Int64 => collect::<Int64Type>(a),
        DataType::UInt8 => collect::<UInt8Type>(a),
        DataType::UInt16 => collect::<UInt16Type>(a),
        DataType::UInt32 => collect::<UInt32Type>(a),
        DataType::UInt64 => collect::<UInt64Type>(a),
        _ => return None,
    })
}

/// Days since 1970-01-01 of a date or timestamp array (the UTC date of a timestamp).
fn days(a: &dyn Array) -> Option<Vec<Option<i64>>> {
    use arrow_array::types::{
        Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    fn scaled<T: arrow_array::ArrowPrimitiveType<Native = i64>>(
        a: &dyn Array,
        per_day: i64,
    ) -> Vec<Option<i64>> {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.map(|v| v.div_euclid(per_day)))
            .collect()
    }
    Some(match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        DataType::Date64 => scaled::<Date64Type>(a, 86_400_000),
        DataType::Timestamp(TimeUnit::Second, _) => scaled::<TimestampSecondType>(a, 86_400),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            scaled::<TimestampMillisecondType>(a, 86_400_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            scaled::<TimestampMicrosecondType>(a, 86_400_000_000)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            scaled::<TimestampNanosecondType>(a, 86_400_000_000_000)
        }
        _ => return None,
    })
}

fn floats(a: &dyn Array) -> Option<Vec<Option<f64>>> {
    Some(match a.data_type() {
        DataType::Float32 => a
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::Float64 => a.as_primitive::<Float64Type>().iter().collect(),
        _ => return None,
    })
}

/// A batch of Arrow columns, by [`COLUMNS`] index.
struct ArrowBatch {
    rows: usize,
    columns: [Option<ArrayRef>; COLUMNS.len()],
}

impl ArrowBatch {
    fn new(batch: &RecordBatch, names: &Names) -> ArrowBatch {
        ArrowBatch {
            rows: batch.num_rows(),
            columns: std::array::from_fn(|c| {
                names.columns.read[c]
                    .then(|| batch.column_by_name(&names.source[c]).cloned())
                    .flatten()
            }),
        }
    }
}

impl Batch for ArrowBatch {
    fn rows(&self) -> usize {
        self.rows
    }

    fn resolve(&self, sink: ColumnSink<'_, '_>) -> std::result::Result<(), Stop> {
        let rows = self.rows;
        let Some(array) = &self.columns[sink.column()] else {
            return sink.absent(rows);
        };
        // Text columns are asked for with i32 keys: read them in place.
        if let Some(dict) = array.as_dictionary_opt::<Int32Type>() {
            let values = Texts::of(dict.values().as_ref()).ok_or_else(|| unreadable(array))?;
            let keys = dict.keys().values();
            let entry = |i| values.get(i);
            return match dict.keys().nulls() {
                None => sink.dictionary(values.len(), entry, rows, |r| Some(keys[r] as usize)),
                Some(nulls) => sink.dictionary(values.len(), entry, rows, |r| {
                    nulls.is_valid(r).then(|| keys[r] as usize)
                }),
            };
        }
        if let Some(dict) = array.as_any_dictionary_opt() {
            let keys = dict.normalized_keys();
            let values = Texts::of(dict.values().as_ref()).ok_or_else(|| unreadable(array))?;
            return sink.dictionary(
                values.len(),
                |i| values.get(i),
                rows,
                |r| array.is_valid(r).then(|| keys[r]),
            );
        }
        if let Some(texts) = Texts::of(array.as_ref()) {
            return sink.text(rows, |i| texts.get(i));
        }
        let whole = if activity::is_date(sink.column()) {
            days(array.as_ref())
        } else {
            integers(array.as_ref())
        };
        if let Some(values) = whole {
            return sink.ints(rows, |i| values[i]);
        }
        if let Some(values) = floats(array.as_ref()) {
            return sink.floats(rows, |i| values[i]);
        }
        Err(unreadable(array))
    }

    fn raw(&self, column: usize, row: usize) -> Option<Vec<u8>> {
        let array = self.columns[column].as_ref()?;
        if array.is_null(row) {
            return None;
        }
        if let Some(dict) = array.as_any_dictionary_opt() {
            let key = *dict.normalized_keys().get(row)?;
            return Texts::of(dict.values().as_ref())?
                .get(key)
                .map(<[u8]>::to_vec);
        }
        if let Some(texts) = Texts::of(array.as_ref()) {
            return texts.get(row).map(<[u8]>::to_vec);
        }
        let formatted = match (integers(array.as_ref()), floats(array.as_ref())) {
            (Some(v), _) => v[row].map(|v| v.to_string()),
            (_, Some(v)) => v[row].map(|v| v.to_string()),
            _ => days(array.as_ref())?[row].map(|d| format!("day {d} since 1970-01-01")),
        };
        formatted.map(String::into_bytes)
    }
}

fn unreadable(array: &ArrayRef) -> Stop {
    Stop::from(Error::Usage(format!(
        "reader: a column of type {} cannot be read",
        array.data_type()
    )))
}

// ---------------------------------------------------------------------------------------------
// CSV

struct CsvExtract {
    names: Names,
    gzip: bool,
    positions: Positions,
    fields: usize,
    file_bytes: u64,
}

/// Counts the bytes read from the file (for the progress bar).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The file as a stream of blocks of whole records.
struct Blocks {
    input: Box<dyn Read + Send>,
    /// Bytes a block holds before it is cut at its last record end.
    block: usize,
    carry: Vec<u8>,
    eof: bool,
    next: usize,
}

impl Blocks {
    fn open(path: &Path, gzip: bool, read: Arc<AtomicU64>) -> std::io::Result<Blocks> {
        let file = Counted {
            inner: File::open(path)?,
            read,
        };
        let input: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                file,
            )))
        } else {
            Box::new(file)
        };
        Ok(Blocks {
            input,
            block: CSV_BLOCK,
            carry: Vec::new(),
            eof: false,
            next: 0,
        })
    }

    /// Reads until `carry` holds at least `bytes` bytes or the input ends.
    fn fill(&mut self, bytes: usize) -> std::io::Result<()> {
        while self.carry.len() < bytes && !self.eof {
            let start = self.carry.len();
            self.carry.resize(bytes, 0);
            let n = loop {
                match self.input.read(&mut self.carry[start..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.carry.truncate(start);
                    return Err(e);
                }
            };
            self.carry.truncate(start + n);
            self.eof = n == 0;
        }
        Ok(())
    }

    /// The next block of whole records and its index, `None` at the end.
    fn next_block(&mut self) -> std::result::Result<Option<(usize, Vec<u8>)>, String> {
        let mut want = self.block;
        loop {
            self.fill(want).map_err(|e| format!("cannot read: {e}"))?;
            if self.carry.is_empty() {
                return Ok(None);
            }
            let end = if self.eof {
                Some(self.carry.len())
            } else {
                last_record_end(&self.carry).map(|e| before_blank_lines(&self.carry, e) + 1)
            };
            match end {
                Some(end) => {
                    let rest = self.carry.split_off(end);
                    let block = std::mem::replace(&mut self.carry, rest);
                    self.next += 1;
                    return Ok(Some((self.next - 1, block)));
                }
                None if self.carry.len() >= CSV_MAX_RECORD => {
                    return Err(format!(
                        "no line end (outside quotes) in {} MiB: not a CSV table, or a quote \
                         is never closed",
                        CSV_MAX_RECORD >> 20
                    ));
                }
                None => want = self.carry.len() * 2,
            }
        }
    }

    /// The header record's bytes (without its line end).
    fn header(&mut self) -> std::result::Result<Option<Vec<u8>>, String> {
        let mut want = 64 * 1024;
        loop {
            self.fill(want).map_err(|e| format!("cannot read: {e}"))?;
            if self.carry.is_empty() {
                return Ok(None);
            }
            match first_record_end(&self.carry) {
                Some(end) => {
                    let rest = self.carry.split_off(end + 1);
                    let mut header = std::mem::replace(&mut self.carry, rest);
                    header.truncate(end);
                    return Ok(Some(header));
                }
                None if self.eof => return Ok(Some(std::mem::take(&mut self.carry))),
                None if self.carry.len() >= 1 << 20 => {
                    return Err("no line end in the first MiB: not a CSV table".into());
                }
                None => want = self.carry.len() * 2,
            }
        }
    }
}

/// Position of the last line end outside quotes (a quote toggles; `""` toggles twice).
fn last_record_end(bytes: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', bytes).is_none() {
        return memchr::memrchr(b'\n', bytes);
    }
    let mut quoted = false;
    let mut last = None;
    for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
        if bytes[at] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            last = Some(at);
        }
    }
    last
}

/// The first line end of the run of line ends that ends at `end`, so blank lines go to the next
/// block's start, where they are seen before its records (and refused). A block of nothing but
/// line ends is kept whole.
fn before_blank_lines(bytes: &[u8], end: usize) -> usize {
    let mut at = end;
    loop {
        let previous = match at.checked_sub(1).map(|i| bytes[i]) {
            Some(b'\n') => at - 1,
            Some(b'\r') if at >= 2 && bytes[at - 2] == b'\n' => at - 2,
            _ => return at,
        };
        if previous == 0 {
            return end;
        }
        at = previous;
    }
}

fn first_record_end(bytes: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
        if bytes[at] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            return Some(at);
        }
    }
    None
}

fn csv_error(path: &Path, rule: String) -> Error {
    Error::data_hint(
        path,
        None,
        None,
        rule,
        "check that the file is a comma-separated table with a header row",
    )
}

impl CsvExtract {
    fn open(path: &Path, gzip: bool, read: Names) -> Result<CsvExtract> {
        let file_bytes = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        let mut blocks =
            Blocks::open(path, gzip, Arc::default()).map_err(|e| Error::io(path, e))?;
        let header = blocks.header().map_err(|rule| csv_error(path, rule))?;
        let Some(mut header) = header else {
            return Err(Error::data_hint(
                path,
                None,
                None,
                "the file is empty".into(),
                "the file has no header row",
            ));
        };
        if header.starts_with(b"\xEF\xBB\xBF") {
            header.drain(..3);
        }
        if header.last() == Some(&b'\r') {
            header.pop();
        }
        let text = std::str::from_utf8(&header).map_err(|e| {
            Error::data_hint(
                path,
                None,
                None,
                format!(
                    "not UTF-8 text (byte 0x{:02X} in the header row)",
                    header[e.valid_up_to()]
                ),
                "re-export the file as UTF-8 (e.g. from Excel: CSV UTF-8)",
            )
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut record = csv::StringRecord::new();
        let names: Vec<String> = match reader.read_record(&mut record) {
            Ok(true) => record.iter().map(|n| n.trim().to_string()).collect(),
            Ok(false) => Vec::new(),
            Err(e) => return Err(csv_error(path, format!("cannot read the header: {e}"))),
        };
        let positions = check_names(path, &names, &read)?;
        Ok(CsvExtract {
            names: read,
            gzip,
            positions,
            fields: names.len(),
            file_bytes,
        })
    }

    fn count<C: Counter>(&self, path: &Path, pass: &C, threads: usize) -> Result<Vec<C::Tally>> {
        let read = Arc::new(AtomicU64::new(0));
        let mut blocks =
            Blocks::open(path, self.gzip, read.clone()).map_err(|e| Error::io(path, e))?;
        // Small files still make a few blocks per worker, so both cores share them.
        blocks.block = (self.file_bytes as usize / 16).clamp(64 << 10, CSV_BLOCK);
        blocks.header().map_err(|rule| csv_error(path, rule))?;
        let blocks = Mutex::new(blocks);
        // Records per block, filled as blocks are counted (to number rows in errors).
        let records: Mutex<Vec<Option<usize>>> = Mutex::new(Vec::new());
        let bar = crate::progress::bar(self.file_bytes, true);
        let next = || {
            let mut blocks = match blocks.lock() {
                Ok(blocks) => blocks,
                Err(_) => {
                    return Some(Err(Located {
                        unit: usize::MAX,
                        row: 0,
                        stop: Error::Usage("a reader thread failed".into()).into(),
                    }));
                }
            };
            let index = blocks.next;
            let block = blocks.next_block().map_err(|rule| Located {
                unit: index,
                row: 0,
                stop: csv_error(path, rule).into(),
            });
            bar.set_position(read.load(Ordering::Relaxed));
            block.transpose()
        };
        let count = |pass: &C, tally: &mut C::Tally, index: usize, block: Vec<u8>| {
            let batch = CsvBatch::parse(&block, &self.positions, self.fields).map_err(
                |(row, rule, hint)| Located {
                    unit: index,
                    row,
                    stop: Stop::Malformed(rule, hint),
                },
            )?;
            pass.count(tally, &batch).map_err(|stop| {
                let row = match &stop {
                    Stop::Invalid { row, .. } => *row,
                    Stop::Malformed(..) | Stop::Failed(_) => 0,
                };
                Located {
                    unit: index,
                    row,
                    stop,
                }
            })?;
            if let Ok(mut records) = records.lock() {
                if records.len() <= index {
                    records.resize(index + 1, None);
                }
                records[index] = Some(batch.rows);
            }
            Ok(())
        };
        let outcome = activity::run_parallel(pass, threads, &next, &count);
        bar.finish_and_clear();
        outcome.map_err(|e| {
            let before = |unit: usize| -> usize {
                let records = records.lock().map(|r| r.clone()).unwrap_or_default();
                (0..unit)
                    .map(|u| records.get(u).copied().flatten().unwrap_or(0))
                    .sum()
            };
            located_error(path, &self.names, e, |unit, row| before(unit) + row + 1)
        })
    }
}

/// A parsed block: the fields' bytes (unquoted, one after another) and, per column read, where
/// each row's field starts and ends in them.
struct CsvBatch {
    rows: usize,
    bytes: Vec<u8>,
    spans: [Option<Vec<(u32, u32)>>; COLUMNS.len()],
}

/// Refusals of a block that hold before its first record: a run of blank lines filling a block
/// is no trailing line end (and reading a gigabyte of them would take seconds to say nothing),
/// and a blank line first is refused like any other.
fn check_block_start(block: &[u8]) -> std::result::Result<(), (usize, String, &'static str)> {
    if block.len() >= 64 << 10 && block.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return Err((
            0,
            format!("blank lines only: {} bytes of line ends", block.len()),
            BLANK_HINT,
        ));
    }
    if blank_line(block, 0) {
        return Err((0, "blank line (a line with no fields)".into(), BLANK_HINT));
    }
    Ok(())
}

/// Whether a blank line starts at `at` with records after it. The CSV reader skips blank lines;
/// one with records after it is refused (a record cut out, or a second table pasted below),
/// while line ends that only close the file are not.
#[inline]
fn blank_line(block: &[u8], at: usize) -> bool {
    let mut rest = &block[at..];
    // A `\n` right after the `\r` the reader stopped at is the rest of a CRLF.
    if at > 0 && block[at - 1] == b'\r' && rest.first() == Some(&b'\n') {
        rest = &rest[1..];
    }
    let gap = rest
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    gap > 0 && gap < rest.len()
}

/// What the hint says of blank lines and rows of empty fields.
const BLANK_HINT: &str = "remove blank lines and rows of empty fields: they hold no record, and \
                          may be where part of the extract was lost";

/// The rule and hint for a record with `found` fields where the header has `fields`; `cut` when
/// it is the file's last line with no line end.
fn wrong_field_count(found: usize, fields: usize, cut: bool) -> (String, &'static str) {
    let rule = format!(
        "record has {found} fields; the header has {fields}{}",
        if cut && found < fields {
            " (the last line has no line end: the file looks cut short)"
        } else {
            ""
        }
    );
    let hint = if cut {
        "copy or export the file again, whole"
    } else {
        CSV_FIELDS_HINT
    };
    (rule, hint)
}

/// What the hint says of a record with the wrong number of fields.
const CSV_FIELDS_HINT: &str =
    "every record has one field per header column; quote fields that hold commas";

impl CsvBatch {
    /// Parses a block of whole records; a record with the wrong number of fields, a blank line
    /// or a row of commas gives its row in the block, the rule and a hint.
    fn parse(
        block: &[u8],
        positions: &Positions,
        fields: usize,
    ) -> std::result::Result<CsvBatch, (usize, String, &'static str)> {
        const FIELDS: &str = CSV_FIELDS_HINT;
        const BLANK: &str = BLANK_HINT;
        use csv_core::ReadRecordResult as Read;
        let mut reader = csv_core::Reader::new();
        // Unquoted fields are never longer than the text they came from.
        let mut bytes = vec![0u8; block.len() + 1];
        let mut ends = vec![0usize; fields + 1];
        let mut record: Vec<usize> = Vec::with_capacity(fields + 1);
        let mut spans: [Option<Vec<(u32, u32)>>; COLUMNS.len()] =
            std::array::from_fn(|c| positions[c].map(|_| Vec::with_capacity(block.len() / 64)));
        let (mut read, mut written, mut start, mut rows) = (0, 0, 0, 0);
        check_block_start(block)?;
        loop {
            let (result, n_in, n_out, n_ends) =
                reader.read_record(&block[read..], &mut bytes[written..], &mut ends);
            read += n_in;
            written += n_out;
            // Ends count from the record's start, whatever the calls it took.
            record.extend_from_slice(&ends[..n_ends]);
            match result {
                Read::InputEmpty | Read::OutputEndsFull => {}
                Read::OutputFull => {
                    return Err((
                        rows,
                        "record has a field the reader cannot hold".into(),
                        FIELDS,
                    ));
                }
                Read::Record => {
                    if record.len() != fields {
                        // The file's last line, with no line end: the file was cut short.
                        let cut = read == block.len() && !block.ends_with(b"\n");
                        let (rule, hint) = wrong_field_count(record.len(), fields, cut);
                        return Err((rows, rule, hint));
                    }
                    if fields > 1 && record[fields - 1] == 0 {
                        return Err((
                            rows,
                            "every field is empty (a row of commas only)".into(),
                            BLANK,
                        ));
                    }
                    for (span, position) in spans.iter_mut().zip(positions) {
                        if let (Some(span), Some(p)) = (span, position) {
                            let from = if *p == 0 { 0 } else { record[p - 1] };
                            span.push(((start + from) as u32, (start + record[*p]) as u32));
                        }
                    }
                    record.clear();
                    start = written;
                    rows += 1;
                    if blank_line(block, read) {
                        return Err((rows, "blank line (a line with no fields)".into(), BLANK));
                    }
                }
                Read::End => break,
            }
        }
        bytes.truncate(written);
        Ok(CsvBatch { rows, bytes, spans })
    }

    #[inline]
    fn field(&self, column: usize, row: usize) -> Option<&[u8]> {
        let (from, to) = self.spans[column].as_ref()?[row];
        let field = &self.bytes[from as usize..to as usize];
        // An empty field is a null, as in every CSV reader analysts use.
        (!field.is_empty()).then_some(field)
    }
}

impl Batch for CsvBatch {
    fn rows(&self) -> usize {
        self.rows
    }

    fn resolve(&self, sink: ColumnSink<'_, '_>) -> std::result::Result<(), Stop> {
        let column = sink.column();
        if self.spans[column].is_none() {
            return sink.absent(self.rows);
        }
        sink.text(self.rows, |row| self.field(column, row))
    }

    fn raw(&self, column: usize, row: usize) -> Option<Vec<u8>> {
        self.field(column, row).map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_before_records_are_refused_and_line_ends_closing_the_file_are_not() {
        let positions: Positions = std::array::from_fn(|c| (c < 2).then_some(c));
        let rows = |block: &[u8]| CsvBatch::parse(block, &positions, 2).map(|b| b.rows);
        assert_eq!(rows(b"a,b\r\nc,d\r\n"), Ok(2));
        assert_eq!(rows(b"a,b\nc,d\n\n\n"), Ok(2), "trailing line ends");
        assert_eq!(rows(b"a,b\r\nc,d\r\n\r\n"), Ok(2));
        for bad in [
            &b"a,b\n\nc,d\n"[..],
            b"a,b\r\n\r\nc,d",
            b"\na,b\n",
            b"a,b\n,\n",
        ] {
            let (row, rule, _) = rows(bad).expect_err("refused");
            assert!(
                rule.contains("blank line") || rule.contains("commas only"),
                "{rule}"
            );
            assert!(row <= 1, "{row}");
        }
        let (_, rule, _) = rows(&[b'\n'; 64 << 10]).expect_err("a block of blank lines");
        assert!(rule.contains("blank lines only"), "{rule}");
        // A block is cut before a run of blank lines, so the next block starts with them.
        assert_eq!(before_blank_lines(b"a,b\n\n", 4), 3);
        assert_eq!(before_blank_lines(b"a\r\n\r\n", 4), 2);
        assert_eq!(before_blank_lines(b"a,b\n", 3), 3);
        assert_eq!(
            before_blank_lines(b"\n\n\n", 2),
            2,
            "only line ends: kept whole"
        );
    }

    #[test]
    fn record_ends_skip_line_ends_inside_quotes() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne"), Some(7));
        assert_eq!(last_record_end(b"a,\"b\nc\"\nd,\"e\nf"), Some(7));
        assert_eq!(last_record_end(b"a,\"b\"\"\n\"\n"), Some(8));
        assert_eq!(last_record_end(b"\"a\nb"), None);
        assert_eq!(first_record_end(b"x,\"y\nz\"\nrest\n"), Some(7));
    }

    #[test]
    fn blocks_hold_whole_records_whatever_the_read_sizes() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{i},\"q\nq\",{}\r\n", i * 7).into_bytes())
            .collect();
        let path = std::env::temp_dir().join(format!("strata-blocks-{}.csv", std::process::id()));
        std::fs::write(&path, &text).expect("temp file");
        let mut blocks = Blocks::open(&path, false, Arc::default()).expect("opens");
        blocks.block = 1000;
        let mut joined = Vec::new();
        let mut count = 0;
        while let Some((index, block)) = blocks.next_block().expect("reads") {
            assert_eq!(index, count);
            assert!(block.ends_with(b"\r\n"));
            joined.extend(block);
            count += 1;
        }
        assert!(count > 100, "{count} blocks");
        std::fs::remove_file(&path).ok();
        assert_eq!(joined, text);
    }
}
