"""SMPL parameters (as VIBE writes them) -> SMPL-22 joints through smplx.

VIBE (Kocabas et al. 2020, demo.py) saves with joblib a dict {person id: {"pose": (T, 72) axis-angle,
"betas": (T, 10), "frame_ids", "pred_cam", "orig_cam", "joints3d", ...}}; it estimates no world
translation, so the body stays at the origin unless the file carries "trans" (T, 3). A plain
dict or .npz with "pose", "betas" and optionally "trans" is read the same way. With several
people the one tracked on most frames is kept. The global orientation is in the camera frame
(Y down, Z into the scene); with ``smpl_camera_frame`` it is turned 180 degrees about X to Y up.

.pkl files are read by :func:`mdm_kinemic.safe_pickle.safe_load_pickle` (plain or joblib
pickles), which admits only numpy arrays and builtin containers: a crafted .pkl cannot run code.

smplx and the SMPL model files (licensed, not shipped) are needed only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from mdm_kinemic.data.hml_vec import MotionError
from mdm_kinemic.data.reader_base import Motion, MotionReader
from mdm_kinemic.safe_pickle import safe_load_pickle

VIBE_FPS = 30.0


class SmplParams(NamedTuple):
    """SMPL parameters of one person.

    Attributes:
        pose: (T, 72) axis-angle: global orientation (3) then 23 body joints (69).
        betas: (T, 10) shape coefficients.
        trans: (T, 3) root translation in metres.
    """

    pose: np.ndarray
    betas: np.ndarray
    trans: np.ndarray


def _load_container(path: Path) -> dict:
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise MotionError(f"{path}: expected a dict (VIBE's output), got a {type(data).__name__}")
    return data


def smpl_params_from_dict(data: dict, source: str = "<smpl>") -> SmplParams:
    """Pick one person's parameters from VIBE's output dict (or a single-person dict).

    Raises:
        MotionError: no "pose" entry, or arrays of the wrong shape.
    """
    if "pose" not in data:
        people = [v for v in data.values() if isinstance(v, dict) and "pose" in v]
        if not people:
            raise MotionError(f"{source}: no SMPL 'pose' found; expected VIBE's output or a dict with pose, betas, trans")
        data = max(people, key=lambda p: len(np.asarray(p["pose"])))
    pose = np.asarray(data["pose"], dtype=np.float64)
    if pose.ndim != 2 or pose.shape[1] != 72:
        raise MotionError(f"{source}: SMPL pose must be (T, 72) axis-angle, got {pose.shape}")
    n = len(pose)
    betas = np.asarray(data.get("betas", np.zeros(10)), dtype=np.float64)
    if betas.ndim == 1:
        betas = np.tile(betas, (n, 1))
    if betas.shape[0] != n or betas.shape[1] < 10:
        raise MotionError(f"{source}: SMPL betas must be (10,) or (T, 10) with T = {n}, got {betas.shape}")
    trans = np.asarray(data.get("trans", np.zeros((n, 3))), dtype=np.float64)
    if trans.shape != (n, 3):
        raise MotionError(f"{source}: SMPL trans must be (T, 3) with T = {n}, got {trans.shape}")
    return SmplParams(pose, betas[:, :10], trans)


def load_smpl_params(path: str | Path) -> SmplParams:
    """Read SMPL parameters from a VIBE .pkl (joblib), a pickled dict or an .npz.

    Raises:
        MotionError: see :func:`smpl_params_from_dict`; a pickle that is not a dict.
        pickle.UnpicklingError: an unreadable pickle, or (UnsafePickleError) one naming anything
            but numpy arrays and builtin containers; the message names the file.
    """
    path = Path(path)
    return smpl_params_from_dict(_load_container(path), str(path))


def smpl_joints(params: SmplParams, model_dir: str | Path, gender: str = "neutral") -> np.ndarray:
    """Joint positions of SMPL parameters through smplx (hand joints dropped).

    Args:
        params: pose, betas, trans of T frames.
        model_dir: folder with the SMPL model files (smplx.create's model_path: the folder that
            holds ``smpl/SMPL_NEUTRAL.pkl`` or the .pkl files themselves).
        gender: "neutral", "male" or "female".

    Returns:
        (T, 22, 3) float64 positions in the parameters' frame (metres).

    Raises:
        FileNotFoundError: the model folder does not exist.
    """
    import smplx
    import torch

    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise FileNotFoundError(
            f"SMPL model folder {model_dir} not found: download SMPL from https://smpl.is.tue.mpg.de "
            "and pass its folder with --smpl_model_dir"
        )
    n = len(params.pose)
    model = smplx.create(str(model_dir), model_type="smpl", gender=gender, batch_size=n)
    with torch.no_grad():
        out = model(
            global_orient=torch.as_tensor(params.pose[:, :3], dtype=torch.float32),
            body_pose=torch.as_tensor(params.pose[:, 3:72], dtype=torch.float32),
            betas=torch.as_tensor(params.betas, dtype=torch.float32),
            transl=torch.as_tensor(params.trans, dtype=torch.float32),
        )
    return out.joints[:, :22].double().numpy()


class SmplReader(MotionReader):
    """SMPL parameter files (VIBE output) -> SMPL-22 joints, needs smplx and the model files."""

    name = "smpl"
    suffixes = (".pkl", ".npz")

    def read(self, path: Path) -> Motion:
        """(T, 22, 3) metres, Y up, at ``settings.fps`` (default 30, VIBE on NTU video).

        Raises:
            MotionError: malformed parameters. FileNotFoundError: no SMPL model folder given or
                found (the message names the fix).
        """
        if not self.settings.smpl_model_dir:
            raise FileNotFoundError(
                f"{path}: reading SMPL parameters needs the SMPL model files; pass --smpl_model_dir "
                "(download SMPL from https://smpl.is.tue.mpg.de)"
            )
        params = load_smpl_params(path)
        joints = smpl_joints(params, self.settings.smpl_model_dir, self.settings.smpl_gender)
        if self.settings.smpl_camera_frame:
            joints = joints * np.array([1.0, -1.0, -1.0])
        return Motion(joints, self.settings.fps or VIBE_FPS)
