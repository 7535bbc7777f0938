"""train_fewshot under torchrun: two gloo ranks, each on half the batch, train as one process.

Upstream tier (the real MDM, random weights). The network's own dropout is off
(``--network_dropout 0 --lora_dropout 0``): with it on, each rank draws its own masks. The text
and action condition dropout stays on: it is drawn for the whole batch and cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_train_fewshot import cli_args, losses

pytestmark = pytest.mark.upstream


def test_two_ranks_train_as_one_process_and_resume(tiny_checkpoint, tiny_data, tmp_path, cli, torchrun):
    def args(run: str, steps: int) -> list[str]:
        return cli_args(tiny_checkpoint, tiny_data, tmp_path / run, tmp_path / "cache", "--num_steps", str(steps),
                        "--lora_dropout", "0", "--network_dropout", "0", "--num_mining_pictures", "1",
                        "--lr", "1e-3")

    one = cli.run("mdm_kinemic.train_fewshot", args("one", 4))
    assert one.returncode == 0, one.stderr[-3000:]
    # two ranks of two pairs each: two steps, then resumed to four
    for steps in (2, 4):
        two = torchrun(["-m", "mdm_kinemic.train_fewshot", *args("two", steps)], cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
        assert two.returncode == 0, two.stderr[-3000:]
    assert "resuming from" in two.stderr and "(step 2)" in two.stderr

    expected, got = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [r["step"] for r in got] == [1, 2, 3, 4]
    for name in ("loss", "rec_target", "contrastive", "rec_window", "distillation", "dww_mean", "grad_norm_before_clip"):
        np.testing.assert_allclose([r[name] for r in got], [r[name] for r in expected], rtol=1e-4, err_msg=name)
    assert got[0]["loss"] != got[-1]["loss"]
    # rank 0 alone wrote the run: one mining report, one log per launch, no rank-suffixed files
    assert not list((tmp_path / "two").glob("*rank*"))
    assert len(list((tmp_path / "two").glob("log_from*.txt"))) == 2
    assert sorted(p.name for p in (tmp_path / "two").glob("model*.pt")) == ["model000000002.pt", "model000000004.pt"]
