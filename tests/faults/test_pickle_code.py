"""A crafted VIBE .pkl whose unpickling would run a shell command is refused, and nothing runs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from mdm_kinemic.data.smpl import load_smpl_params
from mdm_kinemic.safe_pickle import UnsafePickleError


class _RunsCommand:
    """Unpickling this calls os.system(command): what a hostile .pkl does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _crafted(sentinel) -> dict:
    return {1: {"pose": np.zeros((3, 72)), "betas": np.zeros((3, 10)), "hook": _RunsCommand(f"touch '{sentinel}'")}}


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_vibe_pkl_with_os_system_reduce_is_refused(tmp_path, protocol):
    sentinel, path = tmp_path / "ran", tmp_path / "vibe_output.pkl"
    path.write_bytes(pickle.dumps(_crafted(sentinel), protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"vibe_output\.pkl: refused to load the global (posix|nt|os)\.system"):
        load_smpl_params(path)
    assert not sentinel.exists()
    # the payload is real: plain pickle runs it (on POSIX, where `touch` exists)
    if os.name == "posix":
        pickle.loads(path.read_bytes())
        assert sentinel.exists()


def test_joblib_vibe_pkl_with_os_system_reduce_is_refused(tmp_path):
    joblib = pytest.importorskip("joblib")
    sentinel, path = tmp_path / "ran", tmp_path / "vibe_output.pkl"
    joblib.dump(_crafted(sentinel), path)
    with pytest.raises(UnsafePickleError, match=r"refused to load the global (posix|nt|os)\.system"):
        load_smpl_params(path)
    assert not sentinel.exists()
