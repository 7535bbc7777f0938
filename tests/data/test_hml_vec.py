"""hml_vec: known geometry, round trips on real clips, HumanML3D's released features, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mdm_kinemic.data.hml_vec import (
    FOOT_CONTACT,
    LOCAL_VEL,
    RIC,
    ROOT_LIN_VEL,
    ROOT_ROT_VEL,
    ROOT_Y,
    ROT6D,
    HmlVecSettings,
    MotionError,
    joints_to_hml_vec,
    normalise_joints,
    recover_from_ric,
)
from mdm_kinemic.data.readers import get_reader
from mdm_kinemic.data.resample import resample
from mdm_kinemic.data.skeleton import REFERENCE_BONE_LENGTHS, bone_lengths, rest_pose


def test_standing_has_zero_root_velocity_and_all_contacts(standing):
    vec = joints_to_hml_vec(standing)
    assert vec.shape == (29, 263) and vec.dtype == np.float32
    np.testing.assert_allclose(vec[:, ROOT_ROT_VEL], 0.0, atol=1e-7)
    np.testing.assert_allclose(vec[:, ROOT_LIN_VEL], 0.0, atol=1e-7)
    np.testing.assert_allclose(vec[:, LOCAL_VEL], 0.0, atol=1e-7)
    assert (vec[:, FOOT_CONTACT] == 1.0).all()
    # root height of the reference skeleton standing on the floor: pelvis above the lowest joint
    ref = rest_pose()
    np.testing.assert_allclose(vec[:, ROOT_Y], -ref[:, 1].min(), atol=1e-6)


def test_one_metre_per_second_along_x_is_five_cm_per_frame(glide):
    # +1 m/s at 20 fps; the body faces +Z, so the motion is sideways (+X) in its own frame
    vec = joints_to_hml_vec(glide(60, (0.05, 0.0, 0.0)))
    np.testing.assert_allclose(vec[:, ROOT_LIN_VEL], np.tile([0.05, 0.0], (59, 1)), atol=1e-6)
    np.testing.assert_allclose(vec[:, ROOT_ROT_VEL], 0.0, atol=1e-7)
    # every joint moves 0.05 m per frame: squared step 0.0025 > 0.002, so no foot contact
    assert (vec[:, FOOT_CONTACT] == 0.0).all()
    np.testing.assert_allclose(vec[:, LOCAL_VEL].reshape(59, 22, 3)[..., 0], 0.05, atol=1e-6)


def test_slow_glide_keeps_contacts_below_threshold(glide):
    # 0.04 m per frame: squared step 0.0016 < HumanML3D's 0.002
    vec = joints_to_hml_vec(glide(20, (0.0, 0.0, 0.04)))
    assert (vec[:, FOOT_CONTACT] == 1.0).all()
    np.testing.assert_allclose(vec[:, ROOT_LIN_VEL], np.tile([0.0, 0.04], (19, 1)), atol=1e-6)


def test_velocity_is_resampled_from_other_frame_rates(glide):
    # the same physical motion (1 m/s) given at 60 fps: 1/60 m per frame
    vec = joints_to_hml_vec(glide(181, (1 / 60, 0.0, 0.0)), fps=60)
    assert vec.shape == (60, 263)
    np.testing.assert_allclose(vec[:, ROOT_LIN_VEL][:, 0], 0.05, atol=1e-6)


def test_normalised_clip_faces_plus_z_at_origin_on_the_floor(standing):
    turned = np.einsum("ij,tkj->tki", Rotation.from_euler("y", 130, degrees=True).as_matrix(), standing)
    moved = turned + np.array([3.0, 0.7, -2.0])
    canon = normalise_joints(moved)
    np.testing.assert_allclose(canon[0, 0, [0, 2]], 0.0, atol=1e-9)
    assert abs(canon[..., 1].min()) < 1e-9
    np.testing.assert_allclose(canon, normalise_joints(standing), atol=1e-9)
    np.testing.assert_allclose(bone_lengths(canon[0])[1:], REFERENCE_BONE_LENGTHS[1:], rtol=1e-9)


def test_first_frame_skeleton_keeps_the_clips_bone_lengths(standing):
    big = standing * 1.3
    canon = normalise_joints(big, HmlVecSettings(skeleton="first_frame"))
    np.testing.assert_allclose(bone_lengths(canon[5]), bone_lengths(big[0]), rtol=1e-9)


def test_floor_from_the_n_lowest_joints(standing):
    clip = standing.copy()
    clip[3, :, 1] -= 0.05  # one noisy frame 5 cm under the floor
    low1 = normalise_joints(clip, HmlVecSettings(floor_lowest_n=1))
    assert abs(low1[..., 1].min()) < 1e-12
    low20 = normalise_joints(clip, HmlVecSettings(floor_lowest_n=20))
    heights = np.sort(clip[..., 1], axis=None)[:20]
    np.testing.assert_allclose(low20[..., 1].min(), clip[..., 1].min() - heights.mean(), atol=1e-9)


def test_round_trip_on_real_bandai_clips(bandai_dir):
    reader = get_reader("bvh")
    files = sorted(bandai_dir.glob("*.bvh"))
    assert len(files) == 13
    for path in files:
        motion = reader.read(path)
        vec = joints_to_hml_vec(motion.joints, motion.fps)
        canon = normalise_joints(resample(motion.joints, motion.fps))
        recovered = recover_from_ric(vec)
        error = np.linalg.norm(recovered - canon[:-1], axis=-1)
        assert error.max() < 0.01, f"{path.name}: {error.max():.4f} m"


def test_round_trip_while_heading_crosses_180_degrees(standing):
    # a full turn on the spot, 9 degrees per frame: the heading passes +-180 degrees, where
    # HumanML3D's arcsin of the raw quaternion product flips the turn's sign
    angles = np.linspace(0.0, 2 * np.pi, 41)[:, None]
    spin = np.einsum("tij,tkj->tki", Rotation.from_euler("y", angles).as_matrix(), standing[:1].repeat(41, 0))
    vec = joints_to_hml_vec(spin, settings=HmlVecSettings(heading_sigma=0.0))
    # 9 degrees per frame to the left; the feature is the half-angle of the heading change
    np.testing.assert_allclose(vec[:, ROOT_ROT_VEL], -np.deg2rad(9.0) / 2, atol=1e-6)
    np.testing.assert_allclose(recover_from_ric(vec), normalise_joints(spin)[:-1], atol=1e-5)


def test_recover_from_ric_keeps_array_kind_and_leading_dims(bandai_dir):
    motion = get_reader("bvh").read(bandai_dir / "dataset-2_walk-turn-left_normal_001.bvh")
    vec = joints_to_hml_vec(motion.joints, motion.fps)
    out_np = recover_from_ric(vec)
    batch = torch.from_numpy(np.stack([vec, vec]))[:, None]  # [B, 1, T, 263]
    out_t = recover_from_ric(batch)
    assert isinstance(out_np, np.ndarray) and out_np.shape == (len(vec), 22, 3)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (2, 1, len(vec), 22, 3)
    np.testing.assert_allclose(out_t[1, 0].numpy(), out_np, atol=1e-6)
    # turning left: the walk curves towards +X (the body's left when facing +Z)
    assert out_np[-1, 0, 0] > 0.5


def test_ric_is_root_relative_in_the_heading_frame(glide):
    vec = joints_to_hml_vec(glide(10, (0.05, 0.0, 0.0)))
    ric = vec[:, RIC].reshape(-1, 21, 3)
    canon = normalise_joints(glide(10, (0.05, 0.0, 0.0)))
    expected = canon[:-1, 1:] - canon[:-1, :1] * np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(ric, expected, atol=1e-6)


def test_reproduces_released_humanml3d_features(shared_data):
    """HumanML3D's own processing of its released joints gives its released features.

    Needs new_joints/012314.npy and new_joint_vecs/012314.npy of github EricGuo5513/HumanML3D
    (MIT) under ../shared/data/humanml3d/. Frames within 80 of the end depend on the clip's
    original last frame (the heading filter pads there) and are not compared.
    """
    root = shared_data / "humanml3d"
    joints_path, vec_path = root / "new_joints" / "012314.npy", root / "new_joint_vecs" / "012314.npy"
    # Part of the shared data (its README): a missing file is an incomplete copy, not a reason to skip.
    assert joints_path.is_file() and vec_path.is_file(), f"HumanML3D clip 012314 missing from {root}"
    joints, released = np.load(joints_path), np.load(vec_path)
    np.testing.assert_allclose(recover_from_ric(released), joints, atol=1e-5)
    ours = joints_to_hml_vec(joints)
    n = len(ours) - 80
    np.testing.assert_allclose(ours[:n], released[:n], atol=1e-4)


def test_rot6d_block_of_a_bent_joint(standing):
    # Bend the left forearm (elbow 18 -> wrist 20, rest direction -Y) 60 degrees forward, to
    # (0, -cos 60, sin 60): the wrist's local rotation becomes R_x(-60), whose first two columns
    # are (1, 0, 0) and (0, cos 60, -sin 60). Block j-1 holds joint j (the root has none).
    theta = np.deg2rad(60.0)
    bent = standing.copy()
    forearm = np.linalg.norm(standing[0, 20] - standing[0, 18])
    bent[:, 20] = bent[:, 18] + forearm * np.array([0.0, -np.cos(theta), np.sin(theta)])
    rest = joints_to_hml_vec(standing)[:, ROT6D].reshape(-1, 21, 6)
    rot6d = joints_to_hml_vec(bent)[:, ROT6D].reshape(-1, 21, 6)
    np.testing.assert_allclose(rest[:, 19], np.tile([1, 0, 0, 0, 1, 0], (29, 1)), atol=1e-6)
    np.testing.assert_allclose(rot6d[:, 19], np.tile([1, 0, 0, 0, np.cos(theta), -np.sin(theta)], (29, 1)), atol=1e-6)
    others = np.arange(21) != 19
    np.testing.assert_allclose(rot6d[:, others], rest[:, others], atol=1e-6)


def test_foot_contacts_are_left_then_right(standing):
    # Swing only the left leg about the left hip, 0 and 30 degrees on alternate frames: the left
    # ankle and toe move tens of cm per frame (no contact), the right foot stays (contact).
    swing = Rotation.from_euler("x", -30, degrees=True).as_matrix()
    clip = standing.copy()
    hip = standing[0, 1]
    for t in range(1, len(clip), 2):
        clip[t, [4, 7, 10]] = hip + (standing[t, [4, 7, 10]] - hip) @ swing.T
    contacts = joints_to_hml_vec(clip)[:, FOOT_CONTACT]
    np.testing.assert_array_equal(contacts, np.tile([0.0, 0.0, 1.0, 1.0], (29, 1)))


def test_local_velocity_is_in_frame_ts_heading(standing):
    # Turn 9 degrees per frame about the root while gliding 5 cm per frame along X: feature frame t
    # holds the step p[t+1] - p[t] rotated by frame t's heading, the inverse of the turn so far.
    n, step = 20, np.array([0.05, 0.0, 0.0])
    angles = np.deg2rad(9.0) * np.arange(n)[:, None]
    turn = Rotation.from_euler("y", angles).as_matrix()
    clip = np.einsum("tij,tkj->tki", turn, standing[:n]) + np.arange(n)[:, None, None] * step
    settings = HmlVecSettings(heading_sigma=0.0)
    local_vel = joints_to_hml_vec(clip, settings=settings)[:, LOCAL_VEL].reshape(n - 1, 22, 3)
    canon = normalise_joints(clip, settings)
    heading = Rotation.from_euler("y", angles[:-1]).inv().as_matrix()
    expected = np.einsum("tij,tkj->tki", heading, canon[1:] - canon[:-1])
    np.testing.assert_allclose(local_vel, expected, atol=1e-6)
    np.testing.assert_allclose(local_vel[:, 0], Rotation.from_euler("y", angles[:-1]).inv().apply(step), atol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c: np.where(np.arange(len(c))[:, None, None] == 4, np.nan, c), "NaN or inf"),
        (lambda c: np.where(np.arange(len(c))[:, None, None] == 2, np.inf, c), "NaN or inf"),
        (lambda c: c[:1], "fewer than the 2 needed"),
        (lambda c: c[:, :21], "expected 22 SMPL joints"),
        (lambda c: c[..., :2], r"shape \(T, 22, 3\)"),
        (lambda c: np.concatenate([c[:, :1], c[:, :1], c[:, 2:]], axis=1), "zero length"),
    ],
    ids=["nan", "inf", "too-short", "21-joints", "2d", "zero-bone"],
)
def test_bad_input_raises_a_clear_error(standing, make, message):
    with pytest.raises(MotionError, match=message):
        joints_to_hml_vec(make(standing))


def test_min_frames_setting(standing):
    with pytest.raises(MotionError, match="fewer than the 40 needed"):
        joints_to_hml_vec(standing, settings=HmlVecSettings(min_frames=40))


@pytest.mark.parametrize(
    "kwargs",
    [{"skeleton": "smpl"}, {"floor_lowest_n": 0}, {"feet_threshold": 0.0}, {"heading_sigma": -1.0}, {"min_frames": 1}],
)
def test_settings_validation_names_the_field(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        HmlVecSettings(**kwargs)
