//! `strata sql`: the record-level pass as one SQL script for DuckDB, Spark SQL or T-SQL, so the
//! counting runs where the records are and only the stratum counts and the data-quality cube come
//! back (`strata run --counts FILE --quality FILE`).
//!
//! The script has three parts: `setup` (the reference lookups as temporary tables or views, from
//! the recipe's files: they travel with the query, no file has to be staged), `counts` (the
//! aggregated entry, SPEC §3, with each dimension's `unknown` category kept so the recipe's
//! exclusions stage decides what unknowns become, exactly as after a record-level pass) and
//! `quality` (the data-quality cube the record-level pass tallies, read back by [`read_quality`]).
//!
//! The rules come from the plugins that own them (`AttributionMethod::sql`,
//! `DerivationRules::sql`); the engine adds what it does itself on the record-level path: trimming,
//! the input mapping's column names and value maps, the lookups, the year's months. Every part is
//! parse-checked with `sqlparser` in its dialect before it is printed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use strata_api::sql::{SqlAttribution, SqlDerivation, literal};
use strata_api::{Area, QualityInput, Route, StageKind};

use crate::input::mapping::InputMapping;
use crate::pipeline::{Prepared, References};
use crate::{Error, Result, input};

/// The SQL dialects strata writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Duckdb,
    Spark,
    Tsql,
}

/// The three parts of a script, each one or more `;`-terminated statements.
pub struct Script {
    pub setup: String,
    /// `setup` as its statements, each with its terminator (for a client that sends one at a
    /// time, as Spark Connect does).
    pub setup_statements: Vec<String>,
    pub counts: String,
    pub quality: String,
}

/// Which part of the script to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    All,
    Setup,
    Counts,
    Quality,
}

impl Script {
    /// The chosen part; `all` marks each part with a comment line.
    pub fn part(&self, part: Part) -> String {
        match part {
            Part::Setup => self.setup.clone(),
            Part::Counts => self.counts.clone(),
            Part::Quality => self.quality.clone(),
            Part::All => format!(
                "-- strata: setup (reference lookups)\n{}\n-- strata: counts (--counts FILE)\n{}\n\
                 -- strata: quality (--quality FILE)\n{}",
                self.setup, self.counts, self.quality
            ),
        }
    }
}

/// T-SQL inserts at most this many rows per `VALUES`.
const INSERT_ROWS: usize = 1000;
/// T-SQL's default collations ignore case and compare `'A'` with `'A '` as equal; strata's codes
/// are compared byte for byte.
const TSQL_TEXT: &str = "VARCHAR(256) COLLATE Latin1_General_BIN2";

impl Dialect {
    fn text_type(self) -> &'static str {
        match self {
            Dialect::Duckdb => "VARCHAR",
            Dialect::Spark => "STRING",
            Dialect::Tsql => TSQL_TEXT,
        }
    }
    /// A column's value as trimmed text, NULL when empty.
    fn trimmed(self, e: &str) -> String {
        match self {
            Dialect::Duckdb => format!("NULLIF(TRIM(CAST({e} AS VARCHAR)), '')"),
            Dialect::Spark => format!("NULLIF(TRIM(CAST({e} AS STRING)), '')"),
            Dialect::Tsql => {
                format!(
                    "NULLIF(LTRIM(RTRIM(CAST({e} AS VARCHAR(256)))), '') COLLATE Latin1_General_BIN2"
                )
            }
        }
    }
    fn raw_text(self, e: &str) -> String {
        match self {
            Dialect::Duckdb => format!("CAST({e} AS VARCHAR)"),
            Dialect::Spark => format!("CAST({e} AS STRING)"),
            Dialect::Tsql => format!("CAST({e} AS VARCHAR(256)) COLLATE Latin1_General_BIN2"),
        }
    }
    /// A whole number from text such as `42` or `42.0` (extracts write both).
    fn whole(self, e: &str) -> String {
        match self {
            Dialect::Tsql => format!("CAST(CAST({e} AS FLOAT) AS BIGINT)"),
            _ => format!("CAST(CAST({e} AS DOUBLE) AS BIGINT)"),
        }
    }
    /// A date from a DATE, a TIMESTAMP or text `YYYY-MM-DD[ time]`.
    fn date(self, e: &str) -> String {
        match self {
            Dialect::Duckdb => format!("CAST(CAST({e} AS TIMESTAMP) AS DATE)"),
            Dialect::Spark => format!("TO_DATE({e})"),
            Dialect::Tsql => format!("CAST({e} AS DATE)"),
        }
    }
    /// `COUNT` is an INT in T-SQL, which overflows at 2^31 records.
    fn count(self, e: &str) -> String {
        match self {
            Dialect::Tsql => format!("COUNT_BIG({e})"),
            _ => format!("COUNT({e})"),
        }
    }
    fn lookup(self, name: &str) -> String {
        match self {
            Dialect::Tsql => format!("#strata_{name}"),
            _ => format!("strata_{name}"),
        }
    }
    fn quote(self, column: &str) -> String {
        match self {
            Dialect::Duckdb => format!("\"{}\"", column.replace('"', "\"\"")),
            Dialect::Spark => format!("`{}`", column.replace('`', "``")),
            Dialect::Tsql => format!("[{}]", column.replace(']', "]]")),
        }
    }
    fn parser(self) -> Box<dyn sqlparser::dialect::Dialect> {
        match self {
            Dialect::Duckdb => Box::new(sqlparser::dialect::DuckDbDialect {}),
            Dialect::Spark => Box::new(sqlparser::dialect::DatabricksDialect {}),
            Dialect::Tsql => Box::new(sqlparser::dialect::MsSqlDialect {}),
        }
    }
}

/// The script for a prepared recipe; refuses a recipe whose attribution or derivation plugin has
/// no SQL, naming the plugin.
pub fn generate(
    prepared: &Prepared,
    mapping: &InputMapping,
    dialect: Dialect,
    table: &str,
) -> Result<Script> {
    let recipe = &prepared.recipe;
    let (attribution, derivation) = plugin_sql(prepared)?;
    let areas_path = recipe
        .inputs
        .areas
        .as_ref()
        .ok_or_else(|| Error::Usage("no areas input".into()))?;
    let areas = input::read_areas(&areas_path.path)?;
    let references = References::read(recipe, &areas)?;
    let derivation = derivation(&references.exam_codes)?;
    let setup_statements = setup(dialect, &references, &areas, &derivation);
    let chain = record_chain(
        dialect,
        mapping,
        table,
        recipe.year_start,
        &attribution,
        &derivation,
    );
    let script = Script {
        setup: setup_statements.concat(),
        setup_statements,
        counts: counts_query(
            dialect,
            &chain,
            &areas,
            &prepared.methods.derivation()?.shape().measures,
        ),
        quality: quality_query(dialect, &chain),
    };
    for (name, text) in [
        ("setup", &script.setup),
        ("counts", &script.counts),
        ("quality", &script.quality),
    ] {
        parse_check(dialect, name, text)?;
    }
    if dialect == Dialect::Spark && script.part(Part::All).contains('\\') {
        return Err(Error::Usage(
            "a code in the recipe's lookups or rules holds a backslash, which Spark SQL reads as \
             an escape in a string literal: set spark.sql.parser.escapedStringLiterals=true and \
             use --dialect duckdb's text, or recode the value"
                .into(),
        ));
    }
    Ok(script)
}

type DerivationSql<'p> = Box<dyn Fn(&[(String, String)]) -> Result<SqlDerivation> + 'p>;

/// The attribution's SQL and a function giving the derivation's (it needs the exam-code list).
fn plugin_sql(prepared: &Prepared) -> Result<(SqlAttribution, DerivationSql<'_>)> {
    let id = |stage: StageKind| {
        prepared
            .plugins
            .iter()
            .find(|p| p.stage == stage.key())
            .map_or_else(|| stage.key().to_string(), |p| p.id.clone())
    };
    let refuse = move |stage: StageKind| Error::Plugin {
        plugin: id(stage),
        message: format!(
            "has no SQL for its {} rule, so `strata sql` cannot push this recipe's counting down; \
             count record-level input with `strata run` instead, or choose a plugin with SQL",
            stage.key()
        ),
    };
    let attribution = prepared
        .methods
        .attribution()
        .ok_or_else(|| Error::Usage("the recipe has no attribution stage".into()))?
        .sql()
        .ok_or_else(|| refuse(StageKind::Attribution))?;
    let derivation: DerivationSql<'_> = Box::new(move |list| {
        let plugin = id(StageKind::Derivation);
        match prepared.methods.derivation()?.sql(list) {
            Ok(Some(sql)) => Ok(sql),
            Ok(None) => Err(refuse(StageKind::Derivation)),
            Err(e) => Err(Error::Plugin {
                plugin,
                message: e.message,
            }),
        }
    });
    Ok((attribution, derivation))
}

/// Parses `text` in `dialect`, so a script that would not parse is never printed.
fn parse_check(dialect: Dialect, part: &str, text: &str) -> Result<()> {
    sqlparser::parser::Parser::parse_sql(dialect.parser().as_ref(), text)
        .map(|_| ())
        .map_err(|e| {
            Error::Usage(format!(
                "internal error: the generated {part} SQL does not parse as {dialect:?}: {e}"
            ))
        })
}

/// One lookup: its name, typed columns and rows of SQL literals.
struct Lookup {
    name: &'static str,
    columns: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
}

fn opt_literal(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".to_string(), literal)
}

/// The practice, LSOA and exam-code lookups, sorted so the text is the same on every run.
fn lookups(references: &References, areas: &[Area], derivation: &SqlDerivation) -> Vec<Lookup> {
    let code = |a: Option<u32>| a.map(|a| areas[a as usize].code.as_str());
    let mut practices: Vec<Vec<String>> = references
        .practices
        .iter()
        .map(|(p, &a)| vec![literal(p), literal("english"), opt_literal(code(Some(a)))])
        .chain(
            references
                .non_english
                .iter()
                .map(|p| vec![literal(p), literal("non_english"), "NULL".into()]),
        )
        .collect();
    practices.sort();
    let mut lsoas: Vec<Vec<String>> = references
        .lsoas
        .iter()
        .map(|(l, info)| {
            vec![
                literal(l),
                opt_literal(code(info.area)),
                info.imd_decile
                    .map_or_else(|| "NULL".into(), |d| d.to_string()),
            ]
        })
        .collect();
    lsoas.sort();
    let exams = derivation
        .exam_measures
        .iter()
        .map(|e| {
            vec![
                literal(&e.exam_code),
                literal(&e.measure),
                literal(&e.modality),
            ]
        })
        .collect();
    vec![
        Lookup {
            name: "practice",
            columns: vec![
                ("practice_code", true),
                ("practice_class", true),
                ("area_code", true),
            ],
            rows: practices,
        },
        Lookup {
            name: "lsoa",
            columns: vec![
                ("lsoa_code", true),
                ("area_code", true),
                ("imd_decile", false),
            ],
            rows: lsoas,
        },
        Lookup {
            name: "exam",
            columns: vec![("exam_code", true), ("measure", true), ("modality", true)],
            rows: exams,
        },
    ]
}

/// The lookups as temporary tables (DuckDB, T-SQL: created, then filled 1,000 rows per insert)
/// or temporary views over `VALUES` (Spark).
fn setup(
    dialect: Dialect,
    references: &References,
    areas: &[Area],
    derivation: &SqlDerivation,
) -> Vec<String> {
    let mut out = Vec::new();
    for l in lookups(references, areas, derivation) {
        let name = dialect.lookup(l.name);
        let typed: Vec<String> = l
            .columns
            .iter()
            .map(|(c, text)| {
                let t = if *text {
                    dialect.text_type()
                } else {
                    "INTEGER"
                };
                format!("{c} {t}")
            })
            .collect();
        let rows: Vec<String> = l
            .rows
            .iter()
            .map(|r| format!("({})", r.join(", ")))
            .collect();
        match dialect {
            Dialect::Spark => {
                let names: Vec<&str> = l.columns.iter().map(|c| c.0).collect();
                let body = if rows.is_empty() {
                    let nulls: Vec<String> = typed
                        .iter()
                        .map(|t| {
                            let (c, ty) = t.split_once(' ').unwrap_or((t, "STRING"));
                            format!("CAST(NULL AS {ty}) AS {c}")
                        })
                        .collect();
                    format!("SELECT {} WHERE 1 = 0", nulls.join(", "))
                } else {
                    format!(
                        "SELECT * FROM VALUES\n  {}\n  AS t({})",
                        rows.join(",\n  "),
                        names.join(", ")
                    )
                };
                out.push(format!(
                    "CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{body};\n"
                ));
            }
            Dialect::Duckdb | Dialect::Tsql => {
                let create = if dialect == Dialect::Duckdb {
                    "CREATE OR REPLACE TEMP TABLE"
                } else {
                    "CREATE TABLE"
                };
                out.push(format!("{create} {name} ({});\n", typed.join(", ")));
                for chunk in rows.chunks(INSERT_ROWS) {
                    out.push(format!(
                        "INSERT INTO {name} VALUES\n  {};\n",
                        chunk.join(",\n  ")
                    ));
                }
            }
        }
    }
    out
}

/// A SPEC §3 column as the rules read it: the extract's column, trimmed, through the recipe's
/// value map (which, as on the record-level path, sees only non-empty values), trimmed again.
fn normalised(dialect: Dialect, mapping: &InputMapping, column: &str) -> String {
    let source = dialect.trimmed(&dialect.quote(mapping.source_name(column)));
    let Some(map) = mapping.values.get(column) else {
        return source;
    };
    let mut case = format!("CASE WHEN {source} IS NULL THEN NULL");
    for (from, to) in &map.map {
        case.push_str(&format!(
            " WHEN {source} = {} THEN {}",
            literal(from),
            literal(to)
        ));
    }
    let otherwise = map.default.as_deref().map_or(source.clone(), literal);
    case.push_str(&format!(" ELSE {otherwise} END"));
    dialect.trimmed(&case)
}

/// The common table expressions from the extract to one row per record with its area, route,
/// derived categories (NULL for unknown), measure of its modality, month and cube flags.
fn record_chain(
    dialect: Dialect,
    mapping: &InputMapping,
    table: &str,
    year_start: (i32, u32, u32),
    attribution: &SqlAttribution,
    derivation: &SqlDerivation,
) -> String {
    let n = |c: &str| normalised(dialect, mapping, c);
    let provider_raw = if mapping.values.contains_key("provider_code") {
        n("provider_code")
    } else {
        dialect.raw_text(&dialect.quote(mapping.source_name("provider_code")))
    };
    let (y, m, _) = year_start;
    // The year is the twelve months from the first of `year_start`'s month (`dates::month_starts`).
    let start = format!("CAST('{y:04}-{m:02}-01' AS DATE)");
    let end = format!("CAST('{:04}-{m:02}-01' AS DATE)", y + 1);
    let (practice, lsoa) = (dialect.lookup("practice"), dialect.lookup("lsoa"));
    format!(
        "WITH r AS (
  SELECT {provider} AS provider_code, {provider_raw} AS provider_raw,
    {practice_v} AS practice_value, {lsoa_v} AS lsoa_value, {sex} AS sex_value,
    {age} AS age_years, {modality} AS modality_value, UPPER({exam}) AS exam_value,
    {date} AS test_day
  FROM {table}
),
a AS (
  SELECT r.*,
    CASE WHEN r.practice_value IS NULL THEN 'missing' WHEN p.practice_class IS NULL THEN 'unknown' ELSE p.practice_class END AS practice_class,
    p.area_code AS practice_area, l.area_code AS lsoa_area, l.imd_decile AS imd_decile
  FROM r LEFT JOIN {practice} p ON p.practice_code = r.practice_value
    LEFT JOIN {lsoa} l ON l.lsoa_code = r.lsoa_value
),
d AS (
  SELECT a.*,
    {area} AS area_code,
    {route} AS route,
    {sex_c} AS sex_category,
    {age_c} AS age_category,
    {imd_c} AS imd_category,
    {modality_c} AS modality_measure,
    CASE WHEN test_day >= {start} AND test_day < {end} THEN (YEAR(test_day) - {y}) * 12 + MONTH(test_day) - {m} ELSE NULL END AS month
  FROM a
)",
        provider = n("provider_code"),
        practice_v = n("gp_practice_code"),
        lsoa_v = n("lsoa11"),
        sex = n("sex"),
        age = dialect.whole(&n("age")),
        modality = n("modality"),
        exam = n("exam_code"),
        date = dialect.date(&n("test_date")),
        area = attribution.area,
        route = attribution.route,
        sex_c = derivation.sex,
        age_c = derivation.age_band,
        imd_c = derivation.imd_quintile,
        modality_c = derivation.modality_measure,
    )
}

/// The aggregated entry: a record counts in its modality's measure and in every exam-code
/// measure of its exam code and modality; records without an area count only in the cube.
///
/// Every measure has a row: `strata run --counts` refuses a measure without any (a query that
/// left it out), so a measure no record counts in gets a zero in the first area's unknown stratum
/// (`one` is NULL there, and `COUNT(one)` counts records only), which changes no figure.
fn counts_query(dialect: Dialect, chain: &str, areas: &[Area], measures: &[String]) -> String {
    let exam = dialect.lookup("exam");
    let count = dialect.count("one");
    let first_area = literal(areas.first().map_or("", |a| a.code.as_str()));
    let zeros: String = measures
        .iter()
        .map(|m| {
            format!(
                "\n  UNION ALL\n  SELECT {first_area}, 'unknown', 'unknown', 'unknown', {}, NULL",
                literal(m)
            )
        })
        .collect();
    format!(
        "{chain},
k AS (
  SELECT area_code, COALESCE(sex_category, 'unknown') AS sex, COALESCE(age_category, 'unknown') AS age_band,
    COALESCE(imd_category, 'unknown') AS imd_quintile, modality_measure, exam_value
  FROM d WHERE area_code IS NOT NULL AND modality_measure IS NOT NULL
),
m AS (
  SELECT area_code, sex, age_band, imd_quintile, modality_measure AS measure, 1 AS one FROM k
  UNION ALL
  SELECT k.area_code, k.sex, k.age_band, k.imd_quintile, e.measure, 1
  FROM k INNER JOIN {exam} e ON e.exam_code = k.exam_value AND e.modality = k.modality_measure{zeros}
)
SELECT area_code, sex, age_band, imd_quintile, measure, {count} AS tests
FROM m
GROUP BY area_code, sex, age_band, imd_quintile, measure
ORDER BY area_code, sex, age_band, imd_quintile, measure;
"
    )
}

const CUBE_COLUMNS: &str = "provider_code, provider_raw, area_code, route, has_practice, has_lsoa, \
                            missing_age, missing_sex, missing_imd, month, standard_modality";

/// The data-quality cube: every record (with or without an area, in or outside the year) by
/// provider, area, route, which fields it lacks, month and whether its modality is standard.
/// The raw provider code travels between `|` so the trimming CSV reader keeps its spaces (the
/// published provider order sorts raw codes).
fn quality_query(dialect: Dialect, chain: &str) -> String {
    let count = dialect.count("*");
    let flag = |cond: &str| format!("CASE WHEN {cond} THEN 1 ELSE 0 END");
    format!(
        "{chain},
q AS (
  SELECT provider_code, CONCAT('|', provider_raw, '|') AS provider_raw, area_code, route,
    {has_practice} AS has_practice, {has_lsoa} AS has_lsoa,
    {missing_age} AS missing_age, {missing_sex} AS missing_sex, {missing_imd} AS missing_imd,
    month, {standard} AS standard_modality
  FROM d
)
SELECT {CUBE_COLUMNS}, {count} AS tests
FROM q
GROUP BY {CUBE_COLUMNS}
ORDER BY {CUBE_COLUMNS};
",
        has_practice = flag("practice_value IS NOT NULL"),
        has_lsoa = flag("lsoa_value IS NOT NULL"),
        missing_age = flag("age_category IS NULL"),
        missing_sex = flag("sex_category IS NULL"),
        missing_imd = flag("imd_category IS NULL"),
        standard = flag("modality_measure IS NOT NULL"),
    )
}

/// The quality cube exported from the `quality` query, as the record-level pass hands it to the
/// data-quality stage: providers ranked by their smallest raw code, cells in key order.
pub fn read_quality(
    path: &Path,
    references_providers: &HashMap<String, String>,
    areas: &[Area],
) -> Result<QualityInput> {
    let columns: Vec<&str> = CUBE_COLUMNS.split(", ").chain(["tests"]).collect();
    let t = input::TextTable::read(path, &columns)?;
    t.require_rows("data-quality cube")?;
    let col = |name: &str| t.column(name);
    let (providers, raws, area_codes, routes) = (
        t.required_column("provider_code")?,
        t.required_column("provider_raw")?,
        col("area_code")?,
        t.required_column("route")?,
    );
    let flags: Vec<Vec<&str>> = FLAGS
        .iter()
        .map(|c| t.required_column(c))
        .collect::<Result<_>>()?;
    let (months, tests) = (col("month")?, t.required_column("tests")?);
    let area_index: HashMap<&str, u32> = areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.code.as_str(), i as u32))
        .collect();
    let bad = |row: usize, column: &str, rule: String, hint: &str| {
        Error::data_hint(path, Some(row + 1), Some(column), rule, hint)
    };
    let hint = QUALITY_HINT;
    let mut first_raw: BTreeMap<&str, String> = BTreeMap::new();
    let mut cells = Vec::with_capacity(t.height());
    for row in 0..t.height() {
        let raw = raws[row]
            .strip_prefix('|')
            .and_then(|r| r.strip_suffix('|'))
            .ok_or_else(|| {
                bad(
                    row,
                    "provider_raw",
                    format!("`{}` is not between `|`", raws[row]),
                    hint,
                )
            })?;
        let entry = first_raw
            .entry(providers[row])
            .or_insert_with(|| raw.to_string());
        if raw < entry.as_str() {
            *entry = raw.to_string();
        }
        let row_flags: [&str; 6] = std::array::from_fn(|i| flags[i][row]);
        let fields = (
            area_codes[row],
            routes[row],
            row_flags,
            months[row],
            tests[row],
        );
        let (key, n) = cube_cell(&bad, row, &area_index, fields)?;
        cells.push((providers[row], key, n));
    }
    Ok(rank_cells(cells, first_raw, references_providers, areas))
}

/// The cube's flag columns, in [`CellKey`]'s order.
const FLAGS: [&str; 6] = [
    "has_practice",
    "has_lsoa",
    "missing_age",
    "missing_sex",
    "missing_imd",
    "standard_modality",
];

type CellKey = (Option<u32>, Route, [bool; 6], u8);

const QUALITY_HINT: &str = "export the `quality` part of `strata sql` as it is (CSV with a header)";

/// One cube row's key and count, or an error naming its row and column.
fn cube_cell(
    bad: &dyn Fn(usize, &str, String, &str) -> Error,
    row: usize,
    area_index: &HashMap<&str, u32>,
    fields: (Option<&str>, &str, [&str; 6], Option<&str>, &str),
) -> Result<(CellKey, u64)> {
    let (area_code, route_key, flags, month_text, tests) = fields;
    let hint = QUALITY_HINT;
    let area = match area_code {
        None => None,
        Some(code) => Some(*area_index.get(code).ok_or_else(|| {
            bad(
                row,
                "area_code",
                format!("area `{code}` is not in the recipe's areas file"),
                hint,
            )
        })?),
    };
    let route = Route::ALL
        .into_iter()
        .find(|r| r.key() == route_key)
        .ok_or_else(|| bad(row, "route", format!("unknown route `{}`", route_key), hint))?;
    let mut f = [false; 6];
    for (i, values) in flags.into_iter().enumerate() {
        f[i] = match values {
            "1" | "true" => true,
            "0" | "false" => false,
            v => return Err(bad(row, FLAGS[i], format!("`{v}` is not 0 or 1"), hint)),
        };
    }
    let month = match month_text {
        None => strata_api::OUTSIDE_YEAR,
        Some(m) => m.parse::<u8>().ok().filter(|m| *m < 12).ok_or_else(|| {
            bad(
                row,
                "month",
                format!("`{m}` is not a month 0 to 11 of the year"),
                hint,
            )
        })?,
    };
    let n: u64 = tests.parse().map_err(|_| {
        bad(
            row,
            "tests",
            format!("`{}` is not a whole count", tests),
            hint,
        )
    })?;
    Ok(((area, route, f, month), n))
}

/// Providers in order of their smallest raw code, and the cells summed by key.
fn rank_cells(
    cells: Vec<(&str, CellKey, u64)>,
    first_raw: BTreeMap<&str, String>,
    names: &HashMap<String, String>,
    areas: &[Area],
) -> QualityInput {
    let mut order: Vec<(&str, &String)> = first_raw.iter().map(|(p, r)| (*p, r)).collect();
    order.sort_by(|a, b| a.1.cmp(b.1));
    let rank: HashMap<&str, u32> = order
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (*p, i as u32))
        .collect();
    let mut cube: BTreeMap<input::activity::CubeKey, u64> = BTreeMap::new();
    for (provider, (area, route, f, month), n) in cells {
        let key = (
            rank[provider],
            area,
            route,
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            month,
            f[5],
        );
        *cube.entry(key).or_insert(0) += n;
    }
    QualityInput {
        providers: order
            .iter()
            .map(|(code, _)| Area {
                code: code.to_string(),
                name: names
                    .get(*code)
                    .cloned()
                    .unwrap_or_else(|| code.to_string()),
            })
            .collect(),
        areas: areas.to_vec(),
        cells: input::activity::quality_cells(cube),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Attribution, AttributionCandidate, AttributionMethod, MethodError};

    /// An attribution rule with no SQL (the trait's default).
    struct NoSql;
    impl AttributionMethod for NoSql {
        fn method_name(&self) -> String {
            "no sql".into()
        }
        fn attribute(
            &self,
            c: &[AttributionCandidate],
        ) -> std::result::Result<Vec<Attribution>, MethodError> {
            Ok(c.iter()
                .map(|_| Attribution {
                    area: None,
                    route: Route::Unattributed,
                })
                .collect())
        }
    }

    fn example() -> Prepared {
        let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/example.toml");
        crate::check(&recipe).expect("the example recipe")
    }

    #[test]
    fn a_plugin_without_sql_is_refused_by_name() {
        let mut prepared = example();
        prepared
            .methods
            .replace(strata_api::Configured::Attribution(Box::new(NoSql)));
        let mapping = prepared.recipe.inputs.mapping.clone();
        let Err(Error::Plugin { plugin, message }) =
            generate(&prepared, &mapping, Dialect::Duckdb, "activity")
        else {
            panic!("a rule without SQL must be refused");
        };
        assert_eq!(plugin, "attribution.gp-practice-then-lsoa");
        assert!(
            message.contains("has no SQL for its attribution rule"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_cube_row_is_named_by_file_row_and_column() {
        let path = std::env::temp_dir().join(format!("strata-quality-{}.csv", std::process::id()));
        let header = format!("{CUBE_COLUMNS}, tests").replace(", ", ",");
        std::fs::write(
            &path,
            format!("{header}\nR01,|R01|,A01,gp_practice,1,1,0,0,0,3,1,5\nR01,|R01|,A01,gp_practice,1,yes,0,0,0,3,1,5\n"),
        )
        .unwrap();
        let areas = [Area {
            code: "A01".into(),
            name: "A".into(),
        }];
        let e = read_quality(&path, &HashMap::new(), &areas).expect_err("refused");
        std::fs::remove_file(&path).ok();
        let text = e.to_string();
        assert!(
            text.contains("row 2") && text.contains("`has_lsoa`") && text.contains("`yes`"),
            "{text}"
        );
    }

    #[test]
    fn every_dialect_parses_and_counts_with_its_own_count() {
        let prepared = example();
        let mapping = prepared.recipe.inputs.mapping.clone();
        for (dialect, count) in [
            (Dialect::Duckdb, "COUNT(one)"),
            (Dialect::Spark, "COUNT(one)"),
            (Dialect::Tsql, "COUNT_BIG(one)"),
        ] {
            let script = generate(&prepared, &mapping, dialect, "t").expect("a script");
            assert!(script.counts.contains(count), "{dialect:?}");
        }
    }
}
