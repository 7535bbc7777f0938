"""Resume files are read without unpickling code, and damaged ones do not stop a resume."""

from __future__ import annotations

import logging
import os
import pickle
import random

import numpy as np
import pytest
import torch

from mdm_kinemic.training.run_state import (
    DamagedCheckpointError,
    LossLog,
    capture_rng_state,
    checkpoint_paths,
    latest_complete_step,
    load_checkpoint_file,
    restore_rng_state,
)


class _RunsCode:
    """Unpickling this calls os.system: the shape of a crafted train_state file."""

    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def _complete_checkpoint(save_dir, step: int) -> None:
    paths = checkpoint_paths(save_dir, step)
    torch.save({"w": torch.ones(2)}, paths["model"])
    torch.save({"state": {}}, paths["opt"])
    torch.save({"step": step, "rng": capture_rng_state()}, paths["state"])


def test_crafted_train_state_runs_no_code_and_resume_falls_back(tmp_path, caplog):
    sentinel = tmp_path / "ran"
    _complete_checkpoint(tmp_path, 2)
    _complete_checkpoint(tmp_path, 4)
    with open(checkpoint_paths(tmp_path, 4)["state"], "wb") as f:
        pickle.dump({"rng": _RunsCode(str(sentinel))}, f)
    with pytest.raises(DamagedCheckpointError, match="train_state000000004.pt does not load"):
        load_checkpoint_file(checkpoint_paths(tmp_path, 4)["state"])
    with caplog.at_level(logging.WARNING):
        assert latest_complete_step(tmp_path) == 2
    assert not sentinel.exists()
    assert "train_state000000004.pt" in caplog.text and "resuming from an earlier checkpoint" in caplog.text


def test_truncated_train_state_is_skipped_naming_the_file(tmp_path, caplog):
    _complete_checkpoint(tmp_path, 2)
    _complete_checkpoint(tmp_path, 4)
    state = checkpoint_paths(tmp_path, 4)["state"]
    state.write_bytes(state.read_bytes()[:40])
    with caplog.at_level(logging.WARNING):
        assert latest_complete_step(tmp_path) == 2
    assert str(state) in caplog.text


def test_rng_state_round_trips_through_a_tensors_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # a cached Gaussian half of numpy's state
    path = tmp_path / "state.pt"
    torch.save({"rng": capture_rng_state()}, path)
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    restore_rng_state(load_checkpoint_file(path)["rng"])
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected


def test_loss_log_drops_a_partial_last_line_and_names_a_damaged_one(tmp_path, caplog):
    path = tmp_path / "losses.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
    with caplog.at_level(logging.WARNING):
        assert [r["step"] for r in LossLog.read(path)] == [1, 2]
    assert "partial last line 3" in caplog.text
    LossLog(path, resume_step=2)  # a resume rewrites the file without the partial line
    assert path.read_text() == '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n'
    path.write_text('{"step": 1, "loss": 0.5}\ngarbage\n{"step": 3, "loss": 0.3}\n')
    with pytest.raises(ValueError, match=r"losses.jsonl, line 2: not a loss record"):
        LossLog.read(path)
