//! The pipeline: configure every stage's plugin from the recipe, read the inputs, run the stages
//! in SPEC §2 order and collect the results as tables.
//!
//! The engine moves data between stages and counts; every number that is a statistic comes from a
//! plugin.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use strata_api::{
    Area, AttributionMethod, Comparison, ConfidenceIntervalMethod, Configured, CountRatioMethod,
    DataQualityMethod, DerivationInput, DerivationRules, DerivationShape, DidWaitsMethod,
    DisclosureMethod, ExcludedUnknowns, ExclusionRule, FactorMethod, FactorRate,
    OverdispersionMethod, QualityInput, RatioMethod, SettingShareMethod, SignificanceMethod, Slot,
    StageKind, StandardisationMethod, StratifiedCounts, SummaryMethod, Table, Value,
    WaitingTimesMethod,
};

use crate::board::Board;
use crate::error::{Error, RecipeProblem, Result};
use crate::input;
use crate::plugins::{self, Registry};
use crate::recipe::{Recipe, StageChoice};

/// Every stage's configured method, by kind. Derivation is there whenever the recipe has activity
/// for standardised rates: the reader needs its shape (dimensions and measures) even for
/// aggregated counts.
pub struct Methods {
    derivation: Option<Box<dyn DerivationRules>>,
    configured: BTreeMap<StageKind, Configured>,
}

/// `Methods`' accessor for an optional stage's method.
macro_rules! method_of {
    ($name:ident, $kind:ident, $trait:ident) => {
        pub fn $name(&self) -> Option<&dyn $trait> {
            match self.configured.get(&StageKind::$kind) {
                Some(Configured::$kind(m)) => Some(m.as_ref()),
                _ => None,
            }
        }
    };
}

impl Methods {
    /// Every configured kind, in [`StageKind::ALL`]'s order.
    pub fn kinds(&self) -> Vec<StageKind> {
        let mut kinds: Vec<StageKind> = self.configured.keys().copied().collect();
        if self.derivation.is_some() {
            kinds.push(StageKind::Derivation);
        }
        kinds.sort();
        kinds
    }

    /// The derivation rules; an error in a recipe without them (one with no activity for
    /// standardised rates, which never reads records).
    pub fn derivation(&self) -> Result<&dyn DerivationRules> {
        self.derivation.as_deref().ok_or_else(|| {
            Error::Usage(
                "stage `derivation` is not configured: the recipe has no activity for \
                 standardised rates"
                    .into(),
            )
        })
    }

    /// Puts a method in its stage's place (tests swap one in).
    #[cfg(test)]
    pub(crate) fn replace(&mut self, method: Configured) {
        match method {
            Configured::Derivation(m) => self.derivation = Some(m),
            other => {
                self.configured.insert(other.stage(), other);
            }
        }
    }

    method_of!(attribution, Attribution, AttributionMethod);
    method_of!(exclusions, Exclusions, ExclusionRule);
    method_of!(standardisation, Standardisation, StandardisationMethod);
    method_of!(
        confidence_interval,
        ConfidenceInterval,
        ConfidenceIntervalMethod
    );
    method_of!(factors, Factors, FactorMethod);
    method_of!(ratio, Ratio, RatioMethod);
    method_of!(significance, Significance, SignificanceMethod);
    method_of!(summary, Summary, SummaryMethod);
    method_of!(overdispersion, Overdispersion, OverdispersionMethod);
    method_of!(data_quality, DataQuality, DataQualityMethod);
    method_of!(disclosure, Disclosure, DisclosureMethod);
    method_of!(period_comparison, PeriodComparison, CountRatioMethod);
    method_of!(waiting_times, WaitingTimes, WaitingTimesMethod);
    method_of!(setting_share, SettingShare, SettingShareMethod);
    method_of!(did_waits, DidWaits, DidWaitsMethod);
}

/// The plugin each stage uses, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginUse {
    pub stage: String,
    pub id: String,
    pub version: String,
    pub origin: String,
}

/// A recipe whose plugins are all found and configured: nothing left to check but the data.
pub struct Prepared {
    pub recipe: Recipe,
    pub methods: Methods,
    pub plugins: Vec<PluginUse>,
    _registry: Registry,
}

/// Loads plugins and configures every stage, reporting every problem with its recipe position.
pub fn prepare(recipe: Recipe) -> Result<Prepared> {
    let mut dirs = recipe.plugin_paths.clone();
    dirs.extend(plugins::env_plugin_dirs()?);
    let registry = Registry::load(&dirs)?;

    // Every problem is collected before any is reported, in recipe order: each stage choice's,
    // then the record-level inputs', then the stages that could not run.
    let mut problems: Vec<RecipeProblem> = Vec::new();
    let mut configured: BTreeMap<StageKind, Configured> = BTreeMap::new();
    let mut uses = Vec::new();
    for choice in &recipe.stages {
        match configure_choice(&recipe, &registry, choice) {
            Ok((method, plugin_use)) => {
                uses.push(plugin_use);
                configured.insert(choice.stage, method);
            }
            Err(problem) => problems.push(problem),
        }
    }
    problems.extend(missing_record_level_inputs(&recipe));
    problems.extend(unrunnable_stages(&recipe, &registry));
    if !problems.is_empty() {
        return Err(Error::Recipe(problems));
    }
    Ok(Prepared {
        methods: take_methods(configured)?,
        recipe,
        plugins: uses,
        _registry: registry,
    })
}

/// Configures one `[stages.<kind>]` choice: its plugin found, of that stage and of the pinned
/// major version, and its parameters accepted.
fn configure_choice(
    recipe: &Recipe,
    registry: &Registry,
    choice: &StageChoice,
) -> std::result::Result<(Configured, PluginUse), RecipeProblem> {
    let source = find_plugin(recipe, registry, choice)?;
    let params = with_stage_data(recipe, choice)?;
    match source.configure(&params) {
        Ok(method) => Ok((
            method,
            PluginUse {
                stage: choice.stage.key().into(),
                id: choice.plugin.clone(),
                version: source.version(),
                origin: match source {
                    plugins::Source::Builtin(_) => "built-in".into(),
                    plugins::Source::Library(p) => p.path.display().to_string(),
                },
            },
        )),
        Err(e) => Err(refused_parameter(recipe, choice, e)),
    }
}

/// A plugin's refusal of a parameter, at the refused key when it names one; a key of a `data`
/// file (`standard_tests[4].tests`) points at the file's entry and names the file and its row.
fn refused_parameter(
    recipe: &Recipe,
    choice: &StageChoice,
    e: strata_api::ParamError,
) -> RecipeProblem {
    let head = e
        .key
        .as_deref()
        .map(|k| k.split(['.', '[']).next().unwrap_or(k));
    if let Some((key, file)) = choice
        .data
        .iter()
        .find(|(key, _)| Some(key.as_str()) == head)
    {
        let row = e.key.as_deref().and_then(data_row);
        let at = row.map(|r| format!(", data row {r}")).unwrap_or_default();
        return recipe.problem_at(
            file.span,
            format!(
                "plugin `{}` refused data `{key}` (file `{}`{at}): {}",
                choice.plugin,
                file.path.display(),
                e.message
            ),
        );
    }
    let span = choice
        .params_span
        .map(|s| recipe.param_key_span(s, e.key.as_deref()))
        .unwrap_or(choice.plugin_span);
    let key = e.key.map(|k| format!(" `{k}`")).unwrap_or_default();
    recipe.problem_at(
        span,
        format!(
            "plugin `{}` refused parameter{key}: {}",
            choice.plugin, e.message
        ),
    )
}

/// The data row (1-based, after the header) of a parameter key `name[i]…`.
fn data_row(key: &str) -> Option<usize> {
    let (_, rest) = key.split_once('[')?;
    let (index, _) = rest.split_once(']')?;
    index.parse::<usize>().ok().map(|i| i + 1)
}

/// The choice's parameters with each `data` file's rows under its key (read here: plugins do no
/// IO); a key the recipe's `params` already has is refused.
fn with_stage_data(
    recipe: &Recipe,
    choice: &StageChoice,
) -> std::result::Result<strata_api::Params, RecipeProblem> {
    if choice.data.is_empty() {
        return Ok(choice.params.clone());
    }
    let mut table = choice.params.table().clone();
    for (key, file) in &choice.data {
        if table.contains_key(key) {
            return Err(recipe.problem_at(
                file.span,
                format!("`{key}` is both a parameter and a data file: give it once"),
            ));
        }
        let rows = input::read_stage_data(&file.path)
            .map_err(|e| recipe.problem_at(file.span, e.to_string()))?;
        table.insert(key.clone(), rows);
    }
    Ok(strata_api::Params::new(table))
}

/// The plugin a stage choice names, if it exists, serves that stage and has the pinned major
/// version.
fn find_plugin<'r>(
    recipe: &Recipe,
    registry: &'r Registry,
    choice: &StageChoice,
) -> std::result::Result<plugins::Source<'r>, RecipeProblem> {
    let Some(source) = registry.find(&choice.plugin) else {
        return Err(recipe.problem_at(
            choice.plugin_span,
            format!(
                "unknown plugin `{}` for stage `{}` (available: {})",
                choice.plugin,
                choice.stage,
                registry.ids_for(choice.stage).join(", ")
            ),
        ));
    };
    if source.stage_key() != choice.stage.key() {
        return Err(recipe.problem_at(
            choice.plugin_span,
            format!(
                "plugin `{}` serves stage `{}`, not `{}`",
                choice.plugin,
                source.stage_key(),
                choice.stage
            ),
        ));
    }
    if let Some(major) = choice.pinned_major {
        let version = source.version();
        let found = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u64>().ok());
        if found != Some(major) {
            return Err(recipe.problem_at(
                choice.plugin_span,
                format!(
                    "plugin `{}` is version {version}; the recipe pins major version {major} \
                     (a released year's rules never change: pin the version its figures came \
                     from, or copy the recipe for a new year)",
                    choice.plugin
                ),
            ));
        }
    }
    Ok(source)
}

/// The reference inputs and the attribution stage record-level activity (an extract or the
/// synthetic year) needs; aggregated counts need none of them, nor do records counted to
/// provider × month counts ([`periods_from_records`]), which are read by provider and date.
fn missing_record_level_inputs(recipe: &Recipe) -> Vec<RecipeProblem> {
    let stratified_records = recipe.inputs.activity.is_some() && !periods_from_records(recipe);
    if !stratified_records && recipe.inputs.synthetic.is_none() {
        return Vec::new();
    }
    [
        ("practices", recipe.inputs.practices.is_some()),
        ("lsoa", recipe.inputs.lsoa.is_some()),
        ("imd", recipe.inputs.imd.is_some()),
        (
            "stages.attribution",
            recipe.stage(StageKind::Attribution).is_some(),
        ),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(needed, _)| {
        recipe.problem_at(
            crate::recipe::Span { start: 0, end: 0 },
            format!("record-level activity needs `{needed}` in the recipe"),
        )
    })
    .collect()
}

/// One problem per stage kind the recipe lacks that its stages need: derivation (the reader's),
/// and each kind that alone gives a slot a named stage takes (e.g. `exclusions`, whose counts
/// every statistic takes), at the recipe's `[stages]` table.
fn unrunnable_stages(recipe: &Recipe, registry: &Registry) -> Vec<RecipeProblem> {
    let named: Vec<StageKind> = recipe.stages.iter().map(|c| c.stage).collect();
    let source = recipe_source_slots(recipe);
    let (_, stuck) = crate::board::schedule(&named, &source);
    // Each missing kind, with the slots only it gives and the named stages that take them.
    let mut needed: BTreeMap<StageKind, BTreeMap<Slot, Vec<StageKind>>> = BTreeMap::new();
    if source.contains(&Slot::ActivityCounts) && !named.contains(&StageKind::Derivation) {
        needed.entry(StageKind::Derivation).or_default();
    }
    let mut unfed = Vec::new();
    for (kind, lacking) in stuck {
        for slot in lacking {
            // A slot only an input gives (no stage kind does), which this recipe's inputs do not.
            if crate::board::givers(slot).is_empty() {
                unfed.push(recipe.problem_at(
                    recipe.stages_span,
                    format!(
                        "stage `{kind}` takes {slot}, which no input of the recipe gives (name \
                         the input it reads in `[inputs]`, or leave the stage out)"
                    ),
                ));
            }
            // A giver the recipe names but that is stuck itself is reported for its own lack.
            for giver in crate::board::givers(slot)
                .into_iter()
                .filter(|g| !named.contains(g))
            {
                let takers = needed.entry(giver).or_default().entry(slot).or_default();
                takers.push(kind);
            }
        }
    }
    let missing = needed.into_iter().map(|(missing, slots)| {
        let why: Vec<String> = slots
            .iter()
            .map(|(slot, takers)| {
                let takers: Vec<String> = takers.iter().map(|k| format!("`{k}`")).collect();
                let verb = if takers.len() == 1 { "takes" } else { "take" };
                format!("{} {verb} {slot}, which only it gives", takers.join(", "))
            })
            .collect();
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        };
        recipe.problem_at(
            recipe.stages_span,
            format!(
                "stage `{missing}` is missing{why}: name its method as `[stages.{missing}] \
                     plugin = \"…\"` (available: {})",
                registry.ids_for(missing).join(", ")
            ),
        )
    });
    unfed.extend(missing);
    unfed
}

/// The slots a recipe's inputs put on the board: activity counts from activity, aggregated
/// counts or a synthetic year (checked as if record-level, so a stage taking the data-quality
/// cube simply does not run on aggregated counts), and provider × month counts.
fn recipe_source_slots(recipe: &Recipe) -> BTreeSet<Slot> {
    let inputs = &recipe.inputs;
    let mut slots = BTreeSet::new();
    let stratified_records = inputs.activity.is_some() && !periods_from_records(recipe);
    if stratified_records || inputs.counts.is_some() || inputs.synthetic.is_some() {
        slots.extend([Slot::ActivityCounts, Slot::QualityCube]);
    }
    if inputs.provider_months.is_some()
        || inputs.synthetic_provider_months.is_some()
        || (inputs.activity.is_some() && periods_from_records(recipe))
    {
        slots.insert(Slot::ProviderMonths);
    }
    if !inputs.dm01.is_empty() || inputs.synthetic_dm01.is_some() || inputs.synthetic_cdc.is_some()
    {
        slots.insert(Slot::WaitingLists);
    }
    if !inputs.cdc_activity.is_empty() || inputs.synthetic_cdc.is_some() {
        slots.insert(Slot::SettingActivity);
    }
    // Records give waits when they have the dates (checked once the header is read); the
    // synthetic pair when its config has wait spans (checked when it is read).
    if (inputs.activity.is_some() && periods_from_records(recipe))
        || inputs.synthetic_provider_months.is_some()
    {
        slots.insert(Slot::WaitDays);
    }
    slots
}

/// Takes each stage's configured method. Derivation is always configured once
/// [`unrunnable_stages`] found it named; the error is a guard, not a message users see.
fn take_methods(mut configured: BTreeMap<StageKind, Configured>) -> Result<Methods> {
    let derivation = match configured.remove(&StageKind::Derivation) {
        Some(Configured::Derivation(m)) => Some(m),
        None => None,
        Some(_) => return Err(Error::Usage("stage `derivation` is misconfigured".into())),
    };
    Ok(Methods {
        derivation,
        configured,
    })
}

/// Rows in and out and time of one stage, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageRecord {
    pub stage: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// Peak resident memory during the stage, in MiB (Linux).
    pub peak_rss_mib: Option<f64>,
}

/// Everything a run produces before it is written.
pub struct RunResults {
    /// Output tables in write order, the order of their slots ([`Slot`]): national_rates,
    /// area_rates, factor_ratios, summary, data quality, exclusions, stratum counts.
    pub tables: Vec<Table>,
    /// The counts the statistics took (over the known categories), or, in a recipe without an
    /// exclusions stage, the activity counts.
    pub counts: StratifiedCounts,
    /// The standardisation stage's result, before disclosure control (its counts are not for
    /// publication; the tables carry the protected ones); none in a recipe without the stage.
    pub rates: Option<strata_api::StandardisedRates>,
    pub stages: Vec<StageRecord>,
    pub warnings: Vec<String>,
    pub input_rows: BTreeMap<String, u64>,
    /// How the synthetic year drew its record counts (none when the run read no synthetic year):
    /// verify widens its tolerances by the sampling noise of Poisson draws.
    pub synthetic_sampling: Option<strata_synth::CountSampling>,
    /// The synthetic year was told the areas' totals Annex A prints: verify's kind for them.
    pub synthetic_area_totals: bool,
}

/// Overrides of the recipe's inputs from the command line.
#[derive(Debug, Clone, Default)]
pub struct InputOverrides {
    pub activity: Option<std::path::PathBuf>,
    pub counts: Option<std::path::PathBuf>,
    pub population: Option<std::path::PathBuf>,
    /// NHS Digital's `gp-reg-pat-prac-quin-age.csv` as the population, in place of the recipe's
    /// population (or the synthetic year's), with the recipe's `practice_imd_mix`.
    pub practice_population: Option<std::path::PathBuf>,
    /// Scale and seed of a recipe's synthetic year.
    pub scale: Option<f64>,
    pub seed: Option<u64>,
    /// How the synthetic year draws its record counts, in place of the recipe's or config's.
    pub sampling: Option<strata_synth::CountSampling>,
    /// Worker threads of the record-level pass (default: the machine's cores, at most 8).
    pub threads: Option<usize>,
    /// A mapping file (`input::mapping`) in place of the recipe's input mapping.
    pub mapping: Option<std::path::PathBuf>,
    /// The data-quality cube of counts made elsewhere (`strata sql`'s quality part), with
    /// `counts`.
    pub quality: Option<std::path::PathBuf>,
    /// Record-level activity already in memory (e.g. a DataFrame from Python), in place of any
    /// file.
    pub activity_frame: Option<InputFrame>,
    /// Aggregated counts (SPEC §3's columns) already in memory, in place of any activity.
    pub counts_frame: Option<InputFrame>,
    /// The population (SPEC §3's columns) already in memory, in place of the recipe's.
    pub population_frame: Option<InputFrame>,
}

/// A table in memory as Arrow record batches (record-level activity, aggregated counts or a
/// population), with the name messages and the manifest give it.
#[derive(Debug, Clone)]
pub struct InputFrame {
    pub label: String,
    pub batches: Vec<arrow_array::RecordBatch>,
}

/// Where this run's activity comes from.
enum Source {
    Activity(std::path::PathBuf),
    Counts(std::path::PathBuf),
    Synthetic(crate::synthetic::SyntheticSpec),
}

/// The stage records of a run, in the order the stages ran.
struct Timer {
    stages: Vec<StageRecord>,
}

impl Timer {
    /// Runs one stage under a spinner and records its rows, wall and CPU time and peak memory;
    /// `f` answers the stage's value and its rows out.
    fn time<T>(
        &mut self,
        stage: &str,
        rows_in: u64,
        f: impl FnOnce() -> Result<(T, u64)>,
    ) -> Result<T> {
        crate::metrics::reset_peak();
        let cpu = crate::metrics::cpu_seconds();
        let start = Instant::now();
        let progress = crate::progress::spinner(stage);
        let result = f();
        progress.finish_and_clear();
        let (value, rows_out) = result?;
        self.stages.push(StageRecord {
            stage: stage.to_string(),
            rows_in,
            rows_out,
            seconds: start.elapsed().as_secs_f64(),
            cpu_seconds: crate::metrics::cpu_seconds() - cpu,
            peak_rss_mib: crate::metrics::peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0)),
        });
        Ok(value)
    }
}

/// A method's error as the run's, naming the stage and the recipe's plugin for it.
fn method_error(stage: StageKind, prepared: &Prepared, e: strata_api::MethodError) -> Error {
    let plugin = prepared
        .recipe
        .stage(stage)
        .map(|s| s.plugin.clone())
        .unwrap_or_default();
    Error::Method {
        stage: stage.key().into(),
        plugin,
        message: e.message,
    }
}

/// Runs every stage on the recipe's inputs (or the overrides).
pub fn run(prepared: &Prepared, overrides: &InputOverrides) -> Result<RunResults> {
    let mut phases = Phases {
        prepared,
        timer: Timer { stages: Vec::new() },
        warnings: Vec::new(),
        input_rows: BTreeMap::new(),
        synthetic_sampling: None,
        synthetic_area_totals: false,
    };
    let stratified = if has_stratified_source(&prepared.recipe, overrides)
        && !periods_from_records(&prepared.recipe)
    {
        Some(phases.stratified_input(overrides)?)
    } else {
        None
    };
    let (provider_months, wait_days) = phases.provider_months(overrides)?;
    let (activity_counts, quality, context) = match stratified {
        Some(s) => (Some(s.counts), s.quality, Some(s.context)),
        None => (None, None, None),
    };
    let mut board = Board::new(activity_counts, quality, provider_months);
    board.waiting_lists = phases.waiting_lists()?;
    phases.setting_activity(&mut board)?;
    board.wait_days = wait_days;
    phases.run_board(&mut board, context.as_ref())?;

    let Board {
        activity_counts,
        counts,
        rates,
        tables,
        ..
    } = board;
    // In slot order: the order a run writes its tables, whatever order the stages ran in; the
    // recipe's context tables last, joined from the protected tables.
    let mut tables: Vec<Table> = tables.into_values().flatten().collect();
    let context = crate::context::tables(&prepared.recipe.context, &tables)?;
    tables.extend(context);
    Ok(RunResults {
        tables,
        counts: counts
            .or(activity_counts)
            .unwrap_or_else(|| StratifiedCounts::zeroed(Vec::new(), Vec::new(), Vec::new())),
        rates,
        stages: phases.timer.stages,
        warnings: phases.warnings,
        input_rows: phases.input_rows,
        synthetic_sampling: phases.synthetic_sampling,
        synthetic_area_totals: phases.synthetic_area_totals,
    })
}

/// Whether record-level activity (the recipe's `activity` or `--activity`) is counted to
/// provider × month counts rather than to stratified ones: a recipe whose stages take the
/// former and not the latter (e.g. a period comparison).
fn periods_from_records(recipe: &Recipe) -> bool {
    let takes = |slot: Slot| {
        StageKind::ALL
            .into_iter()
            .any(|k| recipe.stage(k).is_some() && k.takes().contains(&slot))
    };
    takes(Slot::ProviderMonths) && !takes(Slot::ActivityCounts)
}

/// Whether the run has activity for standardised rates: an extract, aggregated counts or a
/// synthetic year, from the recipe or the command line.
fn has_stratified_source(recipe: &Recipe, overrides: &InputOverrides) -> bool {
    let inputs = &recipe.inputs;
    overrides.activity.is_some()
        || overrides.counts.is_some()
        || overrides.activity_frame.is_some()
        || overrides.counts_frame.is_some()
        || inputs.activity.is_some()
        || inputs.counts.is_some()
        || inputs.synthetic.is_some()
}

/// The standardised rates' input, read: the activity counts (with `unknown` categories), the
/// record-level data-quality cube, and what the board's stages need to name them.
struct StratifiedInput {
    counts: StratifiedCounts,
    quality: Option<QualityInput>,
    context: BoardContext,
}

/// Where the activity comes from: the command line's extract or counts replace the recipe's
/// source (extract, counts or synthetic year), tried in that order.
fn choose_source(recipe: &Recipe, overrides: &InputOverrides) -> Result<Source> {
    let given = [
        overrides.activity.is_some(),
        overrides.counts.is_some(),
        overrides.activity_frame.is_some(),
        overrides.counts_frame.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Error::Usage(
            "give the activity once: record-level activity or aggregated counts, as a frame or as \
             a file (--activity / --counts)"
                .into(),
        ));
    }
    if overrides.population_frame.is_some() && overrides.population.is_some() {
        return Err(Error::Usage(
            "give the population once: as a frame or as a file (--population)".into(),
        ));
    }
    let source = match (&overrides.activity, &overrides.counts) {
        _ if overrides.counts_frame.is_some() => Source::Counts(
            overrides
                .counts_frame
                .as_ref()
                .map(|f| std::path::PathBuf::from(&f.label))
                .unwrap_or_default(),
        ),
        _ if overrides.activity_frame.is_some() => Source::Activity(
            overrides
                .activity_frame
                .as_ref()
                .map(|f| std::path::PathBuf::from(&f.label))
                .unwrap_or_default(),
        ),
        (Some(a), _) => Source::Activity(a.clone()),
        (None, Some(c)) => Source::Counts(c.clone()),
        (None, None) => match (
            &recipe.inputs.activity,
            &recipe.inputs.counts,
            &recipe.inputs.synthetic,
        ) {
            (Some(a), _, _) => Source::Activity(a.path.clone()),
            (None, Some(c), _) => Source::Counts(c.path.clone()),
            (None, None, Some(spec)) => Source::Synthetic(synthetic_spec(spec, overrides)?),
            _ => {
                return Err(Error::Usage(
                    "no activity, counts or synthetic input".into(),
                ));
            }
        },
    };
    if overrides.quality.is_some() && !matches!(source, Source::Counts(_)) {
        return Err(Error::Usage(
            "--quality is the data-quality cube of aggregated counts: give it with --counts".into(),
        ));
    }
    if overrides.mapping.is_some() && !matches!(source, Source::Activity(_)) {
        return Err(Error::Usage(
            "--mapping maps a record-level extract's columns: give it with --activity (aggregated \
             counts and the synthetic year follow SPEC §3 as they are)"
                .into(),
        ));
    }
    Ok(source)
}

/// Record-level activity for a period comparison: the command line's frame or file, else the
/// recipe's `activity` (its label, and the frame when it is one).
fn record_source<'o>(
    recipe: &Recipe,
    overrides: &'o InputOverrides,
) -> Option<(std::path::PathBuf, Option<&'o InputFrame>)> {
    if let Some(frame) = &overrides.activity_frame {
        return Some((std::path::PathBuf::from(&frame.label), Some(frame)));
    }
    overrides
        .activity
        .clone()
        .or_else(|| recipe.inputs.activity.as_ref().map(|a| a.path.clone()))
        .map(|path| (path, None))
}

/// The recipe's synthetic year with the command line's scale (checked) and seed.
fn synthetic_spec(
    spec: &crate::synthetic::SyntheticSpec,
    overrides: &InputOverrides,
) -> Result<crate::synthetic::SyntheticSpec> {
    let mut spec = spec.clone();
    if let Some(scale) = overrides.scale
        && !(scale.is_finite() && scale > 0.0 && scale <= 1.0)
    {
        return Err(Error::Usage(format!(
            "--scale {scale}: the synthetic year's scale is in (0, 1] (1 is a full \
             year of records)"
        )));
    }
    spec.scale = overrides.scale.unwrap_or(spec.scale);
    spec.seed = overrides.seed.unwrap_or(spec.seed);
    spec.sampling = overrides.sampling.or(spec.sampling);
    Ok(spec)
}

/// What a run's phases share as they go: the methods, the stage timings for the manifest, the
/// warnings and the rows read from each input.
struct Phases<'a> {
    prepared: &'a Prepared,
    timer: Timer,
    warnings: Vec<String>,
    input_rows: BTreeMap<String, u64>,
    synthetic_sampling: Option<strata_synth::CountSampling>,
    synthetic_area_totals: bool,
}

impl Phases<'_> {
    /// Reads the activity for standardised rates (extract, counts or synthetic year) into
    /// stratified counts, with the population and, from record-level input, the quality cube.
    fn stratified_input(&mut self, overrides: &InputOverrides) -> Result<StratifiedInput> {
        let prepared = self.prepared;
        let recipe = &prepared.recipe;
        let override_mapping = match &overrides.mapping {
            Some(path) => Some(input::mapping::load_checked(path)?),
            None => None,
        };
        let mapping = override_mapping.as_ref().unwrap_or(&recipe.inputs.mapping);
        let source = choose_source(recipe, overrides)?;
        let practice_population = match &overrides.practice_population {
            Some(_) if overrides.population.is_some() || overrides.population_frame.is_some() => {
                return Err(Error::Usage(
                    "give the population once: --population or --practice-population".into(),
                ));
            }
            Some(path) => Some(path.clone()),
            None if overrides.population.is_some() || overrides.population_frame.is_some() => None,
            None => recipe
                .inputs
                .practice_population
                .as_ref()
                .map(|p| p.path.clone()),
        };
        let population_path = match practice_population {
            Some(_) => None,
            None => overrides
                .population
                .clone()
                .or_else(|| recipe.inputs.population.as_ref().map(|p| p.path.clone())),
        };
        let areas_path = recipe
            .inputs
            .areas
            .as_ref()
            .map(|p| p.path.clone())
            .ok_or_else(|| Error::Usage("no areas input".into()))?;
        let shape = prepared.methods.derivation()?.shape();
        let areas = input::read_areas(&areas_path)?;
        self.input_rows.insert("areas".into(), areas.len() as u64);
        // Read with an `unknown` category on every dimension: the exclusions stage decides what
        // records with an unknown sex, age band or IMD quintile become.
        let mut counts = StratifiedCounts::zeroed(
            areas.clone(),
            shape.measures.clone(),
            input::dimensions(&shape),
        )
        .with_unknown_categories();
        counts.rate_per = recipe.rate_per;
        let generator = self.synthetic_generator(&source)?;
        let population_path = match practice_population {
            Some(path) => self.read_practice_population(path, &mut counts, &shape)?,
            None => self.read_population(
                &source,
                overrides.population_frame.as_ref(),
                population_path,
                generator.as_ref(),
                &mut counts,
                &shape,
            )?,
        };
        let quality = match self.activity_input(
            &source,
            overrides,
            mapping,
            generator.as_ref(),
            &mut counts,
            &shape,
        )? {
            Some(activity) => {
                Some(self.record_level(&source, &activity, &areas, &shape, &mut counts)?)
            }
            None => self.pushed_down_quality(overrides.quality.as_deref(), &areas)?,
        };
        Ok(StratifiedInput {
            counts,
            quality,
            context: BoardContext {
                source,
                shape,
                population_path,
                areas_path,
            },
        })
    }

    /// DM01 waiting lists from the recipe's files; none without any.
    fn waiting_lists(&mut self) -> Result<Option<strata_api::WaitingListInput>> {
        let inputs = &self.prepared.recipe.inputs;
        let waits = !inputs.dm01.is_empty() || inputs.synthetic_dm01.is_some();
        let (Some(regions_path), true) = (&inputs.provider_regions, waits) else {
            return Ok(None);
        };
        let regions = crate::periods::read_provider_regions(&regions_path.path)?;
        let (lists, warnings) = self.timer.time("read_dm01", 0, || {
            let read = match &inputs.synthetic_dm01 {
                Some(spec) => (crate::synthetic::waiting_lists(spec, &regions)?, Vec::new()),
                None => crate::dm01::read(&inputs.dm01, &regions)?,
            };
            let n = read.0.rows.len() as u64;
            Ok((read, n))
        })?;
        self.warnings.extend(warnings);
        self.input_rows
            .insert("dm01".into(), lists.rows.len() as u64);
        let mut lists = lists;
        if let Some(nations) = &inputs.other_nations_waits {
            lists.other_nations = crate::dm01::read_other_nations(&nations.path)?;
            self.input_rows.insert(
                "other_nations_waits".into(),
                lists.other_nations.len() as u64,
            );
        }
        Ok(Some(lists))
    }

    /// CDC activity (and, from the synthetic set, DM01 activity too) on the board, with the site
    /// list and the providers' ICBs; nothing without CDC activity.
    fn setting_activity(&mut self, board: &mut Board) -> Result<()> {
        let inputs = &self.prepared.recipe.inputs;
        let (Some(regions_path), Some(icbs_path)) =
            (&inputs.provider_regions, &inputs.provider_icbs)
        else {
            return Ok(());
        };
        if inputs.cdc_activity.is_empty() && inputs.synthetic_cdc.is_none() {
            return Ok(());
        }
        let names = &inputs.cdc_test_names;
        let records = self.timer.time("read_cdc_activity", 0, || {
            let records = match &inputs.synthetic_cdc {
                Some(spec) => {
                    let regions = crate::periods::read_provider_regions(&regions_path.path)?;
                    let (dm01, records) = crate::synthetic_cdc::cdc_share(spec, &regions)?;
                    board.waiting_lists = Some(dm01);
                    records
                }
                None => {
                    let mut all = Vec::new();
                    for file in &inputs.cdc_activity {
                        all.extend(crate::cdc::read_activity(&file.path, names)?);
                    }
                    all
                }
            };
            let n = records.len() as u64;
            Ok((records, n))
        })?;
        // The manifest counts rows under the input's recipe key.
        let key = if inputs.synthetic_cdc.is_some() {
            "synthetic_cdc"
        } else {
            "cdc_activity"
        };
        self.input_rows.insert(key.into(), records.len() as u64);
        let mut activity = crate::cdc::assemble(records, names)?;
        (activity.provider_icbs, activity.icbs) = crate::cdc::read_provider_icbs(&icbs_path.path)?;
        self.input_rows
            .insert("provider_icbs".into(), activity.provider_icbs.len() as u64);
        if let Some(sites) = &inputs.cdc_sites {
            activity.listed_sites = crate::cdc::read_sites(&sites.path)?;
            self.input_rows
                .insert("cdc_sites".into(), activity.listed_sites.len() as u64);
        }
        board.setting_activity = Some(activity);
        Ok(())
    }

    /// The period comparison's provider × month counts: from record-level activity (the command
    /// line's or the recipe's, when [`periods_from_records`]), else the recipe's file or its
    /// synthetic pair of years; none without any. With them, the DID waits the records' dates
    /// give.
    fn provider_months(
        &mut self,
        overrides: &InputOverrides,
    ) -> Result<(
        Option<crate::periods::ProviderMonths>,
        Option<strata_api::DidWaitsInput>,
    )> {
        let recipe = &self.prepared.recipe;
        let inputs = &recipe.inputs;
        let Some(regions_path) = &inputs.provider_regions else {
            return Ok((None, None));
        };
        let (file, synthetic) = (&inputs.provider_months, &inputs.synthetic_provider_months);
        let records = periods_from_records(recipe)
            .then(|| record_source(recipe, overrides))
            .flatten();
        if records.is_none() && file.is_none() && synthetic.is_none() {
            return Ok((None, None));
        }
        let regions = crate::periods::read_provider_regions(&regions_path.path)?;
        self.input_rows
            .insert("provider_regions".into(), regions.len() as u64);
        if let Some((label, frame)) = records {
            let mapping = match &overrides.mapping {
                Some(path) => input::mapping::load_checked(path)?,
                None => recipe.inputs.mapping.clone(),
            };
            let threads = overrides.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let source = crate::periods::RecordSource {
                label: &label,
                frame,
                mapping: &mapping,
                threads,
            };
            let read = self.timer.time("read_and_count", 0, || {
                let read = crate::periods::read_records(&source, &regions)?;
                let n = read.records;
                Ok((read, n))
            })?;
            self.input_rows.insert("activity".into(), read.records);
            if read.waits.is_none() && recipe.stage(StageKind::DidWaits).is_some() {
                return Err(Error::data_hint(
                    &label,
                    None,
                    Some(&mapping.describe("request_date")),
                    "the recipe's did_waits stage needs `request_date` or `report_date`, and the \
                     extract has neither"
                        .into(),
                    "add the dates, name the extract's date columns in inputs.mapping, or leave \
                     the did_waits stage out",
                ));
            }
            return Ok((Some(read.months), read.waits));
        }
        let (counts, waits) = self.timer.time("read_provider_months", 0, || {
            let read = match (file, synthetic) {
                (Some(path), _) => (
                    crate::periods::read_provider_months(&path.path, &regions)?,
                    None,
                ),
                (None, Some(spec)) => crate::synthetic::provider_months(spec, &regions)?,
                (None, None) => return Err(Error::Usage("no provider × month counts".into())),
            };
            let n = read.0.tests.len() as u64;
            Ok((read, n))
        })?;
        let key = if file.is_some() {
            "provider_months"
        } else {
            "synthetic_provider_months"
        };
        self.input_rows
            .insert(key.into(), counts.tests.len() as u64);
        if waits.is_none() && recipe.stage(StageKind::DidWaits).is_some() {
            let path = file
                .as_ref()
                .map(|f| f.path.clone())
                .or_else(|| synthetic.as_ref().map(|s| s.config.path.clone()));
            return Err(Error::data_hint(
                &path.unwrap_or_default(),
                None,
                None,
                "the recipe's did_waits stage needs DID waits, and provider × month counts have \
                 none"
                    .into(),
                "give record-level activity with request_date or report_date (--activity), \
                 give the synthetic pair [[waits]] spans, or leave the did_waits stage out",
            ));
        }
        Ok((Some(counts), waits))
    }

    /// The synthetic year's generator, calibrated once for both its population and its records.
    fn synthetic_generator(&mut self, source: &Source) -> Result<Option<strata_synth::Generator>> {
        match source {
            Source::Synthetic(spec) => {
                let generator = self.timer.time("synthetic_calibration", 0, || {
                    Ok((crate::synthetic::generator(spec)?, 0))
                })?;
                self.synthetic_sampling = Some(generator.config().count_sampling);
                self.synthetic_area_totals = generator.config().area_totals_from_annex;
                Ok(Some(generator))
            }
            _ => Ok(None),
        }
    }

    /// Reads the population into `counts`, from a frame, its file or else the synthetic year;
    /// returns the path (or frame label) its errors and warnings name.
    fn read_population(
        &mut self,
        source: &Source,
        frame: Option<&InputFrame>,
        path: Option<std::path::PathBuf>,
        generator: Option<&strata_synth::Generator>,
        counts: &mut StratifiedCounts,
        shape: &DerivationShape,
    ) -> Result<std::path::PathBuf> {
        let (n, label) = match (path, source) {
            (_, _) if frame.is_some() => {
                let frame = frame.ok_or_else(|| Error::Usage("no population frame".into()))?;
                let n = self.timer.time("population", 0, || {
                    let n = input::population_from_frame(frame, counts, shape)?;
                    Ok((n, n as u64))
                })?;
                (n, std::path::PathBuf::from(&frame.label))
            }
            (Some(path), _) => {
                let n = self.timer.time("population", 0, || {
                    let n = input::read_population(&path, counts, shape)?;
                    Ok((n, n as u64))
                })?;
                (n, path)
            }
            (None, Source::Synthetic(spec)) => {
                let generator = generator.ok_or_else(|| Error::Usage("no generator".into()))?;
                let practice_areas = if spec.areas_from_practices {
                    let path = self
                        .prepared
                        .recipe
                        .inputs
                        .practices
                        .as_ref()
                        .map(|p| p.path.clone())
                        .ok_or_else(|| {
                            Error::Usage(
                                "inputs.synthetic.areas_from_practices needs input `practices`"
                                    .into(),
                            )
                        })?;
                    Some(input::read_practices(&path, &counts.areas)?)
                } else {
                    None
                };
                let n = self.timer.time("population", 0, || {
                    let n = crate::synthetic::population_into(
                        generator,
                        spec,
                        practice_areas.as_ref(),
                        counts,
                        shape,
                    )?;
                    Ok((n, n as u64))
                })?;
                (n, spec.config.clone())
            }
            (None, _) => {
                return Err(Error::Usage(
                    "no population input: give --population (SPEC §3's columns) or, with the \
                     recipe's practice_imd_mix, --practice-population (NHS Digital's practice file)"
                        .into(),
                ));
            }
        };
        self.input_rows.insert("population".into(), n as u64);
        Ok(label)
    }

    /// Reads NHS Digital's practice population file into `counts` through the recipe's practice
    /// map, each practice's IMD mix from the recipe's `practice_imd_mix`; practices on one side
    /// only are counted in the manifest and warned of, not dropped silently.
    fn read_practice_population(
        &mut self,
        path: std::path::PathBuf,
        counts: &mut StratifiedCounts,
        shape: &DerivationShape,
    ) -> Result<std::path::PathBuf> {
        let inputs = &self.prepared.recipe.inputs;
        let need = |input: &Option<crate::recipe::InputPath>, key: &str| {
            input.as_ref().map(|p| p.path.clone()).ok_or_else(|| {
                Error::Usage(format!(
                    "a practice population needs the recipe's input `{key}`"
                ))
            })
        };
        let practices = need(&inputs.practices, "practices")?;
        let imd_mix = need(&inputs.practice_imd_mix, "practice_imd_mix")?;
        let imd_mix_areas = need(&inputs.practice_imd_areas, "practice_imd_areas")?;
        let practice_areas = input::read_practices(&practices, &counts.areas)?;
        let files = input::practice_population::PracticePopulationFiles {
            file: &path,
            imd_mix: &imd_mix,
            imd_mix_areas: &imd_mix_areas,
        };
        let read = self.timer.time("population", 0, || {
            let read = input::practice_population::read(files, &practice_areas, counts, shape)?;
            let rows = read.rows as u64;
            Ok((read, rows))
        })?;
        self.input_rows
            .insert("practice_population".into(), read.rows as u64);
        self.input_rows.insert(
            "practice_population_practices".into(),
            read.practices as u64,
        );
        self.input_rows.insert(
            "practice_population_unmapped_practices".into(),
            read.unmapped.len() as u64,
        );
        self.input_rows.insert(
            "practice_population_practices_without_rows".into(),
            read.without_rows as u64,
        );
        if let Some(warning) = read.warning(&path) {
            self.warnings.push(warning);
        }
        Ok(path)
    }

    /// Reads aggregated counts into `counts` and answers `None`, or answers the record-level
    /// activity (an extract or the synthetic year) for [`Phases::record_level`].
    fn activity_input<'s>(
        &mut self,
        source: &'s Source,
        overrides: &'s InputOverrides,
        mapping: &'s input::mapping::InputMapping,
        generator: Option<&'s strata_synth::Generator>,
        counts: &mut StratifiedCounts,
        shape: &DerivationShape,
    ) -> Result<Option<ActivityInput<'s>>> {
        match source {
            Source::Activity(path) => Ok(Some(ActivityInput::File(
                path,
                overrides.threads,
                mapping,
                overrides.activity_frame.as_ref(),
            ))),
            Source::Synthetic(spec) => Ok(Some(ActivityInput::Synthetic(
                generator.ok_or_else(|| Error::Usage("no generator".into()))?,
                spec,
            ))),
            Source::Counts(path) => {
                let n = self.timer.time("read_counts", 0, || {
                    let n = match &overrides.counts_frame {
                        Some(frame) => input::counts_from_frame(frame, counts, shape)?,
                        None => input::read_counts(path, counts, shape)?,
                    };
                    Ok((n, n as u64))
                })?;
                self.input_rows.insert("counts".into(), n as u64);
                Ok(None)
            }
        }
    }

    /// Counts record-level activity into `counts`; answers the data-quality cube, which only
    /// record-level input has (grossed up to a full year for a synthetic year at a smaller scale).
    fn record_level(
        &mut self,
        source: &Source,
        activity: &ActivityInput,
        areas: &[Area],
        shape: &DerivationShape,
        counts: &mut StratifiedCounts,
    ) -> Result<QualityInput> {
        let (mut quality, records) = record_level_stream(
            self.prepared,
            activity,
            areas,
            shape,
            counts,
            &mut self.timer,
            &mut self.warnings,
        )?;
        let key = if matches!(source, Source::Synthetic(_)) {
            "synthetic"
        } else {
            "activity"
        };
        self.input_rows.insert(key.into(), records);
        if let Source::Synthetic(spec) = source {
            // A synthetic year at scale s stands for a full year: data-quality counts are grossed up
            // by 1/s so the recipe's count thresholds (e.g. 10,000 tests) mean what they say.
            for cell in &mut quality.cells {
                cell.tests /= spec.scale;
            }
            if spec.scale < 1.0 {
                self.warnings.push(format!(
                    "synthetic year at scale {}: data-quality counts are grossed up to a full year",
                    spec.scale
                ));
            }
        }
        Ok(quality)
    }

    /// The quality cube counted elsewhere (`--quality`, from `strata sql`), for the board's
    /// data-quality and exclusions tables as a record-level run makes them; none without it.
    fn pushed_down_quality(
        &mut self,
        path: Option<&std::path::Path>,
        areas: &[Area],
    ) -> Result<Option<QualityInput>> {
        let Some(path) = path else {
            return Ok(None);
        };
        let names = match &self.prepared.recipe.inputs.providers {
            Some(p) => input::read_providers(&p.path)?,
            None => HashMap::new(),
        };
        let quality = crate::sql::read_quality(path, &names, areas)?;
        self.input_rows
            .insert("quality".into(), quality.cells.len() as u64);
        Ok(Some(quality))
    }

    /// Runs the recipe's stages in the order their slots decide ([`crate::board::schedule`]). A
    /// stage the source cannot feed (data quality, from aggregated counts) does not run.
    fn run_board(&mut self, board: &mut Board, context: Option<&BoardContext>) -> Result<()> {
        let (order, _) = crate::board::schedule(&self.prepared.methods.kinds(), &board.given());
        for kind in order {
            self.run_stage(kind, board, context)?;
        }
        Ok(())
    }

    /// One stage on the board: what it takes, its method, what it gives. This match is the one
    /// place a stage kind is registered with the engine.
    fn run_stage(
        &mut self,
        kind: StageKind,
        board: &mut Board,
        context: Option<&BoardContext>,
    ) -> Result<()> {
        // Only the stages that take activity counts or the quality cube need the context, and
        // they run only when the stratified input gave them.
        let context =
            || context.ok_or_else(|| Error::Usage(format!("stage `{kind}` ran without its input")));
        match kind {
            StageKind::Exclusions => self.exclusions(board, context()?),
            StageKind::Standardisation => self.standardisation(board),
            StageKind::ConfidenceInterval => self.confidence_interval(board),
            StageKind::Factors => self.factors(board),
            StageKind::Ratio => self.ratio(board),
            StageKind::Significance => self.significance(board),
            StageKind::Summary => self.summary(board),
            StageKind::Overdispersion => self.overdispersion(board),
            StageKind::DataQuality => self.data_quality(board, &context()?.source),
            StageKind::PeriodComparison => self.period_comparison(board),
            StageKind::WaitingTimes => self.waiting_times(board),
            StageKind::SettingShare => self.setting_share(board),
            StageKind::DidWaits => self.did_waits(board),
            StageKind::Disclosure => self.disclosure(board),
            // The reading pass calls them.
            StageKind::Attribution | StageKind::Derivation => Ok(()),
        }
    }

    /// The data-quality stage's tables from the cube.
    fn data_quality(&mut self, board: &mut Board, source: &Source) -> Result<()> {
        let prepared = self.prepared;
        let dq = configured(prepared.methods.data_quality(), StageKind::DataQuality)?;
        let quality = given(&board.quality, StageKind::DataQuality, Slot::QualityCube)?;
        let source_label = match source {
            Source::Activity(path) => path.clone(),
            Source::Synthetic(spec) => spec.config.clone(),
            Source::Counts(path) => path.clone(),
        };
        // Cells dated outside the year carry month `strata_api::OUTSIDE_YEAR`: the stage
        // decides what they mean (Annex A leaves them out of its monthly tables and refuses a
        // year with too many).
        let tables = self
            .timer
            .time("data_quality", quality.cells.len() as u64, || {
                let t = dq.tables(quality).map_err(|mut e| {
                    // Its checks are of the activity extract: name the file for it.
                    e.message = format!("{}: {}", source_label.display(), e.message);
                    method_error(StageKind::DataQuality, prepared, e)
                })?;
                let n = t.iter().map(|t| t.rows.len() as u64).sum();
                Ok((t, n))
            })?;
        board.give_tables(Slot::DataQualityTables, tables);
        Ok(())
    }

    /// The exclusions stage: the counts every later stage uses, over the known categories; the
    /// `exclusions` table from the cube, by the reasons the rule still excludes; the stratum
    /// tables if the recipe asks.
    fn exclusions(&mut self, board: &mut Board, context: &BoardContext) -> Result<()> {
        let prepared = self.prepared;
        let rule = configured(prepared.methods.exclusions(), StageKind::Exclusions)?;
        let counts = given(
            &board.activity_counts,
            StageKind::Exclusions,
            Slot::ActivityCounts,
        )?;
        let kept = self
            .timer
            .time("exclusions", counts.tests.len() as u64, || {
                let kept = apply_exclusions(rule, counts, &context.shape)
                    .map_err(|e| method_error(StageKind::Exclusions, prepared, e))?;
                let n = kept.tests.len() as u64;
                Ok((kept, n))
            })?;
        check_population_covers_tests(
            &kept,
            &context.population_path,
            &context.areas_path,
            &mut self.warnings,
        )?;
        if let Some(quality) = &board.quality {
            let table = exclusions_table(quality, rule.excluded());
            board.give_tables(Slot::ExclusionsTable, vec![table]);
        }
        if prepared.recipe.write_stratum_counts {
            let tables = vec![stratum_counts_table(&kept), population_table(&kept)];
            board.give_tables(Slot::StratumTables, tables);
        }
        board.counts = Some(kept);
        Ok(())
    }

    /// Runs one stage's method under the timer (the stage's key names its record), its error
    /// named by the stage and plugin; `rows_out` counts what it answered.
    fn stage<T>(
        &mut self,
        kind: StageKind,
        rows_in: usize,
        method: impl FnOnce() -> std::result::Result<T, strata_api::MethodError>,
        rows_out: impl FnOnce(&T) -> usize,
    ) -> Result<T> {
        let prepared = self.prepared;
        self.timer.time(kind.key(), rows_in as u64, || {
            let value = method().map_err(|e| method_error(kind, prepared, e))?;
            let n = rows_out(&value) as u64;
            Ok((value, n))
        })
    }

    /// Area and national standardised rates, and the `national_rates` table.
    fn standardisation(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Standardisation;
        let method = configured(self.prepared.methods.standardisation(), kind)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let rates = self.stage(
            kind,
            counts.tests.len(),
            || {
                method
                    .standardise(counts)
                    .and_then(|r| in_unit(r.rate_per, counts).map(|()| r))
            },
            |r| r.areas.len(),
        )?;
        let table = national_rates_table(counts, &rates);
        board.give_tables(Slot::NationalRatesTable, vec![table]);
        board.rates = Some(rates);
        Ok(())
    }

    /// The `area_rates` table, with the method's confidence limits.
    fn confidence_interval(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::ConfidenceInterval;
        let methods = &self.prepared.methods;
        let method = configured(methods.confidence_interval(), kind)?;
        let standardisation = configured(methods.standardisation(), StageKind::Standardisation)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let rates = given(&board.rates, kind, Slot::Rates)?;
        let mut table = self.stage(
            kind,
            rates.areas.len(),
            || area_rates_table(method, counts, rates, standardisation.method_name()),
            |t| t.rows.len(),
        )?;
        if let Some(path) = self.prepared.recipe.inputs.areas.as_ref().map(|p| &p.path)
            && let Some(parents) = input::read_area_parents(path)?
        {
            with_parents(&mut table, counts, &parents);
        }
        board.give_tables(Slot::AreaRatesTable, vec![table]);
        Ok(())
    }

    /// Each factor category's rate, standardised for the other factors.
    fn factors(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Factors;
        let method = configured(self.prepared.methods.factors(), kind)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let factor_rates = self.stage(
            kind,
            counts.tests.len(),
            || {
                method
                    .factor_rates(counts)
                    .and_then(|f| in_unit(f.rate_per, counts).map(|()| f))
            },
            |f| f.rows.len(),
        )?;
        board.factor_rates = Some(factor_rates);
        Ok(())
    }

    /// Each category's ratio against its factor × measure's base category.
    fn ratio(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Ratio;
        let method = configured(self.prepared.methods.ratio(), kind)?;
        let factor_rates = given(&board.factor_rates, kind, Slot::FactorRates)?;
        let compared = compared_with_base(factor_rates);
        let (ratios, limits) = self.stage(
            kind,
            compared.len(),
            || {
                let ratios = ratios_of(method, &compared, factor_rates.rate_per)?;
                let limits = ratio_limits_of(method, &compared, factor_rates.rate_per)?;
                Ok((ratios, limits))
            },
            |(ratios, _)| ratios.len(),
        )?;
        board.ratios = Some(ratios);
        board.ratio_limits = limits;
        Ok(())
    }

    /// Significance of each category against its base, and the `factor_ratios` table.
    fn significance(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Significance;
        let methods = &self.prepared.methods;
        let method = configured(methods.significance(), kind)?;
        let ratio = configured(methods.ratio(), StageKind::Ratio)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let factor_rates = given(&board.factor_rates, kind, Slot::FactorRates)?;
        let ratios = given(&board.ratios, kind, Slot::Ratios)?;
        let table = self.stage(
            kind,
            factor_rates.rows.len(),
            || {
                let ratios = RatiosWithLimits {
                    method: ratio,
                    ratios,
                    limits: &board.ratio_limits,
                };
                factor_ratios_table(&ratios, method, counts, factor_rates)
            },
            |t| t.rows.len(),
        )?;
        board.give_tables(Slot::FactorRatiosTable, vec![table]);
        Ok(())
    }

    /// The per-measure summary of the spread of area rates.
    fn summary(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Summary;
        let method = configured(self.prepared.methods.summary(), kind)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let rates = given(&board.rates, kind, Slot::Rates)?;
        let table = self.stage(
            kind,
            rates.areas.len(),
            || method.summarise(counts, rates),
            |t| t.rows.len(),
        )?;
        board.give_tables(Slot::SummaryTable, vec![table]);
        Ok(())
    }

    /// The overdispersion stage's tables from the area rates.
    fn overdispersion(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::Overdispersion;
        let method = configured(self.prepared.methods.overdispersion(), kind)?;
        let counts = given(&board.counts, kind, Slot::Counts)?;
        let rates = given(&board.rates, kind, Slot::Rates)?;
        let tables = self.stage(
            kind,
            rates.areas.len(),
            || method.tables(counts, rates),
            |t| t.iter().map(|t| t.rows.len()).sum(),
        )?;
        board.give_tables(Slot::OverdispersionTables, tables);
        Ok(())
    }

    /// The `period_comparison` table: the recipe's two periods by provider, region and England,
    /// with the method's ratio of their counts.
    fn period_comparison(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::PeriodComparison;
        let method = configured(self.prepared.methods.period_comparison(), kind)?;
        let counts = given(&board.provider_months, kind, Slot::ProviderMonths)?;
        let (a, b) = self.prepared.recipe.comparison.as_ref().ok_or_else(|| {
            Error::Usage("stage `period_comparison` needs the recipe's `[comparison]`".into())
        })?;
        let table = self.stage(
            kind,
            counts.tests.len(),
            || crate::periods::period_comparison_table(method, counts, a, b),
            |t| t.rows.len(),
        )?;
        board.give_tables(Slot::PeriodComparisonTable, vec![table]);
        Ok(())
    }

    /// The waiting-times stage's tables from the DM01 waiting lists.
    fn waiting_times(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::WaitingTimes;
        let method = configured(self.prepared.methods.waiting_times(), kind)?;
        let lists = given(&board.waiting_lists, kind, Slot::WaitingLists)?;
        let tables = self.stage(
            kind,
            lists.rows.len(),
            || method.tables(lists),
            |t| t.iter().map(|t| t.rows.len()).sum(),
        )?;
        board.give_tables(Slot::WaitsTables, tables);
        Ok(())
    }

    /// The setting-share stage's tables from the setting's activity and DM01 activity.
    fn setting_share(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::SettingShare;
        let method = configured(self.prepared.methods.setting_share(), kind)?;
        let lists = given(&board.waiting_lists, kind, Slot::WaitingLists)?;
        let activity = given(&board.setting_activity, kind, Slot::SettingActivity)?;
        let input = strata_api::SettingShareInput {
            sites: activity.sites.clone(),
            activity: activity.activity.clone(),
            listed_sites: activity.listed_sites.clone(),
            provider_icbs: lists
                .providers
                .iter()
                .map(|p| {
                    activity
                        .provider_icbs
                        .get(&p.code)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect(),
            icbs: activity.icbs.clone(),
            dm01: lists.clone(),
        };
        let tables = self.stage(
            kind,
            input.activity.len() + input.dm01.rows.len(),
            || method.tables(&input),
            |t| t.iter().map(|t| t.rows.len()).sum(),
        )?;
        board.give_tables(Slot::SettingShareTables, tables);
        Ok(())
    }

    /// The DID-waits stage's tables from the days between record dates.
    fn did_waits(&mut self, board: &mut Board) -> Result<()> {
        let kind = StageKind::DidWaits;
        let method = configured(self.prepared.methods.did_waits(), kind)?;
        let days = given(&board.wait_days, kind, Slot::WaitDays)?;
        let tables = self.stage(
            kind,
            days.histograms.len(),
            || method.tables(days),
            |t| t.iter().map(|t| t.rows.len()).sum(),
        )?;
        board.give_tables(Slot::DidWaitsTables, tables);
        Ok(())
    }

    /// Disclosure control over every table: each table's stage declared its counts.
    fn disclosure(&mut self, board: &mut Board) -> Result<()> {
        let prepared = self.prepared;
        let kind = StageKind::Disclosure;
        let method = configured(prepared.methods.disclosure(), kind)?;
        let tables = board.tables.values().map(Vec::len).sum::<usize>() as u64;
        self.timer.time("disclosure", tables, || {
            let mut changed = 0;
            for t in board.tables_mut() {
                let count_columns = t.counts.clone();
                changed += method
                    .protect(t, &count_columns)
                    .map_err(|e| method_error(kind, prepared, e))?;
            }
            Ok((changed, changed as u64))
        })?;
        Ok(())
    }
}

/// What the stages of standardised rates may need besides the board: where the activity and the
/// population came from (for messages) and the derivation's shape.
struct BoardContext {
    source: Source,
    shape: DerivationShape,
    population_path: std::path::PathBuf,
    areas_path: std::path::PathBuf,
}

/// Rates a stage returns are per the counts' (the recipe's) unit: a method that scaled by another
/// would print numbers under the wrong title.
fn in_unit(
    rate_per: f64,
    counts: &StratifiedCounts,
) -> std::result::Result<(), strata_api::MethodError> {
    if rate_per == counts.rate_per {
        Ok(())
    } else {
        Err(strata_api::MethodError::new(format!(
            "returned rates per {} people for counts whose rates are per {} (the recipe's \
             `rate_per`)",
            strata_api::rate_per_text(rate_per),
            strata_api::rate_per_text(counts.rate_per)
        )))
    }
}

/// A scheduled stage's method. The scheduler runs only configured kinds; the error is a guard.
fn configured<T: ?Sized>(method: Option<&T>, kind: StageKind) -> Result<&T> {
    method.ok_or_else(|| Error::Usage(format!("stage `{kind}` ran without a method")))
}

/// A slot a scheduled stage takes. The scheduler runs a stage only after its slots are given;
/// the error is a guard.
fn given<T>(value: &Option<T>, kind: StageKind, slot: Slot) -> Result<&T> {
    value
        .as_ref()
        .ok_or_else(|| Error::Usage(format!("stage `{kind}` ran before {slot} was given")))
}

/// Runs the exclusions stage, checking it returns counts over the derivation's known categories
/// with the same areas and measures.
fn apply_exclusions(
    rule: &dyn ExclusionRule,
    counts: &StratifiedCounts,
    shape: &DerivationShape,
) -> std::result::Result<StratifiedCounts, strata_api::MethodError> {
    let mut kept = rule.apply(counts)?;
    // The unit is the recipe's, whatever the rule's counts say.
    kept.rate_per = counts.rate_per;
    if kept.dimensions != input::dimensions(shape)
        || kept.areas != counts.areas
        || kept.measures != counts.measures
        || kept.tests.len() != kept.measures.len() * kept.areas.len() * kept.cells()
        || kept.population.len() != kept.areas.len() * kept.cells()
    {
        return Err(strata_api::MethodError::new(
            "returned counts of another shape: the known categories of every dimension, and the \
             same areas and measures, are expected",
        ));
    }
    if let Some(bad) = kept.tests.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        return Err(strata_api::MethodError::new(format!(
            "returned a count of {bad}: counts are finite and not negative"
        )));
    }
    Ok(kept)
}

/// A stratum with tests but no population adds to observed and nothing to expected; too many
/// such tests mean the population does not match the activity.
fn check_population_covers_tests(
    counts: &StratifiedCounts,
    population_path: &std::path::Path,
    areas_path: &std::path::Path,
    warnings: &mut Vec<String>,
) -> Result<()> {
    for (a, area) in counts.areas.iter().enumerate() {
        let pop: f64 = counts.population_of(a).iter().sum();
        let tests: f64 = (0..counts.measures.len())
            .map(|m| counts.tests_of(m, a).iter().sum::<f64>())
            .sum();
        // Every area is published: one without population has no rate, with tests or without.
        if pop == 0.0 {
            return Err(Error::data_hint(
                population_path,
                None,
                Some("area_code"),
                format!(
                    "area `{}` (of {}) has {tests} tests but no population (no rows, or only \
                     zeros)",
                    area.code,
                    areas_path.display()
                ),
                "the population file must cover every area of the areas file; a rate needs a \
                 population",
            ));
        }
    }
    let mut orphan = 0.0;
    let mut total = 0.0;
    let cells = counts.cells();
    for m in 0..counts.measures.len() {
        for a in 0..counts.areas.len() {
            let pop = counts.population_of(a);
            for (c, t) in counts.tests_of(m, a).iter().enumerate().take(cells) {
                total += t;
                if pop[c] == 0.0 {
                    orphan += t;
                }
            }
        }
    }
    if orphan > 0.0 {
        warnings.push(format!(
            "{orphan} of {total} tests fall in strata with zero population: counted in observed, \
             adding nothing to expected"
        ));
    }
    Ok(())
}

/// Where record-level activity comes from.
enum ActivityInput<'a> {
    /// An extract (a file, or a frame in memory with its label), the threads that read it
    /// (`None`: every core) and the mapping it is read through.
    File(
        &'a std::path::Path,
        Option<usize>,
        &'a input::mapping::InputMapping,
        Option<&'a InputFrame>,
    ),
    Synthetic(
        &'a strata_synth::Generator,
        &'a crate::synthetic::SyntheticSpec,
    ),
}

/// The reference lookups record-level activity is resolved against.
pub(crate) struct References {
    pub(crate) practices: HashMap<String, u32>,
    pub(crate) non_english: std::collections::HashSet<String>,
    pub(crate) lsoas: HashMap<String, input::LsoaInfo>,
    pub(crate) exam_codes: Vec<(String, String)>,
    pub(crate) provider_names: HashMap<String, String>,
}

impl References {
    pub(crate) fn read(recipe: &Recipe, areas: &[Area]) -> Result<References> {
        let required = |p: &Option<crate::recipe::InputPath>, what: &str| {
            p.as_ref()
                .map(|p| p.path.clone())
                .ok_or_else(|| Error::Usage(format!("record-level activity needs input `{what}`")))
        };
        let practices =
            input::read_practices(&required(&recipe.inputs.practices, "practices")?, areas)?;
        let non_english = match &recipe.inputs.non_english_practices {
            Some(p) => input::read_non_english(&p.path)?,
            None => Default::default(),
        };
        // A practice in both lists would be attributed by whichever is looked at first.
        if let (Some(list), Some(code)) = (
            &recipe.inputs.non_english_practices,
            non_english
                .iter()
                .filter(|c| practices.contains_key(*c))
                .min(),
        ) {
            return Err(Error::data_hint(
                &list.path,
                None,
                Some("practice_code"),
                format!(
                    "practice `{code}` is also in the English practice map ({})",
                    recipe
                        .inputs
                        .practices
                        .as_ref()
                        .map(|p| p.path.display().to_string())
                        .unwrap_or_default()
                ),
                "a practice is English or not: remove it from one of the two lists",
            ));
        }
        let lsoas = input::read_lsoa(
            &required(&recipe.inputs.lsoa, "lsoa")?,
            &required(&recipe.inputs.imd, "imd")?,
            areas,
        )?;
        let exam_codes = match &recipe.inputs.exam_codes {
            Some(p) => input::read_exam_codes(&p.path)?,
            None => Vec::new(),
        };
        let provider_names = match &recipe.inputs.providers {
            Some(p) => input::read_providers(&p.path)?,
            None => HashMap::new(),
        };
        Ok(References {
            practices,
            non_english,
            lsoas,
            exam_codes,
            provider_names,
        })
    }
}

/// Runs the derivation plugin, naming the exam-code list in its errors and checking it answers
/// one value per value.
fn derive_checked(prepared: &Prepared, input: &DerivationInput) -> Result<strata_api::Derived> {
    let recipe = &prepared.recipe;
    let d = prepared.methods.derivation()?.derive(input).map_err(|mut e| {
        // The rules see the exam-code list's rows, not its file: name the file for them.
        if let Some(list) = &recipe.inputs.exam_codes
            && e.kind == strata_api::MethodErrorKind::ExamCodeList
        {
            e.message = format!(
                "{}: {} (hint: fix the list, or the recipe's measure keys if the list is right)",
                list.path.display(),
                e.message
            );
        }
        method_error(StageKind::Derivation, prepared, e)
    })?;
    if d.sex.len() != input.sex_values.len()
        || d.age_band.len() != input.ages.len()
        || d.imd_quintile.len() != input.imd_deciles.len()
        || d.measures.len() != input.modality_exams.len()
    {
        return Err(method_error(
            StageKind::Derivation,
            prepared,
            strata_api::MethodError::new("returned a different number of values than it was given"),
        ));
    }
    Ok(d)
}

/// Record-level activity in one streaming pass (`input::activity`): attribution of every
/// candidate first, then reading, derivation of each distinct value and counting together.
fn record_level_stream(
    prepared: &Prepared,
    activity: &ActivityInput,
    areas: &[Area],
    shape: &DerivationShape,
    counts: &mut StratifiedCounts,
    timer: &mut Timer,
    warnings: &mut Vec<String>,
) -> Result<(QualityInput, u64)> {
    use input::activity::Pass;
    let recipe = &prepared.recipe;
    // The extract's own problems (columns, header, types) come before those of the lookups.
    let extract = match activity {
        ActivityInput::File(path, _, mapping, None) => {
            Some(input::extract::Extract::open(path, mapping)?)
        }
        ActivityInput::File(label, _, mapping, Some(frame)) => Some(
            input::extract::Extract::from_batches(label, frame.batches.clone(), mapping)?,
        ),
        ActivityInput::Synthetic(..) => None,
    };
    let references = References::read(recipe, areas)?;
    if prepared.methods.attribution().is_none() {
        return Err(Error::Usage(
            "record-level activity needs stage `attribution`".into(),
        ));
    }
    // The pass hands the derivation each new value once, with the exam-code list, and the
    // attribution each new practice class × LSOA area once.
    let derive = |input: &DerivationInput| derive_checked(prepared, input);
    let attribute =
        |candidates: &[strata_api::AttributionCandidate]| attribute_checked(prepared, candidates);
    let lookups = lookups(&references, areas.len(), activity);
    // Each dimension's last category holds records whose value is not known (the counts'
    // `unknown` category, which the exclusions stage resolves).
    let dims = [
        shape.imd_quintile.categories.len() + 1,
        shape.sex.categories.len() + 1,
        shape.age_band.categories.len() + 1,
    ];
    let pass = Pass::new(
        &lookups,
        &derive,
        &attribute,
        references.exam_codes.clone(),
        shape.measures.len(),
        dims,
        recipe.year_start,
    );
    let result = read_and_count(pass, extract.as_ref(), activity, &mut counts.tests, timer)?;
    // Attribution ran inside the pass: its record goes where the stage order puts it.
    let at = timer.stages.len().saturating_sub(1);
    timer.stages.insert(at, attribution_record(&result));
    timer.stages.push(derivation_record(&result));
    warnings.extend(result.warnings);
    let providers = result
        .providers
        .iter()
        .map(|code| Area {
            code: code.clone(),
            name: references
                .provider_names
                .get(code)
                .cloned()
                .unwrap_or_else(|| code.clone()),
        })
        .collect();
    Ok((
        QualityInput {
            providers,
            areas: areas.to_vec(),
            cells: result.cells,
        },
        result.records,
    ))
}

/// The attribution plugin's call, its answers checked: one per candidate.
fn attribute_checked(
    prepared: &Prepared,
    candidates: &[strata_api::AttributionCandidate],
) -> Result<Vec<strata_api::Attribution>> {
    let attribution = prepared
        .methods
        .attribution()
        .ok_or_else(|| Error::Usage("record-level activity needs stage `attribution`".into()))?;
    let a = attribution
        .attribute(candidates)
        .map_err(|e| method_error(StageKind::Attribution, prepared, e))?;
    if a.len() != candidates.len() {
        return Err(method_error(
            StageKind::Attribution,
            prepared,
            strata_api::MethodError::new("returned a different number of rows than it was given"),
        ));
    }
    Ok(a)
}

/// The attribution's stage record: it ran inside the pass, once per distinct practice class ×
/// LSOA area met, so its rows are those candidates and its time the pass's measure of it.
fn attribution_record(result: &input::activity::PassResult) -> StageRecord {
    let a = &result.attribution;
    StageRecord {
        stage: "attribution".into(),
        rows_in: a.candidates,
        rows_out: a.candidates,
        seconds: a.seconds,
        cpu_seconds: a.cpu_seconds,
        peak_rss_mib: None,
    }
}

/// The lookups the pass resolves codes against, with the extract's value maps.
fn lookups<'a>(
    references: &'a References,
    areas: usize,
    activity: &ActivityInput<'a>,
) -> input::activity::Lookups<'a> {
    input::activity::Lookups {
        practices: &references.practices,
        non_english: &references.non_english,
        lsoas: &references.lsoas,
        areas,
        // The mapping is the extract's: the synthetic year is written in SPEC §3's own codes.
        value_maps: std::array::from_fn(|c| match *activity {
            ActivityInput::File(_, _, mapping, _) => mapping.value_map(input::activity::COLUMNS[c]),
            ActivityInput::Synthetic(..) => None,
        }),
    }
}

/// Reads every record (the extract's on its threads, or the synthetic year's) through the pass
/// and adds the workers' tallies into `tests`; refuses input with no records.
fn read_and_count(
    pass: input::activity::Pass,
    extract: Option<&input::extract::Extract>,
    activity: &ActivityInput,
    tests: &mut [f64],
    timer: &mut Timer,
) -> Result<input::activity::PassResult> {
    let rows_in = extract.and_then(|e| e.rows()).unwrap_or(0);
    let threads = match activity {
        ActivityInput::File(_, threads, ..) => *threads,
        ActivityInput::Synthetic(..) => None,
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let result = timer.time("read_and_count", rows_in, || {
        let tallies = match (extract, activity) {
            (Some(extract), _) => extract.count(&pass, threads)?,
            (None, ActivityInput::Synthetic(generator, spec)) => {
                crate::synthetic::count_records(generator, spec, &pass)?
            }
            (None, ActivityInput::File(path, ..)) => {
                return Err(Error::Usage(format!("{}: not opened", path.display())));
            }
        };
        let result = pass.finish(tallies, tests)?;
        let n = result.records;
        Ok((result, n))
    })?;
    if result.records == 0 {
        let path = match activity {
            ActivityInput::File(path, ..) => path.to_path_buf(),
            ActivityInput::Synthetic(_, spec) => spec.config.clone(),
        };
        return Err(Error::data_hint(
            &path,
            None,
            None,
            "header only: no activity records".into(),
            "the extract is empty or was cut short; rates from no records would all be zero",
        ));
    }
    Ok(result)
}

/// The derivation's stage record: it ran inside the pass, once per distinct value, so its rows
/// are the distinct values and its time the pass's measure of it.
fn derivation_record(result: &input::activity::PassResult) -> StageRecord {
    let distinct = (result.derivation_input.sex_values.len()
        + result.derivation_input.ages.len()
        + result.derivation_input.imd_deciles.len()
        + result.derivation_input.modality_exams.len()) as u64;
    StageRecord {
        stage: "derivation".into(),
        rows_in: distinct,
        rows_out: distinct,
        seconds: result.derive_seconds,
        cpu_seconds: result.derive_cpu_seconds,
        peak_rss_mib: None,
    }
}

/// Exclusions from rates by reason × provider × area (Annex A's raw material), under the
/// exclusions stage's rule: a record without an area always, and one with an unknown value where
/// the rule leaves it out. A record missing several fields counts under each reason; `excluded`
/// counts it once.
fn exclusions_table(quality: &QualityInput, rule: ExcludedUnknowns) -> Table {
    let mut totals: BTreeMap<(String, String, &'static str), f64> = BTreeMap::new();
    for c in &quality.cells {
        let provider = quality.providers[c.provider as usize].code.clone();
        let area = c
            .area
            .map(|a| quality.areas[a as usize].code.clone())
            .unwrap_or_default();
        let mut reasons = Vec::new();
        if c.area.is_none() {
            reasons.push("no_area");
        }
        if c.missing_sex && rule.sex {
            reasons.push("missing_sex");
        }
        if c.missing_age && rule.age_band {
            reasons.push("missing_age");
        }
        if c.missing_imd && rule.imd_quintile {
            reasons.push("missing_imd");
        }
        if !reasons.is_empty() {
            reasons.push("excluded");
        }
        for r in reasons {
            *totals
                .entry((provider.clone(), area.clone(), r))
                .or_insert(0.0) += c.tests;
        }
    }
    let mut t = Table::new(
        "exclusions",
        "Records excluded from rates, by provider, area and reason",
        &["provider_code", "area_code", "reason", "tests"],
    )
    .with_counts(&["tests"]);
    for ((p, a, r), n) in totals {
        t.rows.push(vec![
            Value::Text(p),
            if a.is_empty() {
                Value::Missing
            } else {
                Value::Text(a)
            },
            Value::Text(r.into()),
            Value::Number(n),
        ]);
    }
    t
}

/// Non-zero stratum counts in the aggregated-entry contract, so a run can be repeated from them.
fn stratum_counts_table(counts: &StratifiedCounts) -> Table {
    let mut t = Table::new(
        "stratum_counts",
        "Tests by area, sex, age band, IMD quintile and measure (complete cases)",
        &input::COUNTS_COLUMNS,
    )
    .with_counts(&["tests"]);
    let row = |a: usize, cell: usize, m: usize, tests: f64| {
        let mut row = vec![Value::Text(counts.areas[a].code.clone())];
        row.extend(stratum_labels(counts, cell));
        row.push(Value::Text(counts.measures[m].clone()));
        row.push(Value::Number(tests));
        row
    };
    let mut counted = vec![false; counts.measures.len()];
    for a in 0..counts.areas.len() {
        for (m, seen) in counted.iter_mut().enumerate() {
            for (cell, &tests) in counts.tests_of(m, a).iter().enumerate() {
                if tests != 0.0 {
                    t.rows.push(row(a, cell, m, tests));
                    *seen = true;
                }
            }
        }
    }
    // A measure with no tests anywhere keeps one explicit zero row: the aggregated entry refuses
    // a measure with no rows at all (a query that left it out), and this file must read back.
    for (m, _) in counted.iter().enumerate().filter(|(_, seen)| !**seen) {
        if !counts.areas.is_empty() {
            t.rows.push(row(0, 0, m, 0.0));
        }
    }
    t
}

/// Population in the aggregated-entry contract.
fn population_table(counts: &StratifiedCounts) -> Table {
    let mut t = Table::new(
        "stratum_population",
        "Population by area, sex, age band and IMD quintile",
        &input::POPULATION_COLUMNS,
    )
    .with_counts(&["population"]);
    for (a, area) in counts.areas.iter().enumerate() {
        for (cell, &population) in counts.population_of(a).iter().enumerate() {
            if population != 0.0 {
                let mut row = vec![Value::Text(area.code.clone())];
                row.extend(stratum_labels(counts, cell));
                row.push(Value::Number(population));
                t.rows.push(row);
            }
        }
    }
    t
}

/// `sex, age_band, imd_quintile` labels of a cell (cells are ordered imd × sex × age).
fn stratum_labels(counts: &StratifiedCounts, cell: usize) -> [Value; 3] {
    let coords = counts.cell_coords(cell);
    let label = |d: usize| Value::Text(counts.dimensions[d].categories[coords[d]].clone());
    [label(1), label(2), label(0)]
}

/// National rates by measure, with the standardisation method's name.
fn national_rates_table(counts: &StratifiedCounts, rates: &strata_api::StandardisedRates) -> Table {
    let title = format!(
        "National rates per {} by measure",
        strata_api::rate_per_text(rates.rate_per)
    );
    let mut t = Table::new(
        "national_rates",
        &title,
        &["measure", "observed", "population", "rate", "method"],
    )
    .with_counts(&["observed", "population"]);
    for n in &rates.national {
        t.rows.push(vec![
            Value::Text(counts.measures[n.measure].clone()),
            Value::Number(n.observed),
            Value::Number(n.population),
            Value::Number(n.rate),
            Value::Text(rates.method.clone()),
        ]);
    }
    t
}

/// Adds each area's parent (`parent_code`, `parent_name`, from the areas file) to `area_rates`,
/// so that a parent's areas can be read, charted and protected together.
fn with_parents(table: &mut Table, counts: &StratifiedCounts, parents: &[(String, String)]) {
    let index: HashMap<&str, usize> = counts
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| (a.code.as_str(), i))
        .collect();
    table
        .columns
        .extend(["parent_code".into(), "parent_name".into()]);
    for row in &mut table.rows {
        let parent = match &row[0] {
            Value::Text(code) => index.get(code.as_str()).and_then(|&i| parents.get(i)),
            _ => None,
        };
        match parent {
            Some((code, name)) => {
                row.extend([Value::Text(code.clone()), Value::Text(name.clone())]);
            }
            None => row.extend([Value::Missing, Value::Missing]),
        }
    }
}

/// Area rates with confidence limits; the first configured level fills `ci_lower`/`ci_upper`.
fn area_rates_table(
    ci: &dyn ConfidenceIntervalMethod,
    counts: &StratifiedCounts,
    rates: &strata_api::StandardisedRates,
    standardisation_method: String,
) -> Result<Table, strata_api::MethodError> {
    let limits = checked_limits(ci, rates)?;
    let columns = area_rates_columns(&limits)?;
    let ci_method = ci.method_name();
    let mut t = Table {
        name: "area_rates".into(),
        title: format!(
            "Standardised rates per {} by area and measure",
            strata_api::rate_per_text(rates.rate_per)
        ),
        columns,
        rows: Vec::with_capacity(rates.areas.len()),
        counts: vec!["observed".into(), "population".into()],
    };
    let at = |v: &Vec<f64>, i: usize| {
        v.get(i)
            .copied()
            .map(Value::Number)
            .unwrap_or(Value::Missing)
    };
    for (i, r) in rates.areas.iter().enumerate() {
        let area = &counts.areas[r.area];
        let mut row = vec![
            Value::Text(area.code.clone()),
            Value::Text(area.name.clone()),
            Value::Text(counts.measures[r.measure].clone()),
            Value::Number(r.observed),
            Value::Number(r.expected),
            Value::Number(r.population),
            Value::Number(r.crude_rate),
            Value::Number(r.standardised_rate),
        ];
        match limits.first() {
            Some(l) => {
                row.push(at(&l.lower, i));
                row.push(at(&l.upper, i));
                row.push(Value::Number(l.level));
            }
            None => row.extend([Value::Missing, Value::Missing, Value::Missing]),
        }
        for l in limits.iter().skip(1) {
            row.push(at(&l.lower, i));
            row.push(at(&l.upper, i));
        }
        row.push(Value::Text(ci_method.clone()));
        row.push(Value::Text(standardisation_method.clone()));
        t.rows.push(row);
    }
    Ok(t)
}

/// The method's limits of every area rate, checked to be there and one pair per rate at each
/// level.
fn checked_limits(
    ci: &dyn ConfidenceIntervalMethod,
    rates: &strata_api::StandardisedRates,
) -> Result<Vec<strata_api::Limits>, strata_api::MethodError> {
    let observed = &rates.areas;
    let limits = ci.rate_limits(&rates.areas)?;
    // A method that gives no limits, or limits for other rows, is broken (e.g. a shared-library
    // method whose call failed): fail rather than publish rates without their intervals.
    if !observed.is_empty() && limits.is_empty() {
        return Err(strata_api::MethodError::new(
            "returned no confidence limits",
        ));
    }
    if let Some(l) = limits
        .iter()
        .find(|l| l.lower.len() != observed.len() || l.upper.len() != observed.len())
    {
        return Err(strata_api::MethodError::new(format!(
            "returned {} lower and {} upper limits at level {} for {} rows",
            l.lower.len(),
            l.upper.len(),
            l.level,
            observed.len()
        )));
    }
    Ok(limits)
}

/// `area_rates`' columns: the first level's limits unsuffixed, each further level's suffixed by
/// its percent (`ci_lower_99_8`), refusing two levels that print alike.
fn area_rates_columns(
    limits: &[strata_api::Limits],
) -> Result<Vec<String>, strata_api::MethodError> {
    let mut columns: Vec<String> = [
        "area_code",
        "area_name",
        "measure",
        "observed",
        "expected",
        "population",
        "crude_rate",
        "standardised_rate",
        "ci_lower",
        "ci_upper",
        "ci_level",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (i, l) in limits.iter().enumerate().skip(1) {
        let tag = level_tag(l.level);
        // Levels that print alike (0.95 and 0.9501) would give two columns of one name.
        if let Some(other) = limits[..i].iter().find(|o| level_tag(o.level) == tag) {
            return Err(strata_api::MethodError::new(format!(
                "levels {} and {} both print as {tag}%: give levels that differ in the first \
                 decimal of a percent",
                other.level, l.level
            )));
        }
        columns.push(format!("ci_lower_{tag}"));
        columns.push(format!("ci_upper_{tag}"));
    }
    columns.push("ci_method".into());
    columns.push("standardisation_method".into());
    Ok(columns)
}

/// `0.998` → `99_8`, `0.95` → `95`.
fn level_tag(level: f64) -> String {
    let pct = format!("{}", (level * 1000.0).round() / 10.0);
    pct.replace('.', "_")
}

/// What the ratio stage gave: its method, one ratio per comparison of [`compared_with_base`],
/// and the method's limits of them (one per level; none when the recipe asks for none).
struct RatiosWithLimits<'a> {
    method: &'a dyn RatioMethod,
    ratios: &'a [strata_api::RatioValue],
    limits: &'a [strata_api::Limits],
}

/// `factor_ratios`' columns; the ratio's limits only when its method gives them, the first
/// level's unsuffixed (`ratio_ci_lower`, `ratio_ci_upper`, `ratio_ci_level`) and each further
/// level's suffixed by its percent (`ratio_ci_lower_99_8`), as `area_rates` names them.
fn factor_ratios_columns(
    limits: &[strata_api::Limits],
) -> Result<Vec<String>, strata_api::MethodError> {
    let mut columns: Vec<String> = [
        "factor",
        "category",
        "category_code",
        "measure",
        "observed",
        "expected",
        "standardised_rate",
        "ratio",
        "ratio_method",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !limits.is_empty() {
        columns.extend(["ratio_ci_lower", "ratio_ci_upper", "ratio_ci_level"].map(String::from));
        for (i, l) in limits.iter().enumerate().skip(1) {
            let tag = level_tag(l.level);
            if limits[..i].iter().any(|o| level_tag(o.level) == tag) {
                return Err(strata_api::MethodError::new(format!(
                    "two levels of the ratios' limits both print as {tag}%"
                )));
            }
            columns.push(format!("ratio_ci_lower_{tag}"));
            columns.push(format!("ratio_ci_upper_{tag}"));
        }
        columns.push("ratio_ci_method".into());
    }
    columns.extend(
        [
            "statistic",
            "p_value",
            "stars",
            "significance_method",
            "note",
            "factor_method",
        ]
        .map(String::from),
    );
    Ok(columns)
}

/// The limit cells of comparison `shown` (none for a base category, whose ratio is 1 by
/// definition): the first level's lower, upper and level, then each further level's pair, then
/// the limits' method.
fn ratio_limit_cells(ratios: &RatiosWithLimits, shown: usize, is_base: bool) -> Vec<Value> {
    let Some(first) = ratios.limits.first() else {
        return Vec::new();
    };
    let at = |v: &Vec<f64>| {
        if is_base {
            Value::Missing
        } else {
            v.get(shown)
                .copied()
                .map(Value::finite)
                .unwrap_or(Value::Missing)
        }
    };
    let mut cells = vec![
        at(&first.lower),
        at(&first.upper),
        Value::Number(first.level),
    ];
    for l in ratios.limits.iter().skip(1) {
        cells.push(at(&l.lower));
        cells.push(at(&l.upper));
    }
    cells.push(Value::Text(
        ratios.method.limits_method().unwrap_or_default(),
    ));
    cells
}

/// Ratios against each factor's base category (the ratio stage's, one per comparison of
/// [`compared_with_base`]) with their limits when the ratio method gives them, significance, and
/// the recipe's fallbacks.
fn factor_ratios_table(
    given: &RatiosWithLimits,
    significance: &dyn SignificanceMethod,
    counts: &StratifiedCounts,
    factors: &strata_api::FactorRates,
) -> Result<Table, strata_api::MethodError> {
    let columns = factor_ratios_columns(given.limits)?;
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "factor_ratios",
        "Factor ratios: each category against the base, standardised for the other factors",
        &columns,
    )
    .with_counts(&["observed"]);
    let compared = compared_with_base(factors);
    let tests = tests_of(significance, &compared, factors.rate_per)?;
    let ratios = given.ratios;
    if ratios.len() != compared.len() {
        return Err(strata_api::MethodError::new(format!(
            "was given {} ratios for {} comparisons",
            ratios.len(),
            compared.len()
        )));
    }
    let ratio_method = given.method.method_name();
    let significance_method = significance.method_name();
    for (i, (_, r)) in compared.iter().enumerate() {
        // A stand-in is reported in the row of the category it replaces, never on its own.
        if r.fallback_for.is_some() {
            continue;
        }
        let (shown, note) = shown_comparison(&compared, ratios, i);
        let (_, row) = compared[shown];
        let is_base = r.is_base;
        let mut cells = vec![
            Value::Text(r.factor.clone()),
            // A stand-in fills the row of the category it replaces, as the publication prints it.
            Value::Text(row.category.clone()),
            Value::Text(r.code.clone()),
            Value::Text(counts.measures[r.measure].clone()),
            Value::Number(row.observed),
            Value::Number(row.expected),
            Value::Number(row.standardised_rate),
            ratios[shown]
                .value
                .map(Value::Number)
                .unwrap_or(Value::Missing),
            Value::Text(ratio_method.clone()),
        ];
        cells.extend(ratio_limit_cells(given, shown, is_base));
        cells.extend([
            if is_base {
                Value::Missing
            } else {
                Value::finite(tests[shown].statistic)
            },
            if is_base {
                Value::Missing
            } else {
                Value::finite(tests[shown].p_value)
            },
            Value::Text(if is_base {
                String::new()
            } else {
                tests[shown].stars.clone()
            }),
            Value::Text(significance_method.clone()),
            Value::Text(note.unwrap_or_default()),
            Value::Text(factors.method.clone()),
        ]);
        t.rows.push(cells);
    }
    Ok(t)
}

/// Every factor rate paired with its factor × measure's base row (base first); a rate whose
/// factor × measure has no base row is left out.
fn compared_with_base(factors: &strata_api::FactorRates) -> Vec<(&FactorRate, &FactorRate)> {
    let base: HashMap<(&str, usize), &FactorRate> = factors
        .rows
        .iter()
        .filter(|r| r.is_base)
        .map(|r| ((r.factor.as_str(), r.measure), r))
        .collect();
    factors
        .rows
        .iter()
        .filter_map(|r| base.get(&(r.factor.as_str(), r.measure)).map(|b| (*b, r)))
        .collect()
}

/// The ratio method over every comparison (rates per `rate_per` people, base first), checked to
/// answer one row per comparison.
fn ratios_of(
    ratio: &dyn RatioMethod,
    compared: &[(&FactorRate, &FactorRate)],
    rate_per: f64,
) -> Result<Vec<strata_api::RatioValue>, strata_api::MethodError> {
    let ratios = ratio.ratios(
        &compared
            .iter()
            .map(|(b, _)| b.standardised_rate)
            .collect::<Vec<_>>(),
        &compared
            .iter()
            .map(|(_, r)| r.standardised_rate)
            .collect::<Vec<_>>(),
        rate_per,
    )?;
    check_rows(ratios.len(), compared.len())?;
    Ok(ratios)
}

/// The ratio method's confidence limits over every comparison (none when it gives none),
/// checked to hold one pair per comparison at each level.
fn ratio_limits_of(
    ratio: &dyn RatioMethod,
    compared: &[(&FactorRate, &FactorRate)],
    rate_per: f64,
) -> Result<Vec<strata_api::Limits>, strata_api::MethodError> {
    if ratio.limits_method().is_none() {
        return Ok(Vec::new());
    }
    let limits = ratio.limits(&comparisons(compared, rate_per))?;
    if limits.is_empty() {
        return Err(strata_api::MethodError::new(
            "names a limits method but returned no limits",
        ));
    }
    for l in &limits {
        check_rows(l.lower.len().min(l.upper.len()), compared.len())?;
        check_rows(l.lower.len().max(l.upper.len()), compared.len())?;
    }
    Ok(limits)
}

/// The comparisons a ratio's limits and a significance test take, one per pair (base first).
fn comparisons(compared: &[(&FactorRate, &FactorRate)], rate_per: f64) -> Vec<Comparison> {
    compared
        .iter()
        .map(|(b, r)| Comparison {
            base_rate: b.standardised_rate,
            comparison_rate: r.standardised_rate,
            base_observed: b.observed,
            comparison_observed: r.observed,
            base_expected: b.expected,
            comparison_expected: r.expected,
            rate_per,
        })
        .collect()
}

/// The significance method over every comparison, checked to answer one row per comparison.
fn tests_of(
    significance: &dyn SignificanceMethod,
    compared: &[(&FactorRate, &FactorRate)],
    rate_per: f64,
) -> Result<Vec<strata_api::SignificanceResult>, strata_api::MethodError> {
    let tests = significance.test(&comparisons(compared, rate_per))?;
    check_rows(tests.len(), compared.len())?;
    Ok(tests)
}

/// A method answers one row per comparison.
fn check_rows(got: usize, comparisons: usize) -> Result<(), strata_api::MethodError> {
    if got == comparisons {
        Ok(())
    } else {
        Err(strata_api::MethodError::new(format!(
            "returned {got} rows for {comparisons} comparisons"
        )))
    }
}

/// Which comparison row `i`'s figures come from, and its note: itself, or, when its ratio is
/// undefined, the category the factor method made to stand in for it (e.g. 65+ for 75+) if that
/// one's ratio is defined.
fn shown_comparison(
    compared: &[(&FactorRate, &FactorRate)],
    ratios: &[strata_api::RatioValue],
    i: usize,
) -> (usize, Option<String>) {
    let (_, r) = compared[i];
    let note = ratios[i].note.clone();
    if ratios[i].value.is_some() {
        return (i, note);
    }
    let stand_in = compared.iter().position(|(_, f)| {
        f.factor == r.factor
            && f.measure == r.measure
            && f.fallback_for.as_deref() == Some(r.category.as_str())
    });
    match stand_in {
        Some(j) if ratios[j].value.is_some() => (
            j,
            Some(format!(
                "{}; {} reported instead",
                note.unwrap_or_else(|| "ratio undefined".into()),
                compared[j].1.category
            )),
        ),
        _ => (i, note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Dimension, FactorRates, PluginDescriptor};

    fn configured(d: PluginDescriptor) -> Configured {
        (d.configure)(&strata_api::Params::default()).expect("defaults are valid")
    }

    fn rate(code: &str, is_base: bool, fallback_for: Option<&str>, rate: f64) -> FactorRate {
        FactorRate {
            factor: "age_group".into(),
            code: code.into(),
            category: code.into(),
            measure: 0,
            is_base,
            fallback_for: fallback_for.map(str::to_string),
            observed: rate,
            expected: rate,
            population: 10_000.0,
            standardised_rate: rate,
        }
    }

    /// The synthetic 2023/24 year written by strata as Parquet and as CSV gives the same tables
    /// byte for byte, on one thread and on two.
    #[test]
    fn the_year_as_parquet_and_as_csv_gives_the_same_tables() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let recipe = root.join("configs/did-2023-24-icb.toml");
        let prepared = crate::check(&recipe).expect("recipe");
        let spec = crate::synthetic::SyntheticSpec {
            scale: 0.001,
            areas_from_practices: false,
            sampling: None,
            ..prepared
                .recipe
                .inputs
                .synthetic
                .clone()
                .expect("synthetic year")
        };
        let dir = std::env::temp_dir().join(format!("strata-reader-{}", std::process::id()));
        let generator = crate::synthetic::generator(&spec).expect("generator");
        crate::synthetic::write_files(&generator, &spec, &dir).expect("write");
        let csv = dir.join("activity.csv");
        generator
            .write_csv(spec.scale, spec.seed, &csv, &dir.join("population-2.csv"))
            .expect("write csv");
        let render = |overrides: &InputOverrides| {
            let results = run(&prepared, overrides).expect("run");
            let files = crate::output::RunFiles::from_results(&results, 6)
                .expect("render")
                .0
                .files;
            (files, results.warnings)
        };
        let mut first = None;
        for activity in [dir.join("activity.parquet"), csv] {
            for threads in [1, 2] {
                let read = render(&InputOverrides {
                    activity: Some(activity.clone()),
                    population: Some(dir.join("population.csv")),
                    threads: Some(threads),
                    ..Default::default()
                });
                let what = format!("{} on {threads} threads", activity.display());
                let Some((files, warnings)) = &first else {
                    first = Some(read);
                    continue;
                };
                assert_eq!(&read.1, warnings, "warnings of {what}");
                assert_eq!(read.0.len(), files.len());
                for ((name, a), (_, b)) in read.0.iter().zip(files) {
                    assert!(
                        a == b,
                        "{name} of {what} differs from the Parquet's on one thread"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// 2020/21 X-ray: odds are undefined for 75+ (more tests than people), so 65+ is reported.
    #[test]
    fn an_undefined_odds_ratio_reports_the_fallback_category() {
        let Configured::Ratio(odds) = configured(strata_ratio_odds::DESCRIPTOR) else {
            panic!("ratio plugin")
        };
        let Configured::Significance(pearson) = configured(strata_significance_pearson::DESCRIPTOR)
        else {
            panic!("significance plugin")
        };
        let counts = StratifiedCounts::zeroed(
            vec![],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["0-4"])],
        );
        let factors = FactorRates {
            method: "test".into(),
            rate_per: strata_api::DEFAULT_RATE_PER,
            rows: vec![
                rate("0-44", true, None, 1_500.0),
                rate("65-74", false, None, 4_800.0),
                rate("75+", false, None, 13_000.0),
                rate("65+", false, Some("75+"), 8_300.0),
            ],
        };
        let ratios = ratios_of(
            odds.as_ref(),
            &compared_with_base(&factors),
            factors.rate_per,
        )
        .expect("ratios");
        let given = RatiosWithLimits {
            method: odds.as_ref(),
            ratios: &ratios,
            limits: &[],
        };
        let t = factor_ratios_table(&given, pearson.as_ref(), &counts, &factors).expect("table");
        assert!(!t.columns.iter().any(|c| c.starts_with("ratio_ci")));
        let rows: Vec<(String, Value, String)> = t
            .rows
            .iter()
            .map(|r| {
                let text = |v: &Value| match v {
                    Value::Text(s) => s.clone(),
                    _ => String::new(),
                };
                (text(&r[1]), r[7].clone(), text(&r[13]))
            })
            .collect();
        assert_eq!(rows.len(), 3, "the stand-in row is not reported on its own");
        assert_eq!(rows[0].0, "0-44");
        assert_eq!(rows[2].0, "65+", "75+ is replaced by 65+");
        let expected = (0.83 / 0.17) / (0.15 / 0.85);
        let Value::Number(ratio) = rows[2].1 else {
            panic!("a ratio")
        };
        assert!((ratio - expected).abs() < 1e-12, "{ratio}");
        assert!(rows[2].2.contains("65+ reported instead"), "{}", rows[2].2);
        assert!(rows[2].2.contains("≥ 1"), "{}", rows[2].2);
    }

    /// Limits asked of the ratio method add their columns; a base row has none, and a stand-in's
    /// limits fill the row of the category it replaces.
    #[test]
    fn ratio_limits_follow_the_shown_comparison() {
        let params =
            strata_api::Params::from_toml_str("limits = \"woolf\"\nlevels = [0.95, 0.998]")
                .expect("toml");
        let Ok(Configured::Ratio(odds)) = (strata_ratio_odds::DESCRIPTOR.configure)(&params) else {
            panic!("ratio plugin")
        };
        let Configured::Significance(pearson) = configured(strata_significance_pearson::DESCRIPTOR)
        else {
            panic!("significance plugin")
        };
        let counts = StratifiedCounts::zeroed(
            vec![],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["0-4"])],
        );
        let factors = FactorRates {
            method: "test".into(),
            rate_per: strata_api::DEFAULT_RATE_PER,
            rows: vec![
                rate("0-44", true, None, 1_500.0),
                rate("75+", false, None, 13_000.0),
                rate("65+", false, Some("75+"), 8_300.0),
            ],
        };
        let compared = compared_with_base(&factors);
        let ratios = ratios_of(odds.as_ref(), &compared, factors.rate_per).expect("ratios");
        let limits = ratio_limits_of(odds.as_ref(), &compared, factors.rate_per).expect("limits");
        let given = RatiosWithLimits {
            method: odds.as_ref(),
            ratios: &ratios,
            limits: &limits,
        };
        let t = factor_ratios_table(&given, pearson.as_ref(), &counts, &factors).expect("table");
        let col = |name: &str| t.columns.iter().position(|c| c == name).expect(name);
        let number = |row: usize, name: &str| match t.rows[row][col(name)] {
            Value::Number(x) => Some(x),
            _ => None,
        };
        assert_eq!(
            number(0, "ratio_ci_lower"),
            None,
            "a base row has no limits"
        );
        // 65+ stands in for 75+: O = 8,300 and p = 0.83 against O = 1,500 and p = 0.15.
        let v: f64 = 1.0 / (8_300.0 * 0.17) + 1.0 / (1_500.0 * 0.85);
        let ratio = (0.83 / 0.17) / (0.15 / 0.85);
        let z = 3.090_232_306_167_813; // the two-sided 99.8% normal quantile
        let lower = number(1, "ratio_ci_lower_99_8").expect("a lower limit");
        assert!(
            (lower - ratio * (-z * v.sqrt()).exp()).abs() < 1e-9,
            "{lower}"
        );
        assert_eq!(number(1, "ratio_ci_level"), Some(0.95));
        assert!(col("ratio_ci_method") < col("statistic"));
        assert_eq!(
            t.rows[1][col("ratio_ci_method")],
            Value::Text("Woolf logit 95%/99.8%".into())
        );
    }
}
