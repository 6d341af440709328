//! Generate records at a scale and measure them as the engine would: national rates, factor ratios
//! (standardised for the other two factors), attribution routes and the Annex A provider faults.
//!
//! Usage: `cargo run -p strata-synth --release --example validate_records -- configs/synth/did-2023-24.toml 0.05 1`

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use strata_synth::{
    AGE_BANDS, Generator, MEASURES, Published, RecordBatch, STRATA, factor_rates, ratio_of, stratum,
};

fn read_map(
    path: &Path,
    key: &str,
    value: &str,
) -> Result<HashMap<String, String>, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut csv = csv::Reader::from_reader(reader);
    let headers = csv.headers()?.clone();
    let k = headers.iter().position(|h| h == key).ok_or("key column")?;
    let v = headers
        .iter()
        .position(|h| h == value)
        .ok_or("value column")?;
    let mut map = HashMap::new();
    for row in csv.records() {
        let row = row?;
        map.insert(row[k].to_string(), row[v].to_string());
    }
    Ok(map)
}

#[derive(Default)]
struct ProviderTally {
    total: f64,
    no_practice: f64,
    no_practice_no_lsoa: f64,
    incomplete: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let config = args
        .get(1)
        .map_or("configs/synth/did-2023-24.toml", String::as_str);
    let scale: f64 = args.get(2).map_or(Ok(0.05), |s| s.parse())?;
    let seed: u64 = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let generator = Generator::from_config_file(Path::new("."), Path::new(config))?;
    let year_dir = generator.config().reference_dir.clone();
    let published = Published::load(&generator.config().published)?;
    let practice_area = read_map(
        &year_dir.join("practice_area.csv"),
        "practice_code",
        "area_code",
    )?;
    let lsoa_area = read_map(
        &year_dir.join("lsoa11_area.csv.gz"),
        "lsoa11_code",
        "area_code",
    )?;
    let quintile = read_map(
        Path::new("data/reference/common/lsoa11_imd2015.csv.gz"),
        "lsoa11_code",
        "imd_quintile",
    )?;
    let edoc = read_map(
        &year_dir.join("edoc_exam_codes.csv"),
        "exam_code",
        "measure",
    )?;
    let measure_index: HashMap<&str, usize> =
        MEASURES.iter().enumerate().map(|(i, m)| (*m, i)).collect();

    let mut observed = vec![[0.0f64; STRATA]; MEASURES.len()];
    let mut routes: HashMap<&str, f64> = HashMap::new();
    let mut providers: HashMap<String, ProviderTally> = HashMap::new();
    let mut months: HashMap<(String, String), f64> = HashMap::new();
    let started = Instant::now();
    let emitted = generator.generate(scale, seed, |batch: RecordBatch| -> Result<(), String> {
        for i in 0..batch.len() {
            let route = match batch.gp_practice_code[i].as_deref() {
                Some(p) if practice_area.contains_key(p) => "gp_practice",
                Some(_) => "non_english_practice",
                None if batch.lsoa11[i]
                    .as_ref()
                    .is_some_and(|l| lsoa_area.contains_key(l)) =>
                {
                    "lsoa"
                }
                None => "unattributed",
            };
            *routes.entry(route).or_default() += 1.0;
            let q = batch.lsoa11[i]
                .as_ref()
                .and_then(|l| quintile.get(l))
                .and_then(|q| q.parse::<usize>().ok());
            let sex = match batch.sex[i].as_str() {
                "1" => Some(0),
                "2" => Some(1),
                _ => None,
            };
            let band = batch.age[i].map(|a| if a >= 90 { 18 } else { a as usize / 5 });
            let complete = matches!(route, "gp_practice" | "lsoa")
                && q.is_some()
                && sex.is_some()
                && band.is_some();
            let tally = providers.entry(batch.provider_code[i].clone()).or_default();
            tally.total += 1.0;
            if batch.gp_practice_code[i].is_none() {
                tally.no_practice += 1.0;
                if batch.lsoa11[i].is_none() {
                    tally.no_practice_no_lsoa += 1.0;
                }
            }
            if route != "unattributed" && route != "non_english_practice" && !complete {
                tally.incomplete += 1.0;
            }
            *months
                .entry((
                    batch.provider_code[i].clone(),
                    batch.test_date[i][..7].to_string(),
                ))
                .or_default() += 1.0;
            if let (true, Some(q), Some(s), Some(g)) = (complete, q, sex, band) {
                let j = stratum(s, g, q - 1);
                observed[measure_index[batch.modality[i].as_str()]][j] += 1.0;
                if let Some(m) = batch.exam_code[i].as_ref().and_then(|c| edoc.get(c)) {
                    observed[measure_index[m.as_str()]][j] += 1.0;
                }
            }
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{emitted} records at scale {scale} in {seconds:.1} s ({:.2} M records/s)",
        emitted as f64 / seconds / 1e6
    );
    let total: f64 = routes.values().sum();
    for route in [
        "gp_practice",
        "lsoa",
        "non_english_practice",
        "unattributed",
    ] {
        println!(
            "route {route}: {:.2}% ({:.0} at full scale)",
            100.0 * routes.get(route).unwrap_or(&0.0) / total,
            routes.get(route).unwrap_or(&0.0) / scale
        );
    }
    let mut population = [0.0; STRATA];
    for row in generator.population_scaled(scale) {
        let band = AGE_BANDS
            .iter()
            .position(|b| *b == row.age_band)
            .unwrap_or(0);
        population[stratum(
            if row.sex == "1" { 0 } else { 1 },
            band,
            row.imd_quintile as usize - 1,
        )] += row.population;
    }
    let method = generator.config().ratio_method;
    for (m, measure) in MEASURES.iter().enumerate() {
        let rates = factor_rates(
            &std::array::from_fn(|j| {
                if population[j] > 0.0 {
                    observed[m][j] / population[j]
                } else {
                    0.0
                }
            }),
            &population,
            &population,
        );
        let r = |c: f64, b: f64| ratio_of(method, c, b).map_or("n/a".into(), |x| format!("{x:.2}"));
        println!(
            "{measure:>20}: rate {:.1} (published {}); male {}; imd {} {} {} {}; age {} {} {} {} (65+ {})",
            rates.national * 1e4,
            published.national_rates[*measure],
            r(rates.sex[0], rates.sex[1]),
            r(rates.imd[1], rates.imd[0]),
            r(rates.imd[2], rates.imd[0]),
            r(rates.imd[3], rates.imd[0]),
            r(rates.imd[4], rates.imd[0]),
            r(rates.age[1], rates.age[0]),
            r(rates.age[2], rates.age[0]),
            r(rates.age[3], rates.age[0]),
            r(rates.age[4], rates.age[0]),
            r(rates.age_65_plus, rates.age[0]),
        );
    }
    println!("Providers with > 10% and > 10,000 (full-scale) tests with no GP practice:");
    let mut rows: Vec<(&String, &ProviderTally)> = providers.iter().collect();
    rows.sort_by(|a, b| b.1.no_practice.total_cmp(&a.1.no_practice));
    for (code, t) in rows
        .iter()
        .filter(|(_, t)| t.no_practice / t.total > 0.10 && t.no_practice / scale > 10_000.0)
    {
        println!(
            "  {code}: {:.0} ({:.0}%), no LSOA {:.0} of {:.0}",
            t.no_practice / scale,
            100.0 * t.no_practice / t.total,
            t.no_practice_no_lsoa / scale,
            t.total / scale
        );
    }
    println!("Providers with > 5% and > 5,000 (full-scale) incomplete tests:");
    for (code, t) in rows
        .iter()
        .filter(|(_, t)| t.incomplete / t.total > 0.05 && t.incomplete / scale > 5_000.0)
    {
        println!(
            "  {code}: {:.0} of {:.0} ({:.1}%)",
            t.incomplete / scale,
            t.total / scale,
            100.0 * t.incomplete / t.total
        );
    }
    for missing in &generator.config().missing_submissions {
        let counts: Vec<String> = (0..12)
            .map(|k| {
                let (y, mo) = (
                    2020 + if generator.config().year.starts_with("2023") {
                        3
                    } else {
                        0
                    },
                    4 + k,
                );
                let key = if mo > 12 {
                    format!("{}-{:02}", y + 1, mo - 12)
                } else {
                    format!("{y}-{mo:02}")
                };
                format!(
                    "{:.0}",
                    months
                        .get(&(missing.provider_code.clone(), key))
                        .unwrap_or(&0.0)
                )
            })
            .collect();
        println!(
            "  {} monthly records: {}",
            missing.provider_code,
            counts.join(" ")
        );
    }
    Ok(())
}
