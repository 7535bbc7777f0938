"""One driver per folder: the benchmark and the calibration study each hold a lock on what they write.

Two runs of the benchmark on one split folder (or two studies on one split) would start the same
commands into the same run folders and interleave their status.json; the second is refused
instead. The lock is an advisory ``flock`` (filelock), released by the kernel when its process
ends, so a crashed or killed run leaves no stale lock behind. A study and the benchmark may share
a split: they write different folders (calibration/ and the stages' own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

#: held in each split folder by python -m mdm_kinemic.bench.bandai
BENCH_LOCK = ".bench.lock"
#: held in a split's calibration/ by python -m mdm_kinemic.bench.calibrate
STUDY_LOCK = ".study.lock"


class FolderBusy(RuntimeError):
    """Another process holds the lock on a folder this driver would write."""


@contextmanager
def holding(folders: Sequence[Path], lock_name: str, command: str) -> Iterator[None]:
    """Hold ``FOLDER/lock_name`` for each folder (creating the folder) during the with-block.

    Args:
        folders: the folders the driver writes (a split folder, or a study's calibration/).
        lock_name: the lock file's name, one per kind of driver (BENCH_LOCK, STUDY_LOCK).
        command: the driver's command, named in the error.

    Raises:
        FolderBusy: another process holds one of the locks; nothing is taken (the message names
            the folder and what to do).
    """
    with ExitStack() as stack:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                stack.enter_context(FileLock(folder / lock_name, timeout=0))
            except Timeout:
                raise FolderBusy(f"{folder} is being written by another {command} (it holds {folder / lock_name}): "
                                 "wait for that run to end, or give this one another folder") from None
        yield
