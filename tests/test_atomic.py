"""mdm_kinemic.atomic: temporary file beside the target, renamed on success, removed on failure."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from mdm_kinemic.atomic import (
    atomic_path,
    atomic_save_npy,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_success_renames_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.is_file() and tmp != target
        assert not target.exists()
        tmp.write_bytes(b"payload")
    assert target.read_bytes() == b"payload"
    assert not tmp.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_exception_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_exception_without_an_old_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "out.txt"):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_suffix_option(tmp_path):
    with atomic_path(tmp_path / "plot.png", suffix=".png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    with atomic_path(tmp_path / "other.txt") as tmp:
        assert tmp.suffix == ".tmp"
        tmp.write_bytes(b"txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "plot.png"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "atomic", b"x")
        with open(tmp_path / "plain", "wb") as handle:
            handle.write(b"x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_bytes_and_text_round_trip(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01\xff")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01\xff"
    atomic_write_text(str(tmp_path / "a.txt"), "héllo\nwörld\n")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\nwörld\n".encode("utf-8")
    atomic_write_text(tmp_path / "a.txt", "replaced")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.txt"]


def test_npy_round_trip_keeps_the_name(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "x.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), array)
    # np.save on a path would append .npy; the name is kept as given
    atomic_save_npy(tmp_path / "stats.bin", array)
    np.testing.assert_array_equal(np.load(tmp_path / "stats.bin"), array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.bin", "x.npy"]


def test_torch_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    obj = {"w": torch.arange(6.0).reshape(2, 3), "step": 7}
    atomic_torch_save(tmp_path / "m.pt", obj)
    loaded = torch.load(tmp_path / "m.pt", weights_only=True)
    assert loaded["step"] == 7 and torch.equal(loaded["w"], obj["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_failing_helper_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.pt"
    target.write_bytes(b"old")
    with pytest.raises(Exception):
        atomic_torch_save(target, lambda: None)  # lambdas do not pickle
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


@pytest.fixture
def fsync_log(monkeypatch):
    """Records ("fsync", inode) and ("replace", target name) in call order."""
    log: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst):
        log.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def test_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path, fsync_log):
    atomic_write_bytes(tmp_path / "out.bin", b"payload")
    file_inode = (tmp_path / "out.bin").stat().st_ino  # the rename keeps the temporary's inode
    expected = [("fsync", file_inode), ("replace", "out.bin")]
    if os.name == "posix":
        expected.append(("fsync", tmp_path.stat().st_ino))
    assert fsync_log == expected
    assert (tmp_path / "out.bin").read_bytes() == b"payload"


def test_failed_write_neither_flushes_nor_renames(tmp_path, fsync_log):
    (tmp_path / "out.bin").write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"half")
            raise OSError("disk full")
    assert fsync_log == []
    assert (tmp_path / "out.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_folder_fsync_refused_by_the_file_system_is_not_an_error(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write_text(tmp_path / "a.txt", "kept")
    assert (tmp_path / "a.txt").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
