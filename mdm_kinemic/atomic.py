"""Atomic file writing: write a temporary file beside the target, then rename it over the target.

Readers never see a half-written file: the rename (``os.replace``) is atomic on POSIX and on
Windows when both names are in one folder, and the temporary file is removed if writing fails.
A power loss or kernel crash leaves the old file or the new one, never an empty or partial one:
the temporary file's data is flushed to disk (fsync) before the rename, and on POSIX the folder
is flushed after it so that the rename itself survives (Windows cannot open a folder to flush).

    with atomic_path(out / "plot.png", suffix=".png") as tmp:
        fig.savefig(tmp)            # writers that pick the format by extension get a real suffix

    atomic_write_text(out / "args.json", json.dumps(args))
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "atomic_save_npy", "atomic_torch_save", "atomic_write_bytes", "atomic_write_text"]

_UMASK_LOCK = threading.Lock()


def _fsync_file(path: Path) -> None:
    # without it, a crash after the rename can leave the new name pointing at unwritten blocks
    # (ext4 and xfs order metadata before data); Windows' fsync needs a handle open for writing
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # the rename is an entry of the folder: flush it so that it is on disk when we return
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # an unreadable folder, or a file system refusing fsync on folders (some FUSE
        pass  # mounts): the file's data is on disk already, only the rename may not be yet


def _current_umask() -> int:
    # os.umask can only be read by setting it; hold a lock so threads here never see the 0 in between
    with _UMASK_LOCK:
        umask = os.umask(0)
        os.umask(umask)
    return umask


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary file in ``path``'s folder; rename it onto ``path`` when the block succeeds.

    The folder is created if missing. The temporary file exists (empty) when the block starts and
    has the permissions a plain ``open()`` would give (``0o666 & ~umask``; mkstemp makes 0600).
    When the block succeeds, the file is flushed to disk, renamed, and (POSIX) the folder flushed.
    On any exception, including KeyboardInterrupt, the temporary file is removed, ``path`` is
    left as it was and the exception propagates.

    Args:
        path: the file to write.
        suffix: the temporary file's suffix, e.g. ``".npy"`` or ``".png"`` for writers that
            choose the format by extension (or append one); default ``".tmp"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" if suffix is None else suffix)
    tmp = Path(name)
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_current_umask())
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically, UTF-8 encoded."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """``np.save`` ``array`` to ``path`` atomically (written as given: no ``.npy`` is appended)."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def atomic_torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
