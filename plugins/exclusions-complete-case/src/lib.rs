//! `exclusions.complete-case` — the rule of both publications (SPEC §2.3): a record counts in the
//! rates only when its area, sex, age band and IMD quintile are all known. Every other record is
//! left out, and counted by reason in the `exclusions` table (Annex A's raw material).
//!
//! The stage receives counts whose dimensions each end in the category `unknown`; this rule drops
//! those categories, so the rates' numerators and the national rates hold complete cases only.
//! Population is never unknown, so nothing is lost from the denominators.
//!
//! Parameters: none.
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24*, methodology ("records with missing or invalid age, sex or
//! LSOA are excluded"), and their Annex A exclusion totals.

use serde::Deserialize;
use strata_api::{
    Configured, ExcludedUnknowns, ExclusionRule, MethodError, ParamError, Params, PluginDescriptor,
    StageKind, StratifiedCounts,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "exclusions.complete-case",
    stage: StageKind::Exclusions,
    version: env!("CARGO_PKG_VERSION"),
    description: "Complete cases only: records with an unknown sex, age band or IMD quintile are left out",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteCaseParams {}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let _: CompleteCaseParams = params.parse()?;
    Ok(Configured::Exclusions(Box::new(CompleteCase)))
}

/// The complete-case rule.
pub struct CompleteCase;

impl ExclusionRule for CompleteCase {
    fn method_name(&self) -> String {
        "complete cases".into()
    }

    fn excluded(&self) -> ExcludedUnknowns {
        ExcludedUnknowns {
            sex: true,
            age_band: true,
            imd_quintile: true,
        }
    }

    fn apply(&self, counts: &StratifiedCounts) -> Result<StratifiedCounts, MethodError> {
        Ok(counts.without_unknown_categories())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, Dimension};

    /// Two areas, one measure; sex × age with an unknown category each.
    fn counts() -> StratifiedCounts {
        let mut c = StratifiedCounts::zeroed(
            vec![
                Area {
                    code: "A".into(),
                    name: "A".into(),
                },
                Area {
                    code: "B".into(),
                    name: "B".into(),
                },
            ],
            vec!["xray".into()],
            vec![
                Dimension::new("sex", &["1", "2", "unknown"]),
                Dimension::new("age_band", &["0-44", "45+", "unknown"]),
            ],
        );
        // Area A: male 0-44 10, female 45+ 20, unknown sex 0-44 5, male unknown age 7.
        let a = c.tests_of_mut(0, 0);
        a[0] = 10.0;
        a[4] = 20.0;
        a[6] = 5.0;
        a[2] = 7.0;
        c.population_of_mut(0)[0] = 100.0;
        c.population_of_mut(1)[4] = 50.0;
        c
    }

    #[test]
    fn unknown_categories_are_dropped_and_known_cells_kept() {
        let out = CompleteCase.apply(&counts()).expect("applies");
        assert_eq!(out.dimensions[0].categories, ["1", "2"]);
        assert_eq!(out.dimensions[1].categories, ["0-44", "45+"]);
        // Cells: (1,0-44) (1,45+) (2,0-44) (2,45+).
        assert_eq!(out.tests_of(0, 0), [10.0, 0.0, 0.0, 20.0]);
        assert_eq!(out.tests_of(0, 1), [0.0; 4]);
        assert_eq!(out.population_of(0), [100.0, 0.0, 0.0, 0.0]);
        assert_eq!(out.population_of(1), [0.0, 0.0, 0.0, 50.0]);
        // 12 of 42 tests had an unknown value: complete cases keep 30.
        assert_eq!(out.tests.iter().sum::<f64>(), 30.0);
    }

    #[test]
    fn every_unknown_excludes() {
        let e = CompleteCase.excluded();
        assert!(e.sex && e.age_band && e.imd_quintile);
    }

    #[test]
    fn parameters_are_refused() {
        let params = Params::from_toml_str("impute = [\"sex\"]").expect("toml");
        assert!((DESCRIPTOR.configure)(&params).is_err());
    }
}
