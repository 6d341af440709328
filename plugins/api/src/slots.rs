//! What flows between stages. Each stage kind takes some [`Slot`]s and gives others; the engine
//! runs a recipe's stages in the order their slots decide (a stage runs once everything it takes
//! has been given), so no stage order is written anywhere but here.
//!
//! The two reader stages, attribution and derivation, are not on the board: the engine's reading
//! pass calls them for each distinct value while it counts records into
//! [`Slot::ActivityCounts`] (and, from record-level input, [`Slot::QualityCube`]).

use crate::StageKind;

/// A value or an output table one stage gives and others take.
///
/// The order of the table slots is the order a run writes its tables in, whatever order the stages
/// ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Tests and population by measure × area × stratum, every dimension ending in its `unknown`
    /// category: what the reading pass (or the aggregated entry) counted.
    ActivityCounts,
    /// Record-level input's data-quality cube (provider × area × route × missing fields × month).
    QualityCube,
    /// Counts over the known categories only: what every statistic takes.
    Counts,
    /// Area and national standardised rates.
    Rates,
    /// Each factor category's rate, standardised for the other factors.
    FactorRates,
    /// Each factor category's ratio against its base category.
    Ratios,
    /// Tests by provider × month × measure, each provider with its region (the period-comparison
    /// input: the aggregated entry `provider_months`, or its synthetic pair of years).
    ProviderMonths,
    /// DM01 waiting lists by provider × month × diagnostic test.
    WaitingLists,
    /// A setting's activity by site × month × test (e.g. community diagnostic centres), with its
    /// site list and the ICB of every DM01 provider.
    SettingActivity,
    /// DID waits: days between record dates by provider × modality × month of test (from
    /// record-level input with `request_date` or `report_date`, or the synthetic pair of years).
    WaitDays,
    /// Table `national_rates`.
    NationalRatesTable,
    /// Table `area_rates`.
    AreaRatesTable,
    /// Table `factor_ratios`.
    FactorRatiosTable,
    /// Table `summary`.
    SummaryTable,
    /// The overdispersion stage's tables.
    OverdispersionTables,
    /// The data-quality stage's tables (Annex A).
    DataQualityTables,
    /// Table `exclusions`: records left out of rates by provider, area and reason (record-level
    /// input only).
    ExclusionsTable,
    /// Tables `stratum_counts` and `stratum_population` (the aggregated-entry contract), when
    /// the recipe asks for them.
    StratumTables,
    /// Table `period_comparison`: two periods compared by provider, region and England.
    PeriodComparisonTable,
    /// The waiting-times stage's tables (`waits`).
    WaitsTables,
    /// The setting-share stage's tables (`cdc_share`, `cdc_share_england`, `cdc_site_join`).
    SettingShareTables,
    /// The DID-waits stage's tables (`did_waits`).
    DidWaitsTables,
    /// Every table the other stages gave. A stage that takes it runs after every other stage.
    AllTables,
}

impl Slot {
    /// The name messages use.
    pub fn key(self) -> &'static str {
        match self {
            Slot::ActivityCounts => "activity counts",
            Slot::QualityCube => "data-quality cube",
            Slot::Counts => "counts over known categories",
            Slot::Rates => "standardised rates",
            Slot::FactorRates => "factor rates",
            Slot::Ratios => "factor ratios",
            Slot::ProviderMonths => "tests by provider and month",
            Slot::WaitingLists => "DM01 waiting lists",
            Slot::SettingActivity => "activity by site of a setting",
            Slot::WaitDays => "DID wait days",
            Slot::NationalRatesTable => "table national_rates",
            Slot::AreaRatesTable => "table area_rates",
            Slot::FactorRatiosTable => "table factor_ratios",
            Slot::SummaryTable => "table summary",
            Slot::OverdispersionTables => "overdispersion tables",
            Slot::DataQualityTables => "data-quality tables",
            Slot::ExclusionsTable => "table exclusions",
            Slot::StratumTables => "tables stratum_counts and stratum_population",
            Slot::PeriodComparisonTable => "table period_comparison",
            Slot::WaitsTables => "waiting-times tables",
            Slot::SettingShareTables => "setting-share tables",
            Slot::DidWaitsTables => "DID-waits tables",
            Slot::AllTables => "every table",
        }
    }

    /// Whether this slot holds output tables.
    pub fn is_table(self) -> bool {
        self >= Slot::NationalRatesTable && self != Slot::AllTables
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl StageKind {
    /// Whether the engine's reading pass calls this stage (once per distinct value), rather than
    /// running it on the board.
    pub fn in_reader(self) -> bool {
        matches!(self, StageKind::Attribution | StageKind::Derivation)
    }

    /// What the stage needs before it can run.
    pub fn takes(self) -> &'static [Slot] {
        match self {
            StageKind::Attribution | StageKind::Derivation => &[],
            StageKind::Exclusions => &[Slot::ActivityCounts],
            StageKind::Standardisation | StageKind::Factors => &[Slot::Counts],
            StageKind::ConfidenceInterval | StageKind::Summary | StageKind::Overdispersion => {
                &[Slot::Counts, Slot::Rates]
            }
            StageKind::Ratio => &[Slot::FactorRates],
            StageKind::Significance => &[Slot::Counts, Slot::FactorRates, Slot::Ratios],
            StageKind::DataQuality => &[Slot::QualityCube],
            StageKind::PeriodComparison => &[Slot::ProviderMonths],
            StageKind::WaitingTimes => &[Slot::WaitingLists],
            StageKind::SettingShare => &[Slot::WaitingLists, Slot::SettingActivity],
            StageKind::DidWaits => &[Slot::WaitDays],
            StageKind::Disclosure => &[Slot::AllTables],
        }
    }

    /// What the stage gives when it has run. [`Slot::ExclusionsTable`] is given only from
    /// record-level input, [`Slot::StratumTables`] only when the recipe asks for them.
    pub fn gives(self) -> &'static [Slot] {
        match self {
            StageKind::Attribution | StageKind::Derivation => &[Slot::ActivityCounts],
            StageKind::Exclusions => &[Slot::Counts, Slot::ExclusionsTable, Slot::StratumTables],
            StageKind::Standardisation => &[Slot::Rates, Slot::NationalRatesTable],
            StageKind::ConfidenceInterval => &[Slot::AreaRatesTable],
            StageKind::Factors => &[Slot::FactorRates],
            StageKind::Ratio => &[Slot::Ratios],
            StageKind::Significance => &[Slot::FactorRatiosTable],
            StageKind::Summary => &[Slot::SummaryTable],
            StageKind::Overdispersion => &[Slot::OverdispersionTables],
            StageKind::DataQuality => &[Slot::DataQualityTables],
            StageKind::PeriodComparison => &[Slot::PeriodComparisonTable],
            StageKind::WaitingTimes => &[Slot::WaitsTables],
            StageKind::SettingShare => &[Slot::SettingShareTables],
            StageKind::DidWaits => &[Slot::DidWaitsTables],
            // Protects the tables in place.
            StageKind::Disclosure => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot a board stage takes is given by some stage kind (or is the pseudo-slot of
    /// every table), so each kind can run in some recipe.
    #[test]
    fn every_slot_taken_is_given_by_some_kind() {
        for kind in StageKind::ALL {
            for slot in kind.takes() {
                let given = *slot == Slot::AllTables
                    || *slot == Slot::QualityCube
                    || *slot == Slot::ProviderMonths
                    || *slot == Slot::WaitingLists
                    || *slot == Slot::SettingActivity
                    || *slot == Slot::WaitDays
                    || StageKind::ALL.iter().any(|k| k.gives().contains(slot));
                assert!(given, "{kind} takes {slot}, which no kind gives");
            }
        }
    }

    #[test]
    fn no_kind_takes_what_it_gives() {
        for kind in StageKind::ALL {
            for slot in kind.takes() {
                assert!(
                    !kind.gives().contains(slot),
                    "{kind} takes and gives {slot}"
                );
            }
        }
    }

    #[test]
    fn table_slots_are_tables() {
        assert!(Slot::SummaryTable.is_table());
        assert!(!Slot::Rates.is_table());
        assert!(!Slot::AllTables.is_table());
    }
}
