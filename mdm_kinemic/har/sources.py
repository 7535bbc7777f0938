"""A labelled set named on the command line: a HumanML3D-layout folder or a PYSKL pickle, with a split.

A set is written ``PATH`` or ``PATH:SPLIT``: PATH is a folder in HumanML3D layout with labels
(har/clips.py ``load_clips``; SPLIT is a split list such as ``test`` or ``fewshot/S0000/xsub/val``)
or a PYSKL annotation pickle ending in ``.pkl`` (har/pyskl.py ``read_pyskl``; SPLIT is a key of
its ``split`` dict such as ``xsub_val``). A path that exists as written is taken whole, so a
path holding ':' needs no escaping.
"""

from __future__ import annotations

from pathlib import Path

from mdm_kinemic.har.clips import SkeletonClips, load_clips
from mdm_kinemic.har.pyskl import read_pyskl

PICKLE_SUFFIX = ".pkl"


def parse_set_spec(spec: str) -> tuple[Path, str | None]:
    """(path, split or None) of ``PATH`` or ``PATH:SPLIT``.

    Raises:
        ValueError: an empty path or an empty split after ':'.
    """
    if not spec:
        raise ValueError("a set must be PATH or PATH:SPLIT, got an empty string")
    if Path(spec).exists() or ":" not in spec:
        return Path(spec), None
    path, _, split = spec.rpartition(":")
    if not path or not split:
        raise ValueError(f"set {spec!r}: expected PATH or PATH:SPLIT with both parts non-empty")
    return Path(path), split


def load_set(spec: str, split: str | None = None, input_mode: str = "auto", missing: str = "error") -> SkeletonClips:
    """The labelled clips a set names.

    Args:
        spec: ``PATH`` or ``PATH:SPLIT`` (module doc).
        split: a split given separately (e.g. by ``--test_split``); must agree with one in spec.
        input_mode, missing: for folders, as ``load_clips``; a pickle holds joints and has no
            missing clips.

    Returns:
        SkeletonClips: [T, V, 3] clips from folders, [M, T, V, 3] from PYSKL pickles.

    Raises:
        FileNotFoundError: the path does not exist (or, from the loaders, a split list).
        ValueError: two different splits, and the loaders' errors.
    """
    path, spec_split = parse_set_spec(spec)
    if split is not None and spec_split is not None and split != spec_split:
        raise ValueError(f"set {spec!r} names split {spec_split!r} but the split flag says {split!r}: give one")
    split = split if split is not None else spec_split
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (a set is a HumanML3D-layout folder or a PYSKL .pkl, optionally :SPLIT)")
    if path.is_file() and path.suffix == PICKLE_SUFFIX:
        return read_pyskl(path, split)
    if not path.is_dir():
        raise ValueError(f"{path} is neither a HumanML3D-layout folder nor a PYSKL annotation file ({PICKLE_SUFFIX})")
    return load_clips(path, split, input_mode, missing)
