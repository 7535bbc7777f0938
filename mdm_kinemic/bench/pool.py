"""Independent stage commands at once, one per slot: a device of ``--devices`` or a one-thread CPU job.

The benchmark's stages hold commands that read the same inputs and write separate folders (the
five few-shot variants, the synthetic sets, the HAR evaluations); ``CommandPool`` runs them in
threads that each wait on one subprocess (bench/stages.py ``Bench._run``), handing every command
the slot it runs on. With one slot it runs each command at once in the calling thread, so the
driver's sequential behaviour, a failure stopping it before the next command, is unchanged.
"""

from __future__ import annotations

import argparse
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

from mdm_kinemic.flags import parse_device

__all__ = ["CommandPool", "add_runner_arguments", "parse_devices"]

#: a slot: a torch device name ('cuda:1', 'cpu'), or None for the preset's own device (sequential)
Slot = str | None


def add_runner_arguments(parser: argparse.ArgumentParser, jobs_help: str) -> None:
    """--nice, --keep_going, --jobs and --devices: how a driver (bench.bandai, bench.calibrate) runs its commands."""
    parser.add_argument("--nice", type=int, default=10, help="niceness of the commands (0: none)")
    parser.add_argument("--keep_going", action="store_true", help="after a failed command, run the others whose inputs exist")
    parser.add_argument("--jobs", type=int, default=1, help=jobs_help)
    parser.add_argument("--devices", default=None,
                        help="comma-separated devices, e.g. cuda:0,cuda:1: independent commands (few-shot runs, "
                        "synthetic sets, HAR evaluations) run at once, one per device (default: the preset's device, "
                        "one command at a time)")


def parse_devices(text: str) -> tuple[str, ...]:
    """The devices of ``--devices cuda:0,cuda:1`` (one command per device at a time).

    Raises:
        ValueError: an empty list, a repeated device, 'auto', or a value flags.parse_device refuses
            (it accepts cpu, cuda, cuda:N and upstream's integers N = cuda:N, -1 = cpu).
    """
    given = [name.strip() for name in text.split(",") if name.strip()]
    if not given:
        raise ValueError("--devices: give a comma-separated list such as cuda:0,cuda:1")
    names = []
    for name in given:
        try:
            names.append(parse_device(name))
        except ValueError as err:
            raise ValueError(f"--devices: {err}") from err
        if names[-1] == "auto":
            raise ValueError("--devices: 'auto' names no device; list them, e.g. cuda:0,cuda:1")
    names = tuple(names)
    if len(set(names)) < len(names):
        raise ValueError(f"--devices names a device twice ({','.join(names)}): one command per device runs at a time")
    return names


class CommandPool:
    """Runs submitted commands, at most one per slot at a time.

    Args:
        slots: where commands run; one slot = sequential, in the calling thread.

    ``close`` waits for every running command and drops those not started.
    """

    def __init__(self, slots: Sequence[Slot]) -> None:
        if not slots:
            raise ValueError("CommandPool needs at least one slot")
        self.slots = list(slots)
        self._free: queue.Queue[Slot] = queue.Queue()
        for slot in self.slots:
            self._free.put(slot)
        self._executor = ThreadPoolExecutor(max_workers=len(self.slots)) if len(self.slots) > 1 else None
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Start no more commands: the queued ones are cancelled, and a thread about to start one
        skips it (its result is False). The running ones are the caller's to terminate."""
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def idle(self) -> bool:
        """True when no command holds a slot."""
        return self._free.qsize() == len(self.slots)

    def close(self) -> None:
        """Wait for the running commands; cancel those not started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, command: Callable[[Slot], bool]) -> Future:
        """Run ``command(slot)`` on a free slot; sequentially it runs now and its exceptions propagate.

        Returns:
            A Future of the command's result.
        """
        if self._executor is None:
            done: Future = Future()
            done.set_result(self._on_slot(command))
            return done
        return self._executor.submit(self._on_slot, command)

    def _on_slot(self, command: Callable[[Slot], bool]) -> bool:
        slot = self._free.get()
        try:
            return False if self._stopping.is_set() else command(slot)
        finally:
            self._free.put(slot)

    @staticmethod
    def wait(futures: Iterable[Future]) -> list[bool]:
        """Results of ``futures``; on the first exception the commands not yet started are
        cancelled, the running ones end, and the exception is raised."""
        futures = list(futures)
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending:
            for future in pending:
                future.cancel()
            wait(pending)
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]
