"""Caption corpus view: every caption line as a Caption, sub-spans checked against the clip."""

from __future__ import annotations

import logging

import numpy as np

from mdm_kinemic.core.mining import Caption
from mdm_kinemic.data.captions import caption_corpus
from mdm_kinemic.data.humanml3d import HumanML3D, write_clip, write_split


def test_corpus_lists_captions_with_frames(tmp_path, caplog):
    vec = np.zeros((60, 263), dtype=np.float32)  # 3 s at 20 fps
    write_clip(tmp_path, "000001", vec, captions=["a person waves.", ("a person jumps.", 1.0, 2.0)])
    write_clip(tmp_path, "000002", vec[:20], captions=[("runs past the end.", 0.5, 4.0), ("starts after it.", 2.0, 3.0)])
    write_clip(tmp_path, "000003", vec)  # no texts
    write_split(tmp_path, "train", ["000002", "000001", "999999"])
    assert caption_corpus(tmp_path) == [
        Caption("000001", "a person waves.", 0, 0),
        Caption("000001", "a person jumps.", 20, 40),
        Caption("000002", "runs past the end.", 10, 20),
    ]
    with caplog.at_level(logging.WARNING):
        train = caption_corpus(HumanML3D(tmp_path), split="train")
    assert [c.clip_id for c in train] == ["000002", "000001", "000001"]
    assert "1 listed clips have no motion file" in caplog.text
    assert "1 caption spans cut" in caplog.text and "1 empty spans left out" in caplog.text
    assert caption_corpus(tmp_path, ids=["000003"]) == []
