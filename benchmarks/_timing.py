"""Scaffolding shared by the benchmark scripts: device-synchronised timing, process memory, and
the JSON result written atomically (a crashed run leaves the previous result)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the scripts run from a checkout without an install too
    sys.path.insert(0, str(REPO_ROOT))

from mdm_kinemic.atomic import atomic_write_text  # noqa: E402


def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], Any], device: torch.device | str) -> float:
    """Wall seconds of one call of ``step``, the device synchronised before and after."""
    import time

    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def proc_status_mib(key: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in MiB (Linux).

    Raises:
        KeyError: the field is absent.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def write_json(report: dict, out: str | Path, indent: int = 2) -> Path:
    """Write ``report`` as JSON at ``out`` atomically, creating its folder; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=indent) + "\n")
    return out
