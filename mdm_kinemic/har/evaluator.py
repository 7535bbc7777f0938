"""The fixed evaluator: one ST-GCN trained once on real clips, saved, reused for every method's metrics.

Action2Motion, ACTOR and upstream MDM's action-to-motion evaluation (eval/a2m) score every
generator with one recogniser trained on real data and kept fixed, so that accuracy, FID,
diversity and multimodality of different methods are measured with the same ruler. Here:

    python -m mdm_kinemic.har.evaluator --train DIR --train_split evaluator --test DIR --test_split test \\
        --out OUT/evaluator/stgcn [HarProtocol flags]

trains one ST-GCN (seed ``--first_seed``) on ``--train``, reports its top-1 and balanced accuracy
on ``--test`` and writes ``OUT.safetensors`` (the state dict) and ``OUT.json`` (its protocol, class
names, joint count, seed and test accuracy). ``mdm_kinemic.har.evaluate --recogniser_ckpt
OUT.safetensors`` reuses it for the generative metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from mdm_kinemic.distributed import torch_device
from mdm_kinemic.flags import DEVICE_HELP, device_type
from mdm_kinemic.har.clips import INPUT_MODES, SkeletonClips, training_classes
from mdm_kinemic.har.protocol import (
    HarProtocol,
    add_protocol_arguments,
    protocol_from_args,
)
from mdm_kinemic.har.report import write_json
from mdm_kinemic.har.skeleton import layout_for_joints
from mdm_kinemic.har.sources import load_set
from mdm_kinemic.har.stats import balanced_accuracy, confusion_matrix, is_converged
from mdm_kinemic.har.stgcn import STGCN
from mdm_kinemic.har.train import TrainedSTGCN, top1, train_stgcn

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIX = ".safetensors"
SETTINGS_SUFFIX = ".json"


def _stem(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, SETTINGS_SUFFIX) else path


def save_recogniser(trained: TrainedSTGCN, path: str | Path, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``STEM.safetensors`` (state dict) and ``STEM.json`` (settings, class names, ``extra``).

    Args:
        trained: the recogniser.
        path: STEM, or STEM.safetensors / STEM.json.
        extra: more JSON fields (e.g. its test accuracy).

    Returns:
        (weights path, settings path).
    """
    from safetensors.torch import save_file

    from mdm_kinemic.atomic import atomic_path

    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(WEIGHTS_SUFFIX)
    state = {k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    settings = {
        "class_names": list(trained.class_names),
        "num_joints": trained.model.layout.num_joints,
        "protocol": trained.protocol.to_dict(),
        "seed": trained.seed,
        "epochs": trained.epochs,
        "iterations": trained.iterations,
        **(extra or {}),
    }
    return weights, write_json(stem.with_suffix(SETTINGS_SUFFIX), settings)


def load_recogniser(path: str | Path, device: str | torch.device = "cpu") -> TrainedSTGCN:
    """A recogniser written by save_recogniser, in eval mode.

    Raises:
        FileNotFoundError: STEM.safetensors or STEM.json missing (the message names the command
            that writes them).
        ValueError: the settings do not describe the weights.
    """
    from safetensors.torch import load_file

    stem = _stem(path)
    weights, settings_path = stem.with_suffix(WEIGHTS_SUFFIX), stem.with_suffix(SETTINGS_SUFFIX)
    for needed in (weights, settings_path):
        if not needed.is_file():
            raise FileNotFoundError(
                f"recogniser checkpoint {needed} not found: train one with python -m mdm_kinemic.har.evaluator --out {stem}"
            )
    settings = json.loads(settings_path.read_text())
    protocol = HarProtocol(**settings["protocol"])
    model = STGCN(layout_for_joints(settings["num_joints"]), len(settings["class_names"]), base_channels=protocol.base_channels)
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as err:
        raise ValueError(f"{weights} does not match the ST-GCN described by {settings_path}: {err}") from err
    model = model.to(torch_device(device) if isinstance(device, str) else device).eval()
    return TrainedSTGCN(model, tuple(settings["class_names"]), protocol, settings["seed"],
                        epochs=settings.get("epochs", 0), iterations=settings.get("iterations", 0))


def train_evaluator(
    train: SkeletonClips, test: SkeletonClips, protocol: HarProtocol, out: str | Path, device: str = "auto"
) -> dict:
    """Train the fixed evaluator (one seed: ``protocol.first_seed``), test it and save it.

    Returns:
        The settings written to OUT.json, with ``test_top1``, ``test_balanced_accuracy`` (%) and
        ``converged``.

    Raises:
        ValueError: test classes absent from train, and the other checks of train_stgcn.
    """
    classes = training_classes([train], test)
    train, test = train.relabel(classes), test.relabel(classes)
    trained = train_stgcn(train, protocol, protocol.first_seed, device=device)
    predictions = trained.predict(test)
    k = len(classes)
    extra = {
        "train_source": train.source,
        "train_clips": len(train),
        "test_source": test.source,
        "test_clips": len(test),
        "test_top1": top1(predictions, test.labels),
        "test_balanced_accuracy": balanced_accuracy(confusion_matrix(test.labels, predictions, k)),
        "converged": is_converged(confusion_matrix(train.labels, trained.predict(train), k)),
    }
    _, settings = save_recogniser(trained, out, extra)
    return json.loads(settings.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """Train, test and save the fixed evaluator; prints its accuracy. Exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.evaluator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="the real clips to train on: a HumanML3D-layout folder or a PYSKL .pkl, PATH or PATH:SPLIT")
    parser.add_argument("--train_split", default=None, help="split of --train (default: a folder's labels.txt)")
    parser.add_argument("--test", required=True, help="the test clips: a HumanML3D-layout folder or a PYSKL .pkl, PATH or PATH:SPLIT")
    parser.add_argument("--test_split", default=None, help="split of --test")
    parser.add_argument("--input", choices=INPUT_MODES, default="auto", help="joints source (as har.evaluate)")
    parser.add_argument("--out", required=True, help="checkpoint stem: writes STEM.safetensors and STEM.json")
    parser.add_argument("--device", default="auto", type=device_type, help=DEVICE_HELP)
    add_protocol_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        protocol = protocol_from_args(args)
        train = load_set(args.train, args.train_split, args.input)
        test = load_set(args.test, args.test_split, args.input)
        result = train_evaluator(train, test, protocol, args.out, args.device)
    except (ValueError, FileNotFoundError, pickle.UnpicklingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"evaluator: test top-1 {result['test_top1']:.2f} %, balanced {result['test_balanced_accuracy']:.2f} %, "
          f"{'converged' if result['converged'] else 'NOT CONVERGED'}; wrote {_stem(args.out)}{WEIGHTS_SUFFIX}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
