"""A tiny transformer denoiser of our own that implements the core's Denoiser protocol.

It is not a stand-in for upstream MDM (that is tested in tests/mdm against the real code); it is
the smallest model with the protocol's shape contract: a condition token (timestep + hashed text
+ action), frame tokens, a transformer encoder, and the final block's hidden states exposed as
features. Every call is recorded so tests can check what the objective passed in.
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch
from torch import Tensor, nn

from mdm_kinemic.core.denoiser import Condition, Denoiser, DenoiserOutput


class TinyDenoiser(nn.Module):
    """x0-predicting transformer over [B, F, 1, T] with a (text, action) condition token."""

    def __init__(
        self,
        n_features: int = 6,
        latent_dim: int = 16,
        n_layers: int = 2,
        n_heads: int = 2,
        ff_dim: int = 32,
        n_actions: int = 0,
        n_timesteps: int = 1000,
        max_frames: int = 256,
        text_buckets: int = 64,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.text_buckets = text_buckets
        self.input_process = nn.Linear(n_features, latent_dim)
        self.output_process = nn.Linear(latent_dim, n_features)
        self.time_embedding = nn.Embedding(n_timesteps, latent_dim)
        self.text_embedding = nn.EmbeddingBag(text_buckets, latent_dim, mode="mean")
        self.action_embedding = nn.Embedding(n_actions, latent_dim) if n_actions else None
        position = torch.arange(max_frames)[:, None]
        rate = torch.exp(torch.arange(0, latent_dim, 2) * (-math.log(10000.0) / latent_dim))
        table = torch.zeros(max_frames, latent_dim)
        table[:, 0::2], table[:, 1::2] = torch.sin(position * rate), torch.cos(position * rate)
        self.register_buffer("positions", table)
        layer = nn.TransformerEncoderLayer(latent_dim, n_heads, ff_dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.calls: list[dict] = []

    def _text_tokens(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        words = [[zlib.crc32(w.encode()) % self.text_buckets for w in t.lower().split()] or [0] for t in texts]
        offsets = torch.tensor([0] + [len(w) for w in words[:-1]]).cumsum(0)
        return torch.tensor([i for w in words for i in w]), offsets

    def denoise(self, x_t: Tensor, timesteps: Tensor, cond: Condition, frame_mask: Tensor) -> DenoiserOutput:
        self.calls.append(
            dict(
                x_t=x_t.detach().clone(),
                timesteps=timesteps.clone(),
                cond=cond,
                frame_mask=frame_mask.clone(),
                grad_enabled=torch.is_grad_enabled(),
            )
        )
        batch, _, _, total = x_t.shape
        token = self.time_embedding(timesteps)
        if cond.text is not None:
            text = self.text_embedding(*self._text_tokens(list(cond.text)))
            if cond.drop_text is not None:
                text = text * (~cond.drop_text).float()[:, None]
            token = token + text
        if cond.action is not None and self.action_embedding is not None:
            action = self.action_embedding(cond.action)
            if cond.drop_action is not None:
                action = action * (~cond.drop_action).float()[:, None]
            token = token + action
        frames = self.input_process(x_t[:, :, 0].transpose(1, 2)) + self.positions[:total]
        sequence = torch.cat([token[:, None], frames], dim=1)
        padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool), ~frame_mask], dim=1)
        features = self.encoder(sequence, src_key_padding_mask=padding)[:, 1:]
        x0 = self.output_process(features).transpose(1, 2)[:, :, None]
        return DenoiserOutput(x0=x0, features=features)


def linear_q_sample(x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """A DDPM-style forward process with alpha_bar(t) = 1 - t / 1000 (enough for the tests)."""
    alpha_bar = (1.0 - t.float() / 1000.0).view(-1, 1, 1, 1)
    return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


@pytest.fixture
def make_tiny_denoiser():
    """Factory fixture: make_tiny_denoiser(**kw) -> TinyDenoiser (seeded, so deterministic)."""

    def make(seed: int = 0, **kwargs) -> TinyDenoiser:
        torch.manual_seed(seed)
        model = TinyDenoiser(**kwargs)
        assert isinstance(model, Denoiser)
        return model

    return make


@pytest.fixture
def q_sample():
    return linear_q_sample
