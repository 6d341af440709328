//! Writes the tests' tiny world into a folder, to look at or run by hand:
//! `cargo run -p strata-tests --bin write-test-world -- DIR [RATIO_PLUGIN]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: write-test-world DIR [RATIO_PLUGIN]");
        std::process::exit(2);
    };
    let ratio = args.next().unwrap_or_else(|| "ratio.rate".into());
    let world = strata_tests::write_world(std::path::Path::new(&dir), &ratio);
    println!("{}", world.recipe.display());
}
