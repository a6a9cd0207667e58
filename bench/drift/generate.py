#!/usr/bin/env python3
"""Generate the drift benchmark data: a reference and a current CSV with N rows of 20 numeric
and 5 categorical columns; about half of the columns (10 numeric and 3 categorical, 13 of 25)
are shifted in the current file. About 1% of the values of a few
columns are missing. Deterministic for a given seed.

    python3 bench/drift/generate.py --rows 100000 --out /tmp/drift-bench
"""

import argparse
import os
import time

import numpy as np
import pandas as pd

NUMERIC = 20
CATEGORICAL = 5
SHIFTED_NUMERIC = 10
SHIFTED_CATEGORICAL = 3


def numeric_column(rng, i, n, shifted):
    """Ten distribution families, each used twice; a shift moves location and/or scale."""
    kind = i % 10
    s = 1.0 if shifted else 0.0
    if kind == 0:
        return rng.normal(0.5 * s, 1.0, n)
    if kind == 1:
        return rng.normal(50.0, 10.0 * (1 + 0.6 * s), n)
    if kind == 2:
        return rng.lognormal(0.4 * s, 0.7, n)
    if kind == 3:
        return rng.uniform(0.0 + 0.2 * s, 1.0 + 0.2 * s, n)
    if kind == 4:
        return rng.exponential(2.0 * (1 + 0.6 * s), n)
    if kind == 5:
        return rng.integers(0, 100 + int(20 * s), n).astype(float)  # heavy ties
    if kind == 6:
        return rng.standard_t(5, n) + 0.5 * s
    if kind == 7:
        return rng.gamma(2.0 + 0.5 * s, 3.0, n)
    if kind == 8:
        return np.where(rng.random(n) < 0.3 + 0.2 * s, rng.normal(-2, 0.5, n), rng.normal(2, 0.5, n))
    return rng.beta(2.0, 5.0 - 2.0 * s, n) * 1000


def categorical_column(rng, i, n, shifted):
    levels = [f"level_{k}" for k in range(4 + 4 * i)]
    weights = np.linspace(1.0, 3.0, len(levels))
    if shifted:
        weights = weights[::-1] ** 1.5
    weights = weights / weights.sum()
    return rng.choice(np.array(levels, dtype=object), size=n, p=weights)


def frame(rng, n, current):
    data = {}
    for i in range(NUMERIC):
        col = numeric_column(rng, i, n, current and i < SHIFTED_NUMERIC)
        if i % 7 == 3:
            col[rng.random(n) < 0.01] = np.nan
        data[f"num_{i}"] = col
    for i in range(CATEGORICAL):
        col = categorical_column(rng, i, n, current and i < SHIFTED_CATEGORICAL)
        if i == 4:
            col[rng.random(n) < 0.01] = None
        data[f"cat_{i}"] = col
    return pd.DataFrame(data)


def paths(out, rows):
    return (os.path.join(out, f"reference_{rows}.csv"), os.path.join(out, f"current_{rows}.csv"))


def generate(rows, out, seed=2024):
    os.makedirs(out, exist_ok=True)
    ref_path, cur_path = paths(out, rows)
    if os.path.exists(ref_path) and os.path.exists(cur_path):
        return ref_path, cur_path
    started = time.perf_counter()
    for path, current, offset in [(ref_path, False, 0), (cur_path, True, 1)]:
        rng = np.random.default_rng(seed + offset)
        # Six significant digits, as exported data usually has; same file for every tool.
        frame(rng, rows, current).to_csv(path + ".tmp", index=False, float_format="%.6g")
        os.replace(path + ".tmp", path)
    print(f"generated {rows} rows in {time.perf_counter() - started:.1f}s: {ref_path}, {cur_path}")
    return ref_path, cur_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--out", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "coreplex-drift-bench"))
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    for rows in args.rows:
        generate(rows, args.out, args.seed)
