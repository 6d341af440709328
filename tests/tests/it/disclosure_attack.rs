//! The differencing attack (`strata_tests::attack`) on what the disclosure presets publish: no
//! suppressed cell may be recovered from its parent's total and its siblings' cells, at any level
//! of a tree of areas, on hand-made tables, random trees and a run's own outputs. Each case first
//! shows that the attack does recover cells when only the primary rule is applied, so a pass
//! is not the attack failing to try.

use std::collections::BTreeMap;

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
    hidden_at_least: 1.0,
};
const NHS: Rule = Rule {
    suppress_max: 7.0,
    round_to: 5.0,
    hidden_at_least: 1.0,
};

/// The rules as the plugin applies them with a total printed elsewhere: a hidden cell may be a
/// zero (hidden when nothing else in its group could be).
const HES_WITH_HIDDEN_ZEROS: Rule = Rule {
    hidden_at_least: 0.0,
    ..HES
};
const NHS_WITH_HIDDEN_ZEROS: Rule = Rule {
    hidden_at_least: 0.0,
    ..NHS
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

/// One level's area cells as an attacker sees them: (measure, area, parent, true count, shown),
/// from a recipe run in this process (true counts are the standardisation stage's, before
/// disclosure; shown are the published `area_rates.observed`), with each measure's published
/// national `observed`.
struct LevelCells {
    rows: Vec<(String, String, String, f64, Shown)>,
    national: BTreeMap<String, Shown>,
}

fn level_cells(recipe: &str, scale: f64) -> LevelCells {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let prepared = strata::check(&configs.join(recipe)).expect("the recipe checks");
    let overrides = strata::pipeline::InputOverrides {
        scale: Some(scale),
        ..Default::default()
    };
    let results = strata::pipeline::run(&prepared, &overrides).expect("runs");
    let rates = results.rates.as_ref().expect("rates");
    let counts = &results.counts;
    let truth: std::collections::HashMap<(String, String), f64> = rates
        .areas
        .iter()
        .map(|r| {
            (
                (
                    counts.measures[r.measure].clone(),
                    counts.areas[r.area].code.clone(),
                ),
                r.observed,
            )
        })
        .collect();
    let table = |name: &str| {
        results
            .tables
            .iter()
            .find(|t| t.name == name)
            .expect("table")
    };
    let text = |v: &Value| match v {
        Value::Text(t) => t.clone(),
        other => panic!("not text: {other:?}"),
    };
    let areas = table("area_rates");
    let col = |name: &str| areas.columns.iter().position(|c| c == name).expect(name);
    let (measure, area, parent, observed) = (
        col("measure"),
        col("area_code"),
        col("parent_code"),
        col("observed"),
    );
    let rows = areas
        .rows
        .iter()
        .map(|r| {
            let (m, a) = (text(&r[measure]), text(&r[area]));
            let t = truth[&(m.clone(), a.clone())];
            (m, a, text(&r[parent]), t, shown(&r[observed], NHS))
        })
        .collect();
    let national = table("national_rates");
    let (m, o) = (
        national
            .columns
            .iter()
            .position(|c| c == "measure")
            .expect("measure"),
        national
            .columns
            .iter()
            .position(|c| c == "observed")
            .expect("observed"),
    );
    let national = national
        .rows
        .iter()
        .map(|r| (text(&r[m]), shown(&r[o], NHS)))
        .collect();
    LevelCells { rows, national }
}

/// A total as the parent level would print it under `rule` (0 shown, 1 to `suppress_max`
/// suppressed, others exact or rounded).
fn shown_total(total: f64, rule: Rule) -> Shown {
    if total == 0.0 {
        Shown::Exact(0.0)
    } else if total <= rule.suppress_max {
        Shown::Suppressed
    } else if rule.round_to == 1.0 {
        Shown::Exact(total)
    } else {
        Shown::Rounded((total / rule.round_to).round() * rule.round_to)
    }
}

/// The strongest differencing attacker: each parent's total per measure taken to be exactly
/// the sum of its children's true counts, printed under `rule` (stronger than the parent level's
/// own cell, which also holds records no child has), each measure's national total likewise, and
/// every child's published cell. Answers the suppressed count and the recovered cells.
fn attack_with_exact_parent_sums(
    rows: &[(String, String, String, f64, Shown)],
    rule: Rule,
) -> (usize, Vec<usize>) {
    let mut cells: Vec<Shown> = rows.iter().map(|r| r.4).collect();
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut national: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        groups
            .entry((r.0.clone(), r.2.clone()))
            .or_default()
            .push(i);
        national.entry(r.0.clone()).or_default().push(i);
    }
    let mut equations = Vec::new();
    for members in groups.values().chain(national.values()) {
        cells.push(shown_total(members.iter().map(|&m| rows[m].3).sum(), rule));
        equations.push(Equation {
            total: cells.len() - 1,
            members: members.clone(),
        });
    }
    let suppressed = rows.iter().filter(|r| r.4 == Shown::Suppressed).count();
    let got = recovered(&cells, rule, &equations)
        .expect("the published figures are consistent")
        .into_iter()
        .filter(|&c| c < rows.len())
        .collect();
    (suppressed, got)
}

fn names(rows: &[(String, String, String, f64, Shown)], cells: &[usize]) -> Vec<String> {
    cells
        .iter()
        .map(|&c| format!("{} {}", rows[c].1, rows[c].0))
        .collect()
}

/// `file`'s first two columns (a reference lookup of the repository).
fn reference_pairs(file: &str) -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/reference/2023-24")
        .join(file);
    csv::Reader::from_path(&path)
        .expect("reference file")
        .records()
        .map(|r| {
            let r = r.expect("row");
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

/// The controls' planted case: twelve areas of one test each under one parent (measure
/// "planted", parent "ZZZ"), each suppressed as the primary rule suppresses any 1. Their total,
/// 12, is printed 10 under NHS England's rule, so at most 12: all 1.
fn twelve_planted_ones() -> impl Iterator<Item = (String, String, String, f64, Shown)> {
    (1..=12).map(|i| {
        (
            "planted".to_string(),
            format!("P{i:02}"),
            "ZZZ".to_string(),
            1.0,
            Shown::Suppressed,
        )
    })
}

/// An equation whose printed `total` is its `members` plus an unpublished remainder of 0 or
/// more (what the parent holds that no member does, e.g. records attributed by LSOA).
fn push_with_remainder(
    cells: &mut Vec<Shown>,
    equations: &mut Vec<Equation>,
    mut members: Vec<usize>,
    total: Shown,
) {
    cells.push(Shown::Unpublished);
    members.push(cells.len() - 1);
    cells.push(total);
    equations.push(Equation {
        total: cells.len() - 1,
        members,
    });
}

/// The PCN recipe's published cells (NHS England's rule, secondary suppression within each
/// parent sub-ICB and measure) against differencing from what the sub-ICB recipe and the PCN
/// recipe's own national table publish: each sub-ICB's cell is the sum of the PCNs wholly
/// inside it plus what no such PCN holds (records attributed by LSOA, parts of PCNs that cross
/// its boundary: unpublished, 0 or more); each measure's national cell is the sum of every PCN.
/// No suppressed PCN cell of 1 or more comes back (a zero hidden with them may: zeros are
/// printed under the rule, e.g. a sub-ICB printed 0 shows its PCNs are 0, while the one test of
/// a PCN it shares with another sub-ICB stays hidden). Nor against the strongest attacker, who knows each
/// sub-ICB's PCNs sum exactly and sees it printed under the rule; the same true counts under the
/// primary rule alone (the plugin without its groups) are attacked, so a pass is not the attack
/// failing to try. (Before the plugin hid a zero where nothing else could go, this recovered 29
/// PCN cells at this scale: e.g. twelve PCNs of one PET scan each, all other PCNs of the sub-ICB
/// 0, whose total 12 is printed 10, so at most 12: all 1.)
#[test]
fn pcn_cells_resist_differencing_from_their_sub_icb() {
    let scale = 0.002;
    let pcn = level_cells("did-2023-24-pcn.toml", scale);
    let sub = level_cells("did-2023-24-sub-icb.toml", scale);
    assert_eq!(pcn.rows.len(), 1299 * 14);
    // PCNs wholly inside one sub-ICB (their practices' sub-ICBs).
    let sub_of_practice: BTreeMap<String, String> = reference_pairs("sicbl/practice_area.csv")
        .into_iter()
        .collect();
    let mut pcn_subs: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (practice, pcn_code) in reference_pairs("pcn/practice_area.csv") {
        pcn_subs
            .entry(pcn_code)
            .or_default()
            .insert(sub_of_practice[&practice].clone());
    }
    let mut cells: Vec<Shown> = pcn.rows.iter().map(|r| r.4).collect();
    let mut equations = Vec::new();
    for (measure, area, _, _, total) in &sub.rows {
        let members: Vec<usize> = (0..pcn.rows.len())
            .filter(|&c| {
                let r = &pcn.rows[c];
                r.0 == *measure && pcn_subs[&r.1].len() == 1 && pcn_subs[&r.1].contains(area)
            })
            .collect();
        push_with_remainder(&mut cells, &mut equations, members, *total);
    }
    for (measure, total) in &pcn.national {
        cells.push(*total);
        equations.push(Equation {
            total: cells.len() - 1,
            members: (0..pcn.rows.len())
                .filter(|&c| pcn.rows[c].0 == *measure)
                .collect(),
        });
    }
    assert_eq!(equations.len(), 106 * 14 + 14);
    let suppressed = pcn.rows.iter().filter(|r| r.4 == Shown::Suppressed).count();
    assert!(
        suppressed > 1000,
        "{suppressed}: small counts are the normal case at PCN level"
    );
    let got: Vec<usize> = recovered(&cells, NHS_WITH_HIDDEN_ZEROS, &equations)
        .expect("the published figures are consistent")
        .into_iter()
        .filter(|&c| c < pcn.rows.len() && pcn.rows[c].3 > 0.0)
        .collect();
    assert_eq!(names(&pcn.rows, &got), Vec::<String>::new());

    // The strongest attacker. The primary rule alone on the same counts (HES's exact counts and
    // NHS England's rounding): cells come back.
    let with =
        |preset: &str, rule: Rule, groups: &str| protected_again(&pcn.rows, preset, groups, rule);
    let recipe_groups =
        "\ngroup_by = [\"measure\", \"parent_code\"]\ntotal_published_elsewhere = true";
    // Whether this scale's counts hold a cell the primary rule alone leaves open depends on the
    // synthetic year's draws, so the control also plants the case the NHS preset once failed
    // (twelve PCNs of one test each in a sub-ICB, its total 12 printed 10 and so at most 12: all
    // 1), suppressed as the primary rule suppresses any 1, and the attack must find it.
    for (preset, rule) in [("hes-pre-2018", HES), ("nhs-england-sub-national", NHS)] {
        let mut rows = with(preset, rule, "");
        let planted = rows.len();
        rows.extend(twelve_planted_ones());
        let (_, got) = attack_with_exact_parent_sums(&rows, rule);
        let from_data = got.iter().filter(|&&c| c < planted).count();
        eprintln!("{preset}: the primary rule alone gives up {from_data} cells of the run");
        assert_eq!(
            got.iter().filter(|&&c| c >= planted).count(),
            12,
            "{preset}: the primary rule alone is attacked"
        );
    }
    for (preset, rule, rows) in [
        (
            "hes-pre-2018",
            HES_WITH_HIDDEN_ZEROS,
            with("hes-pre-2018", HES, recipe_groups),
        ),
        (
            "nhs-england-sub-national",
            NHS_WITH_HIDDEN_ZEROS,
            pcn.rows.clone(),
        ),
    ] {
        let (_, got) = attack_with_exact_parent_sums(&rows, rule);
        let got: Vec<usize> = got.into_iter().filter(|&c| rows[c].3 > 0.0).collect();
        assert_eq!(names(&rows, &got), Vec::<String>::new(), "{preset}");
    }
}

/// Level rows' true counts protected again by the plugin with `preset` and `groups` (as the
/// recipes' area tables: measure, area, parent, count), shown as an attacker reads them under
/// `rule`.
fn protected_again(
    rows: &[(String, String, String, f64, Shown)],
    preset: &str,
    groups: &str,
    rule: Rule,
) -> Vec<(String, String, String, f64, Shown)> {
    let mut table = Table::new(
        "t",
        "test",
        &["measure", "area_code", "parent_code", "observed"],
    );
    for r in rows {
        table.rows.push(vec![
            Value::Text(r.0.clone()),
            Value::Text(r.1.clone()),
            Value::Text(r.2.clone()),
            Value::Number(r.3),
        ]);
    }
    disclosure(&format!("preset = \"{preset}\"{groups}"))
        .protect(&mut table, &["observed".into()])
        .expect("protects");
    rows.iter()
        .zip(&table.rows)
        .map(|(r, t)| {
            (
                r.0.clone(),
                r.1.clone(),
                r.2.clone(),
                r.3,
                shown(&t[3], rule),
            )
        })
        .collect()
}

/// The practice recipe's published cells (secondary suppression within each parent sub-ICB and
/// measure) against differencing from what the PCN recipe publishes: each PCN's cell per measure
/// is exactly the sum of its practices' (both levels attribute a record only through an English
/// practice, since neither level's LSOA map names an area, and a PCN-level area is a set of
/// whole practices, the "<sub-ICB>-NOPCN" areas included, so the equation has no unpublished
/// remainder; checked below on the true counts), with each measure's national cell the sum of
/// every practice; and then with the sub-ICB recipe's cells as well (each the sum of its
/// practices plus what it gets by LSOA, unpublished). No suppressed practice cell of 1 or more
/// may come back (at this scale, 31,551 are suppressed). Controls, so a pass is
/// not the attack failing to try: under the primary rule alone a planted PCN of twelve practices
/// of one test each (PCN 12, printed 10: at most 12, so all 1) comes back; and with exact counts
/// (the HES preset at both levels, grouped as the recipes group) the same equations recover
/// practice cells the sub-ICB groups leave open, e.g. a PCN of one practice whose count was hidden
/// only as its sub-ICB's complement. Under NHS England's rule the PCN's printed cell leaves such a
/// count 5 values to choose from.
#[test]
fn practice_cells_resist_differencing_from_their_pcn() {
    let scale = 0.002;
    let practice = level_cells("did-2023-24-practice.toml", scale);
    let pcn = level_cells("did-2023-24-pcn.toml", scale);
    let sub = level_cells("did-2023-24-sub-icb.toml", scale);
    assert_eq!(practice.rows.len(), 6445 * 14);
    assert_eq!(pcn.rows.len(), 1299 * 14);
    let pcn_of: BTreeMap<String, String> = reference_pairs("pcn/practice_area.csv")
        .into_iter()
        .collect();
    // (measure, PCN) → the practice rows inside it.
    let mut inside: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in practice.rows.iter().enumerate() {
        inside
            .entry((r.0.clone(), pcn_of[&r.1].clone()))
            .or_default()
            .push(i);
    }
    for (measure, area, _, truth, _) in &pcn.rows {
        let sum: f64 = inside[&(measure.clone(), area.clone())]
            .iter()
            .map(|&m| practice.rows[m].3)
            .sum();
        assert_eq!(
            sum, *truth,
            "{area} {measure}: a PCN holds its practices' records"
        );
    }
    // The practice cells `rows`, the PCN cells `pcns` (in `pcn.rows`' order), the sub-ICB cells
    // `subs` (in `sub.rows`' order, or none) and the national cells: the suppressed practice
    // cells of 1 or more that come back.
    let attack = |rows: &[(String, String, String, f64, Shown)],
                  pcns: &[Shown],
                  subs: &[Shown],
                  rule: Rule| {
        let mut cells: Vec<Shown> = rows.iter().map(|r| r.4).collect();
        let mut equations = Vec::new();
        // A sub-ICB's cell also holds the records it gets by LSOA, which no practice has: an
        // unpublished remainder.
        for ((measure, area, ..), total) in sub.rows.iter().zip(subs) {
            let members: Vec<usize> = (0..rows.len())
                .filter(|&c| rows[c].0 == *measure && rows[c].2 == *area)
                .collect();
            assert!(!members.is_empty(), "{area}: a sub-ICB of practices");
            push_with_remainder(&mut cells, &mut equations, members, *total);
        }
        for ((measure, area, ..), total) in pcn.rows.iter().zip(pcns) {
            cells.push(*total);
            equations.push(Equation {
                total: cells.len() - 1,
                members: inside[&(measure.clone(), area.clone())].clone(),
            });
        }
        // Planted rows (measure "planted") form one PCN of their own.
        let planted: Vec<usize> = (0..rows.len())
            .filter(|&c| rows[c].0 == "planted")
            .collect();
        if !planted.is_empty() {
            cells.push(shown_total(planted.iter().map(|&c| rows[c].3).sum(), rule));
            equations.push(Equation {
                total: cells.len() - 1,
                members: planted,
            });
        }
        for (measure, total) in &practice.national {
            cells.push(shown_total(
                rows.iter().filter(|r| r.0 == *measure).map(|r| r.3).sum(),
                rule,
            ));
            assert!(
                rule.round_to == 1.0 || cells.last() == Some(total),
                "{measure}: the national cell is the practices' sum, printed"
            );
            equations.push(Equation {
                total: cells.len() - 1,
                members: (0..rows.len()).filter(|&c| rows[c].0 == *measure).collect(),
            });
        }
        recovered(&cells, rule, &equations)
            .expect("the published figures are consistent")
            .into_iter()
            .filter(|&c| c < rows.len() && rows[c].3 > 0.0)
            .collect::<Vec<usize>>()
    };
    let published_pcns: Vec<Shown> = pcn.rows.iter().map(|r| r.4).collect();
    let suppressed = practice
        .rows
        .iter()
        .filter(|r| r.4 == Shown::Suppressed)
        .count();
    eprintln!("practice level: {suppressed} cells suppressed");
    assert!(
        suppressed > 10_000,
        "{suppressed}: small counts are the normal case at practice level"
    );
    let got = attack(&practice.rows, &published_pcns, &[], NHS_WITH_HIDDEN_ZEROS);
    assert_eq!(names(&practice.rows, &got), Vec::<String>::new());
    // With the sub-ICB recipe's cells too (the totals the practice recipe's groups protect).
    let published_subs: Vec<Shown> = sub.rows.iter().map(|r| r.4).collect();
    let got = attack(
        &practice.rows,
        &published_pcns,
        &published_subs,
        NHS_WITH_HIDDEN_ZEROS,
    );
    eprintln!("with sub-ICB cells: {} recovered", got.len());
    assert_eq!(names(&practice.rows, &got), Vec::<String>::new());

    // Control: the primary rule alone at both levels (the plugin without groups, so no zero is
    // hidden) with a planted PCN of twelve ones.
    let mut rows = protected_again(&practice.rows, "nhs-england-sub-national", "", NHS);
    let planted = rows.len();
    rows.extend(twelve_planted_ones());
    let pcns: Vec<Shown> = protected_again(&pcn.rows, "nhs-england-sub-national", "", NHS)
        .into_iter()
        .map(|r| r.4)
        .collect();
    let got = attack(&rows, &pcns, &[], NHS);
    eprintln!(
        "primary rule alone: {} cells of the run recovered",
        got.iter().filter(|&&c| c < planted).count()
    );
    assert_eq!(got.iter().filter(|&&c| c >= planted).count(), 12);

    // Control: exact counts, each level grouped as its recipe groups.
    let groups = "\ngroup_by = [\"measure\", \"parent_code\"]\ntotal_published_elsewhere = true";
    let rows = protected_again(
        &practice.rows,
        "hes-pre-2018",
        groups,
        HES_WITH_HIDDEN_ZEROS,
    );
    let pcns: Vec<Shown> =
        protected_again(&pcn.rows, "hes-pre-2018", groups, HES_WITH_HIDDEN_ZEROS)
            .into_iter()
            .map(|r| r.4)
            .collect();
    let got = attack(&rows, &pcns, &[], HES_WITH_HIDDEN_ZEROS);
    eprintln!(
        "exact counts: {} practice cells recovered, e.g. {:?}",
        got.len(),
        names(&rows, &got[..got.len().min(3)])
    );
    assert!(
        !got.is_empty(),
        "exact counts leave practice cells open to their PCN"
    );
}
