"""Left/right mirroring of hml_vec features, the way HumanML3D builds its ``M`` clips.

HumanML3D mirrors the joints (negate X, exchange left and right joints: data/skeleton.py
``swap_left_right``) before computing the features. Every step of that computation (facing
direction, root rotation, inverse kinematics from left/right-symmetric raw offsets, velocities,
foot contacts) commutes with the mirror, so the mirrored clip's features follow from the
original's by a fixed signed permutation of the 263 values; no re-processing, no frame lost, and
mirroring twice gives the clip back exactly. Per feature block (hml_vec.py's table):

==============  ==========================================================================
root rot vel    negated (a left turn becomes a right turn)
root lin vel    X (sideways, in the heading frame) negated, Z kept
root y          kept
ric, local vel  X negated, left and right joints exchanged
rot6d           each rotation R becomes M R M with M = diag(-1, 1, 1): column 0 (a, b, c)
                becomes (a, -b, -c), column 1 (d, e, f) becomes (-d, e, f); joints exchanged
foot contacts   left and right feet exchanged
==============  ==========================================================================

One difference from mirroring joints and converting again: a clip converted onto HumanML3D's
reference skeleton keeps that skeleton's (slightly asymmetric) bone lengths per side, so the
mirrored clip's left limbs have the reference's right lengths; with per-clip skeletons
(``first_frame``) the two routes agree to float precision (tested).
"""

from __future__ import annotations

import numpy as np

from mdm_kinemic.data.hml_vec import FEATURE_DIM, FOOT_CONTACT, LOCAL_VEL, RIC, ROT6D, ROOT_LIN_VEL, ROOT_ROT_VEL
from mdm_kinemic.data.skeleton import LEFT_CHAIN, NUM_JOINTS, RIGHT_CHAIN


def _joint_swap() -> np.ndarray:
    """Index of each joint's mirror partner (SMPL-22; centre joints map to themselves)."""
    partner = np.arange(NUM_JOINTS)
    partner[list(LEFT_CHAIN)] = RIGHT_CHAIN
    partner[list(RIGHT_CHAIN)] = LEFT_CHAIN
    return partner


def _mirror_map() -> tuple[np.ndarray, np.ndarray]:
    """(index, sign), both (263,): mirrored[..., i] = features[..., index[i]] * sign[i]."""
    index = np.arange(FEATURE_DIM)
    sign = np.ones(FEATURE_DIM)
    sign[ROOT_ROT_VEL] = -1.0
    sign[ROOT_LIN_VEL.start] = -1.0
    partner = _joint_swap()

    def per_joint(block: slice, width: int, first_joint: int, block_sign: np.ndarray) -> None:
        joints = (block.stop - block.start) // width
        for k in range(joints):
            source = partner[k + first_joint] - first_joint
            index[block.start + k * width : block.start + (k + 1) * width] = (
                block.start + source * width + np.arange(width)
            )
            sign[block.start + k * width : block.start + (k + 1) * width] = block_sign

    per_joint(RIC, 3, 1, np.array([-1.0, 1.0, 1.0]))
    per_joint(ROT6D, 6, 1, np.array([1.0, -1.0, -1.0, -1.0, 1.0, 1.0]))
    per_joint(LOCAL_VEL, 3, 0, np.array([-1.0, 1.0, 1.0]))
    feet = FOOT_CONTACT.start
    index[feet : feet + 4] = [feet + 2, feet + 3, feet, feet + 1]
    return index, sign


MIRROR_INDEX, MIRROR_SIGN = _mirror_map()


def mirror_hml_vec(features: np.ndarray) -> np.ndarray:
    """The left/right mirror of hml_vec features (HumanML3D's ``M`` clip of a clip).

    Args:
        features: (..., T, 263) raw (not normalised) features at 20 fps. Features normalised
            by a Mean/Std that is itself mirror-symmetric (HumanML3D's, which includes the
            mirrored clips, nearly is) may be mirrored too, up to that asymmetry.

    Returns:
        A new float array of the same shape and dtype; mirroring it again gives ``features``.

    Raises:
        ValueError: the last dimension is not 263.
    """
    features = np.asarray(features)
    if features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"mirror_hml_vec expects (..., T, {FEATURE_DIM}) features, got {features.shape}")
    return (features[..., MIRROR_INDEX] * MIRROR_SIGN).astype(features.dtype, copy=False)
