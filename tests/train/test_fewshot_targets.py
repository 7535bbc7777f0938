"""The run's target clips: split reading, class numbering, and the bad-input errors (upstream-free)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mdm_kinemic.training.fewshot_targets import load_fewshot_targets, target_text
from mdm_kinemic.training.settings import FewShotDataSettings


def settings(root, **kw) -> FewShotDataSettings:
    return FewShotDataSettings(target_data=str(root), source_data="unused", **kw)


def test_split_targets_are_numbered_by_increasing_dataset_class(tiny_data):
    targets = load_fewshot_targets(settings(tiny_data["target"], shots=2), seed=0)
    split = tiny_data["target"] / "splits/fewshot/S0000/xsub"
    assert targets.ids == split.joinpath("train.txt").read_text().split()
    assert targets.labels == [0, 0, 1, 1]
    assert targets.dataset_classes == [0, 1] and targets.class_names == ["side kick", "wave"]
    stored = np.load(tiny_data["target"] / "new_joint_vecs" / f"{targets.ids[0]}.npy")
    np.testing.assert_array_equal(targets.motions[0], stored)
    assert targets.captions[0] == "a person does a side kick"
    prompts = [("a person performs a side kick.",), ("a person performs a wave.",)]
    assert target_text(targets, prompts, "prompt")[2] == "a person performs a wave."
    assert target_text(targets, prompts, "caption")[2] == "a person does a wave"


def test_fewer_shots_than_asked_is_an_error(tiny_data):
    with pytest.raises(ValueError, match=r"classes \{0: 2, 1: 2\} \(class: clips\) have fewer than the 3 shots.*--shots 2"):
        load_fewshot_targets(settings(tiny_data["target"], shots=3), seed=0)


def test_fewer_shots_takes_the_first_of_each_class(tiny_data):
    targets = load_fewshot_targets(settings(tiny_data["target"], shots=1), seed=0)
    assert len(targets.ids) == 2 and targets.labels == [0, 1]


def test_split_class_absent_from_the_target_data_is_an_error(tiny_data, tmp_path):
    root = tmp_path / "target"
    shutil.copytree(tiny_data["target"], root)
    meta = root / "splits/fewshot/S0000/meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "class_list": [0, 1, 5]}))
    with pytest.raises(ValueError, match=r"lists classes \[5\].*holds no clip of them"):
        load_fewshot_targets(settings(root, shots=2), seed=0)


def test_missing_split_names_the_available_ones(tiny_data):
    with pytest.raises(FileNotFoundError, match=r"no few-shot split 'S0009' \(available: \['S0000'\]\)"):
        load_fewshot_targets(settings(tiny_data["target"], fewshot_split="S0009"), seed=0)


def test_drawn_targets_are_seeded_and_absent_classes_rejected(tiny_data):
    draw = dict(fewshot_split=None, classes=(1,), shots=2)
    a = load_fewshot_targets(settings(tiny_data["target"], **draw), seed=3)
    b = load_fewshot_targets(settings(tiny_data["target"], **draw), seed=3)
    assert a.ids == b.ids and a.labels == [0, 0] and a.class_names == ["wave"]
    with pytest.raises(ValueError, match=r"classes \[7\] have no clip in the target data"):
        load_fewshot_targets(settings(tiny_data["target"], fewshot_split=None, classes=(1, 7)), seed=0)
