"""NTU RGB+D (60/120) .skeleton files: 25 Kinect v2 joints -> the 22 SMPL joints of HumanML3D.

File layout (Shahroudy et al. 2016; Liu et al. 2019): the frame count, then per frame the body
count and per body one line of 10 body values (tracking id first), the joint count (25), and
one line of 12 values per joint (x y z in metres, camera space: right-handed, Y up, then depth
and colour pixel coordinates, orientation quaternion, tracking state). Frames are at 30 fps.

Choices, documented because the file does not settle them:

- several bodies: the most active one is kept, the body whose joints vary most over the clip
  (sum over joints and axes of the variance across the frames it is present in), the usual
  rule of NTU preprocessing for single-person actions;
- missing frames (no body, the body absent, or all-zero coordinates): leading and trailing ones
  are cut, interior gaps are filled by linear interpolation between the neighbouring frames;
- 25 -> 22 joints (an approximation: Kinect has no collars and two spine joints fewer):

  ==============  =========================================================
  SMPL joint      Kinect v2 source
  ==============  =========================================================
  pelvis          SpineBase
  left/right hip  HipLeft / HipRight
  spine1          halfway SpineBase -> SpineMid
  spine2          SpineMid
  spine3          25 % of the way SpineMid -> SpineShoulder
  neck            Neck (above the shoulder line, as SMPL's neck)
  head            Head
  collars         halfway SpineShoulder -> ShoulderLeft / ShoulderRight
  shoulders,      ShoulderLeft/Right, ElbowLeft/Right, WristLeft/Right
  elbows, wrists
  knees, ankles   KneeLeft/Right, AnkleLeft/Right
  feet            FootLeft / FootRight
  ==============  =========================================================

  Hand tips, thumbs and the Kinect Hand joints are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdm_kinemic.data.hml_vec import MotionError
from mdm_kinemic.data.reader_base import Motion, MotionReader

NTU_FPS = 30.0
KINECT_JOINTS = 25
_SPINE_BASE, _SPINE_MID, _NECK, _HEAD = 0, 1, 2, 3
_SHOULDER_L, _ELBOW_L, _WRIST_L = 4, 5, 6
_SHOULDER_R, _ELBOW_R, _WRIST_R = 8, 9, 10
_HIP_L, _KNEE_L, _ANKLE_L, _FOOT_L = 12, 13, 14, 15
_HIP_R, _KNEE_R, _ANKLE_R, _FOOT_R = 16, 17, 18, 19
_SPINE_SHOULDER = 20

#: Per SMPL joint: (Kinect joint a, Kinect joint b, w) for (1 - w) a + w b.
KINECT_TO_SMPL22: tuple[tuple[int, int, float], ...] = (
    (_SPINE_BASE, _SPINE_BASE, 0.0),      # pelvis
    (_HIP_L, _HIP_L, 0.0),                # left_hip
    (_HIP_R, _HIP_R, 0.0),                # right_hip
    (_SPINE_BASE, _SPINE_MID, 0.5),       # spine1
    (_KNEE_L, _KNEE_L, 0.0),              # left_knee
    (_KNEE_R, _KNEE_R, 0.0),              # right_knee
    (_SPINE_MID, _SPINE_MID, 0.0),        # spine2
    (_ANKLE_L, _ANKLE_L, 0.0),            # left_ankle
    (_ANKLE_R, _ANKLE_R, 0.0),            # right_ankle
    (_SPINE_MID, _SPINE_SHOULDER, 0.25),  # spine3
    (_FOOT_L, _FOOT_L, 0.0),              # left_foot
    (_FOOT_R, _FOOT_R, 0.0),              # right_foot
    (_NECK, _NECK, 0.0),                  # neck
    (_SPINE_SHOULDER, _SHOULDER_L, 0.5),  # left_collar
    (_SPINE_SHOULDER, _SHOULDER_R, 0.5),  # right_collar
    (_HEAD, _HEAD, 0.0),                  # head
    (_SHOULDER_L, _SHOULDER_L, 0.0),      # left_shoulder
    (_SHOULDER_R, _SHOULDER_R, 0.0),      # right_shoulder
    (_ELBOW_L, _ELBOW_L, 0.0),            # left_elbow
    (_ELBOW_R, _ELBOW_R, 0.0),            # right_elbow
    (_WRIST_L, _WRIST_L, 0.0),            # left_wrist
    (_WRIST_R, _WRIST_R, 0.0),            # right_wrist
)


def parse_skeleton(text: str, source: str = "<skeleton>") -> dict[str, np.ndarray]:
    """Bodies of an NTU .skeleton file.

    Args:
        text: file contents.
        source: name for messages.

    Returns:
        {tracking id: (T, 25, 3) float64 camera-space positions in metres, NaN on frames where
        the body is absent or all its coordinates are zero}, T the file's frame count.

    Raises:
        MotionError: a truncated or malformed file.
    """
    lines = text.split("\n")
    pos = 0

    def next_line() -> list[str]:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1
        if pos >= len(lines):
            raise MotionError(f"{source}: truncated .skeleton file (ended at line {pos})")
        pos += 1
        return lines[pos - 1].split()

    try:
        n_frames = int(next_line()[0])
        bodies: dict[str, np.ndarray] = {}
        for frame in range(n_frames):
            n_bodies = int(next_line()[0])
            for _ in range(n_bodies):
                body_id = next_line()[0]
                n_joints = int(next_line()[0])
                if n_joints != KINECT_JOINTS:
                    raise MotionError(f"{source}: frame {frame} has a body with {n_joints} joints, expected {KINECT_JOINTS}")
                xyz = np.array([[float(v) for v in next_line()[:3]] for _ in range(n_joints)])
                if body_id not in bodies:
                    bodies[body_id] = np.full((n_frames, KINECT_JOINTS, 3), np.nan)
                if np.any(xyz != 0):
                    bodies[body_id][frame] = xyz
    except (ValueError, IndexError) as err:
        if isinstance(err, MotionError):
            raise
        raise MotionError(f"{source}: malformed .skeleton file near line {pos} ({err})") from err
    return bodies


def most_active_body(bodies: dict[str, np.ndarray], source: str = "<skeleton>") -> np.ndarray:
    """The body whose joints vary most over the frames it is present in.

    Returns:
        (T, 25, 3) positions with NaN where the body is absent.

    Raises:
        MotionError: if no body is present on any frame.
    """
    best, best_motion = None, -1.0
    for body in bodies.values():
        present = ~np.isnan(body).any(axis=(1, 2))
        if not present.any():
            continue
        motion = float(body[present].var(axis=0).sum()) if present.sum() > 1 else 0.0
        if motion > best_motion:
            best, best_motion = body, motion
    if best is None:
        raise MotionError(f"{source}: no body is tracked on any frame")
    return best


def fill_missing(body: np.ndarray, source: str = "<skeleton>") -> np.ndarray:
    """Cut leading/trailing missing frames and interpolate interior ones linearly.

    Args:
        body: (T, J, 3) with NaN rows for missing frames.

    Returns:
        (T', J, 3) without NaN.

    Raises:
        MotionError: if every frame is missing.
    """
    present = ~np.isnan(body).any(axis=(1, 2))
    if not present.any():
        raise MotionError(f"{source}: no body is tracked on any frame")
    first, last = np.flatnonzero(present)[[0, -1]]
    body = body[first : last + 1]
    present = present[first : last + 1]
    if present.all():
        return body
    t = np.arange(len(body))
    flat = body.reshape(len(body), -1).copy()
    for c in range(flat.shape[1]):
        flat[~present, c] = np.interp(t[~present], t[present], flat[present, c])
    return flat.reshape(body.shape)


def kinect_to_smpl22(kinect: np.ndarray) -> np.ndarray:
    """Map (T, 25, 3) Kinect v2 joints onto (T, 22, 3) SMPL joints (table in the module doc)."""
    a = np.array([m[0] for m in KINECT_TO_SMPL22])
    b = np.array([m[1] for m in KINECT_TO_SMPL22])
    w = np.array([m[2] for m in KINECT_TO_SMPL22])[None, :, None]
    return (1.0 - w) * kinect[:, a] + w * kinect[:, b]


class NtuSkeletonReader(MotionReader):
    """NTU RGB+D .skeleton files -> SMPL-22 joints at 30 fps (metres, Y up)."""

    name = "ntu-skeleton"
    suffixes = (".skeleton",)

    def read(self, path: Path) -> Motion:
        """See the module documentation for the choices made.

        Raises:
            MotionError: truncated or malformed file, no tracked body.
        """
        source = str(path)
        bodies = parse_skeleton(Path(path).read_text(), source)
        kinect = fill_missing(most_active_body(bodies, source), source)
        return Motion(kinect_to_smpl22(kinect), NTU_FPS)
