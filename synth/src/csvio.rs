//! Small typed CSV reader over plain or gzip files (the `csv` crate does the parsing).

use crate::error::SynthError;
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A CSV table read whole, with named column lookup and row-aware error messages.
pub(crate) struct Table {
    pub path: PathBuf,
    headers: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    /// Read a `.csv` or `.csv.gz` file with a header row.
    pub fn read(path: &Path) -> Result<Table, SynthError> {
        let file = File::open(path).map_err(|source| SynthError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut csv_reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let headers = csv_reader
            .headers()
            .map_err(|source| SynthError::Csv {
                path: path.to_path_buf(),
                row: 1,
                source,
            })?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (index, record) in csv_reader.records().enumerate() {
            rows.push(record.map_err(|source| SynthError::Csv {
                path: path.to_path_buf(),
                row: index as u64 + 2,
                source,
            })?);
        }
        Ok(Table {
            path: path.to_path_buf(),
            headers,
            rows,
        })
    }

    /// Index of a required column.
    pub fn column(&self, name: &str) -> Result<usize, SynthError> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| SynthError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Rows with their 1-based file line number (header is line 1).
    pub fn rows(&self) -> impl Iterator<Item = (u64, &csv::StringRecord)> {
        self.rows.iter().enumerate().map(|(i, r)| (i as u64 + 2, r))
    }

    pub fn text<'a>(&self, row: &'a csv::StringRecord, column: usize) -> &'a str {
        row.get(column).unwrap_or("")
    }

    /// Parse a field, naming file, row and column on failure.
    pub fn parse<T: std::str::FromStr>(
        &self,
        line: u64,
        row: &csv::StringRecord,
        column: usize,
    ) -> Result<T, SynthError> {
        let raw = self.text(row, column);
        raw.trim().parse().map_err(|_| SynthError::Field {
            path: self.path.clone(),
            row: line,
            column: self.headers[column].clone(),
            message: format!("cannot parse `{raw}`"),
        })
    }

    pub fn field_error(&self, line: u64, column: usize, message: String) -> SynthError {
        SynthError::Field {
            path: self.path.clone(),
            row: line,
            column: self.headers[column].clone(),
            message,
        }
    }
}
