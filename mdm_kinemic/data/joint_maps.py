"""Joint maps: how a source skeleton's joints give the 22 SMPL joints of HumanML3D.

Each SMPL joint comes from one named source joint, or from a point on the segment between two
source joints (``[a, b, w]`` = (1 - w) * a + w * b) where the source skeleton has no joint in
that place. Built-in maps: ``bandai`` (Bandai Namco Research Motion Dataset 1 and 2) and ``cmu``
(the CMU mocap BVH conversions: Hips, LHipJoint, LeftUpLeg, ..., LowerBack, Spine, Spine1, Neck,
Neck1, Head, LeftShoulder, LeftArm, ...). A map can also be read from a JSON file
``{"pelvis": "Hips", "spine3": ["Chest", "Neck", 0.35], ...}`` naming all 22 SMPL joints.

Approximations (directions are what matter: :func:`mdm_kinemic.data.hml_vec.uniform_skeleton`
replaces every bone length by HumanML3D's):

- bandai: its spine has three joints (Spine, Chest, Neck) where SMPL has four; spine3, where
  SMPL's collars branch, is put 35 % of the way from Chest to Neck, below Bandai's collar joints
  (Shoulder_L/R) as in SMPL. SMPL's foot joint is the toe base (Toes_L/R).
- cmu: LowerBack coincides with Hips and LeftShoulder with Spine1, so spine1 is halfway from Hips
  to Spine and each collar halfway from Spine1 to the upper arm; neck is Neck1 (Neck coincides
  with Spine1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdm_kinemic.data.skeleton import SMPL22_JOINT_NAMES

#: A source joint name, or (joint a, joint b, weight w) for the point (1 - w) a + w b.
JointSource = str | tuple[str, str, float]


class UnknownJointError(ValueError):
    """The joint map names joints that the source skeleton does not have."""


@dataclass(frozen=True)
class JointMap:
    """Where each of the 22 SMPL joints comes from in a source skeleton.

    Attributes:
        name: identifier used in messages ("bandai", "cmu", or a file name).
        sources: one :data:`JointSource` per SMPL joint, in SMPL order.
    """

    name: str
    sources: tuple[JointSource, ...]

    def __post_init__(self) -> None:
        if len(self.sources) != len(SMPL22_JOINT_NAMES):
            raise ValueError(f"JointMap {self.name!r}: sources must name {len(SMPL22_JOINT_NAMES)} joints, got {len(self.sources)}")
        for smpl, src in zip(SMPL22_JOINT_NAMES, self.sources):
            if isinstance(src, str):
                continue
            if not (len(src) == 3 and isinstance(src[0], str) and isinstance(src[1], str) and 0.0 <= float(src[2]) <= 1.0):
                raise ValueError(
                    f"JointMap {self.name!r}: source of {smpl} must be a joint name or [joint_a, joint_b, weight in 0..1], got {src!r}"
                )

    @classmethod
    def from_dict(cls, name: str, mapping: dict) -> JointMap:
        """Build a map from {smpl joint name: source}; every SMPL joint must be named exactly once.

        Raises:
            ValueError: missing or unknown SMPL joint names, malformed sources.
        """
        missing = [n for n in SMPL22_JOINT_NAMES if n not in mapping]
        extra = [n for n in mapping if n not in SMPL22_JOINT_NAMES]
        if missing or extra:
            raise ValueError(
                f"joint map {name!r}: needs exactly the SMPL joints {list(SMPL22_JOINT_NAMES)}; "
                f"missing {missing}, unknown {extra}"
            )
        sources = tuple(m if isinstance(m, str) else (m[0], m[1], float(m[2])) for m in (mapping[n] for n in SMPL22_JOINT_NAMES))
        return cls(name, sources)

    def required_joints(self) -> list[str]:
        """Every source joint name the map reads."""
        names: list[str] = []
        for src in self.sources:
            for n in ([src] if isinstance(src, str) else [src[0], src[1]]):
                if n not in names:
                    names.append(n)
        return names

    def apply(self, names: list[str], positions: np.ndarray, source: str = "<motion>") -> np.ndarray:
        """SMPL-22 joints from source joint positions.

        Args:
            names: source joint names, one per column of ``positions``.
            positions: (T, J, 3) source joint positions.
            source: file name for messages.

        Returns:
            (T, 22, 3) positions in SMPL order, same units as the input.

        Raises:
            UnknownJointError: if the map reads joints that ``names`` lacks.
        """
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.required_joints() if n not in index]
        if missing:
            raise UnknownJointError(
                f"{source}: joint map {self.name!r} needs joints {missing} that the file lacks; "
                f"its joints are {names}. Choose another --joint_map (bandai, cmu) or give a JSON map"
            )
        out = np.empty(positions.shape[:1] + (len(self.sources), 3), dtype=np.float64)
        for j, src in enumerate(self.sources):
            if isinstance(src, str):
                out[:, j] = positions[:, index[src]]
            else:
                a, b, w = src
                out[:, j] = (1.0 - w) * positions[:, index[a]] + w * positions[:, index[b]]
        return out


BANDAI = JointMap.from_dict(
    "bandai",
    {
        "pelvis": "Hips", "left_hip": "UpperLeg_L", "right_hip": "UpperLeg_R", "spine1": "Spine",
        "left_knee": "LowerLeg_L", "right_knee": "LowerLeg_R", "spine2": "Chest",
        "left_ankle": "Foot_L", "right_ankle": "Foot_R", "spine3": ("Chest", "Neck", 0.35),
        "left_foot": "Toes_L", "right_foot": "Toes_R", "neck": "Neck", "left_collar": "Shoulder_L",
        "right_collar": "Shoulder_R", "head": "Head", "left_shoulder": "UpperArm_L",
        "right_shoulder": "UpperArm_R", "left_elbow": "LowerArm_L", "right_elbow": "LowerArm_R",
        "left_wrist": "Hand_L", "right_wrist": "Hand_R",
    },
)

CMU = JointMap.from_dict(
    "cmu",
    {
        "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": ("Hips", "Spine", 0.5),
        "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine",
        "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "spine3": "Spine1",
        "left_foot": "LeftToeBase", "right_foot": "RightToeBase", "neck": "Neck1",
        "left_collar": ("Spine1", "LeftArm", 0.5), "right_collar": ("Spine1", "RightArm", 0.5), "head": "Head",
        "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
        "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
    },
)

BUILTIN_JOINT_MAPS: dict[str, JointMap] = {"bandai": BANDAI, "cmu": CMU}


def load_joint_map(spec: str | JointMap) -> JointMap:
    """A built-in map by name ("bandai", "cmu") or a JSON file {smpl joint: source}.

    Raises:
        ValueError: unknown name that is not an existing file, or a malformed JSON map.
        TypeError: a JSON file that does not hold an object.
    """
    if isinstance(spec, JointMap):
        return spec
    if spec in BUILTIN_JOINT_MAPS:
        return BUILTIN_JOINT_MAPS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"joint map {spec!r}: not one of {sorted(BUILTIN_JOINT_MAPS)} and no such JSON file")
    try:
        mapping = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"joint map {path}: not valid JSON ({err})") from err
    if not isinstance(mapping, dict):
        raise TypeError(f"joint map {path}: expected a JSON object {{smpl joint: source}}")
    return JointMap.from_dict(str(path), mapping)
