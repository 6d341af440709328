//! Same inputs, same output bytes: with one or two reader threads and across runs,
//! every output file hashes the same (the manifest without its timings), and the recipe
//! fingerprint is stable.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use strata_tests::{temp_dir, write_world};

/// SHA-256 of every output file; `manifest.json` is hashed without its stage timings
/// and memory figures (measurements, not results).
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read output folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for (inner, digest) in hashes(&path) {
                out.insert(format!("{name}/{inner}"), digest);
            }
            continue;
        }
        let mut bytes = std::fs::read(&path).expect("read output");
        if name == "manifest.json" {
            let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for stage in manifest["stages"].as_array_mut().expect("stages") {
                let record = stage.as_object_mut().expect("stage record");
                for measurement in ["seconds", "cpu_seconds", "peak_rss_mib"] {
                    record.remove(measurement);
                }
            }
            bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        }
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.insert(name, digest);
    }
    out
}

/// Runs the real binary in its own process with `--threads`.
fn run_with_threads(recipe: &Path, out: &Path, threads: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_strata-under-test"))
        .arg("run")
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .arg("--threads")
        .arg(threads)
        .output()
        .expect("run strata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn same_inputs_give_the_same_bytes_with_one_or_two_threads_and_across_runs() {
    let tmp = temp_dir("determinism");
    let world = write_world(tmp.path(), "ratio.rate");
    let runs = [("1", "out-1"), ("2", "out-2"), ("2", "out-2-again")];
    let mut all = Vec::new();
    for (threads, dir) in runs {
        let out = world.dir.join(dir);
        run_with_threads(&world.recipe, &out, threads);
        all.push((threads, dir, hashes(&out)));
    }
    let (_, _, first) = &all[0];
    assert!(first.len() >= 6, "{first:?}");
    for (threads, dir, h) in &all[1..] {
        assert_eq!(
            h, first,
            "{dir} ({threads} threads) differs from out-1 (1 thread)"
        );
    }
}

#[test]
fn the_fingerprint_is_the_same_wherever_the_recipe_lives_and_however_it_is_laid_out() {
    let tmp = temp_dir("fingerprint");
    let a = write_world(&tmp.path().join("a"), "ratio.rate");
    let b = write_world(&tmp.path().join("elsewhere/b"), "ratio.rate");
    // Same meaning, different layout: a comment and blank lines.
    let text = std::fs::read_to_string(&b.recipe).unwrap();
    std::fs::write(
        &b.recipe,
        format!("# a comment\n\n{}", text.replace("\n[", "\n\n[")),
    )
    .unwrap();
    let fingerprint = |recipe: &Path| {
        strata::check(recipe)
            .map(|p| p.recipe.fingerprint())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(fingerprint(&a.recipe), fingerprint(&b.recipe));
    assert_eq!(fingerprint(&a.recipe), fingerprint(&a.recipe));

    // A different method is a different recipe.
    let c = write_world(&tmp.path().join("c"), "ratio.odds");
    assert_ne!(fingerprint(&a.recipe), fingerprint(&c.recipe));
}

/// The input mapping is part of what a recipe means: its file's entries are in the fingerprint,
/// the recipe's own entries override the file's, and it maps only record-level extracts.
#[test]
fn the_fingerprint_covers_the_input_mapping_and_the_recipe_overrides_its_file() {
    let tmp = temp_dir("fingerprint-mapping");
    let world = write_world(tmp.path(), "ratio.rate");
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    let with_mapping = |mapping: &str| {
        let edited = text.replacen(
            "providers = \"providers.csv\"",
            &format!("providers = \"providers.csv\"\nmapping = {mapping}"),
            1,
        );
        std::fs::write(&world.recipe, edited).unwrap();
        strata::check(&world.recipe).map(|p| p.recipe)
    };
    let file = world.dir.join("local.toml");
    let write_file = |nine: &str| {
        let mapping = format!(
            "schema = 1\nname = \"local\"\nversion = \"1\"\n[values.sex.map]\n\"9\" = \"{nine}\"\n"
        );
        std::fs::write(&file, mapping).unwrap();
    };
    let plain = strata::check(&world.recipe).unwrap().recipe.fingerprint();

    write_file("0");
    let first = with_mapping("{ file = \"local.toml\" }").unwrap();
    write_file("X");
    let second = with_mapping("{ file = \"local.toml\" }").unwrap();
    assert_ne!(
        first.fingerprint(),
        plain,
        "a mapping changes the fingerprint"
    );
    assert_ne!(
        first.fingerprint(),
        second.fingerprint(),
        "so does a change inside the mapping file"
    );

    let overridden =
        with_mapping("{ file = \"local.toml\", values = { sex = { map = { \"9\" = \"1\" } } } }")
            .unwrap();
    assert_eq!(overridden.inputs.mapping.values["sex"].map["9"], "1");

    std::fs::write(
        &world.recipe,
        text.replacen(
            "activity = \"activity.csv\"",
            "counts = \"activity.csv\"",
            1,
        )
        .replacen(
            "providers = \"providers.csv\"",
            "providers = \"providers.csv\"\nmapping = { columns = { sex = \"Gender\" } }",
            1,
        ),
    )
    .unwrap();
    let refused = strata::check(&world.recipe).err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("aggregated counts follow their own contract")),
        "{refused:?}"
    );
}

/// The run fingerprint covers what the recipe fingerprint cannot: the synthetic year's scale and
/// seed (and its config's checksum), the published figures' checksum, the plugins' versions. Two
/// runs of one recipe and seed share it; another seed changes it and not the recipe's.
#[test]
fn the_run_fingerprint_covers_the_synthetic_seed_and_scale() {
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/did-2023-24-icb.toml");
    let run = |scale: f64, seed: u64| {
        let overrides = strata::pipeline::InputOverrides {
            scale: Some(scale),
            seed: Some(seed),
            ..Default::default()
        };
        strata::run_in_memory(&recipe, &overrides)
            .expect("runs")
            .manifest
    };
    let (a, again, other_seed, other_scale) = (
        run(0.0005, 7),
        run(0.0005, 7),
        run(0.0005, 8),
        run(0.0006, 7),
    );
    assert_eq!(a.run_fingerprint, again.run_fingerprint);
    assert_ne!(a.run_fingerprint, other_seed.run_fingerprint);
    assert_ne!(a.run_fingerprint, other_scale.run_fingerprint);
    assert_eq!(a.recipe_fingerprint, other_seed.recipe_fingerprint);
    let synthetic = a.synthetic.as_ref().expect("a synthetic run says so");
    assert_eq!((synthetic.scale, synthetic.seed), (0.0005, 7));
    assert_eq!(synthetic.sha256.len(), 64);
    assert_eq!(a.published.as_ref().map(|p| p.sha256.len()), Some(64));
    assert!(
        a.plugins.iter().all(|p| p.version.starts_with("1.")),
        "pinned @1"
    );
}
