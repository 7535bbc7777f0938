"""Skeleton constants, quaternions and resampling against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mdm_kinemic.data.quaternion import (
    qbetween,
    qinv,
    qmul,
    qrot,
    quat_to_cont6d,
    quat_to_matrix,
)
from mdm_kinemic.data.resample import resample
from mdm_kinemic.data.skeleton import (
    REFERENCE_BONE_LENGTHS,
    SMPL22_JOINT_NAMES,
    SMPL22_PARENTS,
    bone_lengths,
    rest_pose,
)


def test_reference_skeleton_matches_the_shared_file(shared_data):
    ref = json.loads((shared_data / "humanml3d" / "reference_bone_lengths.json").read_text())
    assert tuple(ref["joints"]) == SMPL22_JOINT_NAMES and tuple(ref["parents"]) == SMPL22_PARENTS
    np.testing.assert_array_equal(REFERENCE_BONE_LENGTHS, ref["bone_length_m"])
    np.testing.assert_allclose(bone_lengths(rest_pose()), REFERENCE_BONE_LENGTHS, atol=1e-12)


def test_quaternions_agree_with_scipy():
    rng = np.random.default_rng(0)
    rots = Rotation.random(5, random_state=1)
    q = rots.as_quat()[:, [3, 0, 1, 2]]  # scipy is (x, y, z, w)
    v = rng.normal(size=(5, 3))
    np.testing.assert_allclose(qrot(q, v), rots.apply(v), atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(q), rots.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(qrot(qmul(q, qinv(q)), v), v, atol=1e-12)
    np.testing.assert_allclose(quat_to_cont6d(q), np.concatenate([rots.as_matrix()[..., 0], rots.as_matrix()[..., 1]], -1), atol=1e-12)


@pytest.mark.parametrize("v", [[0.0, 0.0, 1.0], [1.0, 2.0, -0.5], [0.0, -1.0, 0.0], [0.0, 1.0, 1e-12]])
def test_qbetween_takes_u_onto_v_even_when_opposite(v):
    u = np.array([0.0, -1.0, 0.0])
    v = np.array(v)
    q = qbetween(u, v)
    np.testing.assert_allclose(np.linalg.norm(q), 1.0, atol=1e-12)
    np.testing.assert_allclose(qrot(q, u), v / np.linalg.norm(v), atol=1e-9)


def test_resample_integer_ratio_picks_frames():
    clip = np.random.default_rng(0).normal(size=(61, 22, 3))
    np.testing.assert_array_equal(resample(clip, 60.0), clip[::3])


def test_resample_30_to_20_interpolates_linearly():
    t = np.arange(31) / 30.0
    clip = np.stack([t, t**2, np.zeros_like(t)], -1)[:, None, :]
    out = resample(clip, 30.0)
    assert out.shape == (21, 1, 3)
    t20 = np.arange(21) / 20.0
    np.testing.assert_allclose(out[:, 0, 0], t20, atol=1e-12)  # linear: exact
    # t^2 sampled at 30 fps: even 20-fps frames fall on samples (exact), odd ones halfway
    # between two, where the chord of t^2 overshoots by exactly h^2 / 4, h = 1/30 s
    np.testing.assert_allclose(out[::2, 0, 1], t20[::2] ** 2, atol=1e-12)
    np.testing.assert_allclose(out[1::2, 0, 1] - t20[1::2] ** 2, (1 / 30) ** 2 / 4, atol=1e-12)


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError, match="fps_in"):
        resample(np.zeros((3, 22, 3)), 0.0)
    with pytest.raises(ValueError, match="no frame"):
        resample(np.zeros((0, 22, 3)), 30.0)
