"""Generative metrics on recogniser features: accuracy, FID, diversity, multimodality.

Two definitions of diversity and multimodality are in use, and results must say which:

- ``ACTION2MOTION`` (Action2Motion, Guo et al. 2020; ACTOR, Petrovich et al. 2021): diversity =
  mean feature distance over 200 random pairs of generated clips (indices drawn with
  replacement); multimodality = mean distance over 20 random same-class pairs per class.
- ``TEXT2MOTION`` (Guo et al. 2022, as the KineMIC authors' evaluation uses it): diversity = 300
  pairs drawn without replacement; multimodality over 100 conditions x 30 generations each, 10
  pairs of generations per condition (the same 10 repeat pairs for every condition). A labelled
  set has no per-condition repeats beyond its class, so here a condition is a class: condition
  g takes class g mod K and 30 distinct clips of it.

FID is the Frechet distance between Gaussians fitted to two feature sets, with the matrix square
root from scipy.linalg.sqrtm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import linalg


@dataclass(frozen=True)
class DiversityDefinition:
    """How diversity and multimodality are sampled.

    Attributes:
        name: "action2motion" or "text2motion".
        diversity_pairs: random pairs for diversity (200 / 300).
        with_replacement: diversity indices drawn with replacement (Action2Motion) or not.
        multimodality_pairs: same-condition pairs per condition (20 per class / 10).
        multimodality_conditions: conditions for the text-to-motion variant (100); None: every class.
        multimodality_repeats: generations per condition for the text-to-motion variant (30).
    """

    name: str
    diversity_pairs: int
    with_replacement: bool
    multimodality_pairs: int
    multimodality_conditions: int | None = None
    multimodality_repeats: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


ACTION2MOTION = DiversityDefinition("action2motion", 200, True, 20)
TEXT2MOTION = DiversityDefinition("text2motion", 300, False, 10, 100, 30)
DEFINITIONS = {d.name: d for d in (ACTION2MOTION, TEXT2MOTION)}


def activation_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (ddof = 1) of features [N, D].

    Raises:
        ValueError: fewer than 2 samples.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"FID needs features [N, D] with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    A singular product gets ``eps`` added to both diagonals before the square root; a
    numerically imaginary part (|imag| <= 1e-3 on the diagonal) is dropped.

    Raises:
        ValueError: shapes differ, or the square root has a significant imaginary part.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"Gaussians differ in dimension: means {mu1.shape} vs {mu2.shape}, covariances {sigma1.shape} vs {sigma2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: matrix square root has imaginary part up to {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(features: np.ndarray, reference: np.ndarray) -> float:
    """FID between feature sets [N, D] and [N', D] (recogniser embeddings)."""
    return frechet_distance(*activation_statistics(features), *activation_statistics(reference))


def diversity(features: np.ndarray, num_pairs: int, rng: np.random.Generator, with_replacement: bool = True) -> float:
    """Mean Euclidean distance between features of ``num_pairs`` random pairs.

    Indices: ``first = rng.integers(0, N, num_pairs)`` then ``second`` likewise (with
    replacement), or ``rng.choice(N, num_pairs, replace=False)`` for each (without).

    Raises:
        ValueError: empty set, or fewer clips than pairs when drawing without replacement.
    """
    features = np.asarray(features, dtype=np.float64)
    n = features.shape[0]
    if n == 0:
        raise ValueError("diversity of an empty set is undefined")
    if with_replacement:
        first, second = rng.integers(0, n, num_pairs), rng.integers(0, n, num_pairs)
    else:
        if n < num_pairs:
            raise ValueError(f"text-to-motion diversity draws {num_pairs} distinct clips; the set has only {n}")
        first, second = rng.choice(n, num_pairs, replace=False), rng.choice(n, num_pairs, replace=False)
    return float(np.linalg.norm(features[first] - features[second], axis=1).mean())


def multimodality_by_class(features: np.ndarray, labels: np.ndarray, pairs_per_class: int, rng: np.random.Generator) -> float:
    """Action2Motion/ACTOR multimodality: mean distance of ``pairs_per_class`` same-class pairs per class.

    For each class present (ascending), ``rng.integers`` draws the pairs' two members uniformly,
    with replacement, among that class's clips; the result averages all pair distances.

    Raises:
        ValueError: empty set or labels not matching features.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.shape[0] == 0 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"multimodality needs one label per feature row, got {features.shape[0]} rows, {labels.shape[0]} labels")
    dists = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        first = members[rng.integers(0, members.size, pairs_per_class)]
        second = members[rng.integers(0, members.size, pairs_per_class)]
        dists.append(np.linalg.norm(features[first] - features[second], axis=1))
    return float(np.concatenate(dists).mean())


def multimodality_grouped(grouped: np.ndarray, num_pairs: int, rng: np.random.Generator) -> float:
    """Text-to-motion multimodality of features [G, R, D] (G conditions, R generations each).

    ``num_pairs`` repeat indices are drawn twice without replacement (shared by all conditions);
    the result is the mean distance over the G x num_pairs pairs.

    Raises:
        ValueError: R < num_pairs.
    """
    grouped = np.asarray(grouped, dtype=np.float64)
    if grouped.ndim != 3 or grouped.shape[1] < num_pairs:
        raise ValueError(f"text-to-motion multimodality needs features [G, R >= {num_pairs}, D], got {grouped.shape}")
    first = rng.choice(grouped.shape[1], num_pairs, replace=False)
    second = rng.choice(grouped.shape[1], num_pairs, replace=False)
    return float(np.linalg.norm(grouped[:, first] - grouped[:, second], axis=2).mean())


def class_conditions(labels: np.ndarray, num_conditions: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """Indices [num_conditions, repeats]: condition g holds ``repeats`` distinct clips of class g mod K.

    Classes are taken in ascending order. Raises ValueError when a class has fewer than ``repeats`` clips.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    rows = []
    for g in range(num_conditions):
        members = np.flatnonzero(labels == classes[g % classes.size])
        if members.size < repeats:
            raise ValueError(
                f"text-to-motion multimodality needs {repeats} clips per class; class index {classes[g % classes.size]} "
                f"has {members.size}"
            )
        rows.append(rng.choice(members, repeats, replace=False))
    return np.stack(rows)


def generative_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    reference_features: np.ndarray,
    definition: DiversityDefinition,
    rng: np.random.Generator,
) -> dict:
    """Accuracy, FID, diversity and multimodality of one set of clips under a recogniser.

    Args:
        features: recogniser embeddings [N, D] of the evaluated clips.
        labels: their intended classes, int [N].
        predictions: the recogniser's classes for them, int [N].
        reference_features: embeddings [N', D] of real clips (FID's reference).
        definition: ACTION2MOTION or TEXT2MOTION.
        rng: random source for the pair draws.

    Returns:
        dict with the definition's name, the number of clips, accuracy (%), fid, diversity and
        multimodality. FID of fewer clips than feature dimensions (256) rests on a singular
        covariance and is only indicative.
    """
    if definition.multimodality_conditions is None:
        mm = multimodality_by_class(features, labels, definition.multimodality_pairs, rng)
    else:
        groups = class_conditions(labels, definition.multimodality_conditions, definition.multimodality_repeats, rng)
        mm = multimodality_grouped(np.asarray(features)[groups], definition.multimodality_pairs, rng)
    return {
        "definition": definition.name,
        "clips": int(np.asarray(features).shape[0]),
        "accuracy": float(100.0 * np.mean(np.asarray(predictions) == np.asarray(labels))),
        "fid": fid(features, reference_features),
        "diversity": diversity(features, definition.diversity_pairs, rng, definition.with_replacement),
        "multimodality": mm,
    }
