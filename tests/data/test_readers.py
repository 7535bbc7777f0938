"""Motion readers: joint maps, units, up axis, joint arrays, BVH on real clips, the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import MotionError
from mdm_kinemic.data.joint_maps import (
    BANDAI,
    CMU,
    JointMap,
    UnknownJointError,
    load_joint_map,
)
from mdm_kinemic.data.reader_base import (
    MotionReader,
    ReaderSettings,
    metres_per_unit,
    to_metres_y_up,
)
from mdm_kinemic.data.readers import get_reader, reader_names, register_reader
from mdm_kinemic.data.skeleton import SMPL22_JOINT_NAMES, rest_pose


def test_joint_map_picks_and_interpolates_joints():
    names = BANDAI.required_joints()
    positions = np.arange(len(names) * 3, dtype=np.float64).reshape(1, len(names), 3)
    out = BANDAI.apply(names, positions)
    assert out.shape == (1, 22, 3)
    np.testing.assert_array_equal(out[0, 0], positions[0, names.index("Hips")])
    chest, neck = positions[0, names.index("Chest")], positions[0, names.index("Neck")]
    np.testing.assert_allclose(out[0, SMPL22_JOINT_NAMES.index("spine3")], 0.65 * chest + 0.35 * neck)


def test_unknown_joint_names_are_listed():
    with pytest.raises(UnknownJointError, match=r"needs joints \['Hips'"):
        CMU.apply(["Pelvis", "Spine"], np.zeros((2, 2, 3)), source="clip.bvh")


def test_joint_map_from_json(tmp_path):
    mapping = dict(zip(SMPL22_JOINT_NAMES, [f"j{i}" for i in range(22)]))
    mapping["spine3"] = ["j6", "j12", 0.5]
    path = tmp_path / "map.json"
    path.write_text(json.dumps(mapping))
    jm = load_joint_map(str(path))
    assert jm.sources[9] == ("j6", "j12", 0.5)
    del mapping["head"]
    path.write_text(json.dumps(mapping))
    with pytest.raises(ValueError, match=r"missing \['head'\]"):
        load_joint_map(str(path))
    with pytest.raises(ValueError, match="not one of"):
        load_joint_map("mixamo")
    with pytest.raises(ValueError, match="weight in 0..1"):
        JointMap("bad", tuple(["a"] * 21 + [("a", "b", 2.0)]))


def test_units_auto_picks_the_unit_giving_human_legs():
    legs_m = rest_pose()[None]
    assert metres_per_unit("auto", legs_m) == 1.0
    assert metres_per_unit("auto", legs_m * 100) == 0.01
    assert metres_per_unit("auto", legs_m / 0.0254) == 0.0254
    assert metres_per_unit("auto", legs_m / 0.056444) == 0.056444
    assert metres_per_unit("0.5", legs_m) == 0.5


def test_z_up_becomes_y_up_right_handed():
    z_up = np.array([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = to_metres_y_up(z_up, ReaderSettings(units="m", up_axis="z"))
    np.testing.assert_allclose(out[0], [[0, 1, 0], [1, 0, 0], [0, 0, -1]])
    # a rotation, not a reflection: the triple product keeps its sign
    assert np.linalg.det(out[0]) == pytest.approx(np.linalg.det(z_up[0]))


@pytest.mark.parametrize("kwargs", [{"units": "furlong"}, {"units": "-1"}, {"up_axis": "x"}, {"fps": 0.0}, {"smpl_gender": "other"}])
def test_reader_settings_validation_names_the_field(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ReaderSettings(**kwargs)


def test_joints_reader_accepts_22_and_24_joints(tmp_path):
    clip = np.repeat(rest_pose()[None], 5, axis=0)
    np.save(tmp_path / "a.npy", clip)
    np.save(tmp_path / "b.npy", np.concatenate([clip, clip[:, 20:22]], axis=1))
    np.save(tmp_path / "c.npy", clip[:, :20])
    reader = get_reader("joints", ReaderSettings(fps=30.0))
    a, b = reader.read(tmp_path / "a.npy"), reader.read(tmp_path / "b.npy")
    assert a.fps == 30.0 and a.joints.shape == b.joints.shape == (5, 22, 3)
    np.testing.assert_allclose(a.joints, clip)
    with pytest.raises(MotionError, match=r"\(T, 22, 3\) or \(T, 24, 3\)"):
        reader.read(tmp_path / "c.npy")


def test_bvh_reader_gives_metres_y_up_facing_forward(bandai_dir):
    motion = get_reader("bvh").read(bandai_dir / "dataset-2_walk_normal_001.bvh")
    j = motion.joints
    assert motion.fps == 30.0 and j.shape == (273, 22, 3)
    leg = np.linalg.norm(j[0, 4] - j[0, 1]) + np.linalg.norm(j[0, 7] - j[0, 4])
    assert 0.7 < leg < 0.95  # centimetres read as metres
    assert j[0, 15, 1] > j[0, 0, 1] > j[0, 7, 1]  # head above pelvis above ankle: Y up
    # left is left: the facing from (right - left) hips points where the toes point
    # (a mirrored skeleton or swapped joint map would make them point opposite ways)
    across = (j[:, 2] - j[:, 1]) + (j[:, 17] - j[:, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    toes = (j[:, 10] - j[:, 7]) + (j[:, 11] - j[:, 8])
    cosine = np.einsum("ti,ti->t", forward[:, [0, 2]], toes[:, [0, 2]])
    cosine /= np.linalg.norm(forward[:, [0, 2]], axis=-1) * np.linalg.norm(toes[:, [0, 2]], axis=-1)
    assert cosine.min() > 0.5


def test_registry():
    assert {"bvh", "joints", "ntu-skeleton", "smpl"} <= set(reader_names())
    with pytest.raises(ValueError, match="registered formats"):
        get_reader("c3d")

    class Dup(MotionReader):
        name = "bvh"

    with pytest.raises(ValueError, match="already registered"):
        register_reader(Dup)
    with pytest.raises(NotImplementedError, match="MotionReader"):
        MotionReader().read(None)
