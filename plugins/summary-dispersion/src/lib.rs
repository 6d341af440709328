//! `summary.dispersion` — per-measure spread of area standardised rates (SPEC §2.7; section 2 of both
//! publications, e.g. 2023/24: "The national rate was 3,551 X-rays per 10,000 registered population
//! and 67% ICBs were within one standard deviation of the mean, that is between 3,223 and 3,847").
//!
//! Per measure, over the areas whose standardised rate is defined (rates are per 10,000):
//!
//! - `national_rate`;
//! - `areas_with_rate`, and `areas_without_rate` (listed): areas whose standardised rate is NaN
//!   (expected 0) are left out of every statistic below;
//! - `mean_standardised_rate`, `sd_standardised_rate` (param `sd`: `"sample"`, n − 1, default; or
//!   `"population"`, n);
//! - `within_1sd_lower` = mean − SD, `within_1sd_upper` = mean + SD, and `share_within_1sd`, the
//!   share of areas with lower ≤ rate ≤ upper;
//! - `share_within_10pct_of_crude`: share of areas with |standardised − crude| ≤ 0.10 × crude
//!   (param `within_crude = 0.10`; the name follows it, e.g. `share_within_5pct_of_crude`);
//! - `areas_above_2x_national`, `areas_above_4x_national` (param `multiples = [2.0, 4.0]`): count
//!   of areas with rate > multiple × national rate, listed in the `areas` column, highest first;
//! - `min_standardised_rate`, `max_standardised_rate`, with the area(s) holding them.
//!
//! Shares are fractions (0.67, not 67). Area lists are `; `-separated area codes (param
//! `area_label = "name"` for names). A statistic that is undefined (no area with a rate; an SD of
//! fewer than two areas) is `Value::Missing`, as is the `areas` cell of a row that lists none.
//!
//! Table `summary`, long format: columns `measure, statistic, value, areas`.

use serde::Deserialize;
use strata_api::{
    Configured, MethodError, ParamError, Params, PluginDescriptor, StageKind, StandardisedRates,
    StratifiedCounts, SummaryMethod, Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "summary.dispersion",
    stage: StageKind::Summary,
    version: env!("CARGO_PKG_VERSION"),
    description: "Per-measure mean, SD, share within 1 SD and within 10% of crude, areas above multiples of national",
    configure,
};

/// Which standard deviation to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdKind {
    /// Divisor n − 1.
    Sample,
    /// Divisor n.
    Population,
}

/// How areas are named in the `areas` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AreaLabel {
    Code,
    Name,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispersionParams {
    #[serde(default = "default_sd")]
    sd: SdKind,
    #[serde(default = "default_within_crude")]
    within_crude: f64,
    #[serde(default = "default_multiples")]
    multiples: Vec<f64>,
    #[serde(default = "default_area_label")]
    area_label: AreaLabel,
}

fn default_sd() -> SdKind {
    SdKind::Sample
}
fn default_within_crude() -> f64 {
    0.10
}
fn default_multiples() -> Vec<f64> {
    vec![2.0, 4.0]
}
fn default_area_label() -> AreaLabel {
    AreaLabel::Code
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    Ok(Configured::Summary(Box::new(Dispersion::configured(
        params,
    )?)))
}

/// The dispersion summary.
#[derive(Debug, Clone)]
pub struct Dispersion {
    sd: SdKind,
    within_crude: f64,
    multiples: Vec<f64>,
    area_label: AreaLabel,
}

impl Dispersion {
    pub fn configured(params: &Params) -> Result<Self, ParamError> {
        let parsed: DispersionParams = params.parse()?;
        if !(parsed.within_crude.is_finite() && parsed.within_crude >= 0.0) {
            return Err(ParamError::new(
                "within_crude",
                "within_crude must be a fraction ≥ 0, e.g. 0.10 for 10%",
            ));
        }
        for (i, &multiple) in parsed.multiples.iter().enumerate() {
            if !(multiple.is_finite() && multiple > 0.0) {
                return Err(ParamError::new(
                    format!("multiples[{i}]"),
                    "multiples of the national rate must be positive numbers",
                ));
            }
        }
        Ok(Dispersion {
            sd: parsed.sd,
            within_crude: parsed.within_crude,
            multiples: parsed.multiples,
            area_label: parsed.area_label,
        })
    }
}

/// A number for a statistic name: `2` for 2.0, `1.5` for 1.5 (rounded to 6 decimals first, so
/// that 0.07 × 100 reads `7`).
fn short_number(x: f64) -> String {
    let rounded = (x * 1e6).round() / 1e6;
    format!("{rounded}")
}

/// One area's rates, for the statistics.
struct AreaPoint {
    area: usize,
    standardised_rate: f64,
    crude_rate: f64,
}

impl SummaryMethod for Dispersion {
    fn method_name(&self) -> String {
        let sd = match self.sd {
            SdKind::Sample => "sample SD",
            SdKind::Population => "population SD",
        };
        format!("dispersion ({sd})")
    }

    fn summarise(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Table, MethodError> {
        let n_areas = counts_shape.areas.len();
        let n_measures = counts_shape.measures.len();
        if let Some(row) = rates
            .areas
            .iter()
            .find(|r| r.area >= n_areas || r.measure >= n_measures)
        {
            return Err(MethodError::new(format!(
                "a standardised rate refers to area {} / measure {}, beyond the {} areas and {} measures",
                row.area, row.measure, n_areas, n_measures
            )));
        }
        let label = |area: usize| {
            let a = &counts_shape.areas[area];
            match self.area_label {
                AreaLabel::Code => a.code.clone(),
                AreaLabel::Name => a.name.clone(),
            }
        };
        let list = |areas: &[usize]| {
            if areas.is_empty() {
                Value::Missing
            } else {
                Value::Text(
                    areas
                        .iter()
                        .map(|&a| label(a))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            }
        };

        let mut table = Table::new(
            "summary",
            "Spread of area standardised rates per 10,000, by measure",
            &["measure", "statistic", "value", "areas"],
        );
        for (measure, measure_key) in counts_shape.measures.iter().enumerate() {
            let mut push = |statistic: String, value: Value, areas: Value| {
                table.rows.push(vec![
                    Value::Text(measure_key.clone()),
                    Value::Text(statistic),
                    value,
                    areas,
                ]);
            };
            let rows: Vec<_> = rates
                .areas
                .iter()
                .filter(|r| r.measure == measure)
                .collect();
            let national_rate = rates
                .national
                .iter()
                .find(|n| n.measure == measure)
                .map(|n| n.rate)
                .or_else(|| rows.first().map(|r| r.national_rate))
                .unwrap_or(f64::NAN);
            let (points, without): (Vec<_>, Vec<_>) = rows
                .iter()
                .map(|r| AreaPoint {
                    area: r.area,
                    standardised_rate: r.standardised_rate,
                    crude_rate: r.crude_rate,
                })
                .partition(|p| p.standardised_rate.is_finite());
            let without: Vec<usize> = without.iter().map(|p| p.area).collect();
            let n = points.len() as f64;

            push(
                "national_rate".into(),
                Value::finite(national_rate),
                Value::Missing,
            );
            push("areas_with_rate".into(), Value::Number(n), Value::Missing);
            push(
                "areas_without_rate".into(),
                Value::Number(without.len() as f64),
                list(&without),
            );

            let mean = points.iter().map(|p| p.standardised_rate).sum::<f64>() / n;
            let squares: f64 = points
                .iter()
                .map(|p| (p.standardised_rate - mean).powi(2))
                .sum();
            let sd = match self.sd {
                SdKind::Sample if points.len() >= 2 => (squares / (n - 1.0)).sqrt(),
                SdKind::Population if !points.is_empty() => (squares / n).sqrt(),
                _ => f64::NAN,
            };
            let (lower, upper) = (mean - sd, mean + sd);
            let share = |count: usize| {
                if points.is_empty() {
                    Value::Missing
                } else {
                    Value::Number(count as f64 / n)
                }
            };
            push(
                "mean_standardised_rate".into(),
                Value::finite(mean),
                Value::Missing,
            );
            push(
                "sd_standardised_rate".into(),
                Value::finite(sd),
                Value::Missing,
            );
            let within_sd = points
                .iter()
                .filter(|p| (lower..=upper).contains(&p.standardised_rate))
                .count();
            push(
                "share_within_1sd".into(),
                if sd.is_finite() {
                    share(within_sd)
                } else {
                    Value::Missing
                },
                Value::Missing,
            );
            push(
                "within_1sd_lower".into(),
                Value::finite(lower),
                Value::Missing,
            );
            push(
                "within_1sd_upper".into(),
                Value::finite(upper),
                Value::Missing,
            );
            let within_crude = points
                .iter()
                .filter(|p| {
                    (p.standardised_rate - p.crude_rate).abs() <= self.within_crude * p.crude_rate
                })
                .count();
            push(
                format!(
                    "share_within_{}pct_of_crude",
                    short_number(self.within_crude * 100.0)
                ),
                share(within_crude),
                Value::Missing,
            );

            for &multiple in &self.multiples {
                let mut above: Vec<&AreaPoint> = points
                    .iter()
                    .filter(|p| p.standardised_rate > multiple * national_rate)
                    .collect();
                // Highest first; a stable sort keeps area order among ties.
                above.sort_by(|a, b| b.standardised_rate.total_cmp(&a.standardised_rate));
                let areas: Vec<usize> = above.iter().map(|p| p.area).collect();
                push(
                    format!("areas_above_{}x_national", short_number(multiple)),
                    if national_rate.is_finite() {
                        Value::Number(areas.len() as f64)
                    } else {
                        Value::Missing
                    },
                    list(&areas),
                );
            }

            for (statistic, pick) in [
                ("min_standardised_rate", f64::min as fn(f64, f64) -> f64),
                ("max_standardised_rate", f64::max),
            ] {
                let extreme = points
                    .iter()
                    .map(|p| p.standardised_rate)
                    .reduce(pick)
                    .unwrap_or(f64::NAN);
                let holders: Vec<usize> = points
                    .iter()
                    .filter(|p| p.standardised_rate == extreme)
                    .map(|p| p.area)
                    .collect();
                push(statistic.into(), Value::finite(extreme), list(&holders));
            }
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{Area, AreaRate, Dimension, NationalRate};

    const TOL: f64 = 1e-9;

    fn summary(text: &str) -> Result<Dispersion, ParamError> {
        Dispersion::configured(&Params::from_toml_str(text).expect("valid toml"))
    }

    /// Five areas with standardised rates 600, 800, 1,000, 1,200, 2,400 and crude rates 620, 1,000,
    /// 1,000, 1,100, 2,000 against a national rate of 500; a sixth area (F) has no rate.
    fn five_areas() -> (StratifiedCounts, StandardisedRates) {
        let codes = ["A", "B", "C", "D", "E", "F"];
        let counts = StratifiedCounts::zeroed(
            codes
                .iter()
                .map(|c| Area {
                    code: c.to_string(),
                    name: format!("Area {c}"),
                })
                .collect(),
            vec!["xray".into()],
            vec![Dimension::new("sex", &["1", "2"])],
        );
        let standardised = [600.0, 800.0, 1000.0, 1200.0, 2400.0, f64::NAN];
        let crude = [620.0, 1000.0, 1000.0, 1100.0, 2000.0, f64::NAN];
        let areas = (0..6)
            .map(|area| AreaRate {
                area,
                measure: 0,
                observed: 0.0,
                expected: 0.0,
                population: 0.0,
                crude_rate: crude[area],
                standardised_rate: standardised[area],
                national_rate: 500.0,
                variance: None,
            })
            .collect();
        let rates = StandardisedRates {
            rate_per: strata_api::DEFAULT_RATE_PER,
            method: "test".into(),
            national: vec![NationalRate {
                measure: 0,
                observed: 0.0,
                population: 0.0,
                rate: 500.0,
            }],
            areas,
        };
        (counts, rates)
    }

    fn cell<'a>(table: &'a Table, statistic: &str) -> (&'a Value, &'a Value) {
        let row = table
            .rows
            .iter()
            .find(|r| r[1] == Value::Text(statistic.into()))
            .unwrap_or_else(|| panic!("no statistic {statistic}"));
        (&row[2], &row[3])
    }

    fn number(table: &Table, statistic: &str) -> f64 {
        match cell(table, statistic).0 {
            Value::Number(x) => *x,
            other => panic!("{statistic} is {other:?}"),
        }
    }

    fn areas(table: &Table, statistic: &str) -> Value {
        cell(table, statistic).1.clone()
    }

    #[test]
    fn five_hand_made_areas() {
        let (counts, rates) = five_areas();
        let table = summary("").unwrap().summarise(&counts, &rates).unwrap();
        assert_eq!(table.name, "summary");
        assert_eq!(table.columns, ["measure", "statistic", "value", "areas"]);
        assert_eq!(number(&table, "national_rate"), 500.0);
        assert_eq!(number(&table, "areas_with_rate"), 5.0);
        assert_eq!(number(&table, "areas_without_rate"), 1.0);
        assert_eq!(areas(&table, "areas_without_rate"), Value::Text("F".into()));
        // Mean 6,000/5 = 1,200; squared deviations 360,000 + 160,000 + 40,000 + 0 + 1,440,000
        // = 2,000,000; sample variance 500,000.
        assert!((number(&table, "mean_standardised_rate") - 1200.0).abs() < TOL);
        let sd = 500_000f64.sqrt();
        assert!((number(&table, "sd_standardised_rate") - sd).abs() < TOL);
        assert!((number(&table, "sd_standardised_rate") - 707.1068).abs() < 1e-4);
        assert!((number(&table, "within_1sd_lower") - (1200.0 - sd)).abs() < TOL);
        assert!((number(&table, "within_1sd_upper") - (1200.0 + sd)).abs() < TOL);
        // 492.9 … 1,907.1 holds 600, 800, 1,000 and 1,200.
        assert!((number(&table, "share_within_1sd") - 0.8).abs() < TOL);
        // |600−620| ≤ 62, |1000−1000| ≤ 100, |1200−1100| ≤ 110; not 800 vs 1,000 or 2,400 vs 2,000.
        assert!((number(&table, "share_within_10pct_of_crude") - 0.6).abs() < TOL);
        // Above 1,000: 1,200 (D) and 2,400 (E), highest first; above 2,000: E.
        assert_eq!(number(&table, "areas_above_2x_national"), 2.0);
        assert_eq!(
            areas(&table, "areas_above_2x_national"),
            Value::Text("E; D".into())
        );
        assert_eq!(number(&table, "areas_above_4x_national"), 1.0);
        assert_eq!(
            areas(&table, "areas_above_4x_national"),
            Value::Text("E".into())
        );
        assert_eq!(number(&table, "min_standardised_rate"), 600.0);
        assert_eq!(
            areas(&table, "min_standardised_rate"),
            Value::Text("A".into())
        );
        assert_eq!(number(&table, "max_standardised_rate"), 2400.0);
        assert_eq!(
            areas(&table, "max_standardised_rate"),
            Value::Text("E".into())
        );
        assert!(
            table
                .rows
                .iter()
                .all(|r| r[0] == Value::Text("xray".into()))
        );
    }

    #[test]
    fn population_sd_and_other_params() {
        let (counts, rates) = five_areas();
        let table = summary(
            "sd = \"population\"\nwithin_crude = 0.05\nmultiples = [1.5]\narea_label = \"name\"",
        )
        .unwrap()
        .summarise(&counts, &rates)
        .unwrap();
        // Population variance 2,000,000 / 5 = 400,000.
        assert!((number(&table, "sd_standardised_rate") - 400_000f64.sqrt()).abs() < TOL);
        assert!((number(&table, "sd_standardised_rate") - 632.4555).abs() < 1e-4);
        // Within 5% of crude: A (|−20| ≤ 31) and C (0 ≤ 50).
        assert!((number(&table, "share_within_5pct_of_crude") - 0.4).abs() < TOL);
        // Above 750: 800, 1,000, 1,200, 2,400.
        assert_eq!(number(&table, "areas_above_1.5x_national"), 4.0);
        assert_eq!(
            areas(&table, "areas_above_1.5x_national"),
            Value::Text("Area E; Area D; Area C; Area B".into())
        );
        assert!(
            !table
                .rows
                .iter()
                .any(|r| r[1] == Value::Text("areas_above_2x_national".into()))
        );
    }

    #[test]
    fn no_area_with_a_rate_gives_missing_statistics() {
        let (counts, mut rates) = five_areas();
        rates
            .areas
            .iter_mut()
            .for_each(|r| r.standardised_rate = f64::NAN);
        let table = summary("").unwrap().summarise(&counts, &rates).unwrap();
        for statistic in [
            "mean_standardised_rate",
            "sd_standardised_rate",
            "share_within_1sd",
            "share_within_10pct_of_crude",
            "min_standardised_rate",
        ] {
            assert_eq!(cell(&table, statistic).0, &Value::Missing, "{statistic}");
        }
        assert_eq!(number(&table, "areas_without_rate"), 6.0);
        assert_eq!(number(&table, "areas_above_2x_national"), 0.0);
        assert_eq!(areas(&table, "areas_above_2x_national"), Value::Missing);
    }

    #[test]
    fn bad_params_are_refused() {
        let key = |text: &str| summary(text).err().and_then(|e| e.key);
        assert_eq!(key("sd = \"unbiased\"").as_deref(), Some("sd"));
        assert_eq!(key("within_crude = -0.1").as_deref(), Some("within_crude"));
        assert_eq!(
            key("multiples = [2.0, 0.0]").as_deref(),
            Some("multiples[1]")
        );
        assert_eq!(key("multiple = [2.0]").as_deref(), Some("multiple"));
    }

    #[test]
    fn rates_beyond_the_counts_are_refused() {
        let (mut counts, rates) = five_areas();
        counts.areas.truncate(3);
        assert!(summary("").unwrap().summarise(&counts, &rates).is_err());
    }

    #[test]
    fn statistic_names_follow_params() {
        assert_eq!(short_number(0.07 * 100.0), "7");
        assert_eq!(short_number(2.0), "2");
        assert_eq!(short_number(1.5), "1.5");
    }

    #[test]
    fn summarises_standardisation_output() {
        // Two areas × two age strata (worked in standardise.indirect): rates 405000/485 and
        // 567000/595 against national 900; crude 1,000 and 840.
        let mut counts = StratifiedCounts::zeroed(
            vec![
                Area {
                    code: "A".into(),
                    name: "Area A".into(),
                },
                Area {
                    code: "B".into(),
                    name: "Area B".into(),
                },
            ],
            vec!["xray".into()],
            vec![Dimension::new("age_band", &["young", "old"])],
        );
        counts
            .population_of_mut(0)
            .copy_from_slice(&[1000.0, 500.0]);
        counts
            .population_of_mut(1)
            .copy_from_slice(&[2000.0, 500.0]);
        counts.tests_of_mut(0, 0).copy_from_slice(&[50.0, 100.0]);
        counts.tests_of_mut(0, 1).copy_from_slice(&[60.0, 150.0]);
        let params = Params::from_toml_str("strata = [\"age_band\"]").unwrap();
        let Configured::Standardisation(method) =
            (strata_standardise_indirect::DESCRIPTOR.configure)(&params).unwrap()
        else {
            panic!("wrong stage");
        };
        let rates = method.standardise(&counts).unwrap();
        let table = summary("").unwrap().summarise(&counts, &rates).unwrap();
        let (a, b) = (405000.0 / 485.0, 567000.0 / 595.0);
        assert!((number(&table, "national_rate") - 900.0).abs() < TOL);
        assert!((number(&table, "mean_standardised_rate") - (a + b) / 2.0).abs() < TOL);
        // Two values: sample SD = |a − b| / √2.
        let sd = (b - a) / 2f64.sqrt();
        assert!((number(&table, "sd_standardised_rate") - sd).abs() < TOL);
        // A: |835.05 − 1000| > 100; B: |952.94 − 840| > 84.
        assert_eq!(number(&table, "share_within_10pct_of_crude"), 0.0);
        assert_eq!(
            areas(&table, "max_standardised_rate"),
            Value::Text("B".into())
        );
    }
}
