//! The `strata` command line, as a library function so tests can call it in-process.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pipeline::InputOverrides;
use crate::{Error, Result};
use clap::{Parser, Subcommand};

/// strata reproduces NHS England's Diagnostic Imaging Dataset "Standardised CCG/ICB rates"
/// publication from a TOML recipe, and lets you swap any method by editing the recipe.
///
/// Start with `strata run configs/did-2023-24-icb.toml`; `strata plugins` lists the methods a
/// recipe can choose.
///
/// Exit codes: 0 success, 1 the run failed (bad data, a method error, published figures not
/// reproduced), 2 bad invocation, recipe or plugin.
#[derive(Parser)]
#[command(name = "strata", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recipe and write its outputs (tables, manifest) into one folder, atomically.
    Run {
        /// The recipe, e.g. configs/did-2023-24-icb.toml.
        recipe: PathBuf,
        /// Output folder (default: the recipe's `outputs.dir`). Replaced only when the run succeeds.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Record-level activity (CSV or Parquet, SPEC §3) instead of the recipe's input.
        #[arg(long, conflicts_with_all = ["counts", "spark"])]
        activity: Option<PathBuf>,
        /// Aggregated stratum counts `area_code, sex, age_band, imd_quintile, measure, tests`.
        #[arg(long, conflicts_with = "spark")]
        counts: Option<PathBuf>,
        /// Count where the records are: run the recipe's Spark SQL (`strata sql --dialect spark`)
        /// over Spark Connect at this address (`sc://HOST:PORT`, Spark Connect's connection
        /// string) and continue with the counts and data-quality cube it returns.
        #[arg(long, value_name = "sc://HOST:PORT")]
        spark: Option<String>,
        /// With --spark: the table or view holding the records (SPEC §3 columns, or the mapping's
        /// names).
        #[arg(long, requires = "spark", default_value = "activity")]
        table: String,
        /// Population `area_code, sex, age_band, imd_quintile, population`.
        #[arg(long)]
        population: Option<PathBuf>,
        /// NHS Digital's practice patients by sex and five-year age group
        /// (`gp-reg-pat-prac-quin-age.csv`) as the population, summed into the recipe's areas
        /// through its practice map, each practice's IMD mix from the recipe's `practice_imd_mix`.
        #[arg(long, conflicts_with = "population")]
        practice_population: Option<PathBuf>,
        /// The data-quality cube of `--counts` made elsewhere (the `quality` part of `strata sql`),
        /// so the run writes the data-quality and exclusions tables as a record-level run does.
        #[arg(long, requires = "counts")]
        quality: Option<PathBuf>,
        /// A mapping file (e.g. configs/mappings/udal-dids.toml) in place of the recipe's
        /// `inputs.mapping`: the extract's own column names and codes.
        #[arg(long)]
        mapping: Option<PathBuf>,
        #[command(flatten)]
        synthetic: SyntheticArgs,
    },
    /// Print the SQL that counts a recipe's record-level activity where the data lives: the
    /// reference lookups (`setup`), the aggregated counts (`counts`, for `strata run --counts`)
    /// and the data-quality cube (`quality`, for `--quality`), from the recipe's own rules.
    Sql {
        recipe: PathBuf,
        #[arg(long, value_enum)]
        dialect: crate::sql::Dialect,
        /// The table or view holding the records (SPEC §3 columns, or the mapping's names).
        #[arg(long, default_value = "activity")]
        table: String,
        /// Which part to print (default: all three, each after a comment line).
        #[arg(long, value_enum, default_value = "all")]
        part: crate::sql::Part,
        /// A mapping file in place of the recipe's `inputs.mapping`.
        #[arg(long)]
        mapping: Option<PathBuf>,
    },
    /// Run a recipe and compare every published figure it names with the reproduced one; exits 1
    /// if any is outside the recipe's tolerance. Writes the run's outputs plus `verify.csv`.
    Verify {
        recipe: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Record-level activity instead of the recipe's input.
        #[arg(long)]
        activity: Option<PathBuf>,
        /// A mapping file in place of the recipe's `inputs.mapping`.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Print only the figures outside tolerance (and the totals).
        #[arg(long)]
        failures_only: bool,
        #[command(flatten)]
        synthetic: SyntheticArgs,
    },
    /// Time a recipe end to end: wall time, CPU time and peak memory per stage, median of N runs
    /// (outputs rendered in memory, not written).
    Bench {
        recipe: PathBuf,
        /// Record-level activity instead of the recipe's input (e.g. a full-scale synthetic year).
        #[arg(long, conflicts_with = "counts")]
        activity: Option<PathBuf>,
        #[arg(long)]
        counts: Option<PathBuf>,
        #[arg(long)]
        population: Option<PathBuf>,
        /// As `strata run --practice-population`.
        #[arg(long, conflicts_with = "population")]
        practice_population: Option<PathBuf>,
        /// How many runs (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[command(flatten)]
        synthetic: SyntheticArgs,
    },
    /// Write a recipe's synthetic year as files: `activity.parquet` (SPEC §3 records) and
    /// `population.csv`, e.g. the full ~47 million records of 2023/24 with `--scale 1`.
    Synth {
        recipe: PathBuf,
        /// Folder for the files.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        synthetic: SyntheticArgs,
    },
    /// Check a recipe without reading data: keys, plugin ids, parameters, input files.
    Check { recipe: PathBuf },
    /// List every plugin a recipe can select: id, stage, version, description.
    Plugins {
        /// Also load shared-library plugins from these folders (as `STRATA_PLUGIN_PATH` does).
        #[arg(long = "plugin-path")]
        plugin_paths: Vec<PathBuf>,
    },
    /// Run two recipes and list every output cell that differs (e.g. odds vs rate ratios).
    Diff {
        recipe_a: PathBuf,
        recipe_b: PathBuf,
        /// Also write the differences as CSV here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs the command line with `args` (the first is the program name); returns the exit code.
pub fn main_with(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let _ = if code == 0 {
                write!(out, "{text}")
            } else {
                write!(err, "{text}")
            };
            return code;
        }
    };
    match dispatch(cli.command, out, err) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            e.exit_code() as u8
        }
    }
}

/// Scale and seed of a recipe's synthetic year, and the reader's threads.
#[derive(clap::Args, Clone, Copy)]
struct SyntheticArgs {
    /// Threads that read and count record-level activity; default: every core (at most 8).
    /// Outputs are the same bytes whatever the number.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
    /// Scale of the synthetic year (1 = a full year); default: the recipe's.
    #[arg(long)]
    scale: Option<f64>,
    /// Seed of the synthetic year; default: the recipe's.
    #[arg(long)]
    seed: Option<u64>,
    /// How the synthetic year draws its record counts: `poisson` (independent draws, realistic
    /// noise; verify then allows each figure its sampling error) or `systematic` (totals exact
    /// to ±1); default: the recipe's, else its calibration config's.
    #[arg(long, value_parser = clap::builder::ValueParser::new(parse_sampling))]
    sampling: Option<strata_synth::CountSampling>,
}

fn parse_sampling(s: &str) -> std::result::Result<strata_synth::CountSampling, String> {
    s.parse()
}

impl SyntheticArgs {
    /// Input overrides carrying only the synthetic year's scale and seed and the reader's threads.
    fn overrides(self) -> InputOverrides {
        InputOverrides {
            scale: self.scale,
            seed: self.seed,
            sampling: self.sampling,
            threads: self.threads.map(usize::from),
            ..Default::default()
        }
    }
}

/// Runs one subcommand; each has its own function below.
fn dispatch(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match command {
        Command::Run {
            recipe,
            out: out_dir,
            activity,
            counts,
            population,
            practice_population,
            quality,
            mapping,
            spark,
            table,
            synthetic,
        } => {
            let overrides = InputOverrides {
                activity,
                counts,
                population,
                practice_population,
                quality,
                mapping,
                ..synthetic.overrides()
            };
            match spark {
                Some(url) => spark_run_command(
                    &recipe,
                    out_dir.as_deref(),
                    &overrides,
                    &url,
                    &table,
                    out,
                    err,
                ),
                None => run_command(&recipe, out_dir.as_deref(), &overrides, out, err),
            }
        }
        Command::Sql {
            recipe,
            dialect,
            table,
            part,
            mapping,
        } => sql_command(&recipe, dialect, &table, part, mapping.as_deref(), out),
        Command::Verify {
            recipe,
            out: out_dir,
            activity,
            mapping,
            failures_only,
            synthetic,
        } => {
            let overrides = InputOverrides {
                activity,
                mapping,
                ..synthetic.overrides()
            };
            verify_command(&recipe, out_dir.as_deref(), &overrides, failures_only, out)
        }
        Command::Bench {
            recipe,
            activity,
            counts,
            population,
            practice_population,
            runs,
            synthetic,
        } => {
            let overrides = InputOverrides {
                activity,
                counts,
                population,
                practice_population,
                ..synthetic.overrides()
            };
            let report = crate::bench::bench(&recipe, &overrides, runs.max(1))?;
            write!(out, "{report}").ok();
            Ok(())
        }
        Command::Synth {
            recipe,
            out: dir,
            synthetic,
        } => synth_command(&recipe, &dir, synthetic, out),
        Command::Check { recipe } => check_command(&recipe, out),
        Command::Plugins { plugin_paths } => plugins_command(plugin_paths, out),
        Command::Diff {
            recipe_a,
            recipe_b,
            out: diff_file,
        } => diff_command(&recipe_a, &recipe_b, diff_file.as_deref(), out),
    }
}

/// `strata sql`: the chosen part of the recipe's script.
fn sql_command(
    recipe: &Path,
    dialect: crate::sql::Dialect,
    table: &str,
    part: crate::sql::Part,
    mapping: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let prepared = crate::check(recipe)?;
    let override_mapping = match mapping {
        Some(path) => Some(crate::input::mapping::load_checked(path)?),
        None => None,
    };
    let mapping = override_mapping
        .as_ref()
        .unwrap_or(&prepared.recipe.inputs.mapping);
    let script = crate::sql::generate(&prepared, mapping, dialect, table)?;
    write!(out, "{}", script.part(part)).ok();
    Ok(())
}

/// `strata run --spark`: the recipe's Spark SQL runs over Spark Connect, its two results are
/// written into a folder strata makes (removed after a run that succeeds, kept for inspection
/// after one that fails) and the run continues as `--counts FILE --quality FILE`.
#[cfg(feature = "spark")]
fn spark_run_command(
    recipe: &Path,
    out_dir: Option<&Path>,
    overrides: &InputOverrides,
    url: &str,
    table: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let prepared = crate::check(recipe)?;
    let override_mapping = match &overrides.mapping {
        Some(path) => Some(crate::input::mapping::load_checked(path)?),
        None => None,
    };
    let mapping = override_mapping
        .as_ref()
        .unwrap_or(&prepared.recipe.inputs.mapping);
    let script = crate::sql::generate(&prepared, mapping, crate::sql::Dialect::Spark, table)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let fetched = std::env::temp_dir().join(format!("strata-spark-{}-{nanos}", std::process::id()));
    let (counts, quality) = crate::spark::fetch(url, &script, &fetched)?;
    writeln!(
        err,
        "{url}: counts and data-quality cube received into {}",
        fetched.display()
    )
    .ok();
    // The mapping was applied by the SQL; the counts follow SPEC §3 as they are.
    let pushed = InputOverrides {
        counts: Some(counts.clone()),
        quality: Some(quality.clone()),
        mapping: None,
        ..overrides.clone()
    };
    run_command(recipe, out_dir, &pushed, out, err)?;
    for file in [&counts, &quality] {
        std::fs::remove_file(file).ok();
    }
    std::fs::remove_dir(&fetched).ok();
    Ok(())
}

#[cfg(not(feature = "spark"))]
fn spark_run_command(
    _recipe: &Path,
    _out_dir: Option<&Path>,
    _overrides: &InputOverrides,
    _url: &str,
    _table: &str,
    _out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<()> {
    Err(Error::Usage(
        "this strata was built without Spark Connect (cargo feature `spark`): rebuild with it, \
         or run `strata sql --dialect spark` there and give the results with --counts/--quality"
            .into(),
    ))
}

/// `strata run`: runs and writes, then prints the warnings and where the files went.
fn run_command(
    recipe: &Path,
    out_dir: Option<&Path>,
    overrides: &InputOverrides,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let (dir, run) = crate::run(recipe, out_dir, overrides)?;
    for w in &run.results.warnings {
        writeln!(err, "warning: {w}").ok();
    }
    writeln!(
        out,
        "{}: {} files written to {}",
        run.prepared.recipe.name,
        run.files.len(),
        dir.display()
    )
    .ok();
    Ok(())
}

/// `strata verify`: prints one line per figure (or per failure) and fails when a gated figure is
/// outside tolerance (exit code 1, after the outputs are written).
fn verify_command(
    recipe: &Path,
    out_dir: Option<&Path>,
    overrides: &InputOverrides,
    failures_only: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let (dir, table, ok) = crate::verify_run(recipe, out_dir, overrides)?;
    let within = table
        .rows
        .iter()
        .filter(|r| r.get(5) == Some(&strata_api::Value::Text("yes".into())))
        .count();
    for row in &table.rows {
        print_verify_row(row, failures_only, out);
    }
    writeln!(
        out,
        "{within} of {} figures within tolerance; outputs and verify.csv in {}",
        table.rows.len(),
        dir.display()
    )
    .ok();
    writeln!(out, "{}", kind_counts(&table)).ok();
    if ok {
        Ok(())
    } else {
        Err(Error::Verify(format!(
            "published figures in gated sections are outside tolerance ({} of {} outside in all)",
            table.rows.len() - within,
            table.rows.len()
        )))
    }
}

/// Within-tolerance counts by kind of check (column 7), so a reader sees how much of a pass is
/// the synthetic generator's round trip and how much is evidence.
fn kind_counts(table: &strata_api::Table) -> String {
    fn text(v: Option<&strata_api::Value>) -> &str {
        match v {
            Some(strata_api::Value::Text(s)) => s.as_str(),
            _ => "",
        }
    }
    let parts: Vec<String> = crate::verify::KINDS
        .iter()
        .map(|kind| {
            let rows: Vec<&Vec<strata_api::Value>> = table
                .rows
                .iter()
                .filter(|r| text(r.get(7)) == *kind)
                .collect();
            let within = rows.iter().filter(|r| text(r.get(5)) == "yes").count();
            format!("{kind} {within} / {}", rows.len())
        })
        .collect();
    format!("by kind: {}", parts.join(", "))
}

/// One row of `verify.csv` as a fixed-width line; column 5 is "within tolerance", 6 "gates", 7
/// "kind".
fn print_verify_row(row: &[strata_api::Value], failures_only: bool, out: &mut dyn Write) {
    let cells: Vec<String> = row
        .iter()
        .map(|v| match v {
            strata_api::Value::Text(s) => s.clone(),
            strata_api::Value::Number(n) => n.to_string(),
            strata_api::Value::Missing => String::new(),
        })
        .collect();
    if failures_only && cells[5] == "yes" {
        return;
    }
    let gates = if cells[6] == "yes" {
        ""
    } else {
        " (reported only)"
    };
    writeln!(
        out,
        "{:<15} {:<11} {:<48} {:>12} {:>14} {:>18}  {}{gates}",
        cells[0], cells[7], cells[1], cells[2], cells[3], cells[4], cells[5]
    )
    .ok();
}

/// `strata synth`: writes the recipe's synthetic year as files and prints what was written.
fn synth_command(
    recipe: &Path,
    dir: &Path,
    synthetic: SyntheticArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let recipe = crate::recipe::Recipe::load(recipe)?;
    let Some(mut spec) = recipe.inputs.synthetic.clone() else {
        return Err(Error::Usage(format!(
            "{}: the recipe has no `[inputs.synthetic]`",
            recipe.file.display()
        )));
    };
    spec.scale = synthetic.scale.unwrap_or(spec.scale);
    spec.seed = synthetic.seed.unwrap_or(spec.seed);
    spec.sampling = synthetic.sampling.or(spec.sampling);
    let start = std::time::Instant::now();
    let generator = crate::synthetic::generator(&spec)?;
    let records = crate::synthetic::write_files(&generator, &spec, dir)?;
    let size = std::fs::metadata(dir.join("activity.parquet"))
        .map(|m| m.len())
        .unwrap_or(0);
    writeln!(
        out,
        "{records} records (scale {}, seed {}, {} sampling) in {:.1} s: {} ({:.1} MB) and {}",
        spec.scale,
        spec.seed,
        generator.config().count_sampling.name(),
        start.elapsed().as_secs_f64(),
        dir.join("activity.parquet").display(),
        size as f64 / 1e6,
        dir.join("population.csv").display()
    )
    .ok();
    Ok(())
}

/// `strata check`: configures the recipe's plugins and lists them.
fn check_command(recipe: &Path, out: &mut dyn Write) -> Result<()> {
    let prepared = crate::check(recipe)?;
    writeln!(out, "{}: ok ({})", recipe.display(), prepared.recipe.name).ok();
    for p in &prepared.plugins {
        writeln!(out, "  {:<20} {} {}", p.stage, p.id, p.version).ok();
    }
    Ok(())
}

/// `strata plugins`: the registry's listing in aligned columns, the origin of loaded libraries
/// after the description.
fn plugins_command(plugin_paths: Vec<PathBuf>, out: &mut dyn Write) -> Result<()> {
    let mut dirs = plugin_paths;
    dirs.extend(crate::plugins::env_plugin_dirs()?);
    let registry = crate::plugins::Registry::load(&dirs)?;
    let rows = registry.listing();
    let w_id = rows.iter().map(|r| r.id.len()).max().unwrap_or(2);
    let w_stage = rows.iter().map(|r| r.stage.len()).max().unwrap_or(5);
    writeln!(
        out,
        "{:<w_stage$}  {:<w_id$}  {:<8}  description",
        "stage", "id", "version"
    )
    .ok();
    for r in rows {
        let origin = if r.origin == "built-in" {
            String::new()
        } else {
            format!(" [{}]", r.origin)
        };
        writeln!(
            out,
            "{:<w_stage$}  {:<w_id$}  {:<8}  {}{origin}",
            r.stage, r.id, r.version, r.description
        )
        .ok();
    }
    Ok(())
}

/// `strata diff`: runs both recipes in memory and prints (or writes) the cells that differ.
fn diff_command(
    recipe_a: &Path,
    recipe_b: &Path,
    diff_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let a = crate::run_in_memory(recipe_a, &InputOverrides::default())?;
    let b = crate::run_in_memory(recipe_b, &InputOverrides::default())?;
    let (table, methods) = crate::diff::diff_tables(&a.results.tables, &b.results.tables);
    for m in &methods {
        writeln!(out, "method: {m}").ok();
    }
    writeln!(out, "{} cells differ", table.rows.len()).ok();
    let bytes = crate::output::csv_bytes(&table, 6);
    match diff_file {
        Some(path) => {
            std::fs::write(path, &bytes).map_err(|e| Error::io(path, e))?;
            writeln!(out, "written to {}", path.display()).ok();
        }
        None => out
            .write_all(&bytes)
            .map_err(|e| Error::io(Path::new("<stdout>"), e))?,
    }
    Ok(())
}
