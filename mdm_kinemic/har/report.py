"""Writing HAR results: atomic JSON and text files, confusion-matrix PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mdm_kinemic.atomic import atomic_write_bytes
from mdm_kinemic.viz.figures import save_png


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON via a temporary file and rename; NaN/inf become null."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode())
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically (temporary file and rename)."""
    path = Path(path)
    atomic_write_bytes(path, text.encode())
    return path


def write_record(stem: str | Path, record: Any, markdown: str) -> tuple[Path, Path]:
    """Write STEM.md, then STEM.json (both atomically): the JSON last, so that a reader taking it
    as the mark of a finished record never finds the table missing. Returns (md, json)."""
    stem = Path(stem)
    return write_text(stem.with_suffix(".md"), markdown), write_json(stem.with_suffix(".json"), record)


def save_confusion_png(path: str | Path, confusion: np.ndarray, class_names: Sequence[str], title: str) -> Path:
    """Row-normalised confusion matrix [K, K] (rows true, columns predicted) as a PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    confusion = np.asarray(confusion, dtype=np.float64)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    k = len(class_names)
    size = max(4.0, 0.6 * k + 2.0)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share, vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(confusion[i, j])}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    fig.tight_layout()
    return save_png(fig, path, dpi=120)
