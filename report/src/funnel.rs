//! The funnel plot: each area's standardised ratio (observed / expected) against its expected
//! tests, with two sets of control limits:
//!
//! - the run's confidence-interval method's own limits, inverted over whole counts
//!   ([`crate::FunnelLimits`]), so a point is outside exactly when its limits in `area_rates`
//!   exclude the national rate;
//! - when the run has an overdispersion stage, its limits widened for overdispersion, drawn
//!   through the limits `overdispersed_limits` gives each area at its own expected count (the
//!   report computes none itself), and each point coloured by the flag that table gives it.
//!
//! A compact report ([`crate::ReportInput::compact`]) draws its thousands of points as one short
//! path each and titles only the points flagged at the widest level, so the chart stays small; a
//! smaller one titles every point.

use std::fmt::Write;

use plotters::prelude::*;

use crate::charts::{BAR, DrawResult, FONT, NATIONAL, empty_svg, plain};
use crate::format;
use crate::input::{AdjustedLimits, ReportInput};
use crate::svg::{Hotspot, add_hotspots};

const LIMIT_95: RGBColor = RGBColor(0x41, 0xb6, 0xe6);
const LIMIT_998: RGBColor = RGBColor(0x00, 0x30, 0x87);
/// Overdispersion-adjusted limits: NHS warm yellow and orange, dashed.
const ADJUSTED_95: RGBColor = RGBColor(0xff, 0xb8, 0x1c);
const ADJUSTED_998: RGBColor = RGBColor(0xed, 0x8b, 0x00);
/// A point outside an adjusted limit: NHS dark pink.
const FLAGGED: RGBColor = RGBColor(0x7c, 0x28, 0x55);

/// One point of the funnel plot.
struct Point {
    code: String,
    name: String,
    expected: f64,
    /// The standardised ratio O/E, as the standardised rate over the national rate (unrounded;
    /// the published observed count may be rounded or suppressed).
    ratio: f64,
    observed: f64,
    /// ±k: above (below) the national rate at the k-th Poisson level (1 = 95%, 2 = 99.8%).
    poisson: i32,
    /// ±k: flagged high (low) at the k-th adjusted level; None without adjusted limits.
    adjusted: Option<i32>,
    /// Where the area's own limits put it, as hover text.
    position: String,
}

/// One level of the adjusted limits of a measure, as (expected, lower, upper) by expected count.
struct AdjustedCurve {
    level: f64,
    points: Vec<(f64, f64, f64)>,
}

/// Funnel plot of one measure (module doc). `measure` indexes `input.measures`.
pub fn funnel_svg(input: &ReportInput, measure: usize) -> Result<String, crate::ReportError> {
    let caption = plain(&format!(
        "{}: standardised ratio by expected tests, {}s, {}",
        input.measure_label(measure),
        input.area_kind,
        input.year_label
    ));
    let mut points = funnel_points(input, measure);
    if points.is_empty() {
        return Ok(empty_svg(&caption));
    }
    points.sort_by(|a, b| {
        a.expected
            .total_cmp(&b.expected)
            .then_with(|| a.code.cmp(&b.code))
    });
    // The method's limits first: a failing method fails the report, never a chart without them.
    let (e_min, e_max) = expected_range(&points);
    let mouth = input.funnel.at(&[e_min])?;
    let grid = funnel_grid(e_max);
    let curves = input.funnel.at(&grid)?;
    let adjusted = adjusted_curves(input, measure);
    let mut svg = String::new();
    let mut hotspots = Vec::with_capacity(points.len());
    let funnel = Funnel {
        mouth: &mouth,
        grid: &grid,
        curves: &curves,
        adjusted: &adjusted,
        compact: input.compact(),
    };
    let mut dots = String::new();
    if draw_funnel(
        &mut svg,
        &caption,
        &funnel,
        &points,
        &mut hotspots,
        &mut dots,
    )
    .is_err()
    {
        return Ok(empty_svg(&caption));
    }
    if !dots.is_empty() {
        match svg.rfind("</svg>") {
            Some(at) => svg.insert_str(at, &dots),
            None => svg.push_str(&dots),
        }
    }
    add_hotspots(&mut svg, &hotspots);
    Ok(svg)
}

fn funnel_points(input: &ReportInput, measure: usize) -> Vec<Point> {
    let limits = input.limits_index();
    let adjusted = input.adjusted_index(measure);
    input
        .area_rates(measure)
        .into_iter()
        .filter(|r| {
            r.expected > 0.0
                && r.expected.is_finite()
                && r.national_rate > 0.0
                && r.standardised_rate.is_finite()
        })
        .map(|r| {
            let area = input.area(r.area);
            let own = limits.get(&(r.area, r.measure)).copied();
            let adjusted = adjusted.get(&r.area).copied();
            let poisson = own.map_or(0, |c| c.flag(r.national_rate));
            Point {
                code: area.map_or_else(|| format!("#{}", r.area), |a| a.code.clone()),
                name: area.map_or_else(String::new, |a| a.name.clone()),
                expected: r.expected,
                ratio: r.standardised_rate / r.national_rate,
                observed: r.observed,
                poisson,
                adjusted: adjusted.map(AdjustedLimits::signed_flag),
                position: position(own.is_some(), poisson, adjusted),
            }
        })
        .collect()
}

/// The adjusted limits of one measure, one curve per level, by expected count.
fn adjusted_curves(input: &ReportInput, measure: usize) -> Vec<AdjustedCurve> {
    let mut rows: Vec<&AdjustedLimits> = input
        .adjusted
        .iter()
        .filter(|a| a.measure == measure && a.expected > 0.0 && a.expected.is_finite())
        .collect();
    rows.sort_by(|a, b| a.expected.total_cmp(&b.expected));
    let levels = rows.first().map_or(0, |r| r.levels.len());
    (0..levels)
        .map(|k| AdjustedCurve {
            level: rows[0].levels[k].level,
            points: rows
                .iter()
                .filter_map(|r| r.levels.get(k).map(|l| (r.expected, l.lower, l.upper)))
                .collect(),
        })
        .collect()
}

/// The x range of a funnel plot: the smallest expected count, and the largest with 5% room.
fn expected_range(points: &[Point]) -> (f64, f64) {
    let e_max = points.iter().map(|p| p.expected).fold(0.0, f64::max) * 1.05;
    let e_min = points.iter().map(|p| p.expected).fold(f64::MAX, f64::min);
    (e_min, e_max)
}

/// Expected counts the control limits are drawn at: a fixed grid across the x range.
fn funnel_grid(e_max: f64) -> Vec<f64> {
    const STEPS: usize = 200;
    let start = e_max / STEPS as f64;
    (0..=STEPS)
        .map(|i| start + (e_max - start) * i as f64 / STEPS as f64)
        .collect()
}

/// A funnel's control limits: at the smallest expected count, along the grid, and adjusted.
struct Funnel<'a> {
    mouth: &'a [strata_api::Limits],
    grid: &'a [f64],
    curves: &'a [strata_api::Limits],
    adjusted: &'a [AdjustedCurve],
    compact: bool,
}

/// Hover text: the Poisson position, and the adjusted flag where there is one.
fn position(has_limits: bool, poisson: i32, adjusted: Option<&AdjustedLimits>) -> String {
    let mut text = match (has_limits, poisson) {
        (false, _) => "no confidence limits".to_string(),
        (_, 2) => "above national, 99.8% limits".into(),
        (_, -2) => "below national, 99.8% limits".into(),
        (_, 1) => "above national, 95% limits".into(),
        (_, -1) => "below national, 95% limits".into(),
        _ => "within 95% limits".into(),
    };
    if let Some(a) = adjusted {
        let flag = a.signed_flag();
        // The flag is 1-based: ±k is the k-th level.
        let level = (flag != 0)
            .then(|| a.levels.get(flag.unsigned_abs() as usize - 1))
            .flatten();
        let _ = match (flag.signum(), level) {
            (1, Some(l)) => write!(text, "; overdispersion-adjusted: high at {}", pct(l.level)),
            (-1, Some(l)) => write!(text, "; overdispersion-adjusted: low at {}", pct(l.level)),
            _ => write!(text, "; overdispersion-adjusted: within limits"),
        };
    }
    text
}

fn pct(level: f64) -> String {
    format!("{}%", (level * 1000.0).round() / 10.0)
}

/// A level as a legend label: 0.95 → "95% limits", 0.998 → "99.8% limits".
fn level_label(level: f64) -> String {
    format!("{} limits", pct(level))
}

fn draw_funnel(
    svg: &mut String,
    caption: &str,
    funnel: &Funnel,
    points: &[Point],
    hotspots: &mut Vec<Hotspot>,
    dots: &mut String,
) -> DrawResult {
    let (_, e_max) = expected_range(points);
    let (y_min, y_max) = y_range(funnel, points);
    let root = SVGBackend::with_string(svg, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..e_max, y_min..y_max)?;
    chart
        .configure_mesh()
        .x_desc("Expected tests")
        .y_desc("Standardised ratio (observed / expected)")
        .axis_desc_style((FONT, 14))
        // Expected counts under 2 (small practices' rarer tests) need decimals to be told apart.
        .x_label_formatter(&|x| format::thousands(*x, x_decimals(e_max)))
        .y_label_formatter(&|y| format::ratio(*y))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xe8, 0xed, 0xee))
        .draw()?;

    // Limits kept inside the y range (plotters does not clip lines to the plotting area).
    let inside = |v: f64| v.is_finite() && v >= y_min && v <= y_max;
    for (k, level) in funnel.curves.iter().enumerate() {
        let colour = [LIMIT_95, LIMIT_998][k.min(1)];
        let curve = |values: &[f64]| -> Vec<(f64, f64)> {
            funnel
                .grid
                .iter()
                .copied()
                .zip(values.iter().copied())
                .filter(|&(_, v)| inside(v))
                .collect()
        };
        let label = match funnel.adjusted.is_empty() {
            true => level_label(level.level),
            false => format!("{} (Poisson)", level_label(level.level)),
        };
        chart
            .draw_series(LineSeries::new(curve(&level.upper), colour.stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour));
        chart.draw_series(LineSeries::new(curve(&level.lower), colour.stroke_width(1)))?;
    }
    for (k, level) in funnel.adjusted.iter().enumerate() {
        let colour = [ADJUSTED_95, ADJUSTED_998][k.min(1)];
        // One vertex per pixel column: the limits are smooth in E, and thousands of areas
        // would otherwise give thousands of vertices.
        let mut last_x = i32::MIN;
        let mut kept: Vec<(f64, f64, f64)> = Vec::new();
        for (i, &(e, lower, upper)) in level.points.iter().enumerate() {
            let x = chart.backend_coord(&(e, 1.0)).0;
            if x != last_x || i + 1 == level.points.len() {
                kept.push((e, lower, upper));
                last_x = x;
            }
        }
        let side = |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
            kept.iter()
                .map(|p| (p.0, pick(p)))
                .filter(|&(_, v)| inside(v))
                .collect()
        };
        let style = colour.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(side(|p| p.2), 6, 4, style))?
            .label(format!(
                "{}, overdispersion-adjusted",
                level_label(level.level)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], style));
        chart.draw_series(DashedLineSeries::new(side(|p| p.1), 6, 4, style))?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (e_max, 1.0)],
            NATIONAL.stroke_width(2),
        )))?
        .label("England (ratio 1)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], NATIONAL.stroke_width(2)));
    let flagged = |p: &Point| p.adjusted.is_some_and(|f| f != 0);
    let clamp = |p: &Point| (p.expected, p.ratio.clamp(y_min, y_max));
    if funnel.compact {
        // Drawn below as paths; here only the legend entries.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("Area")
            .legend(|(x, y)| Circle::new((x + 7, y), 3, BAR.filled()));
    } else {
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !flagged(p))
                    .map(|p| Circle::new(clamp(p), 4, BAR.mix(0.8).filled())),
            )?
            .label("Area")
            .legend(|(x, y)| Circle::new((x + 7, y), 4, BAR.filled()));
    }
    if !funnel.adjusted.is_empty() {
        let size = if funnel.compact { 3 } else { 4 };
        let series = points
            .iter()
            .filter(|p| !funnel.compact && flagged(p))
            .map(|p| Circle::new(clamp(p), 4, FLAGGED.mix(0.9).filled()));
        chart
            .draw_series(series)?
            .label("Area outside an adjusted limit")
            .legend(move |(x, y)| Circle::new((x + 7, y), size, FLAGGED.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xae, 0xb7, 0xbd))
        .label_font((FONT, 12))
        .draw()?;

    let widest = funnel.adjusted.len().max(1) as i32;
    let mut within = String::new();
    let mut outside = String::new();
    for p in points {
        let (x, y) = chart.backend_coord(&clamp(p));
        if funnel.compact {
            let path = if flagged(p) {
                &mut outside
            } else {
                &mut within
            };
            let _ = write!(path, "M{x} {y}h0");
        }
        // A compact chart titles only the points flagged at the widest level (adjusted, or
        // Poisson without an overdispersion stage); every area is in the report's tables.
        let titled = !funnel.compact
            || match p.adjusted {
                Some(flag) => flag.abs() == widest,
                None => p.poisson.abs() == 2,
            };
        if titled {
            hotspots.push(Hotspot::Circle {
                x,
                y,
                r: 5,
                title: format!(
                    "{} {}: ratio {}, observed {}, expected {}, {}",
                    p.code,
                    p.name,
                    format::ratio(p.ratio),
                    format::rate(p.observed),
                    format::rate(p.expected),
                    p.position
                ),
            });
        }
    }
    root.present()?;
    for (class, colour, path) in [("within", BAR, within), ("outside", FLAGGED, outside)] {
        if !path.is_empty() {
            let _ = writeln!(
                dots,
                "<path class=\"points {class}\" fill=\"none\" stroke=\"#{:02x}{:02x}{:02x}\" stroke-opacity=\"0.8\" stroke-width=\"6\" stroke-linecap=\"round\" d=\"{path}\"/>",
                colour.0, colour.1, colour.2
            );
        }
    }
    Ok(())
}

fn x_decimals(e_max: f64) -> usize {
    if e_max >= 20.0 {
        0
    } else if e_max >= 2.0 {
        1
    } else {
        2
    }
}

/// The y range: every point, and the funnel's mouth where the smallest area sits (its widest
/// level), but never letting the mouth swamp the points.
fn y_range(funnel: &Funnel, points: &[Point]) -> (f64, f64) {
    let ratio_max = points.iter().map(|p| p.ratio).fold(1.0, f64::max);
    let ratio_min = points.iter().map(|p| p.ratio).fold(1.0, f64::min);
    let widest = |pick: fn(&strata_api::Limits) -> f64, fold: fn(f64, f64) -> f64, init: f64| {
        funnel
            .mouth
            .iter()
            .map(pick)
            .filter(|v| v.is_finite())
            .fold(init, fold)
    };
    let hi_at_min = widest(
        |l| l.upper.first().copied().unwrap_or(f64::NAN),
        f64::max,
        1.0,
    );
    let lo_at_min = widest(
        |l| l.lower.first().copied().unwrap_or(f64::NAN),
        f64::min,
        1.0,
    );
    let y_max = (ratio_max.max(hi_at_min.min(ratio_max * 1.5 + 0.5)) * 1.08).max(1.2);
    let y_min = (ratio_min.min(lo_at_min) * 0.92).clamp(0.0, 0.8);
    (y_min, y_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_print_as_percentages() {
        assert_eq!(level_label(0.95), "95% limits");
        assert_eq!(level_label(0.998), "99.8% limits");
    }
}
