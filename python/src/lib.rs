//! `strata._strata`: the engine for Python. Every function runs the same code as the command line
//! (`strata::run_in_memory`, `strata::check`, the verify and diff comparisons) with the GIL
//! released, and hands tables over as Arrow record batches (the Python wrapper, `pysrc/strata`,
//! turns them into polars DataFrames). A table becomes a batch column by column as `strata`
//! writes it to CSV: whole-number columns as int64, other numbers as float64 at full precision,
//! anything with text as text, missing and non-finite numbers as null; [`csv`] writes a batch
//! back through the same CSV writer, so a DataFrame written with it is the command line's file,
//! byte for byte.
//!
//! Errors are Python exceptions carrying the engine's message (file, row, column, rule, hint):
//! `RecipeError` for what the command line exits 2 on (recipe, invocation, plugin), `RunError`
//! for exit 1 (data, a method, the outputs); both are `StrataError`s.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use strata::output::{ColumnKind, column_kind};
use strata::pipeline::{InputFrame, InputOverrides};
use strata_api::{Table, Value};

pyo3::create_exception!(_strata, StrataError, PyException);
pyo3::create_exception!(_strata, RecipeError, StrataError);
pyo3::create_exception!(_strata, RunError, StrataError);

/// The engine's error as the Python exception of its kind, with its message.
fn raised(e: strata::Error) -> PyErr {
    let message = e.to_string();
    match e.exit_code() {
        2 => RecipeError::new_err(message),
        _ => RunError::new_err(message),
    }
}

fn arrow_error(e: ArrowError) -> PyErr {
    PyValueError::new_err(format!("arrow: {e}"))
}

/// A table as a record batch (module doc).
fn to_batch(table: &Table) -> Result<RecordBatch, ArrowError> {
    let mut fields = Vec::with_capacity(table.columns.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (j, name) in table.columns.iter().enumerate() {
        let cells: Vec<&Value> = table
            .rows
            .iter()
            .map(|r| r.get(j).unwrap_or(&Value::Missing))
            .collect();
        let numbers = || {
            cells.iter().map(|v| match v {
                Value::Number(n) if n.is_finite() => Some(*n),
                _ => None,
            })
        };
        // Typed as the CSV writer types the column, so `csv` writes it back the same.
        let column: ArrayRef = match column_kind(table, j) {
            ColumnKind::Text => Arc::new(StringArray::from(
                cells
                    .iter()
                    .map(|v| match v {
                        Value::Text(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Missing => None,
                    })
                    .collect::<Vec<_>>(),
            )),
            ColumnKind::Integer => Arc::new(Int64Array::from(
                numbers().map(|v| v.map(|x| x as i64)).collect::<Vec<_>>(),
            )),
            ColumnKind::PValue | ColumnKind::Float => {
                Arc::new(Float64Array::from(numbers().collect::<Vec<_>>()))
            }
        };
        fields.push(Field::new(name, column.data_type().clone(), true));
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(table.rows.len())),
    )
}

/// One cell of an Arrow column as a table value.
fn value_at(column: &dyn Array, row: usize) -> Result<Value, ArrowError> {
    use arrow_array::cast::AsArray;
    if column.is_null(row) {
        return Ok(Value::Missing);
    }
    Ok(match column.data_type() {
        DataType::Utf8 => Value::Text(column.as_string::<i32>().value(row).into()),
        DataType::LargeUtf8 => Value::Text(column.as_string::<i64>().value(row).into()),
        DataType::Utf8View => Value::Text(column.as_string_view().value(row).into()),
        DataType::Int64 => Value::Number(
            column
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(row) as f64,
        ),
        DataType::Int32 => Value::Number(
            column
                .as_primitive::<arrow_array::types::Int32Type>()
                .value(row) as f64,
        ),
        DataType::Float64 => Value::Number(
            column
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(row),
        ),
        DataType::Float32 => Value::Number(
            column
                .as_primitive::<arrow_array::types::Float32Type>()
                .value(row) as f64,
        ),
        DataType::Null => Value::Missing,
        other => {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a column of type {other}: strata tables hold text, whole numbers and floats"
            )));
        }
    })
}

/// Record batches (one table) as a strata table named `name`.
fn to_table(name: &str, batches: &[RecordBatch]) -> Result<Table, ArrowError> {
    let columns: Vec<String> = match batches.first() {
        Some(b) => b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        None => Vec::new(),
    };
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut table = Table::new(name, name, &names);
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .map(|c| value_at(c.as_ref(), row))
                .collect::<Result<Vec<_>, _>>()?;
            table.rows.push(cells);
        }
    }
    Ok(table)
}

/// Every batch of an object with `__arrow_c_stream__` (a polars or pandas DataFrame, a pyarrow
/// table).
fn batches_of(frame: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    RecordBatchStreamReader::from_pyarrow_bound(frame)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_error)
}

/// A path, or a frame labelled `<{type} {what}>` for messages and the manifest.
enum PathOrFrame {
    Path(PathBuf),
    Frame(InputFrame),
}

fn path_or_frame(input: &Bound<'_, PyAny>, what: &str) -> PyResult<PathOrFrame> {
    if let Ok(path) = input.extract::<PathBuf>() {
        return Ok(PathOrFrame::Path(path));
    }
    let kind = input.get_type().name()?.to_string();
    Ok(PathOrFrame::Frame(InputFrame {
        label: format!("<{kind} {what}>"),
        batches: batches_of(input)?,
    }))
}

/// The overrides of a run from Python's arguments; `activity`, `counts` and `population` are
/// each a path or a frame.
#[allow(clippy::too_many_arguments)]
fn overrides(
    activity: Option<&Bound<'_, PyAny>>,
    counts: Option<&Bound<'_, PyAny>>,
    population: Option<&Bound<'_, PyAny>>,
    scale: Option<f64>,
    seed: Option<u64>,
    threads: Option<usize>,
    mapping: Option<PathBuf>,
    sampling: Option<&str>,
) -> PyResult<InputOverrides> {
    let mut o = InputOverrides {
        scale,
        seed,
        sampling: count_sampling(sampling)?,
        threads,
        mapping,
        ..Default::default()
    };
    if let Some(activity) = activity {
        match path_or_frame(activity, "activity")? {
            PathOrFrame::Path(p) => o.activity = Some(p),
            PathOrFrame::Frame(f) => o.activity_frame = Some(f),
        }
    }
    if let Some(counts) = counts {
        match path_or_frame(counts, "counts")? {
            PathOrFrame::Path(p) => o.counts = Some(p),
            PathOrFrame::Frame(f) => o.counts_frame = Some(f),
        }
    }
    if let Some(population) = population {
        match path_or_frame(population, "population")? {
            PathOrFrame::Path(p) => o.population = Some(p),
            PathOrFrame::Frame(f) => o.population_frame = Some(f),
        }
    }
    Ok(o)
}

/// Runs `work` on its own thread and, until it answers, calls `progress(stage, done, total,
/// unit)` whenever the engine's latest stage has moved ([`strata::progress::snapshot`]), every
/// tenth of a second at most, with the GIL released in between. An interrupt (Ctrl-C, a
/// notebook's stop button) or an exception from `progress` returns at once; the run's thread
/// then finishes on its own and its answer is dropped.
fn with_progress<T: Send + 'static>(
    py: Python<'_>,
    progress: &Bound<'_, PyAny>,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    use std::sync::mpsc::RecvTimeoutError;
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("strata-run".into())
        .spawn(move || {
            let _ = answer.send(work());
        })
        .map_err(|e| RunError::new_err(format!("cannot start the run's thread: {e}")))?;
    let mut shown = None;
    let mut answered = Some(answered);
    loop {
        // The receiver goes to the GIL-free wait and back (it is `Send`, not `Sync`).
        let waiting = answered
            .take()
            .ok_or_else(|| RunError::new_err("the run's answer was already taken"))?;
        let (waiting, got) = py.detach(move || {
            let got = waiting.recv_timeout(std::time::Duration::from_millis(100));
            (waiting, got)
        });
        answered = Some(waiting);
        let now = strata::progress::snapshot();
        if now != shown {
            if let Some(s) = &now {
                progress.call1((s.stage.clone(), s.done, s.total, s.unit))?;
            }
            shown = now;
        }
        match got {
            Ok(value) => return Ok(value),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(RunError::new_err(
                    "the run's thread stopped without an answer",
                ));
            }
        }
    }
}

type Batches = Vec<(String, Py<PyAny>)>;

fn to_python(py: Python<'_>, tables: &[Table]) -> PyResult<Batches> {
    tables
        .iter()
        .map(|t| {
            let batch = to_batch(t).map_err(arrow_error)?;
            Ok((t.name.clone(), batch.to_pyarrow(py)?.unbind()))
        })
        .collect()
}

/// `poisson` or `systematic` (a `ValueError` names the two otherwise).
fn count_sampling(sampling: Option<&str>) -> PyResult<Option<strata::CountSampling>> {
    sampling
        .map(|s| s.parse().map_err(pyo3::exceptions::PyValueError::new_err))
        .transpose()
}

/// Runs a recipe: every output table (write order) as a pyarrow RecordBatch, and the manifest
/// as JSON text.
#[pyfunction]
#[pyo3(signature = (recipe, activity=None, counts=None, population=None, scale=None, seed=None, threads=None, mapping=None, progress=None, sampling=None))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    recipe: PathBuf,
    activity: Option<Bound<'_, PyAny>>,
    counts: Option<Bound<'_, PyAny>>,
    population: Option<Bound<'_, PyAny>>,
    scale: Option<f64>,
    seed: Option<u64>,
    threads: Option<usize>,
    mapping: Option<PathBuf>,
    progress: Option<Bound<'_, PyAny>>,
    sampling: Option<&str>,
) -> PyResult<(Batches, String)> {
    let o = overrides(
        activity.as_ref(),
        counts.as_ref(),
        population.as_ref(),
        scale,
        seed,
        threads,
        mapping,
        sampling,
    )?;
    let run = match progress {
        Some(progress) => with_progress(py, &progress, move || strata::run_in_memory(&recipe, &o))?,
        None => py.detach(|| strata::run_in_memory(&recipe, &o)),
    }
    .map_err(raised)?;
    let manifest = run
        .files
        .iter()
        .find(|(name, _)| name == "manifest.json")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    Ok((to_python(py, &run.results.tables)?, manifest))
}

/// Runs a recipe and compares it with its published figures: the `verify` table and whether
/// every gated figure is within tolerance.
#[pyfunction]
#[pyo3(signature = (recipe, scale=None, seed=None, threads=None, sampling=None))]
fn verify(
    py: Python<'_>,
    recipe: PathBuf,
    scale: Option<f64>,
    seed: Option<u64>,
    threads: Option<usize>,
    sampling: Option<&str>,
) -> PyResult<(Py<PyAny>, bool)> {
    let o = InputOverrides {
        scale,
        seed,
        sampling: count_sampling(sampling)?,
        threads,
        ..Default::default()
    };
    let (_, table, ok) = py
        .detach(|| strata::verify_in_memory(&recipe, &o))
        .map_err(raised)?;
    let batch = to_batch(&table).map_err(arrow_error)?;
    Ok((batch.to_pyarrow(py)?.unbind(), ok))
}

/// Runs two recipes and lists every output cell that differs, and the method columns that
/// changed.
#[pyfunction]
#[pyo3(signature = (recipe_a, recipe_b, scale=None, seed=None))]
fn diff(
    py: Python<'_>,
    recipe_a: PathBuf,
    recipe_b: PathBuf,
    scale: Option<f64>,
    seed: Option<u64>,
) -> PyResult<(Py<PyAny>, Vec<String>)> {
    let o = InputOverrides {
        scale,
        seed,
        ..Default::default()
    };
    let (table, methods) = py
        .detach(|| -> strata::Result<(Table, Vec<String>)> {
            let a = strata::run_in_memory(&recipe_a, &o)?;
            let b = strata::run_in_memory(&recipe_b, &o)?;
            Ok(strata::diff::diff_tables(
                &a.results.tables,
                &b.results.tables,
            ))
        })
        .map_err(raised)?;
    let batch = to_batch(&table).map_err(arrow_error)?;
    Ok((batch.to_pyarrow(py)?.unbind(), methods))
}

/// Checks a recipe without reading data: its plugins, each as (stage, id, version, origin).
#[pyfunction]
fn check(py: Python<'_>, recipe: PathBuf) -> PyResult<Vec<(String, String, String, String)>> {
    let prepared = py.detach(|| strata::check(&recipe)).map_err(raised)?;
    Ok(prepared
        .plugins
        .iter()
        .map(|p| {
            (
                p.stage.clone(),
                p.id.clone(),
                p.version.clone(),
                p.origin.clone(),
            )
        })
        .collect())
}

/// A plugin as (stage, id, version, description, origin).
type PluginRow = (String, String, String, String, String);

/// Every plugin a recipe can choose.
#[pyfunction]
#[pyo3(signature = (plugin_paths=Vec::new()))]
fn plugins(plugin_paths: Vec<PathBuf>) -> PyResult<Vec<PluginRow>> {
    let mut dirs = plugin_paths;
    dirs.extend(strata::plugins::env_plugin_dirs().map_err(raised)?);
    let registry = strata::plugins::Registry::load(&dirs).map_err(raised)?;
    Ok(registry
        .listing()
        .into_iter()
        .map(|r| (r.stage, r.id, r.version, r.description, r.origin))
        .collect())
}

/// A table (an object with `__arrow_c_stream__`) written as strata writes its CSVs, at
/// `float_precision` decimals.
#[pyfunction]
#[pyo3(signature = (frame, float_precision=6))]
fn csv(frame: Bound<'_, PyAny>, float_precision: usize) -> PyResult<Vec<u8>> {
    let batches = batches_of(&frame)?;
    let table = to_table("table", &batches).map_err(arrow_error)?;
    Ok(strata::output::csv_bytes(&table, float_precision))
}

#[pymodule]
fn _strata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(diff, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(plugins, m)?)?;
    m.add_function(wrap_pyfunction!(csv, m)?)?;
    m.add("StrataError", m.py().get_type::<StrataError>())?;
    m.add("RecipeError", m.py().get_type::<RecipeError>())?;
    m.add("RunError", m.py().get_type::<RunError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
