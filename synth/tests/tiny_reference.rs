//! The generator on tiny hand-made reference data: loading, error messages, faults and missing months.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_synth::{
    AGE_BANDS, CountSampling, Generator, MEASURES, RecordBatch, SynthError, YearConfig,
};

const PUBLISHED: &str = r#"
[national_rates]
xray = 2764
ultrasound = 1347
ct = 917
mri = 496
fluoroscopy = 122
nuclear_medicine = 44
pet = 33
spect = 5
medical_photography = 8
brain_mri = 114
chest_xray = 1104
chest_ct = 93
kidney_bladder_us = 29
abdomen_pelvis_us = 156

[factor_ratios.sex]
Male = { xray = "0.77***", ultrasound = "0.28***", ct = "1.00", mri = "0.82**", fluoroscopy = "1.15", nuclear_medicine = "0.87", pet = "1.14", spect = "0.83", medical_photography = "1.01", brain_mri = "0.81", chest_xray = "1.17**", chest_ct = "1.21", kidney_bladder_us = "0.99", abdomen_pelvis_us = "0.69**" }

[factor_ratios.imd_quintile]
"2" = { xray = "0.84", ultrasound = "0.89", ct = "0.85", mri = "0.95", fluoroscopy = "0.89", nuclear_medicine = "0.98", pet = "0.94", spect = "0.93", medical_photography = "0.64", brain_mri = "0.94", chest_xray = "0.80", chest_ct = "0.80", kidney_bladder_us = "0.94", abdomen_pelvis_us = "0.88" }
"3" = { xray = "0.73", ultrasound = "0.86", ct = "0.75", mri = "0.92", fluoroscopy = "0.84", nuclear_medicine = "0.92", pet = "0.91", spect = "0.83", medical_photography = "0.63", brain_mri = "0.91", chest_xray = "0.66", chest_ct = "0.68", kidney_bladder_us = "0.82", abdomen_pelvis_us = "0.77" }
"4" = { xray = "0.68", ultrasound = "0.84", ct = "0.70", mri = "0.91", fluoroscopy = "0.79", nuclear_medicine = "0.93", pet = "0.90", spect = "0.83", medical_photography = "0.55", brain_mri = "0.89", chest_xray = "0.59", chest_ct = "0.64", kidney_bladder_us = "0.81", abdomen_pelvis_us = "0.73" }
"5" = { xray = "0.62", ultrasound = "0.81", ct = "0.64", mri = "0.89", fluoroscopy = "0.75", nuclear_medicine = "0.91", pet = "0.88", spect = "0.86", medical_photography = "0.55", brain_mri = "0.85", chest_xray = "0.53", chest_ct = "0.58", kidney_bladder_us = "0.74", abdomen_pelvis_us = "0.68" }

[factor_ratios.age_group]
"45-54" = { xray = "2.16", ultrasound = "0.87", ct = "3.22", mri = "2.24", fluoroscopy = "2.52", nuclear_medicine = "2.69", pet = "4.81", spect = "2.34", medical_photography = "1.69", brain_mri = "1.86", chest_xray = "2.64", chest_ct = "4.74", kidney_bladder_us = "1.31", abdomen_pelvis_us = "1.84" }
"55-64" = { xray = "3.24", ultrasound = "0.87", ct = "5.25", mri = "2.71", fluoroscopy = "4.22", nuclear_medicine = "4.35", pet = "9.96", spect = "3.85", medical_photography = "2.60", brain_mri = "2.30", chest_xray = "4.02", chest_ct = "9.22", kidney_bladder_us = "1.69", abdomen_pelvis_us = "2.16" }
"65-74" = { xray = "5.21", ultrasound = "0.99", ct = "9.28", mri = "3.17", fluoroscopy = "6.32", nuclear_medicine = "7.17", pet = "17.74", spect = "6.56", medical_photography = "4.75", brain_mri = "2.88", chest_xray = "6.48", chest_ct = "16.36", kidney_bladder_us = "2.57", abdomen_pelvis_us = "2.37" }
"75+" = { xray = "8.00", ultrasound = "1.22", ct = "21.69", mri = "2.87", fluoroscopy = "8.62", nuclear_medicine = "7.91", pet = "16.89", spect = "7.83", medical_photography = "11.50", brain_mri = "3.35", chest_xray = "17.81", chest_ct = "21.59", kidney_bladder_us = "4.33", abdomen_pelvis_us = "2.65" }

[annex_a]
route_gp_practice_count = 960000
route_gp_practice_share = 0.96
route_lsoa_count = 30000
route_non_english_count = 4000
route_unknown_count = 2000
omitted_no_lsoa_count = 4000
omitted_no_sex_count = 2000
omitted_no_age_count = 100

[[annex_a.providers_incomplete]]
provider_code = "RBB"
total_tests = 1000
missing_tests = 999
most_common_missing = "sex"

[[annex_a.providers_no_practice]]
provider_code = "NT9"
no_practice_tests = 500
no_practice_share = 0.5
no_lsoa_tests = 10
"#;

const CONFIG: &str = r#"
year = "tiny"
area_type = "ccg"
reference_dir = "year"
common_dir = "common"
published = "published.toml"
ratio_method = "rate"
start_date = "2020-04-01"
month_weights = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
count_sampling = "systematic"
calibration_seed = 5
patient_source_weights = [1, 1, 1, 1, 1, 1, 1]
batch_rows = 5000
default_spread = { cv = 0.1, share_within_1sd = 0.7 }

[[missing_submissions]]
area_code = "A2"
provider_code = "RAA"
months = ["2020-06"]
missing_share = 0.05

[other_exam_codes]
xray = ["XKNEB"]
ultrasound = ["UOBST"]
ct = ["CHEAD"]
mri = ["MKNEE"]
fluoroscopy = ["FBASW"]
nuclear_medicine = ["NBONE"]
pet = ["PWHOL"]
spect = ["NMYOS"]
medical_photography = ["PSKIN"]
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    if path.extension().is_some_and(|e| e == "gz") {
        let mut encoder = GzEncoder::new(
            std::fs::File::create(path).expect("create"),
            Compression::fast(),
        );
        encoder.write_all(text.as_bytes()).expect("write");
        encoder.finish().expect("finish");
    } else {
        std::fs::write(path, text).expect("write");
    }
}

/// Two areas (A1, A2), four LSOAs each spanning the quintiles, two practices each, trusts RAA and RBB, and
/// independent provider NT9.
fn fixture(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("strata-synth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(&root.join("published.toml"), PUBLISHED);
    write(&root.join("config.toml"), CONFIG);
    write(
        &root.join("year/areas.csv"),
        "area_code,area_name,ons_code\nA1,Area One,E1\nA2,Area Two,E2\n",
    );
    let mut population = String::from("area_code,age_band,imd_quintile,population\n");
    let mut lsoa_area = String::from("lsoa11_code,area_code\n");
    let mut imd = String::from("lsoa11_code,imd_decile,imd_quintile\n");
    let mut lsoa_pop = format!("lsoa11_code,{}\n", AGE_BANDS.join(","));
    for (a, area) in ["A1", "A2"].iter().enumerate() {
        for band in AGE_BANDS {
            for q in 1..=5 {
                population.push_str(&format!("{area},{band},{q},{}\n", 300 + 40 * q + 100 * a));
            }
        }
        for q in 1..=5 {
            let code = format!("L{a}{q}");
            lsoa_area.push_str(&format!("{code},{area}\n"));
            imd.push_str(&format!("{code},{},{q}\n", 2 * q));
            lsoa_pop.push_str(&format!("{code}{}\n", ",100".repeat(19)));
        }
    }
    write(&root.join("year/population_area_age_imd.csv"), &population);
    write(&root.join("year/lsoa11_area.csv.gz"), &lsoa_area);
    write(&root.join("common/lsoa11_imd2015.csv.gz"), &imd);
    write(
        &root.join("common/lsoa11_population_mid2020.csv.gz"),
        &lsoa_pop,
    );
    let mut sex = String::from("age_band,male,female,male_share\n");
    for band in AGE_BANDS {
        sex.push_str(&format!("{band},1,1,0.5\n"));
    }
    write(&root.join("common/registered_sex_ratio_by_age.csv"), &sex);
    write(
        &root.join("year/practice_area.csv"),
        "practice_code,area_code,list_size\nP11,A1,1000\nP12,A1,\nP21,A2,2000\nP22,A2,500\n",
    );
    write(
        &root.join("year/providers.csv"),
        "provider_code,provider_name,provider_type,status\nRAA,Trust A,nhs_trust,open\nRBB,Trust B,nhs_trust,open\nNT9,Alliance Medical,independent_sector,open\n",
    );
    write(
        &root.join("year/trust_catchment.csv"),
        "provider_code,area_code,proportion\nRAA,A1,0.5\nRAA,A2,0.5\nRBB,A1,0.7\nRBB,A2,0.3\n",
    );
    write(
        &root.join("year/edoc_exam_codes.csv"),
        "exam_code,measure\nMBRAI,brain_mri\nXCHES,chest_xray\nCCHES,chest_ct\nUKIDB,kidney_bladder_us\nUABPE,abdomen_pelvis_us\n",
    );
    write(
        &root.join("year/non_english_practices.csv"),
        "practice_code,practice_name,reason,commissioner\nW00001,Welsh practice,wales,7A1\n",
    );
    root
}

fn load(root: &Path) -> Result<Generator, SynthError> {
    let config = YearConfig::load(&root.join("config.toml"))?;
    Generator::from_reference(root, config)
}

fn all_records(generator: &Generator, scale: f64, seed: u64) -> RecordBatch {
    let mut all = RecordBatch::default();
    generator
        .generate(scale, seed, |b: RecordBatch| -> Result<(), String> {
            all.provider_code.extend(b.provider_code);
            all.test_date.extend(b.test_date);
            all.gp_practice_code.extend(b.gp_practice_code);
            all.lsoa11.extend(b.lsoa11);
            all.sex.extend(b.sex);
            all.age.extend(b.age);
            all.modality.extend(b.modality);
            all.exam_code.extend(b.exam_code);
            all.patient_source.extend(b.patient_source);
            all.site_code.extend(b.site_code);
            Ok(())
        })
        .expect("generation");
    all
}

#[test]
fn calibrates_tiny_reference_and_rescales_to_list_sizes() {
    let root = fixture("calibrate");
    let generator = load(&root).expect("tiny reference loads");
    assert_eq!(generator.calibrations().len(), MEASURES.len());
    for calibration in generator.calibrations() {
        assert!(
            calibration.fitted.max_ratio_error <= 0.005,
            "{}",
            calibration.measure
        );
    }
    // A1 has practices of 1,000 and (median-filled) 1,000 patients; A2 has 2,000 + 500.
    let population = generator.population();
    let total = |area: &str| {
        population
            .iter()
            .filter(|r| r.area_code == area)
            .map(|r| r.population)
            .sum::<f64>()
    };
    assert!((total("A1") - 2000.0).abs() < 100.0, "{}", total("A1"));
    assert!((total("A2") - 2500.0).abs() < 100.0, "{}", total("A2"));
    assert_eq!(population.len(), 2 * 190);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn records_follow_the_contract_and_the_faults() {
    let root = fixture("records");
    let generator = load(&root).expect("tiny reference loads");
    let records = all_records(&generator, 20.0, 3);
    assert!(records.len() > 10_000, "{}", records.len());
    for i in 0..records.len() {
        assert!(
            records.test_date[i].starts_with("2020-") || records.test_date[i].starts_with("2021-0")
        );
        assert!(
            [
                "xray",
                "ultrasound",
                "ct",
                "mri",
                "fluoroscopy",
                "nuclear_medicine",
                "pet",
                "spect",
                "medical_photography"
            ]
            .contains(&records.modality[i].as_str())
        );
        if records.exam_code[i].as_deref() == Some("XCHES") {
            assert_eq!(records.modality[i], "xray");
        }
    }
    // RAA supplies most of A2, so to lose 5% of A2 it submits only part of June 2020: fewer than
    // half its typical month (what Annex A counts as a shortfall), and some.
    let raa_month = |month: &str| {
        (0..records.len())
            .filter(|&i| {
                records.provider_code[i] == "RAA" && records.test_date[i].starts_with(month)
            })
            .count() as f64
    };
    let (june, july) = (raa_month("2020-06"), raa_month("2020-07"));
    assert!(june < 0.5 * july, "RAA June {june}, July {july}");
    // Table A.2 of the fixture: 999 of 1,000 RBB tests miss sex.
    let rbb: Vec<usize> = (0..records.len())
        .filter(|&i| records.provider_code[i] == "RBB")
        .collect();
    let rbb_known_sex = rbb
        .iter()
        .filter(|&&i| records.sex[i] == "1" || records.sex[i] == "2")
        .count();
    assert!(!rbb.is_empty() && (rbb_known_sex as f64) < 0.01 * rbb.len() as f64);
    let nt9: Vec<usize> = (0..records.len())
        .filter(|&i| records.provider_code[i] == "NT9")
        .collect();
    let nt9_no_practice = nt9
        .iter()
        .filter(|&&i| records.gp_practice_code[i].is_none())
        .count() as f64;
    assert!(!nt9.is_empty());
    assert!(
        (nt9_no_practice / nt9.len() as f64 - 0.5).abs() < 0.1,
        "{nt9_no_practice} of {}",
        nt9.len()
    );
    assert!(
        records
            .gp_practice_code
            .iter()
            .any(|p| p.as_deref() == Some("W00001"))
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn national_rates_hold_on_complete_cases() {
    let root = fixture("rates");
    let generator = load(&root).expect("tiny reference loads");
    let scale = 20.0;
    let records = all_records(&generator, scale, 9);
    let population: f64 = generator
        .population_scaled(scale)
        .iter()
        .map(|r| r.population)
        .sum();
    let complete = |i: usize| {
        let attributed = match records.gp_practice_code[i].as_deref() {
            Some(p) => p.starts_with('P'),
            None => records.lsoa11[i].is_some(),
        };
        attributed
            && records.lsoa11[i].is_some()
            && (records.sex[i] == "1" || records.sex[i] == "2")
            && records.age[i].is_some()
    };
    let xray = (0..records.len())
        .filter(|&i| records.modality[i] == "xray" && complete(i))
        .count() as f64;
    let rate = xray / population * 1e4;
    // Published-style target of the fixture: 2,764 per 10,000; ~25,000 records, so 2% is about 3 SE.
    assert!((rate - 2764.0).abs() / 2764.0 < 0.02, "{rate}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn errors_name_file_row_and_column() {
    let root = fixture("errors");
    let path = root.join("year/population_area_age_imd.csv");
    let text =
        std::fs::read_to_string(&path)
            .expect("read")
            .replacen("A1,0-4,1,340", "A1,0-4,1,lots", 1);
    std::fs::write(&path, text).expect("write");
    let message = load(&root).expect_err("bad population").to_string();
    assert!(message.contains("population_area_age_imd.csv"), "{message}");
    assert!(message.contains("row 2"), "{message}");
    assert!(message.contains("`population`"), "{message}");

    let root2 = fixture("errors-area");
    write(
        &root2.join("year/practice_area.csv"),
        "practice_code,area_code,list_size\nP11,A1,1000\nP12,ZZ,10\n",
    );
    let message = load(&root2).expect_err("unknown area").to_string();
    assert!(
        message.contains("practice_area.csv")
            && message.contains("row 3")
            && message.contains("ZZ"),
        "{message}"
    );

    let root3 = fixture("errors-config");
    let config = std::fs::read_to_string(root3.join("config.toml"))
        .expect("read")
        .replace("batch_rows = 5000", "batch_size = 5000");
    std::fs::write(root3.join("config.toml"), config).expect("write");
    let message = load(&root3).expect_err("unknown key").to_string();
    assert!(
        message.contains("config.toml") && message.contains("batch_size"),
        "{message}"
    );
    for dir in [root, root2, root3] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn systematic_counts_are_deterministic() {
    let root = fixture("determinism");
    let generator = load(&root).expect("tiny reference loads");
    assert_eq!(
        all_records(&generator, 1.0, 1),
        all_records(&generator, 1.0, 1)
    );
    assert_ne!(
        all_records(&generator, 1.0, 1),
        all_records(&generator, 1.0, 2)
    );
    let _ = CountSampling::Systematic;
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn writes_records_and_population_as_csv() {
    let root = fixture("write");
    let generator = load(&root).expect("tiny reference loads");
    let records_path = root.join("out/records.csv.gz");
    let population_path = root.join("out/population.csv");
    std::fs::create_dir_all(root.join("out")).expect("mkdir");
    let written = generator
        .write_csv(0.5, 4, &records_path, &population_path)
        .expect("written");
    let reader = flate2::read::GzDecoder::new(std::fs::File::open(&records_path).expect("open"));
    let mut csv = csv::Reader::from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .expect("headers")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(headers, strata_synth::RECORD_COLUMNS.to_vec());
    assert_eq!(csv.records().count() as u64, written);
    let mut population = csv::Reader::from_path(&population_path).expect("population");
    assert_eq!(population.records().count(), 2 * 190);
    let _ = std::fs::remove_dir_all(root);
}
