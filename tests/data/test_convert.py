"""The convert CLI: a HumanML3D-layout dataset from real BVH clips, skipped files with reasons."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.convert import ConvertSettings, convert, main
from mdm_kinemic.data.humanml3d import HumanML3D
from mdm_kinemic.data.labels import load_labelled
from mdm_kinemic.data.reader_base import ReaderSettings
from mdm_kinemic.data.skeleton import rest_pose

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def inputs(tmp_path, bandai_dir) -> Path:
    """Two real Bandai clips, one truncated copy, one with foreign joint names."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("dataset-2_run_exhausted_001.bvh", "dataset-2_raise-up-right-hand_active_001.bvh"):
        shutil.copy(bandai_dir / name, src / name)
    text = (bandai_dir / "dataset-1_walk_normal_002.bvh").read_text()
    (src / "dataset-1_walk_normal_002.bvh").write_text(text[: int(len(text) * 0.8)])
    (src / "dataset-1_bow_normal_009.bvh").write_text(
        (bandai_dir / "dataset-1_bow_normal_001.bvh").read_text().replace("UpperLeg_L", "LeftUpLeg")
    )
    return src


def test_cli_writes_a_labelled_dataset_and_reports_skips(tmp_path, inputs):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "mdm_kinemic.data.convert", "--format", "bvh", str(inputs), "--out", str(out),
         "--mirror", "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2, result.stderr  # files were skipped and --allow_partial was not given
    assert "convert: error: 2 of 4 files were skipped" in result.stderr and "--allow_partial" in result.stderr
    assert "Traceback" not in result.stderr
    assert "converted 2 of 4 files" in result.stdout
    assert "dataset-1_walk_normal_002.bvh: BvhError: " in result.stdout and "truncated MOTION" in result.stdout
    assert "dataset-1_bow_normal_009.bvh: UnknownJointError: " in result.stdout

    data = HumanML3D(out)
    assert data.ids == sorted(["dataset-2_run_exhausted_001", "dataset-2_raise-up-right-hand_active_001",
                               "Mdataset-2_run_exhausted_001", "Mdataset-2_raise-up-right-hand_active_001"])
    assert data.split("all") == data.ids
    assert data.captions("dataset-2_run_exhausted_001")[0].text == "a person runs in an exhausted way."
    assert data.captions("Mdataset-2_raise-up-right-hand_active_001")[0].text == "a person raises the left hand in an active way."
    # 147 frames at 30 fps -> 98 at 20 fps -> 97 feature frames
    assert data.motion("dataset-2_run_exhausted_001").shape == (97, 263)
    assert data.joints("dataset-2_run_exhausted_001").shape == (97, 22, 3)
    all_frames = np.concatenate([data.motion(i) for i in data.ids])
    np.testing.assert_allclose(data.mean, all_frames.mean(0), atol=1e-5)

    labelled = load_labelled(out)
    # classes of every input, skipped ones included, so indices do not depend on what failed
    assert labelled.class_names == ["bow", "raise-up-left-hand", "raise-up-right-hand", "run", "walk"]
    assert labelled.label_of("Mdataset-2_raise-up-right-hand_active_001") == 1
    assert sorted(set(labelled.labels)) == [1, 2, 3]

    report = json.loads((out / "convert_report.json").read_text())
    assert report["converted"] == 2 and len(report["skipped"]) == 2
    assert report["frames_20fps"] == 98 + 33  # 147 and 50 frames at 30 fps


def test_refuses_to_overwrite_and_rejects_bad_settings(tmp_path, inputs):
    out = tmp_path / "out"
    convert([inputs / "dataset-2_run_exhausted_001.bvh"], out, ConvertSettings("bvh"), progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert([inputs], out, ConvertSettings("bvh"), progress=False)
    with pytest.raises(ValueError, match="format must be one of"):
        ConvertSettings("fbx")
    with pytest.raises(ValueError, match="unknown fields"):
        ConvertSettings("bvh", caption_template="a person {verb}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert([tmp_path / "nowhere"], tmp_path / "o2", ConvertSettings("bvh"), progress=False)


def test_joint_arrays_by_folder_label_with_template(tmp_path, capsys):
    clip = np.repeat(rest_pose()[None], 45, axis=0) + np.linspace(0, 1, 45)[:, None, None] * [1.0, 0, 0]
    for label in ("side_kick", "wave"):
        (tmp_path / "in" / label).mkdir(parents=True)
        np.save(tmp_path / "in" / label / f"{label}_take1.npy", clip)
    np.save(tmp_path / "in" / "wave" / "broken.npy", np.where(np.arange(45)[:, None, None] == 3, np.nan, clip))
    report = main(["--format", "joints", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--fps", "30",
                   "--caption_template", "someone does: {label}", "--no-progress", "--allow_partial"])
    assert report["converted"] == 2 and report["label_source"] == "parent_dir"
    assert "broken.npy: MotionError: " in capsys.readouterr().out
    data = HumanML3D(tmp_path / "out")
    assert data.captions("side_kick_take1")[0].text == "someone does: side kick"
    assert data.length("wave_take1") == 29  # 45 frames at 30 fps -> 30 at 20 fps -> 29 features
    assert load_labelled(tmp_path / "out").class_names == ["side_kick", "wave"]


@pytest.mark.slow  # two spawned workers each import torch (~8 s on a busy 2-core machine)
def test_parallel_workers_give_the_same_features(tmp_path, inputs):
    # in-process first: the parent has then run torch, the case where forked workers deadlocked
    files = [inputs / "dataset-2_run_exhausted_001.bvh", inputs / "dataset-2_raise-up-right-hand_active_001.bvh"]
    convert(files, tmp_path / "a", ConvertSettings("bvh"), ReaderSettings(), progress=False)
    convert(files, tmp_path / "b", ConvertSettings("bvh", workers=2), ReaderSettings(), progress=False)
    a, b = HumanML3D(tmp_path / "a"), HumanML3D(tmp_path / "b")
    assert a.ids == b.ids
    for i in a.ids:
        np.testing.assert_array_equal(a.motion(i), b.motion(i))
