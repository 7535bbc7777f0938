"""``python -m mdm_kinemic.render DATA``: a class grid and stick-figure animations of a labelled set.

DATA is a labelled HumanML3D-layout folder (a synth output, a converted corpus). The grid puts a
real few-shot clip above generated ones where synth's manifest names the target data; animations
are drawn by upstream MDM's plot_3d_motion where upstream is found (mdm/upstream/plotting.py),
else by viz/render.py's own matplotlib code.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.data.fewshot_clips import FewShotClipsError, fewshot_lengths
from mdm_kinemic.data.humanml3d import HumanML3D
from mdm_kinemic.data.labels import load_labelled
from mdm_kinemic.mdm.upstream.plotting import load_upstream_plotter
from mdm_kinemic.viz.render import (
    ANIMATION_FORMATS,
    GridColumn,
    render_animation,
    render_grid,
)

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mdm_kinemic.viz.render DIR``: a class grid and per-sample animations of a
    labelled HumanML3D-layout folder (e.g. a mdm_kinemic.synth output, whose manifest names the
    few-shot clips shown in the grid's first row). Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.render", description=main.__doc__)
    parser.add_argument("data", help="labelled HumanML3D-layout folder (labels.txt + classes.txt)")
    parser.add_argument("--per_class", type=int, default=4, help="samples per class in the grid")
    parser.add_argument("--videos", type=int, default=0, help="animations per class, written to DATA/renders/")
    parser.add_argument("--format", choices=ANIMATION_FORMATS, default="mp4", help="animation format")
    parser.add_argument("--upstream_plot", action=argparse.BooleanOptionalAction, default=True,
                        help="draw animations with upstream MDM's plot_3d_motion where upstream is found")
    parser.add_argument("--mdm_root", default=None, help="upstream MDM checkout (else $MDM_ROOT, else the submodule)")
    parser.add_argument("--out", default=None, help="grid path (default: DATA/grid.png)")
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.videos < 0:
        parser.error("--per_class must be >= 1 and --videos >= 0")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = Path(args.data)
    try:
        labelled = load_labelled(root)
    except (FileNotFoundError, ValueError) as err:
        parser.error(f"{root} is not a labelled HumanML3D-layout folder: {err}")
    real_ids: dict[str, list[str]] = {}
    real_root = None
    manifest = root / "manifest.json"
    if manifest.is_file():
        lengths = json.loads(manifest.read_text(encoding="utf-8"))["run"]["lengths"]
        if lengths.get("target_data"):
            try:
                _, ids = fewshot_lengths(labelled.class_names, lengths["target_data"], lengths.get("fewshot_split"),
                                         lengths.get("task_split") or "xsub")
                real_root = HumanML3D(lengths["target_data"])
                real_ids = {labelled.class_names[c]: v for c, v in ids.items()}
            except FewShotClipsError as err:
                logger.warning("no real clips in the grid: %s", err)
    data = HumanML3D(root)
    by_class = labelled.by_class()
    columns = [
        GridColumn(labelled.class_names[c],
                   real_root.joints(real_ids[labelled.class_names[c]][0]) if real_ids.get(labelled.class_names[c]) else None,
                   [data.joints(i) for i in ids[: args.per_class]])
        for c, ids in by_class.items()
    ]
    grid = render_grid(columns, args.out or root / "grid.png", title=root.name)
    logger.info("wrote %s", grid)
    if args.videos:
        plot = None
        if args.upstream_plot:
            plot = load_upstream_plotter(args.mdm_root)
        for c, ids in by_class.items():
            for clip_id in ids[: args.videos]:
                path = render_animation(data.joints(clip_id), root / "renders" / f"{clip_id}.{args.format}",
                                        title=labelled.class_names[c], upstream_plot=plot)
                logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
