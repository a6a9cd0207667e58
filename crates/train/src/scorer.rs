//! What a trained model computes, in two forms that must agree: natively (LightGBM itself, or the
//! linear algebra in f64) and as an ONNX graph. Classifiers give class probabilities (`n × classes`,
//! at least two columns), regressors one value per row.

use crate::data::Matrix;
use crate::forest::Forest;
use crate::lgbm::LgbBooster;
use crate::linear::LinearModel;
use crate::onnx::{data_type, trees, Graph};
use crate::{Result, Task};
use std::sync::Arc;

/// Probabilities below this are clipped before the ensemble takes their logarithm.
pub(crate) const LOG_EPS: f64 = 1e-9;

#[derive(Debug, Clone)]
pub(crate) enum Scorer {
    Trees {
        model: Arc<String>,
        forest: Arc<Forest>,
    },
    Linear(Arc<LinearModel>),
    /// Classification: `P ∝ exp(bias_k) · Π_m P_m,k ^ w_m` (log-linear pooling, w ≥ 0), or with
    /// `linear` the weighted mean `Σ_m w_m · P_m,k` (weights summing to one, no bias); regression:
    /// `bias_0 + Σ_m w_m · v_m`.
    Stacked {
        bases: Vec<Scorer>,
        weights: Vec<f64>,
        bias: Vec<f64>,
        linear: bool,
    },
}

/// The task and class count the outputs are shaped for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub task: Task,
    pub classes: usize,
}

impl Shape {
    /// Columns of a prediction row.
    pub fn width(&self) -> usize {
        if self.task == Task::Regression {
            1
        } else {
            self.classes
        }
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Raw scores (`n × k`) to predictions: sigmoid for binary (k = 1 → two columns), softmax for
/// multiclass, identity for regression.
pub(crate) fn transform(shape: Shape, raw: &[f64], k: usize) -> Vec<f64> {
    match shape.task {
        Task::Regression => raw.to_vec(),
        Task::BinaryClassification => raw
            .iter()
            .flat_map(|&z| {
                let p = sigmoid(z);
                [1.0 - p, p]
            })
            .collect(),
        Task::MulticlassClassification => {
            let mut out = raw.to_vec();
            for row in out.chunks_mut(k) {
                softmax(row);
            }
            out
        }
    }
}

pub(crate) fn softmax(row: &mut [f64]) {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for v in row.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    row.iter_mut().for_each(|v| *v /= s);
}

/// The ensemble's combination of base predictions (each `n × width`): log-linear pooling for
/// classification unless `linear` (a weighted mean of the probabilities).
pub(crate) fn combine(
    shape: Shape,
    preds: &[&[f64]],
    weights: &[f64],
    bias: &[f64],
    linear: bool,
    n: usize,
) -> Vec<f64> {
    let log = shape.task != Task::Regression && !linear;
    let w = shape.width();
    let mut out = vec![0.0; n * w];
    for i in 0..n {
        let row = &mut out[i * w..(i + 1) * w];
        row.copy_from_slice(&bias[..w]);
        for (p, &wm) in preds.iter().zip(weights) {
            if wm == 0.0 {
                continue;
            }
            for k in 0..w {
                let v = p[i * w + k];
                row[k] += wm * if log { v.clamp(LOG_EPS, 1.0).ln() } else { v };
            }
        }
        if log {
            softmax(row);
        }
    }
    out
}

impl Scorer {
    /// Native predictions for encoded rows.
    pub fn predict(&self, shape: Shape, x: &Matrix) -> Result<Vec<f64>> {
        match self {
            Scorer::Trees { model, forest } => {
                let booster = LgbBooster::from_string(model)?;
                let raw = booster.predict_raw(x, forest.outputs, forest.average)?;
                Ok(transform(shape, &raw, forest.outputs))
            }
            Scorer::Linear(m) => Ok(transform(shape, &m.raw(x), m.k)),
            Scorer::Stacked {
                bases,
                weights,
                bias,
                linear,
            } => {
                let mut preds = Vec::new();
                for (b, &w) in bases.iter().zip(weights) {
                    preds.push(if w == 0.0 {
                        Vec::new()
                    } else {
                        b.predict(shape, x)?
                    });
                }
                let refs: Vec<&[f64]> = preds.iter().map(|p| p.as_slice()).collect();
                Ok(combine(shape, &refs, weights, bias, *linear, x.n))
            }
        }
    }

    /// Appends this model's graph reading `x` (`double [N, F]`); returns `double` predictions
    /// (`[N, classes]` probabilities or `[N, 1]` values).
    pub fn emit(&self, shape: Shape, g: &mut Graph, x: &str) -> Result<String> {
        let raw = match self {
            Scorer::Trees { forest, .. } => {
                let r = trees::tree_ensemble(g, x, forest)?;
                g.cast(&r, data_type::DOUBLE)
            }
            Scorer::Linear(m) => m.emit(g, x),
            Scorer::Stacked {
                bases,
                weights,
                bias,
                linear,
            } => {
                let log = shape.task != Task::Regression && !*linear;
                let mut terms = Vec::new();
                for (b, &w) in bases.iter().zip(weights) {
                    if w == 0.0 {
                        continue;
                    }
                    let p = b.emit(shape, g, x)?;
                    let feature = if !log {
                        p
                    } else {
                        let lo = g.const_f64("eps", vec![], vec![LOG_EPS]);
                        let hi = g.const_f64("one", vec![], vec![1.0]);
                        let c = g.op("Clip", &[&p, &lo, &hi], vec![]);
                        g.op("Log", &[&c], vec![])
                    };
                    let wc = g.const_f64("weight", vec![], vec![w]);
                    terms.push(g.op("Mul", &[&feature, &wc], vec![]));
                }
                let width = shape.width();
                let b = g.const_f64("bias", vec![width as i64], bias[..width].to_vec());
                let mut refs: Vec<&str> = terms.iter().map(|s| s.as_str()).collect();
                refs.push(&b);
                let s = if refs.len() == 1 {
                    g.op("Identity", &refs, vec![])
                } else {
                    g.op("Sum", &refs, vec![])
                };
                return Ok(if !log {
                    // A sum of [N,width] terms and a [width] bias is [N,width].
                    s
                } else {
                    g.op("Softmax", &[&s], vec![crate::onnx::attr_int("axis", 1)])
                });
            }
        };
        Ok(match shape.task {
            Task::Regression => raw,
            Task::BinaryClassification => {
                let p = g.op("Sigmoid", &[&raw], vec![]);
                let one = g.const_f64("one", vec![], vec![1.0]);
                let q = g.op("Sub", &[&one, &p], vec![]);
                g.op("Concat", &[&q, &p], vec![crate::onnx::attr_int("axis", 1)])
            }
            Task::MulticlassClassification => {
                g.op("Softmax", &[&raw], vec![crate::onnx::attr_int("axis", 1)])
            }
        })
    }
}
