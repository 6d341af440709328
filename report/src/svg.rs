//! Small pieces shared by the SVG writers.

use std::fmt::Write;

/// A coordinate at one decimal place, never `-0.0`, so text is stable across platforms and
/// across floats that differ in the last bits.
pub(crate) fn coord(x: f64) -> String {
    let tenths = (x * 10.0).round();
    let tenths = if tenths == 0.0 { 0.0 } else { tenths };
    format!("{:.1}", tenths / 10.0)
}

/// An invisible shape with a tooltip, laid over a plotters chart, since plotters' SVG backend
/// cannot attach `<title>` to what it draws.
pub(crate) enum Hotspot {
    Rect {
        x0: i32,
        y0: i32,
        x1: i32,
        y1: i32,
        title: String,
    },
    Circle {
        x: i32,
        y: i32,
        r: i32,
        title: String,
    },
}

/// Appends the hotspots (as one `<g>`) just before the closing `</svg>`.
pub(crate) fn add_hotspots(svg: &mut String, hotspots: &[Hotspot]) {
    let mut overlay = String::from("<g class=\"areas\" fill=\"#000\" fill-opacity=\"0\">\n");
    for spot in hotspots {
        match spot {
            Hotspot::Rect {
                x0,
                y0,
                x1,
                y1,
                title,
            } => {
                let (x, w) = (x0.min(x1), (x1 - x0).abs().max(1));
                let (y, h) = (y0.min(y1), (y1 - y0).abs().max(1));
                let _ = writeln!(
                    overlay,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"><title>{}</title></rect>",
                    crate::format::escape(title)
                );
            }
            Hotspot::Circle { x, y, r, title } => {
                let _ = writeln!(
                    overlay,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"{r}\"><title>{}</title></circle>",
                    crate::format::escape(title)
                );
            }
        }
    }
    overlay.push_str("</g>\n");
    match svg.rfind("</svg>") {
        Some(at) => svg.insert_str(at, &overlay),
        None => svg.push_str(&overlay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_at_one_decimal() {
        assert_eq!(coord(1.04), "1.0");
        assert_eq!(coord(1.05000001), "1.1");
        assert_eq!(coord(-0.01), "0.0");
        assert_eq!(coord(-12.34), "-12.3");
    }

    #[test]
    fn hotspots_go_inside_the_svg() {
        let mut svg = "<svg>\n</svg>\n".to_string();
        add_hotspots(
            &mut svg,
            &[Hotspot::Circle {
                x: 1,
                y: 2,
                r: 3,
                title: "A & B".into(),
            }],
        );
        assert!(svg.ends_with("</g>\n</svg>\n"));
        assert!(svg.contains("<title>A &amp; B</title>"));
    }
}
