"""BVH reader: forward kinematics against hand-computed poses, channel orders, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.data.bvh import BvhError, parse_bvh, read_bvh


def _rx(deg):
    a = np.deg2rad(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _ry(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rz(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _bvh(root_order: str, frames: list[str], child_channels: str = "CHANNELS 1 Xrotation") -> str:
    return f"""HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {root_order}
  JOINT Spine
  {{
    OFFSET 0 10 0
    {child_channels}
    JOINT Head
    {{
      OFFSET 0 5 0
      CHANNELS 0
      End Site
      {{
        OFFSET 0 1 0
      }}
    }}
  }}
}}
MOTION
Frames: {len(frames)}
Frame Time: 0.0333333
""" + "\n".join(frames) + "\n"


def test_forward_kinematics_matches_hand_computation():
    motion = parse_bvh(_bvh("Zrotation Xrotation Yrotation", ["1 2 3 90 0 0 0", "0 0 0 0 0 0 90"]))
    assert motion.names == ["Hips", "Spine", "Head"]
    assert motion.fps == 30.0
    pos = motion.positions()
    assert pos.shape == (2, 3, 3)
    # frame 0: root at (1,2,3) turned 90 degrees about Z: +Y bones point to -X
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [-9, 2, 3], [-14, 2, 3]], atol=1e-9)
    # frame 1: only the spine bends 90 degrees about X: the head bone turns from +Y to +Z
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 10, 0], [0, 10, 5]], atol=1e-9)


@pytest.mark.parametrize(
    ("order", "matrix"),
    [
        ("Zrotation Xrotation Yrotation", lambda z, x, y: _rz(z) @ _rx(x) @ _ry(y)),
        ("Xrotation Yrotation Zrotation", lambda z, x, y: _rx(x) @ _ry(y) @ _rz(z)),
        ("Yrotation Zrotation Xrotation", lambda z, x, y: _ry(y) @ _rz(z) @ _rx(x)),
    ],
)
def test_rotation_channels_compose_in_file_order(order, matrix):
    angles = {"Z": 30.0, "X": -50.0, "Y": 70.0}
    values = " ".join(str(angles[c[0]]) for c in order.split())
    pos = parse_bvh(_bvh(order, [f"0 0 0 {values} 0"])).positions()
    expected_spine = matrix(angles["Z"], angles["X"], angles["Y"]) @ np.array([0.0, 10.0, 0.0])
    np.testing.assert_allclose(pos[0, 1], expected_spine, atol=1e-9)


def test_position_channels_replace_the_offset():
    text = _bvh("Zrotation Xrotation Yrotation", ["0 0 0 0 0 0 0 0 7 0"], "CHANNELS 4 Xposition Yposition Zposition Xrotation")
    pos = parse_bvh(text).positions()
    # the spine's position channels (0, 0, 7) stand in for its OFFSET (0, 10, 0)
    np.testing.assert_allclose(pos[0, 1], [0, 0, 7], atol=1e-9)


def test_real_bandai_file_reads(bandai_dir):
    motion = read_bvh(bandai_dir / "dataset-1_walk_normal_002.bvh")
    assert len(motion.joints) == 22 and motion.names[0] == "joint_Root"
    assert motion.values.shape == (31, 22 * 6)
    pos = motion.positions()
    # hips about 94 cm above the floor in centimetres
    assert 80 < pos[0, motion.names.index("Hips"), 1] < 100


def test_truncated_motion_is_reported():
    text = _bvh("Zrotation Xrotation Yrotation", ["0 0 0 0 0 0 0", "0 0 0 0 0 0 0", "0 0 0"])
    with pytest.raises(BvhError, match="truncated MOTION: 3 frames x 7 channels declared, only 2 complete"):
        parse_bvh(text, "clip.bvh")


def test_file_cut_inside_the_hierarchy_is_reported():
    text = _bvh("Zrotation Xrotation Yrotation", ["0 0 0 0 0 0 0"])
    with pytest.raises(BvhError, match="no MOTION section"):
        parse_bvh(text[:120], "cut.bvh")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("Xrotation\n", "Wrotation\n"), "unknown channel"),
        (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), "does not start with HIERARCHY"),
        (lambda t: t.replace("Frame Time: 0.0333333", "Frame Time: 0"), "Frame Time must be positive"),
        (lambda t: t.replace("0 0 0 0 0 0 0", "0 0 0 0 0 0 x"), "non-numeric"),
        (lambda t: t.replace("0 0 0 0 0 0 0", "0 0 0 0 0 0 0 0"), "more than"),
        (lambda t: t.replace("  }\n}\nMOTION", "  }\nMOTION"), "unclosed"),
    ],
    ids=["channel", "header", "frame-time", "non-numeric", "extra-values", "unbalanced"],
)
def test_malformed_files_raise_bvh_error(edit, message):
    with pytest.raises(BvhError, match=message):
        parse_bvh(edit(_bvh("Zrotation Xrotation Yrotation", ["0 0 0 0 0 0 0"])), "bad.bvh")
