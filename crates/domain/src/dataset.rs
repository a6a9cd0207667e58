//! Dataset columns: what kind each column is, and the rules that infer it from the values seen.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Boolean,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSchema {
    pub name: String,
    pub kind: ColumnKind,
}

/// Spellings of a missing value in CSV files.
pub fn is_missing(v: &str) -> bool {
    matches!(
        v.trim(),
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None"
    )
}

/// Parses a boolean spelling; `0`/`1` stay numeric.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" => Some(false),
        _ => None,
    }
}

pub fn parse_number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Distinct values tracked before a string column is considered free text.
const MAX_TRACKED_DISTINCT: usize = 1000;

/// Infers one column's kind from a stream of values in bounded memory.
///
/// A column is numeric when every present value parses as a finite number, boolean when every present
/// value is a boolean spelling, categorical when it has at most 100 distinct values or at most 5% of the
/// rows are distinct, and text otherwise.
#[derive(Debug, Clone, Default)]
pub struct KindInference {
    present: u64,
    missing: u64,
    all_numeric: bool,
    all_bool: bool,
    distinct: HashSet<String>,
    distinct_overflow: bool,
    started: bool,
}

impl KindInference {
    pub fn new() -> Self {
        KindInference {
            all_numeric: true,
            all_bool: true,
            started: true,
            ..Default::default()
        }
    }

    pub fn push(&mut self, v: &str) {
        debug_assert!(self.started);
        if is_missing(v) {
            self.missing += 1;
            return;
        }
        self.present += 1;
        if self.all_numeric && parse_number(v).is_none() {
            self.all_numeric = false;
        }
        if self.all_bool && parse_bool(v).is_none() {
            self.all_bool = false;
        }
        if !self.all_numeric && !self.distinct_overflow && !self.distinct.contains(v) {
            if self.distinct.len() >= MAX_TRACKED_DISTINCT {
                self.distinct_overflow = true;
                self.distinct.clear();
            } else {
                self.distinct.insert(v.to_string());
            }
        }
    }

    pub fn kind(&self) -> ColumnKind {
        if self.present == 0 {
            return ColumnKind::Numeric;
        }
        if self.all_bool {
            return ColumnKind::Boolean;
        }
        if self.all_numeric {
            return ColumnKind::Numeric;
        }
        if self.distinct_overflow {
            return ColumnKind::Text;
        }
        let d = self.distinct.len() as u64;
        if d <= 100 || d * 20 <= self.present {
            ColumnKind::Categorical
        } else {
            ColumnKind::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(vals: &[&str]) -> ColumnKind {
        let mut k = KindInference::new();
        vals.iter().for_each(|v| k.push(v));
        k.kind()
    }

    #[test]
    fn infers_kinds() {
        assert_eq!(infer(&["1", "2.5", "", "-3e2"]), ColumnKind::Numeric);
        assert_eq!(infer(&["0", "1", "1"]), ColumnKind::Numeric);
        assert_eq!(infer(&["true", "False", "NA"]), ColumnKind::Boolean);
        assert_eq!(infer(&["red", "blue", "red"]), ColumnKind::Categorical);
        let many: Vec<String> = (0..500).map(|i| format!("comment number {i}")).collect();
        let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        assert_eq!(infer(&refs), ColumnKind::Text);
    }

    #[test]
    fn infinity_is_not_a_number_value() {
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number(" 4 "), Some(4.0));
    }
}
