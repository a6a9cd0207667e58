//! In-memory training data: named columns, each numeric (NaN = missing) or categorical (None = missing).

use crate::{Error, Result};
use coreplex_domain::dataset::{is_missing, parse_bool, parse_number, ColumnKind, KindInference};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub values: ColumnValues,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "values", rename_all = "snake_case")]
pub enum ColumnValues {
    /// NaN marks a missing value.
    Numeric(Vec<f64>),
    Categorical(Vec<Option<String>>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Numeric(v) => v.len(),
            ColumnValues::Categorical(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_numeric(&self) -> bool {
        matches!(self, ColumnValues::Numeric(_))
    }
}

impl Column {
    pub fn numeric(name: impl Into<String>, values: Vec<f64>) -> Column {
        Column {
            name: name.into(),
            values: ColumnValues::Numeric(values),
        }
    }
    pub fn categorical<S: Into<String>>(name: impl Into<String>, values: Vec<Option<S>>) -> Column {
        Column {
            name: name.into(),
            values: ColumnValues::Categorical(
                values.into_iter().map(|v| v.map(Into::into)).collect(),
            ),
        }
    }
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Result<Table> {
        let t = Table { columns };
        t.validate()?;
        Ok(t)
    }

    /// Number of rows (that of the first column; [`Table::validate`] checks they agree).
    pub fn n_rows(&self) -> usize {
        self.columns.first().map(|c| c.values.len()).unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks that column names are distinct and every column has the same number of rows.
    pub fn validate(&self) -> Result<()> {
        let n = self.n_rows();
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(Error::DuplicateColumn {
                    name: c.name.clone(),
                });
            }
            if c.values.len() != n {
                return Err(Error::RaggedColumn {
                    name: c.name.clone(),
                    got: c.values.len(),
                    expected: n,
                });
            }
        }
        Ok(())
    }

    /// Reads a CSV file with a header row. Each column's kind is inferred the way the dataset profiler
    /// does it (`coreplex_domain::dataset::KindInference`): numeric when every present value is a
    /// number, otherwise categorical (booleans become `"true"`/`"false"`). Blank, `NA`, `null`, `NaN`…
    /// are missing.
    pub fn from_csv(path: &Path) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|e| Error::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_csv_reader(std::io::BufReader::new(file))
    }

    pub fn from_csv_reader<R: std::io::Read>(reader: R) -> Result<Table> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(reader);
        let csv_err = |e: csv::Error| Error::Csv {
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("expected {expected_len} fields like the header, found {len}")
                }
                _ => e.to_string(),
            },
        };
        let headers: Vec<String> = rdr
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
            return Err(Error::EmptyTable);
        }
        let mut raw: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
        let mut kinds: Vec<KindInference> = headers.iter().map(|_| KindInference::new()).collect();
        let mut record = csv::StringRecord::new();
        while rdr.read_record(&mut record).map_err(csv_err)? {
            for (i, field) in record.iter().enumerate() {
                kinds[i].push(field);
                raw[i].push(field.trim().to_string());
            }
        }
        if raw[0].is_empty() {
            return Err(Error::EmptyTable);
        }
        let columns = headers
            .into_iter()
            .zip(raw)
            .zip(kinds)
            .map(|((name, vals), kind)| {
                let values = match kind.kind() {
                    ColumnKind::Numeric => ColumnValues::Numeric(
                        vals.iter()
                            .map(|v| {
                                if is_missing(v) {
                                    f64::NAN
                                } else {
                                    parse_number(v).unwrap_or(f64::NAN)
                                }
                            })
                            .collect(),
                    ),
                    ColumnKind::Boolean => ColumnValues::Categorical(
                        vals.iter()
                            .map(|v| parse_bool(v).map(|b| b.to_string()))
                            .collect(),
                    ),
                    ColumnKind::Categorical | ColumnKind::Text => ColumnValues::Categorical(
                        vals.into_iter()
                            .map(|v| if is_missing(&v) { None } else { Some(v) })
                            .collect(),
                    ),
                };
                Column { name, values }
            })
            .collect();
        Table::new(columns)
    }

    /// Writes the table as CSV (missing values as empty fields). Used by tests and the benchmark.
    pub fn to_csv<W: std::io::Write>(&self, w: W) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        let io = |e: csv::Error| Error::Csv {
            line: 0,
            message: e.to_string(),
        };
        wr.write_record(self.columns.iter().map(|c| c.name.as_str()))
            .map_err(io)?;
        for r in 0..self.n_rows() {
            let row: Vec<String> = self
                .columns
                .iter()
                .map(|c| match &c.values {
                    ColumnValues::Numeric(v) if v[r].is_nan() => String::new(),
                    ColumnValues::Numeric(v) => format!("{}", v[r]),
                    ColumnValues::Categorical(v) => v[r].clone().unwrap_or_default(),
                })
                .collect();
            wr.write_record(&row).map_err(io)?;
        }
        wr.flush().map_err(|e| Error::Csv {
            line: 0,
            message: e.to_string(),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_kinds_like_a_person() {
        let csv =
            "age,city,member,score,label\n31,Paris,yes,1.5,a\n,Lyon,no,NA,b\n45,Paris,, 2 ,a\n";
        let t = Table::from_csv_reader(csv.as_bytes()).unwrap();
        assert_eq!(t.n_rows(), 3);
        match &t.column("age").unwrap().values {
            ColumnValues::Numeric(v) => {
                assert_eq!(v[0], 31.0);
                assert!(v[1].is_nan());
            }
            _ => panic!("age should be numeric"),
        }
        assert_eq!(
            t.column("member").unwrap().values,
            ColumnValues::Categorical(vec![Some("true".into()), Some("false".into()), None])
        );
        assert!(matches!(
            t.column("city").unwrap().values,
            ColumnValues::Categorical(_)
        ));
        match &t.column("score").unwrap().values {
            ColumnValues::Numeric(v) => assert_eq!(v[2], 2.0),
            _ => panic!("score should be numeric"),
        }
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let err = Table::from_csv_reader("a,b\n1,2\n3\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(matches!(
            Table::from_csv_reader("a,b\n".as_bytes()),
            Err(Error::EmptyTable)
        ));
    }

    #[test]
    fn duplicate_columns_are_rejected() {
        let err = Table::new(vec![
            Column::numeric("x", vec![1.0]),
            Column::numeric("x", vec![2.0]),
        ])
        .unwrap_err();
        assert!(matches!(err, Error::DuplicateColumn { .. }));
    }
}
