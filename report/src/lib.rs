//! Turns a finished strata run into the publication's outputs: the Annex B workbook (`.xlsx`), SVG
//! charts and maps, and a self-contained HTML report.
//!
//! This crate is output mechanism, not a plugin: it takes the run's results as plain data
//! ([`ReportInput`]) and returns bytes or text. It writes no files; the engine does, atomically.
//!
//! Outputs:
//! - [`workbook_xlsx`]: a cover sheet, a contents sheet, a notes sheet and one table per sheet
//!   (national rates, standardised rates per measure, factor ratios, and every extra table such as
//!   the summary and the Annex A data-quality tables), following the UK government accessible
//!   spreadsheet conventions: one table per sheet starting in column A, a header row, no merged
//!   cells, notes referenced by `[note N]` markers, numbers stored as numbers, `[x]` for a value
//!   that is not available.
//! - [`ranked_chart_svg`]: the publication's Graphs 1–14, area standardised rates ranked, with 95%
//!   confidence whiskers and the national rate line (plotters).
//! - [`map_svg`]: Maps 1–14, a choropleth of area standardised rates on the boundary GeoJSON, six
//!   sequential classes at sextiles of the areas' rates, with a legend (written as SVG paths).
//! - [`funnel_svg`]: standardised ratio (observed / expected) against expected tests, with the
//!   control limits of the run's confidence-interval method at each of its levels
//!   ([`FunnelLimits`]), so a point is outside the funnel exactly when its own limits exclude 1.
//! - [`line_chart_svg`]: the one line chart of every publication, series over labelled months: a
//!   chart a recipe asks for by name (`[[charts]]`, e.g. a monthly share against the same month a
//!   year before), the CDC shares and the period comparison's monthly tests.
//! - [`report_html`]: the publication's structure with its sentences filled from the run, the SVGs
//!   inlined, and the manifest.
//!
//! The period-comparison publication (seed 002) is made of the same parts from a run's
//! `period_comparison` and `waits` tables ([`ComparisonInput`]): [`comparison_html`] (the same page
//! shell and data tables), [`comparison_workbook_xlsx`] (the same workbook writer),
//! [`monthly_chart_svg`] (England month by month, one period against the other),
//! [`trusts_ranked_svg`] and [`regional_waits_svg`] (the ranked chart of Graphs 1–14).
//!
//! The community diagnostic centre publication (seed 004) is made of the same parts from a run's
//! `cdc_share_england` and `cdc_share` tables ([`CdcInput`]): [`cdc_html`], [`cdc_workbook_xlsx`],
//! [`cdc_share_chart_svg`] (England's monthly CDC share of CT and MRI against a year before, the
//! line chart of [`line_chart_svg`]) and [`cdc_map_svg`] (the ICB choropleth of [`map_svg`]).
//!
//! Determinism: the same input gives the same bytes. SVG coordinates are whole pixels (plotters)
//! or one decimal place (maps); the workbook's creation date is fixed.
//!
//! Every element of a chart or map that stands for an area carries a `<title>` starting with the
//! area code, so a browser test (or a reader hovering) can find a known area.

mod cdc;
mod charts;
mod comparison;
mod explorer;
pub mod format;
mod funnel;
mod html;
mod input;
mod line;
mod map;
mod rows;
mod svg;
mod workbook;

pub use cdc::{
    CDC_ENGLAND_TABLE, CDC_TABLE, CdcInput, MAP_TESTS, MapJoin, cdc_html, cdc_map_svg,
    cdc_share_chart_svg, cdc_workbook_xlsx,
};
pub use charts::ranked_chart_svg;
pub use comparison::{
    COMPARISON_TABLE, ComparisonInput, PublishedFigure, WAITS_TABLE, comparison_html,
    comparison_workbook_xlsx, monthly_chart_svg, regional_waits_svg, trusts_ranked_svg,
};
pub use funnel::funnel_svg;
pub use html::report_html;
pub use input::{
    AdjustedLevel, AdjustedLimits, Boundaries, COMPACT_ABOVE_AREAS, ConfidenceLimits,
    FactorRatioRow, FunnelLimits, MeasureLabel, ReportInput, publication_label,
};
pub use line::{LineChart, LinePalette, LineSeries, line_chart_svg};
pub use map::map_svg;
pub use workbook::workbook_xlsx;

/// Why an output could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("workbook: {0}")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
    #[error("boundaries: {0}")]
    Boundaries(String),
    #[error("measure index {0} is not one of the report's measures")]
    UnknownMeasure(usize),
    /// The confidence-interval method failed while drawing a funnel's control limits.
    #[error("funnel limits: {0}")]
    Method(#[from] strata_api::MethodError),
}
