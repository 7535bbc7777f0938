"""Which Mean/Std a run normalises with, and the mismatch errors (upstream-free)."""

from __future__ import annotations

import numpy as np
import pytest

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
    with pytest.raises(FileNotFoundError, match=r"tried .*dataset/HumanML3D.*pass --norm_stats"):
        resolve_norm_stats(None, {"dataset": "humanml", "data_dir": ""}, 263, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not hold both Mean.npy and Std.npy"):
        resolve_norm_stats(str(tmp_path), {"dataset": "humanml"}, 263, tmp_path)
