//! Model quality metrics from published definitions. Predictions are row-major: class probabilities
//! (`n × classes`) for classification, one value per row for regression.

use crate::{Error, Result, Task};
use std::collections::BTreeMap;

/// Metric names the leaderboard can be ranked by, per task (lower-case; matching is case-insensitive).
pub fn metrics_for(task: Task) -> &'static [&'static str] {
    match task {
        Task::BinaryClassification => &[
            "auc",
            "aucpr",
            "logloss",
            "accuracy",
            "mean_per_class_error",
        ],
        Task::MulticlassClassification => &["logloss", "accuracy", "mean_per_class_error", "auc"],
        Task::Regression => &["rmse", "mse", "mae", "r2"],
    }
}

pub fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "auc" | "aucpr" | "accuracy" | "r2")
}

/// Resolves a user's stopping metric (`"AUC"`, `"logloss"`, `"AUTO"`…) to its canonical name.
pub fn canonical_metric(name: &str, task: Task) -> Result<String> {
    let lower = name.trim().to_ascii_lowercase();
    let lower = match lower.as_str() {
        "" | "auto" => match task {
            Task::BinaryClassification => "auc".to_string(),
            Task::MulticlassClassification => "logloss".to_string(),
            Task::Regression => "rmse".to_string(),
        },
        "mean_per_class_error" | "mpce" => "mean_per_class_error".into(),
        "pr_auc" => "aucpr".into(),
        "log_loss" => "logloss".into(),
        _ => lower,
    };
    if metrics_for(task).contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Error::UnknownMetric {
            metric: name.to_string(),
            task: match task {
                Task::BinaryClassification => "binary classification",
                Task::MulticlassClassification => "multiclass classification",
                Task::Regression => "regression",
            },
            allowed: format!("AUTO, {}", metrics_for(task).join(", ")),
        })
    }
}

/// All metrics of `task` for predictions `pred` of targets `y`.
pub fn evaluate(task: Task, y: &[f64], pred: &[f64], n_classes: usize) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    match task {
        Task::Regression => {
            let n = y.len() as f64;
            let mse = y
                .iter()
                .zip(pred)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                / n;
            let mae = y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
            let mean = y.iter().sum::<f64>() / n;
            let tss = y.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
            m.insert("mse".into(), mse);
            m.insert("rmse".into(), mse.sqrt());
            m.insert("mae".into(), mae);
            m.insert(
                "r2".into(),
                if tss > 0.0 { 1.0 - mse / tss } else { f64::NAN },
            );
        }
        _ => {
            let c = n_classes;
            let n = y.len();
            let mut ll = 0.0;
            let mut correct = 0usize;
            let mut per_class = vec![(0usize, 0usize); c];
            for i in 0..n {
                let p = &pred[i * c..(i + 1) * c];
                let t = y[i] as usize;
                ll -= p[t].clamp(1e-15, 1.0).ln();
                let top = argmax(p);
                per_class[t].0 += 1;
                if top == t {
                    correct += 1;
                    per_class[t].1 += 1;
                }
            }
            m.insert("logloss".into(), ll / n as f64);
            m.insert("accuracy".into(), correct as f64 / n as f64);
            let present: Vec<&(usize, usize)> = per_class.iter().filter(|p| p.0 > 0).collect();
            m.insert(
                "mean_per_class_error".into(),
                present
                    .iter()
                    .map(|p| 1.0 - p.1 as f64 / p.0 as f64)
                    .sum::<f64>()
                    / present.len() as f64,
            );
            if c == 2 {
                let s: Vec<f64> = (0..n).map(|i| pred[i * 2 + 1]).collect();
                let pos: Vec<bool> = y.iter().map(|&v| v == 1.0).collect();
                m.insert("auc".into(), auc(&s, &pos));
                m.insert("aucpr".into(), average_precision(&s, &pos));
            } else {
                // Macro average of one-vs-rest AUCs over the classes present with both outcomes.
                let mut sum = 0.0;
                let mut k = 0;
                for cls in 0..c {
                    let s: Vec<f64> = (0..n).map(|i| pred[i * c + cls]).collect();
                    let pos: Vec<bool> = y.iter().map(|&v| v as usize == cls).collect();
                    let a = auc(&s, &pos);
                    if a.is_finite() {
                        sum += a;
                        k += 1;
                    }
                }
                m.insert("auc".into(), if k > 0 { sum / k as f64 } else { f64::NAN });
            }
        }
    }
    m
}

/// Index of the first largest value (the graph's ArgMax picks the first too).
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (k, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = k;
        }
    }
    best
}

/// Area under the ROC curve via the rank-sum statistic, ties given their average rank.
pub fn auc(score: &[f64], positive: &[bool]) -> f64 {
    let n = score.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| {
        score[a]
            .partial_cmp(&score[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = n as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Average precision: the mean of precision at each threshold weighted by the recall gained there.
pub fn average_precision(score: &[f64], positive: &[bool]) -> f64 {
    let n = score.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| {
        score[b]
            .partial_cmp(&score[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    if n_pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            if positive[k] {
                tp += 1.0
            } else {
                fp += 1.0
            }
        }
        let recall = tp / n_pos;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
        i = j + 1;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computation() {
        // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert!((auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]) - 0.75).abs() < 1e-12);
        // ties count half
        assert!((auc(&[0.5, 0.5], &[false, true]) - 0.5).abs() < 1e-12);
        // sklearn average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.8333…
        assert!(
            (average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])
                - 0.8333333333333333)
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn classification_and_regression_metrics() {
        let m = evaluate(
            Task::BinaryClassification,
            &[0.0, 1.0],
            &[0.8, 0.2, 0.3, 0.7],
            2,
        );
        assert!((m["logloss"] - (-(0.8f64.ln() + 0.7f64.ln()) / 2.0)).abs() < 1e-12);
        assert_eq!(m["accuracy"], 1.0);
        assert_eq!(m["auc"], 1.0);
        let m = evaluate(Task::Regression, &[1.0, 2.0, 3.0], &[1.0, 2.0, 5.0], 0);
        assert!((m["rmse"] - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m["mae"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m["r2"] - (1.0 - (4.0 / 3.0) / (2.0 / 3.0))).abs() < 1e-12);
    }

    #[test]
    fn metric_names_are_case_insensitive_and_checked_per_task() {
        assert_eq!(
            canonical_metric("AUC", Task::BinaryClassification).unwrap(),
            "auc"
        );
        assert_eq!(canonical_metric("RMSE", Task::Regression).unwrap(), "rmse");
        assert_eq!(
            canonical_metric("AUTO", Task::MulticlassClassification).unwrap(),
            "logloss"
        );
        let e = canonical_metric("AUC", Task::Regression).unwrap_err();
        assert!(e.to_string().contains("rmse"), "{e}");
    }
}
