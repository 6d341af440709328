//! One trait per pipeline stage (SPEC §2). A plugin implements exactly one.
//!
//! Every trait has `method_name`, the text that output rows carry in their method column; it should
//! name the method and any parameter that changes numbers (e.g. `byar-exact 95%`).

use crate::MethodError;
use crate::types::*;

/// 1. Geography attribution: which area each distinct practice × LSOA combination belongs to.
pub trait AttributionMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn attribute(
        &self,
        candidates: &[AttributionCandidate],
    ) -> Result<Vec<Attribution>, MethodError>;
    /// The same rule as SQL expressions ([`crate::sql`]), for counting where the data lives;
    /// `None` (the default) when the method has none.
    fn sql(&self) -> Option<crate::sql::SqlAttribution> {
        None
    }
}

/// 2. Derivations: sex, age band, IMD quintile and measures from raw values.
pub trait DerivationRules: Send + Sync {
    fn method_name(&self) -> String;
    /// Dimensions and measure keys this plugin derives into; fixed once configured.
    fn shape(&self) -> DerivationShape;
    fn derive(&self, input: &DerivationInput) -> Result<Derived, MethodError>;
    /// The same rules as SQL expressions ([`crate::sql`]) with the year's exam-code list (the
    /// same list [`DerivationInput::exam_code_list`] carries), for counting where the data
    /// lives; `Ok(None)` (the default) when the rules have none.
    fn sql(
        &self,
        exam_code_list: &[(String, String)],
    ) -> Result<Option<crate::sql::SqlDerivation>, MethodError> {
        let _ = exam_code_list;
        Ok(None)
    }
}

/// Exclusions (SPEC §2 step 3): which records with an unknown sex, age band or IMD quintile the
/// rates count, and how.
///
/// The stage receives counts whose every dimension ends in the category [`UNKNOWN_CATEGORY`]
/// (tests of records attributed to an area whose value on that dimension is not known; no
/// population is ever there), and returns counts over the known categories only, which every
/// later stage takes. Records without an area never reach it: no area rate can hold them.
pub trait ExclusionRule: Send + Sync {
    fn method_name(&self) -> String;
    /// Which unknown values still leave a record out of the rates; the engine counts those
    /// records by provider, area and reason (the `exclusions` table).
    fn excluded(&self) -> ExcludedUnknowns;
    fn apply(&self, counts: &StratifiedCounts) -> Result<StratifiedCounts, MethodError>;
}

/// 4. Indirect (or other) standardisation of area rates.
pub trait StandardisationMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn standardise(&self, counts: &StratifiedCounts) -> Result<StandardisedRates, MethodError>;
}

/// Confidence limits for standardised rates, computed from observed and expected counts.
pub trait ConfidenceIntervalMethod: Send + Sync {
    fn method_name(&self) -> String;
    /// One [`Limits`] per configured level. `scale[i]` turns row i's O/E into a standardised rate
    /// (the national rate, per the recipe's unit), so limits come back on the rate scale.
    fn limits(
        &self,
        observed: &[f64],
        expected: &[f64],
        scale: &[f64],
    ) -> Result<Vec<Limits>, MethodError>;
    /// Funnel-plot control limits of O/E at each expected count, one [`Limits`] per level. The
    /// default inverts [`Self::limits`] ([`crate::funnel`]), so a point lies outside the funnel
    /// exactly when its own limits exclude the national rate; override only with the same
    /// property.
    fn funnel_limits(&self, expected: &[f64]) -> Result<Vec<Limits>, MethodError> {
        crate::funnel::funnel_limits(self, expected)
    }
    /// Limits of the standardisation stage's area rates, one [`Limits`] per level. The default
    /// takes each row's observed and expected counts and national rate ([`Self::limits`]); a
    /// method that needs more of a row (Dobson's limits need [`AreaRate::variance`]) overrides it.
    fn rate_limits(&self, rates: &[AreaRate]) -> Result<Vec<Limits>, MethodError> {
        let observed: Vec<f64> = rates.iter().map(|r| r.observed).collect();
        let expected: Vec<f64> = rates.iter().map(|r| r.expected).collect();
        let scale: Vec<f64> = rates.iter().map(|r| r.national_rate).collect();
        self.limits(&observed, &expected, &scale)
    }
}

/// 5. Factor effects: each factor's categories standardised for the other factors.
pub trait FactorMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn factor_rates(&self, counts: &StratifiedCounts) -> Result<FactorRates, MethodError>;
}

/// Ratio of a category's standardised rate to the base category's.
pub trait RatioMethod: Send + Sync {
    fn method_name(&self) -> String;
    /// One result per pair of standardised rates, both per `rate_per` people (the recipe's
    /// unit, [`DEFAULT_RATE_PER`] unless it names one).
    fn ratios(
        &self,
        base_rate: &[f64],
        comparison_rate: &[f64],
        rate_per: f64,
    ) -> Result<Vec<RatioValue>, MethodError>;
    /// The name of the method giving confidence limits for the ratios when the recipe asks for
    /// them (e.g. `Katz log-normal`), for the `ratio_ci_method` column; `None` (the default)
    /// when it does not, and `factor_ratios` then has no limit columns at all, so a recipe that
    /// asks for none writes the table it always did.
    fn limits_method(&self) -> Option<String> {
        None
    }
    /// Confidence limits of the ratios [`Self::ratios`] gives for the same pairs: one [`Limits`]
    /// per configured level, each with one lower and one upper limit per comparison on the ratio
    /// scale (NaN where the ratio or its limits are undefined). Each [`Comparison`] carries the
    /// two standardised rates and the observed and expected counts behind them. Called only when
    /// [`Self::limits_method`] names a method.
    fn limits(&self, comparisons: &[Comparison]) -> Result<Vec<Limits>, MethodError> {
        let _ = comparisons;
        Ok(Vec::new())
    }
}

/// 6. Significance of a category's difference from the base category.
pub trait SignificanceMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn test(&self, comparisons: &[Comparison]) -> Result<Vec<SignificanceResult>, MethodError>;
}

/// 7. Per-measure summaries of the spread of area rates.
pub trait SummaryMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn summarise(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Table, MethodError>;
}

/// Overdispersion of area ratios: how far the spread of O/E across areas exceeds what Poisson
/// noise alone gives, and control limits widened for it, so that many small areas (practices)
/// do not make a league table of noise.
pub trait OverdispersionMethod: Send + Sync {
    fn method_name(&self) -> String;
    /// Its tables from the area rates (`counts_shape` names the areas and measures): typically one
    /// row per measure with the estimates and one per area with the widened limits.
    fn tables(
        &self,
        counts_shape: &StratifiedCounts,
        rates: &StandardisedRates,
    ) -> Result<Vec<Table>, MethodError>;
}

/// 8. Data-quality tables (Annex A) from the engine's quality cube.
pub trait DataQualityMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn tables(&self, input: &QualityInput) -> Result<Vec<Table>, MethodError>;
}

/// Period comparison (seed 002): the ratio of two counts of the same provider, region or England
/// and measure over two periods of equal length, with its confidence limits.
///
/// The engine sums the counts of each period; the method says what their ratio and its limits
/// are (e.g. exact limits conditional on the total), and names itself in every row of
/// `period_comparison`.
pub trait CountRatioMethod: Send + Sync {
    fn method_name(&self) -> String;
    /// One [`CountRatio`] per pair: `period_b[i] / period_a[i]` and its limits.
    fn intervals(&self, period_a: &[f64], period_b: &[f64])
    -> Result<Vec<CountRatio>, MethodError>;
}

/// Waiting times (seed 002): tables of who waits how long, from DM01 waiting lists (each
/// provider × month × diagnostic test's weekly bands), e.g. the share waiting six weeks or more
/// by provider, region and England, and its change against the same month a year earlier.
pub trait WaitingTimesMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn tables(&self, input: &WaitingListInput) -> Result<Vec<Table>, MethodError>;
}

/// Setting share (seed 004): the share of DM01 activity done in a setting outside hospital (e.g.
/// community diagnostic centres), from the setting's activity by site and DM01's activity by
/// provider, e.g. by test × month × England, region and ICB.
pub trait SettingShareMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn tables(&self, input: &SettingShareInput) -> Result<Vec<Table>, MethodError>;
}

/// DID waits (seed 002): tables of how long examinations waited, from the days between record
/// dates counted per provider × modality × month of test ([`DidWaitsInput`]), e.g. the median
/// and upper percentiles and the share waiting six weeks or more; the method says which days it
/// keeps (and how it reports the others) and names its quantile definition in every row.
pub trait DidWaitsMethod: Send + Sync {
    fn method_name(&self) -> String;
    fn tables(&self, input: &DidWaitsInput) -> Result<Vec<Table>, MethodError>;
}

/// Statistical disclosure control of published counts.
pub trait DisclosureMethod: Send + Sync {
    fn method_name(&self) -> String;
    /// Protects the named count columns of `table` in place; returns how many cells it changed.
    fn protect(&self, table: &mut Table, count_columns: &[String]) -> Result<usize, MethodError>;
}
