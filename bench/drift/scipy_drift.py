#!/usr/bin/env python3
"""Baseline: the drift report of SPEC §6 as a plain SciPy/NumPy loop over columns.

    python3 bench/drift/scipy_drift.py REFERENCE.csv CURRENT.csv [--full]

By default the loop computes what the decision rule needs: KS + PSI for numeric columns,
chi-squared + PSI for categorical ones. With --full it also computes the extra columns
`coreplex drift` reports (normed Wasserstein distance and Jensen-Shannon distance), i.e. the
same report. Prints one JSON line: {"load_s", "compute_s", "drifted", "features"}.
"""

import json
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon


def psi(ref_shares, cur_shares):
    r, c = np.maximum(ref_shares, 1e-4), np.maximum(cur_shares, 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric(ref, cur, full):
    ks = stats.ks_2samp(ref, cur)
    cuts = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    r = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=len(cuts) + 1) / len(ref)
    c = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=len(cuts) + 1) / len(cur)
    if full:
        stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        jensenshannon(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0])
    return float(ks.pvalue), psi(r, c)


def categorical(ref, cur, full):
    r, c = ref.value_counts(), cur.value_counts()
    cats = r.index.union(c.index)
    r, c = r.reindex(cats, fill_value=0).to_numpy(), c.reindex(cats, fill_value=0).to_numpy()
    chi2 = stats.chi2_contingency(np.array([r, c]), correction=False)
    if full:
        jensenshannon(r, c)
    return float(chi2.pvalue), psi(r / r.sum(), c / c.sum())


def compute(ref_df, cur_df, full=False, alpha=0.05, psi_threshold=0.1):
    drifted = 0
    columns = [c for c in ref_df.columns if c in cur_df.columns]
    for col in columns:
        r, c = ref_df[col].dropna(), cur_df[col].dropna()
        if pd.api.types.is_numeric_dtype(r) and pd.api.types.is_numeric_dtype(c):
            p, value = numeric(r.to_numpy(), c.to_numpy(), full)
        else:
            p, value = categorical(r, c, full)
        drifted += p < alpha and value >= psi_threshold
    return drifted, len(columns)


if __name__ == "__main__":
    full = "--full" in sys.argv[3:]
    started = time.perf_counter()
    ref_df, cur_df = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
    loaded = time.perf_counter()
    drifted, features = compute(ref_df, cur_df, full)
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - started, "compute_s": done - loaded, "drifted": drifted, "features": features}))
