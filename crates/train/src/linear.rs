//! Regularised linear models: L2-penalised logistic regression (binary and multinomial) and ridge
//! regression, over a design matrix of standardised numeric columns (missing → mean) and one-hot
//! categorical columns (missing or unknown → all zeros). The same steps are written into the graph.
//!
//! Why a hand-written solver rather than `linfa-logistic`: the search needs ridge regression and a
//! regularisation path with warm starts and a deadline, and the ensemble needs a non-negative
//! metalearner; linfa-logistic covers none of those (and brings ndarray 0.16 and argmin with it), so a
//! ~150-line L-BFGS plus a Cholesky solve covers all three with one code path we can reason about.

// Numeric kernels: index loops over parallel arrays read clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

use crate::data::{FeatureKind, FeatureSchema, Matrix};
use crate::onnx::{attr_int, data_type, Graph};
use crate::Task;
use std::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct LinearModel {
    /// Feature indices of numeric columns, with their training means and standard deviations.
    pub numeric: Vec<usize>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    /// (feature index, number of categories) of categorical columns.
    pub categorical: Vec<(usize, usize)>,
    /// Outputs: 1 (binary logit or regression value) or the number of classes.
    pub k: usize,
    /// `dim × k`, row-major.
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

/// Means and standard deviations of the numeric columns, and the one-hot layout.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    pub numeric: Vec<usize>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    pub categorical: Vec<(usize, usize)>,
}

impl Design {
    pub fn fit(schema: &FeatureSchema, x: &Matrix) -> Design {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        for (j, f) in schema.features.iter().enumerate() {
            match &f.kind {
                FeatureKind::Numeric => numeric.push(j),
                FeatureKind::Categorical { categories } => categorical.push((j, categories.len())),
            }
        }
        let mut means = Vec::new();
        let mut stds = Vec::new();
        for &j in &numeric {
            let (mut s, mut s2, mut c) = (0.0, 0.0, 0.0);
            for i in 0..x.n {
                let v = x.row(i)[j];
                if !v.is_nan() {
                    s += v;
                    s2 += v * v;
                    c += 1.0;
                }
            }
            let m = if c > 0.0 { s / c } else { 0.0 };
            let var = if c > 0.0 {
                (s2 / c - m * m).max(0.0)
            } else {
                0.0
            };
            means.push(m);
            stds.push(if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 });
        }
        Design {
            numeric,
            means,
            stds,
            categorical,
        }
    }

    pub fn dim(&self) -> usize {
        self.numeric.len() + self.categorical.iter().map(|c| c.1).sum::<usize>()
    }

    pub fn row(&self, x: &[f64], out: &mut [f64]) {
        for (p, &j) in self.numeric.iter().enumerate() {
            let v = x[j];
            let v = if v.is_nan() { self.means[p] } else { v };
            out[p] = (v - self.means[p]) / self.stds[p];
        }
        let mut o = self.numeric.len();
        for &(j, k) in &self.categorical {
            out[o..o + k].iter_mut().for_each(|v| *v = 0.0);
            let c = x[j];
            if !c.is_nan() && (c as usize) < k {
                out[o + c as usize] = 1.0;
            }
            o += k;
        }
    }

    pub fn matrix(&self, x: &Matrix) -> Matrix {
        let d = self.dim();
        let mut data = vec![0.0; x.n * d];
        for i in 0..x.n {
            self.row(x.row(i), &mut data[i * d..(i + 1) * d]);
        }
        Matrix { n: x.n, f: d, data }
    }
}

impl LinearModel {
    pub fn new(design: &Design, k: usize, p: &Params) -> LinearModel {
        LinearModel {
            numeric: design.numeric.clone(),
            means: design.means.clone(),
            stds: design.stds.clone(),
            categorical: design.categorical.clone(),
            k,
            weights: p.w.clone(),
            bias: p.b.clone(),
        }
    }

    fn design(&self) -> Design {
        Design {
            numeric: self.numeric.clone(),
            means: self.means.clone(),
            stds: self.stds.clone(),
            categorical: self.categorical.clone(),
        }
    }

    /// Raw scores `n × k`.
    pub fn raw(&self, x: &Matrix) -> Vec<f64> {
        let z = self.design().matrix(x);
        raw_scores(
            &z,
            &Params {
                w: self.weights.clone(),
                b: self.bias.clone(),
            },
            self.k,
        )
    }

    /// The graph: impute, standardise, one-hot, then `Z · W + b` (all in double).
    pub fn emit(&self, g: &mut Graph, x: &str) -> String {
        let mut blocks = Vec::new();
        if !self.numeric.is_empty() {
            let p = self.numeric.len() as i64;
            let idx = g.const_i64(
                "numeric_columns",
                vec![p],
                self.numeric.iter().map(|&j| j as i64).collect(),
            );
            let xn = g.op("Gather", &[x, &idx], vec![attr_int("axis", 1)]);
            let nan = g.op("IsNaN", &[&xn], vec![]);
            let means = g.const_f64("means", vec![p], self.means.clone());
            let filled = g.op("Where", &[&nan, &means, &xn], vec![]);
            let centred = g.op("Sub", &[&filled, &means], vec![]);
            let stds = g.const_f64("stds", vec![p], self.stds.clone());
            blocks.push(g.op("Div", &[&centred, &stds], vec![]));
        }
        for &(j, k) in &self.categorical {
            let idx = g.const_i64("categorical_column", vec![1], vec![j as i64]);
            let c = g.op("Gather", &[x, &idx], vec![attr_int("axis", 1)]);
            let codes = g.const_f64("codes", vec![k as i64], (0..k).map(|v| v as f64).collect());
            let eq = g.op("Equal", &[&c, &codes], vec![]);
            blocks.push(g.cast(&eq, data_type::DOUBLE));
        }
        let refs: Vec<&str> = blocks.iter().map(|s| s.as_str()).collect();
        let z = if refs.len() == 1 {
            blocks[0].clone()
        } else {
            g.op("Concat", &refs, vec![attr_int("axis", 1)])
        };
        let d = (self.weights.len() / self.k) as i64;
        let w = g.const_f64("coefficients", vec![d, self.k as i64], self.weights.clone());
        let b = g.const_f64("intercept", vec![self.k as i64], self.bias.clone());
        let zw = g.op("MatMul", &[&z, &w], vec![]);
        g.op("Add", &[&zw, &b], vec![])
    }
}

/// Coefficients `w` (`dim × k`) and intercepts `b` (`k`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

pub(crate) fn raw_scores(z: &Matrix, p: &Params, k: usize) -> Vec<f64> {
    let d = z.f;
    let mut out = vec![0.0; z.n * k];
    for i in 0..z.n {
        let row = z.row(i);
        let o = &mut out[i * k..(i + 1) * k];
        o.copy_from_slice(&p.b);
        for (j, &v) in row.iter().enumerate() {
            if v != 0.0 {
                let wj = &p.w[j * k..(j + 1) * k];
                for c in 0..k {
                    o[c] += v * wj[c];
                }
            }
        }
    }
    debug_assert_eq!(d * k, p.w.len());
    out
}

/// Outputs of the linear predictor for a task with `classes` classes.
pub(crate) fn outputs(task: Task, classes: usize) -> usize {
    if task == Task::MulticlassClassification {
        classes
    } else {
        1
    }
}

/// Fits one penalised model with penalty `lambda` on `(1/n)·loss + (λ/2)·|w|²`, warm-started from
/// `start`. Stops early at `deadline` with the best iterate so far.
pub(crate) fn fit(
    task: Task,
    z: &Matrix,
    y: &[f64],
    k: usize,
    lambda: f64,
    start: Option<&Params>,
    deadline: Option<Instant>,
) -> Params {
    let d = z.f;
    let n = z.n as f64;
    if task == Task::Regression {
        return ridge(z, y, lambda);
    }
    let init = start.cloned().unwrap_or_else(|| Params {
        w: vec![0.0; d * k],
        b: vec![0.0; k],
    });
    let mut theta: Vec<f64> = init.w.iter().chain(&init.b).copied().collect();
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        let (w, b) = theta.split_at(d * k);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        let mut s = vec![0.0; k];
        for i in 0..z.n {
            let row = z.row(i);
            s.copy_from_slice(b);
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    for c in 0..k {
                        s[c] += v * w[j * k + c];
                    }
                }
            }
            let yi = y[i] as usize;
            if k == 1 {
                // log(1 + e^s) - y·s, computed stably
                let t = s[0];
                loss += if t > 0.0 {
                    t + (-t).exp().ln_1p()
                } else {
                    t.exp().ln_1p()
                } - if yi == 1 { t } else { 0.0 };
                s[0] = crate::scorer::sigmoid(t) - yi as f64;
            } else {
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                loss += lse - s[yi];
                for c in 0..k {
                    s[c] = (s[c] - lse).exp() - if c == yi { 1.0 } else { 0.0 };
                }
            }
            // s now holds the residuals
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    for c in 0..k {
                        grad[j * k + c] += v * s[c];
                    }
                }
            }
            for c in 0..k {
                grad[d * k + c] += s[c];
            }
        }
        let mut pen = 0.0;
        for (j, g) in grad.iter_mut().enumerate() {
            *g /= n;
            if j < d * k {
                *g += lambda * theta[j];
                pen += theta[j] * theta[j];
            }
        }
        loss / n + 0.5 * lambda * pen
    };
    lbfgs(&mut theta, objective, 300, deadline);
    let (w, b) = theta.split_at(d * k);
    Params {
        w: w.to_vec(),
        b: b.to_vec(),
    }
}

/// Ridge regression with an unpenalised intercept: `(Zcᵀ Zc / n + λ I) w = Zcᵀ yc / n`.
fn ridge(z: &Matrix, y: &[f64], lambda: f64) -> Params {
    let d = z.f;
    let n = z.n as f64;
    let ym = y.iter().sum::<f64>() / n;
    let mut zm = vec![0.0; d];
    for i in 0..z.n {
        for (j, v) in z.row(i).iter().enumerate() {
            zm[j] += v / n;
        }
    }
    let mut a = vec![0.0; d * d];
    let mut rhs = vec![0.0; d];
    let mut c = vec![0.0; d];
    for i in 0..z.n {
        for (j, v) in z.row(i).iter().enumerate() {
            c[j] = v - zm[j];
        }
        let r = y[i] - ym;
        for j in 0..d {
            if c[j] == 0.0 {
                continue;
            }
            rhs[j] += c[j] * r;
            for l in j..d {
                a[j * d + l] += c[j] * c[l];
            }
        }
    }
    // (1/2n)|yc − Zc w|² + (λ/2)|w|²: scaling y scales w, so λ is unit-free on standardised columns.
    for j in 0..d {
        for l in j..d {
            a[j * d + l] /= n;
            a[l * d + j] = a[j * d + l];
        }
        a[j * d + j] += lambda + 1e-10;
        rhs[j] /= n;
    }
    let w = cholesky_solve(&mut a, &rhs, d);
    let b = ym - zm.iter().zip(&w).map(|(m, w)| m * w).sum::<f64>();
    Params { w, b: vec![b] }
}

/// Solves `A x = b` for symmetric positive definite `A` (overwritten by its factor).
pub(crate) fn cholesky_solve(a: &mut [f64], b: &[f64], d: usize) -> Vec<f64> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        let l = s.max(1e-300).sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut x = b.to_vec();
    for i in 0..d {
        for k in 0..i {
            x[i] -= a[i * d + k] * x[k];
        }
        x[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            x[i] -= a[k * d + i] * x[k];
        }
        x[i] /= a[i * d + i];
    }
    x
}

/// Limited-memory BFGS (Nocedal & Wright, Algorithm 7.4/7.5) with a backtracking Armijo line search.
/// Minimises `f` in place; returns the final objective.
pub(crate) fn lbfgs<F: FnMut(&[f64], &mut [f64]) -> f64>(
    x: &mut [f64],
    mut f: F,
    max_iter: usize,
    deadline: Option<Instant>,
) -> f64 {
    let n = x.len();
    let m = 10;
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    for _ in 0..max_iter {
        let gmax = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if gmax < 1e-7 || deadline.map(|d| Instant::now() >= d).unwrap_or(false) {
            break;
        }
        // Two-loop recursion for the direction -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            axpy(-alpha[i], &y_hist[i], &mut q);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / gmax.max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            axpy(alpha[i] - beta, &s_hist[i], &mut q);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &dir);
        let dir = if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            slope = -dot(&g, &g);
            g.iter().map(|v| -v / gmax.max(1.0)).collect()
        } else {
            dir
        };
        let mut t = 1.0;
        let mut fnew;
        loop {
            for i in 0..n {
                xn[i] = x[i] + t * dir[i];
            }
            fnew = f(&xn, &mut gn);
            if fnew <= fx + 1e-4 * t * slope || t < 1e-12 {
                break;
            }
            t *= 0.5;
        }
        if fnew.is_nan() || fnew > fx {
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| xn[i] - x[i]).collect();
        let yv: Vec<f64> = (0..n).map(|i| gn[i] - g[i]).collect();
        let converged = (fx - fnew).abs() <= 1e-12 * fx.abs().max(1.0);
        x.copy_from_slice(&xn);
        g.copy_from_slice(&gn);
        fx = fnew;
        if dot(&s, &yv) > 1e-12 {
            s_hist.push(s);
            y_hist.push(yv);
            if s_hist.len() > m {
                s_hist.remove(0);
                y_hist.remove(0);
            }
        }
        if converged {
            break;
        }
    }
    fx
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// The regularisation path tried, strongest first (penalty on the mean loss of standardised columns).
pub(crate) const LAMBDAS: [f64; 8] = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn lbfgs_minimises_a_quadratic() {
        let mut x = vec![5.0, -3.0];
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 1.0);
            g[1] = 20.0 * (x[1] + 2.0);
            (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 2.0).powi(2)
        };
        lbfgs(&mut x, f, 100, None);
        assert!(
            (x[0] - 1.0).abs() < 1e-6 && (x[1] + 2.0).abs() < 1e-6,
            "{x:?}"
        );
    }

    #[test]
    fn ridge_recovers_coefficients() {
        let mut r = Rng::new(1);
        let n = 500;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = r.normal();
            let b = r.normal();
            data.extend([a, b]);
            y.push(3.0 + 2.0 * a - 1.0 * b + 0.01 * r.normal());
        }
        let z = Matrix { n, f: 2, data };
        let p = fit(Task::Regression, &z, &y, 1, 1e-8, None, None);
        assert!(
            (p.w[0] - 2.0).abs() < 0.01
                && (p.w[1] + 1.0).abs() < 0.01
                && (p.b[0] - 3.0).abs() < 0.01,
            "{p:?}"
        );
    }

    #[test]
    fn logistic_gradient_vanishes_at_the_optimum() {
        let mut r = Rng::new(2);
        let n = 400;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = r.normal();
            data.push(a);
            y.push(if r.f64() < sigmoid_(1.5 * a - 0.5) {
                1.0
            } else {
                0.0
            });
        }
        let z = Matrix { n, f: 1, data };
        let p = fit(Task::BinaryClassification, &z, &y, 1, 1e-6, None, None);
        assert!(
            (p.w[0] - 1.5).abs() < 0.4 && (p.b[0] + 0.5).abs() < 0.4,
            "{p:?}"
        );
        // multinomial with 2 classes gives the same decision function (difference of the two columns)
        let q = fit(Task::MulticlassClassification, &z, &y, 2, 1e-6, None, None);
        assert!(((q.w[1] - q.w[0]) - p.w[0]).abs() < 0.02, "{q:?} vs {p:?}");
    }

    fn sigmoid_(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }
}
