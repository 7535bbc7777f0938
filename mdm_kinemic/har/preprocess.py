"""PYSKL-style skeleton preprocessing: pre-normalisation, uniform frame sampling, (N, M, T, V, C) batches.

Behaviour follows PYSKL's pipeline for 3D joints (pyskl/datasets/pipelines/pose_related.py
PreNormalize3D, sampling.py UniformSampleFrames, formatting.py FormatGCNInput); written anew.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mdm_kinemic.har.skeleton import SkeletonLayout

#: Pre-normalisation modes: joints named for the layout, PYSKL's NTU indices applied to any
#: layout (what the authors' PYSKL runs on SMPL joints did), or none.
PRENORM_MODES = ("layout", "ntu_indices", "none")

#: PYSKL's seed for test-time sampling: every clip's test frames are drawn with this seed.
TEST_SAMPLING_SEED = 255


def _rotation_onto(vector: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] turning ``vector`` onto the direction of ``target``.

    Identity when either is (near) zero or they are (anti)parallel, as in PYSKL, whose axis
    (vector x target) vanishes there.
    """
    if np.abs(vector).sum() < 1e-6 or np.abs(target).sum() < 1e-6:
        return np.eye(3)
    u = vector / np.linalg.norm(vector)
    w = target / np.linalg.norm(target)
    axis = np.cross(u, w)
    angle = np.arccos(np.clip(np.dot(u, w), -1.0, 1.0))
    if np.abs(axis).sum() < 1e-6 or abs(angle) < 1e-6:
        return np.eye(3)
    k = axis / np.linalg.norm(axis)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * (cross @ cross)


def _prenorm_joints(layout: SkeletonLayout, num_joints: int, mode: str) -> tuple[int, tuple[int, int], tuple[int, int]]:
    if mode == "layout":
        return layout.norm_center, layout.norm_zaxis, layout.norm_xaxis
    # PYSKL PreNormalize3D defaults: centre = joint 1 for 25 joints, else the last joint.
    return (1 if num_joints == 25 else num_joints - 1), (0, 1), (8, 4)


def pre_normalize(joints: np.ndarray, layout: SkeletonLayout, mode: str = "layout") -> np.ndarray:
    """Centre and align a clip on its first frame (PYSKL PreNormalize3D).

    Frames whose joints are all zero (absent person) are dropped; the centre joint of the first
    frame becomes the origin (joints exactly at zero stay zero); the whole clip is rotated so that
    the first frame's z-axis joints (bottom -> top) point along +z, then rotated again so that its
    x-axis joints (right - left) point along +x.

    Args:
        joints: float array [T, V, 3] or [M, T, V, 3], metres.
        layout: the skeleton whose ``norm_*`` joints are used when ``mode == "layout"``.
        mode: one of PRENORM_MODES.

    Returns:
        float32 array [M, T', V, 3] (M = 1 for a [T, V, 3] input), T' <= T.

    Raises:
        ValueError: unknown mode, or the joint count does not match ``layout``.
    """
    if mode not in PRENORM_MODES:
        raise ValueError(f"pre-normalisation mode must be one of {PRENORM_MODES}, got {mode!r}")
    skeleton = np.asarray(joints, dtype=np.float64)
    if skeleton.ndim == 3:
        skeleton = skeleton[None]
    if skeleton.ndim != 4 or skeleton.shape[-1] != 3:
        raise ValueError(f"joints must be [T, V, 3] or [M, T, V, 3], got shape {skeleton.shape}")
    if skeleton.shape[2] != layout.num_joints:
        raise ValueError(f"clip has {skeleton.shape[2]} joints but the {layout.name} layout has {layout.num_joints}")
    if mode == "none" or not skeleton.any():
        return skeleton.astype(np.float32)
    present = ~np.all(np.isclose(skeleton[0], 0.0), axis=(1, 2))
    skeleton = skeleton[:, present]
    center, zaxis, xaxis = _prenorm_joints(layout, skeleton.shape[2], mode)
    valid = (skeleton != 0).any(axis=-1, keepdims=True)
    skeleton = (skeleton - skeleton[0, 0, center]) * valid
    spine = skeleton[0, 0, zaxis[1]] - skeleton[0, 0, zaxis[0]]
    skeleton = skeleton @ _rotation_onto(spine, np.array([0.0, 0.0, 1.0])).T
    shoulders = skeleton[0, 0, xaxis[0]] - skeleton[0, 0, xaxis[1]]
    skeleton = skeleton @ _rotation_onto(shoulders, np.array([1.0, 0.0, 0.0])).T
    return skeleton.astype(np.float32)


def uniform_sample_indices(num_frames: int, clip_len: int, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of one uniformly sampled clip (PYSKL UniformSampleFrames, p_interval = 1).

    - num_frames < clip_len: a random start, then consecutive frames looping over the clip;
    - clip_len <= num_frames < 2 * clip_len: all frames in order with num_frames - clip_len
      randomly chosen ones skipped (each skip shifts the rest by one);
    - otherwise: clip_len equal segments, one random frame from each.

    Args:
        num_frames: frames in the clip (>= 1).
        clip_len: frames to return.
        rng: random source (training: the run's generator; test: seeded with TEST_SAMPLING_SEED).

    Returns:
        int64 array [clip_len] of indices in [0, num_frames).
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"num_frames and clip_len must be >= 1, got {num_frames} and {clip_len}")
    if num_frames < clip_len:
        start = int(rng.integers(0, num_frames))
        inds = np.arange(start, start + clip_len)
    elif num_frames < 2 * clip_len:
        skips = np.zeros(clip_len + 1, dtype=np.int64)
        skips[rng.choice(clip_len + 1, num_frames - clip_len, replace=False)] = 1
        inds = np.arange(clip_len) + np.cumsum(skips)[:-1]
    else:
        bounds = np.arange(clip_len + 1) * num_frames // clip_len
        inds = bounds[:-1] + rng.integers(0, np.diff(bounds))
    return np.mod(inds, num_frames).astype(np.int64)


def eval_sample_indices(num_frames: int, clip_len: int, num_clips: int = 1) -> np.ndarray:
    """Deterministic test-time sampling: ``num_clips`` uniform clips drawn with PYSKL's fixed seed.

    Returns:
        int64 array [num_clips, clip_len]. With num_clips > 1 and a clip shorter than clip_len,
        clip i starts at frame i * num_frames // num_clips (PYSKL's test start offsets).
    """
    rng = np.random.default_rng(TEST_SAMPLING_SEED)
    clips = []
    for i in range(num_clips):
        if num_frames < clip_len:
            start = i if num_frames < num_clips else i * num_frames // num_clips
            clips.append(np.mod(np.arange(start, start + clip_len), num_frames))
        else:
            clips.append(uniform_sample_indices(num_frames, clip_len, rng))
    return np.stack(clips).astype(np.int64)


def fit_persons(clip: np.ndarray, persons: int) -> np.ndarray:
    """Give a pre-normalised clip exactly ``persons`` bodies (PYSKL FormatGCNInput ``num_person``).

    Args:
        clip: float array [M, T, V, 3].
        persons: bodies to keep (>= 1).

    Returns:
        float32 array [persons, T, V, 3]: the first ``persons`` bodies, then all-zero bodies.

    Raises:
        ValueError: persons < 1 or a clip that is not [M, T, V, 3].
    """
    if persons < 1:
        raise ValueError(f"persons must be >= 1, got {persons}")
    if clip.ndim != 4:
        raise ValueError(f"clip must be [M, T, V, 3], got shape {clip.shape}")
    kept = clip[:persons].astype(np.float32)
    if len(kept) == persons:
        return kept
    return np.concatenate([kept, np.zeros((persons - len(kept), *clip.shape[1:]), np.float32)])


def gcn_batch(clips: Sequence[np.ndarray], frame_indices: Sequence[np.ndarray]) -> np.ndarray:
    """Stack sampled frames of pre-normalised clips into ST-GCN's input layout.

    Args:
        clips: N arrays [M, T_i, V, 3].
        frame_indices: N int arrays [clip_len].

    Returns:
        float32 array [N, M, clip_len, V, 3].
    """
    return np.stack([clip[:, idx] for clip, idx in zip(clips, frame_indices)]).astype(np.float32)
