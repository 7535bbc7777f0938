"""Benchmark: conversion throughput (clips/s) of mdm_kinemic.data.convert, 1 vs N worker processes.

Each setting converts the same files (read, resample to 20 fps, 263-dim features, recover_from_ric,
atomic writes) into a fresh temporary folder; the speed-up is a ratio measured in the same run.
With --round_trip it also measures, on every input, the largest distance between the joints
recovered from the features and the normalised joints they were computed from (the 1 cm test
of tests/data/test_hml_vec.py, corpus-wide).

    python benchmarks/bench_convert.py --inputs DATA/bandai_raw/dataset --limit 400 --workers 1 2 --round_trip
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mdm_kinemic.data.convert import ConvertSettings, collect_inputs, convert
from mdm_kinemic.data.hml_vec import (
    joints_to_hml_vec,
    normalise_joints,
    recover_from_ric,
)
from mdm_kinemic.data.reader_base import ReaderSettings
from mdm_kinemic.data.readers import get_reader
from mdm_kinemic.data.resample import resample

DEFAULT_INPUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bandai-sample"


def round_trip_errors(files: list[Path], fmt: str, reader_settings: ReaderSettings) -> dict:
    """Largest recovered-vs-normalised joint distance (metres) per file, summarised."""
    reader = get_reader(fmt, reader_settings)
    worst: list[float] = []
    for path in files:
        try:
            motion = reader.read(path)
            vec = joints_to_hml_vec(motion.joints, motion.fps)
        except ValueError:
            continue
        canon = normalise_joints(resample(motion.joints, motion.fps))
        worst.append(float(np.linalg.norm(recover_from_ric(vec) - canon[:-1], axis=-1).max()))
    arr = np.array(worst)
    return {
        "clips": len(worst),
        "max_m": float(arr.max()),
        "p99_m": float(np.percentile(arr, 99)),
        "median_m": float(np.median(arr)),
        "clips_over_1cm": int((arr > 0.01).sum()),
    }


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", nargs="+", default=[str(DEFAULT_INPUTS)], help="files or folders to convert")
    p.add_argument("--format", default="bvh", help="reader format")
    p.add_argument("--limit", type=int, default=0, help="use every k-th file so that at most this many are converted (0: all)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    p.add_argument("--round_trip", action="store_true", help="also measure the round-trip error on every input")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "convert.json")
    args = p.parse_args()

    reader_settings = ReaderSettings()
    files = collect_inputs(args.inputs, get_reader(args.format).suffixes)
    if args.limit and len(files) > args.limit:
        files = files[:: -(-len(files) // args.limit)]
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = convert(files, Path(tmp) / "out", ConvertSettings(args.format, workers=workers), reader_settings, progress=False)
            seconds = time.perf_counter() - start
        rows.append({
            "workers": workers,
            "clips": report["converted"],
            "seconds": round(seconds, 2),
            "clips_per_s": round(report["converted"] / seconds, 2),
            "frames_20fps_per_s": round(report["frames_20fps"] / seconds, 1),
        })
    base = rows[0]["clips_per_s"]
    for row in rows:
        row["speedup_vs_first"] = round(row["clips_per_s"] / base, 2)
    result = {
        "inputs": len(files),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "rows": rows,
    }
    if args.round_trip:
        result["round_trip"] = round_trip_errors(files, args.format, reader_settings)

    print(f"{'workers':>7} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'frames/s':>9} {'speed-up':>8}")
    for r in rows:
        print(f"{r['workers']:>7} {r['clips']:>6} {r['seconds']:>8} {r['clips_per_s']:>8} {r['frames_20fps_per_s']:>9} {r['speedup_vs_first']:>8}")
    print(f"load average (1 min) at the end: {result['load_average_1min']} on {result['cpu_count']} cores")
    if args.round_trip:
        print("round trip:", result["round_trip"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
