"""The drivers' commands as child processes that stop with their driver.

A driver (bench.bandai, bench.calibrate) waits on its commands from the pool's threads. Stopped
with Ctrl-C or ``kill`` (SIGTERM), it terminates every command still running before it exits:
a command left behind would go on writing the run folder that the resumed driver starts the same
command in. The commands themselves write through mdm_kinemic.atomic, so a terminated one leaves
its previous files or none, and the resumed driver runs it again.

    with stopping_commands():
        bench.run(...)              # run_command(...) from any thread
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

__all__ = ["run_command", "stopping_commands", "terminate_commands"]

#: seconds a terminated command gets to exit before it is killed
GRACE_SECONDS = 30.0

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()


def run_command(argv: Sequence[str], log: IO[str], env: dict[str, str]) -> int:
    """Run ``argv`` with stdout and stderr to ``log``; returns its exit status (negative: the
    signal that ended it). The command is terminated if the calling thread is interrupted."""
    process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env)
    with _lock:
        _running.add(process)
    try:
        return process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        with _lock:
            _running.discard(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def terminate_commands() -> int:
    """Terminate (SIGTERM, then SIGKILL after GRACE_SECONDS) every command still running; returns
    how many there were."""
    with _lock:
        running = list(_running)
    for process in running:
        _stop(process)
    return len(running)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@contextmanager
def stopping_commands() -> Iterator[None]:
    """Within it, SIGTERM exits the driver as Ctrl-C does (SystemExit 143 in the main thread), and on
    any way out the commands still running are terminated. Call from the main thread."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        terminate_commands()
