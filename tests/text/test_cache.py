"""The on-disk embedding cache: hit, miss, invalidation by encoder identity and by corpus content."""

from __future__ import annotations

import zlib

import torch

from mdm_kinemic.text.cache import CachedTextEncoder, EmbeddingCache, corpus_sha256
from mdm_kinemic.text.encoder import TextEncoder


class SeededEncoder(TextEncoder):
    """Deterministic embeddings that depend on the encoder's seed (its identity) and the text."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.calls = 0
        self.show_progress = False

    @property
    def identity(self) -> str:
        return f"seeded-{self.seed}"

    @property
    def dim(self) -> int:
        return 4

    def _encode_batch(self, texts):
        self.calls += 1
        rows = []
        for text in texts:
            g = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}|{text}".encode()))
            rows.append(torch.randn(4, generator=g))
        return torch.stack(rows)


TEXTS = ["a person walks", "a person kicks", "a person sits down"]


def test_miss_then_hit_returns_identical_embeddings(tmp_path):
    encoder = SeededEncoder()
    cached = CachedTextEncoder(encoder, tmp_path)
    first = cached.encode(TEXTS)
    second = cached.encode(TEXTS)
    assert (cached.misses, cached.hits, encoder.calls) == (1, 1, 1)
    torch.testing.assert_close(first, second)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_a_new_instance_reads_the_same_file(tmp_path):
    CachedTextEncoder(SeededEncoder(), tmp_path).encode(TEXTS)
    encoder = SeededEncoder()
    cached = CachedTextEncoder(encoder, tmp_path)
    cached.encode(TEXTS)
    assert cached.hits == 1 and encoder.calls == 0


def test_identity_change_recomputes(tmp_path):
    old = CachedTextEncoder(SeededEncoder(seed=0), tmp_path).encode(TEXTS)
    encoder = SeededEncoder(seed=1)
    new = CachedTextEncoder(encoder, tmp_path).encode(TEXTS)
    assert encoder.calls == 1
    assert not torch.allclose(old, new)


def test_corpus_change_recomputes(tmp_path):
    encoder = SeededEncoder()
    cached = CachedTextEncoder(encoder, tmp_path)
    cached.encode(TEXTS)
    cached.encode(TEXTS[:2] + ["a person sits"])
    cached.encode(list(reversed(TEXTS)))
    assert cached.misses == 3 and cached.hits == 0


def test_corpus_hash_respects_boundaries_and_order():
    assert corpus_sha256(["ab", "c"]) != corpus_sha256(["a", "bc"])
    assert corpus_sha256(["a", "b"]) != corpus_sha256(["b", "a"])
    assert corpus_sha256(["a", "b"]) == corpus_sha256(("a", "b"))


def test_corrupt_or_mismatched_file_is_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    path = cache.path("seeded-0", corpus_sha256(TEXTS))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a torch file")
    assert cache.load("seeded-0", TEXTS) is None
    torch.save({"identity": "other", "texts_sha256": corpus_sha256(TEXTS), "embeddings": torch.zeros(3, 4)}, path)
    assert cache.load("seeded-0", TEXTS) is None
    encoder = SeededEncoder()
    CachedTextEncoder(encoder, tmp_path).encode(TEXTS)
    assert encoder.calls == 1
    torch.testing.assert_close(cache.load("seeded-0", TEXTS), encoder.encode(TEXTS))
