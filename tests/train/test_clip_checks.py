"""training.clip_checks: which clips are refused before training, and the one message naming them."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.training.clip_checks import (
    MIN_TARGET_FRAMES,
    check_clips,
    clip_problem,
)


def test_minimum_is_upstreams_length_unit():
    assert MIN_TARGET_FRAMES == 4  # docs/train.md and the module doc state this value


@pytest.mark.parametrize(
    ("frames", "bad_frames", "expected"),
    [
        (4, (), None),
        (3, (), "3 frames, fewer than the 4 needed"),
        (1, (), "1 frame, fewer than the 4 needed"),
        (0, (), "0 frames, fewer than the 4 needed"),
        (6, (2,), "NaN or Inf in 1 of 6 frames (frames 2)"),
        (8, (0, 1, 2, 3, 4, 7), "NaN or Inf in 6 of 8 frames (frames 0, 1, 2, 3, 4, ...)"),
        (2, (1,), "2 frames, fewer than the 4 needed; NaN or Inf in 1 of 2 frames (frames 1)"),
    ],
)
def test_clip_problem(frames, bad_frames, expected):
    motion = np.zeros((frames, 263), np.float32)
    for k, frame in enumerate(bad_frames):
        motion[frame, k] = (np.nan, np.inf, -np.inf)[k % 3]
    assert clip_problem(motion, MIN_TARGET_FRAMES) == expected


def test_check_clips_names_every_bad_clip_once():
    good, nan = np.zeros((5, 263)), np.zeros((5, 263))
    nan[3, 7] = np.nan
    clips = [("a", "D/a.npy", good), ("b", "D/b.npy", nan), ("c", "D/c.npy", np.zeros((0, 263)))]
    with pytest.raises(ValueError) as err:
        check_clips(clips, 4, "target", "remove them")
    assert str(err.value).splitlines() == [
        "2 target clips cannot be trained on:",
        "  b (D/b.npy): NaN or Inf in 1 of 5 frames (frames 3)",
        "  c (D/c.npy): 0 frames, fewer than the 4 needed",
        "Fix: remove them",
    ]
    check_clips(clips[:1], 4, "target", "unused")  # nothing to report: no error
