//! Seed 004's publication (`configs/cdc-share-2024.toml`): `report.html`, `cdc_share.xlsx`, the
//! monthly chart and the ICB maps are made from the run's own `cdc_share_england.csv` and
//! `cdc_share.csv`. The chart's points and every map area's title are compared with the CSV rows
//! they stand for, the maps' ICBs with the boundary file's codes (read here with serde_json) and
//! the CSV's; a hand-made world whose CDC file names an ICB the boundaries lack gets it listed,
//! not dropped. And the 2023/24 recipe's context table (`icb_cdc_context`): each ICB's CDC share
//! over 2023/24 is rebuilt here from the CDC recipe's own monthly `cdc_share.csv` (another run,
//! another recipe) and its rates from `area_rates.csv`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use calamine::{Reader, Xlsx};
use strata_tests::{strata, temp_dir};

type Row = BTreeMap<String, String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rows(path: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn number(row: &Row, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = `{}` in {row:?}", row[column]))
}

/// The `<title>`s of an SVG, in drawing order.
fn titles(svg: &str) -> Vec<String> {
    svg.split("<title>")
        .skip(1)
        .filter_map(|s| s.split_once("</title>"))
        .map(|(t, _)| t.replace("&#39;", "'").replace("&amp;", "&"))
        .collect()
}

/// The boundary file's area codes, read independently of the report crate.
fn boundary_codes(path: &Path) -> BTreeSet<String> {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).expect("GeoJSON");
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            f["properties"]["area_code"]
                .as_str()
                .expect("area_code")
                .to_string()
        })
        .collect()
}

/// `2024-08` → `Aug 24`, the chart's axis label.
fn short(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m) = month.split_once('-').unwrap();
    format!("{} {}", NAMES[m.parse::<usize>().unwrap() - 1], &y[2..])
}

fn run_cdc_recipe(out: &Path) {
    let recipe = workspace().join("configs/cdc-share-2024.toml");
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
}

#[test]
fn the_cdc_report_has_the_chart_the_maps_of_every_icb_and_the_seed_s_figures() {
    let tmp = temp_dir("cdc-pub");
    let out = tmp.path().join("out");
    run_cdc_recipe(&out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let england = rows(&out.join("cdc_share_england.csv"));
    let sub = rows(&out.join("cdc_share.csv"));

    // The chart: CT and MRI, September 2023 to August 2024, each point the CSV's share to one
    // place; the year before where the CSV has it (August 2023 for August 2024).
    let chart = std::fs::read_to_string(out.join("charts/cdc_share_ct_mri_monthly.svg")).unwrap();
    assert!(html.contains(&chart), "the report inlines the chart");
    let chart_titles: BTreeSet<String> = titles(&chart).into_iter().collect();
    let mut points = 0;
    for r in england
        .iter()
        .filter(|r| r["measure"] == "cdc_share" && ["CT", "MRI"].contains(&r["test"].as_str()))
    {
        let month = &r["month"];
        if month.as_str() < "2023-09" {
            continue;
        }
        let want = format!(
            "{}, {}: {:.1}",
            r["test"],
            short(month),
            number(r, "share_pct")
        );
        assert!(chart_titles.contains(&want), "{want} in {chart_titles:?}");
        points += 1;
        if let Ok(before) = r["share_pct_year_earlier"].parse::<f64>() {
            let want = format!(
                "{}, same month a year before, {}: {before:.1}",
                r["test"],
                short(month)
            );
            assert!(chart_titles.contains(&want), "{want}");
            points += 1;
        }
    }
    assert_eq!(
        points,
        2 * 12 + 2,
        "twelve months of each test and two years before"
    );
    assert_eq!(chart_titles.len(), points, "no point the CSV does not hold");

    // The maps: one area per boundary, the boundaries' ICBs exactly the CSV's, each title the
    // CSV's August 2024 share.
    let boundaries =
        boundary_codes(&workspace().join("data/reference/2023-24/boundaries_icb23.geojson"));
    let csv_icbs: BTreeSet<String> = sub
        .iter()
        .filter(|r| r["level"] == "icb")
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(boundaries.len(), 42);
    assert_eq!(
        csv_icbs, boundaries,
        "every ICB of the CDC table has a boundary"
    );
    for test in ["CT", "MRI", "ALL"] {
        let svg = std::fs::read_to_string(
            out.join(format!("charts/cdc_share_{}_map.svg", test.to_lowercase())),
        )
        .unwrap();
        assert!(html.contains(&svg), "the report inlines the {test} map");
        let map: BTreeMap<String, String> = titles(&svg)
            .into_iter()
            .map(|t| {
                let (code, rest) = t.split_once(' ').unwrap();
                (code.to_string(), rest.to_string())
            })
            .collect();
        assert_eq!(
            map.keys().cloned().collect::<BTreeSet<_>>(),
            boundaries,
            "{test}: one titled area per boundary"
        );
        for r in sub.iter().filter(|r| {
            r["level"] == "icb"
                && r["measure"] == "cdc_share"
                && r["test"] == test
                && r["month"] == "2024-08"
        }) {
            let want = format!("{}: {:.1}%", r["name"], number(r, "share_pct"));
            assert_eq!(map[&r["code"]], want, "{test} {}", r["code"]);
        }
    }
    assert!(
        html.contains(
            "<p id=\"map-join\" data-joined=\"42\" data-not-in-boundaries=\"\" data-no-data=\"\">"
        ),
        "the report says how the ICBs joined"
    );

    // The seed's figures with their verify status: every one passes.
    let figures = html
        .split("<table id=\"published-figures\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the published figures' table");
    assert_eq!(figures.matches("<td>pass</td>").count(), 17);
    assert!(!figures.contains("FAIL"));
    for (id, disclosure) in [
        ("england-latest", "none: national totals, published exactly"),
        ("icbs-latest", "nhs-england-sub-national"),
    ] {
        let table = html
            .split(&format!("<table id=\"{id}\">"))
            .nth(1)
            .and_then(|t| t.split("</table>").next())
            .unwrap_or_else(|| panic!("table {id}"));
        for column in ["numerator", "denominator", "method", "disclosure"] {
            assert!(
                table.contains(&format!("<th scope=\"col\">{column}</th>")),
                "{id}: {column}"
            );
        }
        assert!(table.contains(disclosure), "{id}: {disclosure}");
    }

    // The workbook: the levels' sheets hold every row of their CSV.
    let bytes = std::fs::read(out.join("cdc_share.xlsx")).unwrap();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("xlsx");
    for (sheet, level, n) in [
        ("England", "", england.len()),
        (
            "Regions",
            "region",
            sub.iter().filter(|r| r["level"] == "region").count(),
        ),
        (
            "ICBs",
            "icb",
            sub.iter().filter(|r| r["level"] == "icb").count(),
        ),
        ("Published_figures", "", 17),
    ] {
        let range = book
            .worksheet_range(sheet)
            .unwrap_or_else(|e| panic!("{sheet}: {e}"));
        let last = range.end().map_or(0, |(r, _)| r as usize);
        assert_eq!(last, 2 + n, "{sheet} ({level}): one row per CSV row");
    }
}

/// A boundary file of two squares, `codes` their area codes.
fn squares(codes: &[&str]) -> String {
    let features: Vec<String> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let x = i as f64;
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{\"area_code\":\"{code}\"}},\"geometry\":{{\"type\":\"Polygon\",\"coordinates\":[[[{x},52],[{x1},52],[{x1},53],[{x},53],[{x},52]]]}}}}",
                x1 = x + 1.0
            )
        })
        .collect();
    format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        features.join(",")
    )
}

#[test]
fn an_icb_code_without_a_boundary_is_listed_not_dropped() {
    let tmp = temp_dir("cdc-join");
    let dir = tmp.path();
    // A CDC file in NHS England's layout naming QOP and QU9; boundaries for QOP and QZZ only.
    std::fs::write(
        dir.join("cdc.csv"),
        "Region Code,Regional Name,ICB,CDC Code,CDC Name,ID,Diagnostic Test Type,Reporting Month,Sum of Metric Value\r\n\
         Y62,North West,QOP,AAA01,\"Manchester CDC, North\",1,Computed Tomography,Aug-24,40\r\n\
         Y59,South East,QU9,BBB02,Oxford CDC,2,Computed Tomography,Aug-24,60\r\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.geojson"), squares(&["QOP", "QZZ"])).unwrap();
    std::fs::write(
        dir.join("regions.csv"),
        "provider_code,provider_name,region_code,region_name\nR0A,Manchester,Y62,North West\nRTH,Oxford,Y59,South East\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("icbs.csv"),
        "provider_code,icb_code,icb_name\nR0A,QOP,NHS Greater Manchester ICB\nRTH,QU9,NHS BOB ICB\n",
    )
    .unwrap();
    let header = "Period,Provider Parent Org Code,Provider Parent Name,Provider Org Code,Provider Org Name,Commissioner Parent Org Code,Commissioner Parent Name,Commissioner Org Code,Commissioner Org Name,Diagnostic Tests Sort Order,Diagnostic Tests,00 < 01 Week,01 < 02 Weeks,02 < 03 Weeks,03 < 04 Weeks,04 < 05 Weeks,05 < 06 Weeks,06 < 07 Weeks,07 < 08 Weeks,08 < 09 Weeks,09 < 10 Weeks,10 < 11 Weeks,11 < 12 Weeks,12 < 13 Weeks,13+ Weeks,Total WL,Waiting List Activity,Planned Activity,Unscheduled Activity,Total Activity";
    let mut dm01 = format!("{header}\r\n");
    for (provider, activity) in [("R0A", 400), ("RTH", 750)] {
        dm01.push_str(&format!(
            "AUGUST-2024,Y00,PARENT,{provider},TRUST,QXX,ICB,14L,NHS 14L,1,CT,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,{activity},0,0,{activity}\r\n"
        ));
    }
    std::fs::write(dir.join("dm01.csv"), dm01).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"schema = 1
name = "CDC share, hand-made"
year = "2024/25"
area_kind = "ICB"
year_start = "2024-04-01"

[inputs]
provider_regions = "regions.csv"
provider_icbs = "icbs.csv"
dm01 = [{ file = "dm01.csv" }]
cdc_activity = ["cdc.csv"]
boundaries = "b.geojson"

[inputs.cdc_test_names]
"Computed Tomography" = "CT"

[stages.setting_share]
plugin = "share.cdc-over-dm01"
params = { tests = ["CT"], share_of_all = [["CT"]] }

[outputs]
dir = "out"
"#,
    )
    .unwrap();
    let (code, stdout, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(
        html.contains(
            "<p id=\"map-join\" data-joined=\"1\" data-not-in-boundaries=\"QU9\" data-no-data=\"QZZ\">"
        ),
        "{}",
        html.split("id=\"map-join\"").nth(1).unwrap_or("no map-join paragraph")
    );
    assert!(html.contains("Not on the map, no boundary has their code: QU9."));
    let map = std::fs::read_to_string(dir.join("out/charts/cdc_share_ct_map.svg")).unwrap();
    // Hand-worked: QOP 40 CDC CT scans over 400 DM01 CT = 10.0%; QZZ has no CDC row.
    assert_eq!(
        titles(&map),
        ["QOP NHS Greater Manchester ICB: 10.0%", "QZZ: no data"]
    );
}

#[test]
fn each_icb_s_2023_24_rates_sit_beside_its_cdc_share_rebuilt_from_the_cdc_recipe_s_monthly_table() {
    let tmp = temp_dir("cdc-context");
    let cdc_out = tmp.path().join("cdc");
    run_cdc_recipe(&cdc_out);
    let did_out = tmp.path().join("did");
    let recipe = workspace().join("configs/did-2023-24-icb.toml");
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--scale",
        "0.002",
        "--out",
        did_out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");

    // The oracle: the CDC recipe's monthly ICB rows (protected counts) of 2023/24's months that
    // have a DM01 denominator, summed per ICB and test.
    let monthly = rows(&cdc_out.join("cdc_share.csv"));
    let mut sums: BTreeMap<(String, String), (f64, f64, BTreeSet<String>)> = BTreeMap::new();
    for r in monthly.iter().filter(|r| {
        r["level"] == "icb"
            && r["measure"] == "cdc_share"
            && (r["test"] == "CT" || r["test"] == "MRI")
            && ("2023-04".."2024-04").contains(&r["month"].as_str())
            && !r["denominator"].is_empty()
    }) {
        let cell = sums
            .entry((r["code"].clone(), r["test"].clone()))
            .or_default();
        cell.0 += number(r, "numerator");
        cell.1 += number(r, "denominator");
        cell.2.insert(r["month"].clone());
    }
    let rates: BTreeMap<(String, String), Row> = rows(&did_out.join("area_rates.csv"))
        .into_iter()
        .filter(|r| r["measure"] == "ct" || r["measure"] == "mri")
        .map(|r| ((r["area_code"].clone(), r["measure"].to_uppercase()), r))
        .collect();
    let context = rows(&did_out.join("icb_cdc_context.csv"));
    assert_eq!(context.len(), 84, "42 ICBs × CT and MRI");
    assert_eq!(context.len(), rates.len());
    for r in &context {
        let key = (r["area_code"].clone(), r["measure"].to_uppercase());
        let rate = &rates[&key];
        for column in [
            "area_name",
            "observed",
            "standardised_rate",
            "ci_lower",
            "ci_upper",
            "ci_method",
        ] {
            assert_eq!(r[column], rate[column], "{key:?} {column}");
        }
        let (numerator, denominator, months) = &sums[&key];
        assert_eq!(months.len(), 8, "August 2023 to March 2024");
        assert_eq!(r["cdc_months_covered"], "2023-08 to 2024-03");
        assert_eq!(number(r, "cdc_months_counted"), 8.0);
        assert_eq!(number(r, "cdc_months_in_period"), 12.0);
        // The context's counts are the eight months' unrounded sums rounded once to 5; the
        // oracle's the sum of eight counts each rounded to 5: at most 8 × 2.5 apart (+2.5).
        assert!(
            (number(r, "cdc_numerator") - numerator).abs() <= 22.5,
            "{key:?}"
        );
        assert!(
            (number(r, "cdc_denominator") - denominator).abs() <= 22.5,
            "{key:?}"
        );
        // The share is of the unprotected sums, each within 8 × 2.5 of the oracle's: it lies
        // between the shares those bounds allow.
        let slack = 8.0 * 2.5;
        let (low, high) = (
            100.0 * (numerator - slack) / (denominator + slack),
            100.0 * (numerator + slack) / (denominator - slack),
        );
        let share = number(r, "cdc_share_pct");
        assert!(
            (low..=high).contains(&share),
            "{key:?}: {share} outside {low} to {high}"
        );
        assert!(high - low < 1.0, "{key:?}: the bounds say something");
        assert!(r["cdc_method"].contains("summed over 8 of the 12 months of 2023/24"));
        assert_eq!(r["context_note"], "");
    }
    // The run's report and workbook carry the context table.
    let html = std::fs::read_to_string(did_out.join("report.html")).unwrap();
    assert!(html.contains("<table id=\"table-icb_cdc_context\""));
    let bytes = std::fs::read(did_out.join("annex_b.xlsx")).unwrap();
    let book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("xlsx");
    assert!(
        book.sheet_names().iter().any(|s| s == "icb_cdc_context"),
        "{:?}",
        book.sheet_names()
    );
}
