//! Write a synthetic year as CSV: `records.csv.gz` (SPEC §3 columns) and `population.csv`.
//!
//! Usage: `cargo run -p strata-synth --release --example write_csv -- configs/synth/did-2023-24.toml 0.01 42 out/`

use std::path::{Path, PathBuf};
use strata_synth::Generator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let config = args
        .get(1)
        .map_or("configs/synth/did-2023-24.toml", String::as_str);
    let scale: f64 = args.get(2).map_or(Ok(0.01), |s| s.parse())?;
    let seed: u64 = args.get(3).map_or(Ok(42), |s| s.parse())?;
    let out = PathBuf::from(args.get(4).map_or("synth-out", String::as_str));
    std::fs::create_dir_all(&out)?;
    let generator = Generator::from_config_file(Path::new("."), Path::new(config))?;
    let written = generator.write_csv(
        scale,
        seed,
        &out.join("records.csv.gz"),
        &out.join("population.csv"),
    )?;
    println!("{written} records written to {}", out.display());
    Ok(())
}
