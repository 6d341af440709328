//! `strata bench`: the recipe end to end, N times, with per-stage medians of wall and CPU time and
//! the largest peak memory. Outputs are rendered (CSV bytes) but not written.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::pipeline::{self, InputOverrides, StageRecord};
use crate::{Result, metrics, output};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the benchmark and returns its printed report.
pub fn bench(recipe: &Path, overrides: &InputOverrides, runs: usize) -> Result<String> {
    let prepared = crate::check(recipe)?;
    let mut per_run: Vec<Vec<StageRecord>> = Vec::new();
    let mut totals = Vec::new();
    let mut total_cpu = Vec::new();
    let mut process_peak = None;
    for _ in 0..runs {
        let cpu = metrics::cpu_seconds();
        let start = Instant::now();
        let results = pipeline::run(&prepared, overrides)?;
        let mut stages = results.stages.clone();
        metrics::reset_peak();
        let (cpu_tables, start_tables) = (metrics::cpu_seconds(), Instant::now());
        let (files, _) = output::RunFiles::from_results(&results, prepared.recipe.float_precision)?;
        std::hint::black_box(&files.files);
        stages.push(StageRecord {
            stage: "render_tables".into(),
            rows_in: results.tables.len() as u64,
            rows_out: files.files.len() as u64,
            seconds: start_tables.elapsed().as_secs_f64(),
            cpu_seconds: metrics::cpu_seconds() - cpu_tables,
            peak_rss_mib: metrics::peak_rss_bytes().map(|b| b as f64 / 1048576.0),
        });
        totals.push(start.elapsed().as_secs_f64());
        total_cpu.push(metrics::cpu_seconds() - cpu);
        process_peak = metrics::process_peak_bytes().map(|b| b as f64 / 1048576.0);
        per_run.push(stages);
    }
    let mut report = String::new();
    writeln!(
        report,
        "{} — median of {runs} run(s)\n{:<26} {:>12} {:>10} {:>10} {:>13}",
        prepared.recipe.name, "stage", "rows in", "wall s", "cpu s", "peak RSS MiB"
    )
    .ok();
    for (i, first) in per_run[0].iter().enumerate() {
        let column = |f: fn(&StageRecord) -> f64| {
            median(per_run.iter().filter_map(|r| r.get(i)).map(f).collect())
        };
        let peak = per_run
            .iter()
            .filter_map(|r| r.get(i).and_then(|s| s.peak_rss_mib))
            .fold(f64::NAN, f64::max);
        writeln!(
            report,
            "{:<26} {:>12} {:>10.3} {:>10.3} {:>13}",
            first.stage,
            first.rows_in,
            column(|s| s.seconds),
            column(|s| s.cpu_seconds),
            // A stage timed as a sum of calls has no peak of its own.
            if peak.is_nan() {
                "—".to_string()
            } else {
                format!("{peak:.0}")
            }
        )
        .ok();
    }
    // The whole process's peak: the stages' windows reset the kernel's own high-water mark, so
    // `/usr/bin/time` sees only the last window's.
    writeln!(
        report,
        "{:<26} {:>12} {:>10.3} {:>10.3} {:>13}",
        "total",
        "",
        median(totals),
        median(total_cpu),
        process_peak.map_or_else(|| "—".to_string(), |p| format!("{p:.0}"))
    )
    .ok();
    Ok(report)
}
