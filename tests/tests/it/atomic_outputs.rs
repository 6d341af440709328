//! A run replaces its output folder only when everything is written: a run that fails, or is
//! killed midway through writing, leaves the previous outputs byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_tests::{strata, temp_dir, write_world};

/// Every file under `dir`, in subfolders too (relative name → bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read output folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for (inner, bytes) in snapshot(&path) {
                files.insert(format!("{name}/{inner}"), bytes);
            }
        } else {
            files.insert(name, std::fs::read(&path).expect("read output file"));
        }
    }
    files
}

/// Names of hidden leftovers (`.out.tmp-*`, `.out.old-*`) beside the output folder.
fn leftovers(world: &Path) -> Vec<String> {
    std::fs::read_dir(world)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect()
}

/// Makes the world's activity different (drops every 7th record) so a new run's outputs differ.
fn change_activity(world: &Path) {
    let path = world.join("activity.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i == 0 || i % 7 != 0)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, kept).unwrap();
}

#[test]
fn a_run_killed_while_writing_leaves_the_previous_outputs_untouched() {
    let tmp = temp_dir("kill");
    let world = write_world(tmp.path(), "ratio.rate");
    let recipe = world.recipe.to_str().unwrap();
    let (code, _, err) = strata(&["run", recipe]);
    assert_eq!(code, 0, "{err}");
    let out = world.dir.join("out");
    let before = snapshot(&out);
    assert!(before.len() >= 6, "{:?}", before.keys());

    change_activity(&world.dir);
    // Sleep 1 s after each file written, so the run is surely killed halfway through writing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata-under-test"))
        .args(["run", recipe])
        .env("STRATA_TEST_SLOW_WRITE", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strata");
    let tmp_out = world.dir.join(format!(".out.tmp-{}", child.id()));
    let started = Instant::now();
    let mut written = 0;
    while written == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
        written = std::fs::read_dir(&tmp_out).map(|d| d.count()).unwrap_or(0);
    }
    child.kill().expect("kill the run");
    child.wait().expect("reap the run");

    assert_eq!(
        snapshot(&out),
        before,
        "the previous outputs changed after a killed run"
    );
    assert!(
        snapshot(&tmp_out).len() < before.len(),
        "the run was killed before it finished writing"
    );

    // The next run tidies the killed run's temporary folder and replaces the outputs.
    let (code, _, err) = strata(&["run", recipe]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(leftovers(&world.dir), Vec::<String>::new());
    let after = snapshot(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_ne!(after, before, "the new run's outputs replaced the old ones");
}

#[test]
fn a_run_that_fails_leaves_the_previous_outputs_untouched() {
    let tmp = temp_dir("fail-keeps");
    let world = write_world(tmp.path(), "ratio.rate");
    let recipe = world.recipe.to_str().unwrap();
    let (code, _, err) = strata(&["run", recipe]);
    assert_eq!(code, 0, "{err}");
    let out = world.dir.join("out");
    let before = snapshot(&out);

    // A late, broken population extract.
    let population = world.dir.join("population.csv");
    let text = std::fs::read_to_string(&population).unwrap();
    std::fs::write(&population, text.replacen(",47\n", ",-47\n", 1)).unwrap();
    let (code, _, err) = strata(&["run", recipe]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("population.csv, row 1"), "{err}");
    assert_eq!(snapshot(&out), before);
    assert_eq!(leftovers(&world.dir), Vec::<String>::new());
}

/// strata never deletes what it did not write: an output folder holding someone's files, the
/// recipe or an input is refused (exit 2) before any data is read, and left as it was.
#[test]
fn an_output_folder_strata_did_not_write_is_refused_and_left_alone() {
    let tmp = temp_dir("output-guard");
    let world = write_world(tmp.path(), "ratio.rate");
    let recipe = world.recipe.to_string_lossy().into_owned();

    // `--out` a folder of notes.
    let notes = world.dir.join("analysis");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("notes.txt"), "my notes").unwrap();
    let (code, _, err) = strata(&["run", &recipe, "--out", &notes.to_string_lossy()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("will not write the outputs here"), "{err}");
    assert!(err.contains("`notes.txt`"), "{err}");
    assert_eq!(
        std::fs::read_to_string(notes.join("notes.txt")).unwrap(),
        "my notes"
    );

    // The inputs' own folder, and the recipe's folder (`outputs.dir = ""`).
    let before = snapshot(&world.dir);
    for out in [world.dir.to_string_lossy().into_owned(), String::new()] {
        let args: Vec<&str> = if out.is_empty() {
            let text = std::fs::read_to_string(&world.recipe).unwrap();
            std::fs::write(&world.recipe, text.replace("dir = \"out\"", "dir = \"\"")).unwrap();
            vec!["run", &recipe]
        } else {
            vec!["run", &recipe, "--out", &out]
        };
        let (code, _, err) = strata(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("which this run reads"), "{err}");
    }
    let text = std::fs::read_to_string(&world.recipe).unwrap();
    std::fs::write(&world.recipe, text.replace("dir = \"\"", "dir = \"out\"")).unwrap();
    assert_eq!(
        snapshot(&world.dir),
        before,
        "the world's files are untouched"
    );

    // An empty folder, then the folder of that earlier run, may be replaced.
    let fresh = world.dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    for _ in 0..2 {
        let (code, _, err) = strata(&["run", &recipe, "--out", &fresh.to_string_lossy()]);
        assert_eq!(code, 0, "{err}");
    }
    assert!(fresh.join("manifest.json").exists());
}

/// An output folder whose temporary sibling (`.<name>.tmp-<pid>`) could not be named is refused
/// before the run, with what is wrong, rather than failing after it.
#[test]
fn an_output_name_too_long_for_its_temporary_sibling_is_refused() {
    let tmp = temp_dir("long-name");
    let world = write_world(tmp.path(), "ratio.rate");
    let out = world.dir.join("o".repeat(250));
    let (code, _, err) = strata(&[
        "run",
        &world.recipe.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("its name is 250 bytes"), "{err}");
    assert!(err.contains("at most 239 bytes"), "{err}");
}
