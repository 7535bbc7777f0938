"""Fixtures of the data-layer tests: the real Bandai Namco sample clips and tiny synthetic motions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.humanml3d import write_clip
from mdm_kinemic.data.labels import ntu_label, write_labels
from mdm_kinemic.data.skeleton import rest_pose


@pytest.fixture(scope="session")
def bandai_dir(shared_data: Path) -> Path:
    """../shared/data/bandai-sample: 13 real BVH clips (CC BY-NC 4.0, Bandai Namco Research)."""
    path = shared_data / "bandai-sample"
    if not any(path.glob("*.bvh")):
        pytest.skip(f"no Bandai Namco BVH sample in {path}")
    return path


@pytest.fixture()
def standing() -> np.ndarray:
    """(30, 22, 3) a person standing still, facing +Z, feet on the floor, at 20 fps."""
    pose = rest_pose()
    pose[:, 1] -= pose[:, 1].min()
    return np.repeat(pose[None], 30, axis=0)


@pytest.fixture()
def glide():
    """Factory: (T, 22, 3) the standing pose translated at a constant velocity (metres per frame)."""

    def make(n_frames: int = 60, velocity=(0.05, 0.0, 0.0)) -> np.ndarray:
        pose = rest_pose()
        pose[:, 1] -= pose[:, 1].min()
        return pose[None] + np.arange(n_frames)[:, None, None] * np.asarray(velocity, dtype=np.float64)

    return make


def _features(n: int = 5) -> np.ndarray:
    return np.zeros((n, 263), dtype=np.float32)


@pytest.fixture()
def generic(tmp_path) -> Path:
    """12 clips of 3 classes (5, 4, 3 clips) with labels.txt / classes.txt."""
    ids = [f"clip{i:02d}" for i in range(12)]
    labels = [0] * 5 + [1] * 4 + [2] * 3
    for i in ids:
        write_clip(tmp_path, i, _features())
    write_labels(tmp_path, ids, labels, ["walk", "run", "bow"])
    return tmp_path


@pytest.fixture()
def ntu_vibe(tmp_path) -> Path:
    """A miniature of the authors' release: NTU names, ntu_classes.txt beside it, S0000 lists."""
    root = tmp_path / "NTU-VIBE"
    names = [f"S0{s}C001P0{p}R001A{a:03d}" for a in (99, 102, 104) for s, p in ((18, 43), (19, 50), (27, 81))]
    for n in names:
        write_clip(root, n, _features())
    (tmp_path / "ntu_classes.txt").write_text("\n".join(f"action {k}" for k in range(120)) + "\n")
    split = root / "splits" / "fewshot" / "S0000"
    (split / "xsub").mkdir(parents=True)
    (split / "meta.json").write_text(json.dumps({"class_list": [98, 101, 103], "seed": 42, "shots": 2}))
    train = [names[0], names[1], names[3], names[4], names[6], names[7]]
    (split / "xsub" / "train.txt").write_text("\n".join(train))
    (split / "xsub" / "train_y.txt").write_text("\n".join(str(ntu_label(n)) for n in train))
    val = [names[2], "S030C001P099R001A099", names[5], names[8]]
    (split / "xsub" / "val.txt").write_text("\n".join(val) + "\n")
    (split / "xsub" / "val_y.txt").write_text("98\n98\n101\n103\n")
    return root
