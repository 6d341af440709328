//! The report and workbook at practice level (seed 003: 6,445 practices, each with its sub-ICB
//! parent), from one run of `configs/did-2023-24-practice.toml` at a small synthetic scale:
//!
//! - the report is compact (no chart with a bar per practice) and small;
//! - every practice × measure in the page's tables carries the flags its own rows in
//!   `area_rates.csv` (Poisson limits against the national rate) and `overdispersed_limits.csv`
//!   (the overdispersion method's flags) give it, re-derived here from the CSVs;
//! - each funnel has one point per practice with an expected count, split into within/outside
//!   the adjusted limits exactly as `overdispersed_limits.csv` flags them, and titles the points
//!   that table flags at 99.8%;
//! - the workbook opens, with one sheet per measure grouped by parent, then practice code;
//! - in headless Chromium (when installed) the page draws a parent's practices and the tables.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use calamine::{Data, Reader, Xlsx};
use strata_tests::{strata, temp_dir};

const SCALE: &str = "0.002";

/// A CSV file as rows of column → text.
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let header = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column].parse().unwrap_or(f64::NAN)
}

/// The JSON document the report's tables are drawn from.
fn page_data(html: &str) -> serde_json::Value {
    let open = "<script id=\"strata-data\" type=\"application/json\">";
    let start = html.find(open).expect("the page's data") + open.len();
    let end = start + html[start..].find("</script>").expect("end of data");
    serde_json::from_str(&html[start..end]).expect("valid JSON")
}

/// ±k where the area's own limits put it above/below national at the k-th level (95%, 99.8%).
fn poisson_flag(row: &HashMap<String, String>, national: f64) -> i64 {
    if num(row, "ci_lower_99_8") > national {
        2
    } else if num(row, "ci_upper_99_8") < national {
        -2
    } else if num(row, "ci_lower") > national {
        1
    } else if num(row, "ci_upper") < national {
        -1
    } else {
        0
    }
}

/// ±k: the widest level `overdispersed_limits` flags the area at, high or low.
fn adjusted_flag(row: &HashMap<String, String>) -> i64 {
    let mut flag = 0;
    for (k, tag) in ["95", "99_8"].iter().enumerate() {
        match row[&format!("flag_{tag}")].as_str() {
            "high" => flag = k as i64 + 1,
            "low" => flag = -(k as i64 + 1),
            _ => {}
        }
    }
    flag
}

/// The number of point segments in a funnel's path of `class` points (0 without one).
fn points(svg: &str, class: &str) -> usize {
    let Some(at) = svg.find(&format!("class=\"points {class}\"")) else {
        return 0;
    };
    let d = &svg[at..];
    let d = &d[d.find(" d=\"").expect("d") + 4..];
    d[..d.find('"').expect("end of d")].matches('M').count()
}

#[test]
fn the_practice_report_is_compact_and_agrees_with_both_limit_tables() {
    let tmp = temp_dir("practice-report");
    let out = tmp.path().join("out");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-practice.toml");
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--scale",
        SCALE,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report");
    let size = html.len();
    println!("report.html {size} bytes");
    assert!(size < 10_000_000, "report.html is {size} bytes");
    assert!(
        !html.contains("Graph 1."),
        "a ranked chart of every practice"
    );
    assert!(!out.join("charts/xray_ranked.svg").exists());

    let rates = read_csv(&out.join("area_rates.csv"));
    let limits = read_csv(&out.join("overdispersed_limits.csv"));
    let national: HashMap<String, f64> = read_csv(&out.join("national_rates.csv"))
        .iter()
        .map(|r| (r["measure"].clone(), num(r, "rate")))
        .collect();
    let data = page_data(&html);
    let areas = data["areas"].as_array().expect("areas");
    assert_eq!(areas.len(), 6445);
    let measures = data["measures"].as_array().expect("measures");
    assert_eq!(measures.len(), 14);
    let keys: Vec<String> =
        rates
            .iter()
            .map(|r| r["measure"].clone())
            .fold(Vec::new(), |mut keys, m| {
                if !keys.contains(&m) {
                    keys.push(m);
                }
                keys
            });
    let by_area_measure = |table: &[HashMap<String, String>]| {
        table
            .iter()
            .map(|r| ((r["area_code"].clone(), r["measure"].clone()), r.clone()))
            .collect::<HashMap<_, _>>()
    };
    let (rates, limits) = (by_area_measure(&rates), by_area_measure(&limits));
    let mut flagged_rows = 0;
    for (measure, key) in measures.iter().zip(&keys) {
        let rows = measure["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 6445, "{key}");
        let (mut within, mut outside, mut titled) = (0, 0, 0);
        for row in rows {
            let area = row[0].as_u64().expect("area") as usize;
            let code = areas[area][0].as_str().expect("code").to_string();
            let rate = &rates[&(code.clone(), key.clone())];
            let limit = &limits[&(code.clone(), key.clone())];
            let context = format!("{key} {code}");
            let poisson =
                (!num(rate, "ci_lower").is_nan()).then(|| poisson_flag(rate, national[key]));
            assert_eq!(row[6].as_i64(), poisson, "{context}: Poisson flag");
            let adjusted = adjusted_flag(limit);
            assert_eq!(row[7].as_i64(), Some(adjusted), "{context}: adjusted flag");
            flagged_rows += usize::from(adjusted != 0);
            // The funnel plots practices with an expected count and a rate.
            if num(rate, "expected") > 0.0 && num(rate, "standardised_rate").is_finite() {
                if adjusted == 0 {
                    within += 1;
                } else {
                    outside += 1;
                }
                titled += usize::from(adjusted.abs() == 2);
            }
        }
        let svg =
            std::fs::read_to_string(out.join(format!("charts/{key}_funnel.svg"))).expect("funnel");
        assert_eq!(points(&svg, "within"), within, "{key}: points within");
        assert_eq!(points(&svg, "outside"), outside, "{key}: points outside");
        assert_eq!(
            svg.matches("<title>").count(),
            titled,
            "{key}: titled points"
        );
        assert!(
            svg.contains("99.8% limits, overdispersion-adjusted"),
            "{key}"
        );
        assert!(svg.contains("99.8% limits (Poisson)"), "{key}");
        assert!(html.contains(&svg), "{key}: the report holds the funnel");
    }
    assert!(flagged_rows > 0, "some practices are flagged");

    check_workbook(&out.join("annex_b.xlsx"));
    check_in_chromium(tmp.path(), &out.join("report.html"));
}

/// The workbook opens; each measure's sheet lists every practice by parent, then code.
fn check_workbook(path: &Path) {
    let bytes = std::fs::read(path).expect("workbook");
    println!("annex_b.xlsx {} bytes", bytes.len());
    assert!(
        bytes.len() < 30_000_000,
        "workbook of {} bytes",
        bytes.len()
    );
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("the workbook opens");
    let sheets = book.sheet_names();
    assert_eq!(
        sheets.iter().filter(|n| n.starts_with("SR_")).count(),
        14,
        "{sheets:?}"
    );
    let sheet = book.worksheet_range("SR_SPECT_Scan").expect("SPECT sheet");
    let text = |r: u32, c: u32| match sheet.get_value((r, c)) {
        Some(Data::String(s)) => s.clone(),
        other => panic!("({r}, {c}) {other:?}"),
    };
    assert_eq!(text(2, 0), "practice code");
    assert_eq!(text(2, 2), "Parent code");
    let keys: Vec<(String, String)> = (3..3 + 6445).map(|r| (text(r, 2), text(r, 0))).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "by parent, then practice code");
}

/// The page in headless Chromium: each measure's funnel and its first parent's chart, and the
/// table's first page.
fn check_in_chromium(tmp: &Path, report: &Path) {
    const CHROMIUM: &str = "/usr/bin/chromium";
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing: .ci/run installs Debian's chromium package"
        );
        eprintln!("skipped the browser check: install Debian's `chromium` to run it");
        return;
    }
    let dom = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("run chromium");
    assert!(dom.status.success());
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("class=\"parent-svg\"").count(), 14);
    assert_eq!(
        dom.matches("<svg").count(),
        28,
        "14 funnels, 14 parent charts"
    );
    assert_eq!(dom.matches("<table class=\"explorer-table\"").count(), 14);
    assert!(dom.contains("(6445 in all)."), "the table's status line");
    // The first parent in code order is charted: its practices' bars are titled by code.
    assert!(dom.contains("<option value=\"0\">00L "), "parents by code");
    assert!(dom.contains("<title>A84"), "a practice of 00L on its chart");
}
