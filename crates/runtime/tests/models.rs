//! Every fixture model exported by scikit-learn loads, exposes its schema, and predicts what Python's
//! ONNX Runtime predicted for the same rows (fixtures from tests/fixtures/models/generate.py).

use coreplex_runtime::{LoadOptions, LoadedModel, OutputKind};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn load(name: &str, feature_names: Option<Vec<String>>) -> LoadedModel {
    coreplex_runtime::init(None).expect("ONNX Runtime (run scripts/fetch-onnxruntime.sh)");
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    LoadedModel::load(
        &bytes,
        &LoadOptions {
            feature_names,
            class_labels: None,
            sessions: 2,
        },
    )
    .unwrap()
}

fn rows(case: &Value) -> Vec<serde_json::Map<String, Value>> {
    case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

fn names(case: &Value) -> Vec<String> {
    case["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn classifiers_match_python_onnxruntime() {
    let exp = expected();
    for name in [
        "logreg.onnx",
        "forest.onnx",
        "hgb.onnx",
        "multiclass.onnx",
        "pipeline.onnx",
    ] {
        let case = &exp[name];
        let fnames = if name == "pipeline.onnx" {
            None
        } else {
            Some(names(case))
        };
        let model = load(name, fnames);
        let preds = model.predict(&rows(case)).unwrap();
        for (i, p) in preds.iter().enumerate() {
            assert_eq!(
                p.label.as_deref(),
                case["labels"][i].as_str(),
                "{name} row {i} label"
            );
            let probs = p.probabilities.as_ref().unwrap();
            let want = case["probabilities"][i].as_array().unwrap();
            assert_eq!(probs.len(), want.len(), "{name}");
            for (k, (_, got)) in probs.iter().enumerate() {
                let w = want[k].as_f64().unwrap();
                assert!(
                    (got - w).abs() < 1e-6,
                    "{name} row {i} class {k}: {got} vs {w}"
                );
            }
        }
        assert!(
            matches!(model.schema().output, OutputKind::Classifier { .. }),
            "{name}"
        );
    }
}

#[test]
fn pipeline_schema_has_one_feature_per_column_with_types() {
    let model = load("pipeline.onnx", None);
    let f: Vec<(String, String)> = model
        .schema()
        .features
        .iter()
        .map(|f| (f.name.clone(), format!("{:?}", f.dtype)))
        .collect();
    assert_eq!(
        f,
        vec![
            ("plan".into(), "String".into()),
            ("region".into(), "String".into()),
            ("age".into(), "Float".into()),
            ("spend".into(), "Float".into())
        ]
    );
}

#[test]
fn regressor_matches_python_onnxruntime() {
    let exp = expected();
    let case = &exp["regressor.onnx"];
    let model = load("regressor.onnx", Some(names(case)));
    let preds = model.predict(&rows(case)).unwrap();
    for (i, p) in preds.iter().enumerate() {
        let w = case["values"][i].as_f64().unwrap();
        assert!(
            (p.value.unwrap() - w).abs() < 1e-3 * w.abs().max(1.0),
            "row {i}"
        );
    }
}

#[test]
fn missing_and_mistyped_features_are_named() {
    let model = load("pipeline.onnx", None);
    let mut row = model.example_row();
    row.remove("age");
    let e = model.predict(&[row]).unwrap_err().to_string();
    assert_eq!(e, "age: missing feature");
    let mut row = model.example_row();
    row.insert("spend".into(), Value::String("lots".into()));
    let e = model.predict(&[row.clone(), row]).unwrap_err().to_string();
    assert_eq!(e, "rows[0].spend: expected a number, got the text \"lots\"");
}

#[test]
fn a_file_that_is_not_onnx_is_rejected_with_the_loaders_reason() {
    coreplex_runtime::init(None).unwrap();
    let e = LoadedModel::load(b"this is not an ONNX graph\n", &LoadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the file is not a model ONNX Runtime can load: "),
        "{e}"
    );
}
