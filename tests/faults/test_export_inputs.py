"""python -m mdm_kinemic.export with bad input: one message, exit status 2, nothing replaced.

The --out checks run before any model is built, so a stand-in run folder (a model file and an
args.json with a kinemic section) serves them without upstream MDM; the rest use a real tiny
KineMIC checkpoint (upstream tier).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdm_kinemic.export import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_folder(tmp_path: Path) -> dict[str, Path]:
    """SAVE/model000000005.pt + SAVE/args.json naming BASE/model000000000.pt, with known bytes."""
    base = tmp_path / "base" / "model000000000.pt"
    base.parent.mkdir()
    base.write_bytes(b"base weights")
    (base.parent / "args.json").write_text("{}")
    save = tmp_path / "save"
    save.mkdir()
    model = save / "model000000005.pt"
    model.write_bytes(b"adapters")
    (save / "args.json").write_text(json.dumps({"kinemic": {"base_checkpoint": str(base)}}))
    return {"save": save, "model": model, "base": base}


def _export(argv: list[str], capsys) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def test_existing_out_is_refused_without_overwrite(run_folder, tmp_path, capsys):
    out = tmp_path / "earlier.pt"
    out.write_bytes(b"an earlier export")
    status, err = _export(["--model_path", str(run_folder["save"]), "--out", str(out)], capsys)
    assert status == 2
    assert f"--out: {out} exists; pass --overwrite to replace it, or choose another --out" in err
    assert out.read_bytes() == b"an earlier export"


@pytest.mark.parametrize(
    ("target", "extra", "says"),
    [
        ("model", [], "is the KineMIC model file"),
        ("model", ["--overwrite"], "is the KineMIC model file"),
        ("base", ["--overwrite"], "is the base checkpoint"),
        ("save", ["--overwrite", "--format", "peft"], "holds the KineMIC model file"),
        ("parent", ["--overwrite", "--format", "peft"], "holds the KineMIC model file"),
    ],
)
def test_an_input_of_the_export_is_never_replaced_even_with_overwrite(run_folder, tmp_path, capsys, target, extra, says):
    out = tmp_path if target == "parent" else run_folder[target]
    if target == "base":
        out = out.with_suffix(".pt")
    status, err = _export(["--model_path", str(run_folder["save"]), "--out", str(out), *extra], capsys)
    assert status == 2
    assert says in err and "it is never replaced, even with --overwrite. Choose another --out" in err
    assert run_folder["model"].read_bytes() == b"adapters" and run_folder["base"].read_bytes() == b"base weights"


def test_overwrite_replaces_only_an_earlier_peft_export(run_folder, tmp_path, capsys):
    out = tmp_path / "adapters"
    out.mkdir()
    (out / "adapter_config.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    status, err = _export(["--model_path", str(run_folder["save"]), "--out", str(out), "--format", "peft",
                           "--overwrite"], capsys)
    assert status == 2
    assert "holds files a peft export does not write (notes.txt); --overwrite replaces only an earlier peft export" in err
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.upstream
def test_export_needs_no_clip_weights(tmp_path, tiny_base_checkpoint):
    """CLIP is never exported: without --clip_weights, $MDM_KINEMIC_CLIP_WEIGHTS or any cache, the
    export succeeds (it used to end in a CLIPWeightsNotFoundError traceback)."""
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )
    from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
    from mdm_kinemic.mdm.model.lora import LoraSettings

    base = tiny_base_checkpoint(tmp_path / "base", seed=1)
    model = start_from_base(base, KineMICModelSettings(num_actions=2), LoraSettings(rank=2)).model
    path = save_kinemic_checkpoint(tmp_path / "kinemic", 3, model)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MDM_KINEMIC_CLIP_WEIGHTS", "HF_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "merged.pt"
    result = subprocess.run([sys.executable, "-m", "mdm_kinemic.export", "--model_path", str(path), "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.is_file() and "Traceback" not in result.stderr and "RANDOM weights (--clip_weights" not in result.stderr


@pytest.mark.upstream
def test_export_user_errors_are_one_message_with_exit_status_2(tmp_path, tiny_base_checkpoint, capsys):
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )
    from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
    from mdm_kinemic.mdm.model.lora import LoraSettings

    base = tiny_base_checkpoint(tmp_path / "base", seed=1)
    model = start_from_base(base, KineMICModelSettings(num_actions=2), LoraSettings(rank=2)).model
    path = save_kinemic_checkpoint(tmp_path / "kinemic", 3, model)
    not_clip = tmp_path / "not_clip.pt"
    not_clip.write_bytes(b"not a CLIP file")
    other_base = tmp_path / "other" / "model000000000.pt"
    other_base.parent.mkdir()
    other_base.write_bytes(base.read_bytes() + b"!")
    cases = [
        (["--clip_weights", str(not_clip)], "not_clip.pt"),
        (["--base_checkpoint", str(tmp_path / "moved.pt")], "is not at"),
        (["--base_checkpoint", str(other_base)], "is not the base checkpoint"),
        (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "--device"),
    ]
    for i, (flags, says) in enumerate(cases):
        status, err = _export(["--model_path", str(path), "--out", str(tmp_path / f"out{i}.pt"), *flags], capsys)
        assert status == 2 and says in err, (flags, err)
        assert err.count("mdm_kinemic.export: error:") == 1, err
    path.write_bytes(path.read_bytes()[:100])  # truncated
    status, err = _export(["--model_path", str(path), "--out", str(tmp_path / "out.pt")], capsys)
    assert status == 2 and "is unreadable" in err and "probably truncated" in err
