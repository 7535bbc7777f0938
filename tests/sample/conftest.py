"""Toy-size KineMIC checkpoints for the sampling tests, and a helper to run our CLIs.

The student is made by the real code paths: upstream's own MDM with random weights
(mdm.random_checkpoint, 2 layers, latent 64, 10 diffusion steps so that sampling is quick), wrapped
into a KineMIC checkpoint by mdm.kinemic_checkpoint with LoRA adapters and an action embedding
made non-trivial, so that the student differs from its base and its actions differ from each other.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("run on the spot", "side kick", "stretch oneself")
DIFFUSION_STEPS = 10
TARGET_LENGTHS = ((20, 24), (16, 30), (28, 28))


def _run_cli(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` with this checkout importable and CLIP weights random."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
                "MDM_KINEMIC_CLIP_WEIGHTS": "random", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False,
                          timeout=timeout)


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(args, cwd, env=None)``: a CompletedProcess of ``python ARGS`` (see _run_cli)."""
    return _run_cli


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, tiny_base_checkpoint):
    """{"root", "base" (upstream model file), "kinemic" (KineMIC model file)}: a KineMIC folder whose
    args.json names CLASSES, with HumanML3D's Mean.npy/Std.npy beside its model file."""
    import torch

    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )
    from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
    from mdm_kinemic.mdm.model.lora import LoraSettings

    root = tmp_path_factory.mktemp("student")
    base = tiny_base_checkpoint(root / "base", seed=3)
    args_path = base.parent / "args.json"
    args = json.loads(args_path.read_text())
    args["diffusion_steps"] = DIFFUSION_STEPS
    args_path.write_text(json.dumps(args, indent=4, sort_keys=True))
    loaded = start_from_base(base, KineMICModelSettings(num_actions=3, class_names=CLASSES), LoraSettings(rank=4))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in loaded.model.network.named_parameters():
            if "lora_B" in name:
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
        loaded.model.mdm.action_embedding.weight.copy_(torch.randn(3, 64, generator=generator))
    kinemic = save_kinemic_checkpoint(root / "kinemic", 5, loaded.model)
    for name in ("Mean.npy", "Std.npy"):
        shutil.copy(HUMANML3D_STATS_DIR / name, kinemic.parent / name)
    return {"root": root, "base": base, "kinemic": kinemic, "classes": CLASSES}


@pytest.fixture(scope="session")
def tiny_targets(tmp_path_factory):
    """A labelled few-shot set in HumanML3D layout: class c of CLASSES has two clips of lengths
    TARGET_LENGTHS[c] = (20, 24), (16, 30), (28, 28) (features drawn around HumanML3D's Mean/Std)."""
    from mdm_kinemic.data.humanml3d import write_clip, write_mean_std
    from mdm_kinemic.data.labels import write_labels

    root = tmp_path_factory.mktemp("targets")
    mean = np.load(HUMANML3D_STATS_DIR / "Mean.npy")
    std = np.load(HUMANML3D_STATS_DIR / "Std.npy")
    rng = np.random.default_rng(0)
    ids, labels = [], []
    for c, lengths in enumerate(TARGET_LENGTHS):
        for k, length in enumerate(lengths):
            clip_id = f"real{c}_{k}"
            write_clip(root, clip_id, (mean + 0.1 * std * rng.standard_normal((length, 263))).astype(np.float32),
                       captions=[f"a person does {CLASSES[c]}."])
            ids.append(clip_id)
            labels.append(c)
    write_labels(root, ids, labels, list(CLASSES))
    write_mean_std(root, mean, std)
    return root


PROMPT = "a person is jumping"


def dual_args(folder: Path) -> tuple[str, ...]:
    """Two actions (class 2, then class 0; written to folder/actions.txt) composed with PROMPT."""
    actions = folder / "actions.txt"
    actions.write_text("Stretch Oneself\nrun on the spot\n")
    return ("--action_file", str(actions), "--text_prompt", PROMPT)


def generate_args(model_path: Path, out: Path, *extra: str) -> list[str]:
    """sample/generate.py's arguments for a quick --kinemic run of the toy student (1 s, CPU)."""
    return ["--kinemic", "--model_path", str(model_path), "--num_repetitions", "1", "--motion_length", "1",
            "--device", "-1", "--output_dir", str(out), *extra]


@pytest.fixture(scope="session")
def generate_cli():
    """The helpers above for tests: ``.args(model_path, out, *extra)`` and ``.dual(folder)``."""
    from types import SimpleNamespace

    return SimpleNamespace(args=generate_args, dual=dual_args, prompt=PROMPT)


@pytest.fixture(scope="session")
def runner_generate(run_cli, tiny_student, tmp_path_factory):
    """``runner_generate(*extra) -> (out folder, results.npy dict)``: upstream's unmodified generate.py
    through python -m mdm_kinemic.run, on the toy student (its folder given as --model_path)."""
    def generate(*extra: str):
        out = tmp_path_factory.mktemp("generate") / "out"
        result = run_cli(["-m", "mdm_kinemic.run", "sample.generate",
                          *generate_args(tiny_student["kinemic"].parent, out, *extra)], cwd=out.parent)
        assert result.returncode == 0, result.stderr[-3000:]
        return out, np.load(out / "results.npy", allow_pickle=True).item()

    return generate


@pytest.fixture(scope="session")
def dual_run(runner_generate, tmp_path_factory):
    """The runner route: classes 2 and 0, each composed with PROMPT (batch of 2, default seed)."""
    return runner_generate(*dual_args(tmp_path_factory.mktemp("dual")))


@pytest.fixture(scope="session")
def loaded_student(tiny_student):
    """mdm.student.load_student of the toy student (LoRA merged), in this process."""
    from mdm_kinemic.mdm.sampling.student import load_student

    return load_student(tiny_student["kinemic"], clip_weights="random")
