//! The embedded synthetic year (SPEC §5): the recipe's `[inputs.synthetic]` names a calibration
//! config; `strata-synth` generates records in batches, which the record-level pass counts as they
//! come (for a run) or which become a Parquet file (`strata synth`), plus the matching population.

use std::path::{Path, PathBuf};

use polars::prelude::*;
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
}

fn synth_error(spec: &SyntheticSpec, e: impl std::fmt::Display) -> Error {
    Error::data(&spec.config, None, None, format!("synthetic data: {e}"))
}

/// Calibrates the generator (reads the reference data and the published figures).
pub fn generator(spec: &SyntheticSpec) -> Result<Generator> {
    Generator::from_config_file(&spec.root, &spec.config).map_err(|e| synth_error(spec, e))
}

/// One batch as a frame with the SPEC §3 columns.
pub fn batch_frame(batch: RecordBatch) -> PolarsResult<DataFrame> {
    let height = batch.len();
    let age: Vec<Option<i64>> = batch.age.iter().map(|a| a.map(i64::from)).collect();
    DataFrame::new(
        height,
        vec![
            Column::new("provider_code".into(), batch.provider_code),
            Column::new("site_code".into(), batch.site_code),
            Column::new("test_date".into(), batch.test_date),
            Column::new("gp_practice_code".into(), batch.gp_practice_code),
            Column::new("lsoa11".into(), batch.lsoa11),
            Column::new("sex".into(), batch.sex),
            Column::new("age".into(), age),
            Column::new("modality".into(), batch.modality),
            Column::new("exam_code".into(), batch.exam_code),
            Column::new("patient_source".into(), batch.patient_source),
        ],
    )
}

/// The generator's population at the spec's scale into `counts.population`.
pub fn population_into(
    generator: &Generator,
    spec: &SyntheticSpec,
    counts: &mut StratifiedCounts,
    shape: &DerivationShape,
) -> Result<usize> {
    let find = |categories: &[String], value: &str| categories.iter().position(|c| c == value);
    let rows = generator.population_scaled(spec.scale);
    for row in &rows {
        let area = counts
            .areas
            .iter()
            .position(|a| a.code == row.area_code)
            .ok_or_else(|| {
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
        counts.population_of_mut(area)[cell] += row.population;
    }
    Ok(rows.len())
}

/// Text columns of a record batch stored dictionary-encoded: each holds few distinct codes, so a
/// reader decodes small integer codes plus one dictionary per row group instead of a string per
/// record (SQL engines read them as ordinary text).
const DICTIONARY_COLUMNS: [&str; 9] = [
    "provider_code",
    "site_code",
    "test_date",
    "gp_practice_code",
    "lsoa11",
    "sex",
    "modality",
    "exam_code",
    "patient_source",
];

/// Rows per Parquet row group: a reader decodes one group at a time, so groups of this size keep
/// its buffers small (a few MB per column) and share out evenly among threads.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// One batch as a frame whose text columns are categorical (dictionary-encoded in Parquet).
pub fn batch_frame_categorical(batch: RecordBatch) -> PolarsResult<DataFrame> {
    let mut df = batch_frame(batch)?;
    let categorical = DataType::from_categories(Categories::global());
    for name in DICTIONARY_COLUMNS {
        let column = df.column(name)?.cast(&categorical)?;
        df.with_column(column)?;
    }
    Ok(df)
}

/// Writes the records as Parquet (row groups of [`ROW_GROUP_ROWS`] records, text columns
/// dictionary-encoded) and the population as CSV. Returns the number of records.
pub fn write_files(generator: &Generator, spec: &SyntheticSpec, dir: &Path) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let records = dir.join("activity.parquet");
    let tmp = dir.join(".activity.parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut writer: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>> = None;
    let mut file = Some(file);
    let written = generator
        .generate(spec.scale, spec.seed, |batch| -> PolarsResult<()> {
            let df = batch_frame_categorical(batch)?;
            if writer.is_none()
                && let Some(f) = file.take()
            {
                writer = Some(ParquetWriter::new(f).batched(df.schema())?);
            }
            if let Some(w) = writer.as_mut() {
                // The batched writer makes one row group per frame written.
                for start in (0..df.height()).step_by(ROW_GROUP_ROWS) {
                    w.write_batch(&df.slice(start as i64, ROW_GROUP_ROWS))?;
                }
            }
            Ok(())
        })
        .map_err(|e| synth_error(spec, e))?;
    if let Some(w) = writer {
        w.finish()
            .map_err(|e| Error::polars(records.display().to_string(), e))?;
    }
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
        .generate(spec.scale, spec.seed, |batch| -> PolarsResult<()> {
            if stop.is_none()
                && let Err(e) = pass.count(&mut tally, &GeneratedBatch(batch))
            {
                stop = Some(e);
            }
            Ok(())
        })
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
