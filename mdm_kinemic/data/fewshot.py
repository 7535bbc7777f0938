"""Few-shot splits: N clips per class drawn with a seed, in the authors' NTU-VIBE layout.

Layout written and read (as data/NTU-VIBE/splits/fewshot of github LuCazzola/KineMIC)::

    ROOT/splits/fewshot/S0000/meta.json            {"class_list": [...], "seed": 42, "shots": 10}
    ROOT/splits/fewshot/S0000/<protocol>/train.txt    clip ids, class by class
    ROOT/splits/fewshot/S0000/<protocol>/train_y.txt  class index per line
    ROOT/splits/fewshot/S0000/<protocol>/val.txt      evaluation clips of the same classes
    ROOT/splits/fewshot/S0000/<protocol>/val_y.txt

The authors draw the shots from their "train" list and keep every clip of the chosen classes of
their "val" list for evaluation; without a separate evaluation set, the clips of the chosen
classes that were not drawn become val. Class indices are those of the dataset (NTU: A099 -> 98).

Usage::

    python -m mdm_kinemic.data.fewshot ROOT --shots 10 --seed 42 [--classes 98 101 103]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdm_kinemic.atomic import atomic_write_text
from mdm_kinemic.data.labels import MISSING_CHOICES, LabelledSet, load_labelled
from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args

FEWSHOT_DIR = Path("splits") / "fewshot"


@dataclass(frozen=True)
class FewShotSettings:
    """How a few-shot split is drawn.

    Attributes:
        shots: clips per class in the train list (the paper: 10).
        seed: seed of the draw; the same seed and dataset give the same split.
        class_list: class indices to include; None = every class present in the dataset.
        protocol: folder name of the lists inside the split ("xsub" in the authors' release,
            where it names NTU's cross-subject protocol; any name for other datasets).
    """

    shots: int = field(default=10, metadata={"help": 'clips per class in the train list'})
    seed: int = field(default=42, metadata={"help": 'seed of the draw'})
    class_list: tuple[int, ...] | None = field(default=None, metadata={
        "help": 'class indices (default: every class present)'})
    protocol: str = field(default="xsub", metadata={"help": 'folder name of the lists inside the split'})

    def __post_init__(self) -> None:
        if self.shots < 1:
            raise ValueError(f"FewShotSettings.shots must be >= 1, got {self.shots}")
        if self.class_list is not None:
            if not self.class_list or any(c < 0 for c in self.class_list):
                raise ValueError(f"FewShotSettings.class_list must hold class indices >= 0, got {self.class_list}")
            object.__setattr__(self, "class_list", tuple(sorted({int(c) for c in self.class_list})))
        if not self.protocol or "/" in self.protocol or self.protocol.startswith("."):
            raise ValueError(f"FewShotSettings.protocol must be a plain folder name, got {self.protocol!r}")


@dataclass
class FewShotSplit:
    """A drawn split.

    Attributes:
        settings: how it was drawn (class_list filled in).
        train: the shots, class by class.
        val: the evaluation clips of the same classes.
    """

    settings: FewShotSettings
    train: LabelledSet
    val: LabelledSet


def _shortfall_message(labelled: LabelledSet, short: dict[int, int], shots: int) -> str:
    names = labelled.class_names
    listed = ", ".join(f"{c} {names[c] if c < len(names) else '(unnamed)'!r}: {n} clip{'s' * (n != 1)}"
                       for c, n in short.items())
    present = [n for n in short.values() if n > 0]
    fixes = ([f"pass --shots {min(present)}"] if present else []) + [
        "leave these classes out with --classes", "or add labelled clips of them"]
    return (f"few-shot split of {labelled.root}: {len(short)} class{'es' * (len(short) != 1)} "
            f"{'have' if len(short) != 1 else 'has'} fewer clips than the {shots} shots asked for ({listed}; "
            f"class: clips). Fix: {', '.join(fixes)}")


def sample_fewshot(
    labelled: LabelledSet, settings: FewShotSettings | None = None, eval_set: LabelledSet | None = None
) -> FewShotSplit:
    """Draw ``shots`` clips per class.

    Candidates of a class are sorted by id before the draw, so the result depends only on the
    seed and the set of clips, not on their order.

    Args:
        labelled: where the shots come from (the authors: their train list).
        settings: shots, seed, classes.
        eval_set: clips to evaluate on; default the undrawn clips of ``labelled``.

    Returns:
        The split.

    Raises:
        ValueError: a requested class has fewer than ``shots`` clips (the message names each
            class, its clip count, and the fix).
    """
    settings = settings or FewShotSettings()
    by_class = labelled.by_class()
    classes = list(settings.class_list) if settings.class_list is not None else sorted(by_class)
    short = {c: len(by_class.get(c, [])) for c in classes if len(by_class.get(c, [])) < settings.shots}
    if short:
        raise ValueError(_shortfall_message(labelled, short, settings.shots))
    rng = np.random.default_rng(settings.seed)
    train_ids: list[str] = []
    train_labels: list[int] = []
    for c in classes:
        candidates = sorted(by_class[c])
        picked = np.sort(rng.choice(len(candidates), size=settings.shots, replace=False))
        train_ids += [candidates[i] for i in picked]
        train_labels += [c] * settings.shots
    chosen = set(train_ids)
    source = eval_set if eval_set is not None else labelled
    val_ids: list[str] = []
    val_labels: list[int] = []
    for c in classes:
        for clip_id in sorted(source.by_class().get(c, [])):
            if eval_set is not None or clip_id not in chosen:
                val_ids.append(clip_id)
                val_labels.append(c)
    used = FewShotSettings(settings.shots, settings.seed, tuple(classes), settings.protocol)
    return FewShotSplit(
        used,
        LabelledSet(labelled.root, train_ids, train_labels, labelled.class_names),
        LabelledSet(source.root, val_ids, val_labels, labelled.class_names),
    )


def next_split_id(root: str | Path) -> str:
    """The first unused split id S0000, S0001, ... under ROOT/splits/fewshot."""
    base = Path(root) / FEWSHOT_DIR
    taken = {p.name for p in base.iterdir()} if base.is_dir() else set()
    n = 0
    while f"S{n:04d}" in taken:
        n += 1
    return f"S{n:04d}"


def write_fewshot(root: str | Path, split: FewShotSplit, split_id: str | None = None) -> Path:
    """Write a split in the authors' layout (atomically, file by file).

    Args:
        root: the dataset folder.
        split: from :func:`sample_fewshot`.
        split_id: folder name (default the next free S####).

    Returns:
        The split folder ROOT/splits/fewshot/<split_id>.

    Raises:
        FileExistsError: if that split folder already holds a meta.json.
    """
    split_id = split_id or next_split_id(root)
    folder = Path(root) / FEWSHOT_DIR / split_id
    if (folder / "meta.json").exists():
        raise FileExistsError(f"few-shot split {folder} exists; choose another split_id or delete it")
    s = split.settings
    meta = {"class_list": list(s.class_list or ()), "seed": s.seed, "shots": s.shots}
    for name, part in (("train", split.train), ("val", split.val)):
        atomic_write_text(folder / s.protocol / f"{name}.txt", "".join(f"{i}\n" for i in part.ids))
        atomic_write_text(folder / s.protocol / f"{name}_y.txt", "".join(f"{x}\n" for x in part.labels))
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=2) + "\n")
    return folder


def read_fewshot(
    root: str | Path,
    split_id: str = "S0000",
    protocol: str = "xsub",
    missing: str = "keep",
    class_names: Sequence[str] | str | Path | None = None,
) -> FewShotSplit:
    """Read a split written by :func:`write_fewshot` or by the authors.

    Args:
        root: the dataset folder.
        split_id: folder under splits/fewshot.
        protocol: list folder inside the split.
        missing: clips without motion files: "keep" (default: the authors' release lists val
            clips it does not ship), "skip" or "error"; see :func:`load_labelled`.
        class_names: override of classes.txt / ntu_classes.txt (see :func:`load_labelled`).

    Raises:
        FileNotFoundError: no meta.json or list files.
    """
    if missing not in MISSING_CHOICES:
        raise ValueError(f"read_fewshot: missing must be one of {MISSING_CHOICES}, got {missing!r}")
    folder = Path(root) / FEWSHOT_DIR / split_id
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: no few-shot split {split_id} in {root}")
    meta = json.loads(meta_path.read_text())
    settings = FewShotSettings(int(meta["shots"]), int(meta["seed"]), tuple(meta["class_list"]), protocol)
    prefix = FEWSHOT_DIR / split_id / protocol
    train = load_labelled(root, str(prefix / "train"), class_names, missing)
    val = load_labelled(root, str(prefix / "val"), class_names, missing)
    return FewShotSplit(settings, train, val)


def build_parser() -> argparse.ArgumentParser:
    """Flags of ``python -m mdm_kinemic.data.fewshot`` (from :class:`FewShotSettings`, mdm_kinemic.flags)."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.data.fewshot", description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="labelled HumanML3D-layout dataset (labels.txt or NTU-VIBE layout)")
    add_dataclass_options(p, FewShotSettings, "split", renames={"class_list": "classes"})
    p.add_argument("--source_split", default=None, help="split list to draw from (default: every labelled clip)")
    p.add_argument("--eval_split", default=None, help="split list to evaluate on (default: the undrawn clips)")
    p.add_argument("--split_id", default=None, help="split folder name (default: next free S####)")
    return p


def main(argv: Sequence[str] | None = None) -> Path:
    """Draw and write a few-shot split; prints its folder.

    Bad flags or data (too few clips per class, a missing dataset or list, an existing split)
    end with one message and exit status 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = dataclass_from_args(FewShotSettings, args, renames={"class_list": "classes"})
    except ValueError as err:
        parser.error(str(err))
    try:
        source = load_labelled(args.root, args.source_split)
        eval_set = load_labelled(args.root, args.eval_split) if args.eval_split else None
        folder = write_fewshot(args.root, sample_fewshot(source, settings, eval_set), args.split_id)
    except (ValueError, OSError) as err:  # FileNotFoundError, FileExistsError included
        print(f"fewshot: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    print(folder)
    return folder


if __name__ == "__main__":
    main()
