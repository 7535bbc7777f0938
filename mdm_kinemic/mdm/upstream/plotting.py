"""Upstream MDM's stick-figure animation (plot_3d_motion) made to draw with current matplotlib.

Upstream's data_loaders/humanml/utils/plot_script.py creates its 3D axes with
``p3.Axes3D(fig)``. Since matplotlib 3.6 an Axes3D built that way is no longer added to the
figure, so every frame of every mp4 that generate.py writes is blank (title only). The fix,
without editing upstream, replaces the ``p3`` name inside plot_script with a namespace whose
``Axes3D(fig)`` also adds the axes to the figure; with matplotlib < 3.6 (where Axes3D still adds
itself) the module is left alone.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable

__all__ = ["install_plot_fix", "load_upstream_plotter"]

logger = logging.getLogger(__name__)


def _needs_fix() -> bool:
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return (major, minor) >= (3, 6)


def install_plot_fix() -> None:
    """Make upstream's plot_3d_motion draw its axes (idempotent).

    Requires upstream importable (``mdm_kinemic.mdm.upstream.locate.import_upstream`` done).
    Source: upstream data_loaders/humanml/utils/plot_script.py, ``ax = p3.Axes3D(fig)``.
    """
    from data_loaders.humanml.utils import plot_script

    if not _needs_fix() or getattr(plot_script.p3, "_mdm_kinemic_fix", False):
        return
    from mpl_toolkits.mplot3d import axes3d

    def axes_added_to_figure(fig, *args, **kwargs):
        return fig.add_axes(axes3d.Axes3D(fig, *args, **kwargs))

    plot_script.p3 = types.SimpleNamespace(Axes3D=axes_added_to_figure, _mdm_kinemic_fix=True)
    logger.debug("upstream plot_3d_motion: Axes3D now added to its figure (matplotlib >= 3.6)")


def load_upstream_plotter(mdm_root: str | None = None) -> Callable[..., object] | None:
    """Upstream's plot_3d_motion with the fix above, or None where upstream is not found.

    Args:
        mdm_root: upstream checkout (else $MDM_ROOT, else the submodule).

    Returns:
        ``plot_3d_motion(save_path, kinematic_tree, joints, title, dataset, fps=...)`` returning
        a moviepy VideoClip, or None (callers then draw with mdm_kinemic.viz.render's own code).
    """
    from mdm_kinemic.mdm.upstream.locate import UpstreamNotFoundError, import_upstream

    try:
        import_upstream(mdm_root)
        install_plot_fix()
        from data_loaders.humanml.utils.plot_script import plot_3d_motion
    except (UpstreamNotFoundError, ImportError) as err:
        logger.info("upstream plot_3d_motion unavailable (%s); drawing with mdm_kinemic.viz.render", err)
        return None
    return plot_3d_motion
