"""The objective under data parallelism: two gloo ranks, each on its share of one batch, train as
one process on the whole batch (core/sharding.py, rank_shard)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("objective_ranks.py")


def _run(torchrun, tmp_path: Path, nproc: int) -> list[dict]:
    out = tmp_path / f"world{nproc}"
    out.mkdir()
    result = torchrun([str(SCRIPT), str(out)], cwd=tmp_path, nproc=nproc, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(nproc)]


def test_two_ranks_take_the_steps_of_one_process(torchrun, tmp_path):
    (one,) = _run(torchrun, tmp_path, 1)
    two = _run(torchrun, tmp_path, 2)
    # 5 pairs: rank 0 holds 3, rank 1 holds 2; Eq. 1's anchors on one rank find positives on the other
    for rank in two:
        assert [s.keys() for s in rank["steps"]] == [s.keys() for s in one["steps"]]
        for got, expected in zip(rank["steps"], one["steps"]):
            for name in ("loss", "rec_target", "contrastive", "rec_window", "distillation", "dww_mean", "dww_min"):
                np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
            assert got["contrastive_excluded"] == expected["contrastive_excluded"] == 1  # anchor 3 has no positive
        # the same optimizer steps: every trainable parameter (student, MIC, temperature) and the bank
        for got, expected in zip(rank["params"], one["params"]):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rank["bank"], one["bank"], rtol=1e-5, atol=1e-6)
    assert one["steps"][0]["loss"] != one["steps"][-1]["loss"]  # the steps changed the model
