"""mdm/checkpoints/upstream_checkpoint.py: resolving --mdm_ckpt and loading upstream checkpoints into upstream's MDM.

Tiny random checkpoints (2 layers, latent 64) made by random_checkpoint.py with upstream's own
MDM class; CLIP is the deterministic random one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    latest_model_file,
    load_upstream_checkpoint,
    resolve_checkpoint,
)

pytestmark = pytest.mark.upstream

TINY = {"layers": 2, "latent_dim": 64}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
        RandomCheckpointSettings,
        make_random_checkpoint,
    )
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream(clip_weights="random")
    out = tmp_path_factory.mktemp("ckpt") / "humanml_tiny"
    make_random_checkpoint(RandomCheckpointSettings(out=str(out), like="humanml_trans_enc_512", **TINY))
    return out


@pytest.fixture
def copy_of(tiny_dir, tmp_path):
    def copy(name: str = "copy") -> Path:
        return Path(shutil.copytree(tiny_dir, tmp_path / name))

    return copy


def _edit_args(folder: Path, **changes) -> None:
    path = folder / "args.json"
    args = json.loads(path.read_text())
    args.update(changes)
    path.write_text(json.dumps(args))


def _forward(model, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 263, 1, 30, generator=g)
    # upstream's cached-text option (y['text_embed'], [1, B, 512]) skips CLIP, slow in fp16 on CPU
    y = {"text_embed": torch.randn(1, 2, 512, generator=g), "mask": torch.ones(2, 1, 1, 30, dtype=torch.bool)}
    with torch.no_grad():
        return model(x, torch.tensor([3, 700]), y)


# ---------------------------------------------------------------- resolving --mdm_ckpt


def test_latest_model_file_orders_by_step(tmp_path):
    for step in (50, 200, 100):
        (tmp_path / f"model{step:09d}.pt").write_bytes(b"")
    (tmp_path / "opt000000300.pt").write_bytes(b"")
    assert latest_model_file(tmp_path) == tmp_path / "model000000200.pt"
    assert latest_model_file(tmp_path / "missing") is None


def test_file_folder_and_relative_path(tiny_dir, monkeypatch):
    ckpt = tiny_dir / "model000000000.pt"
    assert resolve_checkpoint(ckpt) == ckpt
    assert resolve_checkpoint(tiny_dir) == ckpt
    monkeypatch.chdir(tiny_dir.parent)
    assert resolve_checkpoint(tiny_dir.name) == ckpt


def test_name_under_upstream_save(tiny_dir, tmp_path):
    from mdm_kinemic.mdm.upstream.locate import locate_upstream

    # an upstream root whose save/ holds the checkpoint: real upstream code, linked, plus save/
    root = tmp_path / "mdm"
    root.mkdir()
    (root / "model").symlink_to(locate_upstream() / "model", target_is_directory=True)
    shutil.copytree(tiny_dir, root / "save" / "humanml_trans_enc_512")
    found = resolve_checkpoint("humanml_trans_enc_512", mdm_root=root)
    assert found == root / "save" / "humanml_trans_enc_512" / "model000000000.pt"


def test_unknown_name_lists_the_places_tried(tmp_path, monkeypatch):
    from mdm_kinemic.mdm.upstream.locate import locate_upstream

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError) as err:
        resolve_checkpoint("humanml_nonexistent_512")
    message = str(err.value)
    assert str(tmp_path / "humanml_nonexistent_512") in message
    assert str(locate_upstream() / "save" / "humanml_nonexistent_512") in message
    assert "random_checkpoint" in message


def test_empty_folder_is_named(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=f"{tmp_path} holds no model"):
        resolve_checkpoint(tmp_path)


# ---------------------------------------------------------------- loading


def test_load_builds_upstream_mdm_with_the_saved_weights(tiny_dir):
    from model.mdm import MDM

    model, diffusion, args = load_upstream_checkpoint(tiny_dir, clip_weights="random", expected_features=263)
    assert type(model) is MDM
    assert not model.training
    assert (args.layers, args.latent_dim, args.dataset, args.arch) == (2, 64, "humanml", "trans_enc")
    assert args.model_path == str(tiny_dir / "model000000000.pt")
    assert diffusion.num_timesteps == 1000
    saved = torch.load(tiny_dir / "model000000000.pt", weights_only=True)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert model.seqTransEncoder.layers[0].self_attn.embed_dim == 64 and len(model.seqTransEncoder.layers) == 2


def test_older_args_json_gets_upstream_defaults(tiny_dir):
    # the released humanml_trans_enc_512 args.json predates these flags; upstream's defaults apply
    _, _, args = load_upstream_checkpoint(tiny_dir, clip_weights="random")
    assert args.mask_frames is False and args.text_encoder_type == "clip" and args.pos_embed_max_len == 5000
    assert args.use_ema is False and args.pred_len == 0 and args.random_weights is True


def test_two_loads_give_identical_outputs(tiny_dir):
    first = load_upstream_checkpoint(tiny_dir, clip_weights="random").model
    second = load_upstream_checkpoint(tiny_dir, clip_weights="random").model
    assert torch.equal(_forward(first), _forward(second))


def test_upstream_own_loader_accepts_the_checkpoint(tiny_dir):
    from utils.model_util import load_saved_model

    model = load_upstream_checkpoint(tiny_dir, clip_weights="random").model
    expected = _forward(model)
    with torch.no_grad():
        for p in model.parameters_wo_clip():
            p.zero_()
    load_saved_model(model, str(tiny_dir / "model000000000.pt"))
    assert torch.equal(_forward(model), expected)


@pytest.mark.parametrize(("args_use_ema", "use_ema", "expected"), [(True, None, 1.0), (False, None, 0.0), (True, False, 0.0)])
def test_ema_checkpoints_load_model_avg_when_asked(copy_of, args_use_ema, use_ema, expected):
    folder = copy_of()
    path = folder / "model000000000.pt"
    plain = torch.load(path, weights_only=True)
    torch.save({"model": plain, "model_avg": {k: v + 1.0 for k, v in plain.items()}}, path)
    _edit_args(folder, use_ema=args_use_ema)
    model = load_upstream_checkpoint(folder, clip_weights="random", use_ema=use_ema).model
    key = "input_process.poseEmbedding.weight"
    assert torch.equal(model.state_dict()[key], plain[key] + expected)


def test_subclass_with_added_modules(tiny_dir):
    from model.mdm import MDM

    class WithExtra(MDM):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.extra = torch.nn.Linear(3, 3)

    model = load_upstream_checkpoint(tiny_dir, clip_weights="random", model_cls=WithExtra, allow_missing=("extra.",)).model
    assert isinstance(model, WithExtra)
    with pytest.raises(CheckpointError, match=r"lacks weights .*extra\.weight"):
        load_upstream_checkpoint(tiny_dir, clip_weights="random", model_cls=WithExtra)


# ---------------------------------------------------------------- bad input


def test_args_json_missing(copy_of):
    folder = copy_of()
    (folder / "args.json").unlink()
    with pytest.raises(CheckpointError) as err:
        load_upstream_checkpoint(folder, clip_weights="random")
    assert str(folder / "args.json") in str(err.value) and "copy that args.json" in str(err.value)


def test_args_json_not_json(copy_of):
    folder = copy_of()
    (folder / "args.json").write_text("{arch: trans_enc")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        load_upstream_checkpoint(folder, clip_weights="random")


def test_unknown_arch(copy_of):
    folder = copy_of()
    _edit_args(folder, arch="trans_mamba")
    with pytest.raises(CheckpointError) as err:
        load_upstream_checkpoint(folder, clip_weights="random")
    message = str(err.value)
    assert str(folder / "args.json") in message and "'trans_mamba'" in message
    assert "['trans_enc', 'trans_dec', 'gru']" in message


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_checkpoint(copy_of, keep):
    folder = copy_of()
    path = folder / "model000000000.pt"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError) as err:
        load_upstream_checkpoint(folder, clip_weights="random")
    assert str(path) in str(err.value) and "truncated" in str(err.value)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="model000200000.pt"):
        load_upstream_checkpoint(tmp_path / "model000200000.pt", clip_weights="random")


def test_kit_checkpoint_for_humanml_data(copy_of):
    folder = copy_of()
    _edit_args(folder, dataset="kit")
    with pytest.raises(CheckpointError) as err:
        load_upstream_checkpoint(folder, clip_weights="random", expected_features=263)
    message = str(err.value)
    assert "KIT-ML" in message and "251" in message and "263 (HumanML3D)" in message
    assert str(folder / "model000000000.pt") in message


def test_args_json_of_another_dataset_than_the_weights(copy_of):
    # HumanML3D weights (263 inputs) with an args.json saying KIT (251)
    folder = copy_of()
    _edit_args(folder, dataset="kit")
    with pytest.raises(CheckpointError) as err:
        load_upstream_checkpoint(folder, clip_weights="random")
    message = str(err.value)
    assert "263 (HumanML3D)" in message and "251 (KIT-ML)" in message
    assert str(folder / "args.json") in message


def test_args_json_with_another_width(copy_of):
    folder = copy_of()
    _edit_args(folder, latent_dim=128)
    with pytest.raises(CheckpointError, match=r"checkpoint \(64, 263\) vs model \(128, 263\).*latent_dim"):
        load_upstream_checkpoint(folder, clip_weights="random")


def test_unexpected_weights_are_named(copy_of):
    folder = copy_of()
    path = folder / "model000000000.pt"
    state = torch.load(path, weights_only=True)
    state["seqTransEncoder.layers.0.linear1.base_layer.weight"] = state.pop("seqTransEncoder.layers.0.linear1.weight")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="base_layer"):
        load_upstream_checkpoint(folder, clip_weights="random")


def test_not_a_state_dict(copy_of):
    folder = copy_of()
    torch.save([1, 2, 3], folder / "model000000000.pt")
    with pytest.raises(CheckpointError, match="not an upstream MDM checkpoint"):
        load_upstream_checkpoint(folder, clip_weights="random")
