"""Motion readers by format name: BVH, SMPL parameters, NTU .skeleton files, joint arrays.

``get_reader("bvh", settings)`` gives a :class:`MotionReader`; new formats join with one
explicit :func:`register_reader` call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdm_kinemic.data.bvh import read_bvh
from mdm_kinemic.data.hml_vec import MotionError
from mdm_kinemic.data.joint_maps import load_joint_map
from mdm_kinemic.data.ntu_skeleton import NtuSkeletonReader
from mdm_kinemic.data.reader_base import (
    Motion,
    MotionReader,
    ReaderSettings,
    to_metres_y_up,
)
from mdm_kinemic.data.smpl import SmplReader


class BvhReader(MotionReader):
    """BVH files through a joint map (see :mod:`mdm_kinemic.data.joint_maps`)."""

    name = "bvh"
    suffixes = (".bvh",)

    def read(self, path: Path) -> Motion:
        """(T, 22, 3) metres, Y up, at the file's frame rate.

        Raises:
            BvhError: malformed or truncated file. UnknownJointError: the joint map names joints
                the file lacks.
        """
        motion = read_bvh(path)
        joint_map = load_joint_map(self.settings.joint_map)
        joints = joint_map.apply(motion.names, motion.positions(), source=str(path))
        return Motion(to_metres_y_up(joints, self.settings), motion.fps)


class JointsReader(MotionReader):
    """Joint arrays saved with numpy: (T, 22, 3) in SMPL order, or (T, 24, 3) with the two hands."""

    name = "joints"
    suffixes = (".npy",)

    def read(self, path: Path) -> Motion:
        """(T, 22, 3) metres, Y up, at ``settings.fps`` (default 20).

        Raises:
            MotionError: an array that is not (T, 22, 3) or (T, 24, 3).
        """
        joints = np.load(path, allow_pickle=False)
        if joints.ndim != 3 or joints.shape[1] not in (22, 24) or joints.shape[2] != 3:
            raise MotionError(
                f"{path}: expected a joint array of shape (T, 22, 3) or (T, 24, 3) in SMPL order, got {joints.shape}"
            )
        joints = joints[:, :22].astype(np.float64)
        return Motion(to_metres_y_up(joints, self.settings), self.settings.fps or 20.0)


_READERS: dict[str, type[MotionReader]] = {}


def register_reader(reader: type[MotionReader]) -> None:
    """Make a :class:`MotionReader` subclass available under its ``name``.

    Raises:
        ValueError: if the name is empty or already taken.
    """
    if not reader.name:
        raise ValueError(f"{reader.__name__}.name must be set to the format name")
    if reader.name in _READERS:
        raise ValueError(f"a reader for format {reader.name!r} is already registered ({_READERS[reader.name].__name__})")
    _READERS[reader.name] = reader


def reader_names() -> list[str]:
    """Registered format names."""
    return sorted(_READERS)


def get_reader(name: str, settings: ReaderSettings | None = None) -> MotionReader:
    """The reader of format ``name`` configured with ``settings``.

    Raises:
        ValueError: unknown format name (the message lists the registered ones).
    """
    if name not in _READERS:
        raise ValueError(f"unknown motion format {name!r}; registered formats: {reader_names()}")
    return _READERS[name](settings)


register_reader(BvhReader)
register_reader(JointsReader)
register_reader(NtuSkeletonReader)
register_reader(SmplReader)
