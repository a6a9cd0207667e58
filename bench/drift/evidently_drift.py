#!/usr/bin/env python3
"""Baseline: Evidently's DataDriftPreset on the same two CSV files (run with the Python of the
virtual environment that `run.py` creates for Evidently).

    python bench/drift/evidently_drift.py REFERENCE.csv CURRENT.csv

Prints one JSON line: {"load_s", "compute_s", "evidently", "drifted_share"}.
"""

import json
import sys
import time

import pandas as pd

import evidently
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main(ref_path, cur_path):
    started = time.perf_counter()
    ref_df, cur_df = pd.read_csv(ref_path), pd.read_csv(cur_path)
    loaded = time.perf_counter()
    categorical = [c for c in ref_df.columns if c.startswith("cat_")]
    numerical = [c for c in ref_df.columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    reference = Dataset.from_pandas(ref_df, data_definition=definition)
    current = Dataset.from_pandas(cur_df, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    result = snapshot.dict()
    done = time.perf_counter()
    share = None
    for metric in result.get("metrics", []):
        if "DriftedColumnsCount" in str(metric.get("metric_name", "")):
            share = metric.get("value", {}).get("share")
    print(json.dumps({"load_s": loaded - started, "compute_s": done - loaded,
                      "evidently": evidently.__version__, "drifted_share": share}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
