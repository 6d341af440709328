//! `exclusions.impute-unknown` — an alternative to complete cases for a methodologist to try: the
//! tests of records whose value on a named dimension (sex, age band or IMD quintile) is unknown
//! are shared out over that dimension's known categories, in proportion to the known tests of the
//! same measure and area, instead of being left out of the rates.
//!
//! For a dimension d in `impute` (in the order given), every cell whose d is `unknown` holds U
//! tests. Its siblings are the cells equal to it but for d, one per known category k, and U goes
//! to sibling k in proportion to a weight w_k, the first of these that is not all zero:
//! 1. the known tests of the siblings themselves (same measure, area and other categories);
//! 2. the tests of the same measure and area in category k, over all other categories;
//! 3. the area's population in category k.
//!
//! Where all three are zero (an area with no known tests or people at all) U stays unknown. After
//! every named dimension, what is still unknown (dimensions not named, and such leftovers) is
//! left out as under complete cases, and those records are counted in the `exclusions` table.
//!
//! The shared-out counts are not whole numbers; the later stages take any non-negative count.
//! This assumes the unknowns are missing at random within each measure × area (and within the
//! other categories where weights of kind 1 exist): where, say, one provider's records lack sex,
//! that is a strong assumption, and a methodologist should compare with `exclusions.complete-case`
//! (`strata diff`).
//!
//! Parameters: `impute` (default `["sex"]`): a non-empty list of `sex`, `age_band`,
//! `imd_quintile`, each at most once.
//!
//! Reference: the complete-case rule and its totals, NHS England, *Diagnostic Imaging Dataset:
//! Standardised ICB rates 2023/24*, Annex A; proportional allocation of unknowns as in ONS
//! mid-year estimates' handling of records with unknown age or sex.

use serde::Deserialize;
use strata_api::{
    Configured, ExcludedUnknowns, ExclusionRule, MethodError, ParamError, Params, PluginDescriptor,
    StageKind, StratifiedCounts,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "exclusions.impute-unknown",
    stage: StageKind::Exclusions,
    version: env!("CARGO_PKG_VERSION"),
    description: "Unknown sex, age band or IMD quintile shared out over the known categories in proportion to known tests",
    configure,
};

/// The dimensions a record's value can be unknown on.
const DIMENSIONS: [&str; 3] = ["sex", "age_band", "imd_quintile"];

fn default_impute() -> Vec<String> {
    vec!["sex".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImputeParams {
    #[serde(default = "default_impute")]
    impute: Vec<String>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let p: ImputeParams = params.parse()?;
    if p.impute.is_empty() {
        return Err(ParamError::new(
            "impute",
            "name at least one of sex, age_band, imd_quintile (for none, use exclusions.complete-case)",
        ));
    }
    for (i, d) in p.impute.iter().enumerate() {
        if !DIMENSIONS.contains(&d.as_str()) {
            return Err(ParamError::new(
                "impute",
                format!("`{d}` is not one of sex, age_band, imd_quintile"),
            ));
        }
        if p.impute[..i].contains(d) {
            return Err(ParamError::new("impute", format!("`{d}` is named twice")));
        }
    }
    Ok(Configured::Exclusions(Box::new(ImputeUnknown {
        impute: p.impute,
    })))
}

/// Proportional allocation of unknown categories.
pub struct ImputeUnknown {
    impute: Vec<String>,
}

impl ExclusionRule for ImputeUnknown {
    fn method_name(&self) -> String {
        format!(
            "unknown {} shared out by known tests",
            self.impute.join(", ")
        )
    }

    fn excluded(&self) -> ExcludedUnknowns {
        let kept = |d: &str| self.impute.iter().any(|i| i == d);
        ExcludedUnknowns {
            sex: !kept("sex"),
            age_band: !kept("age_band"),
            imd_quintile: !kept("imd_quintile"),
        }
    }

    fn apply(&self, counts: &StratifiedCounts) -> Result<StratifiedCounts, MethodError> {
        let mut counts = counts.clone();
        for name in &self.impute {
            let d = counts.dimension_index(name).ok_or_else(|| {
                MethodError::new(format!(
                    "the counts have no dimension `{name}` (they have {})",
                    counts
                        .dimensions
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            share_out(&mut counts, d);
        }
        Ok(counts.without_unknown_categories())
    }
}

/// Moves the tests of dimension `d`'s unknown category (its last) to its known categories.
fn share_out(counts: &mut StratifiedCounts, d: usize) {
    let cells = counts.cells();
    let known = counts.dimensions[d].categories.len().saturating_sub(1);
    if known == 0 {
        return;
    }
    // For every cell whose d is unknown: its siblings' cell numbers, by known category.
    let plan: Vec<(usize, Vec<usize>)> = (0..cells)
        .filter_map(|cell| {
            let mut coords = counts.cell_coords(cell);
            (coords[d] == known).then(|| {
                let siblings = (0..known)
                    .map(|k| {
                        coords[d] = k;
                        counts.cell_index(&coords)
                    })
                    .collect();
                (cell, siblings)
            })
        })
        .collect();
    // The area's population by known category of d (weights of the last resort).
    let population_by = |counts: &StratifiedCounts, area: usize| -> Vec<f64> {
        let mut w = vec![0.0; known];
        for (cell, p) in counts.population_of(area).iter().enumerate() {
            let k = counts.cell_coords(cell)[d];
            if k < known {
                w[k] += p;
            }
        }
        w
    };
    for measure in 0..counts.measures.len() {
        for area in 0..counts.areas.len() {
            let tests = counts.tests_of(measure, area);
            // Tests of this measure and area by known category of d, over all other categories.
            let mut by_category = vec![0.0; known];
            for (cell, t) in tests.iter().enumerate() {
                let k = counts.cell_coords(cell)[d];
                if k < known {
                    by_category[k] += t;
                }
            }
            let population = population_by(counts, area);
            let tests = counts.tests_of_mut(measure, area);
            for (cell, siblings) in &plan {
                let unknown = tests[*cell];
                if unknown == 0.0 {
                    continue;
                }
                let own: Vec<f64> = siblings.iter().map(|&s| tests[s]).collect();
                let Some(weights) = [own, by_category.clone(), population.clone()]
                    .into_iter()
                    .find(|w| w.iter().sum::<f64>() > 0.0)
                else {
                    continue;
                };
                let total: f64 = weights.iter().sum();
                for (&s, w) in siblings.iter().zip(&weights) {
                    tests[s] += unknown * w / total;
                }
                tests[*cell] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, Dimension};

    fn configured(text: &str) -> Box<dyn ExclusionRule> {
        let params = Params::from_toml_str(text).expect("toml");
        match (DESCRIPTOR.configure)(&params) {
            Ok(Configured::Exclusions(m)) => m,
            _ => panic!("configures"),
        }
    }

    /// One area, one measure; sex × age with an unknown category each. Cells, row-major:
    /// (1,0-44)=0 (1,45+)=1 (1,?)=2 (2,0-44)=3 (2,45+)=4 (2,?)=5 (?,0-44)=6 (?,45+)=7 (?,?)=8.
    fn counts(tests: [f64; 9]) -> StratifiedCounts {
        let mut c = StratifiedCounts::zeroed(
            vec![Area {
                code: "A".into(),
                name: "A".into(),
            }],
            vec!["xray".into()],
            vec![
                Dimension::new("sex", &["1", "2", "unknown"]),
                Dimension::new("age_band", &["0-44", "45+", "unknown"]),
            ],
        );
        c.tests_of_mut(0, 0).copy_from_slice(&tests);
        c.population_of_mut(0)
            .copy_from_slice(&[100.0, 50.0, 0.0, 120.0, 60.0, 0.0, 0.0, 0.0, 0.0]);
        c
    }

    #[test]
    fn unknown_sex_goes_to_the_sexes_in_proportion_to_their_known_tests() {
        // 0-44: male 10, female 30, unknown 8 → male 10 + 2, female 30 + 6.
        // 45+: no known tests, unknown 6 → by the area's tests by sex over all ages (10 : 30).
        let rule = configured("impute = [\"sex\"]");
        let out = rule
            .apply(&counts([10.0, 0.0, 0.0, 30.0, 0.0, 0.0, 8.0, 6.0, 0.0]))
            .expect("applies");
        let t = out.tests_of(0, 0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(t[0], 12.0) && close(t[2], 36.0), "{t:?}");
        assert!(close(t[1], 1.5) && close(t[3], 4.5), "{t:?}");
        // Every test is kept: 54 in, 54 out.
        assert!(close(t.iter().sum::<f64>(), 54.0));
        assert!(!rule.excluded().sex && rule.excluded().age_band);
    }

    #[test]
    fn unknown_age_is_left_out_unless_named() {
        // Male, unknown age 5: sex only is imputed, so those 5 are dropped.
        let rule = configured("");
        let out = rule
            .apply(&counts([10.0, 0.0, 5.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
            .expect("applies");
        assert_eq!(out.tests_of(0, 0).iter().sum::<f64>(), 40.0);
        // Both named: the 5 go to male ages by male known tests (all 0-44).
        let rule = configured("impute = [\"sex\", \"age_band\"]");
        let out = rule
            .apply(&counts([10.0, 0.0, 5.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
            .expect("applies");
        assert_eq!(out.tests_of(0, 0), [15.0, 0.0, 30.0, 0.0]);
    }

    #[test]
    fn with_no_known_tests_the_population_decides() {
        // Only unknown-sex tests (12) at 0-44: the area's population by sex is 150 : 180.
        let out = configured("")
            .apply(&counts([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 11.0, 0.0, 0.0]))
            .expect("applies");
        let t = out.tests_of(0, 0);
        assert!(
            (t[0] - 5.0).abs() < 1e-12 && (t[2] - 6.0).abs() < 1e-12,
            "{t:?}"
        );
    }

    #[test]
    fn parameters_are_checked() {
        for bad in [
            "impute = []",
            "impute = [\"ethnicity\"]",
            "impute = [\"sex\", \"sex\"]",
            "other = 1",
        ] {
            let params = Params::from_toml_str(bad).expect("toml");
            assert!((DESCRIPTOR.configure)(&params).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_dimension_the_counts_lack_is_an_error() {
        let out = configured("impute = [\"imd_quintile\"]").apply(&counts([0.0; 9]));
        assert!(out.is_err());
    }
}
