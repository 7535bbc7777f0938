"""SMPL for upstream MDM without the licensed SMPL files, for 263-dim hml_vec models.

Upstream's MDM.__init__ (model/mdm.py) always builds ``Rotation2xyz`` (model/rotation2xyz.py),
which builds the SMPL body model (model/smpl.py) from ``./body_models/smpl/SMPL_NEUTRAL.pkl`` and
``J_regressor_extra.npy``, paths relative to the current directory (utils/config.py). hml_vec
models never run SMPL: sample/generate.py recovers joints with recover_from_ric and calls
``model.rot2xyz(..., pose_rep='xyz')``, which returns its input before touching SMPL, and MDM only
forwards ``_apply`` / ``train`` to ``rot2xyz.smpl_model``.

``install_smpl(root)`` (called by ``import_upstream``) therefore

* points utils/config.py's SMPL paths at ``<root>/body_models/smpl`` as absolute paths, so that
  upstream's SMPL loads from any working directory when the files are there, and
* where the files are absent, replaces the ``SMPL`` name inside model/rotation2xyz.py with
  ``SMPLUnavailable``: a parameter-free module that accepts ``_apply``, ``train`` and ``eval`` and
  raises ``SMPLUnavailableError`` naming the files and the fix if a rotation representation
  ever needs the body model. MDM's state dict is unchanged (Rotation2xyz is not a submodule).
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import torch

__all__ = ["SMPL_FILES", "SMPLUnavailable", "SMPLUnavailableError", "install_smpl", "smpl_dir", "smpl_files_present"]

logger = logging.getLogger(__name__)

SMPL_FILES = ("SMPL_NEUTRAL.pkl", "J_regressor_extra.npy")
NUM_BETAS = 10  # upstream utils/config.py NUM_BETAS; read by Rotation2xyz for default betas


class SMPLUnavailableError(FileNotFoundError):
    """Upstream code asked for the SMPL body model and its files are not installed."""


def smpl_dir(root: Path) -> Path:
    """``<root>/body_models/smpl``: where upstream's prepare/download_smpl_files.sh puts SMPL."""
    return Path(root) / "body_models" / "smpl"


def smpl_files_present(root: Path) -> bool:
    """True when every file upstream's SMPL class reads is under ``smpl_dir(root)``."""
    return all((smpl_dir(root) / name).is_file() for name in SMPL_FILES)


class SMPLUnavailable(torch.nn.Module):
    """Stand-in for upstream's SMPL body model (model/smpl.py) when its files are absent.

    Holds no parameters, so moving, training or evaluating the MDM that owns it is unaffected;
    ``Rotation2xyz`` with ``pose_rep='xyz'`` (hml_vec data) returns its input without calling it.

    Raises:
        SMPLUnavailableError: on any forward call (rot6d/rotvec/... to joints or vertices).
    """

    num_betas = NUM_BETAS

    def __init__(self, model_path: str | None = None, **kwargs) -> None:
        super().__init__()
        self.model_path = model_path

    def forward(self, *args, **kwargs):
        folder = Path(self.model_path).parent if self.model_path else "body_models/smpl"
        raise SMPLUnavailableError(
            f"Upstream MDM needs the SMPL body model for this rotation representation, but "
            f"{', '.join(SMPL_FILES)} are not in {folder}. Fix: run `bash prepare/download_smpl_files.sh` "
            "in the upstream MDM root (SMPL's licence applies). HumanML3D hml_vec models do not need it."
        )


def _patch_config_paths(folder: Path) -> None:
    from utils import config

    config.SMPL_DATA_PATH = str(folder)
    config.SMPL_KINTREE_PATH = str(folder / "kintree_table.pkl")
    config.SMPL_MODEL_PATH = str(folder / "SMPL_NEUTRAL.pkl")
    config.JOINT_REGRESSOR_TRAIN_EXTRA = str(folder / "J_regressor_extra.npy")
    smpl_module = sys.modules.get("model.smpl")
    if smpl_module is not None:
        # model/smpl.py copied the relative paths at import: its default argument and global
        smpl_module.JOINT_REGRESSOR_TRAIN_EXTRA = config.JOINT_REGRESSOR_TRAIN_EXTRA
        init = smpl_module.SMPL.__init__
        init.__defaults__ = (config.SMPL_MODEL_PATH,)


def install_smpl(root: Path) -> bool:
    """Make upstream's SMPL independent of the working directory, or substitute it.

    Must run after upstream's packages are importable (``import_upstream`` does both).

    Args:
        root: upstream MDM root (absolute).

    Returns:
        True when upstream's real SMPL is in use, False when ``SMPLUnavailable`` replaces it.
    """
    folder = smpl_dir(root).absolute()
    _patch_config_paths(folder)
    from model import rotation2xyz

    present = smpl_files_present(root)
    if present:
        import model.smpl

        rotation2xyz.SMPL = model.smpl.SMPL
        logger.info("SMPL body model from %s", folder)
    else:
        # Rotation2xyz calls SMPL() without arguments; bind the path the error should name
        rotation2xyz.SMPL = functools.partial(SMPLUnavailable, str(folder / "SMPL_NEUTRAL.pkl"))
        logger.info("SMPL files absent from %s: rot2xyz passes xyz through, SMPL calls raise", folder)
    return present

