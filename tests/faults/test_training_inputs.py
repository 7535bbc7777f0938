"""Target and source clips with NaN/Inf frames or too few frames are refused before training,
with one error naming every clip and its file (issue: NaN weights saved, a 1-frame target
trained silently, a 0-frame one failed 40 s in inside pad_motions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.core.mining import Caption
from mdm_kinemic.data.labels import write_labels
from mdm_kinemic.training.batching import FewShotBatcher
from mdm_kinemic.training.fewshot_targets import load_fewshot_targets
from mdm_kinemic.training.settings import FewShotDataSettings


def _target_data(root: Path, frames: dict[str, int], nan_in: tuple[str, ...] = ()) -> Path:
    for clip_id, n in frames.items():
        motion = np.zeros((n, 263), np.float32)
        if clip_id in nan_in:
            motion[n // 2, 5] = np.nan
        (root / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", motion)
    write_labels(root, list(frames), [0] * len(frames), ["side kick"])
    return root


def _load(root: Path, shots: int):
    settings = FewShotDataSettings(target_data=str(root), source_data="unused", fewshot_split=None,
                                   classes=(0,), shots=shots)
    return load_fewshot_targets(settings, seed=0)


def test_targets_with_nan_frames_or_too_few_frames_are_refused_naming_each(tmp_path):
    root = _target_data(tmp_path, {"ok": 30, "nan": 30, "one": 1, "empty": 0}, nan_in=("nan",))
    with pytest.raises(ValueError) as err:
        _load(root, shots=4)
    lines = str(err.value).splitlines()
    assert lines[0] == "3 target clips cannot be trained on:"
    assert sorted(lines[1:4]) == sorted([
        f"  nan ({root / 'new_joint_vecs' / 'nan.npy'}): NaN or Inf in 1 of 30 frames (frames 15)",
        f"  one ({root / 'new_joint_vecs' / 'one.npy'}): 1 frame, fewer than the 4 needed",
        f"  empty ({root / 'new_joint_vecs' / 'empty.npy'}): 0 frames, fewer than the 4 needed",
    ])
    assert lines[4].startswith("Fix: ")


def test_good_targets_still_load(tmp_path):
    targets = _load(_target_data(tmp_path, {"a": 4, "b": 30}), shots=2)
    assert [m.shape[0] for m in targets.motions] == [4, 30]


def test_source_clips_with_nan_frames_are_refused_before_the_first_batch():
    clips = {"s0": np.zeros((50, 263), np.float32), "s1": np.zeros((50, 263), np.float32)}
    clips["s1"][40, 0] = np.inf
    pools = [[Caption("s0", "a kick", 0, 0), Caption("s1", "a wave", 0, 0), Caption("s1", "a raise", 10, 30),
              Caption("s0", "nothing", 60, 70)]]
    with pytest.raises(ValueError) as err:
        FewShotBatcher([np.zeros((10, 263))], [0], ["p"], ["t"], pools, clips.__getitem__, lambda m: m,
                       source_file=lambda i: f"SRC/new_joint_vecs/{i}.npy")
    assert str(err.value).splitlines()[:3] == [
        "2 source clips cannot be trained on:",
        "  s0 frames 60..70 (SRC/new_joint_vecs/s0.npy): 0 frames, fewer than the 1 needed",
        "  s1 (SRC/new_joint_vecs/s1.npy): NaN or Inf in 1 of 50 frames (frames 40)",
    ]  # s1 frames 10..30 holds no Inf: that caption is usable
