"""Spatial partition adjacency: hand-computed on small trees, PYSKL's truncated centre distances."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.har.graph import hop_distance, spatial_partition
from mdm_kinemic.har.skeleton import HUMANML3D_22, NTU_25, SkeletonLayout


def _layout(parents, center):
    return SkeletonLayout("toy", tuple(parents), center, center, (0, 1), (0, 1))


def test_hop_distance_truncates_beyond_max_hop():
    # chain 0-1-2-3
    d = hop_distance(4, ((1, 0), (2, 1), (3, 2)), max_hop=1)
    assert d[0, 0] == 0 and d[0, 1] == 1 and np.isinf(d[0, 2]) and np.isinf(d[0, 3])
    d2 = hop_distance(4, ((1, 0), (2, 1), (3, 2)), max_hop=3)
    assert d2[0, 3] == 3 and d2[1, 3] == 2


def test_three_joint_chain_centre_in_the_middle_by_hand():
    # 0 - 1 - 2, centre 1. Neighbourhoods (with self): {0,1}, {0,1,2}, {1,2}; column sums 2, 3, 2,
    # so A D^-1 has 1/2 in columns 0 and 2 and 1/3 in column 1.
    a = spatial_partition(_layout((-1, 0, 1), center=1))
    expected_self = np.diag([1 / 2, 1 / 3, 1 / 2])
    # entry [v, w]: v at least as far from the centre as w -> "not nearer"
    expected_far = np.array([[0, 1 / 3, 0], [0, 0, 0], [0, 1 / 3, 0]])
    expected_near = np.array([[0, 0, 0], [1 / 2, 0, 1 / 2], [0, 0, 0]])
    np.testing.assert_allclose(a[0], expected_self, atol=1e-7)
    np.testing.assert_allclose(a[1], expected_far, atol=1e-7)
    np.testing.assert_allclose(a[2], expected_near, atol=1e-7)


def test_joints_beyond_one_hop_count_as_equally_far_from_the_centre():
    # chain 0 - 1 - 2 - 3 with centre 0: joints 2 and 3 are both "inf" from the centre at max_hop 1,
    # so the edge 2-3 lands in the "not nearer" subset in both directions (PYSKL behaviour).
    a = spatial_partition(_layout((-1, 0, 1, 2), center=0))
    assert a[1, 2, 3] > 0 and a[1, 3, 2] > 0
    assert a[2, 2, 3] == 0 and a[2, 3, 2] == 0
    # around the centre the split is directional: 0 is nearer than 1
    assert a[2, 0, 1] > 0 and a[1, 1, 0] > 0


@pytest.mark.parametrize("layout", [HUMANML3D_22, NTU_25])
def test_partition_columns_sum_to_one_and_cover_every_bone(layout):
    a = spatial_partition(layout)
    v = layout.num_joints
    assert a.shape == (3, v, v) and a.dtype == np.float32
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(v), atol=1e-6)
    support = (a.sum(axis=0) > 0)
    for j, p in layout.bones:
        assert support[j, p] and support[p, j]
    assert support.sum() == v + 2 * len(layout.bones)


def test_max_hop_must_be_positive():
    with pytest.raises(ValueError, match="max_hop"):
        spatial_partition(HUMANML3D_22, max_hop=0)
