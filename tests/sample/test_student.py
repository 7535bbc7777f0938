"""A KineMIC checkpoint as sampling reads it: classes, prompts, action choice, Mean/Std lookup."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR
from mdm_kinemic.mdm.sampling.student import (
    SamplingInputError,
    StudentInfo,
    find_norm_stats,
    read_student_info,
    select_actions,
)

NAMES = ("run on the spot", "side kick", "stretch oneself")


def _info(tmp_path: Path, **section) -> StudentInfo:
    return StudentInfo(tmp_path / "model000000005.pt", NAMES, tuple(f"p{i}" for i in range(3)),
                       {"num_actions": 3, **section}, {"dataset": "humanml"})


def _kinemic_folder(tmp_path: Path, section: dict | None, **extra) -> Path:
    folder = tmp_path / "save"
    folder.mkdir()
    args = {"dataset": "humanml", "layers": 2, **extra}
    if section is not None:
        args["kinemic"] = section
    (folder / "args.json").write_text(json.dumps(args))
    (folder / "model000000005.pt").write_bytes(b"adapters")
    return folder


@pytest.mark.parametrize(
    "names, indices, expected",
    [
        ((), (), [0, 1, 2]),
        (("Side  Kick.",), (), [1]),
        (("stretch oneself", "run on the spot"), (), [2, 0]),
        ((), (2, 2), [2, 2]),
        (("side kick",), (0,), [1, 0]),
    ],
)
def test_select_actions_by_name_index_or_all(tmp_path, names, indices, expected):
    assert select_actions(_info(tmp_path), names=names, indices=indices) == expected


def test_unknown_action_lists_the_valid_ones(tmp_path):
    with pytest.raises(SamplingInputError) as err:
        select_actions(_info(tmp_path), names=["jump"])
    assert "action 'jump' is not a class" in str(err.value)
    assert "0: 'run on the spot', 1: 'side kick', 2: 'stretch oneself'" in str(err.value)
    with pytest.raises(SamplingInputError, match=r"--action_index 3 is out of range .* \(3 classes\)"):
        select_actions(_info(tmp_path), indices=[3])


def test_read_student_info_prompts_default_to_the_mining_template(tmp_path):
    folder = _kinemic_folder(tmp_path, {"num_actions": 3, "class_names": list(NAMES)})
    info = read_student_info(folder)  # a folder means its latest model file
    assert info.model_path == folder / "model000000005.pt"
    assert info.class_names == NAMES
    assert info.class_prompts == ("a person performs a run on the spot.", "a person performs a side kick.",
                                  "a person performs a stretch oneself.")


def test_read_student_info_uses_recorded_prompts(tmp_path):
    prompts = ["a person runs in place.", "a person does a side kick.", "a person stretches."]
    folder = _kinemic_folder(tmp_path, {"num_actions": 3, "class_names": list(NAMES), "class_prompts": prompts})
    assert read_student_info(folder / "model000000005.pt").class_prompts == tuple(prompts)
    (folder / "args.json").write_text(json.dumps({"kinemic": {"num_actions": 3, "class_prompts": prompts[:2]}}))
    with pytest.raises(SamplingInputError, match="class_prompts has 2 prompts for 3 classes"):
        read_student_info(folder)


def test_a_plain_mdm_checkpoint_is_refused(tmp_path):
    folder = _kinemic_folder(tmp_path, None)
    with pytest.raises(SamplingInputError, match="is a plain MDM checkpoint .* has no 'kinemic' section"):
        read_student_info(folder)
    with pytest.raises(SamplingInputError, match="does not exist"):
        read_student_info(tmp_path / "nowhere.pt")


def _stats(folder: Path, value: float, width: int = 263) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "Mean.npy", np.full(width, value, dtype=np.float32))
    np.save(folder / "Std.npy", np.ones(width, dtype=np.float32))
    return folder


def test_norm_stats_lookup_order(tmp_path, caplog):
    info = StudentInfo(tmp_path / "save" / "model000000005.pt", NAMES, NAMES, {"norm_stats": str(tmp_path / "rec")},
                       {"dataset": "humanml", "data_dir": str(tmp_path / "data")})
    upstream = tmp_path / "mdm"
    _stats(upstream / "dataset" / "HumanML3D", 5.0)
    _stats(tmp_path / "data", 4.0)
    _stats(tmp_path / "save", 3.0)
    _stats(tmp_path / "rec", 2.0)
    _stats(tmp_path / "flag", 1.0)
    assert find_norm_stats(info, tmp_path / "flag", upstream)[0][0] == 1.0
    found = []
    for folder in ("rec", "save", "data", "mdm/dataset/HumanML3D"):
        mean, _, where = find_norm_stats(info, None, upstream)
        found.append((float(mean[0]), where.relative_to(tmp_path).as_posix()))
        (tmp_path / folder / "Std.npy").unlink()
    assert found == [(2.0, "rec"), (3.0, "save"), (4.0, "data"), (5.0, "mdm/dataset/HumanML3D")]
    # last, for HumanML3D's 263 features: the copies shipped with the package (logged)
    with caplog.at_level(logging.INFO):
        mean, _, where = find_norm_stats(info, None, upstream)
    assert where == HUMANML3D_STATS_DIR
    np.testing.assert_array_equal(mean, np.load(HUMANML3D_STATS_DIR / "Mean.npy"))
    assert "using HumanML3D's, shipped in" in caplog.text
    kit = StudentInfo(info.model_path, NAMES, NAMES, {}, {"dataset": "kit"})
    with pytest.raises(SamplingInputError, match="no Mean.npy/Std.npy .* Fix: pass --norm_stats"):
        find_norm_stats(kit, None, upstream)


def test_norm_stats_of_another_width_are_refused(tmp_path):
    info = _info(tmp_path)
    with pytest.raises(SamplingInputError, match=r"shapes \(251,\) and \(251,\).* 263 features"):
        find_norm_stats(info, _stats(tmp_path / "kit", 0.0, width=251))


def test_sampling_reuses_the_clip_weights_recorded_by_the_training_run(tmp_path, monkeypatch, caplog):
    from mdm_kinemic.mdm.sampling.student import run_clip_weights

    weights = tmp_path / "ViT-B-32.pt"
    weights.write_bytes(b"weights")

    def info(recorded):
        return _info(tmp_path, train={"upstream": {"mdm_root": None, "clip_weights": recorded}})

    monkeypatch.delenv("MDM_KINEMIC_CLIP_WEIGHTS", raising=False)
    with caplog.at_level(logging.INFO):
        assert run_clip_weights(None, info(str(weights))) == str(weights)
    assert "CLIP weights of the training run" in caplog.text
    assert run_clip_weights(None, info("random")) == "random"
    assert run_clip_weights(None, info(str(tmp_path / "gone.pt"))) is None  # moved away: the caches
    assert run_clip_weights(None, info(None)) is None
    assert run_clip_weights(None, _info(tmp_path)) is None  # no training record
    assert run_clip_weights("random", info(str(weights))) == "random"  # --clip_weights wins
    monkeypatch.setenv("MDM_KINEMIC_CLIP_WEIGHTS", "random")
    assert run_clip_weights(None, info(str(weights))) is None  # and so does the variable
