"""data.fewshot with too few clips per class: one message naming the class, its count and the
fix, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from mdm_kinemic.data.labels import write_labels

REPO = Path(__file__).resolve().parents[2]


def _labelled(root: Path, per_class: dict[str, int]) -> Path:
    (root / "new_joint_vecs").mkdir(parents=True)
    ids, labels = [], []
    for c, (name, count) in enumerate(per_class.items()):
        for k in range(count):
            ids.append(f"{name}_{k}")
            labels.append(c)
            np.save(root / "new_joint_vecs" / f"{name}_{k}.npy", np.zeros((30, 263), np.float32))
    write_labels(root, ids, labels, list(per_class))
    return root


def _fewshot(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "mdm_kinemic.data.fewshot", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_too_few_clips_per_class_is_one_message_with_the_fix(tmp_path):
    root = _labelled(tmp_path / "data", {"kick": 5, "wave": 3, "bow": 2})
    result = _fewshot(str(root), "--shots", "4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1  # one line
    assert result.stderr.startswith(f"fewshot: error: few-shot split of {root}: 2 classes have fewer clips than the 4 shots")
    assert "1 'wave': 3 clips, 2 'bow': 2 clips" in result.stderr
    assert "Fix: pass --shots 2, leave these classes out with --classes, or add labelled clips of them" in result.stderr
    assert not (root / "splits").exists()


def test_missing_dataset_is_one_message(tmp_path):
    result = _fewshot(str(tmp_path / "nowhere"), "--shots", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("fewshot: error: ")
