"""The TextEncoder base (batching, normalisation, errors) and the get_text_encoder factory."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.text import encoder as encoder_module
from mdm_kinemic.text.encoder import TextEncoder, available_text_encoders, get_text_encoder, register_text_encoder


class CountingEncoder(TextEncoder):
    """Embeds text i as (len(text), 1) and counts batches."""

    def __init__(self, batch_size: int = 2) -> None:
        self.batch_size = batch_size
        self.batches: list[int] = []
        self.show_progress = False

    @property
    def identity(self) -> str:
        return "counting"

    @property
    def dim(self) -> int:
        return 2

    def _encode_batch(self, texts):
        self.batches.append(len(texts))
        return torch.tensor([[float(len(t)), 1.0] for t in texts])


def test_encode_batches_and_normalises():
    encoder = CountingEncoder(batch_size=2)
    out = encoder.encode(["abc", "a", "abcd", "ab", "x"])
    assert encoder.batches == [2, 2, 1]
    assert out.shape == (5, 2) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(out[0], torch.tensor([3.0, 1.0]) / torch.tensor(10.0).sqrt())


def test_encode_empty_and_single_string():
    encoder = CountingEncoder()
    assert encoder.encode([]).shape == (0, 2)
    with pytest.raises(TypeError, match="wrap it in a list"):
        encoder.encode("a person walks")


def test_base_class_names_the_missing_method():
    class Incomplete(TextEncoder):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete.*identity"):
        _ = Incomplete().identity
    with pytest.raises(NotImplementedError, match="Incomplete.*_encode_batch"):
        Incomplete()._encode_batch(["x"])


def test_factory_names_and_unknown_name():
    assert {"clip", "minilm"} <= set(available_text_encoders())
    with pytest.raises(ValueError, match="accepted: .*clip.*minilm"):
        get_text_encoder("bert")


def test_register_text_encoder(monkeypatch):
    monkeypatch.setattr(encoder_module, "_REGISTRY", dict(encoder_module._REGISTRY))
    register_text_encoder("counting", CountingEncoder)
    built = get_text_encoder("counting", batch_size=3)
    assert isinstance(built, CountingEncoder) and built.batch_size == 3
    with pytest.raises(ValueError, match="already registered"):
        register_text_encoder("clip", CountingEncoder)


def test_clip_encoder_builds_without_loading_a_model():
    encoder = get_text_encoder("clip", weights="random")
    assert encoder.dim == 512 and encoder._model is None
    assert encoder.identity.startswith("clip/ViT-B-32/random-")
