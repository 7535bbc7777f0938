"""--clip_weights: a TorchScript archive is loaded (which runs its code) only when it is OpenAI's file."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.text import clip as text_clip


def test_foreign_torchscript_archive_is_refused_before_loading(tmp_path, monkeypatch):
    path = tmp_path / "ViT-B-32.pt"
    torch.jit.script(torch.nn.Linear(3, 2)).save(str(path))

    def never(*args, **kwargs):
        raise AssertionError("torch.jit.load ran on an unverified archive")

    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(text_clip.CLIPWeightsError, match="TorchScript archive other than OpenAI's ViT-B-32.pt"):
        text_clip.load_clip(path)
