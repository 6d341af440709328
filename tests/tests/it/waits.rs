//! DM01 waiting lists (`engine/src/dm01.rs`) through the `waiting_times` stage
//! (`waits.six-weeks`) into `waits.csv`, on hand-made files strata did not write: the current
//! full extract (byte-order mark, CRLF, quoted names with commas, two commissioners to sum, a
//! `TOTAL` row, a test DM01 does not name, a provider of no known region) and the older provider
//! file (its own column names in mixed case, month and test from the recipe); a row whose total is
//! not the sum of its bands is refused naming file, row, column and value.

use std::path::{Path, PathBuf};

use strata_tests::{strata, temp_dir};

/// Month × provider × commissioner × test rows of June 2019 and June 2020.
const FULL_EXTRACT: &str = "\u{feff}Period,Provider Parent Org Code,Provider Parent Name,Provider Org Code,Provider Org Name,Commissioner Parent Org Code,Commissioner Parent Name,Commissioner Org Code,Commissioner Org Name,Diagnostic Tests Sort Order,Diagnostic Tests,00 < 01 Week,01 < 02 Weeks,02 < 03 Weeks,03 < 04 Weeks,04 < 05 Weeks,05 < 06 Weeks,06 < 07 Weeks,07 < 08 Weeks,08 < 09 Weeks,09 < 10 Weeks,10 < 11 Weeks,11 < 12 Weeks,12 < 13 Weeks,13+ Weeks,Total WL,Waiting List Activity,Planned Activity,Unscheduled Activity,Total Activity\r\nJUNE-2020,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,MRI,20,0,0,0,0,0,0,0,50,0,0,0,0,10,80,10,0,0,10\r\nJUNE-2020,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,01W,NHS Stockport,1,MRI,0,0,0,0,0,0,0,0,10,0,0,0,0,10,20,10,0,0,10\r\nJUNE-2020,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,GASTROSCOPY,0,0,0,0,0,0,0,0,400,0,0,0,0,0,400,10,0,0,10\r\nJUNE-2020,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,TOTAL,20,0,0,0,0,0,0,0,450,0,0,0,0,10,480,10,0,0,10\r\nJUNE-2020,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,MAGIC_SCAN,5,0,0,0,0,0,0,0,0,0,0,0,0,0,5,10,0,0,10\r\nJUNE-2019,Y62,NORTH WEST,R0A,MANCHESTER UNIVERSITY NHS FOUNDATION TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,MRI,100,0,0,0,0,0,0,0,0,0,0,0,0,0,100,10,0,0,10\r\nJUNE-2020,Y62,NORTH WEST,ZZZ,UNKNOWN TRUST,QOP,NHS Greater Manchester ICB,14L,\"NHS Manchester, central\",1,CT,60,0,0,0,0,0,0,0,0,0,0,0,0,0,60,10,0,0,10\r\n";

/// One month and test (MRI, June 2020) of one South East trust.
const PROVIDER_FILE: &str = "Region Code,REGION NAME,Provider Code,PROVIDER NAME,Total Waiting List,NUMBER WAITING 6+ WEEKS,Number waiting 13+ Weeks,00 < 01 WEEK,01 < 02 Weeks,02 < 03 WEEKS,03 < 04 Weeks,04 < 05 WEEKS,05 < 06 Weeks,06 < 07 WEEKS,07 < 08 Weeks,08 < 09 WEEKS,09 < 10 Weeks,10 < 11 WEEKS,11 < 12 Weeks,12 < 13 WEEKS,13+ Weeks,WAITING LIST ACTIVITY,Planned Activity,UNSCHEDULED ACTIVITY\nY59,SOUTH EAST,RTH,OXFORD UNIVERSITY HOSPITALS,100,20,5,80,0,0,0,0,0,0,0,15,0,0,0,0,5,5,1,0\n";

fn write_world(dir: &Path, full_extract: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("regions.csv"),
        "provider_code,provider_name,region_code,region_name\n\
         R0A,Manchester University NHS Foundation Trust,Y62,North West\n\
         RTH,Oxford University Hospitals NHS Foundation Trust,Y59,South East\n",
    )
    .unwrap();
    std::fs::write(dir.join("dm01.csv"), full_extract).unwrap();
    std::fs::write(dir.join("provider-mri-2020-06.csv"), PROVIDER_FILE).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        r#"schema = 1
name = "DM01 waits, hand-made"
year = "2020/21"
area_kind = "NHS region"
year_start = "2020-04-01"

[inputs]
provider_regions = "regions.csv"
dm01 = [
    { file = "dm01.csv" },
    { file = "provider-mri-2020-06.csv", period = "2020-06", test = "MRI" },
]

[stages.waiting_times]
plugin = "waits.six-weeks"

[outputs]
dir = "out"
"#,
    )
    .unwrap();
    recipe
}

#[test]
fn both_layouts_give_the_hand_worked_shares() {
    let tmp = temp_dir("waits-hand");
    let recipe = write_world(tmp.path(), FULL_EXTRACT);
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(tmp.path().join("out/waits.csv")).unwrap();
    let row = |code: &str, month: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.contains(&format!(",{code},")) && l.contains(&format!(",{month},")))
            .unwrap_or_else(|| panic!("no row {code} {month} in {text}"))
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    // By hand, R0A MRI June 2020: commissioner 14L 20 + 50 + 10 = 80 waiting (60 six weeks or
    // more, 10 over 13), 01W 0 + 10 + 10 = 20 (20, 10): 100 waiting, 80 (80%), 20 over 13;
    // June 2019 100 all under six weeks (0%): +80 points. Gastroscopy is not imaging. (A column
    // of whole numbers only is written as integers.)
    let r0a = row("R0A", "2020-06");
    assert_eq!(r0a[col("waiting_list")], "100");
    assert_eq!(r0a[col("waiting_6_plus_weeks")], "80");
    assert_eq!(r0a[col("waiting_13_plus_weeks")], "20");
    assert_eq!(r0a[col("pct_waiting_6_plus_weeks")], "80.000000");
    assert_eq!(r0a[col("pct_waiting_6_plus_weeks_year_earlier")], "0");
    assert_eq!(r0a[col("change_pct_points")], "80.000000");
    // RTH (provider file): 100 waiting, 15 + 5 = 20 six weeks or more: 20%.
    assert_eq!(
        row("RTH", "2020-06")[col("pct_waiting_6_plus_weeks")],
        "20.000000"
    );
    assert_eq!(
        row("Y59", "2020-06")[col("pct_waiting_6_plus_weeks")],
        "20.000000"
    );
    // England: R0A 100 (80), ZZZ 60 (0, no known region), RTH 100 (20): 100 of 260.
    let england = row("E92000001", "2020-06");
    assert_eq!(england[col("waiting_list")], "260");
    assert_eq!(england[col("pct_waiting_6_plus_weeks")], "38.461538");
    assert!(
        !text.contains(",region,ZZZ"),
        "no region for an unknown provider"
    );
    let manifest = std::fs::read_to_string(tmp.path().join("out/manifest.json")).unwrap();
    assert!(
        manifest.contains("MAGIC_SCAN (1 rows)"),
        "unknown test reported"
    );
    assert!(manifest.contains("ZZZ"), "unknown provider reported");
    insta::with_settings!({
        snapshot_path => Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots/backlog"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("hand_made__waits", text);
    });
}

#[test]
fn a_total_that_is_not_the_sum_of_its_bands_is_refused() {
    let tmp = temp_dir("waits-bad");
    // Row 1's Total WL 80 becomes 81.
    let bad = FULL_EXTRACT.replacen(",80,10,0,0,10\r\n", ",81,10,0,0,10\r\n", 1);
    assert_ne!(bad, FULL_EXTRACT);
    let recipe = write_world(tmp.path(), &bad);
    let (code, out, err) = strata(&["run", recipe.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    for part in [
        "dm01.csv",
        "row 1",
        "Total WL",
        "81",
        "sum of the 14 weekly bands (80)",
    ] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}
