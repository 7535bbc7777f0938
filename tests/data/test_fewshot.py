"""Few-shot splits: deterministic draws, exact shots, the authors' layout written and read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mdm_kinemic.data.fewshot import (
    FewShotSettings,
    main,
    read_fewshot,
    sample_fewshot,
    write_fewshot,
)
from mdm_kinemic.data.labels import LabelledSet, load_labelled


def test_fewshot_is_deterministic_exact_and_order_free(generic):
    labelled = load_labelled(generic)
    settings = FewShotSettings(shots=3, seed=7)
    a = sample_fewshot(labelled, settings)
    b = sample_fewshot(labelled, settings)
    shuffled = LabelledSet(generic, labelled.ids[::-1], labelled.labels[::-1], labelled.class_names)
    c = sample_fewshot(shuffled, settings)
    assert a.train.ids == b.train.ids == c.train.ids
    assert a.train.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert {k: len(v) for k, v in a.train.by_class().items()} == {0: 3, 1: 3, 2: 3}
    # val holds the clips that were not drawn, none of the shots
    assert len(a.val) == 3 and not set(a.val.ids) & set(a.train.ids)
    seeds = {tuple(sample_fewshot(labelled, FewShotSettings(3, s)).train.ids) for s in range(6)}
    assert len(seeds) > 1


def test_fewshot_written_lists_read_back_equal(generic):
    split = sample_fewshot(load_labelled(generic), FewShotSettings(shots=2, seed=3, class_list=(2, 0)))
    folder = write_fewshot(generic, split)
    assert folder.name == "S0000"
    assert json.loads((folder / "meta.json").read_text()) == {"class_list": [0, 2], "seed": 3, "shots": 2}
    back = read_fewshot(generic, "S0000")
    assert back.train.ids == split.train.ids and back.train.labels == split.train.labels
    assert back.val.ids == split.val.ids and back.val.labels == split.val.labels
    assert back.settings == split.settings
    # the authors' layout: also readable as a plain split through load_labelled
    assert load_labelled(generic, "fewshot/S0000/xsub/train").ids == split.train.ids
    with pytest.raises(FileExistsError):
        write_fewshot(generic, split, "S0000")
    assert write_fewshot(generic, split).name == "S0001"


def test_fewshot_reads_the_authors_split_and_draws_from_their_lists(ntu_vibe):
    authors = read_fewshot(ntu_vibe, "S0000")
    assert authors.settings.class_list == (98, 101, 103) and authors.settings.shots == 2
    assert len(authors.train) == 6 and len(authors.val) == 4  # the val clip without motion is kept
    train = load_labelled(ntu_vibe, "fewshot/S0000/xsub/train")
    val = load_labelled(ntu_vibe, "fewshot/S0000/xsub/val", missing="skip")
    ours = sample_fewshot(train, FewShotSettings(shots=1, seed=0), eval_set=val)
    assert ours.train.labels == [98, 101, 103] and ours.val.ids == sorted(val.ids[:1]) + val.ids[1:]


def test_fewshot_errors(generic):
    labelled = load_labelled(generic)
    with pytest.raises(ValueError, match=r"1 class has fewer clips than the 4 shots asked for \(2 '.*': 3 clips; class: clips\)\. Fix: pass --shots 3"):
        sample_fewshot(labelled, FewShotSettings(shots=4))
    with pytest.raises(ValueError, match="shots"):
        FewShotSettings(shots=0)
    with pytest.raises(ValueError, match="protocol"):
        FewShotSettings(protocol="a/b")


def test_fewshot_cli(generic, capsys):
    folder = main([str(generic), "--shots", "2", "--seed", "1", "--classes", "1", "2", "--split_id", "S0042"])
    assert folder.name == "S0042" and capsys.readouterr().out.strip() == str(folder)
    assert read_fewshot(generic, "S0042").train.labels == [1, 1, 2, 2]


NTU_VIBE_ENV = "MDM_KINEMIC_NTU_VIBE"


@pytest.mark.skipif(not os.environ.get(NTU_VIBE_ENV), reason=f"set {NTU_VIBE_ENV} to the authors' data/NTU-VIBE")
def test_the_authors_release(shared_data):
    root = Path(os.environ[NTU_VIBE_ENV])
    names = shared_data / "ntu" / "ntu_classes.txt"
    split = read_fewshot(root, "S0000", missing="skip", class_names=names)
    assert split.settings.class_list == (98, 101, 103) and split.settings.shots == 10
    assert {k: len(v) for k, v in split.train.by_class().items()} == {98: 10, 101: 10, 103: 10}
    assert [split.train.class_names[k] for k in (98, 101, 103)] == ["run on the spot", "side kick", "stretch oneself"]
    assert len(split.val) == 0  # the release ships only the 30 few-shot train clips
    labelled = load_labelled(root, class_names=names)
    assert sorted(labelled.ids) == sorted(split.train.ids)
    assert all(labelled.dataset.motion(i).shape[1] == 263 for i in labelled.ids)
