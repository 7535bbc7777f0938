"""Paired comparison of two methods tested on the same clips with the same recogniser seeds.

Every method of the benchmark trains its recogniser with the same seeds and is tested on the same
clips, so the per-seed difference of balanced accuracy (mean per-class recall, in points) is a
paired statistic: the seed's initialisation and sampling noise, shared by both methods, largely
cancels. Its 95 % confidence interval comes from a bootstrap over both sources of variation:
each replicate resamples the seeds with replacement and, within each class, the test clips with
replacement (stratified, so that every class keeps its test count and balanced accuracy stays
defined), then averages the per-seed differences on the resampled clips. When the seeds come
in groups that share a trained generator (the calibration study's few-shot seeds, each scored
by several recogniser seeds), the seeds are resampled in two levels: the groups with
replacement, then the seeds within each drawn group, so that seeds of one generator are not
counted as independent. Independent strata (the benchmark's splits: other clips, other
generators) pool into one difference, the mean of theirs, with a bootstrap that resamples each
stratum on its own: an interval for these strata, not for other splits one might have drawn. A
difference is *resolved* when its interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: bootstrap replicates and seed of the benchmark's intervals
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class PairedDifference:
    """Balanced accuracy of method A minus method B, in points (percent).

    Attributes:
        per_seed: the difference of each seed, in seed order (pooled: every stratum's, in stratum order).
        mean: the point estimate: mean of ``per_seed``; pooled, the mean of the strata's means
            (each stratum weighs the same, whatever its number of seeds).
        ci95: (low, high) percentile bootstrap interval (2.5 %, 97.5 %).
        resamples: bootstrap replicates.
    """

    per_seed: tuple[float, ...]
    mean: float
    ci95: tuple[float, float]
    resamples: int

    @property
    def resolved(self) -> bool:
        """True when the interval excludes 0."""
        return self.ci95[0] > 0 or self.ci95[1] < 0

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci95": list(self.ci95), "per_seed": list(self.per_seed),
                "resolved": self.resolved, "resamples": self.resamples}

    def to_summary(self) -> dict:
        """{"mean", "ci95": [low, high], "resolved"}: the form of summary.json and study.json."""
        return {"mean": self.mean, "ci95": list(self.ci95), "resolved": self.resolved}


def format_paired(entry: dict | None) -> str:
    """A table cell of a :meth:`PairedDifference.to_summary` entry: "+1.23 [-4.56, +7.89]", with
    " ✓" when resolved; "–" for None."""
    if not entry:
        return "–"
    mark = " ✓" if entry["resolved"] else ""
    return f"{entry['mean']:+.2f} [{entry['ci95'][0]:+.2f}, {entry['ci95'][1]:+.2f}]{mark}"


def _class_members(labels: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _balanced_difference(correct_diff: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """Mean over classes of the mean of ``correct_diff`` [..., N] over each class's clips, in points."""
    return 100.0 * np.mean([correct_diff[..., idx].mean(axis=-1) for idx in members], axis=0)


def paired_difference(
    labels: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    groups: np.ndarray | None = None,
) -> PairedDifference:
    """Balanced-accuracy difference A - B per seed, its mean and a bootstrap 95 % interval (module doc).

    Args:
        labels: true classes of the N test clips, int [N].
        predictions_a: method A's predicted classes, int [S, N] (S seeds, in the same seed order as B).
        predictions_b: method B's, int [S, N].
        resamples: bootstrap replicates.
        seed: seed of the bootstrap's numpy generator (the same seed gives the same interval).
        groups: group of each seed, int [S] (e.g. the few-shot seed of a generator that several
            recogniser seeds score); None: the seeds are independent.

    Returns:
        PairedDifference in points.

    Raises:
        ValueError: shapes that do not match, no clips or seeds, resamples < 1, groups not [S].
    """
    return pooled_paired_difference([(labels, predictions_a, predictions_b, groups)], resamples, seed)


def pooled_paired_difference(
    strata: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedDifference:
    """The mean over independent strata (e.g. benchmark splits: other clips, other generators) of
    each one's paired difference A - B, with a stratified bootstrap interval: every replicate
    resamples each stratum as :func:`paired_difference` does and averages the strata's replicate
    differences, each stratum weighing the same.

    Args:
        strata: per stratum (labels [N_k], predictions_a [S_k, N_k], predictions_b [S_k, N_k],
            groups [S_k] or None), as :func:`paired_difference`'s arguments.
        resamples: bootstrap replicates.
        seed: seed of the bootstrap's numpy generator; the strata draw from it in order (so the
            interval depends on the order: callers pass the strata in a fixed one), and one stratum
            gives exactly :func:`paired_difference`'s figures.

    Returns:
        PairedDifference in points: ``per_seed`` every stratum's seeds in stratum order,
        ``mean`` the mean of the strata's means.

    Raises:
        ValueError: no strata, or a stratum :func:`paired_difference` refuses.
    """
    if not strata:
        raise ValueError("a pooled paired difference needs at least one stratum")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    per_seed, replicates = zip(*(_stratum_replicates(*stratum, resamples, rng) for stratum in strata))
    means = [float(p.mean()) for p in per_seed]
    low, high = np.percentile(np.mean(replicates, axis=0), [2.5, 97.5])
    return PairedDifference(tuple(float(v) for p in per_seed for v in p), float(np.mean(means)),
                            (float(low), float(high)), resamples)


def _stratum_replicates(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray,
                        groups: np.ndarray | None, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(per-seed differences [S], bootstrap replicates of their mean [resamples]) of one stratum.

    Raises:
        ValueError: as :func:`paired_difference`.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    a, b = np.atleast_2d(np.asarray(predictions_a)), np.atleast_2d(np.asarray(predictions_b))
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != labels.size:
        raise ValueError(
            f"paired predictions must both be [seeds, {labels.size} clips]; got {a.shape} and {b.shape}: "
            "compare runs trained with the same seeds and tested on the same clips"
        )
    if labels.size == 0 or a.shape[0] == 0:
        raise ValueError("paired difference needs at least one seed and one test clip")
    diff = (a == labels).astype(np.float64) - (b == labels).astype(np.float64)
    members = _class_members(labels)
    per_seed = _balanced_difference(diff, members)
    # stratified clip resampling: replicate r draws, per class, its own count of that class's clips
    drawn = [idx[rng.integers(0, idx.size, (resamples, idx.size))] for idx in members]
    by_class = [diff[:, d].mean(axis=-1) for d in drawn]  # each [S, R]
    replicate_seed_diff = 100.0 * np.mean(by_class, axis=0)  # [S, R]
    if groups is None:
        seeds = rng.integers(0, a.shape[0], (resamples, a.shape[0]))
    else:
        seeds = _grouped_seed_draws(np.asarray(groups).reshape(-1), a.shape[0], resamples, rng)
    return per_seed, replicate_seed_diff[seeds, np.arange(resamples)[:, None]].mean(axis=1)


def _grouped_seed_draws(groups: np.ndarray, seeds: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Seed indices [resamples, S] drawn in two levels: the groups with replacement, then each drawn
    group's seeds with replacement (cut or cycled to S when group sizes differ)."""
    if groups.size != seeds:
        raise ValueError(f"groups must give one group per seed ({seeds}), got {groups.size}")
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    draws = np.empty((resamples, seeds), dtype=np.int64)
    for r in range(resamples):
        chosen = rng.integers(0, len(members), len(members))
        draws[r] = np.resize(np.concatenate([members[g][rng.integers(0, members[g].size, members[g].size)] for g in chosen]), seeds)
    return draws


def paired_runs(run_a: dict, run_b: dict, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> PairedDifference:
    """paired_difference of two runs of ``har_results.json`` (mdm_kinemic.har.evaluate).

    Raises:
        ValueError: runs without per-seed predictions (results written before they were
            recorded), or with other seeds, test clips or classes.
    """
    return pooled_paired_runs([(run_a, run_b)], resamples, seed)


def pooled_paired_runs(pairs: Sequence[tuple[dict, dict]], resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> PairedDifference:
    """pooled_paired_difference of (run A, run B) pairs of ``har_results.json``, one pair per
    stratum (e.g. per benchmark split); one pair gives :func:`paired_runs`.

    Raises:
        ValueError: as :func:`paired_runs`, for any pair.
    """
    return pooled_paired_difference([_run_stratum(a, b) for a, b in pairs], resamples, seed)


def _run_stratum(run_a: dict, run_b: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, predictions A, predictions B, seed groups) of two runs that pair.

    Raises:
        ValueError: as :func:`paired_runs`.
    """
    for run in (run_a, run_b):
        if "test_predictions_per_seed" not in run:
            raise ValueError(
                f"run trained on {run.get('train_source', '?')} has no per-seed test predictions: "
                "re-run python -m mdm_kinemic.har.evaluate to record them"
            )
    for key in ("seeds", "test_ids", "classes"):
        if list(run_a.get(key, [])) != list(run_b.get(key, [])):
            raise ValueError(f"paired runs differ in {key}: train every method with the same seeds and test clips")
    groups = run_a.get("seed_groups")
    if groups != run_b.get("seed_groups"):
        raise ValueError("paired runs differ in seed_groups: pair runs merged over the same few-shot seeds")
    return (np.asarray(run_a["test_labels"]), np.asarray(run_a["test_predictions_per_seed"]),
            np.asarray(run_b["test_predictions_per_seed"]), None if groups is None else np.asarray(groups))
