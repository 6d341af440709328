//! Print what the calibration achieves on expected counts (no sampling), the way the engine computes it:
//! national rate, factor ratios, and the spread of area standardised rates (SPEC §2.4, §2.5, §2.7).
//!
//! Usage: `cargo run -p strata-synth --release --example calibration_report -- configs/synth/did-2020-21.toml`

use std::path::Path;
use strata_synth::{Generator, MEASURES, STRATA, ratio_of};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "configs/synth/did-2020-21.toml".to_string());
    let generator = Generator::from_config_file(Path::new("."), Path::new(&config))?;
    let method = generator.config().ratio_method;
    let reference = generator.reference();
    let n_areas = reference.areas.len();
    println!(
        "clamped EDOC expectation (records): {:.0}",
        generator.clamped_expected
    );
    for calibration in generator.calibrations() {
        let measure = calibration.measure.as_str();
        let achieved = &calibration.fitted.achieved;
        let ratio = |c: f64, b: f64| {
            ratio_of(method, c, b).map_or("n/a".to_string(), |r| format!("{r:.2}"))
        };
        // Area standardised rates from expected complete-case counts.
        let mut national_stratum = [0.0; STRATA];
        let mut population = [0.0; STRATA];
        for a in 0..n_areas {
            for j in 0..STRATA {
                national_stratum[j] += generator.expected_complete(measure, a, j);
                population[j] += reference.population[a][j];
            }
        }
        let national = national_stratum.iter().sum::<f64>() / population.iter().sum::<f64>();
        let rates: Vec<f64> = (0..n_areas)
            .map(|a| {
                let observed: f64 = (0..STRATA)
                    .map(|j| generator.expected_complete(measure, a, j))
                    .sum();
                let expected: f64 = (0..STRATA)
                    .filter(|&j| population[j] > 0.0)
                    .map(|j| national_stratum[j] / population[j] * reference.population[a][j])
                    .sum();
                observed / expected * national * 1e4
            })
            .collect();
        let mean = rates.iter().sum::<f64>() / n_areas as f64;
        let sd =
            (rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n_areas as f64 - 1.0)).sqrt();
        let within =
            rates.iter().filter(|r| (*r - mean).abs() <= sd).count() as f64 / n_areas as f64;
        let above2: Vec<&str> = (0..n_areas)
            .filter(|&a| rates[a] > 2.0 * national * 1e4)
            .map(|a| reference.areas[a].code.as_str())
            .collect();
        println!(
            "{measure:>20}: national {:.1}; male {}; imd2..5 {} {} {} {}; age {} {} {} {} (65+ {}); areas mean {mean:.0} sd {sd:.0} \
             range {:.0}-{:.0} within1sd {:.0}%; >2x {:?}; iters {}",
            national * 1e4,
            ratio(achieved.sex[0], achieved.sex[1]),
            ratio(achieved.imd[1], achieved.imd[0]),
            ratio(achieved.imd[2], achieved.imd[0]),
            ratio(achieved.imd[3], achieved.imd[0]),
            ratio(achieved.imd[4], achieved.imd[0]),
            ratio(achieved.age[1], achieved.age[0]),
            ratio(achieved.age[2], achieved.age[0]),
            ratio(achieved.age[3], achieved.age[0]),
            ratio(achieved.age[4], achieved.age[0]),
            ratio(achieved.age_65_plus, achieved.age[0]),
            mean - sd,
            mean + sd,
            100.0 * within,
            above2,
            calibration.fitted.iterations,
        );
    }
    let _ = MEASURES;
    Ok(())
}
