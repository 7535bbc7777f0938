"""Synthetic skeleton clips for the HAR tests, and one torch thread per test.

The ST-GCN tests train tiny models whose cost is per-operation overhead; on a shared machine more
intra-op threads only contend, so each test here runs with one thread and restores the setting.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.skeleton import SMPL22_PARENTS

# Offsets (metres) of each SMPL joint from its parent in a HumanML3D-like first frame: Y up,
# facing +z, the body's left on +x.
_OFFSETS = {
    1: (0.06, -0.09, 0.0), 2: (-0.06, -0.09, 0.0), 3: (0.0, 0.11, -0.02), 4: (0.04, -0.38, 0.0),
    5: (-0.04, -0.38, 0.0), 6: (0.0, 0.13, 0.0), 7: (-0.01, -0.40, -0.04), 8: (0.01, -0.40, -0.04),
    9: (0.0, 0.05, 0.02), 10: (0.02, -0.06, 0.12), 11: (-0.02, -0.06, 0.12), 12: (0.0, 0.21, -0.03),
    13: (0.08, 0.11, -0.02), 14: (-0.08, 0.11, -0.02), 15: (0.0, 0.09, 0.05), 16: (0.12, 0.04, -0.01),
    17: (-0.12, 0.04, -0.01), 18: (0.26, 0.0, -0.02), 19: (-0.26, 0.0, -0.02), 20: (0.25, 0.01, 0.0),
    21: (-0.25, 0.01, 0.0),
}


def rest_pose() -> np.ndarray:
    """Joint positions [22, 3] of a standing SMPL skeleton, pelvis 0.9 m above the floor."""
    joints = np.zeros((22, 3))
    joints[0] = (0.0, 0.9, 0.0)
    for j in range(1, 22):
        joints[j] = joints[SMPL22_PARENTS[j]] + _OFFSETS[j]
    return joints


CLASS_NAMES = ("stand", "bounce", "sway")


def body_motion_clips(
    per_class: int, frames: int, seed: int, source: str = "synthetic", amplitude: float = 0.5, noise: float = 0.01
) -> SkeletonClips:
    """A trivially separable 3-class set of [frames, 22, 3] clips at 20 fps.

    stand: the rest pose; bounce: the whole body oscillating vertically; sway: oscillating
    sideways (amplitude metres, 2 Hz, phase 0, so that a clip differs from its class only by
    noise); every joint gets Gaussian noise (std ``noise`` m).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 20.0
    clips, labels, ids = [], [], []
    for label in range(3):
        for i in range(per_class):
            joints = np.repeat(rest_pose()[None], frames, axis=0) + rng.normal(0.0, noise, (frames, 22, 3))
            wave = amplitude * np.sin(2 * np.pi * 2.0 * t)
            if label == 1:
                joints[:, :, 1] += wave[:, None]
            elif label == 2:
                joints[:, :, 0] += wave[:, None]
            clips.append(joints.astype(np.float32))
            labels.append(label)
            ids.append(f"{source}_{CLASS_NAMES[label]}_{i:03d}")
    return SkeletonClips(clips, np.array(labels), CLASS_NAMES, ids, source)


@pytest.fixture
def make_clips() -> Callable[..., SkeletonClips]:
    """Factory: make_clips(per_class, frames, seed, source=..., amplitude=..., noise=...) -> SkeletonClips."""
    return body_motion_clips


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_humanml3d_folder(root: Path, clips: SkeletonClips) -> Path:
    """Write clips as a HumanML3D-layout folder: new_joints/ID.npy, labels.txt, classes.txt."""
    (root / "new_joints").mkdir(parents=True, exist_ok=True)
    for clip_id, joints in zip(clips.ids, clips.joints):
        np.save(root / "new_joints" / f"{clip_id}.npy", joints)
    (root / "labels.txt").write_text("".join(f"{i}\t{y}\n" for i, y in zip(clips.ids, clips.labels)))
    (root / "classes.txt").write_text("".join(f"{name}\n" for name in clips.class_names))
    return root


@pytest.fixture
def write_folder() -> Callable[[Path, SkeletonClips], Path]:
    """Factory: write_folder(root, clips) writes a HumanML3D-layout labelled folder, returns root."""
    return _write_humanml3d_folder
