"""Resume bookkeeping: RNG capture, atomic saves, complete-checkpoint discovery, settings diff, loss log."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from mdm_kinemic.atomic import atomic_torch_save
from mdm_kinemic.training.run_state import (
    LossLog,
    RunDirError,
    capture_rng_state,
    check_save_dir,
    checkpoint_paths,
    latest_complete_step,
    restore_rng_state,
    settings_differences,
)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_round_trip_replays_every_generator():
    state = capture_rng_state()
    first = [draws() for _ in range(3)]
    restore_rng_state(state)
    assert [draws() for _ in range(3)] == first


def test_latest_complete_step_ignores_partial_checkpoints(tmp_path):
    assert latest_complete_step(tmp_path / "missing") is None
    for step in (2, 4):
        for path in checkpoint_paths(tmp_path, step).values():
            atomic_torch_save(path, {"step": step})
    # Step 6 was interrupted after its model and optimizer files: not a resume point.
    paths6 = checkpoint_paths(tmp_path, 6)
    atomic_torch_save(paths6["model"], {})
    atomic_torch_save(paths6["opt"], {})
    assert latest_complete_step(tmp_path) == 4
    assert torch.load(checkpoint_paths(tmp_path, 4)["state"])["step"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_settings_differences_names_changed_leaves_and_ignores_resumable_ones():
    saved = {"optim": {"lr": 2e-5, "num_steps": 10, "seed": 1}, "data": {"classes": [1, 2]}}
    current = {"optim": {"lr": 1e-4, "num_steps": 20, "seed": 1}, "data": {"classes": (1, 2)}, "new": 1}
    assert settings_differences(saved, current, frozenset({"num_steps"})) == ["new", "optim.lr"]
    assert settings_differences(saved, saved) == []


def test_runs_recorded_before_a_settings_group_existed_stay_resumable():
    from dataclasses import asdict

    from mdm_kinemic.core.kinematic_rerank import KinematicRerankSettings

    saved = {"optim": {"lr": 2e-5}}
    current = {"optim": {"lr": 2e-5}, "rerank": asdict(KinematicRerankSettings())}
    assert settings_differences(saved, current) == []
    current["rerank"]["kinematic_rerank"] = "dtw"
    assert settings_differences(saved, current) == ["rerank.kinematic_rerank"]


def test_loss_log_drops_steps_after_the_resume_point(tmp_path):
    path = tmp_path / "losses.jsonl"
    log = LossLog(path)
    for step in (1, 2, 3):
        log.append(step, {"loss": step / 10})
    resumed = LossLog(path, resume_step=2)
    resumed.append(3, {"loss": 0.5})
    assert [(r["step"], r["loss"]) for r in LossLog.read(path)] == [(1, 0.1), (2, 0.2), (3, 0.5)]


def write_args(folder, section):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "args.json").write_text(json.dumps({"arch": "trans_enc", **section}))


SETTINGS = {"optim": {"lr": 2e-5, "num_steps": 10}, "logging": {"save_interval": 5}}


def test_check_save_dir_new_resume_and_changed_cadence(tmp_path):
    assert check_save_dir(tmp_path / "new", SETTINGS) is None
    run = tmp_path / "run"
    write_args(run, {"kinemic": {"train": SETTINGS}})
    assert check_save_dir(run, SETTINGS) == 0
    for path in checkpoint_paths(run, 5).values():
        atomic_torch_save(path, {})
    longer = {"optim": {"lr": 2e-5, "num_steps": 50}, "logging": {"save_interval": 25}}
    assert check_save_dir(run, longer) == 5


@pytest.mark.parametrize("section, message", [
    ({}, "no kinemic.train section: an upstream MDM run"),
    ({"kinemic": {"train": {"optim": {"lr": 1e-4, "num_steps": 10}, "logging": {"save_interval": 5}}}},
     r"run with other settings \(optim.lr differ\)"),
])
def test_save_dir_of_another_run_is_an_error(tmp_path, section, message):
    write_args(tmp_path, section)
    with pytest.raises(RunDirError, match=message):
        check_save_dir(tmp_path, SETTINGS)


def test_checkpoints_without_args_json_are_an_error(tmp_path):
    atomic_torch_save(tmp_path / "model000000010.pt", {})
    with pytest.raises(RunDirError, match="no args.json"):
        check_save_dir(tmp_path, SETTINGS)
