"""har.evaluate under torchrun: seeds spread over two gloo ranks, one result file equal to a one-process run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
#: wall seconds are the only fields that differ between any two runs
TIMING = "train_seconds_per_seed"


def _without_timing(results: dict) -> dict:
    for run in results["runs"].values():
        assert len(run.pop(TIMING)) == len(run["seeds"])
    return results


def test_two_ranks_write_the_results_of_one_process(make_clips, write_folder, tmp_path, torchrun):
    real = write_folder(tmp_path / "real", make_clips(2, 16, seed=0, source="real"))
    synth = write_folder(tmp_path / "synth", make_clips(3, 16, seed=1, source="synth"))
    test = write_folder(tmp_path / "test", make_clips(2, 16, seed=2, source="test"))
    # 3 seeds on 2 ranks: rank 0 trains seeds 0 and 2, rank 1 seed 1
    args = ["-m", "mdm_kinemic.har.evaluate", "--train_real", str(real), "--train_synthetic", str(synth), "--test",
            str(test), "--quick", "--seeds", "3", "--epochs", "1", "--clip_len", "12", "--base_channels", "8",
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], check=False, capture_output=True,
                         text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    ranks = torchrun([*args, "--out", str(tmp_path / "ranks")], cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert ranks.stdout.count("real_plus_synthetic") == 1  # rank 0 alone reports

    expected = _without_timing(json.loads((tmp_path / "one" / "har_results.json").read_text()))
    got = _without_timing(json.loads((tmp_path / "ranks" / "har_results.json").read_text()))
    assert got == expected
    assert got["runs"]["real_only"]["seeds"] == [0, 1, 2] and "generative_metrics" in got
    for run in ("real_only", "real_plus_synthetic"):
        for seed in (0, 1, 2):
            folder = Path(run) / f"seed{seed}"
            np.testing.assert_array_equal(np.load(tmp_path / "ranks" / folder / "test_scores.npy"),
                                          np.load(tmp_path / "one" / folder / "test_scores.npy"))
            assert (tmp_path / "ranks" / folder / "recogniser.safetensors").is_file()
            assert (tmp_path / "ranks" / folder / "train_log.jsonl").is_file()
