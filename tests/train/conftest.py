"""Toy-size inputs of a train_fewshot run: target and source datasets in HumanML3D layout, and
(for the upstream tier) a tiny random-weight upstream checkpoint made by random_checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["side kick", "wave"]
SOURCE_CAPTIONS = [
    ["a person kicks to the side with the right leg"],
    ["a person waves with the left hand", ("a person raises a hand", 1.0, 3.5)],
    ["a person walks forward"],
    ["a man kicks high", "someone performs a kick"],
    ["a person sits down"],
    ["a person waves both arms above the head"],
]


def _motion(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray, frames: int) -> np.ndarray:
    return (mean + 0.5 * std * rng.standard_normal((frames, mean.shape[0]))).astype(np.float32)


def make_target(root: Path, mean: np.ndarray, std: np.ndarray, clips_per_class: int = 3, shots: int = 2) -> Path:
    """Labelled target clips (labels.txt/classes.txt) with a few-shot split S0000 of ``shots`` per class."""
    from mdm_kinemic.data.fewshot import FewShotSettings, sample_fewshot, write_fewshot
    from mdm_kinemic.data.humanml3d import write_clip
    from mdm_kinemic.data.labels import load_labelled, write_labels

    rng = np.random.default_rng(0)
    ids, labels = [], []
    for c, name in enumerate(CLASSES):
        for k in range(clips_per_class):
            clip_id, frames = f"T{c}{k}", int(rng.integers(20, 40))
            write_clip(root, clip_id, _motion(rng, mean, std, frames), np.zeros((frames, 22, 3), np.float32),
                       [f"a person does a {name}"])
            ids.append(clip_id)
            labels.append(c)
    write_labels(root, ids, labels, CLASSES)
    write_fewshot(root, sample_fewshot(load_labelled(root), FewShotSettings(shots=shots, seed=0)), "S0000")
    return root


def make_source(root: Path, mean: np.ndarray, std: np.ndarray) -> Path:
    """Six captioned source clips of 60-120 frames (one caption with a #start#end sub-span)."""
    from mdm_kinemic.data.humanml3d import write_clip

    rng = np.random.default_rng(1)
    for i, captions in enumerate(SOURCE_CAPTIONS):
        frames = int(rng.integers(60, 120))
        write_clip(root, f"{i:06d}", _motion(rng, mean, std, frames), np.zeros((frames, 22, 3), np.float32), captions)
    return root


@pytest.fixture(scope="session")
def hml_stats() -> Path:
    """The folder of HumanML3D's Mean.npy/Std.npy (shipped with the package)."""
    return HUMANML3D_STATS_DIR


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, hml_stats: Path) -> dict[str, Path]:
    """{'target': labelled 2-class target set with split S0000 (2 shots), 'source': 6-clip corpus}."""
    mean, std = np.load(hml_stats / "Mean.npy"), np.load(hml_stats / "Std.npy")
    root = tmp_path_factory.mktemp("tiny_data")
    return {"target": make_target(root / "target", mean, std), "source": make_source(root / "source", mean, std)}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight upstream checkpoint like humanml_trans_enc_512 but 2 layers of width 64."""
    out = tmp_path_factory.mktemp("tiny_ckpt") / "tiny"
    subprocess.run(
        [sys.executable, "-m", "mdm_kinemic.mdm.checkpoints.random_checkpoint", "--like", "humanml_trans_enc_512",
         "--out", str(out), "--layers", "2", "--latent_dim", "64", "--clip_weights", "random"],
        check=True, cwd=REPO, env=subprocess_env(), capture_output=True, timeout=600,
    )
    return out


def subprocess_env() -> dict[str, str]:
    """The environment for CLI subprocesses: this checkout importable, Hugging Face offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["HF_HUB_OFFLINE"] = "1"
    return env


class CLI:
    """``python -m MODULE ARGS`` from the checkout root, in a subprocess."""

    @staticmethod
    def run(module: str, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
        """Run to completion; the CompletedProcess with text stdout/stderr."""
        return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=subprocess_env(),
                              capture_output=True, text=True, timeout=timeout)

    @staticmethod
    def start(module: str, args: list[str], log: Path) -> subprocess.Popen:
        """Start without waiting; stdout and stderr go to ``log``."""
        with open(log, "wb") as handle:
            return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=subprocess_env(),
                                    stdout=handle, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def cli() -> CLI:
    """Runs the project's CLIs in subprocesses (see :class:`CLI`)."""
    return CLI()
