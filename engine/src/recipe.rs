//! Recipes: read in two steps, raw TOML (unknown keys are errors) then a resolved, checked recipe.
//!
//! Every problem found before data is read carries `file:line:col`: unknown keys, a wrong schema
//! version, unknown plugin ids, parameters a plugin refuses, missing input files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_api::{Params, StageKind};
use toml::Spanned;

use crate::error::{Error, RecipeProblem, Result, line_col};

/// The recipe format this engine reads.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    schema: Spanned<u32>,
    name: String,
    year: String,
    area_kind: String,
    #[serde(default)]
    description: Option<String>,
    /// First day of the reporting year, `YYYY-MM-DD`; months of the year count from it.
    year_start: Spanned<String>,
    /// Rates are per this many people (default 10,000, the publications' unit).
    #[serde(default)]
    rate_per: Option<Spanned<toml::Value>>,
    #[serde(default)]
    plugin_paths: Vec<Spanned<String>>,
    inputs: RawInputs,
    stages: Spanned<RawStages>,
    outputs: RawOutputs,
    #[serde(default)]
    published: Option<Spanned<String>>,
    #[serde(default)]
    verify: Option<Spanned<crate::verify::Tolerances>>,
    /// The two periods a period comparison sets side by side (seed 002).
    #[serde(default)]
    comparison: Option<Spanned<RawComparison>>,
    /// Line charts of output tables the publication draws (`crate::charts`).
    #[serde(default)]
    charts: Vec<ChartSpec>,
    /// Context tables: one output table's rows beside another's (`crate::context`).
    #[serde(default)]
    context: Vec<ContextSpec>,
}

/// One `[[context]]` entry: a table of `table`'s rows (those `where` keeps, `columns` of them)
/// each beside the one row of `join` (those `join_where` keeps) whose `on` columns hold the same
/// values, ignoring ASCII case; `join_columns` of it are added with `prefix`. A row with no match
/// keeps empty joined cells and says so in `context_note`; two matches are an error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    /// The output table's name (`<name>.csv`) and its title.
    pub name: String,
    pub title: String,
    pub table: String,
    /// Rows whose column holds one of the values.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Vec<String>>,
    pub columns: Vec<String>,
    pub join: String,
    #[serde(default)]
    pub join_where: BTreeMap<String, Vec<String>>,
    /// Pairs of (column of `table`, column of `join`) that must hold the same value.
    pub on: Vec<[String; 2]>,
    pub join_columns: Vec<String>,
    #[serde(default)]
    pub prefix: String,
}

/// One `[[charts]]` entry: a line chart of one output table's rows, x a column of labels
/// (months), one line per value of the `series` column and column of `y`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// The file's name under `charts/`, without `.svg`.
    pub name: String,
    pub title: String,
    pub table: String,
    /// Rows whose columns hold these values (as text).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, String>,
    /// The x column; its values, sorted, are the x positions.
    pub x: String,
    /// The column whose values name the series, and the values drawn, in order.
    pub series: String,
    pub series_values: Vec<String>,
    /// The value columns: each series × column is one line.
    pub y: Vec<ChartColumn>,
    pub y_label: String,
}

/// A value column of a chart and how its lines are labelled and drawn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartColumn {
    pub column: String,
    /// Appended to the series value in the legend (empty: the series value alone).
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub dashed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComparison {
    period_a: RawPeriod,
    period_b: RawPeriod,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    label: String,
    /// First and last month, `YYYY-MM`.
    first: String,
    last: String,
}

/// One DM01 file; an older provider file also names its month and test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDm01 {
    file: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    test: Option<String>,
}

/// The synthetic provider × month counts of a period comparison, in place of a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyntheticProviderMonths {
    /// Calibration config, e.g. `synth/backlog-2020.toml`, relative to the recipe.
    config: String,
    #[serde(default = "default_seed")]
    seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInputs {
    activity: Option<Spanned<String>>,
    counts: Option<Spanned<String>>,
    synthetic: Option<Spanned<RawSynthetic>>,
    population: Option<Spanned<String>>,
    areas: Option<Spanned<String>>,
    /// Tests by provider × month × measure (`provider_code, month, measure, tests`).
    provider_months: Option<Spanned<String>>,
    synthetic_provider_months: Option<Spanned<RawSyntheticProviderMonths>>,
    /// Provider → NHS region (`provider_code, provider_name, region_code, region_name`).
    provider_regions: Option<Spanned<String>>,
    /// DM01 waiting-times files (`crate::dm01`).
    #[serde(default)]
    dm01: Vec<Spanned<RawDm01>>,
    /// Synthetic DM01 waiting lists in place of files.
    synthetic_dm01: Option<Spanned<RawSyntheticProviderMonths>>,
    /// Provider → ICB (`provider_code, icb_code, icb_name`), for DM01 activity by ICB.
    provider_icbs: Option<Spanned<String>>,
    /// Community diagnostic centre activity files (`crate::cdc`).
    #[serde(default)]
    cdc_activity: Vec<Spanned<String>>,
    /// CDC test type names → DM01 test codes (or `NOT_DM01`).
    #[serde(default)]
    cdc_test_names: Option<Spanned<BTreeMap<String, String>>>,
    /// The approved CDC site list the activity is joined to by site code.
    cdc_sites: Option<Spanned<String>>,
    /// Synthetic DM01 activity and CDC activity in place of files.
    synthetic_cdc: Option<Spanned<RawSyntheticProviderMonths>>,
    /// Other nations' published waiting figures, shown beside England's (`crate::dm01`).
    other_nations_waits: Option<Spanned<String>>,
    practices: Option<Spanned<String>>,
    /// NHS Digital's practice patients by sex and five-year age group
    /// (`gp-reg-pat-prac-quin-age.csv`), summed into the areas through `practices`.
    practice_population: Option<Spanned<String>>,
    /// Population `area_code, age_band, imd_quintile, population` whose mix of IMD quintiles in
    /// each age band a practice's patients take (e.g. the ICBs'), and each practice's area in it
    /// (`practice_code, area_code`).
    practice_imd_mix: Option<Spanned<String>>,
    practice_imd_areas: Option<Spanned<String>>,
    non_english_practices: Option<Spanned<String>>,
    lsoa: Option<Spanned<String>>,
    imd: Option<Spanned<String>>,
    exam_codes: Option<Spanned<String>>,
    providers: Option<Spanned<String>>,
    boundaries: Option<Spanned<String>>,
    /// The extract's own column names and codes → SPEC §3's (`input::mapping`).
    #[serde(default)]
    mapping: Option<Spanned<crate::input::mapping::RawRecipeMapping>>,
}

/// The embedded synthetic year, in place of an extract.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynthetic {
    /// Calibration config, e.g. `synth/did-2023-24.toml`.
    config: String,
    /// Folder the config's own paths are relative to (default: the recipe's parent folder).
    #[serde(default = "default_root")]
    root: String,
    #[serde(default = "default_scale")]
    scale: f64,
    #[serde(default = "default_seed")]
    seed: u64,
    /// The recipe's areas are made of the synthetic year's practices (practice or sub-ICB level).
    #[serde(default)]
    areas_from_practices: bool,
    /// `poisson` or `systematic` in place of the config's `count_sampling`.
    #[serde(default)]
    sampling: Option<strata_synth::CountSampling>,
}

fn default_root() -> String {
    "..".into()
}
fn default_scale() -> f64 {
    0.01
}
fn default_seed() -> u64 {
    1
}

/// The `[stages]` table: one entry per stage the recipe runs, keyed by its kind
/// (`StageKind::key`); which kinds a run needs is the pipeline's to say.
type RawStages = BTreeMap<Spanned<String>, Spanned<RawStage>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    plugin: Spanned<String>,
    #[serde(default)]
    params: Option<Spanned<toml::Table>>,
    /// Files the plugin's method depends on, by parameter name: the engine reads each CSV and
    /// hands its rows to the plugin as that parameter (plugins do no IO).
    #[serde(default)]
    data: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutputs {
    dir: Spanned<String>,
    /// Decimal places of floats in CSV outputs (default 6).
    #[serde(default)]
    float_precision: Option<Spanned<usize>>,
    /// Also write the stratum counts in the aggregated-entry contract (`stratum_counts.csv`).
    #[serde(default)]
    stratum_counts: bool,
    /// Write the publication: Annex B workbook, charts, maps and `report.html` (default true).
    #[serde(default = "default_true")]
    publication: bool,
}

fn default_true() -> bool {
    true
}

fn default_precision() -> usize {
    6
}

/// A position in the recipe text, kept so later checks can point at what they refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl<T> From<&Spanned<T>> for Span {
    fn from(s: &Spanned<T>) -> Self {
        let r = s.span();
        Span {
            start: r.start,
            end: r.end,
        }
    }
}

/// One input file, resolved against the recipe's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPath {
    /// As written in the recipe.
    pub written: String,
    pub path: PathBuf,
    pub span: Span,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub activity: Option<InputPath>,
    pub synthetic: Option<crate::synthetic::SyntheticSpec>,
    pub counts: Option<InputPath>,
    pub population: Option<InputPath>,
    pub areas: Option<InputPath>,
    pub practices: Option<InputPath>,
    /// `gp-reg-pat-prac-quin-age.csv` as the population (`input::practice_population`).
    pub practice_population: Option<InputPath>,
    /// The IMD mix a practice's patients take, and each practice's area in it.
    pub practice_imd_mix: Option<InputPath>,
    pub practice_imd_areas: Option<InputPath>,
    pub non_english_practices: Option<InputPath>,
    pub lsoa: Option<InputPath>,
    pub imd: Option<InputPath>,
    pub exam_codes: Option<InputPath>,
    pub providers: Option<InputPath>,
    pub boundaries: Option<InputPath>,
    pub provider_months: Option<InputPath>,
    pub synthetic_provider_months: Option<SyntheticProviderMonths>,
    pub provider_regions: Option<InputPath>,
    pub other_nations_waits: Option<InputPath>,
    pub dm01: Vec<crate::dm01::Dm01File>,
    /// The DM01 files as inputs (checked to exist, checksummed in the manifest).
    pub dm01_paths: Vec<InputPath>,
    pub synthetic_dm01: Option<SyntheticProviderMonths>,
    pub provider_icbs: Option<InputPath>,
    pub cdc_activity: Vec<InputPath>,
    pub cdc_test_names: crate::cdc::TestNames,
    pub cdc_sites: Option<InputPath>,
    /// Synthetic DM01 activity and CDC activity (seed 004).
    pub synthetic_cdc: Option<SyntheticProviderMonths>,
    /// How the record-level extract's columns and codes are read (empty: as SPEC §3 names them).
    pub mapping: crate::input::mapping::InputMapping,
    /// The mapping file the mapping starts from, if any (checked and checksummed as an input).
    pub mapping_file: Option<InputPath>,
    /// The stages' `data` files (checked to exist, checksummed in the manifest).
    pub stage_data: Vec<InputPath>,
}

impl Inputs {
    /// Every named input with its recipe key, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, &InputPath)> {
        [
            ("activity", &self.activity),
            ("counts", &self.counts),
            ("population", &self.population),
            ("areas", &self.areas),
            ("practices", &self.practices),
            ("practice_population", &self.practice_population),
            ("practice_imd_mix", &self.practice_imd_mix),
            ("practice_imd_areas", &self.practice_imd_areas),
            ("non_english_practices", &self.non_english_practices),
            ("lsoa", &self.lsoa),
            ("imd", &self.imd),
            ("exam_codes", &self.exam_codes),
            ("providers", &self.providers),
            ("boundaries", &self.boundaries),
            ("provider_months", &self.provider_months),
            ("provider_regions", &self.provider_regions),
            ("provider_icbs", &self.provider_icbs),
            ("cdc_sites", &self.cdc_sites),
            ("other_nations_waits", &self.other_nations_waits),
            ("mapping", &self.mapping_file),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|p| (k, p)))
        .chain(
            self.synthetic_provider_months
                .as_ref()
                .map(|s| ("synthetic_provider_months", &s.config)),
        )
        .chain(self.dm01_paths.iter().map(|p| ("dm01", p)))
        .chain(self.stage_data.iter().map(|p| ("stage_data", p)))
        .chain(
            self.synthetic_dm01
                .as_ref()
                .map(|s| ("synthetic_dm01", &s.config)),
        )
        .chain(self.cdc_activity.iter().map(|p| ("cdc_activity", p)))
        .chain(
            self.synthetic_cdc
                .as_ref()
                .map(|s| ("synthetic_cdc", &s.config)),
        )
        .collect()
    }
}

/// The synthetic provider × month counts: the generator's config (read by the engine, checksummed
/// in the manifest) and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticProviderMonths {
    pub config: InputPath,
    pub seed: u64,
}

/// One period of a comparison: its label and first and last months, inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub label: String,
    pub first: (i32, u32),
    pub last: (i32, u32),
}

impl Period {
    /// Months in the period.
    pub fn months(&self) -> u32 {
        ((self.last.0 - self.first.0) * 12 + self.last.1 as i32 - self.first.1 as i32 + 1) as u32
    }

    /// The period's `k`-th month (0 is the first), `YYYY-MM`.
    pub fn month(&self, k: u32) -> String {
        let index = self.first.0 * 12 + self.first.1 as i32 - 1 + k as i32;
        format!(
            "{:04}-{:02}",
            index.div_euclid(12),
            index.rem_euclid(12) + 1
        )
    }
}

/// One stage as the recipe chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChoice {
    pub stage: StageKind,
    /// The plugin's id, without a version pin.
    pub plugin: String,
    /// `id@major` in the recipe: the plugin's major version must be this.
    pub pinned_major: Option<u64>,
    pub params: Params,
    pub plugin_span: Span,
    pub params_span: Option<Span>,
    /// `data = { key = "file.csv" }`: each file's rows become parameter `key` (an array of
    /// tables of text cells, one per data row, keyed by the header) when the plugin is configured.
    pub data: Vec<(String, InputPath)>,
}

/// A recipe after the raw read: every key known, paths resolved.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub file: PathBuf,
    pub source: String,
    pub name: String,
    pub year: String,
    pub area_kind: String,
    pub description: Option<String>,
    pub year_start: (i32, u32, u32),
    /// Rates are per this many people ([`strata_api::DEFAULT_RATE_PER`] unless the recipe says).
    pub rate_per: f64,
    pub plugin_paths: Vec<PathBuf>,
    pub inputs: Inputs,
    pub stages: Vec<StageChoice>,
    /// Where `[stages]` is, for problems with the stages as a whole (one missing).
    pub stages_span: Span,
    pub output_dir: PathBuf,
    pub float_precision: usize,
    pub write_stratum_counts: bool,
    pub write_publication: bool,
    pub published: Option<InputPath>,
    pub tolerances: crate::verify::Tolerances,
    /// `[comparison]`: the two periods, earlier first.
    pub comparison: Option<(Period, Period)>,
    /// `[[charts]]`: line charts the publication draws from output tables.
    pub charts: Vec<ChartSpec>,
    /// `[[context]]`: tables of one output table's rows beside another's.
    pub context: Vec<ContextSpec>,
}

/// The canonical form hashed into the recipe fingerprint.
#[derive(Serialize)]
struct CanonicalRecipe<'a> {
    schema: u32,
    name: &'a str,
    year: &'a str,
    area_kind: &'a str,
    year_start: String,
    /// Absent at the default unit, so recipes that name none keep their fingerprints.
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_per: Option<f64>,
    inputs: BTreeMap<&'a str, &'a str>,
    /// Absent when empty, so recipes without a mapping keep their fingerprints.
    #[serde(skip_serializing_if = "crate::input::mapping::InputMapping::is_empty")]
    mapping: &'a crate::input::mapping::InputMapping,
    stages: BTreeMap<&'a str, (String, String)>,
    /// Absent without a comparison, so other recipes keep their fingerprints.
    #[serde(skip_serializing_if = "Option::is_none")]
    comparison: Option<[(String, String, String); 2]>,
    /// Absent without CDC activity, so other recipes keep their fingerprints.
    #[serde(skip_serializing_if = "crate::cdc::TestNames::is_empty")]
    cdc_test_names: &'a crate::cdc::TestNames,
}

impl Recipe {
    /// Reads and resolves a recipe file. Unknown keys, a wrong schema and missing input files are
    /// reported with `file:line:col`.
    pub fn load(file: &Path) -> Result<Recipe> {
        let source = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Recipe::parse(file, source)
    }

    pub fn parse(file: &Path, source: String) -> Result<Recipe> {
        let mut problems = Problems {
            file,
            source: &source,
            found: Vec::new(),
        };
        let raw: RawRecipe = toml::from_str(&source).map_err(|e| {
            let message = e.message().trim().to_string();
            Error::Recipe(vec![problems.at(e.span(), message)])
        })?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        problems.check_schema(&raw.schema);
        let year_start = problems.year_start(&raw.year_start);
        let rate_per = problems.rate_per(raw.rate_per.as_ref());
        let float_precision = problems.float_precision(&raw.outputs.float_precision);
        let mut inputs = problems.inputs(&raw.inputs, &dir);
        let stages = problems.stages(raw.stages.get_ref(), &dir);
        inputs.stage_data = stages
            .iter()
            .flat_map(|s| s.data.iter().map(|(_, p)| p.clone()))
            .collect();
        problems.check_verify_gate(raw.verify.as_ref());
        let comparison = problems.comparison(raw.comparison.as_ref(), &inputs);
        let resolve = |s: &Spanned<String>| resolve_path(&dir, s);
        let recipe = Recipe {
            file: file.to_path_buf(),
            name: raw.name,
            year: raw.year,
            area_kind: raw.area_kind,
            description: raw.description,
            year_start,
            rate_per,
            plugin_paths: raw
                .plugin_paths
                .iter()
                .map(|p| dir.join(p.get_ref()))
                .collect(),
            inputs,
            stages,
            stages_span: Span::from(&raw.stages),
            output_dir: dir.join(raw.outputs.dir.get_ref()),
            float_precision,
            write_stratum_counts: raw.outputs.stratum_counts,
            write_publication: raw.outputs.publication,
            published: raw.published.as_ref().map(resolve),
            tolerances: raw.verify.map(|v| v.into_inner()).unwrap_or_default(),
            comparison,
            charts: raw.charts,
            context: raw.context,
            source: source.clone(),
        };
        let mut found = problems.found;
        found.extend(recipe.missing_files());
        if found.is_empty() {
            Ok(recipe)
        } else {
            Err(Error::Recipe(found))
        }
    }

    /// A problem at a span of this recipe.
    pub fn problem_at(&self, span: Span, message: String) -> RecipeProblem {
        let (line, col) = line_col(&self.source, span.start);
        RecipeProblem {
            file: self.file.clone(),
            line,
            col,
            message,
        }
    }

    /// The position of `key` inside a params table (for a plugin's parameter error), else the
    /// table itself.
    pub fn param_key_span(&self, params: Span, key: Option<&str>) -> Span {
        let Some(key) = key else { return params };
        let last = key.rsplit('.').next().unwrap_or(key);
        let text =
            &self.source[params.start.min(self.source.len())..params.end.min(self.source.len())];
        let mut offset = params.start;
        for line in text.split_inclusive('\n') {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            for candidate in [last.to_string(), format!("\"{last}\"")] {
                if let Some(rest) = trimmed.strip_prefix(&candidate)
                    && rest.trim_start().starts_with(['=', '.'])
                {
                    return Span {
                        start: offset + indent,
                        end: offset + indent + candidate.len(),
                    };
                }
            }
            offset += line.len();
        }
        params
    }

    fn missing_files(&self) -> Vec<RecipeProblem> {
        let mut named: Vec<(&str, &InputPath)> = self.inputs.named();
        if let Some(p) = &self.published {
            named.push(("published", p));
        }
        named
            .into_iter()
            .filter(|(_, p)| !p.path.is_file())
            .map(|(key, p)| {
                self.problem_at(
                    p.span,
                    format!(
                        "input `{key}`: file `{}` not found (resolved to {})",
                        p.written,
                        p.path.display()
                    ),
                )
            })
            .collect()
    }

    pub fn stage(&self, stage: StageKind) -> Option<&StageChoice> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    /// SHA-256 of the canonical resolved form: same recipe meaning, same fingerprint.
    pub fn fingerprint(&self) -> String {
        let canonical = CanonicalRecipe {
            schema: SCHEMA_VERSION,
            name: &self.name,
            year: &self.year,
            area_kind: &self.area_kind,
            year_start: format!(
                "{:04}-{:02}-{:02}",
                self.year_start.0, self.year_start.1, self.year_start.2
            ),
            rate_per: (self.rate_per != strata_api::DEFAULT_RATE_PER).then_some(self.rate_per),
            inputs: self
                .inputs
                .named()
                .into_iter()
                .map(|(k, p)| (k, p.written.as_str()))
                .collect(),
            mapping: &self.inputs.mapping,
            stages: self
                .stages
                .iter()
                .map(|s| {
                    (
                        s.stage.key(),
                        (
                            match s.pinned_major {
                                Some(major) => format!("{}@{major}", s.plugin),
                                None => s.plugin.clone(),
                            },
                            s.params.to_toml_string(),
                        ),
                    )
                })
                .collect(),
            comparison: self.comparison.as_ref().map(|(a, b)| {
                [a, b].map(|p| (p.label.clone(), p.month(0), p.month(p.months() - 1)))
            }),
            cdc_test_names: &self.inputs.cdc_test_names,
        };
        let json = serde_json::to_string(&canonical).unwrap_or_default();
        hex(&Sha256::digest(json.as_bytes()))
    }
}

/// A recipe path as written and as resolved against the recipe's folder.
fn resolve_path(dir: &Path, s: &Spanned<String>) -> InputPath {
    InputPath {
        written: s.get_ref().clone(),
        path: dir.join(s.get_ref()),
        span: Span::from(s),
    }
}

/// The problems found while reading one recipe, each at its position in the file; every check
/// reports into it, so one read lists them all.
struct Problems<'a> {
    file: &'a Path,
    source: &'a str,
    found: Vec<RecipeProblem>,
}

impl Problems<'_> {
    /// A problem at a byte span of the recipe (its start; the file's start without one).
    fn at(&self, span: Option<std::ops::Range<usize>>, message: String) -> RecipeProblem {
        let (line, col) = line_col(self.source, span.map(|s| s.start).unwrap_or(0));
        RecipeProblem {
            file: self.file.to_path_buf(),
            line,
            col,
            message,
        }
    }

    fn push(&mut self, span: Option<std::ops::Range<usize>>, message: String) {
        let problem = self.at(span, message);
        self.found.push(problem);
    }

    fn check_schema(&mut self, schema: &Spanned<u32>) {
        if *schema.get_ref() != SCHEMA_VERSION {
            self.push(
                Some(schema.span()),
                format!(
                    "schema version {} is not supported: this strata reads schema {SCHEMA_VERSION}",
                    schema.get_ref()
                ),
            );
        }
    }

    /// The first day of the reporting year; a year_start whose twelve months are not all dates
    /// (beyond year 262,142) is refused too.
    fn year_start(&mut self, year_start: &Spanned<String>) -> (i32, u32, u32) {
        match crate::dates::parse_recipe_date(year_start.get_ref())
            .filter(|&(y, m, _)| crate::dates::month_starts(y, m).is_some())
        {
            Some(d) => d,
            None => {
                self.push(
                    Some(year_start.span()),
                    format!(
                        "year_start `{}` is not a date (YYYY-MM-DD)",
                        year_start.get_ref()
                    ),
                );
                (1970, 1, 1)
            }
        }
    }

    /// The per-population unit of every rate: a positive, finite number of people.
    fn rate_per(&mut self, raw: Option<&Spanned<toml::Value>>) -> f64 {
        let Some(raw) = raw else {
            return strata_api::DEFAULT_RATE_PER;
        };
        let value = match raw.get_ref() {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) => Some(*f),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v > 0.0 => v,
            _ => {
                self.push(
                    Some(raw.span()),
                    format!(
                        "rate_per must be a positive number of people (e.g. 10000, the \
                         publications' unit, or 1000), got {}",
                        raw.get_ref()
                    ),
                );
                strata_api::DEFAULT_RATE_PER
            }
        }
    }

    /// Decimals of the output CSVs. An f64 holds 15-17 significant digits: more decimals print
    /// noise, and differ by machine.
    fn float_precision(&mut self, precision: &Option<Spanned<usize>>) -> usize {
        match precision {
            None => default_precision(),
            Some(p) if *p.get_ref() <= 12 => *p.get_ref(),
            Some(p) => {
                self.push(
                    Some(p.span()),
                    format!(
                        "outputs.float_precision {} is more decimals than a float holds: use 0 to 12",
                        p.get_ref()
                    ),
                );
                default_precision()
            }
        }
    }

    /// The inputs, resolved against the recipe's folder, with the input mapping and the checks
    /// that the recipe names one source and a population.
    fn inputs(&mut self, raw: &RawInputs, dir: &Path) -> Inputs {
        let resolve = |s: &Spanned<String>| resolve_path(dir, s);
        let opt = |s: &Option<Spanned<String>>| s.as_ref().map(resolve);
        let mut inputs = Inputs {
            activity: opt(&raw.activity),
            counts: opt(&raw.counts),
            synthetic: raw.synthetic.as_ref().map(|s| {
                let s = s.get_ref();
                crate::synthetic::SyntheticSpec {
                    config: dir.join(&s.config),
                    root: dir.join(&s.root),
                    scale: s.scale,
                    seed: s.seed,
                    areas_from_practices: s.areas_from_practices,
                    sampling: s.sampling,
                }
            }),
            population: opt(&raw.population),
            areas: opt(&raw.areas),
            practices: opt(&raw.practices),
            practice_population: opt(&raw.practice_population),
            practice_imd_mix: opt(&raw.practice_imd_mix),
            practice_imd_areas: opt(&raw.practice_imd_areas),
            non_english_practices: opt(&raw.non_english_practices),
            lsoa: opt(&raw.lsoa),
            imd: opt(&raw.imd),
            exam_codes: opt(&raw.exam_codes),
            providers: opt(&raw.providers),
            boundaries: opt(&raw.boundaries),
            provider_months: opt(&raw.provider_months),
            synthetic_provider_months: raw.synthetic_provider_months.as_ref().map(|s| {
                let spec = s.get_ref();
                SyntheticProviderMonths {
                    config: InputPath {
                        written: spec.config.clone(),
                        path: dir.join(&spec.config),
                        span: Span::from(s),
                    },
                    seed: spec.seed,
                }
            }),
            provider_regions: opt(&raw.provider_regions),
            other_nations_waits: opt(&raw.other_nations_waits),
            dm01: raw
                .dm01
                .iter()
                .map(|d| crate::dm01::Dm01File {
                    path: dir.join(&d.get_ref().file),
                    written: d.get_ref().file.clone(),
                    period: d.get_ref().period.clone(),
                    test: d.get_ref().test.clone(),
                })
                .collect(),
            dm01_paths: raw
                .dm01
                .iter()
                .map(|d| InputPath {
                    written: d.get_ref().file.clone(),
                    path: dir.join(&d.get_ref().file),
                    span: Span::from(d),
                })
                .collect(),
            synthetic_dm01: raw.synthetic_dm01.as_ref().map(|s| {
                let spec = s.get_ref();
                SyntheticProviderMonths {
                    config: InputPath {
                        written: spec.config.clone(),
                        path: dir.join(&spec.config),
                        span: Span::from(s),
                    },
                    seed: spec.seed,
                }
            }),
            provider_icbs: opt(&raw.provider_icbs),
            cdc_activity: raw.cdc_activity.iter().map(resolve).collect(),
            cdc_test_names: self.cdc_test_names(raw.cdc_test_names.as_ref()),
            cdc_sites: opt(&raw.cdc_sites),
            synthetic_cdc: raw.synthetic_cdc.as_ref().map(|s| {
                let spec = s.get_ref();
                SyntheticProviderMonths {
                    config: InputPath {
                        written: spec.config.clone(),
                        path: dir.join(&spec.config),
                        span: Span::from(s),
                    },
                    seed: spec.seed,
                }
            }),
            mapping: Default::default(),
            mapping_file: None,
            stage_data: Vec::new(),
        };
        if let Some(m) = &raw.mapping {
            self.input_mapping(m, dir, &mut inputs);
        }
        self.check_sources(raw, dir, &inputs);
        inputs
    }

    /// `[inputs.cdc_test_names]`, each value a DM01 test code or `NOT_DM01`.
    fn cdc_test_names(
        &mut self,
        raw: Option<&Spanned<BTreeMap<String, String>>>,
    ) -> crate::cdc::TestNames {
        let Some(raw) = raw else {
            return Default::default();
        };
        crate::cdc::TestNames::new(raw.get_ref()).unwrap_or_else(|e| {
            self.push(Some(raw.span()), format!("inputs.cdc_test_names: {e}"));
            Default::default()
        })
    }

    /// Reads the recipe's `[inputs.mapping]` (and the files it extends) into `inputs`.
    fn input_mapping(
        &mut self,
        m: &Spanned<crate::input::mapping::RawRecipeMapping>,
        dir: &Path,
        inputs: &mut Inputs,
    ) {
        if inputs.counts.is_some() {
            self.push(
                Some(m.span()),
                "inputs.mapping: maps a record-level extract's columns; aggregated counts \
                 follow their own contract (SPEC §3)"
                    .into(),
            );
        }
        match crate::input::mapping::resolve(m, self.file, self.source, dir) {
            Ok(mapping) => {
                inputs.mapping_file = mapping.file.as_ref().map(|f| InputPath {
                    written: f
                        .path
                        .strip_prefix(dir)
                        .unwrap_or(&f.path)
                        .display()
                        .to_string(),
                    path: f.path.clone(),
                    span: Span::from(m),
                });
                inputs.mapping = mapping;
            }
            Err(mut p) => self.found.append(&mut p),
        }
    }

    /// At most one source of activity for the standardised rates (with a population and areas),
    /// at most one of provider × month counts (with its regions), and at least one of the two.
    /// Record-level `activity` with `provider_regions` and without `areas` is a period
    /// comparison's source, counted to provider × month counts.
    fn check_sources(&mut self, raw: &RawInputs, dir: &Path, inputs: &Inputs) {
        let monthly_records =
            inputs.activity.is_some() && inputs.provider_regions.is_some() && raw.areas.is_none();
        let sources = [
            inputs.activity.is_some() && !monthly_records,
            inputs.counts.is_some(),
            inputs.synthetic.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        let monthly = inputs.provider_months.is_some() as usize
            + inputs.synthetic_provider_months.is_some() as usize
            + monthly_records as usize;
        if monthly > 1 {
            self.push(
                None,
                "inputs: name one of `activity` (records), `provider_months` (a file) or \
                 `synthetic_provider_months`"
                    .into(),
            );
        }
        let waits = !inputs.dm01.is_empty()
            || inputs.synthetic_dm01.is_some()
            || inputs.synthetic_cdc.is_some();
        let dm01_sources = !inputs.dm01.is_empty() as usize
            + inputs.synthetic_dm01.is_some() as usize
            + inputs.synthetic_cdc.is_some() as usize;
        if dm01_sources > 1 {
            self.push(
                None,
                "inputs: name one of `dm01` files, `synthetic_dm01` or `synthetic_cdc`".into(),
            );
        }
        self.check_cdc_sources(inputs);
        if (monthly > 0 || waits) && inputs.provider_regions.is_none() {
            self.push(
                None,
                "inputs: provider × month counts and DM01 files need `provider_regions` \
                 (provider → NHS region)"
                    .into(),
            );
        }
        if let Some(s) = &inputs.synthetic_provider_months
            && !s.config.path.is_file()
        {
            self.push(
                Some(s.config.span.start..s.config.span.end),
                format!(
                    "inputs.synthetic_provider_months: config `{}` not found",
                    s.config.written
                ),
            );
        }
        if (monthly > 0 || waits) && sources == 0 {
            return;
        }
        if raw.areas.is_none() {
            self.push(
                None,
                "inputs: `areas` is required with activity, counts or a synthetic year".into(),
            );
        }
        if sources != 1 {
            self.push(
                None,
                "inputs: name exactly one of `activity` (record-level extract), `counts` \
                 (aggregated) or `synthetic` (the embedded synthetic year)"
                    .into(),
            );
        }
        if let Some(s) = &raw.synthetic {
            let spec = s.get_ref();
            if !(spec.scale.is_finite() && spec.scale > 0.0 && spec.scale <= 1.0) {
                self.push(
                    Some(s.span()),
                    format!("inputs.synthetic: scale {} must be in (0, 1]", spec.scale),
                );
            }
            if !dir.join(&spec.config).is_file() {
                self.push(
                    Some(s.span()),
                    format!("inputs.synthetic: config `{}` not found", spec.config),
                );
            }
        }
        // A recipe with a practice IMD mix takes its practice file from --practice-population.
        if inputs.population.is_none()
            && inputs.practice_population.is_none()
            && inputs.practice_imd_mix.is_none()
            && inputs.synthetic.is_none()
        {
            self.push(
                None,
                "inputs: `population` (or `practice_population`) is required (only the synthetic \
                 year brings its own)"
                    .into(),
            );
        }
        if inputs.population.is_some() && inputs.practice_population.is_some() {
            self.push(
                None,
                "inputs: name one of `population` or `practice_population`".into(),
            );
        }
        if inputs.practice_population.is_some()
            && (inputs.practice_imd_mix.is_none() || inputs.practice_imd_areas.is_none())
        {
            self.push(
                None,
                "inputs: `practice_population` needs `practice_imd_mix` (area × age band × IMD \
                 quintile population) and `practice_imd_areas` (practice → its area there)"
                    .into(),
            );
        }
    }

    /// CDC activity (files or synthetic) needs DM01, the providers' ICBs and a test-name map;
    /// files and the synthetic set exclude each other.
    fn check_cdc_sources(&mut self, inputs: &Inputs) {
        let files = !inputs.cdc_activity.is_empty();
        if files && inputs.synthetic_cdc.is_some() {
            self.push(
                None,
                "inputs: name `cdc_activity` files or `synthetic_cdc`, not both".into(),
            );
        }
        if !(files || inputs.synthetic_cdc.is_some()) {
            return;
        }
        if inputs.provider_icbs.is_none() {
            self.push(
                None,
                "inputs: CDC activity needs `provider_icbs` (provider → ICB), for DM01 \
                 activity by ICB"
                    .into(),
            );
        }
        if files && inputs.dm01.is_empty() {
            self.push(
                None,
                "inputs: `cdc_activity` needs `dm01` files: shares are of DM01 activity".into(),
            );
        }
        if inputs.cdc_test_names.is_empty() {
            self.push(
                None,
                "inputs: CDC activity needs `[inputs.cdc_test_names]`: each test type name → \
                 its DM01 code or \"NOT_DM01\""
                    .into(),
            );
        }
        if let Some(s) = &inputs.synthetic_cdc
            && !s.config.path.is_file()
        {
            self.push(
                Some(s.config.span.start..s.config.span.end),
                format!(
                    "inputs.synthetic_cdc: config `{}` not found",
                    s.config.written
                ),
            );
        }
    }

    /// The `[stages]` table in stage order: each key a stage kind, each plugin `id` or
    /// `id@major`.
    fn stages(&mut self, raw: &RawStages, dir: &Path) -> Vec<StageChoice> {
        let mut chosen: Vec<(StageKind, &RawStage)> = Vec::new();
        for (key, stage) in raw {
            match StageKind::from_key(key.get_ref()) {
                Some(kind) => chosen.push((kind, stage.get_ref())),
                None => self.push(
                    Some(key.span()),
                    format!(
                        "unknown stage `{}` (stages: {})",
                        key.get_ref(),
                        StageKind::ALL.map(StageKind::key).join(", ")
                    ),
                ),
            }
        }
        chosen.sort_by_key(|(kind, _)| *kind);
        chosen
            .into_iter()
            .filter_map(|(stage, r)| {
                let (plugin, pinned_major) = self.plugin_pin(&r.plugin)?;
                Some(StageChoice {
                    stage,
                    plugin,
                    pinned_major,
                    params: Params::new(
                        r.params
                            .as_ref()
                            .map(|p| p.get_ref().clone())
                            .unwrap_or_default(),
                    ),
                    plugin_span: Span::from(&r.plugin),
                    params_span: r.params.as_ref().map(Span::from),
                    data: r
                        .data
                        .iter()
                        .map(|(key, file)| (key.clone(), resolve_path(dir, file)))
                        .collect(),
                })
            })
            .collect()
    }

    /// `id` or `id@major` as (id, pinned major); `None`, with a problem, for a malformed pin.
    fn plugin_pin(&mut self, plugin: &Spanned<String>) -> Option<(String, Option<u64>)> {
        let Some((id, major)) = plugin.get_ref().split_once('@') else {
            return Some((plugin.get_ref().clone(), None));
        };
        match major.parse::<u64>() {
            Ok(major) => Some((id.to_string(), Some(major))),
            Err(_) => {
                self.push(
                    Some(plugin.span()),
                    format!(
                        "`{}`: a plugin is pinned as `id@major`, e.g. `{id}@1`",
                        plugin.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `[comparison]`: two periods of whole months of equal length, the earlier first; required
    /// with provider × month counts.
    fn comparison(
        &mut self,
        raw: Option<&Spanned<RawComparison>>,
        inputs: &Inputs,
    ) -> Option<(Period, Period)> {
        let monthly =
            inputs.provider_months.is_some() || inputs.synthetic_provider_months.is_some();
        let Some(raw) = raw else {
            if monthly {
                self.push(
                    None,
                    "provider × month counts need `[comparison]` with `period_a` and `period_b` \
                     ({ label, first = \"YYYY-MM\", last = \"YYYY-MM\" })"
                        .into(),
                );
            }
            return None;
        };
        let span = Some(raw.span());
        let month = |text: &str| {
            let (y, m) = text.split_once('-')?;
            let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
            (y.to_string().len() == 4 && m.to_string().len() <= 2 && (1..=12).contains(&m))
                .then_some((y, m))
        };
        let mut period = |p: &RawPeriod, key: &str| -> Option<Period> {
            let (Some(first), Some(last)) = (month(&p.first), month(&p.last)) else {
                self.push(
                    span.clone(),
                    format!(
                        "comparison.{key}: first `{}` and last `{}` must be months (YYYY-MM)",
                        p.first, p.last
                    ),
                );
                return None;
            };
            if last < first {
                self.push(
                    span.clone(),
                    format!(
                        "comparison.{key}: last month {} is before first {}",
                        p.last, p.first
                    ),
                );
                return None;
            }
            Some(Period {
                label: p.label.clone(),
                first,
                last,
            })
        };
        let raw = raw.get_ref();
        let (a, b) = (
            period(&raw.period_a, "period_a")?,
            period(&raw.period_b, "period_b")?,
        );
        if a.months() != b.months() || a.last >= b.first {
            self.push(
                span,
                format!(
                    "comparison: period_a ({} months) must end before period_b ({} months) \
                     begins, and both must be as long (their counts are compared as rates over \
                     the same time)",
                    a.months(),
                    b.months()
                ),
            );
            return None;
        }
        Some((a, b))
    }

    fn check_verify_gate(&mut self, verify: Option<&Spanned<crate::verify::Tolerances>>) {
        let Some(v) = verify else { return };
        for g in &v.get_ref().gate {
            if !crate::verify::SECTIONS.contains(&g.as_str()) {
                self.push(
                    Some(v.span()),
                    format!(
                        "verify.gate: unknown section `{g}` (sections: {})",
                        crate::verify::SECTIONS.join(", ")
                    ),
                );
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
