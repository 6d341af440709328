//! The record-level reader on randomly structured Parquet: the same records, whatever the
//! row-group layout, page sizes, encodings (dictionary, PLAIN, a dictionary that falls back to
//! PLAIN mid chunk, DELTA, BYTE_STREAM_SPLIT, ALP), compression, column order, the column types
//! SPEC §3 allows and the unrelated columns beside them, must give every output table of the same
//! records written as a plain CSV, byte for byte.
//!
//! The records are the example recipe's extract (`data/example/activity.csv`), edited at random
//! (sexes `1` `2` `0` `9` `X`, empty and null, null ages, dates across the 2023/24 year, missing,
//! empty and unknown codes) and put in a random order. The CSV holds what the Parquet file means:
//! where a type cannot hold a value as written (sex as a number holds no `X`), the value is null in
//! the Parquet file and an empty field in the CSV.
//!
//! The warnings must match too: this test found the reader listing `(empty)` among a Parquet
//! column's unrecognised sex codes when no record had an empty sex (a dictionary column's null
//! was resolved whether or not a row held one), which the reader no longer does.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::types::{Int16Type, Int32Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, DictionaryArray,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, ListArray, RecordBatch, StringArray, StringViewArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{BrotliLevel, Compression, Encoding, GzipLevel, PageType, ZstdLevel};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::{
    CdcOptions, EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion,
};
use parquet::schema::types::ColumnPath;
use proptest::prelude::*;
use proptest::sample::Index;
use strata_api::StratifiedCounts;

// ---------------------------------------------------------------------------------------------
// Records

/// One examination, as the SPEC §3 columns mean it (`None`: null or empty).
#[derive(Clone, Debug)]
struct Record {
    provider: String,
    site: Option<String>,
    /// Days since 1970-01-01.
    date: i32,
    practice: Option<String>,
    lsoa: Option<String>,
    sex: Option<String>,
    age: Option<i64>,
    modality: String,
    exam: Option<String>,
    source: Option<String>,
}

/// 2023-04-01, the first day of the example recipe's year, in days since 1970-01-01.
const YEAR_START: i32 = 19_448;
/// Days in the year 2023-04-01 .. 2024-03-31 (2024 is a leap year).
const YEAR_DAYS: i32 = 366;

// Days to and from civil dates, through the engine's calendar (chrono).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let days = strata::dates::days_from_civil(y, m, d).expect("a date");
    i32::try_from(days).expect("a Date32")
}

fn date_text(days: i32) -> String {
    strata::dates::date_text(i64::from(days)).expect("a date")
}

/// The example recipe's extract, read once.
fn base_records() -> &'static [Record] {
    static BASE: OnceLock<Vec<Record>> = OnceLock::new();
    BASE.get_or_init(|| {
        assert_eq!(days_from_civil(2023, 4, 1), YEAR_START);
        assert_eq!(date_text(YEAR_START + YEAR_DAYS - 1), "2024-03-31");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example/activity.csv");
        let mut reader = csv::Reader::from_path(&path).expect("the example extract");
        let header = reader.headers().expect("header").clone();
        let at = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("column {name}"))
        };
        let columns = [
            "provider_code",
            "site_code",
            "test_date",
            "gp_practice_code",
            "lsoa11",
            "sex",
            "age",
            "modality",
            "exam_code",
            "patient_source",
        ]
        .map(at);
        reader
            .records()
            .map(|row| {
                let row = row.expect("record");
                let field = |c: usize| Some(row[columns[c]].to_string()).filter(|v| !v.is_empty());
                let date: Vec<u32> = row[columns[2]]
                    .split('-')
                    .map(|p| p.parse().expect("date part"))
                    .collect();
                Record {
                    provider: row[columns[0]].to_string(),
                    site: field(1),
                    date: days_from_civil(date[0] as i32, date[1], date[2]),
                    practice: field(3),
                    lsoa: field(4),
                    sex: field(5),
                    age: field(6).map(|a| a.parse().expect("age")),
                    modality: row[columns[7]].to_string(),
                    exam: field(8),
                    source: field(9),
                }
            })
            .collect()
    })
}

/// The distinct values of a column of the base records.
fn distinct(value: impl Fn(&Record) -> Option<String>) -> Vec<String> {
    let mut values: Vec<String> = base_records().iter().filter_map(value).collect();
    values.sort();
    values.dedup();
    values
}

/// A change to one record.
#[derive(Clone, Debug)]
enum Edit {
    Provider(String),
    Date(i32),
    Practice(Option<String>),
    Lsoa(Option<String>),
    Sex(Option<String>),
    Age(Option<i64>),
    Modality(String),
    Exam(Option<String>),
}

/// A nullable code: one of the file's, empty, null, or one no lookup knows.
fn code(values: Vec<String>, unknown: &str) -> impl Strategy<Value = Option<String>> + use<> {
    let mut options: Vec<Option<String>> = values.into_iter().map(Some).collect();
    options.extend([None, Some(String::new()), Some(unknown.to_string())]);
    prop::sample::select(options)
}

fn edit() -> impl Strategy<Value = Edit> {
    let sexes: Vec<Option<String>> = ["1", "2", "0", "9", "X", ""]
        .iter()
        .map(|s| Some(s.to_string()))
        .chain([None])
        .collect();
    let mut modalities = distinct(|r| Some(r.modality.clone()));
    modalities.push("unknown-modality".into());
    prop_oneof![
        prop::sample::select(distinct(|r| Some(r.provider.clone()))).prop_map(Edit::Provider),
        (0..YEAR_DAYS).prop_map(Edit::Date),
        code(distinct(|r| r.practice.clone()), "P99").prop_map(Edit::Practice),
        code(distinct(|r| r.lsoa.clone()), "L99").prop_map(Edit::Lsoa),
        prop::sample::select(sexes).prop_map(Edit::Sex),
        prop::option::weighted(0.5, 0i64..=105).prop_map(Edit::Age),
        prop::sample::select(modalities).prop_map(Edit::Modality),
        code(distinct(|r| r.exam.clone()), "ZZZZZ").prop_map(Edit::Exam),
    ]
}

fn apply(records: &mut [Record], edits: &[(Index, Edit)]) {
    for (at, edit) in edits {
        let r = &mut records[at.index(records.len())];
        match edit.clone() {
            Edit::Provider(v) => r.provider = v,
            Edit::Date(d) => r.date = YEAR_START + d,
            Edit::Practice(v) => r.practice = v,
            Edit::Lsoa(v) => r.lsoa = v,
            Edit::Sex(v) => r.sex = v,
            Edit::Age(v) => r.age = v,
            Edit::Modality(v) => r.modality = v,
            Edit::Exam(v) => r.exam = v,
        }
    }
}

/// The order records are written in (shrinks towards the file's own).
#[derive(Clone, Copy, Debug)]
enum Order {
    AsFile,
    Reversed,
    Shuffled(u64),
}

fn reorder(records: &mut [Record], order: Order) {
    match order {
        Order::AsFile => {}
        Order::Reversed => records.reverse(),
        Order::Shuffled(seed) => {
            // Fisher–Yates on splitmix64: a permutation from one shrinkable number.
            let mut state = seed;
            let mut next = || {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            };
            for i in (1..records.len()).rev() {
                records.swap(i, (next() % (i as u64 + 1)) as usize);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structure of the Parquet file

/// Arrow type of a text column.
#[derive(Clone, Copy, Debug)]
enum Text {
    Utf8,
    LargeUtf8,
    Utf8View,
    /// BYTE_ARRAY without the String annotation, as older Spark and Impala write text.
    Binary,
    LargeBinary,
    /// Arrow dictionary arrays (the writer re-encodes them: a Parquet dictionary page holds only
    /// the values rows use).
    Dictionary {
        keys16: bool,
        large_values: bool,
    },
}

/// How a null text value is written.
#[derive(Clone, Copy, Debug)]
enum Missing {
    Null,
    Empty,
    /// Some rows null, the others empty.
    Mixed,
}

#[derive(Clone, Copy, Debug)]
struct TextColumn {
    text: Text,
    missing: Missing,
}

#[derive(Clone, Copy, Debug)]
enum SexAs {
    Text(TextColumn),
    /// `1` `2` `0` `9` as numbers; `X` and empty cannot be written, so they are null.
    Int64,
    /// As pandas writes an integer column with nulls.
    Float64,
}

#[derive(Clone, Copy, Debug)]
enum AgeAs {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    Float32,
    Float64,
    Text(TextColumn),
}

#[derive(Clone, Copy, Debug)]
enum DateAs {
    Date32,
    Date64,
    Timestamp {
        unit: TimeUnit,
        utc: bool,
        /// A time of day after midnight (the reader takes the UTC date).
        time_of_day: bool,
    },
    /// `YYYY-MM-DD`, or with ` 00:00:00` as SQL exports write timestamps.
    Text {
        text: Text,
        time: bool,
    },
}

/// A column no rule reads, beside the SPEC ones.
#[derive(Clone, Copy, Debug)]
enum Extra {
    Text,
    Int64,
    Float64,
    Boolean,
    List,
    Struct,
}

#[derive(Clone, Copy, Debug)]
enum Codec {
    Uncompressed,
    Snappy,
    Gzip,
    Lz4,
    Lz4Raw,
    Zstd,
    Brotli,
}

/// How one column's chunks are written.
#[derive(Clone, Copy, Debug)]
struct Chunking {
    dictionary: bool,
    /// Bytes of dictionary page before the writer falls back to the fallback encoding.
    dictionary_page_limit: usize,
    /// Which encoding after (or instead of) the dictionary: PLAIN or one of the type's others.
    fallback: usize,
    codec: Codec,
    /// REQUIRED (no definition levels) when the column holds no null.
    required: bool,
}

/// What is written: the columns' types, which optional and extra columns, their order.
#[derive(Clone, Debug)]
struct Columns {
    provider: Text,
    site: Option<TextColumn>,
    date: DateAs,
    practice: TextColumn,
    lsoa: TextColumn,
    sex: SexAs,
    age: AgeAs,
    modality: Text,
    exam: TextColumn,
    source: Option<TextColumn>,
    extra: Option<Extra>,
    /// A permutation of the 11 column slots: the file's column order.
    order: Vec<usize>,
    chunking: Vec<Chunking>,
}

/// How the file is cut and paged.
#[derive(Clone, Debug)]
struct Layout {
    /// The first rows, each written and flushed as its own row group.
    single_row_groups: usize,
    max_row_group_rows: Option<usize>,
    max_row_group_bytes: Option<usize>,
    /// Rows per batch handed to the writer.
    write_rows: usize,
    /// Writes between explicit flushes (row groups of uneven sizes).
    flush_every: Option<usize>,
    write_batch_size: usize,
    data_page_size_limit: usize,
    data_page_row_count_limit: usize,
    page_v2: bool,
    statistics: EnabledStatistics,
    bloom: bool,
    offset_index: bool,
    /// Whether the Arrow schema is stored (pyarrow, polars) or not (DuckDB, Spark).
    arrow_schema: bool,
    coerce_types: bool,
    /// Content-defined chunking's minimum chunk size.
    cdc: Option<usize>,
}

const SLOTS: usize = 11;

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        Just(Text::Utf8),
        Just(Text::LargeUtf8),
        Just(Text::Utf8View),
        Just(Text::Binary),
        Just(Text::LargeBinary),
        (any::<bool>(), any::<bool>()).prop_map(|(keys16, large_values)| Text::Dictionary {
            keys16,
            large_values
        }),
    ]
}

fn text_column() -> impl Strategy<Value = TextColumn> {
    let missing = prop_oneof![
        Just(Missing::Null),
        Just(Missing::Empty),
        Just(Missing::Mixed)
    ];
    (text(), missing).prop_map(|(text, missing)| TextColumn { text, missing })
}

fn sex_as() -> impl Strategy<Value = SexAs> {
    prop_oneof![
        text_column().prop_map(SexAs::Text),
        Just(SexAs::Int64),
        Just(SexAs::Float64),
    ]
}

fn age_as() -> impl Strategy<Value = AgeAs> {
    prop_oneof![
        Just(AgeAs::Int64),
        Just(AgeAs::Int32),
        Just(AgeAs::Int16),
        Just(AgeAs::Int8),
        Just(AgeAs::UInt8),
        Just(AgeAs::Float64),
        Just(AgeAs::Float32),
        text_column().prop_map(AgeAs::Text),
    ]
}

fn date_as() -> impl Strategy<Value = DateAs> {
    let unit = prop_oneof![
        Just(TimeUnit::Millisecond),
        Just(TimeUnit::Microsecond),
        Just(TimeUnit::Second),
        Just(TimeUnit::Nanosecond),
    ];
    prop_oneof![
        Just(DateAs::Date32),
        Just(DateAs::Date64),
        (unit, any::<bool>(), any::<bool>()).prop_map(|(unit, utc, time_of_day)| {
            DateAs::Timestamp {
                unit,
                utc,
                time_of_day,
            }
        }),
        (text(), any::<bool>()).prop_map(|(text, time)| DateAs::Text { text, time }),
    ]
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        Just(Extra::Text),
        Just(Extra::Int64),
        Just(Extra::Float64),
        Just(Extra::Boolean),
        Just(Extra::List),
        Just(Extra::Struct),
    ]
}

fn chunking() -> impl Strategy<Value = Chunking> {
    let codec = prop_oneof![
        Just(Codec::Uncompressed),
        Just(Codec::Snappy),
        Just(Codec::Gzip),
        Just(Codec::Lz4),
        Just(Codec::Lz4Raw),
        Just(Codec::Zstd),
        Just(Codec::Brotli),
    ];
    // Small limits make a dictionary fall back mid chunk (a few distinct codes fill 16 bytes).
    let limit = prop_oneof![Just(1usize << 20), 1usize..=64, 65usize..=4096];
    (any::<bool>(), limit, 0usize..3, codec, any::<bool>()).prop_map(
        |(dictionary, dictionary_page_limit, fallback, codec, required)| Chunking {
            dictionary,
            dictionary_page_limit,
            fallback,
            codec,
            required,
        },
    )
}

fn columns() -> impl Strategy<Value = Columns> {
    (
        (
            text(),
            prop::option::of(text_column()),
            date_as(),
            text_column(),
        ),
        (text_column(), sex_as(), age_as(), text()),
        (
            text_column(),
            prop::option::of(text_column()),
            prop::option::of(extra()),
        ),
        Just((0..SLOTS).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec(chunking(), SLOTS),
    )
        .prop_map(
            |(
                (provider, site, date, practice),
                (lsoa, sex, age, modality),
                (exam, source, extra),
                order,
                chunking,
            )| Columns {
                provider,
                site,
                date,
                practice,
                lsoa,
                sex,
                age,
                modality,
                exam,
                source,
                extra,
                order,
                chunking,
            },
        )
}

fn layout(rows: usize) -> impl Strategy<Value = Layout> {
    // From one row per group to the whole file in one.
    let group_rows = prop_oneof![
        Just(None),
        (1usize..=rows).prop_map(Some),
        (2usize..=64).prop_map(Some),
    ];
    let statistics = prop_oneof![
        Just(EnabledStatistics::Page),
        Just(EnabledStatistics::Chunk),
        Just(EnabledStatistics::None),
    ];
    (
        (
            prop_oneof![4 => Just(0usize), 1 => 1usize..=200],
            group_rows,
            prop::option::weighted(0.2, 1024usize..=65_536),
            prop_oneof![Just(rows), 1usize..=rows, 1usize..=100],
            prop::option::weighted(0.3, 1usize..=8),
        ),
        (
            prop::sample::select(vec![1024usize, 1, 3, 64, 4096]),
            prop::sample::select(vec![1usize << 20, 1, 64, 1024]),
            prop::sample::select(vec![20_000usize, 1, 7, 100]),
            any::<bool>(),
            statistics,
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::option::weighted(0.2, 256usize..=8192),
        ),
    )
        .prop_map(
            |(
                (
                    single_row_groups,
                    max_row_group_rows,
                    max_row_group_bytes,
                    write_rows,
                    flush_every,
                ),
                (
                    write_batch_size,
                    data_page_size_limit,
                    data_page_row_count_limit,
                    page_v2,
                    statistics,
                ),
                (bloom, offset_index, arrow_schema, coerce_types, cdc),
            )| Layout {
                single_row_groups,
                max_row_group_rows,
                max_row_group_bytes,
                write_rows,
                flush_every,
                write_batch_size,
                data_page_size_limit,
                data_page_row_count_limit,
                page_v2,
                statistics,
                bloom,
                offset_index,
                arrow_schema,
                coerce_types,
                cdc,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Writing

/// A text value as written: a null as null or empty, by the column's rule (row-dependent for
/// `Mixed`).
fn written(value: Option<&str>, missing: Missing, row: usize) -> Option<&str> {
    match (value, missing) {
        (Some(v), _) => Some(v),
        (None, Missing::Null) => None,
        (None, Missing::Empty) => Some(""),
        (None, Missing::Mixed) => (!row.is_multiple_of(3)).then_some(""),
    }
}

fn text_array(text: Text, values: &[Option<&str>]) -> ArrayRef {
    match text {
        Text::Utf8 => Arc::new(StringArray::from(values.to_vec())),
        Text::LargeUtf8 => Arc::new(LargeStringArray::from(values.to_vec())),
        Text::Utf8View => Arc::new(StringViewArray::from(values.to_vec())),
        Text::Binary => Arc::new(BinaryArray::from(
            values
                .iter()
                .map(|v| v.map(str::as_bytes))
                .collect::<Vec<_>>(),
        )),
        Text::LargeBinary => Arc::new(LargeBinaryArray::from(
            values
                .iter()
                .map(|v| v.map(str::as_bytes))
                .collect::<Vec<_>>(),
        )),
        Text::Dictionary {
            keys16,
            large_values,
        } => {
            let mut entries: Vec<&str> = Vec::new();
            let mut index: HashMap<&str, usize> = HashMap::new();
            let keys: Vec<Option<usize>> = values
                .iter()
                .map(|v| {
                    v.map(|v| {
                        *index.entry(v).or_insert_with(|| {
                            entries.push(v);
                            entries.len() - 1
                        })
                    })
                })
                .collect();
            let dictionary: ArrayRef = if large_values {
                Arc::new(LargeStringArray::from(entries))
            } else {
                Arc::new(StringArray::from(entries))
            };
            if keys16 {
                let keys: Int16Array = keys.iter().map(|k| k.map(|k| k as i16)).collect();
                Arc::new(DictionaryArray::<Int16Type>::try_new(keys, dictionary).expect("dict"))
            } else {
                let keys: Int32Array = keys.iter().map(|k| k.map(|k| k as i32)).collect();
                Arc::new(DictionaryArray::<Int32Type>::try_new(keys, dictionary).expect("dict"))
            }
        }
    }
}

fn text_column_array(column: TextColumn, values: &[Option<&str>]) -> ArrayRef {
    let values: Vec<Option<&str>> = values
        .iter()
        .enumerate()
        .map(|(row, v)| written(*v, column.missing, row))
        .collect();
    text_array(column.text, &values)
}

/// What a Parquet file with these columns means: the records the CSV oracle holds.
fn meant(records: &[Record], columns: &Columns) -> Vec<Record> {
    let mut records = records.to_vec();
    if matches!(columns.sex, SexAs::Int64 | SexAs::Float64) {
        for r in &mut records {
            r.sex = r.sex.take().filter(|s| s.parse::<i64>().is_ok());
        }
    }
    records
}

/// A whole-number column of `values` as ages are written.
fn age_array(age: AgeAs, values: &[Option<i64>]) -> ArrayRef {
    let each = values.iter();
    match age {
        AgeAs::Int8 => Arc::new(each.map(|v| v.map(|v| v as i8)).collect::<Int8Array>()),
        AgeAs::Int16 => Arc::new(each.map(|v| v.map(|v| v as i16)).collect::<Int16Array>()),
        AgeAs::Int32 => Arc::new(each.map(|v| v.map(|v| v as i32)).collect::<Int32Array>()),
        AgeAs::Int64 => Arc::new(each.copied().collect::<Int64Array>()),
        AgeAs::UInt8 => Arc::new(each.map(|v| v.map(|v| v as u8)).collect::<UInt8Array>()),
        AgeAs::Float32 => Arc::new(each.map(|v| v.map(|v| v as f32)).collect::<Float32Array>()),
        AgeAs::Float64 => Arc::new(each.map(|v| v.map(|v| v as f64)).collect::<Float64Array>()),
        AgeAs::Text(column) => {
            let texts: Vec<Option<String>> =
                values.iter().map(|v| v.map(|v| v.to_string())).collect();
            let texts: Vec<Option<&str>> = texts.iter().map(Option::as_deref).collect();
            text_column_array(column, &texts)
        }
    }
}

fn date_array(date: DateAs, days: &[i32]) -> ArrayRef {
    match date {
        DateAs::Date32 => Arc::new(Date32Array::from(days.to_vec())),
        DateAs::Date64 => Arc::new(Date64Array::from(
            days.iter()
                .map(|&d| i64::from(d) * 86_400_000)
                .collect::<Vec<_>>(),
        )),
        DateAs::Timestamp {
            unit,
            utc,
            time_of_day,
        } => {
            // Milliseconds after midnight: spread over the day, never into the next.
            let ms: Vec<i64> = days
                .iter()
                .enumerate()
                .map(|(row, &d)| {
                    let time = if time_of_day {
                        (row as i64 * 7_919_113) % 86_400_000
                    } else {
                        0
                    };
                    i64::from(d) * 86_400_000 + time
                })
                .collect();
            let tz = utc.then_some("UTC");
            match unit {
                TimeUnit::Second => Arc::new(
                    TimestampSecondArray::from(ms.iter().map(|v| v / 1000).collect::<Vec<_>>())
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Millisecond => {
                    Arc::new(TimestampMillisecondArray::from(ms).with_timezone_opt(tz))
                }
                TimeUnit::Microsecond => Arc::new(
                    TimestampMicrosecondArray::from(
                        ms.iter().map(|v| v * 1000).collect::<Vec<_>>(),
                    )
                    .with_timezone_opt(tz),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    TimestampNanosecondArray::from(
                        ms.iter().map(|v| v * 1_000_000).collect::<Vec<_>>(),
                    )
                    .with_timezone_opt(tz),
                ),
            }
        }
        DateAs::Text { text, time } => {
            let suffix = if time { " 00:00:00" } else { "" };
            let texts: Vec<String> = days
                .iter()
                .map(|&d| format!("{}{suffix}", date_text(d)))
                .collect();
            let texts: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
            text_array(text, &texts)
        }
    }
}

fn extra_array(extra: Extra, rows: usize) -> ArrayRef {
    match extra {
        Extra::Text => {
            // Text a CSV would have to quote: commas, quotes, line ends.
            let texts: Vec<Option<String>> = (0..rows)
                .map(|r| {
                    (!r.is_multiple_of(5)).then(|| format!("note {r}, \"quoted\"\nnext line é"))
                })
                .collect();
            Arc::new(StringArray::from_iter(texts))
        }
        Extra::Int64 => Arc::new(
            (0..rows)
                .map(|r| (!r.is_multiple_of(4)).then_some(r as i64 * 1_000_003))
                .collect::<Int64Array>(),
        ),
        Extra::Float64 => Arc::new(
            (0..rows)
                .map(|r| match r % 4 {
                    0 => None,
                    1 => Some(f64::NAN),
                    _ => Some(r as f64 / 7.0),
                })
                .collect::<Float64Array>(),
        ),
        Extra::Boolean => Arc::new(
            (0..rows)
                .map(|r| (!r.is_multiple_of(3)).then_some(r.is_multiple_of(2)))
                .collect::<BooleanArray>(),
        ),
        Extra::List => Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(|r| {
                (!r.is_multiple_of(4))
                    .then(|| (0..r % 3).map(|i| Some(i as i32)).collect::<Vec<_>>())
            }),
        )),
        Extra::Struct => {
            let a: ArrayRef = Arc::new((0..rows).map(|r| Some(r as i32)).collect::<Int32Array>());
            let b: ArrayRef = Arc::new(StringArray::from_iter(
                (0..rows).map(|r| r.is_multiple_of(2).then(|| format!("s{r}"))),
            ));
            Arc::new(StructArray::from(vec![
                (Arc::new(Field::new("a", DataType::Int32, true)), a),
                (Arc::new(Field::new("b", DataType::Utf8, true)), b),
            ]))
        }
    }
}

/// The columns of the file, in its order, each with its chunking (`None` for nested columns, left
/// to the writer's defaults).
fn arrays(records: &[Record], c: &Columns) -> Vec<(&'static str, ArrayRef, Option<Chunking>)> {
    let texts = |f: fn(&Record) -> Option<&str>| records.iter().map(f).collect::<Vec<_>>();
    let mut slots: Vec<Option<(&'static str, ArrayRef)>> = vec![
        Some((
            "provider_code",
            text_array(c.provider, &texts(|r| Some(r.provider.as_str()))),
        )),
        c.site.map(|t| {
            (
                "site_code",
                text_column_array(t, &texts(|r| r.site.as_deref())),
            )
        }),
        Some((
            "test_date",
            date_array(c.date, &records.iter().map(|r| r.date).collect::<Vec<_>>()),
        )),
        Some((
            "gp_practice_code",
            text_column_array(c.practice, &texts(|r| r.practice.as_deref())),
        )),
        Some((
            "lsoa11",
            text_column_array(c.lsoa, &texts(|r| r.lsoa.as_deref())),
        )),
        Some((
            "sex",
            match c.sex {
                SexAs::Text(t) => text_column_array(t, &texts(|r| r.sex.as_deref())),
                SexAs::Int64 => Arc::new(
                    records
                        .iter()
                        .map(|r| r.sex.as_deref().and_then(|s| s.parse::<i64>().ok()))
                        .collect::<Int64Array>(),
                ),
                SexAs::Float64 => Arc::new(
                    records
                        .iter()
                        .map(|r| r.sex.as_deref().and_then(|s| s.parse::<i64>().ok()))
                        .map(|s| s.map(|s| s as f64))
                        .collect::<Float64Array>(),
                ),
            },
        )),
        Some((
            "age",
            age_array(c.age, &records.iter().map(|r| r.age).collect::<Vec<_>>()),
        )),
        Some((
            "modality",
            text_array(c.modality, &texts(|r| Some(r.modality.as_str()))),
        )),
        Some((
            "exam_code",
            text_column_array(c.exam, &texts(|r| r.exam.as_deref())),
        )),
        c.source.map(|t| {
            (
                "patient_source",
                text_column_array(t, &texts(|r| r.source.as_deref())),
            )
        }),
        c.extra
            .map(|e| ("extract_note", extra_array(e, records.len()))),
    ];
    c.order
        .iter()
        .filter_map(|&slot| {
            let (name, array) = slots[slot].take()?;
            let nested = matches!(array.data_type(), DataType::List(_) | DataType::Struct(_));
            Some((name, array, (!nested).then_some(c.chunking[slot])))
        })
        .collect()
}

/// The encoding used after (or instead of) the dictionary, by the column's physical type.
fn fallback(data_type: &DataType, choice: usize) -> Encoding {
    use DataType::*;
    let choices = match data_type {
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | Dictionary(..) => [
            Encoding::PLAIN,
            Encoding::DELTA_LENGTH_BYTE_ARRAY,
            Encoding::DELTA_BYTE_ARRAY,
        ],
        Float32 | Float64 => [Encoding::PLAIN, Encoding::BYTE_STREAM_SPLIT, Encoding::ALP],
        Boolean => [Encoding::PLAIN; 3],
        _ => [
            Encoding::PLAIN,
            Encoding::DELTA_BINARY_PACKED,
            Encoding::BYTE_STREAM_SPLIT,
        ],
    };
    choices[choice % 3]
}

fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::Uncompressed => Compression::UNCOMPRESSED,
        Codec::Snappy => Compression::SNAPPY,
        Codec::Gzip => Compression::GZIP(GzipLevel::default()),
        Codec::Lz4 => Compression::LZ4,
        Codec::Lz4Raw => Compression::LZ4_RAW,
        Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
        Codec::Brotli => Compression::BROTLI(BrotliLevel::default()),
    }
}

fn properties(layout: &Layout) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_writer_version(if layout.page_v2 {
            WriterVersion::PARQUET_2_0
        } else {
            WriterVersion::PARQUET_1_0
        })
        .set_max_row_group_row_count(layout.max_row_group_rows)
        .set_max_row_group_bytes(layout.max_row_group_bytes)
        .set_write_batch_size(layout.write_batch_size)
        .set_data_page_size_limit(layout.data_page_size_limit)
        .set_data_page_row_count_limit(layout.data_page_row_count_limit)
        .set_statistics_enabled(layout.statistics)
        .set_bloom_filter_enabled(layout.bloom)
        .set_offset_index_disabled(!layout.offset_index)
        .set_coerce_types(layout.coerce_types)
        .set_content_defined_chunking(layout.cdc.map(|min| CdcOptions {
            min_chunk_size: min,
            max_chunk_size: 4 * min,
            norm_level: 0,
        }))
}

/// Writes `records` as Parquet with the structure; returns the file's metadata.
fn write_parquet(
    path: &Path,
    records: &[Record],
    columns: &Columns,
    layout: &Layout,
) -> ParquetMetaData {
    let arrays = arrays(records, columns);
    let mut props = properties(layout);
    let mut fields = Vec::new();
    for (name, array, chunking) in &arrays {
        let required = chunking.is_some_and(|c| c.required) && array.null_count() == 0;
        fields.push(Field::new(*name, array.data_type().clone(), !required));
        let Some(c) = chunking else { continue };
        let path = ColumnPath::from(*name);
        props = props
            .set_column_dictionary_enabled(path.clone(), c.dictionary)
            .set_column_dictionary_page_size_limit(path.clone(), c.dictionary_page_limit)
            .set_column_compression(path.clone(), compression(c.codec))
            .set_column_encoding(path, fallback(array.data_type(), c.fallback));
    }
    // Without the Arrow schema a Date64 column is a bare INT64 unless coerced to a DATE, and a
    // timestamp in seconds is always one (Parquet has no seconds unit): neither would be a date.
    let date64 = matches!(columns.date, DateAs::Date64);
    let seconds = matches!(
        columns.date,
        DateAs::Timestamp {
            unit: TimeUnit::Second,
            ..
        }
    );
    let arrow_schema = layout.arrow_schema || seconds;
    let props = props
        .set_coerce_types(layout.coerce_types || (date64 && !arrow_schema))
        .build();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        arrays.into_iter().map(|(_, a, _)| a).collect(),
    )
    .expect("batch");
    let options = ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(!arrow_schema);
    let file = File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new_with_options(file, schema, options).expect("writer");
    let rows = records.len();
    let singles = layout.single_row_groups.min(rows);
    for row in 0..singles {
        writer.write(&batch.slice(row, 1)).expect("write");
        writer.flush().expect("flush");
    }
    let mut writes = 0usize;
    let mut start = singles;
    while start < rows {
        let len = layout.write_rows.min(rows - start);
        writer.write(&batch.slice(start, len)).expect("write");
        start += len;
        writes += 1;
        if layout.flush_every.is_some_and(|k| writes.is_multiple_of(k)) {
            writer.flush().expect("flush");
        }
    }
    writer.close().expect("close parquet")
}

/// The oracle: the records as a plain CSV, in the SPEC §3 column names.
fn write_csv(path: &Path, records: &[Record], columns: &Columns) {
    let mut w = csv::Writer::from_path(path).expect("create csv");
    let (site, source) = (columns.site.is_some(), columns.source.is_some());
    let mut header = vec!["provider_code"];
    header.extend(site.then_some("site_code"));
    header.extend([
        "test_date",
        "gp_practice_code",
        "lsoa11",
        "sex",
        "age",
        "modality",
        "exam_code",
    ]);
    header.extend(source.then_some("patient_source"));
    w.write_record(&header).expect("csv header");
    for r in records {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut row = vec![r.provider.clone()];
        row.extend(site.then(|| text(&r.site)));
        row.extend([
            date_text(r.date),
            text(&r.practice),
            text(&r.lsoa),
            text(&r.sex),
            r.age.map(|a| a.to_string()).unwrap_or_default(),
            r.modality.clone(),
            text(&r.exam),
        ]);
        row.extend(source.then(|| text(&r.source)));
        w.write_record(&row).expect("csv record");
    }
    w.flush().expect("flush csv");
}

// ---------------------------------------------------------------------------------------------
// Running

/// What a run gives that the records decide.
struct Outcome {
    tables: Vec<(String, Vec<u8>)>,
    warnings: Vec<String>,
    counts: StratifiedCounts,
    rows: Option<u64>,
}

fn outcome(path: &Path, threads: usize) -> Result<Outcome, String> {
    let results = strata_tests::run_example(path, threads)
        .map_err(|e| format!("{} on {threads} thread(s): {e}", path.display()))?;
    Ok(Outcome {
        tables: strata_tests::rendered_tables(&results),
        warnings: results.warnings.clone(),
        counts: results.counts.clone(),
        rows: results.input_rows.get("activity").copied(),
    })
}

/// Where the Parquet run differs from the CSV run, if it does.
fn difference(parquet: &Outcome, csv: &Outcome) -> Option<String> {
    if let Some(d) = strata_tests::table_difference(&parquet.tables, &csv.tables) {
        return Some(d);
    }
    if parquet.warnings != csv.warnings {
        return Some(format!(
            "warnings {:?}, expected {:?}",
            parquet.warnings, csv.warnings
        ));
    }
    if parquet.rows != csv.rows {
        return Some(format!(
            "{:?} records, expected {:?}",
            parquet.rows, csv.rows
        ));
    }
    (parquet.counts != csv.counts).then(|| "stratified counts differ".to_string())
}

/// Writes the records both ways and runs both; the difference if any.
fn compare(
    records: &[Record],
    columns: &Columns,
    layout: &Layout,
    threads: (usize, usize),
) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let parquet = dir.path().join("activity.parquet");
    let csv = dir.path().join("activity.csv");
    write_parquet(&parquet, records, columns, layout);
    write_csv(&csv, &meant(records, columns), columns);
    let got = outcome(&parquet, threads.0)?;
    let want = outcome(&csv, threads.1)?;
    match difference(&got, &want) {
        None => Ok(()),
        Some(d) => Err(format!(
            "Parquet ({} thread(s)) and CSV ({} thread(s)) differ: {d}",
            threads.0, threads.1
        )),
    }
}

/// The base records, edited and in the case's order.
fn records(edits: &[(Index, Edit)], order: Order) -> Vec<Record> {
    let mut records = base_records().to_vec();
    apply(&mut records, edits);
    reorder(&mut records, order);
    records
}

fn order() -> impl Strategy<Value = Order> {
    prop_oneof![
        1 => Just(Order::AsFile),
        1 => Just(Order::Reversed),
        6 => any::<u64>().prop_map(Order::Shuffled),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        // A failing case is shrunk for at most a few minutes (each run takes a second or so).
        max_shrink_time: 300_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_parquet_structure_gives_the_tables_of_the_same_records_as_csv(
        edits in prop::collection::vec((any::<Index>(), edit()), 0..400),
        order in order(),
        columns in columns(),
        layout in layout(base_records().len()),
        threads in (1usize..=2, 1usize..=2),
    ) {
        let records = records(&edits, order);
        if let Err(e) = compare(&records, &columns, &layout, threads) {
            prop_assert!(false, "{e}\ncolumns: {columns:?}\nlayout: {layout:?}");
        }
    }
}

/// Whether some column chunk of `column` has data pages both dictionary-encoded and PLAIN: its
/// dictionary filled up mid chunk and the writer fell back.
fn falls_back(metadata: &ParquetMetaData, column: &str) -> bool {
    metadata.row_groups().iter().any(|group| {
        group.columns().iter().any(|chunk| {
            let stats = chunk.page_encoding_stats().cloned().unwrap_or_default();
            let data = |e: Encoding| {
                stats.iter().any(|s| {
                    s.encoding == e
                        && s.count > 0
                        && matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2)
                })
            };
            chunk.column_path().string() == column
                && (data(Encoding::RLE_DICTIONARY) || data(Encoding::PLAIN_DICTIONARY))
                && data(Encoding::PLAIN)
        })
    })
}

/// An edge the random layouts seldom reach together: hundreds of one-row row groups, then row
/// groups whose text dictionaries overflow a tiny dictionary page and fall back to PLAIN.
#[test]
fn single_row_groups_and_a_dictionary_falling_back_to_plain() {
    let records = records(&[], Order::Shuffled(7));
    let text = TextColumn {
        text: Text::Utf8,
        missing: Missing::Null,
    };
    let chunking = Chunking {
        dictionary: true,
        dictionary_page_limit: 24,
        fallback: 0,
        codec: Codec::Snappy,
        required: false,
    };
    let columns = Columns {
        provider: Text::Utf8,
        site: Some(text),
        date: DateAs::Text {
            text: Text::Utf8,
            time: false,
        },
        practice: text,
        lsoa: text,
        sex: SexAs::Text(text),
        age: AgeAs::Int64,
        modality: Text::Utf8,
        exam: text,
        source: None,
        extra: None,
        order: (0..SLOTS).collect(),
        chunking: vec![chunking; SLOTS],
    };
    let layout = Layout {
        single_row_groups: 500,
        max_row_group_rows: Some(1000),
        max_row_group_bytes: None,
        write_rows: 1000,
        flush_every: None,
        write_batch_size: 16,
        data_page_size_limit: 1 << 20,
        data_page_row_count_limit: 20_000,
        page_v2: false,
        statistics: EnabledStatistics::Page,
        bloom: false,
        offset_index: true,
        arrow_schema: true,
        coerce_types: false,
        cdc: None,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let metadata = write_parquet(
        &dir.path().join("check.parquet"),
        &records,
        &columns,
        &layout,
    );
    assert!(
        metadata.num_row_groups() > 500,
        "{} row groups",
        metadata.num_row_groups()
    );
    for column in ["gp_practice_code", "lsoa11", "test_date"] {
        assert!(
            falls_back(&metadata, column),
            "{column} never falls back to PLAIN"
        );
    }
    for threads in [(1, 2), (2, 1)] {
        if let Err(e) = compare(&records, &columns, &layout, threads) {
            panic!("{e}");
        }
    }
}
