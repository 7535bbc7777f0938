"""A small BVH reader: hierarchy, channels in any order, forward kinematics to joint positions.

No maintained PyPI package fits: ``bvh`` (20tab) parses channels but computes no positions, and
the packages that do (pymo, bvhio) pull in pandas or their own math libraries for what is ~150
lines. BVH semantics used here (Biovision's spec, as Blender and MotionBuilder read it):

- a joint's local translation is its OFFSET, replaced per axis by its position channels when
  it has them (Bandai Namco files give every joint position channels equal to its offset);
- its local rotation is the product of its rotation channels in the order listed, i.e. the
  intrinsic Euler sequence ("Zrotation Xrotation Yrotation" is R = Rz Rx Ry), in degrees;
- global = parent global composed with local; End Site blocks carry no joint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CHANNELS = ("xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation")


class BvhError(ValueError):
    """A BVH file that cannot be read (syntax, truncated motion, unknown channel)."""


@dataclass(frozen=True)
class BvhJoint:
    """One joint of the BVH hierarchy.

    Attributes:
        name: joint name as written in the file.
        parent: index of the parent joint, -1 for the root.
        offset: (3,) translation from the parent in file units.
        channels: channel names, lower case, in file order (e.g. ("zrotation", "xrotation", ...)).
        first_channel: column of the first channel in the MOTION rows.
    """

    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: tuple[str, ...]
    first_channel: int


@dataclass(frozen=True)
class BvhMotion:
    """Hierarchy and motion of a BVH file.

    Attributes:
        joints: joints in file order (parents before children).
        frame_time: seconds per frame.
        values: (F, C) channel values per frame, C the total channel count.
        source: the file name, for messages.
    """

    joints: tuple[BvhJoint, ...]
    frame_time: float
    values: np.ndarray
    source: str = "<bvh>"

    @property
    def names(self) -> list[str]:
        """Joint names in file order."""
        return [j.name for j in self.joints]

    @property
    def fps(self) -> float:
        """Frames per second: 1 / frame_time, snapped to the nearest integer within 0.01 %.

        Files store the frame time rounded (Bandai: 0.0333333 s); unsnapped, 30.00003 fps would
        lose a frame to rounding when resampled to 20 fps.
        """
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps

    def positions(self) -> np.ndarray:
        """Global joint positions by forward kinematics.

        Returns:
            (F, J, 3) float64 positions in file units and file axes, J = len(joints).
        """
        from scipy.spatial.transform import Rotation

        n_frames = self.values.shape[0]
        rot = np.empty((len(self.joints), n_frames, 3, 3))
        pos = np.empty((len(self.joints), n_frames, 3))
        for j, joint in enumerate(self.joints):
            local_t = np.tile(np.asarray(joint.offset, dtype=np.float64), (n_frames, 1))
            axes = ""
            angles = []
            for k, channel in enumerate(joint.channels):
                column = self.values[:, joint.first_channel + k]
                if channel.endswith("position"):
                    local_t[:, "xyz".index(channel[0])] = column
                else:
                    axes += channel[0].upper()
                    angles.append(column)
            if axes:
                local_r = Rotation.from_euler(axes, np.stack(angles, axis=-1), degrees=True).as_matrix()
            else:
                local_r = np.broadcast_to(np.eye(3), (n_frames, 3, 3))
            if joint.parent < 0:
                rot[j], pos[j] = local_r, local_t
            else:
                rot[j] = rot[joint.parent] @ local_r
                pos[j] = pos[joint.parent] + np.einsum("fij,fj->fi", rot[joint.parent], local_t)
        return pos.transpose(1, 0, 2)


def _parse_hierarchy(tokens: list[str], source: str) -> list[BvhJoint]:
    """Joints of the HIERARCHY section (tokens end with the MOTION keyword)."""
    joints: list[BvhJoint] = []
    stack: list[int] = []  # joint index per open brace, -1 for End Site blocks
    n_channels = 0
    pending: tuple[str, int] | None = None  # (name, parent) of a joint whose brace is not open yet
    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise BvhError(f"{source}: not a BVH file (does not start with HIERARCHY)")
    i = 1
    try:
        while i < len(tokens):
            tok = tokens[i]
            upper = tok.upper()
            if upper in ("ROOT", "JOINT"):
                parent = next((s for s in reversed(stack) if s >= 0), -1)
                if upper == "JOINT" and not stack:
                    raise BvhError(f"{source}: JOINT {tokens[i + 1]} outside any ROOT block")
                pending = (tokens[i + 1], parent)
                i += 2
            elif upper == "END":
                pending = ("", -2)
                i += 2
            elif tok == "{":
                if pending is None:
                    raise BvhError(f"{source}: unexpected '{{' in HIERARCHY")
                if pending[1] == -2:
                    stack.append(-1)
                else:
                    joints.append(BvhJoint(pending[0], pending[1], (0.0, 0.0, 0.0), (), n_channels))
                    stack.append(len(joints) - 1)
                pending = None
                i += 1
            elif tok == "}":
                if not stack:
                    raise BvhError(f"{source}: unbalanced '}}' in HIERARCHY")
                stack.pop()
                i += 1
            elif upper == "OFFSET":
                offset = (float(tokens[i + 1]), float(tokens[i + 2]), float(tokens[i + 3]))
                if stack and stack[-1] >= 0:
                    j = stack[-1]
                    joints[j] = BvhJoint(joints[j].name, joints[j].parent, offset, joints[j].channels, joints[j].first_channel)
                i += 4
            elif upper == "CHANNELS":
                count = int(tokens[i + 1])
                names = tuple(t.lower() for t in tokens[i + 2 : i + 2 + count])
                unknown = [n for n in names if n not in _CHANNELS]
                if unknown:
                    raise BvhError(f"{source}: unknown channel(s) {unknown}; accepted: {_CHANNELS} (any case)")
                if not stack or stack[-1] < 0:
                    raise BvhError(f"{source}: CHANNELS outside a joint block")
                j = stack[-1]
                joints[j] = BvhJoint(joints[j].name, joints[j].parent, joints[j].offset, names, n_channels)
                n_channels += count
                i += 2 + count
            elif upper == "MOTION":
                if stack:
                    raise BvhError(f"{source}: HIERARCHY ends with {len(stack)} unclosed block(s)")
                return joints
            else:
                raise BvhError(f"{source}: unexpected token {tok!r} in HIERARCHY")
    except (IndexError, ValueError) as err:
        if isinstance(err, BvhError):
            raise
        raise BvhError(f"{source}: malformed HIERARCHY near token {i} ({err})") from err
    raise BvhError(f"{source}: truncated file, no MOTION section after the HIERARCHY")


def parse_bvh(text: str, source: str = "<bvh>") -> BvhMotion:
    """Parse BVH text.

    Args:
        text: the whole file.
        source: name used in error messages.

    Returns:
        The hierarchy and the (F, C) channel values.

    Raises:
        BvhError: not a BVH file (empty, or not starting with HIERARCHY), syntax errors, unknown
            channels, a missing or truncated MOTION section (fewer values than Frames x
            channels), 'Frames: 0', non-numeric values.
    """
    start = text.lstrip()
    if not start:
        raise BvhError(f"{source}: not a BVH file: it is empty")
    if not start[:9].upper() == "HIERARCHY":
        raise BvhError(f"{source}: not a BVH file: it does not start with HIERARCHY (it starts with {start[:24]!r}); "
                       "check that it is the file you meant to convert")
    head, sep, body = text.partition("MOTION")
    if not sep:
        raise BvhError(f"{source}: truncated file, no MOTION section")
    joints = _parse_hierarchy(head.split() + ["MOTION"], source)
    if not joints:
        raise BvhError(f"{source}: the HIERARCHY holds no joint")
    n_channels = sum(len(j.channels) for j in joints)
    frames = re.search(r"Frames:\s*(\d+)", body)
    frame_time = re.search(r"Frame\s+Time:\s*([-+0-9.eE]+)", body)
    if frames is None or frame_time is None:
        raise BvhError(f"{source}: MOTION section lacks 'Frames:' or 'Frame Time:'")
    n_frames = int(frames.group(1))
    if n_frames == 0:
        raise BvhError(f"{source}: 'Frames: 0': the file holds a skeleton but no motion; re-export it with its frames")
    dt = float(frame_time.group(1))
    if not dt > 0:
        raise BvhError(f"{source}: Frame Time must be positive, got {dt}")
    try:
        values = np.array(body[frame_time.end():].split(), dtype=np.float64)
    except ValueError as err:
        raise BvhError(f"{source}: non-numeric value in MOTION ({err})") from err
    expected = n_frames * n_channels
    if values.size < expected:
        raise BvhError(
            f"{source}: truncated MOTION: {n_frames} frames x {n_channels} channels declared, "
            f"only {values.size // max(n_channels, 1)} complete frame(s) present; re-export or re-download the file"
        )
    if values.size > expected:
        raise BvhError(f"{source}: MOTION holds {values.size} values, more than {n_frames} frames x {n_channels} channels")
    return BvhMotion(tuple(joints), dt, values.reshape(n_frames, n_channels), source)


def read_bvh(path: str | Path) -> BvhMotion:
    """Read a BVH file (see :func:`parse_bvh`).

    Raises:
        BvhError: as parse_bvh; FileNotFoundError if the file does not exist.
    """
    path = Path(path)
    return parse_bvh(path.read_text(encoding="utf-8", errors="replace"), source=str(path))
