"""Which Mean/Std a run normalises with, and the mismatch errors (upstream-free)."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR, HUMANML3D_STATS_SHA256
from mdm_kinemic.training.norm_stats import resolve_norm_stats


def write_stats(folder, mean, std):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "Mean.npy", np.asarray(mean, np.float32))
    np.save(folder / "Std.npy", np.asarray(std, np.float32))
    return folder


def test_default_is_the_checkpoint_data_dir_then_upstream_dataset(tmp_path):
    upstream = write_stats(tmp_path / "mdm" / "dataset" / "HumanML3D", [0, 0, 0], [1, 1, 1])
    stats = resolve_norm_stats(None, {"dataset": "humanml", "data_dir": ""}, 3, tmp_path / "mdm")
    assert stats.folder == upstream
    own = write_stats(tmp_path / "mdm" / "mydata", [1, 2, 3], [1, 1, 1])
    stats = resolve_norm_stats(None, {"dataset": "humanml", "data_dir": "mydata"}, 3, tmp_path / "mdm")
    assert stats.folder == own and stats.mean.tolist() == [1, 2, 3]


def test_explicit_statistics_equal_to_the_checkpoint_data_are_accepted(tmp_path):
    write_stats(tmp_path / "mdm" / "dataset" / "HumanML3D", [0, 0, 0], [1, 1, 1])
    copy = write_stats(tmp_path / "copy", [0, 0, 0], [1, 1, 1])
    assert resolve_norm_stats(str(copy), {"dataset": "humanml"}, 3, tmp_path / "mdm").folder == copy


@pytest.mark.parametrize("mean, std, message", [
    ([0, 0], [1, 1], r"shapes \(2,\)/\(2,\), but the checkpoint's data has 3 features"),
    ([0, 0, 0], [1, 0, 1], "Std <= 0"),
    ([5, 0, 0], [1, 1, 1], "differs from the Mean/Std of the checkpoint's training data"),
])
def test_statistics_that_do_not_match_the_checkpoint_data_are_errors(tmp_path, mean, std, message):
    write_stats(tmp_path / "mdm" / "dataset" / "HumanML3D", [0, 0, 0], [1, 1, 1])
    given = write_stats(tmp_path / "given", mean, std)
    with pytest.raises(ValueError, match=message):
        resolve_norm_stats(str(given), {"dataset": "humanml"}, 3, tmp_path / "mdm")


def test_no_statistics_anywhere_lists_the_places_tried(tmp_path):
    # KIT's 251 features have no shipped statistics
    with pytest.raises(FileNotFoundError, match=r"tried .*dataset/KIT-ML.*pass --norm_stats"):
        resolve_norm_stats(None, {"dataset": "kit", "data_dir": ""}, 251, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not hold both Mean.npy and Std.npy"):
        resolve_norm_stats(str(tmp_path), {"dataset": "humanml"}, 263, tmp_path)


def test_a_263_feature_checkpoint_without_statistics_gets_humanml3ds_shipped_copy(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    stats = resolve_norm_stats(None, {"dataset": "humanml", "data_dir": ""}, 263, tmp_path)
    assert stats.folder == HUMANML3D_STATS_DIR
    for name, digest in HUMANML3D_STATS_SHA256.items():
        assert hashlib.sha256((HUMANML3D_STATS_DIR / name).read_bytes()).hexdigest() == digest
    assert stats.mean.shape == stats.std.shape == (263,) and (stats.std > 0).all()
    assert "using HumanML3D's, shipped in" in caplog.text
    # the checkpoint's own statistics still come first
    own = write_stats(tmp_path / "dataset" / "HumanML3D", np.zeros(263), np.ones(263))
    assert resolve_norm_stats(None, {"dataset": "humanml", "data_dir": ""}, 263, tmp_path).folder == own


def test_the_shipped_statistics_are_humanml3ds(shared_data):
    for name in HUMANML3D_STATS_SHA256:
        assert (HUMANML3D_STATS_DIR / name).read_bytes() == (shared_data / "humanml3d" / name).read_bytes()
