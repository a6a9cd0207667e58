//! Model quality metrics from labelled predictions (SPEC §6): classification (accuracy,
//! precision, recall, F1, ROC AUC, log loss, confusion matrix; multiclass macro and weighted
//! averages and one-vs-rest AUC) and regression (RMSE, MAE, R²).
//!
//! Each metric follows scikit-learn's definition and edge cases: precision/recall/F1 with
//! nothing to divide by are 0 (`zero_division="warn"` → 0), AUC gives ties half credit
//! (trapezoidal ROC), log loss clips probabilities to `[ε, 1 − ε]` with ε the f64 machine
//! epsilon, and R² of a constant target is 1 for a perfect fit and 0 otherwise.

use crate::{invalid, Error, Result};
use serde::{Deserialize, Serialize};

/// Rows = true class, columns = predicted class, both in the order of `labels`
/// (`sklearn.metrics.confusion_matrix`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

/// Confusion matrix over the sorted union of labels seen in `y_true` and `y_pred`.
pub fn confusion_matrix<S: AsRef<str>>(y_true: &[S], y_pred: &[S]) -> Result<ConfusionMatrix> {
    check_lengths(y_true.len(), y_pred.len())?;
    let mut labels: Vec<String> = y_true
        .iter()
        .chain(y_pred)
        .map(|s| s.as_ref().to_owned())
        .collect();
    labels.sort();
    labels.dedup();
    let index = |s: &str| {
        labels
            .binary_search_by(|l| l.as_str().cmp(s))
            .expect("label seen")
    };
    let k = labels.len();
    let mut matrix = vec![vec![0u64; k]; k];
    for (t, p) in y_true.iter().zip(y_pred) {
        matrix[index(t.as_ref())][index(p.as_ref())] += 1;
    }
    Ok(ConfusionMatrix { labels, matrix })
}

/// Binary classification metrics for the positive class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// ROC AUC of the scores; absent without scores or when only one class is present.
    pub auc: Option<f64>,
    /// Log loss of the scores as probabilities of the positive class; absent without scores.
    pub log_loss: Option<f64>,
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

/// Binary metrics from true labels, predicted labels and optional positive-class
/// probabilities.
pub fn binary_metrics(
    y_true: &[bool],
    y_pred: &[bool],
    probabilities: Option<&[f64]>,
) -> Result<BinaryMetrics> {
    check_lengths(y_true.len(), y_pred.len())?;
    if y_true.is_empty() {
        return Err(Error::EmptySample { what: "labels" });
    }
    let (mut tp, mut fp, mut tn, mut fn_) = (0u64, 0u64, 0u64, 0u64);
    for (&t, &p) in y_true.iter().zip(y_pred) {
        match (t, p) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
            (true, false) => fn_ += 1,
        }
    }
    let (auc, log_loss) = match probabilities {
        Some(p) => (roc_auc(y_true, p).ok(), Some(log_loss_binary(y_true, p)?)),
        None => (None, None),
    };
    Ok(BinaryMetrics {
        accuracy: (tp + tn) as f64 / y_true.len() as f64,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
        auc,
        log_loss,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fn_,
    })
}

/// ROC AUC (`sklearn.metrics.roc_auc_score`): the probability that a random positive scores
/// above a random negative, ties counting one half — the area under the trapezoidal ROC curve.
/// Computed from average ranks (Mann–Whitney U) in O(n log n).
pub fn roc_auc(y_true: &[bool], scores: &[f64]) -> Result<f64> {
    check_lengths(y_true.len(), scores.len())?;
    if scores.iter().any(|s| s.is_nan()) {
        return Err(invalid("scores", "contain NaN"));
    }
    let n_pos = y_true.iter().filter(|&&t| t).count();
    let n_neg = y_true.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(invalid(
            "labels",
            "ROC AUC needs both classes among the true labels; only one is present",
        ));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let positives = order[i..=j].iter().filter(|&&k| y_true[k]).count();
        rank_sum += average_rank * positives as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean log loss of positive-class probabilities (`sklearn.metrics.log_loss` on binary labels).
pub fn log_loss_binary(y_true: &[bool], probabilities: &[f64]) -> Result<f64> {
    check_lengths(y_true.len(), probabilities.len())?;
    check_probabilities(probabilities.iter().copied())?;
    if y_true.is_empty() {
        return Err(Error::EmptySample { what: "labels" });
    }
    let eps = f64::EPSILON;
    let total: f64 = y_true
        .iter()
        .zip(probabilities)
        .map(|(&t, &p)| {
            // sklearn builds the two columns [1 − p, p] and clips each.
            let q = if t { p } else { 1.0 - p };
            -q.clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    Ok(total / y_true.len() as f64)
}

/// Mean multiclass log loss: `probabilities[i][c]` is the probability of class `c` for row `i`
/// and `y_true[i]` the index of the true class.
pub fn log_loss(y_true: &[usize], probabilities: &[Vec<f64>]) -> Result<f64> {
    check_lengths(y_true.len(), probabilities.len())?;
    if y_true.is_empty() {
        return Err(Error::EmptySample { what: "labels" });
    }
    let eps = f64::EPSILON;
    let mut total = 0.0;
    for (&t, row) in y_true.iter().zip(probabilities) {
        check_probabilities(row.iter().copied())?;
        let p = *row.get(t).ok_or_else(|| {
            invalid(
                "labels",
                format!("class index {t} has no probability column"),
            )
        })?;
        total -= p.clamp(eps, 1.0 - eps).ln();
    }
    Ok(total / y_true.len() as f64)
}

/// Per-class precision, recall, F1 and support.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Multiclass metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassMetrics {
    pub accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub weighted_precision: f64,
    pub weighted_recall: f64,
    pub weighted_f1: f64,
    /// One-vs-rest ROC AUC, macro average (`roc_auc_score(multi_class="ovr")`).
    pub auc_ovr_macro: Option<f64>,
    pub log_loss: Option<f64>,
    /// Classes seen in `y_true` or `y_pred`, ascending (scikit-learn's default label set).
    pub per_class: Vec<ClassMetrics>,
}

/// Multiclass metrics from class indices and optional per-class probability rows.
pub fn multiclass_metrics(
    y_true: &[usize],
    y_pred: &[usize],
    probabilities: Option<&[Vec<f64>]>,
) -> Result<MulticlassMetrics> {
    check_lengths(y_true.len(), y_pred.len())?;
    if y_true.is_empty() {
        return Err(Error::EmptySample { what: "labels" });
    }
    let mut classes: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let mut per_class = Vec::with_capacity(classes.len());
    for &c in &classes {
        let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
        for (&t, &p) in y_true.iter().zip(y_pred) {
            match (t == c, p == c) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
        per_class.push(ClassMetrics {
            class: c,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            support: tp + fn_,
        });
    }
    let k = per_class.len() as f64;
    let n = y_true.len() as f64;
    let mean = |f: fn(&ClassMetrics) -> f64| per_class.iter().map(f).sum::<f64>() / k;
    let weighted = |f: fn(&ClassMetrics) -> f64| {
        per_class
            .iter()
            .map(|m| f(m) * m.support as f64)
            .sum::<f64>()
            / n
    };
    let correct = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    let (auc_ovr_macro, log_loss) = match probabilities {
        Some(p) => (auc_ovr_macro(y_true, p).ok(), Some(log_loss(y_true, p)?)),
        None => (None, None),
    };
    Ok(MulticlassMetrics {
        accuracy: correct as f64 / n,
        macro_precision: mean(|m| m.precision),
        macro_recall: mean(|m| m.recall),
        macro_f1: mean(|m| m.f1),
        weighted_precision: weighted(|m| m.precision),
        weighted_recall: weighted(|m| m.recall),
        weighted_f1: weighted(|m| m.f1),
        auc_ovr_macro,
        log_loss,
        per_class,
    })
}

/// One-vs-rest ROC AUC averaged over the classes present in `y_true`; probability column `c`
/// scores class `c`. Like scikit-learn, every class of `y_true` needs a column.
pub fn auc_ovr_macro(y_true: &[usize], probabilities: &[Vec<f64>]) -> Result<f64> {
    check_lengths(y_true.len(), probabilities.len())?;
    let mut classes: Vec<usize> = y_true.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Err(invalid(
            "labels",
            "one-vs-rest AUC needs at least two classes",
        ));
    }
    let mut total = 0.0;
    for &c in &classes {
        let truth: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
        let scores = probabilities
            .iter()
            .map(|row| {
                row.get(c)
                    .copied()
                    .ok_or_else(|| invalid("probabilities", format!("no column for class {c}")))
            })
            .collect::<Result<Vec<f64>>>()?;
        total += roc_auc(&truth, &scores)?;
    }
    Ok(total / classes.len() as f64)
}

/// Regression metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    pub n: u64,
}

/// RMSE, MAE and R² (`sklearn.metrics.root_mean_squared_error`, `mean_absolute_error`,
/// `r2_score`).
pub fn regression_metrics(y_true: &[f64], y_pred: &[f64]) -> Result<RegressionMetrics> {
    check_lengths(y_true.len(), y_pred.len())?;
    if y_true.is_empty() {
        return Err(Error::EmptySample { what: "targets" });
    }
    if y_true.iter().chain(y_pred).any(|v| !v.is_finite()) {
        return Err(invalid("values", "targets and predictions must be finite"));
    }
    let n = y_true.len() as f64;
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    let abs: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()).sum();
    let mean = y_true.iter().sum::<f64>() / n;
    let ss_tot: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    let r2 = if ss_tot == 0.0 {
        if ss_res == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - ss_res / ss_tot
    };
    Ok(RegressionMetrics {
        rmse: (ss_res / n).sqrt(),
        mae: abs / n,
        r2,
        n: y_true.len() as u64,
    })
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn check_lengths(a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: "true and predicted values",
            left: a,
            right: b,
        })
    }
}

fn check_probabilities(p: impl Iterator<Item = f64>) -> Result<()> {
    for v in p {
        if !(0.0..=1.0).contains(&v) {
            return Err(invalid("probabilities", format!("{v} is outside [0, 1]")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        // One positive tied with one negative, another positive above: (1 + 0.5) / 2.
        let auc = roc_auc(&[true, false, true], &[0.5, 0.5, 0.9]).unwrap();
        assert!((auc - 0.75).abs() < 1e-15);
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn zero_division_is_zero() {
        let m = binary_metrics(&[false, false], &[false, false], None).unwrap();
        assert_eq!(
            (m.precision, m.recall, m.f1, m.accuracy),
            (0.0, 0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn log_loss_clips_certain_mistakes() {
        let l = log_loss_binary(&[true], &[0.0]).unwrap();
        assert!((l + f64::EPSILON.ln()).abs() < 1e-12);
        assert!(log_loss_binary(&[true], &[1.2]).is_err());
    }

    #[test]
    fn r2_of_constant_target() {
        assert_eq!(
            regression_metrics(&[1.0, 1.0], &[1.0, 1.0]).unwrap().r2,
            1.0
        );
        assert_eq!(
            regression_metrics(&[1.0, 1.0], &[1.0, 2.0]).unwrap().r2,
            0.0
        );
    }

    #[test]
    fn confusion_matrix_rows_are_truth() {
        let cm = confusion_matrix(&["a", "b", "b"], &["b", "b", "a"]).unwrap();
        assert_eq!(cm.labels, ["a", "b"]);
        assert_eq!(cm.matrix, vec![vec![0, 1], vec![1, 1]]);
    }
}
