"""One driver per folder: a second holder is refused, all or nothing, and a dead holder leaves no lock."""

from __future__ import annotations

import subprocess
import sys

import pytest
from filelock import FileLock

from mdm_kinemic.bench.folder_lock import BENCH_LOCK, FolderBusy, holding


def test_a_second_holder_is_refused_until_the_first_ends(tmp_path):
    with holding([tmp_path / "a"], BENCH_LOCK, "the benchmark"):
        with pytest.raises(FolderBusy, match=rf"{tmp_path / 'a'} is being written by another the benchmark.*"
                                             rf"{BENCH_LOCK}.*wait for that run to end"):
            with holding([tmp_path / "a"], BENCH_LOCK, "the benchmark"):
                pass
        with holding([tmp_path / "a"], ".study.lock", "the study"):  # another kind of driver may share the folder
            pass
    with holding([tmp_path / "a"], BENCH_LOCK, "the benchmark"):  # released at the end of the block
        pass


def test_a_busy_folder_takes_none_of_the_locks(tmp_path):
    with FileLock(tmp_path / "b" / BENCH_LOCK):  # b held elsewhere
        with pytest.raises(FolderBusy, match="/b is being written"):
            with holding([tmp_path / "a", tmp_path / "b"], BENCH_LOCK, "driver"):
                pass
        with FileLock(tmp_path / "a" / BENCH_LOCK, timeout=0):  # a was released when b was refused
            pass


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom filelock import FileLock\n"
                               f"lock = FileLock({str(tmp_path / BENCH_LOCK)!r})\nlock.acquire()\nprint('held', flush=True)\n"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy):
            with holding([tmp_path], BENCH_LOCK, "driver"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with holding([tmp_path], BENCH_LOCK, "driver"):  # the kernel released it with the process
        pass
