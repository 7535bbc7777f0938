"""End to end through the data layer: loading HumanML3D-layout folders and the CLI smoke run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import joints_to_hml_vec, recover_from_ric
from mdm_kinemic.data.labels import write_labels
from mdm_kinemic.har.clips import load_clips
from mdm_kinemic.har.evaluate import main

REPO = Path(__file__).resolve().parents[2]


def _write_features_folder(root: Path, clips) -> Path:
    """A synthetic set as a sampler writes it: new_joint_vecs only, labels.txt, classes.txt."""
    (root / "new_joint_vecs").mkdir(parents=True)
    for clip_id, joints in zip(clips.ids, clips.joints):
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", joints_to_hml_vec(joints))
    write_labels(root, clips.ids, clips.labels.tolist(), clips.class_names)
    return root


def test_load_clips_reads_joints_and_recovers_features(make_clips, write_folder, tmp_path):
    clips = make_clips(1, 16, seed=0)
    joints_dir = write_folder(tmp_path / "real", clips)
    loaded = load_clips(joints_dir)
    assert loaded.ids == clips.ids and loaded.class_names == clips.class_names
    np.testing.assert_array_equal(loaded.labels, clips.labels)
    np.testing.assert_array_equal(loaded.joints[1], clips.joints[1])

    feats_dir = _write_features_folder(tmp_path / "synth", clips)
    recovered = load_clips(feats_dir)
    assert recovered.joints[0].shape == (15, 22, 3)  # T joint frames give T - 1 feature frames
    expected = recover_from_ric(np.load(feats_dir / "new_joint_vecs" / f"{clips.ids[2]}.npy"))
    np.testing.assert_allclose(recovered.joints[2], expected, atol=1e-6)
    with pytest.raises(ValueError, match="3 of 3 listed clips have no new_joints/ID.npy.*--missing skip"):
        load_clips(feats_dir, input_mode="joints")
    assert len(load_clips(feats_dir, input_mode="joints", missing="skip")) == 0


def test_load_clips_reads_25_joint_ntu_clips_given_directly(tmp_path):
    (tmp_path / "new_joints").mkdir()
    np.save(tmp_path / "new_joints" / "a.npy", np.random.default_rng(0).normal(size=(20, 75)).astype(np.float32))
    write_labels(tmp_path, ["a"], [0], ["kick"])
    clips = load_clips(tmp_path)
    assert clips.num_joints == 25 and clips.joints[0].shape == (20, 25, 3)


def test_cli_quick_smoke_run(make_clips, write_folder, tmp_path):
    real = write_folder(tmp_path / "real", make_clips(2, 16, seed=0, source="real"))
    synth = _write_features_folder(tmp_path / "synth", make_clips(3, 21, seed=1, source="synth"))
    test = write_folder(tmp_path / "test", make_clips(2, 16, seed=2, source="test"))
    out = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "mdm_kinemic.har.evaluate", "--train_real", str(real), "--train_synthetic", str(synth),
        "--test", str(test), "--quick", "--epochs", "1", "--clip_len", "12", "--base_channels", "8", "--out", str(out),
    ]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "real_plus_synthetic" in done.stdout and "action2motion" in done.stdout
    results = json.loads((out / "har_results.json").read_text())
    assert results["protocol"]["seeds"] == 2 and results["protocol"]["epochs"] == 1
    assert results["runs"]["real_plus_synthetic"]["train_clips"] == 15
    assert len(results["runs"]["real_only"]["top1_final_epoch"]["values"]) == 2
    assert (out / "confusion_real_plus_synthetic.png").is_file()
    for run in ("real_only", "real_plus_synthetic"):  # every run leaves its recognisers, scores and logs
        for seed in (0, 1):
            for name in ("recogniser.safetensors", "recogniser.json", "test_scores.npy", "train_log.jsonl"):
                assert (out / run / f"seed{seed}" / name).is_file(), (run, seed, name)
    assert np.load(out / "real_plus_synthetic" / "seed1" / "test_scores.npy").shape == (6, 3)
    assert "real_plus_synthetic seed 1" in done.stderr
    assert results["generative_metrics"]["sets"]["train_synthetic"]["action2motion"]["definition"] == "action2motion"


def test_cli_rejects_test_classes_absent_from_training(make_clips, write_folder, tmp_path, capsys):
    real = write_folder(tmp_path / "real", make_clips(1, 16, seed=0, source="real"))
    test_clips = make_clips(1, 16, seed=2, source="test")
    test = write_folder(tmp_path / "test", test_clips)
    write_labels(test, test_clips.ids, [0, 1, 3], [*test_clips.class_names, "jump"])
    with pytest.raises(SystemExit) as exit_:
        main(["--train_real", str(real), "--test", str(test), "--quick", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert re.search(r"har.evaluate: error: test classes \['jump'\].*absent from the training set", capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
