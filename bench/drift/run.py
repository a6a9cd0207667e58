#!/usr/bin/env python3
"""Drift benchmark: `coreplex drift` against a SciPy/NumPy loop and Evidently's
DataDriftPreset on the same generated CSV files, measured two ways in the same run:

- end to end: wall time of the whole process, from CSV files to the finished report
  (each tool's own CSV loading included), with peak memory from /usr/bin/time -v;
- compute only: the computation on data already in memory, as each tool reports it
  (`coreplex drift --timing`; the scripts time their own work after `pandas.read_csv`).

Usage (from the repository root):

    python3 bench/drift/run.py                       # 100,000 rows
    python3 bench/drift/run.py --rows 100000 1000000 # both sizes

Evidently is installed into its own virtual environment (default under $TMPDIR) on first
use; pass --no-evidently to skip it. Times are the best of --repeat runs (Evidently: one run).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TMP = os.environ.get("TMPDIR", "/tmp")
sys.path.insert(0, HERE)

import generate  # noqa: E402


def measure(cmd):
    """Run under /usr/bin/time -v; return (wall seconds, peak RSS in MB, CPU seconds
    (user + system), stdout, stderr)."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    user = re.search(r"User time \(seconds\): ([0-9.]+)", proc.stderr)
    system = re.search(r"System time \(seconds\): ([0-9.]+)", proc.stderr)
    cpu = float(user.group(1)) + float(system.group(1)) if user and system else float("nan")
    return wall, int(rss.group(1)) / 1024 if rss else float("nan"), cpu, proc.stdout, proc.stderr


def best(runs):
    """Fold repeated runs: best times, largest memory."""
    return {
        "e2e_s": min(r["e2e_s"] for r in runs),
        "compute_s": min(r["compute_s"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "cpu_s": min(r["cpu_s"] for r in runs),
        "drifted": runs[0]["drifted"],
    }


def run_coreplex(binary, ref, cur):
    wall, rss, cpu, out, err = measure([binary, "drift", "--reference", ref, "--current", cur, "--format", "json", "--timing"])
    compute = float(re.search(r"compute ([0-9.]+)s", err).group(1))
    report = json.loads(out)
    return {"e2e_s": wall, "compute_s": compute, "rss_mb": rss, "cpu_s": cpu,
            "drifted": report["data_drift_score"]}


def run_scipy(ref, cur, full=False):
    extra = ["--full"] if full else []
    wall, rss, cpu, out, _ = measure([sys.executable, os.path.join(HERE, "scipy_drift.py"), ref, cur, *extra])
    r = json.loads(out.strip().splitlines()[-1])
    return {"e2e_s": wall, "compute_s": r["compute_s"], "rss_mb": rss, "cpu_s": cpu,
            "drifted": r["drifted"] / r["features"]}


def run_evidently(python, ref, cur):
    wall, rss, cpu, out, _ = measure([python, os.path.join(HERE, "evidently_drift.py"), ref, cur])
    r = json.loads(out.strip().splitlines()[-1])
    return {"e2e_s": wall, "compute_s": r["compute_s"], "rss_mb": rss, "cpu_s": cpu,
            "drifted": r["drifted_share"],
            "version": r["evidently"]}


def evidently_python(venv):
    python = os.path.join(venv, "bin", "python")
    check = [python, "-c", "import evidently, evidently.presets"]
    if os.path.exists(python) and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing Evidently into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        # Evidently 0.7 does not import under pandas 3.
        subprocess.run([python, "-m", "pip", "install", "-q", "evidently", "pandas<3"], check=True)
        subprocess.run(check, check=True, capture_output=True)
        return python
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"Evidently could not be installed ({e}); skipping it", flush=True)
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", default=os.path.join(TMP, "coreplex-drift-bench"))
    parser.add_argument("--venv", default=os.path.join(TMP, "coreplex-evidently-venv"))
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-build", action="store_true", help="use the existing release binary")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    # Cargo's own variable for where it builds (relative to the repository root, like cargo).
    target = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"))
    binary = os.path.join(target, "release", "coreplex")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "coreplex-cli"], cwd=ROOT, check=True)
    python_ev = None if args.no_evidently else evidently_python(args.venv)

    results = {}
    for rows in args.rows:
        ref, cur = generate.generate(rows, args.data)
        size_mb = (os.path.getsize(ref) + os.path.getsize(cur)) / 2**20
        print(f"\n## {rows:,} rows x 25 columns ({size_mb:.0f} MB of CSV)", flush=True)
        tools = {}
        # Warm the page cache so every tool reads the files from memory.
        run_coreplex(binary, ref, cur)
        tools["coreplex"] = best([run_coreplex(binary, ref, cur) for _ in range(args.repeat)])
        tools["scipy"] = best([run_scipy(ref, cur) for _ in range(args.repeat)])
        tools["scipy --full"] = best([run_scipy(ref, cur, full=True) for _ in range(args.repeat)])
        if python_ev:
            tools["evidently"] = best([run_evidently(python_ev, ref, cur)])
        base = tools["coreplex"]
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"(load average before the run: {load})")
        print("| tool | end to end (s) | compute only (s) | CPU time (s) | peak memory (MB) | e2e ratio | compute ratio | drift score |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, t in tools.items():
            e2e_ratio = t["e2e_s"] / base["e2e_s"]
            compute_ratio = t["compute_s"] / base["compute_s"]
            t["e2e_ratio"], t["compute_ratio"] = e2e_ratio, compute_ratio
            drifted = "-" if t["drifted"] is None else f"{t['drifted']:.2f}"
            print(f"| {name} | {t['e2e_s']:.3f} | {t['compute_s']:.3f} | {t['cpu_s']:.2f} | {t['rss_mb']:.0f} | "
                  f"{e2e_ratio:.1f}x | {compute_ratio:.1f}x | {drifted} |", flush=True)
        results[rows] = tools
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
