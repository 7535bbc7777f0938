"""The few-shot clips of a target set, per class: their ids and lengths in feature frames.

Synthetic motions take their lengths from the few-shot clips of their class (the paper's
synthetic set, Sec. 5), and pictures put a real clip beside the generated ones; both read the
split here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.data.humanml3d import HumanML3D
from mdm_kinemic.data.labels import load_labelled

__all__ = ["FEWSHOT_DIR", "FewShotClipsError", "classes_with_clips", "fewshot_lengths"]

#: few-shot splits of a target set, relative to its root (the authors' NTU-VIBE layout)
FEWSHOT_DIR = "splits/fewshot"


class FewShotClipsError(ValueError):
    """The target data, its split or a class's clips cannot be found; the message names the fix."""


def _split_list(fewshot_split: str | None, task_split: str) -> str | None:
    return None if not fewshot_split else f"{FEWSHOT_DIR}/{fewshot_split}/{task_split}/train"


def _load(root: Path, split: str | None, names_file: str | None):
    try:
        return load_labelled(root, split, class_names=names_file, missing="error" if split else "skip")
    except (FileNotFoundError, ValueError) as err:
        raise FewShotClipsError(f"cannot read the few-shot clips of {root} (split {split or 'all'}): {err}") from err


def classes_with_clips(
    target_data: str | os.PathLike,
    fewshot_split: str | None,
    task_split: str,
    names_file: str | None = None,
) -> list[str]:
    """Names of the classes that have at least one clip in the split, in class-index order.

    The authors' NTU-VIBE release names all 120 NTU classes but holds clips of only the 3 of
    its few-shot split: these are the classes a model without classes of its own (a plain
    text-to-motion MDM) is sampled for by default.

    Args:
        target_data, fewshot_split, task_split, names_file: as in ``fewshot_lengths``.

    Returns:
        Class names (at least one).

    Raises:
        FewShotClipsError: the data or split cannot be read, or it holds no labelled clip.
    """
    root = Path(target_data)
    split = _split_list(fewshot_split, task_split)
    labelled = _load(root, split, names_file)
    present = sorted(labelled.by_class())
    if not present:
        raise FewShotClipsError(
            f"{root} (split {split or 'all'}) holds no labelled clip with a motion file. Fix: pass the "
            "--target_data / --fewshot_split holding the few-shot clips, or --actions and --length_frames N"
        )
    return [labelled.class_names[c] for c in present]


def fewshot_lengths(
    class_names: Sequence[str],
    target_data: str | os.PathLike,
    fewshot_split: str | None,
    task_split: str,
    target_ids: Sequence[str] | None = None,
    names_file: str | None = None,
) -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Lengths and ids of the few-shot clips of each of the given classes.

    Args:
        class_names: the classes wanted (matched by name, case-insensitively, to the
            target data's class names: classes.txt or NTU's ntu_classes.txt).
        target_data: HumanML3D-layout folder with labels (data/labels.py).
        fewshot_split: split id under splits/fewshot (its ``task_split/train`` list), or None
            for every labelled clip.
        task_split: the list folder inside the split (the authors': xsub).
        target_ids: only these clips (the training run's targets, args.json's
            kinemic.target_ids), or None for every clip of the split.
        names_file: class names file overriding the data's own (the run's --class_names).

    Returns:
        ({class index: feature frames of each clip}, {class index: clip ids}).

    Raises:
        FewShotClipsError: the data, split or a class cannot be found (names the folder and the fix).
    """
    root = Path(target_data)
    split = _split_list(fewshot_split, task_split)
    labelled = _load(root, split, names_file)
    key = {n.strip().lower(): i for i, n in enumerate(labelled.class_names)}
    wanted = None if target_ids is None else set(target_ids)
    by_class = {c: [i for i in ids if wanted is None or i in wanted] for c, ids in labelled.by_class().items()}
    dataset = HumanML3D(root)
    lengths: dict[int, list[int]] = {}
    ids: dict[int, list[str]] = {}
    for c, name in enumerate(class_names):
        label = key.get(name.strip().lower())
        if label is None or not by_class.get(label):
            raise FewShotClipsError(
                f"class {name!r} has no clip in {root} (split {split or 'all'}). Fix: pass the "
                "--target_data / --fewshot_split the model was trained on, --actions of classes that have "
                "clips there, or --length_frames N"
            )
        ids[c] = list(by_class[label])
        lengths[c] = [dataset.length(i) for i in ids[c]]
    return lengths, ids
