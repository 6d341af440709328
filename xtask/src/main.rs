//! `cargo xtask <command>` (alias in `.cargo/config.toml`; `cargo run -p xtask -- <command>`
//! works the same). See the crate documentation in `lib.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use xtask::{NewPlugin, Stage};

const USAGE: &str = "usage:
  cargo xtask registry [--check]
      rewrite the generated plugin registry (engine/Cargo.toml's generated block and
      engine/src/plugins/builtin.rs) from the crates under plugins/; with --check, only
      report whether it is up to date
  cargo xtask new-plugin <stage> <crate-name> <plugin-id> [--out-of-tree <folder>]
      create plugins/<crate-name>/ (package strata-<crate-name>) from the template and
      regenerate the registry; stage is one of: ratio, confidence_interval, significance.
      With --out-of-tree, create <folder>/<crate-name>/ instead: a stand-alone cdylib
      loaded through `plugin_paths`, and leave the workspace alone";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let root = xtask::workspace_root();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["registry"] => {
            let changed = xtask::write_registry(&root)?;
            if changed.is_empty() {
                println!("registry already up to date");
            }
            for path in changed {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        ["registry", "--check"] => {
            let stale = xtask::stale_registry_files(&root)?;
            if stale.is_empty() {
                println!("registry up to date");
                Ok(())
            } else {
                Err(format!(
                    "out of date: {}; run `cargo xtask registry`",
                    stale
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        ["new-plugin", stage, name, id, rest @ ..] => {
            let stage = Stage::from_key(stage)?;
            let plugin = NewPlugin::new(stage, name, id)?;
            let created = match rest {
                [] => xtask::new_builtin_plugin(&root, &plugin)?,
                ["--out-of-tree", folder] => xtask::new_out_of_tree_plugin(
                    &PathBuf::from(folder),
                    &plugin,
                    &root.join("plugins/api"),
                )?,
                _ => return Err(format!("unexpected arguments {rest:?}\n{USAGE}")),
            };
            println!("created {}", created.display());
            println!(
                "next: write the formula, its doc comment and a hand-worked unit test in {}",
                created.join("src/lib.rs").display()
            );
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}
