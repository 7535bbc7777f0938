"""Labelled clips: the generic labels file and the authors' NTU-VIBE layout.

Two ways a HumanML3D-layout folder carries class labels:

- generic (what :mod:`mdm_kinemic.data.convert` writes): ``labels.txt`` with lines
  ``clip_id<TAB>class_index`` and ``classes.txt`` with one class name per line (line i = class i);
- the authors' NTU-VIBE release (github LuCazzola/KineMIC, data/NTU-VIBE): clips named by NTU
  (S018C003P043R001A104), the class from the action number (A099 -> class 98), class names from
  ``ntu_classes.txt`` (120 lines), split lists ``splits/<kind>/<id>/<protocol>/train.txt`` with the
  labels beside them in ``train_y.txt``.

A split is named by its list file relative to the root, with or without ".txt": "train",
"splits/fewshot/S0000/xsub/train", or the short "fewshot/S0000/xsub/train" (under splits/).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mdm_kinemic.atomic import atomic_write_text
from mdm_kinemic.data.humanml3d import (
    MOTION_DIR,
    HumanML3D,
    read_id_list,
)

log = logging.getLogger(__name__)

LABELS_FILE = "labels.txt"
CLASSES_FILE = "classes.txt"
NTU_CLASSES_FILE = "ntu_classes.txt"
NTU_CLASSES_ENV = "MDM_KINEMIC_NTU_CLASSES"
NTU_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
MISSING_CHOICES = ("error", "skip", "keep")


@dataclass
class LabelledSet:
    """Clips of a HumanML3D-layout dataset with class labels.

    Attributes:
        root: the dataset folder.
        ids: clip ids.
        labels: class index per clip (0-based, indexes ``class_names``).
        class_names: name of every class of the label space (e.g. all 120 NTU actions).

    Raises:
        ValueError: ids and labels of different lengths, or a label outside class_names.
    """

    root: Path
    ids: list[str]
    labels: list[int]
    class_names: list[str]

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.ids = list(self.ids)
        self.labels = [int(x) for x in self.labels]
        self.class_names = list(self.class_names)
        if len(self.ids) != len(self.labels):
            raise ValueError(f"LabelledSet: {len(self.ids)} ids but {len(self.labels)} labels")
        bad = [x for x in self.labels if not 0 <= x < len(self.class_names)]
        if bad:
            raise ValueError(f"LabelledSet: labels {sorted(set(bad))[:5]} outside the {len(self.class_names)} class names")

    def __len__(self) -> int:
        return len(self.ids)

    def by_class(self) -> dict[int, list[str]]:
        """{class index: clip ids in set order} for the classes present."""
        out: dict[int, list[str]] = {}
        for clip_id, label in zip(self.ids, self.labels):
            out.setdefault(label, []).append(clip_id)
        return dict(sorted(out.items()))

    def label_of(self, clip_id: str) -> int:
        """Class index of a clip (KeyError if absent)."""
        try:
            return self.labels[self.ids.index(clip_id)]
        except ValueError:
            raise KeyError(f"clip {clip_id!r} not in this labelled set of {self.root}") from None

    @property
    def dataset(self) -> HumanML3D:
        """The HumanML3D-layout dataset holding the clips' motions."""
        return HumanML3D(self.root)


def ntu_label(clip_id: str) -> int:
    """Class index of an NTU clip name: A099 -> 98.

    Raises:
        ValueError: if the id is not an NTU name SsssCcccPpppRrrrAaaa.
    """
    m = NTU_NAME.match(clip_id)
    if m is None:
        raise ValueError(f"{clip_id!r} is not an NTU clip name (SsssCcccPpppRrrrAaaa)")
    return int(m.group(5)) - 1


def find_ntu_classes(root: Path) -> Path | None:
    """ntu_classes.txt in the dataset folder, its parent (the authors' data/ folder) or $MDM_KINEMIC_NTU_CLASSES."""
    candidates = [root / NTU_CLASSES_FILE, root.parent / NTU_CLASSES_FILE]
    if os.environ.get(NTU_CLASSES_ENV):
        candidates.insert(0, Path(os.environ[NTU_CLASSES_ENV]))
    return next((p for p in candidates if p.is_file()), None)


def _resolve_split(root: Path, split: str) -> Path:
    name = split if split.endswith(".txt") else f"{split}.txt"
    for path in (root / name, root / "splits" / name):
        if path.is_file():
            return path
    raise FileNotFoundError(f"split {split!r} of {root}: neither {root / name} nor {root / 'splits' / name} exists")


def _read_labels_file(root: Path) -> tuple[dict[str, int], list[str]]:
    labels: dict[str, int] = {}
    path = root / LABELS_FILE
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected 'clip_id<TAB>class_index', got {line!r}")
        labels[parts[0].strip()] = int(parts[1])
    classes_path = root / CLASSES_FILE
    if not classes_path.is_file():
        raise FileNotFoundError(f"{classes_path} not found: {path} needs the class names beside it (one per line)")
    return labels, [ln.strip() for ln in classes_path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def load_labelled(
    root: str | Path,
    split: str | None = None,
    class_names: Sequence[str] | str | Path | None = None,
    missing: str = "error",
) -> LabelledSet:
    """Read a labelled dataset: generic labels file or the authors' NTU-VIBE layout.

    Args:
        root: HumanML3D-layout folder.
        split: a split list (see the module doc); None = every labelled clip (labels.txt order,
            or for NTU names every clip in new_joint_vecs/, sorted).
        class_names: class names (a list or a file with one per line) overriding classes.txt /
            ntu_classes.txt.
        missing: what to do with listed clips whose new_joint_vecs/ID.npy is absent: "error",
            "skip" (logged) or "keep". The NTU-VIBE release holds only the 30 few-shot train
            clips, so its val lists need "skip" or the full data.

    Returns:
        The labelled clips.

    Raises:
        FileNotFoundError: split list, classes file or NTU class names not found.
        ValueError: malformed files, labels that contradict the NTU action number, clips
            without a label, missing motions with missing="error".
    """
    root = Path(root)
    if missing not in MISSING_CHOICES:
        raise ValueError(f"load_labelled: missing must be one of {MISSING_CHOICES}, got {missing!r}")
    generic = (root / LABELS_FILE).is_file()
    label_map: dict[str, int] = {}
    if generic:
        label_map, names = _read_labels_file(root)
    else:
        names = []
    if class_names is not None:
        names = (
            [ln.strip() for ln in Path(class_names).read_text(encoding="utf-8").splitlines() if ln.strip()]
            if isinstance(class_names, (str, Path))
            else list(class_names)
        )
    elif not generic:
        found = find_ntu_classes(root)
        if found is None:
            raise FileNotFoundError(
                f"{root} has no {LABELS_FILE}; for the NTU-VIBE layout put {NTU_CLASSES_FILE} (120 class names, one "
                f"per line) in {root} or {root.parent}, or set the environment variable ${NTU_CLASSES_ENV} to its "
                "path (train_fewshot also takes --class_names FILE)"
            )
        names = [ln.strip() for ln in found.read_text(encoding="utf-8").splitlines() if ln.strip()]

    if split is None:
        if generic:
            ids = list(label_map)
        else:
            with os.scandir(root / MOTION_DIR) as entries:
                ids = sorted(e.name[:-4] for e in entries if e.name.endswith(".npy"))
        list_labels = None
    else:
        list_path = _resolve_split(root, split)
        ids = read_id_list(list_path)
        y_path = list_path.with_name(list_path.stem + "_y.txt")
        list_labels = [int(x) for x in read_id_list(y_path)] if y_path.is_file() else None
        if list_labels is not None and len(list_labels) != len(ids):
            raise ValueError(f"{y_path}: {len(list_labels)} labels for the {len(ids)} ids of {list_path}")

    labels: list[int] = []
    for n, clip_id in enumerate(ids):
        if list_labels is not None:
            label = list_labels[n]
            if generic and clip_id in label_map and label != label_map[clip_id]:
                raise ValueError(f"{root}: clip {clip_id} is labelled {label} in {split}_y but {label_map[clip_id]} in {LABELS_FILE}")
            if not generic and NTU_NAME.match(clip_id) and label != ntu_label(clip_id):
                raise ValueError(f"{root}: clip {clip_id} is labelled {label} but its action number says {ntu_label(clip_id)}")
        elif generic:
            if clip_id not in label_map:
                raise ValueError(f"{root}: clip {clip_id!r} of split {split!r} has no label in {LABELS_FILE}")
            label = label_map[clip_id]
        else:
            label = ntu_label(clip_id)
        labels.append(label)

    if missing != "keep":
        present = [(root / MOTION_DIR / f"{i}.npy").is_file() for i in ids]
        absent = [i for i, p in zip(ids, present) if not p]
        if absent and missing == "error":
            listed_in = list_path if split is not None else root / LABELS_FILE
            raise ValueError(
                f"{root}: {len(absent)} of {len(ids)} listed clips have no {MOTION_DIR}/ID.npy (first: {absent[:3]}); "
                f"add their motions, or remove them from {listed_in} (no command-line flag skips them; "
                "in Python, load_labelled(..., missing='skip') does)"
            )
        if absent:
            log.warning("%s: skipping %d of %d listed clips without motion files", root, len(absent), len(ids))
            ids = [i for i, p in zip(ids, present) if p]
            labels = [x for x, p in zip(labels, present) if p]
    return LabelledSet(root, ids, labels, names)


def write_labels(root: str | Path, ids: Sequence[str], labels: Sequence[int], class_names: Sequence[str]) -> None:
    """Write labels.txt (``clip_id<TAB>class_index``) and classes.txt at ``root`` (atomically).

    Raises:
        ValueError: lengths differ, labels outside class_names, ids or names with tabs/newlines.
    """
    labelled = LabelledSet(Path(root), list(ids), list(labels), list(class_names))
    for text in list(labelled.ids) + labelled.class_names:
        if "\t" in text or "\n" in text or not text.strip():
            raise ValueError(f"write_labels: ids and class names must be non-empty without tabs or newlines, got {text!r}")
    atomic_write_text(Path(root) / LABELS_FILE, "".join(f"{i}\t{x}\n" for i, x in zip(labelled.ids, labelled.labels)))
    atomic_write_text(Path(root) / CLASSES_FILE, "".join(f"{n}\n" for n in labelled.class_names))
