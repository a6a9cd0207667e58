//! Reading uploaded CSV files: a validating pass at upload time (shape, encoding, column kinds, row
//! count) and the profiling pass run as a background job (per-column sketches that later serve as the
//! drift reference). Both read the file as a stream, so memory does not grow with the file.

use coreplex_domain::dataset::{
    is_missing, parse_bool, parse_number, ColumnKind, ColumnSchema, KindInference,
};
use coreplex_stats::sketch::{CategoricalCounts, NumericSketch};
use serde_json::json;
use std::path::Path;

/// A CSV problem, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvProblem {
    pub line: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for CsvProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

fn problem(line: Option<u64>, message: impl Into<String>) -> CsvProblem {
    CsvProblem {
        line,
        message: message.into(),
    }
}

/// What the validating pass learned.
#[derive(Debug, Clone)]
pub struct CsvSummary {
    pub columns: Vec<ColumnSchema>,
    pub row_count: u64,
}

fn reader(path: &Path) -> std::io::Result<csv::Reader<std::fs::File>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(std::fs::File::open(path)?))
}

fn csv_problem(e: csv::Error) -> CsvProblem {
    let line = e.position().map(|p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len,
            len,
            pos,
        } => problem(
            pos.as_ref().map(|p| p.line()).or(line),
            format!("expected {expected_len} fields like the header, found {len}"),
        ),
        csv::ErrorKind::Utf8 { pos, err } => problem(
            pos.as_ref().map(|p| p.line()).or(line),
            format!("field {} is not valid UTF-8", err.field() + 1),
        ),
        csv::ErrorKind::Io(err) => problem(line, format!("could not read the file: {err}")),
        _ => problem(line, e.to_string()),
    }
}

/// Validates a CSV file and infers its columns. Rejects empty files, header-only files, ragged rows,
/// invalid UTF-8, and blank or repeated column names.
pub fn validate(path: &Path) -> Result<CsvSummary, CsvProblem> {
    let size = std::fs::metadata(path)
        .map_err(|e| problem(None, e.to_string()))?
        .len();
    if size == 0 {
        return Err(problem(
            None,
            "the file is empty; upload a CSV file with a header row and data rows",
        ));
    }
    let mut rdr = reader(path).map_err(|e| problem(None, e.to_string()))?;
    let header = rdr.byte_headers().map_err(csv_problem)?.clone();
    let mut names = Vec::with_capacity(header.len());
    let mut seen = std::collections::HashSet::new();
    for (i, h) in header.iter().enumerate() {
        let name = std::str::from_utf8(h)
            .map_err(|_| problem(Some(1), format!("column {} name is not valid UTF-8", i + 1)))?
            .trim()
            .trim_start_matches('\u{feff}')
            .to_string();
        if name.is_empty() {
            return Err(problem(Some(1), format!("column {} has no name", i + 1)));
        }
        if !seen.insert(name.clone()) {
            return Err(problem(
                Some(1),
                format!("column name `{name}` appears twice"),
            ));
        }
        names.push(name);
    }
    let mut kinds: Vec<KindInference> = names.iter().map(|_| KindInference::new()).collect();
    let mut rows = 0u64;
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_problem(e)),
        }
        rows += 1;
        for (i, field) in rec.iter().enumerate() {
            let s = std::str::from_utf8(field).map_err(|_| {
                problem(
                    rec.position().map(|p| p.line()),
                    format!("field {} (`{}`) is not valid UTF-8", i + 1, names[i]),
                )
            })?;
            kinds[i].push(s);
        }
    }
    if rows == 0 {
        return Err(problem(Some(1), "the file has a header but no data rows"));
    }
    let columns = names
        .into_iter()
        .zip(kinds)
        .map(|(name, k)| ColumnSchema {
            name,
            kind: k.kind(),
        })
        .collect();
    Ok(CsvSummary {
        columns,
        row_count: rows,
    })
}

/// One column's running profile.
enum ColumnProfile {
    Numeric(NumericSketch),
    Counts(CategoricalCounts),
    Text {
        missing: u64,
        count: u64,
        total_len: u64,
    },
}

const QUANTILES: [f64; 11] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];
const TOP_CATEGORIES: usize = 50;

/// Profiles every column of a validated CSV file. `progress` is called now and then with the share of
/// rows done; returning false stops the pass (cancellation).
pub fn profile(
    path: &Path,
    columns: &[ColumnSchema],
    row_count: u64,
    mut progress: impl FnMut(f64) -> bool,
) -> Result<Option<serde_json::Value>, CsvProblem> {
    let mut rdr = reader(path).map_err(|e| problem(None, e.to_string()))?;
    let mut cols: Vec<ColumnProfile> = columns
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Numeric => ColumnProfile::Numeric(NumericSketch::new()),
            ColumnKind::Categorical | ColumnKind::Boolean => {
                ColumnProfile::Counts(CategoricalCounts::new())
            }
            ColumnKind::Text => ColumnProfile::Text {
                missing: 0,
                count: 0,
                total_len: 0,
            },
        })
        .collect();
    let mut rec = csv::StringRecord::new();
    let mut n = 0u64;
    while rdr.read_record(&mut rec).map_err(csv_problem)? {
        n += 1;
        for (i, v) in rec.iter().enumerate() {
            let Some(col) = cols.get_mut(i) else { continue };
            let missing = is_missing(v);
            match col {
                ColumnProfile::Numeric(s) => match (missing, parse_number(v)) {
                    (false, Some(x)) => s.push(x),
                    _ => s.push_missing(),
                },
                ColumnProfile::Counts(c) => {
                    if missing {
                        c.push_missing()
                    } else if columns[i].kind == ColumnKind::Boolean {
                        c.push(if parse_bool(v).unwrap_or(false) {
                            "true"
                        } else {
                            "false"
                        })
                    } else {
                        c.push(v.trim())
                    }
                }
                ColumnProfile::Text {
                    missing: m,
                    count,
                    total_len,
                } => {
                    if missing {
                        *m += 1
                    } else {
                        *count += 1;
                        *total_len += v.chars().count() as u64;
                    }
                }
            }
        }
        if n.is_multiple_of(50_000) && !progress(n as f64 / row_count.max(1) as f64) {
            return Ok(None);
        }
    }
    let out: Vec<serde_json::Value> = columns
        .iter()
        .zip(cols)
        .map(|(c, p)| match p {
            ColumnProfile::Numeric(s) => {
                let quantiles: serde_json::Map<String, serde_json::Value> =
                    QUANTILES.iter().map(|q| (format!("{q}"), json!(s.quantile(*q)))).collect();
                json!({
                    "name": c.name, "kind": c.kind, "count": s.count(), "missing": s.missing(),
                    "missing_share": s.missing_share(), "min": s.min(), "max": s.max(), "mean": s.mean(),
                    "std": s.std(), "quantiles": quantiles, "histogram": s.histogram(20), "sketch": s,
                })
            }
            ColumnProfile::Counts(cc) => {
                let total = (cc.total()).max(1) as f64;
                let mut top: Vec<(&String, &u64)> = cc.counts.iter().collect();
                top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let categories: Vec<serde_json::Value> = top
                    .iter()
                    .take(TOP_CATEGORIES)
                    .map(|(v, n)| json!({"value": v, "count": n, "frequency": **n as f64 / total}))
                    .collect();
                json!({
                    "name": c.name, "kind": c.kind, "count": cc.total(), "missing": cc.missing,
                    "missing_share": cc.missing_share(), "distinct": cc.counts.len(),
                    "categories": categories, "sketch": cc,
                })
            }
            ColumnProfile::Text { missing, count, total_len } => json!({
                "name": c.name, "kind": c.kind, "count": count, "missing": missing,
                "missing_share": if count + missing == 0 { 0.0 } else { missing as f64 / (count + missing) as f64 },
                "mean_length": if count == 0 { 0.0 } else { total_len as f64 / count as f64 },
            }),
        })
        .collect();
    progress(1.0);
    Ok(Some(json!({ "row_count": n, "columns": out })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn malformed_files_name_the_line_and_problem() {
        let cases: [(&[u8], &str); 5] = [
            (
                b"",
                "the file is empty; upload a CSV file with a header row and data rows",
            ),
            (b"a,b\n", "line 1: the file has a header but no data rows"),
            (
                b"a,b\n1,2\n3\n",
                "line 3: expected 2 fields like the header, found 1",
            ),
            (
                b"a,b\n1,2\n3,\xff\xfe\n",
                "line 3: field 2 (`b`) is not valid UTF-8",
            ),
            (b"a,a\n1,2\n", "line 1: column name `a` appears twice"),
        ];
        for (content, want) in cases {
            let f = file(content);
            assert_eq!(validate(f.path()).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn valid_file_gets_kinds_rows_and_profile() {
        let f = file(b"age,plan,active,note\n30,basic,true,x\n,pro,false,y\n45,basic,NA,z\n");
        let s = validate(f.path()).unwrap();
        assert_eq!(s.row_count, 3);
        let kinds: Vec<ColumnKind> = s.columns.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ColumnKind::Numeric,
                ColumnKind::Categorical,
                ColumnKind::Boolean,
                ColumnKind::Categorical
            ]
        );
        let p = profile(f.path(), &s.columns, s.row_count, |_| true)
            .unwrap()
            .unwrap();
        let age = &p["columns"][0];
        assert_eq!(age["count"], 2);
        assert_eq!(age["missing"], 1);
        assert!((age["missing_share"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(age["min"], 30.0);
        let plan = &p["columns"][1];
        assert_eq!(plan["categories"][0]["value"], "basic");
        assert_eq!(plan["categories"][0]["count"], 2);
        assert_eq!(p["columns"][2]["missing"], 1);
    }
}
