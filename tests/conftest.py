"""Shared test configuration: the `upstream` tier skips with a clear reason when MDM is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MDM_KINEMIC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
UPSTREAM_ROOT = Path(os.environ.get("MDM_ROOT", REPO_ROOT / "third_party" / "motion-diffusion-model"))


def upstream_available() -> bool:
    return (UPSTREAM_ROOT / "model" / "mdm.py").is_file()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if upstream_available():
        return
    skip = pytest.mark.skip(
        reason=f"upstream MDM not found at {UPSTREAM_ROOT}: run "
        "'git submodule update --init third_party/motion-diffusion-model' or set MDM_ROOT"
    )
    for item in items:
        if "upstream" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (HumanML3D Mean/Std, NTU names, Bandai BVH samples)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}; set MDM_KINEMIC_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _one_seeded_torch_thread():
    """Every test starts from the same seed, so a tolerance that holds once holds on every run;
    tiny models run faster on one thread, and CI has two cores shared with pytest itself."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_base_checkpoint():
    """``make(folder, seed) -> Path``: a tiny upstream-format checkpoint with random weights (2
    layers, latent 64, humanml_trans_enc_512's args otherwise) written to ``folder``; upstream is
    imported with random CLIP weights first. For tests of the ``upstream`` tier."""

    def make(folder: Path, seed: int = 0) -> Path:
        from mdm_kinemic.mdm.checkpoints.random_checkpoint import RandomCheckpointSettings, make_random_checkpoint
        from mdm_kinemic.mdm.upstream.locate import import_upstream

        import_upstream(clip_weights="random")
        return make_random_checkpoint(RandomCheckpointSettings(out=str(folder), layers=2, latent_dim=64, seed=seed))

    return make


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _wave(side: str, frames: int = 60, turn: float = 0.02, noise: float = 0.0, period: float = 15.0,
          seed: int = 0) -> np.ndarray:
    """(frames, 22, 3) SMPL-22 joints at 20 fps: one arm raised sideways and waving (elbow and wrist swing about the
    shoulder), the body walking forward while turning ``turn`` rad per frame."""
    shoulder, elbow, wrist = (16, 18, 20) if side == "left" else (17, 19, 21)
    outward = 1.0 if side == "left" else -1.0  # left is +X when facing +Z
    from mdm_kinemic.data.skeleton import rest_pose

    base = rest_pose()
    rng = np.random.default_rng(seed)
    out = np.empty((frames, 22, 3))
    for t in range(frames):
        pose = base.copy()
        angle = outward * (2.2 + 0.6 * np.sin(2 * np.pi * t / period))
        c, s = np.cos(angle), np.sin(angle)
        about_z = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        for joint in (elbow, wrist):
            pose[joint] = base[shoulder] + about_z @ (base[joint] - base[shoulder])
        pose = pose @ _rotation_y(turn * t).T + np.array([0.01 * t, 0.9, 0.03 * t])
        out[t] = pose + noise * rng.normal(size=(22, 3))
    return out


@pytest.fixture()
def wave():
    """A factory of synthetic one-arm waves: wave("left" | "right", frames, turn, noise, period, seed)."""
    return _wave


def _torchrun(args: list[str], cwd: Path, env: dict | None = None, nproc: int = 2, timeout: int = 600):
    """``torchrun --standalone --nproc_per_node NPROC ARGS`` (as ``python -m torch.distributed.run``),
    with this checkout importable, CLIP weights random and one torch thread per rank."""
    import subprocess
    import sys

    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
                "MDM_KINEMIC_CLIP_WEIGHTS": "random", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", **(env or {})}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, check=False, timeout=timeout)


@pytest.fixture(scope="session")
def torchrun():
    """``torchrun(args, cwd, env=None, nproc=2)``: a CompletedProcess of the gloo ranks (see _torchrun)."""
    return _torchrun
