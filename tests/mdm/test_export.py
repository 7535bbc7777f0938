"""python -m mdm_kinemic.export: a standalone student with LoRA merged, loadable without peft (torch or
safetensors), or peft's own adapter folder, loadable with peft's PeftModel.from_pretrained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdm_kinemic.core.denoiser import Condition
from mdm_kinemic.core.mic import MICModule
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings

pytestmark = pytest.mark.upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a person performs a side kick.", "a person waves with the right hand."]
T = 9


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_base_checkpoint):
    """A KineMIC checkpoint folder with non-zero adapters and a MIC module, and the student that wrote it."""
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
    mic = MICModule(64, hidden_dim=16, output_dim=8)
    path = save_kinemic_checkpoint(root / "kinemic", 5000, model, extra_modules={"mic": mic})
    return {"model": model, "path": path, "root": root, "mic": mic}


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


def test_merged_safetensors_export_loads_without_peft(saved, monkeypatch):
    from mdm_kinemic.export import main
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import load_exported

    out = saved["root"] / "merged_st" / "kinemic_merged.safetensors"
    assert main(["--model_path", str(saved["path"]), "--out", str(out), "--format", "merged_safetensors",
                 "--clip_weights", "random", "--device", "-1"]) == 0
    monkeypatch.setitem(sys.modules, "peft", None)  # any import of peft now raises ImportError
    exported, _, args = load_exported(out)
    monkeypatch.undo()
    assert args.kinemic["class_names"] == ["kick", "wave"] and args.model_path == str(out)

    student = saved["model"]
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS, action=torch.tensor([1, 0]))
    with torch.no_grad():
        expected = student.student.denoise(x_t, t, cond, frame_mask).x0
        y = {"text_embed": student.text_features(TEXTS), "action": cond.action, "mask": frame_mask[:, None, None, :]}
        torch.testing.assert_close(exported(x_t, t, y), expected, atol=1e-5, rtol=0)


def test_peft_export_loads_onto_the_base_mdm_with_peft_from_pretrained(saved):
    import json

    from peft import PeftModel
    from safetensors.torch import load_file

    from mdm_kinemic.export import main
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import load_upstream_checkpoint
    from mdm_kinemic.mdm.model.kinemic_mdm import kinemic_mdm_class

    out = saved["root"] / "peft"
    assert main(["--model_path", str(saved["path"]), "--out", str(out), "--format", "peft",
                 "--clip_weights", "random", "--device", "0" if torch.cuda.is_available() else "-1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "README.md", "kinemic_modules.safetensors",
         "kinemic_modules.json", "args.json"])
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 16, 32.0)
    modules = load_file(str(out / "kinemic_modules.safetensors"))
    shapes = json.loads((out / "kinemic_modules.json").read_text())
    assert shapes["format"] == "kinemic-peft-1" and shapes["step"] == 5000
    assert shapes["tensors"] == {k: list(v.shape) for k, v in modules.items()}
    assert shapes["tensors"]["action_embedding.weight"] == [2, 64]

    # the recipe of docs/upstream.md: upstream MDM (as KineMICMDM) from the base checkpoint, then peft
    args = json.loads((out / "args.json").read_text())
    base = load_upstream_checkpoint(args["kinemic"]["base_checkpoint"], model_cls=kinemic_mdm_class(),
                                    num_actions=len(args["kinemic"]["class_names"]),
                                    allow_missing=("action_embedding.",)).model
    network = PeftModel.from_pretrained(base, str(out)).eval()
    with torch.no_grad():
        network.get_base_model().action_embedding.weight.copy_(modules["action_embedding.weight"])
    mic = MICModule(64, hidden_dim=16, output_dim=8)
    mic.load_state_dict({k.removeprefix("mic."): v for k, v in modules.items() if k.startswith("mic.")})
    for key, value in saved["mic"].state_dict().items():
        assert torch.equal(mic.state_dict()[key], value), key

    student = saved["model"]
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS, action=torch.tensor([1, 0]))
    trainable = [p for p in student.parameters() if p.requires_grad]
    try:
        # with trainable adapters torch's TransformerEncoder leaves its fused inference path, whose
        # rounding differs; frozen, the student runs the same kernels as the loaded network
        for p in trainable:
            p.requires_grad_(False)
        with torch.no_grad():
            expected = student.student.denoise(x_t, t, cond, frame_mask).x0
            y = {"text_embed": student.text_features(TEXTS), "action": cond.action, "mask": frame_mask[:, None, None, :]}
            loaded = network(x_t, t, dict(y))
            with network.disable_adapter():
                base_out = network(x_t, t, dict(y))
    finally:
        for p in trainable:
            p.requires_grad_(True)
    assert torch.equal(loaded, expected)
    assert (loaded - base_out).abs().max() > 1e-3

    # an earlier peft export is replaced with --overwrite, with the same files
    before = (out / "adapter_model.safetensors").read_bytes()
    assert main(["--model_path", str(saved["path"]), "--out", str(out), "--format", "peft", "--overwrite",
                 "--clip_weights", "random"]) == 0
    assert (out / "adapter_model.safetensors").read_bytes() == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".peft.")]
