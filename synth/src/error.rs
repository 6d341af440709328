//! Errors of the synthetic generator: every one names the file, and where it applies the row and column.

use std::path::PathBuf;

/// Anything that can go wrong while loading reference data, calibrating or generating.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, row {row}: malformed CSV: {source}")]
    Csv {
        path: PathBuf,
        row: u64,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: missing column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}, row {row}, column `{column}`: {message}")]
    Field {
        path: PathBuf,
        row: u64,
        column: String,
        message: String,
    },
    #[error("{path}: invalid TOML: {source}")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("calibration of `{measure}` failed: {message}")]
    Calibration { measure: String, message: String },
    #[error("record sink failed: {0}")]
    Sink(String),
}
