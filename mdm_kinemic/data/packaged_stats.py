"""HumanML3D's Mean/Std shipped with the package: the default statistics of 263-feature models.

Upstream's checkpoints hold no normalisation statistics, and its HumanML3D-layout models
(humanml_trans_enc_512 and the others trained on HumanML3D) were trained on features z-scored
with HumanML3D's Mean.npy/Std.npy. Where a checkpoint's data folder lacks them, these copies
(github EricGuo5513/HumanML3D @ 9176e8f, HumanML3D/Mean.npy and Std.npy, MIT; the sha256 of
each is below and in docs/data.md) stand in, and the caller logs that they did.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HUMANML3D_FEATURES", "HUMANML3D_STATS_DIR", "HUMANML3D_STATS_SHA256", "packaged_stats_folder"]

#: the folder holding Mean.npy, Std.npy (263,) float32 and their LICENSE
HUMANML3D_STATS_DIR = Path(__file__).resolve().with_name("humanml3d_stats")
#: features per frame of HumanML3D's representation
HUMANML3D_FEATURES = 263
HUMANML3D_STATS_SHA256 = {
    "Mean.npy": "26e136555dab04c94a129d446c26e6b9939cbf045fbf77bcf5462c1fb5a2001c",
    "Std.npy": "6565a65ed9b31e23c328829a309e1c482be8b85fd23b43d65451a9b19a917f40",
}


def packaged_stats_folder(width: int) -> Path | None:
    """The shipped statistics folder for a model with ``width`` features per frame.

    Returns:
        HUMANML3D_STATS_DIR for 263 features (HumanML3D's layout); None for any other width
        (KIT's 251 features have no shipped statistics).
    """
    return HUMANML3D_STATS_DIR if width == HUMANML3D_FEATURES else None
