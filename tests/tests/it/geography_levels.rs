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

/// A recipe run in this process at `scale`, without its publication.
fn run_in_process(recipe: &str, scale: f64) -> strata::pipeline::RunResults {
    let prepared = strata::check(&configs().join(recipe)).expect("the recipe checks");
    let overrides = strata::pipeline::InputOverrides {
        scale: Some(scale),
        ..Default::default()
    };
    strata::pipeline::run(&prepared, &overrides).expect("runs")
}

/// Per area code: (population, observed tests per measure) before disclosure control.
type Level = BTreeMap<String, (f64, BTreeMap<String, f64>)>;

fn level(results: &strata::pipeline::RunResults) -> Level {
    let counts = &results.counts;
    let rates = results.rates.as_ref().expect("a standardisation stage");
    let mut level: Level = counts
        .areas
        .iter()
        .enumerate()
        .map(|(a, area)| {
            (
                area.code.clone(),
                (counts.population_of(a).iter().sum(), BTreeMap::new()),
            )
        })
        .collect();
    for r in &rates.areas {
        let code = &counts.areas[r.area].code;
        let measure = counts.measures[r.measure].clone();
        level
            .get_mut(code)
            .expect("area")
            .1
            .insert(measure, r.observed);
    }
    level
}

/// `file`'s `key` → `value` columns (a reference lookup of the repository).
fn lookup(file: &str, key: &str, value: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/reference/2023-24")
        .join(file);
    let mut reader = csv::Reader::from_path(&path).expect("reference file");
    let header = reader.headers().expect("header").clone();
    let (k, v) = (
        header.iter().position(|h| h == key).expect(key),
        header.iter().position(|h| h == value).expect(value),
    );
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            (r[k].to_string(), r[v].to_string())
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// The PCN level on the synthetic year: every practice is in one PCN-level area (a PCN, or its
/// sub-ICB's practices in no PCN), so each PCN's population and tests are exactly its
/// practices' (the practice recipe's), both levels attributing by practice alone; and each
/// sub-ICB's population is exactly its PCNs' wherever no PCN crosses its boundary (where some
/// do, the sub-ICBs they join together equal their PCNs together). Tests are compared with the
/// sub-ICB level only as at most: a record with no known practice falls back to its LSOA's
/// sub-ICB, and an LSOA names no PCN.
#[test]
fn pcn_areas_are_their_practices_and_sum_to_their_sub_icb() {
    let scale = 0.001;
    let pcn = level(&run_in_process("did-2023-24-pcn.toml", scale));
    let practice = level(&run_in_process("did-2023-24-practice.toml", scale));
    let sub = level(&run_in_process("did-2023-24-sub-icb.toml", scale));
    assert_eq!(pcn.len(), 1299);
    let pcn_of = lookup("pcn/practice_area.csv", "practice_code", "area_code");
    let parent_of = lookup("pcn/areas.csv", "area_code", "parent_code");
    assert_eq!(pcn_of.len(), 6445, "every practice in one PCN-level area");

    // PCN = Σ its practices, population and every measure's tests.
    let mut from_practices: Level = BTreeMap::new();
    for (code, (population, observed)) in &practice {
        let e = from_practices.entry(pcn_of[code].clone()).or_default();
        e.0 += population;
        for (m, o) in observed {
            *e.1.entry(m.clone()).or_default() += o;
        }
    }
    let mut measures_compared = 0;
    for (code, (population, observed)) in &pcn {
        let (p, o) = &from_practices[code];
        assert!(
            close(*population, *p),
            "{code}: {population} against practices' {p}"
        );
        for (m, tests) in observed {
            assert_eq!(*tests, o[m], "{code} {m}");
            measures_compared += 1;
        }
    }
    assert_eq!(measures_compared, 1299 * 14);

    // Sub-ICB = Σ its PCNs, except where spanning PCNs join sub-ICBs into one group.
    let spanning = lookup(
        "pcn/spanning_pcns.csv",
        "area_code",
        "sicbl_practices_list_size",
    );
    assert_eq!(spanning.len(), 9);
    let joined: std::collections::BTreeSet<String> = spanning
        .values()
        .flat_map(|list| {
            list.split(';')
                .map(|s| s.split(':').next().unwrap_or("").to_string())
        })
        .collect();
    let mut by_parent: BTreeMap<&str, (f64, BTreeMap<String, f64>)> = BTreeMap::new();
    for (code, (population, observed)) in &pcn {
        let parent = parent_of[code].as_str();
        let key = if joined.contains(parent) {
            "joined"
        } else {
            parent
        };
        let e = by_parent.entry(key).or_default();
        e.0 += population;
        for (m, o) in observed {
            *e.1.entry(m.clone()).or_default() += o;
        }
    }
    let mut joined_sub = (0.0, BTreeMap::<String, f64>::new());
    let mut clean = 0;
    for (code, (population, observed)) in &sub {
        let (p, o) = if joined.contains(code) {
            joined_sub.0 += population;
            for (m, t) in observed {
                *joined_sub.1.entry(m.clone()).or_default() += t;
            }
            continue;
        } else {
            clean += 1;
            &by_parent[code.as_str()]
        };
        assert!(
            close(*population, *p),
            "{code}: sub-ICB {population}, its PCNs {p}"
        );
        for (m, tests) in observed {
            assert!(
                o[m] <= *tests,
                "{code} {m}: PCNs {} above the sub-ICB's {tests}",
                o[m]
            );
        }
    }
    assert_eq!(clean, 106 - joined.len());
    let (p, o) = &by_parent["joined"];
    assert!(
        close(joined_sub.0, *p),
        "joined sub-ICBs {} against their PCNs {p}",
        joined_sub.0
    );
    for (m, tests) in &joined_sub.1 {
        assert!(o[m] <= *tests);
    }
}

/// The region level: each of the 7 regions is exactly its sub-ICB locations (population and
/// every measure's tests; both levels attribute by practice, then LSOA), the regions together
/// are England, and the national table is the sub-ICB recipe's, byte for byte.
#[test]
fn regions_are_their_sub_icbs_and_sum_to_england() {
    let scale = 0.001;
    let region_run = run_in_process("did-2023-24-region.toml", scale);
    let sub_run = run_in_process("did-2023-24-sub-icb.toml", scale);
    let (region, sub) = (level(&region_run), level(&sub_run));
    assert_eq!(region.len(), 7);
    let region_of_practice = lookup("region/practice_area.csv", "practice_code", "area_code");
    let sub_of_practice = lookup("sicbl/practice_area.csv", "practice_code", "area_code");
    let region_of_sub: BTreeMap<&str, &str> = sub_of_practice
        .iter()
        .map(|(p, s)| (s.as_str(), region_of_practice[p].as_str()))
        .collect();
    assert_eq!(region_of_sub.len(), 106);
    let mut from_subs: Level = BTreeMap::new();
    for (code, (population, observed)) in &sub {
        let e = from_subs
            .entry(region_of_sub[code.as_str()].to_string())
            .or_default();
        e.0 += population;
        for (m, o) in observed {
            *e.1.entry(m.clone()).or_default() += o;
        }
    }
    for (code, (population, observed)) in &region {
        let (p, o) = &from_subs[code];
        assert!(
            close(*population, *p),
            "{code}: {population} against sub-ICBs' {p}"
        );
        assert_eq!(observed, o, "{code}");
    }
    // England: the national rates' observed tests and population are the regions'.
    let rates = region_run.rates.as_ref().expect("rates");
    let measures = &region_run.counts.measures;
    for n in &rates.national {
        let m = &measures[n.measure];
        let tests: f64 = region.values().map(|(_, o)| o[m]).sum();
        assert_eq!(n.observed, tests, "{m}");
        let population: f64 = region.values().map(|(p, _)| p).sum();
        assert!(
            close(n.population, population),
            "{m}: {} against {population}",
            n.population
        );
    }
    let national = |r: &strata::pipeline::RunResults| {
        let t = r
            .tables
            .iter()
            .find(|t| t.name == "national_rates")
            .expect("national");
        strata::output::csv_bytes(t, 6)
    };
    assert_eq!(national(&region_run), national(&sub_run));
}
