"""digest.py: a file's sha256, read in chunks, equals hashlib's over its whole bytes."""

from __future__ import annotations

import hashlib

import pytest

from mdm_kinemic import digest
from mdm_kinemic.digest import file_sha256


def test_chunked_digest_equals_the_whole_files(tmp_path, monkeypatch):
    data = bytes(range(256)) * 41  # 10,496 bytes: over three chunks of 4,096 and a partial one
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    monkeypatch.setattr(digest, "CHUNK", 4096)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(b"")
    assert file_sha256(path) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of nothing
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing.pt")
