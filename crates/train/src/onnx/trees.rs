//! The tree→ONNX writer: a LightGBM [`Forest`] as one `ai.onnx.ml` `TreeEnsembleRegressor` (opset 3)
//! producing raw scores `[N, outputs]`.
//!
//! - Thresholds and leaf weights go in the `*_as_tensor` (double) attributes and the input is `double`,
//!   so ONNX Runtime compares and sums in double exactly like LightGBM.
//! - Numeric splits are `BRANCH_LEQ`. NaN goes where LightGBM sends it: with missing type NaN, the
//!   default direction (`missing_value_tracks_true` = default-left); with missing type none, NaN is
//!   read as 0, so it tracks the true branch when `0 <= threshold`. Missing type zero (values within
//!   1e-35 of 0, and NaN, take the default direction) becomes a `BRANCH_EQ 0` node in front.
//! - A categorical split sends the categories of its bitset left: a chain of `BRANCH_EQ` nodes, one per
//!   category, whose true branches share the left subtree (ONNX Runtime accepts shared children for
//!   exactly this encoding); NaN and unknown codes fall through to the right, as in LightGBM.
//! - Random forests average their trees: each leaf weight is divided by the number of iterations.
//! - Base values stay 0: LightGBM folds its initial score into the first tree. The post-transform is
//!   `NONE`; the sigmoid/softmax follow as standard ops so the ensemble graph can reuse raw scores.

use super::{attr_int, attr_ints, attr_str, attr_strs, attr_tensor, tensor_f64, Graph};
use crate::forest::{Forest, MissingType, Tree};
use crate::Result;

struct Node {
    mode: &'static str,
    feature: i64,
    value: f64,
    true_id: i64,
    false_id: i64,
    missing_true: i64,
}

struct TreeWriter<'a> {
    tree: &'a Tree,
    nodes: Vec<Node>,
    /// (node id, leaf value)
    leaves: Vec<(i64, f64)>,
}

impl TreeWriter<'_> {
    fn reserve(&mut self) -> usize {
        self.nodes.push(Node {
            mode: "LEAF",
            feature: 0,
            value: 0.0,
            true_id: 0,
            false_id: 0,
            missing_true: 0,
        });
        self.nodes.len() - 1
    }

    fn emit(&mut self, child: i32) -> i64 {
        if child < 0 {
            let id = self.reserve();
            self.leaves
                .push((id as i64, self.tree.leaf_value[(!child) as usize]));
            return id as i64;
        }
        let n = child as usize;
        let t = self.tree;
        let feature = t.split_feature[n] as i64;
        if t.is_categorical(n) {
            let cats = t.categories_left(n);
            let chain: Vec<usize> = (0..cats.len().max(1)).map(|_| self.reserve()).collect();
            let l = self.emit(t.left[n]);
            let r = self.emit(t.right[n]);
            for (j, &id) in chain.iter().enumerate() {
                self.nodes[id] = Node {
                    mode: "BRANCH_EQ",
                    feature,
                    // An empty set sends everything right: compare with a code that never occurs.
                    value: cats.get(j).map(|&c| c as f64).unwrap_or(-1.0),
                    true_id: l,
                    false_id: chain.get(j + 1).map(|&x| x as i64).unwrap_or(r),
                    missing_true: 0,
                };
            }
            return chain[0] as i64;
        }
        let thr = t.threshold[n];
        match t.missing_type(n) {
            MissingType::Zero => {
                let zero = self.reserve();
                let split = self.reserve();
                let l = self.emit(t.left[n]);
                let r = self.emit(t.right[n]);
                let default = if t.default_left(n) { l } else { r };
                self.nodes[zero] = Node {
                    mode: "BRANCH_EQ",
                    feature,
                    value: 0.0,
                    true_id: default,
                    false_id: split as i64,
                    missing_true: 1,
                };
                self.nodes[split] = Node {
                    mode: "BRANCH_LEQ",
                    feature,
                    value: thr,
                    true_id: l,
                    false_id: r,
                    missing_true: 0,
                };
                zero as i64
            }
            mt => {
                let id = self.reserve();
                let l = self.emit(t.left[n]);
                let r = self.emit(t.right[n]);
                let missing_true = match mt {
                    MissingType::NaN => t.default_left(n),
                    _ => 0.0 <= thr,
                } as i64;
                self.nodes[id] = Node {
                    mode: "BRANCH_LEQ",
                    feature,
                    value: thr,
                    true_id: l,
                    false_id: r,
                    missing_true,
                };
                id as i64
            }
        }
    }
}

/// Appends a `TreeEnsembleRegressor` reading `x` (`double [N, F]`); returns raw scores `float [N, k]`.
pub(crate) fn tree_ensemble(g: &mut Graph, x: &str, forest: &Forest) -> Result<String> {
    let scale = if forest.average {
        1.0 / forest.iterations() as f64
    } else {
        1.0
    };
    let (
        mut treeids,
        mut nodeids,
        mut featureids,
        mut modes,
        mut values,
        mut trues,
        mut falses,
        mut missing,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let (mut t_tree, mut t_node, mut t_ids, mut t_w) = (vec![], vec![], vec![], vec![]);
    for (ti, tree) in forest.trees.iter().enumerate() {
        let mut w = TreeWriter {
            tree,
            nodes: Vec::new(),
            leaves: Vec::new(),
        };
        // A tree without splits is one leaf (`!0 == -1`).
        w.emit(if tree.split_feature.is_empty() { -1 } else { 0 });
        for (id, node) in w.nodes.iter().enumerate() {
            treeids.push(ti as i64);
            nodeids.push(id as i64);
            featureids.push(node.feature);
            modes.push(node.mode.to_string());
            values.push(node.value);
            trues.push(node.true_id);
            falses.push(node.false_id);
            missing.push(node.missing_true);
        }
        for (id, v) in w.leaves {
            t_tree.push(ti as i64);
            t_node.push(id);
            t_ids.push((ti % forest.outputs) as i64);
            t_w.push(v * scale);
        }
    }
    let n_nodes = values.len() as i64;
    let n_targets = t_w.len() as i64;
    Ok(g.op_ml(
        "TreeEnsembleRegressor",
        &[x],
        vec![
            attr_int("n_targets", forest.outputs as i64),
            attr_str("aggregate_function", "SUM"),
            attr_str("post_transform", "NONE"),
            attr_ints("nodes_treeids", treeids),
            attr_ints("nodes_nodeids", nodeids),
            attr_ints("nodes_featureids", featureids),
            attr_strs("nodes_modes", &modes),
            attr_tensor("nodes_values_as_tensor", tensor_f64(vec![n_nodes], values)),
            attr_ints("nodes_truenodeids", trues),
            attr_ints("nodes_falsenodeids", falses),
            attr_ints("nodes_missing_value_tracks_true", missing),
            attr_ints("target_treeids", t_tree),
            attr_ints("target_nodeids", t_node),
            attr_ints("target_ids", t_ids),
            attr_tensor("target_weights_as_tensor", tensor_f64(vec![n_targets], t_w)),
        ],
    ))
}
