"""The classes that have clips in a split (data/fewshot_clips.py), on the NTU-VIBE miniature."""

from __future__ import annotations

import pytest

from mdm_kinemic.data.fewshot_clips import FewShotClipsError, classes_with_clips, fewshot_lengths


def test_of_120_ntu_names_only_the_classes_with_clips_are_listed(ntu_vibe):
    wanted = ["action 98", "action 101", "action 103"]
    assert classes_with_clips(ntu_vibe, "S0000", "xsub") == wanted
    assert classes_with_clips(ntu_vibe, None, "xsub") == wanted  # every clip with a motion file
    lengths, ids = fewshot_lengths(wanted, ntu_vibe, "S0000", "xsub")
    assert [len(ids[c]) for c in range(3)] == [2, 2, 2] and lengths[0] == [5, 5]


def test_a_folder_without_labelled_clips_is_one_clear_error(tmp_path):
    (tmp_path / "new_joint_vecs").mkdir()
    (tmp_path / "labels.txt").write_text("")
    (tmp_path / "classes.txt").write_text("walk\n")
    with pytest.raises(FewShotClipsError, match="holds no labelled clip"):
        classes_with_clips(tmp_path, None, "xsub")
