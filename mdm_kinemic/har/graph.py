"""Adjacency of ST-GCN's spatial partition strategy (Yan et al. 2018, Sec. 3.6), as PYSKL builds it.

PYSKL's ``Graph(mode='stgcn_spatial')`` (pyskl/utils/graph.py) is the behaviour reproduced here:
joints within ``max_hop`` hops are neighbours, the adjacency is column-normalised (A D^-1), and the
neighbours of each joint split into three subsets: the joint itself, neighbours at least as far
from the graph centre, and neighbours nearer to it. Distances to the centre come from the hop
matrix truncated at ``max_hop`` (as in PYSKL and the original ST-GCN code), so every joint beyond
``max_hop`` hops of the centre counts as equally far; the "nearer" subset therefore only holds
edges around the centre. Keeping that quirk keeps our numbers comparable to PYSKL's.
"""

from __future__ import annotations

import numpy as np

from mdm_kinemic.har.skeleton import SkeletonLayout


def hop_distance(num_joints: int, bones: tuple[tuple[int, int], ...], max_hop: int = 1) -> np.ndarray:
    """Hop distance between joints over undirected bones, ``inf`` beyond ``max_hop``.

    Returns:
        float64 array [V, V]; 0 on the diagonal.
    """
    reach = np.eye(num_joints)
    for i, j in bones:
        reach[i, j] = reach[j, i] = 1
    dist = np.full((num_joints, num_joints), np.inf)
    power = np.eye(num_joints)
    for d in range(max_hop + 1):
        dist[(power > 0) & np.isinf(dist)] = d
        power = power @ reach
    return dist


def spatial_partition(layout: SkeletonLayout, max_hop: int = 1) -> np.ndarray:
    """Spatial-partition adjacency of ``layout``.

    Args:
        layout: skeleton (bones and graph centre).
        max_hop: neighbourhood radius in hops (1 in ST-GCN).

    Returns:
        float32 array [2 * max_hop + 1, V, V]: subset 0 the joint itself, then per hop the
        subset of neighbours v at least as far from the centre as w, then those nearer. Entry
        [k, v, w] weights input joint v in output joint w; each column w sums to 1 over (k, v).
    """
    if max_hop < 1:
        raise ValueError(f"max_hop must be >= 1, got {max_hop}")
    v = layout.num_joints
    hops = hop_distance(v, layout.bones, max_hop)
    adjacency = (hops <= max_hop).astype(np.float64)
    normalised = adjacency / adjacency.sum(axis=0, keepdims=True)
    to_center = hops[:, layout.center]
    not_nearer = to_center[:, None] >= to_center[None, :]
    subsets = []
    for hop in range(max_hop + 1):
        at_hop = hops == hop
        subsets.append(np.where(at_hop & not_nearer, normalised, 0.0))
        if hop > 0:
            subsets.append(np.where(at_hop & ~not_nearer, normalised, 0.0))
    return np.stack(subsets).astype(np.float32)
