//! ONNX export: a small graph builder over the hand-written protobuf messages, the tree-ensemble
//! writer, and the model graph's common head (inputs per column, outputs as the runtime expects).
//!
//! Every exported graph has the same interface:
//! - one input per feature column, shape `[N, 1]`: `float` for numeric columns, `string` for
//!   categorical ones (mapped to category codes inside the graph; unknown or empty text is missing);
//! - classifiers output `label` (string `[N, 1]`) then `probabilities` (float `[N, classes]`);
//!   regressors output `value` (float `[N, 1]`).
//!
//! Inside, features are one `double` matrix so tree thresholds compare exactly as LightGBM's do, and
//! scores stay in `double` until the final cast.

pub(crate) mod proto;
pub(crate) mod trees;

use crate::data::{FeatureKind, FeatureSchema};
use crate::Result;
use prost::Message;
pub(crate) use proto::data_type;
use proto::*;

pub(crate) const IR_VERSION: i64 = 8;
pub(crate) const OPSET: i64 = 15;
pub(crate) const ML_OPSET: i64 = 3;
pub(crate) const ML: &str = "ai.onnx.ml";

#[derive(Default)]
pub(crate) struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
}

pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints,
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_floats(name: &str, floats: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        floats,
        r#type: AttributeType::Floats as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_strs(name: &str, v: &[String]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: AttributeType::Strings as i32,
        ..Default::default()
    }
}
pub(crate) fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(t),
        r#type: AttributeType::Tensor as i32,
        ..Default::default()
    }
}
pub(crate) fn tensor_f64(dims: Vec<i64>, v: Vec<f64>) -> TensorProto {
    TensorProto {
        dims,
        data_type: data_type::DOUBLE,
        double_data: v,
        ..Default::default()
    }
}

fn value_info(name: &str, elem: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value as D, Dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(v) => D::DimValue(*v),
                                None => D::DimParam("N".into()),
                            }),
                        })
                        .collect(),
                }),
            })),
        }),
        doc_string: String::new(),
    }
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}__{}", self.counter)
    }

    /// Adds a node with one output and returns the output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_in("", op, inputs, attrs)
    }

    pub fn op_ml(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.op_in(ML, op, inputs, attrs)
    }

    fn op_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("node_{}", self.nodes.len()),
            op_type: op.into(),
            attribute: attrs,
            domain: domain.into(),
            doc_string: String::new(),
        });
        out
    }

    /// Renames the output of the last node (for graph outputs with fixed names).
    fn rename_last(&mut self, name: &str) {
        let last = self.nodes.last_mut().expect("a node");
        last.output[0] = name.to_string();
    }

    pub fn const_f64(&mut self, hint: &str, dims: Vec<i64>, v: Vec<f64>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            ..tensor_f64(dims, v)
        });
        name
    }

    pub fn const_i64(&mut self, hint: &str, dims: Vec<i64>, v: Vec<i64>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims,
            data_type: data_type::INT64,
            int64_data: v,
            ..Default::default()
        });
        name
    }

    pub fn cast(&mut self, x: &str, to: i32) -> String {
        self.op("Cast", &[x], vec![attr_int("to", to as i64)])
    }

    /// Graph inputs, one per feature column, and the `double` feature matrix `[N, F]` built from them:
    /// numeric values as given (NaN is missing), categories as their code in the vocabulary (NaN when
    /// unknown or missing).
    pub fn features(&mut self, schema: &FeatureSchema) -> String {
        let mut cols = Vec::new();
        for spec in &schema.features {
            match &spec.kind {
                FeatureKind::Numeric => {
                    self.inputs
                        .push(value_info(&spec.name, data_type::FLOAT, &[None, Some(1)]));
                    cols.push(self.cast(&spec.name, data_type::DOUBLE));
                }
                FeatureKind::Categorical { categories } => {
                    self.inputs
                        .push(value_info(&spec.name, data_type::STRING, &[None, Some(1)]));
                    let codes = self.op_ml(
                        "LabelEncoder",
                        &[&spec.name],
                        vec![
                            attr_strs("keys_strings", categories),
                            attr_floats(
                                "values_floats",
                                (0..categories.len()).map(|i| i as f32).collect(),
                            ),
                            attr_float("default_float", f32::NAN),
                        ],
                    );
                    cols.push(self.cast(&codes, data_type::DOUBLE));
                }
            }
        }
        if cols.len() == 1 {
            return cols.pop().unwrap();
        }
        let refs: Vec<&str> = cols.iter().map(|s| s.as_str()).collect();
        self.op("Concat", &refs, vec![attr_int("axis", 1)])
    }

    /// Classifier outputs from `double` probabilities `[N, C]`: `label` (string) and `probabilities`.
    pub fn classifier_outputs(&mut self, probs: &str, classes: &[String]) {
        let idx = self.op(
            "ArgMax",
            &[probs],
            vec![attr_int("axis", 1), attr_int("keepdims", 1)],
        );
        self.op_ml(
            "LabelEncoder",
            &[&idx],
            vec![
                attr_ints("keys_int64s", (0..classes.len() as i64).collect()),
                attr_strs("values_strings", classes),
                attr_str("default_string", ""),
            ],
        );
        self.rename_last("label");
        self.cast(probs, data_type::FLOAT);
        self.rename_last("probabilities");
        self.outputs
            .push(value_info("label", data_type::STRING, &[None, Some(1)]));
        self.outputs.push(value_info(
            "probabilities",
            data_type::FLOAT,
            &[None, Some(classes.len() as i64)],
        ));
    }

    /// Regressor output from `double` values `[N, 1]`.
    pub fn regressor_output(&mut self, values: &str) {
        self.cast(values, data_type::FLOAT);
        self.rename_last("value");
        self.outputs
            .push(value_info("value", data_type::FLOAT, &[None, Some(1)]));
    }

    pub fn finish(self, name: &str, doc: &str, metadata: Vec<(String, String)>) -> Result<Vec<u8>> {
        let model = ModelProto {
            ir_version: IR_VERSION,
            producer_name: "coreplexml".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            domain: "ai.coreplexml".into(),
            model_version: 1,
            doc_string: doc.into(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: name.into(),
                initializer: self.initializers,
                doc_string: String::new(),
                input: self.inputs,
                output: self.outputs,
                value_info: Vec::new(),
            }),
            opset_import: vec![
                OperatorSetIdProto {
                    domain: String::new(),
                    version: OPSET,
                },
                OperatorSetIdProto {
                    domain: ML.into(),
                    version: ML_OPSET,
                },
            ],
            metadata_props: metadata
                .into_iter()
                .map(|(key, value)| StringStringEntryProto { key, value })
                .collect(),
        };
        Ok(model.encode_to_vec())
    }
}
