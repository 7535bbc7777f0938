"""SMPL parameter reader: VIBE's output layout, errors; smplx only where the model files exist."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import MotionError
from mdm_kinemic.data.reader_base import ReaderSettings
from mdm_kinemic.data.readers import get_reader
from mdm_kinemic.data.smpl import load_smpl_params, smpl_params_from_dict


def _person(n: int) -> dict:
    return {"pose": np.zeros((n, 72)), "betas": np.zeros((n, 10)), "frame_ids": np.arange(n)}


def test_vibe_output_keeps_the_person_tracked_longest(tmp_path):
    path = tmp_path / "vibe_output.pkl"
    with open(path, "wb") as f:
        pickle.dump({1: _person(4), 2: _person(9), 3: _person(2)}, f)
    params = load_smpl_params(path)
    assert params.pose.shape == (9, 72) and params.betas.shape == (9, 10)
    np.testing.assert_array_equal(params.trans, np.zeros((9, 3)))  # VIBE estimates no translation


def test_npz_with_translation_and_single_betas(tmp_path):
    path = tmp_path / "clip.npz"
    np.savez(path, pose=np.zeros((3, 72)), betas=np.ones(10), trans=np.ones((3, 3)))
    params = load_smpl_params(path)
    np.testing.assert_array_equal(params.betas, np.ones((3, 10)))
    np.testing.assert_array_equal(params.trans, np.ones((3, 3)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"frames": 3}, "no SMPL 'pose'"),
        ({"pose": np.zeros((3, 69))}, r"\(T, 72\)"),
        ({"pose": np.zeros((3, 72)), "betas": np.zeros((2, 10))}, "betas"),
        ({"pose": np.zeros((3, 72)), "trans": np.zeros((3, 2))}, "trans"),
    ],
)
def test_malformed_parameters(data, message):
    with pytest.raises(MotionError, match=message):
        smpl_params_from_dict(data, "bad.pkl")


def test_reader_without_model_files_names_the_fix(tmp_path):
    path = tmp_path / "clip.npz"
    np.savez(path, pose=np.zeros((3, 72)))
    with pytest.raises(FileNotFoundError, match="--smpl_model_dir"):
        get_reader("smpl").read(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        get_reader("smpl", ReaderSettings(smpl_model_dir=str(tmp_path / "nowhere"))).read(path)


def test_smplx_joints_with_model_files(tmp_path):
    """Runs only where $MDM_KINEMIC_SMPL_DIR points to the SMPL model files (licensed)."""
    model_dir = os.environ.get("MDM_KINEMIC_SMPL_DIR")
    if not model_dir or not Path(model_dir).exists():
        pytest.skip("set MDM_KINEMIC_SMPL_DIR to the SMPL model folder to run smplx")
    path = tmp_path / "clip.npz"
    np.savez(path, pose=np.zeros((2, 72)), betas=np.zeros(10), trans=np.array([[0, 0, 0], [1, 0, 0]]))
    motion = get_reader("smpl", ReaderSettings(smpl_model_dir=model_dir, smpl_camera_frame=False)).read(path)
    assert motion.joints.shape == (2, 22, 3) and motion.fps == 30.0
    np.testing.assert_allclose(motion.joints[1] - motion.joints[0], np.tile([1.0, 0, 0], (22, 1)), atol=1e-5)
    assert motion.joints[0, 15, 1] > motion.joints[0, 0, 1]  # head above pelvis in SMPL's rest frame
