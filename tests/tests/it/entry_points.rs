//! Record-level activity and the aggregated entry (stratum counts + population) are one pipeline:
//! the same data through either gives the same outputs.

use strata_tests::{strata, temp_dir, write_world};

const SHARED_TABLES: [&str; 4] = [
    "national_rates.csv",
    "area_rates.csv",
    "factor_ratios.csv",
    "summary.csv",
];

#[test]
fn record_level_and_aggregated_entries_agree() {
    let tmp = temp_dir("entries");
    let world = write_world(tmp.path(), "ratio.rate");
    let recipe = world.recipe.to_str().unwrap();
    let (code, out, err) = strata(&["run", recipe]);
    assert_eq!(code, 0, "{out}{err}");
    let first = world.dir.join("out");

    // Feed the stratum counts the first run wrote back in through the aggregated entry.
    let counts = tmp.path().join("counts.csv");
    let population = tmp.path().join("population_from_run.csv");
    std::fs::copy(first.join("stratum_counts.csv"), &counts).unwrap();
    std::fs::copy(first.join("stratum_population.csv"), &population).unwrap();
    let second = tmp.path().join("out-aggregated");
    let (code, out, err) = strata(&[
        "run",
        recipe,
        "--counts",
        counts.to_str().unwrap(),
        "--population",
        population.to_str().unwrap(),
        "--out",
        second.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for table in SHARED_TABLES {
        let a = std::fs::read(first.join(table)).unwrap();
        let b = std::fs::read(second.join(table)).unwrap();
        assert!(a == b, "{table} differs between the entries");
        assert!(a.len() > 100, "{table} is not empty");
    }
    // The aggregated run has no record-level data-quality tables, and says where its data came from.
    assert!(!second.join("exclusions.csv").exists());
    let manifest = std::fs::read_to_string(second.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"counts\""), "{manifest}");
    assert!(!manifest.contains("\"activity\""), "{manifest}");
}
