//! The readers on random input: whatever bytes a file holds, reading it gives a value or an error
//! naming the file, never a panic.

use std::path::Path;

use proptest::prelude::*;
use strata::input;
use strata_api::{Area, Configured, DerivationShape, Params, StratifiedCounts};

/// The default `rules.did` shape: the categories aggregated inputs are checked against.
fn shape() -> DerivationShape {
    let did = strata::plugins::builtin()
        .into_iter()
        .find(|d| d.id == "rules.did")
        .expect("rules.did is built in");
    match (did.configure)(&Params::default()) {
        Ok(Configured::Derivation(rules)) => rules.shape(),
        _ => panic!("rules.did configures with defaults"),
    }
}

fn areas() -> Vec<Area> {
    ["A01", "A02"]
        .iter()
        .map(|c| Area {
            code: c.to_string(),
            name: c.to_string(),
        })
        .collect()
}

/// Runs every reader on the file; each may fail, none may panic.
fn read_everything(path: &Path, shape: &DerivationShape) {
    let areas = areas();
    let _ = input::read_areas(path);
    let _ = input::read_providers(path);
    let _ = input::read_practices(path, &areas);
    let _ = input::read_non_english(path);
    let _ = input::read_lsoa(path, path, &areas);
    let _ = input::read_exam_codes(path);
    let mut counts = StratifiedCounts::zeroed(
        areas.clone(),
        shape.measures.clone(),
        input::dimensions(shape),
    );
    let _ = input::read_population(path, &mut counts, shape);
    let _ = input::read_counts(path, &mut counts, shape);
    let _ = count_activity(path);
}

/// The production record-level reader (the whole run of the example recipe) on `path`.
fn count_activity(path: &Path) -> strata::error::Result<strata::pipeline::RunResults> {
    strata_tests::run_example(path, 2)
}

/// Text that looks like one of the input tables, so the readers get past the header: every
/// header name, codes of the right and wrong kinds, separators, quotes, odd bytes.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let tokens = prop::sample::select(vec![
        "area_code",
        "area_name",
        "practice_code",
        "provider_code",
        "provider_name",
        "lsoa11",
        "imd_decile",
        "exam_code",
        "measure",
        "sex",
        "age_band",
        "imd_quintile",
        "population",
        "tests",
        "test_date",
        "gp_practice_code",
        "age",
        "modality",
        "A01",
        "A02",
        "1",
        "2",
        "9",
        "0-4",
        "90+",
        "-3",
        "2.5",
        "1e308",
        "NaN",
        "xray",
        "2023-04-01",
        "2023-02-30",
        "\"",
        "\"\"",
        ",",
        ",",
        ",",
        "\n",
        "\n",
        "\r\n",
        " ",
        "\u{e9}",
        "\u{feff}",
        "\0",
    ]);
    // Half the time a real header first, so the readers get to the rows.
    let headers = prop::sample::select(vec![
        "",
        "",
        "area_code,area_name\n",
        "practice_code,area_code\n",
        "lsoa11,area_code,imd_decile\n",
        "exam_code,measure\n",
        "area_code,sex,age_band,imd_quintile,population\n",
        "area_code,sex,age_band,imd_quintile,measure,tests\n",
        "provider_code,test_date,gp_practice_code,lsoa11,sex,age,modality\n",
    ]);
    (
        headers,
        prop::collection::vec(tokens, 0..120),
        prop::collection::vec(any::<u8>(), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(header, tokens, noise, at)| {
            let mut bytes: Vec<u8> = format!("{header}{}", tokens.concat()).into_bytes();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, noise);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn readers_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.csv");
        std::fs::write(&path, &bytes).unwrap();
        read_everything(&path, &shape());
    }

    #[test]
    fn readers_never_panic_on_csv_like_text(bytes in csv_like()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.csv");
        std::fs::write(&path, &bytes).unwrap();
        read_everything(&path, &shape());
    }
}

#[test]
fn a_random_parquet_file_gives_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activity.parquet");
    std::fs::write(&path, b"PAR1 this is not parquet PAR1").unwrap();
    let err = match count_activity(&path) {
        Ok(_) => panic!("read garbage as parquet"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("activity.parquet"), "{err}");
}

/// A real extract (DuckDB-written, several row groups) cut short anywhere: an error naming the
/// file, never a panic or a result.
#[test]
fn a_truncated_parquet_file_gives_an_error_not_a_panic() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/extracts/forms/duckdb-submission-order.parquet");
    let bytes = std::fs::read(&source).expect("fixture");
    let dir = tempfile::tempdir().unwrap();
    for cut in [
        8,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        let path = dir.path().join(format!("cut-{cut}.parquet"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match count_activity(&path) {
            Ok(_) => panic!("read a Parquet file cut at {cut} bytes"),
            Err(e) => assert!(e.to_string().contains(&format!("cut-{cut}.parquet")), "{e}"),
        }
    }
}
