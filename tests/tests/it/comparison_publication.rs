//! The period-comparison publication (seed 002, `configs/backlog-2020.toml`): `report.html`,
//! `period_comparison.xlsx` and the charts are made from the run's own `period_comparison.csv`
//! and `waits.csv`. Every workbook cell is read back (calamine) and compared with its CSV cell;
//! every point and bar of the charts carries a title whose figures are compared with the table's
//! row; the report's sentences are rebuilt here from the CSVs. Also on a hand-made world strata
//! did not write (no waiting lists, a trust with no tests in the earlier period).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use calamine::{Data, Reader, Xlsx};
use strata_tests::{strata, temp_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A CSV file as its header and rows of text.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        Csv { header, rows }
    }
    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
    fn get<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col(name)]
    }
    fn num(&self, row: &[String], name: &str) -> f64 {
        self.get(row, name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {row:?}"))
    }
    fn filter(&self, keep: impl Fn(&[String]) -> bool) -> Vec<&Vec<String>> {
        self.rows.iter().filter(|r| keep(r)).collect()
    }
}

/// `x` rounded to `dp` places with thousands separators, as the report prints it (an
/// independent implementation of the rule: halves away from zero).
fn printed(x: f64, dp: usize) -> String {
    let scale = 10f64.powi(dp as i32);
    let scaled = (x.abs() * scale).round() as i128;
    let (whole, fraction) = (scaled / scale as i128, scaled % scale as i128);
    let digits = whole.to_string();
    let mut out = String::new();
    if x < 0.0 && scaled != 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if dp > 0 {
        out.push_str(&format!(".{fraction:0dp$}"));
    }
    out
}

fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The `<title>`s of an SVG's hotspots, in drawing order.
fn titles(svg: &str) -> Vec<String> {
    svg.split("<title>")
        .skip(1)
        .filter_map(|s| s.split_once("</title>"))
        .map(|(t, _)| t.replace("&#39;", "'").replace("&amp;", "&"))
        .collect()
}

/// Every cell of a sheet's table (from its header row, row 3) against the CSV rows it holds.
fn assert_sheet_equals(
    book: &mut Xlsx<Cursor<Vec<u8>>>,
    sheet: &str,
    csv: &Csv,
    rows: &[&Vec<String>],
) {
    let range = book
        .worksheet_range(sheet)
        .unwrap_or_else(|e| panic!("sheet {sheet}: {e}"));
    let header: Vec<String> = (0..csv.header.len() as u32)
        .map(|c| {
            range
                .get_value((2, c))
                .map(|d| d.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(header, csv.header, "{sheet}: the header is the CSV's");
    let last = range.end().map(|(r, _)| r).unwrap_or(0);
    assert_eq!(
        last as usize,
        2 + rows.len(),
        "{sheet}: one row per CSV row"
    );
    for (i, row) in rows.iter().enumerate() {
        for (c, want) in row.iter().enumerate() {
            let cell = range.get_value((3 + i as u32, c as u32));
            let ok = match cell {
                Some(Data::Float(x)) => want
                    .parse::<f64>()
                    .is_ok_and(|w| (x - w).abs() <= 5.1e-7 * w.abs().max(1.0)),
                Some(Data::Int(x)) => want.parse::<f64>().is_ok_and(|w| *x as f64 == w),
                Some(Data::String(s)) => s == want || (s == "[x]" && want.is_empty()),
                Some(Data::Empty) | None => want.is_empty(),
                Some(_) => false,
            };
            assert!(
                ok,
                "{sheet} row {} column {}: workbook {cell:?}, CSV `{want}`",
                i + 1,
                csv.header[c]
            );
        }
    }
}

/// Runs a recipe into `out`; the publication's files.
fn run(recipe: &Path, out: &Path) -> BTreeMap<String, Vec<u8>> {
    let (code, stdout, err) = strata(&[
        "run",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let mut files = BTreeMap::new();
    for name in ["report.html", "period_comparison.xlsx"] {
        files.insert(name.to_string(), std::fs::read(out.join(name)).unwrap());
    }
    for entry in std::fs::read_dir(out.join("charts")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("charts/{}", path.file_name().unwrap().to_string_lossy());
        files.insert(name, std::fs::read(&path).unwrap());
    }
    files
}

/// England's monthly line charts: each point's title is the table's count of its month.
fn check_monthly_charts(out: &Path, comparison: &Csv, measures: &[String]) {
    for measure in measures {
        let svg =
            std::fs::read_to_string(out.join(format!("charts/{measure}_monthly.svg"))).unwrap();
        let months = comparison.filter(|r| {
            comparison.get(r, "level") == "england"
                && comparison.get(r, "measure") == measure
                && comparison.get(r, "month_b") != "all"
        });
        let got = titles(&svg);
        assert_eq!(
            got.len(),
            2 * months.len(),
            "{measure}: a point per period and month"
        );
        for (column, month) in [("period_a_tests", "month_a"), ("period_b_tests", "month_b")] {
            for row in &months {
                let want_start = format!("{} ", comparison.get(row, month));
                let want_end = format!(": {} tests", printed(comparison.num(row, column), 0));
                assert!(
                    got.iter()
                        .any(|t| t.starts_with(&want_start) && t.ends_with(&want_end)),
                    "{measure}: no point `{want_start}…{want_end}` in {got:?}"
                );
            }
        }
    }
}

/// Trusts ranked: one bar per trust with a ratio, lowest first, each with its ratio and limits.
fn check_trusts_chart(out: &Path, comparison: &Csv) {
    let svg = std::fs::read_to_string(out.join("charts/all_trusts_ranked.svg")).unwrap();
    let got = titles(&svg);
    let trusts = comparison.filter(|r| {
        comparison.get(r, "level") == "provider"
            && comparison.get(r, "measure") == "all"
            && comparison.get(r, "month_b") == "all"
            && !comparison.get(r, "ratio").is_empty()
    });
    assert_eq!(got.len(), trusts.len(), "a bar per trust");
    let mut ratios = Vec::new();
    for row in trusts {
        let want = format!(
            "{} {}: {} (95% CI {} to {})",
            comparison.get(row, "code"),
            comparison.get(row, "name"),
            printed(comparison.num(row, "ratio"), 3),
            printed(comparison.num(row, "ci_lower"), 3),
            printed(comparison.num(row, "ci_upper"), 3)
        );
        let at = got
            .iter()
            .position(|t| *t == want)
            .unwrap_or_else(|| panic!("no bar `{want}`"));
        ratios.push((at, comparison.num(row, "ratio")));
    }
    ratios.sort_by_key(|(at, _)| *at);
    assert!(
        ratios.windows(2).all(|w| w[0].1 <= w[1].1),
        "bars lowest to highest"
    );
}

#[test]
fn the_backlog_publication_is_its_tables() {
    let tmp = temp_dir("comparison-publication");
    let recipe = workspace().join("configs/backlog-2020.toml");
    let out = tmp.path().join("a");
    let files = run(&recipe, &out);
    assert_eq!(
        files,
        run(&recipe, &tmp.path().join("b")),
        "same inputs, same bytes"
    );
    let comparison = Csv::read(&out.join("period_comparison.csv"));
    let waits = Csv::read(&out.join("waits.csv"));
    let mut measures: Vec<String> = Vec::new();
    for row in &comparison.rows {
        let m = comparison.get(row, "measure").to_string();
        if !measures.contains(&m) {
            measures.push(m);
        }
    }
    assert_eq!(measures.len(), 6, "all modalities and five: {measures:?}");

    check_workbook(
        &files["period_comparison.xlsx"],
        &comparison,
        &waits,
        &measures,
    );
    check_monthly_charts(&out, &comparison, &measures);
    check_trusts_chart(&out, &comparison);
    check_regional_chart(&out, &waits);
    let report = String::from_utf8(files["report.html"].clone()).unwrap();
    check_report(&report, &comparison, &waits, &measures);
}

fn check_workbook(bytes: &[u8], comparison: &Csv, waits: &Csv, measures: &[String]) {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).expect("the workbook opens");
    assert_eq!(
        book.sheet_names(),
        [
            "Cover",
            "Contents",
            "Notes",
            "England",
            "Regions",
            "Trusts",
            "Trusts_ranked",
            "Waits_regions",
            "Waits_trusts",
            // The run's further tables, each on a sheet of its own name, as it is.
            "waits_nations",
            "did_waits"
        ]
    );
    for (sheet, level) in [
        ("England", "england"),
        ("Regions", "region"),
        ("Trusts", "provider"),
    ] {
        let rows = comparison.filter(|r| comparison.get(r, "level") == level);
        assert_sheet_equals(&mut book, sheet, comparison, &rows);
    }
    // Ranked: within each measure (table order), by recovery rank.
    let mut ranked = Vec::new();
    for measure in measures {
        let mut trusts = comparison.filter(|r| {
            comparison.get(r, "level") == "provider"
                && comparison.get(r, "measure") == measure
                && comparison.get(r, "month_b") == "all"
        });
        trusts.sort_by(|a, b| {
            let rank = |r: &[String]| {
                comparison
                    .get(r, "recovery_rank")
                    .parse::<f64>()
                    .unwrap_or(f64::INFINITY)
            };
            rank(a).total_cmp(&rank(b))
        });
        assert_eq!(comparison.get(trusts[0], "recovery_rank"), "1", "{measure}");
        ranked.extend(trusts);
    }
    assert_sheet_equals(&mut book, "Trusts_ranked", comparison, &ranked);
    let regions = waits.filter(|r| matches!(waits.get(r, "level"), "england" | "region"));
    assert_sheet_equals(&mut book, "Waits_regions", waits, &regions);
    let trusts = waits.filter(|r| waits.get(r, "level") == "provider");
    assert_sheet_equals(&mut book, "Waits_trusts", waits, &trusts);
}

/// Regions' share waiting 6+ weeks in the latest month with a year earlier: a bar per region.
fn check_regional_chart(out: &Path, waits: &Csv) {
    let svg = std::fs::read_to_string(out.join("charts/regions_waiting_6_plus_weeks.svg")).unwrap();
    let got = titles(&svg);
    let regions =
        waits.filter(|r| waits.get(r, "level") == "region" && waits.get(r, "month") == "2020-09");
    assert_eq!(got.len(), 7, "the seven NHS regions: {got:?}");
    assert_eq!(regions.len(), 7);
    for row in regions {
        let want = format!(
            "{} {}: {}%",
            waits.get(row, "code"),
            waits.get(row, "name"),
            printed(waits.num(row, "pct_waiting_6_plus_weeks"), 1)
        );
        assert!(got.contains(&want), "no bar `{want}` in {got:?}");
    }
}

/// The report: self-contained, every chart inline, the seed's sentences beside the run's, and
/// the run's sentences rebuilt from the CSVs.
fn check_report(report: &str, comparison: &Csv, waits: &Csv, measures: &[String]) {
    assert!(report.starts_with("<!DOCTYPE html>"));
    assert!(report.trim_end().ends_with("</html>"));
    // A monthly chart per measure, trusts ranked, regions.
    assert_eq!(report.matches("<svg").count(), measures.len() + 2);
    for id in [
        "england",
        "regions",
        "trusts",
        "waits-regions",
        "waits-trusts",
        "sources",
        "manifest",
    ] {
        assert!(
            report.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    for fetch in ["src=\"http", "src='http", "href=\"http"] {
        assert!(!report.contains(fetch), "the page loads `{fetch}…`");
    }
    assert!(report.contains("<input type=\"search\" data-filter=\"trusts-ranked\">"));

    // Every published figure of the recipe is quoted beside the run's value.
    let published: toml::Table = toml::from_str(
        &std::fs::read_to_string(workspace().join("configs/published/backlog-2020.toml")).unwrap(),
    )
    .unwrap();
    let figures = published["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 25);
    for f in figures {
        let sentence = html_escaped(f["figure"].as_str().unwrap());
        assert!(
            report.contains(&format!("<td>“{sentence}”</td>")),
            "figure `{sentence}` quoted"
        );
    }
    assert!(
        !report.contains("</td><td>no</td>"),
        "every published figure agrees"
    );

    // England's headline, from the whole-period row of all modalities.
    let england = comparison.filter(|r| {
        comparison.get(r, "level") == "england"
            && comparison.get(r, "measure") == "all"
            && comparison.get(r, "month_b") == "all"
    })[0]
        .clone();
    let headline = format!(
        "{} fewer diagnostic imaging tests were carried out in England in the six months between April and September 2020, compared to the same period in 2019: {} against {} ({}%; ratio {}",
        printed(-comparison.num(&england, "change"), 0),
        printed(comparison.num(&england, "period_b_tests"), 0),
        printed(comparison.num(&england, "period_a_tests"), 0),
        printed(comparison.num(&england, "pct_change"), 1),
        printed(comparison.num(&england, "ratio"), 4),
    );
    assert!(report.contains(&headline), "headline `{headline}`");

    // The regions' sentence: highest and lowest share in the latest month.
    let mut regions =
        waits.filter(|r| waits.get(r, "level") == "region" && waits.get(r, "month") == "2020-09");
    regions.sort_by(|a, b| {
        waits
            .num(b, "pct_waiting_6_plus_weeks")
            .total_cmp(&waits.num(a, "pct_waiting_6_plus_weeks"))
    });
    let (top, bottom) = (regions[0], regions[regions.len() - 1]);
    let sentence = format!(
        "In September 2020, in the {}, {}% of patients were waiting more than six weeks, compared to {}% in the {}.",
        waits.get(top, "name"),
        printed(waits.num(top, "pct_waiting_6_plus_weeks"), 1),
        printed(waits.num(bottom, "pct_waiting_6_plus_weeks"), 1),
        waits.get(bottom, "name")
    );
    assert!(report.contains(&sentence), "`{sentence}`");
    assert_eq!(
        waits.get(top, "code"),
        "Y62",
        "the North West highest, as the seed says"
    );
    assert_eq!(waits.get(bottom, "code"), "Y59", "the South East lowest");

    // The trust with the highest share, against a year earlier.
    let mut trusts =
        waits.filter(|r| waits.get(r, "level") == "provider" && waits.get(r, "month") == "2020-09");
    trusts.sort_by(|a, b| {
        waits
            .num(b, "pct_waiting_6_plus_weeks")
            .total_cmp(&waits.num(a, "pct_waiting_6_plus_weeks"))
    });
    let sentence = html_escaped(&format!(
        "In one hospital trust, {} ({}), {}% of patients were waiting more than six weeks for a test in September 2020, compared to {}% a year earlier.",
        waits.get(trusts[0], "name"),
        waits.get(trusts[0], "code"),
        printed(waits.num(trusts[0], "pct_waiting_6_plus_weeks"), 1),
        printed(
            waits.num(trusts[0], "pct_waiting_6_plus_weeks_year_earlier"),
            1
        ),
    ));
    assert!(report.contains(&sentence), "`{sentence}`");
    // Every trust's ranked row is in the page's ranked table, each with its method.
    let ranked = report
        .split("<table id=\"trusts-ranked\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the ranked table");
    let trust_rows = comparison
        .filter(|r| {
            comparison.get(r, "level") == "provider" && comparison.get(r, "month_b") == "all"
        })
        .len();
    assert_eq!(
        ranked.matches("<tr>").count(),
        1 + trust_rows,
        "a row per trust and measure"
    );
    for row in ranked.split("<tr>").skip(2) {
        assert!(row.starts_with("<td>"), "{row}");
    }
    let first = comparison.filter(|r| {
        comparison.get(r, "level") == "provider"
            && comparison.get(r, "measure") == "all"
            && comparison.get(r, "month_b") == "all"
            && comparison.get(r, "recovery_rank") == "1"
    })[0];
    let first = format!(
        "<tbody>\n<tr><td>1</td><td>{}</td><td>{}</td>",
        comparison.get(first, "code"),
        html_escaped(comparison.get(first, "name"))
    );
    assert!(
        ranked.contains(&first),
        "the trust that recovered most first: {first}"
    );
    // One method for every row, named in the caption.
    let methods: std::collections::BTreeSet<&str> = comparison
        .rows
        .iter()
        .map(|r| comparison.get(r, "method"))
        .collect();
    assert_eq!(methods.len(), 1, "{methods:?}");
    let method = methods.into_iter().next().unwrap();
    assert!(
        ranked.contains(&format!(
            "whole period; ratio and limits by {method}</caption>"
        )),
        "the ranked table names its method"
    );
}

/// Three trusts in two regions, two months; RTH has no CT in 2019 (its ratio undefined).
fn write_hand_made(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("regions.csv"),
        "provider_code,provider_name,region_code,region_name\n\
         RW6,\"Pennine Acute Hospitals NHS Trust, Oldham\",Y62,North West\n\
         R0A,Manchester University NHS Foundation Trust,Y62,North West\n\
         RTH,Oxford University Hospitals NHS Foundation Trust,Y59,South East\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("counts.csv"),
        "provider_code,month,measure,tests\n\
         RW6,2019-04,ct,100\nRW6,2020-04,ct,60\nRW6,2019-05,ct,120\nRW6,2020-05,ct,90\n\
         R0A,2019-04,mri,40\nR0A,2020-04,mri,10\nR0A,2019-05,mri,30\nR0A,2020-05,mri,35\n\
         RTH,2020-05,ct,9\n",
    )
    .unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"schema = 1
name = "two months, three trusts"
year = "2020/21"
area_kind = "NHS region"
year_start = "2020-04-01"

[inputs]
provider_months = "counts.csv"
provider_regions = "regions.csv"

[comparison]
period_a = { label = "2019", first = "2019-04", last = "2019-05" }
period_b = { label = "2020", first = "2020-04", last = "2020-05" }

[stages.period_comparison]
plugin = "count_ratio.log-normal"

[outputs]
dir = "out"
"#,
    )
    .unwrap();
    recipe
}

#[test]
fn a_hand_made_world_without_waiting_lists_gets_its_publication() {
    let tmp = temp_dir("comparison-hand-made");
    let recipe = write_hand_made(tmp.path());
    let out = tmp.path().join("out");
    let files = run(&recipe, &out);
    let comparison = Csv::read(&out.join("period_comparison.csv"));
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(files["period_comparison.xlsx"].clone())).expect("opens");
    assert_eq!(
        book.sheet_names(),
        [
            "Cover",
            "Contents",
            "Notes",
            "England",
            "Regions",
            "Trusts",
            "Trusts_ranked"
        ],
        "no waiting-list sheets without a waits table"
    );
    let trusts = comparison.filter(|r| comparison.get(r, "level") == "provider");
    assert_sheet_equals(&mut book, "Trusts", &comparison, &trusts);
    check_monthly_charts(
        &out,
        &comparison,
        &["all".into(), "ct".into(), "mri".into()],
    );
    check_trusts_chart(&out, &comparison);
    assert!(!files.contains_key("charts/regions_waiting_6_plus_weeks.svg"));

    let report = String::from_utf8(files["report.html"].clone()).unwrap();
    assert!(
        !report.contains("id=\"waits-regions\""),
        "no waiting-list section"
    );
    assert!(
        report.contains("<li>Ratio and confidence interval method: log-normal"),
        "{report}"
    );
    // By hand: 2019 = 100 + 120 + 40 + 30 = 290, 2020 = 60 + 90 + 10 + 35 + 9 = 204.
    assert!(
        report.contains("86 fewer diagnostic imaging tests were carried out in England in the two months between April and May 2020, compared to the same period in 2019: 204 against 290 (-29.7%;"),
        "{report}"
    );
    // RTH's CT ratio is undefined (no tests in 2019): shown as [x], ranked nowhere.
    let rth = comparison.filter(|r| {
        comparison.get(r, "code") == "RTH"
            && comparison.get(r, "measure") == "ct"
            && comparison.get(r, "month_b") == "all"
    });
    assert_eq!(comparison.get(rth[0], "ratio"), "");
    assert!(report.contains("<tr><td>[x]</td><td>RTH</td><td>Oxford University Hospitals NHS Foundation Trust</td><td>Y59</td><td>ct</td><td>0</td><td>9</td><td>9</td><td>[x]</td><td>[x]</td>"), "{report}");
    // Trusts: two of three fell (RW6 220 → 150; R0A 70 → 45; RTH 0 → 9 rose).
    assert!(
        report.contains("2 of 3 trusts carried out fewer tests across all modalities."),
        "{report}"
    );
}
