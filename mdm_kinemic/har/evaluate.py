"""Downstream HAR evaluation: ``python -m mdm_kinemic.har.evaluate``.

The paper's protocol (Sec. 5): ST-GCN trained on the real few-shot clips plus the synthetic ones,
one run per seed, top-1 on the test split after the final epoch, median (and mean +- std) over
seeds; the real-only baseline is trained and tested in the same run. Optionally, generative
metrics (accuracy, FID, diversity, multimodality) of the real and synthetic training sets under a
recogniser trained on real data.

Example:
    python -m mdm_kinemic.har.evaluate --train_real data/ntu_fewshot --train_synthetic synth/kinemic \\
        --test data/ntu_test --seeds 5 --epochs 80 --out results/kinemic
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mdm_kinemic.flags import DEVICE_HELP, device_type
from mdm_kinemic.har.clips import (
    INPUT_MODES,
    SkeletonClips,
    concat_clips,
    load_clips,
    training_classes,
)
from mdm_kinemic.har.evaluator import load_recogniser
from mdm_kinemic.har.metrics import DEFINITIONS, generative_metrics
from mdm_kinemic.har.protocol import (
    HarProtocol,
    add_protocol_arguments,
    protocol_from_args,
)
from mdm_kinemic.har.report import save_confusion_png, write_json
from mdm_kinemic.har.stats import (
    CONVERGENCE_MIN_TRAIN_RECALL,
    balanced_accuracy,
    confusion_matrix,
    is_converged,
    per_class_accuracy,
    summarize_seeds,
)
from mdm_kinemic.har.stgcn import TEMPORAL_KERNEL
from mdm_kinemic.har.train import TrainedSTGCN, resolve_device, top1, train_stgcn

logger = logging.getLogger(__name__)

RESULTS_FILE = "har_results.json"
#: Names of the runs in the results JSON.
REAL_ONLY, REAL_PLUS_SYNTHETIC = "real_only", "real_plus_synthetic"
MAX_OVER_EPOCHS_KEY = "top1_max_over_epochs_authors_selected_on_test"
GEN_METRIC_CHOICES = ("action2motion", "text2motion", "both", "none")


def _one_thread() -> None:
    """Process-pool initialiser: one torch thread per seed process (parallel seeds share the cores)."""
    torch.set_num_threads(1)


def train_and_test_seed(
    train: SkeletonClips, test: SkeletonClips, protocol: HarProtocol, seed: int, device: torch.device
) -> tuple[dict, TrainedSTGCN]:
    """One seed of a run: train, test, and check convergence on the training clips.

    Args:
        train, test: labelled clips, already relabelled to the classifier's classes.
        protocol: the HAR protocol.
        seed: training seed.
        device: training device.

    Returns:
        (record, trained recogniser). The record holds the seed's test predictions, its test
        confusion matrix, top-1 and balanced accuracy (%), its epochs and SGD iterations, its
        recall (%) per class on its own training clips and ``converged`` (stats.is_converged).
    """
    trained = train_stgcn(train, protocol, seed, device=device, test=test)
    k = len(train.class_names)
    predictions = trained.predict(test)
    confusion = confusion_matrix(test.labels, predictions, k)
    train_confusion = confusion_matrix(train.labels, trained.predict(train), k)
    record = {
        "seed": seed,
        "predictions": predictions,
        "confusion": confusion,
        "top1": top1(predictions, test.labels),
        "balanced": balanced_accuracy(confusion),
        "epochs": trained.epochs,
        "iterations": trained.iterations,
        "train_recall": per_class_accuracy(train_confusion),
        "converged": is_converged(train_confusion),
        "epoch_test_top1": trained.epoch_test_top1,
        "seconds": trained.train_seconds,
    }
    return record, trained


def _run_seeds(
    train: SkeletonClips, test: SkeletonClips, protocol: HarProtocol, device: torch.device, jobs: int
) -> list[tuple[dict, TrainedSTGCN]]:
    """train_and_test_seed for every seed, in seed order; ``jobs`` > 1 runs them in one-thread processes."""
    if jobs == 1:
        return [train_and_test_seed(train, test, protocol, seed, device) for seed in protocol.seed_list]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_one_thread) as pool:
        futures = [pool.submit(_seed_in_worker, train, test, protocol, seed, device) for seed in protocol.seed_list]
        results = [f.result() for f in futures]
    for _, trained in results:
        trained.model.to(device)
    return results


def _seed_in_worker(
    train: SkeletonClips, test: SkeletonClips, protocol: HarProtocol, seed: int, device: torch.device
) -> tuple[dict, TrainedSTGCN]:
    """train_and_test_seed in a pool process; the model comes back on the CPU (CUDA tensors do not cross processes safely)."""
    record, trained = train_and_test_seed(train, test, protocol, seed, device)
    trained.model.cpu()
    return record, trained


def evaluate_run(
    name: str,
    train: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    device: torch.device,
    out_dir: Path | None = None,
    jobs: int = 1,
) -> tuple[dict, list[TrainedSTGCN]]:
    """Train and test one recogniser per seed on ``train``; summarise over seeds.

    Args:
        name: run name (file names, logs).
        train, test: labelled clips; the classifier's classes are the classes present in train.
        protocol: the HAR protocol.
        device: training device.
        out_dir: where the confusion-matrix PNG goes (None: no PNG).
        jobs: seeds trained at once, each in its own process with one torch thread; a seed's
            result does not depend on ``jobs`` (the same as a sequential one-thread run).

    Returns:
        (results dict, trained recognisers in seed order). The dict holds the final-epoch top-1
        and balanced-accuracy (mean per-class recall) summaries (median, mean, std over all
        seeds), every seed's test predictions (for paired statistics, har/paired.py), epochs,
        iterations and convergence flag, the test clips per class, per-class accuracy and the
        confusion matrix summed over seeds, and, when tracked, the authors' max-over-epochs
        column, labelled as selected on the test split.

    Raises:
        ValueError: test classes absent from train, mismatched joint counts, clips too short,
            jobs < 1.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    classes = training_classes([train], test)
    train, test = train.relabel(classes), test.relabel(classes)
    records, trained_models = [], []
    for record, trained in _run_seeds(train, test, protocol, device, jobs):
        records.append(record)
        trained_models.append(trained)
        logger.info(
            "%s seed %d: final-epoch top-1 %.2f %%, balanced %.2f %%, %d iterations%s (%.1f s)", name, record["seed"],
            record["top1"], record["balanced"], record["iterations"], "" if record["converged"] else ", NOT CONVERGED",
            record["seconds"],
        )
    maxima = [max(r["epoch_test_top1"]) for r in records if r["epoch_test_top1"]]
    per_seed_conf = [r["confusion"] for r in records]
    confusion = np.sum(per_seed_conf, axis=0)
    converged = [r["converged"] for r in records]
    result = {
        "classes": list(classes),
        "train_source": train.source,
        "train_clips": len(train),
        "test_clips": len(test),
        "test_per_class": dict(zip(classes, np.bincount(test.labels, minlength=len(classes)).tolist())),
        "seeds": protocol.seed_list,
        "top1_final_epoch": summarize_seeds([r["top1"] for r in records]).to_dict(),
        "balanced_accuracy_final_epoch": summarize_seeds([r["balanced"] for r in records]).to_dict(),
        "converged_per_seed": converged,
        "converged_seeds": int(sum(converged)),
        "convergence_rule": f"a seed is converged when it predicts every class for at least "
        f"{CONVERGENCE_MIN_TRAIN_RECALL:g} % of that class's own training clips",
        "train_recall_per_seed": [r["train_recall"] for r in records],
        "epochs_per_seed": [r["epochs"] for r in records],
        "iterations_per_seed": [r["iterations"] for r in records],
        MAX_OVER_EPOCHS_KEY: summarize_seeds(maxima).to_dict() if maxima else None,
        "per_class_accuracy": dict(zip(classes, per_class_accuracy(confusion).tolist())),
        "confusion_matrix": confusion,
        "confusion_matrix_per_seed": per_seed_conf,
        "test_ids": list(test.ids),
        "test_labels": test.labels,
        "test_predictions_per_seed": [r["predictions"] for r in records],
        "epoch_test_top1_per_seed": [r["epoch_test_top1"] for r in records],
        "train_seconds_per_seed": [r["seconds"] for r in records],
    }
    if out_dir is not None:
        png = save_confusion_png(
            out_dir / f"confusion_{name}.png", confusion, classes, f"{name}: {len(protocol.seed_list)} seed(s), final epoch"
        )
        result["confusion_png"] = png.name
    return result, trained_models


def generative_report(
    recogniser: TrainedSTGCN,
    sets: dict[str, SkeletonClips],
    reference: SkeletonClips,
    definitions: Sequence[str],
    seed: int,
) -> dict:
    """Generative metrics of each set under ``recogniser`` (FID against ``reference``, the real test set).

    A definition that cannot be computed on a set (text-to-motion needs 300 clips and 30 per
    class) is reported as skipped with the reason. The reference's own diversity and
    multimodality are reported under "test_reference" (its FID to itself is 0 by definition).
    """
    classes = recogniser.class_names
    reference = reference.relabel(classes)
    ref_probs, ref_feats = recogniser.embed(reference)
    out: dict = {}
    for set_name, clips in {**sets, "test_reference": reference}.items():
        clips = clips.relabel(classes)
        probs, feats = (ref_probs, ref_feats) if set_name == "test_reference" else recogniser.embed(clips)
        out[set_name] = {}
        for definition_name in definitions:
            rng = np.random.default_rng(seed)
            try:
                metrics = generative_metrics(feats, clips.labels, probs.argmax(axis=1), ref_feats, DEFINITIONS[definition_name], rng)
            except ValueError as err:
                metrics = {"definition": definition_name, "skipped": str(err)}
            if set_name == "test_reference":
                metrics.pop("fid", None)
            out[set_name][definition_name] = metrics
    return out


def run_har_evaluation(
    train_real: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    train_synthetic: SkeletonClips | None = None,
    device: str = "auto",
    out_dir: str | Path | None = None,
    gen_metrics: str = "action2motion",
    recogniser_train: SkeletonClips | None = None,
    jobs: int = 1,
    recogniser: TrainedSTGCN | None = None,
    recogniser_source: str = "",
) -> dict:
    """The full evaluation: real-only baseline, real + synthetic, generative metrics; writes JSON and PNGs.

    Args:
        train_real: the real training clips (e.g. the 30 few-shot clips).
        test: the test split.
        protocol: the HAR protocol.
        train_synthetic: synthetic clips added to train_real; None runs the baseline alone.
        device: 'auto', 'cpu', 'cuda', ...
        out_dir: folder for har_results.json and the confusion PNGs (None: write nothing).
        gen_metrics: one of GEN_METRIC_CHOICES.
        recogniser_train: real clips to train the metrics' recogniser on (default train_real,
            whose first-seed baseline model is reused).
        jobs: seeds trained at once in one-thread processes (evaluate_run).
        recogniser: a trained recogniser (the fixed evaluator, har/evaluator.py) for the
            generative metrics, instead of training one; not with recogniser_train.
        recogniser_source: where ``recogniser`` was read from, for the report.

    Returns:
        the results dict written to ``out_dir/har_results.json``.

    Raises:
        ValueError: empty sets, test classes absent from a training set, mismatched joint
            counts, clips shorter than the ST-GCN temporal kernel, unknown gen_metrics.
    """
    if gen_metrics not in GEN_METRIC_CHOICES:
        raise ValueError(f"gen_metrics must be one of {GEN_METRIC_CHOICES}, got {gen_metrics!r}")
    if recogniser is not None and recogniser_train is not None:
        raise ValueError("pass either a trained recogniser (--recogniser_ckpt) or clips to train one (--recogniser_train), not both")
    if recogniser is not None:
        absent = sorted(set(test.present_classes) - set(recogniser.class_names))
        if absent:
            raise ValueError(
                f"{recogniser_source or 'the recogniser'} does not know the test classes {absent} (it has "
                f"{list(recogniser.class_names)}): train the evaluator on this target's classes"
            )
    for role, clips in (("real training", train_real), ("test", test), ("synthetic", train_synthetic)):
        if clips is not None and len(clips) == 0:
            hint = " or omit --train_synthetic for a real-only run" if role == "synthetic" else ""
            raise ValueError(f"{clips.source}: the {role} set is empty; check its labels{hint}")
        if clips is not None:
            clips.check_min_frames(TEMPORAL_KERNEL)
    train_sets = [train_real] + ([train_synthetic] if train_synthetic is not None else [])
    training_classes(train_sets, test)
    torch_device = resolve_device(device)
    out_path = Path(out_dir) if out_dir is not None else None
    results: dict = {
        "protocol": protocol.to_dict(),
        "device": str(torch_device),
        "accuracy_note": "top-1 and balanced accuracy (mean per-class recall, the headline) in % on the test split "
        "after the final epoch of each seed; nothing is selected on test. "
        f"'{MAX_OVER_EPOCHS_KEY}' reproduces the authors' max over epochs of test accuracy and is not an unbiased estimate.",
        "data": {
            "train_real": {"source": train_real.source, "clips": len(train_real), "joints": train_real.num_joints},
            "test": {"source": test.source, "clips": len(test)},
        },
        "runs": {},
    }
    real_result, real_models = evaluate_run(REAL_ONLY, train_real, test, protocol, torch_device, out_path, jobs)
    results["runs"][REAL_ONLY] = real_result
    if train_synthetic is not None:
        results["data"]["train_synthetic"] = {"source": train_synthetic.source, "clips": len(train_synthetic)}
        classes = training_classes(train_sets, test)
        mixed = concat_clips(train_sets, classes, f"{train_real.source} + {train_synthetic.source}")
        results["runs"][REAL_PLUS_SYNTHETIC] = evaluate_run(
            REAL_PLUS_SYNTHETIC, mixed, test, protocol, torch_device, out_path, jobs
        )[0]
    if gen_metrics != "none":
        definitions = ["action2motion", "text2motion"] if gen_metrics == "both" else [gen_metrics]
        if recogniser is not None:
            source = f"fixed evaluator {recogniser_source}, trained on its own real clips"
        elif recogniser_train is None:
            recogniser, source = real_models[0], train_real.source
        else:
            classes = training_classes([recogniser_train], test)
            recogniser = train_stgcn(recogniser_train.relabel(classes), protocol, protocol.first_seed, device=torch_device)
            source = recogniser_train.source
        sets = {"train_real": train_real} if train_synthetic is None else {"train_real": train_real, "train_synthetic": train_synthetic}
        results["generative_metrics"] = {
            "recogniser": f"ST-GCN trained on {source} (seed {recogniser.seed}, final epoch), features = pooled 256-d embedding",
            "definitions": {name: DEFINITIONS[name].to_dict() for name in definitions},
            "reference": f"FID against the test split {test.source}",
            "sets": generative_report(recogniser, sets, test, definitions, protocol.first_seed),
            "recogniser_test_balanced_accuracy": balanced_accuracy(
                confusion_matrix(test.relabel(recogniser.class_names).labels, recogniser.predict(test), len(recogniser.class_names))
            ),
        }
    if out_path is not None:
        write_json(out_path / RESULTS_FILE, results)
    return results


def format_summary(results: dict) -> str:
    """Plain-text table of the runs and generative metrics in a results dict."""
    lines = [
        (
            f"{'run':<22}{'balanced median':>16}{'mean':>9}{'std':>8}{'top-1 median':>14}{'converged':>11}"
            "   max-over-epochs (authors', selected on test)"
        )
    ]
    for name, run in results["runs"].items():
        s, b = run["top1_final_epoch"], run["balanced_accuracy_final_epoch"]
        m = run.get(MAX_OVER_EPOCHS_KEY)
        extra = f"{m['median']:.2f} median" if m else "not tracked"
        converged = f"{run['converged_seeds']}/{len(run['seeds'])}"
        lines.append(
            f"{name:<22}{b['median']:>16.2f}{b['mean']:>9.2f}{b['std']:>8.2f}{s['median']:>14.2f}{converged:>11}   {extra}"
        )
    lines.append("test clips per class: " + ", ".join(f"{k} {v}" for k, v in next(iter(results["runs"].values()))["test_per_class"].items()))
    gen = results.get("generative_metrics")
    if gen:
        lines.append("")
        lines.append(f"generative metrics ({gen['recogniser']})")
        for set_name, per_def in gen["sets"].items():
            for def_name, m in per_def.items():
                if "skipped" in m:
                    lines.append(f"  {set_name:<16}{def_name:<15}skipped: {m['skipped']}")
                    continue
                fid_text = f"  FID {m['fid']:.3f}" if "fid" in m else ""
                lines.append(
                    f"  {set_name:<16}{def_name:<15}acc {m['accuracy']:.2f}{fid_text}  div {m['diversity']:.3f}  mm {m['multimodality']:.3f}"
                )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_real", required=True, help="HumanML3D-layout folder of the real training clips")
    parser.add_argument("--train_real_split", default=None, help="split of --train_real passed to load_labelled (default: its labels.txt)")
    parser.add_argument("--train_synthetic", default=None, help="HumanML3D-layout folder of synthetic clips (omit for a real-only run)")
    parser.add_argument("--train_synthetic_split", default=None, help="split of --train_synthetic")
    parser.add_argument("--test", required=True, help="HumanML3D-layout folder of the test clips")
    parser.add_argument("--test_split", default=None, help="split of --test")
    parser.add_argument("--input", choices=INPUT_MODES, default="auto", help="joints from new_joints, from recover_from_ric of new_joint_vecs, or auto (default)")
    parser.add_argument("--missing", choices=("error", "skip"), default="error", help="listed clips without motion files: fail (default) or skip them")
    parser.add_argument("--gen_metrics", choices=GEN_METRIC_CHOICES, default="action2motion", help="generative metric definition(s) (default: action2motion)")
    parser.add_argument("--recogniser_train", default=None, help="real clips for the generative metrics' recogniser (default: --train_real)")
    parser.add_argument("--recogniser_train_split", default=None, help="split of --recogniser_train")
    parser.add_argument("--recogniser_ckpt", default=None, help="a trained recogniser (STEM.safetensors + STEM.json of python -m mdm_kinemic.har.evaluator) for the generative metrics, reused instead of training one; not with --recogniser_train")
    parser.add_argument("--out", default="har_results", help="output folder for har_results.json and confusion PNGs")
    parser.add_argument("--device", default="auto", type=device_type, help=DEVICE_HELP)
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once, each in a process of one torch thread (CPU: avoids the slowdown of competing multi-threaded runs; a seed's result equals a sequential one-thread run's)")
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: HarProtocol.quick() (2 seeds, 2 epochs, 32-frame clips) unless flags override")
    add_protocol_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    protocol = protocol_from_args(args, quick=args.quick)
    device = "cpu" if args.quick and args.device == "auto" else args.device
    def load(root, split):
        return None if root is None else load_clips(root, split, args.input, args.missing)

    train_real = load(args.train_real, args.train_real_split)
    test = load(args.test, args.test_split)
    synthetic = load(args.train_synthetic, args.train_synthetic_split)
    recogniser_train = load(args.recogniser_train, args.recogniser_train_split)
    if args.recogniser_ckpt is not None and args.recogniser_train is not None:
        parser.error("--recogniser_ckpt and --recogniser_train exclude each other: pass one")
    recogniser = None
    if args.recogniser_ckpt is not None:
        try:
            recogniser = load_recogniser(args.recogniser_ckpt, resolve_device(device))
        except (FileNotFoundError, ValueError) as err:
            parser.error(str(err))
    results = run_har_evaluation(
        train_real,
        test,
        protocol,
        train_synthetic=synthetic,
        device=device,
        out_dir=args.out,
        gen_metrics=args.gen_metrics,
        recogniser_train=recogniser_train,
        jobs=args.jobs,
        recogniser=recogniser,
        recogniser_source=args.recogniser_ckpt or "",
    )
    print(format_summary(results))
    print(f"\nwrote {Path(args.out) / RESULTS_FILE}")
    return results


if __name__ == "__main__":
    main()
