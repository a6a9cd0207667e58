#!/usr/bin/env python3
"""CorePlexML's AutoML trainer against H2O AutoML, LightGBM, XGBoost and scikit-learn's
HistGradientBoosting, on the same train/test splits. Prints a table of test metric and wall time.

    python3 bench/train/run.py [--datasets breast_cancer,classification_200k,diabetes,friedman_20k]
                               [--max-models 20] [--max-runtime-secs 60] [--seed 1]
                               [--splits N] [--no-h2o] [--no-build] [--json FILE]

With --splits N every tool runs on the same N splits (random_state 0..N-1); the table shows each
tool's mean ± sd and, paired by split, CorePlexML's advantage over each of the others. On a
few hundred rows one 25% test split moves AUC by several thousandths from split to split.

Needs numpy, scikit-learn, lightgbm, xgboost, h2o (pip) and a Java runtime for H2O
(`apt-get install default-jre-headless`). Builds `cargo build --release -p coreplex-train --example automl`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn import datasets as skd
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    """(X, y, task) for a dataset; every split is train_test_split(test_size=0.25, random_state=0)."""
    if name == "breast_cancer":
        X, y = skd.load_breast_cancer(return_X_y=True)
        return X, y, "binary"
    if name == "classification_200k":
        X, y = skd.make_classification(n_samples=200000, n_features=20, n_informative=10, random_state=0)
        return X, y, "binary"
    if name == "diabetes":
        X, y = skd.load_diabetes(return_X_y=True)
        return X, y, "regression"
    if name == "classification_500":
        X, y = skd.make_classification(n_samples=500, n_features=20, n_informative=10, random_state=0)
        return X, y, "binary"
    if name == "friedman_500":
        X, y = skd.make_friedman1(n_samples=500, n_features=10, noise=1.0, random_state=0)
        return X, y, "regression"
    if name == "friedman_20k":
        X, y = skd.make_friedman1(n_samples=20000, n_features=10, noise=1.0, random_state=0)
        return X, y, "regression"
    raise SystemExit(f"unknown dataset {name}")


def score(task, y, pred):
    if task == "binary":
        return roc_auc_score(y, pred)
    return float(np.sqrt(mean_squared_error(y, pred)))


def write_csv(path, X, y):
    cols = [f"f{i}" for i in range(X.shape[1])] + ["target"]
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        data = np.column_stack([X, y])
        np.savetxt(f, data, delimiter=",", fmt="%.9g")


def run_coreplex(task, Xtr, ytr, Xte, yte, args, tmp):
    train_csv = os.path.join(tmp, "train.csv")
    test_csv = os.path.join(tmp, "test.csv")
    write_csv(train_csv, Xtr, ytr)
    write_csv(test_csv, Xte, yte)
    exe = os.path.join(ROOT, "target", "release", "examples", "automl")
    cmd = [exe, train_csv, "--target", "target", "--test", test_csv,
           "--max-models", str(args.max_models), "--max-runtime-secs", str(args.max_runtime_secs),
           "--seed", str(args.seed), "--metric", "AUC" if task == "binary" else "RMSE",
           "--task", "binary_classification" if task == "binary" else "regression"]
    t0 = time.time()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.time() - t0
    res = json.loads(out.stdout)
    pred = np.array(res["test_predictions"])
    best = res["best"]
    return score(task, yte, pred), res["train_secs"], f"best {best} of {len(res['leaderboard'])} (process {wall:.1f} s)"


def run_lightgbm(task, Xtr, ytr, Xte, yte, args):
    import lightgbm as lgb
    m = (lgb.LGBMClassifier if task == "binary" else lgb.LGBMRegressor)(verbose=-1, random_state=args.seed)
    t0 = time.time()
    m.fit(Xtr, ytr)
    secs = time.time() - t0
    pred = m.predict_proba(Xte)[:, 1] if task == "binary" else m.predict(Xte)
    return score(task, yte, pred), secs, "defaults"


def run_xgboost(task, Xtr, ytr, Xte, yte, args):
    import xgboost as xgb
    m = (xgb.XGBClassifier if task == "binary" else xgb.XGBRegressor)(random_state=args.seed)
    t0 = time.time()
    m.fit(Xtr, ytr)
    secs = time.time() - t0
    pred = m.predict_proba(Xte)[:, 1] if task == "binary" else m.predict(Xte)
    return score(task, yte, pred), secs, "defaults"


def run_hgb(task, Xtr, ytr, Xte, yte, args):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    m = (HistGradientBoostingClassifier if task == "binary" else HistGradientBoostingRegressor)(random_state=args.seed)
    t0 = time.time()
    m.fit(Xtr, ytr)
    secs = time.time() - t0
    pred = m.predict_proba(Xte)[:, 1] if task == "binary" else m.predict(Xte)
    return score(task, yte, pred), secs, "defaults"


_h2o_started = False


def run_h2o(task, Xtr, ytr, Xte, yte, args):
    global _h2o_started
    import h2o
    from h2o.automl import H2OAutoML
    if not _h2o_started:
        h2o.init(nthreads=-1, verbose=False)
        h2o.no_progress()
        _h2o_started = True
    cols = [f"f{i}" for i in range(Xtr.shape[1])]
    tr = h2o.H2OFrame(np.column_stack([Xtr, ytr]), column_names=cols + ["target"])
    te = h2o.H2OFrame(Xte, column_names=cols)
    if task == "binary":
        tr["target"] = tr["target"].asfactor()
    aml = H2OAutoML(max_models=args.max_models, max_runtime_secs=args.max_runtime_secs, seed=args.seed,
                    sort_metric="AUC" if task == "binary" else "RMSE")
    t0 = time.time()
    aml.train(x=cols, y="target", training_frame=tr)
    secs = time.time() - t0
    p = aml.leader.predict(te).as_data_frame(use_pandas=False)
    header, rows = p[0], p[1:]
    col = header.index("p1") if task == "binary" else 0
    pred = np.array([float(r[col]) for r in rows])
    return score(task, yte, pred), secs, f"leader {aml.leader.model_id.split('_AutoML')[0]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="breast_cancer,classification_200k,diabetes,friedman_20k")
    ap.add_argument("--max-models", type=int, default=20)
    ap.add_argument("--max-runtime-secs", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-h2o", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--splits", type=int, default=1,
                    help="repeat on N splits (random_state 0..N-1) and report each tool's mean and sd")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "coreplex-train", "--example", "automl"], cwd=ROOT, check=True)
    tools = [("coreplex", None), ("lightgbm", run_lightgbm), ("xgboost", run_xgboost), ("sklearn_hgb", run_hgb)]
    if not args.no_h2o:
        tools.append(("h2o_automl", run_h2o))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            X, y, task = load(name)
            for split in range(args.splits):
                Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=split)
                # The CSV rounds to 9 significant digits; every tool trains on the same rounded values.
                Xtr, Xte = np.float64(np.float32(Xtr)), np.float64(np.float32(Xte))
                for tool, fn in tools:
                    try:
                        if tool == "coreplex":
                            metric, secs, note = run_coreplex(task, Xtr, ytr, Xte, yte, args, tmp)
                        else:
                            metric, secs, note = fn(task, Xtr, ytr, Xte, yte, args)
                    except Exception as e:  # report and go on with the other tools
                        metric, secs, note = float("nan"), float("nan"), f"failed: {e}"
                    row = {"dataset": name, "split": split, "task": task, "tool": tool,
                           "metric": "AUC" if task == "binary" else "RMSE", "value": metric, "secs": secs, "note": note}
                    results.append(row)
                    print(f"{name:20} {split:3} {tool:12} {row['metric']:4} {metric:.5f} {secs:8.1f} s  {note}", flush=True)
    print()
    print(f"max_models={args.max_models}, max_runtime_secs={args.max_runtime_secs}, seed={args.seed}"
          + (f", mean ± sd over splits random_state=0..{args.splits - 1}" if args.splits > 1 else ""))
    print("| dataset | metric | " + " | ".join(t for t, _ in tools) + " |")
    print("|---|---|" + "---|" * len(tools))
    for name in args.datasets.split(","):
        cells = []
        for t, _ in tools:
            rows = [r for r in results if r["dataset"] == name and r["tool"] == t]
            v = np.array([r["value"] for r in rows])
            secs = np.mean([r["secs"] for r in rows])
            if len(rows) > 1:
                cells.append(f"{v.mean():.4f} ± {v.std(ddof=1):.4f} ({secs:.1f} s)")
            else:
                cells.append(f"{v[0]:.4f} ({secs:.1f} s)")
        metric = next(r["metric"] for r in results if r["dataset"] == name)
        print(f"| {name} | {metric} | " + " | ".join(cells) + " |")
        if args.splits > 1:
            # Paired against CorePlexML on each split: mean difference and how many splits it wins.
            ours = np.array([r["value"] for r in results if r["dataset"] == name and r["tool"] == "coreplex"])
            for t, _ in tools[1:]:
                theirs = np.array([r["value"] for r in results if r["dataset"] == name and r["tool"] == t])
                d = ours - theirs if metric == "AUC" else theirs - ours
                print(f"  coreplex vs {t}: mean advantage {d.mean():+.4f} (sd {d.std(ddof=1):.4f}), "
                      f"better on {int((d > 0).sum())}, worse on {int((d < 0).sum())} of {len(d)} splits")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
