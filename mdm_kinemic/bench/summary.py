"""The benchmark's machine-readable summary, OUT/results/summary.json, from the har results of each split.

For each split (a list of target contents) and method: the balanced accuracy (mean per-class
recall, the headline) as median, mean and std over seeds, the top-1 median, the seeds and how
many of them converged, and for every method but real only its paired balanced-accuracy
difference to MDM + LoRA and to real only, {"mean", "ci95": [low, high], "resolved"} in points
(har/paired.py); for each split the fixed evaluator's balanced test accuracy. "mean_over_splits"
averages each method's figures over the splits when every split holds it; its paired differences
get their interval from a bootstrap that resamples each split on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mdm_kinemic.har.paired import paired_runs, pooled_paired_runs
from mdm_kinemic.har.report import write_json
from mdm_kinemic.har.results_table import balanced_summary

SUMMARY_FILE = "summary.json"
REAL_ONLY = "real_only"
MDM_LORA = "mdm_lora"
#: reference methods of the paired differences -> summary key
PAIRED_REFERENCES = {MDM_LORA: "paired_vs_mdm_lora", REAL_ONLY: "paired_vs_real_only"}
#: per-method figures averaged over splits
AVERAGED = ("balanced_median", "balanced_mean", "balanced_std", "top1_median")


def method_entry(name: str, run: dict, runs: Mapping[str, dict]) -> dict:
    """Summary of one method's run (a ``runs`` entry of har_results.json), paired with the references in ``runs``.

    Raises:
        ValueError: a run without a balanced-accuracy summary or per-seed confusion matrices, or
            runs that cannot be paired (other seeds or test clips).
    """
    balanced = balanced_summary(run)
    if balanced is None:
        raise ValueError(f"method {name}: its har results hold no balanced accuracy; re-run its har stage")
    converged = run.get("converged_per_seed")
    entry = {
        "balanced_median": balanced["median"],
        "balanced_mean": balanced["mean"],
        "balanced_std": balanced["std"],
        "top1_median": run["top1_final_epoch"]["median"],
        "seeds": list(run["seeds"]),
        "converged_seeds": [s for s, ok in zip(run["seeds"], converged) if ok] if converged is not None else None,
    }
    if name != REAL_ONLY:
        for reference, key in PAIRED_REFERENCES.items():
            if reference in runs:
                entry[key] = paired_runs(run, runs[reference]).to_summary()
            else:
                entry[key] = None
    return entry


def split_summary(target_contents: Sequence[str], runs: Mapping[str, dict], evaluator_balanced_accuracy: float | None) -> dict:
    """One split's part of the summary.

    Args:
        target_contents: the split's target contents, in class order.
        runs: {method: run dict of har_results.json}; "real_only" and "mdm_lora" are the
            paired references when present.
        evaluator_balanced_accuracy: the fixed evaluator's balanced test accuracy (%), None if
            not trained.
    """
    return {
        "target_contents": list(target_contents),
        "evaluator_balanced_accuracy": evaluator_balanced_accuracy,
        "methods": {name: method_entry(name, run, runs) for name, run in runs.items()},
    }


def _mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def build_summary(splits: Mapping[str, dict], runs: Mapping[str, Mapping[str, dict]] | None = None) -> dict:
    """{"splits": {name: split_summary}, "mean_over_splits": {method: averaged figures}}.

    A method enters the mean only when every split holds it. Its paired differences over the
    splits are the mean of the splits' means; with ``runs`` they also get a 95 % interval and
    ``resolved``, from a bootstrap that resamples each split on its own (har/paired.py's pooled
    difference: each split weighs the same).

    Args:
        splits: {split name: :func:`split_summary`}.
        runs: {split name: the ``runs`` given to its split_summary}, for every split; None: the
            mean's paired differences carry no interval.

    Raises:
        ValueError: runs that cannot be paired, or ``runs`` missing a split.
    """
    names = list(splits)
    if runs is not None and set(names) - set(runs):
        raise ValueError(f"build_summary: no runs for the split(s) {sorted(set(names) - set(runs))}")
    methods = [m for m in (splits[names[0]]["methods"] if names else {}) if all(m in splits[n]["methods"] for n in names)]
    mean: dict = {}
    for method in methods:
        entries = [splits[n]["methods"][method] for n in names]
        figures = {key: _mean([e[key] for e in entries]) for key in AVERAGED}
        for reference, key in PAIRED_REFERENCES.items():
            if key not in entries[0]:
                continue
            figures[key] = {"mean": _mean([e[key]["mean"] if e.get(key) else None for e in entries])}
            if runs is not None and figures[key]["mean"] is not None and all(
                    method in runs[n] and reference in runs[n] for n in names):
                # in name order: the interval must not depend on the order the splits were listed in
                figures[key] = pooled_paired_runs([(runs[n][method], runs[n][reference]) for n in sorted(names)]).to_summary()
        mean[method] = figures
    return {
        "splits": dict(splits),
        "mean_over_splits": {
            "splits": names,
            "evaluator_balanced_accuracy": _mean([splits[n]["evaluator_balanced_accuracy"] for n in names]),
            "methods": mean,
        },
        "units": "balanced accuracy (mean per-class recall) and top-1 in %; paired differences in points, "
        "method minus reference, 95 % bootstrap interval over seeds and test clips (over splits: each split "
        "resampled on its own, the splits weighing the same)",
    }


def write_summary(results_dir: str | Path, summary: dict) -> Path:
    """Write RESULTS_DIR/summary.json atomically."""
    return write_json(Path(results_dir) / SUMMARY_FILE, summary)
