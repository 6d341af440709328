//! Input mapping: an extract's own column names and codes, translated to SPEC §3's before any
//! rule runs.
//!
//! A recipe's `[inputs.mapping]` names, per SPEC §3 column, the extract's column that holds it
//! (`columns`), and per code column a value map (`values.<column>.map`, raw value → the value
//! the rules expect, with an optional `default` for values the map does not name; without one
//! they pass unchanged). It may start from a reusable mapping file (`file = …`, e.g.
//! `configs/mappings/udal-dids.toml`), whose entries the recipe's own override one by one.
//!
//! Invariants:
//! - Everything is checked when the recipe is read, before any data: every key a SPEC §3 column,
//!   no two columns read from one extract column, value maps only on code columns.
//! - A value is mapped after trimming and before anything else looks at it, once per distinct
//!   raw value; nulls and empty values stay unknown (a map cannot invent a value for them).
//! - The resolved mapping (file name, version and every entry) is part of the recipe fingerprint
//!   and written to the manifest; the file's checksum is among the manifest's inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{RecipeProblem, line_col};

/// The record-level columns of SPEC §3 a mapping may name.
pub const SPEC_COLUMNS: [&str; 12] = [
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
    "request_date",
    "report_date",
];

/// Columns holding codes, which a value map may translate (ages and dates are read as numbers
/// and dates).
pub const CODE_COLUMNS: [&str; 8] = [
    "provider_code",
    "site_code",
    "gp_practice_code",
    "lsoa11",
    "sex",
    "modality",
    "exam_code",
    "patient_source",
];

/// The mapping-file format this engine reads.
pub const MAPPING_SCHEMA: u32 = 1;

/// `[inputs.mapping]` as written in a recipe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipeMapping {
    #[serde(default)]
    file: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    values: BTreeMap<Spanned<String>, Spanned<RawValueMap>>,
}

/// A reusable mapping file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappingFile {
    schema: Spanned<u32>,
    name: String,
    version: String,
    /// A mapping file this one adds to or overrides (its path relative to this file).
    #[serde(default)]
    extends: Option<Spanned<String>>,
    /// For people reading the file; not used.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Where the names and codes come from.
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    values: BTreeMap<Spanned<String>, Spanned<RawValueMap>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValueMap {
    #[serde(default)]
    map: BTreeMap<String, String>,
    #[serde(default)]
    default: Option<String>,
}

/// One column's value map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueMap {
    /// Raw value (trimmed) → the value the rules read.
    pub map: BTreeMap<String, String>,
    /// For a value the map does not name; `None` keeps it as it is.
    pub default: Option<String>,
}

impl ValueMap {
    /// The value the rules read for `raw` (already trimmed and not empty).
    pub fn apply<'v>(&'v self, raw: &'v str) -> &'v str {
        match self.map.get(raw) {
            Some(mapped) => mapped,
            None => self.default.as_deref().unwrap_or(raw),
        }
    }
}

/// The mapping file a recipe's mapping starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MappingSource {
    pub name: String,
    pub version: String,
    /// Where the file's names and codes come from, as it says.
    pub source: Option<String>,
    /// The mapping file this one extends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<Box<MappingSource>>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A resolved, checked input mapping.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct InputMapping {
    /// The mapping file, when the recipe names one.
    pub file: Option<MappingSource>,
    /// SPEC §3 column → the extract's column, for every column renamed.
    pub columns: BTreeMap<String, String>,
    /// SPEC §3 code column → its value map.
    pub values: BTreeMap<String, ValueMap>,
}

impl InputMapping {
    /// The extract's name for SPEC §3 column `column`.
    pub fn source_name<'m>(&'m self, column: &'m str) -> &'m str {
        self.columns.get(column).map_or(column, String::as_str)
    }

    /// How messages name a column, inside backticks: `` DidDate3`, mapped to `test_date `` (so
    /// it reads "column `DidDate3`, mapped to `test_date`") or `test_date`.
    pub fn describe(&self, column: &str) -> String {
        match self.columns.get(column) {
            Some(source) => format!("{source}`, mapped to `{column}"),
            None => column.to_string(),
        }
    }

    pub fn value_map(&self, column: &str) -> Option<&ValueMap> {
        self.values.get(column)
    }

    /// Two SPEC columns read from one extract column would count one value twice over.
    fn conflict(&self) -> Option<String> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for column in SPEC_COLUMNS {
            let source = self.source_name(column);
            if let Some(first) = seen.insert(source, column) {
                return Some(format!(
                    "`{first}` and `{column}` are both read from the extract's column `{source}`; \
                     each SPEC §3 column comes from its own column"
                ));
            }
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty() && self.values.is_empty()
    }
}

/// Positions in one TOML text, for problems found in it.
struct Text<'a> {
    file: &'a Path,
    source: &'a str,
}

impl Text<'_> {
    fn problem(&self, at: usize, message: String) -> RecipeProblem {
        let (line, col) = line_col(self.source, at);
        RecipeProblem {
            file: self.file.to_path_buf(),
            line,
            col,
            message,
        }
    }
}

/// Resolves a recipe's `[inputs.mapping]` (its file paths relative to `dir`): the mapping, or
/// every problem found in the recipe and the mapping file.
pub fn resolve(
    raw: &Spanned<RawRecipeMapping>,
    recipe_file: &Path,
    recipe_source: &str,
    dir: &Path,
) -> Result<InputMapping, Vec<RecipeProblem>> {
    let recipe = Text {
        file: recipe_file,
        source: recipe_source,
    };
    let raw_mapping = raw.get_ref();
    let mut problems = Vec::new();
    let mut mapping = InputMapping::default();
    if let Some(file) = &raw_mapping.file {
        let path = dir.join(file.get_ref());
        match std::fs::read_to_string(&path) {
            Err(e) => problems.push(recipe.problem(
                file.span().start,
                format!(
                    "inputs.mapping: file `{}` cannot be read ({e}; resolved to {})",
                    file.get_ref(),
                    path.display()
                ),
            )),
            Ok(source) => match read_file(&path, &source, 0) {
                Ok(m) => mapping = m,
                Err(mut p) => problems.append(&mut p),
            },
        }
    }
    // The recipe's own entries override the file's, one column (or one value) at a time.
    let own = entries(
        &recipe,
        &raw_mapping.columns,
        &raw_mapping.values,
        &mut problems,
    );
    merge(&mut mapping, own);
    if let Some(conflict) = mapping.conflict() {
        problems.push(recipe.problem(raw.span().start, format!("inputs.mapping: {conflict}")));
    }
    if problems.is_empty() {
        Ok(mapping)
    } else {
        Err(problems)
    }
}

/// `own`'s entries over `base`'s, one column (or one value) at a time.
fn merge(base: &mut InputMapping, own: InputMapping) {
    base.columns.extend(own.columns);
    for (column, values) in own.values {
        let merged = base.values.entry(column).or_insert(ValueMap {
            map: BTreeMap::new(),
            default: None,
        });
        merged.map.extend(values.map);
        if values.default.is_some() {
            merged.default = values.default;
        }
    }
}

/// Files a mapping may extend in a chain: more is a cycle, or a mistake.
const MAX_EXTENDS: usize = 8;

/// Reads a mapping file and the files it extends.
pub fn load_file(path: &Path) -> Result<InputMapping, Vec<RecipeProblem>> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        vec![RecipeProblem {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("mapping file cannot be read: {e}"),
        }]
    })?;
    read_file(path, &source, 0)
}

/// Reads a mapping file's text (at `depth` in a chain of `extends`).
fn read_file(path: &Path, source: &str, depth: usize) -> Result<InputMapping, Vec<RecipeProblem>> {
    let text = Text { file: path, source };
    let raw: RawMappingFile = toml::from_str(source).map_err(|e| {
        vec![text.problem(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )]
    })?;
    let mut problems = Vec::new();
    if *raw.schema.get_ref() != MAPPING_SCHEMA {
        problems.push(text.problem(
            raw.schema.span().start,
            format!(
                "mapping schema {} is not supported: this strata reads schema {MAPPING_SCHEMA}",
                raw.schema.get_ref()
            ),
        ));
    }
    let mut mapping = InputMapping::default();
    if let Some(base) = &raw.extends {
        let base_path = path.parent().unwrap_or(Path::new(".")).join(base.get_ref());
        let base_source = std::fs::read_to_string(&base_path);
        match base_source {
            _ if depth >= MAX_EXTENDS => problems.push(text.problem(
                base.span().start,
                format!("extends: more than {MAX_EXTENDS} files in a chain (a cycle?)"),
            )),
            Err(e) => problems.push(text.problem(
                base.span().start,
                format!(
                    "extends: `{}` cannot be read ({e}; resolved to {})",
                    base.get_ref(),
                    base_path.display()
                ),
            )),
            Ok(base_source) => match read_file(&base_path, &base_source, depth + 1) {
                Ok(m) => mapping = m,
                Err(mut p) => problems.append(&mut p),
            },
        }
    }
    let own = entries(&text, &raw.columns, &raw.values, &mut problems);
    let extends = mapping.file.take().map(Box::new);
    merge(&mut mapping, own);
    mapping.file = Some(MappingSource {
        name: raw.name,
        version: raw.version,
        source: raw.source,
        extends,
        path: path.to_path_buf(),
    });
    if problems.is_empty() {
        Ok(mapping)
    } else {
        Err(problems)
    }
}

/// Checks and collects the `columns` and `values` entries of one text.
fn entries(
    text: &Text,
    columns: &BTreeMap<Spanned<String>, Spanned<String>>,
    values: &BTreeMap<Spanned<String>, Spanned<RawValueMap>>,
    problems: &mut Vec<RecipeProblem>,
) -> InputMapping {
    let mut mapping = InputMapping::default();
    for (column, source) in columns {
        let name = column.get_ref();
        if !SPEC_COLUMNS.contains(&name.as_str()) {
            problems.push(text.problem(
                column.span().start,
                format!(
                    "mapping.columns: `{name}` is not a SPEC §3 column (columns: {})",
                    SPEC_COLUMNS.join(", ")
                ),
            ));
        } else if source.get_ref().trim().is_empty() {
            problems.push(text.problem(
                source.span().start,
                format!("mapping.columns.{name}: the extract's column name is empty"),
            ));
        } else {
            mapping
                .columns
                .insert(name.clone(), source.get_ref().clone());
        }
    }
    for (column, value_map) in values {
        let name = column.get_ref();
        if !CODE_COLUMNS.contains(&name.as_str()) {
            let why = if SPEC_COLUMNS.contains(&name.as_str()) {
                format!(
                    "mapping.values: `{name}` is read as a number or a date, not a code; value maps \
                     translate codes ({})",
                    CODE_COLUMNS.join(", ")
                )
            } else {
                format!(
                    "mapping.values: `{name}` is not a SPEC §3 code column (code columns: {})",
                    CODE_COLUMNS.join(", ")
                )
            };
            problems.push(text.problem(column.span().start, why));
            continue;
        }
        let raw = value_map.get_ref();
        let mut map = BTreeMap::new();
        for (from, to) in &raw.map {
            // Values are compared trimmed, so a key with spaces around it could never match.
            if from.trim() != from || from.is_empty() {
                problems.push(text.problem(
                    value_map.span().start,
                    format!(
                        "mapping.values.{name}: key `{from}` is empty or has spaces around it; \
                         values are matched after trimming"
                    ),
                ));
            }
            map.insert(from.clone(), to.trim().to_string());
        }
        mapping.values.insert(
            name.clone(),
            ValueMap {
                map,
                default: raw.default.as_ref().map(|d| d.trim().to_string()),
            },
        );
    }
    mapping
}

/// A mapping file given in place of the recipe's mapping (`--mapping`), checked as a recipe's is.
pub fn load_checked(path: &Path) -> crate::error::Result<InputMapping> {
    let mapping = load_file(path).map_err(crate::error::Error::Recipe)?;
    match mapping.conflict() {
        None => Ok(mapping),
        Some(conflict) => Err(crate::error::Error::Recipe(vec![RecipeProblem {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: conflict,
        }])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_map(pairs: &[(&str, &str)], default: Option<&str>) -> ValueMap {
        ValueMap {
            map: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn a_value_map_translates_named_values_and_defaults_the_rest() {
        let sex = value_map(&[("M", "1"), ("F", "2")], None);
        assert_eq!(sex.apply("M"), "1");
        assert_eq!(sex.apply("9"), "9", "unmapped values pass unchanged");
        let strict = value_map(&[("M", "1")], Some(""));
        assert_eq!(
            strict.apply("X"),
            "",
            "the default stands for every other value"
        );
    }

    #[test]
    fn a_files_entries_are_overridden_one_by_one_and_a_chain_is_followed() {
        let dir = std::env::temp_dir().join(format!("strata-mapping-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let base = "schema = 1\nname = \"base\"\nversion = \"1\"\n[columns]\ntest_date = \"D\"\n\
                    sex = \"S\"\n[values.sex.map]\nM = \"1\"\nF = \"2\"\n";
        let local = "schema = 1\nname = \"local\"\nversion = \"2\"\nextends = \"base.toml\"\n\
                     [columns]\nsex = \"Gender\"\n[values.sex]\nmap = { F = \"9\" }\n\
                     default = \"\"\n";
        std::fs::write(dir.join("base.toml"), base).expect("write");
        std::fs::write(dir.join("local.toml"), local).expect("write");
        let mapping = load_checked(&dir.join("local.toml")).expect("valid chain");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(mapping.source_name("test_date"), "D", "from the base");
        assert_eq!(mapping.source_name("sex"), "Gender", "overridden");
        assert_eq!(mapping.source_name("age"), "age", "not mapped");
        let sex = mapping.value_map("sex").expect("sex map");
        assert_eq!(sex.apply("M"), "1", "kept from the base");
        assert_eq!(sex.apply("F"), "9", "overridden");
        assert_eq!(sex.apply("U"), "", "the local default");
        let file = mapping.file.as_ref().expect("file");
        assert_eq!((file.name.as_str(), file.version.as_str()), ("local", "2"));
        assert_eq!(file.extends.as_ref().map(|b| b.name.as_str()), Some("base"));
        assert_eq!(mapping.describe("sex"), "Gender`, mapped to `sex");
    }
}
