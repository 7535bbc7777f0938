"""What every motion reader returns and the settings they share: units, up axis, frame rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: Metres per file unit. "cmu" is the unit of the CMU mocap BVH conversions (1/0.45 inch).
UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.056444}
UP_AXES = ("y", "z")
#: Typical hip-to-ankle length of an adult (metres), the yardstick of units="auto".
_TYPICAL_LEG_M = 0.85


class Motion(NamedTuple):
    """SMPL-22 joint positions read from a file.

    Attributes:
        joints: (T, 22, 3) float64 positions in metres, Y up, SMPL order.
        fps: frames per second of ``joints``.
    """

    joints: np.ndarray
    fps: float


@dataclass(frozen=True)
class ReaderSettings:
    """Options of the motion readers (each reader uses the ones that apply to its format).

    Attributes:
        joint_map: BVH only: "bandai", "cmu" or a JSON file mapping SMPL joints to BVH joints.
        units: file units: one of UNIT_SCALES ("m", "cm", "mm", "inch", "cmu"), "auto"
            (the unit that makes the legs closest to 0.85 m), or metres per unit as a number.
        up_axis: "y" (BVH, Kinect, SMPL world) or "z" (converted to Y up, right-handed).
        fps: frame rate of formats without one in the file (joints .npy: default 20; SMPL
            parameters: default 30, VIBE on NTU video); ignored for BVH and NTU skeletons.
        smpl_model_dir: SMPL only: folder holding the SMPL model files smplx.create reads.
        smpl_gender: SMPL only: "neutral", "male" or "female".
        smpl_camera_frame: SMPL only: the global orientation is in VIBE's camera frame (Y down,
            Z into the scene) and is turned 180 degrees about X into Y up.
    """

    joint_map: str = field(default="bandai", metadata={"help": 'BVH joint map: bandai, cmu or a JSON file'})
    units: str = field(default="auto", metadata={"help": 'file units: auto, m, cm, mm, inch, cmu or metres per unit'})
    up_axis: str = field(default="y", metadata={"choices": UP_AXES, "help": 'up axis of the files'})
    fps: float | None = field(default=None, metadata={
        "help": 'frame rate of joints .npy (default 20) and SMPL files (default 30)'})
    smpl_model_dir: str | None = field(default=None, metadata={"help": 'folder with the SMPL model files'})
    smpl_gender: str = field(default="neutral", metadata={
        "choices": ("neutral", "male", "female"), "help": 'SMPL body model'})
    smpl_camera_frame: bool = field(default=True, metadata={
        "help": "SMPL global orientation is in VIBE's camera frame (Y down)"})

    def __post_init__(self) -> None:
        if self.units != "auto" and self.units not in UNIT_SCALES:
            try:
                value = float(self.units)
            except ValueError:
                raise ValueError(
                    f"ReaderSettings.units must be 'auto', one of {sorted(UNIT_SCALES)} or metres per unit, got {self.units!r}"
                ) from None
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ReaderSettings.units as a number must be positive metres per unit, got {self.units!r}")
        if self.up_axis not in UP_AXES:
            raise ValueError(f"ReaderSettings.up_axis must be one of {UP_AXES}, got {self.up_axis!r}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"ReaderSettings.fps must be a positive frame rate, got {self.fps}")
        if self.smpl_gender not in ("neutral", "male", "female"):
            raise ValueError(f"ReaderSettings.smpl_gender must be neutral, male or female, got {self.smpl_gender!r}")


class MotionReader:
    """Turns one file into SMPL-22 joints in metres, Y up. Subclasses implement :meth:`read`.

    Attributes:
        name: the ``--format`` value of the reader.
        suffixes: file suffixes the reader accepts (lower case, with the dot).
    """

    name: str = ""
    suffixes: tuple[str, ...] = ()

    def __init__(self, settings: ReaderSettings | None = None) -> None:
        self.settings = settings or ReaderSettings()

    def read(self, path: Path) -> Motion:
        """Read ``path``.

        Raises:
            ValueError (or a subclass): the file cannot become SMPL-22 joints; the message names
                the file and the fix.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement read(path) -> Motion")


def leg_length(joints: np.ndarray) -> float:
    """Mean hip-knee-ankle length of the two legs on frame 0 of SMPL-22 joints (file units)."""
    j = joints[0]
    left = np.linalg.norm(j[4] - j[1]) + np.linalg.norm(j[7] - j[4])
    right = np.linalg.norm(j[5] - j[2]) + np.linalg.norm(j[8] - j[5])
    return float((left + right) / 2)


def metres_per_unit(units: str, joints: np.ndarray) -> float:
    """Scale of ``units`` (see :class:`ReaderSettings`); "auto" judges by the legs of ``joints``."""
    if units in UNIT_SCALES:
        return UNIT_SCALES[units]
    if units != "auto":
        return float(units)
    leg = leg_length(joints)
    if not leg > 0:
        return 1.0
    return min(UNIT_SCALES.values(), key=lambda s: abs(math.log(leg * s / _TYPICAL_LEG_M)))


def to_metres_y_up(joints: np.ndarray, settings: ReaderSettings) -> np.ndarray:
    """Scale SMPL-22 joints (T, 22, 3) to metres and turn a Z-up file into Y up (right-handed)."""
    joints = joints * metres_per_unit(settings.units, joints)
    if settings.up_axis == "z":
        joints = np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], axis=-1)
    return joints
