"""HumanML3D layout: write then read back, memory mapping, texts with sub-spans, Mean/Std, mirrors."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.core.mining import Caption
from mdm_kinemic.data.hml_vec import joints_to_hml_vec, recover_from_ric
from mdm_kinemic.data.humanml3d import (
    HumanML3D,
    format_text_line,
    mean_std,
    mirror_caption,
    mirror_id,
    parse_text_line,
    write_clip,
    write_mean_std,
    write_split,
)
from mdm_kinemic.data.skeleton import REFERENCE_BONE_LENGTHS, swap_left_right


@pytest.fixture()
def dataset(tmp_path, glide):
    vec = joints_to_hml_vec(glide(41, (0.0, 0.0, 0.03)))
    write_clip(tmp_path, "000001", vec, captions=["a person walks forward.", ("then turns left.", 1.0, 1.5)])
    write_clip(tmp_path, "000002", vec[:10])
    write_split(tmp_path, "train", ["000002", "000001"])
    return HumanML3D(tmp_path), vec


def test_written_clips_read_back_lazily(dataset):
    data, vec = dataset
    assert data.ids == ["000001", "000002"] and len(data) == 2
    motion = data.motion("000001")
    assert isinstance(motion, np.memmap) and motion.dtype == np.float32 and motion.shape == (40, 263)
    np.testing.assert_array_equal(motion, vec)
    assert data.length("000002") == 10
    np.testing.assert_allclose(data.joints("000001"), recover_from_ric(vec), atol=1e-6)
    assert data.split("train") == ["000002", "000001"]
    assert "000001" in data and "999999" not in data
    with pytest.raises(KeyError, match="999999"):
        data.motion("999999")


def test_captions_turn_seconds_into_20fps_frames(dataset):
    data, _ = dataset
    assert data.captions("000001") == [
        Caption("000001", "a person walks forward.", 0, 0),
        Caption("000001", "then turns left.", 20, 30),
    ]
    assert data.captions("000002") == []
    line = (data.root / "texts" / "000001.txt").read_text().splitlines()[1]
    assert line.startswith("then turns left.#") and line.endswith("#1.0#1.5")


def test_text_line_format():
    line = format_text_line("a man kicks.", 0.0, 0.0, tokens="a/DET man/NOUN kick/VERB")
    assert line == "a man kicks.#a/DET man/NOUN kick/VERB#0.0#0.0"
    assert parse_text_line("a man kicks.#a/DET#nan#nan", "x") == Caption("x", "a man kicks.", 0, 0)
    assert parse_text_line("jumps.#jump/VERB#2.35#4.0", "x") == Caption("x", "jumps.", 47, 80)
    with pytest.raises(ValueError, match="caption#tokens#start#end"):
        parse_text_line("no fields here", "x", "texts/x.txt")
    with pytest.raises(ValueError, match="'#'"):
        format_text_line("a #hashtag")


def test_mean_std_follows_humanml3d_grouping():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 263)), rng.normal(size=(5, 263)) * 3
    mean, std = mean_std([a, b])
    both = np.concatenate([a, b])
    np.testing.assert_allclose(mean, both.mean(0), rtol=1e-5)
    raw = both.std(0)
    for lo, hi in [(0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263)]:
        np.testing.assert_allclose(std[lo:hi], raw[lo:hi].mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="no frames"):
        mean_std([])


def test_mean_std_files(tmp_path, dataset):
    data, _ = dataset
    with pytest.raises(FileNotFoundError, match="Mean.npy"):
        _ = data.mean
    write_mean_std(data.root, np.zeros(263), np.ones(263))
    fresh = HumanML3D(data.root)
    assert fresh.mean.shape == fresh.std.shape == (263,) and fresh.std.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(263,\)"):
        write_mean_std(tmp_path, np.zeros(262), np.ones(263))


def test_mirrored_ids_and_captions(tmp_path, glide):
    assert mirror_id("000021") == "M000021"
    assert mirror_caption("Left hand up, then the right-hand. leftover") == "Right hand up, then the left-hand. leftover"
    clip = glide(30, (0.03, 0.0, 0.0))
    write_clip(tmp_path, "000021", joints_to_hml_vec(clip), captions=["waves the left hand"])
    mirrored = swap_left_right(clip)
    write_clip(tmp_path, mirror_id("000021"), joints_to_hml_vec(mirrored), captions=[mirror_caption("waves the left hand")])
    data = HumanML3D(tmp_path)
    assert data.ids == ["000021", "M000021"]
    assert data.captions("M000021")[0].text == "waves the right hand"
    # mirrored sideways glide: +X becomes -X in the body frame; the root path is rescaled by the
    # right leg's length ratio, and the mirrored right leg is the reference skeleton's left one
    ratio = (REFERENCE_BONE_LENGTHS[5] + REFERENCE_BONE_LENGTHS[8]) / (REFERENCE_BONE_LENGTHS[4] + REFERENCE_BONE_LENGTHS[7])
    np.testing.assert_allclose(data.motion("M000021")[:, 1], -ratio * data.motion("000021")[:, 1], atol=1e-6)


def test_swap_left_right_is_an_involution():
    joints = np.random.default_rng(1).normal(size=(4, 24, 3))
    np.testing.assert_array_equal(swap_left_right(swap_left_right(joints)), joints)
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        swap_left_right(joints[:, :23])


def test_bad_writes_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="plain file stem"):
        write_clip(tmp_path, "../x", np.zeros((3, 263)))
    with pytest.raises(ValueError, match=r"\(T, 263\)"):
        write_clip(tmp_path, "x", np.zeros((3, 262)))
    with pytest.raises(FileNotFoundError, match="new_joint_vecs"):
        HumanML3D(tmp_path / "nothing")
