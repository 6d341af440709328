//! Seed 004's community diagnostic centre share (`configs/cdc-share-2024.toml`): the
//! `setting_share` stage (`share.cdc-over-dm01`) on the recipe's synthetic set and on files strata
//! did not write: a CDC activity file in another column order with a byte-order mark, CRLF line
//! ends, quoted names holding commas and test names in another case, beside a hand-made DM01 full
//! extract, against shares worked by hand; bad CDC rows refused naming file, row, column, rule and
//! value; a site code the site list gives to two CDCs reported, never joined.
//!
//! Snapshots are under `snapshots/cdc/`; accept a reviewed change with
//! `INSTA_UPDATE=always cargo test -p strata-tests --test it cdc_share::`.

use std::path::{Path, PathBuf};

use strata_tests::{strata, temp_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => workspace().join("snapshots/cdc"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name.to_string(), text);
    });
}

const DM01_HEADER: &str = "Period,Provider Parent Org Code,Provider Parent Name,Provider Org Code,Provider Org Name,Commissioner Parent Org Code,Commissioner Parent Name,Commissioner Org Code,Commissioner Org Name,Diagnostic Tests Sort Order,Diagnostic Tests,00 < 01 Week,01 < 02 Weeks,02 < 03 Weeks,03 < 04 Weeks,04 < 05 Weeks,05 < 06 Weeks,06 < 07 Weeks,07 < 08 Weeks,08 < 09 Weeks,09 < 10 Weeks,10 < 11 Weeks,11 < 12 Weeks,12 < 13 Weeks,13+ Weeks,Total WL,Waiting List Activity,Planned Activity,Unscheduled Activity,Total Activity";

/// A DM01 full-extract row with an empty waiting list and `activity` tests done.
fn dm01_row(period: &str, provider: &str, commissioner: &str, test: &str, activity: u32) -> String {
    format!(
        "{period},Y00,PARENT,{provider},\"{provider} TRUST, MAIN\",QXX,ICB,{commissioner},\"NHS {commissioner}\",1,{test},0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,{activity},0,0,{activity}\r\n"
    )
}

/// The CDC file as NHS England might export it, columns in another order.
const CDC_FILE: &str = "\u{feff}Reporting Month,CDC Code,CDC Name,Diagnostic Test Type,Sum of Metric Value,ID,ICB,Regional Name,Region Code\r\n\
Aug-24,AAA01,\"Manchester CDC, North\",Computed Tomography,40,1,QOP,North West,Y62\r\n\
Aug-24,AAA01,\"Manchester CDC, North\",Magnetic Resonance Imaging,45,2,QOP,North West,Y62\r\n\
Aug-24,BBB02,Oxford CDC,computed tomography ,60,3,QU9,South East,Y59\r\n\
Aug-24,BBB02,Oxford CDC,Plain X-ray,100,4,QU9,South East,Y59\r\n\
Aug-23,AAA01,\"Manchester CDC, North\",Computed Tomography,24,5,QOP,North West,Y62\r\n\
Jul-24,BBB02,Oxford CDC,Plain X-ray,50,6,QU9,South East,Y59\r\n";

fn write_world(dir: &Path, cdc: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        (
            "regions.csv",
            "provider_code,provider_name,region_code,region_name\n\
             R0A,Manchester University NHS Foundation Trust,Y62,North West\n\
             RTH,Oxford University Hospitals NHS Foundation Trust,Y59,South East\n"
                .to_string(),
        ),
        (
            "icbs.csv",
            "provider_code,icb_code,icb_name\n\
             R0A,QOP,NHS Greater Manchester ICB\n\
             RTH,QU9,\"NHS Buckinghamshire, Oxfordshire and Berkshire West ICB\"\n"
                .to_string(),
        ),
        (
            "sites.csv",
            "cdc_ods_site_code,name_of_cdc,icb_code,cdc_trust_code\n\
             AAA01,\"Manchester CDC, North\",QOP,R0A\n\
             BBB02,Oxford CDC,QU9,RTH\n\
             BBB02,Reading CDC,QU9,RHW\n\
             CCC03,Quiet CDC,QU9,RTH\n"
                .to_string(),
        ),
        ("cdc.csv", cdc.to_string()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut dm01 = format!("{DM01_HEADER}\r\n");
    for (period, provider, commissioner, test, activity) in [
        ("AUGUST-2024", "R0A", "14L", "CT", 300),
        ("AUGUST-2024", "R0A", "01W", "CT", 100),
        ("AUGUST-2024", "R0A", "14L", "MRI", 200),
        ("AUGUST-2024", "R0A", "14L", "GASTROSCOPY", 50),
        ("AUGUST-2024", "RTH", "10Q", "CT", 750),
        ("AUGUST-2024", "RTH", "10Q", "MRI", 100),
        ("AUGUST-2023", "R0A", "14L", "CT", 300),
        ("AUGUST-2023", "RTH", "10Q", "CT", 500),
    ] {
        dm01.push_str(&dm01_row(period, provider, commissioner, test, activity));
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
cdc_sites = "sites.csv"
dm01 = [{ file = "dm01.csv" }]
cdc_activity = ["cdc.csv"]

[inputs.cdc_test_names]
"Computed Tomography" = "CT"
"Magnetic Resonance Imaging" = "MRI"
"Plain X-ray" = "NOT_DM01"

[stages.setting_share]
plugin = "share.cdc-over-dm01"
params = { tests = ["CT", "MRI", "GASTROSCOPY"] }

[outputs]
dir = "out"

[[charts]]
name = "ct_mri"
title = "CDC share of CT and MRI"
table = "cdc_share_england"
where = { measure = "cdc_share" }
x = "month"
series = "test"
series_values = ["CT", "MRI"]
y = [{ column = "share_pct" }, { column = "share_pct_year_earlier", label = "a year before", dashed = true }]
y_label = "%"
"#,
    )
    .unwrap();
    recipe
}

/// A CSV's rows as header name → value maps.
fn rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
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

fn find<'a>(
    rows: &'a [std::collections::BTreeMap<String, String>],
    keys: &[(&str, &str)],
) -> &'a std::collections::BTreeMap<String, String> {
    rows.iter()
        .find(|r| keys.iter().all(|(k, v)| r[*k] == *v))
        .unwrap_or_else(|| panic!("no row {keys:?}"))
}

fn number(row: &std::collections::BTreeMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = `{}`", row[column]))
}

#[test]
fn a_file_strata_did_not_write_gives_the_hand_worked_shares() {
    let tmp = temp_dir("cdc-hand");
    let recipe = write_world(tmp.path(), CDC_FILE);
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let england = rows(&tmp.path().join("out/cdc_share_england.csv"));
    let sub = rows(&tmp.path().join("out/cdc_share.csv"));
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-6, "{a} against {b}");
    let share = |rows, keys: &[(&str, &str)]| number(find(rows, keys), "share_pct");
    let aug = ("month", "2024-08");
    let cdc_share = ("measure", "cdc_share");
    // CT, August 2024: CDCs 40 + 60 (the second spelt in lower case) over DM01 400 (two
    // commissioners) + 750 = 100 / 1,150; August 2023 24 / 800 = 3%.
    let ct = find(&england, &[aug, cdc_share, ("test", "CT")]);
    assert_eq!(
        (number(ct, "numerator"), number(ct, "denominator")),
        (100.0, 1150.0)
    );
    close(number(ct, "share_pct"), 100.0 * 100.0 / 1150.0);
    close(number(ct, "share_pct_year_earlier"), 3.0);
    close(
        number(ct, "change_pct_points"),
        100.0 * 100.0 / 1150.0 - 3.0,
    );
    // MRI 45 / 300; all three DM01 tests 145 / 1,500 (the X-ray is not DM01's).
    close(share(&england, &[aug, cdc_share, ("test", "MRI")]), 15.0);
    close(
        share(&england, &[aug, cdc_share, ("test", "ALL")]),
        100.0 * 145.0 / 1500.0,
    );
    // CT and MRI are 1,450 of DM01's 1,500.
    let both = [aug, ("measure", "share_of_dm01"), ("test", "CT+MRI")];
    close(share(&england, &both), 100.0 * 1450.0 / 1500.0);
    // CDC tests of every type: 24 (Aug 2023), 50 (Jul 2024), 245 (Aug 2024): 319 in all.
    let cumulative = find(&england, &[aug, ("measure", "cdc_tests_cumulative")]);
    assert_eq!(number(cumulative, "numerator"), 319.0);
    // ICBs and regions: Greater Manchester CT 40 / 400, BOB CT 60 / 750, North West MRI 45 / 200.
    close(
        share(&sub, &[aug, cdc_share, ("test", "CT"), ("code", "QOP")]),
        10.0,
    );
    close(
        share(&sub, &[aug, cdc_share, ("test", "CT"), ("code", "QU9")]),
        8.0,
    );
    close(
        share(&sub, &[aug, cdc_share, ("test", "MRI"), ("code", "Y62")]),
        22.5,
    );
    let bob = find(&sub, &[aug, cdc_share, ("test", "CT"), ("code", "QU9")]);
    assert_eq!(
        bob["name"],
        "NHS Buckinghamshire, Oxfordshire and Berkshire West ICB"
    );
    assert!(england.iter().chain(&sub).all(|r| !r["method"].is_empty()));
    // The site list gives BBB02 to two CDCs: reported, joined to neither.
    let join = rows(&tmp.path().join("out/cdc_site_join.csv"));
    let bbb = find(&join, &[("cdc_code", "BBB02")]);
    assert_eq!(bbb["listed_sites"], "2");
    assert!(bbb["finding"].contains("not joined"), "{bbb:?}");
    assert_eq!(find(&join, &[("cdc_code", "AAA01")])["finding"], "joined");
    let quiet = find(&join, &[("cdc_code", "CCC03")]);
    assert!(quiet["finding"].contains("no activity"), "{quiet:?}");
    // The recipe's chart: CT at 8.7% (100 / 1,150) in August 2024, 3.0% the year before.
    let svg = std::fs::read_to_string(tmp.path().join("out/charts/ct_mri.svg")).unwrap();
    for title in [
        "<title>CT, 2024-08: 8.7</title>",
        "<title>CT, a year before, 2024-08: 3.0</title>",
        "<title>MRI, 2024-08: 15.0</title>",
    ] {
        assert!(svg.contains(title), "{title} not in the chart");
    }
}

#[test]
fn a_chart_of_a_column_the_table_lacks_is_refused_naming_it() {
    let tmp = temp_dir("cdc-chart");
    let recipe = write_world(tmp.path(), CDC_FILE);
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        text.replace("share_pct_year_earlier", "share_last_year"),
    )
    .unwrap();
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}{err}");
    for part in ["chart `ct_mri`", "no column `share_last_year`"] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}

#[test]
fn bad_cdc_rows_name_file_row_column_rule_and_value() {
    let cases = [
        // (row 2's edit, the parts the message must hold)
        (
            "Aug-24,AAA01",
            "2024-08,AAA01",
            vec!["row 1", "Reporting Month", "`2024-08`", "Mon-YY"],
        ),
        (
            "Magnetic Resonance Imaging",
            "Magic Scan",
            vec![
                "row 2",
                "Diagnostic Test Type",
                "`Magic Scan`",
                "cdc_test_names",
            ],
        ),
        (
            ",45,2,",
            ",-45,2,",
            vec!["row 2", "Sum of Metric Value", "-45", "negative"],
        ),
        (
            "Aug-23,AAA01,\"Manchester CDC, North\",Computed Tomography,24,5",
            "Aug-24,AAA01,\"Manchester CDC, North\",Computed Tomography,24,5",
            vec!["row 5", "CDC Code", "AAA01", "row 1 too"],
        ),
        (
            ",ICB,",
            ",Integrated Care Board,",
            vec!["ICB", "required column missing"],
        ),
    ];
    for (i, (from, to, parts)) in cases.into_iter().enumerate() {
        let tmp = temp_dir(&format!("cdc-bad-{i}"));
        let bad = CDC_FILE.replacen(from, to, 1);
        assert_ne!(bad, CDC_FILE, "{from}");
        let recipe = write_world(tmp.path(), &bad);
        let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        for part in parts.iter().chain(&["cdc.csv"]) {
            assert!(err.contains(part), "`{part}` not in: {err}");
        }
    }
}

/// The recipe on its synthetic set: every published figure within tolerance, the same bytes on a
/// second run, sub-national counts under the disclosure rule, the J2H6R finding; England's
/// table, the site join and August's CT, MRI and all-test shares by region and ICB snapshotted.
#[test]
fn the_cdc_recipe_verifies_and_is_snapshotted() {
    let tmp = temp_dir("cdc-recipe");
    let recipe = workspace().join("configs/cdc-share-2024.toml");
    let files = [
        "cdc_share_england.csv",
        "cdc_share.csv",
        "cdc_site_join.csv",
    ];
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
            stdout.contains("17 of 17 figures within tolerance"),
            "{stdout}"
        );
        texts.push(files.map(|f| std::fs::read_to_string(out.join(f)).unwrap()));
    }
    assert_eq!(texts[0], texts[1], "same inputs, same bytes");
    let sub = rows(&tmp.path().join("a/cdc_share.csv"));
    // 0 kept, 1-7 suppressed, others rounded to 5: every sub-national count.
    for r in &sub {
        for c in ["numerator", "denominator"] {
            let v = &r[c];
            let ok = v.is_empty() || v == "*" || v.parse::<f64>().is_ok_and(|n| n % 5.0 == 0.0);
            assert!(ok, "{c} = {v} in {r:?}");
        }
    }
    let join = rows(&tmp.path().join("a/cdc_site_join.csv"));
    let j2h6r: Vec<_> = join.iter().filter(|r| r["cdc_code"] == "J2H6R").collect();
    assert_eq!(j2h6r.len(), 2, "West Kent and West Essex CDCs");
    assert!(j2h6r.iter().all(|r| r["finding"].contains("not joined")));
    let chart = std::fs::read_to_string(tmp.path().join("a/charts/cdc_share_ct_mri.svg")).unwrap();
    assert!(
        chart.contains("<title>MRI, 2024-08: 13.5</title>"),
        "{chart}"
    );
    let header = texts[0][1].lines().next().unwrap();
    let august: Vec<&str> = texts[0][1]
        .lines()
        .filter(|l| {
            (l.contains(",2024-08,cdc_share,") || l.contains(",2023-08,cdc_share,"))
                && [",CT,", ",MRI,", ",ALL,"].iter().any(|t| l.contains(t))
        })
        .collect();
    snapshot("cdc-share-2024__cdc_share_england", &texts[0][0]);
    snapshot(
        "cdc-share-2024__cdc_share_august",
        &format!("{header}\n{}\n", august.join("\n")),
    );
    snapshot("cdc-share-2024__cdc_site_join", &texts[0][2]);
}

#[test]
fn a_recipe_whose_cdc_inputs_cannot_work_is_refused_before_any_data_is_read() {
    let cases = [
        (
            "\"Plain X-ray\" = \"NOT_DM01\"",
            "\"Plain X-ray\" = \"XRAY\"",
            vec![
                "recipe.toml:",
                "inputs.cdc_test_names",
                "`XRAY`",
                "not a DM01 test code",
            ],
        ),
        (
            "dm01 = [{ file = \"dm01.csv\" }]\n",
            "",
            vec!["recipe.toml", "`cdc_activity` needs `dm01` files"],
        ),
        (
            "provider_icbs = \"icbs.csv\"\n",
            "",
            vec!["recipe.toml", "needs `provider_icbs`"],
        ),
    ];
    for (i, (from, to, parts)) in cases.into_iter().enumerate() {
        let tmp = temp_dir(&format!("cdc-recipe-bad-{i}"));
        let recipe = write_world(tmp.path(), CDC_FILE);
        let text = std::fs::read_to_string(&recipe).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&recipe, text.replacen(from, to, 1)).unwrap();
        let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
        assert_eq!(code, 2, "{out}{err}");
        for part in &parts {
            assert!(err.contains(part), "`{part}` not in: {err}");
        }
    }
}
