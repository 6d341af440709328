//! Maps 1–14: a choropleth of area standardised rates on the boundary GeoJSON, written as SVG
//! paths (one `<path>` per feature, its `<title>` starting with the area code).
//!
//! Projection: equirectangular with x scaled by cos 54° (England's middle latitude), so England
//! keeps its familiar shape; y grows southwards. Coordinates are written at one decimal place of
//! a pixel and consecutive points that round to the same place are dropped.
//!
//! Colours: six sequential classes (ColorBrewer Blues) with breaks at the sextiles of the areas'
//! standardised rates, rounded to whole numbers; classes whose rounded breaks coincide merge.
//! Areas with no rate are grey.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value as Json;

use crate::ReportError;
use crate::format;
use crate::input::ReportInput;
use crate::svg::coord;

const PALETTE: [&str; 6] = [
    "#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c",
];
const NO_DATA: &str = "#d9d9d9";
const MAP_WIDTH: f64 = 520.0;
const LEGEND_WIDTH: f64 = 210.0;
const MARGIN: f64 = 10.0;
const CAPTION_HEIGHT: f64 = 34.0;

/// One boundary: its join key and its rings in lon/lat, outer and holes alike.
pub(crate) struct Feature {
    pub key: String,
    pub rings: Vec<Vec<(f64, f64)>>,
}

fn ring(value: &Json) -> Result<Vec<(f64, f64)>, ReportError> {
    let bad = || ReportError::Boundaries("a ring is not a list of [lon, lat] positions".into());
    value
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|pos| {
            let pos = pos.as_array().ok_or_else(bad)?;
            match (
                pos.first().and_then(Json::as_f64),
                pos.get(1).and_then(Json::as_f64),
            ) {
                (Some(lon), Some(lat)) => Ok((lon, lat)),
                _ => Err(bad()),
            }
        })
        .collect()
}

fn polygon(value: &Json) -> Result<Vec<Vec<(f64, f64)>>, ReportError> {
    value
        .as_array()
        .ok_or_else(|| ReportError::Boundaries("a polygon is not a list of rings".into()))?
        .iter()
        .map(ring)
        .collect()
}

/// Features of a GeoJSON FeatureCollection (Polygon and MultiPolygon; others are skipped), keyed
/// by the string or number in `join_property`.
pub(crate) fn parse_features(
    geojson: &str,
    join_property: &str,
) -> Result<Vec<Feature>, ReportError> {
    let doc: Json = serde_json::from_str(geojson)
        .map_err(|e| ReportError::Boundaries(format!("not JSON: {e}")))?;
    let features = doc
        .get("features")
        .and_then(Json::as_array)
        .ok_or_else(|| ReportError::Boundaries("no `features` list".into()))?;
    let mut out = Vec::with_capacity(features.len());
    for (i, feature) in features.iter().enumerate() {
        let key = match feature.get("properties").and_then(|p| p.get(join_property)) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => {
                return Err(ReportError::Boundaries(format!(
                    "feature {i} has no property `{join_property}`"
                )));
            }
        };
        let Some(geometry) = feature.get("geometry") else {
            continue;
        };
        let coordinates = geometry.get("coordinates").unwrap_or(&Json::Null);
        let rings = match geometry.get("type").and_then(Json::as_str) {
            Some("Polygon") => polygon(coordinates)?,
            Some("MultiPolygon") => {
                let mut rings = Vec::new();
                for p in coordinates.as_array().ok_or_else(|| {
                    ReportError::Boundaries(format!("feature {i}: MultiPolygon without polygons"))
                })? {
                    rings.extend(polygon(p)?);
                }
                rings
            }
            _ => continue,
        };
        out.push(Feature { key, rings });
    }
    if out.is_empty() {
        return Err(ReportError::Boundaries(
            "no Polygon or MultiPolygon features".into(),
        ));
    }
    Ok(out)
}

/// Class breaks: the inner sextiles of `rates` (quantiles at k/n for n < 6 rates), rounded to
/// whole numbers, distinct and ascending.
#[cfg(test)]
pub(crate) fn class_breaks(rates: &[f64]) -> Vec<f64> {
    class_breaks_at(rates, 0)
}

/// [`class_breaks`] rounded to `decimals` places (a share in percent reads better at one).
pub(crate) fn class_breaks_at(rates: &[f64], decimals: i32) -> Vec<f64> {
    let scale = 10f64.powi(decimals);
    let mut sorted: Vec<f64> = rates.iter().copied().filter(|r| r.is_finite()).collect();
    if sorted.len() < 2 {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    // Never more classes than areas, so that no class is empty by construction.
    let classes = PALETTE.len().min(sorted.len());
    let mut breaks: Vec<f64> = (1..classes)
        .map(|k| {
            // Linear interpolation between order statistics (the usual "type 7" quantile).
            let pos = k as f64 / classes as f64 * (sorted.len() - 1) as f64;
            let (below, frac) = (pos.floor() as usize, pos.fract());
            let above = (below + 1).min(sorted.len() - 1);
            ((sorted[below] + frac * (sorted[above] - sorted[below])) * scale).round() / scale
        })
        .collect();
    breaks.dedup();
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    breaks.retain(|&b| b > min && b <= max);
    breaks
}

/// The class of a rate: how many breaks it reaches.
fn class_of(rate: f64, breaks: &[f64]) -> usize {
    breaks.iter().take_while(|&&b| rate >= b).count()
}

/// Palette colour of class `class` out of `classes`, spread over the whole palette.
fn colour(class: usize, classes: usize) -> &'static str {
    if classes <= 1 {
        return PALETTE[PALETTE.len() / 2];
    }
    PALETTE[class * (PALETTE.len() - 1) / (classes - 1)]
}

/// What a choropleth shows: its caption, each area's value and name by join key, the legend's
/// heading lines, how a value is printed, the places class breaks are rounded to, and an
/// optional reference line under the legend (e.g. England's figure).
pub(crate) struct Choropleth<'a> {
    pub caption: String,
    pub values: HashMap<&'a str, (f64, &'a str)>,
    pub legend: [String; 2],
    pub print: fn(f64) -> String,
    pub break_decimals: i32,
    pub reference: Option<String>,
}

/// Map N: the choropleth of one measure's area standardised rates on `input.boundaries`, with a
/// legend. `measure` indexes `input.measures`.
pub fn map_svg(input: &ReportInput, measure: usize) -> Result<String, ReportError> {
    if measure >= input.measures.len() {
        return Err(ReportError::UnknownMeasure(measure));
    }
    let boundaries = input
        .boundaries
        .ok_or_else(|| ReportError::Boundaries("the report has no boundaries".into()))?;
    let features = parse_features(boundaries.geojson, boundaries.join_property)?;

    // Rates by area code.
    let mut values: HashMap<&str, (f64, &str)> = HashMap::new();
    for r in input.area_rates(measure) {
        if let Some(area) = input.area(r.area) {
            values.insert(
                area.code.as_str(),
                (r.standardised_rate, area.name.as_str()),
            );
        }
    }
    let map = Choropleth {
        caption: format!(
            "Standardised {} rates by {}, {}",
            input.measure_label(measure),
            input.area_kind,
            input.year_label
        ),
        values,
        legend: [
            "Standardised rate".into(),
            format!("per {} population", input.rate_per()),
        ],
        print: format::rate,
        break_decimals: 0,
        reference: input
            .national_rate(measure)
            .map(|national| format!("England: {}", format::rate(national))),
    };
    Ok(choropleth_svg(&features, &map))
}

/// A choropleth of `map.values` on `features`: one path per feature, its `<title>` starting with
/// the feature's key, coloured by the sextile class of its value (grey with no value); every
/// publication's maps are drawn here.
pub(crate) fn choropleth_svg(features: &[Feature], map: &Choropleth) -> String {
    let rates = &map.values;
    let finite: Vec<f64> = rates
        .values()
        .map(|&(r, _)| r)
        .filter(|r| r.is_finite())
        .collect();
    let breaks = class_breaks_at(&finite, map.break_decimals);
    let classes = breaks.len() + 1;
    // Projection and fit.
    let x_scale = 54f64.to_radians().cos();
    let project = |(lon, lat): (f64, f64)| (lon * x_scale, -lat);
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for f in features {
        for p in f.rings.iter().flatten() {
            let (x, y) = project(*p);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    let span_x = (x1 - x0).max(1e-9);
    let span_y = (y1 - y0).max(1e-9);
    let scale = MAP_WIDTH / span_x;
    let map_height = span_y * scale;
    let width = MARGIN * 2.0 + MAP_WIDTH + LEGEND_WIDTH;
    let height = (MARGIN * 2.0 + CAPTION_HEIGHT + map_height)
        .max(300.0)
        .round();
    let to_px = |p: (f64, f64)| {
        let (x, y) = project(p);
        (
            MARGIN + (x - x0) * scale,
            MARGIN + CAPTION_HEIGHT + (y - y0) * scale,
        )
    };

    let caption = &map.caption;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{c}\">",
        w = coord(width),
        h = coord(height),
        c = format::escape(caption)
    );
    let _ = writeln!(
        svg,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text x=\"{}\" y=\"24\" font-family=\"sans-serif\" font-size=\"17\">{}</text>",
        coord(MARGIN),
        format::escape(caption)
    );
    svg.push_str("<g class=\"areas\" stroke=\"#ffffff\" stroke-width=\"0.6\" stroke-linejoin=\"round\" fill-rule=\"evenodd\">\n");
    for f in features {
        let mut d = String::new();
        for ring in &f.rings {
            let mut last = String::new();
            let mut points = 0;
            for p in ring {
                let (x, y) = to_px(*p);
                let xy = format!("{},{}", coord(x), coord(y));
                if xy == last {
                    continue;
                }
                d.push_str(if points == 0 { "M" } else { "L" });
                d.push_str(&xy);
                last = xy;
                points += 1;
            }
            if points > 0 {
                d.push('Z');
            }
        }
        let (fill, title) = match rates.get(f.key.as_str()) {
            Some(&(rate, name)) if rate.is_finite() => (
                colour(class_of(rate, &breaks), classes),
                format!("{} {name}: {}", f.key, (map.print)(rate)),
            ),
            Some(&(_, name)) => (NO_DATA, format!("{} {name}: no data", f.key)),
            None => (NO_DATA, format!("{}: no data", f.key)),
        };
        let _ = writeln!(
            svg,
            "<path fill=\"{fill}\" d=\"{d}\"><title>{}</title></path>",
            format::escape(&title)
        );
    }
    svg.push_str("</g>\n");

    // Legend: one swatch per class, highest first, and "No data" when some area has none.
    let legend_x = MARGIN + MAP_WIDTH + 16.0;
    let mut y = MARGIN + CAPTION_HEIGHT + 10.0;
    let _ = writeln!(
        svg,
        "<g class=\"legend\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>\n<text x=\"{}\" y=\"{}\">{}</text>",
        coord(legend_x),
        coord(y),
        format::escape(&map.legend[0]),
        coord(legend_x),
        coord(y + 15.0),
        format::escape(&map.legend[1])
    );
    y += 28.0;
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !finite.is_empty() {
        for class in (0..classes).rev() {
            let from = if class == 0 { min } else { breaks[class - 1] };
            let label = if class + 1 < classes {
                format!(
                    "{} to under {}",
                    (map.print)(from),
                    (map.print)(breaks[class])
                )
            } else {
                format!("{} to {}", (map.print)(from), (map.print)(max))
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"14\" fill=\"{}\" stroke=\"#768692\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"{}\">{}</text>",
                coord(legend_x),
                coord(y),
                colour(class, classes),
                coord(legend_x + 26.0),
                coord(y + 11.5),
                format::escape(&label)
            );
            y += 20.0;
        }
    }
    let any_missing = features
        .iter()
        .any(|f| !matches!(rates.get(f.key.as_str()), Some(&(r, _)) if r.is_finite()));
    if any_missing {
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"14\" fill=\"{NO_DATA}\" stroke=\"#768692\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"{}\">No data</text>",
            coord(legend_x),
            coord(y),
            coord(legend_x + 26.0),
            coord(y + 11.5)
        );
        y += 20.0;
    }
    if let Some(reference) = &map.reference {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            coord(legend_x),
            coord(y + 14.0),
            format::escape(reference)
        );
    }
    svg.push_str("</g>\n</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_are_rounded_sextiles() {
        let rates: Vec<f64> = (0..=12).map(|i| 100.0 + 10.0 * i as f64).collect();
        // Sextile k sits at position 2k of 13 ordered values: 120, 140, …, 200.
        assert_eq!(
            class_breaks(&rates),
            vec![120.0, 140.0, 160.0, 180.0, 200.0]
        );
        assert_eq!(class_of(100.0, &[120.0, 140.0]), 0);
        assert_eq!(class_of(120.0, &[120.0, 140.0]), 1);
        assert_eq!(class_of(500.0, &[120.0, 140.0]), 2);
    }

    #[test]
    fn breaks_merge_when_rates_are_tiny() {
        // Rounded to whole numbers, the sextiles of rates between 0 and 1.2 collapse to 0 and 1.
        let rates = [0.1, 0.2, 0.3, 0.9, 1.0, 1.2];
        assert_eq!(class_breaks(&rates), vec![1.0]);
        assert!(class_breaks(&[5.0]).is_empty());
        // Three rates: terciles, one area per class.
        assert_eq!(class_breaks(&[100.0, 200.0, 400.0]), vec![167.0, 267.0]);
    }

    #[test]
    fn colours_spread_over_the_palette() {
        assert_eq!(colour(0, 6), PALETTE[0]);
        assert_eq!(colour(5, 6), PALETTE[5]);
        assert_eq!(colour(0, 2), PALETTE[0]);
        assert_eq!(colour(1, 2), PALETTE[5]);
    }

    #[test]
    fn parses_polygon_and_multipolygon() {
        let geojson = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"code":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,50],[1,50],[1,51],[0,50]]]}},
          {"type":"Feature","properties":{"code":7},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,50],[1,50],[1,51],[0,50]]],[[[2,50],[3,50],[3,51],[2,50]]]]}},
          {"type":"Feature","properties":{"code":"P"},"geometry":{"type":"Point","coordinates":[0,50]}}]}"#;
        let features = parse_features(geojson, "code").expect("valid GeoJSON");
        assert_eq!(features.len(), 2);
        assert_eq!(features[1].key, "7");
        assert_eq!(features[1].rings.len(), 2);
        assert!(parse_features(geojson, "missing").is_err());
        assert!(parse_features("{", "code").is_err());
    }
}
