"""Stick-figure pictures of motions: an animation per sample and a class grid (the paper's Fig. 4).

Joints are HumanML3D's 22 SMPL joints, (T, 22, 3) in metres, Y up, at 20 fps (what
``recover_from_ric`` returns and what ``new_joints/`` holds). Animations are drawn by upstream
MDM's ``plot_3d_motion`` when the caller passes it (``mdm_kinemic.mdm.upstream.plotting`` loads it with
its matplotlib fix), so that they look like upstream's generate.py output; otherwise by the
matplotlib code here. The grid is always drawn here: each cell is a strobe of a few poses of one
motion, the real few-shot clips in the first row, generated samples below, one column per class.

matplotlib is imported inside the functions (Agg backend), never at import.
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdm_kinemic.atomic import atomic_path
from mdm_kinemic.data.skeleton import KINEMATIC_CHAIN, NUM_JOINTS

__all__ = ["ANIMATION_FORMATS", "FPS", "GridColumn", "as_joints", "render_animation", "render_grid"]

logger = logging.getLogger(__name__)

FPS = 20
ANIMATION_FORMATS = ("mp4", "gif")
# upstream plot_script.py colours: orange chains for generated motion, blue for ground truth
_GENERATED_COLOURS = ("#DD5A37", "#D69E00", "#B75A39", "#FF6D00", "#DDB50E")
_REAL_COLOURS = ("#4D84AA", "#5B9965", "#61CEB9", "#34C1E2", "#80B79A")

#: upstream's ``plot_3d_motion(save_path, kinematic_tree, joints, title, dataset, fps=...)``,
#: returning a moviepy VideoClip; see mdm_kinemic.mdm.upstream.plotting.load_upstream_plotter.
UpstreamPlotter = Callable[..., object]


def as_joints(joints: np.ndarray) -> np.ndarray:
    """Joint positions as (T, 22, 3) float64.

    Args:
        joints: (T, 22, 3), or (T, 66) as some HumanML3D-layout releases store new_joints
            (the authors' NTU-VIBE set does).

    Raises:
        ValueError: any other shape.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim == 2 and joints.shape[1] == NUM_JOINTS * 3:
        joints = joints.reshape(len(joints), NUM_JOINTS, 3)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) == 0:
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3) with T >= 1, got {joints.shape}")
    return joints


def _suffix_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ANIMATION_FORMATS:
        raise ValueError(f"animation path {path} must end in one of {', '.join('.' + f for f in ANIMATION_FORMATS)}")
    return fmt


def render_animation(
    joints: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "",
    fps: float = FPS,
    upstream_plot: UpstreamPlotter | None = None,
    real: bool = False,
) -> Path:
    """Write a stick-figure animation of one motion as .mp4 or .gif.

    Args:
        joints: (T, 22, 3) or (T, 66) joint positions, metres, Y up, at ``fps``.
        path: output file; its suffix (.mp4 or .gif) picks the format. Written atomically.
        title: caption shown above the figure.
        fps: frames per second of the motion and of the file (HumanML3D: 20).
        upstream_plot: upstream MDM's plot_3d_motion (from mdm.plotting.load_upstream_plotter);
            None draws with this module's matplotlib code.
        real: colour the skeleton as ground truth (blue) instead of generated (orange); this
            module's renderer only, upstream's draws generated motion in orange.

    Returns:
        The written path.

    Raises:
        ValueError: bad joints shape or suffix.
        RuntimeError: mp4 asked for and no ffmpeg found (install imageio-ffmpeg or ffmpeg, or
            write .gif).
    """
    path = Path(path)
    fmt = _suffix_format(path)
    joints = as_joints(joints)
    # the temporary file keeps the suffix: the writers pick the format from it
    with atomic_path(path, suffix=path.suffix) as tmp:
        if upstream_plot is not None:
            _write_upstream(joints, tmp, fmt, title, fps, upstream_plot)
        else:
            _write_own(joints, tmp, fmt, title, fps, real)
    return path


def _write_upstream(joints: np.ndarray, tmp: Path, fmt: str, title: str, fps: float, plot: UpstreamPlotter) -> None:
    """Upstream's plot_3d_motion returns a moviepy clip without a duration; generate.py sets it
    on the composite clip, here on the single one."""
    chain = [list(c) for c in KINEMATIC_CHAIN]
    clip = plot(str(tmp), chain, joints.copy(), title=title, dataset="humanml", fps=fps)
    clip.duration = len(joints) / fps
    try:
        if fmt == "mp4":
            clip.write_videofile(str(tmp), fps=fps, logger=None)
        else:
            clip.write_gif(str(tmp), fps=fps, logger=None)
    finally:
        clip.close()


def _ffmpeg_path() -> str:
    import shutil

    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if found is None:
        raise RuntimeError(
            "writing .mp4 needs ffmpeg: pip install imageio-ffmpeg (or put ffmpeg on PATH), or write .gif"
        )
    return found


def _limits(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits (lo, hi) over all frames, equal extent on every axis, floor at the lowest joint."""
    lo, hi = joints.reshape(-1, 3).min(axis=0), joints.reshape(-1, 3).max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5)
    lo, hi = centre - half, centre + half
    lo[1], hi[1] = joints[..., 1].min(), joints[..., 1].min() + 2 * half
    return lo, hi


def _setup_axes(ax, lo: np.ndarray, hi: np.ndarray) -> None:
    """Matplotlib's z axis is up: plot (x, z, y) of the Y-up motion."""
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[2], hi[2])
    ax.set_zlim(lo[1], hi[1])
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=15, azim=-70)
    ax.set_axis_off()


def _draw_pose(ax, pose: np.ndarray, colours: Sequence[str], alpha: float = 1.0, width: float = 2.0) -> None:
    for i, chain in enumerate(KINEMATIC_CHAIN):
        c = list(chain)
        ax.plot(pose[c, 0], pose[c, 2], pose[c, 1], color=colours[i % len(colours)], alpha=alpha,
                linewidth=width * (1.5 if i < 3 else 1.0))


def _draw_floor(ax, lo: np.ndarray, hi: np.ndarray) -> None:
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    y = lo[1]
    quad = [[(lo[0], lo[2], y), (lo[0], hi[2], y), (hi[0], hi[2], y), (hi[0], lo[2], y)]]
    ax.add_collection3d(Poly3DCollection(quad, facecolor=(0.5, 0.5, 0.5, 0.3)))


def _write_own(joints: np.ndarray, tmp: Path, fmt: str, title: str, fps: float, real: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

    colours = _REAL_COLOURS if real else _GENERATED_COLOURS
    lo, hi = _limits(joints)
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="3d")
    wrapped = "\n".join(textwrap.wrap(title, 30))

    def update(t: int):
        ax.clear()
        _setup_axes(ax, lo, hi)
        _draw_floor(ax, lo, hi)
        _draw_pose(ax, joints[t], colours)
        ax.set_title(f"{wrapped} [{t}]", fontsize=8)
        return []

    animation = FuncAnimation(fig, update, frames=len(joints), blit=False)
    try:
        if fmt == "mp4":
            matplotlib.rcParams["animation.ffmpeg_path"] = _ffmpeg_path()
            writer = FFMpegWriter(fps=fps)
        else:
            writer = PillowWriter(fps=fps)
        animation.save(str(tmp), writer=writer)
    finally:
        plt.close(fig)


@dataclass
class GridColumn:
    """One class of the grid.

    Attributes:
        label: column title (class name).
        real: joints (T, 22, 3) of a real few-shot clip of the class, drawn in the first row,
            or None (the first row cell stays empty).
        samples: joints of generated samples, one per row below the first.
    """

    label: str
    real: np.ndarray | None = None
    samples: list[np.ndarray] = field(default_factory=list)


def render_grid(
    columns: Sequence[GridColumn],
    path: str | os.PathLike,
    *,
    poses: int = 6,
    cell_size: float = 2.2,
    title: str = "",
) -> Path:
    """Write a PNG grid: one column per class, the real clip in row 0, generated samples below.

    Each cell is a strobe of ``poses`` poses evenly spaced over the motion, faint to solid in
    time order, at their global positions (locomotion stays visible).

    Args:
        columns: the classes, each with its real clip and samples (joints (T, 22, 3), metres).
        path: output .png, written atomically.
        poses: poses drawn per cell, >= 1.
        cell_size: inches per cell.
        title: figure title.

    Returns:
        The written path.

    Raises:
        ValueError: no columns, poses < 1, a non-.png path or a bad joints shape.
    """
    path = Path(path)
    if not columns:
        raise ValueError("render_grid needs at least one column (class)")
    if poses < 1:
        raise ValueError(f"poses must be >= 1, got {poses}")
    if path.suffix.lower() != ".png":
        raise ValueError(f"grid path {path} must end in .png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + max(len(c.samples) for c in columns)
    fig = plt.figure(figsize=(cell_size * len(columns), cell_size * rows))
    for col, column in enumerate(columns):
        cells = [(column.real, True)] + [(s, False) for s in column.samples]
        for row, (motion, real) in enumerate(cells):
            ax = fig.add_subplot(rows, len(columns), row * len(columns) + col + 1, projection="3d")
            ax.set_axis_off()
            if motion is None:
                continue
            joints = as_joints(motion)
            lo, hi = _limits(joints)
            _setup_axes(ax, lo, hi)
            _draw_floor(ax, lo, hi)
            frames = np.linspace(0, len(joints) - 1, poses).round().astype(int)
            for k, t in enumerate(frames):
                _draw_pose(ax, joints[t], _REAL_COLOURS if real else _GENERATED_COLOURS,
                           alpha=0.25 + 0.75 * (k + 1) / len(frames), width=1.2)
            label = f"{column.label}\n(real)" if real else ("" if row > 1 else f"{column.label}\n(generated)")
            if label:
                ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - (0.3 / rows if title else 0), wspace=0, hspace=0.15)
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path
