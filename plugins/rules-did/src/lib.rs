//! `rules.did` — the derivations of the DID publications (SPEC §2.2): sex, age band, IMD quintile
//! and the measures each (modality, exam code) pair counts towards.
//!
//! - **Sex**: a raw value (trimmed) in `male` (default `["1"]`) → category `1`; in `female`
//!   (default `["2"]`) → `2`; anything else (`0`, `9`, `X`, empty, null) is not known.
//! - **Age band**: `age_band_width`-year bands from 0 up to `top_age_band`, then one open band:
//!   defaults 5 and 90 give `0-4`, `5-9`, …, `85-89`, `90+` (19 bands). An age below 0 or above
//!   `max_age` (default 130) is not known; `max_age` itself is kept.
//! - **IMD quintile**: from the IMD 2015 decile, `quintile = ceil(decile / 2)`, so deciles 1–2 → `1`
//!   (most deprived) … 9–10 → `5`. A decile outside 1..=10 is not known.
//! - **Measures**, in this order: the `modalities` keys, then the `edoc_measures` keys. A record
//!   counts in its modality's measure: its raw modality (trimmed) is a key, or is mapped to one by
//!   `modality_aliases`. A modality that is neither is reported as unknown and counts in nothing.
//!   A record also counts in an early-diagnosis-of-cancer (EDOC) measure when its exam code is on
//!   the year's exam-code list for that measure *and* its modality is that measure's
//!   `edoc_modality` (so a chest code recorded under CT does not count as a chest X-ray). Exam codes
//!   are compared after trimming, ignoring ASCII case.
//!
//! Edge cases: an exam-code list row naming a measure outside `edoc_measures`, or with an empty exam
//! code, is a run-time error naming the row — the list is a versioned input file, and a typo in
//! it must not silently drop a measure. One code may count towards several EDOC measures.
//! Parameters are checked when configured: band width ≥ 1, `top_age_band` a positive multiple of
//! the width, no value both male and female, distinct measure keys, aliases and `edoc_modality`
//! pointing at modality keys, an `edoc_modality` entry for every EDOC measure (when
//! `edoc_modality` is not given, the defaults for the listed EDOC measures are used).
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24* (strata: IMD quintile × sex × 5-year age band; 9 modalities and
//! 5 EDOC tests); SPEC §2.2 and §3.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use strata_api::{
    Configured, DerivationInput, DerivationRules, DerivationShape, Derived, Dimension, MethodError,
    ParamError, Params, PluginDescriptor, StageKind,
    sql::{SqlDerivation, SqlExamMeasure, in_list, literal},
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "rules.did",
    stage: StageKind::Derivation,
    version: env!("CARGO_PKG_VERSION"),
    description: "DID derivations: sex 1/2, 5-year age bands to 90+, IMD quintile = ceil(decile/2), modality and EDOC measures",
    configure,
};

const DEFAULT_MODALITIES: [&str; 9] = [
    "xray",
    "ultrasound",
    "ct",
    "mri",
    "fluoroscopy",
    "nuclear_medicine",
    "pet",
    "spect",
    "medical_photography",
];

const DEFAULT_EDOC_MODALITY: [(&str, &str); 5] = [
    ("brain_mri", "mri"),
    ("chest_xray", "xray"),
    ("chest_ct", "ct"),
    ("kidney_bladder_us", "ultrasound"),
    ("abdomen_pelvis_us", "ultrasound"),
];

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn default_male() -> Vec<String> {
    strings(&["1"])
}
fn default_female() -> Vec<String> {
    strings(&["2"])
}
fn default_age_band_width() -> u32 {
    5
}
fn default_top_age_band() -> u32 {
    90
}
fn default_max_age() -> i64 {
    130
}
fn default_modalities() -> Vec<String> {
    strings(&DEFAULT_MODALITIES)
}
fn default_edoc_measures() -> Vec<String> {
    DEFAULT_EDOC_MODALITY
        .iter()
        .map(|(m, _)| m.to_string())
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DidParams {
    #[serde(default = "default_male")]
    male: Vec<String>,
    #[serde(default = "default_female")]
    female: Vec<String>,
    #[serde(default = "default_age_band_width")]
    age_band_width: u32,
    #[serde(default = "default_top_age_band")]
    top_age_band: u32,
    #[serde(default = "default_max_age")]
    max_age: i64,
    #[serde(default = "default_modalities")]
    modalities: Vec<String>,
    #[serde(default)]
    modality_aliases: BTreeMap<String, String>,
    #[serde(default = "default_edoc_measures")]
    edoc_measures: Vec<String>,
    edoc_modality: Option<BTreeMap<String, String>>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let parsed: DidParams = params.parse()?;
    Ok(Configured::Derivation(Box::new(DidRules::new(parsed)?)))
}

/// The configured rules.
#[derive(Debug)]
pub struct DidRules {
    male: HashSet<String>,
    female: HashSet<String>,
    age_band_width: i64,
    top_age_band: i64,
    max_age: i64,
    /// Modality keys then EDOC measure keys: the measure list of [`DerivationShape`].
    measures: Vec<String>,
    modality_count: usize,
    /// Raw modality value → index of its modality key (keys map to themselves).
    modality_index: HashMap<String, u16>,
    /// EDOC measure key → (its measure index, index of the modality it requires).
    edoc: HashMap<String, (u16, u16)>,
    age_band: Dimension,
}

fn check_distinct(key: &str, values: &[String]) -> Result<(), ParamError> {
    let mut seen = HashSet::new();
    for v in values {
        if v.trim().is_empty() {
            return Err(ParamError::new(key, format!("{key} has an empty entry")));
        }
        if !seen.insert(v.as_str()) {
            return Err(ParamError::new(key, format!("{key} lists `{v}` twice")));
        }
    }
    Ok(())
}

impl DidRules {
    fn new(p: DidParams) -> Result<Self, ParamError> {
        let male: HashSet<String> = p.male.iter().map(|v| v.trim().to_string()).collect();
        let female: HashSet<String> = p.female.iter().map(|v| v.trim().to_string()).collect();
        if let Some(both) = male.intersection(&female).next() {
            return Err(ParamError::new(
                "female",
                format!("sex value `{both}` is listed as both male and female"),
            ));
        }
        if p.age_band_width == 0 {
            return Err(ParamError::new(
                "age_band_width",
                "age_band_width must be at least 1",
            ));
        }
        if p.top_age_band == 0 || !p.top_age_band.is_multiple_of(p.age_band_width) {
            return Err(ParamError::new(
                "top_age_band",
                format!(
                    "top_age_band ({}) must be a positive multiple of age_band_width ({})",
                    p.top_age_band, p.age_band_width
                ),
            ));
        }
        let closed_bands = p.top_age_band / p.age_band_width;
        // Band indices are u8; the open band takes one more.
        if closed_bands >= u32::from(u8::MAX) {
            return Err(ParamError::new(
                "top_age_band",
                format!("top_age_band / age_band_width gives {closed_bands} bands; at most 254"),
            ));
        }
        if p.max_age < 0 {
            return Err(ParamError::new("max_age", "max_age must not be negative"));
        }

        check_distinct("modalities", &p.modalities)?;
        check_distinct("edoc_measures", &p.edoc_measures)?;
        if p.modalities.is_empty() {
            return Err(ParamError::new(
                "modalities",
                "modalities must not be empty",
            ));
        }
        if let Some(clash) = p.edoc_measures.iter().find(|m| p.modalities.contains(m)) {
            return Err(ParamError::new(
                "edoc_measures",
                format!("`{clash}` is both a modality and an EDOC measure"),
            ));
        }
        let measures: Vec<String> = p
            .modalities
            .iter()
            .chain(&p.edoc_measures)
            .cloned()
            .collect();
        if measures.len() > usize::from(u16::MAX) {
            return Err(ParamError::new("edoc_measures", "too many measures"));
        }

        let mut modality_index: HashMap<String, u16> = HashMap::new();
        for (i, key) in p.modalities.iter().enumerate() {
            modality_index.insert(key.clone(), i as u16);
        }
        for (raw, key) in &p.modality_aliases {
            let Some(&target) = modality_index.get(key.as_str()) else {
                return Err(ParamError::new(
                    format!("modality_aliases.{raw}"),
                    format!("alias `{raw}` maps to `{key}`, which is not in modalities"),
                ));
            };
            match modality_index.get(raw.trim()) {
                Some(&existing) if existing != target => {
                    return Err(ParamError::new(
                        format!("modality_aliases.{raw}"),
                        format!("`{raw}` is a modality key; it cannot be an alias of `{key}`"),
                    ));
                }
                _ => {
                    modality_index.insert(raw.trim().to_string(), target);
                }
            }
        }

        let edoc_modality: BTreeMap<String, String> = match p.edoc_modality {
            Some(table) => table,
            None => DEFAULT_EDOC_MODALITY
                .iter()
                .filter(|(m, _)| p.edoc_measures.iter().any(|e| e == m))
                .map(|(m, k)| (m.to_string(), k.to_string()))
                .collect(),
        };
        for measure in edoc_modality.keys() {
            if !p.edoc_measures.contains(measure) {
                return Err(ParamError::new(
                    format!("edoc_modality.{measure}"),
                    format!("edoc_modality names `{measure}`, which is not in edoc_measures"),
                ));
            }
        }
        let mut edoc = HashMap::new();
        for (offset, measure) in p.edoc_measures.iter().enumerate() {
            let Some(modality) = edoc_modality.get(measure) else {
                return Err(ParamError::new(
                    "edoc_modality",
                    format!("EDOC measure `{measure}` has no entry in edoc_modality"),
                ));
            };
            let Some(modality_pos) = p.modalities.iter().position(|m| m == modality) else {
                return Err(ParamError::new(
                    format!("edoc_modality.{measure}"),
                    format!(
                        "`{measure}` requires modality `{modality}`, which is not in modalities"
                    ),
                ));
            };
            let measure_index = (p.modalities.len() + offset) as u16;
            edoc.insert(measure.clone(), (measure_index, modality_pos as u16));
        }

        let width = p.age_band_width;
        let mut bands: Vec<String> = (0..closed_bands)
            .map(|k| format!("{}-{}", k * width, k * width + width - 1))
            .collect();
        bands.push(format!("{}+", p.top_age_band));
        let age_band = Dimension {
            name: "age_band".into(),
            categories: bands,
        };

        Ok(DidRules {
            male,
            female,
            age_band_width: i64::from(width),
            top_age_band: i64::from(p.top_age_band),
            max_age: p.max_age,
            modality_count: p.modalities.len(),
            measures,
            modality_index,
            edoc,
            age_band,
        })
    }

    /// Index into `["1", "2"]`, or `None` for not known.
    pub fn sex(&self, raw: Option<&str>) -> Option<u8> {
        let value = raw?.trim();
        if self.male.contains(value) {
            Some(0)
        } else if self.female.contains(value) {
            Some(1)
        } else {
            None
        }
    }

    /// Index into the age-band categories, or `None` for not known.
    pub fn age_band(&self, age: Option<i64>) -> Option<u8> {
        let age = age?;
        if age < 0 || age > self.max_age {
            return None;
        }
        let band = age.min(self.top_age_band) / self.age_band_width;
        u8::try_from(band).ok()
    }

    /// Index into `["1" … "5"]` (quintile − 1), or `None` for not known.
    pub fn imd_quintile(decile: Option<u8>) -> Option<u8> {
        match decile? {
            d @ 1..=10 => Some(d.div_ceil(2) - 1),
            _ => None,
        }
    }

    fn modality(&self, raw: &str) -> Option<u16> {
        self.modality_index.get(raw.trim()).copied()
    }

    /// Exam code (normalised) → EDOC measure indices and the modality each requires.
    fn exam_code_map(
        &self,
        list: &[(String, String)],
    ) -> Result<HashMap<String, Vec<(u16, u16)>>, MethodError> {
        let mut map: HashMap<String, Vec<(u16, u16)>> = HashMap::new();
        for (row, (code, measure)) in list.iter().enumerate() {
            let Some(&target) = self.edoc.get(measure.trim()) else {
                return Err(MethodError::exam_code_list(format!(
                    "exam-code list row {}: code `{code}` names measure `{measure}`, which is not \
                     one of the recipe's edoc_measures ({})",
                    row + 1,
                    self.measures[self.modality_count..].join(", ")
                )));
            };
            let code = normalise_exam_code(code);
            if code.is_empty() {
                return Err(MethodError::exam_code_list(format!(
                    "exam-code list row {}: empty exam code for measure `{measure}`",
                    row + 1
                )));
            }
            let targets = map.entry(code).or_default();
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        Ok(map)
    }
}

fn normalise_exam_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

impl DerivationRules for DidRules {
    fn method_name(&self) -> String {
        format!(
            "did rules: {}-year age bands to {}+, ages above {} not known, IMD quintile = ceil(decile/2)",
            self.age_band_width, self.top_age_band, self.max_age
        )
    }

    fn shape(&self) -> DerivationShape {
        DerivationShape {
            sex: Dimension::new("sex", &["1", "2"]),
            age_band: self.age_band.clone(),
            imd_quintile: Dimension::new("imd_quintile", &["1", "2", "3", "4", "5"]),
            measures: self.measures.clone(),
        }
    }

    fn derive(&self, input: &DerivationInput) -> Result<Derived, MethodError> {
        let exam_codes = self.exam_code_map(&input.exam_code_list)?;
        let mut measures = Vec::with_capacity(input.modality_exams.len());
        let mut unknown_modality = Vec::with_capacity(input.modality_exams.len());
        for (modality, exam_code) in &input.modality_exams {
            let Some(modality_idx) = self.modality(modality) else {
                measures.push(Vec::new());
                unknown_modality.push(true);
                continue;
            };
            let mut counts_in = vec![modality_idx];
            if let Some(targets) = exam_code
                .as_deref()
                .and_then(|c| exam_codes.get(&normalise_exam_code(c)))
            {
                counts_in.extend(
                    targets
                        .iter()
                        .filter(|(_, required)| *required == modality_idx)
                        .map(|(measure, _)| *measure),
                );
            }
            measures.push(counts_in);
            unknown_modality.push(false);
        }
        Ok(Derived {
            sex: input
                .sex_values
                .iter()
                .map(|s| self.sex(s.as_deref()))
                .collect(),
            age_band: input.ages.iter().map(|&a| self.age_band(a)).collect(),
            imd_quintile: input
                .imd_deciles
                .iter()
                .map(|&d| Self::imd_quintile(d))
                .collect(),
            measures,
            unknown_modality,
        })
    }

    /// The same rules as SQL (see `strata_api::sql`): `CASE` over the sorted values, so the text
    /// does not depend on hash order.
    fn sql(
        &self,
        exam_code_list: &[(String, String)],
    ) -> Result<Option<SqlDerivation>, MethodError> {
        fn sorted(set: &HashSet<String>) -> Vec<&str> {
            let mut v: Vec<&str> = set.iter().map(String::as_str).collect();
            v.sort_unstable();
            v
        }
        let sex = format!(
            "CASE WHEN {} THEN '1' WHEN {} THEN '2' ELSE NULL END",
            in_list("sex_value", sorted(&self.male)),
            in_list("sex_value", sorted(&self.female))
        );
        let mut age_band = format!(
            "CASE WHEN age_years IS NULL OR age_years < 0 OR age_years > {} THEN NULL \
             WHEN age_years >= {} THEN {}",
            self.max_age,
            self.top_age_band,
            literal(self.age_band.categories.last().map_or("", String::as_str))
        );
        for (k, band) in self
            .age_band
            .categories
            .iter()
            .enumerate()
            .rev()
            .skip(1)
            .rev()
        {
            let upper = (k as i64 + 1) * self.age_band_width - 1;
            age_band.push_str(&format!(
                " WHEN age_years <= {upper} THEN {}",
                literal(band)
            ));
        }
        age_band.push_str(" ELSE NULL END");
        let imd_quintile = format!(
            "CASE {} ELSE NULL END",
            (1..=5)
                .map(|q| format!("WHEN imd_decile IN ({}, {}) THEN '{q}'", 2 * q - 1, 2 * q))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut by_modality: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        for (raw, &m) in &self.modality_index {
            by_modality.entry(m).or_default().push(raw);
        }
        let whens: Vec<String> = by_modality
            .into_iter()
            .map(|(m, mut raws)| {
                raws.sort_unstable();
                let key = &self.measures[usize::from(m)];
                format!(
                    "WHEN {} THEN {}",
                    in_list("modality_value", raws),
                    literal(key)
                )
            })
            .collect();
        let modality_measure = format!("CASE {} ELSE NULL END", whens.join(" "));
        let mut exam_measures: Vec<SqlExamMeasure> = Vec::new();
        for (code, targets) in self.exam_code_map(exam_code_list)? {
            for (measure, modality) in targets {
                exam_measures.push(SqlExamMeasure {
                    exam_code: code.clone(),
                    measure: self.measures[usize::from(measure)].clone(),
                    modality: self.measures[usize::from(modality)].clone(),
                });
            }
        }
        exam_measures.sort();
        Ok(Some(SqlDerivation {
            sex,
            age_band,
            imd_quintile,
            modality_measure,
            exam_measures,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml: &str) -> DidRules {
        let params = Params::from_toml_str(toml).expect("valid toml");
        DidRules::new(params.parse().expect("valid params")).expect("valid rules")
    }

    fn defaults() -> DidRules {
        rules("")
    }

    fn param_error(toml: &str) -> ParamError {
        configure(&Params::from_toml_str(toml).expect("valid toml"))
            .err()
            .expect("params refused")
    }

    fn measure_keys(rules: &DidRules, idx: &[u16]) -> Vec<String> {
        idx.iter()
            .map(|&i| rules.measures[usize::from(i)].clone())
            .collect()
    }

    #[test]
    fn sql_names_every_band_and_exam_measure_of_the_rule() {
        let r = defaults();
        let list = vec![
            (" xches ".to_string(), "chest_xray".to_string()),
            ("XCHES".to_string(), "chest_ct".to_string()),
        ];
        let sql = r.sql(&list).expect("sql").expect("rules.did has SQL");
        // Band k ends at 5k + 4: the same edges as `age_band`.
        assert!(sql.age_band.contains("WHEN age_years <= 4 THEN '0-4'"));
        assert!(sql.age_band.contains("WHEN age_years <= 89 THEN '85-89'"));
        assert!(
            sql.age_band
                .contains("age_years > 130 THEN NULL WHEN age_years >= 90 THEN '90+'")
        );
        assert_eq!(r.age_band(Some(89)), Some(17));
        assert_eq!(r.age_band(Some(90)), Some(18));
        assert!(
            sql.imd_quintile
                .contains("WHEN imd_decile IN (9, 10) THEN '5'")
        );
        // Codes normalised as the record-level rule does; one code in two measures, each with the
        // modality it requires.
        assert_eq!(
            sql.exam_measures,
            vec![
                SqlExamMeasure {
                    exam_code: "XCHES".into(),
                    measure: "chest_ct".into(),
                    modality: "ct".into()
                },
                SqlExamMeasure {
                    exam_code: "XCHES".into(),
                    measure: "chest_xray".into(),
                    modality: "xray".into()
                },
            ]
        );
        let bad = vec![("X".to_string(), "no_such".to_string())];
        assert!(r.sql(&bad).is_err());
    }

    #[test]
    fn shape_matches_the_house_dimensions() {
        let shape = defaults().shape();
        assert_eq!(shape.sex, Dimension::new("sex", &["1", "2"]));
        assert_eq!(
            shape.imd_quintile,
            Dimension::new("imd_quintile", &["1", "2", "3", "4", "5"])
        );
        assert_eq!(shape.age_band.name, "age_band");
        assert_eq!(shape.age_band.categories.len(), 19);
        assert_eq!(shape.age_band.categories[0], "0-4");
        assert_eq!(shape.age_band.categories[1], "5-9");
        assert_eq!(shape.age_band.categories[17], "85-89");
        assert_eq!(shape.age_band.categories[18], "90+");
        assert_eq!(
            shape.measures,
            [
                "xray",
                "ultrasound",
                "ct",
                "mri",
                "fluoroscopy",
                "nuclear_medicine",
                "pet",
                "spect",
                "medical_photography",
                "brain_mri",
                "chest_xray",
                "chest_ct",
                "kidney_bladder_us",
                "abdomen_pelvis_us"
            ]
        );
    }

    #[test]
    fn sex_codes() {
        let r = defaults();
        assert_eq!(r.sex(Some("1")), Some(0));
        assert_eq!(r.sex(Some("2")), Some(1));
        assert_eq!(r.sex(Some(" 2 ")), Some(1));
        for unknown in ["0", "9", "X", "", "M", "12"] {
            assert_eq!(r.sex(Some(unknown)), None, "{unknown:?}");
        }
        assert_eq!(r.sex(None), None);
    }

    #[test]
    fn sex_codes_from_params() {
        let r = rules(
            r#"male = ["1", "M"]
female = ["2", "F"]"#,
        );
        assert_eq!(r.sex(Some("M")), Some(0));
        assert_eq!(r.sex(Some("F")), Some(1));
        assert_eq!(r.sex(Some("9")), None);
    }

    #[test]
    fn age_band_boundaries() {
        let r = defaults();
        let band = |age: i64| {
            r.age_band(Some(age))
                .map(|i| r.age_band.categories[usize::from(i)].clone())
        };
        assert_eq!(band(0).as_deref(), Some("0-4"));
        assert_eq!(band(4).as_deref(), Some("0-4"));
        assert_eq!(band(5).as_deref(), Some("5-9"));
        assert_eq!(band(89).as_deref(), Some("85-89"));
        assert_eq!(band(90).as_deref(), Some("90+"));
        assert_eq!(band(130).as_deref(), Some("90+"));
        assert_eq!(band(131), None);
        assert_eq!(band(-1), None);
        assert_eq!(r.age_band(None), None);
    }

    #[test]
    fn age_bands_from_params() {
        let r = rules("age_band_width = 10\ntop_age_band = 80\nmax_age = 100");
        assert_eq!(
            r.age_band.categories,
            [
                "0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+"
            ]
        );
        assert_eq!(r.age_band(Some(79)), Some(7));
        assert_eq!(r.age_band(Some(80)), Some(8));
        assert_eq!(r.age_band(Some(100)), Some(8));
        assert_eq!(r.age_band(Some(101)), None);
    }

    #[test]
    fn imd_decile_to_quintile() {
        // Index = quintile − 1; deciles 1–2 → quintile 1 … 9–10 → quintile 5.
        let quintiles: Vec<Option<u8>> =
            (1..=10).map(|d| DidRules::imd_quintile(Some(d))).collect();
        assert_eq!(quintiles, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4].map(Some).to_vec());
        assert_eq!(DidRules::imd_quintile(Some(0)), None);
        assert_eq!(DidRules::imd_quintile(Some(11)), None);
        assert_eq!(DidRules::imd_quintile(None), None);
    }

    fn exam_list() -> Vec<(String, String)> {
        [
            ("MBRAI", "brain_mri"),
            ("XCHES", "chest_xray"),
            ("CCHES", "chest_ct"),
            ("UKIDB", "kidney_bladder_us"),
            ("UABPE", "abdomen_pelvis_us"),
            // One code on two lists.
            ("UKAPE", "kidney_bladder_us"),
            ("UKAPE", "abdomen_pelvis_us"),
        ]
        .iter()
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect()
    }

    fn derive_measures(r: &DidRules, pairs: &[(&str, Option<&str>)]) -> Derived {
        let input = DerivationInput {
            modality_exams: pairs
                .iter()
                .map(|(m, c)| (m.to_string(), c.map(str::to_string)))
                .collect(),
            exam_code_list: exam_list(),
            ..Default::default()
        };
        r.derive(&input).expect("derives")
    }

    #[test]
    fn modality_counts_directly_and_edoc_needs_matching_modality() {
        let r = defaults();
        let d = derive_measures(
            &r,
            &[
                ("mri", Some("MBRAI")),
                ("xray", Some("xches ")),
                // A chest X-ray code recorded under CT counts as CT only.
                ("ct", Some("XCHES")),
                ("ultrasound", Some("UKAPE")),
                ("pet", None),
                ("ct", Some("NOTLISTED")),
            ],
        );
        assert_eq!(measure_keys(&r, &d.measures[0]), ["mri", "brain_mri"]);
        assert_eq!(measure_keys(&r, &d.measures[1]), ["xray", "chest_xray"]);
        assert_eq!(measure_keys(&r, &d.measures[2]), ["ct"]);
        assert_eq!(
            measure_keys(&r, &d.measures[3]),
            ["ultrasound", "kidney_bladder_us", "abdomen_pelvis_us"]
        );
        assert_eq!(measure_keys(&r, &d.measures[4]), ["pet"]);
        assert_eq!(measure_keys(&r, &d.measures[5]), ["ct"]);
        assert_eq!(d.unknown_modality, [false; 6]);
    }

    #[test]
    fn unknown_modality_counts_nowhere_and_is_flagged() {
        let r = defaults();
        let d = derive_measures(&r, &[("XRAY", Some("XCHES")), ("dexa", None)]);
        assert!(d.measures.iter().all(Vec::is_empty));
        assert_eq!(d.unknown_modality, [true, true]);
    }

    #[test]
    fn aliases_map_raw_modalities_to_keys() {
        let r = rules(
            r#"[modality_aliases]
"Plain X-ray" = "xray"
US = "ultrasound""#,
        );
        let d = derive_measures(&r, &[("Plain X-ray", Some("XCHES")), ("US", Some("UABPE"))]);
        assert_eq!(measure_keys(&r, &d.measures[0]), ["xray", "chest_xray"]);
        assert_eq!(
            measure_keys(&r, &d.measures[1]),
            ["ultrasound", "abdomen_pelvis_us"]
        );
        assert_eq!(d.unknown_modality, [false, false]);
    }

    #[test]
    fn exam_list_row_with_unknown_measure_is_an_error_naming_it() {
        let r = defaults();
        let input = DerivationInput {
            exam_code_list: vec![("CHEAD".into(), "head_ct".into())],
            ..Default::default()
        };
        let err = r.derive(&input).unwrap_err();
        assert!(err.message.contains("CHEAD"), "{err}");
        assert!(err.message.contains("head_ct"), "{err}");
    }

    #[test]
    fn exam_list_row_with_empty_code_is_an_error() {
        let input = DerivationInput {
            exam_code_list: vec![(" ".into(), "chest_ct".into())],
            ..Default::default()
        };
        let err = defaults().derive(&input).unwrap_err();
        assert!(err.message.contains("empty exam code"), "{err}");
    }

    #[test]
    fn derive_maps_every_input_in_order() {
        let r = defaults();
        let input = DerivationInput {
            sex_values: vec![Some("2".into()), None, Some("1".into())],
            ages: vec![Some(90), Some(4)],
            imd_deciles: vec![Some(10), Some(3), None],
            ..Default::default()
        };
        let d = r.derive(&input).expect("derives");
        assert_eq!(d.sex, [Some(1), None, Some(0)]);
        assert_eq!(d.age_band, [Some(18), Some(0)]);
        assert_eq!(d.imd_quintile, [Some(4), Some(1), None]);
        assert!(d.measures.is_empty());
    }

    #[test]
    fn subset_of_edoc_measures_uses_their_default_modalities() {
        let r = rules(r#"edoc_measures = ["chest_ct"]"#);
        assert_eq!(
            r.shape().measures.last().map(String::as_str),
            Some("chest_ct")
        );
        let input = DerivationInput {
            modality_exams: vec![("ct".into(), Some("CCHES".into()))],
            exam_code_list: vec![("CCHES".into(), "chest_ct".into())],
            ..Default::default()
        };
        let d = r.derive(&input).expect("derives");
        assert_eq!(measure_keys(&r, &d.measures[0]), ["ct", "chest_ct"]);
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(
            param_error("age_band_width = 0").key.as_deref(),
            Some("age_band_width")
        );
        assert_eq!(
            param_error("top_age_band = 92").key.as_deref(),
            Some("top_age_band")
        );
        assert_eq!(param_error("max_age = -1").key.as_deref(), Some("max_age"));
        assert_eq!(
            param_error(r#"female = ["1"]"#).key.as_deref(),
            Some("female")
        );
        assert_eq!(
            param_error(r#"modalities = ["xray", "xray"]"#)
                .key
                .as_deref(),
            Some("modalities")
        );
        assert_eq!(
            param_error("[modality_aliases]\nXR = \"x-ray\"")
                .key
                .as_deref(),
            Some("modality_aliases.XR")
        );
        assert_eq!(
            param_error(r#"edoc_measures = ["head_ct"]"#).key.as_deref(),
            Some("edoc_modality")
        );
        assert_eq!(
            param_error("[edoc_modality]\nbrain_mri = \"mri\"")
                .key
                .as_deref(),
            Some("edoc_modality")
        );
        assert_eq!(
            param_error(
                "edoc_measures = [\"brain_mri\"]\n[edoc_modality]\nbrain_mri = \"scanner\""
            )
            .key
            .as_deref(),
            Some("edoc_modality.brain_mri")
        );
        assert_eq!(param_error("sexes = []").key.as_deref(), Some("sexes"));
    }
}
