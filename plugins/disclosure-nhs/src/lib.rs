//! `disclosure.nhs-sub-national` — the NHS rule for published sub-national counts, with secondary
//! suppression so a suppressed cell cannot be recovered from a published total.
//!
//! **Primary rule**, on each cell of the named count columns: `0` stays `0`; a count from 1 to
//! `suppress_max` (default 7) becomes the text `symbol` (default `*`); any other count is rounded to
//! the nearest `round_to` (default 5), halves away from zero (12 → 10, 13 → 15, 8 → 10).
//!
//! **Presets** (`preset = "…"`, which fixes `suppress_max` and `round_to`; naming either beside it
//! is an error):
//! - `"nhs-england-sub-national"`: NHS England's current rule for sub-national counts: 0 kept,
//!   1–7 suppressed, others rounded to the nearest 5 (the defaults without a preset). Standardised
//!   rates and their confidence limits need no control and are never touched (they are not count
//!   columns).
//! - `"hes-pre-2018"`: the HES Analysis Guide's rule before 2018: 1–5 suppressed, no rounding,
//!   with secondary suppression.
//!
//! **Secondary rule.** A *group* is a set of member cells whose sum is published as a total: one
//! equation total = Σ members. A suppressed cell could be recovered from it when the equation has
//! exactly one unknown: one suppressed member while the total is published (then the group's
//! smallest other non-zero member, by its unrounded value, ties to the first row or column, is
//! suppressed too; if there is none, the total is), or a suppressed total while every member is
//! published (then the smallest non-zero member is suppressed). k ≥ 2 suppressed members are
//! recovered too when the printed cells leave them no more than their least values between them
//! (each is at least 1, since zeros are printed, and a hidden total at least its own members'
//! least, e.g. a sub-ICB with two hidden practices at least 2): the total's largest value (printed value plus what
//! rounding hides) less the published members' smallest. With exact counts that is k ones; with
//! counts rounded to 5, e.g. twelve PCNs of one test each under a sub-ICB total of 12, printed 10
//! (so at most 12). The smallest other non-zero member then joins them; if there is none and the
//! total is printed in another table (`total_published_elsewhere`, e.g. the PCNs of a sub-ICB
//! whose every non-zero cell is hidden), a zero member is hidden too, since nothing else in the
//! table can be: a reader then cannot take a hidden cell to be at least 1. (Zeros are otherwise
//! printed, as the rule keeps them.)
//! This repeats until no group exposes a cell, so that a cell suppressed for one group is checked
//! in every other group it belongs to (a sub-ICB hidden in its ICB's equation is checked against
//! its own practices). `tests/tests/it/disclosure_attack.rs` tries the differencing attack on the
//! results.
//!
//! Totals convention (all optional; without any, only the primary rule applies):
//! - `group_by = "<column>"` or `["<column>", …]`: rows sharing these columns' values form a
//!   group, per count column. Without it, all rows form one group. A table that lacks one of the
//!   columns (one parameter set serves every output table) gets the primary rule only: its rows
//!   have no published total.
//! - `hierarchy = { code = "<column>", parent = "<column>" }`: areas inside areas in one table
//!   (e.g. practices, their sub-ICBs and their ICBs): within a `group_by` key, the rows whose
//!   `parent` is another row's `code` are that row's members and the row is their total. Children
//!   whose parent is not a row form a group only with `total_published_elsewhere`.
//! - `total_row_column = "<column>"` and `total_row_label` (default `"total"`): the row whose text in
//!   that column equals the label (ignoring ASCII case) is its group's total row; the other rows
//!   are its members. At most one total row per group.
//! - `total_published_elsewhere = true`: every row group counts as having a published total even
//!   without a total row (e.g. area counts per measure whose national total is in another table).
//! - `total_column = "<count column>"`: that count column holds each row's total of the other count
//!   columns (e.g. `male`, `female`, `total`): each row is then a group across the count columns.
//!
//! Totals are protected like any other cell (rounded independently, not re-summed). Cells that are
//! already the suppression symbol count as suppressed; other text and missing cells are left alone.
//! A negative or non-finite count is an error naming its row and column. Columns not named as
//! count columns are never changed.
//!
//! Reference: the NHS rule for published sub-national counts as the project applies it (suppress
//! 1–7, round others to the nearest 5); both thresholds are recipe parameters. The publications
//! print rounded counts but state no disclosure rule, so the tests are hand-worked.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use strata_api::{
    Configured, DisclosureMethod, MethodError, ParamError, Params, PluginDescriptor, StageKind,
    Table, Value,
};

pub const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    id: "disclosure.nhs-sub-national",
    stage: StageKind::Disclosure,
    version: env!("CARGO_PKG_VERSION"),
    description: "0 kept, 1-7 suppressed, others rounded to the nearest 5; secondary suppression against published totals",
    configure,
};

fn default_symbol() -> String {
    "*".into()
}
fn default_total_row_label() -> String {
    "total".into()
}

/// A named rule: the thresholds of a published disclosure policy, chosen in the recipe by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Preset {
    /// NHS England's current rule for sub-national counts: 0 kept, 1-7 suppressed, others rounded
    /// to the nearest 5. Standardised rates and their limits need no control.
    #[serde(rename = "nhs-england-sub-national")]
    NhsEnglandSubNational,
    /// The HES Analysis Guide's rule before 2018: 1-5 suppressed, no rounding, with secondary
    /// suppression so a suppressed cell cannot be found by differencing.
    #[serde(rename = "hes-pre-2018")]
    HesPre2018,
}

impl Preset {
    /// (suppress_max, round_to).
    pub fn thresholds(self) -> (u64, u64) {
        match self {
            Preset::NhsEnglandSubNational => (7, 5),
            Preset::HesPre2018 => (5, 1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::NhsEnglandSubNational => "nhs-england-sub-national",
            Preset::HesPre2018 => "hes-pre-2018",
        }
    }
}

/// One column name or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    fn into_vec(self) -> Vec<String> {
        match self {
            Columns::One(c) => vec![c],
            Columns::Many(cs) => cs,
        }
    }
}

/// Rows that are areas inside other rows' areas: a row whose `parent` value is another row's
/// `code` value (within the same `group_by` key) is that row's child, and the parent row's
/// count is the total of its children's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hierarchy {
    pub code: String,
    pub parent: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NhsParams {
    preset: Option<Preset>,
    suppress_max: Option<u64>,
    round_to: Option<u64>,
    #[serde(default = "default_symbol")]
    symbol: String,
    group_by: Option<Columns>,
    total_row_column: Option<String>,
    #[serde(default = "default_total_row_label")]
    total_row_label: String,
    #[serde(default)]
    total_published_elsewhere: bool,
    total_column: Option<String>,
    hierarchy: Option<Hierarchy>,
}

fn configure(params: &Params) -> Result<Configured, ParamError> {
    let method = NhsSubNational::from_params(params.parse()?)?;
    Ok(Configured::Disclosure(Box::new(method)))
}

/// The configured rule.
#[derive(Debug, Clone)]
pub struct NhsSubNational {
    pub preset: Option<Preset>,
    pub suppress_max: f64,
    pub round_to: f64,
    pub symbol: String,
    /// Rows sharing the values of these columns form a group (empty: all rows).
    pub group_by: Vec<String>,
    pub total_row_column: Option<String>,
    pub total_row_label: String,
    pub total_published_elsewhere: bool,
    pub total_column: Option<String>,
    pub hierarchy: Option<Hierarchy>,
}

impl Default for NhsSubNational {
    fn default() -> Self {
        let (suppress_max, round_to) = Preset::NhsEnglandSubNational.thresholds();
        NhsSubNational {
            preset: None,
            suppress_max: suppress_max as f64,
            round_to: round_to as f64,
            symbol: default_symbol(),
            group_by: Vec::new(),
            total_row_column: None,
            total_row_label: default_total_row_label(),
            total_published_elsewhere: false,
            total_column: None,
            hierarchy: None,
        }
    }
}

/// A parent's child rows and, if it is a row of the table, the parent's row.
type Family = (Vec<usize>, Option<usize>);

/// (row, column index) of a cell.
type Cell = (usize, usize);

/// Member cells whose sum is published as `total` (`None`: published in another table).
#[derive(Debug)]
struct Group {
    members: Vec<Cell>,
    total: Option<Cell>,
}

/// What the primary rule knows of one count cell.
#[derive(Debug, Clone, Copy)]
enum CountCell {
    Count(f64),
    Suppressed,
    /// Text or missing: not a count, left alone.
    Other,
}

impl NhsSubNational {
    fn from_params(p: NhsParams) -> Result<Self, ParamError> {
        let (suppress_max, round_to) = match p.preset {
            Some(preset) => {
                for (key, given) in [("suppress_max", p.suppress_max), ("round_to", p.round_to)] {
                    if given.is_some() {
                        return Err(ParamError::new(
                            key,
                            format!(
                                "preset `{}` fixes suppress_max and round_to; drop `{key}` or the preset",
                                preset.name()
                            ),
                        ));
                    }
                }
                preset.thresholds()
            }
            None => {
                let (suppress_max, round_to) = Preset::NhsEnglandSubNational.thresholds();
                (
                    p.suppress_max.unwrap_or(suppress_max),
                    p.round_to.unwrap_or(round_to),
                )
            }
        };
        if round_to == 0 {
            return Err(ParamError::new("round_to", "round_to must be at least 1"));
        }
        if p.symbol.is_empty() {
            return Err(ParamError::new("symbol", "symbol must not be empty"));
        }
        let group_by = p.group_by.map(Columns::into_vec).unwrap_or_default();
        if let Some(h) = &p.hierarchy {
            if h.code == h.parent {
                return Err(ParamError::new(
                    "hierarchy",
                    "hierarchy.code and hierarchy.parent must be different columns",
                ));
            }
            if group_by.iter().any(|c| *c == h.code || *c == h.parent) {
                return Err(ParamError::new(
                    "group_by",
                    "group_by must not name a hierarchy column (children and parent differ in them)",
                ));
            }
        }
        Ok(NhsSubNational {
            preset: p.preset,
            suppress_max: suppress_max as f64,
            round_to: round_to as f64,
            symbol: p.symbol,
            group_by,
            total_row_column: p.total_row_column,
            total_row_label: p.total_row_label,
            total_published_elsewhere: p.total_published_elsewhere,
            total_column: p.total_column,
            hierarchy: p.hierarchy,
        })
    }

    /// The primary rule for one count: `None` when suppressed.
    pub fn primary(&self, count: f64) -> Option<f64> {
        if count == 0.0 {
            Some(0.0)
        } else if count <= self.suppress_max {
            None
        } else {
            // f64::round rounds halves away from zero.
            Some((count / self.round_to).round() * self.round_to)
        }
    }

    fn column(table: &Table, name: &str, what: &str) -> Result<usize, MethodError> {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            MethodError::new(format!(
                "{what} `{name}` is not a column of table `{}`",
                table.name
            ))
        })
    }

    fn key_text(value: &Value) -> String {
        match value {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Missing => String::new(),
        }
    }

    fn groups(&self, table: &Table, count_cols: &[usize]) -> Result<Vec<Group>, MethodError> {
        let mut groups = Vec::new();
        let total_col = match &self.total_column {
            Some(name) => {
                let idx = Self::column(table, name, "total_column")?;
                if !count_cols.contains(&idx) {
                    return Err(MethodError::new(format!(
                        "total_column `{name}` is not one of the count columns of table `{}`",
                        table.name
                    )));
                }
                Some(idx)
            }
            None => None,
        };
        if let Some(total_col) = total_col {
            for row in 0..table.rows.len() {
                groups.push(Group {
                    members: count_cols
                        .iter()
                        .filter(|&&c| c != total_col)
                        .map(|&c| (row, c))
                        .collect(),
                    total: Some((row, total_col)),
                });
            }
        }

        // One parameter set serves every output table; a table without a grouping column (e.g. a
        // list of providers) publishes no total over its rows: primary rule only.
        if self
            .group_by
            .iter()
            .any(|name| !table.columns.iter().any(|c| c == name))
        {
            return Ok(groups);
        }
        let key_cols: Vec<usize> = self
            .group_by
            .iter()
            .map(|name| Self::column(table, name, "group_by"))
            .collect::<Result<_, _>>()?;
        let key_of = |values: &[Value]| -> Vec<String> {
            key_cols
                .iter()
                .map(|&c| Self::key_text(&values[c]))
                .collect()
        };
        if let Some(hierarchy) = &self.hierarchy
            && table.columns.contains(&hierarchy.parent)
        {
            self.hierarchy_groups(table, count_cols, hierarchy, &key_of, &mut groups)?;
        }

        if self.total_row_column.is_none() && !self.total_published_elsewhere {
            return Ok(groups);
        }
        if self.hierarchy.is_some() && self.total_row_column.is_none() {
            // With a hierarchy, `total_published_elsewhere` speaks of the top rows' totals, which
            // `hierarchy_groups` has made.
            return Ok(groups);
        }
        let marker_col = match &self.total_row_column {
            Some(name) => Some(Self::column(table, name, "total_row_column")?),
            None => None,
        };
        // Group key → (member rows, total row).
        let mut row_groups: BTreeMap<Vec<String>, (Vec<usize>, Option<usize>)> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            let key = key_of(values);
            let is_total = marker_col.is_some_and(|c| {
                matches!(&values[c], Value::Text(t) if t.eq_ignore_ascii_case(&self.total_row_label))
            });
            let entry = row_groups.entry(key.clone()).or_default();
            if is_total {
                if entry.1.is_some() {
                    return Err(MethodError::new(format!(
                        "table `{}` has more than one total row in group `{}`",
                        table.name,
                        key.join(", ")
                    )));
                }
                entry.1 = Some(row);
            } else {
                entry.0.push(row);
            }
        }
        for (members, total_row) in row_groups.into_values() {
            if total_row.is_none() && !self.total_published_elsewhere {
                continue;
            }
            for &col in count_cols {
                groups.push(Group {
                    members: members.iter().map(|&r| (r, col)).collect(),
                    total: total_row.map(|r| (r, col)),
                });
            }
        }
        Ok(groups)
    }

    /// The cell to suppress next so that `group`'s equation (total = Σ members) does not give
    /// away a suppressed cell, if it would: exactly one unknown (a member while the total is
    /// published, or the total while every member is), or suppressed members that the printed
    /// cells show are all 1 ([`Self::hidden_sum_at_most`]). With no published non-zero member
    /// left and the total in another table, a zero member is hidden: then a hidden cell may be
    /// 0, and no count of hidden cells pins them.
    fn exposed(
        &self,
        group: &Group,
        cells: &BTreeMap<Cell, CountCell>,
        suppressed: &BTreeSet<Cell>,
        children: &BTreeMap<Cell, &Group>,
    ) -> Option<Cell> {
        let total_hidden = group.total.is_some_and(|t| suppressed.contains(&t));
        let hidden: Vec<&Cell> = group
            .members
            .iter()
            .filter(|m| suppressed.contains(m))
            .collect();
        // The smallest published non-zero member (by its unrounded value; ties to the first).
        let complement = || {
            group
                .members
                .iter()
                .filter(|m| !suppressed.contains(m))
                .filter_map(|m| match cells.get(m) {
                    Some(CountCell::Count(n)) if *n > 0.0 => Some((*m, *n)),
                    _ => None,
                })
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .map(|(cell, _)| cell)
        };
        // Members hidden, total published (here or in another table).
        let members_exposed = !total_hidden
            && match hidden.len() {
                0 => false,
                1 => true,
                // A hidden zero (hidden before, below) leaves the reader no lower bound of 1.
                // k ≥ 2: the hidden members are pinned when they can sum to no more than their
                // least values do (each at least 1, or its own hidden children's least).
                _ => {
                    !hidden
                        .iter()
                        .any(|m| matches!(cells.get(*m), Some(CountCell::Count(n)) if *n == 0.0))
                        && self
                            .hidden_sum_at_most(group, cells, suppressed)
                            .is_some_and(|most| {
                                let least: f64 = hidden
                                    .iter()
                                    .map(|m| self.hidden_least(**m, cells, suppressed, children, 0))
                                    .sum();
                                most <= least
                            })
                }
            };
        if members_exposed {
            // With no published non-zero member left to hide, the total goes if it is in this
            // table; if it is printed elsewhere, a zero member (the first) is hidden with them.
            let zero = || {
                group.members.iter().copied().find(|m| {
                    !suppressed.contains(m)
                        && matches!(cells.get(m), Some(CountCell::Count(n)) if *n == 0.0)
                })
            };
            return complement()
                .or(group.total.filter(|t| !suppressed.contains(t)))
                .or_else(|| group.total.is_none().then(zero).flatten());
        }
        if total_hidden && hidden.is_empty() {
            return complement();
        }
        None
    }

    /// The most the group's hidden members can sum to, as a reader of the published cells works
    /// it out: the total's largest value (its printed value plus what rounding hides; a total
    /// published elsewhere is the members' sum under this rule; one this rule suppresses is taken
    /// as known exactly) less each published
    /// member's smallest. When this is at most the hidden members' least values summed
    /// ([`Self::hidden_least`]) they are recovered: with exact counts, k ones; with rounded ones,
    /// e.g. twelve ones whose total 12 is printed 10 (at most 12). `None` when a cell's value is
    /// not known here (already suppressed on input).
    fn hidden_sum_at_most(
        &self,
        group: &Group,
        cells: &BTreeMap<Cell, CountCell>,
        suppressed: &BTreeSet<Cell>,
    ) -> Option<f64> {
        let half = self.round_to / 2.0;
        let value = |cell: &Cell| match cells.get(cell) {
            Some(CountCell::Count(n)) => Some(*n),
            _ => None,
        };
        let total = match group.total {
            Some(t) => value(&t)?,
            None => group.members.iter().map(value).sum::<Option<f64>>()?,
        };
        // A total the rule suppresses is taken as known (another table may print it): the
        // cautious reading.
        let total_most = match self.primary(total) {
            Some(printed) => (printed + half - 1e-9).floor().max(printed),
            None => total,
        };
        let mut published_least = 0.0;
        for member in group.members.iter().filter(|m| !suppressed.contains(m)) {
            published_least += self.least_of_printed(self.primary(value(member)?)?);
        }
        Some(total_most - published_least)
    }

    /// The least a reader takes a printed count to be: what rounding may have raised, but no
    /// less than the smallest count the rule prints (0 stays 0).
    fn least_of_printed(&self, printed: f64) -> f64 {
        if printed > 0.0 {
            (printed - self.round_to / 2.0)
                .ceil()
                .min(printed)
                .max(self.suppress_max + 1.0)
        } else {
            0.0
        }
    }

    /// The least a reader of the published cells can tell a hidden cell is: 1 (zeros are printed),
    /// or more when it is a total whose members are partly printed or are hidden totals in turn
    /// (a sub-ICB with two hidden practices is at least 2). A hidden zero is at least 0.
    fn hidden_least(
        &self,
        cell: Cell,
        cells: &BTreeMap<Cell, CountCell>,
        suppressed: &BTreeSet<Cell>,
        children: &BTreeMap<Cell, &Group>,
        depth: usize,
    ) -> f64 {
        if matches!(cells.get(&cell), Some(CountCell::Count(n)) if *n == 0.0) {
            return 0.0;
        }
        // A hierarchy is a few levels deep; the bound stops a cycle of parent codes.
        let Some(group) = children.get(&cell).filter(|_| depth < 16) else {
            return 1.0;
        };
        let members: f64 = group
            .members
            .iter()
            .map(|m| match cells.get(m) {
                _ if suppressed.contains(m) => {
                    self.hidden_least(*m, cells, suppressed, children, depth + 1)
                }
                Some(CountCell::Count(n)) => {
                    self.primary(*n).map_or(0.0, |p| self.least_of_printed(p))
                }
                _ => 0.0,
            })
            .sum();
        members.max(1.0)
    }

    /// The groups a hierarchy makes: each row's children (rows naming it as parent, same key) with
    /// the row as their total; children whose parent is not a row of the table form a group whose
    /// total is published elsewhere when `total_published_elsewhere`, else none.
    fn hierarchy_groups(
        &self,
        table: &Table,
        count_cols: &[usize],
        hierarchy: &Hierarchy,
        key_of: &dyn Fn(&[Value]) -> Vec<String>,
        groups: &mut Vec<Group>,
    ) -> Result<(), MethodError> {
        let code_col = Self::column(table, &hierarchy.code, "hierarchy.code")?;
        let parent_col = Self::column(table, &hierarchy.parent, "hierarchy.parent")?;
        // (key, code) → row.
        let mut row_of: BTreeMap<(Vec<String>, String), usize> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            let code = Self::key_text(&values[code_col]);
            if row_of.insert((key_of(values), code.clone()), row).is_some() {
                return Err(MethodError::new(format!(
                    "table `{}` row {}: `{}` = `{code}` appears twice in one group, so its \
                     children's total is ambiguous",
                    table.name,
                    row + 1,
                    hierarchy.code
                )));
            }
        }
        // (key, parent code) → (children, parent row).
        let mut families: BTreeMap<(Vec<String>, String), Family> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            let parent = match &values[parent_col] {
                Value::Missing => continue,
                Value::Text(t) if t.is_empty() => continue,
                other => Self::key_text(other),
            };
            let key = (key_of(values), parent);
            let total = row_of.get(&key).copied();
            let entry = families.entry(key).or_insert((Vec::new(), total));
            entry.0.push(row);
        }
        for (children, parent_row) in families.into_values() {
            if parent_row.is_none() && !self.total_published_elsewhere {
                continue;
            }
            for &col in count_cols {
                groups.push(Group {
                    members: children.iter().map(|&r| (r, col)).collect(),
                    total: parent_row.map(|r| (r, col)),
                });
            }
        }
        Ok(())
    }
}

impl DisclosureMethod for NhsSubNational {
    fn method_name(&self) -> String {
        let rule = if self.round_to == 1.0 {
            format!("1-{} suppressed, no rounding", self.suppress_max)
        } else {
            format!(
                "1-{} suppressed, others rounded to {}",
                self.suppress_max, self.round_to
            )
        };
        match self.preset {
            Some(preset) => format!("{}: {rule}, secondary suppression", preset.name()),
            None => format!("nhs sub-national: {rule}, secondary suppression"),
        }
    }

    fn protect(&self, table: &mut Table, count_columns: &[String]) -> Result<usize, MethodError> {
        let count_cols: Vec<usize> = count_columns
            .iter()
            .map(|name| Self::column(table, name, "count column"))
            .collect::<Result<_, _>>()?;
        for (row, values) in table.rows.iter().enumerate() {
            if values.len() != table.columns.len() {
                return Err(MethodError::new(format!(
                    "table `{}` row {} has {} values for {} columns",
                    table.name,
                    row + 1,
                    values.len(),
                    table.columns.len()
                )));
            }
        }

        let mut cells: BTreeMap<Cell, CountCell> = BTreeMap::new();
        for (row, values) in table.rows.iter().enumerate() {
            for &col in &count_cols {
                let cell = match &values[col] {
                    Value::Number(n) if !n.is_finite() || *n < 0.0 => {
                        return Err(MethodError::new(format!(
                            "table `{}` row {} column `{}`: {n} is not a count",
                            table.name,
                            row + 1,
                            table.columns[col]
                        )));
                    }
                    Value::Number(n) => CountCell::Count(*n),
                    Value::Text(t) if *t == self.symbol => CountCell::Suppressed,
                    Value::Text(_) | Value::Missing => CountCell::Other,
                };
                cells.insert((row, col), cell);
            }
        }

        let mut suppressed: BTreeSet<Cell> = cells
            .iter()
            .filter(|(_, c)| match c {
                CountCell::Count(n) => self.primary(*n).is_none(),
                CountCell::Suppressed => true,
                CountCell::Other => false,
            })
            .map(|(&cell, _)| cell)
            .collect();

        let groups = self.groups(table, &count_cols)?;
        // Each group's total, to the group: what a hidden total's own members tell of it.
        let children: BTreeMap<Cell, &Group> = groups
            .iter()
            .filter_map(|g| g.total.map(|t| (t, g)))
            .collect();
        // Each pass suppresses at least one more cell, so this ends.
        loop {
            let mut added = false;
            for group in &groups {
                if let Some(cell) = self.exposed(group, &cells, &suppressed, &children) {
                    added |= suppressed.insert(cell);
                }
            }
            if !added {
                break;
            }
        }

        let mut changed = 0;
        for (&(row, col), cell) in &cells {
            let new_value = if suppressed.contains(&(row, col)) {
                Value::Text(self.symbol.clone())
            } else {
                match cell {
                    CountCell::Count(n) => match self.primary(*n) {
                        Some(v) => Value::Number(v),
                        None => Value::Text(self.symbol.clone()),
                    },
                    CountCell::Suppressed | CountCell::Other => continue,
                }
            };
            let slot = &mut table.rows[row][col];
            if *slot != new_value {
                *slot = new_value;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn star() -> Value {
        Value::Text("*".into())
    }
    fn num(n: f64) -> Value {
        Value::Number(n)
    }
    fn text(t: &str) -> Value {
        Value::Text(t.into())
    }

    fn method(toml: &str) -> NhsSubNational {
        let params = Params::from_toml_str(toml).expect("valid toml");
        NhsSubNational::from_params(params.parse().expect("parses")).expect("valid params")
    }

    fn counts(name: &str, values: &[f64]) -> Table {
        let mut t = Table::new(name, "test", &["area", "tests"]);
        for (i, v) in values.iter().enumerate() {
            t.rows.push(vec![text(&format!("A{i}")), num(*v)]);
        }
        t
    }

    fn column(t: &Table, col: usize) -> Vec<Value> {
        t.rows.iter().map(|r| r[col].clone()).collect()
    }

    #[test]
    fn primary_rule_at_the_boundaries() {
        let m = NhsSubNational::default();
        assert_eq!(m.primary(0.0), Some(0.0));
        assert_eq!(m.primary(1.0), None);
        assert_eq!(m.primary(7.0), None);
        assert_eq!(m.primary(8.0), Some(10.0));
        assert_eq!(m.primary(12.0), Some(10.0));
        assert_eq!(m.primary(13.0), Some(15.0));
        assert_eq!(m.primary(415_002.0), Some(415_000.0));
    }

    #[test]
    fn primary_rule_on_a_table_without_totals() {
        let m = NhsSubNational::default();
        let mut t = counts("t", &[0.0, 1.0, 7.0, 8.0, 12.0, 13.0, 15.0]);
        let changed = m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 1),
            [
                num(0.0),
                star(),
                star(),
                num(10.0),
                num(10.0),
                num(15.0),
                num(15.0)
            ]
        );
        // 0 and 15 are unchanged.
        assert_eq!(changed, 5);
        // Without a totals convention one suppressed cell stays alone.
        let mut single = counts("t", &[3.0, 40.0, 50.0]);
        m.protect(&mut single, &["tests".into()]).expect("protects");
        assert_eq!(column(&single, 1), [star(), num(40.0), num(50.0)]);
    }

    #[test]
    fn non_count_columns_are_untouched() {
        let m = NhsSubNational::default();
        let mut t = Table::new("t", "test", &["area", "tests", "rate"]);
        t.rows.push(vec![text("A"), num(3.0), num(3.0)]);
        t.rows.push(vec![num(2.0), num(12.0), num(12.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(t.rows[0], [text("A"), star(), num(3.0)]);
        assert_eq!(t.rows[1], [num(2.0), num(10.0), num(12.0)]);
    }

    #[test]
    fn total_row_forces_a_second_suppression() {
        // measure, area, tests: area B (3) is suppressed; with the xray total 163 published it
        // would be 163 − 100 − 60 = 3, so the next smallest, C (60), is suppressed too.
        let m = method("group_by = \"measure\"\ntotal_row_column = \"area\"");
        let mut t = Table::new("t", "test", &["measure", "area", "tests"]);
        for (measure, area, tests) in [
            ("xray", "A", 100.0),
            ("xray", "B", 3.0),
            ("xray", "C", 60.0),
            ("xray", "Total", 163.0),
            ("ct", "A", 30.0),
            ("ct", "B", 20.0),
            ("ct", "C", 25.0),
            ("ct", "Total", 75.0),
        ] {
            t.rows.push(vec![text(measure), text(area), num(tests)]);
        }
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 2),
            [
                num(100.0),
                star(),
                star(),
                num(165.0),
                num(30.0),
                num(20.0),
                num(25.0),
                num(75.0)
            ]
        );
        // No single suppressed cell is left in a group with a published total.
        let xray_hidden = t.rows[..3].iter().filter(|r| r[2] == star()).count();
        assert_eq!(xray_hidden, 2);
    }

    #[test]
    fn two_suppressed_cells_need_nothing_more() {
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[2.0, 5.0, 40.0]);
        t.rows.push(vec![text("total"), num(47.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [star(), star(), num(40.0), num(45.0)]);
    }

    #[test]
    fn zeros_are_not_used_as_the_complement() {
        // The only other non-zero member is 50; the zero stays published.
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[0.0, 4.0, 50.0]);
        t.rows.push(vec![text("TOTAL"), num(54.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [num(0.0), star(), star(), num(55.0)]);
    }

    #[test]
    fn lone_member_suppresses_the_total() {
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[0.0, 6.0]);
        // An inconsistent total (rounded elsewhere) must not reveal the 6.
        t.rows.push(vec![text("total"), num(9.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [num(0.0), star(), star()]);
    }

    #[test]
    fn total_published_elsewhere() {
        let m = method("group_by = \"measure\"\ntotal_published_elsewhere = true");
        let mut t = Table::new("t", "test", &["measure", "area", "tests"]);
        for (measure, area, tests) in [
            ("mri", "A", 5.0),
            ("mri", "B", 90.0),
            ("mri", "C", 30.0),
            ("pet", "A", 9.0),
            ("pet", "B", 11.0),
        ] {
            t.rows.push(vec![text(measure), text(area), num(tests)]);
        }
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 2),
            [star(), num(90.0), star(), num(10.0), num(10.0)]
        );
    }

    #[test]
    fn total_column_and_total_row_together() {
        // Rows: areas; columns male, female, total; last row the total row.
        //        male female total
        //   A      3    40    43
        //   B     20    30    50
        //   total 23    70    93
        // Row A: male 3 suppressed → female 40 (row complement) suppressed.
        // Column male: A suppressed → B male 20 suppressed.
        // Column female: A suppressed → B female 30 suppressed. Row B now has two: fine.
        let m = method("total_row_column = \"area\"\ntotal_column = \"total\"");
        let mut t = Table::new("t", "test", &["area", "male", "female", "total"]);
        t.rows.push(vec![text("A"), num(3.0), num(40.0), num(43.0)]);
        t.rows
            .push(vec![text("B"), num(20.0), num(30.0), num(50.0)]);
        t.rows
            .push(vec![text("total"), num(23.0), num(70.0), num(93.0)]);
        let cols: Vec<String> = ["male", "female", "total"].map(String::from).to_vec();
        m.protect(&mut t, &cols).expect("protects");
        assert_eq!(t.rows[0], [text("A"), star(), star(), num(45.0)]);
        assert_eq!(t.rows[1], [text("B"), star(), star(), num(50.0)]);
        assert_eq!(t.rows[2], [text("total"), num(25.0), num(70.0), num(95.0)]);
        // Every row and column group now has zero or at least two suppressed members.
        for row in &t.rows {
            let hidden = row[1..3].iter().filter(|v| **v == star()).count();
            assert_ne!(hidden, 1);
        }
        for col in 1..4 {
            let hidden = t.rows[..2].iter().filter(|r| r[col] == star()).count();
            assert_ne!(hidden, 1);
        }
    }

    #[test]
    fn presets() {
        let hes = method("preset = \"hes-pre-2018\"");
        assert_eq!((hes.suppress_max, hes.round_to), (5.0, 1.0));
        assert_eq!(hes.primary(5.0), None);
        assert_eq!(hes.primary(6.0), Some(6.0));
        assert_eq!(hes.primary(13.0), Some(13.0));
        assert_eq!(hes.primary(0.0), Some(0.0));
        assert!(
            hes.method_name()
                .starts_with("hes-pre-2018: 1-5 suppressed, no rounding")
        );
        let nhs = method("preset = \"nhs-england-sub-national\"");
        assert_eq!((nhs.suppress_max, nhs.round_to), (7.0, 5.0));
        assert_eq!(nhs.primary(8.0), Some(10.0));
        let err = configure(
            &Params::from_toml_str("preset = \"hes-pre-2018\"\nround_to = 5").expect("toml"),
        )
        .err()
        .expect("refused");
        assert_eq!(err.key.as_deref(), Some("round_to"));
        let err = configure(&Params::from_toml_str("preset = \"hes-2024\"").expect("toml"))
            .err()
            .expect("refused");
        assert_eq!(err.key.as_deref(), Some("preset"));
    }

    /// A table of areas at three levels: ICB X; sub-ICBs A, B, C in X; practices in each.
    fn tree(rows: &[(&str, &str, f64)]) -> Table {
        let mut t = Table::new(
            "t",
            "test",
            &["measure", "area_code", "parent_code", "tests"],
        );
        for (area, parent, tests) in rows {
            let parent = if parent.is_empty() {
                Value::Missing
            } else {
                text(parent)
            };
            t.rows
                .push(vec![text("ct"), text(area), parent, num(*tests)]);
        }
        t
    }

    #[test]
    fn hierarchy_hides_a_parent_recoverable_from_its_children() {
        // X = A + B + C = 55 + 50 + 4. C (4) is suppressed, so in X's equation the smallest other
        // sub-ICB, B (50), goes too. B's practices (20, 30) are published, so B could be summed
        // back and C found as X − A − B: B's smallest practice, b1 (20), goes too (B and b1 are
        // then two unknowns of B's equation). In A, a1 (3) is suppressed and a3 (12), the
        // smallest other, goes with it. C and c1 (4) are two unknowns of C's equation.
        let m = method(
            "preset = \"hes-pre-2018\"\ngroup_by = \"measure\"\nhierarchy = { code = \"area_code\", parent = \"parent_code\" }",
        );
        let mut t = tree(&[
            ("X", "", 109.0),
            ("A", "X", 55.0),
            ("B", "X", 50.0),
            ("C", "X", 4.0),
            ("a1", "A", 3.0),
            ("a2", "A", 40.0),
            ("a3", "A", 12.0),
            ("b1", "B", 20.0),
            ("b2", "B", 30.0),
            ("c1", "C", 4.0),
            ("c2", "C", 0.0),
        ]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 3),
            [
                num(109.0),
                num(55.0),
                star(),
                star(),
                star(),
                num(40.0),
                star(),
                star(),
                num(30.0),
                star(),
                num(0.0)
            ]
        );
    }

    #[test]
    fn ones_that_sum_to_their_number_are_hidden_with_another() {
        // a1 = a2 = 1 under the HES rule: A − a3 = 2 with both ≥ 1 gives both away, so a3 goes.
        let m = method(
            "preset = \"hes-pre-2018\"\nhierarchy = { code = \"area_code\", parent = \"parent_code\" }",
        );
        let mut t = tree(&[
            ("A", "", 32.0),
            ("a1", "A", 1.0),
            ("a2", "A", 1.0),
            ("a3", "A", 30.0),
        ]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 3), [num(32.0), star(), star(), star()]);
        // Under rounding the sum is not known exactly: two ones stay the only suppressions.
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[1.0, 1.0, 30.0]);
        t.rows.push(vec![text("total"), num(32.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [star(), star(), num(30.0), num(30.0)]);
    }

    #[test]
    fn a_hidden_total_counts_at_least_its_hidden_members() {
        // The random-tree attack's case: X = 9, S0 = 6 printed, so S1 + S2 = 3 with S1 ≥ 1 and
        // S2 ≥ 2 (its two hidden practices are at least 1 each): S1 = 1, S2 = 2, P20 = P21 = 1.
        // So S0 goes (the smallest printed member of X), and then P00, its only member.
        let m = method(
            "preset = \"hes-pre-2018\"\nhierarchy = { code = \"area_code\", parent = \"parent_code\" }",
        );
        let mut t = tree(&[
            ("X", "", 9.0),
            ("S0", "X", 6.0),
            ("P00", "S0", 6.0),
            ("S1", "X", 1.0),
            ("P10", "S1", 1.0),
            ("S2", "X", 2.0),
            ("P20", "S2", 1.0),
            ("P21", "S2", 1.0),
        ]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        let shown = column(&t, 3);
        assert_eq!(shown[0], num(9.0), "the top total stays");
        assert_eq!(shown[1], star(), "S0 hides S1 and S2 in X");
        assert_eq!(shown[2], star(), "P00 would give S0 back");
    }

    #[test]
    fn rounded_cells_that_pin_hidden_ones_are_hidden_too() {
        // Four ones and an 8 under a total of 12: printed 10 and 10, so the total is at most 12
        // and the 8 at least 8, leaving the four hidden cells at most 4: all 1. The 8 goes too.
        let m = method("total_row_column = \"area\"");
        let mut t = counts("t", &[1.0, 1.0, 1.0, 1.0, 8.0]);
        t.rows.push(vec![text("total"), num(12.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 1),
            [star(), star(), star(), star(), star(), num(10.0)]
        );
        // A total of 13 (printed 15, at most 17) leaves them at most 9: nothing more to hide.
        let mut t = counts("t", &[1.0, 1.0, 1.0, 1.0, 9.0]);
        t.rows.push(vec![text("total"), num(13.0)]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(
            column(&t, 1),
            [star(), star(), star(), star(), num(10.0), num(15.0)]
        );
    }

    #[test]
    fn hidden_ones_with_nothing_else_to_hide_take_a_zero_with_them() {
        // Twelve ones and two zeros whose total, 12, is printed elsewhere as 10 (at most 12):
        // the ones are all 1 and no non-zero cell is left, so the first zero is hidden.
        let m = method("total_published_elsewhere = true");
        let mut values = vec![1.0; 12];
        values.extend([0.0, 0.0]);
        let mut t = counts("t", &values);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        let mut want = vec![star(); 13];
        want.push(num(0.0));
        assert_eq!(column(&t, 1), want);
        // Eleven ones (total 11, printed 10, at most 12): not pinned, zeros stay.
        let mut values = vec![1.0; 11];
        values.extend([0.0, 0.0]);
        let mut t = counts("t", &values);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        let mut want = vec![star(); 11];
        want.extend([num(0.0), num(0.0)]);
        assert_eq!(column(&t, 1), want);
    }

    #[test]
    fn other_params() {
        let m = method("suppress_max = 4\nround_to = 10\nsymbol = \"c\"");
        let mut t = counts("t", &[4.0, 5.0, 15.0, 24.0]);
        m.protect(&mut t, &["tests".into()]).expect("protects");
        assert_eq!(column(&t, 1), [text("c"), num(10.0), num(20.0), num(20.0)]);
    }

    #[test]
    fn errors() {
        let m = NhsSubNational::default();
        let mut t = counts("t", &[-1.0]);
        let err = m.protect(&mut t, &["tests".into()]).unwrap_err();
        assert!(
            err.message.contains("row 1") && err.message.contains("tests"),
            "{err}"
        );
        let err = m
            .protect(&mut counts("t", &[1.0]), &["n".into()])
            .unwrap_err();
        assert!(err.message.contains("`n`"), "{err}");
        // A table without the grouping column gets the primary rule only.
        let m = method("group_by = \"measure\"\ntotal_published_elsewhere = true");
        let mut t = counts("t", &[1.0, 20.0]);
        assert_eq!(m.protect(&mut t, &["tests".into()]).unwrap(), 1);
        assert_eq!(t.rows[1][1], Value::Number(20.0));
        let bad = |toml: &str| {
            configure(&Params::from_toml_str(toml).expect("toml"))
                .err()
                .expect("refused")
                .key
        };
        assert_eq!(bad("round_to = 0").as_deref(), Some("round_to"));
        assert_eq!(bad("suppress_max = -1").as_deref(), Some("suppress_max"));
        assert_eq!(bad("groupby = \"x\"").as_deref(), Some("groupby"));
    }
}
