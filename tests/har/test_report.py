"""Atomic JSON writing and the confusion-matrix PNG."""

from __future__ import annotations

import json

import numpy as np

from mdm_kinemic.har.report import save_confusion_png, write_json


def test_write_json_converts_numpy_and_nan_and_leaves_no_temp_file(tmp_path):
    path = write_json(tmp_path / "out" / "r.json", {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), 2: (1, 2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "2": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_confusion_png(tmp_path):
    path = save_confusion_png(tmp_path / "c.png", np.array([[3, 1], [0, 0]]), ["kick", "punch"], "toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]
