"""Labelled skeleton clips for HAR: loading from HumanML3D-layout folders, class alignment, input checks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdm_kinemic.har.skeleton import layout_for_joints

logger = logging.getLogger(__name__)

#: Where joints come from: new_joints/ID.npy ("joints"), recover_from_ric of new_joint_vecs/ID.npy
#: ("hml_vec"), or per clip the joints file when it exists and the features otherwise ("auto").
#: DESIGN.md: recover_from_ric of released features gives the released new_joints exactly.
INPUT_MODES = ("auto", "joints", "hml_vec")


@dataclass(frozen=True)
class SkeletonClips:
    """A labelled set of joint-position clips.

    Attributes:
        joints: N arrays [T_i, V, 3] (one body) or [M_i, T_i, V, 3] (M_i bodies, PYSKL's
            keypoint layout), float32, metres (HumanML3D: Y up, 20 fps).
        labels: int64 array [N], indices into ``class_names``.
        class_names: names of the classes the labels index.
        ids: N clip ids (file stems), for error messages and reports.
        source: where the clips come from (a folder), named in error messages.

    Raises:
        ValueError: inconsistent lengths, labels outside class_names, clips that are neither
            [T, V, 3] nor [M, T, V, 3], or clips with different joint counts (naming the first
            offending clip).
    """

    joints: tuple[np.ndarray, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    ids: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", tuple(self.joints))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64).reshape(-1))
        if not len(self.joints) == len(self.labels) == len(self.ids):
            raise ValueError(
                f"{self.source}: {len(self.joints)} clips, {len(self.labels)} labels and {len(self.ids)} ids differ"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"{self.source}: labels must index the {len(self.class_names)} class names, "
                f"got labels in [{self.labels.min()}, {self.labels.max()}]"
            )
        for clip_id, clip in zip(self.ids, self.joints):
            if clip.ndim not in (3, 4) or clip.shape[-1] != 3 or (clip.ndim == 4 and clip.shape[0] < 1):
                raise ValueError(
                    f"{self.source}: clip {clip_id} must be [T, V, 3] or [M, T, V, 3] joint positions, got {clip.shape}"
                )
            if clip.shape[-2] != self.joints[0].shape[-2]:
                raise ValueError(
                    f"{self.source}: mismatched joint counts: clip {self.ids[0]} has {self.joints[0].shape[-2]} "
                    f"joints, clip {clip_id} has {clip.shape[-2]}; convert all clips to one skeleton"
                )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_joints(self) -> int:
        if not self.joints:
            raise ValueError(f"{self.source}: the set is empty, its joint count is undefined")
        return int(self.joints[0].shape[-2])

    @property
    def present_classes(self) -> list[str]:
        """Names of the classes that occur in the labels, in class_names order."""
        return [self.class_names[i] for i in sorted(set(self.labels.tolist()))]

    def relabel(self, class_names: Sequence[str]) -> SkeletonClips:
        """The same clips with labels indexing ``class_names`` (matched by name).

        Raises:
            ValueError: a class of this set is not in ``class_names``.
        """
        index = {name: i for i, name in enumerate(class_names)}
        missing = [name for name in self.present_classes if name not in index]
        if missing:
            raise ValueError(f"{self.source}: classes {missing} are not among {list(class_names)}")
        labels = np.array([index[self.class_names[i]] for i in self.labels], dtype=np.int64)
        return SkeletonClips(self.joints, labels, tuple(class_names), self.ids, self.source)

    def check_min_frames(self, min_frames: int) -> None:
        """Raise ValueError naming every clip shorter than ``min_frames`` (the ST-GCN temporal kernel)."""
        short = [f"{i} ({c.shape[-3]} frames)" for i, c in zip(self.ids, self.joints) if c.shape[-3] < min_frames]
        if short:
            raise ValueError(
                f"{self.source}: {len(short)} clip(s) shorter than ST-GCN's temporal kernel of {min_frames} frames: "
                f"{', '.join(short[:10])}{' ...' if len(short) > 10 else ''}; drop them from the split or re-export longer clips"
            )


def concat_clips(sets: Sequence[SkeletonClips], class_names: Sequence[str], source: str) -> SkeletonClips:
    """Union of labelled sets, relabelled onto ``class_names``; joint counts must agree."""
    relabelled = [s.relabel(class_names) for s in sets]
    counts = {s.source: s.num_joints for s in relabelled if len(s)}
    if len(set(counts.values())) > 1:
        raise ValueError(f"mismatched joint counts between sets: {counts}; convert all sets to one skeleton")
    return SkeletonClips(
        tuple(c for s in relabelled for c in s.joints),
        np.concatenate([s.labels for s in relabelled]) if relabelled else np.zeros(0, np.int64),
        tuple(class_names),
        tuple(i for s in relabelled for i in s.ids),
        source,
    )


def training_classes(train_sets: Sequence[SkeletonClips], test: SkeletonClips) -> tuple[str, ...]:
    """The classifier's classes: every class present in the training sets, in first-listed order.

    Raises:
        ValueError: a class present in ``test`` occurs in none of the training sets, or the sets
            have different joint counts.
    """
    ordered: list[str] = []
    for s in train_sets:
        for name in s.present_classes:
            if name not in ordered:
                ordered.append(name)
    for s in train_sets:
        absent = [name for name in test.present_classes if name not in s.present_classes]
        if absent:
            raise ValueError(
                f"test classes {absent} (in {test.source}) are absent from the training set {s.source}; "
                "add clips of these classes to it or drop them from the test split"
            )
    counts = {s.source: s.num_joints for s in [*train_sets, test] if len(s)}
    if len(set(counts.values())) > 1:
        raise ValueError(f"mismatched joint counts between sets: {counts}; convert all sets to one skeleton")
    return tuple(ordered)


def _read_joints(path: Path) -> np.ndarray:
    joints = np.load(path)
    # the authors' NTU-VIBE release stores new_joints flattened, (T, 3 V)
    return (joints.reshape(len(joints), -1, 3) if joints.ndim == 2 else joints).astype(np.float32)


def load_clips(
    root: str | Path, split: str | None = None, input_mode: str = "auto", missing: str = "error"
) -> SkeletonClips:
    """Labelled joint clips of a HumanML3D-layout folder.

    Labels come from ``mdm_kinemic.data.labels.load_labelled(root, split)`` (labels.txt +
    classes.txt, or the authors' NTU-VIBE split files). Joints come from new_joints/ID.npy
    ("joints": any joint count, e.g. 25 NTU joints given directly) or from the 263-dim
    new_joint_vecs/ID.npy through ``recover_from_ric`` ("hml_vec"); "auto" takes the joints file
    where it exists and the features otherwise, as ``HumanML3D.joints`` does, but also works in
    folders that hold joints only (which ``HumanML3D`` does not open).

    Args:
        root: the folder.
        split: split list passed to load_labelled (None: every labelled clip).
        input_mode: one of INPUT_MODES.
        missing: "error" or "skip" for listed clips without the file(s) ``input_mode`` reads.

    Returns:
        SkeletonClips with joints [T, 22, 3] (HumanML3D) or [T, V, 3] as stored.

    Raises:
        ValueError: unknown input mode or missing option, listed clips without files (with
            missing="error"), clips whose joint count no layout has.
        FileNotFoundError: from the data layer, naming the missing labels or split file.
    """
    from mdm_kinemic.data.hml_vec import recover_from_ric
    from mdm_kinemic.data.humanml3d import JOINTS_DIR, MOTION_DIR, HumanML3D
    from mdm_kinemic.data.labels import load_labelled

    if input_mode not in INPUT_MODES:
        raise ValueError(f"input mode must be one of {INPUT_MODES}, got {input_mode!r}")
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
    root = Path(root)
    labelled = load_labelled(root, split=split, missing="keep")
    features = HumanML3D(root) if input_mode != "joints" and (root / MOTION_DIR).is_dir() else None
    source = f"{root}" + (f" (split {split})" if split else "")
    joints, labels, ids, absent = [], [], [], []
    for clip_id, label in zip(labelled.ids, labelled.labels):
        joints_path = root / JOINTS_DIR / f"{clip_id}.npy"
        if input_mode != "hml_vec" and joints_path.is_file():
            clip = _read_joints(joints_path)
        elif features is not None and clip_id in features:
            clip = np.asarray(recover_from_ric(np.asarray(features.motion(clip_id), dtype=np.float32)), dtype=np.float32)
        else:
            absent.append(clip_id)
            continue
        joints.append(clip)
        labels.append(label)
        ids.append(clip_id)
    if absent:
        looked = {"joints": JOINTS_DIR, "hml_vec": MOTION_DIR, "auto": f"{JOINTS_DIR} or {MOTION_DIR}"}[input_mode]
        message = f"{source}: {len(absent)} of {len(labelled.ids)} listed clips have no {looked}/ID.npy (first: {absent[:3]})"
        if missing == "error":
            raise ValueError(f"{message}; add the files, choose another --input, or pass --missing skip")
        logger.warning("%s; skipped", message)
    clips = SkeletonClips(tuple(joints), np.asarray(labels, dtype=np.int64), tuple(labelled.class_names), tuple(ids), source)
    if len(clips):
        layout_for_joints(clips.num_joints)
    return clips
