"""Resampling joint trajectories to HumanML3D's 20 frames per second."""

from __future__ import annotations

import math

import numpy as np

#: Frame rate of HumanML3D and of every motion MDM sees.
HML_FPS = 20.0


def resample(joints: np.ndarray, fps_in: float, fps_out: float = HML_FPS) -> np.ndarray:
    """Linearly interpolate joint positions from ``fps_in`` to ``fps_out`` frames per second.

    Output frame k is the pose at time k / fps_out, for every such time within the clip
    (the first frame is kept; the clip is never extended past its last frame). When fps_in is an
    integer multiple of fps_out this picks every (fps_in / fps_out)-th frame, which is how
    HumanML3D down-samples AMASS.

    Args:
        joints: (T, J, 3) positions (any unit), frames at ``fps_in``.
        fps_in: frame rate of the input, > 0.
        fps_out: frame rate of the output, > 0 (default 20, HumanML3D's).

    Returns:
        (T', J, 3) float64 with T' = floor((T - 1) * fps_out / fps_in) + 1.

    Raises:
        ValueError: if a frame rate is not positive and finite or the clip has no frame.
    """
    for name, value in (("fps_in", fps_in), ("fps_out", fps_out)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"resample: {name} must be a positive frame rate, got {value}")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[0] == 0:
        raise ValueError("resample: the clip has no frame")
    if math.isclose(fps_in, fps_out, rel_tol=1e-9):
        return joints.copy()
    n_out = math.floor((joints.shape[0] - 1) * fps_out / fps_in + 1e-6) + 1
    src = np.arange(n_out) * (fps_in / fps_out)
    lo = np.minimum(np.floor(src + 1e-9).astype(np.int64), joints.shape[0] - 1)
    hi = np.minimum(lo + 1, joints.shape[0] - 1)
    frac = np.clip(src - lo, 0.0, 1.0)[:, None, None]
    return (1.0 - frac) * joints[lo] + frac * joints[hi]
