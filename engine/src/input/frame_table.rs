//! A table handed over in memory (Arrow record batches, e.g. a polars or pandas DataFrame from
//! Python) read as the CSV readers read a file: every column as text, so the population and
//! aggregated-counts readers apply the same checks and name the same row and column in their
//! errors, with the frame's label in place of a file name.
//!
//! Text is what a CSV export of the frame would hold: integers in decimal, whole floats without a
//! fraction (pandas makes an integer column float when it has a missing value), other floats as
//! Rust prints them, dictionary (categorical) columns as their values, nulls as empty cells.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use super::{TextTable, check_unique_header};
use crate::error::{Error, Result};

impl TextTable {
    /// A frame's batches as a text table named `label`, checking that the required columns exist
    /// and that no column is named twice.
    pub fn from_batches(
        label: &Path,
        batches: &[RecordBatch],
        required: &[&str],
    ) -> Result<TextTable> {
        let names: Vec<String> = match batches.first() {
            Some(b) => b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            None => Vec::new(),
        };
        check_unique_header(label, &names)?;
        for c in required {
            if !names.iter().any(|n| n == c) {
                return Err(Error::data_hint(
                    label,
                    None,
                    Some(c),
                    format!("required column missing (found: {})", names.join(", ")),
                    "name the frame's columns as the data contract in SPEC §3 does",
                ));
            }
        }
        let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        for batch in batches {
            if batch.num_columns() != names.len() {
                return Err(Error::data(
                    label,
                    None,
                    None,
                    "the frame's batches do not share one set of columns".into(),
                ));
            }
            let columns = batch
                .columns()
                .iter()
                .zip(&names)
                .map(|(c, name)| column_text(label, name, c.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            for row in 0..batch.num_rows() {
                rows.push(csv::StringRecord::from(
                    columns.iter().map(|c| c[row].as_str()).collect::<Vec<_>>(),
                ));
            }
        }
        Ok(TextTable {
            path: label.to_path_buf(),
            names,
            rows,
        })
    }
}

/// A whole float as an integer (`42.0` → `42`), any other as Rust prints it.
fn float_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

/// Every cell of one column as text; empty for a null.
fn column_text(label: &Path, name: &str, column: &dyn Array) -> Result<Vec<String>> {
    macro_rules! each {
        ($array:expr, $text:expr) => {{
            let array = $array;
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        String::new()
                    } else {
                        $text(array.value(i))
                    }
                })
                .collect()
        }};
    }
    let to_string = |v: &dyn std::fmt::Display| v.to_string();
    Ok(match column.data_type() {
        DataType::Utf8 => each!(column.as_string::<i32>(), |v: &str| v.to_string()),
        DataType::LargeUtf8 => each!(column.as_string::<i64>(), |v: &str| v.to_string()),
        DataType::Utf8View => each!(column.as_string_view(), |v: &str| v.to_string()),
        DataType::Int8 => each!(column.as_primitive::<Int8Type>(), |v| to_string(&v)),
        DataType::Int16 => each!(column.as_primitive::<Int16Type>(), |v| to_string(&v)),
        DataType::Int32 => each!(column.as_primitive::<Int32Type>(), |v| to_string(&v)),
        DataType::Int64 => each!(column.as_primitive::<Int64Type>(), |v| to_string(&v)),
        DataType::UInt8 => each!(column.as_primitive::<UInt8Type>(), |v| to_string(&v)),
        DataType::UInt16 => each!(column.as_primitive::<UInt16Type>(), |v| to_string(&v)),
        DataType::UInt32 => each!(column.as_primitive::<UInt32Type>(), |v| to_string(&v)),
        DataType::UInt64 => each!(column.as_primitive::<UInt64Type>(), |v| to_string(&v)),
        DataType::Float32 => each!(column.as_primitive::<Float32Type>(), |v: f32| float_text(
            f64::from(v)
        )),
        DataType::Float64 => each!(column.as_primitive::<Float64Type>(), float_text),
        DataType::Boolean => each!(column.as_boolean(), |v: bool| to_string(&v)),
        DataType::Null => vec![String::new(); column.len()],
        DataType::Dictionary(_, _) => {
            let dictionary = column.as_any_dictionary();
            let values = column_text(label, name, dictionary.values().as_ref())?;
            let keys = dictionary.normalized_keys();
            (0..column.len())
                .map(|i| {
                    if column.is_null(i) {
                        String::new()
                    } else {
                        keys.get(i)
                            .and_then(|&k| values.get(k))
                            .cloned()
                            .unwrap_or_default()
                    }
                })
                .collect()
        }
        other => {
            return Err(Error::data_hint(
                label,
                None,
                Some(name),
                format!("a column of type {other}: this table holds codes and counts"),
                "hand over codes as text or integers and counts as integers",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, Arc<dyn Array>)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, c)| c).collect(),
        )
        .unwrap()
    }

    #[test]
    fn columns_read_as_a_csv_export_of_them_would() {
        let codes: DictionaryArray<Int32Type> = vec!["E54000050", "E54000048", "E54000050"]
            .into_iter()
            .collect();
        let b = batch(vec![
            ("area_code", Arc::new(codes)),
            (
                "sex",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(2)])),
            ),
            (
                "population",
                Arc::new(Float64Array::from(vec![Some(1200.0), Some(3.5), None])),
            ),
            (
                "age_band",
                Arc::new(StringArray::from(vec!["0-4", "90+", " 5-9 "])),
            ),
        ]);
        let t = TextTable::from_batches(Path::new("<frame>"), &[b.clone(), b], &["sex"]).unwrap();
        assert_eq!(t.height(), 6);
        assert_eq!(
            t.column("area_code").unwrap()[..3],
            [Some("E54000050"), Some("E54000048"), Some("E54000050")]
        );
        assert_eq!(t.column("sex").unwrap()[..3], [Some("1"), None, Some("2")]);
        assert_eq!(
            t.column("population").unwrap()[..3],
            [Some("1200"), Some("3.5"), None]
        );
        // Trimmed as a CSV cell is.
        assert_eq!(t.column("age_band").unwrap()[2], Some("5-9"));
    }

    #[test]
    fn a_missing_column_or_a_date_column_is_refused_naming_it() {
        let b = batch(vec![("sex", Arc::new(Int64Array::from(vec![1])))]);
        let Err(e) = TextTable::from_batches(Path::new("<frame>"), &[b], &["population"]) else {
            panic!("accepted");
        };
        let message = e.to_string();
        assert!(
            message.contains("population") && message.contains("required column missing"),
            "{message}"
        );
        let dates = batch(vec![(
            "population",
            Arc::new(arrow_array::Date32Array::from(vec![1])),
        )]);
        let Err(e) = TextTable::from_batches(Path::new("<frame>"), &[dates], &[]) else {
            panic!("accepted");
        };
        assert!(e.to_string().contains("type Date32"), "{e}");
    }
}
