"""The "clip" text encoder: cache identity of its weights, and embeddings through text/clip.py."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.text.clip_encoder import CLIP_WEIGHTS_ENV, CLIPTextEncoder


def test_identity_follows_the_weights_file(tmp_path, monkeypatch):
    weights = tmp_path / "ViT-B-32.pt"
    weights.write_bytes(b"x" * 10)
    first = CLIPTextEncoder(weights=str(weights)).identity
    assert str(weights.resolve()) in first and ":10:" in first
    weights.write_bytes(b"x" * 11)
    assert CLIPTextEncoder(weights=str(weights)).identity != first
    monkeypatch.setenv(CLIP_WEIGHTS_ENV, str(weights))
    assert CLIPTextEncoder().identity == CLIPTextEncoder(weights=str(weights)).identity
    monkeypatch.delenv(CLIP_WEIGHTS_ENV)
    assert CLIPTextEncoder().identity == "clip/ViT-B-32/openai/ctxdefault"
    assert CLIPTextEncoder(context_length=22).identity.endswith("ctx22")


def test_random_weights_are_never_shared():
    assert CLIPTextEncoder(weights="random").identity != CLIPTextEncoder(weights="random").identity


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="context_length"):
        CLIPTextEncoder(context_length=100)
    with pytest.raises(ValueError, match="batch_size"):
        CLIPTextEncoder(batch_size=0)


def test_loads_once_and_passes_its_arguments_to_text_clip(monkeypatch):
    """The adapter's side of the text/clip.py contract: load_clip(weights, device) on the first
    batch only, encode_text(model, texts, context_length), rows normalised afterwards."""
    clip = pytest.importorskip("mdm_kinemic.text.clip")
    loads, encodes = [], []

    def load_clip(weights=None, device="cpu"):
        loads.append((weights, device))
        return "model"

    def encode_text(model, texts, context_length=None):
        encodes.append((model, list(texts), context_length))
        return torch.tensor([[3.0, 4.0] + [0.0] * 510] * len(texts))

    monkeypatch.setattr(clip, "load_clip", load_clip)
    monkeypatch.setattr(clip, "encode_text", encode_text)
    encoder = CLIPTextEncoder(weights="w.pt", device="cpu", context_length=22, batch_size=2)
    out = encoder.encode(["a", "b", "c"])
    assert loads == [("w.pt", "cpu")]
    assert encodes == [("model", ["a", "b"], 22), ("model", ["c"], 22)]
    torch.testing.assert_close(out[:, :2], torch.tensor([[0.6, 0.8]] * 3))


@pytest.mark.slow
def test_encodes_through_load_clip_with_random_weights():
    pytest.importorskip("open_clip")
    clip = pytest.importorskip("mdm_kinemic.text.clip")
    encoder = CLIPTextEncoder(weights="random", batch_size=2)
    texts = ["a person performs a side kick.", "a person sits down", "a person waves"]
    out = encoder.encode(texts)
    assert out.shape == (3, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    raw = clip.encode_text(encoder._model, texts)
    torch.testing.assert_close(out, torch.nn.functional.normalize(raw.float(), dim=-1), atol=1e-5, rtol=1e-5)
