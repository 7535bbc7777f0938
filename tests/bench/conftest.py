"""A tiny Bandai-like benchmark shared by the driver's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.bench.presets import PRESETS
from mdm_kinemic.bench.split import SplitSettings
from mdm_kinemic.bench.stages import Bench
from mdm_kinemic.data.humanml3d import write_clip, write_mean_std
from mdm_kinemic.data.labels import write_labels


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    """A driver over 12 clips of two contents ("run" the target, 2 shots) at the tiny preset."""
    root = tmp_path / "corpus"
    ids, labels = [], []
    for c, content in enumerate(("run", "dash")):
        for k in range(6):
            clip_id = f"dataset-1_{content}_normal_{k:03d}"
            write_clip(root, clip_id, np.full((6, 263), c + k, np.float32), np.zeros((6, 22, 3)), [f"a person {content}s."])
            ids.append(clip_id)
            labels.append(c)
    write_labels(root, ids, labels, ["run", "dash"])
    write_mean_std(root, np.zeros(263), np.ones(263))
    return Bench(root, tmp_path / "out", SplitSettings(("run",), shots=2), PRESETS["tiny"], nice=0)
