"""Export the serving benchmark's model to ONNX, with the rows the load generator sends.

A scikit-learn HistGradientBoostingClassifier (default size: up to 100 trees of 31 leaves) on
make_classification(n_samples=20000, n_features=20, random_state=0), exported with skl2onnx as a
single float input [N, 20] and tensor outputs (zipmap off). Usage:

    python3 bench/serve/export_model.py OUT_DIR

Writes OUT_DIR/model.onnx and OUT_DIR/rows.json ({"feature_names", "rows", "expected_labels"}).
mlflow_model.py trains the same model, from the same data and seed, for `mlflow models serve`.
"""
import json
import os
import sys

import numpy as np
import onnx.helper
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

# skl2onnx 1.20 hands numpy booleans to onnx for tree attributes (nodes_missing_value_tracks_true)
# with scikit-learn 1.9, which onnx rejects: turn them into ints before the attribute is built.
_make_attribute = onnx.helper.make_attribute


def _make_attribute_ints(key, value, *args, **kwargs):
    if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in value):
        value = [int(v) for v in value]
    return _make_attribute(key, value, *args, **kwargs)


onnx.helper.make_attribute = _make_attribute_ints

N_ROWS = 1000  # distinct request bodies the load generator cycles through


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    X, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    with open(os.path.join(out_dir, "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    rows = X[-N_ROWS:]
    with open(os.path.join(out_dir, "rows.json"), "w") as f:
        json.dump({
            "feature_names": [f"f{i}" for i in range(X.shape[1])],
            "rows": [[float(v) for v in r] for r in rows],
            "expected_labels": [int(v) for v in model.predict(rows)],
        }, f)
    print(f"HistGradientBoostingClassifier: {model.n_iter_} trees, "
          f"training accuracy {model.score(X, y):.3f}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
