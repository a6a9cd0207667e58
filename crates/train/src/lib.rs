//! The AutoML trainer: from a table and an experiment's settings to a leaderboard of trained models,
//! each exported as one ONNX graph that ONNX Runtime serves like an uploaded model.
//!
//! - Families: gradient-boosted trees and random forests (LightGBM through `lightgbm3`, histogram
//!   based, native categorical features and missing values, early stopping on a validation split), and
//!   regularised linear models (L2 logistic / multinomial / ridge on one-hot, imputed, standardised
//!   columns). Stacked ensembles (best of each family and all models, with a non-negative linear or
//!   log-linear metalearner; and ensemble selection over all models, a weighted mean of their
//!   predictions) finish the search, fitted on out-of-fold predictions.
//! - The search runs within `max_models` and `max_runtime_secs`, ranks by the stopping metric on
//!   cross-validation (small data) or a holdout, and is deterministic for a seed.
//! - Every model is written as ONNX by this crate (`onnx`): a tree→ONNX writer for LightGBM's model
//!   text, and the linear and ensemble graphs.
//!
//! A pure library: no server, no database, no files except [`Table::from_csv`]. The caller runs
//! [`run_experiment`] on a blocking thread and receives progress (and may cancel) through a callback.
//!
//! Threading: LightGBM trains with OpenMP (one thread below 20,000 rows, all cores above);
//! `run_experiment` itself is sequential. [`Leaderboard`] and [`TrainedModel`] are `Send + Sync`.
//!
//! Serving a trained model: every graph takes one `[N, 1]` input per name in
//! [`TrainedModel::feature_names`] (`float` for numeric columns, `string` for categorical ones; an
//! empty or unknown category is treated as missing) and outputs `label` (string) then `probabilities`
//! (`float [N, classes]`, columns in [`TrainedModel::class_labels`] order), or `value` (`float [N, 1]`)
//! for regression. With `coreplex_runtime`: `LoadedModel::load(&m.onnx, &LoadOptions { class_labels:
//! m.class_labels.clone(), ..Default::default() })`. [`TrainedModel::predict`] gives the trainer's own
//! predictions, which the graph reproduces to 1e-5 (tests/train.rs).
//!
//! Deliberately absent: no IO but [`Table::from_csv`], no async, no global state besides LightGBM's.

mod automl;
mod data;
mod error;
mod forest;
mod lgbm;
mod linear;
mod metrics;
mod onnx;
mod rng;
mod scorer;
mod stack;
mod table;

pub use automl::{run_experiment, ExperimentConfig, Leaderboard, Predictions, TrainedModel};
pub use coreplex_domain::registry::Task;
pub use data::IgnoredColumn;
pub use error::{Error, Result};
pub use metrics::{canonical_metric, higher_is_better, metrics_for};
pub use table::{Column, ColumnValues, Table};

/// Seeded synthetic tables for tests, examples and benchmarks.
pub mod synthetic;
