//! End-to-end checks of every output on a small hand-made run, and of the map on the real ICB
//! (April 2023) boundaries.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use sha2::{Digest, Sha256};
use strata_api::{Area, AreaRate, NationalRate, StandardisedRates, Table, Value};
use strata_api::{ConfidenceIntervalMethod, Configured};
use strata_report::{
    AdjustedLevel, AdjustedLimits, Boundaries, COMPACT_ABOVE_AREAS, ConfidenceLimits,
    FactorRatioRow, FunnelLimits, MeasureLabel, ReportInput, funnel_svg, map_svg, ranked_chart_svg,
    report_html, workbook_xlsx,
};

/// The default confidence-interval method, whose limits the funnel plots draw.
fn byar_exact() -> Box<dyn ConfidenceIntervalMethod> {
    match (strata_ci_byar_exact::DESCRIPTOR.configure)(&strata_api::Params::default()) {
        Ok(Configured::ConfidenceInterval(m)) => m,
        _ => panic!("ci.byar-exact configures with its defaults"),
    }
}

/// Four areas as 1° squares side by side around 53°N; the fourth has no rates in the run.
const SQUARES: &str = r#"{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"code":"A01"},"geometry":{"type":"Polygon","coordinates":[[[-3,53],[-2,53],[-2,54],[-3,54],[-3,53]]]}},
 {"type":"Feature","properties":{"code":"A02"},"geometry":{"type":"Polygon","coordinates":[[[-2,53],[-1,53],[-1,54],[-2,54],[-2,53]]]}},
 {"type":"Feature","properties":{"code":"A03"},"geometry":{"type":"MultiPolygon","coordinates":[[[[-1,53],[0,53],[0,54],[-1,54],[-1,53]]],[[[-1,52],[-0.5,52],[-0.5,52.5],[-1,52]]]]}},
 {"type":"Feature","properties":{"code":"A04"},"geometry":{"type":"Polygon","coordinates":[[[0,53],[1,53],[1,54],[0,54],[0,53]]]}},
 {"type":"Feature","properties":{"code":"Z99"},"geometry":{"type":"Polygon","coordinates":[[[1,53],[2,53],[2,54],[1,54],[1,53]]]}}
]}"#;

const AREA_CODES: [&str; 4] = ["A01", "A02", "A03", "A04"];

struct Fixture {
    measures: Vec<MeasureLabel>,
    areas: Vec<Area>,
    rates: StandardisedRates,
    limits: Vec<ConfidenceLimits>,
    factors: Vec<FactorRatioRow>,
    tables: Vec<Table>,
    sources: Vec<String>,
    notes: Vec<String>,
    geojson: String,
    join: &'static str,
    ci: Box<dyn ConfidenceIntervalMethod>,
    parents: Vec<Option<Area>>,
    adjusted: Vec<AdjustedLimits>,
}

impl Fixture {
    fn input(&self) -> ReportInput<'_> {
        ReportInput {
            title: "Diagnostic Imaging Dataset: Standardised ICB rates",
            year_label: "2023/24",
            area_kind: "ICB",
            recipe_fingerprint: "sha256:0123abcd",
            measures: &self.measures,
            areas: &self.areas,
            rates: &self.rates,
            limits: &self.limits,
            ci_method: "exact Poisson (O < 10) / Byar (O >= 10)",
            funnel: FunnelLimits {
                method: self.ci.as_ref(),
            },
            factor_ratios: &self.factors,
            tables: &self.tables,
            manifest_json: "{\n  \"recipe\": \"configs/2023-24.toml\",\n  \"plugins\": [\"ratio.rate\"]\n}\n",
            sources: &self.sources,
            notes: &self.notes,
            boundaries: Some(Boundaries {
                geojson: &self.geojson,
                join_property: self.join,
            }),
            parents: &self.parents,
            adjusted: &self.adjusted,
            adjusted_method: "Spiegelhalter additive random effects: square-root transform; 10% winsorised",
        }
    }
}

/// Standardised rates from observed, expected and population, with limits as ±10% and ±15%.
fn rates_of(
    national: &[(f64, f64)],
    rows: &[(usize, usize, f64, f64, f64)],
) -> (StandardisedRates, Vec<ConfidenceLimits>) {
    let national_rates: Vec<NationalRate> = national
        .iter()
        .enumerate()
        .map(|(measure, &(observed, population))| NationalRate {
            measure,
            observed,
            population,
            rate: observed / population * 10_000.0,
        })
        .collect();
    let mut areas = Vec::new();
    let mut limits = Vec::new();
    for &(area, measure, observed, expected, population) in rows {
        let national_rate = national_rates[measure].rate;
        let standardised_rate = if expected > 0.0 {
            observed / expected * national_rate
        } else {
            f64::NAN
        };
        areas.push(AreaRate {
            area,
            measure,
            observed,
            expected,
            population,
            crude_rate: observed / population * 10_000.0,
            standardised_rate,
            national_rate,
            variance: None,
        });
        limits.push(ConfidenceLimits {
            area,
            measure,
            lower_95: standardised_rate * 0.9,
            upper_95: standardised_rate * 1.1,
            lower_998: standardised_rate * 0.85,
            upper_998: standardised_rate * 1.15,
        });
    }
    (
        StandardisedRates {
            rate_per: strata_api::DEFAULT_RATE_PER,
            method: "standardisation.indirect".into(),
            national: national_rates,
            areas,
        },
        limits,
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn small() -> Fixture {
    let areas: Vec<Area> = AREA_CODES
        .iter()
        .enumerate()
        .map(|(i, code)| Area {
            code: code.to_string(),
            name: format!("NHS Test Area {} & District ICB", i + 1),
        })
        .collect();
    // National: X-ray 35,510 tests over 100,000 people = 3,551 per 10,000; Chest CT 1,270 = 127.
    // A04 has population but no expected tests for Chest CT (a rate that is not available).
    let (rates, limits) = rates_of(
        &[(35_510.0, 100_000.0), (1_270.0, 100_000.0)],
        &[
            (0, 0, 3000.0, 3100.0, 9000.0),
            (1, 0, 4200.0, 3500.0, 10_000.0),
            (2, 0, 2500.0, 2600.0, 7000.0),
            (3, 0, 5100.0, 4000.0, 11_000.0),
            (0, 1, 100.0, 110.0, 9000.0),
            (1, 1, 300.0, 120.0, 10_000.0),
            (2, 1, 90.0, 95.0, 7000.0),
            (3, 1, 0.0, 0.0, 11_000.0),
        ],
    );
    let factor = |category: &str, measure: usize, rate: f64, ratio: f64, p: f64, stars: &str| {
        FactorRatioRow {
            factor: "sex".into(),
            category: category.into(),
            measure,
            standardised_rate: rate,
            ratio: Some(ratio),
            ratio_method: "ratio.rate".into(),
            statistic: Some(if p < 1.0 { 12.5 } else { 0.0 }),
            p_value: Some(p),
            stars: stars.into(),
            note: String::new(),
        }
    };
    let mut factors = vec![
        factor("2", 0, 3894.0, 1.0, 1.0, ""),
        factor("1", 0, 3087.0, 3087.0 / 3894.0, 0.0001, "***"),
        factor("2", 1, 120.0, 1.0, 1.0, ""),
        factor("1", 1, 135.6, 1.13, 0.33, ""),
    ];
    factors.push(FactorRatioRow {
        factor: "age_band".into(),
        category: "75+".into(),
        measure: 0,
        standardised_rate: 9000.0,
        ratio: None,
        ratio_method: "ratio.odds".into(),
        statistic: None,
        p_value: None,
        stars: String::new(),
        note: "odds undefined: rate per person at or above 1".into(),
    });

    let mut summary = Table::new(
        "summary",
        "Summary of area standardised rates",
        &["measure", "statistic", "value", "areas"],
    );
    for (measure, statistic, value, areas) in [
        ("xray", "national_rate", 3551.0, ""),
        ("xray", "share_within_1sd", 0.67, ""),
        ("xray", "within_1sd_lower", 3223.0, ""),
        ("xray", "within_1sd_upper", 3847.0, ""),
        ("xray", "share_within_10pct_of_crude", 0.75, ""),
        ("xray", "areas_above_2x_national", 0.0, ""),
        ("chest_ct", "national_rate", 127.0, ""),
        ("chest_ct", "min_standardised_rate", 115.5, ""),
        ("chest_ct", "max_standardised_rate", 317.5, ""),
        ("chest_ct", "areas_above_2x_national", 1.0, "A02"),
    ] {
        summary.rows.push(vec![
            text(measure),
            text(statistic),
            Value::Number(value),
            if areas.is_empty() {
                Value::Missing
            } else {
                text(areas)
            },
        ]);
    }
    let mut routes = Table::new(
        "attribution_routes",
        "Routes of attribution, standard modalities",
        &["route", "tests", "share"],
    );
    for (route, tests, share) in [
        ("gp_practice", 44_300_000.0, 0.936),
        ("lsoa", 2_700_000.0, 0.058),
        ("non_english_practice", 149_000.0, 0.003),
        ("unattributed", 126_000.0, 0.003),
    ] {
        routes.rows.push(vec![
            text(route),
            Value::Number(tests),
            Value::Number(share),
        ]);
    }
    let empty = Table::new(
        "providers_missing_practice",
        "Providers with more than 10% and 10,000 tests with no GP practice",
        &["provider_code", "tests"],
    );

    Fixture {
        measures: vec![
            MeasureLabel::for_key("xray"),
            MeasureLabel::for_key("chest_ct"),
        ],
        areas,
        rates,
        limits,
        factors,
        tables: vec![summary, routes, empty],
        sources: vec![
            "Source: synthetic Diagnostic Imaging Dataset made by strata".into(),
            "Contains public sector information licensed under the Open Government Licence v3.0"
                .into(),
        ],
        notes: vec!["Rates for some ICBs are lower because of missing data (Annex A).".into()],
        geojson: SQUARES.to_string(),
        join: "code",
        ci: byar_exact(),
        parents: Vec::new(),
        adjusted: Vec::new(),
    }
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cell_text(range: &calamine::Range<Data>, row: u32, col: u32) -> String {
    match range.get_value((row, col)) {
        Some(Data::String(s)) => s.clone(),
        other => panic!("cell ({row}, {col}) is not text: {other:?}"),
    }
}

fn cell_number(range: &calamine::Range<Data>, row: u32, col: u32) -> f64 {
    match range.get_value((row, col)) {
        Some(Data::Float(x)) => *x,
        Some(Data::Int(x)) => *x as f64,
        other => panic!("cell ({row}, {col}) is not a number: {other:?}"),
    }
}

#[test]
fn workbook_reads_back_with_every_sheet_header_and_a_known_cell() {
    let fixture = small();
    let bytes = workbook_xlsx(&fixture.input()).expect("workbook");
    assert_eq!(
        bytes,
        workbook_xlsx(&fixture.input()).expect("workbook"),
        "same input, same bytes"
    );
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("valid xlsx");
    let names = book.sheet_names();
    assert_eq!(
        names,
        [
            "Cover",
            "Contents",
            "Notes",
            "National_rates",
            "SR_X-ray",
            "SR_Chest_CT",
            "Factor_ratios",
            "summary",
            "attribution_routes",
            "providers_missing_practice",
        ]
    );
    let sheet = |book: &mut Xlsx<_>, name: &str| book.worksheet_range(name).expect(name);

    let cover = sheet(&mut book, "Cover");
    assert_eq!(
        cell_text(&cover, 0, 0),
        "Diagnostic Imaging Dataset: Standardised ICB rates"
    );
    assert_eq!(cell_text(&cover, 1, 0), "Year: 2023/24");
    assert_eq!(
        cell_text(&cover, 3, 0),
        "Recipe fingerprint: sha256:0123abcd"
    );
    let cover_text: Vec<String> = (0..cover.height() as u32)
        .filter_map(|r| match cover.get_value((r, 0)) {
            Some(Data::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(
        cover_text
            .iter()
            .any(|l| l.contains("Open Government Licence"))
    );
    assert!(
        cover_text
            .iter()
            .any(|l| l.starts_with("[note 5] Rates for some ICBs"))
    );

    // Every table sheet: header at row 3 (index 2).
    let contents = sheet(&mut book, "Contents");
    assert_eq!(cell_text(&contents, 2, 0), "Sheet name");
    assert_eq!(cell_text(&contents, 2, 1), "Table title");
    assert_eq!(cell_text(&contents, 4, 0), "National_rates");

    let notes = sheet(&mut book, "Notes");
    assert_eq!(cell_text(&notes, 2, 0), "Note number");
    assert_eq!(cell_text(&notes, 2, 1), "Note text");
    assert_eq!(cell_text(&notes, 3, 0), "[note 1]");

    let national = sheet(&mut book, "National_rates");
    assert_eq!(cell_text(&national, 2, 0), "Measure");
    assert_eq!(cell_text(&national, 2, 4), "Rate per 10,000");
    assert_eq!(cell_text(&national, 3, 0), "X-ray");
    assert!((cell_number(&national, 3, 4) - 3551.0).abs() < 1e-9);

    let xray = sheet(&mut book, "SR_X-ray");
    assert!(
        cell_text(&xray, 0, 0)
            .starts_with("Standardised X-ray rates per 10,000 by ICB, 2023/24 [note 1]")
    );
    let header: Vec<String> = (0..12).map(|c| cell_text(&xray, 2, c)).collect();
    assert_eq!(
        header,
        [
            "ICB code",
            "ICB name",
            "Observed tests",
            "Expected tests",
            "Population",
            "Crude rate per 10,000",
            "Standardised rate per 10,000",
            "95% lower limit",
            "95% upper limit",
            "99.8% lower limit",
            "99.8% upper limit",
            "CI method",
        ]
    );
    // A02: 4,200 observed / 3,500 expected × 3,551 = 4,261.2.
    assert_eq!(cell_text(&xray, 4, 0), "A02");
    assert!((cell_number(&xray, 4, 6) - 4261.2).abs() < 1e-9);
    assert!((cell_number(&xray, 4, 2) - 4200.0).abs() < 1e-9);

    let chest_ct = sheet(&mut book, "SR_Chest_CT");
    assert_eq!(cell_text(&chest_ct, 2, 6), "Standardised rate per 10,000");
    // A04 has no expected Chest CT tests: its rate is not available.
    assert_eq!(cell_text(&chest_ct, 6, 0), "A04");
    assert_eq!(cell_text(&chest_ct, 6, 6), "[x]");

    let factors = sheet(&mut book, "Factor_ratios");
    assert_eq!(cell_text(&factors, 2, 0), "Factor");
    assert_eq!(cell_text(&factors, 2, 8), "Stars");
    assert_eq!(cell_text(&factors, 4, 1), "1");
    assert!((cell_number(&factors, 4, 4) - 3087.0 / 3894.0).abs() < 1e-12);
    assert_eq!(cell_text(&factors, 4, 8), "***");
    assert_eq!(cell_text(&factors, 7, 4), "[x]");

    let summary = sheet(&mut book, "summary");
    assert_eq!(cell_text(&summary, 2, 1), "statistic");
    assert_eq!(cell_text(&summary, 4, 1), "share_within_1sd");
    assert!((cell_number(&summary, 4, 2) - 0.67).abs() < 1e-12);

    let routes = sheet(&mut book, "attribution_routes");
    assert_eq!(cell_text(&routes, 2, 0), "route");
    assert!((cell_number(&routes, 3, 1) - 44_300_000.0).abs() < 1e-9);

    let empty = sheet(&mut book, "providers_missing_practice");
    assert_eq!(cell_text(&empty, 2, 0), "provider_code");
    assert_eq!(cell_text(&empty, 2, 1), "tests");
}

#[test]
fn charts_and_maps_are_deterministic_and_titled_by_area_code() {
    let fixture = small();
    let input = fixture.input();
    for measure in 0..2 {
        let ranked = ranked_chart_svg(&input, measure);
        let map = map_svg(&input, measure).expect("map");
        let funnel = funnel_svg(&input, measure).expect("funnel_svg");
        assert_eq!(ranked, ranked_chart_svg(&input, measure));
        assert_eq!(map, map_svg(&input, measure).expect("map"));
        assert_eq!(funnel, funnel_svg(&input, measure).expect("funnel_svg"));
        for svg in [&ranked, &map, &funnel] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
            assert!(svg.trim_end().ends_with("</svg>"));
        }
        assert_eq!(map.matches("<path").count(), 5, "one path per feature");
        for code in AREA_CODES {
            assert!(
                map.contains(&format!("<title>{code} ")),
                "{code} on map {measure}"
            );
        }
        assert!(map.contains("<title>Z99: no data</title>"));
    }
    // Every X-ray area has a bar and a funnel point; A04 has no Chest CT rate, so no bar there.
    let ranked_xray = ranked_chart_svg(&input, 0);
    let ranked_ct = ranked_chart_svg(&input, 1);
    let funnel_xray = funnel_svg(&input, 0).expect("funnel_svg");
    for code in AREA_CODES {
        assert!(ranked_xray.contains(&format!("<title>{code} ")));
        assert!(funnel_xray.contains(&format!("<title>{code} ")));
    }
    assert!(!ranked_ct.contains("<title>A04 "));
    assert!(ranked_xray.contains(
        "<title>A02 NHS Test Area 2 &amp; District ICB: 4,261 (95% CI 3,835.1 to 4,687.3)</title>"
    ));
    assert!(
        map_svg(&input, 0)
            .expect("map")
            .contains("<title>A02 NHS Test Area 2 &amp; District ICB: 4,261</title>")
    );

    // Snapshots at fixed precision: a changed hash means a changed picture; review it.
    let snapshots = [
        ("ranked xray", ranked_xray),
        ("map xray", map_svg(&input, 0).expect("map")),
        ("map chest_ct", map_svg(&input, 1).expect("map")),
        ("funnel xray", funnel_xray),
    ];
    let got: Vec<(&str, usize, String)> = snapshots
        .iter()
        .map(|(name, svg)| (*name, svg.len(), sha256(svg)))
        .collect();
    for (name, len, hash) in &got {
        println!("{name}: {len} bytes, sha256 {hash}");
    }
    if let Ok(dir) = std::env::var("STRATA_REPORT_PREVIEW") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("preview dir");
        for (name, svg) in &snapshots {
            std::fs::write(
                dir.join(format!("small_{}.svg", name.replace(' ', "_"))),
                svg,
            )
            .expect("write");
        }
    }
    let expected: [(&str, usize, &str); 4] = [
        (
            "ranked xray",
            12182,
            "bd526a1b8579aa87dad51ca381bc1e6e2103e17d74ffb82b562d4e3e160ee32c",
        ),
        (
            "map xray",
            2198,
            "62f9375f9d595580ac17e1fd0222a7bfe11bf0b50c8f6a2ea068adebcbe8272c",
        ),
        (
            "map chest_ct",
            2031,
            "e44cbe6570f0ca9d8a076b2b287c5cb31fa4865e76f380853a83767f57f51439",
        ),
        (
            "funnel xray",
            27563,
            "fdd3ad96f43ceba254f6a0a48f7d8be681548dc21467230672af0f81ac0bbb62",
        ),
    ];
    for ((name, len, hash), (_, want_len, want_hash)) in got.iter().zip(expected) {
        assert_eq!(
            (*len, hash.as_str()),
            (want_len, want_hash),
            "{name} changed"
        );
    }
}

#[test]
fn map_needs_boundaries_and_a_known_measure() {
    let fixture = small();
    let mut input = fixture.input();
    assert!(map_svg(&input, 7).is_err());
    input.boundaries = None;
    assert!(map_svg(&input, 0).is_err());
    // Without boundaries the report leaves the maps out.
    let html = report_html(&input).expect("html");
    assert_eq!(html.matches("<svg").count(), 4);
}

#[test]
fn html_report_is_self_contained_and_filled_from_the_run() {
    let fixture = small();
    let input = fixture.input();
    let html = report_html(&input).expect("html");
    assert_eq!(html, report_html(&input).expect("html"));
    // Map, ranked chart and funnel per measure.
    assert_eq!(html.matches("<svg").count(), 6);
    for code in AREA_CODES {
        assert!(html.contains(&format!("<title>{code} ")), "{code}");
    }
    for forbidden in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "<script src",
        "<link",
        "@import",
    ] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    for sentence in [
        "The national rate was 3,551 X-ray tests per 10,000 registered population.",
        "67% of ICBs were within one standard deviation of the mean, that is between 3,223 and 3,847 tests per 10,000 population.",
        "75% of ICBs had a standardised rate within 10% of their crude rate.",
        "No ICB had more than twice the national rate.",
        "The national rate was 127 Chest CT tests per 10,000 registered population.",
        "Standardised rates ranged from 116 to 318 tests per 10,000 population.",
        "One ICB had more than twice the national rate: NHS Test Area 2 &amp; District ICB (A02).",
    ] {
        assert!(html.contains(sentence), "missing: {sentence}");
    }
    // Chest CT has no share within one SD in the summary: that sentence is skipped.
    let ct_section = &html[html.find("id=\"measure-chest_ct\"").expect("section")..];
    let ct_text = &ct_section[..ct_section.find("<figure>").expect("figure")];
    assert!(!ct_text.contains("standard deviation"));
    // National rates tables and factor tables with stars, in the publication's wording.
    assert!(html.contains("Table 1. National imaging rates per 10,000 by modality, 2023/24"));
    assert!(html.contains("<td>3,551</td>"));
    assert!(html.contains("<th scope=\"row\">Male</th><td>0.79***</td>"));
    assert!(html.contains("<td>1.13</td>"));
    assert!(html.contains("odds undefined"));
    // Annex A tables, the summary left to the sentences.
    assert!(html.contains("Table A.1. Routes of attribution, standard modalities, 2023/24"));
    assert!(html.contains("<td>44,300,000</td>"));
    assert!(html.contains("Table A.2. Providers with more than 10% and 10,000 tests"));
    assert!(!html.contains("Summary of area standardised rates"));
    assert!(html.contains("&quot;recipe&quot;: &quot;configs/2023-24.toml&quot;"));
}

/// The real ICB (April 2023) boundaries: every one of the 42 ICBs drawn and titled by its code.
#[test]
fn real_icb_boundaries_render_all_42_areas() {
    let geojson = include_str!("data/icb23_april2023_ons.geojson");
    let doc: serde_json::Value = serde_json::from_str(geojson).expect("json");
    let features = doc["features"].as_array().expect("features");
    let areas: Vec<Area> = features
        .iter()
        .map(|f| Area {
            code: f["properties"]["ICB23CD"]
                .as_str()
                .expect("code")
                .to_string(),
            name: f["properties"]["ICB23NM"]
                .as_str()
                .expect("name")
                .to_string(),
        })
        .collect();
    assert_eq!(areas.len(), 42);
    // A deterministic spread of rates between about 2,900 and 4,200 per 10,000.
    let rows: Vec<(usize, usize, f64, f64, f64)> = (0..areas.len())
        .map(|i| {
            let expected = 30_000.0 + 1_000.0 * (i % 7) as f64;
            let observed = expected * (0.82 + 0.012 * ((i * 17) % 31) as f64);
            (i, 0, observed.round(), expected, 100_000.0)
        })
        .collect();
    let (rates, limits) = rates_of(&[(3_551_000.0, 10_000_000.0)], &rows);
    let fixture = Fixture {
        measures: vec![MeasureLabel::for_key("xray")],
        areas,
        rates,
        limits,
        factors: Vec::new(),
        tables: Vec::new(),
        sources: Vec::new(),
        notes: Vec::new(),
        geojson: geojson.to_string(),
        join: "ICB23CD",
        ci: byar_exact(),
        parents: Vec::new(),
        adjusted: Vec::new(),
    };
    let input = fixture.input();
    let map = map_svg(&input, 0).expect("map");
    assert_eq!(map.matches("<path").count(), 42);
    for area in &fixture.areas {
        assert!(
            map.contains(&format!("<title>{} {}: ", area.code, area.name)),
            "{}",
            area.code
        );
    }
    assert!(!map.contains("no data"));
    let ranked = ranked_chart_svg(&input, 0);
    let funnel = funnel_svg(&input, 0).expect("funnel_svg");
    println!(
        "map {} bytes sha256 {}; ranked {} bytes; funnel {} bytes",
        map.len(),
        sha256(&map),
        ranked.len(),
        funnel.len()
    );
    // Set STRATA_REPORT_PREVIEW=DIR to keep the pictures for a look.
    if let Ok(dir) = std::env::var("STRATA_REPORT_PREVIEW") {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("preview dir");
        std::fs::write(dir.join("icb_map.svg"), &map).expect("write");
        std::fs::write(dir.join("icb_ranked.svg"), &ranked).expect("write");
        std::fs::write(dir.join("icb_funnel.svg"), &funnel).expect("write");
        std::fs::write(
            dir.join("icb_report.html"),
            report_html(&input).expect("html"),
        )
        .expect("write");
    }
}

/// Practice level: more areas than [`COMPACT_ABOVE_AREAS`], each with a parent, and
/// overdispersion-adjusted limits. Areas are numbered so that their codes and their parents'
/// orders differ (area i's parent is P(i mod 7)).
fn practices() -> Fixture {
    let n = COMPACT_ABOVE_AREAS + 50;
    let areas: Vec<Area> = (0..n)
        .map(|i| Area {
            code: format!("A{i:05}"),
            name: format!("Practice {i}"),
        })
        .collect();
    let parents: Vec<Option<Area>> = (0..n)
        .map(|i| {
            Some(Area {
                code: format!("P{}", i % 7),
                name: format!("Sub-ICB {}", i % 7),
            })
        })
        .collect();
    // Expected 2 to 40 tests, observed spread around it; every 25th area far above.
    let rows: Vec<(usize, usize, f64, f64, f64)> = (0..n)
        .map(|i| {
            let expected = 2.0 + (i % 39) as f64;
            let spread = if i % 25 == 0 {
                3.0
            } else {
                0.7 + 0.02 * (i % 31) as f64
            };
            (i, 0, (expected * spread).round(), expected, 5_000.0)
        })
        .collect();
    let (rates, limits) = rates_of(&[(3_551_000.0, 10_000_000.0)], &rows);
    // Adjusted limits as an additive random-effects method gives them (square-root scale,
    // τ² = 0.01), flagged by the same comparison.
    let adjusted = rows
        .iter()
        .map(|&(area, measure, observed, expected, _)| {
            let ratio = observed / expected;
            let levels = [(0.95, 1.959964), (0.998, 3.090232)]
                .into_iter()
                .map(|(level, z)| {
                    let spread = z * (1.0 / (4.0 * expected) + 0.01f64).sqrt();
                    let (lower, upper) = ((1.0 - spread).max(0.0).powi(2), (1.0 + spread).powi(2));
                    let flag = if ratio > upper {
                        "high"
                    } else if ratio < lower {
                        "low"
                    } else {
                        ""
                    };
                    AdjustedLevel {
                        level,
                        lower,
                        upper,
                        flag: flag.into(),
                    }
                })
                .collect();
            AdjustedLimits {
                area,
                measure,
                expected,
                levels,
                exact_fdr_p_value: 0.5,
            }
        })
        .collect();
    let above: Vec<String> = (0..n)
        .filter(|i| i % 25 == 0)
        .map(|i| format!("A{i:05}"))
        .collect();
    let mut summary = Table::new(
        "summary",
        "Summary",
        &["measure", "statistic", "value", "areas"],
    );
    summary.rows.push(vec![
        text("xray"),
        text("areas_above_2x_national"),
        Value::Number(above.len() as f64),
        text(&above.join("; ")),
    ]);
    let mut long = Table::new(
        "overdispersed_limits",
        "Area ratios",
        &["area_code", "ratio"],
    );
    for i in 0..60_000 {
        long.rows
            .push(vec![text(&format!("A{:05}", i % n)), Value::Number(1.0)]);
    }
    Fixture {
        measures: vec![MeasureLabel::for_key("xray")],
        areas,
        rates,
        limits,
        factors: Vec::new(),
        tables: vec![summary, long],
        sources: Vec::new(),
        notes: Vec::new(),
        geojson: String::new(),
        join: "code",
        ci: byar_exact(),
        parents,
        adjusted,
    }
}

/// At practice level the report has no chart with a bar per area, draws both limit sets on the
/// funnel with a point per area (titled where flagged at the widest adjusted level), caps its
/// area lists and long tables, and carries every area for the searchable tables.
#[test]
fn a_practice_level_report_is_compact_and_keeps_every_area_in_its_tables() {
    let fixture = practices();
    let mut input = fixture.input();
    input.boundaries = None;
    input.area_kind = "practice";
    assert!(input.compact());
    let html = report_html(&input).expect("html");
    assert_eq!(html, report_html(&input).expect("html"), "deterministic");
    assert!(!html.contains("Graph 1."), "no ranked chart of every area");
    assert_eq!(html.matches("<svg").count(), 1, "the funnel alone");
    let funnel = funnel_svg(&input, 0).expect("funnel");
    assert!(funnel.contains("99.8% limits (Poisson)"));
    assert!(funnel.contains("99.8% limits, overdispersion-adjusted"));
    // One short path segment per point, split by the adjusted flag.
    let segments = |class: &str| {
        let at = funnel
            .find(&format!("class=\"points {class}\""))
            .unwrap_or_else(|| panic!("{class} points"));
        let d = &funnel[at..];
        let d = &d[d.find(" d=\"").expect("d") + 4..];
        d[..d.find('"').expect("end")].matches('M').count()
    };
    let flagged = fixture
        .adjusted
        .iter()
        .filter(|a| a.levels.iter().any(|l| !l.flag.is_empty()))
        .count();
    assert!(flagged > 0);
    assert_eq!(segments("outside"), flagged);
    assert_eq!(segments("within"), fixture.areas.len() - flagged);
    // Titles only for areas flagged at 99.8%, each by its code.
    let widest: Vec<&AdjustedLimits> = fixture
        .adjusted
        .iter()
        .filter(|a| !a.levels[1].flag.is_empty())
        .collect();
    assert!(!widest.is_empty());
    assert_eq!(funnel.matches("<title>").count(), widest.len());
    for a in widest {
        let code = &fixture.areas[a.area].code;
        assert!(funnel.contains(&format!("<title>{code} ")), "{code}");
    }
    // Every area once in the page's data, with its parent; the sentence names ten and counts the rest.
    for area in &fixture.areas {
        assert!(html.contains(&format!("[\"{}\",\"{}\",", area.code, area.name)));
    }
    assert!(html.contains("<script id=\"strata-data\" type=\"application/json\">"));
    assert!(html.contains("[\"P0\",\"Sub-ICB 0\"]"));
    // 14 areas above twice the national rate: ten named, four counted.
    assert!(html.contains("14 practices had more than twice the national rate: Practice 0 (A00000), Practice 25 (A00025)"));
    assert!(html.contains("Practice 225 (A00225) and 4 more (every one in the table below"));
    assert!(html.contains(
        "The first 100 of 60,000 rows; the other 59,900 are in overdispersed_limits.csv"
    ));
    assert!(!html.contains("<script src"));
}

/// At practice level each measure's sheet has the areas' parents and goes by parent, then code;
/// a table too long for a sheet is left to its CSV with a note.
#[test]
fn a_practice_level_workbook_groups_areas_by_parent() {
    let fixture = practices();
    let bytes = workbook_xlsx(&fixture.input()).expect("workbook");
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("valid xlsx");
    assert!(
        !book
            .sheet_names()
            .iter()
            .any(|n| n == "overdispersed_limits")
    );
    let sheet = book.worksheet_range("SR_X-ray").expect("sheet");
    assert_eq!(cell_text(&sheet, 2, 2), "Parent code");
    assert_eq!(cell_text(&sheet, 2, 17), "Overdispersion-adjusted flag");
    let keys: Vec<(String, String)> = (0..fixture.areas.len() as u32)
        .map(|r| (cell_text(&sheet, 3 + r, 2), cell_text(&sheet, 3 + r, 0)))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "by parent, then code");
    assert_eq!(keys[0], ("P0".to_string(), "A00000".to_string()));
    assert_eq!(keys[1], ("P0".to_string(), "A00007".to_string()));
    let notes = book.worksheet_range("Notes").expect("notes");
    let text: Vec<String> = notes.rows().flatten().map(|c| c.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("The table overdispersed_limits (60,000 rows)")),
        "{text:?}"
    );
}
