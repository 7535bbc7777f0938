"""MDM with the sentence encoder behind upstream's text interface (upstream tier, tiny sizes)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.upstream

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _tiny_args(text_encoder_type: str = "minilm") -> argparse.Namespace:
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import upstream_default_args

    args = upstream_default_args()
    args.dataset, args.latent_dim, args.layers, args.text_encoder_type = "humanml", 32, 1, text_encoder_type
    return args


@pytest.fixture(scope="module")
def model():
    from mdm_kinemic.mdm.model.build import build_upstream_model
    from mdm_kinemic.mdm.model.sentence_text import sentence_text_mdm_class

    torch.manual_seed(0)
    m, _ = build_upstream_model(_tiny_args(), model_cls=sentence_text_mdm_class(), model_kwargs={"text_encoder_type": "minilm"})
    return m


def test_text_goes_through_the_sentence_encoder_into_a_384_wide_projection(model):
    from model.mdm import MDM

    from mdm_kinemic.mdm.model.sentence_text import (
        sentence_text_mdm_class,
        with_sentence_text,
    )
    from mdm_kinemic.text.encoder import get_text_encoder

    assert with_sentence_text(MDM) is sentence_text_mdm_class() is type(model)
    assert type(model).__name__ == "SentenceTextMDM" and type(model).__mro__[1] is MDM
    assert isinstance(model, MDM) and model.clip_dim == 384
    assert model.embed_text.in_features == 384 and model.embed_text.out_features == 32
    texts = ["a person waves with both hands.", "a person runs."]
    enc = model.encode_text(texts)
    assert enc.shape == (1, 2, 384)
    expected = get_text_encoder("minilm").encode(texts)
    torch.testing.assert_close(enc[0], expected)
    assert torch.linalg.vector_norm(enc, dim=-1).sub(1).abs().max() < 1e-5


def test_encoder_is_frozen_outside_the_state_dict_and_memoised(model):
    assert not [k for k in model.state_dict() if k.startswith("clip_model.")]
    assert not list(model.clip_model.parameters())
    assert all(not n.startswith("clip_model.") for n, _ in model.named_parameters())
    calls = []
    encoder = model.clip_model.encoder
    original = encoder._encode_batch
    encoder._encode_batch = lambda texts: calls.append(list(texts)) or original(texts)
    try:
        model.clip_model(["a person bows.", "a person bows.", "a person kicks."])
        model.clip_model(["a person kicks."])
    finally:
        del encoder._encode_batch
    assert calls == [["a person bows.", "a person kicks."]]


def test_forward_and_checkpoint_round_trip(model):
    from utils.model_util import load_model_wo_clip

    from mdm_kinemic.mdm.model.build import build_upstream_model
    from mdm_kinemic.mdm.model.sentence_text import sentence_text_mdm_class

    x = torch.randn(2, 263, 1, 12, generator=torch.Generator().manual_seed(1))
    y = {"text": ["a person runs.", "a person waves."], "mask": torch.ones(2, 1, 1, 12, dtype=torch.bool)}
    model.eval()
    out = model(x, torch.tensor([1, 3]), y)
    assert out.shape == (2, 263, 1, 12)
    fresh, _ = build_upstream_model(_tiny_args(), model_cls=sentence_text_mdm_class(), model_kwargs={"text_encoder_type": "minilm"})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    load_model_wo_clip(fresh, state)
    fresh.eval()
    torch.testing.assert_close(fresh(x, torch.tensor([1, 3]), y), out)
    # the text reaches the output: another caption changes it
    other = model(x, torch.tensor([1, 3]), {**y, "text": ["a person kicks.", "a person waves."]})
    assert (other[0] - out[0]).abs().max() > 1e-6 and torch.allclose(other[1], out[1])


def test_install_adds_the_choice_and_builds_through_upstreams_function():
    from mdm_kinemic.mdm.model.sentence_text import (
        install_sentence_text,
        sentence_text_mdm_class,
    )
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream()
    install_sentence_text()
    install_sentence_text()
    from utils import model_util, parser_util

    assert getattr(model_util.create_model_and_diffusion, "__wrapped__", None) is not None
    assert not getattr(model_util.create_model_and_diffusion.__wrapped__, "_sentence_text", False)
    parser = argparse.ArgumentParser()
    parser_util.add_model_options(parser)
    assert parser.parse_args(["--text_encoder_type", "minilm"]).text_encoder_type == "minilm"
    with pytest.raises(SystemExit):
        parser.parse_args(["--text_encoder_type", "gpt"])
    args = _tiny_args()
    data = argparse.Namespace(dataset=argparse.Namespace(num_actions=1))
    model, diffusion = model_util.create_model_and_diffusion(args, data)
    assert type(model) is sentence_text_mdm_class() and diffusion.num_timesteps == args.diffusion_steps
    with pytest.raises(ValueError, match="text_encoder_type must be one of"):
        sentence_text_mdm_class()(**{**model_util.get_model_args(args, data), "text_encoder_type": "bert"})


def test_model_class_for_follows_the_checkpoints_text_encoder():
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream()
    from model.mdm import MDM

    from mdm_kinemic.mdm.model.sentence_text import (
        model_class_for,
        sentence_text_mdm_class,
        with_sentence_text,
    )

    assert model_class_for(_tiny_args("clip")) is None
    assert model_class_for(_tiny_args("clip"), MDM) is MDM
    assert model_class_for(_tiny_args("minilm")) is sentence_text_mdm_class()
    sub = type("Sub", (MDM,), {})
    assert model_class_for(_tiny_args("minilm"), sub) is with_sentence_text(sub)
    assert issubclass(with_sentence_text(sub), sub) and with_sentence_text(sub).__name__ == "SentenceTextSub"


def test_train_mdm_runs_through_the_runner_on_a_tiny_folder(tmp_path):
    from mdm_kinemic.data.humanml3d import write_clip, write_mean_std, write_split

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(4)]
    for i, clip_id in enumerate(ids):
        write_clip(data, clip_id, rng.normal(size=(41 + i, 263)).astype(np.float32), joints=np.zeros((41 + i, 22, 3)),
                   captions=[f"a person does thing number {i}."])
    write_split(data, "train", ids)
    write_mean_std(data, np.zeros(263), np.ones(263))
    save = tmp_path / "save"
    cmd = [sys.executable, "-m", "mdm_kinemic.run", "train.train_mdm", "--save_dir", str(save),
           "--data_dir", str(data), "--dataset", "humanml", "--text_encoder_type", "minilm", "--latent_dim", "16",
           "--layers", "1", "--diffusion_steps", "10", "--batch_size", "4", "--num_steps", "1", "--save_interval", "1",
           "--log_interval", "1", "--device", "-1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads((save / "args.json").read_text())["text_encoder_type"] == "minilm"
    assert (save / "model000000001.pt").is_file()
    state = torch.load(save / "model000000001.pt", map_location="cpu", weights_only=True)
    assert state["embed_text.weight"].shape == (16, 384)
    assert not [k for k in state if k.startswith("clip_model.")]
