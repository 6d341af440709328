//! strata's end-to-end tests, one module per subject, in ONE test binary: each integration-test
//! binary links the engine, arrow-rs and the report crates, and a dozen links cost minutes on a
//! small machine.
//!
//! Nothing here needs a process of its own: tests that need one (killing a run, setting
//! `STRATA_*` variables) start the `strata-under-test` bin with the variable set on the child,
//! and no test sets an environment variable or other process-wide state in this process. Keep it
//! so: a test that must change its own process goes in a file of its own directly under
//! `tests/tests/` (Cargo builds each such file as a separate binary), with a comment saying why.
//!
//! Adding a test file: put it in this folder (`tests/tests/it/<subject>.rs`) and add
//! `mod <subject>;` below, in alphabetical order. Run one subject with
//! `cargo test -p strata-tests --test it <subject>::`.

mod adding_a_method;
mod atomic_outputs;
mod bad_input;
mod cdc_publication;
mod cdc_share;
mod cli;
mod comparison_publication;
mod determinism;
mod disclosure_attack;
mod dynamic_plugin;
mod entry_points;
mod extract_forms;
mod foreign_stages;
mod funnel;
mod geography_levels;
mod method_swap;
mod methods;
mod parquet_structure;
mod period_comparison;
mod period_records;
mod practice_population;
mod practice_report;
mod python;
mod rate_unit;
mod reader_fuzz;
mod report_browser;
mod snapshots;
// With `--features spark` only (it needs strata built with Spark Connect; .ci/run runs it).
#[cfg(feature = "spark")]
mod spark_connect;
mod sql_pushdown;
mod stage_graph;
mod waits;
