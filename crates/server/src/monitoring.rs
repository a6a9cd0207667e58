//! Measuring deployments from the prediction log: operational metrics (requests, errors, latency
//! percentiles, throughput) and quality metrics on labelled predictions, per variant and window.
//! Labels that arrive late are picked up because every window is computed from the log when asked.

use coreplex_domain::registry::Task;
use coreplex_domain::rollout::{Observation, QualityMetric};
use coreplex_store::{Deployment, Model, PredictionRow};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Metrics of one variant over one window.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct VariantMetrics {
    pub variant: String,
    pub model_id: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub throughput_rps: f64,
    pub latency_avg_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub labelled: u64,
    /// accuracy, precision, recall, f1, auc, log_loss (classification) or rmse, mae, r2 (regression),
    /// on the labelled predictions of the window.
    pub quality: BTreeMap<String, f64>,
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// The positive class of a binary model: "1", "true" or the second class label.
pub fn positive_class(classes: &[String]) -> String {
    for c in ["1", "true", "True", "yes"] {
        if classes.iter().any(|x| x == c) {
            return c.to_string();
        }
    }
    classes.get(1).cloned().unwrap_or_else(|| "1".into())
}

/// Normalises a label for comparison with predicted labels: `1.0` and `1` are the same class.
pub fn norm_label(l: &str) -> String {
    match l.trim().parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x.is_finite() => format!("{}", x as i64),
        _ => l.trim().to_string(),
    }
}

/// Quality metrics of labelled rows.
pub fn quality(rows: &[&PredictionRow], task: Task, classes: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let labelled: Vec<&&PredictionRow> = rows
        .iter()
        .filter(|r| !r.is_error && (r.label.is_some() || r.label_value.is_some()))
        .collect();
    if labelled.is_empty() {
        return out;
    }
    match task {
        Task::Regression => {
            let (mut t, mut p) = (Vec::new(), Vec::new());
            for r in &labelled {
                let truth = r
                    .label_value
                    .or_else(|| r.label.as_deref().and_then(|l| l.parse().ok()));
                let pred = r.predicted.as_deref().and_then(|v| v.parse::<f64>().ok());
                if let (Some(a), Some(b)) = (truth, pred) {
                    t.push(a);
                    p.push(b);
                }
            }
            if let Ok(m) = coreplex_stats::quality::regression_metrics(&t, &p) {
                out.insert("rmse".into(), m.rmse);
                out.insert("mae".into(), m.mae);
                out.insert("r2".into(), m.r2);
            }
        }
        Task::BinaryClassification => {
            let pos = positive_class(classes);
            let (mut t, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
            let mut all_scores = true;
            for r in &labelled {
                let Some(l) = r.label.as_deref() else {
                    continue;
                };
                t.push(norm_label(l) == pos);
                p.push(r.predicted.as_deref().map(norm_label).as_deref() == Some(pos.as_str()));
                match r.score {
                    Some(x) => s.push(x),
                    None => all_scores = false,
                }
            }
            if let Ok(m) =
                coreplex_stats::quality::binary_metrics(&t, &p, all_scores.then_some(s.as_slice()))
            {
                out.insert("accuracy".into(), m.accuracy);
                out.insert("precision".into(), m.precision);
                out.insert("recall".into(), m.recall);
                out.insert("f1".into(), m.f1);
                if let Some(a) = m.auc {
                    out.insert("auc".into(), a);
                }
                if let Some(l) = m.log_loss {
                    out.insert("log_loss".into(), l);
                }
            }
        }
        Task::MulticlassClassification => {
            let index: BTreeMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let (mut t, mut p, mut probs) = (Vec::new(), Vec::new(), Vec::new());
            let mut all_probs = true;
            for r in &labelled {
                let (Some(l), Some(pr)) = (r.label.as_deref(), r.predicted.as_deref()) else {
                    continue;
                };
                let (Some(&li), Some(&pi)) = (
                    index.get(norm_label(l).as_str()),
                    index.get(norm_label(pr).as_str()),
                ) else {
                    continue;
                };
                t.push(li);
                p.push(pi);
                let row: Option<Vec<f64>> = r
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                    .and_then(|v| {
                        let m = v["probabilities"].as_object()?.clone();
                        Some(
                            classes
                                .iter()
                                .map(|c| m.get(c).and_then(|x| x.as_f64()).unwrap_or(0.0))
                                .collect(),
                        )
                    });
                match row {
                    Some(r) => probs.push(r),
                    None => all_probs = false,
                }
            }
            if let Ok(m) = coreplex_stats::quality::multiclass_metrics(
                &t,
                &p,
                all_probs.then_some(probs.as_slice()),
            ) {
                out.insert("accuracy".into(), m.accuracy);
                out.insert("precision".into(), m.macro_precision);
                out.insert("recall".into(), m.macro_recall);
                out.insert("f1".into(), m.macro_f1);
                if let Some(a) = m.auc_ovr_macro {
                    out.insert("auc".into(), a);
                }
                if let Some(l) = m.log_loss {
                    out.insert("log_loss".into(), l);
                }
            }
        }
    }
    out
}

/// Metrics of the rows of one variant over a window of `window_ms`.
/// A classifier's class labels in the order of its probability outputs (empty for a regressor).
pub fn model_classes(model: &Model) -> Vec<String> {
    model.output_schema["classes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The class labels of the model `d` serves (empty when it serves none or it cannot be read).
pub async fn serving_classes(state: &crate::state::AppState, d: &Deployment) -> Vec<String> {
    match &d.serving_model_id {
        Some(m) => match state.store.get_model_any(m).await {
            Ok(Some(model)) => model_classes(&model),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}

pub fn variant_metrics(
    rows: &[&PredictionRow],
    task: Task,
    classes: &[String],
    window_ms: i64,
) -> VariantMetrics {
    let requests = rows.len() as u64;
    let errors = rows.iter().filter(|r| r.is_error).count() as u64;
    let mut lat: Vec<f64> = rows.iter().map(|r| r.latency_us as f64 / 1000.0).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let labelled = rows
        .iter()
        .filter(|r| r.label.is_some() || r.label_value.is_some())
        .count() as u64;
    VariantMetrics {
        variant: rows.first().map(|r| r.variant.clone()).unwrap_or_default(),
        model_id: rows.first().map(|r| r.model_id.clone()).unwrap_or_default(),
        requests,
        errors,
        error_rate: if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        },
        throughput_rps: requests as f64 / (window_ms.max(1) as f64 / 1000.0),
        latency_avg_ms: (!lat.is_empty()).then(|| lat.iter().sum::<f64>() / lat.len() as f64),
        latency_p50_ms: percentile(&lat, 0.5),
        latency_p95_ms: percentile(&lat, 0.95),
        latency_p99_ms: percentile(&lat, 0.99),
        labelled,
        quality: quality(rows, task, classes),
    }
}

/// A rollout gate's view of one variant.
pub fn observe(
    rows: &[&PredictionRow],
    task: Task,
    classes: &[String],
    metric: QualityMetric,
) -> Observation {
    let m = variant_metrics(rows, task, classes, 1);
    Observation {
        requests: m.requests,
        errors: m.errors,
        labelled: m.labelled,
        metric: m.quality.get(metric.as_str()).copied(),
        latency_p95_ms: m.latency_p95_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        variant: &str,
        predicted: &str,
        score: f64,
        label: Option<&str>,
        latency_us: i64,
    ) -> PredictionRow {
        PredictionRow {
            request_id: "r".into(),
            role: "primary".into(),
            model_id: "m".into(),
            variant: variant.into(),
            at: 0,
            latency_us,
            is_error: false,
            predicted: Some(predicted.into()),
            score: Some(score),
            output: None,
            label: label.map(str::to_string),
            label_value: None,
        }
    }

    #[test]
    fn binary_quality_uses_labels_scores_and_the_positive_class() {
        let rows = [
            row("a", "1", 0.9, Some("1"), 1000),
            row("a", "0", 0.2, Some("0"), 2000),
            row("a", "1", 0.6, Some("0"), 3000),
            row("a", "0", 0.4, Some("1.0"), 4000),
            row("a", "0", 0.1, None, 5000),
        ];
        let refs: Vec<&PredictionRow> = rows.iter().collect();
        let classes = vec!["0".to_string(), "1".to_string()];
        let m = variant_metrics(&refs, Task::BinaryClassification, &classes, 10_000);
        assert_eq!((m.requests, m.labelled), (5, 4));
        assert_eq!(m.quality["accuracy"], 0.5);
        assert_eq!(m.quality["auc"], 0.75);
        assert_eq!(m.latency_p50_ms, Some(3.0));
        assert_eq!(m.throughput_rps, 0.5);
    }
}
