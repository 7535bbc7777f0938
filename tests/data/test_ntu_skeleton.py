"""NTU .skeleton reader: most active body, missing frames, 25 -> 22 joints, 30 fps."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import MotionError, joints_to_hml_vec
from mdm_kinemic.data.ntu_skeleton import (
    KINECT_TO_SMPL22,
    fill_missing,
    kinect_to_smpl22,
    most_active_body,
    parse_skeleton,
)
from mdm_kinemic.data.readers import get_reader


def _kinect_pose() -> np.ndarray:
    """A plausible standing Kinect v2 pose (25, 3), metres, facing the camera (-Z)."""
    p = np.zeros((25, 3))
    p[0] = (0, 0.0, 3)       # spine base
    p[1] = (0, 0.30, 3)      # spine mid
    p[20] = (0, 0.50, 3)     # spine shoulder
    p[2] = (0, 0.58, 3)      # neck
    p[3] = (0, 0.70, 3)      # head
    for side, sx in ((0, 1.0), (1, -1.0)):  # Kinect "left" = the subject's left
        s = 4 + 4 * side
        p[s] = (0.18 * sx, 0.48, 3)
        p[s + 1] = (0.22 * sx, 0.22, 3)
        p[s + 2] = (0.24 * sx, 0.0, 3)
        p[s + 3] = (0.25 * sx, -0.06, 3)
        h = 12 + 4 * side
        p[h] = (0.08 * sx, -0.02, 3)
        p[h + 1] = (0.09 * sx, -0.42, 3)
        p[h + 2] = (0.09 * sx, -0.82, 3)
        p[h + 3] = (0.09 * sx, -0.86, 2.88)
        p[21 + 2 * side] = (0.26 * sx, -0.12, 3)
        p[22 + 2 * side] = (0.25 * sx, -0.05, 2.98)
    # the subject faces the camera (-Z): the subject's left is the camera's +X... so turn it
    p[:, 0] *= -1
    return p


def _skeleton_text(frames: list[list[tuple[str, np.ndarray]]]) -> str:
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1 0.1 2")
            lines.append("25")
            lines += [f"{x:.6f} {y:.6f} {z:.6f} 250 200 900 500 0.1 0.2 0.3 0.9 2" for x, y, z in joints]
    return "\n".join(lines) + "\n"


def test_most_active_body_missing_frames_and_mapping(tmp_path):
    pose = _kinect_pose()
    frames = []
    for t in range(12):
        mover = pose + np.array([0.02 * t, 0.0, 0.0])  # walks sideways
        still = pose + np.array([1.0, 0.0, 0.5])
        bodies = [("72057594037931101", still)]
        if t not in (0, 5, 6, 11):  # absent at both ends and on two interior frames
            bodies.append(("72057594037931102", mover))
        frames.append(bodies)
    path = tmp_path / "S001C001P001R001A043.skeleton"
    path.write_text(_skeleton_text(frames))
    motion = get_reader("ntu-skeleton").read(path)
    assert motion.fps == 30.0
    assert motion.joints.shape == (10, 22, 3)  # frames 1..10: ends cut
    pelvis_x = motion.joints[:, 0, 0]
    np.testing.assert_allclose(pelvis_x, pose[0, 0] + 0.02 * np.arange(1, 11), atol=1e-6)  # gaps 5, 6 interpolated
    np.testing.assert_allclose(motion.joints[0, 9], 0.75 * (pose[1] + [0.02, 0, 0]) + 0.25 * (pose[20] + [0.02, 0, 0]), atol=1e-6)
    # resampled to 20 fps and converted: 10 frames at 30 fps -> 7 at 20 fps -> 6 feature frames
    assert joints_to_hml_vec(motion.joints, motion.fps).shape == (6, 263)


def test_zero_coordinates_count_as_missing():
    pose = _kinect_pose()
    bodies = parse_skeleton(_skeleton_text([[("1", pose)], [("1", np.zeros((25, 3)))], [("1", pose)]]))
    assert np.isnan(bodies["1"][1]).all() and not np.isnan(bodies["1"][2]).any()
    np.testing.assert_allclose(fill_missing(bodies["1"])[1], pose)


def test_mapping_table_covers_the_22_joints():
    assert len(KINECT_TO_SMPL22) == 22
    kinect = np.random.default_rng(0).normal(size=(3, 25, 3))
    out = kinect_to_smpl22(kinect)
    np.testing.assert_array_equal(out[:, 0], kinect[:, 0])  # pelvis = spine base
    np.testing.assert_array_equal(out[:, 20], kinect[:, 6])  # left wrist = WristLeft


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3\n1\n", "truncated"),
        ("1\n1\n7 0 1 1 1 1 0 0 0 2\n20\n", "20 joints, expected 25"),
        ("two\n", "malformed"),
        ("2\n0\n0\n", "no body is tracked"),
    ],
)
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.skeleton"
    path.write_text(text)
    with pytest.raises(MotionError, match=message):
        get_reader("ntu-skeleton").read(path)


def test_most_active_body_needs_a_body():
    with pytest.raises(MotionError, match="no body"):
        most_active_body({"1": np.full((3, 25, 3), np.nan)})
