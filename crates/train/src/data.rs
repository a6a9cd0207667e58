//! From a [`Table`] to what the learners take: the target (task, class labels, encoded values), the
//! feature schema (numeric columns, and categorical columns with their vocabulary), the encoded feature
//! matrix, and the seeded splits (holdout; cross-validation folds or fit/validation).
//!
//! Feature values are rounded to `f32` when encoded, because the exported graph takes `float` inputs:
//! training on exactly the values the graph will see keeps tree thresholds and predictions identical.

use crate::rng::Rng;
use crate::table::{ColumnValues, Table};
use crate::{Error, Result, Task};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Categorical columns keep at most this many categories (the most frequent); the rest count as missing.
pub(crate) const MAX_CATEGORIES: usize = 255;
pub(crate) const MAX_CLASSES: usize = 100;
pub(crate) const MIN_ROWS: usize = 30;
pub(crate) const MIN_ROWS_PER_CLASS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum FeatureKind {
    Numeric,
    Categorical { categories: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FeatureSpec {
    pub name: String,
    pub kind: FeatureKind,
}

/// The model's inputs, in the order of the encoded matrix's columns and of the graph's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FeatureSchema {
    pub features: Vec<FeatureSpec>,
}

/// A column the experiment left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredColumn {
    pub name: String,
    pub reason: String,
}

/// Row-major `n × f` matrix.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub n: usize,
    pub f: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.f..(i + 1) * self.f]
    }
    pub fn rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.f);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            n: idx.len(),
            f: self.f,
            data,
        }
    }
}

/// The encoded target: class indices (as f64) or values, one per kept row.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub task: Task,
    pub classes: Option<Vec<String>>,
    pub y: Vec<f64>,
    /// Rows of the table that have a target, in order.
    pub rows: Vec<usize>,
}

impl Target {
    pub fn n_classes(&self) -> usize {
        self.classes.as_ref().map(|c| c.len()).unwrap_or(0)
    }
}

/// Formats a number as a class label: integers without a decimal point.
pub(crate) fn number_label(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Finds the target column, infers the task when it is not given, and encodes it.
pub(crate) fn resolve_target(table: &Table, target: &str, task: Option<Task>) -> Result<Target> {
    let col = table.column(target).ok_or_else(|| Error::TargetMissing {
        target: target.to_string(),
        available: table
            .columns
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    // Present values as text (for classes) and numbers (for regression).
    let (rows, texts, nums): (Vec<usize>, Vec<String>, Option<Vec<f64>>) = match &col.values {
        ColumnValues::Numeric(v) => {
            let rows: Vec<usize> = (0..v.len()).filter(|&i| !v[i].is_nan()).collect();
            let nums: Vec<f64> = rows.iter().map(|&i| v[i]).collect();
            (
                rows,
                nums.iter().map(|&x| number_label(x)).collect(),
                Some(nums),
            )
        }
        ColumnValues::Categorical(v) => {
            let rows: Vec<usize> = (0..v.len()).filter(|&i| v[i].is_some()).collect();
            let texts: Vec<String> = rows.iter().map(|&i| v[i].clone().unwrap()).collect();
            (rows, texts, None)
        }
    };
    if rows.len() < MIN_ROWS {
        return Err(Error::TooFewRows {
            rows: rows.len(),
            min: MIN_ROWS,
        });
    }
    let distinct: BTreeMap<&str, usize> = texts.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.as_str()).or_insert(0) += 1;
        m
    });
    let task = match task {
        Some(t) => t,
        None if nums.is_some() && distinct.len() > 2 => Task::Regression,
        None if distinct.len() > 2 => Task::MulticlassClassification,
        None => Task::BinaryClassification,
    };
    match task {
        Task::Regression => {
            let y = nums.ok_or_else(|| Error::NonNumericTarget {
                target: target.to_string(),
                example: texts[0].clone(),
            })?;
            if y.iter().all(|&v| v == y[0]) {
                return Err(Error::ConstantTarget {
                    target: target.to_string(),
                    value: y[0],
                });
            }
            Ok(Target {
                task,
                classes: None,
                y,
                rows,
            })
        }
        _ => {
            if distinct.len() < 2 {
                return Err(Error::SingleClass {
                    target: target.to_string(),
                    class: texts[0].clone(),
                });
            }
            if distinct.len() > MAX_CLASSES {
                return Err(Error::TooManyClasses {
                    target: target.to_string(),
                    classes: distinct.len(),
                    max: MAX_CLASSES,
                });
            }
            if task == Task::BinaryClassification && distinct.len() > 2 {
                return Err(Error::InvalidConfig {
                    field: "task",
                    message: format!(
                        "binary classification needs two classes, but `{target}` has {}",
                        distinct.len()
                    ),
                });
            }
            for (class, &count) in &distinct {
                if count < MIN_ROWS_PER_CLASS {
                    return Err(Error::RareClass {
                        class: class.to_string(),
                        rows: count,
                        min: MIN_ROWS_PER_CLASS,
                    });
                }
            }
            // Numeric classes sort by value, text classes by their spelling.
            let mut classes: Vec<String> = distinct.keys().map(|s| s.to_string()).collect();
            if let Some(n) = &nums {
                let mut vals: Vec<f64> = n.clone();
                vals.sort_by(|a, b| a.partial_cmp(b).unwrap());
                vals.dedup();
                classes = vals.into_iter().map(number_label).collect();
            }
            let index: HashMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let y = texts.iter().map(|t| index[t.as_str()] as f64).collect();
            Ok(Target {
                task,
                classes: Some(classes),
                y,
                rows,
            })
        }
    }
}

impl FeatureSchema {
    /// Every column but the target is a feature. Categories are learned from `fit_rows` (table row
    /// indices) only, most frequent first. Categorical columns whose values are nearly all distinct look
    /// like identifiers or free text and are left out.
    pub fn build(
        table: &Table,
        target: &str,
        fit_rows: &[usize],
    ) -> (FeatureSchema, Vec<IgnoredColumn>) {
        let mut features = Vec::new();
        let mut ignored = Vec::new();
        for col in table.columns.iter().filter(|c| c.name != target) {
            match &col.values {
                ColumnValues::Numeric(v) => {
                    if fit_rows.iter().all(|&i| v[i].is_nan()) {
                        ignored.push(IgnoredColumn {
                            name: col.name.clone(),
                            reason: "every value is missing".into(),
                        });
                        continue;
                    }
                    features.push(FeatureSpec {
                        name: col.name.clone(),
                        kind: FeatureKind::Numeric,
                    });
                }
                ColumnValues::Categorical(v) => {
                    let mut counts: HashMap<&str, usize> = HashMap::new();
                    let mut present = 0usize;
                    for &i in fit_rows {
                        if let Some(s) = &v[i] {
                            *counts.entry(s.as_str()).or_insert(0) += 1;
                            present += 1;
                        }
                    }
                    if present == 0 {
                        ignored.push(IgnoredColumn {
                            name: col.name.clone(),
                            reason: "every value is missing".into(),
                        });
                        continue;
                    }
                    if counts.len() > 50 && counts.len() * 10 > present * 9 {
                        ignored.push(IgnoredColumn {
                            name: col.name.clone(),
                            reason: format!("{} distinct values in {} rows: it looks like an identifier or free text", counts.len(), present),
                        });
                        continue;
                    }
                    let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
                    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    cats.truncate(MAX_CATEGORIES);
                    features.push(FeatureSpec {
                        name: col.name.clone(),
                        kind: FeatureKind::Categorical {
                            categories: cats.into_iter().map(|(s, _)| s.to_string()).collect(),
                        },
                    });
                }
            }
        }
        (FeatureSchema { features }, ignored)
    }

    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    pub fn categorical_indices(&self) -> Vec<usize> {
        self.features
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.kind, FeatureKind::Categorical { .. }))
            .map(|(i, _)| i)
            .collect()
    }

    /// Encodes `rows` of `table` (all rows when `None`): numbers rounded to f32, categories as their
    /// index in the vocabulary, missing and unknown values as NaN. A column given with the other kind
    /// is converted (numbers parsed from text, numbers spelled as text).
    pub fn encode(&self, table: &Table, rows: Option<&[usize]>) -> Result<Matrix> {
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..table.n_rows()).collect();
                &all
            }
        };
        let f = self.features.len();
        let n = rows.len();
        let mut data = vec![f64::NAN; n * f];
        for (j, spec) in self.features.iter().enumerate() {
            let col = table.column(&spec.name).ok_or_else(|| {
                Error::BadInput(format!("the feature column `{}` is missing", spec.name))
            })?;
            match (&spec.kind, &col.values) {
                (FeatureKind::Numeric, ColumnValues::Numeric(v)) => {
                    for (r, &i) in rows.iter().enumerate() {
                        data[r * f + j] = v[i] as f32 as f64;
                    }
                }
                (FeatureKind::Numeric, ColumnValues::Categorical(v)) => {
                    for (r, &i) in rows.iter().enumerate() {
                        data[r * f + j] = match v[i].as_deref().map(str::trim) {
                            None => f64::NAN,
                            Some(s) if coreplex_domain::dataset::is_missing(s) => f64::NAN,
                            Some(s) => s.parse::<f64>().map_err(|_| {
                                Error::BadInput(format!(
                                    "feature `{}` is numeric but row {r} holds the text {s:?}",
                                    spec.name
                                ))
                            })? as f32 as f64,
                        };
                    }
                }
                (FeatureKind::Categorical { categories }, values) => {
                    let index: HashMap<&str, usize> = categories
                        .iter()
                        .enumerate()
                        .map(|(k, c)| (c.as_str(), k))
                        .collect();
                    for (r, &i) in rows.iter().enumerate() {
                        let code = match values {
                            ColumnValues::Categorical(v) => {
                                v[i].as_deref().and_then(|s| index.get(s).copied())
                            }
                            ColumnValues::Numeric(v) if v[i].is_nan() => None,
                            ColumnValues::Numeric(v) => {
                                index.get(number_label(v[i]).as_str()).copied()
                            }
                        };
                        data[r * f + j] = code.map(|c| c as f64).unwrap_or(f64::NAN);
                    }
                }
            }
        }
        Ok(Matrix { n, f, data })
    }
}

/// How the rows that are not held out are used.
#[derive(Debug, Clone)]
pub(crate) enum Scheme {
    /// k-fold cross-validation over `rows`; `fold[i]` is the fold of `rows[i]`.
    CrossValidation {
        rows: Vec<usize>,
        fold: Vec<usize>,
        k: usize,
    },
    /// Train on `fit`, early-stop and blend on `valid`.
    Blending { fit: Vec<usize>, valid: Vec<usize> },
}

#[derive(Debug, Clone)]
pub(crate) struct Splits {
    pub holdout: Vec<usize>,
    pub scheme: Scheme,
}

/// Below this many rows the search cross-validates; above, it trains on one split and validates on another.
pub(crate) const CV_BELOW_ROWS: usize = 5000;
pub(crate) const CV_FOLDS: usize = 5;

impl Splits {
    /// Seeded, stratified by class for classification. Indices are positions in the encoded target.
    pub fn make(target: &Target, seed: u64) -> Splits {
        let n = target.y.len();
        let mut rng = Rng::new(seed);
        // Groups: one per class, or one for regression; each shuffled.
        let groups: Vec<Vec<usize>> = match target.classes.as_ref() {
            Some(c) => {
                let mut g = vec![Vec::new(); c.len()];
                for i in 0..n {
                    g[target.y[i] as usize].push(i);
                }
                g
            }
            None => vec![(0..n).collect()],
        };
        let groups: Vec<Vec<usize>> = groups
            .into_iter()
            .map(|mut g| {
                rng.shuffle(&mut g);
                g
            })
            .collect();
        let cv = n < CV_BELOW_ROWS;
        // Small data is all cross-validated (a 10% holdout of a few hundred rows would only add noise and
        // take rows from the models); larger data keeps 10% aside.
        let holdout_frac = if cv { 0.0 } else { 0.1 };
        let mut holdout = Vec::new();
        let mut rest_groups = Vec::new();
        for g in groups {
            let h = if cv {
                0
            } else {
                ((g.len() as f64 * holdout_frac).round() as usize)
                    .clamp(usize::from(g.len() >= 3), g.len().saturating_sub(2))
            };
            holdout.extend_from_slice(&g[..h]);
            rest_groups.push(g[h..].to_vec());
        }
        holdout.sort_unstable();
        let scheme = if cv {
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            // Deal each class's shuffled rows round-robin so folds are stratified; the offset carries on
            // across classes so small classes do not all start in fold 0.
            let mut offset = 0;
            for g in &rest_groups {
                for (j, &i) in g.iter().enumerate() {
                    pairs.push((i, (offset + j) % CV_FOLDS));
                }
                offset += g.len();
            }
            pairs.sort_unstable();
            Scheme::CrossValidation {
                rows: pairs.iter().map(|p| p.0).collect(),
                fold: pairs.iter().map(|p| p.1).collect(),
                k: CV_FOLDS,
            }
        } else {
            let mut fit = Vec::new();
            let mut valid = Vec::new();
            for g in &rest_groups {
                let v = ((g.len() as f64 * 0.1).round() as usize).max(1);
                valid.extend_from_slice(&g[..v]);
                fit.extend_from_slice(&g[v..]);
            }
            fit.sort_unstable();
            valid.sort_unstable();
            Scheme::Blending { fit, valid }
        };
        Splits { holdout, scheme }
    }

    /// Rows used to learn (everything but the holdout).
    pub fn learning_rows(&self) -> Vec<usize> {
        match &self.scheme {
            Scheme::CrossValidation { rows, .. } => rows.clone(),
            Scheme::Blending { fit, valid } => {
                let mut r: Vec<usize> = fit.iter().chain(valid).copied().collect();
                r.sort_unstable();
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn table(n: usize) -> Table {
        Table::new(vec![
            Column::numeric("x", (0..n).map(|i| i as f64 * 0.1).collect()),
            Column::categorical("c", (0..n).map(|i| Some(["a", "b", "c"][i % 3])).collect()),
            Column::numeric("y", (0..n).map(|i| (i % 2) as f64).collect()),
        ])
        .unwrap()
    }

    #[test]
    fn numeric_two_values_is_binary_and_classes_sort_by_value() {
        let t = resolve_target(&table(40), "y", None).unwrap();
        assert_eq!(t.task, Task::BinaryClassification);
        assert_eq!(
            t.classes.as_deref().unwrap(),
            &["0".to_string(), "1".to_string()]
        );
        let t = resolve_target(&table(40), "x", None).unwrap();
        assert_eq!(t.task, Task::Regression);
        let t = resolve_target(&table(40), "c", None).unwrap();
        assert_eq!(t.task, Task::MulticlassClassification);
    }

    #[test]
    fn clear_errors_for_bad_targets() {
        assert!(matches!(
            resolve_target(&table(40), "nope", None),
            Err(Error::TargetMissing { .. })
        ));
        assert!(matches!(
            resolve_target(&table(10), "y", None),
            Err(Error::TooFewRows { .. })
        ));
        let t = Table::new(vec![
            Column::numeric("y", vec![1.0; 40]),
            Column::numeric("x", vec![0.0; 40]),
        ])
        .unwrap();
        assert!(matches!(
            resolve_target(&t, "y", Some(Task::BinaryClassification)),
            Err(Error::SingleClass { .. })
        ));
        assert!(matches!(
            resolve_target(&t, "y", None),
            Err(Error::SingleClass { .. })
        ));
        assert!(matches!(
            resolve_target(&t, "y", Some(Task::Regression)),
            Err(Error::ConstantTarget { .. })
        ));
        assert!(matches!(
            resolve_target(&table(40), "c", Some(Task::Regression)),
            Err(Error::NonNumericTarget { .. })
        ));
    }

    #[test]
    fn encoding_rounds_to_f32_and_codes_categories() {
        let t = table(40);
        let rows: Vec<usize> = (0..40).collect();
        let (s, ignored) = FeatureSchema::build(&t, "y", &rows);
        assert!(ignored.is_empty());
        let m = s.encode(&t, Some(&[1, 2])).unwrap();
        assert_eq!(m.row(0)[0], 0.1f32 as f64);
        // a, b, c are equally frequent: alphabetical
        assert_eq!(m.row(0)[1], 1.0);
        assert_eq!(m.row(1)[1], 2.0);
    }

    #[test]
    fn small_data_is_all_cross_validated_in_stratified_folds() {
        let t = resolve_target(&table(200), "y", None).unwrap();
        let a = Splits::make(&t, 3);
        assert!(a.holdout.is_empty());
        match &a.scheme {
            Scheme::CrossValidation { rows, fold, k } => {
                assert_eq!(rows.len(), 200);
                for f in 0..*k {
                    let members: Vec<usize> = (0..rows.len()).filter(|&p| fold[p] == f).collect();
                    assert_eq!(members.len(), 40, "fold {f}");
                    let ones = members.iter().filter(|&&p| t.y[rows[p]] == 1.0).count();
                    assert_eq!(ones, 20, "fold {f}");
                }
            }
            _ => panic!("small data cross-validates"),
        }
    }

    #[test]
    fn large_data_splits_are_seeded_stratified_and_disjoint() {
        let t = resolve_target(&table(6000), "y", None).unwrap();
        let a = Splits::make(&t, 3);
        let b = Splits::make(&t, 3);
        assert_eq!(a.holdout, b.holdout);
        assert_eq!(a.holdout.len(), 600);
        let ones = a.holdout.iter().filter(|&&i| t.y[i] == 1.0).count();
        assert_eq!(ones, 300);
        let rest = a.learning_rows();
        assert_eq!(rest.len() + a.holdout.len(), 6000);
        let held: std::collections::HashSet<usize> = a.holdout.iter().copied().collect();
        assert!(rest.iter().all(|r| !held.contains(r)));
        match &a.scheme {
            Scheme::Blending { fit, valid } => {
                assert_eq!(valid.len(), 540);
                assert_eq!(fit.len() + valid.len(), 5400);
            }
            _ => panic!("large data blends"),
        }
        assert_ne!(Splits::make(&t, 4).holdout, a.holdout);
    }
}
