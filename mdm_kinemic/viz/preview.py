"""A PNG of recovered skeletons, a few clips per class, to check a conversion by eye.

Usage::

    python -m mdm_kinemic.viz.preview ROOT --out skeletons.png [--per_class 2] [--frames 4]

Each panel draws one clip's joints, recovered from its hml_vec features by recover_from_ric, at a
few evenly spaced frames (light to dark), seen from the side and a little from the front (Y up).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mdm_kinemic.data.hml_vec import recover_from_ric
from mdm_kinemic.data.labels import load_labelled
from mdm_kinemic.data.skeleton import KINEMATIC_CHAIN

#: Viewing direction: the horizontal screen axis is Z turned by this angle towards X.
VIEW_DEG = 35.0


def _project(joints: np.ndarray) -> np.ndarray:
    a = math.radians(VIEW_DEG)
    return np.stack([joints[..., 2] * math.cos(a) + joints[..., 0] * math.sin(a), joints[..., 1]], axis=-1)


def save_skeleton_grid(
    root: str | Path, out: str | Path, per_class: int = 1, frames: int = 4, columns: int = 6, dpi: int = 60
) -> Path:
    """Draw ``per_class`` clips of every class of a labelled dataset into one PNG.

    Clips are the first ``per_class`` ids of each class in sorted order (deterministic).

    Args:
        root: labelled HumanML3D-layout dataset (labels.txt or NTU-VIBE layout).
        out: PNG path (parent folders created).
        per_class: clips per class.
        frames: poses per clip, evenly spaced over the clip.
        columns: panels per row.
        dpi: resolution (60 keeps a 6-column grid under ~200 KB).

    Returns:
        The PNG path.

    Raises:
        ValueError: the dataset has no labelled clip.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labelled = load_labelled(root)
    data = labelled.dataset
    picks = [(labelled.class_names[c], i) for c, ids in labelled.by_class().items() for i in sorted(ids)[:per_class]]
    if not picks:
        raise ValueError(f"{root}: no labelled clip to draw")
    rows = math.ceil(len(picks) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, clip_id) in zip(axes.flat, picks):
        joints = _project(recover_from_ric(np.asarray(data.motion(clip_id), dtype=np.float32)))
        for k, t in enumerate(np.linspace(0, len(joints) - 1, frames).round().astype(int)):
            shade = 0.75 - 0.65 * k / max(frames - 1, 1)
            for chain in KINEMATIC_CHAIN:
                ax.plot(joints[t, list(chain), 0], joints[t, list(chain), 1], color=str(shade), lw=1.2)
        ax.set_aspect("equal")
        ax.set_title(f"{name}\n{clip_id}", fontsize=7)
    fig.tight_layout()
    from mdm_kinemic.viz.figures import save_png

    return save_png(fig, out, dpi=dpi)


def main(argv: Sequence[str] | None = None) -> Path:
    """CLI front of :func:`save_skeleton_grid`."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.viz.preview", description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="labelled HumanML3D-layout dataset")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--per_class", type=int, default=1, help="clips per class")
    p.add_argument("--frames", type=int, default=4, help="poses drawn per clip")
    p.add_argument("--columns", type=int, default=6, help="panels per row")
    p.add_argument("--dpi", type=int, default=60, help="resolution")
    args = p.parse_args(argv)
    return save_skeleton_grid(args.root, args.out, args.per_class, args.frames, args.columns, args.dpi)


if __name__ == "__main__":
    main()
