"""CLIP ViT-B/32 text embeddings for soft positive mining (the paper's encoder, Sec. 4.1)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Optional

from torch import Tensor

from mdm_kinemic.text.encoder import TextEncoder

CLIP_WEIGHTS_ENV = "MDM_KINEMIC_CLIP_WEIGHTS"


class CLIPTextEncoder(TextEncoder):
    """CLIP ViT-B/32 text tower, loaded through :func:`mdm_kinemic.text.clip.load_clip`.

    The model is loaded on the first :meth:`encode`, so building the encoder (and asking its
    identity for a cache lookup) costs nothing.

    Args:
        weights: a checkpoint path, "random" (untrained, for tests; never cached across
            instances), or None (env MDM_KINEMIC_CLIP_WEIGHTS, else open_clip's cache of the
            OpenAI weights), as accepted by ``load_clip``.
        device: torch device for the forward passes.
        context_length: tokens per caption passed to ``encode_text``; None keeps its default.
        batch_size: captions per forward pass.
    """

    def __init__(
        self,
        weights: Optional[str] = None,
        device: str = "cpu",
        context_length: Optional[int] = None,
        batch_size: int = 256,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if context_length is not None and not 1 <= context_length <= 77:
            raise ValueError(f"context_length must be in 1..77 or None, got {context_length}")
        self.weights = weights
        self.device = device
        self.context_length = context_length
        self.batch_size = batch_size
        self._model = None
        self._identity = f"clip/ViT-B-32/{_weights_token(weights)}/ctx{context_length or 'default'}"

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dim(self) -> int:
        return 512

    def _encode_batch(self, texts: list[str]) -> Tensor:
        # Imported here: text/clip.py pulls in open_clip, which mining with "minilm" never needs.
        from mdm_kinemic.text.clip import encode_text, load_clip

        if self._model is None:
            self._model = load_clip(self.weights, device=self.device)
        return encode_text(self._model, texts, context_length=self.context_length)


def _weights_token(weights: Optional[str]) -> str:
    """Names the weights for the cache key; a file is named by path, size and modification time."""
    if weights == "random":
        # Random weights differ per load: a unique token keeps them out of any shared cache.
        return f"random-{uuid.uuid4().hex}"
    if weights is None:
        weights = os.environ.get(CLIP_WEIGHTS_ENV)
        if not weights:
            return "openai"
    path = Path(weights).expanduser()
    if path.is_file():
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return str(weights)
