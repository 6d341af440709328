//! The `strata` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strata::pipeline::InputOverrides;
use strata::{Error, Result};

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
        #[arg(long, conflicts_with = "counts")]
        activity: Option<PathBuf>,
        /// Aggregated stratum counts `area_code, sex, age_band, imd_quintile, measure, tests`.
        #[arg(long)]
        counts: Option<PathBuf>,
        /// Population `area_code, sex, age_band, imd_quintile, population`.
        #[arg(long)]
        population: Option<PathBuf>,
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Run {
            recipe,
            out,
            activity,
            counts,
            population,
        } => {
            let overrides = InputOverrides {
                activity,
                counts,
                population,
            };
            let (dir, run) = strata::run(&recipe, out.as_deref(), &overrides)?;
            for w in &run.results.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: {} files written to {}",
                run.prepared.recipe.name,
                run.files.len(),
                dir.display()
            );
            Ok(())
        }
        Command::Check { recipe } => {
            let prepared = strata::check(&recipe)?;
            println!("{}: ok ({})", recipe.display(), prepared.recipe.name);
            for p in &prepared.plugins {
                println!("  {:<20} {} {}", p.stage, p.id, p.version);
            }
            Ok(())
        }
        Command::Plugins { plugin_paths } => {
            let mut dirs = plugin_paths;
            dirs.extend(strata::plugins::env_plugin_dirs());
            let registry = strata::plugins::Registry::load(&dirs)?;
            let rows = registry.listing();
            let w_id = rows.iter().map(|r| r.id.len()).max().unwrap_or(2);
            let w_stage = rows.iter().map(|r| r.stage.len()).max().unwrap_or(5);
            println!(
                "{:<w_stage$}  {:<w_id$}  {:<8}  description",
                "stage", "id", "version"
            );
            for r in rows {
                let origin = if r.origin == "built-in" {
                    String::new()
                } else {
                    format!(" [{}]", r.origin)
                };
                println!(
                    "{:<w_stage$}  {:<w_id$}  {:<8}  {}{origin}",
                    r.stage, r.id, r.version, r.description
                );
            }
            Ok(())
        }
        Command::Diff {
            recipe_a,
            recipe_b,
            out,
        } => {
            let a = strata::run_in_memory(&recipe_a, &InputOverrides::default())?;
            let b = strata::run_in_memory(&recipe_b, &InputOverrides::default())?;
            let (table, methods) = strata::diff::diff_tables(&a.results.tables, &b.results.tables);
            for m in &methods {
                println!("method: {m}");
            }
            println!("{} cells differ", table.rows.len());
            let bytes = strata::output::csv_bytes(&table, 6)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
                    println!("written to {}", path.display());
                }
                None => print!("{}", String::from_utf8_lossy(&bytes)),
            }
            Ok(())
        }
    }
}
