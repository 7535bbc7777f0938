"""The Mean/Std every motion of a run is normalised with: those of the checkpoint's training data.

The teacher and the student's base were trained on motions z-scored with their dataset's
Mean.npy/Std.npy (HumanML3D's for humanml_trans_enc_512); targets and priors must be z-scored
with the same statistics, not with their own corpus's (a converted corpus ships its own Mean/Std,
which are ignored here). Upstream stores no statistics in its checkpoints: they are looked up in
``--norm_stats``, else the checkpoint's ``data_dir``, else upstream's ``dataset/HumanML3D``
(``dataset/KIT-ML`` for KIT), where upstream's own training reads them, else (263 features
only) HumanML3D's copies shipped with the package (data/packaged_stats.py; logged).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, NamedTuple, Optional

import numpy as np

from mdm_kinemic.data.packaged_stats import packaged_stats_folder

logger = logging.getLogger(__name__)
_UPSTREAM_DATA = {"humanml": "HumanML3D", "kit": "KIT-ML"}
_FILES = ("Mean.npy", "Std.npy")


class NormStats(NamedTuple):
    """Mean and Std (F,) float32 and the folder they were read from."""

    mean: np.ndarray
    std: np.ndarray
    folder: Path


def _read(folder: Path) -> Optional[NormStats]:
    if not all((folder / f).is_file() for f in _FILES):
        return None
    return NormStats(np.load(folder / "Mean.npy").astype(np.float32), np.load(folder / "Std.npy").astype(np.float32), folder)


def checkpoint_data_folders(checkpoint_args: Mapping, mdm_root: Optional[Path]) -> list[Path]:
    """Where the checkpoint's own training statistics may be: its data_dir, upstream's dataset folder."""
    folders = []
    data_dir = str(checkpoint_args.get("data_dir") or "")
    if data_dir:
        path = Path(os.path.expanduser(data_dir))
        if not path.is_absolute() and mdm_root is not None:
            path = mdm_root / path
        folders.append(path)
    name = _UPSTREAM_DATA.get(str(checkpoint_args.get("dataset", "humanml")))
    if name and mdm_root is not None:
        folders.append(mdm_root / "dataset" / name)
    return folders


def resolve_norm_stats(explicit: Optional[str], checkpoint_args: Mapping, width: int,
                       mdm_root: Optional[Path] = None) -> NormStats:
    """Find and check the checkpoint's Mean/Std.

    Args:
        explicit: ``--norm_stats`` folder, or None to look in the checkpoint's data folders, then
            (263 features) in HumanML3D's statistics shipped with the package.
        checkpoint_args: the checkpoint's args.json (dataset, data_dir).
        width: the checkpoint's feature width (263 for HumanML3D, 251 for KIT).
        mdm_root: upstream root (relative data_dir and dataset/ are resolved against it).

    Returns:
        :class:`NormStats`.

    Raises:
        FileNotFoundError: no folder holds Mean.npy and Std.npy and the width is not 263 (lists the
            places tried, the fix).
        ValueError: statistics of another width than the checkpoint's, non-finite values or a Std
            <= 0, or ``explicit`` statistics that differ from those found with the checkpoint's data.
    """
    own = [s for s in map(_read, checkpoint_data_folders(checkpoint_args, mdm_root)) if s is not None]
    if explicit:
        folder = Path(os.path.abspath(os.path.expanduser(explicit)))
        stats = _read(folder)
        if stats is None:
            raise FileNotFoundError(f"--norm_stats {folder} does not hold both Mean.npy and Std.npy")
    elif own:
        stats = own[0]
    elif packaged_stats_folder(width) is not None:
        stats = _read(packaged_stats_folder(width))
        logger.info("no Mean.npy/Std.npy in the checkpoint's data folders (%s): using HumanML3D's, shipped in %s",
                    ", ".join(map(str, checkpoint_data_folders(checkpoint_args, mdm_root))) or "none given",
                    stats.folder)
    else:
        tried = ", ".join(map(str, checkpoint_data_folders(checkpoint_args, mdm_root))) or "nothing"
        raise FileNotFoundError(
            f"no Mean.npy/Std.npy of the checkpoint's training data (tried {tried}). Fix: pass --norm_stats DIR "
            "with the Mean.npy/Std.npy the checkpoint was trained with (HumanML3D's for humanml_trans_enc_512)")
    if stats.mean.shape != (width,) or stats.std.shape != (width,):
        raise ValueError(
            f"{stats.folder}: Mean.npy/Std.npy have shapes {stats.mean.shape}/{stats.std.shape}, but the checkpoint's "
            f"data has {width} features per frame. Fix: pass --norm_stats with the Mean/Std of the checkpoint's "
            "training data (HumanML3D's for humanml_trans_enc_512)")
    if not (np.isfinite(stats.mean).all() and np.isfinite(stats.std).all() and (stats.std > 0).all()):
        raise ValueError(f"{stats.folder}: Mean.npy/Std.npy hold non-finite values or a Std <= 0; they are corrupt")
    reference = own[0] if explicit and own else None
    if reference is not None and reference.folder != stats.folder and reference.mean.shape == stats.mean.shape:
        if not (np.allclose(reference.mean, stats.mean, rtol=1e-4, atol=1e-6)
                and np.allclose(reference.std, stats.std, rtol=1e-4, atol=1e-6)):
            raise ValueError(
                f"--norm_stats {stats.folder} differs from the Mean/Std of the checkpoint's training data in "
                f"{reference.folder}: motions normalised with other statistics than the model's are off its "
                "input distribution. Fix: drop --norm_stats, or pass the checkpoint's own statistics")
    return stats
