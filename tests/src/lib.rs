//! Test support: a tiny, fully deterministic world (three areas, their practices and LSOAs, a
//! population and a few thousand records with the usual faults) written to a temporary folder,
//! and a recipe over it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const AREAS: [(&str, &str); 3] = [
    ("A01", "NHS Alpha ICB"),
    ("A02", "NHS Beta ICB"),
    ("A03", "NHS Gamma ICB"),
];

const AGE_BANDS: [&str; 19] = [
    "0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
    "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
];

/// Files of the tiny world.
pub struct World {
    pub dir: PathBuf,
    pub recipe: PathBuf,
}

/// Runs the `strata` command line in-process; returns (exit code, stdout, stderr).
pub fn strata(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("strata")
        .chain(args.iter().copied())
        .map(Into::into);
    let code = strata::cli::main_with(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

/// The stages block of the test recipe, with the ratio plugin chosen.
pub fn stages(ratio: &str) -> String {
    format!(
        r#"[stages.attribution]
plugin = "attribution.gp-practice-then-lsoa"

[stages.derivation]
plugin = "rules.did"

[stages.exclusions]
plugin = "exclusions.complete-case"

[stages.standardisation]
plugin = "standardise.indirect"

[stages.confidence_interval]
plugin = "ci.byar-exact"
params = {{ levels = [0.95, 0.998] }}

[stages.factors]
plugin = "factors.standardised-by-others"

[stages.ratio]
plugin = "{ratio}"

[stages.significance]
plugin = "significance.pearson-rates-per-10k"

[stages.summary]
plugin = "summary.dispersion"

[stages.data_quality]
plugin = "data_quality.annex-a"
params = {{ no_practice_tests = 10, incomplete_tests = 10, area_incomplete_tests = 10, missing_tests = 10 }}
"#
    )
}

/// Writes the world and a recipe (`recipe.toml`, ratio plugin `ratio`) into `dir`.
pub fn write_world(dir: &Path, ratio: &str) -> World {
    std::fs::create_dir_all(dir).expect("create world dir");
    let mut areas = String::from("area_code,area_name\n");
    for (code, name) in AREAS {
        writeln!(areas, "{code},{name}").ok();
    }
    write(&dir.join("areas.csv"), &areas);

    // Two practices and three LSOAs per area; LSOA deciles spread over 1..10.
    let mut practices = String::from("practice_code,area_code\n");
    let mut lsoas = String::from("lsoa11_code,area_code\n");
    let mut imd = String::from("lsoa11_code,imd_decile\n");
    for (a, (code, _)) in AREAS.iter().enumerate() {
        for p in 0..2 {
            writeln!(practices, "P{a}{p},{code}").ok();
        }
        for l in 0..3 {
            writeln!(lsoas, "L{a}{l},{code}").ok();
            writeln!(imd, "L{a}{l},{}", (a * 3 + l) % 10 + 1).ok();
        }
    }
    write(&dir.join("practices.csv"), &practices);
    write(&dir.join("lsoa.csv"), &lsoas);
    write(&dir.join("imd.csv"), &imd);
    write(&dir.join("non_english.csv"), "practice_code\nW0001\n");
    write(
        &dir.join("exam_codes.csv"),
        "exam_code,measure\nXCHES,chest_xray\nCCHES,chest_ct\nMBRAI,brain_mri\n",
    );
    write(
        &dir.join("providers.csv"),
        "provider_code,provider_name\nR01,Alpha Hospitals NHS Trust\nR02,Beta Hospitals NHS Trust\n",
    );

    // Population: every area × sex × band × quintile, deterministic sizes.
    let mut population = String::from("area_code,sex,age_band,imd_quintile,population\n");
    for (a, (code, _)) in AREAS.iter().enumerate() {
        for sex in ["1", "2"] {
            for (b, band) in AGE_BANDS.iter().enumerate() {
                for q in 1..=5 {
                    let n = 40 + 3 * b + 7 * q + 11 * a + if sex == "2" { 5 } else { 0 };
                    writeln!(population, "{code},{sex},{band},{q},{n}").ok();
                }
            }
        }
    }
    write(&dir.join("population.csv"), &population);

    // Activity: one row per examination.
    let mut activity = String::from(
        "provider_code,site_code,test_date,gp_practice_code,lsoa11,sex,age,modality,exam_code,patient_source\n",
    );
    let modalities = [
        ("xray", "XCHES"),
        ("xray", "XKNEE"),
        ("ct", "CCHES"),
        ("ultrasound", "UABDO"),
        ("mri", "MBRAI"),
    ];
    let ages = [3, 17, 30, 47, 52, 58, 63, 70, 78, 86, 95];
    let mut row = 0usize;
    for a in 0..3 {
        for l in 0..3 {
            for (s, sex) in ["1", "2"].iter().enumerate() {
                for (k, age) in ages.iter().enumerate() {
                    for (m, (modality, exam)) in modalities.iter().enumerate() {
                        let n = 1 + (a + 2 * l + 3 * s + k + 2 * m) % 4 + k / 3;
                        for i in 0..n {
                            row += 1;
                            let provider = if a == 2 { "R02" } else { "R01" };
                            let month = (row % 12) as u32;
                            let (year, mon) = if month < 9 {
                                (2023, month + 4)
                            } else {
                                (2024, month - 8)
                            };
                            let day = 1 + (row % 28);
                            // Faults: some missing practices (LSOA route), a non-English practice,
                            // unknown sex, missing LSOA.
                            let practice = match row % 17 {
                                0 => String::new(),
                                5 => "W0001".to_string(),
                                _ => format!("P{a}{}", (l + i) % 2),
                            };
                            let sex = if row.is_multiple_of(29) { "9" } else { sex };
                            let lsoa = if row.is_multiple_of(31) {
                                String::new()
                            } else {
                                format!("L{a}{l}")
                            };
                            writeln!(
                                activity,
                                "{provider},S1,{year}-{mon:02}-{day:02},{practice},{lsoa},{sex},{age},{modality},{exam},01"
                            )
                            .ok();
                        }
                    }
                }
            }
        }
    }
    write(&dir.join("activity.csv"), &activity);

    let recipe = dir.join("recipe.toml");
    write(
        &recipe,
        &format!(
            r#"schema = 1
name = "Test world"
year = "2023/24"
area_kind = "ICB"
year_start = "2023-04-01"

[inputs]
activity = "activity.csv"
population = "population.csv"
areas = "areas.csv"
practices = "practices.csv"
non_english_practices = "non_english.csv"
lsoa = "lsoa.csv"
imd = "imd.csv"
exam_codes = "exam_codes.csv"
providers = "providers.csv"

{}
[outputs]
dir = "out"
stratum_counts = true
"#,
            stages(ratio)
        ),
    );
    World {
        dir: dir.to_path_buf(),
        recipe,
    }
}

/// `configs/example.toml`: the example recipe (3 areas, ~3,800 records under `data/example/`).
pub fn example_recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/example.toml")
}

/// The production record-level reader (the whole run of the example recipe) on `activity`, with
/// `threads` workers.
pub fn run_example(
    activity: &Path,
    threads: usize,
) -> strata::error::Result<strata::pipeline::RunResults> {
    let prepared = strata::check(&example_recipe()).expect("the example recipe checks");
    let overrides = strata::pipeline::InputOverrides {
        activity: Some(activity.to_path_buf()),
        threads: Some(threads),
        ..Default::default()
    };
    strata::pipeline::run(&prepared, &overrides)
}

/// Every output table of a run, named and rendered as the CLI writes it.
pub fn rendered_tables(results: &strata::pipeline::RunResults) -> Vec<(String, Vec<u8>)> {
    strata::output::RunFiles::from_results(results, 6)
        .expect("render")
        .0
        .files
}

/// Where two runs' rendered tables differ: the first table that is missing or not the same bytes,
/// with its first differing line; `None` when every table is the same.
pub fn table_difference(got: &[(String, Vec<u8>)], want: &[(String, Vec<u8>)]) -> Option<String> {
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(got) != names(want) {
        return Some(format!(
            "tables {:?}, expected {:?}",
            names(got),
            names(want)
        ));
    }
    let (name, bytes, expected) = got
        .iter()
        .zip(want)
        .find(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| (name, a, b))?;
    let got = String::from_utf8_lossy(bytes);
    let want = String::from_utf8_lossy(expected);
    let line = got
        .lines()
        .zip(want.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("\n  line {}\n  got:  {a}\n  want: {b}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "\n  {} lines, expected {}",
                got.lines().count(),
                want.lines().count()
            )
        });
    Some(format!("{name} differs{line}"))
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("strata-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// Builds a fixture plugin crate under `tests/fixtures/<name>` (its own target folder, so the
/// build does not wait on the workspace's) and copies its library `<library>` into `into`.
pub fn build_fixture(name: &str, library: &str, into: &Path) -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = manifest_dir.join("fixtures").join(name);
    let target = manifest_dir.join("../target/fixtures").join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building fixture {name} failed");
    let file = format!(
        "{}{library}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    );
    std::fs::create_dir_all(into).expect("create plugin folder");
    let dest = into.join(&file);
    std::fs::copy(target.join("debug").join(&file), &dest).expect("copy built library");
    dest
}

pub mod attack;
