//! LightGBM's model text (`save_model_to_string`) read into plain trees, and evaluated the way
//! LightGBM's `Tree::NumericalDecision` / `CategoricalDecision` do, so the ONNX writer has one exact
//! source and a reference to test against.
//!
//! Format: a header of `key=value` lines (`num_tree_per_iteration`, `objective`, a bare
//! `average_output` line for random forests), then blocks starting `Tree=<i>` with `num_leaves`,
//! `split_feature`, `threshold`, `decision_type`, `left_child`, `right_child`, `leaf_value`, and for
//! categorical splits `cat_boundaries` / `cat_threshold`. A child `< 0` is leaf `!child`.
//! `decision_type` bits: 1 = categorical, 2 = default left, (bits 2–3) missing type 0 none, 1 zero, 2 NaN.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const K_ZERO_THRESHOLD: f64 = 1e-35f32 as f64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub split_feature: Vec<usize>,
    pub threshold: Vec<f64>,
    pub decision_type: Vec<u8>,
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub leaf_value: Vec<f64>,
    pub cat_boundaries: Vec<usize>,
    pub cat_threshold: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingType {
    None,
    Zero,
    NaN,
}

impl Tree {
    pub fn is_categorical(&self, node: usize) -> bool {
        self.decision_type[node] & 1 != 0
    }
    pub fn default_left(&self, node: usize) -> bool {
        self.decision_type[node] & 2 != 0
    }
    pub fn missing_type(&self, node: usize) -> MissingType {
        match (self.decision_type[node] >> 2) & 3 {
            1 => MissingType::Zero,
            2 => MissingType::NaN,
            _ => MissingType::None,
        }
    }
    /// Categories sent left by a categorical split.
    pub fn categories_left(&self, node: usize) -> Vec<u32> {
        let idx = self.threshold[node] as usize;
        let words = &self.cat_threshold[self.cat_boundaries[idx]..self.cat_boundaries[idx + 1]];
        let mut out = Vec::new();
        for (w, &bits) in words.iter().enumerate() {
            for b in 0..32 {
                if bits & (1 << b) != 0 {
                    out.push((w * 32 + b) as u32);
                }
            }
        }
        out
    }

    #[cfg_attr(not(test), allow(dead_code))]
    fn goes_left(&self, node: usize, x: f64) -> bool {
        if self.is_categorical(node) {
            if x.is_nan() || (x as i64) < 0 {
                return false;
            }
            let v = x as i64 as u64;
            let idx = self.threshold[node] as usize;
            let words = &self.cat_threshold[self.cat_boundaries[idx]..self.cat_boundaries[idx + 1]];
            let w = (v / 32) as usize;
            return w < words.len() && words[w] & (1 << (v % 32)) != 0;
        }
        let mt = self.missing_type(node);
        let x = if x.is_nan() && mt != MissingType::NaN {
            0.0
        } else {
            x
        };
        if (mt == MissingType::Zero && x.abs() <= K_ZERO_THRESHOLD)
            || (mt == MissingType::NaN && x.is_nan())
        {
            return self.default_left(node);
        }
        x <= self.threshold[node]
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub fn predict(&self, row: &[f64]) -> f64 {
        if self.split_feature.is_empty() {
            return self.leaf_value[0];
        }
        let mut node = 0i32;
        loop {
            let n = node as usize;
            node = if self.goes_left(n, row[self.split_feature[n]]) {
                self.left[n]
            } else {
                self.right[n]
            };
            if node < 0 {
                return self.leaf_value[(!node) as usize];
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Forest {
    /// Trees per iteration: the number of classes for multiclass, else 1. Tree `t` adds to output `t % k`.
    pub outputs: usize,
    /// Random forests average their trees instead of summing them.
    pub average: bool,
    pub objective: String,
    pub trees: Vec<Tree>,
}

fn parse_list<T: std::str::FromStr>(key: &str, v: &str) -> Result<Vec<T>> {
    v.split_whitespace()
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| Error::ModelDump(format!("bad value {s:?} in `{key}`")))
        })
        .collect()
}

impl Forest {
    pub fn parse(text: &str) -> Result<Forest> {
        let mut outputs = 1usize;
        let mut average = false;
        let mut objective = String::new();
        let mut trees = Vec::new();
        let mut lines = text.lines().peekable();
        // Header
        while let Some(line) = lines.peek() {
            if line.starts_with("Tree=") || line.starts_with("end of trees") {
                break;
            }
            let line = lines.next().unwrap().trim();
            if line == "average_output" {
                average = true;
            } else if let Some(v) = line.strip_prefix("num_tree_per_iteration=") {
                outputs = v
                    .trim()
                    .parse()
                    .map_err(|_| Error::ModelDump(format!("bad num_tree_per_iteration {v:?}")))?;
            } else if let Some(v) = line.strip_prefix("objective=") {
                objective = v.trim().to_string();
            }
        }
        // Trees
        let mut cur: Option<std::collections::HashMap<String, String>> = None;
        let finish = |m: std::collections::HashMap<String, String>| -> Result<Tree> {
            let get = |k: &str| m.get(k).map(|s| s.as_str()).unwrap_or("");
            let num_leaves: usize = get("num_leaves")
                .trim()
                .parse()
                .map_err(|_| Error::ModelDump("missing num_leaves".into()))?;
            if get("is_linear").trim() == "1" {
                return Err(Error::ModelDump("linear trees are not supported".into()));
            }
            let t = Tree {
                split_feature: parse_list("split_feature", get("split_feature"))?,
                threshold: parse_list("threshold", get("threshold"))?,
                decision_type: parse_list::<i32>("decision_type", get("decision_type"))?
                    .into_iter()
                    .map(|d| d as u8)
                    .collect(),
                left: parse_list("left_child", get("left_child"))?,
                right: parse_list("right_child", get("right_child"))?,
                leaf_value: parse_list("leaf_value", get("leaf_value"))?,
                cat_boundaries: parse_list("cat_boundaries", get("cat_boundaries"))?,
                cat_threshold: parse_list("cat_threshold", get("cat_threshold"))?,
            };
            let inner = num_leaves - 1;
            if t.leaf_value.len() != num_leaves
                || t.split_feature.len() != inner
                || t.threshold.len() != inner
                || t.decision_type.len() != inner
                || t.left.len() != inner
                || t.right.len() != inner
            {
                return Err(Error::ModelDump(format!(
                    "tree arrays do not match num_leaves={num_leaves}"
                )));
            }
            Ok(t)
        };
        for line in lines {
            let line = line.trim();
            if line.starts_with("Tree=") || line.starts_with("end of trees") {
                if let Some(m) = cur.take() {
                    trees.push(finish(m)?);
                }
                if line.starts_with("end of trees") {
                    break;
                }
                cur = Some(Default::default());
            } else if let (Some(m), Some((k, v))) = (cur.as_mut(), line.split_once('=')) {
                m.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(m) = cur.take() {
            trees.push(finish(m)?);
        }
        if trees.is_empty() {
            return Err(Error::ModelDump("the model has no trees".into()));
        }
        if outputs == 0 || trees.len() % outputs != 0 {
            return Err(Error::ModelDump(format!(
                "{} trees do not divide into {outputs} outputs",
                trees.len()
            )));
        }
        Ok(Forest {
            outputs,
            average,
            objective,
            trees,
        })
    }

    pub fn iterations(&self) -> usize {
        self.trees.len() / self.outputs
    }

    /// Raw scores for one row, as LightGBM's raw prediction computes them (averaged for forests): the
    /// reference the writer's tests compare LightGBM and the parsed text against.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn predict_raw(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.outputs];
        for (t, tree) in self.trees.iter().enumerate() {
            out[t % self.outputs] += tree.predict(row);
        }
        if self.average {
            let n = self.iterations() as f64;
            out.iter_mut().for_each(|v| *v /= n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Matrix;
    use crate::lgbm::{train, Control, LgbDataset};
    use crate::rng::Rng;

    /// Data with a categorical column (codes 0..6), NaNs in both kinds, and zeros.
    fn data(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let mut r = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = if r.f64() < 0.15 {
                f64::NAN
            } else {
                (r.normal() as f32) as f64
            };
            let c = if r.f64() < 0.1 {
                f64::NAN
            } else {
                r.below(7) as f64
            };
            let z = if r.f64() < 0.3 {
                0.0
            } else {
                (r.normal() as f32) as f64
            };
            let ce = if c.is_nan() {
                0.5
            } else {
                [1.0, -1.0, 0.5, 2.0, -2.0, 0.0, 1.5][c as usize]
            };
            let s = if a.is_nan() { 1.0 } else { a } + ce + 0.5 * z + 0.3 * r.normal();
            x.extend([a, c, z]);
            y.push(if s > 0.5 { 1.0 } else { 0.0 });
        }
        (Matrix { n, f: 3, data: x }, y)
    }

    #[test]
    fn parsed_trees_predict_what_lightgbm_predicts() {
        let (x, y) = data(2000, 5);
        let ds = LgbDataset::new(
            &x,
            &y,
            "max_bin=255 feature_pre_filter=false verbosity=-1 categorical_feature=1",
            None,
        )
        .unwrap();
        let mut ok = || Ok(());
        for params in [
            "objective=binary verbosity=-1 num_leaves=15 min_data_in_leaf=5 min_data_per_group=5 max_cat_to_onehot=2",
            "objective=binary verbosity=-1 num_leaves=31 boosting=rf bagging_fraction=0.6 bagging_freq=1",
            "objective=multiclass num_class=2 verbosity=-1 num_leaves=7",
            "objective=regression verbosity=-1 num_leaves=15 zero_as_missing=true",
        ] {
            let mut ctl = Control { deadline: None, check: &mut ok };
            let out = train(&ds, None, params, 30, None, false, &mut ctl).unwrap();
            let forest = Forest::parse(&out.booster.save_string().unwrap()).unwrap();
            let (xt, _) = data(500, 6);
            let native = out.booster.predict_raw(&xt, forest.outputs, forest.average).unwrap();
            for i in 0..xt.n {
                let mine = forest.predict_raw(xt.row(i));
                for k in 0..forest.outputs {
                    assert!((mine[k] - native[i * forest.outputs + k]).abs() < 1e-9, "{params}: row {i}: {mine:?} vs {} avg {} trees {}", native[i * forest.outputs + k], forest.average, forest.trees.len());
                }
            }
            assert!(forest.trees.iter().any(|t| (0..t.split_feature.len()).any(|n| t.is_categorical(n))) || params.contains("rf"));
        }
    }
}
