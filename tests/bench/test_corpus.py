"""bench/corpus.py: a converted folder is used as it is; the driver's own conversion only when complete."""

from __future__ import annotations

import json

import pytest

from mdm_kinemic.bench.corpus import CONVERTED_DIR, resolve_corpus
from mdm_kinemic.data.convert import REPORT_FILE
from mdm_kinemic.data.humanml3d import MOTION_DIR
from mdm_kinemic.data.labels import CLASSES_FILE, LABELS_FILE


def _converted(folder, skipped):
    (folder / MOTION_DIR).mkdir(parents=True)
    (folder / LABELS_FILE).write_text("")
    (folder / CLASSES_FILE).write_text("")
    (folder / REPORT_FILE).write_text(json.dumps({"skipped": skipped}))


def test_an_earlier_complete_conversion_is_reused(tmp_path):
    (tmp_path / "bvh").mkdir()
    (tmp_path / "bvh" / "dataset-1_run_normal_001.bvh").write_text("HIERARCHY")
    _converted(tmp_path / "out" / CONVERTED_DIR, [])
    assert resolve_corpus(tmp_path / "bvh", tmp_path / "out") == tmp_path / "out" / CONVERTED_DIR
    assert resolve_corpus(tmp_path / "out" / CONVERTED_DIR, tmp_path / "elsewhere") == tmp_path / "out" / CONVERTED_DIR


def test_an_earlier_conversion_that_skipped_files_is_refused(tmp_path):
    (tmp_path / "bvh").mkdir()
    (tmp_path / "bvh" / "dataset-1_run_normal_001.bvh").write_text("HIERARCHY")
    _converted(tmp_path / "out" / CONVERTED_DIR, [{"file": "dataset-1_walk_normal_001.bvh", "reason": "truncated"}])
    with pytest.raises(FileNotFoundError, match=r"partial conversion: 1 file\(s\) were skipped .*--allow_partial"):
        resolve_corpus(tmp_path / "bvh", tmp_path / "out")
