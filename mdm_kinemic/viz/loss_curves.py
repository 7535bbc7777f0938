"""Loss curves of a run from its save_dir/losses.jsonl, as one PNG.

``python -m mdm_kinemic.viz.loss_curves SAVE_DIR --out curves.png [--smooth 10]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from mdm_kinemic.viz.figures import save_png

from mdm_kinemic.training.run_state import LossLog

# Loss terms first (one panel each), then the diagnostics the objective logs beside them.
_PANEL_ORDER = ("loss", "rec_target", "contrastive", "rec_window", "distillation", "dww_mean", "window_start_mean",
                "window_length_mean", "grad_norm_before_clip")


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or values.size < width:
        return values
    kernel = np.ones(width) / width
    head = np.cumsum(values[: width - 1]) / np.arange(1, width)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def plot_loss_curves(records: Sequence[dict], path: str | os.PathLike, *, smooth: int = 1,
                     keys: Optional[Sequence[str]] = None, title: str = "") -> Path:
    """One panel per logged key against the step; the raw values faint, a moving average bold.

    Args:
        records: LossLog records ({"step": s, key: value, ...}) in step order.
        path: output PNG; written atomically.
        smooth: moving-average width in steps (1 = none).
        keys: keys to draw; default: every key, loss terms first.
        title: figure title.

    Returns:
        The written path.

    Raises:
        ValueError: no records, or none of ``keys`` present.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not records:
        raise ValueError("no loss records to plot")
    present = sorted({k for r in records for k in r if k != "step"},
                     key=lambda k: (_PANEL_ORDER.index(k) if k in _PANEL_ORDER else len(_PANEL_ORDER), k))
    keys = [k for k in (keys or present) if k in present]
    if not keys:
        raise ValueError("none of the requested keys is in the records")
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), dpi=100, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r["step"], r[key]) for r in records if key in r]
        steps = np.array([p[0] for p in pts])
        values = np.array([p[1] for p in pts], dtype=np.float64)
        ax.plot(steps, values, color="tab:blue", alpha=0.3 if smooth > 1 else 1.0, lw=0.8)
        if smooth > 1:
            ax.plot(steps, _moving_average(values, smooth), color="tab:blue", lw=1.6)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        # steps are whole numbers; a few records would otherwise get ticks at 7.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("save_dir", help="a train_fewshot run folder holding losses.jsonl")
    parser.add_argument("--out", required=True, help="output PNG path")
    parser.add_argument("--smooth", type=int, default=1, help="moving-average width in steps (default: 1)")
    parser.add_argument("--title", default="", help="figure title (default: none)")
    args = parser.parse_args(argv)
    log = Path(args.save_dir) / "losses.jsonl"
    if not log.is_file():
        parser.error(f"{log} not found: is {args.save_dir} a train_fewshot run folder?")
    plot_loss_curves(LossLog.read(log), args.out, smooth=args.smooth, title=args.title)


if __name__ == "__main__":
    main()
