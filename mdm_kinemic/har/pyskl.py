"""PYSKL skeleton annotations: labelled clips to and from PYSKL's pickle, with a layout sidecar.

The format (PYSKL tools/data/README.md, "The format of the pickle files"; read by PYSKL's
PoseDataset and mmaction2's PoseDataset) is one pickled dict:

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...]},
     "annotations": [{"frame_dir": str, "label": int, "keypoint": float32 [M, T, V, 3],
                      "total_frames": T}, ...]}

3D skeletons carry no ``img_shape`` or ``keypoint_score``. Labels are integers, so the class
names, the joint layout (SMPL-22 of HumanML3D or NTU-25) and the coordinates are stated in a
JSON sidecar beside the pickle (STEM.json for STEM.pkl). PYSKL's Graph has no SMPL-22 layout: the
sidecar gives its parents and (joint, parent) edges, PYSKL's ``inward`` list, for a custom one.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.skeleton import layout_for_joints

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
#: Split names PYSKL's NTU RGB+D configs read (``split='xsub_train'`` / ``'xsub_val'``).
DEFAULT_TRAIN_SPLIT, DEFAULT_TEST_SPLIT = "xsub_train", "xsub_val"


def sidecar_path(pickle_path: str | Path) -> Path:
    """STEM.json beside STEM.pkl."""
    return Path(pickle_path).with_suffix(SIDECAR_SUFFIX)


def to_keypoint(joints: np.ndarray) -> np.ndarray:
    """A clip as PYSKL's keypoint array: [T, V, 3] -> float32 [1, T, V, 3]; [M, T, V, 3] unchanged (float32)."""
    keypoint = np.asarray(joints, dtype=np.float32)
    return keypoint[None] if keypoint.ndim == 3 else keypoint


def pyskl_annotations(
    splits: Mapping[str, Sequence[SkeletonClips]], class_names: Sequence[str]
) -> tuple[dict, dict]:
    """PYSKL's annotation dict of labelled sets and the sidecar's content.

    Args:
        splits: {split name: the sets whose clips it lists}; every set's classes must be in
            ``class_names`` (matched by name), all sets must have one joint count.
        class_names: the label space; an annotation's ``label`` indexes it.

    Returns:
        (annotations dict as above, sidecar dict: layout name, joint count, parents, edges,
        centre, units, class names, and per split its sources and clip count).

    Raises:
        ValueError: no clips, a class outside ``class_names``, mismatched joint counts, a clip
            id (frame_dir) listed twice, or a joint count no layout has.
    """
    sets = {name: [clips.relabel(class_names) for clips in group] for name, group in splits.items()}
    counts = {c.source: c.num_joints for group in sets.values() for c in group if len(c)}
    if not counts:
        raise ValueError("no clips to export: every set is empty")
    if len(set(counts.values())) > 1:
        raise ValueError(f"mismatched joint counts between sets: {counts}; convert all sets to one skeleton")
    layout = layout_for_joints(next(iter(counts.values())))
    annotations, seen = [], {}
    split_ids: dict[str, list[str]] = {name: [] for name in sets}
    for split_name, clips in ((name, c) for name, group in sets.items() for c in group):
        for clip_id, label, joints in zip(clips.ids, clips.labels, clips.joints):
            if clip_id in seen:
                raise ValueError(
                    f"clip id {clip_id!r} occurs in {seen[clip_id]} and in {clips.source} ({split_name}): PYSKL names "
                    "clips by frame_dir, so ids must be unique across sets; pass --prefix_ids or rename the clips"
                )
            seen[clip_id] = f"{clips.source} ({split_name})"
            keypoint = to_keypoint(joints)
            annotations.append(
                {"frame_dir": clip_id, "label": int(label), "keypoint": keypoint, "total_frames": int(keypoint.shape[1])}
            )
            split_ids[split_name].append(clip_id)
    sidecar = {
        "format": "PYSKL skeleton annotations (tools/data/README.md): keypoint float32 [M, T, V, 3]",
        "layout": layout.name,
        "num_joints": layout.num_joints,
        "parents": list(layout.parents),
        "edges": [list(bone) for bone in layout.bones],
        "center": layout.center,
        "units": "metres, as stored in the sources: HumanML3D-layout folders Y up at 20 fps, PYSKL's NTU files "
        "Kinect camera space at 30 fps",
        "class_names": list(class_names),
        "splits": {
            name: {"sources": [c.source for c in group], "clips": len(split_ids[name])}
            for name, group in sets.items()
        },
    }
    return {"split": split_ids, "annotations": annotations}, sidecar


def write_pyskl(
    path: str | Path, splits: Mapping[str, Sequence[SkeletonClips]], class_names: Sequence[str]
) -> tuple[Path, Path]:
    """Write PYSKL's annotation pickle (protocol 4) and its sidecar STEM.json, each atomically.

    Returns:
        (pickle path, sidecar path).

    Raises:
        ValueError: from :func:`pyskl_annotations`.
    """
    from mdm_kinemic.atomic import atomic_write_bytes

    annotations, sidecar = pyskl_annotations(splits, class_names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, pickle.dumps(annotations, protocol=4))
    side = sidecar_path(path)
    atomic_write_bytes(side, (json.dumps(sidecar, indent=2) + "\n").encode())
    return path, side


def _class_names(path: Path, labels: Sequence[int], class_names: Sequence[str] | None) -> tuple[str, ...]:
    """Names for a pickle's integer labels: given, from its sidecar, or NTU's (ntu_classes.txt)."""
    from mdm_kinemic.data.labels import find_ntu_classes

    if class_names is None and sidecar_path(path).is_file():
        class_names = json.loads(sidecar_path(path).read_text()).get("class_names")
    if class_names is None:
        found = find_ntu_classes(path.parent)
        if found is not None:
            class_names = [ln.strip() for ln in found.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if class_names is None:
        raise ValueError(
            f"{path}: PYSKL labels are integers and no class names were found: put {sidecar_path(path).name} "
            '({"class_names": [...]}) beside it, or for NTU RGB+D labels ntu_classes.txt (120 names, one per line) '
            "beside it or in its parent folder, or set $MDM_KINEMIC_NTU_CLASSES to that file"
        )
    if labels and max(labels) >= len(class_names):
        raise ValueError(f"{path}: label {max(labels)} has no name among the {len(class_names)} class names found")
    return tuple(class_names)


def read_pyskl(path: str | Path, split: str | None, class_names: Sequence[str] | None = None) -> SkeletonClips:
    """Labelled clips of one split of a PYSKL annotation pickle (e.g. ntu120_3danno.pkl).

    Loaded with ``safe_load_pickle`` (numpy arrays and builtin containers only: a pickle that
    names any other global is refused before anything in it runs).

    Args:
        path: the pickle.
        split: a key of its ``split`` dict (required when it has more than one split).
        class_names: names for the integer labels; default the sidecar's, else NTU's class
            names (``ntu_classes.txt`` beside the pickle, in its parent, or $MDM_KINEMIC_NTU_CLASSES).

    Returns:
        SkeletonClips with clips [M, T, V, 3] as stored (M bodies, T varying per clip), ids =
        frame_dir, in split-list order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not PYSKL's layout, an unknown split (the message lists the splits), a
            listed clip without annotation, 2D keypoints, no class names.
        pickle.UnpicklingError: unreadable file, or a global outside the allowlist.
    """
    from mdm_kinemic.safe_pickle import safe_load_pickle

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PYSKL annotation file {path} not found")
    data = safe_load_pickle(path)
    if not (isinstance(data, dict) and isinstance(data.get("split"), dict) and isinstance(data.get("annotations"), list)):
        raise ValueError(f"{path}: not PYSKL annotations: expected a dict with 'split' (a dict) and 'annotations' (a list)")
    names = sorted(data["split"])
    if split is None:
        if len(names) != 1:
            raise ValueError(f"{path}: name a split as {path}:SPLIT, one of {names}")
        split = names[0]
    if split not in data["split"]:
        raise ValueError(f"{path}: no split {split!r}; its splits are {names}")
    by_dir = {a.get("frame_dir"): a for a in data["annotations"] if isinstance(a, dict)}
    ids = [str(i) for i in data["split"][split]]
    absent = [i for i in ids if i not in by_dir]
    if absent:
        raise ValueError(f"{path}: {len(absent)} clips of split {split!r} have no annotation (first: {absent[:3]})")
    joints, labels = [], []
    for clip_id in ids:
        keypoint = np.asarray(by_dir[clip_id].get("keypoint"))
        if keypoint.ndim != 4 or keypoint.shape[-1] != 3:
            raise ValueError(
                f"{path}: clip {clip_id} has keypoint shape {keypoint.shape}; ST-GCN here takes 3D joints [M, T, V, 3] "
                "(2D keypoints with scores are not read)"
            )
        joints.append(keypoint.astype(np.float32, copy=False))
        labels.append(int(by_dir[clip_id]["label"]))
    clips = SkeletonClips(
        tuple(joints), np.asarray(labels, np.int64), _class_names(path, labels, class_names), tuple(ids), f"{path}:{split}"
    )
    if len(clips):
        layout_for_joints(clips.num_joints)
        several = sum(1 for j in joints if j.shape[0] > 1)
        if several:
            logger.info("%s: %d of %d clips hold more than one body (HarProtocol.persons decides how many are used)",
                        clips.source, several, len(clips))
    return clips
