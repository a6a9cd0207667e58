//! Live data drift and concept drift of a deployment.
//!
//! The prediction log writer folds every logged row's features into mergeable sketches per
//! deployment and 5-minute bucket ([`LiveSketches`]), saved to the database by each server. Drift over
//! any range merges the buckets it covers — cost independent of how many predictions were made — and
//! compares them with the reference profile of the model's training dataset version, using the
//! statistics engine's sketch tests and the decision rule of the product contract (p < alpha and
//! PSI ≥ threshold).

use crate::error::{ApiError, ApiResult};
use crate::monitoring;
use crate::rollouts;
use crate::state::AppState;
use coreplex_domain::registry::Task;
use coreplex_stats::drift as sd;
use coreplex_stats::sketch::{CategoricalCounts, NumericSketch};
use coreplex_store::features_codec::{self, FeatureValue};
use coreplex_store::{Deployment, PredictionRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// Length of a sketch bucket.
pub const BUCKET_MS: i64 = 5 * 60_000;

/// One feature's live sketch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureSketch {
    Numeric { sketch: NumericSketch },
    Categorical { counts: CategoricalCounts },
}

impl FeatureSketch {
    fn push(&mut self, v: FeatureValue) {
        match (self, v) {
            (FeatureSketch::Numeric { sketch }, FeatureValue::String(s)) => {
                match s.trim().parse::<f64>() {
                    Ok(x) => sketch.push(x),
                    Err(_) => sketch.push_missing(),
                }
            }
            (FeatureSketch::Numeric { sketch }, v) => match v.as_f64() {
                Some(x) => sketch.push(x),
                None => sketch.push_missing(),
            },
            (FeatureSketch::Categorical { counts }, FeatureValue::Null) => counts.push_missing(),
            (FeatureSketch::Categorical { counts }, FeatureValue::String(s)) => counts.push(s),
            (FeatureSketch::Categorical { counts }, other) => {
                counts.push(&other.to_json().to_string())
            }
        }
    }
    fn merge(&mut self, other: &FeatureSketch) {
        match (self, other) {
            (FeatureSketch::Numeric { sketch: a }, FeatureSketch::Numeric { sketch: b }) => {
                a.merge(b)
            }
            (
                FeatureSketch::Categorical { counts: a },
                FeatureSketch::Categorical { counts: b },
            ) => a.merge(b),
            _ => {}
        }
    }
}

/// All features of one deployment in one bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketSketch {
    pub rows: i64,
    pub features: BTreeMap<String, FeatureSketch>,
}

impl BucketSketch {
    /// Folds in one logged row (the compact form of `coreplex_store::features_codec`).
    pub fn push_row(&mut self, row: &[u8]) {
        self.rows += 1;
        // The encoded row and the map are both in name order: a row with the features seen before
        // is walked in step with the map, without a lookup per feature.
        let mut entries = features_codec::entries(row).peekable();
        for (known, f) in self.features.iter_mut() {
            match entries.peek() {
                Some(&(name, v)) if name == known => {
                    f.push(v);
                    entries.next();
                }
                _ => break,
            }
        }
        for (name, v) in entries {
            // The common case — a feature seen before — allocates nothing.
            if let Some(f) = self.features.get_mut(name) {
                f.push(v);
                continue;
            }
            let mut f = match v {
                FeatureValue::String(s) if s.trim().parse::<f64>().is_err() => {
                    FeatureSketch::Categorical {
                        counts: CategoricalCounts::new(),
                    }
                }
                FeatureValue::Bool(_) => FeatureSketch::Categorical {
                    counts: CategoricalCounts::new(),
                },
                _ => FeatureSketch::Numeric {
                    sketch: NumericSketch::new(),
                },
            };
            f.push(v);
            self.features.insert(name.to_string(), f);
        }
    }
    pub fn merge(&mut self, other: &BucketSketch) {
        self.rows += other.rows;
        for (k, v) in &other.features {
            match self.features.get_mut(k) {
                Some(mine) => mine.merge(v),
                None => {
                    self.features.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

/// The writer-side accumulator: sketches per (deployment, bucket) not yet saved.
#[derive(Default)]
pub struct LiveSketches {
    buckets: HashMap<String, HashMap<i64, (BucketSketch, bool)>>,
}

impl LiveSketches {
    pub fn add(&mut self, deployment_id: &str, at: i64, row: &[u8]) {
        let b = at.div_euclid(BUCKET_MS) * BUCKET_MS;
        // Looked up by reference first: a prediction of a known deployment allocates no key.
        let per_deployment = match self.buckets.get_mut(deployment_id) {
            Some(m) => m,
            None => self.buckets.entry(deployment_id.to_string()).or_default(),
        };
        let e = per_deployment.entry(b).or_default();
        e.0.push_row(row);
        e.1 = true;
    }

    /// Saves changed buckets (each server keeps its own row per bucket) and forgets old clean ones.
    pub async fn save(&mut self, store: &coreplex_store::Store, writer: &str, now_hint: i64) {
        let mut newest = now_hint;
        for (dep, per_deployment) in self.buckets.iter_mut() {
            for (bucket, (sketch, dirty)) in per_deployment.iter_mut() {
                newest = newest.max(*bucket);
                if !*dirty {
                    continue;
                }
                let text = match serde_json::to_string(sketch) {
                    Ok(t) => t,
                    Err(_) => continue,
                };
                match store
                    .put_feature_sketch(dep, *bucket, writer, sketch.rows, &text, now_hint)
                    .await
                {
                    Ok(()) => *dirty = false,
                    Err(e) => tracing::warn!(error = %e, "could not save feature sketches"),
                }
            }
        }
        for m in self.buckets.values_mut() {
            m.retain(|b, (_, dirty)| *dirty || *b >= newest - 2 * BUCKET_MS);
        }
        self.buckets.retain(|_, m| !m.is_empty());
    }
}

/// Histograms of two sketches on the same 20 equal-width bins, for plotting.
fn shared_histogram(r: &NumericSketch, c: &NumericSketch) -> serde_json::Value {
    let lo = r.min().unwrap_or(0.0).min(c.min().unwrap_or(f64::INFINITY));
    let hi = r
        .max()
        .unwrap_or(0.0)
        .max(c.max().unwrap_or(f64::NEG_INFINITY));
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let bins = 20;
    let edges: Vec<f64> = (0..=bins)
        .map(|i| {
            if i == bins {
                hi
            } else {
                lo + (hi - lo) * i as f64 / bins as f64
            }
        })
        .collect();
    json!({"edges": edges, "reference": r.counts_on_edges(&edges), "current": c.counts_on_edges(&edges)})
}

/// Drift decision settings.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub alpha: f64,
    pub psi_threshold: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            alpha: 0.05,
            psi_threshold: 0.1,
        }
    }
}

/// Compares current sketches with a dataset version's profile, feature by feature.
pub fn compare(
    reference_profile: &serde_json::Value,
    current: &BucketSketch,
    features: &[String],
    rule: Rule,
) -> serde_json::Value {
    let cols: HashMap<&str, &serde_json::Value> = reference_profile["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|x| Some((x["name"].as_str()?, x)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let (mut drifted, mut evaluated, mut max_psi) = (0usize, 0usize, 0.0f64);
    for name in features {
        let Some(cur) = current.features.get(name) else {
            out.push(json!({"name": name, "status": "no_current_data"}));
            continue;
        };
        let Some(refcol) = cols.get(name.as_str()) else {
            out.push(json!({"name": name, "status": "not_in_reference"}));
            continue;
        };
        let entry = match (cur, refcol["kind"].as_str()) {
            (FeatureSketch::Numeric { sketch: c }, Some("numeric")) => {
                let Ok(r) = serde_json::from_value::<NumericSketch>(refcol["sketch"].clone())
                else {
                    out.push(json!({"name": name, "status": "reference_has_no_sketch"}));
                    continue;
                };
                if c.count() == 0 || r.count() == 0 {
                    out.push(json!({"name": name, "kind": "numeric", "status": "no_values",
                        "missing_share_reference": r.missing_share(), "missing_share_current": c.missing_share()}));
                    continue;
                }
                let ks = sd::ks_from_sketches(&r, c).ok();
                let psi = sd::psi_from_sketches(&r, c).ok();
                let p = ks.as_ref().map(|k| k.p_value);
                json!({
                    "name": name, "kind": "numeric", "test": "ks",
                    "statistic": ks.as_ref().map(|k| k.statistic), "p_value": p, "psi": psi,
                    "wasserstein_normed": sd::wasserstein_normed_from_sketches(&r, c).ok(),
                    "jensen_shannon": sd::jensen_shannon_from_sketches(&r, c).ok(),
                    "missing_share_reference": r.missing_share(), "missing_share_current": c.missing_share(),
                    "reference_count": r.count(), "current_count": c.count(),
                    "histogram": shared_histogram(&r, c),
                })
            }
            (
                FeatureSketch::Categorical { counts: c },
                Some("categorical" | "boolean" | "text"),
            ) => {
                let Ok(r) = serde_json::from_value::<CategoricalCounts>(refcol["sketch"].clone())
                else {
                    out.push(json!({"name": name, "status": "reference_has_no_sketch"}));
                    continue;
                };
                if c.total() == 0 || r.total() == 0 {
                    out.push(json!({"name": name, "kind": "categorical", "status": "no_values"}));
                    continue;
                }
                let chi = sd::chi2_from_counts(&r, c).ok();
                let psi = sd::psi_categorical(&r, c).ok();
                let (rc, cc) = sd::aligned_counts(&r, c);
                let mut cats: Vec<&String> = r.counts.keys().chain(c.counts.keys()).collect();
                cats.sort();
                cats.dedup();
                json!({
                    "name": name, "kind": "categorical", "test": "chi2",
                    "statistic": chi.as_ref().map(|x| x.statistic), "p_value": chi.as_ref().map(|x| x.p_value), "psi": psi,
                    "jensen_shannon": sd::jensen_shannon_categorical(&r, c).ok(),
                    "missing_share_reference": r.missing_share(), "missing_share_current": c.missing_share(),
                    "reference_count": r.total(), "current_count": c.total(),
                    "histogram": {"categories": cats, "reference": rc, "current": cc},
                })
            }
            _ => json!({"name": name, "status": "kind_mismatch", "reference_kind": refcol["kind"]}),
        };
        let mut entry = entry;
        if entry.get("status").is_none() {
            evaluated += 1;
            let p = entry["p_value"].as_f64();
            let psi = entry["psi"].as_f64();
            let d = matches!((p, psi), (Some(p), Some(psi)) if p < rule.alpha && psi >= rule.psi_threshold);
            if let Some(psi) = psi {
                max_psi = max_psi.max(psi);
            }
            drifted += d as usize;
            entry["drifted"] = json!(d);
        }
        out.push(entry);
    }
    json!({
        "features": out,
        "features_evaluated": evaluated,
        "features_drifted": drifted,
        "data_drift_score": if evaluated == 0 { serde_json::Value::Null } else { json!(drifted as f64 / evaluated as f64) },
        "max_psi": if evaluated == 0 { serde_json::Value::Null } else { json!(max_psi) },
        "current_rows": current.rows,
        "alpha": rule.alpha,
        "psi_threshold": rule.psi_threshold,
    })
}

/// Merged live sketches of a deployment over `[since, until)` (bucket-aligned).
pub async fn current_sketch(
    state: &AppState,
    deployment_id: &str,
    since: i64,
    until: i64,
) -> ApiResult<BucketSketch> {
    state.log.flush().await;
    let from = since.div_euclid(BUCKET_MS) * BUCKET_MS;
    let mut merged = BucketSketch::default();
    for (_, _, text) in state
        .store
        .feature_sketches(deployment_id, from, until)
        .await?
    {
        match serde_json::from_str::<BucketSketch>(&text) {
            Ok(b) => merged.merge(&b),
            Err(e) => tracing::warn!(error = %e, "unreadable feature sketch"),
        }
    }
    Ok(merged)
}

/// The drift report of a deployment's serving model over `[since, until)`.
pub async fn live_drift(
    state: &AppState,
    d: &Deployment,
    since: i64,
    until: i64,
    reference_version: Option<&str>,
    rule: Rule,
) -> ApiResult<serde_json::Value> {
    let model_id = d
        .serving_model_id
        .clone()
        .ok_or_else(|| ApiError::conflict(format!("{} serves no model yet", d.name)))?;
    let model = state
        .store
        .get_model_any(&model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("serving model"))?;
    let dsv = match reference_version {
        Some(v) => v.to_string(),
        None => model.lineage["dataset_version_id"].as_str().map(str::to_string).ok_or_else(|| {
            ApiError::conflict(format!(
                "model {model_id} has no training dataset version in its lineage; register it with dataset_version_id or pass reference_dataset_version_id"
            ))
        })?,
    };
    let version = state
        .store
        .get_dataset_version_any(&dsv)
        .await?
        .filter(|v| v.project_id == d.project_id)
        .ok_or_else(|| {
            ApiError::invalid(
                "reference_dataset_version_id",
                format!("no dataset version {dsv} in this project"),
            )
        })?;
    if version.status != "ready" {
        return Err(ApiError::conflict(format!(
            "dataset version {dsv} is still {}; its profile is the drift reference",
            version.status
        )));
    }
    let features: Vec<String> = model.input_schema["features"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let current = current_sketch(state, &d.id, since, until).await?;
    let mut report = compare(&version.profile, &current, &features, rule);
    report["deployment_id"] = json!(d.id);
    report["model_id"] = json!(model_id);
    report["reference_dataset_version_id"] = json!(dsv);
    report["window_start"] = json!(crate::routes::time(since));
    report["window_end"] = json!(crate::routes::time(until));
    Ok(report)
}

/// Concept drift: the quality metric over `windows` consecutive windows compared with the model's
/// validation value; drift when every window is worse by more than `tolerance` (relative).
pub async fn concept_drift(
    state: &AppState,
    d: &Deployment,
    metric: Option<&str>,
    window_minutes: i64,
    windows: i64,
    tolerance: f64,
) -> ApiResult<serde_json::Value> {
    let task = rollouts::task_of(d);
    let metric = match metric {
        Some(m) => coreplex_domain::rollout::QualityMetric::parse("metric", m)?,
        None => coreplex_domain::rollout::QualityMetric::default_for(task),
    };
    metric.require_task("metric", task)?;
    let model_id = d
        .serving_model_id
        .clone()
        .ok_or_else(|| ApiError::conflict(format!("{} serves no model yet", d.name)))?;
    let model = state
        .store
        .get_model_any(&model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("serving model"))?;
    let validation = model.lineage["validation_metrics"]
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(metric.as_str()))
                .and_then(|(_, v)| v.as_f64())
        });
    let classes = crate::monitoring::model_classes(&model);
    state.log.flush().await;
    let now = state.now();
    let w = window_minutes * 60_000;
    let rows = state
        .store
        .predictions_between(
            &d.id,
            now + 1 - windows * w,
            now + 1,
            task == Task::MulticlassClassification,
        )
        .await?;
    let mut values = Vec::new();
    for i in (0..windows).rev() {
        let (s, e) = (now + 1 - (i + 1) * w, now + 1 - i * w);
        let sel: Vec<&PredictionRow> = rows
            .iter()
            .filter(|r| r.role == "primary" && r.model_id == model_id && r.at >= s && r.at < e)
            .collect();
        let q = monitoring::quality(&sel, task, &classes);
        values.push(json!({"start": crate::routes::time(s), "end": crate::routes::time(e),
            "labelled": sel.iter().filter(|r| r.label.is_some() || r.label_value.is_some()).count(), "value": q.get(metric.as_str())}));
    }
    let degraded = values
        .iter()
        .filter(|v| match (v["value"].as_f64(), validation) {
            (Some(x), Some(base)) => metric.relative_drop(base, x) > tolerance,
            _ => false,
        })
        .count();
    Ok(json!({
        "deployment_id": d.id, "model_id": model_id, "metric": metric.as_str(), "validation_value": validation,
        "tolerance": tolerance, "windows": values, "degraded_windows": degraded,
        "drifted": validation.is_some() && degraded as i64 == windows,
    }))
}
