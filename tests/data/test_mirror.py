"""Mirrored hml_vec features: HumanML3D's M clips without re-conversion."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import HmlVecSettings, joints_to_hml_vec, recover_from_ric
from mdm_kinemic.data.humanml3d import mirror_caption
from mdm_kinemic.data.mirror import MIRROR_INDEX, MIRROR_SIGN, mirror_hml_vec
from mdm_kinemic.data.skeleton import swap_left_right

LEFT_WRIST, RIGHT_WRIST = 20, 21
PER_CLIP = HmlVecSettings(skeleton="first_frame")


def test_mirror_map_is_a_signed_involution():
    np.testing.assert_array_equal(MIRROR_INDEX[MIRROR_INDEX], np.arange(263))
    np.testing.assert_array_equal(MIRROR_SIGN * MIRROR_SIGN[MIRROR_INDEX], np.ones(263))
    features = np.random.default_rng(2).normal(size=(3, 7, 263)).astype(np.float32)
    twice = mirror_hml_vec(mirror_hml_vec(features))
    np.testing.assert_array_equal(twice, features)
    assert mirror_hml_vec(features).dtype == np.float32


@pytest.mark.parametrize("turn", [0.0, 0.03, -0.05])
def test_mirrored_features_equal_the_features_of_mirrored_joints(turn, wave):
    # HumanML3D's route: mirror the joints, then convert; ours: convert, then mirror the features
    joints = wave("left", turn=turn, noise=0.01)
    features = joints_to_hml_vec(joints, settings=PER_CLIP)
    expected = joints_to_hml_vec(swap_left_right(joints), settings=PER_CLIP)
    np.testing.assert_allclose(mirror_hml_vec(features), expected, atol=2e-5)


def test_recovered_joints_of_mirrored_features_are_the_mirrored_joints(wave):
    features = joints_to_hml_vec(wave("left", turn=0.04, noise=0.01))
    np.testing.assert_allclose(recover_from_ric(mirror_hml_vec(features)),
                               swap_left_right(recover_from_ric(features)), atol=1e-5)


def test_a_left_hand_wave_becomes_a_right_hand_wave(wave):
    joints = recover_from_ric(mirror_hml_vec(joints_to_hml_vec(wave("left"))))
    height = joints[..., 1] - joints[:, :1, 1]
    # the waving wrist swings about 0.2 m in height; the hanging one stays put
    assert height[:, RIGHT_WRIST].std() > 0.05
    assert height[:, LEFT_WRIST].std() < 1e-4
    # and it waves on the body's right side (-X in the heading frame of a body facing +Z)
    ric = mirror_hml_vec(joints_to_hml_vec(wave("left")))[:, 4:67].reshape(-1, 21, 3)
    assert (ric[:, RIGHT_WRIST - 1, 0] < -0.3).all()


def test_caption_swap_handles_left_and_right_words():
    assert mirror_caption("a person waves the left hand, then the Right one.") == \
        "a person waves the right hand, then the Left one."
    # whole words only; both directions in one caption swap together; twice is the identity
    assert mirror_caption("leftover bright LEFT") == "leftover bright RIGHT"
    text = "turns left and steps right#turn/VERB left/ADV#0.0#0.0"
    assert mirror_caption(text) == "turns right and steps left#turn/VERB right/ADV#0.0#0.0"
    assert mirror_caption(mirror_caption(text)) == text


def test_mirror_rejects_other_widths():
    with pytest.raises(ValueError, match="263"):
        mirror_hml_vec(np.zeros((4, 251)))
