"""Labelled sets as PYSKL annotations: ``python -m mdm_kinemic.har.export_pyskl``.

    python -m mdm_kinemic.har.export_pyskl --train DATA/ntu_fewshot OUT/synth/kinemic \\
        --test DATA/ntu_test:test --out OUT/pyskl/kinemic.pkl

writes OUT/pyskl/kinemic.pkl, PYSKL's annotation pickle (har/pyskl.py), whose split
``xsub_train`` lists every clip of the --train sets and ``xsub_val`` every clip of the --test
sets (the names PYSKL's NTU configs read; --train_split_name / --test_split_name rename them), and
OUT/pyskl/kinemic.json, the sidecar naming the joint layout, the class names the labels index
and each split's sources. A set is a HumanML3D-layout folder or a PYSKL pickle, ``PATH[:SPLIT]``
(har/sources.py). Classes are matched by name across sets; labels index --class_names FILE (one
name per line, e.g. NTU's 120) or, by default, the classes present: set by set as listed, each
set's in its own class order.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.har.clips import INPUT_MODES, SkeletonClips
from mdm_kinemic.har.pyskl import DEFAULT_TEST_SPLIT, DEFAULT_TRAIN_SPLIT, write_pyskl
from mdm_kinemic.har.sources import PICKLE_SUFFIX, load_set, parse_set_spec

logger = logging.getLogger(__name__)


def present_classes(sets: Sequence[SkeletonClips]) -> tuple[str, ...]:
    """Every class present in ``sets``: set by set, each set's in its own class order."""
    ordered: list[str] = []
    for clips in sets:
        ordered += [name for name in clips.present_classes if name not in ordered]
    return tuple(ordered)


def prefixed(clips: SkeletonClips, prefix: str) -> SkeletonClips:
    """The same clips with ids ``PREFIX/ID``."""
    return SkeletonClips(clips.joints, clips.labels, clips.class_names, [f"{prefix}/{i}" for i in clips.ids], clips.source)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.export_pyskl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", nargs="+", required=True, metavar="SET", help="sets listed in the training split: HumanML3D-layout folders or PYSKL .pkl files, each PATH or PATH:SPLIT")
    parser.add_argument("--test", nargs="+", default=[], metavar="SET", help="sets listed in the test split (optional)")
    parser.add_argument("--out", required=True, help=f"the annotation file to write (ending in {PICKLE_SUFFIX}); the sidecar STEM.json goes beside it")
    parser.add_argument("--train_split_name", default=DEFAULT_TRAIN_SPLIT, help=f"name of the training split (default {DEFAULT_TRAIN_SPLIT}, as PYSKL's NTU configs)")
    parser.add_argument("--test_split_name", default=DEFAULT_TEST_SPLIT, help=f"name of the test split (default {DEFAULT_TEST_SPLIT})")
    parser.add_argument("--class_names", default=None, help="file with one class name per line that the labels index (default: the classes present, set by set as listed)")
    parser.add_argument("--prefix_ids", action="store_true", help="name clips FOLDER/ID (FOLDER = the set's file or folder name) so that sets with the same clip ids can share a file")
    parser.add_argument("--input", choices=INPUT_MODES, default="auto", help="joints of folders from new_joints, from recover_from_ric of new_joint_vecs, or auto (default)")
    parser.add_argument("--missing", choices=("error", "skip"), default="error", help="listed clips without motion files: fail (default) or skip them")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Export; prints the files written and the clips per split. Exit 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if Path(args.out).suffix != PICKLE_SUFFIX:
        parser.error(f"--out {args.out}: the annotation file must end in {PICKLE_SUFFIX}")
    if args.train_split_name == args.test_split_name:
        parser.error(f"--train_split_name and --test_split_name are both {args.train_split_name!r}: give two names")
    try:
        groups = {}
        for split_name, specs in ((args.train_split_name, args.train), (args.test_split_name, args.test)):
            if not specs:
                continue
            sets = [load_set(spec, input_mode=args.input, missing=args.missing) for spec in specs]
            if args.prefix_ids:
                sets = [prefixed(s, parse_set_spec(spec)[0].name) for s, spec in zip(sets, specs)]
            groups[split_name] = sets
        if args.class_names is not None:
            lines = Path(args.class_names).read_text(encoding="utf-8").splitlines()
            class_names = tuple(ln.strip() for ln in lines if ln.strip())
        else:
            class_names = present_classes([s for sets in groups.values() for s in sets])
        pkl, sidecar = write_pyskl(args.out, groups, class_names)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        parser.error(str(err))
    counts = ", ".join(f"{name} {sum(len(s) for s in sets)} clips" for name, sets in groups.items())
    print(f"wrote {pkl} ({counts}, {len(class_names)} classes) and {sidecar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
