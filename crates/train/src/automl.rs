//! The search: which models are tried in which order, how each is trained and validated, the stacked
//! ensembles at the end, and the leaderboard.
//!
//! Splits (seeded, stratified for classification): below 5,000 rows every row is cross-validated in 5
//! folds — each model's out-of-fold predictions give its metrics and the ensembles' training data, the
//! leaderboard ranks by them, and the model kept is refitted on all rows (no holdout: a tenth of a few
//! hundred rows would only add noise). Boosting trains the folds in lockstep; the refit uses the
//! iteration count best for the folds' mean validation loss, and each fold's out-of-fold predictions
//! the count best for the other folds (see `lgbm::train_cv`). A cross-validated leaderboard is
//! led by the linear model when it is within one standard error (paired, per fold) of the best
//! model. From 5,000 rows on, 10% of the rows are a holdout every model is
//! scored and ranked on; models train on 90% of the rest and early-stop on the other 10%, whose
//! predictions train the ensembles.
//!
//! Budget: base models train until `max_runtime_secs` minus a reserve for the ensembles; a model still
//! training at the deadline stops there and is kept with the iterations it has. Nothing new starts after
//! the deadline, and the ensembles are skipped once the whole budget is spent.

use crate::data::{resolve_target, FeatureSchema, IgnoredColumn, Matrix, Scheme, Splits, Target};
use crate::forest::Forest;
use crate::lgbm::{self, Control, LgbDataset};
use crate::linear::{self, Design, LinearModel, LAMBDAS};
use crate::metrics::{canonical_metric, evaluate, higher_is_better};
use crate::onnx::Graph;
use crate::rng::Rng;
use crate::scorer::{transform, Scorer, Shape};
use crate::stack;
use crate::{Error, Result, Table, Task};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ExperimentConfig {
    pub target: String,
    /// Inferred from the target when `None`: text or two values → classification, numbers → regression.
    pub task: Option<Task>,
    /// Base models to train (stacked ensembles come on top); 0 = no limit but time.
    pub max_models: usize,
    /// Wall-clock budget for the whole experiment; 0 = no limit but `max_models`.
    pub max_runtime_secs: f64,
    /// `AUC`, `AUCPR`, `logloss`, `accuracy`, `mean_per_class_error`, `RMSE`, `MSE`, `MAE`, `R2` or
    /// `AUTO`; case-insensitive.
    pub stopping_metric: String,
    pub seed: u64,
}

impl ExperimentConfig {
    pub fn new(target: impl Into<String>) -> ExperimentConfig {
        ExperimentConfig {
            target: target.into(),
            task: None,
            max_models: 20,
            max_runtime_secs: 600.0,
            stopping_metric: "AUTO".into(),
            seed: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainedModel {
    /// `gbm_3`, `rf_1`, `xrt_1`, `glm_1`, `stacked_best_of_family`, `stacked_all`.
    pub name: String,
    /// `gbm`, `rf`, `glm` or `stacked`.
    pub family: String,
    pub hyperparameters: serde_json::Value,
    /// On the holdout rows; when the search cross-validated (small data, no holdout), out-of-fold.
    pub metrics: BTreeMap<String, f64>,
    /// Out-of-fold metrics when the search cross-validated.
    pub cv_metrics: Option<BTreeMap<String, f64>>,
    pub training_secs: f64,
    #[serde(skip)]
    pub onnx: Vec<u8>,
    /// The graph's inputs, one `[N, 1]` tensor per feature column, in this order.
    pub feature_names: Vec<String>,
    /// Classifiers: class labels in the order of the probability columns.
    pub class_labels: Option<Vec<String>>,
    #[serde(skip)]
    pub(crate) scorer: Scorer,
    #[serde(skip)]
    pub(crate) schema: Arc<FeatureSchema>,
    #[serde(skip)]
    pub(crate) shape: Shape,
}

/// Native predictions of a trained model (what the ONNX graph must reproduce).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Predictions {
    Classes {
        labels: Vec<String>,
        probabilities: Vec<Vec<f64>>,
    },
    Values(Vec<f64>),
}

impl TrainedModel {
    pub fn task(&self) -> Task {
        self.shape.task
    }

    /// Predicts with the trainer's own code (LightGBM, or the linear algebra in f64) for the rows of
    /// `table`, which must have the feature columns (extra columns, such as the target, are ignored).
    pub fn predict(&self, table: &Table) -> Result<Predictions> {
        table.validate()?;
        let x = self.schema.encode(table, None)?;
        let p = self.scorer.predict(self.shape, &x)?;
        Ok(match self.shape.task {
            Task::Regression => Predictions::Values(p),
            _ => {
                let w = self.shape.width();
                let classes = self.class_labels.clone().unwrap_or_default();
                let probabilities: Vec<Vec<f64>> = p.chunks(w).map(|c| c.to_vec()).collect();
                let labels = probabilities
                    .iter()
                    .map(|r| classes[crate::metrics::argmax(r)].clone())
                    .collect();
                Predictions::Classes {
                    labels,
                    probabilities,
                }
            }
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    pub task: Task,
    /// Canonical (lower-case) name of the metric models are ranked by.
    pub stopping_metric: String,
    /// Best first by the ranking metric; under cross-validation, the linear model leads in the
    /// leader's place when within one standard error of it (see `prefer_linear_model`).
    pub models: Vec<TrainedModel>,
    pub holdout_rows: usize,
    pub train_rows: usize,
    /// `cross_validation` (small data) or `holdout`.
    pub ranked_by: String,
    pub ignored_columns: Vec<IgnoredColumn>,
    /// Rows dropped because their target was missing.
    pub rows_without_target: usize,
    pub elapsed_secs: f64,
}

impl Leaderboard {
    pub fn best(&self) -> Option<&TrainedModel> {
        self.models.first()
    }
    /// The value a model is ranked by.
    pub fn rank_value(&self, m: &TrainedModel) -> f64 {
        rank_value(
            m,
            &self.stopping_metric,
            self.ranked_by == "cross_validation",
        )
    }
}

fn rank_value(m: &TrainedModel, metric: &str, cv: bool) -> f64 {
    let src = if cv {
        m.cv_metrics.as_ref().unwrap_or(&m.metrics)
    } else {
        &m.metrics
    };
    src.get(metric).copied().unwrap_or(f64::NAN)
}

/// Hyperparameters of one tree model.
#[derive(Debug, Clone, PartialEq)]
struct TreeSpec {
    forest: bool,
    extra_trees: bool,
    learning_rate: f64,
    num_leaves: usize,
    max_depth: i64,
    min_data_in_leaf: usize,
    feature_fraction: f64,
    bagging_fraction: f64,
    lambda_l2: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Spec {
    Glm,
    Trees(TreeSpec),
}

fn gbm(
    learning_rate: f64,
    num_leaves: usize,
    max_depth: i64,
    min_data_in_leaf: usize,
    ff: f64,
    bf: f64,
    l2: f64,
) -> Spec {
    Spec::Trees(TreeSpec {
        forest: false,
        extra_trees: false,
        learning_rate,
        num_leaves,
        max_depth,
        min_data_in_leaf,
        feature_fraction: ff,
        bagging_fraction: bf,
        lambda_l2: l2,
    })
}

fn rf(extra_trees: bool, n_features: usize, task: Task) -> Spec {
    // Per-split feature sampling like a random forest: √F for classification, F/3 for regression.
    let f = n_features.max(1) as f64;
    let ff = if task == Task::Regression {
        (f / 3.0).max(1.0) / f
    } else {
        f.sqrt().max(1.0) / f
    };
    Spec::Trees(TreeSpec {
        forest: true,
        extra_trees,
        learning_rate: 1.0,
        num_leaves: 1024,
        max_depth: -1,
        min_data_in_leaf: 5,
        feature_fraction: ff.min(1.0),
        bagging_fraction: 0.632,
        lambda_l2: 0.0,
    })
}

/// The fixed start of the search (a spread of well-known settings), then random GBMs.
fn plan(n_features: usize, task: Task) -> Vec<Spec> {
    vec![
        gbm(0.1, 31, -1, 20, 0.9, 1.0, 0.0),
        Spec::Glm,
        rf(false, n_features, task),
        gbm(0.05, 127, -1, 20, 0.8, 0.8, 1.0),
        gbm(0.05, 255, -1, 10, 0.7, 0.8, 1.0),
        rf(true, n_features, task),
        gbm(0.1, 15, 4, 20, 0.8, 0.9, 0.0),
        gbm(0.03, 63, -1, 40, 0.6, 0.7, 5.0),
    ]
}

fn random_gbm(r: &mut Rng) -> Spec {
    gbm(
        r.pick(&[0.02, 0.03, 0.05, 0.08, 0.1]),
        r.pick(&[15, 31, 63, 127, 255]),
        r.pick(&[-1, -1, 6, 8, 10]),
        r.pick(&[5, 10, 20, 40, 80]),
        r.pick(&[0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        r.pick(&[0.6, 0.7, 0.8, 0.9, 1.0]),
        r.pick(&[0.0, 0.1, 1.0, 5.0, 10.0]),
    )
}

/// OpenMP threads for LightGBM: one below 20,000 rows, where thread synchronisation costs more than it
/// saves (and a busy machine makes spinning threads wait for a time slice), else all cores.
fn threads(n_rows: usize) -> usize {
    if n_rows < 20_000 {
        1
    } else {
        0
    }
}

/// What training one model gives: the model, its hyperparameters, its level-one predictions, and its
/// holdout predictions when training already made them.
struct Fitted {
    scorer: Scorer,
    hyperparameters: serde_json::Value,
    level1: Vec<f64>,
    holdout: Option<Vec<f64>>,
}

/// One trained base model with its predictions on the level-one rows and on the holdout.
struct BaseResult {
    model: TrainedModel,
    level1: Vec<f64>,
    holdout: Vec<f64>,
}

struct Search<'a> {
    table_target: &'a str,
    shape: Shape,
    schema: Arc<FeatureSchema>,
    x: Matrix,
    y: Vec<f64>,
    splits: Splits,
    /// Level-one rows (CV rows, or validation rows) and their encoded features and targets.
    l1_rows: Vec<usize>,
    x_hold: Matrix,
    y_hold: Vec<f64>,
    y_l1: Vec<f64>,
    metric: String,
    seed: u64,
    classes: Option<Vec<String>>,
    datasets: Option<Datasets>,
}

enum Datasets {
    Blend {
        fit: LgbDataset,
        valid: LgbDataset,
        x_valid: Matrix,
    },
    Cv {
        folds: Vec<(LgbDataset, LgbDataset, Matrix, Vec<usize>)>,
        all: LgbDataset,
    },
}

impl Search<'_> {
    fn cv(&self) -> bool {
        matches!(self.splits.scheme, Scheme::CrossValidation { .. })
    }

    fn n_outputs(&self) -> usize {
        if self.shape.task == Task::MulticlassClassification {
            self.shape.classes
        } else {
            1
        }
    }

    fn dataset_params(&self) -> String {
        let cats = self.schema.categorical_indices();
        let mut p = format!(
            "max_bin=255 feature_pre_filter=false verbosity=-1 data_random_seed={}",
            self.seed % 1_000_000_007
        );
        if !cats.is_empty() {
            p.push_str(&format!(
                " categorical_feature={}",
                cats.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        p
    }

    fn datasets(&mut self) -> Result<&Datasets> {
        if self.datasets.is_none() {
            let params = self.dataset_params();
            let ds = match &self.splits.scheme {
                Scheme::Blending { fit, valid } => {
                    let yf: Vec<f64> = fit.iter().map(|&i| self.y[i]).collect();
                    let yv: Vec<f64> = valid.iter().map(|&i| self.y[i]).collect();
                    let fit_ds = LgbDataset::new(&self.x.rows(fit), &yf, &params, None)?;
                    let x_valid = self.x.rows(valid);
                    let valid_ds = LgbDataset::new(&x_valid, &yv, &params, Some(&fit_ds))?;
                    Datasets::Blend {
                        fit: fit_ds,
                        valid: valid_ds,
                        x_valid,
                    }
                }
                Scheme::CrossValidation { rows, fold, k } => {
                    let mut folds = Vec::new();
                    for f in 0..*k {
                        let tr: Vec<usize> = rows
                            .iter()
                            .zip(fold)
                            .filter(|(_, &g)| g != f)
                            .map(|(&r, _)| r)
                            .collect();
                        let pos: Vec<usize> = (0..rows.len()).filter(|&p| fold[p] == f).collect();
                        let va: Vec<usize> = pos.iter().map(|&p| rows[p]).collect();
                        let ytr: Vec<f64> = tr.iter().map(|&i| self.y[i]).collect();
                        let yva: Vec<f64> = va.iter().map(|&i| self.y[i]).collect();
                        let tr_ds = LgbDataset::new(&self.x.rows(&tr), &ytr, &params, None)?;
                        let x_va = self.x.rows(&va);
                        let va_ds = LgbDataset::new(&x_va, &yva, &params, Some(&tr_ds))?;
                        folds.push((tr_ds, va_ds, x_va, pos));
                    }
                    let yall: Vec<f64> = rows.iter().map(|&i| self.y[i]).collect();
                    let all = LgbDataset::new(&self.x.rows(rows), &yall, &params, None)?;
                    Datasets::Cv { folds, all }
                }
            };
            self.datasets = Some(ds);
        }
        Ok(self.datasets.as_ref().unwrap())
    }

    /// LightGBM's name for the early-stopping metric, and whether higher is better. Classifiers stop on
    /// log loss whatever the ranking metric: AUC and accuracy move in steps and plateau on small
    /// validation sets, which stops boosting early and at different points in each fold.
    fn lgbm_metric(&self) -> (&'static str, bool) {
        let multi = self.shape.task == Task::MulticlassClassification;
        match (self.metric.as_str(), self.shape.task) {
            ("mae", _) => ("l1", false),
            (_, Task::Regression) => ("l2", false),
            _ if multi => ("multi_logloss", false),
            _ => ("binary_logloss", false),
        }
    }

    fn booster_params(&self, s: &TreeSpec, seed: u64, n_train: usize) -> String {
        let (metric, _) = self.lgbm_metric();
        let objective = match self.shape.task {
            Task::BinaryClassification => "objective=binary".to_string(),
            Task::MulticlassClassification => {
                format!("objective=multiclass num_class={}", self.shape.classes)
            }
            Task::Regression => "objective=regression".to_string(),
        };
        let min_data_per_group = (n_train / 100).clamp(5, 100);
        let mut p = format!(
            "{objective} metric={metric} verbosity=-1 deterministic=true force_col_wise=true num_threads={} seed={} \
             learning_rate={} num_leaves={} max_depth={} min_data_in_leaf={} lambda_l2={} \
             min_data_per_group={min_data_per_group} cat_smooth=10 max_cat_to_onehot=4",
            threads(n_train),
            seed % 1_000_000_007,
            s.learning_rate,
            s.num_leaves,
            s.max_depth,
            s.min_data_in_leaf,
            s.lambda_l2
        );
        if s.forest {
            p.push_str(&format!(
                " boosting=rf bagging_fraction={} bagging_freq=1 feature_fraction_bynode={} extra_trees={}",
                s.bagging_fraction, s.feature_fraction, s.extra_trees
            ));
        } else {
            p.push_str(&format!(" feature_fraction={}", s.feature_fraction));
            if s.bagging_fraction < 1.0 {
                p.push_str(&format!(
                    " bagging_fraction={} bagging_freq=1",
                    s.bagging_fraction
                ));
            }
        }
        p
    }

    fn tree_hyperparameters(&self, s: &TreeSpec, iterations: usize) -> serde_json::Value {
        if s.forest {
            json!({
                "engine": "lightgbm", "boosting": "rf", "extra_trees": s.extra_trees, "ntrees": iterations,
                "num_leaves": s.num_leaves, "min_data_in_leaf": s.min_data_in_leaf,
                "feature_fraction_bynode": s.feature_fraction, "bagging_fraction": s.bagging_fraction,
            })
        } else {
            json!({
                "engine": "lightgbm", "boosting": "gbdt", "ntrees": iterations, "learning_rate": s.learning_rate,
                "num_leaves": s.num_leaves, "max_depth": s.max_depth, "min_data_in_leaf": s.min_data_in_leaf,
                "feature_fraction": s.feature_fraction, "bagging_fraction": s.bagging_fraction,
                "lambda_l2": s.lambda_l2, "early_stopping_metric": self.lgbm_metric().0,
            })
        }
    }

    /// Returns the model, its hyperparameters, and its level-one and holdout predictions (made with the
    /// live booster: reloading a large model from its text costs seconds at the end of a budget).
    fn train_trees(&mut self, s: &TreeSpec, seed: u64, ctl: &mut Control<'_>) -> Result<Fitted> {
        let k = self.n_outputs();
        let shape = self.shape;
        let (_, hib) = self.lgbm_metric();
        let max_iter = if s.forest { 100 } else { 10_000 };
        let patience = if s.forest {
            None
        } else {
            Some(((3.0 / s.learning_rate).round() as usize).clamp(20, 150))
        };
        let n_learn = self.l1_rows.len();
        let params = self.booster_params(s, seed, n_learn);
        let ds = self.datasets()?;
        let mut at_deadline = false;
        let (booster, iterations, l1) = match ds {
            Datasets::Blend {
                fit,
                valid,
                x_valid,
            } => {
                let out = lgbm::train(
                    fit,
                    if s.forest { None } else { Some(valid) },
                    &params,
                    max_iter,
                    patience,
                    hib,
                    ctl,
                )?;
                at_deadline = out.stopped_by_deadline;
                let l1 = transform(shape, &out.booster.predict_raw(x_valid, k, s.forest)?, k);
                let it = out.booster.iterations()?;
                (out.booster, it, l1)
            }
            Datasets::Cv { folds, all } => {
                let w = shape.width();
                let mut l1 = vec![0.0; n_learn * w];
                let mut scatter = |p: Vec<f64>, pos: &[usize]| {
                    for (r, &at) in pos.iter().enumerate() {
                        l1[at * w..(at + 1) * w].copy_from_slice(&p[r * w..(r + 1) * w]);
                    }
                };
                let n_iter = match patience {
                    // Boosting: early stopping on the folds' mean validation loss (see `lgbm::train_cv`).
                    Some(patience) => {
                        let pairs: Vec<(&LgbDataset, &LgbDataset)> =
                            folds.iter().map(|(tr, va, _, _)| (tr, va)).collect();
                        let (boosters, n_iter, stopped) =
                            lgbm::train_cv(&pairs, &params, max_iter, patience, ctl)?;
                        at_deadline |= stopped;
                        for (b, (_, _, x_va, pos)) in boosters.iter().zip(folds) {
                            scatter(transform(shape, &b.predict_raw(x_va, k, false)?, k), pos);
                        }
                        n_iter
                    }
                    None => {
                        let mut iters = Vec::new();
                        for (tr, _, x_va, pos) in folds {
                            let out = lgbm::train(tr, None, &params, max_iter, None, hib, ctl)?;
                            at_deadline |= out.stopped_by_deadline;
                            iters.push(out.booster.iterations()?.max(1));
                            let raw = out.booster.predict_raw(x_va, k, s.forest)?;
                            scatter(transform(shape, &raw, k), pos);
                        }
                        (iters.iter().sum::<usize>() as f64 / iters.len() as f64)
                            .round()
                            .max(1.0) as usize
                    }
                };
                // The refit on all rows trains for the cross-validated iteration count.
                let out = lgbm::train(all, None, &params, n_iter, None, hib, ctl)?;
                at_deadline |= out.stopped_by_deadline;
                let it = out.booster.iterations()?;
                (out.booster, it, l1)
            }
        };
        let holdout = transform(shape, &booster.predict_raw(&self.x_hold, k, s.forest)?, k);
        let t = Instant::now();
        let text = booster.save_string()?;
        let forest = Forest::parse(&text)?;
        tracing::debug!(secs = t.elapsed().as_secs_f64(), "model text parsed");
        let mut hp = self.tree_hyperparameters(s, iterations);
        hp["stopped_at_deadline"] = json!(at_deadline);
        Ok(Fitted {
            scorer: Scorer::Trees {
                model: Arc::new(text),
                forest: Arc::new(forest),
            },
            hyperparameters: hp,
            level1: l1,
            holdout: Some(holdout),
        })
    }

    fn train_glm(&mut self, deadline: Option<Instant>) -> Result<Fitted> {
        let task = self.shape.task;
        let k = linear::outputs(task, self.shape.classes);
        let shape = self.shape;
        let learn = self.splits.learning_rows();
        let design = Design::fit(&self.schema, &self.x.rows(&learn));
        let deviance = |p: &[f64], y: &[f64]| -> f64 {
            let m = evaluate(task, y, p, shape.classes);
            if task == Task::Regression {
                m["mse"]
            } else {
                m["logloss"]
            }
        };
        let past = |d: Option<Instant>| d.map(|d| Instant::now() >= d).unwrap_or(false);
        let (params, lambda, l1) = match &self.splits.scheme {
            Scheme::Blending { fit, valid } => {
                let zf = design.matrix(&self.x.rows(fit));
                let zv = design.matrix(&self.x.rows(valid));
                let yf: Vec<f64> = fit.iter().map(|&i| self.y[i]).collect();
                let yv: Vec<f64> = valid.iter().map(|&i| self.y[i]).collect();
                let mut best: Option<(f64, linear::Params, f64, Vec<f64>)> = None;
                let mut warm: Option<linear::Params> = None;
                let mut worse = 0;
                for &lambda in &LAMBDAS {
                    let p = linear::fit(task, &zf, &yf, k, lambda, warm.as_ref(), deadline);
                    let pv = transform(shape, &linear::raw_scores(&zv, &p, k), k);
                    let dev = deviance(&pv, &yv);
                    if best.as_ref().map(|b| dev < b.0).unwrap_or(true) {
                        best = Some((dev, p.clone(), lambda, pv));
                        worse = 0;
                    } else {
                        worse += 1;
                    }
                    warm = Some(p);
                    if worse >= 2 || past(deadline) {
                        break;
                    }
                }
                let (_, p, lambda, pv) = best.expect("at least one lambda");
                (p, lambda, pv)
            }
            Scheme::CrossValidation { rows, fold, k: nf } => {
                let w = shape.width();
                let mut dev = vec![0.0; LAMBDAS.len()];
                let mut tried = LAMBDAS.len();
                let mut fold_preds: Vec<Vec<Vec<f64>>> = Vec::new(); // [fold][lambda] predictions
                let mut fold_pos: Vec<Vec<usize>> = Vec::new();
                for f in 0..*nf {
                    let tr: Vec<usize> = rows
                        .iter()
                        .zip(fold)
                        .filter(|(_, &g)| g != f)
                        .map(|(&r, _)| r)
                        .collect();
                    let pos: Vec<usize> = (0..rows.len()).filter(|&p| fold[p] == f).collect();
                    let va: Vec<usize> = pos.iter().map(|&p| rows[p]).collect();
                    let zt = design.matrix(&self.x.rows(&tr));
                    let zv = design.matrix(&self.x.rows(&va));
                    let yt: Vec<f64> = tr.iter().map(|&i| self.y[i]).collect();
                    let yv: Vec<f64> = va.iter().map(|&i| self.y[i]).collect();
                    let mut warm: Option<linear::Params> = None;
                    let mut per_lambda = Vec::new();
                    for (li, &lambda) in LAMBDAS.iter().enumerate().take(tried) {
                        let p = linear::fit(task, &zt, &yt, k, lambda, warm.as_ref(), deadline);
                        let pv = transform(shape, &linear::raw_scores(&zv, &p, k), k);
                        dev[li] += deviance(&pv, &yv) * va.len() as f64;
                        per_lambda.push(pv);
                        warm = Some(p);
                        if past(deadline) {
                            tried = li + 1;
                            break;
                        }
                    }
                    fold_preds.push(per_lambda);
                    fold_pos.push(pos);
                }
                let best_li = (0..tried.min(fold_preds.iter().map(|f| f.len()).min().unwrap_or(1)))
                    .min_by(|&a, &b| {
                        dev[a]
                            .partial_cmp(&dev[b])
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .unwrap_or(0);
                let mut l1 = vec![0.0; rows.len() * w];
                for (preds, pos) in fold_preds.iter().zip(&fold_pos) {
                    let p = &preds[best_li.min(preds.len() - 1)];
                    for (r, &at) in pos.iter().enumerate() {
                        l1[at * w..(at + 1) * w].copy_from_slice(&p[r * w..(r + 1) * w]);
                    }
                }
                // Refit on all CV rows along the path down to the chosen penalty (warm starts).
                let za = design.matrix(&self.x.rows(rows));
                let ya: Vec<f64> = rows.iter().map(|&i| self.y[i]).collect();
                let mut warm: Option<linear::Params> = None;
                for &lambda in &LAMBDAS[..=best_li] {
                    warm = Some(linear::fit(
                        task,
                        &za,
                        &ya,
                        k,
                        lambda,
                        warm.as_ref(),
                        deadline,
                    ));
                }
                (warm.unwrap(), LAMBDAS[best_li], l1)
            }
        };
        let model = LinearModel::new(&design, k, &params);
        let hp = json!({
            "solver": if task == Task::Regression { "ridge (Cholesky)" } else { "L-BFGS" },
            "family": match task { Task::Regression => "gaussian", Task::BinaryClassification => "binomial", _ => "multinomial" },
            "alpha": 0.0, "lambda": lambda, "standardize": true, "missing_values": "mean_imputation",
            "categorical_encoding": "one_hot",
        });
        Ok(Fitted {
            scorer: Scorer::Linear(Arc::new(model)),
            hyperparameters: hp,
            level1: l1,
            holdout: None,
        })
    }

    fn export(&self, name: &str, family: &str, scorer: &Scorer) -> Result<Vec<u8>> {
        let mut g = Graph::default();
        let x = g.features(&self.schema);
        let p = scorer.emit(self.shape, &mut g, &x)?;
        let classes = self.class_labels();
        match &classes {
            Some(c) => g.classifier_outputs(&p, c),
            None => g.regressor_output(&p),
        }
        let mut meta = vec![
            ("coreplex.model".to_string(), name.to_string()),
            ("coreplex.family".to_string(), family.to_string()),
            (
                "coreplex.task".to_string(),
                self.shape.task.as_str().to_string(),
            ),
            ("coreplex.target".to_string(), self.table_target.to_string()),
            (
                "coreplex.feature_names".to_string(),
                serde_json::to_string(&self.schema.names()).unwrap_or_default(),
            ),
        ];
        if let Some(c) = &classes {
            meta.push((
                "coreplex.class_labels".to_string(),
                serde_json::to_string(c).unwrap_or_default(),
            ));
        }
        g.finish(name, &format!("CorePlexML {family} model `{name}`"), meta)
    }

    /// Metrics on the holdout; without one (cross-validation), the out-of-fold metrics.
    fn holdout_metrics(
        &self,
        pred: &[f64],
        cv: &Option<BTreeMap<String, f64>>,
    ) -> BTreeMap<String, f64> {
        match cv {
            Some(m) if self.y_hold.is_empty() => m.clone(),
            _ => evaluate(self.shape.task, &self.y_hold, pred, self.shape.classes),
        }
    }

    /// Out-of-fold metrics, pooled over the folds.
    fn oof_metrics(&self, oof: &[f64]) -> BTreeMap<String, f64> {
        evaluate(self.shape.task, &self.y_l1, oof, self.shape.classes)
    }

    /// The ranking metric in each cross-validation fold (empty without cross-validation).
    fn fold_values(&self, oof: &[f64]) -> Vec<f64> {
        let Scheme::CrossValidation { fold, k, .. } = &self.splits.scheme else {
            return Vec::new();
        };
        let w = self.shape.width();
        (0..*k)
            .map(|f| {
                let idx: Vec<usize> = (0..fold.len()).filter(|&p| fold[p] == f).collect();
                let y: Vec<f64> = idx.iter().map(|&i| self.y_l1[i]).collect();
                let p: Vec<f64> = idx
                    .iter()
                    .flat_map(|&i| oof[i * w..(i + 1) * w].to_vec())
                    .collect();
                evaluate(self.shape.task, &y, &p, self.shape.classes)
                    .get(&self.metric)
                    .copied()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    }

    fn class_labels(&self) -> Option<Vec<String>> {
        self.classes.clone()
    }

    fn finish_model(
        &self,
        name: String,
        family: &str,
        fitted: Fitted,
        started: Instant,
    ) -> Result<BaseResult> {
        let Fitted {
            scorer,
            hyperparameters,
            level1,
            holdout,
        } = fitted;
        let t = Instant::now();
        let holdout = match holdout {
            Some(h) => h,
            None => scorer.predict(self.shape, &self.x_hold)?,
        };
        tracing::debug!(model = %name, secs = t.elapsed().as_secs_f64(), "holdout predictions");
        let cv_metrics = self.cv().then(|| self.oof_metrics(&level1));
        let metrics = self.holdout_metrics(&holdout, &cv_metrics);
        let t = Instant::now();
        let onnx = self.export(&name, family, &scorer)?;
        tracing::debug!(model = %name, secs = t.elapsed().as_secs_f64(), "export");
        Ok(BaseResult {
            model: TrainedModel {
                name,
                family: family.to_string(),
                hyperparameters,
                metrics,
                cv_metrics,
                training_secs: started.elapsed().as_secs_f64(),
                onnx,
                feature_names: self.schema.names(),
                class_labels: self.class_labels(),
                scorer,
                schema: self.schema.clone(),
                shape: self.shape,
            },
            level1,
            holdout,
        })
    }
}

impl Search<'_> {
    /// A stacked ensemble of `members` (indices into `bases`), its metalearner fitted on their
    /// level-one predictions; in cross-validation the metalearner is itself cross-validated on the same
    /// folds for the ensemble's CV metrics.
    fn ensemble(
        &self,
        name: &str,
        bases: &[BaseResult],
        members: &[usize],
        selection: bool,
    ) -> Result<(TrainedModel, Vec<f64>)> {
        let started = Instant::now();
        let shape = self.shape;
        let fit = |preds: &[&[f64]], y: &[f64]| {
            if selection {
                stack::select(shape, preds, y, &self.metric)
            } else {
                stack::fit(shape, preds, y)
            }
        };
        let l1: Vec<&[f64]> = members
            .iter()
            .map(|&i| bases[i].level1.as_slice())
            .collect();
        let hold: Vec<&[f64]> = members
            .iter()
            .map(|&i| bases[i].holdout.as_slice())
            .collect();
        let blend = fit(&l1, &self.y_l1);
        let hold_pred = stack::apply(shape, &blend, &hold, self.y_hold.len());
        let mut folds = Vec::new();
        let cv_metrics = match &self.splits.scheme {
            Scheme::CrossValidation { fold, k, .. } => {
                let w = shape.width();
                let mut oof = vec![0.0; self.y_l1.len() * w];
                for f in 0..*k {
                    let tr: Vec<usize> = (0..fold.len()).filter(|&p| fold[p] != f).collect();
                    let va: Vec<usize> = (0..fold.len()).filter(|&p| fold[p] == f).collect();
                    let pick = |p: &[f64], idx: &[usize]| -> Vec<f64> {
                        idx.iter()
                            .flat_map(|&i| p[i * w..(i + 1) * w].to_vec())
                            .collect()
                    };
                    let tr_preds: Vec<Vec<f64>> = l1.iter().map(|p| pick(p, &tr)).collect();
                    let va_preds: Vec<Vec<f64>> = l1.iter().map(|p| pick(p, &va)).collect();
                    let ytr: Vec<f64> = tr.iter().map(|&i| self.y_l1[i]).collect();
                    let refs: Vec<&[f64]> = tr_preds.iter().map(|v| v.as_slice()).collect();
                    let b = fit(&refs, &ytr);
                    let vrefs: Vec<&[f64]> = va_preds.iter().map(|v| v.as_slice()).collect();
                    let out = stack::apply(shape, &b, &vrefs, va.len());
                    for (r, &at) in va.iter().enumerate() {
                        oof[at * w..(at + 1) * w].copy_from_slice(&out[r * w..(r + 1) * w]);
                    }
                }
                folds = self.fold_values(&oof);
                Some(self.oof_metrics(&oof))
            }
            Scheme::Blending { .. } => None,
        };
        let metrics = self.holdout_metrics(&hold_pred, &cv_metrics);
        let names: Vec<&str> = members
            .iter()
            .map(|&i| bases[i].model.name.as_str())
            .collect();
        let weights: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(&blend.weights)
            .map(|(n, w)| (n.to_string(), json!(w)))
            .collect();
        let metalearner = if selection {
            format!(
                "ensemble selection (Caruana et al. 2004) by {}, {} rounds: weighted mean of the {}",
                self.metric,
                stack::SELECTION_ROUNDS,
                if shape.task == Task::Regression { "predictions" } else { "probabilities" }
            )
        } else if shape.task == Task::Regression {
            "non-negative linear regression".to_string()
        } else {
            "non-negative log-linear pooling (multinomial logistic on log-probabilities)"
                .to_string()
        };
        let hp = json!({
            "metalearner": metalearner,
            "metalearner_training": if self.cv() { "out-of-fold predictions" } else { "validation-split predictions (blending)" },
            "base_models": names,
            "weights": weights,
            "intercepts": blend.bias,
        });
        let scorer = Scorer::Stacked {
            bases: members
                .iter()
                .map(|&i| bases[i].model.scorer.clone())
                .collect(),
            weights: blend.weights.clone(),
            bias: blend.bias.clone(),
            linear: blend.linear,
        };
        let onnx = self.export(name, "stacked", &scorer)?;
        let model = TrainedModel {
            name: name.to_string(),
            family: "stacked".into(),
            hyperparameters: hp,
            metrics,
            cv_metrics,
            training_secs: started.elapsed().as_secs_f64(),
            onnx,
            feature_names: self.schema.names(),
            class_labels: self.class_labels(),
            scorer,
            schema: self.schema.clone(),
            shape,
        };
        Ok((model, folds))
    }
}

/// The one-standard-error rule (Breiman et al., *Classification and Regression Trees*, 1984; Hastie,
/// Tibshirani & Friedman, *The Elements of Statistical Learning*, §7.10), applied to the linear
/// model: if the leader does not beat the best linear model by more than one standard error of their
/// paired per-fold difference, the linear model leads instead. A few hundred rows cannot tell such a
/// margin from fold-to-fold noise, and the leader's cross-validated score is optimistic: it is the
/// best of many tree models (each with its own search and early-stopping point) or an ensemble of
/// them, while the linear model has one regularisation path.
///
/// The rule stops at the linear model. A single tree model is not simpler than an ensemble of tree
/// models in the sense that matters (variance on new rows): the best of a random search is the most
/// optimistic score on the board, and putting it ahead of the ensemble that beats it made the test
/// metric worse on every small dataset of the training benchmark (see `bench/train/README.md`).
/// `models` is sorted best first; `folds` holds each model's ranking metric per fold.
fn prefer_linear_model(
    models: &mut [TrainedModel],
    folds: &BTreeMap<String, Vec<f64>>,
    higher_is_better: bool,
) {
    let ranked: Vec<(&str, Option<&[f64]>)> = models
        .iter()
        .map(|m| (m.family.as_str(), folds.get(&m.name).map(Vec::as_slice)))
        .collect();
    if let Some(at) = linear_within_noise(&ranked, higher_is_better) {
        models[..=at].rotate_right(1);
    }
}

/// The position of the best linear model in `ranked` (family and per-fold metric, best first) when
/// it should lead: it is not the leader already and the leader does not beat it beyond noise.
fn linear_within_noise(ranked: &[(&str, Option<&[f64]>)], higher_is_better: bool) -> Option<usize> {
    let lead = ranked.first()?.1?;
    let at = ranked.iter().position(|(family, _)| *family == "glm")?;
    let linear = ranked[at].1?;
    (at > 0 && !beats_beyond_noise(lead, linear, higher_is_better)).then_some(at)
}

/// Whether `a` beats `b` by more than one standard error of their paired per-fold differences.
fn beats_beyond_noise(a: &[f64], b: &[f64], higher_is_better: bool) -> bool {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| if higher_is_better { x - y } else { y - x })
        .collect();
    if d.len() < 2 || d.iter().any(|v| !v.is_finite()) {
        // No estimate of the noise: the ranking stands.
        return true;
    }
    let k = d.len() as f64;
    let mean = d.iter().sum::<f64>() / k;
    let sd = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
    mean > sd / k.sqrt()
}

/// Runs an experiment: trains up to `max_models` base models within `max_runtime_secs`, then the
/// stacked ensembles, and returns the leaderboard, best first.
///
/// `progress(fraction, message)` is called after each model and about every 200 ms while one trains;
/// returning `false` cancels the experiment ([`Error::Cancelled`]).
pub fn run_experiment(
    table: &Table,
    cfg: &ExperimentConfig,
    progress: &mut dyn FnMut(f64, &str) -> bool,
) -> Result<Leaderboard> {
    let start = Instant::now();
    if !cfg.max_runtime_secs.is_finite() || cfg.max_runtime_secs < 0.0 {
        return Err(Error::InvalidConfig {
            field: "max_runtime_secs",
            message: "must be a number of seconds ≥ 0 (0 = no limit)".into(),
        });
    }
    if cfg.max_models == 0 && cfg.max_runtime_secs == 0.0 {
        return Err(Error::InvalidConfig {
            field: "max_models",
            message: "set max_models or max_runtime_secs (or both); with neither the search would not end".into(),
        });
    }
    table.validate()?;
    let target: Target = resolve_target(table, &cfg.target, cfg.task)?;
    let task = target.task;
    let metric = canonical_metric(&cfg.stopping_metric, task)?;
    let splits = Splits::make(&target, cfg.seed);
    let learn_table_rows: Vec<usize> = splits
        .learning_rows()
        .iter()
        .map(|&i| target.rows[i])
        .collect();
    let (schema, ignored) = FeatureSchema::build(table, &cfg.target, &learn_table_rows);
    if schema.features.is_empty() {
        return Err(Error::NoFeatures {
            target: cfg.target.clone(),
        });
    }
    let x = schema.encode(table, Some(&target.rows))?;
    let shape = Shape {
        task,
        classes: target.n_classes(),
    };
    let budget =
        (cfg.max_runtime_secs > 0.0).then(|| Duration::from_secs_f64(cfg.max_runtime_secs));
    // Time kept back for the ensembles and the leaderboard.
    // Ten percent, within [0.1 s, 10 s]: the last model's predictions and export, and the ensembles.
    let reserve = budget.map(|b| {
        b.mul_f64(0.1)
            .clamp(Duration::from_millis(100), Duration::from_secs(10))
    });
    let base_deadline = budget.map(|b| start + b.saturating_sub(reserve.unwrap()));
    let l1_rows = match &splits.scheme {
        Scheme::CrossValidation { rows, .. } => rows.clone(),
        Scheme::Blending { valid, .. } => valid.clone(),
    };
    let x_hold = x.rows(&splits.holdout);
    let y_hold: Vec<f64> = splits.holdout.iter().map(|&i| target.y[i]).collect();
    let y_l1: Vec<f64> = l1_rows.iter().map(|&i| target.y[i]).collect();
    let mut search = Search {
        table_target: &cfg.target,
        shape,
        schema: Arc::new(schema),
        x,
        y: target.y.clone(),
        splits,
        l1_rows,
        x_hold,
        y_hold,
        y_l1,
        metric: metric.clone(),
        seed: cfg.seed,
        classes: target.classes.clone(),
        datasets: None,
    };
    let cv = search.cv();
    let max_models = if cfg.max_models == 0 {
        usize::MAX
    } else {
        cfg.max_models
    };
    let mut fixed = plan(search.schema.features.len(), task).into_iter();
    let mut rng = Rng::new(cfg.seed ^ 0x5EED);
    let mut tried: Vec<Spec> = Vec::new();
    let mut bases: Vec<BaseResult> = Vec::new();
    let mut counters: BTreeMap<&'static str, usize> = BTreeMap::new();
    let fraction = |done: usize| -> f64 {
        let by_models = if max_models == usize::MAX {
            0.0
        } else {
            done as f64 / max_models as f64
        };
        let by_time = budget
            .map(|b| start.elapsed().as_secs_f64() / b.as_secs_f64())
            .unwrap_or(0.0);
        by_models.max(by_time).min(0.99)
    };
    if !progress(
        0.0,
        &format!(
            "training on {} rows ({} held out), task {}",
            search.l1_rows.len(),
            search.y_hold.len(),
            task.as_str()
        ),
    ) {
        return Err(Error::Cancelled);
    }
    while bases.len() < max_models {
        if base_deadline.map(|d| Instant::now() >= d).unwrap_or(false) && !bases.is_empty() {
            break;
        }
        let spec = match fixed.next() {
            Some(s) => s,
            None => {
                let mut s = random_gbm(&mut rng);
                let mut attempts = 0;
                while tried.contains(&s) && attempts < 50 {
                    s = random_gbm(&mut rng);
                    attempts += 1;
                }
                s
            }
        };
        tried.push(spec.clone());
        let (prefix, family) = match &spec {
            Spec::Glm => ("glm", "glm"),
            Spec::Trees(t) if t.forest && t.extra_trees => ("xrt", "rf"),
            Spec::Trees(t) if t.forest => ("rf", "rf"),
            Spec::Trees(_) => ("gbm", "gbm"),
        };
        let counter = counters.entry(prefix).or_insert(0);
        *counter += 1;
        let name = format!("{prefix}_{counter}");
        let model_seed = cfg.seed.wrapping_add(bases.len() as u64 * 7919);
        let started = Instant::now();
        let done = bases.len();
        let msg = format!("training {name}");
        let mut check = || -> Result<()> {
            if progress(fraction(done), &msg) {
                Ok(())
            } else {
                Err(Error::Cancelled)
            }
        };
        let mut ctl = Control {
            deadline: base_deadline,
            check: &mut check,
        };
        let trained = match &spec {
            Spec::Glm => search.train_glm(base_deadline),
            Spec::Trees(t) => search.train_trees(t, model_seed, &mut ctl),
        };
        let result = search.finish_model(name.clone(), family, trained?, started)?;
        tracing::debug!(model = %name, secs = result.model.training_secs, "trained");
        let value = rank_value(&result.model, &metric, cv);
        bases.push(result);
        if !progress(
            fraction(bases.len()),
            &format!("trained {name}: {metric} {value:.5}"),
        ) {
            return Err(Error::Cancelled);
        }
    }
    // Ensembles: all models, and the best of each family.
    let better = |a: f64, b: f64| {
        if higher_is_better(&metric) {
            a > b
        } else {
            a < b
        }
    };
    let mut models: Vec<TrainedModel> = Vec::new();
    let mut fold_values: BTreeMap<String, Vec<f64>> = bases
        .iter()
        .map(|b| (b.model.name.clone(), search.fold_values(&b.level1)))
        .collect();
    if bases.len() >= 2 {
        let mut best_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, b) in bases.iter().enumerate() {
            let v = rank_value(&b.model, &metric, cv);
            let e = best_of.entry(b.model.family.as_str()).or_insert(i);
            let cur = rank_value(&bases[*e].model, &metric, cv);
            if v.is_finite() && (!cur.is_finite() || better(v, cur)) {
                *e = i;
            }
        }
        let mut fam: Vec<usize> = best_of.values().copied().collect();
        fam.sort_unstable();
        let all: Vec<usize> = (0..bases.len()).collect();
        for (name, members, selection) in [
            ("stacked_best_of_family", fam, false),
            ("stacked_all", all.clone(), false),
            ("stacked_selection", all, true),
        ] {
            if members.len() < 2 {
                continue;
            }
            if budget.map(|b| start.elapsed() >= b).unwrap_or(false) {
                // The budget is spent: keep what was trained.
                break;
            }
            if !progress(fraction(bases.len()), &format!("training {name}")) {
                return Err(Error::Cancelled);
            }
            let (model, f) = search.ensemble(name, &bases, &members, selection)?;
            fold_values.insert(model.name.clone(), f);
            models.push(model);
        }
    }
    let train_rows = search.l1_rows.len()
        + if cv {
            0
        } else {
            search.splits.learning_rows().len() - search.l1_rows.len()
        };
    let holdout_rows = search.y_hold.len();
    models.extend(bases.into_iter().map(|b| b.model));
    // Best first; models without a finite value last; ties keep training order (stable sort).
    models.sort_by(|a, b| {
        let (va, vb) = (rank_value(a, &metric, cv), rank_value(b, &metric, cv));
        match (va.is_finite(), vb.is_finite()) {
            (true, true) => {
                let o = va.partial_cmp(&vb).unwrap();
                if higher_is_better(&metric) {
                    o.reverse()
                } else {
                    o
                }
            }
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        }
    });
    if cv {
        prefer_linear_model(&mut models, &fold_values, higher_is_better(&metric));
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress(
        1.0,
        &format!("done: {} models in {elapsed:.1} s", models.len()),
    );
    Ok(Leaderboard {
        task,
        stopping_metric: metric,
        models,
        holdout_rows,
        train_rows,
        ranked_by: if cv { "cross_validation" } else { "holdout" }.into(),
        ignored_columns: ignored,
        rows_without_target: table.n_rows() - target.rows.len(),
        elapsed_secs: elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::{beats_beyond_noise, linear_within_noise};

    #[test]
    fn the_linear_model_leads_when_within_fold_noise_of_the_leader() {
        // RMSE per fold, best first: an ensemble, a boosted model, the linear model.
        let ensemble = [50.0, 56.0, 53.0, 58.0, 54.0];
        let gbm = [50.5, 56.2, 53.9, 58.1, 54.3];
        let close = [49.0, 57.5, 52.0, 59.5, 55.0];
        let ranked = [
            ("stacked", Some(&ensemble[..])),
            ("gbm", Some(&gbm[..])),
            ("glm", Some(&close[..])),
        ];
        assert_eq!(linear_within_noise(&ranked, false), Some(2));
        // The ensemble beats the linear model in every fold: it keeps the lead, and the boosted
        // model, within noise of it but worse, does not take it either.
        let far = [52.0, 58.1, 55.0, 60.2, 56.1];
        let ranked = [
            ("stacked", Some(&ensemble[..])),
            ("gbm", Some(&gbm[..])),
            ("glm", Some(&far[..])),
        ];
        assert_eq!(linear_within_noise(&ranked, false), None);
        // Already leading, or no linear model on the board.
        assert_eq!(
            linear_within_noise(&[("glm", Some(&close[..])), ("gbm", Some(&gbm[..]))], false),
            None
        );
        assert_eq!(
            linear_within_noise(
                &[("stacked", Some(&ensemble[..])), ("gbm", Some(&gbm[..]))],
                false
            ),
            None
        );
    }

    #[test]
    fn an_ensemble_leads_only_when_it_wins_beyond_fold_noise() {
        // RMSE per fold: the ensemble is better on average, but not consistently across folds.
        let single = [50.0, 56.0, 53.0, 58.0, 54.0];
        let noisy = [49.0, 57.5, 52.0, 58.5, 53.0];
        assert!(!beats_beyond_noise(&noisy, &single, false));
        // Better in every fold by about the same margin: a real improvement.
        let steady = [49.0, 55.1, 52.0, 57.2, 53.1];
        assert!(beats_beyond_noise(&steady, &single, false));
        // AUC (higher is better), and a tie.
        assert!(beats_beyond_noise(
            &[0.91, 0.92, 0.9],
            &[0.9, 0.91, 0.89],
            true
        ));
        assert!(!beats_beyond_noise(&[0.9, 0.9], &[0.9, 0.9], true));
    }
}
