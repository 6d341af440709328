//! The one crate every strata plugin depends on.
//!
//! It defines the stage traits (one per pipeline stage), the plain data types that cross a stage
//! boundary, the plugin descriptor the engine's registry and `strata plugins` list, and the C ABI
//! through which plugins built as shared libraries are loaded at run time ([`ffi`]).
//!
//! Invariants:
//! - No IO and no polars here: a plugin receives numbers and strings, never files or data frames.
//! - Everything a plugin needs from the recipe arrives as its parameter table, checked by the plugin
//!   before any data is read ([`PluginDescriptor::configure`]).

pub mod ffi;
pub mod funnel;
pub mod params;
pub mod slots;
pub mod sql;
pub mod stages;
pub mod types;

pub use params::{ParamError, Params};
pub use slots::Slot;
pub use stages::*;
pub use types::*;

/// Version of the stage traits and the C ABI. Bumped on any change a plugin could observe.
/// 2: every stage kind crosses (the serialized `call` entry of the vtable).
/// 3: rates carry the recipe's per-population unit (`rate_per` in the counts, rates, factor rates,
/// comparisons and the ratio call; a `rate_per` input column of the ratio and significance stages).
/// 4: the `period_comparison` and `waiting_times` stage kinds (new variants of the serialized
/// call).
/// 5: the `setting_share` and `did_waits` stage kinds (new variants of the serialized call), and
/// area rates carrying the variance a direct standardisation estimates (`AreaRate::variance`).
pub const API_VERSION: u32 = 5;

/// The compiler this crate was built with. A shared-library plugin must match it exactly.
pub const RUSTC_VERSION: &str = env!("STRATA_RUSTC_VERSION");

/// Which pipeline stage a plugin serves (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Attribution,
    Derivation,
    Exclusions,
    Standardisation,
    ConfidenceInterval,
    Factors,
    Ratio,
    Significance,
    Summary,
    Overdispersion,
    DataQuality,
    PeriodComparison,
    WaitingTimes,
    SettingShare,
    DidWaits,
    Disclosure,
}

impl StageKind {
    pub const ALL: [StageKind; 16] = [
        StageKind::Attribution,
        StageKind::Derivation,
        StageKind::Exclusions,
        StageKind::Standardisation,
        StageKind::ConfidenceInterval,
        StageKind::Factors,
        StageKind::Ratio,
        StageKind::Significance,
        StageKind::Summary,
        StageKind::Overdispersion,
        StageKind::DataQuality,
        StageKind::PeriodComparison,
        StageKind::WaitingTimes,
        StageKind::SettingShare,
        StageKind::DidWaits,
        StageKind::Disclosure,
    ];

    /// The key this stage has in a recipe's `[stages]` table.
    pub fn key(self) -> &'static str {
        match self {
            StageKind::Attribution => "attribution",
            StageKind::Derivation => "derivation",
            StageKind::Exclusions => "exclusions",
            StageKind::Standardisation => "standardisation",
            StageKind::ConfidenceInterval => "confidence_interval",
            StageKind::Factors => "factors",
            StageKind::Ratio => "ratio",
            StageKind::Significance => "significance",
            StageKind::Summary => "summary",
            StageKind::Overdispersion => "overdispersion",
            StageKind::DataQuality => "data_quality",
            StageKind::PeriodComparison => "period_comparison",
            StageKind::WaitingTimes => "waiting_times",
            StageKind::SettingShare => "setting_share",
            StageKind::DidWaits => "did_waits",
            StageKind::Disclosure => "disclosure",
        }
    }

    pub fn from_key(key: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|s| s.key() == key)
    }
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A configured plugin: one of the stage traits, boxed.
pub enum Configured {
    Attribution(Box<dyn AttributionMethod>),
    Derivation(Box<dyn DerivationRules>),
    Exclusions(Box<dyn ExclusionRule>),
    Standardisation(Box<dyn StandardisationMethod>),
    ConfidenceInterval(Box<dyn ConfidenceIntervalMethod>),
    Factors(Box<dyn FactorMethod>),
    Ratio(Box<dyn RatioMethod>),
    Significance(Box<dyn SignificanceMethod>),
    Summary(Box<dyn SummaryMethod>),
    Overdispersion(Box<dyn OverdispersionMethod>),
    DataQuality(Box<dyn DataQualityMethod>),
    PeriodComparison(Box<dyn CountRatioMethod>),
    WaitingTimes(Box<dyn WaitingTimesMethod>),
    SettingShare(Box<dyn SettingShareMethod>),
    DidWaits(Box<dyn DidWaitsMethod>),
    Disclosure(Box<dyn DisclosureMethod>),
}

impl Configured {
    pub fn stage(&self) -> StageKind {
        match self {
            Configured::Attribution(_) => StageKind::Attribution,
            Configured::Derivation(_) => StageKind::Derivation,
            Configured::Exclusions(_) => StageKind::Exclusions,
            Configured::Standardisation(_) => StageKind::Standardisation,
            Configured::ConfidenceInterval(_) => StageKind::ConfidenceInterval,
            Configured::Factors(_) => StageKind::Factors,
            Configured::Ratio(_) => StageKind::Ratio,
            Configured::Significance(_) => StageKind::Significance,
            Configured::Summary(_) => StageKind::Summary,
            Configured::Overdispersion(_) => StageKind::Overdispersion,
            Configured::DataQuality(_) => StageKind::DataQuality,
            Configured::PeriodComparison(_) => StageKind::PeriodComparison,
            Configured::WaitingTimes(_) => StageKind::WaitingTimes,
            Configured::SettingShare(_) => StageKind::SettingShare,
            Configured::DidWaits(_) => StageKind::DidWaits,
            Configured::Disclosure(_) => StageKind::Disclosure,
        }
    }
}

/// What a built-in plugin crate exposes: who it is, and how to configure it from recipe params.
#[derive(Clone, Copy)]
pub struct PluginDescriptor {
    /// Id a recipe selects it by, e.g. `ratio.odds`.
    pub id: &'static str,
    pub stage: StageKind,
    pub version: &'static str,
    /// One line for `strata plugins`.
    pub description: &'static str,
    /// Checks the recipe's parameters and builds the method; called before any data is read.
    pub configure: fn(&Params) -> Result<Configured, ParamError>,
}

/// Error a method returns at run time (not a parameter error). Its kind tells the engine what to
/// name beside the message; the engine never reads the message for meaning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct MethodError {
    pub kind: MethodErrorKind,
    pub message: String,
}

/// What a [`MethodError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodErrorKind {
    /// The numbers or values the stage was given cannot be used by this method.
    Data,
    /// A row of the exam-code list the engine read from the recipe's `exam_codes` file (the
    /// engine names the file).
    ExamCodeList,
    /// A shared-library plugin's call failed (an error, a panic caught at the ABI) or it
    /// answered what the stage cannot use (a missing or short column, NaN where a number is
    /// required).
    Foreign,
}

impl MethodError {
    /// A [`MethodErrorKind::Data`] error.
    pub fn new(msg: impl Into<String>) -> Self {
        MethodError {
            kind: MethodErrorKind::Data,
            message: msg.into(),
        }
    }

    pub fn exam_code_list(msg: impl Into<String>) -> Self {
        MethodError {
            kind: MethodErrorKind::ExamCodeList,
            message: msg.into(),
        }
    }

    pub fn foreign(msg: impl Into<String>) -> Self {
        MethodError {
            kind: MethodErrorKind::Foreign,
            message: msg.into(),
        }
    }
}
