"""Kinematic re-ranking of soft positives (the paper's future work, Sec. 6): text finds, motion checks.

Sec. 4.1 ranks source captions by text similarity alone, and text encoders barely separate
mirror-image actions: all-MiniLM-L6-v2 puts "waves the left hand" and "waves the right hand" at
cosine 0.977, so the top-k of a one-sided class holds the other side's motion too. Here each
candidate of a class's top-k is scored against the class's real shots, and only the
kinematically closest fraction is kept. Two scores:

* ``dtw``: dynamic time warping of root-relative joint trajectories (metres per aligned step).
  It compares whole poses, so a candidate's style (amplitude, posture, tempo) weighs as much as
  which limbs move: on the Bandai corpus it keeps every "elderly" left-hand wave for a right-hand
  class and drops every "youthful" one (docs/benchmark.md).
* ``activity``: which joints move. Each sequence becomes its activity profile, every joint's
  mean speed as a share of all joints' (it sums to 1, so tempo and amplitude cancel), and the
  distance is the total variation between profiles, in [0, 1]. A left-hand wave moves the left
  wrist where a right-hand shot moves the right one: their profiles differ by about the arm's
  share, whatever the style.

The trajectories are given by the caller (training/ passes HumanML3D's ric features: joints
relative to the root in its heading frame, metres), so that this module stays free of any data
layout.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from mdm_kinemic.core.mining import Caption, MinedPositive, MiningResult

RERANK_METHODS = ("off", "dtw", "activity")
AGGREGATES = ("min", "mean")


@dataclass(frozen=True)
class KinematicRerankSettings:
    """Whether and how a class's top-k text matches are re-ranked by motion (default: off)."""

    kinematic_rerank: str = field(default="off", metadata={
        "choices": RERANK_METHODS,
        "help": "re-rank each class's top-k soft positives by motion against its real shots and keep the "
                "closest --rerank_keep share: 'dtw' = dynamic time warping of root-relative joint "
                "trajectories (the paper's future work); 'activity' = which joints move (each joint's share "
                "of the motion, insensitive to tempo and amplitude: tells left from right across styles); "
                "'off' = text ranking only (paper Sec. 4.1)"})
    rerank_keep: float = field(default=0.5, metadata={
        "help": "share of each class's top-k kept after kinematic re-ranking, in (0, 1]"})
    rerank_band: float = field(default=0.25, metadata={
        "help": "Sakoe-Chiba band of the DTW (dtw only): frame i of one sequence may match frame j of the other "
                "only when |i/n - j/m| <= band (1 = unconstrained)"})
    rerank_stride: int = field(default=2, metadata={
        "help": "compare every N-th frame (2: 10 fps from HumanML3D's 20); larger is faster and coarser"})
    rerank_aggregate: str = field(default="min", metadata={
        "choices": AGGREGATES,
        "help": "a candidate's distance to its class: to the nearest shot ('min') or the mean over shots"})

    def __post_init__(self) -> None:
        if self.kinematic_rerank not in RERANK_METHODS:
            raise ValueError(f"KinematicRerankSettings.kinematic_rerank must be one of {RERANK_METHODS}, "
                             f"got {self.kinematic_rerank!r}")
        if not (isinstance(self.rerank_keep, (int, float)) and 0.0 < self.rerank_keep <= 1.0):
            raise ValueError(f"KinematicRerankSettings.rerank_keep must lie in (0, 1], got {self.rerank_keep!r}")
        if not (isinstance(self.rerank_band, (int, float)) and 0.0 < self.rerank_band <= 1.0):
            raise ValueError(f"KinematicRerankSettings.rerank_band must lie in (0, 1], got {self.rerank_band!r}")
        if not (isinstance(self.rerank_stride, int) and self.rerank_stride >= 1):
            raise ValueError(f"KinematicRerankSettings.rerank_stride must be an integer >= 1, got {self.rerank_stride!r}")
        if self.rerank_aggregate not in AGGREGATES:
            raise ValueError(f"KinematicRerankSettings.rerank_aggregate must be one of {AGGREGATES}, "
                             f"got {self.rerank_aggregate!r}")

    @property
    def enabled(self) -> bool:
        return self.kinematic_rerank != "off"


def dtw_distances(queries: Sequence[np.ndarray], references: Sequence[np.ndarray], band: float = 1.0,
                  chunk: int = 64) -> np.ndarray:
    """Length-normalised DTW distance of every (query, reference) pair, batched in numpy.

    The frame cost is the mean over joints of the Euclidean distance (metres). Sakoe and Chiba's
    symmetric step pattern: steps (1,0) and (0,1) add the cost once, (1,1) twice, and the best
    total is divided by n + m, so that an alignment frame by frame of two equally long sequences
    gives their mean frame cost, and sequences of different lengths compare. The recursion runs
    over anti-diagonals, each one a vectorised step over all pairs of a chunk.

    Args:
        queries: Q arrays (n_q, J, 3).
        references: R arrays (m_r, J, 3), the same J.
        band: Sakoe-Chiba band as a share of the normalised time axis: cell (i, j) is allowed when
            |(i + 1)/n - (j + 1)/m| <= band (1 = unconstrained). The two end cells always are.
        chunk: pairs per vectorised batch (memory ~ chunk * n_max * m_max * 8 bytes * 3).

    Returns:
        (Q, R) float64 distances (metres per aligned step).

    Raises:
        ValueError: empty sequences or mismatched joint layouts.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in (*queries, *references)]
    if any(a.ndim != 3 or a.shape[0] < 1 or a.shape[1:] != arrays[0].shape[1:] for a in arrays):
        raise ValueError("dtw_distances needs non-empty (T, J, 3) sequences of one joint layout, got shapes "
                         f"{sorted({a.shape[1:] for a in arrays})} and lengths {sorted({a.shape[0] for a in arrays})[:3]}")
    q, r = arrays[: len(queries)], arrays[len(queries):]
    pairs = [(a, b) for a in range(len(q)) for b in range(len(r))]
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), chunk):
        batch = pairs[start : start + chunk]
        out[start : start + len(batch)] = _dtw_batch([q[a] for a, _ in batch], [r[b] for _, b in batch], band)
    return out.reshape(len(q), len(r))


def _dtw_batch(a_list: list[np.ndarray], b_list: list[np.ndarray], band: float) -> np.ndarray:
    p = len(a_list)
    n = np.array([a.shape[0] for a in a_list])
    m = np.array([b.shape[0] for b in b_list])
    big_n, big_m = int(n.max()), int(m.max())
    joints = a_list[0].shape[1]
    a = np.zeros((p, big_n, joints, 3))
    b = np.zeros((p, big_m, joints, 3))
    for k in range(p):
        a[k, : n[k]], b[k, : m[k]] = a_list[k], b_list[k]
    cost = np.zeros((p, big_n, big_m))
    for j in range(joints):
        cost += np.linalg.norm(a[:, :, None, j] - b[:, None, :, j], axis=-1)
    cost /= joints
    i_idx = np.arange(big_n)[None, :, None]
    j_idx = np.arange(big_m)[None, None, :]
    inside = (i_idx < n[:, None, None]) & (j_idx < m[:, None, None])
    in_band = np.abs((i_idx + 1) / n[:, None, None] - (j_idx + 1) / m[:, None, None]) <= band + 1e-12
    in_band[:, 0, 0] = True  # the end cell (n-1, m-1) is on the diagonal, always inside
    cost[~(inside & in_band)] = np.inf
    acc = np.full((p, big_n + 1, big_m + 1), np.inf)
    acc[:, 0, 0] = 0.0
    for diagonal in range(2, big_n + big_m + 1):
        ii = np.arange(max(1, diagonal - big_m), min(big_n, diagonal - 1) + 1)
        jj = diagonal - ii
        here = cost[:, ii - 1, jj - 1]
        acc[:, ii, jj] = np.minimum(acc[:, ii - 1, jj - 1] + 2.0 * here,
                                    np.minimum(acc[:, ii - 1, jj], acc[:, ii, jj - 1]) + here)
    return acc[np.arange(p), n, m] / (n + m)


def activity_profiles(trajectories: Sequence[np.ndarray]) -> np.ndarray:
    """Which joints move: each joint's mean frame-to-frame speed as a share of all joints'.

    Args:
        trajectories: N arrays (T, J, 3) of one joint layout (root-relative positions, metres).

    Returns:
        (N, J) float64 rows summing to 1; a still sequence (or a single frame) gets the uniform
        profile 1/J.

    Raises:
        ValueError: empty sequences or mismatched joint layouts.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in trajectories]
    if any(a.ndim != 3 or a.shape[0] < 1 or a.shape[1:] != arrays[0].shape[1:] for a in arrays):
        raise ValueError("activity_profiles needs non-empty (T, J, 3) sequences of one joint layout, got shapes "
                         f"{sorted({a.shape[1:] for a in arrays})}")
    profiles = np.empty((len(arrays), arrays[0].shape[1]))
    for k, a in enumerate(arrays):
        speed = np.linalg.norm(np.diff(a, axis=0), axis=-1).mean(axis=0) if a.shape[0] > 1 else np.zeros(a.shape[1])
        total = speed.sum()
        profiles[k] = speed / total if total > 0 else 1.0 / a.shape[1]
    return profiles


def activity_distances(queries: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> np.ndarray:
    """Total variation distance between the activity profiles of every (query, reference) pair.

    Args:
        queries: Q arrays (T, J, 3); references: R arrays (T', J, 3), the same J.

    Returns:
        (Q, R) float64 in [0, 1]: half the L1 distance of the profiles (0: the same joints move in
        the same proportions; 1: disjoint sets of joints move).

    Raises:
        ValueError: as :func:`activity_profiles`.
    """
    profiles = activity_profiles([*queries, *references])
    q, r = profiles[: len(queries)], profiles[len(queries):]
    return 0.5 * np.abs(q[:, None, :] - r[None, :, :]).sum(-1)


@dataclass
class ClassRerank:
    """What re-ranking did to one class's pool.

    Attributes:
        name: the class.
        distances: distance (DTW or activity) of each of the class's text-ranked positives to the
            class's shots, in text order.
        kept: indices (text ranks - 1) of the kept positives, closest first.
    """

    name: str
    distances: list[float]
    kept: list[int]


def rerank_by_motion(
    result: MiningResult,
    shots: Sequence[Sequence[np.ndarray]],
    trajectory: Callable[[Caption], np.ndarray],
    settings: KinematicRerankSettings,
) -> tuple[MiningResult, list[ClassRerank]]:
    """Keep the kinematically closest share of each class's text-ranked soft positives.

    Args:
        result: the text mining (Sec. 4.1), positives in text order.
        shots: per class, the root-relative joint trajectories (T, J, 3) of its real shots.
        trajectory: a positive's caption -> the trajectory (T, J, 3) of its clip or sub-span.
        settings: the score (dtw or activity), keep share, DTW band, frame stride, aggregate over shots.

    Returns:
        (a MiningResult whose positives are the kept ones, closest first, their text scores
        unchanged; per class, the distances and what was kept). With re-ranking off, ``result``
        unchanged and an empty list.

    Raises:
        ValueError: ``shots`` does not hold one non-empty list per class.
    """
    if not settings.enabled:
        return result, []
    if len(shots) != len(result.class_names) or any(len(s) == 0 for s in shots):
        raise ValueError(f"rerank_by_motion needs the shots of each of the {len(result.class_names)} classes")
    stride = settings.rerank_stride
    kept_positives: list[list[MinedPositive]] = []
    reports: list[ClassRerank] = []
    for name, positives, class_shots in zip(result.class_names, result.positives, shots):
        candidates = [np.asarray(trajectory(p.caption))[::stride] for p in positives]
        references = [np.asarray(s)[::stride] for s in class_shots]
        distances = (dtw_distances(candidates, references, settings.rerank_band) if settings.kinematic_rerank == "dtw"
                     else activity_distances(candidates, references))
        score = distances.min(axis=1) if settings.rerank_aggregate == "min" else distances.mean(axis=1)
        keep = max(1, math.ceil(settings.rerank_keep * len(positives)))
        order = np.argsort(score, kind="stable")[:keep].tolist()
        kept_positives.append([positives[i] for i in order])
        reports.append(ClassRerank(name, score.tolist(), order))
    return MiningResult(
        class_names=result.class_names, prompts=result.prompts, positives=kept_positives,
        encoder_identity=result.encoder_identity, top_k=result.top_k, unit=result.unit,
        corpus_size=result.corpus_size,
    ), reports


def rerank_report(result: MiningResult, reports: Sequence[ClassRerank], settings: KinematicRerankSettings) -> dict:
    """The re-ranking as JSON-ready data: per class, every text-ranked candidate with its text rank,
    cosine, distance (DTW in metres or activity in [0, 1], as ``method``), whether it was kept and
    its new rank, and how the pool changed, also per caption (``by_caption``: candidates and kept
    windows of each source caption, most candidates first), which shows e.g. how many "left hand"
    windows a "right hand" class keeps.

    Args:
        result: the text mining *before* re-ranking (its positives in text order).
        reports: :func:`rerank_by_motion`'s per-class records.
        settings: the settings used.
    """
    classes = []
    for positives, report in zip(result.positives, reports):
        new_rank = {index: rank for rank, index in enumerate(report.kept, start=1)}
        kept_text_ranks = sorted(i + 1 for i in report.kept)
        dropped = [d for i, d in enumerate(report.distances) if i not in new_rank]
        candidates = Counter(p.caption.text for p in positives)
        kept = Counter(positives[i].caption.text for i in report.kept)
        classes.append({
            "name": report.name,
            "candidates": len(positives),
            "kept": len(report.kept),
            "kept_clips": len({positives[i].caption.clip_id for i in report.kept}),
            "candidate_clips": len({p.caption.clip_id for p in positives}),
            "kept_text_rank_median": float(np.median(kept_text_ranks)),
            "kept_of_text_top_kept": len([r for r in kept_text_ranks if r <= len(report.kept)]),
            "distance_kept_max": max(report.distances[i] for i in report.kept),
            "distance_dropped_min": min(dropped, default=math.nan),
            "candidates_by_text_rank": [
                {"text_rank": i + 1, "score": p.score, "distance": report.distances[i], "kept": i in new_rank,
                 "rank": new_rank.get(i), **p.caption._asdict()}
                for i, p in enumerate(positives)
            ],
            "by_caption": [{"text": text, "candidates": n, "kept": kept[text]}
                           for text, n in sorted(candidates.items(), key=lambda item: (-item[1], item[0]))],
        })
    return {"method": settings.kinematic_rerank, "keep": settings.rerank_keep, "band": settings.rerank_band,
            "stride": settings.rerank_stride, "aggregate": settings.rerank_aggregate, "classes": classes}


def rerank_markdown(report: dict, rows: int = 10) -> str:
    """A short markdown summary of :func:`rerank_report`: per class, how the pool changed and the
    ``rows`` text-best candidates with their distances and fate."""
    dtw = report["method"] == "dtw"
    distance = "DTW (m)" if dtw else "activity distance"
    band = f", band {report['band']:g}" if dtw else ""
    lines = [f"# Kinematic re-ranking ({report['method']}, keep {report['keep']:g}{band}, "
             f"stride {report['stride']}, {report['aggregate']} over shots)", "",
             "| class | candidates (clips) | kept (clips) | median text rank of kept | kept from the text top-kept "
             f"| max {distance} kept | min {distance} dropped |", "|---|---|---|---|---|---|---|"]
    for c in report["classes"]:
        lines.append(f"| {c['name']} | {c['candidates']} ({c['candidate_clips']}) | {c['kept']} ({c['kept_clips']}) "
                     f"| {c['kept_text_rank_median']:g} | {c['kept_of_text_top_kept']} | {c['distance_kept_max']:.3f} "
                     f"| {c['distance_dropped_min']:.3f} |")
    for c in report["classes"]:
        lines += ["", f"## {c['name']}", "", "| source caption | candidates | kept |", "|---|---|---|"]
        lines += [f"| {b['text'].replace('|', '/')} | {b['candidates']} | {b['kept']} |" for b in c.get("by_caption", [])]
        lines += ["", f"| text rank | cosine | {distance} | kept as | clip | caption |", "|---|---|---|---|---|---|"]
        for p in c["candidates_by_text_rank"][:rows]:
            fate = str(p["rank"]) if p["kept"] else "dropped"
            lines.append(f"| {p['text_rank']} | {p['score']:.3f} | {p['distance']:.3f} | {fate} | {p['clip_id']} "
                         f"| {p['text'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"
