//! What a rule plugin contributes to the query `strata sql` generates, so record-level counting
//! can run where the data lives (a warehouse, a Spark cluster) and only stratum counts come back.
//!
//! A plugin answers SQL *expressions* over the columns named below, in the subset every dialect
//! strata targets (DuckDB, Spark SQL, T-SQL) parses alike: `CASE`, comparisons, `IN`, `IS NULL`,
//! string and integer literals. No function calls, no division (T-SQL divides integers, DuckDB and
//! Spark do not), no dialect-specific quoting. The engine does the rest: trimming, value maps,
//! casts, reference lookups, joins and grouping, and it parse-checks the whole text per dialect.
//!
//! A plugin without SQL keeps the trait's default (`None`); `strata sql` then refuses the recipe,
//! naming the plugin.

/// Attribution as two expressions over:
/// - `practice_class`: `'english'`, `'non_english'`, `'missing'` (no code) or `'unknown'` (a code
///   in no list of the year);
/// - `practice_area`: the English practice's area code, else NULL;
/// - `lsoa_area`: the area of the patient's LSOA, NULL when the LSOA is missing, unknown or has
///   no area.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlAttribution {
    /// The record's area code, NULL for none.
    pub area: String,
    /// The record's route: one of [`crate::Route::key`].
    pub route: String,
}

/// Derivations as expressions, each NULL for "not known", over:
/// - `sex_value`: the sex code, trimmed (after the input mapping), NULL when empty;
/// - `age_years`: the age as a whole number, NULL when empty;
/// - `imd_decile`: the IMD decile of the record's LSOA (from the lookup), NULL when none;
/// - `modality_value`: the modality, trimmed (after the input mapping), NULL when empty.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlDerivation {
    /// A category of the plugin's `sex` dimension.
    pub sex: String,
    /// A category of its `age_band` dimension.
    pub age_band: String,
    /// A category of its `imd_quintile` dimension.
    pub imd_quintile: String,
    /// The measure key of the record's modality, NULL for a modality outside the rules (counted
    /// in no measure, and not a standard modality in the data-quality cube). A record with a
    /// modality counts in that measure.
    pub modality_measure: String,
    /// Further measures by exam code: a record counts in `measure` of every row whose
    /// `exam_code` equals its exam code (trimmed, upper case) and whose `modality` equals its
    /// `modality_measure`. Rows are distinct.
    pub exam_measures: Vec<SqlExamMeasure>,
}

/// One row of [`SqlDerivation::exam_measures`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SqlExamMeasure {
    /// Trimmed, upper case.
    pub exam_code: String,
    pub measure: String,
    /// The modality measure key the record must have.
    pub modality: String,
}

/// A SQL string literal: `'` doubled. Plugins quote every value they embed with it (Spark reads a
/// backslash in a literal as an escape: the engine refuses a Spark query holding one).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `column IN ('a', 'b')`, or a false comparison when `values` is empty.
pub fn in_list<'v>(column: &str, values: impl IntoIterator<Item = &'v str>) -> String {
    let items: Vec<String> = values.into_iter().map(literal).collect();
    if items.is_empty() {
        "1 = 0".into()
    } else {
        format!("{column} IN ({})", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("O'Brien"), "'O''Brien'");
        assert_eq!(in_list("x", ["1", "2"]), "x IN ('1', '2')");
        assert_eq!(in_list("x", []), "1 = 0");
    }
}
