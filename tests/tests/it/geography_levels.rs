//! Geography level as a recipe choice (seed 003): the sub-ICB recipe on a small synthetic year.
//! Every sub-ICB location has its parent ICB in `area_rates`; the population shared out over
//! practices and summed into sub-ICBs gives, per ICB, the ICB recipe's own population, and the
//! observed tests of a parent's sub-ICBs add up to the ICB recipe's observed tests for that ICB
//! (the same records, attributed by practice at either level, with LSOA fallback at both).

use std::collections::BTreeMap;
use std::path::Path;

use strata_tests::{strata, temp_dir};

fn configs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn run(recipe: &str, out: &Path) {
    let (code, _, err) = strata(&[
        "run",
        configs().join(recipe).to_str().expect("utf-8"),
        "--scale",
        "0.001",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{recipe}: {err}");
}

/// `area_rates.csv` as rows of column → text (after disclosure: counts rounded to 5).
fn area_rates(out: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("area_rates.csv")).expect("area_rates");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.expect("row").iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn sub_icb_areas_carry_their_icb_and_add_up_to_it() {
    let tmp = temp_dir("geography-levels");
    let (sub, icb) = (tmp.path().join("sub-icb"), tmp.path().join("icb"));
    run("did-2023-24-sub-icb.toml", &sub);
    run("did-2023-24-icb.toml", &icb);
    let sub_rows = area_rates(&sub);
    let icb_rows = area_rates(&icb);
    assert_eq!(sub_rows.len(), 106 * 14);
    let icb_codes: std::collections::BTreeSet<&str> =
        icb_rows.iter().map(|r| r["area_code"].as_str()).collect();
    for r in &sub_rows {
        assert!(icb_codes.contains(r["parent_code"].as_str()), "{r:?}");
        assert!(!r["parent_name"].is_empty(), "{r:?}");
    }
    // Each ICB's sub-ICBs sum to it, within the rounding to 5 of each published cell.
    let mut compared = 0;
    for (measure, column) in [
        ("xray", "population"),
        ("ct", "population"),
        ("xray", "observed"),
    ] {
        let mut by_parent: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for r in sub_rows.iter().filter(|r| r["measure"] == measure) {
            let count: f64 = r[column].parse().expect("a published count");
            let e = by_parent.entry(r["parent_code"].as_str()).or_default();
            e.0 += count;
            e.1 += 1;
        }
        for r in icb_rows.iter().filter(|r| r["measure"] == measure) {
            let (sum, n) = by_parent[r["area_code"].as_str()];
            let icb: f64 = r[column].parse().expect("a published count");
            // Each published population is rounded to 5 (±2.5), the ICB's and each sub-ICB's.
            assert!(
                (sum - icb).abs() <= 2.5 * (n as f64 + 1.0),
                "{measure} {column} {}: sub-ICBs {sum} against ICB {icb}",
                r["area_code"]
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 3 * 42);
}
