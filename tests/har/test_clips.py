"""SkeletonClips: validation, class alignment by name, bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.har.clips import SkeletonClips, concat_clips, training_classes


def _clips(labels, names, joints=22, frames=12, source="set"):
    arrays = [np.zeros((frames, joints, 3), np.float32) for _ in labels]
    return SkeletonClips(arrays, np.array(labels), names, [f"{source}_{i}" for i in range(len(labels))], source)


def test_relabel_matches_classes_by_name():
    a = _clips([0, 1, 1], ("kick", "punch"))
    b = a.relabel(("wave", "punch", "kick"))
    np.testing.assert_array_equal(b.labels, [2, 1, 1])
    assert b.class_names == ("wave", "punch", "kick")
    with pytest.raises(ValueError, match=r"\['kick'\]"):
        a.relabel(("punch",))


def test_training_classes_are_the_union_in_first_listed_order():
    real = _clips([1, 0], ("kick", "punch"), source="real")
    synth = _clips([0, 1, 2], ("punch", "wave", "kick"), source="synth")
    test = _clips([0, 1], ("kick", "punch"), source="test")
    assert training_classes([real, synth], test) == ("kick", "punch", "wave")
    merged = concat_clips([real, synth], ("kick", "punch", "wave"), "both")
    np.testing.assert_array_equal(merged.labels, [1, 0, 1, 2, 0])
    assert len(merged) == 5 and merged.ids[2] == "synth_0"


def test_test_classes_absent_from_train_are_an_error_naming_both_sets():
    real = _clips([0, 0], ("kick", "punch"), source="data/real")
    test = _clips([0, 1], ("kick", "punch"), source="data/test")
    with pytest.raises(ValueError, match=r"\['punch'\].*data/test.*data/real"):
        training_classes([real], test)


def test_mismatched_joint_counts_are_an_error():
    with pytest.raises(ValueError, match="mismatched joint counts"):
        SkeletonClips(
            [np.zeros((12, 22, 3)), np.zeros((12, 25, 3))], np.array([0, 0]), ("a",), ["x", "y"], "mixed"
        )
    real = _clips([0], ("a",), joints=22, source="real")
    synth = _clips([0], ("a",), joints=25, source="synth")
    with pytest.raises(ValueError, match="mismatched joint counts"):
        training_classes([real, synth], _clips([0], ("a",), source="test"))


def test_clips_shorter_than_the_temporal_kernel_are_named():
    clips = SkeletonClips(
        [np.zeros((n, 22, 3)) for n in (40, 8, 3)], np.array([0, 0, 0]), ("a",), ["ok", "short", "tiny"], "data/synth"
    )
    with pytest.raises(ValueError, match=r"data/synth: 2 clip\(s\).*9 frames: short \(8 frames\), tiny \(3 frames\)"):
        clips.check_min_frames(9)


def test_inconsistent_lengths_and_labels_are_rejected():
    with pytest.raises(ValueError, match="differ"):
        SkeletonClips([np.zeros((12, 22, 3))], np.array([0, 0]), ("a",), ["x"], "s")
    with pytest.raises(ValueError, match="index the 1 class names"):
        SkeletonClips([np.zeros((12, 22, 3))], np.array([3]), ("a",), ["x"], "s")
    with pytest.raises(ValueError, match=r"\[T, V, 3\]"):
        SkeletonClips([np.zeros((12, 66))], np.array([0]), ("a",), ["x"], "s")


def test_multi_body_clips_are_m_t_v_3_and_checked_like_single_bodies():
    clips = SkeletonClips(
        [np.zeros((2, 12, 25, 3)), np.zeros((1, 5, 25, 3)), np.zeros((12, 25, 3))], np.array([0, 0, 0]), ("a",),
        ["two", "short", "one"], "data/ntu",
    )
    assert clips.num_joints == 25
    with pytest.raises(ValueError, match=r"short \(5 frames\)"):
        clips.check_min_frames(9)
    with pytest.raises(ValueError, match="mismatched joint counts"):
        SkeletonClips([np.zeros((2, 12, 25, 3)), np.zeros((12, 22, 3))], np.array([0, 0]), ("a",), ["x", "y"], "mixed")
    with pytest.raises(ValueError, match=r"clip x must be \[T, V, 3\] or \[M, T, V, 3\]"):
        SkeletonClips([np.zeros((0, 12, 25, 3))], np.array([0]), ("a",), ["x"], "none")
