//! The embedded synthetic year (SPEC §5): the recipe's `[inputs.synthetic]` names a calibration
//! config; `strata-synth` generates records in batches, which the record-level pass counts as they
//! come (for a run) or which become a Parquet file (`strata synth`), plus the matching population.

use std::path::{Path, PathBuf};

use strata_api::{DerivationShape, StratifiedCounts};
use strata_synth::{Generator, RecordBatch};

use crate::error::{Error, Result};

/// What the recipe asks of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// The calibration config (`configs/synth/did-<year>.toml`).
    pub config: PathBuf,
    /// The folder the config's paths are relative to (the repository root).
    pub root: PathBuf,
    /// 1.0 is a full year (about 47 million records in 2023/24).
    pub scale: f64,
    pub seed: u64,
    /// The recipe's areas are made of the generator's practices (a practice, sub-ICB or other
    /// level under the generator's areas): each area's population is shared out over its
    /// practices by list size, as the records are, and summed into the recipe's areas through
    /// the recipe's practice map.
    pub areas_from_practices: bool,
    /// How expected counts become record counts, in place of the config's `count_sampling`
    /// (the recipe's `sampling` or `--sampling`); none keeps the config's.
    pub sampling: Option<strata_synth::CountSampling>,
}

fn synth_error(spec: &SyntheticSpec, e: impl std::fmt::Display) -> Error {
    Error::data(&spec.config, None, None, format!("synthetic data: {e}"))
}

/// Calibrates the generator (reads the reference data and the published figures).
pub fn generator(spec: &SyntheticSpec) -> Result<Generator> {
    let generator =
        Generator::from_config_file(&spec.root, &spec.config).map_err(|e| synth_error(spec, e))?;
    Ok(match spec.sampling {
        Some(sampling) => generator.with_count_sampling(sampling),
        None => generator,
    })
}

/// The generator's population at the spec's scale into `counts.population`; with
/// `practice_areas` (the recipe's practice → area map, for `areas_from_practices`) each
/// generator area's population is shared out over its practices and summed into their areas.
pub fn population_into(
    generator: &Generator,
    spec: &SyntheticSpec,
    practice_areas: Option<&std::collections::HashMap<String, u32>>,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    let find = |categories: &[String], value: &str| categories.iter().position(|c| c == value);
    let rows = generator.population_scaled(spec.scale);
    let area_index: std::collections::HashMap<&str, usize> = counts
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.code.as_str(), i))
        .collect();
    // Recipe areas and their share of each generator area's population.
    let mut shares: std::collections::HashMap<String, Vec<(usize, f64)>> = Default::default();
    match practice_areas {
        Some(practice_area) => {
            for (area, practices) in generator.practice_shares() {
                let mut by_area: std::collections::BTreeMap<usize, f64> = Default::default();
                for (practice, share) in practices {
                    let recipe_area = practice_area.get(&practice).ok_or_else(|| {
                        synth_error(
                            spec,
                            format!(
                                "practice `{practice}` of the synthetic area `{area}` is not in \
                                 the recipe's practice map (areas_from_practices needs every \
                                 practice of the synthetic year there)"
                            ),
                        )
                    })?;
                    *by_area.entry(*recipe_area as usize).or_default() += share;
                }
                shares.insert(area, by_area.into_iter().collect());
            }
        }
        None => {
            for (code, &i) in &area_index {
                shares.insert(code.to_string(), vec![(i, 1.0)]);
            }
        }
    }
    for row in &rows {
        let targets = shares.get(&row.area_code).ok_or_else(|| {
            synth_error(
                spec,
                format!("area `{}` is not in the recipe's areas", row.area_code),
            )
        })?;
        let coords = [
            find(
                &shape.imd_quintile.categories,
                &row.imd_quintile.to_string(),
            ),
            find(&shape.sex.categories, &row.sex),
            find(&shape.age_band.categories, &row.age_band),
        ];
        let [Some(q), Some(s), Some(g)] = coords else {
            return Err(synth_error(
                spec,
                format!(
                    "population stratum {} / {} / {} is not one the derivation rules know",
                    row.sex, row.age_band, row.imd_quintile
                ),
            ));
        };
        let cell = counts.cell_index(&[q, s, g]);
        for &(area, share) in targets {
            counts.population_of_mut(area)[cell] += row.population * share;
        }
    }
    Ok(rows.len())
}

/// Rows per Parquet row group: a reader decodes one group at a time, so groups of this size keep
/// its buffers small (a few MB per column) and share out evenly among threads.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Records per generated batch when the engine streams the synthetic year (counting it or writing
/// it): a batch holds its records' text, so 64 Ki records keep it to about 25 MB whatever the scale,
/// while the recipe's `batch_rows` (a million) would hold 400 MB.
const STREAM_BATCH_ROWS: usize = 64 * 1024;

/// The SPEC §3 columns as written: text dictionary-encoded (each column holds few distinct codes,
/// so a reader decodes small integer codes plus one dictionary per row group instead of a string
/// per record; SQL engines read them as ordinary text), age as a 64-bit integer; every column may
/// be null.
fn activity_schema() -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema};
    let text = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
    let fields = [
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
    .map(|name| {
        let kind = if name == "age" {
            DataType::Int64
        } else {
            text.clone()
        };
        Field::new(name, kind, true)
    });
    std::sync::Arc::new(Schema::new(fields.to_vec()))
}

/// One generated batch as an Arrow record batch of [`activity_schema`].
fn arrow_batch(
    batch: &RecordBatch,
    schema: &arrow_schema::SchemaRef,
) -> std::result::Result<arrow_array::RecordBatch, arrow_schema::ArrowError> {
    use arrow_array::builder::StringDictionaryBuilder;
    use arrow_array::types::UInt32Type;
    use arrow_array::{ArrayRef, Int64Array};
    fn text<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
        let mut builder = StringDictionaryBuilder::<UInt32Type>::new();
        for value in values {
            match value {
                Some(v) => builder.append_value(v),
                None => builder.append_null(),
            }
        }
        std::sync::Arc::new(builder.finish())
    }
    let all = |column: &'_ [String]| text(column.iter().map(|v| Some(v.as_str())));
    let some = |column: &'_ [Option<String>]| text(column.iter().map(|v| v.as_deref()));
    let age: Int64Array = batch.age.iter().map(|a| a.map(i64::from)).collect();
    arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            all(&batch.provider_code),
            some(&batch.site_code),
            all(&batch.test_date),
            some(&batch.gp_practice_code),
            some(&batch.lsoa11),
            all(&batch.sex),
            std::sync::Arc::new(age),
            all(&batch.modality),
            some(&batch.exam_code),
            some(&batch.patient_source),
        ],
    )
}

/// Writes the records as Parquet (zstd, row groups of [`ROW_GROUP_ROWS`] records, text columns
/// dictionary-encoded) and the population as CSV. Returns the number of records. The bytes
/// depend only on the generator's batches, which depend only on the scale and seed.
pub fn write_files(generator: &Generator, spec: &SyntheticSpec, dir: &Path) -> Result<u64> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let records = dir.join("activity.parquet");
    let tmp = dir.join(".activity.parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let write_error = |e: parquet::errors::ParquetError| Error::io(&tmp, std::io::Error::other(e));
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let schema = activity_schema();
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(write_error)?;
    let written = generator
        .generate_in_batches(spec.scale, spec.seed, STREAM_BATCH_ROWS, |batch| {
            let batch = arrow_batch(&batch, &schema)?;
            // The writer cuts row groups of ROW_GROUP_ROWS across batches.
            writer.write(&batch).map_err(arrow_schema::ArrowError::from)
        })
        .map_err(|e| synth_error(spec, e))?;
    writer.close().map_err(write_error)?;
    std::fs::rename(&tmp, &records).map_err(|e| Error::io(&records, e))?;

    let population = dir.join("population.csv");
    let mut text = String::from("area_code,sex,age_band,imd_quintile,population\n");
    for row in generator.population_scaled(spec.scale) {
        text.push_str(&format!(
            "{},{},{},{},{}\n",
            row.area_code,
            row.sex,
            row.age_band,
            row.imd_quintile,
            (row.population * 1e6).round() / 1e6
        ));
    }
    std::fs::write(&population, text).map_err(|e| Error::io(&population, e))?;
    Ok(written)
}

/// Counts the synthetic year's records with `pass`, batch by batch as the generator makes them
/// (no frame of the whole year is built).
pub fn count_records(
    generator: &Generator,
    spec: &SyntheticSpec,
    pass: &crate::input::activity::Pass,
) -> Result<Vec<crate::input::activity::Tally>> {
    use crate::input::activity::Stop;
    let mut tally = pass.tally();
    let mut stop = None;
    generator
        .generate_in_batches(
            spec.scale,
            spec.seed,
            STREAM_BATCH_ROWS,
            |batch| -> std::result::Result<(), Error> {
                if stop.is_none()
                    && let Err(e) = pass.count(&mut tally, &GeneratedBatch(batch))
                {
                    stop = Some(e);
                }
                Ok(())
            },
        )
        .map_err(|e| synth_error(spec, e))?;
    match stop {
        None => Ok(vec![tally]),
        Some(Stop::Failed(e)) => Err(*e),
        Some(Stop::Malformed(rule, _)) => Err(synth_error(spec, rule)),
        Some(Stop::Invalid { column, value, .. }) => {
            let (rule, _) = crate::input::activity::refusal(column, value.as_deref());
            Err(synth_error(
                spec,
                format!(
                    "a generated record's `{}` is refused: {rule}",
                    crate::input::activity::COLUMNS[column]
                ),
            ))
        }
    }
}

/// The generator's batch as the record-level pass reads it.
struct GeneratedBatch(RecordBatch);

impl GeneratedBatch {
    fn text(&self, column: usize, row: usize) -> Option<&[u8]> {
        use crate::input::activity::*;
        let b = &self.0;
        let text: Option<&str> = match column {
            PROVIDER => Some(&b.provider_code[row]),
            PRACTICE => b.gp_practice_code[row].as_deref(),
            LSOA => b.lsoa11[row].as_deref(),
            SEX => Some(&b.sex[row]),
            MODALITY => Some(&b.modality[row]),
            EXAM => b.exam_code[row].as_deref(),
            DATE => Some(&b.test_date[row]),
            _ => None,
        };
        text.map(str::as_bytes)
    }
}

impl crate::input::activity::Batch for GeneratedBatch {
    fn rows(&self) -> usize {
        self.0.len()
    }

    fn resolve(
        &self,
        sink: crate::input::activity::ColumnSink<'_, '_>,
    ) -> std::result::Result<(), crate::input::activity::Stop> {
        let column = sink.column();
        if column == crate::input::activity::AGE {
            return sink.ints(self.0.len(), |row| self.0.age[row].map(i64::from));
        }
        sink.text(self.0.len(), |row| self.text(column, row))
    }

    fn raw(&self, column: usize, row: usize) -> Option<Vec<u8>> {
        if column == crate::input::activity::AGE {
            return self.0.age[row].map(|a| a.to_string().into_bytes());
        }
        self.text(column, row).map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// `strata synth`'s Parquet: the same bytes twice for one scale and seed, the SPEC §3 columns
    /// with their types (dictionary-encoded text, int64 age, all nullable), row groups of
    /// `ROW_GROUP_ROWS` records but the last, and every generated record in it.
    #[test]
    fn synth_parquet_is_deterministic_with_its_columns_and_row_groups() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = SyntheticSpec {
            config: root.join("configs/synth/did-2023-24.toml"),
            root: root.clone(),
            // About 142,000 records: two row groups.
            scale: 0.003,
            seed: 7,
            areas_from_practices: false,
            sampling: None,
        };
        let generator = generator(&spec).expect("generator");
        let base = std::env::temp_dir().join(format!("strata-synth-{}", std::process::id()));
        let written: Vec<(u64, Vec<u8>)> = ["a", "b"]
            .iter()
            .map(|name| {
                let dir = base.join(name);
                let records = write_files(&generator, &spec, &dir).expect("write");
                let bytes = std::fs::read(dir.join("activity.parquet")).expect("read");
                (records, bytes)
            })
            .collect();
        assert_eq!(written[0], written[1], "same scale and seed, same bytes");
        let records = written[0].0;
        let file = std::fs::File::open(base.join("a/activity.parquet")).expect("open");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
        assert_eq!(reader.schema(), &activity_schema());
        let groups: Vec<usize> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows() as usize)
            .collect();
        assert!(groups.len() >= 2, "{groups:?}");
        let (last, full) = groups.split_last().expect("row groups");
        assert!(full.iter().all(|n| *n == ROW_GROUP_ROWS), "{groups:?}");
        assert!(*last > 0 && *last <= ROW_GROUP_ROWS, "{groups:?}");
        assert_eq!(groups.iter().sum::<usize>() as u64, records);
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// The synthetic provider × month config (`configs/synth/backlog-2020.toml`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderMonthsConfig {
    /// Providers' weights, relative to the config: a CSV with `provider_code` and the
    /// `weight_columns`.
    weights: String,
    /// First month (`YYYY-MM`) in which trusts' recovery differs.
    from: String,
    recovery_spread: f64,
    /// Measure → the weights file's column for it.
    weight_columns: std::collections::BTreeMap<String, String>,
    national: Vec<NationalFigure>,
    /// Synthetic DID waits by span of months (none: the pair has no waits).
    #[serde(default)]
    waits: Vec<WaitSpanConfig>,
    /// σ of each provider's factor on England's mean waits.
    #[serde(default)]
    wait_spread: f64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitSpanConfig {
    from: String,
    request_to_test_share_42_days: f64,
    test_to_report_mean_days: f64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NationalFigure {
    measure: String,
    month: String,
    tests: u64,
    /// Where the figure comes from (published, or which assumption).
    #[allow(dead_code)]
    source: String,
}

/// The synthetic pair of years of provider × month tests (`strata_synth::periods`), every
/// provider of the weights file in `regions`, and their DID waits when the config has them.
pub fn provider_months(
    spec: &crate::recipe::SyntheticProviderMonths,
    regions: &std::collections::BTreeMap<String, crate::periods::ProviderRegion>,
) -> Result<(
    crate::periods::ProviderMonths,
    Option<strata_api::DidWaitsInput>,
)> {
    let path = &spec.config.path;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config: ProviderMonthsConfig = toml::from_str(&text)
        .map_err(|e| Error::data(path, None, None, format!("synthetic provider months: {e}")))?;
    for n in &config.national {
        if crate::periods::parse_month(&n.month).is_none()
            || !crate::periods::MODALITIES.contains(&n.measure.as_str())
            || !config.weight_columns.contains_key(&n.measure)
        {
            return Err(Error::data(
                path,
                None,
                Some("national"),
                format!(
                    "national figure `{}` `{}`: the month must be YYYY-MM and the measure a \
                     modality key with a weight column",
                    n.measure, n.month
                ),
            ));
        }
    }
    let weights_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&config.weights);
    let mut required: Vec<&str> = vec!["provider_code"];
    required.extend(config.weight_columns.values().map(String::as_str));
    let t = crate::input::TextTable::read(&weights_path, &required)?;
    let codes = t.required_column("provider_code")?;
    let mut providers: Vec<strata_synth::periods::ProviderWeights> = codes
        .iter()
        .map(|c| strata_synth::periods::ProviderWeights {
            code: c.to_string(),
            weights: Vec::new(),
        })
        .collect();
    for (measure, column) in &config.weight_columns {
        for (row, value) in t.required_column(column)?.into_iter().enumerate() {
            let w = crate::input::count_value(&t, row, column, value)?;
            providers[row].weights.push((measure.clone(), w));
        }
    }
    if let Some((row, code)) = codes
        .iter()
        .enumerate()
        .find(|(_, c)| !regions.contains_key(**c))
    {
        return Err(Error::data_hint(
            &weights_path,
            Some(row + 1),
            Some("provider_code"),
            format!("provider `{code}` is not in the recipe's provider_regions file"),
            "weight only providers whose region is known",
        ));
    }
    providers.sort_by(|a, b| a.code.cmp(&b.code));
    let national: Vec<strata_synth::periods::NationalMonth> = config
        .national
        .iter()
        .map(|n| strata_synth::periods::NationalMonth {
            measure: n.measure.clone(),
            month: n.month.clone(),
            tests: n.tests,
        })
        .collect();
    let rows = strata_synth::periods::provider_months(
        &national,
        &providers,
        &config.from,
        config.recovery_spread,
        spec.seed,
    );
    let mut out = crate::periods::ProviderMonths::default();
    for (provider, measure, month, tests) in &rows {
        if let Some(region) = regions.get(provider) {
            out.providers.insert(provider.clone(), region.clone());
        }
        let key = (provider.clone(), measure.clone(), month.clone());
        *out.tests.entry(key).or_insert(0.0) += *tests as f64;
    }
    let waits = synthetic_waits(path, &config, &providers, &rows, spec.seed)?.map(|counted| {
        let intervals = strata_api::WaitInterval::ALL;
        crate::periods::wait_input(&counted, &intervals, regions)
    });
    Ok((out, waits))
}

/// The pair's DID waits: each provider × measure × month's tests shared over whole days by the
/// month's span (`strata_synth::periods::geometric_days`), request → test and test → report;
/// none without spans. Every synthetic record has both dates, none in error.
fn synthetic_waits(
    path: &Path,
    config: &ProviderMonthsConfig,
    providers: &[strata_synth::periods::ProviderWeights],
    rows: &[(String, String, String, u64)],
    seed: u64,
) -> Result<Option<crate::input::activity::provider_months::MonthCounts>> {
    use crate::input::activity::provider_months::{MonthCounts, REQUEST_TO_TEST, TEST_TO_REPORT};
    use strata_synth::periods::{geometric_days, mean_for_share_42, wait_factors};
    if config.waits.is_empty() {
        return Ok(None);
    }
    let bad = config.waits.iter().find(|w| {
        crate::periods::parse_month(&w.from).is_none()
            || !(w.request_to_test_share_42_days > 0.0 && w.request_to_test_share_42_days < 1.0)
            || !(w.test_to_report_mean_days > 0.0 && w.test_to_report_mean_days.is_finite())
    });
    if let Some(w) = bad {
        return Err(Error::data(
            path,
            None,
            Some("waits"),
            format!(
                "wait span from `{}`: `from` must be YYYY-MM, the share in (0, 1) and the mean \
                 days above 0",
                w.from
            ),
        ));
    }
    // A different stream from the recovery factors', so waits and recovery are unrelated.
    let factors = wait_factors(providers.len(), config.wait_spread, seed.wrapping_add(1));
    let factor_of = |code: &str| {
        providers
            .iter()
            .position(|p| p.code == code)
            .map_or(1.0, |i| factors[i])
    };
    let mut counted = MonthCounts::default();
    for (provider, measure, month, tests) in rows {
        // The span a month is in: the latest that starts by it (none before the first).
        let started = config.waits.iter().filter(|w| w.from <= *month);
        let Some(span) = started.max_by(|a, b| a.from.cmp(&b.from)) else {
            continue;
        };
        let factor = factor_of(provider);
        let key = (provider.clone(), measure.clone(), month.clone());
        counted.tests.insert(key.clone(), *tests);
        counted.records += tests;
        let means = [
            (
                REQUEST_TO_TEST,
                mean_for_share_42(span.request_to_test_share_42_days),
            ),
            (TEST_TO_REPORT, span.test_to_report_mean_days),
        ];
        for (interval, mean) in means {
            let days = geometric_days(*tests, mean * factor).into_iter().collect();
            counted.waits.insert((key.clone(), interval), days);
        }
    }
    Ok(Some(counted))
}

/// The synthetic DM01 config (`configs/synth/backlog-2020-dm01.toml`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitingListsConfig {
    /// Providers' weights, relative to the config (`provider_code` and `weight_columns`, summed).
    weights: String,
    weight_columns: Vec<String>,
    /// DM01 test → its share of every band (they sum to 1).
    tests: std::collections::BTreeMap<String, f64>,
    months: Vec<WaitingMonthConfig>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitingMonthConfig {
    month: String,
    waiting_list: u64,
    #[serde(default)]
    england_six_plus: Option<u64>,
    default_share: f64,
    #[serde(default)]
    region_shares: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    provider_shares: std::collections::BTreeMap<String, f64>,
    /// Where the month's figures come from (published, or which assumption).
    #[allow(dead_code)]
    source: String,
}

/// The synthetic DM01 waiting lists (`strata_synth::periods::waiting_lists`), split over the
/// config's tests, every provider of the weights file in `regions`.
pub fn waiting_lists(
    spec: &crate::recipe::SyntheticProviderMonths,
    regions: &std::collections::BTreeMap<String, crate::periods::ProviderRegion>,
) -> Result<strata_api::WaitingListInput> {
    let path = &spec.config.path;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config: WaitingListsConfig = toml::from_str(&text)
        .map_err(|e| Error::data(path, None, None, format!("synthetic DM01: {e}")))?;
    let share_sum: f64 = config.tests.values().sum();
    if (share_sum - 1.0).abs() > 1e-9
        || config
            .months
            .iter()
            .any(|m| crate::periods::parse_month(&m.month).is_none())
    {
        return Err(Error::data(
            path,
            None,
            Some("tests"),
            format!(
                "synthetic DM01: test shares sum to {share_sum}, not 1, or a month is not YYYY-MM"
            ),
        ));
    }
    let weights_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&config.weights);
    let mut required = vec!["provider_code"];
    required.extend(config.weight_columns.iter().map(String::as_str));
    let t = crate::input::TextTable::read(&weights_path, &required)?;
    let codes = t.required_column("provider_code")?;
    let mut providers = Vec::new();
    for (row, code) in codes.iter().enumerate() {
        let region = regions.get(*code).ok_or_else(|| {
            Error::data(
                &weights_path,
                Some(row + 1),
                Some("provider_code"),
                format!("provider `{code}` is not in the recipe's provider_regions file"),
            )
        })?;
        let mut weight = 0.0;
        for column in &config.weight_columns {
            let values = t.required_column(column)?;
            weight += crate::input::count_value(&t, row, column, values[row])?;
        }
        providers.push(strata_synth::periods::WaitingProvider {
            code: code.to_string(),
            region: region.region_code.clone(),
            weight,
        });
    }
    providers.sort_by(|a, b| a.code.cmp(&b.code));
    let months: Vec<strata_synth::periods::WaitingMonth> = config
        .months
        .iter()
        .map(|m| strata_synth::periods::WaitingMonth {
            month: m.month.clone(),
            waiting_list: m.waiting_list,
            england_six_plus: m.england_six_plus,
            default_share: m.default_share,
            region_shares: m.region_shares.clone().into_iter().collect(),
            provider_shares: m.provider_shares.clone().into_iter().collect(),
        })
        .collect();
    let index: std::collections::HashMap<&str, u32> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.code.as_str(), i as u32))
        .collect();
    let shares: Vec<f64> = config.tests.values().copied().collect();
    let mut rows = Vec::new();
    for (provider, month, weeks) in strata_synth::periods::waiting_lists(&months, &providers) {
        // Each band split over the tests by their shares (largest remainder).
        let split: Vec<Vec<u64>> = weeks
            .iter()
            .map(|&w| strata_synth::periods::largest_remainder(w, &shares))
            .collect();
        for (k, test) in config.tests.keys().enumerate() {
            rows.push(strata_api::WaitingListRow {
                provider: index[provider.as_str()],
                month: month.clone(),
                test: test.clone(),
                weeks: split.iter().map(|s| s[k] as f64).collect(),
                total_activity: 0.0,
            });
        }
    }
    let providers = providers
        .iter()
        .map(|p| {
            let r = &regions[&p.code];
            strata_api::RegionalProvider {
                code: p.code.clone(),
                name: r.name.clone(),
                region_code: r.region_code.clone(),
                region_name: r.region_name.clone(),
            }
        })
        .collect();
    Ok(strata_api::WaitingListInput {
        providers,
        rows,
        other_nations: Vec::new(),
    })
}
