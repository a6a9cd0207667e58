//! The stacked ensemble's metalearner, fitted on out-of-fold (or held-out validation) predictions of
//! the base models, like H2O's non-negative GLM metalearner:
//!
//! - classification: log-linear pooling, `P_k ∝ exp(b_k) · Π_m P_m,k ^ w_m` with `w ≥ 0` — a
//!   multinomial logistic regression on the base models' log-probabilities with one shared weight per
//!   model (for two classes this is logistic regression on the base models' logits);
//! - regression: `b + Σ_m w_m v_m` with `w ≥ 0` (non-negative least squares).
//!
//! Solved by projected Newton steps (few parameters: one per model plus the intercepts), with a tiny
//! ridge on `w` for conditioning.

// Numeric kernels: index loops over parallel arrays read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use crate::linear::cholesky_solve;
use crate::metrics::{auc, evaluate, higher_is_better};
use crate::scorer::{combine, Shape, LOG_EPS};
use crate::Task;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blend {
    pub weights: Vec<f64>,
    /// One per prediction column (`bias[0]` is fixed at 0 for classification).
    pub bias: Vec<f64>,
    /// A weighted mean of the base predictions (weights summing to one, zero bias) rather than
    /// log-linear pooling; see [`select`].
    pub linear: bool,
}

const RIDGE: f64 = 1e-6;

/// Fits the metalearner on `preds` (one `n × width` matrix per base model) for targets `y`.
pub(crate) fn fit(shape: Shape, preds: &[&[f64]], y: &[f64]) -> Blend {
    let m = preds.len();
    let n = y.len();
    let w = shape.width();
    // Features per row and column: log-probabilities, or values.
    let feat = |p: &[f64], i: usize, k: usize| -> f64 {
        let v = p[i * w + k];
        if shape.task == Task::Regression {
            v
        } else {
            v.clamp(LOG_EPS, 1.0).ln()
        }
    };
    // Parameters: weights (m), then free intercepts (1 for regression, w-1 for classification).
    let nb = if shape.task == Task::Regression {
        1
    } else {
        w - 1
    };
    let p = m + nb;
    let mut theta = vec![1.0 / m as f64; m];
    theta.extend(std::iter::repeat_n(0.0, nb));
    if shape.task == Task::Regression {
        theta[m] = 0.0;
    }
    let unpack = |theta: &[f64]| -> Blend {
        let mut bias = vec![0.0; w];
        if shape.task == Task::Regression {
            bias[0] = theta[m];
        } else {
            bias[1..].copy_from_slice(&theta[m..]);
        }
        Blend {
            weights: theta[..m].to_vec(),
            bias,
            linear: false,
        }
    };
    // Objective, gradient and Hessian (mean loss + ridge on the weights).
    let eval = |theta: &[f64], want_hess: bool| -> (f64, Vec<f64>, Vec<f64>) {
        let b = unpack(theta);
        let mut f = 0.0;
        let mut g = vec![0.0; p];
        let mut h = vec![0.0; if want_hess { p * p } else { 0 }];
        let mut z = vec![0.0; w * p];
        for i in 0..n {
            // z[k] = ∂score_k/∂theta
            z.iter_mut().for_each(|v| *v = 0.0);
            for k in 0..w {
                for (j, pm) in preds.iter().enumerate() {
                    z[k * p + j] = feat(pm, i, k);
                }
                if shape.task == Task::Regression {
                    z[k * p + m] = 1.0;
                } else if k > 0 {
                    z[k * p + m + k - 1] = 1.0;
                }
            }
            if shape.task == Task::Regression {
                let s = b.bias[0] + (0..m).map(|j| b.weights[j] * z[j]).sum::<f64>();
                let r = s - y[i];
                f += 0.5 * r * r;
                for a in 0..p {
                    g[a] += r * z[a];
                    if want_hess {
                        for c in 0..p {
                            h[a * p + c] += z[a] * z[c];
                        }
                    }
                }
            } else {
                let mut s: Vec<f64> = (0..w)
                    .map(|k| b.bias[k] + (0..m).map(|j| b.weights[j] * z[k * p + j]).sum::<f64>())
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + s.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                let yi = y[i] as usize;
                f += lse - s[yi];
                s.iter_mut().for_each(|v| *v = (*v - lse).exp());
                let zbar: Vec<f64> = (0..p)
                    .map(|a| (0..w).map(|k| s[k] * z[k * p + a]).sum())
                    .collect();
                for a in 0..p {
                    g[a] += zbar[a] - z[yi * p + a];
                }
                if want_hess {
                    for k in 0..w {
                        for a in 0..p {
                            let za = s[k] * z[k * p + a];
                            if za == 0.0 {
                                continue;
                            }
                            for c in 0..p {
                                h[a * p + c] += za * z[k * p + c];
                            }
                        }
                    }
                    for a in 0..p {
                        for c in 0..p {
                            h[a * p + c] -= zbar[a] * zbar[c];
                        }
                    }
                }
            }
        }
        let nf = n as f64;
        f /= nf;
        g.iter_mut().for_each(|v| *v /= nf);
        h.iter_mut().for_each(|v| *v /= nf);
        for j in 0..m {
            f += 0.5 * RIDGE * theta[j] * theta[j];
            g[j] += RIDGE * theta[j];
        }
        if want_hess {
            for j in 0..p {
                h[j * p + j] += RIDGE;
            }
        }
        (f, g, h)
    };
    let (mut fx, mut g, mut h) = eval(&theta, true);
    for _ in 0..100 {
        // Free variables: not held at the bound by a gradient pushing outwards.
        let free: Vec<usize> = (0..p)
            .filter(|&j| !(j < m && theta[j] <= 0.0 && g[j] > 0.0))
            .collect();
        let q = free.len();
        let mut a = vec![0.0; q * q];
        let mut rhs = vec![0.0; q];
        for (r, &i) in free.iter().enumerate() {
            rhs[r] = -g[i];
            for (c, &j) in free.iter().enumerate() {
                a[r * q + c] = h[i * p + j];
            }
        }
        let step = cholesky_solve(&mut a, &rhs, q);
        let mut dir = vec![0.0; p];
        for (r, &i) in free.iter().enumerate() {
            dir[i] = step[r];
        }
        let mut t = 1.0;
        let mut accepted = None;
        while t > 1e-10 {
            let cand: Vec<f64> = (0..p)
                .map(|j| {
                    let v = theta[j] + t * dir[j];
                    if j < m {
                        v.max(0.0)
                    } else {
                        v
                    }
                })
                .collect();
            let (fc, _, _) = eval(&cand, false);
            let decrease: f64 = (0..p).map(|j| g[j] * (cand[j] - theta[j])).sum();
            if fc <= fx + 1e-4 * decrease.min(0.0) {
                accepted = Some((cand, fc));
                break;
            }
            t *= 0.5;
        }
        let Some((cand, fc)) = accepted else { break };
        let done = (fx - fc).abs() <= 1e-12 * fx.abs().max(1.0);
        theta = cand;
        (fx, g, h) = eval(&theta, true);
        if done {
            break;
        }
    }
    let mut blend = unpack(&theta);
    if blend.weights.iter().all(|&v| v == 0.0) {
        // Keep the ensemble a function of its inputs: fall back to the single most useful model.
        let best = (0..m)
            .min_by(|&a, &b| {
                loss_of(shape, preds[a], y)
                    .partial_cmp(&loss_of(shape, preds[b], y))
                    .unwrap()
            })
            .unwrap_or(0);
        blend = Blend {
            weights: (0..m).map(|j| if j == best { 1.0 } else { 0.0 }).collect(),
            bias: vec![0.0; w],
            linear: false,
        };
    }
    blend
}

fn loss_of(shape: Shape, p: &[f64], y: &[f64]) -> f64 {
    let w = shape.width();
    (0..y.len())
        .map(|i| {
            if shape.task == Task::Regression {
                (p[i] - y[i]).powi(2)
            } else {
                -p[i * w + y[i] as usize].clamp(LOG_EPS, 1.0).ln()
            }
        })
        .sum()
}

pub(crate) fn apply(shape: Shape, blend: &Blend, preds: &[&[f64]], n: usize) -> Vec<f64> {
    combine(shape, preds, &blend.weights, &blend.bias, blend.linear, n)
}

/// Rounds of ensemble selection: weights are multiples of `1 / SELECTION_ROUNDS`.
pub(crate) const SELECTION_ROUNDS: usize = 50;

/// Ensemble selection (Caruana, Niculescu-Mizil, Crew & Ksikes, ICML 2004): starting from nothing, add
/// — with replacement — the base model whose inclusion makes the mean of the chosen models' predictions
/// best by `metric` (the leaderboard's), for [`SELECTION_ROUNDS`] rounds, and keep the best mean met
/// on the way (the earliest, so the smallest, among equals). The result is a weighted mean of the base
/// predictions: probabilities for classification, so a model's confident extremes cannot outvote the
/// others as they can in log space. Ties between candidates go to the earlier model.
pub(crate) fn select(shape: Shape, preds: &[&[f64]], y: &[f64], metric: &str) -> Blend {
    let m = preds.len();
    let n = y.len();
    let w = shape.width();
    let higher = higher_is_better(metric);
    let binary_auc = shape.task == Task::BinaryClassification && metric == "auc";
    let positive: Vec<bool> = y.iter().map(|&v| v == 1.0).collect();
    let mut column = vec![0.0; if binary_auc { n } else { 0 }];
    let mut score = |p: &[f64]| -> f64 {
        let v = if binary_auc {
            // The one metric computed alone: the search's most common case, and a sort per candidate.
            for i in 0..n {
                column[i] = p[i * 2 + 1];
            }
            auc(&column, &positive)
        } else {
            evaluate(shape.task, y, p, shape.classes)
                .get(metric)
                .copied()
                .unwrap_or(f64::NAN)
        };
        if v.is_nan() {
            f64::NEG_INFINITY
        } else if higher {
            v
        } else {
            -v
        }
    };
    let mut sum = vec![0.0; n * w];
    let mut counts = vec![0usize; m];
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut mean = vec![0.0; n * w];
    for round in 1..=SELECTION_ROUNDS {
        let mut pick: Option<(f64, usize)> = None;
        for (j, p) in preds.iter().enumerate() {
            for i in 0..n * w {
                mean[i] = (sum[i] + p[i]) / round as f64;
            }
            let v = score(&mean);
            if pick.map(|(b, _)| v > b).unwrap_or(true) {
                pick = Some((v, j));
            }
        }
        let (v, j) = pick.expect("at least one model");
        for i in 0..n * w {
            sum[i] += preds[j][i];
        }
        counts[j] += 1;
        if best.as_ref().map(|(b, _)| v > *b).unwrap_or(true) {
            best = Some((v, counts.clone()));
        }
    }
    let counts = best.map(|b| b.1).unwrap_or(counts);
    let total: usize = counts.iter().sum();
    Blend {
        weights: counts.iter().map(|&c| c as f64 / total as f64).collect(),
        bias: vec![0.0; w],
        linear: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Two-class probabilities of a model that knows nothing: `[1 - p, p]` per row, `p` uniform.
    fn noise_probabilities(r: &mut Rng, n: usize) -> Vec<f64> {
        (0..n)
            .flat_map(|_| {
                let p = r.f64();
                [1.0 - p, p]
            })
            .collect()
    }

    #[test]
    fn regression_blend_is_non_negative_and_finds_the_good_model() {
        let mut r = Rng::new(3);
        let n = 300;
        let y: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let good: Vec<f64> = y.iter().map(|v| v + 0.1 * r.normal()).collect();
        let anti: Vec<f64> = y.iter().map(|v| -v + 0.1 * r.normal()).collect();
        let shape = Shape {
            task: Task::Regression,
            classes: 0,
        };
        let b = fit(shape, &[&good, &anti], &y);
        assert!(b.weights[0] > 0.9 && b.weights[1] == 0.0, "{b:?}");
    }

    #[test]
    fn ensemble_selection_averages_probabilities_with_weights_summing_to_one() {
        let mut r = Rng::new(5);
        let n = 400;
        let y: Vec<f64> = (0..n)
            .map(|_| if r.f64() < 0.5 { 1.0 } else { 0.0 })
            .collect();
        // Two informative models with independent errors, and one that is noise.
        let informative = |r: &mut Rng| -> Vec<f64> {
            y.iter()
                .flat_map(|&v| {
                    let p =
                        (if v == 1.0 { 0.6 } else { 0.4 } + 0.3 * (r.f64() - 0.5)).clamp(0.0, 1.0);
                    [1.0 - p, p]
                })
                .collect()
        };
        let a = informative(&mut r);
        let b = informative(&mut r);
        let noise = noise_probabilities(&mut r, n);
        let shape = Shape {
            task: Task::BinaryClassification,
            classes: 2,
        };
        let blend = select(shape, &[&noise, &a, &b], &y, "auc");
        assert!(blend.linear);
        assert!(
            (blend.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12,
            "{blend:?}"
        );
        assert_eq!(blend.weights[0], 0.0, "{blend:?}");
        assert!(
            blend.weights[1] > 0.2 && blend.weights[2] > 0.2,
            "{blend:?}"
        );
        let out = apply(shape, &blend, &[&noise, &a, &b], n);
        let ensemble_auc = auc(
            &(0..n).map(|i| out[2 * i + 1]).collect::<Vec<_>>(),
            &y.iter().map(|&v| v == 1.0).collect::<Vec<_>>(),
        );
        let single_auc = auc(
            &(0..n).map(|i| a[2 * i + 1]).collect::<Vec<_>>(),
            &y.iter().map(|&v| v == 1.0).collect::<Vec<_>>(),
        );
        assert!(ensemble_auc > single_auc, "{ensemble_auc} vs {single_auc}");
        assert!((out[0] + out[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn classification_blend_prefers_the_informative_model() {
        let mut r = Rng::new(4);
        let n = 400;
        let y: Vec<f64> = (0..n)
            .map(|_| if r.f64() < 0.5 { 1.0 } else { 0.0 })
            .collect();
        let good: Vec<f64> = y
            .iter()
            .flat_map(|&v| {
                let p = if v == 1.0 { 0.8 } else { 0.2 };
                [1.0 - p, p]
            })
            .collect();
        let noise = noise_probabilities(&mut r, n);
        let shape = Shape {
            task: Task::BinaryClassification,
            classes: 2,
        };
        let b = fit(shape, &[&good, &noise], &y);
        assert!(b.weights[0] > 0.5 && b.weights[1] < 0.1, "{b:?}");
        let out = apply(shape, &b, &[&good, &noise], n);
        assert!((out[0] + out[1] - 1.0).abs() < 1e-12);
    }
}
