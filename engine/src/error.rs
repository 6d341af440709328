//! Errors the engine reports. Every one names where the problem is: a recipe position
//! (`file:line:col`), a data file with row and column, or a plugin.

use std::path::{Path, PathBuf};

/// A problem in a recipe, at a position in its text.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeProblem {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for RecipeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// A problem in an input data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataProblem {
    pub file: PathBuf,
    /// 1-based data row (header not counted), when one row is to blame.
    pub row: Option<usize>,
    pub column: Option<String>,
    pub rule: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for DataProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(row) = self.row {
            // Rows count data rows; the line (header = line 1) is what an editor shows.
            write!(f, ", row {row} (line {})", row + 1)?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        write!(f, ": {}", self.rule)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The recipe (or the invocation) is wrong: exit code 2.
    #[error("{}", join_problems(.0))]
    Recipe(Vec<RecipeProblem>),
    #[error("{0}")]
    Usage(String),
    /// A plugin library could not be loaded or was refused: exit code 2.
    #[error("plugin {plugin}: {message}")]
    Plugin { plugin: String, message: String },
    /// Bad input data: exit code 1.
    #[error("{0}")]
    Data(DataProblem),
    /// A method failed at run time: exit code 1.
    #[error("stage {stage} ({plugin}): {message}")]
    Method {
        stage: String,
        plugin: String,
        message: String,
    },
    /// The outputs could not be written; the previous outputs are left in place: exit code 1.
    #[error("{}: cannot write outputs: {source} (hint: {hint})", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
        hint: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A query run where the data lives (`strata run --spark`) failed there or came back in a
    /// form strata does not read: exit code 1.
    #[error("{endpoint} (Spark Connect): {message}")]
    Remote { endpoint: String, message: String },
    /// Published figures outside tolerance (`strata verify`): exit code 1.
    #[error("{0}")]
    Verify(String),
}

fn join_problems(problems: &[RecipeProblem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// 2 for a bad invocation, recipe or plugin; 1 for a run that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Recipe(_) | Error::Usage(_) | Error::Plugin { .. } => 2,
            _ => 1,
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn data(file: &Path, row: Option<usize>, column: Option<&str>, rule: String) -> Self {
        Error::Data(DataProblem {
            file: file.to_path_buf(),
            row,
            column: column.map(str::to_string),
            rule,
            hint: None,
        })
    }

    pub fn data_hint(
        file: &Path,
        row: Option<usize>,
        column: Option<&str>,
        rule: String,
        hint: &str,
    ) -> Self {
        Error::Data(DataProblem {
            file: file.to_path_buf(),
            row,
            column: column.map(str::to_string),
            rule,
            hint: Some(hint.to_string()),
        })
    }

    /// A failure writing outputs, with what to check.
    pub fn output(path: &Path, source: std::io::Error) -> Self {
        let hint = match source.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                "the output folder's parent must be writable by you"
            }
            std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
                "a file stands where the output folder (or one of its parents) should be"
            }
            _ => "check that the output folder is on a writable disk with free space",
        };
        Error::Output {
            path: path.to_path_buf(),
            source,
            hint: format!("{hint}; the previous outputs, if any, are untouched"),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..source.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 8), (2, 3));
    }
}
