"""Skeleton layouts: the SMPL tree given in the issue, NTU's Kinect tree, lookup by joint count."""

from __future__ import annotations

import pytest

from mdm_kinemic.har.skeleton import (
    HUMANML3D_22,
    NTU_25,
    SkeletonLayout,
    layout_for_joints,
)


def test_humanml3d_bones_are_the_smpl_kinematic_tree():
    parents = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
    assert HUMANML3D_22.num_joints == 22
    assert set(HUMANML3D_22.bones) == {(j, p) for j, p in enumerate(parents) if p >= 0}


def test_ntu_bones_are_the_kinect_v2_tree():
    # NTU RGB+D's 1-based joint pairs (spine base-spine mid, spine mid-spine shoulder, ...).
    pairs_1based = [
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
        (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
        (22, 8), (23, 8), (24, 12), (25, 12),
    ]
    expected = {frozenset((a - 1, b - 1)) for a, b in pairs_1based}
    assert {frozenset(b) for b in NTU_25.bones} == expected
    assert NTU_25.center == 20  # spine shoulder


@pytest.mark.parametrize("joints, layout", [(22, HUMANML3D_22), (25, NTU_25)])
def test_layout_for_joints(joints, layout):
    assert layout_for_joints(joints) is layout


def test_layout_for_unknown_joint_count_lists_accepted_counts():
    with pytest.raises(ValueError, match=r"24 joints.*22 \(humanml3d22\), 25 \(ntu25\)"):
        layout_for_joints(24)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"parents": (-1, 0, -1)}, "exactly one root"),
        ({"parents": (-1, 5)}, "parent of joint 1"),
        ({"center": 7}, "center"),
        ({"norm_xaxis": (0, 9)}, "norm_xaxis"),
    ],
)
def test_layout_validation_names_the_field(kwargs, message):
    base = {"name": "toy", "parents": (-1, 0, 1), "center": 0, "norm_center": 0, "norm_zaxis": (0, 1), "norm_xaxis": (1, 2)}
    with pytest.raises(ValueError, match=message):
        SkeletonLayout(**{**base, **kwargs})
