"""Mining pictures: the MIC module's attention over a prior clip with the mined window shaded.

The paper's MIC figure (Sec. 4.2): for a target-prior pair, the per-frame attention a^P of the
prior stream, and the window x^{P*} of the target's length m with the largest summed attention
(Eq. 2). Written at every checkpoint for a few pairs, so that mining can be watched as the MIC
module trains.
"""

from __future__ import annotations

import textwrap
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mdm_kinemic.viz.figures import save_png

FPS = 20


def plot_mining(
    attention: Sequence[float],
    window_start: int,
    window_length: int,
    caption: str,
    target_class: str,
    path: str | os.PathLike,
    *,
    dww: float | None = None,
    step: int | None = None,
    clip_id: str | None = None,
) -> Path:
    """Draw one mining picture as a PNG.

    Args:
        attention: a^P over the prior's valid frames (length L), softmax weights summing to 1.
        window_start: first frame of the mined window (Eq. 2), 0 <= start < L.
        window_length: frames of the window (min(m, L), m = the paired target's length).
        caption: the prior's source caption.
        target_class: the paired target's class name.
        path: output .png path; written atomically.
        dww: the pair's dynamic window weight (Eq. 6), shown in the title when given.
        step: training step, shown in the title when given.
        clip_id: source clip id, shown in the title when given.

    Returns:
        The written path.

    Raises:
        ValueError: empty attention, or a window outside the prior's frames.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"attention must be a non-empty 1-D sequence, got shape {a.shape}")
    if not (0 <= window_start and window_length >= 1 and window_start + window_length <= a.size):
        raise ValueError(f"window [{window_start}, {window_start + window_length}) lies outside the "
                         f"prior's {a.size} frames")
    seconds = np.arange(a.size) / FPS
    fig, ax = plt.subplots(figsize=(9.0, 3.2), dpi=110)
    ax.axvspan(window_start / FPS, (window_start + window_length) / FPS, color="tab:orange", alpha=0.25,
               label=f"mined window: frames {window_start}-{window_start + window_length - 1}")
    ax.plot(seconds, a, color="tab:blue", lw=1.5, label="prior attention a^P")
    ax.axhline(1.0 / a.size, color="grey", lw=0.8, ls="--", label="uniform")
    ax.set_xlabel("prior frame time (s, 20 fps)")
    ax.set_ylabel("attention")
    ax.set_xlim(0, a.size / FPS)
    ax.set_ylim(bottom=0)
    parts = [f"target class: {target_class}"]
    if dww is not None:
        parts.append(f"dww {dww:.3f}")
    if step is not None:
        parts.append(f"step {step}")
    source = f"prior{' ' + clip_id if clip_id else ''}: \"{caption}\""
    ax.set_title("\n".join([" | ".join(parts), *textwrap.wrap(source, 90)]), fontsize=9)
    # beside the axes: inside, any corner can hide the attention peak or the window
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return save_png(fig, path)
