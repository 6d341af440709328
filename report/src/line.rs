//! The line chart of every publication: series over labelled x positions (months), drawn with
//! plotters' SVG backend. The charts a recipe asks for by name (`[[charts]]`, e.g. a monthly share
//! against the same month a year before), the CDC publication's monthly shares and the period
//! comparison's monthly tests (one period against the other) are all drawn here. Each point gets
//! an invisible twin whose title is the series, x label and value (or the point's own title), as
//! the ranked charts' bars do.

use plotters::prelude::*;

use crate::svg::{Hotspot, add_hotspots};

const FONT: &str = "sans-serif";
/// NHS blue, red, dark green, purple, warm yellow: one per series, then again.
const COLOURS: [RGBColor; 5] = [
    RGBColor(0x00, 0x5e, 0xb8),
    RGBColor(0xd5, 0x28, 0x1b),
    RGBColor(0x00, 0x96, 0x39),
    RGBColor(0x33, 0x00, 0x72),
    RGBColor(0xff, 0xb8, 0x1c),
];

/// The earlier period grey, then NHS blue, red and dark green: a comparison of two periods.
const PERIODS: [RGBColor; 4] = [
    RGBColor(0x76, 0x86, 0x92),
    RGBColor(0x00, 0x5e, 0xb8),
    RGBColor(0xd5, 0x28, 0x1b),
    RGBColor(0x00, 0x96, 0x39),
];

/// One line: its legend label and its points as (x index, value); lines of one `group` share a
/// colour; `dashed` draws it dashed (a comparison line, e.g. the year before). Non-finite values
/// are left out. `titles`, when given, is each point's tooltip, in the order of `points`
/// (otherwise `label, x label: value`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineSeries {
    pub label: String,
    pub points: Vec<(usize, f64)>,
    pub group: usize,
    pub dashed: bool,
    pub titles: Vec<String>,
}

/// Which colours the groups take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinePalette {
    /// NHS blue, red, dark green, purple, warm yellow: one per series.
    #[default]
    Series,
    /// The earlier period grey, the later NHS blue: two periods compared.
    Periods,
}

/// A chart: its caption, y-axis label, the x positions' labels, the lines and their colours.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    pub caption: String,
    pub y_label: String,
    pub x_labels: Vec<String>,
    pub series: Vec<LineSeries>,
    pub palette: LinePalette,
}

/// The chart as SVG text; a chart with no finite point says there is nothing to draw.
pub fn line_chart_svg(chart: &LineChart) -> String {
    let caption = chart.caption.replace('&', "and");
    let finite = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
    };
    if finite().next().is_none() || chart.x_labels.is_empty() {
        return format!(
            "<svg width=\"640\" height=\"80\" viewBox=\"0 0 640 80\" xmlns=\"http://www.w3.org/2000/svg\">\n\
             <text x=\"10\" y=\"30\" font-family=\"sans-serif\" font-size=\"16\">{}</text>\n\
             <text x=\"10\" y=\"60\" font-family=\"sans-serif\" font-size=\"13\">No data to chart.</text>\n</svg>\n",
            crate::format::escape(&caption)
        );
    }
    let y_max = finite().fold(0.0, f64::max) * 1.15;
    let mut svg = String::new();
    let mut hotspots = Vec::new();
    if draw(&mut svg, &caption, chart, y_max.max(1e-9), &mut hotspots).is_err() {
        return String::new();
    }
    add_hotspots(&mut svg, &hotspots);
    svg
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(
    svg: &mut String,
    caption: &str,
    chart: &LineChart,
    y_max: f64,
    hotspots: &mut Vec<Hotspot>,
) -> DrawResult {
    let n = chart.x_labels.len();
    let root = SVGBackend::with_string(svg, (760, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(caption, (FONT, 17))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(84)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0..y_max)?;
    let labels = chart.x_labels.clone();
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(n.min(14))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if y_max >= 1000.0 {
                crate::format::thousands(*y, 0)
            } else {
                format!("{y:.1}")
            }
        })
        .y_desc(chart.y_label.as_str())
        .label_style((FONT, 12))
        .draw()?;
    for s in &chart.series {
        let colour = match chart.palette {
            LinePalette::Series => COLOURS[s.group % COLOURS.len()],
            LinePalette::Periods => PERIODS[s.group % PERIODS.len()],
        };
        let style = ShapeStyle::from(&colour).stroke_width(2);
        let kept: Vec<(usize, (f64, f64))> = s
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.1.is_finite())
            .map(|(k, &(x, y))| (k, (x as f64, y)))
            .collect();
        let points: Vec<(f64, f64)> = kept.iter().map(|&(_, p)| p).collect();
        let legend = if s.dashed {
            c.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?
        } else {
            c.draw_series(LineSeries_::new(points.clone(), style))?
        };
        legend
            .label(s.label.replace('&', "and"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        let marker = if s.dashed {
            ShapeStyle::from(&colour).stroke_width(2)
        } else {
            colour.filled()
        };
        c.draw_series(points.iter().map(|&p| Circle::new(p, 4, marker)))?;
        for &(k, (x, y)) in &kept {
            let (px, py) = c.backend_coord(&(x, y));
            let title = match s.titles.get(k) {
                Some(title) => title.clone(),
                None => format!(
                    "{}, {}: {}",
                    s.label,
                    chart.x_labels.get(x as usize).map_or("", String::as_str),
                    crate::svg::coord(y)
                ),
            };
            hotspots.push(Hotspot::Circle {
                x: px,
                y: py,
                r: 5,
                title,
            });
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 12))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// plotters' line series, renamed so it does not clash with [`LineSeries`] here.
use plotters::series::LineSeries as LineSeries_;

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: &[f64]) -> LineChart {
        LineChart {
            caption: "CT & MRI".into(),
            y_label: "%".into(),
            x_labels: vec!["2024-07".into(), "2024-08".into()],
            series: vec![
                LineSeries {
                    label: "CT".into(),
                    points: values.iter().copied().enumerate().collect(),
                    group: 0,
                    dashed: false,
                    titles: Vec::new(),
                },
                LineSeries {
                    label: "CT, a year before".into(),
                    points: vec![(1, 5.0)],
                    group: 0,
                    dashed: true,
                    titles: vec!["CT a year before: 5%".into()],
                },
            ],
            palette: LinePalette::Series,
        }
    }

    #[test]
    fn every_point_has_a_titled_twin_and_the_same_chart_the_same_bytes() {
        let svg = line_chart_svg(&chart(&[7.5, 8.2]));
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<title>CT, 2024-08: 8.2</title>"), "{svg}");
        assert!(
            svg.contains("<title>CT a year before: 5%</title>"),
            "a point's own title"
        );
        assert_eq!(svg, line_chart_svg(&chart(&[7.5, 8.2])));
        assert_ne!(svg, line_chart_svg(&chart(&[7.5, 9.2])));
    }

    #[test]
    fn a_chart_without_finite_points_says_so() {
        let mut c = chart(&[f64::NAN]);
        c.series.truncate(1);
        assert!(line_chart_svg(&c).contains("No data to chart."));
    }
}
