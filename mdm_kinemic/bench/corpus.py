"""The Bandai Namco corpus as the benchmark reads it: converted already, or raw BVH to convert.

``--bandai_root`` may be either

- a labelled HumanML3D-layout folder (labels.txt, classes.txt, new_joint_vecs/), e.g. written by
  ``python -m mdm_kinemic.data.convert --format bvh ... --labels bandai``: used as it is; or
- a folder holding the raw BVH files of Bandai-Namco-Research-Motiondataset-1 and/or -2
  (searched recursively): converted once into OUT/converted with the data layer's converter
  (Bandai joint map, HumanML3D reference skeleton, captions from content and style), reused on
  a later run.
"""

from __future__ import annotations

import json
from pathlib import Path

from mdm_kinemic.data.convert import REPORT_FILE
from mdm_kinemic.data.convert import main as convert_main
from mdm_kinemic.data.humanml3d import MOTION_DIR
from mdm_kinemic.data.labels import CLASSES_FILE, LABELS_FILE

CONVERTED_DIR = "converted"


def is_converted(root: Path) -> bool:
    """True when ``root`` is a labelled HumanML3D-layout folder."""
    return (root / LABELS_FILE).is_file() and (root / CLASSES_FILE).is_file() and (root / MOTION_DIR).is_dir()


def resolve_corpus(bandai_root: str | Path, out: str | Path, workers: int = 1) -> Path:
    """The labelled HumanML3D-layout corpus to split, converting raw BVH when needed.

    Args:
        bandai_root: converted folder or raw BVH folder (module doc).
        out: benchmark output folder; a conversion goes to OUT/converted.
        workers: converter processes.

    Returns:
        The converted corpus folder.

    Raises:
        FileNotFoundError: ``bandai_root`` is neither a converted folder nor holds .bvh files, or
            OUT/converted is an earlier conversion that skipped files.
    """
    root = Path(bandai_root)
    if is_converted(root):
        return root
    if not root.is_dir() or next(root.rglob("*.bvh"), None) is None:
        raise FileNotFoundError(
            f"--bandai_root {root} is neither a converted HumanML3D-layout folder ({LABELS_FILE}, {CLASSES_FILE}, "
            f"{MOTION_DIR}/) nor a folder with Bandai Namco .bvh files: pass one of the two"
        )
    converted = Path(out) / CONVERTED_DIR
    if is_converted(converted):
        _check_complete(converted)
        return converted
    argv = [str(root), "--format", "bvh", "--out", str(converted), "--labels", "bandai", "--joint_map", "bandai",
            "--workers", str(workers), "--no-progress"]
    if converted.exists():
        argv.append("--overwrite")
    convert_main(argv)
    return converted


def _check_complete(converted: Path) -> None:
    """Refuse the remains of a conversion that skipped files (the converter exited 2 but wrote the rest)."""
    report = converted / REPORT_FILE
    skipped = json.loads(report.read_text()).get("skipped", []) if report.is_file() else []
    if skipped:
        raise FileNotFoundError(
            f"{converted} is a partial conversion: {len(skipped)} file(s) were skipped (reasons in {report}). Fix or "
            f"remove those files and delete {converted}, or convert them yourself with python -m mdm_kinemic.data.convert "
            "... --allow_partial and pass that folder as --bandai_root")
