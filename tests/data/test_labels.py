"""Labelled sets: the generic labels file and the authors' NTU-VIBE layout."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mdm_kinemic.data.humanml3d import write_clip
from mdm_kinemic.data.labels import LabelledSet, load_labelled, ntu_label, write_labels


def _features(n: int = 5) -> np.ndarray:
    return np.zeros((n, 263), dtype=np.float32)


def test_generic_labels_round_trip(generic):
    labelled = load_labelled(generic)
    assert len(labelled) == 12 and labelled.class_names == ["walk", "run", "bow"]
    assert labelled.by_class() == {0: [f"clip{i:02d}" for i in range(5)], 1: [f"clip{i:02d}" for i in range(5, 9)],
                                   2: ["clip09", "clip10", "clip11"]}
    assert labelled.label_of("clip10") == 2
    assert labelled.dataset.length("clip00") == 5


def test_ntu_vibe_layout(ntu_vibe):
    everything = load_labelled(ntu_vibe)
    assert len(everything) == 9 and len(everything.class_names) == 120
    assert sorted(set(everything.labels)) == [98, 101, 103]
    train = load_labelled(ntu_vibe, "fewshot/S0000/xsub/train")
    assert train.labels == [98, 98, 101, 101, 103, 103]
    assert train.class_names[98] == "action 98"
    with pytest.raises(ValueError, match="1 of 4 listed clips have no new_joint_vecs"):
        load_labelled(ntu_vibe, "splits/fewshot/S0000/xsub/val")
    val = load_labelled(ntu_vibe, "splits/fewshot/S0000/xsub/val.txt", missing="skip")
    assert len(val) == 3 and val.labels == [98, 101, 103]


def test_ntu_labels_must_agree_with_the_action_number(ntu_vibe):
    y = ntu_vibe / "splits" / "fewshot" / "S0000" / "xsub" / "train_y.txt"
    y.write_text(y.read_text().replace("101", "100", 1))
    with pytest.raises(ValueError, match="action number says 101"):
        load_labelled(ntu_vibe, "fewshot/S0000/xsub/train")


def test_missing_ntu_class_names_names_the_fix(tmp_path):
    write_clip(tmp_path / "d", "S001C001P001R001A001", _features())
    with pytest.raises(FileNotFoundError, match="ntu_classes.txt"):
        load_labelled(tmp_path / "d")
    assert load_labelled(tmp_path / "d", class_names=["a"] * 120).labels == [0]
    os.environ["MDM_KINEMIC_NTU_CLASSES"] = str(tmp_path / "names.txt")
    try:
        (tmp_path / "names.txt").write_text("drink water\n" * 120)
        assert load_labelled(tmp_path / "d").class_names[0] == "drink water"
    finally:
        del os.environ["MDM_KINEMIC_NTU_CLASSES"]


def test_bad_labels(tmp_path, generic):
    with pytest.raises(ValueError, match="outside the 3 class names"):
        write_labels(tmp_path, ["a"], [3], ["x", "y", "z"])
    with pytest.raises(ValueError, match="tabs"):
        write_labels(tmp_path, ["a\tb"], [0], ["x"])
    with pytest.raises(ValueError, match="2 ids but 1 labels"):
        LabelledSet(tmp_path, ["a", "b"], [0], ["x"])
    with pytest.raises(ValueError, match="not an NTU clip name"):
        ntu_label("000021")
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        load_labelled(generic, "test")
    (generic / "labels.txt").write_text("clip00 0\n")
    with pytest.raises(ValueError, match="clip_id<TAB>class_index"):
        load_labelled(generic)
