//! `attribution.gp-practice-then-lsoa` — the responsible-population attribution both publications
//! use (SPEC §2.1; Annex A of the 2020/21 and 2023/24 publications).
//!
//! Per distinct practice × LSOA candidate:
//!
//! | practice lookup | LSOA area | area | route |
//! | --- | --- | --- | --- |
//! | English practice of area a | any | a | `gp_practice` |
//! | valid non-English practice (Wales, prisons, MoD, ...) | any | none | `non_english_practice` |
//! | missing or unknown code | Some(b) | b | `lsoa` |
//! | missing or unknown code | None | none | `unattributed` |
//!
//! Edge cases: a non-English practice is never attributed through its patient's LSOA, even when the
//! LSOA is English — the publications count these separately ("a non-English or other valid GP
//! Practice (e.g. prisons and Ministry of Defence practices)", 0.4% in 2020/21, 0.3% in 2023/24).
//! A practice code that is in no map of the year is treated like a missing one.
//!
//! The resident-based alternative, LSOA first, is `attribution.lsoa-then-gp-practice`.
//!
//! Reference: NHS England, *Diagnostic Imaging Dataset: Standardised CCG rates 2020/21* and
//! *Standardised ICB rates 2023/24*, Annex A ("derived from either their GP Practice code or, where
//! this was missing, the Lower Super Output Area (LSOA) of their postcode").

use serde::Deserialize;
use strata_api::{
    Attribution, AttributionCandidate, AttributionMethod, Configured, MethodError, ParamError,
    Params, PluginDescriptor, PracticeLookup, Route, StageKind, sql::SqlAttribution,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "attribution.gp-practice-then-lsoa",
    stage: StageKind::Attribution,
    version: env!("CARGO_PKG_VERSION"),
    description: "Area from the GP practice; from the patient's LSOA where the practice code is missing or unknown",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PracticeThenLsoaParams {}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let _: PracticeThenLsoaParams = params.parse()?;
    Ok(Configured::Attribution(Box::new(PracticeThenLsoa)))
}

/// GP practice first, LSOA as the fallback.
pub struct PracticeThenLsoa;

impl PracticeThenLsoa {
    pub fn attribute_one(candidate: &AttributionCandidate) -> Attribution {
        match candidate.practice {
            PracticeLookup::English(area) => Attribution {
                area: Some(area),
                route: Route::GpPractice,
            },
            PracticeLookup::NonEnglish => Attribution {
                area: None,
                route: Route::NonEnglishPractice,
            },
            PracticeLookup::Missing | PracticeLookup::Unknown => match candidate.lsoa_area {
                Some(area) => Attribution {
                    area: Some(area),
                    route: Route::Lsoa,
                },
                None => Attribution {
                    area: None,
                    route: Route::Unattributed,
                },
            },
        }
    }
}

impl AttributionMethod for PracticeThenLsoa {
    fn method_name(&self) -> String {
        "gp practice, then lsoa".into()
    }

    fn attribute(
        &self,
        candidates: &[AttributionCandidate],
    ) -> Result<Vec<Attribution>, MethodError> {
        Ok(candidates.iter().map(Self::attribute_one).collect())
    }

    /// The table above as SQL.
    fn sql(&self) -> Option<SqlAttribution> {
        Some(SqlAttribution {
            area: "CASE WHEN practice_class = 'english' THEN practice_area \
                   WHEN practice_class = 'non_english' THEN NULL ELSE lsoa_area END"
                .into(),
            route: "CASE WHEN practice_class = 'english' THEN 'gp_practice' \
                    WHEN practice_class = 'non_english' THEN 'non_english_practice' \
                    WHEN lsoa_area IS NOT NULL THEN 'lsoa' ELSE 'unattributed' END"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(practice: PracticeLookup, lsoa_area: Option<u32>) -> Attribution {
        PracticeThenLsoa::attribute_one(&AttributionCandidate {
            practice,
            lsoa_area,
        })
    }

    #[test]
    fn english_practice_wins_over_a_different_lsoa_area() {
        let a = attribute(PracticeLookup::English(3), Some(7));
        assert_eq!(a.area, Some(3));
        assert_eq!(a.route, Route::GpPractice);
    }

    #[test]
    fn english_practice_without_lsoa() {
        let a = attribute(PracticeLookup::English(0), None);
        assert_eq!(a.area, Some(0));
        assert_eq!(a.route, Route::GpPractice);
    }

    #[test]
    fn non_english_practice_is_not_attributed_even_with_an_english_lsoa() {
        for lsoa in [Some(2), None] {
            let a = attribute(PracticeLookup::NonEnglish, lsoa);
            assert_eq!(a.area, None);
            assert_eq!(a.route, Route::NonEnglishPractice);
        }
    }

    #[test]
    fn missing_or_unknown_practice_falls_back_to_lsoa() {
        for practice in [PracticeLookup::Missing, PracticeLookup::Unknown] {
            let a = attribute(practice, Some(5));
            assert_eq!(a.area, Some(5));
            assert_eq!(a.route, Route::Lsoa);
        }
    }

    #[test]
    fn missing_or_unknown_practice_without_lsoa_is_unattributed() {
        for practice in [PracticeLookup::Missing, PracticeLookup::Unknown] {
            let a = attribute(practice, None);
            assert_eq!(a.area, None);
            assert_eq!(a.route, Route::Unattributed);
        }
    }

    #[test]
    fn one_output_per_candidate_in_order() {
        let method = PracticeThenLsoa;
        let candidates = [
            AttributionCandidate {
                practice: PracticeLookup::Missing,
                lsoa_area: Some(1),
            },
            AttributionCandidate {
                practice: PracticeLookup::English(2),
                lsoa_area: None,
            },
        ];
        let out = method.attribute(&candidates).expect("attribute");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].route, Route::Lsoa);
        assert_eq!(out[1].route, Route::GpPractice);
    }

    #[test]
    fn configures_with_no_params_and_refuses_unknown_ones() {
        assert!(configure(&Params::default()).is_ok());
        let p = Params::from_toml_str("order = 1").unwrap();
        let err = configure(&p).err().unwrap();
        assert_eq!(err.key.as_deref(), Some("order"));
    }
}
