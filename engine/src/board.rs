//! The board a run's stages take from and give to, and the order they run in.
//!
//! Each stage kind declares the [`Slot`]s it takes and gives (`strata_api::slots`); a run puts
//! what its source gives on the board (activity counts always, the data-quality cube from
//! record-level input) and runs, again and again, the first configured stage whose slots are all
//! there. No stage order is written in the engine: the slots decide it, and ties go to
//! [`StageKind::ALL`]'s order so a run is the same every time.
//!
//! Invariant: a slot is given once; a stage runs once, after everything it takes.

use std::collections::{BTreeMap, BTreeSet};

use strata_api::{
    FactorRates, QualityInput, RatioValue, Slot, StageKind, StandardisedRates, StratifiedCounts,
    Table,
};

/// What the stages have given so far.
pub struct Board {
    /// What the reading pass (or the aggregated entry) counted, with `unknown` categories; none
    /// in a recipe with no activity for standardised rates.
    pub activity_counts: Option<StratifiedCounts>,
    pub quality: Option<QualityInput>,
    /// Tests by provider × month × measure, for a period comparison.
    pub provider_months: Option<crate::periods::ProviderMonths>,
    /// DM01 waiting lists, for waiting times.
    pub waiting_lists: Option<strata_api::WaitingListInput>,
    /// A setting's activity by site (community diagnostic centres), for setting shares.
    pub setting_activity: Option<crate::cdc::SettingActivity>,
    /// Days between record dates, for DID waits.
    pub wait_days: Option<strata_api::DidWaitsInput>,
    pub counts: Option<StratifiedCounts>,
    pub rates: Option<StandardisedRates>,
    pub factor_rates: Option<FactorRates>,
    pub ratios: Option<Vec<RatioValue>>,
    /// The ratio method's confidence limits of those ratios, one per level; empty when the
    /// recipe asks for none (given with [`Slot::Ratios`]).
    pub ratio_limits: Vec<strata_api::Limits>,
    /// Output tables by the slot that holds them.
    pub tables: BTreeMap<Slot, Vec<Table>>,
}

impl Board {
    pub fn new(
        activity_counts: Option<StratifiedCounts>,
        quality: Option<QualityInput>,
        provider_months: Option<crate::periods::ProviderMonths>,
    ) -> Board {
        Board {
            activity_counts,
            quality,
            provider_months,
            waiting_lists: None,
            setting_activity: None,
            wait_days: None,
            counts: None,
            rates: None,
            factor_rates: None,
            ratios: None,
            ratio_limits: Vec::new(),
            tables: BTreeMap::new(),
        }
    }

    /// The slots on the board now.
    pub fn given(&self) -> BTreeSet<Slot> {
        let mut given = BTreeSet::new();
        let values = [
            (Slot::ActivityCounts, self.activity_counts.is_some()),
            (Slot::QualityCube, self.quality.is_some()),
            (Slot::ProviderMonths, self.provider_months.is_some()),
            (Slot::WaitingLists, self.waiting_lists.is_some()),
            (Slot::SettingActivity, self.setting_activity.is_some()),
            (Slot::WaitDays, self.wait_days.is_some()),
            (Slot::Counts, self.counts.is_some()),
            (Slot::Rates, self.rates.is_some()),
            (Slot::FactorRates, self.factor_rates.is_some()),
            (Slot::Ratios, self.ratios.is_some()),
        ];
        given.extend(values.into_iter().filter(|(_, v)| *v).map(|(s, _)| s));
        given.extend(self.tables.keys().copied());
        given
    }

    /// Puts a stage's tables in their slot.
    pub fn give_tables(&mut self, slot: Slot, tables: Vec<Table>) {
        self.tables.entry(slot).or_default().extend(tables);
    }

    pub fn tables_mut(&mut self) -> impl Iterator<Item = &mut Table> {
        self.tables.values_mut().flatten()
    }
}

/// The order `kinds` run in when the source gives `given`, and the kinds that can never run
/// with what the others give, each with the slots it lacks.
///
/// A kind that takes [`Slot::AllTables`] runs only when no other kind can.
pub fn schedule(
    kinds: &[StageKind],
    given: &BTreeSet<Slot>,
) -> (Vec<StageKind>, Vec<(StageKind, Vec<Slot>)>) {
    let mut given = given.clone();
    let mut waiting: Vec<StageKind> = StageKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k) && !k.in_reader())
        .collect();
    let mut order = Vec::new();
    let ready = |kind: &StageKind, given: &BTreeSet<Slot>, last: bool| {
        kind.takes()
            .iter()
            .all(|s| given.contains(s) || (*s == Slot::AllTables && last))
    };
    loop {
        let next = waiting
            .iter()
            .position(|k| ready(k, &given, false))
            .or_else(|| waiting.iter().position(|k| ready(k, &given, true)));
        let Some(i) = next else { break };
        let kind = waiting.remove(i);
        given.extend(kind.gives().iter().copied());
        order.push(kind);
    }
    let stuck = waiting
        .into_iter()
        .map(|k| {
            let lacking = k
                .takes()
                .iter()
                .copied()
                .filter(|s| !given.contains(s) && *s != Slot::AllTables)
                .collect();
            (k, lacking)
        })
        .collect();
    (order, stuck)
}

/// The kinds that give `slot`.
pub fn givers(slot: Slot) -> Vec<StageKind> {
    StageKind::ALL
        .into_iter()
        .filter(|k| k.gives().contains(&slot))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use StageKind::*;

    fn record_level() -> BTreeSet<Slot> {
        BTreeSet::from([
            Slot::ActivityCounts,
            Slot::QualityCube,
            Slot::ProviderMonths,
            Slot::WaitingLists,
            Slot::SettingActivity,
            Slot::WaitDays,
        ])
    }

    #[test]
    fn the_publications_stages_run_in_spec_order_with_disclosure_last() {
        let kinds = StageKind::ALL;
        let (order, stuck) = schedule(&kinds, &record_level());
        assert!(stuck.is_empty(), "{stuck:?}");
        assert_eq!(
            order,
            [
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
                Disclosure
            ]
        );
    }

    #[test]
    fn the_order_does_not_depend_on_the_order_kinds_are_named() {
        let mut kinds = StageKind::ALL.to_vec();
        kinds.reverse();
        assert_eq!(
            schedule(&kinds, &record_level()).0,
            schedule(&StageKind::ALL, &record_level()).0
        );
    }

    #[test]
    fn a_stage_whose_input_no_stage_gives_is_stuck_naming_the_slot() {
        let (order, stuck) = schedule(&[Standardisation, ConfidenceInterval], &record_level());
        assert!(order.is_empty());
        assert_eq!(
            stuck,
            [
                (Standardisation, vec![Slot::Counts]),
                (ConfidenceInterval, vec![Slot::Counts, Slot::Rates])
            ]
        );
        assert_eq!(givers(Slot::Counts), [Exclusions]);
    }

    #[test]
    fn data_quality_cannot_run_without_record_level_input() {
        let counts_only = BTreeSet::from([Slot::ActivityCounts]);
        let (order, stuck) = schedule(&[Exclusions, DataQuality, Disclosure], &counts_only);
        assert_eq!(order, [Exclusions, Disclosure]);
        assert_eq!(stuck, [(DataQuality, vec![Slot::QualityCube])]);
    }

    #[test]
    fn a_period_comparison_runs_on_provider_months_alone() {
        let monthly = BTreeSet::from([Slot::ProviderMonths]);
        let (order, stuck) = schedule(&[PeriodComparison, Disclosure, Exclusions], &monthly);
        assert_eq!(order, [PeriodComparison, Disclosure]);
        assert_eq!(stuck, [(Exclusions, vec![Slot::ActivityCounts])]);
    }

    #[test]
    fn area_rates_alone_need_no_factor_stages() {
        let kinds = [Exclusions, Standardisation, ConfidenceInterval];
        let (order, stuck) = schedule(&kinds, &record_level());
        assert_eq!(order, kinds);
        assert!(stuck.is_empty());
    }
}
