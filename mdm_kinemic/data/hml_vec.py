"""Joint positions <-> HumanML3D's 263-dim hml_vec features, and back by recover_from_ric.

Written from HumanML3D's published processing (github EricGuo5513/HumanML3D @ 9176e8f,
motion_representation.ipynb and common/: process_file, uniform_skeleton, recover_from_ric), not
from MDM's copy, which leaves frame 0's root rotation un-reset. Per feature frame t (joint
frames t and t+1), the 263 values are:

==========  =====  ==========================================================================
slice       size   meaning
==========  =====  ==========================================================================
0           1      root angular velocity about Y (half-angle per frame, radians)
1:3         2      root linear velocity on XZ, in the root's heading frame (metres per frame)
3           1      root height (metres)
4:67        21x3   ric: joints 1..21 relative to the root's XZ, in the heading frame
67:193      21x6   rot6d: local joint rotations by inverse kinematics (first two matrix columns)
193:259     22x3   local velocity of every joint in the heading frame (metres per frame)
259:263     4      foot contacts: left ankle, left toe, right ankle, right toe (0 or 1)
==========  =====  ==========================================================================

Frames are at 20 fps; T joint frames give T-1 feature frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from mdm_kinemic.data.quaternion import qbetween, qinv, qmul, qrot, quat_to_cont6d
from mdm_kinemic.data.resample import HML_FPS, resample
from mdm_kinemic.data.skeleton import (
    FACE_JOINTS,
    KINEMATIC_CHAIN,
    LEFT_FOOT_JOINTS,
    LEG_JOINTS,
    NUM_JOINTS,
    RAW_OFFSETS,
    REFERENCE_BONE_LENGTHS,
    RIGHT_FOOT_JOINTS,
    SMPL22_JOINT_NAMES,
    SMPL22_PARENTS,
    bone_lengths,
)

FEATURE_DIM = 263
ROOT_ROT_VEL = slice(0, 1)
ROOT_LIN_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
RIC = slice(4, 4 + (NUM_JOINTS - 1) * 3)
ROT6D = slice(RIC.stop, RIC.stop + (NUM_JOINTS - 1) * 6)
LOCAL_VEL = slice(ROT6D.stop, ROT6D.stop + NUM_JOINTS * 3)
FOOT_CONTACT = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)
assert FOOT_CONTACT.stop == FEATURE_DIM

SKELETON_CHOICES = ("reference", "first_frame")


@dataclass(frozen=True)
class HmlVecSettings:
    """How joint positions become hml_vec features.

    Attributes:
        skeleton: "reference" rebuilds every clip on HumanML3D's uniform skeleton (its bone
            lengths, root trajectory scaled by the leg-length ratio; HumanML3D and the paper's
            "consistent bone lengths"); "first_frame" keeps each clip's own first-frame bone
            lengths, constant over the clip (the authors' NTU-VIBE preprocessing).
        floor_lowest_n: the floor is the mean height of the n lowest joint positions of the
            clip; 1 is HumanML3D's minimum, 20 the authors' NTU-VIBE choice.
        feet_threshold: a foot joint is in contact when its squared displacement between two
            20-fps frames is below this (m^2); 0.002 is HumanML3D's value, for both feet.
        heading_sigma: standard deviation (frames) of the Gaussian filter, edge-padded, that
            smooths the facing direction defining the root rotation (HumanML3D: 20).
        min_frames: fewest 20-fps joint frames accepted (>= 2: T frames give T-1 features).
    """

    skeleton: str = field(default="reference", metadata={
        "choices": SKELETON_CHOICES, "help": "bone lengths: HumanML3D's reference skeleton or each clip's first frame"})
    floor_lowest_n: int = field(default=1, metadata={
        "help": "floor = mean height of the n lowest joints (HumanML3D: 1; authors' NTU-VIBE: 20)"})
    feet_threshold: float = field(default=0.002, metadata={"help": 'foot contact threshold (m^2 per frame)'})
    heading_sigma: float = field(default=20.0, metadata={
        "help": 'Gaussian smoothing of the root heading, in frames (HumanML3D: 20; 0 = none)'})
    min_frames: int = field(default=2, metadata={"help": 'fewest 20-fps frames a clip must have'})

    def __post_init__(self) -> None:
        if self.skeleton not in SKELETON_CHOICES:
            raise ValueError(f"HmlVecSettings.skeleton must be one of {SKELETON_CHOICES}, got {self.skeleton!r}")
        if self.floor_lowest_n < 1:
            raise ValueError(f"HmlVecSettings.floor_lowest_n must be >= 1, got {self.floor_lowest_n}")
        if not self.feet_threshold > 0:
            raise ValueError(f"HmlVecSettings.feet_threshold must be > 0 (m^2 per frame), got {self.feet_threshold}")
        if self.heading_sigma < 0:
            raise ValueError(f"HmlVecSettings.heading_sigma must be >= 0 frames, got {self.heading_sigma}")
        if self.min_frames < 2:
            raise ValueError(f"HmlVecSettings.min_frames must be >= 2 (T frames give T-1 features), got {self.min_frames}")


class MotionError(ValueError):
    """A motion that cannot become hml_vec features (NaN, too short, wrong shape, degenerate)."""


def check_joints(joints: np.ndarray, min_frames: int = 2, source: str = "joints") -> np.ndarray:
    """Validate SMPL-22 joint positions and return them as float64.

    Args:
        joints: (T, 22, 3) positions in metres, Y up.
        min_frames: fewest frames accepted.
        source: the file or clip name used in error messages.

    Returns:
        (T, 22, 3) float64 array.

    Raises:
        MotionError: wrong shape or joint count, fewer than ``min_frames`` frames, NaN or inf.
    """
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[2] != 3:
        raise MotionError(f"{source}: expected joints of shape (T, 22, 3), got {joints.shape}")
    if joints.shape[1] != NUM_JOINTS:
        raise MotionError(
            f"{source}: expected {NUM_JOINTS} SMPL joints per frame, got {joints.shape[1]}; "
            "map your skeleton onto SMPL-22 first (24-joint SMPL arrays: drop the hand joints 22, 23)"
        )
    if joints.shape[0] < min_frames:
        raise MotionError(f"{source}: {joints.shape[0]} frames at 20 fps, fewer than the {min_frames} needed")
    bad = ~np.isfinite(joints).all(axis=(1, 2))
    if bad.any():
        frames = np.flatnonzero(bad)
        raise MotionError(
            f"{source}: {len(frames)} frame(s) hold NaN or inf (first: {frames[:5].tolist()}); "
            "fill or cut them before conversion"
        )
    return joints.astype(np.float64)


def uniform_skeleton(joints: np.ndarray, target_lengths: np.ndarray) -> np.ndarray:
    """Rebuild a motion on another skeleton, keeping every bone's direction and the root path.

    Equals HumanML3D's uniform_skeleton (inverse kinematics on the source, forward kinematics
    with the target offsets): each child sits at its parent plus the target length along the
    source bone's direction; the root trajectory is scaled by the ratio of the right thigh plus
    shin lengths (target over source, source measured on frame 0).

    Args:
        joints: (T, 22, 3) positions.
        target_lengths: (22,) bone lengths (metres).

    Returns:
        (T, 22, 3) float64 positions.

    Raises:
        MotionError: if a bone has zero length on some frame (its direction is undefined).
    """
    src_lengths = bone_lengths(joints)
    zero = src_lengths[:, 1:] < 1e-9
    if zero.any():
        frame, bone = np.argwhere(zero)[0]
        name = SMPL22_JOINT_NAMES[bone + 1]
        raise MotionError(
            f"bone {SMPL22_JOINT_NAMES[SMPL22_PARENTS[bone + 1]]}->{name} has zero length on "
            f"{int(zero[:, bone].sum())} frame(s) (first: {frame}); two mapped joints coincide, fix the joint map"
        )
    src_leg = src_lengths[0, LEG_JOINTS[0]] + src_lengths[0, LEG_JOINTS[1]]
    tgt_leg = target_lengths[LEG_JOINTS[0]] + target_lengths[LEG_JOINTS[1]]
    out = np.empty_like(joints)
    out[:, 0] = joints[:, 0] * (tgt_leg / src_leg)
    for chain in KINEMATIC_CHAIN:
        for parent, child in pairwise(chain):
            direction = (joints[:, child] - joints[:, parent]) / src_lengths[:, child, None]
            out[:, child] = out[:, parent] + target_lengths[child] * direction
    return out


def _facing_root_quat(positions: np.ndarray, sigma: float, smooth: bool) -> np.ndarray:
    """(T, 4) rotation taking each frame's facing direction onto +Z (HumanML3D's root rotation).

    With ``smooth`` this is the root rotation of HumanML3D's inverse kinematics, which unpacks
    the face joints as (left hip, right hip, ...): its "across" vector is (left hip - right hip)
    + (right shoulder - left shoulder), shoulders minus hips rather than their sum. Released
    HumanML3D features and every MDM checkpoint carry that definition, so it is kept here.
    Without ``smooth`` (the initial facing of the clip) both terms run right minus left.
    """
    from scipy.ndimage import gaussian_filter1d

    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    hips = positions[:, r_hip] - positions[:, l_hip]
    across = (-hips if smooth else hips) + (positions[:, r_sdr] - positions[:, l_sdr])
    across = across / np.maximum(np.linalg.norm(across, axis=-1, keepdims=True), 1e-12)
    # Smoothed before normalising, as HumanML3D does: frames whose across vector tilts out of
    # the horizontal weigh less in the filter.
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    if smooth and sigma > 0:
        forward = gaussian_filter1d(forward, sigma, axis=0, mode="nearest")
    norm = np.linalg.norm(forward, axis=-1)
    if (norm < 1e-9).any():
        frame = int(np.flatnonzero(norm < 1e-9)[0])
        raise MotionError(f"no facing direction on frame {frame}: hips and shoulders have no horizontal extent")
    forward = forward / norm[:, None]
    return qbetween(forward, np.array([0.0, 0.0, 1.0]))


def normalise_joints(joints: np.ndarray, settings: HmlVecSettings | None = None) -> np.ndarray:
    """Put a 20-fps motion in HumanML3D's canonical frame.

    Uniform skeleton (see :class:`HmlVecSettings`), floor at height 0, root XZ of frame 0 at the
    origin, frame 0 facing +Z. These are the positions the features describe: recover_from_ric
    of :func:`joints_to_hml_vec` gives them back (all but the last frame).

    Args:
        joints: (T, 22, 3) positions in metres, Y up, 20 fps.
        settings: conversion settings (default HumanML3D's).

    Returns:
        (T, 22, 3) float64 positions.

    Raises:
        MotionError: see :func:`check_joints` and :func:`uniform_skeleton`.
    """
    settings = settings or HmlVecSettings()
    joints = check_joints(joints, settings.min_frames)
    if settings.skeleton == "reference":
        target = REFERENCE_BONE_LENGTHS
    else:
        target = bone_lengths(joints[0])
    positions = uniform_skeleton(joints, target)
    heights = np.sort(positions[..., 1], axis=None)
    positions[..., 1] -= heights[: settings.floor_lowest_n].mean()
    positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])
    root_quat_init = _facing_root_quat(positions[:1], settings.heading_sigma, smooth=False)
    return qrot(root_quat_init[:, None], positions)


def _inverse_kinematics(positions: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """(T, 22, 4) local joint rotations from the raw offsets to the bones (HumanML3D's IK).

    Every chain starts again from the root rotation, arm chains included, as HumanML3D does.
    """
    quat = np.zeros(positions.shape[:-1] + (4,))
    quat[:, 0] = root_quat
    for chain in KINEMATIC_CHAIN:
        r = root_quat
        for parent, child in pairwise(chain):
            bone = positions[:, child] - positions[:, parent]
            bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            r_loc = qmul(qinv(r), qbetween(RAW_OFFSETS[child], bone))
            quat[:, child] = r_loc
            r = qmul(r, r_loc)
    return quat


def _features(positions: np.ndarray, settings: HmlVecSettings) -> np.ndarray:
    """(T-1, 263) features of canonical positions (T, 22, 3) (HumanML3D's process_file)."""
    n = len(positions)
    root_quat = _facing_root_quat(positions, settings.heading_sigma, smooth=True)
    root_quat[0] = (1.0, 0.0, 0.0, 0.0)
    rot6d = quat_to_cont6d(_inverse_kinematics(positions, root_quat))

    root_vel = qrot(root_quat[1:], positions[1:, 0] - positions[:-1, 0])
    root_rot_vel = qmul(root_quat[1:], qinv(root_quat[:-1]))
    # HumanML3D takes arcsin of this product's Y part as is; when the heading crosses 180 degrees
    # the product comes out with w < 0 and the arcsin gets the turn's sign wrong. The same
    # rotation with w >= 0 gives the right angle and is HumanML3D's value on every other frame.
    root_rot_vel = root_rot_vel * np.where(root_rot_vel[:, :1] < 0, -1.0, 1.0)
    rot_vel = np.arcsin(np.clip(root_rot_vel[:, 2], -1.0, 1.0))

    local = positions.copy()
    local[..., 0] -= local[:, :1, 0]
    local[..., 2] -= local[:, :1, 2]
    local = qrot(root_quat[:, None], local)
    local_vel = qrot(root_quat[:-1, None], positions[1:] - positions[:-1])

    def contacts(foot: tuple[int, int]) -> np.ndarray:
        step = ((positions[1:, list(foot)] - positions[:-1, list(foot)]) ** 2).sum(-1)
        return (step < settings.feet_threshold).astype(np.float64)

    data = np.concatenate(
        [
            rot_vel[:, None],
            root_vel[:, [0, 2]],
            local[:-1, 0, 1:2],
            local[:-1, 1:].reshape(n - 1, -1),
            rot6d[:-1, 1:].reshape(n - 1, -1),
            local_vel.reshape(n - 1, -1),
            contacts(LEFT_FOOT_JOINTS),
            contacts(RIGHT_FOOT_JOINTS),
        ],
        axis=-1,
    )
    return data


def joints_to_hml_vec(
    joints: np.ndarray, fps: float = HML_FPS, settings: HmlVecSettings | None = None
) -> np.ndarray:
    """HumanML3D's 263-dim features of SMPL-22 joint positions.

    Resamples to 20 fps, normalises (:func:`normalise_joints`), then computes root angular and
    linear velocity, root height, ric positions, 6D rotations by inverse kinematics, local
    velocities and foot contacts as HumanML3D's process_file does.

    Args:
        joints: (T, 22, 3) positions in metres, Y up, SMPL order, at ``fps``.
        fps: frame rate of ``joints``.
        settings: conversion settings (default HumanML3D's).

    Returns:
        (T' - 1, 263) float32, T' the number of 20-fps frames.

    Raises:
        MotionError: NaN/inf frames, wrong joint count, too few frames, zero-length bones.
    """
    settings = settings or HmlVecSettings()
    joints = check_joints(joints, min_frames=1)
    if fps != HML_FPS:
        joints = resample(joints, fps, HML_FPS)
    positions = normalise_joints(joints, settings)
    return _features(positions, settings).astype(np.float32)


def _rotate_y(v, cos, sin):
    """Rotate vectors v (..., 3) about +Y by the angle with the given cos and sin (torch)."""
    import torch

    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return torch.stack((x * cos + z * sin, y, z * cos - x * sin), dim=-1)


def recover_root(data):
    """Root heading and position from hml_vec features (HumanML3D's recover_root_rot_pos).

    Args:
        data: torch Tensor [..., T, 263] (or at least the first 4 features).

    Returns:
        (heading [..., T], root_pos [..., T, 3]): heading is the half-angle about Y whose
        rotation takes world directions into the body frame; root_pos in metres.
    """
    import torch

    rot_vel = data[..., 0]
    heading = torch.zeros_like(rot_vel)
    heading[..., 1:] = rot_vel[..., :-1]
    heading = torch.cumsum(heading, dim=-1)
    step = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    step[..., 1:, 0] = data[..., :-1, 1]
    step[..., 1:, 2] = data[..., :-1, 2]
    # inverse of the heading rotation: world frame from body frame
    angle = 2.0 * heading
    root_pos = torch.cumsum(_rotate_y(step, torch.cos(angle), -torch.sin(angle)), dim=-2)
    root_pos[..., 1] = data[..., 3]
    return heading, root_pos


def recover_from_ric(data, joints_num: int = NUM_JOINTS):
    """Joint positions from hml_vec features, through the ric part (HumanML3D's recover_from_ric).

    Args:
        data: [..., T, 263] features, numpy array or torch Tensor (any leading dims, e.g. MDM's
            motion tensor permuted to [B, 1, T, 263]).
        joints_num: joints of the representation (22 for HumanML3D).

    Returns:
        [..., T, 22, 3] positions in metres, Y up, of the same kind (numpy or torch) and dtype.

    Raises:
        ValueError: if the last dimension does not hold the features.
    """
    import torch

    is_numpy = isinstance(data, np.ndarray)
    # torch cannot wrap read-only arrays (memory-mapped clips): those are copied
    x = torch.from_numpy(np.require(data, requirements=("C", "W"))) if is_numpy else data
    expected = 4 + (joints_num - 1) * 3
    if x.shape[-1] < expected:
        raise ValueError(f"recover_from_ric: last dimension must hold the {FEATURE_DIM} features, got {tuple(x.shape)}")
    heading, root_pos = recover_root(x)
    local = x[..., 4:expected].reshape(x.shape[:-1] + (joints_num - 1, 3))
    angle = (2.0 * heading)[..., None]
    world = _rotate_y(local, torch.cos(angle), -torch.sin(angle))
    world = world + torch.stack(
        (root_pos[..., 0], torch.zeros_like(root_pos[..., 0]), root_pos[..., 2]), dim=-1
    )[..., None, :]
    out = torch.cat([root_pos[..., None, :], world], dim=-2)
    return out.numpy() if is_numpy else out
