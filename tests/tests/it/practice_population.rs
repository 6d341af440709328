//! NHS Digital's *Patients Registered at a GP Practice* five-year-age file
//! (`gp-reg-pat-prac-quin-age.csv`) as a level's population (`--practice-population`), on files
//! written here by hand in the published layout (PUBLICATION, EXTRACT_DATE, TYPE,
//! SUB_ICB_LOCATION_CODE, ONS_SUB_ICB_LOCATION_CODE, ORG_CODE, POSTCODE, SEX, AGE_GROUP_5,
//! NUMBER_OF_PATIENTS; totals rows of SEX or AGE_GROUP_5 = ALL among them), in another column
//! order and letter case, with a byte-order mark and CRLF line ends, against hand-worked
//! populations and against the same world run on a SPEC §3 population written from the
//! hand-worked formula; its refusals name the file, row, column, rule and value; and one run of
//! the practice recipe on a file of every practice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use strata_tests::{strata, temp_dir, write_world};

/// The published file's five-year groups, in order (index g).
fn groups() -> Vec<String> {
    let mut g: Vec<String> = (0..19)
        .map(|k| format!("{}_{}", 5 * k, 5 * k + 4))
        .collect();
    g.push("95+".into());
    g
}

/// The derivation's band of group g: 0-4 … 85-89, and 90+ for 90_94 and 95+.
fn band(g: usize) -> String {
    if g >= 18 {
        "90+".into()
    } else {
        format!("{}-{}", 5 * g, 5 * g + 4)
    }
}

/// The test world's practices: P{a}{p} in area A0{a+1}; P00, P01, P10 take the IMD mix of M1,
/// P11, P20, P21 that of M2.
const PRACTICES: [(&str, usize, usize, &str); 6] = [
    ("P00", 0, 0, "M1"),
    ("P01", 0, 1, "M1"),
    ("P10", 1, 0, "M1"),
    ("P11", 1, 1, "M2"),
    ("P20", 2, 0, "M2"),
    ("P21", 2, 1, "M2"),
];

/// Patients of practice (a, p) of sex s (0 male, 1 female) in group g: multiples of 15, so every
/// share of the mixes below is a whole number.
fn patients(a: usize, p: usize, s: usize, g: usize) -> u64 {
    15 * (1 + a + p + g % 3 + s) as u64
}

/// Each mix area's weight of quintile q (1..5) out of 15, the same in every age band.
fn weight(mix: &str, q: usize) -> u64 {
    match mix {
        "M1" => q as u64,
        _ => 6 - q as u64,
    }
}

/// The published layout, CRLF and a byte-order mark, columns as NHS Digital orders them; totals
/// rows (SEX = ALL per group, and ALL × ALL per practice) among the rows; `extra` rows appended.
fn quin_age_file(extra: &str) -> String {
    let mut f = String::from(
        "\u{feff}PUBLICATION,EXTRACT_DATE,TYPE,SUB_ICB_LOCATION_CODE,ONS_SUB_ICB_LOCATION_CODE,ORG_CODE,POSTCODE,SEX,AGE_GROUP_5,NUMBER_OF_PATIENTS\r\n",
    );
    for (code, a, p, _) in PRACTICES {
        let mut all = 0;
        for (g, group) in groups().iter().enumerate() {
            let (m, w) = (patients(a, p, 0, g), patients(a, p, 1, g));
            all += m + w;
            for (sex, n) in [("MALE", m), ("FEMALE", w), ("ALL", m + w)] {
                write!(
                    f,
                    "GP_PRAC_PAT_LIST,01APR2023,GP,0{a}X,E3800000{a},{code},\"AB{a} {p}CD\",{sex},{group},{n}\r\n"
                )
                .ok();
            }
        }
        write!(
            f,
            "GP_PRAC_PAT_LIST,01APR2023,GP,0{a}X,E3800000{a},{code},\"AB{a} {p}CD\",ALL,ALL,{all}\r\n"
        )
        .ok();
    }
    f.push_str(extra);
    f
}

/// The IMD mix (every band, both mixes) and each practice's mix area.
fn write_mix(dir: &Path) {
    let mut mix = String::from("area_code,age_band,imd_quintile,population\n");
    for area in ["M1", "M2"] {
        for g in 0..19 {
            for q in 1..=5 {
                writeln!(mix, "{area},{},{q},{}", band(g), 100 * weight(area, q)).ok();
            }
        }
    }
    std::fs::write(dir.join("mix.csv"), mix).expect("write");
    let mut areas = String::from("practice_code,sicbl_code,area_code\n");
    for (code, _, _, m) in PRACTICES {
        writeln!(areas, "{code},S{code},{m}").ok();
    }
    std::fs::write(dir.join("mix_areas.csv"), areas).expect("write");
}

/// The world's recipe reading its population from the practice file; answers the folder.
fn world(name: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = temp_dir(name);
    let world = write_world(&tmp.path().join("world"), "ratio.rate");
    write_mix(&world.dir);
    let recipe = std::fs::read_to_string(&world.recipe).expect("recipe");
    let recipe = recipe.replace(
        "population = \"population.csv\"\n",
        "practice_imd_mix = \"mix.csv\"\npractice_imd_areas = \"mix_areas.csv\"\n",
    );
    let practice_recipe = world.dir.join("practice-recipe.toml");
    std::fs::write(&practice_recipe, recipe).expect("write");
    (tmp, world.dir, practice_recipe)
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("csv");
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

fn run(recipe: &Path, out: &Path, extra: &[&str]) -> (u8, String, String) {
    let mut args = vec![
        "run",
        recipe.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    strata(&args)
}

#[test]
fn the_published_layout_gives_the_hand_worked_population_and_rates() {
    let (_tmp, dir, recipe) = world("practice-population");
    let file = dir.join("gp-reg-pat-prac-quin-age.csv");
    std::fs::write(&file, quin_age_file("")).expect("write");
    let out = dir.join("out");
    let (code, _, err) = run(
        &recipe,
        &out,
        &["--practice-population", file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");

    // Hand-worked (see `patients` and `weight`). A01 = P00 + P01, both of mix M1 (q/15):
    // 0-4 male 15 + 30 = 45, quintile 3 has 3/15 of it = 9; female 30 + 45 = 75, quintile 3: 15;
    // 90+ male (90_94 and 95+) P00 15 + 30, P01 30 + 45 = 120: quintile 5 40, quintile 1 8.
    // A02 = P10 (M1) + P11 (M2, (6 - q)/15): 0-4 male 30 + 45 → quintile 1: 30/15 + 45·5/15 = 17.
    let population: BTreeMap<(String, String, String, String), f64> =
        read_csv(&out.join("stratum_population.csv"))
            .into_iter()
            .map(|r| {
                (
                    (
                        r["area_code"].clone(),
                        r["sex"].clone(),
                        r["age_band"].clone(),
                        r["imd_quintile"].clone(),
                    ),
                    r["population"].parse().expect("number"),
                )
            })
            .collect();
    let cell = |a: &str, s: &str, b: &str, q: &str| {
        population[&(a.to_string(), s.to_string(), b.to_string(), q.to_string())]
    };
    assert_eq!(cell("A01", "1", "0-4", "3"), 9.0);
    assert_eq!(cell("A01", "2", "0-4", "3"), 15.0);
    assert_eq!(cell("A01", "1", "90+", "5"), 40.0);
    assert_eq!(cell("A01", "1", "90+", "1"), 8.0);
    assert_eq!(cell("A02", "1", "0-4", "1"), 17.0);
    // Area totals: Σ over p, s and 20 groups of 15(1 + a + p + g mod 3 + s) = 15(20 Σ(1+a+p+s)
    // + 4 · 19) (g mod 3 sums to 19 over the 20 groups): 3,540, 4,740 and 5,940.
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    for ((a, ..), n) in &population {
        *totals.entry(a.clone()).or_default() += n;
    }
    assert_eq!(
        totals.into_iter().collect::<Vec<_>>(),
        [
            ("A01".to_string(), 3540.0),
            ("A02".to_string(), 4740.0),
            ("A03".to_string(), 5940.0)
        ]
    );
    // Each area's crude rate is its observed tests over that population, per 10,000.
    for r in read_csv(&out.join("area_rates.csv")) {
        let pop: f64 = r["population"].parse().expect("number");
        let observed: f64 = r["observed"].parse().expect("number");
        let crude: f64 = r["crude_rate"].parse().expect("number");
        let want = [3540.0, 4740.0, 5940.0][["A01", "A02", "A03"]
            .iter()
            .position(|a| *a == r["area_code"])
            .expect("area")];
        assert_eq!(pop, want, "{r:?}");
        assert!((crude - observed / want * 10_000.0).abs() < 1e-5, "{r:?}");
    }

    // The same world on a SPEC §3 population written from the hand formula: every table equal.
    let mut spec = String::from("area_code,sex,age_band,imd_quintile,population\n");
    let mut cells: BTreeMap<(String, usize, String, usize), u64> = BTreeMap::new();
    for (_, a, p, mix) in PRACTICES {
        for s in 0..2 {
            for g in 0..20 {
                for q in 1..=5 {
                    *cells
                        .entry((format!("A0{}", a + 1), s + 1, band(g), q))
                        .or_default() += patients(a, p, s, g) * weight(mix, q) / 15;
                }
            }
        }
    }
    for ((a, s, b, q), n) in &cells {
        writeln!(spec, "{a},{s},{b},{q},{n}").ok();
    }
    std::fs::write(dir.join("spec_population.csv"), spec).expect("write");
    let spec_out = dir.join("out-spec");
    let (code, _, err) = run(
        &dir.join("recipe.toml"),
        &spec_out,
        &[
            "--population",
            dir.join("spec_population.csv").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    for table in [
        "area_rates.csv",
        "national_rates.csv",
        "factor_ratios.csv",
        "stratum_population.csv",
    ] {
        assert_eq!(
            std::fs::read_to_string(out.join(table)).expect("table"),
            std::fs::read_to_string(spec_out.join(table)).expect("table"),
            "{table}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    // The file is an input of the run: its checksum and rows (6 × (20 × 3 + 1)).
    assert_eq!(manifest["inputs"]["practice_population"]["rows"], 366);
    assert!(manifest["inputs"].get("population").is_none());
    assert!(
        !manifest["warnings"].to_string().contains("practice map"),
        "{}",
        manifest["warnings"]
    );
}

#[test]
fn column_order_and_case_are_free() {
    let (_tmp, dir, recipe) = world("practice-population-order");
    // The published file with its columns reversed and lower-cased, LF line ends, no BOM.
    let text = quin_age_file("");
    let mut shuffled = String::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let mut fields: Vec<String> = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        for f in reader
            .records()
            .next()
            .expect("line")
            .expect("fields")
            .iter()
        {
            fields.push(if i == 0 {
                f.to_lowercase()
            } else if f.contains(' ') {
                format!("\"{f}\"")
            } else {
                f.to_string()
            });
        }
        fields.reverse();
        shuffled.push_str(&fields.join(","));
        shuffled.push('\n');
    }
    let file = dir.join("reordered.csv");
    std::fs::write(&file, shuffled).expect("write");
    let out = dir.join("out");
    let (code, _, err) = run(
        &recipe,
        &out,
        &["--practice-population", file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");
    let original = dir.join("original.csv");
    std::fs::write(&original, quin_age_file("")).expect("write");
    let out2 = dir.join("out2");
    let (code, _, err) = run(
        &recipe,
        &out2,
        &["--practice-population", original.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");
    for table in ["area_rates.csv", "stratum_population.csv"] {
        assert_eq!(
            std::fs::read_to_string(out.join(table)).expect("table"),
            std::fs::read_to_string(out2.join(table)).expect("table"),
            "{table}"
        );
    }
}

#[test]
fn a_practice_outside_the_level_is_counted_and_reported() {
    let (_tmp, dir, recipe) = world("practice-population-unmapped");
    let file = dir.join("quin.csv");
    std::fs::write(
        &file,
        quin_age_file(
            "GP_PRAC_PAT_LIST,01APR2023,GP,99X,E38000099,Q99999,\"ZZ9 9ZZ\",MALE,40_44,120\r\n\
             GP_PRAC_PAT_LIST,01APR2023,GP,99X,E38000099,Q99999,\"ZZ9 9ZZ\",FEMALE,40_44,130\r\n",
        ),
    )
    .expect("write");
    let out = dir.join("out");
    let (code, _, err) = run(
        &recipe,
        &out,
        &["--practice-population", file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 practices of the file are not in the recipe's practice map")
            && err.contains("250 patients")
            && err.contains("Q99999"),
        "{err}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    let warnings = manifest["warnings"].to_string();
    assert!(
        warnings.contains("1 practices of the file are not in the recipe's practice map"),
        "{warnings}"
    );
    // Its patients are in no area: the areas' totals are the hand-worked ones.
    let total: f64 = read_csv(&out.join("stratum_population.csv"))
        .iter()
        .map(|r| r["population"].parse::<f64>().expect("number"))
        .sum();
    assert_eq!(total, 3540.0 + 4740.0 + 5940.0);
}

#[test]
fn bad_rows_are_refused_naming_file_row_column_rule_and_value() {
    let (_tmp, dir, recipe) = world("practice-population-bad");
    // Data rows: 6 practices × (20 groups × 3 sexes + 1) = 366, so an appended row is row 367.
    let row = 6 * (20 * 3 + 1) + 1;
    let line = |sex: &str, age: &str, n: &str| {
        format!("GP_PRAC_PAT_LIST,01APR2023,GP,00X,E38000000,P00,\"AB0 0CD\",{sex},{age},{n}\r\n")
    };
    let cases: Vec<(String, String, &str, &str)> = vec![
        (
            quin_age_file(&line("MALE", "100_104", "3").replace("P00", "P01")),
            "100_104".into(),
            "AGE_GROUP_5",
            "unknown AGE_GROUP_5",
        ),
        (
            quin_age_file("").replace(",MALE,40_44,", ",MALE,40-44,"),
            "40-44".into(),
            "AGE_GROUP_5",
            "unknown AGE_GROUP_5",
        ),
        (
            quin_age_file("").replacen(",MALE,0_4,15\r\n", ",MALE,0_4,-15\r\n", 1),
            "-15".into(),
            "NUMBER_OF_PATIENTS",
            "is negative",
        ),
        (
            quin_age_file("").replacen(",MALE,0_4,15\r\n", ",UNKNOWN,0_4,15\r\n", 1),
            "UNKNOWN".into(),
            "SEX",
            "unknown SEX",
        ),
        (
            quin_age_file("").replacen(",GP,", ",ICB,", 1),
            "ICB".into(),
            "TYPE",
            "not a GP practice row",
        ),
        (
            quin_age_file(&line("MALE", "0_4", "15")),
            "P00".into(),
            "ORG_CODE",
            "duplicate key",
        ),
        (
            quin_age_file("").replacen(",ALL,ALL,", ",ALL,ALL,9", 1),
            "P00".into(),
            "NUMBER_OF_PATIENTS",
            "its sex × age group rows sum to",
        ),
        (
            quin_age_file("").replace("NUMBER_OF_PATIENTS", "PATIENTS"),
            String::new(),
            "NUMBER_OF_PATIENTS",
            "required column missing",
        ),
    ];
    for (i, (text, value, column, rule)) in cases.into_iter().enumerate() {
        let file = dir.join(format!("bad-{i}.csv"));
        std::fs::write(&file, text).expect("write");
        let out = dir.join(format!("out-{i}"));
        let (code, _, err) = run(
            &recipe,
            &out,
            &["--practice-population", file.to_str().expect("utf-8")],
        );
        assert_ne!(code, 0, "case {i} ran");
        assert!(
            err.contains(&format!("bad-{i}.csv"))
                && err.contains(&format!("column `{column}`"))
                && err.contains(rule)
                && err.contains(&value),
            "case {i}: {err}"
        );
        if i == 0 || i == 5 {
            assert!(err.contains(&format!("row {row} ")), "case {i}: {err}");
        }
    }
}

/// The practice recipe end to end on a practice file of every one of its 6,445 practices (each
/// practice's Jan 2021 list size shared over sex × group by a fixed shape, in the published
/// layout), with the synthetic year's records at a small scale: every practice's population is
/// its file's, and England's is the file's total.
#[test]
fn the_practice_recipe_runs_on_a_practice_file() {
    let tmp = temp_dir("practice-population-recipe");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut reader = csv::Reader::from_path(root.join("data/reference/2023-24/practice_area.csv"))
        .expect("practices");
    let mut file = String::from(
        "PUBLICATION,EXTRACT_DATE,TYPE,SUB_ICB_LOCATION_CODE,ONS_SUB_ICB_LOCATION_CODE,ORG_CODE,POSTCODE,SEX,AGE_GROUP_5,NUMBER_OF_PATIENTS\n",
    );
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for r in reader.records() {
        let r = r.expect("row");
        // A practice without a Jan 2021 list size gets 1,000 patients here.
        let size: u64 = r[3].parse().unwrap_or(1000);
        let mut sum = 0;
        for (g, group) in groups().iter().enumerate() {
            for (s, sex) in ["MALE", "FEMALE"].iter().enumerate() {
                // A fixed shape (174/200 of the list over the cells), the rest in 95+ female.
                let share = size * (1 + (g % 7) as u64 + s as u64) / 200;
                let n = if g == 19 && s == 1 { size - sum } else { share };
                sum += n;
                writeln!(
                    file,
                    "GP_PRAC_PAT_LIST,01APR2023,GP,{},,{},,{sex},{group},{n}",
                    &r[1], &r[0]
                )
                .ok();
            }
        }
        assert_eq!(sum, size);
        expected.insert(r[0].to_string(), size);
    }
    let path = tmp.path().join("gp-reg-pat-prac-quin-age.csv");
    std::fs::write(&path, file).expect("write");
    let prepared = strata::check(&root.join("configs/did-2023-24-practice.toml")).expect("checks");
    let overrides = strata::pipeline::InputOverrides {
        scale: Some(0.001),
        practice_population: Some(path),
        ..Default::default()
    };
    let results = strata::pipeline::run(&prepared, &overrides).expect("runs");
    assert_eq!(results.input_rows["practice_population_practices"], 6445);
    assert_eq!(
        results.input_rows["practice_population_unmapped_practices"],
        0
    );
    let counts = &results.counts;
    let mut england = 0.0;
    for (a, area) in counts.areas.iter().enumerate() {
        let population: f64 = counts.population_of(a).iter().sum();
        let want = expected[&area.code] as f64;
        assert!(
            (population - want).abs() < 1e-6 * want,
            "{}: {population} against {want}",
            area.code
        );
        england += population;
    }
    let total: u64 = expected.values().sum();
    assert!(
        (england - total as f64).abs() < 1e-3,
        "{england} against {total}"
    );
    let rates = results.rates.as_ref().expect("rates");
    for n in &rates.national {
        assert!((n.population - total as f64).abs() < 1e-3);
    }
}
