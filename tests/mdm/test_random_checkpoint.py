"""mdm/checkpoints/random_checkpoint.py: upstream-format checkpoints with random weights, loudly labelled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
    PRESETS,
    RANDOM_MARKER,
    RandomCheckpointSettings,
    make_random_checkpoint,
)

pytestmark = pytest.mark.upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = {"layers": 2, "latent_dim": 64}


@pytest.fixture(scope="module", autouse=True)
def _upstream():
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream(clip_weights="random")


def _make(out: Path, **kw) -> Path:
    return make_random_checkpoint(RandomCheckpointSettings(out=str(out), **{**TINY, **kw}))


def test_cli_writes_a_labelled_upstream_checkpoint(tmp_path):
    out = tmp_path / "rnd"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mdm_kinemic.mdm.checkpoints.random_checkpoint", "--like", "humanml_trans_enc_512",
         "--out", str(out), "--layers", "2", "--latent_dim", "64"],
        check=False, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "RANDOM" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["RANDOM_WEIGHTS.txt", "args.json", "model000000000.pt"]
    assert "RANDOM" in (out / RANDOM_MARKER).read_text()
    saved = json.loads((out / "args.json").read_text())
    expected = {**PRESETS["humanml_trans_enc_512"], **TINY, "random_weights": True}
    assert {k: saved[k] for k in expected} == expected
    assert saved["random_checkpoint"]["like"] == "humanml_trans_enc_512"
    state = torch.load(out / "model000000000.pt", weights_only=True)
    assert not any(k.startswith("clip_model.") for k in state)  # as upstream's TrainLoop.save
    assert state["input_process.poseEmbedding.weight"].shape == (64, 263)


def test_cli_rejects_bad_settings(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mdm_kinemic.mdm.checkpoints.random_checkpoint", "--out", str(tmp_path), "--latent_dim", "30"],
        check=False, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2 and "latent_dim" in done.stderr


def test_full_humanml_trans_enc_512_architecture(tmp_path):
    ckpt = make_random_checkpoint(RandomCheckpointSettings(out=str(tmp_path / "full")))
    state = torch.load(ckpt, weights_only=True)
    sizes = {k: v.numel() for k, v in state.items() if "sequence_pos_encoder" not in k}
    # by hand: 8 encoder layers x (attention 4*512*512+4*512, FF 2*512*1024+1024+512, 2 LayerNorms
    # 4*512) + input 263*512+512 + output 512*263+263 + timestep MLP 2*(512*512+512) + text 512*512+512
    per_layer = 4 * 512 * 512 + 4 * 512 + 2 * 512 * 1024 + 1024 + 512 + 4 * 512
    assert sum(sizes.values()) == 8 * per_layer + (263 * 512 + 512) + (512 * 263 + 263) + 2 * (512 * 512 + 512) + (512 * 512 + 512)
    assert sum(sizes.values()) == 17_880_327
    assert json.loads((tmp_path / "full" / "args.json").read_text())["layers"] == 8


def test_seeded_and_reproducible(tmp_path):
    a = torch.load(_make(tmp_path / "a", seed=1), weights_only=True)
    b = torch.load(_make(tmp_path / "b", seed=1), weights_only=True)
    c = torch.load(_make(tmp_path / "c", seed=2), weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["output_process.poseFinal.weight"], c["output_process.poseFinal.weight"])


def test_global_rng_untouched(tmp_path):
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    _make(tmp_path / "x")
    assert torch.equal(torch.rand(2), expected)


def test_refuses_to_overwrite(tmp_path):
    _make(tmp_path / "x")
    with pytest.raises(FileExistsError, match="--overwrite"):
        _make(tmp_path / "x")
    _make(tmp_path / "x", overwrite=True, seed=3)


def test_ema_preset_writes_model_and_model_avg(tmp_path):
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import load_upstream_checkpoint

    ckpt = _make(tmp_path / "ema", like="humanml_enc_512_50steps")
    payload = torch.load(ckpt, weights_only=True)
    assert set(payload) == {"model", "model_avg"}
    _, diffusion, args = load_upstream_checkpoint(ckpt.parent, clip_weights="random")
    assert args.use_ema and args.mask_frames and diffusion.num_timesteps == 50


def test_kit_preset_has_251_features(tmp_path):
    state = torch.load(_make(tmp_path / "kit", like="kit_trans_enc_512"), weights_only=True)
    assert state["input_process.poseEmbedding.weight"].shape == (64, 251)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"out": ""}, "out"), ({"like": "humanml_trans_enc_1024"}, "like"), ({"layers": 0}, "layers"), ({"latent_dim": 66}, "latent_dim")],
)
def test_settings_are_validated(tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        RandomCheckpointSettings(**{"out": str(tmp_path), **kwargs})
