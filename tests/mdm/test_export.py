"""python -m mdm_kinemic.export: a standalone student with LoRA merged, loadable without peft."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdm_kinemic.core.denoiser import Condition
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings

pytestmark = pytest.mark.upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a person performs a side kick.", "a person waves with the right hand."]
T = 9


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_base_checkpoint):
    """A KineMIC checkpoint folder with non-zero adapters, and the student that wrote it."""
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )

    root = tmp_path_factory.mktemp("export")
    base = tiny_base_checkpoint(root / "base", seed=2)
    torch.manual_seed(0)
    model = start_from_base(base, KineMICModelSettings(num_actions=2, class_names=("kick", "wave")), LoraSettings()).model
    with torch.no_grad():
        for name, p in model.network.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
        model.mdm.action_embedding.weight.normal_(0, 0.5)
    path = save_kinemic_checkpoint(root / "kinemic", 5000, model)
    return {"model": model, "path": path, "root": root}


def _inputs():
    g = torch.Generator().manual_seed(4)
    return torch.randn(2, 263, 1, T, generator=g), torch.tensor([17, 480]), torch.ones(2, T, dtype=torch.bool)


def test_export_cli_writes_a_merged_checkpoint_that_loads_without_peft(saved, monkeypatch):
    out = saved["root"] / "merged" / "kinemic_merged.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "mdm_kinemic.export", "--model_path", str(saved["path"]), "--out", str(out),
         "--clip_weights", "random"],
        cwd=saved["root"], env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.is_file() and not list(out.parent.glob("*.tmp"))

    payload = torch.load(out, weights_only=True)
    assert payload["format"] == "kinemic-standalone-1"
    assert not any("lora_" in k or "base_layer" in k or k.startswith("clip_model.") for k in payload["model"])
    assert payload["model"]["action_embedding.weight"].shape == (2, 64)
    assert payload["args"]["kinemic"]["class_names"] == ["kick", "wave"]
    assert payload["args"]["layers"] == 2

    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import load_exported

    monkeypatch.setitem(sys.modules, "peft", None)  # any import of peft now raises ImportError
    exported, _, args = load_exported(out)
    monkeypatch.undo()
    assert type(exported).__name__ == "KineMICMDM"
    assert not any(type(m).__module__.startswith("peft") for m in exported.modules())
    assert args.model_path == str(out)

    student = saved["model"]
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS, action=torch.tensor([1, 0]))
    with torch.no_grad():
        expected = student.student.denoise(x_t, t, cond, frame_mask).x0
        y = {"text_embed": student.text_features(TEXTS), "action": cond.action, "mask": frame_mask[:, None, None, :]}
        merged = exported(x_t, t, y)
    # merging rounds W + B A once; the adapters' effect is far larger than that
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=0)
    with torch.no_grad(), student.network.disable_adapter():
        base = student.network(x_t, t, dict(y))
    assert (merged - base).abs().max() > 1e-3


def test_export_cli_rejects_bad_paths(tmp_path, capsys):
    from mdm_kinemic.export import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "model%09d.pt" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--model_path", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit):
        main(["--model_path", str(tmp_path), "--out", str(tmp_path)])
