//! Writing the generated year as CSV (gzip when the path ends in `.gz`), in the SPEC §3 column order.

use crate::error::SynthError;
use crate::generator::{Generator, RecordBatch};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// SPEC §3 record columns, in order.
pub const RECORD_COLUMNS: [&str; 10] = [
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
];

fn open(path: &Path) -> Result<csv::Writer<Box<dyn Write>>, SynthError> {
    let file = File::create(path).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sink: Box<dyn Write> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzEncoder::new(BufWriter::new(file), Compression::fast()))
    } else {
        Box::new(BufWriter::new(file))
    };
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(sink))
}

fn csv_error(path: &Path, row: u64, source: csv::Error) -> SynthError {
    SynthError::Csv {
        path: path.to_path_buf(),
        row,
        source,
    }
}

impl Generator {
    /// Write records at `scale` with `seed` to `records` and the matching population (multiplied by
    /// `scale`) to `population`. Returns the number of records written.
    pub fn write_csv(
        &self,
        scale: f64,
        seed: u64,
        records: &Path,
        population: &Path,
    ) -> Result<u64, SynthError> {
        let mut writer = open(population)?;
        writer
            .write_record(["area_code", "sex", "age_band", "imd_quintile", "population"])
            .map_err(|e| csv_error(population, 1, e))?;
        for (index, row) in self.population_scaled(scale).iter().enumerate() {
            writer
                .write_record([
                    row.area_code.as_str(),
                    row.sex.as_str(),
                    row.age_band.as_str(),
                    &row.imd_quintile.to_string(),
                    &format!("{}", (row.population * 1e6).round() / 1e6),
                ])
                .map_err(|e| csv_error(population, index as u64 + 2, e))?;
        }
        writer.flush().map_err(|source| SynthError::Io {
            path: population.to_path_buf(),
            source,
        })?;
        drop(writer);

        let mut writer = open(records)?;
        writer
            .write_record(RECORD_COLUMNS)
            .map_err(|e| csv_error(records, 1, e))?;
        let mut line = 1u64;
        let written = self.generate(
            scale,
            seed,
            |batch: RecordBatch| -> Result<(), SynthError> {
                let text = |v: &Option<String>| v.clone().unwrap_or_default();
                for i in 0..batch.len() {
                    line += 1;
                    writer
                        .write_record([
                            batch.provider_code[i].clone(),
                            text(&batch.site_code[i]),
                            batch.test_date[i].clone(),
                            text(&batch.gp_practice_code[i]),
                            text(&batch.lsoa11[i]),
                            batch.sex[i].clone(),
                            batch.age[i].map(|a| a.to_string()).unwrap_or_default(),
                            batch.modality[i].clone(),
                            text(&batch.exam_code[i]),
                            text(&batch.patient_source[i]),
                        ])
                        .map_err(|e| csv_error(records, line, e))?;
                }
                Ok(())
            },
        )?;
        let inner = writer.into_inner().map_err(|e| SynthError::Io {
            path: records.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        finish(inner, records)?;
        Ok(written)
    }
}

fn finish(mut sink: Box<dyn Write>, path: &Path) -> Result<(), SynthError> {
    sink.flush().map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}
