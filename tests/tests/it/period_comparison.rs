//! Seed 002's period comparison (`configs/backlog-2020.toml`): the `period_comparison` stage on
//! provider × month × modality counts, on the recipe's synthetic pair of years and on files
//! strata did not write (another column order, a byte-order mark, CRLF line ends, quoted
//! fields), with a malformed row refused naming its file, row, column, rule and value.
//!
//! Snapshots are under `snapshots/backlog/`; accept a reviewed change with
//! `INSTA_UPDATE=always cargo test -p strata-tests --test it period_comparison::`.

use std::path::{Path, PathBuf};

use strata_tests::{strata, temp_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => workspace().join("snapshots/backlog"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name.to_string(), text);
    });
}

/// A small world: three trusts in two regions, two months a period.
fn write_world(dir: &Path, counts: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    // Region file with a byte-order mark, CRLF and a quoted name holding a comma.
    std::fs::write(
        dir.join("regions.csv"),
        "\u{feff}provider_code,provider_name,region_code,region_name\r\n\
         RW6,\"Pennine Acute Hospitals NHS Trust, Oldham\",Y62,North West\r\n\
         R0A,Manchester University NHS Foundation Trust,Y62,North West\r\n\
         RTH,Oxford University Hospitals NHS Foundation Trust,Y59,South East\r\n",
    )
    .unwrap();
    std::fs::write(dir.join("counts.csv"), counts).unwrap();
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
plugin = "count_ratio.exact-conditional"

[outputs]
dir = "out"
"#,
    )
    .unwrap();
    recipe
}

/// Columns in another order than the contract's, quoted fields, CRLF; a month outside both
/// periods (2019-06) is left out of every sum.
const COUNTS: &str = "measure,tests,provider_code,month\r\n\
    ct,100,RW6,2019-04\r\n\
    ct,60,RW6,2020-04\r\n\
    \"ct\",\"120\",\"RW6\",\"2019-05\"\r\n\
    ct,90,RW6,2020-05\r\n\
    mri,40,R0A,2019-04\r\n\
    mri,10,R0A,2020-04\r\n\
    mri,0,R0A,2020-05\r\n\
    ct,999,R0A,2019-06\r\n\
    ct,7,RTH,2019-05\r\n\
    ct,9,RTH,2020-05\r\n";

#[test]
fn a_hand_made_file_gives_the_hand_worked_sums() {
    let tmp = temp_dir("periods-hand");
    let recipe = write_world(tmp.path(), COUNTS.as_bytes());
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(tmp.path().join("out/period_comparison.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let find = |level: &str, code: &str, measure: &str, month: &str| -> csv::StringRecord {
        csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(Result::unwrap)
            .find(|r| {
                r[col("level")] == *level
                    && r[col("code")] == *code
                    && r[col("measure")] == *measure
                    && r[col("month_b")] == *month
            })
            .unwrap_or_else(|| panic!("no row {level} {code} {measure} {month}"))
    };
    // By hand: England, all modalities, whole period: 2019 = 100 + 120 + 40 + 7 = 267;
    // 2020 = 60 + 90 + 10 + 0 + 9 = 169 (the 999 of 2019-06 is in neither period).
    let england = find("england", "E92000001", "all", "all");
    assert_eq!(&england[col("period_a_tests")], "267");
    assert_eq!(&england[col("period_b_tests")], "169");
    assert_eq!(&england[col("change")], "-98");
    // North West CT, April: 100 → 60; ratio 0.6, −40%.
    let north_west = find("region", "Y62", "ct", "2020-04");
    assert_eq!(&north_west[col("ratio")], "0.600000");
    assert_eq!(&north_west[col("pct_change")], "-40.000000");
    // The quoted trust name keeps its comma; the rank of recovery over the whole period, CT:
    // RTH 9/7 = 1.29 first, RW6 150/220 = 0.68 second (R0A has no CT in the periods).
    let rth = find("provider", "RTH", "ct", "all");
    assert_eq!(&rth[col("recovery_rank")], "1");
    let rw6 = find("provider", "RW6", "ct", "all");
    assert_eq!(
        &rw6[col("name")],
        "Pennine Acute Hospitals NHS Trust, Oldham"
    );
    assert_eq!(&rw6[col("recovery_rank")], "2");
    assert!(
        rows.records()
            .all(|r| r.unwrap()[col("method")] == *"exact conditional (Clopper-Pearson) 95%"),
        "every row names its method"
    );
    snapshot("hand_made__period_comparison", &text);
}

#[test]
fn a_malformed_row_names_file_row_column_rule_and_value() {
    let cases = [
        ("ct,100,RW6,2019-4\r\n", "month", "2019-4"),
        ("ct,1.5,RW6,2019-04\r\n", "tests", "1.5"),
        ("scan,100,RW6,2019-04\r\n", "measure", "scan"),
        ("ct,100,XXX,2019-04\r\n", "provider_code", "XXX"),
    ];
    for (bad, column, value) in cases {
        let tmp = temp_dir("periods-bad");
        let text = format!("measure,tests,provider_code,month\r\nct,5,RW6,2020-04\r\n{bad}");
        let recipe = write_world(tmp.path(), text.as_bytes());
        let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        for part in ["counts.csv", "row 2", column, value] {
            assert!(err.contains(part), "`{part}` not in: {err}");
        }
    }
}

#[test]
fn a_duplicate_row_is_refused() {
    let tmp = temp_dir("periods-duplicate");
    let text = "provider_code,month,measure,tests\nRW6,2020-04,ct,5\nRW6,2020-04,ct,6\n";
    let recipe = write_world(tmp.path(), text.as_bytes());
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("row 1 too"), "{err}");
}

/// The recipe on its synthetic pair of years: every published figure within tolerance, the
/// table snapshotted, and the same bytes on a second run.
#[test]
fn the_backlog_recipe_verifies_and_is_snapshotted() {
    let tmp = temp_dir("periods-recipe");
    let recipe = workspace().join("configs/backlog-2020.toml");
    let mut texts = Vec::new();
    for run in ["a", "b"] {
        let out = tmp.path().join(run);
        let (code, stdout, err) = strata(&[
            "verify",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stdout}{err}");
        assert!(
            stdout.contains("25 of 25 figures within tolerance"),
            "{stdout}"
        );
        texts.push(
            [
                "period_comparison.csv",
                "waits.csv",
                "did_waits.csv",
                "waits_nations.csv",
            ]
            .map(|f| std::fs::read_to_string(out.join(f)).unwrap()),
        );
    }
    assert_eq!(texts[0], texts[1], "same inputs, same bytes");
    snapshot("backlog-2020__period_comparison", &texts[0][0]);
    snapshot("backlog-2020__waits", &texts[0][1]);
    snapshot("backlog-2020__waits_nations", &texts[0][3]);
    // DID waits: England's and the regions' rows (the trusts' 20,000 are in the run's bytes
    // compared above), 2019 mostly within six weeks, 2020 longer.
    let did_waits = &texts[0][2];
    let kept: String = did_waits
        .lines()
        .filter(|l| !l.starts_with("provider,"))
        .map(|l| format!("{l}\n"))
        .collect();
    snapshot("backlog-2020__did_waits", &kept);
    let share = |month: &str| -> f64 {
        let prefix = format!("england,E92000001,England,\"\",all,{month},request_to_test,");
        let line = did_waits.lines().find(|l| l.starts_with(&prefix)).unwrap();
        line.split(',').nth(12).unwrap().parse().unwrap()
    };
    assert!(share("2019-04") < 5.0, "{}", share("2019-04"));
    assert!(share("2020-04") > 40.0, "{}", share("2020-04"));
}
