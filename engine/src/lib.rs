//! strata: reproduces NHS England's DID "Standardised CCG/ICB rates" publication from a TOML recipe.
//!
//! The engine is mechanism: it reads recipes and data, runs stages and writes outputs. Every
//! statistic and every year's rule lives in a plugin (`plugins/`), reached only through
//! `strata-api`. See `ARCHITECTURE.md`.

pub mod bench;
pub mod board;
pub mod cdc;
pub mod charts;
pub mod cli;
pub mod context;
pub mod dates;
pub mod diff;
pub mod dm01;
pub mod error;
pub mod input;
pub mod metrics;
pub mod output;
pub mod periods;
pub mod pipeline;
pub mod plugins;
pub mod progress;
pub mod publication;
pub mod recipe;
#[cfg(feature = "spark")]
pub mod spark;
pub mod sql;
pub mod synthetic;
pub mod synthetic_cdc;
pub mod verify;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
use output::{InputRecord, Manifest, RunFiles, SyntheticRecord};
use pipeline::{InputOverrides, Prepared, RunResults};
use recipe::Recipe;
/// How a synthetic year draws its record counts (`--sampling`).
pub use strata_synth::CountSampling;

/// Reads a recipe and configures its plugins: everything `strata check` checks.
pub fn check(recipe_path: &Path) -> Result<Prepared> {
    let recipe = Recipe::load(recipe_path)?;
    pipeline::prepare(recipe)
}

/// A finished run, in memory.
pub struct Run {
    pub prepared: Prepared,
    pub results: RunResults,
    pub manifest: Manifest,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Runs a recipe without writing anything.
pub fn run_in_memory(recipe_path: &Path, overrides: &InputOverrides) -> Result<Run> {
    let mut prepared = check(recipe_path)?;
    if let Some(path) = &overrides.mapping {
        use_mapping_file(&mut prepared.recipe, path)?;
    }
    let results = pipeline::run(&prepared, overrides)?;
    let (RunFiles { mut files }, outputs) =
        RunFiles::from_results(&results, prepared.recipe.float_precision)?;
    let manifest = manifest(&prepared, overrides, &results, outputs)?;
    let manifest_bytes = output::manifest_bytes(&manifest)?;
    if prepared.recipe.write_publication {
        files.extend(publication::files(&publication::Context {
            recipe: &prepared.recipe,
            methods: &prepared.methods,
            results: &results,
            fingerprint: &manifest.recipe_fingerprint,
            manifest_json: &String::from_utf8_lossy(&manifest_bytes),
        })?);
    }
    if prepared.recipe.write_publication {
        files.extend(charts::files(&prepared.recipe, &results.tables)?);
    }
    files.push(("manifest.json".into(), manifest_bytes));
    Ok(Run {
        prepared,
        results,
        manifest,
        files,
    })
}

/// Puts `--mapping`'s file in the recipe's place, so the fingerprint and the manifest carry the
/// run's mapping as they would a recipe's own.
fn use_mapping_file(recipe: &mut Recipe, path: &Path) -> Result<()> {
    let inputs = &mut recipe.inputs;
    inputs.mapping = input::mapping::load_checked(path)?;
    inputs.mapping_file = Some(recipe::InputPath {
        written: path.display().to_string(),
        path: path.to_path_buf(),
        span: recipe::Span { start: 0, end: 0 },
    });
    Ok(())
}

/// The manifest of a finished run: recipe, plugins, checksummed inputs, stages, outputs.
fn manifest(
    prepared: &Prepared,
    overrides: &InputOverrides,
    results: &RunResults,
    outputs: Vec<output::OutputRecord>,
) -> Result<Manifest> {
    let recipe = &prepared.recipe;
    let inputs = input_records(recipe, overrides, results)?;
    let synthetic = match &recipe.inputs.synthetic {
        Some(spec) if results.input_rows.contains_key("synthetic") => Some(SyntheticRecord {
            config: output::relative(&spec.config).display().to_string(),
            sha256: input::checksum(&spec.config)?,
            scale: overrides.scale.unwrap_or(spec.scale),
            seed: overrides.seed.unwrap_or(spec.seed),
            sampling: results
                .synthetic_sampling
                .map(|s| s.name().to_string())
                .unwrap_or_default(),
            areas_from_practices: spec.areas_from_practices,
        }),
        _ => None,
    };
    let published = match &recipe.published {
        Some(p) => Some(InputRecord {
            path: output::relative(&p.path).display().to_string(),
            sha256: input::checksum(&p.path)?,
            rows: None,
        }),
        None => None,
    };
    let recipe_fingerprint = recipe.fingerprint();
    let run_fingerprint = run_fingerprint(
        &recipe_fingerprint,
        &prepared.plugins,
        &inputs,
        synthetic.as_ref(),
        published.as_ref(),
    )?;
    Ok(Manifest {
        strata_version: env!("CARGO_PKG_VERSION").to_string(),
        recipe: output::relative(&recipe.file).display().to_string(),
        recipe_name: recipe.name.clone(),
        year: recipe.year.clone(),
        recipe_fingerprint,
        run_fingerprint,
        plugins: prepared.plugins.clone(),
        synthetic,
        published,
        inputs,
        input_mapping: (results.input_rows.contains_key("activity")
            && !recipe.inputs.mapping.is_empty())
        .then(|| recipe.inputs.mapping.clone()),
        stages: results.stages.clone(),
        outputs,
        warnings: results.warnings.clone(),
    })
}

/// Every input the run read, by key, with its checksum and rows read. A command-line activity or
/// counts file replaces the recipe's activity and counts both (one source per run); a population
/// file replaces only the population.
fn input_records(
    recipe: &Recipe,
    overrides: &InputOverrides,
    results: &RunResults,
) -> Result<std::collections::BTreeMap<String, InputRecord>> {
    let mut inputs = std::collections::BTreeMap::new();
    let mut named: Vec<(String, PathBuf)> = recipe
        .inputs
        .named()
        .into_iter()
        .map(|(k, p)| (k.to_string(), p.path.clone()))
        .collect();
    for (key, path) in [
        ("activity", &overrides.activity),
        ("counts", &overrides.counts),
        ("population", &overrides.population),
        ("practice_population", &overrides.practice_population),
    ] {
        if let Some(p) = path {
            // A practice file replaces the recipe's population of either form.
            if key == "practice_population" {
                named.retain(|(k, _)| k != "population");
            }
            // Records replace every source of activity: a year's, or a period comparison's
            // provider × month counts.
            named.retain(|(k, _)| {
                k != key
                    && !(key != "population" && (k == "activity" || k == "counts"))
                    && !(key == "activity"
                        && (k == "provider_months" || k == "synthetic_provider_months"))
            });
            named.push((key.to_string(), p.clone()));
        }
    }
    // A frame stands in for its key's file (and activity or counts for the other).
    for (key, frame) in [
        ("activity", &overrides.activity_frame),
        ("counts", &overrides.counts_frame),
        ("population", &overrides.population_frame),
    ] {
        let Some(frame) = frame else { continue };
        named.retain(|(k, _)| {
            k != key && !(key != "population" && (k == "activity" || k == "counts"))
        });
        let label = PathBuf::from(&frame.label);
        inputs.insert(
            key.to_string(),
            InputRecord {
                path: frame.label.clone(),
                sha256: input::frame_checksum(&label, &frame.batches)?,
                rows: results.input_rows.get(key).copied(),
            },
        );
    }
    for (key, path) in named {
        inputs.insert(
            key.clone(),
            InputRecord {
                path: output::relative(&path).display().to_string(),
                sha256: input::checksum(&path)?,
                rows: results.input_rows.get(&key).copied(),
            },
        );
    }
    Ok(inputs)
}

/// SHA-256 of the canonical JSON of everything that decides a run's outputs (see
/// [`Manifest::run_fingerprint`]); input paths are left out, so a moved input keeps it (a
/// shared-library plugin is named by its path, as its origin).
fn run_fingerprint(
    recipe_fingerprint: &str,
    plugins: &[pipeline::PluginUse],
    inputs: &std::collections::BTreeMap<String, InputRecord>,
    synthetic: Option<&SyntheticRecord>,
    published: Option<&InputRecord>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::json!({
        "recipe": recipe_fingerprint,
        "plugins": plugins
            .iter()
            .map(|p| [&p.stage, &p.id, &p.version, &p.origin])
            .collect::<Vec<_>>(),
        "inputs": inputs
            .iter()
            .map(|(k, r)| (k.clone(), r.sha256.clone()))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "synthetic": synthetic.map(|s| (&s.sha256, s.scale, s.seed)),
        "published": published.map(|p| &p.sha256),
    });
    let text = serde_json::to_string(&canonical)
        .map_err(|e| Error::Usage(format!("run fingerprint: {e}")))?;
    Ok(recipe::hex(&Sha256::digest(text.as_bytes())))
}

/// The output folder of a run, checked before any data is read (see
/// [`output::check_output_dir`]).
fn output_dir(
    recipe_path: &Path,
    out: Option<&Path>,
    overrides: &InputOverrides,
) -> Result<PathBuf> {
    let recipe = Recipe::load(recipe_path)?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| recipe.output_dir.clone());
    let mut own: Vec<PathBuf> = vec![recipe.file.clone()];
    own.extend(
        recipe
            .inputs
            .named()
            .into_iter()
            .map(|(_, p)| p.path.clone()),
    );
    own.extend(
        [
            &overrides.activity,
            &overrides.counts,
            &overrides.population,
            &overrides.mapping,
        ]
        .into_iter()
        .flatten()
        .cloned(),
    );
    let own: Vec<&Path> = own.iter().map(PathBuf::as_path).collect();
    output::check_output_dir(&dir, &own)?;
    Ok(dir)
}

/// Runs a recipe and writes its outputs atomically; returns the output folder.
pub fn run(
    recipe_path: &Path,
    out: Option<&Path>,
    overrides: &InputOverrides,
) -> Result<(PathBuf, Run)> {
    let dir = output_dir(recipe_path, out, overrides)?;
    let run = run_in_memory(recipe_path, overrides)?;
    output::write_atomically(&dir, &run.files)?;
    Ok((dir, run))
}

/// Runs a recipe, compares it with its published figures and writes the outputs plus
/// `verify.csv`; returns the folder, the verify table and whether all figures are within tolerance.
pub fn verify_run(
    recipe_path: &Path,
    out: Option<&Path>,
    overrides: &InputOverrides,
) -> Result<(PathBuf, strata_api::Table, bool)> {
    let dir = output_dir(recipe_path, out, overrides)?;
    let (mut run, table, ok) = verify_in_memory(recipe_path, overrides)?;
    run.files.push((
        "verify.csv".into(),
        output::csv_bytes(&table, run.prepared.recipe.float_precision),
    ));
    output::write_atomically(&dir, &run.files)?;
    Ok((dir, table, ok))
}

/// Runs a recipe and compares it with its published figures, writing nothing: the run, the
/// verify table and whether all gated figures are within tolerance.
pub fn verify_in_memory(
    recipe_path: &Path,
    overrides: &InputOverrides,
) -> Result<(Run, strata_api::Table, bool)> {
    let run = run_in_memory(recipe_path, overrides)?;
    let recipe = &run.prepared.recipe;
    let published_path = recipe.published.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the recipe names no `published` figures to verify against",
            recipe.file.display()
        ))
    })?;
    let published = verify::read_published(&published_path.path)?;
    let ratio = run.prepared.methods.ratio();
    let tolerances = verify::Tolerances {
        poisson_sampling: run.results.synthetic_sampling
            == Some(strata_synth::CountSampling::Poisson),
        area_totals_told: run.results.synthetic_area_totals,
        ..recipe.tolerances.clone()
    };
    let (table, ok) = verify::verify_rates_per(
        &published,
        &run.results.tables,
        &tolerances,
        ratio,
        recipe.rate_per,
    );
    Ok((run, table, ok))
}
