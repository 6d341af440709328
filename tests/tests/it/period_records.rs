//! Seed 002's period comparison on record-level DID: the same reader and input mapping as the
//! year recipes, the records counted to provider × month × modality in one streaming pass and
//! fed to the same `period_comparison` stage. A file written by hand (another column order, a
//! byte-order mark, CRLF, quoted fields, mapped names and codes, records in no order) gives the
//! hand-counted sums; records and the provider × month counts they sum to give the same bytes,
//! from CSV and from Parquet, on one thread and on two; a bad record is refused at its row.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_tests::{strata, temp_dir};

const REGIONS: &str = "\u{feff}provider_code,provider_name,region_code,region_name\r\n\
    RW6,\"Pennine Acute Hospitals NHS Trust, Oldham\",Y62,North West\r\n\
    R0A,Manchester University NHS Foundation Trust,Y62,North West\r\n\
    RTH,Oxford University Hospitals NHS Foundation Trust,Y59,South East\r\n";

/// A recipe over `regions.csv` whose input is `input` (`activity = "…"` or
/// `provider_months = "…"`), with `extra` after `[inputs]`.
fn write_recipe(dir: &Path, input: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("regions.csv"), REGIONS).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            r#"schema = 1
name = "records, three trusts"
year = "2020/21"
area_kind = "NHS region"
year_start = "2020-04-01"

[inputs]
{input}
provider_regions = "regions.csv"
{extra}

[comparison]
period_a = {{ label = "2019", first = "2019-04", last = "2019-05" }}
period_b = {{ label = "2020", first = "2020-04", last = "2020-05" }}

[stages.period_comparison]
plugin = "count_ratio.exact-conditional"

[outputs]
dir = "out"
"#
        ),
    )
    .unwrap();
    recipe
}

fn run(args: &[&str]) {
    let (code, out, err) = strata(args);
    assert_eq!(code, 0, "{args:?}\n{out}{err}");
}

fn table(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("period_comparison.csv")).unwrap()
}

fn cell(text: &str, level: &str, code: &str, measure: &str, month: &str, column: &str) -> String {
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    rows.records()
        .map(Result::unwrap)
        .find(|r| {
            r[col("level")] == *level
                && r[col("code")] == *code
                && r[col("measure")] == *measure
                && r[col("month_b")] == *month
        })
        .unwrap_or_else(|| panic!("no row {level} {code} {measure} {month}"))[col(column)]
    .to_string()
}

/// Written by hand, not by strata: the extract's own column names (`Trust`, `Scan`, `Exam
/// date`) and codes (`CT`, `MRI`), a column strata does not read, fields quoted, a provider
/// code with spaces around it, dates with a time of day, CRLF and a byte-order mark, months in
/// no order.
const HAND_RECORDS: &str = "\u{feff}Exam date,Scan,Patient note,Trust\r\n\
    2020-04-03,CT,\"a note, with a comma\",RW6\r\n\
    2019-04-30 09:15:00,CT,,RW6\r\n\
    \"2019-05-02\",\"CT\",\"\",\" RW6 \"\r\n\
    2019-06-01,CT,,R0A\r\n\
    2019-04-10,MRI,,R0A\r\n\
    2019-04-11,MRI,,R0A\r\n\
    2020-05-31,CT,,RTH\r\n\
    2019-04-01,CT,,RW6\r\n\
    2020-04-20,MRI,,R0A\r\n\
    2019-05-15,CT,,RTH\r\n\
    2019-05-16,CT,,RTH\r\n\
    2020-03-31,CT,,RW6\r\n";

const HAND_MAPPING: &str = r#"[inputs.mapping]
columns = { provider_code = "Trust", modality = "Scan", test_date = "Exam date" }
values.modality = { map = { CT = "ct", MRI = "mri" } }
"#;

#[test]
fn a_hand_written_record_file_gives_the_hand_counted_sums() {
    let tmp = temp_dir("records-hand");
    std::fs::write(tmp.path().join("records.csv"), HAND_RECORDS).unwrap();
    let recipe = write_recipe(tmp.path(), r#"activity = "records.csv""#, HAND_MAPPING);
    run(&["run", recipe.to_str().unwrap()]);
    let text = table(&tmp.path().join("out"));
    // By hand: 2019-04 and 2019-05 hold RW6 CT 2 (04-01, 04-30) + 1 (05-02), R0A MRI 2 (04-10,
    // 04-11), RTH CT 2 (05-15, 05-16): 7. 2020-04 and 2020-05 hold RW6 CT 1 (04-03), R0A MRI 1
    // (04-20), RTH CT 1 (05-31): 3. 2019-06 and 2020-03 are in neither period.
    assert_eq!(
        cell(
            &text,
            "england",
            "E92000001",
            "all",
            "all",
            "period_a_tests"
        ),
        "7"
    );
    assert_eq!(
        cell(
            &text,
            "england",
            "E92000001",
            "all",
            "all",
            "period_b_tests"
        ),
        "3"
    );
    // North West (RW6, R0A), CT, April: 2019 RW6's two, 2020 RW6's one.
    assert_eq!(
        cell(&text, "region", "Y62", "ct", "2020-04", "period_a_tests"),
        "2"
    );
    assert_eq!(
        cell(&text, "region", "Y62", "ct", "2020-04", "period_b_tests"),
        "1"
    );
    assert_eq!(
        cell(&text, "provider", "RW6", "ct", "all", "period_a_tests"),
        "3"
    );
    assert_eq!(
        cell(&text, "provider", "R0A", "mri", "all", "ratio"),
        "0.500000"
    );
    assert_eq!(
        cell(&text, "provider", "RTH", "ct", "2020-05", "change"),
        "-1"
    );
    // The manifest names the records as the input read, with their count.
    let manifest = std::fs::read_to_string(tmp.path().join("out/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["inputs"]["activity"]["rows"], 12, "{manifest}");
}

/// Counts by (provider, measure, month) for a deterministic world: some zero, some outside
/// both periods.
fn world_counts() -> Vec<(&'static str, &'static str, String, u64)> {
    let mut out = Vec::new();
    let mut x: u64 = 12345;
    for provider in ["R0A", "RTH", "RW6"] {
        for measure in ["xray", "ct", "mri", "ultrasound"] {
            for month in [
                "2019-03", "2019-04", "2019-05", "2020-04", "2020-05", "2020-06",
            ] {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let tests = (x >> 33) % 40;
                if tests > 0 && !(provider == "RTH" && measure == "mri") {
                    out.push((provider, measure, month.to_string(), tests));
                }
            }
        }
    }
    out
}

/// One record per test, dated across the month, in a shuffled order: (provider, modality,
/// date, age as text).
fn world_records() -> Vec<(String, String, String)> {
    let mut records = Vec::new();
    for (provider, measure, month, tests) in world_counts() {
        for i in 0..tests {
            let day = 1 + (i * 7) % 28;
            records.push((
                provider.to_string(),
                measure.to_string(),
                format!("{month}-{day:02}"),
            ));
        }
    }
    // A fixed shuffle (Fisher–Yates over an LCG), so the file is in no order strata chose.
    let mut x: u64 = 99;
    for i in (1..records.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        records.swap(i, (x >> 33) as usize % (i + 1));
    }
    records
}

fn write_parquet(path: &Path, records: &[(String, String, String)]) {
    use arrow_array::{ArrayRef, Date32Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let days = |d: &str| {
        let (y, rest) = d.split_once('-').unwrap();
        let (m, day) = rest.split_once('-').unwrap();
        let (y, m, day): (i64, i64, i64) =
            (y.parse().unwrap(), m.parse().unwrap(), day.parse().unwrap());
        // Days since 1970-01-01 (the civil-from-days inverse of Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146097 + doe - 719468) as i32
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("modality", DataType::Utf8, false),
        Field::new("test_date", DataType::Date32, false),
        Field::new("provider_code", DataType::Utf8, false),
    ]));
    let file = std::fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(500))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| &r.1))),
        Arc::new(Date32Array::from_iter_values(
            records.iter().map(|r| days(&r.2)),
        )),
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| &r.0))),
    ];
    writer
        .write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    writer.close().unwrap();
}

#[test]
fn records_and_the_counts_they_sum_to_give_the_same_bytes() {
    let tmp = temp_dir("records-differential");
    let dir = tmp.path();
    let mut counts = String::from("provider_code,month,measure,tests\n");
    for (provider, measure, month, tests) in world_counts() {
        counts.push_str(&format!("{provider},{month},{measure},{tests}\n"));
    }
    std::fs::write(dir.join("counts.csv"), counts).unwrap();
    let records = world_records();
    let mut csv_text = String::from("provider_code,test_date,sex,modality\n");
    for (provider, modality, date) in &records {
        csv_text.push_str(&format!("\"{provider}\",{date},9,\"{modality}\"\n"));
    }
    std::fs::write(dir.join("records.csv"), csv_text).unwrap();
    write_parquet(&dir.join("records.parquet"), &records);
    let recipe = write_recipe(dir, r#"provider_months = "counts.csv""#, "");
    let recipe = recipe.to_str().unwrap();
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    run(&["run", recipe, "--out", &out("from-counts")]);
    let want = table(&dir.join("from-counts"));
    for (file, threads) in [
        ("records.csv", "1"),
        ("records.csv", "2"),
        ("records.parquet", "2"),
    ] {
        let name = format!("from-{file}-{threads}");
        run(&[
            "run",
            recipe,
            "--activity",
            &out(file),
            "--threads",
            threads,
            "--out",
            &out(&name),
        ]);
        assert_eq!(table(&dir.join(&name)), want, "{file} on {threads} threads");
    }
    // The check is not empty: April–May tests of both years are there.
    assert_ne!(
        cell(
            &want,
            "england",
            "E92000001",
            "all",
            "all",
            "period_a_tests"
        ),
        "0"
    );
}

#[test]
fn a_bad_record_is_refused_naming_file_row_column_rule_and_value() {
    let cases = [
        ("RW6,ct,2019-4-31", "test_date", "2019-4-31"),
        ("XXX,ct,2019-04-01", "provider_code", "XXX"),
        ("RW6,scan,2019-04-01", "modality", "scan"),
        (",ct,2019-04-01", "provider_code", "empty value"),
    ];
    for (bad, column, value) in cases {
        let tmp = temp_dir("records-bad");
        let text = format!("provider_code,modality,test_date\nRW6,ct,2019-04-02\n{bad}\n");
        std::fs::write(tmp.path().join("records.csv"), text).unwrap();
        let recipe = write_recipe(tmp.path(), r#"activity = "records.csv""#, "");
        let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        for part in ["records.csv", "row 2", column, value] {
            assert!(err.contains(part), "`{part}` not in: {err}");
        }
    }
    // A missing required column is refused before any record is read.
    let tmp = temp_dir("records-bad");
    std::fs::write(
        tmp.path().join("records.csv"),
        "provider_code,test_date\nRW6,2019-04-02\n",
    )
    .unwrap();
    let recipe = write_recipe(tmp.path(), r#"activity = "records.csv""#, "");
    let (code, _, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("modality") && err.contains("required column missing"),
        "{err}"
    );
}

/// DID waits, written by hand: the extract's own names for the request and report dates
/// (`Requested`, `Reported`), an empty request date, a request after its test and a report
/// before its test, records in no order.
const WAIT_RECORDS: &str = "Trust,Scan,Exam date,Requested,Reported\r\n\
    RW6,CT,2020-04-10,2020-04-01,2020-04-11\r\n\
    RW6,CT,2020-04-20,2020-04-20,2020-04-25\r\n\
    RW6,CT,2020-04-05,2020-02-01,\"2020-04-05\"\r\n\
    RW6,CT,2020-04-30,,2020-05-02\r\n\
    RW6,CT,2020-04-15,2020-04-16,2020-04-14\r\n\
    RW6,CT,2020-04-12,2020-03-01,2020-04-19\r\n\
    R0A,MRI,2020-05-03,2020-03-01,2020-05-04\r\n";

const WAIT_STAGE: &str = r#"
[stages.did_waits]
plugin = "waits.quantiles-hyndman-fan-7@1"
params = { threshold_days = 42, min_records = 1 }
"#;

#[test]
fn waits_from_hand_written_dates_give_the_hand_worked_quantiles() {
    let tmp = temp_dir("records-waits");
    std::fs::write(tmp.path().join("records.csv"), WAIT_RECORDS).unwrap();
    let mapping = r#"[inputs.mapping]
columns = { provider_code = "Trust", modality = "Scan", test_date = "Exam date", request_date = "Requested", report_date = "Reported" }
values.modality = { map = { CT = "ct", MRI = "mri" } }
"#;
    let recipe = write_recipe(tmp.path(), r#"activity = "records.csv""#, mapping);
    let text = std::fs::read_to_string(&recipe).unwrap() + WAIT_STAGE;
    std::fs::write(&recipe, text).unwrap();
    run(&["run", recipe.to_str().unwrap()]);
    let waits = std::fs::read_to_string(tmp.path().join("out/did_waits.csv")).unwrap();
    let row = |code: &str, measure: &str, interval: &str| -> csv::StringRecord {
        let mut rows = csv::Reader::from_reader(waits.as_bytes());
        let header = rows.headers().unwrap().clone();
        let at = |n: &str| header.iter().position(|h| h == n).unwrap();
        rows.records()
            .map(Result::unwrap)
            .find(|r| {
                r[at("code")] == *code
                    && r[at("measure")] == *measure
                    && r[at("month")] == *"2020-04"
                    && r[at("interval")] == *interval
            })
            .unwrap_or_else(|| panic!("no row {code} {measure} {interval}\n{waits}"))
    };
    let header = csv::Reader::from_reader(waits.as_bytes())
        .headers()
        .unwrap()
        .clone();
    let get =
        |r: &csv::StringRecord, n: &str| r[header.iter().position(|h| h == n).unwrap()].to_string();
    // RW6 CT, April 2020, request → test: 9, 0, 64, (none), −1, 42 days. Kept 0, 9, 42, 64
    // (n = 4): median h = 1.5 → 9 + 0.5·33 = 25.5; p90 h = 2.7 → 42 + 0.7·22 = 57.4;
    // p95 h = 2.85 → 42 + 0.85·22 = 60.7; 42+ days: 2 of 4 = 50%; one bad
    // (request_after_test), one missing.
    let r = row("RW6", "ct", "request_to_test");
    assert_eq!(get(&r, "waits"), "4");
    assert_eq!(get(&r, "median_days"), "25.500000");
    assert_eq!(get(&r, "p90_days"), "57.400000");
    assert_eq!(get(&r, "p95_days"), "60.700000");
    assert_eq!(get(&r, "waiting_42_plus_days"), "2");
    assert_eq!(get(&r, "pct_waiting_42_plus_days"), "50");
    assert_eq!(get(&r, "bad_dates"), "1");
    assert_eq!(get(&r, "bad_date_rule"), "request_after_test");
    assert_eq!(get(&r, "missing_date"), "1");
    // Test → report: 1, 5, 0, 2, −1, 7 days. Kept 0, 1, 2, 5, 7: median 2; one report before
    // its test.
    let r = row("RW6", "ct", "test_to_report");
    assert_eq!(get(&r, "waits"), "5");
    assert_eq!(get(&r, "median_days"), "2.000000");
    assert_eq!(get(&r, "bad_dates"), "1");
    assert_eq!(get(&r, "bad_date_rule"), "report_before_test");
    // England over all modalities in April holds RW6's CT only (R0A's MRI is May).
    let r = row("E92000001", "all", "request_to_test");
    assert_eq!(get(&r, "waits"), "4");
    assert!(get(&r, "method").contains("Hyndman & Fan type 7"));
}

#[test]
fn a_waits_stage_on_records_without_dates_is_refused_naming_the_columns() {
    let tmp = temp_dir("records-no-dates");
    std::fs::write(
        tmp.path().join("records.csv"),
        "provider_code,modality,test_date\nRW6,ct,2020-04-01\n",
    )
    .unwrap();
    let recipe = write_recipe(tmp.path(), r#"activity = "records.csv""#, "");
    let text = std::fs::read_to_string(&recipe).unwrap() + WAIT_STAGE;
    std::fs::write(&recipe, text).unwrap();
    let (code, _, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    for part in ["records.csv", "request_date", "report_date", "did_waits"] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}
