"""Save the serving benchmark's model as an MLflow model, for `mlflow models serve`.

Runs inside the MLflow virtualenv (mlflow_setup.sh), so the pickle matches the scikit-learn that
serves it. Trains the same model as export_model.py — same data, same seed — and saves it with
mlflow.sklearn.save_model. Usage:

    python bench/serve/mlflow_model.py OUT_DIR

Writes the MLflow model folder OUT_DIR (which must not exist yet).
"""
import sys

import mlflow.sklearn
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier


def main(out_dir):
    X, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    X = X.astype(np.float32)
    model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    # MLflow's default format, skops, loads only types it trusts; the tree predictor is trusted here
    # because this script made it (pickle would need MLFLOW_ALLOW_PICKLE_DESERIALIZATION instead).
    mlflow.sklearn.save_model(
        model, out_dir,
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    print(f"saved {model.n_iter_} trees to {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
