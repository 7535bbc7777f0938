"""The 22-joint SMPL skeleton of HumanML3D: joint order, kinematic tree, reference bone lengths.

Source: HumanML3D (github EricGuo5513/HumanML3D @ 9176e8f, MIT), paramUtil.py
(t2m_raw_offsets, t2m_kinematic_chain) and the uniform skeleton its motion_representation
notebook builds from clip 000021; the bone lengths below were measured on its released
new_joints/012314.npy (../shared/data/humanml3d/reference_bone_lengths.json holds the same
numbers with their provenance).
"""

from __future__ import annotations

import numpy as np

#: SMPL body joints kept by HumanML3D (no hands), in SMPL order.
SMPL22_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
NUM_JOINTS = 22

#: Parent of each joint (-1 for the pelvis).
SMPL22_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

#: HumanML3D's kinematic chains; inverse kinematics restarts from the root rotation at the
#: head of every chain (even the arm chains, which hang off spine3), as HumanML3D does.
KINEMATIC_CHAIN: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20),
)

#: Rest direction of each bone (joint minus parent) used as the zero rotation of the 6D features.
RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
        [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
        [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)

#: Bone length (metres, joint to parent) of HumanML3D's uniform skeleton.
REFERENCE_BONE_LENGTHS = np.array(
    [
        0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.14319, 0.432433, 0.425643,
        0.057365, 0.143382, 0.149419, 0.21936, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984,
        0.25684, 0.263092, 0.266012, 0.269876,
    ],
    dtype=np.float64,
)

#: (right hip, left hip, right shoulder, left shoulder): the body's facing direction.
FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)
#: Ankle and toe joints per foot, used for the foot-contact features.
LEFT_FOOT_JOINTS: tuple[int, int] = (7, 10)
RIGHT_FOOT_JOINTS: tuple[int, int] = (8, 11)
#: Right thigh (hip->knee, joint 5) and shin (knee->ankle, joint 8): their summed length sets the
#: ratio that scales the root trajectory onto the reference skeleton, as in HumanML3D.
LEG_JOINTS: tuple[int, int] = (5, 8)

#: Joint pairs exchanged by a left/right mirror (HumanML3D's swap_left_right).
LEFT_CHAIN: tuple[int, ...] = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT_CHAIN: tuple[int, ...] = (2, 5, 8, 11, 14, 17, 19, 21)


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of every bone (joint to parent) of SMPL-22 joint positions.

    Args:
        joints: (..., 22, 3) joint positions (metres).

    Returns:
        (..., 22) bone lengths; entry 0 (the root) is 0.
    """
    parents = np.array(SMPL22_PARENTS[1:])
    lengths = np.zeros(joints.shape[:-1], dtype=np.float64)
    lengths[..., 1:] = np.linalg.norm(joints[..., 1:, :] - joints[..., parents, :], axis=-1)
    return lengths


def rest_pose(bone_lengths_m: np.ndarray | None = None) -> np.ndarray:
    """A standing pose facing +Z with the pelvis at the origin and Y up.

    Bones point along plausible human directions (legs down, spine and head up, arms hanging
    at the sides, feet forward), each scaled to its length.

    Args:
        bone_lengths_m: (22,) bone lengths in metres; default the HumanML3D reference skeleton.

    Returns:
        (22, 3) joint positions in metres (the pelvis at 0, feet below it).
    """
    lengths = REFERENCE_BONE_LENGTHS if bone_lengths_m is None else np.asarray(bone_lengths_m, dtype=np.float64)
    # Left is +X when facing +Z (SMPL's canonical frame); collars slope up and out.
    directions = np.array(RAW_OFFSETS)
    directions[15] = (0, 1, 0)
    directions[13] = (0.6, 0.8, 0)
    directions[14] = (-0.6, 0.8, 0)
    directions[16] = (1, 0, 0)
    directions[17] = (-1, 0, 0)
    directions /= np.maximum(np.linalg.norm(directions, axis=-1, keepdims=True), 1e-12)
    joints = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        joints[j] = joints[SMPL22_PARENTS[j]] + lengths[j] * directions[j]
    return joints


def swap_left_right(joints: np.ndarray) -> np.ndarray:
    """Mirror SMPL-22 joints across the YZ plane: negate X and exchange left and right joints.

    This is how HumanML3D builds its mirrored ``M`` clips (raw_pose_processing notebook).

    Args:
        joints: (T, 22, 3) or (T, 24, 3) joint positions; hand joints 22/23 are exchanged too.

    Returns:
        A new array of the same shape.

    Raises:
        ValueError: if the array is not (T, 22 or 24, 3).
    """
    if joints.ndim != 3 or joints.shape[1] not in (22, 24) or joints.shape[2] != 3:
        raise ValueError(f"swap_left_right expects (T, 22, 3) or (T, 24, 3) joints, got {joints.shape}")
    out = np.array(joints, copy=True)
    out[..., 0] *= -1
    left, right = list(LEFT_CHAIN), list(RIGHT_CHAIN)
    if joints.shape[1] == 24:
        left, right = left + [22], right + [23]
    out[:, left], out[:, right] = out[:, right].copy(), out[:, left].copy()
    return out
