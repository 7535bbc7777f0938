"""Target/source split of a labelled corpus: disjoint domains, exact shots, the authors' layout, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.bench.bandai import main
from mdm_kinemic.bench.split import SplitError, SplitSettings, make_split
from mdm_kinemic.data.fewshot import read_fewshot
from mdm_kinemic.data.humanml3d import HumanML3D, mean_std, write_clip, write_mean_std
from mdm_kinemic.data.labels import load_labelled, write_labels

# content: clips (Bandai-like names and captions)
CONTENTS = {"wave-both-hands": 7, "run": 6, "wave-left-hand": 3, "dash": 2, "kick": 1}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A tiny labelled corpus: clip k of content c has every feature equal to 10 * c + k."""
    root = tmp_path / "corpus"
    ids, labels = [], []
    for c, (content, n) in enumerate(CONTENTS.items()):
        for k in range(n):
            clip_id = f"dataset-2_{content}_normal_{k:03d}"
            hml = np.full((5 + k, 263), 10.0 * c + k, dtype=np.float32)
            write_clip(root, clip_id, hml, joints=np.zeros((5 + k, 22, 3)), captions=[f"a person does {content}."])
            ids.append(clip_id)
            labels.append(c)
    write_labels(root, ids, labels, list(CONTENTS))
    write_mean_std(root, np.zeros(263), np.ones(263))
    return root


def test_domains_are_disjoint_and_complete(corpus, tmp_path):
    out = tmp_path / "bench"
    summary = make_split(corpus, out, SplitSettings(("run", "wave-both-hands"), shots=2, seed=1))
    source = load_labelled(out / "source")
    target = load_labelled(out / "target")
    # class order of the target follows the requested list; source keeps the corpus order
    assert target.class_names == ["runs", "waves both hands"]
    assert source.class_names == ["wave-left-hand", "dash", "kick"]
    assert {k: len(v) for k, v in target.by_class().items()} == {0: 6, 1: 7}
    assert {k: len(v) for k, v in source.by_class().items()} == {0: 3, 1: 2, 2: 1}
    assert not set(source.ids) & set(target.ids)
    assert all("run" not in i and "wave-both" not in i for i in source.ids)
    assert HumanML3D(out / "source").split("train") == source.ids
    # captions and motions travel unchanged
    clip = "dataset-2_dash_normal_001"
    assert HumanML3D(out / "source").captions(clip)[0].text == "a person does dash."
    np.testing.assert_array_equal(HumanML3D(out / "source").motion(clip), HumanML3D(corpus).motion(clip))
    assert summary["source"]["clips"] == 6


def test_fewshot_test_and_ceiling_lists(corpus, tmp_path):
    out = tmp_path / "bench"
    make_split(corpus, out, SplitSettings(("run", "wave-both-hands"), shots=2, seed=1))
    split = read_fewshot(out / "target", "S0000")
    assert split.settings.shots == 2 and split.settings.class_list == (0, 1)
    assert split.train.labels == [0, 0, 1, 1]
    train = load_labelled(out / "target", "train")
    test = load_labelled(out / "target", "test")
    full = load_labelled(out / "target", "full_train")
    assert train.ids == split.train.ids and test.ids == split.val.ids
    # undrawn clips: run 4 -> test 2, pool 2; wave 5 -> test 3, pool 2
    assert {k: len(v) for k, v in test.by_class().items()} == {0: 2, 1: 3}
    assert {k: len(v) for k, v in full.by_class().items()} == {0: 4, 1: 4}
    assert not set(test.ids) & set(full.ids)
    assert set(test.ids) | set(full.ids) == set(load_labelled(out / "target").ids)
    assert set(train.ids) <= set(full.ids)
    # the ceiling's other half = evaluator + validation (one each per class here), disjoint
    evaluator = load_labelled(out / "target", "evaluator")
    val = load_labelled(out / "target", "val")
    assert {k: len(v) for k, v in val.by_class().items()} == {0: 1, 1: 1}
    assert {k: len(v) for k, v in evaluator.by_class().items()} == {0: 1, 1: 1}
    assert set(evaluator.ids) | set(val.ids) == set(full.ids) - set(train.ids)
    assert not set(evaluator.ids) & set(val.ids)
    summary = json.loads((out / "split.json").read_text())
    assert summary["target"]["val_per_class"] == {"run": 1, "wave-both-hands": 1}


def test_validation_is_a_fifth_of_the_evaluator_half(tmp_path):
    from mdm_kinemic.bench.split import _carve_val
    from mdm_kinemic.data.labels import LabelledSet

    pool = LabelledSet(tmp_path, [f"c{k:02d}" for k in range(23)], [0] * 11 + [1] * 12, ["a", "b"])
    val, rest = _carve_val(pool, seed=0)
    # int(11 * 0.2) = 2, int(12 * 0.2) = 2
    assert {k: len(v) for k, v in val.by_class().items()} == {0: 2, 1: 2}
    assert len(rest.ids) == 19 and not set(val.ids) & set(rest.ids)
    assert _carve_val(pool, seed=0)[0].ids == val.ids


def test_a_split_of_the_older_layout_is_not_reused(corpus, tmp_path):
    out = tmp_path / "bench"
    make_split(corpus, out, SplitSettings(("run",), shots=2))
    old = json.loads((out / "split.json").read_text())
    del old["layout"]
    (out / "split.json").write_text(json.dumps(old))
    with pytest.raises(SplitError, match="older version"):
        make_split(corpus, out, SplitSettings(("run",), shots=2))


def test_normalisation_is_the_source_statistics(corpus, tmp_path):
    out = tmp_path / "bench"
    make_split(corpus, out, SplitSettings(("run",), shots=2))
    data = HumanML3D(out / "source")
    mean, std = mean_std(data.motion(i) for i in data.ids)
    np.testing.assert_allclose(data.mean, mean)
    np.testing.assert_allclose(HumanML3D(out / "target").mean, mean)
    np.testing.assert_allclose(HumanML3D(out / "target").std, std)
    # frame-weighted mean over the source (every content but run, c = 1): clip k of content c = 10 c + k, 5 + k frames
    frames = [(10.0 * c + k, 5 + k) for c, n in enumerate(CONTENTS.values()) for k in range(n) if c != 1]
    expected = sum(v * t for v, t in frames) / sum(t for _, t in frames)
    assert data.mean[0] == pytest.approx(expected, rel=1e-6)


def test_same_seed_same_split_and_rerun_is_idempotent(corpus, tmp_path):
    a = make_split(corpus, tmp_path / "a", SplitSettings(("wave-both-hands",), shots=3, seed=4))
    b = make_split(corpus, tmp_path / "b", SplitSettings(("wave-both-hands",), shots=3, seed=4))
    assert (tmp_path / "a/target/train.txt").read_text() == (tmp_path / "b/target/train.txt").read_text()
    assert make_split(corpus, tmp_path / "a", SplitSettings(("wave-both-hands",), shots=3, seed=4)) == a
    assert a["settings"] == b["settings"]
    with pytest.raises(SplitError, match="other settings"):
        make_split(corpus, tmp_path / "a", SplitSettings(("wave-both-hands",), shots=3, seed=5))


@pytest.mark.parametrize(
    ("contents", "shots", "match"),
    [
        (("swim",), 2, "swim not among the contents"),
        (tuple(CONTENTS), 1, "leave at least one"),
        (("dash",), 1, "need at least --shots 1 \\+ 4"),
        (("run",), 3, "run': 6.*--shots 3 \\+ 4.*lower --shots"),
        (("run",), 5, "run': 6"),
    ],
)
def test_bad_requests_raise_naming_the_fix(corpus, tmp_path, contents, shots, match):
    with pytest.raises(SplitError, match=match):
        make_split(corpus, tmp_path / "bench", SplitSettings(contents, shots=shots))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"target_contents": ()}, "at least one"), ({"target_contents": ("run", "run")}, "more than once"), ({"shots": 0}, "shots")],
)
def test_settings_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SplitSettings(**kwargs)


def test_cli_writes_the_split_and_reports_errors(corpus, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["--bandai_root", str(corpus), "--out", str(out), "--target_contents", "run,wave-both-hands", "--shots", "2"]) == 0
    assert json.loads((out / "split.json").read_text())["target"]["train_per_class"] == {"run": 2, "wave-both-hands": 2}
    assert main(["--bandai_root", str(corpus), "--out", str(tmp_path / "x"), "--target_contents", "swim"]) == 2
    assert "swim not among the contents" in capsys.readouterr().err
    assert main(["--bandai_root", str(tmp_path / "nothing"), "--out", str(tmp_path / "y")]) == 2
    assert "neither a converted" in capsys.readouterr().err


def test_target_class_names_are_verb_phrases(corpus, tmp_path):
    summary = make_split(corpus, tmp_path / "bench", SplitSettings(("wave-both-hands", "run"), shots=2))
    assert (tmp_path / "bench/target/classes.txt").read_text() == "waves both hands\nruns\n"
    assert summary["target"]["class_names"] == {"wave-both-hands": "waves both hands", "run": "runs"}


def test_contents_sharing_a_prompt_are_refused(tmp_path):
    root = tmp_path / "corpus"
    ids = [f"dataset-1_{c}_normal_{k:03d}" for c in ("walk-left", "walks-to-the-left", "bow") for k in range(4)]
    for clip_id in ids:
        write_clip(root, clip_id, np.zeros((5, 263), np.float32), np.zeros((5, 22, 3)))
    write_labels(root, ids, [k // 4 for k in range(12)], ["walk-left", "walks-to-the-left", "bow"])
    with pytest.raises(SplitError, match="share one class prompt"):
        make_split(root, tmp_path / "bench", SplitSettings(("walk-left", "walks-to-the-left"), shots=1))


def test_mirrored_source_clips(corpus, tmp_path):
    from mdm_kinemic.data.mirror import mirror_hml_vec

    # one wave-right-hand clip in the corpus: mirrored wave-left-hand clips take its label
    labelled = load_labelled(corpus)
    extra = "dataset-2_wave-right-hand_normal_000"
    write_clip(corpus, extra, np.arange(6 * 263, dtype=np.float32).reshape(6, 263),
               captions=["a person waves the right hand."])
    write_labels(corpus, labelled.ids + [extra], labelled.labels + [len(CONTENTS)],
                 list(CONTENTS) + ["wave-right-hand"])
    out = tmp_path / "bench"
    summary = make_split(corpus, out, SplitSettings(("run", "wave-both-hands"), shots=2, seed=1, mirror_source=True))
    source = load_labelled(out / "source")
    originals = [i for i in source.ids if not i.startswith("M")]
    assert sorted(i for i in source.ids if i.startswith("M")) == sorted("M" + i for i in originals)
    assert summary["source"]["clips"] == 14 and summary["source"]["mirrored_clips"] == 7
    assert json.loads((out / "split.json").read_text())["settings"]["mirror_source"] is True
    data = HumanML3D(out / "source")
    np.testing.assert_array_equal(data.motion("M" + extra), mirror_hml_vec(data.motion(extra)))
    assert data.captions("M" + extra)[0].text == "a person waves the left hand."
    label = dict(zip(source.ids, source.labels))
    names = source.class_names
    assert names[label["Mdataset-2_wave-left-hand_normal_000"]] == "wave-right-hand"
    assert names[label["M" + extra]] == "wave-left-hand"
    assert names[label["Mdataset-2_dash_normal_000"]] == "dash"
    # Mean/Std cover the mirrored clips: the mirror negates root rotation velocity, so its mean is 0
    mean, _ = mean_std(data.motion(i) for i in source.ids)
    np.testing.assert_allclose(np.load(out / "source" / "Mean.npy"), mean)
    assert abs(float(mean[0])) < 1e-5


def test_splits_without_mirroring_keep_their_settings_record(corpus, tmp_path):
    out = tmp_path / "bench"
    make_split(corpus, out, SplitSettings(("run", "wave-both-hands"), shots=2, seed=1))
    assert "mirror_source" not in json.loads((out / "split.json").read_text())["settings"]
    assert not any(i.startswith("M") for i in load_labelled(out / "source").ids)
