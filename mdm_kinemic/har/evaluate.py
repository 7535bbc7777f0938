"""Downstream HAR evaluation: ``python -m mdm_kinemic.har.evaluate``.

The paper's protocol (Sec. 5): ST-GCN trained on the real few-shot clips plus the synthetic ones,
one run per seed, top-1 on the test split after the final epoch, median (and mean +- std) over
seeds; the real-only baseline is trained and tested in the same run (``--no-real_only`` leaves it
to another evaluation of the same real clips and seeds). Optionally, generative
metrics (accuracy, FID, diversity, multimodality) of the real and synthetic training sets under a
recogniser trained on real data.

Example:
    python -m mdm_kinemic.har.evaluate --train_real DATA/ntu_fewshot --train_synthetic OUT/synth/kinemic \\
        --test DATA/ntu_test --seeds 5 --epochs 80 --out OUT/har/kinemic

Each set is a HumanML3D-layout folder or a PYSKL annotation pickle, ``PATH[:SPLIT]``
(har/sources.py): ``--train_real DATA/ntu120_3danno.pkl:xsub_train --test DATA/ntu120_3danno.pkl:xsub_val``.
Every run leaves, per seed, its recogniser, its test scores and its per-epoch log (har/artefacts.py).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mdm_kinemic.distributed import Ranks, rank_device, torch_device
from mdm_kinemic.flags import DEVICE_HELP, device_type
from mdm_kinemic.har.artefacts import (
    RECOGNISER_STEM,
    EpochLog,
    seed_folder,
    write_scores,
    write_test_clips,
)
from mdm_kinemic.har.clips import (
    INPUT_MODES,
    SkeletonClips,
    concat_clips,
    training_classes,
)
from mdm_kinemic.har.evaluator import load_recogniser, save_recogniser
from mdm_kinemic.har.metrics import DEFINITIONS, generative_metrics
from mdm_kinemic.har.protocol import (
    HarProtocol,
    add_protocol_arguments,
    protocol_from_args,
)
from mdm_kinemic.har.report import save_confusion_png, write_json
from mdm_kinemic.har.sources import load_set
from mdm_kinemic.har.stats import (
    CONVERGENCE_MIN_TRAIN_RECALL,
    balanced_accuracy,
    confusion_matrix,
    is_converged,
    per_class_accuracy,
    summarize_seeds,
)
from mdm_kinemic.har.stgcn import TEMPORAL_KERNEL
from mdm_kinemic.har.train import (
    TrainedSTGCN,
    deterministic_algorithms,
    enable_deterministic_algorithms,
    top1,
    train_stgcn,
)

logger = logging.getLogger(__name__)

RESULTS_FILE = "har_results.json"
#: Names of the runs in the results JSON.
REAL_ONLY, REAL_PLUS_SYNTHETIC = "real_only", "real_plus_synthetic"
MAX_OVER_EPOCHS_KEY = "top1_max_over_epochs_authors_selected_on_test"
GEN_METRIC_CHOICES = ("action2motion", "text2motion", "both", "none")
#: Where the generative metrics' recogniser trained on --recogniser_train is saved (OUT/STEM.*).
GEN_RECOGNISER_STEM = "generative_metrics_recogniser"


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """End this process once ``parent`` is no longer its parent (killed, so the process was re-parented).

    A pool's workers otherwise train their seed to the end after ``kill`` of har.evaluate,
    competing for the cores with whatever runs next.
    """
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _init_worker(deterministic: bool, parent: int) -> None:
    """Process-pool initialiser: one torch thread per seed process (parallel seeds share the cores),
    deterministic algorithms for the life of the process when asked (the pool's processes run
    nothing else), and a watcher that ends the process when its parent ``parent`` dies."""
    torch.set_num_threads(1)
    if deterministic:
        enable_deterministic_algorithms()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="exit-with-parent").start()


def train_and_test_seed(
    train: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    seed: int,
    device: torch.device,
    log_folder: Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[dict, TrainedSTGCN]:
    """One seed of a run: train, test, and check convergence on the training clips.

    Args:
        train, test: labelled clips, already relabelled to the classifier's classes.
        protocol: the HAR protocol.
        seed: training seed.
        device: training device.
        log_folder: where the per-epoch log goes as it trains (har/artefacts.py EpochLog; None:
            no log).
        on_epoch: also called with each epoch's record (progress bars).

    Returns:
        (record, trained recogniser). The record holds the seed's test scores (class
        probabilities [N_test, K]) and predictions, its test confusion matrix, top-1 and
        balanced accuracy (%), its epochs and SGD iterations, its recall (%) per class on its
        own training clips and ``converged`` (stats.is_converged).
    """
    with ExitStack() as stack:
        callbacks = [stack.enter_context(EpochLog(log_folder))] if log_folder is not None else []
        if on_epoch is not None:
            callbacks.append(on_epoch)

        def each_epoch(record: dict) -> None:
            for callback in callbacks:
                callback(record)

        trained = train_stgcn(train, protocol, seed, device=device, test=test, on_epoch=each_epoch)
    k = len(train.class_names)
    scores = trained.embed(test)[0]
    predictions = scores.argmax(axis=1)
    confusion = confusion_matrix(test.labels, predictions, k)
    train_confusion = confusion_matrix(train.labels, trained.predict(train), k)
    record = {
        "seed": seed,
        "scores": scores.astype(np.float32),
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
    name: str,
    train: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    device: torch.device,
    jobs: int,
    run_folder: Path | None,
    bar: tqdm,
    deterministic: bool,
    ranks: Ranks,
) -> list[tuple[dict, TrainedSTGCN]]:
    """train_and_test_seed for every seed, in seed order; ``jobs`` > 1 runs them in one-thread processes.

    Under torchrun each rank trains every world_size-th seed and every rank gets all of them back
    (models on ``device``). ``bar`` counts epochs: one by one in a sequential run, a seed's worth
    when a parallel seed ends.
    """
    seeds = protocol.seed_list[ranks.rank :: ranks.world_size]
    results = _run_own_seeds(name, train, test, protocol, seeds, device, jobs, run_folder, bar, deterministic)
    if ranks.world_size == 1:
        return results
    for _, trained in results:
        trained.model.cpu()  # CUDA tensors do not travel between ranks through pickles
    by_seed = {record["seed"]: (record, trained) for part in ranks.all_gather(results) for record, trained in part}
    results = [by_seed[seed] for seed in protocol.seed_list]
    for _, trained in results:
        trained.model.to(device)
    return results


def _run_own_seeds(
    name: str,
    train: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    seeds: Sequence[int],
    device: torch.device,
    jobs: int,
    run_folder: Path | None,
    bar: tqdm,
    deterministic: bool,
) -> list[tuple[dict, TrainedSTGCN]]:
    """train_and_test_seed for ``seeds`` in this process (``jobs`` == 1) or in a pool of one-thread processes."""
    def log_folder(seed: int) -> Path | None:
        return None if run_folder is None else seed_folder(run_folder, seed)

    if jobs == 1:
        def advance(record: dict) -> None:
            bar.set_postfix(loss=f"{record['loss']:.3f}", refresh=False)
            bar.update(1)

        results = []
        for seed in seeds:
            bar.set_description(f"{name} seed {seed}")
            results.append(train_and_test_seed(train, test, protocol, seed, device, log_folder(seed), advance))
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(deterministic, os.getpid())
    ) as pool:
        futures = [
            pool.submit(_seed_in_worker, train, test, protocol, seed, device, log_folder(seed)) for seed in seeds
        ]
        for done in as_completed(futures):
            bar.update(done.result()[1].epochs)
        results = [f.result() for f in futures]
    for _, trained in results:
        trained.model.to(device)
    return results


def _seed_in_worker(
    train: SkeletonClips, test: SkeletonClips, protocol: HarProtocol, seed: int, device: torch.device, log_folder: Path | None
) -> tuple[dict, TrainedSTGCN]:
    """train_and_test_seed in a pool process; the model comes back on the CPU (CUDA tensors do not cross processes safely)."""
    record, trained = train_and_test_seed(train, test, protocol, seed, device, log_folder)
    trained.model.cpu()
    return record, trained


def _save_seed(folder: Path, name: str, trained: TrainedSTGCN, record: dict, train: SkeletonClips, test: SkeletonClips) -> None:
    """The seed's recogniser (har/evaluator.py format, FOLDER/RECOGNISER_STEM) and test scores."""
    stem = folder / RECOGNISER_STEM
    save_recogniser(
        trained,
        stem,
        {
            "run": name,
            "train_source": train.source,
            "train_clips": len(train),
            "test_source": test.source,
            "test_clips": len(test),
            "test_top1": record["top1"],
            "test_balanced_accuracy": record["balanced"],
            "converged": record["converged"],
        },
    )
    write_scores(folder, record["scores"])


def evaluate_run(
    name: str,
    train: SkeletonClips,
    test: SkeletonClips,
    protocol: HarProtocol,
    device: torch.device,
    out_dir: Path | None = None,
    jobs: int = 1,
    progress: bool = False,
    deterministic: bool = False,
    ranks: Ranks | None = None,
) -> tuple[dict, list[TrainedSTGCN]]:
    """Train and test one recogniser per seed on ``train``; summarise over seeds.

    Args:
        name: run name (file names, logs).
        train, test: labelled clips; the classifier's classes are the classes present in train.
        protocol: the HAR protocol.
        device: training device.
        out_dir: where the confusion-matrix PNG and the run folder ``OUT/NAME`` go: per seed the
            recogniser, test scores and per-epoch log, and test_clips.json (har/artefacts.py);
            None: nothing is written.
        jobs: seeds trained at once, each in its own process with one torch thread; a seed's
            result and artefacts do not depend on ``jobs`` (the same as a sequential one-thread run).
        progress: a tqdm bar over seeds and epochs on stderr.
        deterministic: worker processes use deterministic algorithms (``jobs`` > 1; the calling
            process is the caller's to set, see run_har_evaluation).
        ranks: under torchrun (distributed.py), the seeds are spread over the ranks, every rank
            returns the same results and only rank 0 writes artefacts (default: one process).

    Returns:
        (results dict, trained recognisers in seed order). The dict holds the final-epoch top-1
        and balanced-accuracy (mean per-class recall) summaries (median, mean, std over all
        seeds), every seed's test predictions (for paired statistics, har/paired.py), epochs,
        iterations and convergence flag, the test clips per class, per-class accuracy and the
        confusion matrix summed over seeds, and, when tracked, the authors' max-over-epochs
        column, labelled as selected on the test split, and with ``out_dir`` the folder of the
        run's artefacts (``artefacts``) and each seed's recogniser stem (``recognisers``).

    Raises:
        ValueError: test classes absent from train, mismatched joint counts, clips too short,
            jobs < 1.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    ranks = ranks or Ranks()
    classes = training_classes([train], test)
    train, test = train.relabel(classes), test.relabel(classes)
    run_folder = None if out_dir is None else out_dir / name
    epochs = protocol.schedule(len(train))[0]
    own_seeds = len(protocol.seed_list[ranks.rank :: ranks.world_size])
    with tqdm(total=epochs * own_seeds, desc=name, unit="epoch", disable=not progress, file=sys.stderr) as bar:
        outcomes = _run_seeds(name, train, test, protocol, device, jobs, run_folder, bar, deterministic, ranks)
    writes = ranks.is_main
    records, trained_models = [], []
    for record, trained in outcomes:
        records.append(record)
        trained_models.append(trained)
        if run_folder is not None and writes:
            _save_seed(seed_folder(run_folder, record["seed"]), name, trained, record, train, test)
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
    if run_folder is not None:
        if writes:
            write_test_clips(run_folder, test)
        result["artefacts"] = name
        result["recognisers"] = [str(seed_folder(Path(name), r["seed"]) / RECOGNISER_STEM) for r in records]
    if out_dir is not None and writes:
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
    progress: bool = False,
    deterministic: bool = False,
    ranks: Ranks | None = None,
    real_only: bool = True,
) -> dict:
    """The full evaluation: real-only baseline, real + synthetic, generative metrics; writes JSON and PNGs.

    Args:
        train_real: the real training clips (e.g. the 30 few-shot clips).
        test: the test split.
        protocol: the HAR protocol.
        train_synthetic: synthetic clips added to train_real; None runs the baseline alone.
        device: 'auto', 'cpu', 'cuda', ...
        out_dir: folder for har_results.json, the confusion PNGs and each run's artefacts (per
            seed: recogniser, test scores, per-epoch log; har/artefacts.py) (None: write nothing).
        gen_metrics: one of GEN_METRIC_CHOICES.
        recogniser_train: real clips to train the metrics' recogniser on (default train_real,
            whose first-seed baseline model is reused).
        jobs: seeds trained at once in one-thread processes (evaluate_run).
        recogniser: a trained recogniser (the fixed evaluator, har/evaluator.py) for the
            generative metrics, instead of training one; not with recogniser_train.
        recogniser_source: where ``recogniser`` was read from, for the report.
        progress: tqdm bars over seeds and epochs on stderr.
        deterministic: torch's deterministic algorithms and cuDNN settings during the runs
            (train.deterministic_algorithms), in the worker processes too; for CUDA runs.
        ranks: under torchrun (distributed.py), each rank trains its share of the seeds on its
            device (cuda:LOCAL_RANK for 'auto'); rank 0 gathers them, computes the generative
            metrics and writes every file, the same as a one-process run's (default: one process).
        real_only: train and test the real-only baseline; False skips it when a synthetic set is
            given and the baseline comes from another evaluation of the same real clips and seeds
            (the benchmark trains it once per split, not once per synthetic set); the generative
            metrics then need ``recogniser`` or ``recogniser_train``.

    Returns:
        the results dict written to ``out_dir/har_results.json`` (on ranks other than 0: without
        the generative metrics; they write nothing).

    Raises:
        ValueError: empty sets, test classes absent from a training set, mismatched joint
            counts, clips shorter than the ST-GCN temporal kernel, unknown gen_metrics, no run
            to train (real_only False without a synthetic set) or no recogniser for the
            generative metrics (real_only False without recogniser or recogniser_train).
    """
    if gen_metrics not in GEN_METRIC_CHOICES:
        raise ValueError(f"gen_metrics must be one of {GEN_METRIC_CHOICES}, got {gen_metrics!r}")
    if recogniser is not None and recogniser_train is not None:
        raise ValueError("pass either a trained recogniser (--recogniser_ckpt) or clips to train one (--recogniser_train), not both")
    if not real_only and train_synthetic is None:
        raise ValueError("nothing to train: without the real-only baseline (--no-real_only) give --train_synthetic")
    if not real_only and gen_metrics != "none" and recogniser is None and recogniser_train is None:
        raise ValueError(
            "the generative metrics' recogniser is the real-only baseline's first seed, which --no-real_only skips: "
            "pass --recogniser_ckpt or --recogniser_train, or --gen_metrics none"
        )
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
    ranks = ranks or Ranks()
    target_device = torch_device(rank_device(device, ranks))
    out_path = Path(out_dir) if out_dir is not None else None
    results: dict = {
        "protocol": protocol.to_dict(),
        "device": str(target_device),
        "deterministic": deterministic,
        "accuracy_note": "top-1 and balanced accuracy (mean per-class recall, the headline) in % on the test split "
        "after the final epoch of each seed; nothing is selected on test. "
        f"'{MAX_OVER_EPOCHS_KEY}' reproduces the authors' max over epochs of test accuracy and is not an unbiased estimate.",
        "data": {
            "train_real": {"source": train_real.source, "clips": len(train_real), "joints": train_real.num_joints},
            "test": {"source": test.source, "clips": len(test)},
        },
        "runs": {},
    }
    options = {"jobs": jobs, "progress": progress and ranks.is_main, "deterministic": deterministic, "ranks": ranks}
    with deterministic_algorithms(deterministic):
        if real_only:
            real_result, real_models = evaluate_run(REAL_ONLY, train_real, test, protocol, target_device, out_path, **options)
            results["runs"][REAL_ONLY] = real_result
        if train_synthetic is not None:
            results["data"]["train_synthetic"] = {"source": train_synthetic.source, "clips": len(train_synthetic)}
            classes = training_classes(train_sets, test)
            mixed = concat_clips(train_sets, classes, f"{train_real.source} + {train_synthetic.source}")
            results["runs"][REAL_PLUS_SYNTHETIC] = evaluate_run(
                REAL_PLUS_SYNTHETIC, mixed, test, protocol, target_device, out_path, **options
            )[0]
        if gen_metrics != "none" and ranks.is_main:
            definitions = ["action2motion", "text2motion"] if gen_metrics == "both" else [gen_metrics]
            if recogniser is not None:
                source = f"fixed evaluator {recogniser_source}, trained on its own real clips"
                saved = recogniser_source
            elif recogniser_train is None:
                recogniser, source = real_models[0], train_real.source
                saved = real_result["recognisers"][0] if out_path is not None else None
            else:
                classes = training_classes([recogniser_train], test)
                recogniser = train_stgcn(recogniser_train.relabel(classes), protocol, protocol.first_seed, device=target_device)
                source = recogniser_train.source
                saved = None
                if out_path is not None:
                    save_recogniser(recogniser, out_path / GEN_RECOGNISER_STEM, {"train_source": source})
                    saved = GEN_RECOGNISER_STEM
            sets = {"train_real": train_real} if train_synthetic is None else {"train_real": train_real, "train_synthetic": train_synthetic}
            results["generative_metrics"] = {
                "recogniser": f"ST-GCN trained on {source} (seed {recogniser.seed}, final epoch), features = pooled 256-d embedding",
                "recogniser_ckpt": saved,
                "definitions": {name: DEFINITIONS[name].to_dict() for name in definitions},
                "reference": f"FID against the test split {test.source}",
                "sets": generative_report(recogniser, sets, test, definitions, protocol.first_seed),
                "recogniser_test_balanced_accuracy": balanced_accuracy(
                    confusion_matrix(test.relabel(recogniser.class_names).labels, recogniser.predict(test), len(recogniser.class_names))
                ),
            }
    if out_path is not None and ranks.is_main:
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
                # FID >= 0; a set against itself comes out as -0.0 or -1e-12 from rounding
                fid_text = f"  FID {max(0.0, m['fid']):.3f}" if "fid" in m else ""
                lines.append(
                    f"  {set_name:<16}{def_name:<15}acc {m['accuracy']:.2f}{fid_text}  div {m['diversity']:.3f}  mm {m['multimodality']:.3f}"
                )
    return "\n".join(lines)


SET_HELP = "a HumanML3D-layout folder or a PYSKL annotation .pkl, as PATH or PATH:SPLIT"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_real", required=True, help=f"the real training clips: {SET_HELP}")
    parser.add_argument("--train_real_split", default=None, help="split of --train_real (a folder's split list or a pickle's split name; default: a folder's labels.txt), the same as PATH:SPLIT")
    parser.add_argument("--train_synthetic", default=None, help=f"synthetic clips (omit for a real-only run): {SET_HELP}")
    parser.add_argument("--train_synthetic_split", default=None, help="split of --train_synthetic")
    parser.add_argument("--test", required=True, help=f"the test clips: {SET_HELP}")
    parser.add_argument("--test_split", default=None, help="split of --test")
    parser.add_argument("--input", choices=INPUT_MODES, default="auto", help="joints of folders from new_joints, from recover_from_ric of new_joint_vecs, or auto (default)")
    parser.add_argument("--missing", choices=("error", "skip"), default="error", help="listed clips of folders without motion files: fail (default) or skip them")
    parser.add_argument("--gen_metrics", choices=GEN_METRIC_CHOICES, default="action2motion", help="generative metric definition(s) (default: action2motion)")
    parser.add_argument("--recogniser_train", default=None, help=f"real clips for the generative metrics' recogniser (default: --train_real): {SET_HELP}")
    parser.add_argument("--recogniser_train_split", default=None, help="split of --recogniser_train")
    parser.add_argument("--recogniser_ckpt", default=None, help="a trained recogniser (STEM.safetensors + STEM.json of python -m mdm_kinemic.har.evaluator, or OUT/RUN/seedS/recogniser of an earlier run) for the generative metrics, reused instead of training one; not with --recogniser_train")
    parser.add_argument("--out", default="har_results", help="output folder: har_results.json, confusion PNGs, and per run and seed the recogniser, test scores and training log")
    parser.add_argument("--device", default="auto", type=device_type, help=DEVICE_HELP)
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once, each in a process of one torch thread (CPU: avoids the slowdown of competing multi-threaded runs; a seed's result equals a sequential one-thread run's)")
    parser.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True), cuDNN deterministic and no benchmarking, $CUBLAS_WORKSPACE_CONFIG=:4096:8: a seed repeats its CUDA run (slower)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="a progress bar over seeds and epochs on stderr (--no-progress: none)")
    parser.add_argument("--real_only", action=argparse.BooleanOptionalAction, default=True, help="train and test the real-only baseline (--no-real_only: only real + synthetic, when another evaluation of the same real clips and seeds already holds the baseline; needs --recogniser_ckpt or --recogniser_train for the generative metrics)")
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: HarProtocol.quick() (2 seeds, 2 epochs, 32-frame clips) unless flags override")
    add_protocol_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.recogniser_ckpt is not None and args.recogniser_train is not None:
        parser.error("--recogniser_ckpt and --recogniser_train exclude each other: pass one")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        protocol = protocol_from_args(args, quick=args.quick)
    except ValueError as err:
        parser.error(str(err))
    device = "cpu" if args.quick and args.device == "auto" else args.device
    try:
        ranks = Ranks.from_env()  # torchrun: the seeds are spread over its processes
    except ValueError as err:
        parser.error(str(err))
    sets = {}
    try:
        for flag in ("train_real", "test", "train_synthetic", "recogniser_train"):
            spec, split = getattr(args, flag), getattr(args, f"{flag}_split")
            sets[flag] = None if spec is None else load_set(spec, split, args.input, args.missing)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        parser.error(f"--{flag}: {err}")
    recogniser = None
    if args.recogniser_ckpt is not None:
        try:
            recogniser = load_recogniser(args.recogniser_ckpt, torch_device(rank_device(device, ranks)))
        except (FileNotFoundError, ValueError) as err:
            parser.error(str(err))
    try:
        results = _evaluate(args, sets, protocol, device, recogniser, ranks)
    except ValueError as err:  # the sets' classes or sizes, or a GPU without CUDA: checked before any training
        if ranks.is_main:  # every rank finds the same fault; one message is enough
            print(f"har.evaluate: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    finally:
        ranks.close()
    if not ranks.is_main:
        return results
    print(format_summary(results))
    print(f"\nwrote {Path(args.out) / RESULTS_FILE} and, per run and seed, recognisers, test scores and logs under {args.out}")
    return results


def _evaluate(args: argparse.Namespace, sets: dict, protocol: HarProtocol, device: str, recogniser, ranks: Ranks) -> dict:
    return run_har_evaluation(
        sets["train_real"],
        sets["test"],
        protocol,
        train_synthetic=sets["train_synthetic"],
        device=device,
        out_dir=args.out,
        gen_metrics=args.gen_metrics,
        recogniser_train=sets["recogniser_train"],
        jobs=args.jobs,
        recogniser=recogniser,
        recogniser_source=args.recogniser_ckpt or "",
        progress=args.progress,
        deterministic=args.deterministic,
        ranks=ranks,
        real_only=args.real_only,
    )


if __name__ == "__main__":
    main()
