"""Stage commands at once: --devices parsing, one command per slot, failures, and the driver's commands."""

from __future__ import annotations

import threading
import time

import pytest

from mdm_kinemic.bench.pool import CommandPool, parse_devices
from mdm_kinemic.bench.stages import CEILING, VARIANTS, Bench, StageError


def test_devices_are_a_comma_separated_list_of_torch_devices():
    assert parse_devices("cuda:0, cuda:1,") == ("cuda:0", "cuda:1")
    assert parse_devices("cpu") == ("cpu",)
    assert parse_devices("0,1") == ("cuda:0", "cuda:1")  # upstream's integer spelling
    for text, message in [("", "give a comma-separated list"), ("cuda:0,gpu1", "device 'gpu1' is not one of"),
                          ("auto", "'auto' names no device"), ("cuda:1,1", "names a device twice")]:
        with pytest.raises(ValueError, match=message):
            parse_devices(text)


def test_one_slot_runs_each_command_at_once_and_a_failure_stops_the_next():
    pool, ran = CommandPool([None]), []

    def fail(slot):
        raise StageError("broken")

    assert pool.submit(lambda slot: ran.append(("a", slot, threading.current_thread())) or True).result() is True
    with pytest.raises(StageError, match="broken"):
        pool.submit(fail)
    assert ran == [("a", None, threading.main_thread())]
    pool.close()


def test_slots_run_commands_at_once_never_two_on_one_slot():
    pool = CommandPool(["cuda:0", "cuda:1"])
    both = threading.Barrier(2, timeout=30)  # passes only when two commands run at the same time
    busy: set[str] = set()
    lock = threading.Lock()
    seen = []

    def command(slot):
        with lock:
            assert slot not in busy
            busy.add(slot)
            seen.append(slot)
        both.wait()
        with lock:
            busy.discard(slot)
        return True

    assert pool.wait([pool.submit(command) for _ in range(4)]) == [True] * 4
    assert sorted(seen[:2]) == ["cuda:0", "cuda:1"] and sorted(seen) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    pool.close()


def test_a_failed_command_is_raised_after_the_running_ones_end():
    pool = CommandPool(["cpu", "cpu"])
    ended, finished = threading.Event(), threading.Event()

    def fail(slot):
        ended.set()  # lets the running command finish
        raise StageError("synth-full exited with 1")

    def running(slot):
        ended.wait(timeout=30)
        time.sleep(0.2)  # still running when the failure is raised
        finished.set()
        return True

    futures = [pool.submit(running), pool.submit(fail)]
    with pytest.raises(StageError, match="synth-full"):
        pool.wait(futures)
    assert finished.is_set()
    pool.close()


@pytest.fixture
def bench(bench: Bench) -> Bench:
    """The tiny benchmark with a finished teacher."""
    bench.teacher_dir.mkdir(parents=True)
    (bench.teacher_dir / "model000000004.pt").touch()
    return bench


def _record(bench: Bench, monkeypatch) -> list[dict]:
    calls: list[dict] = []
    lock = threading.Lock()

    def run(name, module, args, env=None):
        with lock:
            calls.append({"name": name, "args": [str(a) for a in args], "env": env,
                          "main_thread": threading.current_thread() is threading.main_thread()})
        return True

    monkeypatch.setattr(bench, "_run", run)
    return calls


def _flag(call: dict, flag: str) -> str:
    return call["args"][call["args"].index(flag) + 1]


def test_by_default_the_commands_run_in_order_in_the_driver(bench, monkeypatch):
    calls = _record(bench, monkeypatch)
    bench.jobs = 1
    bench.stage_fewshot()
    assert [c["name"] for c in calls] == [f"fewshot-{v}" for v in VARIANTS]
    assert all(c["main_thread"] and c["env"] is None and _flag(c, "--device") == "cpu" for c in calls)


def test_devices_give_each_command_one_device(bench, monkeypatch):
    calls = _record(bench, monkeypatch)
    bench.devices = ("cuda:0", "cuda:1")
    bench.jobs = 2
    bench.stage_fewshot()
    for variant in VARIANTS:
        bench.fewshot_dir(variant).mkdir(parents=True)
        (bench.fewshot_dir(variant) / "model000000002.pt").touch()
    bench.stage_synth()
    bench.keep_going = True  # no synthetic sets: the evaluator and the ceiling run
    bench.stage_har()
    names = sorted(c["name"] for c in calls)
    assert names == sorted([*(f"fewshot-{v}" for v in VARIANTS), *(f"synth-{n}" for n in ("zero_shot", *VARIANTS)),
                            "har-evaluator", f"har-{CEILING}"])
    assert {_flag(c, "--device") for c in calls} <= {"cuda:0", "cuda:1"}
    assert not any(c["main_thread"] for c in calls) and all(c["env"] is None for c in calls)
    assert _flag(next(c for c in calls if c["name"] == f"har-{CEILING}"), "--jobs") == "2"  # seeds per device


def test_cpu_jobs_run_one_thread_commands_sharing_the_seed_jobs(bench, monkeypatch):
    calls = _record(bench, monkeypatch)
    bench.jobs = 4
    bench.keep_going = True
    bench.stage_har()  # 9 evaluations to do (evaluator, ceiling, real only, 6 sets) on 4 jobs: one seed at a time each
    ceiling = next(c for c in calls if c["name"] == f"har-{CEILING}")
    assert _flag(ceiling, "--jobs") == "1" and _flag(ceiling, "--device") == "cpu"
    assert ceiling["env"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} and not ceiling["main_thread"]
    for name in ("real_only", "zero_shot", *VARIANTS):  # only the ceiling is left: it takes every job for its seeds
        bench.har_dir(name).mkdir(parents=True)
        (bench.har_dir(name) / "har_results.json").write_text("{}")
    for suffix in (".safetensors", ".json"):
        bench.evaluator_stem.with_suffix(suffix).parent.mkdir(parents=True, exist_ok=True)
        bench.evaluator_stem.with_suffix(suffix).write_text("{}")
    calls.clear()
    bench.stage_har()
    assert [c["name"] for c in calls] == [f"har-{CEILING}"] and _flag(calls[0], "--jobs") == "4"


def test_bad_devices_flag_is_a_usage_error(tmp_path, capsys):
    from mdm_kinemic.bench.bandai import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--bandai_root", str(tmp_path), "--out", str(tmp_path / "o"), "--devices", "cuda:0,gpu1"])
    assert exit_info.value.code == 2
    assert "--devices: device 'gpu1' is not one of: auto, cpu, cuda" in capsys.readouterr().err
