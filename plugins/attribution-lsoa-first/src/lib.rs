//! `attribution.lsoa-then-gp-practice` — resident-based attribution: the area of the patient's
//! LSOA (2011) first, the GP practice's area only when the LSOA is unknown.
//!
//! Not the published method (that is `attribution.gp-practice-then-lsoa`, responsible population);
//! shipped so a methodologist can see how resident-based areas change the rates. Annex A of the
//! publications puts the difference at around 7% of patients (2020/21) and 3% (2023/24) living
//! in a different area from their GP practice's.
//!
//! Per distinct practice × LSOA candidate:
//!
//! | LSOA area | practice lookup | area | route |
//! | --- | --- | --- | --- |
//! | Some(b) | any (including non-English) | b | `lsoa` |
//! | None | English practice of area a | a | `gp_practice` |
//! | None | valid non-English practice | none | `non_english_practice` |
//! | None | missing or unknown code | none | `unattributed` |
//!
//! Edge case: a patient of a non-English practice (e.g. a Welsh practice) who lives in an English
//! LSOA is attributed to that LSOA's area — residence is what this method measures.

use serde::Deserialize;
use strata_api::{
    Attribution, AttributionCandidate, AttributionMethod, Configured, MethodError, ParamError,
    Params, PluginDescriptor, PracticeLookup, Route, StageKind, sql::SqlAttribution,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "attribution.lsoa-then-gp-practice",
    stage: StageKind::Attribution,
    version: env!("CARGO_PKG_VERSION"),
    description: "Resident-based area from the patient's LSOA; from the GP practice where the LSOA is unknown",
    configure,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LsoaFirstParams {}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let _: LsoaFirstParams = params.parse()?;
    Ok(Configured::Attribution(Box::new(LsoaThenPractice)))
}

/// LSOA first, GP practice as the fallback.
pub struct LsoaThenPractice;

impl LsoaThenPractice {
    pub fn attribute_one(candidate: &AttributionCandidate) -> Attribution {
        if let Some(area) = candidate.lsoa_area {
            return Attribution {
                area: Some(area),
                route: Route::Lsoa,
            };
        }
        match candidate.practice {
            PracticeLookup::English(area) => Attribution {
                area: Some(area),
                route: Route::GpPractice,
            },
            PracticeLookup::NonEnglish => Attribution {
                area: None,
                route: Route::NonEnglishPractice,
            },
            PracticeLookup::Missing | PracticeLookup::Unknown => Attribution {
                area: None,
                route: Route::Unattributed,
            },
        }
    }
}

impl AttributionMethod for LsoaThenPractice {
    fn method_name(&self) -> String {
        "lsoa, then gp practice".into()
    }

    fn attribute(
        &self,
        candidates: &[AttributionCandidate],
    ) -> Result<Vec<Attribution>, MethodError> {
        Ok(candidates.iter().map(Self::attribute_one).collect())
    }

    /// The rule as SQL: the LSOA's area, else the practice's as in the record-level rule.
    fn sql(&self) -> Option<SqlAttribution> {
        Some(SqlAttribution {
            area: "CASE WHEN lsoa_area IS NOT NULL THEN lsoa_area \
                   WHEN practice_class = 'english' THEN practice_area ELSE NULL END"
                .into(),
            route: "CASE WHEN lsoa_area IS NOT NULL THEN 'lsoa' \
                    WHEN practice_class = 'english' THEN 'gp_practice' \
                    WHEN practice_class = 'non_english' THEN 'non_english_practice' \
                    ELSE 'unattributed' END"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(practice: PracticeLookup, lsoa_area: Option<u32>) -> Attribution {
        LsoaThenPractice::attribute_one(&AttributionCandidate {
            practice,
            lsoa_area,
        })
    }

    #[test]
    fn lsoa_wins_over_any_practice() {
        for practice in [
            PracticeLookup::English(3),
            PracticeLookup::NonEnglish,
            PracticeLookup::Missing,
            PracticeLookup::Unknown,
        ] {
            let a = attribute(practice, Some(7));
            assert_eq!(a.area, Some(7), "{practice:?}");
            assert_eq!(a.route, Route::Lsoa, "{practice:?}");
        }
    }

    #[test]
    fn english_practice_when_no_lsoa() {
        let a = attribute(PracticeLookup::English(4), None);
        assert_eq!(a.area, Some(4));
        assert_eq!(a.route, Route::GpPractice);
    }

    #[test]
    fn non_english_practice_without_lsoa_is_not_attributed() {
        let a = attribute(PracticeLookup::NonEnglish, None);
        assert_eq!(a.area, None);
        assert_eq!(a.route, Route::NonEnglishPractice);
    }

    #[test]
    fn nothing_known_is_unattributed() {
        for practice in [PracticeLookup::Missing, PracticeLookup::Unknown] {
            let a = attribute(practice, None);
            assert_eq!(a.area, None);
            assert_eq!(a.route, Route::Unattributed);
        }
    }

    #[test]
    fn one_output_per_candidate_in_order() {
        let out = LsoaThenPractice
            .attribute(&[
                AttributionCandidate {
                    practice: PracticeLookup::English(1),
                    lsoa_area: None,
                },
                AttributionCandidate {
                    practice: PracticeLookup::English(1),
                    lsoa_area: Some(2),
                },
            ])
            .expect("attribute");
        assert_eq!(
            out.iter().map(|a| a.area).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
    }

    #[test]
    fn refuses_unknown_params() {
        assert!(configure(&Params::default()).is_ok());
        let p = Params::from_toml_str("x = 1").unwrap();
        assert_eq!(configure(&p).err().unwrap().key.as_deref(), Some("x"));
    }
}
