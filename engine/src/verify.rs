//! `strata verify`: how close a run is to the published figures, cell by cell.
//!
//! The published figures live in a TOML file the recipe names (`published = …`); the tolerances in
//! the recipe's `[verify]` table. Every comparison is one row of the `verify` table: the figure,
//! the published value, the reproduced value, the tolerance and whether it is within it.
//!
//! Published rates are whole numbers per 10,000, so a reproduced rate within ±0.5 of a published
//! one is the same published figure whatever the relative tolerance. The published file may say
//! another unit (`rate_per` at its top level); a run whose recipe prints rates per another unit
//! than the published file's has its rates converted to the published unit before they are
//! compared, and the publication's worked example is computed in the published unit.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use strata_api::{RatioMethod, Table, Value};

use crate::error::{Error, Result};

/// Tolerances, from the recipe's `[verify]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// National rates: relative difference.
    #[serde(default = "default_national")]
    pub national_rate_relative: f64,
    /// Factor ratios: absolute difference…
    #[serde(default = "default_ratio")]
    pub ratio_absolute: f64,
    /// …or relative difference, whichever is wider (a ratio of 19.41 printed to 2 dp is not
    /// reproducible to ±0.02 by any sample; 0 keeps the absolute tolerance alone).
    #[serde(default)]
    pub ratio_relative: f64,
    /// Share of published stars that must be reproduced exactly.
    #[serde(default = "default_stars")]
    pub stars_agreement: f64,
    /// Shares in the summary sentences (e.g. 79% within one SD): absolute difference.
    #[serde(default = "default_share")]
    pub share_absolute: f64,
    /// Rates in the summary sentences (the one-SD range): relative difference.
    #[serde(default = "default_range")]
    pub range_relative: f64,
    /// Attribution route shares (Annex A): absolute difference.
    #[serde(default = "default_route")]
    pub route_share_absolute: f64,
    /// Records excluded from rates (section 2.1): relative difference of the count.
    #[serde(default = "default_exclusions")]
    pub exclusions_relative: f64,
    /// …and absolute difference of their share of all tests.
    #[serde(default = "default_exclusions_share")]
    pub exclusions_share_absolute: f64,
    /// The worked example's ratio (section 3.1), recomputed by the recipe's ratio method from the
    /// publication's own rates: absolute difference (printed to 2 dp, so ±0.005 is "the same").
    #[serde(default = "default_worked")]
    pub worked_example_absolute: f64,
    /// Counts of Annex A's Tables A.1–A.4: relative difference…
    #[serde(default = "default_annex_count")]
    pub annex_count_relative: f64,
    /// …or this many tests, whichever is wider (the tables print counts rounded to hundreds).
    #[serde(default = "default_annex_count_absolute")]
    pub annex_count_absolute: f64,
    /// Shares of Tables A.1–A.4: absolute difference.
    #[serde(default = "default_annex_share")]
    pub annex_share_absolute: f64,
    /// The biggest shortfall sentence after Table A.3 ("around 7% lower"): absolute difference.
    #[serde(default = "default_shortfall")]
    pub shortfall_share_absolute: f64,
    /// Sections whose figures decide the exit code; the others are reported only.
    #[serde(default = "default_gate")]
    pub gate: Vec<String>,
    /// Figures of gated sections reported only, by their exact `figure` text (the recipe says
    /// why beside each). One that names no figure is a failing row, so the list cannot go stale.
    #[serde(default)]
    pub reported_only: Vec<String>,
    /// Standard errors of sampling noise a figure of a Poisson-sampled synthetic year may be off
    /// by, beyond the tolerances above (see [`SamplingNoise`]).
    #[serde(default = "default_sampling_z")]
    pub sampling_z: f64,
    /// The run's synthetic year drew its record counts by Poisson (set by the run, never by the
    /// recipe): figures from counts get [`SamplingNoise`]'s allowance.
    #[serde(skip)]
    pub poisson_sampling: bool,
    /// The run's synthetic year was told the areas' totals of Tables A.3 and A.4 (set by the
    /// run): those figures are round trips, not derived.
    #[serde(skip)]
    pub area_totals_told: bool,
}

/// The sampling error of a figure of a Poisson-sampled synthetic year, which `verify` allows
/// beside the recipe's tolerance: `sampling_z` standard errors (default 4: with some 300 figures
/// a year, a run whose every figure is right still fails one by chance about 2% of the time).
///
/// Standard errors, with every stratum count O drawn as Poisson(E) (so Var O ≈ O):
/// - a national rate r = O / P (P fixed): r / √O;
/// - a factor's rate ratio R of standardised rates whose numerators are the category's and the
///   reference's counts (O₁, O₀; indirect standardisation's expected counts are fixed by the
///   population): R √(1/O₁ + 1/O₀), the delta method on log R;
/// - an odds ratio of tests per person p₁, p₀: R √(1/(O₁(1−p₁)²) + 1/(O₀(1−p₀)²)), since
///   d log(p/(1−p)) / dO = 1 / (O (1−p));
/// - a count N (Annex A, exclusions): √N;
/// - the one-SD range's ends (mean ± SD of the areas' standardised rates): the delta method on
///   the areas' rates (see `one_sd_range_standard_errors`). The printed ends are whole numbers,
///   so there the allowance is added to the ±0.5 of their rounding rather than put beside it.
///
/// Shares are not widened: at full scale their binomial errors are below 0.05 points, far inside
/// every share tolerance; the shares within one SD and stars are compared with the recipe's
/// tolerances alone. The one ordering of shares verify checks, the area with the biggest
/// shortfall, allows the standard error of the difference of the two shares (see
/// `largest_shortfall`).
struct SamplingNoise {
    z: f64,
}

impl SamplingNoise {
    fn of(tol: &Tolerances) -> Option<SamplingNoise> {
        tol.poisson_sampling
            .then_some(SamplingNoise { z: tol.sampling_z })
    }

    /// The allowance for a figure with this standard error (0 when it is not finite).
    fn allowance(&self, standard_error: f64) -> f64 {
        if standard_error.is_finite() {
            self.z * standard_error
        } else {
            0.0
        }
    }

    /// The tolerance text with the allowance said after it.
    fn said(&self, tolerance: String, allowance: f64, decimals: usize) -> String {
        format!(
            "{tolerance} or ±{allowance:.decimals$} ({} standard errors)",
            self.z
        )
    }
}

/// The allowance and tolerance text of a figure with `standard_error` under the run's sampling.
fn with_sampling(
    tol: &Tolerances,
    tolerance: String,
    standard_error: f64,
    decimals: usize,
) -> (f64, String) {
    match SamplingNoise::of(tol) {
        Some(noise) => {
            let allowance = noise.allowance(standard_error);
            (allowance, noise.said(tolerance, allowance, decimals))
        }
        None => (0.0, tolerance),
    }
}

/// Every section verify checks.
pub const SECTIONS: [&str; 8] = [
    "national_rates",
    "factor_ratios",
    "stars",
    "summary",
    "annex_a",
    "exclusions",
    "worked_example",
    "figures",
];

/// What a check is evidence of, the `kind` column of `verify.csv`.
///
/// On the synthetic year a `round_trip` pass shows only that the engine and the generator agree
/// on a figure the generator was told (`configs/published/*.toml` via `synth/`); `derived` is a
/// figure the generator was not told but the engine computes from what it was; `independent`
/// compares with a source or arithmetic the generator never saw.
pub const KINDS: [&str; 3] = ["round_trip", "derived", "independent"];

fn default_gate() -> Vec<String> {
    SECTIONS.iter().map(|s| s.to_string()).collect()
}

fn default_national() -> f64 {
    0.01
}
fn default_ratio() -> f64 {
    0.02
}
fn default_stars() -> f64 {
    0.95
}
fn default_share() -> f64 {
    0.10
}
fn default_range() -> f64 {
    0.05
}
fn default_route() -> f64 {
    0.01
}
fn default_exclusions() -> f64 {
    0.05
}
fn default_exclusions_share() -> f64 {
    0.002
}
fn default_worked() -> f64 {
    0.005
}
fn default_annex_count() -> f64 {
    0.10
}
fn default_annex_count_absolute() -> f64 {
    50.0
}
fn default_annex_share() -> f64 {
    0.01
}
fn default_shortfall() -> f64 {
    0.01
}
fn default_sampling_z() -> f64 {
    4.0
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            national_rate_relative: default_national(),
            ratio_absolute: default_ratio(),
            ratio_relative: 0.0,
            stars_agreement: default_stars(),
            share_absolute: default_share(),
            range_relative: default_range(),
            route_share_absolute: default_route(),
            exclusions_relative: default_exclusions(),
            exclusions_share_absolute: default_exclusions_share(),
            worked_example_absolute: default_worked(),
            annex_count_relative: default_annex_count(),
            annex_count_absolute: default_annex_count_absolute(),
            annex_share_absolute: default_annex_share(),
            shortfall_share_absolute: default_shortfall(),
            gate: default_gate(),
            reported_only: Vec::new(),
            sampling_z: default_sampling_z(),
            poisson_sampling: false,
            area_totals_told: false,
        }
    }
}

/// One checked figure.
struct Check {
    section: &'static str,
    /// One of [`KINDS`].
    kind: &'static str,
    figure: String,
    published: String,
    reproduced: String,
    tolerance: String,
    ok: bool,
}

/// Rows of an output table by key, for lookups.
struct Indexed<'a> {
    table: &'a Table,
}

impl<'a> Indexed<'a> {
    fn col(&self, name: &str) -> Option<usize> {
        self.table.columns.iter().position(|c| c == name)
    }
    fn text(&self, row: &[Value], name: &str) -> String {
        match self.col(name).and_then(|i| row.get(i)) {
            Some(Value::Text(s)) => s.clone(),
            Some(Value::Number(n)) => format!("{n}"),
            _ => String::new(),
        }
    }
    fn number(&self, row: &[Value], name: &str) -> Option<f64> {
        match self.col(name).and_then(|i| row.get(i)) {
            Some(Value::Number(n)) if n.is_finite() => Some(*n),
            _ => None,
        }
    }
    fn rows(&self) -> impl Iterator<Item = &'a Vec<Value>> {
        self.table.rows.iter()
    }
}

fn find<'a>(tables: &'a [Table], name: &str) -> Option<Indexed<'a>> {
    tables
        .iter()
        .find(|t| t.name == name)
        .map(|table| Indexed { table })
}

/// Splits a published ratio as printed, e.g. `0.77***`, into value and stars.
fn split_ratio(text: &str) -> Option<(f64, String)> {
    let stars: String = text.chars().filter(|c| *c == '*').collect();
    let number: String = text.chars().filter(|c| *c != '*').collect();
    number.trim().parse().ok().map(|v| (v, stars))
}

/// The unit the published file's rates are per: its top-level `rate_per`, or 10,000.
fn published_rate_per(published: &toml::Table) -> f64 {
    number_of(published.get("rate_per")).unwrap_or(strata_api::DEFAULT_RATE_PER)
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "—".into())
}

/// Compares a run's tables with the published figures; returns the `verify` table and whether
/// every figure is within tolerance.
///
/// `ratio` is the recipe's ratio method, run on the publication's worked example. The run's rates
/// are per [`strata_api::DEFAULT_RATE_PER`] people ([`verify_rates_per`] for another unit).
pub fn verify(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    ratio: Option<&dyn RatioMethod>,
) -> (Table, bool) {
    verify_rates_per(published, tables, tol, ratio, strata_api::DEFAULT_RATE_PER)
}

/// [`verify`] of a run whose rates are per `run_rate_per` people.
pub fn verify_rates_per(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    ratio: Option<&dyn RatioMethod>,
    run_rate_per: f64,
) -> (Table, bool) {
    let published_rate_per = published_rate_per(published);
    let to_published = published_rate_per / run_rate_per;
    let mut checks = Vec::new();
    national_rates(published, tables, tol, to_published, &mut checks);
    let stars = factor_ratios(published, tables, tol, run_rate_per, &mut checks);
    summaries(published, tables, tol, to_published, &mut checks);
    annex_a(published, tables, tol, &mut checks);
    exclusions(published, tables, tol, &mut checks);
    figures(published, tables, &mut checks);
    if let Some(ratio) = ratio {
        worked_example(published, ratio, tol, published_rate_per, &mut checks);
    }
    nothing_compared(&mut checks, stars.is_some(), tol);
    verify_table(checks, stars, tol)
}

/// The `verify` table of the checks (and the share of stars reproduced), and whether every gated
/// figure is within tolerance.
fn verify_table(
    mut checks: Vec<Check>,
    stars: Option<(usize, usize)>,
    tol: &Tolerances,
) -> (Table, bool) {
    let mut t = Table::new(
        "verify",
        "Published figures against the reproduced ones",
        &[
            "section",
            "figure",
            "published",
            "reproduced",
            "tolerance",
            "within_tolerance",
            "gates",
            "kind",
        ],
    );
    for name in &tol.reported_only {
        if !checks.iter().any(|c| &c.figure == name) {
            checks.push(Check {
                section: "summary",
                kind: "derived",
                figure: format!("reported_only names no figure: {name}"),
                published: "—".into(),
                reproduced: "—".into(),
                tolerance: "a figure of this run".into(),
                ok: false,
            });
        }
    }
    let section_gated = |section: &str| tol.gate.iter().any(|g| g == section);
    let gates = |c: &Check| {
        c.figure.starts_with("reported_only names no figure")
            || (section_gated(c.section) && !tol.reported_only.contains(&c.figure))
    };
    let gated = section_gated;
    let mut all_ok = true;
    for c in &checks {
        // (Stars are judged together, by their share of agreement, below.)
        if gates(c) {
            all_ok &= c.ok;
        }
        t.rows.push(vec![
            Value::Text(c.section.into()),
            Value::Text(c.figure.clone()),
            Value::Text(c.published.clone()),
            Value::Text(c.reproduced.clone()),
            Value::Text(c.tolerance.clone()),
            Value::Text(if c.ok { "yes" } else { "NO" }.into()),
            Value::Text(if gates(c) { "yes" } else { "no" }.into()),
            Value::Text(c.kind.into()),
        ]);
    }
    if let Some((agree, total)) = stars {
        let share = if total > 0 {
            agree as f64 / total as f64
        } else {
            1.0
        };
        let ok = total > 0 && share >= tol.stars_agreement;
        if gated("stars") {
            all_ok &= ok;
        }
        t.rows.push(vec![
            Value::Text("stars".into()),
            Value::Text("share of published stars reproduced".into()),
            Value::Text(format!("{total} cells")),
            Value::Text(format!("{agree} ({:.1}%)", share * 100.0)),
            Value::Text(format!("≥ {:.0}%", tol.stars_agreement * 100.0)),
            Value::Text(if ok { "yes" } else { "NO" }.into()),
            Value::Text(if gated("stars") { "yes" } else { "no" }.into()),
            // The generator is given the ratios, never their p-values.
            Value::Text("derived".into()),
        ]);
    }
    (t, all_ok)
}

/// `[[figures]]`: each a printed figure checked against one cell of an output table (the row
/// whose columns equal `where`), with its own comparison and kind. A figure that names no table,
/// no row or several rows, or that cannot be read, is a failing row.
fn figures(published: &toml::Table, tables: &[Table], checks: &mut Vec<Check>) {
    let Some(list) = published.get("figures").and_then(|f| f.as_array()) else {
        return;
    };
    for entry in list {
        checks.push(figure_check(entry, tables));
    }
}

/// One `[[figures]]` entry's check.
fn figure_check(entry: &toml::Value, tables: &[Table]) -> Check {
    let text = |key: &str| entry.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let figure = text("figure").to_string();
    let kind = KINDS
        .into_iter()
        .find(|k| *k == text("kind"))
        .unwrap_or("round_trip");
    let failing = |why: String| Check {
        section: "figures",
        kind,
        figure: figure.clone(),
        published: entry
            .get("published")
            .map(|v| v.to_string())
            .unwrap_or_default(),
        reproduced: "—".into(),
        tolerance: why,
        ok: false,
    };
    let Some(published) = number_of(entry.get("published")) else {
        return failing("`published` is not a number".into());
    };
    if !KINDS.contains(&text("kind")) {
        return failing(format!("`kind` must be one of {}", KINDS.join(", ")));
    }
    let reproduced = match figure_cell(entry, tables) {
        Ok(v) => v,
        Err(why) => return failing(why),
    };
    let (ok, rule) = compare_figure(entry, published, reproduced);
    Check {
        section: "figures",
        kind,
        figure,
        published: format!("{published}"),
        reproduced: format!("{reproduced}"),
        tolerance: rule,
        ok,
    }
}

/// The run's value of the one cell a `[[figures]]` entry names (the row of its `table` whose
/// columns equal `where`, its `column`), or why there is none.
fn figure_cell(entry: &toml::Value, tables: &[Table]) -> std::result::Result<f64, String> {
    let text = |key: &str| entry.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let Some(table) = find(tables, text("table")) else {
        return Err(format!("the run has no table `{}`", text("table")));
    };
    let filters: Vec<(String, String)> = entry
        .get("where")
        .and_then(|w| w.as_table())
        .map(|w| {
            w.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<&Vec<Value>> = table
        .rows()
        .filter(|r| filters.iter().all(|(k, v)| table.text(r, k) == *v))
        .collect();
    let [row] = rows.as_slice() else {
        return Err(format!(
            "`where` matches {} rows of `{}`, not one",
            rows.len(),
            text("table")
        ));
    };
    table
        .number(row, text("column"))
        .ok_or_else(|| format!("no number in column `{}`", text("column")))
}

/// Whether a figure's reproduced value agrees with the published one under its `compare` (and
/// `tolerance`), and the rule as printed.
fn compare_figure(entry: &toml::Value, published: f64, reproduced: f64) -> (bool, String) {
    let text = |key: &str| entry.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let tolerance = number_of(entry.get("tolerance")).unwrap_or(0.0);
    match text("compare") {
        "at_most" => (reproduced <= published, format!("≤ {published}")),
        "at_least" => (reproduced >= published, format!("≥ {published}")),
        "within" => (
            (reproduced - published).abs() <= tolerance,
            format!("±{tolerance}"),
        ),
        other => (
            false,
            format!("unknown comparison `{other}` (within, at_most, at_least)"),
        ),
    }
}

/// The published file's `[[figures]]` beside the run's values, for a publication to print each
/// with the table it is of: found and compared exactly as `strata verify` does. An entry without
/// a numeric `published` is left out (verify reports it).
pub fn figures_beside(
    published: &toml::Table,
    tables: &[Table],
) -> Vec<strata_report::PublishedFigure> {
    let list = published.get("figures").and_then(|f| f.as_array());
    list.into_iter()
        .flatten()
        .filter_map(|entry| {
            let text = |key: &str| entry.get(key).and_then(|v| v.as_str()).unwrap_or_default();
            let published = number_of(entry.get("published"))?;
            let reproduced = figure_cell(entry, tables).ok();
            let agrees = reproduced.is_some_and(|r| compare_figure(entry, published, r).0);
            let of = |key: &str| {
                entry
                    .get("where")
                    .and_then(|w| w.get(key))
                    .and_then(|l| l.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            Some(strata_report::PublishedFigure {
                figure: text("figure").to_string(),
                table: text("table").to_string(),
                level: of("level"),
                measure: of("measure"),
                published,
                reproduced,
                agrees,
                kind: text("kind").to_string(),
            })
        })
        .collect()
}

/// A gated section with nothing compared (missing from the published file or from the run, an
/// empty or unrelated file) is a failure, never a silent pass.
fn nothing_compared(checks: &mut Vec<Check>, stars_compared: bool, tol: &Tolerances) {
    for section in SECTIONS {
        let compared = if section == "stars" {
            // With ratios compared, the share row below says whether any stars were.
            stars_compared
        } else {
            checks.iter().any(|c| c.section == section)
        };
        if !compared && tol.gate.iter().any(|g| g == section) {
            checks.push(Check {
                section,
                kind: section_kind(section),
                figure: "no figure compared: the section is missing from the published file or \
                         its table from the run"
                    .into(),
                published: "—".into(),
                reproduced: "—".into(),
                tolerance: "—".into(),
                ok: false,
            });
        }
    }
}

/// The kind of every check in a section, where the section has one kind.
fn section_kind(section: &str) -> &'static str {
    match section {
        "stars" | "summary" => "derived",
        "worked_example" => "independent",
        _ => "round_trip",
    }
}

/// A printed figure that cannot be read as one: a failing row naming it.
fn unparsable(section: &'static str, figure: &str, printed: &toml::Value) -> Check {
    unparsable_kind(section, section_kind(section), figure, printed)
}

fn unparsable_kind(
    section: &'static str,
    kind: &'static str,
    figure: &str,
    printed: &toml::Value,
) -> Check {
    Check {
        section,
        kind,
        figure: figure.to_string(),
        published: printed.to_string(),
        reproduced: "—".into(),
        tolerance: "not a printed figure strata can read".into(),
        ok: false,
    }
}

fn national_rates(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    to_published: f64,
    checks: &mut Vec<Check>,
) {
    let Some(rates) = published.get("national_rates").and_then(|v| v.as_table()) else {
        return;
    };
    let Some(out) = find(tables, "national_rates") else {
        return;
    };
    // measure → (rate in the published unit, its Poisson standard error r / √O)
    let reproduced: HashMap<String, (f64, f64)> = out
        .rows()
        .filter_map(|r| {
            let rate = out.number(r, "rate")? * to_published;
            let observed = out.number(r, "observed").unwrap_or(f64::NAN);
            Some((out.text(r, "measure"), (rate, rate / observed.sqrt())))
        })
        .collect();
    for (measure, value) in rates {
        let Some(p) = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
        else {
            checks.push(unparsable("national_rates", measure, value));
            continue;
        };
        let r = reproduced.get(measure).map(|(rate, _)| *rate);
        let standard_error = reproduced.get(measure).map_or(f64::NAN, |(_, se)| *se);
        let (noise, tolerance) = with_sampling(
            tol,
            format!("±{:.0}% (or ±0.5)", tol.national_rate_relative * 100.0),
            standard_error,
            1,
        );
        let allowed = (tol.national_rate_relative * p).max(0.5).max(noise);
        checks.push(Check {
            section: "national_rates",
            kind: "round_trip",
            figure: format!(
                "{measure} rate per {}",
                strata_api::rate_per_text(published_rate_per(published))
            ),
            published: fmt(Some(p), 0),
            reproduced: fmt(r, 1),
            tolerance,
            ok: r.is_some_and(|r| (r - p).abs() <= allowed),
        });
    }
}

/// The term a category's count adds to Var(log ratio) under Poisson sampling (see
/// [`SamplingNoise`]): 1/O for a rate ratio, 1/(O(1−p)²) for an odds ratio of tests per person p.
fn log_ratio_variance_term(out: &Indexed, row: &[Value], run_rate_per: f64) -> f64 {
    let observed = out.number(row, "observed").unwrap_or(f64::NAN);
    if out.text(row, "ratio_method").contains("odds") {
        let p = out.number(row, "standardised_rate").unwrap_or(f64::NAN) / run_rate_per;
        1.0 / (observed * (1.0 - p).powi(2))
    } else {
        1.0 / observed
    }
}

/// A run's factor ratio: its ratio, stars and Poisson standard error.
type ReproducedRatio = (Option<f64>, String, f64);

/// The run's factor ratios: (factor, code or label, measure) → (ratio, stars, Poisson standard
/// error of the ratio against its factor's reference category, the row with ratio 1 and no test).
fn reproduced_ratios(
    out: &Indexed,
    run_rate_per: f64,
) -> HashMap<(String, String, String), ReproducedRatio> {
    let mut reference: HashMap<(String, String), f64> = HashMap::new();
    for r in out.rows() {
        if out.number(r, "ratio") == Some(1.0) && out.text(r, "statistic").is_empty() {
            reference
                .entry((out.text(r, "factor"), out.text(r, "measure")))
                .or_insert_with(|| log_ratio_variance_term(out, r, run_rate_per));
        }
    }
    let mut reproduced = HashMap::new();
    for r in out.rows() {
        let factor = out.text(r, "factor");
        let measure = out.text(r, "measure");
        let ratio = out.number(r, "ratio");
        let base = reference
            .get(&(factor.clone(), measure.clone()))
            .copied()
            .unwrap_or(f64::NAN);
        let own = log_ratio_variance_term(out, r, run_rate_per);
        let standard_error = ratio.map_or(f64::NAN, |ratio| ratio * (own + base).sqrt());
        let value = (ratio, out.text(r, "stars"), standard_error);
        for key in [out.text(r, "category_code"), out.text(r, "category")] {
            reproduced
                .entry((factor.clone(), key, measure.clone()))
                .or_insert_with(|| value.clone());
        }
    }
    reproduced
}

/// Ratio checks per cell; returns (stars agreeing, stars compared).
fn factor_ratios(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    run_rate_per: f64,
    checks: &mut Vec<Check>,
) -> Option<(usize, usize)> {
    let factors = published.get("factor_ratios")?.as_table()?;
    let out = find(tables, "factor_ratios")?;
    let reproduced = reproduced_ratios(&out, run_rate_per);
    let (mut agree, mut total) = (0, 0);
    for (factor, categories) in factors {
        let Some(categories) = categories.as_table() else {
            continue;
        };
        for (category, measures) in categories {
            let Some(measures) = measures.as_table() else {
                continue;
            };
            let ordered: BTreeMap<&String, &toml::Value> = measures.iter().collect();
            for (measure, printed) in ordered {
                let Some((p, p_stars)) = printed.as_str().and_then(split_ratio) else {
                    checks.push(unparsable(
                        "factor_ratios",
                        &format!("{factor} {category} {measure}"),
                        printed,
                    ));
                    continue;
                };
                let found = reproduced.get(&(factor.clone(), category.clone(), measure.clone()));
                let (r, r_stars, standard_error) = found
                    .map(|(v, s, se)| (*v, s.clone(), *se))
                    .unwrap_or((None, String::new(), f64::NAN));
                let tolerance = if tol.ratio_relative > 0.0 {
                    format!(
                        "±{} or ±{}%",
                        tol.ratio_absolute,
                        tol.ratio_relative * 100.0
                    )
                } else {
                    format!("±{}", tol.ratio_absolute)
                };
                let (noise, tolerance) = with_sampling(tol, tolerance, standard_error, 3);
                let allowed = tol.ratio_absolute.max(tol.ratio_relative * p).max(noise);
                checks.push(Check {
                    section: "factor_ratios",
                    kind: "round_trip",
                    figure: format!("{factor} {category} {measure}"),
                    published: printed.as_str().unwrap_or_default().to_string(),
                    reproduced: format!("{}{r_stars}", fmt(r, 2)),
                    tolerance,
                    ok: r.is_some_and(|r| (r - p).abs() <= allowed + 1e-9),
                });
                total += 1;
                if found.is_some() && r_stars == p_stars {
                    agree += 1;
                }
            }
        }
    }
    Some((agree, total))
}

/// `to_published` converts the run's rates (the one-SD range) to the published unit.
fn summaries(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    to_published: f64,
    checks: &mut Vec<Check>,
) {
    let Some(summary) = published.get("summary").and_then(|v| v.as_table()) else {
        return;
    };
    let Some(out) = find(tables, "summary") else {
        return;
    };
    if summary
        .get("standardised_within_10pct_of_crude")
        .and_then(|v| v.as_str())
        == Some("most")
    {
        most_within_crude(&out, checks);
    }
    for (measure, figures) in summary {
        let Some(figures) = figures.as_table() else {
            continue;
        };
        let run = SummaryOf { out: &out, measure };
        // Only a Poisson-sampled run allows the range its sampling error.
        let range_errors = tol
            .poisson_sampling
            .then(|| one_sd_range_standard_errors(tables, measure))
            .flatten();
        spread_figures(&run, figures, tol, to_published, range_errors, checks);
        highest_area(&run, figures, checks);
        areas_above_multiples(&run, figures, checks);
    }
}

/// One measure's rows of the run's `summary` table.
struct SummaryOf<'a> {
    out: &'a Indexed<'a>,
    measure: &'a str,
}

impl SummaryOf<'_> {
    /// A statistic's value and its `areas` text.
    fn value(&self, statistic: &str) -> Option<(Option<f64>, String)> {
        let out = self.out;
        out.rows()
            .find(|r| {
                out.text(r, "measure") == self.measure && out.text(r, "statistic") == statistic
            })
            .map(|r| (out.number(r, "value"), out.text(r, "areas")))
    }

    fn areas(&self, statistic: &str) -> String {
        self.value(statistic)
            .map(|(_, areas)| areas)
            .unwrap_or_default()
    }
}

/// The printed one-SD share and range and the share within 10% of crude.
fn spread_figures(
    run: &SummaryOf,
    figures: &toml::Table,
    tol: &Tolerances,
    to_published: f64,
    range_errors: Option<(f64, f64)>,
    checks: &mut Vec<Check>,
) {
    let measure = run.measure;
    for (key, relative) in [
        ("share_within_1sd", false),
        ("share_within_10pct_of_crude", false),
        ("within_1sd_lower", true),
        ("within_1sd_upper", true),
    ] {
        let Some(p) = number_of(figures.get(key)) else {
            continue;
        };
        let r = run
            .value(key)
            .and_then(|(v, _)| v)
            .map(|v| if relative { v * to_published } else { v });
        let (ok, tolerance) = if relative {
            let standard_error = match (key, range_errors) {
                ("within_1sd_lower", Some((lower, _))) => lower * to_published,
                ("within_1sd_upper", Some((_, upper))) => upper * to_published,
                _ => f64::NAN,
            };
            // The printed end is rounded to a whole number and the run's carries sampling
            // error: the two add.
            let base = format!("±{:.0}% (or ±0.5)", tol.range_relative * 100.0);
            let (allowed, tolerance) = match SamplingNoise::of(tol) {
                Some(noise) if standard_error.is_finite() => {
                    let allowance = noise.allowance(standard_error);
                    (
                        (tol.range_relative * p).max(0.5) + allowance,
                        format!("{base} plus ±{allowance:.1} ({} standard errors)", noise.z),
                    )
                }
                _ => ((tol.range_relative * p).max(0.5), base),
            };
            (r.is_some_and(|r| (r - p).abs() <= allowed), tolerance)
        } else {
            (
                r.is_some_and(|r| (r - p).abs() <= tol.share_absolute + 1e-9),
                format!("±{:.0} points", tol.share_absolute * 100.0),
            )
        };
        checks.push(Check {
            section: "summary",
            // The generator fits each printed one-SD share and range (`synth/src/calibrate.rs`)
            // but is never told the share within 10% of crude.
            kind: if key == "share_within_10pct_of_crude" {
                "derived"
            } else {
                "round_trip"
            },
            figure: format!("{measure} {key}"),
            published: fmt(Some(p), if relative { 0 } else { 2 }),
            reproduced: fmt(r, if relative { 0 } else { 2 }),
            tolerance,
            ok,
        });
    }
}

/// Standard errors of the one-SD range's ends (mean − SD, mean + SD of the areas' standardised
/// rates, as `summary.dispersion` reports them with its default sample SD) under Poisson
/// sampling, by the delta method: an area's rate x from O tests has variance x²/O, and
/// ∂(mean ± SD)/∂xₐ = 1/n ± (xₐ − mean)/((n − 1) SD). A count published as suppressed (1–7)
/// is taken as 4. `None` without `area_rates` or with fewer than two areas.
fn one_sd_range_standard_errors(tables: &[Table], measure: &str) -> Option<(f64, f64)> {
    let rates = find(tables, "area_rates")?;
    let points: Vec<(f64, f64)> = rates
        .rows()
        .filter(|r| rates.text(r, "measure") == measure)
        .filter_map(|r| {
            let x = rates
                .number(r, "standardised_rate")
                .filter(|x| x.is_finite())?;
            let observed = rates.number(r, "observed").unwrap_or(4.0);
            let variance = if observed > 0.0 {
                x * x / observed
            } else {
                0.0
            };
            Some((x, variance))
        })
        .collect();
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let sd = (points.iter().map(|(x, _)| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    if sd <= 0.0 {
        return None;
    }
    let (mut lower, mut upper) = (0.0, 0.0);
    for (x, variance) in points {
        let slope = (x - mean) / ((n - 1.0) * sd);
        lower += (1.0 / n - slope).powi(2) * variance;
        upper += (1.0 / n + slope).powi(2) * variance;
    }
    Some((lower.sqrt(), upper.sqrt()))
}

/// The area the sentence names as the highest.
fn highest_area(run: &SummaryOf, figures: &toml::Table, checks: &mut Vec<Check>) {
    let Some(code) = figures.get("highest_area").and_then(|v| v.as_str()) else {
        return;
    };
    let highest = run.areas("max_standardised_rate");
    let ok = highest.split("; ").any(|a| a == code);
    checks.push(Check {
        section: "summary",
        // The named area is an outlier the synthetic config places (`[[outliers]]`).
        kind: "round_trip",
        figure: format!("{} highest_area", run.measure),
        published: code.into(),
        reproduced: if highest.is_empty() {
            "—".into()
        } else {
            highest.clone()
        },
        tolerance: "the same".into(),
        ok,
    });
}

/// The areas named above twice and four times the national rate, and how many, where the
/// sentence counts them.
fn areas_above_multiples(run: &SummaryOf, figures: &toml::Table, checks: &mut Vec<Check>) {
    let measure = run.measure;
    for key in ["areas_above_2x_national", "areas_above_4x_national"] {
        let Some(codes) = figures.get(key).and_then(|v| v.as_array()) else {
            continue;
        };
        let listed = run.areas(key);
        let listed: Vec<&str> = listed.split("; ").filter(|a| !a.is_empty()).collect();
        // "five CCGs had more than twice the national rate": where the sentence counts them
        // (`<key>_count`), no other area may be above the multiple.
        if let Some(count) = number_of(figures.get(&format!("{key}_count"))) {
            checks.push(Check {
                section: "summary",
                kind: "round_trip",
                figure: format!("{measure} {key} count"),
                published: fmt(Some(count), 0),
                reproduced: listed.len().to_string(),
                tolerance: "the same".into(),
                ok: listed.len() as f64 == count,
            });
        }
        for code in codes.iter().filter_map(|c| c.as_str()) {
            checks.push(Check {
                section: "summary",
                // The named areas are outliers the synthetic config places (`[[outliers]]`).
                kind: "round_trip",
                figure: format!("{measure} {key} lists {code}"),
                published: "listed".into(),
                reproduced: if listed.contains(&code) {
                    "listed"
                } else {
                    "not listed"
                }
                .into(),
                tolerance: "listed".into(),
                ok: listed.contains(&code),
            });
        }
    }
}

/// "For most CCGs the standardised rate was within 10% of the crude rate": over every measure,
/// more than half of the area × measure pairs are. The generator is never told it.
fn most_within_crude(out: &Indexed, checks: &mut Vec<Check>) {
    let (mut within, mut pairs) = (0.0, 0.0);
    for r in out.rows() {
        if out.text(r, "statistic") != "share_within_10pct_of_crude" {
            continue;
        }
        let areas = out
            .rows()
            .find(|a| {
                out.text(a, "measure") == out.text(r, "measure")
                    && out.text(a, "statistic") == "areas_with_rate"
            })
            .and_then(|a| out.number(a, "value"));
        if let (Some(share), Some(areas)) = (out.number(r, "value"), areas) {
            within += share * areas;
            pairs += areas;
        }
    }
    let share = (pairs > 0.0).then(|| within / pairs);
    checks.push(Check {
        section: "summary",
        kind: "derived",
        figure: "share of areas (every measure) with a standardised rate within 10% of crude"
            .into(),
        published: "most".into(),
        reproduced: fmt(share, 2),
        tolerance: "> 0.50".into(),
        ok: share.is_some_and(|s| s > 0.5),
    });
}

fn annex_a(published: &toml::Table, tables: &[Table], tol: &Tolerances, checks: &mut Vec<Check>) {
    let Some(annex) = published.get("annex_a").and_then(|v| v.as_table()) else {
        return;
    };
    if let Some(routes) = find(tables, "dq_routes") {
        for (route, key) in [
            ("gp_practice", "route_gp_practice_share"),
            ("lsoa", "route_lsoa_share"),
            ("non_english_practice", "route_non_english_share"),
            ("unattributed", "route_unknown_share"),
        ] {
            let Some(p) = annex.get(key).and_then(|v| v.as_float()) else {
                continue;
            };
            let r = routes
                .rows()
                .find(|r| routes.text(r, "route") == route)
                .and_then(|r| routes.number(r, "pct"))
                .map(|pct| pct / 100.0);
            checks.push(Check {
                section: "annex_a",
                kind: "round_trip",
                figure: format!("share of tests attributed by {route}"),
                published: format!("{:.1}%", p * 100.0),
                reproduced: r
                    .map(|r| format!("{:.1}%", r * 100.0))
                    .unwrap_or_else(|| "—".into()),
                tolerance: format!("±{:.1} points", tol.route_share_absolute * 100.0),
                ok: r.is_some_and(|r| (r - p).abs() <= tol.route_share_absolute + 1e-9),
            });
        }
    }
    annex_tables(annex, tables, tol, checks);
    largest_shortfall(annex, tables, tol, checks);
}

/// How a printed Annex A figure maps onto a column of the run's table.
#[derive(Clone, Copy)]
enum Field {
    /// A count of tests (printed rounded, to hundreds or thousands).
    Count,
    /// A share, printed as a fraction; the run's column is in percent.
    Share,
    /// A code or a field name, compared without regard to case.
    Text,
}

/// One printed column of an Annex A table: its key in the published file, the run's column, what
/// it is, and its kind of check (what the generator was told of it).
struct Column {
    printed: &'static str,
    run: &'static str,
    field: Field,
    kind: &'static str,
}

const fn column(
    printed: &'static str,
    run: &'static str,
    field: Field,
    kind: &'static str,
) -> Column {
    Column {
        printed,
        run,
        field,
        kind,
    }
}

/// One of Tables A.1–A.4: its list in the published file, the run's table, the key column and
/// the printed columns.
struct AnnexTable {
    list: &'static str,
    table: &'static str,
    key: &'static str,
    what: &'static str,
    columns: &'static [Column],
}

/// The generator is given Table A.1's counts and shares (provider faults) and Table A.2's totals
/// and missing counts (provider sizes and faults), Table A.3's and A.4's shares (area top-ups,
/// missing months); the areas' totals and missing counts follow from the population and rates.
const ANNEX_TABLES: [AnnexTable; 4] = [
    AnnexTable {
        list: "providers_no_practice",
        table: "dq_providers_no_practice",
        key: "provider_code",
        what: "Table A.1",
        columns: &[
            column(
                "no_practice_tests",
                "no_practice_tests",
                Field::Count,
                "round_trip",
            ),
            column(
                "no_practice_share",
                "no_practice_pct",
                Field::Share,
                "round_trip",
            ),
            column(
                "no_lsoa_tests",
                "no_practice_no_lsoa_tests",
                Field::Count,
                "round_trip",
            ),
            column(
                "no_lsoa_share",
                "no_practice_no_lsoa_pct",
                Field::Share,
                "round_trip",
            ),
        ],
    },
    AnnexTable {
        list: "providers_incomplete",
        table: "dq_providers_incomplete",
        key: "provider_code",
        what: "Table A.2",
        columns: &[
            column("total_tests", "total_tests", Field::Count, "round_trip"),
            column(
                "missing_tests",
                "incomplete_tests",
                Field::Count,
                "round_trip",
            ),
            column(
                "missing_share",
                "incomplete_pct",
                Field::Share,
                "round_trip",
            ),
            column(
                "most_common_missing",
                "most_common_missing",
                Field::Text,
                "round_trip",
            ),
        ],
    },
    AnnexTable {
        list: "areas_incomplete",
        table: "dq_areas_incomplete",
        key: "area_code",
        what: "Table A.3",
        columns: &[
            column("total_tests", "total_tests", Field::Count, AREA_TOTAL),
            column(
                "missing_tests",
                "incomplete_tests",
                Field::Count,
                AREA_TOTAL,
            ),
            column(
                "missing_share",
                "incomplete_pct",
                Field::Share,
                "round_trip",
            ),
            column(
                "most_common_missing",
                "most_common_missing",
                Field::Text,
                "round_trip",
            ),
        ],
    },
    AnnexTable {
        list: "areas_missing_submissions",
        table: "dq_areas_missing_submissions",
        key: "area_code",
        what: "Table A.4",
        columns: &[
            column("total_tests", "total_tests", Field::Count, AREA_TOTAL),
            column(
                "missing_tests",
                "estimated_missing",
                Field::Count,
                AREA_TOTAL,
            ),
            column("missing_share", "missing_pct", Field::Share, "round_trip"),
            column("provider_code", "main_provider", Field::Text, "round_trip"),
        ],
    },
];

/// The kind of an area's total and missing count in Tables A.3 and A.4: a round trip where the
/// synthetic year was told the printed totals (`area_totals_from_annex` in its config), else
/// derived (the generator draws every area's rates from the printed spread).
const AREA_TOTAL: &str = "area_total";

fn annex_kind(kind: &'static str, tol: &Tolerances) -> &'static str {
    match kind {
        AREA_TOTAL if tol.area_totals_told => "round_trip",
        AREA_TOTAL => "derived",
        other => other,
    }
}

/// Tables A.1–A.4: every printed row is listed, each of its printed numbers is within tolerance,
/// and a row the run lists but the publication does not is a failing row (where the publication
/// prints the whole table: `[annex_a] tables_printed_in_full`, every table when absent).
fn annex_tables(annex: &toml::Table, tables: &[Table], tol: &Tolerances, checks: &mut Vec<Check>) {
    let printed_in_full = |list: &str| match annex
        .get("tables_printed_in_full")
        .and_then(|v| v.as_array())
    {
        Some(lists) => lists.iter().any(|l| l.as_str() == Some(list)),
        None => true,
    };
    for spec in &ANNEX_TABLES {
        let Some(rows) = annex.get(spec.list).and_then(|v| v.as_array()) else {
            continue;
        };
        let out = find(tables, spec.table);
        let printed_codes: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.as_table())
            .filter_map(|r| r.get(spec.key).and_then(|v| v.as_str()))
            .collect();
        for row in rows.iter().filter_map(|r| r.as_table()) {
            let Some(code) = row.get(spec.key).and_then(|v| v.as_str()) else {
                continue;
            };
            let found = out
                .as_ref()
                .and_then(|t| t.rows().find(|r| t.text(r, spec.key) == code));
            checks.push(Check {
                section: "annex_a",
                kind: "round_trip",
                figure: format!("{} lists {code}", spec.what),
                published: "listed".into(),
                reproduced: if found.is_some() {
                    "listed"
                } else {
                    "not listed"
                }
                .into(),
                tolerance: "listed".into(),
                ok: found.is_some(),
            });
            for c in spec.columns {
                let Some(printed) = row.get(c.printed) else {
                    continue;
                };
                let reproduced = out.as_ref().zip(found).map(|(t, r)| match c.field {
                    Field::Text => (None, t.text(r, c.run)),
                    _ => (t.number(r, c.run), String::new()),
                });
                checks.push(annex_figure(spec.what, code, c, printed, reproduced, tol));
            }
        }
        if !printed_in_full(spec.list) {
            continue;
        }
        let Some(out) = out else { continue };
        for r in out.rows() {
            let code = out.text(r, spec.key);
            if printed_codes.contains(&code.as_str()) {
                continue;
            }
            checks.push(Check {
                section: "annex_a",
                kind: "derived",
                figure: format!("{} lists {code}, which the publication does not", spec.what),
                published: "not listed".into(),
                reproduced: "listed".into(),
                tolerance: "only the printed rows".into(),
                ok: false,
            });
        }
    }
}

/// One printed number (or field) of an Annex A row against the run's.
fn annex_figure(
    what: &str,
    code: &str,
    c: &Column,
    printed: &toml::Value,
    reproduced: Option<(Option<f64>, String)>,
    tol: &Tolerances,
) -> Check {
    let figure = format!("{what} {code} {}", c.printed);
    let number = number_of(Some(printed));
    let (published, shown, tolerance, ok) = match (c.field, number, reproduced) {
        (Field::Text, _, reproduced) => {
            let p = printed.as_str().unwrap_or_default();
            let r = reproduced.map(|(_, t)| t).unwrap_or_default();
            let ok = !r.is_empty() && r.eq_ignore_ascii_case(p);
            (p.to_string(), r, "the same".to_string(), ok)
        }
        (Field::Count, Some(p), reproduced) => {
            let r = reproduced.and_then(|(v, _)| v);
            let (noise, tolerance) = with_sampling(
                tol,
                format!(
                    "±{:.0}% (or ±{:.0} tests)",
                    tol.annex_count_relative * 100.0,
                    tol.annex_count_absolute
                ),
                r.map_or(f64::NAN, f64::sqrt),
                0,
            );
            let allowed = (tol.annex_count_relative * p)
                .max(tol.annex_count_absolute)
                .max(noise);
            (
                fmt(Some(p), 0),
                fmt(r, 0),
                tolerance,
                r.is_some_and(|r| (r - p).abs() <= allowed + 1e-9),
            )
        }
        (Field::Share, Some(p), reproduced) => {
            let r = reproduced.and_then(|(v, _)| v).map(|pct| pct / 100.0);
            (
                format!("{:.1}%", p * 100.0),
                r.map(|r| format!("{:.1}%", r * 100.0))
                    .unwrap_or_else(|| "—".into()),
                format!("±{:.1} points", tol.annex_share_absolute * 100.0),
                r.is_some_and(|r| (r - p).abs() <= tol.annex_share_absolute + 1e-9),
            )
        }
        (_, None, _) => {
            return unparsable_kind("annex_a", annex_kind(c.kind, tol), &figure, printed);
        }
    };
    Check {
        section: "annex_a",
        kind: annex_kind(c.kind, tol),
        figure,
        published,
        reproduced: if shown.is_empty() {
            "—".into()
        } else {
            shown
        },
        tolerance,
        ok,
    }
}

/// The sentence after Table A.3 ("The biggest shortfall is for NHS Birmingham and Solihull CCG,
/// which has standardised rates around 7% lower than expected"): the listed area with the largest
/// share of its tests left out for a missing age, sex or LSOA is the printed one, and that share
/// (by which its complete-case standardised rates fall short) is within tolerance of the printed
/// percentage. The generator is told Table A.3's shares, never this sentence.
fn largest_shortfall(
    annex: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    checks: &mut Vec<Check>,
) {
    let (Some(area), Some(share)) = (
        annex.get("largest_shortfall_area").and_then(|v| v.as_str()),
        number_of(annex.get("largest_shortfall_share")),
    ) else {
        return;
    };
    let listed: Vec<(String, f64, f64)> = find(tables, "dq_areas_incomplete")
        .map(|t| {
            t.rows()
                .filter_map(|r| {
                    let pct = t.number(r, "incomplete_pct")?;
                    let total = t.number(r, "total_tests").unwrap_or(f64::NAN);
                    Some((t.text(r, "area_code"), pct / 100.0, total))
                })
                .collect()
        })
        .unwrap_or_default();
    let by_share = |a: &&(String, f64, f64), b: &&(String, f64, f64)| {
        a.1.total_cmp(&b.1).then_with(|| b.0.cmp(&a.0))
    };
    let largest = listed.iter().max_by(by_share);
    let named = listed.iter().find(|(code, _, _)| code == area);
    // The named area's nearest rival: the largest other listed area.
    let rival = listed
        .iter()
        .filter(|(code, _, _)| code != area)
        .max_by(by_share);
    // Under Poisson sampling two areas whose printed shares are close (2020/21: 6.5% and 6.4%,
    // about one standard error of the smaller area's share apart) can swap places by chance: the
    // named area then passes if it falls short of its rival by less than the sampling allowance
    // of the difference of two binomial shares, √(p₁(1−p₁)/N₁ + p₂(1−p₂)/N₂).
    let variance = |&(_, p, n): &(String, f64, f64)| p * (1.0 - p) / n;
    let (allowance, tolerance) = match (named, rival) {
        (Some(named), Some(rival)) => with_sampling(
            tol,
            "the same".into(),
            100.0 * (variance(named) + variance(rival)).sqrt(),
            2,
        ),
        _ => (0.0, "the same".into()),
    };
    let named_is_largest = match (named, rival) {
        (Some(named), Some(rival)) => {
            by_share(&named, &rival).is_gt() || 100.0 * (rival.1 - named.1) <= allowance
        }
        (Some(_), None) => true,
        (None, _) => false,
    };
    let reproduced = match (largest, named) {
        (Some(top), Some(named)) if top.0 != named.0 => format!(
            "{} ({:.2}%; {area} {:.2}%)",
            top.0,
            100.0 * top.1,
            100.0 * named.1
        ),
        (Some(top), _) => top.0.clone(),
        (None, _) => "—".into(),
    };
    checks.push(Check {
        section: "annex_a",
        kind: "derived",
        figure: "area with the biggest shortfall for missing age, sex or LSOA".into(),
        published: area.into(),
        reproduced,
        tolerance: if allowance > 0.0 {
            format!("{tolerance} points")
        } else {
            tolerance
        },
        ok: named_is_largest,
    });
    checks.push(Check {
        section: "annex_a",
        kind: "derived",
        figure: format!("standardised rates of {area} lower than expected for missing fields"),
        published: format!("around {:.0}%", share * 100.0),
        reproduced: named
            .filter(|_| named_is_largest)
            .map(|n| format!("{:.1}%", n.1 * 100.0))
            .unwrap_or_else(|| "—".into()),
        tolerance: format!("±{:.1} points", tol.shortfall_share_absolute * 100.0),
        ok: named_is_largest
            && named.is_some_and(|n| (n.1 - share).abs() <= tol.shortfall_share_absolute + 1e-9),
    });
}

fn number_of(v: Option<&toml::Value>) -> Option<f64> {
    v.and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
}

/// Section 2.1's records left out of rates, against the run's `dq_exclusions` (standard
/// modalities, the scope of the printed total).
fn exclusions(
    published: &toml::Table,
    tables: &[Table],
    tol: &Tolerances,
    checks: &mut Vec<Check>,
) {
    let Some(printed) = published.get("exclusions").and_then(|v| v.as_table()) else {
        return;
    };
    let Some(out) = find(tables, "dq_exclusions") else {
        return;
    };
    let sum = |column: &str| {
        out.rows()
            .filter_map(|r| out.number(r, column))
            .sum::<f64>()
    };
    let (tests, share) = (sum("tests"), sum("pct") / 100.0);
    if let Some(annex) = published.get("annex_a").and_then(|v| v.as_table()) {
        exclusions_by_reason(annex, &out, tables, tol, checks);
    }
    if let Some(p) = number_of(printed.get("incomplete_cases")) {
        let (noise, tolerance) = with_sampling(
            tol,
            format!("±{:.0}%", tol.exclusions_relative * 100.0),
            tests.sqrt(),
            0,
        );
        checks.push(Check {
            section: "exclusions",
            // The generator is given Annex A's counts by reason, whose sum this is.
            kind: "round_trip",
            figure: "tests left out of rates (incomplete cases)".into(),
            published: fmt(Some(p), 0),
            reproduced: fmt(Some(tests), 0),
            tolerance,
            ok: (tests - p).abs() <= (tol.exclusions_relative * p).max(noise),
        });
    }
    if let Some(p) = number_of(printed.get("incomplete_cases_share")) {
        checks.push(Check {
            section: "exclusions",
            kind: "round_trip",
            figure: "share of tests left out of rates".into(),
            published: format!("{:.1}%", p * 100.0),
            reproduced: format!("{:.2}%", share * 100.0),
            tolerance: format!("±{:.1} points", tol.exclusions_share_absolute * 100.0),
            ok: (share - p).abs() <= tol.exclusions_share_absolute + 1e-9,
        });
    }
}

/// Annex A's omissions by first reason ("Nationally, 208,000 (0.4%) imaging tests with a valid ICB
/// were omitted … because no deprivation score could be imputed from LSOA, a further 144,000
/// (0.3%) had gender missing and a further 500 (0.0%) had no date of birth") against the run's
/// `dq_exclusions`. The 2020/21 "85,000 (0.2%) … no valid CCG" counts the unattributed only
/// (`omitted_no_area_scope = "unattributed"`), so it is compared with that route's tests.
fn exclusions_by_reason(
    annex: &toml::Table,
    out: &Indexed,
    tables: &[Table],
    tol: &Tolerances,
    checks: &mut Vec<Check>,
) {
    let unattributed_only =
        annex.get("omitted_no_area_scope").and_then(|v| v.as_str()) == Some("unattributed");
    let routes = find(tables, "dq_routes");
    for (reason, key, what) in [
        ("no_area", "omitted_no_area", "no valid area"),
        ("no_imd", "omitted_no_lsoa", "no deprivation score (LSOA)"),
        ("no_sex", "omitted_no_sex", "sex missing"),
        ("no_age", "omitted_no_age", "age missing"),
    ] {
        let row = |t: &Indexed, column: &str, value: &str| {
            t.rows()
                .find(|r| t.text(r, column) == value)
                .map(|r| (t.number(r, "tests"), t.number(r, "pct")))
        };
        let reproduced = if reason == "no_area" && unattributed_only {
            routes
                .as_ref()
                .and_then(|t| row(t, "route", "unattributed"))
        } else {
            row(out, "reason", reason)
        };
        let (tests, pct) = reproduced.unwrap_or((None, None));
        if let Some(p) = number_of(annex.get(&format!("{key}_count"))) {
            let (noise, tolerance) = with_sampling(
                tol,
                format!(
                    "±{:.0}% (or ±{:.0} tests)",
                    tol.exclusions_relative * 100.0,
                    tol.annex_count_absolute
                ),
                tests.map_or(f64::NAN, f64::sqrt),
                0,
            );
            let allowed = (tol.exclusions_relative * p)
                .max(tol.annex_count_absolute)
                .max(noise);
            checks.push(Check {
                section: "exclusions",
                kind: "round_trip",
                figure: format!("tests left out of rates: {what}"),
                published: fmt(Some(p), 0),
                reproduced: fmt(tests, 0),
                tolerance,
                ok: tests.is_some_and(|r| (r - p).abs() <= allowed + 1e-9),
            });
        }
        if let Some(p) = number_of(annex.get(&format!("{key}_share"))) {
            let r = pct.map(|pct| pct / 100.0);
            checks.push(Check {
                section: "exclusions",
                kind: "round_trip",
                figure: format!("share of tests left out of rates: {what}"),
                published: format!("{:.1}%", p * 100.0),
                reproduced: r
                    .map(|r| format!("{:.2}%", r * 100.0))
                    .unwrap_or_else(|| "—".into()),
                tolerance: format!("±{:.1} points", tol.exclusions_share_absolute * 100.0),
                ok: r.is_some_and(|r| (r - p).abs() <= tol.exclusions_share_absolute + 1e-9),
            });
        }
    }
}

/// Section 3.1's worked example: the recipe's ratio method on the publication's own two rates
/// must give the printed ratio. Independent of the synthetic year: no run figure enters.
/// The printed rates are per `published_rate_per` people.
fn worked_example(
    published: &toml::Table,
    ratio: &dyn RatioMethod,
    tol: &Tolerances,
    published_rate_per: f64,
    checks: &mut Vec<Check>,
) {
    let Some(example) = published.get("worked_example").and_then(|v| v.as_table()) else {
        return;
    };
    let field = |who: &str, key: &str| {
        number_of(
            example
                .get(who)
                .and_then(|v| v.as_table())
                .and_then(|t| t.get(key)),
        )
    };
    let measure = example
        .get("measure")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let figure = format!(
        "{measure} male/female ratio from the printed rates ({})",
        ratio.method_name()
    );
    let (Some(base), Some(other), Some(p)) = (
        field("female", "standardised_rate"),
        field("male", "standardised_rate"),
        field("male", "ratio"),
    ) else {
        let printed = toml::Value::Table(example.clone());
        checks.push(unparsable("worked_example", &figure, &printed));
        return;
    };
    let r = ratio
        .ratios(&[base], &[other], published_rate_per)
        .ok()
        .and_then(|v| v.first().and_then(|v| v.value));
    checks.push(Check {
        section: "worked_example",
        kind: "independent",
        figure,
        published: fmt(Some(p), 2),
        reproduced: fmt(r, 4),
        tolerance: format!("±{}", tol.worked_example_absolute),
        ok: r.is_some_and(|r| (r - p).abs() <= tol.worked_example_absolute + 1e-9),
    });
}

/// Reads the published-figures file.
pub fn read_published(path: &std::path::Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| crate::error::line_col(&text, s.start))
            .unwrap_or((1, 1));
        Error::Recipe(vec![crate::error::RecipeProblem {
            file: path.to_path_buf(),
            line,
            col,
            message: e.message().to_string(),
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Table {
        let mut t = Table::new(name, name, columns);
        t.rows = rows;
        t
    }
    fn factor_ratios_table(rows: Vec<Vec<Value>>) -> Table {
        let columns = [
            "factor",
            "category",
            "category_code",
            "measure",
            "ratio",
            "stars",
        ];
        table("factor_ratios", &columns, rows)
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn national_rates_and_ratios_are_checked_with_tolerances() {
        let published: toml::Table = toml::from_str(
            r#"
            [national_rates]
            xray = 2764
            spect = 5
            [factor_ratios.sex]
            Male = { xray = "0.77***", spect = "0.83" }
            "#,
        )
        .unwrap();
        let tables = vec![
            table(
                "national_rates",
                &["measure", "rate"],
                vec![
                    vec![text("xray"), Value::Number(2790.0)],
                    vec![text("spect"), Value::Number(5.4)],
                ],
            ),
            factor_ratios_table(vec![
                vec![
                    text("sex"),
                    text("Male"),
                    text("1"),
                    text("xray"),
                    Value::Number(0.785),
                    text("***"),
                ],
                vec![
                    text("sex"),
                    text("Male"),
                    text("1"),
                    text("spect"),
                    Value::Number(0.86),
                    text("*"),
                ],
            ]),
        ];
        let (t, ok) = verify(&published, &tables, &Tolerances::default(), None);
        let verdict = |figure: &str| {
            t.rows
                .iter()
                .find(|r| r[1] == text(figure))
                .map(|r| r[5].clone())
                .unwrap()
        };
        assert_eq!(t.columns[6], "gates");
        // 2790 is 0.94% above 2764: within 1%. 5.4 rounds to the published 5.
        assert_eq!(verdict("xray rate per 10,000"), text("yes"));
        assert_eq!(verdict("spect rate per 10,000"), text("yes"));
        assert_eq!(verdict("sex Male xray"), text("yes"));
        // 0.86 is 0.03 from 0.83: outside ±0.02.
        assert_eq!(verdict("sex Male spect"), text("NO"));
        assert!(!ok);
        // One of two stars agrees: 50% < 95%.
        assert_eq!(verdict("share of published stars reproduced"), text("NO"));
    }

    /// A run whose rates are per 1,000 is compared with figures per 10,000 in their unit: the
    /// same verdicts as the run per 10,000, and the reproduced rate printed per 10,000.
    /// A Poisson-sampled synthetic year: each figure from counts is allowed `sampling_z` standard
    /// errors beside the recipe's tolerance, worked by hand here: spect's rate 5.9 from 100 tests
    /// has standard error 5.9/√100 = 0.59 (4 of them: 2.36 ≥ |5.9 − 5|); Male/Female spect 0.86
    /// from 300 and 400 tests has 0.86·√(1/300 + 1/400) = 0.06568 (4 of them: 0.263 ≥ 0.03). Without Poisson
    /// sampling both fail (±0.5 and ±0.02), and a figure outside 4 of them fails either way.
    #[test]
    fn poisson_sampling_widens_tolerances_by_the_sampling_error() {
        let published: toml::Table = toml::from_str(
            r#"
            [national_rates]
            spect = 5
            xray = 2764
            [factor_ratios.sex]
            Male = { spect = "0.83" }
            "#,
        )
        .unwrap();
        let ratio_row = |category: &str, code: &str, ratio: f64, observed: f64, statistic: &str| {
            vec![
                text("sex"),
                text(category),
                text(code),
                text("spect"),
                Value::Number(ratio),
                text(""),
                Value::Number(observed),
                text(statistic),
                text("rate ratio"),
            ]
        };
        let columns = [
            "factor",
            "category",
            "category_code",
            "measure",
            "ratio",
            "stars",
            "observed",
            "statistic",
            "ratio_method",
        ];
        let tables = vec![
            table(
                "national_rates",
                &["measure", "rate", "observed"],
                vec![
                    vec![text("spect"), Value::Number(5.9), Value::Number(100.0)],
                    // 2764 + 4 · 2900/√10000 = 2764 + 116 < 2900: outside 4 standard errors and 1%.
                    vec![text("xray"), Value::Number(2900.0), Value::Number(10000.0)],
                ],
            ),
            table(
                "factor_ratios",
                &columns,
                vec![
                    ratio_row("Female", "2", 1.0, 400.0, ""),
                    ratio_row("Male", "1", 0.86, 300.0, "5.1"),
                ],
            ),
        ];
        let verdicts = |poisson_sampling: bool| {
            let tol = Tolerances {
                poisson_sampling,
                ..Tolerances::default()
            };
            let (t, _) = verify(&published, &tables, &tol, None);
            let row = |figure: &str| {
                t.rows
                    .iter()
                    .find(|r| r[1] == text(figure))
                    .unwrap()
                    .clone()
            };
            [
                row("spect rate per 10,000"),
                row("xray rate per 10,000"),
                row("sex Male spect"),
            ]
        };
        let [spect, xray, male] = verdicts(true);
        assert_eq!(spect[5], text("yes"));
        assert_eq!(spect[4], text("±1% (or ±0.5) or ±2.4 (4 standard errors)"));
        assert_eq!(xray[5], text("NO"));
        assert_eq!(male[5], text("yes"));
        assert_eq!(male[4], text("±0.02 or ±0.263 (4 standard errors)"));
        let [spect, xray, male] = verdicts(false);
        assert_eq!(spect[5], text("NO"));
        assert_eq!(xray[5], text("NO"));
        assert_eq!(male[5], text("NO"));
        assert_eq!(male[4], text("±0.02"));
    }

    /// An odds ratio's term of Var(log R): 1/(O(1−p)²), with p the category's tests per person;
    /// 100 tests at 2,000 per 10,000 (p = 0.2) give 1/(100 · 0.64) = 0.015625.
    #[test]
    fn the_odds_ratio_variance_term_counts_the_odds_not_the_rate() {
        let columns = ["observed", "standardised_rate", "ratio_method"];
        let odds = table(
            "factor_ratios",
            &columns,
            vec![vec![
                Value::Number(100.0),
                Value::Number(2000.0),
                text("odds ratio"),
            ]],
        );
        let rate = table(
            "factor_ratios",
            &columns,
            vec![vec![
                Value::Number(100.0),
                Value::Number(2000.0),
                text("rate ratio"),
            ]],
        );
        let term = |t: &Table| {
            let indexed = find(std::slice::from_ref(t), "factor_ratios").unwrap();
            log_ratio_variance_term(&indexed, &t.rows[0], 10_000.0)
        };
        assert!((term(&odds) - 0.015625).abs() < 1e-12);
        assert!((term(&rate) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn rates_per_another_unit_are_compared_in_the_published_unit() {
        let published: toml::Table = toml::from_str("[national_rates]\nxray = 2764").unwrap();
        let rates = |xray: f64| {
            vec![table(
                "national_rates",
                &["measure", "rate"],
                vec![vec![text("xray"), Value::Number(xray)]],
            )]
        };
        let reproduced = |t: &Table| t.rows[0][3].clone();
        let (t, _) = verify_rates_per(
            &published,
            &rates(279.0),
            &Tolerances::default(),
            None,
            1_000.0,
        );
        let within = |t: &Table| t.rows[0][5] == text("yes");
        assert!(within(&t));
        assert_eq!(reproduced(&t), text("2790.0"));
        assert_eq!(t.rows[0][1], text("xray rate per 10,000"));
        // Taken as per 10,000, the same number is a tenth of the published rate.
        assert!(!within(
            &verify(&published, &rates(279.0), &Tolerances::default(), None).0
        ));
        // A published file per 1,000 compared with a run per 10,000.
        let per_thousand: toml::Table =
            toml::from_str("rate_per = 1000\n[national_rates]\nxray = 276.4").unwrap();
        let (t, _) = verify(&per_thousand, &rates(2764.0), &Tolerances::default(), None);
        assert!(within(&t));
        assert_eq!(t.rows[0][1], text("xray rate per 1,000"));
    }

    /// An empty or unrelated published file, a run without a table, a figure that cannot be read:
    /// each is a failing row, and the verdict is a failure.
    #[test]
    fn nothing_compared_is_a_failure_never_a_pass() {
        let tol = Tolerances {
            gate: vec![
                "national_rates".into(),
                "factor_ratios".into(),
                "stars".into(),
            ],
            ..Tolerances::default()
        };
        let rates = table(
            "national_rates",
            &["measure", "rate"],
            vec![vec![text("xray"), Value::Number(2790.0)]],
        );
        for published in ["", "[unrelated]\nanswer = 42"] {
            let published: toml::Table = toml::from_str(published).unwrap();
            let (t, ok) = verify(&published, std::slice::from_ref(&rates), &tol, None);
            assert!(!ok, "{published:?} passed");
            for section in ["national_rates", "factor_ratios", "stars"] {
                assert!(
                    t.rows
                        .iter()
                        .any(|r| r[0] == text(section) && r[5] == text("NO")),
                    "no failing {section} row"
                );
            }
        }
        // The published section is there, the run's table is not.
        let published: toml::Table = toml::from_str("[national_rates]\nxray = 2764").unwrap();
        let (_, ok) = verify(&published, &[], &tol, None);
        assert!(!ok);
        // A printed figure that is no number.
        let published: toml::Table = toml::from_str(
            "[national_rates]\nxray = \"about 2,800\"\n[factor_ratios.sex]\nMale = { xray = \"n/a\" }",
        )
        .unwrap();
        let ratios = factor_ratios_table(vec![]);
        let (t, ok) = verify(&published, &[rates, ratios], &tol, None);
        assert!(!ok);
        let unreadable: Vec<&Vec<Value>> = t
            .rows
            .iter()
            .filter(|r| r[4] == text("not a printed figure strata can read"))
            .collect();
        assert_eq!(unreadable.len(), 2, "{:?}", t.rows);
    }

    /// The worked examples of both publications, through the two ratio plugins; a wrong printed
    /// ratio fails. Every row names its kind.
    #[test]
    fn worked_examples_are_independent_checks_of_the_ratio_method() {
        let example = |male: &str| {
            toml::from_str::<toml::Table>(&format!("[worked_example]\nmeasure = \"xray\"\n{male}"))
                .unwrap()
        };
        let tol = Tolerances {
            gate: vec!["worked_example".into()],
            ..Tolerances::default()
        };
        let rate = strata_ratio_rate::RateRatio;
        let odds = strata_ratio_odds::OddsRatio;
        for (rates, method, ok) in [
            (
                "female = { standardised_rate = 3894 }\nmale = { standardised_rate = 3087, ratio = 0.79 }",
                &rate as &dyn RatioMethod,
                true,
            ),
            (
                "female = { standardised_rate = 2973 }\nmale = { standardised_rate = 2465, ratio = 0.77 }",
                &odds,
                true,
            ),
            // The rate ratio of the 2020/21 rates is 0.83, not the printed odds ratio.
            (
                "female = { standardised_rate = 2973 }\nmale = { standardised_rate = 2465, ratio = 0.77 }",
                &rate,
                false,
            ),
        ] {
            let (t, passed) = verify(&example(rates), &[], &tol, Some(method));
            assert_eq!(passed, ok, "{rates}: {:?}", t.rows);
            let row = t
                .rows
                .iter()
                .find(|r| r[0] == text("worked_example"))
                .unwrap();
            assert_eq!(row[7], text("independent"));
        }
    }

    #[test]
    fn exclusions_are_compared_by_count_and_share() {
        let published: toml::Table = toml::from_str(
            "[exclusions]\nincomplete_cases = 643000\nincomplete_cases_share = 0.013",
        )
        .unwrap();
        let run = |tests: [f64; 2], pct: [f64; 2]| {
            table(
                "dq_exclusions",
                &["reason", "tests", "pct"],
                vec![
                    vec![
                        text("no_area"),
                        Value::Number(tests[0]),
                        Value::Number(pct[0]),
                    ],
                    vec![
                        text("no_sex"),
                        Value::Number(tests[1]),
                        Value::Number(pct[1]),
                    ],
                ],
            )
        };
        let tol = Tolerances {
            gate: vec!["exclusions".into()],
            ..Tolerances::default()
        };
        // 630,000 is 2% under 643,000; 1.35% is 0.05 points over 1.3%.
        let (_, ok) = verify(&published, &[run([400e3, 230e3], [0.85, 0.5])], &tol, None);
        assert!(ok);
        // 580,000 is 9.8% under.
        let (_, ok) = verify(&published, &[run([350e3, 230e3], [0.85, 0.5])], &tol, None);
        assert!(!ok);
        // 1.6% is 0.3 points over.
        let (t, ok) = verify(&published, &[run([400e3, 230e3], [1.1, 0.5])], &tol, None);
        assert!(!ok);
        assert!(t.rows.iter().all(|r| r[7] == text("round_trip")));
    }

    /// A figure listed as reported only does not decide the verdict; a listed name that matches
    /// no figure does, as a failure.
    #[test]
    fn reported_only_figures_leave_the_gate_and_stale_names_fail() {
        let published: toml::Table = toml::from_str("[national_rates]\nxray = 2764").unwrap();
        let rates = table(
            "national_rates",
            &["measure", "rate"],
            vec![vec![text("xray"), Value::Number(3000.0)]],
        );
        let tol = |names: &[&str]| Tolerances {
            gate: vec!["national_rates".into()],
            reported_only: names.iter().map(|n| n.to_string()).collect(),
            ..Tolerances::default()
        };
        let tables = std::slice::from_ref(&rates);
        assert!(!verify(&published, tables, &tol(&[]), None).1);
        let (t, ok) = verify(&published, tables, &tol(&["xray rate per 10,000"]), None);
        assert!(ok, "{:?}", t.rows);
        assert_eq!(t.rows[0][6], text("no"));
        let (t, ok) = verify(
            &published,
            tables,
            &tol(&["xray rate per 10,000", "spect"]),
            None,
        );
        assert!(!ok, "{:?}", t.rows);
    }

    /// Tables A.1–A.4: a printed row's numbers are checked with the recipe's tolerances, a row
    /// the run lists but the publication does not fails (where the table is printed whole), and
    /// the biggest-shortfall sentence names the area with the largest incomplete share.
    #[test]
    fn annex_a_numbers_extra_rows_and_the_shortfall_sentence_are_checked() {
        let published = |in_full: &str| {
            toml::from_str::<toml::Table>(&format!(
                r#"
                [annex_a]
                {in_full}
                largest_shortfall_area = "15E"
                largest_shortfall_share = 0.07
                [[annex_a.areas_incomplete]]
                area_code = "15E"
                total_tests = 653000
                missing_tests = 43000
                missing_share = 0.065
                most_common_missing = "sex"
                "#
            ))
            .unwrap()
        };
        let areas = |rows: Vec<(&str, f64, f64, f64, &str)>| {
            table(
                "dq_areas_incomplete",
                &[
                    "area_code",
                    "total_tests",
                    "incomplete_tests",
                    "incomplete_pct",
                    "most_common_missing",
                ],
                rows.into_iter()
                    .map(|(code, total, missing, pct, field)| {
                        vec![
                            text(code),
                            Value::Number(total),
                            Value::Number(missing),
                            Value::Number(pct),
                            text(field),
                        ]
                    })
                    .collect(),
            )
        };
        let tol = Tolerances {
            gate: vec!["annex_a".into()],
            ..Tolerances::default()
        };
        let verdict = |t: &Table, figure: &str| {
            t.rows
                .iter()
                .find(|r| r[1] == text(figure))
                .map(|r| r[5].clone())
                .unwrap_or_else(|| panic!("no row {figure}: {:?}", t.rows))
        };
        // 700,000 is 7.2% over 653,000 (within 10%); 47,000 is 9.3% over; 6.7% is 0.2 points
        // over 6.5%; "Sex" is "sex" whatever the case; 6.7% is "around 7%".
        let run = areas(vec![("15E", 700e3, 47e3, 6.7, "Sex")]);
        let (t, ok) = verify(&published(""), std::slice::from_ref(&run), &tol, None);
        assert!(ok, "{:?}", t.rows);
        assert_eq!(verdict(&t, "Table A.3 15E total_tests"), text("yes"));
        assert_eq!(
            verdict(&t, "Table A.3 15E most_common_missing"),
            text("yes")
        );
        assert_eq!(
            verdict(
                &t,
                "area with the biggest shortfall for missing age, sex or LSOA"
            ),
            text("yes")
        );
        // 800,000 is 22.5% over; LSOA is not sex; 8.2% is 1.7 points over 6.5% and 1.2 from 7%.
        let run = areas(vec![("15E", 800e3, 47e3, 8.2, "LSOA")]);
        let (t, ok) = verify(&published(""), std::slice::from_ref(&run), &tol, None);
        assert!(!ok);
        for figure in [
            "Table A.3 15E total_tests",
            "Table A.3 15E missing_share",
            "Table A.3 15E most_common_missing",
            "standardised rates of 15E lower than expected for missing fields",
        ] {
            assert_eq!(verdict(&t, figure), text("NO"), "{figure}");
        }
        // An area the publication does not list fails, and takes the biggest shortfall…
        let run = areas(vec![
            ("15E", 700e3, 47e3, 6.7, "Sex"),
            ("01T", 107e3, 8e3, 7.5, "LSOA"),
        ]);
        let (t, ok) = verify(&published(""), std::slice::from_ref(&run), &tol, None);
        assert!(!ok);
        assert_eq!(
            verdict(&t, "Table A.3 lists 01T, which the publication does not").clone(),
            text("NO")
        );
        // …unless the table is not printed whole; the sentence still fails.
        let (t, ok) = verify(
            &published("tables_printed_in_full = []"),
            std::slice::from_ref(&run),
            &tol,
            None,
        );
        assert!(!ok);
        assert!(
            !t.rows
                .iter()
                .any(|r| r[1] == text("Table A.3 lists 01T, which the publication does not"))
        );
        assert_eq!(
            verdict(
                &t,
                "area with the biggest shortfall for missing age, sex or LSOA"
            ),
            text("NO")
        );
    }

    /// Under Poisson sampling the named area may fall short of the largest listed share by less
    /// than z standard errors of the difference; systematic sampling must name it exactly.
    #[test]
    fn the_biggest_shortfall_allows_the_sampling_error_of_two_close_shares() {
        let published: toml::Table = toml::from_str(
            r#"
            [annex_a]
            tables_printed_in_full = []
            largest_shortfall_area = "15E"
            largest_shortfall_share = 0.065
            "#,
        )
        .unwrap();
        let areas = |top: f64| {
            table(
                "dq_areas_incomplete",
                &["area_code", "total_tests", "incomplete_pct"],
                vec![
                    vec![text("15E"), Value::Number(653e3), Value::Number(6.50)],
                    vec![text("01T"), Value::Number(107e3), Value::Number(top)],
                ],
            )
        };
        let figure = "area with the biggest shortfall for missing age, sex or LSOA";
        let verdict = |top: f64, poisson_sampling: bool| {
            let tol = Tolerances {
                gate: vec!["annex_a".into()],
                poisson_sampling,
                ..Tolerances::default()
            };
            let (t, _) = verify(&published, &[areas(top)], &tol, None);
            let row = t.rows.iter().find(|r| r[1] == text(figure)).cloned();
            row.map(|r| r[5] == text("yes")).unwrap_or(false)
        };
        // SE of the difference: √(0.065·0.935/653,000 + 0.068·0.932/107,000) = 0.083 points, so
        // at the default 4 standard errors 01T may be ahead by 0.30 points but not by 0.40.
        assert!(verdict(6.40, false));
        assert!(!verdict(6.51, false));
        assert!(verdict(6.51, true));
        assert!(verdict(6.80, true));
        assert!(!verdict(6.90, true));
    }

    /// The one-SD range's standard errors, worked by hand: rates 10, 20, 30 from 100 tests each
    /// (variances 1, 4, 9), mean 20, sample SD 10, slopes (x − 20)/20 = −½, 0, ½; mean − SD has
    /// variance (⅓ + ½)²·1 + (⅓)²·4 + (⅓ − ½)²·9 = 1.3889, mean + SD 6.7222. A Monte Carlo run
    /// of the same areas (100,000 draws of Poisson(100), Python's `random`, seed 1) gave 1.163
    /// and 2.580 against the delta method's 1.179 and 2.593. A suppressed count is taken as 4.
    #[test]
    fn the_one_sd_range_s_standard_errors_follow_the_delta_method() {
        let rates = |observed: [Value; 3]| {
            table(
                "area_rates",
                &["measure", "standardised_rate", "observed"],
                [10.0, 20.0, 30.0]
                    .into_iter()
                    .zip(observed)
                    .map(|(x, o)| vec![text("spect"), Value::Number(x), o])
                    .collect(),
            )
        };
        let hundred = || Value::Number(100.0);
        let (lower, upper) =
            one_sd_range_standard_errors(&[rates([hundred(), hundred(), hundred()])], "spect")
                .expect("three areas");
        assert!((lower - 1.3889f64.sqrt()).abs() < 1e-4, "{lower}");
        assert!((upper - 6.7222f64.sqrt()).abs() < 1e-4, "{upper}");
        assert!((lower / 1.163 - 1.0).abs() < 0.03 && (upper / 2.580 - 1.0).abs() < 0.03);
        // 30 from a suppressed count (taken as 4): variance 225 instead of 9.
        let (_, upper) =
            one_sd_range_standard_errors(&[rates([hundred(), hundred(), text("*")])], "spect")
                .expect("three areas");
        let by_hand = (1.0 / 36.0 + 4.0 / 9.0 + 25.0 / 36.0 * 225.0f64).sqrt();
        assert!((upper - by_hand).abs() < 1e-9, "{upper} vs {by_hand}");
        assert_eq!(one_sd_range_standard_errors(&[], "spect"), None);
    }

    /// Annex A's omissions by first reason; 2020/21's "no valid CCG" is the unattributed route.
    #[test]
    fn exclusions_by_reason_follow_the_printed_scope() {
        let published = |scope: &str| {
            toml::from_str::<toml::Table>(&format!(
                "[exclusions]\nincomplete_cases = 392000\n[annex_a]\nomitted_no_area_count = 85000\n\
                 omitted_no_area_share = 0.002\n{scope}"
            ))
            .unwrap()
        };
        let tables = vec![
            table(
                "dq_exclusions",
                &["reason", "tests", "pct"],
                vec![vec![
                    text("no_area"),
                    Value::Number(238e3),
                    Value::Number(0.68),
                ]],
            ),
            table(
                "dq_routes",
                &["route", "tests", "pct"],
                vec![vec![
                    text("unattributed"),
                    Value::Number(86e3),
                    Value::Number(0.25),
                ]],
            ),
        ];
        let tol = Tolerances {
            gate: vec!["exclusions".into()],
            reported_only: vec!["tests left out of rates (incomplete cases)".into()],
            ..Tolerances::default()
        };
        let (t, ok) = verify(&published(""), &tables, &tol, None);
        assert!(!ok, "238,000 is not 85,000: {:?}", t.rows);
        let (t, ok) = verify(
            &published("omitted_no_area_scope = \"unattributed\""),
            &tables,
            &tol,
            None,
        );
        assert!(ok, "{:?}", t.rows);
    }

    #[test]
    fn printed_ratios_split_into_value_and_stars() {
        assert_eq!(split_ratio("0.77***"), Some((0.77, "***".into())));
        assert_eq!(split_ratio("1.00"), Some((1.0, String::new())));
        assert_eq!(split_ratio("x"), None);
    }
}
