"""Labels and captions from file names: Bandai Namco, NTU, folders; caption templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdm_kinemic.data.labelling import (
    DEFAULT_TEMPLATES,
    check_template,
    clip_label,
    detect_label_source,
)


@pytest.mark.parametrize(
    ("name", "label", "caption"),
    [
        ("dataset-2_run_exhausted_001.bvh", "run", "a person runs in an exhausted way."),
        ("dataset-1_walk_normal_002.bvh", "walk", "a person walks."),
        ("dataset-2_raise-up-right-hand_active_001.bvh", "raise-up-right-hand", "a person raises the right hand in an active way."),
        ("dataset-1_bow_old_001.bvh", "bow", "a person bows like an old person."),
        ("dataset-3_cartwheel_sleepy_001.bvh", "cartwheel", "a person cartwheel in a sleepy way."),
    ],
)
def test_bandai_names(name, label, caption):
    result = clip_label(Path(name), "bandai")
    assert result.label == label
    assert DEFAULT_TEMPLATES["bandai"].format(**result.fields) == caption


def test_ntu_and_folder_labels():
    names = [f"name {k}" for k in range(120)]
    ntu = clip_label(Path("S018C003P043R001A104.skeleton"), "ntu", names)
    assert ntu.label == "name 103" and DEFAULT_TEMPLATES["other"].format(**ntu.fields) == "a person performs name 103."
    assert clip_label(Path("S018C003P043R001A104.skeleton"), "ntu").label == "A104"
    assert clip_label(Path("mocap/side_kick/take3.npy"), "parent_dir").fields["label"] == "side kick"
    assert clip_label(Path("x.npy"), "none").fields == {}
    with pytest.raises(ValueError, match="not a Bandai Namco name"):
        clip_label(Path("walk.bvh"), "bandai")


def test_detect_label_source():
    assert detect_label_source([Path("dataset-1_walk_normal_001.bvh")]) == "bandai"
    assert detect_label_source([Path("S001C001P001R001A001.skeleton")]) == "ntu"
    assert detect_label_source([Path("dataset-1_walk_normal_001.bvh"), Path("other.bvh")]) == "parent_dir"


def test_template_fields_are_checked():
    check_template("a person {action} ({style})")
    with pytest.raises(ValueError, match=r"unknown fields \['verb'\]"):
        check_template("a person {verb}")
    with pytest.raises(ValueError, match="not a valid format string"):
        check_template("a person {action")
