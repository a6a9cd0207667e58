//! One loaded model: its sessions, its schema, and the conversion of rows to tensors and back.

use crate::{environment, Error, Result};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Element type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    Float,
    Double,
    Int64,
    Int32,
    String,
    Bool,
}

impl DType {
    fn from_ort(t: TensorElementType) -> Option<DType> {
        Some(match t {
            TensorElementType::Float32 => DType::Float,
            TensorElementType::Float64 => DType::Double,
            TensorElementType::Int64 => DType::Int64,
            TensorElementType::Int32 => DType::Int32,
            TensorElementType::String => DType::String,
            TensorElementType::Bool => DType::Bool,
            _ => return None,
        })
    }
    fn is_numeric(self) -> bool {
        !matches!(self, DType::String)
    }
}

/// One graph input: a tensor `[batch, width]` of `dtype`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DType,
    pub width: usize,
}

/// One named feature: column `column` of input `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub dtype: DType,
    pub input: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputKind {
    Classifier {
        classes: Vec<String>,
        label_output: String,
        probability_output: String,
    },
    Regressor {
        value_output: String,
    },
}

/// What a model takes and gives, read from its graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSchema {
    pub inputs: Vec<InputSpec>,
    pub features: Vec<Feature>,
    pub output: OutputKind,
}

/// Choices made at registration that the graph does not carry.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Names for the columns of a single multi-column input (default `f0`, `f1`, …).
    pub feature_names: Option<Vec<String>>,
    /// Class labels in probability-column order, when the graph outputs a plain probability tensor.
    pub class_labels: Option<Vec<String>>,
    /// Sessions kept for concurrent requests (default 2).
    pub sessions: usize,
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_probs")]
    pub probabilities: Option<Vec<(String, f64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

fn ser_probs<S: serde::Serializer>(
    p: &Option<Vec<(String, f64)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let v = p.as_deref().unwrap_or(&[]);
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, x) in v {
        m.serialize_entry(k, x)?;
    }
    m.end()
}

/// A model ready to predict. Sessions are pooled because a run needs exclusive use of its session.
pub struct LoadedModel {
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
    schema: ModelSchema,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("schema", &self.schema)
            .finish()
    }
}

fn new_session(bytes: &[u8]) -> Result<Session> {
    let env = environment()?;
    let builder = Session::builder(env).map_err(|e| Error::InvalidModel(e.to_string()))?;
    let invalid = |e: ort::Error<_>| Error::InvalidModel(e.to_string());
    let mut builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(invalid)?
        .with_intra_threads(1)
        .map_err(invalid)?
        .with_inter_threads(1)
        .map_err(invalid)?;
    builder
        .commit_from_memory(bytes)
        .map_err(|e| Error::InvalidModel(e.to_string()))
}

fn tensor_shape(t: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match t {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.to_vec())),
        _ => None,
    }
}

impl LoadedModel {
    /// Loads an ONNX graph and reads its schema. Fails with [`Error::InvalidModel`] when ONNX Runtime
    /// cannot load it or its inputs/outputs are not a tabular classifier or regressor.
    pub fn load(bytes: &[u8], opts: &LoadOptions) -> Result<LoadedModel> {
        let first = new_session(bytes)?;
        let mut inputs = Vec::new();
        for i in first.inputs() {
            let (ty, shape) = tensor_shape(i.dtype()).ok_or_else(|| {
                Error::InvalidModel(format!("input `{}` is not a tensor", i.name()))
            })?;
            let dtype = DType::from_ort(ty).ok_or_else(|| {
                Error::InvalidModel(format!(
                    "input `{}` has unsupported element type {ty:?}",
                    i.name()
                ))
            })?;
            let width = match shape.as_slice() {
                [_] => 1,
                [_, w] if *w >= 1 => *w as usize,
                [_, _] => {
                    return Err(Error::InvalidModel(format!(
                        "input `{}` has an unknown number of columns; export it with a fixed width",
                        i.name()
                    )))
                }
                _ => {
                    return Err(Error::InvalidModel(format!(
                        "input `{}` has shape {shape:?}; tabular models take [batch, columns]",
                        i.name()
                    )))
                }
            };
            inputs.push(InputSpec {
                name: i.name().to_string(),
                dtype,
                width,
            });
        }
        if inputs.is_empty() {
            return Err(Error::InvalidModel("the graph has no inputs".into()));
        }
        let features = Self::features(&inputs, opts)?;
        let output = Self::output_kind(&first, opts)?;
        let n = opts.sessions.max(1);
        let mut sessions = vec![Mutex::new(first)];
        for _ in 1..n {
            sessions.push(Mutex::new(new_session(bytes)?));
        }
        let mut model = LoadedModel {
            sessions,
            next: std::sync::atomic::AtomicUsize::new(0),
            schema: ModelSchema {
                inputs,
                features,
                output,
            },
        };
        // A classifier whose probabilities come as a map: class labels are its keys.
        if let OutputKind::Classifier { classes, .. } = &model.schema.output {
            if classes.is_empty() {
                let row = model.example_row();
                let p = model.predict(&[row])?;
                let labels: Vec<String> = p[0]
                    .probabilities
                    .as_ref()
                    .map(|v| v.iter().map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default();
                if let OutputKind::Classifier { classes, .. } = &mut model.schema.output {
                    *classes = labels;
                }
            }
        }
        Ok(model)
    }

    fn features(inputs: &[InputSpec], opts: &LoadOptions) -> Result<Vec<Feature>> {
        let mut features = Vec::new();
        if inputs.len() == 1 && inputs[0].width > 1 {
            let spec = &inputs[0];
            let names: Vec<String> = match &opts.feature_names {
                Some(n) if n.len() == spec.width => n.clone(),
                Some(n) => {
                    return Err(Error::BadInput {
                        field: "feature_names".into(),
                        message: format!(
                            "the model takes {} columns but {} names were given",
                            spec.width,
                            n.len()
                        ),
                    })
                }
                None => (0..spec.width).map(|i| format!("f{i}")).collect(),
            };
            for (c, name) in names.into_iter().enumerate() {
                features.push(Feature {
                    name,
                    dtype: spec.dtype,
                    input: 0,
                    column: c,
                });
            }
        } else {
            for (i, spec) in inputs.iter().enumerate() {
                if spec.width == 1 {
                    features.push(Feature {
                        name: spec.name.clone(),
                        dtype: spec.dtype,
                        input: i,
                        column: 0,
                    });
                } else {
                    for c in 0..spec.width {
                        features.push(Feature {
                            name: format!("{}_{c}", spec.name),
                            dtype: spec.dtype,
                            input: i,
                            column: c,
                        });
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &features {
            if !seen.insert(f.name.as_str()) {
                return Err(Error::BadInput {
                    field: "feature_names".into(),
                    message: format!("`{}` appears twice", f.name),
                });
            }
        }
        Ok(features)
    }

    fn output_kind(s: &Session, opts: &LoadOptions) -> Result<OutputKind> {
        let mut label = None;
        let mut probs = None;
        let mut probs_width = 0usize;
        let mut value = None;
        for o in s.outputs() {
            match o.dtype() {
                ValueType::Sequence(inner) if matches!(**inner, ValueType::Map { .. }) => {
                    probs = Some(o.name().to_string())
                }
                ValueType::Tensor { ty, shape, .. } => {
                    let w = if shape.len() >= 2 { shape[1] } else { 1 };
                    match ty {
                        TensorElementType::Int64
                        | TensorElementType::String
                        | TensorElementType::Int32
                            if label.is_none() =>
                        {
                            label = Some(o.name().to_string())
                        }
                        TensorElementType::Float32 | TensorElementType::Float64 => {
                            if label.is_some() && probs.is_none() {
                                probs = Some(o.name().to_string());
                                probs_width = w.max(0) as usize;
                            } else if value.is_none() {
                                value = Some((o.name().to_string(), w));
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        match (label, probs, value) {
            (Some(l), Some(p), _) => {
                let classes = match &opts.class_labels {
                    Some(c) => c.clone(),
                    None if probs_width > 0 => (0..probs_width).map(|i| i.to_string()).collect(),
                    None => Vec::new(),
                };
                Ok(OutputKind::Classifier { classes, label_output: l, probability_output: p })
            }
            (None, None, Some((v, _))) => Ok(OutputKind::Regressor { value_output: v }),
            (Some(l), None, Some((p, w))) => {
                let classes = opts.class_labels.clone().unwrap_or_else(|| (0..w.max(0)).map(|i| i.to_string()).collect());
                Ok(OutputKind::Classifier { classes, label_output: l, probability_output: p })
            }
            _ => Err(Error::InvalidModel(
                "the graph's outputs are neither a classifier's (label and probabilities) nor a regressor's (one value)"
                    .into(),
            )),
        }
    }

    pub fn schema(&self) -> &ModelSchema {
        &self.schema
    }

    /// A row with a neutral value for every feature (0, false, empty text), for smoke predictions.
    pub fn example_row(&self) -> serde_json::Map<String, serde_json::Value> {
        self.schema
            .features
            .iter()
            .map(|f| {
                let v = match f.dtype {
                    DType::String => serde_json::Value::String(String::new()),
                    DType::Bool => serde_json::Value::Bool(false),
                    _ => serde_json::json!(0.0),
                };
                (f.name.clone(), v)
            })
            .collect()
    }

    /// Predicts one output per row. A missing or mistyped feature is [`Error::BadInput`] naming it.
    pub fn predict(
        &self,
        rows: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<Vec<Prediction>> {
        let n = rows.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        // Column buffers per input, filled row by row.
        enum Buf {
            F32(Vec<f32>),
            F64(Vec<f64>),
            I64(Vec<i64>),
            I32(Vec<i32>),
            Str(Vec<String>),
            Bool(Vec<bool>),
        }
        let mut bufs: Vec<Buf> = self
            .schema
            .inputs
            .iter()
            .map(|s| {
                let len = n * s.width;
                match s.dtype {
                    DType::Float => Buf::F32(vec![0.0; len]),
                    DType::Double => Buf::F64(vec![0.0; len]),
                    DType::Int64 => Buf::I64(vec![0; len]),
                    DType::Int32 => Buf::I32(vec![0; len]),
                    DType::String => Buf::Str(vec![String::new(); len]),
                    DType::Bool => Buf::Bool(vec![false; len]),
                }
            })
            .collect();
        for (r, row) in rows.iter().enumerate() {
            for f in &self.schema.features {
                let field = || {
                    if n == 1 {
                        f.name.clone()
                    } else {
                        format!("rows[{r}].{}", f.name)
                    }
                };
                let v = row.get(&f.name).ok_or_else(|| Error::BadInput {
                    field: field(),
                    message: "missing feature".into(),
                })?;
                let idx = r * self.schema.inputs[f.input].width + f.column;
                let num = || -> Result<f64> {
                    match v {
                        serde_json::Value::Number(x) => Ok(x.as_f64().unwrap_or(f64::NAN)),
                        serde_json::Value::Bool(b) => Ok(*b as i64 as f64),
                        serde_json::Value::Null if f.dtype.is_numeric() => Ok(f64::NAN),
                        serde_json::Value::String(s) => {
                            s.trim().parse::<f64>().map_err(|_| Error::BadInput {
                                field: field(),
                                message: format!("expected a number, got the text {s:?}"),
                            })
                        }
                        other => Err(Error::BadInput {
                            field: field(),
                            message: format!("expected a number, got {other}"),
                        }),
                    }
                };
                match &mut bufs[f.input] {
                    Buf::F32(b) => b[idx] = num()? as f32,
                    Buf::F64(b) => b[idx] = num()?,
                    Buf::I64(b) => b[idx] = int(num()?, &field)?,
                    Buf::I32(b) => b[idx] = int(num()?, &field)? as i32,
                    Buf::Bool(b) => b[idx] = num()? != 0.0,
                    Buf::Str(b) => {
                        b[idx] = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Number(x) => x.to_string(),
                            serde_json::Value::Bool(x) => x.to_string(),
                            other => {
                                return Err(Error::BadInput {
                                    field: field(),
                                    message: format!("expected text, got {other}"),
                                })
                            }
                        }
                    }
                }
            }
        }
        let mut inputs: Vec<(String, DynValue)> = Vec::with_capacity(bufs.len());
        for (spec, buf) in self.schema.inputs.iter().zip(bufs) {
            let shape = [n as i64, spec.width as i64];
            let v: DynValue = match buf {
                Buf::F32(b) => Tensor::from_array((shape, b)).map(|t| t.into_dyn()),
                Buf::F64(b) => Tensor::from_array((shape, b)).map(|t| t.into_dyn()),
                Buf::I64(b) => Tensor::from_array((shape, b)).map(|t| t.into_dyn()),
                Buf::I32(b) => Tensor::from_array((shape, b)).map(|t| t.into_dyn()),
                Buf::Bool(b) => Tensor::from_array((shape, b)).map(|t| t.into_dyn()),
                Buf::Str(b) => {
                    Tensor::from_string_array((shape, b.as_slice())).map(|t| t.into_dyn())
                }
            }
            .map_err(|e| Error::Inference(e.to_string()))?;
            inputs.push((spec.name.clone(), v));
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.sessions.len();
        let mut session = self.sessions[i].lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(inputs)
            .map_err(|e| Error::Inference(e.to_string()))?;
        match &self.schema.output {
            OutputKind::Regressor { value_output } => {
                let v = &outputs[value_output.as_str()];
                let vals = floats(v)?;
                if vals.len() < n {
                    return Err(Error::Inference(format!(
                        "expected {n} values, got {}",
                        vals.len()
                    )));
                }
                let stride = vals.len() / n;
                let out: Vec<Prediction> = (0..n)
                    .map(|r| Prediction {
                        label: None,
                        probabilities: None,
                        value: Some(vals[r * stride]),
                    })
                    .collect();
                check_finite(&out, rows)?;
                Ok(out)
            }
            OutputKind::Classifier {
                classes,
                label_output,
                probability_output,
            } => {
                let labels = labels(&outputs[label_output.as_str()])?;
                let pv = &outputs[probability_output.as_str()];
                let probs: Vec<Vec<(String, f64)>> = match pv.dtype() {
                    ValueType::Sequence(_) => {
                        let seq = pv
                            .view()
                            .downcast::<ort::value::DynSequenceValueType>()
                            .map_err(|e| Error::Inference(e.to_string()))?
                            .try_extract_sequence::<ort::value::DynMapValueType>()
                            .map_err(|e| Error::Inference(e.to_string()))?;
                        seq.iter().map(map_probs).collect::<Result<_>>()?
                    }
                    _ => {
                        let vals = floats(pv)?;
                        let c = vals.len() / n;
                        (0..n)
                            .map(|r| {
                                (0..c)
                                    .map(|k| {
                                        let name = classes
                                            .get(k)
                                            .cloned()
                                            .unwrap_or_else(|| k.to_string());
                                        (name, vals[r * c + k])
                                    })
                                    .collect()
                            })
                            .collect()
                    }
                };
                let out: Vec<Prediction> = labels
                    .into_iter()
                    .zip(probs)
                    .map(|(l, p)| Prediction {
                        label: Some(l),
                        probabilities: Some(p),
                        value: None,
                    })
                    .collect();
                check_finite(&out, rows)?;
                Ok(out)
            }
        }
    }
}

/// A prediction computed from missing values (null) that the model cannot handle comes out as NaN:
/// answer that as bad input naming the missing features, never as a made-up label.
fn check_finite(
    preds: &[Prediction],
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<()> {
    for (i, p) in preds.iter().enumerate() {
        let bad = p.value.map(|v| !v.is_finite()).unwrap_or(false)
            || p.probabilities
                .as_ref()
                .map(|ps| ps.iter().any(|(_, x)| !x.is_finite()))
                .unwrap_or(false);
        if bad {
            let nulls: Vec<&str> = rows[i]
                .iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k.as_str())
                .collect();
            let field = match (nulls.as_slice(), rows.len()) {
                ([one], 1) => one.to_string(),
                ([one], _) => format!("rows[{i}].{one}"),
                (_, 1) if !nulls.is_empty() => nulls.join(", "),
                _ => format!("rows[{i}]"),
            };
            return Err(Error::BadInput {
                field,
                message: "missing value (null): this model cannot predict without it".into(),
            });
        }
    }
    Ok(())
}

fn int(x: f64, field: &dyn Fn() -> String) -> Result<i64> {
    if x.fract() != 0.0 || !x.is_finite() {
        return Err(Error::BadInput {
            field: field(),
            message: format!("expected an integer, got {x}"),
        });
    }
    Ok(x as i64)
}

fn floats(v: &DynValue) -> Result<Vec<f64>> {
    if let Ok((_, d)) = v.try_extract_tensor::<f32>() {
        return Ok(d.iter().map(|x| *x as f64).collect());
    }
    if let Ok((_, d)) = v.try_extract_tensor::<f64>() {
        return Ok(d.to_vec());
    }
    Err(Error::Inference(format!(
        "expected a float tensor, got {:?}",
        v.dtype()
    )))
}

fn labels(v: &DynValue) -> Result<Vec<String>> {
    if let Ok((_, d)) = v.try_extract_tensor::<i64>() {
        return Ok(d.iter().map(|x| x.to_string()).collect());
    }
    if let Ok((_, d)) = v.try_extract_tensor::<i32>() {
        return Ok(d.iter().map(|x| x.to_string()).collect());
    }
    if let Ok((_, d)) = v.try_extract_strings() {
        return Ok(d);
    }
    Err(Error::Inference(format!(
        "expected a label tensor, got {:?}",
        v.dtype()
    )))
}

fn map_probs(m: &ort::value::DynMap) -> Result<Vec<(String, f64)>> {
    let mut out: Vec<(String, f64)> = if let Ok(kv) = m.try_extract_key_values::<i64, f32>() {
        let mut kv = kv;
        kv.sort_by_key(|(k, _)| *k);
        kv.into_iter()
            .map(|(k, v)| (k.to_string(), v as f64))
            .collect()
    } else if let Ok(kv) = m.try_extract_key_values::<String, f32>() {
        kv.into_iter().map(|(k, v)| (k, v as f64)).collect()
    } else {
        return Err(Error::Inference("unsupported probability map".into()));
    };
    if out
        .first()
        .map(|(k, _)| k.parse::<i64>().is_err())
        .unwrap_or(false)
    {
        out.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(out)
}
