"""File digests: the sha256 that checkpoints, synthetic-set manifests and the CLIP weights record."""

from __future__ import annotations

import hashlib
import os

#: bytes read at a time (files are checkpoints of up to a few GB)
CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
