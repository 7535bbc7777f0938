"""bench/commands.py: a stopped driver stops the commands it is waiting on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mdm_kinemic.bench.commands import run_command, stopping_commands, terminate_commands

SLEEPER = "import os, pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(120)"


def _wait_for(path, seconds=30.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_terminate_stops_the_command_a_pool_thread_waits_on(tmp_path):
    codes = []
    with open(tmp_path / "log", "w") as log:
        waiter = threading.Thread(target=lambda: codes.append(
            run_command([sys.executable, "-c", SLEEPER, str(tmp_path / "pid")], log, dict(os.environ))))
        waiter.start()
        pid = _wait_for(tmp_path / "pid")
        assert terminate_commands() == 1
        waiter.join(timeout=30)
    assert not waiter.is_alive() and codes == [-signal.SIGTERM] and _gone(pid)
    assert terminate_commands() == 0  # nothing left running


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a process is POSIX")
def test_a_killed_driver_takes_its_running_command_with_it(tmp_path):
    driver = textwrap.dedent(f"""
        import os, sys, threading
        from mdm_kinemic.bench.commands import run_command, stopping_commands
        with stopping_commands(), open({str(tmp_path / 'log')!r}, "w") as log:
            waiter = threading.Thread(target=run_command, daemon=True,
                                      args=([sys.executable, "-c", {SLEEPER!r}, {str(tmp_path / 'pid')!r}], log, dict(os.environ)))
            waiter.start()
            waiter.join()
    """)
    process = subprocess.Popen([sys.executable, "-c", driver])
    pid = _wait_for(tmp_path / "pid")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert _gone(pid)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a process is POSIX")
def test_a_killed_driver_with_parallel_commands_does_not_wait_for_them(tmp_path):
    """Through the benchmark's pool of two CPU slots, whose close() waits for its threads: the
    driver must stop the running commands first and start none of the two queued ones (a driver
    that only waits would hang for 120 s, one that only terminates would run the queued ones)."""
    driver = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from mdm_kinemic.bench.commands import run_command, stopping_commands
        from mdm_kinemic.bench.presets import get_preset
        from mdm_kinemic.bench.split import SplitSettings
        from mdm_kinemic.bench.stages import Bench
        tmp = Path({str(tmp_path)!r})
        bench = Bench(tmp, tmp, SplitSettings(("run", "walk"), 2), get_preset("cpu", device="cpu"), jobs=2)
        with stopping_commands(), open(tmp / "log", "w") as log, bench._pool() as pool:
            pool.wait([pool.submit(lambda slot, k=k: run_command([sys.executable, "-c", {SLEEPER!r}, str(tmp / f"pid{{k}}")],
                                                                log, dict(os.environ)) == 0) for k in range(4)])
    """)
    process = subprocess.Popen([sys.executable, "-c", driver])
    pids = [_wait_for(tmp_path / f"pid{k}") for k in range(2)]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert all(_gone(pid) for pid in pids)
    time.sleep(1.0)  # a queued command started by mistake would have written its pid by now
    assert not (tmp_path / "pid2").exists() and not (tmp_path / "pid3").exists()


def test_outside_the_context_sigterm_handling_is_put_back():
    before = signal.getsignal(signal.SIGTERM)
    with stopping_commands():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
