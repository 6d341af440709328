//! The ranked bar chart (Graphs 1–14), drawn with plotters' SVG backend (the funnel plot is
//! `funnel.rs`).
//!
//! plotters cannot put a `<title>` on what it draws, so each bar and point gets an invisible
//! twin with the area's code and figures as its title, laid over the chart at the same pixels.

use std::fmt::Write;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::format;
use crate::input::ReportInput;
use crate::svg::{Hotspot, add_hotspots};

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const BAR: RGBColor = RGBColor(0x00, 0x5e, 0xb8); // NHS blue
pub(crate) const NATIONAL: RGBColor = RGBColor(0xd5, 0x28, 0x1b); // NHS red
const WHISKER: RGBColor = RGBColor(0x21, 0x2b, 0x32); // NHS black

/// An SVG that says there is nothing to draw, for a measure with no finite rates.
pub(crate) fn empty_svg(caption: &str) -> String {
    format!(
        "<svg width=\"640\" height=\"80\" viewBox=\"0 0 640 80\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <text x=\"10\" y=\"30\" font-family=\"sans-serif\" font-size=\"16\">{}</text>\n\
         <text x=\"10\" y=\"60\" font-family=\"sans-serif\" font-size=\"13\">No data to chart.</text>\n</svg>\n",
        format::escape(caption)
    )
}

/// plotters' text is escaped by plotters; this keeps our captions plain.
pub(crate) fn plain(text: &str) -> String {
    text.replace('&', "and")
}

/// One bar of a ranked chart.
pub(crate) struct Bar {
    pub(crate) code: String,
    pub(crate) name: String,
    /// The bar's height (a rate, a ratio, a share).
    pub(crate) rate: f64,
    /// 95% confidence limits; NaN where there are none.
    pub(crate) lower: f64,
    pub(crate) upper: f64,
}

/// The words and number formats of a ranked chart.
pub(crate) struct RankedLabels<'a> {
    pub(crate) caption: &'a str,
    pub(crate) y_desc: &'a str,
    /// The bars' legend entry.
    pub(crate) bars: &'a str,
    /// Whether the chart has 95% confidence whiskers (and their legend entry).
    pub(crate) whiskers: bool,
    /// The reference line's legend entry, given its value.
    pub(crate) reference: fn(f64) -> String,
    /// A bar's value and its limits in its tooltip, and the y axis' labels.
    pub(crate) value: fn(f64) -> String,
    pub(crate) limit: fn(f64) -> String,
    pub(crate) axis: fn(f64) -> String,
}

/// The standardised-rates publication's words: Graphs 1–14.
fn rate_labels<'a>(caption: &'a str, y_desc: &'a str) -> RankedLabels<'a> {
    RankedLabels {
        caption,
        y_desc,
        bars: "Area standardised rate",
        whiskers: true,
        reference: |rate| format!("National rate ({})", format::rate(rate)),
        value: format::rate,
        limit: |x| format::thousands(x, 1),
        axis: format::rate,
    }
}

/// Graph N: area standardised rates of one measure, lowest to highest, with 95%
/// confidence whiskers and a line at the national rate. `measure` indexes `input.measures`.
pub fn ranked_chart_svg(input: &ReportInput, measure: usize) -> String {
    let caption = plain(&format!(
        "Standardised {} rates by {}, {}",
        input.measure_label(measure),
        input.area_kind,
        input.year_label
    ));
    let limits = input.limits_index();
    let bars: Vec<Bar> = input
        .area_rates(measure)
        .into_iter()
        .filter(|r| r.standardised_rate.is_finite())
        .map(|r| {
            let area = input.area(r.area);
            let ci = limits.get(&(r.area, r.measure));
            Bar {
                code: area.map_or_else(|| format!("#{}", r.area), |a| a.code.clone()),
                name: area.map_or_else(String::new, |a| a.name.clone()),
                rate: r.standardised_rate,
                lower: ci.map_or(f64::NAN, |c| c.lower_95),
                upper: ci.map_or(f64::NAN, |c| c.upper_95),
            }
        })
        .collect();
    let y_desc = format!("Standardised rate per {}", input.rate_per());
    ranked_svg(
        &rate_labels(&caption, &y_desc),
        bars,
        input.national_rate(measure),
    )
}

/// A ranked bar chart: bars lowest to highest (ties by code), with 95% whiskers if the labels
/// say so, and a reference line (national, England) when there is one. Every publication's ranked
/// charts are drawn here.
pub(crate) fn ranked_svg(
    labels: &RankedLabels,
    mut bars: Vec<Bar>,
    national: Option<f64>,
) -> String {
    let caption = labels.caption;
    if bars.is_empty() {
        return empty_svg(caption);
    }
    bars.sort_by(|a, b| a.rate.total_cmp(&b.rate).then_with(|| a.code.cmp(&b.code)));

    let n = bars.len();
    let top = bars
        .iter()
        .flat_map(|b| [b.rate, b.upper])
        .chain(national)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Headroom above the tallest whisker keeps the legend off the bars.
    let y_max = if top > 0.0 { top * 1.22 } else { 1.0 };
    // Room for every code under its bar.
    let width = (120 + 14 * n as u32).max(640);
    let height = 460;

    let mut svg = String::new();
    let mut hotspots = Vec::with_capacity(n);
    let drawn = draw_ranked(
        &mut svg,
        (width, height),
        labels,
        &bars,
        national,
        y_max,
        &mut hotspots,
    );
    if drawn.is_err() {
        return empty_svg(caption);
    }
    add_hotspots(&mut svg, &hotspots);
    svg
}

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_ranked(
    svg: &mut String,
    size: (u32, u32),
    labels: &RankedLabels,
    bars: &[Bar],
    national: Option<f64>,
    y_max: f64,
    hotspots: &mut Vec<Hotspot>,
) -> DrawResult {
    let root: DrawingArea<SVGBackend, Shift> =
        SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(80)
        .y_label_area_size(70)
        // A segmented range `0..k` has k + 1 slots.
        .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), 0f64..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // Area codes are written below, one per bar: plotters anchors rotated labels so that
        // they run up into the bars.
        .x_labels(n)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|y| (labels.axis)(*y))
        .y_desc(labels.y_desc)
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xe8, 0xed, 0xee))
        .draw()?;

    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), b.rate),
                ],
                BAR.filled(),
            );
            bar.set_margin(0, 0, 2, 2);
            bar
        }))?
        .label(labels.bars)
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BAR.filled()));

    if labels.whiskers {
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .filter(|(_, b)| b.lower.is_finite() && b.upper.is_finite())
                    .map(|(i, b)| {
                        PathElement::new(
                            vec![
                                (SegmentValue::CenterOf(i), b.lower),
                                (SegmentValue::CenterOf(i), b.upper),
                            ],
                            WHISKER.stroke_width(1),
                        )
                    }),
            )?
            .label("95% confidence interval")
            .legend(|(x, y)| PathElement::new(vec![(x + 7, y - 6), (x + 7, y + 6)], WHISKER));
    }

    if let Some(rate) = national {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(SegmentValue::Exact(0), rate), (SegmentValue::Last, rate)],
                NATIONAL.stroke_width(2),
            )))?
            .label((labels.reference)(rate))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], NATIONAL.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xae, 0xb7, 0xbd))
        .label_font((FONT, 12))
        .draw()?;

    let mut codes = String::from(
        "<g class=\"area-codes\" font-family=\"sans-serif\" font-size=\"10\" fill=\"#000000\">\n",
    );
    for (i, b) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(i), 0.0));
        let (x, y) = (x - 3, y + 8);
        let _ = writeln!(
            codes,
            "<text x=\"{x}\" y=\"{y}\" transform=\"rotate(90, {x}, {y})\">{}</text>",
            format::escape(&b.code)
        );
    }
    codes.push_str("</g>\n");
    for (i, b) in bars.iter().enumerate() {
        let (x0, y0) = chart.backend_coord(&(SegmentValue::Exact(i), b.rate));
        let (x1, y1) = chart.backend_coord(&(SegmentValue::Exact(i + 1), 0.0));
        let limit = labels.limit;
        let ci = if b.lower.is_finite() && b.upper.is_finite() {
            format!(" (95% CI {} to {})", limit(b.lower), limit(b.upper))
        } else {
            String::new()
        };
        hotspots.push(Hotspot::Rect {
            x0,
            y0,
            x1,
            y1,
            title: format!("{} {}: {}{ci}", b.code, b.name, (labels.value)(b.rate)),
        });
    }
    root.present()?;
    drop(chart);
    drop(root);
    match svg.rfind("</svg>") {
        Some(at) => svg.insert_str(at, &codes),
        None => svg.push_str(&codes),
    }
    Ok(())
}
