"""On-disk cache of text embeddings, keyed by encoder identity and corpus content hash.

Embedding a HumanML3D-sized caption corpus takes minutes; every later mining run with the same
encoder and the same captions reads the file back instead. A change of either the encoder
identity or any caption (text or order) changes the key, so the embeddings are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from mdm_kinemic.atomic import atomic_torch_save
from mdm_kinemic.text.encoder import TextEncoder

logger = logging.getLogger(__name__)


def corpus_sha256(texts: Sequence[str]) -> str:
    """Hex SHA-256 of the texts in order, through their JSON list encoding (which is unambiguous
    about where one text ends, and runs in C: ~30 ms for 100k captions)."""
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A folder of ``<identity hash>-<corpus hash>.pt`` files, each one corpus's embeddings.

    Args:
        root: the cache folder (created on the first write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, identity: str, texts_sha256: str) -> Path:
        """The file that holds (or would hold) this encoder's embeddings of this corpus."""
        identity_sha = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
        return self.root / f"{identity_sha}-{texts_sha256[:32]}.pt"

    def load(self, identity: str, texts: Sequence[str]) -> Optional[Tensor]:
        """The cached embeddings [N, D] of ``texts`` by the encoder ``identity``, or None on a miss.

        An unreadable file, or one whose stored identity, hash or row count disagrees, is a miss.
        """
        texts_sha256 = corpus_sha256(texts)
        path = self.path(identity, texts_sha256)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # a truncated or foreign file must not stop mining
            logger.warning("ignoring unreadable embedding cache %s (%s); recomputing", path, error)
            return None
        if (
            not isinstance(entry, dict)
            or entry.get("identity") != identity
            or entry.get("texts_sha256") != texts_sha256
            or tuple(entry["embeddings"].shape[:1]) != (len(texts),)
        ):
            logger.warning("embedding cache %s does not match its key; recomputing", path)
            return None
        return entry["embeddings"]

    def store(self, identity: str, texts: Sequence[str], embeddings: Tensor) -> Path:
        """Write ``embeddings`` [N, D] atomically (temporary file + rename); returns the path."""
        if embeddings.shape[0] != len(texts):
            raise ValueError(f"embeddings have {embeddings.shape[0]} rows for {len(texts)} texts")
        texts_sha256 = corpus_sha256(texts)
        path = self.path(identity, texts_sha256)
        entry = {"identity": identity, "texts_sha256": texts_sha256, "embeddings": embeddings.contiguous()}
        atomic_torch_save(path, entry)
        return path


class CachedTextEncoder(TextEncoder):
    """Wraps a :class:`TextEncoder`; :meth:`encode` reads the cache and writes it on a miss.

    Args:
        encoder: the encoder that computes embeddings on a miss.
        cache_dir: the cache folder.

    Attributes:
        hits, misses: counts of :meth:`encode` calls served from disk / computed.
    """

    def __init__(self, encoder: TextEncoder, cache_dir: str | os.PathLike) -> None:
        self.encoder = encoder
        self.cache = EmbeddingCache(cache_dir)
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> str:
        return self.encoder.identity

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embeddings [N, D] of ``texts`` (L2-normalised), from disk when the key matches."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not one string: wrap it in a list")
        texts = list(texts)
        cached = self.cache.load(self.identity, texts)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        embeddings = self.encoder.encode(texts)
        self.cache.store(self.identity, texts, embeddings)
        return embeddings
