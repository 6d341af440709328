//! A table's cells by column name, for the publication pages that pick rows and columns out of a
//! run's tables (the period comparison's, the CDC share's).

use strata_api::{Table, Value};

#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) table: &'a Table,
}

impl<'a> Rows<'a> {
    pub(crate) fn col(&self, name: &str) -> Option<usize> {
        self.table.columns.iter().position(|c| c == name)
    }

    /// The text in `name`, empty when the cell is missing or a number.
    pub(crate) fn text(&self, row: &'a [Value], name: &str) -> &'a str {
        match self.col(name).and_then(|i| row.get(i)) {
            Some(Value::Text(t)) => t,
            _ => "",
        }
    }

    /// A number, NaN when the cell is missing or text.
    pub(crate) fn number(&self, row: &[Value], name: &str) -> f64 {
        match self.col(name).and_then(|i| row.get(i)) {
            Some(Value::Number(x)) => *x,
            _ => f64::NAN,
        }
    }

    pub(crate) fn filter(&self, keep: impl Fn(&[Value]) -> bool) -> Vec<&'a Vec<Value>> {
        self.table.rows.iter().filter(|r| keep(r)).collect()
    }
}
