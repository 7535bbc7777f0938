"""Saving matplotlib figures: atomically, then closed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from mdm_kinemic.atomic import atomic_path


def save_png(fig: Any, path: str | os.PathLike, *, dpi: Optional[float] = None) -> Path:
    """Write ``fig`` (a matplotlib Figure) as a PNG at ``path`` atomically and close it.

    Returns:
        ``path`` as a Path. The figure is closed even when writing fails, so a long run that
        draws at every save does not accumulate open figures.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path
