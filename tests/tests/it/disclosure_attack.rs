//! The differencing attack (`strata_tests::attack`) on what the disclosure presets publish: no
//! suppressed cell may be recovered from its parent's total and its siblings' cells, at any level
//! of a tree of areas, on hand-made tables, random trees and a run's own outputs. Each case first
//! shows that the attack does recover cells when only the primary rule is applied, so a pass
//! is not the attack failing to try.

use proptest::prelude::*;
use strata_api::{Configured, DisclosureMethod, Params, Table, Value};
use strata_tests::attack::{Equation, Rule, Shown, recovered};
use strata_tests::{strata, temp_dir, write_world};

const HIERARCHY: &str = "hierarchy = { code = \"area_code\", parent = \"parent_code\" }";

fn disclosure(toml: &str) -> Box<dyn DisclosureMethod> {
    let registry = strata::plugins::Registry::load(&[]).expect("registry");
    let source = registry
        .find("disclosure.nhs-sub-national")
        .expect("built-in disclosure plugin");
    match source.configure(&Params::from_toml_str(toml).expect("toml")) {
        Ok(Configured::Disclosure(m)) => m,
        Ok(_) => panic!("not a disclosure method"),
        Err(e) => panic!("{e}"),
    }
}

/// (area, parent, count) rows as a table of one measure.
fn tree(rows: &[(String, String, f64)]) -> Table {
    let mut t = Table::new("t", "test", &["area_code", "parent_code", "tests"]);
    for (area, parent, tests) in rows {
        let parent = if parent.is_empty() {
            Value::Missing
        } else {
            Value::Text(parent.clone())
        };
        t.rows.push(vec![
            Value::Text(area.clone()),
            parent,
            Value::Number(*tests),
        ]);
    }
    t
}

fn shown(value: &Value, rule: Rule) -> Shown {
    match value {
        Value::Number(n) if rule.round_to == 1.0 => Shown::Exact(*n),
        Value::Number(n) => Shown::Rounded(*n),
        Value::Text(t) if t == "*" => Shown::Suppressed,
        other => panic!("unexpected cell {other:?}"),
    }
}

/// Each row with children: row = Σ children.
fn tree_equations(t: &Table) -> Vec<Equation> {
    let mut equations = Vec::new();
    for (p, parent) in t.rows.iter().enumerate() {
        let members: Vec<usize> = (0..t.rows.len())
            .filter(|&c| t.rows[c][1] == parent[0])
            .collect();
        if !members.is_empty() {
            equations.push(Equation { total: p, members });
        }
    }
    equations
}

/// The suppressed rows of a protected tree the attack recovers.
fn attack_tree(t: &Table, rule: Rule) -> Vec<String> {
    let cells: Vec<Shown> = t.rows.iter().map(|r| shown(&r[2], rule)).collect();
    recovered(&cells, rule, &tree_equations(t))
        .expect("the published figures are consistent")
        .into_iter()
        .map(|c| format!("{:?}", t.rows[c][0]))
        .collect()
}

const HES: Rule = Rule {
    suppress_max: 5.0,
    round_to: 1.0,
};
const NHS: Rule = Rule {
    suppress_max: 7.0,
    round_to: 5.0,
};

fn hand_made() -> Table {
    let rows = [
        ("X", "", 109.0),
        ("A", "X", 55.0),
        ("B", "X", 50.0),
        ("C", "X", 4.0),
        ("a1", "A", 3.0),
        ("a2", "A", 40.0),
        ("a3", "A", 12.0),
        ("b1", "B", 20.0),
        ("b2", "B", 30.0),
        ("c1", "C", 4.0),
        ("c2", "C", 0.0),
        ("d1", "D", 1.0),
    ];
    tree(&rows.map(|(a, p, n)| (a.to_string(), p.to_string(), n)))
}

#[test]
fn hand_made_tree_primary_rule_alone_is_attacked() {
    // The primary rule alone (no totals convention): a1 = A − a2 − a3 = 3 and C = X − A − B = 4
    // come straight back.
    let mut t = hand_made();
    t.rows.pop();
    disclosure("preset = \"hes-pre-2018\"")
        .protect(&mut t, &["tests".into()])
        .expect("protects");
    let got = attack_tree(&t, HES);
    assert!(got.contains(&"Text(\"a1\")".to_string()), "{got:?}");
    assert!(got.contains(&"Text(\"C\")".to_string()), "{got:?}");
}

#[test]
fn hand_made_tree_is_safe_under_both_presets() {
    for (preset, rule) in [("hes-pre-2018", HES), ("nhs-england-sub-national", NHS)] {
        let mut t = hand_made();
        t.rows.pop();
        disclosure(&format!("preset = \"{preset}\"\n{HIERARCHY}"))
            .protect(&mut t, &["tests".into()])
            .expect("protects");
        let hidden = t
            .rows
            .iter()
            .filter(|r| r[2] == Value::Text("*".into()))
            .count();
        assert!(hidden >= 4, "{preset}: {hidden} suppressed");
        assert_eq!(attack_tree(&t, rule), Vec::<String>::new(), "{preset}");
    }
}

/// A random ICB: 2–4 sub-ICBs of 1–6 practices, practice counts mostly small.
fn random_tree() -> impl Strategy<Value = Table> {
    let practice = prop_oneof![3 => 0u32..8, 2 => 0u32..20, 1 => 0u32..200];
    let sub_icb = prop::collection::vec(practice, 1..7);
    prop::collection::vec(sub_icb, 2..5).prop_map(|subs| {
        let mut rows = Vec::new();
        let total: u32 = subs.iter().flatten().sum();
        rows.push(("X".to_string(), String::new(), total as f64));
        for (s, practices) in subs.iter().enumerate() {
            let code = format!("S{s}");
            rows.push((
                code.clone(),
                "X".into(),
                practices.iter().sum::<u32>() as f64,
            ));
            for (p, n) in practices.iter().enumerate() {
                rows.push((format!("P{s}{p}"), code.clone(), *n as f64));
            }
        }
        tree(&rows)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_resist_the_attack(t in random_tree()) {
        for (preset, rule) in [("hes-pre-2018", HES), ("nhs-england-sub-national", NHS)] {
            let mut protected = t.clone();
            disclosure(&format!("preset = \"{preset}\"\n{HIERARCHY}"))
                .protect(&mut protected, &["tests".into()])
                .expect("protects");
            let got = attack_tree(&protected, rule);
            prop_assert!(got.is_empty(), "{preset}: recovered {got:?} from {:?}", protected.rows);
        }
    }
}

/// Reads a CSV output as (header, rows).
fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("output csv");
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("row").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn cell(text: &str, rule: Rule) -> Shown {
    match text {
        "*" => Shown::Suppressed,
        t => {
            let n: f64 = t.parse().expect("a count");
            if rule.round_to == 1.0 {
                Shown::Exact(n)
            } else {
                Shown::Rounded(n)
            }
        }
    }
}

/// Runs the test world with `disclosure` and attacks `area_rates.observed` with each measure's
/// national total from `national_rates.observed`; answers (suppressed, recovered) cells.
fn attack_run(disclosure_params: &str, rule: Rule) -> (usize, Vec<String>) {
    let tmp = temp_dir("disclosure-attack");
    let world = write_world(&tmp.path().join("world"), "ratio.rate");
    let recipe = std::fs::read_to_string(&world.recipe).expect("recipe");
    let recipe = recipe.replace("stratum_counts = true\n", "").replace(
        "[outputs]",
        &format!(
            "[stages.disclosure]\nplugin = \"disclosure.nhs-sub-national\"\nparams = {{ {disclosure_params} }}\n\n[outputs]"
        ),
    );
    std::fs::write(&world.recipe, recipe).expect("write recipe");
    // Every 25th record: counts of a few tests per area and measure, the case disclosure is for.
    let activity = world.dir.join("activity.csv");
    let text = std::fs::read_to_string(&activity).expect("activity");
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| i % 25 == 0)
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    std::fs::write(&activity, kept).expect("write activity");
    let out = tmp.path().join("out");
    let (code, _, err) = strata(&[
        "run",
        world.recipe.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let (header, areas) = read_csv(&out.join("area_rates.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (measure, observed, area) = (col("measure"), col("observed"), col("area_code"));
    let (nheader, national) = read_csv(&out.join("national_rates.csv"));
    let ncol = |name: &str| nheader.iter().position(|h| h == name).expect(name);
    let mut cells: Vec<Shown> = areas.iter().map(|r| cell(&r[observed], rule)).collect();
    let mut equations = Vec::new();
    for row in &national {
        cells.push(cell(&row[ncol("observed")], rule));
        let members = (0..areas.len())
            .filter(|&a| areas[a][measure] == row[ncol("measure")])
            .collect();
        equations.push(Equation {
            total: cells.len() - 1,
            members,
        });
    }
    let suppressed = cells[..areas.len()]
        .iter()
        .filter(|c| **c == Shown::Suppressed)
        .count();
    let got = recovered(&cells, rule, &equations)
        .expect("consistent")
        .into_iter()
        .filter(|&c| c < areas.len())
        .map(|c| format!("{} {}", areas[c][area], areas[c][measure]))
        .collect();
    (suppressed, got)
}

#[test]
fn a_runs_outputs_resist_the_attack() {
    // Primary rule alone: the attack recovers area counts from the national totals.
    let (suppressed, got) = attack_run("preset = \"hes-pre-2018\"", HES);
    assert!(suppressed > 0, "the run has small counts to protect");
    assert!(
        !got.is_empty(),
        "the attack recovers cells of the primary rule alone"
    );
    // With the national totals declared: nothing comes back.
    let (suppressed, got) = attack_run(
        "preset = \"hes-pre-2018\", group_by = \"measure\", total_published_elsewhere = true",
        HES,
    );
    assert!(suppressed > 0);
    assert_eq!(got, Vec::<String>::new());
}
