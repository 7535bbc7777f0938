"""A saved recogniser on a test set, without training: ``python -m mdm_kinemic.har.score``.

    python -m mdm_kinemic.har.score --recogniser OUT/har/kinemic/real_plus_synthetic/seed0/recogniser \\
        --test DATA/ntu120_3danno.pkl:xsub_val --out OUT/scored/kinemic_seed0

reads a recogniser that har.evaluate saved per seed (or the fixed evaluator of har.evaluator),
classifies the test clips under the protocol it was trained with, and writes OUT/test_scores.npy
(float32 [N, K] class probabilities), OUT/test_clips.json (rows and columns of the scores) and
OUT/score.json (top-1, balanced accuracy, per-class accuracy, confusion matrix, predictions).
"""

from __future__ import annotations

import argparse
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mdm_kinemic.flags import DEVICE_HELP, device_type
from mdm_kinemic.har.artefacts import write_scores, write_test_clips
from mdm_kinemic.har.clips import INPUT_MODES, SkeletonClips
from mdm_kinemic.har.evaluator import load_recogniser
from mdm_kinemic.har.report import write_json
from mdm_kinemic.har.sources import load_set
from mdm_kinemic.har.stats import (
    balanced_accuracy,
    confusion_matrix,
    per_class_accuracy,
)
from mdm_kinemic.har.train import TrainedSTGCN, top1

RESULT_FILE = "score.json"


def score_recogniser(recogniser: TrainedSTGCN, test: SkeletonClips) -> tuple[np.ndarray, dict]:
    """Class probabilities of the test clips and their accuracy under ``recogniser``.

    Args:
        recogniser: a trained recogniser (its protocol's test sampling is used).
        test: labelled clips; their classes are matched by name to the recogniser's.

    Returns:
        (scores float32 [N, K], columns = recogniser.class_names; dict with top1, balanced
        accuracy and per-class accuracy in %, the confusion matrix, test ids, labels and
        predictions, all indexing the recogniser's classes).

    Raises:
        ValueError: test classes the recogniser does not know, another joint count, clips
            shorter than the temporal kernel.
    """
    test = test.relabel(recogniser.class_names)
    scores = recogniser.embed(test)[0].astype(np.float32)
    predictions = scores.argmax(axis=1)
    confusion = confusion_matrix(test.labels, predictions, len(recogniser.class_names))
    return scores, {
        "test_source": test.source,
        "classes": list(recogniser.class_names),
        "top1": top1(predictions, test.labels),
        "balanced_accuracy": balanced_accuracy(confusion),
        "per_class_accuracy": dict(zip(recogniser.class_names, per_class_accuracy(confusion).tolist())),
        "confusion_matrix": confusion,
        "test_ids": list(test.ids),
        "test_labels": test.labels,
        "test_predictions": predictions,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Score and write; prints the accuracy. Exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recogniser", required=True, help="recogniser stem (STEM.safetensors + STEM.json), e.g. OUT/RUN/seed0/recogniser of har.evaluate")
    parser.add_argument("--test", required=True, help="a HumanML3D-layout folder or a PYSKL annotation .pkl, as PATH or PATH:SPLIT")
    parser.add_argument("--input", choices=INPUT_MODES, default="auto", help="joints of folders (as har.evaluate)")
    parser.add_argument("--out", required=True, help="output folder for test_scores.npy, test_clips.json and score.json")
    parser.add_argument("--device", default="auto", type=device_type, help=DEVICE_HELP)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        recogniser = load_recogniser(args.recogniser, args.device)
        test = load_set(args.test, input_mode=args.input)
        scores, result = score_recogniser(recogniser, test)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        parser.error(str(err))
    out = Path(args.out)
    write_scores(out, scores)
    write_test_clips(out, test.relabel(recogniser.class_names))
    write_json(out / RESULT_FILE, {"recogniser": args.recogniser, **result})
    print(f"{args.recogniser}: test top-1 {result['top1']:.2f} %, balanced {result['balanced_accuracy']:.2f} %; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
