"""The text-encoder interface used by soft positive mining, and the factory that builds encoders by name.

An encoder turns captions into L2-normalised embeddings [N, D]. Two are registered:
``"clip"`` (CLIP ViT-B/32 through open_clip, the paper's choice, Sec. 4.1) and ``"minilm"``
(all-MiniLM-L6-v2 through sentence-transformers). Wrap either in
:class:`mdm_kinemic.text.cache.CachedTextEncoder` to keep embeddings on disk.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm


class TextEncoder:
    """Base class: batched, L2-normalised text embeddings.

    Subclasses implement :meth:`identity`, :attr:`dim` and :meth:`_encode_batch`; :meth:`encode`
    does the batching, the progress bar and the normalisation.

    Attributes:
        batch_size: captions per forward pass.
        show_progress: show a tqdm bar while encoding (only when there is more than one batch).
    """

    batch_size: int = 256
    show_progress: bool = True

    @property
    def identity(self) -> str:
        """A string naming the model and its weights; two encoders with equal identity must embed
        any text identically (the on-disk cache is keyed by it)."""
        raise NotImplementedError(f"{type(self).__name__} must define the `identity` property")

    @property
    def dim(self) -> int:
        """D, the embedding width."""
        raise NotImplementedError(f"{type(self).__name__} must define the `dim` property")

    def _encode_batch(self, texts: list[str]) -> Tensor:
        """Embed one batch: Tensor [len(texts), D], not necessarily normalised."""
        raise NotImplementedError(f"{type(self).__name__} must implement `_encode_batch(texts)`")

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embed ``texts``.

        Args:
            texts: N captions or prompts.

        Returns:
            float32 Tensor [N, D] on the CPU, each row L2-normalised (unit norm), in input order.

        Raises:
            TypeError: when ``texts`` is a single string rather than a sequence of strings.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string: wrap it in a list")
        texts = list(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        starts = range(0, len(texts), self.batch_size)
        bar = tqdm(
            starts,
            desc=f"embedding {len(texts)} texts ({type(self).__name__})",
            unit="batch",
            disable=not self.show_progress or len(starts) <= 1,
        )
        chunks = [self._encode_batch(texts[s : s + self.batch_size]).float().cpu() for s in bar]
        return F.normalize(torch.cat(chunks), dim=-1)


_REGISTRY: dict[str, str | Callable[..., TextEncoder]] = {
    # Values are "module:attribute" so that neither open_clip nor sentence-transformers is
    # imported until the encoder is asked for.
    "clip": "mdm_kinemic.text.clip_encoder:CLIPTextEncoder",
    "minilm": "mdm_kinemic.text.sentence:MiniLMEncoder",
}


def register_text_encoder(name: str, factory: str | Callable[..., TextEncoder]) -> None:
    """Make ``get_text_encoder(name, **kw)`` build encoders with ``factory(**kw)``.

    Args:
        name: the name users pass (e.g. on the command line).
        factory: a callable returning a :class:`TextEncoder`, or a "module:attribute" string
            naming one (imported on first use).

    Raises:
        ValueError: if ``name`` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(f"text encoder {name!r} is already registered; choose another name")
    _REGISTRY[name] = factory


def available_text_encoders() -> list[str]:
    """The names :func:`get_text_encoder` accepts."""
    return sorted(_REGISTRY)


def get_text_encoder(name: str, **kwargs) -> TextEncoder:
    """Build the text encoder called ``name``.

    Args:
        name: "clip" (CLIP ViT-B/32; kwargs: weights, device, context_length, batch_size) or
            "minilm" (all-MiniLM-L6-v2; kwargs: model_path, device, batch_size), or a name added
            with :func:`register_text_encoder`.
        **kwargs: passed to the encoder's constructor.

    Raises:
        ValueError: unknown name (the message lists the accepted ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown text encoder {name!r}; accepted: {', '.join(available_text_encoders())}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attribute = factory.split(":")
        factory = getattr(importlib.import_module(module_name), attribute)
    return factory(**kwargs)
